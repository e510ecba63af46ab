//! Patches: strategic merge (kustomize's kyaml flavour) and JSON 6902.

use serde_json::{Map, Value};

const KNOWN_KINDS: &str = include_str!("tables/knownkinds.txt");

/// Is this apiVersion/kind in kustomize's built-in schema? Lists of such kinds merge only
/// where the schema says so; lists of other kinds merge when their elements have names.
fn schema_known(api_version: &str, kind: &str) -> bool {
    static SET: std::sync::LazyLock<std::collections::HashSet<(String, String)>> =
        std::sync::LazyLock::new(|| {
            KNOWN_KINDS
                .lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| {
                    let mut w = l.split_whitespace();
                    Some((w.next()?.to_string(), w.next()?.to_string()))
                })
                .collect()
        });
    SET.contains(&(api_version.to_string(), kind.to_string()))
}

/// How a list merges.
enum ListMode {
    /// Elements are matched by these keys (comma-separated, the merge key first).
    Key(String),
    /// A set of scalars (union).
    Primitive,
    /// The patch's list replaces the target's.
    Replace,
}

/// The patch strategy the Kubernetes schema gives a list field of a built-in kind, by the
/// field name and the name of the field holding it.
fn schema_strategy(parent: &str, field: &str, kind: &str) -> ListMode {
    let in_container = matches!(
        parent,
        "containers" | "initContainers" | "ephemeralContainers"
    );
    match (parent, field) {
        ("spec", "containers" | "initContainers" | "ephemeralContainers" | "volumes") => {
            ListMode::Key("name".into())
        }
        ("spec", "imagePullSecrets") => ListMode::Key("name".into()),
        ("spec", "hostAliases") => ListMode::Key("ip".into()),
        ("spec", "topologySpreadConstraints") => {
            ListMode::Key("topologyKey,whenUnsatisfiable".into())
        }
        ("spec", "ports") if kind == "Service" => ListMode::Key("port,protocol".into()),
        ("spec", "podCIDRs") if kind == "Node" => ListMode::Primitive,
        (_, "env") if in_container => ListMode::Key("name".into()),
        (_, "ports") if in_container => ListMode::Key("containerPort,protocol".into()),
        (_, "volumeMounts") if in_container => ListMode::Key("mountPath".into()),
        (_, "volumeDevices") if in_container => ListMode::Key("devicePath".into()),
        ("", "secrets") if kind == "ServiceAccount" => ListMode::Key("name".into()),
        ("", "webhooks") if kind.ends_with("WebhookConfiguration") => ListMode::Key("name".into()),
        ("metadata", "ownerReferences") => ListMode::Key("uid".into()),
        ("metadata", "finalizers") => ListMode::Primitive,
        ("status", "conditions") => ListMode::Key("type".into()),
        _ => ListMode::Replace,
    }
}

/// Where the merge stands in the schema.
#[derive(Clone, Copy)]
enum Sch<'a> {
    /// A kind of kustomize's built-in schema, and the field holding the current mapping.
    Builtin { kind: &'a str, field: &'a str },
    /// A custom OpenAPI document (`openapi:` in the kustomization) and the current node.
    Custom {
        root: &'a Value,
        node: Option<&'a Value>,
    },
    /// No schema: lists are replaced.
    None,
}

