//! The HelmChart reconciler.
//!
//! Upstream's pipeline: storage (garbage collection, the advertised artifact still there with
//! its digest), source (the HelmRepository, GitRepository or Bucket must have an artifact;
//! then the chart is built) and artifact (the chart stored as `<name>-<version>.tgz` with the
//! `latest.tar.gz` link).
//!
//! From a HelmRepository the version range is resolved against the stored index, the chart
//! downloaded (relative or absolute URL, credentials per the passCredentials rule, digest
//! checked against the index) and stored as is, or repackaged when values files or version
//! metadata change it. From a GitRepository or Bucket the chart directory at `spec.chart` is
//! loaded from the source artifact, its missing dependencies added (`file://` ones from the
//! source, remote ones through the namespace's HelmRepository for that URL, or the URL itself)
//! and packaged as `helm package` would. A chart with the same name and version as the stored
//! one is not rebuilt unless the generation changed.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ferroflux_api::conditions::{self as cond, reason, source_reason};
use ferroflux_api::helmchart::{
    HelmChart, HelmChartSourceKind, HelmChartStatus, ReconcileStrategy,
};
use ferroflux_api::ocirepository::VerificationProvider;
use ferroflux_api::{Artifact, Bucket, FluxObject, GitRepository, HelmRepository};
use ferroflux_helm::package::chart::{self as pkg, Limits};
use ferroflux_helm::package::index::{ChartVersion, IndexFile};
use ferroflux_runtime::events::{EventRecorder, Severity};
use ferroflux_runtime::{Outcome, ReconcileContext, ReconcileError, Reconciler};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::Api;
use kube::{Resource, ResourceExt};
use sha2::Digest as _;

use crate::artifact_events::ArtifactEventLog;
use crate::helm_http::{self, GetError, Getter, Limit, SecretLookup};
use crate::pipeline;
use crate::pipeline::{
    Conds, ErrorKind, RunRecord, StepError, storage_detail, summarize, tempdir_in,
};
pub use crate::pipeline::{PendingEvent, PipelineResult};
use crate::storage::Storage;

/// Kind name used in storage paths and events.
pub const KIND: &str = "HelmChart";
/// Status field manager (upstream: the controller name).
pub use crate::pipeline::FIELD_MANAGER;

/// What the pipeline needs from the cluster.
pub trait Lookup: SecretLookup {
    fn helm_repository(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<HelmRepository>, String>> + Send;
    fn git_repository(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<GitRepository>, String>> + Send;
    /// Every HelmRepository of the namespace (dependencies are matched by URL).
    fn helm_repositories(
        &self,
        namespace: &str,
    ) -> impl Future<Output = Result<Vec<HelmRepository>, String>> + Send;
    /// A Bucket (charts built from its artifact); lookups without Buckets find none.
    fn bucket(
        &self,
        _namespace: &str,
        _name: &str,
    ) -> impl Future<Output = Result<Option<Bucket>, String>> + Send {
        async { Ok(None) }
    }
}

/// Settings shared by every reconcile.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `--helm-index-max-size`, `--helm-chart-max-size`, `--helm-chart-file-max-size`.
    pub index_max_size: u64,
    pub limits: Limits,
    /// `--requeue-dependency`: the wait for a source artifact.
    pub requeue_dependency: Duration,
    /// The parsed-index cache shared with the HelmRepository reconciler.
    pub cache: Option<crate::helm_cache::IndexCache>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            index_max_size: crate::helmrepository::DEFAULT_INDEX_MAX_SIZE,
            limits: Limits::default(),
            requeue_dependency: Duration::from_secs(30),
            cache: None,
        }
    }
}

/// Everything a reconcile produced.
#[derive(Clone, Debug)]
pub struct PipelineOutput {
    pub status: HelmChartStatus,
    pub result: PipelineResult,
    pub events: Vec<PendingEvent>,
    pub new_artifact: Option<Artifact>,
}

/// Why a build failed: upstream's build error reasons.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BuildReason {
    ChartReference,
    ChartPull,
    MetadataPatch,
    ValuesFiles,
    DependencyBuild,
    ChartPackage,
    ChartVerification,
    Unknown,
}

impl BuildReason {
    fn reason(self) -> &'static str {
        match self {
            Self::ChartReference => source_reason::INVALID_CHART_REFERENCE,
            Self::ChartPull => source_reason::CHART_PULL_ERROR,
            Self::MetadataPatch => source_reason::METADATA_PATCH_ERROR,
            Self::ValuesFiles => source_reason::VALUES_FILES_ERROR,
            Self::DependencyBuild => source_reason::DEPENDENCY_BUILD_ERROR,
            Self::ChartPackage => source_reason::CHART_PACKAGE_ERROR,
            Self::ChartVerification => source_reason::CHART_VERIFICATION_ERROR,
            Self::Unknown => "Unknown",
        }
    }
    fn summary(self) -> &'static str {
        match self {
            Self::ChartReference => "invalid chart reference",
            Self::ChartPull => "chart pull error",
            Self::MetadataPatch => "chart metadata patch error",
            Self::ValuesFiles => "values files merge error",
            Self::DependencyBuild => "dependency build error",
            Self::ChartPackage => "chart package error",
            Self::ChartVerification => "chart verification error",
            Self::Unknown => "unknown build error",
        }
    }
    fn persistent(self) -> bool {
        matches!(
            self,
            Self::ChartReference | Self::MetadataPatch | Self::ValuesFiles
        )
    }
    /// Build failures (not fetch failures) set BuildFailed.
    fn is_build(self) -> bool {
        matches!(
            self,
            Self::MetadataPatch
                | Self::ValuesFiles
                | Self::DependencyBuild
                | Self::ChartPackage
                | Self::ChartVerification
        )
    }
}

struct BuildError {
    reason: BuildReason,
    message: String,
}

fn build_err(reason: BuildReason, message: impl Into<String>) -> BuildError {
    BuildError {
        reason,
        message: message.into(),
    }
}

/// A (possibly partial) build: upstream's `chart.Build`.
#[derive(Clone, Debug, Default)]
struct Build {
    name: String,
    version: String,
    /// The packaged chart; `None` with `cached` when the stored artifact is the result.
    data: Option<Vec<u8>>,
    cached: bool,
    values_files: Vec<String>,
    resolved_dependencies: usize,
    packaged: bool,
    /// The chart's signature was verified (`spec.verify`, OCI charts).
    verified: bool,
}

impl Build {
    fn has_metadata(&self) -> bool {
        !self.name.is_empty() && !self.version.is_empty()
    }
    fn complete(&self) -> bool {
        self.has_metadata() && (self.data.is_some() || self.cached)
    }
    fn summary(&self) -> String {
        if !self.has_metadata() {
            return "no chart build".into();
        }
        let action = if !(self.data.is_some() || self.cached) {
            "new"
        } else if self.packaged {
            "packaged"
        } else {
            "pulled"
        };
        let mut s = format!(
            "{action} '{}' chart with version '{}'",
            self.name, self.version
        );
        if !self.values_files.is_empty() {
            s.push_str(&format!(
                " and merged values files [{}]",
                self.values_files.join(" ")
            ));
        }
        s
    }
    fn reason(&self) -> &'static str {
        if self.packaged {
            source_reason::CHART_PACKAGE_SUCCEEDED
        } else {
            source_reason::CHART_PULL_SUCCEEDED
        }
    }
}

/// Values files that change the chart: all of them, unless the list is just `values.yaml`.
fn effective_values_files(files: &[String]) -> &[String] {
    if files.len() == 1 && clean(&files[0]) == "values.yaml" {
        &[]
    } else {
        files
    }
}

