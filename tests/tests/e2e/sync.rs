//! A commit becomes Ready with the new revision; a removed file's object is pruned; an object
//! changed by hand is put back.

use std::time::{Duration, Instant};

use ferroflux_e2e::{Cluster, ready_at};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::{CONVERGE, configmap, deployment, kustomization, namespace};

#[tokio::test]
async fn commit_apply_prune_and_drift_correction() {
    let cluster = Cluster::start().await.unwrap();
    cluster.apply(namespace("apps")).await.unwrap();
    let repo = cluster
        .repo(
            "app",
            &[
                ("deploy/a.yaml", &configmap("a", &[("k", "1")])),
                ("deploy/b.yaml", &configmap("b", &[("k", "1")])),
                ("deploy/web.yaml", &deployment("web", "")),
            ],
        )
        .unwrap();
    let first = ferroflux_e2e::git(&repo.work, &["rev-parse", "HEAD"]).unwrap();
    cluster.git_repository(&repo).await.unwrap();
    cluster
        .apply(kustomization(
            "app",
            "app",
            "./deploy",
            json!({"wait": true}),
        ))
        .await
        .unwrap();

    let ks = cluster
        .wait_kustomization("flux-system", "app", crate::CONVERGE, |k| {
            ready_at(k, &first)
        })
        .await
        .unwrap();
    let status = ks.status.clone().unwrap();
    assert_eq!(
        status.last_applied_revision.unwrap(),
        format!("main@sha1:{first}")
    );
    let ids: Vec<String> = status
        .inventory
        .unwrap()
        .entries
        .iter()
        .map(|e| format!("{} {}", e.id, e.v))
        .collect();
    assert_eq!(
        ids,
        vec![
            "apps_a__ConfigMap v1",
            "apps_b__ConfigMap v1",
            "apps_web_apps_Deployment v1"
        ]
    );
    let conditions = ks
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let healthy = conditions.iter().find(|c| c.type_ == "Healthy").unwrap();
    assert_eq!(
        healthy.status, "True",
        "wait: true checks health: {healthy:?}"
    );
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), "apps");
    let a = cms.get("a").await.unwrap();
    let labels = a.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels["kustomize.toolkit.fluxcd.io/name"], "app");
    assert_eq!(
        labels["kustomize.toolkit.fluxcd.io/namespace"],
        "flux-system"
    );
    let managers: Vec<String> = a
        .metadata
        .managed_fields
        .unwrap_or_default()
        .iter()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert!(
        managers.iter().any(|m| m == "kustomize-controller"),
        "applied with the upstream field manager: {managers:?}"
    );

    // Events: a core/v1 Event for the Kustomization with upstream's reason and message, and
    // the reconcile metrics on the controller's /metrics.
    let events: Api<k8s_openapi::api::core::v1::Event> =
        Api::namespaced(cluster.client.clone(), "flux-system");
    // The event follows the final status write, so it may land a moment after Ready.
    let deadline = Instant::now() + CONVERGE;
    let all = loop {
        let all = events.list(&Default::default()).await.unwrap().items;
        let finished = all.iter().any(|e| {
            e.involved_object.kind.as_deref() == Some("Kustomization")
                && e.reason.as_deref() == Some("ReconciliationSucceeded")
                && e.message
                    .as_deref()
                    .is_some_and(|m| m.starts_with("Reconciliation finished in "))
        });
        if finished {
            break all;
        }
        assert!(
            Instant::now() < deadline,
            "no 'Reconciliation finished' event in {all:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let applied = all.iter().any(|e| {
        e.message.as_deref().is_some_and(|m| {
            m.contains("ConfigMap/apps/a created") && m.contains("Deployment/apps/web created")
        })
    });
    assert!(applied, "the change set is reported in an event");
    let metrics_addr = cluster.metrics_addr(ferroflux_e2e::KUSTOMIZE).unwrap();
    let metrics = reqwest::get(format!("http://{metrics_addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("gotk_reconcile_duration_seconds_count")
                && l.contains("kind=\"Kustomization\"")
                && l.contains("name=\"app\"")),
        "reconcile duration recorded per Kustomization"
    );

    // A commit that removes a file and changes another: pruned and updated, and the
    // Kustomization reports the new revision. Latency is measured from the push.
    let pushed = Instant::now();
    let second = repo
        .commit(
            &[
                ("deploy/a.yaml", None),
                ("deploy/b.yaml", Some(&configmap("b", &[("k", "2")]))),
            ],
            "remove a, change b",
        )
        .unwrap();
    cluster.request_fetch("app").await.unwrap();
    cluster
        .wait_kustomization("flux-system", "app", CONVERGE, |k| ready_at(k, &second))
        .await
        .unwrap();
    let latency = pushed.elapsed();
    eprintln!("commit-to-applied latency (request + fetch + events + apply): {latency:?}");
    assert!(cms.get_opt("a").await.unwrap().is_none(), "a was pruned");
    let b = cms.get("b").await.unwrap();
    assert_eq!(b.data.unwrap()["k"], "2");

    // Drift: someone edits b by hand; the next reconcile puts it back.
    let patch = json!({"data": {"k": "hand-edited", "extra": "x"}});
    cms.patch(
        "b",
        &PatchParams::apply("e2e-hand-edit"),
        &Patch::Merge(&patch),
    )
    .await
    .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), "apps");
    let scale = json!({"spec": {"replicas": 5}});
    deployments
        .patch(
            "web",
            &PatchParams::apply("kubectl").force(),
            &Patch::Apply(&json!({
                "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                "spec": scale["spec"].clone()
            })),
        )
        .await
        .unwrap();
    cluster
        .request_kustomization("flux-system", "app")
        .await
        .unwrap();
    let deadline = Instant::now() + CONVERGE;
    loop {
        let b = cms.get("b").await.unwrap();
        let web = deployments.get("web").await.unwrap();
        let data = b.data.clone().unwrap_or_default();
        let replicas = web.spec.as_ref().and_then(|s| s.replicas);
        if data.get("k").map(String::as_str) == Some("2") && replicas == Some(1) {
            assert_eq!(
                data.get("extra").map(String::as_str),
                Some("x"),
                "a field someone else added and we never applied is left alone"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "drift not corrected: b={data:?} replicas={replicas:?}\n{}",
            cluster.log(ferroflux_e2e::KUSTOMIZE)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
