//! Status conditions: the condition types and reasons Flux uses, and pure helpers to read and
//! update a `status.conditions` list (`metav1.Condition`).
//!
//! The update helpers follow the apimachinery convention: setting a condition whose status did not
//! change keeps its `lastTransitionTime`; only a status change moves it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::{Schema, SchemaGenerator, json_schema};

/// `status` value of a condition that holds.
pub const TRUE: &str = "True";
/// `status` value of a condition that does not hold.
pub const FALSE: &str = "False";
/// `status` value of a condition whose state is not known yet.
pub const UNKNOWN: &str = "Unknown";

// ---- Condition types -------------------------------------------------------------------------

/// Summary condition: the object is in its desired state.
pub const READY: &str = "Ready";
/// Abnormal-true condition: a reconciliation is in progress (present only when True).
pub const RECONCILING: &str = "Reconciling";
/// Abnormal-true condition: the reconciliation cannot progress without a change (present only
/// when True).
pub const STALLED: &str = "Stalled";
/// Kustomization: health checks of the applied objects.
pub const HEALTHY: &str = "Healthy";
/// Sources: the artifact for the current revision is in storage.
pub const ARTIFACT_IN_STORAGE: &str = "ArtifactInStorage";
/// Sources: the stored artifact is older than what the spec asks for.
pub const ARTIFACT_OUTDATED: &str = "ArtifactOutdated";
/// Sources: fetching from the origin failed.
pub const FETCH_FAILED: &str = "FetchFailed";
/// Sources: a storage operation (write, lock, symlink, ...) failed.
pub const STORAGE_OPERATION_FAILED: &str = "StorageOperationFailed";
/// GitRepository: an included repository has no usable artifact.
pub const INCLUDE_UNAVAILABLE: &str = "IncludeUnavailable";
/// Sources: signature verification result.
pub const SOURCE_VERIFIED: &str = "SourceVerified";
/// HelmChart: building the chart failed.
pub const BUILD_FAILED: &str = "BuildFailed";
/// HelmRelease: outcome of the last install or upgrade.
pub const RELEASED: &str = "Released";
/// HelmRelease: outcome of the Helm tests.
pub const TEST_SUCCESS: &str = "TestSuccess";
/// HelmRelease: outcome of the last rollback or uninstall remediation.
pub const REMEDIATED: &str = "Remediated";
/// HelmRelease: whether the cluster state drifted from the release.
pub const DRIFTED: &str = "Drifted";

/// Reasons shared by every controller (upstream `pkg/apis/meta`).
pub mod reason {
    /// The reconciliation succeeded.
    pub const SUCCEEDED: &str = "Succeeded";
    /// The reconciliation failed.
    pub const FAILED: &str = "Failed";
    /// A reconciliation is running.
    pub const PROGRESSING: &str = "Progressing";
    /// A reconciliation is running after an earlier failure.
    pub const PROGRESSING_WITH_RETRY: &str = "ProgressingWithRetry";
    /// The object is suspended.
    pub const SUSPENDED: &str = "Suspended";
    /// A dependency is not ready yet.
    pub const DEPENDENCY_NOT_READY: &str = "DependencyNotReady";
    /// A path in the spec is not valid.
    pub const INVALID_PATH: &str = "InvalidPath";
    /// A URL in the spec is not valid.
    pub const INVALID_URL: &str = "InvalidURL";
    /// Plain-text connections are refused by configuration.
    pub const INSECURE_CONNECTIONS_DISALLOWED: &str = "InsecureConnectionsDisallowed";
    /// The URL scheme is not supported.
    pub const UNSUPPORTED_CONNECTION_TYPE: &str = "UnsupportedConnectionType";
    /// Garbage collection of applied objects failed.
    pub const PRUNE_FAILED: &str = "PruneFailed";
    /// Fetching the source artifact failed.
    pub const ARTIFACT_FAILED: &str = "ArtifactFailed";
    /// Building the manifests or chart failed.
    pub const BUILD_FAILED: &str = "BuildFailed";
    /// Health checks did not pass in time.
    pub const HEALTH_CHECK_FAILED: &str = "HealthCheckFailed";
    /// Health checks were cancelled (a newer revision arrived).
    pub const HEALTH_CHECK_CANCELED: &str = "HealthCheckCanceled";
    /// Kustomization/HelmRelease applied successfully.
    pub const RECONCILIATION_SUCCEEDED: &str = "ReconciliationSucceeded";
    /// Kustomization/HelmRelease apply failed.
    pub const RECONCILIATION_FAILED: &str = "ReconciliationFailed";
    /// A CEL expression in the spec does not compile.
    pub const INVALID_CEL_EXPRESSION: &str = "InvalidCELExpression";
    /// The spec uses a feature behind a disabled gate.
    pub const FEATURE_GATE_DISABLED: &str = "FeatureGateDisabled";
    /// A cross-namespace reference or impersonation was refused.
    pub const ACCESS_DENIED: &str = "AccessDenied";
    /// Kustomization: the working directory could not be created.
    pub const DIRECTORY_CREATION_FAILED: &str = "DirectoryCreationFailed";
}

