use ferroflux_ssa::{Action, IgnoreRule, Selector, SsaError};
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn staged_apply_of_crd_namespace_and_their_objects_in_one_call() {
    let (env, client, m) = env().await;
    let objects = vec![
        widget("apps", "w1", 1),
        configmap("apps", "settings", json!({"a": "1"})),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}}),
        widget_crd(),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "widget-reader"},
            "rules": [{"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["get"]}]}),
        json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": "fast"}, "provisioner": "example.com/fast"}),
    ];
    let cs = m.apply_all_staged(objects.clone(), &opts()).await.unwrap();
    assert_eq!(
        summary(&cs),
        [
            "CustomResourceDefinition/widgets.example.com created",
            "Namespace/apps created",
            "ClusterRole/widget-reader created",
            "StorageClass/fast created",
            "ConfigMap/apps/settings created",
            "Widget/apps/w1 created",
        ]
    );
    let inventory: Vec<String> = cs.entries.iter().map(|e| e.object.inventory_id()).collect();
    assert_eq!(
        inventory[0],
        "_widgets.example.com_apiextensions.k8s.io_CustomResourceDefinition"
    );
    assert_eq!(inventory[1], "_apps__Namespace");
    assert_eq!(inventory[5], "apps_w1_example.com_Widget");
    assert_eq!(cs.entries[5].object.version, "v1");
    let w = get(&client, "example.com/v1", "Widget", "apps", "w1")
        .await
        .unwrap();
    assert_eq!(w["spec"]["size"], 1);
    let fm = &w["metadata"]["managedFields"][0];
    assert_eq!(fm["manager"], "kustomize-controller");
    assert_eq!(fm["operation"], "Apply");

    // the same set again: nothing changes and nothing is written
    let before = env.resource_version();
    let cs = m.apply_all_staged(objects, &opts()).await.unwrap();
    assert!(
        cs.entries.iter().all(|e| e.action == Action::Unchanged),
        "{cs}"
    );
    assert_eq!(cs.entries.len(), 6);
    assert_eq!(
        env.resource_version(),
        before,
        "an unchanged apply wrote something"
    );
    let again = get(&client, "example.com/v1", "Widget", "apps", "w1")
        .await
        .unwrap();
    assert_eq!(rv(&again), rv(&w));
}

#[tokio::test]
async fn drift_made_by_another_manager_is_reverted() {
    let (_env, client, m) = env().await;
    let cm = configmap("default", "drift", json!({"k": "ours", "other": "x"}));
    m.apply_all_staged(vec![cm.clone()], &opts()).await.unwrap();
    edit(
        &client,
        "someone",
        "v1",
        "ConfigMap",
        "default",
        "drift",
        json!({"data": {"k": "theirs"}}),
    )
    .await;
    let cs = m.apply_all_staged(vec![cm.clone()], &opts()).await.unwrap();
    assert_eq!(summary(&cs), ["ConfigMap/default/drift configured"]);
    let live = get(&client, "v1", "ConfigMap", "default", "drift")
        .await
        .unwrap();
    assert_eq!(live["data"]["k"], "ours");
    // converged
    let cs = m.apply_all_staged(vec![cm], &opts()).await.unwrap();
    assert_eq!(summary(&cs), ["ConfigMap/default/drift unchanged"]);
}

#[tokio::test]
async fn override_strips_kubectl_fields_and_merge_keeps_them() {
    let (_env, client, m) = env().await;
    let plain = configmap("default", "plain", json!({"k": "v"}));
    let mut merged = configmap("default", "merged", json!({"k": "v"}));
    merged["metadata"]["annotations"] = json!({"kustomize.toolkit.fluxcd.io/ssa": "Merge"});
    m.apply_all(vec![plain.clone(), merged.clone()], &opts())
        .await
        .unwrap();
    for name in ["plain", "merged"] {
        edit(&client, "kubectl-edit", "v1", "ConfigMap", "default", name,
            json!({"metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"}},
                   "data": {"extra": "by-hand"}})).await;
    }
    let cs = m
        .apply_all(vec![plain.clone(), merged.clone()], &opts())
        .await
        .unwrap();
    assert_eq!(
        summary(&cs),
        [
            "ConfigMap/default/merged unchanged",
            "ConfigMap/default/plain configured"
        ]
    );
    // Override (default): kubectl's fields became ours, so what the manifest lacks is removed
    let live = get(&client, "v1", "ConfigMap", "default", "plain")
        .await
        .unwrap();
    assert_eq!(live["data"], json!({"k": "v"}), "{live}");
    assert!(
        live["metadata"]["annotations"]
            .get("kubectl.kubernetes.io/last-applied-configuration")
            .is_none()
    );
    let managers: Vec<&str> = live["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["manager"].as_str().unwrap())
        .collect();
    assert!(
        !managers.iter().any(|m| m.starts_with("kubectl")),
        "{managers:?}"
    );
    // Merge: other managers' fields stay
    let live = get(&client, "v1", "ConfigMap", "default", "merged")
        .await
        .unwrap();
    assert_eq!(live["data"], json!({"k": "v", "extra": "by-hand"}));
    // and Override converges
    let cs = m.apply_all(vec![plain, merged], &opts()).await.unwrap();
    assert!(
        cs.entries.iter().all(|e| e.action == Action::Unchanged),
        "{cs}"
    );
}

