//! helm-controller end to end with the real source-controller: a Helm repository served over
//! HTTP (charts packaged and indexed by the real helm), a HelmRepository, and a HelmRelease
//! whose chart template makes the HelmChart. Install, upgrade on a new chart version published
//! to the repository, uninstall on delete — after each, the real `helm list/history/get`
//! on the same API server agrees.

use std::time::{Duration, Instant};

use ferroflux_api::{HelmChart, HelmRelease, HelmRepository};
use ferroflux_e2e::helm_repo::{helm, publish, serve};
use ferroflux_e2e::{Cluster, HELM, request_reconcile};
use kube::api::{Api, DeleteParams};
use serde_json::{Value, json};

async fn wait_release(
    cluster: &Cluster,
    what: &str,
    check: impl Fn(&HelmRelease) -> bool,
) -> HelmRelease {
    let api: Api<HelmRelease> = Api::namespaced(cluster.client.clone(), "flux-system");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let hr = api.get_opt("web").await.unwrap();
        if let Some(hr) = &hr
            && check(hr)
        {
            return hr.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {:?}\n{}\n{}",
            hr.and_then(|h| h.status),
            cluster.log(HELM),
            cluster.log(ferroflux_e2e::SOURCE)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ready(hr: &HelmRelease, reason: &str, version: &str) -> bool {
    let st = hr.status.as_ref();
    st.and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True" && c.reason == reason)
        && st.and_then(|s| s.last_attempted_revision.as_deref()) == Some(version)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helmrelease_from_a_helm_repository_through_source_controller() {
    let mut cluster = Cluster::start().await.unwrap();
    cluster.start_controller(HELM).await.unwrap();
    let home = cluster.dir.path().join("helm-home");
    std::fs::create_dir_all(&home).unwrap();
    let repo = cluster.dir.path().join("chart-repo");
    std::fs::create_dir_all(&repo).unwrap();
    let url = serve(repo.clone()).await.unwrap();
    publish(&home, &repo, &url, "web", "0.1.0").unwrap();
    let kc = cluster.kubeconfig.clone();
    let h = |args: &[&str]| -> Value {
        serde_json::from_str(&helm(&home, &kc, args).unwrap()).unwrap()
    };

    cluster
        .apply(json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "HelmRepository",
            "metadata": {"name": "charts", "namespace": "flux-system"},
            "spec": {"url": url, "interval": "1h"}
        }))
        .await
        .unwrap();
    cluster
        .apply(json!({
            "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
            "metadata": {"name": "web", "namespace": "flux-system"},
            "spec": {
                "interval": "1h",
                "targetNamespace": "default",
                "releaseName": "web",
                "chart": {"spec": {"chart": "web", "version": "*", "interval": "1h",
                                   "sourceRef": {"kind": "HelmRepository", "name": "charts"}}},
                "values": {"replicaCount": 2}
            }
        }))
        .await
        .unwrap();

    // install
    let hr = wait_release(&cluster, "installed", |hr| {
        ready(hr, "InstallSucceeded", "0.1.0")
    })
    .await;
    assert_eq!(
        hr.status.unwrap().helm_chart.as_deref(),
        Some("flux-system/flux-system-web")
    );
    let list = h(&["list", "-n", "flux-system", "-o", "json"]);
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list[0]["name"], "web");
    assert_eq!(list[0]["namespace"], "default");
    assert_eq!(list[0]["chart"], "web-0.1.0");
    assert_eq!(list[0]["revision"], "1");
    assert_eq!(list[0]["status"], "deployed");
    assert_eq!(
        h(&["get", "values", "web", "-n", "flux-system", "-o", "json"]),
        json!({"replicaCount": 2})
    );
    let manifest = helm(&home, &kc, &["get", "manifest", "web", "-n", "flux-system"]).unwrap();
    assert!(manifest.contains("replicas: 2"), "{manifest}");

    // a new chart version in the repository: source-controller's HelmChart picks it up, the
    // HelmRelease upgrades
    publish(&home, &repo, &url, "web", "0.2.0").unwrap();
    let repos: Api<HelmRepository> = Api::namespaced(cluster.client.clone(), "flux-system");
    request_reconcile(&repos, "charts").await.unwrap();
    wait_release(&cluster, "upgraded", |hr| {
        ready(hr, "UpgradeSucceeded", "0.2.0")
    })
    .await;
    let hist = h(&["history", "web", "-n", "flux-system", "-o", "json"]);
    let states: Vec<(i64, &str, &str, &str)> = hist
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["revision"].as_i64().unwrap(),
                r["status"].as_str().unwrap(),
                r["chart"].as_str().unwrap(),
                r["description"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            (1, "superseded", "web-0.1.0", "Install complete"),
            (2, "deployed", "web-0.2.0", "Upgrade complete"),
        ]
    );

    // delete: uninstalled, the template's HelmChart gone
    let api: Api<HelmRelease> = Api::namespaced(cluster.client.clone(), "flux-system");
    api.delete("web", &DeleteParams::default()).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while api.get_opt("web").await.unwrap().is_some() {
        assert!(
            Instant::now() < deadline,
            "not deleted:\n{}",
            cluster.log(HELM)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(h(&["list", "-n", "flux-system", "-o", "json"]), json!([]));
    let charts: Api<HelmChart> = Api::namespaced(cluster.client.clone(), "flux-system");
    assert!(charts.get_opt("flux-system-web").await.unwrap().is_none());
}
