//! values.schema.json validation with the error shape Helm v4 prints (santhosh-tekuri/jsonschema
//! v6 messages: `- at '/replicas': minimum: got 0, want 1`).

use ferroflux_gotemplate::Value;

use crate::chart::Chart;
use crate::yaml;

struct E {
    loc: String,
    msg: String,
    causes: Vec<E>,
}

fn render(errs: &[E], depth: usize, out: &mut String) {
    for e in errs {
        out.push_str(&"  ".repeat(depth));
        out.push_str(&format!("- at '{}': {}\n", e.loc, e.msg));
        render(&e.causes, depth + 1, out);
    }
}

fn esc_ptr(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Nil | Value::NoValue => "null",
        Value::Bool(_) => "boolean",
        Value::Int(_) | Value::Int64(_) | Value::Uint(_) | Value::Byte(_) | Value::Float(_) => {
            "number"
        }
        Value::String(_) => "string",
        Value::List(_) => "array",
        Value::Map(_) => "object",
        _ => "object",
    }
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) | Value::Int64(i) => Some(*i as f64),
        Value::Uint(u) => Some(*u as f64),
        Value::Byte(b) => Some(f64::from(*b)),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

fn is_type(v: &Value, t: &str) -> bool {
    match t {
        "integer" => as_f64(v).is_some_and(|f| f.fract() == 0.0),
        "number" => as_f64(v).is_some(),
        other => type_of(v) == other,
    }
}

/// Numbers as santhosh-tekuri prints them (thousands separators).
fn num(v: &Value) -> String {
    let f = as_f64(v).unwrap_or(0.0);
    if f.fract() == 0.0 && f.abs() < 1e15 {
        let i = f as i64;
        let s = i.unsigned_abs().to_string();
        let mut out = String::new();
        for (k, c) in s.chars().enumerate() {
            if k > 0 && (s.len() - k).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        if i < 0 { format!("-{out}") } else { out }
    } else {
        ferroflux_gotemplate::gofmt::format_float_shortest(f)
    }
}

fn quoted(v: &Value) -> String {
    match v {
        Value::String(s) => format!("'{s}'"),
        Value::Nil => "null".into(),
        Value::Bool(b) => b.to_string(),
        v if as_f64(v).is_some() => num(v),
        other => yaml::to_json(other, false, None).unwrap_or_default(),
    }
}

fn get<'a>(m: &'a std::collections::BTreeMap<String, Value>, k: &str) -> Option<&'a Value> {
    m.get(k)
}

fn json_eq(a: &Value, b: &Value) -> bool {
    match (as_f64(a), as_f64(b)) {
        (Some(x), Some(y)) => x == y,
        _ => match (a, b) {
            (Value::List(x), Value::List(y)) => {
                x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| json_eq(p, q))
            }
            (Value::Map(_), Value::Map(_)) => {
                let (x, y) = (
                    a.as_map().unwrap_or_default(),
                    b.as_map().unwrap_or_default(),
                );
                let (x, y) = (x.borrow(), y.borrow());
                x.len() == y.len()
                    && x.iter()
                        .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
            }
            _ => a == b,
        },
    }
}

fn resolve<'a>(root: &'a Value, r: &str) -> Option<Value> {
    let path = r.strip_prefix('#')?;
    let mut cur = root.clone();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        let part = part.replace("~1", "/").replace("~0", "~");
        let m = cur.as_map()?;
        let next = m.borrow().get(&part).cloned()?;
        cur = next;
    }
    let _ = root as &'a Value;
    Some(cur)
}

fn group(loc: &str, mut errs: Vec<E>) -> Option<E> {
    match errs.len() {
        0 => None,
        1 => errs.pop(),
        _ => Some(E {
            loc: loc.to_string(),
            msg: "validation failed".into(),
            causes: errs,
        }),
    }
}

