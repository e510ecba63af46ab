//! A minimal OpenAPI v3 document: enough for kubectl to see that the server validates fields
//! itself (the `fieldValidation` parameter on PATCH), and schemas of custom kinds for `explain`.

use crate::registry::ResourceDef;
use crate::store::Inner;
use serde_json::{Map, Value, json};

fn gv_path(d: &ResourceDef) -> String {
    if d.group.is_empty() {
        format!("api/{}", d.version)
    } else {
        format!("apis/{}/{}", d.group, d.version)
    }
}

fn hash(s: &str) -> String {
    // FNV-1a, enough to change the URL when a group-version changes
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016X}")
}

pub fn root(inner: &Inner) -> Value {
    let mut paths = Map::new();
    let mut gvs: Vec<String> = inner.registry.all().map(|d| gv_path(d)).collect();
    gvs.sort();
    gvs.dedup();
    for gv in gvs {
        let doc = group_version(inner, &gv).unwrap_or(Value::Null);
        let h = hash(&doc.to_string());
        paths.insert(
            gv.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{gv}?hash={h}")}),
        );
    }
    json!({"paths": paths})
}

fn schema_name(d: &ResourceDef) -> String {
    let g = if d.group.is_empty() {
        "core".to_string()
    } else {
        d.group.split('.').rev().collect::<Vec<_>>().join(".")
    };
    format!("{g}.{}.{}", d.version, d.kind)
}

pub fn group_version(inner: &Inner, gv: &str) -> Option<Value> {
    let defs: Vec<_> = inner
        .registry
        .all()
        .filter(|d| gv_path(d) == gv)
        .cloned()
        .collect();
    if defs.is_empty() {
        return None;
    }
    let mut paths = Map::new();
    let mut schemas = Map::new();
    let params = json!([
        {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
        {"name": "force", "in": "query", "schema": {"type": "boolean", "uniqueItems": true}},
    ]);
    for d in &defs {
        let gvk = json!({"group": d.group, "version": d.version, "kind": d.kind});
        let sname = schema_name(d);
        let reference = json!({"$ref": format!("#/components/schemas/{sname}")});
        let ok = json!({"200": {"description": "OK", "content": {"application/json": {"schema": reference}}}});
        let base = if d.namespaced {
            format!("/{gv}/namespaces/{{namespace}}/{}", d.resource)
        } else {
            format!("/{gv}/{}", d.resource)
        };
        paths.insert(
            format!("{base}/{{name}}"),
            json!({
                "get": {"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": "get", "responses": ok},
                "put": {"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": "put", "parameters": params, "responses": ok},
                "patch": {"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": "patch", "parameters": params, "responses": ok},
            }),
        );
        paths.insert(
            base,
            json!({"post": {"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": "post", "parameters": params, "responses": ok}}),
        );
        let mut schema = d
            .schema
            .as_deref()
            .cloned()
            .unwrap_or_else(|| json!({"type": "object", "description": format!("{} (schema not published by testenv)", d.kind), "x-kubernetes-preserve-unknown-fields": true}));
        schema["x-kubernetes-group-version-kind"] = json!([gvk]);
        schemas.insert(sname, schema);
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}
