//! List and watch: selectors, pagination, resourceVersion semantics, bookmarks, 410, kube-rs
//! watchers and reflectors.

use crate::common::*;
use ferroflux_testenv::Options;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use serde_json::json;
use std::time::Duration;

async fn mk(cms: &Api<ConfigMap>, name: &str, labels: serde_json::Value) -> ConfigMap {
    let o: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap();
    cms.create(&PostParams::default(), &o).await.unwrap()
}

fn names(l: &[ConfigMap]) -> Vec<String> {
    l.iter().map(|c| c.metadata.name.clone().unwrap()).collect()
}

#[tokio::test]
async fn label_and_field_selectors() {
    let (_env, client) = env().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    mk(&cms, "a", json!({"app": "web", "tier": "fe"})).await;
    mk(&cms, "b", json!({"app": "db"})).await;
    mk(&cms, "c", json!({})).await;
    let sel = |s: &str| {
        let cms = cms.clone();
        let s = s.to_string();
        async move {
            names(
                &cms.list(&ListParams::default().labels(&s))
                    .await
                    .unwrap()
                    .items,
            )
        }
    };
    assert_eq!(sel("app=web").await, ["a"]);
    assert_eq!(sel("app==db").await, ["b"]);
    assert_eq!(sel("app!=web").await, ["b", "c"]);
    assert_eq!(sel("app in (web,db)").await, ["a", "b"]);
    assert_eq!(sel("app notin (web)").await, ["b", "c"]);
    assert_eq!(sel("tier").await, ["a"]);
    assert_eq!(sel("!app").await, ["c"]);
    let by_name = cms
        .list(&ListParams::default().fields("metadata.name=b"))
        .await
        .unwrap();
    assert_eq!(names(&by_name.items), ["b"]);
    let all: Api<ConfigMap> = Api::all(client.clone());
    let other_ns = all
        .list(&ListParams::default().fields("metadata.namespace!=default"))
        .await
        .unwrap();
    assert!(other_ns.items.is_empty());
    let s = status_of(
        cms.list(&ListParams::default().fields("data.x=1"))
            .await
            .unwrap_err(),
    );
    assert_eq!(s.code, 400);
}

#[tokio::test]
async fn limit_and_continue() {
    let (_env, client) = env_with(Options {
        watch_window: 64,
        ..Default::default()
    })
    .await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for i in 0..25 {
        mk(&cms, &format!("cm-{i:02}"), json!({})).await;
    }
    let mut got = vec![];
    let mut lp = ListParams::default().limit(10);
    let mut pages = 0;
    loop {
        let page = cms.list(&lp).await.unwrap();
        pages += 1;
        got.extend(names(&page.items));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(c) => {
                if pages == 1 {
                    assert_eq!(page.metadata.remaining_item_count, Some(15));
                }
                lp = lp.continue_token(&c)
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(got.len(), 25);
    assert_eq!(got[0], "cm-00");
    assert_eq!(got[24], "cm-24");

    // a continue token older than the retained window: 410 Gone
    let first = cms.list(&ListParams::default().limit(5)).await.unwrap();
    let token = first.metadata.continue_.unwrap();
    for i in 0..80 {
        cms.patch(
            "cm-00",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"i": i.to_string()}})),
        )
        .await
        .unwrap();
    }
    let s = status_of(
        cms.list(&ListParams::default().limit(5).continue_token(&token))
            .await
            .unwrap_err(),
    );
    assert_eq!((s.code, s.reason.as_str()), (410, "Expired"));
}

