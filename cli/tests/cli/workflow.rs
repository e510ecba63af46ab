//! The Flux workflow commands (`get`, `reconcile`, `suspend`/`resume`, `delete`, `export`,
//! `events`, `check`, `version`, `tree`, `stats`) run as processes against testenv with the real
//! controllers (`ferroflux controller ...` processes), their output compared with the text
//! `flux` prints for the same objects (layouts from upstream's printers and golden files).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

use crate::{FERROFLUX, eventually, http_get};

fn port() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// testenv, the CRDs, a Git smart-HTTP server and source-, kustomize- and
/// notification-controller as child processes of the `ferroflux` binary.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub env: ferroflux_testenv::TestEnv,
    pub client: kube::Client,
    pub kubeconfig: PathBuf,
    git_root: PathBuf,
    git_addr: std::net::SocketAddr,
    _git_stop: tokio::sync::oneshot::Sender<()>,
    _controllers: Vec<tokio::process::Child>,
}

/// A command's outcome.
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Env {
    pub async fn start() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let env = ferroflux_testenv::TestEnv::start(ferroflux_testenv::Options {
            simulate_workloads: Some(Duration::from_millis(200)),
            ..Default::default()
        })
        .await
        .unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        env.write_kubeconfig(&kubeconfig).unwrap();
        let client = env.client().await.unwrap();
        ferroflux_cli::bootstrap::install_crds(&client)
            .await
            .unwrap();
        let git_root = dir.path().join("git");
        std::fs::create_dir_all(&git_root).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let git_addr = ferroflux_cli::gitserver::serve(
            git_root.clone(),
            "127.0.0.1:0".parse().unwrap(),
            async {
                let _ = rx.await;
            },
        )
        .await
        .unwrap();
        let source_grpc = port();
        let storage = port();
        let events = port();
        let specs: Vec<(&str, Vec<String>)> = vec![
            (
                "source-controller",
                vec![
                    format!("--storage-path={}", dir.path().join("storage").display()),
                    format!("--storage-addr={storage}"),
                    format!("--storage-adv-addr={storage}"),
                    format!("--grpc-addr={source_grpc}"),
                    format!("--events-addr=http://{events}/"),
                ],
            ),
            (
                "kustomize-controller",
                vec![
                    format!("--artifact-events-addr=http://{source_grpc}"),
                    format!("--grpc-addr={}", port()),
                    format!("--events-addr=http://{events}/"),
                ],
            ),
            (
                "notification-controller",
                vec![
                    format!("--events-addr={events}"),
                    format!("--receiverAddr={}", port()),
                ],
            ),
        ];
        let mut controllers = Vec::new();
        for (name, flags) in specs {
            let health = port();
            let log = std::fs::File::create(dir.path().join(format!("{name}.log"))).unwrap();
            let child = tokio::process::Command::new(FERROFLUX)
                .args(["controller", name])
                .arg(format!("--health-addr={health}"))
                .arg(format!("--metrics-addr={}", port()))
                .args([
                    "--min-retry-delay=200ms",
                    "--max-retry-delay=5s",
                    "--requeue-dependency=2s",
                ])
                .args(flags)
                .env("KUBECONFIG", &kubeconfig)
                .env("RUNTIME_NAMESPACE", "flux-system")
                .env("TMPDIR", dir.path())
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .kill_on_drop(true)
                .spawn()
                .unwrap();
            controllers.push(child);
            eventually(
                &format!("{name} ready"),
                Duration::from_secs(60),
                || async {
                    matches!(
                        http_get(&format!("http://{health}/readyz")).await,
                        Some((200, _))
                    )
                    .then_some(())
                },
            )
            .await;
        }
        Env {
            dir,
            env,
            client,
            kubeconfig,
            git_root,
            git_addr,
            _git_stop: tx,
            _controllers: controllers,
        }
    }

    /// Creates a served repository with `files` on main; returns (url, work tree).
    pub fn repo(&self, name: &str, files: &[(&str, &str)]) -> (String, PathBuf) {
        let bare = self.git_root.join(format!("{name}.git"));
        git(
            &self.git_root,
            &["init", "-q", "--bare", "-b", "main", bare.to_str().unwrap()],
        );
        let work = self.dir.path().join("work").join(name);
        std::fs::create_dir_all(&work).unwrap();
        git(&work, &["init", "-q", "-b", "main"]);
        git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);
        commit(&work, files);
        (format!("http://{}/{name}.git", self.git_addr), work)
    }

    pub fn apply(&self, obj: Value) {
        self.env
            .apply_yaml(&serde_json::to_string(&obj).unwrap(), "test")
            .unwrap();
    }

    /// Runs `ferroflux ARGS` with KUBECONFIG set to the testenv kubeconfig.
    pub async fn run(&self, args: &[&str]) -> Out {
        let start = Instant::now();
        let out = tokio::process::Command::new(FERROFLUX)
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env_remove("FLUX_SYSTEM_NAMESPACE")
            .stdin(Stdio::null())
            .output()
            .await
            .unwrap();
        eprintln!("ferroflux {args:?}: {:?}", start.elapsed());
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs and expects success.
    pub async fn ok(&self, args: &[&str]) -> Out {
        let out = self.run(args).await;
        assert_eq!(
            out.code,
            0,
            "ferroflux {args:?}:\nstdout:\n{}\nstderr:\n{}\nlogs:\n{}",
            out.stdout,
            out.stderr,
            self.logs()
        );
        out
    }

    pub fn logs(&self) -> String {
        let mut s = String::new();
        for n in ["source-controller", "kustomize-controller"] {
            let text = std::fs::read_to_string(self.dir.path().join(format!("{n}.log")))
                .unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            s.push_str(&format!(
                "--- {n}\n{}\n",
                lines[lines.len().saturating_sub(15)..].join("\n")
            ));
        }
        s
    }

    pub async fn get(
        &self,
        plural: &str,
        group_version: &str,
        ns: &str,
        name: &str,
    ) -> Option<Value> {
        let (g, v) = group_version.split_once('/').unwrap();
        let ar = kube::core::ApiResource {
            group: g.into(),
            version: v.into(),
            api_version: group_version.into(),
            kind: String::new(),
            plural: plural.into(),
        };
        let api: Api<kube::core::DynamicObject> =
            Api::namespaced_with(self.client.clone(), ns, &ar);
        api.get(name)
            .await
            .ok()
            .map(|o| serde_json::to_value(o).unwrap())
    }

    /// Waits until the object's Ready condition is True with `message`.
    pub async fn wait_ready(&self, plural: &str, gv: &str, name: &str, message: &str) -> Value {
        let what = format!("{plural}/{name} Ready with {message:?}");
        let start = Instant::now();
        loop {
            if let Some(o) = self.get(plural, gv, "flux-system", name).await {
                let ready = o["status"]["conditions"]
                    .as_array()
                    .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
                    .cloned();
                if let Some(c) = ready
                    && c["status"] == "True"
                    && c["message"] == message
                {
                    return o;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "timed out waiting for {what}: {o}\n{}",
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Writes files (None removes), commits and pushes; returns the commit id.
pub fn commit(work: &Path, files: &[(&str, &str)]) -> String {
    for (path, content) in files {
        let p = work.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
    }
    git(work, &["add", "-A"]);
    git(work, &["commit", "-q", "--allow-empty", "-m", "change"]);
    git(work, &["push", "-q", "origin", "HEAD:main"]);
    git(work, &["rev-parse", "HEAD"])
}

const KUSTOMIZATION_YAML: &str = "resources:\n- cm.yaml\n";

fn configmap(value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n  namespace: flux-system\ndata:\n  key: {value}\n"
    )
}

/// A GitRepository `app` and a Kustomization `app` applying it, both Ready; returns the work
/// tree and the commit.
async fn app(env: &Env) -> (PathBuf, String) {
    let (url, work) = env.repo(
        "app",
        &[
            ("kustomization.yaml", KUSTOMIZATION_YAML),
            ("cm.yaml", &configmap("one")),
        ],
    );
    let sha = git(&work, &["rev-parse", "HEAD"]);
    env.apply(
        json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
        "metadata": {"name": "app", "namespace": "flux-system"},
        "spec": {"url": url, "interval": "10m", "ref": {"branch": "main"}}}),
    );
    env.apply(
        json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": "app", "namespace": "flux-system"},
        "spec": {"interval": "10m", "path": "./", "prune": true,
                 "sourceRef": {"kind": "GitRepository", "name": "app"}}}),
    );
    env.wait_ready(
        "gitrepositories",
        "source.toolkit.fluxcd.io/v1",
        "app",
        &format!("stored artifact for revision 'main@sha1:{sha}'"),
    )
    .await;
    env.wait_ready(
        "kustomizations",
        "kustomize.toolkit.fluxcd.io/v1",
        "app",
        &format!("Applied revision: main@sha1:{sha}"),
    )
    .await;
    (work, sha)
}

