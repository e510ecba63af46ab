//! Values: user values files and `--set`, coalescing with chart defaults (null deletes),
//! subchart scoping, globals, dependency conditions/tags/aliases and import-values.

use std::collections::BTreeMap;

use ferroflux_gotemplate::{MapRef, Value};

use crate::Error;
use crate::chart::Chart;
use crate::semver::is_compatible_range;

type Map = BTreeMap<String, Value>;

fn table(v: &Value) -> Option<MapRef> {
    match v {
        Value::Map(m) => Some(m.clone()),
        _ => None,
    }
}

fn snapshot(m: &MapRef) -> Map {
    m.borrow().clone()
}

/// Helm's `mergeMaps` for user values files.
pub fn merge_maps(a: &Map, b: &Map) -> Map {
    let mut out = a.clone();
    for (k, v) in b {
        if let Some(vm) = table(v)
            && let Some(bv) = out.get(k).and_then(table)
        {
            let merged = merge_maps(&snapshot(&bv), &snapshot(&vm));
            out.insert(k.clone(), Value::map(merged));
            continue;
        }
        out.insert(k.clone(), v.clone());
    }
    out
}

/// Helm's `coalesceTablesFullKey`. When not merging, a null in `dst` (the user's values)
/// deletes the key if `src` (chart defaults) has it; helm v4.1 only when the default was not
/// itself null (a null over a null default stays null), helm3 always (`v3`).
fn coalesce_tables(dst: &MapRef, src: &MapRef, merge: bool, v3: bool) {
    let src_nonnil: Vec<String> = src
        .borrow()
        .iter()
        .filter(|(_, v)| !v.is_nil())
        .map(|(k, _)| k.clone())
        .collect();
    let dst_nils: Vec<String> = dst
        .borrow()
        .iter()
        .filter(|(_, v)| v.is_nil())
        .map(|(k, _)| k.clone())
        .collect();
    // helm v4 copies the user's nulls into the defaults first (so a null over a missing or
    // null default stays); helm3 does not.
    if !v3 {
        for k in dst_nils {
            src.borrow_mut().insert(k, Value::Nil);
        }
    }
    let entries: Vec<(String, Value)> = src
        .borrow()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, val) in entries {
        let dv = dst.borrow().get(&k).cloned();
        match dv {
            Some(Value::Nil) if !merge && (v3 || src_nonnil.contains(&k)) => {
                dst.borrow_mut().remove(&k);
            }
            None => {
                dst.borrow_mut().insert(k, val);
            }
            Some(dv) => {
                if let (Some(sv), Some(dm)) = (table(&val), table(&dv)) {
                    coalesce_tables(&dm, &sv, merge, v3);
                }
            }
        }
    }
}

fn coalesce_globals(dest: &MapRef, src: &MapRef) {
    let dg = match dest.borrow().get("global").cloned() {
        None => Value::new_map(),
        Some(v) if table(&v).is_some() => v,
        Some(_) => return,
    };
    let sg = match src.borrow().get("global").cloned() {
        None => Value::new_map(),
        Some(v) if table(&v).is_some() => v,
        Some(_) => return,
    };
    let (Some(dgm), Some(sgm)) = (table(&dg), table(&sg)) else {
        return;
    };
    let entries: Vec<(String, Value)> = sgm
        .borrow()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, val) in entries {
        if let Some(vm) = table(&val) {
            let vv = Value::map(snapshot(&vm));
            let existing = dgm.borrow().get(&k).cloned();
            match existing {
                None => {
                    dgm.borrow_mut().insert(k, vv);
                }
                Some(destv) => {
                    if let Some(dvm) = table(&destv) {
                        if let Some(vvm) = table(&vv) {
                            coalesce_tables(&vvm, &dvm, true, false);
                        }
                        dgm.borrow_mut().insert(k, vv);
                    }
                }
            }
        } else {
            let existing = dgm.borrow().get(&k).cloned();
            if existing.as_ref().is_some_and(|d| table(d).is_some()) {
                continue;
            }
            dgm.borrow_mut().insert(k, val);
        }
    }
    dest.borrow_mut().insert("global".into(), dg);
}

