//! helm-controller's release lifecycle as a process against testenv, with the real `helm` CLI
//! as the peer: hooks (weights, delete policies, records), `spec.test`, install and upgrade
//! remediation (retries, uninstall, rollback, RetriesExceeded), a `helm rollback` behind the
//! controller's back (Unmanaged), drift detection and correction, and a kill -9 in the middle
//! of an upgrade (pending-upgrade unlocked).
//!
//! testenv has no kubelet: its workload simulator completes Pods and Jobs (restartPolicy
//! Never) and makes Deployments available; an object annotated `testenv.ferroflux.io/fail`
//! fails instead (a Deployment that never becomes ready, a failing hook Job or test Pod). The
//! test chart sets that annotation from its values.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferroflux_api::HelmRelease;
use ferroflux_helm::release::{Release, storage};
use ferroflux_testenv::{Options, TestEnv};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::api::{Patch, PatchParams, PostParams};
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
    fn output(&self, args: &[&str]) -> std::process::Output {
        Command::new(helm_bin())
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", &self.home)
            .env("HELM_CACHE_HOME", self.home.join("cache"))
            .env("HELM_CONFIG_HOME", self.home.join("config"))
            .env("HELM_DATA_HOME", self.home.join("data"))
            .current_dir(&self.home)
            .output()
            .expect("run helm")
    }
    fn run(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert!(
            out.status.success(),
            "helm {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
    /// A helm command expected to fail (a release that never becomes ready).
    fn run_failing(&self, args: &[&str]) {
        let out = self.output(args);
        assert!(!out.status.success(), "helm {args:?} should fail");
    }
    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.run(args)).expect("helm JSON")
    }
    /// `helm history` as (revision, status, description).
    fn history(&self) -> Vec<(i64, String, String)> {
        self.json(&["history", "web", "-n", "default", "-o", "json"])
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
            .collect()
    }
}

const CHART_VALUES: &str = r#"replicaCount: 1
fail: ""
failHook: ""
failTest: ""
image: nginx:1.27
"#;

const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    app: web
  {{- if .Values.fail }}
  annotations:
    testenv.ferroflux.io/fail: {{ .Values.fail | quote }}
  {{- end }}
spec:
  replicas: {{ .Values.replicaCount }}
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
        - name: web
          image: {{ required "image is required" .Values.image }}
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
    - port: 80
"#;

const HOOKS: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: web-pre
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: "-5"
data:
  revision: "{{ .Release.Revision }}"
---
apiVersion: batch/v1
kind: Job
metadata:
  name: web-migrate
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-weight: "0"
    helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
    {{- if .Values.failHook }}
    testenv.ferroflux.io/fail: {{ .Values.failHook | quote }}
    {{- end }}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: migrate
          image: busybox
---
apiVersion: v1
kind: Pod
metadata:
  name: web-post
  annotations:
    helm.sh/hook: post-install,post-upgrade
    helm.sh/hook-weight: "5"
    helm.sh/hook-delete-policy: before-hook-creation,hook-failed
spec:
  restartPolicy: Never
  containers:
    - name: post
      image: busybox
"#;

const TESTS: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: web-test-ok
  annotations:
    helm.sh/hook: test
spec:
  restartPolicy: Never
  containers:
    - name: t
      image: busybox
---
apiVersion: v1
kind: Pod
metadata:
  name: web-test-bad
  annotations:
    helm.sh/hook: test
    {{- if .Values.failTest }}
    testenv.ferroflux.io/fail: {{ .Values.failTest | quote }}
    {{- end }}
spec:
  restartPolicy: Never
  containers:
    - name: t
      image: busybox
"#;

/// The test chart `web` at `version` (with hooks and tests when `hooks`), packaged by helm.
fn chart_package(helm: &Helm, version: &str, hooks: bool) -> (Vec<u8>, PathBuf) {
    chart_package_with(helm, version, hooks, &[])
}

/// As [`chart_package`], with extra files (path in the chart, content).
fn chart_package_with(
    helm: &Helm,
    version: &str,
    hooks: bool,
    extra: &[(&str, &str)],
) -> (Vec<u8>, PathBuf) {
    let dir = helm
        .home
        .join(format!("src-{version}-{hooks}-{}", extra.len()))
        .join("web");
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    std::fs::write(
        dir.join("Chart.yaml"),
        format!("apiVersion: v2\nname: web\nversion: {version}\nappVersion: \"1.0\"\n"),
    )
    .unwrap();
    std::fs::write(dir.join("values.yaml"), CHART_VALUES).unwrap();
    std::fs::write(
        dir.join("values.schema.json"),
        r#"{"type": "object", "properties": {"replicaCount": {"type": "integer", "minimum": 0}}}"#,
    )
    .unwrap();
    std::fs::write(dir.join("templates/deployment.yaml"), DEPLOYMENT).unwrap();
    if hooks {
        std::fs::write(dir.join("templates/hooks.yaml"), HOOKS).unwrap();
        std::fs::write(dir.join("templates/tests.yaml"), TESTS).unwrap();
    }
    for (path, content) in extra {
        let f = dir.join(path);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, content).unwrap();
    }
    let out_dir = dir.parent().unwrap().join("pkg");
    let out = Command::new(helm_bin())
        .args(["package", "web", "-d", "pkg"])
        .current_dir(dir.parent().unwrap())
        .env("HOME", &helm.home)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = out_dir.join(format!("web-{version}.tgz"));
    (std::fs::read(&file).unwrap(), file)
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

