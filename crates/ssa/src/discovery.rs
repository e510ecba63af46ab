//! Resolving kinds to API resources (plural, scope), cached per group-version.
//!
//! Nothing negative is cached: a kind that is unknown now (a CRD applied in the first stage)
//! is looked up again when it is next needed, so new kinds resolve as soon as the server
//! serves them. A kind missing from a cached group-version refreshes that group-version.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use kube::Client;
use kube::core::{ApiResource, GroupVersion};
use kube::discovery::Scope;

use crate::error::{is_not_found, message};
use crate::{ObjMetadata, SsaError};

/// A resolved kind.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub resource: ApiResource,
    pub namespaced: bool,
}

type Resources = Arc<Vec<Resolved>>;

/// A shared discovery cache (cheap to clone).
#[derive(Clone, Default)]
pub struct DiscoveryCache {
    by_gv: Arc<Mutex<HashMap<String, Resources>>>,
}

impl DiscoveryCache {
    pub fn new() -> Self {
        DiscoveryCache::default()
    }

    /// Forgets everything (the next lookups query the server).
    pub fn invalidate(&self) {
        self.by_gv
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    fn cached(&self, gv: &str) -> Option<Resources> {
        self.by_gv
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(gv)
            .cloned()
    }

    async fn query(&self, client: &Client, obj: &ObjMetadata) -> Result<Resources, SsaError> {
        let gv = GroupVersion::gv(&obj.group, &obj.version);
        let resources = match kube::discovery::pinned_group(client, &gv).await {
            Ok(group) => group
                .versioned_resources(&obj.version)
                .into_iter()
                .map(|(resource, caps)| Resolved {
                    resource,
                    namespaced: caps.scope == Scope::Namespaced,
                })
                .collect(),
            Err(e) if is_not_found(&e) => Vec::new(),
            Err(e) => {
                return Err(SsaError::Discovery {
                    subject: obj.subject(),
                    message: message(&e),
                });
            }
        };
        let resources = Arc::new(resources);
        if !resources.is_empty() {
            self.by_gv
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(obj.api_version(), resources.clone());
        }
        Ok(resources)
    }

    /// Resolves the kind of `obj` at its version; `SsaError::NoMatch` when not served.
    pub async fn resolve(&self, client: &Client, obj: &ObjMetadata) -> Result<Resolved, SsaError> {
        let find = |rs: &Resources| rs.iter().find(|r| r.resource.kind == obj.kind).cloned();
        if let Some(found) = self.cached(&obj.api_version()).as_ref().and_then(find) {
            return Ok(found);
        }
        let fresh = self.query(client, obj).await?;
        find(&fresh).ok_or_else(|| SsaError::NoMatch {
            subject: obj.subject(),
            kind: obj.kind.clone(),
            api_version: obj.api_version(),
        })
    }
}