/// Reasons set by the source controller.
pub mod source_reason {
    /// The URL in the spec is not valid.
    pub const URL_INVALID: &str = "URLInvalid";
    /// Credentials were refused or could not be built.
    pub const AUTHENTICATION_FAILED: &str = "AuthenticationFailed";
    /// Signature verification failed.
    pub const VERIFICATION_ERROR: &str = "VerificationError";
    /// A storage directory could not be created.
    pub const DIRECTORY_CREATION_FAILED: &str = "DirectoryCreationFailed";
    /// A stat call on storage failed.
    pub const STAT_OPERATION_FAILED: &str = "StatOperationFailed";
    /// Reading from storage failed.
    pub const READ_OPERATION_FAILED: &str = "ReadOperationFailed";
    /// The storage lock could not be taken.
    pub const ACQUIRE_LOCK_FAILED: &str = "AcquireLockFailed";
    /// A path escaped its root.
    pub const INVALID_PATH: &str = "InvalidPath";
    /// Writing the archive failed.
    pub const ARCHIVE_OPERATION_FAILED: &str = "ArchiveOperationFailed";
    /// Updating the `latest` symlink failed.
    pub const SYMLINK_UPDATE_FAILED: &str = "SymlinkUpdateFailed";
    /// Event reason: the stored artifact already matches the origin.
    pub const ARTIFACT_UP_TO_DATE: &str = "ArtifactUpToDate";
    /// A cache operation failed.
    pub const CACHE_OPERATION_FAILED: &str = "CacheOperationFailed";
    /// Patching the object failed.
    pub const PATCH_OPERATION_FAILED: &str = "PatchOperationFailed";
    /// Bucket: the STS configuration is not valid.
    pub const INVALID_STS_CONFIGURATION: &str = "InvalidSTSConfiguration";
    /// The provider configuration is not valid.
    pub const INVALID_PROVIDER_CONFIGURATION: &str = "InvalidProviderConfiguration";
    /// A Git operation succeeded.
    pub const GIT_OPERATION_SUCCEEDED: &str = "GitOperationSucceeded";
    /// A Git operation failed.
    pub const GIT_OPERATION_FAILED: &str = "GitOperationFailed";
    /// Pulling an OCI artifact failed.
    pub const OCI_ARTIFACT_PULL_FAILED: &str = "OCIArtifactPullFailed";
    /// Handling an OCI layer failed.
    pub const OCI_ARTIFACT_LAYER_OPERATION_FAILED: &str = "OCIArtifactLayerOperationFailed";
    /// Building the Helm repository index failed.
    pub const INDEXATION_FAILED: &str = "IndexationFailed";
    /// A bucket operation succeeded.
    pub const BUCKET_OPERATION_SUCCEEDED: &str = "BucketOperationSucceeded";
    /// A bucket operation failed.
    pub const BUCKET_OPERATION_FAILED: &str = "BucketOperationFailed";
    /// A chart was pulled from a repository.
    pub const CHART_PULL_SUCCEEDED: &str = "ChartPullSucceeded";
    /// A chart was packaged from a source.
    pub const CHART_PACKAGE_SUCCEEDED: &str = "ChartPackageSucceeded";
    /// The chart reference is not valid.
    pub const INVALID_CHART_REFERENCE: &str = "InvalidChartReference";
    /// Pulling the chart failed.
    pub const CHART_PULL_ERROR: &str = "ChartPullError";
    /// Patching chart metadata failed.
    pub const METADATA_PATCH_ERROR: &str = "MetadataPatchError";
    /// Merging values files failed.
    pub const VALUES_FILES_ERROR: &str = "ValuesFilesError";
    /// Building chart dependencies failed.
    pub const DEPENDENCY_BUILD_ERROR: &str = "DependencyBuildError";
    /// Packaging the chart failed.
    pub const CHART_PACKAGE_ERROR: &str = "ChartPackageError";
    /// Verifying the chart failed.
    pub const CHART_VERIFICATION_ERROR: &str = "ChartVerificationError";
    /// Unclassified chart build error.
    pub const UNKNOWN: &str = "Unknown";
    /// ArtifactOutdated: the origin has a new revision.
    pub const NEW_REVISION: &str = "NewRevision";
    /// ArtifactOutdated: the chart changed.
    pub const NEW_CHART: &str = "NewChart";
    /// ArtifactOutdated: an include changed.
    pub const INCLUDE_CHANGE: &str = "IncludeChange";
    /// IncludeUnavailable / FetchFailed: the referenced source has no artifact.
    pub const NO_ARTIFACT: &str = "NoArtifact";
    /// IncludeUnavailable: an include path escaped its root.
    pub const ILLEGAL_PATH: &str = "IllegalPath";
    /// FetchFailed (HelmChart): the source has no artifact.
    pub const NO_SOURCE_ARTIFACT: &str = "NoSourceArtifact";
    /// SourceVerified: signatures verified.
    pub const VERIFIED: &str = "Verified";
    /// Event reason: a new artifact was stored.
    pub const NEW_ARTIFACT: &str = "NewArtifact";
    /// Event reason: verifying the artifact failed.
    pub const ARTIFACT_VERIFICATION_FAILED: &str = "ArtifactVerificationFailed";
}

