//! The HelmRepository pipeline against real chart repositories (charts packaged and indexed by
//! `helm`, served on 127.0.0.1 over HTTP and HTTPS, with and without basic auth; no API
//! server): revisions, the stored JSON index, the no-op path, credentials and TLS, and the bad
//! cases keeping the last artifact.

use std::collections::BTreeMap;
use std::time::Duration;

use ferroflux_api::HelmRepository;
use ferroflux_api::conditions as cond;
use ferroflux_helm::package::index::IndexFile;
use serde_json::json;
use source_controller::helmrepository::{PipelineOutput, PipelineResult, Settings, run_pipeline};
use source_controller::storage::{DigestAlgo, Storage};

use crate::helm_support::{ChartRepo, create_chart, helm_repository, serve_http, serve_https};
use crate::support::{FakeLookup, pki};

impl source_controller::helm_http::SecretLookup for FakeLookup {
    async fn secret(
        &self,
        _namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, Vec<u8>>>, String> {
        Ok(self.secrets.get(name).cloned())
    }
}

pub struct Env {
    pub storage: Storage,
    _dir: tempfile::TempDir,
    pub settings: Settings,
}

impl Env {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::new(
            dir.path(),
            "localhost:9090",
            Duration::from_secs(60),
            2,
            DigestAlgo::Sha256,
        )
        .unwrap();
        Self {
            storage,
            _dir: dir,
            settings: Settings::default(),
        }
    }

    pub async fn run(&self, obj: &HelmRepository, lookup: &FakeLookup) -> PipelineOutput {
        run_pipeline(obj, &self.storage, lookup, &self.settings).await
    }

    pub async fn ready(
        &self,
        obj: &HelmRepository,
        lookup: &FakeLookup,
    ) -> (HelmRepository, PipelineOutput) {
        let out = self.run(obj, lookup).await;
        let ready = cond::get(out.status.conditions.as_deref().unwrap(), cond::READY).unwrap();
        assert_eq!(
            (out.result.clone(), ready.status.as_str()),
            (PipelineResult::Success, "True"),
            "{}",
            ready.message
        );
        let mut next = obj.clone();
        next.status = Some(out.status.clone());
        (next, out)
    }

