//! The resource table: built-in kinds (static) and custom kinds (from CRDs, dynamic).

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Group + resource: the storage bucket of an object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Gr {
    pub group: String,
    pub resource: String,
}

impl Gr {
    pub fn new(group: &str, resource: &str) -> Self {
        Gr {
            group: group.to_string(),
            resource: resource.to_string(),
        }
    }
}

/// Where the scale subresource reads and writes.
#[derive(Debug, Clone)]
pub struct ScaleSpec {
    pub spec_replicas: String,
    pub status_replicas: String,
    pub label_selector: Option<String>,
}

/// One served resource at one version.
#[derive(Debug, Clone)]
pub struct ResourceDef {
    pub group: String,
    pub version: String,
    pub resource: String,
    pub kind: String,
    pub list_kind: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub verbs: Vec<&'static str>,
    pub status: bool,
    pub scale: Option<ScaleSpec>,
    /// metadata.generation is maintained.
    pub generation: bool,
    /// Custom resource (from a CRD): schema handling applies, SMP is refused.
    pub custom: bool,
    /// The version whose apiVersion stored objects carry.
    pub storage_version: String,
    /// openAPIV3Schema of this version (custom kinds only).
    pub schema: Option<Arc<Value>>,
    /// additionalPrinterColumns (custom kinds only).
    pub printer_columns: Vec<Value>,
    /// Extra subresources served (e.g. `token` for serviceaccounts).
    pub extra_sub: Vec<&'static str>,
}

