//! Artifact storage: where artifacts live, how they are written and how old ones are collected.
//!
//! The layout and naming follow upstream source-controller: `<kind>/<namespace>/<name>/<file>`
//! relative to the storage root (kind in lower case), served at `http://<adv-addr>/<path>`.
//! Files are written to a temporary file in the target directory, fsync'ed and renamed into
//! place, under a per-file `<file>.lock` lock. Archives are deterministic (see [`archive`]).

pub mod archive;
pub mod gc;
pub mod remote;

use std::fs;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use ferroflux_api::Artifact;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use sha2::Digest as _;

pub use archive::{ArchiveFilter, ArchiveLimits};

/// A storage failure, with the upstream reason it maps to.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("invalid artifact path '{0}': it escapes the storage root")]
    InvalidPath(String),
    #[error("failed to create artifact directory: {0}")]
    DirCreation(io::Error),
    #[error("failed to acquire lock for artifact: {0}")]
    Lock(io::Error),
    #[error("unable to archive artifact to storage: {0}")]
    Archive(String),
    #[error("failed to read artifact: {0}")]
    Read(io::Error),
    #[error("computed digest doesn't match '{expected}'")]
    DigestMismatch { expected: String },
    #[error("unsupported digest algorithm '{0}'")]
    UnsupportedDigest(String),
    #[error("failed to remove artifact: {0}")]
    Remove(io::Error),
}

/// The digest algorithm (`--artifact-digest-algo`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigestAlgo {
    Sha256,
    Sha384,
    Sha512,
}

impl DigestAlgo {
    pub fn parse(s: &str) -> Result<Self, StorageError> {
        match s {
            "sha256" => Ok(Self::Sha256),
            "sha384" => Ok(Self::Sha384),
            "sha512" => Ok(Self::Sha512),
            other => Err(StorageError::UnsupportedDigest(other.to_string())),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }

    pub(crate) fn hasher(self) -> Hasher {
        match self {
            Self::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            Self::Sha384 => Hasher::Sha384(sha2::Sha384::new()),
            Self::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
        }
    }
}

/// An incremental digest producing `<algo>:<hex>`.
pub(crate) enum Hasher {
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub(crate) fn update(&mut self, data: &[u8]) {
        match self {
            Self::Sha256(h) => h.update(data),
            Self::Sha384(h) => h.update(data),
            Self::Sha512(h) => h.update(data),
        }
    }

    pub(crate) fn finish(self) -> String {
        match self {
            Self::Sha256(h) => format!("sha256:{}", hex::encode(h.finalize())),
            Self::Sha384(h) => format!("sha384:{}", hex::encode(h.finalize())),
            Self::Sha512(h) => format!("sha512:{}", hex::encode(h.finalize())),
        }
    }
}

/// Computes the digest of a file with the algorithm named in `algo`.
pub fn file_digest(path: &Path, algo: DigestAlgo) -> io::Result<String> {
    let mut f = fs::File::open(path)?;
    let mut h = algo.hasher();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finish())
}

/// Local-disk artifact storage.
#[derive(Clone, Debug)]
pub struct Storage {
    root: PathBuf,
    /// Advertised address (`--storage-adv-addr`), with or without scheme.
    hostname: String,
    retention_ttl: Duration,
    retention_records: usize,
    digest: DigestAlgo,
    remote: Option<remote::Remote>,
}

/// A held `<file>.lock`; released on drop.
pub struct ArtifactLock {
    _file: fs::File,
}

