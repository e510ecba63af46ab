//! Server-side apply: field sets (`fieldsV1`), ownership per manager, conflicts and merging.

use crate::patch::{ListType, ListTypes};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// A set of field paths, stored as a trie of path elements (`f:name`, `k:{..}`, `v:..`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSet {
    pub member: bool,
    pub children: BTreeMap<String, FieldSet>,
}

pub type Path = Vec<String>;

impl FieldSet {
    pub fn is_empty(&self) -> bool {
        !self.member && self.children.values().all(FieldSet::is_empty)
    }

    pub fn from_v1(v: &Value) -> FieldSet {
        let mut fs = FieldSet::default();
        if let Some(o) = v.as_object() {
            for (k, c) in o {
                if k == "." {
                    fs.member = true;
                    continue;
                }
                let mut child = FieldSet::from_v1(c);
                if c.as_object().is_some_and(Map::is_empty) {
                    child.member = true;
                }
                fs.children.insert(k.clone(), child);
            }
        }
        fs
    }

    pub fn to_v1(&self) -> Value {
        let mut m = Map::new();
        for (k, c) in &self.children {
            if c.is_empty() {
                continue;
            }
            let mut cv = c.to_v1();
            if c.member
                && let Some(o) = cv.as_object_mut()
                && !o.is_empty()
            {
                o.insert(".".into(), json!({}));
            }
            m.insert(k.clone(), cv);
        }
        Value::Object(m)
    }

    pub fn insert(&mut self, path: &[String]) {
        match path.split_first() {
            None => self.member = true,
            Some((h, rest)) => self.children.entry(h.clone()).or_default().insert(rest),
        }
    }

    pub fn contains(&self, path: &[String]) -> bool {
        match path.split_first() {
            None => self.member,
            Some((h, rest)) => self.children.get(h).is_some_and(|c| c.contains(rest)),
        }
    }

    pub fn remove(&mut self, path: &[String]) {
        match path.split_first() {
            None => self.member = false,
            Some((h, rest)) => {
                if let Some(c) = self.children.get_mut(h) {
                    c.remove(rest);
                    if c.is_empty() {
                        self.children.remove(h);
                    }
                }
            }
        }
    }

    /// Every member path.
    pub fn paths(&self) -> Vec<Path> {
        let mut out = vec![];
        self.walk(&mut vec![], &mut out);
        out
    }

    fn walk(&self, prefix: &mut Path, out: &mut Vec<Path>) {
        if self.member {
            out.push(prefix.clone());
        }
        for (k, c) in &self.children {
            prefix.push(k.clone());
            c.walk(prefix, out);
            prefix.pop();
        }
    }

    /// Has member paths below this path (not counting the path itself).
    pub fn has_children_at(&self, path: &[String]) -> bool {
        let mut cur = self;
        for p in path {
            match cur.children.get(p) {
                Some(c) => cur = c,
                None => return false,
            }
        }
        cur.children.values().any(|c| !c.is_empty())
    }
}

fn field_name(path: &[String]) -> Vec<String> {
    path.iter()
        .filter_map(|p| p.strip_prefix("f:").map(str::to_string))
        .collect()
}

/// A key field of a list-map item; `protocol` defaults to TCP as kube-apiserver defaults it.
fn key_value(item: &Value, k: &str) -> Option<Value> {
    item.get(k)
        .cloned()
        .or_else(|| (k == "protocol").then(|| json!("TCP")))
}

fn item_key(item: &Value, keys: &[String]) -> Option<String> {
    item.as_object()?;
    let mut m = Map::new();
    for k in keys {
        if let Some(v) = key_value(item, k) {
            m.insert(k.clone(), v);
        }
    }
    if m.keys().all(|k| k == "protocol") {
        return None;
    }
    if m.is_empty() {
        return None;
    }
    Some(format!("k:{}", Value::Object(m)))
}

/// Metadata fields that are never owned.
const SYSTEM_META: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
    "generateName",
];

/// The fields an object sets. `only_status` / `skip_status` select the part owned via /status.
pub fn fields_of(
    obj: &Value,
    lt: &dyn ListTypes,
    only_status: bool,
    skip_status: bool,
) -> FieldSet {
    let mut fs = FieldSet::default();
    if let Some(o) = obj.as_object() {
        for (k, v) in o {
            if k == "apiVersion" || k == "kind" {
                continue;
            }
            if (only_status && k != "status") || (skip_status && k == "status") {
                continue;
            }
            let path = vec![format!("f:{k}")];
            if k == "metadata" {
                if let Some(m) = v.as_object() {
                    for (mk, mv) in m {
                        if SYSTEM_META.contains(&mk.as_str()) {
                            continue;
                        }
                        let p = vec![path[0].clone(), format!("f:{mk}")];
                        collect(mv, lt, &p, &mut fs);
                    }
                }
                continue;
            }
            collect(v, lt, &path, &mut fs);
        }
    }
    fs
}