fn crds(env: &TestEnv) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/crds");
    for f in [
        "source.toolkit.fluxcd.io_helmcharts.yaml",
        "helm.toolkit.fluxcd.io_helmreleases.yaml",
    ] {
        env.apply_yaml(&std::fs::read_to_string(root.join(f)).unwrap(), "test")
            .unwrap();
    }
}

/// A HelmChart `default-web` whose artifact is the chart served by the test.
async fn chart_source(client: &Client, chart: &[u8], version: &str) {
    let url = serve(chart.to_vec()).await;
    let charts: Api<ferroflux_api::HelmChart> = Api::namespaced(client.clone(), "default");
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
    let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(chart)));
    charts
        .patch_status(
            "default-web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"artifact": {
                "path": "helmchart/default/default-web/web.tgz",
                "url": url,
                "revision": version,
                "digest": digest,
                "lastUpdateTime": "2026-01-01T00:00:00Z",
                "size": chart.len(),
            }}})),
        )
        .await
        .unwrap();
}

struct Setup {
    env: TestEnv,
    peer: Option<TestEnv>,
    tmp: tempfile::TempDir,
    kubeconfig: PathBuf,
    client: Client,
    helm: Helm,
    peer_helm: Option<Helm>,
}

async fn setup(workload_delay: Duration, with_peer: bool, data_dir: Option<PathBuf>) -> Setup {
    let env = TestEnv::start(Options {
        simulate_workloads: Some(workload_delay),
        data_dir,
        ..Default::default()
    })
    .await
    .unwrap();
    crds(&env);
    let tmp = tempfile::tempdir().unwrap();
    let kubeconfig = tmp.path().join("kubeconfig");
    env.write_kubeconfig(&kubeconfig).unwrap();
    let client = env.client().await.unwrap();
    let helm = Helm {
        kubeconfig: kubeconfig.clone(),
        home: tmp.path().to_path_buf(),
    };
    let (peer, peer_helm) = if with_peer {
        let peer = TestEnv::start(Options {
            simulate_workloads: Some(workload_delay),
            ..Default::default()
        })
        .await
        .unwrap();
        let pk = tmp.path().join("peer-kubeconfig");
        peer.write_kubeconfig(&pk).unwrap();
        (
            Some(peer),
            Some(Helm {
                kubeconfig: pk,
                home: tmp.path().to_path_buf(),
            }),
        )
    } else {
        (None, None)
    };
    Setup {
        env,
        peer,
        tmp,
        kubeconfig,
        client,
        helm,
        peer_helm,
    }
}

fn controller(s: &Setup) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_helm-controller"))
        .args([
            "--metrics-addr=127.0.0.1:0",
            "--health-addr=127.0.0.1:0",
            "--grpc-addr=127.0.0.1:0",
            "--log-level=debug",
        ])
        .env("KUBECONFIG", &s.kubeconfig)
        .env("RUNTIME_NAMESPACE", "default")
        .env("TMPDIR", s.tmp.path())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

async fn create_release(client: &Client, spec: Value) {
    let mut spec = spec;
    spec["interval"] = json!("10m");
    spec["chartRef"] = json!({"kind": "HelmChart", "name": "default-web"});
    let releases: Api<HelmRelease> = Api::namespaced(client.clone(), "default");
    releases
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
                "metadata": {"name": "web", "namespace": "default"},
                "spec": spec,
            }))
            .unwrap(),
        )
        .await
        .unwrap();
}

async fn patch_spec(client: &Client, spec: Value) {
    let releases: Api<HelmRelease> = Api::namespaced(client.clone(), "default");
    releases
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": spec })),
        )
        .await
        .unwrap();
}

/// Asks for a reconcile (`reconcile.fluxcd.io/requestedAt`).
async fn request_reconcile(client: &Client, token: &str) {
    let releases: Api<HelmRelease> = Api::namespaced(client.clone(), "default");
    releases
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}}),
            ),
        )
        .await
        .unwrap();
}

