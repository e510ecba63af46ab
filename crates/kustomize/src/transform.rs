//! The built-in transformers.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::Error;
use crate::build::field_specs_apply;
use crate::config::NameBackRefs;
use crate::fieldspec::{CreateKind, FieldSpec};
use crate::kustfile::{Image, Selector, Var};
use crate::resource::{Gvk, ResId, Resource};

fn berr(m: impl std::fmt::Display) -> Error {
    Error::Build(m.to_string())
}

/// kustomize's NamespaceTransformer.
pub fn namespace(
    resources: &mut [Resource],
    ns: &str,
    specs: &[FieldSpec],
    unset_only: bool,
    mode: &str,
) -> Result<(), Error> {
    let set = |v: &mut Value| -> Result<(), String> {
        if unset_only && !(v.is_null() || v.as_str() == Some("")) {
            return Ok(());
        }
        *v = Value::String(ns.to_string());
        Ok(())
    };
    for r in resources.iter_mut() {
        if !r.obj.is_object() {
            continue;
        }
        r.store_previous_id();
        let gvk = r.gvk();
        let api_version = r.api_version();
        if !gvk.is_cluster_scoped() {
            let mut s = set;
            crate::fieldspec::apply(
                &mut r.obj,
                &FieldSpec::any("metadata/namespace", true),
                CreateKind::Scalar,
                &mut s,
            )
            .map_err(berr)?;
        }
        let mut specs: Vec<FieldSpec> = specs
            .iter()
            .filter(|f| {
                f.path != "metadata/namespace"
                    && !(api_version != "v1" && f.path == "metadata/name")
            })
            .cloned()
            .collect();
        if gvk.kind == "RoleBinding" || gvk.kind == "ClusterRoleBinding" {
            specs.retain(|f| {
                !((f.kind == "RoleBinding" || f.kind == "ClusterRoleBinding")
                    && f.path == "subjects/namespace")
            });
            if mode != "none"
                && let Some(Value::Array(subjects)) = r.obj.get_mut("subjects")
            {
                for s in subjects.iter_mut() {
                    let Some(m) = s.as_object_mut() else { continue };
                    let hit = match mode {
                        "allServiceAccounts" => {
                            m.get("kind").and_then(Value::as_str) == Some("ServiceAccount")
                        }
                        "defaultOnly" | "" => {
                            m.get("name").and_then(Value::as_str) == Some("default")
                        }
                        other => {
                            return Err(berr(format!(
                                "invalid value {other:?} for setRoleBindingSubjects"
                            )));
                        }
                    };
                    if hit {
                        let cur = m.entry("namespace").or_insert(Value::Null);
                        let s = set;
                        s(cur).map_err(berr)?;
                    }
                }
            }
        }
        let mut s = set;
        field_specs_apply(r, &specs, CreateKind::Scalar, &mut s)
            .map_err(|m| berr(format!("namespace transformation failed: {m}")))?;
    }
    check_unique(resources, "namespace transformation produces ID conflict")
}

fn check_unique(resources: &[Resource], what: &str) -> Result<(), Error> {
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for r in resources {
        let id = r.cur_id();
        let key = format!(
            "{}|{}|{}",
            id.gvk.id_string(),
            id.name,
            id.effective_namespace()
        );
        if !seen.insert(key) {
            return Err(berr(format!("{what}: {id}")));
        }
    }
    Ok(())
}

/// kustomize's PrefixTransformer / SuffixTransformer.
pub fn prefix_suffix(
    resources: &mut [Resource],
    prefix: &str,
    suffix: &str,
    specs: &[FieldSpec],
) -> Result<(), Error> {
    for r in resources.iter_mut() {
        let gvk = r.gvk();
        for fs in specs {
            if !fs.applies_to(&gvk) {
                continue;
            }
            if fs.path == "metadata/name" {
                if skip_name_change(&gvk) {
                    continue;
                }
                r.store_previous_id();
                if !prefix.is_empty() {
                    r.prefixes.push(prefix.to_string());
                }
                if !suffix.is_empty() {
                    r.suffixes.push(suffix.to_string());
                }
            }
            let mut set = |v: &mut Value| -> Result<(), String> {
                if let Value::String(s) = v {
                    *s = format!("{prefix}{s}{suffix}");
                }
                Ok(())
            };
            crate::fieldspec::apply(&mut r.obj, fs, CreateKind::None, &mut set).map_err(berr)?;
        }
    }
    Ok(())
}

