//! The end-to-end harness: a testenv API server (with the workload simulator and state on disk,
//! so it can be restarted), the Flux CRDs, a Git smart-HTTP server (`git http-backend`; the
//! GitRepository CRD only admits http, https and ssh URLs, so `git daemon`'s git:// is not
//! usable by a GitRepository) serving bare repositories, and
//! source-controller and kustomize-controller as separate processes (started through the
//! `ferroflux-e2e-controller` launcher built from this crate).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ferroflux_api::{GitRepository, Kustomization};
use ferroflux_testenv::{Options, TestEnv};
use kube::Client;
use kube::api::{Api, Patch, PatchParams};

/// The controllers the harness can run.
pub const SOURCE: &str = "source-controller";
pub const KUSTOMIZE: &str = "kustomize-controller";
/// Started on demand ([`Cluster::start_notification`]), not by [`Cluster::start`].
pub const NOTIFICATION: &str = "notification-controller";
/// Started on demand (`cluster.start_controller(HELM)`), not by [`Cluster::start`].
pub const HELM: &str = "helm-controller";

/// A free port on 127.0.0.1.
pub fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("allocating a loopback port");
    l.local_addr().expect("local address")
}

/// Runs `git` in `dir`; fails with its stderr.
pub fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = std::process::Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "e2e")
        .env("GIT_AUTHOR_EMAIL", "e2e@example.com")
        .env("GIT_COMMITTER_NAME", "e2e")
        .env("GIT_COMMITTER_EMAIL", "e2e@example.com")
        .output()
        .context("running git")?;
    if !out.status.success() {
        bail!(
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A bare repository served by the daemon plus a work tree to commit from.
pub struct Repo {
    pub name: String,
    pub work: PathBuf,
    pub url: String,
}

impl Repo {
    /// Writes (or with `None` removes) files, commits and pushes; returns the commit id.
    pub fn commit(&self, files: &[(&str, Option<&str>)], message: &str) -> anyhow::Result<String> {
        for (path, content) in files {
            let p = self.work.join(path);
            match content {
                Some(c) => {
                    if let Some(parent) = p.parent() {
                        std::fs::create_dir_all(parent)?;
                    }
                    std::fs::write(&p, c)?;
                }
                None => {
                    let _ = std::fs::remove_file(&p);
                }
            }
        }
        git(&self.work, &["add", "-A"])?;
        git(
            &self.work,
            &["commit", "-q", "--allow-empty", "-m", message],
        )?;
        git(&self.work, &["push", "-q", "origin", "HEAD:main"])?;
        git(&self.work, &["rev-parse", "HEAD"])
    }
}

/// Why a controller did not start.
enum StartError {
    /// One of its ports was taken meanwhile: worth another try.
    PortTaken(anyhow::Error),
    Other(anyhow::Error),
}

impl From<anyhow::Error> for StartError {
    fn from(e: anyhow::Error) -> Self {
        StartError::Other(e)
    }
}

impl From<std::io::Error> for StartError {
    fn from(e: std::io::Error) -> Self {
        StartError::Other(e.into())
    }
}

struct Controller {
    process: tokio::process::Child,
    metrics: SocketAddr,
}

/// Everything one test needs.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub env: Option<TestEnv>,
    pub client: Client,
    pub kubeconfig: PathBuf,
    api_port: u16,
    admin_token: String,
    git_root: PathBuf,
    git_addr: SocketAddr,
    git_stop: Option<tokio::sync::oneshot::Sender<()>>,
    controllers: BTreeMap<&'static str, Controller>,
    pub source_grpc: SocketAddr,
    /// kustomize-controller's gRPC address (the Readiness stream).
    pub kustomize_grpc: SocketAddr,
    source_storage: SocketAddr,
    /// Whether source-controller has started once (its addresses are fixed from then on).
    source_started: bool,
    /// Extra flags per controller.
    pub extra_flags: BTreeMap<&'static str, Vec<String>>,
    /// notification-controller's event intake (kustomize-controller sends its events there
    /// when started with `--events-addr=http://<this>/`).
    pub notification_events: SocketAddr,
    /// notification-controller's webhook receiver server.
    pub notification_receiver: SocketAddr,
}

/// The program and leading arguments that start controller `name`: the service binaries
/// themselves from `FERROFLUX_E2E_BIN_DIR` (e.g. a `release-small` build, as shipped), else the
/// launcher (`FERROFLUX_E2E_CONTROLLER` or the one Cargo built) with `name` as first argument.
fn controller_command(name: &str) -> tokio::process::Command {
    if let Ok(dir) = std::env::var("FERROFLUX_E2E_BIN_DIR") {
        return tokio::process::Command::new(Path::new(&dir).join(name));
    }
    let mut cmd = tokio::process::Command::new(launcher());
    cmd.arg(name);
    cmd
}

fn launcher() -> PathBuf {
    if let Ok(p) = std::env::var("FERROFLUX_E2E_CONTROLLER") {
        return PathBuf::from(p);
    }
    // Integration tests get the path from Cargo; other users find it next to themselves.
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."));
    dir.join("ferroflux-e2e-controller")
}

impl Cluster {
    /// Starts testenv, installs the CRDs and the flux-system namespace, starts the git daemon
    /// and both controllers.
    pub async fn start() -> anyhow::Result<Cluster> {
        Self::start_with(BTreeMap::new()).await
    }

    /// Like [`Cluster::start`], with extra flags for some controllers.
    pub async fn start_with(
        extra_flags: BTreeMap<&'static str, Vec<String>>,
    ) -> anyhow::Result<Cluster> {
        let dir = tempfile::tempdir()?;
        let admin_token = format!("e2e-admin-{}", std::process::id());
        let env = TestEnv::start(Options {
            data_dir: Some(dir.path().join("apiserver")),
            simulate_workloads: Some(Duration::from_millis(300)),
            admin_token: Some(admin_token.clone()),
            ..Default::default()
        })
        .await?;
        let kubeconfig = dir.path().join("kubeconfig");
        env.write_kubeconfig(&kubeconfig)?;
        let client = env.client().await?;
        ferroflux_cli::bootstrap::install_crds(&client).await?;
        let git_root = dir.path().join("git");
        std::fs::create_dir_all(&git_root)?;
        let mut cluster = Cluster {
            api_port: env.port(),
            env: Some(env),
            client,
            kubeconfig,
            admin_token,
            git_root,
            git_addr: free_port(),
            git_stop: None,
            controllers: BTreeMap::new(),
            source_grpc: free_port(),
            kustomize_grpc: free_port(),
            source_storage: free_port(),
            source_started: false,
            extra_flags,
            notification_events: free_port(),
            notification_receiver: free_port(),
            dir,
        };
        cluster.start_git().await?;
        cluster.start_controller(SOURCE).await?;
        cluster.start_controller(KUSTOMIZE).await?;
        Ok(cluster)
    }

    /// Starts the Git server on the cluster's address (retrying while the port is still
    /// held by a server just stopped).
    pub async fn start_git(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let stop = async {
                let _ = rx.await;
            };
            match ferroflux_cli::gitserver::serve(self.git_root.clone(), self.git_addr, stop).await
            {
                Ok(_) => {
                    self.git_stop = Some(tx);
                    return Ok(());
                }
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Stops the Git server (the "source server").
    pub fn stop_git(&mut self) {
        if let Some(tx) = self.git_stop.take() {
            let _ = tx.send(());
        }
    }

    /// Creates a bare repository with an initial commit of `files` on `main`.
    pub fn repo(&self, name: &str, files: &[(&str, &str)]) -> anyhow::Result<Repo> {
        let bare = self.git_root.join(format!("{name}.git"));
        git(
            &self.git_root,
            &[
                "init",
                "-q",
                "--bare",
                "-b",
                "main",
                bare.to_str().unwrap_or(""),
            ],
        )?;
        let work = self.dir.path().join("work").join(name);
        std::fs::create_dir_all(&work)?;
        git(&work, &["init", "-q", "-b", "main"])?;
        git(
            &work,
            &["remote", "add", "origin", bare.to_str().unwrap_or("")],
        )?;
        let repo = Repo {
            name: name.to_string(),
            work,
            url: format!("http://{}/{name}.git", self.git_addr),
        };
        let files: Vec<(&str, Option<&str>)> = files.iter().map(|(p, c)| (*p, Some(*c))).collect();
        repo.commit(&files, "initial")?;
        Ok(repo)
    }

    fn flags(&self, name: &str) -> Vec<String> {
        let mut flags = vec![
            "--log-level=debug".to_string(),
            "--requeue-dependency=2s".to_string(),
            "--min-retry-delay=200ms".to_string(),
            "--max-retry-delay=5s".to_string(),
        ];
        match name {
            SOURCE => {
                flags.push(format!(
                    "--storage-path={}",
                    self.dir.path().join("storage").display()
                ));
                flags.push(format!("--storage-addr={}", self.source_storage));
                flags.push(format!("--storage-adv-addr={}", self.source_storage));
                flags.push(format!("--grpc-addr={}", self.source_grpc));
            }
            NOTIFICATION => {
                flags.push(format!("--events-addr={}", self.notification_events));
                flags.push(format!("--receiverAddr={}", self.notification_receiver));
            }
            _ => {
                let own = self.extra_flags.get(name).cloned().unwrap_or_default();
                if !own.iter().any(|f| f.starts_with("--artifact-events-addr")) {
                    flags.push(format!(
                        "--artifact-events-addr=http://{}",
                        self.source_grpc
                    ));
                }
                if name == KUSTOMIZE {
                    flags.push(format!("--grpc-addr={}", self.kustomize_grpc));
                } else {
                    flags.push("--grpc-addr=127.0.0.1:0".to_string());
                }
            }
        }
        flags.extend(self.extra_flags.get(name).cloned().unwrap_or_default());
        flags
    }

    /// Starts (or restarts) a controller process and waits until it is ready. A port handed
    /// out by [`free_port`] can be taken by a parallel test before the controller binds it; such
    /// a start is retried with fresh ports.
    pub async fn start_controller(&mut self, name: &'static str) -> anyhow::Result<()> {
        let mut attempt = 1;
        loop {
            match self.start_controller_once(name).await {
                Err(StartError::PortTaken(e)) if attempt < 3 => {
                    attempt += 1;
                    eprintln!("{name}: {e:#}; retrying with other ports");
                    // The source addresses are fixed for the cluster's life (artifact URLs and
                    // the events address point at them); only a first start may move them.
                    if name == SOURCE && !self.source_started {
                        self.source_storage = free_port();
                        self.source_grpc = free_port();
                    }
                    if name == KUSTOMIZE {
                        self.kustomize_grpc = free_port();
                    }
                    if name == NOTIFICATION {
                        // Tests read the receiver address after the start; the events address
                        // moves only while no other controller's flags point at it.
                        self.notification_receiver = free_port();
                        let events = self.notification_events.to_string();
                        if !self
                            .extra_flags
                            .values()
                            .flatten()
                            .any(|f| f.contains(&events))
                        {
                            self.notification_events = free_port();
                        }
                    }
                }
                Err(StartError::PortTaken(e) | StartError::Other(e)) => return Err(e),
                Ok(()) => {
                    if name == SOURCE {
                        self.source_started = true;
                    }
                    return Ok(());
                }
            }
        }
    }

    async fn start_controller_once(&mut self, name: &'static str) -> Result<(), StartError> {
        let metrics = free_port();
        let health = free_port();
        let logs = self.dir.path().join("logs");
        std::fs::create_dir_all(&logs)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(logs.join(format!("{name}.log")))?;
        // Where this start's output begins in the (appended) log.
        let log_start = log.metadata()?.len() as usize;
        let process = controller_command(name)
            .arg(format!("--metrics-addr={metrics}"))
            .arg(format!("--health-addr={health}"))
            .args(self.flags(name))
            .env("KUBECONFIG", &self.kubeconfig)
            .env("RUNTIME_NAMESPACE", "flux-system")
            .env("TMPDIR", self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {name} via {:?}", controller_command(name)))?;
        let mut c = Controller { process, metrics };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = c.process.try_wait()? {
                let whole = std::fs::read(logs.join(format!("{name}.log"))).unwrap_or_default();
                let this_start = String::from_utf8_lossy(whole.get(log_start..).unwrap_or(&[]));
                let e = anyhow::anyhow!(
                    "{name} exited during start-up ({status}):\n{}",
                    self.log(name)
                );
                // EADDRINUSE, in the words of std::io::Error.
                return Err(if this_start.contains("(os error 98)") {
                    StartError::PortTaken(e)
                } else {
                    StartError::Other(e)
                });
            }
            if let Ok(r) = http.get(format!("http://{health}/readyz")).send().await
                && r.status().is_success()
            {
                break;
            }
            if Instant::now() > deadline {
                return Err(StartError::Other(anyhow::anyhow!(
                    "{name} did not become ready:\n{}",
                    self.log(name)
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.controllers.insert(name, c);
        Ok(())
    }

    /// The process id of a running controller.
    pub fn pid(&self, name: &str) -> Option<u32> {
        self.controllers.get(name).and_then(|c| c.process.id())
    }

    /// The metrics address of a running controller.
    pub fn metrics_addr(&self, name: &str) -> Option<SocketAddr> {
        self.controllers.get(name).map(|c| c.metrics)
    }

    /// Sends SIGKILL to a controller and waits for it to die.
    pub async fn kill_controller(&mut self, name: &str) {
        if let Some(mut c) = self.controllers.remove(name) {
            let _ = c.process.start_kill();
            let _ = c.process.wait().await;
        }
    }

    /// Stops the API server and starts it again on the same port with the same state.
    pub async fn restart_api(&mut self, down_for: Duration) -> anyhow::Result<()> {
        if let Some(env) = self.env.take() {
            env.stop().await;
        }
        tokio::time::sleep(down_for).await;
        let env = TestEnv::start(Options {
            port: self.api_port,
            data_dir: Some(self.dir.path().join("apiserver")),
            simulate_workloads: Some(Duration::from_millis(300)),
            admin_token: Some(self.admin_token.clone()),
            ..Default::default()
        })
        .await?;
        self.client = env.client().await?;
        self.env = Some(env);
        Ok(())
    }

    /// The log of a controller so far (for failure messages).
    pub fn log(&self, name: &str) -> String {
        let text =
            std::fs::read_to_string(self.dir.path().join("logs").join(format!("{name}.log")))
                .unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Server-side applies a JSON object (any kind) as the test user.
    pub async fn apply(&self, obj: serde_json::Value) -> anyhow::Result<()> {
        let env = self.env.as_ref().context("API server is down")?;
        let yaml = serde_json::to_string(&obj)?;
        env.apply_yaml(&yaml, "e2e")?;
        Ok(())
    }

    /// Creates a GitRepository for `repo` in flux-system.
    pub async fn git_repository(&self, repo: &Repo) -> anyhow::Result<()> {
        self.apply(serde_json::json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": repo.name, "namespace": "flux-system"},
            "spec": {"url": repo.url, "interval": "1m", "ref": {"branch": "main"}}
        }))
        .await
    }

    /// Asks source-controller to fetch now (what a webhook Receiver does).
    pub async fn request_fetch(&self, repo: &str) -> anyhow::Result<()> {
        let api: Api<GitRepository> = Api::namespaced(self.client.clone(), "flux-system");
        request_reconcile(&api, repo).await
    }

    /// Asks kustomize-controller to reconcile a Kustomization now.
    pub async fn request_kustomization(&self, ns: &str, name: &str) -> anyhow::Result<()> {
        let api: Api<Kustomization> = Api::namespaced(self.client.clone(), ns);
        request_reconcile(&api, name).await
    }

    /// Waits until the Kustomization satisfies `check`; fails with its status and the logs.
    pub async fn wait_kustomization(
        &self,
        ns: &str,
        name: &str,
        timeout: Duration,
        check: impl Fn(&Kustomization) -> bool,
    ) -> anyhow::Result<Kustomization> {
        let api: Api<Kustomization> = Api::namespaced(self.client.clone(), ns);
        let deadline = Instant::now() + timeout;
        let mut last = None;
        loop {
            if let Ok(k) = api.get(name).await {
                if check(&k) {
                    return Ok(k);
                }
                last = Some(k);
            }
            if Instant::now() > deadline {
                bail!(
                    "Kustomization {ns}/{name} did not reach the expected state in {timeout:?}; status: {}\n--- kustomize-controller log:\n{}\n--- source-controller log:\n{}",
                    serde_json::to_string_pretty(&last.and_then(|k| k.status)).unwrap_or_default(),
                    self.log(KUSTOMIZE),
                    self.log(SOURCE)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop_git();
    }
}

/// Sets `reconcile.fluxcd.io/requestedAt` on any Flux object.
pub async fn request_reconcile<K>(api: &Api<K>, name: &str) -> anyhow::Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let token = format!("{:?}", std::time::SystemTime::now());
    let patch = serde_json::json!({"metadata": {"annotations": {
        "reconcile.fluxcd.io/requestedAt": token}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// The Ready condition of a Kustomization: (status, reason, message).
pub fn ready(k: &Kustomization) -> Option<(String, String, String)> {
    let c = k
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?;
    Some((c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// Ready=True at `revision` (the commit id's suffix) and observed.
pub fn ready_at(k: &Kustomization, commit: &str) -> bool {
    let applied = k
        .status
        .as_ref()
        .and_then(|s| s.last_applied_revision.as_deref())
        .unwrap_or("");
    ready(k).is_some_and(|(s, _, _)| s == "True")
        && applied.ends_with(commit)
        && k.status.as_ref().and_then(|s| s.observed_generation) == k.metadata.generation
}

/// Ready=False with `reason`.
pub fn failed_with(k: &Kustomization, reason: &str) -> bool {
    ready(k).is_some_and(|(s, r, _)| s == "False" && r == reason)
}

/// A Helm chart repository served over HTTP from a directory (`index.yaml` + packaged charts),
/// as `helm repo index` writes it, for helm-controller's tests and benchmarks.
pub mod helm_repo {
    use std::path::{Path, PathBuf};
    use std::process::Command;

    /// The real helm CLI (oracle cache or PATH).
    pub fn helm_bin() -> PathBuf {
        ferroflux_testsupport::tool("helm", ferroflux_testsupport::ORACLES_HINT)
    }

    /// Runs helm with its homes under `home`; stdout, or the error with stderr.
    pub fn helm(home: &Path, kubeconfig: &Path, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new(helm_bin())
            .args(args)
            .env("KUBECONFIG", kubeconfig)
            .env("HOME", home)
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_DATA_HOME", home.join("data"))
            .current_dir(home)
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "helm {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `helm create <name>` at `version` packaged into `repo` (`helm package`), then
    /// `helm repo index repo --url <url>`; returns the package path.
    pub fn publish(
        home: &Path,
        repo: &Path,
        url: &str,
        name: &str,
        version: &str,
    ) -> anyhow::Result<PathBuf> {
        let src = home.join(format!("src-{name}-{version}"));
        std::fs::create_dir_all(&src)?;
        std::fs::create_dir_all(repo)?;
        let kc = home.join("no-kubeconfig");
        helm(&src, &kc, &["create", name])?;
        let chart_yaml = src.join(name).join("Chart.yaml");
        let text = std::fs::read_to_string(&chart_yaml)?;
        std::fs::write(
            &chart_yaml,
            text.replace("version: 0.1.0", &format!("version: {version}")),
        )?;
        let repo_s = repo.to_string_lossy().into_owned();
        helm(&src, &kc, &["package", name, "-d", &repo_s])?;
        helm(home, &kc, &["repo", "index", &repo_s, "--url", url])?;
        Ok(repo.join(format!("{name}-{version}.tgz")))
    }

    /// Serves the files of `repo` at `http://127.0.0.1:<port>/<file>`; returns the base URL.
    pub async fn serve(repo: PathBuf) -> anyhow::Result<String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = axum::Router::new().route(
            "/{file}",
            axum::routing::get(
                move |axum::extract::Path(file): axum::extract::Path<String>| {
                    let repo = repo.clone();
                    async move {
                        if file.contains('/') || file.contains("..") {
                            return Err(axum::http::StatusCode::NOT_FOUND);
                        }
                        std::fs::read(repo.join(&file))
                            .map_err(|_| axum::http::StatusCode::NOT_FOUND)
                    }
                },
            ),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(format!("http://{addr}"))
    }
}

/// Process measurements of the benchmarks (`benches/`): CPU time and resident memory from
/// `/proc`.
pub mod bench {
    use std::time::Duration;

    /// CPU time (user + system) a process has used so far.
    pub fn cpu_time(pid: &str) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // Fields after the command name (which is in parentheses and may contain spaces).
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = [11, 12]
            .iter()
            .filter_map(|&i| fields.get(i).and_then(|v| v.parse::<u64>().ok()))
            .sum();
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        Duration::from_millis(ticks * 1000 / hz)
    }

    /// Idle RSS: the highest of 40 samples over 20 s, in KiB (total, anonymous, file-backed).
    pub async fn idle_rss(pid: u32) -> (u64, u64, u64) {
        let mut high = (0, 0, 0);
        for _ in 0..40 {
            let now = rss_parts(pid);
            if now.0 > high.0 {
                high = now;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        high
    }

    /// RSS of a process, in KiB: total, anonymous, file-backed.
    pub fn rss_parts(pid: u32) -> (u64, u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let field = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("RssAnon:"), field("RssFile:"))
    }

    pub fn print_rss(label: &str, (total, anon, file): (u64, u64, u64)) {
        println!(
            "   {label:<34} {:>6.1} MiB  (anonymous {:.1}, file-backed {:.1})  (target <= 15 MiB)",
            total as f64 / 1024.0,
            anon as f64 / 1024.0,
            file as f64 / 1024.0
        );
    }
}
