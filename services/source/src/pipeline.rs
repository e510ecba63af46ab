//! What every source reconciler shares: the events and result of one run, failed steps with
//! their upstream reason, condition editing, and the summary that derives Ready, Reconciling and
//! Stalled from the step conditions (upstream's summarize helper), so every kind reports
//! readiness the same way.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferroflux_api::Artifact;
use ferroflux_api::conditions::{self as cond, reason, source_reason};
use ferroflux_runtime::events::Severity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::storage::{Storage, StorageError};

/// An event the pipeline wants published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingEvent {
    pub severity: Severity,
    pub reason: String,
    pub message: String,
    pub metadata: BTreeMap<String, String>,
}

/// How a reconcile ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PipelineResult {
    /// Success: requeue at the interval.
    Success,
    /// A failure that a retry may fix (backoff).
    Failed { reason: String, message: String },
    /// Waiting for a dependency (requeue after the delay).
    Waiting {
        reason: String,
        message: String,
        after: Duration,
    },
    /// A failure only a spec change can fix (no requeue).
    Stalled { reason: String, message: String },
}

impl PendingEvent {
    /// An event without metadata.
    pub(crate) fn new(severity: Severity, reason: &str, message: impl Into<String>) -> Self {
        PendingEvent {
            severity,
            reason: reason.to_string(),
            message: message.into(),
            metadata: BTreeMap::new(),
        }
    }
}

/// Step 1 of every source kind: the advertised artifact brought from shared storage (another
/// replica may have built it), older artifacts garbage collected, the artifact checked for
/// presence and integrity (a corrupt one is removed and rebuilt), and its URLs advertised.
/// `url` is the kind's `status.url` with the name of the link kept next to the artifact that it
/// points at, for the kinds that have one. Without an artifact the object is marked as building
/// one and ArtifactInStorage is removed.
pub(crate) async fn reconcile_storage(
    storage: &Storage,
    artifact: &mut Option<Artifact>,
    mut url: Option<(&mut Option<String>, &str)>,
    mut conds: Conds<'_>,
    events: &mut Vec<PendingEvent>,
) -> Result<(), StepError> {
    if let Some(a) = artifact.clone() {
        storage.restore(&a.path).await;
        if let Ok(removed) = storage.garbage_collect(&a)
            && !removed.is_empty()
        {
            storage.forget_remote(&removed).await;
            events.push(PendingEvent::new(
                Severity::Trace,
                "GarbageCollectionSucceeded",
                format!("garbage collected {} artifacts", removed.len()),
            ));
        }
    }
    let mut missing = false;
    if let Some(a) = artifact.clone() {
        if !storage.artifact_exist(&a) {
            missing = true;
        } else if let Err(e) = storage.verify_artifact(&a) {
            events.push(PendingEvent::new(
                Severity::Error,
                source_reason::ARTIFACT_VERIFICATION_FAILED,
                format!("failed to verify integrity of artifact: {e}"),
            ));
            storage.remove(&a).map_err(|e| {
                StepError::generic(
                    reason::FAILED,
                    format!("failed to remove artifact after digest mismatch: {e}"),
                )
            })?;
            missing = true;
        }
        if missing {
            *artifact = None;
            if let Some((url, _)) = url.as_mut() {
                **url = None;
            }
        }
    }
    let Some(a) = artifact.as_mut() else {
        let msg = if missing {
            "building artifact: disappeared from storage"
        } else {
            "building artifact"
        };
        conds.progressive(true, reason::PROGRESSING, msg);
        conds.delete(cond::ARTIFACT_IN_STORAGE);
        return Ok(());
    };
    storage.set_artifact_url(a);
    if let Some((url, link)) = url
        && url.is_some()
    {
        // The link sits next to the artifact; its URL follows the advertised address.
        let rel = match a.path.rsplit_once('/') {
            Some((dir, _)) => format!("{dir}/{link}"),
            None => link.to_string(),
        };
        *url = Some(storage.url_for(&rel));
    }
    Ok(())
}

/// A failed step: the upstream reason, a one-line message, and how to retry.
#[derive(Debug)]
pub(crate) struct StepError {
    pub(crate) reason: String,
    pub(crate) message: String,
    pub(crate) kind: ErrorKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    Generic,
    Stalling,
    Waiting,
    /// Not an error: stop the pipeline and report success.
    Done,
}

