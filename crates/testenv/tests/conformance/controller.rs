//! A real kube-runtime Controller (with the finalizer helper, owned objects and server-side
//! apply) reconciling against testenv.

use crate::common::*;
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{Event, finalizer};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

const FINALIZER: &str = "example.com/mirror";

type Error = kube::runtime::finalizer::Error<kube::Error>;

async fn reconcile(cm: Arc<ConfigMap>, client: Arc<Client>) -> Result<Action, Error> {
    let ns = cm.namespace().unwrap();
    let cms: Api<ConfigMap> = Api::namespaced((*client).clone(), &ns);
    finalizer(&cms, FINALIZER, cm, |ev| async {
        match ev {
            Event::Apply(cm) => {
                let secrets: Api<Secret> = Api::namespaced((*client).clone(), &ns);
                let owner = cm.controller_owner_ref(&()).unwrap();
                let s = json!({"apiVersion": "v1", "kind": "Secret",
                    "metadata": {"name": format!("mirror-{}", cm.name_any()), "ownerReferences": [owner]},
                    "stringData": cm.data.clone().unwrap_or_default()});
                secrets.patch(&format!("mirror-{}", cm.name_any()), &PatchParams::apply("mirror-controller").force(), &Patch::Apply(s)).await?;
                Ok(Action::await_change())
            }
            Event::Cleanup(cm) => {
                let marker: ConfigMap = serde_json::from_value(json!({"metadata": {"name": format!("cleaned-{}", cm.name_any())}})).unwrap();
                cms.create(&PostParams::default(), &marker).await?;
                Ok(Action::await_change())
            }
        }
    })
    .await
}

fn error_policy(_: Arc<ConfigMap>, _: &Error, _: Arc<Client>) -> Action {
    Action::requeue(Duration::from_millis(100))
}

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

#[tokio::test]
async fn controller_with_finalizer_and_owned_objects() {
    let (_env, client) = env().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let ctl = Controller::new(cms.clone(), watcher::Config::default().labels("mirror=yes"))
        .owns(secrets.clone(), watcher::Config::default())
        .run(reconcile, error_policy, Arc::new(client.clone()))
        .for_each(|_| async {});
    let task = tokio::spawn(ctl);

    let cm: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "src", "labels": {"mirror": "yes"}}, "data": {"k": "v1"}}),
    )
    .unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let get_secret = |expect: &'static str| {
        let secrets = secrets.clone();
        async move {
            secrets
                .get_opt("mirror-src")
                .await
                .unwrap()
                .and_then(|s| s.data)
                .is_some_and(|d| d.get("k").is_some_and(|v| v.0 == expect.as_bytes()))
        }
    };
    eventually("secret mirrored", || get_secret("v1")).await;
    let cur = cms.get("src").await.unwrap();
    assert_eq!(cur.finalizers(), [FINALIZER.to_string()]);
    let s = secrets.get("mirror-src").await.unwrap();
    assert_eq!(s.owner_references()[0].uid, cur.uid().unwrap());
    assert_eq!(
        s.meta().managed_fields.as_ref().unwrap()[0]
            .manager
            .as_deref(),
        Some("mirror-controller")
    );

    cms.patch(
        "src",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "v2"}})),
    )
    .await
    .unwrap();
    eventually("secret updated", || get_secret("v2")).await;

    cms.delete("src", &DeleteParams::default()).await.unwrap();
    eventually("cleanup ran and the configmap is gone", || async {
        cms.get_opt("cleaned-src").await.unwrap().is_some()
            && cms.get_opt("src").await.unwrap().is_none()
    })
    .await;
    eventually("owned secret collected", || async {
        secrets.get_opt("mirror-src").await.unwrap().is_none()
    })
    .await;
    task.abort();
}
