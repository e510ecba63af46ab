//! Go's predefined template functions.

use std::collections::HashMap;

use crate::exec::{State, V};
use crate::func::{Env, Func, FuncError, Param};
use crate::gofmt;
use crate::value::Value;

fn def(name: &str, params: &[Param], variadic: Option<Param>) -> Func {
    // Builtins are dispatched by name in `call`; the closure is never used.
    Func::new(name, params, variadic, |_, _| {
        Err(FuncError::Msg("builtin".into()))
    })
}

pub(crate) fn table() -> HashMap<String, Func> {
    use Param::*;
    let fs = [
        def("and", &[Raw], Some(Raw)),
        def("or", &[Raw], Some(Raw)),
        def("not", &[Raw], None),
        def("len", &[Raw], None),
        def("index", &[Raw], Some(Raw)),
        def("slice", &[Raw], Some(Raw)),
        def("call", &[Raw], Some(Raw)),
        def("print", &[], Some(Any)),
        def("printf", &[String], Some(Any)),
        def("println", &[], Some(Any)),
        def("html", &[], Some(Any)),
        def("js", &[], Some(Any)),
        def("urlquery", &[], Some(Any)),
        def("eq", &[Raw], Some(Raw)),
        def("ne", &[Raw, Raw], None),
        def("lt", &[Raw, Raw], None),
        def("le", &[Raw, Raw], None),
        def("gt", &[Raw, Raw], None),
        def("ge", &[Raw, Raw], None),
    ];
    fs.into_iter().map(|f| (f.name().to_string(), f)).collect()
}

/// `indirectInterface`: a nil interface becomes the invalid value.
fn ind(v: &V) -> Value {
    match &v.v {
        Value::Nil => Value::NoValue,
        other => other.clone(),
    }
}

type BR = Result<V, FuncError>;

pub(crate) fn call(st: &mut State<'_>, name: &str, args: Vec<V>, callee: &str) -> BR {
    let vals = || args.iter().map(|v| v.v.clone()).collect::<Vec<_>>();
    match name {
        "not" => Ok(V::new(Value::Bool(!args[0].v.truth()))),
        "len" => length(&args[0]).map(|n| V::new(Value::Int(n as i64))),
        "index" => index(&args[0], &args[1..]),
        "slice" => slice(&args[0], &args[1..]),
        "print" => Ok(V::new(Value::str(gofmt::sprint(&vals())))),
        "println" => Ok(V::new(Value::str(gofmt::sprintln(&vals())))),
        "printf" => {
            let v = vals();
            let fmt = v[0].as_str().unwrap_or("").to_string();
            Ok(V::new(Value::str(gofmt::sprintf(&fmt, &v[1..]))))
        }
        "html" => Ok(V::new(Value::str(html_escape(&eval_args(&vals()))))),
        "js" => Ok(V::new(Value::str(js_escape(&eval_args(&vals()))))),
        "urlquery" => Ok(V::new(Value::str(query_escape(&eval_args(&vals()))))),
        "eq" => eq(&args[0], &args[1..]).map(|b| V::new(Value::Bool(b))),
        "ne" => eq(&args[0], &args[1..]).map(|b| V::new(Value::Bool(!b))),
        "lt" => lt(&args[0], &args[1]).map(|b| V::new(Value::Bool(b))),
        "le" => le(&args[0], &args[1]).map(|b| V::new(Value::Bool(b))),
        "gt" => le(&args[0], &args[1]).map(|b| V::new(Value::Bool(!b))),
        "ge" => lt(&args[0], &args[1]).map(|b| V::new(Value::Bool(!b))),
        "call" => call_fn(st, &args[0], &args[1..], callee),
        _ => Err(FuncError::Msg(format!("unknown builtin {name}"))),
    }
}

fn length(v: &V) -> Result<usize, FuncError> {
    match &v.v {
        Value::Nil => Err("len of nil pointer".into()),
        Value::NoValue => Err("reflect: call of reflect.Value.Type on zero Value".into()),
        Value::String(s) => Ok(crate::value::go_bytes(s).len()),
        Value::Bytes(b) => Ok(b.len()),
        Value::List(l) => Ok(l.len()),
        Value::Map(m) => Ok(m.borrow().len()),
        Value::Object(o) => match o.as_len() {
            Some(n) => Ok(n),
            None => Err(format!("len of type {}", o.type_name()).into()),
        },
        other => Err(format!("len of type {}", other.type_name()).into()),
    }
}

fn index_arg(index: &Value, cap: usize) -> Result<usize, FuncError> {
    let x: i64 = match index {
        Value::Int(i) | Value::Int64(i) => *i,
        Value::Uint(u) => *u as i64,
        Value::Byte(b) => i64::from(*b),
        Value::NoValue | Value::Nil => {
            return Err("cannot index slice/array with nil".into());
        }
        other => {
            return Err(format!("cannot index slice/array with type {}", other.type_name()).into());
        }
    };
    if x < 0 || x as u64 > cap as u64 {
        return Err(format!("index out of range: {x}").into());
    }
    Ok(x as usize)
}

