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

#[tokio::test]
async fn kube_runtime_event_recorder() {
    use k8s_openapi::api::events::v1::Event as K8sEvent;
    use kube::runtime::events::{Event as Ev, EventType, Recorder, Reporter};
    let (_env, client) = env().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "evented"}})).unwrap(),
        )
        .await
        .unwrap();
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "test-controller".into(),
            instance: None,
        },
    );
    let ev = Ev {
        type_: EventType::Normal,
        reason: "Reconciled".into(),
        note: Some("all good".into()),
        action: "Reconcile".into(),
        secondary: None,
    };
    let reference = cm.object_ref(&());
    recorder.publish(&ev, &reference).await.unwrap();
    // the same event again becomes a series on the same object
    recorder.publish(&ev, &reference).await.unwrap();
    let events: Api<K8sEvent> = Api::namespaced(client.clone(), "default");
    let list = events.list(&Default::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    let e = &list.items[0];
    assert_eq!(e.reason.as_deref(), Some("Reconciled"));
    assert_eq!(
        e.regarding.as_ref().unwrap().name.as_deref(),
        Some("evented")
    );
    assert_eq!(e.series.as_ref().map(|s| s.count), Some(2));
    // the same event through core/v1 (what kubectl get events / describe read)
    let core: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), "default");
    let c = core
        .list(&kube::api::ListParams::default().fields("involvedObject.name=evented"))
        .await
        .unwrap();
    assert_eq!(c.items.len(), 1);
    assert_eq!(c.items[0].message.as_deref(), Some("all good"));
    assert_eq!(
        c.items[0].reporting_component.as_deref(),
        Some("test-controller")
    );
    let v = events
        .list(&kube::api::ListParams::default().fields("regarding.name=evented"))
        .await
        .unwrap();
    assert_eq!(v.items.len(), 1);
    // and the other way round: a core/v1 event is visible as events.k8s.io/v1
    let ce: k8s_openapi::api::core::v1::Event = serde_json::from_value(json!({"metadata": {"name": "core-ev"},
        "involvedObject": {"kind": "ConfigMap", "name": "evented", "namespace": "default"}, "reason": "Old", "message": "from client-go",
        "type": "Warning", "count": 3})).unwrap();
    core.create(&PostParams::default(), &ce).await.unwrap();
    let seen = events.get("core-ev").await.unwrap();
    assert_eq!(seen.note.as_deref(), Some("from client-go"));
    assert_eq!(seen.deprecated_count, Some(3));
    assert_eq!(seen.regarding.unwrap().name.as_deref(), Some("evented"));
}
