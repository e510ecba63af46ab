//! Helm releases as Helm v4 stores them, so the real `helm` CLI reads what ferroflux writes
//! and ferroflux reads what `helm install` wrote: the release record ([`Release`], written as
//! Go's `encoding/json` writes it), the `secret`/`configmap` storage encoding ([`storage`]),
//! and rendering a chart into a release's manifest, hooks and notes ([`render_release`]).
//!
//! No I/O beyond reading the chart: talking to the cluster is the caller's.

mod build;
mod model;
pub mod storage;
mod values;

pub use build::{ReleaseOptions, Rendered, chart_record, render_release};
pub use model::{
    ChartRecord, Dependency, File, Hook, HookExecution, Info, Lock, Maintainer, Metadata, Release,
    ZERO_TIME, format_time, go_json_value, is_zero_time, status,
};
pub use values::{merge, set_path, values_from_yaml, values_yaml};