fn check(root: &Value, schema: &Value, v: &Value, loc: &str, depth: usize) -> Vec<E> {
    let mut errs = Vec::new();
    if depth > 64 {
        return errs;
    }
    let s = match schema {
        Value::Bool(false) => {
            errs.push(E {
                loc: loc.into(),
                msg: "false schema".into(),
                causes: vec![],
            });
            return errs;
        }
        Value::Map(m) => m.borrow().clone(),
        _ => return errs,
    };
    let err = |errs: &mut Vec<E>, msg: String| {
        errs.push(E {
            loc: loc.to_string(),
            msg,
            causes: vec![],
        })
    };
    if let Some(Value::String(r)) = get(&s, "$ref")
        && let Some(target) = resolve(root, r)
    {
        errs.extend(check(root, &target, v, loc, depth + 1));
    }
    // type
    if let Some(t) = get(&s, "type") {
        let types: Vec<String> = match t {
            Value::String(x) => vec![x.to_string()],
            Value::List(l) => l
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            _ => vec![],
        };
        if !types.is_empty() && !types.iter().any(|t| is_type(v, t)) {
            let mut want = types.clone();
            want.sort();
            err(
                &mut errs,
                format!("got {}, want {}", type_of(v), want.join(" or ")),
            );
        }
    }
    if let Some(Value::List(options)) = get(&s, "enum")
        && !options.iter().any(|o| json_eq(o, v))
    {
        let opts: Vec<String> = options.iter().map(quoted).collect();
        err(
            &mut errs,
            format!("value must be one of {}", opts.join(", ")),
        );
    }
    if let Some(c) = get(&s, "const")
        && !json_eq(c, v)
    {
        err(&mut errs, format!("value must be {}", quoted(c)));
    }
    if let Some(x) = as_f64(v) {
        for (kw, bad) in [
            ("minimum", 0u8),
            ("maximum", 1),
            ("exclusiveMinimum", 2),
            ("exclusiveMaximum", 3),
        ] {
            if let Some(limit) = get(&s, kw)
                && let Some(l) = as_f64(limit)
            {
                let fails = match bad {
                    0 => x < l,
                    1 => x > l,
                    2 => x <= l,
                    _ => x >= l,
                };
                if fails {
                    err(
                        &mut errs,
                        format!("{kw}: got {}, want {}", num(v), num(limit)),
                    );
                }
            }
        }
        if let Some(m) = get(&s, "multipleOf").and_then(as_f64)
            && m != 0.0
            && (x / m).fract() != 0.0
        {
            err(
                &mut errs,
                format!("multipleOf: got {}, want {}", num(v), num(&Value::Float(m))),
            );
        }
    }
    if let Value::String(st) = v {
        let n = st.chars().count() as f64;
        if let Some(l) = get(&s, "minLength").and_then(as_f64)
            && n < l
        {
            err(
                &mut errs,
                format!(
                    "minLength: got {}, want {}",
                    num(&Value::Float(n)),
                    num(&Value::Float(l))
                ),
            );
        }
        if let Some(l) = get(&s, "maxLength").and_then(as_f64)
            && n > l
        {
            err(
                &mut errs,
                format!(
                    "maxLength: got {}, want {}",
                    num(&Value::Float(n)),
                    num(&Value::Float(l))
                ),
            );
        }
        if let Some(Value::String(p)) = get(&s, "pattern")
            && let Ok(re) = regex::Regex::new(p)
            && !re.is_match(st)
        {
            err(&mut errs, format!("'{st}' does not match pattern '{p}'"));
        }
    }
    if let Value::List(items) = v {
        let n = items.len() as f64;
        if let Some(l) = get(&s, "minItems").and_then(as_f64)
            && n < l
        {
            err(
                &mut errs,
                format!(
                    "minItems: got {}, want {}",
                    num(&Value::Float(n)),
                    num(&Value::Float(l))
                ),
            );
        }
        if let Some(l) = get(&s, "maxItems").and_then(as_f64)
            && n > l
        {
            err(
                &mut errs,
                format!(
                    "maxItems: got {}, want {}",
                    num(&Value::Float(n)),
                    num(&Value::Float(l))
                ),
            );
        }
        if matches!(get(&s, "uniqueItems"), Some(Value::Bool(true))) {
            'outer: for i in 0..items.len() {
                for j in i + 1..items.len() {
                    if json_eq(&items[i], &items[j]) {
                        err(&mut errs, format!("items at {i} and {j} are equal"));
                        break 'outer;
                    }
                }
            }
        }
        if let Some(item_schema) = get(&s, "items") {
            for (i, it) in items.iter().enumerate() {
                let l = format!("{loc}/{i}");
                if let Some(e) = group(&l, check(root, item_schema, it, &l, depth + 1)) {
                    errs.push(e);
                }
            }
        }
    }
    if let Value::Map(m) = v {
        let m = m.borrow().clone();
        if let Some(Value::List(req)) = get(&s, "required") {
            let missing: Vec<String> = req
                .iter()
                .filter_map(|r| r.as_str())
                .filter(|r| !m.contains_key(*r))
                .map(|r| format!("'{r}'"))
                .collect();
            match missing.len() {
                0 => {}
                1 => err(&mut errs, format!("missing property {}", missing[0])),
                _ => err(
                    &mut errs,
                    format!("missing properties {}", missing.join(", ")),
                ),
            }
        }
        let n = m.len() as f64;
        if let Some(l) = get(&s, "minProperties").and_then(as_f64)
            && n < l
        {
            err(
                &mut errs,
                format!(
                    "minProperties: got {}, want {}",
                    num(&Value::Float(n)),
                    num(&Value::Float(l))
                ),
            );
        }
        if let Some(l) = get(&s, "maxProperties").and_then(as_f64)
            && n > l
        {
            err(
                &mut errs,
                format!(
                    "maxProperties: got {}, want {}",
                    num(&Value::Float(n)),
                    num(&Value::Float(l))
                ),
            );
        }
        let props = get(&s, "properties")
            .and_then(Value::as_map)
            .map(|p| p.borrow().clone());
        if let Some(props) = &props {
            for (k, sub) in props {
                if let Some(val) = m.get(k) {
                    let l = format!("{loc}/{}", esc_ptr(k));
                    if let Some(e) = group(&l, check(root, sub, val, &l, depth + 1)) {
                        errs.push(e);
                    }
                }
            }
        }
        let patterns: Vec<(regex::Regex, Value)> = get(&s, "patternProperties")
            .and_then(Value::as_map)
            .map(|p| {
                p.borrow()
                    .iter()
                    .filter_map(|(k, v)| regex::Regex::new(k).ok().map(|r| (r, v.clone())))
                    .collect()
            })
            .unwrap_or_default();
        for (k, val) in &m {
            for (re, sub) in &patterns {
                if re.is_match(k) {
                    let l = format!("{loc}/{}", esc_ptr(k));
                    if let Some(e) = group(&l, check(root, sub, val, &l, depth + 1)) {
                        errs.push(e);
                    }
                }
            }
        }
        if let Some(ap) = get(&s, "additionalProperties") {
            let extra: Vec<&String> = m
                .keys()
                .filter(|k| !props.as_ref().is_some_and(|p| p.contains_key(*k)))
                .filter(|k| !patterns.iter().any(|(re, _)| re.is_match(k)))
                .collect();
            match ap {
                Value::Bool(false) if !extra.is_empty() => {
                    let names: Vec<String> = extra.iter().map(|k| format!("'{k}'")).collect();
                    err(
                        &mut errs,
                        format!("additional properties {} not allowed", names.join(", ")),
                    );
                }
                Value::Map(_) => {
                    for k in extra {
                        let l = format!("{loc}/{}", esc_ptr(k));
                        if let Some(e) = group(&l, check(root, ap, &m[k], &l, depth + 1)) {
                            errs.push(e);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    if let Some(Value::List(all)) = get(&s, "allOf") {
        for sub in all.iter() {
            errs.extend(check(root, sub, v, loc, depth + 1));
        }
    }
    if let Some(Value::List(any)) = get(&s, "anyOf") {
        let results: Vec<Vec<E>> = any
            .iter()
            .map(|sub| check(root, sub, v, loc, depth + 1))
            .collect();
        if results.iter().all(|r| !r.is_empty()) {
            let causes = results.into_iter().filter_map(|r| group(loc, r)).collect();
            errs.push(E {
                loc: loc.into(),
                msg: "'anyOf' failed".into(),
                causes,
            });
        }
    }
    if let Some(Value::List(one)) = get(&s, "oneOf") {
        let results: Vec<Vec<E>> = one
            .iter()
            .map(|sub| check(root, sub, v, loc, depth + 1))
            .collect();
        let matched: Vec<usize> = results
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_empty())
            .map(|(i, _)| i)
            .collect();
        if matched.is_empty() {
            let causes = results.into_iter().filter_map(|r| group(loc, r)).collect();
            errs.push(E {
                loc: loc.into(),
                msg: "'oneOf' failed, none matched".into(),
                causes,
            });
        } else if matched.len() > 1 {
            errs.push(E {
                loc: loc.into(),
                msg: format!(
                    "'oneOf' failed, subschemas {}, {} matched",
                    matched[0], matched[1]
                ),
                causes: vec![],
            });
        }
    }
    if let Some(not) = get(&s, "not")
        && check(root, not, v, loc, depth + 1).is_empty()
    {
        err(&mut errs, "'not' failed".into());
    }
    errs
}

/// Validate `values` against the chart's schema and its subcharts' (Helm's
/// `ValidateAgainstSchema`); `Some(text)` lists the failures per chart.
pub fn validate(c: &Chart, values: &Value) -> Result<Option<String>, String> {
    let mut sb = String::new();
    if let Some(schema) = &c.schema {
        let text = String::from_utf8_lossy(schema);
        let root = yaml::parse_json(&text)?;
        let mut errs = check(&root, &root, values, "", 0);
        while errs.len() == 1 && errs[0].msg == "validation failed" {
            errs = std::mem::take(&mut errs[0].causes);
        }
        if !errs.is_empty() {
            sb.push_str(&format!("{}:\n", c.name));
            render(&errs, 0, &mut sb);
        }
    }
    for sub in &c.subcharts {
        let raw = values
            .as_map()
            .and_then(|m| m.borrow().get(&sub.name).cloned());
        match raw {
            None | Some(Value::Nil) => continue,
            Some(v @ Value::Map(_)) => {
                if let Some(e) = validate(sub, &v)? {
                    sb.push_str(&e);
                }
            }
            Some(other) => {
                sb.push_str(&format!(
                    "{}:\ninvalid type for values: expected object (map), got {}\n",
                    sub.name,
                    other.type_name()
                ));
            }
        }
    }
    Ok(if sb.is_empty() { None } else { Some(sb) })
}
