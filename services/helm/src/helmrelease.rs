//! The HelmRelease reconciler: chart source → values → chart download (digest checked) →
//! failure counters and last-attempt fields → the atomic release (`reconcile.rs`: release
//! state, install/upgrade/test/rollback/uninstall/unlock/drift correction, conditions) →
//! status patch and requeue; uninstall on deletion.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferroflux_api::conditions::{self as cond, helm_reason, reason};
use ferroflux_api::duration::format_go;
use ferroflux_api::helmrelease::{ChartRefKind, HelmReleaseStatus};
use ferroflux_api::kustomization::ValuesSourceKind;
use ferroflux_api::{Artifact, ExternalArtifact, HelmChart, HelmRelease, OCIRepository};
use ferroflux_helm::release as hr;
use ferroflux_runtime::artifact::{ArtifactError, ArtifactFetcher, UntarLimits};
use ferroflux_runtime::events::{EventRecorder, Severity};
use ferroflux_runtime::{Outcome, ReconcileContext, ReconcileError, Reconciler};
use ferroflux_ssa::{Owner, ResourceManager};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::{Map, Value};

use crate::reconcile::{AtomicEnd, release_ref};

/// Field manager of applied objects (Helm's kube client in helm-controller).
pub const FIELD_MANAGER: &str = "helm-controller";
/// Field manager of status patches.
pub const STATUS_MANAGER: &str = "gotk-helm-controller";
/// API group of HelmRelease (labels, event metadata).
pub const GROUP: &str = "helm.toolkit.fluxcd.io";
/// Requeue after a remediation (upstream's `Requeue: true`).
const MUST_REQUEUE: Duration = Duration::from_secs(1);
const SOURCE_REQUEUE: Duration = Duration::from_secs(30);

/// Behaviour chosen by flags and feature gates.
#[derive(Clone, Debug)]
pub struct Settings {
    pub no_cross_namespace_refs: bool,
    pub allow_external_artifact: bool,
    pub disable_chart_digest_tracking: bool,
    /// `SOURCE_CONTROLLER_LOCALHOST`: host[:port] replacing the artifact URL's host.
    pub source_localhost: Option<String>,
    /// Poll interval of the wait for the release's objects.
    pub wait_interval: Duration,
    /// `--requeue-dependency`: retry interval while dependencies are not ready.
    pub requeue_dependency: Duration,
    /// `AdditiveCELDependencyCheck`: readyExpr and the Ready check both apply.
    pub additive_cel_dependency_check: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            no_cross_namespace_refs: false,
            allow_external_artifact: true,
            disable_chart_digest_tracking: false,
            source_localhost: None,
            wait_interval: Duration::from_secs(2),
            requeue_dependency: Duration::from_secs(30),
            additive_cel_dependency_check: false,
        }
    }
}

/// The reconciler's shared parts.
pub struct HelmReleaseReconciler {
    pub settings: Settings,
    pub recorder: EventRecorder,
    pub fetcher: ArtifactFetcher,
    pub scratch_root: PathBuf,
    pub discovery: ferroflux_ssa::discovery::DiscoveryCache,
}

/// The status being built.
pub(crate) struct Writer {
    api: Api<HelmRelease>,
    name: String,
    generation: Option<i64>,
    pub(crate) status: HelmReleaseStatus,
    written: HelmReleaseStatus,
}

impl Writer {
    pub(crate) fn mark(&mut self, type_: &str, st: &str, reason: &str, message: &str) {
        let g = self.generation;
        cond::set(
            self.status.conditions.get_or_insert_with(Vec::new),
            cond::new_condition(type_, st, reason, message, g, now()),
        );
    }
    pub(crate) fn delete(&mut self, type_: &str) {
        cond::remove(self.status.conditions.get_or_insert_with(Vec::new), type_);
    }
    pub(crate) fn condition(&self, type_: &str) -> Option<&Condition> {
        self.status
            .conditions
            .as_deref()
            .and_then(|c| cond::get(c, type_))
    }
    fn ready_reason(&self) -> String {
        self.condition(cond::READY)
            .map(|c| c.reason.clone())
            .unwrap_or_default()
    }
    pub(crate) async fn patch(&mut self) -> Result<(), String> {
        ferroflux_runtime::status::patch_status(
            &self.api,
            &self.name,
            STATUS_MANAGER,
            &self.written,
            &self.status,
        )
        .await
        .map_err(|e| format!("failed to update status: {e}"))?;
        self.written = self.status.clone();
        Ok(())
    }
}