#[tokio::test]
async fn get_prints_flux_tables() {
    let env = Env::start().await;
    let (_work, sha) = app(&env).await;
    let short = &sha[..8];
    // a suspended source and Kustomization the controllers never touch, in flux-system and in
    // another namespace; an Alert and a Provider (static kinds)
    env.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}}));
    for (ns, name) in [("flux-system", "paused"), ("other", "elsewhere")] {
        env.apply(
            json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"url": "https://example.invalid/x.git", "interval": "1h", "suspend": true}}),
        );
    }
    env.apply(
        json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
        "metadata": {"name": "paused", "namespace": "flux-system"},
        "spec": {"interval": "1h", "prune": false, "suspend": true,
                 "sourceRef": {"kind": "GitRepository", "name": "paused"}}}),
    );
    env.apply(
        json!({"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Provider",
        "metadata": {"name": "hook", "namespace": "flux-system"},
        "spec": {"type": "generic", "address": "http://127.0.0.1:1/"}}),
    );
    env.apply(json!({"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Alert",
        "metadata": {"name": "on-app", "namespace": "flux-system"},
        "spec": {"providerRef": {"name": "hook"}, "eventSources": [{"kind": "Kustomization", "name": "app"}]}}));

    // Widths as tablewriter computes them: the longest cell (or header) of each column; every
    // header cell padded and tab-separated with a space after the last; every row cell
    // followed by a tab.
    let git_msg = format!("stored artifact for revision 'main@sha1:{short}'"); // 49 characters
    let ks_msg = format!("Applied revision: main@sha1:{short}"); // 36 characters
    let waiting = "waiting to be reconciled";
    let rev = format!("main@sha1:{short}"); // 18 characters
    let out = env.ok(&["get", "sources", "git"]).await;
    assert_eq!(
        out.stdout,
        format!(
            "NAME  \tREVISION          \tSUSPENDED\tREADY\t{:<49} \n\
             app   \t{rev}\tFalse    \tTrue \t{git_msg}\t\n\
             paused\t{:<18}\tTrue     \tFalse\t{waiting:<49}\t\n",
            "MESSAGE", ""
        )
    );
    assert_eq!(out.stderr, "");

    let out = env.ok(&["get", "ks"]).await;
    assert_eq!(
        out.stdout,
        format!(
            "NAME  \tREVISION          \tSUSPENDED\tREADY\t{:<36} \n\
             app   \t{rev}\tFalse    \tTrue \t{ks_msg}\t\n\
             paused\t{:<18}\tTrue     \tFalse\t{waiting:<36}\t\n",
            "MESSAGE", ""
        )
    );
    let out = env
        .ok(&[
            "get",
            "kustomizations",
            "app",
            "--show-source",
            "--no-header",
        ])
        .await;
    assert_eq!(
        out.stdout,
        format!("app\tGitRepository/flux-system/app\t{rev}\tFalse\tTrue\t{ks_msg}\t\n")
    );

    // -A adds the NAMESPACE column; the flags may come before the kind
    let out = env.ok(&["get", "-A", "sources", "git"]).await;
    assert_eq!(
        out.stdout,
        format!(
            "NAMESPACE  \tNAME     \tREVISION          \tSUSPENDED\tREADY\t{:<49} \n\
             flux-system\tapp      \t{rev}\tFalse    \tTrue \t{git_msg}\t\n\
             flux-system\tpaused   \t{:<18}\tTrue     \tFalse\t{waiting:<49}\t\n\
             other      \telsewhere\t{:<18}\tTrue     \tFalse\t{waiting:<49}\t\n",
            "MESSAGE", "", ""
        )
    );

    // --status-selector: no match prints the header alone; != negates
    let out = env
        .ok(&["get", "ks", "--status-selector", "ready=false"])
        .await;
    assert_eq!(out.stdout, "NAME\tREVISION\tSUSPENDED\tREADY\tMESSAGE \n");
    let out = env
        .ok(&[
            "get",
            "ks",
            "--status-selector",
            "ready!=true",
            "--no-header",
        ])
        .await;
    assert_eq!(
        out.stdout,
        "paused\t\tTrue\tFalse\twaiting to be reconciled\t\n"
    );

    // get all: each kind with objects, names prefixed with the lower-cased kind, a blank line
    // after each table
    let out = env.ok(&["get", "all"]).await;
    assert_eq!(
        out.stdout,
        format!(
            "NAME                \tREVISION          \tSUSPENDED\tREADY\t{:<49} \n\
             gitrepository/app   \t{rev}\tFalse    \tTrue \t{git_msg}\t\n\
             gitrepository/paused\t{:<18}\tTrue     \tFalse\t{waiting:<49}\t\n\
             \n\
             NAME                \tREVISION          \tSUSPENDED\tREADY\t{:<36} \n\
             kustomization/app   \t{rev}\tFalse    \tTrue \t{ks_msg}\t\n\
             kustomization/paused\t{:<18}\tTrue     \tFalse\t{waiting:<36}\t\n\
             \n\
             NAME         \tREADY\tMESSAGE           \n\
             provider/hook\tTrue \tProvider is Ready\t\n\
             \n\
             NAME        \tSUSPENDED\tREADY\tMESSAGE        \n\
             alert/on-app\tFalse    \tTrue \tAlert is Ready\t\n\
             \n",
            "MESSAGE", "", "MESSAGE", ""
        )
    );
    assert_eq!(out.stderr, "");
    let out = env
        .ok(&["get", "all", "-A", "--status-selector", "ready=false"])
        .await;
    assert_eq!(out.stdout, "", "nothing is Ready=False");

    // errors: one line, exit 1, as flux
    let out = env.run(&["get", "ks", "nope"]).await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (
            1,
            "✗ Kustomization object 'nope' not found in \"flux-system\" namespace\n"
        )
    );
    let out = env.run(&["get", "helmreleases", "-n", "other"]).await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "✗ no HelmRelease objects found in \"other\" namespace\n")
    );
    let out = env.run(&["get", "ks", "-A", "nope"]).await;
    assert_eq!(
        out.stderr,
        "✗ Kustomization object 'nope' not found in any namespace\n"
    );
    let out = env.run(&["get", "ks", "--context", "missing"]).await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "✗ context \"missing\" does not exist\n")
    );
    let out = env.run(&["get", "ks", "-n", "Not_A_Label"]).await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (
            1,
            "✗ namespace must be a valid DNS label: \"Not_A_Label\"\n"
        )
    );
    let out = env.run(&["get", "ks", "--status-selector", "ready"]).await;
    assert_eq!(
        out.stderr,
        "✗ expected status selector in type=status or type!=status format, but found: ready\n"
    );
    let out = env.run(&["get", "all", "--watch"]).await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "✗ expected a single resource type, but found all\n")
    );
    let out = env.run(&["get", "ks", "--bogus"]).await;
    assert_eq!(out.code, 1, "usage errors exit 1 as flux's");

    // --kubeconfig and --context name the testenv cluster explicitly; an unreachable server is
    // one line
    let kc = env.kubeconfig.to_str().unwrap().to_string();
    let ctx: Value =
        ferroflux_kustomize::yaml::read::parse_documents(&std::fs::read_to_string(&kc).unwrap())
            .unwrap()[0]
            .clone();
    let ctx_name = ctx["current-context"].as_str().unwrap().to_string();
    let out = tokio::process::Command::new(FERROFLUX)
        .args([
            "get",
            "ks",
            "app",
            "--no-header",
            "--kubeconfig",
            &kc,
            "--context",
            &ctx_name,
        ])
        .env_remove("KUBECONFIG")
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("app\t"));
    let dead = env.dir.path().join("dead-kubeconfig");
    let text = std::fs::read_to_string(&kc).unwrap();
    let server = ctx["clusters"][0]["cluster"]["server"]
        .as_str()
        .unwrap()
        .to_string();
    let closed = format!("https://{}", port());
    std::fs::write(&dead, text.replace(&server, &closed)).unwrap();
    let out = tokio::process::Command::new(FERROFLUX)
        .args([
            "get",
            "ks",
            "--timeout",
            "10s",
            "--kubeconfig",
            dead.to_str().unwrap(),
        ])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("✗ "), "{stderr}");

    // --watch: the current rows (the first with the header), then a row per change
    let mut watch = tokio::process::Command::new(FERROFLUX)
        .args(["get", "ks", "app", "--watch", "--timeout", "20s"])
        .env("KUBECONFIG", &env.kubeconfig)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = {
        use tokio::io::AsyncBufReadExt;
        tokio::io::BufReader::new(watch.stdout.take().unwrap()).lines()
    };
    let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        first,
        "NAME\tREVISION          \tSUSPENDED\tREADY\tMESSAGE                              "
    );
    let second = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        second,
        format!("app \tmain@sha1:{short}\tFalse    \tTrue \tApplied revision: main@sha1:{short}\t")
    );
    let api: Api<kube::core::DynamicObject> = Api::namespaced_with(
        env.client.clone(),
        "flux-system",
        &kube::core::ApiResource {
            group: "kustomize.toolkit.fluxcd.io".into(),
            version: "v1".into(),
            api_version: "kustomize.toolkit.fluxcd.io/v1".into(),
            kind: "Kustomization".into(),
            plural: "kustomizations".into(),
        },
    );
    api.patch(
        "app",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"suspend": true}})),
    )
    .await
    .unwrap();
    let third = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        third,
        format!("app\tmain@sha1:{short}\tTrue\tTrue\tApplied revision: main@sha1:{short}\t")
    );
    let _ = watch.start_kill();
}

