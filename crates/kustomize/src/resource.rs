//! Resources, their identities, and the bookkeeping kustomize keeps beside them.

use serde_json::{Map, Value};

/// Group, version and kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Gvk {
    /// API group ("" for the core group).
    pub group: String,
    /// API version.
    pub version: String,
    /// Kind.
    pub kind: String,
}

impl Gvk {
    /// Split an apiVersion into group and version.
    pub fn from_api_version(api_version: &str, kind: &str) -> Gvk {
        let (group, version) = match api_version.rsplit_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), api_version.to_string()),
        };
        Gvk {
            group,
            version,
            kind: kind.to_string(),
        }
    }

    /// The apiVersion text.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// kustomize's `Kind.version.group` text (with `[noGrp]`-style placeholders for empties).
    pub fn id_string(&self) -> String {
        let g = if self.group.is_empty() {
            "[noGrp]"
        } else {
            &self.group
        };
        let v = if self.version.is_empty() {
            "[noVer]"
        } else {
            &self.version
        };
        let k = if self.kind.is_empty() {
            "[noKind]"
        } else {
            &self.kind
        };
        format!("{k}.{v}.{g}")
    }

    /// Does `selector` select this gvk (empty selector fields are wildcards)?
    pub fn is_selected_by(&self, selector: &Gvk) -> bool {
        (selector.group.is_empty() || selector.group == self.group)
            && (selector.version.is_empty() || selector.version == self.version)
            && (selector.kind.is_empty() || selector.kind == self.kind)
    }

    /// Whether kustomize treats this kind as cluster-scoped (its built-in schema).
    pub fn is_cluster_scoped(&self) -> bool {
        is_cluster_scoped(&self.group, &self.version, &self.kind)
    }
}

const CLUSTER_SCOPED: &str = include_str!("tables/clusterscoped.txt");

/// Kinds kustomize's built-in schema marks as not namespaced, by exact apiVersion; kinds
/// it does not know (custom resources, newer APIs) count as namespaced.
fn is_cluster_scoped(group: &str, version: &str, kind: &str) -> bool {
    static TABLE: std::sync::LazyLock<Vec<(&'static str, &'static str, &'static str)>> =
        std::sync::LazyLock::new(|| {
            CLUSTER_SCOPED
                .lines()
                .filter_map(|l| {
                    let mut w = l.split_whitespace();
                    let (av, k) = (w.next()?, w.next()?);
                    let (g, v) = av.rsplit_once('/').unwrap_or(("", av));
                    Some((g, v, k))
                })
                .collect()
        });
    TABLE
        .iter()
        .any(|&(g, v, k)| k == kind && v == version && g == group)
}

/// A resource identity: gvk, name and namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ResId {
    /// Group, version, kind.
    pub gvk: Gvk,
    /// metadata.name
    pub name: String,
    /// metadata.namespace (as written; may be empty)
    pub namespace: String,
}

impl ResId {
    /// "default" for namespaced ids without a namespace, "" for cluster-scoped ones.
    pub fn effective_namespace(&self) -> &str {
        if self.gvk.is_cluster_scoped() {
            "_cluster"
        } else if self.namespace.is_empty() {
            "default"
        } else {
            &self.namespace
        }
    }

    /// Namespaces equal in kustomize's sense (empty equals "default").
    pub fn ns_equals(&self, o: &ResId) -> bool {
        self.effective_namespace() == o.effective_namespace()
    }

    /// kustomize's text form `Kind.version.group/name.namespace`.
    pub fn id_string(&self) -> String {
        let ns = if self.namespace.is_empty() {
            "[noNs]"
        } else {
            &self.namespace
        };
        let name = if self.name.is_empty() {
            "[noName]"
        } else {
            &self.name
        };
        format!("{}/{}.{}", self.gvk.id_string(), name, ns)
    }
}

impl std::fmt::Display for ResId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.id_string())
    }
}

/// How a generated resource combines with an existing one of the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Behavior {
    /// Not generated, or "create": must not collide.
    #[default]
    Create,
    /// Replace the existing resource.
    Replace,
    /// Merge data into the existing resource.
    Merge,
}