fn now() -> Time {
    Time(jiff::Timestamp::now())
}

/// How a reconcile ended.
enum Ending {
    Ready,
    Failed,
    Wait(Duration),
    /// Stalled: the Stalled condition is set (or is set from Ready).
    Stalled,
    /// Requeue soon, status observed generation not updated (upstream `Requeue`).
    Requeue(Duration),
    /// An error that changed nothing: retried with backoff.
    Error(String),
}

/// What the chart source gave.
struct ChartSource {
    artifact: Artifact,
    /// `<kind> <ns>/<name>` for messages; `ns/name` of a HelmChart for `status.helmChart`.
    helm_chart: Option<String>,
    oci: bool,
}

/// The desired release: chart, values and their digests.
pub(crate) struct Desired {
    pub(crate) chart_dir: PathBuf,
    pub(crate) chart_name: String,
    pub(crate) chart_version: String,
    pub(crate) app_version: String,
    pub(crate) values: Map<String, Value>,
    pub(crate) config_digest: String,
    pub(crate) oci_digest: Option<String>,
}

pub use crate::history::config_digest;

/// The chart directory inside an unpacked artifact: the root when it holds Chart.yaml, else
/// the one directory that does (a packaged chart).
fn chart_dir(root: &Path) -> Option<PathBuf> {
    if root.join("Chart.yaml").is_file() {
        return Some(root.to_path_buf());
    }
    std::fs::read_dir(root)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.is_dir() && p.join("Chart.yaml").is_file())
}

impl HelmReleaseReconciler {
    pub(crate) async fn event(
        &self,
        obj: &HelmRelease,
        severity: Severity,
        reason: &str,
        message: &str,
        desired: Option<&Desired>,
    ) {
        let mut meta = BTreeMap::new();
        if let Some(d) = desired {
            meta.insert(format!("{GROUP}/revision"), d.chart_version.clone());
            meta.insert(format!("{GROUP}/token"), d.config_digest.clone());
            if !d.app_version.is_empty() {
                meta.insert(format!("{GROUP}/app-version"), d.app_version.clone());
            }
            if let Some(o) = &d.oci_digest {
                meta.insert(format!("{GROUP}/oci-digest"), o.clone());
            }
        }
        self.recorder
            .publish(obj, severity, reason, message, &meta)
            .await;
    }

    fn artifact_url(&self, url: &str) -> String {
        let Some(host) = self
            .settings
            .source_localhost
            .as_deref()
            .filter(|h| !h.is_empty())
        else {
            return url.to_string();
        };
        match url.split_once("://") {
            Some((scheme, rest)) => {
                let path = rest.find('/').map(|i| &rest[i..]).unwrap_or("");
                format!("{scheme}://{host}{path}")
            }
            None => url.to_string(),
        }
    }

    pub(crate) fn manager(&self, client: Client) -> ResourceManager {
        ResourceManager::new(
            client,
            Owner {
                field_manager: FIELD_MANAGER.to_string(),
                group: GROUP.to_string(),
            },
        )
        .with_discovery(self.discovery.clone())
    }

