//! JSON patch, merge patch and strategic merge patch, plus the list-type knowledge
//! (merge keys) shared with server-side apply.

use crate::status::{ApiError, ApiResult};
use serde_json::{Map, Value};

/// How a list merges: atomically, as a set of scalars, or as a map keyed by fields.
#[derive(Debug, Clone, PartialEq)]
pub enum ListType {
    Atomic,
    Set,
    Map(Vec<String>),
}

/// Knows the list type at a field path (field names from the root, list indices left out).
pub trait ListTypes {
    fn list_type(&self, path: &[String]) -> ListType;
}

/// Merge keys of the built-in kinds (the `x-kubernetes-patch-merge-key` table of the common types).
pub struct Builtin;

impl ListTypes for Builtin {
    fn list_type(&self, path: &[String]) -> ListType {
        builtin_list_type(path)
    }
}

fn map1(k: &str) -> ListType {
    ListType::Map(vec![k.to_string()])
}

pub fn builtin_list_type(path: &[String]) -> ListType {
    let Some(last) = path.last() else {
        return ListType::Atomic;
    };
    let in_container = path.iter().any(|p| {
        matches!(
            p.as_str(),
            "containers" | "initContainers" | "ephemeralContainers"
        )
    });
    match last.as_str() {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims"
        | "schedulingGates" => map1("name"),
        "volumeMounts" => map1("mountPath"),
        "volumeDevices" => map1("devicePath"),
        "ports" if in_container => map1("containerPort"),
        "ports" if path.len() == 2 && path[0] == "spec" => map1("port"),
        "hostAliases" => map1("ip"),
        "conditions" => map1("type"),
        "ownerReferences" if path.len() == 2 => map1("uid"),
        "finalizers" if path.len() == 2 && path[0] == "metadata" => ListType::Set,
        "topologySpreadConstraints" => map1("topologyKey"),
        "secrets" if path.len() == 1 => map1("name"),
        _ => ListType::Atomic,
    }
}

/// Built-in list types as server-side apply sees them: like [`Builtin`], except that ports are
/// keyed by port and protocol (strategic merge patch keys them by port alone).
pub struct BuiltinApply;

impl ListTypes for BuiltinApply {
    fn list_type(&self, path: &[String]) -> ListType {
        match builtin_list_type(path) {
            ListType::Map(k) if k == ["containerPort"] => {
                ListType::Map(vec!["containerPort".into(), "protocol".into()])
            }
            ListType::Map(k) if k == ["port"] => {
                ListType::Map(vec!["port".into(), "protocol".into()])
            }
            other => other,
        }
    }
}

/// List types from a CRD's structural schema (`x-kubernetes-list-type`, `x-kubernetes-list-map-keys`);
/// metadata follows the built-in table.
pub struct SchemaLists<'a>(pub Option<&'a Value>);

pub fn schema_at<'a>(root: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut cur = root;
    for seg in path {
        if cur.get("type").and_then(Value::as_str) == Some("array") {
            cur = cur.get("items")?;
        }
        cur = match cur.get("properties").and_then(|p| p.get(seg)) {
            Some(s) => s,
            None => match cur.get("additionalProperties") {
                Some(s) if s.is_object() => s,
                _ => return None,
            },
        };
    }
    Some(cur)
}

impl ListTypes for SchemaLists<'_> {
    fn list_type(&self, path: &[String]) -> ListType {
        if path.first().map(String::as_str) == Some("metadata") {
            return builtin_list_type(path);
        }
        let Some(root) = self.0 else {
            return ListType::Atomic;
        };
        let Some(s) = schema_at(root, path) else {
            return ListType::Atomic;
        };
        match s.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("set") => ListType::Set,
            Some("map") => ListType::Map(
                s.get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|k| k.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            _ => ListType::Atomic,
        }
    }
}

/// RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            if let Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// RFC 6902 JSON patch.
pub fn json_patch(target: &mut Value, patch: &Value) -> ApiResult<()> {
    let p: json_patch::Patch = serde_json::from_value(patch.clone())
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    for op in p.0 {
        // like kube-apiserver, `test` with a null value succeeds on a missing path
        if let json_patch::PatchOperation::Test(t) = &op
            && t.value.is_null()
            && target.pointer(t.path.as_str()).is_none()
        {
            continue;
        }
        json_patch::patch(target, &[op]).map_err(|e| {
            ApiError::new(
                422,
                "Invalid",
                format!("the server rejected our request due to an error in our request: {e}"),
            )
        })?;
    }
    Ok(())
}

fn key_of(item: &Value, keys: &[String]) -> Option<Vec<Value>> {
    let o = item.as_object()?;
    let vals: Vec<Value> = keys
        .iter()
        .map(|k| o.get(k).cloned().unwrap_or(Value::Null))
        .collect();
    if vals.iter().all(Value::is_null) {
        None
    } else {
        Some(vals)
    }
}

/// Strategic merge patch of `orig` with `patch` (directives `$patch`, `$retainKeys`,
/// `$deleteFromPrimitiveList/<f>`, `$setElementOrder/<f>` (accepted, order not applied)).
pub fn strategic_merge(orig: &Value, patch: &Value, lt: &dyn ListTypes) -> ApiResult<Value> {
    let mut path = vec![];
    Ok(smp_value(Some(orig), patch, lt, &mut path)?.unwrap_or(Value::Null))
}

