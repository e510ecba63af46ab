//! Link the `ferroflux` binary as a position-dependent executable on Linux.
//!
//! The CLI links all four controllers, so as a PIE it carries ~100,000 relative relocations that
//! the dynamic loader applies at every start (reading 2.4 MB of them and writing 1.5 MB of
//! `.data.rel.ro`): 3-5 ms of each `ferroflux helm template` / `kustomize build`, which run for
//! 10-30 ms in all. Without `-pie` the linker resolves them once. The shipped controllers are
//! their own binaries (deploy/docker/Dockerfile) and keep the default.

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if os == "linux" && env == "gnu" {
        println!("cargo:rustc-link-arg-bin=ferroflux=-no-pie");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
