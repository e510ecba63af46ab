//! CustomResourceDefinitions: registration, discovery, schema defaulting/pruning/validation,
//! status subresource, deletion.

use crate::common::*;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::core::DynamicObject;
use serde_json::json;
use std::time::Duration;

pub fn widget_crd() -> serde_json::Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"], "categories": ["all"]},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}},
                "additionalPrinterColumns": [{"name": "Url", "type": "string", "jsonPath": ".spec.url"}],
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "required": ["url"],
                      "x-kubernetes-validations": [{"rule": "!has(self.mode) || self.mode != 'slow' || has(self.replicas)", "message": "slow mode needs replicas"}],
                      "properties": {
                        "url": {"type": "string", "pattern": "^https?://",
                            "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "url is immutable"}]},
                        "interval": {"type": "string", "default": "5m"},
                        "replicas": {"type": "integer", "minimum": 0, "maximum": 10},
                        "mode": {"type": "string", "enum": ["fast", "slow"]},
                        "name": {"type": "string", "maxLength": 5},
                        "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                    }},
                    "status": {"type": "object", "properties": {
                        "replicas": {"type": "integer"},
                        "conditions": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"],
                            "items": {"type": "object", "properties": {"type": {"type": "string"}, "status": {"type": "string"}}}}
                    }}
                }}}
            }]
        }
    })
}

pub async fn install_widgets(client: &kube::Client) -> CustomResourceDefinition {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(widget_crd()).unwrap();
    crds.create(&PostParams::default(), &crd).await.unwrap()
}

