//! `meta.k8s.io/v1` Table output (what `kubectl get` asks for).

use crate::registry::ResourceDef;
use serde_json::{Value, json};

/// Age the way kubectl prints it (`5s`, `3m12s`, `4h`, `2d3h`, ...).
pub fn human_age(created: &str) -> String {
    let Ok(t) = created.parse::<jiff::Timestamp>() else {
        return "<unknown>".into();
    };
    let secs = (jiff::Timestamp::now().as_second() - t.as_second()).max(0);
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86400);
    if secs < 120 {
        format!("{secs}s")
    } else if m < 10 {
        let s = secs % 60;
        if s == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{s}s")
        }
    } else if h < 3 {
        format!("{m}m")
    } else if h < 8 {
        let mm = m % 60;
        if mm == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{mm}m")
        }
    } else if h < 48 {
        format!("{h}h")
    } else if d < 8 {
        let hh = h % 24;
        if hh == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{hh}h")
        }
    } else if d < 365 * 2 {
        format!("{d}d")
    } else {
        format!("{}y", d / 365)
    }
}

/// Evaluates the simple JSONPath forms used by printer columns:
/// `.a.b`, `.a[0].b`, `.a[?(@.type=="Ready")].status`.
pub fn json_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = obj;
    let mut rest = path
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim_start_matches('$');
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let key = &r[..end];
            if !key.is_empty() {
                cur = cur.get(key)?;
            }
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let inner = &r[..end];
            rest = &r[end + 1..];
            if let Some(f) = inner.strip_prefix("?(@.").and_then(|f| f.strip_suffix(')')) {
                let (k, v) = f.split_once("==")?;
                let v = v.trim().trim_matches('"').trim_matches('\'');
                cur = cur
                    .as_array()?
                    .iter()
                    .find(|i| i.get(k.trim()).and_then(Value::as_str) == Some(v))?;
            } else {
                let i: usize = inner.parse().ok()?;
                cur = cur.as_array()?.get(i)?;
            }
        } else {
            return None;
        }
    }
    Some(cur)
}

fn cell(v: Option<&Value>, ty: &str) -> Value {
    match v {
        None => Value::Null,
        Some(Value::String(s)) if ty == "date" => json!(human_age(s)),
        Some(Value::String(s)) => json!(s),
        Some(Value::Number(n)) => json!(n),
        Some(Value::Bool(b)) => json!(b),
        Some(other) => json!(other.to_string()),
    }
}

/// A Table of the given objects.
pub fn from_items(def: &ResourceDef, items: &[Value], list_meta: &Value) -> Value {
    let mut columns = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0}),
    ];
    let printer = &def.printer_columns;
    for c in printer {
        columns.push(json!({
            "name": c["name"], "type": c["type"].as_str().unwrap_or("string"),
            "format": c["format"].as_str().unwrap_or(""), "description": c["description"].as_str().unwrap_or(""),
            "priority": c["priority"].as_i64().unwrap_or(0),
        }));
    }
    let extra: Vec<(&str, &str)> = match (def.group.as_str(), def.resource.as_str()) {
        ("", "namespaces") => vec![("Status", ".status.phase")],
        ("", "secrets") => vec![("Type", ".type")],
        ("", "services") => vec![("Type", ".spec.type"), ("Cluster-IP", ".spec.clusterIP")],
        ("", "pods") => vec![("Status", ".status.phase")],
        ("", "events") => vec![
            ("Type", ".type"),
            ("Reason", ".reason"),
            ("Object", "@involvedObject"),
            ("Message", ".message"),
        ],
        ("apps", "deployments") => vec![
            ("Ready", ".status.readyReplicas"),
            ("Replicas", ".spec.replicas"),
        ],
        _ => vec![],
    };
    if printer.is_empty() {
        for (n, _) in &extra {
            columns.push(json!({"name": n, "type": "string", "format": "", "description": "", "priority": 0}));
        }
    }
    let has_age = printer
        .iter()
        .any(|c| c["jsonPath"].as_str() == Some(".metadata.creationTimestamp"));
    if !has_age {
        columns.push(json!({"name": "Age", "type": "string", "format": "", "description": "CreationTimestamp", "priority": 0}));
    }
    let rows: Vec<Value> = items
        .iter()
        .map(|o| {
            let mut cells = vec![o["metadata"]["name"].clone()];
            for c in printer {
                let ty = c["type"].as_str().unwrap_or("string");
                cells.push(cell(c["jsonPath"].as_str().and_then(|p| json_path(o, p)), ty));
            }
            if printer.is_empty() {
                for (_, p) in &extra {
                    if *p == "@involvedObject" {
                        let io = &o["involvedObject"];
                        let kind = io["kind"].as_str().unwrap_or_default().to_lowercase();
                        cells.push(json!(format!("{kind}/{}", io["name"].as_str().unwrap_or_default())));
                    } else {
                        cells.push(cell(json_path(o, p), "string"));
                    }
                }
            }
            if !has_age {
                cells.push(json!(human_age(o["metadata"]["creationTimestamp"].as_str().unwrap_or_default())));
            }
            let mut meta = o["metadata"].clone();
            if let Some(m) = meta.as_object_mut() {
                m.remove("managedFields");
            }
            json!({"cells": cells, "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta}})
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta, "columnDefinitions": columns, "rows": rows})
}

pub fn from_list(def: &ResourceDef, list: &Value) -> Value {
    let items = list["items"].as_array().cloned().unwrap_or_default();
    from_items(def, &items, &list["metadata"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonpath_forms() {
        let o = json!({"status": {"conditions": [{"type": "A", "status": "False"}, {"type": "Ready", "status": "True"}]}, "spec": {"x": [1, 2]}});
        assert_eq!(
            json_path(&o, ".status.conditions[?(@.type==\"Ready\")].status"),
            Some(&json!("True"))
        );
        assert_eq!(json_path(&o, ".spec.x[1]"), Some(&json!(2)));
        assert_eq!(json_path(&o, ".spec.y"), None);
    }
}
