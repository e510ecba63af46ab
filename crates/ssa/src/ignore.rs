//! Drift ignore rules: JSON pointers (RFC 6901) and an optional target selector (regular
//! expressions anchored at both ends for group, version, kind, name and namespace; label
//! selector expressions for labels and annotations), as Kustomization `spec.ignore`.

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::Value;

use crate::SsaError;
use crate::object::{annotations, labels, split_api_version, str_at};

/// Fields to leave out of drift detection (and out of apply when they drifted).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IgnoreRule {
    /// JSON pointers, e.g. `/spec/replicas`; `""` ignores the whole object.
    pub paths: Vec<String>,
    /// Objects the rule applies to; `None`: all.
    pub target: Option<Selector>,
}

/// Which objects an ignore rule targets. Empty fields match anything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub name: String,
    pub namespace: String,
    /// A label-selector expression evaluated against annotations.
    pub annotation_selector: String,
    /// A label-selector expression, e.g. `app=web,tier in (a,b),!legacy`.
    pub label_selector: String,
}

#[derive(Clone, Debug)]
enum Requirement {
    Exists(String),
    NotExists(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

impl Requirement {
    fn matches(&self, set: &BTreeMap<String, String>) -> bool {
        match self {
            Requirement::Exists(k) => set.contains_key(k),
            Requirement::NotExists(k) => !set.contains_key(k),
            Requirement::In(k, vs) => set.get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => set.get(k).is_none_or(|v| !vs.contains(v)),
        }
    }
}

/// Parses a label selector expression (`=`, `==`, `!=`, `in`, `notin`, `key`, `!key`).
fn parse_label_selector(expr: &str) -> Result<Vec<Requirement>, String> {
    let mut parts = vec![];
    let mut depth = 0i32;
    let mut cur = String::new();
    for c in expr.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if c == ',' && depth == 0 {
            parts.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    parts.push(cur);
    let mut out = vec![];
    for part in parts.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
        let values = |s: &str| -> Result<Vec<String>, String> {
            let s = s.trim();
            let inner = s
                .strip_prefix('(')
                .and_then(|s| s.strip_suffix(')'))
                .ok_or_else(|| format!("found '{s}', expected: '('"))?;
            Ok(inner.split(',').map(|v| v.trim().to_string()).collect())
        };
        let words: Vec<&str> = part.splitn(2, char::is_whitespace).collect();
        if let [key, rest] = words.as_slice() {
            let rest = rest.trim_start();
            if let Some(vs) = rest.strip_prefix("notin") {
                out.push(Requirement::NotIn(key.to_string(), values(vs)?));
                continue;
            }
            if let Some(vs) = rest.strip_prefix("in") {
                out.push(Requirement::In(key.to_string(), values(vs)?));
                continue;
            }
        }
        if let Some((k, v)) = part.split_once("!=") {
            out.push(Requirement::NotIn(k.trim().into(), vec![v.trim().into()]));
        } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
            out.push(Requirement::In(k.trim().into(), vec![v.trim().into()]));
        } else if let Some(k) = part.strip_prefix('!') {
            out.push(Requirement::NotExists(k.trim().into()));
        } else if part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
        {
            out.push(Requirement::Exists(part.into()));
        } else {
            return Err(format!("unable to parse requirement: {part}"));
        }
    }
    Ok(out)
}

#[derive(Clone, Debug)]
struct CompiledSelector {
    group: Option<Regex>,
    version: Option<Regex>,
    kind: Option<Regex>,
    name: Option<Regex>,
    namespace: Option<Regex>,
    labels: Vec<Requirement>,
    annotations: Vec<Requirement>,
}

fn anchored(what: &str, pattern: &str) -> Result<Option<Regex>, SsaError> {
    if pattern.is_empty() {
        return Ok(None);
    }
    Regex::new(&format!("^(?:{pattern})$"))
        .map(Some)
        .map_err(|e| SsaError::InvalidIgnoreRule(format!("invalid {what} regex: {e}")))
}

impl CompiledSelector {
    fn new(s: &Selector) -> Result<Self, SsaError> {
        let sel = |what: &str, e: &str| {
            parse_label_selector(e)
                .map_err(|m| SsaError::InvalidIgnoreRule(format!("invalid {what} selector: {m}")))
        };
        Ok(CompiledSelector {
            group: anchored("group", &s.group)?,
            version: anchored("version", &s.version)?,
            kind: anchored("kind", &s.kind)?,
            name: anchored("name", &s.name)?,
            namespace: anchored("namespace", &s.namespace)?,
            labels: sel("label", &s.label_selector)?,
            annotations: sel("annotation", &s.annotation_selector)?,
        })
    }

