//! Patches: strategic merge (kustomize's kyaml flavour) and JSON 6902.

use serde_json::{Map, Value};

/// The merge key of a list field for built-in kinds (from the Kubernetes schema), by the
/// field name and the name of the field holding it.
fn schema_merge_key(parent: &str, field: &str, kind: &str) -> Option<&'static str> {
    match (parent, field) {
        (_, "containers") | (_, "initContainers") | (_, "ephemeralContainers") => Some("name"),
        (_, "env") => Some("name"),
        (_, "volumes") => Some("name"),
        (_, "volumeMounts") => Some("mountPath"),
        (_, "volumeDevices") => Some("devicePath"),
        (_, "imagePullSecrets") => Some("name"),
        (_, "hostAliases") => Some("ip"),
        (_, "topologySpreadConstraints") => Some("topologyKey"),
        ("spec", "ports") if kind == "Service" => Some("port"),
        (_, "ports") => Some("containerPort"),
        _ => None,
    }
}

/// Strategic-merge `patch` into `target`. Returns `false` when the patch deletes the
/// whole object (`$patch: delete` at the top).
pub fn strategic_merge(target: &mut Value, patch: &Value) -> Result<bool, String> {
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
    merge_value(target, patch, "", "", &kind)?;
    Ok(true)
}

fn strip_directives(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|k, _| !k.starts_with('$'));
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

fn merge_value(
    target: &mut Value,
    patch: &Value,
    parent: &str,
    field: &str,
    kind: &str,
) -> Result<(), String> {
    match (target.is_object(), patch) {
        (true, Value::Object(pm)) => {
            if pm.get("$patch").and_then(Value::as_str) == Some("replace") {
                *target = cleaned(patch);
                return Ok(());
            }
            let Value::Object(tm) = target else {
                return Ok(());
            };
            merge_map(tm, pm, field, kind)
        }
        (_, p) => {
            *target = cleaned(p);
            Ok(())
        }
    }
    .map(|_| {
        let _ = parent;
    })
}

fn merge_map(
    tm: &mut Map<String, Value>,
    pm: &Map<String, Value>,
    this_field: &str,
    kind: &str,
) -> Result<(), String> {
    // `$retainKeys`: drop keys of the target that are not listed
    if let Some(Value::Array(keep)) = pm.get("$retainKeys") {
        let keep: Vec<&str> = keep.iter().filter_map(Value::as_str).collect();
        tm.retain(|k, _| keep.contains(&k.as_str()));
    }
    for (k, pv) in pm {
        if k.starts_with('$') {
            if let Some(f) = k.strip_prefix("$deleteFromPrimitiveList/")
                && let (Some(Value::Array(t)), Value::Array(del)) = (tm.get_mut(f), pv)
            {
                t.retain(|x| !del.contains(x));
            }
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
                                merge_map(tvm, pvm, k, kind)?;
                            }
                        }
                    }
                }
                (Value::Array(ta), Value::Array(pa)) => {
                    merge_list(ta, pa, this_field, k, kind)?;
                    if let Some(Value::Array(order)) = pm.get(&format!("$setElementOrder/{k}")) {
                        apply_order(ta, order, this_field, k, kind);
                    }
                }
                (tv, pv) => *tv = cleaned(pv),
            },
        }
    }
    Ok(())
}

fn list_key(ta: &[Value], pa: &[Value], parent: &str, field: &str, kind: &str) -> Option<String> {
    if let Some(k) = schema_merge_key(parent, field, kind) {
        return Some(k.to_string());
    }
    // kyaml infers the key "name" when every element of a list has it
    let has_key = |l: &[Value]| !l.is_empty() && l.iter().all(|v| v.get("name").is_some());
    if has_key(pa) || has_key(ta) {
        Some("name".to_string())
    } else {
        None
    }
}

/// Merge two keyed lists the way kustomize does: elements named by the patch first (in the
/// patch's order), then the target's other elements in their order.
fn merge_list(
    ta: &mut Vec<Value>,
    pa: &[Value],
    parent: &str,
    field: &str,
    kind: &str,
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
    let all_maps = !pa.is_empty() && pa.iter().all(Value::is_object);
    let key = if all_maps {
        list_key(ta, pa, parent, field, kind)
    } else {
        None
    };
    let Some(key) = key else {
        *ta = pa
            .iter()
            .filter(|v| v.get("$patch").is_none())
            .map(cleaned)
            .collect();
        return Ok(());
    };
    let mut order: Vec<Value> = Vec::new();
    for v in pa.iter().chain(ta.iter()) {
        if let Some(k) = v.get(&key)
            && !order.contains(k)
        {
            order.push(k.clone());
        }
    }
    let mut out = Vec::new();
    for k in &order {
        let t = ta.iter().find(|x| x.get(&key) == Some(k));
        let p = pa.iter().find(|x| x.get(&key) == Some(k));
        match (t, p) {
            (_, Some(p)) if p.get("$patch").and_then(Value::as_str) == Some("delete") => {}
            (Some(t), Some(p)) => {
                let mut t = t.clone();
                if p.get("$patch").and_then(Value::as_str) == Some("replace") {
                    t = cleaned(p);
                } else if let (Value::Object(tm), Value::Object(pm)) = (&mut t, p) {
                    merge_map(tm, pm, field, kind)?;
                }
                out.push(t);
            }
            (None, Some(p)) => out.push(cleaned(p)),
            (Some(t), None) => out.push(t.clone()),
            (None, None) => {}
        }
    }
    // elements without the key stay at the end
    out.extend(ta.iter().filter(|x| x.get(&key).is_none()).cloned());
    *ta = out;
    Ok(())
}

fn apply_order(ta: &mut Vec<Value>, order: &[Value], parent: &str, field: &str, kind: &str) {
    let key = list_key(ta, order, parent, field, kind);
    let ident = |v: &Value| -> Value {
        match &key {
            Some(k) => v.get(k).cloned().unwrap_or(Value::Null),
            None => v.clone(),
        }
    };
    let mut rest: Vec<Value> = std::mem::take(ta);
    let mut out = Vec::new();
    for o in order {
        let id = ident(o);
        if let Some(i) = rest.iter().position(|t| ident(t) == id) {
            out.push(rest.remove(i));
        }
    }
    out.extend(rest);
    *ta = out;
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
        let mut t = json!({"kind": "Deployment", "spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "x", "env": [{"name": "A", "value": "1"}]},
            {"name": "b", "image": "y"}]}}}});
        let p = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "z", "env": [{"name": "B", "value": "2"}]},
            {"name": "b", "$patch": "delete"}]}}}});
        assert!(strategic_merge(&mut t, &p).unwrap());
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
