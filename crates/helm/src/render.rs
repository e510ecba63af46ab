//! The render engine: every template of a chart and its subcharts in one template set, with
//! Sprig and Helm's functions, per-chart top-level values, and Helm's error shapes.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use ferroflux_gotemplate::{
    Env, Error as TError, Func, FuncError, MissingKey, Param, Templates, Value,
};

use crate::Error;
use crate::chart::{Chart, metadata_map};
use crate::objects::Files;
use crate::yaml;

const WARN_START: &str = "HELM_ERR_START";
const WARN_END: &str = "HELM_ERR_END";
const RECURSION_MAX: i64 = 1000;

/// One template to render with the top-level object it sees.
struct Renderable {
    text: String,
    vals: Value,
    base_path: String,
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn helm_functions(included: Rc<RefCell<HashMap<String, i64>>>) -> Vec<Func> {
    use Param::*;
    let inc = included.clone();
    let include = Func::new(
        "include",
        &[String, Any],
        None,
        move |env: &mut dyn Env, a| {
            let name = s(&a[0]);
            {
                let mut m = inc.borrow_mut();
                let n = m.entry(name.clone()).or_insert(0);
                if *n > RECURSION_MAX {
                    return Err(FuncError::Msg(format!(
                        "rendering template has a nested reference name: {name}: unable to execute template"
                    )));
                }
                *n += 1;
            }
            let r = env.execute_template(&name, a[1].clone());
            if let Some(n) = inc.borrow_mut().get_mut(&name) {
                *n -= 1;
            }
            match r {
                Ok(out) => Ok(Value::str(out)),
                Err(e) => Err(FuncError::from(e)),
            }
        },
    );
    let tpl = Func::new("tpl", &[String, Any], None, move |env: &mut dyn Env, a| {
        let text = s(&a[0]);
        match env.execute_text("gotpl", &text, a[1].clone()) {
            Ok(out) => Ok(Value::str(out.replace("<no value>", ""))),
            Err(e @ TError::Parse { .. }) => Err(FuncError::Msg(format!(
                "cannot parse template {}: {e}",
                ferroflux_gotemplate::gofmt::quote(&text)
            ))),
            Err(e) => Err(FuncError::Msg(format!(
                "error during tpl function execution for {}: {e}",
                ferroflux_gotemplate::gofmt::quote(&text)
            ))),
        }
    });
    vec![
        include,
        tpl,
        Func::new("required", &[String, Any], None, |_, a| {
            let warn = s(&a[0]);
            match &a[1] {
                Value::Nil | Value::NoValue => {
                    Err(FuncError::Msg(format!("{WARN_START}{warn}{WARN_END}")))
                }
                Value::String(x) if x.is_empty() => {
                    Err(FuncError::Msg(format!("{WARN_START}{warn}{WARN_END}")))
                }
                other => Ok(other.clone()),
            }
        }),
        Func::new("fail", &[String], None, |_, a| {
            Err(FuncError::Msg(format!(
                "{WARN_START}{}{WARN_END}",
                s(&a[0])
            )))
        }),
        Func::new("lookup", &[String, String, String, String], None, |_, _| {
            Ok(Value::new_map())
        }),
        Func::new("toYaml", &[Any], None, |_, a| {
            Ok(Value::str(
                yaml::to_yaml(&a[0])
                    .map(|y| y.strip_suffix('\n').unwrap_or(&y).to_string())
                    .unwrap_or_default(),
            ))
        }),
        Func::new("mustToYaml", &[Any], None, |_, a| {
            yaml::to_yaml(&a[0])
                .map(|y| Value::str(y.strip_suffix('\n').unwrap_or(&y)))
                .map_err(FuncError::Msg)
        }),
        Func::new("fromYaml", &[String], None, |_, a| {
            let text = s(&a[0]);
            match yaml::parse_yaml(&text) {
                Ok(v) if v.as_map().is_some() => Ok(v),
                Ok(Value::Nil) => Ok(Value::new_map()),
                Ok(other) => {
                    let mut m = BTreeMap::new();
                    m.insert(
                        "Error".to_string(),
                        Value::str(format!(
                            "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                            yaml::json_kind(&other)
                        )),
                    );
                    Ok(Value::map(m))
                }
                Err(e) => {
                    let mut m = BTreeMap::new();
                    m.insert(
                        "Error".to_string(),
                        Value::str(format!("error converting YAML to JSON: {e}")),
                    );
                    Ok(Value::map(m))
                }
            }
        }),
        Func::new("fromYamlArray", &[String], None, |_, a| {
            let text = s(&a[0]);
            match yaml::parse_yaml(&text) {
                Ok(Value::List(l)) => Ok(Value::List(l)),
                Ok(Value::Nil) => Ok(Value::list(Vec::new())),
                Ok(other) => Ok(Value::list(vec![Value::str(format!(
                    "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {} into Go value of type []interface {{}}",
                    yaml::json_kind(&other)
                ))])),
                Err(e) => Ok(Value::list(vec![Value::str(format!(
                    "error converting YAML to JSON: {e}"
                ))])),
            }
        }),
        Func::new("toJson", &[Any], None, |_, a| {
            Ok(Value::str(
                yaml::to_json(&a[0], true, None).unwrap_or_default(),
            ))
        }),
        Func::new("mustToJson", &[Any], None, |_, a| {
            yaml::to_json(&a[0], true, None)
                .map(Value::str)
                .map_err(FuncError::Msg)
        }),
        Func::new("fromJson", &[String], None, |_, a| {
            match yaml::parse_json(&s(&a[0])) {
                Ok(v) if v.as_map().is_some() => Ok(v),
                Ok(Value::Nil) => Ok(Value::new_map()),
                Ok(other) => {
                    let mut m = BTreeMap::new();
                    m.insert(
                        "Error".to_string(),
                        Value::str(format!(
                            "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                            yaml::json_kind(&other)
                        )),
                    );
                    Ok(Value::map(m))
                }
                Err(e) => {
                    let mut m = BTreeMap::new();
                    m.insert("Error".to_string(), Value::str(e));
                    Ok(Value::map(m))
                }
            }
        }),
        Func::new(
            "fromJsonArray",
            &[String],
            None,
            |_, a| match yaml::parse_json(&s(&a[0])) {
                Ok(Value::List(l)) => Ok(Value::List(l)),
                Ok(Value::Nil) => Ok(Value::list(Vec::new())),
                Ok(other) => Ok(Value::list(vec![Value::str(format!(
                    "json: cannot unmarshal {} into Go value of type []interface {{}}",
                    yaml::json_kind(&other)
                ))])),
                Err(e) => Ok(Value::list(vec![Value::str(e)])),
            },
        ),
        Func::new("toToml", &[Any], None, |_, a| {
            Ok(Value::str(crate::toml::to_toml(&a[0])))
        }),
        Func::new(
            "fromToml",
            &[String],
            None,
            |_, a| match crate::toml::from_toml(&s(&a[0])) {
                Ok(v) => Ok(v),
                Err(e) => {
                    let mut m = BTreeMap::new();
                    m.insert("Error".to_string(), Value::str(e));
                    Ok(Value::map(m))
                }
            },
        ),
        Func::new("toYamlPretty", &[Any], None, |_, a| {
            Ok(Value::str(
                yaml::to_yaml_pretty(&a[0])
                    .map(|y| y.strip_suffix('\n').unwrap_or(&y).to_string())
                    .unwrap_or_default(),
            ))
        }),
        Func::new("getHostByName", &[String], None, |_, _| Ok(Value::str(""))),
    ]
}

/// Collect every template with its top-level object (Helm's `recAllTpls`).
fn all_templates(
    c: &Chart,
    parent_vals: &Value,
    is_root: bool,
    release: &Value,
    caps: &Value,
    v3: bool,
    out: &mut BTreeMap<String, Renderable>,
) -> Value {
    let subcharts = Value::new_map();
    let mut next = BTreeMap::new();
    let meta = metadata_map(c, is_root);
    next.insert(
        "Chart".to_string(),
        if v3 {
            Value::Object(Rc::new(crate::objects::ChartStruct(meta)))
        } else {
            meta
        },
    );
    let files: BTreeMap<String, Rc<[u8]>> = c.files.iter().cloned().collect();
    next.insert(
        "Files".to_string(),
        Value::Object(Rc::new(Files(Rc::new(files)))),
    );
    next.insert("Release".to_string(), release.clone());
    next.insert("Capabilities".to_string(), caps.clone());
    let values = if is_root {
        parent_vals
            .as_map()
            .and_then(|m| m.borrow().get("Values").cloned())
            .unwrap_or_else(Value::new_map)
    } else {
        parent_vals
            .as_map()
            .and_then(|m| m.borrow().get("Values").cloned())
            .and_then(|v| v.as_map())
            .and_then(|m| m.borrow().get(&c.name).cloned())
            .filter(|v| matches!(v, Value::Map(_)))
            .unwrap_or_else(Value::new_map)
    };
    next.insert("Values".to_string(), values);
    next.insert("Subcharts".to_string(), subcharts.clone());
    let next = Value::map(next);
    for sub in &c.subcharts {
        let sv = all_templates(sub, &next, false, release, caps, v3, out);
        if let Some(m) = subcharts.as_map() {
            m.borrow_mut().insert(sub.name.clone(), sv);
        }
    }
    let full = c.full_path();
    for (name, data) in &c.templates {
        if c.is_library() {
            let base = name.rsplit('/').next().unwrap_or(name);
            if !base.starts_with('_') {
                continue;
            }
        }
        out.insert(
            format!("{full}/{name}"),
            Renderable {
                text: String::from_utf8_lossy(data).into_owned(),
                vals: next.clone(),
                base_path: format!("{full}/templates"),
            },
        );
    }
    next
}

/// Helm's template order: deeper paths first; equal depth in reverse lexical order.
fn sort_templates(names: &mut [String]) {
    names.sort_by(|a, b| {
        let (ca, cb) = (a.matches('/').count(), b.matches('/').count());
        cb.cmp(&ca).then_with(|| b.cmp(a))
    });
}

fn cleanup_parse_error(filename: &str, e: &TError) -> Error {
    let msg = e.to_string();
    let tokens: Vec<&str> = msg.split(": ").collect();
    if tokens.len() == 1 {
        return Error::Render(format!("parse error in ({filename}): {msg}"));
    }
    Error::Render(format!(
        "parse error at ({}): {}",
        tokens[1],
        tokens[tokens.len() - 1]
    ))
}

#[derive(PartialEq)]
struct Traceable {
    location: String,
    message: String,
    executed: String,
}

impl Traceable {
    fn render(&self) -> String {
        let mut out = String::new();
        if !self.location.is_empty() {
            out.push_str(&format!("{}\n  ", self.location));
        }
        if !self.executed.is_empty() {
            out.push_str(&format!("{}\n    ", self.executed));
        }
        if !self.message.is_empty() {
            out.push_str(&format!("{}\n", self.message));
        }
        out
    }
}

fn parse_traceable(s: &str) -> Option<Traceable> {
    let rem = s.strip_prefix("template: ")?;
    if rem.starts_with("no template ") {
        return Some(Traceable {
            location: String::new(),
            message: s.to_string(),
            executed: String::new(),
        });
    }
    if let Some(idx) = rem.find(": executing ") {
        let name = &rem[..idx];
        let after = &rem[idx + ": executing ".len()..];
        if after.starts_with('"')
            && let Some(end) = after[1..].find('"')
        {
            let end = end + 1;
            let func = &after[1..end];
            let after_func = &after[end + 1..];
            if let Some(after_at) = after_func.strip_prefix(" at <")
                && let Some(end_loc) = after_at.find(">: ")
            {
                let loc = &after_at[..end_loc];
                let mut msg = &after_at[end_loc + 3..];
                if let Some(cut) = msg.find(" template:") {
                    msg = &msg[..cut];
                }
                return Some(Traceable {
                    location: name.to_string(),
                    message: msg.to_string(),
                    executed: format!("executing \"{func}\" at <{loc}>:"),
                });
            }
        }
        return None;
    }
    let sep = rem.rfind(": ")?;
    let mut msg = &rem[sep + 2..];
    if let Some(cut) = msg.find(" template:") {
        msg = &msg[..cut];
    }
    Some(Traceable {
        location: rem[..sep].to_string(),
        message: msg.to_string(),
        executed: String::new(),
    })
}

/// The chain of error texts Go's `errors.Unwrap` would walk.
fn error_chain(e: &TError, out: &mut Vec<String>) {
    out.push(e.to_string());
    if let TError::Exec(x) = e
        && let Some((_, fe)) = &x.call
    {
        out.push(e.to_string());
        match fe.as_ref() {
            FuncError::Exec(inner) => error_chain(inner, out),
            FuncError::Msg(m) => out.push(m.clone()),
        }
    }
}

/// Helm v4's `reformatExecErrorMsg` (v3's `cleanupExecError` when `v3`).
fn reformat_exec_error(filename: &str, e: &TError, v3: bool) -> String {
    if !matches!(e, TError::Exec(_)) {
        return e.to_string();
    }
    let full = e.to_string();
    let tokens: Vec<&str> = full.splitn(3, ": ").collect();
    if tokens.len() != 3 {
        return format!("execution error in ({filename}): {full}");
    }
    if let Some(start) = tokens[2].find(WARN_START)
        && let Some(end) = tokens[2].rfind(WARN_END)
        && end >= start + WARN_START.len()
    {
        return format!(
            "execution error at ({}): {}",
            tokens[1],
            &tokens[2][start + WARN_START.len()..end]
        );
    }
    if v3 {
        return full;
    }
    let mut chain = Vec::new();
    error_chain(e, &mut chain);
    let mut locs: Vec<Traceable> = Vec::new();
    for link in chain {
        match parse_traceable(&link) {
            Some(t) => {
                if locs.last() != Some(&t) {
                    locs.push(t);
                }
            }
            None => return full,
        }
    }
    let s: String = locs.iter().map(Traceable::render).collect();
    s.trim().to_string()
}

/// Render every template of `chart` with the prepared top-level values (`Values`, `Release`,
/// `Capabilities`). Returns file name -> rendered text.
pub fn render(chart: &Chart, top: &Value) -> Result<BTreeMap<String, String>, Error> {
    render_as(chart, top, false)
}

/// [`render`], with Helm v3's `.Chart` struct and error text when `v3`.
pub fn render_as(chart: &Chart, top: &Value, v3: bool) -> Result<BTreeMap<String, String>, Error> {
    let get = |k: &str| {
        top.as_map()
            .and_then(|m| m.borrow().get(k).cloned())
            .unwrap_or(Value::Nil)
    };
    let release = get("Release");
    let caps = get("Capabilities");
    let mut tpls = BTreeMap::new();
    all_templates(chart, top, true, &release, &caps, v3, &mut tpls);

    let mut t = Templates::new("gotpl");
    t.options.missing_key = MissingKey::Zero;
    // Go's limit; `template` runs on a thread with a large stack (see `crate::template`).
    t.options.max_depth = 100_000;
    t.options.max_nesting = 100_010;
    t.add_funcs(crate::sprig::functions());
    let included = Rc::new(RefCell::new(HashMap::new()));
    t.add_funcs(helm_functions(included));

    let mut keys: Vec<String> = tpls.keys().cloned().collect();
    sort_templates(&mut keys);
    for k in &keys {
        let r = &tpls[k];
        t.parse(k, &r.text)
            .map_err(|e| cleanup_parse_error(k, &e))?;
    }
    let mut out = BTreeMap::new();
    for k in &keys {
        let base = k.rsplit('/').next().unwrap_or(k);
        if base.starts_with('_') {
            continue;
        }
        let r = &tpls[k];
        if let Some(m) = r.vals.as_map() {
            let mut tm = BTreeMap::new();
            tm.insert("Name".to_string(), Value::str(k.as_str()));
            tm.insert("BasePath".to_string(), Value::str(r.base_path.as_str()));
            m.borrow_mut()
                .insert("Template".to_string(), Value::map(tm));
        }
        let rendered = t
            .execute(k, &r.vals)
            .map_err(|e| Error::Render(reformat_exec_error(k, &e, v3)))?;
        out.insert(k.clone(), rendered.replace("<no value>", ""));
    }
    Ok(out)
}
