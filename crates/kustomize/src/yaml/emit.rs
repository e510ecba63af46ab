//! kustomize's printing. kustomize prints every resource by turning it into JSON and then
//! into YAML with go-yaml v2 (through sigs.k8s.io/yaml): goyaml's emitter in
//! [`Mode::V2`], mappings in go-yaml v2's natural key order, numbers as go-yaml v2 re-reads
//! and prints the JSON text.

use ferroflux_goyaml::{Emitter, Mode, num, order};
use serde_json::Value;

pub use ferroflux_goyaml::order::key_less;
pub use ferroflux_goyaml::scalar::is_printable;

/// Emit one YAML document (no `---` marker) for a value, as kustomize prints a resource.
pub fn to_yaml(v: &Value) -> String {
    emit_document(v, String::new())
}

/// Append one document to `out`.
fn emit_document(v: &Value, out: String) -> String {
    let mut e = Emitter::new(Mode::V2, out);
    walk(&mut e, v);
    e.finish()
}

/// Emit several documents separated by `---` lines, as `kustomize build` does.
pub fn to_yaml_stream<'a>(docs: impl IntoIterator<Item = &'a Value>) -> String {
    let mut out = String::new();
    for (i, d) in docs.into_iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out = emit_document(d, out);
    }
    out
}

fn walk(e: &mut Emitter, v: &Value) {
    match v {
        Value::Null => e.plain("null"),
        Value::Bool(b) => e.plain(if *b { "true" } else { "false" }),
        Value::Number(n) => e.plain(&number_text(n)),
        Value::String(s) => e.string(s),
        Value::Array(items) if items.is_empty() => e.empty_seq(),
        Value::Object(m) if m.is_empty() => e.empty_map(),
        Value::Array(items) => {
            e.begin_seq();
            for it in items {
                walk(e, it);
            }
            e.end();
        }
        Value::Object(m) => {
            e.begin_map();
            for k in sorted_keys(m) {
                e.key(k);
                walk(e, &m[k.as_str()]);
            }
            e.end();
        }
    }
}

/// Would kyaml's go-yaml v3 write this string as a literal block when asked to? Unlike
/// go-yaml v2, v3 lets tabs into block scalars.
pub fn block_scalar_allowed_v3(s: &str) -> bool {
    ferroflux_goyaml::scalar::analyze(s, true).block_ok
}

/// Text of a number after kustomize's JSON round trip (Go json encoding, then go-yaml v2
/// resolution and formatting).
pub fn number_text(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else {
        num::v2_float_after_json(n.as_f64().unwrap_or(0.0)).unwrap_or_default()
    }
}

/// Text of a scalar value (strings as they are, numbers and booleans as kustomize prints them).
pub fn number_text_or(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => number_text(n),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Go's encoding/json text for a float64.
pub fn go_json_float(f: f64) -> String {
    num::json_float(f).unwrap_or_default()
}

/// Sort keys in go-yaml v2's order (a stable sort on [`key_less`]).
pub fn sorted_keys(m: &serde_json::Map<String, Value>) -> Vec<&String> {
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort_by(|a, b| order::key_cmp(a, b));
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn float_texts() {
        let f = |x: f64| number_text(&serde_json::Number::from_f64(x).unwrap());
        assert_eq!(f(1.0), "1");
        assert_eq!(f(1.5), "1.5");
        assert_eq!(f(1e21), "1e+21");
        assert_eq!(f(1e-7), "1e-07");
        assert_eq!(f(123456789.5), "1.234567895e+08");
        assert_eq!(f(100000.5), "100000.5");
        assert_eq!(f(1e20), "1e+20");
    }

    #[test]
    fn basic_document() {
        let v = json!({"b": [1, {"x": "on", "y": ""}], "a": {}, "c": "multi\nline\n", "d": []});
        assert_eq!(
            to_yaml(&v),
            "a: {}\nb:\n- 1\n- x: \"on\"\n  \"y\": \"\"\nc: |\n  multi\n  line\nd: []\n"
        );
    }
}
