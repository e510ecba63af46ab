//! helm-controller as a process against testenv, with the chart served by the test as an
//! OCIRepository artifact: install, upgrade on a values change and on a new chart version,
//! uninstall on delete — each checked with the real `helm` CLI on the same API server.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferroflux_api::{HelmRelease, OCIRepository};
use ferroflux_testenv::{Options, TestEnv};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use sha2::Digest;

fn helm_bin() -> PathBuf {
    ferroflux_testsupport::tool("helm", ferroflux_testsupport::ORACLES_HINT)
}

struct Helm {
    kubeconfig: PathBuf,
    home: PathBuf,
}

impl Helm {
    fn run(&self, args: &[&str]) -> String {
        let out = Command::new(helm_bin())
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", &self.home)
            .env("HELM_CACHE_HOME", self.home.join("cache"))
            .env("HELM_CONFIG_HOME", self.home.join("config"))
            .env("HELM_DATA_HOME", self.home.join("data"))
            .current_dir(&self.home)
            .output()
            .expect("run helm");
        assert!(
            out.status.success(),
            "helm {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.run(args)).expect("helm JSON")
    }
}

/// `helm create web`, at `version`, packaged by helm: the .tgz bytes.
fn chart_package(helm: &Helm, version: &str) -> Vec<u8> {
    let dir = helm.home.join(format!("src-{version}"));
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(helm_bin())
        .current_dir(&dir)
        .args(["create", "web"])
        .env("HOME", &helm.home)
        .output()
        .unwrap();
    assert!(out.status.success());
    let chart_yaml = dir.join("web/Chart.yaml");
    let text = std::fs::read_to_string(&chart_yaml).unwrap();
    std::fs::write(
        &chart_yaml,
        text.replace("version: 0.1.0", &format!("version: {version}")),
    )
    .unwrap();
    let out = Command::new(helm_bin())
        .args(["package", "web", "-d", "pkg"])
        .current_dir(&dir)
        .env("HOME", &helm.home)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(dir.join(format!("pkg/web-{version}.tgz"))).unwrap()
}

/// Serves whatever bytes are current at `/chart.tgz`.
async fn serve(chart: Arc<Mutex<Vec<u8>>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/chart.tgz",
        axum::routing::get(move || {
            let c = chart.clone();
            async move { c.lock().unwrap().clone() }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/chart.tgz")
}

async fn set_artifact(client: &Client, url: &str, data: &[u8], version: &str) -> String {
    let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)));
    let api: Api<OCIRepository> = Api::namespaced(client.clone(), "default");
    api.patch_status(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"artifact": {
            "path": "ocirepository/default/web/chart.tgz",
            "url": url,
            "revision": format!("{version}@{digest}"),
            "digest": digest,
            "lastUpdateTime": "2026-01-01T00:00:00Z",
            "size": data.len(),
        }}})),
    )
    .await
    .unwrap();
    digest
}

