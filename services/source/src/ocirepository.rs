//! The OCIRepository reconciler.
//!
//! Upstream's pipeline: storage (garbage collection, the advertised artifact still there with
//! its digest), source (credentials from pull Secrets, the ServiceAccount and the provider,
//! TLS and proxy, reference resolution — digest > SemVer > tag > `latest` — and the revision
//! `<tag>@sha256:<hex>` or `sha256:<hex>`; then, unless that revision is already stored with
//! the same ignore rules and layer selector, the manifest by digest, its annotations and the
//! selected layer) and artifact (the layer extracted and re-archived with the ignore rules —
//! or, when it is plain and nothing would be left out, the checked blob stored as is — or
//! copied as is). [`run_pipeline`] does it against a [`Lookup`] without an API server;
//! [`OCIRepositoryReconciler`] wires it to Kubernetes, events and the artifact event stream.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferroflux_api::conditions::{self as cond, reason, source_reason};
use ferroflux_api::ocirepository::{
    OCILayerOperation, OCIProvider, OCIRepository, OCIRepositoryStatus, VerificationProvider,
};
use ferroflux_api::{Artifact, FluxObject};
use ferroflux_runtime::events::{EventRecorder, Severity};
use ferroflux_runtime::{Outcome, ReconcileContext, ReconcileError, Reconciler};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::Api;
use kube::{Resource, ResourceExt};
use oci_client::manifest::{OciDescriptor, OciImageManifest};

use crate::artifact_events::ArtifactEventLog;
use crate::ignore::{self, Matcher, Pattern};
use crate::oci::auth::Keychain;
use crate::oci::client::{ClientOptions, Registry};
use crate::oci::{self, Repository, Resolved};
use crate::pipeline;
use crate::pipeline::{
    Conds, ErrorKind, RunRecord, StepError, storage_detail, summarize, tempdir_in,
};
pub use crate::pipeline::{PendingEvent, PipelineResult};
use crate::storage::archive::{ArchiveError, TarGzWriter};
use crate::storage::{ArchiveLimits, Storage};

/// Kind name used in storage paths and events.
pub const KIND: &str = "OCIRepository";
/// Status field manager (upstream: the controller name).
pub use crate::pipeline::FIELD_MANAGER;
/// The feature gate that lets `serviceAccountName` select the identity of a cloud provider.
pub const OBJECT_LEVEL_WORKLOAD_IDENTITY: &str = "ObjectLevelWorkloadIdentity";

/// The largest cosign payload read (they are a few hundred bytes).
const MAX_SIGNATURE_PAYLOAD: u64 = 1 << 20;

/// What the pipeline needs from the cluster.
pub trait Lookup: Send + Sync {
    /// The data of a Secret; `Ok(None)` if it does not exist.
    fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<BTreeMap<String, Vec<u8>>>, String>> + Send;
    /// The names in a ServiceAccount's `imagePullSecrets`; `Ok(None)` if it does not exist.
    fn image_pull_secrets(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<Vec<String>>, String>> + Send;
}

/// Settings shared by every reconcile.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// Limits of the re-archived artifact (`--artifact-max-file-size`).
    pub limits: ArchiveLimits,
    /// (ferroflux) The largest layer pulled, and the most it may unpack to; `None` = no
    /// limit, as upstream.
    pub max_layer_size: Option<u64>,
    /// The `ObjectLevelWorkloadIdentity` feature gate.
    pub object_level_workload_identity: bool,
}

/// Everything a reconcile produced.
#[derive(Clone, Debug)]
pub struct PipelineOutput {
    pub status: OCIRepositoryStatus,
    pub result: PipelineResult,
    pub events: Vec<PendingEvent>,
    /// Set when a new artifact was written.
    pub new_artifact: Option<Artifact>,
}

/// The pulled content of a revision.
enum Content {
    /// The extracted layer.
    Tree(oci::layer::Tree),
    /// The layer blob, to store as is (`copy`, or an `extract` whose archive would hold
    /// exactly the layer's files).
    Blob(PathBuf),
    /// The same for `extract`, already streamed into storage next to the artifact.
    Pending(Box<crate::storage::PendingArtifact>),
}

/// What the source step found.
struct Fetched {
    revision: String,
    annotations: Option<BTreeMap<String, String>>,
    /// `None` when nothing was pulled (revision and content settings unchanged).
    content: Option<Content>,
}

fn layer_media_type(obj: &OCIRepository) -> &str {
    obj.spec
        .layer_selector
        .as_ref()
        .and_then(|l| l.media_type.as_deref())
        .unwrap_or("")
}

fn layer_operation(obj: &OCIRepository) -> OCILayerOperation {
    obj.spec
        .layer_selector
        .as_ref()
        .and_then(|l| l.operation)
        .unwrap_or_default()
}

/// Upstream's ociContentConfigChanged: ignore rules or layer selector differ from what the
/// stored artifact was built with.
fn content_config_changed(obj: &OCIRepository, status: &OCIRepositoryStatus) -> bool {
    obj.spec.ignore != status.observed_ignore
        || obj.spec.layer_selector != status.observed_layer_selector
}

fn has_revision(status: &OCIRepositoryStatus, revision: &str) -> bool {
    status
        .artifact
        .as_ref()
        .is_some_and(|a| a.revision == revision)
}

