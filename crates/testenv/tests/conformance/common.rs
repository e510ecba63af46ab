use ferroflux_testenv::{Options, TestEnv};
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;

pub async fn env() -> (TestEnv, Client) {
    env_with(Options::default()).await
}

pub async fn env_with(opts: Options) -> (TestEnv, Client) {
    let env = TestEnv::start(opts).await.expect("start testenv");
    let client = env.client().await.expect("client");
    (env, client)
}

pub fn dyn_api(
    client: &Client,
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    ns: Option<&str>,
) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let ar = ApiResource::from_gvk_with_plural(&gvk, plural);
    match ns {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    }
}

/// Extracts the metav1.Status of a kube error.
pub fn status_of(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

pub fn to_value<T: serde::Serialize>(t: &T) -> Value {
    serde_json::to_value(t).unwrap()
}

/// kubectl on PATH; the test fails (never skips) when it is missing.
pub fn kubectl_bin() -> PathBuf {
    ferroflux_testsupport::tool("kubectl", ferroflux_testsupport::ORACLES_HINT)
}

#[derive(Clone)]
pub struct Kubectl {
    pub kubeconfig: PathBuf,
    pub home: PathBuf,
    _dir: std::sync::Arc<tempfile::TempDir>,
}

impl Kubectl {
    pub fn new(env: &TestEnv) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        env.write_kubeconfig(&kubeconfig).unwrap();
        Kubectl {
            kubeconfig,
            home: dir.path().to_path_buf(),
            _dir: std::sync::Arc::new(dir),
        }
    }

    /// Runs kubectl; returns (success, stdout, stderr).
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        use std::io::Write;
        let mut cmd = Command::new(kubectl_bin());
        cmd.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", &self.home)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("spawn kubectl");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        } else {
            drop(child.stdin.take());
        }
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs kubectl (off the async worker) and asserts success.
    pub async fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let (ok, out, err) = self.run_async(args, stdin).await;
        assert!(ok, "kubectl {args:?} failed:\nstdout: {out}\nstderr: {err}");
        out
    }

    pub async fn run_async(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let stdin = stdin.map(str::to_string);
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            me.run(&a, stdin.as_deref())
        })
        .await
        .unwrap()
    }
}