impl<'a> Sch<'a> {
    fn resolve(root: &'a Value, mut node: &'a Value) -> &'a Value {
        for _ in 0..32 {
            match node
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix("#/definitions/"))
            {
                Some(name) => match root.get("definitions").and_then(|d| d.get(name)) {
                    Some(n) => node = n,
                    None => break,
                },
                None => break,
            }
        }
        node
    }

    fn property(&self, key: &str) -> Option<&'a Value> {
        match *self {
            Sch::Custom {
                root,
                node: Some(n),
            } => Sch::resolve(root, n)
                .get("properties")
                .and_then(|p| p.get(key)),
            _ => None,
        }
    }

    /// The schema of mapping field `key`.
    fn child(&self, key: &'a str) -> Sch<'a> {
        match *self {
            Sch::Builtin { kind, .. } => Sch::Builtin { kind, field: key },
            Sch::Custom { root, .. } => Sch::Custom {
                root,
                node: self.property(key),
            },
            Sch::None => Sch::None,
        }
    }

    /// The schema of the elements of list field `key`.
    fn items(&self, key: &'a str) -> Sch<'a> {
        match *self {
            Sch::Builtin { kind, .. } => Sch::Builtin { kind, field: key },
            Sch::Custom { root, .. } => Sch::Custom {
                root,
                node: self
                    .property(key)
                    .map(|p| Sch::resolve(root, p))
                    .and_then(|p| p.get("items")),
            },
            Sch::None => Sch::None,
        }
    }

    /// How list field `key` of the current mapping merges.
    fn list_mode(&self, key: &str) -> ListMode {
        match *self {
            Sch::Builtin { kind, field } => schema_strategy(field, key, kind),
            Sch::Custom { root, .. } => {
                let Some(prop) = self.property(key) else {
                    return ListMode::Replace;
                };
                let resolved = Sch::resolve(root, prop);
                let ext = |k: &str| {
                    prop.get(k)
                        .or_else(|| resolved.get(k))
                        .and_then(Value::as_str)
                };
                let merge = ext("x-kubernetes-patch-strategy")
                    .is_some_and(|s| s.split(',').any(|x| x == "merge"));
                if !merge {
                    return ListMode::Replace;
                }
                let list_keys: Option<Vec<String>> = prop
                    .get("x-kubernetes-list-map-keys")
                    .or_else(|| resolved.get("x-kubernetes-list-map-keys"))
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|k| k.as_str().map(String::from))
                            .collect()
                    });
                match (list_keys, ext("x-kubernetes-patch-merge-key")) {
                    (Some(ks), _) if !ks.is_empty() => ListMode::Key(ks.join(",")),
                    (_, Some(k)) => ListMode::Key(k.to_string()),
                    _ => ListMode::Primitive,
                }
            }
            Sch::None => ListMode::Replace,
        }
    }
}

/// The definition of a custom OpenAPI document for a group/version/kind.
fn custom_definition<'a>(root: &'a Value, api_version: &str, kind: &str) -> Option<&'a Value> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    root.get("definitions")?.as_object()?.values().find(|d| {
        d.get("x-kubernetes-group-version-kind")
            .and_then(Value::as_array)
            .is_some_and(|l| {
                l.iter().any(|g| {
                    g.get("group").and_then(Value::as_str).unwrap_or("") == group
                        && g.get("version").and_then(Value::as_str).unwrap_or("") == version
                        && g.get("kind").and_then(Value::as_str).unwrap_or("") == kind
                })
            })
    })
}

/// Strategic-merge `patch` into `target`, with kustomize's built-in schema or, when given, a
/// custom OpenAPI document. Returns `false` when the patch deletes the whole object
/// (`$patch: delete` at the top).
pub fn strategic_merge(
    target: &mut Value,
    patch: &Value,
    custom: Option<&Value>,
) -> Result<bool, String> {
    let api_version = target
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let kind = target
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if let Some(d) = patch.get("$patch").and_then(Value::as_str) {
        match d {
            "delete" => return Ok(false),
            "replace" => {
                let mut p = patch.clone();
                strip_directives(&mut p);
                *target = p;
                return Ok(true);
            }
            _ => {}
        }
    }
    let sch = match custom {
        Some(root) => Sch::Custom {
            root,
            node: custom_definition(root, &api_version, &kind),
        },
        None if schema_known(&api_version, &kind) => Sch::Builtin {
            kind: &kind,
            field: "",
        },
        None => Sch::None,
    };
    merge_value(target, patch, sch)?;
    Ok(true)
}

fn strip_directives(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.remove("$patch");
            for x in m.values_mut() {
                strip_directives(x);
            }
        }
        Value::Array(a) => {
            a.retain(|x| x.get("$patch").and_then(Value::as_str) != Some("delete"));
            for x in a.iter_mut() {
                strip_directives(x);
            }
        }
        _ => {}
    }
}

fn cleaned(v: &Value) -> Value {
    let mut c = v.clone();
    strip_directives(&mut c);
    c
}

