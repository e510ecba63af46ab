//! The same API through kubectl: get, apply --server-side, patch, delete, wait, -A, -l, -o yaml.

use crate::common::*;
use crate::crd::widget_crd;
use ferroflux_testenv::Options;
use std::time::Duration;

const MANIFESTS: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: apps
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: apps
  labels: {team: blue}
data:
  mode: fast
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: apps
  labels: {team: blue}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        ports: [{containerPort: 80}]
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: other
  namespace: default
  labels: {team: red}
"#;

#[tokio::test]
async fn kubectl_apply_get_patch_wait_delete() {
    let (env, _client) = env_with(Options {
        simulate_workloads: Some(Duration::from_millis(200)),
        ..Default::default()
    })
    .await;
    let k = Kubectl::new(&env);

    let out = k
        .ok(&["apply", "--server-side", "-f", "-"], Some(MANIFESTS))
        .await;
    assert!(
        out.contains("deployment.apps/web serverside-applied"),
        "{out}"
    );
    assert!(
        out.contains("configmap/settings serverside-applied"),
        "{out}"
    );

    // -A and -l
    let out = k
        .ok(
            &["get", "configmaps", "-A", "-l", "team", "-o", "name"],
            None,
        )
        .await;
    let mut names: Vec<&str> = out.trim().lines().collect();
    names.sort();
    assert_eq!(names, ["configmap/other", "configmap/settings"]);
    let out = k.ok(&["get", "cm", "-A", "-l", "team=blue"], None).await;
    assert!(
        out.contains("NAMESPACE") && out.contains("settings") && !out.contains("other"),
        "{out}"
    );

    // -o yaml
    let out = k
        .ok(&["get", "deploy", "web", "-n", "apps", "-o", "yaml"], None)
        .await;
    assert!(
        out.contains("kind: Deployment")
            && out.contains("image: nginx:1.27")
            && out.contains("resourceVersion:"),
        "{out}"
    );

    // wait for the simulated rollout
    k.ok(
        &[
            "wait",
            "--for=condition=Available",
            "deployment/web",
            "-n",
            "apps",
            "--timeout=20s",
        ],
        None,
    )
    .await;
    let out = k
        .ok(
            &[
                "get",
                "deploy",
                "web",
                "-n",
                "apps",
                "-o",
                "jsonpath={.status.readyReplicas}",
            ],
            None,
        )
        .await;
    assert_eq!(out, "2");

    // patches: strategic (default), merge, json
    k.ok(&["patch", "deploy", "web", "-n", "apps", "-p", r#"{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.28"}]}}}}"#], None).await;
    k.ok(
        &[
            "patch",
            "cm",
            "settings",
            "-n",
            "apps",
            "--type=merge",
            "-p",
            r#"{"data":{"extra":"1"}}"#,
        ],
        None,
    )
    .await;
    k.ok(
        &[
            "patch",
            "cm",
            "settings",
            "-n",
            "apps",
            "--type=json",
            "-p",
            r#"[{"op":"remove","path":"/data/mode"}]"#,
        ],
        None,
    )
    .await;
    let out = k.ok(&["get", "deploy", "web", "-n", "apps", "-o", "jsonpath={.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].ports[0].containerPort} {.metadata.generation}"], None).await;
    assert_eq!(out, "nginx:1.28 80 2");
    let out = k
        .ok(
            &[
                "get",
                "cm",
                "settings",
                "-n",
                "apps",
                "-o",
                "jsonpath={.data}",
            ],
            None,
        )
        .await;
    assert_eq!(out, r#"{"extra":"1"}"#);

    // a conflicting server-side apply from another manager fails, --force-conflicts wins
    let change = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: apps\ndata:\n  extra: \"2\"\n";
    let (ok, _, err) = k
        .run_async(
            &["apply", "--server-side", "--field-manager=other", "-f", "-"],
            Some(change),
        )
        .await;
    assert!(!ok && err.contains("conflict"), "{err}");
    k.ok(
        &[
            "apply",
            "--server-side",
            "--field-manager=other",
            "--force-conflicts",
            "-f",
            "-",
        ],
        Some(change),
    )
    .await;

    // delete and wait for deletion
    k.ok(&["delete", "namespace", "apps", "--wait=false"], None)
        .await;
    k.ok(
        &["wait", "--for=delete", "namespace/apps", "--timeout=20s"],
        None,
    )
    .await;
    let (ok, _, err) = k
        .run_async(&["get", "cm", "settings", "-n", "apps"], None)
        .await;
    assert!(
        !ok && err.contains("NotFound") || err.contains("not found"),
        "{err}"
    );
}

#[tokio::test]
async fn kubectl_with_custom_resources() {
    let (env, _client) = env().await;
    let k = Kubectl::new(&env);
    let crd = serde_json::to_string(&widget_crd()).unwrap();
    k.ok(&["apply", "--server-side", "-f", "-"], Some(&crd))
        .await;
    k.ok(
        &[
            "wait",
            "--for=condition=Established",
            "crd/widgets.example.com",
            "--timeout=10s",
        ],
        None,
    )
    .await;
    let out = k
        .ok(&["api-resources", "--api-group=example.com"], None)
        .await;
    assert!(
        out.contains("widgets") && out.contains("wd") && out.contains("Widget"),
        "{out}"
    );
    let w = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w1\n  labels: {size: big}\nspec:\n  url: https://example.com\n";
    k.ok(&["apply", "--server-side", "-f", "-"], Some(w)).await;
    // printer columns from the CRD
    let out = k.ok(&["get", "wd", "-l", "size=big"], None).await;
    assert!(
        out.contains("URL") && out.contains("https://example.com"),
        "{out}"
    );
    let out = k.ok(&["get", "widget", "w1", "-o", "yaml"], None).await;
    assert!(
        out.contains("interval: 5m"),
        "defaulted field visible: {out}"
    );
    // validation errors reach kubectl
    let bad =
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w2\nspec:\n  url: ftp://x\n";
    let (ok, _, err) = k
        .run_async(&["apply", "--server-side", "-f", "-"], Some(bad))
        .await;
    assert!(
        !ok && err.contains("spec.url in body should match"),
        "{err}"
    );
    // kubectl explain reads the OpenAPI v3 documents (custom and built-in kinds)
    let out = k.ok(&["explain", "widgets.spec.url"], None).await;
    assert!(out.contains("FIELD: url <string>"), "{out}");
    let out = k.ok(&["explain", "deployment.spec.replicas"], None).await;
    assert!(
        out.contains("FIELD: replicas <integer>") && out.contains("Number of desired pods"),
        "{out}"
    );
    // kubectl asks for strict field validation
    let unknown = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w3\nspec:\n  url: https://x\n  colour: red\n";
    let (ok, _, err) = k
        .run_async(&["apply", "--server-side", "-f", "-"], Some(unknown))
        .await;
    assert!(
        !ok && err.contains("unknown field \"spec.colour\""),
        "{err}"
    );
    // `all` category includes widgets
    let out = k.ok(&["get", "all", "-o", "name"], None).await;
    assert!(out.contains("widget.example.com/w1"), "{out}");
    k.ok(&["delete", "widget", "w1"], None).await;
    let out = k.ok(&["get", "widgets", "-o", "name"], None).await;
    assert!(out.trim().is_empty(), "{out}");
    k.ok(&["delete", "crd", "widgets.example.com"], None).await;
}

#[tokio::test]
async fn kubectl_imperative_create_commands() {
    let (env, client) = env().await;
    let k = Kubectl::new(&env);
    // these commands send protobuf
    k.ok(&["create", "namespace", "flux-system"], None).await;
    k.ok(
        &[
            "create",
            "configmap",
            "settings",
            "-n",
            "flux-system",
            "--from-literal=a=b",
            "--from-literal=c=d",
        ],
        None,
    )
    .await;
    let key = k.home.join("age.agekey");
    std::fs::write(&key, "AGE-SECRET-KEY-1").unwrap();
    k.ok(
        &[
            "create",
            "secret",
            "generic",
            "sops-age",
            "-n",
            "flux-system",
            &format!("--from-file=age.agekey={}", key.display()),
        ],
        None,
    )
    .await;
    k.ok(
        &["create", "serviceaccount", "robot", "-n", "flux-system"],
        None,
    )
    .await;
    let cms: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(client.clone(), "flux-system");
    let cm = cms.get("settings").await.unwrap();
    assert_eq!(
        cm.data.unwrap().into_iter().collect::<Vec<_>>(),
        [
            ("a".to_string(), "b".to_string()),
            ("c".to_string(), "d".to_string())
        ]
    );
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(client.clone(), "flux-system");
    let s = secrets.get("sops-age").await.unwrap();
    assert_eq!(s.type_.as_deref(), Some("Opaque"));
    assert_eq!(s.data.unwrap()["age.agekey"].0, b"AGE-SECRET-KEY-1");
    let sas: kube::Api<k8s_openapi::api::core::v1::ServiceAccount> =
        kube::Api::namespaced(client, "flux-system");
    assert!(sas.get_opt("robot").await.unwrap().is_some());
    // events from either API show in kubectl get events
    let ev = "apiVersion: events.k8s.io/v1\nkind: Event\nmetadata:\n  name: e1\n  namespace: flux-system\neventTime: \"2025-01-01T00:00:00.000000Z\"\nreportingController: example.com/ctrl\nreportingInstance: ctrl-1\naction: Reconcile\nreason: Progressing\ntype: Normal\nnote: reconciliation in progress\nregarding:\n  kind: ConfigMap\n  name: settings\n  namespace: flux-system\n";
    k.ok(&["apply", "-f", "-"], Some(ev)).await;
    let out = k.ok(&["get", "events", "-n", "flux-system"], None).await;
    assert!(
        out.contains("Progressing")
            && out.contains("configmap/settings")
            && out.contains("reconciliation in progress"),
        "{out}"
    );
    // kinds without a protobuf decoder are refused clearly
    let (ok, _, err) = k
        .run_async(&["create", "deployment", "web", "--image=nginx"], None)
        .await;
    assert!(!ok && err.contains("not supported by testenv"), "{err}");
}