#[tokio::test]
async fn reconcile_with_source_returns_new_revision_and_fails_on_broken_commit() {
    let env = Env::start().await;
    let (work, _) = app(&env).await;

    // a new commit: `reconcile ks --with-source` fetches it and applies it
    let sha = commit(&work, &[("cm.yaml", &configmap("two"))]);
    let start = Instant::now();
    let out = env.ok(&["reconcile", "ks", "app", "--with-source"]).await;
    let took = start.elapsed();
    assert_eq!(
        out.stderr,
        format!(
            "► annotating GitRepository app in flux-system namespace\n\
             ✔ GitRepository annotated\n\
             ◎ waiting for GitRepository reconciliation\n\
             ✔ fetched revision main@sha1:{sha}\n\
             ► annotating Kustomization app in flux-system namespace\n\
             ✔ Kustomization annotated\n\
             ◎ waiting for Kustomization reconciliation\n\
             ✔ applied revision main@sha1:{sha}\n"
        )
    );
    assert!(
        took < Duration::from_secs(2),
        "reconcile --with-source took {took:?}"
    );
    eprintln!("reconcile --with-source of a new commit: {took:?}");
    let cm: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(env.client.clone(), "flux-system");
    assert_eq!(cm.get("cm").await.unwrap().data.unwrap()["key"], "two");

    // source only
    let out = env.ok(&["reconcile", "source", "git", "app"]).await;
    assert!(
        out.stderr
            .ends_with(&format!("✔ fetched revision main@sha1:{sha}\n")),
        "{}",
        out.stderr
    );

    // a broken commit: the failure, exit 1
    let broken = commit(
        &work,
        &[("kustomization.yaml", "resources:\n- missing.yaml\n")],
    );
    let start = Instant::now();
    let out = env
        .run(&["reconcile", "kustomization", "app", "--with-source"])
        .await;
    let took = start.elapsed();
    assert_eq!(out.code, 1, "{}", out.stderr);
    let ks = env
        .get(
            "kustomizations",
            "kustomize.toolkit.fluxcd.io/v1",
            "flux-system",
            "app",
        )
        .await
        .unwrap();
    let ready = ks["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap()
        .clone();
    assert_eq!(ready["status"], "False");
    assert_eq!(
        out.stderr,
        format!(
            "► annotating GitRepository app in flux-system namespace\n\
             ✔ GitRepository annotated\n\
             ◎ waiting for GitRepository reconciliation\n\
             ✔ fetched revision main@sha1:{broken}\n\
             ► annotating Kustomization app in flux-system namespace\n\
             ✔ Kustomization annotated\n\
             ◎ waiting for Kustomization reconciliation\n\
             ✗ Kustomization reconciliation failed: {}\n",
            ready["message"].as_str().unwrap()
        )
    );
    assert!(
        ready["message"].as_str().unwrap().contains("missing.yaml"),
        "{ready}"
    );
    assert!(took < Duration::from_secs(5), "the failure took {took:?}");
    // the last good state stays applied
    assert_eq!(cm.get("cm").await.unwrap().data.unwrap()["key"], "two");

    // a suspended object is refused; a missing one is the API server's message
    env.ok(&["suspend", "ks", "app"]).await;
    let out = env.run(&["reconcile", "ks", "app"]).await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "✗ resource is suspended\n")
    );
    let out = env.run(&["reconcile", "ks", "nope"]).await;
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "✗ kustomizations.kustomize.toolkit.fluxcd.io \"nope\" not found\n"
    );
}

