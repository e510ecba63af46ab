use ferroflux_ssa::{Action, IgnoreRule};
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn diff_reports_without_writing() {
    let (env, client, m) = env().await;
    let cm = configmap("default", "c", json!({"k": "v", "n": "1"}));
    let secret = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "s", "namespace": "default"}, "stringData": {"password": "a", "user": "u"}});
    // new objects
    let d = m.diff(cm.clone(), &opts()).await.unwrap();
    assert_eq!(d.entry.to_string(), "ConfigMap/default/c created");
    assert!(
        get(&client, "v1", "ConfigMap", "default", "c")
            .await
            .is_none()
    );
    m.apply_all(vec![cm.clone(), secret.clone()], &opts())
        .await
        .unwrap();
    // in sync
    let before = env.resource_version();
    let d = m.diff(cm.clone(), &opts()).await.unwrap();
    assert_eq!(d.entry.action, Action::Unchanged);
    // drifted
    edit(
        &client,
        "someone",
        "v1",
        "ConfigMap",
        "default",
        "c",
        json!({"data": {"k": "changed", "n": "2"}}),
    )
    .await;
    edit(
        &client,
        "someone",
        "v1",
        "Secret",
        "default",
        "s",
        json!({"stringData": {"password": "b"}}),
    )
    .await;
    let mid = env.resource_version();
    let mut o = opts();
    o.ignore = vec![IgnoreRule {
        paths: vec!["/data/n".into()],
        target: None,
    }];
    let d = m.diff(cm.clone(), &o).await.unwrap();
    assert_eq!(d.entry.to_string(), "ConfigMap/default/c configured");
    let (live, desired) = (d.live.unwrap(), d.desired.unwrap());
    assert_eq!(live["data"], json!({"k": "changed"}));
    assert_eq!(desired["data"], json!({"k": "v"}));
    assert!(live["metadata"].get("managedFields").is_none());
    let d = m.diff(secret, &opts()).await.unwrap();
    assert_eq!(d.entry.action, Action::Configured);
    assert_eq!(
        d.live.unwrap()["data"],
        json!({"password": "*** (before)", "user": "***"})
    );
    assert_eq!(
        d.desired.unwrap()["data"],
        json!({"password": "*** (after)", "user": "***"})
    );
    assert_eq!(env.resource_version(), mid, "diff wrote something");
    assert!(mid > before);
    // the single-object apply
    let e = m.apply(cm, &opts()).await.unwrap();
    assert_eq!(e.to_string(), "ConfigMap/default/c configured");
}