#[tokio::test]
async fn if_not_present_creates_only() {
    let (_env, client, m) = env().await;
    let mut cm = configmap("default", "once", json!({"k": "initial"}));
    cm["metadata"]["annotations"] = json!({"kustomize.toolkit.fluxcd.io/ssa": "IfNotPresent"});
    let cs = m.apply_all(vec![cm.clone()], &opts()).await.unwrap();
    assert_eq!(summary(&cs), ["ConfigMap/default/once created"]);
    edit(
        &client,
        "someone",
        "v1",
        "ConfigMap",
        "default",
        "once",
        json!({"data": {"k": "changed"}}),
    )
    .await;
    let cs = m.apply_all(vec![cm], &opts()).await.unwrap();
    assert_eq!(summary(&cs), ["ConfigMap/default/once skipped"]);
    let live = get(&client, "v1", "ConfigMap", "default", "once")
        .await
        .unwrap();
    assert_eq!(live["data"]["k"], "changed");
}

#[tokio::test]
async fn ignored_and_reconcile_disabled_objects_are_skipped() {
    let (_env, client, m) = env().await;
    // ssa: Ignore in the manifest: never created
    let mut ignored = configmap("default", "ignored", json!({"k": "v"}));
    ignored["metadata"]["annotations"] = json!({"kustomize.toolkit.fluxcd.io/ssa": "ignore"});
    // reconcile: disabled on the live object (set by hand): left alone
    let disabled = configmap("default", "disabled", json!({"k": "v"}));
    m.apply_all(vec![disabled.clone()], &opts()).await.unwrap();
    edit(&client, "someone", "v1", "ConfigMap", "default", "disabled",
        json!({"metadata": {"labels": {"kustomize.toolkit.fluxcd.io/reconcile": "disabled"}}, "data": {"k": "hand"}})).await;
    let cs = m.apply_all(vec![ignored, disabled], &opts()).await.unwrap();
    assert_eq!(
        summary(&cs),
        [
            "ConfigMap/default/disabled skipped",
            "ConfigMap/default/ignored skipped"
        ]
    );
    assert!(
        get(&client, "v1", "ConfigMap", "default", "ignored")
            .await
            .is_none()
    );
    let live = get(&client, "v1", "ConfigMap", "default", "disabled")
        .await
        .unwrap();
    assert_eq!(live["data"]["k"], "hand");
    // an unknown kind that is excluded is skipped, not an error
    let mut unknown = widget("default", "nope", 1);
    unknown["metadata"]["labels"] = json!({"kustomize.toolkit.fluxcd.io/reconcile": "disabled"});
    let cs = m.apply_all(vec![unknown], &opts()).await.unwrap();
    assert_eq!(summary(&cs), ["Widget/default/nope skipped"]);
}

