//! ferroflux-sops against the real sops, age-keygen and gpg.

mod formats;
mod keys;
mod support;