impl ResourceDef {
    /// Where objects are stored: events.k8s.io/v1 events are a view of core/v1 events.
    pub fn gr(&self) -> Gr {
        if self.is_event_view() {
            return Gr::new("", "events");
        }
        Gr::new(&self.group, &self.resource)
    }
    pub fn is_event_view(&self) -> bool {
        self.group == "events.k8s.io" && self.resource == "events"
    }
    /// A create-only review API (access reviews, token reviews): nothing is stored.
    pub fn is_review(&self) -> bool {
        self.verbs == ["create"]
    }
    /// Stored objects need converting before they are shown at this version.
    pub fn converts(&self) -> bool {
        (self.custom && self.version != self.storage_version) || self.is_event_view()
    }
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

const RW: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

struct B {
    gv: &'static str,
    resource: &'static str,
    kind: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    status: bool,
    scale: bool,
    generation: bool,
    all: bool,
}

fn builtin_list() -> Vec<B> {
    let b = |gv, resource, kind, namespaced, short, status, scale, generation, all| B {
        gv,
        resource,
        kind,
        namespaced,
        short,
        status,
        scale,
        generation,
        all,
    };
    vec![
        b(
            "v1",
            "namespaces",
            "Namespace",
            false,
            &["ns"],
            true,
            false,
            false,
            false,
        ),
        b(
            "v1",
            "configmaps",
            "ConfigMap",
            true,
            &["cm"],
            false,
            false,
            false,
            false,
        ),
        b(
            "v1",
            "secrets",
            "Secret",
            true,
            &[],
            false,
            false,
            false,
            false,
        ),
        b(
            "v1",
            "serviceaccounts",
            "ServiceAccount",
            true,
            &["sa"],
            false,
            false,
            false,
            false,
        ),
        b(
            "v1",
            "services",
            "Service",
            true,
            &["svc"],
            true,
            false,
            false,
            true,
        ),
        b(
            "v1",
            "endpoints",
            "Endpoints",
            true,
            &["ep"],
            false,
            false,
            false,
            false,
        ),
        b("v1", "pods", "Pod", true, &["po"], true, false, false, true),
        b(
            "v1",
            "persistentvolumeclaims",
            "PersistentVolumeClaim",
            true,
            &["pvc"],
            true,
            false,
            false,
            false,
        ),
        b(
            "v1",
            "persistentvolumes",
            "PersistentVolume",
            false,
            &["pv"],
            true,
            false,
            false,
            false,
        ),
        b(
            "v1",
            "events",
            "Event",
            true,
            &["ev"],
            false,
            false,
            false,
            false,
        ),
        b(
            "v1",
            "nodes",
            "Node",
            false,
            &["no"],
            true,
            false,
            false,
            false,
        ),
        b(
            "v1",
            "limitranges",
            "LimitRange",
            true,
            &["limits"],
            false,
            false,
            false,
            false,
        ),
        b(
            "v1",
            "resourcequotas",
            "ResourceQuota",
            true,
            &["quota"],
            true,
            false,
            false,
            false,
        ),
        b(
            "v1",
            "replicationcontrollers",
            "ReplicationController",
            true,
            &["rc"],
            true,
            true,
            true,
            true,
        ),
        b(
            "apps/v1",
            "deployments",
            "Deployment",
            true,
            &["deploy"],
            true,
            true,
            true,
            true,
        ),
        b(
            "apps/v1",
            "statefulsets",
            "StatefulSet",
            true,
            &["sts"],
            true,
            true,
            true,
            true,
        ),
        b(
            "apps/v1",
            "daemonsets",
            "DaemonSet",
            true,
            &["ds"],
            true,
            false,
            true,
            true,
        ),
        b(
            "apps/v1",
            "replicasets",
            "ReplicaSet",
            true,
            &["rs"],
            true,
            true,
            true,
            true,
        ),
        b(
            "apps/v1",
            "controllerrevisions",
            "ControllerRevision",
            true,
            &[],
            false,
            false,
            false,
            false,
        ),
        b(
            "batch/v1",
            "jobs",
            "Job",
            true,
            &[],
            true,
            false,
            true,
            true,
        ),
        b(
            "batch/v1",
            "cronjobs",
            "CronJob",
            true,
            &["cj"],
            true,
            false,
            true,
            true,
        ),
        b(
            "networking.k8s.io/v1",
            "ingresses",
            "Ingress",
            true,
            &["ing"],
            true,
            false,
            true,
            false,
        ),
        b(
            "networking.k8s.io/v1",
            "networkpolicies",
            "NetworkPolicy",
            true,
            &["netpol"],
            false,
            false,
            true,
            false,
        ),
        b(
            "networking.k8s.io/v1",
            "ingressclasses",
            "IngressClass",
            false,
            &[],
            false,
            false,
            true,
            false,
        ),
        b(
            "discovery.k8s.io/v1",
            "endpointslices",
            "EndpointSlice",
            true,
            &[],
            false,
            false,
            false,
            false,
        ),
        b(
            "rbac.authorization.k8s.io/v1",
            "roles",
            "Role",
            true,
            &[],
            false,
            false,
            false,
            false,
        ),
        b(
            "rbac.authorization.k8s.io/v1",
            "rolebindings",
            "RoleBinding",
            true,
            &[],
            false,
            false,
            false,
            false,
        ),
        b(
            "rbac.authorization.k8s.io/v1",
            "clusterroles",
            "ClusterRole",
            false,
            &[],
            false,
            false,
            false,
            false,
        ),
        b(
            "rbac.authorization.k8s.io/v1",
            "clusterrolebindings",
            "ClusterRoleBinding",
            false,
            &[],
            false,
            false,
            false,
            false,
        ),
        b(
            "autoscaling/v2",
            "horizontalpodautoscalers",
            "HorizontalPodAutoscaler",
            true,
            &["hpa"],
            true,
            false,
            true,
            true,
        ),
        b(
            "policy/v1",
            "poddisruptionbudgets",
            "PodDisruptionBudget",
            true,
            &["pdb"],
            true,
            false,
            true,
            false,
        ),
        b(
            "scheduling.k8s.io/v1",
            "priorityclasses",
            "PriorityClass",
            false,
            &["pc"],
            false,
            false,
            false,
            false,
        ),
        b(
            "storage.k8s.io/v1",
            "storageclasses",
            "StorageClass",
            false,
            &["sc"],
            false,
            false,
            false,
            false,
        ),
        b(
            "admissionregistration.k8s.io/v1",
            "mutatingwebhookconfigurations",
            "MutatingWebhookConfiguration",
            false,
            &[],
            false,
            false,
            true,
            false,
        ),
        b(
            "admissionregistration.k8s.io/v1",
            "validatingwebhookconfigurations",
            "ValidatingWebhookConfiguration",
            false,
            &[],
            false,
            false,
            true,
            false,
        ),
        b(
            "apiextensions.k8s.io/v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            false,
            &["crd", "crds"],
            true,
            false,
            true,
            false,
        ),
        b(
            "coordination.k8s.io/v1",
            "leases",
            "Lease",
            true,
            &[],
            false,
            false,
            false,
            false,
        ),
        b(
            "events.k8s.io/v1",
            "events",
            "Event",
            true,
            &["ev"],
            false,
            false,
            false,
            false,
        ),
    ]
}

fn split_gv(gv: &str) -> (String, String) {
    match gv.split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), gv.to_string()),
    }
}

