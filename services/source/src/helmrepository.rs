//! The HelmRepository reconciler.
//!
//! Upstream's pipeline for the `default` type: storage (garbage collection, the advertised
//! artifact still there with its digest), source (the URL normalised, credentials and TLS,
//! `<url>/index.yaml` downloaded within the size limit; the revision is the sha256 of the
//! downloaded bytes, and an unchanged revision stops there; otherwise the index must load) and
//! artifact (the index stored as JSON, `index-<hex>.yaml`, with the `index.yaml` link).
//! `type: oci` repositories are static: their artifacts, finalizer and status are removed.
//! [`run_pipeline`] does it against a [`Lookup`] without an API server;
//! [`HelmRepositoryReconciler`] wires it to Kubernetes, events and the artifact event stream.

use std::collections::BTreeMap;
use std::sync::Arc;

use ferroflux_api::conditions::{self as cond, reason, source_reason};
use ferroflux_api::helmrepository::{HelmRepository, HelmRepositoryStatus};
use ferroflux_api::{Artifact, FluxObject};
use ferroflux_helm::package::index::IndexFile;
use ferroflux_runtime::events::{EventRecorder, Severity};
use ferroflux_runtime::{Outcome, ReconcileContext, ReconcileError, Reconciler};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use sha2::Digest as _;

use crate::artifact_events::ArtifactEventLog;
pub use crate::helm_http::SecretLookup as Lookup;
use crate::helm_http::{self, GetError, Getter, Limit};
use crate::pipeline;
use crate::pipeline::{Conds, ErrorKind, RunRecord, StepError, storage_detail, summarize};
pub use crate::pipeline::{PendingEvent, PipelineResult};
use crate::storage::Storage;

/// Kind name used in storage paths and events.
pub const KIND: &str = "HelmRepository";
/// Status field manager (upstream: the controller name).
pub use crate::pipeline::FIELD_MANAGER;
/// The link next to the index artifact that `status.url` points at.
pub const INDEX_LINK: &str = "index.yaml";
/// Upstream's `--helm-index-max-size` default (50 MiB).
pub const DEFAULT_INDEX_MAX_SIZE: u64 = 50 << 20;

/// Settings shared by every reconcile.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `--helm-index-max-size`.
    pub index_max_size: u64,
    /// The parsed-index cache shared with the HelmChart reconciler (`--helm-cache-max-size`).
    pub cache: Option<crate::helm_cache::IndexCache>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            index_max_size: DEFAULT_INDEX_MAX_SIZE,
            cache: None,
        }
    }
}

/// Everything a reconcile produced.
#[derive(Clone, Debug)]
pub struct PipelineOutput {
    pub status: HelmRepositoryStatus,
    pub result: PipelineResult,
    pub events: Vec<PendingEvent>,
    /// Set when a new artifact was written.
    pub new_artifact: Option<Artifact>,
}

/// The index limit as upstream words it.
pub fn index_limit(max: u64) -> Limit {
    Limit {
        max,
        what: "index",
        limit_name: "index file size",
    }
}

/// What the source step found.
struct Fetched {
    revision: String,
    /// `None` when the revision is the stored one (nothing to write).
    index: Option<IndexFile>,
}

struct Run<'a, L: Lookup> {
    obj: &'a HelmRepository,
    storage: &'a Storage,
    lookup: &'a L,
    settings: &'a Settings,
    status: HelmRepositoryStatus,
    conds: Vec<Condition>,
    events: Vec<PendingEvent>,
    new_artifact: Option<Artifact>,
    fetched: Option<Fetched>,
}

fn has_revision(status: &HelmRepositoryStatus, revision: &str) -> bool {
    status
        .artifact
        .as_ref()
        .is_some_and(|a| a.revision == revision)
}

impl<L: Lookup> RunRecord for Run<'_, L> {
    fn record(&mut self) -> (&mut Vec<Condition>, &mut Vec<PendingEvent>, Option<i64>) {
        (
            &mut self.conds,
            &mut self.events,
            self.obj.meta().generation,
        )
    }
}

