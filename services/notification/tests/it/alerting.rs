//! The alerting pipeline against the test API server: Alerts and Providers in the cluster,
//! events POSTed as upstream controllers do, deliveries captured by a local HTTP server, and
//! the Kubernetes Events upstream records on Alerts (MetadataAppendFailed,
//! NotificationDispatchFailed with the token masked, Migration).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferroflux_api::provider::ProviderType;
use ferroflux_api::{Alert, Kustomization, Provider};
use ferroflux_runtime::events::EventRecorder;
use k8s_openapi::api::core::v1::{Event as CoreEvent, Secret};
use kube::api::{Api, ListParams, PostParams};
use kube::{Client, ResourceExt};
use notification_controller::provider::{Dispatcher, Job};
use notification_controller::providers::{self, Settings};
use serde_json::json;

use crate::support::{
    Alerting, Capture, Captured, KUSTOMIZE, NOTIFICATION, install_crds, wait_for,
};

async fn create<K>(client: &Client, value: serde_json::Value)
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let obj: K = serde_json::from_value(value).unwrap();
    Api::<K>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &obj)
        .await
        .unwrap();
}

fn event(name: &str, message: &str, revision: &str) -> serde_json::Value {
    json!({
        "involvedObject": {"kind": "Kustomization", "namespace": "default", "name": name,
                           "uid": "u-1", "apiVersion": "kustomize.toolkit.fluxcd.io/v1"},
        "severity": "info", "timestamp": "2026-01-01T00:00:00Z", "message": message,
        "reason": "ReconciliationSucceeded",
        "metadata": {"kustomize.toolkit.fluxcd.io/revision": revision,
                     "kustomize.toolkit.fluxcd.io/token": "tk",
                     "event.toolkit.fluxcd.io/env": "prod"},
        "reportingController": "kustomize-controller"
    })
}

