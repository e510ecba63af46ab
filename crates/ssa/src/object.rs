//! Object identity (group, kind, namespace, name, version), metadata helpers and the apply
//! order of kinds.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use crate::SsaError;

/// The identity of a Kubernetes object, as kept in a Kustomization inventory.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjMetadata {
    pub namespace: String,
    pub name: String,
    pub group: String,
    pub kind: String,
    pub version: String,
}

impl ObjMetadata {
    /// Reads the identity of an object from its `apiVersion`, `kind` and `metadata`.
    pub fn of(obj: &Value) -> Result<Self, SsaError> {
        let api_version = str_at(obj, &["apiVersion"]);
        let kind = str_at(obj, &["kind"]);
        let name = str_at(obj, &["metadata", "name"]);
        if api_version.is_empty() || kind.is_empty() || name.is_empty() {
            return Err(SsaError::InvalidObject(format!(
                "object '{kind}/{name}' lacks apiVersion, kind or metadata.name"
            )));
        }
        let (group, version) = split_api_version(api_version);
        Ok(ObjMetadata {
            namespace: str_at(obj, &["metadata", "namespace"]).to_string(),
            name: name.to_string(),
            group: group.to_string(),
            kind: kind.to_string(),
            version: version.to_string(),
        })
    }

    /// The inventory id `<namespace>_<name>_<group>_<Kind>` (a `:` in the name, as RBAC names
    /// have, is written `__`).
    pub fn inventory_id(&self) -> String {
        format!(
            "{}_{}_{}_{}",
            self.namespace,
            self.name.replace(':', "__"),
            self.group,
            self.kind
        )
    }

    /// Parses an inventory id (`<namespace>_<name>_<group>_<Kind>`) with its version.
    ///
    /// Like upstream's `object.ParseObjMetadata`, names that contain `__` (RBAC objects named
    /// like `system::x` are stored with `:` escaped as `__`) are unescaped.
    pub fn parse_inventory(id: &str, version: &str) -> Result<Self, SsaError> {
        let invalid =
            || SsaError::InvalidObject(format!("unable to parse stored object metadata: {id}"));
        // kind: after the last '_'; group: before it (groups never contain '_').
        let (rest, kind) = id.rsplit_once('_').ok_or_else(invalid)?;
        let (rest, group) = rest.rsplit_once('_').ok_or_else(invalid)?;
        let (namespace, name) = rest.split_once('_').ok_or_else(invalid)?;
        if kind.is_empty() || name.is_empty() {
            return Err(invalid());
        }
        Ok(ObjMetadata {
            namespace: namespace.to_string(),
            name: name.replace("__", ":"),
            group: group.to_string(),
            kind: kind.to_string(),
            version: version.to_string(),
        })
    }

    /// `Kind/namespace/name`, or `Kind/name` for cluster-scoped objects.
    pub fn subject(&self) -> String {
        if self.namespace.is_empty() {
            format!("{}/{}", self.kind, self.name)
        } else {
            format!("{}/{}/{}", self.kind, self.namespace, self.name)
        }
    }

    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// True when group, kind, namespace and name are equal (the version is not part of the
    /// identity).
    pub fn same_object(&self, other: &ObjMetadata) -> bool {
        self.group == other.group
            && self.kind == other.kind
            && self.namespace == other.namespace
            && self.name == other.name
    }
}

impl fmt::Display for ObjMetadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.subject())
    }
}

/// `group/version` → (group, version); `v1` → ("", "v1").
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}