/// One resource with kustomize's build bookkeeping kept outside the object.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// The object itself.
    pub obj: Value,
    /// Earlier (kind, name, effective namespace) triples, oldest first.
    pub prev: Vec<(String, String, String)>,
    /// Name prefixes applied, outermost last.
    pub prefixes: Vec<String>,
    /// Name suffixes applied, outermost last.
    pub suffixes: Vec<String>,
    /// Generator behavior (generated resources only).
    pub behavior: Behavior,
    /// Needs a content-hash name suffix at the end of the build.
    pub needs_hash: bool,
    /// Made by a generator.
    pub generated: bool,
    /// Names of vars pointing at this resource.
    pub ref_var_names: Vec<String>,
}

impl Resource {
    /// Wrap an object.
    pub fn new(obj: Value) -> Resource {
        Resource {
            obj,
            prev: Vec::new(),
            prefixes: Vec::new(),
            suffixes: Vec::new(),
            behavior: Behavior::Create,
            needs_hash: false,
            generated: false,
            ref_var_names: Vec::new(),
        }
    }

    fn str_at(&self, path: &[&str]) -> String {
        let mut v = &self.obj;
        for p in path {
            match v.get(p) {
                Some(x) => v = x,
                None => return String::new(),
            }
        }
        match v {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => String::new(),
        }
    }

    /// kind
    pub fn kind(&self) -> String {
        self.str_at(&["kind"])
    }
    /// apiVersion
    pub fn api_version(&self) -> String {
        self.str_at(&["apiVersion"])
    }
    /// metadata.name
    pub fn name(&self) -> String {
        self.str_at(&["metadata", "name"])
    }
    /// metadata.namespace
    pub fn namespace(&self) -> String {
        self.str_at(&["metadata", "namespace"])
    }
    /// Group, version, kind.
    pub fn gvk(&self) -> Gvk {
        Gvk::from_api_version(&self.api_version(), &self.kind())
    }
    /// Current identity.
    pub fn cur_id(&self) -> ResId {
        ResId {
            gvk: self.gvk(),
            name: self.name(),
            namespace: self.namespace(),
        }
    }
    /// Earlier identities, oldest first (not including the current one).
    pub fn prev_ids(&self) -> Vec<ResId> {
        let gvk = self.gvk();
        self.prev
            .iter()
            .map(|(k, n, ns)| ResId {
                gvk: Gvk {
                    group: gvk.group.clone(),
                    version: gvk.version.clone(),
                    kind: k.clone(),
                },
                name: n.clone(),
                namespace: ns.clone(),
            })
            .collect()
    }
    /// The identity the resource was loaded with.
    pub fn org_id(&self) -> ResId {
        self.prev_ids()
            .into_iter()
            .next()
            .unwrap_or_else(|| self.cur_id())
    }
    /// Every identity it has had, current first.
    pub fn all_ids(&self) -> Vec<ResId> {
        let mut v = vec![self.cur_id()];
        v.extend(self.prev_ids());
        v
    }
    /// Remember the current identity before a rename.
    pub fn store_previous_id(&mut self) {
        let id = self.cur_id();
        let ns = if id.namespace.is_empty() && !id.gvk.is_cluster_scoped() {
            "default".to_string()
        } else if id.gvk.is_cluster_scoped() {
            "_cluster".to_string()
        } else {
            id.namespace.clone()
        };
        self.prev.push((id.gvk.kind, id.name, ns));
    }

    /// The build annotations kustomize keeps on the resource while building (removed from
    /// the output): previous ids, prefixes and suffixes, as comma-separated lists.
    pub fn build_annotations(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if !self.prev.is_empty() {
            let join = |f: fn(&(String, String, String)) -> &str| -> String {
                self.prev.iter().map(f).collect::<Vec<_>>().join(",")
            };
            out.push((
                "internal.config.kubernetes.io/previousKinds".to_string(),
                join(|p| &p.0),
            ));
            out.push((
                "internal.config.kubernetes.io/previousNames".to_string(),
                join(|p| &p.1),
            ));
            out.push((
                "internal.config.kubernetes.io/previousNamespaces".to_string(),
                join(|p| &p.2),
            ));
        }
        if !self.prefixes.is_empty() {
            out.push((
                "internal.config.kubernetes.io/prefixes".to_string(),
                self.prefixes.join(","),
            ));
        }
        if !self.suffixes.is_empty() {
            out.push((
                "internal.config.kubernetes.io/suffixes".to_string(),
                self.suffixes.join(","),
            ));
        }
        out
    }

