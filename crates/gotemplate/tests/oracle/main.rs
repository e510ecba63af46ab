//! Oracle tests: every case is rendered by our engine and by the real `helm template` (Go's
//! text/template), and the outputs (or error messages) must be identical.
//!
//! Successful cases are batched into ONE chart: each case is a `define` in its own file and
//! `templates/out.yaml` prints `cNNNN: <base64 of include "cNNNN">`, so one helm run checks them
//! all and the raw engine output (including `<no value>`) is compared byte for byte. Error
//! cases need one helm run each (helm stops at the first error); they run in parallel.

mod cases;

use std::collections::BTreeMap;

use ferroflux_gotemplate::oracle as helm;
use ferroflux_gotemplate::{Error, MissingKey, Templates, Value};

const VALUES: &str = r#"{
  "str": "hello", "empty": "", "num": 42, "big": 1000000, "flt": 1.5, "neg": -3, "zero": 0,
  "tiny": 0.00001, "huge": 1e21, "pi": 3.14159265358979, "t": true, "f": false,
  "list": [1, "two", 3.5, true, {"k": "v"}], "strs": ["b", "a", "c"], "emptylist": [],
  "map": {"b": 2, "a": 1, "c": {"d": "deep"}}, "emptymap": {},
  "nested": {"x": {"y": {"z": "zz"}}}, "unicode": "héllo wörld ✓", "quotes": "a\"b'c<d>&e=f",
  "multiline": "line1\nline2", "spaces": "  padded  ", "n3": 3, "items": [{"name": "a", "on": true}, {"name": "b", "on": false}]
}"#;

fn to_value(j: &serde_json::Value) -> Value {
    match j {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => Value::Float(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(s) => Value::str(s.as_str()),
        serde_json::Value::Array(a) => Value::list(a.iter().map(to_value).collect()),
        serde_json::Value::Object(o) => Value::map(
            o.iter()
                .map(|(k, v)| (k.clone(), to_value(v)))
                .collect::<BTreeMap<_, _>>(),
        ),
    }
}

fn top() -> Value {
    let values: serde_json::Value = serde_json::from_str(VALUES).unwrap();
    let mut m = BTreeMap::new();
    m.insert("Values".to_string(), to_value(&values));
    Value::map(m)
}

fn all_cases() -> Vec<(&'static str, &'static str)> {
    let mut v: Vec<(&str, &str)> = cases::OK.iter().map(|c| ("", *c)).collect();
    v.extend(cases::DEFS.iter().copied());
    v
}

fn engine() -> Templates {
    let mut t = Templates::new("gotpl");
    t.options.missing_key = MissingKey::Zero;
    t
}

/// Helm's `cleanupParseError`.
fn helm_parse_error(file: &str, msg: &str) -> String {
    let tokens: Vec<&str> = msg.split(": ").collect();
    if tokens.len() == 1 {
        return format!("parse error in ({file}): {msg}");
    }
    format!(
        "parse error at ({}): {}",
        tokens[1],
        tokens[tokens.len() - 1]
    )
}

fn ours_error(text: &str) -> String {
    let file = "c/templates/e.yaml";
    let mut t = engine();
    if let Err(e) = t.parse(file, text) {
        return helm_parse_error(file, &e.to_string());
    }
    match t.execute(file, &top()) {
        Ok(out) => format!("NO ERROR; output {out:?}"),
        Err(e @ Error::Exec(_)) => e.to_string(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn language_cases_match_helm() {
    let helm = helm::oracle("helm");
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let mut out = String::new();
    for (i, (defs, case)) in all_cases().iter().enumerate() {
        let name = format!("c{i:04}");
        files.push((
            format!("_{name}.tpl"),
            format!("{defs}{{{{ define \"{name}\" }}}}{case}{{{{ end }}}}"),
        ));
        out.push_str(&format!(
            "{name}: {{{{ include \"{name}\" . | b64enc | quote }}}}\n"
        ));
    }
    files.push(("out.yaml".to_string(), out));
    helm::write_chart(dir.path(), VALUES, &files);
    let expected = match helm::helm_template(&helm, dir.path()) {
        Ok(o) => helm::decode_cases(&o),
        Err(e) => panic!("helm failed on the batch: {e}"),
    };
    let data = top();
    let mut failures = Vec::new();
    for (i, (defs, case)) in all_cases().iter().enumerate() {
        let name = format!("c{i:04}");
        let mut t = engine();
        let file = format!("c/templates/_{name}.tpl");
        let text = format!("{defs}{{{{ define \"{name}\" }}}}{case}{{{{ end }}}}");
        let got = t
            .parse(&file, &text)
            .map_err(|e| e.to_string())
            .and_then(|_| t.execute(&name, &data).map_err(|e| e.to_string()));
        let want = expected.get(&name).cloned().unwrap_or_default();
        match got {
            Ok(g) if g == want => {}
            Ok(g) => failures.push(format!("{name} {case:?}\n   want {want:?}\n   got  {g:?}")),
            Err(e) => failures.push(format!("{name} {case:?}\n   want {want:?}\n   error {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from helm:\n{}",
        failures.len(),
        all_cases().len(),
        failures.join("\n")
    );
    eprintln!("{} language cases identical to helm", all_cases().len());
}

#[test]
fn error_cases_match_helm3() {
    // helm v3 prints Go's own error text; v4 reformats it (compared in crates/helm).
    let helm3 = helm::oracle("helm3");
    let results: Vec<(usize, String, String)> = std::thread::scope(|s| {
        let chunks: Vec<Vec<(usize, &str)>> = {
            let all: Vec<(usize, &str)> = cases::ERR.iter().copied().enumerate().collect();
            all.chunks(cases::ERR.len().div_ceil(4).max(1))
                .map(|c| c.to_vec())
                .collect()
        };
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                let helm3 = helm3.clone();
                s.spawn(move || {
                    let mut res = Vec::new();
                    for (i, text) in chunk {
                        let dir = tempfile::tempdir().unwrap();
                        helm::write_chart(
                            dir.path(),
                            VALUES,
                            &[("e.yaml".to_string(), text.to_string())],
                        );
                        let want = match helm::helm_template(&helm3, dir.path()) {
                            Ok(o) => format!("NO ERROR; output {o:?}"),
                            Err(e) => {
                                let e = e.strip_prefix("Error: ").unwrap_or(&e);
                                let e = e.split("\n\nUse --debug").next().unwrap_or(e);
                                e.trim_end().to_string()
                            }
                        };
                        res.push((i, text.to_string(), want));
                    }
                    res
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let mut failures = Vec::new();
    for (i, text, want) in &results {
        let got = ours_error(text);
        if &got != want {
            failures.push(format!("e{i} {text:?}\n   want {want}\n   got  {got}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} error cases differ from helm3:\n{}",
        failures.len(),
        results.len(),
        failures.join("\n")
    );
    eprintln!("{} error cases identical to helm3", results.len());
}