impl Storage {
    /// Creates the storage root if needed.
    pub fn new(
        root: impl Into<PathBuf>,
        hostname: &str,
        retention_ttl: Duration,
        retention_records: usize,
        digest: DigestAlgo,
    ) -> io::Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root)?;
        let root = root.canonicalize()?;
        Ok(Self {
            root,
            hostname: hostname.to_string(),
            retention_ttl,
            retention_records,
            digest,
            remote: None,
        })
    }

    /// Mirrors artifacts to an object store shared by replicas.
    pub fn with_remote(mut self, remote: remote::Remote) -> Self {
        self.remote = Some(remote);
        self
    }

    /// The shared object store, if any.
    pub fn remote(&self) -> Option<&remote::Remote> {
        self.remote.as_ref()
    }

    /// The storage path of a local file under the root.
    pub fn rel_path(&self, abs: &Path) -> Option<String> {
        abs.strip_prefix(&self.root)
            .ok()
            .map(|p| p.to_string_lossy().replace('\\', "/"))
    }

    /// Brings a storage path from the shared object store when it is missing locally; returns
    /// whether the file is (now) present locally.
    pub async fn restore(&self, path: &str) -> bool {
        let Ok(local) = self.local_path(path) else {
            return false;
        };
        if local.is_file() {
            return true;
        }
        match &self.remote {
            Some(r) => match r.download(path, &local).await {
                Ok(found) => found,
                Err(e) => {
                    tracing::warn!(error = %e, path, "failed to fetch artifact from shared storage");
                    false
                }
            },
            None => false,
        }
    }

    /// Uploads the artifact to the shared object store (no-op without one).
    pub async fn push(&self, artifact: &Artifact) -> Result<(), StorageError> {
        if let Some(r) = &self.remote {
            let local = self.local_path(&artifact.path)?;
            r.upload(&artifact.path, &local).await.map_err(|e| {
                StorageError::Archive(format!("failed to upload to shared storage: {e}"))
            })?;
        }
        Ok(())
    }

    /// Removes the given local files' copies from the shared object store.
    pub async fn forget_remote(&self, removed: &[PathBuf]) {
        if let Some(r) = &self.remote {
            for p in removed {
                if let Some(rel) = self.rel_path(p)
                    && let Err(e) = r.delete(&rel).await
                {
                    tracing::warn!(error = %e, path = %rel, "failed to delete artifact from shared storage");
                }
            }
        }
    }

    /// Removes an object's directory from the shared object store.
    pub async fn remove_all_remote(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<usize, StorageError> {
        match &self.remote {
            Some(r) => r
                .delete_dir(&format!("{}/{namespace}/{name}/", kind.to_lowercase()))
                .await
                .map_err(|e| StorageError::Remove(io::Error::other(e.to_string()))),
            None => Ok(0),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn digest_algo(&self) -> DigestAlgo {
        self.digest
    }

    /// `<lowercase kind>/<namespace>/<name>/<file>`.
    pub fn artifact_path(kind: &str, namespace: &str, name: &str, file: &str) -> String {
        format!("{}/{namespace}/{name}/{file}", kind.to_lowercase())
    }

    /// The URL of a storage path, as upstream builds it from the advertised address.
    pub fn url_for(&self, path: &str) -> String {
        let path = path.trim_start_matches('/');
        if self.hostname.starts_with("http://") || self.hostname.starts_with("https://") {
            format!("{}/{path}", self.hostname)
        } else {
            format!("http://{}/{path}", self.hostname)
        }
    }

    /// A new artifact (no digest or size yet) for an object.
    pub fn new_artifact_for(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
        revision: &str,
        file: &str,
    ) -> Artifact {
        let path = Self::artifact_path(kind, namespace, name, file);
        Artifact {
            url: self.url_for(&path),
            path,
            revision: revision.to_string(),
            digest: String::new(),
            last_update_time: Time(jiff::Timestamp::now()),
            size: None,
            metadata: None,
        }
    }

    /// Rewrites the URL from the current advertised address (the hostname may change).
    pub fn set_artifact_url(&self, artifact: &mut Artifact) {
        artifact.url = self.url_for(&artifact.path);
    }

    /// The local file of a storage path; refuses paths that escape the root.
    pub fn local_path(&self, path: &str) -> Result<PathBuf, StorageError> {
        let rel = Path::new(path.trim_start_matches('/'));
        let mut out = self.root.clone();
        for c in rel.components() {
            match c {
                Component::Normal(p) => out.push(p),
                Component::CurDir => {}
                _ => return Err(StorageError::InvalidPath(path.to_string())),
            }
        }
        Ok(out)
    }

    /// True if the artifact's file exists (as a regular file or symlink).
    pub fn artifact_exist(&self, artifact: &Artifact) -> bool {
        self.local_path(&artifact.path)
            .ok()
            .and_then(|p| fs::symlink_metadata(p).ok())
            .is_some_and(|m| m.is_file() || m.file_type().is_symlink())
    }

    /// Recomputes the digest of the stored file and compares it with the advertised one.
    pub fn verify_artifact(&self, artifact: &Artifact) -> Result<(), StorageError> {
        let algo = artifact
            .digest_algorithm()
            .ok_or_else(|| StorageError::UnsupportedDigest(artifact.digest.clone()))?;
        let algo = DigestAlgo::parse(algo)?;
        let path = self.local_path(&artifact.path)?;
        let actual = file_digest(&path, algo).map_err(StorageError::Read)?;
        if actual != artifact.digest {
            return Err(StorageError::DigestMismatch {
                expected: artifact.digest.clone(),
            });
        }
        Ok(())
    }

    /// Creates the artifact's directory.
    pub fn mkdir_all(&self, artifact: &Artifact) -> Result<(), StorageError> {
        let path = self.local_path(&artifact.path)?;
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(StorageError::DirCreation)?;
        }
        Ok(())
    }

    /// Takes the exclusive `<file>.lock` of the artifact (blocking).
    pub fn lock(&self, artifact: &Artifact) -> Result<ArtifactLock, StorageError> {
        let path = self.local_path(&artifact.path)?;
        let mut lock = path.into_os_string();
        lock.push(".lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(PathBuf::from(lock))
            .map_err(StorageError::Lock)?;
        file.lock().map_err(StorageError::Lock)?;
        Ok(ArtifactLock { _file: file })
    }

    /// Writes a deterministic tar.gz of `dir` (entries rejected by `filter` left out) to the
    /// artifact's path atomically, and fills in digest, size and last update time.
    pub fn archive(
        &self,
        artifact: &mut Artifact,
        dir: &Path,
        filter: &ArchiveFilter<'_>,
        limits: ArchiveLimits,
    ) -> Result<(), StorageError> {
        self.archive_with(artifact, |file, algo| {
            archive::write_tar_gz(dir, filter, limits, algo, file)
        })
    }

    /// Writes an archive produced by `write` (given the temporary file and the digest
    /// algorithm, returning digest and size, e.g. through [`archive::TarGzWriter`]) to the
    /// artifact's path atomically, and fills in digest, size and last update time.
    pub fn archive_with<E: std::fmt::Display>(
        &self,
        artifact: &mut Artifact,
        write: impl FnOnce(&mut fs::File, DigestAlgo) -> Result<(String, u64), E>,
    ) -> Result<(), StorageError> {
        let target = self.local_path(&artifact.path)?;
        let parent = target
            .parent()
            .ok_or_else(|| StorageError::InvalidPath(artifact.path.clone()))?;
        let mut tmp = tempfile_in(parent).map_err(|e| StorageError::Archive(e.to_string()))?;
        let result = (|| -> Result<(String, u64), StorageError> {
            let (digest, size) = write(&mut tmp.file, self.digest)
                .map_err(|e| StorageError::Archive(e.to_string()))?;
            tmp.file
                .sync_all()
                .map_err(|e| StorageError::Archive(e.to_string()))?;
            set_mode(&tmp.path, 0o600).map_err(|e| StorageError::Archive(e.to_string()))?;
            fs::rename(&tmp.path, &target).map_err(|e| StorageError::Archive(e.to_string()))?;
            tmp.persisted = true;
            sync_dir(parent);
            Ok((digest, size))
        })();
        let (digest, size) = result?;
        artifact.digest = digest;
        artifact.size = Some(size as i64);
        artifact.last_update_time = Time(jiff::Timestamp::now());
        Ok(())
    }

    /// Writes `data` to the artifact's path atomically and fills in digest, size and time.
    pub fn write_bytes(&self, artifact: &mut Artifact, data: &[u8]) -> Result<(), StorageError> {
        use std::io::Write as _;
        let target = self.local_path(&artifact.path)?;
        let parent = target
            .parent()
            .ok_or_else(|| StorageError::InvalidPath(artifact.path.clone()))?;
        let mut tmp = tempfile_in(parent).map_err(|e| StorageError::Archive(e.to_string()))?;
        tmp.file
            .write_all(data)
            .and_then(|_| tmp.file.sync_all())
            .and_then(|_| set_mode(&tmp.path, 0o600))
            .and_then(|_| fs::rename(&tmp.path, &target))
            .map_err(|e| StorageError::Archive(e.to_string()))?;
        tmp.persisted = true;
        sync_dir(parent);
        let mut h = self.digest.hasher();
        h.update(data);
        artifact.digest = h.finish();
        artifact.size = Some(data.len() as i64);
        artifact.last_update_time = Time(jiff::Timestamp::now());
        Ok(())
    }

    /// A temporary file next to the artifact's path (its directory created), to be written
    /// (digest and size computed on the way) and then made the artifact by
    /// [`Storage::persist`]; removed if dropped before. Lets a download stream straight into
    /// storage instead of being copied there afterwards.
    pub fn pending(&self, artifact: &Artifact) -> Result<PendingArtifact, StorageError> {
        self.mkdir_all(artifact)?;
        let target = self.local_path(&artifact.path)?;
        let parent = target
            .parent()
            .ok_or_else(|| StorageError::InvalidPath(artifact.path.clone()))?;
        let tmp = tempfile_in(parent).map_err(|e| StorageError::Archive(e.to_string()))?;
        Ok(PendingArtifact {
            tmp,
            hasher: self.digest.hasher(),
            size: 0,
        })
    }

    /// Makes a pending file the artifact (synced, mode 0600, renamed over the artifact's path
    /// atomically) and fills in digest, size and time. `artifact` must be the one the file was
    /// made for.
    pub fn persist(
        &self,
        artifact: &mut Artifact,
        pending: PendingArtifact,
    ) -> Result<(), StorageError> {
        let target = self.local_path(&artifact.path)?;
        let parent = target
            .parent()
            .ok_or_else(|| StorageError::InvalidPath(artifact.path.clone()))?;
        let PendingArtifact {
            mut tmp,
            hasher,
            size,
        } = pending;
        if tmp.path.parent() != Some(parent) {
            return Err(StorageError::InvalidPath(artifact.path.clone()));
        }
        tmp.file
            .sync_all()
            .and_then(|_| set_mode(&tmp.path, 0o600))
            .and_then(|_| fs::rename(&tmp.path, &target))
            .map_err(|e| StorageError::Archive(e.to_string()))?;
        tmp.persisted = true;
        sync_dir(parent);
        artifact.digest = hasher.finish();
        artifact.size = Some(size as i64);
        artifact.last_update_time = Time(jiff::Timestamp::now());
        Ok(())
    }

    /// Copies the file at `src` to the artifact's path atomically (streaming, digest computed
    /// on the way) and fills in digest, size and time: upstream's CopyFromPath.
    pub fn copy_from_path(&self, artifact: &mut Artifact, src: &Path) -> Result<(), StorageError> {
        use std::io::Write as _;
        let target = self.local_path(&artifact.path)?;
        let parent = target
            .parent()
            .ok_or_else(|| StorageError::InvalidPath(artifact.path.clone()))?;
        let mut input = fs::File::open(src).map_err(StorageError::Read)?;
        let mut tmp = tempfile_in(parent).map_err(|e| StorageError::Archive(e.to_string()))?;
        let mut h = self.digest.hasher();
        let mut size: u64 = 0;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = input.read(&mut buf).map_err(StorageError::Read)?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
            size += n as u64;
            tmp.file
                .write_all(&buf[..n])
                .map_err(|e| StorageError::Archive(e.to_string()))?;
        }
        tmp.file
            .sync_all()
            .and_then(|_| set_mode(&tmp.path, 0o600))
            .and_then(|_| fs::rename(&tmp.path, &target))
            .map_err(|e| StorageError::Archive(e.to_string()))?;
        tmp.persisted = true;
        sync_dir(parent);
        artifact.digest = h.finish();
        artifact.size = Some(size as i64);
        artifact.last_update_time = Time(jiff::Timestamp::now());
        Ok(())
    }

    /// Points the symlink `name` next to the artifact at it (replacing it atomically) and
    /// returns the link's URL, as upstream's Symlink (`latest.tar.gz`, status.url).
    pub fn symlink(&self, artifact: &Artifact, name: &str) -> Result<String, StorageError> {
        let target = self.local_path(&artifact.path)?;
        let parent = target
            .parent()
            .ok_or_else(|| StorageError::InvalidPath(artifact.path.clone()))?;
        let file = target
            .file_name()
            .ok_or_else(|| StorageError::InvalidPath(artifact.path.clone()))?;
        let link = parent.join(name);
        let tmp = parent.join(format!(".tmp-link-{:016x}", rand::random::<u64>()));
        #[cfg(unix)]
        std::os::unix::fs::symlink(file, &tmp).map_err(|e| StorageError::Archive(e.to_string()))?;
        fs::rename(&tmp, &link).map_err(|e| {
            let _ = fs::remove_file(&tmp);
            StorageError::Archive(e.to_string())
        })?;
        let rel = match artifact.path.rsplit_once('/') {
            Some((dir, _)) => format!("{dir}/{name}"),
            None => name.to_string(),
        };
        Ok(self.url_for(&rel))
    }

    /// Removes the artifact's file.
    pub fn remove(&self, artifact: &Artifact) -> Result<(), StorageError> {
        let path = self.local_path(&artifact.path)?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StorageError::Remove(e)),
        }
    }

    /// Removes the whole `<kind>/<namespace>/<name>` directory; returns it if it existed.
    pub fn remove_all(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Option<PathBuf>, StorageError> {
        let dir = self.local_path(&format!("{}/{namespace}/{name}", kind.to_lowercase()))?;
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(Some(dir)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageError::Remove(e)),
        }
    }

    /// Deletes old files next to `current` per the retention settings; returns what was removed.
    pub fn garbage_collect(&self, current: &Artifact) -> Result<Vec<PathBuf>, StorageError> {
        let path = self.local_path(&current.path)?;
        gc::collect(
            &path,
            self.retention_ttl,
            self.retention_records,
            gc::MAX_WALKED_FILES,
        )
        .map_err(StorageError::Remove)
    }
}

