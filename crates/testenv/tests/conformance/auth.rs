//! Authentication and authorization: tokens, RBAC, TokenRequest, impersonation.

use crate::common::*;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

async fn apply_yaml(client: &kube::Client, objs: serde_json::Value) {
    for o in objs.as_array().unwrap() {
        let (g, v) = match o["apiVersion"].as_str().unwrap().split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), o["apiVersion"].as_str().unwrap().to_string()),
        };
        let kind = o["kind"].as_str().unwrap();
        let plural = format!("{}s", kind.to_lowercase());
        let ns = o["metadata"]["namespace"].as_str();
        let api = dyn_api(client, &g, &v, kind, &plural, ns);
        api.create(
            &PostParams::default(),
            &serde_json::from_value(o.clone()).unwrap(),
        )
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn rbac_for_users_and_service_account_tokens() {
    let (env, admin) = env().await;
    let token = env.token_for("alice", &["devs"]);
    let alice = ferroflux_testenv::client_from_yaml(&env.kubeconfig_for(&token, "alice"))
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(alice.clone(), "default");
    let s = status_of(cms.list(&ListParams::default()).await.unwrap_err());
    assert_eq!((s.code, s.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        s.message,
        "configmaps is forbidden: User \"alice\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"default\""
    );
    apply_yaml(&admin, json!([
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "cm-reader", "namespace": "default"},
         "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "devs-read", "namespace": "default"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm-reader"},
         "subjects": [{"kind": "Group", "name": "devs"}]}
    ])).await;
    cms.list(&ListParams::default()).await.unwrap();
    let s = status_of(
        cms.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "x"}})).unwrap(),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(s.code, 403);
    let other: Api<ConfigMap> = Api::namespaced(alice, "kube-system");
    assert_eq!(
        status_of(other.list(&ListParams::default()).await.unwrap_err()).code,
        403
    );

    // a ServiceAccount token from TokenRequest, bound to a ClusterRole
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), "default");
    sas.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "robot"}})).unwrap(),
    )
    .await
    .unwrap();
    let tr: TokenRequest = serde_json::from_value(json!({"spec": {"audiences": ["https://kubernetes.default.svc"], "expirationSeconds": 600}})).unwrap();
    let tr = sas
        .create_token_request("robot", &PostParams::default(), &tr)
        .await
        .unwrap();
    let sa_token = tr.status.unwrap().token;
    let robot = ferroflux_testenv::client_from_yaml(&env.kubeconfig_for(&sa_token, "robot"))
        .await
        .unwrap();
    let all: Api<ConfigMap> = Api::all(robot.clone());
    let s = status_of(all.list(&ListParams::default()).await.unwrap_err());
    assert!(
        s.message.contains("system:serviceaccount:default:robot"),
        "{}",
        s.message
    );
    assert!(s.message.ends_with("at the cluster scope"), "{}", s.message);
    apply_yaml(&admin, json!([
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "robot-view"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
         "subjects": [{"kind": "ServiceAccount", "name": "robot", "namespace": "default"}]}
    ])).await;
    all.list(&ListParams::default()).await.unwrap();
    // deleting the service account invalidates its tokens
    sas.delete("robot", &Default::default()).await.unwrap();
    assert_eq!(
        status_of(all.list(&ListParams::default()).await.unwrap_err()).code,
        401
    );
}

#[tokio::test]
async fn impersonation_of_a_service_account() {
    let (env, admin) = env().await;
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), "default");
    sas.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "deployer"}})).unwrap(),
    )
    .await
    .unwrap();
    // as kustomize-controller does for spec.serviceAccountName
    let mut cfg = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::from_yaml(&env.kubeconfig_yaml()).unwrap(),
        &Default::default(),
    )
    .await
    .unwrap();
    cfg.auth_info.impersonate = Some("system:serviceaccount:default:deployer".into());
    let imp = kube::Client::try_from(cfg).unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(imp, "default");
    let s = status_of(cms.list(&ListParams::default()).await.unwrap_err());
    assert!(
        s.message
            .contains("User \"system:serviceaccount:default:deployer\" cannot list"),
        "{}",
        s.message
    );
    apply_yaml(&admin, json!([
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "deployer-edit", "namespace": "default"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
         "subjects": [{"kind": "ServiceAccount", "name": "deployer", "namespace": "default"}]}
    ])).await;
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "by-deployer"}})).unwrap(),
    )
    .await
    .unwrap();

    // a non-admin may not impersonate
    let token = env.token_for("mallory", &[]);
    let mut cfg = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::from_yaml(&env.kubeconfig_for(&token, "mallory")).unwrap(),
        &Default::default(),
    )
    .await
    .unwrap();
    cfg.auth_info.impersonate = Some("admin".into());
    let bad = kube::Client::try_from(cfg).unwrap();
    let s = status_of(
        Api::<ConfigMap>::namespaced(bad, "default")
            .list(&ListParams::default())
            .await
            .unwrap_err(),
    );
    assert_eq!(s.code, 403);
    assert!(s.message.contains("cannot impersonate"), "{}", s.message);
}