impl<L: Lookup> Run<'_, L> {
    fn url(&self) -> String {
        self.obj.spec.url.clone().unwrap_or_default()
    }

    /// Step 1: garbage collection and the advertised artifact.
    async fn reconcile_storage(&mut self) -> Result<(), StepError> {
        let conds = Conds {
            list: &mut self.conds,
            generation: self.obj.meta().generation,
        };
        pipeline::reconcile_storage(
            self.storage,
            &mut self.status.artifact,
            Some((&mut self.status.url, INDEX_LINK)),
            conds,
            &mut self.events,
        )
        .await
    }

    /// Step 2: the index, its revision, and whether it is new.
    async fn reconcile_source(&mut self) -> Result<(), StepError> {
        let url = self.url();
        if helm_http::is_oci(&url) {
            let e = StepError::stalling(
                source_reason::URL_INVALID,
                "invalid Helm repository URL: 'oci' URL scheme cannot be used with 'default' HelmRepository type",
            );
            return Err(self.fetch_failed(e));
        }
        let normalized = match helm_http::normalize_url(&url) {
            Ok(u) => u,
            Err(e) => {
                let e = StepError::stalling(
                    source_reason::URL_INVALID,
                    format!("invalid Helm repository URL: {e}"),
                );
                return Err(self.fetch_failed(e));
            }
        };
        let opts = match helm_http::client_options(self.lookup, self.obj, &normalized).await {
            Ok(o) => o,
            Err(e) => {
                let e = StepError::generic(source_reason::AUTHENTICATION_FAILED, e);
                return Err(self.fetch_failed(e));
            }
        };
        let getter = match Getter::new(opts) {
            Ok(g) => g,
            Err(e) => {
                let e = StepError::stalling(
                    reason::FAILED,
                    format!("failed to construct Helm client: {e}"),
                );
                return Err(self.fetch_failed(e));
            }
        };
        let index_url = match helm_http::index_url(&normalized) {
            Ok(u) => u,
            Err(e) => {
                let e = StepError::stalling(
                    source_reason::URL_INVALID,
                    format!("invalid Helm repository URL: {e}"),
                );
                return Err(self.fetch_failed(e));
            }
        };
        let limit = index_limit(self.settings.index_max_size);
        let data = match getter.get(&index_url, limit).await {
            Ok(d) => d,
            Err(e) => {
                let detail = match &e {
                    GetError::TooLarge { .. } => e.to_string(),
                    _ => format!("failed to cache index to temporary file: {e}"),
                };
                let e = StepError::generic(
                    reason::FAILED,
                    format!("failed to fetch Helm repository index: {detail}"),
                );
                return Err(self.fetch_failed(e));
            }
        };
        let revision = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&data)));

        // Short-circuit: the stored artifact is this very index.
        if has_revision(&self.status, &revision) {
            self.c().delete(cond::FETCH_FAILED);
            self.fetched = Some(Fetched {
                revision,
                index: None,
            });
            return Ok(());
        }

        let index = match tokio::task::spawn_blocking(move || IndexFile::from_bytes(&data)).await {
            Ok(Ok(i)) => i,
            Ok(Err(e)) => {
                let e = StepError::generic(
                    source_reason::INDEXATION_FAILED,
                    format!(
                        "failed to load Helm repository from index YAML: failed to load index: {e}"
                    ),
                );
                return Err(self.fetch_failed(e));
            }
            Err(e) => {
                let e = StepError::generic(
                    source_reason::INDEXATION_FAILED,
                    format!("failed to load Helm repository from index YAML: {e}"),
                );
                return Err(self.fetch_failed(e));
            }
        };
        self.c().delete(cond::FETCH_FAILED);

        let message = format!("new index revision '{revision}'");
        if self.status.artifact.is_some() {
            self.c().mark_true(
                cond::ARTIFACT_OUTDATED,
                source_reason::NEW_REVISION,
                &message,
            );
        }
        self.c().progressive(
            true,
            reason::PROGRESSING,
            &format!("building artifact: {message}"),
        );
        self.fetched = Some(Fetched {
            revision,
            index: Some(index),
        });
        Ok(())
    }

    /// Step 3: the JSON index in storage and the `index.yaml` link.
    async fn reconcile_artifact(&mut self) -> Result<(), StepError> {
        let Some(fetched) = self.fetched.take() else {
            return Ok(());
        };
        let revision = fetched.revision.clone();
        let result = self.write_artifact(fetched).await;
        if has_revision(&self.status, &revision) {
            self.c().delete(cond::ARTIFACT_OUTDATED);
            self.c().mark_true(
                cond::ARTIFACT_IN_STORAGE,
                reason::SUCCEEDED,
                &format!("stored artifact: revision '{revision}'"),
            );
        }
        result
    }

    async fn write_artifact(&mut self, fetched: Fetched) -> Result<(), StepError> {
        let Some(index) = fetched.index else {
            if let (Some(c), Some(a)) = (&self.settings.cache, &self.status.artifact) {
                c.touch(&a.path);
            }
            self.event(
                Severity::Trace,
                source_reason::ARTIFACT_UP_TO_DATE,
                format!(
                    "artifact up-to-date with remote revision: '{}'",
                    fetched.revision
                ),
            );
            return Ok(());
        };
        let hex = fetched
            .revision
            .strip_prefix("sha256:")
            .unwrap_or(&fetched.revision)
            .to_string();
        let mut artifact = self.storage.new_artifact_for(
            KIND,
            &self.obj.namespace().unwrap_or_default(),
            &self.obj.name_any(),
            &fetched.revision,
            &format!("index-{hex}.yaml"),
        );
        if let Err(e) = self.storage.mkdir_all(&artifact) {
            let e = StepError::generic(
                source_reason::DIRECTORY_CREATION_FAILED,
                format!(
                    "failed to create artifact directory: {}",
                    storage_detail(&e)
                ),
            );
            return Err(self.storage_failed(e));
        }
        let _lock = self.storage.lock(&artifact).map_err(|e| {
            StepError::generic(
                reason::FAILED,
                format!(
                    "failed to acquire lock for artifact: {}",
                    storage_detail(&e)
                ),
            )
        })?;
        let json = index.to_json();
        let written = self
            .storage
            .write_bytes(&mut artifact, &json)
            .map_err(|e| format!("unable to save artifact to storage: {}", storage_detail(&e)));
        let pushed = match written {
            Ok(()) => self
                .storage
                .push(&artifact)
                .await
                .map_err(|e| format!("unable to save artifact to storage: {e}")),
            Err(e) => Err(e),
        };
        if let Err(msg) = pushed {
            let e = StepError::generic(source_reason::ARCHIVE_OPERATION_FAILED, msg);
            return Err(self.storage_failed(e));
        }
        self.status.artifact = Some(artifact.clone());
        if let Some(c) = &self.settings.cache
            && let Err(e) = c.set(&artifact.path, Arc::new(index))
        {
            self.event(
                Severity::Trace,
                source_reason::CACHE_OPERATION_FAILED,
                format!("failed to cache index: {e}"),
            );
        }
        match self.storage.symlink(&artifact, INDEX_LINK) {
            Ok(url) => self.status.url = Some(url),
            Err(e) => self.event(
                Severity::Trace,
                source_reason::SYMLINK_UPDATE_FAILED,
                format!(
                    "failed to update status URL symlink: {}",
                    storage_detail(&e)
                ),
            ),
        }
        self.c().delete(cond::STORAGE_OPERATION_FAILED);
        self.new_artifact = Some(artifact);
        Ok(())
    }
}

