//! What the workspace's tests share about their surroundings (a dev-dependency only):
//!
//! - [`corpus`]: the real-world corpus (kustomize overlays, Flux objects, upstream CRDs, public
//!   charts). It is found through `FERROFLUX_CORPUS`, or `../shared/corpus` beside the checkout
//!   when that exists. Every test that reads it has `corpus` in its name, so that
//!   `scripts/test` can leave exactly those out (and say so) on a machine without a corpus.
//! - [`tool`]: an external program a test runs (oracles such as `helm` and `sops`, servers such
//!   as `sshd`), found on `PATH` or where `scripts/get-oracles` installs; a missing one is a
//!   failure with a one-line hint, never a skip.
//! - [`registry`]: a real OCI registry (Debian's `docker-registry`) on 127.0.0.1.
//! - `webhooks` (feature `webhooks`): signed webhook requests, a test OIDC issuer, CDEvents.

pub mod registry;
#[cfg(feature = "webhooks")]
pub mod webhooks;

use std::path::{Path, PathBuf};

/// The environment variable naming the corpus directory.
pub const CORPUS_ENV: &str = "FERROFLUX_CORPUS";

/// Where `scripts/get-oracles` installs helm, helm3, sops and (when missing) kubectl.
pub fn oracle_dir() -> PathBuf {
    let home = std::env::var_os("HOME").unwrap_or_default();
    Path::new(&home).join(".cache/ferroflux-oracles/bin")
}

/// The repository root (this crate sits at `crates/testsupport`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where the corpus is looked for: `$FERROFLUX_CORPUS` when set, else `../shared/corpus`
/// beside the checkout. `Err` carries a one-line explanation when it is not a directory.
pub fn corpus_location() -> Result<PathBuf, String> {
    match std::env::var_os(CORPUS_ENV) {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_dir() {
                Ok(dir)
            } else {
                Err(format!("{CORPUS_ENV}={} is not a directory", dir.display()))
            }
        }
        _ => {
            let beside = repo_root().join("../shared/corpus");
            if beside.is_dir() {
                Ok(beside)
            } else {
                Err(format!(
                    "no corpus: {CORPUS_ENV} is unset and {} does not exist",
                    beside.display()
                ))
            }
        }
    }
}

/// The corpus directory, or a panic that says how to get one. Only tests with `corpus` in
/// their name may call this (see the crate docs).
pub fn corpus() -> PathBuf {
    corpus_location().unwrap_or_else(|why| {
        panic!(
            "this test reads the real-world corpus ({why}); set {CORPUS_ENV} to a corpus \
             directory (kustomize/, flux-objects/, upstream-crds/, charts/), or run scripts/test, \
             which leaves the corpus tests out when there is none"
        )
    })
}

/// Finds `name` on `PATH`, then in [`oracle_dir`]; panics with `hint` (one line saying how to
/// install it) when it is missing.
pub fn tool(name: &str, hint: &str) -> PathBuf {
    find_tool(name).unwrap_or_else(|| {
        panic!(
            "`{name}` not found on PATH or in {}: {hint} (scripts/test installs every tool the \
             tests need)",
            oracle_dir().display()
        )
    })
}

/// Like [`tool`], without the panic.
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([oracle_dir()])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The hint for the oracles that `scripts/get-oracles` installs.
pub const ORACLES_HINT: &str = "run scripts/get-oracles (helm v4, helm3, sops; kubectl with \
                                kustomize v5.5 when missing) and put the directory it prints \
                                on PATH";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_tool_on_path_and_reports_a_missing_one() {
        assert!(find_tool("sh").is_some(), "sh is on every PATH");
        assert!(find_tool("no-such-tool-ferroflux").is_none());
        let err = std::panic::catch_unwind(|| tool("no-such-tool-ferroflux", "get it somewhere"))
            .expect_err("a missing tool panics");
        let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.contains("get it somewhere"), "{msg}");
        assert!(msg.contains("scripts/test"), "{msg}");
    }
}