#[tokio::test]
async fn ignore_rules_keep_fields_changed_by_hand() {
    let (_env, client, m) = env().await;
    let mut o = opts();
    o.ignore = vec![IgnoreRule {
        paths: vec!["/data/replicas".into()],
        target: Some(Selector {
            kind: "ConfigMap".into(),
            name: "scaled".into(),
            ..Default::default()
        }),
    }];
    let scaled = configmap("default", "scaled", json!({"replicas": "1", "k": "a"}));
    let untargeted = configmap("default", "other", json!({"replicas": "1"}));
    m.apply_all(vec![scaled.clone(), untargeted.clone()], &o)
        .await
        .unwrap();
    for name in ["scaled", "other"] {
        edit(
            &client,
            "hpa",
            "v1",
            "ConfigMap",
            "default",
            name,
            json!({"data": {"replicas": "5"}}),
        )
        .await;
    }
    let cs = m
        .apply_all(vec![scaled.clone(), untargeted.clone()], &o)
        .await
        .unwrap();
    assert_eq!(
        summary(&cs),
        [
            "ConfigMap/default/other configured",
            "ConfigMap/default/scaled unchanged"
        ]
    );
    let live = get(&client, "v1", "ConfigMap", "default", "scaled")
        .await
        .unwrap();
    assert_eq!(live["data"]["replicas"], "5");
    let live = get(&client, "v1", "ConfigMap", "default", "other")
        .await
        .unwrap();
    assert_eq!(
        live["data"]["replicas"], "1",
        "the rule targets 'scaled' only"
    );
    // another change to the object applies it, keeping the ignored field's live value
    let mut changed = scaled.clone();
    changed["data"]["k"] = json!("b");
    let cs = m.apply_all(vec![changed], &o).await.unwrap();
    assert_eq!(summary(&cs), ["ConfigMap/default/scaled configured"]);
    let live = get(&client, "v1", "ConfigMap", "default", "scaled")
        .await
        .unwrap();
    assert_eq!(live["data"], json!({"replicas": "5", "k": "b"}));
}

#[tokio::test]
async fn immutable_changes_fail_without_force_and_recreate_with_it() {
    let (_env, client, m) = env().await;
    m.apply_all_staged(vec![widget_crd(), widget("default", "w", 1)], &opts())
        .await
        .unwrap();
    let first = get(&client, "example.com/v1", "Widget", "default", "w")
        .await
        .unwrap();

    let err = m
        .apply_all_staged(vec![widget_crd(), widget("default", "w", 2)], &opts())
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, SsaError::DryRun { .. }), "{err:?}");
    assert!(
        msg.starts_with("Widget/default/w dry-run failed (Invalid): "),
        "{msg}"
    );
    assert!(msg.contains("field is immutable"), "{msg}");
    let live = get(&client, "example.com/v1", "Widget", "default", "w")
        .await
        .unwrap();
    assert_eq!(live["spec"]["size"], 1);

    // spec.force
    let mut o = opts();
    o.force = true;
    let cs = m
        .apply_all_staged(vec![widget_crd(), widget("default", "w", 2)], &o)
        .await
        .unwrap();
    assert_eq!(summary(&cs)[1], "Widget/default/w created");
    let second = get(&client, "example.com/v1", "Widget", "default", "w")
        .await
        .unwrap();
    assert_eq!(second["spec"]["size"], 2);
    assert_ne!(
        second["metadata"]["uid"], first["metadata"]["uid"],
        "recreated"
    );

    // the force annotation on the object
    let mut annotated = widget("default", "w", 3);
    annotated["metadata"]["annotations"] = json!({"kustomize.toolkit.fluxcd.io/force": "enabled"});
    let cs = m.apply_all(vec![annotated], &opts()).await.unwrap();
    assert_eq!(summary(&cs), ["Widget/default/w created"]);
    let third = get(&client, "example.com/v1", "Widget", "default", "w")
        .await
        .unwrap();
    assert_eq!(third["spec"]["size"], 3);
    assert_ne!(third["metadata"]["uid"], second["metadata"]["uid"]);
}

#[tokio::test]
async fn unknown_kinds_and_missing_namespaces_are_reported_like_upstream() {
    let (_env, _client, m) = env().await;
    let err = m
        .apply_all(vec![widget("default", "w", 1)], &opts())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Widget/default/w dry-run failed: no matches for kind \"Widget\" in version \"example.com/v1\""
    );
    let mut no_ns = configmap("", "c", json!({}));
    no_ns["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("namespace");
    let err = m.apply_all(vec![no_ns], &opts()).await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("ConfigMap/c namespace not specified"),
        "{err}"
    );
    let err = m
        .apply_all(vec![configmap("missing", "c", json!({}))], &opts())
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("ConfigMap/missing/c not found: "),
        "{err}"
    );
    // a CRD applied in stage 1 makes its kind resolvable in the later stage of the same call,
    // although the failed lookup above happened first
    let cs = m
        .apply_all_staged(vec![widget("default", "w", 1), widget_crd()], &opts())
        .await
        .unwrap();
    assert_eq!(summary(&cs)[1], "Widget/default/w created");
}