/// State carried between the steps of one reconcile.
struct Run<'a, L: Lookup> {
    obj: &'a OCIRepository,
    storage: &'a Storage,
    lookup: &'a L,
    settings: &'a Settings,
    status: OCIRepositoryStatus,
    conds: Vec<Condition>,
    events: Vec<PendingEvent>,
    new_artifact: Option<Artifact>,
    fetched: Option<Fetched>,
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
            Some((&mut self.status.url, "latest.tar.gz")),
            conds,
            &mut self.events,
        )
        .await
    }

    /// Registry credentials: `secretRef`, then the ServiceAccount's image pull secrets.
    async fn keychain(&mut self) -> Result<Keychain, String> {
        let ns = self.namespace();
        let mut keychain = Keychain::default();
        if let Some(s) = self.obj.spec.secret_ref.clone() {
            let data = match self.lookup.secret(&ns, &s.name).await {
                Ok(Some(d)) => d,
                Ok(None) => {
                    self.event(
                        Severity::Trace,
                        source_reason::AUTHENTICATION_FAILED,
                        format!("auth secret '{}' not found", s.name),
                    );
                    return Err(format!(
                        "failed to get secret '{ns}/{}': secrets \"{}\" not found",
                        s.name, s.name
                    ));
                }
                Err(e) => return Err(format!("failed to get secret '{ns}/{}': {e}", s.name)),
            };
            keychain.add_secret(&format!("{ns}/{}", s.name), &data)?;
        }
        if let Some(sa) = self
            .obj
            .spec
            .service_account_name
            .clone()
            .filter(|s| !s.is_empty())
        {
            let names = match self.lookup.image_pull_secrets(&ns, &sa).await {
                Ok(Some(n)) => n,
                Ok(None) => {
                    return Err(format!(
                        "failed to get service account '{ns}/{sa}': serviceaccounts \"{sa}\" not found"
                    ));
                }
                Err(e) => return Err(format!("failed to get service account '{ns}/{sa}': {e}")),
            };
            for name in names {
                match self.lookup.secret(&ns, &name).await {
                    Ok(Some(data)) => keychain.add_secret(&format!("{ns}/{name}"), &data)?,
                    Ok(None) => {
                        return Err(format!(
                            "failed to get image pull secret '{ns}/{name}': secrets \"{name}\" not found"
                        ));
                    }
                    Err(e) => {
                        return Err(format!(
                            "failed to get image pull secret '{ns}/{name}': {e}"
                        ));
                    }
                }
            }
        }
        Ok(keychain)
    }

    /// `proxySecretRef` as a proxy URL with its credentials.
    async fn proxy_url(&self) -> Result<Option<String>, String> {
        let Some(p) = &self.obj.spec.proxy_secret_ref else {
            return Ok(None);
        };
        let ns = self.namespace();
        let data = match self.lookup.secret(&ns, &p.name).await {
            Ok(Some(d)) => d,
            Ok(None) => {
                return Err(format!("secrets \"{}\" not found", p.name));
            }
            Err(e) => return Err(e),
        };
        let opts = crate::git::auth::ProxyOptions::from_secret(&data)?;
        let mut url = reqwest::Url::parse(&opts.address)
            .map_err(|e| format!("invalid proxy address in secret '{ns}/{}': {e}", p.name))?;
        if let Some(u) = &opts.username {
            url.set_username(u)
                .map_err(|_| format!("invalid proxy address in secret '{ns}/{}'", p.name))?;
            url.set_password(opts.password.as_deref())
                .map_err(|_| format!("invalid proxy address in secret '{ns}/{}'", p.name))?;
        }
        Ok(Some(url.to_string()))
    }

    /// `certSecretRef`: the CA certificate (`ca.crt`) and the client certificate
    /// (`tls.crt` + `tls.key`, as one PEM identity), each optional but not both absent.
    async fn tls(&self) -> Result<(Option<Vec<u8>>, Option<Vec<u8>>), String> {
        let Some(c) = self
            .obj
            .spec
            .cert_secret_ref
            .as_ref()
            .filter(|c| !c.name.is_empty())
        else {
            return Ok((None, None));
        };
        let ns = self.namespace();
        let data = match self.lookup.secret(&ns, &c.name).await {
            Ok(Some(d)) => d,
            Ok(None) => return Err(format!("secrets \"{}\" not found", c.name)),
            Err(e) => return Err(e),
        };
        let (has_cert, has_key) = (data.contains_key("tls.crt"), data.contains_key("tls.key"));
        if has_cert != has_key {
            return Err(format!(
                "secret '{ns}/{}' must contain both 'tls.crt' and 'tls.key'",
                c.name
            ));
        }
        let identity = match (data.get("tls.crt"), data.get("tls.key")) {
            (Some(cert), Some(key)) => {
                let mut pem = cert.clone();
                if !pem.ends_with(b"\n") {
                    pem.push(b'\n');
                }
                pem.extend_from_slice(key);
                Some(pem)
            }
            _ => None,
        };
        let ca = data.get("ca.crt").cloned();
        if ca.is_none() && identity.is_none() {
            return Err(format!(
                "secret '{ns}/{}' must contain 'ca.crt' (or 'tls.crt' and 'tls.key')",
                c.name
            ));
        }
        Ok((ca, identity))
    }

    /// Step 2: credentials, reference, revision, and the content when it must be pulled.
    async fn reconcile_source(&mut self, dir: &Path) -> Result<(), StepError> {
        if self.c().is_false(cond::SOURCE_VERIFIED) {
            self.c().delete(cond::SOURCE_VERIFIED);
        }
        let url = self.url();
        let keychain = match self.keychain().await {
            Ok(k) => k,
            Err(e) => {
                let e = StepError::generic(
                    source_reason::AUTHENTICATION_FAILED,
                    format!("failed to get credential: {e}"),
                );
                return Err(self.fetch_failed(e));
            }
        };
        let proxy = match self.proxy_url().await {
            Ok(p) => p,
            Err(e) => {
                let e = StepError::generic(
                    source_reason::AUTHENTICATION_FAILED,
                    format!("failed to get proxy address: {e}"),
                );
                return Err(self.fetch_failed(e));
            }
        };
        let provider = self.obj.spec.provider.unwrap_or_default();
        if keychain.is_empty() && provider != OCIProvider::Generic {
            let name = match provider {
                OCIProvider::Aws => "aws",
                OCIProvider::Azure => "azure",
                OCIProvider::Gcp => "gcp",
                OCIProvider::Generic => "generic",
            };
            if self
                .obj
                .spec
                .service_account_name
                .as_deref()
                .is_some_and(|s| !s.is_empty())
                && !self.settings.object_level_workload_identity
            {
                return Err(StepError::stalling(
                    reason::FEATURE_GATE_DISABLED,
                    format!(
                        "to use spec.serviceAccountName for provider authentication please enable the {OBJECT_LEVEL_WORKLOAD_IDENTITY} feature gate in the controller"
                    ),
                ));
            }
            let e = StepError::generic(
                source_reason::AUTHENTICATION_FAILED,
                format!(
                    "failed to get credential from {name}: provider '{name}' (workload identity) is not supported by this source-controller"
                ),
            );
            return Err(self.fetch_failed(e));
        }
        let (ca_pem, client_identity_pem) = match self.tls().await {
            Ok(tls) => tls,
            Err(e) => {
                let e = StepError::generic(
                    source_reason::AUTHENTICATION_FAILED,
                    format!("failed to generate transport for '{url}': {e}"),
                );
                return Err(self.fetch_failed(e));
            }
        };

        let repo = match Repository::parse(&url) {
            Ok(r) => r,
            Err(e) => {
                let e = StepError::stalling(
                    source_reason::URL_INVALID,
                    format!("URL validation failed for '{url}': {e}"),
                );
                return Err(self.fetch_failed(e));
            }
        };
        let opts = ClientOptions {
            insecure: self.obj.spec.insecure.unwrap_or(false),
            ca_pem,
            proxy,
            credentials: keychain.lookup(&repo.registry, &repo.path).cloned(),
            timeout: Some(self.obj.effective_timeout()),
            // source-controller speaks HTTPS unless `insecure` says otherwise.
            allow_http: false,
            client_identity_pem,
        };
        let registry = match Registry::connect(&repo, &opts).await {
            Ok(r) => r,
            Err(e) => {
                let e = StepError::generic(
                    source_reason::AUTHENTICATION_FAILED,
                    format!("failed to generate transport for '{url}': {e}"),
                );
                return Err(self.fetch_failed(e));
            }
        };

        // Which artifact: digest > semver > tag > latest.
        let spec_ref = self.obj.spec.r#ref.clone().unwrap_or_default();
        let resolved = if let Some(d) = spec_ref.digest.as_ref().filter(|d| !d.is_empty()) {
            Resolved::Digest(d.clone())
        } else if let Some(range) = spec_ref.semver.as_ref().filter(|s| !s.is_empty()) {
            let media_type = layer_media_type(self.obj).to_string();
            let picked = match registry.list_tags().await {
                Ok(tags) => oci::select_semver_tag(
                    &tags,
                    range,
                    spec_ref.semver_filter.as_deref(),
                    &media_type,
                ),
                Err(e) => Err(e.to_string()),
            };
            match picked {
                Ok(tag) => Resolved::Tag(tag),
                Err(e) => {
                    let e = StepError::generic(
                        source_reason::READ_OPERATION_FAILED,
                        format!("failed to determine the artifact tag for '{url}': {e}"),
                    );
                    return Err(self.fetch_failed(e));
                }
            }
        } else if let Some(tag) = spec_ref.tag.as_ref().filter(|t| !t.is_empty()) {
            Resolved::Tag(tag.clone())
        } else {
            Resolved::Tag(oci::DEFAULT_TAG.to_string())
        };

        let (digest, reference) = match &resolved {
            Resolved::Digest(d) => (
                oci::validate_digest(d).map(|_| d.clone()),
                repo.digest_ref(d),
            ),
            Resolved::Tag(t) => (
                registry.tag_digest(t).await.map_err(|e| e.to_string()),
                repo.tag_ref(t),
            ),
        };
        let digest = match digest {
            Ok(d) => d,
            Err(e) => {
                let e = StepError::generic(
                    source_reason::OCI_ARTIFACT_PULL_FAILED,
                    format!("failed to determine artifact digest: {e}"),
                );
                return Err(self.fetch_failed(e));
            }
        };
        let revision = oci::revision(&resolved, &digest);

        let result = self.fetch(&registry, &repo, &digest, &revision, dir).await;

        // Whatever happened after the revision was known, record that it is new.
        if !has_revision(&self.status, &revision) {
            let message = format!("new revision '{revision}' for '{reference}'");
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
        result
    }

    /// `spec.verify`: cosign with the public keys (`*.pub`) of `secretRef`, offline as
    /// upstream (no transparency log). Keyless cosign and notation are not supported yet.
    async fn verify_signature(
        &mut self,
        verify: &ferroflux_api::ocirepository::OCIRepositoryVerification,
        registry: &Registry,
        repo: &Repository,
        digest: &str,
    ) -> Result<(), String> {
        let provider = verify.provider.unwrap_or_default();
        if provider == VerificationProvider::Notation {
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
                let key = oci::cosign::PublicKey::from_pem(pem)
                    .map_err(|e| format!("failed to load public key '{name}': {e}"))?;
                keys.push(key);
            }
        }
        let reference = repo.digest_ref(digest);
        let no_match = || format!("no matching signatures were found for '{reference}'");
        if keys.is_empty() {
            return Err(no_match());
        }
        // No signature image, or one that cannot be read: nothing matches (as cosign).
        let Ok(raw) = registry
            .tag_manifest(&oci::cosign::signature_tag(digest))
            .await
        else {
            return Err(no_match());
        };
        let Ok(manifest) = serde_json::from_slice::<OciImageManifest>(&raw) else {
            return Err(no_match());
        };
        for layer in manifest
            .layers
            .iter()
            .filter(|l| l.media_type == oci::cosign::SIMPLE_SIGNING_MEDIA_TYPE)
        {
            let Some(sig) = layer
                .annotations
                .as_ref()
                .and_then(|a| a.get(oci::cosign::SIGNATURE_ANNOTATION))
            else {
                continue;
            };
            let Ok(payload) = registry.blob_bytes(layer, MAX_SIGNATURE_PAYLOAD).await else {
                continue;
            };
            if keys
                .iter()
                .any(|k| oci::cosign::verify_layer(k, &payload, sig, digest).is_ok())
            {
                return Ok(());
            }
        }
        Err(no_match())
    }

    /// Verification, then the manifest, its annotations and the selected layer, unless the
    /// revision is stored already with the same content settings.
    async fn fetch(
        &mut self,
        registry: &Registry,
        repo: &Repository,
        digest: &str,
        revision: &str,
        dir: &Path,
    ) -> Result<(), StepError> {
        let url = self.url();
        match self.obj.spec.verify.clone() {
            None => self.c().delete(cond::SOURCE_VERIFIED),
            Some(v) => {
                let generation = self.obj.meta().generation;
                let verified_generation = cond::get(&self.conds, cond::SOURCE_VERIFIED)
                    .and_then(|c| c.observed_generation);
                if !has_revision(&self.status, revision)
                    || verified_generation != generation
                    || self.c().is_false(cond::SOURCE_VERIFIED)
                {
                    let mut provider = match v.provider.unwrap_or_default() {
                        VerificationProvider::Cosign => "cosign".to_string(),
                        VerificationProvider::Notation => "notation".to_string(),
                    };
                    if v.secret_ref.is_none() && provider == "cosign" {
                        provider.push_str(" keyless");
                    }
                    match self.verify_signature(&v, registry, repo, digest).await {
                        Ok(()) => self.c().mark_true(
                            cond::SOURCE_VERIFIED,
                            reason::SUCCEEDED,
                            &format!("verified signature of revision {revision}"),
                        ),
                        Err(msg) => {
                            let e = StepError::generic(
                                source_reason::VERIFICATION_ERROR,
                                format!(
                                    "failed to verify the signature using provider '{provider}': {msg}"
                                ),
                            );
                            self.c()
                                .mark_false(cond::SOURCE_VERIFIED, &e.reason, &e.message);
                            return Err(e);
                        }
                    }
                }
            }
        }

        if has_revision(&self.status, revision) && !content_config_changed(self.obj, &self.status) {
            self.c().delete(cond::FETCH_FAILED);
            let annotations = self
                .status
                .artifact
                .as_ref()
                .and_then(|a| a.metadata.clone());
            self.fetched = Some(Fetched {
                revision: revision.to_string(),
                annotations,
                content: None,
            });
            return Ok(());
        }

        let pull_failed = |msg: String| {
            StepError::generic(
                source_reason::OCI_ARTIFACT_PULL_FAILED,
                format!("failed to pull artifact from '{url}': {msg}"),
            )
        };
        let layer_failed = |msg: String| {
            StepError::generic(source_reason::OCI_ARTIFACT_LAYER_OPERATION_FAILED, msg)
        };

        let (mut raw, mut media_type) = match registry.manifest(digest).await {
            Ok(m) => m,
            Err(e) => return Err(self.fetch_failed(pull_failed(e.to_string()))),
        };
        if oci::INDEX_MEDIA_TYPES.contains(&media_type.as_str()) {
            #[derive(serde::Deserialize)]
            struct Index {
                #[serde(default)]
                manifests: Vec<oci::IndexEntry>,
            }
            let child = serde_json::from_slice::<Index>(&raw)
                .map_err(|e| format!("failed to parse image index: {e}"))
                .and_then(|idx| {
                    oci::select_platform(&idx.manifests, &repo.digest_ref(digest))
                        .map(|c| c.digest.clone())
                });
            let child = match child {
                Ok(c) => c,
                Err(e) => return Err(self.fetch_failed(pull_failed(e))),
            };
            (raw, media_type) = match registry.manifest(&child).await {
                Ok(m) => m,
                Err(e) => return Err(self.fetch_failed(pull_failed(e.to_string()))),
            };
            if oci::INDEX_MEDIA_TYPES.contains(&media_type.as_str()) {
                let e = pull_failed(format!("nested image index {child} is not supported"));
                return Err(self.fetch_failed(e));
            }
        }
        let manifest: OciImageManifest = match serde_json::from_slice(&raw) {
            Ok(m) => m,
            Err(e) => {
                let e = layer_failed(format!("failed to parse artifact manifest: {e}"));
                return Err(self.fetch_failed(e));
            }
        };
        let annotations = manifest.annotations.clone();

        let layer = match select_layer(&manifest, layer_media_type(self.obj)) {
            Ok(l) => l.clone(),
            Err(msg) => return Err(self.fetch_failed(layer_failed(msg))),
        };
        let blob = dir.join("layer.blob");
        let operation = layer_operation(self.obj);
        let limit = self.settings.max_layer_size;
        let content = match operation {
            OCILayerOperation::Extract => {
                // Checked while it downloads: the extraction thread reads the stream as it
                // arrives (and writes the blob file); its result counts only if the download
                // (size limit, digest) succeeds.
                let (tx, rx) = tokio::sync::mpsc::channel(STREAM_CHUNKS);
                // Straight into storage, next to the artifact it may become; a scratch file
                // if that cannot be made (the artifact step then reports the storage error).
                let artifact = self.storage.new_artifact_for(
                    KIND,
                    &self.namespace(),
                    &self.obj.name_any(),
                    revision,
                    &format!("{}.tar.gz", oci::digest_of_revision(revision)),
                );
                let dest = self.storage.pending(&artifact).ok();
                let extraction = tokio::task::spawn_blocking({
                    let blob = blob.clone();
                    let scratch = dir.join("content");
                    let ignore = self.obj.spec.ignore.clone();
                    let archive_limits = self.settings.limits;
                    move || extract(rx, dest, blob, &scratch, limit, ignore, archive_limits)
                });
                let stream = tokio::io::BufWriter::with_capacity(
                    STREAM_CHUNK,
                    ChannelWriter(tokio_util::sync::PollSender::new(tx)),
                );
                let downloaded = registry.blob_to_writer(&layer, stream, limit).await;
                let extracted = match extraction.await {
                    Ok(r) => r,
                    Err(e) => Err(format!("extraction task failed: {e}")),
                };
                let res = match downloaded {
                    Ok(_) => extracted,
                    Err(e) => Err(e.to_string()),
                };
                if !matches!(res, Ok(Content::Blob(_))) {
                    let _ = std::fs::remove_file(&blob);
                }
                match res {
                    Ok(content) => content,
                    Err(e) => {
                        let e = layer_failed(format!(
                            "failed to extract layer contents from artifact: {e}"
                        ));
                        return Err(self.fetch_failed(e));
                    }
                }
            }
            OCILayerOperation::Copy => {
                if let Err(e) = registry.blob_to_file(&layer, &blob, limit).await {
                    let e = layer_failed(format!("failed to copy layer from artifact: {e}"));
                    return Err(self.fetch_failed(e));
                }
                Content::Blob(blob)
            }
        };
        self.c().delete(cond::FETCH_FAILED);
        self.fetched = Some(Fetched {
            revision: revision.to_string(),
            annotations,
            content: Some(content),
        });
        Ok(())
    }

    /// Step 3: the artifact.
    async fn reconcile_artifact(&mut self) -> Result<(), StepError> {
        let Some(fetched) = self.fetched.take() else {
            return Ok(());
        };
        let revision = fetched.revision.clone();
        let result = self.write_artifact(fetched).await;
        if has_revision(&self.status, &revision) && !content_config_changed(self.obj, &self.status)
        {
            self.c().delete(cond::ARTIFACT_OUTDATED);
            self.c().mark_true(
                cond::ARTIFACT_IN_STORAGE,
                reason::SUCCEEDED,
                &format!("stored artifact for digest '{revision}'"),
            );
        }
        result
    }

    async fn write_artifact(&mut self, fetched: Fetched) -> Result<(), StepError> {
        let ns = self.namespace();
        let revision = &fetched.revision;
        let mut artifact = self.storage.new_artifact_for(
            KIND,
            &ns,
            &self.obj.name_any(),
            revision,
            &format!("{}.tar.gz", oci::digest_of_revision(revision)),
        );
        if has_revision(&self.status, revision) && !content_config_changed(self.obj, &self.status) {
            self.event(
                Severity::Trace,
                source_reason::ARTIFACT_UP_TO_DATE,
                format!("artifact up-to-date with remote revision: '{revision}'"),
            );
            return Ok(());
        }
        let Some(content) = fetched.content else {
            return Err(StepError::generic(
                reason::FAILED,
                format!("no content was pulled for revision '{revision}'"),
            ));
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
        let _lock = self.storage.lock(&artifact).map_err(|e| {
            StepError::generic(
                reason::FAILED,
                format!(
                    "failed to acquire lock for artifact: {}",
                    storage_detail(&e)
                ),
            )
        })?;
        let written = match content {
            Content::Blob(blob) => self
                .storage
                .copy_from_path(&mut artifact, &blob)
                .map_err(|e| format!("unable to copy artifact to storage: {}", storage_detail(&e))),
            Content::Pending(pending) => self
                .storage
                .persist(&mut artifact, *pending)
                .map_err(|e| format!("unable to copy artifact to storage: {}", storage_detail(&e))),
            Content::Tree(tree) => {
                let patterns =
                    tree_patterns(&tree, self.obj.spec.ignore.as_deref()).map_err(|e| {
                        StepError::generic(
                            "SourceIgnoreError",
                            format!("failed to load source ignore patterns from repository: {e}"),
                        )
                    })?;
                let matcher = Matcher::for_artifact(patterns);
                let filter = |p: &[&str], is_dir: bool| matcher.is_excluded(p, is_dir);
                let limits = self.settings.limits;
                self.storage
                    .archive_with(&mut artifact, |file, algo| {
                        let mut tar =
                            TarGzWriter::new(file, algo).map_err(|source| ArchiveError::Io {
                                context: "failed to write archive header".to_string(),
                                source,
                            })?;
                        tree.archive(&filter, limits, &mut tar)?;
                        tar.finish().map_err(|source| ArchiveError::Io {
                            context: "failed to finish archive".to_string(),
                            source,
                        })
                    })
                    .map_err(|e| {
                        format!(
                            "unable to archive artifact to storage: {}",
                            storage_detail(&e)
                        )
                    })
            }
        };
        let pushed = match written {
            Ok(()) => self
                .storage
                .push(&artifact)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        if let Err(msg) = pushed {
            let e = StepError::generic(source_reason::ARCHIVE_OPERATION_FAILED, msg);
            return Err(self.storage_failed(e));
        }
        artifact.metadata = fetched.annotations.filter(|m| !m.is_empty());
        self.status.artifact = Some(artifact.clone());
        self.status.observed_ignore = self.obj.spec.ignore.clone();
        self.status.observed_layer_selector = self.obj.spec.layer_selector.clone();
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

/// The layer upstream picks: the first with the selector's media type, or the first layer.
fn select_layer<'a>(
    manifest: &'a OciImageManifest,
    media_type: &str,
) -> Result<&'a OciDescriptor, String> {
    if manifest.layers.is_empty() {
        return Err("no layers found in artifact".to_string());
    }
    if media_type.is_empty() {
        return Ok(&manifest.layers[0]);
    }
    manifest
        .layers
        .iter()
        .find(|l| l.media_type == media_type)
        .ok_or_else(|| format!("failed to find layer with media type '{media_type}' in artifact"))
}

/// The ignore rules of an unpacked layer: its `.sourceignore` files, then `spec.ignore`.
fn tree_patterns(tree: &oci::layer::Tree, extra: Option<&str>) -> std::io::Result<Vec<Pattern>> {
    let mut patterns = tree.ignore_patterns()?;
    if let Some(extra) = extra {
        patterns.extend(ignore::read_patterns(extra, &[]));
    }
    Ok(patterns)
}

/// Chunks of a layer download in flight to the extraction thread at most, and their size:
/// the stream holds at most 4 MiB, whatever the layer's size.
const STREAM_CHUNKS: usize = 16;
const STREAM_CHUNK: usize = 256 * 1024;

/// The download side of a layer streamed to the extraction thread; waits while the channel
/// is full.
struct ChannelWriter(tokio_util::sync::PollSender<Vec<u8>>);

impl tokio::io::AsyncWrite for ChannelWriter {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let stopped = || std::io::Error::new(std::io::ErrorKind::BrokenPipe, "extraction stopped");
        let tx = &mut self.get_mut().0;
        match tx.poll_reserve(cx) {
            std::task::Poll::Pending => return std::task::Poll::Pending,
            std::task::Poll::Ready(Err(_)) => return std::task::Poll::Ready(Err(stopped())),
            std::task::Poll::Ready(Ok(())) => {}
        }
        let n = buf.len().min(STREAM_CHUNK);
        tx.send_item(buf[..n].to_vec()).map_err(|_| stopped())?;
        std::task::Poll::Ready(Ok(n))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.get_mut().0.close();
        std::task::Poll::Ready(Ok(()))
    }
}

