//! helm-controller as a process against testenv, with the chart served by the test as an
//! OCIRepository artifact: install, upgrade on a values change and on a new chart version,
//! uninstall on delete — each checked with the real `helm` CLI on the same API server.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferroflux_api::{HelmChart, HelmRelease, OCIRepository};
use ferroflux_helm::release::{Release, storage};
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
    set_artifact_of::<OCIRepository>(client, "web", url, data, version).await
}

async fn set_artifact_of<K>(
    client: &Client,
    name: &str,
    url: &str,
    data: &[u8],
    version: &str,
) -> String
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)));
    let api: Api<K> = Api::namespaced(client.clone(), "default");
    api.patch_status(
        name,
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
        "source.toolkit.fluxcd.io_helmcharts.yaml",
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
    // the new artifact alone brings the upgrade (source watch): no reconcile request
    let hr = wait_ready(&releases, "UpgradeSucceeded", &rev2).await;
    let history = hr.status.unwrap().history.unwrap();
    assert_eq!(
        history
            .iter()
            .map(|s| (s.version, s.status.as_str()))
            .collect::<Vec<_>>(),
        // upstream truncates the history of an in-sync release to the previous good one
        [(3, "deployed"), (2, "superseded")]
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

/// The stored release of `name` at `version` on an API server, with what differs between two
/// runs by nature cleared: timestamps, and the chart files' modification times (Helm keeps
/// them from the archive, ferroflux does not record them yet).
async fn stored_release(client: &Client, name: &str, version: i64) -> (Release, Value) {
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), "default");
    let s = secrets
        .get(&format!("sh.helm.release.v1.{name}.v{version}"))
        .await
        .unwrap();
    let v = serde_json::to_value(&s).unwrap();
    let mut rel = storage::from_object(&v).unwrap();
    if let Some(i) = &mut rel.info {
        i.first_deployed = None;
        i.last_deployed = None;
        i.deleted = None;
    }
    if let Some(c) = &mut rel.chart {
        c.modtime = None;
        c.schemamodtime = None;
        for f in c
            .templates
            .iter_mut()
            .flatten()
            .chain(c.files.iter_mut().flatten())
        {
            f.modtime = None;
        }
    }
    let mut labels = v["metadata"]["labels"].clone();
    if let Some(l) = labels.as_object_mut() {
        l.remove("createdAt");
        l.remove("modifiedAt");
    }
    (rel, json!({"type": v["type"], "labels": labels}))
}

async fn compare_with_helm(ours: &Client, theirs: &Client, version: i64) {
    let (a, la) = stored_release(ours, "web", version).await;
    let (b, lb) = stored_release(theirs, "web", version).await;
    assert_eq!(la, lb, "Secret type and labels of revision {version}");
    let (ja, jb): (Value, Value) = (
        serde_json::from_str(&a.to_go_json()).unwrap(),
        serde_json::from_str(&b.to_go_json()).unwrap(),
    );
    for k in [
        "name",
        "namespace",
        "version",
        "info",
        "config",
        "manifest",
        "hooks",
        "apply_method",
        "chart",
    ] {
        assert_eq!(
            ja[k], jb[k],
            "release field {k} of revision {version} differs from helm's"
        );
    }
    assert_eq!(a.to_go_json(), b.to_go_json());
}

/// The same chart and values through ferroflux (HelmChart source) and through
/// `helm upgrade --install` on a second API server: the release records are equal field by
/// field, timestamps aside, after the install and after an upgrade.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_records_equal_helm_upgrade_install() {
    let opts = || Options {
        simulate_workloads: Some(Duration::from_millis(200)),
        ..Default::default()
    };
    let env = TestEnv::start(opts()).await.unwrap();
    let peer = TestEnv::start(opts()).await.unwrap();
    crds(&env);
    let tmp = tempfile::tempdir().unwrap();
    let kubeconfig = tmp.path().join("kubeconfig");
    env.write_kubeconfig(&kubeconfig).unwrap();
    let peer_kubeconfig = tmp.path().join("peer-kubeconfig");
    peer.write_kubeconfig(&peer_kubeconfig).unwrap();
    let helm = Helm {
        kubeconfig: peer_kubeconfig,
        home: tmp.path().to_path_buf(),
    };
    let client = env.client().await.unwrap();
    let peer_client = peer.client().await.unwrap();

    let chart = chart_package(&helm, "1.2.3");
    let chart_file = tmp.path().join("web-1.2.3.tgz");
    std::fs::write(&chart_file, &chart).unwrap();
    let url = serve(Arc::new(Mutex::new(chart.clone()))).await;
    let charts: Api<HelmChart> = Api::namespaced(client.clone(), "default");
    charts
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "HelmChart",
                "metadata": {"name": "default-web", "namespace": "default"},
                "spec": {"chart": "web", "version": "*", "interval": "10m",
                         "sourceRef": {"kind": "HelmRepository", "name": "charts"}}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    set_artifact_of::<HelmChart>(&client, "default-web", &url, &chart, "1.2.3").await;

    let mut controller = tokio::process::Command::new(env!("CARGO_BIN_EXE_helm-controller"))
        .args([
            "--metrics-addr=127.0.0.1:0",
            "--health-addr=127.0.0.1:0",
            "--grpc-addr=127.0.0.1:0",
        ])
        .env("KUBECONFIG", &kubeconfig)
        .env("RUNTIME_NAMESPACE", "default")
        .env("TMPDIR", tmp.path())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let values1 = json!({"replicaCount": 2, "podAnnotations": {"team": "a&b <core>"}, "service": {"port": 8080}});
    let releases: Api<HelmRelease> = Api::namespaced(client.clone(), "default");
    releases
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
                "metadata": {"name": "web", "namespace": "default"},
                "spec": {"interval": "10m", "chartRef": {"kind": "HelmChart", "name": "default-web"},
                         "values": values1}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let hr = wait_ready(&releases, "InstallSucceeded", "1.2.3").await;
    // status.helmChart names only the HelmChart of a chart template (upstream), never a
    // chartRef's, which deleting the template's chart would otherwise take along
    assert_eq!(hr.status.unwrap().helm_chart, None);
    let vf = tmp.path().join("values1.json");
    std::fs::write(&vf, values1.to_string()).unwrap();
    helm.run(&[
        "upgrade",
        "--install",
        "web",
        chart_file.to_str().unwrap(),
        "-n",
        "default",
        "-f",
        vf.to_str().unwrap(),
        "--wait",
        "--timeout",
        "60s",
    ]);
    compare_with_helm(&client, &peer_client, 1).await;

    let values2 = json!({"replicaCount": 3});
    // one write: replicaCount changes, the other keys go (merge patch nulls)
    releases
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"values": {"replicaCount": 3, "podAnnotations": null, "service": null}}}),
            ),
        )
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let hr = releases.get("web").await.unwrap();
        let h = hr.status.and_then(|s| s.history).unwrap_or_default();
        if h.first().map(|s| (s.version, s.status.as_str())) == Some((2, "deployed"))
            && h.first().map(|s| s.config_digest.clone())
                == Some(helm_controller::helmrelease::config_digest(
                    values2.as_object().unwrap(),
                ))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no upgrade to the new values: {h:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let vf = tmp.path().join("values2.json");
    std::fs::write(&vf, values2.to_string()).unwrap();
    helm.run(&[
        "upgrade",
        "--install",
        "web",
        chart_file.to_str().unwrap(),
        "-n",
        "default",
        "-f",
        vf.to_str().unwrap(),
        "--wait",
        "--timeout",
        "60s",
    ]);
    compare_with_helm(&client, &peer_client, 1).await;
    compare_with_helm(&client, &peer_client, 2).await;
    let _ = controller.start_kill();
    let _ = controller.wait().await;
}

