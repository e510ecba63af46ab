//! The real `helm` v4 CLI against testenv: install (server-side apply, --wait on kstatus),
//! list, history, get values/manifest, upgrade, rollback, uninstall — the calls helm makes
//! (discovery, OpenAPI, typed Secret CRUD with label selectors, protobuf DeleteOptions) work.

use crate::common::*;
use ferroflux_testenv::Options;
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

fn helm(k: &Kubectl, args: &[&str]) -> String {
    let bin = ferroflux_testsupport::tool("helm", ferroflux_testsupport::ORACLES_HINT);
    let out = Command::new(bin)
        .args(args)
        .env("KUBECONFIG", &k.kubeconfig)
        .env("HOME", &k.home)
        .env("HELM_CACHE_HOME", k.home.join("cache"))
        .env("HELM_CONFIG_HOME", k.home.join("config"))
        .env("HELM_DATA_HOME", k.home.join("data"))
        .current_dir(&k.home)
        .output()
        .expect("run helm");
    assert!(
        out.status.success(),
        "helm {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

#[tokio::test]
async fn helm_install_upgrade_rollback_uninstall() {
    let (env, _client) = env_with(Options {
        simulate_workloads: Some(Duration::from_millis(200)),
        ..Default::default()
    })
    .await;
    let k = Kubectl::new(&env);
    let kk = k.clone();
    tokio::task::spawn_blocking(move || run(&kk)).await.unwrap();
    // every release Secret is gone after uninstall, and so are the release's objects
    let left = k
        .ok(
            &[
                "get",
                "secrets,deployments,services",
                "-n",
                "apps",
                "-o",
                "name",
            ],
            None,
        )
        .await;
    assert!(left.trim().is_empty(), "left behind: {left}");
}

fn run(k: &Kubectl) {
    helm(k, &["create", "starter"]);
    let chart = k.home.join("starter");
    let chart = chart.to_str().unwrap();
    let ns = ["-n", "apps"];
    helm(
        k,
        &[
            &[
                "install",
                "web",
                chart,
                "--create-namespace",
                "--wait",
                "--timeout",
                "60s",
            ][..],
            &ns,
        ]
        .concat(),
    );
    let list = json(&helm(k, &[&["list", "-o", "json"][..], &ns].concat()));
    assert_eq!(list[0]["name"], "web");
    assert_eq!(list[0]["status"], "deployed");
    assert_eq!(list[0]["revision"], "1");

    helm(
        k,
        &[
            &[
                "upgrade",
                "web",
                chart,
                "--set",
                "replicaCount=2",
                "--wait",
                "--timeout",
                "60s",
            ][..],
            &ns,
        ]
        .concat(),
    );
    let vals = json(&helm(
        k,
        &[&["get", "values", "web", "-o", "json"][..], &ns].concat(),
    ));
    assert_eq!(vals, serde_json::json!({"replicaCount": 2}));
    let manifest = helm(k, &[&["get", "manifest", "web"][..], &ns].concat());
    assert!(
        manifest.contains("kind: Deployment") && manifest.contains("replicas: 2"),
        "{manifest}"
    );

    helm(
        k,
        &[
            &["rollback", "web", "1", "--wait", "--timeout", "60s"][..],
            &ns,
        ]
        .concat(),
    );
    let hist = json(&helm(
        k,
        &[&["history", "web", "-o", "json"][..], &ns].concat(),
    ));
    let states: Vec<(i64, &str, &str)> = hist
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["revision"].as_i64().unwrap(),
                h["status"].as_str().unwrap(),
                h["description"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            (1, "superseded", "Install complete"),
            (2, "superseded", "Upgrade complete"),
            (3, "deployed", "Rollback to 1"),
        ]
    );
    // the release Secrets carry Helm's labels, found by helm's selectors
    let secrets = helm_storage_names(k);
    assert_eq!(
        secrets,
        [
            "sh.helm.release.v1.web.v1",
            "sh.helm.release.v1.web.v2",
            "sh.helm.release.v1.web.v3"
        ]
    );
    helm(
        k,
        &[&["uninstall", "web", "--wait", "--timeout", "60s"][..], &ns].concat(),
    );
    let list = json(&helm(
        k,
        &[
            &["list", "--superseded", "--uninstalled", "-o", "json"][..],
            &ns,
        ]
        .concat(),
    ));
    assert_eq!(list, serde_json::json!([]));
}

fn helm_storage_names(k: &Kubectl) -> Vec<String> {
    let (ok, out, err) = k.run(
        &[
            "get",
            "secrets",
            "-n",
            "apps",
            "-l",
            "owner=helm,name=web",
            "-o",
            "name",
        ],
        None,
    );
    assert!(ok, "{err}");
    let mut v: Vec<String> = out
        .lines()
        .map(|l| l.trim_start_matches("secret/").to_string())
        .collect();
    v.sort();
    v
}
