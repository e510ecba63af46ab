//! Flux API types for ferroflux: every Flux kind at the version Flux 2.9 serves, with serde and
//! schemars derives, plus the shared pieces (artifacts, conditions, references, durations,
//! well-known annotations) and the generator of the CustomResourceDefinitions in `deploy/crds`.
//!
//! This crate does no I/O: it is the equivalent of kube-core for the project.
//!
//! # Conventions
//!
//! - Field for field the Go types of Flux: camelCase JSON, the same defaults, enums, patterns,
//!   bounds and CEL rules in the schema. `deploy/crds` is generated from these types
//!   (`cargo run -p ferroflux-api --bin gen-crds`, see [`crdgen`]).
//! - Every optional field is an `Option` that is skipped when `None`, so reading an object and
//!   writing it back keeps it as it was (an explicit `suspend: false` stays, an absent one stays
//!   absent). Durations keep the user's text ([`Duration`]).
//! - The fields a CRD requires at the top of `spec` (and in the HelmRelease chart template) are
//!   still `Option` in Rust and marked required only in the schema: manifests are often
//!   completed by kustomize patches, and `flux build` style tooling reads such partial files.
//!   Fields required inside nested objects (reference names, ...) are plain values.
//! - `kind` fields of references read unknown kinds as `Other(..)` instead of failing (see
//!   [`refs`]), because clusters extend those CRD enums and one undecodable object would break
//!   a controller's watch.
//! - Status structs default to `observedGeneration: -1`, like the CRD default. Alert and
//!   Provider have no status.

pub mod alert;
pub mod annotations;
pub mod artifact;
pub mod bucket;
pub mod conditions;
pub mod crdgen;
pub mod duration;
pub mod externalartifact;
pub mod gitrepository;
pub mod helmchart;
pub mod helmrelease;
pub mod helmrepository;
pub mod kustomization;
pub mod kustomize;
pub mod object;
pub mod ocirepository;
pub mod provider;
pub mod receiver;
pub mod refs;
pub mod schema;
pub mod versions;

pub use alert::Alert;
pub use artifact::Artifact;
pub use bucket::Bucket;
pub use duration::Duration;
pub use externalartifact::ExternalArtifact;
pub use gitrepository::GitRepository;
pub use helmchart::HelmChart;
pub use helmrelease::HelmRelease;
pub use helmrepository::HelmRepository;
pub use kustomization::Kustomization;
pub use object::{FluxObject, Source};
pub use ocirepository::OCIRepository;
pub use provider::Provider;
pub use receiver::Receiver;