fn condition(hr: &HelmRelease, t: &str) -> Option<(String, String, String)> {
    hr.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == t))
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// Waits until `check` holds for the HelmRelease.
async fn wait_for(
    client: &Client,
    what: &str,
    check: impl Fn(&HelmRelease) -> bool,
) -> HelmRelease {
    let releases: Api<HelmRelease> = Api::namespaced(client.clone(), "default");
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let hr = releases.get("web").await.unwrap();
        if check(&hr) {
            return hr;
        }
        assert!(
            Instant::now() < deadline,
            "HelmRelease never got to {what}: {:#?}",
            hr.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The version of the newest `status.history` snapshot.
fn latest_version(hr: &HelmRelease) -> i64 {
    hr.status
        .as_ref()
        .and_then(|s| s.history.as_ref())
        .and_then(|h| h.first())
        .map(|s| s.version)
        .unwrap_or(0)
}

fn has(hr: &HelmRelease, t: &str, status: &str, reason: &str) -> bool {
    condition(hr, t).is_some_and(|(s, r, _)| s == status && r == reason)
}

async fn stored(client: &Client, version: i64) -> Release {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let s = secrets
        .get(&format!("sh.helm.release.v1.web.v{version}"))
        .await
        .unwrap();
    storage::from_object(&serde_json::to_value(&s).unwrap()).unwrap()
}

/// Hooks as recorded, without the run timestamps: (name, kind, events, weight, delete
/// policies, phase).
type HookSummary = (String, String, Vec<String>, i64, Vec<String>, String);

fn hook_summary(rel: &Release) -> Vec<HookSummary> {
    rel.hooks
        .iter()
        .map(|h| {
            (
                h.name.clone(),
                h.kind.clone(),
                h.events.clone(),
                h.weight,
                h.delete_policies.clone(),
                h.last_run.phase.clone(),
            )
        })
        .collect()
}

fn started(rel: &Release, name: &str) -> jiff::Timestamp {
    rel.hooks
        .iter()
        .find(|h| h.name == name)
        .and_then(|h| h.last_run.started_at.clone())
        .unwrap_or_else(|| panic!("hook {name} never ran"))
        .parse()
        .unwrap()
}

/// Hooks run in Helm's order (weight, then name) with Helm's delete policies, and are recorded
/// in the release as the real `helm install`/`helm upgrade` record them; `spec.test` runs the
/// test Pods (filters, TestSuccess), and a failing test stalls the release with RetriesExceeded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_and_tests_run_as_helm_runs_them() {
    let s = setup(Duration::from_millis(200), true, None).await;
    let (chart, chart_file) = chart_package(&s.helm, "0.1.0", true);
    chart_source(&s.client, &chart, "0.1.0").await;
    let mut ctl = controller(&s);
    create_release(
        &s.client,
        json!({"test": {"enable": true, "filters": [{"name": "web-test-bad", "exclude": true}]}}),
    )
    .await;
    // with tests enabled (failures not ignored) Ready summarises TestSuccess first, as upstream
    let hr = wait_for(&s.client, "Ready TestSucceeded after the install", |hr| {
        has(hr, "Ready", "True", "TestSucceeded")
            && has(hr, "Released", "True", "InstallSucceeded")
            && has(hr, "TestSuccess", "True", "TestSucceeded")
    })
    .await;
    assert_eq!(
        condition(&hr, "TestSuccess").unwrap().2,
        "Helm test succeeded for release default/web.v1 with chart web@0.1.0: 1 test hook completed successfully"
    );
    let tests = hr.status.as_ref().unwrap().history.as_ref().unwrap()[0]
        .test_hooks
        .clone()
        .unwrap();
    assert_eq!(tests.keys().collect::<Vec<_>>(), ["web-test-ok"]);
    assert_eq!(tests["web-test-ok"].phase.as_deref(), Some("Succeeded"));

    // the same chart through the real helm install (and helm test) on the peer
    let peer = s.peer_helm.as_ref().unwrap();
    peer.run(&[
        "install",
        "web",
        chart_file.to_str().unwrap(),
        "-n",
        "default",
        "--wait",
        "--timeout",
        "60s",
    ]);
    peer.run(&[
        "test",
        "web",
        "-n",
        "default",
        "--filter",
        "!name=web-test-bad",
    ]);
    let peer_client = s.peer.as_ref().unwrap().client().await.unwrap();
    let ours = stored(&s.client, 1).await;
    let theirs = stored(&peer_client, 1).await;
    assert_eq!(
        hook_summary(&ours),
        hook_summary(&theirs),
        "hooks recorded as helm records them"
    );
    assert_eq!(ours.info.as_ref().unwrap().description, "Install complete");
    // Helm's order: pre-install by weight (-5 ConfigMap, then 0 Job), post-install after
    assert!(started(&ours, "web-pre") <= started(&ours, "web-migrate"));
    assert!(started(&ours, "web-migrate") <= started(&ours, "web-post"));
    // delete policies: hook-succeeded Job gone, default before-hook-creation ConfigMap and the
    // post Pod kept, as on the peer
    for (client, who) in [(&s.client, "ferroflux"), (&peer_client, "helm")] {
        let jobs: Api<Job> = Api::namespaced(client.clone(), "default");
        assert!(
            jobs.get_opt("web-migrate").await.unwrap().is_none(),
            "{who}: hook-succeeded Job deleted"
        );
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
        assert_eq!(
            cms.get("web-pre").await.unwrap().data.unwrap()["revision"],
            "1",
            "{who}"
        );
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        assert!(pods.get_opt("web-post").await.unwrap().is_some(), "{who}");
    }
    // helm itself reads the hooks of the release ferroflux made
    let hooks = s.helm.run(&["get", "hooks", "web", "-n", "default"]);
    for n in [
        "web-pre",
        "web-migrate",
        "web-post",
        "web-test-ok",
        "web-test-bad",
    ] {
        assert!(
            hooks.contains(&format!("name: {n}")),
            "{n} in helm get hooks:\n{hooks}"
        );
    }

    // an upgrade runs the pre-upgrade hooks again (before-hook-creation replaces the ConfigMap)
    patch_spec(&s.client, json!({"values": {"replicaCount": 2}})).await;
    wait_for(&s.client, "upgraded and tested", |hr| {
        has(hr, "Ready", "True", "TestSucceeded")
            && has(hr, "Released", "True", "UpgradeSucceeded")
            && has(hr, "TestSuccess", "True", "TestSucceeded")
            && latest_version(hr) == 2
    })
    .await;
    let cms: Api<ConfigMap> = Api::namespaced(s.client.clone(), "default");
    assert_eq!(
        cms.get("web-pre").await.unwrap().data.unwrap()["revision"],
        "2"
    );
    let v2 = stored(&s.client, 2).await;
    assert!(started(&v2, "web-pre") <= started(&v2, "web-migrate"));
    assert!(started(&v2, "web-migrate") <= started(&v2, "web-post"));
    peer.run(&[
        "upgrade",
        "web",
        chart_file.to_str().unwrap(),
        "-n",
        "default",
        "--set",
        "replicaCount=2",
        "--wait",
        "--timeout",
        "60s",
    ]);
    assert_eq!(
        hook_summary(&v2)
            .into_iter()
            .filter(|h| h.2[0] != "test")
            .collect::<Vec<_>>(),
        hook_summary(&stored(&peer_client, 2).await)
            .into_iter()
            .filter(|h| h.2[0] != "test")
            .collect::<Vec<_>>()
    );

    // a failing test, not ignored, with no upgrade retries: TestFailed, then RetriesExceeded
    patch_spec(
        &s.client,
        json!({"values": {"failTest": "assertion failed"}, "test": {"filters": null}}),
    )
    .await;
    let hr = wait_for(&s.client, "TestFailed and stalled", |hr| {
        has(hr, "TestSuccess", "False", "TestFailed")
            && has(hr, "Stalled", "True", "RetriesExceeded")
    })
    .await;
    assert_eq!(condition(&hr, "Ready").unwrap().0, "False");
    assert_eq!(condition(&hr, "Ready").unwrap().1, "TestFailed");
    assert_eq!(
        condition(&hr, "Stalled").unwrap().2,
        "Failed to upgrade after 1 attempt(s)"
    );
    let snap = &hr.status.as_ref().unwrap().history.as_ref().unwrap()[0];
    assert_eq!(snap.version, 3);
    let th = snap.test_hooks.as_ref().unwrap();
    assert_eq!(th["web-test-bad"].phase.as_deref(), Some("Failed"));
    assert_eq!(hr.status.as_ref().unwrap().upgrade_failures, Some(1));

    // disableHooks: an upgrade runs none (the ConfigMap keeps revision 3's value)
    patch_spec(
        &s.client,
        json!({"values": {"failTest": null, "replicaCount": 3}, "test": {"enable": false},
               "upgrade": {"disableHooks": true}}),
    )
    .await;
    wait_for(&s.client, "upgrade without hooks", |hr| {
        has(hr, "Ready", "True", "UpgradeSucceeded") && latest_version(hr) == 4
    })
    .await;
    assert_eq!(
        cms.get("web-pre").await.unwrap().data.unwrap()["revision"],
        "3"
    );
    let v4 = stored(&s.client, 4).await;
    assert!(
        v4.hooks.iter().all(|h| h.last_run.started_at.is_none()),
        "no hook ran"
    );
    let _ = ctl.start_kill();
    let _ = ctl.wait().await;
}

/// A Deployment that never becomes ready: the install is retried after an uninstall
/// remediation, then the release stalls with RetriesExceeded and the failed release stays, as
/// `helm install --wait` leaves it; fixing the values upgrades it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_retries_then_uninstall_then_stall() {
    let s = setup(Duration::from_millis(200), true, None).await;
    let (chart, chart_file) = chart_package(&s.helm, "0.1.0", false);
    chart_source(&s.client, &chart, "0.1.0").await;
    let mut ctl = controller(&s);
    create_release(
        &s.client,
        json!({"timeout": "20s", "values": {"fail": "image pull back-off"},
               "install": {"remediation": {"retries": 1}}}),
    )
    .await;
    let hr = wait_for(&s.client, "RetriesExceeded", |hr| {
        has(hr, "Stalled", "True", "RetriesExceeded")
    })
    .await;
    let st = hr.status.clone().unwrap();
    assert_eq!(
        condition(&hr, "Stalled").unwrap().2,
        "Failed to install after 2 attempt(s)"
    );
    assert_eq!(st.install_failures, Some(2));
    assert_eq!(st.failures, Some(2));
    let (rs, rr, rm) = condition(&hr, "Ready").unwrap();
    assert_eq!((rs.as_str(), rr.as_str()), ("False", "InstallFailed"));
    assert!(
        rm.starts_with("Helm install failed for release default/web with chart web@0.1.0: resource Deployment/default/web not ready. status: Failed"),
        "{rm}"
    );
    // the first failed install was uninstalled (remediation), the second is kept: one record
    let ours = s.helm.history();
    // the same with the real helm: install --wait of the same chart and values
    let peer = s.peer_helm.as_ref().unwrap();
    peer.run_failing(&[
        "install",
        "web",
        chart_file.to_str().unwrap(),
        "-n",
        "default",
        "--set",
        "fail=image pull back-off",
        "--wait",
        "--timeout",
        "20s",
    ]);
    let theirs = peer.history();
    let shape = |h: &[(i64, String, String)]| {
        h.iter()
            .map(|(v, st, d)| (*v, st.clone(), d.split(':').next().unwrap().to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(shape(&ours), shape(&theirs));
    assert_eq!(
        shape(&ours),
        [(
            1,
            "failed".to_string(),
            "Release \"web\" failed".to_string()
        )]
    );
    // resetAt (with requestedAt, as `flux reconcile --reset`): the counters start again, the
    // failed release is upgraded once more (upgrade remediation: no retries) and stalls again
    let releases: Api<HelmRelease> = Api::namespaced(s.client.clone(), "default");
    releases
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {
                "reconcile.fluxcd.io/requestedAt": "reset-1", "reconcile.fluxcd.io/resetAt": "reset-1"}}})),
        )
        .await
        .unwrap();
    let hr = wait_for(&s.client, "stalled after the reset", |hr| {
        hr.status.as_ref().unwrap().last_handled_reset_at.as_deref() == Some("reset-1")
            && has(hr, "Stalled", "True", "RetriesExceeded")
            && latest_version(hr) == 2
    })
    .await;
    assert_eq!(
        condition(&hr, "Stalled").unwrap().2,
        "Failed to upgrade after 1 attempt(s)"
    );
    assert_eq!(hr.status.as_ref().unwrap().install_failures, None);
    assert_eq!(hr.status.as_ref().unwrap().upgrade_failures, Some(1));
    // new values: counters reset, the failed release is upgraded (a new image: a Deployment
    // past its progress deadline only recovers from a spec change, as on a real cluster)
    patch_spec(
        &s.client,
        json!({"values": {"fail": null, "image": "nginx:1.28"}}),
    )
    .await;
    let hr = wait_for(&s.client, "Ready after the fix", |hr| {
        has(hr, "Ready", "True", "UpgradeSucceeded")
    })
    .await;
    assert!(condition(&hr, "Stalled").is_none());
    assert_eq!(hr.status.unwrap().install_failures, None);
    assert_eq!(
        s.helm
            .history()
            .into_iter()
            .map(|h| (h.0, h.1))
            .collect::<Vec<_>>(),
        [
            (1, "failed".to_string()),
            (2, "superseded".to_string()),
            (3, "deployed".to_string())
        ]
    );
    let _ = ctl.start_kill();
    let _ = ctl.wait().await;
}

