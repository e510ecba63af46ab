//! Real-world overlays (the corpus's kustomize/), built with `kubectl kustomize`, applied to
//! testenv with the upstream Flux CRDs installed: the first apply creates everything, the second
//! finds nothing to do and writes nothing (no false drift from normalisation or server defaults).

use std::path::{Path, PathBuf};
use std::process::Command;

use ferroflux_ssa::Action;
use serde_json::Value;

use crate::common::*;

use ferroflux_testsupport::corpus;

fn kubectl() -> PathBuf {
    ferroflux_testsupport::tool("kubectl", ferroflux_testsupport::ORACLES_HINT)
}

pub fn build(dir: &Path) -> Result<Vec<Value>, String> {
    let out = Command::new(kubectl())
        .arg("kustomize")
        .arg(dir)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let docs: Vec<Value> =
        serde_saphyr::from_str_multiple::<Value, Vec<_>>(&text).map_err(|e| e.to_string())?;
    Ok(docs
        .into_iter()
        .filter(|d| d.is_object())
        .map(|mut d| {
            if d["metadata"].get("namespace").is_none() {
                d["metadata"]["namespace"] = Value::String("default".into());
            }
            d
        })
        .collect())
}

pub async fn install_flux_crds(env: &ferroflux_testenv::TestEnv) {
    let dir = corpus().join("upstream-crds");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        env.apply_yaml(&std::fs::read_to_string(&f).unwrap(), "installer")
            .unwrap();
    }
}

/// A spread of overlays: plain apps, Flux sources and Kustomizations (upstream CRDs), RBAC,
/// NetworkPolicies, Jobs, StatefulSets, multi-tenancy namespaces.
const OVERLAYS: &[&str] = &[
    "GoogleCloudPlatform+microservices-demo/kubernetes-manifests",
    "GoogleCloudPlatform+microservices-demo/kustomize/components/network-policies",
    "argoproj+argocd-example-apps/sock-shop",
    "argoproj+argocd-example-apps/pre-post-sync",
    "bjw-s+home-ops/kubernetes/main/flux/repositories",
    "carpenike+k8s-gitops/kubernetes/cluster-0/apps/media",
    "controlplaneio-fluxcd+d2-apps/components/backend/production",
    "fluxcd+flux2/manifests/rbac",
    "fluxcd+flux2/manifests/policies",
    "fluxcd+flux2-multi-tenancy/tenants/staging",
    "fluxcd+flux2-monitoring-example/monitoring/controllers/kube-prometheus-stack",
    "kubernetes-sigs+kustomize/examples/wordpress",
    "stefanprodan+podinfo/kustomize",
    "xunholy+k8s-gitops/kubernetes/apps/base/game-servers/cmangos/app/migrations",
];

#[tokio::test]
async fn corpus_overlays_apply_once_then_stay_unchanged() {
    let (env, _client, m) = env().await;
    install_flux_crds(&env).await;
    let mut total = 0;
    for dir in OVERLAYS {
        let objects =
            build(&corpus().join("kustomize").join(dir)).unwrap_or_else(|e| panic!("{dir}: {e}"));
        assert!(!objects.is_empty(), "{dir}");
        // namespaces the overlay uses but does not define exist in the cluster already
        let defined: Vec<&str> = objects
            .iter()
            .filter(|o| o["kind"] == "Namespace")
            .filter_map(|o| o["metadata"]["name"].as_str())
            .collect();
        for o in &objects {
            let ns = o["metadata"]["namespace"].as_str().unwrap_or("default");
            if o["kind"] != "Namespace" && !defined.contains(&ns) {
                env.apply_yaml(
                    &format!("{{\"apiVersion\": \"v1\", \"kind\": \"Namespace\", \"metadata\": {{\"name\": \"{ns}\"}}}}"),
                    "bootstrap",
                )
                .unwrap();
            }
        }
        let cs = m
            .apply_all_staged(objects.clone(), &opts())
            .await
            .unwrap_or_else(|e| panic!("{dir}: {e}"));
        assert_eq!(cs.entries.len(), objects.len(), "{dir}");
        assert!(
            cs.entries.iter().all(|e| e.action == Action::Created),
            "{dir}: {cs}"
        );
        let before = env.resource_version();
        let cs = m
            .apply_all_staged(objects, &opts())
            .await
            .unwrap_or_else(|e| panic!("{dir}: {e}"));
        let changed: Vec<String> = cs
            .entries
            .iter()
            .filter(|e| e.action != Action::Unchanged)
            .map(|e| e.to_string())
            .collect();
        assert!(changed.is_empty(), "{dir}: false drift {changed:?}");
        assert_eq!(
            env.resource_version(),
            before,
            "{dir}: the second apply wrote"
        );
        total += cs.entries.len();
    }
    assert!(total > 150, "{total}");
}