#[tokio::test]
async fn suspend_resume_export_delete_events_tree_stats() {
    let env = Env::start().await;
    let (_work, sha) = app(&env).await;

    // create: a second GitRepository and Kustomization for the same repository, applied and
    // awaited as flux create does
    let url = env
        .get(
            "gitrepositories",
            "source.toolkit.fluxcd.io/v1",
            "flux-system",
            "app",
        )
        .await
        .unwrap()["spec"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let out = env
        .ok(&[
            "create",
            "source",
            "git",
            "copy",
            "--url",
            &url,
            "--branch",
            "main",
            "--interval",
            "10m",
        ])
        .await;
    assert_eq!(
        out.stderr,
        format!(
            "✚ generating GitRepository source\n► applying GitRepository source\n✔ GitRepository source created\n\
             ◎ waiting for GitRepository source reconciliation\n✔ GitRepository source reconciliation completed\n\
             ✔ fetched revision: main@sha1:{sha}\n"
        )
    );
    let out = env
        .ok(&[
            "create",
            "ks",
            "copy",
            "--source",
            "GitRepository/copy",
            "--path",
            "./",
        ])
        .await;
    assert_eq!(
        out.stderr,
        format!(
            "✚ generating Kustomization\n► applying Kustomization\n✔ Kustomization created\n\
             ◎ waiting for Kustomization reconciliation\n✔ Kustomization copy is ready\n✔ applied revision main@sha1:{sha}\n"
        )
    );
    let out = env
        .ok(&[
            "create", "ks", "copy", "--source", "copy", "--path", "./", "--prune", "--export",
        ])
        .await;
    assert_eq!(
        out.stdout,
        "---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: copy\n  namespace: flux-system\n\
         spec:\n  interval: 1m0s\n  path: ./\n  prune: true\n  sourceRef:\n    kind: GitRepository\n    name: copy\n"
    );
    let out = env
        .run(&[
            "create",
            "ks",
            "bad",
            "--source",
            "copy",
            "--path",
            "kustomize",
        ])
        .await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "✗ path must begin with ./\n")
    );
    env.ok(&["delete", "ks", "copy", "-s"]).await;
    env.ok(&["delete", "source", "git", "copy", "-s"]).await;

    // suspend / resume as flux prints them; resume of one object waits for its reconciliation
    let out = env.ok(&["suspend", "kustomization", "app"]).await;
    assert_eq!(
        out.stderr,
        "► suspending kustomization app in flux-system namespace\n✔ kustomization suspended\n"
    );
    let ks = env
        .get(
            "kustomizations",
            "kustomize.toolkit.fluxcd.io/v1",
            "flux-system",
            "app",
        )
        .await
        .unwrap();
    assert_eq!(ks["spec"]["suspend"], true);
    let out = env.ok(&["resume", "ks", "app"]).await;
    assert_eq!(
        out.stderr,
        format!(
            "► resuming kustomization app in flux-system namespace\n\
             ✔ kustomization resumed\n\
             ◎ waiting for Kustomization reconciliation\n\
             ✔ Kustomization app reconciliation completed\n\
             ✔ applied revision main@sha1:{sha}\n"
        )
    );
    let ks = env
        .get(
            "kustomizations",
            "kustomize.toolkit.fluxcd.io/v1",
            "flux-system",
            "app",
        )
        .await
        .unwrap();
    assert!(
        ks["spec"].get("suspend").is_none(),
        "resume removes spec.suspend as flux's merge patch does"
    );
    let out = env.run(&["suspend", "ks"]).await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "✗ kustomization name is required\n")
    );
    let out = env.ok(&["suspend", "ks", "nope"]).await;
    assert_eq!(
        out.stderr,
        "✗ Kustomization nope not found in flux-system namespace\n"
    );
    let out = env.ok(&["suspend", "source", "git", "--all"]).await;
    assert_eq!(
        out.stderr,
        "► suspending source git app in flux-system namespace\n✔ source git suspended\n"
    );
    let out = env.ok(&["resume", "source", "git", "--all"]).await;
    assert_eq!(
        out.stderr,
        "► resuming source git app in flux-system namespace\n✔ source git resumed\n"
    );

    // export: the clean YAML flux writes (durations as Go prints them, no status, no
    // server-set metadata)
    let out = env.ok(&["export", "ks", "app"]).await;
    assert_eq!(
        out.stdout,
        "---\n\
         apiVersion: kustomize.toolkit.fluxcd.io/v1\n\
         kind: Kustomization\n\
         metadata:\n  name: app\n  namespace: flux-system\n\
         spec:\n  interval: 10m0s\n  path: ./\n  prune: true\n  sourceRef:\n    kind: GitRepository\n    name: app\n"
    );
    let url = env
        .get(
            "gitrepositories",
            "source.toolkit.fluxcd.io/v1",
            "flux-system",
            "app",
        )
        .await
        .unwrap()["spec"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let out = env.ok(&["export", "source", "git", "--all"]).await;
    // the CRD's default timeout (60s) is written back as Go prints it
    assert_eq!(
        out.stdout,
        format!(
            "---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: app\n  namespace: flux-system\n\
             spec:\n  interval: 10m0s\n  ref:\n    branch: main\n  timeout: 1m0s\n  url: {url}\n"
        )
    );
    let out = env.run(&["export", "ks"]).await;
    assert_eq!((out.code, out.stderr.as_str()), (1, "✗ name is required\n"));

    // events of the Kustomization and of its source, oldest first
    let out = env.ok(&["events", "--for", "Kustomization/app"]).await;
    let mut lines = out.stdout.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("LAST SEEN\tTYPE  \tREASON"),
        "{header:?}"
    );
    assert!(header.contains("\tOBJECT"), "{header:?}");
    let rows: Vec<&str> = lines.collect();
    assert!(
        rows.iter().any(|r| r.contains("\tKustomization/app\t")),
        "{}",
        out.stdout
    );
    assert!(
        rows.iter().any(|r| r.contains("\tGitRepository/app\t")),
        "{}",
        out.stdout
    );
    assert!(
        rows.iter()
            .all(|r| r.split('\t').nth(1).is_some_and(|t| t.trim() == "Normal")),
        "{}",
        out.stdout
    );
    let out = env
        .ok(&["events", "--for", "Kustomization/app", "--types", "warning"])
        .await;
    assert_eq!(
        (out.stdout.as_str(), out.stderr.as_str()),
        ("", "✗ No events found in flux-system namespace.\n")
    );
    let out = env.run(&["events", "--for", "Nothing/x"]).await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "✗ 'Nothing' is not a recognized Flux kind\n")
    );

    // tree: the inventory
    let out = env.ok(&["tree", "ks", "app"]).await;
    assert_eq!(
        out.stdout,
        "Kustomization/flux-system/app\n└── ConfigMap/flux-system/cm\n\n"
    );

    // stats
    let out = env.ok(&["stats"]).await;
    let artifact_size = env
        .get(
            "gitrepositories",
            "source.toolkit.fluxcd.io/v1",
            "flux-system",
            "app",
        )
        .await
        .unwrap()["status"]["artifact"]["size"]
        .as_i64()
        .unwrap();
    assert!(
        artifact_size < 1024,
        "the tiny repository's artifact is under 1 KiB"
    );
    let size = format!("{artifact_size} B");
    assert_eq!(
        out.stdout,
        format!(
            "RECONCILERS          \tRUNNING\tFAILING\tSUSPENDED\tSTORAGE \n\
             GitRepository        \t1      \t0      \t0        \t{size:<7}\t\n\
             OCIRepository        \t0      \t0      \t0        \t-      \t\n\
             HelmRepository       \t0      \t0      \t0        \t-      \t\n\
             HelmChart            \t0      \t0      \t0        \t-      \t\n\
             Bucket               \t0      \t0      \t0        \t-      \t\n\
             Kustomization        \t1      \t0      \t0        \t-      \t\n\
             HelmRelease          \t0      \t0      \t0        \t-      \t\n\
             Alert                \t0      \t0      \t0        \t-      \t\n\
             Provider             \t0      \t0      \t0        \t-      \t\n\
             Receiver             \t0      \t0      \t0        \t-      \t\n\
             ImageUpdateAutomation\t0      \t0      \t0        \t-      \t\n\
             ImagePolicy          \t0      \t0      \t0        \t-      \t\n\
             ImageRepository      \t0      \t0      \t0        \t-      \t\n"
        )
    );

    // delete: asks unless --silent
    env.apply(
        json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
        "metadata": {"name": "old", "namespace": "flux-system"},
        "spec": {"url": "https://example.invalid/x.git", "interval": "1h", "suspend": true}}),
    );
    let out = env.run(&["delete", "source", "git", "old"]).await;
    assert_eq!(out.code, 1, "no confirmation on stdin");
    assert!(out.stderr.ends_with("✗ aborting\n"), "{}", out.stderr);
    let out = env
        .ok(&["delete", "source", "git", "old", "--silent"])
        .await;
    assert_eq!(
        out.stderr,
        "► deleting source git old in flux-system namespace\n✔ source git deleted\n"
    );
    assert!(
        env.get(
            "gitrepositories",
            "source.toolkit.fluxcd.io/v1",
            "flux-system",
            "old"
        )
        .await
        .is_none()
    );
    let out = env.run(&["delete", "ks", "old", "-s"]).await;
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (
            1,
            "✗ kustomizations.kustomize.toolkit.fluxcd.io \"old\" not found\n"
        )
    );
}

