//! HelmCharts from `type: oci` HelmRepositories against a real `docker-registry` on 127.0.0.1
//! holding charts pushed by the real `helm push`: version ranges resolve to what `helm pull
//! oci://… --version` picks (tags as SemVer, `_` read as `+`), the stored chart is the pulled
//! one and renders as it; credentials from dockerconfigjson and basic-auth secrets, a CA from
//! certSecretRef; bad input keeps the last artifact.

use std::collections::BTreeMap;
use std::path::Path;

use ferroflux_api::conditions as cond;
use serde_json::json;
use source_controller::helmchart::PipelineResult;

use crate::helm_support::{ChartRepo, create_chart, helm, helm_repository, helm_try};
use crate::helmchart::{ChartLookup, Env, helm_chart, template};
use crate::registry::{self, HELM_CHART, Layer};
use crate::support::pki;

const VERSIONS: [&str; 8] = [
    "1.0.0",
    "1.1.0",
    "1.2.0-rc.1",
    "1.10.0",
    "2.0.0",
    "2.1.0+build.5",
    "3.0.0-beta.1",
    "0.9.0",
];

/// `podinfo` (made by `helm create`) packaged at every version of [`VERSIONS`].
fn packaged() -> (ChartRepo, Vec<std::path::PathBuf>) {
    let repo = ChartRepo::new();
    let src = create_chart(repo.work.path(), "podinfo", &[]);
    let tgzs = VERSIONS.iter().map(|v| repo.package(&src, v)).collect();
    (repo, tgzs)
}

/// `helm push` with the flags a registry needs (plain HTTP or a CA file).
fn push(home: &Path, reg: &registry::Registry, ca: Option<&Path>, tgz: &Path, path: &str) {
    let dest = reg.url(path);
    let mut args = vec!["push", tgz.to_str().unwrap(), dest.as_str()];
    match ca {
        Some(ca) => args.extend(["--ca-file", ca.to_str().unwrap()]),
        None => args.push("--plain-http"),
    }
    helm(home, &args);
}

fn oci_repo(url: &str, extra: serde_json::Value) -> ferroflux_api::HelmRepository {
    let mut spec = json!({"type": "oci", "url": url, "interval": "1m"});
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    helm_repository("charts", 1, spec)
}

fn chart(generation: i64, version: &str) -> ferroflux_api::HelmChart {
    let mut spec =
        json!({"chart": "podinfo", "sourceRef": {"kind": "HelmRepository", "name": "charts"}});
    if !version.is_empty() {
        spec["version"] = version.into();
    }
    helm_chart("podinfo", generation, spec)
}

fn sha256_file(p: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(p).unwrap()))
}

