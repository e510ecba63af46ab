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
