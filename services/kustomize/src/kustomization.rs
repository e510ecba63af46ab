//! The Kustomization reconciler: source → dependsOn → fetch → build (generate, decrypt,
//! substitute) → staged server-side apply → prune → health → status, events and history, in
//! upstream's order and words.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferroflux_api::conditions::{self as cond, reason};
use ferroflux_api::duration::format_go;
use ferroflux_api::kustomization::{
    DeletionPolicy, HistoryEntry, KustomizationSourceKind, KustomizationStatus, SubstituteStrategy,
    ValuesSourceKind,
};
use ferroflux_api::kustomize::{ResourceInventory, ResourceRef};
use ferroflux_api::{
    Artifact, Bucket, ExternalArtifact, GitRepository, Kustomization, OCIRepository,
};
use ferroflux_runtime::artifact::{ArtifactError, ArtifactFetcher, UntarLimits};
use ferroflux_runtime::events::{EventRecorder, Severity};
use ferroflux_runtime::{Outcome, ReconcileContext, ReconcileError, Reconciler};
use ferroflux_ssa::CustomStatus;
use ferroflux_ssa::{
    Action, ApplyCleanup, ApplyOptions, ChangeSet, DeleteOptions, ObjMetadata, Owner,
    ResourceManager, WaitOptions,
};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::Value;
use sha2::Digest;

use crate::cel::{Expression, HealthExprs};
use crate::clients::Clients;
use crate::decrypt::decryption_disabled;
use crate::{generator, substitute};

/// Field manager of applied objects.
pub const FIELD_MANAGER: &str = "kustomize-controller";
/// Field manager of status patches.
pub const STATUS_MANAGER: &str = "gotk-kustomize-controller";
/// API group of Kustomization (labels, annotations, event metadata).
pub const GROUP: &str = "kustomize.toolkit.fluxcd.io";
const NAME_LABEL: &str = "kustomize.toolkit.fluxcd.io/name";
const NAMESPACE_LABEL: &str = "kustomize.toolkit.fluxcd.io/namespace";
const ORIGIN_REVISION_KEY: &str = "org.opencontainers.image.revision";
const TERMINAL_ERROR: &str = "Reconciliation failed terminally due to configuration error";
const HISTORY_MAX: usize = 5;

/// Behaviour chosen by flags and feature gates.
#[derive(Clone, Debug)]
pub struct Settings {
    pub no_cross_namespace_refs: bool,
    pub requeue_dependency: Duration,
    pub strict_substitutions: bool,
    pub allow_external_artifact: bool,
    pub additive_cel_dependency_check: bool,
    pub fail_fast: bool,
    pub concurrent_ssa: usize,
    pub override_managers: Vec<String>,
    pub custom_stage_kinds: Vec<(String, String)>,
    /// `SOURCE_CONTROLLER_LOCALHOST`: host[:port] replacing the artifact URL's host.
    pub source_localhost: Option<String>,
    /// Interval of health-check polling.
    pub health_poll_interval: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            no_cross_namespace_refs: false,
            requeue_dependency: Duration::from_secs(30),
            strict_substitutions: true,
            allow_external_artifact: true,
            additive_cel_dependency_check: false,
            fail_fast: true,
            concurrent_ssa: 4,
            override_managers: Vec::new(),
            custom_stage_kinds: Vec::new(),
            source_localhost: None,
            health_poll_interval: Duration::from_secs(2),
        }
    }
}

/// The reconciler's shared parts.
pub struct KustomizationReconciler {
    pub settings: Settings,
    pub recorder: EventRecorder,
    pub fetcher: ArtifactFetcher,
    pub clients: Arc<Clients>,
    pub scratch_root: PathBuf,
    /// API discovery of the local cluster, shared by all reconciles (remote clusters get
    /// their own per reconcile).
    pub discovery: ferroflux_ssa::discovery::DiscoveryCache,
    /// Source artifacts from the watch (and gRPC) triggers; `None`: read sources from the API.
    pub source_cache: Option<crate::triggers::Triggers>,
}

/// How a reconcile ended.
enum Ending {
    /// Applied and healthy: requeue at the interval.
    Ready,
    /// Failed (the error was recorded and sent as an event): requeue after the retry interval.
    Failed,
    /// Waiting for something else (source artifact, dependencies): requeue after.
    Wait(Duration),
    /// Terminal until the object changes.
    Stalled,
}

/// The status being built and what was last written.
struct StatusWriter {
    api: Api<Kustomization>,
    name: String,
    generation: Option<i64>,
    status: KustomizationStatus,
    written: KustomizationStatus,
    started: Instant,
}

/// Progress (Reconciling, Ready=Unknown, Healthy=Unknown) is written only once a reconcile has
/// run this long: fast reconciles then cost one status write instead of four, and watchers
/// don't see Ready flap on every no-op resync. The final status is the same as upstream's.
const PROGRESS_DELAY: Duration = Duration::from_secs(1);

fn now() -> Time {
    Time(jiff::Timestamp::now())
}

impl StatusWriter {
    fn conditions(&mut self) -> &mut Vec<Condition> {
        self.status.conditions.get_or_insert_with(Vec::new)
    }

    fn mark(&mut self, type_: &str, status: &str, reason: &str, message: &str) {
        let generation = self.generation;
        cond::set(
            self.conditions(),
            cond::new_condition(type_, status, reason, message, generation, now()),
        );
    }

    fn delete(&mut self, type_: &str) {
        cond::remove(self.conditions(), type_);
    }

    fn is(&self, type_: &str, status: &str) -> bool {
        self.status
            .conditions
            .as_deref()
            .and_then(|c| cond::status_of(c, type_))
            == Some(status)
    }

    fn ready_reason(&self) -> Option<String> {
        self.status
            .conditions
            .as_deref()
            .and_then(|c| cond::get(c, cond::READY))
            .map(|c| c.reason.clone())
    }

    /// Reconciling=True (and no Stalled), as upstream's MarkReconciling.
    fn reconciling(&mut self, message: &str) {
        self.delete(cond::STALLED);
        self.mark(cond::RECONCILING, cond::TRUE, reason::PROGRESSING, message);
    }

    /// Ready=False and Stalled=True (and no Reconciling), as upstream's MarkStalled.
    fn stalled(&mut self, reason: &str, message: &str) {
        self.fail(reason, message);
        self.delete(cond::RECONCILING);
        self.mark(cond::STALLED, cond::TRUE, reason, message);
    }

    fn fail(&mut self, reason: &str, message: &str) {
        self.mark(cond::READY, cond::FALSE, reason, message);
    }

