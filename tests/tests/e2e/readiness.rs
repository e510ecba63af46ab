//! kustomize-controller's Readiness gRPC stream: a snapshot of the matching objects, then every
//! change of their Ready state and revision, as a consumer (the CLI, another service) sees it.

use std::time::Duration;

use ferroflux_e2e::{Cluster, ready_at};
use ferroflux_proto::readiness_client::ReadinessClient;
use ferroflux_proto::{ReadinessRequest, ReadinessUpdate};
use serde_json::json;

use crate::{CONVERGE, configmap, kustomization, namespace};

/// Reads updates until one satisfies `want`.
async fn next_matching(
    stream: &mut tonic::Streaming<ReadinessUpdate>,
    want: impl Fn(&ReadinessUpdate) -> bool,
) -> ReadinessUpdate {
    let deadline = tokio::time::Instant::now() + CONVERGE;
    let mut seen = Vec::new();
    loop {
        let next = tokio::time::timeout_at(deadline, stream.message()).await;
        match next {
            Ok(Ok(Some(u))) if want(&u) => return u,
            Ok(Ok(Some(u))) => seen.push(u),
            other => panic!("no matching update ({other:?}); seen: {seen:#?}"),
        }
    }
}

#[tokio::test]
async fn readiness_stream_follows_a_kustomization() {
    let cluster = Cluster::start().await.unwrap();
    cluster.apply(namespace("apps")).await.unwrap();
    let repo = cluster
        .repo(
            "ready",
            &[("app/cm.yaml", &configmap("app", &[("k", "1")]))],
        )
        .unwrap();
    let first = ferroflux_e2e::git(&repo.work, &["rev-parse", "HEAD"]).unwrap();
    cluster.git_repository(&repo).await.unwrap();

    let mut client = ReadinessClient::connect(format!("http://{}", cluster.kustomize_grpc))
        .await
        .unwrap();
    let request = ReadinessRequest {
        kind: "Kustomization".into(),
        namespace: "flux-system".into(),
        name: "app".into(),
    };
    let mut stream = client.watch(request.clone()).await.unwrap().into_inner();

    cluster
        .apply(kustomization("app", "ready", "./app", json!({})))
        .await
        .unwrap();
    let ready = next_matching(&mut stream, |u| {
        u.ready == "True" && u.revision == format!("main@sha1:{first}")
    })
    .await;
    assert_eq!(
        (
            ready.kind.as_str(),
            ready.namespace.as_str(),
            ready.name.as_str()
        ),
        ("Kustomization", "flux-system", "app")
    );
    assert_eq!(ready.reason, "ReconciliationSucceeded");
    assert_eq!(
        ready.message,
        format!("Applied revision: main@sha1:{first}")
    );
    assert_eq!(ready.observed_generation, ready.generation);

    // A new commit shows up on the same stream with its revision.
    let second = repo
        .commit(
            &[("app/cm.yaml", Some(&configmap("app", &[("k", "2")])))],
            "bump",
        )
        .unwrap();
    cluster.request_fetch("ready").await.unwrap();
    next_matching(&mut stream, |u| {
        u.ready == "True" && u.revision == format!("main@sha1:{second}")
    })
    .await;
    cluster
        .wait_kustomization("flux-system", "app", CONVERGE, |k| ready_at(k, &second))
        .await
        .unwrap();

    // A late subscriber gets the current state first; other objects are filtered out.
    let mut late = client.watch(request).await.unwrap().into_inner();
    let snapshot = tokio::time::timeout(Duration::from_secs(10), late.message())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(snapshot.name, "app");
    assert_eq!(snapshot.revision, format!("main@sha1:{second}"));
    assert_eq!(snapshot.ready, "True");
}
