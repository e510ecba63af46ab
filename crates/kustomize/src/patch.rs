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

/// The field names `schema_strategy` looks at as a parent, others as "?".
fn static_field(key: &str) -> &'static str {
    match key {
        "spec" => "spec",
        "metadata" => "metadata",
        "status" => "status",
        "containers" => "containers",
        "initContainers" => "initContainers",
        "ephemeralContainers" => "ephemeralContainers",
        _ => "?",
    }
}

/// Where the merge stands in the schema.
#[derive(Clone, Copy)]
enum Sch<'a> {
    /// A kind of kustomize's built-in schema, and the field holding the current mapping.
    Builtin { kind: &'a str, field: &'static str },
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
    fn child_of(&self, key: &str) -> Sch<'a> {
        match *self {
            Sch::Builtin { kind, .. } => Sch::Builtin {
                kind,
                field: static_field(key),
            },
            Sch::Custom { root, .. } => Sch::Custom {
                root,
                node: self.property(key),
            },
            Sch::None => Sch::None,
        }
    }

    /// The schema of the elements of list field `key`.
    fn items(&self, key: &str) -> Sch<'a> {
        match *self {
            Sch::Builtin { kind, .. } => Sch::Builtin {
                kind,
                field: static_field(key),
            },
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
    let dest = std::mem::take(target);
    match walk_map(Some(dest), Some(patch), sch)? {
        Some(v) => {
            *target = v;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// The `$patch` directive of a patch mapping (kyaml's determineMappingNodePatchStrategy).
fn map_directive(m: &Map<String, Value>) -> Result<Option<&'static str>, String> {
    match m.get("$patch") {
        None => Ok(None),
        Some(v) => match v.as_str() {
            Some("delete") => Ok(Some("delete")),
            Some("replace") => Ok(Some("replace")),
            Some("merge") => Ok(Some("merge")),
            _ => Err(format!(
                "unknown patch strategy '{}'",
                crate::yaml::emit::number_text_or(v)
            )),
        },
    }
}

/// The `$patch` directive of a patch list: an element that is a mapping with `$patch` as its
/// only key (kyaml's determineSequenceNodePatchStrategy).
fn list_directive(a: &[Value]) -> Result<Option<&'static str>, String> {
    let Some(m) = a
        .iter()
        .filter_map(Value::as_object)
        .find(|m| m.contains_key("$patch"))
    else {
        return Ok(None);
    };
    if m.len() > 1 {
        return Ok(None);
    }
    map_directive(m)
}

/// A patch list without its directive elements.
fn without_directive(a: &[Value]) -> Vec<Value> {
    a.iter()
        .filter(|v| {
            !v.as_object()
                .is_some_and(|m| m.len() == 1 && m.contains_key("$patch"))
        })
        .cloned()
        .collect()
}

fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Object(_) => "MappingNode",
        Value::Array(_) => "SequenceNode",
        _ => "ScalarNode",
    }
}

/// kyaml's walk of one field: `dest` is the target's value (taken out of it), `origin` the
/// patch's. Returns the value to set, or `None` to clear the field. Like kyaml, a subtree
/// the target lacks is walked against itself, so nulls and directives inside it are applied
/// rather than copied; non-associative lists are taken from the patch as written.
fn walk_field(
    dest: Option<Value>,
    origin: Option<&Value>,
    parent: Sch<'_>,
    key: &str,
) -> Result<Option<Value>, String> {
    let first = match (&dest, origin) {
        (Some(d), _) if !d.is_null() => Some(kind_name(d)),
        (_, Some(o)) if !o.is_null() => Some(kind_name(o)),
        _ => None,
    };
    for v in [dest.as_ref(), origin].into_iter().flatten() {
        if let Some(k) = first
            && !v.is_null()
            && kind_name(v) != k
        {
            return Err(format!(
                "wrong node kind: expected {k} but got {}: node contents:\n{}",
                kind_name(v),
                crate::yaml::to_yaml(v)
            ));
        }
    }
    match first {
        None | Some("MappingNode") => walk_map(dest, origin, parent.child_of(key)),
        Some("SequenceNode") => walk_list(dest, origin, parent, key),
        _ => Ok(match origin {
            Some(Value::Null) => None,
            Some(o) => Some(o.clone()),
            None => dest,
        }),
    }
}