/// Helm's `coalesceValues` (v4.1 and v3.19 alike): chart defaults fill keys the user did not
/// set, nulls included (a `limits:` with no value in values.yaml stays `limits: null`); a
/// user null deletes the key.
fn coalesce_values(c: &Chart, v: &MapRef, merge: bool, v3: bool) {
    let defaults = c.values.deep_copy();
    let Some(vc) = table(&defaults) else {
        return;
    };
    let entries: Vec<(String, Value)> = vc
        .borrow()
        .iter()
        .map(|(k, x)| (k.clone(), x.clone()))
        .collect();
    for (key, val) in entries {
        let existing = v.borrow().get(&key).cloned();
        match existing {
            Some(value) => {
                if value.is_nil() && !merge {
                    v.borrow_mut().remove(&key);
                } else if let (Some(dest), Some(src)) = (table(&value), table(&val)) {
                    {
                        let is_sub = c.subcharts.iter().any(|s| s.name == key);
                        coalesce_tables(&dest, &src, merge || is_sub, v3);
                    }
                }
            }
            None => {
                v.borrow_mut().insert(key, val);
            }
        }
    }
}

fn coalesce_deps(c: &Chart, dest: &MapRef, merge: bool, v3: bool) -> Result<(), Error> {
    for sub in &c.subcharts {
        let existing = dest.borrow().get(&sub.name).cloned();
        let dv = match existing {
            None => {
                let m = Value::new_map();
                dest.borrow_mut().insert(sub.name.clone(), m.clone());
                m
            }
            Some(v) if table(&v).is_some() => v,
            Some(v) => {
                return Err(Error::Values(format!(
                    "type mismatch on {}: {}",
                    sub.name,
                    v.to_go_string()
                )));
            }
        };
        let Some(dvm) = table(&dv) else { continue };
        coalesce_globals(&dvm, dest);
        coalesce(sub, &dvm, merge, v3)?;
    }
    Ok(())
}

fn coalesce(c: &Chart, dest: &MapRef, merge: bool, v3: bool) -> Result<(), Error> {
    coalesce_values(c, dest, merge, v3);
    coalesce_deps(c, dest, merge, v3)
}

/// Helm's `CoalesceValues`: chart defaults under user values; returns a new map.
pub fn coalesce_values_top(c: &Chart, user: &Map, merge: bool, v3: bool) -> Result<Value, Error> {
    let copy = Value::map(user.clone()).deep_copy();
    let m = table(&copy).unwrap_or_default();
    coalesce(c, &m, merge, v3)?;
    Ok(copy)
}

fn path_value(vals: &Value, path: &str) -> Option<Value> {
    let parts: Vec<&str> = path.split('.').collect();
    let mut cur = vals.clone();
    for (i, p) in parts.iter().enumerate() {
        let m = table(&cur)?;
        let next = m.borrow().get(*p).cloned()?;
        if i + 1 == parts.len() {
            return Some(next);
        }
        cur = next;
    }
    None
}