pub(crate) fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .try_fold(v, |v, k| v.get(*k))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn string_map(obj: &Value, field: &str) -> BTreeMap<String, String> {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// `metadata.labels` as a map (non-string values are dropped).
pub fn labels(obj: &Value) -> BTreeMap<String, String> {
    string_map(obj, "labels")
}

/// `metadata.annotations` as a map (non-string values are dropped).
pub fn annotations(obj: &Value) -> BTreeMap<String, String> {
    string_map(obj, "annotations")
}

/// True when one of the key/value pairs is found in the object's labels or annotations, values
/// compared case-insensitively (upstream `AnyInMetadata`).
pub fn any_in_metadata(obj: &Value, selector: &BTreeMap<String, String>) -> bool {
    if selector.is_empty() {
        return false;
    }
    let labels = labels(obj);
    let annotations = annotations(obj);
    selector.iter().any(|(k, v)| {
        [labels.get(k), annotations.get(k)]
            .into_iter()
            .flatten()
            .any(|found| !found.is_empty() && found.eq_ignore_ascii_case(v))
    })
}

fn kind_of(obj: &Value) -> &str {
    str_at(obj, &["kind"])
}

fn api_version_of(obj: &Value) -> &str {
    str_at(obj, &["apiVersion"])
}

/// A CustomResourceDefinition (`apiextensions.k8s.io/*`).
pub fn is_crd(obj: &Value) -> bool {
    kind_of(obj).eq_ignore_ascii_case("customresourcedefinition")
        && api_version_of(obj).starts_with("apiextensions.k8s.io/")
}

/// A Namespace (`v1`).
pub fn is_namespace(obj: &Value) -> bool {
    kind_of(obj).eq_ignore_ascii_case("namespace") && api_version_of(obj) == "v1"
}

/// A ClusterRole (`rbac.authorization.k8s.io/*`).
pub fn is_cluster_role(obj: &Value) -> bool {
    kind_of(obj).eq_ignore_ascii_case("clusterrole")
        && api_version_of(obj).starts_with("rbac.authorization.k8s.io/")
}

/// The first apply stage: CRDs, Namespaces and ClusterRoles.
pub fn is_cluster_definition(obj: &Value) -> bool {
    is_crd(obj) || is_namespace(obj) || is_cluster_role(obj)
}

/// The second apply stage: kinds ending in `Class` (StorageClass, IngressClass, ...).
pub fn is_class_definition(obj: &Value) -> bool {
    kind_of(obj).ends_with("Class")
}

/// A Secret (`v1`).
pub fn is_secret(obj: &Value) -> bool {
    kind_of(obj).eq_ignore_ascii_case("secret") && api_version_of(obj) == "v1"
}

/// A Job (`batch/*`).
pub fn is_job(obj: &Value) -> bool {
    kind_of(obj) == "Job" && api_version_of(obj).starts_with("batch/")
}

/// The Jobs with `spec.ttlSecondsAfterFinished` set (any value): a TTL controller deletes them
/// after they finish, so when waiting, their disappearance counts as success
/// (upstream `ExtractJobsWithTTL`).
pub fn jobs_with_ttl(objects: &[Value]) -> Vec<ObjMetadata> {
    objects
        .iter()
        .filter(|o| is_job(o))
        .filter(|o| {
            o.pointer("/spec/ttlSecondsAfterFinished")
                .is_some_and(Value::is_i64)
        })
        .filter_map(|o| ObjMetadata::of(o).ok())
        .collect()
}

/// The kinds applied first, in this order, and the kinds applied last (upstream
/// `ReconcileOrder`); other kinds sit between, ordered by group then kind.
const FIRST: &[&str] = &[
    "CustomResourceDefinition",
    "Namespace",
    "ClusterRole",
    "ClusterClass",
    "RuntimeClass",
    "PriorityClass",
    "StorageClass",
    "VolumeSnapshotClass",
    "IngressClass",
    "GatewayClass",
    "ClusterRoleBinding",
    "ResourceQuota",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ConfigMap",
    "Secret",
    "Service",
    "LimitRange",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
];
const LAST: &[&str] = &[
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

fn kind_index(kind: &str) -> i64 {
    if let Some(i) = FIRST.iter().position(|k| *k == kind) {
        return i as i64 - FIRST.len() as i64;
    }
    if let Some(i) = LAST.iter().position(|k| *k == kind) {
        return 1 + i as i64;
    }
    0
}

/// Orders objects for apply: kind order, then group, kind, namespace, name.
pub fn apply_order(a: &ObjMetadata, b: &ObjMetadata) -> std::cmp::Ordering {
    if a.group == b.group && a.kind == b.kind {
        return (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name));
    }
    (kind_index(&a.kind), &a.group, &a.kind).cmp(&(kind_index(&b.kind), &b.group, &b.kind))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn inventory_ids_round_trip() {
        let d = ObjMetadata::of(&json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "podinfo", "namespace": "flux-system"}}))
        .unwrap();
        assert_eq!(d.inventory_id(), "flux-system_podinfo_apps_Deployment");
        assert_eq!(d.subject(), "Deployment/flux-system/podinfo");
        assert_eq!(
            ObjMetadata::parse_inventory(&d.inventory_id(), "v1").unwrap(),
            d
        );
        let ns = ObjMetadata::of(&json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "flux-system"}}))
        .unwrap();
        assert_eq!(ns.inventory_id(), "_flux-system__Namespace");
        assert_eq!(ns.subject(), "Namespace/flux-system");
        assert_eq!(
            ObjMetadata::parse_inventory("_flux-system__Namespace", "v1").unwrap(),
            ns
        );
        let cr = ObjMetadata::parse_inventory(
            "_system__controller_rbac.authorization.k8s.io_ClusterRole",
            "v1",
        )
        .unwrap();
        assert_eq!(cr.name, "system:controller");
        assert_eq!(
            cr.inventory_id(),
            "_system__controller_rbac.authorization.k8s.io_ClusterRole"
        );
        assert!(ObjMetadata::parse_inventory("nonsense", "v1").is_err());
        assert!(ObjMetadata::of(&json!({"kind": "X"})).is_err());
    }

    #[test]
    fn metadata_selectors_match_labels_or_annotations_case_insensitively() {
        let obj =
            json!({"metadata": {"labels": {"a": "Disabled"}, "annotations": {"b": "ignore"}}});
        let sel = |k: &str, v: &str| BTreeMap::from([(k.to_string(), v.to_string())]);
        assert!(any_in_metadata(&obj, &sel("a", "disabled")));
        assert!(any_in_metadata(&obj, &sel("b", "Ignore")));
        assert!(!any_in_metadata(&obj, &sel("b", "Merge")));
        assert!(!any_in_metadata(&obj, &BTreeMap::new()));
    }

    #[test]
    fn order_puts_crds_and_namespaces_first_and_webhooks_last() {
        let m = |g: &str, k: &str, n: &str| ObjMetadata {
            group: g.into(),
            kind: k.into(),
            name: n.into(),
            ..Default::default()
        };
        let mut v = [
            m(
                "admissionregistration.k8s.io",
                "ValidatingWebhookConfiguration",
                "w",
            ),
            m("example.com", "Widget", "x"),
            m("apps", "Deployment", "d"),
            m("", "Namespace", "b"),
            m("", "Namespace", "a"),
            m("apiextensions.k8s.io", "CustomResourceDefinition", "c"),
        ];
        v.sort_by(apply_order);
        let kinds: Vec<_> = v.iter().map(|o| format!("{}/{}", o.kind, o.name)).collect();
        assert_eq!(
            kinds,
            [
                "CustomResourceDefinition/c",
                "Namespace/a",
                "Namespace/b",
                "Deployment/d",
                "Widget/x",
                "ValidatingWebhookConfiguration/w"
            ]
        );
    }

    #[test]
    fn jobs_with_ttl_are_found() {
        let objs = vec![
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "a", "namespace": "d"}, "spec": {"ttlSecondsAfterFinished": 0}}),
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "b", "namespace": "d"}, "spec": {}}),
        ];
        let got = jobs_with_ttl(&objs);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].name, "a");
    }
}
