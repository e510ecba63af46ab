//! The GitRepository reconciler.
//!
//! Upstream's pipeline, step by step: storage (garbage collection, the advertised artifact still
//! there with the advertised digest), source (credentials, includes, clone, sparse paths,
//! signature verification), include (copy the included artifacts into the tree) and artifact
//! (ignore rules, deterministic tar.gz, atomic write). Each step sets the conditions upstream
//! sets; [`summarize`] derives Ready/Reconciling/Stalled from them at the end.
//!
//! [`run_pipeline`] does all of it against a [`Lookup`] (Secrets and other GitRepositories) and
//! returns the new status and the events to publish, so it is testable without an API server;
//! [`GitRepositoryReconciler`] wires it to Kubernetes, events and the artifact event stream.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ferroflux_api::conditions::{self as cond, reason, source_reason};
use ferroflux_api::gitrepository::{
    GitRepository, GitRepositoryInclude, GitRepositoryStatus, GitVerificationMode,
};
use ferroflux_api::{Artifact, FluxObject};
use ferroflux_runtime::events::{EventRecorder, Severity};
use ferroflux_runtime::{Outcome, ReconcileContext, ReconcileError, Reconciler};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::Api;
use kube::{Resource, ResourceExt};

use crate::artifact_events::ArtifactEventLog;
use crate::git::{self, AuthOptions, CloneConfig, CloneOutcome, Commit, Reference};
use crate::ignore::{self, Matcher};
use crate::pipeline;
use crate::pipeline::{Conds, ErrorKind, RunRecord, StepError, one_line, summarize, tempdir_in};
pub use crate::pipeline::{PendingEvent, PipelineResult};
use crate::storage::{ArchiveLimits, Storage};

/// Kind name used in storage paths and events.
pub const KIND: &str = "GitRepository";
/// Status field manager (upstream: the controller name).
pub use crate::pipeline::FIELD_MANAGER;
/// Default `spec.timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long to wait for an included repository's artifact (`--requeue-dependency`).
pub const DEFAULT_REQUEUE_DEPENDENCY: Duration = Duration::from_secs(30);

/// What the pipeline needs from the cluster.
pub trait Lookup: Send + Sync {
    /// The data of a Secret; `Ok(None)` if it does not exist.
    fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<BTreeMap<String, Vec<u8>>>, String>> + Send;
    /// Another GitRepository; `Ok(None)` if it does not exist.
    fn git_repository(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<GitRepository>, String>> + Send;
}

/// Settings shared by every reconcile.
#[derive(Clone, Debug)]
pub struct Settings {
    pub limits: ArchiveLimits,
    pub optimized_git_clones: bool,
    pub ssh_kex_algos: Vec<String>,
    pub ssh_hostkey_algos: Vec<String>,
    pub requeue_dependency: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            limits: ArchiveLimits::default(),
            optimized_git_clones: true,
            ssh_kex_algos: Vec::new(),
            ssh_hostkey_algos: Vec::new(),
            requeue_dependency: DEFAULT_REQUEUE_DEPENDENCY,
        }
    }
}

/// Everything a reconcile produced.
#[derive(Clone, Debug)]
pub struct PipelineOutput {
    pub status: GitRepositoryStatus,
    pub result: PipelineResult,
    pub events: Vec<PendingEvent>,
    /// Set when a new artifact was written.
    pub new_artifact: Option<Artifact>,
}

