//! The HelmRelease reconciler: chart source → values → chart download (digest checked) →
//! release state from Helm's storage → install or upgrade (render as Helm, server-side apply,
//! wait on kstatus, release records Helm's CLI reads) → status, history and events; uninstall
//! on deletion.
//!
//! This first increment covers `chartRef` sources, values, install, upgrade (chart or values
//! change, failed or pending releases), uninstall and maxHistory; hooks, tests, remediation,
//! drift detection, post-renderers, `spec.chart` templates and impersonation come next.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferroflux_api::conditions::{self as cond, helm_reason, reason};
use ferroflux_api::duration::format_go;
use ferroflux_api::helmrelease::{ChartRefKind, HelmReleaseStatus, ReleaseAction, Snapshot};
use ferroflux_api::kustomization::ValuesSourceKind;
use ferroflux_api::{Artifact, ExternalArtifact, HelmChart, HelmRelease, OCIRepository};
use ferroflux_helm::release::{self as hr, Release, ReleaseOptions, status};
use ferroflux_runtime::artifact::{ArtifactError, ArtifactFetcher, UntarLimits};
use ferroflux_runtime::events::{EventRecorder, Severity};
use ferroflux_runtime::{Outcome, ReconcileContext, ReconcileError, Reconciler};
use ferroflux_ssa::{
    ApplyOptions, DeleteOptions, ObjMetadata, Owner, Propagation, ResourceManager, WaitOptions,
};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::{Map, Value};
use sha2::Digest;

use crate::storage::ReleaseStorage;

/// Field manager of applied objects (Helm's kube client in helm-controller).
pub const FIELD_MANAGER: &str = "helm-controller";
/// Field manager of status patches.
pub const STATUS_MANAGER: &str = "gotk-helm-controller";
/// API group of HelmRelease (labels, event metadata).
pub const GROUP: &str = "helm.toolkit.fluxcd.io";
const HISTORY_MAX: usize = 5;
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
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            no_cross_namespace_refs: false,
            allow_external_artifact: true,
            disable_chart_digest_tracking: false,
            source_localhost: None,
            wait_interval: Duration::from_secs(2),
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

fn now() -> Time {
    Time(jiff::Timestamp::now())
}

fn time_of(s: &Option<String>) -> Time {
    s.as_deref()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(Time)
        .unwrap_or_else(now)
}

/// The status being built.
struct Writer {
    api: Api<HelmRelease>,
    name: String,
    generation: Option<i64>,
    status: HelmReleaseStatus,
    written: HelmReleaseStatus,
}