/// The extraction side: reads the chunks as they come, writing each to `file`.
struct ChannelReader<W> {
    rx: tokio::sync::mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
    file: W,
    /// The first failed write to the blob file (later chunks are only received).
    failed: Option<std::io::Error>,
}

impl<W: std::io::Write> ChannelReader<W> {
    fn receive(&mut self) -> Option<Vec<u8>> {
        let chunk = self.rx.blocking_recv()?;
        if self.failed.is_none()
            && let Err(e) = std::io::Write::write_all(&mut self.file, &chunk)
        {
            self.failed = Some(e);
        }
        Some(chunk)
    }

    /// Receives the rest of the stream (so the download always runs to its end and its own
    /// checks decide); returns the first write error.
    fn finish(mut self) -> std::io::Result<W> {
        while self.receive().is_some() {}
        match self.failed {
            Some(e) => Err(e),
            None => Ok(self.file),
        }
    }
}

impl<W: std::io::Write> std::io::Read for ChannelReader<W> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let avail = std::io::BufRead::fill_buf(self)?;
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        std::io::BufRead::consume(self, n);
        Ok(n)
    }
}

impl<W: std::io::Write> std::io::BufRead for ChannelReader<W> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        while self.pos == self.chunk.len() {
            if let Some(e) = &self.failed {
                return Err(std::io::Error::new(e.kind(), e.to_string()));
            }
            match self.receive() {
                Some(chunk) => {
                    self.chunk = chunk;
                    self.pos = 0;
                }
                None => break,
            }
        }
        Ok(&self.chunk[self.pos..])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.chunk.len());
    }
}

