//! Flux API types for ferroflux: every Flux kind at the version Flux 2.9 serves, with serde and
//! schemars derives, plus the shared pieces (artifacts, conditions, references, durations,
//! well-known annotations) and the generator of the CustomResourceDefinitions in `deploy/crds`.
//!
//! This crate does no I/O: it is the equivalent of kube-core for the project.

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
pub use object::FluxObject;
pub use ocirepository::OCIRepository;
pub use provider::Provider;
pub use receiver::Receiver;