    /// The chart source's artifact; `Err((reason, message, requeue))`.
    async fn source(
        &self,
        obj: &HelmRelease,
        client: &Client,
    ) -> Result<ChartSource, (String, String)> {
        let own_ns = obj.namespace().unwrap_or_default();
        let Some(r) = &obj.spec.chart_ref else {
            // spec.chart: the HelmChart the template made (crate::chart_template)
            let current = crate::chart_template::chart_ref(obj);
            let (chart, name) =
                crate::chart_template::template_source(client, Some(&current)).await?;
            return Ok(ChartSource {
                artifact: chart
                    .status
                    .and_then(|s| s.artifact)
                    .ok_or((helm_reason::SOURCE_NOT_READY.to_string(), current))?,
                helm_chart: Some(name),
                oci: false,
            });
        };
        let ns = r
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| own_ns.clone());
        let kind = r.kind.as_str().to_string();
        if self.settings.no_cross_namespace_refs && ns != own_ns {
            return Err((
                reason::ACCESS_DENIED.into(),
                format!(
                    "can't access '{kind}/{ns}/{}', cross-namespace references have been blocked",
                    r.name
                ),
            ));
        }
        let not_found = |e: kube::Error| match e {
            kube::Error::Api(ae) if ae.code == 404 => (
                helm_reason::SOURCE_NOT_READY.to_string(),
                format!(
                    "could not get Source object: {kind} '{ns}/{}' not found",
                    r.name
                ),
            ),
            e => (
                helm_reason::SOURCE_NOT_READY.to_string(),
                format!("could not get Source object: {e}"),
            ),
        };
        let (artifact, helm_chart, oci) = match r.kind {
            ChartRefKind::OCIRepository => {
                let src = Api::<OCIRepository>::namespaced(client.clone(), &ns)
                    .get(&r.name)
                    .await
                    .map_err(not_found)?;
                (src.status.and_then(|s| s.artifact), None, true)
            }
            ChartRefKind::HelmChart => {
                let src = Api::<HelmChart>::namespaced(client.clone(), &ns)
                    .get(&r.name)
                    .await
                    .map_err(not_found)?;
                // status.helmChart names only a template's chart (upstream)
                (src.status.and_then(|s| s.artifact), None, false)
            }
            ChartRefKind::ExternalArtifact => {
                if !self.settings.allow_external_artifact {
                    return Err((
                        reason::ACCESS_DENIED.into(),
                        format!(
                            "can't access '{kind}/{ns}/{}', ExternalArtifact feature gate is disabled",
                            r.name
                        ),
                    ));
                }
                let src = Api::<ExternalArtifact>::namespaced(client.clone(), &ns)
                    .get(&r.name)
                    .await
                    .map_err(not_found)?;
                (src.status.and_then(|s| s.artifact), None, false)
            }
            ChartRefKind::Other(ref other) => {
                return Err((
                    helm_reason::RECONCILE_ERROR.into(),
                    format!("unsupported source kind '{other}'"),
                ));
            }
        };
        let Some(artifact) = artifact else {
            return Err((
                helm_reason::SOURCE_NOT_READY.into(),
                format!("{kind} '{ns}/{}' is not ready: artifact not found", r.name),
            ));
        };
        Ok(ChartSource {
            artifact,
            helm_chart,
            oci,
        })
    }

    /// valuesFrom in order, then spec.values on top.
    async fn values(
        &self,
        obj: &HelmRelease,
        client: &Client,
    ) -> Result<Map<String, Value>, String> {
        let ns = obj.namespace().unwrap_or_default();
        let mut result = Map::new();
        for r in obj.spec.values_from.iter().flatten() {
            let key = r
                .values_key
                .clone()
                .filter(|k| !k.is_empty())
                .unwrap_or_else(|| "values.yaml".into());
            let optional = r.optional.unwrap_or(false);
            let kind = match r.kind {
                ValuesSourceKind::ConfigMap => "ConfigMap",
                ValuesSourceKind::Secret => "Secret",
            };
            let data: Option<String> = match r.kind {
                ValuesSourceKind::ConfigMap => {
                    match Api::<ConfigMap>::namespaced(client.clone(), &ns)
                        .get_opt(&r.name)
                        .await
                    {
                        Ok(Some(cm)) => match cm.data.and_then(|mut d| d.remove(&key)) {
                            Some(v) => Some(v),
                            None if optional => None,
                            None => {
                                return Err(format!(
                                    "missing key '{key}' in {kind} '{ns}/{}'",
                                    r.name
                                ));
                            }
                        },
                        Ok(None) if optional => None,
                        Ok(None) => {
                            return Err(format!("could not find {kind} '{ns}/{}'", r.name));
                        }
                        Err(e) => {
                            return Err(format!("could not get {kind} '{ns}/{}': {e}", r.name));
                        }
                    }
                }
                ValuesSourceKind::Secret => {
                    match Api::<Secret>::namespaced(client.clone(), &ns)
                        .get_opt(&r.name)
                        .await
                    {
                        Ok(Some(s)) => match s.data.and_then(|mut d| d.remove(&key)) {
                            Some(v) => Some(String::from_utf8_lossy(&v.0).into_owned()),
                            None if optional => None,
                            None => {
                                return Err(format!(
                                    "missing key '{key}' in {kind} '{ns}/{}'",
                                    r.name
                                ));
                            }
                        },
                        Ok(None) if optional => None,
                        Ok(None) => {
                            return Err(format!("could not find {kind} '{ns}/{}'", r.name));
                        }
                        Err(e) => {
                            return Err(format!("could not get {kind} '{ns}/{}': {e}", r.name));
                        }
                    }
                }
            };
            let Some(data) = data else { continue };
            match r.target_path.as_deref().filter(|p| !p.is_empty()) {
                Some(path) => hr::set_path(&mut result, path, &data, r.literal.unwrap_or(false))
                    .map_err(|e| {
                        format!("unable to replace value at path '{path}' with value from {kind} '{ns}/{}': {e}", r.name)
                    })?,
                None => {
                    let v = hr::values_from_yaml(&data).map_err(|e| {
                        format!("unable to read values from key '{key}' in {kind} '{ns}/{}': {e}", r.name)
                    })?;
                    hr::merge(&mut result, &v);
                }
            }
        }
        if let Some(Value::Object(v)) = &obj.spec.values {
            hr::merge(&mut result, v);
        }
        Ok(result)
    }

    async fn fetch_chart(
        &self,
        source: &ChartSource,
        values: Map<String, Value>,
        scratch: &Path,
    ) -> Result<Desired, String> {
        let url = self.artifact_url(&source.artifact.url);
        let data = self
            .fetcher
            .fetch(&url, &source.artifact.digest)
            .await
            .map_err(|e| match e {
                ArtifactError::NotFound { .. } => format!("artifact not found at {url}"),
                e => e.to_string(),
            })?;
        let root = scratch.to_path_buf();
        tokio::task::spawn_blocking(move || {
            ferroflux_runtime::artifact::untar_gz(&data, &root, UntarLimits::default())
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        let dir = chart_dir(scratch).ok_or("no Chart.yaml in the artifact")?;
        let meta_text =
            std::fs::read_to_string(dir.join("Chart.yaml")).map_err(|e| e.to_string())?;
        let meta = hr::values_from_yaml(&meta_text).map_err(|e| format!("Chart.yaml: {e}"))?;
        let field = |k: &str| {
            meta.get(k)
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string())
                })
                .unwrap_or_default()
        };
        let mut chart_version = field("version");
        let digest_hex = source
            .artifact
            .digest
            .split_once(':')
            .map(|(_, h)| h.to_string())
            .unwrap_or_default();
        let oci_digest =
            (source.oci && !digest_hex.is_empty()).then(|| source.artifact.digest.clone());
        if source.oci && !self.settings.disable_chart_digest_tracking && digest_hex.len() >= 12 {
            // upstream mutates the chart's version before rendering, so templates, the
            // release record and `helm list` all show `<version>+<12 hex>`
            chart_version = format!("{chart_version}+{}", &digest_hex[..12]);
            let mut m = meta.clone();
            m.insert("version".into(), Value::String(chart_version.clone()));
            std::fs::write(
                dir.join("Chart.yaml"),
                serde_json::to_string(&Value::Object(m)).unwrap_or_default(),
            )
            .map_err(|e| format!("Chart.yaml: {e}"))?;
        }
        Ok(Desired {
            chart_dir: dir,
            chart_name: field("name"),
            chart_version,
            app_version: field("appVersion"),
            config_digest: config_digest(&values),
            values,
            oci_digest,
        })
    }

    async fn run(&self, obj: &HelmRelease, client: &Client, w: &mut Writer) -> Ending {
        let started = Instant::now();
        let storage_ns = obj.storage_namespace();
        w.status.storage_namespace = Some(storage_ns.clone());
        if let Err(e) = crate::chart_template::reconcile(
            obj,
            client,
            &mut w.status,
            self.settings.no_cross_namespace_refs,
            &self.recorder,
        )
        .await
        {
            return match e {
                crate::chart_template::TemplateError::AccessDenied(msg) => {
                    w.mark(cond::READY, cond::FALSE, reason::ACCESS_DENIED, &msg);
                    self.event(obj, Severity::Error, reason::ACCESS_DENIED, &msg, None)
                        .await;
                    Ending::Stalled
                }
                crate::chart_template::TemplateError::Failed(msg) => {
                    w.mark(cond::READY, cond::FALSE, helm_reason::RECONCILE_ERROR, &msg);
                    Ending::Failed
                }
            };
        }
        if obj.spec.depends_on.as_ref().is_some_and(|d| !d.is_empty()) {
            use crate::depends_on::{DependencyError, TERMINAL_ERROR, check};
            match check(obj, client, self.settings.additive_cel_dependency_check).await {
                Ok(()) => tracing::info!("all dependencies are ready"),
                Err(DependencyError::Terminal(e)) => {
                    let msg = format!("{TERMINAL_ERROR}: {e}");
                    w.mark(
                        cond::READY,
                        cond::FALSE,
                        reason::INVALID_CEL_EXPRESSION,
                        &msg,
                    );
                    self.event(
                        obj,
                        Severity::Error,
                        reason::INVALID_CEL_EXPRESSION,
                        &e,
                        None,
                    )
                    .await;
                    return Ending::Stalled;
                }
                Err(DependencyError::NotReady(e)) => {
                    w.mark(cond::READY, cond::FALSE, reason::DEPENDENCY_NOT_READY, &e);
                    self.event(obj, Severity::Info, reason::DEPENDENCY_NOT_READY, &e, None)
                        .await;
                    return Ending::Wait(self.settings.requeue_dependency);
                }
            }
        }
        let source = match self.source(obj, client).await {
            Ok(s) => s,
            Err((r, msg)) => {
                w.mark(cond::READY, cond::FALSE, &r, &msg);
                self.event(obj, Severity::Error, &r, &msg, None).await;
                return if r == helm_reason::SOURCE_NOT_READY {
                    Ending::Wait(SOURCE_REQUEUE)
                } else {
                    Ending::Stalled
                };
            }
        };
        w.status.helm_chart = source.helm_chart.clone();
        let values = match self.values(obj, client).await {
            Ok(v) => v,
            Err(msg) => {
                w.mark(cond::READY, cond::FALSE, helm_reason::VALUES_ERROR, &msg);
                self.event(obj, Severity::Error, helm_reason::VALUES_ERROR, &msg, None)
                    .await;
                return Ending::Failed;
            }
        };
        if let Err(e) = std::fs::create_dir_all(&self.scratch_root) {
            let msg = format!("tmp dir error: {e}");
            w.mark(
                cond::READY,
                cond::FALSE,
                reason::DIRECTORY_CREATION_FAILED,
                &msg,
            );
            return Ending::Failed;
        }
        let scratch = match tempfile::Builder::new()
            .prefix("helmrelease-")
            .tempdir_in(&self.scratch_root)
        {
            Ok(t) => t,
            Err(e) => {
                let msg = format!("tmp dir error: {e}");
                w.mark(
                    cond::READY,
                    cond::FALSE,
                    reason::DIRECTORY_CREATION_FAILED,
                    &msg,
                );
                return Ending::Failed;
            }
        };
        let desired = match self.fetch_chart(&source, values, scratch.path()).await {
            Ok(d) => d,
            Err(msg) => {
                let msg = format!("Source not ready: {msg}");
                w.mark(cond::READY, cond::FALSE, reason::ARTIFACT_FAILED, &msg);
                self.event(obj, Severity::Error, reason::ARTIFACT_FAILED, &msg, None)
                    .await;
                return Ending::Failed;
            }
        };
        // a changed release target (storage namespace, release namespace or name, chart name
        // with the Reinstall strategy): the old release is uninstalled first (upstream)
        if let Some(what) = crate::naming::release_target_changed(obj, &desired.chart_name)
            && (what != "chart name"
                || obj.upgrade().chart_name_change_strategy()
                    == ferroflux_api::helmrelease::ChartNameChangeStrategy::Reinstall)
        {
            tracing::info!(
                "release target configuration changed ({what}): running uninstall for current release"
            );
            if let Err(e) = self.uninstall_previous_target(obj, client).await {
                let msg = format!("failed to uninstall the release of the previous target: {e}");
                w.mark(
                    cond::READY,
                    cond::FALSE,
                    helm_reason::UNINSTALL_FAILED,
                    &msg,
                );
                return Ending::Error(msg);
            }
            w.status.history = None;
            w.status.failures = None;
            w.status.install_failures = None;
            w.status.upgrade_failures = None;
            w.status.storage_namespace = None;
            return Ending::Requeue(MUST_REQUEUE);
        }
        // new generation, chart version or values, or a reset request: failure counters
        // start again (upstream `MustResetFailures`)
        let reset = crate::reconcile::should_handle_reset(obj, w);
        if w.status.last_attempted_generation != obj.meta().generation
            || w.status.last_attempted_revision.as_deref() != Some(desired.chart_version.as_str())
            || w.status
                .last_attempted_config_digest
                .as_deref()
                .is_some_and(|d| d != desired.config_digest)
            || reset
        {
            w.status.failures = None;
            w.status.install_failures = None;
            w.status.upgrade_failures = None;
        }
        w.status.last_attempted_generation = obj.meta().generation;
        w.status.last_attempted_revision = Some(desired.chart_version.clone());
        w.status.last_attempted_revision_digest = desired.oci_digest.clone();
        w.status.last_attempted_config_digest = Some(desired.config_digest.clone());
        w.status.last_attempted_values_checksum = None;
        w.status.last_release_revision = None;
        let _ = started;
        match self.atomic_release(obj, client, w, &desired).await {
            AtomicEnd::Done => {
                if w.condition(cond::READY)
                    .is_some_and(|c| c.status == cond::TRUE)
                {
                    Ending::Ready
                } else {
                    Ending::Failed
                }
            }
            AtomicEnd::MustRequeue => Ending::Requeue(MUST_REQUEUE),
            AtomicEnd::RetryAfter(d) => Ending::Requeue(d),
            AtomicEnd::Stalled => Ending::Stalled,
            AtomicEnd::Error(e) => Ending::Error(e),
        }
    }
}

