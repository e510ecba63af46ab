//! YAML reading and writing with kustomize's exact semantics.

pub mod emit;
pub mod read;

pub use emit::{to_yaml, to_yaml_stream};
pub use read::{YamlError, parse_documents, parse_documents_yaml11};

use serde_json::Value;

/// Go's `encoding/json` text for a value: keys sorted bytewise, HTML-sensitive characters
/// escaped. kustomize hashes generated ConfigMaps and Secrets over this text.
pub fn go_json(v: &Value) -> String {
    let mut out = String::new();
    write_go_json(v, &mut out);
    out
}

fn write_go_json(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.push_str(&i.to_string());
            } else if let Some(u) = n.as_u64() {
                out.push_str(&u.to_string());
            } else {
                out.push_str(&emit::go_json_float(n.as_f64().unwrap_or(0.0)));
            }
        }
        Value::String(s) => go_json_string(s, out),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_json(x, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_json_string(k, out);
                out.push(':');
                write_go_json(&m[k.as_str()], out);
            }
            out.push('}');
        }
    }
}

fn go_json_string(s: &str, out: &mut String) {
    ferroflux_goyaml::json::write_string(s, true, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn go_json_matches_go() {
        assert_eq!(
            go_json(&json!({"b": "<&>", "a": [1, 1.5, null]})),
            r#"{"a":[1,1.5,null],"b":"\u003c\u0026\u003e"}"#
        );
    }
}