/// The revision that should be recorded for a commit, given the spec's reference.
pub fn commit_revision(obj: &GitRepository, commit: &Commit) -> String {
    commit.revision(&Reference::from_spec(obj.spec.r#ref.as_ref()))
}

fn verification_mode(obj: &GitRepository) -> Option<&'static str> {
    obj.spec.verify.as_ref().map(|v| match v.mode {
        None | Some(GitVerificationMode::Head) | Some(GitVerificationMode::LegacyHead) => "HEAD",
        Some(GitVerificationMode::Tag) => "Tag",
        Some(GitVerificationMode::TagAndHEAD) => "TagAndHEAD",
    })
}

fn requires_verification(
    obj: &GitRepository,
    status: &GitRepositoryStatus,
    conds: &[Condition],
) -> bool {
    match verification_mode(obj) {
        None => false,
        Some(mode) => {
            !cond::is_true(conds, cond::SOURCE_VERIFIED)
                || status.source_verification_mode.as_deref() != Some(mode)
        }
    }
}

fn include_equal(a: &GitRepositoryInclude, b: &GitRepositoryInclude) -> bool {
    a.repository.name == b.repository.name
        && include_from(a) == include_from(b)
        && include_to(a) == include_to(b)
}

fn include_from(i: &GitRepositoryInclude) -> String {
    i.from_path.clone().unwrap_or_default()
}

fn include_to(i: &GitRepositoryInclude) -> String {
    match i.to_path.as_deref() {
        Some(p) if !p.is_empty() => p.to_string(),
        _ => i.repository.name.clone(),
    }
}

/// Upstream's artifactSet.Diff: true when the sets differ by revision.
fn includes_differ(a: &[Artifact], b: Option<&Vec<Artifact>>) -> bool {
    let b: &[Artifact] = b.map(Vec::as_slice).unwrap_or(&[]);
    if a.len() != b.len() {
        return true;
    }
    a.iter()
        .any(|x| !b.iter().any(|y| y.revision == x.revision))
}

/// Upstream's gitContentConfigChanged: whether settings that shape the artifact changed since
/// the stored artifact was built.
fn content_config_changed(
    obj: &GitRepository,
    status: &GitRepositoryStatus,
    conds: &[Condition],
    includes: &[Artifact],
) -> bool {
    let spec = &obj.spec;
    if spec.ignore != status.observed_ignore {
        return true;
    }
    if spec.recurse_submodules.unwrap_or(false)
        != status.observed_recurse_submodules.unwrap_or(false)
    {
        return true;
    }
    let spec_incl = spec.include.as_deref().unwrap_or(&[]);
    let obs_incl = status.observed_include.as_deref().unwrap_or(&[]);
    if spec_incl.len() != obs_incl.len() {
        return true;
    }
    if requires_verification(obj, status, conds) {
        return true;
    }
    let sparse = spec.sparse_checkout.as_deref().unwrap_or(&[]);
    let obs_sparse = status.observed_sparse_checkout.as_deref().unwrap_or(&[]);
    if sparse != obs_sparse {
        return true;
    }
    let obs_arts = status.included_artifacts.as_deref().unwrap_or(&[]);
    if spec_incl.len() != includes.len() || spec_incl.len() != obs_arts.len() {
        return true;
    }
    for (i, incl) in spec_incl.iter().enumerate() {
        if !include_equal(incl, &obs_incl[i]) {
            return true;
        }
        if obs_arts[i].revision != includes[i].revision || obs_arts[i].digest != includes[i].digest
        {
            return true;
        }
    }
    false
}

/// State carried between the steps of one reconcile.
struct Run<'a, L: Lookup> {
    obj: &'a GitRepository,
    storage: &'a Storage,
    lookup: &'a L,
    settings: &'a Settings,
    status: GitRepositoryStatus,
    conds: Vec<Condition>,
    events: Vec<PendingEvent>,
    new_artifact: Option<Artifact>,
    includes: Vec<Artifact>,
    commit: Option<Commit>,
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

    /// Step 1: garbage collection and the advertised artifact.
    async fn reconcile_storage(&mut self) -> Result<(), StepError> {
        let conds = Conds {
            list: &mut self.conds,
            generation: self.obj.meta().generation,
        };
        pipeline::reconcile_storage(
            self.storage,
            &mut self.status.artifact,
            None,
            conds,
            &mut self.events,
        )
        .await
    }

    /// `spec.provider`: GitHub App installation tokens; workload identity (azure, aws) needs a
    /// cloud environment ferroflux does not talk to yet, so it fails with AuthenticationFailed.
    /// A Secret with GitHub App data under another provider is refused, as upstream does.
    async fn provider_credentials(
        &mut self,
        auth: &mut AuthOptions,
        secret: Option<&BTreeMap<String, Vec<u8>>>,
        proxy: Option<&git::auth::ProxyOptions>,
    ) -> Result<(), StepError> {
        use ferroflux_api::gitrepository::GitProvider;
        let github_msg =
            "secretRef with github app data must be specified when provider is set to github";
        let fail = |this: &mut Self, e: StepError| {
            this.c()
                .mark_true(cond::FETCH_FAILED, &e.reason, &e.message);
            Err(e)
        };
        let auth_failed = |msg: String| {
            StepError::generic(
                source_reason::AUTHENTICATION_FAILED,
                format!("failed to configure authentication options: {msg}"),
            )
        };
        match self.obj.spec.provider.unwrap_or_default() {
            GitProvider::Github => {
                let Some(data) = secret else {
                    let e = StepError::stalling(
                        source_reason::INVALID_PROVIDER_CONFIGURATION,
                        github_msg.to_string(),
                    );
                    return fail(self, e);
                };
                if !git::github::AppData::present(data) {
                    let e = StepError::generic(
                        source_reason::INVALID_PROVIDER_CONFIGURATION,
                        github_msg.to_string(),
                    );
                    return fail(self, e);
                }
                let timeout = self
                    .obj
                    .spec
                    .timeout
                    .as_ref()
                    .and_then(|t| t.to_std().ok())
                    .unwrap_or(DEFAULT_TIMEOUT);
                let token = match git::github::AppData::from_secret(data) {
                    Ok(app) => app.installation_token(proxy, timeout).await,
                    Err(e) => Err(e),
                };
                match token {
                    Ok(token) => {
                        auth.username = Some(git::github::ACCESS_TOKEN_USERNAME.to_string());
                        auth.password = Some(token);
                        auth.bearer_token = None;
                        Ok(())
                    }
                    Err(msg) => fail(self, auth_failed(msg)),
                }
            }
            provider @ (GitProvider::Azure | GitProvider::Aws) => {
                let name = if provider == GitProvider::Azure {
                    "azure"
                } else {
                    "aws"
                };
                let e = auth_failed(format!(
                    "provider '{name}' (workload identity) is not supported by this source-controller"
                ));
                fail(self, e)
            }
            GitProvider::Generic => {
                if secret.is_some_and(git::github::AppData::present) {
                    let ns = self.namespace();
                    let name = self
                        .obj
                        .spec
                        .secret_ref
                        .as_ref()
                        .map(|s| s.name.clone())
                        .unwrap_or_default();
                    let e = StepError::generic(
                        source_reason::INVALID_PROVIDER_CONFIGURATION,
                        format!(
                            "secretRef '{ns}/{name}' has github app data but provider is not set to github"
                        ),
                    );
                    return fail(self, e);
                }
                Ok(())
            }
        }
    }

    /// Step 2: credentials, includes, clone, sparse paths, verification.
    async fn reconcile_source(&mut self, work: &Path, checkout: &Path) -> Result<(), StepError> {
        if self.c().is_false(cond::SOURCE_VERIFIED) {
            self.c().delete(cond::SOURCE_VERIFIED);
        }
        let ns = self.namespace();
        let spec = &self.obj.spec;

        let mut proxy = None;
        if let Some(p) = &spec.proxy_secret_ref {
            let res = match self.lookup.secret(&ns, &p.name).await {
                Ok(Some(data)) => git::auth::ProxyOptions::from_secret(&data),
                Ok(None) => Err(format!("secret '{ns}/{}' not found", p.name)),
                Err(e) => Err(e),
            };
            match res {
                Ok(p) => proxy = Some(p),
                Err(e) => {
                    let e = StepError::generic(
                        source_reason::AUTHENTICATION_FAILED,
                        format!("failed to configure proxy options: {e}"),
                    );
                    self.c()
                        .mark_true(cond::FETCH_FAILED, &e.reason, &e.message);
                    return Err(e);
                }
            }
        }

        let url = spec.url.clone().unwrap_or_default();
        if let Err(e) = git::auth::Transport::of(&url) {
            let e = StepError::stalling(source_reason::URL_INVALID, e);
            self.c()
                .mark_true(cond::FETCH_FAILED, &e.reason, &e.message);
            return Err(e);
        }

        let mut auth = AuthOptions::default();
        let mut secret_data = None;
        if let Some(s) = &spec.secret_ref {
            let data = match self.lookup.secret(&ns, &s.name).await {
                Ok(Some(d)) => d,
                Ok(None) => {
                    let e = StepError::generic(
                        source_reason::AUTHENTICATION_FAILED,
                        format!(
                            "failed to get secret '{ns}/{}': secrets \"{}\" not found",
                            s.name, s.name
                        ),
                    );
                    self.c()
                        .mark_true(cond::FETCH_FAILED, &e.reason, &e.message);
                    return Err(e);
                }
                Err(err) => {
                    let e = StepError::generic(
                        source_reason::AUTHENTICATION_FAILED,
                        format!("failed to get secret '{ns}/{}': {err}", s.name),
                    );
                    self.c()
                        .mark_true(cond::FETCH_FAILED, &e.reason, &e.message);
                    return Err(e);
                }
            };
            auth = AuthOptions::from_secret(&url, &data).map_err(|err| {
                let e = StepError::generic(
                    source_reason::AUTHENTICATION_FAILED,
                    format!("failed to configure authentication options: {err}"),
                );
                self.c()
                    .mark_true(cond::FETCH_FAILED, &e.reason, &e.message);
                e
            })?;
            secret_data = Some(data);
        }
        self.provider_credentials(&mut auth, secret_data.as_ref(), proxy.as_ref())
            .await?;
        auth.proxy = proxy;

        // Includes: every included repository must have an artifact.
        let mut includes = Vec::new();
        for incl in spec.include.as_deref().unwrap_or(&[]) {
            let name = &incl.repository.name;
            let dep = match self.lookup.git_repository(&ns, name).await {
                Ok(Some(d)) => d,
                Ok(None) => {
                    let e = StepError::waiting(
                        "NotFound",
                        format!(
                            "could not get resource for include '{name}': gitrepositories.source.toolkit.fluxcd.io \"{name}\" not found"
                        ),
                    );
                    self.c()
                        .mark_true(cond::INCLUDE_UNAVAILABLE, &e.reason, &e.message);
                    return Err(e);
                }
                Err(err) => {
                    let e = StepError::waiting(
                        "NotFound",
                        format!("could not get resource for include '{name}': {err}"),
                    );
                    self.c()
                        .mark_true(cond::INCLUDE_UNAVAILABLE, &e.reason, &e.message);
                    return Err(e);
                }
            };
            match dep.status.as_ref().and_then(|s| s.artifact.clone()) {
                Some(a) => includes.push(a),
                None => {
                    let e = StepError::waiting(
                        source_reason::NO_ARTIFACT,
                        format!("no artifact available for include '{name}'"),
                    );
                    self.c()
                        .mark_true(cond::INCLUDE_UNAVAILABLE, &e.reason, &e.message);
                    return Err(e);
                }
            }
        }
        if includes_differ(&includes, self.status.included_artifacts.as_ref()) {
            let message = "included artifacts differ from last observed includes";
            if self.status.included_artifacts.is_some() {
                self.c().mark_true(
                    cond::ARTIFACT_OUTDATED,
                    source_reason::INCLUDE_CHANGE,
                    message,
                );
            }
            self.c().progressive(
                true,
                reason::PROGRESSING,
                &format!("building artifact: {message}"),
            );
        }
        self.c().delete(cond::INCLUDE_UNAVAILABLE);
        self.includes = includes;

        let reference = Reference::from_spec(spec.r#ref.as_ref());
        let last_observed =
            if self.settings.optimized_git_clones && self.c().is_true(cond::ARTIFACT_IN_STORAGE) {
                self.status.artifact.as_ref().map(|a| a.revision.clone())
            } else {
                None
            };
        let timeout = spec
            .timeout
            .as_ref()
            .and_then(|t| t.to_std().ok())
            .unwrap_or(DEFAULT_TIMEOUT);
        let cfg = CloneConfig {
            url: url.clone(),
            reference: reference.clone(),
            auth,
            last_observed_revision: last_observed,
            recurse_submodules: spec.recurse_submodules.unwrap_or(false),
            sparse_checkout: spec.sparse_checkout.clone(),
            ssh_kex_algos: self.settings.ssh_kex_algos.clone(),
            ssh_hostkey_algos: self.settings.ssh_hostkey_algos.clone(),
            timeout: Some(timeout),
        };

        let mut outcome = self.checkout(&cfg, work, checkout, timeout).await?;
        if let CloneOutcome::Unchanged {
            hash,
            reference: full,
        } = &outcome
        {
            let partial = Commit {
                hash: hash.clone(),
                reference: full.clone(),
                message: String::new(),
                signature: None,
                payload: Vec::new(),
                referencing_tag: None,
            };
            let rev = partial.revision(&reference);
            if !content_config_changed(self.obj, &self.status, &self.conds, &self.includes) {
                self.c().delete(cond::FETCH_FAILED);
                self.c().mark_true(
                    cond::ARTIFACT_IN_STORAGE,
                    reason::SUCCEEDED,
                    &format!("stored artifact for revision '{rev}'"),
                );
                tracing::info!("no changes since last reconcilation: observed revision '{rev}'");
                return Err(StepError {
                    reason: source_reason::GIT_OPERATION_SUCCEEDED.to_string(),
                    message: format!(
                        "no changes since last reconcilation: observed revision '{rev}'"
                    ),
                    kind: ErrorKind::Done,
                });
            }
            let full_cfg = CloneConfig {
                last_observed_revision: None,
                ..cfg.clone()
            };
            let _ = std::fs::remove_dir_all(work);
            let _ = std::fs::remove_dir_all(checkout);
            std::fs::create_dir_all(work)
                .map_err(|e| StepError::generic(reason::FAILED, e.to_string()))?;
            outcome = self.checkout(&full_cfg, work, checkout, timeout).await?;
        }
        let CloneOutcome::CheckedOut { commit, shallow } = outcome else {
            return Err(StepError::generic(
                reason::FAILED,
                "unexpected clone outcome",
            ));
        };
        tracing::debug!(url = %url, revision = %commit_revision(self.obj, &commit), shallow, "git repository checked out");
        self.c().delete(cond::FETCH_FAILED);

        for dir in
            crate::git::checkout::normalize_sparse(spec.sparse_checkout.as_deref().unwrap_or(&[]))
        {
            if std::fs::symlink_metadata(checkout.join(&dir)).is_err() {
                let e = StepError::generic(
                    source_reason::GIT_OPERATION_FAILED,
                    format!(
                        "failed to sparse checkout directories : sparse checkout dir '{dir}' does not exist in repository"
                    ),
                );
                self.c()
                    .mark_true(cond::FETCH_FAILED, &e.reason, &e.message);
                return Err(e);
            }
        }

        self.verify_signature(&commit).await?;

        let rev = commit_revision(self.obj, &commit);
        let has_rev = self
            .status
            .artifact
            .as_ref()
            .is_some_and(|a| a.revision == rev);
        if !has_rev {
            let message = format!("new upstream revision '{rev}'");
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
        }
        self.commit = Some(commit);
        Ok(())
    }

    async fn checkout(
        &mut self,
        cfg: &CloneConfig,
        work: &Path,
        checkout: &Path,
        timeout: Duration,
    ) -> Result<CloneOutcome, StepError> {
        let interrupt = Arc::new(AtomicBool::new(false));
        let (cfg2, work2, checkout2, int2) = (
            cfg.clone(),
            work.to_path_buf(),
            checkout.to_path_buf(),
            interrupt.clone(),
        );
        let task =
            tokio::task::spawn_blocking(move || git::clone(&cfg2, &work2, &checkout2, &int2));
        let res = match tokio::time::timeout(timeout, task).await {
            Ok(Ok(r)) => r,
            Ok(Err(join)) => Err(git::GitError::Checkout(format!(
                "clone task failed: {join}"
            ))),
            Err(_) => {
                interrupt.store(true, Ordering::SeqCst);
                Err(git::GitError::Clone {
                    url: cfg.url.clone(),
                    reason: format!(
                        "context deadline exceeded (timeout {})",
                        ferroflux_api::duration::format_go(timeout)
                    ),
                })
            }
        };
        res.map_err(|err| {
            let e = StepError::generic(
                source_reason::GIT_OPERATION_FAILED,
                format!("failed to checkout and determine revision: {err}"),
            );
            self.c()
                .mark_true(cond::FETCH_FAILED, &e.reason, &e.message);
            e
        })
    }

    async fn verify_signature(&mut self, commit: &Commit) -> Result<(), StepError> {
        let Some(mode) = verification_mode(self.obj) else {
            self.status.source_verification_mode = None;
            self.c().delete(cond::SOURCE_VERIFIED);
            return Ok(());
        };
        let Some(verify) = self.obj.spec.verify.clone() else {
            return Ok(());
        };
        let ns = self.namespace();
        let keys = match self.lookup.secret(&ns, &verify.secret_ref.name).await {
            Ok(Some(d)) => d,
            Ok(None) => {
                let e = StepError::generic(
                    source_reason::VERIFICATION_ERROR,
                    format!(
                        "PGP public keys secret error: secrets \"{}\" not found",
                        verify.secret_ref.name
                    ),
                );
                self.c()
                    .mark_false(cond::SOURCE_VERIFIED, &e.reason, &e.message);
                return Err(e);
            }
            Err(err) => {
                let e = StepError::generic(
                    source_reason::VERIFICATION_ERROR,
                    format!("PGP public keys secret error: {err}"),
                );
                self.c()
                    .mark_false(cond::SOURCE_VERIFIED, &e.reason, &e.message);
                return Err(e);
            }
        };
        match crate::verify::verify(mode, commit, &keys) {
            Ok(message) => {
                self.status.source_verification_mode = Some(mode.to_string());
                self.c()
                    .mark_true(cond::SOURCE_VERIFIED, reason::SUCCEEDED, &message);
                self.event(Severity::Trace, reason::SUCCEEDED, message);
                Ok(())
            }
            Err(err) => {
                let e = StepError {
                    reason: err.reason().to_string(),
                    message: one_line(&err.to_string()),
                    kind: if err.stalling() {
                        ErrorKind::Stalling
                    } else {
                        ErrorKind::Generic
                    },
                };
                self.c()
                    .mark_false(cond::SOURCE_VERIFIED, &e.reason, &e.message);
                Err(e)
            }
        }
    }

    /// Step 3: copy the included artifacts into the checkout.
    fn reconcile_include(&mut self, checkout: &Path, scratch: &Path) -> Result<(), StepError> {
        let includes = self.obj.spec.include.clone().unwrap_or_default();
        for (i, incl) in includes.iter().enumerate() {
            let name = &incl.repository.name;
            let to = include_to(incl);
            let Some(to_path) = secure_join(checkout, &to) else {
                let e = StepError::generic(
                    source_reason::ILLEGAL_PATH,
                    format!(
                        "path calculation for include '{name}' failed: '{to}' escapes the repository"
                    ),
                );
                self.c()
                    .mark_true(cond::INCLUDE_UNAVAILABLE, &e.reason, &e.message);
                return Err(e);
            };
            let Some(artifact) = self.includes.get(i).cloned() else {
                continue;
            };
            if let Err(err) = self.copy_include(
                &artifact,
                &include_from(incl),
                &to_path,
                &scratch.join(format!("include-{i}")),
            ) {
                let e = StepError::generic(
                    "CopyFailure",
                    format!(
                        "failed to copy '{name}' include from {} to {to}: {err}",
                        include_from(incl)
                    ),
                );
                self.c()
                    .mark_true(cond::INCLUDE_UNAVAILABLE, &e.reason, &e.message);
                return Err(e);
            }
        }
        self.c().delete(cond::INCLUDE_UNAVAILABLE);
        Ok(())
    }

    fn copy_include(
        &self,
        artifact: &Artifact,
        from: &str,
        to: &Path,
        scratch: &Path,
    ) -> Result<(), String> {
        let file = self
            .storage
            .local_path(&artifact.path)
            .map_err(|e| e.to_string())?;
        let data = std::fs::read(&file).map_err(|e| format!("failed to read artifact: {e}"))?;
        ferroflux_runtime::artifact::verify_digest(&artifact.digest, &data)
            .map_err(|e| e.to_string())?;
        std::fs::create_dir_all(scratch).map_err(|e| e.to_string())?;
        ferroflux_runtime::artifact::untar_gz(
            &data,
            scratch,
            ferroflux_runtime::artifact::UntarLimits::default(),
        )
        .map_err(|e| e.to_string())?;
        let src =
            secure_join(scratch, from).ok_or_else(|| format!("'{from}' escapes the artifact"))?;
        if !src.exists() {
            return Err(format!("'{from}' does not exist in the artifact"));
        }
        if to.exists() {
            std::fs::remove_dir_all(to).map_err(|e| e.to_string())?;
        }
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
        }
        std::fs::rename(&src, to).map_err(|e| e.to_string())
    }

    /// Step 4: the artifact.
    async fn reconcile_artifact(&mut self, checkout: &Path) -> Result<(), StepError> {
        let Some(commit) = self.commit.clone() else {
            return Ok(());
        };
        let ns = self.namespace();
        let rev = commit_revision(self.obj, &commit);
        let mut artifact = self.storage.new_artifact_for(
            KIND,
            &ns,
            &self.obj.name_any(),
            &rev,
            &format!("{}.tar.gz", commit.hash),
        );

        let up_to_date = self
            .status
            .artifact
            .as_ref()
            .is_some_and(|a| a.revision == rev)
            && !includes_differ(&self.includes, self.status.included_artifacts.as_ref())
            && !content_config_changed(self.obj, &self.status, &self.conds, &self.includes);
        if up_to_date {
            self.event(
                Severity::Trace,
                source_reason::ARTIFACT_UP_TO_DATE,
                format!("artifact up-to-date with remote revision: '{rev}'"),
            );
            self.mark_in_storage();
            return Ok(());
        }

        if let Err(e) = self.storage.mkdir_all(&artifact) {
            let e = StepError::generic(source_reason::DIRECTORY_CREATION_FAILED, e.to_string());
            self.c()
                .mark_true(cond::STORAGE_OPERATION_FAILED, &e.reason, &e.message);
            return Err(e);
        }
        let _lock = self
            .storage
            .lock(&artifact)
            .map_err(|e| StepError::generic(reason::FAILED, e.to_string()))?;

        let mut patterns = ignore::load_ignore_patterns(checkout).map_err(|e| {
            StepError::generic(
                "SourceIgnoreError",
                format!("failed to load source ignore patterns from repository: {e}"),
            )
        })?;
        if let Some(extra) = &self.obj.spec.ignore {
            patterns.extend(ignore::read_patterns(extra, &[]));
        }
        let matcher = Matcher::for_artifact(patterns);
        let filter = |p: &[&str], is_dir: bool| matcher.is_excluded(p, is_dir);
        let archived = self
            .storage
            .archive(&mut artifact, checkout, &filter, self.settings.limits);
        let pushed = match archived {
            Ok(()) => self.storage.push(&artifact).await,
            Err(e) => Err(e),
        };
        if let Err(e) = pushed {
            let e = StepError::generic(source_reason::ARCHIVE_OPERATION_FAILED, e.to_string());
            self.c()
                .mark_true(cond::STORAGE_OPERATION_FAILED, &e.reason, &e.message);
            return Err(e);
        }

        self.status.artifact = Some(artifact.clone());
        self.status.included_artifacts =
            if self.includes.is_empty() && self.obj.spec.include.is_none() {
                None
            } else {
                Some(self.includes.clone())
            };
        self.status.observed_ignore = self.obj.spec.ignore.clone();
        self.status.observed_recurse_submodules = self.obj.spec.recurse_submodules;
        self.status.observed_include = self.obj.spec.include.clone();
        self.status.observed_sparse_checkout = self.obj.spec.sparse_checkout.clone();
        self.c().delete(cond::STORAGE_OPERATION_FAILED);
        self.mark_in_storage();

        let mut metadata = BTreeMap::new();
        metadata.insert("revision".to_string(), artifact.revision.clone());
        metadata.insert("digest".to_string(), artifact.digest.clone());
        self.events.push(PendingEvent {
            severity: Severity::Info,
            reason: source_reason::NEW_ARTIFACT.to_string(),
            message: format!("stored artifact for commit '{}'", commit.short_message()),
            metadata,
        });
        self.new_artifact = Some(artifact);
        Ok(())
    }

    fn mark_in_storage(&mut self) {
        if let Some(a) = self.status.artifact.clone() {
            self.c().delete(cond::ARTIFACT_OUTDATED);
            self.c().mark_true(
                cond::ARTIFACT_IN_STORAGE,
                reason::SUCCEEDED,
                &format!("stored artifact for revision '{}'", a.revision),
            );
        }
    }
}

