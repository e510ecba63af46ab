//! Shared artifact storage on an object store (S3-compatible), so that several
//! source-controller replicas serve the same artifacts.
//!
//! Local disk stays the working area and the serving root; the object store holds the durable
//! copy under the same relative paths (`<prefix>/<kind>/<namespace>/<name>/<file>`):
//! new artifacts are uploaded after their atomic local write, an artifact missing locally is
//! downloaded (another replica built it) before anything is rebuilt, the file server fetches
//! unknown paths from the store before answering 404, and garbage collection and deletion
//! remove objects from both.

use std::path::Path;
use std::sync::Arc;

use futures::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

/// An object store failure.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("invalid storage URL '{0}': {1}")]
    Url(String, String),
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// An object store holding artifacts under a prefix.
#[derive(Clone, Debug)]
pub struct Remote {
    store: Arc<dyn ObjectStore>,
    prefix: String,
}

impl Remote {
    /// Wraps any object store.
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str) -> Self {
        Self {
            store,
            prefix: prefix.trim_matches('/').to_string(),
        }
    }

    /// Parses `s3://<bucket>[/<prefix>][?endpoint=<url>&region=<r>&allow_http=true]`;
    /// credentials come from the usual `AWS_*` environment variables (or IRSA / IMDS).
    pub fn from_url(url: &str) -> Result<Self, RemoteError> {
        let bad = |m: &str| RemoteError::Url(url.to_string(), m.to_string());
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| bad("only s3:// is supported"))?;
        let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (bucket, prefix) = location.split_once('/').unwrap_or((location, ""));
        if bucket.is_empty() {
            return Err(bad("missing bucket"));
        }
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            builder = match k {
                "endpoint" => builder.with_endpoint(v),
                "region" => builder.with_region(v),
                "allow_http" => builder.with_allow_http(v == "true"),
                other => return Err(bad(&format!("unknown parameter '{other}'"))),
            };
        }
        let store = builder
            .build()
            .map_err(|e| RemoteError::Url(url.to_string(), e.to_string()))?;
        Ok(Self::new(Arc::new(store), prefix))
    }

    fn key(&self, rel: &str) -> ObjectPath {
        let rel = rel.trim_start_matches('/');
        if self.prefix.is_empty() {
            ObjectPath::from(rel)
        } else {
            ObjectPath::from(format!("{}/{rel}", self.prefix))
        }
    }

    /// Uploads the local file as `rel`.
    pub async fn upload(&self, rel: &str, local: &Path) -> Result<(), RemoteError> {
        let data = tokio::fs::read(local).await?;
        self.store
            .put(&self.key(rel), PutPayload::from(bytes::Bytes::from(data)))
            .await?;
        Ok(())
    }

    /// Downloads `rel` to `local` (atomically); `false` if the object does not exist.
    pub async fn download(&self, rel: &str, local: &Path) -> Result<bool, RemoteError> {
        let got = match self.store.get(&self.key(rel)).await {
            Ok(g) => g,
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        let data = got.bytes().await?;
        let Some(dir) = local.parent() else {
            return Ok(false);
        };
        tokio::fs::create_dir_all(dir).await?;
        let suffix: u64 = rand::random();
        let tmp = dir.join(format!(".tmp-{suffix:016x}"));
        tokio::fs::write(&tmp, &data).await?;
        if let Err(e) = tokio::fs::rename(&tmp, local).await {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e.into());
        }
        Ok(true)
    }

    /// Removes `rel` (absent is fine).
    pub async fn delete(&self, rel: &str) -> Result<(), RemoteError> {
        match self.store.delete(&self.key(rel)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes every object under the directory `rel`; returns how many.
    pub async fn delete_dir(&self, rel: &str) -> Result<usize, RemoteError> {
        let prefix = self.key(rel);
        let mut listed = self.store.list(Some(&prefix));
        let mut n = 0;
        while let Some(meta) = listed.next().await {
            let meta = meta?;
            match self.store.delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => n += 1,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(n)
    }

    /// The relative paths stored under the directory `rel`.
    pub async fn list(&self, rel: &str) -> Result<Vec<String>, RemoteError> {
        let prefix = self.key(rel);
        let strip = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", self.prefix)
        };
        let mut out = Vec::new();
        let mut listed = self.store.list(Some(&prefix));
        while let Some(meta) = listed.next().await {
            let loc = meta?.location.to_string();
            out.push(loc.strip_prefix(&strip).unwrap_or(&loc).to_string());
        }
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        assert!(Remote::from_url("gs://b").is_err());
        assert!(Remote::from_url("s3://").is_err());
        assert!(Remote::from_url("s3://b/p?bogus=1").is_err());
        let r = Remote::from_url("s3://bucket/some/prefix/?endpoint=http://127.0.0.1:9000&region=us-east-1&allow_http=true").unwrap();
        assert_eq!(
            r.key("gitrepository/ns/a/x.tar.gz").to_string(),
            "some/prefix/gitrepository/ns/a/x.tar.gz"
        );
    }

    #[tokio::test]
    async fn round_trip_on_an_in_memory_store() {
        let r = Remote::new(Arc::new(object_store::memory::InMemory::new()), "p");
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("a");
        std::fs::write(&src, b"artifact").unwrap();
        r.upload("gitrepository/ns/app/1.tar.gz", &src)
            .await
            .unwrap();
        r.upload("gitrepository/ns/app/2.tar.gz", &src)
            .await
            .unwrap();
        assert_eq!(
            r.list("gitrepository/ns/app").await.unwrap(),
            vec![
                "gitrepository/ns/app/1.tar.gz",
                "gitrepository/ns/app/2.tar.gz"
            ]
        );
        let dst = tmp.path().join("x/y/1.tar.gz");
        assert!(
            r.download("gitrepository/ns/app/1.tar.gz", &dst)
                .await
                .unwrap()
        );
        assert_eq!(std::fs::read(&dst).unwrap(), b"artifact");
        assert!(!r.download("gitrepository/ns/app/none", &dst).await.unwrap());
        r.delete("gitrepository/ns/app/1.tar.gz").await.unwrap();
        assert_eq!(r.delete_dir("gitrepository/ns/app").await.unwrap(), 1);
        assert!(r.list("gitrepository/ns/app").await.unwrap().is_empty());
    }
}