/// kyaml's walkMap with merge2's VisitMap.
fn walk_map(
    dest: Option<Value>,
    origin: Option<&Value>,
    sch: Sch<'_>,
) -> Result<Option<Value>, String> {
    let dest = match dest {
        None | Some(Value::Null) => {
            let o = match origin {
                // a null the patch does not mention stays
                None => return Ok(dest),
                Some(Value::Null) => return Ok(None),
                Some(o) => o,
            };
            if let Value::Object(om) = o
                && map_directive(om)? == Some("delete")
            {
                return Ok(None);
            }
            // added: walk the patch's subtree against itself
            return walk_map(Some(o.clone()), Some(o), sch);
        }
        Some(d) => d,
    };
    let om = match origin {
        Some(Value::Null) => return Ok(None),
        None => return Ok(Some(dest)),
        Some(Value::Object(om)) => om,
        Some(_) => return Ok(Some(dest)),
    };
    let mut dm = match map_directive(om)? {
        Some("delete") => return Ok(None),
        Some("replace") => {
            let mut c = om.clone();
            c.remove("$patch");
            let c = Value::Object(c);
            return walk_map(Some(c.clone()), Some(&c), sch);
        }
        _ => match dest {
            Value::Object(m) => m,
            other => return Ok(Some(other)),
        },
    };
    let mut keys: Vec<String> = dm.keys().cloned().collect();
    for k in om.keys() {
        if k != "$patch" && !dm.contains_key(k) {
            keys.push(k.clone());
        }
    }
    keys.sort();
    for k in keys {
        let d = dm.remove(&k);
        let o = if k == "$patch" { None } else { om.get(&k) };
        if let Some(v) = walk_field(d, o, sch, &k)? {
            dm.insert(k, v);
        }
    }
    Ok(Some(Value::Object(dm)))
}