impl StepError {
    pub(crate) fn generic(reason: &str, message: impl Into<String>) -> Self {
        Self {
            reason: reason.to_string(),
            message: one_line(&message.into()),
            kind: ErrorKind::Generic,
        }
    }
    pub(crate) fn stalling(reason: &str, message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Stalling,
            ..Self::generic(reason, message)
        }
    }
    pub(crate) fn waiting(reason: &str, message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Waiting,
            ..Self::generic(reason, message)
        }
    }
}

pub(crate) fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(": ")
}

/// What a source kind's reconcile run records as it goes: the conditions of the object's
/// generation and the events sent at the end. A run gives access to its two lists; the step
/// helpers (condition editing, events, the FetchFailed / StorageOperationFailed marks) are shared.
pub(crate) trait RunRecord {
    /// The conditions being written, the pending events, and the object's generation.
    fn record(&mut self) -> (&mut Vec<Condition>, &mut Vec<PendingEvent>, Option<i64>);

    fn c(&mut self) -> Conds<'_> {
        let (list, _, generation) = self.record();
        Conds { list, generation }
    }

    fn event(&mut self, severity: Severity, reason: &str, message: impl Into<String>) {
        self.record()
            .1
            .push(PendingEvent::new(severity, reason, message));
    }

    /// Marks FetchFailed with the error and returns it.
    fn fetch_failed(&mut self, e: StepError) -> StepError {
        self.c()
            .mark_true(cond::FETCH_FAILED, &e.reason, &e.message);
        e
    }

    /// Marks StorageOperationFailed with the error and returns it.
    fn storage_failed(&mut self, e: StepError) -> StepError {
        self.c()
            .mark_true(cond::STORAGE_OPERATION_FAILED, &e.reason, &e.message);
        e
    }
}

/// Conditions being edited for one object generation.
pub(crate) struct Conds<'a> {
    pub(crate) list: &'a mut Vec<Condition>,
    pub(crate) generation: Option<i64>,
}

impl Conds<'_> {
    pub(crate) fn mark(&mut self, type_: &str, status: &str, reason: &str, message: &str) {
        cond::set(
            self.list,
            cond::new_condition(type_, status, reason, message, self.generation, now()),
        );
    }
    pub(crate) fn mark_true(&mut self, type_: &str, reason: &str, message: &str) {
        self.mark(type_, cond::TRUE, reason, message);
    }
    pub(crate) fn mark_false(&mut self, type_: &str, reason: &str, message: &str) {
        self.mark(type_, cond::FALSE, reason, message);
    }
    pub(crate) fn delete(&mut self, type_: &str) {
        cond::remove(self.list, type_);
    }
    pub(crate) fn is_true(&self, type_: &str) -> bool {
        cond::is_true(self.list, type_)
    }
    pub(crate) fn is_false(&self, type_: &str) -> bool {
        cond::is_false(self.list, type_)
    }
    /// Upstream's ProgressiveStatus: Reconciling (optionally) and Ready=Unknown, same words.
    pub(crate) fn progressive(&mut self, reconciling: bool, reason: &str, message: &str) {
        if reconciling {
            self.mark_true(cond::RECONCILING, reason, message);
        }
        if !self.is_false(cond::READY) {
            self.mark(cond::READY, cond::UNKNOWN, reason, message);
        }
    }
}

pub(crate) fn now() -> Time {
    Time(jiff::Timestamp::now())
}

/// Negative-polarity conditions in summary priority order.
pub(crate) const NEGATIVE: [&str; 5] = [
    cond::STORAGE_OPERATION_FAILED,
    cond::FETCH_FAILED,
    cond::INCLUDE_UNAVAILABLE,
    cond::BUILD_FAILED,
    cond::ARTIFACT_OUTDATED,
];