    /// Writes the progress so far if the reconcile has been running for a while.
    async fn progress(&mut self) -> Result<(), String> {
        if self.started.elapsed() < PROGRESS_DELAY {
            return Ok(());
        }
        self.patch().await
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

    fn upsert_history(
        &mut self,
        digest: &str,
        started: Instant,
        status: &str,
        metadata: &BTreeMap<String, String>,
    ) {
        let history = self.status.history.get_or_insert_with(Vec::new);
        upsert_history(history, digest, started.elapsed(), status, metadata);
    }
}

/// Upstream's history rule: the snapshot with the same digest and status moves to the front
/// and is updated; otherwise a new one is added at the front; at most five are kept.
fn upsert_history(
    history: &mut Vec<HistoryEntry>,
    digest: &str,
    took: Duration,
    status: &str,
    metadata: &BTreeMap<String, String>,
) {
    let t = now();
    let took = ferroflux_api::duration::Duration::from_std(took);
    if let Some(i) = history
        .iter()
        .position(|h| h.digest == digest && h.last_reconciled_status == status)
    {
        let mut entry = history.remove(i);
        entry.last_reconciled = t;
        entry.last_reconciled_duration = took;
        entry.total_reconciliations += 1;
        entry.metadata = Some(metadata.clone());
        history.insert(0, entry);
    } else {
        history.insert(
            0,
            HistoryEntry {
                digest: digest.to_string(),
                first_reconciled: t.clone(),
                last_reconciled: t,
                last_reconciled_duration: took,
                last_reconciled_status: status.to_string(),
                total_reconciliations: 1,
                metadata: Some(metadata.clone()),
            },
        );
    }
    history.truncate(HISTORY_MAX);
}

/// A failure while getting the source.
enum SourceError {
    NotFound(String),
    AccessDenied(String),
    Other(String),
}

fn source_namespace(obj: &Kustomization) -> String {
    obj.spec
        .source_ref
        .as_ref()
        .and_then(|r| r.namespace.clone())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| obj.namespace().unwrap_or_default())
}

async fn get_artifact<K>(
    client: Client,
    ns: &str,
    name: &str,
) -> Result<Option<Artifact>, SourceError>
where
    K: ferroflux_api::object::Source
        + Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client, ns);
    match api.get(name).await {
        Ok(src) => Ok(src.artifact().cloned()),
        Err(kube::Error::Api(e)) if e.code == 404 => Err(SourceError::NotFound(format!(
            "{}.{} \"{name}\" not found",
            K::plural(&()),
            K::group(&()),
        ))),
        Err(e) => Err(SourceError::Other(format!(
            "unable to get source '{ns}/{name}': {e}"
        ))),
    }
}

impl KustomizationReconciler {
    async fn event(
        &self,
        obj: &Kustomization,
        writer: &StatusWriter,
        severity: Severity,
        revision: &str,
        origin_revision: &str,
        message: &str,
        extra: &[(&str, &str)],
    ) {
        let mut meta = BTreeMap::new();
        if !revision.is_empty() {
            meta.insert("revision".to_string(), revision.to_string());
        }
        if !origin_revision.is_empty() {
            meta.insert("originRevision".to_string(), origin_revision.to_string());
        }
        for (k, v) in extra {
            meta.insert(k.to_string(), v.to_string());
        }
        let reason = writer
            .ready_reason()
            .unwrap_or_else(|| severity.as_str().to_string());
        self.recorder
            .publish(obj, severity, &reason, message, &meta)
            .await;
    }

    async fn get_source(
        &self,
        obj: &Kustomization,
        client: Client,
    ) -> Result<Option<Artifact>, SourceError> {
        let Some(sref) = &obj.spec.source_ref else {
            return Err(SourceError::Other("spec.sourceRef is required".into()));
        };
        let ns = source_namespace(obj);
        let kind = sref.kind.as_str();
        let own_ns = obj.namespace().unwrap_or_default();
        if self.settings.no_cross_namespace_refs && ns != own_ns {
            return Err(SourceError::AccessDenied(format!(
                "can't access '{kind}/{ns}/{}', cross-namespace references have been blocked",
                sref.name
            )));
        }
        if matches!(sref.kind, KustomizationSourceKind::ExternalArtifact)
            && !self.settings.allow_external_artifact
        {
            return Err(SourceError::AccessDenied(format!(
                "can't access '{kind}/{ns}/{}', ExternalArtifact feature gate is disabled",
                sref.name
            )));
        }
        if let Some(cache) = &self.source_cache
            && let Some(artifact) =
                cache.artifact(&(kind.to_string(), ns.clone(), sref.name.clone()))
        {
            return Ok(Some(artifact));
        }
        let artifact = match sref.kind {
            KustomizationSourceKind::GitRepository => {
                get_artifact::<GitRepository>(client, &ns, &sref.name).await?
            }
            KustomizationSourceKind::OCIRepository => {
                get_artifact::<OCIRepository>(client, &ns, &sref.name).await?
            }
            KustomizationSourceKind::Bucket => {
                get_artifact::<Bucket>(client, &ns, &sref.name).await?
            }
            KustomizationSourceKind::ExternalArtifact => {
                get_artifact::<ExternalArtifact>(client, &ns, &sref.name).await?
            }
            KustomizationSourceKind::Other(ref other) => {
                return Err(SourceError::Other(format!(
                    "source `{}` kind '{other}' not supported",
                    sref.name
                )));
            }
        };
        Ok(artifact)
    }

