//! `ferroflux up`: the embedded demo. Starts testenv (a Kubernetes-API-compatible control plane
//! with the workload simulator), installs the Flux CRDs, starts the four controllers as child
//! processes, serves the sample Git repository from `examples/hello` over HTTP on loopback,
//! creates a GitRepository, a Kustomization and a HelmRelease (its chart `charts/hello`) for it,
//! and shows their readiness until Ctrl-C,
//! which stops everything.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use ferroflux_api::{GitRepository, HelmRelease, Kustomization};
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};

use ferroflux_cli::bootstrap::install_crds;
use ferroflux_cli::gitserver;

/// The sample application, embedded so that `up` works from any directory.
const SAMPLE: &[(&str, &str)] = &[
    (
        "kustomization.yaml",
        include_str!("../../examples/hello/kustomization.yaml"),
    ),
    (
        "namespace.yaml",
        include_str!("../../examples/hello/namespace.yaml"),
    ),
    (
        "deployment.yaml",
        include_str!("../../examples/hello/deployment.yaml"),
    ),
    (
        "service.yaml",
        include_str!("../../examples/hello/service.yaml"),
    ),
    (
        "charts/hello/Chart.yaml",
        include_str!("../../examples/hello/charts/hello/Chart.yaml"),
    ),
    (
        "charts/hello/values.yaml",
        include_str!("../../examples/hello/charts/hello/values.yaml"),
    ),
    (
        "charts/hello/templates/configmap.yaml",
        include_str!("../../examples/hello/charts/hello/templates/configmap.yaml"),
    ),
];

/// Options of `ferroflux up`.
#[derive(clap::Args, Debug, Clone)]
pub struct UpArgs {
    /// Directory for the kubeconfig, logs, artifacts and the sample repository.
    #[arg(long, default_value = ".ferroflux")]
    pub work_dir: PathBuf,
    /// Port of the Kubernetes API on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    pub api_port: u16,
    /// Delay after which the workload simulator marks Deployments ready.
    #[arg(long, default_value = "2s", value_parser = ferroflux_api::duration::parse_go_duration)]
    pub workload_delay: Duration,
    /// Stop after this long instead of waiting for Ctrl-C (for scripts and tests).
    #[arg(long, value_parser = ferroflux_api::duration::parse_go_duration)]
    pub run_for: Option<Duration>,
}

/// A controller child process.
struct Child {
    name: &'static str,
    process: tokio::process::Child,
    health: SocketAddr,
    metrics: SocketAddr,
}

fn free_port() -> anyhow::Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("allocating a loopback port")?;
    Ok(l.local_addr()?)
}

fn spawn_controller(
    name: &'static str,
    args: Vec<String>,
    kubeconfig: &Path,
    logs: &Path,
) -> anyhow::Result<Child> {
    let metrics = free_port()?;
    let health = free_port()?;
    let exe = std::env::current_exe().context("locating the ferroflux binary")?;
    let log = std::fs::File::create(logs.join(format!("{name}.log")))
        .with_context(|| format!("creating the log file of {name}"))?;
    let mut cmd = tokio::process::Command::new(exe);
    cmd.arg("controller")
        .arg(name)
        .arg(format!("--metrics-addr={metrics}"))
        .arg(format!("--health-addr={health}"))
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("RUNTIME_NAMESPACE", "flux-system")
        .env("HOSTNAME", format!("{name}-embedded"))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group: a terminal's Ctrl-C reaches `up` alone, which then stops the
        // controllers in order (otherwise a controller that exits first on the same SIGINT is
        // reported as having exited unexpectedly).
        .process_group(0)
        .kill_on_drop(true);
    let process = cmd.spawn().with_context(|| format!("starting {name}"))?;
    Ok(Child {
        name,
        process,
        health,
        metrics,
    })
}