    fn matches(&self, obj: &Value) -> bool {
        let (group, version) = split_api_version(str_at(obj, &["apiVersion"]));
        let ok = |re: &Option<Regex>, v: &str| re.as_ref().is_none_or(|re| re.is_match(v));
        ok(&self.namespace, str_at(obj, &["metadata", "namespace"]))
            && ok(&self.name, str_at(obj, &["metadata", "name"]))
            && ok(&self.group, group)
            && ok(&self.version, version)
            && ok(&self.kind, str_at(obj, &["kind"]))
            && {
                let l = labels(obj);
                self.labels.iter().all(|r| r.matches(&l))
            }
            && {
                let a = annotations(obj);
                self.annotations.iter().all(|r| r.matches(&a))
            }
    }
}

/// Ignore rules with their selectors compiled.
#[derive(Clone, Debug, Default)]
pub struct CompiledIgnoreRules {
    rules: Vec<(Option<CompiledSelector>, Vec<String>)>,
}

impl CompiledIgnoreRules {
    pub fn compile(rules: &[IgnoreRule]) -> Result<Self, SsaError> {
        let rules = rules
            .iter()
            .map(|r| {
                let sel = r.target.as_ref().map(CompiledSelector::new).transpose()?;
                Ok((sel, r.paths.clone()))
            })
            .collect::<Result<_, SsaError>>()?;
        Ok(CompiledIgnoreRules { rules })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The pointers that apply to `obj`.
    pub fn paths_for(&self, obj: &Value) -> Vec<String> {
        self.rules
            .iter()
            .filter(|(sel, _)| sel.as_ref().is_none_or(|s| s.matches(obj)))
            .flat_map(|(_, paths)| paths.iter().cloned())
            .collect()
    }
}

/// Splits a JSON pointer into unescaped tokens; `None` for a pointer not starting with `/`.
pub(crate) fn pointer_tokens(pointer: &str) -> Option<Vec<String>> {
    let rest = pointer.strip_prefix('/')?;
    Some(
        rest.split('/')
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect(),
    )
}

/// Removes the value at `pointer` (if present). `""` empties the document.
pub(crate) fn remove_pointer(doc: &mut Value, pointer: &str) {
    if pointer.is_empty() {
        *doc = Value::Null;
        return;
    }
    let Some(mut tokens) = pointer_tokens(pointer) else {
        return;
    };
    let Some(last) = tokens.pop() else {
        return;
    };
    let mut cur = doc;
    for t in &tokens {
        let next = match cur {
            Value::Object(m) => m.get_mut(t),
            Value::Array(a) => t.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
            _ => None,
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    match cur {
        Value::Object(m) => {
            m.remove(&last);
        }
        Value::Array(a) => {
            if let Ok(i) = last.parse::<usize>()
                && i < a.len()
            {
                a.remove(i);
            }
        }
        _ => {}
    }
}

/// Sets the value at `pointer`, creating missing objects on the way; false if it cannot.
pub(crate) fn set_pointer(doc: &mut Value, pointer: &str, value: Value) -> bool {
    let Some(tokens) = pointer_tokens(pointer) else {
        return false;
    };
    let mut cur = doc;
    for (i, t) in tokens.iter().enumerate() {
        let last = i + 1 == tokens.len();
        cur = match cur {
            Value::Object(m) => {
                if last {
                    m.insert(t.clone(), value);
                    return true;
                }
                m.entry(t.clone())
                    .or_insert_with(|| Value::Object(Default::default()))
            }
            Value::Array(a) => match t.parse::<usize>().ok().filter(|i| *i < a.len()) {
                Some(i) if last => {
                    a[i] = value;
                    return true;
                }
                Some(i) => &mut a[i],
                None => return false,
            },
            _ => return false,
        };
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selectors_match_like_upstream() {
        let rules = CompiledIgnoreRules::compile(&[IgnoreRule {
            paths: vec!["/spec/replicas".into()],
            target: Some(Selector {
                kind: "Deploy.*".into(),
                label_selector: "app in (web, api),!legacy".into(),
                annotation_selector: "team=a".into(),
                ..Default::default()
            }),
        }])
        .unwrap();
        let obj = |labels: Value| {
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "w", "labels": labels, "annotations": {"team": "a"}}})
        };
        assert_eq!(
            rules.paths_for(&obj(json!({"app": "web"}))),
            ["/spec/replicas"]
        );
        assert!(rules.paths_for(&obj(json!({"app": "db"}))).is_empty());
        assert!(
            rules
                .paths_for(&obj(json!({"app": "web", "legacy": "x"})))
                .is_empty()
        );
        // anchored: "Deploy" alone does not match "Deployment"
        let exact = CompiledIgnoreRules::compile(&[IgnoreRule {
            paths: vec!["/x".into()],
            target: Some(Selector {
                kind: "Deploy".into(),
                ..Default::default()
            }),
        }])
        .unwrap();
        assert!(exact.paths_for(&obj(json!({}))).is_empty());
        let bad = CompiledIgnoreRules::compile(&[IgnoreRule {
            paths: vec![],
            target: Some(Selector {
                name: "(".into(),
                ..Default::default()
            }),
        }]);
        assert!(
            bad.unwrap_err()
                .to_string()
                .starts_with("failed to create ignore rule selector: invalid name regex")
        );
    }

    #[test]
    fn pointers_remove_and_set() {
        let mut v = json!({"metadata": {"annotations": {"a/b": "1"}}, "spec": {"l": [1, 2, 3]}});
        remove_pointer(&mut v, "/metadata/annotations/a~1b");
        remove_pointer(&mut v, "/spec/l/1");
        remove_pointer(&mut v, "/does/not/exist");
        assert_eq!(
            v,
            json!({"metadata": {"annotations": {}}, "spec": {"l": [1, 3]}})
        );
        assert!(set_pointer(&mut v, "/spec/replicas", json!(3)));
        assert!(set_pointer(&mut v, "/spec/l/0", json!(9)));
        assert!(!set_pointer(&mut v, "/spec/l/7", json!(9)));
        assert_eq!(v["spec"], json!({"l": [9, 3], "replicas": 3}));
        remove_pointer(&mut v, "");
        assert!(v.is_null());
    }
}
