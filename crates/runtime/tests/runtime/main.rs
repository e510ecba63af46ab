//! Runtime tests against a real API server (crates/testenv over HTTPS, through kube-rs):
//! the reconcile driver's requeue, backoff, suspend, requestedAt and finalizer handling, and the
//! metrics scraped over HTTP; OTLP export; the artifact client over HTTP.

mod artifact_fetch;
mod serve;
mod telemetry;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferroflux_api::GitRepository;
use ferroflux_runtime::driver::{self, DriverConfig, FINALIZER};
use ferroflux_runtime::{Metrics, Outcome, ReconcileContext, ReconcileError, Reconciler};
use ferroflux_testenv::{Options, TestEnv};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};

/// Records every reconcile and answers per object name.
#[derive(Clone, Default)]
struct Recorder {
    calls: Arc<Mutex<HashMap<String, Vec<Instant>>>>,
    cleanups: Arc<Mutex<Vec<String>>>,
    /// Per reconcile: did the object carry managedFields or `kubectl apply`'s annotation?
    bulky: Arc<Mutex<Vec<(bool, bool)>>>,
}

impl Recorder {
    fn calls(&self, name: &str) -> Vec<Instant> {
        self.calls
            .lock()
            .unwrap()
            .get(name)
            .cloned()
            .unwrap_or_default()
    }
}

impl Reconciler<GitRepository> for Recorder {
    async fn reconcile(
        &self,
        obj: Arc<GitRepository>,
        _ctx: ReconcileContext,
    ) -> Result<Outcome, ReconcileError> {
        let name = obj.name_any();
        self.bulky.lock().unwrap().push((
            !obj.managed_fields().is_empty(),
            obj.annotations().contains_key(LAST_APPLIED),
        ));
        let n = {
            let mut calls = self.calls.lock().unwrap();
            let entry = calls.entry(name.clone()).or_default();
            entry.push(Instant::now());
            entry.len()
        };
        match name.as_str() {
            "flaky" if n <= 4 => Err(ReconcileError::new(format!("attempt {n} failed"))),
            "flaky" => Ok(Outcome::AwaitChange),
            "periodic" => Ok(Outcome::RequeueAtInterval),
            _ => Ok(Outcome::AwaitChange),
        }
    }

    async fn cleanup(
        &self,
        obj: Arc<GitRepository>,
        _ctx: ReconcileContext,
    ) -> Result<(), ReconcileError> {
        self.cleanups.lock().unwrap().push(obj.name_any());
        Ok(())
    }
}

async fn install_crds(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in ferroflux_api::crdgen::crd_objects().expect("generated CRDs parse") {
        crds.create(&PostParams::default(), &crd)
            .await
            .expect("CRD created");
    }
    // Wait until the GitRepository kind is served.
    let repos: Api<GitRepository> = Api::namespaced(client.clone(), "default");
    for _ in 0..100 {
        if repos.list(&Default::default()).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("GitRepository kind never became available");
}

const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

fn repo(name: &str, interval: &str) -> GitRepository {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": name, "namespace": "default",
                     "annotations": {LAST_APPLIED: "{\"kind\":\"GitRepository\"}"}},
        "spec": {"url": "https://example.invalid/repo.git", "interval": interval}
    }))
    .expect("valid GitRepository")
}

async fn wait_for<F: Fn() -> bool>(what: &str, timeout: Duration, f: F) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn gaps(calls: &[Instant]) -> Vec<Duration> {
    calls.windows(2).map(|w| w[1] - w[0]).collect()
}

