//! Object semantics and metav1.Status errors.

use crate::common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"a": "1"}})).unwrap()
}

pub fn deployment(name: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [
                {"name": "app", "image": "nginx:1", "env": [{"name": "A", "value": "1"}], "ports": [{"containerPort": 80}]}
            ]}}}
    }))
    .unwrap()
}

#[tokio::test]
async fn create_sets_system_fields_and_one_global_resource_version() {
    let (_env, client) = env().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let a = cms.create(&PostParams::default(), &cm("a")).await.unwrap();
    let ns: Api<Namespace> = Api::all(client.clone());
    let n = ns
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "other"}})).unwrap(),
        )
        .await
        .unwrap();
    let b = cms.create(&PostParams::default(), &cm("b")).await.unwrap();
    let rv = |m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
        m.resource_version.clone().unwrap().parse::<u64>().unwrap()
    };
    assert!(rv(&a.metadata) < rv(&n.metadata) && rv(&n.metadata) < rv(&b.metadata));
    assert_eq!(a.metadata.uid.as_ref().unwrap().len(), 36);
    assert_ne!(a.metadata.uid, b.metadata.uid);
    assert!(a.metadata.creation_timestamp.is_some());
    assert_eq!(a.metadata.namespace.as_deref(), Some("default"));
    let mf = a.metadata.managed_fields.as_ref().unwrap();
    assert_eq!(mf[0].operation.as_deref(), Some("Update"));
    assert!(to_value(&mf[0].fields_v1)["f:data"]["f:a"].is_object());
    // namespaces get the kubernetes finalizer and phase
    assert_eq!(n.status.unwrap().phase.as_deref(), Some("Active"));
    assert_eq!(
        n.metadata.labels.unwrap()["kubernetes.io/metadata.name"],
        "other"
    );
}

#[tokio::test]
async fn generate_name() {
    let (_env, client) = env().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let o: ConfigMap =
        serde_json::from_value(json!({"metadata": {"generateName": "gen-"}})).unwrap();
    let a = cms.create(&PostParams::default(), &o).await.unwrap();
    let b = cms.create(&PostParams::default(), &o).await.unwrap();
    let (an, bn) = (a.metadata.name.unwrap(), b.metadata.name.unwrap());
    assert!(an.starts_with("gen-") && an.len() == 9, "{an}");
    assert_ne!(an, bn);
}

#[tokio::test]
async fn errors_have_real_reasons_and_codes() {
    let (env, client) = env().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(&PostParams::default(), &cm("x")).await.unwrap();

    let s = status_of(
        cms.create(&PostParams::default(), &cm("x"))
            .await
            .unwrap_err(),
    );
    assert_eq!((s.code, s.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(s.message, "configmaps \"x\" already exists");

    let s = status_of(cms.get("nope").await.unwrap_err());
    assert_eq!((s.code, s.reason.as_str()), (404, "NotFound"));
    assert_eq!(s.message, "configmaps \"nope\" not found");
    assert_eq!(s.details.unwrap().kind, "configmaps");

    // stale resourceVersion
    let mut cur = cms.get("x").await.unwrap();
    let stale = cur.clone();
    cur.data.as_mut().unwrap().insert("b".into(), "2".into());
    cms.replace("x", &PostParams::default(), &cur)
        .await
        .unwrap();
    let s = status_of(
        cms.replace("x", &PostParams::default(), &stale)
            .await
            .unwrap_err(),
    );
    assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
    assert!(
        s.message.contains("the object has been modified"),
        "{}",
        s.message
    );

    // invalid name: 422 with a field cause
    let s = status_of(
        cms.create(&PostParams::default(), &cm("Bad_Name"))
            .await
            .unwrap_err(),
    );
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
    let causes = s.details.unwrap().causes;
    assert_eq!(causes[0].field, "metadata.name");
    assert!(
        s.message.starts_with(
            "ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\""
        ),
        "{}",
        s.message
    );

    // namespace mismatch: 400
    let other: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "y", "namespace": "kube-system"}}))
            .unwrap();
    let s = status_of(
        cms.create(&PostParams::default(), &other)
            .await
            .unwrap_err(),
    );
    assert_eq!((s.code, s.reason.as_str()), (400, "BadRequest"));

    // missing namespace: 404 on namespaces
    let missing: Api<ConfigMap> = Api::namespaced(client.clone(), "missing");
    let s = status_of(
        missing
            .create(&PostParams::default(), &cm("z"))
            .await
            .unwrap_err(),
    );
    assert_eq!(s.code, 404);
    assert_eq!(s.message, "namespaces \"missing\" not found");

    // PUT on a collection: 405
    let req = http::Request::put("/api/v1/namespaces/default/configmaps")
        .body(b"{}".to_vec())
        .unwrap();
    let s = status_of(client.request_text(req).await.unwrap_err());
    assert_eq!((s.code, s.reason.as_str()), (405, "MethodNotAllowed"));

    // wrong token: 401
    let bad = ferroflux_testenv::client_from_yaml(&env.kubeconfig_for("not-a-token", "x"))
        .await
        .unwrap();
    let s = status_of(
        Api::<ConfigMap>::namespaced(bad, "default")
            .list(&Default::default())
            .await
            .unwrap_err(),
    );
    assert_eq!((s.code, s.reason.as_str()), (401, "Unauthorized"));
}

