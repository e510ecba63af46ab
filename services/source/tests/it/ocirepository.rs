//! The OCIRepository pipeline against a real registry (`docker-registry` on 127.0.0.1, no API
//! server): references and revisions, layers, auth over plain HTTP and TLS, multi-arch
//! indexes, the no-op path, and the bad cases keeping the last artifact.

use std::collections::BTreeMap;
use std::time::Duration;

use ferroflux_api::conditions as cond;
use ferroflux_api::{Artifact, OCIRepository};
use serde_json::json;
use source_controller::ocirepository::{PipelineOutput, PipelineResult, Settings, run_pipeline};
use source_controller::storage::{DigestAlgo, Storage};

use crate::registry::{
    FLUX_CONFIG, FLUX_CONTENT, HELM_CHART, HELM_CONFIG, Layer, dockerconfigjson, hostile_tar_gz,
    sha256, start, tar_gz,
};
use crate::support::{FakeLookup, pki};

struct Env {
    storage: Storage,
    _storage_dir: tempfile::TempDir,
    scratch: tempfile::TempDir,
    settings: Settings,
}

impl Env {
    fn new() -> Self {
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
            _storage_dir: dir,
            scratch: tempfile::tempdir().unwrap(),
            settings: Settings::default(),
        }
    }

    async fn run(&self, obj: &OCIRepository, lookup: &FakeLookup) -> PipelineOutput {
        run_pipeline(
            obj,
            &self.storage,
            lookup,
            &self.settings,
            self.scratch.path(),
        )
        .await
    }

    /// Runs until Ready=True; returns the object with the new status applied.
    async fn ready(
        &self,
        obj: &OCIRepository,
        lookup: &FakeLookup,
    ) -> (OCIRepository, PipelineOutput) {
        let out = self.run(obj, lookup).await;
        let ready = cond::get(out.status.conditions.as_deref().unwrap(), cond::READY).unwrap();
        assert_eq!(
            (out.result.clone(), ready.status.as_str()),
            (PipelineResult::Success, "True"),
            "{}",
            ready.message
        );
        (with_status(obj, &out), out)
    }

    /// Runs and expects Ready=False with `reason` and a message containing `needle`; the last
    /// artifact (if any) must still be in storage and advertised.
    async fn fails(
        &self,
        obj: &OCIRepository,
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
        if let Some(old) = obj.status.as_ref().and_then(|s| s.artifact.as_ref()) {
            let kept = out.status.artifact.as_ref().expect("artifact kept");
            assert_eq!(kept.digest, old.digest);
            assert!(self.storage.artifact_exist(kept));
            self.storage.verify_artifact(kept).unwrap();
        }
        assert!(out.new_artifact.is_none());
        out
    }

    fn files(&self, a: &Artifact) -> BTreeMap<String, String> {
        use std::io::Read;
        let data = std::fs::read(self.storage.local_path(&a.path).unwrap()).unwrap();
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(&data[..]));
        let mut out = BTreeMap::new();
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            if e.header().entry_type().is_file() {
                let mut s = String::new();
                e.read_to_string(&mut s).unwrap();
                out.insert(e.path().unwrap().to_string_lossy().into_owned(), s);
            }
        }
        out
    }
}

fn oci_repository(name: &str, generation: i64, spec: serde_json::Value) -> OCIRepository {
    let mut spec = spec;
    if spec.get("interval").is_none() {
        spec["interval"] = "1m".into();
    }
    serde_json::from_value(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "OCIRepository",
        "metadata": {"name": name, "namespace": "default", "generation": generation, "uid": "u-1"},
        "spec": spec,
    }))
    .unwrap()
}

fn with_status(obj: &OCIRepository, out: &PipelineOutput) -> OCIRepository {
    let mut o = obj.clone();
    o.status = Some(out.status.clone());
    o
}

fn with_spec(obj: &OCIRepository, generation: i64, patch: serde_json::Value) -> OCIRepository {
    let mut v = serde_json::to_value(obj).unwrap();
    for (k, val) in patch.as_object().unwrap() {
        v["spec"][k] = val.clone();
    }
    v["metadata"]["generation"] = generation.into();
    serde_json::from_value(v).unwrap()
}

fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn references_revisions_and_the_no_op_over_plain_http() {
    let reg = start(None, None);
    let ann = annotations(&[
        (
            "org.opencontainers.image.source",
            "https://github.com/example/app",
        ),
        (
            "org.opencontainers.image.revision",
            "main@sha1:0123456789abcdef",
        ),
        ("org.opencontainers.image.created", "2026-01-01T00:00:00Z"),
    ]);
    let mut digests = BTreeMap::new();
    for tag in ["1.0.0", "v1.1.0", "2.0.0-rc.1", "latest", "not-a-version"] {
        let files = [
            ("deploy/app.yaml", format!("kind: ConfigMap # {tag}\n")),
            ("deploy/logo.png", "png".to_string()),
        ];
        let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
        let d = reg
            .push("app", Some(tag), FLUX_CONFIG, &[Layer::flux(&files)], &ann)
            .await;
        digests.insert(tag, d);
    }
    let env = Env::new();
    let lookup = FakeLookup::default();
    let url = reg.url("app");

    // A tag: `<tag>@sha256:<manifest digest>`, annotations in the artifact metadata.
    let obj = oci_repository(
        "app",
        1,
        json!({"url": url, "ref": {"tag": "1.0.0"}, "insecure": true}),
    );
    let (obj, out) = env.ready(&obj, &lookup).await;
    let a = out.status.artifact.clone().unwrap();
    assert_eq!(a.revision, format!("1.0.0@{}", digests["1.0.0"]));
    let hex = digests["1.0.0"].clone();
    assert_eq!(a.path, format!("ocirepository/default/app/{hex}.tar.gz"));
    assert_eq!(a.metadata.as_ref(), Some(&ann));
    assert_eq!(
        env.files(&a),
        BTreeMap::from([("deploy/app.yaml".into(), "kind: ConfigMap # 1.0.0\n".into())]),
        "default ignore rules leave the .png out"
    );
    let conds = out.status.conditions.clone().unwrap();
    assert_eq!(
        cond::get(&conds, cond::READY).unwrap().message,
        format!("stored artifact for digest '1.0.0@{}'", digests["1.0.0"])
    );
    assert_eq!(out.status.observed_generation, Some(1));
    assert_eq!(
        out.status.url.as_deref(),
        Some("http://localhost:9090/ocirepository/default/app/latest.tar.gz")
    );
    let new = out
        .events
        .iter()
        .find(|e| e.reason == "NewArtifact")
        .unwrap();
    assert_eq!(
        new.message,
        format!(
            "stored artifact with revision '1.0.0@{}' from '{url}', origin source 'https://github.com/example/app', origin revision 'main@sha1:0123456789abcdef'",
            digests["1.0.0"]
        )
    );
    assert_eq!(new.metadata["digest"], a.digest);

    // Unchanged revision with the artifact in storage: resolved again, not pulled (the blobs
    // are gone from the registry and nothing fails).
    let manifest_layers = {
        let raw = reqwest::Client::new()
            .get(format!(
                "http://{}/v2/app/manifests/{}",
                reg.addr, digests["1.0.0"]
            ))
            .header("accept", crate::registry::OCI_MANIFEST)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let m: serde_json::Value = serde_json::from_str(&raw).unwrap();
        m["layers"][0]["digest"].as_str().unwrap().to_string()
    };
    reg.delete_blob("app", &manifest_layers).await;
    let (obj, out) = env.ready(&obj, &lookup).await;
    assert!(out.new_artifact.is_none());
    assert!(out.events.iter().any(|e| e.reason == "ArtifactUpToDate"));
    assert!(!out.events.iter().any(|e| e.reason == "NewArtifact"));
    assert_eq!(out.status.artifact.as_ref().unwrap().digest, a.digest);

    // A changed ignore rule rebuilds (observedIgnore), which needs the content again.
    let obj2 = with_spec(&obj, 2, json!({"ignore": "deploy/extra.yaml\n"}));
    env.fails(
        &obj2,
        &lookup,
        "OCIArtifactLayerOperationFailed",
        "failed to extract layer contents from artifact",
    )
    .await;

    // No ref: `latest`.
    let obj = oci_repository("latest", 1, json!({"url": url, "insecure": true}));
    let (_, out) = env.ready(&obj, &lookup).await;
    assert_eq!(
        out.status.artifact.unwrap().revision,
        format!("latest@{}", digests["latest"])
    );

    // SemVer picks the highest match; the `v` prefix is kept in the revision.
    let obj = oci_repository(
        "semver",
        1,
        json!({"url": url, "insecure": true, "ref": {"semver": "1.x"}}),
    );
    let (obj, out) = env.ready(&obj, &lookup).await;
    assert_eq!(
        out.status.artifact.unwrap().revision,
        format!("v1.1.0@{}", digests["v1.1.0"])
    );
    // With a filter, pre-releases allowed by the range.
    let obj = with_spec(
        &obj,
        2,
        json!({"ref": {"semver": ">=1.0.0-0", "semverFilter": ".*-rc.*"}}),
    );
    let (_, out) = env.ready(&obj, &lookup).await;
    assert_eq!(
        out.status.artifact.unwrap().revision,
        format!("2.0.0-rc.1@{}", digests["2.0.0-rc.1"])
    );

    // A digest wins over tag and semver: the revision is the digest alone.
    let d = digests["latest"].clone();
    let obj = oci_repository(
        "digest",
        1,
        json!({"url": url, "insecure": true, "ref": {"digest": d, "tag": "1.0.0", "semver": "*"}}),
    );
    let (_, out) = env.ready(&obj, &lookup).await;
    let a = out.status.artifact.unwrap();
    assert_eq!(a.revision, d);
    assert_eq!(a.path, format!("ocirepository/default/digest/{d}.tar.gz"));
}

