//! Oracle tests: our build compared with `kubectl kustomize` run by the test.

mod corpus;
mod fixtures;
mod oracle;
mod robustness;