    /// Upstream's dependency rules; `Err((message, terminal))`.
    async fn check_dependencies(
        &self,
        obj: &Kustomization,
        client: Client,
        revision: &str,
    ) -> Result<(), (String, bool)> {
        let own_ns = obj.namespace().unwrap_or_default();
        let self_value = serde_json::to_value(obj).unwrap_or(Value::Null);
        let own_src = obj.spec.source_ref.as_ref();
        for dep in obj.spec.depends_on.iter().flatten() {
            let ns = dep
                .namespace
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| own_ns.clone());
            let api: Api<Kustomization> = Api::namespaced(client.clone(), &ns);
            let dep_obj = api.get(&dep.name).await.map_err(|e| {
                (
                    format!("dependency '{ns}/{}' not found: {e}", dep.name),
                    false,
                )
            })?;
            if let Some(expr) = dep.ready_expr.as_deref().filter(|e| !e.is_empty()) {
                let compiled = Expression::new(expr).map_err(|e| {
                    (
                        format!("failed to evaluate dependency {}: {e}", dep.name),
                        true,
                    )
                })?;
                let dep_value = serde_json::to_value(&dep_obj).unwrap_or(Value::Null);
                let vars = BTreeMap::from([("self", &self_value), ("dep", &dep_value)]);
                let ready = compiled.eval_bool(&vars).map_err(|e| (e, false))?;
                if !ready {
                    return Err((
                        format!(
                            "dependency '{ns}/{}' is not ready according to readyExpr eval",
                            dep.name
                        ),
                        false,
                    ));
                }
                if !self.settings.additive_cel_dependency_check {
                    continue;
                }
            }
            let conditions = dep_obj
                .status
                .as_ref()
                .and_then(|s| s.conditions.clone())
                .unwrap_or_default();
            let observed = dep_obj.status.as_ref().and_then(|s| s.observed_generation);
            if conditions.is_empty() || dep_obj.meta().generation != observed {
                return Err((
                    format!("dependency '{ns}/{}' is not ready", dep.name),
                    false,
                ));
            }
            if !cond::is_true(&conditions, cond::READY) {
                return Err((
                    format!("dependency '{ns}/{}' is not ready", dep.name),
                    false,
                ));
            }
            if let (Some(a), Some(b)) = (own_src, dep_obj.spec.source_ref.as_ref()) {
                let a_ns = a
                    .namespace
                    .clone()
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| own_ns.clone());
                let b_ns = b
                    .namespace
                    .clone()
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| ns.clone());
                let dep_rev = dep_obj
                    .status
                    .as_ref()
                    .and_then(|s| s.last_applied_revision.clone())
                    .unwrap_or_default();
                if a.name == b.name
                    && a_ns == b_ns
                    && a.kind.as_str() == b.kind.as_str()
                    && dep_rev != revision
                {
                    return Err((
                        format!("dependency '{ns}/{}' revision is not up to date", dep.name),
                        false,
                    ));
                }
            }
        }
        Ok(())
    }

    /// Variables of `postBuild`: substituteFrom in order, then substitute (newlines removed).
    async fn load_variables(
        &self,
        obj: &Kustomization,
        client: Client,
    ) -> Result<BTreeMap<String, String>, String> {
        let mut vars = BTreeMap::new();
        let Some(pb) = &obj.spec.post_build else {
            return Ok(vars);
        };
        let ns = obj.namespace().unwrap_or_default();
        for reference in pb.substitute_from.iter().flatten() {
            let optional = reference.optional.unwrap_or(false);
            match reference.kind {
                ValuesSourceKind::ConfigMap => {
                    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns);
                    match api.get_opt(&reference.name).await {
                        Ok(Some(cm)) => {
                            for (k, v) in cm.data.unwrap_or_default() {
                                vars.insert(k, v.replace('\n', ""));
                            }
                        }
                        Ok(None) if optional => {}
                        Ok(None) => {
                            return Err(format!(
                                "substitute from 'ConfigMap/{}' error: configmaps \"{}\" not found",
                                reference.name, reference.name
                            ));
                        }
                        Err(e) => {
                            return Err(format!(
                                "substitute from 'ConfigMap/{}' error: {e}",
                                reference.name
                            ));
                        }
                    }
                }
                ValuesSourceKind::Secret => {
                    let api: Api<Secret> = Api::namespaced(client.clone(), &ns);
                    match api.get_opt(&reference.name).await {
                        Ok(Some(s)) => {
                            for (k, v) in s.data.unwrap_or_default() {
                                vars.insert(k, String::from_utf8_lossy(&v.0).replace('\n', ""));
                            }
                        }
                        Ok(None) if optional => {}
                        Ok(None) => {
                            return Err(format!(
                                "substitute from 'Secret/{}' error: secrets \"{}\" not found",
                                reference.name, reference.name
                            ));
                        }
                        Err(e) => {
                            return Err(format!(
                                "substitute from 'Secret/{}' error: {e}",
                                reference.name
                            ));
                        }
                    }
                }
            }
        }
        for (k, v) in pb.substitute.iter().flatten() {
            vars.insert(k.clone(), v.replace('\n', ""));
        }
        Ok(vars)
    }

    /// kustomize build plus decryption and substitution, as upstream's `build`.
    async fn build(
        &self,
        obj: &Kustomization,
        root: &Path,
        dir: &Path,
    ) -> Result<Vec<Value>, String> {
        generator::write_kustomization(root, dir, &obj.spec)?;
        let decryptor = match &obj.spec.decryption {
            Some(_) => Some(crate::decrypt::Decryptor::load(obj, self.clients.own()).await?),
            None => None,
        };
        if let Some(d) = &decryptor {
            d.decrypt_sources(root, dir)
                .map_err(|e| format!("error decrypting sources: {e}"))?;
        }
        let root_owned = root.to_path_buf();
        let dir_owned = dir.to_path_buf();
        let built = tokio::task::spawn_blocking(move || {
            let fs = generator::RootedFs::new(&root_owned)
                .map_err(|e| format!("kustomize build failed: {e}"))?;
            let options = ferroflux_kustomize::BuildOptions {
                load_restrictions: ferroflux_kustomize::LoadRestrictions::None,
                ..Default::default()
            };
            ferroflux_kustomize::Kustomizer::new(&fs, options)
                .build(&dir_owned)
                .map_err(|e| {
                    format!(
                        "kustomize build failed: {}",
                        relative_error(&e.to_string(), &root_owned)
                    )
                })
        })
        .await
        .map_err(|e| format!("kustomize build failed: {e}"))??;

        let vars = match &obj.spec.post_build {
            Some(_) => self.load_variables(obj, self.clients.own()).await?,
            None => BTreeMap::new(),
        };
        let always = obj.substitute_strategy() == SubstituteStrategy::Always;
        let mut out = Vec::with_capacity(built.len());
        for mut res in built {
            let name = res
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            let kind = res.get("kind").and_then(Value::as_str).unwrap_or("");
            let api_version = res.get("apiVersion").and_then(Value::as_str).unwrap_or("");
            if name.is_empty() || kind.is_empty() || api_version.is_empty() {
                return Err(format!(
                    "failed to decode Kubernetes apiVersion, kind and name from: {}",
                    ferroflux_kustomize::yaml::to_yaml(&res).trim_end()
                ));
            }
            let gvk = gvk_string(api_version, kind);
            let name = name.to_string();
            if let Some(d) = &decryptor
                && let Some(plain) = d
                    .decrypt_resource(&res)
                    .map_err(|e| format!("decryption failed for '{gvk}/{name}': {e}"))?
            {
                res = plain;
            }
            if obj.spec.post_build.is_some()
                && let Some(v) = substitute::substitute_object(
                    &res,
                    &vars,
                    self.settings.strict_substitutions,
                    always,
                )
                .map_err(|e| format!("post build failed for '{gvk}/{name}': {e}"))?
            {
                res = v;
            }
            out.push(res);
        }
        Ok(out)
    }

    async fn run(
        &self,
        obj: &Kustomization,
        writer: &mut StatusWriter,
        started: Instant,
    ) -> Ending {
        let health =
            match HealthExprs::compile(obj.spec.health_check_exprs.as_deref().unwrap_or(&[])) {
                Ok(h) => h,
                Err(e) => {
                    let msg = format!("{TERMINAL_ERROR}: {e}");
                    writer.stalled(reason::INVALID_CEL_EXPRESSION, &msg);
                    writer.status.observed_generation = obj.meta().generation;
                    self.event(obj, writer, Severity::Error, "", "", &msg, &[])
                        .await;
                    return Ending::Stalled;
                }
            };
        if obj
            .spec
            .decryption
            .as_ref()
            .and_then(|d| d.service_account_name.as_deref())
            .is_some_and(|s| !s.is_empty())
        {
            let msg = "to use spec.decryption.serviceAccountName for decryption authentication please enable the ObjectLevelWorkloadIdentity feature gate in the controller";
            writer.stalled(reason::FEATURE_GATE_DISABLED, msg);
            self.event(obj, writer, Severity::Error, "", "", msg, &[])
                .await;
            return Ending::Stalled;
        }
        let retry = obj
            .effective_retry_interval()
            .unwrap_or(Duration::from_secs(60));
        let source = match self.get_source(obj, self.clients.own()).await {
            Ok(s) => s,
            Err(SourceError::NotFound(msg)) => {
                writer.fail(reason::ARTIFACT_FAILED, &msg);
                return Ending::Wait(retry);
            }
            Err(SourceError::AccessDenied(msg)) => {
                writer.stalled(reason::ACCESS_DENIED, &msg);
                self.event(obj, writer, Severity::Error, "", "", &msg, &[])
                    .await;
                return Ending::Stalled;
            }
            Err(SourceError::Other(msg)) => {
                writer.fail(reason::ARTIFACT_FAILED, &msg);
                return Ending::Failed;
            }
        };
        let requeue_dep = self.settings.requeue_dependency;
        let Some(artifact) = source else {
            let msg = format!(
                "Source artifact not found, retrying in {}",
                format_go(requeue_dep)
            );
            writer.fail(reason::ARTIFACT_FAILED, &msg);
            return Ending::Wait(requeue_dep);
        };
        let revision = artifact.revision.clone();
        let origin = artifact
            .metadata
            .as_ref()
            .and_then(|m| m.get(ORIGIN_REVISION_KEY))
            .cloned()
            .unwrap_or_default();

        if obj.spec.depends_on.as_ref().is_some_and(|d| !d.is_empty()) {
            if let Err((msg, terminal)) = self
                .check_dependencies(obj, self.clients.own(), &revision)
                .await
            {
                if terminal {
                    let msg = format!("{TERMINAL_ERROR}: {msg}");
                    writer.stalled(reason::INVALID_CEL_EXPRESSION, &msg);
                    writer.status.observed_generation = obj.meta().generation;
                    self.event(obj, writer, Severity::Error, &revision, &origin, &msg, &[])
                        .await;
                    return Ending::Stalled;
                }
                writer.fail(reason::DEPENDENCY_NOT_READY, &msg);
                let info = format!(
                    "Dependencies do not meet ready condition, retrying in {}",
                    format_go(requeue_dep)
                );
                tracing::info!("{info}");
                self.event(obj, writer, Severity::Info, &revision, &origin, &info, &[])
                    .await;
                return Ending::Wait(requeue_dep);
            }
            tracing::info!("All dependencies are ready, proceeding with reconciliation");
        }

        match self
            .reconcile_artifact(obj, writer, &artifact, &origin, &health, started)
            .await
        {
            Ok(()) => Ending::Ready,
            Err(Failure::ArtifactMissing) => {
                let msg = format!(
                    "Source is not ready, artifact not found, retrying in {}",
                    format_go(requeue_dep)
                );
                writer.fail(reason::ARTIFACT_FAILED, &msg);
                Ending::Wait(requeue_dep)
            }
            Err(Failure::Error(msg)) => {
                tracing::error!(
                    revision = %revision,
                    "Reconciliation failed after {}, next try in {}: {msg}",
                    format_go(started.elapsed()),
                    format_go(retry)
                );
                self.event(obj, writer, Severity::Error, &revision, &origin, &msg, &[])
                    .await;
                Ending::Failed
            }
        }
    }

    async fn reconcile_artifact(
        &self,
        obj: &Kustomization,
        writer: &mut StatusWriter,
        artifact: &Artifact,
        origin: &str,
        health: &HealthExprs,
        started: Instant,
    ) -> Result<(), Failure> {
        let revision = artifact.revision.as_str();
        let timeout = obj.effective_timeout();
        let timeout_text = format_go(timeout);
        writer.mark(
            cond::READY,
            cond::UNKNOWN,
            reason::PROGRESSING,
            "Reconciliation in progress",
        );
        writer.reconciling(&format!(
            "Fetching manifests for revision {revision} with a timeout of {timeout_text}"
        ));
        writer.progress().await.map_err(Failure::Error)?;

        let old_inventory = writer.status.inventory.clone().unwrap_or_default();

        std::fs::create_dir_all(&self.scratch_root).map_err(|e| {
            let msg = format!("tmp dir error: {e}");
            writer.fail(reason::DIRECTORY_CREATION_FAILED, &msg);
            Failure::Error(msg)
        })?;
        let tmp = tempfile::Builder::new()
            .prefix("kustomization-")
            .tempdir_in(&self.scratch_root)
            .map_err(|e| {
                let msg = format!("tmp dir error: {e}");
                writer.fail(reason::DIRECTORY_CREATION_FAILED, &msg);
                Failure::Error(msg)
            })?;
        let root = tmp.path().to_path_buf();

        let url = self.artifact_url(&artifact.url);
        let data = match self.fetcher.fetch(&url, &artifact.digest).await {
            Ok(d) => d,
            Err(ArtifactError::NotFound { .. }) => return Err(Failure::ArtifactMissing),
            Err(e) => {
                let msg = e.to_string();
                writer.fail(reason::ARTIFACT_FAILED, &msg);
                return Err(Failure::Error(msg));
            }
        };
        let untar_root = root.clone();
        let untarred = tokio::task::spawn_blocking(move || {
            ferroflux_runtime::artifact::untar_gz(&data, &untar_root, UntarLimits::default())
        })
        .await;
        match untarred {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                let msg = format!("failed to extract artifact: {e}");
                writer.fail(reason::ARTIFACT_FAILED, &msg);
                return Err(Failure::Error(msg));
            }
            Err(e) => {
                let msg = format!("failed to extract artifact: {e}");
                writer.fail(reason::ARTIFACT_FAILED, &msg);
                return Err(Failure::Error(msg));
            }
        }
        let path = obj.spec.path.clone().unwrap_or_default();
        let dir = secure_join(&root, &path);
        if !dir.exists() {
            let msg = format!(
                "kustomization path not found: stat {}: no such file or directory",
                display_path(&path)
            );
            writer.fail(reason::ARTIFACT_FAILED, &msg);
            return Err(Failure::Error(msg));
        }

        writer.status.last_attempted_revision = Some(revision.to_string());
        writer.reconciling(&format!(
            "Building manifests for revision {revision} with a timeout of {timeout_text}"
        ));
        writer.progress().await.map_err(Failure::Error)?;

        let client = match self.clients.for_kustomization(obj).await {
            Ok(c) => c,
            Err(e) => {
                writer.fail(reason::RECONCILIATION_FAILED, &e);
                return Err(Failure::Error(format!("failed to build kube client: {e}")));
            }
        };

        let mut objects = match self.build(obj, &root, &dir).await {
            Ok(o) => o,
            Err(e) => {
                writer.fail(reason::BUILD_FAILED, &e);
                return Err(Failure::Error(e));
            }
        };
        drop(tmp);

        let stream = ferroflux_kustomize::yaml::to_yaml_stream(objects.iter());
        let checksum = format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(stream.as_bytes()))
        );
        let mut history_meta = BTreeMap::from([("revision".to_string(), revision.to_string())]);
        if !origin.is_empty() {
            history_meta.insert("originRevision".to_string(), origin.to_string());
        }

        let name = obj.name_any();
        let ns = obj.namespace().unwrap_or_default();
        for o in &mut objects {
            set_owner_labels(o, &name, &ns);
        }

        writer.reconciling(&format!(
            "Detecting drift for revision {revision} with a timeout of {timeout_text}"
        ));
        writer.progress().await.map_err(Failure::Error)?;

        let manager = self.resource_manager(client, obj.spec.kube_config.is_some());
        let jobs_with_ttl = ferroflux_ssa::jobs_with_ttl(&objects);
        let (drifted, change_set) = match self
            .apply(obj, writer, &manager, objects, revision, origin)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                writer.upsert_history(
                    &checksum,
                    started,
                    reason::RECONCILIATION_FAILED,
                    &history_meta,
                );
                writer.fail(reason::RECONCILIATION_FAILED, &e);
                return Err(Failure::Error(e));
            }
        };

        let new_inventory = ResourceInventory {
            entries: change_set
                .entries
                .iter()
                .map(|e| ResourceRef {
                    id: e.object.inventory_id(),
                    v: e.object.version.clone(),
                })
                .collect(),
        };
        let stale = inventory_diff(&old_inventory, &new_inventory);
        writer.status.inventory = Some(new_inventory);

        if obj.prune() && !stale.is_empty() {
            let opts = DeleteOptions::kustomization(&manager, &name, &ns);
            let (cs, result) = manager.delete_all_partial(stale.clone(), &opts).await;
            match result {
                Ok(()) => {
                    if !cs.entries.is_empty() {
                        let summary = cs.summary();
                        tracing::info!("garbage collection completed: {summary}");
                        self.event(obj, writer, Severity::Info, revision, origin, &summary, &[])
                            .await;
                    }
                }
                Err(e) => {
                    // Objects not confirmed deleted (or skipped) stay in the inventory, so
                    // the next reconcile retries them.
                    if let Some(inv) = writer.status.inventory.as_mut() {
                        for o in &stale {
                            let settled = cs.entries.iter().any(|entry| {
                                entry.object.same_object(o)
                                    && matches!(entry.action, Action::Deleted | Action::Skipped)
                            });
                            let id = o.inventory_id();
                            if !settled && !inv.entries.iter().any(|r| r.id == id) {
                                inv.entries.push(ResourceRef {
                                    id,
                                    v: o.version.clone(),
                                });
                            }
                        }
                    }
                    let msg = e.to_string();
                    writer.upsert_history(&checksum, started, reason::PRUNE_FAILED, &history_meta);
                    writer.fail(reason::PRUNE_FAILED, &msg);
                    return Err(Failure::Error(msg));
                }
            }
        }

        let last_applied = writer
            .status
            .last_applied_revision
            .clone()
            .unwrap_or_default();
        let is_new_revision = last_applied != revision;
        if let Err(e) = self
            .check_health(
                obj,
                writer,
                &manager,
                health,
                revision,
                origin,
                is_new_revision,
                drifted,
                &change_set,
                jobs_with_ttl,
                timeout,
            )
            .await
        {
            writer.upsert_history(
                &checksum,
                started,
                reason::HEALTH_CHECK_FAILED,
                &history_meta,
            );
            writer.fail(reason::HEALTH_CHECK_FAILED, &e);
            return Err(Failure::Error(e));
        }

        writer.status.last_applied_revision = Some(revision.to_string());
        writer.status.last_applied_origin_revision =
            (!origin.is_empty()).then(|| origin.to_string());
        writer.mark(
            cond::READY,
            cond::TRUE,
            reason::RECONCILIATION_SUCCEEDED,
            &format!("Applied revision: {revision}"),
        );
        writer.upsert_history(
            &checksum,
            started,
            reason::RECONCILIATION_SUCCEEDED,
            &history_meta,
        );
        Ok(())
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

    fn resource_manager(&self, client: Client, remote: bool) -> ResourceManager {
        let discovery = if remote {
            ferroflux_ssa::discovery::DiscoveryCache::new()
        } else {
            self.discovery.clone()
        };
        ResourceManager::new(
            client,
            Owner {
                field_manager: FIELD_MANAGER.to_string(),
                group: GROUP.to_string(),
            },
        )
        .with_concurrency(self.settings.concurrent_ssa.max(1))
        .with_cleanup(ApplyCleanup::kustomize_controller(
            FIELD_MANAGER,
            &self.settings.override_managers,
        ))
        .with_discovery(discovery)
    }

    async fn apply(
        &self,
        obj: &Kustomization,
        writer: &StatusWriter,
        manager: &ResourceManager,
        mut objects: Vec<Value>,
        revision: &str,
        origin: &str,
    ) -> Result<(bool, ChangeSet), String> {
        if let Some(cm) = &obj.spec.common_metadata {
            for o in &mut objects {
                set_common_metadata(o, cm.labels.as_ref(), cm.annotations.as_ref());
            }
        }
        for o in &objects {
            if is_encrypted_secret(o) && !decryption_disabled(o) {
                let subject = ObjMetadata::of(o)
                    .map(|m| m.subject())
                    .unwrap_or_else(|_| "Secret".into());
                return Err(format!(
                    "{subject} is SOPS encrypted, configuring decryption is required for this secret to be reconciled"
                ));
            }
        }
        if objects.is_empty() {
            return Ok((false, ChangeSet::default()));
        }
        let ignore = obj
            .spec
            .ignore
            .iter()
            .flatten()
            .map(|rule| ferroflux_ssa::IgnoreRule {
                paths: rule.paths.clone(),
                target: rule.target.as_ref().map(|t| ferroflux_ssa::Selector {
                    group: t.group.clone().unwrap_or_default(),
                    version: t.version.clone().unwrap_or_default(),
                    kind: t.kind.clone().unwrap_or_default(),
                    name: t.name.clone().unwrap_or_default(),
                    namespace: t.namespace.clone().unwrap_or_default(),
                    annotation_selector: t.annotation_selector.clone().unwrap_or_default(),
                    label_selector: t.label_selector.clone().unwrap_or_default(),
                }),
            })
            .collect();
        let opts = ApplyOptions {
            ignore,
            custom_stage_kinds: self.settings.custom_stage_kinds.clone(),
            ..ApplyOptions::kustomization(obj.spec.force.unwrap_or(false))
        };
        let (change_set, result) = manager.apply_all_staged_partial(objects, &opts).await;
        let changed: Vec<String> = change_set
            .entries
            .iter()
            .filter(|e| e.action.has_changed())
            .map(|e| e.to_string())
            .collect();
        if let Err(e) = result {
            let mut msg = e.to_string();
            for line in &changed {
                msg.push('\n');
                msg.push_str(line);
            }
            return Err(msg);
        }
        tracing::info!(revision, output = ?change_set.to_map(), "server-side apply completed");
        let log = changed.join("\n");
        if !log.is_empty() {
            self.event(obj, writer, Severity::Info, revision, origin, &log, &[])
                .await;
        }
        Ok((!log.is_empty(), change_set))
    }

    #[allow(clippy::too_many_arguments)]
    async fn check_health(
        &self,
        obj: &Kustomization,
        writer: &mut StatusWriter,
        manager: &ResourceManager,
        health: &HealthExprs,
        revision: &str,
        origin: &str,
        is_new_revision: bool,
        drifted: bool,
        change_set: &ChangeSet,
        jobs_with_ttl: Vec<ObjMetadata>,
        timeout: Duration,
    ) -> Result<(), String> {
        let wait = obj.spec.wait.unwrap_or(false);
        let checks = obj.spec.health_checks.clone().unwrap_or_default();
        if checks.is_empty() && !wait {
            writer.delete(cond::HEALTHY);
            return Ok(());
        }
        let objects: Vec<ObjMetadata> = if wait {
            change_set
                .entries
                .iter()
                .filter(|e| e.action != Action::Skipped)
                .map(|e| e.object.clone())
                .collect()
        } else {
            let own_ns = obj.namespace().unwrap_or_default();
            checks
                .iter()
                .map(|c| {
                    let api_version = c.api_version.clone().unwrap_or_default();
                    let (group, version) = match api_version.split_once('/') {
                        Some((g, v)) => (g.to_string(), v.to_string()),
                        None => (String::new(), api_version.clone()),
                    };
                    ObjMetadata {
                        namespace: c.namespace.clone().unwrap_or_else(|| own_ns.clone()),
                        name: c.name.clone(),
                        group,
                        kind: c.kind.clone(),
                        version,
                    }
                })
                .collect()
        };
        let name = obj.name_any();
        let ns = obj.namespace().unwrap_or_default();
        let to_check: Vec<ObjMetadata> = objects
            .into_iter()
            .filter(|o| !(o.kind == "Kustomization" && o.name == name && o.namespace == ns))
            .collect();
        if to_check.is_empty() {
            writer.delete(cond::HEALTHY);
            return Ok(());
        }
        let was_healthy = writer.is(cond::HEALTHY, cond::TRUE);
        let message = format!(
            "Running health checks for revision {revision} with a timeout of {}",
            format_go(timeout)
        );
        writer.reconciling(&message);
        writer.mark(cond::HEALTHY, cond::UNKNOWN, reason::PROGRESSING, &message);
        writer
            .progress()
            .await
            .map_err(|e| format!("unable to update the healthy status to progressing: {e}"))?;
        let start = Instant::now();
        let custom = health.clone();
        let opts = WaitOptions {
            interval: self.settings.health_poll_interval,
            timeout,
            fail_fast: self.settings.fail_fast,
            jobs_with_ttl,
            custom_status: (!custom.is_empty())
                .then(|| Arc::new(move |v: &Value| custom.status_of(v)) as CustomStatus),
            ..Default::default()
        };
        if let Err(e) = manager.wait_for_set(&to_check, &opts).await {
            let msg = e.to_string();
            writer.mark(
                cond::HEALTHY,
                cond::FALSE,
                reason::HEALTH_CHECK_FAILED,
                &msg,
            );
            return Err(format!(
                "health check failed after {}: {msg}",
                format_go(start.elapsed())
            ));
        }
        let msg = format!("Health check passed in {}", format_go(start.elapsed()));
        if !was_healthy || (is_new_revision && drifted) {
            self.event(obj, writer, Severity::Info, revision, origin, &msg, &[])
                .await;
        }
        writer.mark(cond::HEALTHY, cond::TRUE, reason::SUCCEEDED, &msg);
        writer
            .progress()
            .await
            .map_err(|e| format!("unable to update the healthy status to progressing: {e}"))?;
        Ok(())
    }

    /// Final status touches, as upstream's `finalizeStatus`.
    fn finalize_status(obj: &Kustomization, writer: &mut StatusWriter) {
        if let Some(v) = obj
            .annotations()
            .get(ferroflux_runtime::driver::REQUESTED_AT_ANNOTATION)
        {
            writer.status.last_handled_reconcile_at = Some(v.clone());
        }
        if writer.is(cond::READY, cond::TRUE) {
            writer.delete(cond::RECONCILING);
            writer.status.observed_generation = obj.meta().generation;
        }
        if writer.is(cond::READY, cond::FALSE)
            && let Some(c) = writer
                .status
                .conditions
                .as_mut()
                .and_then(|c| c.iter_mut().find(|c| c.type_ == cond::RECONCILING))
        {
            c.reason = reason::PROGRESSING_WITH_RETRY.to_string();
        }
    }
}