#[tokio::test]
async fn generation_moves_only_with_spec_and_noop_keeps_version() {
    let (_env, client) = env().await;
    let deps: Api<Deployment> = Api::namespaced(client, "default");
    let d = deps
        .create(&PostParams::default(), &deployment("web"))
        .await
        .unwrap();
    assert_eq!(d.metadata.generation, Some(1));
    // metadata-only change
    let p = deps
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .unwrap();
    assert_eq!(p.metadata.generation, Some(1));
    // status change
    let s = deps
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 1}})),
        )
        .await
        .unwrap();
    assert_eq!(s.metadata.generation, Some(1));
    // spec change
    let g = deps
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 2}})),
        )
        .await
        .unwrap();
    assert_eq!(g.metadata.generation, Some(2));
    // no-op keeps the resourceVersion
    let again = deps
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 2}})),
        )
        .await
        .unwrap();
    assert_eq!(again.metadata.resource_version, g.metadata.resource_version);
    // delete returns the object; then it is gone
    deps.delete("web", &DeleteParams::default()).await.unwrap();
    assert_eq!(status_of(deps.get("web").await.unwrap_err()).code, 404);
}

#[tokio::test]
async fn secret_string_data_is_encoded() {
    let (_env, client) = env().await;
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client, "default");
    let s: k8s_openapi::api::core::v1::Secret = serde_json::from_value(
        json!({"metadata": {"name": "s"}, "stringData": {"password": "hunter2"}}),
    )
    .unwrap();
    let created = secrets.create(&PostParams::default(), &s).await.unwrap();
    assert!(created.string_data.is_none());
    assert_eq!(created.type_.as_deref(), Some("Opaque"));
    assert_eq!(created.data.unwrap()["password"].0, b"hunter2");
}