fn builtins() -> Vec<ResourceDef> {
    builtin_list()
        .into_iter()
        .map(|b| {
            let (group, version) = split_gv(b.gv);
            let scale = b.scale.then(|| ScaleSpec {
                spec_replicas: ".spec.replicas".into(),
                status_replicas: ".status.replicas".into(),
                label_selector: Some(".status.selector".into()),
            });
            ResourceDef {
                storage_version: version.clone(),
                group,
                version,
                resource: b.resource.to_string(),
                kind: b.kind.to_string(),
                list_kind: format!("{}List", b.kind),
                singular: b.kind.to_lowercase(),
                namespaced: b.namespaced,
                short_names: b.short.iter().map(|s| s.to_string()).collect(),
                categories: if b.all {
                    vec!["all".to_string()]
                } else {
                    vec![]
                },
                verbs: RW.to_vec(),
                status: b.status,
                scale,
                generation: b.generation,
                custom: false,
                schema: None,
                printer_columns: vec![],
                extra_sub: if b.resource == "serviceaccounts" {
                    vec!["token"]
                } else {
                    vec![]
                },
            }
        })
        .collect()
}

/// All served resources, indexed for routing and discovery.
#[derive(Debug, Clone)]
pub struct Registry {
    /// (group, version, resource) -> def
    defs: BTreeMap<(String, String, String), Arc<ResourceDef>>,
    /// CRD name -> its defs
    crds: BTreeMap<String, Vec<(String, String, String)>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    pub fn new() -> Self {
        let mut defs = BTreeMap::new();
        let mut all = builtins();
        // create-only review APIs, answered without storing anything
        for (gv, resource, kind) in [
            (
                "authorization.k8s.io/v1",
                "selfsubjectaccessreviews",
                "SelfSubjectAccessReview",
            ),
            (
                "authorization.k8s.io/v1",
                "subjectaccessreviews",
                "SubjectAccessReview",
            ),
            ("authentication.k8s.io/v1", "tokenreviews", "TokenReview"),
            (
                "authentication.k8s.io/v1",
                "selfsubjectreviews",
                "SelfSubjectReview",
            ),
        ] {
            let (group, version) = split_gv(gv);
            all.push(ResourceDef {
                storage_version: version.clone(),
                group,
                version,
                resource: resource.to_string(),
                kind: kind.to_string(),
                list_kind: format!("{kind}List"),
                singular: kind.to_lowercase(),
                namespaced: false,
                short_names: vec![],
                categories: vec![],
                verbs: vec!["create"],
                status: false,
                scale: None,
                generation: false,
                custom: false,
                schema: None,
                printer_columns: vec![],
                extra_sub: vec![],
            });
        }
        for d in all {
            defs.insert(
                (d.group.clone(), d.version.clone(), d.resource.clone()),
                Arc::new(d),
            );
        }
        Registry {
            defs,
            crds: BTreeMap::new(),
        }
    }

    pub fn get(&self, group: &str, version: &str, resource: &str) -> Option<Arc<ResourceDef>> {
        self.defs
            .get(&(group.to_string(), version.to_string(), resource.to_string()))
            .cloned()
    }

    /// The def at its storage version for a bucket.
    pub fn storage(&self, gr: &Gr) -> Option<Arc<ResourceDef>> {
        self.defs
            .values()
            .find(|d| {
                d.group == gr.group && d.resource == gr.resource && d.version == d.storage_version
            })
            .cloned()
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<ResourceDef>> {
        self.defs.values()
    }

    /// Groups with their versions, core group excluded, in a stable order (built-ins first).
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = vec![];
        for d in self.defs.values() {
            if d.group.is_empty() {
                continue;
            }
            match out.iter_mut().find(|(g, _)| *g == d.group) {
                Some((_, vs)) => {
                    if !vs.contains(&d.version) {
                        vs.push(d.version.clone());
                    }
                }
                None => out.push((d.group.clone(), vec![d.version.clone()])),
            }
        }
        // preferred (storage) version first
        for (g, vs) in out.iter_mut() {
            if let Some(pref) = self
                .defs
                .values()
                .find(|d| &d.group == g)
                .map(|d| d.storage_version.clone())
                && let Some(pos) = vs.iter().position(|v| *v == pref)
            {
                let v = vs.remove(pos);
                vs.insert(0, v);
            }
        }
        out
    }

    pub fn resources_in(&self, group: &str, version: &str) -> Vec<Arc<ResourceDef>> {
        self.defs
            .values()
            .filter(|d| d.group == group && d.version == version)
            .cloned()
            .collect()
    }

