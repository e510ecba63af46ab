//! Go-like dynamic values as seen by text/template.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;

use crate::func::Func;

/// A mutable, shared `map[string]interface{}` (Go maps are reference types; Sprig's `set` mutates).
pub type MapRef = Rc<RefCell<BTreeMap<String, Value>>>;

/// A value flowing through a template.
///
/// The variants mirror the Go types that Helm charts meet: `interface{}` holding nil, `bool`,
/// `int`, `int64`, `uint64`, `float64`, `string`, `[]byte`, `[]interface{}`,
/// `map[string]interface{}`, structs with fields and methods ([`Object`]) and functions.
#[derive(Clone, Default)]
pub enum Value {
    /// Go's invalid `reflect.Value`: the result of a missing value; prints as `<no value>`.
    #[default]
    NoValue,
    /// A nil `interface{}`.
    Nil,
    Bool(bool),
    /// Go `int`.
    Int(i64),
    /// Go `int64`.
    Int64(i64),
    /// Go `uint64`.
    Uint(u64),
    /// Go `uint8` (a byte, as `index` of a string yields).
    Byte(u8),
    /// Go `float64`.
    Float(f64),
    String(Rc<str>),
    /// Go `[]byte`.
    Bytes(Rc<[u8]>),
    /// Go `[]interface{}` (or another slice type named by `elem`).
    List(Rc<Vec<Value>>),
    /// Go `map[string]interface{}`.
    Map(MapRef),
    /// A struct (or pointer to struct) with fields and methods.
    Object(Rc<dyn Object>),
    /// A function value.
    Func(Func),
}

/// A Go struct as seen by templates: named fields and methods.
pub trait Object {
    /// Go type name for messages and `%T`, e.g. `*chart.Metadata`.
    fn type_name(&self) -> String;
    /// A field's value, if the struct has that exported field.
    fn field(&self, name: &str) -> Option<Value>;
    /// [`Object::field`] for objects whose fields are computed on first use and can fail
    /// doing so (the error ends the execution); by default the field itself.
    fn try_field(&self, name: &str) -> Result<Option<Value>, crate::FuncError> {
        Ok(self.field(name))
    }
    /// A method bound to this receiver, if any.
    fn method(&self, _name: &str) -> Option<Func> {
        None
    }
    /// The `%v` rendering (e.g. `{a b}` or `&{a b}`).
    fn format(&self, plus: bool) -> String;
    /// Whether the object counts as a Go map for `len`, `range`, `index` (e.g. named map types).
    fn as_map(&self) -> Option<MapRef> {
        None
    }
    /// Whether the object counts as a Go slice (e.g. named slice types).
    fn as_list(&self) -> Option<Vec<Value>> {
        None
    }
    /// The text the object marshals to in JSON and YAML (Go's `MarshalJSON`/`MarshalText`,
    /// e.g. RFC 3339 for `time.Time`); `None` uses the `%v` rendering.
    fn marshal_text(&self) -> Option<String> {
        None
    }
    /// The value Go's `encoding/json` would see (a struct's exported fields as a map, a named
    /// slice type as a list), for `toJson`/`toYaml`; `None` marshals the text of
    /// [`Object::marshal_text`] or the `%v` rendering. Named slice types default to their list.
    fn marshal_value(&self) -> Option<Value> {
        self.as_list().map(Value::list)
    }
    /// Access to the concrete type, for functions that accept specific objects.
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }
    /// `len` of the object, when it has one.
    fn as_len(&self) -> Option<usize> {
        self.as_map()
            .map(|m| m.borrow().len())
            .or_else(|| self.as_list().map(|l| l.len()))
    }
}

impl Value {
    pub fn str(s: impl Into<Rc<str>>) -> Value {
        Value::String(s.into())
    }

    pub fn list(v: Vec<Value>) -> Value {
        Value::List(Rc::new(v))
    }

    pub fn map(m: BTreeMap<String, Value>) -> Value {
        Value::Map(Rc::new(RefCell::new(m)))
    }

    pub fn new_map() -> Value {
        Value::map(BTreeMap::new())
    }

    /// Go's `%T` type name.
    pub fn type_name(&self) -> String {
        match self {
            Value::NoValue | Value::Nil => "<nil>".into(),
            Value::Bool(_) => "bool".into(),
            Value::Int(_) => "int".into(),
            Value::Int64(_) => "int64".into(),
            Value::Uint(_) => "uint64".into(),
            Value::Byte(_) => "uint8".into(),
            Value::Float(_) => "float64".into(),
            Value::String(_) => "string".into(),
            Value::Bytes(_) => "[]uint8".into(),
            Value::List(_) => "[]interface {}".into(),
            Value::Map(_) => "map[string]interface {}".into(),
            Value::Object(o) => o.type_name(),
            Value::Func(f) => f.type_name(),
        }
    }

