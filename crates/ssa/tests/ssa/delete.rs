use ferroflux_ssa::{Action, DeleteOptions, ObjMetadata, SsaError};
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn prune_honours_owner_labels_and_exclusions() {
    let (env, client, m) = env().await;
    let mut owned = vec![
        configmap("default", "stale", json!({})),
        configmap("default", "keep", json!({})),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "stale-ns"}}),
        configmap("stale-ns", "inside", json!({})),
    ];
    owned[1]["metadata"]["annotations"] = json!({"kustomize.toolkit.fluxcd.io/prune": "Disabled"});
    m.set_owner_labels(&mut owned, "apps", "flux-system");
    // someone else's object with the same name as an inventory entry
    let mut foreign = vec![configmap("default", "foreign", json!({}))];
    m.set_owner_labels(&mut foreign, "other", "flux-system");
    let mut all = owned.clone();
    all.extend(foreign);
    m.apply_all_staged(all, &opts()).await.unwrap();

    let inventory: Vec<ObjMetadata> = [
        "default_stale__ConfigMap",
        "default_keep__ConfigMap",
        "default_foreign__ConfigMap",
        "default_gone__ConfigMap",
        "_stale-ns__Namespace",
        "stale-ns_inside__ConfigMap",
    ]
    .iter()
    .map(|id| ObjMetadata::parse_inventory(id, "v1").unwrap())
    .collect();
    let opts = DeleteOptions::kustomization(&m, "apps", "flux-system");
    let cs = m.delete_all(inventory, &opts).await.unwrap();
    let mut lines = summary(&cs);
    // reverse apply order: namespaced objects before their Namespace
    assert_eq!(lines.pop().unwrap(), "Namespace/stale-ns deleted");
    lines.sort();
    assert_eq!(
        lines,
        [
            "ConfigMap/default/foreign skipped",
            "ConfigMap/default/gone deleted",
            "ConfigMap/default/keep skipped",
            "ConfigMap/default/stale deleted",
            "ConfigMap/stale-ns/inside deleted",
        ]
    );
    assert!(
        get(&client, "v1", "ConfigMap", "default", "stale")
            .await
            .is_none()
    );
    assert!(
        get(&client, "v1", "ConfigMap", "default", "keep")
            .await
            .is_some()
    );
    assert!(
        get(&client, "v1", "ConfigMap", "default", "foreign")
            .await
            .is_some()
    );
    // the namespace is terminating or gone
    let ns = get(&client, "v1", "Namespace", "", "stale-ns").await;
    assert!(ns.is_none_or(|n| !n["metadata"]["deletionTimestamp"].is_null()));

    // failures are collected, settled objects still reported
    let token = env.token_for("reader", &[]);
    m.apply_all(
        vec![
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "reader", "namespace": "default"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "User", "name": "reader"}]}),
        ],
        &crate::common::opts(),
    )
    .await
    .unwrap();
    let reader = kustomize_manager(
        ferroflux_testenv::client_from_yaml(&env.kubeconfig_for(&token, "reader"))
            .await
            .unwrap(),
    );
    let inventory = vec![
        ObjMetadata::parse_inventory("default_foreign__ConfigMap", "v1").unwrap(),
        ObjMetadata::parse_inventory("default_keep__ConfigMap", "v1").unwrap(),
    ];
    let opts_any = DeleteOptions {
        exclusions: opts.exclusions.clone(),
        ..Default::default()
    };
    let (cs, res) = reader.delete_all_partial(inventory, &opts_any).await;
    let err = res.unwrap_err();
    assert!(
        matches!(err, SsaError::Delete(ref v) if v.len() == 1),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.starts_with("delete failed, errors: ConfigMap/default/foreign delete failed: "),
        "{msg}"
    );
    assert!(msg.ends_with(';'), "{msg}");
    assert_eq!(summary(&cs), ["ConfigMap/default/keep skipped"]);
    assert!(cs.entries.iter().all(|e| e.action != Action::Deleted));
}