enum Failure {
    ArtifactMissing,
    Error(String),
}

/// Joins `rel` under `root` lexically, never leaving it (like securejoin).
fn secure_join(root: &Path, rel: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for part in rel.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            p => out.push(p),
        }
    }
    root.join(out)
}

fn display_path(p: &str) -> String {
    if p.is_empty() {
        ".".to_string()
    } else {
        p.to_string()
    }
}

/// Error texts mention paths inside the scratch directory; show them relative to the artifact.
fn relative_error(msg: &str, root: &Path) -> String {
    let prefix = format!("{}/", root.display());
    msg.replace(&prefix, "")
        .replace(&root.display().to_string(), ".")
}

/// kustomize's `resid.Gvk` text, e.g. `~G_v1_ConfigMap` or `apps_v1_Deployment`.
fn gvk_string(api_version: &str, kind: &str) -> String {
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    let g = if group.is_empty() { "~G" } else { group };
    let v = if version.is_empty() { "~V" } else { version };
    let k = if kind.is_empty() { "~K" } else { kind };
    format!("{g}_{v}_{k}")
}

fn set_owner_labels(obj: &mut Value, name: &str, ns: &str) {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let labels = meta
        .entry("labels")
        .or_insert_with(|| Value::Object(Default::default()));
    if !labels.is_object() {
        *labels = Value::Object(Default::default());
    }
    if let Some(l) = labels.as_object_mut() {
        l.insert(NAME_LABEL.into(), Value::String(name.into()));
        l.insert(NAMESPACE_LABEL.into(), Value::String(ns.into()));
    }
}

