//! helm-controller as a process against testenv: `spec.chart` templates (the HelmChart it
//! applies, waits for, and deletes) and `spec.dependsOn` (with readyExpr), the chart artifact
//! served by the test and HelmChart statuses written by the test in source-controller's place.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferroflux_api::{HelmChart, HelmRelease};
use ferroflux_testenv::{Options, TestEnv};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use sha2::Digest;

fn helm_bin() -> PathBuf {
    ferroflux_testsupport::tool("helm", ferroflux_testsupport::ORACLES_HINT)
}

fn helm(home: &Path, kubeconfig: &Path, args: &[&str]) -> Value {
    let out = Command::new(helm_bin())
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", home)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .expect("run helm");
    assert!(
        out.status.success(),
        "helm {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("helm JSON")
}

/// `helm create web` packaged by helm: the .tgz bytes.
fn chart_package(home: &Path) -> Vec<u8> {
    let dir = home.join("src");
    std::fs::create_dir_all(&dir).unwrap();
    for args in [&["create", "web"][..], &["package", "web", "-d", "pkg"][..]] {
        let out = Command::new(helm_bin())
            .args(args)
            .current_dir(&dir)
            .env("HOME", home)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::read(dir.join("pkg/web-0.1.0.tgz")).unwrap()
}

async fn serve(chart: Vec<u8>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/chart.tgz",
        axum::routing::get(move || {
            let c = chart.clone();
            async move { c }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/chart.tgz")
}

/// What source-controller would write once it built the chart: the generation observed and
/// the artifact.
async fn chart_built(charts: &Api<HelmChart>, name: &str, url: &str, data: &[u8]) {
    let generation = charts.get(name).await.unwrap().metadata.generation;
    let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)));
    charts
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {
            "observedGeneration": generation,
            "conditions": [{"type": "Ready", "status": "True", "reason": "ChartPullSucceeded",
                            "message": "pulled 'web' chart with version '0.1.0'",
                            "lastTransitionTime": "2026-01-01T00:00:00Z"}],
            "artifact": {
                "path": format!("helmchart/default/{name}/web-0.1.0.tgz"),
                "url": url,
                "revision": "0.1.0",
                "digest": digest,
                "lastUpdateTime": "2026-01-01T00:00:00Z",
                "size": data.len(),
            }}})),
        )
        .await
        .unwrap();
}

/// Waits until the Ready condition of `name` has `status` and `reason` and its message
/// satisfies `message`; returns the object.
async fn wait_ready(
    api: &Api<HelmRelease>,
    name: &str,
    status: &str,
    reason: &str,
    message: impl Fn(&str) -> bool,
) -> HelmRelease {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(hr) = api.get_opt(name).await.unwrap() {
            let ready = hr
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
                .cloned();
            if let Some(c) = &ready
                && c.status == status
                && c.reason == reason
                && message(&c.message)
            {
                return hr;
            }
            assert!(
                Instant::now() < deadline,
                "HelmRelease {name} not Ready={status}/{reason}: {:?}",
                hr.status
            );
        }
        assert!(Instant::now() < deadline, "HelmRelease {name} missing");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn wait_gone<K>(api: &Api<K>, name: &str)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    while api.get_opt(name).await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "{name} still there");
        tokio::time::sleep(Duration::from_millis(100)).await;
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

async fn create<K>(api: &Api<K>, v: Value)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    api.create(&PostParams::default(), &serde_json::from_value(v).unwrap())
        .await
        .unwrap();
}