async fn wait_ready(api: &Api<HelmRelease>, reason: &str, revision: &str) -> HelmRelease {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let hr = api.get("web").await.unwrap();
        let ready = hr
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
            .cloned();
        let rev = hr
            .status
            .as_ref()
            .and_then(|s| s.last_attempted_revision.clone());
        if let Some(c) = &ready
            && c.status == "True"
            && c.reason == reason
            && rev.as_deref() == Some(revision)
        {
            return hr;
        }
        assert!(
            Instant::now() < deadline,
            "HelmRelease not Ready/{reason} at {revision}: {:?}",
            hr.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn crds(env: &TestEnv) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/crds");
    for f in [
        "source.toolkit.fluxcd.io_ocirepositories.yaml",
        "helm.toolkit.fluxcd.io_helmreleases.yaml",
    ] {
        env.apply_yaml(&std::fs::read_to_string(root.join(f)).unwrap(), "test")
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_upgrade_uninstall_seen_by_helm() {
    let env = TestEnv::start(Options {
        simulate_workloads: Some(Duration::from_millis(200)),
        ..Default::default()
    })
    .await
    .unwrap();
    crds(&env);
    let tmp = tempfile::tempdir().unwrap();
    let kubeconfig = tmp.path().join("kubeconfig");
    env.write_kubeconfig(&kubeconfig).unwrap();
    let helm = Helm {
        kubeconfig: kubeconfig.clone(),
        home: tmp.path().to_path_buf(),
    };
    let client = env.client().await.unwrap();

    let v1 = chart_package(&helm, "0.1.0");
    let current = Arc::new(Mutex::new(v1.clone()));
    let url = serve(current.clone()).await;
    let repos: Api<OCIRepository> = Api::namespaced(client.clone(), "default");
    repos
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "OCIRepository",
                "metadata": {"name": "web", "namespace": "default"},
                "spec": {"url": "oci://registry.example/charts/web", "interval": "10m",
                         "layerSelector": {"mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip", "operation": "copy"}}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let d1 = set_artifact(&client, &url, &v1, "0.1.0").await;
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), "default");
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "web-values"},
            "data": {"values.yaml": "service:\n  port: 8080\n", "tag": "1.27"}
        }))
        .unwrap(),
    )
    .await
    .unwrap();

    let mut controller = tokio::process::Command::new(env!("CARGO_BIN_EXE_helm-controller"))
        .args([
            "--metrics-addr=127.0.0.1:0",
            "--health-addr=127.0.0.1:0",
            "--grpc-addr=127.0.0.1:0",
            "--log-level=debug",
        ])
        .env("KUBECONFIG", &kubeconfig)
        .env("RUNTIME_NAMESPACE", "default")
        .env("TMPDIR", tmp.path())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    let releases: Api<HelmRelease> = Api::namespaced(client.clone(), "default");
    releases
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
                "metadata": {"name": "web", "namespace": "default"},
                "spec": {
                    "interval": "10m",
                    "chartRef": {"kind": "OCIRepository", "name": "web"},
                    "valuesFrom": [
                        {"kind": "ConfigMap", "name": "web-values"},
                        {"kind": "ConfigMap", "name": "web-values", "valuesKey": "tag", "targetPath": "image.tag"},
                        {"kind": "Secret", "name": "absent", "optional": true}
                    ],
                    "values": {"replicaCount": 2}
                }
            }))
            .unwrap(),
        )
        .await
        .unwrap();

    // install
    let rev1 = format!("0.1.0+{}", &d1[7..19]);
    let hr = wait_ready(&releases, "InstallSucceeded", &rev1).await;
    let st = hr.status.clone().unwrap();
    assert_eq!(st.history.as_ref().map(Vec::len), Some(1));
    assert_eq!(st.history.as_ref().unwrap()[0].status, "deployed");
    assert_eq!(
        st.last_attempted_revision_digest.as_deref(),
        Some(d1.as_str())
    );
    assert!(
        st.last_attempted_config_digest
            .unwrap()
            .starts_with("sha256:")
    );
    let list = helm.json(&["list", "-n", "default", "-o", "json"]);
    assert_eq!(list[0]["name"], "web");
    assert_eq!(list[0]["revision"], "1");
    assert_eq!(list[0]["status"], "deployed");
    assert_eq!(list[0]["chart"], format!("web-{rev1}"));
    let values = helm.json(&["get", "values", "web", "-n", "default", "-o", "json"]);
    assert_eq!(
        values,
        // `--set` types integers and booleans only: 1.27 stays a string, as `helm --set` leaves it
        json!({"service": {"port": 8080}, "image": {"tag": "1.27"}, "replicaCount": 2})
    );
    let manifest = helm.run(&["get", "manifest", "web", "-n", "default"]);
    assert!(
        manifest.contains("replicas: 2") && manifest.contains("nginx:1.27"),
        "{manifest}"
    );
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), "default");
    let d = deployments.get("web").await.unwrap();
    assert_eq!(d.spec.unwrap().replicas, Some(2));
    assert_eq!(
        d.metadata.annotations.unwrap()["meta.helm.sh/release-name"],
        "web"
    );

    // upgrade on a values change
    releases
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"values": {"replicaCount": 3}}})),
        )
        .await
        .unwrap();
    wait_ready(&releases, "UpgradeSucceeded", &rev1).await;
    let hist = helm.json(&["history", "web", "-n", "default", "-o", "json"]);
    let states: Vec<(i64, String, String)> = hist
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["revision"].as_i64().unwrap(),
                h["status"].as_str().unwrap().to_string(),
                h["description"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            (1, "superseded".to_string(), "Install complete".to_string()),
            (2, "deployed".to_string(), "Upgrade complete".to_string()),
        ]
    );
    assert_eq!(
        helm.json(&["get", "values", "web", "-n", "default", "-o", "json"])["replicaCount"],
        3
    );
    assert_eq!(
        deployments.get("web").await.unwrap().spec.unwrap().replicas,
        Some(3)
    );

    // upgrade on a new chart version
    let v2 = chart_package(&helm, "0.2.0");
    *current.lock().unwrap() = v2.clone();
    let d2 = set_artifact(&client, &url, &v2, "0.2.0").await;
    let rev2 = format!("0.2.0+{}", &d2[7..19]);
    // the source watch is not wired yet: a reconcile request brings the new artifact in
    releases
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "now-1"}}}),
            ),
        )
        .await
        .unwrap();
    let hr = wait_ready(&releases, "UpgradeSucceeded", &rev2).await;
    let history = hr.status.unwrap().history.unwrap();
    assert_eq!(
        history
            .iter()
            .map(|s| (s.version, s.status.as_str()))
            .collect::<Vec<_>>(),
        [(3, "deployed"), (2, "superseded"), (1, "superseded")]
    );
    let list = helm.json(&["list", "-n", "default", "-o", "json"]);
    assert_eq!(list[0]["chart"], format!("web-{rev2}"));
    assert_eq!(list[0]["revision"], "3");

    // uninstall on delete
    releases
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while releases.get_opt("web").await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "HelmRelease not deleted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        helm.json(&["list", "-n", "default", "-o", "json"]),
        json!([])
    );
    assert!(deployments.get_opt("web").await.unwrap().is_none());
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), "default");
    let left = secrets
        .list(&kube::api::ListParams::default().labels("owner=helm"))
        .await
        .unwrap();
    assert!(left.items.is_empty(), "release Secrets left");
    let _ = controller.start_kill();
    let _ = controller.wait().await;
}