/// go-units' `HumanSize`: decimal units, four significant digits, no space.
pub fn human_size(size: f64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut s = size;
    let mut i = 0;
    while s >= 1000.0 && i < UNITS.len() - 1 {
        s /= 1000.0;
        i += 1;
    }
    format!("{}{}", go_g4(s), UNITS[i])
}

/// Go's `%.4g` for values in [0, 1000).
fn go_g4(v: f64) -> String {
    if v == 0.0 {
        return "0".to_string();
    }
    let exp = v.abs().log10().floor() as i32;
    let decimals = (3 - exp).max(0) as usize;
    let mut s = format!("{v:.decimals$}");
    // Rounding may have added a digit (999.95 -> 1000.0): %g then keeps four digits.
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    s
}

/// Upstream's notify: NewArtifact on a new digest, Succeeded on recovery from a failure.
fn notify(
    obj: &HelmRepository,
    old: &HelmRepositoryStatus,
    old_conds: &[Condition],
    new: &HelmRepositoryStatus,
    new_conds: &[Condition],
) -> Option<PendingEvent> {
    let artifact = new.artifact.as_ref()?;
    let size = match artifact.size {
        Some(s) => format!("size {}", human_size(s as f64)),
        None => "unknown size".to_string(),
    };
    let message = format!(
        "stored fetched index of {size} from '{}'",
        helm_http::redact(obj.spec.url.as_deref().unwrap_or_default())
    );
    pipeline::stored_artifact_event(
        old.artifact.as_ref(),
        old_conds,
        artifact,
        new_conds,
        message,
    )
}

