//! The resource manager: a kube client, the field manager identity, the apply concurrency, the
//! managed-fields cleanup and a discovery cache.

use std::collections::BTreeMap;

use kube::Client;
use kube::api::{Api, DynamicObject};
use serde_json::Value;

use crate::discovery::{DiscoveryCache, Resolved};
use crate::{ObjMetadata, SsaError};

/// Who applies: the field manager of every apply, and the prefix of the owner labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    /// Field manager name, e.g. `kustomize-controller`.
    pub field_manager: String,
    /// Owner label prefix, e.g. `kustomize.toolkit.fluxcd.io`.
    pub group: String,
}

impl Owner {
    /// kustomize-controller's identity.
    pub fn kustomize_controller() -> Self {
        Owner {
            field_manager: "kustomize-controller".into(),
            group: "kustomize.toolkit.fluxcd.io".into(),
        }
    }
}

/// The operation of a managedFields entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManagedFieldsOperation {
    Apply,
    Update,
}

impl ManagedFieldsOperation {
    pub fn as_str(self) -> &'static str {
        match self {
            ManagedFieldsOperation::Apply => "Apply",
            ManagedFieldsOperation::Update => "Update",
        }
    }
}

/// A field manager whose managedFields entries are taken over by the owner before applying.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldManager {
    /// Manager name; a prefix unless `exact_match`.
    pub name: String,
    pub exact_match: bool,
    pub operation: ManagedFieldsOperation,
}

impl FieldManager {
    /// A prefix-matched manager.
    pub fn prefix(name: &str, operation: ManagedFieldsOperation) -> Self {
        FieldManager {
            name: name.into(),
            exact_match: false,
            operation,
        }
    }
}

/// What to remove from live objects before applying (upstream `ApplyCleanupOptions`).
///
/// The managedFields entries of `field_managers` are merged into the owner's `Apply` entry (the
/// first one renamed when the owner has none), so fields those managers set and the manifests
/// no longer contain are removed by the apply ("Override"). Objects matching `exclusions`
/// (`kustomize.toolkit.fluxcd.io/ssa: Merge`) are left alone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApplyCleanup {
    pub annotations: Vec<String>,
    pub labels: Vec<String>,
    pub field_managers: Vec<FieldManager>,
    pub exclusions: BTreeMap<String, String>,
}

impl ApplyCleanup {
    /// kustomize-controller's cleanup: managers `kubectl` (Apply and Update),
    /// `before-first-apply` (Update), the controller itself (Update) and each
    /// `--override-manager` (Apply and Update); the `kubectl.kubernetes.io/last-applied-configuration`
    /// annotation and the deprecated Flux v1 checksum annotations and GC label; skipped for
    /// objects with `kustomize.toolkit.fluxcd.io/ssa: Merge`.
    pub fn kustomize_controller(controller_name: &str, override_managers: &[String]) -> Self {
        use ManagedFieldsOperation::{Apply, Update};
        let mut field_managers = vec![
            FieldManager::prefix("kubectl", Apply),
            FieldManager::prefix("kubectl", Update),
            FieldManager::prefix("before-first-apply", Update),
            FieldManager::prefix(controller_name, Update),
        ];
        for m in override_managers {
            field_managers.push(FieldManager::prefix(m, Apply));
            field_managers.push(FieldManager::prefix(m, Update));
        }
        ApplyCleanup {
            annotations: vec![
                "kubectl.kubernetes.io/last-applied-configuration".into(),
                "kustomize.toolkit.fluxcd.io/checksum".into(),
                "fluxcd.io/sync-checksum".into(),
            ],
            labels: vec!["fluxcd.io/sync-gc-mark".into()],
            field_managers,
            exclusions: BTreeMap::from([(
                "kustomize.toolkit.fluxcd.io/ssa".to_string(),
                "Merge".to_string(),
            )]),
        }
    }
}

/// Applies, prunes and waits for sets of objects with server-side apply.
#[derive(Clone)]
pub struct ResourceManager {
    pub(crate) client: Client,
    pub(crate) owner: Owner,
    pub(crate) concurrency: usize,
    pub(crate) cleanup: ApplyCleanup,
    pub(crate) discovery: DiscoveryCache,
}

impl ResourceManager {
    /// A manager with concurrency 1 and no cleanup.
    pub fn new(client: Client, owner: Owner) -> Self {
        ResourceManager {
            client,
            owner,
            concurrency: 1,
            cleanup: ApplyCleanup::default(),
            discovery: DiscoveryCache::new(),
        }
    }

    /// How many objects are dry-run (and diffed) at once (`--concurrent-ssa`); at least 1.
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// What to clean up on live objects before applying.
    pub fn with_cleanup(mut self, cleanup: ApplyCleanup) -> Self {
        self.cleanup = cleanup;
        self
    }

    /// Shares a discovery cache (e.g. between the managers of several impersonated clients).
    pub fn with_discovery(mut self, discovery: DiscoveryCache) -> Self {
        self.discovery = discovery;
        self
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn owner(&self) -> &Owner {
        &self.owner
    }

    pub fn discovery(&self) -> &DiscoveryCache {
        &self.discovery
    }

    /// `<group>/name` and `<group>/namespace` for the given owner (prune inclusions).
    pub fn owner_labels(&self, name: &str, namespace: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            (format!("{}/name", self.owner.group), name.to_string()),
            (
                format!("{}/namespace", self.owner.group),
                namespace.to_string(),
            ),
        ])
    }

    /// Adds the owner labels to every object.
    pub fn set_owner_labels(&self, objects: &mut [Value], name: &str, namespace: &str) {
        let labels = self.owner_labels(name, namespace);
        for o in objects.iter_mut() {
            let Some(obj) = o.as_object_mut() else {
                continue;
            };
            let meta = obj
                .entry("metadata")
                .or_insert_with(|| Value::Object(Default::default()));
            let Some(meta) = meta.as_object_mut() else {
                continue;
            };
            let l = meta
                .entry("labels")
                .or_insert_with(|| Value::Object(Default::default()));
            if !l.is_object() {
                *l = Value::Object(Default::default());
            }
            if let Some(l) = l.as_object_mut() {
                for (k, v) in &labels {
                    l.insert(k.clone(), Value::String(v.clone()));
                }
            }
        }
    }

    /// The dynamic API for an object's kind and namespace.
    pub(crate) async fn api_for(
        &self,
        meta: &ObjMetadata,
    ) -> Result<(Api<DynamicObject>, Resolved), SsaError> {
        let r = self.discovery.resolve(&self.client, meta).await?;
        let api = if r.namespaced {
            if meta.namespace.is_empty() {
                return Err(SsaError::NamespaceNotSpecified {
                    subject: meta.subject(),
                    message: "the server could not find the requested resource".into(),
                });
            }
            Api::namespaced_with(self.client.clone(), &meta.namespace, &r.resource)
        } else {
            Api::all_with(self.client.clone(), &r.resource)
        };
        Ok((api, r))
    }
}

pub(crate) fn to_value(obj: DynamicObject) -> Value {
    serde_json::to_value(obj).unwrap_or(Value::Null)
}
