//! CEL expressions shared by the controllers: `spec.healthCheckExprs` (custom health of a kind)
//! and `spec.dependsOn[].readyExpr` of Kustomizations and HelmReleases.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::kstatus::{Computed, Status};
use cel::{Context, Program, Value as CelValue};
use ferroflux_api::kustomize::CustomHealthCheck;
use serde_json::Value;

/// A compiled expression and its source text.
pub struct Expression {
    source: String,
    program: Program,
}

impl Expression {
    /// Parses `source`; the error reads like upstream's.
    pub fn new(source: &str) -> Result<Self, String> {
        let program = Program::compile(source).map_err(|e| {
            let detail = e.to_string().replace('\n', " ");
            format!("failed to parse the CEL expression '{source}': {detail}")
        })?;
        Ok(Self {
            source: source.to_string(),
            program,
        })
    }

    /// Evaluates with `vars` as top-level variables; the result must be a boolean.
    pub fn eval_bool(&self, vars: &BTreeMap<&str, &Value>) -> Result<bool, String> {
        let mut ctx = Context::default();
        for (name, value) in vars {
            ctx.add_variable(*name, *value).map_err(|e| {
                format!(
                    "failed to evaluate the CEL expression '{}': {e}",
                    self.source
                )
            })?;
        }
        match self.program.execute(&ctx) {
            Ok(CelValue::Bool(b)) => Ok(b),
            Ok(_) => Err(format!(
                "failed to evaluate CEL expression as boolean: '{}'",
                self.source
            )),
            Err(e) => Err(format!(
                "failed to evaluate the CEL expression '{}': {e}",
                self.source
            )),
        }
    }
}

struct Evaluator {
    current: Expression,
    failed: Option<Expression>,
    in_progress: Option<Expression>,
}

/// The custom health checks of one Kustomization, by API group and kind (an empty kind covers
/// the whole group).
#[derive(Clone, Default)]
pub struct HealthExprs {
    by_group_kind: Arc<BTreeMap<(String, String), Evaluator>>,
}

fn group_of(api_version: &str) -> &str {
    match api_version.split_once('/') {
        Some((g, _)) => g,
        None => "",
    }
}

impl std::fmt::Debug for HealthExprs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.by_group_kind.keys()).finish()
    }
}

impl HealthExprs {
    /// Compiles `spec.healthCheckExprs`; errors are terminal (InvalidCELExpression).
    pub fn compile(checks: &[CustomHealthCheck]) -> Result<Self, String> {
        let mut map = BTreeMap::new();
        for (i, hc) in checks.iter().enumerate() {
            let key = (
                group_of(&hc.api_version).to_string(),
                hc.kind.clone().unwrap_or_default(),
            );
            if map.contains_key(&key) {
                let gk = if key.0.is_empty() {
                    key.1.clone()
                } else {
                    format!("{}.{}", key.1, key.0)
                };
                return Err(format!(
                    "duplicate custom health check for GroupKind {gk} at healthchecks[{i}]"
                ));
            }
            let wrap = |what: &str, e: String| {
                format!(
                    "failed to create custom status evaluator for healthchecks[{i}]: failed to parse the expression {what}: {e}"
                )
            };
            if hc.current.is_empty() {
                return Err(format!(
                    "failed to create custom status evaluator for healthchecks[{i}]: expression Current not specified"
                ));
            }
            let current = Expression::new(&hc.current).map_err(|e| wrap("Current", e))?;
            let failed = match hc.failed.as_deref().filter(|s| !s.is_empty()) {
                Some(src) => Some(Expression::new(src).map_err(|e| wrap("Failed", e))?),
                None => None,
            };
            let in_progress = match hc.in_progress.as_deref().filter(|s| !s.is_empty()) {
                Some(src) => Some(Expression::new(src).map_err(|e| wrap("InProgress", e))?),
                None => None,
            };
            map.insert(
                key,
                Evaluator {
                    current,
                    failed,
                    in_progress,
                },
            );
        }
        Ok(Self {
            by_group_kind: Arc::new(map),
        })
    }

    /// Whether no custom check is configured.
    pub fn is_empty(&self) -> bool {
        self.by_group_kind.is_empty()
    }

