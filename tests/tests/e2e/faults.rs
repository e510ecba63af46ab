//! Faults: kill -9 kustomize-controller in the middle of an apply, restart the API server, stop
//! the source server; after recovery everything converges and nothing is lost or left behind.

use std::time::{Duration, Instant};

use ferroflux_api::GitRepository;
use ferroflux_e2e::{Cluster, KUSTOMIZE, ready_at};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams};
use serde_json::json;

use crate::{CONVERGE, configmap, kustomization, namespace};

fn many_configmaps(n: usize, value: &str) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            (
                format!("deploy/cm-{i:03}.yaml"),
                configmap(&format!("cm-{i:03}"), &[("k", value)]),
            )
        })
        .collect()
}

async fn values(cluster: &Cluster) -> Vec<(String, String)> {
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), "apps");
    let mut out: Vec<(String, String)> = cms
        .list(&ListParams::default().labels("kustomize.toolkit.fluxcd.io/name=faults"))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|c| {
            let name = c.metadata.name.clone().unwrap_or_default();
            let v = c
                .data
                .unwrap_or_default()
                .get("k")
                .cloned()
                .unwrap_or_default();
            (name, v)
        })
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn recovers_from_kill_api_restart_and_source_outage() {
    let mut cluster = Cluster::start().await.unwrap();
    cluster.apply(namespace("apps")).await.unwrap();
    let files = many_configmaps(150, "v1");
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let repo = cluster.repo("faults", &refs).unwrap();
    let first = ferroflux_e2e::git(&repo.work, &["rev-parse", "HEAD"]).unwrap();
    cluster.git_repository(&repo).await.unwrap();
    cluster
        .apply(kustomization("faults", "faults", "./deploy", json!({})))
        .await
        .unwrap();
    cluster
        .wait_kustomization("flux-system", "faults", CONVERGE, |k| ready_at(k, &first))
        .await
        .unwrap();
    assert_eq!(values(&cluster).await.len(), 150);

    // 1. kill -9 kustomize-controller while it applies a new revision (every object changes,
    //    ten are removed).
    let mut change: Vec<(String, Option<String>)> = many_configmaps(140, "v2")
        .into_iter()
        .map(|(p, c)| (p, Some(c)))
        .collect();
    for i in 140..150 {
        change.push((format!("deploy/cm-{i:03}.yaml"), None));
    }
    let change_refs: Vec<(&str, Option<&str>)> = change
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_deref()))
        .collect();
    let second = repo.commit(&change_refs, "v2").unwrap();
    cluster.request_fetch("faults").await.unwrap();
    let deadline = Instant::now() + CONVERGE;
    loop {
        let vals = values(&cluster).await;
        if vals.iter().any(|(_, v)| v == "v2") {
            break;
        }
        assert!(Instant::now() < deadline, "the apply never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cluster.kill_controller(KUSTOMIZE).await;
    let mid = values(&cluster).await;
    eprintln!(
        "killed mid-apply: {} of 150 objects already at v2",
        mid.iter().filter(|(_, v)| v == "v2").count()
    );
    cluster.start_controller(KUSTOMIZE).await.unwrap();
    let k = cluster
        .wait_kustomization("flux-system", "faults", CONVERGE, |k| ready_at(k, &second))
        .await
        .unwrap();
    let vals = values(&cluster).await;
    assert_eq!(
        vals.len(),
        140,
        "the ten removed objects were pruned after the restart"
    );
    assert!(
        vals.iter().all(|(_, v)| v == "v2"),
        "every object at v2: {vals:?}"
    );
    assert_eq!(k.status.unwrap().inventory.unwrap().entries.len(), 140);

    // 2. The API server goes away for a few seconds and comes back with its state.
    cluster.restart_api(Duration::from_secs(2)).await.unwrap();
    let third = repo
        .commit(
            &[(
                "deploy/cm-000.yaml",
                Some(&configmap("cm-000", &[("k", "v3")])),
            )],
            "v3",
        )
        .unwrap();
    // The controllers reconnect on their own; the request goes through the new server.
    let deadline = Instant::now() + CONVERGE;
    while cluster.request_fetch("faults").await.is_err() {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    cluster
        .wait_kustomization("flux-system", "faults", CONVERGE, |k| ready_at(k, &third))
        .await
        .unwrap();
    let vals = values(&cluster).await;
    assert_eq!(vals.len(), 140);
    assert_eq!(vals[0], ("cm-000".to_string(), "v3".to_string()));

    // 3. The git server stops: the source fails, the applied state stays; when the server is
    //    back, the next commit is applied.
    cluster.stop_git();
    let fourth = repo
        .commit(
            &[(
                "deploy/cm-001.yaml",
                Some(&configmap("cm-001", &[("k", "v4")])),
            )],
            "v4",
        )
        .unwrap();
    cluster.request_fetch("faults").await.unwrap();
    let repos: Api<GitRepository> = Api::namespaced(cluster.client.clone(), "flux-system");
    let deadline = Instant::now() + CONVERGE;
    loop {
        let r = repos.get("faults").await.unwrap();
        let ready = r
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready").cloned());
        if ready.as_ref().is_some_and(|c| c.status == "False") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "source did not report the outage: {ready:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let k = cluster
        .wait_kustomization("flux-system", "faults", CONVERGE, |k| ready_at(k, &third))
        .await
        .unwrap();
    assert!(
        k.status
            .unwrap()
            .last_applied_revision
            .unwrap()
            .ends_with(&third)
    );
    cluster.start_git().await.unwrap();
    cluster.request_fetch("faults").await.unwrap();
    cluster
        .wait_kustomization("flux-system", "faults", CONVERGE, |k| ready_at(k, &fourth))
        .await
        .unwrap();
    let vals = values(&cluster).await;
    assert_eq!(vals.len(), 140);
    assert_eq!(vals[1], ("cm-001".to_string(), "v4".to_string()));
}
