//! The workload simulator: readiness (and failure) the way workload controllers report it.

use crate::common::*;
use crate::objects::deployment;
use ferroflux_testenv::{FAIL_ANNOTATION, Options};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use std::time::Duration;

async fn wait_for<K, F>(api: &Api<K>, name: &str, pred: F) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    F: Fn(&K) -> bool,
{
    for _ in 0..300 {
        let o = api.get(name).await.unwrap();
        if pred(&o) {
            return o;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "condition never met for {name}: {:?}",
        api.get(name).await.unwrap()
    );
}

fn cond(
    conds: &Option<Vec<k8s_openapi::api::apps::v1::DeploymentCondition>>,
    t: &str,
) -> Option<(String, String)> {
    conds
        .as_ref()?
        .iter()
        .find(|c| c.type_ == t)
        .map(|c| (c.status.clone(), c.reason.clone().unwrap_or_default()))
}

#[tokio::test]
async fn workloads_become_ready_or_fail() {
    let delay = Duration::from_millis(300);
    let (_env, client) = env_with(Options {
        simulate_workloads: Some(delay),
        ..Default::default()
    })
    .await;
    let deps: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let start = std::time::Instant::now();
    deps.create(&PostParams::default(), &deployment("ok"))
        .await
        .unwrap();
    let immediately = deps.get("ok").await.unwrap();
    if start.elapsed() < delay {
        assert!(immediately.status.is_none(), "not ready before the delay");
    }
    let d = wait_for(&deps, "ok", |d| {
        d.status.as_ref().and_then(|s| s.ready_replicas) == Some(1)
    })
    .await;
    assert!(start.elapsed() >= delay);
    let s = d.status.unwrap();
    assert_eq!(s.observed_generation, Some(1));
    assert_eq!(
        cond(&s.conditions, "Available"),
        Some(("True".into(), "MinimumReplicasAvailable".into()))
    );
    // a spec change makes it progress again, to the new generation
    deps.patch(
        "ok",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 3}})),
    )
    .await
    .unwrap();
    wait_for(&deps, "ok", |d| {
        d.status.as_ref().and_then(|s| s.observed_generation) == Some(2)
            && d.status.as_ref().and_then(|s| s.ready_replicas) == Some(3)
    })
    .await;

    let mut bad = deployment("bad");
    bad.metadata.annotations =
        Some([(FAIL_ANNOTATION.to_string(), "image pull failed".to_string())].into());
    deps.create(&PostParams::default(), &bad).await.unwrap();
    let d = wait_for(&deps, "bad", |d| d.status.is_some()).await;
    let s = d.status.unwrap();
    assert_eq!(
        cond(&s.conditions, "Progressing"),
        Some(("False".into(), "ProgressDeadlineExceeded".into()))
    );
    assert_eq!(s.ready_replicas, None);

    let sts: Api<StatefulSet> = Api::namespaced(client.clone(), "default");
    sts.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "db"}, "spec": {"replicas": 2,
        "serviceName": "db", "selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}},
        "spec": {"containers": [{"name": "c", "image": "x"}]}}}})).unwrap()).await.unwrap();
    let s = wait_for(&sts, "db", |s| {
        s.status
            .as_ref()
            .is_some_and(|st| st.ready_replicas == Some(2))
    })
    .await;
    assert_eq!(s.status.unwrap().observed_generation, Some(1));

    let ds: Api<DaemonSet> = Api::namespaced(client.clone(), "default");
    ds.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "agent"}, "spec": {
        "selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}},
        "spec": {"containers": [{"name": "c", "image": "x"}]}}}}))
        .unwrap(),
    )
    .await
    .unwrap();
    wait_for(&ds, "agent", |d| {
        d.status
            .as_ref()
            .is_some_and(|s| s.number_ready == 1 && s.desired_number_scheduled == 1)
    })
    .await;

    let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
    let job = |name: &str, fail: bool| -> Job {
        let mut v = json!({"metadata": {"name": name}, "spec": {"template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "c", "image": "x"}]}}}});
        if fail {
            v["metadata"]["annotations"] = json!({FAIL_ANNOTATION: "exit 1"});
        }
        serde_json::from_value(v).unwrap()
    };
    jobs.create(&PostParams::default(), &job("good", false))
        .await
        .unwrap();
    jobs.create(&PostParams::default(), &job("broken", true))
        .await
        .unwrap();
    let has = |j: &Job, t: &str| {
        j.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == t && c.status == "True"))
    };
    let g = wait_for(&jobs, "good", |j| has(j, "Complete")).await;
    assert_eq!(g.status.unwrap().succeeded, Some(1));
    wait_for(&jobs, "broken", |j| has(j, "Failed")).await;
}

#[tokio::test]
async fn pods_claims_and_load_balancers() {
    use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Service};
    let (_env, client) = env_with(Options {
        simulate_workloads: Some(Duration::from_millis(100)),
        ..Default::default()
    })
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod = |name: &str, restart: &str, fail: bool| -> Pod {
        let mut v = json!({"metadata": {"name": name}, "spec": {"restartPolicy": restart, "containers": [{"name": "c", "image": "x"}]}});
        if fail {
            v["metadata"]["annotations"] = json!({FAIL_ANNOTATION: "boom"});
        }
        serde_json::from_value(v).unwrap()
    };
    pods.create(&PostParams::default(), &pod("server", "Always", false))
        .await
        .unwrap();
    pods.create(&PostParams::default(), &pod("test-hook", "Never", false))
        .await
        .unwrap();
    pods.create(&PostParams::default(), &pod("broken", "Never", true))
        .await
        .unwrap();
    let phase = |p: &Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_default()
    };
    let p = wait_for(&pods, "server", |p| phase(p) == "Running").await;
    let ready = p
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, "True");
    wait_for(&pods, "test-hook", |p| phase(p) == "Succeeded").await;
    wait_for(&pods, "broken", |p| phase(p) == "Failed").await;

    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    pvcs.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "data"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}}}))
        .unwrap(),
    )
    .await
    .unwrap();
    let c = wait_for(&pvcs, "data", |c| {
        c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound")
    })
    .await;
    assert_eq!(c.status.unwrap().capacity.unwrap()["storage"].0, "2Gi");

    let svcs: Api<Service> = Api::namespaced(client.clone(), "default");
    svcs.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "lb"}, "spec": {
        "type": "LoadBalancer", "ports": [{"port": 80}]}}))
        .unwrap(),
    )
    .await
    .unwrap();
    let s = wait_for(&svcs, "lb", |s| {
        s.status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|l| l.ingress.as_ref())
            .is_some()
    })
    .await;
    let spec = s.spec.unwrap();
    assert!(spec.cluster_ip.unwrap().starts_with("10.96."));
    assert_eq!(spec.ports.unwrap()[0].protocol.as_deref(), Some("TCP"));
}