/// A release made by the real `helm install` is taken over: the HelmRelease upgrades it to
/// revision 2 (its values), and helm's history shows both revisions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopts_a_release_made_by_helm_install() {
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
    let chart = chart_package(&helm, "2.0.0");
    let chart_file = tmp.path().join("web-2.0.0.tgz");
    std::fs::write(&chart_file, &chart).unwrap();
    helm.run(&[
        "install",
        "web",
        chart_file.to_str().unwrap(),
        "-n",
        "default",
        "--set",
        "replicaCount=1",
        "--wait",
        "--timeout",
        "60s",
    ]);

    let url = serve(Arc::new(Mutex::new(chart.clone()))).await;
    let charts: Api<HelmChart> = Api::namespaced(client.clone(), "default");
    charts
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "HelmChart",
                "metadata": {"name": "default-web", "namespace": "default"},
                "spec": {"chart": "web", "version": "*", "interval": "10m",
                         "sourceRef": {"kind": "HelmRepository", "name": "charts"}}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    set_artifact_of::<HelmChart>(&client, "default-web", &url, &chart, "2.0.0").await;
    let mut controller = tokio::process::Command::new(env!("CARGO_BIN_EXE_helm-controller"))
        .args([
            "--metrics-addr=127.0.0.1:0",
            "--health-addr=127.0.0.1:0",
            "--grpc-addr=127.0.0.1:0",
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
                "spec": {"interval": "10m", "chartRef": {"kind": "HelmChart", "name": "default-web"},
                         "values": {"replicaCount": 4}}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let hr = wait_ready(&releases, "UpgradeSucceeded", "2.0.0").await;
    let history = hr.status.unwrap().history.unwrap();
    assert_eq!(history[0].version, 2);
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
        helm.json(&["get", "values", "web", "-n", "default", "-o", "json"]),
        json!({"replicaCount": 4})
    );
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), "default");
    assert_eq!(
        deployments.get("web").await.unwrap().spec.unwrap().replicas,
        Some(4)
    );
    // and helm can still act on it: a rollback to the helm-made revision (fields owned by the
    // field manager helm-controller conflict with helm's server-side apply, as they do with
    // upstream's controller, hence --force-conflicts)
    helm.run(&[
        "rollback",
        "web",
        "1",
        "-n",
        "default",
        "--force-conflicts",
        "--wait",
        "--timeout",
        "60s",
    ]);
    assert_eq!(
        deployments.get("web").await.unwrap().spec.unwrap().replicas,
        Some(1)
    );
    // bad input: a valuesFrom object that does not exist leaves the release alone and says why
    releases
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"valuesFrom": [{"kind": "ConfigMap", "name": "missing"}]}}),
            ),
        )
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let hr = releases.get("web").await.unwrap();
        let ready = hr
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
            .cloned();
        if let Some(c) = ready.filter(|c| c.reason == "ValuesError") {
            assert_eq!(c.status, "False");
            assert_eq!(c.message, "could not find ConfigMap 'default/missing'");
            break;
        }
        assert!(Instant::now() < deadline, "no ValuesError: {:?}", hr.status);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let hist = helm.json(&["history", "web", "-n", "default", "-o", "json"]);
    assert_eq!(
        hist.as_array().map(Vec::len),
        Some(3),
        "no new revision: {hist}"
    );
    assert_eq!(
        deployments.get("web").await.unwrap().spec.unwrap().replicas,
        Some(1)
    );
    let _ = controller.start_kill();
    let _ = controller.wait().await;
}
