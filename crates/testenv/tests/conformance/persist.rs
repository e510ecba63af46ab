//! The data directory: state, tokens and certificates survive a restart.

use crate::common::*;
use crate::crd::install_widgets;
use ferroflux_testenv::{Options, TestEnv};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn state_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        data_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    };
    let env = TestEnv::start(opts.clone()).await.unwrap();
    let client = env.client().await.unwrap();
    let kubeconfig = env.kubeconfig_yaml();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let c = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "keep"}, "data": {"a": "1"}}))
                .unwrap(),
        )
        .await
        .unwrap();
    install_widgets(&client).await;
    let widgets = dyn_api(
        &client,
        "example.com",
        "v1",
        "Widget",
        "widgets",
        Some("default"),
    );
    widgets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w"}, "spec": {"url": "https://x"}}))
            .unwrap(),
        )
        .await
        .unwrap();
    let rv_before = env.resource_version();
    env.stop().await;
    drop(client);
    tokio::time::sleep(Duration::from_millis(50)).await;

    let env = TestEnv::start(opts).await.unwrap();
    // the same CA and token: the old kubeconfig (with the new port) still works
    let again = env.kubeconfig_yaml();
    let strip_server = |k: &str| {
        k.lines()
            .filter(|l| !l.contains("server:"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip_server(&kubeconfig), strip_server(&again));
    let client = env.client().await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let k = cms.get("keep").await.unwrap();
    assert_eq!(k.metadata.uid, c.metadata.uid);
    assert_eq!(k.data.unwrap()["a"], "1");
    let widgets = dyn_api(
        &client,
        "example.com",
        "v1",
        "Widget",
        "widgets",
        Some("default"),
    );
    assert_eq!(
        widgets.get("w").await.unwrap().data["spec"]["interval"],
        "5m"
    );
    let n = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "new"}})).unwrap(),
        )
        .await
        .unwrap();
    assert!(n.metadata.resource_version.unwrap().parse::<u64>().unwrap() > rv_before);
}