/// Kinds whose names the prefix/suffix transformer leaves alone.
fn skip_name_change(gvk: &Gvk) -> bool {
    gvk.kind == "CustomResourceDefinition" || gvk.kind == "APIService" || gvk.kind == "Namespace"
}

/// Set string entries in the mappings the field specs name (labels, annotations).
pub fn set_map_entries(
    resources: &mut [Resource],
    pairs: &BTreeMap<String, String>,
    specs: &[FieldSpec],
) -> Result<(), Error> {
    if pairs.is_empty() {
        return Ok(());
    }
    for r in resources.iter_mut() {
        let id = r.cur_id();
        let mut set = |v: &mut Value| -> Result<(), String> {
            if v.is_null() {
                *v = Value::Object(Map::new());
            }
            let Value::Object(m) = v else {
                return Err("expected a mapping for labels or annotations".to_string());
            };
            for (k, val) in pairs {
                m.insert(k.clone(), Value::String(val.clone()));
            }
            Ok(())
        };
        field_specs_apply(r, specs, CreateKind::Map, &mut set)
            .map_err(|m| berr(format!("{id}: {m}")))?;
    }
    Ok(())
}

/// Split an image reference into name, tag and digest as kustomize does.
pub fn split_image(image: &str) -> (String, String, String) {
    let (search, offset) = match image.find('/') {
        Some(i) if i > 0 => (&image[i..], i),
        _ => (image, 0),
    };
    let id = search.find('@');
    let ic = search.find(':');
    match (ic, id) {
        (None, None) => (image.to_string(), String::new(), String::new()),
        (ic, Some(d)) if ic.is_none() || Some(d) < ic => {
            let d = d + offset;
            (
                image[..d].to_string(),
                String::new(),
                image[d + 1..].to_string(),
            )
        }
        (Some(c), Some(d)) => {
            let (c, d) = (c + offset, d + offset);
            (
                image[..c].to_string(),
                image[c + 1..d].to_string(),
                image[d + 1..].to_string(),
            )
        }
        (Some(c), None) => {
            let c = c + offset;
            (
                image[..c].to_string(),
                image[c + 1..].to_string(),
                String::new(),
            )
        }
        _ => (image.to_string(), String::new(), String::new()),
    }
}

fn update_image(value: &str, img: &Image) -> Option<String> {
    let (mut name, mut tag, mut digest) = split_image(value);
    if name != img.name {
        return None;
    }
    if !img.new_name.is_empty() {
        name = img.new_name.clone();
    }
    if !img.new_tag.is_empty() && !img.digest.is_empty() {
        tag = img.new_tag.clone();
        digest = img.digest.clone();
    } else if !img.new_tag.is_empty() {
        tag = img.new_tag.clone();
        digest.clear();
    } else if !img.digest.is_empty() {
        tag.clear();
        digest = img.digest.clone();
    }
    if !img.tag_suffix.is_empty() {
        tag.push_str(&img.tag_suffix);
    }
    let mut out = name;
    if !tag.is_empty() {
        out.push(':');
        out.push_str(&tag);
    }
    if !digest.is_empty() {
        out.push('@');
        out.push_str(&digest);
    }
    Some(out)
}

fn legacy_images(v: &mut Value, img: &Image) {
    match v {
        Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                if (k == "containers" || k == "initContainers")
                    && let Value::Array(items) = child
                {
                    for it in items.iter_mut() {
                        if let Some(Value::String(s)) = it.get_mut("image")
                            && let Some(n) = update_image(s, img)
                        {
                            *s = n;
                        }
                    }
                }
                legacy_images(child, img);
            }
        }
        Value::Array(a) => {
            for x in a.iter_mut() {
                legacy_images(x, img);
            }
        }
        _ => {}
    }
}

