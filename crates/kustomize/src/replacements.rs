//! `replacements`: copy a field of one resource into fields of others.

use serde_json::{Map, Value};

use crate::kustfile::Selector;
use crate::resource::Resource;

fn split_field_path(p: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0;
    for c in p.chars() {
        match c {
            '[' => {
                depth += 1;
                cur.push(c);
            }
            ']' => {
                depth -= 1;
                cur.push(c);
            }
            '.' if depth == 0 => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    // `ports[0]` is the same as `ports.0`
    let mut res = Vec::new();
    for s in out.into_iter().filter(|s| !s.is_empty()) {
        if !s.starts_with('[')
            && let Some(open) = s.find('[')
            && s.ends_with(']')
            && s[open + 1..s.len() - 1].parse::<usize>().is_ok()
        {
            res.push(s[..open].to_string());
            res.push(s[open + 1..s.len() - 1].to_string());
            continue;
        }
        res.push(s);
    }
    res
}

fn seg_matches(item: &Value, seg: &str) -> bool {
    let Some(inner) = seg.strip_prefix('[').and_then(|s| s.strip_suffix(']')) else {
        return false;
    };
    let Some((k, v)) = inner.split_once('=') else {
        return false;
    };
    match item.get(k) {
        Some(Value::String(s)) => s == v,
        Some(other) if !other.is_object() && !other.is_array() => {
            crate::yaml::emit::number_text_or(other) == v
        }
        _ => false,
    }
}

/// The value at a kyaml-style field path (`spec.containers.[name=app].image`, `a.0.b`).
pub fn get_field(obj: &Value, path: &str) -> Option<Value> {
    let mut cur = obj;
    for seg in split_field_path(path) {
        cur = match cur {
            Value::Object(m) => {
                let key = seg
                    .strip_prefix('[')
                    .and_then(|s| s.strip_suffix(']'))
                    .unwrap_or(&seg);
                m.get(key)?
            }
            Value::Array(a) => {
                if let Ok(i) = seg.parse::<usize>() {
                    a.get(i)?
                } else {
                    a.iter().find(|x| seg_matches(x, &seg))?
                }
            }
            _ => return None,
        };
    }
    Some(cur.clone())
}

fn set_at(
    node: &mut Value,
    segs: &[String],
    val: &Value,
    create: bool,
    opts: &Opts,
) -> Result<bool, String> {
    let Some((seg, rest)) = segs.split_first() else {
        let new = match (&opts.delimiter, node.as_str(), val) {
            (Some(d), Some(old), Value::String(v)) => {
                let mut parts: Vec<String> = old.split(d.as_str()).map(String::from).collect();
                let idx = opts.index;
                if idx < 0 {
                    parts.insert(0, v.clone());
                } else if (idx as usize) < parts.len() {
                    parts[idx as usize] = v.clone();
                } else {
                    parts.push(v.clone());
                }
                Value::String(parts.join(d))
            }
            _ => val.clone(),
        };
        *node = new;
        return Ok(true);
    };
    match node {
        Value::Object(m) => {
            let key = seg
                .strip_prefix('[')
                .and_then(|s| s.strip_suffix(']'))
                .unwrap_or(seg)
                .to_string();
            if !m.contains_key(&key) {
                if !create {
                    return Ok(false);
                }
                let init = if rest
                    .first()
                    .is_some_and(|s| s.starts_with('[') && s.contains('='))
                {
                    Value::Array(Vec::new())
                } else if rest.is_empty() {
                    Value::Null
                } else {
                    Value::Object(Map::new())
                };
                m.insert(key.clone(), init);
            }
            match m.get_mut(&key) {
                Some(child) => set_at(child, rest, val, create, opts),
                None => Ok(false),
            }
        }
        Value::Array(a) => {
            if seg == "*" {
                let mut any = false;
                for x in a.iter_mut() {
                    any |= set_at(x, rest, val, create, opts)?;
                }
                return Ok(any);
            }
            if let Ok(i) = seg.parse::<usize>() {
                return match a.get_mut(i) {
                    Some(x) => set_at(x, rest, val, create, opts),
                    None => Ok(false),
                };
            }
            let mut any = false;
            for x in a.iter_mut() {
                if seg_matches(x, seg) {
                    any |= set_at(x, rest, val, create, opts)?;
                }
            }
            Ok(any)
        }
        Value::Null if create => {
            *node = Value::Object(Map::new());
            set_at(node, segs, val, create, opts)
        }
        _ => Ok(false),
    }
}

#[derive(Default)]
struct Opts {
    delimiter: Option<String>,
    index: i64,
    create: bool,
}

fn opts_of(v: Option<&Value>) -> Opts {
    let Some(o) = v else { return Opts::default() };
    Opts {
        delimiter: o
            .get("delimiter")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(String::from),
        index: o.get("index").and_then(Value::as_i64).unwrap_or(0),
        create: o.get("create").and_then(Value::as_bool).unwrap_or(false),
    }
}

fn selector_of(v: &Value) -> Selector {
    let mut s: Selector = serde_json::from_value(v.clone()).unwrap_or_default();
    if let Some(av) = v.get("apiVersion").and_then(Value::as_str) {
        let g = crate::resource::Gvk::from_api_version(av, "");
        s.group = g.group;
        s.version = g.version;
    }
    s
}

fn exact(resources: &[Resource], sel: &Selector) -> Result<Vec<usize>, String> {
    let escaped = Selector {
        name: regex::escape(&sel.name),
        namespace: regex::escape(&sel.namespace),
        ..sel.clone()
    };
    crate::transform::select(resources, &escaped).map_err(|e| e.to_string())
}

/// Apply replacements in order.
pub fn apply(resources: &mut [Resource], reps: &[Value]) -> Result<(), String> {
    for rep in reps {
        let src = rep.get("source").ok_or("replacement has no source")?;
        let sel = selector_of(src);
        let hits = exact(resources, &sel)?;
        if hits.len() != 1 {
            return Err(format!(
                "multiple matches for selector / nothing selected ({} resources) for replacement source {}",
                hits.len(),
                src
            ));
        }
        let path = src
            .get("fieldPath")
            .and_then(Value::as_str)
            .unwrap_or("metadata.name");
        let mut value = get_field(&resources[hits[0]].obj, path).ok_or_else(|| {
            format!(
                "fieldPath `{path}` is missing for replacement source {}",
                resources[hits[0]].cur_id()
            )
        })?;
        let so = opts_of(src.get("options"));
        if let (Some(d), Value::String(s)) = (&so.delimiter, &value) {
            let parts: Vec<&str> = s.split(d.as_str()).collect();
            let i = so.index;
            if i < 0 || i as usize >= parts.len() {
                return Err(format!("options.index {i} is out of bounds for value {s}"));
            }
            // the piece becomes an untagged scalar, so it reads back as a number or bool when it looks like one
            value = crate::yaml::read::resolve_plain(parts[i as usize])
                .unwrap_or_else(|_| Value::String(parts[i as usize].to_string()));
        }
        let targets = rep
            .get("targets")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for t in targets {
            let sel = t.get("select").map(selector_of).unwrap_or_default();
            let mut hits = crate::transform::select(
                resources,
                &Selector {
                    name: regex::escape(&sel.name),
                    namespace: regex::escape(&sel.namespace),
                    ..sel.clone()
                },
            )
            .map_err(|e| e.to_string())?;
            if let Some(Value::Array(rejects)) = t.get("reject") {
                for rj in rejects {
                    let rs = selector_of(rj);
                    let bad = exact(resources, &rs)?;
                    hits.retain(|i| !bad.contains(i));
                }
            }
            let o = opts_of(t.get("options"));
            let fps: Vec<String> = t
                .get("fieldPaths")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_else(|| vec!["metadata.name".to_string()]);
            for i in hits {
                for fp in &fps {
                    let segs = split_field_path(fp);
                    let ok = set_at(&mut resources[i].obj, &segs, &value, o.create, &o)?;
                    if !ok && !o.create {
                        return Err(format!(
                            "unable to find field \"{fp}\" in replacement target {}",
                            resources[i].cur_id()
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}
