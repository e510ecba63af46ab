//! Masterminds/semver for Helm (`semverCompare`, `kubeVersion`, dependency and index ranges)
//! lives in `ferroflux-semver`; this module adds Sprig's `semver` object.

use std::collections::BTreeMap;

pub use ferroflux_semver::{Constraints, Version, compare, is_compatible_range};

use ferroflux_gotemplate::Value;

/// Sprig `semver`: a version struct.
pub fn version_value(s: &str) -> Result<Value, String> {
    let v = Version::parse(s)?;
    let mut m = BTreeMap::new();
    m.insert("Major".into(), Value::Int64(v.major as i64));
    m.insert("Minor".into(), Value::Int64(v.minor as i64));
    m.insert("Patch".into(), Value::Int64(v.patch as i64));
    m.insert("Prerelease".into(), Value::str(v.pre.as_str()));
    m.insert("Metadata".into(), Value::str(v.meta.as_str()));
    m.insert("Original".into(), Value::str(v.original.as_str()));
    Ok(Value::map(m))
}