fn set_common_metadata(
    obj: &mut Value,
    labels: Option<&BTreeMap<String, String>>,
    annotations: Option<&BTreeMap<String, String>>,
) {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    for (field, values) in [("labels", labels), ("annotations", annotations)] {
        let Some(values) = values.filter(|v| !v.is_empty()) else {
            continue;
        };
        let entry = meta
            .entry(field)
            .or_insert_with(|| Value::Object(Default::default()));
        if !entry.is_object() {
            *entry = Value::Object(Default::default());
        }
        if let Some(m) = entry.as_object_mut() {
            for (k, v) in values {
                m.insert(k.clone(), Value::String(v.clone()));
            }
        }
    }
}

/// A Secret still carrying SOPS metadata.
pub fn is_encrypted_secret(obj: &Value) -> bool {
    obj.get("kind").and_then(Value::as_str) == Some("Secret")
        && obj.get("apiVersion").and_then(Value::as_str) == Some("v1")
        && obj.get("sops").is_some()
}

/// Objects in `old` and not in `new`, keeping `old`'s versions.
fn inventory_diff(old: &ResourceInventory, new: &ResourceInventory) -> Vec<ObjMetadata> {
    let mut out = Vec::new();
    for entry in &old.entries {
        let Ok(o) = ObjMetadata::parse_inventory(&entry.id, &entry.v) else {
            continue;
        };
        let kept = new.entries.iter().any(|n| {
            ObjMetadata::parse_inventory(&n.id, &n.v)
                .map(|m| m.same_object(&o))
                .unwrap_or(false)
        });
        if !kept {
            out.push(o);
        }
    }
    out
}