/// A real `helm rollback` behind the controller's back is seen (Unmanaged) and upgraded over;
/// then an upgrade whose Deployment never becomes ready (and one whose pre-upgrade hook fails)
/// is rolled back to the last good revision, retried, rolled back again, and stalls. The
/// history helm shows equals what the same steps with the real helm CLI give.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_retries_then_rollback_and_unmanaged_rollback() {
    let s = setup(Duration::from_millis(200), true, None).await;
    let (chart, chart_file) = chart_package(&s.helm, "0.1.0", true);
    chart_source(&s.client, &chart, "0.1.0").await;
    let mut ctl = controller(&s);
    create_release(
        &s.client,
        json!({"timeout": "20s", "values": {"replicaCount": 2}}),
    )
    .await;
    wait_for(&s.client, "installed", |hr| {
        has(hr, "Ready", "True", "InstallSucceeded")
    })
    .await;
    patch_spec(&s.client, json!({"values": {"replicaCount": 3}})).await;
    wait_for(&s.client, "upgraded", |hr| {
        has(hr, "Ready", "True", "UpgradeSucceeded")
    })
    .await;

    // helm rollback behind the controller's back
    s.helm.run(&[
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
    let deployments: Api<Deployment> = Api::namespaced(s.client.clone(), "default");
    assert_eq!(
        deployments.get("web").await.unwrap().spec.unwrap().replicas,
        Some(2)
    );
    request_reconcile(&s.client, "after-helm-rollback").await;
    let hr = wait_for(&s.client, "upgraded over the helm rollback", |hr| {
        latest_version(hr) == 4 && has(hr, "Ready", "True", "UpgradeSucceeded")
    })
    .await;
    // upstream clears the history of an unmanaged release: only the new upgrade is left
    assert_eq!(
        hr.status.as_ref().unwrap().history.as_ref().unwrap().len(),
        1
    );
    assert_eq!(
        s.helm.history(),
        [
            (1, "superseded".to_string(), "Install complete".to_string()),
            (2, "superseded".to_string(), "Upgrade complete".to_string()),
            (3, "superseded".to_string(), "Rollback to 1".to_string()),
            (4, "deployed".to_string(), "Upgrade complete".to_string()),
        ]
    );
    assert_eq!(
        deployments.get("web").await.unwrap().spec.unwrap().replicas,
        Some(3)
    );
    assert_eq!(
        s.helm
            .json(&["get", "values", "web", "-n", "default", "-o", "json"]),
        json!({"replicaCount": 3})
    );

    // a failing pre-upgrade hook, one retry: rollback, upgrade again, rollback, stall
    patch_spec(
        &s.client,
        json!({"values": {"replicaCount": 4, "failHook": "migration failed"},
               "upgrade": {"remediation": {"retries": 1}}}),
    )
    .await;
    let hr = wait_for(&s.client, "rolled back twice and stalled", |hr| {
        has(hr, "Stalled", "True", "RetriesExceeded")
    })
    .await;
    assert_eq!(
        condition(&hr, "Stalled").unwrap().2,
        "Failed to upgrade after 2 attempt(s)"
    );
    assert_eq!(
        condition(&hr, "Remediated").map(|c| (c.0, c.1)),
        Some(("True".to_string(), "RollbackSucceeded".to_string()))
    );
    let (rs, rr, rm) = condition(&hr, "Ready").unwrap();
    assert_eq!((rs.as_str(), rr.as_str()), ("False", "RollbackSucceeded"));
    assert_eq!(
        rm,
        "Helm rollback to previous release default/web.v6 with chart web@0.1.0 succeeded"
    );
    let ours = s.helm.history();
    assert_eq!(
        ours.iter().map(|h| (h.0, h.1.as_str())).collect::<Vec<_>>(),
        [
            (1, "superseded"),
            (2, "superseded"),
            (3, "superseded"),
            (4, "superseded"),
            (5, "failed"),
            (6, "superseded"),
            (7, "failed"),
            (8, "deployed"),
        ]
    );
    assert!(
        ours[4]
            .2
            .starts_with("Upgrade \"web\" failed: pre-upgrade hooks failed: "),
        "{}",
        ours[4].2
    );
    assert_eq!(ours[5].2, "Rollback to 4");
    assert_eq!(ours[7].2, "Rollback to 6");
    assert_eq!(
        deployments.get("web").await.unwrap().spec.unwrap().replicas,
        Some(3)
    );

    // the same steps with the real helm on the peer give the same statuses and descriptions
    let peer = s.peer_helm.as_ref().unwrap();
    let f = chart_file.to_str().unwrap();
    let up = |args: &[&str]| {
        let mut a = vec![
            "upgrade",
            "web",
            f,
            "-n",
            "default",
            "--wait",
            "--timeout",
            "20s",
        ];
        a.extend_from_slice(args);
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>, ok: bool| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        if ok {
            peer.run(&a);
        } else {
            peer.run_failing(&a);
        }
    };
    run(
        [
            "install",
            "web",
            f,
            "-n",
            "default",
            "--set",
            "replicaCount=2",
            "--wait",
            "--timeout",
            "20s",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        true,
    );
    run(up(&["--set", "replicaCount=3"]), true);
    peer.run(&[
        "rollback",
        "web",
        "1",
        "-n",
        "default",
        "--wait",
        "--timeout",
        "20s",
    ]);
    run(up(&["--set", "replicaCount=3"]), true);
    run(
        up(&[
            "--set",
            "replicaCount=4",
            "--set",
            "failHook=migration failed",
        ]),
        false,
    );
    peer.run(&[
        "rollback",
        "web",
        "4",
        "-n",
        "default",
        "--wait",
        "--timeout",
        "20s",
    ]);
    run(
        up(&[
            "--set",
            "replicaCount=4",
            "--set",
            "failHook=migration failed",
        ]),
        false,
    );
    peer.run(&[
        "rollback",
        "web",
        "6",
        "-n",
        "default",
        "--wait",
        "--timeout",
        "20s",
    ]);
    let theirs = peer.history();
    let shape = |h: &[(i64, String, String)]| {
        h.iter()
            .map(|(v, st, d)| (*v, st.clone(), d.split(':').next().unwrap().to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(shape(&ours), shape(&theirs));

    // a Deployment that never becomes ready, rollback strategy, no retries, remediate the
    // last failure: one upgrade, one rollback, stalled
    patch_spec(
        &s.client,
        json!({"values": {"failHook": null, "fail": "crash loop", "replicaCount": 5},
               "upgrade": {"remediation": {"retries": 0, "remediateLastFailure": true}}}),
    )
    .await;
    let hr = wait_for(&s.client, "rolled back once", |hr| {
        has(hr, "Stalled", "True", "RetriesExceeded") && latest_version(hr) == 10
    })
    .await;
    assert_eq!(
        condition(&hr, "Stalled").unwrap().2,
        "Failed to upgrade after 1 attempt(s)"
    );
    let h = s.helm.history();
    assert!(
        h[8].2.starts_with(
            "Upgrade \"web\" failed: resource Deployment/default/web not ready. status: Failed"
        ),
        "{}",
        h[8].2
    );
    assert_eq!(
        (h[9].1.as_str(), h[9].2.as_str()),
        ("deployed", "Rollback to 8")
    );
    let d = deployments.get("web").await.unwrap();
    assert_eq!(d.spec.unwrap().replicas, Some(3));
    assert!(
        !d.metadata
            .annotations
            .unwrap_or_default()
            .contains_key("testenv.ferroflux.io/fail")
    );
    let _ = ctl.start_kill();
    let _ = ctl.wait().await;
}

/// A hand edit of a release object is reported (DriftDetected, warn mode: left as is) and,
/// with mode enabled, put back; a field under an ignore rule is neither reported nor reverted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_detected_and_corrected() {
    let s = setup(Duration::from_millis(200), false, None).await;
    let (chart, _) = chart_package(&s.helm, "0.1.0", false);
    chart_source(&s.client, &chart, "0.1.0").await;
    let mut ctl = controller(&s);
    create_release(
        &s.client,
        json!({"driftDetection": {"mode": "warn",
               "ignore": [{"paths": ["/spec/replicas"], "target": {"kind": "Deployment"}}]}}),
    )
    .await;
    wait_for(&s.client, "installed, no drift", |hr| {
        has(hr, "Ready", "True", "InstallSucceeded")
            && has(hr, "Drifted", "False", "NoDriftDetected")
    })
    .await;
    let deployments: Api<Deployment> = Api::namespaced(s.client.clone(), "default");
    let hand = PatchParams::apply("kubectl-edit").force();
    deployments
        .patch(
            "web",
            &hand,
            &Patch::Apply(json!({
                "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:hand-edit"}]}}}
            })),
        )
        .await
        .unwrap();
    request_reconcile(&s.client, "drift-1").await;
    let hr = wait_for(&s.client, "DriftDetected", |hr| {
        has(hr, "Drifted", "True", "DriftDetected")
    })
    .await;
    let msg = condition(&hr, "Drifted").unwrap().2;
    assert!(
        msg.starts_with("Cluster state of release default/web.v1 has drifted from the desired state:\nDeployment/default/web changed ("),
        "{msg}"
    );
    assert!(!msg.contains("Service/"), "{msg}");
    // warn: reported, not corrected; the release itself stays Ready
    assert_eq!(condition(&hr, "Ready").unwrap().0, "True");
    let image = |d: Deployment| {
        d.spec.unwrap().template.spec.unwrap().containers[0]
            .image
            .clone()
            .unwrap()
    };
    assert_eq!(
        image(deployments.get("web").await.unwrap()),
        "nginx:hand-edit"
    );

    // enabled: put back
    patch_spec(&s.client, json!({"driftDetection": {"mode": "enabled"}})).await;
    wait_for(&s.client, "corrected", |hr| {
        has(hr, "Drifted", "False", "NoDriftDetected")
    })
    .await;
    assert_eq!(image(deployments.get("web").await.unwrap()), "nginx:1.27");
    assert_eq!(
        s.helm.history().len(),
        1,
        "correction makes no new revision"
    );

    // an ignored field: replicas changed by hand stays, no drift
    deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 7}})),
        )
        .await
        .unwrap();
    request_reconcile(&s.client, "drift-2").await;
    let releases: Api<HelmRelease> = Api::namespaced(s.client.clone(), "default");
    wait_for(&s.client, "reconciled after the scale", |hr| {
        hr.status
            .as_ref()
            .unwrap()
            .last_handled_reconcile_at
            .as_deref()
            == Some("drift-2")
    })
    .await;
    let hr = releases.get("web").await.unwrap();
    assert!(
        has(&hr, "Drifted", "False", "NoDriftDetected"),
        "{:?}",
        hr.status
    );
    assert_eq!(
        deployments.get("web").await.unwrap().spec.unwrap().replicas,
        Some(7)
    );

    // a deleted object is reported removed and recreated
    let services: Api<k8s_openapi::api::core::v1::Service> =
        Api::namespaced(s.client.clone(), "default");
    services.delete("web", &Default::default()).await.unwrap();
    request_reconcile(&s.client, "drift-3").await;
    wait_for(&s.client, "reconciled after the delete", |hr| {
        hr.status
            .as_ref()
            .unwrap()
            .last_handled_reconcile_at
            .as_deref()
            == Some("drift-3")
            && has(hr, "Drifted", "False", "NoDriftDetected")
    })
    .await;
    assert!(
        services.get_opt("web").await.unwrap().is_some(),
        "Service recreated"
    );
    let _ = ctl.start_kill();
    let _ = ctl.wait().await;
}