    /// Go's truth: not the zero value of its type. `None` when there is no meaningful truth.
    pub fn truth(&self) -> bool {
        match self {
            Value::NoValue | Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) | Value::Int64(i) => *i != 0,
            Value::Uint(u) => *u != 0,
            Value::Byte(u) => *u != 0,
            Value::Float(f) => *f != 0.0,
            Value::String(s) => !s.is_empty(),
            Value::Bytes(b) => !b.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.borrow().is_empty(),
            Value::Object(o) => match o.as_map() {
                Some(m) => !m.borrow().is_empty(),
                None => o.as_list().is_none_or(|l| !l.is_empty()),
            },
            Value::Func(_) => true,
        }
    }

    pub fn is_nil(&self) -> bool {
        matches!(self, Value::NoValue | Value::Nil)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The map behind a map value or a map-like object.
    pub fn as_map(&self) -> Option<MapRef> {
        match self {
            Value::Map(m) => Some(m.clone()),
            Value::Object(o) => o.as_map(),
            _ => None,
        }
    }

    /// Go's `fmt.Sprint(v)`.
    pub fn to_go_string(&self) -> String {
        crate::gofmt::sprint(std::slice::from_ref(self))
    }

    /// Deep copy of maps and lists (cycles are cut after 10000 levels).
    pub fn deep_copy(&self) -> Value {
        self.deep_copy_depth(0)
    }

    fn deep_copy_depth(&self, depth: usize) -> Value {
        if depth > 10_000 {
            return Value::Nil;
        }
        match self {
            Value::Map(m) => {
                let Ok(b) = m.try_borrow() else {
                    return Value::Nil;
                };
                let copied = b
                    .iter()
                    .map(|(k, v)| (k.clone(), v.deep_copy_depth(depth + 1)))
                    .collect();
                Value::map(copied)
            }
            Value::List(l) => Value::list(l.iter().map(|v| v.deep_copy_depth(depth + 1)).collect()),
            other => other.clone(),
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::NoValue => write!(f, "NoValue"),
            Value::Nil => write!(f, "Nil"),
            Value::String(s) => write!(f, "{s:?}"),
            other => write!(f, "{}({})", other.type_name(), other.to_go_string()),
        }
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::NoValue, Value::NoValue) | (Value::Nil, Value::Nil) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) | (Value::Int64(a), Value::Int64(b)) => a == b,
            (Value::Uint(a), Value::Uint(b)) => a == b,
            (Value::Byte(a), Value::Byte(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a == b,
            (Value::String(a), Value::String(b)) => a == b,
            (Value::Bytes(a), Value::Bytes(b)) => a == b,
            (Value::List(a), Value::List(b)) => a == b,
            (Value::Map(a), Value::Map(b)) => {
                Rc::ptr_eq(a, b)
                    || match (a.try_borrow(), b.try_borrow()) {
                        (Ok(x), Ok(y)) => *x == *y,
                        _ => false,
                    }
            }
            (Value::Object(a), Value::Object(b)) => Rc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.into())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s.into())
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Float(f)
    }
}

/// Go strings are byte strings; ours are UTF-8. A byte that is not part of valid UTF-8 is
/// kept as one character of this private-use range (U+10FE80..=U+10FEFF for bytes
/// 0x80..=0xFF), so that functions working on bytes (`len`, `b64enc`, hashes) see Go's bytes.
const RAW_BYTE_BASE: u32 = 0x10FE00;

/// Go's `string(b)`: the bytes as a string, invalid UTF-8 kept byte for byte (see
/// [`go_bytes`]).
pub fn string_from_go_bytes(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    let mut rest = b;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                return out;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(good).unwrap_or_default());
                let n = e.error_len().unwrap_or(bad.len()).max(1);
                for byte in &bad[..n] {
                    out.push(
                        char::from_u32(RAW_BYTE_BASE + u32::from(*byte)).unwrap_or('\u{FFFD}'),
                    );
                }
                rest = &bad[n..];
            }
        }
    }
}

/// Go's `[]byte(s)`: the bytes a string stands for (raw bytes kept by
/// [`string_from_go_bytes`] come back as themselves).
pub fn go_bytes(s: &str) -> std::borrow::Cow<'_, [u8]> {
    let raw = |c: char| (RAW_BYTE_BASE + 0x80..=RAW_BYTE_BASE + 0xFF).contains(&(c as u32));
    if !s.chars().any(raw) {
        return std::borrow::Cow::Borrowed(s.as_bytes());
    }
    let mut out = Vec::with_capacity(s.len());
    let mut buf = [0u8; 4];
    for c in s.chars() {
        if raw(c) {
            out.push((c as u32 - RAW_BYTE_BASE) as u8);
        } else {
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    std::borrow::Cow::Owned(out)
}