impl Reconciler<Kustomization> for KustomizationReconciler {
    async fn reconcile(
        &self,
        obj: Arc<Kustomization>,
        ctx: ReconcileContext,
    ) -> Result<Outcome, ReconcileError> {
        let started = Instant::now();
        let ns = obj.namespace().unwrap_or_default();
        let status = obj.status.clone().unwrap_or_default();
        let mut writer = StatusWriter {
            api: Api::namespaced(ctx.client.clone(), &ns),
            name: obj.name_any(),
            generation: obj.meta().generation,
            status: status.clone(),
            written: status,
            started,
        };
        let ending = self.run(&obj, &mut writer, started).await;
        Self::finalize_status(&obj, &mut writer);
        if let Err(e) = writer.patch().await {
            return Err(ReconcileError::new(e));
        }
        let interval = ferroflux_runtime::driver::Reconcilable::interval(obj.as_ref())
            .unwrap_or(Duration::from_secs(600));
        if writer.is(cond::READY, cond::TRUE) {
            let msg = format!(
                "Reconciliation finished in {}, next run in {}",
                format_go(started.elapsed()),
                format_go(interval)
            );
            tracing::info!(
                revision = writer
                    .status
                    .last_attempted_revision
                    .as_deref()
                    .unwrap_or(""),
                "{msg}"
            );
            let rev = writer
                .status
                .last_applied_revision
                .clone()
                .unwrap_or_default();
            let origin = writer
                .status
                .last_applied_origin_revision
                .clone()
                .unwrap_or_default();
            self.event(
                &obj,
                &writer,
                Severity::Info,
                &rev,
                &origin,
                &msg,
                &[("commit_status", "update")],
            )
            .await;
        }
        ferroflux_runtime::memory::note_reconcile();
        let retry = obj.effective_retry_interval().unwrap_or(interval);
        Ok(match ending {
            Ending::Ready => Outcome::RequeueAtInterval,
            Ending::Failed => Outcome::RequeueAfter(retry),
            Ending::Wait(d) => Outcome::RequeueAfter(d),
            Ending::Stalled => Outcome::AwaitChange,
        })
    }

