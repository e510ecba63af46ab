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
        // the document of a group-version changes only with its resources and their schemas
        let mut key = String::new();
        for d in inner.registry.all().filter(|d| gv_path(d) == gv) {
            key.push_str(&format!(
                "{}|{}|{}|{}|",
                d.resource,
                d.kind,
                d.namespaced,
                d.schema
                    .as_deref()
                    .map(Value::to_string)
                    .unwrap_or_default()
            ));
        }
        let h = hash(&key);
        paths.insert(
            gv.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{gv}?hash={h}")}),
        );
    }
    json!({"paths": paths})
}

/// Schemas of built-in kinds (from k8s-openapi), with their definitions.
struct Builtin {
    name: String,
    defs: Map<String, Value>,
}

fn gen_schema<T: k8s_openapi::schemars::JsonSchema>() -> Builtin {
    let mut g = k8s_openapi::schemars::generate::SchemaSettings::openapi3().into_generator();
    let _ = g.subschema_for::<T>();
    let defs = g.take_definitions(true).into_iter().collect();
    Builtin {
        name: T::schema_name().into_owned(),
        defs,
    }
}

fn builtin_schema(d: &ResourceDef) -> Option<std::sync::Arc<Builtin>> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    type Cache = Mutex<HashMap<(String, String), Option<Arc<Builtin>>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut map = match cache.lock() {
        Ok(m) => m,
        Err(e) => e.into_inner(),
    };
    map.entry((d.group.clone(), d.kind.clone()))
        .or_insert_with(|| generate_builtin(d).map(Arc::new))
        .clone()
}

fn generate_builtin(d: &ResourceDef) -> Option<Builtin> {
    use k8s_openapi::api::*;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiext;
    Some(match (d.group.as_str(), d.kind.as_str()) {
        ("", "Namespace") => gen_schema::<core::v1::Namespace>(),
        ("", "ConfigMap") => gen_schema::<core::v1::ConfigMap>(),
        ("", "Secret") => gen_schema::<core::v1::Secret>(),
        ("", "ServiceAccount") => gen_schema::<core::v1::ServiceAccount>(),
        ("", "Service") => gen_schema::<core::v1::Service>(),
        ("", "Endpoints") => gen_schema::<core::v1::Endpoints>(),
        ("", "Pod") => gen_schema::<core::v1::Pod>(),
        ("", "PersistentVolumeClaim") => gen_schema::<core::v1::PersistentVolumeClaim>(),
        ("", "PersistentVolume") => gen_schema::<core::v1::PersistentVolume>(),
        ("", "Event") => gen_schema::<core::v1::Event>(),
        ("", "Node") => gen_schema::<core::v1::Node>(),
        ("", "LimitRange") => gen_schema::<core::v1::LimitRange>(),
        ("", "ResourceQuota") => gen_schema::<core::v1::ResourceQuota>(),
        ("", "ReplicationController") => gen_schema::<core::v1::ReplicationController>(),
        ("apps", "Deployment") => gen_schema::<apps::v1::Deployment>(),
        ("apps", "StatefulSet") => gen_schema::<apps::v1::StatefulSet>(),
        ("apps", "DaemonSet") => gen_schema::<apps::v1::DaemonSet>(),
        ("apps", "ReplicaSet") => gen_schema::<apps::v1::ReplicaSet>(),
        ("apps", "ControllerRevision") => gen_schema::<apps::v1::ControllerRevision>(),
        ("batch", "Job") => gen_schema::<batch::v1::Job>(),
        ("batch", "CronJob") => gen_schema::<batch::v1::CronJob>(),
        ("networking.k8s.io", "Ingress") => gen_schema::<networking::v1::Ingress>(),
        ("networking.k8s.io", "NetworkPolicy") => gen_schema::<networking::v1::NetworkPolicy>(),
        ("networking.k8s.io", "IngressClass") => gen_schema::<networking::v1::IngressClass>(),
        ("discovery.k8s.io", "EndpointSlice") => gen_schema::<discovery::v1::EndpointSlice>(),
        ("rbac.authorization.k8s.io", "Role") => gen_schema::<rbac::v1::Role>(),
        ("rbac.authorization.k8s.io", "RoleBinding") => gen_schema::<rbac::v1::RoleBinding>(),
        ("rbac.authorization.k8s.io", "ClusterRole") => gen_schema::<rbac::v1::ClusterRole>(),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            gen_schema::<rbac::v1::ClusterRoleBinding>()
        }
        ("autoscaling", "HorizontalPodAutoscaler") => {
            gen_schema::<autoscaling::v2::HorizontalPodAutoscaler>()
        }
        ("policy", "PodDisruptionBudget") => gen_schema::<policy::v1::PodDisruptionBudget>(),
        ("scheduling.k8s.io", "PriorityClass") => gen_schema::<scheduling::v1::PriorityClass>(),
        ("storage.k8s.io", "StorageClass") => gen_schema::<storage::v1::StorageClass>(),
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration") => {
            gen_schema::<admissionregistration::v1::MutatingWebhookConfiguration>()
        }
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration") => {
            gen_schema::<admissionregistration::v1::ValidatingWebhookConfiguration>()
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            gen_schema::<apiext::CustomResourceDefinition>()
        }
        ("coordination.k8s.io", "Lease") => gen_schema::<coordination::v1::Lease>(),
        ("events.k8s.io", "Event") => gen_schema::<events::v1::Event>(),
        _ => return None,
    })
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
        let builtin = if d.custom { None } else { builtin_schema(d) };
        let sname = builtin
            .as_ref()
            .map(|b| b.name.clone())
            .unwrap_or_else(|| schema_name(d));
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
        if let Some(b) = builtin {
            for (k, v) in b.defs.iter() {
                schemas.entry(k.clone()).or_insert_with(|| v.clone());
            }
            if let Some(root) = schemas.get_mut(&b.name) {
                root["x-kubernetes-group-version-kind"] = json!([gvk]);
            }
            continue;
        }
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