fn smp_value(
    orig: Option<&Value>,
    patch: &Value,
    lt: &dyn ListTypes,
    path: &mut Vec<String>,
) -> ApiResult<Option<Value>> {
    match patch {
        Value::Object(p) => {
            match p.get("$patch").and_then(Value::as_str) {
                Some("delete") => return Ok(None),
                Some("replace") => {
                    let mut m = p.clone();
                    m.remove("$patch");
                    return Ok(Some(Value::Object(m)));
                }
                Some("merge") | None => {}
                Some(other) => {
                    return Err(ApiError::bad_request(format!(
                        "unknown patch type: {other}"
                    )));
                }
            }
            let mut out = match orig {
                Some(Value::Object(o)) => o.clone(),
                _ => Map::new(),
            };
            if let Some(retain) = p.get("$retainKeys").and_then(Value::as_array) {
                let keep: Vec<&str> = retain.iter().filter_map(Value::as_str).collect();
                out.retain(|k, _| keep.contains(&k.as_str()));
            }
            for (k, v) in p {
                if k == "$patch" || k == "$retainKeys" || k.starts_with("$setElementOrder/") {
                    continue;
                }
                if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
                    if let (Some(Value::Array(list)), Some(del)) =
                        (out.get_mut(field), v.as_array())
                    {
                        list.retain(|x| !del.contains(x));
                    }
                    continue;
                }
                if v.is_null() {
                    out.remove(k);
                    continue;
                }
                path.push(k.clone());
                let merged = smp_value(out.get(k), v, lt, path)?;
                path.pop();
                match merged {
                    Some(m) => {
                        out.insert(k.clone(), m);
                    }
                    None => {
                        out.remove(k);
                    }
                }
            }
            Ok(Some(Value::Object(out)))
        }
        Value::Array(items) => {
            let ty = lt.list_type(path);
            // a `{"$patch": "replace"}` element replaces the whole list
            if items
                .iter()
                .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
            {
                let rest: Vec<Value> = items
                    .iter()
                    .filter(|i| i.get("$patch").and_then(Value::as_str) != Some("replace"))
                    .cloned()
                    .collect();
                return Ok(Some(Value::Array(rest)));
            }
            let orig_items = match orig {
                Some(Value::Array(a)) => a.clone(),
                _ => vec![],
            };
            match ty {
                ListType::Atomic => Ok(Some(patch.clone())),
                ListType::Set => {
                    let mut out = orig_items;
                    for i in items {
                        if !out.contains(i) {
                            out.push(i.clone());
                        }
                    }
                    Ok(Some(Value::Array(out)))
                }
                ListType::Map(keys) => {
                    let mut out = orig_items;
                    for item in items {
                        let Some(k) = key_of(item, &keys) else {
                            return Err(ApiError::bad_request(format!(
                                "map: {item} does not contain declared merge key: {}",
                                keys.join(",")
                            )));
                        };
                        let pos = out
                            .iter()
                            .position(|o| key_of(o, &keys).as_ref() == Some(&k));
                        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
                        match (pos, delete) {
                            (Some(i), true) => {
                                out.remove(i);
                            }
                            (None, true) => {}
                            (Some(i), false) => {
                                if let Some(m) = smp_value(Some(&out[i]), item, lt, path)? {
                                    out[i] = m;
                                }
                            }
                            (None, false) => {
                                if let Some(m) = smp_value(None, item, lt, path)? {
                                    out.push(m);
                                }
                            }
                        }
                    }
                    Ok(Some(Value::Array(out)))
                }
            }
        }
        other => Ok(Some(other.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn smp_merges_containers_by_name_and_env() {
        let orig = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
            {"name": "b", "image": "b:1"}
        ]}}}});
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "env": [{"name": "Y", "value": "2"}]},
            {"name": "b", "$patch": "delete"},
            {"name": "c", "image": "c:1"}
        ]}}}});
        let out = strategic_merge(&orig, &patch, &Builtin).unwrap();
        let cs = out
            .pointer("/spec/template/spec/containers")
            .unwrap()
            .as_array()
            .unwrap();
        assert_eq!(cs.len(), 2);
        assert_eq!(cs[0]["image"], "a:1");
        assert_eq!(cs[0]["env"].as_array().unwrap().len(), 2);
        assert_eq!(cs[1]["name"], "c");
    }

    #[test]
    fn smp_directives() {
        let orig = json!({"metadata": {"finalizers": ["a", "b"]}, "spec": {"x": 1, "y": 2, "args": ["1", "2"]}});
        let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]},
            "spec": {"$retainKeys": ["x", "args"], "args": ["3"]}});
        let out = strategic_merge(&orig, &patch, &Builtin).unwrap();
        assert_eq!(
            out,
            json!({"metadata": {"finalizers": ["b"]}, "spec": {"x": 1, "args": ["3"]}})
        );
    }

    #[test]
    fn merge_patch_removes_nulls() {
        let mut t = json!({"a": {"b": 1, "c": 2}});
        merge_patch(&mut t, &json!({"a": {"b": null, "d": 3}}));
        assert_eq!(t, json!({"a": {"c": 2, "d": 3}}));
    }
}