/// kill -9 of helm-controller while an upgrade waits for its Deployment, and a restart of the
/// API server: the release left pending-upgrade is unlocked (failed, as upstream) and upgraded
/// over; revisions are contiguous, none lost or doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_during_upgrade_unlocks_and_converges() {
    let data = tempfile::tempdir().unwrap();
    let s = setup(
        Duration::from_secs(4),
        false,
        Some(data.path().to_path_buf()),
    )
    .await;
    let (chart, _) = chart_package(&s.helm, "0.1.0", false);
    chart_source(&s.client, &chart, "0.1.0").await;
    let mut ctl = controller(&s);
    create_release(&s.client, json!({"values": {"replicaCount": 1}})).await;
    wait_for(&s.client, "installed", |hr| {
        has(hr, "Ready", "True", "InstallSucceeded")
    })
    .await;
    patch_spec(&s.client, json!({"values": {"replicaCount": 2}})).await;
    // wait for the pending-upgrade record, then kill -9
    let secrets: Api<Secret> = Api::namespaced(s.client.clone(), "default");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Some(sec)) = secrets.get_opt("sh.helm.release.v1.web.v2").await {
            let rel = storage::from_object(&serde_json::to_value(&sec).unwrap()).unwrap();
            if rel.status() == "pending-upgrade" {
                break;
            }
        }
        assert!(Instant::now() < deadline, "no pending upgrade seen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pid = ctl.id().unwrap();
    let out = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let _ = ctl.wait().await;
    assert_eq!(stored(&s.client, 2).await.status(), "pending-upgrade");

    // the API server restarts (state kept in its data dir, same port)
    let port = s.env.port();
    let Setup {
        env,
        tmp,
        kubeconfig,
        helm,
        ..
    } = s;
    env.stop().await;
    let env = TestEnv::start(Options {
        simulate_workloads: Some(Duration::from_secs(4)),
        data_dir: Some(data.path().to_path_buf()),
        port,
        ..Default::default()
    })
    .await
    .unwrap();
    env.write_kubeconfig(&kubeconfig).unwrap();
    let client = env.client().await.unwrap();
    let s = Setup {
        env,
        peer: None,
        tmp,
        kubeconfig,
        client,
        helm,
        peer_helm: None,
    };
    let mut ctl = controller(&s);
    let hr = wait_for(&s.client, "upgraded after the unlock", |hr| {
        has(hr, "Ready", "True", "UpgradeSucceeded")
    })
    .await;
    assert_eq!(
        s.helm.history(),
        [
            (1, "superseded".to_string(), "Install complete".to_string()),
            (
                2,
                "failed".to_string(),
                "Release unlocked from stale 'pending-upgrade' state".to_string()
            ),
            (3, "deployed".to_string(), "Upgrade complete".to_string()),
        ]
    );
    assert_eq!(hr.status.unwrap().history.unwrap()[0].version, 3);
    let deployments: Api<Deployment> = Api::namespaced(s.client.clone(), "default");
    assert_eq!(
        deployments.get("web").await.unwrap().spec.unwrap().replicas,
        Some(2)
    );
    let _ = ctl.start_kill();
    let _ = ctl.wait().await;
}