// helm runs as a blocking child process; the registry is a separate process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oci_version_ranges_resolve_as_helm_pull() {
    let reg = registry::start(None, None);
    let (repo, tgzs) = packaged();
    let home = tempfile::tempdir().unwrap();
    for t in &tgzs {
        push(home.path(), &reg, None, t, "charts");
    }
    let env = Env::new();
    let mut lookup = ChartLookup::default();
    // A static repository: no artifact, yet charts build from it.
    lookup.helm_repos.push(oci_repo(
        &format!("{}/", reg.url("charts")),
        json!({"insecure": true}),
    ));
    let base = reg.url("charts/podinfo");
    for range in [
        "",
        "*",
        "1.x",
        "~1.1",
        ">=1.0.0 <2.0.0",
        "^2",
        "2.0.0",
        "2.1.0+build.5",
        ">=1.2.0-0 <1.3.0",
        "<=1.10",
        ">= 1.0, < 1.5",
        "1.1.0 || 2.0.0",
        ">=3.0.0-0",
        "1.0.0 - 1.5",
        "<1",
    ] {
        let obj = chart(1, range);
        let (_, out) = env.ready(&obj, &lookup).await;
        let a = out.status.artifact.clone().unwrap();

        let dest = home.path().join(format!("pull-{}", a.revision));
        std::fs::create_dir_all(&dest).unwrap();
        let mut args = vec![
            "pull",
            base.as_str(),
            "--plain-http",
            "-d",
            dest.to_str().unwrap(),
        ];
        if !range.is_empty() {
            args.extend(["--version", range]);
        }
        helm(home.path(), &args);
        let pulled: Vec<String> = std::fs::read_dir(&dest)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            pulled,
            [format!("podinfo-{}.tgz", a.revision)],
            "range {range:?}"
        );
        assert_eq!(
            a.path,
            format!("helmchart/default/podinfo/podinfo-{}.tgz", a.revision)
        );
        // The chart layer stored as pushed and pulled.
        assert_eq!(
            sha256_file(&env.artifact_path(&out)),
            sha256_file(&dest.join(&pulled[0])),
            "range {range:?}"
        );
        let ready = cond::get(out.status.conditions.as_deref().unwrap(), cond::READY).unwrap();
        assert_eq!(
            ready.message,
            format!("pulled 'podinfo' chart with version '{}'", a.revision)
        );
        assert!(out.status.observed_source_artifact_revision.is_none());
    }

    // The artifact renders as the chart helm pushed.
    let obj = chart(1, "~1.1");
    let (_, out) = env.ready(&obj, &lookup).await;
    let original = tgzs[1].clone();
    assert_eq!(
        template(home.path(), &env.artifact_path(&out), &[]),
        template(home.path(), &original, &[])
    );
    drop(repo);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oci_credentials_tls_and_values_files() {
    let pki = pki();
    let reg = registry::start(Some(&pki), Some(("fluxuser", "s3cret")));
    let (repo, tgzs) = packaged();
    let home = tempfile::tempdir().unwrap();
    let ca = home.path().join("ca.crt");
    std::fs::write(&ca, &pki.ca).unwrap();
    helm(
        home.path(),
        &[
            "registry",
            "login",
            &reg.addr,
            "--username",
            "fluxuser",
            "--password",
            "s3cret",
            "--ca-file",
            ca.to_str().unwrap(),
        ],
    );
    for t in &tgzs[..5] {
        push(home.path(), &reg, Some(&ca), t, "charts");
    }
    let env = Env::new();
    let lookup = ChartLookup::default()
        .with_secret("ca", &[("ca.crt", pki.ca.as_bytes())])
        .with_secret(
            "docker",
            &[(
                ".dockerconfigjson",
                &registry::dockerconfigjson(&reg.addr, "fluxuser", "s3cret"),
            )],
        )
        .with_secret(
            "basic",
            &[("username", b"fluxuser"), ("password", b"s3cret")],
        )
        .with_secret("wrong", &[("username", b"fluxuser"), ("password", b"nope")])
        .with_secret(
            "elsewhere",
            &[(
                ".dockerconfigjson",
                &registry::dockerconfigjson("other.example:5000", "fluxuser", "s3cret"),
            )],
        );
    let url = reg.url("charts");
    let with = |extra: serde_json::Value| {
        let mut l = lookup.clone();
        l.helm_repos = vec![oci_repo(&url, extra)];
        l
    };

    for secret in ["docker", "basic"] {
        let l = with(json!({"certSecretRef": {"name": "ca"}, "secretRef": {"name": secret}}));
        let (_, out) = env.ready(&chart(1, "1.x"), &l).await;
        assert_eq!(out.status.artifact.unwrap().revision, "1.10.0", "{secret}");
    }

    // Values files repackage an OCI chart as for HTTP repositories: `+<generation>`.
    let l = with(json!({"certSecretRef": {"name": "ca"}, "secretRef": {"name": "docker"}}));
    let mut obj = chart(3, "2.0.0");
    obj.spec.values_files = Some(vec!["values.yaml".into(), "values.yaml".into()]);
    let (obj, out) = env.ready(&obj, &l).await;
    assert_eq!(out.status.artifact.as_ref().unwrap().revision, "2.0.0+3");
    // Identical but for the chart label, which carries the version.
    assert_eq!(
        template(home.path(), &env.artifact_path(&out), &[])
            .replace("podinfo-2.0.0_3", "podinfo-2.0.0"),
        template(home.path(), &tgzs[4], &[])
    );
    let good = obj.clone();

    // Bad input (each at a new generation, so that the stored chart is not reused): a clear
    // reason, the last artifact kept.
    let mut obj = good.clone();
    obj.metadata.generation = Some(10);
    let l = with(json!({"certSecretRef": {"name": "ca"}}));
    env.fails(
        &obj,
        &l,
        cond::FETCH_FAILED,
        "AuthenticationFailed",
        "failed to authenticate with the Helm repository",
    )
    .await;
    let l = with(json!({"certSecretRef": {"name": "ca"}, "secretRef": {"name": "wrong"}}));
    env.fails(&obj, &l, cond::FETCH_FAILED, "AuthenticationFailed", "401")
        .await;
    let l = with(json!({"certSecretRef": {"name": "ca"}, "secretRef": {"name": "elsewhere"}}));
    env.fails(
        &obj,
        &l,
        cond::FETCH_FAILED,
        "AuthenticationFailed",
        &format!(
            "failed to configure OCI registry authentication: no auth config for '{}' in the docker-registry Secret 'elsewhere'",
            reg.addr
        ),
    )
    .await;
    let l = with(json!({"certSecretRef": {"name": "ca"}, "secretRef": {"name": "docker"}}));
    let mut nomatch = good.clone();
    nomatch.spec.version = Some("~9".into());
    nomatch.metadata.generation = Some(4);
    env.fails(
        &nomatch,
        &l,
        cond::FETCH_FAILED,
        "ChartPullError",
        "chart pull error: failed to get chart version for remote reference: could not locate a version matching provided version string ~9",
    )
    .await;
    let mut missing = good.clone();
    missing.spec.version = Some("7.7.7".into());
    missing.metadata.generation = Some(4);
    env.fails(
        &missing,
        &l,
        cond::FETCH_FAILED,
        "ChartPullError",
        &format!(
            "chart pull error: failed to download chart for remote reference: failed to get '{url}/podinfo:7.7.7'"
        ),
    )
    .await;
    // Not a chart: a Flux artifact has no Helm config nor chart layer.
    let mut other = good.clone();
    other.spec.chart = Some("notachart".into());
    other.spec.version = Some("1.0.0".into());
    other.metadata.generation = Some(5);
    reg.push(
        "charts/notachart",
        Some("1.0.0"),
        "application/vnd.cncf.flux.config.v1+json",
        &[Layer::flux(&[("a.yaml", "a: 1\n")])],
        &BTreeMap::new(),
    )
    .await;
    env.fails(
        &other,
        &l,
        cond::FETCH_FAILED,
        "ChartPullError",
        "could not load config with mediatype application/vnd.cncf.helm.config.v1+json",
    )
    .await;
    // A chart layer with `..` paths.
    reg.push(
        "charts/evil",
        Some("1.0.0"),
        registry::HELM_CONFIG,
        &[Layer {
            media_type: HELM_CHART.into(),
            data: registry::hostile_tar_gz("evil/../../pwned", "x"),
        }],
        &BTreeMap::new(),
    )
    .await;
    let mut evil = good.clone();
    evil.spec.chart = Some("evil".into());
    evil.spec.version = Some("1.0.0".into());
    evil.spec.values_files = None;
    evil.metadata.generation = Some(6);
    env.fails(
        &evil,
        &l,
        cond::FETCH_FAILED,
        "ChartPullError",
        "chart illegally references parent directory",
    )
    .await;
    // An unreachable registry.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut l = lookup.clone();
    l.helm_repos = vec![oci_repo(
        &format!("oci://127.0.0.1:{port}/charts"),
        json!({"insecure": true}),
    )];
    let mut gone = good.clone();
    gone.spec.version = Some("1.x".into());
    gone.metadata.generation = Some(7);
    let out = env
        .fails(
            &gone,
            &l,
            cond::FETCH_FAILED,
            "ChartPullError",
            "could not get tags for \"podinfo\"",
        )
        .await;
    assert!(!matches!(out.result, PipelineResult::Stalled { .. }));
    assert!(helm_try(home.path(), &["version"]).is_ok());
    drop(repo);
}