/// Runs one reconcile of a `default` type `obj` (not being deleted, not suspended).
pub async fn run_pipeline<L: Lookup>(
    obj: &HelmRepository,
    storage: &Storage,
    lookup: &L,
    settings: &Settings,
) -> PipelineOutput {
    let old_status = obj.status.clone().unwrap_or_default();
    let old_conds = old_status.conditions.clone().unwrap_or_default();
    let mut status = old_status.clone();
    let conds = status.conditions.take().unwrap_or_default();
    let mut run = Run {
        obj,
        storage,
        lookup,
        settings,
        status,
        conds,
        events: Vec::new(),
        new_artifact: None,
        fetched: None,
    };
    let generation = obj.meta().generation;
    run.c()
        .progressive(false, reason::PROGRESSING, "reconciliation in progress");
    if generation != run.status.observed_generation {
        let msg = format!(
            "processing object: new generation {} -> {}",
            run.status.observed_generation.unwrap_or(-1),
            generation.unwrap_or(0)
        );
        run.c().progressive(false, reason::PROGRESSING, &msg);
    }

    let timeout = obj.effective_timeout();
    let steps = async {
        run.reconcile_storage().await?;
        match tokio::time::timeout(timeout, run.reconcile_source()).await {
            Ok(r) => r?,
            Err(_) => {
                let e = StepError::generic(
                    reason::FAILED,
                    format!(
                        "failed to fetch Helm repository index: context deadline exceeded (timeout {})",
                        ferroflux_api::duration::format_go(timeout)
                    ),
                );
                return Err(run.fetch_failed(e));
            }
        }
        run.reconcile_artifact().await
    };
    let result = steps.await;
    ferroflux_runtime::memory::trim();

    let result = match result {
        Ok(()) => PipelineResult::Success,
        Err(e) if e.kind == ErrorKind::Done => PipelineResult::Success,
        Err(e) => {
            run.event(Severity::Error, &e.reason, e.message.clone());
            match e.kind {
                ErrorKind::Stalling => PipelineResult::Stalled {
                    reason: e.reason,
                    message: e.message,
                },
                _ => PipelineResult::Failed {
                    reason: e.reason,
                    message: e.message,
                },
            }
        }
    };

    let Run {
        mut status,
        mut conds,
        mut events,
        new_artifact,
        ..
    } = run;
    summarize(
        &mut conds,
        &mut status.observed_generation,
        generation,
        &result,
    );
    if result == PipelineResult::Success
        && let Some(ev) = notify(obj, &old_status, &old_conds, &status, &conds)
    {
        events.push(ev);
    }
    status.conditions = Some(conds);
    if let Some(token) = obj.reconcile_requested_at() {
        status.last_handled_reconcile_at = Some(token.to_string());
    }
    PipelineOutput {
        status,
        result,
        events,
        new_artifact,
    }
}

/// Upstream's `HelmRepositoryOCIRequireMigration`: a `type: oci` repository still carrying the
/// finalizer or any status.
pub fn oci_needs_migration(obj: &HelmRepository) -> bool {
    let has_finalizer = obj
        .finalizers()
        .iter()
        .any(|f| f == ferroflux_runtime::driver::FINALIZER);
    let empty = obj.status.as_ref().is_none_or(|s| {
        s.observed_generation.unwrap_or(0) == 0
            && s.conditions.is_none()
            && s.url.as_deref().unwrap_or("").is_empty()
            && s.artifact.is_none()
            && s.last_handled_reconcile_at
                .as_deref()
                .unwrap_or("")
                .is_empty()
    });
    has_finalizer || !empty
}