fn collect(v: &Value, lt: &dyn ListTypes, path: &Path, fs: &mut FieldSet) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            let named = field_name(path);
            let granular_map = matches!(
                named.last().map(String::as_str),
                Some(
                    "labels" | "annotations" | "data" | "stringData" | "binaryData" | "matchLabels"
                )
            );
            if granular_map {
                fs.insert(path);
            }
            for (k, c) in m {
                let mut p = path.clone();
                p.push(format!("f:{k}"));
                collect(c, lt, &p, fs);
            }
        }
        Value::Array(items) => {
            let named = field_name(path);
            match lt.list_type(&named) {
                ListType::Atomic => fs.insert(path),
                ListType::Set => {
                    for i in items {
                        let mut p = path.clone();
                        p.push(format!("v:{i}"));
                        fs.insert(&p);
                    }
                }
                ListType::Map(keys) => {
                    for i in items {
                        let Some(k) = item_key(i, &keys) else {
                            fs.insert(path);
                            continue;
                        };
                        let mut p = path.clone();
                        p.push(k);
                        fs.insert(&p);
                        if let Some(o) = i.as_object() {
                            for (ik, iv) in o {
                                let mut ip = p.clone();
                                ip.push(format!("f:{ik}"));
                                collect(iv, lt, &ip, fs);
                            }
                        }
                    }
                }
            }
        }
        _ => fs.insert(path),
    }
}

fn find_item(list: &[Value], elem: &str) -> Option<usize> {
    if let Some(k) = elem.strip_prefix("k:") {
        let want: Value = serde_json::from_str(k).ok()?;
        let want = want.as_object()?;
        return list.iter().position(|i| {
            want.iter()
                .all(|(wk, wv)| key_value(i, wk).as_ref() == Some(wv))
        });
    }
    if let Some(v) = elem.strip_prefix("v:") {
        let want: Value = serde_json::from_str(v).ok()?;
        return list.iter().position(|i| *i == want);
    }
    if let Some(i) = elem.strip_prefix("i:") {
        let i: usize = i.parse().ok()?;
        return (i < list.len()).then_some(i);
    }
    None
}

pub fn get_at<'a>(obj: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = obj;
    for p in path {
        cur = if let Some(f) = p.strip_prefix("f:") {
            cur.get(f)?
        } else {
            let list = cur.as_array()?;
            &list[find_item(list, p)?]
        };
    }
    Some(cur)
}

pub fn remove_at(obj: &mut Value, path: &[String]) {
    let Some((last, parent)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for p in parent {
        let next = if let Some(f) = p.strip_prefix("f:") {
            cur.get_mut(f)
        } else {
            match cur.as_array_mut() {
                Some(list) => match find_item(list, p) {
                    Some(i) => list.get_mut(i),
                    None => None,
                },
                None => None,
            }
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    if let Some(f) = last.strip_prefix("f:") {
        if let Some(o) = cur.as_object_mut() {
            o.remove(f);
        }
    } else if let Some(list) = cur.as_array_mut()
        && let Some(i) = find_item(list, last)
    {
        list.remove(i);
    }
}

/// Merges an applied configuration into the live object, honouring list types.
pub fn apply_merge(
    live: &Value,
    config: &Value,
    lt: &dyn ListTypes,
    path: &mut Vec<String>,
) -> Value {
    match (live, config) {
        (Value::Object(l), Value::Object(c)) => {
            let mut out = l.clone();
            for (k, v) in c {
                if v.is_null() {
                    out.remove(k);
                    continue;
                }
                path.push(k.clone());
                let merged = match l.get(k) {
                    Some(lv) => apply_merge(lv, v, lt, path),
                    None => v.clone(),
                };
                path.pop();
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(c)) => match lt.list_type(path) {
            ListType::Atomic => config.clone(),
            ListType::Set => {
                let mut out = c.clone();
                for i in l {
                    if !out.contains(i) {
                        out.push(i.clone());
                    }
                }
                Value::Array(out)
            }
            ListType::Map(keys) => {
                // applied items first, in the applied order, then the other live items
                let mut out = vec![];
                let mut used = vec![false; l.len()];
                for ci in c {
                    let ck = item_key(ci, &keys);
                    let pos = ck.as_ref().and_then(|k| {
                        l.iter()
                            .position(|li| item_key(li, &keys).as_ref() == Some(k))
                    });
                    match pos {
                        Some(p) => {
                            used[p] = true;
                            out.push(apply_merge(&l[p], ci, lt, path));
                        }
                        None => out.push(ci.clone()),
                    }
                }
                for (i, li) in l.iter().enumerate() {
                    if !used[i] {
                        out.push(li.clone());
                    }
                }
                Value::Array(out)
            }
        },
        (_, c) => c.clone(),
    }
}

/// One managedFields entry.
#[derive(Debug, Clone)]
pub struct Entry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub subresource: String,
    pub set: FieldSet,
}

pub fn read_entries(obj: &Value) -> Vec<Entry> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|e| Entry {
                    manager: e["manager"].as_str().unwrap_or_default().to_string(),
                    operation: e["operation"].as_str().unwrap_or("Update").to_string(),
                    api_version: e["apiVersion"].as_str().unwrap_or_default().to_string(),
                    time: e["time"].as_str().unwrap_or_default().to_string(),
                    subresource: e["subresource"].as_str().unwrap_or_default().to_string(),
                    set: FieldSet::from_v1(&e["fieldsV1"]),
                })
                .collect()
        })
        .unwrap_or_default()
}

