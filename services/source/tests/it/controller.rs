//! The full GitRepository reconciler, driven by the shared runtime against the test API server
//! (crates/testenv): finalizer, status, Kubernetes Events, artifact served over HTTP, artifact
//! events, and removal of the artifacts when the object is deleted.

use std::time::Duration;

use ferroflux_api::GitRepository;
use ferroflux_api::conditions as cond;
use ferroflux_runtime::driver::{DriverConfig, run};
use ferroflux_runtime::events::EventRecorder;
use ferroflux_runtime::metrics::Metrics;
use k8s_openapi::api::core::v1::{Event, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use source_controller::artifact_events::ArtifactEventLog;
use source_controller::gitrepository::{GitRepositoryReconciler, Settings};
use source_controller::storage::{DigestAlgo, Storage};

use crate::support::{Repos, http_git};

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

#[tokio::test(flavor = "multi_thread")]
async fn reconciler_against_the_api_server() {
    let repos = Repos::new();
    let c1 = repos.commit(
        "app",
        &[("deploy/app.yaml", "kind: ConfigMap\n")],
        "first commit",
    );
    repos.publish("app");
    let http = http_git(&repos.base(), "user", "pass").await;

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
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "auth"}, "stringData": {"username": "user", "password": "pass"}})).unwrap(),
        )
        .await
        .unwrap();

    // Storage served over HTTP, advertised at the server's address.
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
    let events = ArtifactEventLog::new(16);
    let scratch = tempfile::tempdir().unwrap();
    let reconciler = GitRepositoryReconciler {
        storage: storage.clone(),
        events: events.clone(),
        recorder: EventRecorder::new(client.clone(), "source-controller", ""),
        settings: Settings::default(),
        scratch_root: scratch.path().to_path_buf(),
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let driver = tokio::spawn(run::<GitRepository, _>(
        client.clone(),
        DriverConfig {
            controller: "gitrepository".into(),
            group: "source.toolkit.fluxcd.io".into(),
            kind: "GitRepository".into(),
            concurrency: 2,
            min_retry_delay: Duration::from_millis(200),
            max_retry_delay: Duration::from_secs(2),
            jitter_percentage: 5,
            namespace: None,
            label_selector: String::new(),
        },
        reconciler,
        Metrics::new(),
        None,
        Vec::new(),
        async move {
            let _ = stop_rx.await;
        },
    ));

    let api: Api<GitRepository> = Api::namespaced(client.clone(), "default");
    let url = format!("http://{}/app.git", http.addr);
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": "app", "namespace": "default"},
            "spec": {"url": url, "interval": "1m", "ref": {"branch": "main"}, "secretRef": {"name": "auth"}},
        }))
        .unwrap(),
    )
    .await
    .unwrap();

    let obj = wait_for("Ready=True", || {
        let api = api.clone();
        async move {
            let o = api.get("app").await.ok()?;
            let ready = cond::is_ready(o.status.as_ref()?.conditions.as_deref()?);
            ready.then_some(o)
        }
    })
    .await;
    assert_eq!(
        obj.metadata.finalizers.as_deref(),
        Some(&["finalizers.fluxcd.io".to_string()][..])
    );
    let status = obj.status.clone().unwrap();
    assert_eq!(status.observed_generation, obj.metadata.generation);
    let artifact = status.artifact.clone().unwrap();
    assert_eq!(artifact.revision, format!("main@sha1:{c1}"));
    assert_eq!(
        artifact.url,
        format!("http://{addr}/gitrepository/default/app/{c1}.tar.gz")
    );
    let conds = status.conditions.unwrap();
    let ready = cond::get(&conds, cond::READY).unwrap();
    assert_eq!(
        ready.message,
        format!("stored artifact for revision 'main@sha1:{c1}'")
    );
    assert!(cond::get(&conds, cond::RECONCILING).is_none());

    // Served, with the advertised digest.
    let body = reqwest::get(&artifact.url)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    ferroflux_runtime::artifact::verify_digest(&artifact.digest, &body).unwrap();

    // Announced on the artifact event stream and as a Kubernetes Event.
    assert!(events.newest() >= 1);
    let kevents: Api<Event> = Api::namespaced(client.clone(), "default");
    let new = wait_for("NewArtifact event", || {
        let kevents = kevents.clone();
        async move {
            let list = kevents.list(&Default::default()).await.ok()?;
            list.items
                .into_iter()
                .find(|e| e.reason.as_deref() == Some("NewArtifact"))
        }
    })
    .await;
    assert_eq!(
        new.message.as_deref(),
        Some("stored artifact for commit 'first commit'")
    );

    // requestedAt is handled and recorded.
    api.patch(
        "app",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "now-1"}}}),
        ),
    )
    .await
    .unwrap();
    wait_for("lastHandledReconcileAt", || {
        let api = api.clone();
        async move {
            let o = api.get("app").await.ok()?;
            (o.status?.last_handled_reconcile_at.as_deref() == Some("now-1")).then_some(())
        }
    })
    .await;

    // A broken spec: Ready=False with the upstream reason, the artifact stays served.
    api.patch(
        "app",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"ref": {"branch": "nope"}}})),
    )
    .await
    .unwrap();
    let failed = wait_for("Ready=False", || {
        let api = api.clone();
        async move {
            let o = api.get("app").await.ok()?;
            let c = cond::get(o.status.as_ref()?.conditions.as_deref()?, cond::READY)?.clone();
            (c.status == "False").then_some((o, c))
        }
    })
    .await;
    assert_eq!(failed.1.reason, "GitOperationFailed");
    assert!(
        failed
            .1
            .message
            .contains("couldn't find remote ref \"refs/heads/nope\""),
        "{}",
        failed.1.message
    );
    assert_eq!(
        failed.0.status.unwrap().artifact.unwrap().digest,
        artifact.digest
    );
    assert_eq!(reqwest::get(&artifact.url).await.unwrap().status(), 200);

    // Deletion removes the artifacts and the finalizer.
    api.delete("app", &DeleteParams::default()).await.unwrap();
    wait_for("object gone", || {
        let api = api.clone();
        async move { api.get_opt("app").await.ok()?.is_none().then_some(()) }
    })
    .await;
    assert!(
        !storage_dir
            .path()
            .join("gitrepository/default/app")
            .exists()
    );
    assert_eq!(reqwest::get(&artifact.url).await.unwrap().status(), 404);

    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), driver).await;
}