async fn scrape(addr: std::net::SocketAddr) -> String {
    reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn driver_against_a_real_api_server() {
    let env = TestEnv::start(Options::default())
        .await
        .expect("testenv starts");
    let client = env.client().await.expect("client");
    install_crds(&client).await;

    let metrics = Metrics::new();
    let (metrics_addr, _server) = ferroflux_runtime::serve::spawn_http(
        "127.0.0.1:0".parse().unwrap(),
        ferroflux_runtime::serve::metrics_router(metrics.clone()),
        futures::future::pending(),
    )
    .await
    .unwrap();

    let recorder = Recorder::default();
    let config = DriverConfig {
        controller: "gitrepository".into(),
        group: "source.toolkit.fluxcd.io".into(),
        kind: "GitRepository".into(),
        concurrency: 4,
        min_retry_delay: Duration::from_millis(100),
        max_retry_delay: Duration::from_millis(400),
        jitter_percentage: 0,
        namespace: None,
        label_selector: String::new(),
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    // A tap sees the driver's watch events (what feeds the Readiness stream and indexes).
    let tapped: Arc<Mutex<Vec<String>>> = Arc::default();
    let tap: driver::WatchTap<GitRepository> = {
        let tapped = tapped.clone();
        Arc::new(
            move |event: &kube::runtime::watcher::Event<GitRepository>| {
                if let kube::runtime::watcher::Event::Apply(obj) = event {
                    tapped.lock().unwrap().push(obj.name_any());
                }
            },
        )
    };
    let driver = tokio::spawn(driver::run::<GitRepository, _>(
        client.clone(),
        config,
        recorder.clone(),
        metrics.clone(),
        None,
        vec![tap],
        async move {
            let _ = stop_rx.await;
        },
    ));

    let api: Api<GitRepository> = Api::namespaced(client.clone(), "default");
    for (name, interval) in [("periodic", "1s"), ("flaky", "1h"), ("manual", "1h")] {
        api.create(&PostParams::default(), &repo(name, interval))
            .await
            .unwrap();
    }

    // Requeue at the object's interval (jitter disabled).
    wait_for("three periodic reconciles", Duration::from_secs(10), || {
        recorder.calls("periodic").len() >= 3
    })
    .await;
    for gap in gaps(&recorder.calls("periodic")) {
        assert!(
            gap >= Duration::from_millis(900) && gap <= Duration::from_millis(1600),
            "requeue gap {gap:?} should be about the 1s interval"
        );
    }

    // Exponential backoff on errors: 100ms, 200ms, 400ms (capped), 400ms.
    wait_for("flaky to succeed", Duration::from_secs(10), || {
        recorder.calls("flaky").len() >= 5
    })
    .await;
    let flaky = gaps(&recorder.calls("flaky"));
    let expected = [100u64, 200, 400, 400];
    for (gap, want) in flaky.iter().zip(expected) {
        let want = Duration::from_millis(want);
        assert!(
            *gap >= want && *gap <= want + Duration::from_millis(350),
            "backoff gaps {flaky:?} should follow {expected:?} ms"
        );
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        recorder.calls("flaky").len(),
        5,
        "no requeue after a success that awaits change"
    );

    // The finalizer was added before reconciling.
    wait_for("manual's first reconcile", Duration::from_secs(5), || {
        !recorder.calls("manual").is_empty()
    })
    .await;
    let manual = api.get("manual").await.unwrap();
    assert!(
        manual.finalizers().iter().any(|f| f == FINALIZER),
        "finalizer added"
    );
    let tapped = tapped.lock().unwrap().clone();
    for name in ["periodic", "flaky", "manual"] {
        assert!(tapped.iter().any(|n| n == name), "tap saw {tapped:?}");
    }
    // The cache the reconciler reads from leaves out what no reconciler needs.
    assert!(
        !manual.managed_fields().is_empty() && manual.annotations().contains_key(LAST_APPLIED),
        "the server keeps managedFields and the annotation"
    );
    let bulky = recorder.bulky.lock().unwrap().clone();
    assert!(!bulky.is_empty());
    assert!(
        bulky
            .iter()
            .all(|&(fields, annotation)| !fields && !annotation),
        "reconcilers saw managedFields or last-applied-configuration: {bulky:?}"
    );

    // requestedAt triggers an immediate reconcile, a metadata-only change does not.
    let before = recorder.calls("manual").len();
    api.patch(
        "manual",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({
            "metadata": {"labels": {"x": "y"}}
        })),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        recorder.calls("manual").len(),
        before,
        "label change is not a trigger"
    );
    api.patch(
        "manual",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({
            "metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "one"}}
        })),
    )
    .await
    .unwrap();
    wait_for("requestedAt reconcile", Duration::from_secs(5), || {
        recorder.calls("manual").len() == before + 1
    })
    .await;

    // Suspended: neither a new generation nor a request reaches the reconciler.
    api.patch(
        "manual",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({
            "spec": {"suspend": true},
            "metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "two"}}
        })),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        recorder.calls("manual").len(),
        before + 1,
        "suspended object is left alone"
    );

    // Deletion runs the cleanup and removes the finalizer, so the object goes away.
    api.patch(
        "manual",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"suspend": false}})),
    )
    .await
    .unwrap();
    api.delete("manual", &DeleteParams::default())
        .await
        .unwrap();
    wait_for("cleanup", Duration::from_secs(5), || {
        recorder
            .cleanups
            .lock()
            .unwrap()
            .contains(&"manual".to_string())
    })
    .await;
    let start = Instant::now();
    loop {
        if api.get_opt("manual").await.unwrap().is_none() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "object still present after cleanup"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Metrics, scraped over HTTP with upstream names and labels.
    let text = scrape(metrics_addr).await;
    let count = metric_value(
        &text,
        "gotk_reconcile_duration_seconds_count{kind=\"GitRepository\",name=\"periodic\",namespace=\"default\"}",
    )
    .unwrap_or_else(|| panic!("periodic duration series missing:\n{text}"));
    assert!(count >= 3.0, "{count}");
    assert!(
        !text.contains("name=\"manual\""),
        "series of the deleted object are removed:\n{text}"
    );
    let errors = metric_value(
        &text,
        "controller_runtime_reconcile_errors_total{controller=\"gitrepository\"}",
    )
    .unwrap();
    assert_eq!(errors, 4.0);
    let error_results = metric_value(
        &text,
        "controller_runtime_reconcile_total{controller=\"gitrepository\",result=\"error\"}",
    )
    .unwrap();
    assert_eq!(error_results, 4.0);
    let requeues = metric_value(
        &text,
        "controller_runtime_reconcile_total{controller=\"gitrepository\",result=\"requeue_after\"}",
    )
    .unwrap();
    assert!(requeues >= 3.0, "{requeues}");
    assert!(
        metric_value(
            &text,
            "controller_runtime_reconcile_total{controller=\"gitrepository\",result=\"success\"}"
        )
        .unwrap()
            >= 2.0
    );
    assert_eq!(
        metric_value(
            &text,
            "controller_runtime_max_concurrent_reconciles{controller=\"gitrepository\"}"
        ),
        Some(4.0)
    );
    assert_eq!(
        metric_value(
            &text,
            "controller_runtime_active_workers{controller=\"gitrepository\"}"
        ),
        Some(0.0)
    );
    assert!(metric_value(&text, "workqueue_adds_total{name=\"gitrepository\"}").unwrap() >= 3.0);
    assert!(text.contains("gotk_reconcile_duration_seconds_bucket{kind=\"GitRepository\",name=\"periodic\",namespace=\"default\",le=\"0.01\"}"));

    let _ = stop_tx.send(());
    tokio::time::timeout(Duration::from_secs(10), driver)
        .await
        .expect("driver stops on shutdown")
        .unwrap();
}