#[tokio::test(flavor = "multi_thread")]
async fn ignore_rules_and_observed_settings() {
    let reg = start(None, None);
    let files = [
        ("deploy/app.yaml", "kind: ConfigMap\n"),
        ("deploy/extra.yaml", "kind: Secret\n"),
        (".sourceignore", "*.md\n"),
        ("README.md", "# app\n"),
    ];
    reg.push(
        "app",
        Some("v1"),
        FLUX_CONFIG,
        &[Layer::flux(&files)],
        &BTreeMap::new(),
    )
    .await;
    let env = Env::new();
    let lookup = FakeLookup::default();
    let obj = oci_repository(
        "app",
        1,
        json!({"url": reg.url("app"), "insecure": true, "ref": {"tag": "v1"}}),
    );
    let (obj, out) = env.ready(&obj, &lookup).await;
    let a = out.status.artifact.clone().unwrap();
    assert_eq!(a.metadata, None, "no annotations, no metadata");
    let names: Vec<String> = env.files(&a).into_keys().collect();
    assert_eq!(
        names,
        [".sourceignore", "deploy/app.yaml", "deploy/extra.yaml"]
    );

    let obj = with_spec(&obj, 2, json!({"ignore": "deploy/extra.yaml\n"}));
    let (obj, out) = env.ready(&obj, &lookup).await;
    let b = out
        .new_artifact
        .clone()
        .expect("rebuilt for the new ignore rules");
    assert_eq!(b.revision, a.revision);
    assert_eq!(
        out.status.observed_ignore.as_deref(),
        Some("deploy/extra.yaml\n")
    );
    let names: Vec<String> = env.files(&b).into_keys().collect();
    assert_eq!(
        names,
        [".sourceignore", "deploy/app.yaml"],
        ".sourceignore kept, README.md ignored by it"
    );
    assert_ne!(b.digest, a.digest);
    assert!(
        out.events.iter().any(|e| e.reason == "NewArtifact"),
        "a new digest is announced"
    );

    // The same layer selector spelled out (defaults) is a content change upstream compares.
    let obj = with_spec(
        &obj,
        3,
        json!({"layerSelector": {"mediaType": "application/vnd.cncf.flux.content.v1.tar+gzip", "operation": "extract"}}),
    );
    let (_, out) = env.ready(&obj, &lookup).await;
    assert!(out.new_artifact.is_some());
    assert_eq!(
        serde_json::to_value(out.status.observed_layer_selector).unwrap(),
        json!({"mediaType": "application/vnd.cncf.flux.content.v1.tar+gzip", "operation": "extract"})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn layer_selector_extract_copy_and_helm_semver() {
    let reg = start(None, None);
    let chart = tar_gz(&[
        (
            "podinfo/Chart.yaml",
            "name: podinfo\nversion: 6.1.4+build.1\n",
        ),
        ("podinfo/values.yaml", "replicas: 1\n"),
    ]);
    let chart_layer = || Layer {
        media_type: HELM_CHART.into(),
        data: chart.clone(),
    };
    // A chart pushed the way `helm push` tags `+` versions (as `_`), plus older versions.
    for tag in ["6.0.0", "6.1.4_build.1", "6.1.3"] {
        reg.push(
            "charts/podinfo",
            Some(tag),
            HELM_CONFIG,
            &[chart_layer()],
            &BTreeMap::new(),
        )
        .await;
    }
    let env = Env::new();
    let lookup = FakeLookup::default();
    let url = reg.url("charts/podinfo");

    let obj = oci_repository(
        "chart",
        1,
        json!({"url": url, "insecure": true, "ref": {"semver": "~6.1.0"},
               "layerSelector": {"mediaType": HELM_CHART, "operation": "copy"}}),
    );
    let (obj, out) = env.ready(&obj, &lookup).await;
    let a = out.status.artifact.clone().unwrap();
    assert!(
        a.revision.starts_with("6.1.4_build.1@sha256:"),
        "{}",
        a.revision
    );
    // Copied as is: the stored file is the layer blob.
    let stored = std::fs::read(env.storage.local_path(&a.path).unwrap()).unwrap();
    assert_eq!(stored, chart);
    assert_eq!(a.digest, sha256(&chart));
    assert_eq!(a.size, Some(chart.len() as i64));

    // Without the Helm media type, `6.1.4_build.1` is not a version: 6.1.3 wins.
    let obj2 = oci_repository(
        "plain",
        1,
        json!({"url": url, "insecure": true, "ref": {"semver": "~6.1.0"}}),
    );
    let (_, out) = env.ready(&obj2, &lookup).await;
    assert!(out.status.artifact.unwrap().revision.starts_with("6.1.3@"));

    // Extract: the layer is unpacked with the safe-untar checks. It is plain and the ignore
    // rules leave it whole, so the archive would hold exactly its files: the blob itself is
    // stored (the copy's digest).
    let obj = with_spec(
        &obj,
        2,
        json!({"layerSelector": {"mediaType": HELM_CHART, "operation": "extract"}}),
    );
    let (obj, out) = env.ready(&obj, &lookup).await;
    let b = out.status.artifact.clone().unwrap();
    assert_eq!(b.revision, a.revision);
    assert_eq!(
        b.digest, a.digest,
        "a plain layer left whole is stored as is"
    );
    assert_eq!(
        env.files(&b).get("podinfo/values.yaml").map(String::as_str),
        Some("replicas: 1\n")
    );
    // An ignore rule that drops a file: the tree is archived again (normalised, root `.`).
    let obj = with_spec(&obj, 3, json!({"ignore": "values.yaml\n"}));
    let (obj, out) = env.ready(&obj, &lookup).await;
    let c = out.status.artifact.clone().unwrap();
    assert_ne!(c.digest, a.digest);
    assert_eq!(
        env.files(&c).into_keys().collect::<Vec<_>>(),
        ["podinfo/Chart.yaml"]
    );

    // A selector naming a media type the artifact does not have.
    let obj = with_spec(
        &obj,
        4,
        json!({"layerSelector": {"mediaType": "application/x-nope"}}),
    );
    env.fails(
        &obj,
        &lookup,
        "OCIArtifactLayerOperationFailed",
        "failed to find layer with media type 'application/x-nope' in artifact",
    )
    .await;

    // Two layers: the first by default, the selected one otherwise.
    let two = reg
        .push(
            "two",
            Some("v1"),
            FLUX_CONFIG,
            &[Layer::flux(&[("a.yaml", "first\n")]), chart_layer()],
            &BTreeMap::new(),
        )
        .await;
    let obj = oci_repository(
        "two",
        1,
        json!({"url": reg.url("two"), "insecure": true, "ref": {"tag": "v1"}}),
    );
    let (_, out) = env.ready(&obj, &lookup).await;
    let a = out.status.artifact.unwrap();
    assert_eq!(a.revision, format!("v1@{two}"));
    assert_eq!(env.files(&a).keys().collect::<Vec<_>>(), ["a.yaml"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn multi_arch_index_resolves_to_linux_amd64() {
    let reg = start(None, None);
    let amd = reg
        .push(
            "multi",
            None,
            FLUX_CONFIG,
            &[Layer::flux(&[("arch.txt", "amd64\n")])],
            &annotations(&[("org.opencontainers.image.revision", "amd64-rev")]),
        )
        .await;
    let arm = reg
        .push(
            "multi",
            None,
            FLUX_CONFIG,
            &[Layer::flux(&[("arch.txt", "arm64\n")])],
            &annotations(&[("org.opencontainers.image.revision", "arm64-rev")]),
        )
        .await;
    let index = reg
        .push_index(
            "multi",
            "v1",
            &[("linux", "arm64", &arm), ("linux", "amd64", &amd)],
        )
        .await;
    let only_arm = reg
        .push_index("multi", "arm-only", &[("linux", "arm64", &arm)])
        .await;
    let env = Env::new();
    let lookup = FakeLookup::default();
    let obj = oci_repository(
        "multi",
        1,
        json!({"url": reg.url("multi"), "insecure": true, "ref": {"tag": "v1"}}),
    );
    let (_, out) = env.ready(&obj, &lookup).await;
    let a = out.status.artifact.unwrap();
    assert_eq!(
        a.revision,
        format!("v1@{index}"),
        "the revision names the index"
    );
    assert_eq!(env.files(&a)["arch.txt"], "amd64\n");
    assert_eq!(
        a.metadata.unwrap()["org.opencontainers.image.revision"],
        "amd64-rev"
    );

    let obj = oci_repository(
        "arm",
        1,
        json!({"url": reg.url("multi"), "insecure": true, "ref": {"tag": "arm-only"}}),
    );
    env.fails(
        &obj,
        &lookup,
        "OCIArtifactPullFailed",
        &format!(
            "no child with platform linux/amd64 in index {}/multi@{only_arm}",
            reg.addr
        ),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_with_a_test_ca_basic_auth_and_pull_secrets() {
    let pki = pki();
    let reg = start(Some(&pki), Some(("flux", "s3cret")));
    let digest = reg
        .push(
            "private/app",
            Some("v1"),
            FLUX_CONFIG,
            &[Layer::flux(&[("app.yaml", "kind: ConfigMap\n")])],
            &BTreeMap::new(),
        )
        .await;
    let env = Env::new();
    let url = reg.url("private/app");
    let creds = dockerconfigjson(&reg.addr, "flux", "s3cret");
    let lookup = FakeLookup::default()
        .with_secret("ca", &[("ca.crt", pki.ca.as_bytes())])
        .with_secret("creds", &[(".dockerconfigjson", &creds)])
        .with_secret(
            "wrong",
            &[(
                ".dockerconfigjson",
                &dockerconfigjson(&reg.addr, "flux", "nope"),
            )],
        )
        .with_secret(
            "client-cert",
            &[
                ("tls.crt", pki.client_cert.as_bytes()),
                ("tls.key", pki.client_key.as_bytes()),
            ],
        );
    let mut lookup = lookup;
    lookup
        .service_accounts
        .insert("puller".into(), vec!["creds".into()]);
    lookup.service_accounts.insert("empty".into(), vec![]);

    // dockerconfigjson Secret + CA.
    let obj = oci_repository(
        "app",
        1,
        json!({"url": url, "ref": {"tag": "v1"}, "secretRef": {"name": "creds"}, "certSecretRef": {"name": "ca"}}),
    );
    let (good, out) = env.ready(&obj, &lookup).await;
    assert_eq!(
        out.status.artifact.unwrap().revision,
        format!("v1@{digest}")
    );

    // The ServiceAccount's imagePullSecrets.
    let sa = oci_repository(
        "sa",
        1,
        json!({"url": url, "ref": {"tag": "v1"}, "serviceAccountName": "puller", "certSecretRef": {"name": "ca"}}),
    );
    env.ready(&sa, &lookup).await;

    // No credentials, wrong credentials: the registry refuses; the artifact stays.
    let anon = with_spec(&good, 2, json!({"secretRef": null}));
    env.fails(
        &anon,
        &lookup,
        "OCIArtifactPullFailed",
        "failed to determine artifact digest",
    )
    .await;
    let wrong = with_spec(&good, 2, json!({"secretRef": {"name": "wrong"}}));
    env.fails(
        &wrong,
        &lookup,
        "OCIArtifactPullFailed",
        "failed to determine artifact digest",
    )
    .await;
    let sa_empty = with_spec(
        &good,
        2,
        json!({"secretRef": null, "serviceAccountName": "empty"}),
    );
    env.fails(
        &sa_empty,
        &lookup,
        "OCIArtifactPullFailed",
        "failed to determine artifact digest",
    )
    .await;
    // Missing Secret / ServiceAccount.
    let missing = with_spec(&good, 2, json!({"secretRef": {"name": "absent"}}));
    let out = env
        .fails(
            &missing,
            &lookup,
            "AuthenticationFailed",
            "failed to get credential: failed to get secret 'default/absent': secrets \"absent\" not found",
        )
        .await;
    assert!(
        out.events
            .iter()
            .any(|e| e.message == "auth secret 'absent' not found")
    );
    let missing_sa = with_spec(
        &good,
        2,
        json!({"secretRef": null, "serviceAccountName": "ghost"}),
    );
    env.fails(
        &missing_sa,
        &lookup,
        "AuthenticationFailed",
        "serviceaccounts \"ghost\" not found",
    )
    .await;

    // Without the CA the server certificate is not trusted.
    let no_ca = with_spec(&good, 2, json!({"certSecretRef": null}));
    env.fails(
        &no_ca,
        &lookup,
        "OCIArtifactPullFailed",
        "failed to determine artifact digest",
    )
    .await;
    // A client certificate without `ca.crt` does not make the server certificate trusted.
    let cert = with_spec(&good, 2, json!({"certSecretRef": {"name": "client-cert"}}));
    env.fails(
        &cert,
        &lookup,
        "OCIArtifactPullFailed",
        "failed to determine artifact digest",
    )
    .await;
    // `insecure` skips certificate checks when no certSecretRef is given (as upstream).
    let insecure = with_spec(&good, 3, json!({"certSecretRef": null, "insecure": true}));
    env.ready(&insecure, &lookup).await;

    // No secret leaks into messages or events.
    for o in [&wrong, &missing] {
        let out = env.run(o, &lookup).await;
        let text = serde_json::to_string(&out.status).unwrap()
            + &out
                .events
                .iter()
                .map(|e| e.message.clone())
                .collect::<String>();
        assert!(!text.contains("s3cret") && !text.contains("nope"), "{text}");
    }
}

/// `certSecretRef` with `ca.crt`, `tls.crt` and `tls.key` against a registry that requires a
/// client certificate signed by the test CA, with htpasswd basic auth on top.
#[tokio::test(flavor = "multi_thread")]
async fn tls_client_certificate_from_cert_secret_ref() {
    let pki = pki();
    let pusher = start(Some(&pki), Some(("flux", "s3cret")));
    let v1 = pusher
        .push(
            "mtls/app",
            Some("1.0.0"),
            FLUX_CONFIG,
            &[Layer::flux(&[("app.yaml", "kind: ConfigMap\n")])],
            &annotations(&[("org.opencontainers.image.revision", "main@sha1:abc")]),
        )
        .await;
    let v2 = pusher
        .push(
            "mtls/app",
            Some("1.1.0"),
            FLUX_CONFIG,
            &[Layer::flux(&[("app.yaml", "kind: Secret\n")])],
            &BTreeMap::new(),
        )
        .await;
    let reg = pusher.client_cert_twin(&pki);
    let env = Env::new();
    let url = reg.url("mtls/app");
    let creds = dockerconfigjson(&reg.addr, "flux", "s3cret");
    let lookup = FakeLookup::default()
        .with_secret(
            "mtls",
            &[
                ("ca.crt", pki.ca.as_bytes()),
                ("tls.crt", pki.client_cert.as_bytes()),
                ("tls.key", pki.client_key.as_bytes()),
            ],
        )
        .with_secret("ca-only", &[("ca.crt", pki.ca.as_bytes())])
        .with_secret("creds", &[(".dockerconfigjson", &creds)])
        .with_secret(
            "wrong",
            &[(
                ".dockerconfigjson",
                &dockerconfigjson(&reg.addr, "flux", "nope"),
            )],
        );

    // Semver over the listed tags, the manifest, the annotations, the layer: all through the
    // client certificate and basic auth.
    let obj = oci_repository(
        "app",
        1,
        json!({"url": url, "ref": {"semver": "~1.0"}, "secretRef": {"name": "creds"},
               "certSecretRef": {"name": "mtls"}}),
    );
    let (good, out) = env.ready(&obj, &lookup).await;
    let artifact = out.status.artifact.unwrap();
    assert_eq!(artifact.revision, format!("1.0.0@{v1}"));
    assert_eq!(
        artifact.metadata.as_ref().unwrap()["org.opencontainers.image.revision"],
        "main@sha1:abc"
    );
    assert_eq!(env.files(&artifact)["app.yaml"], "kind: ConfigMap\n");
    // By digest, copied as is.
    let by_digest = with_spec(
        &good,
        2,
        json!({"ref": {"digest": v2}, "layerSelector": {"mediaType": FLUX_CONTENT, "operation": "copy"}}),
    );
    let (_, out) = env.ready(&by_digest, &lookup).await;
    assert_eq!(out.status.artifact.unwrap().revision, v2);

    // Without the client certificate the registry refuses the handshake; a wrong password,
    // no CA: each fails and the artifact stays.
    // (By tag: the digest request is the one that fails.)
    let no_cert = with_spec(
        &good,
        3,
        json!({"ref": {"tag": "1.0.0"}, "certSecretRef": {"name": "ca-only"}}),
    );
    env.fails(
        &no_cert,
        &lookup,
        "OCIArtifactPullFailed",
        "failed to determine artifact digest",
    )
    .await;
    let wrong = with_spec(
        &good,
        3,
        json!({"ref": {"tag": "1.0.0"}, "secretRef": {"name": "wrong"}}),
    );
    let out = env
        .fails(
            &wrong,
            &lookup,
            "OCIArtifactPullFailed",
            "failed to determine artifact digest",
        )
        .await;
    assert!(
        !serde_json::to_string(&out.status).unwrap().contains("nope"),
        "no password in the status"
    );
    let no_ca = with_spec(
        &good,
        3,
        json!({"ref": {"tag": "1.0.0"}, "certSecretRef": null}),
    );
    env.fails(
        &no_ca,
        &lookup,
        "OCIArtifactPullFailed",
        "failed to determine artifact digest",
    )
    .await;
    // Listing tags for semver fails the same way without the certificate.
    let no_cert_semver = with_spec(&good, 3, json!({"certSecretRef": {"name": "ca-only"}}));
    env.fails(
        &no_cert_semver,
        &lookup,
        "ReadOperationFailed",
        "failed to determine the artifact tag",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_http_with_basic_auth() {
    let reg = start(None, Some(("flux", "pw")));
    let digest = reg
        .push(
            "app",
            Some("v1"),
            FLUX_CONFIG,
            &[Layer::flux(&[("a.yaml", "a\n")])],
            &BTreeMap::new(),
        )
        .await;
    let env = Env::new();
    let lookup = FakeLookup::default().with_secret(
        "creds",
        &[(
            ".dockerconfigjson",
            &dockerconfigjson(&reg.addr, "flux", "pw"),
        )],
    );
    let obj = oci_repository(
        "app",
        1,
        json!({"url": reg.url("app"), "insecure": true, "ref": {"tag": "v1"}, "secretRef": {"name": "creds"}}),
    );
    let (obj, out) = env.ready(&obj, &lookup).await;
    assert_eq!(
        out.status.artifact.unwrap().revision,
        format!("v1@{digest}")
    );
    let anon = with_spec(&obj, 2, json!({"secretRef": null}));
    env.fails(
        &anon,
        &lookup,
        "OCIArtifactPullFailed",
        "failed to determine artifact digest",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_fails_with_upstream_reasons_and_keeps_the_artifact() {
    let reg = start(None, None);
    reg.push(
        "app",
        Some("v1"),
        FLUX_CONFIG,
        &[Layer::flux(&[("a.yaml", "a\n")])],
        &BTreeMap::new(),
    )
    .await;
    reg.push(
        "app",
        Some("not-gzip"),
        FLUX_CONFIG,
        &[Layer {
            media_type: crate::registry::FLUX_CONTENT.into(),
            data: b"this is not a tarball".to_vec(),
        }],
        &BTreeMap::new(),
    )
    .await;
    reg.push(
        "app",
        Some("escape"),
        FLUX_CONFIG,
        &[Layer {
            media_type: crate::registry::FLUX_CONTENT.into(),
            data: hostile_tar_gz("../evil.yaml", "x"),
        }],
        &BTreeMap::new(),
    )
    .await;
    let big: String = "x".repeat(256 * 1024);
    reg.push(
        "app",
        Some("big"),
        FLUX_CONFIG,
        &[Layer::flux(&[("big.txt", &big)])],
        &BTreeMap::new(),
    )
    .await;
    let mut env = Env::new();
    env.settings.max_layer_size = Some(64 * 1024);
    let lookup = FakeLookup::default();
    let url = reg.url("app");
    let obj = oci_repository(
        "app",
        1,
        json!({"url": url, "insecure": true, "ref": {"tag": "v1"}}),
    );
    let (good, _) = env.ready(&obj, &lookup).await;

    let tag = |t: &str| with_spec(&good, 2, json!({"ref": {"tag": t}}));
    env.fails(
        &tag("nope"),
        &lookup,
        "OCIArtifactPullFailed",
        "failed to determine artifact digest",
    )
    .await;
    env.fails(
        &tag("not-gzip"),
        &lookup,
        "OCIArtifactLayerOperationFailed",
        "failed to extract layer contents from artifact",
    )
    .await;
    env.fails(
        &tag("escape"),
        &lookup,
        "OCIArtifactLayerOperationFailed",
        "../evil.yaml",
    )
    .await;
    // 256 KiB of 'x' compresses below the layer limit; unpacked it is over it.
    env.fails(
        &tag("big"),
        &lookup,
        "OCIArtifactLayerOperationFailed",
        "too large",
    )
    .await;
    env.settings.max_layer_size = Some(100);
    env.fails(
        &tag("big"),
        &lookup,
        "OCIArtifactLayerOperationFailed",
        "exceeds the limit of 100 bytes",
    )
    .await;
    env.settings.max_layer_size = None;

    let semver = with_spec(&good, 2, json!({"ref": {"semver": ">=9.0.0"}}));
    env.fails(
        &semver,
        &lookup,
        "ReadOperationFailed",
        &format!(
            "failed to determine the artifact tag for '{url}': no match found for semver: >=9.0.0"
        ),
    )
    .await;
    let bad_digest = with_spec(&good, 2, json!({"ref": {"digest": "sha256:123"}}));
    env.fails(
        &bad_digest,
        &lookup,
        "OCIArtifactPullFailed",
        "failed to determine artifact digest",
    )
    .await;

    // Unreachable registry.
    let port = crate::support::free_port();
    let down = with_spec(
        &good,
        2,
        json!({"url": format!("oci://127.0.0.1:{port}/app")}),
    );
    env.fails(
        &down,
        &lookup,
        "OCIArtifactPullFailed",
        "failed to determine artifact digest",
    )
    .await;

    // An invalid URL stalls.
    let invalid = with_spec(&good, 2, json!({"url": "oci://127.0.0.1/app:v1"}));
    let out = env
        .fails(
            &invalid,
            &lookup,
            "URLInvalid",
            "URL must not contain a tag; remove ':v1'",
        )
        .await;
    assert_eq!(out.result, PipelineResult::Stalled {
        reason: "URLInvalid".into(),
        message: "URL validation failed for 'oci://127.0.0.1/app:v1': URL must not contain a tag; remove ':v1'".into(),
    });
    assert!(cond::is_true(
        out.status.conditions.as_deref().unwrap(),
        cond::STALLED
    ));

    // Cloud providers need a cloud: AuthenticationFailed; serviceAccountName needs the gate.
    let aws = with_spec(&good, 2, json!({"provider": "aws"}));
    let failed_fetch = env
        .fails(
            &aws,
            &lookup,
            "AuthenticationFailed",
            "failed to get credential from aws",
        )
        .await;
    assert!(cond::is_true(
        failed_fetch.status.conditions.as_deref().unwrap(),
        cond::FETCH_FAILED
    ));
    let gated = with_spec(
        &good,
        2,
        json!({"provider": "azure", "serviceAccountName": "wi"}),
    );
    let mut lookup_sa = FakeLookup::default();
    lookup_sa.service_accounts.insert("wi".into(), vec![]);
    let out = env
        .fails(
            &gated,
            &lookup_sa,
            "FeatureGateDisabled",
            "ObjectLevelWorkloadIdentity",
        )
        .await;
    assert!(matches!(out.result, PipelineResult::Stalled { .. }));

    // Verification is not there yet: refused, never skipped.
    let verify = with_spec(&good, 2, json!({"verify": {"provider": "cosign"}}));
    let out = env
        .fails(
            &verify,
            &lookup,
            "VerificationError",
            "failed to verify the signature using provider 'cosign keyless'",
        )
        .await;
    assert!(cond::is_false(
        out.status.conditions.as_deref().unwrap(),
        cond::SOURCE_VERIFIED
    ));

    // And the good spec recovers from the fetch failure with the same artifact.
    let back = with_spec(
        &with_status(&good, &failed_fetch),
        3,
        json!({"provider": null}),
    );
    let (_, out) = env.ready(&back, &lookup).await;
    assert_eq!(
        out.status.artifact.unwrap().digest,
        good.status.unwrap().artifact.unwrap().digest
    );
    assert!(
        out.events.iter().any(|e| e.reason == "Succeeded"),
        "failure recovery event"
    );
}

/// The full reconciler through the shared driver against the test API server: finalizer,
/// status, the artifact served over HTTP, the artifact event (what kustomize-controller
/// follows), Kubernetes Events, pull secrets of a real ServiceAccount, requestedAt, a failing
/// spec keeping the artifact served, deletion.
#[tokio::test(flavor = "multi_thread")]
async fn reconciler_against_the_api_server() {
    use ferroflux_runtime::driver::{DriverConfig, run};
    use ferroflux_runtime::events::EventRecorder;
    use ferroflux_runtime::metrics::Metrics;
    use k8s_openapi::api::core::v1::{Event, Secret, ServiceAccount};
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
    use source_controller::artifact_events::ArtifactEventLog;
    use source_controller::ocirepository::OCIRepositoryReconciler;

    let reg = start(None, Some(("flux", "pw")));
    let d1 = reg
        .push(
            "app",
            Some("v1"),
            FLUX_CONFIG,
            &[Layer::flux(&[("cm.yaml", "kind: ConfigMap\n")])],
            &BTreeMap::new(),
        )
        .await;

    let env = ferroflux_testenv::TestEnv::start(ferroflux_testenv::Options::default())
        .await
        .unwrap();
    let client = env.client().await.unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in ferroflux_api::crdgen::crd_objects().unwrap() {
        if crd.spec.group == "source.toolkit.fluxcd.io" {
            crds.create(&PostParams::default(), &crd).await.unwrap();
        }
    }
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let config = String::from_utf8(dockerconfigjson(&reg.addr, "flux", "pw")).unwrap();
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(
                json!({"metadata": {"name": "regcred"}, "type": "kubernetes.io/dockerconfigjson",
                "stringData": {".dockerconfigjson": config}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
    sas.create(
        &PostParams::default(),
        &serde_json::from_value(
            json!({"metadata": {"name": "puller"}, "imagePullSecrets": [{"name": "regcred"}]}),
        )
        .unwrap(),
    )
    .await
    .unwrap();

    let storage_dir = tempfile::tempdir().unwrap();
    let (addr, _srv) = source_controller::server::spawn(
        "127.0.0.1:0".parse().unwrap(),
        storage_dir.path(),
        std::future::pending(),
    )
    .await
    .unwrap();
    let storage = Storage::new(
        storage_dir.path(),
        &addr.to_string(),
        Duration::from_secs(60),
        2,
        DigestAlgo::Sha256,
    )
    .unwrap();
    let events = ArtifactEventLog::new(16);
    let (_, _, mut live, _) = events.subscribe(0);
    let scratch = tempfile::tempdir().unwrap();
    let reconciler = OCIRepositoryReconciler {
        storage: storage.clone(),
        events: events.clone(),
        recorder: EventRecorder::new(client.clone(), "source-controller", ""),
        settings: Settings::default(),
        scratch_root: scratch.path().to_path_buf(),
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let driver = tokio::spawn(run::<OCIRepository, _>(
        client.clone(),
        DriverConfig {
            controller: "ocirepository".into(),
            group: "source.toolkit.fluxcd.io".into(),
            kind: "OCIRepository".into(),
            concurrency: 2,
            min_retry_delay: Duration::from_millis(200),
            max_retry_delay: Duration::from_secs(2),
            jitter_percentage: 5,
            namespace: None,
            label_selector: String::new(),
        },
        reconciler,
        Metrics::new(),
        None,
        Vec::new(),
        async move {
            let _ = stop_rx.await;
        },
    ));

    let api: Api<OCIRepository> = Api::namespaced(client.clone(), "default");
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "OCIRepository",
            "metadata": {"name": "app", "namespace": "default"},
            "spec": {"url": reg.url("app"), "interval": "1m", "insecure": true, "ref": {"tag": "v1"},
                     "serviceAccountName": "puller"},
        }))
        .unwrap(),
    )
    .await
    .unwrap();

    let wait = |what: &'static str, pred: Box<dyn Fn(&OCIRepository) -> bool + Send + Sync>| {
        let api = api.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            loop {
                if let Ok(o) = api.get("app").await
                    && pred(&o)
                {
                    return o;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "timed out waiting for {what}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let obj = wait(
        "Ready=True",
        Box::new(|o| {
            o.status
                .as_ref()
                .and_then(|s| s.conditions.as_deref())
                .is_some_and(cond::is_ready)
        }),
    )
    .await;
    assert_eq!(
        obj.metadata.finalizers.as_deref(),
        Some(&["finalizers.fluxcd.io".to_string()][..])
    );
    let status = obj.status.clone().unwrap();
    assert_eq!(status.observed_generation, obj.metadata.generation);
    let artifact = status.artifact.clone().unwrap();
    assert_eq!(artifact.revision, format!("v1@{d1}"));
    assert_eq!(
        artifact.url,
        format!("http://{addr}/ocirepository/default/app/{d1}.tar.gz")
    );
    let body = reqwest::get(&artifact.url)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    ferroflux_runtime::artifact::verify_digest(&artifact.digest, &body).unwrap();
    let latest = reqwest::get(status.url.clone().unwrap()).await.unwrap();
    assert_eq!(latest.status(), 200);
    assert_eq!(latest.bytes().await.unwrap(), body);

    // The artifact event, as kustomize-controller receives it.
    let ev = tokio::time::timeout(Duration::from_secs(5), live.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            ev.kind.as_str(),
            ev.namespace.as_str(),
            ev.name.as_str(),
            ev.revision.as_str(),
            ev.digest.as_str()
        ),
        (
            "OCIRepository",
            "default",
            "app",
            artifact.revision.as_str(),
            artifact.digest.as_str()
        )
    );
    let kevents: Api<Event> = Api::namespaced(client.clone(), "default");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let new = loop {
        let list = kevents.list(&Default::default()).await.unwrap();
        if let Some(e) = list
            .items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("NewArtifact"))
        {
            break e;
        }
        assert!(tokio::time::Instant::now() < deadline, "NewArtifact event");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        new.message.unwrap(),
        format!(
            "stored artifact with revision 'v1@{d1}' from '{}'",
            reg.url("app")
        )
    );

    // A new push under the same tag: requestedAt picks it up and announces it.
    let d2 = reg
        .push(
            "app",
            Some("v1"),
            FLUX_CONFIG,
            &[Layer::flux(&[("cm.yaml", "kind: ConfigMap # 2\n")])],
            &BTreeMap::new(),
        )
        .await;
    api.patch(
        "app",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "now-1"}}}),
        ),
    )
    .await
    .unwrap();
    let ev = tokio::time::timeout(Duration::from_secs(10), live.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ev.revision, format!("v1@{d2}"));
    let obj = wait(
        "lastHandledReconcileAt",
        Box::new(|o| {
            o.status
                .as_ref()
                .and_then(|s| s.last_handled_reconcile_at.as_deref())
                == Some("now-1")
        }),
    )
    .await;
    let artifact = obj.status.unwrap().artifact.unwrap();
    assert_eq!(artifact.revision, format!("v1@{d2}"));

    // A broken spec: Ready=False with the upstream reason; the artifact stays served.
    api.patch(
        "app",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"ref": {"tag": "missing"}}})),
    )
    .await
    .unwrap();
    let failed = wait(
        "Ready=False",
        Box::new(|o| {
            o.status
                .as_ref()
                .and_then(|s| s.conditions.as_deref())
                .and_then(|c| cond::get(c, cond::READY))
                .is_some_and(|c| c.status == "False")
        }),
    )
    .await;
    let ready = cond::get(
        failed
            .status
            .as_ref()
            .unwrap()
            .conditions
            .as_deref()
            .unwrap(),
        cond::READY,
    )
    .unwrap()
    .clone();
    assert_eq!(ready.reason, "OCIArtifactPullFailed");
    assert_eq!(
        failed.status.unwrap().artifact.unwrap().digest,
        artifact.digest
    );
    assert_eq!(reqwest::get(&artifact.url).await.unwrap().status(), 200);

    // Deletion removes the artifacts and the finalizer.
    api.delete("app", &DeleteParams::default()).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while api.get_opt("app").await.unwrap().is_some() {
        assert!(tokio::time::Instant::now() < deadline, "object gone");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !storage_dir
            .path()
            .join("ocirepository/default/app")
            .exists()
    );
    assert_eq!(reqwest::get(&artifact.url).await.unwrap().status(), 404);

    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), driver).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cosign_public_key_verification() {
    use crate::registry::{openssl_p256_key, openssl_sign, simple_signing_payload};
    let reg = start(None, None);
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = openssl_p256_key(keys.path(), "cosign");
    let (other_key, other_public) = openssl_p256_key(keys.path(), "other");
    let push = |tag: &'static str, body: &'static str| {
        let reg = &reg;
        async move {
            reg.push(
                "app",
                Some(tag),
                FLUX_CONFIG,
                &[Layer::flux(&[("a.yaml", body)])],
                &BTreeMap::new(),
            )
            .await
        }
    };
    let signed = push("signed", "signed\n").await;
    let unsigned = push("unsigned", "unsigned\n").await;
    let wrongly = push("wrongly", "wrongly\n").await;
    let tampered = push("tampered", "tampered\n").await;
    let replayed = push("replayed", "replayed\n").await;
    let image = format!("{}/app", reg.addr);
    let sign = |k: &std::path::Path, d: &str| {
        let p = simple_signing_payload(&image, d);
        let s = openssl_sign(keys.path(), k, &p);
        (p, s)
    };
    reg.push_signature("app", &signed, &[sign(&key, &signed)])
        .await;
    reg.push_signature("app", &wrongly, &[sign(&other_key, &wrongly)])
        .await;
    // A payload changed after signing (the claim now names the artifact).
    let (payload, sig) = sign(&key, &unsigned);
    let forged = String::from_utf8(payload)
        .unwrap()
        .replace(&unsigned, &tampered)
        .into_bytes();
    reg.push_signature("app", &tampered, &[(forged, sig)]).await;
    // A valid signature of another artifact copied next to this one.
    reg.push_signature("app", &replayed, &[sign(&key, &signed)])
        .await;

    let env = Env::new();
    let lookup = FakeLookup::default()
        .with_secret(
            "cosign-keys",
            &[("cosign.pub", &public), ("README", b"not a key")],
        )
        .with_secret("other-keys", &[("other.pub", &other_public)])
        .with_secret(
            "bad-keys",
            &[(
                "broken.pub",
                b"-----BEGIN PUBLIC KEY-----\n!!\n-----END PUBLIC KEY-----\n",
            )],
        );
    let obj = oci_repository(
        "app",
        1,
        json!({"url": reg.url("app"), "insecure": true, "ref": {"tag": "signed"},
               "verify": {"provider": "cosign", "secretRef": {"name": "cosign-keys"}}}),
    );
    let (good, out) = env.ready(&obj, &lookup).await;
    let conds = out.status.conditions.clone().unwrap();
    let verified = cond::get(&conds, cond::SOURCE_VERIFIED).unwrap();
    assert_eq!(
        (verified.status.as_str(), verified.reason.as_str()),
        ("True", "Succeeded")
    );
    assert_eq!(
        verified.message,
        format!("verified signature of revision signed@{signed}")
    );

    // Unchanged revision and generation: not verified again (the signature payload is gone
    // from the registry, still Ready).
    reg.delete_blob("app", &sha256(&simple_signing_payload(&image, &signed)))
        .await;
    let (_, out) = env.ready(&good, &lookup).await;
    assert!(cond::is_true(
        out.status.conditions.as_deref().unwrap(),
        cond::SOURCE_VERIFIED
    ));
    // The payload back, so the replayed signature below fails for its claim, not its absence.
    reg.push_signature("app", &replayed, &[sign(&key, &signed)])
        .await;

    for (tag, digest) in [
        ("unsigned", &unsigned),
        ("wrongly", &wrongly),
        ("tampered", &tampered),
        ("replayed", &replayed),
    ] {
        // Ready carries ArtifactOutdated (NewRevision) first, as upstream's summary orders it;
        // SourceVerified=False holds the verification error.
        let o = with_spec(&good, 2, json!({"ref": {"tag": tag}}));
        let out = env
            .fails(
                &o,
                &lookup,
                "NewRevision",
                &format!("new revision '{tag}@{digest}'"),
            )
            .await;
        let c = cond::get(
            out.status.conditions.as_deref().unwrap(),
            cond::SOURCE_VERIFIED,
        )
        .unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "VerificationError"),
            "{tag}"
        );
        assert_eq!(
            c.message,
            format!(
                "failed to verify the signature using provider 'cosign': no matching signatures were found for '{}/app@{digest}'",
                reg.addr
            )
        );
        assert_eq!(
            out.result,
            PipelineResult::Failed {
                reason: "VerificationError".into(),
                message: c.message.clone()
            }
        );
        // A new object (no artifact yet) shows it on Ready.
        let fresh = oci_repository(
            "fresh",
            1,
            json!({"url": reg.url("app"), "insecure": true, "ref": {"tag": tag},
                   "verify": {"provider": "cosign", "secretRef": {"name": "cosign-keys"}}}),
        );
        let out = env
            .fails(
                &fresh,
                &lookup,
                "VerificationError",
                "no matching signatures were found",
            )
            .await;
        assert!(
            out.status.artifact.is_none(),
            "nothing unverified is stored"
        );
    }
    // The other key verifies the artifact it signed, not the first one.
    let o = with_spec(
        &good,
        2,
        json!({"ref": {"tag": "wrongly"}, "verify": {"provider": "cosign", "secretRef": {"name": "other-keys"}}}),
    );
    env.ready(&o, &lookup).await;
    let o = with_spec(
        &good,
        2,
        json!({"verify": {"provider": "cosign", "secretRef": {"name": "other-keys"}}}),
    );
    env.fails(
        &o,
        &lookup,
        "VerificationError",
        "no matching signatures were found",
    )
    .await;
    // Key material problems.
    let o = with_spec(
        &good,
        2,
        json!({"verify": {"provider": "cosign", "secretRef": {"name": "bad-keys"}}}),
    );
    env.fails(
        &o,
        &lookup,
        "VerificationError",
        "failed to load public key 'broken.pub'",
    )
    .await;
    let o = with_spec(
        &good,
        2,
        json!({"verify": {"provider": "cosign", "secretRef": {"name": "absent"}}}),
    );
    env.fails(
        &o,
        &lookup,
        "VerificationError",
        "secrets \"absent\" not found",
    )
    .await;
    let o = with_spec(
        &good,
        2,
        json!({"verify": {"provider": "notation", "secretRef": {"name": "cosign-keys"}}}),
    );
    env.fails(&o, &lookup, "VerificationError", "failed to verify the signature using provider 'notation': notation signatures are not supported").await;
}