#[tokio::test]
async fn forbidden_objects_give_a_clear_error() {
    let (env, admin, _) = env().await;
    // the impersonated service account may edit ConfigMaps in "default" only (as
    // kustomize-controller impersonates spec.serviceAccountName)
    let kc = kustomize_manager(admin.clone());
    kc.apply_all(vec![
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "deployer", "namespace": "default"}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "cm-edit", "namespace": "default"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["*"]}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "deployer", "namespace": "default"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm-edit"},
            "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": "default"}]}),
    ], &opts()).await.unwrap();
    let mut cfg = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::from_yaml(&env.kubeconfig_yaml()).unwrap(),
        &Default::default(),
    )
    .await
    .unwrap();
    cfg.auth_info.impersonate = Some("system:serviceaccount:default:deployer".into());
    let m = kustomize_manager(kube::Client::try_from(cfg).unwrap());
    let cs = m
        .apply_all(vec![configmap("default", "allowed", json!({}))], &opts())
        .await
        .unwrap();
    assert_eq!(summary(&cs), ["ConfigMap/default/allowed created"]);
    let err = m
        .apply_all(vec![configmap("kube-public", "denied", json!({}))], &opts())
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("ConfigMap/kube-public/denied dry-run failed (Forbidden): "),
        "{msg}"
    );
    assert!(
        msg.contains("system:serviceaccount:default:deployer"),
        "{msg}"
    );

    // a plain token without any binding
    let token = env.token_for("nobody", &[]);
    let nobody = ferroflux_testenv::client_from_yaml(&env.kubeconfig_for(&token, "nobody"))
        .await
        .unwrap();
    let m = kustomize_manager(nobody);
    let err = m
        .apply_all(vec![configmap("default", "x", json!({}))], &opts())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("dry-run failed (Forbidden)"),
        "{err}"
    );
}

#[tokio::test]
async fn custom_stage_kinds_apply_before_the_rest() {
    let (_env, _client, m) = env().await;
    let mut o = opts();
    o.custom_stage_kinds = vec![("".into(), "Secret".into())];
    let objects = vec![
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "default"},
            "spec": {"ports": [{"port": 80}]}}),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "z", "namespace": "default"},
            "stringData": {"k": "v"}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa", "namespace": "default"}}),
    ];
    let cs = m.apply_all_staged(objects.clone(), &o).await.unwrap();
    assert_eq!(
        summary(&cs),
        [
            "Secret/default/z created",
            "ServiceAccount/default/sa created",
            "Service/default/s created"
        ]
    );
    // stringData and the defaulted port protocol do not show up as drift
    let cs = m.apply_all_staged(objects, &o).await.unwrap();
    assert!(
        cs.entries.iter().all(|e| e.action == Action::Unchanged),
        "{cs}"
    );
}

#[tokio::test]
async fn managed_fields_migrate_to_the_applied_api_version() {
    let (_env, client, m) = env().await;
    let mut crd = widget_crd();
    let v1 = crd["spec"]["versions"][0].clone();
    let mut v2 = v1.clone();
    v2["name"] = json!("v2");
    v2["storage"] = json!(false);
    crd["spec"]["versions"] = json!([v1, v2]);
    m.apply_all_staged(vec![crd, widget("default", "w", 1)], &opts())
        .await
        .unwrap();
    edit(
        &client,
        "painter",
        "example.com/v1",
        "Widget",
        "default",
        "w",
        json!({"metadata": {"labels": {"painted": "yes"}}}),
    )
    .await;
    let versions = |w: &serde_json::Value| -> Vec<String> {
        w["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                format!(
                    "{}={}",
                    e["manager"].as_str().unwrap(),
                    e["apiVersion"].as_str().unwrap()
                )
            })
            .collect()
    };
    let live = get(&client, "example.com/v1", "Widget", "default", "w")
        .await
        .unwrap();
    assert!(
        versions(&live).contains(&"painter=example.com/v1".to_string()),
        "{:?}",
        versions(&live)
    );

    let mut at_v2 = widget("default", "w", 1);
    at_v2["apiVersion"] = json!("example.com/v2");
    let mut o = opts();
    o.migrate_api_version = true;
    let cs = m.apply_all(vec![at_v2.clone()], &o).await.unwrap();
    assert_eq!(summary(&cs), ["Widget/default/w configured"]);
    assert_eq!(cs.entries[0].object.version, "v2");
    let live = get(&client, "example.com/v2", "Widget", "default", "w")
        .await
        .unwrap();
    let v = versions(&live);
    assert!(v.iter().all(|e| e.ends_with("=example.com/v2")), "{v:?}");
    assert!(v.contains(&"painter=example.com/v2".to_string()), "{v:?}");
    let cs = m.apply_all(vec![at_v2], &o).await.unwrap();
    assert_eq!(summary(&cs), ["Widget/default/w unchanged"]);
}

