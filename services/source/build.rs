//! Link option for the optimised `source-controller` binary (not for tests or benches): packed
//! relative relocations (DT_RELR, glibc >= 2.36, lld or binutils >= 2.38), so the dynamic loader
//! no longer reads ~0.8 MB of `.rela.dyn` at start, pages that stayed resident. See README.md,
//! "Idle memory".

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let optimised = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    if optimised && linux {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