#[tokio::test]
async fn managed_fields_can_be_replaced_or_reset() {
    let (_env, client) = env().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    cms.patch(
        "m",
        &PatchParams::apply("kubectl-client-side-apply").force(),
        &Patch::Apply(json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "m"}, "data": {"a": "1"}})),
    )
    .await
    .unwrap();
    cms.patch(
        "m",
        &PatchParams::apply("flux"),
        &Patch::Apply(json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "m"}, "data": {"b": "2"}})),
    )
    .await
    .unwrap();
    // drop one manager's entry the way Flux cleans up kubectl managers
    let cur = cms.get("m").await.unwrap();
    let keep: Vec<_> = cur
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .filter(|e| e.manager.as_deref() == Some("flux"))
        .collect();
    let p = cms
        .patch(
            "m",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"managedFields": keep}})),
        )
        .await
        .unwrap();
    let managers: Vec<String> = p
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .filter_map(|e| e.manager)
        .collect();
    assert_eq!(managers, ["flux"]);
    // an empty list resets: the writer owns everything
    let r = cms
        .patch(
            "m",
            &PatchParams {
                field_manager: Some("resetter".into()),
                ..Default::default()
            },
            &Patch::Merge(json!({"metadata": {"managedFields": []}})),
        )
        .await
        .unwrap();
    let mf = r.metadata.managed_fields.unwrap();
    assert_eq!(mf.len(), 1);
    assert_eq!(mf[0].manager.as_deref(), Some("resetter"));
    let f = to_value(&mf[0].fields_v1);
    assert!(
        f["f:data"]["f:a"].is_object() && f["f:data"]["f:b"].is_object(),
        "{f}"
    );
}

#[tokio::test]
async fn apply_yaml_installs_crds_and_objects_in_one_call() {
    let (env, client) = env().await;
    let crd = serde_json::to_string(&crate::crd::widget_crd()).unwrap();
    let manifest = format!(
        "{crd}\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: demo\n---\napiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n  namespace: demo\nspec:\n  url: https://x\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: plain\ndata:\n  a: \"1\"\n"
    );
    let applied = env.apply_yaml(&manifest, "fixtures").unwrap();
    assert_eq!(applied.len(), 4);
    assert_eq!(
        applied[2]["spec"]["interval"], "5m",
        "schema defaults applied"
    );
    let widgets = dyn_api(
        &client,
        "example.com",
        "v1",
        "Widget",
        "widgets",
        Some("demo"),
    );
    let w = widgets.get("w").await.unwrap();
    assert_eq!(
        w.metadata.managed_fields.unwrap()[0].manager.as_deref(),
        Some("fixtures")
    );
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    assert_eq!(cms.get("plain").await.unwrap().data.unwrap()["a"], "1");
    // unknown kinds are an error
    assert!(
        env.apply_yaml(
            "apiVersion: nope/v1\nkind: Nope\nmetadata:\n  name: x\n",
            "fixtures"
        )
        .is_err()
    );
}

#[tokio::test]
async fn built_in_kinds_are_validated() {
    let (_env, client) = env().await;
    let deps = dyn_api(
        &client,
        "apps",
        "v1",
        "Deployment",
        "deployments",
        Some("default"),
    );
    let mk = |spec: serde_json::Value| -> kube::core::DynamicObject {
        serde_json::from_value(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bad"}, "spec": spec})).unwrap()
    };
    let template = json!({"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}});
    // wrong type: 400 like the real decoder
    let s = status_of(deps.create(&PostParams::default(), &mk(json!({"replicas": "three", "selector": {"matchLabels": {"app": "a"}}, "template": template}))).await.unwrap_err());
    assert_eq!((s.code, s.reason.as_str()), (400, "BadRequest"));
    assert!(
        s.message
            .starts_with("Deployment in version \"v1\" cannot be handled as a Deployment:"),
        "{}",
        s.message
    );
    // selector must match the template
    let s = status_of(
        deps.create(
            &PostParams::default(),
            &mk(json!({"selector": {"matchLabels": {"app": "b"}}, "template": template})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(s.code, 422);
    assert_eq!(
        s.details.unwrap().causes[0].field,
        "spec.template.metadata.labels"
    );
    // containers are required
    let s = status_of(
        deps.create(
            &PostParams::default(),
            &mk(json!({"selector": {"matchLabels": {"app": "a"}},
        "template": {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": []}}})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(s.code, 422);
    assert!(
        s.message
            .contains("spec.template.spec.containers: Required value"),
        "{}",
        s.message
    );
}