/// Bad input leaves the last good release running and says why in one line, with Helm's own
/// message: a values.schema.json violation and a template error (`required`); then `forceAt`
/// upgrades the in-sync release once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_keeps_the_last_good_release_and_force_upgrades() {
    let s = setup(Duration::from_millis(200), false, None).await;
    let (chart, chart_file) = chart_package(&s.helm, "0.1.0", false);
    chart_source(&s.client, &chart, "0.1.0").await;
    let mut ctl = controller(&s);
    create_release(&s.client, json!({"values": {"replicaCount": 2}})).await;
    wait_for(&s.client, "installed", |hr| {
        has(hr, "Ready", "True", "InstallSucceeded")
    })
    .await;
    let deployments: Api<Deployment> = Api::namespaced(s.client.clone(), "default");
    let f = chart_file.to_str().unwrap();
    for (values, set) in [
        (json!({"replicaCount": "three"}), "replicaCount=three"),
        (json!({"replicaCount": 2, "image": ""}), "image="),
    ] {
        // helm's own words for the same values
        let out = s.helm.output(&["template", "web", f, "--set-string", set]);
        assert!(!out.status.success());
        // (the template command's hint about --debug is not part of the error)
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let helm_err = stderr
            .trim()
            .trim_start_matches("Error: ")
            .split("\n\nUse --debug flag")
            .next()
            .unwrap()
            .to_string();
        let expected =
            format!("Helm upgrade failed for release default/web with chart web@0.1.0: {helm_err}");
        patch_spec(&s.client, json!({ "values": values })).await;
        let hr = wait_for(&s.client, "UpgradeFailed with helm's message", |hr| {
            has(hr, "Ready", "False", "UpgradeFailed")
                && condition(hr, "Ready").is_some_and(|c| c.2 == expected)
        })
        .await;
        // nothing stored, nothing counted towards remediation, the workload untouched
        assert_eq!(s.helm.history().len(), 1);
        assert_eq!(hr.status.as_ref().unwrap().upgrade_failures, None);
        assert_eq!(
            deployments.get("web").await.unwrap().spec.unwrap().replicas,
            Some(2)
        );
    }
    patch_spec(&s.client, json!({"values": {"image": null}})).await;
    wait_for(&s.client, "back in sync", |hr| {
        // upstream's in-sync rule turns the UpgradeFailed of the last attempt into
        // UpgradeSucceeded naming the release that kept running
        has(hr, "Ready", "True", "UpgradeSucceeded")
            && condition(hr, "Ready").is_some_and(|c| {
                c.2 == "Helm upgrade succeeded for release default/web.v1 with chart web@0.1.0"
            })
    })
    .await;
    assert_eq!(s.helm.history().len(), 1);
    // forceAt with requestedAt (`flux reconcile --force`): an upgrade of the in-sync release
    let releases: Api<HelmRelease> = Api::namespaced(s.client.clone(), "default");
    releases
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {
                "reconcile.fluxcd.io/requestedAt": "force-1", "reconcile.fluxcd.io/forceAt": "force-1"}}})),
        )
        .await
        .unwrap();
    let hr = wait_for(&s.client, "forced upgrade", |hr| {
        has(hr, "Ready", "True", "UpgradeSucceeded") && latest_version(hr) == 2
    })
    .await;
    assert_eq!(
        hr.status.unwrap().last_handled_force_at.as_deref(),
        Some("force-1")
    );
    assert_eq!(
        s.helm
            .history()
            .into_iter()
            .map(|h| (h.0, h.1))
            .collect::<Vec<_>>(),
        [(1, "superseded".to_string()), (2, "deployed".to_string())]
    );
    let _ = ctl.start_kill();
    let _ = ctl.wait().await;
}

