//! Structural schemas of CRDs: defaulting, pruning and validation (422 causes shaped like
//! kube-apiserver's).

use crate::status::{Cause, render_value};
use serde_json::Value;

fn preserves(s: &Value) -> bool {
    s.get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true)
}

fn ty(s: &Value) -> Option<&str> {
    s.get("type").and_then(Value::as_str)
}

/// Applies `default`s of absent properties, recursively.
pub fn apply_defaults(v: &mut Value, s: &Value) {
    match v {
        Value::Object(o) => {
            if let Some(props) = s.get("properties").and_then(Value::as_object) {
                for (k, ps) in props {
                    if !o.contains_key(k)
                        && let Some(d) = ps.get("default")
                    {
                        o.insert(k.clone(), d.clone());
                    }
                    if let Some(child) = o.get_mut(k) {
                        apply_defaults(child, ps);
                    }
                }
            } else if let Some(ap) = s.get("additionalProperties").filter(|a| a.is_object()) {
                for (_, child) in o.iter_mut() {
                    apply_defaults(child, ap);
                }
            }
        }
        Value::Array(a) => {
            if let Some(items) = s.get("items") {
                for child in a.iter_mut() {
                    apply_defaults(child, items);
                }
            }
        }
        _ => {}
    }
}

/// Removes fields the schema does not know, unless x-kubernetes-preserve-unknown-fields.
pub fn prune(v: &mut Value, s: &Value, root: bool) {
    match v {
        Value::Object(o) => {
            let embedded = s
                .get("x-kubernetes-embedded-resource")
                .and_then(Value::as_bool)
                == Some(true);
            let props = s.get("properties").and_then(Value::as_object);
            let ap = s.get("additionalProperties").filter(|a| a.is_object());
            if let Some(ap) = ap {
                for (_, child) in o.iter_mut() {
                    prune(child, ap, false);
                }
                return;
            }
            let keep_unknown = preserves(s)
                || s.get("additionalProperties").and_then(Value::as_bool) == Some(true);
            let keys: Vec<String> = o.keys().cloned().collect();
            for k in keys {
                let meta_field =
                    (root || embedded) && matches!(k.as_str(), "apiVersion" | "kind" | "metadata");
                match props.and_then(|p| p.get(&k)) {
                    Some(ps) if !(root && k == "metadata") => {
                        if let Some(child) = o.get_mut(&k) {
                            prune(child, ps, false);
                        }
                    }
                    _ if meta_field => {}
                    Some(_) => {}
                    None => {
                        if !keep_unknown {
                            o.remove(&k);
                        }
                    }
                }
            }
        }
        Value::Array(a) => {
            if let Some(items) = s.get("items") {
                for child in a.iter_mut() {
                    prune(child, items, false);
                }
            }
        }
        _ => {}
    }
}

/// Paths of fields that pruning would drop (for `fieldValidation=Strict`).
pub fn unknown_fields(v: &Value, s: &Value, path: &str, root: bool, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            let embedded = s
                .get("x-kubernetes-embedded-resource")
                .and_then(Value::as_bool)
                == Some(true);
            if let Some(ap) = s.get("additionalProperties").filter(|a| a.is_object()) {
                for (k, child) in o {
                    unknown_fields(child, ap, &join(path, k), false, out);
                }
                return;
            }
            let keep_unknown = preserves(s)
                || s.get("additionalProperties").and_then(Value::as_bool) == Some(true);
            let props = s.get("properties").and_then(Value::as_object);
            for (k, child) in o {
                if (root || embedded) && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                match props.and_then(|p| p.get(k)) {
                    Some(ps) => unknown_fields(child, ps, &join(path, k), false, out),
                    None if !keep_unknown => out.push(join(path, k)),
                    None => {}
                }
            }
        }
        Value::Array(a) => {
            if let Some(items) = s.get("items") {
                for (i, child) in a.iter().enumerate() {
                    unknown_fields(child, items, &format!("{path}[{i}]"), false, out);
                }
            }
        }
        _ => {}
    }
}

fn type_ok(v: &Value, s: &Value) -> bool {
    if v.is_null() {
        return s.get("nullable").and_then(Value::as_bool) == Some(true);
    }
    if s.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true) {
        return v.is_string() || v.as_i64().is_some() || v.as_u64().is_some();
    }
    match ty(s) {
        Some("object") => v.is_object(),
        Some("array") => v.is_array(),
        Some("string") => v.is_string(),
        Some("integer") => {
            v.as_i64().is_some()
                || v.as_u64().is_some()
                || v.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        Some("number") => v.is_number(),
        Some("boolean") => v.is_boolean(),
        _ => true,
    }
}

fn join(path: &str, k: &str) -> String {
    if path.is_empty() {
        k.to_string()
    } else {
        format!("{path}.{k}")
    }
}

