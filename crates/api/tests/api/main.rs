//! Integration tests of `ferroflux-api` against the upstream Flux 2.9 CRDs and real-world Flux
//! objects in `../shared/corpus`, plus the freshness check of `deploy/crds`.

mod crd_compat;
mod crds_current;
mod crds_oracle;
mod roundtrip;

use std::path::PathBuf;

/// The shared corpus, beside the checkout.
pub fn corpus() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpus"
    ))
}

/// Reads a YAML file into JSON, panicking with the file name on error.
pub fn read_yaml(path: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("cannot parse {}: {e}", path.display()))
}