async fn wait_ready(child: &mut Child, timeout: Duration) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(status) = child.process.try_wait()? {
            bail!(
                "{} exited during start-up ({status}); see its log",
                child.name
            );
        }
        if let Ok(r) = http
            .get(format!("http://{}/readyz", child.health))
            .send()
            .await
            && r.status().is_success()
        {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            bail!("{} did not become ready within {timeout:?}", child.name);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn terminate(child: &Child) {
    if let Some(pid) = child.process.id() {
        // SAFETY: sending a signal to our own child process id.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGTERM);
        }
    }
}

async fn create_sync_objects(client: &Client, url: &str) -> anyhow::Result<()> {
    let pp = PatchParams::apply("ferroflux").force();
    let repo: GitRepository = serde_json::from_value(serde_json::json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
        "metadata": {"name": "hello", "namespace": "flux-system"},
        "spec": {"url": url, "interval": "1m", "ref": {"branch": "main"}}
    }))?;
    let ks: Kustomization = serde_json::from_value(serde_json::json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": "hello", "namespace": "flux-system"},
        "spec": {"interval": "10m", "path": "./", "prune": true, "wait": true, "timeout": "2m",
                 "sourceRef": {"kind": "GitRepository", "name": "hello"}}
    }))?;
    Api::<GitRepository>::namespaced(client.clone(), "flux-system")
        .patch("hello", &pp, &Patch::Apply(&repo))
        .await
        .context("creating GitRepository hello")?;
    Api::<Kustomization>::namespaced(client.clone(), "flux-system")
        .patch("hello", &pp, &Patch::Apply(&ks))
        .await
        .context("creating Kustomization hello")?;
    // the sample chart of the same repository, through a HelmChart made from the template
    let hr: HelmRelease = serde_json::from_value(serde_json::json!({
        "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
        "metadata": {"name": "hello", "namespace": "flux-system"},
        "spec": {"interval": "10m",
                 "chart": {"spec": {"chart": "./charts/hello", "interval": "1m",
                                    "sourceRef": {"kind": "GitRepository", "name": "hello"}}},
                 "values": {"greeting": "Hello from ferroflux's helm-controller"}}
    }))?;
    Api::<HelmRelease>::namespaced(client.clone(), "flux-system")
        .patch("hello", &pp, &Patch::Apply(&hr))
        .await
        .context("creating HelmRelease hello")?;
    Ok(())
}

