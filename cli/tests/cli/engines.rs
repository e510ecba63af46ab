//! The engine front-ends give exactly the real tools' output, run side by side.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::FERROFLUX;

/// An oracle binary (kubectl, helm); a missing one fails the test with an install hint.
fn oracle(name: &str) -> PathBuf {
    ferroflux_testsupport::tool(name, ferroflux_testsupport::ORACLES_HINT)
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/hello")
}

#[test]
fn kustomize_build_matches_kubectl_kustomize() {
    let ours = run(Command::new(FERROFLUX)
        .args(["kustomize", "build"])
        .arg(examples()));
    let theirs = run(Command::new(oracle("kubectl"))
        .arg("kustomize")
        .arg(examples()));
    assert_eq!(ours, theirs);
    assert!(
        ours.contains("name: hello-config-"),
        "the generator's hashed name is present"
    );
}

#[test]
fn kustomize_build_reports_missing_directory() {
    let out = Command::new(FERROFLUX)
        .args(["kustomize", "build", "/nonexistent/dir"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/dir"), "{err}");
}

#[test]
fn helm_template_matches_helm_on_helm_create_chart() {
    let helm = oracle("helm");
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("demo");
    run(Command::new(&helm).arg("create").arg(&chart));
    let values = dir.path().join("values.yaml");
    std::fs::write(&values, "replicaCount: 3\ningress:\n  enabled: true\n").unwrap();
    let args = |cmd: &mut Command| {
        cmd.arg("template")
            .arg("rel")
            .arg(&chart)
            .arg("-f")
            .arg(&values)
            .args(["--set", "service.port=8080", "--namespace", "apps"]);
    };
    let mut ours = Command::new(FERROFLUX);
    ours.arg("helm");
    args(&mut ours);
    let mut theirs = Command::new(&helm);
    args(&mut theirs);
    assert_eq!(run(&mut ours), run(&mut theirs));
}
