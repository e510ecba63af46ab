//! A Go `text/template` engine: lexer, parser, executor, Go's `fmt` and the predefined
//! functions, reproducing Go's output and error messages (as Helm charts need them).
//!
//! ```
//! use ferroflux_gotemplate::{Templates, Value};
//! let mut t = Templates::new("x");
//! t.parse("x", "{{ range $i, $v := . }}{{ $i }}={{ $v }} {{ end }}").unwrap();
//! let data = Value::list(vec![Value::Float(1e6), Value::str("a")]);
//! assert_eq!(t.execute("x", &data).unwrap(), "0=1e+06 1=a ");
//! ```

mod builtins;
mod error;
mod exec;
mod func;
pub mod gofmt;
mod lex;
#[cfg(feature = "test-support")]
#[doc(hidden)]
pub mod oracle;
mod parse;
#[cfg(test)]
mod robust_tests;
mod value;

pub use builtins::{html_escape, js_escape, query_escape};
pub use error::{Error, ExecError};
pub use exec::{MissingKey, Options, Templates};
pub use func::{Env, Func, FuncError, FuncResult, Param};
pub use value::{MapRef, Object, Value, go_bytes, string_from_go_bytes};
