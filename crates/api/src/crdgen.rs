//! Generation of the CustomResourceDefinitions in `deploy/crds/`.
//!
//! The CRDs come from the kube-derive `CustomResourceExt::crd()` of each kind, then pass through a
//! small, fixed set of rewrites so that they match the upstream Flux CRDs where kube-derive and
//! schemars produce something different:
//!
//! 1. `nullable: true` is removed everywhere, and `null` is removed from `enum` lists. schemars
//!    marks every `Option<T>` as nullable; in our types `Option` means "may be absent", which the
//!    upstream schemas express by leaving the field out of `required` (they never use `nullable`).
//!    schemars' `title` keywords (type names) are dropped as well.
//! 2. The root schema gets the `apiVersion`, `kind` and `metadata` properties upstream declares,
//!    and loses the `required: [spec]` kube-derive adds (upstream requires nothing at the root).
//! 3. The CRD metadata gets `app.kubernetes.io/part-of: flux`, `app.kubernetes.io/component:
//!    <controller>` and `kustomize.toolkit.fluxcd.io/substitute: disabled` (set here rather than
//!    with kube-derive's `annotation`/`label`, which would also stamp them on every object made
//!    with `Kind::new`).
//! 4. `spec.names.listKind` is set to `<Kind>List`, as the API server would default it, and a
//!    version without subresources gets `subresources: {}` as controller-gen writes it.
//!
//! Everything else (patterns, defaults, enums, CEL rules, printer columns, names) comes from the
//! attributes on the Rust types. The command `cargo run -p ferroflux-api --bin gen-crds` writes the
//! files; a test fails when the checked-in files differ from [`files`].

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use serde_json::{Map, Value, json};

use crate::annotations::{
    COMPONENT_LABEL, DISABLED_VALUE, KUSTOMIZE_SUBSTITUTE, PART_OF_FLUX, PART_OF_LABEL,
};

/// The command that regenerates `deploy/crds/`.
pub const GENERATE_COMMAND: &str = "cargo run -p ferroflux-api --bin gen-crds";

/// One generated CRD.
#[derive(Clone, Debug)]
pub struct GeneratedCrd {
    /// File name, `<group>_<plural>.yaml` as upstream names it.
    pub file_name: String,
    /// The CRD as JSON, after the rewrites described in the module docs.
    pub value: Value,
}

/// The raw kube-derive CRDs of every kind we serve, in a fixed order.
pub fn raw_crds() -> Vec<CustomResourceDefinition> {
    vec![
        crate::gitrepository::GitRepository::crd(),
        crate::ocirepository::OCIRepository::crd(),
        crate::helmrepository::HelmRepository::crd(),
        crate::helmchart::HelmChart::crd(),
        crate::bucket::Bucket::crd(),
        crate::externalartifact::ExternalArtifact::crd(),
        crate::kustomization::Kustomization::crd(),
        crate::helmrelease::HelmRelease::crd(),
        crate::provider::Provider::crd(),
        crate::alert::Alert::crd(),
        crate::receiver::Receiver::crd(),
    ]
}

/// Every CRD, rewritten to match upstream conventions.
pub fn crds() -> Vec<GeneratedCrd> {
    raw_crds()
        .into_iter()
        .map(|crd| {
            let file_name = format!("{}_{}.yaml", crd.spec.group, crd.spec.names.plural);
            // Serialising a k8s-openapi type to a JSON value cannot fail.
            let mut value = serde_json::to_value(&crd).unwrap_or(Value::Null);
            rewrite(&mut value);
            GeneratedCrd {
                file_name,
                value: sorted(value),
            }
        })
        .collect()
}

/// Every CRD as a typed object, ready to be created on a cluster (e.g. by a test control plane
/// or an installer).
pub fn crd_objects() -> Result<Vec<CustomResourceDefinition>, serde_json::Error> {
    crds()
        .into_iter()
        .map(|c| serde_json::from_value(c.value))
        .collect()
}

/// The controller that serves an API group (`app.kubernetes.io/component` of its CRDs).
pub fn controller_of(group: &str) -> Option<&'static str> {
    match group {
        "source.toolkit.fluxcd.io" => Some("source-controller"),
        "kustomize.toolkit.fluxcd.io" => Some("kustomize-controller"),
        "helm.toolkit.fluxcd.io" => Some("helm-controller"),
        "notification.toolkit.fluxcd.io" => Some("notification-controller"),
        _ => None,
    }
}

/// Applies the rewrites described in the module docs to a CRD in JSON form.
pub fn rewrite(crd: &mut Value) {
    if let Some(group) = crd.pointer("/spec/group").and_then(Value::as_str) {
        let component = controller_of(group);
        if let Some(meta) = crd.get_mut("metadata").and_then(Value::as_object_mut) {
            let labels = meta.entry("labels").or_insert_with(|| json!({}));
            if let Some(labels) = labels.as_object_mut() {
                labels.insert(PART_OF_LABEL.into(), json!(PART_OF_FLUX));
                if let Some(component) = component {
                    labels.insert(COMPONENT_LABEL.into(), json!(component));
                }
            }
            let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
            if let Some(annotations) = annotations.as_object_mut() {
                annotations.insert(KUSTOMIZE_SUBSTITUTE.into(), json!(DISABLED_VALUE));
            }
        }
    }
    if let Some(names) = crd
        .pointer_mut("/spec/names")
        .and_then(Value::as_object_mut)
        && let Some(kind) = names.get("kind").and_then(Value::as_str)
    {
        let list_kind = format!("{kind}List");
        names.insert("listKind".into(), Value::String(list_kind));
    }
    let Some(versions) = crd
        .pointer_mut("/spec/versions")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for version in versions {
        // controller-gen writes `subresources: {}` for kinds without a status subresource.
        if let Some(v) = version.as_object_mut() {
            v.entry("subresources").or_insert_with(|| json!({}));
        }
        let Some(root) = version.pointer_mut("/schema/openAPIV3Schema") else {
            continue;
        };
        strip_nullable(root);
        if let Some(obj) = root.as_object_mut() {
            obj.remove("required");
            let props = obj
                .entry("properties")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(props) = props.as_object_mut() {
                props.insert(
                    "apiVersion".into(),
                    json!({
                        "description": "Versioned schema of this representation of the object.",
                        "type": "string",
                    }),
                );
                props.insert(
                    "kind".into(),
                    json!({
                        "description": "REST resource this object represents, in CamelCase.",
                        "type": "string",
                    }),
                );
                props.insert("metadata".into(), json!({ "type": "object" }));
            }
        }
    }
}

