//! Deletion policies, other source kinds (ExternalArtifact), cross-namespace refusal and remote
//! clusters through kubeConfig.secretRef.

use std::time::{Duration, Instant};

use ferroflux_api::{GitRepository, Kustomization};
use ferroflux_e2e::{Cluster, ready, ready_at};
use ferroflux_testenv::{Options, TestEnv};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::{CONVERGE, configmap, kustomization, namespace};

async fn gone(api: &Api<ConfigMap>, name: &str) -> bool {
    let deadline = Instant::now() + CONVERGE;
    loop {
        if api.get_opt(name).await.unwrap().is_none() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn deletion_policies() {
    let cluster = Cluster::start().await.unwrap();
    cluster.apply(namespace("apps")).await.unwrap();
    let repo = cluster
        .repo(
            "del",
            &[
                ("pruned/cm.yaml", &configmap("pruned", &[("k", "v")])),
                ("orphaned/cm.yaml", &configmap("orphaned", &[("k", "v")])),
            ],
        )
        .unwrap();
    let commit = ferroflux_e2e::git(&repo.work, &["rev-parse", "HEAD"]).unwrap();
    cluster.git_repository(&repo).await.unwrap();
    cluster
        .apply(kustomization("pruned", "del", "./pruned", json!({})))
        .await
        .unwrap();
    cluster
        .apply(kustomization(
            "orphaned",
            "del",
            "./orphaned",
            json!({"deletionPolicy": "Orphan"}),
        ))
        .await
        .unwrap();
    for name in ["pruned", "orphaned"] {
        cluster
            .wait_kustomization("flux-system", name, CONVERGE, |k| ready_at(k, &commit))
            .await
            .unwrap();
    }
    let ks: Api<Kustomization> = Api::namespaced(cluster.client.clone(), "flux-system");
    for name in ["pruned", "orphaned"] {
        ks.delete(name, &DeleteParams::default()).await.unwrap();
    }
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), "apps");
    assert!(
        gone(&cms, "pruned").await,
        "MirrorPrune with prune: true deletes"
    );
    // The Kustomization itself goes away (finalizer removed) and its object stays.
    let deadline = Instant::now() + CONVERGE;
    while ks.get_opt("orphaned").await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "finalizer not removed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        cms.get_opt("orphaned").await.unwrap().is_some(),
        "Orphan keeps the objects"
    );
}