/// Joins `rel` under `root` lexically, refusing to leave it (`..` above the root).
fn secure_join(root: &Path, rel: &str) -> Option<PathBuf> {
    let mut out = root.to_path_buf();
    let mut depth = 0usize;
    for c in Path::new(rel).components() {
        match c {
            std::path::Component::Normal(p) => {
                out.push(p);
                depth += 1;
            }
            std::path::Component::CurDir | std::path::Component::RootDir => {}
            std::path::Component::ParentDir => {
                if depth == 0 {
                    return None;
                }
                out.pop();
                depth -= 1;
            }
            std::path::Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Runs one reconcile of `obj` (not being deleted, not suspended): returns the new status, the
/// result and the events to publish.
pub async fn run_pipeline<L: Lookup>(
    obj: &GitRepository,
    storage: &Storage,
    lookup: &L,
    settings: &Settings,
    scratch_root: &Path,
) -> PipelineOutput {
    let mut status = obj.status.clone().unwrap_or_default();
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
        includes: Vec::new(),
        commit: None,
    };
    let generation = obj.meta().generation;
    if generation != run.status.observed_generation {
        let msg = format!(
            "processing object: new generation {} -> {}",
            run.status.observed_generation.unwrap_or(-1),
            generation.unwrap_or(0)
        );
        run.c().progressive(true, reason::PROGRESSING, &msg);
    }

    let scratch = tempdir_in(scratch_root, "gitrepository");
    let result = match &scratch {
        Err(e) => Err(StepError::generic(
            source_reason::DIRECTORY_CREATION_FAILED,
            format!("failed to create temporary working directory: {e}"),
        )),
        Ok(dir) => {
            let work = dir.join("work");
            let checkout = dir.join("checkout");
            let steps = async {
                std::fs::create_dir_all(&work).map_err(|e| {
                    StepError::generic(source_reason::DIRECTORY_CREATION_FAILED, e.to_string())
                })?;
                run.reconcile_storage().await?;
                run.reconcile_source(&work, &checkout).await?;
                run.reconcile_include(&checkout, dir)?;
                run.reconcile_artifact(&checkout).await
            };
            steps.await
        }
    };
    if let Ok(dir) = &scratch {
        let _ = std::fs::remove_dir_all(dir);
    }
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
        events,
        new_artifact,
        ..
    } = run;
    summarize(
        &mut conds,
        &mut status.observed_generation,
        generation,
        &result,
    );
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

/// Secrets and GitRepositories from the API server.
#[derive(Clone)]
pub struct KubeLookup {
    pub client: kube::Client,
}

impl Lookup for KubeLookup {
    fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<BTreeMap<String, Vec<u8>>>, String>> + Send {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let name = name.to_string();
        async move {
            match api.get_opt(&name).await {
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

    fn git_repository(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<GitRepository>, String>> + Send {
        let api: Api<GitRepository> = Api::namespaced(self.client.clone(), namespace);
        let name = name.to_string();
        async move { api.get_opt(&name).await.map_err(|e| e.to_string()) }
    }
}

/// The GitRepository reconciler run by the driver.
#[derive(Clone)]
pub struct GitRepositoryReconciler {
    pub storage: Storage,
    pub events: ArtifactEventLog,
    pub recorder: EventRecorder,
    pub settings: Settings,
    pub scratch_root: PathBuf,
}

impl Reconciler<GitRepository> for GitRepositoryReconciler {
    async fn reconcile(
        &self,
        obj: Arc<GitRepository>,
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
        obj: Arc<GitRepository>,
        _ctx: ReconcileContext,
    ) -> Result<(), ReconcileError> {
        crate::pipeline::collect_garbage(&self.storage, &self.recorder, KIND, obj.as_ref()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_join_refuses_escapes() {
        let root = Path::new("/tmp/x");
        assert_eq!(secure_join(root, "a/../b"), Some(PathBuf::from("/tmp/x/b")));
        assert_eq!(secure_join(root, "./"), Some(PathBuf::from("/tmp/x")));
        assert_eq!(secure_join(root, "../y"), None);
    }

    #[test]
    fn summary_prefers_failures_and_keeps_observed_generation() {
        let mut conds = Vec::new();
        let mut status = GitRepositoryStatus::default();
        {
            let mut c = Conds {
                list: &mut conds,
                generation: Some(2),
            };
            c.mark_true(cond::RECONCILING, reason::PROGRESSING, "building artifact");
            c.mark_true(
                cond::FETCH_FAILED,
                source_reason::GIT_OPERATION_FAILED,
                "failed to checkout",
            );
        }
        let failed = PipelineResult::Failed {
            reason: source_reason::GIT_OPERATION_FAILED.into(),
            message: "failed to checkout".into(),
        };
        summarize(
            &mut conds,
            &mut status.observed_generation,
            Some(2),
            &failed,
        );
        let ready = cond::get(&conds, cond::READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "GitOperationFailed")
        );
        assert_eq!(
            cond::get(&conds, cond::RECONCILING).unwrap().reason,
            "ProgressingWithRetry"
        );
        assert_eq!(status.observed_generation, Some(-1), "not settled");

        cond::remove(&mut conds, cond::FETCH_FAILED);
        Conds {
            list: &mut conds,
            generation: Some(2),
        }
        .mark_true(
            cond::ARTIFACT_IN_STORAGE,
            reason::SUCCEEDED,
            "stored artifact for revision 'main@sha1:x'",
        );
        summarize(
            &mut conds,
            &mut status.observed_generation,
            Some(2),
            &PipelineResult::Success,
        );
        let ready = cond::get(&conds, cond::READY).unwrap();
        assert_eq!(ready.status, "True");
        assert_eq!(ready.message, "stored artifact for revision 'main@sha1:x'");
        assert!(cond::get(&conds, cond::RECONCILING).is_none());
        assert_eq!(status.observed_generation, Some(2));
    }
}