struct TempFile {
    path: PathBuf,
    file: fs::File,
    persisted: bool,
}

/// A file being written next to an artifact (see [`Storage::pending`]).
pub struct PendingArtifact {
    tmp: TempFile,
    hasher: Hasher,
    size: u64,
}

impl PendingArtifact {
    /// Where the file is (to read it back).
    pub fn path(&self) -> &Path {
        &self.tmp.path
    }
}

impl io::Write for PendingArtifact {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = io::Write::write(&mut self.tmp.file, buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        io::Write::flush(&mut self.tmp.file)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn tempfile_in(dir: &Path) -> io::Result<TempFile> {
    for _ in 0..16 {
        let suffix: u64 = rand::random();
        let path = dir.join(format!(".tmp-{suffix:016x}"));
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(file) => {
                return Ok(TempFile {
                    path,
                    file,
                    persisted: false,
                });
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("unable to create a temporary file"))
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// The advertised address when `--storage-adv-addr` is empty, as upstream derives it from
/// `--storage-addr`: empty host becomes `localhost`, `0.0.0.0` becomes `$HOSTNAME`.
pub fn determine_adv_addr(storage_addr: &str) -> String {
    let (host, port) = match storage_addr.rsplit_once(':') {
        Some((h, p)) => (h.to_string(), p.to_string()),
        None => (storage_addr.to_string(), String::new()),
    };
    let host = match host.as_str() {
        "" => "localhost".to_string(),
        "0.0.0.0" => std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".to_string()),
        _ => host,
    };
    if port.is_empty() {
        host
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage(dir: &Path, host: &str) -> Storage {
        Storage::new(dir, host, Duration::from_secs(60), 2, DigestAlgo::Sha256).unwrap()
    }

    #[test]
    fn layout_and_urls_follow_upstream() {
        let tmp = tempfile::tempdir().unwrap();
        let s = storage(
            tmp.path(),
            "source-controller.flux-system.svc.cluster.local.",
        );
        let a = s.new_artifact_for("GitRepository", "ns", "app", "main@sha1:abc", "abc.tar.gz");
        assert_eq!(a.path, "gitrepository/ns/app/abc.tar.gz");
        assert_eq!(
            a.url,
            "http://source-controller.flux-system.svc.cluster.local./gitrepository/ns/app/abc.tar.gz"
        );
        let s = storage(tmp.path(), "https://artifacts.example.com");
        assert_eq!(
            s.url_for("/gitrepository/ns/app/x.tar.gz"),
            "https://artifacts.example.com/gitrepository/ns/app/x.tar.gz"
        );
        assert!(s.local_path("gitrepository/../../etc/passwd").is_err());
        assert_eq!(determine_adv_addr(":9090"), "localhost:9090");
        assert_eq!(determine_adv_addr("10.0.0.1:9090"), "10.0.0.1:9090");
    }

    #[test]
    fn write_verify_remove_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let s = storage(tmp.path(), "localhost:9090");
        let mut a = s.new_artifact_for("GitRepository", "ns", "app", "r", "f.txt");
        s.mkdir_all(&a).unwrap();
        let _lock = s.lock(&a).unwrap();
        s.write_bytes(&mut a, b"hello").unwrap();
        assert_eq!(
            a.digest,
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(a.size, Some(5));
        assert!(s.artifact_exist(&a));
        s.verify_artifact(&a).unwrap();
        fs::write(s.local_path(&a.path).unwrap(), b"tampered").unwrap();
        assert!(matches!(
            s.verify_artifact(&a),
            Err(StorageError::DigestMismatch { .. })
        ));
        s.remove(&a).unwrap();
        assert!(!s.artifact_exist(&a));
        assert!(
            s.remove_all("GitRepository", "ns", "app")
                .unwrap()
                .is_some()
        );
        assert!(
            s.remove_all("GitRepository", "ns", "app")
                .unwrap()
                .is_none()
        );
        // No temporary files are left behind.
        assert!(!tmp.path().join("gitrepository/ns/app").exists());
    }
}
