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
    if let Some(path) = pod_spec
        && let Some(spec) = obj.pointer_mut(path)
    {
        pod_spec_quantities(spec);
    }
    match (api_version.as_str(), kind.as_str()) {
        ("apps/v1", "StatefulSet") => {
            if let Some(templates) = obj
                .pointer_mut("/spec/volumeClaimTemplates")
                .and_then(Value::as_array_mut)
            {
                for t in templates {
                    resource_requirements(t.pointer_mut("/spec/resources"));
                }
            }
        }
        ("v1", "PersistentVolumeClaim") => {
            resource_requirements(obj.pointer_mut("/spec/resources"))
        }
        ("v1", "PersistentVolume") => quantity_map(obj.pointer_mut("/spec/capacity")),
        ("v1", "ResourceQuota") => quantity_map(obj.pointer_mut("/spec/hard")),
        ("v1", "LimitRange") => {
            if let Some(limits) = obj
                .pointer_mut("/spec/limits")
                .and_then(Value::as_array_mut)
            {
                for l in limits {
                    for k in [
                        "max",
                        "min",
                        "default",
                        "defaultRequest",
                        "maxLimitRequestRatio",
                    ] {
                        quantity_map(l.get_mut(k));
                    }
                }
            }
        }
        _ => {}
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

/// Quantities written as JSON numbers (`cpu: 2`) become the canonical strings the Go types
/// marshal (`"2"`, `0.5` → `"500m"`, `1000` → `"1k"`), as upstream's typed round trip does.
fn pod_spec_quantities(spec: &mut Value) {
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        if let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) {
            for c in cs {
                resource_requirements(c.get_mut("resources"));
            }
        }
    }
    resource_requirements(spec.get_mut("resources"));
    quantity_map(spec.get_mut("overhead"));
    if let Some(volumes) = spec.get_mut("volumes").and_then(Value::as_array_mut) {
        for v in volumes {
            if let Some(q) = v.pointer_mut("/emptyDir/sizeLimit") {
                canonical_quantity(q);
            }
        }
    }
}

fn resource_requirements(r: Option<&mut Value>) {
    if let Some(r) = r {
        quantity_map(r.get_mut("limits"));
        quantity_map(r.get_mut("requests"));
    }
}

fn quantity_map(m: Option<&mut Value>) {
    if let Some(m) = m.and_then(Value::as_object_mut) {
        for v in m.values_mut() {
            canonical_quantity(v);
        }
    }
}

fn canonical_quantity(v: &mut Value) {
    if let Value::Number(n) = v
        && let Some(s) = format_decimal_quantity(&n.to_string())
    {
        *v = Value::String(s);
    }
}

/// Formats a decimal number as a canonical DecimalSI quantity: the largest SI suffix (n, u,
/// m, none, k, M, G, T, P, E) that keeps the mantissa an integer.
pub(crate) fn format_decimal_quantity(number: &str) -> Option<String> {
    let (negative, number) = match number.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, number),
    };
    let (base, exp): (&str, i32) = match number.split_once(['e', 'E']) {
        Some((b, e)) => (b, e.parse().ok()?),
        None => (number, 0),
    };
    let (int_part, frac_part) = base.split_once('.').unwrap_or((base, ""));
    let digits: String = format!("{int_part}{frac_part}");
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut exp = exp - frac_part.len() as i32;
    let mut digits = digits.trim_start_matches('0').to_string();
    if digits.is_empty() {
        return Some("0".into());
    }
    while digits.ends_with('0') {
        digits.pop();
        exp += 1;
    }
    let mut e3 = exp.div_euclid(3) * 3;
    e3 = e3.clamp(-9, 18);
    // mantissa = digits * 10^(exp - e3); below nano, Go rounds up to whole nanos
    let shift = exp - e3;
    let mantissa = if shift >= 0 {
        format!("{digits}{}", "0".repeat(shift as usize))
    } else {
        let value: u128 = digits.parse().ok()?;
        let div = 10u128.checked_pow(shift.unsigned_abs())?;
        value.div_ceil(div).to_string()
    };
    let suffix = match e3 {
        -9 => "n",
        -6 => "u",
        -3 => "m",
        0 => "",
        3 => "k",
        6 => "M",
        9 => "G",
        12 => "T",
        15 => "P",
        _ => "E",
    };
    Some(format!(
        "{}{mantissa}{suffix}",
        if negative { "-" } else { "" }
    ))
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
    fn numeric_quantities_become_canonical_strings() {
        for (n, want) in [
            ("2", "2"),
            ("0", "0"),
            ("0.5", "500m"),
            ("1000", "1k"),
            ("1500", "1500"),
            ("2000000", "2M"),
            ("0.25", "250m"),
            ("1.5", "1500m"),
            ("0.0001", "100u"),
            ("-3", "-3"),
            ("1e3", "1k"),
            ("1.0", "1"),
            ("0.0000000015", "2n"),
        ] {
            assert_eq!(format_decimal_quantity(n).as_deref(), Some(want), "{n}");
        }
        let mut pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "p"},
            "spec": {"resources": {"requests": {"storage": 1000000000}}}});
        normalize_object(&mut pvc);
        assert_eq!(
            pvc.pointer("/spec/resources/requests/storage").unwrap(),
            "1G"
        );
    }

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