#[tokio::test]
async fn access_and_token_reviews() {
    use k8s_openapi::api::authentication::v1::{SelfSubjectReview, TokenReview};
    use k8s_openapi::api::authorization::v1::{SelfSubjectAccessReview, SubjectAccessReview};
    let (env, admin) = env().await;
    let token = env.token_for("bob", &["viewers"]);
    let bob = ferroflux_testenv::client_from_yaml(&env.kubeconfig_for(&token, "bob"))
        .await
        .unwrap();
    apply_yaml(&admin, json!([
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "viewers"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
         "subjects": [{"kind": "Group", "name": "viewers"}]}
    ])).await;
    // an aggregated ClusterRole picks up the rules of labelled ClusterRoles
    apply_yaml(&admin, json!([
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "widget-readers"},
         "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"example.com/aggregate-to-readers": "true"}}]}, "rules": []},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": "lease-reader", "labels": {"example.com/aggregate-to-readers": "true"}},
         "rules": [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "bob-readers"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "widget-readers"},
         "subjects": [{"kind": "User", "name": "bob"}]}
    ])).await;
    let lease: SelfSubjectAccessReview = serde_json::from_value(json!({"spec": {"resourceAttributes": {
        "verb": "create", "group": "coordination.k8s.io", "resource": "leases", "namespace": "default"}}})).unwrap();
    let r = Api::<SelfSubjectAccessReview>::all(bob.clone())
        .create(&PostParams::default(), &lease)
        .await
        .unwrap();
    assert!(r.status.unwrap().allowed, "aggregated rule applies");
    let ssar = |verb: &str| -> SelfSubjectAccessReview {
        serde_json::from_value(json!({"spec": {"resourceAttributes": {"verb": verb, "resource": "configmaps", "namespace": "default"}}})).unwrap()
    };
    let api: Api<SelfSubjectAccessReview> = Api::all(bob.clone());
    let r = api
        .create(&PostParams::default(), &ssar("list"))
        .await
        .unwrap();
    assert!(r.status.unwrap().allowed);
    let r = api
        .create(&PostParams::default(), &ssar("delete"))
        .await
        .unwrap();
    assert!(!r.status.unwrap().allowed);
    let who: Api<SelfSubjectReview> = Api::all(bob.clone());
    let me = who
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({})).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        me.status.unwrap().user_info.unwrap().username.as_deref(),
        Some("bob")
    );
    // SubjectAccessReview and TokenReview need permissions: bob (view) may not, admin may
    let sar: SubjectAccessReview =
        serde_json::from_value(json!({"spec": {"user": "bob", "groups": ["viewers"],
        "resourceAttributes": {"verb": "get", "resource": "secrets", "namespace": "default"}}}))
        .unwrap();
    assert_eq!(
        status_of(
            Api::<SubjectAccessReview>::all(bob)
                .create(&PostParams::default(), &sar)
                .await
                .unwrap_err()
        )
        .code,
        403
    );
    let r = Api::<SubjectAccessReview>::all(admin.clone())
        .create(&PostParams::default(), &sar)
        .await
        .unwrap();
    assert!(r.status.unwrap().allowed);
    let tr: TokenReview = serde_json::from_value(json!({"spec": {"token": token}})).unwrap();
    let r = Api::<TokenReview>::all(admin.clone())
        .create(&PostParams::default(), &tr)
        .await
        .unwrap();
    let st = r.status.unwrap();
    assert_eq!(st.authenticated, Some(true));
    assert_eq!(st.user.unwrap().username.as_deref(), Some("bob"));
    let bad: TokenReview = serde_json::from_value(json!({"spec": {"token": "nope"}})).unwrap();
    let r = Api::<TokenReview>::all(admin)
        .create(&PostParams::default(), &bad)
        .await
        .unwrap();
    assert_eq!(r.status.unwrap().authenticated, Some(false));
}