impl Reconciler<HelmRelease> for HelmReleaseReconciler {
    async fn reconcile(
        &self,
        obj: Arc<HelmRelease>,
        ctx: ReconcileContext,
    ) -> Result<Outcome, ReconcileError> {
        let started = Instant::now();
        let ns = obj.namespace().unwrap_or_default();
        let status = obj.status.clone().unwrap_or_default();
        let mut w = Writer {
            api: Api::namespaced(ctx.client.clone(), &ns),
            name: obj.name_any(),
            generation: obj.meta().generation,
            status: status.clone(),
            written: status,
        };
        let ending = self.run(&obj, &ctx.client, &mut w).await;
        // upstream patches the observed generation unless the reconcile must run again
        if !matches!(ending, Ending::Requeue(_) | Ending::Error(_)) {
            w.status.observed_generation = obj.meta().generation;
        }
        if let Some(v) = obj
            .meta()
            .annotations
            .as_ref()
            .and_then(|a| a.get("reconcile.fluxcd.io/requestedAt"))
        {
            w.status.last_handled_reconcile_at = Some(v.clone());
        }
        match &ending {
            Ending::Stalled => {
                if w.condition(cond::STALLED).is_none() {
                    let (r, m) = w
                        .condition(cond::READY)
                        .map(|c| (c.reason.clone(), c.message.clone()))
                        .unwrap_or_default();
                    w.mark(cond::STALLED, cond::TRUE, &r, &m);
                }
            }
            _ => w.delete(cond::STALLED),
        }
        w.patch().await.map_err(ReconcileError::new)?;
        let interval = ferroflux_runtime::driver::Reconcilable::interval(obj.as_ref())
            .unwrap_or(Duration::from_secs(600));
        if matches!(ending, Ending::Ready) {
            tracing::info!(
                reason = w.ready_reason(),
                "release reconciled in {}, next run in {}",
                format_go(started.elapsed()),
                format_go(interval)
            );
        }
        ferroflux_runtime::memory::note_reconcile();
        Ok(match ending {
            Ending::Ready => Outcome::RequeueAtInterval,
            Ending::Failed => Outcome::RequeueAfter(interval),
            Ending::Wait(d) => Outcome::RequeueAfter(d),
            Ending::Stalled => Outcome::AwaitChange,
            Ending::Requeue(d) => Outcome::RequeueAfter(d),
            Ending::Error(e) => return Err(ReconcileError::new(e)),
        })
    }

