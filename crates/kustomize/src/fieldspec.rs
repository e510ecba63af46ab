//! Field specs: "which field of which kinds" a transformer touches, and walking to them.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::resource::Gvk;

/// One field spec, as in kustomize's transformer configurations.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct FieldSpec {
    /// API group (empty: any)
    pub group: String,
    /// API version (empty: any)
    pub version: String,
    /// Kind (empty: any)
    pub kind: String,
    /// Slash-separated path; `\/` escapes a slash, `[]` marks a sequence.
    pub path: String,
    /// Create the field when missing.
    #[serde(rename = "create")]
    pub create: bool,
}

impl FieldSpec {
    /// A spec for any kind.
    pub fn any(path: &str, create: bool) -> FieldSpec {
        FieldSpec {
            path: path.to_string(),
            create,
            ..Default::default()
        }
    }

    /// The gvk selector.
    pub fn gvk(&self) -> Gvk {
        Gvk {
            group: self.group.clone(),
            version: self.version.clone(),
            kind: self.kind.clone(),
        }
    }

    /// Does this spec apply to a resource of the given gvk?
    pub fn applies_to(&self, gvk: &Gvk) -> bool {
        (self.group.is_empty() || self.group == gvk.group)
            && (self.version.is_empty() || self.version == gvk.version)
            && (self.kind.is_empty() || self.kind == gvk.kind)
    }

    /// Same selector and path (kustomize de-duplicates specs this way).
    pub fn same_target(&self, o: &FieldSpec) -> bool {
        self.group == o.group
            && self.version == o.version
            && self.kind == o.kind
            && self.path == o.path
    }
}

/// Split a path on unescaped slashes.
pub fn split_path(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek() == Some(&'/') {
            cur.push('/');
            chars.next();
        } else if c == '/' {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

/// What to create for a missing final field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateKind {
    /// Never create.
    None,
    /// A mapping.
    Map,
    /// A scalar (null placeholder the setter fills in).
    Scalar,
}

/// Error from a setter.
pub type SetResult = Result<(), String>;

/// Walk `obj` along `spec`'s path and call `set` on every field found (or created).
/// The setter receives the field value (possibly `Null` when just created).
pub fn apply(
    obj: &mut Value,
    spec: &FieldSpec,
    create_kind: CreateKind,
    set: &mut dyn FnMut(&mut Value) -> SetResult,
) -> SetResult {
    let parts = split_path(&spec.path);
    walk(obj, &parts, spec.create, create_kind, set)
}

fn walk(
    node: &mut Value,
    path: &[String],
    create: bool,
    create_kind: CreateKind,
    set: &mut dyn FnMut(&mut Value) -> SetResult,
) -> SetResult {
    if path.is_empty() {
        return set(node);
    }
    match node {
        Value::Null => Ok(()),
        Value::Array(items) => {
            for it in items.iter_mut() {
                walk(it, path, create, create_kind, set)?;
            }
            Ok(())
        }
        Value::Object(m) => {
            let (field, is_seq) = match path[0].strip_suffix("[]") {
                Some(f) => (f.to_string(), true),
                None => (path[0].clone(), false),
            };
            let last = path.len() <= 1;
            let kind = if !create || create_kind == CreateKind::None || is_seq {
                if is_seq { Some(Kind::Seq) } else { None }
            } else if last {
                Some(match create_kind {
                    CreateKind::Map => Kind::Map,
                    _ => Kind::Scalar,
                })
            } else {
                Some(Kind::Map)
            };
            let may_create = create && create_kind != CreateKind::None && !is_seq;
            if !m.contains_key(&field) {
                if !may_create {
                    return Ok(());
                }
                let init = match kind {
                    Some(Kind::Map) => Value::Object(Map::new()),
                    _ => Value::Null,
                };
                m.insert(field.clone(), init);
            }
            let Some(child) = m.get_mut(&field) else {
                return Ok(());
            };
            if child.is_null() {
                match kind {
                    Some(Kind::Map) => *child = Value::Object(Map::new()),
                    Some(Kind::Seq) => *child = Value::Array(Vec::new()),
                    _ => {}
                }
            }
            walk(child, &path[1..], create, create_kind, set)
        }
        _ => Err(format!(
            "expected sequence or mapping node at '{}'",
            path.join("/")
        )),
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Map,
    Seq,
    Scalar,
}

/// Read the value at a path (no sequence fan-out; `[]` segments are not allowed).
pub fn get_path<'a>(obj: &'a Value, parts: &[String]) -> Option<&'a Value> {
    let mut v = obj;
    for p in parts {
        v = v.get(p.as_str())?;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn walks_and_creates() {
        let mut v = json!({"spec": {"containers": [{"image": "a"}, {"image": "b"}]}});
        let spec = FieldSpec::any("spec/containers[]/image", true);
        let mut seen = Vec::new();
        apply(&mut v, &spec, CreateKind::Scalar, &mut |x| {
            seen.push(x.clone());
            *x = json!("z");
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, vec![json!("a"), json!("b")]);
        let spec = FieldSpec::any("metadata/labels", true);
        apply(&mut v, &spec, CreateKind::Map, &mut |x| {
            x.as_object_mut().unwrap().insert("k".into(), json!("v"));
            Ok(())
        })
        .unwrap();
        assert_eq!(v["metadata"]["labels"]["k"], json!("v"));
        assert_eq!(split_path("a/b\\/c"), vec!["a", "b/c"]);
    }
}
