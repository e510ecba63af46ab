//! Helm's `secret` storage driver on the cluster: the release history of one release name in
//! the storage namespace, read and written as the real `helm` CLI does (see
//! `ferroflux_helm::release::storage` for the encoding).

use ferroflux_helm::release::{Release, storage};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Api, Client};

/// The release Secrets of one storage namespace.
pub struct ReleaseStorage {
    api: Api<Secret>,
    namespace: String,
}

fn unix_now() -> i64 {
    jiff::Timestamp::now().as_second()
}

impl ReleaseStorage {
    pub fn new(client: Client, namespace: &str) -> Self {
        ReleaseStorage {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
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
            .map(|_| ())
            .map_err(|e| format!("create: failed to create: {e}"))
    }

    /// `Update`: rewrites a revision (labels get `modifiedAt`).
    pub async fn update(&self, rel: &Release) -> Result<(), String> {
        let s = self.secret(rel, false)?;
        let name = storage::object_name(&rel.name, rel.version);
        self.api
            .replace(&name, &PostParams::default(), &s)
            .await
            .map(|_| ())
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