#[tokio::test]
async fn watch_from_resource_version_with_selector_transitions() {
    let (_env, client) = env().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let first = mk(&cms, "w1", json!({"watch": "yes"})).await;
    let rv = first.metadata.resource_version.unwrap();
    let mut stream = cms
        .watch(&WatchParams::default().labels("watch=yes").timeout(10), &rv)
        .await
        .unwrap()
        .boxed();
    mk(&cms, "w2", json!({"watch": "yes"})).await;
    mk(&cms, "ignored", json!({"watch": "no"})).await;
    cms.patch(
        "w1",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"x": "1"}})),
    )
    .await
    .unwrap();
    // leaving the selector is seen as DELETED, entering it as ADDED
    cms.patch(
        "w2",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"watch": "no"}}})),
    )
    .await
    .unwrap();
    cms.patch(
        "ignored",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"watch": "yes"}}})),
    )
    .await
    .unwrap();
    cms.delete("w1", &DeleteParams::default()).await.unwrap();
    let mut seen = vec![];
    while seen.len() < 5 {
        let ev = tokio::time::timeout(Duration::from_secs(20), stream.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        match ev {
            WatchEvent::Added(o) => seen.push(format!("ADDED {}", o.metadata.name.unwrap())),
            WatchEvent::Modified(o) => seen.push(format!("MODIFIED {}", o.metadata.name.unwrap())),
            WatchEvent::Deleted(o) => seen.push(format!("DELETED {}", o.metadata.name.unwrap())),
            WatchEvent::Bookmark(_) => {}
            WatchEvent::Error(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(
        seen,
        [
            "ADDED w2",
            "MODIFIED w1",
            "DELETED w2",
            "ADDED ignored",
            "DELETED w1"
        ]
    );
}

#[tokio::test]
async fn watch_without_version_sends_current_state_and_honours_timeout() {
    let (_env, client) = env().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    mk(&cms, "pre", json!({})).await;
    let start = std::time::Instant::now();
    let events: Vec<_> = cms
        .watch(&WatchParams::default().timeout(1), "0")
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "ended after the timeout"
    );
    assert!(start.elapsed() < Duration::from_secs(15));
    assert!(
        matches!(&events[0], WatchEvent::Added(o) if o.metadata.name.as_deref() == Some("pre"))
    );
}

#[tokio::test]
async fn bookmarks_and_gone() {
    let (_env, client) = env_with(Options {
        bookmark_interval: Duration::from_millis(200),
        watch_window: 20,
        ..Default::default()
    })
    .await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let o = mk(&cms, "b", json!({})).await;
    let rv = o.metadata.resource_version.clone().unwrap();
    let mut s = cms
        .watch(&WatchParams::default().timeout(5), &rv)
        .await
        .unwrap()
        .boxed();
    let ev = tokio::time::timeout(Duration::from_secs(10), s.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match ev {
        WatchEvent::Bookmark(b) => assert!(
            b.metadata.resource_version.parse::<u64>().unwrap() >= rv.parse::<u64>().unwrap()
        ),
        other => panic!("expected a bookmark, got {other:?}"),
    }
    drop(s);
    for i in 0..40 {
        cms.patch(
            "b",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"i": i.to_string()}})),
        )
        .await
        .unwrap();
    }
    let mut s = cms
        .watch(&WatchParams::default().timeout(5), &rv)
        .await
        .unwrap()
        .boxed();
    match s.try_next().await.unwrap().unwrap() {
        WatchEvent::Error(e) => assert_eq!((e.code, e.reason.as_str()), (410, "Expired")),
        other => panic!("expected 410, got {other:?}"),
    }
}

#[tokio::test]
async fn kube_runtime_watcher_and_reflector() {
    let (_env, client) = env_with(Options {
        bookmark_interval: Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    mk(&cms, "r1", json!({"r": "1"})).await;
    let (reader, writer) = reflector::store::<ConfigMap>();
    let stream = reflector(
        writer,
        watcher(cms.clone(), watcher::Config::default().labels("r=1")),
    )
    .default_backoff()
    .applied_objects();
    let task = tokio::spawn(async move {
        let mut s = std::pin::pin!(stream);
        while let Some(item) = s.next().await {
            item.unwrap();
        }
    });
    tokio::time::timeout(Duration::from_secs(20), reader.wait_until_ready())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reader.len(), 1);
    mk(&cms, "r2", json!({"r": "1"})).await;
    mk(&cms, "other", json!({"r": "2"})).await;
    let wait = |n: usize| {
        let reader = reader.clone();
        async move {
            for _ in 0..300 {
                if reader.len() == n {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("store never reached {n} objects (has {})", reader.len());
        }
    };
    wait(2).await;
    cms.delete("r1", &DeleteParams::default()).await.unwrap();
    wait(1).await;
    let names: Vec<String> = reader
        .state()
        .iter()
        .map(|c| c.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["r2"]);
    // streaming lists (sendInitialEvents) also work
    let (reader2, writer2) = reflector::store::<ConfigMap>();
    let s2 = reflector(
        writer2,
        watcher(cms.clone(), watcher::Config::default().streaming_lists()),
    )
    .applied_objects();
    let task2 = tokio::spawn(async move {
        let mut s = std::pin::pin!(s2);
        while let Some(item) = s.next().await {
            item.unwrap();
        }
    });
    tokio::time::timeout(Duration::from_secs(20), reader2.wait_until_ready())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reader2.len(), 2);
    task.abort();
    task2.abort();
}

#[tokio::test]
async fn metadata_lists_and_watches() {
    let (_env, client) = env().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    mk(&cms, "m1", json!({"k": "v"})).await;
    let list = cms.list_metadata(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    assert_eq!(
        list.items[0].types.as_ref().unwrap().kind,
        "PartialObjectMetadata"
    );
    assert_eq!(list.items[0].metadata.labels.as_ref().unwrap()["k"], "v");
    let meta_api: Api<kube::core::PartialObjectMeta<ConfigMap>> =
        Api::namespaced(client.clone(), "default");
    let stream = watcher(meta_api, watcher::Config::default()).applied_objects();
    let mut stream = std::pin::pin!(stream);
    let first = tokio::time::timeout(Duration::from_secs(20), stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.metadata.name.as_deref(), Some("m1"));
    mk(&cms, "m2", json!({})).await;
    let second = tokio::time::timeout(Duration::from_secs(20), stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(second.metadata.name.as_deref(), Some("m2"));
}
