//! gRPC contracts shared by the ferroflux services (see `proto/ferroflux/v1`).
//!
//! - `ArtifactEvents`: source-controller streams every new artifact, resumable by sequence number.
//! - `EventSink`: every controller sends its events to the notification service.
//! - `Readiness`: each applier streams the readiness of its own objects.

/// Generated code for package `ferroflux.v1`.
pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("ferroflux.v1");
}

pub use v1::*;