/// Reasons set by the helm controller.
pub mod helm_reason {
    /// Released: install succeeded.
    pub const INSTALL_SUCCEEDED: &str = "InstallSucceeded";
    /// Released: install failed.
    pub const INSTALL_FAILED: &str = "InstallFailed";
    /// Released: upgrade succeeded.
    pub const UPGRADE_SUCCEEDED: &str = "UpgradeSucceeded";
    /// Released: upgrade failed.
    pub const UPGRADE_FAILED: &str = "UpgradeFailed";
    /// Released / Remediated: uninstall succeeded.
    pub const UNINSTALL_SUCCEEDED: &str = "UninstallSucceeded";
    /// Released / Remediated: uninstall failed.
    pub const UNINSTALL_FAILED: &str = "UninstallFailed";
    /// Released: the release is locked in a pending state.
    pub const PENDING_RELEASE: &str = "PendingRelease";
    /// TestSuccess: tests passed.
    pub const TEST_SUCCEEDED: &str = "TestSucceeded";
    /// TestSuccess: tests failed.
    pub const TEST_FAILED: &str = "TestFailed";
    /// TestSuccess: tests not run yet.
    pub const AWAITING_TESTS: &str = "AwaitingTests";
    /// Remediated: rollback succeeded.
    pub const ROLLBACK_SUCCEEDED: &str = "RollbackSucceeded";
    /// Remediated: rollback failed.
    pub const ROLLBACK_FAILED: &str = "RollbackFailed";
    /// Drifted: drift found.
    pub const DRIFT_DETECTED: &str = "DriftDetected";
    /// Drifted: no drift.
    pub const NO_DRIFT_DETECTED: &str = "NoDriftDetected";
    /// Stalled: remediation retries are used up.
    pub const RETRIES_EXCEEDED: &str = "RetriesExceeded";
    /// Stalled: no release to roll back to.
    pub const MISSING_ROLLBACK_TARGET: &str = "MissingRollbackTarget";
    /// Ready: the chart source is not ready.
    pub const SOURCE_NOT_READY: &str = "SourceNotReady";
    /// Ready: composing values failed.
    pub const VALUES_ERROR: &str = "ValuesError";
    /// Ready: mutating the chart failed.
    pub const CHART_MUTATE_ERROR: &str = "ChartMutateError";
    /// Ready: building the REST client failed.
    pub const REST_CLIENT_ERROR: &str = "RESTClientError";
    /// Ready: the resource manager failed.
    pub const RESOURCE_MANAGER_ERROR: &str = "ResourceManagerError";
    /// Ready: the action factory failed.
    pub const FACTORY_ERROR: &str = "FactoryError";
    /// Ready: building the Helm configuration failed.
    pub const CONFIG_FACTORY_ERR: &str = "ConfigFactoryErr";
    /// Ready: a generic reconcile error.
    pub const RECONCILE_ERROR: &str = "ReconcileError";
    /// Ready: the release state could not be determined.
    pub const STATE_ERROR: &str = "StateError";
}