fn merge_value(target: &mut Value, patch: &Value, sch: Sch<'_>) -> Result<(), String> {
    match (target.is_object(), patch) {
        (true, Value::Object(pm)) => {
            if pm.get("$patch").and_then(Value::as_str) == Some("replace") {
                *target = cleaned(patch);
                return Ok(());
            }
            let Value::Object(tm) = target else {
                return Ok(());
            };
            merge_map(tm, pm, sch)
        }
        (_, p) => {
            *target = cleaned(p);
            Ok(())
        }
    }
}

fn merge_map(
    tm: &mut Map<String, Value>,
    pm: &Map<String, Value>,
    sch: Sch<'_>,
) -> Result<(), String> {
    for (k, pv) in pm {
        if k == "$patch" {
            continue;
        }
        if pv.is_null() {
            tm.remove(k);
            continue;
        }
        match tm.get_mut(k) {
            None => {
                if pv.get("$patch").and_then(Value::as_str) == Some("delete") {
                    continue;
                }
                tm.insert(k.clone(), cleaned(pv));
            }
            Some(tv) => match (tv, pv) {
                (tv @ Value::Object(_), Value::Object(pvm)) => {
                    match pvm.get("$patch").and_then(Value::as_str) {
                        Some("delete") => {
                            tm.remove(k);
                        }
                        Some("replace") => *tv = cleaned(pv),
                        _ => {
                            if let Value::Object(tvm) = tv {
                                merge_map(tvm, pvm, sch.child(k))?;
                            }
                        }
                    }
                }
                (Value::Array(ta), Value::Array(pa)) => {
                    merge_list(ta, pa, sch.list_mode(k), sch.items(k))?;
                }
                (tv, pv) => *tv = cleaned(pv),
            },
        }
    }
    Ok(())
}

/// Merge two keyed lists the way kustomize does: elements named by the patch first (in the
/// patch's order), then the target's other elements in their order.
fn merge_list(
    ta: &mut Vec<Value>,
    pa: &[Value],
    mode: ListMode,
    items: Sch<'_>,
) -> Result<(), String> {
    // a list-level `$patch: replace` element replaces the list
    if pa
        .iter()
        .any(|v| v.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        *ta = pa
            .iter()
            .filter(|v| v.get("$patch").is_none())
            .map(cleaned)
            .collect();
        return Ok(());
    }
    let keys: Vec<String> = match mode {
        ListMode::Key(k) if pa.iter().all(Value::is_object) => {
            k.split(',').map(String::from).collect()
        }
        ListMode::Primitive => {
            let mut out: Vec<Value> = Vec::new();
            for v in pa.iter().chain(ta.iter()) {
                if !out.contains(v) {
                    out.push(v.clone());
                }
            }
            *ta = out;
            return Ok(());
        }
        _ => {
            *ta = pa
                .iter()
                .filter(|v| v.get("$patch").is_none())
                .map(cleaned)
                .collect();
            return Ok(());
        }
    };
    merge_keyed(ta, pa, &keys, items)
}

/// The text of a key field ("" when absent), as kyaml compares them.
fn key_text(v: &Value, key: &str) -> String {
    match v.get(key) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => crate::yaml::emit::number_text_or(other),
    }
}