/// cosign with public keys over a chart pushed by helm: the signature of the chart's manifest
/// digest verifies it (SourceVerified=True); another key's signature does not
/// (ChartVerificationError, SourceVerified=False, nothing stored); a missing key secret is a
/// VerificationError.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oci_chart_signatures_are_verified_with_cosign_keys() {
    let reg = registry::start(None, None);
    let (repo, tgzs) = packaged();
    let home = tempfile::tempdir().unwrap();
    push(home.path(), &reg, None, &tgzs[0], "charts");
    push(home.path(), &reg, None, &tgzs[1], "charts");
    let digest_of = |tag: &str| {
        let url = format!("http://{}/v2/charts/podinfo/manifests/{tag}", reg.addr);
        async move {
            reqwest::Client::new()
                .head(url)
                .header("accept", registry::OCI_MANIFEST)
                .send()
                .await
                .unwrap()
                .headers()["docker-content-digest"]
                .to_str()
                .unwrap()
                .to_string()
        }
    };
    let keys = tempfile::tempdir().unwrap();
    let (good, good_pub) = registry::openssl_p256_key(keys.path(), "good");
    let (other, other_pub) = registry::openssl_p256_key(keys.path(), "other");
    let reference = format!("{}/charts/podinfo", reg.addr);
    // 1.0.0 signed by the trusted key, 1.1.0 by another one.
    for (tag, key) in [("1.0.0", &good), ("1.1.0", &other)] {
        let digest = digest_of(tag).await;
        let payload = registry::simple_signing_payload(&reference, &digest);
        let sig = registry::openssl_sign(keys.path(), key, &payload);
        reg.push_signature("charts/podinfo", &digest, &[(payload, sig)])
            .await;
    }
    let env = Env::new();
    let mut lookup = ChartLookup::default()
        .with_secret("cosign", &[("cosign.pub", good_pub.as_slice())])
        .with_secret("others", &[("cosign.pub", other_pub.as_slice())]);
    lookup
        .helm_repos
        .push(oci_repo(&reg.url("charts"), json!({"insecure": true})));
    let verified = |version: &str, secret: &str, generation: i64| {
        let mut c = chart(generation, version);
        c.spec.verify = Some(
            serde_json::from_value(json!({"provider": "cosign", "secretRef": {"name": secret}}))
                .unwrap(),
        );
        c
    };
    let (obj, out) = env.ready(&verified("1.0.0", "cosign", 1), &lookup).await;
    let conds = out.status.conditions.as_deref().unwrap();
    let v = cond::get(conds, cond::SOURCE_VERIFIED).unwrap();
    assert_eq!(
        (v.status.as_str(), v.reason.as_str(), v.message.as_str()),
        ("True", "Succeeded", "verified signature of version 1.0.0")
    );

    // Signed, but not by a trusted key.
    let mut bad = verified("1.1.0", "cosign", 2);
    bad.status = obj.status.clone();
    let out = env.run(&bad, &lookup).await;
    let conds = out.status.conditions.as_deref().unwrap();
    let ready = cond::get(conds, cond::READY).unwrap();
    assert_eq!(ready.status, "False");
    assert_eq!(ready.reason, "ChartVerificationError", "{}", ready.message);
    assert_eq!(
        ready.message,
        format!(
            "chart verification error: no matching signatures were found for '{}/charts/podinfo:1.1.0'",
            reg.addr
        )
    );
    let v = cond::get(conds, cond::SOURCE_VERIFIED).unwrap();
    assert_eq!(
        (v.status.as_str(), v.reason.as_str()),
        ("False", "VerificationError")
    );
    assert_eq!(
        out.status.artifact.as_ref().unwrap().revision,
        "1.0.0",
        "the verified artifact is kept"
    );
    assert!(out.new_artifact.is_none());
    // The same with the other key trusted verifies it.
    env.ready(&verified("1.1.0", "others", 3), &lookup).await;

    // A missing key secret.
    let mut missing = verified("1.0.0", "absent", 4);
    missing.status = obj.status.clone();
    let out = env.run(&missing, &lookup).await;
    let ready = cond::get(out.status.conditions.as_deref().unwrap(), cond::READY).unwrap();
    assert_eq!(ready.reason, "VerificationError", "{}", ready.message);
    assert_eq!(
        ready.message,
        "failed to verify the signature using provider 'cosign': secrets \"absent\" not found"
    );
    drop(repo);
}
