//! The HelmRepository and HelmChart reconcilers driven by the shared runtime against the test
//! API server (crates/testenv): finalizers, status, the index and chart served over HTTP, a
//! HelmChart rebuilt when its repository stores a new index (source triggers), `type: oci`
//! repositories made static, and deletion.

use std::time::Duration;

use ferroflux_api::conditions as cond;
use ferroflux_api::{HelmChart, HelmRepository};
use ferroflux_runtime::driver::{DriverConfig, run};
use ferroflux_runtime::events::EventRecorder;
use ferroflux_runtime::metrics::Metrics;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use source_controller::artifact_events::ArtifactEventLog;
use source_controller::helmchart::{self, HelmChartReconciler};
use source_controller::helmrepository::HelmRepositoryReconciler;
use source_controller::storage::{DigestAlgo, Storage};

use crate::helm_support::{ChartRepo, create_chart, serve_http};

async fn wait_for<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn config(kind: &str) -> DriverConfig {
    DriverConfig {
        controller: kind.to_lowercase(),
        group: "source.toolkit.fluxcd.io".into(),
        kind: kind.into(),
        concurrency: 2,
        min_retry_delay: Duration::from_millis(200),
        max_retry_delay: Duration::from_secs(2),
        jitter_percentage: 5,
        namespace: None,
        label_selector: String::new(),
    }
}

