//! Pruning (upstream `DeleteAll`).

use std::collections::BTreeMap;

use kube::api::{DeleteParams, PropagationPolicy};

use crate::error::{is_not_found, message};
use crate::manager::to_value;
use crate::object::{any_in_metadata, apply_order, labels};
use crate::{Action, ChangeSet, ChangeSetEntry, ObjMetadata, ResourceManager, SsaError};

/// How dependents of a deleted object are garbage-collected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Propagation {
    #[default]
    Background,
    Foreground,
    Orphan,
}

/// Options of a delete.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeleteOptions {
    pub propagation: Propagation,
    /// Only live objects carrying all these labels are deleted (the owner labels); others are
    /// skipped. Empty: every object.
    pub inclusions: BTreeMap<String, String>,
    /// Live objects with one of these label/annotation pairs are skipped
    /// (`kustomize.toolkit.fluxcd.io/prune: disabled`, ...).
    pub exclusions: BTreeMap<String, String>,
}

impl DeleteOptions {
    /// kustomize-controller's prune options for the Kustomization `name`/`namespace`.
    pub fn kustomization(manager: &ResourceManager, name: &str, namespace: &str) -> Self {
        let g = "kustomize.toolkit.fluxcd.io";
        DeleteOptions {
            propagation: Propagation::Background,
            inclusions: manager.owner_labels(name, namespace),
            exclusions: BTreeMap::from([
                (format!("{g}/prune"), "disabled".to_string()),
                (format!("{g}/reconcile"), "disabled".to_string()),
                (format!("{g}/ssa"), "Ignore".to_string()),
            ]),
        }
    }
}

impl ResourceManager {
    /// Deletes the objects (in reverse apply order). Objects already gone count as deleted;
    /// objects not carrying the inclusion labels or carrying an exclusion are skipped; the
    /// other failures are collected into one error.
    pub async fn delete_all(
        &self,
        objects: Vec<ObjMetadata>,
        opts: &DeleteOptions,
    ) -> Result<ChangeSet, SsaError> {
        let (cs, res) = self.delete_all_partial(objects, opts).await;
        res.map(|()| cs)
    }

    /// As [`Self::delete_all`], but also returns the entries of the objects that were settled
    /// (deleted or skipped) when some failed: objects without an entry were not deleted and
    /// belong back in the inventory.
    pub async fn delete_all_partial(
        &self,
        mut objects: Vec<ObjMetadata>,
        opts: &DeleteOptions,
    ) -> (ChangeSet, Result<(), SsaError>) {
        objects.sort_by(|a, b| apply_order(b, a));
        let mut cs = ChangeSet::new();
        let mut errors = vec![];
        for obj in objects {
            match self.delete_one(&obj, opts).await {
                Ok(action) => cs.add(ChangeSetEntry::new(obj, action)),
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            (cs, Ok(()))
        } else {
            (cs, Err(SsaError::Delete(errors)))
        }
    }

    async fn delete_one(&self, obj: &ObjMetadata, opts: &DeleteOptions) -> Result<Action, String> {
        let subject = obj.subject();
        let (api, _) = match self.api_for(obj).await {
            Ok(x) => x,
            // as upstream: an unknown kind is a query failure, not a deletion
            Err(SsaError::NoMatch {
                kind, api_version, ..
            }) => {
                return Err(format!(
                    "{subject} query failed: no matches for kind \"{kind}\" in version \"{api_version}\""
                ));
            }
            Err(e) => return Err(format!("{subject} query failed: {e}")),
        };
        let live = match api.get_opt(&obj.name).await {
            Ok(Some(o)) => to_value(o),
            Ok(None) => return Ok(Action::Deleted),
            Err(e) => return Err(format!("{subject} query failed: {}", message(&e))),
        };
        let live_labels = labels(&live);
        if !opts
            .inclusions
            .iter()
            .all(|(k, v)| live_labels.get(k) == Some(v))
        {
            return Ok(Action::Skipped);
        }
        if any_in_metadata(&live, &opts.exclusions) {
            return Ok(Action::Skipped);
        }
        let dp = DeleteParams {
            propagation_policy: Some(match opts.propagation {
                Propagation::Background => PropagationPolicy::Background,
                Propagation::Foreground => PropagationPolicy::Foreground,
                Propagation::Orphan => PropagationPolicy::Orphan,
            }),
            ..Default::default()
        };
        match api.delete(&obj.name, &dp).await {
            Ok(_) => Ok(Action::Deleted),
            Err(e) if is_not_found(&e) => Ok(Action::Deleted),
            Err(e) => Err(format!("{subject} delete failed: {}", message(&e))),
        }
    }
}
