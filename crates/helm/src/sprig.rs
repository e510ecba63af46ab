//! The Sprig function set (Masterminds/sprig v3) as Helm registers it, with Go signatures.

use std::collections::BTreeMap;
use std::rc::Rc;

use base64::Engine as _;
use ferroflux_gotemplate::go_bytes;
use ferroflux_gotemplate::gofmt::{quote as go_quote, sprint, sprintf};
use ferroflux_gotemplate::{Env, Func, FuncError, FuncResult, Param, Value};
use rand::Rng;
use sha2::Digest;

use crate::go_regex;
use crate::yaml;

type Imp = fn(&mut dyn Env, Vec<Value>) -> FuncResult;

fn f(name: &str, params: &[Param], variadic: Option<Param>, imp: Imp) -> Func {
    Func::new(name, params, variadic, imp)
}

/// Go's `fmt.Sprintf("%v")` of a value, as Sprig's `strval`.
pub fn strval(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string(),
        Value::Bytes(b) => ferroflux_gotemplate::string_from_go_bytes(b),
        other => sprint(std::slice::from_ref(other)),
    }
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn int_arg(v: &Value) -> i64 {
    match v {
        Value::Int(i) | Value::Int64(i) => *i,
        _ => 0,
    }
}

fn vstr(x: impl Into<Rc<str>>) -> FuncResult {
    Ok(Value::String(x.into()))
}

fn trim_zero_decimal(s: &str) -> &str {
    if let Some(i) = s.find('.') {
        let frac = &s[i + 1..];
        if !frac.is_empty() && frac.bytes().all(|c| c == b'0') {
            return &s[..i];
        }
    }
    s
}

fn parse_int_base0(s: &str) -> Option<i64> {
    let (neg, b) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let b = b.replace('_', "");
    let (d, radix) = if let Some(r) = b.strip_prefix("0x").or(b.strip_prefix("0X")) {
        (r.to_string(), 16)
    } else if let Some(r) = b.strip_prefix("0o").or(b.strip_prefix("0O")) {
        (r.to_string(), 8)
    } else if let Some(r) = b.strip_prefix("0b").or(b.strip_prefix("0B")) {
        (r.to_string(), 2)
    } else if b.len() > 1 && b.starts_with('0') {
        (b[1..].to_string(), 8)
    } else {
        (b.clone(), 10)
    };
    if d.is_empty() || d.starts_with(['+', '-']) {
        return None;
    }
    let v = i64::from_str_radix(&d, radix).ok()?;
    Some(if neg { -v } else { v })
}

/// spf13/cast `ToInt64`.
pub fn to_int64(v: &Value) -> i64 {
    match v {
        Value::Int(i) | Value::Int64(i) => *i,
        Value::Uint(u) => *u as i64,
        Value::Byte(b) => i64::from(*b),
        Value::Float(f) => *f as i64,
        Value::Bool(b) => i64::from(*b),
        Value::String(s) => parse_int_base0(trim_zero_decimal(s)).unwrap_or(0),
        _ => 0,
    }
}