fn controller(kubeconfig: &Path, tmp: &Path) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_helm-controller"))
        .args([
            "--metrics-addr=127.0.0.1:0",
            "--health-addr=127.0.0.1:0",
            "--grpc-addr=127.0.0.1:0",
            "--requeue-dependency=1s",
        ])
        .env("KUBECONFIG", kubeconfig)
        .env("RUNTIME_NAMESPACE", "default")
        .env("TMPDIR", tmp)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_template_makes_waits_for_and_deletes_its_helmchart() {
    let env = TestEnv::start(Options {
        simulate_workloads: Some(Duration::from_millis(100)),
        ..Default::default()
    })
    .await
    .unwrap();
    crds(&env);
    let tmp = tempfile::tempdir().unwrap();
    let kubeconfig = tmp.path().join("kubeconfig");
    env.write_kubeconfig(&kubeconfig).unwrap();
    let client: Client = env.client().await.unwrap();
    let chart = chart_package(tmp.path());
    let url = serve(chart.clone()).await;
    let mut ctl = controller(&kubeconfig, tmp.path());

    let releases: Api<HelmRelease> = Api::namespaced(client.clone(), "default");
    let charts: Api<HelmChart> = Api::namespaced(client.clone(), "default");
    create(
        &releases,
        json!({
            "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "interval": "10m",
                "chart": {
                    "metadata": {"labels": {"team": "web"}, "annotations": {"note": "templated"}},
                    "spec": {
                        "chart": "web", "version": "0.1.x",
                        "sourceRef": {"kind": "HelmRepository", "name": "charts"},
                        "valuesFiles": ["values.yaml"]
                    }
                },
                "values": {"replicaCount": 2}
            }
        }),
    )
    .await;

    // the HelmChart is applied at once, and the release waits for its artifact
    let hr = wait_ready(&releases, "web", "False", "SourceNotReady", |m| {
        m == "HelmChart 'default/default-web' is not ready: latest generation of object has not been reconciled"
    })
    .await;
    assert_eq!(
        hr.status.unwrap().helm_chart.as_deref(),
        Some("default/default-web")
    );
    let hc = charts.get("default-web").await.unwrap();
    let labels = hc.metadata.labels.clone().unwrap();
    assert_eq!(labels["helm.toolkit.fluxcd.io/name"], "web");
    assert_eq!(labels["helm.toolkit.fluxcd.io/namespace"], "default");
    assert_eq!(labels["team"], "web");
    assert_eq!(
        hc.metadata.annotations.clone().unwrap()["note"],
        "templated"
    );
    let spec = serde_json::to_value(&hc.spec).unwrap();
    assert_eq!(spec["chart"], "web");
    assert_eq!(spec["version"], "0.1.x");
    assert_eq!(
        spec["sourceRef"],
        json!({"kind": "HelmRepository", "name": "charts"})
    );
    assert_eq!(spec["interval"], "10m", "the HelmRelease's interval");
    assert_eq!(spec["valuesFiles"], json!(["values.yaml"]));
    let managers: Vec<String> = hc
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert!(
        managers.contains(&"helm-controller".to_string()),
        "{managers:?}"
    );

    // the built chart alone (HelmChart watch) brings the install, long before the requeue
    let built = Instant::now();
    chart_built(&charts, "default-web", &url, &chart).await;
    wait_ready(&releases, "web", "True", "InstallSucceeded", |_| true).await;
    assert!(
        built.elapsed() < Duration::from_secs(15),
        "install {:?} after the artifact",
        built.elapsed()
    );
    let list = helm(
        tmp.path(),
        &kubeconfig,
        &["list", "-n", "default", "-o", "json"],
    );
    assert_eq!(list[0]["name"], "web");
    assert_eq!(list[0]["chart"], "web-0.1.0");

    // a template change is applied to the HelmChart; its new generation is waited for
    releases
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"chart": {"spec": {"version": "0.1.0"}}}})),
        )
        .await
        .unwrap();
    wait_ready(&releases, "web", "False", "SourceNotReady", |m| {
        m.contains("latest generation of object has not been reconciled")
    })
    .await;
    assert_eq!(
        serde_json::to_value(charts.get("default-web").await.unwrap().spec).unwrap()["version"],
        "0.1.0"
    );
    chart_built(&charts, "default-web", &url, &chart).await;
    wait_ready(&releases, "web", "True", "InstallSucceeded", |_| true).await;

    // switching to chartRef deletes the template's HelmChart, never the referenced one
    create(
        &charts,
        json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "HelmChart",
            "metadata": {"name": "shared", "namespace": "default"},
            "spec": {"chart": "web", "interval": "10m",
                     "sourceRef": {"kind": "HelmRepository", "name": "charts"}}
        }),
    )
    .await;
    chart_built(&charts, "shared", &url, &chart).await;
    releases
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"chart": null,
                                          "chartRef": {"kind": "HelmChart", "name": "shared"}}})),
        )
        .await
        .unwrap();
    wait_gone(&charts, "default-web").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while releases
        .get("web")
        .await
        .unwrap()
        .status
        .and_then(|s| s.helm_chart)
        .is_some()
    {
        assert!(Instant::now() < deadline, "status.helmChart not cleared");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_ready(&releases, "web", "True", "InstallSucceeded", |_| true).await;

    // deletion: the release is uninstalled, the chartRef's HelmChart stays
    releases
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&releases, "web").await;
    assert_eq!(
        helm(
            tmp.path(),
            &kubeconfig,
            &["list", "-n", "default", "-o", "json"]
        ),
        json!([])
    );
    assert!(charts.get_opt("shared").await.unwrap().is_some());

    // deletion of a templated HelmRelease takes its HelmChart along
    create(
        &releases,
        json!({
            "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
            "metadata": {"name": "other", "namespace": "default"},
            "spec": {"interval": "10m", "chart": {"spec": {
                "chart": "web", "sourceRef": {"kind": "HelmRepository", "name": "charts"}}}}
        }),
    )
    .await;
    chart_built_when_created(&charts, "default-other", &url, &chart).await;
    wait_ready(&releases, "other", "True", "InstallSucceeded", |_| true).await;
    releases
        .delete("other", &DeleteParams::default())
        .await
        .unwrap();
    wait_gone(&releases, "other").await;
    assert!(charts.get_opt("default-other").await.unwrap().is_none());
    assert_eq!(
        helm(
            tmp.path(),
            &kubeconfig,
            &["list", "-n", "default", "-o", "json"]
        ),
        json!([])
    );
    let _ = ctl.start_kill();
    let _ = ctl.wait().await;
}

