//! Oracle tests: our build compared with `kubectl kustomize` run by the test.

mod corpus;
mod differential;
mod fixtures;
mod oracle;
mod robustness;