/// spf13/cast `ToFloat64`.
pub fn to_float64(v: &Value) -> f64 {
    match v {
        Value::Int(i) | Value::Int64(i) => *i as f64,
        Value::Uint(u) => *u as f64,
        Value::Byte(b) => f64::from(*b),
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::String(s) => s.parse::<f64>().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// Sprig's `empty`.
pub fn empty(v: &Value) -> bool {
    match v {
        Value::NoValue | Value::Nil => true,
        Value::Bool(b) => !b,
        Value::Int(i) | Value::Int64(i) => *i == 0,
        Value::Uint(u) => *u == 0,
        Value::Byte(b) => *b == 0,
        Value::Float(f) => *f == 0.0,
        Value::String(s) => s.is_empty(),
        Value::Bytes(b) => b.is_empty(),
        Value::List(l) => l.is_empty(),
        Value::Map(m) => m.borrow().is_empty(),
        Value::Object(o) => match o.as_list() {
            Some(l) => l.is_empty(),
            None => o.as_map().is_some_and(|m| m.borrow().is_empty()),
        },
        Value::Func(_) => false,
    }
}

/// The elements of a Go slice: a list, or an object of a named slice type (Helm's
/// `.Capabilities.APIVersions`, a `VersionSet`), which Sprig's reflection treats alike.
fn slice_of(v: &Value) -> Option<Rc<Vec<Value>>> {
    match v {
        Value::List(l) => Some(l.clone()),
        Value::Object(o) => o.as_list().map(Rc::new),
        _ => None,
    }
}

fn list_items(v: &Value, what: &str) -> Result<Vec<Value>, FuncError> {
    match v {
        Value::List(l) => Ok(l.as_ref().clone()),
        Value::Object(o) if o.as_list().is_some() => Ok(o.as_list().unwrap_or_default()),
        Value::Bytes(b) => Ok(b.iter().map(|c| Value::Byte(*c)).collect()),
        other => Err(FuncError::Msg(format!(
            "Cannot {what} on type {}",
            kind_of(other)
        ))),
    }
}

/// `reflect.Kind` name.
pub fn kind_of(v: &Value) -> String {
    match v {
        Value::NoValue | Value::Nil => "invalid",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Int64(_) => "int64",
        Value::Uint(_) => "uint64",
        Value::Byte(_) => "uint8",
        Value::Float(_) => "float64",
        Value::String(_) => "string",
        Value::Bytes(_) | Value::List(_) => "slice",
        Value::Map(_) => "map",
        Value::Object(o) => {
            if o.as_map().is_some() {
                "map"
            } else if o.as_list().is_some() {
                "slice"
            } else if o.type_name().starts_with('*') {
                "ptr"
            } else {
                "struct"
            }
        }
        Value::Func(_) => "func",
    }
    .to_string()
}

fn strslice(v: &Value) -> Vec<String> {
    match v {
        Value::List(l) => l.iter().filter(|x| !x.is_nil()).map(strval).collect(),
        Value::Object(o) if o.as_list().is_some() => {
            o.as_list().unwrap_or_default().iter().map(strval).collect()
        }
        Value::Nil | Value::NoValue => Vec::new(),
        other => vec![strval(other)],
    }
}

fn str_list(v: Vec<String>) -> Value {
    Value::list(v.into_iter().map(Value::str).collect())
}

fn map_of(v: &Value) -> BTreeMap<String, Value> {
    v.as_map().map(|m| m.borrow().clone()).unwrap_or_default()
}

fn go_title(s: &str) -> String {
    // strings.Title: upper-case letters that follow a separator.
    let mut out = String::with_capacity(s.len());
    let mut prev_sep = true;
    for c in s.chars() {
        if prev_sep {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_sep = if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else if c.is_alphabetic() || c.is_numeric() {
            false
        } else {
            c.is_whitespace()
        };
    }
    out
}

fn rand_string(n: i64, chars: &[u8]) -> String {
    let mut rng = rand::rng();
    (0..n.max(0))
        .map(|_| chars[rng.random_range(0..chars.len())] as char)
        .collect()
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// `regexp.MustCompile` (Sprig's non-`must` functions): a bad pattern panics, which the
/// template reports as `regexp: Compile(`...`): error parsing regexp: ...`.
fn regex(re: &str) -> Result<Rc<regex::Regex>, FuncError> {
    go_regex::compile(re).map_err(|e| FuncError::Msg(go_regex::must_compile_message(re, &e)))
}

/// `regexp.Compile` (Sprig's `must` functions): the error itself.
fn must_regex(re: &str) -> Result<Rc<regex::Regex>, FuncError> {
    go_regex::compile(re).map_err(|e| FuncError::Msg(e.to_string()))
}

fn regex_find(r: &regex::Regex, text: &str) -> Value {
    Value::str(r.find(text).map(|m| m.as_str()).unwrap_or_default())
}

fn until_step(start: i64, stop: i64, step: i64) -> Vec<Value> {
    let mut v = Vec::new();
    if stop < start {
        if step >= 0 {
            return v;
        }
        let mut i = start;
        while i > stop {
            v.push(Value::Int(i));
            i += step;
        }
        return v;
    }
    if step <= 0 {
        return v;
    }
    let mut i = start;
    while i < stop {
        v.push(Value::Int(i));
        i += step;
    }
    v
}

fn merge_into(dst: &ferroflux_gotemplate::MapRef, src: &BTreeMap<String, Value>, overwrite: bool) {
    for (k, sv) in src {
        let existing = dst.borrow().get(k).cloned();
        match existing {
            Some(dv) => {
                if let (Some(dm), Some(sm)) = (dv.as_map(), sv.as_map()) {
                    if !Rc::ptr_eq(&dm, &sm) {
                        let sm = sm.borrow().clone();
                        merge_into(&dm, &sm, overwrite);
                    }
                } else if (overwrite && !empty(sv)) || empty(&dv) {
                    dst.borrow_mut().insert(k.clone(), sv.clone());
                }
            }
            None => {
                dst.borrow_mut().insert(k.clone(), sv.clone());
            }
        }
    }
}

fn sha_hex<D: Digest>(data: &[u8]) -> String {
    hex_lower(&D::digest(data))
}

fn hex_lower(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

fn base32_encode(data: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    for chunk in data.chunks(5) {
        let mut buf = [0u8; 5];
        buf[..chunk.len()].copy_from_slice(chunk);
        let n = u64::from_be_bytes([0, 0, 0, buf[0], buf[1], buf[2], buf[3], buf[4]]);
        let chars = match chunk.len() {
            1 => 2,
            2 => 4,
            3 => 5,
            4 => 7,
            _ => 8,
        };
        for i in 0..8 {
            if i < chars {
                out.push(A[((n >> (35 - 5 * i)) & 31) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base32_decode(s: &str) -> Result<Vec<u8>, String> {
    let mut bits: u64 = 0;
    let mut nbits = 0;
    let mut out = Vec::new();
    for (i, c) in s.bytes().enumerate() {
        if c == b'=' {
            break;
        }
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return Err(format!("illegal base32 data at input byte {i}")),
        };
        bits = (bits << 5) | u64::from(v);
        nbits += 5;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
        }
    }
    Ok(out)
}

fn snake_like(s: &str, sep: char) -> String {
    // xstrings.ToSnakeCase / ToKebabCase
    let mut out = String::new();
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev = if i > 0 { Some(chars[i - 1]) } else { None };
            let next = chars.get(i + 1).copied();
            if let Some(p) = prev
                && (p.is_lowercase()
                    || p.is_numeric()
                    || (p.is_uppercase() && next.is_some_and(|n| n.is_lowercase())))
                && !out.ends_with(sep)
            {
                out.push(sep);
            }
            out.extend(c.to_lowercase());
        } else if c == ' ' || c == '_' || c == '-' || c == '.' {
            if !out.is_empty() && !out.ends_with(sep) {
                out.push(sep);
            }
        } else {
            out.push(c);
        }
    }
    out.trim_end_matches(sep).to_string()
}

fn camel(s: &str) -> String {
    // xstrings.ToPascalCase (approximation: split on non-alphanumerics, capitalise each part)
    let mut out = String::new();
    let mut up = true;
    for c in s.chars() {
        if c == '_' || c == '-' || c == ' ' || c == '.' {
            up = true;
            continue;
        }
        if up {
            out.extend(c.to_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn swapcase(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_uppercase() {
                c.to_lowercase().collect::<String>()
            } else if c.is_lowercase() {
                c.to_uppercase().collect::<String>()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn wrap(s: &str, width: i64) -> String {
    // goutils.Wrap: wrap at spaces so lines are at most `width` long.
    let width = width.max(1) as usize;
    let mut out = String::new();
    for (li, line) in s.split('\n').enumerate() {
        if li > 0 {
            out.push('\n');
        }
        let mut cur = 0usize;
        for (wi, word) in line.split(' ').enumerate() {
            let wl = word.chars().count();
            if wi > 0 {
                if cur + 1 + wl > width {
                    out.push('\n');
                    cur = 0;
                } else {
                    out.push(' ');
                    cur += 1;
                }
            }
            out.push_str(word);
            cur += wl;
        }
    }
    out
}

fn initials(s: &str) -> String {
    s.split_whitespace()
        .filter_map(|w| w.chars().next())
        .collect()
}

fn abbrev(width: i64, s: &str) -> String {
    if width < 4 {
        return s.to_string();
    }
    let n = s.chars().count() as i64;
    if n <= width {
        return s.to_string();
    }
    let keep = (width - 3) as usize;
    format!("{}...", s.chars().take(keep).collect::<String>())
}

/// goutils `AbbreviateFull`.
fn abbreviate_full(st: &str, offset: i64, max_width: i64) -> String {
    let b = st.as_bytes();
    let len = b.len() as i64;
    if st.is_empty() {
        return String::new();
    }
    if len <= max_width {
        return st.to_string();
    }
    let sub = |a: i64, z: i64| String::from_utf8_lossy(&b[a as usize..z as usize]).into_owned();
    let mut offset = offset.min(len);
    if len - offset < max_width - 3 {
        offset = len - (max_width - 3);
    }
    if offset <= 4 {
        return format!("{}...", sub(0, max_width - 3));
    }
    if max_width < 7 {
        return String::new();
    }
    if offset + max_width - 3 < len {
        let rest = sub(offset, len);
        return format!("...{}", abbreviate_full(&rest, 0, max_width - 3));
    }
    format!("...{}", sub(len - (max_width - 3), len))
}

fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex_lower(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn substr(start: i64, end: i64, s: &str) -> Result<String, FuncError> {
    let b = s.as_bytes();
    let len = b.len() as i64;
    let (a, z) = if start < 0 {
        (0, end)
    } else if end < 0 || end > len {
        (start, len)
    } else {
        (start, end)
    };
    if a > len || z > len || a > z || z < 0 {
        return Err(FuncError::Msg(format!(
            "runtime error: slice bounds out of range [{}:{}]",
            a, z
        )));
    }
    Ok(String::from_utf8_lossy(&b[a as usize..z as usize]).into_owned())
}

fn trunc(c: i64, s: &str) -> String {
    let b = s.as_bytes();
    let len = b.len() as i64;
    if c < 0 && len + c > 0 {
        return String::from_utf8_lossy(&b[(len + c) as usize..]).into_owned();
    }
    if c >= 0 && len > c {
        return String::from_utf8_lossy(&b[..c as usize]).into_owned();
    }
    s.to_string()
}

fn dig(keys: &[Value], def: &Value, dict: &Value) -> FuncResult {
    let mut cur = dict.clone();
    for (i, k) in keys.iter().enumerate() {
        let Some(m) = cur.as_map() else {
            return Err(FuncError::Msg(format!(
                "interface conversion: interface {{}} is {}, not map[string]interface {{}}",
                cur.type_name()
            )));
        };
        let key = k.as_str().unwrap_or_default().to_string();
        let step = m.borrow().get(&key).cloned();
        match step {
            None => return Ok(def.clone()),
            Some(v) => {
                if i + 1 == keys.len() {
                    return Ok(v);
                }
                cur = v;
            }
        }
    }
    Ok(def.clone())
}

/// Every Sprig function Helm exposes (minus env/expandenv), plus `hello`.
pub fn functions() -> Vec<Func> {
    let mut v = base_functions();
    v.extend(crate::date::functions());
    v.extend(crate::crypto::functions());
    v
}

fn base_functions() -> Vec<Func> {
    use Param::*;
    vec![
        f("hello", &[], None, |_, _| vstr("Hello!")),
        // strings
        f("upper", &[String], None, |_, a| {
            vstr(s(&a[0]).to_uppercase())
        }),
        f("lower", &[String], None, |_, a| {
            vstr(s(&a[0]).to_lowercase())
        }),
        f("title", &[String], None, |_, a| vstr(go_title(&s(&a[0])))),
        f("untitle", &[String], None, |_, a| {
            let x = s(&a[0]);
            let mut c = x.chars();
            vstr(match c.next() {
                Some(f) => f.to_lowercase().collect::<std::string::String>() + c.as_str(),
                None => x.clone(),
            })
        }),
        f("trim", &[String], None, |_, a| vstr(s(&a[0]).trim())),
        f("trimAll", &[String, String], None, |_, a| {
            let cut = s(&a[0]);
            vstr(s(&a[1]).trim_matches(|c| cut.contains(c)))
        }),
        f("trimall", &[String, String], None, |_, a| {
            let cut = s(&a[0]);
            vstr(s(&a[1]).trim_matches(|c| cut.contains(c)))
        }),
        f("trimSuffix", &[String, String], None, |_, a| {
            let x = s(&a[1]);
            vstr(x.strip_suffix(s(&a[0]).as_str()).unwrap_or(&x))
        }),
        f("trimPrefix", &[String, String], None, |_, a| {
            let x = s(&a[1]);
            vstr(x.strip_prefix(s(&a[0]).as_str()).unwrap_or(&x))
        }),
        f("nospace", &[String], None, |_, a| {
            vstr(
                s(&a[0])
                    .chars()
                    .filter(|c| !c.is_whitespace())
                    .collect::<std::string::String>(),
            )
        }),
        f("repeat", &[Int, String], None, |_, a| {
            let n = int_arg(&a[0]);
            if n < 0 {
                return Err("strings: negative Repeat count".into());
            }
            vstr(s(&a[1]).repeat(n as usize))
        }),
        f("substr", &[Int, Int, String], None, |_, a| {
            substr(int_arg(&a[0]), int_arg(&a[1]), &s(&a[2])).map(Value::str)
        }),
        f("trunc", &[Int, String], None, |_, a| {
            vstr(trunc(int_arg(&a[0]), &s(&a[1])))
        }),
        f("abbrev", &[Int, String], None, |_, a| {
            vstr(abbrev(int_arg(&a[0]), &s(&a[1])))
        }),
        f("initials", &[String], None, |_, a| {
            vstr(initials(&s(&a[0])))
        }),
        f("abbrevboth", &[Int, Int, String], None, |_, a| {
            let (left, right, st) = (int_arg(&a[0]), int_arg(&a[1]), s(&a[2]));
            if right < 4 || (left > 0 && right < 7) {
                return vstr(st);
            }
            vstr(abbreviate_full(&st, left, right))
        }),
        f("shuffle", &[String], None, |_, a| {
            let mut chars: Vec<char> = s(&a[0]).chars().collect();
            let mut rng = rand::rng();
            for i in (1..chars.len()).rev() {
                let j = rng.random_range(0..=i);
                chars.swap(i, j);
            }
            vstr(chars.into_iter().collect::<std::string::String>())
        }),
        f("urlParse", &[String], None, |_, a| {
            crate::url::parse(&s(&a[0])).map_err(FuncError::Msg)
        }),
        f("urlJoin", &[Map], None, |_, a| {
            vstr(crate::url::join(&map_of(&a[0])))
        }),
        f("swapcase", &[String], None, |_, a| {
            vstr(swapcase(&s(&a[0])))
        }),
        f("snakecase", &[String], None, |_, a| {
            vstr(snake_like(&s(&a[0]), '_'))
        }),
        f("kebabcase", &[String], None, |_, a| {
            vstr(snake_like(&s(&a[0]), '-'))
        }),
        f("camelcase", &[String], None, |_, a| vstr(camel(&s(&a[0])))),
        f("wrap", &[Int, String], None, |_, a| {
            vstr(wrap(&s(&a[1]), int_arg(&a[0])))
        }),
        f("wrapWith", &[Int, String, String], None, |_, a| {
            vstr(wrap(&s(&a[2]), int_arg(&a[0])).replace('\n', &s(&a[1])))
        }),
        f("contains", &[String, String], None, |_, a| {
            Ok(Value::Bool(s(&a[1]).contains(s(&a[0]).as_str())))
        }),
        f("hasPrefix", &[String, String], None, |_, a| {
            Ok(Value::Bool(s(&a[1]).starts_with(s(&a[0]).as_str())))
        }),
        f("hasSuffix", &[String, String], None, |_, a| {
            Ok(Value::Bool(s(&a[1]).ends_with(s(&a[0]).as_str())))
        }),
        f("quote", &[], Some(Any), |_, a| {
            let parts: Vec<std::string::String> = a
                .iter()
                .filter(|x| !x.is_nil())
                .map(|x| go_quote(&strval(x)))
                .collect();
            vstr(parts.join(" "))
        }),
        f("squote", &[], Some(Any), |_, a| {
            let parts: Vec<std::string::String> = a
                .iter()
                .filter(|x| !x.is_nil())
                .map(|x| format!("'{}'", sprint(std::slice::from_ref(x))))
                .collect();
            vstr(parts.join(" "))
        }),
        f("cat", &[], Some(Any), |_, a| {
            let v: Vec<Value> = a.into_iter().filter(|x| !x.is_nil()).collect();
            let fmt = "%v ".repeat(v.len());
            vstr(sprintf(fmt.trim(), &v))
        }),
        f("indent", &[Int, String], None, |_, a| {
            let pad = " ".repeat(int_arg(&a[0]).max(0) as usize);
            vstr(format!(
                "{pad}{}",
                s(&a[1]).replace('\n', &format!("\n{pad}"))
            ))
        }),
        f("nindent", &[Int, String], None, |_, a| {
            let pad = " ".repeat(int_arg(&a[0]).max(0) as usize);
            vstr(format!(
                "\n{pad}{}",
                s(&a[1]).replace('\n', &format!("\n{pad}"))
            ))
        }),
        f("replace", &[String, String, String], None, |_, a| {
            let old = s(&a[0]);
            let src = s(&a[2]);
            if old.is_empty() {
                // strings.Replace with empty old inserts `new` around every rune
                let new = s(&a[1]);
                let mut out = new.clone();
                for c in src.chars() {
                    out.push(c);
                    out.push_str(&new);
                }
                return vstr(out);
            }
            vstr(src.replace(old.as_str(), &s(&a[1])))
        }),
        f("plural", &[String, String, Int], None, |_, a| {
            Ok(if int_arg(&a[2]) == 1 {
                a[0].clone()
            } else {
                a[1].clone()
            })
        }),
        f("toString", &[Any], None, |_, a| vstr(strval(&a[0]))),
        f("atoi", &[String], None, |_, a| {
            Ok(Value::Int(s(&a[0]).parse::<i64>().unwrap_or(0)))
        }),
        f("int64", &[Any], None, |_, a| {
            Ok(Value::Int64(to_int64(&a[0])))
        }),
        f("int", &[Any], None, |_, a| Ok(Value::Int(to_int64(&a[0])))),
        f("float64", &[Any], None, |_, a| {
            Ok(Value::Float(to_float64(&a[0])))
        }),
        f("toDecimal", &[Any], None, |_, a| {
            Ok(Value::Int64(
                i64::from_str_radix(&strval(&a[0]), 8).unwrap_or(0),
            ))
        }),
        f("split", &[String, String], None, |_, a| {
            let sep = s(&a[0]);
            let orig = s(&a[1]);
            let m: BTreeMap<std::string::String, Value> = go_split(&orig, &sep, -1)
                .into_iter()
                .enumerate()
                .map(|(i, p)| (format!("_{i}"), Value::str(p)))
                .collect();
            Ok(Value::map(m))
        }),
        f("splitn", &[String, Int, String], None, |_, a| {
            let m: BTreeMap<std::string::String, Value> =
                go_split(&s(&a[2]), &s(&a[0]), int_arg(&a[1]))
                    .into_iter()
                    .enumerate()
                    .map(|(i, p)| (format!("_{i}"), Value::str(p)))
                    .collect();
            Ok(Value::map(m))
        }),
        f("splitList", &[String, String], None, |_, a| {
            Ok(str_list(go_split(&s(&a[1]), &s(&a[0]), -1)))
        }),
        f("toStrings", &[Any], None, |_, a| {
            Ok(str_list(strslice(&a[0])))
        }),
        f("join", &[String, Any], None, |_, a| {
            vstr(strslice(&a[1]).join(&s(&a[0])))
        }),
        f("sortAlpha", &[Any], None, |_, a| {
            let mut v = match slice_of(&a[0]) {
                Some(_) => strslice(&a[0]),
                None => vec![strval(&a[0])],
            };
            v.sort();
            Ok(str_list(v))
        }),
        f("seq", &[], Some(Int), |_, a| {
            let p: Vec<i64> = a.iter().map(int_arg).collect();
            let v = match p.len() {
                1 => {
                    let end = p[0];
                    let inc = if end < 1 { -1 } else { 1 };
                    until_step(1, end + inc, inc)
                }
                2 => {
                    let step = if p[1] < p[0] { -1 } else { 1 };
                    until_step(p[0], p[1] + step, step)
                }
                3 => {
                    let (start, step, end) = (p[0], p[1], p[2]);
                    let mut inc = 1;
                    if end < start {
                        inc = -1;
                        if step > 0 {
                            return vstr("");
                        }
                    }
                    until_step(start, end + inc, step)
                }
                _ => Vec::new(),
            };
            vstr(
                v.iter()
                    .map(|x| x.to_go_string())
                    .collect::<Vec<_>>()
                    .join(" "),
            )
        }),
        // encoding and hashing
        f("b64enc", &[String], None, |_, a| {
            vstr(base64::engine::general_purpose::STANDARD.encode(go_bytes(&s(&a[0]))))
        }),
        f(
            "b64dec",
            &[String],
            None,
            |_, a| match base64::engine::general_purpose::STANDARD.decode(s(&a[0])) {
                Ok(b) => vstr(ferroflux_gotemplate::string_from_go_bytes(&b)),
                Err(e) => vstr(go_b64_error(&e)),
            },
        ),
        f("b32enc", &[String], None, |_, a| {
            vstr(base32_encode(&go_bytes(&s(&a[0]))))
        }),
        f("b32dec", &[String], None, |_, a| {
            match base32_decode(&s(&a[0])) {
                Ok(b) => vstr(ferroflux_gotemplate::string_from_go_bytes(&b)),
                Err(e) => vstr(e),
            }
        }),
        f("sha256sum", &[String], None, |_, a| {
            vstr(sha_hex::<sha2::Sha256>(&go_bytes(&s(&a[0]))))
        }),
        f("sha512sum", &[String], None, |_, a| {
            vstr(sha_hex::<sha2::Sha512>(&go_bytes(&s(&a[0]))))
        }),
        f("sha1sum", &[String], None, |_, a| {
            vstr(crate::sha1::hex_digest(&go_bytes(&s(&a[0]))))
        }),
        f("adler32sum", &[String], None, |_, a| {
            vstr(adler32(&go_bytes(&s(&a[0]))).to_string())
        }),
        f("randAlphaNum", &[Int], None, |_, a| {
            vstr(rand_string(int_arg(&a[0]), ALNUM))
        }),
        f("randAlpha", &[Int], None, |_, a| {
            vstr(rand_string(int_arg(&a[0]), &ALNUM[..52]))
        }),
        f("randNumeric", &[Int], None, |_, a| {
            vstr(rand_string(int_arg(&a[0]), &ALNUM[52..]))
        }),
        f("randAscii", &[Int], None, |_, a| {
            let chars: Vec<u8> = (32u8..=126).collect();
            vstr(rand_string(int_arg(&a[0]), &chars))
        }),
        f("randInt", &[Int, Int], None, |_, a| {
            let (lo, hi) = (int_arg(&a[0]), int_arg(&a[1]));
            if hi <= lo {
                return Err("invalid argument to Intn".into());
            }
            Ok(Value::Int(rand::rng().random_range(lo..hi)))
        }),
        f("uuidv4", &[], None, |_, _| vstr(uuid_v4())),
        // regex
        // Sprig's regexMatch ignores a bad pattern (`regexp.MatchString`'s error): false.
        f("regexMatch", &[String, String], None, |_, a| {
            Ok(Value::Bool(
                go_regex::compile(&s(&a[0])).is_ok_and(|r| r.is_match(&s(&a[1]))),
            ))
        }),
        f("mustRegexMatch", &[String, String], None, |_, a| {
            Ok(Value::Bool(must_regex(&s(&a[0]))?.is_match(&s(&a[1]))))
        }),
        f("regexFind", &[String, String], None, |_, a| {
            Ok(regex_find(&*regex(&s(&a[0]))?, &s(&a[1])))
        }),
        f("mustRegexFind", &[String, String], None, |_, a| {
            Ok(regex_find(&*must_regex(&s(&a[0]))?, &s(&a[1])))
        }),
        f("regexFindAll", &[String, String, Int], None, |_, a| {
            regex_find_all(&*regex(&s(&a[0]))?, &a)
        }),
        f("mustRegexFindAll", &[String, String, Int], None, |_, a| {
            regex_find_all(&*must_regex(&s(&a[0]))?, &a)
        }),
        f(
            "regexReplaceAll",
            &[String, String, String],
            None,
            |_, a| {
                let r = regex(&s(&a[0]))?;
                vstr(r.replace_all(&s(&a[1]), s(&a[2]).as_str()).into_owned())
            },
        ),
        f(
            "mustRegexReplaceAll",
            &[String, String, String],
            None,
            |_, a| {
                let r = must_regex(&s(&a[0]))?;
                vstr(r.replace_all(&s(&a[1]), s(&a[2]).as_str()).into_owned())
            },
        ),
        f(
            "regexReplaceAllLiteral",
            &[String, String, String],
            None,
            |_, a| {
                let r = regex(&s(&a[0]))?;
                vstr(
                    r.replace_all(&s(&a[1]), regex::NoExpand(&s(&a[2])))
                        .into_owned(),
                )
            },
        ),
        f(
            "mustRegexReplaceAllLiteral",
            &[String, String, String],
            None,
            |_, a| {
                let r = must_regex(&s(&a[0]))?;
                vstr(
                    r.replace_all(&s(&a[1]), regex::NoExpand(&s(&a[2])))
                        .into_owned(),
                )
            },
        ),
        f("regexSplit", &[String, String, Int], None, |_, a| {
            regex_split(&*regex(&s(&a[0]))?, &a)
        }),
        f("mustRegexSplit", &[String, String, Int], None, |_, a| {
            regex_split(&*must_regex(&s(&a[0]))?, &a)
        }),
        f("regexQuoteMeta", &[String], None, |_, a| {
            vstr(go_regex::quote_meta(&s(&a[0])))
        }),
        // paths
        f("base", &[String], None, |_, a| vstr(path_base(&s(&a[0])))),
        f("dir", &[String], None, |_, a| vstr(path_dir(&s(&a[0])))),
        f("clean", &[String], None, |_, a| vstr(path_clean(&s(&a[0])))),
        f("ext", &[String], None, |_, a| vstr(path_ext(&s(&a[0])))),
        f("isAbs", &[String], None, |_, a| {
            Ok(Value::Bool(s(&a[0]).starts_with('/')))
        }),
        f("osBase", &[String], None, |_, a| vstr(path_base(&s(&a[0])))),
        f("osDir", &[String], None, |_, a| vstr(path_dir(&s(&a[0])))),
        f("osClean", &[String], None, |_, a| {
            vstr(path_clean(&s(&a[0])))
        }),
        f("osExt", &[String], None, |_, a| vstr(path_ext(&s(&a[0])))),
        f("osIsAbs", &[String], None, |_, a| {
            Ok(Value::Bool(s(&a[0]).starts_with('/')))
        }),
        // math
        f("add1", &[Any], None, |_, a| {
            Ok(Value::Int64(to_int64(&a[0]).wrapping_add(1)))
        }),
        f("add", &[], Some(Any), |_, a| {
            Ok(Value::Int64(
                a.iter().fold(0i64, |acc, x| acc.wrapping_add(to_int64(x))),
            ))
        }),
        f("sub", &[Any, Any], None, |_, a| {
            Ok(Value::Int64(to_int64(&a[0]).wrapping_sub(to_int64(&a[1]))))
        }),
        f("div", &[Any, Any], None, |_, a| {
            let d = to_int64(&a[1]);
            if d == 0 {
                return Err("runtime error: integer divide by zero".into());
            }
            Ok(Value::Int64(to_int64(&a[0]).wrapping_div(d)))
        }),
        f("mod", &[Any, Any], None, |_, a| {
            let d = to_int64(&a[1]);
            if d == 0 {
                return Err("runtime error: integer divide by zero".into());
            }
            Ok(Value::Int64(to_int64(&a[0]).wrapping_rem(d)))
        }),
        f("mul", &[Any], Some(Any), |_, a| {
            Ok(Value::Int64(
                a[1..]
                    .iter()
                    .fold(to_int64(&a[0]), |acc, x| acc.wrapping_mul(to_int64(x))),
            ))
        }),
        f("max", &[Any], Some(Any), |_, a| {
            Ok(Value::Int64(a.iter().map(to_int64).max().unwrap_or(0)))
        }),
        f("biggest", &[Any], Some(Any), |_, a| {
            Ok(Value::Int64(a.iter().map(to_int64).max().unwrap_or(0)))
        }),
        f("min", &[Any], Some(Any), |_, a| {
            Ok(Value::Int64(a.iter().map(to_int64).min().unwrap_or(0)))
        }),
        f("maxf", &[Any], Some(Any), |_, a| {
            Ok(Value::Float(
                a[1..]
                    .iter()
                    .fold(to_float64(&a[0]), |acc, x| acc.max(to_float64(x))),
            ))
        }),
        f("minf", &[Any], Some(Any), |_, a| {
            Ok(Value::Float(
                a[1..]
                    .iter()
                    .fold(to_float64(&a[0]), |acc, x| acc.min(to_float64(x))),
            ))
        }),
        f("floor", &[Any], None, |_, a| {
            Ok(Value::Float(to_float64(&a[0]).floor()))
        }),
        f("ceil", &[Any], None, |_, a| {
            Ok(Value::Float(to_float64(&a[0]).ceil()))
        }),
        f("round", &[Any, Int], Some(Float64), |_, a| {
            let round_on = a.get(2).map(to_float64).unwrap_or(0.5);
            let val = to_float64(&a[0]);
            let pow = 10f64.powf(int_arg(&a[1]) as f64);
            let digit = pow * val;
            let frac = digit.fract();
            let r = if frac >= round_on {
                digit.ceil()
            } else {
                digit.floor()
            };
            Ok(Value::Float(r / pow))
        }),
        f("until", &[Int], None, |_, a| {
            let c = int_arg(&a[0]);
            Ok(Value::list(until_step(0, c, if c < 0 { -1 } else { 1 })))
        }),
        f("untilStep", &[Int, Int, Int], None, |_, a| {
            Ok(Value::list(until_step(
                int_arg(&a[0]),
                int_arg(&a[1]),
                int_arg(&a[2]),
            )))
        }),
        f("add1f", &[Any], None, |_, a| {
            Ok(Value::Float(crate::decimal::op(
                &a[0],
                &[Value::Int(1)],
                '+',
            )))
        }),
        f("addf", &[], Some(Any), |_, a| {
            Ok(Value::Float(crate::decimal::op(
                &Value::Float(0.0),
                &a,
                '+',
            )))
        }),
        f("subf", &[Any], Some(Any), |_, a| {
            Ok(Value::Float(crate::decimal::op(&a[0], &a[1..], '-')))
        }),
        f("mulf", &[Any], Some(Any), |_, a| {
            Ok(Value::Float(crate::decimal::op(&a[0], &a[1..], '*')))
        }),
        f("divf", &[Any], Some(Any), |_, a| {
            Ok(Value::Float(crate::decimal::op(&a[0], &a[1..], '/')))
        }),
        // defaults and logic
        f("default", &[Any], Some(Any), |_, a| {
            if a.len() < 2 || empty(&a[1]) {
                Ok(a[0].clone())
            } else {
                Ok(a[1].clone())
            }
        }),
        f("empty", &[Any], None, |_, a| Ok(Value::Bool(empty(&a[0])))),
        f("coalesce", &[], Some(Any), |_, a| {
            Ok(a.into_iter().find(|x| !empty(x)).unwrap_or(Value::Nil))
        }),
        f("all", &[], Some(Any), |_, a| {
            Ok(Value::Bool(a.iter().all(|x| !empty(x))))
        }),
        f("any", &[], Some(Any), |_, a| {
            Ok(Value::Bool(a.iter().any(|x| !empty(x))))
        }),
        f("ternary", &[Any, Any, Bool], None, |_, a| {
            Ok(if matches!(a[2], Value::Bool(true)) {
                a[0].clone()
            } else {
                a[1].clone()
            })
        }),
        f("compact", &[Any], None, |_, a| {
            Ok(Value::list(
                list_items(&a[0], "compact")?
                    .into_iter()
                    .filter(|x| !empty(x))
                    .collect(),
            ))
        }),
        f("mustCompact", &[Any], None, |_, a| {
            Ok(Value::list(
                list_items(&a[0], "compact")?
                    .into_iter()
                    .filter(|x| !empty(x))
                    .collect(),
            ))
        }),
        f("typeOf", &[Any], None, |_, a| vstr(a[0].type_name())),
        f("typeIs", &[String, Any], None, |_, a| {
            Ok(Value::Bool(s(&a[0]) == a[1].type_name()))
        }),
        f("typeIsLike", &[String, Any], None, |_, a| {
            let t = a[1].type_name();
            let target = s(&a[0]);
            Ok(Value::Bool(t == target || t == format!("*{target}")))
        }),
        f("kindOf", &[Any], None, |_, a| vstr(kind_of(&a[0]))),
        f("kindIs", &[String, Any], None, |_, a| {
            Ok(Value::Bool(s(&a[0]) == kind_of(&a[1])))
        }),
        f("deepEqual", &[Any, Any], None, |_, a| {
            Ok(Value::Bool(a[0] == a[1]))
        }),
        f("deepCopy", &[Any], None, |_, a| Ok(a[0].deep_copy())),
        f("mustDeepCopy", &[Any], None, |_, a| Ok(a[0].deep_copy())),
        // JSON (Helm overrides toJson/fromJson/mustToJson; these are Sprig's)
        f("toPrettyJson", &[Any], None, |_, a| {
            vstr(yaml::to_json(&a[0], true, Some("  ")).unwrap_or_default())
        }),
        f("mustToPrettyJson", &[Any], None, |_, a| {
            yaml::to_json(&a[0], true, Some("  "))
                .map(Value::str)
                .map_err(FuncError::Msg)
        }),
        f("toRawJson", &[Any], None, |_, a| {
            yaml::to_json(&a[0], false, None)
                .map(Value::str)
                .map_err(FuncError::Msg)
        }),
        f("mustToRawJson", &[Any], None, |_, a| {
            yaml::to_json(&a[0], false, None)
                .map(Value::str)
                .map_err(FuncError::Msg)
        }),
        f("mustFromJson", &[String], None, |_, a| {
            yaml::parse_json(&s(&a[0])).map_err(FuncError::Msg)
        }),
        // lists
        f("list", &[], Some(Any), |_, a| Ok(Value::list(a))),
        f("tuple", &[], Some(Any), |_, a| Ok(Value::list(a))),
        f("first", &[Any], None, |_, a| {
            Ok(list_items(&a[0], "find first")?
                .into_iter()
                .next()
                .unwrap_or(Value::Nil))
        }),
        f("mustFirst", &[Any], None, |_, a| {
            Ok(list_items(&a[0], "find first")?
                .into_iter()
                .next()
                .unwrap_or(Value::Nil))
        }),
        f("last", &[Any], None, |_, a| {
            Ok(list_items(&a[0], "find last")?.pop().unwrap_or(Value::Nil))
        }),
        f("mustLast", &[Any], None, |_, a| {
            Ok(list_items(&a[0], "find last")?.pop().unwrap_or(Value::Nil))
        }),
        f("rest", &[Any], None, |_, a| {
            let l = list_items(&a[0], "find rest")?;
            Ok(if l.is_empty() {
                Value::Nil
            } else {
                Value::list(l[1..].to_vec())
            })
        }),
        f("mustRest", &[Any], None, |_, a| {
            let l = list_items(&a[0], "find rest")?;
            Ok(if l.is_empty() {
                Value::Nil
            } else {
                Value::list(l[1..].to_vec())
            })
        }),
        f("initial", &[Any], None, |_, a| {
            let l = list_items(&a[0], "find initial")?;
            Ok(if l.is_empty() {
                Value::Nil
            } else {
                Value::list(l[..l.len() - 1].to_vec())
            })
        }),
        f("mustInitial", &[Any], None, |_, a| {
            let l = list_items(&a[0], "find initial")?;
            Ok(if l.is_empty() {
                Value::Nil
            } else {
                Value::list(l[..l.len() - 1].to_vec())
            })
        }),
        f("append", &[Any, Any], None, push),
        f("push", &[Any, Any], None, push),
        f("mustAppend", &[Any, Any], None, push),
        f("mustPush", &[Any, Any], None, push),
        f("prepend", &[Any, Any], None, |_, a| {
            let mut l = list_items(&a[0], "prepend")?;
            l.insert(0, a[1].clone());
            Ok(Value::list(l))
        }),
        f("mustPrepend", &[Any, Any], None, |_, a| {
            let mut l = list_items(&a[0], "prepend")?;
            l.insert(0, a[1].clone());
            Ok(Value::list(l))
        }),
        f("concat", &[], Some(Any), |_, a| {
            let mut out = Vec::new();
            for l in &a {
                match slice_of(l) {
                    Some(x) => out.extend(x.iter().cloned()),
                    None => {
                        return Err(format!("Cannot concat type {} as list", kind_of(l)).into());
                    }
                }
            }
            Ok(if out.is_empty() {
                Value::Nil
            } else {
                Value::list(out)
            })
        }),
        f("reverse", &[Any], None, |_, a| {
            let mut l = list_items(&a[0], "find reverse")?;
            l.reverse();
            Ok(Value::list(l))
        }),
        f("mustReverse", &[Any], None, |_, a| {
            let mut l = list_items(&a[0], "find reverse")?;
            l.reverse();
            Ok(Value::list(l))
        }),
        f("uniq", &[Any], None, uniq),
        f("mustUniq", &[Any], None, uniq),
        f("without", &[Any], Some(Any), |_, a| {
            let l = list_items(&a[0], "find without")?;
            Ok(Value::list(
                l.into_iter().filter(|x| !a[1..].contains(x)).collect(),
            ))
        }),
        f("mustWithout", &[Any], Some(Any), |_, a| {
            let l = list_items(&a[0], "find without")?;
            Ok(Value::list(
                l.into_iter().filter(|x| !a[1..].contains(x)).collect(),
            ))
        }),
        f("has", &[Any, Any], None, has),
        f("mustHas", &[Any, Any], None, has),
        f("slice", &[Any], Some(Any), sprig_slice),
        f("mustSlice", &[Any], Some(Any), sprig_slice),
        f("mustChunk", &[Int, Any], None, |_, a| {
            let size = int_arg(&a[0]).max(1) as usize;
            let l = list_items(&a[1], "chunk")?;
            Ok(Value::list(
                l.chunks(size).map(|c| Value::list(c.to_vec())).collect(),
            ))
        }),
        f("chunk", &[Int, Any], None, |_, a| {
            let size = int_arg(&a[0]).max(1) as usize;
            let l = list_items(&a[1], "chunk")?;
            Ok(Value::list(
                l.chunks(size).map(|c| Value::list(c.to_vec())).collect(),
            ))
        }),
        // dicts
        f("dict", &[], Some(Any), |_, a| {
            let mut m = BTreeMap::new();
            let mut i = 0;
            while i < a.len() {
                let k = strval(&a[i]);
                let v = a.get(i + 1).cloned().unwrap_or_else(|| Value::str(""));
                m.insert(k, v);
                i += 2;
            }
            Ok(Value::map(m))
        }),
        f("get", &[Map, String], None, |_, a| {
            Ok(map_of(&a[0])
                .get(&s(&a[1]))
                .cloned()
                .unwrap_or_else(|| Value::str("")))
        }),
        f("set", &[Map, String, Any], None, |_, a| {
            match a[0].as_map() {
                Some(m) => {
                    m.borrow_mut().insert(s(&a[1]), a[2].clone());
                    Ok(a[0].clone())
                }
                None => Err("assignment to entry in nil map".into()),
            }
        }),
        f("unset", &[Map, String], None, |_, a| {
            if let Some(m) = a[0].as_map() {
                m.borrow_mut().remove(&s(&a[1]));
            }
            Ok(a[0].clone())
        }),
        f("hasKey", &[Map, String], None, |_, a| {
            Ok(Value::Bool(map_of(&a[0]).contains_key(&s(&a[1]))))
        }),
        f("pluck", &[String], Some(Map), |_, a| {
            let k = s(&a[0]);
            Ok(Value::list(
                a[1..]
                    .iter()
                    .filter_map(|d| map_of(d).get(&k).cloned())
                    .collect(),
            ))
        }),
        f("keys", &[], Some(Map), |_, a| {
            let mut k = Vec::new();
            for d in &a {
                k.extend(map_of(d).into_keys());
            }
            Ok(str_list(k))
        }),
        f("values", &[Map], None, |_, a| {
            Ok(Value::list(map_of(&a[0]).into_values().collect()))
        }),
        f("pick", &[Map], Some(String), |_, a| {
            let m = map_of(&a[0]);
            let out: BTreeMap<_, _> = a[1..]
                .iter()
                .filter_map(|k| {
                    let k = s(k);
                    m.get(&k).map(|v| (k, v.clone()))
                })
                .collect();
            Ok(Value::map(out))
        }),
        f("omit", &[Map], Some(String), |_, a| {
            let omit: Vec<std::string::String> = a[1..].iter().map(s).collect();
            let out: BTreeMap<_, _> = map_of(&a[0])
                .into_iter()
                .filter(|(k, _)| !omit.contains(k))
                .collect();
            Ok(Value::map(out))
        }),
        f("merge", &[Map], Some(Map), |_, a| merge(a, false)),
        f("mustMerge", &[Map], Some(Map), |_, a| merge(a, false)),
        f("mergeOverwrite", &[Map], Some(Map), |_, a| merge(a, true)),
        f("mustMergeOverwrite", &[Map], Some(Map), |_, a| {
            merge(a, true)
        }),
        f("dig", &[], Some(Any), |_, a| {
            if a.len() < 3 {
                return Err("dig needs at least three arguments".into());
            }
            let n = a.len();
            dig(&a[..n - 2], &a[n - 2], &a[n - 1])
        }),
        // semver
        f("semverCompare", &[String, String], None, |_, a| {
            crate::semver::compare(&s(&a[0]), &s(&a[1]))
                .map(Value::Bool)
                .map_err(FuncError::Msg)
        }),
        f("semver", &[String], None, |_, a| {
            crate::semver::version_value(&s(&a[0])).map_err(FuncError::Msg)
        }),
        // misc
        f("getHostByName", &[String], None, |_, _| vstr("")),
        f("urlquery", &[], Some(Any), |_, a| {
            vstr(ferroflux_gotemplate::query_escape(&sprint(&a)))
        }),
    ]
}

fn go_b64_error(e: &base64::DecodeError) -> std::string::String {
    match e {
        base64::DecodeError::InvalidByte(i, _) | base64::DecodeError::InvalidLastSymbol(i, _) => {
            format!("illegal base64 data at input byte {i}")
        }
        base64::DecodeError::InvalidLength(n) => format!("illegal base64 data at input byte {n}"),
        base64::DecodeError::InvalidPadding => "illegal base64 data at input byte 0".into(),
    }
}

/// Go's `strings.SplitN` (n < 0: all).
fn go_split(s: &str, sep: &str, n: i64) -> Vec<std::string::String> {
    if n == 0 {
        return Vec::new();
    }
    if sep.is_empty() {
        let mut v: Vec<std::string::String> = s.chars().map(|c| c.to_string()).collect();
        if n > 0 && v.len() > n as usize {
            let rest: std::string::String = v[n as usize - 1..].concat();
            v.truncate(n as usize - 1);
            v.push(rest);
        }
        return v;
    }
    if n < 0 {
        return s.split(sep).map(str::to_string).collect();
    }
    s.splitn(n as usize, sep).map(str::to_string).collect()
}

/// Go's `FindAllString(s, n)`.
fn regex_find_all(r: &regex::Regex, a: &[Value]) -> FuncResult {
    let text = s(&a[1]);
    let v = go_regex::find_all(r, &text, int_arg(&a[2]))
        .into_iter()
        .map(|(b, e)| text[b..e].to_string())
        .collect();
    Ok(str_list(v))
}

/// Go's `Split(s, n)`.
fn regex_split(r: &regex::Regex, a: &[Value]) -> FuncResult {
    Ok(str_list(go_regex::split(r, &s(&a[1]), int_arg(&a[2]))))
}

fn push(_: &mut dyn Env, a: Vec<Value>) -> FuncResult {
    let mut l = list_items(&a[0], "push")?;
    l.push(a[1].clone());
    Ok(Value::list(l))
}

fn uniq(_: &mut dyn Env, a: Vec<Value>) -> FuncResult {
    let l = list_items(&a[0], "find uniq")?;
    let mut out: Vec<Value> = Vec::new();
    for x in l {
        if !out.contains(&x) {
            out.push(x);
        }
    }
    Ok(Value::list(out))
}

fn has(_: &mut dyn Env, a: Vec<Value>) -> FuncResult {
    match &a[1] {
        Value::Nil | Value::NoValue => Ok(Value::Bool(false)),
        other => match slice_of(other) {
            Some(l) => Ok(Value::Bool(l.contains(&a[0]))),
            None => Err(format!("Cannot find has on type {}", kind_of(other)).into()),
        },
    }
}

fn sprig_slice(_: &mut dyn Env, a: Vec<Value>) -> FuncResult {
    let l = match slice_of(&a[0]) {
        Some(l) => l,
        None => {
            let other = &a[0];
            return Err(format!(
                "list should be type of slice or array but {}",
                kind_of(other)
            )
            .into());
        }
    };
    if l.is_empty() {
        return Ok(Value::Nil);
    }
    let start = a.get(1).map(to_int64).unwrap_or(0);
    let end = if a.len() < 3 {
        l.len() as i64
    } else {
        to_int64(&a[2])
    };
    if start < 0 || end < start || end as usize > l.len() {
        return Err("reflect.Value.Slice: slice index out of bounds".into());
    }
    Ok(Value::list(l[start as usize..end as usize].to_vec()))
}

fn merge(a: Vec<Value>, overwrite: bool) -> FuncResult {
    let Some(dst) = a[0].as_map() else {
        return Ok(a[0].clone());
    };
    for src in &a[1..] {
        let sm = map_of(src);
        merge_into(&dst, &sm, overwrite);
    }
    Ok(a[0].clone())
}

fn path_clean(p: &str) -> std::string::String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let j = parts.join("/");
    if rooted {
        format!("/{j}")
    } else if j.is_empty() {
        ".".into()
    } else {
        j
    }
}

fn path_base(p: &str) -> std::string::String {
    if p.is_empty() {
        return ".".into();
    }
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return "/".into();
    }
    t.rsplit('/').next().unwrap_or(t).to_string()
}

fn path_dir(p: &str) -> std::string::String {
    let dir = match p.rfind('/') {
        Some(i) => &p[..=i],
        None => "",
    };
    path_clean(dir)
}

fn path_ext(p: &str) -> std::string::String {
    let b = p.as_bytes();
    for i in (0..b.len()).rev() {
        if b[i] == b'/' {
            break;
        }
        if b[i] == b'.' {
            return p[i..].to_string();
        }
    }
    std::string::String::new()
}