    async fn fails(
        &self,
        obj: &HelmRepository,
        lookup: &FakeLookup,
        reason: &str,
        needle: &str,
    ) -> PipelineOutput {
        let out = self.run(obj, lookup).await;
        let ready = cond::get(out.status.conditions.as_deref().unwrap(), cond::READY).unwrap();
        assert_eq!(ready.status, "False", "{}", ready.message);
        assert_eq!(ready.reason, reason, "{}", ready.message);
        assert!(
            ready.message.contains(needle),
            "{:?} lacks {needle:?}",
            ready.message
        );
        assert!(!ready.message.contains('\n'), "one line: {}", ready.message);
        let fetch = cond::get(
            out.status.conditions.as_deref().unwrap(),
            cond::FETCH_FAILED,
        )
        .expect("FetchFailed");
        assert_eq!(fetch.reason, reason);
        if let Some(old) = obj.status.as_ref().and_then(|s| s.artifact.as_ref()) {
            let kept = out.status.artifact.as_ref().expect("artifact kept");
            assert_eq!(kept.digest, old.digest);
            assert!(self.storage.artifact_exist(kept));
            self.storage.verify_artifact(kept).unwrap();
        }
        assert!(out.new_artifact.is_none());
        out
    }
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// A repository with `podinfo` 1.0.0 and 1.1.0.
fn chart_repo() -> ChartRepo {
    let repo = ChartRepo::new();
    let src = create_chart(repo.work.path(), "podinfo", &[]);
    repo.package(&src, "1.0.0");
    repo.package(&src, "1.1.0");
    repo.index(None);
    repo
}

#[tokio::test]
async fn index_revision_artifact_and_no_op() {
    let repo = chart_repo();
    let server = serve_http(repo.dir.path(), None).await;
    let env = Env::new();
    let lookup = FakeLookup::default();
    let obj = helm_repository(
        "charts",
        1,
        json!({"url": server.url("/"), "interval": "5m"}),
    );
    let (obj, out) = env.ready(&obj, &lookup).await;
    let raw = std::fs::read(repo.dir.path().join("index.yaml")).unwrap();
    let hex = sha256_hex(&raw);
    let a = out.status.artifact.clone().unwrap();
    assert_eq!(a.revision, format!("sha256:{hex}"));
    assert_eq!(
        a.path,
        format!("helmrepository/default/charts/index-{hex}.yaml")
    );
    // Stored as Go's indented JSON: digest of the stored bytes differs from the revision.
    let stored = std::fs::read(env.storage.local_path(&a.path).unwrap()).unwrap();
    assert!(stored.starts_with(b"{\n  \"apiVersion\": \"v1\""));
    assert_eq!(a.digest, format!("sha256:{}", sha256_hex(&stored)));
    assert_ne!(a.digest, a.revision);
    let idx = IndexFile::from_bytes(&stored).unwrap();
    let versions: Vec<&str> = idx.entries["podinfo"]
        .iter()
        .flatten()
        .map(|v| v.version.as_str())
        .collect();
    assert_eq!(versions, ["1.1.0", "1.0.0"]);
    assert_eq!(
        out.status.url.as_deref(),
        Some("http://localhost:9090/helmrepository/default/charts/index.yaml")
    );
    let conds = out.status.conditions.as_deref().unwrap();
    let ready = cond::get(conds, cond::READY).unwrap();
    assert_eq!(
        ready.message,
        format!("stored artifact: revision 'sha256:{hex}'")
    );
    assert_eq!(out.status.observed_generation, Some(1));
    let ev = out
        .events
        .iter()
        .find(|e| e.reason == "NewArtifact")
        .unwrap();
    assert!(
        ev.message.starts_with("stored fetched index of size ")
            && ev.message.ends_with(&format!("from '{}'", server.url("/"))),
        "{}",
        ev.message
    );
    assert!(out.new_artifact.is_some());

    // Unchanged index: no new artifact, the up-to-date trace.
    let (obj, out) = env.ready(&obj, &lookup).await;
    assert!(out.new_artifact.is_none());
    assert_eq!(out.status.artifact, obj.status.as_ref().unwrap().artifact);
    assert!(out.events.iter().any(|e| e.reason == "ArtifactUpToDate"));
    assert!(!out.events.iter().any(|e| e.reason == "NewArtifact"));

    // A new chart version: a new revision and artifact.
    let src = repo.work.path().join("podinfo");
    repo.package(&src, "2.0.0");
    let raw = repo.index(None);
    let (_, out) = env.ready(&obj, &lookup).await;
    let a = out.new_artifact.expect("new artifact");
    assert_eq!(a.revision, format!("sha256:{}", sha256_hex(&raw)));
}

#[tokio::test]
async fn basic_auth_and_https_with_client_certificate() {
    let repo = chart_repo();
    let env = Env::new();

    // HTTP with basic auth: 401 without credentials, Ready with them.
    let server = serve_http(repo.dir.path(), Some(("user", "pass"))).await;
    let obj = helm_repository("auth", 1, json!({"url": server.url("/"), "interval": "1m"}));
    env.fails(
        &obj,
        &FakeLookup::default(),
        "Failed",
        &format!(
            "failed to fetch Helm repository index: failed to cache index to temporary file: failed to fetch {}index.yaml : 401 Unauthorized",
            server.url("/")
        ),
    )
    .await;
    let lookup =
        FakeLookup::default().with_secret("creds", &[("username", b"user"), ("password", b"pass")]);
    let obj = helm_repository(
        "auth",
        1,
        json!({"url": server.url("/"), "interval": "1m", "secretRef": {"name": "creds"}}),
    );
    env.ready(&obj, &lookup).await;
    // Missing secret, malformed secret.
    env.fails(
        &obj,
        &FakeLookup::default(),
        "AuthenticationFailed",
        "failed to get authentication secret 'default/creds': secrets \"creds\" not found",
    )
    .await;
    let half = FakeLookup::default().with_secret("creds", &[("username", b"user")]);
    env.fails(
        &obj,
        &half,
        "AuthenticationFailed",
        "malformed basic auth - has 'username' but missing 'password'",
    )
    .await;

    // HTTPS requiring a client certificate, plus basic auth.
    let pki = pki();
    let tls = serve_https(repo.dir.path(), &pki, Some(("user", "pass"))).await;
    let lookup = FakeLookup::default()
        .with_secret("creds", &[("username", b"user"), ("password", b"pass")])
        .with_secret(
            "tls",
            &[
                ("ca.crt", pki.ca.as_bytes()),
                ("tls.crt", pki.client_cert.as_bytes()),
                ("tls.key", pki.client_key.as_bytes()),
            ],
        )
        .with_secret("ca-only", &[("ca.crt", pki.ca.as_bytes())]);
    let obj = helm_repository(
        "tls",
        1,
        json!({"url": tls.url("/"), "interval": "1m", "secretRef": {"name": "creds"}, "certSecretRef": {"name": "tls"}}),
    );
    let (_, out) = env.ready(&obj, &lookup).await;
    let raw = std::fs::read(repo.dir.path().join("index.yaml")).unwrap();
    assert_eq!(
        out.status.artifact.unwrap().revision,
        format!("sha256:{}", sha256_hex(&raw))
    );
    // Without the client certificate the TLS handshake fails.
    let obj = helm_repository(
        "tls",
        1,
        json!({"url": tls.url("/"), "interval": "1m", "secretRef": {"name": "creds"}, "certSecretRef": {"name": "ca-only"}}),
    );
    env.fails(
        &obj,
        &lookup,
        "Failed",
        "failed to fetch Helm repository index",
    )
    .await;
    // Without the CA the server is not trusted.
    let obj = helm_repository(
        "tls",
        1,
        json!({"url": tls.url("/"), "interval": "1m", "secretRef": {"name": "creds"}}),
    );
    env.fails(
        &obj,
        &lookup,
        "Failed",
        "failed to fetch Helm repository index",
    )
    .await;
    // A TLS secret without usable keys.
    let bad = FakeLookup::default().with_secret("tls", &[("tls.crt", pki.client_cert.as_bytes())]);
    let obj = helm_repository(
        "tls",
        1,
        json!({"url": tls.url("/"), "interval": "1m", "certSecretRef": {"name": "tls"}}),
    );
    env.fails(
        &obj,
        &bad,
        "AuthenticationFailed",
        "secret 'default/tls' contains 'tls.crt' but missing 'tls.key'",
    )
    .await;
}

#[tokio::test]
async fn bad_input_keeps_the_last_artifact() {
    let repo = chart_repo();
    let server = serve_http(repo.dir.path(), None).await;
    let mut env = Env::new();
    let lookup = FakeLookup::default();
    let obj = helm_repository("bad", 1, json!({"url": server.url("/"), "interval": "1m"}));
    let (obj, _) = env.ready(&obj, &lookup).await;

    // Malformed index.
    let good = std::fs::read(repo.dir.path().join("index.yaml")).unwrap();
    repo.write("index.yaml", b"apiVersion: v1\nentries: [\n");
    env.fails(
        &obj,
        &lookup,
        "IndexationFailed",
        "failed to load Helm repository from index YAML: failed to load index: error converting YAML to JSON",
    )
    .await;
    repo.write("index.yaml", b"entries: {}\n");
    env.fails(
        &obj,
        &lookup,
        "IndexationFailed",
        "no API version specified",
    )
    .await;

    // Over the size limit.
    repo.write("index.yaml", &good);
    env.settings.index_max_size = 100;
    env.fails(
        &obj,
        &lookup,
        "Failed",
        "failed to fetch Helm repository index: index exceeds the maximum index file size of 100 bytes",
    )
    .await;
    env.settings.index_max_size = Settings::default().index_max_size;

    // Unreachable.
    let port = crate::support::free_port();
    let gone = helm_repository(
        "bad",
        1,
        json!({"url": format!("http://127.0.0.1:{port}/charts"), "interval": "1m"}),
    );
    let gone = HelmRepository {
        status: obj.status.clone(),
        ..gone
    };
    env.fails(
        &gone,
        &lookup,
        "Failed",
        &format!("Get \"http://127.0.0.1:{port}/charts/index.yaml\""),
    )
    .await;

    // A password in the URL never reaches the status.
    let secret_url = helm_repository(
        "bad",
        1,
        json!({"url": format!("http://u:topsecret@127.0.0.1:{port}/charts"), "interval": "1m"}),
    );
    let secret_url = HelmRepository {
        status: obj.status.clone(),
        ..secret_url
    };
    let out = env
        .fails(&secret_url, &lookup, "Failed", "http://u:***@127.0.0.1")
        .await;
    assert!(
        !serde_json::to_string(&out.status)
            .unwrap()
            .contains("topsecret")
    );
    assert!(!out.events.iter().any(|e| e.message.contains("topsecret")));

    // Recovery: the same artifact, a Succeeded event.
    let failed = env.run(&gone, &lookup).await;
    let mut recovering = obj.clone();
    recovering.status = Some(failed.status);
    let (_, out) = env.ready(&recovering, &lookup).await;
    assert!(out.new_artifact.is_none());
    assert!(
        out.events.iter().any(|e| e.reason == "Succeeded"),
        "{:?}",
        out.events
    );

    // An oci:// URL with the default type is a spec error.
    let oci = helm_repository(
        "bad",
        2,
        json!({"url": "oci://127.0.0.1/charts", "interval": "1m"}),
    );
    let out = env.run(&oci, &lookup).await;
    assert_eq!(
        out.result,
        PipelineResult::Stalled {
            reason: "URLInvalid".into(),
            message: "invalid Helm repository URL: 'oci' URL scheme cannot be used with 'default' HelmRepository type".into(),
        }
    );
}

#[test]
fn oci_repositories_are_static() {
    use source_controller::helmrepository::{oci_needs_migration, static_status};
    let mut obj = helm_repository(
        "oci",
        1,
        json!({"url": "oci://ghcr.io/org/charts", "type": "oci"}),
    );
    assert!(!oci_needs_migration(&obj));
    obj.metadata.finalizers = Some(vec!["finalizers.fluxcd.io".into()]);
    assert!(oci_needs_migration(&obj));
    obj.metadata.finalizers = None;
    obj.status = Some(Default::default());
    // The default status carries observedGeneration -1: not empty.
    assert!(oci_needs_migration(&obj));
    obj.status = Some(static_status());
    assert!(!oci_needs_migration(&obj));
    assert_eq!(serde_json::to_value(static_status()).unwrap(), json!({}));
}