/// kyaml's walk of a list field: associative lists (a merge strategy in the schema) merge
/// element by element, other lists are replaced by the patch's.
fn walk_list(
    dest: Option<Value>,
    origin: Option<&Value>,
    parent: Sch<'_>,
    key: &str,
) -> Result<Option<Value>, String> {
    let mode = parent.list_mode(key);
    if matches!(mode, ListMode::Replace) {
        return Ok(match origin {
            Some(Value::Null) => None,
            Some(o) => Some(o.clone()),
            None => dest,
        });
    }
    let items = parent.items(key);
    let (ta, pa): (Vec<Value>, Vec<Value>) = match (dest, origin) {
        (None | Some(Value::Null), None) => return Ok(None),
        (None | Some(Value::Null), Some(Value::Null)) => return Ok(None),
        (Some(d), None) => return Ok(Some(d)),
        (_, Some(Value::Null)) => return Ok(None),
        (None | Some(Value::Null), Some(Value::Array(o))) => {
            // added: merged against itself, as kyaml walks it
            (o.clone(), o.clone())
        }
        (Some(Value::Array(d)), Some(Value::Array(o))) => match list_directive(o)? {
            Some("delete") => return Ok(None),
            Some("replace") => {
                let c = without_directive(o);
                (c.clone(), c)
            }
            Some(_) => (d, without_directive(o)),
            None => (d, o.clone()),
        },
        (Some(d), Some(_)) => return Ok(Some(d)),
        (None, Some(o)) => return Ok(Some(o.clone())),
    };
    let mut ta = ta;
    match mode {
        ListMode::Key(k) if pa.iter().chain(ta.iter()).all(Value::is_object) => {
            let keys: Vec<String> = k.split(',').map(String::from).collect();
            merge_keyed(&mut ta, &pa, &keys, items)?;
        }
        ListMode::Primitive => {
            // sets of scalars: the union, the patch's values first
            let mut out: Vec<Value> = Vec::new();
            for v in pa.iter().chain(ta.iter()) {
                if !out.contains(v) {
                    out.push(v.clone());
                }
            }
            ta = out;
        }
        _ => ta = pa,
    }
    Ok(Some(Value::Array(ta)))
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
        if t.is_none() && p.is_none() {
            continue;
        }
        // kyaml walks the element pair; a cleared or emptied element leaves the list
        let walked = walk_map(t.map(|j| dest[j].clone()), p, items_sch)?;
        let mut val = match walked {
            Some(Value::Object(m)) if !m.is_empty() => Value::Object(m),
            Some(v) if !v.is_object() && !v.is_null() => v,
            _ => {
                if let Some(j) = t {
                    dest.remove(j);
                }
                continue;
            }
        };
        // key fields the merge dropped come back
        if let Value::Object(m) = &mut val {
            for (i, &ki) in valid.iter().enumerate() {
                if !want[i].is_empty() && !m.contains_key(&keys[ki]) {
                    m.insert(keys[ki].clone(), Value::String(want[i].clone()));
                }
            }
        }
        if let Some(j) = t {
            dest[j] = val.clone();
        }
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

/// Apply a JSON 6902 patch (a list of operations) with the semantics of
/// gopkg.in/evanphx/json-patch.v4, the library kustomize applies them with: negative array
/// indices count from the end, `replace` of a missing map key adds it, `copy` from a missing
/// map key copies null, `add`/`replace` without a value set null, `test` of a missing key
/// against null passes, and a path is split on `/` after its first segment.
pub fn json6902(target: &mut Value, ops: &Value) -> Result<(), String> {
    let ops = ops
        .as_array()
        .ok_or("JSON patch must be a list of operations")?;
    for op in ops {
        let name = op.get("op").and_then(Value::as_str).unwrap_or("unknown");
        let path = || -> Result<&str, String> {
            op.get("path")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("{name} operation failed to decode path"))
        };
        let from = || -> Result<&str, String> {
            op.get("from")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("{name} operation failed to decode from"))
        };
        let value = || op.get("value").cloned().unwrap_or(Value::Null);
        match name {
            "add" => {
                let p = path()?;
                let (con, key) = find_object(target, p).ok_or_else(|| {
                    format!("add operation does not apply: doc is missing path: \"{p}\"")
                })?;
                container_add(con, &key, value())
                    .map_err(|e| format!("error in add for path: '{p}': {e}"))?;
            }
            "remove" => {
                let p = path()?;
                let (con, key) = find_object(target, p).ok_or_else(|| {
                    format!("remove operation does not apply: doc is missing path: \"{p}\"")
                })?;
                container_remove(con, &key)
                    .map_err(|e| format!("error in remove for path: '{p}': {e}"))?;
            }
            "replace" => {
                let p = path()?;
                if p.is_empty() {
                    let v = value();
                    if !(v.is_object() || v.is_array()) {
                        return Err("replace operation value must be object or array".into());
                    }
                    *target = v;
                    continue;
                }
                let (con, key) = find_object(target, p).ok_or_else(|| {
                    format!("replace operation does not apply: doc is missing path: {p}")
                })?;
                match con {
                    Value::Object(m) => {
                        m.insert(key, value());
                    }
                    Value::Array(a) => {
                        let i = array_index(a.len(), &key).map_err(|_| {
                            format!("replace operation does not apply: doc is missing key: {p}")
                        })?;
                        a[i] = value();
                    }
                    _ => return Err(format!("replace operation does not apply: {p}")),
                }
            }
            "move" => {
                let f = from()?;
                let (con, key) = find_object(target, f).ok_or_else(|| {
                    format!("move operation does not apply: doc is missing from path: {f}")
                })?;
                let v = container_remove(con, &key)
                    .map_err(|e| format!("error in move for path: '{key}': {e}"))?;
                let p = path()?;
                let (con, key) = find_object(target, p).ok_or_else(|| {
                    format!("move operation does not apply: doc is missing destination path: {p}")
                })?;
                container_add(con, &key, v)
                    .map_err(|e| format!("error in move for path: '{p}': {e}"))?;
            }
            "copy" => {
                let f = from()?;
                let (con, key) = find_object(target, f).ok_or_else(|| {
                    format!("copy operation does not apply: doc is missing from path: {f}")
                })?;
                let v = container_get(con, &key)
                    .map_err(|e| format!("error in copy for from: '{f}': {e}"))?
                    .cloned()
                    .unwrap_or(Value::Null);
                let p = path()?;
                let (con, key) = find_object(target, p).ok_or_else(|| {
                    format!("copy operation does not apply: doc is missing destination path: {p}")
                })?;
                container_add(con, &key, v)
                    .map_err(|e| format!("error while adding value during copy: {e}"))?;
            }
            "test" => {
                let p = path()?;
                let want = value();
                if p.is_empty() {
                    if *target != want {
                        return Err(format!("testing value {p} failed"));
                    }
                    continue;
                }
                let (con, key) = find_object(target, p).ok_or_else(|| {
                    format!("test operation does not apply: is missing path: {p}")
                })?;
                let got = container_get(con, &key)
                    .map_err(|e| format!("error in test for path: '{p}': {e}"))?;
                let ok = match got {
                    None | Some(Value::Null) => want.is_null(),
                    Some(g) => *g == want,
                };
                if !ok {
                    return Err(format!("testing value {p} failed"));
                }
            }
            other => return Err(format!("Unexpected kind: {other}")),
        }
    }
    Ok(())
}