async fn post(http: &reqwest::Client, addr: std::net::SocketAddr, body: &serde_json::Value) -> u16 {
    http.post(format!("http://{addr}/"))
        .json(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Requests captured within `window`, sorted by path.
async fn drain(cap: &Capture, window: Duration) -> Vec<Captured> {
    let deadline = Instant::now() + window;
    let mut out = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match cap.try_next(left).await {
            Some(c) => out.push(c),
            None => break,
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

async fn alert_events(client: &Client, alert: &str, reason: &str) -> Vec<CoreEvent> {
    let api: Api<CoreEvent> = Api::namespaced(client.clone(), "default");
    api.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| {
            e.involved_object.kind.as_deref() == Some("Alert")
                && e.involved_object.name.as_deref() == Some(alert)
                && e.reason.as_deref() == Some(reason)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn alerts_route_events_to_providers() {
    let env = ferroflux_testenv::TestEnv::start(ferroflux_testenv::Options::default())
        .await
        .unwrap();
    let client = env.client().await.unwrap();
    install_crds(&client, &[NOTIFICATION, KUSTOMIZE]).await;

    let cap = Capture::start().await;
    cap.answer("/slow", 200, Duration::from_secs(3), "");
    cap.answer(
        "/fail",
        400,
        Duration::ZERO,
        "token tok-SECRET-123 rejected",
    );

    create::<Secret>(
        &client,
        json!({"metadata": {"name": "hook"}, "stringData": {
        "address": cap.url("/hook"), "token": "s3cr3t", "headers": "X-Test: \"yes\"\n"}}),
    )
    .await;
    create::<Secret>(
        &client,
        json!({"metadata": {"name": "failing"}, "stringData": {
        "address": cap.url("/fail"), "token": "tok-SECRET-123"}}),
    )
    .await;
    for (name, spec) in [
        (
            "generic",
            json!({"type": "generic-hmac", "secretRef": {"name": "hook"}}),
        ),
        (
            "slow",
            json!({"type": "generic", "address": cap.url("/slow"), "timeout": "1s"}),
        ),
        (
            "failing",
            json!({"type": "generic", "secretRef": {"name": "failing"}}),
        ),
        (
            "labelled",
            json!({"type": "generic", "address": cap.url("/labelled")}),
        ),
        (
            "off",
            json!({"type": "generic", "address": cap.url("/off"), "suspend": true}),
        ),
    ] {
        create::<Provider>(&client, json!({"metadata": {"name": name}, "spec": spec})).await;
    }
    let all = json!([{"kind": "Kustomization", "name": "*"}]);
    for (name, spec) in [
        (
            "all",
            json!({"providerRef": {"name": "generic"}, "eventSources": all,
                       "eventMetadata": {"env": "staging"}, "exclusionList": ["^ignored"]}),
        ),
        (
            "slow",
            json!({"providerRef": {"name": "slow"}, "eventSources": all,
                        "inclusionList": ["^Applied"]}),
        ),
        (
            "failing",
            json!({"providerRef": {"name": "failing"},
                           "eventSources": [{"kind": "Kustomization", "name": "podinfo"}],
                           "inclusionList": ["^Applied"]}),
        ),
        (
            "labelled",
            json!({"providerRef": {"name": "labelled"},
                            "eventSources": [{"kind": "Kustomization", "name": "*",
                                              "matchLabels": {"team": "a"}}]}),
        ),
        (
            "to-suspended-provider",
            json!({"providerRef": {"name": "off"}, "eventSources": all}),
        ),
        (
            "suspended",
            json!({"providerRef": {"name": "labelled"}, "eventSources": all,
                             "suspend": true}),
        ),
        (
            "errors-only",
            json!({"providerRef": {"name": "labelled"}, "eventSources": all,
                               "eventSeverity": "error"}),
        ),
        (
            "orphan",
            json!({"providerRef": {"name": "missing"},
                          "eventSources": [{"kind": "Kustomization", "name": "podinfo"}],
                          "inclusionList": ["^Applied"]}),
        ),
    ] {
        create::<Alert>(&client, json!({"metadata": {"name": name}, "spec": spec})).await;
    }
    // An Alert from an older notification-controller, with the legacy finalizer.
    create::<Alert>(
        &client,
        json!({"metadata": {"name": "legacy",
        "finalizers": ["finalizers.fluxcd.io"]},
        "spec": {"providerRef": {"name": "missing"},
                 "eventSources": [{"kind": "HelmRelease", "name": "x"}]}}),
    )
    .await;
    let ks = |name: &str, labels: serde_json::Value| {
        json!({"metadata": {"name": name, "labels": labels},
               "spec": {"interval": "5m", "path": "./", "prune": true,
                        "sourceRef": {"kind": "GitRepository", "name": "repo"}}})
    };
    create::<Kustomization>(&client, ks("podinfo", json!({"team": "a"}))).await;
    create::<Kustomization>(&client, ks("other", json!({"team": "b"}))).await;

    let alerting = Alerting::start(&client, false).await;
    let (addr, dispatcher) = (alerting.addr, alerting.dispatcher.clone());

    // The Provider reconciler adds the finalizer; the Alert reconciler removes the legacy one.
    let providers: Api<Provider> = Api::namespaced(client.clone(), "default");
    wait_for("provider finalizer", 20, || {
        let providers = providers.clone();
        async move {
            let p = providers.get("generic").await.ok()?;
            p.finalizers()
                .iter()
                .any(|f| f == "finalizers.fluxcd.io")
                .then_some(())
        }
    })
    .await;
    let alerts: Api<Alert> = Api::namespaced(client.clone(), "default");
    wait_for("legacy finalizer removed", 20, || {
        let alerts = alerts.clone();
        async move {
            let a = alerts.get("legacy").await.ok()?;
            a.finalizers().is_empty().then_some(())
        }
    })
    .await;
    assert_eq!(alert_events(&client, "legacy", "Migration").await.len(), 1);

    // One event: the intake answers at once even though one Provider takes 3s.
    let http = reqwest::Client::new();
    let started = Instant::now();
    assert_eq!(
        post(
            &http,
            addr,
            &event("podinfo", "Applied revision: r1", "main@sha1:r1")
        )
        .await,
        202
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let got = drain(&cap, Duration::from_millis(1500)).await;
    let paths: Vec<&str> = got.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(paths, ["/fail", "/hook", "/labelled", "/slow"]);
    // The generic-hmac delivery: merged metadata (Alert's env wins over the annotation, the
    // token is gone), the Secret's headers, the signature.
    let hook = &got[1];
    let expected = r#"{"involvedObject":{"kind":"Kustomization","namespace":"default","name":"podinfo","uid":"u-1","apiVersion":"kustomize.toolkit.fluxcd.io/v1"},"severity":"info","timestamp":"2026-01-01T00:00:00Z","message":"Applied revision: r1","reason":"ReconciliationSucceeded","metadata":{"env":"staging","revision":"main@sha1:r1"},"reportingController":"kustomize-controller"}"#;
    assert_eq!(hook.body_str(), expected);
    assert_eq!(hook.header("x-test"), Some("yes"));
    assert_eq!(hook.header("gotk-component"), Some("kustomize-controller"));
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, b"s3cr3t");
    let sig = hex::encode(aws_lc_rs::hmac::sign(&key, expected.as_bytes()).as_ref());
    assert_eq!(
        hook.header("x-signature"),
        Some(format!("sha256={sig}").as_str())
    );

    // The Alert's eventMetadata conflicts with the object's annotation: a warning on the Alert.
    let conflicts = wait_for("MetadataAppendFailed", 10, || {
        let client = client.clone();
        async move {
            let e = alert_events(&client, "all", "MetadataAppendFailed").await;
            (!e.is_empty()).then_some(e)
        }
    })
    .await;
    assert_eq!(conflicts[0].type_.as_deref(), Some("Warning"));
    assert_eq!(
        conflicts[0]
            .metadata
            .annotations
            .clone()
            .unwrap_or_default(),
        BTreeMap::from([(
            "env".to_string(),
            "involved object annotations, Alert object .spec.eventMetadata".to_string()
        )])
    );

    // The failing Provider: a warning whose message has the token masked.
    let failed = wait_for("NotificationDispatchFailed (failing)", 10, || {
        let client = client.clone();
        async move {
            let e = alert_events(&client, "failing", "NotificationDispatchFailed").await;
            (!e.is_empty()).then_some(e)
        }
    })
    .await;
    let msg = failed[0].message.clone().unwrap_or_default();
    assert!(
        msg.starts_with("failed to send notification for Kustomization/default/podinfo: "),
        "{msg}"
    );
    assert!(msg.contains("token ***** rejected"), "{msg}");
    assert!(!msg.contains("tok-SECRET-123"), "{msg}");
    // The slow Provider times out after its 1s timeout.
    let slow = wait_for("NotificationDispatchFailed (slow)", 10, || {
        let client = client.clone();
        async move {
            let e = alert_events(&client, "slow", "NotificationDispatchFailed").await;
            (!e.is_empty()).then_some(e)
        }
    })
    .await;
    assert!(
        slow[0]
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("deadline exceeded"),
        "{:?}",
        slow[0].message
    );
    // A missing Provider.
    let orphan = alert_events(&client, "orphan", "NotificationDispatchFailed").await;
    assert_eq!(orphan.len(), 1);
    assert!(
        orphan[0].message.as_deref().unwrap_or_default().contains(
            "failed to read provider: Provider.notification.toolkit.fluxcd.io \"missing\" not found"
        ),
        "{:?}",
        orphan[0].message
    );

    // The same event again within the rate-limit interval: 429, nothing delivered.
    assert_eq!(
        post(
            &http,
            addr,
            &event("podinfo", "Applied revision: r1", "main@sha1:r1")
        )
        .await,
        429
    );
    // A new revision is delivered; an object without the label skips the labelled Alert; an
    // excluded message skips the Alert that excludes it.
    assert_eq!(
        post(
            &http,
            addr,
            &event("other", "Applied revision: r2", "main@sha1:r2")
        )
        .await,
        202
    );
    assert_eq!(
        post(&http, addr, &event("other", "ignored: r3", "main@sha1:r3")).await,
        202
    );
    let got = drain(&cap, Duration::from_millis(1500)).await;
    let bodies: Vec<(String, String)> = got
        .iter()
        .filter(|c| c.path != "/slow")
        .map(|c| {
            (
                c.path.clone(),
                c.json()["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        bodies,
        [("/hook".to_string(), "Applied revision: r2".to_string())]
    );

    // Each Provider delivered to has a queue and a worker; a deleted Provider's go with it
    // (its finalizer removed by the Provider reconciler, then the watch reports the deletion).
    let queue = |name: &str| ("default".to_string(), name.to_string());
    let before = dispatcher.queues();
    assert!(before.contains(&queue("labelled")), "{before:?}");
    assert_eq!(dispatcher.workers(), before.len());
    providers
        .delete("labelled", &Default::default())
        .await
        .unwrap();
    wait_for("the deleted Provider's queue and worker gone", 20, || {
        let dispatcher = dispatcher.clone();
        let before = before.clone();
        async move {
            let now = dispatcher.queues();
            (!now.contains(&queue("labelled"))
                && now.len() == before.len() - 1
                && dispatcher.workers() == now.len())
            .then_some(())
        }
    })
    .await;
    assert!(providers.get_opt("labelled").await.unwrap().is_none());
}

#[tokio::test]
async fn idle_provider_workers_retire_and_come_back() {
    // No API server is reached: deliveries go to the capture server, and no failure is
    // recorded.
    let cap = Capture::start().await;
    let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
    let client = Client::try_from(config).unwrap();
    let dispatcher = Dispatcher::with_idle(
        EventRecorder::new(client, "notification-controller", ""),
        Duration::from_millis(300),
    );
    let job = |url: String| {
        let settings = Settings {
            url,
            ..Default::default()
        };
        let e: notification_controller::event::Event =
            serde_json::from_str(crate::providers::BODY_INFO).unwrap();
        Job {
            alert: Arc::new(
                serde_json::from_value(json!({
                "metadata": {"name": "a", "namespace": "default"},
                "spec": {"providerRef": {"name": "p"}, "eventSources": []}}))
                .unwrap(),
            ),
            object: "Kustomization/default/podinfo".into(),
            delivery: providers::build(ProviderType::Generic, &settings, &e).unwrap(),
            settings: Arc::new(settings),
            timeout: Duration::from_secs(5),
            deadline: tokio::time::Instant::now() + Duration::from_secs(5),
        }
    };
    dispatcher.enqueue("default", "p", job(cap.url("/one")));
    assert_eq!(cap.next(Duration::from_secs(5)).await.path, "/one");
    assert_eq!(dispatcher.workers(), 1);
    wait_for("the idle worker retired", 10, || {
        let d = dispatcher.clone();
        async move { (d.workers() == 0 && d.queues().is_empty()).then_some(()) }
    })
    .await;
    // The next delivery makes a new queue.
    dispatcher.enqueue("default", "p", job(cap.url("/two")));
    assert_eq!(cap.next(Duration::from_secs(5)).await.path, "/two");
    assert_eq!(
        dispatcher.queues(),
        [("default".to_string(), "p".to_string())]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cross_namespace_refs_can_be_blocked() {
    let env = ferroflux_testenv::TestEnv::start(ferroflux_testenv::Options::default())
        .await
        .unwrap();
    let client = env.client().await.unwrap();
    install_crds(&client, &[NOTIFICATION]).await;
    let cap = Capture::start().await;
    create::<Provider>(
        &client,
        json!({"metadata": {"name": "p"},
        "spec": {"type": "generic", "address": cap.url("/hook")}}),
    )
    .await;
    create::<Alert>(
        &client,
        json!({"metadata": {"name": "cross"},
        "spec": {"providerRef": {"name": "p"},
                 "eventSources": [{"kind": "Kustomization", "name": "*", "namespace": "apps"}]}}),
    )
    .await;
    let alerting = Alerting::start(&client, true).await;
    let addr = alerting.addr;
    let mut e = event("podinfo", "Applied revision: r1", "main@sha1:r1");
    e["involvedObject"]["namespace"] = "apps".into();
    assert_eq!(post(&reqwest::Client::new(), addr, &e).await, 202);
    let denied = wait_for("NotificationDispatchFailed (cross)", 10, || {
        let client = client.clone();
        async move {
            let e = alert_events(&client, "cross", "NotificationDispatchFailed").await;
            (!e.is_empty()).then_some(e)
        }
    })
    .await;
    assert!(
        denied[0]
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("cross-namespace references have been blocked"),
        "{:?}",
        denied[0].message
    );
    assert!(cap.try_next(Duration::from_millis(500)).await.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn commit_status_updates_reach_git_providers_with_upstreams_id() {
    let env = ferroflux_testenv::TestEnv::start(ferroflux_testenv::Options::default())
        .await
        .unwrap();
    let client = env.client().await.unwrap();
    install_crds(&client, &[NOTIFICATION]).await;
    let cap = Capture::start().await;
    cap.answer("/api/v3/repos/org/repo/commits/", 200, Duration::ZERO, "[]");
    create::<Secret>(
        &client,
        json!({"metadata": {"name": "gh"}, "stringData": {"token": "ghp_t"}}),
    )
    .await;
    create::<Provider>(
        &client,
        json!({"metadata": {"name": "github"},
        "spec": {"type": "github", "address": cap.url("/org/repo"), "secretRef": {"name": "gh"}}}),
    )
    .await;
    create::<Provider>(
        &client,
        json!({"metadata": {"name": "chat"},
        "spec": {"type": "slack", "address": cap.url("/chat")}}),
    )
    .await;
    for (name, provider) in [("status", "github"), ("chat", "chat")] {
        create::<Alert>(
            &client,
            json!({"metadata": {"name": name},
            "spec": {"providerRef": {"name": provider},
                     "eventSources": [{"kind": "Kustomization", "name": "*"}]}}),
        )
        .await;
    }
    let uid = Api::<Provider>::namespaced(client.clone(), "default")
        .get("github")
        .await
        .unwrap()
        .uid()
        .unwrap();
    let alerting = Alerting::start(&client, false).await;
    let addr = alerting.addr;
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let mut e = event("podinfo", "Applied revision", &format!("main@sha1:{sha}"));
    e["metadata"]["kustomize.toolkit.fluxcd.io/commit_status"] = "update".into();
    let http = reqwest::Client::new();
    assert_eq!(post(&http, addr, &e).await, 202);
    let got = drain(&cap, Duration::from_millis(1500)).await;
    // Only the Git provider: commit status updates are not chat messages.
    let paths: Vec<(&str, &str)> = got
        .iter()
        .map(|c| (c.method.as_str(), c.path.as_str()))
        .collect();
    assert_eq!(
        paths,
        [
            (
                "GET",
                format!("/api/v3/repos/org/repo/commits/{sha}/statuses?per_page=50").as_str()
            ),
            (
                "POST",
                format!("/api/v3/repos/org/repo/statuses/{sha}").as_str()
            ),
        ]
    );
    let first = uid.split('-').next().unwrap();
    assert_eq!(
        got[1].json()["context"],
        format!("kustomization/podinfo/{first}").as_str()
    );
    assert_eq!(got[1].json()["state"], "success");
    // A plain info event (no commit key, no update) is dropped for the Git provider and sent
    // to the chat.
    assert_eq!(
        post(
            &http,
            addr,
            &event("podinfo", "other message", "main@sha1:x")
        )
        .await,
        202
    );
    let got = drain(&cap, Duration::from_millis(1500)).await;
    let paths: Vec<&str> = got.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(paths, ["/chat"]);
}
