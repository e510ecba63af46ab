use std::time::Duration;

use ferroflux_ssa::{ApplyCleanup, ApplyOptions, Owner, ResourceManager};
use ferroflux_testenv::{Options, TestEnv};
use kube::Client;
use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::{Value, json};

pub async fn env_with(simulate: Option<Duration>) -> (TestEnv, Client, ResourceManager) {
    let env = TestEnv::start(Options {
        simulate_workloads: simulate,
        ..Default::default()
    })
    .await
    .unwrap();
    let client = env.client().await.unwrap();
    let manager = kustomize_manager(client.clone());
    (env, client, manager)
}

pub async fn env() -> (TestEnv, Client, ResourceManager) {
    env_with(None).await
}

/// A manager set up as kustomize-controller sets it up.
pub fn kustomize_manager(client: Client) -> ResourceManager {
    ResourceManager::new(client, Owner::kustomize_controller())
        .with_concurrency(4)
        .with_cleanup(ApplyCleanup::kustomize_controller(
            "kustomize-controller",
            &[],
        ))
}

pub fn opts() -> ApplyOptions {
    ApplyOptions {
        wait_interval: Duration::from_millis(100),
        wait_timeout: Duration::from_secs(10),
        ..ApplyOptions::kustomization(false)
    }
}

pub async fn api(client: &Client, api_version: &str, kind: &str, ns: &str) -> Api<DynamicObject> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let (ar, caps) =
        kube::discovery::pinned_kind(client, &GroupVersionKind::gvk(group, version, kind))
            .await
            .unwrap();
    if caps.scope == kube::discovery::Scope::Namespaced {
        Api::namespaced_with(client.clone(), ns, &ar)
    } else {
        Api::all_with(client.clone(), &ar)
    }
}

pub async fn get(
    client: &Client,
    api_version: &str,
    kind: &str,
    ns: &str,
    name: &str,
) -> Option<Value> {
    api(client, api_version, kind, ns)
        .await
        .get_opt(name)
        .await
        .unwrap()
        .map(|o| serde_json::to_value(o).unwrap())
}

pub fn rv(obj: &Value) -> String {
    obj["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A merge patch as another field manager (an Update operation), like `kubectl edit`.
pub async fn edit(
    client: &Client,
    manager: &str,
    api_version: &str,
    kind: &str,
    ns: &str,
    name: &str,
    patch: Value,
) {
    let params = PatchParams {
        field_manager: Some(manager.into()),
        ..Default::default()
    };
    api(client, api_version, kind, ns)
        .await
        .patch(name, &params, &Patch::Merge(&patch))
        .await
        .unwrap();
}

pub fn configmap(ns: &str, name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": ns}, "data": data})
}

pub fn deployment(ns: &str, name: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}]}}}})
}

/// A CRD `widgets.example.com` (namespaced, v1) whose `spec.size` may not change.
pub fn widget_crd() -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {
                        "size": {"type": "integer",
                            "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "field is immutable"}]},
                        "color": {"type": "string"}}},
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}]}})
}

pub fn widget(ns: &str, name: &str, size: i64) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": name, "namespace": ns}, "spec": {"size": size, "color": "red"}})
}

pub fn summary(cs: &ferroflux_ssa::ChangeSet) -> Vec<String> {
    cs.entries.iter().map(|e| e.to_string()).collect()
}