    /// The status of `obj` by its custom expressions, or `None` when none covers its kind.
    pub fn status_of(&self, obj: &Value) -> Option<Computed> {
        let api_version = obj.get("apiVersion").and_then(Value::as_str)?;
        let kind = obj.get("kind").and_then(Value::as_str)?;
        let group = group_of(api_version).to_string();
        let eval = self
            .by_group_kind
            .get(&(group.clone(), kind.to_string()))
            .or_else(|| self.by_group_kind.get(&(group, String::new())))?;
        let observed = obj
            .pointer("/status/observedGeneration")
            .and_then(Value::as_i64);
        let generation = obj.pointer("/metadata/generation").and_then(Value::as_i64);
        if let (Some(o), Some(g)) = (observed, generation)
            && o != g
        {
            return Some(Computed {
                status: Status::InProgress,
                message: format!("observedGeneration {o} does not match generation {g}"),
            });
        }
        let empty = serde_json::Map::new();
        let fields = obj.as_object().unwrap_or(&empty);
        let vars: BTreeMap<&str, &Value> = fields.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let steps = [
            (eval.in_progress.as_ref(), Status::InProgress),
            (eval.failed.as_ref(), Status::Failed),
            (Some(&eval.current), Status::Current),
        ];
        for (expr, status) in steps {
            let Some(expr) = expr else { continue };
            match expr.eval_bool(&vars) {
                Ok(true) => {
                    return Some(Computed {
                        status,
                        message: format!("custom health check '{}' matched", expr.source),
                    });
                }
                Ok(false) => {}
                Err(e) => {
                    return Some(Computed {
                        status: Status::InProgress,
                        message: e,
                    });
                }
            }
        }
        Some(Computed {
            status: Status::InProgress,
            message: "custom health checks not yet satisfied".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(kind: &str, current: &str, failed: Option<&str>) -> CustomHealthCheck {
        serde_json::from_value(json!({
            "apiVersion": "example.com/v1", "kind": kind, "current": current, "failed": failed,
        }))
        .unwrap()
    }

    #[test]
    fn custom_status_by_expressions() {
        let exprs = HealthExprs::compile(&[check(
            "Widget",
            "status.conditions.filter(e, e.type == 'Ready').all(e, e.status == 'True')",
            Some("status.conditions.exists(e, e.type == 'Ready' && e.status == 'False')"),
        )])
        .unwrap();
        let obj = |status: &str| {
            json!({"apiVersion": "example.com/v1", "kind": "Widget",
                   "metadata": {"name": "w", "generation": 1},
                   "status": {"observedGeneration": 1,
                              "conditions": [{"type": "Ready", "status": status}]}})
        };
        assert_eq!(
            exprs.status_of(&obj("True")).unwrap().status,
            Status::Current
        );
        assert_eq!(
            exprs.status_of(&obj("False")).unwrap().status,
            Status::Failed
        );
        assert_eq!(
            exprs.status_of(&obj("Unknown")).unwrap().status,
            Status::InProgress
        );
        let other = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        assert!(exprs.status_of(&other).is_none());
        let no_status = json!({"apiVersion": "example.com/v1", "kind": "Widget",
                               "metadata": {"name": "w"}});
        assert_eq!(
            exprs.status_of(&no_status).unwrap().status,
            Status::InProgress,
            "a missing field is not yet healthy"
        );
    }

    #[test]
    fn invalid_and_duplicate_expressions_are_refused() {
        let err = HealthExprs::compile(&[check("Widget", "status.(", None)]).unwrap_err();
        assert!(
            err.starts_with("failed to create custom status evaluator for healthchecks[0]"),
            "{err}"
        );
        let err =
            HealthExprs::compile(&[check("Widget", "true", None), check("Widget", "true", None)])
                .unwrap_err();
        assert!(err.contains("duplicate custom health check"), "{err}");
    }

    #[test]
    fn ready_expressions_see_self_and_dep() {
        let e =
            Expression::new("dep.status.lastAppliedRevision == self.status.lastAppliedRevision")
                .unwrap();
        let a = json!({"status": {"lastAppliedRevision": "r1"}});
        let b = json!({"status": {"lastAppliedRevision": "r1"}});
        let vars = BTreeMap::from([("self", &a), ("dep", &b)]);
        assert!(e.eval_bool(&vars).unwrap());
        let not_bool = Expression::new("'x'").unwrap();
        assert!(
            not_bool
                .eval_bool(&vars)
                .unwrap_err()
                .contains("as boolean")
        );
    }
}
