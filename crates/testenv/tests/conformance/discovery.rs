//! Discovery: /version, /api, /apis, resource lists, OpenAPI v3.

use crate::common::*;
use kube::discovery::{Discovery, Scope};
use serde_json::Value;

async fn get_json(client: &kube::Client, path: &str) -> Value {
    let req = http::Request::get(path).body(vec![]).unwrap();
    serde_json::from_str(&client.request_text(req).await.unwrap()).unwrap()
}

#[tokio::test]
async fn version_groups_and_resources() {
    let (_env, client) = env().await;
    let v = client.apiserver_version().await.unwrap();
    assert_eq!(v.major, "1");

    let api = get_json(&client, "/api").await;
    assert_eq!(api["versions"][0], "v1");

    let core = get_json(&client, "/api/v1").await;
    let res = core["resources"].as_array().unwrap();
    let cm = res.iter().find(|r| r["name"] == "configmaps").unwrap();
    assert_eq!(cm["kind"], "ConfigMap");
    assert_eq!(cm["namespaced"], true);
    assert_eq!(cm["singularName"], "configmap");
    assert_eq!(cm["shortNames"][0], "cm");
    assert!(cm["verbs"].as_array().unwrap().iter().any(|v| v == "watch"));
    let ns = res.iter().find(|r| r["name"] == "namespaces").unwrap();
    assert_eq!(ns["namespaced"], false);
    assert!(res.iter().any(|r| r["name"] == "serviceaccounts/token"));
    assert!(res.iter().any(|r| r["name"] == "pods/status"));

    let apps = get_json(&client, "/apis/apps/v1").await;
    let deploy = apps["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "deployments")
        .unwrap()
        .clone();
    assert_eq!(deploy["categories"][0], "all");
    assert!(
        apps["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "deployments/scale" && r["kind"] == "Scale")
    );

    let groups = get_json(&client, "/apis").await;
    let names: Vec<&str> = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    for g in [
        "apps",
        "batch",
        "rbac.authorization.k8s.io",
        "apiextensions.k8s.io",
        "coordination.k8s.io",
        "events.k8s.io",
        "networking.k8s.io",
        "policy",
        "autoscaling",
        "scheduling.k8s.io",
        "storage.k8s.io",
        "admissionregistration.k8s.io",
    ] {
        assert!(names.contains(&g), "group {g} missing from /apis");
    }
    let grp = get_json(&client, "/apis/apps").await;
    assert_eq!(grp["preferredVersion"]["version"], "v1");
}

#[tokio::test]
async fn kube_discovery_sees_builtins_with_scope() {
    let (_env, client) = env().await;
    let d = Discovery::new(client).run().await.unwrap();
    let mut seen = 0;
    for group in d.groups() {
        for (ar, caps) in group.recommended_resources() {
            let want = match ar.plural.as_str() {
                "namespaces"
                | "clusterroles"
                | "clusterrolebindings"
                | "priorityclasses"
                | "storageclasses"
                | "customresourcedefinitions"
                | "mutatingwebhookconfigurations"
                | "validatingwebhookconfigurations" => Some(Scope::Cluster),
                "configmaps"
                | "secrets"
                | "serviceaccounts"
                | "services"
                | "pods"
                | "persistentvolumeclaims"
                | "events"
                | "leases"
                | "deployments"
                | "statefulsets"
                | "daemonsets"
                | "replicasets"
                | "jobs"
                | "cronjobs"
                | "ingresses"
                | "networkpolicies"
                | "roles"
                | "rolebindings"
                | "horizontalpodautoscalers"
                | "poddisruptionbudgets" => Some(Scope::Namespaced),
                _ => None,
            };
            if let Some(w) = want {
                assert_eq!(caps.scope, w, "{}", ar.plural);
                seen += 1;
            }
        }
    }
    // events appear in core/v1 and events.k8s.io/v1; recommended_resources lists each group once
    assert!(seen >= 28, "saw {seen}");
}

#[tokio::test]
async fn openapi_v3_advertises_server_side_field_validation() {
    let (_env, client) = env().await;
    let root = get_json(&client, "/openapi/v3").await;
    let url = root["paths"]["apis/apps/v1"]["serverRelativeURL"]
        .as_str()
        .unwrap()
        .to_string();
    let doc = get_json(&client, &url).await;
    let p = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
    assert_eq!(p["x-kubernetes-group-version-kind"]["kind"], "Deployment");
    assert!(
        p["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["name"] == "fieldValidation")
    );
}
