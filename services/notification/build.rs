//! Link option for the optimised `notification-controller` binary (not for tests or benches):
//! packed relative relocations (DT_RELR, glibc >= 2.36), so the dynamic loader no longer reads
//! the whole `.rela.dyn` at start, pages that stayed resident (see services/source/README.md,
//! "Idle memory").

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let optimised = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    if optimised && linux {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