/// Where a streamed layer is written: into storage next to the artifact, or a scratch file.
enum Dest {
    Storage(Box<crate::storage::PendingArtifact>),
    Scratch(std::fs::File),
}

impl std::io::Write for Dest {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Dest::Storage(p) => p.write(buf),
            Dest::Scratch(f) => f.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Dest::Storage(p) => p.flush(),
            Dest::Scratch(f) => f.flush(),
        }
    }
}

/// The `extract` operation, on the layer as it downloads (`rx`; written on the way into
/// `pending` in storage, else to `blob`): every entry goes through the runtime's safe-untar
/// checks (no absolute paths, no `..`, no links leaving the root, size and entry limits; see
/// [`oci::layer`]).
///
/// The artifact upstream stores is the unpacked tree archived again with the ignore rules.
/// When the layer is plain (every entry a file or directory that any tar reader reads alike,
/// see [`oci::layer::Tree::plain`]) and that archive would leave nothing out, the layer blob
/// unpacks to exactly that tree, so the blob itself is the artifact ([`Content::Pending`] or
/// [`Content::Blob`]): the same files reach consumers without compressing 50 MB again. The
/// first pass only indexes the layer (keeping `.sourceignore` contents); otherwise the blob
/// is read back and unpacked into an in-memory tree with its contents in `scratch`, to be
/// archived ([`Content::Tree`]).
fn extract(
    rx: tokio::sync::mpsc::Receiver<Vec<u8>>,
    pending: Option<crate::storage::PendingArtifact>,
    blob: PathBuf,
    scratch: &Path,
    limit: Option<u64>,
    ignore: Option<String>,
    archive_limits: ArchiveLimits,
) -> Result<Content, String> {
    let limits = oci::layer::Limits {
        max_size: limit.unwrap_or(u64::MAX),
        max_files: ferroflux_runtime::artifact::DEFAULT_MAX_FILES,
    };
    let dest = match pending {
        Some(p) => Ok(Dest::Storage(Box::new(p))),
        None => std::fs::File::create(&blob).map(Dest::Scratch),
    };
    let dest = match dest {
        Ok(d) => d,
        Err(e) => {
            // Still take the stream, so the download ends on its own terms.
            let mut rx = rx;
            while rx.blocking_recv().is_some() {}
            return Err(e.to_string());
        }
    };
    let mut stream = ChannelReader {
        rx,
        chunk: Vec::new(),
        pos: 0,
        file: dest,
        failed: None,
    };
    let indexed = oci::layer::Tree::index_gz(&mut stream, scratch, limits);
    let written = stream.finish();
    let tree = indexed.map_err(|e| crate::oci::client::error_chain(&e))?;
    let dest = written.map_err(|e| format!("failed to write layer: {e}"))?;
    let whole = tree.plain().is_ok()
        && tree_patterns(&tree, ignore.as_deref()).is_ok_and(|patterns| {
            let matcher = Matcher::for_artifact(patterns);
            tree.archives_whole(&|p, d| matcher.is_excluded(p, d), archive_limits)
        });
    drop(tree);
    let _ = std::fs::remove_file(scratch);
    if whole {
        return Ok(match dest {
            Dest::Storage(p) => Content::Pending(p),
            Dest::Scratch(_) => Content::Blob(blob),
        });
    }
    // Read back for the full unpack; the pending file (if any) is removed with `dest`.
    let written_at = match &dest {
        Dest::Storage(p) => p.path().to_path_buf(),
        Dest::Scratch(_) => blob.clone(),
    };
    let file = std::fs::File::open(&written_at).map_err(|e| e.to_string())?;
    let tree = oci::layer::Tree::unpack_gz(
        std::io::BufReader::with_capacity(1 << 20, file),
        scratch,
        limits,
    )
    .map_err(|e| crate::oci::client::error_chain(&e))?;
    drop(dest);
    Ok(Content::Tree(tree))
}