fn process_enabled(c: &mut Chart, v: &Map, path: &str, v3: bool) -> Result<(), Error> {
    if c.dependencies.is_empty() {
        return Ok(());
    }
    let mut kept: Vec<Chart> = Vec::new();
    for existing in &c.subcharts {
        let listed = c
            .dependencies
            .iter()
            .any(|d| d.name == existing.name && is_compatible_range(&d.version, &existing.version));
        if !listed {
            kept.push(existing.clone());
        }
    }
    for d in &mut c.dependencies {
        if let Some(found) = c
            .subcharts
            .iter()
            .find(|s| s.name == d.name && is_compatible_range(&d.version, &s.version))
        {
            let mut copy = found.clone();
            if !d.alias.is_empty() {
                copy.name = d.alias.clone();
            }
            kept.push(copy);
        }
        if !d.alias.is_empty() {
            d.name = d.alias.clone();
        }
    }
    c.subcharts = kept;
    for d in &mut c.dependencies {
        d.enabled = true;
    }
    let cvals = coalesce_values_top(c, v, false, v3)?;
    // tags
    if let Some(tags) = table(&cvals)
        .and_then(|m| m.borrow().get("tags").cloned())
        .and_then(|t| table(&t))
    {
        for d in &mut c.dependencies {
            let (mut has_true, mut has_false) = (false, false);
            for k in &d.tags {
                if let Some(Value::Bool(b)) = tags.borrow().get(k) {
                    if *b {
                        has_true = true;
                    } else {
                        has_false = true;
                    }
                }
            }
            d.enabled = has_true || !has_false;
        }
    }
    // conditions
    for d in &mut c.dependencies {
        for cond in d.condition.trim().split(',') {
            let cond = cond.trim();
            if cond.is_empty() {
                continue;
            }
            if let Some(Value::Bool(b)) = path_value(&cvals, &format!("{path}{cond}")) {
                d.enabled = b;
                break;
            }
        }
    }
    let disabled: Vec<String> = c
        .dependencies
        .iter()
        .filter(|d| !d.enabled)
        .map(|d| d.name.clone())
        .collect();
    c.subcharts.retain(|s| !disabled.contains(&s.name));
    c.dependencies.retain(|d| !disabled.contains(&d.name));
    let cmap = table(&cvals).map(|m| snapshot(&m)).unwrap_or_default();
    for s in &mut c.subcharts {
        let sub = format!("{path}{}.", s.name);
        process_enabled(s, &cmap, &sub, v3)?;
    }
    Ok(())
}

fn path_to_map(path: &str, data: Map) -> Map {
    if path == "." {
        return data;
    }
    let mut cur = data;
    for p in path.split('.').rev() {
        let mut m = Map::new();
        m.insert(p.to_string(), Value::map(cur));
        cur = m;
    }
    cur
}

fn process_import_values(c: &mut Chart) -> Result<(), Error> {
    if c.dependencies.is_empty() {
        return Ok(());
    }
    let cvals = coalesce_values_top(c, &Map::new(), true, false)?;
    let b = Value::new_map();
    let bm = table(&b).unwrap_or_default();
    for d in &mut c.dependencies {
        let mut out = Vec::new();
        for iv in &d.import_values {
            let (child, parent) = match iv {
                Value::String(s) => (format!("exports.{s}"), ".".to_string()),
                other => match table(other) {
                    Some(m) => {
                        let m = m.borrow();
                        (
                            m.get("child").map(crate::sprig::strval).unwrap_or_default(),
                            m.get("parent")
                                .map(crate::sprig::strval)
                                .unwrap_or_default(),
                        )
                    }
                    None => continue,
                },
            };
            let mut o = Map::new();
            o.insert("child".into(), Value::str(child.as_str()));
            o.insert("parent".into(), Value::str(parent.as_str()));
            out.push(Value::map(o));
            let Some(vv) = path_value(&cvals, &format!("{}.{child}", d.name)) else {
                continue;
            };
            let Some(vm) = table(&vv) else { continue };
            let src = Value::map(path_to_map(&parent, snapshot(&vm))).deep_copy();
            if let Some(sm) = table(&src) {
                coalesce_tables(&bm, &sm, true, false);
            }
        }
        d.import_values = out;
    }
    let cv = cvals.deep_copy();
    if let Some(cm) = table(&cv) {
        coalesce_tables(&cm, &bm, true, false);
    }
    c.values = cv;
    Ok(())
}

pub(crate) fn process_imports_rec(c: &mut Chart) -> Result<(), Error> {
    for s in &mut c.subcharts {
        process_imports_rec(s)?;
    }
    process_import_values(c)
}

