//! ferroflux-sops against the real sops, age-keygen and gpg.

mod corpus;
mod errors;
mod formats;
mod keys;
mod kustomize;
mod support;
