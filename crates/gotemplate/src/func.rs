//! Template functions: Go-typed signatures and Rust implementations.

use std::fmt;
use std::rc::Rc;

use crate::error::Error;
use crate::value::Value;

/// The Go type of a function parameter; decides how arguments are checked and converted, as
/// text/template's `evalArg` and `validateType` do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param {
    /// `interface{}`.
    Any,
    /// `reflect.Value`: the raw argument, missing values included (builtins like `index`).
    Raw,
    String,
    Int,
    Int64,
    Uint64,
    /// `uint32`: only constants reach it (no template value has this type).
    Uint32,
    Float64,
    Bool,
    /// `map[string]interface{}`.
    Map,
    /// `[]interface{}`.
    List,
    /// `[]byte`.
    Bytes,
    /// A named struct type (an [`crate::Object`] whose `type_name` is this).
    Object(&'static str),
}

impl Param {
    pub fn go_name(self) -> &'static str {
        match self {
            Param::Any => "interface {}",
            Param::Raw => "reflect.Value",
            Param::String => "string",
            Param::Int => "int",
            Param::Int64 => "int64",
            Param::Uint64 => "uint64",
            Param::Uint32 => "uint32",
            Param::Float64 => "float64",
            Param::Bool => "bool",
            Param::Map => "map[string]interface {}",
            Param::List => "[]interface {}",
            Param::Bytes => "[]uint8",
            Param::Object(name) => name,
        }
    }

    pub fn can_be_nil(self) -> bool {
        matches!(
            self,
            Param::Any | Param::Raw | Param::Map | Param::List | Param::Bytes
        )
    }

    /// Whether a (non-nil, unwrapped) value is assignable to this parameter type.
    pub fn accepts(self, v: &Value) -> bool {
        match self {
            Param::Any | Param::Raw => true,
            Param::String => matches!(v, Value::String(_)),
            Param::Int => matches!(v, Value::Int(_)),
            Param::Int64 => matches!(v, Value::Int64(_)),
            Param::Uint64 => matches!(v, Value::Uint(_)),
            Param::Uint32 => false,
            Param::Float64 => matches!(v, Value::Float(_)),
            Param::Bool => matches!(v, Value::Bool(_)),
            Param::Map => v.as_map().is_some(),
            Param::List => matches!(v, Value::List(_)),
            Param::Bytes => matches!(v, Value::Bytes(_)),
            Param::Object(name) => matches!(v, Value::Object(o) if o.type_name() == name),
        }
    }
}

/// What a function may ask of the running template (for `include`, `tpl`, ...).
pub trait Env {
    /// Execute the named template of the current set with `data` as dot; returns its output.
    fn execute_template(&mut self, name: &str, data: Value) -> Result<String, Error>;
    /// Parse `text` as a new template named `name` into a copy of the current set and execute
    /// it with `data` (Helm's `tpl`). Templates the text defines are visible to it only.
    fn execute_text(&mut self, name: &str, text: &str, data: Value) -> Result<String, Error>;
    /// Name of the template being executed.
    fn current_template(&self) -> String;
}

/// The error a function returns; reported by the executor as `error calling NAME: MSG`.
#[derive(Debug, Clone)]
pub enum FuncError {
    /// A plain message.
    Msg(String),
    /// An error from a nested template execution (kept whole for callers that unwrap it).
    Exec(Box<Error>),
}

impl fmt::Display for FuncError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FuncError::Msg(m) => f.write_str(m),
            FuncError::Exec(e) => write!(f, "{e}"),
        }
    }
}

impl From<String> for FuncError {
    fn from(s: String) -> Self {
        FuncError::Msg(s)
    }
}

impl From<&str> for FuncError {
    fn from(s: &str) -> Self {
        FuncError::Msg(s.to_string())
    }
}

impl From<Error> for FuncError {
    fn from(e: Error) -> Self {
        FuncError::Exec(Box::new(e))
    }
}

pub type FuncResult = Result<Value, FuncError>;

type Imp = dyn Fn(&mut dyn Env, Vec<Value>) -> FuncResult;

struct FuncDef {
    name: String,
    params: Vec<Param>,
    variadic: Option<Param>,
    imp: Box<Imp>,
}

/// A function value with a Go signature.
#[derive(Clone)]
pub struct Func(Rc<FuncDef>);

impl Func {
    /// A function with fixed parameters and an optional variadic tail.
    pub fn new(
        name: &str,
        params: &[Param],
        variadic: Option<Param>,
        imp: impl Fn(&mut dyn Env, Vec<Value>) -> FuncResult + 'static,
    ) -> Func {
        Func(Rc::new(FuncDef {
            name: name.to_string(),
            params: params.to_vec(),
            variadic,
            imp: Box::new(imp),
        }))
    }

    pub fn name(&self) -> &str {
        &self.0.name
    }

    pub fn params(&self) -> &[Param] {
        &self.0.params
    }

    pub fn variadic(&self) -> Option<Param> {
        self.0.variadic
    }

    pub fn call(&self, env: &mut dyn Env, args: Vec<Value>) -> FuncResult {
        (self.0.imp)(env, args)
    }

    /// Go's type string, e.g. `func(string, ...interface {}) interface {}`.
    pub fn type_name(&self) -> String {
        let mut parts: Vec<String> = self.0.params.iter().map(|p| p.go_name().into()).collect();
        if let Some(v) = self.0.variadic {
            parts.push(format!("...{}", v.go_name()));
        }
        format!("func({})", parts.join(", "))
    }
}

impl fmt::Debug for Func {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Func({})", self.0.name)
    }
}