    async fn cleanup(
        &self,
        obj: Arc<Kustomization>,
        _ctx: ReconcileContext,
    ) -> Result<(), ReconcileError> {
        let inventory = obj
            .status
            .as_ref()
            .and_then(|s| s.inventory.clone())
            .unwrap_or_default();
        let delete = !obj.spec.suspend.unwrap_or(false)
            && !inventory.entries.is_empty()
            && match obj.deletion_policy() {
                DeletionPolicy::MirrorPrune => obj.prune(),
                DeletionPolicy::Delete | DeletionPolicy::WaitForTermination => true,
                DeletionPolicy::Orphan => false,
            };
        if !delete {
            return Ok(());
        }
        let status = obj.status.clone().unwrap_or_default();
        let rev = status.last_applied_revision.clone().unwrap_or_default();
        let origin = status
            .last_applied_origin_revision
            .clone()
            .unwrap_or_default();
        let writer = StatusWriter {
            api: Api::namespaced(self.clients.own(), &obj.namespace().unwrap_or_default()),
            name: obj.name_any(),
            generation: obj.meta().generation,
            status: status.clone(),
            written: status,
            started: Instant::now(),
        };
        let objects: Vec<ObjMetadata> = inventory
            .entries
            .iter()
            .filter_map(|e| ObjMetadata::parse_inventory(&e.id, &e.v).ok())
            .collect();
        if !self.clients.can_impersonate(&obj).await {
            let list: Vec<String> = objects.iter().map(|o| o.subject()).collect();
            let msg = format!("unable to prune objects: \n{}", list.join("\n"));
            tracing::error!("skipping pruning, failed to find account to impersonate: {msg}");
            self.event(&obj, &writer, Severity::Error, &rev, &origin, &msg, &[])
                .await;
            return Ok(());
        }
        let client = self
            .clients
            .for_kustomization(&obj)
            .await
            .map_err(ReconcileError::new)?;
        let manager = self.resource_manager(client, obj.spec.kube_config.is_some());
        let name = obj.name_any();
        let ns = obj.namespace().unwrap_or_default();
        let opts = DeleteOptions::kustomization(&manager, &name, &ns);
        let change_set = match manager.delete_all(objects, &opts).await {
            Ok(cs) => cs,
            Err(e) => {
                self.event(
                    &obj,
                    &writer,
                    Severity::Error,
                    &rev,
                    &origin,
                    "pruning for deleted resource failed",
                    &[],
                )
                .await;
                return Err(ReconcileError::new(e.to_string()));
            }
        };
        if !change_set.entries.is_empty() {
            self.event(
                &obj,
                &writer,
                Severity::Info,
                &rev,
                &origin,
                &change_set.summary(),
                &[],
            )
            .await;
            if obj.deletion_policy() == DeletionPolicy::WaitForTermination {
                let deleted: Vec<ObjMetadata> = change_set
                    .entries
                    .iter()
                    .filter(|e| e.action == Action::Deleted)
                    .map(|e| e.object.clone())
                    .collect();
                let wait = WaitOptions {
                    interval: Duration::from_secs(2),
                    timeout: obj.effective_timeout(),
                    ..Default::default()
                };
                if let Err(e) = manager.wait_for_termination(&deleted, &wait).await {
                    tracing::error!(error = %e, "failed to wait for resources termination");
                    self.event(
                        &obj,
                        &writer,
                        Severity::Error,
                        &rev,
                        &origin,
                        "failed to wait for resources termination",
                        &[],
                    )
                    .await;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secure_join_stays_inside() {
        let root = Path::new("/tmp/a");
        assert_eq!(secure_join(root, "./apps/../x"), PathBuf::from("/tmp/a/x"));
        assert_eq!(secure_join(root, "../../etc"), PathBuf::from("/tmp/a/etc"));
        assert_eq!(secure_join(root, ""), PathBuf::from("/tmp/a"));
    }

    #[test]
    fn gvk_text_matches_kustomize() {
        assert_eq!(gvk_string("v1", "ConfigMap"), "~G_v1_ConfigMap");
        assert_eq!(gvk_string("apps/v1", "Deployment"), "apps_v1_Deployment");
    }

    #[test]
    fn owner_labels_and_common_metadata() {
        let mut o = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "labels": {"app": "x", "team": "a"}}});
        set_owner_labels(&mut o, "apps", "flux-system");
        assert_eq!(o["metadata"]["labels"][NAME_LABEL], "apps");
        assert_eq!(o["metadata"]["labels"][NAMESPACE_LABEL], "flux-system");
        let labels = BTreeMap::from([("team".to_string(), "b".to_string())]);
        let ann = BTreeMap::from([("note".to_string(), "y".to_string())]);
        set_common_metadata(&mut o, Some(&labels), Some(&ann));
        assert_eq!(
            o["metadata"]["labels"]["team"], "b",
            "commonMetadata overrides"
        );
        assert_eq!(o["metadata"]["annotations"]["note"], "y");
    }

    #[test]
    fn encrypted_secrets_are_detected() {
        let s = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                       "sops": {"mac": "x"}});
        assert!(is_encrypted_secret(&s));
        assert!(!decryption_disabled(&s));
        let mut off = s.clone();
        off["metadata"]["annotations"] = json!({crate::decrypt::DECRYPT_KEY: "Disabled"});
        assert!(decryption_disabled(&off));
        assert!(!is_encrypted_secret(
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "sops": {}})
        ));
        // As upstream: any `sops` field marks a Secret (it is refused unless decrypted), but
        // only a non-empty `sops.mac` makes a resource one to decrypt as a whole.
        let odd = json!({"apiVersion": "v1", "kind": "Secret", "sops": "x"});
        assert!(is_encrypted_secret(&odd));
        assert!(!crate::decrypt::is_sops_encrypted_resource(&odd));
        assert!(crate::decrypt::is_sops_encrypted_resource(&s));
        for sops in [
            json!({}),
            json!({"mac": ""}),
            json!({"mac": null}),
            json!({"age": []}),
        ] {
            let r = json!({"kind": "ConfigMap", "sops": sops});
            assert!(!crate::decrypt::is_sops_encrypted_resource(&r), "{r}");
        }
    }

    #[test]
    fn inventory_diff_finds_stale_objects() {
        let inv = |ids: &[(&str, &str)]| ResourceInventory {
            entries: ids
                .iter()
                .map(|(id, v)| ResourceRef {
                    id: id.to_string(),
                    v: v.to_string(),
                })
                .collect(),
        };
        let old = inv(&[
            ("default_a__ConfigMap", "v1"),
            ("default_web_apps_Deployment", "v1"),
        ]);
        let new = inv(&[("default_a__ConfigMap", "v1")]);
        let stale = inventory_diff(&old, &new);
        assert_eq!(stale.len(), 1);
        assert_eq!(stale[0].kind, "Deployment");
        assert_eq!(stale[0].group, "apps");
    }

    #[test]
    fn history_is_upserted_newest_first_and_bounded() {
        let mut h = Vec::new();
        let meta = BTreeMap::new();
        let d = Duration::from_millis(5);
        upsert_history(&mut h, "sha256:a", d, "ReconciliationSucceeded", &meta);
        upsert_history(&mut h, "sha256:b", d, "ReconciliationSucceeded", &meta);
        upsert_history(&mut h, "sha256:a", d, "ReconciliationSucceeded", &meta);
        assert_eq!(h.len(), 2);
        assert_eq!(h[0].digest, "sha256:a");
        assert_eq!(h[0].total_reconciliations, 2);
        upsert_history(&mut h, "sha256:a", d, "HealthCheckFailed", &meta);
        assert_eq!(h.len(), 3, "same digest, other status: a new snapshot");
        for i in 0..10 {
            upsert_history(&mut h, &format!("sha256:{i}"), d, "BuildFailed", &meta);
        }
        assert_eq!(h.len(), HISTORY_MAX);
    }
}