// helm runs as a blocking child process while the test server answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn helm_reconcilers_against_the_api_server() {
    let repo = ChartRepo::new();
    let src = create_chart(repo.work.path(), "podinfo", &[]);
    repo.package(&src, "1.0.0");
    repo.index(None);
    let server = serve_http(repo.dir.path(), None).await;

    let env = ferroflux_testenv::TestEnv::start(ferroflux_testenv::Options::default())
        .await
        .unwrap();
    let client = env.client().await.unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in ferroflux_api::crdgen::crd_objects().unwrap() {
        if crd.spec.group == "source.toolkit.fluxcd.io" {
            crds.create(&PostParams::default(), &crd).await.unwrap();
        }
    }
    let storage_dir = tempfile::tempdir().unwrap();
    let (addr, _srv) = source_controller::server::spawn(
        "127.0.0.1:0".parse().unwrap(),
        storage_dir.path(),
        std::future::pending(),
    )
    .await
    .unwrap();
    let storage = Storage::new(
        storage_dir.path(),
        &addr.to_string(),
        Duration::from_secs(60),
        2,
        DigestAlgo::Sha256,
    )
    .unwrap();
    let events = ArtifactEventLog::new(64);
    let scratch = tempfile::tempdir().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let stop = futures::FutureExt::shared(async move {
        let _ = stop_rx.await;
    });
    let repos = tokio::spawn(run::<HelmRepository, _>(
        client.clone(),
        config("HelmRepository"),
        HelmRepositoryReconciler {
            storage: storage.clone(),
            events: events.clone(),
            recorder: EventRecorder::new(client.clone(), "source-controller", ""),
            settings: Default::default(),
        },
        Metrics::new(),
        None,
        Vec::new(),
        stop.clone(),
    ));
    let index = helmchart::SourceIndex::default();
    let charts = tokio::spawn(run::<HelmChart, _>(
        client.clone(),
        config("HelmChart"),
        HelmChartReconciler {
            storage: storage.clone(),
            events: events.clone(),
            recorder: EventRecorder::new(client.clone(), "source-controller", ""),
            settings: helmchart::Settings {
                requeue_dependency: Duration::from_millis(500),
                ..Default::default()
            },
            scratch_root: scratch.path().to_path_buf(),
        },
        Metrics::new(),
        Some(helmchart::source_triggers(&events, index.clone())),
        vec![index.tap()],
        stop.clone(),
    ));

    let repo_api: Api<HelmRepository> = Api::namespaced(client.clone(), "default");
    let chart_api: Api<HelmChart> = Api::namespaced(client.clone(), "default");
    // The chart first: it waits for the repository's artifact, then follows its new index.
    chart_api
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "HelmChart",
                "metadata": {"name": "podinfo", "namespace": "default"},
                "spec": {"chart": "podinfo", "version": "*", "interval": "1h",
                         "sourceRef": {"kind": "HelmRepository", "name": "charts"}},
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    repo_api
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "HelmRepository",
                "metadata": {"name": "charts", "namespace": "default"},
                "spec": {"url": server.url("/")},
            }))
            .unwrap(),
        )
        .await
        .unwrap();

    let hr = wait_for("HelmRepository Ready", || {
        let api = repo_api.clone();
        async move {
            let o = api.get("charts").await.ok()?;
            cond::is_ready(o.status.as_ref()?.conditions.as_deref()?).then_some(o)
        }
    })
    .await;
    assert_eq!(
        hr.metadata.finalizers.as_deref(),
        Some(&["finalizers.fluxcd.io".to_string()][..])
    );
    let status = hr.status.clone().unwrap();
    assert_eq!(
        status.url.as_deref(),
        Some(format!("http://{addr}/helmrepository/default/charts/index.yaml").as_str())
    );
    let body = reqwest::get(status.url.as_deref().unwrap())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    ferroflux_runtime::artifact::verify_digest(&status.artifact.as_ref().unwrap().digest, &body)
        .unwrap();

    let chart = wait_for("HelmChart 1.0.0", || {
        let api = chart_api.clone();
        async move {
            let o = api.get("podinfo").await.ok()?;
            let s = o.status.as_ref()?;
            (cond::is_ready(s.conditions.as_deref()?) && s.artifact.as_ref()?.revision == "1.0.0")
                .then_some(o)
        }
    })
    .await;
    let artifact = chart.status.as_ref().unwrap().artifact.clone().unwrap();
    let body = reqwest::get(&artifact.url)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(
        &body[..],
        &std::fs::read(repo.dir.path().join("podinfo-1.0.0.tgz")).unwrap()[..]
    );

    // A new chart version: the repository picks it up on requestedAt and the chart follows
    // through the source trigger (its own interval is an hour).
    repo.package(&src, "1.1.0");
    repo.index(None);
    repo_api
        .patch(
            "charts",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "1"}}}),
            ),
        )
        .await
        .unwrap();
    wait_for("HelmChart 1.1.0", || {
        let api = chart_api.clone();
        async move {
            let o = api.get("podinfo").await.ok()?;
            (o.status.as_ref()?.artifact.as_ref()?.revision == "1.1.0").then_some(())
        }
    })
    .await;

    // type: oci is static: artifacts, finalizer and status go.
    repo_api
        .patch(
            "charts",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"type": "oci", "url": "oci://127.0.0.1:1/charts"}})),
        )
        .await
        .unwrap();
    let hr = wait_for("static HelmRepository", || {
        let api = repo_api.clone();
        async move {
            let o = api.get("charts").await.ok()?;
            let empty = o
                .status
                .as_ref()
                .is_none_or(|s| serde_json::to_value(s).ok() == Some(json!({})));
            (o.metadata
                .finalizers
                .as_deref()
                .unwrap_or_default()
                .is_empty()
                && empty)
                .then_some(o)
        }
    })
    .await;
    assert!(hr.status.as_ref().is_none_or(|s| s.artifact.is_none()));
    assert!(
        !storage_dir
            .path()
            .join("helmrepository/default/charts")
            .exists()
    );

    // Deletion removes the chart's artifacts.
    chart_api
        .delete("podinfo", &DeleteParams::default())
        .await
        .unwrap();
    wait_for("HelmChart gone", || {
        let api = chart_api.clone();
        async move { api.get_opt("podinfo").await.ok()?.is_none().then_some(()) }
    })
    .await;
    assert!(
        !storage_dir
            .path()
            .join("helmchart/default/podinfo")
            .exists()
    );

    let _ = stop_tx.send(());
    let _ = repos.await;
    let _ = charts.await;
}
