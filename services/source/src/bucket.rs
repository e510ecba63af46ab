//! The Bucket reconciler.
//!
//! Upstream's pipeline: storage (garbage collection, the advertised artifact still there with
//! its digest), source (credentials, the provider client, the bucket's existence, the root
//! `.sourceignore` object and `spec.ignore`, then every object key under `prefix` that the rules
//! keep indexed with its etag; the revision is `sha256:` of the sorted `"<key> <etag>\n"`
//! lines; only when it differs from the stored artifact are the objects downloaded, concurrently,
//! into a temporary directory) and artifact (the directory archived without a filter as
//! `<hex>.tar.gz` with the `latest.tar.gz` link).
//!
//! Providers go through `object_store`: `generic` and `aws` over the S3 API (path-style requests
//! to the endpoint; `accesskey`/`secretkey`), `azure` (Blob, `accountKey`, `sasKey` or a client
//! secret) and `gcp` (`serviceaccount` JSON; the `STORAGE_EMULATOR_HOST` override the Go client
//! honours). [`run_pipeline`] does a reconcile against a [`SecretLookup`] without an API server;
//! [`BucketReconciler`] wires it to Kubernetes, events and the artifact event stream.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ferroflux_api::bucket::{Bucket, BucketProvider, BucketStatus};
use ferroflux_api::conditions::{self as cond, reason, source_reason};
use ferroflux_api::{Artifact, FluxObject};
use ferroflux_runtime::events::{EventRecorder, Severity};
use ferroflux_runtime::{Outcome, ReconcileContext, ReconcileError, Reconciler};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{Resource, ResourceExt};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use sha2::Digest as _;
use tokio::io::AsyncWriteExt;

use crate::artifact_events::ArtifactEventLog;
pub use crate::helm_http::SecretLookup;
use crate::oci::ignore::{self, Matcher};
use crate::pipeline::{
    self, Conds, ErrorKind, RunRecord, StepError, storage_detail, summarize, tempdir_in,
};
pub use crate::pipeline::{PendingEvent, PipelineResult};
use crate::storage::{ArchiveLimits, Storage};

/// Kind name used in storage paths and events.
pub const KIND: &str = "Bucket";
/// The ignore file read from the bucket root.
pub const IGNORE_FILE: &str = ".sourceignore";
/// Upstream's `maxConcurrentBucketFetches`.
pub const MAX_CONCURRENT_FETCHES: usize = 100;

/// Settings shared by every reconcile.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// Limits of the archived artifact (`--artifact-max-file-size`).
    pub limits: ArchiveLimits,
    /// `STORAGE_EMULATOR_HOST`: the Google Cloud Storage endpoint (an emulator), reached
    /// without authentication as Go's storage client does.
    pub gcs_emulator_host: Option<String>,
    /// The `ObjectLevelWorkloadIdentity` feature gate.
    pub object_level_workload_identity: bool,
}

/// Everything a reconcile produced.
#[derive(Clone, Debug)]
pub struct PipelineOutput {
    pub status: BucketStatus,
    pub result: PipelineResult,
    pub events: Vec<PendingEvent>,
    /// Set when a new artifact was written.
    pub new_artifact: Option<Artifact>,
}

/// The object index: key → etag, kept sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EtagIndex(pub BTreeMap<String, String>);

impl EtagIndex {
    /// `sha256:<hex>` of the `"<key> <etag>\n"` lines in key order (upstream's
    /// `index.Digester`).
    pub fn revision(&self) -> String {
        let mut h = sha2::Sha256::new();
        for (k, v) in &self.0 {
            h.update(k.as_bytes());
            h.update(b" ");
            h.update(v.as_bytes());
            h.update(b"\n");
        }
        format!("sha256:{}", hex::encode(h.finalize()))
    }
}

/// A provider client for one bucket: object_store (S3, Azure) or the GCS JSON API.
enum Client {
    Store {
        store: Arc<dyn ObjectStore>,
        provider: BucketProvider,
    },
    Gcs(crate::bucket_gcs::Gcs),
}

