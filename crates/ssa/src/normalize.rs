//! Normalisation of manifests before apply and of objects before the drift comparison.
//!
//! Upstream converts built-in kinds to their Go types and back; we apply the same fixes
//! directly on JSON: default `protocol: TCP` on container and Service ports, Secret
//! `stringData` folded into `data`, no `metadata.creationTimestamp`, no `status` (except on
//! CRDs, which kstatus reads). Roles and ClusterRoles are left alone, as upstream does.

use base64::Engine;
use serde_json::{Map, Value};

use crate::object::{is_crd, is_secret, str_at};

/// Normalises every manifest in place (kustomize-controller does this before apply).
pub fn normalize_objects(objects: &mut [Value]) {
    for o in objects {
        normalize_object(o);
    }
}

/// Normalises one manifest in place.
pub fn normalize_object(obj: &mut Value) {
    let api_version = str_at(obj, &["apiVersion"]).to_string();
    let kind = str_at(obj, &["kind"]).to_string();
    if api_version == "rbac.authorization.k8s.io/v1" && (kind == "Role" || kind == "ClusterRole") {
        return;
    }
    let pod_spec = match (api_version.as_str(), kind.as_str()) {
        ("v1", "Pod") => Some("/spec"),
        ("apps/v1", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet") => {
            Some("/spec/template/spec")
        }
        ("batch/v1", "Job") => Some("/spec/template/spec"),
        ("batch/v1", "CronJob") => Some("/spec/jobTemplate/spec/template/spec"),
        _ => None,
    };
    if let Some(path) = pod_spec
        && let Some(containers) = obj
            .pointer_mut(&format!("{path}/containers"))
            .and_then(Value::as_array_mut)
    {
        for c in containers {
            if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
                default_protocol(ports);
            }
        }
    }
    if api_version == "v1"
        && kind == "Service"
        && let Some(ports) = obj.pointer_mut("/spec/ports").and_then(Value::as_array_mut)
    {
        default_protocol(ports);
    }
    if is_secret(obj) {
        fold_string_data(obj);
    }
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("creationTimestamp");
    }
    if !is_crd(obj)
        && let Some(m) = obj.as_object_mut()
    {
        m.remove("status");
    }
}

fn default_protocol(ports: &mut [Value]) {
    for p in ports {
        if let Some(p) = p.as_object_mut() {
            let empty = p
                .get("protocol")
                .is_none_or(|v| v.as_str().is_none_or(str::is_empty));
            if empty {
                p.insert("protocol".into(), Value::String("TCP".into()));
            }
        }
    }
}

fn fold_string_data(obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else {
        return;
    };
    let Some(Value::Object(string_data)) = m.remove("stringData") else {
        return;
    };
    if string_data.is_empty() {
        return;
    }
    let data = m.entry("data").or_insert_with(|| Value::Object(Map::new()));
    if !data.is_object() {
        *data = Value::Object(Map::new());
    }
    if let Some(data) = data.as_object_mut() {
        for (k, v) in string_data {
            let s = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            data.insert(
                k,
                Value::String(base64::engine::general_purpose::STANDARD.encode(s)),
            );
        }
    }
}

/// The part of an object the drift comparison looks at: everything but `metadata` and
/// `status` (labels and annotations are compared separately).
pub(crate) fn for_diff(obj: &Value) -> Value {
    let mut out = obj.clone();
    if let Some(m) = out.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_ports_folds_secrets_and_drops_status() {
        let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "creationTimestamp": null},
            "spec": {"template": {"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}]}]}}},
            "status": {"replicas": 1}});
        normalize_object(&mut d);
        assert_eq!(
            d.pointer("/spec/template/spec/containers/0/ports").unwrap(),
            &json!([{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 53, "protocol": "UDP"}])
        );
        assert!(d.get("status").is_none());
        assert!(d.pointer("/metadata/creationTimestamp").is_none());

        let mut s = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "data": {"a": "YQ=="}, "stringData": {"b": "b", "a": "x"}});
        normalize_object(&mut s);
        assert_eq!(s["data"], json!({"a": "eA==", "b": "Yg=="}));
        assert!(s.get("stringData").is_none());

        let mut crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "c"}, "status": {"x": 1}});
        normalize_object(&mut crd);
        assert!(crd.get("status").is_some());

        let mut svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
            "spec": {"ports": [{"port": 80}]}});
        normalize_object(&mut svc);
        assert_eq!(svc.pointer("/spec/ports/0/protocol").unwrap(), "TCP");
    }
}
