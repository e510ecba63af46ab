//! ferroflux-ssa against testenv (server-side apply with managedFields, dry-run, CRDs, RBAC,
//! workload simulator).

mod apply;
mod common;
mod corpus;
mod delete;
mod diff;
mod wait;