/// kyaml's merge of associative lists (with kustomize's "prepend" direction): walk the key
/// values of the patch then the target, merging matching elements; then lay the target's
/// elements over that list (in place for one key, moved to the end for several).
fn merge_keyed(
    ta: &mut Vec<Value>,
    pa: &[Value],
    keys: &[String],
    items_sch: Sch<'_>,
) -> Result<(), String> {
    let values_of = |v: &Value| -> Vec<String> { keys.iter().map(|k| key_text(v, k)).collect() };
    let mut values_list: Vec<Vec<String>> = Vec::new();
    for v in pa.iter().chain(ta.iter()) {
        let vals = values_of(v);
        if vals.iter().all(String::is_empty) || values_list.contains(&vals) {
            continue;
        }
        values_list.push(vals);
    }
    if keys.len() > 1 {
        // kyaml's mergeValues: entries that agree where both have a value become one
        let n = values_list.len();
        for i in 0..n {
            for j in 0..n {
                let (a, b) = (values_list[i].clone(), values_list[j].clone());
                let mut common = false;
                let mut merged = Vec::with_capacity(a.len());
                let mut ok = true;
                for (x, y) in a.iter().zip(&b) {
                    if x == y {
                        common = true;
                        merged.push(x.clone());
                    } else if !x.is_empty() && !y.is_empty() {
                        ok = false;
                        break;
                    } else if !x.is_empty() {
                        merged.push(x.clone());
                    } else {
                        merged.push(y.clone());
                    }
                }
                if ok && common {
                    values_list[i] = merged.clone();
                    values_list[j] = merged;
                }
            }
        }
    }
    // keys that have a value somewhere
    let valid: Vec<usize> = {
        let v: Vec<usize> = (0..keys.len())
            .filter(|&i| values_list.iter().any(|vals| !vals[i].is_empty()))
            .collect();
        if v.is_empty() {
            (0..keys.len()).collect()
        } else {
            v
        }
    };
    let sel = |vals: &[String]| -> Vec<String> { valid.iter().map(|&i| vals[i].clone()).collect() };
    let ident =
        |v: &Value| -> Vec<String> { valid.iter().map(|&i| key_text(v, &keys[i])).collect() };
    let mut dest: Vec<Value> = std::mem::take(ta);
    let mut items: Vec<Value> = Vec::new();
    for vals in &values_list {
        let want = sel(vals);
        let p = pa.iter().find(|x| ident(x) == want);
        let t = dest.iter().position(|x| ident(x) == want);
        let deleted = p.is_some_and(|p| p.get("$patch").and_then(Value::as_str) == Some("delete"));
        if deleted {
            if let Some(j) = t {
                dest.remove(j);
            }
            continue;
        }
        let val = match (t, p) {
            (Some(j), Some(p)) => {
                let mut merged = dest[j].clone();
                if p.get("$patch").and_then(Value::as_str) == Some("replace") {
                    merged = cleaned(p);
                } else if let (Value::Object(tm), Value::Object(pm)) = (&mut merged, p) {
                    merge_map(tm, pm, items_sch)?;
                }
                dest[j] = merged.clone();
                merged
            }
            (None, Some(p)) => cleaned(p),
            (Some(j), None) => dest[j].clone(),
            (None, None) => continue,
        };
        match items.iter().position(|x| ident(x) == want) {
            Some(k) => items[k] = val,
            None => items.push(val),
        }
    }
    if valid.len() > 1 {
        for d in dest {
            let id = ident(&d);
            items.retain(|x| ident(x) != id);
            items.push(d);
        }
    } else {
        for d in dest {
            let id = ident(&d);
            match items.iter().position(|x| ident(x) == id) {
                Some(k) => items[k] = d,
                None => items.push(d),
            }
        }
    }
    *ta = items;
    Ok(())
}

/// Apply a JSON 6902 patch (a list of operations).
pub fn json6902(target: &mut Value, ops: &Value) -> Result<(), String> {
    let ops = ops
        .as_array()
        .ok_or("JSON patch must be a list of operations")?;
    for op in ops {
        let name = op
            .get("op")
            .and_then(Value::as_str)
            .ok_or("JSON patch operation without 'op'")?;
        let path = op
            .get("path")
            .and_then(Value::as_str)
            .ok_or("JSON patch operation without 'path'")?;
        match name {
            "add" => {
                let v = op
                    .get("value")
                    .cloned()
                    .ok_or("'add' operation without 'value'")?;
                add(target, path, v)?;
            }
            "remove" => {
                remove(target, path)?;
            }
            "replace" => {
                let v = op
                    .get("value")
                    .cloned()
                    .ok_or("'replace' operation without 'value'")?;
                remove(target, path)?;
                add(target, path, v)?;
            }
            "move" => {
                let from = op
                    .get("from")
                    .and_then(Value::as_str)
                    .ok_or("'move' operation without 'from'")?;
                let v = remove(target, from)?;
                add(target, path, v)?;
            }
            "copy" => {
                let from = op
                    .get("from")
                    .and_then(Value::as_str)
                    .ok_or("'copy' operation without 'from'")?;
                let v = get(target, from)
                    .cloned()
                    .ok_or_else(|| format!("missing path {from:?}"))?;
                add(target, path, v)?;
            }
            "test" => {
                let v = op.get("value").cloned().unwrap_or(Value::Null);
                if get(target, path) != Some(&v) {
                    return Err(format!("testing value {path} failed"));
                }
            }
            other => {
                return Err(format!(
                    "unexpected kind of JSON patch operation: {other:?}"
                ));
            }
        }
    }
    Ok(())
}