#[tokio::test]
async fn check_and_version_against_deployments() {
    let env = Env::start().await;
    // no controller Deployments: check fails as flux's does
    let out = env.run(&["check"]).await;
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("✗ no controllers found in the 'flux-system' namespace with the label selector 'app.kubernetes.io/part-of=flux'\n"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.ends_with("✗ check failed\n"), "{}", out.stderr);
    let out = env.ok(&["check", "--pre"]).await;
    assert_eq!(
        out.stderr,
        "► checking prerequisites\n✔ Kubernetes 1.33.0-ferroflux-testenv >=1.33.0-0\n✔ prerequisites checks passed\n"
    );
    // the controllers' Deployments (the workload simulator makes them ready)
    for name in ["source-controller", "kustomize-controller"] {
        env.apply(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "flux-system",
                         "labels": {"app.kubernetes.io/part-of": "flux", "app.kubernetes.io/component": name}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "manager", "image": format!("ghcr.io/ferroflux/{name}:v0.1.0")}]}}}}));
    }
    let out = env.ok(&["check", "--poll-interval", "200ms"]).await;
    let mut expected = String::from(
        "► checking prerequisites\n✔ Kubernetes 1.33.0-ferroflux-testenv >=1.33.0-0\n► checking version in cluster\n",
    );
    // our CRDs carry the part-of label but no version label
    expected.push_str("✔ distribution: flux-\n✔ bootstrapped: false\n► checking controllers\n");
    expected.push_str("✔ kustomize-controller: deployment ready\n► ghcr.io/ferroflux/kustomize-controller:v0.1.0\n");
    expected.push_str(
        "✔ source-controller: deployment ready\n► ghcr.io/ferroflux/source-controller:v0.1.0\n",
    );
    expected.push_str("► checking crds\n");
    for crd in [
        "alerts.notification.toolkit.fluxcd.io/v1beta3",
        "buckets.source.toolkit.fluxcd.io/v1",
        "externalartifacts.source.toolkit.fluxcd.io/v1",
        "gitrepositories.source.toolkit.fluxcd.io/v1",
        "helmcharts.source.toolkit.fluxcd.io/v1",
        "helmreleases.helm.toolkit.fluxcd.io/v2",
        "helmrepositories.source.toolkit.fluxcd.io/v1",
        "kustomizations.kustomize.toolkit.fluxcd.io/v1",
        "ocirepositories.source.toolkit.fluxcd.io/v1",
        "providers.notification.toolkit.fluxcd.io/v1beta3",
        "receivers.notification.toolkit.fluxcd.io/v1",
    ] {
        expected.push_str(&format!("✔ {crd}\n"));
    }
    expected.push_str("✔ all checks passed\n");
    assert_eq!(out.stderr, expected);

    let out = env.ok(&["version"]).await;
    assert_eq!(
        out.stdout,
        format!(
            "ferroflux: v{v}\nflux: v2.9.0\ndistribution: flux-\nkustomize-controller: v0.1.0\nsource-controller: v0.1.0\n",
            v = env!("CARGO_PKG_VERSION")
        )
    );
    let out = env.ok(&["version", "--client", "-o", "json"]).await;
    assert_eq!(
        out.stdout,
        format!(
            "{{\n  \"ferroflux\": \"v{}\",\n  \"flux\": \"v2.9.0\"\n}}\n",
            env!("CARGO_PKG_VERSION")
        )
    );
}
