use std::sync::Arc;
use std::time::{Duration, Instant};

use ferroflux_runtime::kstatus::{Computed, Status};
use ferroflux_ssa::{CancellationToken, ObjMetadata, SsaError, WaitOptions, jobs_with_ttl};
use ferroflux_testenv::FAIL_ANNOTATION;
use serde_json::json;

use crate::common::*;

fn wait_opts(timeout: Duration) -> WaitOptions {
    WaitOptions {
        interval: Duration::from_millis(100),
        timeout,
        fail_fast: true,
        ..Default::default()
    }
}

#[tokio::test]
async fn deployments_become_current_or_fail_fast() {
    let (_env, _client, m) = env_with(Some(Duration::from_millis(300))).await;
    let mut bad = deployment("default", "bad");
    bad["metadata"]["annotations"] = json!({FAIL_ANNOTATION: "true"});
    let cs = m
        .apply_all_staged(vec![deployment("default", "web"), bad], &opts())
        .await
        .unwrap();
    let ids = cs.to_obj_metadata_set();
    let web: Vec<ObjMetadata> = ids.iter().filter(|o| o.name == "web").cloned().collect();
    m.wait_for_set(&web, &wait_opts(Duration::from_secs(20)))
        .await
        .unwrap();

    let start = Instant::now();
    let err = m
        .wait_for_set(&ids, &wait_opts(Duration::from_secs(30)))
        .await
        .unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "fail-fast took {:?}",
        start.elapsed()
    );
    assert_eq!(
        err.to_string(),
        "failed early due to stalled resources: [Deployment/default/bad status: 'Failed']"
    );
}

#[tokio::test]
async fn timeouts_list_unready_objects() {
    // no simulator: the Deployment never becomes ready
    let (_env, _client, m) = env().await;
    let cs = m
        .apply_all(
            vec![
                deployment("default", "web"),
                configmap("default", "c", json!({})),
            ],
            &opts(),
        )
        .await
        .unwrap();
    let mut ids = cs.to_obj_metadata_set();
    ids.push(ObjMetadata::parse_inventory("default_absent__ConfigMap", "v1").unwrap());
    let start = Instant::now();
    let err = m
        .wait_for_set(&ids, &wait_opts(Duration::from_millis(800)))
        .await
        .unwrap_err();
    assert!(start.elapsed() >= Duration::from_millis(800));
    assert!(matches!(err, SsaError::Timeout(_)));
    assert_eq!(
        err.to_string(),
        "timeout waiting for: [Deployment/default/web status: 'InProgress', ConfigMap/default/absent status: 'NotFound']"
    );
}

#[tokio::test]
async fn custom_status_cancel_and_jobs_with_ttl() {
    let (_env, client, m) = env().await;
    m.apply_all(
        vec![configmap("default", "state", json!({"phase": "pending"}))],
        &opts(),
    )
    .await
    .unwrap();
    let ids = vec![ObjMetadata::parse_inventory("default_state__ConfigMap", "v1").unwrap()];
    let mut o = wait_opts(Duration::from_secs(20));
    o.custom_status = Some(Arc::new(|obj: &serde_json::Value| {
        let status = match obj["data"]["phase"].as_str()? {
            "ready" => Status::Current,
            "broken" => Status::Failed,
            _ => Status::InProgress,
        };
        Some(Computed {
            status,
            message: String::new(),
        })
    }));
    // becomes Current when the phase changes
    let waiter = {
        let m = m.clone();
        let (ids, o) = (ids.clone(), o.clone());
        tokio::spawn(async move { m.wait_for_set(&ids, &o).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiter.is_finished());
    edit(
        &client,
        "someone",
        "v1",
        "ConfigMap",
        "default",
        "state",
        json!({"data": {"phase": "ready"}}),
    )
    .await;
    waiter.await.unwrap().unwrap();
    // Failed through the custom reader
    edit(
        &client,
        "someone",
        "v1",
        "ConfigMap",
        "default",
        "state",
        json!({"data": {"phase": "broken"}}),
    )
    .await;
    let err = m.wait_for_set(&ids, &o).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed early due to stalled resources: [ConfigMap/default/state status: 'Failed']"
    );

    // fail-fast does not wait for the objects still in progress; without it, the wait runs
    // to the timeout and lists them all
    m.apply_all(
        vec![configmap("default", "slow", json!({"phase": "pending"}))],
        &opts(),
    )
    .await
    .unwrap();
    let mut both = ids.clone();
    both.push(ObjMetadata::parse_inventory("default_slow__ConfigMap", "v1").unwrap());
    let start = Instant::now();
    let err = m.wait_for_set(&both, &o).await.unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert!(matches!(err, SsaError::FailedEarly(_)), "{err}");
    let mut patient = o.clone();
    patient.fail_fast = false;
    patient.timeout = Duration::from_millis(600);
    let err = m.wait_for_set(&both, &patient).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "timeout waiting for: [ConfigMap/default/state status: 'Failed', ConfigMap/default/slow status: 'InProgress']"
    );

    // cancellation
    edit(
        &client,
        "someone",
        "v1",
        "ConfigMap",
        "default",
        "state",
        json!({"data": {"phase": "pending"}}),
    )
    .await;
    let token = CancellationToken::new();
    o.cancel = Some(token.clone());
    let waiter = {
        let m = m.clone();
        let (ids, o) = (ids.clone(), o.clone());
        tokio::spawn(async move { m.wait_for_set(&ids, &o).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    token.cancel();
    assert!(matches!(waiter.await.unwrap(), Err(SsaError::Canceled)));

    // a Job with a TTL that is already gone counts as done; without the TTL it does not
    let job = json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "migrate", "namespace": "default"},
        "spec": {"ttlSecondsAfterFinished": 0, "template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "m", "image": "busybox"}]}}}});
    let ttl = jobs_with_ttl(std::slice::from_ref(&job));
    assert_eq!(ttl.len(), 1);
    let mut o = wait_opts(Duration::from_millis(500));
    o.jobs_with_ttl = ttl.clone();
    m.wait_for_set(&ttl, &o).await.unwrap();
    o.jobs_with_ttl.clear();
    let err = m.wait_for_set(&ttl, &o).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "timeout waiting for: [Job/default/migrate status: 'NotFound']"
    );
}

#[tokio::test]
async fn waiting_for_termination() {
    let (_env, _client, m) = env().await;
    let cs = m
        .apply_all(vec![configmap("default", "bye", json!({}))], &opts())
        .await
        .unwrap();
    let ids = cs.to_obj_metadata_set();
    let err = m
        .wait_for_termination(&ids, &wait_opts(Duration::from_millis(300)))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "ConfigMap/default/bye termination timeout: context deadline exceeded"
    );
    m.delete_all(ids.clone(), &Default::default())
        .await
        .unwrap();
    m.wait_for_termination(&ids, &wait_opts(Duration::from_secs(5)))
        .await
        .unwrap();
}