fn index(item: &V, indexes: &[V]) -> BR {
    let mut item = item.clone();
    if ind(&item).is_nil() {
        return Err("index of untyped nil".into());
    }
    for idx in indexes {
        let idx = ind(idx);
        if let Value::Nil = item.v {
            return Err("index of nil pointer".into());
        }
        item = match &item.v {
            Value::List(l) => {
                let x = index_arg(&idx, l.len())?;
                match l.get(x) {
                    Some(e) => V::iface(e.clone()),
                    None => return Err("reflect: slice index out of range".into()),
                }
            }
            // A named slice type (e.g. Helm's VersionSet, a []string): typed elements.
            Value::Object(o) if o.as_list().is_some() => {
                let l = o.as_list().unwrap_or_default();
                let x = index_arg(&idx, l.len())?;
                match l.get(x) {
                    Some(e) => V::new(e.clone()),
                    None => return Err("reflect: slice index out of range".into()),
                }
            }
            Value::String(s) => {
                let x = index_arg(&idx, s.len())?;
                match s.as_bytes().get(x) {
                    Some(b) => V::new(Value::Byte(*b)),
                    None => return Err("reflect: string index out of range".into()),
                }
            }
            Value::Bytes(bs) => {
                let x = index_arg(&idx, bs.len())?;
                match bs.get(x) {
                    Some(b) => V::new(Value::Byte(*b)),
                    None => return Err("reflect: slice index out of range".into()),
                }
            }
            v if v.as_map().is_some() => {
                let m = v.as_map().unwrap_or_default();
                let key = match &idx {
                    Value::String(s) => s.to_string(),
                    Value::NoValue | Value::Nil => {
                        return Err("value is nil; should be of type string".into());
                    }
                    other => {
                        return Err(format!(
                            "value has type {}; should be string",
                            other.type_name()
                        )
                        .into());
                    }
                };
                let found = m.borrow().get(&key).cloned();
                V::iface(found.unwrap_or(Value::Nil))
            }
            other => {
                return Err(format!("can't index item of type {}", other.type_name()).into());
            }
        };
    }
    Ok(item)
}

fn slice(item: &V, indexes: &[V]) -> BR {
    let item = ind(item);
    if item.is_nil() {
        return Err("slice of untyped nil".into());
    }
    if indexes.len() > 3 {
        return Err(format!("too many slice indexes: {}", indexes.len()).into());
    }
    let len = match &item {
        Value::String(s) => {
            if indexes.len() == 3 {
                return Err("cannot 3-index slice a string".into());
            }
            s.len()
        }
        Value::List(l) => l.len(),
        Value::Bytes(b) => b.len(),
        other => return Err(format!("can't slice item of type {}", other.type_name()).into()),
    };
    let mut idx = [0usize, len, len];
    for (i, x) in indexes.iter().enumerate() {
        idx[i] = index_arg(&ind(x), len)?;
    }
    if idx[0] > idx[1] {
        return Err(format!("invalid slice index: {} > {}", idx[0], idx[1]).into());
    }
    if indexes.len() == 3 && idx[1] > idx[2] {
        return Err(format!("invalid slice index: {} > {}", idx[1], idx[2]).into());
    }
    Ok(V::new(match &item {
        Value::String(s) => {
            Value::str(String::from_utf8_lossy(&s.as_bytes()[idx[0]..idx[1]]).into_owned())
        }
        Value::List(l) => Value::list(l[idx[0]..idx[1]].to_vec()),
        Value::Bytes(b) => Value::Bytes(b[idx[0]..idx[1]].into()),
        _ => Value::NoValue,
    }))
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Kind {
    Invalid,
    Bool,
    Int,
    Float,
    String,
    Uint,
}

fn basic_kind(v: &Value) -> Kind {
    match v {
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) | Value::Int64(_) => Kind::Int,
        Value::Uint(_) | Value::Byte(_) => Kind::Uint,
        Value::Float(_) => Kind::Float,
        Value::String(_) => Kind::String,
        _ => Kind::Invalid,
    }
}

fn as_i(v: &Value) -> i64 {
    match v {
        Value::Int(i) | Value::Int64(i) => *i,
        _ => 0,
    }
}

fn as_u(v: &Value) -> u64 {
    match v {
        Value::Uint(u) => *u,
        Value::Byte(b) => u64::from(*b),
        _ => 0,
    }
}

fn as_f(v: &Value) -> f64 {
    match v {
        Value::Float(f) => *f,
        _ => 0.0,
    }
}

