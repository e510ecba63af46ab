//! CEL expressions of a Kustomization (`spec.healthCheckExprs`, `spec.dependsOn[].readyExpr`):
//! the shared evaluator of `ferroflux_runtime::cel`.

pub use ferroflux_runtime::cel::{Expression, HealthExprs};