/// The status of a static repository: nothing at all.
pub fn static_status() -> HelmRepositoryStatus {
    HelmRepositoryStatus {
        observed_generation: None,
        ..Default::default()
    }
}

/// Secrets from the API server.
#[derive(Clone)]
pub struct KubeLookup {
    pub client: kube::Client,
}

impl Lookup for KubeLookup {
    async fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, Vec<u8>>>, String> {
        let api: Api<k8s_openapi::api::core::v1::Secret> =
            Api::namespaced(self.client.clone(), namespace);
        match api.get_opt(name).await {
            Ok(Some(s)) => Ok(Some(
                s.data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.0))
                    .collect(),
            )),
            Ok(None) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// The HelmRepository reconciler run by the driver.
#[derive(Clone)]
pub struct HelmRepositoryReconciler {
    pub storage: Storage,
    pub events: ArtifactEventLog,
    pub recorder: EventRecorder,
    pub settings: Settings,
}

impl HelmRepositoryReconciler {
    /// Upstream's `migrationToStatic`: artifacts removed, finalizer dropped, status emptied.
    async fn make_static(
        &self,
        obj: &HelmRepository,
        ctx: &ReconcileContext,
    ) -> Result<Outcome, ReconcileError> {
        if !oci_needs_migration(obj) {
            return Ok(Outcome::AwaitChange);
        }
        crate::pipeline::collect_garbage(&self.storage, &self.recorder, KIND, obj).await?;
        let api: Api<HelmRepository> =
            Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
        let old = obj.status.clone().unwrap_or_default();
        ferroflux_runtime::status::patch_status(
            &api,
            &obj.name_any(),
            FIELD_MANAGER,
            &old,
            &static_status(),
        )
        .await
        .map_err(|e| ReconcileError::new(format!("failed to patch status: {e}")))?;
        let finalizers: Vec<String> = obj
            .finalizers()
            .iter()
            .filter(|f| *f != ferroflux_runtime::driver::FINALIZER)
            .cloned()
            .collect();
        if finalizers.len() != obj.finalizers().len() {
            let patch = serde_json::json!({"metadata": {"finalizers": finalizers}});
            api.patch(
                &obj.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .map_err(|e| ReconcileError::new(format!("failed to update finalizers: {e}")))?;
        }
        Ok(Outcome::AwaitChange)
    }
}

impl Reconciler<HelmRepository> for HelmRepositoryReconciler {
    async fn reconcile(
        &self,
        obj: Arc<HelmRepository>,
        ctx: ReconcileContext,
    ) -> Result<Outcome, ReconcileError> {
        if obj.is_oci() {
            return self.make_static(&obj, &ctx).await;
        }
        let lookup = KubeLookup {
            client: ctx.client.clone(),
        };
        let out = run_pipeline(&obj, &self.storage, &lookup, &self.settings).await;
        crate::pipeline::report(
            &ctx.client,
            &self.recorder,
            &self.events,
            KIND,
            obj.as_ref(),
            &obj.status.clone().unwrap_or_default(),
            &out.status,
            &out.events,
            out.new_artifact.as_ref(),
        )
        .await?;
        match crate::pipeline::outcome(out.result)? {
            // `interval` is optional: one minute when absent.
            Outcome::RequeueAtInterval if obj.interval().is_none() => Ok(Outcome::RequeueAfter(
                ferroflux_runtime::driver::jittered(obj.requeue_after(), 5),
            )),
            o => Ok(o),
        }
    }

    async fn cleanup(
        &self,
        obj: Arc<HelmRepository>,
        _ctx: ReconcileContext,
    ) -> Result<(), ReconcileError> {
        crate::pipeline::collect_garbage(&self.storage, &self.recorder, KIND, obj.as_ref()).await
    }

    fn adds_finalizer(&self, obj: &HelmRepository) -> bool {
        !obj.is_oci()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_go_units() {
        assert_eq!(human_size(500.0), "500B");
        assert_eq!(human_size(1234.0), "1.234kB");
        assert_eq!(human_size(12345.0), "12.35kB");
        assert_eq!(human_size(52_428_800.0), "52.43MB");
        assert_eq!(human_size(0.0), "0B");
    }
}