    /// Does any served resource (other than the CRD `except`) use this group and plural?
    pub fn name_taken(&self, group: &str, plural: &str, kind: &str, except: &str) -> bool {
        let owned: Vec<&(String, String, String)> = self
            .crds
            .get(except)
            .map(|v| v.iter().collect())
            .unwrap_or_default();
        self.defs.iter().any(|(k, d)| {
            !owned.contains(&k) && d.group == group && (d.resource == plural || d.kind == kind)
        })
    }

    /// Registers (or replaces) the kinds of an established CRD.
    pub fn add_crd(&mut self, crd: &Value) {
        let name = crd
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        self.remove_crd(&name);
        let spec = &crd["spec"];
        let group = spec["group"].as_str().unwrap_or_default().to_string();
        let names = &spec["names"];
        let kind = names["kind"].as_str().unwrap_or_default().to_string();
        let plural = names["plural"].as_str().unwrap_or_default().to_string();
        let singular = names["singular"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| kind.to_lowercase());
        let list_kind = names["listKind"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("{kind}List"));
        let strs = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let short_names = strs(&names["shortNames"]);
        let categories = strs(&names["categories"]);
        let namespaced = spec["scope"].as_str() != Some("Cluster");
        let versions = spec["versions"].as_array().cloned().unwrap_or_default();
        let storage_version = versions
            .iter()
            .find(|v| v["storage"].as_bool() == Some(true))
            .and_then(|v| v["name"].as_str())
            .unwrap_or_default()
            .to_string();
        let mut keys = vec![];
        for v in &versions {
            if v["served"].as_bool() == Some(false) {
                continue;
            }
            let version = v["name"].as_str().unwrap_or_default().to_string();
            let subs = &v["subresources"];
            let scale = subs.get("scale").and_then(|s| {
                Some(ScaleSpec {
                    spec_replicas: s["specReplicasPath"].as_str()?.to_string(),
                    status_replicas: s["statusReplicasPath"].as_str()?.to_string(),
                    label_selector: s["labelSelectorPath"].as_str().map(str::to_string),
                })
            });
            let def = ResourceDef {
                group: group.clone(),
                version: version.clone(),
                resource: plural.clone(),
                kind: kind.clone(),
                list_kind: list_kind.clone(),
                singular: singular.clone(),
                namespaced,
                short_names: short_names.clone(),
                categories: categories.clone(),
                verbs: RW.to_vec(),
                status: subs.get("status").is_some(),
                scale,
                generation: true,
                custom: true,
                storage_version: storage_version.clone(),
                schema: v.pointer("/schema/openAPIV3Schema").cloned().map(Arc::new),
                printer_columns: v["additionalPrinterColumns"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
                extra_sub: vec![],
            };
            let key = (group.clone(), version, plural.clone());
            self.defs.insert(key.clone(), Arc::new(def));
            keys.push(key);
        }
        self.crds.insert(name, keys);
    }

    pub fn remove_crd(&mut self, name: &str) {
        if let Some(keys) = self.crds.remove(name) {
            for k in keys {
                self.defs.remove(&k);
            }
        }
    }
}

/// The discovery document of one resource.
pub fn api_resource_json(d: &ResourceDef) -> Vec<Value> {
    let mut out = vec![json!({
        "name": d.resource,
        "singularName": d.singular,
        "namespaced": d.namespaced,
        "kind": d.kind,
        "verbs": d.verbs,
        "shortNames": d.short_names,
        "categories": d.categories,
        "storageVersionHash": "",
    })];
    if d.short_names.is_empty()
        && let Some(o) = out[0].as_object_mut()
    {
        o.remove("shortNames");
    }
    if d.categories.is_empty()
        && let Some(o) = out[0].as_object_mut()
    {
        o.remove("categories");
    }
    if d.status {
        out.push(json!({"name": format!("{}/status", d.resource), "singularName": "", "namespaced": d.namespaced,
            "kind": d.kind, "verbs": ["get", "patch", "update"]}));
    }
    if d.scale.is_some() {
        out.push(json!({"name": format!("{}/scale", d.resource), "singularName": "", "namespaced": d.namespaced,
            "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}));
    }
    for s in &d.extra_sub {
        if *s == "token" {
            out.push(json!({"name": format!("{}/token", d.resource), "singularName": "", "namespaced": d.namespaced,
                "group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest", "verbs": ["create"]}));
        }
    }
    if d.resource == "namespaces" {
        out.push(json!({"name": "namespaces/finalize", "singularName": "", "namespaced": false, "kind": "Namespace", "verbs": ["update"]}));
    }
    out
}