/// Whether a provider error means "no such bucket / container".
fn bucket_missing(e: &object_store::Error) -> bool {
    if matches!(e, object_store::Error::NotFound { .. }) {
        return true;
    }
    let text = error_text(e);
    [
        "NoSuchBucket",
        "ContainerNotFound",
        "The specified bucket does not exist",
    ]
    .iter()
    .any(|n| text.contains(n))
}

/// An object_store error with its causes, on one line.
fn error_text(e: &object_store::Error) -> String {
    pipeline::one_line(&ferroflux_oci::client::error_chain(e))
}

/// The provider's etag as upstream's clients report it: minio-go (generic, aws) without the
/// quotes, the Azure SDK's `ETag` printed with `%x` (hex of its text), GCS as given.
fn provider_etag(provider: BucketProvider, raw: Option<&str>) -> String {
    let t = raw.unwrap_or_default().trim_matches('"');
    match provider {
        BucketProvider::Azure => hex::encode(t.as_bytes()),
        _ => t.to_string(),
    }
}

/// A key joined under `root` without leaving it (`..` stops at the root, as SecureJoin).
fn secure_join(root: &Path, key: &str) -> PathBuf {
    let mut parts: Vec<&str> = Vec::new();
    for p in key.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(parts);
    out
}

fn secret_str(data: &BTreeMap<String, Vec<u8>>, key: &str) -> Option<String> {
    data.get(key)
        .map(|v| String::from_utf8_lossy(v).trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Upstream's Azure account name rule, plus IP-style endpoints (`http://127.0.0.1:10000/<account>`,
/// as Azure SDKs read them and the Azurite emulator serves them).
fn azure_account(endpoint: &str) -> Result<String, String> {
    let u = reqwest::Url::parse(endpoint)
        .map_err(|e| format!("failed to extract account name from endpoint: {e}"))?;
    let host = u.host_str().unwrap_or_default().to_string();
    let ip_style = host.parse::<std::net::IpAddr>().is_ok()
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok()
        || host == "localhost";
    if ip_style {
        return u
            .path_segments()
            .and_then(|mut s| s.next())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .ok_or_else(|| {
                format!(
                    "failed to extract account name from endpoint: expected the account name as the first path segment of '{endpoint}'"
                )
            });
    }
    let parts: Vec<&str> = host.split('.').collect();
    if parts.len() <= 2 {
        return Err(format!(
            "failed to extract account name from endpoint: expected '{host}' to be a subdomain"
        ));
    }
    Ok(parts[0].to_string())
}

/// What the client needs besides the spec.
#[derive(Default)]
struct Creds {
    secret: Option<(String, BTreeMap<String, Vec<u8>>)>,
    proxy: Option<String>,
    ca: Option<Vec<u8>>,
}

fn client_options(
    obj: &Bucket,
    creds: &Creds,
    http: bool,
) -> Result<object_store::ClientOptions, StepError> {
    let mut o = object_store::ClientOptions::new()
        .with_allow_http(http)
        .with_timeout(obj.effective_timeout())
        .with_connect_timeout(obj.effective_timeout().min(Duration::from_secs(30)));
    if let Some(p) = &creds.proxy {
        o = o.with_proxy_url(p.clone());
    }
    if let Some(ca) = &creds.ca {
        let certs = object_store::Certificate::from_pem_bundle(ca).map_err(|e| {
            StepError::generic(
                source_reason::AUTHENTICATION_FAILED,
                format!("failed to get TLS config: failed to parse CA certificate: {e}"),
            )
        })?;
        for c in certs {
            o = o.with_root_certificate(c);
        }
    }
    Ok(o)
}

fn auth_failed(message: String) -> StepError {
    StepError::generic(source_reason::AUTHENTICATION_FAILED, message)
}

/// A client, or what a GCS client needs to connect (it fetches a token first).
enum ClientPlan {
    Ready(Client),
    Gcs {
        http: reqwest::Client,
        bucket: String,
        emulator: Option<String>,
        service_account: Option<Vec<u8>>,
    },
}

/// Upstream's `createBucketProvider`: object_store for S3 and Azure, the JSON API for GCS.
fn build_client(obj: &Bucket, creds: &Creds, settings: &Settings) -> Result<ClientPlan, StepError> {
    let provider = obj.spec.provider.unwrap_or_default();
    let bucket = obj.spec.bucket_name.clone().unwrap_or_default();
    let endpoint = obj.spec.endpoint.clone().unwrap_or_default();
    let insecure = obj.spec.insecure.unwrap_or(false);
    let secret_name = creds.secret.as_ref().map(|(n, _)| n.clone());
    let data = creds.secret.as_ref().map(|(_, d)| d);
    let store: Arc<dyn ObjectStore> = match provider {
        BucketProvider::Generic | BucketProvider::Aws => {
            if let (Some(name), Some(d)) = (&secret_name, data)
                && (!d.contains_key("accesskey") || !d.contains_key("secretkey"))
            {
                return Err(auth_failed(format!(
                    "invalid '{name}' secret data: required fields 'accesskey' and 'secretkey'"
                )));
            }
            if obj.spec.sts.is_some() {
                return Err(auth_failed(
                    "STS credentials are not supported by this source-controller".to_string(),
                ));
            }
            if endpoint.contains("://") {
                return Err(auth_failed(
                    "Endpoint url cannot have fully qualified paths.".to_string(),
                ));
            }
            let scheme = if insecure { "http" } else { "https" };
            // Without a secret, `aws` takes the AWS credential chain of the environment
            // (keys, web identity, instance roles).
            let base = if data.is_none() && provider == BucketProvider::Aws {
                object_store::aws::AmazonS3Builder::from_env()
            } else {
                object_store::aws::AmazonS3Builder::new()
            };
            let mut b = base
                .with_bucket_name(&bucket)
                .with_region(
                    obj.spec
                        .region
                        .clone()
                        .unwrap_or_else(|| "us-east-1".into()),
                )
                .with_client_options(client_options(obj, creds, insecure)?)
                .with_retry(no_retries());
            // Amazon's own endpoints: let the client address the regional, virtual-hosted
            // endpoint; anything else is an S3-compatible server reached path-style.
            if !endpoint.ends_with("amazonaws.com") {
                b = b.with_endpoint(format!("{scheme}://{endpoint}"));
            }
            match data {
                Some(d) => {
                    b = b
                        .with_access_key_id(secret_str(d, "accesskey").unwrap_or_default())
                        .with_secret_access_key(secret_str(d, "secretkey").unwrap_or_default());
                }
                None if provider == BucketProvider::Aws => {}
                None => b = b.with_skip_signature(true),
            }
            Arc::new(b.build().map_err(|e| auth_failed(error_text(&e)))?)
        }
        BucketProvider::Azure => {
            if let (Some(name), Some(d)) = (&secret_name, data) {
                let has = |k: &str| d.contains_key(k);
                let valid = (has("tenantId")
                    && has("clientId")
                    && (has("clientSecret") || has("clientCertificate")))
                    || has("clientId")
                    || has("accountKey")
                    || has("sasKey")
                    || has("authorityHost");
                if !valid {
                    return Err(auth_failed(format!(
                        "invalid '{name}' secret data: requires a 'clientId' or 'accountKey' field, a combination of 'tenantId', 'clientId' and 'clientSecret', or 'tenantId', 'clientId' and 'clientCertificate'"
                    )));
                }
            }
            let account = azure_account(&endpoint).map_err(auth_failed)?;
            let http = endpoint.starts_with("http://");
            let mut b = object_store::azure::MicrosoftAzureBuilder::new()
                .with_account(&account)
                .with_container_name(&bucket)
                .with_endpoint(endpoint.trim_end_matches('/').to_string())
                .with_client_options(client_options(obj, creds, http)?)
                .with_retry(no_retries());
            match data {
                Some(d) if d.contains_key("accountKey") => {
                    b = b.with_access_key(secret_str(d, "accountKey").unwrap_or_default());
                }
                Some(d) if d.contains_key("sasKey") => {
                    let sas = secret_str(d, "sasKey").unwrap_or_default();
                    let query = sas.rsplit_once('?').map(|(_, q)| q).unwrap_or(&sas);
                    let pairs: Vec<(String, String)> =
                        reqwest::Url::parse(&format!("http://sas/?{query}"))
                            .map(|u| {
                                u.query_pairs()
                                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                                    .collect()
                            })
                            .unwrap_or_default();
                    b = b.with_sas_authorization(pairs);
                }
                Some(d) if d.contains_key("clientSecret") => {
                    b = b.with_client_secret_authorization(
                        secret_str(d, "clientId").unwrap_or_default(),
                        secret_str(d, "clientSecret").unwrap_or_default(),
                        secret_str(d, "tenantId").unwrap_or_default(),
                    );
                    if let Some(h) = secret_str(d, "authorityHost") {
                        b = b.with_authority_host(h);
                    }
                }
                Some(_) => {
                    return Err(auth_failed(format!(
                        "failed to create token credential from '{}' Secret: client certificates and managed identities are not supported by this source-controller",
                        secret_name.unwrap_or_default()
                    )));
                }
                None => b = b.with_skip_signature(true),
            }
            Arc::new(b.build().map_err(|e| auth_failed(error_text(&e)))?)
        }
        BucketProvider::Gcp => {
            if let (Some(name), Some(d)) = (&secret_name, data)
                && !d.contains_key("serviceaccount")
            {
                return Err(auth_failed(format!(
                    "invalid '{name}' secret data: required fields 'serviceaccount'"
                )));
            }
            let http = crate::bucket_gcs::http_client(
                obj.effective_timeout(),
                creds.proxy.as_deref(),
                creds.ca.as_deref(),
            )
            .map_err(auth_failed)?;
            return Ok(ClientPlan::Gcs {
                http,
                bucket,
                emulator: settings.gcs_emulator_host.clone(),
                service_account: data.and_then(|d| d.get("serviceaccount").cloned()),
            });
        }
    };
    Ok(ClientPlan::Ready(Client::Store { store, provider }))
}

/// Requests are not retried within a reconcile (the reconcile is retried with backoff).
fn no_retries() -> object_store::RetryConfig {
    object_store::RetryConfig {
        max_retries: 0,
        retry_timeout: Duration::from_secs(1),
        ..Default::default()
    }
}

impl Client {
    /// Upstream's `BucketExists`: Ok(false) when the provider says there is no such bucket.
    async fn exists(&self, prefix: Option<&ObjectPath>) -> Result<bool, String> {
        let store = match self {
            Client::Gcs(g) => return g.exists().await,
            Client::Store { store, .. } => store,
        };
        let mut s = store.list(prefix);
        match s.next().await {
            None | Some(Ok(_)) => Ok(true),
            Some(Err(e)) if bucket_missing(&e) => Ok(false),
            Some(Err(e)) => Err(error_text(&e)),
        }
    }

    /// Every object under `prefix` with its etag. object_store lists a "directory" marker
    /// (`dir/`, which upstream skips) as `dir`: empty objects that are not there under their
    /// listed name are such markers and are left out.
    async fn list(&self, prefix: &str) -> Result<Vec<(String, String)>, String> {
        let (store, provider) = match self {
            Client::Gcs(g) => return g.list(prefix).await,
            Client::Store { store, provider } => (store, *provider),
        };
        let p = (!prefix.is_empty()).then(|| ObjectPath::from(prefix));
        let listed: Vec<object_store::ObjectMeta> = store
            .list(p.as_ref())
            .try_collect()
            .await
            .map_err(|e| error_text(&e))?;
        let mut out = Vec::with_capacity(listed.len());
        for m in listed {
            if m.size == 0 {
                match store.head(&m.location).await {
                    Ok(_) => {}
                    Err(object_store::Error::NotFound { .. }) => continue,
                    Err(e) => return Err(error_text(&e)),
                }
            }
            out.push((
                m.location.to_string(),
                provider_etag(provider, m.e_tag.as_deref()),
            ));
        }
        Ok(out)
    }

    /// Downloads `key` into `dest`; `Ok(None)` when it does not exist; else its etag.
    async fn fetch(&self, key: &str, dest: &Path) -> Result<Option<String>, String> {
        let (store, provider) = match self {
            Client::Gcs(g) => return g.fetch(key, dest).await,
            Client::Store { store, provider } => (store, *provider),
        };
        let r = match store.get(&ObjectPath::from(key)).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(error_text(&e)),
        };
        let etag = provider_etag(provider, r.meta.e_tag.as_deref());
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| e.to_string())?;
        }
        let mut file = tokio::fs::File::create(dest)
            .await
            .map_err(|e| e.to_string())?;
        let mut stream = r.into_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| error_text(&e))?;
            file.write_all(&chunk).await.map_err(|e| e.to_string())?;
        }
        file.flush().await.map_err(|e| e.to_string())?;
        Ok(Some(etag))
    }
}