/// Validates `v` against `s`; causes use the real messages.
pub fn validate(v: &Value, s: &Value, path: &str, old: Option<&Value>, out: &mut Vec<Cause>) {
    if !type_ok(v, s) {
        if v.is_null() {
            out.push(Cause::invalid(
                path,
                v,
                format!(
                    "{path} in body must be of type {}: \"null\"",
                    ty(s).unwrap_or("object")
                ),
            ));
        } else {
            let actual = match v {
                Value::Object(_) => "object",
                Value::Array(_) => "array",
                Value::String(_) => "string",
                Value::Bool(_) => "boolean",
                Value::Number(n) if n.is_f64() => "number",
                Value::Number(_) => "integer",
                Value::Null => "null",
            };
            out.push(Cause::new(
                "FieldValueTypeInvalid",
                path,
                format!(
                    "Invalid value: \"{actual}\": {path} in body must be of type {}: \"{actual}\"",
                    ty(s).unwrap_or("")
                ),
            ));
        }
        return;
    }
    if let Some(rules) = s.get("x-kubernetes-validations").and_then(Value::as_array) {
        for r in rules {
            let Some(rule) = r.get("rule").and_then(Value::as_str) else {
                continue;
            };
            if crate::cel::check(rule, v, old) != crate::cel::Outcome::Fail {
                continue;
            }
            let msg = r
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| format!("failed rule: {rule}"));
            let field = match r.get("fieldPath").and_then(Value::as_str) {
                Some(fp) => join(path, fp.trim_start_matches('.')),
                None => path.to_string(),
            };
            out.push(match r.get("reason").and_then(Value::as_str) {
                Some("FieldValueForbidden") => {
                    Cause::new("FieldValueForbidden", field, format!("Forbidden: {msg}"))
                }
                Some("FieldValueRequired") => Cause::new(
                    "FieldValueRequired",
                    field,
                    format!("Required value: {msg}"),
                ),
                Some("FieldValueDuplicate") => Cause::new(
                    "FieldValueDuplicate",
                    field,
                    format!("Duplicate value: {msg}"),
                ),
                _ => Cause::invalid(field, v, msg),
            });
        }
    }
    if let Some(en) = s.get("enum").and_then(Value::as_array)
        && !en.contains(v)
    {
        let supported: Vec<String> = en.iter().map(render_value).collect();
        out.push(Cause::new(
            "FieldValueNotSupported",
            path,
            format!(
                "Unsupported value: {}: supported values: {}",
                render_value(v),
                supported.join(", ")
            ),
        ));
    }
    match v {
        Value::String(st) => {
            let len = st.chars().count() as u64;
            if let Some(max) = s.get("maxLength").and_then(Value::as_u64)
                && len > max
            {
                out.push(Cause::new(
                    "FieldValueTooLong",
                    path,
                    format!("Too long: may not be more than {max} bytes"),
                ));
            }
            if let Some(min) = s.get("minLength").and_then(Value::as_u64)
                && len < min
            {
                out.push(Cause::invalid(
                    path,
                    v,
                    format!("{path} in body should be at least {min} chars long"),
                ));
            }
            if let Some(p) = s.get("pattern").and_then(Value::as_str)
                && let Some(re) = cached_regex(p)
                && !re.is_match(st)
            {
                out.push(Cause::invalid(
                    path,
                    v,
                    format!("{path} in body should match '{p}'"),
                ));
            }
        }
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or(0.0);
            let excl_min = s.get("exclusiveMinimum").and_then(Value::as_bool) == Some(true);
            let excl_max = s.get("exclusiveMaximum").and_then(Value::as_bool) == Some(true);
            if let Some(min) = s.get("minimum").and_then(Value::as_f64)
                && (x < min || (excl_min && x == min))
            {
                let rel = if excl_min {
                    "greater than"
                } else {
                    "greater than or equal to"
                };
                out.push(Cause::invalid(
                    path,
                    v,
                    format!("{path} in body should be {rel} {}", fmt_num(min)),
                ));
            }
            if let Some(max) = s.get("maximum").and_then(Value::as_f64)
                && (x > max || (excl_max && x == max))
            {
                let rel = if excl_max {
                    "less than"
                } else {
                    "less than or equal to"
                };
                out.push(Cause::invalid(
                    path,
                    v,
                    format!("{path} in body should be {rel} {}", fmt_num(max)),
                ));
            }
        }
        Value::Array(items) => {
            if let Some(max) = s.get("maxItems").and_then(Value::as_u64)
                && items.len() as u64 > max
            {
                out.push(Cause::new(
                    "FieldValueTooMany",
                    path,
                    format!("Too many: {}: must have at most {max} items", items.len()),
                ));
            }
            if let Some(min) = s.get("minItems").and_then(Value::as_u64)
                && (items.len() as u64) < min
            {
                out.push(Cause::invalid(
                    path,
                    v,
                    format!("{path} in body should have at least {min} items"),
                ));
            }
            if let Some(is) = s.get("items") {
                for (i, item) in items.iter().enumerate() {
                    validate(item, is, &format!("{path}[{i}]"), None, out);
                }
            }
            if s.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("set") {
                for (i, item) in items.iter().enumerate() {
                    if items[..i].contains(item) {
                        out.push(Cause::new(
                            "FieldValueDuplicate",
                            format!("{path}[{i}]"),
                            format!("Duplicate value: {item}"),
                        ));
                    }
                }
            }
        }
        Value::Object(o) => {
            if let Some(req) = s.get("required").and_then(Value::as_array) {
                for r in req.iter().filter_map(Value::as_str) {
                    if !o.contains_key(r) {
                        out.push(Cause::required(join(path, r)));
                    }
                }
            }
            if let Some(max) = s.get("maxProperties").and_then(Value::as_u64)
                && o.len() as u64 > max
            {
                out.push(Cause::new(
                    "FieldValueTooMany",
                    path,
                    format!("Too many: {}: must have at most {max} items", o.len()),
                ));
            }
            if let Some(min) = s.get("minProperties").and_then(Value::as_u64)
                && (o.len() as u64) < min
            {
                out.push(Cause::invalid(
                    path,
                    v,
                    format!("{path} in body should have at least {min} properties"),
                ));
            }
            let props = s.get("properties").and_then(Value::as_object);
            let ap = s.get("additionalProperties").filter(|a| a.is_object());
            for (k, child) in o {
                if path.is_empty() && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                if let Some(ps) = props.and_then(|p| p.get(k)) {
                    validate(child, ps, &join(path, k), old.and_then(|o| o.get(k)), out);
                } else if let Some(ap) = ap {
                    validate(child, ap, &join(path, k), old.and_then(|o| o.get(k)), out);
                }
            }
        }
        _ => {}
    }
}