/// Controllers run reconciles on spawned tasks: every operation's future must be Send.
#[tokio::test]
async fn operations_run_on_spawned_tasks() {
    let (_env, _client, m) = env().await;
    let objects = vec![configmap("default", "spawned", json!({"k": "v"}))];
    let ids = {
        let m = m.clone();
        let objects = objects.clone();
        tokio::spawn(async move { m.apply_all_staged(objects, &opts()).await })
            .await
            .unwrap()
            .unwrap()
            .to_obj_metadata_set()
    };
    let m2 = m.clone();
    let obj = objects[0].clone();
    let d = tokio::spawn(async move { m2.diff(obj, &opts()).await })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.entry.action, Action::Unchanged);
    let (m2, ids2) = (m.clone(), ids.clone());
    tokio::spawn(async move {
        m2.wait_for_set(&ids2, &ferroflux_ssa::WaitOptions::default())
            .await
    })
    .await
    .unwrap()
    .unwrap();
    let (m2, ids2) = (m.clone(), ids.clone());
    let cs = tokio::spawn(async move { m2.delete_all(ids2, &Default::default()).await })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(summary(&cs), ["ConfigMap/default/spawned deleted"]);
    let (m2, ids2) = (m.clone(), ids.clone());
    tokio::spawn(async move {
        m2.wait_for_termination(&ids2, &ferroflux_ssa::WaitOptions::default())
            .await
    })
    .await
    .unwrap()
    .unwrap();
}

/// Manifests as people write them: ports without protocol (one port number twice with
/// different protocols), integer CPU quantities, Service ports without protocol.
#[tokio::test]
async fn native_kind_defaults_do_not_show_as_drift() {
    let (env, client, m) = env().await;
    let objects = vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "native"}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "podinfo", "namespace": "native"},
            "spec": {"minReadySeconds": 3, "revisionHistoryLimit": 5, "progressDeadlineSeconds": 60,
                "strategy": {"rollingUpdate": {"maxUnavailable": 0}, "type": "RollingUpdate"},
                "selector": {"matchLabels": {"app": "podinfo"}},
                "template": {"metadata": {"labels": {"app": "podinfo"}},
                    "spec": {"containers": [{"name": "podinfod", "image": "ghcr.io/stefanprodan/podinfo:6.0.0",
                        "ports": [{"name": "http", "containerPort": 9898}, {"containerPort": 9125, "protocol": "UDP"},
                                  {"containerPort": 9125, "protocol": "TCP"}],
                        "resources": {"limits": {"cpu": 2, "memory": "512Mi"}, "requests": {"cpu": 1, "memory": "64Mi"}}}]}}}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "podinfo", "namespace": "native"},
            "spec": {"type": "ClusterIP", "selector": {"app": "podinfo"},
                "ports": [{"name": "http", "port": 9898, "targetPort": "http"}, {"name": "grpc", "port": 9999, "targetPort": 9999}]}}),
    ];
    let cs = m.apply_all_staged(objects.clone(), &opts()).await.unwrap();
    assert!(
        cs.entries.iter().all(|e| e.action == Action::Created),
        "{cs}"
    );
    let before = env.resource_version();
    let cs = m.apply_all_staged(objects, &opts()).await.unwrap();
    assert!(
        cs.entries.iter().all(|e| e.action == Action::Unchanged),
        "{cs}"
    );
    assert_eq!(env.resource_version(), before);
    let d = get(&client, "apps/v1", "Deployment", "native", "podinfo")
        .await
        .unwrap();
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["resources"]["limits"]["cpu"], "2");
    assert_eq!(c["ports"][0]["protocol"], "TCP");
}
