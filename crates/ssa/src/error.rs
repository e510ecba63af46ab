//! Errors, worded as fluxcd/pkg/ssa words them (they end up in Kustomization status messages).

use kube::core::Status;

/// An error of the SSA engine.
#[derive(Debug, thiserror::Error)]
pub enum SsaError {
    /// The object lacks apiVersion, kind or name, or an inventory id does not parse.
    #[error("{0}")]
    InvalidObject(String),

    /// The kind is not served (unknown CRD, wrong version).
    #[error(
        "{subject} dry-run failed: no matches for kind \"{kind}\" in version \"{api_version}\""
    )]
    NoMatch {
        subject: String,
        kind: String,
        api_version: String,
    },

    /// The server refused the dry-run apply. `reason` is the Status reason (Invalid,
    /// Forbidden, ...) when the server gave one.
    #[error("{subject} dry-run failed{}: {message}", reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default())]
    DryRun {
        subject: String,
        reason: Option<String>,
        message: String,
    },

    /// The dry-run got 404: for a namespaced object, its namespace does not exist.
    #[error("{subject} not found: {message}")]
    DryRunNotFound { subject: String, message: String },

    /// A namespaced object without `metadata.namespace`.
    #[error("{subject} namespace not specified: {message}")]
    NamespaceNotSpecified { subject: String, message: String },

    /// The real apply failed after a successful dry-run.
    #[error("{subject} apply failed: {message}")]
    Apply { subject: String, message: String },

    /// Recreating an object with an immutable change: the delete failed.
    #[error("{subject} immutable field detected, failed to delete object: {message}")]
    ImmutableDelete { subject: String, message: String },

    /// Recreating an object with an immutable change: it did not go away in time.
    #[error(
        "{subject} immutable field detected, failed to wait for object to be deleted: {message}"
    )]
    ImmutableWait { subject: String, message: String },

    /// Rewriting the managedFields API versions failed.
    #[error("{subject} failed to migrate API version: {message}")]
    MigrateApiVersion { subject: String, message: String },

    /// Removing the managers of the cleanup list failed.
    #[error("{subject} metadata.managedFields cleanup failed: {message}")]
    Cleanup { subject: String, message: String },

    /// An ignore rule has an invalid selector.
    #[error("failed to create ignore rule selector: {0}")]
    InvalidIgnoreRule(String),

    /// Deletes failed (each message ends with `;`, as upstream joins them).
    #[error("delete failed, errors: {}", .0.iter().map(|e| format!("{e};")).collect::<String>())]
    Delete(Vec<String>),

    /// Waiting ended at the timeout with objects not Current: `Kind/ns/name status: 'S'` items.
    #[error("timeout waiting for: [{}]", .0.join(", "))]
    Timeout(Vec<String>),

    /// Waiting stopped because objects failed (fail-fast, or only Failed and Current left).
    #[error("failed early due to stalled resources: [{}]", .0.join(", "))]
    FailedEarly(Vec<String>),

    /// Waiting for deletion timed out.
    #[error("{subject} termination timeout: {message}")]
    TerminationTimeout { subject: String, message: String },

    /// The caller cancelled the operation.
    #[error("context canceled")]
    Canceled,

    /// Discovery failed for a reason other than an unknown kind.
    #[error("{subject} discovery failed: {message}")]
    Discovery { subject: String, message: String },
}

/// The message of a kube error as upstream prints Go API errors: the Status message alone.
pub(crate) fn message(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(s) if !s.message.is_empty() => s.message.clone(),
        other => other.to_string(),
    }
}

pub(crate) fn status(err: &kube::Error) -> Option<&Status> {
    match err {
        kube::Error::Api(s) => Some(s),
        _ => None,
    }
}

pub(crate) fn is_not_found(err: &kube::Error) -> bool {
    status(err).is_some_and(|s| s.code == 404)
}

/// The Status reason upstream shows in `dry-run failed (<reason>)`: a field-manager conflict
/// cause wins over the status reason.
pub(crate) fn reason(err: &kube::Error) -> Option<String> {
    let s = status(err)?;
    if let Some(d) = &s.details
        && d.causes.iter().any(|c| c.reason == "FieldManagerConflict")
    {
        return Some("FieldManagerConflict".into());
    }
    (!s.reason.is_empty()).then(|| s.reason.clone())
}

/// Upstream `IsImmutableError`: any Conflict or Invalid (as kubectl decides), or a message
/// saying `is immutable` / `immutable field` (admission webhooks, CEL transition rules).
pub(crate) fn is_immutable(err: &kube::Error) -> bool {
    if let Some(s) = status(err)
        && (s.code == 409 || s.code == 422 || s.reason == "Conflict" || s.reason == "Invalid")
    {
        return true;
    }
    let m: String = message(err)
        .chars()
        .map(|c| if c.is_whitespace() { ' ' } else { c })
        .collect();
    m.contains("is immutable") || m.contains("immutable field")
}
