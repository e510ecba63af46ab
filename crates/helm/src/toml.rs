//! `toToml`: a TOML encoder shaped like BurntSushi/toml's (plain keys first, then tables).

use ferroflux_gotemplate::Value;

fn key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        quote(k)
    }
}

fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\u{:04X}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn scalar(v: &Value) -> Option<String> {
    Some(match v {
        Value::Bool(b) => b.to_string(),
        Value::Int(i) | Value::Int64(i) => i.to_string(),
        Value::Uint(u) => u.to_string(),
        Value::Byte(b) => b.to_string(),
        Value::Float(f) => {
            if f.is_nan() {
                "nan".into()
            } else if f.is_infinite() {
                if *f > 0.0 {
                    "inf".into()
                } else {
                    "-inf".into()
                }
            } else if f.fract() == 0.0 && f.abs() < 1e16 {
                format!("{f:.1}")
            } else {
                ferroflux_gotemplate::gofmt::format_float(*f, 'f', None)
            }
        }
        Value::String(s) => quote(s),
        Value::List(l) => {
            let items: Vec<String> = l.iter().filter_map(scalar).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Map(_) => {
            let m = v.as_map()?;
            let m = m.borrow();
            let items: Vec<String> = m
                .iter()
                .filter_map(|(k, x)| scalar(x).map(|s| format!("{} = {}", key(k), s)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        _ => return None,
    })
}

fn is_table(v: &Value) -> bool {
    matches!(v, Value::Map(_))
}

fn is_table_array(v: &Value) -> bool {
    matches!(v, Value::List(l) if !l.is_empty() && l.iter().all(is_table))
}

fn write_table(out: &mut String, path: &[String], v: &Value, indent: usize) {
    let Some(m) = v.as_map() else { return };
    let m = m.borrow();
    let pad = "  ".repeat(indent);
    for (k, x) in m.iter() {
        if x.is_nil() || is_table(x) || is_table_array(x) {
            continue;
        }
        if let Some(s) = scalar(x) {
            out.push_str(&format!("{pad}{} = {}\n", key(k), s));
        }
    }
    for (k, x) in m.iter() {
        let mut p = path.to_vec();
        p.push(key(k));
        let ipad = "  ".repeat(indent);
        if is_table(x) {
            out.push_str(&format!("\n{ipad}[{}]\n", p.join(".")));
            write_table(out, &p, x, indent + 1);
        } else if is_table_array(x)
            && let Value::List(l) = x
        {
            for e in l.iter() {
                out.push_str(&format!("\n{ipad}[[{}]]\n", p.join(".")));
                write_table(out, &p, e, indent + 1);
            }
        }
    }
}

/// BurntSushi/toml encoding of a map.
pub fn to_toml(v: &Value) -> String {
    if !is_table(v) {
        return "toml: top-level values must be Go maps or structs".into();
    }
    let mut out = String::new();
    write_table(&mut out, &[], v, 0);
    if out.starts_with('\n') {
        out.remove(0);
    }
    out
}