/// Calls `f` on `schema` and on every schema nested in it (properties, items,
/// additionalProperties, anyOf/oneOf/allOf/not), never on data such as `default` or `enum`.
pub fn walk_schemas(schema: &mut Value, f: &mut dyn FnMut(&mut Map<String, Value>)) {
    let Value::Object(obj) = schema else {
        return;
    };
    f(obj);
    if let Some(Value::Object(props)) = obj.get_mut("properties") {
        for child in props.values_mut() {
            walk_schemas(child, f);
        }
    }
    for key in ["items", "additionalProperties", "not"] {
        if let Some(child) = obj.get_mut(key) {
            walk_schemas(child, f);
        }
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(list)) = obj.get_mut(key) {
            for child in list {
                walk_schemas(child, f);
            }
        }
    }
}

fn strip_nullable(schema: &mut Value) {
    walk_schemas(schema, &mut |obj| {
        obj.remove("nullable");
        obj.remove("title");
        if let Some(Value::Array(values)) = obj.get_mut("enum") {
            values.retain(|v| !v.is_null());
        }
    });
}

/// Rebuilds every map with its keys in sorted order, whatever serde_json's map type is, so the
/// output is stable.
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(obj) => {
            let mut entries: Vec<(String, Value)> = obj.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        // JSONSchemaProps keeps bounds as f64; print whole numbers as integers (`0`, not `0.0`).
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 9.0e15 => json!(f as i64),
            _ => Value::Number(n),
        },
        other => other,
    }
}

/// Renders one document as YAML, starting with `---` like the upstream files.
pub fn to_yaml(value: &Value) -> Result<String, serde_saphyr::SerializeError> {
    Ok(format!("---\n{}", serde_saphyr::to_string(value)?))
}

/// Every file of `deploy/crds/`: one per CRD plus a `kustomization.yaml` listing them.
pub fn files() -> Result<Vec<(String, String)>, serde_saphyr::SerializeError> {
    let crds = crds();
    let mut out = Vec::with_capacity(crds.len() + 1);
    let mut kustomization = String::from(
        "# Generated by `cargo run -p ferroflux-api --bin gen-crds`; do not edit.\n\
         apiVersion: kustomize.config.k8s.io/v1beta1\n\
         kind: Kustomization\n\
         resources:\n",
    );
    for crd in &crds {
        kustomization.push_str(&format!("- {}\n", crd.file_name));
        out.push((crd.file_name.clone(), to_yaml(&crd.value)?));
    }
    out.push(("kustomization.yaml".to_owned(), kustomization));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_crds_keep_the_rewrites() {
        let crds = crd_objects().unwrap();
        assert_eq!(crds.len(), raw_crds().len());
        for crd in &crds {
            assert_eq!(
                crd.spec.names.list_kind.as_deref(),
                Some(format!("{}List", crd.spec.names.kind).as_str())
            );
            let labels = crd.metadata.labels.clone().unwrap_or_default();
            assert_eq!(
                labels.get(PART_OF_LABEL).map(String::as_str),
                Some(PART_OF_FLUX)
            );
            assert_eq!(
                labels.get(COMPONENT_LABEL).map(String::as_str),
                controller_of(&crd.spec.group)
            );
            assert!(controller_of(&crd.spec.group).is_some());
            let annotations = crd.metadata.annotations.clone().unwrap_or_default();
            assert_eq!(
                annotations.get(KUSTOMIZE_SUBSTITUTE).map(String::as_str),
                Some(DISABLED_VALUE)
            );
            let text = serde_json::to_string(crd).unwrap();
            assert!(!text.contains("\"nullable\""), "{}", crd.spec.names.kind);
        }
    }

    #[test]
    fn rewrite_strips_nullable_but_not_property_names() {
        let mut crd = json!({
            "spec": {
                "names": {"kind": "Thing"},
                "versions": [{
                    "name": "v1",
                    "schema": {"openAPIV3Schema": {
                        "type": "object",
                        "required": ["spec"],
                        "properties": {
                            "spec": {
                                "type": "object",
                                "nullable": true,
                                "properties": {
                                    "nullable": {"type": "string", "nullable": true},
                                    "mode": {"type": "string", "enum": ["a", null], "nullable": true},
                                },
                            },
                        },
                    }},
                }],
            },
        });
        rewrite(&mut crd);
        let root = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        assert_eq!(root.get("required"), None);
        assert_eq!(root["properties"]["metadata"], json!({"type": "object"}));
        let spec = &root["properties"]["spec"];
        assert_eq!(spec.get("nullable"), None);
        assert_eq!(spec["properties"]["nullable"], json!({"type": "string"}));
        assert_eq!(
            spec["properties"]["mode"],
            json!({"type": "string", "enum": ["a"]})
        );
        assert_eq!(crd["spec"]["names"]["listKind"], json!("ThingList"));
        assert_eq!(crd["spec"]["versions"][0]["subresources"], json!({}));
    }
}