fn clean(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for s in p.split('/') {
        match s {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    out.join("/")
}

/// Upstream's remote chart name rule.
fn valid_chart_name(name: &str) -> bool {
    regex::Regex::new(r"^([-a-z0-9]+/?\.?)+$")
        .map(|r| r.is_match(name))
        .unwrap_or(false)
}

/// The 12 hex digits a Revision strategy appends for a Git or Bucket source.
fn revision_metadata(kind: HelmChartSourceKind, revision: &str) -> String {
    let hex = match kind {
        HelmChartSourceKind::GitRepository => match revision.rsplit_once(':') {
            Some((_, h)) => h.to_string(),
            None => revision.rsplit('/').next().unwrap_or(revision).to_string(),
        },
        _ => match revision.split_once(':') {
            Some((_, h)) => h.to_string(),
            None => revision.to_string(),
        },
    };
    hex.chars().take(12).collect()
}

/// Where one dependency repository's index comes from.
struct DepRepo {
    getter: Getter,
    url: String,
    index: Option<Arc<IndexFile>>,
}

struct Run<'a, L: Lookup> {
    obj: &'a HelmChart,
    storage: &'a Storage,
    lookup: &'a L,
    settings: &'a Settings,
    scratch_root: &'a Path,
    status: HelmChartStatus,
    conds: Vec<Condition>,
    events: Vec<PendingEvent>,
    new_artifact: Option<Artifact>,
    build: Build,
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
    fn namespace(&self) -> String {
        self.obj.namespace().unwrap_or_default()
    }

    fn force(&self) -> bool {
        self.obj.meta().generation != self.status.observed_generation
    }

    fn cached_chart(&self) -> Option<Vec<u8>> {
        let a = self.status.artifact.as_ref()?;
        std::fs::read(self.storage.local_path(&a.path).ok()?).ok()
    }

    async fn reconcile_storage(&mut self) -> Result<(), StepError> {
        let conds = Conds {
            list: &mut self.conds,
            generation: self.obj.meta().generation,
        };
        pipeline::reconcile_storage(
            self.storage,
            &mut self.status.artifact,
            Some((&mut self.status.url, "latest.tar.gz")),
            conds,
            &mut self.events,
        )
        .await
    }

    async fn reconcile_source(&mut self) -> Result<(), StepError> {
        if self.c().is_false(cond::SOURCE_VERIFIED) {
            self.c().delete(cond::SOURCE_VERIFIED);
        }
        let ns = self.namespace();
        let Some(source_ref) = self.obj.spec.source_ref.clone() else {
            return Err(StepError::stalling(
                "UnsupportedSourceKind",
                "failed to get source: no sourceRef",
            ));
        };
        let kind = source_ref.kind;
        let name = source_ref.name.clone();
        let not_found = |plural: &str| {
            format!("failed to get source: {plural}.source.toolkit.fluxcd.io \"{name}\" not found")
        };
        let unavailable = |e: String| StepError::generic("SourceUnavailable", e);
        let (artifact, repo) = match kind {
            HelmChartSourceKind::HelmRepository => {
                match self.lookup.helm_repository(&ns, &name).await {
                    Ok(Some(r)) => (r.status.as_ref().and_then(|s| s.artifact.clone()), Some(r)),
                    Ok(None) => {
                        return Err(self.fetch_failed(unavailable(not_found("helmrepositories"))));
                    }
                    Err(e) => {
                        return Err(
                            self.fetch_failed(unavailable(format!("failed to get source: {e}")))
                        );
                    }
                }
            }
            HelmChartSourceKind::GitRepository => {
                match self.lookup.git_repository(&ns, &name).await {
                    Ok(Some(r)) => (r.status.as_ref().and_then(|s| s.artifact.clone()), None),
                    Ok(None) => {
                        return Err(self.fetch_failed(unavailable(not_found("gitrepositories"))));
                    }
                    Err(e) => {
                        return Err(
                            self.fetch_failed(unavailable(format!("failed to get source: {e}")))
                        );
                    }
                }
            }
            HelmChartSourceKind::Bucket => match self.lookup.bucket(&ns, &name).await {
                Ok(Some(b)) => (b.status.as_ref().and_then(|s| s.artifact.clone()), None),
                Ok(None) => {
                    return Err(self.fetch_failed(unavailable(not_found("buckets"))));
                }
                Err(e) => {
                    return Err(
                        self.fetch_failed(unavailable(format!("failed to get source: {e}")))
                    );
                }
            },
            HelmChartSourceKind::Other(k) => {
                let e = StepError::stalling(
                    "UnsupportedSourceKind",
                    format!(
                        "failed to get source: unsupported source kind '{k}', must be one of: [HelmRepository GitRepository Bucket]"
                    ),
                );
                return Err(self.fetch_failed(e));
            }
        };
        let is_oci_repo = repo.as_ref().is_some_and(|r| r.is_oci());
        let present = artifact
            .as_ref()
            .is_some_and(|a| self.storage.artifact_exist(a));
        if !present && !is_oci_repo {
            let msg = format!("no artifact available for {kind} source '{name}'");
            self.c()
                .mark_true(cond::FETCH_FAILED, "NoSourceArtifact", &msg);
            self.event(Severity::Trace, "NoSourceArtifact", msg.clone());
            return Err(StepError::waiting("NoSourceArtifact", msg));
        }
        if let Some(a) = &artifact {
            self.status.observed_source_artifact_revision = Some(a.revision.clone());
        }

        let result = match (kind.clone(), repo, artifact) {
            (HelmChartSourceKind::HelmRepository, Some(repo), _) if repo.is_oci() => {
                self.build_from_oci_repository(&repo).await
            }
            (HelmChartSourceKind::HelmRepository, Some(repo), Some(a)) => {
                self.build_from_helm_repository(&repo, &a).await
            }
            (_, _, Some(a)) => self.build_from_tarball(kind, &a).await,
            _ => Err(Outcome2::Build(build_err(
                BuildReason::Unknown,
                "no source artifact",
            ))),
        };
        match result {
            Ok(b) => {
                self.build = b;
                self.observe_build(None);
                if self.build.complete() && self.build.resolved_dependencies > 0 {
                    let n = self.build.resolved_dependencies;
                    self.event(
                        Severity::Trace,
                        "ResolvedDependencies",
                        format!("resolved {n} chart dependencies"),
                    );
                }
                Ok(())
            }
            Err(Outcome2::Step(e)) => {
                self.observe_build(None);
                Err(e)
            }
            Err(Outcome2::Build(e)) => {
                let message = format!("{}: {}", e.reason.summary(), e.message);
                self.observe_build(Some((e.reason, &message)));
                let step = if e.reason.persistent() {
                    StepError::stalling(e.reason.reason(), message)
                } else {
                    StepError::generic(e.reason.reason(), message)
                };
                Err(step)
            }
        }
    }

    /// Upstream's `observeChartBuild`.
    fn observe_build(&mut self, err: Option<(BuildReason, &str)>) {
        if self.build.has_metadata() {
            let same = self.status.observed_chart_name.as_deref() == Some(&self.build.name)
                && self
                    .status
                    .artifact
                    .as_ref()
                    .is_some_and(|a| a.revision == self.build.version);
            if !same {
                let summary = self.build.summary();
                if self.status.artifact.is_some() {
                    self.c()
                        .mark_true(cond::ARTIFACT_OUTDATED, "NewChart", &summary);
                }
                self.c().progressive(
                    true,
                    reason::PROGRESSING,
                    &format!("building artifact: {summary}"),
                );
            }
        }
        if self.build.complete() {
            self.c().delete(cond::FETCH_FAILED);
            self.c().delete(cond::BUILD_FAILED);
            if self.build.verified {
                let message = format!("verified signature of version {}", self.build.version);
                self.c()
                    .mark_true(cond::SOURCE_VERIFIED, reason::SUCCEEDED, &message);
            }
        }
        if self.obj.spec.verify.is_none() {
            self.c().delete(cond::SOURCE_VERIFIED);
        }
        if let Some((r, message)) = err {
            if r.is_build() {
                self.c().delete(cond::FETCH_FAILED);
                self.c().mark_true(cond::BUILD_FAILED, r.reason(), message);
                if r == BuildReason::ChartVerification {
                    self.c().mark_false(
                        cond::SOURCE_VERIFIED,
                        source_reason::VERIFICATION_ERROR,
                        message,
                    );
                }
            } else {
                self.c().delete(cond::BUILD_FAILED);
                self.c().mark_true(cond::FETCH_FAILED, r.reason(), message);
            }
        }
    }

    /// The cached chart, when it has the name and version the build would produce and the
    /// generation did not change (upstream's `generateBuildResult` shortcut).
    fn cached_result(&self, result: &Build, requires_packaging: bool) -> Option<Build> {
        if self.force() {
            return None;
        }
        let data = self.cached_chart()?;
        let meta = pkg::metadata_from_archive(&data, self.settings.limits).ok()?;
        if meta.name != result.name || meta.version != result.version {
            return None;
        }
        let values = self.obj.spec.values_files.clone().unwrap_or_default();
        let mut b = result.clone();
        b.cached = true;
        b.values_files = match &self.status.observed_values_files {
            Some(v) => v.clone(),
            None => effective_values_files(&values).to_vec(),
        };
        b.packaged = requires_packaging;
        Some(b)
    }

    async fn build_from_helm_repository(
        &mut self,
        repo: &HelmRepository,
        repo_artifact: &Artifact,
    ) -> Result<Build, Outcome2> {
        let url = repo.spec.url.clone().unwrap_or_default();
        let normalized = match helm_http::normalize_url(&url) {
            Ok(u) => u,
            Err(e) => {
                let e = StepError::stalling(
                    source_reason::URL_INVALID,
                    format!("invalid Helm repository URL: {e}"),
                );
                return Err(Outcome2::Step(self.fetch_failed(e)));
            }
        };
        let opts = match helm_http::client_options(self.lookup, repo, &normalized).await {
            Ok(o) => o,
            Err(e) => {
                let e = StepError::generic(source_reason::AUTHENTICATION_FAILED, e);
                return Err(Outcome2::Step(self.fetch_failed(e)));
            }
        };
        let getter = match Getter::new(opts) {
            Ok(g) => g,
            Err(e) => {
                let e = StepError::stalling(
                    reason::FAILED,
                    format!("failed to construct Helm client: {e}"),
                );
                return Err(Outcome2::Step(self.fetch_failed(e)));
            }
        };
        let chart = self.remote_chart_name()?;
        let index = match self.load_index(repo, repo_artifact).await {
            Ok(i) => i,
            Err(e) => {
                return Err(Outcome2::Build(build_err(
                    BuildReason::ChartPull,
                    format!("failed to get chart version for remote reference: {e}"),
                )));
            }
        };
        let version = self.obj.spec.version.clone().unwrap_or_default();
        let cv = match index.get(&chart, &version) {
            Ok(cv) => cv.clone(),
            Err(e) => {
                return Err(Outcome2::Build(build_err(
                    BuildReason::ChartReference,
                    format!("failed to get chart version for remote reference: {e}"),
                )));
            }
        };
        // Upstream verifies only OCI charts; for an HTTP repository its verifier answers
        // "not implemented".
        if self
            .obj
            .spec
            .verify
            .as_ref()
            .is_some_and(|v| v.provider.is_some())
        {
            return Err(Outcome2::Build(build_err(
                BuildReason::ChartVerification,
                "not implemented",
            )));
        }
        let (result, requires_packaging) = self.remote_result(&cv.name, &cv.version)?;
        if let Some(b) = self.cached_result(&result, requires_packaging) {
            return Ok(b);
        }
        self.build = result.clone();

        let data = match self.download(&getter, &normalized, &cv).await {
            Ok(d) => d,
            Err(e) => {
                let message = format!("failed to download chart for remote reference: {e}");
                return Err(self.pull_failed(BuildReason::ChartPull, message));
            }
        };
        self.finish_remote(result, data, requires_packaging)
    }

    /// A remote chart's name, checked as upstream's `RemoteReference.Validate`.
    fn remote_chart_name(&self) -> Result<String, Outcome2> {
        let chart = self.obj.spec.chart.clone().unwrap_or_default();
        if chart.is_empty() {
            return Err(Outcome2::Build(build_err(
                BuildReason::ChartReference,
                "no name set for remote chart reference",
            )));
        }
        if !valid_chart_name(&chart) {
            return Err(Outcome2::Build(build_err(
                BuildReason::ChartReference,
                format!(
                    "invalid chart name '{chart}': a valid name must be lower case letters and numbers and MAY be separated with dashes (-), slashes (/) or periods (.)"
                ),
            )));
        }
        Ok(chart)
    }

    /// Upstream's `generateBuildResult` minus the cache: the name and version the build will
    /// have (`+<generation>` when values files change the chart), and whether it must be
    /// repackaged.
    fn remote_result(&self, name: &str, version: &str) -> Result<(Build, bool), Outcome2> {
        let values_files = self.obj.spec.values_files.clone().unwrap_or_default();
        let effective = effective_values_files(&values_files).to_vec();
        let metadata = if effective.is_empty() {
            String::new()
        } else {
            self.obj.meta().generation.unwrap_or(0).to_string()
        };
        let mut result = Build {
            name: name.to_string(),
            version: version.to_string(),
            ..Default::default()
        };
        if !metadata.is_empty() {
            result.version = pkg::with_build_metadata(version, &metadata)
                .map_err(|e| Outcome2::Build(build_err(BuildReason::MetadataPatch, e.0)))?;
        }
        let requires_packaging = !effective.is_empty() || !metadata.is_empty();
        Ok((result, requires_packaging))
    }

    /// A failed remote build: an authentication failure when the error says so (upstream
    /// looks for these words in any build error), else the build error itself.
    fn pull_failed(&mut self, reason: BuildReason, message: String) -> Outcome2 {
        let lower = message.to_lowercase();
        let auth = [
            "401",
            "unauthorized",
            "authentication required",
            "tls",
            "unknown certificate authority",
        ]
        .iter()
        .any(|n| lower.contains(n));
        if auth {
            let e = StepError::generic(
                source_reason::AUTHENTICATION_FAILED,
                format!(
                    "failed to authenticate with the Helm repository: {}: {message}",
                    reason.summary()
                ),
            );
            return Outcome2::Step(self.fetch_failed(e));
        }
        Outcome2::Build(build_err(reason, message))
    }

    /// A HelmChart from a `type: oci` HelmRepository: the version resolved among the
    /// registry's tags, the chart layer pulled.
    async fn build_from_oci_repository(
        &mut self,
        repo: &HelmRepository,
    ) -> Result<Build, Outcome2> {
        let url = repo.spec.url.clone().unwrap_or_default();
        let normalized = match helm_http::normalize_url(&url) {
            Ok(u) => u,
            Err(e) => {
                let e = StepError::stalling(
                    source_reason::URL_INVALID,
                    format!("invalid Helm repository URL: {e}"),
                );
                return Err(Outcome2::Step(self.fetch_failed(e)));
            }
        };
        if !helm_http::is_oci(&normalized) {
            let e = StepError::stalling(
                reason::FAILED,
                format!("failed to construct Helm client: invalid OCI registry URL: {normalized}"),
            );
            return Err(Outcome2::Step(self.fetch_failed(e)));
        }
        let opts = match crate::helm_oci::client_options(self.lookup, repo, &normalized).await {
            Ok(o) => o,
            Err(e) => {
                let e = StepError::generic(source_reason::AUTHENTICATION_FAILED, e);
                return Err(Outcome2::Step(self.fetch_failed(e)));
            }
        };
        let chart = self.remote_chart_name()?;
        let remote =
            match crate::helm_oci::ChartRepository::connect(&normalized, &chart, &opts).await {
                Ok(r) => r,
                Err(e) => {
                    let e = StepError::stalling(
                        reason::FAILED,
                        format!("failed to construct Helm client: {e}"),
                    );
                    return Err(Outcome2::Step(self.fetch_failed(e)));
                }
            };
        let wanted = self.obj.spec.version.clone().unwrap_or_default();
        let timeout = repo.effective_timeout();
        let version = match tokio::time::timeout(timeout, remote.resolve(&chart, &wanted)).await {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => {
                let message = format!("failed to get chart version for remote reference: {e}");
                return Err(self.pull_failed(BuildReason::ChartPull, message));
            }
            Err(_) => {
                let message = format!(
                    "failed to get chart version for remote reference: could not get tags for \"{chart}\": context deadline exceeded"
                );
                return Err(self.pull_failed(BuildReason::ChartPull, message));
            }
        };
        let verified = match self
            .obj
            .spec
            .verify
            .clone()
            .filter(|v| v.provider.is_some())
        {
            None => false,
            Some(v) => {
                let keys = match self.cosign_keys(&v).await {
                    Ok(k) => k,
                    Err(e) => {
                        let mut provider = match v.provider.unwrap_or_default() {
                            VerificationProvider::Cosign => "cosign".to_string(),
                            VerificationProvider::Notation => "notation".to_string(),
                        };
                        if v.secret_ref.is_none() && provider == "cosign" {
                            provider.push_str(" keyless");
                        }
                        let message = format!(
                            "failed to verify the signature using provider '{provider}': {e}"
                        );
                        self.c().mark_false(
                            cond::SOURCE_VERIFIED,
                            source_reason::VERIFICATION_ERROR,
                            &message,
                        );
                        return Err(Outcome2::Step(StepError::generic(
                            source_reason::VERIFICATION_ERROR,
                            message,
                        )));
                    }
                };
                remote
                    .verify_cosign(&version, &keys)
                    .await
                    .map_err(|e| Outcome2::Build(build_err(BuildReason::ChartVerification, e)))?;
                true
            }
        };
        let (mut result, requires_packaging) = self.remote_result(&chart, &version)?;
        result.verified = verified;
        if let Some(b) = self.cached_result(&result, requires_packaging) {
            return Ok(b);
        }
        self.build = result.clone();
        let max = self.settings.limits.max_chart_size;
        let data = match tokio::time::timeout(timeout, remote.pull(&version, max)).await {
            Ok(Ok(d)) => d,
            Ok(Err(e)) => {
                let message = format!("failed to download chart for remote reference: {e}");
                return Err(self.pull_failed(BuildReason::ChartPull, message));
            }
            Err(_) => {
                let message = format!(
                    "failed to download chart for remote reference: failed to get '{}:{version}': context deadline exceeded",
                    remote.url
                );
                return Err(self.pull_failed(BuildReason::ChartPull, message));
            }
        };
        self.finish_remote(result, data, requires_packaging)
    }

    /// The public keys (`*.pub`) of `spec.verify.secretRef` (upstream's `makeVerifiers` for
    /// cosign with keys); keyless cosign and notation are not supported.
    async fn cosign_keys(
        &self,
        verify: &ferroflux_api::helmchart::HelmChartVerification,
    ) -> Result<Vec<crate::oci::cosign::PublicKey>, String> {
        if verify.provider.unwrap_or_default() == VerificationProvider::Notation {
            return Err(
                "notation signatures are not supported by this source-controller yet".to_string(),
            );
        }
        let Some(secret_ref) = &verify.secret_ref else {
            return Err(
                "keyless verification (matchOIDCIdentity) is not supported by this source-controller yet"
                    .to_string(),
            );
        };
        let ns = self.namespace();
        let data = match self.lookup.secret(&ns, &secret_ref.name).await {
            Ok(Some(d)) => d,
            Ok(None) => return Err(format!("secrets \"{}\" not found", secret_ref.name)),
            Err(e) => return Err(e),
        };
        let mut keys = Vec::new();
        for (name, pem) in &data {
            if name.ends_with(".pub") {
                keys.push(
                    crate::oci::cosign::PublicKey::from_pem(pem)
                        .map_err(|e| format!("failed to load public key '{name}': {e}"))?,
                );
            }
        }
        Ok(keys)
    }

    /// The downloaded chart stored as is, or with its version and default values changed and
    /// packaged again.
    fn finish_remote(
        &self,
        mut result: Build,
        data: Vec<u8>,
        requires_packaging: bool,
    ) -> Result<Build, Outcome2> {
        let values_files = self.obj.spec.values_files.clone().unwrap_or_default();
        let limits = self.settings.limits;
        if !requires_packaging {
            pkg::metadata_from_archive(&data, limits).map_err(|e| {
                Outcome2::Build(build_err(
                    BuildReason::ChartPull,
                    format!("failed to load chart metadata from written chart: {e}"),
                ))
            })?;
            result.data = Some(data);
            return Ok(result);
        }
        let mut chart = pkg::load_archive(&data, limits).map_err(|e| {
            Outcome2::Build(build_err(
                BuildReason::ChartPackage,
                format!("failed to load downloaded chart: {e}"),
            ))
        })?;
        chart.metadata.version = result.version.clone();
        let ignore_missing = self.obj.spec.ignore_missing_values_files.unwrap_or(false);
        let (merged, used) = pkg::merge_chart_values(&chart, &values_files, ignore_missing)
            .map_err(|e| {
                Outcome2::Build(build_err(
                    BuildReason::ValuesFiles,
                    format!("failed to merge chart values: {e}"),
                ))
            })?;
        if pkg::overwrite_default_values(&mut chart, &merged)
            .map_err(|e| Outcome2::Build(build_err(BuildReason::ValuesFiles, e.0)))?
        {
            result.values_files = used;
        }
        let packed = pkg::save(&chart)
            .map_err(|e| Outcome2::Build(build_err(BuildReason::ChartPackage, e.0)))?;
        result.data = Some(packed);
        result.packaged = true;
        Ok(result)
    }

    /// The index a HelmRepository stored: from the cache when it holds it, else read from
    /// storage (and cached).
    async fn load_index(
        &self,
        repo: &HelmRepository,
        artifact: &Artifact,
    ) -> Result<Arc<IndexFile>, String> {
        if let Some(idx) = self.settings.cache.as_ref().and_then(|c| {
            c.get_for(
                &artifact.path,
                &repo.name_any(),
                &repo.namespace().unwrap_or_default(),
            )
        }) {
            return Ok(idx);
        }
        let path = self
            .storage
            .local_path(&artifact.path)
            .map_err(|e| e.to_string())?;
        let max = self.settings.index_max_size;
        let idx = tokio::task::spawn_blocking(move || {
            let md = std::fs::metadata(&path).map_err(|e| e.to_string())?;
            if md.len() > max {
                return Err(format!(
                    "{} exceeds the maximum index file size of {max} bytes",
                    path.display()
                ));
            }
            let data = std::fs::read(&path).map_err(|e| e.to_string())?;
            IndexFile::from_bytes(&data).map_err(|e| format!("failed to load index: {e}"))
        })
        .await
        .map_err(|e| e.to_string())??;
        let idx = Arc::new(idx);
        if let Some(c) = &self.settings.cache {
            // A full cache only costs the next reconcile a read.
            let _ = c.set(&artifact.path, idx.clone());
        }
        Ok(idx)
    }

    /// Downloads a chart version: its first URL, resolved against the repository URL; the
    /// bytes must match the index digest when the index has one.
    async fn download(
        &self,
        getter: &Getter,
        repo_url: &str,
        cv: &ChartVersion,
    ) -> Result<Vec<u8>, GetError> {
        let Some(first) = cv.urls.first() else {
            return Err(GetError::Client(format!(
                "chart '{}' has no downloadable URLs",
                cv.name
            )));
        };
        let url = helm_http::resolve_reference_url(repo_url, first).map_err(GetError::Client)?;
        let limit = Limit {
            max: self.settings.limits.max_chart_size,
            what: "chart",
            limit_name: "chart size",
        };
        let data = getter.get(&url, limit).await?;
        let want = cv.digest.trim_start_matches("sha256:");
        if want.len() == 64 && want.bytes().all(|b| b.is_ascii_hexdigit()) {
            let got = hex::encode(sha2::Sha256::digest(&data));
            if !got.eq_ignore_ascii_case(want) {
                return Err(GetError::Client(format!(
                    "digest mismatch for {url}: the index has sha256:{want}, the download sha256:{got}"
                )));
            }
        }
        Ok(data)
    }

    /// A chart directory (or packaged chart) in a GitRepository/Bucket artifact.
    async fn build_from_tarball(
        &mut self,
        kind: HelmChartSourceKind,
        source: &Artifact,
    ) -> Result<Build, Outcome2> {
        let dir = match tempdir_in(self.scratch_root, "helmchart") {
            Ok(d) => d,
            Err(e) => {
                let e = StepError::generic(
                    source_reason::DIRECTORY_CREATION_FAILED,
                    format!("failed to create temporary working directory: {e}"),
                );
                return Err(Outcome2::Step(self.fetch_failed(e)));
            }
        };
        let r = self.build_in(kind, source, &dir).await;
        let _ = std::fs::remove_dir_all(&dir);
        r
    }

    async fn build_in(
        &mut self,
        kind: HelmChartSourceKind,
        source: &Artifact,
        tmp: &Path,
    ) -> Result<Build, Outcome2> {
        let source_dir = tmp.join("source");
        let path = match self.storage.local_path(&source.path) {
            Ok(p) => p,
            Err(e) => {
                let e = StepError::generic(
                    source_reason::READ_OPERATION_FAILED,
                    format!("failed to open source artifact: {e}"),
                );
                return Err(Outcome2::Step(self.fetch_failed(e)));
            }
        };
        let sd = source_dir.clone();
        let untarred = tokio::task::spawn_blocking(move || -> Result<(), String> {
            std::fs::create_dir_all(&sd).map_err(|e| e.to_string())?;
            let f = std::fs::File::open(&path)
                .map_err(|e| format!("failed to open source artifact: {e}"))?;
            let gz = flate2::read::GzDecoder::new(std::io::BufReader::new(f));
            let limits = ferroflux_runtime::artifact::UntarLimits {
                max_size: u64::MAX,
                ..Default::default()
            };
            ferroflux_runtime::artifact::untar(gz, &sd, limits)
                .map(|_| ())
                .map_err(|e| format!("artifact untar error: {e}"))
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r);
        if let Err(e) = untarred {
            return Err(Outcome2::Step(StepError::generic(reason::FAILED, e)));
        }

        let chart_path = self.obj.spec.chart.clone().unwrap_or_default();
        if chart_path.is_empty() {
            return Err(Outcome2::Build(build_err(
                BuildReason::ChartReference,
                "no path set for local chart reference",
            )));
        }
        if chart_path.starts_with('/') {
            return Err(Outcome2::Build(build_err(
                BuildReason::ChartReference,
                "local chart reference path is expected to be relative",
            )));
        }
        let root = source_dir
            .canonicalize()
            .map_err(|e| Outcome2::Build(build_err(BuildReason::ChartReference, e.to_string())))?;
        let secure = pkg::secure_join(&root, Path::new(&chart_path))
            .map_err(|e| Outcome2::Build(build_err(BuildReason::ChartReference, e.0)))?;
        let limits = self.settings.limits;
        let is_dir = secure.is_dir();
        let meta = if is_dir {
            load_dir_metadata(&secure, limits)
        } else {
            std::fs::read(&secure)
                .map_err(|e| e.to_string())
                .and_then(|d| pkg::metadata_from_archive(&d, limits).map_err(|e| e.0))
        }
        .map_err(|e| Outcome2::Build(build_err(BuildReason::ChartReference, e)))?;

        let mut metadata = String::new();
        if self.obj.reconcile_strategy() == ReconcileStrategy::Revision {
            metadata = revision_metadata(kind, &source.revision);
        }
        let values_files = self.obj.spec.values_files.clone().unwrap_or_default();
        let effective = effective_values_files(&values_files).to_vec();
        if !effective.is_empty() {
            if !metadata.is_empty() {
                metadata.push('.');
            }
            metadata.push_str(&self.obj.meta().generation.unwrap_or(0).to_string());
        }
        let mut result = Build {
            name: meta.name.clone(),
            version: meta.version.clone(),
            ..Default::default()
        };
        if !metadata.is_empty() {
            result.version = pkg::with_build_metadata(&meta.version, &metadata)
                .map_err(|e| Outcome2::Build(build_err(BuildReason::MetadataPatch, e.0)))?;
        }
        let requires_packaging = is_dir || !metadata.is_empty() || !effective.is_empty();
        if let Some(b) = self.cached_result(&result, requires_packaging) {
            return Ok(b);
        }
        self.build = result.clone();
        if !requires_packaging {
            let data = std::fs::read(&secure)
                .map_err(|e| Outcome2::Build(build_err(BuildReason::ChartPull, e.to_string())))?;
            result.data = Some(data);
            return Ok(result);
        }
        let ignore_missing = self.obj.spec.ignore_missing_values_files.unwrap_or(false);
        let (chart, used) = prepare_local_chart(
            &root,
            &chart_path,
            &secure,
            is_dir,
            &values_files,
            !effective.is_empty(),
            ignore_missing,
            &result.version,
            limits,
        )?;
        let mut chart = chart;
        if let Some(used) = used {
            result.values_files = used;
        }
        if is_dir {
            let chart_rel = secure
                .strip_prefix(&root)
                .map(Path::to_path_buf)
                .unwrap_or_default();
            result.resolved_dependencies = self
                .build_dependencies(&root, &chart_rel, &mut chart)
                .await
                .map_err(|e| Outcome2::Build(build_err(BuildReason::DependencyBuild, e)))?;
        }
        let packed = pkg::save(&chart)
            .map_err(|e| Outcome2::Build(build_err(BuildReason::ChartPackage, e.0)))?;
        result.data = Some(packed);
        result.packaged = true;
        Ok(result)
    }

    /// source-controller's dependency manager: every dependency missing from `charts/` added,
    /// local ones from the source, remote ones from their repository.
    async fn build_dependencies(
        &mut self,
        root: &Path,
        chart_rel: &Path,
        chart: &mut pkg::Chart,
    ) -> Result<usize, String> {
        let missing = chart.missing_dependencies();
        if missing.is_empty() {
            return Ok(0);
        }
        let limits = self.settings.limits;
        let mut repos: BTreeMap<String, DepRepo> = BTreeMap::new();
        let mut added = Vec::new();
        for dep in &missing {
            let key = if dep.alias.is_empty() {
                dep.name.clone()
            } else {
                dep.alias.clone()
            };
            let mut sub = if dep.repository.is_empty() || dep.repository.starts_with("file://") {
                self.local_dependency(root, chart_rel, dep, limits)
                    .map_err(|e| format!("failed to add local dependency '{key}': {e}"))?
            } else {
                self.remote_dependency(&mut repos, dep, limits)
                    .await
                    .map_err(|e| format!("failed to add remote dependency '{key}': {e}"))?
            };
            if !dep.alias.is_empty() {
                sub.metadata.name = dep.alias.clone();
            }
            added.push(sub);
        }
        let n = added.len();
        chart.dependencies.extend(added);
        Ok(n)
    }

    fn local_dependency(
        &self,
        root: &Path,
        chart_rel: &Path,
        dep: &ferroflux_helm::package::index::Dependency,
        limits: Limits,
    ) -> Result<pkg::Chart, String> {
        let rel = if dep.repository.is_empty() {
            chart_rel.join("charts").join(&dep.name)
        } else {
            let rest = dep.repository.trim_start_matches("file://");
            chart_rel.join(rest)
        };
        let path = pkg::secure_join(root, &rel).map_err(|e| e.0)?;
        let shown = format!("/{}", path.strip_prefix(root).unwrap_or(&path).display());
        if !path.exists() {
            return Err(format!(
                "no chart found at '{shown}' (reference '{}')",
                dep.repository
            ));
        }
        let sub = if path.is_dir() {
            let rel = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
            pkg::load_dir(root, &rel, limits)
        } else {
            std::fs::read(&path)
                .map_err(|e| pkg::PackageError(e.to_string()))
                .and_then(|d| pkg::load_archive(&d, limits))
        }
        .map_err(|e| {
            format!(
                "failed to load chart from '{shown}' (reference '{}'): {e}",
                dep.repository
            )
        })?;
        check_constraint(&dep.version, &sub.metadata.version)?;
        Ok(sub)
    }

    async fn remote_dependency(
        &self,
        repos: &mut BTreeMap<String, DepRepo>,
        dep: &ferroflux_helm::package::index::Dependency,
        limits: Limits,
    ) -> Result<pkg::Chart, String> {
        let url = helm_http::normalize_url(&dep.repository)?;
        if dep.repository.starts_with('@') {
            return Err(format!(
                "aliased repository dependency is not supported: {}",
                dep.repository
            ));
        }
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            if url.starts_with("oci://") {
                return Err(format!(
                    "OCI dependency repositories are not supported by this source-controller yet: {url}"
                ));
            }
            return Err(format!("invalid dependency repository URL: {url}"));
        }
        if !repos.contains_key(&url) {
            let r = self
                .dependency_repo(&url)
                .await
                .map_err(|e| format!("failed to get chart repository for URL '{url}': {e}"))?;
            repos.insert(url.clone(), r);
        }
        let Some(r) = repos.get_mut(&url) else {
            return Err(format!("no chart repository for URL '{url}'"));
        };
        if r.index.is_none() {
            let index_url = helm_http::index_url(&r.url)?;
            let data = r
                .getter
                .get(
                    &index_url,
                    crate::helmrepository::index_limit(self.settings.index_max_size),
                )
                .await
                .map_err(|e| e.to_string())?;
            r.index = Some(Arc::new(
                IndexFile::from_bytes(&data).map_err(|e| e.to_string())?,
            ));
        }
        let Some(index) = r.index.as_ref() else {
            return Err("no chart index".into());
        };
        let cv = index
            .get(&dep.name, &dep.version)
            .map_err(|e| {
                format!(
                    "failed to get chart '{}' version '{}' from '{}': {e}",
                    dep.name, dep.version, dep.repository
                )
            })?
            .clone();
        let data = self
            .download(&r.getter, &r.url, &cv)
            .await
            .map_err(|e| format!("chart download of version '{}' failed: {e}", cv.version))?;
        pkg::load_archive(&data, limits).map_err(|e| {
            format!(
                "failed to load downloaded archive of version '{}': {e}",
                cv.version
            )
        })
    }

    /// The namespace's HelmRepository for a dependency URL (its credentials and stored index),
    /// or the URL alone.
    async fn dependency_repo(&self, url: &str) -> Result<DepRepo, String> {
        let ns = self.namespace();
        let found = self
            .lookup
            .helm_repositories(&ns)
            .await
            .map_err(|e| format!("unable to retrieve HelmRepositoryList: {e}"))?
            .into_iter()
            .find(|r| {
                r.spec
                    .url
                    .as_deref()
                    .and_then(|u| helm_http::normalize_url(u).ok())
                    .is_some_and(|u| u == url)
            });
        let repo = found.unwrap_or_else(|| {
            let mut r = HelmRepository::new("", Default::default());
            r.metadata.namespace = Some(ns.clone());
            r.spec.url = Some(url.to_string());
            r
        });
        let opts = helm_http::client_options(self.lookup, &repo, url).await?;
        let getter = Getter::new(opts).map_err(|e| e.to_string())?;
        let mut index = None;
        if let Some(a) = repo.status.as_ref().and_then(|s| s.artifact.as_ref())
            && self.storage.artifact_exist(a)
        {
            index = Some(self.load_index(&repo, a).await?);
        }
        Ok(DepRepo {
            getter,
            url: url.to_string(),
            index,
        })
    }

    async fn reconcile_artifact(&mut self) -> Result<(), StepError> {
        let build = std::mem::take(&mut self.build);
        if !build.complete() {
            return Ok(());
        }
        let result = self.write_artifact(&build).await;
        if self.status.observed_chart_name.as_deref() == Some(&build.name)
            && self
                .status
                .artifact
                .as_ref()
                .is_some_and(|a| a.revision == build.version)
        {
            self.c().delete(cond::ARTIFACT_OUTDATED);
            self.c()
                .mark_true(cond::ARTIFACT_IN_STORAGE, build.reason(), &build.summary());
        }
        self.build = build;
        result
    }

    async fn write_artifact(&mut self, build: &Build) -> Result<(), StepError> {
        let mut artifact = self.storage.new_artifact_for(
            KIND,
            &self.namespace(),
            &self.obj.name_any(),
            &build.version,
            &format!("{}-{}.tgz", build.name, build.version),
        );
        let Some(data) = build.data.as_ref().filter(|_| !build.cached) else {
            self.event(
                Severity::Trace,
                source_reason::ARTIFACT_UP_TO_DATE,
                format!(
                    "artifact up-to-date with remote revision: '{}'",
                    artifact.revision
                ),
            );
            return Ok(());
        };
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
        let _lock = match self.storage.lock(&artifact) {
            Ok(l) => l,
            Err(e) => {
                let e = StepError::generic(
                    source_reason::ACQUIRE_LOCK_FAILED,
                    format!(
                        "failed to acquire lock for artifact: {}",
                        storage_detail(&e)
                    ),
                );
                return Err(self.storage_failed(e));
            }
        };
        let written = match self.storage.write_bytes(&mut artifact, data) {
            Ok(()) => self
                .storage
                .push(&artifact)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(storage_detail(&e)),
        };
        if let Err(msg) = written {
            let e = StepError::generic(
                source_reason::ARCHIVE_OPERATION_FAILED,
                format!("unable to copy Helm chart to storage: {msg}"),
            );
            return Err(self.storage_failed(e));
        }
        self.status.artifact = Some(artifact.clone());
        self.status.observed_chart_name = Some(build.name.clone());
        self.status.observed_values_files =
            if self.obj.spec.ignore_missing_values_files.unwrap_or(false) {
                Some(build.values_files.clone())
            } else {
                None
            };
        match self.storage.symlink(&artifact, "latest.tar.gz") {
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

/// A step failure already recorded, or a build failure still to be observed.
enum Outcome2 {
    Step(StepError),
    Build(BuildError),
}

/// Loads the chart of a source directory (or a packaged chart in it), its version set and
/// its default values replaced by the merged values files; returns the files that
/// contributed when the defaults changed.
#[allow(clippy::too_many_arguments)]
fn prepare_local_chart(
    root: &Path,
    chart_path: &str,
    secure: &Path,
    is_dir: bool,
    values_files: &[String],
    merge: bool,
    ignore_missing: bool,
    version: &str,
    limits: Limits,
) -> Result<(pkg::Chart, Option<Vec<String>>), Outcome2> {
    let mut merged = None;
    if merge {
        let (m, used) = pkg::merge_file_values(root, values_files, ignore_missing)
            .map_err(|e| Outcome2::Build(build_err(BuildReason::ValuesFiles, e.0)))?;
        merged = Some((m, used));
    }
    let mut chart = if is_dir {
        pkg::load_dir(root, Path::new(chart_path), limits)
    } else {
        std::fs::read(secure)
            .map_err(|e| pkg::PackageError(e.to_string()))
            .and_then(|d| pkg::load_archive(&d, limits))
    }
    .map_err(|e| Outcome2::Build(build_err(BuildReason::ChartPackage, e.0)))?;
    chart.metadata.version = version.to_string();
    let mut contributed = None;
    if let Some((m, used)) = merged
        && pkg::overwrite_default_values(&mut chart, &m)
            .map_err(|e| Outcome2::Build(build_err(BuildReason::ValuesFiles, e.0)))?
    {
        contributed = Some(used);
    }
    Ok((chart, contributed))
}

fn check_constraint(range: &str, version: &str) -> Result<(), String> {
    // The index's resolver applies Masterminds ranges; reuse it on a one-version index.
    let mut idx = IndexFile {
        api_version: "v1".into(),
        ..Default::default()
    };
    idx.entries.insert(
        "c".into(),
        vec![Some(ChartVersion {
            name: "c".into(),
            version: version.to_string(),
            api_version: "v2".into(),
            ..Default::default()
        })],
    );
    match idx.get("c", range) {
        Ok(_) => Ok(()),
        Err(ferroflux_helm::package::index::IndexError::Constraint(e)) => {
            Err(format!("invalid version/constraint format '{range}': {e}"))
        }
        Err(_) => Err(format!(
            "can't get a valid version for constraint '{range}'"
        )),
    }
}

/// Chart.yaml (and requirements.yaml) of a chart directory, validated.
fn load_dir_metadata(dir: &Path, limits: Limits) -> Result<pkg::Metadata, String> {
    let mut files = Vec::new();
    for name in ["Chart.yaml", "requirements.yaml"] {
        let p = dir.join(name);
        match std::fs::metadata(&p) {
            Ok(m) if m.is_dir() => return Err(format!("'{name}' is a directory")),
            Ok(m) if m.len() > limits.max_file_size => {
                return Err(format!(
                    "size of '{name}' exceeds '{}' bytes limit",
                    limits.max_file_size
                ));
            }
            Ok(_) => files.push(pkg::File {
                name: name.to_string(),
                data: std::fs::read(&p).map_err(|e| e.to_string())?,
                mtime: 0,
            }),
            Err(e) if name == "Chart.yaml" => return Err(e.to_string()),
            Err(_) => {}
        }
    }
    // Loading just these files runs Helm's metadata validation.
    pkg::load_files(files, limits)
        .map(|c| c.metadata)
        .map_err(|e| e.0)
}

/// Upstream's notify: the build's reason and summary on a new digest or on recovery.
fn notify(
    old: &HelmChartStatus,
    old_conds: &[Condition],
    new: &HelmChartStatus,
    new_conds: &[Condition],
    build: &Build,
) -> Option<PendingEvent> {
    let artifact = new.artifact.as_ref()?;
    let metadata = BTreeMap::from([
        ("revision".to_string(), artifact.revision.clone()),
        ("digest".to_string(), artifact.digest.clone()),
    ]);
    let old_digest = old.artifact.as_ref().map(|a| a.digest.as_str());
    if old_digest == Some(artifact.digest.as_str()) {
        let failing = |c: &[Condition]| {
            [
                cond::BUILD_FAILED,
                cond::FETCH_FAILED,
                cond::STORAGE_OPERATION_FAILED,
            ]
            .iter()
            .any(|t| cond::is_true(c, t))
        };
        if !failing(old_conds) || failing(new_conds) {
            return None;
        }
    }
    Some(PendingEvent {
        severity: Severity::Info,
        reason: build.reason().to_string(),
        message: build.summary(),
        metadata,
    })
}

/// Runs one reconcile of `obj` (not being deleted, not suspended).
pub async fn run_pipeline<L: Lookup>(
    obj: &HelmChart,
    storage: &Storage,
    lookup: &L,
    settings: &Settings,
    scratch_root: &Path,
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
        scratch_root,
        status,
        conds,
        events: Vec::new(),
        new_artifact: None,
        build: Build::default(),
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
    let steps = async {
        run.reconcile_storage().await?;
        run.reconcile_source().await?;
        run.reconcile_artifact().await
    };
    let result = steps.await;
    ferroflux_runtime::memory::trim();
    let result = match result {
        Ok(()) => PipelineResult::Success,
        Err(e) if e.kind == ErrorKind::Done => PipelineResult::Success,
        Err(e) => {
            if e.kind != ErrorKind::Waiting {
                run.event(Severity::Error, &e.reason, e.message.clone());
            }
            match e.kind {
                ErrorKind::Stalling => PipelineResult::Stalled {
                    reason: e.reason,
                    message: e.message,
                },
                ErrorKind::Waiting => PipelineResult::Waiting {
                    reason: e.reason,
                    message: e.message,
                    after: settings.requeue_dependency,
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
        build,
        ..
    } = run;
    summarize(
        &mut conds,
        &mut status.observed_generation,
        generation,
        &result,
    );
    if result == PipelineResult::Success
        && let Some(ev) = notify(&old_status, &old_conds, &status, &conds, &build)
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

/// Which HelmCharts use which source: `(namespace, kind, name)` to chart names, fed by the
/// HelmChart watch (upstream's source index of the HelmChart controller).
#[derive(Clone, Default)]
pub struct SourceIndex {
    inner: Arc<std::sync::Mutex<ChartsBySource>>,
}

/// `(namespace, kind, name)` of a source to the names of the charts using it.
type ChartsBySource = BTreeMap<(String, String, String), std::collections::BTreeSet<String>>;

impl SourceIndex {
    fn key(chart: &HelmChart) -> Option<(String, String, String)> {
        let r = chart.spec.source_ref.as_ref()?;
        Some((
            chart.namespace().unwrap_or_default(),
            r.kind.to_string(),
            r.name.clone(),
        ))
    }

    fn remove(&self, ns: &str, name: &str) {
        if let Ok(mut m) = self.inner.lock() {
            for (k, charts) in m.iter_mut() {
                if k.0 == ns {
                    charts.remove(name);
                }
            }
            m.retain(|_, c| !c.is_empty());
        }
    }

    fn upsert(&self, chart: &HelmChart) {
        let ns = chart.namespace().unwrap_or_default();
        let name = chart.name_any();
        self.remove(&ns, &name);
        if let (Some(k), Ok(mut m)) = (Self::key(chart), self.inner.lock()) {
            m.entry(k).or_default().insert(name);
        }
    }

    /// The charts using a source.
    pub fn charts_of(&self, namespace: &str, kind: &str, name: &str) -> Vec<String> {
        self.inner
            .lock()
            .ok()
            .and_then(|m| {
                m.get(&(namespace.to_string(), kind.to_string(), name.to_string()))
                    .map(|c| c.iter().cloned().collect())
            })
            .unwrap_or_default()
    }

    /// The tap keeping the index current from the HelmChart watch.
    pub fn tap(&self) -> ferroflux_runtime::driver::WatchTap<HelmChart> {
        let index = self.clone();
        Arc::new(move |event: &kube::runtime::watcher::Event<HelmChart>| {
            use kube::runtime::watcher::Event;
            match event {
                Event::Apply(c) | Event::InitApply(c) => index.upsert(c),
                Event::Delete(c) => index.remove(&c.namespace().unwrap_or_default(), &c.name_any()),
                Event::Init | Event::InitDone => {}
            }
        })
    }
}

/// Reconcile requests for the HelmCharts of every source that stored a new artifact (the
/// in-process artifact events of HelmRepositories, GitRepositories and Buckets).
pub fn source_triggers(
    events: &ArtifactEventLog,
    index: SourceIndex,
) -> futures::stream::BoxStream<'static, kube::runtime::reflector::ObjectRef<HelmChart>> {
    use futures::StreamExt;
    let (_, _, rx, _) = events.subscribe(0);
    tokio_stream::wrappers::BroadcastStream::new(rx)
        .filter_map(move |ev| {
            let refs: Vec<kube::runtime::reflector::ObjectRef<HelmChart>> = match ev {
                Ok(ev)
                    if matches!(
                        ev.kind.as_str(),
                        "HelmRepository" | "GitRepository" | "Bucket"
                    ) =>
                {
                    index
                        .charts_of(&ev.namespace, &ev.kind, &ev.name)
                        .into_iter()
                        .map(|c| kube::runtime::reflector::ObjectRef::new(&c).within(&ev.namespace))
                        .collect()
                }
                _ => Vec::new(),
            };
            futures::future::ready(Some(futures::stream::iter(refs)))
        })
        .flatten()
        .boxed()
}

/// Sources and Secrets from the API server.
#[derive(Clone)]
pub struct KubeLookup {
    pub client: kube::Client,
}

impl SecretLookup for KubeLookup {
    async fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, Vec<u8>>>, String> {
        crate::helmrepository::KubeLookup {
            client: self.client.clone(),
        }
        .secret(namespace, name)
        .await
    }
}

impl Lookup for KubeLookup {
    async fn helm_repository(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<HelmRepository>, String> {
        let api: Api<HelmRepository> = Api::namespaced(self.client.clone(), namespace);
        api.get_opt(name).await.map_err(|e| e.to_string())
    }

    async fn git_repository(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<GitRepository>, String> {
        let api: Api<GitRepository> = Api::namespaced(self.client.clone(), namespace);
        api.get_opt(name).await.map_err(|e| e.to_string())
    }

    async fn helm_repositories(&self, namespace: &str) -> Result<Vec<HelmRepository>, String> {
        let api: Api<HelmRepository> = Api::namespaced(self.client.clone(), namespace);
        api.list(&Default::default())
            .await
            .map(|l| l.items)
            .map_err(|e| e.to_string())
    }

    async fn bucket(&self, namespace: &str, name: &str) -> Result<Option<Bucket>, String> {
        let api: Api<Bucket> = Api::namespaced(self.client.clone(), namespace);
        api.get_opt(name).await.map_err(|e| e.to_string())
    }
}

/// The HelmChart reconciler run by the driver.
#[derive(Clone)]
pub struct HelmChartReconciler {
    pub storage: Storage,
    pub events: ArtifactEventLog,
    pub recorder: EventRecorder,
    pub settings: Settings,
    pub scratch_root: PathBuf,
}

impl Reconciler<HelmChart> for HelmChartReconciler {
    async fn reconcile(
        &self,
        obj: Arc<HelmChart>,
        ctx: ReconcileContext,
    ) -> Result<Outcome, ReconcileError> {
        let lookup = KubeLookup {
            client: ctx.client.clone(),
        };
        let out = run_pipeline(
            &obj,
            &self.storage,
            &lookup,
            &self.settings,
            &self.scratch_root,
        )
        .await;
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
        crate::pipeline::outcome(out.result)
    }

    async fn cleanup(
        &self,
        obj: Arc<HelmChart>,
        _ctx: ReconcileContext,
    ) -> Result<(), ReconcileError> {
        crate::pipeline::collect_garbage(&self.storage, &self.recorder, KIND, obj.as_ref()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_metadata_and_summaries() {
        assert!(valid_chart_name("podinfo"));
        assert!(valid_chart_name("org/app.v2"));
        assert!(!valid_chart_name("Podinfo"));
        assert_eq!(
            revision_metadata(
                HelmChartSourceKind::GitRepository,
                "main@sha1:0123456789abcdef0123456789abcdef01234567"
            ),
            "0123456789ab"
        );
        assert_eq!(
            revision_metadata(HelmChartSourceKind::Bucket, "sha256:fedcba9876543210ff"),
            "fedcba987654"
        );
        assert_eq!(effective_values_files(&["./values.yaml".into()]).len(), 0);
        let b = Build {
            name: "app".into(),
            version: "1.0.0+3".into(),
            data: Some(vec![]),
            values_files: vec!["values.yaml".into(), "prod.yaml".into()],
            packaged: true,
            ..Default::default()
        };
        assert_eq!(
            b.summary(),
            "packaged 'app' chart with version '1.0.0+3' and merged values files [values.yaml prod.yaml]"
        );
        assert!(check_constraint("~1.2", "1.2.5").is_ok());
        assert_eq!(
            check_constraint("^2", "1.2.5").unwrap_err(),
            "can't get a valid version for constraint '^2'"
        );
    }

    #[tokio::test]
    async fn new_source_artifacts_trigger_their_charts() {
        use futures::StreamExt;
        let chart = |name: &str, kind: &str, source: &str| -> HelmChart {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "HelmChart",
                "metadata": {"name": name, "namespace": "apps"},
                "spec": {"chart": "x", "interval": "1m", "sourceRef": {"kind": kind, "name": source}},
            }))
            .unwrap()
        };
        let index = SourceIndex::default();
        let tap = index.tap();
        use kube::runtime::watcher::Event;
        tap(&Event::Apply(chart("a", "HelmRepository", "charts")));
        tap(&Event::Apply(chart("b", "HelmRepository", "charts")));
        tap(&Event::Apply(chart("c", "GitRepository", "charts")));
        tap(&Event::Apply(chart("b", "GitRepository", "other")));
        assert_eq!(index.charts_of("apps", "HelmRepository", "charts"), ["a"]);
        tap(&Event::Delete(chart("a", "HelmRepository", "charts")));
        assert!(
            index
                .charts_of("apps", "HelmRepository", "charts")
                .is_empty()
        );
        tap(&Event::Apply(chart("a", "HelmRepository", "charts")));

        let log = ArtifactEventLog::new(16);
        let mut triggers = source_triggers(&log, index);
        let event = |kind: &str, name: &str| ferroflux_proto::ArtifactEvent {
            kind: kind.into(),
            namespace: "apps".into(),
            name: name.into(),
            ..Default::default()
        };
        log.publish(event("OCIRepository", "charts"));
        log.publish(event("GitRepository", "charts"));
        log.publish(event("HelmRepository", "charts"));
        let first = triggers.next().await.unwrap();
        assert_eq!(
            (first.name.as_str(), first.namespace.as_deref()),
            ("c", Some("apps"))
        );
        assert_eq!(triggers.next().await.unwrap().name, "a");
    }
}
