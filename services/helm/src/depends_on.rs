//! `spec.dependsOn`: a HelmRelease waits until the HelmReleases it depends on are ready, by
//! upstream's rules (helm-controller `checkDependencies`): the dependency exists; its
//! `readyExpr` (CEL over `self` and `dep`) holds when one is given; and, without `readyExpr` or
//! with the `AdditiveCELDependencyCheck` gate, its latest generation is observed and Ready.

use std::collections::BTreeMap;

use ferroflux_api::HelmRelease;
use ferroflux_api::conditions as cond;
use ferroflux_runtime::cel::Expression;
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::Value;

/// Why the dependencies do not allow the release to proceed.
#[derive(Debug, PartialEq, Eq)]
pub enum DependencyError {
    /// A dependency is missing or not ready yet: retried at `--requeue-dependency`.
    NotReady(String),
    /// A `readyExpr` does not compile: terminal (InvalidCELExpression, Stalled).
    Terminal(String),
}

/// upstream's prefix of terminal errors on the Ready condition.
pub const TERMINAL_ERROR: &str = "Reconciliation failed terminally due to configuration error";

/// Checks every dependency of `obj`, in order; the first that is not ready is reported.
pub async fn check(
    obj: &HelmRelease,
    client: &Client,
    additive: bool,
) -> Result<(), DependencyError> {
    let own_ns = obj.namespace().unwrap_or_default();
    let self_value = serde_json::to_value(obj).unwrap_or(Value::Null);
    for dep in obj.spec.depends_on.iter().flatten() {
        let ns = dep
            .namespace
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| own_ns.clone());
        let id = format!("{ns}/{}", dep.name);
        let dep_obj = Api::<HelmRelease>::namespaced(client.clone(), &ns)
            .get(&dep.name)
            .await
            .map_err(|e| {
                let detail = match e {
                    kube::Error::Api(ae) if ae.code == 404 => {
                        format!(
                            "helmreleases.helm.toolkit.fluxcd.io \"{}\" not found",
                            dep.name
                        )
                    }
                    e => e.to_string(),
                };
                DependencyError::NotReady(format!("unable to get '{id}' dependency: {detail}"))
            })?;
        let expr = dep.ready_expr.as_deref().filter(|e| !e.is_empty());
        if let Some(expr) = expr {
            let compiled = Expression::new(expr).map_err(|e| {
                DependencyError::Terminal(format!(
                    "failed to evaluate dependency {}: {e}",
                    dep.name
                ))
            })?;
            let dep_value = serde_json::to_value(&dep_obj).unwrap_or(Value::Null);
            let vars = BTreeMap::from([("self", &self_value), ("dep", &dep_value)]);
            let ready = compiled
                .eval_bool(&vars)
                .map_err(DependencyError::NotReady)?;
            if !ready {
                return Err(DependencyError::NotReady(format!(
                    "dependency '{id}' is not ready according to readyExpr eval"
                )));
            }
            if !additive {
                continue;
            }
        }
        let status = dep_obj.status.clone().unwrap_or_default();
        let conditions = status.conditions.unwrap_or_default();
        if dep_obj.meta().generation != status.observed_generation
            || !cond::is_true(&conditions, cond::READY)
        {
            return Err(DependencyError::NotReady(format!(
                "dependency '{id}' is not ready"
            )));
        }
    }
    Ok(())
}
