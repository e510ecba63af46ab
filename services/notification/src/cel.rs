//! CEL expressions of notification-controller: Receiver `resourceFilter` / `resources[].filter`
//! (variables `res`, `req`) and Provider `commitStatusExpr` (variables `event`, `provider`,
//! `alert`).

use cel::{Context, Program, Value as CelValue};
use serde_json::Value;

/// A parsed expression and its text.
pub struct Expression {
    source: String,
    program: Program,
}

impl Expression {
    /// Parses `source`.
    pub fn new(source: &str) -> Result<Self, String> {
        let program = Program::compile(source).map_err(|e| {
            format!(
                "failed to parse the CEL expression '{source}': {}",
                e.to_string().replace('\n', " ")
            )
        })?;
        Ok(Self {
            source: source.to_string(),
            program,
        })
    }

    fn run(&self, vars: &[(&str, &Value)]) -> Result<CelValue, String> {
        let mut ctx = Context::default();
        for (name, value) in vars {
            ctx.add_variable(*name, *value).map_err(|e| {
                format!(
                    "failed to evaluate the CEL expression '{}': {e}",
                    self.source
                )
            })?;
        }
        self.program.execute(&ctx).map_err(|e| {
            format!(
                "failed to evaluate the CEL expression '{}': {e}",
                self.source
            )
        })
    }

    /// Evaluates to a boolean.
    pub fn eval_bool(&self, vars: &[(&str, &Value)]) -> Result<bool, String> {
        match self.run(vars)? {
            CelValue::Bool(b) => Ok(b),
            _ => Err(format!(
                "failed to evaluate CEL expression as boolean: '{}'",
                self.source
            )),
        }
    }

    /// Evaluates to a JSON value (OIDC claim variables).
    pub fn eval_json(&self, vars: &[(&str, &Value)]) -> Result<Value, String> {
        to_json(&self.run(vars)?).ok_or_else(|| {
            format!(
                "failed to evaluate the CEL expression '{}': result is not a JSON value",
                self.source
            )
        })
    }

    /// Evaluates to a string.
    pub fn eval_string(&self, vars: &[(&str, &Value)]) -> Result<String, String> {
        match self.run(vars)? {
            CelValue::String(s) => Ok(s.as_ref().clone()),
            _ => Err(format!(
                "failed to evaluate CEL expression as string: '{}'",
                self.source
            )),
        }
    }
}

/// A CEL value as JSON (lists, maps, scalars; bytes as base64), `None` for functions and the
/// like.
fn to_json(v: &CelValue) -> Option<Value> {
    use base64::Engine;
    Some(match v {
        CelValue::List(l) => Value::Array(l.iter().map(to_json).collect::<Option<Vec<_>>>()?),
        CelValue::Map(m) => {
            let mut obj = serde_json::Map::new();
            for (k, v) in m.map.iter() {
                obj.insert(k.to_string(), to_json(v)?);
            }
            Value::Object(obj)
        }
        CelValue::Int(i) => (*i).into(),
        CelValue::UInt(u) => (*u).into(),
        CelValue::Float(f) => (*f).into(),
        CelValue::String(s) => s.to_string().into(),
        CelValue::Bool(b) => (*b).into(),
        CelValue::Bytes(b) => base64::engine::general_purpose::STANDARD
            .encode(b.as_slice())
            .into(),
        CelValue::Null => Value::Null,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_and_strings() {
        let res = serde_json::json!({"metadata": {"name": "app", "labels": {"team": "a"}}});
        let req = serde_json::json!({"ref": "refs/heads/main"});
        let e = Expression::new("res.metadata.labels.team == 'a' && req.ref.endsWith('/main')")
            .unwrap();
        assert!(e.eval_bool(&[("res", &res), ("req", &req)]).unwrap());
        let s = Expression::new("res.metadata.name + '/x'").unwrap();
        assert_eq!(s.eval_string(&[("res", &res)]).unwrap(), "app/x");
        assert!(s.eval_bool(&[("res", &res)]).is_err());
        assert!(Expression::new("res.metadata.(").is_err());
    }
}