/// kustomize's ImageTagTransformer.
pub fn images(resources: &mut [Resource], img: &Image, specs: &[FieldSpec]) -> Result<(), Error> {
    for r in resources.iter_mut() {
        legacy_images(&mut r.obj, img);
        let mut set = |v: &mut Value| -> Result<(), String> {
            if let Value::String(s) = v
                && let Some(n) = update_image(s, img)
            {
                *s = n;
            }
            Ok(())
        };
        let gvk = r.gvk();
        for fs in specs {
            if fs.applies_to(&gvk) {
                let no_create = FieldSpec {
                    create: false,
                    ..fs.clone()
                };
                crate::fieldspec::apply(&mut r.obj, &no_create, CreateKind::None, &mut set)
                    .map_err(berr)?;
            }
        }
    }
    Ok(())
}

/// kustomize's ReplicaCountTransformer.
pub fn replicas(
    resources: &mut [Resource],
    name: &str,
    count: i64,
    specs: &[FieldSpec],
) -> Result<(), Error> {
    let mut found = false;
    for r in resources.iter_mut() {
        if !r.all_ids().iter().any(|i| i.name == name) {
            continue;
        }
        let gvk = r.gvk();
        for fs in specs {
            if fs.applies_to(&gvk) {
                found = true;
                let mut set = |v: &mut Value| -> Result<(), String> {
                    *v = Value::from(count);
                    Ok(())
                };
                crate::fieldspec::apply(&mut r.obj, fs, CreateKind::Scalar, &mut set)
                    .map_err(berr)?;
            }
        }
    }
    if !found {
        return Err(berr(format!(
            "resource with name {name} does not match a config with the following GVK"
        )));
    }
    Ok(())
}