/// Compiled schema patterns, shared by every request.
fn cached_regex(p: &str) -> Option<regex::Regex> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<String, Option<regex::Regex>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut map = match cache.lock() {
        Ok(m) => m,
        Err(e) => e.into_inner(),
    };
    map.entry(p.to_string())
        .or_insert_with(|| regex::Regex::new(p).ok())
        .clone()
}

fn fmt_num(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// Checks that a CRD's schema is structural enough for us (every node typed, or preserving unknown
/// fields). Returns causes for `spec.versions[i].schema.openAPIV3Schema`.
pub fn check_structural(s: &Value, path: &str, out: &mut Vec<Cause>) {
    let Some(o) = s.as_object() else { return };
    let typed = o.contains_key("type")
        || preserves(s)
        || o.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true)
        || o.contains_key("anyOf")
        || o.contains_key("allOf")
        || o.contains_key("oneOf");
    if !typed && !path.ends_with("openAPIV3Schema") {
        out.push(Cause::required(format!("{path}.type")));
    }
    if let Some(props) = o.get("properties").and_then(Value::as_object) {
        for (k, c) in props {
            check_structural(c, &format!("{path}.properties[{k}]"), out);
        }
    }
    if let Some(items) = o.get("items") {
        check_structural(items, &format!("{path}.items"), out);
    }
    if let Some(ap) = o.get("additionalProperties").filter(|a| a.is_object()) {
        check_structural(ap, &format!("{path}.additionalProperties"), out);
    }
}

/// Keeps only what a CRD schema knows and fills defaults; returns the object for validation.
pub fn admit(obj: &mut Value, schema: &Value, old: Option<&Value>) -> Vec<Cause> {
    apply_defaults(obj, schema);
    prune(obj, schema, true);
    let mut causes = vec![];
    validate(obj, schema, "", old, &mut causes);
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "required": ["url"], "properties": {
                "url": {"type": "string", "pattern": "^https?://"},
                "interval": {"type": "string", "default": "1m"},
                "replicas": {"type": "integer", "minimum": 0, "maximum": 10},
                "mode": {"type": "string", "enum": ["a", "b"]},
                "name": {"type": "string", "maxLength": 3},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
            }}
        }})
    }

    #[test]
    fn defaults_prunes_and_validates() {
        let mut o = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n"},
            "spec": {"url": "https://x", "junk": 1, "extra": {"free": true}}});
        assert!(admit(&mut o, &schema(), None).is_empty());
        assert_eq!(o["spec"]["interval"], "1m");
        assert!(o["spec"].get("junk").is_none());
        assert_eq!(o["spec"]["extra"]["free"], true);

        let mut bad =
            json!({"spec": {"url": "ftp://x", "replicas": "three", "mode": "c", "name": "long"}});
        let causes = admit(&mut bad, &schema(), None);
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        assert!(fields.contains(&"spec.url"), "{causes:?}");
        assert!(fields.contains(&"spec.replicas"));
        assert!(fields.contains(&"spec.mode"));
        assert!(fields.contains(&"spec.name"));
        let mut missing = json!({"spec": {}});
        let c = admit(&mut missing, &schema(), None);
        assert_eq!(c[0].field, "spec.url");
        assert_eq!(c[0].reason, "FieldValueRequired");
    }
}