#[tokio::test]
async fn crd_is_established_and_served() {
    let (_env, client) = env().await;
    let crd = install_widgets(&client).await;
    let conds = crd.status.unwrap().conditions.unwrap();
    let get = |t: &str| conds.iter().find(|c| c.type_ == t).unwrap().status.clone();
    assert_eq!(get("Established"), "True");
    assert_eq!(get("NamesAccepted"), "True");

    let req = http::Request::get("/apis/example.com/v1")
        .body(vec![])
        .unwrap();
    let list: serde_json::Value =
        serde_json::from_str(&client.request_text(req).await.unwrap()).unwrap();
    let w = list["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "widgets")
        .unwrap()
        .clone();
    assert_eq!(
        (
            w["kind"].as_str(),
            w["namespaced"].as_bool(),
            w["shortNames"][0].as_str()
        ),
        (Some("Widget"), Some(true), Some("wd"))
    );
    assert!(
        list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["name"] == "widgets/status")
    );

    let widgets = dyn_api(
        &client,
        "example.com",
        "v1",
        "Widget",
        "widgets",
        Some("default"),
    );
    let w: DynamicObject = serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w1"}, "spec": {"url": "https://x", "unknown": 1, "free": {"anything": [1, 2]}},
        "status": {"replicas": 3}})).unwrap();
    let created = widgets.create(&PostParams::default(), &w).await.unwrap();
    // defaulted, pruned, free-form preserved, status dropped on create
    assert_eq!(created.data["spec"]["interval"], "5m");
    assert!(created.data["spec"].get("unknown").is_none());
    assert_eq!(created.data["spec"]["free"]["anything"], json!([1, 2]));
    assert!(created.data.get("status").is_none());
    assert_eq!(created.metadata.generation, Some(1));

    // status subresource and SSA on list-map conditions
    let st = widgets
        .patch_status("w1", &PatchParams::apply("ctrl"), &Patch::Apply(json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w1"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}})))
        .await
        .unwrap();
    assert_eq!(st.data["status"]["conditions"][0]["type"], "Ready");
    assert_eq!(st.metadata.generation, Some(1));
    let fields = to_value(
        &st.metadata
            .managed_fields
            .unwrap()
            .into_iter()
            .find(|e| e.manager.as_deref() == Some("ctrl"))
            .unwrap()
            .fields_v1,
    );
    assert!(
        fields["f:status"]["f:conditions"]["k:{\"type\":\"Ready\"}"].is_object(),
        "{fields}"
    );

    // custom resources need a resourceVersion on PUT
    let mut unconditional = widgets.get("w1").await.unwrap();
    unconditional.metadata.resource_version = None;
    let s = status_of(
        widgets
            .replace("w1", &PostParams::default(), &unconditional)
            .await
            .unwrap_err(),
    );
    assert_eq!(s.code, 422);
    assert!(
        s.message.ends_with(
            "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"
        ),
        "{}",
        s.message
    );

    // spec change bumps generation
    let g = widgets
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 2}})),
        )
        .await
        .unwrap();
    assert_eq!(g.metadata.generation, Some(2));
    // scale subresource from the CRD's paths
    let s = widgets.get_scale("w1").await.unwrap();
    assert_eq!(s.spec.unwrap().replicas, Some(2));

    // fieldValidation=Strict refuses unknown fields instead of pruning them
    let strict = widgets
        .patch("w1", &PatchParams::apply("strict").validation_strict(), &Patch::Apply(json!({"apiVersion": "example.com/v1",
            "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"url": "https://x", "bogus": true}})))
        .await
        .unwrap_err();
    let s = status_of(strict);
    assert_eq!((s.code, s.reason.as_str()), (400, "BadRequest"));
    assert!(
        s.message
            .ends_with("strict decoding error: unknown field \"spec.bogus\""),
        "{}",
        s.message
    );

    // strategic merge is not supported for custom resources
    let e = widgets
        .patch(
            "w1",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap_err();
    assert_eq!(status_of(e).code, 415);
}

#[tokio::test]
async fn schema_validation_errors_look_like_the_apiserver() {
    let (_env, client) = env().await;
    install_widgets(&client).await;
    let widgets = dyn_api(
        &client,
        "example.com",
        "v1",
        "Widget",
        "widgets",
        Some("default"),
    );
    let bad: DynamicObject = serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "bad"}, "spec": {"url": "ftp://x", "replicas": 11, "mode": "medium", "name": "toolong", "tags": ["a", "a"]}})).unwrap();
    let s = status_of(
        widgets
            .create(&PostParams::default(), &bad)
            .await
            .unwrap_err(),
    );
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
    assert!(
        s.message
            .starts_with("Widget.example.com \"bad\" is invalid: ["),
        "{}",
        s.message
    );
    let details = s.details.unwrap();
    assert_eq!(details.kind, "Widget");
    assert_eq!(details.group, "example.com");
    let by_field = |f: &str| {
        details
            .causes
            .iter()
            .find(|c| c.field == f)
            .unwrap_or_else(|| panic!("no cause for {f}: {:?}", details.causes))
            .clone()
    };
    assert_eq!(
        by_field("spec.url").message,
        "Invalid value: \"ftp://x\": spec.url in body should match '^https?://'"
    );
    assert_eq!(
        by_field("spec.replicas").message,
        "Invalid value: 11: spec.replicas in body should be less than or equal to 10"
    );
    assert_eq!(by_field("spec.mode").reason, "FieldValueNotSupported");
    assert_eq!(
        by_field("spec.mode").message,
        "Unsupported value: \"medium\": supported values: \"fast\", \"slow\""
    );
    assert_eq!(by_field("spec.name").reason, "FieldValueTooLong");
    assert_eq!(by_field("spec.tags[1]").reason, "FieldValueDuplicate");

    let missing: DynamicObject =
        serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "m"}, "spec": {"replicas": "two"}}))
        .unwrap();
    let s = status_of(
        widgets
            .create(&PostParams::default(), &missing)
            .await
            .unwrap_err(),
    );
    let d = s.details.unwrap();
    assert!(
        d.causes
            .iter()
            .any(|c| c.field == "spec.url" && c.reason == "FieldValueRequired")
    );
    assert!(
        d.causes
            .iter()
            .any(|c| c.field == "spec.replicas" && c.message.contains("must be of type integer"))
    );

    // invalid CRDs are refused too
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut broken = widget_crd();
    broken["metadata"]["name"] = json!("wrong.example.com");
    let s = status_of(
        crds.create(
            &PostParams::default(),
            &serde_json::from_value(broken).unwrap(),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(s.code, 422);
    assert!(
        s.details
            .unwrap()
            .causes
            .iter()
            .any(|c| c.field == "metadata.name")
    );
}

#[tokio::test]
async fn deleting_a_crd_removes_instances_and_discovery() {
    let (_env, client) = env().await;
    install_widgets(&client).await;
    let widgets = dyn_api(
        &client,
        "example.com",
        "v1",
        "Widget",
        "widgets",
        Some("default"),
    );
    let w: DynamicObject =
        serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w"}, "spec": {"url": "http://x"}}))
        .unwrap();
    widgets.create(&PostParams::default(), &w).await.unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .unwrap();
    for _ in 0..100 {
        if crds.get_opt("widgets.example.com").await.unwrap().is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(crds.get_opt("widgets.example.com").await.unwrap().is_none());
    let req = http::Request::get("/apis/example.com/v1")
        .body(vec![])
        .unwrap();
    assert_eq!(
        status_of(client.request_text(req).await.unwrap_err()).code,
        404
    );
    let req = http::Request::get("/apis").body(vec![]).unwrap();
    assert!(
        !client
            .request_text(req)
            .await
            .unwrap()
            .contains("example.com")
    );
    // recreate: the old instance is gone
    install_widgets(&client).await;
    assert!(widgets.get_opt("w").await.unwrap().is_none());
}

#[tokio::test]
async fn cel_validation_rules() {
    let (_env, client) = env().await;
    install_widgets(&client).await;
    let widgets = dyn_api(
        &client,
        "example.com",
        "v1",
        "Widget",
        "widgets",
        Some("default"),
    );
    let slow: DynamicObject =
        serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "slow"}, "spec": {"url": "https://x", "mode": "slow"}}))
        .unwrap();
    let s = status_of(
        widgets
            .create(&PostParams::default(), &slow)
            .await
            .unwrap_err(),
    );
    assert_eq!(s.code, 422);
    assert_eq!(
        s.message,
        "Widget.example.com \"slow\" is invalid: spec: Invalid value: \"object\": slow mode needs replicas"
    );
    let ok: DynamicObject =
        serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "slow"}, "spec": {"url": "https://x", "mode": "slow", "replicas": 1}}))
        .unwrap();
    widgets.create(&PostParams::default(), &ok).await.unwrap();
    // transition rule: oldSelf on update
    let e = widgets
        .patch(
            "slow",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"url": "https://y"}})),
        )
        .await
        .unwrap_err();
    let s = status_of(e);
    assert_eq!(s.code, 422);
    assert_eq!(
        s.details.unwrap().causes[0].message,
        "Invalid value: \"https://y\": url is immutable"
    );
    widgets
        .patch(
            "slow",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 2}})),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn served_versions_and_storage_version_change() {
    let (_env, client) = env().await;
    install_widgets(&client).await;
    let v1 = dyn_api(
        &client,
        "example.com",
        "v1",
        "Widget",
        "widgets",
        Some("default"),
    );
    let w: DynamicObject =
        serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w"}, "spec": {"url": "https://x"}}))
        .unwrap();
    v1.create(&PostParams::default(), &w).await.unwrap();
    // add v2 as the storage version, keep v1 served
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut crd = widget_crd();
    let mut v2 = crd["spec"]["versions"][0].clone();
    v2["name"] = json!("v2");
    crd["spec"]["versions"][0]["storage"] = json!(false);
    crd["spec"]["versions"].as_array_mut().unwrap().push(v2);
    crds.patch(
        "widgets.example.com",
        &PatchParams::apply("test").force(),
        &Patch::Apply(crd),
    )
    .await
    .unwrap();
    let got = crds.get("widgets.example.com").await.unwrap();
    assert_eq!(got.status.unwrap().stored_versions.unwrap(), ["v1", "v2"]);
    let v2api = dyn_api(
        &client,
        "example.com",
        "v2",
        "Widget",
        "widgets",
        Some("default"),
    );
    assert_eq!(
        v2api.get("w").await.unwrap().types.unwrap().api_version,
        "example.com/v2"
    );
    assert_eq!(
        v1.get("w").await.unwrap().types.unwrap().api_version,
        "example.com/v1"
    );
    let listed = v2api.list(&Default::default()).await.unwrap();
    assert_eq!(
        listed.items[0].types.as_ref().unwrap().api_version,
        "example.com/v2"
    );
    let listed = v1.list(&Default::default()).await.unwrap();
    assert_eq!(
        listed.items[0].types.as_ref().unwrap().api_version,
        "example.com/v1"
    );
    let req = http::Request::get("/apis/example.com")
        .body(vec![])
        .unwrap();
    let g: serde_json::Value =
        serde_json::from_str(&client.request_text(req).await.unwrap()).unwrap();
    assert_eq!(g["preferredVersion"]["version"], "v2");
}
