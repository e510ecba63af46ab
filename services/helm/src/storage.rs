//! Helm's `secret` storage driver on the cluster: the release history of one release name in
//! the storage namespace, read and written as the real `helm` CLI does (see
//! `ferroflux_helm::release::storage` for the encoding).

use ferroflux_helm::release::{Release, storage};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client};
use std::sync::{Arc, Mutex};

/// The release Secrets of one storage namespace.
#[derive(Clone)]
pub struct ReleaseStorage {
    api: Api<Secret>,
    namespace: String,
    /// Every record written (created or updated), in order: what helm-controller's storage
    /// observer sees of a Helm action.
    observed: Option<Arc<Mutex<Vec<Release>>>>,
}

fn unix_now() -> i64 {
    jiff::Timestamp::now().as_second()
}

impl ReleaseStorage {
    pub fn new(client: Client, namespace: &str) -> Self {
        ReleaseStorage {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
            observed: None,
        }
    }

    /// The same storage, recording every record written from now on (see [`Self::take_observed`]).
    pub fn observing(&self) -> Self {
        ReleaseStorage {
            observed: Some(Arc::new(Mutex::new(Vec::new()))),
            ..self.clone()
        }
    }

    /// The records written since the last call, oldest write first.
    pub fn take_observed(&self) -> Vec<Release> {
        self.observed
            .as_ref()
            .map(|o| std::mem::take(&mut *o.lock().unwrap_or_else(|p| p.into_inner())))
            .unwrap_or_default()
    }

    fn observe(&self, rel: &Release) {
        if let Some(o) = &self.observed {
            o.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(rel.clone());
        }
    }

    /// The newest revision of `name` (`Last`), if any.
    pub async fn last(&self, name: &str) -> Result<Option<Release>, String> {
        Ok(self.history(name).await?.pop())
    }

    /// One revision (`Get`); `None` when it is not stored.
    pub async fn get(&self, name: &str, version: i64) -> Result<Option<Release>, String> {
        match self
            .api
            .get_opt(&storage::object_name(name, version))
            .await
            .map_err(|e| format!("get: failed to get release: {e}"))?
        {
            None => Ok(None),
            Some(s) => {
                let v = serde_json::to_value(&s).unwrap_or_default();
                storage::from_object(&v)
                    .map(Some)
                    .map_err(|e| format!("get: failed to decode data: {e}"))
            }
        }
    }

    /// Every stored revision of `name`, oldest first (`owner=helm,name=<name>`). Records that
    /// do not decode are skipped with a log line, as Helm's driver does.
    pub async fn history(&self, name: &str) -> Result<Vec<Release>, String> {
        let list = self
            .api
            .list(&ListParams::default().labels(&storage::selector(name)))
            .await
            .map_err(|e| format!("query: failed to query with labels: {e}"))?;
        let mut out = Vec::new();
        for s in list.items {
            let v = serde_json::to_value(&s).unwrap_or_default();
            match storage::from_object(&v) {
                Ok(r) => out.push(r),
                Err(e) => tracing::warn!(
                    secret = s.metadata.name.as_deref().unwrap_or(""),
                    "list: failed to decode release: {e}"
                ),
            }
        }
        out.sort_by_key(|r| r.version);
        Ok(out)
    }

    fn secret(&self, rel: &Release, create: bool) -> Result<Secret, String> {
        serde_json::from_value(storage::secret(rel, &self.namespace, create, unix_now()))
            .map_err(|e| format!("failed to encode release {:?}: {e}", rel.name))
    }

    /// `Create`: a new revision (fails if it exists).
    pub async fn create(&self, rel: &Release) -> Result<(), String> {
        let s = self.secret(rel, true)?;
        self.api
            .create(&PostParams::default(), &s)
            .await
            .map(|_| self.observe(rel))
            .map_err(|e| format!("create: failed to create: {e}"))
    }

    /// `Update`: rewrites a revision (labels get `modifiedAt`).
    pub async fn update(&self, rel: &Release) -> Result<(), String> {
        let s = self.secret(rel, false)?;
        let name = storage::object_name(&rel.name, rel.version);
        self.api
            .replace(&name, &PostParams::default(), &s)
            .await
            .map(|_| self.observe(rel))
            .map_err(|e| format!("update: failed to update: {e}"))
    }

    /// `Delete` of one revision (gone already is fine).
    pub async fn delete(&self, name: &str, version: i64) -> Result<(), String> {
        match self
            .api
            .delete(
                &storage::object_name(name, version),
                &DeleteParams::default(),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
            Err(e) => Err(format!("delete: {e}")),
        }
    }
}