    async fn cleanup(
        &self,
        obj: Arc<HelmRelease>,
        ctx: ReconcileContext,
    ) -> Result<(), ReconcileError> {
        // a suspended HelmRelease is orphaned: its release stays
        if obj.spec.suspend.unwrap_or(false) {
            return Ok(());
        }
        let uninstalled = self.uninstall_release(&obj, &ctx.client).await;
        if uninstalled.is_ok() {
            // then the HelmChart of a chart template goes
            let mut status = obj.status.clone().unwrap_or_default();
            crate::chart_template::delete(
                &obj,
                &ctx.client,
                &mut status,
                self.settings.no_cross_namespace_refs,
                &self.recorder,
            )
            .await
            .map_err(|e| ReconcileError::new(e.to_string()))?;
        }
        match uninstalled {
            Ok(Some(rel)) => {
                let msg = format!("Helm uninstall succeeded for release {}", release_ref(&rel));
                self.event(
                    &obj,
                    Severity::Info,
                    helm_reason::UNINSTALL_SUCCEEDED,
                    &msg,
                    None,
                )
                .await;
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => {
                let msg = format!(
                    "Helm uninstall failed for release {}: {e}",
                    crate::naming::release_name(&obj)
                );
                self.event(
                    &obj,
                    Severity::Error,
                    helm_reason::UNINSTALL_FAILED,
                    &msg,
                    None,
                )
                .await;
                Err(ReconcileError::new(msg))
            }
        }
    }
}
