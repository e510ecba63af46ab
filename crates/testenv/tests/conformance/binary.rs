//! The `testenv` binary: flags, kubeconfig for kubectl, SIGTERM, data directory across restarts.

use crate::common::kubectl_bin;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn start(kubeconfig: &Path, data: &Path) -> Child {
    let _ = std::fs::remove_file(kubeconfig);
    let child = Command::new(env!("CARGO_BIN_EXE_testenv"))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--data-dir")
        .arg(data)
        .arg("--simulate-workloads=200ms")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start testenv binary");
    let t = Instant::now();
    while !kubeconfig.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "no kubeconfig written"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

fn kubectl(kubeconfig: &Path, home: &Path, args: &[&str]) -> String {
    let out = Command::new(kubectl_bin())
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", home)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn terminate(mut child: Child) {
    let ok = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let t = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn binary_serves_kubectl_and_keeps_state_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let (kc, data) = (dir.path().join("kubeconfig"), dir.path().join("data"));
    let child = start(&kc, &data);
    kubectl(&kc, dir.path(), &["create", "namespace", "kept"]);
    let deploy = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: kept}\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: web, image: nginx}]}\n";
    let f = dir.path().join("d.yaml");
    std::fs::write(&f, deploy).unwrap();
    kubectl(
        &kc,
        dir.path(),
        &["apply", "--server-side", "-f", f.to_str().unwrap()],
    );
    kubectl(
        &kc,
        dir.path(),
        &[
            "wait",
            "--for=condition=Available",
            "deploy/web",
            "-n",
            "kept",
            "--timeout=20s",
        ],
    );
    terminate(child);
    assert!(data.join("state.json").exists());

    let child = start(&kc, &data);
    let out = kubectl(
        &kc,
        dir.path(),
        &[
            "get",
            "deploy",
            "web",
            "-n",
            "kept",
            "-o",
            "jsonpath={.status.readyReplicas}",
        ],
    );
    assert_eq!(out, "1");
    terminate(child);
}