/// Derives Ready, Reconciling and Stalled from the step conditions and the result, as upstream's
/// summarize helper does, and sets observedGeneration when the object settled.
pub(crate) fn summarize(
    conds: &mut Vec<Condition>,
    observed_generation: &mut Option<i64>,
    generation: Option<i64>,
    result: &PipelineResult,
) {
    let mut c = Conds {
        list: conds,
        generation,
    };
    match result {
        PipelineResult::Success => {
            c.delete(cond::RECONCILING);
            c.delete(cond::STALLED);
        }
        PipelineResult::Stalled { reason: r, message } => {
            c.delete(cond::RECONCILING);
            c.mark_true(cond::STALLED, r, message);
        }
        PipelineResult::Failed { .. } | PipelineResult::Waiting { .. } => {
            c.delete(cond::STALLED);
            if let Some(rc) = cond::get(c.list, cond::RECONCILING).cloned() {
                c.mark_true(
                    cond::RECONCILING,
                    reason::PROGRESSING_WITH_RETRY,
                    &rc.message,
                );
            }
        }
    }

    let mut ready: Option<(String, String, String)> = None;
    for t in NEGATIVE {
        if let Some(x) = cond::get(c.list, t).filter(|x| x.status == cond::TRUE) {
            ready = Some((cond::FALSE.into(), x.reason.clone(), x.message.clone()));
            break;
        }
    }
    if ready.is_none()
        && let Some(x) =
            cond::get(c.list, cond::SOURCE_VERIFIED).filter(|x| x.status == cond::FALSE)
    {
        ready = Some((cond::FALSE.into(), x.reason.clone(), x.message.clone()));
    }
    if ready.is_none() {
        ready = match result {
            PipelineResult::Success => match cond::get(c.list, cond::ARTIFACT_IN_STORAGE)
                .filter(|x| x.status == cond::TRUE)
            {
                Some(x) => Some((
                    cond::TRUE.into(),
                    reason::SUCCEEDED.into(),
                    x.message.clone(),
                )),
                None => Some((
                    cond::UNKNOWN.into(),
                    reason::PROGRESSING.into(),
                    "reconciliation in progress".into(),
                )),
            },
            PipelineResult::Failed { reason: r, message }
            | PipelineResult::Waiting {
                reason: r, message, ..
            }
            | PipelineResult::Stalled { reason: r, message } => {
                Some((cond::FALSE.into(), r.clone(), message.clone()))
            }
        };
    }
    if let Some((s, r, m)) = ready {
        c.mark(cond::READY, &s, &r, &m);
    }
    let settled = cond::is_true(c.list, cond::READY) || cond::is_true(c.list, cond::STALLED);
    if settled {
        *observed_generation = generation;
    }
}

pub(crate) fn tempdir_in(root: &Path, prefix: &str) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(root)?;
    for _ in 0..16 {
        let suffix: u64 = rand::random();
        let dir = root.join(format!("{prefix}-{suffix:016x}"));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other(
        "unable to create a temporary directory",
    ))
}

/// What every source kind does at the end of a reconcile: the new status merge-patched (as
/// `FIELD_MANAGER`), then its events and its new artifact published (only once the status that
/// advertises the artifact is stored).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn report<K, S>(
    client: &kube::Client,
    recorder: &ferroflux_runtime::events::EventRecorder,
    artifact_events: &crate::artifact_events::ArtifactEventLog,
    kind: &str,
    obj: &K,
    old_status: &S,
    new_status: &S,
    events: &[PendingEvent],
    new_artifact: Option<&ferroflux_api::Artifact>,
) -> Result<(), ferroflux_runtime::ReconcileError>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    S: serde::Serialize,
{
    use kube::ResourceExt;
    let api: kube::Api<K> =
        kube::Api::namespaced(client.clone(), &obj.namespace().unwrap_or_default());
    ferroflux_runtime::status::patch_status(
        &api,
        &obj.name_any(),
        FIELD_MANAGER,
        old_status,
        new_status,
    )
    .await
    .map_err(|e| ferroflux_runtime::ReconcileError::new(format!("failed to patch status: {e}")))?;
    publish(recorder, artifact_events, kind, obj, events, new_artifact).await;
    ferroflux_runtime::memory::note_reconcile();
    Ok(())
}

/// The field manager of source-controller's status patches.
pub const FIELD_MANAGER: &str = "source-controller";