pub fn write_entries(obj: &mut Value, entries: &[Entry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.set.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": e.set.to_v1(),
            });
            if !e.subresource.is_empty() {
                v["subresource"] = json!(e.subresource);
            }
            v
        })
        .collect();
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if list.is_empty() {
            m.remove("managedFields");
        } else {
            m.insert("managedFields".into(), Value::Array(list));
        }
    }
}

/// Renders a path the way conflict messages do: `.spec.replicas`, `.spec.containers[name="a"].image`.
pub fn render_path(path: &[String]) -> String {
    let mut s = String::new();
    for p in path {
        if let Some(f) = p.strip_prefix("f:") {
            s.push('.');
            s.push_str(f);
        } else if let Some(k) = p.strip_prefix("k:") {
            let inner = serde_json::from_str::<Value>(k)
                .ok()
                .and_then(|v| {
                    v.as_object().map(|o| {
                        o.iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                })
                .unwrap_or_default();
            s.push_str(&format!("[{inner}]"));
        } else if let Some(v) = p.strip_prefix("v:") {
            s.push_str(&format!("[={v}]"));
        }
    }
    s
}

/// Ownership bookkeeping for a non-apply write: the writer takes the fields it changed.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: &str,
    lt: &dyn ListTypes,
    status_split: bool,
    now: &str,
) {
    let mut entries = old.map(read_entries).unwrap_or_default();
    let only_status = status_split && subresource == "status";
    let skip_status = status_split && subresource != "status";
    let new_fields = fields_of(new, lt, only_status, skip_status);
    let changed: Vec<Path> = new_fields
        .paths()
        .into_iter()
        .filter(|p| {
            if new_fields.has_children_at(p) {
                return old.is_none_or(|o| get_at(o, p).is_none());
            }
            old.is_none_or(|o| get_at(o, p) != get_at(new, p))
        })
        .collect();
    let all_new = fields_of(new, lt, false, false);
    for e in entries.iter_mut() {
        // fields that no longer exist are owned by nobody
        for p in e.set.paths() {
            if !all_new.contains(&p) {
                e.set.remove(&p);
            }
        }
        for p in &changed {
            if !(e.manager == manager && e.operation == "Update" && e.subresource == subresource) {
                e.set.remove(p);
            }
        }
    }
    if !changed.is_empty() {
        let api_version = new["apiVersion"].as_str().unwrap_or_default().to_string();
        let idx = entries.iter().position(|e| {
            e.manager == manager && e.operation == "Update" && e.subresource == subresource
        });
        let e = match idx {
            Some(i) => &mut entries[i],
            None => {
                entries.push(Entry {
                    manager: manager.to_string(),
                    operation: "Update".into(),
                    api_version,
                    time: now.to_string(),
                    subresource: subresource.to_string(),
                    set: FieldSet::default(),
                });
                let n = entries.len() - 1;
                &mut entries[n]
            }
        };
        for p in &changed {
            e.set.insert(p);
        }
        e.time = now.to_string();
    }
    write_entries(new, &entries);
}

/// A conflict found while applying: field path and the manager that owns it.
pub struct Conflict {
    pub path: Path,
    pub manager: String,
    pub api_version: String,
}

/// Result of an apply: the new object (managedFields written) or the conflicts.
#[allow(clippy::too_many_arguments)]
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    subresource: &str,
    force: bool,
    lt: &dyn ListTypes,
    status_split: bool,
    now: &str,
) -> Result<Value, Vec<Conflict>> {
    let only_status = status_split && subresource == "status";
    let skip_status = status_split && subresource != "status";
    let mut cfg = config.clone();
    if let Some(o) = cfg.as_object_mut() {
        if skip_status {
            o.remove("status");
        }
        if only_status {
            o.retain(|k, _| matches!(k.as_str(), "apiVersion" | "kind" | "metadata" | "status"));
        }
    }
    let applied = fields_of(&cfg, lt, only_status, skip_status);
    let mut entries = live.map(read_entries).unwrap_or_default();
    let base = live.cloned().unwrap_or_else(|| json!({}));

    // conflicts: another manager owns a field we set, with a different value
    let mut conflicts = vec![];
    for p in applied.paths() {
        if applied.has_children_at(&p) || get_at(&cfg, &p).is_some_and(Value::is_object) {
            continue;
        }
        let differs = get_at(&base, &p) != get_at(&cfg, &p);
        if !differs {
            continue;
        }
        for e in &entries {
            if e.manager == manager && e.operation == "Apply" {
                continue;
            }
            if e.set.contains(&p) {
                conflicts.push(Conflict {
                    path: p.clone(),
                    manager: e.manager.clone(),
                    api_version: e.api_version.clone(),
                });
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }
    for c in &conflicts {
        for e in entries.iter_mut() {
            if e.manager == c.manager && !(e.manager == manager && e.operation == "Apply") {
                e.set.remove(&c.path);
            }
        }
    }

    let mut merged = apply_merge(&base, &cfg, lt, &mut vec![]);

    // fields this manager applied before but not now, owned by nobody else, are removed
    let prev = entries
        .iter()
        .find(|e| e.manager == manager && e.operation == "Apply" && e.subresource == subresource)
        .map(|e| e.set.clone())
        .unwrap_or_default();
    let mut dropped: Vec<Path> = prev
        .paths()
        .into_iter()
        .filter(|p| !applied.contains(p))
        .collect();
    dropped.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in &dropped {
        let others = entries.iter().any(|e| {
            !(e.manager == manager && e.operation == "Apply" && e.subresource == subresource)
                && e.set.contains(p)
        });
        if !others && !applied.has_children_at(p) {
            remove_at(&mut merged, p);
        }
    }

    let api_version = cfg["apiVersion"].as_str().unwrap_or_default().to_string();
    match entries
        .iter_mut()
        .find(|e| e.manager == manager && e.operation == "Apply" && e.subresource == subresource)
    {
        Some(e) => {
            if e.set != applied {
                e.time = now.to_string();
            }
            e.set = applied;
            e.api_version = api_version;
        }
        None => entries.push(Entry {
            manager: manager.to_string(),
            operation: "Apply".into(),
            api_version,
            time: now.to_string(),
            subresource: subresource.to_string(),
            set: applied,
        }),
    }
    // drop ownership of fields that are gone
    let all = fields_of(&merged, lt, false, false);
    for e in entries.iter_mut() {
        for p in e.set.paths() {
            if !all.contains(&p) {
                e.set.remove(&p);
            }
        }
    }
    write_entries(&mut merged, &entries);
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::Builtin;

    #[test]
    fn fields_roundtrip_v1() {
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "labels": {"a": "1"}},
            "data": {"k": "v"}});
        let fs = fields_of(&obj, &Builtin, false, false);
        let v1 = fs.to_v1();
        assert_eq!(
            v1,
            json!({"f:data": {".": {}, "f:k": {}}, "f:metadata": {"f:labels": {".": {}, "f:a": {}}}})
        );
        assert_eq!(FieldSet::from_v1(&v1), fs);
    }

    #[test]
    fn apply_conflict_force_and_removal() {
        let now = "2024-01-01T00:00:00Z";
        let a1 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"k": "1", "j": "2"}});
        let o1 = apply(None, &a1, "a", "", false, &Builtin, false, now)
            .ok()
            .unwrap();
        let b1 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"k": "9"}});
        let err = apply(Some(&o1), &b1, "b", "", false, &Builtin, false, now)
            .err()
            .unwrap();
        assert_eq!(render_path(&err[0].path), ".data.k");
        let o2 = apply(Some(&o1), &b1, "b", "", true, &Builtin, false, now)
            .ok()
            .unwrap();
        assert_eq!(o2["data"]["k"], "9");
        // a stops applying j: removed (solely owned); k is now b's, stays
        let a2 =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {}});
        let o3 = apply(Some(&o2), &a2, "a", "", false, &Builtin, false, now)
            .ok()
            .unwrap();
        assert_eq!(o3["data"], json!({"k": "9"}));
    }
}
