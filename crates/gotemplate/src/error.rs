//! Errors shaped like Go's text/template messages.

use crate::gofmt::quote;

/// A parse or execution error. `Display` gives Go's exact text.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// `template: NAME:LINE: MSG`
    #[error("template: {name}:{line}: {msg}")]
    Parse {
        name: String,
        line: usize,
        msg: String,
    },
    /// `template: NAME:LINE:COL: executing "TMPL" at <CONTEXT>: MSG`
    #[error("{}", format_exec(.0))]
    Exec(Box<ExecError>),
    /// `template: no template "NAME" associated with template "PARENT"`
    #[error("template: no template {} associated with template {}", quote(.name), quote(.parent))]
    NoTemplate { name: String, parent: String },
    /// A limit of this engine (output size, recursion) was exceeded.
    #[error("template: {0}")]
    Limit(String),
}

/// Details of an execution error.
#[derive(Debug, Clone)]
pub struct ExecError {
    /// The template being executed (`s.tmpl.Name()`).
    pub template: String,
    /// `PARSENAME:LINE:COL`, or `None` when no node was current.
    pub location: Option<String>,
    /// The source form of the node being evaluated.
    pub context: String,
    /// The message after the context.
    pub msg: String,
    /// For `error calling F: ...`: the function name and its own error.
    pub call: Option<(String, Box<crate::func::FuncError>)>,
}

fn format_exec(e: &ExecError) -> String {
    match &e.location {
        Some(loc) => format!(
            "template: {}: executing {} at <{}>: {}",
            loc,
            quote(&e.template),
            e.context,
            e.msg
        ),
        None => format!("template: {}: {}", e.template, e.msg),
    }
}

impl Error {
    pub(crate) fn parse(name: &str, line: usize, msg: impl Into<String>) -> Error {
        Error::Parse {
            name: name.to_string(),
            line,
            msg: msg.into(),
        }
    }

    /// The execution details, if this is an execution error.
    pub fn exec(&self) -> Option<&ExecError> {
        match self {
            Error::Exec(e) => Some(e),
            _ => None,
        }
    }
}