/// Records a reconcile's events and announces its new artifact on the ArtifactEvents stream;
/// the same for every source kind.
async fn publish<K: kube::Resource<DynamicType = ()>>(
    recorder: &ferroflux_runtime::events::EventRecorder,
    artifact_events: &crate::artifact_events::ArtifactEventLog,
    kind: &str,
    obj: &K,
    events: &[PendingEvent],
    new_artifact: Option<&ferroflux_api::Artifact>,
) {
    use kube::ResourceExt;
    for ev in events {
        recorder
            .publish(obj, ev.severity, &ev.reason, &ev.message, &ev.metadata)
            .await;
    }
    if let Some(a) = new_artifact {
        artifact_events.publish(ferroflux_proto::ArtifactEvent {
            sequence: 0,
            kind: kind.to_string(),
            namespace: obj.namespace().unwrap_or_default(),
            name: obj.name_any(),
            revision: a.revision.clone(),
            digest: a.digest.clone(),
            url: a.url.clone(),
            last_update_time: a
                .last_update_time
                .0
                .strftime("%Y-%m-%dT%H:%M:%SZ")
                .to_string(),
            size: a.size.unwrap_or(0),
            metadata: a.metadata.clone().unwrap_or_default().into_iter().collect(),
            generation: obj.meta().generation.unwrap_or(0),
        });
    }
}

/// What the driver does after a reconcile that ended with `result`.
pub(crate) fn outcome(
    result: PipelineResult,
) -> Result<ferroflux_runtime::Outcome, ferroflux_runtime::ReconcileError> {
    use ferroflux_runtime::{Outcome, ReconcileError};
    match result {
        PipelineResult::Success => Ok(Outcome::RequeueAtInterval),
        PipelineResult::Waiting { after, .. } => Ok(Outcome::RequeueAfter(after)),
        PipelineResult::Stalled { .. } => Ok(Outcome::AwaitChange),
        PipelineResult::Failed { message, .. } => Err(ReconcileError::new(message)),
    }
}

/// Removes a deleted object's artifacts (shared storage first, then local) and records the
/// garbage collection; the same for every source kind.
pub(crate) async fn collect_garbage<K: kube::Resource<DynamicType = ()>>(
    storage: &crate::storage::Storage,
    recorder: &ferroflux_runtime::events::EventRecorder,
    kind: &str,
    obj: &K,
) -> Result<(), ferroflux_runtime::ReconcileError> {
    use ferroflux_runtime::ReconcileError;
    use kube::ResourceExt;
    let (ns, name) = (obj.namespace().unwrap_or_default(), obj.name_any());
    let failed = |e: &dyn std::fmt::Display| {
        ReconcileError::new(format!(
            "garbage collection for deleted resource failed: {e}"
        ))
    };
    storage
        .remove_all_remote(kind, &ns, &name)
        .await
        .map_err(|e| failed(&e))?;
    match storage.remove_all(kind, &ns, &name) {
        Ok(Some(_)) => {
            recorder
                .publish(
                    obj,
                    Severity::Trace,
                    "GarbageCollectionSucceeded",
                    "garbage collected artifacts for deleted resource",
                    &BTreeMap::new(),
                )
                .await;
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(e) => Err(failed(&e)),
    }
}

/// The inner message of a storage error (without its own prefix, which the caller words).
pub(crate) fn storage_detail(e: &StorageError) -> String {
    match e {
        StorageError::Archive(m) => m.clone(),
        StorageError::DirCreation(e) | StorageError::Lock(e) | StorageError::Read(e) => {
            e.to_string()
        }
        other => other.to_string(),
    }
}

/// Upstream's notify for a stored artifact: `NewArtifact` when the digest changed, `Succeeded`
/// when a fetch or storage failure has just cleared, no event otherwise.
pub(crate) fn stored_artifact_event(
    old: Option<&Artifact>,
    old_conds: &[Condition],
    new: &Artifact,
    new_conds: &[Condition],
    message: String,
) -> Option<PendingEvent> {
    let reason = if old.map(|a| a.digest.as_str()) != Some(new.digest.as_str()) {
        source_reason::NEW_ARTIFACT
    } else {
        let failing = |c: &[Condition]| {
            [cond::FETCH_FAILED, cond::STORAGE_OPERATION_FAILED]
                .iter()
                .any(|t| cond::is_true(c, t))
        };
        if failing(old_conds) && !failing(new_conds) {
            reason::SUCCEEDED
        } else {
            return None;
        }
    };
    Some(PendingEvent {
        severity: Severity::Info,
        reason: reason.to_string(),
        message,
        metadata: BTreeMap::from([
            ("revision".to_string(), new.revision.clone()),
            ("digest".to_string(), new.digest.clone()),
        ]),
    })
}