/// Reasons set by the notification controller (Receiver).
pub mod notification_reason {
    /// The webhook token Secret is missing.
    pub const TOKEN_NOT_FOUND: &str = "TokenNotFound";
    /// Validating the Receiver failed.
    pub const VALIDATION_FAILED: &str = "ValidationFailed";
}

// ---- Helpers ---------------------------------------------------------------------------------

/// Builds a condition with the given fields; `now` becomes its `lastTransitionTime`.
pub fn new_condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: impl Into<String>,
    observed_generation: Option<i64>,
    now: Time,
) -> Condition {
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message: message.into(),
        observed_generation,
        last_transition_time: now,
    }
}

/// The condition of the given type, if present.
pub fn get<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Inserts or replaces the condition with `new.type_`.
///
/// When a condition of that type exists and its status is unchanged, its `lastTransitionTime` is
/// kept; otherwise the time from `new` is used. Returns true when anything changed.
pub fn set(conditions: &mut Vec<Condition>, new: Condition) -> bool {
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(existing) => {
            let mut next = new;
            if existing.status == next.status {
                next.last_transition_time = existing.last_transition_time.clone();
            }
            if *existing == next {
                false
            } else {
                *existing = next;
                true
            }
        }
        None => {
            conditions.push(new);
            true
        }
    }
}

/// Removes the condition of the given type; returns true if one was removed.
pub fn remove(conditions: &mut Vec<Condition>, type_: &str) -> bool {
    let before = conditions.len();
    conditions.retain(|c| c.type_ != type_);
    conditions.len() != before
}

/// The status (`True`, `False`, `Unknown`) of the condition of the given type, if present.
pub fn status_of<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a str> {
    get(conditions, type_).map(|c| c.status.as_str())
}

/// True if the condition of the given type is present with status `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    status_of(conditions, type_) == Some(TRUE)
}

/// True if the condition of the given type is present with status `False`.
pub fn is_false(conditions: &[Condition], type_: &str) -> bool {
    status_of(conditions, type_) == Some(FALSE)
}

/// True if the condition of the given type is absent or has status `Unknown`.
pub fn is_unknown(conditions: &[Condition], type_: &str) -> bool {
    matches!(status_of(conditions, type_), None | Some(UNKNOWN))
}

/// True if `Ready` is `True`.
pub fn is_ready(conditions: &[Condition]) -> bool {
    is_true(conditions, READY)
}

/// True if `Stalled` is `True`.
pub fn is_stalled(conditions: &[Condition]) -> bool {
    is_true(conditions, STALLED)
}

/// True if `Reconciling` is `True`.
pub fn is_reconciling(conditions: &[Condition]) -> bool {
    is_true(conditions, RECONCILING)
}