fn eq(a1: &V, rest: &[V]) -> Result<bool, FuncError> {
    let a1 = ind(a1);
    if rest.is_empty() {
        return Err("missing argument for comparison".into());
    }
    let k1 = basic_kind(&a1);
    for a in rest {
        let a = ind(a);
        let k2 = basic_kind(&a);
        let truth = if k1 != k2 {
            match (k1, k2) {
                (Kind::Int, Kind::Uint) => as_i(&a1) >= 0 && as_i(&a1) as u64 == as_u(&a),
                (Kind::Uint, Kind::Int) => as_i(&a) >= 0 && as_u(&a1) == as_i(&a) as u64,
                _ => {
                    if !a1.is_nil() && !a.is_nil() {
                        return Err("incompatible types for comparison".into());
                    }
                    false
                }
            }
        } else {
            match k1 {
                Kind::Bool => matches!((&a1, &a), (Value::Bool(x), Value::Bool(y)) if x == y),
                Kind::Float => as_f(&a1) == as_f(&a),
                Kind::Int => as_i(&a1) == as_i(&a),
                Kind::Uint => as_u(&a1) == as_u(&a),
                Kind::String => a1.as_str() == a.as_str(),
                Kind::Invalid => {
                    if a1.is_nil() || a.is_nil() {
                        a1.is_nil() == a.is_nil()
                    } else {
                        match (&a1, &a) {
                            (Value::List(_), _) | (Value::Map(_), _) | (Value::Bytes(_), _) => {
                                return Err(format!(
                                    "non-comparable type {}: {}",
                                    a.to_go_string(),
                                    a.type_name()
                                )
                                .into());
                            }
                            _ => a1 == a,
                        }
                    }
                }
            }
        };
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

fn lt(a1: &V, a2: &V) -> Result<bool, FuncError> {
    let a1 = ind(a1);
    let k1 = basic_kind(&a1);
    if k1 == Kind::Invalid {
        return Err("invalid type for comparison".into());
    }
    let a2 = ind(a2);
    let k2 = basic_kind(&a2);
    if k2 == Kind::Invalid {
        return Err("invalid type for comparison".into());
    }
    if k1 != k2 {
        return match (k1, k2) {
            (Kind::Int, Kind::Uint) => Ok(as_i(&a1) < 0 || (as_i(&a1) as u64) < as_u(&a2)),
            (Kind::Uint, Kind::Int) => Ok(as_i(&a2) >= 0 && as_u(&a1) < as_i(&a2) as u64),
            _ => Err("incompatible types for comparison".into()),
        };
    }
    Ok(match k1 {
        Kind::Bool | Kind::Invalid => return Err("invalid type for comparison".into()),
        Kind::Float => as_f(&a1) < as_f(&a2),
        Kind::Int => as_i(&a1) < as_i(&a2),
        Kind::Uint => as_u(&a1) < as_u(&a2),
        Kind::String => a1.as_str() < a2.as_str(),
    })
}

fn le(a1: &V, a2: &V) -> Result<bool, FuncError> {
    if lt(a1, a2)? {
        return Ok(true);
    }
    eq(a1, std::slice::from_ref(a2))
}

fn call_fn(st: &mut State<'_>, f: &V, args: &[V], callee: &str) -> BR {
    let f = match ind(f) {
        Value::Func(f) => f,
        Value::NoValue => return Err("call of nil".into()),
        other => {
            return Err(format!("non-function {callee} of type {}", other.type_name()).into());
        }
    };
    let params = f.params();
    match f.variadic() {
        Some(_) => {
            if args.len() < params.len() {
                return Err(format!(
                    "wrong number of args: got {} want at least {}",
                    args.len(),
                    params.len()
                )
                .into());
            }
        }
        None => {
            if args.len() != params.len() {
                return Err(format!(
                    "wrong number of args: got {} want {}",
                    args.len(),
                    params.len()
                )
                .into());
            }
        }
    }
    let mut vals = Vec::with_capacity(args.len());
    for (i, a) in args.iter().enumerate() {
        let p = params
            .get(i)
            .copied()
            .or(f.variadic())
            .unwrap_or(Param::Any);
        let v = ind(a);
        if v.is_nil() && p.can_be_nil() {
            vals.push(Value::Nil);
            continue;
        }
        if !p.accepts(&v) {
            return Err(format!(
                "arg {i} has type {}; should be {}",
                v.type_name(),
                p.go_name()
            )
            .into());
        }
        vals.push(v);
    }
    let env: &mut dyn Env = st;
    f.call(env, vals).map(V::iface)
}

/// Go's `evalArgs`: a single string as is, else `fmt.Sprint` of the printable values.
fn eval_args(args: &[Value]) -> String {
    if let [Value::String(s)] = args {
        return s.to_string();
    }
    let printable: Vec<Value> = args
        .iter()
        .map(|a| match a {
            Value::Nil | Value::NoValue => Value::str("<no value>"),
            other => other.clone(),
        })
        .collect();
    gofmt::sprint(&printable)
}

/// Go's `template.HTMLEscapeString`.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Go's `template.JSEscapeString`.
pub fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c if c.is_ascii() => out.push(c),
            c => {
                if gofmt::is_print(c) {
                    out.push(c);
                } else {
                    out.push_str(&format!("\\u{:04X}", c as u32));
                }
            }
        }
    }
    out
}

/// Go's `url.QueryEscape`.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