fn crd(plural: &str, kind: &str) -> String {
    format!(
        r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {plural}.example.com
spec:
  group: example.com
  scope: Namespaced
  names:
    plural: {plural}
    singular: {kind_lower}
    kind: {kind}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
"#,
        kind_lower = kind.to_lowercase()
    )
}

/// `install.createNamespace` creates the target namespace as Helm does (labelled `name`), and
/// the default CRD policy `Create` creates the chart's missing CRDs but leaves an existing one
/// as it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_namespace_and_crd_create_policy() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let s = setup(Duration::from_millis(200), false, None).await;
    let (widgets, gadgets) = (crd("widgets", "Widget"), crd("gadgets", "Gadget"));
    let (chart, _) = chart_package_with(
        &s.helm,
        "0.1.0",
        false,
        &[
            ("crds/widgets.yaml", &widgets),
            ("crds/gadgets.yaml", &gadgets),
        ],
    );
    chart_source(&s.client, &chart, "0.1.0").await;
    // gadgets exists already, with another singular name than the chart's: an apply of the
    // chart's CRD would change it
    let existing = gadgets.replace("singular: gadget\n", "singular: oldgadget\n");
    assert_ne!(existing, gadgets);
    s.env.apply_yaml(&existing, "test").unwrap();
    let mut ctl = controller(&s);
    create_release(
        &s.client,
        json!({"targetNamespace": "apps", "install": {"createNamespace": true}}),
    )
    .await;
    wait_for(&s.client, "installed", |hr| {
        has(hr, "Ready", "True", "InstallSucceeded")
    })
    .await;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(s.client.clone());
    let ns = namespaces.get("apps").await.unwrap();
    assert_eq!(ns.metadata.labels.unwrap()["name"], "apps");
    let deployments: Api<Deployment> = Api::namespaced(s.client.clone(), "apps");
    assert!(deployments.get_opt("web").await.unwrap().is_some());
    let crds: Api<CustomResourceDefinition> = Api::all(s.client.clone());
    assert!(crds.get_opt("widgets.example.com").await.unwrap().is_some());
    let g = crds.get("gadgets.example.com").await.unwrap();
    assert_eq!(
        g.spec.names.singular.as_deref(),
        Some("oldgadget"),
        "an existing CRD is not replaced under policy Create"
    );
    let _ = ctl.start_kill();
    let _ = ctl.wait().await;
}