#[tokio::test]
async fn external_artifact_and_cross_namespace_refusal() {
    let mut flags = std::collections::BTreeMap::new();
    flags.insert(
        ferroflux_e2e::KUSTOMIZE,
        vec!["--no-cross-namespace-refs=true".to_string()],
    );
    let cluster = Cluster::start_with(flags).await.unwrap();
    cluster.apply(namespace("apps")).await.unwrap();
    cluster.apply(namespace("team")).await.unwrap();
    let repo = cluster
        .repo(
            "ext",
            &[("app/cm.yaml", &configmap("from-ea", &[("k", "v")]))],
        )
        .unwrap();
    cluster.git_repository(&repo).await.unwrap();
    let repos: Api<GitRepository> = Api::namespaced(cluster.client.clone(), "flux-system");
    let deadline = Instant::now() + CONVERGE;
    let artifact = loop {
        if let Some(a) = repos
            .get("ext")
            .await
            .unwrap()
            .status
            .and_then(|s| s.artifact)
        {
            break a;
        }
        assert!(Instant::now() < deadline, "no artifact");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // A third-party producer publishes the artifact through an ExternalArtifact's status.
    let ea_api: Api<ferroflux_api::ExternalArtifact> =
        Api::namespaced(cluster.client.clone(), "flux-system");
    let ea: ferroflux_api::ExternalArtifact = serde_json::from_value(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "ExternalArtifact",
        "metadata": {"name": "producer", "namespace": "flux-system"},
        "spec": {}
    }))
    .unwrap();
    ea_api.create(&PostParams::default(), &ea).await.unwrap();
    let status = json!({"status": {"artifact": artifact, "conditions": [{
        "type": "Ready", "status": "True", "reason": "Succeeded", "message": "ok",
        "lastTransitionTime": "2026-01-01T00:00:00Z"}]}});
    ea_api
        .patch_status("producer", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    let mut from_ea = kustomization("from-ea", "producer", "./app", json!({}));
    from_ea["spec"]["sourceRef"] = json!({"kind": "ExternalArtifact", "name": "producer"});
    cluster.apply(from_ea).await.unwrap();
    let k = cluster
        .wait_kustomization("flux-system", "from-ea", CONVERGE, |k| {
            ready(k).is_some_and(|(s, _, _)| s == "True")
        })
        .await
        .unwrap();
    assert_eq!(
        k.status.unwrap().last_applied_revision.unwrap(),
        artifact.revision
    );

    // A missing source: ArtifactFailed with the API server's not-found text, retried.
    cluster
        .apply(kustomization(
            "orphan-ref",
            "does-not-exist",
            "./app",
            json!({}),
        ))
        .await
        .unwrap();
    let k = cluster
        .wait_kustomization("flux-system", "orphan-ref", CONVERGE, |k| {
            ready(k).is_some_and(|(_, r, _)| r == "ArtifactFailed")
        })
        .await
        .unwrap();
    assert_eq!(
        ready(&k).unwrap().2,
        "gitrepositories.source.toolkit.fluxcd.io \"does-not-exist\" not found"
    );

    // With --no-cross-namespace-refs a Kustomization in another namespace may not use it.
    let mut cross = kustomization("cross", "ext", "./app", json!({}));
    cross["metadata"]["namespace"] = json!("team");
    cross["spec"]["sourceRef"]["namespace"] = json!("flux-system");
    cluster.apply(cross).await.unwrap();
    let k = cluster
        .wait_kustomization("team", "cross", CONVERGE, |k| {
            ready(k).is_some_and(|(_, r, _)| r == "AccessDenied")
        })
        .await
        .unwrap();
    let (_, _, msg) = ready(&k).unwrap();
    assert_eq!(
        msg,
        "can't access 'GitRepository/flux-system/ext', cross-namespace references have been blocked"
    );
    let stalled = k
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Stalled")
        .unwrap();
    assert_eq!(stalled.status, "True");
}

#[tokio::test]
async fn remote_cluster_through_kubeconfig_secret() {
    let cluster = Cluster::start().await.unwrap();
    let remote = TestEnv::start(Options::default()).await.unwrap();
    let remote_kubeconfig = cluster.dir.path().join("remote.kubeconfig");
    remote.write_kubeconfig(&remote_kubeconfig).unwrap();
    let text = std::fs::read_to_string(&remote_kubeconfig).unwrap();
    cluster
        .apply(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "remote-kubeconfig", "namespace": "flux-system"},
            "stringData": {"value": text}}))
        .await
        .unwrap();
    remote
        .apply_yaml(&serde_json::to_string(&namespace("apps")).unwrap(), "e2e")
        .unwrap();
    let repo = cluster
        .repo(
            "remote",
            &[("app/cm.yaml", &configmap("remote-cm", &[("k", "v")]))],
        )
        .unwrap();
    let commit = ferroflux_e2e::git(&repo.work, &["rev-parse", "HEAD"]).unwrap();
    cluster.git_repository(&repo).await.unwrap();
    cluster
        .apply(kustomization(
            "remote",
            "remote",
            "./app",
            json!({"kubeConfig": {"secretRef": {"name": "remote-kubeconfig"}}}),
        ))
        .await
        .unwrap();
    cluster
        .wait_kustomization("flux-system", "remote", CONVERGE, |k| ready_at(k, &commit))
        .await
        .unwrap();
    let remote_cms: Api<ConfigMap> = Api::namespaced(remote.client().await.unwrap(), "apps");
    assert!(remote_cms.get_opt("remote-cm").await.unwrap().is_some());
    let local_cms: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), "apps");
    assert!(
        local_cms
            .get_opt("remote-cm")
            .await
            .unwrap_or(None)
            .is_none(),
        "applied to the remote cluster only"
    );
}
