//! Bad input leaves the last applied state in place and says why in one line.

use ferroflux_e2e::{Cluster, failed_with, ready_at};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use serde_json::json;

use crate::{CONVERGE, configmap, deployment, kustomization, namespace};

async fn value_of(cluster: &Cluster, name: &str) -> Option<String> {
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), "apps");
    cms.get_opt(name)
        .await
        .unwrap()
        .and_then(|c| c.data)
        .and_then(|d| d.get("k").cloned())
}

fn one_line(message: &str) {
    assert!(!message.contains('\n'), "one-line message: {message:?}");
}

#[tokio::test]
async fn bad_commits_keep_the_last_applied_state() {
    let cluster = Cluster::start().await.unwrap();
    cluster.apply(namespace("apps")).await.unwrap();
    let repo = cluster
        .repo(
            "bad",
            &[(
                "deploy/cm.yaml",
                &configmap("cm", &[("k", "${value:=v1}"), ("from", "${cluster_name}")]),
            )],
        )
        .unwrap();
    // Variables from a ConfigMap; an optional Secret that does not exist is skipped.
    cluster
        .apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cluster-vars", "namespace": "flux-system"},
            "data": {"cluster_name": "prod-eu"}}))
        .await
        .unwrap();
    let good = ferroflux_e2e::git(&repo.work, &["rev-parse", "HEAD"]).unwrap();
    cluster.git_repository(&repo).await.unwrap();
    cluster
        .apply(kustomization(
            "bad",
            "bad",
            "./deploy",
            json!({"wait": true, "postBuild": {
            "substitute": {"unused": "x"},
            "substituteFrom": [
                {"kind": "ConfigMap", "name": "cluster-vars"},
                {"kind": "Secret", "name": "absent", "optional": true}
            ]}}),
        ))
        .await
        .unwrap();
    cluster
        .wait_kustomization("flux-system", "bad", CONVERGE, |k| ready_at(k, &good))
        .await
        .unwrap();
    assert_eq!(value_of(&cluster, "cm").await.as_deref(), Some("v1"));
    let cms: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), "apps");
    assert_eq!(
        cms.get("cm").await.unwrap().data.unwrap()["from"],
        "prod-eu",
        "substituteFrom ConfigMap"
    );

    // 1. Invalid YAML: BuildFailed naming the file.
    repo.commit(
        &[
            ("deploy/cm.yaml", Some(&configmap("cm", &[("k", "v2")]))),
            (
                "deploy/broken.yaml",
                Some("apiVersion: v1\nkind: [ConfigMap\n"),
            ),
        ],
        "broken yaml",
    )
    .unwrap();
    cluster.request_fetch("bad").await.unwrap();
    let k = cluster
        .wait_kustomization("flux-system", "bad", CONVERGE, |k| {
            failed_with(k, "BuildFailed")
        })
        .await
        .unwrap();
    let (_, _, msg) = ferroflux_e2e::ready(&k).unwrap();
    eprintln!("Ready message: {msg}");
    assert!(msg.contains("deploy/broken.yaml"), "names the file: {msg}");
    one_line(&msg);
    assert_eq!(
        value_of(&cluster, "cm").await.as_deref(),
        Some("v1"),
        "last state kept"
    );
    assert!(
        k.status
            .unwrap()
            .last_applied_revision
            .unwrap()
            .ends_with(&good),
        "lastAppliedRevision stays at the good commit"
    );

    // 2. A missing substitution variable (strict mode, the default).
    repo.commit(
        &[
            ("deploy/broken.yaml", None),
            (
                "deploy/cm.yaml",
                Some(&configmap("cm", &[("k", "${missing_var}")])),
            ),
        ],
        "missing var",
    )
    .unwrap();
    cluster.request_fetch("bad").await.unwrap();
    let k = cluster
        .wait_kustomization("flux-system", "bad", CONVERGE, |k| {
            failed_with(k, "BuildFailed")
                && ferroflux_e2e::ready(k).is_some_and(|(_, _, m)| m.contains("missing_var"))
        })
        .await
        .unwrap();
    let (_, _, msg) = ferroflux_e2e::ready(&k).unwrap();
    eprintln!("Ready message: {msg}");
    assert!(
        msg.contains("variable not set (strict mode): \"missing_var\""),
        "{msg}"
    );
    one_line(&msg);
    assert_eq!(value_of(&cluster, "cm").await.as_deref(), Some("v1"));

    // 3. A failing health check: the new object is applied, the Kustomization says why.
    let sick = deployment(
        "sick",
        &format!("    {}: \"true\"\n", ferroflux_testenv::FAIL_ANNOTATION),
    );
    repo.commit(
        &[
            ("deploy/cm.yaml", Some(&configmap("cm", &[("k", "v1")]))),
            ("deploy/sick.yaml", Some(&sick)),
        ],
        "failing deployment",
    )
    .unwrap();
    cluster.request_fetch("bad").await.unwrap();
    let k = cluster
        .wait_kustomization("flux-system", "bad", CONVERGE, |k| {
            failed_with(k, "HealthCheckFailed")
        })
        .await
        .unwrap();
    let (_, _, msg) = ferroflux_e2e::ready(&k).unwrap();
    eprintln!("Ready message: {msg}");
    assert!(msg.contains("Deployment/apps/sick"), "{msg}");
    let healthy = k
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Healthy")
        .unwrap();
    assert_eq!(
        (healthy.status.as_str(), healthy.reason.as_str()),
        ("False", "HealthCheckFailed")
    );
}

#[tokio::test]
async fn forbidden_objects_fail_with_the_servers_reason() {
    let cluster = Cluster::start().await.unwrap();
    cluster.apply(namespace("apps")).await.unwrap();
    // A service account that may only manage ConfigMaps in apps.
    for obj in [
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": "limited", "namespace": "flux-system"}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
               "metadata": {"name": "cm-only", "namespace": "apps"},
               "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["*"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "cm-only", "namespace": "apps"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm-only"},
               "subjects": [{"kind": "ServiceAccount", "name": "limited", "namespace": "flux-system"}]}),
    ] {
        cluster.apply(obj).await.unwrap();
    }
    let repo = cluster
        .repo(
            "rbac",
            &[
                ("deploy/cm.yaml", &configmap("allowed", &[("k", "v")])),
                ("deploy/web.yaml", &deployment("web", "")),
            ],
        )
        .unwrap();
    cluster.git_repository(&repo).await.unwrap();
    cluster
        .apply(kustomization(
            "rbac",
            "rbac",
            "./deploy",
            json!({"serviceAccountName": "limited"}),
        ))
        .await
        .unwrap();
    let k = cluster
        .wait_kustomization("flux-system", "rbac", CONVERGE, |k| {
            failed_with(k, "ReconciliationFailed")
        })
        .await
        .unwrap();
    let (_, _, msg) = ferroflux_e2e::ready(&k).unwrap();
    eprintln!("Ready message: {msg}");
    assert!(
        msg.contains("Deployment/apps/web"),
        "names the object: {msg}"
    );
    assert!(msg.to_lowercase().contains("forbidden"), "says why: {msg}");
}