/// Helm's `ProcessDependencies`: enabled subcharts (conditions, tags, aliases), then
/// import-values.
pub fn process_dependencies(c: &mut Chart, user: &Map, v3: bool) -> Result<(), Error> {
    process_enabled(c, user, "", v3)?;
    let has_imports = has_import_values(c);
    if has_imports {
        process_imports_rec(c)?;
    }
    Ok(())
}

pub(crate) fn has_import_values(c: &Chart) -> bool {
    c.dependencies.iter().any(|d| !d.import_values.is_empty())
        || c.subcharts.iter().any(has_import_values)
}

// ---------------------------------------------------------------------------------------------
// --set parsing (Helm's strvals)

fn typed(val: &str, as_string: bool) -> Value {
    if as_string {
        return Value::str(val);
    }
    if val.eq_ignore_ascii_case("true") {
        return Value::Bool(true);
    }
    if val.eq_ignore_ascii_case("false") {
        return Value::Bool(false);
    }
    if val.eq_ignore_ascii_case("null") {
        return Value::Nil;
    }
    if val == "0" {
        return Value::Int64(0);
    }
    if !val.is_empty()
        && !val.starts_with('0')
        && let Ok(i) = val.parse::<i64>()
    {
        return Value::Int64(i);
    }
    Value::str(val)
}