/// `helm`: on PATH or where scripts/get-oracles puts it.
fn helm_binary() -> std::path::PathBuf {
    let cached = std::env::var_os("HOME")
        .map(|h| std::path::PathBuf::from(h).join(".cache/ferroflux-oracles/bin/helm"));
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("helm"))
        .chain(cached)
        .find(|p| p.is_file())
        .expect("helm is missing: install it with `scripts/get-oracles` (helm v4 on PATH)")
}

/// A chart pushed by the real `helm push` (a `+` version tagged with `_`) is found by semver
/// with the Helm layer selector, copied byte for byte and extracted.
#[tokio::test(flavor = "multi_thread")]
async fn chart_pushed_by_helm_with_the_helm_layer_selector() {
    let reg = start(None, None);
    let work = tempfile::tempdir().unwrap();
    let helm = helm_binary();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&helm)
            .args(args)
            .current_dir(work.path())
            .env("HELM_CONFIG_HOME", work.path().join("config"))
            .env("HELM_CACHE_HOME", work.path().join("cache"))
            .env("HELM_DATA_HOME", work.path().join("data"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "helm {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&["create", "podinfo"]);
    run(&["package", "--version", "6.1.4+build.7", "podinfo"]);
    run(&["package", "--version", "6.1.3", "podinfo"]);
    let oci = format!("oci://{}/charts", reg.addr);
    for file in ["podinfo-6.1.3.tgz", "podinfo-6.1.4+build.7.tgz"] {
        run(&["push", file, &oci, "--plain-http"]);
    }
    let chart = std::fs::read(work.path().join("podinfo-6.1.4+build.7.tgz")).unwrap();

    let env = Env::new();
    let lookup = FakeLookup::default();
    let obj = oci_repository(
        "podinfo",
        1,
        json!({"url": format!("{oci}/podinfo"), "insecure": true, "ref": {"semver": "~6.1.0"},
               "layerSelector": {"mediaType": HELM_CHART, "operation": "copy"}}),
    );
    let (obj, out) = env.ready(&obj, &lookup).await;
    let a = out.status.artifact.clone().unwrap();
    assert!(
        a.revision.starts_with("6.1.4_build.7@sha256:"),
        "{}",
        a.revision
    );
    assert_eq!(
        std::fs::read(env.storage.local_path(&a.path).unwrap()).unwrap(),
        chart
    );
    let md = a.metadata.unwrap();
    assert_eq!(md["org.opencontainers.image.version"], "6.1.4+build.7");
    assert_eq!(md["org.opencontainers.image.title"], "podinfo");

    let obj = with_spec(&obj, 2, json!({"layerSelector": {"mediaType": HELM_CHART}}));
    let (_, out) = env.ready(&obj, &lookup).await;
    let extracted = out.status.artifact.unwrap();
    // Go's archive/tar as helm writes it is read alike by every reader (plain), and nothing
    // in the chart is ignored: the checked blob is stored as is.
    assert_eq!(extracted.digest, a.digest);
    let files = env.files(&extracted);
    assert!(
        files["podinfo/Chart.yaml"].contains("version: 6.1.4+build.7"),
        "{}",
        files["podinfo/Chart.yaml"]
    );
    assert!(files.contains_key("podinfo/templates/deployment.yaml"));
}

/// `proxySecretRef` through an authenticating forward proxy, and `timeout` against a registry
/// that never answers.
#[tokio::test(flavor = "multi_thread")]
async fn proxy_secret_ref_and_timeout() {
    let reg = start(None, None);
    let digest = reg
        .push(
            "app",
            Some("v1"),
            FLUX_CONFIG,
            &[Layer::flux(&[("a.yaml", "a\n")])],
            &BTreeMap::new(),
        )
        .await;
    let proxy = crate::support::http_proxy("proxy-user", "proxy-pass").await;
    let env = Env::new();
    let address = format!("http://{}", proxy.addr);
    let lookup = FakeLookup::default()
        .with_secret(
            "proxy",
            &[
                ("address", address.as_bytes()),
                ("username", b"proxy-user"),
                ("password", b"proxy-pass"),
            ],
        )
        .with_secret(
            "wrong-proxy",
            &[
                ("address", address.as_bytes()),
                ("username", b"proxy-user"),
                ("password", b"nope"),
            ],
        )
        .with_secret("no-address", &[("username", b"proxy-user")]);
    let obj = oci_repository(
        "app",
        1,
        json!({"url": reg.url("app"), "insecure": true, "ref": {"tag": "v1"}, "proxySecretRef": {"name": "proxy"}}),
    );
    let (good, out) = env.ready(&obj, &lookup).await;
    assert_eq!(
        out.status.artifact.unwrap().revision,
        format!("v1@{digest}")
    );
    let forwarded = proxy.forwarded.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        forwarded >= 3,
        "manifest, HEAD and blob went through the proxy ({forwarded})"
    );

    let wrong = with_spec(&good, 2, json!({"proxySecretRef": {"name": "wrong-proxy"}}));
    let out = env
        .fails(
            &wrong,
            &lookup,
            "OCIArtifactPullFailed",
            "failed to determine artifact digest",
        )
        .await;
    let ready = cond::get(out.status.conditions.as_deref().unwrap(), cond::READY).unwrap();
    assert!(
        ready.message.contains("407"),
        "the proxy refused it: {}",
        ready.message
    );
    assert!(!ready.message.contains("nope"), "{}", ready.message);
    let invalid = with_spec(&good, 2, json!({"proxySecretRef": {"name": "no-address"}}));
    env.fails(
        &invalid,
        &lookup,
        "AuthenticationFailed",
        "failed to get proxy address: invalid proxy secret: key 'address' is missing",
    )
    .await;
    let missing = with_spec(&good, 2, json!({"proxySecretRef": {"name": "absent"}}));
    env.fails(
        &missing,
        &lookup,
        "AuthenticationFailed",
        "failed to get proxy address: secrets \"absent\" not found",
    )
    .await;

    // A registry that accepts connections and never answers: the spec's timeout ends it.
    let hanging = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = hanging.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((c, _)) = hanging.accept().await {
            conns.push(c);
        }
    });
    let slow = with_spec(
        &good,
        2,
        json!({"url": format!("oci://127.0.0.1:{port}/app"), "timeout": "1s", "proxySecretRef": null}),
    );
    let started = std::time::Instant::now();
    env.fails(
        &slow,
        &lookup,
        "OCIArtifactPullFailed",
        "context deadline exceeded (timeout 1s)",
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    held.abort();
}
