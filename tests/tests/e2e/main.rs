//! End to end: testenv + source-controller and kustomize-controller as separate processes +
//! `git daemon`. Each test builds its own cluster.

mod bad_input;
mod dependencies;
mod faults;
mod helm;
mod lifecycle;
mod notifications;
mod oci;
mod readiness;
mod receivers;
mod sops;
mod sync;

use std::time::Duration;

use serde_json::json;

/// Generous bound for convergence on a busy 2-core CI machine.
pub const CONVERGE: Duration = Duration::from_secs(90);

pub fn configmap(name: &str, data: &[(&str, &str)]) -> String {
    let mut out = format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n");
    for (k, v) in data {
        out.push_str(&format!("  {k}: \"{v}\"\n"));
    }
    out
}

pub fn deployment(name: &str, extra_annotations: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  annotations:
    e2e: \"yes\"
{extra_annotations}spec:
  replicas: 1
  selector:
    matchLabels:
      app: {name}
  template:
    metadata:
      labels:
        app: {name}
    spec:
      containers:
      - name: app
        image: example.com/{name}:1
"
    )
}

/// A Kustomization object in flux-system syncing `path` of the repository `repo` into
/// namespace `apps`.
pub fn kustomization(
    name: &str,
    repo: &str,
    path: &str,
    extra: serde_json::Value,
) -> serde_json::Value {
    let mut spec = json!({
        "interval": "10m", "retryInterval": "2s", "path": path, "prune": true,
        "targetNamespace": "apps", "timeout": "30s",
        "sourceRef": {"kind": "GitRepository", "name": repo}
    });
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            s.insert(k.clone(), v.clone());
        }
    }
    json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": name, "namespace": "flux-system"},
        "spec": spec
    })
}

pub fn namespace(name: &str) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}