/// RFC 6901 unescaping of one path segment.
fn decode_key(k: &str) -> String {
    if k.contains('~') {
        k.replace("~1", "/").replace("~0", "~")
    } else {
        k.to_string()
    }
}

/// json-patch v4's findObject: the container holding the last segment of `path`, and that
/// segment. The first segment is skipped whatever it is; a null or missing step fails.
fn find_object<'a>(doc: &'a mut Value, path: &str) -> Option<(&'a mut Value, String)> {
    let split: Vec<&str> = path.split('/').collect();
    if split.len() < 2 {
        return None;
    }
    let mut cur = doc;
    for part in &split[1..split.len() - 1] {
        let key = decode_key(part);
        let next = match cur {
            Value::Object(m) => m.get_mut(&key)?,
            Value::Array(a) => {
                let i = array_index(a.len(), &key).ok()?;
                &mut a[i]
            }
            _ => return None,
        };
        if !(next.is_object() || next.is_array()) {
            return None;
        }
        cur = next;
    }
    Some((cur, decode_key(split[split.len() - 1])))
}

/// Go's strconv.Atoi of an array index, negative indices counted from the end (json-patch
/// v4's SupportNegativeIndices); `len` is the number of valid positions.
fn array_index(len: usize, key: &str) -> Result<usize, String> {
    let idx: i64 = key
        .parse()
        .map_err(|_| format!("strconv.Atoi: parsing {key:?}: invalid syntax"))?;
    let n = len as i64;
    if idx >= n || idx < -n {
        return Err(format!("Unable to access invalid index: {idx}"));
    }
    Ok(if idx < 0 { idx + n } else { idx } as usize)
}

fn container_get<'a>(con: &'a Value, key: &str) -> Result<Option<&'a Value>, String> {
    match con {
        Value::Object(m) => Ok(m.get(key)),
        Value::Array(a) => Ok(Some(&a[array_index(a.len(), key)?])),
        _ => Err("not a container".into()),
    }
}

fn container_add(con: &mut Value, key: &str, v: Value) -> Result<(), String> {
    match con {
        Value::Object(m) => {
            m.insert(key.to_string(), v);
        }
        Value::Array(a) => {
            if key == "-" {
                a.push(v);
            } else {
                let i = array_index(a.len() + 1, key)
                    .map_err(|e| format!("value was not a proper array index: '{key}': {e}"))?;
                a.insert(i, v);
            }
        }
        _ => return Err("not a container".into()),
    }
    Ok(())
}

fn container_remove(con: &mut Value, key: &str) -> Result<Value, String> {
    match con {
        Value::Object(m) => m
            .remove(key)
            .ok_or_else(|| format!("Unable to remove nonexistent key: {key}: missing value")),
        Value::Array(a) => {
            let i = array_index(a.len(), key)?;
            Ok(a.remove(i))
        }
        _ => Err("not a container".into()),
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
        // json-patch v4: replace adds a missing key, negative indices count from the end
        json6902(
            &mut t,
            &json!([{"op": "replace", "path": "/zz", "value": 1}, {"op": "remove", "path": "/a/-1"},
            {"op": "add", "path": "/a/-1", "value": 7}]),
        )
        .unwrap();
        assert_eq!(t, json!({"a": [9, 2, 7], "b": {}, "zz": 1}));
    }
}