fn split_unescaped(s: &str, sep: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            '{' => {
                depth += 1;
                cur.push(c);
            }
            '}' => {
                depth -= 1;
                cur.push(c);
            }
            c if c == sep && depth == 0 => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

enum Seg {
    Key(String),
    Index(usize),
}

fn parse_key(k: &str) -> Result<Vec<Seg>, Error> {
    let mut segs = Vec::new();
    for part in split_unescaped(k, '.') {
        let mut rest = part.as_str();
        let name_end = rest.find('[').unwrap_or(rest.len());
        let name = unescape(&rest[..name_end]);
        if !name.is_empty() {
            segs.push(Seg::Key(name));
        }
        rest = &rest[name_end..];
        while let Some(r) = rest.strip_prefix('[') {
            let Some(end) = r.find(']') else {
                return Err(Error::Values(format!("key {k:?} has no value")));
            };
            let idx: usize = r[..end]
                .parse()
                .map_err(|_| Error::Values(format!("failed to parse index {:?}", &r[..end])))?;
            if idx > 65536 {
                return Err(Error::Values(format!(
                    "index of {idx} is greater than maximum supported index of 65536"
                )));
            }
            segs.push(Seg::Index(idx));
            rest = &r[end + 1..];
        }
    }
    Ok(segs)
}

fn set_path(target: &Value, segs: &[Seg], val: Value) -> Value {
    let Some((first, rest)) = segs.split_first() else {
        return val;
    };
    match first {
        Seg::Key(k) => {
            let m = match table(target) {
                Some(m) => m,
                None => table(&Value::new_map()).unwrap_or_default(),
            };
            let out = Value::Map(m.clone());
            let existing = m.borrow().get(k).cloned().unwrap_or(Value::Nil);
            let nv = if rest.is_empty() {
                val
            } else {
                set_path(&existing, rest, val)
            };
            m.borrow_mut().insert(k.clone(), nv);
            out
        }
        Seg::Index(i) => {
            let mut l = match target {
                Value::List(l) => l.as_ref().clone(),
                _ => Vec::new(),
            };
            while l.len() <= *i {
                l.push(Value::Nil);
            }
            let nv = if rest.is_empty() {
                val
            } else {
                set_path(&l[*i], rest, val)
            };
            l[*i] = nv;
            Value::list(l)
        }
    }
}

/// Apply one `--set` (or `--set-string`) argument to `base`.
pub fn parse_set(base: &mut Map, arg: &str, as_string: bool) -> Result<(), Error> {
    let root = Value::map(std::mem::take(base));
    let mut cur = root;
    for assignment in split_unescaped(arg, ',') {
        if assignment.is_empty() {
            continue;
        }
        let Some((k, v)) = assignment.split_once('=') else {
            return Err(Error::Values(format!("key {:?} has no value", assignment)));
        };
        let segs = parse_key(k)?;
        let value = if v.starts_with('{') && v.ends_with('}') && v.len() >= 2 {
            let inner = &v[1..v.len() - 1];
            if inner.is_empty() {
                Value::list(Vec::new())
            } else {
                Value::list(
                    split_unescaped(inner, ',')
                        .iter()
                        .map(|x| typed(&unescape(x), as_string))
                        .collect(),
                )
            }
        } else {
            typed(&unescape(v), as_string)
        };
        cur = set_path(&cur, &segs, value);
    }
    *base = table(&cur).map(|m| snapshot(&m)).unwrap_or_default();
    Ok(())
}

/// `--set-json`: a JSON object merged into the values, or `key=JSON`.
pub fn parse_set_json(base: &mut Map, arg: &str) -> Result<(), Error> {
    let trimmed = arg.trim();
    if trimmed.starts_with('{') {
        let v = crate::yaml::parse_json(trimmed)
            .map_err(|_| Error::Values(format!("failed parsing --set-json data JSON: {arg}")))?;
        let m = table(&v).map(|m| snapshot(&m)).unwrap_or_default();
        *base = merge_maps(base, &m);
        return Ok(());
    }
    // `key=JSON[,key=JSON...]`: each value is one JSON value read from where it starts
    // (as Go's json.Decoder does), then blanks and one comma are skipped
    let bad = || Error::Values(format!("failed parsing --set-json data {arg}"));
    let mut root = Value::map(std::mem::take(base));
    let mut rest = arg;
    while !rest.is_empty() {
        let (k, after) = rest.split_once('=').ok_or_else(bad)?;
        let segs = parse_key(k).map_err(|_| bad())?;
        let after_blank = after.trim_start();
        let value;
        if after_blank.is_empty() || after_blank.starts_with(',') {
            value = Value::Nil;
            rest = after_blank.strip_prefix(',').unwrap_or(after_blank);
        } else {
            let mut stream =
                serde_json::Deserializer::from_str(after_blank).into_iter::<serde_json::Value>();
            match stream.next() {
                Some(Ok(_)) => {}
                _ => return Err(bad()),
            }
            let end = stream.byte_offset();
            value = crate::yaml::parse_json(&after_blank[..end]).map_err(|_| bad())?;
            let tail = after_blank[end..].trim_start();
            rest = tail.strip_prefix(',').unwrap_or(tail);
        }
        root = set_path(&root, &segs, value);
    }
    *base = table(&root).map(|m| snapshot(&m)).unwrap_or_default();
    Ok(())
}

/// `--set-file`: `key=path[,key=path]`, each value the file's content.
pub fn parse_set_file(base: &mut Map, arg: &str) -> Result<(), Error> {
    let mut cur = Value::map(std::mem::take(base));
    for assignment in split_unescaped(arg, ',') {
        if assignment.is_empty() {
            continue;
        }
        let Some((k, path)) = assignment.split_once('=') else {
            return Err(Error::Values(format!("key {assignment:?} has no value")));
        };
        let data = std::fs::read(unescape(path))
            .map_err(|e| Error::Values(format!("open {path}: {e}")))?;
        let segs = parse_key(k)?;
        cur = set_path(
            &cur,
            &segs,
            Value::str(String::from_utf8_lossy(&data).into_owned()),
        );
    }
    *base = table(&cur).map(|m| snapshot(&m)).unwrap_or_default();
    Ok(())
}

/// `--set-literal`: `key=value` where the value is taken verbatim.
pub fn parse_set_literal(base: &mut Map, arg: &str) -> Result<(), Error> {
    let Some((k, v)) = arg.split_once('=') else {
        return Err(Error::Values(format!("key {arg:?} has no value")));
    };
    let segs = parse_key(k)?;
    let root = set_path(&Value::map(std::mem::take(base)), &segs, Value::str(v));
    *base = table(&root).map(|m| snapshot(&m)).unwrap_or_default();
    Ok(())
}
