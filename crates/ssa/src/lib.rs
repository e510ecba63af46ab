//! ferroflux-ssa: server-side apply of sets of Kubernetes objects, the Rust counterpart of
//! fluxcd/pkg/ssa that kustomize-controller builds on.
//!
//! - [`ResourceManager::apply_all_staged`]: CRDs, Namespaces and ClusterRoles first (then wait
//!   for them), `*Class` kinds next (then wait), custom stage kinds, then the rest; each object
//!   is dry-run applied, compared with the live object, and applied only when new or drifted.
//! - [`ResourceManager::delete_all`]: prune, honouring owner labels and exclusions.
//! - [`ResourceManager::wait_for_set`]: kstatus polling with fail-fast and timeouts.
//!
//! Objects are `serde_json::Value`s (what the kustomize engine produces); errors are worded
//! as upstream's, since they end up in Kustomization status messages.

mod apply;
mod changeset;
mod delete;
mod diff;
pub mod discovery;
mod error;
mod ignore;
mod manager;
pub mod normalize;
mod object;
mod wait;

pub use apply::ApplyOptions;
pub use changeset::{Action, ChangeSet, ChangeSetEntry};
pub use delete::{DeleteOptions, Propagation};
pub use diff::{DiffResult, sanitize_secret_data};
pub use error::SsaError;
pub use ignore::{IgnoreRule, Selector};
pub use manager::{ApplyCleanup, FieldManager, ManagedFieldsOperation, Owner, ResourceManager};
pub use object::{
    ObjMetadata, annotations, any_in_metadata, is_class_definition, is_cluster_definition, is_crd,
    is_namespace, jobs_with_ttl, labels,
};
pub use wait::{CustomStatus, ObjectStatus, WaitOptions, WaitStatus};

/// Re-exported so callers can build [`WaitOptions::cancel`] without naming tokio-util.
pub use tokio_util::sync::CancellationToken;