#[tokio::test]
async fn not_yet_implemented_leaves_objects_untouched() {
    let env = TestEnv::start(Options::default())
        .await
        .expect("testenv starts");
    let client = env.client().await.expect("client");
    install_crds(&client).await;
    let metrics = Metrics::new();
    let config = DriverConfig {
        controller: "gitrepository".into(),
        group: "source.toolkit.fluxcd.io".into(),
        kind: "GitRepository".into(),
        concurrency: 1,
        min_retry_delay: Duration::from_millis(100),
        max_retry_delay: Duration::from_secs(1),
        jitter_percentage: 5,
        namespace: Some("default".into()),
        label_selector: String::new(),
    };
    let api: Api<GitRepository> = Api::namespaced(client.clone(), "default");
    api.create(&PostParams::default(), &repo("untouched", "1m"))
        .await
        .unwrap();
    let before = api.get("untouched").await.unwrap();
    let driver = tokio::spawn(driver::run::<GitRepository, _>(
        client.clone(),
        config,
        driver::NotYetImplemented,
        metrics.clone(),
        None,
        Vec::new(),
        futures::future::pending(),
    ));
    let start = Instant::now();
    while metrics.render().lines().all(|l| {
        !l.starts_with(
            "controller_runtime_reconcile_total{controller=\"gitrepository\",result=\"success\"} 1",
        )
    }) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no reconcile happened"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = api.get("untouched").await.unwrap();
    assert_eq!(
        after.resource_version(),
        before.resource_version(),
        "nothing was written"
    );
    assert!(after.finalizers().is_empty());
    assert!(
        after.status.is_none()
            || after
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_none()
    );
    driver.abort();
}