async fn chart_built_when_created(charts: &Api<HelmChart>, name: &str, url: &str, data: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while charts.get_opt(name).await.unwrap().is_none() {
        assert!(Instant::now() < deadline, "HelmChart {name} not created");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    chart_built(charts, name, url, data).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn depends_on_waits_for_ready_dependencies_and_ready_expr() {
    let env = TestEnv::start(Options {
        simulate_workloads: Some(Duration::from_millis(100)),
        ..Default::default()
    })
    .await
    .unwrap();
    crds(&env);
    let tmp = tempfile::tempdir().unwrap();
    let kubeconfig = tmp.path().join("kubeconfig");
    env.write_kubeconfig(&kubeconfig).unwrap();
    let client: Client = env.client().await.unwrap();
    let chart = chart_package(tmp.path());
    let url = serve(chart.clone()).await;
    let charts: Api<HelmChart> = Api::namespaced(client.clone(), "default");
    create(
        &charts,
        json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "HelmChart",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"chart": "web", "interval": "10m",
                     "sourceRef": {"kind": "HelmRepository", "name": "charts"}}
        }),
    )
    .await;
    chart_built(&charts, "web", &url, &chart).await;
    let mut ctl = controller(&kubeconfig, tmp.path());
    let releases: Api<HelmRelease> = Api::namespaced(client.clone(), "default");
    let release = |name: &str, deps: Value| {
        json!({
            "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"interval": "10m", "chartRef": {"kind": "HelmChart", "name": "web"},
                     "dependsOn": deps}
        })
    };
    // the dependency does not exist yet
    create(&releases, release("app", json!([{"name": "db"}]))).await;
    wait_ready(&releases, "app", "False", "DependencyNotReady", |m| {
        m == "unable to get 'default/db' dependency: helmreleases.helm.toolkit.fluxcd.io \"db\" not found"
    })
    .await;
    // a readyExpr that does not hold, and one that does not compile (terminal)
    create(
        &releases,
        release(
            "picky",
            json!([{"name": "db", "readyExpr": "dep.metadata.name == 'other'"}]),
        ),
    )
    .await;
    create(
        &releases,
        release(
            "broken",
            json!([{"name": "db", "readyExpr": "dep.status.("}]),
        ),
    )
    .await;
    // the dependency is released; app follows within the requeue interval (1s here)
    create(
        &releases,
        json!({
            "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
            "metadata": {"name": "db", "namespace": "default"},
            "spec": {"interval": "10m", "chartRef": {"kind": "HelmChart", "name": "web"}}
        }),
    )
    .await;
    wait_ready(&releases, "db", "True", "InstallSucceeded", |_| true).await;
    wait_ready(&releases, "app", "True", "InstallSucceeded", |_| true).await;
    let hr = wait_ready(&releases, "picky", "False", "DependencyNotReady", |m| {
        m == "dependency 'default/db' is not ready according to readyExpr eval"
    })
    .await;
    assert!(hr.status.unwrap().history.is_none(), "nothing installed");
    let hr = wait_ready(&releases, "broken", "False", "InvalidCELExpression", |m| {
        m.starts_with(
            "Reconciliation failed terminally due to configuration error: failed to evaluate dependency db: failed to parse the CEL expression 'dep.status.('",
        )
    })
    .await;
    let stalled = hr
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Stalled")
        .expect("Stalled");
    assert_eq!(
        (stalled.status.as_str(), stalled.reason.as_str()),
        ("True", "InvalidCELExpression")
    );
    // readyExpr replaces the Ready check (AdditiveCELDependencyCheck off)
    releases
        .patch(
            "picky",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"dependsOn": [
                {"name": "db", "readyExpr": "dep.metadata.name == 'db' && self.metadata.name == 'picky'"}]}})),
        )
        .await
        .unwrap();
    wait_ready(&releases, "picky", "True", "InstallSucceeded", |_| true).await;
    let list = helm(
        tmp.path(),
        &kubeconfig,
        &["list", "-n", "default", "-o", "json"],
    );
    let mut names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    names.sort();
    assert_eq!(names, ["app", "db", "picky"]);
    let _ = ctl.start_kill();
    let _ = ctl.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renamed_release_replaces_the_old_one_and_long_names_are_shortened() {
    let env = TestEnv::start(Options {
        simulate_workloads: Some(Duration::from_millis(100)),
        ..Default::default()
    })
    .await
    .unwrap();
    crds(&env);
    let tmp = tempfile::tempdir().unwrap();
    let kubeconfig = tmp.path().join("kubeconfig");
    env.write_kubeconfig(&kubeconfig).unwrap();
    let client: Client = env.client().await.unwrap();
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let long_ns = "a-namespace-with-a-rather-long-name-for-the-releases";
    create(
        &namespaces,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": long_ns}}),
    )
    .await;
    let chart = chart_package(tmp.path());
    let url = serve(chart.clone()).await;
    let charts: Api<HelmChart> = Api::namespaced(client.clone(), "default");
    create(
        &charts,
        json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "HelmChart",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"chart": "web", "interval": "10m",
                     "sourceRef": {"kind": "HelmRepository", "name": "charts"}}
        }),
    )
    .await;
    chart_built(&charts, "web", &url, &chart).await;
    let mut ctl = controller(&kubeconfig, tmp.path());
    let releases: Api<HelmRelease> = Api::namespaced(client.clone(), "default");
    create(
        &releases,
        json!({
            "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"interval": "10m", "chartRef": {"kind": "HelmChart", "name": "web"}}
        }),
    )
    .await;
    wait_ready(&releases, "web", "True", "InstallSucceeded", |_| true).await;
    let names = |ns: &str| {
        let list = helm(tmp.path(), &kubeconfig, &["list", "-n", ns, "-o", "json"]);
        list.as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(names("default"), ["web"]);

    // a new releaseName: the old release is uninstalled, the new one installed
    releases
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"releaseName": "renamed"}})),
        )
        .await
        .unwrap();
    let hr = wait_ready(&releases, "web", "True", "InstallSucceeded", |m| {
        m.contains("default/renamed.v1")
    })
    .await;
    assert_eq!(names("default"), ["renamed"]);
    let history = hr.status.unwrap().history.unwrap();
    assert_eq!(history.len(), 1, "the old release's history is cleared");
    assert_eq!(history[0].name, "renamed");

    // targetNamespace: `<targetNamespace>-<name>` is over 53 characters, so it is shortened as
    // upstream does, and the release moves (the old one uninstalled first)
    releases
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"releaseName": null, "targetNamespace": long_ns}})),
        )
        .await
        .unwrap();
    let full = format!("{long_ns}-web");
    assert!(full.len() > 53);
    let short = format!(
        "{}-{}",
        &full[..40],
        &hex::encode(sha2::Sha256::digest(full.as_bytes()))[..12]
    );
    let hr = wait_ready(&releases, "web", "True", "InstallSucceeded", |m| {
        m.contains(&format!("{long_ns}/{short}.v1"))
    })
    .await;
    // the records stay in the storage namespace (the HelmRelease's), the objects move
    assert_eq!(names("default"), std::slice::from_ref(&short));
    let deployments =
        |ns: &str| Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(client.clone(), ns);
    assert!(
        deployments("default")
            .get_opt("renamed-web")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        deployments(long_ns)
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .len()
            == 1
    );
    assert_eq!(hr.status.unwrap().history.unwrap()[0].name, short);
    let _ = ctl.start_kill();
    let _ = ctl.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_renderers_and_common_metadata_shape_the_release() {
    let env = TestEnv::start(Options {
        simulate_workloads: Some(Duration::from_millis(100)),
        ..Default::default()
    })
    .await
    .unwrap();
    crds(&env);
    let tmp = tempfile::tempdir().unwrap();
    let kubeconfig = tmp.path().join("kubeconfig");
    env.write_kubeconfig(&kubeconfig).unwrap();
    let client: Client = env.client().await.unwrap();
    let chart = chart_package(tmp.path());
    let url = serve(chart.clone()).await;
    let charts: Api<HelmChart> = Api::namespaced(client.clone(), "default");
    create(
        &charts,
        json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "HelmChart",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"chart": "web", "interval": "10m",
                     "sourceRef": {"kind": "HelmRepository", "name": "charts"}}
        }),
    )
    .await;
    chart_built(&charts, "web", &url, &chart).await;
    let mut ctl = controller(&kubeconfig, tmp.path());
    let releases: Api<HelmRelease> = Api::namespaced(client.clone(), "default");
    let replicas_patch = |n: i64| {
        json!([{"kustomize": {
            "patches": [{"target": {"kind": "Deployment"},
                         "patch": format!("- op: add\n  path: /spec/replicas\n  value: {n}\n")}],
            "images": [{"name": "nginx", "newName": "registry.local/nginx", "newTag": "9.9"}]
        }}])
    };
    create(
        &releases,
        json!({
            "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"interval": "10m", "chartRef": {"kind": "HelmChart", "name": "web"},
                     "postRenderers": replicas_patch(3),
                     "commonMetadata": {"labels": {"team": "blue"}, "annotations": {"owner": "ops"}}}
        }),
    )
    .await;
    let hr = wait_ready(&releases, "web", "True", "InstallSucceeded", |_| true).await;
    let st = hr.status.unwrap();
    assert!(
        st.observed_post_renderers_digest
            .as_deref()
            .is_some_and(|d| d.starts_with("sha256:"))
    );
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), "default");
    let d = deployments.get("web").await.unwrap();
    assert_eq!(d.spec.as_ref().unwrap().replicas, Some(3));
    let image = d
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .image
        .clone();
    assert!(
        image
            .as_deref()
            .is_some_and(|i| i.starts_with("registry.local/nginx:9.9")),
        "{image:?}"
    );
    assert_eq!(d.metadata.labels.as_ref().unwrap()["team"], "blue");
    assert_eq!(d.metadata.annotations.as_ref().unwrap()["owner"], "ops");
    let services: Api<k8s_openapi::api::core::v1::Service> =
        Api::namespaced(client.clone(), "default");
    assert_eq!(
        services.get("web").await.unwrap().metadata.labels.unwrap()["team"],
        "blue"
    );
    // the stored release holds the post-rendered manifest, as `helm get manifest` shows
    let out = Command::new(helm_bin())
        .args(["get", "manifest", "web", "-n", "default"])
        .env("KUBECONFIG", &kubeconfig)
        .env("HOME", tmp.path())
        .output()
        .unwrap();
    let manifest = String::from_utf8_lossy(&out.stdout);
    assert!(manifest.contains("registry.local/nginx:9.9"), "{manifest}");

    // a change of the post-renderers alone upgrades the release
    releases
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"postRenderers": replicas_patch(4)}})),
        )
        .await
        .unwrap();
    wait_ready(&releases, "web", "True", "UpgradeSucceeded", |_| true).await;
    assert_eq!(
        deployments.get("web").await.unwrap().spec.unwrap().replicas,
        Some(4)
    );
    let hist = helm(
        tmp.path(),
        &kubeconfig,
        &["history", "web", "-n", "default", "-o", "json"],
    );
    assert_eq!(hist.as_array().map(Vec::len), Some(2));
    let _ = ctl.start_kill();
    let _ = ctl.wait().await;
}