impl Writer {
    fn mark(&mut self, type_: &str, st: &str, reason: &str, message: &str) {
        let g = self.generation;
        cond::set(
            self.status.conditions.get_or_insert_with(Vec::new),
            cond::new_condition(type_, st, reason, message, g, now()),
        );
    }
    fn delete(&mut self, type_: &str) {
        cond::remove(self.status.conditions.get_or_insert_with(Vec::new), type_);
    }
    fn condition(&self, type_: &str) -> Option<&Condition> {
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
    async fn patch(&mut self) -> Result<(), String> {
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

/// How a reconcile ended.
enum Ending {
    Ready,
    Failed,
    Wait(Duration),
    Stalled,
}

/// What the chart source gave.
struct ChartSource {
    artifact: Artifact,
    /// `<kind> <ns>/<name>` for messages; `ns/name` of a HelmChart for `status.helmChart`.
    helm_chart: Option<String>,
    oci: bool,
}

/// The desired release: chart, values and their digests.
struct Desired {
    chart_dir: PathBuf,
    chart_name: String,
    chart_version: String,
    app_version: String,
    values: Map<String, Value>,
    config_digest: String,
    oci_digest: Option<String>,
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

/// upstream's `chartutil.DigestValues(digest.Canonical, values)`: sha256 of the values' YAML.
pub fn config_digest(values: &Map<String, Value>) -> String {
    let yaml = hr::values_yaml(values).unwrap_or_default();
    format!("sha256:{}", sha256_hex(yaml.as_bytes()))
}

/// A snapshot digest: sha256 over the release as stored, without the chart's files (which do
/// not describe the release's state) and with hooks' run state left out.
fn snapshot_digest(rel: &Release) -> String {
    let mut obs = rel.clone();
    if let Some(c) = &mut obs.chart {
        c.templates = None;
        c.files = None;
        c.values = None;
        c.schema = None;
    }
    obs.config = Map::new();
    for h in &mut obs.hooks {
        h.last_run = Default::default();
    }
    format!("sha256:{}", sha256_hex(obs.to_go_json().as_bytes()))
}

fn snapshot(rel: &Release, action: ReleaseAction, oci_digest: Option<String>) -> Snapshot {
    let info = rel.info.clone().unwrap_or_default();
    let meta = rel
        .chart
        .as_ref()
        .and_then(|c| c.metadata.clone())
        .unwrap_or_default();
    Snapshot {
        api_version: Some("v2".into()),
        digest: snapshot_digest(rel),
        name: rel.name.clone(),
        namespace: rel.namespace.clone(),
        version: rel.version,
        status: info.status.clone(),
        chart_name: meta.name,
        chart_version: meta.version,
        app_version: Some(meta.app_version).filter(|a| !a.is_empty()),
        config_digest: config_digest(&rel.config),
        first_deployed: time_of(&info.first_deployed),
        last_deployed: time_of(&info.last_deployed),
        deleted: info.deleted.as_ref().map(|_| time_of(&info.deleted)),
        test_hooks: None,
        oci_digest,
        action: Some(
            match action {
                ReleaseAction::Install => "install",
                ReleaseAction::Upgrade => "upgrade",
            }
            .into(),
        ),
    }
}

/// `<ns>/<name>.v<version>` as upstream names a release in messages.
fn release_ref(rel: &Release) -> String {
    format!("{}/{}.v{}", rel.namespace, rel.name, rel.version)
}

/// Splits a rendered manifest into objects, each with its namespace set as Helm sets it
/// (the release namespace for namespaced kinds without one).
async fn manifest_objects(
    manager: &ResourceManager,
    manifest: &str,
    namespace: &str,
) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for doc in manifest.split("\n---") {
        let doc = doc.trim_start_matches("---");
        let body: String = doc
            .lines()
            .filter(|l| !l.starts_with("# Source:"))
            .collect::<Vec<_>>()
            .join("\n");
        if body.trim().is_empty() {
            continue;
        }
        let mut v: Value = match ferroflux_helm::yaml::parse_yaml(&body) {
            Ok(t) => {
                let json = ferroflux_helm::yaml::to_json(&t, false, None)
                    .map_err(|e| format!("manifest: {e}"))?;
                serde_json::from_str(&json).map_err(|e| format!("manifest: {e}"))?
            }
            Err(e) => return Err(format!("manifest: {e}")),
        };
        if v.is_null() {
            continue;
        }
        let meta = ObjMetadata::of(&v).map_err(|e| e.to_string())?;
        if meta.namespace.is_empty() {
            let resolved = manager
                .discovery()
                .resolve(manager.client(), &meta)
                .await
                .map_err(|e| e.to_string())?;
            if resolved.namespaced
                && let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut)
            {
                m.insert("namespace".into(), Value::String(namespace.to_string()));
            }
        }
        out.push(v);
    }
    Ok(out)
}

/// Helm's ownership metadata on every object of a release, and the HelmRelease's labels.
fn set_release_metadata(objects: &mut [Value], rel: &Release, hr: &HelmRelease) {
    let hr_name = hr.name_any();
    let hr_ns = hr.namespace().unwrap_or_default();
    for o in objects {
        let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) else {
            continue;
        };
        let labels = meta
            .entry("labels")
            .or_insert_with(|| Value::Object(Map::new()));
        if !labels.is_object() {
            *labels = Value::Object(Map::new());
        }
        if let Some(l) = labels.as_object_mut() {
            l.insert("app.kubernetes.io/managed-by".into(), "Helm".into());
            l.insert(format!("{GROUP}/name"), hr_name.clone().into());
            l.insert(format!("{GROUP}/namespace"), hr_ns.clone().into());
        }
        let ann = meta
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        if !ann.is_object() {
            *ann = Value::Object(Map::new());
        }
        if let Some(a) = ann.as_object_mut() {
            a.insert("meta.helm.sh/release-name".into(), rel.name.clone().into());
            a.insert(
                "meta.helm.sh/release-namespace".into(),
                rel.namespace.clone().into(),
            );
        }
    }
}

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
    async fn event(
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

    fn manager(&self, client: Client) -> ResourceManager {
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
            return Err((
                helm_reason::RECONCILE_ERROR.into(),
                "spec.chart (HelmChart templates) is not supported by this helm-controller yet; use spec.chartRef".into(),
            ));
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
                (
                    src.status.and_then(|s| s.artifact),
                    Some(format!("{ns}/{}", r.name)),
                    false,
                )
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
        // new chart version or values: failure counters start again
        if w.status.last_attempted_revision.as_deref() != Some(desired.chart_version.as_str())
            || w.status.last_attempted_config_digest.as_deref()
                != Some(desired.config_digest.as_str())
        {
            w.status.failures = None;
            w.status.install_failures = None;
            w.status.upgrade_failures = None;
        }
        w.status.last_attempted_revision = Some(desired.chart_version.clone());
        w.status.last_attempted_revision_digest = desired.oci_digest.clone();
        w.status.last_attempted_config_digest = Some(desired.config_digest.clone());
        w.status.last_attempted_values_checksum = None;
        w.status.last_release_revision = None;
        w.status.last_attempted_generation = obj.meta().generation;

        let store = ReleaseStorage::new(client.clone(), &storage_ns);
        let name = obj.release_name();
        let history = match store.history(&name).await {
            Ok(h) => h,
            Err(msg) => {
                w.mark(cond::READY, cond::FALSE, helm_reason::STATE_ERROR, &msg);
                return Ending::Failed;
            }
        };
        let latest = history.last().cloned();
        let action = match &latest {
            None => Some(ReleaseAction::Install),
            Some(l) if l.status() == status::UNINSTALLED => Some(ReleaseAction::Install),
            Some(l) if l.status() == status::DEPLOYED => {
                let meta = l.chart.as_ref().and_then(|c| c.metadata.as_ref());
                let in_sync = meta.map(|m| m.version.as_str())
                    == Some(desired.chart_version.as_str())
                    && config_digest(&l.config) == desired.config_digest;
                (!in_sync).then_some(ReleaseAction::Upgrade)
            }
            // failed, superseded-as-latest, pending-* (a release left locked is unlocked by the
            // upgrade, which supersedes it)
            Some(_) => Some(ReleaseAction::Upgrade),
        };
        let Some(action) = action else {
            // in sync
            if let Some(l) = &latest {
                self.record_history(w, l, None, desired.oci_digest.clone());
            }
            if w.condition(cond::READY)
                .is_none_or(|c| c.status != cond::TRUE)
            {
                let msg = format!(
                    "Helm release {} is in sync with chart {}@{}",
                    latest.as_ref().map(release_ref).unwrap_or_default(),
                    desired.chart_name,
                    desired.chart_version
                );
                w.mark(
                    cond::RELEASED,
                    cond::TRUE,
                    helm_reason::INSTALL_SUCCEEDED,
                    &msg,
                );
                w.mark(
                    cond::READY,
                    cond::TRUE,
                    helm_reason::INSTALL_SUCCEEDED,
                    &msg,
                );
            }
            return Ending::Ready;
        };
        w.status.last_attempted_release_action = Some(action);
        let progress = format!(
            "Running '{}' action with timeout of {}",
            if action == ReleaseAction::Install {
                "install"
            } else {
                "upgrade"
            },
            format_go(obj.effective_timeout())
        );
        w.mark(
            cond::RECONCILING,
            cond::TRUE,
            reason::PROGRESSING,
            &progress,
        );
        w.mark(cond::READY, cond::UNKNOWN, reason::PROGRESSING, &progress);
        let _ = w.patch().await;
        let result = self
            .release(obj, client, &store, &name, &history, &desired, action)
            .await;
        w.status.last_attempted_release_action_duration = Some(
            ferroflux_api::duration::Duration::from_std(started.elapsed()),
        );
        w.delete(cond::RECONCILING);
        let (ok_reason, fail_reason, verb) = match action {
            ReleaseAction::Install => (
                helm_reason::INSTALL_SUCCEEDED,
                helm_reason::INSTALL_FAILED,
                "install",
            ),
            ReleaseAction::Upgrade => (
                helm_reason::UPGRADE_SUCCEEDED,
                helm_reason::UPGRADE_FAILED,
                "upgrade",
            ),
        };
        let chart = format!("{}@{}", desired.chart_name, desired.chart_version);
        match result {
            Ok(rel) => {
                let msg = format!(
                    "Helm {verb} succeeded for release {} with chart {chart}",
                    release_ref(&rel)
                );
                w.mark(cond::RELEASED, cond::TRUE, ok_reason, &msg);
                w.mark(cond::READY, cond::TRUE, ok_reason, &msg);
                self.record_history(w, &rel, Some(action), desired.oci_digest.clone());
                self.event(obj, Severity::Info, ok_reason, &msg, Some(&desired))
                    .await;
                Ending::Ready
            }
            Err((rel, err)) => {
                let target = rel
                    .as_ref()
                    .map(release_ref)
                    .unwrap_or_else(|| format!("{}/{name}", obj.release_namespace()));
                let msg =
                    format!("Helm {verb} failed for release {target} with chart {chart}: {err}");
                w.mark(cond::RELEASED, cond::FALSE, fail_reason, &msg);
                w.mark(cond::READY, cond::FALSE, fail_reason, &msg);
                if let Some(rel) = &rel {
                    self.record_history(w, rel, Some(action), desired.oci_digest.clone());
                }
                let bump = |c: &mut Option<i64>| *c = Some(c.unwrap_or(0) + 1);
                bump(&mut w.status.failures);
                match action {
                    ReleaseAction::Install => bump(&mut w.status.install_failures),
                    ReleaseAction::Upgrade => bump(&mut w.status.upgrade_failures),
                }
                self.event(obj, Severity::Error, fail_reason, &msg, Some(&desired))
                    .await;
                Ending::Failed
            }
        }
    }

    /// Upstream's snapshot rule: the snapshot of a revision is replaced, newer ones first,
    /// at most five kept.
    fn record_history(
        &self,
        w: &mut Writer,
        rel: &Release,
        action: Option<ReleaseAction>,
        oci_digest: Option<String>,
    ) {
        let history = w.status.history.get_or_insert_with(Vec::new);
        let action = action
            .or_else(|| {
                history
                    .iter()
                    .find(|s| s.version == rel.version)
                    .and_then(|s| s.action.as_deref())
                    .map(|a| {
                        if a == "install" {
                            ReleaseAction::Install
                        } else {
                            ReleaseAction::Upgrade
                        }
                    })
            })
            .unwrap_or(if rel.version == 1 {
                ReleaseAction::Install
            } else {
                ReleaseAction::Upgrade
            });
        let snap = snapshot(rel, action, oci_digest);
        history.retain(|s| !(s.version == rel.version && s.name == rel.name));
        // older deployed snapshots are superseded now
        if rel.status() == status::DEPLOYED {
            for s in history.iter_mut() {
                if s.status == status::DEPLOYED {
                    s.status = status::SUPERSEDED.into();
                }
            }
        }
        history.insert(0, snap);
        history.sort_by_key(|s| std::cmp::Reverse(s.version));
        history.truncate(HISTORY_MAX);
    }

    /// Install or upgrade: the new revision is stored pending, applied, waited for, then
    /// stored deployed (the previous one superseded) or failed. `Err((stored, message))`.
    #[allow(clippy::too_many_arguments)]
    async fn release(
        &self,
        obj: &HelmRelease,
        client: &Client,
        store: &ReleaseStorage,
        name: &str,
        history: &[Release],
        desired: &Desired,
        action: ReleaseAction,
    ) -> Result<Release, (Option<Release>, String)> {
        let namespace = obj.release_namespace();
        let upgrade = action == ReleaseAction::Upgrade;
        let version = history.last().map(|r| r.version).unwrap_or(0) + 1;
        let install = obj.install();
        let up = obj.upgrade();
        let opts = ReleaseOptions {
            name: name.to_string(),
            namespace: namespace.clone(),
            revision: version,
            is_upgrade: upgrade,
            kube_version: None,
            api_versions: Vec::new(),
            skip_schema_validation: if upgrade {
                up.disable_schema_validation.unwrap_or(false)
            } else {
                install.disable_schema_validation.unwrap_or(false)
            },
        };
        let dir = desired.chart_dir.clone();
        let values = desired.values.clone();
        let rendered =
            tokio::task::spawn_blocking(move || hr::render_release(&dir, &values, &opts))
                .await
                .map_err(|e| (None, e.to_string()))?
                .map_err(|e| (None, e.to_string()))?;
        let ts = hr::format_time(jiff::Timestamp::now());
        let previous_deployed = history
            .iter()
            .rev()
            .find(|r| r.status() == status::DEPLOYED)
            .cloned();
        let first = if upgrade {
            history
                .first()
                .and_then(|r| r.info.as_ref())
                .and_then(|i| i.first_deployed.clone())
                .or(Some(ts.clone()))
        } else {
            Some(ts.clone())
        };
        let mut rel = Release {
            name: name.to_string(),
            info: Some(hr::Info {
                first_deployed: first,
                last_deployed: Some(ts),
                status: if upgrade {
                    status::PENDING_UPGRADE
                } else {
                    status::PENDING_INSTALL
                }
                .into(),
                description: if upgrade {
                    "Preparing upgrade"
                } else {
                    "Initial install underway"
                }
                .into(),
                notes: rendered.notes.clone(),
                ..Default::default()
            }),
            chart: Some(rendered.chart.clone()),
            config: desired.values.clone(),
            manifest: rendered.manifest.clone(),
            hooks: rendered.hooks.clone(),
            version,
            namespace: namespace.clone(),
            apply_method: "ssa".into(),
            labels: BTreeMap::new(),
        };
        store.create(&rel).await.map_err(|e| (None, e))?;
        let outcome = self
            .apply_release(
                obj,
                client,
                &rel,
                previous_deployed.as_ref(),
                &rendered.crds,
            )
            .await;
        match outcome {
            Ok(()) => {
                rel.set_status(
                    status::DEPLOYED,
                    if upgrade {
                        "Upgrade complete"
                    } else {
                        "Install complete"
                    },
                );
                for old in history
                    .iter()
                    .filter(|r| r.status() == status::DEPLOYED || status::is_pending(r.status()))
                {
                    let mut old = old.clone();
                    let st = if status::is_pending(old.status()) {
                        status::FAILED
                    } else {
                        status::SUPERSEDED
                    };
                    if let Some(i) = &mut old.info {
                        i.status = st.into();
                    }
                    if let Err(e) = store.update(&old).await {
                        tracing::warn!("could not supersede {}: {e}", release_ref(&old));
                    }
                }
                store
                    .update(&rel)
                    .await
                    .map_err(|e| (Some(rel.clone()), e))?;
                self.prune_history(obj, store, name, version).await;
                Ok(rel)
            }
            Err(e) => {
                rel.set_status(
                    status::FAILED,
                    format!("Release {:?} failed: {e}", rel.name),
                );
                if let Err(se) = store.update(&rel).await {
                    tracing::warn!("could not record the failed release: {se}");
                }
                Err((Some(rel), e))
            }
        }
    }

    /// `maxHistory`: the oldest revisions beyond the limit go (never the newest).
    async fn prune_history(
        &self,
        obj: &HelmRelease,
        store: &ReleaseStorage,
        name: &str,
        newest: i64,
    ) {
        let max = obj.max_history();
        if max <= 0 {
            return;
        }
        let Ok(all) = store.history(name).await else {
            return;
        };
        let excess = all.len().saturating_sub(max as usize);
        for r in all.iter().filter(|r| r.version != newest).take(excess) {
            if let Err(e) = store.delete(name, r.version).await {
                tracing::warn!("could not delete release revision {}: {e}", r.version);
            }
        }
    }

    /// CRDs, then the release's objects by server-side apply; objects of the previous release
    /// that are gone from the new one are deleted; then the wait for readiness.
    async fn apply_release(
        &self,
        obj: &HelmRelease,
        client: &Client,
        rel: &Release,
        previous: Option<&Release>,
        crds: &[(String, String)],
    ) -> Result<(), String> {
        let manager = self.manager(client.clone());
        let mut objects = Vec::new();
        let install = obj.install();
        let crd_policy_skip = matches!(
            install.crds,
            Some(ferroflux_api::helmrelease::CrdsPolicy::Skip)
        ) || install.skip_crds.unwrap_or(false);
        if previous.is_none() && !crd_policy_skip {
            for (path, text) in crds {
                let mut found = manifest_objects(&manager, text, &rel.namespace)
                    .await
                    .map_err(|e| format!("{path}: {e}"))?;
                objects.append(&mut found);
            }
        }
        let mut release_objects = manifest_objects(&manager, &rel.manifest, &rel.namespace).await?;
        set_release_metadata(&mut release_objects, rel, obj);
        let ids: Vec<ObjMetadata> = release_objects
            .iter()
            .filter_map(|o| ObjMetadata::of(o).ok())
            .collect();
        objects.extend(release_objects);
        let apply = ApplyOptions {
            force: obj.upgrade().force.unwrap_or(false),
            wait_timeout: obj.effective_timeout(),
            ..Default::default()
        };
        manager
            .apply_all_staged(objects, &apply)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(prev) = previous {
            let old = manifest_objects(&manager, &prev.manifest, &prev.namespace).await?;
            let stale: Vec<ObjMetadata> = old
                .iter()
                .filter_map(|o| ObjMetadata::of(o).ok())
                .filter(|o| !ids.iter().any(|n| n.same_object(o)))
                .collect();
            if !stale.is_empty() {
                manager
                    .delete_all(stale, &DeleteOptions::default())
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        let disable_wait = if previous.is_some() {
            obj.upgrade().disable_wait.unwrap_or(false)
        } else {
            install.disable_wait.unwrap_or(false)
        };
        if !disable_wait {
            let wait = WaitOptions {
                interval: self.settings.wait_interval,
                timeout: obj.effective_timeout(),
                ..Default::default()
            };
            manager
                .wait_for_set(&ids, &wait)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// `helm uninstall`: the release's objects go, then its records (all of them, unless
    /// `keepHistory`, which keeps them with the latest marked uninstalled).
    async fn uninstall(
        &self,
        obj: &HelmRelease,
        client: &Client,
    ) -> Result<Option<Release>, String> {
        let store = ReleaseStorage::new(client.clone(), &obj.storage_namespace());
        let name = obj.release_name();
        let history = store.history(&name).await?;
        let Some(mut latest) = history.last().cloned() else {
            return Ok(None);
        };
        if latest.status() == status::UNINSTALLED {
            return Ok(Some(latest));
        }
        latest.set_status(
            status::UNINSTALLING,
            "Deletion in progress (or silently failed)",
        );
        store.update(&latest).await?;
        let manager = self.manager(client.clone());
        let objects: Vec<ObjMetadata> =
            manifest_objects(&manager, &latest.manifest, &latest.namespace)
                .await?
                .iter()
                .filter_map(|o| ObjMetadata::of(o).ok())
                .collect();
        let propagation = match obj.uninstall().deletion_propagation {
            Some(ferroflux_api::helmrelease::DeletionPropagation::Foreground) => {
                Propagation::Foreground
            }
            Some(ferroflux_api::helmrelease::DeletionPropagation::Orphan) => Propagation::Orphan,
            _ => Propagation::Background,
        };
        manager
            .delete_all(
                objects,
                &DeleteOptions {
                    propagation,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| e.to_string())?;
        if let Some(i) = &mut latest.info {
            i.deleted = Some(hr::format_time(jiff::Timestamp::now()));
        }
        latest.set_status(status::UNINSTALLED, "Uninstallation complete");
        if obj.uninstall().keep_history.unwrap_or(false) {
            store.update(&latest).await?;
        } else {
            for r in &history {
                store.delete(&name, r.version).await?;
            }
        }
        Ok(Some(latest))
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
        w.status.observed_generation = obj.meta().generation;
        if matches!(ending, Ending::Stalled) {
            let (r, m) = w
                .condition(cond::READY)
                .map(|c| (c.reason.clone(), c.message.clone()))
                .unwrap_or_default();
            w.mark(cond::STALLED, cond::TRUE, &r, &m);
        } else {
            w.delete(cond::STALLED);
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
        match self.uninstall(&obj, &ctx.client).await {
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
                    obj.release_name()
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