/// Go's RE2 reads a `{` that does not start a repetition (`{2}`, `{2,}`, `{2,3}`) as a
/// literal; escape those for Rust's regex.
fn go_regex_braces(p: &str) -> String {
    let b = p.as_bytes();
    let mut out = String::with_capacity(p.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'\\' && i + 1 < b.len() {
            out.push_str(&p[i..i + 2]);
            i += 2;
            continue;
        }
        if c == b'{' {
            let rest = &p[i + 1..];
            let close = rest.find('}');
            let valid = close.is_some_and(|j| {
                let inner = &rest[..j];
                let (a, z) = inner.split_once(',').unwrap_or((inner, "0"));
                !a.is_empty()
                    && a.bytes().all(|d| d.is_ascii_digit())
                    && z.bytes().all(|d| d.is_ascii_digit())
            });
            if !valid {
                out.push_str("\\{");
                i += 1;
                continue;
            }
        }
        if c == b'}' && !out.ends_with(|ch: char| ch.is_ascii_digit() || ch == ',') {
            out.push_str("\\}");
            i += 1;
            continue;
        }
        let ch = p[i..].chars().next().unwrap_or('\0');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

fn full_regex(p: &str) -> Result<regex::Regex, Error> {
    regex::Regex::new(&format!("^(?:{})$", go_regex_braces(p)))
        .map_err(|e| berr(format!("invalid regex {p:?} in patch target: {e}")))
}

/// Does a Kubernetes label selector match a label map?
pub fn selector_matches(sel: &str, labels: &Map<String, Value>) -> Result<bool, Error> {
    let get = |k: &str| labels.get(k).and_then(Value::as_str);
    // split on commas outside parentheses
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    for c in sel.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    parts.push(cur);
    for p in parts {
        let p = p.trim();
        if p.is_empty() {
            continue;
        }
        let ok = if let Some((k, v)) = p.split_once("!=") {
            get(k.trim()) != Some(v.trim())
        } else if let Some((k, v)) = p.split_once("==") {
            get(k.trim()) == Some(v.trim())
        } else if let Some((k, v)) = p.split_once('=') {
            get(k.trim()) == Some(v.trim())
        } else if let Some((k, rest)) = p.split_once(" notin ") {
            let set = set_of(rest)?;
            get(k.trim()).is_none_or(|v| !set.contains(&v.to_string()))
        } else if let Some((k, rest)) = p.split_once(" in ") {
            let set = set_of(rest)?;
            get(k.trim()).is_some_and(|v| set.contains(&v.to_string()))
        } else if let Some(k) = p.strip_prefix('!') {
            get(k.trim()).is_none()
        } else {
            get(p).is_some()
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn set_of(s: &str) -> Result<Vec<String>, Error> {
    let s = s.trim();
    let inner = s
        .strip_prefix('(')
        .and_then(|x| x.strip_suffix(')'))
        .ok_or_else(|| berr(format!("invalid label selector set {s:?}")))?;
    Ok(inner.split(',').map(|x| x.trim().to_string()).collect())
}

/// Indices of resources a patch target selects.
pub fn select(resources: &[Resource], sel: &Selector) -> Result<Vec<usize>, Error> {
    let name_re = if sel.name.is_empty() {
        None
    } else {
        Some(full_regex(&sel.name)?)
    };
    let ns_re = if sel.namespace.is_empty() {
        None
    } else {
        Some(full_regex(&sel.namespace)?)
    };
    let opt_re = |p: &str| -> Result<Option<regex::Regex>, Error> {
        if p.is_empty() {
            Ok(None)
        } else {
            full_regex(p).map(Some)
        }
    };
    let (group_re, version_re, kind_re) = (
        opt_re(&sel.group)?,
        opt_re(&sel.version)?,
        opt_re(&sel.kind)?,
    );
    let mut out = Vec::new();
    for (i, r) in resources.iter().enumerate() {
        let cur = r.cur_id();
        let org = r.org_id();
        if let Some(re) = &ns_re
            && !re.is_match(org.effective_namespace())
            && !re.is_match(cur.effective_namespace())
        {
            continue;
        }
        if let Some(re) = &name_re
            && !re.is_match(&org.name)
            && !re.is_match(&cur.name)
        {
            continue;
        }
        let gvk = r.gvk();
        let gvk_ok = [
            (&group_re, &gvk.group),
            (&version_re, &gvk.version),
            (&kind_re, &gvk.kind),
        ]
        .iter()
        .all(|(re, v)| re.as_ref().is_none_or(|re| re.is_match(v)));
        if !gvk_ok {
            continue;
        }
        if !sel.label_selector.is_empty()
            && !selector_matches(&sel.label_selector, &r.meta_map("labels"))?
        {
            continue;
        }
        if !sel.annotation_selector.is_empty()
            && !selector_matches(&sel.annotation_selector, &r.meta_map("annotations"))?
        {
            continue;
        }
        out.push(i);
    }
    Ok(out)
}

fn patch_id(patch: &Value) -> ResId {
    let r = Resource::new(patch.clone());
    r.cur_id()
}

fn smp_onto(
    r: &mut Resource,
    patch: &Value,
    allow_name: bool,
    allow_kind: bool,
    schema: Option<&Value>,
) -> Result<bool, Error> {
    let (name, ns, kind) = (r.name(), r.namespace(), r.kind());
    let api_version = r.obj.get("apiVersion").cloned();
    if allow_name || allow_kind {
        r.store_previous_id();
    }
    let keep = crate::patch::strategic_merge(&mut r.obj, patch, schema).map_err(berr)?;
    if !keep || r.obj.as_object().is_none_or(|m| m.is_empty()) {
        return Ok(false);
    }
    if !allow_kind && let Some(o) = r.obj.as_object_mut() {
        o.insert("kind".into(), Value::String(kind));
        match api_version {
            Some(v) => {
                o.insert("apiVersion".into(), v);
            }
            None => {
                o.remove("apiVersion");
            }
        }
    }
    if !allow_name {
        r.set_name(&name);
    }
    r.set_namespace(&ns);
    Ok(true)
}

/// Apply a strategic-merge patch to the resource whose id it names.
pub fn apply_smp_by_id(
    resources: &mut Vec<Resource>,
    patch: &Value,
    schema: Option<&Value>,
    ctx: &str,
) -> Result<(), Error> {
    let id = patch_id(patch);
    let hits: Vec<usize> = resources
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            r.all_ids()
                .iter()
                .any(|i| i.gvk == id.gvk && i.name == id.name && i.ns_equals(&id))
        })
        .map(|(i, _)| i)
        .collect();
    if hits.len() != 1 {
        return Err(berr(format!(
            "{ctx}: no matches for Id {id}; failed to find unique target for patch {id}"
        )));
    }
    let i = hits[0];
    let patch = &crate::resource::normalized_patch(patch);
    if !smp_onto(&mut resources[i], patch, false, false, schema)? {
        resources.remove(i);
    }
    Ok(())
}

/// kustomize's PatchTransformer.
pub fn apply_patch(
    resources: &mut Vec<Resource>,
    text: &str,
    target: Option<&Selector>,
    allow_name: bool,
    allow_kind: bool,
    schema: Option<&Value>,
    ctx: &str,
) -> Result<(), Error> {
    let docs = crate::yaml::parse_documents(text).map_err(|e| Error::Yaml {
        file: ctx.to_string(),
        message: format!("unable to parse patch: {}", e.message),
    })?;
    let docs: Vec<Value> = docs.into_iter().filter(|d| !d.is_null()).collect();
    if docs.is_empty() {
        return Err(berr(format!("{ctx}: patch appears to be empty")));
    }
    let is_json = docs.len() == 1 && docs[0].is_array();
    if is_json {
        let Some(t) = target else {
            return Err(berr(format!(
                "{ctx}: must specify a target for JSON patch {text:?}"
            )));
        };
        // kustomize reads JSON patches with sigs.k8s.io/yaml (YAML 1.1)
        let ops = crate::yaml::parse_documents_yaml11(text)
            .ok()
            .and_then(|d| d.into_iter().find(|v| !v.is_null()))
            .unwrap_or_else(|| docs[0].clone());
        return apply_json_patch(resources, t, &ops, true, ctx);
    }
    for patch in &docs {
        if !patch.is_object() {
            return Err(berr(format!(
                "{ctx}: a strategic merge patch must be a mapping"
            )));
        }
        match target {
            None => {
                let id = patch_id(patch);
                let hits: Vec<usize> = resources
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| {
                        r.all_ids()
                            .iter()
                            .any(|i| i.gvk == id.gvk && i.name == id.name && i.ns_equals(&id))
                    })
                    .map(|(i, _)| i)
                    .collect();
                if hits.len() != 1 {
                    return Err(berr(format!(
                        "{ctx}: no resource matches strategic merge patch \"{id}\""
                    )));
                }
                if !smp_onto(
                    &mut resources[hits[0]],
                    patch,
                    allow_name,
                    allow_kind,
                    schema,
                )? {
                    resources.remove(hits[0]);
                }
            }
            Some(sel) => {
                let hits = select(resources, sel)?;
                let patch = &crate::resource::normalized_patch(patch);
                let mut delete = Vec::new();
                for i in hits {
                    if !smp_onto(&mut resources[i], patch, allow_name, allow_kind, schema)? {
                        delete.push(i);
                    }
                }
                for i in delete.into_iter().rev() {
                    resources.remove(i);
                }
            }
        }
    }
    Ok(())
}

/// Apply JSON 6902 operations to every resource a target selects. `store_previous_id`: the
/// `patches` field (kustomize's PatchTransformer) records each target's id first; the legacy
/// `patchesJson6902` field does not.
///
/// As in kustomize, the operations see the resource's build annotations (previous ids,
/// prefixes, suffixes) inside `metadata.annotations`, and the annotations are read back as a
/// string map afterwards (an emptied or nulled map goes).
pub fn apply_json_patch(
    resources: &mut [Resource],
    target: &Selector,
    ops: &Value,
    store_previous_id: bool,
    ctx: &str,
) -> Result<(), Error> {
    let hits = select(resources, target)?;
    for i in hits {
        let r = &mut resources[i];
        let id = r.cur_id();
        if store_previous_id {
            r.store_previous_id();
        }
        let internal = r.build_annotations();
        if !internal.is_empty() {
            let md = r.metadata_mut();
            let ann = md
                .entry("annotations")
                .or_insert_with(|| Value::Object(Map::new()));
            if !ann.is_object() {
                *ann = Value::Object(Map::new());
            }
            if let Value::Object(m) = ann {
                for (k, v) in &internal {
                    m.insert(k.clone(), Value::String(v.clone()));
                }
            }
        }
        crate::patch::json6902(&mut r.obj, ops).map_err(|m| berr(format!("{ctx}: {id}: {m}")))?;
        if let Some(md) = r.obj.get_mut("metadata").and_then(Value::as_object_mut) {
            if let Some(Value::Object(m)) = md.get_mut("annotations") {
                for (k, _) in &internal {
                    m.remove(k);
                }
            }
            crate::resource::normalize_annotations(md);
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- name references

struct Ref<'a> {
    resources: &'a [Resource],
    referrer: usize,
    candidates: Vec<usize>,
    target: Gvk,
    path: String,
}

impl Ref<'_> {
    fn select(&self, old: &str, cands: &[usize], by_ns_too: bool) -> Result<Option<usize>, Error> {
        let rs = self.resources;
        let referrer = &rs[self.referrer];
        let rid = referrer.cur_id();
        let role_ref_gvk = if self.path.ends_with("roleRef/name") {
            referrer.obj.get("roleRef").and_then(|rr| {
                let g = rr.get("apiGroup")?.as_str()?;
                let k = rr.get("kind")?.as_str()?;
                Some(Gvk {
                    group: g.to_string(),
                    version: String::new(),
                    kind: k.to_string(),
                })
            })
        } else {
            None
        };
        let mut c: Vec<usize> = cands
            .iter()
            .copied()
            .filter(|&i| rs[i].prev.iter().any(|(_, name, _)| name == old))
            .filter(|&i| {
                rs[i]
                    .prev_ids()
                    .iter()
                    .any(|id| id.gvk.is_selected_by(&self.target))
            })
            .filter(|&i| match &role_ref_gvk {
                Some(g) => rs[i].prev_ids().iter().any(|id| id.gvk.is_selected_by(g)),
                None => true,
            })
            .filter(|&i| {
                if rid.gvk.is_cluster_scoped() {
                    return true;
                }
                let cid = rs[i].cur_id();
                cid.gvk.is_cluster_scoped()
                    || rs[i].kind() == "ServiceAccount"
                    || rid.ns_equals(&cid)
            })
            .collect();
        if c.len() == 1 {
            return Ok(Some(c[0]));
        }
        c.retain(|&i| rs[i].prefixes_suffixes_equal(referrer, true));
        if c.len() > 1 {
            c.retain(|&i| rs[i].prefixes_suffixes_equal(referrer, false));
        }
        match c.len() {
            0 => Ok(None),
            1 => Ok(Some(c[0])),
            _ => {
                let first = &rs[c[0]];
                let same = c.iter().all(|&i| {
                    rs[i].name() == first.name()
                        && (!by_ns_too || rs[i].namespace() == first.namespace())
                });
                if same {
                    Ok(Some(c[0]))
                } else {
                    let ids: Vec<String> = c.iter().map(|&i| rs[i].cur_id().to_string()).collect();
                    Err(berr(format!(
                        "found multiple possible referrals: {}",
                        ids.join(", ")
                    )))
                }
            }
        }
    }

    fn set(&self, v: &mut Value) -> Result<(), Error> {
        match v {
            Value::Null => Ok(()),
            Value::String(_) => self.set_scalar(v),
            Value::Object(_) => self.set_mapping(v),
            Value::Array(items) => {
                for it in items.iter_mut() {
                    match it {
                        Value::String(_) => self.set_scalar(it)?,
                        Value::Object(_) => self.set_mapping(it)?,
                        _ => {}
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn set_scalar(&self, v: &mut Value) -> Result<(), Error> {
        let Some(old) = v.as_str().map(String::from) else {
            return Ok(());
        };
        if let Some(i) = self.select(&old, &self.candidates, false)? {
            let n = self.resources[i].name();
            if n != old {
                *v = Value::String(n);
            }
        }
        Ok(())
    }

    fn set_mapping(&self, v: &mut Value) -> Result<(), Error> {
        let Some(m) = v.as_object_mut() else {
            return Ok(());
        };
        let Some(old) = m.get("name").and_then(Value::as_str).map(String::from) else {
            return Err(berr("path config error; no 'name' field in node"));
        };
        let rs = self.resources;
        let cands: Vec<usize> = match m.get("namespace").and_then(Value::as_str) {
            None => self.candidates.clone(),
            Some(ns) => {
                let by_org: Vec<usize> = self
                    .candidates
                    .iter()
                    .copied()
                    .filter(|&i| rs[i].org_id().effective_namespace() == ns)
                    .collect();
                if !by_org.is_empty() {
                    by_org
                } else {
                    self.candidates
                        .iter()
                        .copied()
                        .filter(|&i| rs[i].cur_id().effective_namespace() == ns)
                        .collect()
                }
            }
        };
        if let Some(i) = self.select(&old, &cands, true)? {
            let (n, ns) = (rs[i].name(), rs[i].namespace());
            if n == old && ns.is_empty() {
                return Ok(());
            }
            m.insert("name".into(), Value::String(n));
            if !ns.is_empty() {
                m.insert("namespace".into(), Value::String(ns));
            }
        }
        Ok(())
    }
}

fn could_reference(resources: &[Resource], referrer: usize) -> Vec<usize> {
    let r = &resources[referrer];
    let rid = r.cur_id();
    if rid.gvk.is_cluster_scoped() {
        return (0..resources.len()).collect();
    }
    let mut rb_ns: BTreeSet<String> = BTreeSet::new();
    if (rid.gvk.kind == "RoleBinding" || rid.gvk.kind == "ClusterRoleBinding")
        && let Some(Value::Array(subjects)) = r.obj.get("subjects")
    {
        for s in subjects {
            if let Some(ns) = s.get("namespace").and_then(Value::as_str) {
                rb_ns.insert(ns.to_string());
            }
        }
    }
    (0..resources.len())
        .filter(|&i| {
            let id = resources[i].cur_id();
            id.gvk.is_cluster_scoped()
                || id.ns_equals(&rid)
                || rb_ns.contains(&resources[i].namespace())
        })
        .collect()
}

/// Update name references after renames (kustomize's nameReference transformer).
pub fn fix_name_references(
    resources: &mut [Resource],
    backrefs: &[NameBackRefs],
) -> Result<(), Error> {
    let backrefs: Vec<NameBackRefs> = if backrefs.is_empty() {
        crate::config::TransformerConfig::defaults().name_reference
    } else {
        backrefs.to_vec()
    };
    // nothing was renamed: no reference can change
    if resources.iter().all(|r| r.prev.is_empty()) {
        return Ok(());
    }
    let org_gvks: Vec<Gvk> = resources.iter().map(|r| r.org_id().gvk).collect();
    // (referrer, field spec, target gvk)
    let mut work: Vec<(usize, &FieldSpec, Gvk)> = Vec::new();
    for br in &backrefs {
        let target = br.gvk();
        for fs in &br.field_specs {
            let sel = fs.gvk();
            let first = crate::fieldspec::split_path(&fs.path)
                .into_iter()
                .next()
                .unwrap_or_default();
            let first = first.trim_end_matches("[]").to_string();
            for (i, g) in org_gvks.iter().enumerate() {
                if g.is_selected_by(&sel) && resources[i].obj.get(&first).is_some() {
                    work.push((i, fs, target.clone()));
                }
            }
        }
    }
    let mut cand_cache: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, fs, target) in work {
        let cands = cand_cache
            .entry(i)
            .or_insert_with(|| could_reference(resources, i))
            .clone();
        let mut obj = resources[i].obj.clone();
        let id = resources[i].cur_id();
        let gvk = resources[i].gvk();
        let spec = FieldSpec {
            group: gvk.group.clone(),
            version: gvk.version.clone(),
            kind: gvk.kind.clone(),
            create: false,
            ..fs.clone()
        };
        let rf = Ref {
            resources,
            referrer: i,
            candidates: cands,
            target,
            path: fs.path.clone(),
        };
        let mut err: Option<Error> = None;
        let mut set = |v: &mut Value| -> Result<(), String> {
            if let Err(e) = rf.set(v) {
                err = Some(e);
            }
            Ok(())
        };
        crate::fieldspec::apply(&mut obj, &spec, CreateKind::None, &mut set).map_err(|m| {
            berr(format!(
                "updating name reference in '{}' field of '{id}': {m}",
                fs.path
            ))
        })?;
        if let Some(e) = err {
            return Err(berr(format!(
                "updating name reference in '{}' field of '{id}': {e}",
                fs.path
            )));
        }
        resources[i].obj = obj;
    }
    Ok(())
}

// ---------------------------------------------------------------- vars

fn var_value(resources: &[Resource], v: &Var) -> Result<Value, Error> {
    let gvk = if !v.obj_ref.api_version.is_empty() {
        Gvk::from_api_version(&v.obj_ref.api_version, &v.obj_ref.kind)
    } else {
        Gvk {
            group: v.obj_ref.group.clone(),
            version: v.obj_ref.version.clone(),
            kind: v.obj_ref.kind.clone(),
        }
    };
    let hits: Vec<&Resource> = resources
        .iter()
        .filter(|r| {
            r.all_ids().iter().any(|id| {
                id.gvk.is_selected_by(&gvk)
                    && id.name == v.obj_ref.name
                    && (v.obj_ref.namespace.is_empty() || id.namespace == v.obj_ref.namespace)
            })
        })
        .collect();
    if hits.len() > 1 {
        return Err(berr(format!(
            "found {} resId matches for var {} (unable to disambiguate)",
            hits.len(),
            v.name
        )));
    }
    let Some(r) = hits.first() else {
        return Err(berr(format!(
            "var '{}' cannot be mapped to a field in the set of known resources",
            v.name
        )));
    };
    let path = if v.field_ref.field_path.is_empty() {
        "metadata.name"
    } else {
        &v.field_ref.field_path
    };
    crate::replacements::get_field(&r.obj, path).ok_or_else(|| {
        berr(format!(
            "field specified in var '{}' not found in corresponding resource",
            v.name
        ))
    })
}

/// Replace `$(VAR)` in the fields the varReference specs name.
pub fn resolve_vars(
    resources: &mut [Resource],
    vars: &[Var],
    specs: &[FieldSpec],
) -> Result<(), Error> {
    if vars.is_empty() {
        return Ok(());
    }
    let specs: Vec<FieldSpec> = if specs.is_empty() {
        crate::config::TransformerConfig::defaults().var_reference
    } else {
        specs.to_vec()
    };
    let mut values: Vec<(String, Value)> = Vec::new();
    for v in vars {
        values.push((v.name.clone(), var_value(resources, v)?));
    }
    let replace_in = |s: &str| -> Value {
        for (name, val) in &values {
            if s == format!("$({name})") {
                return val.clone();
            }
        }
        let mut out = s.to_string();
        for (name, val) in &values {
            let text = match val {
                Value::String(x) => x.clone(),
                other => other.to_string(),
            };
            out = out.replace(&format!("$({name})"), &text);
        }
        Value::String(out)
    };
    for r in resources.iter_mut() {
        let mut set = |v: &mut Value| -> Result<(), String> {
            match v {
                Value::String(s) => *v = replace_in(s),
                Value::Array(a) => {
                    for x in a.iter_mut() {
                        if let Value::String(s) = x {
                            *x = replace_in(s);
                        }
                    }
                }
                Value::Object(m) => {
                    for x in m.values_mut() {
                        if let Value::String(s) = x {
                            *x = replace_in(s);
                        }
                    }
                }
                _ => {}
            }
            Ok(())
        };
        field_specs_apply(r, &specs, CreateKind::None, &mut set).map_err(berr)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_split() {
        assert_eq!(split_image("nginx"), ("nginx".into(), "".into(), "".into()));
        assert_eq!(
            split_image("nginx:1.2"),
            ("nginx".into(), "1.2".into(), "".into())
        );
        assert_eq!(
            split_image("reg:5000/nginx:1.2"),
            ("reg:5000/nginx".into(), "1.2".into(), "".into())
        );
        assert_eq!(
            split_image("nginx@sha256:abc"),
            ("nginx".into(), "".into(), "sha256:abc".into())
        );
        assert_eq!(
            split_image("nginx:1@sha256:abc"),
            ("nginx".into(), "1".into(), "sha256:abc".into())
        );
    }

    #[test]
    fn label_selectors() {
        let mut m = Map::new();
        m.insert("app".into(), Value::String("web".into()));
        assert!(selector_matches("app=web", &m).unwrap());
        assert!(selector_matches("app in (web,db)", &m).unwrap());
        assert!(!selector_matches("app!=web", &m).unwrap());
        assert!(selector_matches("!tier", &m).unwrap());
    }
}