/// Schema of a `conditions` list, with the validation rules the API server applies to
/// `metav1.Condition` (the k8s-openapi schema lacks them).
pub fn conditions_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "items": {
            "description": "One aspect of the object's current state.",
            "type": "object",
            "properties": {
                "lastTransitionTime": {
                    "description": "When the status of this condition last changed.",
                    "type": "string",
                    "format": "date-time",
                },
                "message": {
                    "description": "Human-readable details about the last transition.",
                    "type": "string",
                    "maxLength": 32768,
                },
                "observedGeneration": {
                    "description": "The metadata.generation this condition was computed for.",
                    "type": "integer",
                    "format": "int64",
                    "minimum": 0,
                },
                "reason": {
                    "description": "Machine-readable CamelCase cause of the last transition.",
                    "type": "string",
                    "maxLength": 1024,
                    "minLength": 1,
                    "pattern": "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
                },
                "status": {
                    "description": "True, False or Unknown.",
                    "type": "string",
                    "enum": ["True", "False", "Unknown"],
                },
                "type": {
                    "description": "Condition type, CamelCase or domain-qualified.",
                    "type": "string",
                    "maxLength": 316,
                    "pattern": "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
                },
            },
            "required": ["lastTransitionTime", "message", "reason", "status", "type"],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(secs).unwrap())
    }

    fn cond(type_: &str, status: &str, reason: &str, msg: &str, t: i64) -> Condition {
        new_condition(type_, status, reason, msg, Some(1), at(t))
    }

    #[test]
    fn set_appends_new_condition() {
        let mut list = Vec::new();
        assert!(set(
            &mut list,
            cond(READY, TRUE, reason::SUCCEEDED, "ok", 10)
        ));
        assert_eq!(list.len(), 1);
        assert!(is_ready(&list));
    }

    #[test]
    fn set_keeps_transition_time_when_status_unchanged() {
        let mut list = vec![cond(READY, FALSE, reason::FAILED, "first", 10)];
        assert!(set(
            &mut list,
            cond(READY, FALSE, reason::BUILD_FAILED, "second", 20)
        ));
        let ready = get(&list, READY).unwrap();
        assert_eq!(ready.last_transition_time, at(10));
        assert_eq!(ready.reason, reason::BUILD_FAILED);
        assert_eq!(ready.message, "second");
        assert_eq!(list.len(), 1);
    }

    #[test]
    fn set_moves_transition_time_when_status_changes() {
        let mut list = vec![cond(READY, FALSE, reason::FAILED, "bad", 10)];
        assert!(set(
            &mut list,
            cond(READY, TRUE, reason::SUCCEEDED, "good", 20)
        ));
        assert_eq!(get(&list, READY).unwrap().last_transition_time, at(20));
        assert!(is_ready(&list));
    }

    #[test]
    fn set_reports_no_change_for_identical_condition() {
        let mut list = vec![cond(READY, TRUE, reason::SUCCEEDED, "good", 10)];
        // Same content, later time: nothing changes, the old time stays.
        assert!(!set(
            &mut list,
            cond(READY, TRUE, reason::SUCCEEDED, "good", 99)
        ));
        assert_eq!(get(&list, READY).unwrap().last_transition_time, at(10));
    }

    #[test]
    fn set_leaves_other_types_alone() {
        let mut list = vec![
            cond(RECONCILING, TRUE, reason::PROGRESSING, "working", 5),
            cond(READY, UNKNOWN, reason::PROGRESSING, "working", 5),
        ];
        set(&mut list, cond(READY, TRUE, reason::SUCCEEDED, "done", 9));
        assert_eq!(list[0].type_, RECONCILING);
        assert_eq!(list[1].status, TRUE);
        assert!(is_reconciling(&list));
    }

    #[test]
    fn remove_and_status_queries() {
        let mut list = vec![
            cond(STALLED, TRUE, "RetriesExceeded", "x", 1),
            cond(READY, FALSE, reason::FAILED, "x", 1),
        ];
        assert!(is_stalled(&list));
        assert!(is_false(&list, READY));
        assert!(!is_ready(&list));
        assert!(remove(&mut list, STALLED));
        assert!(!remove(&mut list, STALLED));
        assert!(!is_stalled(&list));
        assert!(is_unknown(&list, HEALTHY), "absent counts as unknown");
        assert_eq!(status_of(&list, READY), Some(FALSE));
        assert_eq!(status_of(&list, HEALTHY), None);
    }
}
