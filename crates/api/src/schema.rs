//! Hand-written schema fragments for fields whose Rust type does not say enough.

use schemars::{Schema, SchemaGenerator, json_schema};

/// Pattern of a Go duration with units up to hours (`interval`, `retryInterval`, ...).
pub const DURATION_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$";
/// Pattern of a Go duration limited to minutes (source and Provider `timeout`).
pub const SHORT_DURATION_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ms|s|m))+$";

/// A Go `int` on the wire: an integer without a declared width.
pub fn integer(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "integer" })
}

/// Free-form JSON (Go `apiextensionsv1.JSON`): anything goes and is kept as is.
pub fn preserve_unknown_fields(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "x-kubernetes-preserve-unknown-fields": true })
}
