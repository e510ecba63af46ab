//! Deletion: finalizers, owner references (background, foreground, orphan), namespace cascade.

use crate::common::*;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use std::time::Duration;

async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..300 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}

fn owned_by(name: &str, owner: &ConfigMap) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "ownerReferences": [{
        "apiVersion": "v1", "kind": "ConfigMap", "name": owner.metadata.name, "uid": owner.metadata.uid
    }]}}))
    .unwrap()
}

fn plain(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}})).unwrap()
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let (_env, client) = env().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let o: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "f", "finalizers": ["example.com/hold"]}}),
    )
    .unwrap();
    cms.create(&PostParams::default(), &o).await.unwrap();
    cms.delete("f", &DeleteParams::default()).await.unwrap();
    let cur = cms.get("f").await.unwrap();
    assert!(cur.metadata.deletion_timestamp.is_some());
    // no new finalizers while deleting
    let e = cms
        .patch(
            "f",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["example.com/hold", "x/y"]}})),
        )
        .await
        .unwrap_err();
    assert_eq!(status_of(e).code, 422);
    cms.patch(
        "f",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert!(cms.get_opt("f").await.unwrap().is_none());
}

#[tokio::test]
async fn owner_references_background_foreground_orphan() {
    let (_env, client) = env().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");

    // background: dependents go after the owner
    let owner = cms
        .create(&PostParams::default(), &plain("owner"))
        .await
        .unwrap();
    cms.create(&PostParams::default(), &owned_by("dep", &owner))
        .await
        .unwrap();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let s: Secret = serde_json::from_value(
        json!({"metadata": {"name": "dep-secret", "ownerReferences": [{
        "apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}]}}),
    )
    .unwrap();
    secrets.create(&PostParams::default(), &s).await.unwrap();
    cms.delete("owner", &DeleteParams::background())
        .await
        .unwrap();
    eventually("background GC", || async {
        cms.get_opt("dep").await.unwrap().is_none()
            && secrets.get_opt("dep-secret").await.unwrap().is_none()
    })
    .await;

    // foreground: the owner waits (foregroundDeletion finalizer) until dependents are gone
    let owner = cms
        .create(&PostParams::default(), &plain("fg"))
        .await
        .unwrap();
    let dep = owned_by("fg-dep", &owner);
    let mut dep_v = to_value(&dep);
    dep_v["metadata"]["finalizers"] = json!(["example.com/slow"]);
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(dep_v).unwrap(),
    )
    .await
    .unwrap();
    cms.delete("fg", &DeleteParams::foreground()).await.unwrap();
    let o = cms.get("fg").await.unwrap();
    assert!(o.metadata.deletion_timestamp.is_some());
    assert!(
        o.metadata
            .finalizers
            .unwrap()
            .contains(&"foregroundDeletion".to_string())
    );
    eventually("dependent marked for deletion", || async {
        cms.get("fg-dep")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    })
    .await;
    cms.patch(
        "fg-dep",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    eventually("foreground owner gone", || async {
        cms.get_opt("fg").await.unwrap().is_none()
    })
    .await;

    // orphan: dependents stay, without the owner reference
    let owner = cms
        .create(&PostParams::default(), &plain("or"))
        .await
        .unwrap();
    cms.create(&PostParams::default(), &owned_by("or-dep", &owner))
        .await
        .unwrap();
    cms.delete("or", &DeleteParams::orphan()).await.unwrap();
    eventually("orphan owner gone", || async {
        cms.get_opt("or").await.unwrap().is_none()
    })
    .await;
    let d = cms.get("or-dep").await.unwrap();
    assert!(d.metadata.owner_references.unwrap_or_default().is_empty());
}

#[tokio::test]
async fn namespace_deletion_deletes_its_content() {
    let (_env, client) = env().await;
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "doomed"}})).unwrap(),
    )
    .await
    .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "doomed");
    cms.create(&PostParams::default(), &plain("a"))
        .await
        .unwrap();
    let held: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}),
    )
    .unwrap();
    cms.create(&PostParams::default(), &held).await.unwrap();
    let s = status_of(
        nss.delete("default", &DeleteParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (s.code, s.message.as_str()),
        (
            403,
            "namespaces \"default\" is forbidden: this namespace may not be deleted"
        )
    );
    nss.delete("doomed", &DeleteParams::default())
        .await
        .unwrap();
    let ns = nss.get("doomed").await.unwrap();
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Terminating"));
    // no new content in a terminating namespace
    let e = cms
        .create(&PostParams::default(), &plain("late"))
        .await
        .unwrap_err();
    assert_eq!(status_of(e).code, 403);
    eventually("content deleted", || async {
        cms.get_opt("a").await.unwrap().is_none()
    })
    .await;
    // the finalized object holds the namespace
    assert!(nss.get_opt("doomed").await.unwrap().is_some());
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    eventually("namespace gone", || async {
        nss.get_opt("doomed").await.unwrap().is_none()
    })
    .await;
}
