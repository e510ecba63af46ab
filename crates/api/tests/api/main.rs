//! Integration tests of `ferroflux-api` against the upstream Flux 2.9 CRDs and real-world Flux
//! objects in the real-world corpus (`FERROFLUX_CORPUS`), plus the freshness check of `deploy/crds`.

mod crd_compat;
mod crds_current;
mod crds_oracle;
mod roundtrip;

use std::path::PathBuf;

/// The real-world corpus (`FERROFLUX_CORPUS`, or ../shared/corpus beside the checkout); only
/// tests with `corpus` in their name read it.
pub fn corpus() -> PathBuf {
    ferroflux_testsupport::corpus()
}

/// Reads a YAML file into JSON, panicking with the file name on error.
pub fn read_yaml(path: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("cannot parse {}: {e}", path.display()))
}