/// Object keys the index leaves out: "directories", the ignore file, ignored paths.
fn indexed(key: &str, matcher: &Matcher) -> bool {
    if key.ends_with('/') || key == IGNORE_FILE {
        return false;
    }
    let parts: Vec<&str> = key.split('/').collect();
    !matcher.is_excluded(&parts, false)
}

struct Run<'a, L: SecretLookup> {
    obj: &'a Bucket,
    storage: &'a Storage,
    lookup: &'a L,
    settings: &'a Settings,
    status: BucketStatus,
    conds: Vec<Condition>,
    events: Vec<PendingEvent>,
    new_artifact: Option<Artifact>,
    index: EtagIndex,
    dir: PathBuf,
}

impl<L: SecretLookup> RunRecord for Run<'_, L> {
    fn record(&mut self) -> (&mut Vec<Condition>, &mut Vec<PendingEvent>, Option<i64>) {
        (
            &mut self.conds,
            &mut self.events,
            self.obj.meta().generation,
        )
    }
}

impl<L: SecretLookup> Run<'_, L> {
    fn namespace(&self) -> String {
        self.obj.namespace().unwrap_or_default()
    }

    fn name(&self) -> String {
        self.obj.spec.bucket_name.clone().unwrap_or_default()
    }

    fn stored_revision(&self) -> Option<String> {
        self.status
            .artifact
            .as_ref()
            .map(|a| a.revision.clone())
            .filter(|r| !r.is_empty())
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

    async fn secret(&self, name: &str) -> Result<BTreeMap<String, Vec<u8>>, String> {
        match self.lookup.secret(&self.namespace(), name).await {
            Ok(Some(d)) => Ok(d),
            Ok(None) => Err(format!("secrets \"{name}\" not found")),
            Err(e) => Err(e),
        }
    }

    /// Upstream's `setupCredentials`.
    async fn credentials(&self) -> Result<Creds, String> {
        let ns = self.namespace();
        let mut creds = Creds::default();
        if let Some(r) = &self.obj.spec.secret_ref {
            let d = self
                .secret(&r.name)
                .await
                .map_err(|e| format!("failed to get secret '{ns}/{}': {e}", r.name))?;
            creds.secret = Some((r.name.clone(), d));
        }
        if let Some(r) = self
            .obj
            .spec
            .sts
            .as_ref()
            .and_then(|s| s.secret_ref.as_ref())
        {
            self.secret(&r.name)
                .await
                .map_err(|e| format!("failed to get STS secret '{ns}/{}': {e}", r.name))?;
        }
        if let Some(r) = &self.obj.spec.proxy_secret_ref {
            let d = self
                .secret(&r.name)
                .await
                .map_err(|e| format!("failed to get proxy URL: {e}"))?;
            let opts = crate::git::auth::ProxyOptions::from_secret(&d)
                .map_err(|e| format!("failed to get proxy URL: {e}"))?;
            let mut url = reqwest::Url::parse(&opts.address).map_err(|e| {
                format!(
                    "failed to get proxy URL: invalid proxy address in secret '{ns}/{}': {e}",
                    r.name
                )
            })?;
            if let Some(u) = &opts.username {
                let bad = |_| {
                    format!(
                        "failed to get proxy URL: invalid proxy address in secret '{ns}/{}'",
                        r.name
                    )
                };
                url.set_username(u).map_err(bad)?;
                url.set_password(opts.password.as_deref()).map_err(bad)?;
            }
            creds.proxy = Some(url.to_string());
        }
        if let Some(r) = &self.obj.spec.cert_secret_ref {
            let d = self
                .secret(&r.name)
                .await
                .map_err(|e| format!("failed to get TLS config: {e}"))?;
            if d.contains_key("tls.crt") || d.contains_key("tls.key") {
                return Err(format!(
                    "failed to get TLS config: secret '{ns}/{}': client certificates are not supported for buckets by this source-controller",
                    r.name
                ));
            }
            let ca = d.get("ca.crt").cloned().ok_or_else(|| {
                format!(
                    "failed to get TLS config: secret '{ns}/{}' must contain either 'ca.crt' or both 'tls.crt' and 'tls.key'",
                    r.name
                )
            })?;
            creds.ca = Some(ca);
        }
        Ok(creds)
    }

    async fn reconcile_source(&mut self) -> Result<(), StepError> {
        let provider = self.obj.spec.provider.unwrap_or_default();
        if provider != BucketProvider::Generic && self.obj.spec.service_account_name.is_some() {
            let e = if !self.settings.object_level_workload_identity {
                StepError::stalling(
                    reason::FEATURE_GATE_DISABLED,
                    "to use spec.serviceAccountName for provider authentication please enable the ObjectLevelWorkloadIdentity feature gate in the controller",
                )
            } else {
                auth_failed(
                    "workload identity (spec.serviceAccountName) is not supported by this source-controller"
                        .to_string(),
                )
            };
            return Err(self.fetch_failed(e));
        }
        let creds = match self.credentials().await {
            Ok(c) => c,
            Err(e) => return Err(self.fetch_failed(auth_failed(e))),
        };
        let client = match build_client(self.obj, &creds, self.settings) {
            Ok(ClientPlan::Ready(c)) => c,
            Ok(ClientPlan::Gcs {
                http,
                bucket,
                emulator,
                service_account,
            }) => {
                let connect = crate::bucket_gcs::Gcs::connect(
                    http,
                    &bucket,
                    emulator.as_deref(),
                    service_account.as_deref(),
                );
                match tokio::time::timeout(self.obj.effective_timeout(), connect).await {
                    Ok(Ok(g)) => Client::Gcs(g),
                    Ok(Err(e)) => return Err(self.fetch_failed(auth_failed(e))),
                    Err(_) => {
                        let e = auth_failed(
                            "failed to get a GCS token: context deadline exceeded".into(),
                        );
                        return Err(self.fetch_failed(e));
                    }
                }
            }
            Err(e) => return Err(self.fetch_failed(e)),
        };
        let timeout = self.obj.effective_timeout();
        let changed = match tokio::time::timeout(timeout, self.sync(&client)).await {
            Ok(Ok(c)) => c,
            Ok(Err(msg)) => {
                let e = StepError::generic(source_reason::BUCKET_OPERATION_FAILED, msg);
                return Err(self.fetch_failed(e));
            }
            Err(_) => {
                let e = StepError::generic(
                    source_reason::BUCKET_OPERATION_FAILED,
                    format!(
                        "fetch from bucket '{}' failed: context deadline exceeded (timeout {})",
                        self.name(),
                        ferroflux_api::duration::format_go(timeout)
                    ),
                );
                return Err(self.fetch_failed(e));
            }
        };
        if changed {
            let message = format!("new upstream revision '{}'", self.index.revision());
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
        self.c().delete(cond::FETCH_FAILED);
        Ok(())
    }

    /// Upstream's `syncBucketArtifacts`: the index, then the objects when it changed.
    async fn sync(&mut self, client: &Client) -> Result<bool, String> {
        let bucket = self.name();
        let prefix = self.obj.spec.prefix.clone().unwrap_or_default();
        let probe = (!prefix.is_empty()).then(|| ObjectPath::from(prefix.as_str()));
        match client.exists(probe.as_ref()).await {
            Ok(true) => {}
            Ok(false) => return Err(format!("bucket '{bucket}' not found")),
            Err(e) => {
                return Err(format!(
                    "failed to confirm existence of '{bucket}' bucket: {e}"
                ));
            }
        }
        let ignore_path = self.dir.join(IGNORE_FILE);
        let mut patterns = match client.fetch(IGNORE_FILE, &ignore_path).await {
            Ok(Some(_)) => {
                let text = tokio::fs::read_to_string(&ignore_path)
                    .await
                    .map_err(|e| e.to_string())?;
                ignore::read_patterns(&text, &[])
            }
            Ok(None) => Vec::new(),
            Err(e) => {
                return Err(format!(
                    "failed to get Etag for '{IGNORE_FILE}' object: {e}"
                ));
            }
        };
        if let Some(extra) = &self.obj.spec.ignore {
            patterns.extend(ignore::read_patterns(extra, &[]));
        }
        let matcher = Matcher::new(patterns);
        let listed = client.list(&prefix).await.map_err(|e| {
            format!(
                "indexation of objects from bucket '{bucket}' failed: listing objects from bucket '{bucket}' failed: {e}"
            )
        })?;
        self.index = EtagIndex(
            listed
                .into_iter()
                .filter(|(k, _)| indexed(k, &matcher))
                .collect(),
        );
        let changed = match self.stored_revision() {
            Some(rev) => rev != self.index.revision(),
            None => true,
        };
        if !changed {
            return Ok(false);
        }
        self.fetch_all(client).await?;
        Ok(true)
    }

    /// Upstream's `fetchIndexFiles`: every indexed object, concurrently; an object gone since
    /// the listing leaves the index, a changed etag replaces the listed one.
    async fn fetch_all(&mut self, client: &Client) -> Result<(), String> {
        let bucket = self.name();
        let dir = self.dir.clone();
        let keys: Vec<String> = self.index.0.keys().cloned().collect();
        let results: Vec<(String, Result<Option<String>, String>)> = futures::stream::iter(keys)
            .map(|k| {
                let dest = secure_join(&dir, &k);
                async move {
                    let r = client.fetch(&k, &dest).await;
                    (k, r)
                }
            })
            .buffer_unordered(MAX_CONCURRENT_FETCHES)
            .collect()
            .await;
        for (k, r) in results {
            match r {
                Ok(Some(etag)) => {
                    self.index.0.insert(k, etag);
                }
                Ok(None) => {
                    self.index.0.remove(&k);
                }
                Err(e) => {
                    return Err(format!(
                        "fetch from bucket '{bucket}' failed: failed to get '{k}' object: {e}"
                    ));
                }
            }
        }
        Ok(())
    }

    async fn reconcile_artifact(&mut self) -> Result<(), StepError> {
        let revision = self.index.revision();
        let result = self.write_artifact(&revision).await;
        if self.stored_revision().as_deref() == Some(revision.as_str()) {
            self.c().delete(cond::ARTIFACT_OUTDATED);
            self.c().mark_true(
                cond::ARTIFACT_IN_STORAGE,
                reason::SUCCEEDED,
                &format!("stored artifact: revision '{revision}'"),
            );
        }
        result
    }

    async fn write_artifact(&mut self, revision: &str) -> Result<(), StepError> {
        if self.stored_revision().as_deref() == Some(revision) {
            self.event(
                Severity::Trace,
                source_reason::ARTIFACT_UP_TO_DATE,
                format!("artifact up-to-date with remote revision: '{revision}'"),
            );
            return Ok(());
        }
        let hex = revision.trim_start_matches("sha256:").to_string();
        let mut artifact = self.storage.new_artifact_for(
            KIND,
            &self.namespace(),
            &self.obj.name_any(),
            revision,
            &format!("{hex}.tar.gz"),
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
        let no_filter = |_: &[&str], _: bool| false;
        let written = self
            .storage
            .archive(&mut artifact, &self.dir, &no_filter, self.settings.limits)
            .map_err(|e| {
                format!(
                    "unable to archive artifact to storage: {}",
                    storage_detail(&e)
                )
            });
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
        self.status.artifact = Some(artifact.clone());
        self.status.observed_ignore = self.obj.spec.ignore.clone();
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

/// Upstream's notify: NewArtifact on a new digest, Succeeded on recovery from a failure.
fn notify(
    obj: &Bucket,
    files: usize,
    old: &BucketStatus,
    old_conds: &[Condition],
    new: &BucketStatus,
    new_conds: &[Condition],
) -> Option<PendingEvent> {
    let artifact = new.artifact.as_ref()?;
    let message = format!(
        "stored artifact with {files} fetched files from '{}' bucket",
        obj.spec.bucket_name.as_deref().unwrap_or_default()
    );
    pipeline::stored_artifact_event(
        old.artifact.as_ref(),
        old_conds,
        artifact,
        new_conds,
        message,
    )
}

/// Runs one reconcile of `obj` (not being deleted, not suspended); `scratch_root` holds the
/// temporary download directory.
pub async fn run_pipeline<L: SecretLookup>(
    obj: &Bucket,
    storage: &Storage,
    lookup: &L,
    settings: &Settings,
    scratch_root: &Path,
) -> PipelineOutput {
    let old_status = obj.status.clone().unwrap_or_default();
    let old_conds = old_status.conditions.clone().unwrap_or_default();
    let mut status = old_status.clone();
    let conds = status.conditions.take().unwrap_or_default();
    let generation = obj.meta().generation;
    let dir = tempdir_in(scratch_root, "bucket");
    let mut run = Run {
        obj,
        storage,
        lookup,
        settings,
        status,
        conds,
        events: Vec::new(),
        new_artifact: None,
        index: EtagIndex::default(),
        dir: dir.as_ref().cloned().unwrap_or_default(),
    };
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
    let result = match &dir {
        Err(e) => Err(StepError::generic(
            source_reason::DIRECTORY_CREATION_FAILED,
            format!("failed to create temporary working directory: {e}"),
        )),
        Ok(_) => {
            async {
                run.reconcile_storage().await?;
                run.reconcile_source().await?;
                run.reconcile_artifact().await
            }
            .await
        }
    };
    if let Ok(d) = &dir {
        let _ = std::fs::remove_dir_all(d);
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
                _ => PipelineResult::Failed {
                    reason: e.reason,
                    message: e.message,
                },
            }
        }
    };
    let files = run.index.0.len();
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
        && let Some(ev) = notify(obj, files, &old_status, &old_conds, &status, &conds)
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

/// The Bucket reconciler run by the driver.
#[derive(Clone)]
pub struct BucketReconciler {
    pub storage: Storage,
    pub events: ArtifactEventLog,
    pub recorder: EventRecorder,
    pub settings: Settings,
    pub scratch_root: PathBuf,
}

impl Reconciler<Bucket> for BucketReconciler {
    async fn reconcile(
        &self,
        obj: Arc<Bucket>,
        ctx: ReconcileContext,
    ) -> Result<Outcome, ReconcileError> {
        let lookup = crate::helmrepository::KubeLookup {
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
        pipeline::report(
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
        pipeline::outcome(out.result)
    }

    async fn cleanup(
        &self,
        obj: Arc<Bucket>,
        _ctx: ReconcileContext,
    ) -> Result<(), ReconcileError> {
        pipeline::collect_garbage(&self.storage, &self.recorder, KIND, obj.as_ref()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revision_is_the_digest_of_the_sorted_index() {
        let idx = EtagIndex(BTreeMap::from([
            ("b.yaml".to_string(), "e2".to_string()),
            ("a/x.yaml".to_string(), "e1".to_string()),
        ]));
        let want = hex::encode(sha2::Sha256::digest(b"a/x.yaml e1\nb.yaml e2\n"));
        assert_eq!(idx.revision(), format!("sha256:{want}"));
        assert_eq!(
            EtagIndex::default().revision(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn keys_stay_under_the_root() {
        let root = Path::new("/tmp/b");
        assert_eq!(secure_join(root, "a/b.yaml"), Path::new("/tmp/b/a/b.yaml"));
        assert_eq!(
            secure_join(root, "../../etc/passwd"),
            Path::new("/tmp/b/etc/passwd")
        );
        assert_eq!(secure_join(root, "/x//./y"), Path::new("/tmp/b/x/y"));
    }

    #[test]
    fn azure_accounts_from_endpoints() {
        assert_eq!(
            azure_account("https://acct.blob.core.windows.net").unwrap(),
            "acct"
        );
        assert_eq!(
            azure_account("http://127.0.0.1:10000/devstoreaccount1").unwrap(),
            "devstoreaccount1"
        );
        assert!(azure_account("https://example.com").is_err());
        assert_eq!(
            provider_etag(BucketProvider::Azure, Some("0x8D")),
            "30783844"
        );
        assert_eq!(
            provider_etag(BucketProvider::Generic, Some("\"abc\"")),
            "abc"
        );
    }
}