    /// The metadata mapping, created if absent.
    pub fn metadata_mut(&mut self) -> &mut Map<String, Value> {
        let obj = ensure_object(&mut self.obj);
        let md = obj
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        ensure_object(md)
    }

    /// Set metadata.name.
    pub fn set_name(&mut self, name: &str) {
        self.metadata_mut()
            .insert("name".into(), Value::String(name.to_string()));
    }

    /// Set metadata.namespace (removing it when empty).
    pub fn set_namespace(&mut self, ns: &str) {
        let md = self.metadata_mut();
        if ns.is_empty() {
            md.remove("namespace");
        } else {
            md.insert("namespace".into(), Value::String(ns.to_string()));
        }
    }

    /// A string map under metadata (labels or annotations).
    pub fn meta_map(&self, field: &str) -> Map<String, Value> {
        self.obj
            .get("metadata")
            .and_then(|m| m.get(field))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    }

    /// Do the prefixes and suffixes agree with another resource's (kustomize's rule)?
    pub fn prefixes_suffixes_equal(&self, o: &Resource, allow_empty: bool) -> bool {
        if allow_empty {
            let pe = self.prefixes.is_empty() || o.prefixes.is_empty();
            let se = self.suffixes.is_empty() || o.suffixes.is_empty();
            (pe || same_ending(&self.prefixes, &o.prefixes))
                && (se || same_ending(&self.suffixes, &o.suffixes))
        } else {
            same_ending(&self.prefixes, &o.prefixes) && same_ending(&self.suffixes, &o.suffixes)
        }
    }
}

fn same_ending(a: &[String], b: &[String]) -> bool {
    let (short, long) = if a.len() > b.len() { (b, a) } else { (a, b) };
    let diff = long.len() - short.len();
    if short.is_empty() {
        return diff == 0;
    }
    (0..short.len()).all(|i| long[i + diff] == short[i])
}

/// Turn a value into an object if it is not one, and return the map.
pub fn ensure_object(v: &mut Value) -> &mut Map<String, Value> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    match v {
        Value::Object(m) => m,
        _ => unreachable!("just made an object"),
    }
}

/// The text kustomize gives an annotation value when it reads annotations as a string map:
/// scalars as written (null as "null"), mappings and sequences as "".
pub fn annotation_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(_) => crate::yaml::emit::number_text_or(v),
        Value::Array(_) | Value::Object(_) => String::new(),
    }
}

/// Rewrite `metadata.annotations` as kustomize's GetAnnotations/SetAnnotations round trip
/// does: values become strings, and a map that is empty, null or not a map goes.
pub fn normalize_annotations(md: &mut Map<String, Value>) {
    normalize_meta_map(md, "annotations");
}

/// The string-map round trip of `metadata.<field>` (labels or annotations).
pub fn normalize_meta_map(md: &mut Map<String, Value>, field: &str) {
    match md.get_mut(field) {
        None => {}
        Some(Value::Object(m)) if !m.is_empty() => {
            for v in m.values_mut() {
                if !v.is_string() {
                    *v = Value::String(annotation_text(v));
                }
            }
        }
        Some(_) => {
            md.remove(field);
        }
    }
}

/// A strategic-merge patch as kustomize applies it to a selected set of resources (a copy
/// with its labels and annotations read and written back as string maps).
pub fn normalized_patch(patch: &Value) -> Value {
    let mut p = patch.clone();
    if let Some(md) = p.get_mut("metadata").and_then(Value::as_object_mut) {
        normalize_meta_map(md, "labels");
        normalize_meta_map(md, "annotations");
    }
    p
}
