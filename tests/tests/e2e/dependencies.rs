//! dependsOn holds a Kustomization back while its dependency is not ready, then releases it.

use ferroflux_api::Kustomization;
use ferroflux_e2e::{Cluster, failed_with, ready_at};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::{CONVERGE, configmap, kustomization, namespace};

#[tokio::test]
async fn depends_on_holds_back_and_releases() {
    let cluster = Cluster::start().await.unwrap();
    cluster.apply(namespace("apps")).await.unwrap();
    let repo = cluster
        .repo(
            "deps",
            &[
                ("infra/cm.yaml", &configmap("infra", &[("k", "v")])),
                ("app/cm.yaml", &configmap("app", &[("k", "v")])),
            ],
        )
        .unwrap();
    let commit = ferroflux_e2e::git(&repo.work, &["rev-parse", "HEAD"]).unwrap();
    cluster.git_repository(&repo).await.unwrap();
    // The dependency starts suspended, so it never becomes ready on its own.
    cluster
        .apply(kustomization(
            "infra",
            "deps",
            "./infra",
            json!({"suspend": true}),
        ))
        .await
        .unwrap();
    cluster
        .apply(kustomization(
            "app",
            "deps",
            "./app",
            json!({"dependsOn": [{"name": "infra"}]}),
        ))
        .await
        .unwrap();

    let held = cluster
        .wait_kustomization("flux-system", "app", CONVERGE, |k| {
            failed_with(k, "DependencyNotReady")
        })
        .await
        .unwrap();
    let (_, _, message) = ferroflux_e2e::ready(&held).unwrap();
    assert_eq!(message, "dependency 'flux-system/infra' is not ready");
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), "apps");
    assert!(
        cms.get_opt("app").await.unwrap().is_none(),
        "nothing is applied while the dependency is not ready"
    );

    let ks: Api<Kustomization> = Api::namespaced(cluster.client.clone(), "flux-system");
    ks.patch(
        "infra",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"suspend": false}})),
    )
    .await
    .unwrap();
    cluster
        .wait_kustomization("flux-system", "infra", CONVERGE, |k| ready_at(k, &commit))
        .await
        .unwrap();
    // Released within --requeue-dependency (2s in the harness).
    cluster
        .wait_kustomization("flux-system", "app", CONVERGE, |k| ready_at(k, &commit))
        .await
        .unwrap();
    assert!(cms.get_opt("app").await.unwrap().is_some());
}