/// The demo's notification sink: a local HTTP endpoint the sample `generic` Provider posts to;
/// each delivered event is printed as one line. Returns its URL.
async fn start_notification_sink() -> anyhow::Result<String> {
    let app = axum::Router::new().fallback(|body: axum::body::Bytes| async move {
        if let Ok(e) = serde_json::from_slice::<serde_json::Value>(&body) {
            let o = &e["involvedObject"];
            println!(
                "🔔 alert 'demo' → {} {}/{}: {} ({})",
                e["severity"].as_str().unwrap_or_default(),
                o["kind"].as_str().unwrap_or_default(),
                o["name"].as_str().unwrap_or_default(),
                e["message"].as_str().unwrap_or_default(),
                e["reason"].as_str().unwrap_or_default()
            );
        }
        axum::http::StatusCode::OK
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the notification sink")?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("http://{addr}/"))
}

/// The sample alerting objects: a `generic` Provider posting to the demo's sink and an Alert
/// sending it every GitRepository and Kustomization event of flux-system.
async fn create_alerting_objects(client: &Client, sink: &str) -> anyhow::Result<()> {
    let pp = PatchParams::apply("ferroflux").force();
    let provider: ferroflux_api::Provider = serde_json::from_value(serde_json::json!({
        "apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Provider",
        "metadata": {"name": "demo-sink", "namespace": "flux-system"},
        "spec": {"type": "generic", "address": sink}
    }))?;
    let alert: ferroflux_api::Alert = serde_json::from_value(serde_json::json!({
        "apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Alert",
        "metadata": {"name": "demo", "namespace": "flux-system"},
        "spec": {"providerRef": {"name": "demo-sink"},
                 "eventSources": [{"kind": "GitRepository", "name": "*"},
                                  {"kind": "Kustomization", "name": "*"}]}
    }))?;
    Api::<ferroflux_api::Provider>::namespaced(client.clone(), "flux-system")
        .patch("demo-sink", &pp, &Patch::Apply(&provider))
        .await
        .context("creating Provider demo-sink")?;
    Api::<ferroflux_api::Alert>::namespaced(client.clone(), "flux-system")
        .patch("demo", &pp, &Patch::Apply(&alert))
        .await
        .context("creating Alert demo")?;
    Ok(())
}

/// One line of the status table, as `flux get` shows it.
fn status_line<K: ferroflux_api::FluxObject>(obj: &K, revision: Option<&str>) -> String {
    let ready = ferroflux_api::conditions::get(obj.conditions(), ferroflux_api::conditions::READY);
    let (status, message) = match ready {
        Some(c) => (c.status.as_str(), c.message.as_str()),
        None => ("False", "waiting to be reconciled"),
    };
    format!(
        "{:<22} {:<6} {:<6} {:<50} {}",
        format!("{}/{}", K::kind(&()), obj.name_any()),
        status,
        if obj.suspended() { "True" } else { "False" },
        revision.unwrap_or("-"),
        message
    )
}

async fn show_status(client: &Client, last: &mut BTreeMap<String, String>) {
    let repos = Api::<GitRepository>::namespaced(client.clone(), "flux-system");
    let kss = Api::<Kustomization>::namespaced(client.clone(), "flux-system");
    let mut lines = Vec::new();
    if let Ok(r) = repos.get("hello").await {
        let rev = r
            .status
            .as_ref()
            .and_then(|s| s.artifact.as_ref())
            .map(|a| a.revision.clone());
        lines.push(("repo".to_string(), status_line(&r, rev.as_deref())));
    }
    if let Ok(k) = kss.get("hello").await {
        let rev = k
            .status
            .as_ref()
            .and_then(|s| s.last_applied_revision.clone());
        lines.push(("ks".to_string(), status_line(&k, rev.as_deref())));
    }
    let hrs = Api::<HelmRelease>::namespaced(client.clone(), "flux-system");
    if let Ok(h) = hrs.get("hello").await {
        let rev = h
            .status
            .as_ref()
            .and_then(|s| s.last_attempted_revision.clone());
        lines.push(("hr".to_string(), status_line(&h, rev.as_deref())));
    }
    for (key, line) in lines {
        if last.get(&key) != Some(&line) {
            println!("{line}");
            last.insert(key, line);
        }
    }
}

/// Runs the embedded demo until Ctrl-C (or `--run-for`).
pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    // Handle Ctrl-C and SIGTERM from the start, so that no signal kills us half-way.
    use tokio::signal::unix::{SignalKind, signal};
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let work = std::path::absolute(&args.work_dir).context("resolving --work-dir")?;
    let logs = work.join("logs");
    let git_root = work.join("git");
    let storage = work.join("storage");
    for d in [&logs, &git_root, &storage] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }

    println!("► starting the Kubernetes API (testenv)");
    let env = ferroflux_testenv::TestEnv::start(ferroflux_testenv::Options {
        port: args.api_port,
        simulate_workloads: Some(args.workload_delay),
        ..Default::default()
    })
    .await
    .context("starting testenv")?;
    let kubeconfig = work.join("kubeconfig");
    env.write_kubeconfig(&kubeconfig)
        .context("writing the kubeconfig")?;
    let client = env.client().await.context("connecting to testenv")?;
    println!(
        "✔ API server at {} (export KUBECONFIG={})",
        env.url(),
        kubeconfig.display()
    );

    install_crds(&client).await?;
    println!("✔ Flux CRDs installed");

    let (stop_git, git_stopped) = tokio::sync::oneshot::channel::<()>();
    let commit = gitserver::create_repository(&git_root, "hello", SAMPLE).await?;
    let git_addr = gitserver::serve(git_root.clone(), "127.0.0.1:0".parse()?, async {
        let _ = git_stopped.await;
    })
    .await?;
    let url = format!("http://{git_addr}/hello.git");
    println!("✔ sample repository served at {url} (main@sha1:{commit})");

    let notification_events = free_port()?;
    let source_grpc = free_port()?;
    let source_storage = free_port()?;
    let events = format!("--events-addr=grpc://{notification_events}");
    let specs: Vec<(&'static str, Vec<String>)> = vec![
        (
            "notification-controller",
            vec![
                format!("--events-addr={notification_events}"),
                format!("--receiverAddr={}", free_port()?),
            ],
        ),
        (
            "source-controller",
            vec![
                events.clone(),
                format!("--storage-path={}", storage.display()),
                format!("--storage-addr={source_storage}"),
                format!("--storage-adv-addr={source_storage}"),
                format!("--grpc-addr={source_grpc}"),
            ],
        ),
        (
            "kustomize-controller",
            vec![
                events.clone(),
                format!("--artifact-events-addr=http://{source_grpc}"),
                format!("--grpc-addr={}", free_port()?),
            ],
        ),
        (
            "helm-controller",
            vec![
                events.clone(),
                format!("--artifact-events-addr=http://{source_grpc}"),
                format!("--grpc-addr={}", free_port()?),
            ],
        ),
    ];
    let mut children = Vec::new();
    for (name, extra) in specs {
        let mut child = spawn_controller(name, extra, &kubeconfig, &logs)?;
        wait_ready(&mut child, Duration::from_secs(30)).await?;
        println!(
            "✔ {name} running (metrics http://{}/metrics, log {})",
            child.metrics,
            logs.join(format!("{name}.log")).display()
        );
        children.push(child);
    }

    let sink = start_notification_sink().await?;
    create_alerting_objects(&client, &sink).await?;
    println!(
        "✔ Provider 'demo-sink' (generic, {sink}) and Alert 'demo' created in flux-system: deliveries are printed with 🔔"
    );
    create_sync_objects(&client, &url).await?;
    println!("✔ GitRepository, Kustomization and HelmRelease 'hello' created in flux-system");
    let state = serde_json::json!({
        "kubeconfig": kubeconfig, "api": env.url(), "git": url, "commit": commit,
        "notification_sink": sink,
        "controllers": children.iter().map(|c| serde_json::json!({
            "name": c.name, "pid": c.process.id(), "metrics": c.metrics.to_string(), "health": c.health.to_string()
        })).collect::<Vec<_>>()
    });
    std::fs::write(work.join("state.json"), serde_json::to_vec_pretty(&state)?)?;
    println!(
        "\n{:<22} {:<6} {:<6} {:<50} MESSAGE",
        "NAME", "READY", "SUSP.", "REVISION"
    );

    let run_for = args.run_for;
    let stop = async move {
        let timer = async {
            match run_for {
                Some(d) => tokio::time::sleep(d).await,
                None => futures::future::pending().await,
            }
        };
        tokio::select! {
            _ = sigint.recv() => {}
            _ = sigterm.recv() => {}
            _ = timer => {}
        }
    };
    tokio::pin!(stop);
    let mut last = BTreeMap::new();
    let mut failure = None;
    loop {
        show_status(&client, &mut last).await;
        for c in children.iter_mut() {
            if let Ok(Some(status)) = c.process.try_wait() {
                failure = Some(format!(
                    "{} exited unexpectedly ({status}); see its log",
                    c.name
                ));
            }
        }
        if failure.is_some() {
            break;
        }
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }

    println!("\n► stopping");
    for c in &children {
        terminate(c);
    }
    for c in children.iter_mut() {
        match tokio::time::timeout(Duration::from_secs(15), c.process.wait()).await {
            Ok(_) => {}
            Err(_) => {
                let _ = c.process.start_kill();
                let _ = c.process.wait().await;
            }
        }
    }
    let _ = stop_git.send(());
    env.stop().await;
    println!("✔ stopped");
    match failure {
        Some(f) => bail!(f),
        None => Ok(()),
    }
}
