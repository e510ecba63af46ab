//! A Secret encrypted by the real `sops` with an age key lands decrypted; a wrong key fails
//! with BuildFailed and leaves the Secret as it was.

use std::path::{Path, PathBuf};
use std::process::Command;

use ferroflux_e2e::{Cluster, failed_with, ready_at};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::{CONVERGE, kustomization, namespace};

/// A tool on PATH or in the oracle cache; a missing tool fails the test with an install hint.
fn tool(name: &str) -> PathBuf {
    ferroflux_testsupport::tool(
        name,
        "scripts/get-oracles installs sops; `apt-get install -y age` gives age-keygen",
    )
}

fn age_key(dir: &Path, name: &str) -> (String, String) {
    let path = dir.join(name);
    let out = Command::new(tool("age-keygen"))
        .arg("-o")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = std::fs::read_to_string(&path).unwrap();
    let public = key
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .to_string();
    (key, public)
}

fn decryption_secret(name: &str, key: &str) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "Secret",
           "metadata": {"name": name, "namespace": "flux-system"},
           "stringData": {"age.agekey": key}})
}

#[tokio::test]
async fn sops_encrypted_secret_lands_decrypted() {
    let cluster = Cluster::start().await.unwrap();
    cluster.apply(namespace("apps")).await.unwrap();
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = age_key(keys.path(), "key.txt");
    let (wrong_key, _) = age_key(keys.path(), "wrong.txt");

    let plain = keys.path().join("secret.yaml");
    std::fs::write(
        &plain,
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ntype: Opaque\nstringData:\n  password: s3cr3t-value\n",
    )
    .unwrap();
    let out = Command::new(tool("sops"))
        .args([
            "--encrypt",
            "--age",
            &public,
            "--encrypted-regex",
            "^(data|stringData)$",
        ])
        .arg(&plain)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sops: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let encrypted = String::from_utf8(out.stdout).unwrap();
    assert!(
        !encrypted.contains("s3cr3t-value"),
        "the fixture is encrypted"
    );

    // An encrypted dotenv file read by a secretGenerator.
    let env_plain = keys.path().join("app.env");
    std::fs::write(&env_plain, "TOKEN=t0k3n-value\nMODE=prod\n").unwrap();
    let out = Command::new(tool("sops"))
        .args([
            "--encrypt",
            "--age",
            &public,
            "--input-type",
            "dotenv",
            "--output-type",
            "dotenv",
        ])
        .arg(&env_plain)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sops: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let env_encrypted = String::from_utf8(out.stdout).unwrap();
    assert!(!env_encrypted.contains("t0k3n-value"));
    let kustomization_file = "resources:\n- db.yaml\nsecretGenerator:\n- name: app-env\n  envs:\n  - app.env\ngeneratorOptions:\n  disableNameSuffixHash: true\n";

    let repo = cluster
        .repo(
            "secrets",
            &[
                ("deploy/db.yaml", &encrypted),
                ("deploy/app.env", &env_encrypted),
                ("deploy/kustomization.yaml", kustomization_file),
            ],
        )
        .unwrap();
    let commit = ferroflux_e2e::git(&repo.work, &["rev-parse", "HEAD"]).unwrap();
    cluster
        .apply(decryption_secret("sops-age", &key))
        .await
        .unwrap();
    cluster.git_repository(&repo).await.unwrap();
    cluster
        .apply(kustomization(
            "secrets",
            "secrets",
            "./deploy",
            json!({"decryption": {"provider": "sops", "secretRef": {"name": "sops-age"}}}),
        ))
        .await
        .unwrap();
    cluster
        .wait_kustomization("flux-system", "secrets", CONVERGE, |k| ready_at(k, &commit))
        .await
        .unwrap();
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), "apps");
    let db = secrets.get("db").await.unwrap();
    let value = db
        .data
        .unwrap_or_default()
        .get("password")
        .cloned()
        .unwrap();
    assert_eq!(value.0, b"s3cr3t-value");
    let generated = secrets
        .get("app-env")
        .await
        .unwrap()
        .data
        .unwrap_or_default();
    assert_eq!(
        generated["TOKEN"].0, b"t0k3n-value",
        "dotenv source decrypted before the build"
    );
    assert_eq!(generated["MODE"].0, b"prod");

    // A wrong key: BuildFailed, and the Secret keeps its value.
    let api: Api<Secret> = Api::namespaced(cluster.client.clone(), "flux-system");
    api.patch(
        "sops-age",
        &PatchParams::default(),
        &Patch::Merge(&json!({"stringData": {"age.agekey": wrong_key}, "data": null})),
    )
    .await
    .unwrap();
    cluster
        .request_kustomization("flux-system", "secrets")
        .await
        .unwrap();
    let k = cluster
        .wait_kustomization("flux-system", "secrets", CONVERGE, |k| {
            failed_with(k, "BuildFailed")
        })
        .await
        .unwrap();
    let (_, _, msg) = ferroflux_e2e::ready(&k).unwrap();
    eprintln!("Ready message: {msg}");
    // The generator's dotenv source is decrypted first, so it is the one reported.
    assert!(
        msg.starts_with("error decrypting sources: deploy/app.env: cannot get sops data key"),
        "{msg}"
    );
    assert!(
        !msg.contains("AGE-SECRET-KEY"),
        "no key material in messages"
    );
    let db = secrets.get("db").await.unwrap();
    assert_eq!(db.data.unwrap_or_default()["password"].0, b"s3cr3t-value");

    // Without decryption configured, an encrypted Secret is refused, not applied.
    let k8s: Api<ferroflux_api::Kustomization> =
        Api::namespaced(cluster.client.clone(), "flux-system");
    k8s.patch(
        "secrets",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"decryption": null}})),
    )
    .await
    .unwrap();
    let k = cluster
        .wait_kustomization("flux-system", "secrets", CONVERGE, |k| {
            failed_with(k, "ReconciliationFailed")
        })
        .await
        .unwrap();
    let (_, _, msg) = ferroflux_e2e::ready(&k).unwrap();
    eprintln!("Ready message: {msg}");
    assert_eq!(
        msg,
        "Secret/apps/db is SOPS encrypted, configuring decryption is required for this secret to be reconciled"
    );
}