/// Upstream's notify: NewArtifact when the digest changed, Succeeded when recovering from a
/// fetch or storage failure with the same artifact.
fn notify(
    obj: &OCIRepository,
    old: &OCIRepositoryStatus,
    old_conds: &[Condition],
    new: &OCIRepositoryStatus,
    new_conds: &[Condition],
) -> Option<PendingEvent> {
    let artifact = new.artifact.as_ref()?;
    let mut message = format!(
        "stored artifact with revision '{}' from '{}'",
        artifact.revision,
        obj.spec.url.as_deref().unwrap_or_default()
    );
    if let Some(md) = &artifact.metadata
        && let (Some(source), Some(revision)) = (
            md.get(oci::SOURCE_ANNOTATION).filter(|s| !s.is_empty()),
            md.get(oci::REVISION_ANNOTATION).filter(|s| !s.is_empty()),
        )
    {
        message = format!("{message}, origin source '{source}', origin revision '{revision}'");
    }
    pipeline::stored_artifact_event(
        old.artifact.as_ref(),
        old_conds,
        artifact,
        new_conds,
        message,
    )
}

/// Runs one reconcile of `obj` (not being deleted, not suspended): returns the new status, the
/// result and the events to publish.
pub async fn run_pipeline<L: Lookup>(
    obj: &OCIRepository,
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

    let result = match tempdir_in(scratch_root, "ocirepository") {
        Err(e) => {
            let e = StepError::generic(
                source_reason::DIRECTORY_CREATION_FAILED,
                format!("failed to create temporary working directory: {e}"),
            );
            Err(run.storage_failed(e))
        }
        Ok(dir) => {
            run.c().delete(cond::STORAGE_OPERATION_FAILED);
            let timeout = obj.effective_timeout();
            let steps = async {
                run.reconcile_storage().await?;
                let source = tokio::time::timeout(timeout, run.reconcile_source(&dir)).await;
                match source {
                    Ok(r) => r?,
                    Err(_) => {
                        let e = StepError::generic(
                            source_reason::OCI_ARTIFACT_PULL_FAILED,
                            format!(
                                "failed to pull artifact from '{}': context deadline exceeded (timeout {})",
                                run.url(),
                                ferroflux_api::duration::format_go(timeout)
                            ),
                        );
                        return Err(run.fetch_failed(e));
                    }
                }
                run.reconcile_artifact().await
            };
            let r = steps.await;
            let _ = std::fs::remove_dir_all(&dir);
            r
        }
    };
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

/// Secrets and ServiceAccounts from the API server.
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

    fn image_pull_secrets(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<Vec<String>>, String>> + Send {
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
        let name = name.to_string();
        async move {
            match api.get_opt(&name).await {
                Ok(Some(sa)) => Ok(Some(
                    sa.image_pull_secrets
                        .unwrap_or_default()
                        .into_iter()
                        .map(|r| r.name)
                        .filter(|n| !n.is_empty())
                        .collect(),
                )),
                Ok(None) => Ok(None),
                Err(e) => Err(e.to_string()),
            }
        }
    }
}

/// The OCIRepository reconciler run by the driver.
#[derive(Clone)]
pub struct OCIRepositoryReconciler {
    pub storage: Storage,
    pub events: ArtifactEventLog,
    pub recorder: EventRecorder,
    pub settings: Settings,
    pub scratch_root: PathBuf,
}

impl Reconciler<OCIRepository> for OCIRepositoryReconciler {
    async fn reconcile(
        &self,
        obj: Arc<OCIRepository>,
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
        obj: Arc<OCIRepository>,
        __ctx: ReconcileContext,
    ) -> Result<(), ReconcileError> {
        crate::pipeline::collect_garbage(&self.storage, &self.recorder, KIND, obj.as_ref()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(layers: &[&str]) -> OciImageManifest {
        OciImageManifest {
            layers: layers
                .iter()
                .enumerate()
                .map(|(i, m)| OciDescriptor {
                    media_type: m.to_string(),
                    digest: format!("sha256:{i}"),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn layer_selection_as_upstream() {
        let m = manifest(&[
            oci::FLUX_CONTENT_MEDIA_TYPE,
            oci::HELM_CHART_CONTENT_MEDIA_TYPE,
        ]);
        assert_eq!(select_layer(&m, "").unwrap().digest, "sha256:0");
        assert_eq!(
            select_layer(&m, oci::HELM_CHART_CONTENT_MEDIA_TYPE)
                .unwrap()
                .digest,
            "sha256:1"
        );
        assert_eq!(
            select_layer(&m, "x/y").unwrap_err(),
            "failed to find layer with media type 'x/y' in artifact"
        );
        assert_eq!(
            select_layer(&manifest(&[]), "").unwrap_err(),
            "no layers found in artifact"
        );
    }

    #[test]
    fn events_on_new_digest_and_on_recovery() {
        let obj: OCIRepository = serde_json::from_value(serde_json::json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "OCIRepository",
            "metadata": {"name": "app", "namespace": "default"},
            "spec": {"url": "oci://r/app", "interval": "1m"},
        }))
        .unwrap();
        let artifact = |digest: &str| Artifact {
            path: "p".into(),
            url: "u".into(),
            revision: "v1@sha256:x".into(),
            digest: digest.into(),
            last_update_time: crate::pipeline::now(),
            size: None,
            metadata: Some(BTreeMap::from([
                (
                    oci::SOURCE_ANNOTATION.to_string(),
                    "https://git/x".to_string(),
                ),
                (
                    oci::REVISION_ANNOTATION.to_string(),
                    "main@sha1:1".to_string(),
                ),
            ])),
        };
        let old = OCIRepositoryStatus {
            artifact: Some(artifact("sha256:a")),
            ..Default::default()
        };
        let new = OCIRepositoryStatus {
            artifact: Some(artifact("sha256:b")),
            ..Default::default()
        };
        let ev = notify(&obj, &old, &[], &new, &[]).unwrap();
        assert_eq!(ev.reason, "NewArtifact");
        assert_eq!(
            ev.message,
            "stored artifact with revision 'v1@sha256:x' from 'oci://r/app', origin source 'https://git/x', origin revision 'main@sha1:1'"
        );
        assert!(notify(&obj, &new, &[], &new, &[]).is_none());
        let failing = vec![cond::new_condition(
            cond::FETCH_FAILED,
            cond::TRUE,
            "OCIArtifactPullFailed",
            "x",
            None,
            crate::pipeline::now(),
        )];
        assert_eq!(
            notify(&obj, &new, &failing, &new, &[]).unwrap().reason,
            "Succeeded"
        );
    }
}
