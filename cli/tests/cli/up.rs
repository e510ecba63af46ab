//! `ferroflux up` end to end: API server, CRDs, controllers, sample repository, sync objects,
//! and a clean stop.

use std::process::Stdio;
use std::time::Duration;

use ferroflux_api::{GitRepository, Kustomization};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt;
use kube::api::Api;

use crate::{FERROFLUX, eventually, http_get, read_json, signal};

#[tokio::test]
async fn up_starts_everything_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let mut up = tokio::process::Command::new(FERROFLUX)
        .args(["up", "--run-for", "5m", "--work-dir"])
        .arg(&work)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // The demo's output, read as it comes (deliveries of the sample Alert are printed there).
    let printed = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    {
        use tokio::io::AsyncBufReadExt;
        let mut lines = tokio::io::BufReader::new(up.stdout.take().unwrap()).lines();
        let printed = printed.clone();
        tokio::spawn(async move {
            while let Ok(Some(l)) = lines.next_line().await {
                let mut p = printed.lock().unwrap();
                p.push_str(&l);
                p.push('\n');
            }
        });
    }

    let state_path = work.join("state.json");
    let state = eventually("state.json", Duration::from_secs(60), || async {
        read_json(&state_path)
    })
    .await;

    // The kubeconfig works with kube-rs; all Flux CRDs are installed.
    let kubeconfig = std::fs::read_to_string(state["kubeconfig"].as_str().unwrap()).unwrap();
    let client = ferroflux_testenv::client_from_yaml(&kubeconfig)
        .await
        .unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let names: Vec<String> = crds
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|c| c.name_any())
        .collect();
    for expected in [
        "gitrepositories.source.toolkit.fluxcd.io",
        "kustomizations.kustomize.toolkit.fluxcd.io",
        "helmreleases.helm.toolkit.fluxcd.io",
        "receivers.notification.toolkit.fluxcd.io",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }

    // Every controller serves health and metrics with its controller series.
    let controllers = state["controllers"].as_array().unwrap();
    assert_eq!(controllers.len(), 4);
    for c in controllers {
        let name = c["name"].as_str().unwrap();
        let (code, _) = http_get(&format!("http://{}/readyz", c["health"].as_str().unwrap()))
            .await
            .unwrap();
        assert_eq!(code, 200, "{name} ready");
        let (_, metrics) = http_get(&format!(
            "http://{}/metrics",
            c["metrics"].as_str().unwrap()
        ))
        .await
        .unwrap();
        let kind = match name {
            "source-controller" => "gitrepository",
            "kustomize-controller" => "kustomization",
            "helm-controller" => "helmrelease",
            _ => "receiver",
        };
        assert!(
            metrics.contains(&format!(
                "controller_runtime_max_concurrent_reconciles{{controller=\"{kind}\"}}"
            )),
            "{name} metrics:\n{metrics}"
        );
    }

    // `ferroflux check` finds the demo's controller processes through state.json beside the
    // kubeconfig (there are no Deployments): each ready, the CRDs served, exit 0.
    let check = tokio::process::Command::new(FERROFLUX)
        .args([
            "check",
            "--kubeconfig",
            state["kubeconfig"].as_str().unwrap(),
        ])
        .env_remove("KUBECONFIG")
        .output()
        .await
        .unwrap();
    let check_err = String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success(), "{check_err}");
    for c in controllers {
        let name = c["name"].as_str().unwrap();
        assert!(
            check_err.contains(&format!("✔ {name}: process ready\n")),
            "{check_err}"
        );
    }
    assert!(check_err.ends_with("✔ all checks passed\n"), "{check_err}");

    // The sample repository is served over smart HTTP at the advertised commit.
    let url = state["git"].as_str().unwrap();
    let out = tokio::process::Command::new("git")
        .args(["ls-remote", url])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let refs = String::from_utf8_lossy(&out.stdout);
    assert!(
        refs.contains(&format!(
            "{}\trefs/heads/main",
            state["commit"].as_str().unwrap()
        )),
        "{refs}"
    );

    // The sync objects point at the served repository.
    let repo = Api::<GitRepository>::namespaced(client.clone(), "flux-system")
        .get("hello")
        .await
        .unwrap();
    assert_eq!(repo.spec.url.as_deref(), Some(url));

    // source-controller reconciles it: Ready with the served commit's revision, and the status
    // reads as Current for kstatus (what `flux` and health checks compute).
    let repos = Api::<GitRepository>::namespaced(client.clone(), "flux-system");
    let expected_revision = format!("main@sha1:{}", state["commit"].as_str().unwrap());
    let ready = eventually(
        "GitRepository hello to be Ready",
        Duration::from_secs(60),
        || async {
            let r = repos.get("hello").await.ok()?;
            let json = serde_json::to_value(&r).ok()?;
            (ferroflux_runtime::kstatus::compute(&json).status
                == ferroflux_runtime::kstatus::Status::Current)
                .then_some(r)
        },
    )
    .await;
    let artifact = ready
        .status
        .as_ref()
        .and_then(|s| s.artifact.as_ref())
        .expect("artifact");
    assert_eq!(artifact.revision, expected_revision);
    assert!(artifact.digest.starts_with("sha256:"));

    // kustomize-controller applies the sample app: the Kustomization is Ready with the same
    // revision, its inventory lists the app's objects, and they exist in the cluster.
    let kustomizations = Api::<Kustomization>::namespaced(client.clone(), "flux-system");
    let ks = eventually(
        "Kustomization hello to be Ready",
        Duration::from_secs(90),
        || async {
            let k = kustomizations.get("hello").await.ok()?;
            let status = k.status.as_ref()?;
            let ready = status
                .conditions
                .as_ref()?
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            (ready && status.last_applied_revision.as_deref() == Some(&expected_revision))
                .then_some(k)
        },
    )
    .await;
    let ready = ks
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
        .unwrap();
    assert_eq!(ready.reason, "ReconciliationSucceeded");
    assert_eq!(
        ready.message,
        format!("Applied revision: {expected_revision}")
    );
    let inventory: Vec<String> = ks
        .status
        .as_ref()
        .and_then(|s| s.inventory.as_ref())
        .map(|i| i.entries.iter().map(|e| e.id.clone()).collect())
        .unwrap_or_default();
    assert!(
        inventory.contains(&"_hello__Namespace".to_string())
            && inventory.contains(&"hello_hello_apps_Deployment".to_string()),
        "{inventory:?}"
    );
    let deployment = Api::<Deployment>::namespaced(client.clone(), "hello")
        .get("hello")
        .await
        .unwrap();
    assert_eq!(
        deployment.metadata.labels.unwrap_or_default()["kustomize.toolkit.fluxcd.io/name"],
        "hello"
    );

    // helm-controller releases the sample chart of the same repository: the HelmRelease's
    // chart template becomes a HelmChart source-controller builds from the GitRepository, and
    // the release (in flux-system) creates the chart's ConfigMap with the HelmRelease's value.
    let releases = Api::<ferroflux_api::HelmRelease>::namespaced(client.clone(), "flux-system");
    let hr = eventually(
        "HelmRelease hello to be Ready",
        Duration::from_secs(90),
        || async {
            let h = releases.get("hello").await.ok()?;
            h.status
                .as_ref()?
                .conditions
                .as_ref()?
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True" && c.reason == "InstallSucceeded")
                .then_some(h)
        },
    )
    .await;
    let st = hr.status.unwrap();
    assert_eq!(
        st.helm_chart.as_deref(),
        Some("flux-system/flux-system-hello")
    );
    assert_eq!(st.last_attempted_revision.as_deref(), Some("0.1.0"));
    let cm =
        Api::<k8s_openapi::api::core::v1::ConfigMap>::namespaced(client.clone(), "flux-system")
            .get("hello-greeting")
            .await
            .unwrap();
    assert_eq!(
        cm.data.unwrap_or_default()["GREETING"],
        "Hello from ferroflux's helm-controller"
    );

    // The sample generic Provider and Alert: kustomize-controller's event about hello went
    // through notification-controller to the demo's sink, which printed it.
    eventually(
        "the Alert's delivery printed",
        Duration::from_secs(30),
        || async {
            printed
                .lock()
                .unwrap()
                .lines()
                .any(|l| {
                    l.starts_with("🔔 alert 'demo' → info Kustomization/hello: ")
                        && l.ends_with("(ReconciliationSucceeded)")
                })
                .then_some(())
        },
    )
    .await;

    // Ctrl-C stops the controllers and the API server, and `up` exits successfully.
    signal(up.id().unwrap(), libc::SIGINT);
    let status = tokio::time::timeout(Duration::from_secs(30), up.wait())
        .await
        .expect("up exits")
        .unwrap();
    let output = up.wait_with_output().await.unwrap();
    assert!(
        status.success(),
        "up failed: {}\n{}",
        printed.lock().unwrap(),
        String::from_utf8_lossy(&output.stderr)
    );
    for c in controllers {
        let pid = c["pid"].as_u64().unwrap() as libc::pid_t;
        // SAFETY: probing a (former) child pid with signal 0.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        assert!(
            !alive,
            "{} (pid {pid}) still running after up stopped",
            c["name"]
        );
    }
    let api = state["api"]
        .as_str()
        .unwrap()
        .trim_start_matches("https://")
        .to_string();
    assert!(
        tokio::net::TcpStream::connect(&api).await.is_err(),
        "API server still listening on {api}"
    );
}
