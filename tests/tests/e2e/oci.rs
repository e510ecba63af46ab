//! OCI end to end: manifests pushed with `ferroflux push artifact` to a real registry (Debian
//! `docker-registry` on 127.0.0.1), an OCIRepository and a Kustomization apply them; a new
//! push under the same tag, seen by the OCIRepository on `reconcile.fluxcd.io/requestedAt`, is
//! applied within a second of the OCIRepository's new artifact revision.

use std::path::Path;
use std::time::{Duration, Instant};

use ferroflux_api::{Kustomization, OCIRepository};
use ferroflux_e2e::{Cluster, ready};
use ferroflux_testsupport::registry;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::{CONVERGE, configmap, kustomization, namespace};

const SOURCE_URL: &str = "https://github.com/example/app.git";

/// `ferroflux push artifact` (the CLI's own command code, run in-process) of `dir/manifests`.
async fn push(url: String, dir: &Path, revision: String) {
    let path = dir.join("manifests");
    tokio::task::spawn_blocking(move || {
        ferroflux_cli::artifact::run([
            "push",
            "artifact",
            &url,
            "--path",
            path.to_str().unwrap_or_default(),
            "--source",
            SOURCE_URL,
            "--revision",
            &revision,
        ])
        .map_err(|e| format!("{e:#}"))
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| panic!("ferroflux push artifact failed: {e}"));
}

/// The digest a tag points at, read with the registry API.
async fn tag_digest(addr: &str, repo: &str, tag: &str) -> String {
    let resp = reqwest::Client::new()
        .head(format!("http://{addr}/v2/{repo}/manifests/{tag}"))
        .header("Accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{resp:?}");
    resp.headers()["docker-content-digest"]
        .to_str()
        .unwrap()
        .to_string()
}

fn artifact_revision(o: &OCIRepository) -> Option<String> {
    o.status
        .as_ref()?
        .artifact
        .as_ref()
        .map(|a| a.revision.clone())
}

fn applied_revision(k: &Kustomization) -> Option<String> {
    k.status.as_ref()?.last_applied_revision.clone()
}

#[tokio::test]
async fn pushed_artifact_is_applied_and_a_new_push_within_a_second() {
    let reg = registry::start(None);
    let cluster = Cluster::start().await.unwrap();
    cluster.apply(namespace("apps")).await.unwrap();
    let work = tempfile::tempdir().unwrap();
    let manifests = work.path().join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    std::fs::write(manifests.join("a.yaml"), configmap("a", &[("k", "1")])).unwrap();
    std::fs::write(manifests.join("b.yaml"), configmap("b", &[("k", "1")])).unwrap();
    let url = format!("oci://{}/e2e/manifests:latest", reg.addr);
    let rev1 = format!("main@sha1:{}", "1".repeat(40));
    push(url.clone(), work.path(), rev1.clone()).await;
    let digest1 = tag_digest(&reg.addr, "e2e/manifests", "latest").await;

    cluster
        .apply(json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "OCIRepository",
            "metadata": {"name": "app", "namespace": "flux-system"},
            "spec": {
                "url": format!("oci://{}/e2e/manifests", reg.addr),
                "ref": {"tag": "latest"},
                "interval": "10m",
                "insecure": true
            }
        }))
        .await
        .unwrap();
    let mut ks = kustomization("app", "app", "./", json!({}));
    ks["spec"]["sourceRef"] = json!({"kind": "OCIRepository", "name": "app"});
    cluster.apply(ks).await.unwrap();

    let want1 = format!("latest@{digest1}");
    let k = cluster
        .wait_kustomization("flux-system", "app", CONVERGE, |k| {
            applied_revision(k).as_deref() == Some(want1.as_str())
                && ready(k).is_some_and(|(s, _, _)| s == "True")
        })
        .await
        .unwrap();
    assert_eq!(applied_revision(&k).unwrap(), want1);
    let ocis: Api<OCIRepository> = Api::namespaced(cluster.client.clone(), "flux-system");
    let oci = ocis.get("app").await.unwrap();
    let artifact = oci.status.as_ref().unwrap().artifact.clone().unwrap();
    assert_eq!(artifact.revision, want1);
    let md = artifact.metadata.unwrap_or_default();
    assert_eq!(md["org.opencontainers.image.source"], SOURCE_URL);
    assert_eq!(md["org.opencontainers.image.revision"], rev1);
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), "apps");
    assert_eq!(cms.get("a").await.unwrap().data.unwrap()["k"], "1");
    assert!(cms.get("b").await.is_ok());

    // A new push under the same tag: b changes, a goes (pruned).
    std::fs::remove_file(manifests.join("a.yaml")).unwrap();
    std::fs::write(manifests.join("b.yaml"), configmap("b", &[("k", "2")])).unwrap();
    let rev2 = format!("main@sha1:{}", "2".repeat(40));
    push(url.clone(), work.path(), rev2.clone()).await;
    let digest2 = tag_digest(&reg.addr, "e2e/manifests", "latest").await;
    assert_ne!(digest1, digest2);
    let want2 = format!("latest@{digest2}");

    // Trigger the OCIRepository and time from its new artifact revision to the
    // Kustomization's lastAppliedRevision.
    let patch = json!({"metadata": {"annotations": {
        "reconcile.fluxcd.io/requestedAt": format!("{:?}", std::time::SystemTime::now())}}});
    ocis.patch("app", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let kss: Api<Kustomization> = Api::namespaced(cluster.client.clone(), "flux-system");
    let deadline = Instant::now() + CONVERGE;
    let mut seen: Option<Instant> = None;
    let applied = loop {
        assert!(
            Instant::now() < deadline,
            "the new push was not applied in {CONVERGE:?}:\n--- kustomize-controller log:\n{}\n--- source-controller log:\n{}",
            cluster.log(ferroflux_e2e::KUSTOMIZE),
            cluster.log(ferroflux_e2e::SOURCE)
        );
        let (oci, k) = tokio::join!(ocis.get("app"), kss.get("app"));
        let now = Instant::now();
        if seen.is_none()
            && oci.as_ref().ok().and_then(artifact_revision).as_deref() == Some(want2.as_str())
        {
            seen = Some(now);
        }
        if let Ok(k) = k
            && applied_revision(&k).as_deref() == Some(want2.as_str())
        {
            // Seen by the Kustomization no later than now; the OCIRepository had it too.
            break now.duration_since(seen.unwrap_or(now));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    eprintln!("OCIRepository artifact {want2} applied by the Kustomization after {applied:?}");
    assert!(
        applied < Duration::from_secs(1),
        "applied {applied:?} after the OCIRepository stored the new artifact"
    );
    let k = cluster
        .wait_kustomization("flux-system", "app", CONVERGE, |k| {
            ready(k).is_some_and(|(s, _, _)| s == "True")
                && applied_revision(k).as_deref() == Some(want2.as_str())
        })
        .await
        .unwrap();
    assert_eq!(applied_revision(&k).unwrap(), want2);
    assert_eq!(cms.get("b").await.unwrap().data.unwrap()["k"], "2");
    let gone = Instant::now() + CONVERGE;
    while cms.get("a").await.is_ok() {
        assert!(Instant::now() < gone, "ConfigMap a was not pruned");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let oci = ocis.get("app").await.unwrap();
    let md = oci
        .status
        .unwrap()
        .artifact
        .unwrap()
        .metadata
        .unwrap_or_default();
    assert_eq!(md["org.opencontainers.image.revision"], rev2);
}