fn pointer_parts(path: &str) -> Result<Vec<String>, String> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| format!("JSON pointer must start with '/': {path:?}"))?;
    Ok(rest
        .split('/')
        .map(|p| p.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn get<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let parts = pointer_parts(path).ok()?;
    let mut cur = v;
    for p in parts {
        cur = match cur {
            Value::Object(m) => m.get(&p)?,
            Value::Array(a) => a.get(p.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn parent_of<'a>(v: &'a mut Value, parts: &[String], full: &str) -> Result<&'a mut Value, String> {
    let mut cur = v;
    for p in parts {
        cur = match cur {
            Value::Object(m) => m
                .get_mut(p)
                .ok_or_else(|| format!("doc is missing path: {full}"))?,
            Value::Array(a) => {
                let i: usize = p
                    .parse()
                    .map_err(|_| format!("doc is missing path: {full}"))?;
                a.get_mut(i)
                    .ok_or_else(|| format!("doc is missing path: {full}"))?
            }
            _ => return Err(format!("doc is missing path: {full}")),
        };
    }
    Ok(cur)
}

fn add(v: &mut Value, path: &str, val: Value) -> Result<(), String> {
    let parts = pointer_parts(path)?;
    let Some((last, init)) = parts.split_last() else {
        *v = val;
        return Ok(());
    };
    match parent_of(v, init, path)? {
        Value::Object(m) => {
            m.insert(last.clone(), val);
        }
        Value::Array(a) => {
            if last == "-" {
                a.push(val);
            } else {
                let i: usize = last
                    .parse()
                    .map_err(|_| format!("invalid array index in {path}"))?;
                if i > a.len() {
                    return Err(format!(
                        "add operation does not apply: doc is missing path: {path}"
                    ));
                }
                a.insert(i, val);
            }
        }
        _ => {
            return Err(format!(
                "add operation does not apply: doc is missing path: {path}"
            ));
        }
    }
    Ok(())
}

fn remove(v: &mut Value, path: &str) -> Result<Value, String> {
    let parts = pointer_parts(path)?;
    let Some((last, init)) = parts.split_last() else {
        return Ok(std::mem::take(v));
    };
    match parent_of(v, init, path)? {
        Value::Object(m) => m.remove(last).ok_or_else(|| {
            format!("remove operation does not apply: doc is missing path: \"{path}\"")
        }),
        Value::Array(a) => {
            let i: usize = last
                .parse()
                .map_err(|_| format!("invalid array index in {path}"))?;
            if i >= a.len() {
                return Err(format!(
                    "remove operation does not apply: doc is missing path: \"{path}\""
                ));
            }
            Ok(a.remove(i))
        }
        _ => Err(format!(
            "remove operation does not apply: doc is missing path: \"{path}\""
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn smp_merges_containers_by_name() {
        let mut t = json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "x", "env": [{"name": "A", "value": "1"}]},
            {"name": "b", "image": "y"}]}}}});
        let p = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "z", "env": [{"name": "B", "value": "2"}]},
            {"name": "b", "$patch": "delete"}]}}}});
        assert!(strategic_merge(&mut t, &p, None).unwrap());
        assert_eq!(
            t["spec"]["template"]["spec"]["containers"],
            json!([{"name": "a", "image": "z", "env": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}]}])
        );
    }

    #[test]
    fn json6902_ops() {
        let mut t = json!({"a": [1, 2], "b": {"c": 1}});
        json6902(
            &mut t,
            &json!([{"op": "add", "path": "/a/-", "value": 3}, {"op": "remove", "path": "/b/c"},
            {"op": "replace", "path": "/a/0", "value": 9}]),
        )
        .unwrap();
        assert_eq!(t, json!({"a": [9, 2, 3], "b": {}}));
        assert!(json6902(&mut t, &json!([{"op": "remove", "path": "/zz"}])).is_err());
    }
}
