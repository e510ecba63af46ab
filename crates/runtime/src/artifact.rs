//! The artifact client used by consumers (kustomize-controller, helm-controller): download an
//! artifact over HTTP with retries, verify its digest, and unpack it safely.
//!
//! Untrusted archives are refused, each with a clear error, when they hold an absolute path,
//! a `..` component, a symlink or hardlink pointing outside the root, an entry type other than
//! file / directory / link, more bytes than the size limit or more entries than the file limit.

use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use sha2::Digest as _;

/// Upstream's default limit on the unpacked size of an artifact (fluxcd/pkg/tar: 100 MiB).
pub const DEFAULT_MAX_UNTAR_SIZE: u64 = 100 << 20;
/// Default limit on the number of entries in an artifact.
pub const DEFAULT_MAX_FILES: u64 = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("failed to download artifact from {url}: {reason}")]
    Download { url: String, reason: String },
    #[error("artifact not found at {url} (HTTP 404): the source may not be ready yet")]
    NotFound { url: String },
    #[error("unsupported digest {0:?}: expected <algorithm>:<hex> with sha256, sha384 or sha512")]
    UnsupportedDigest(String),
    #[error(
        "failed to verify artifact: computed digest doesn't match '{expected}' (got '{actual}')"
    )]
    DigestMismatch { expected: String, actual: String },
    #[error("artifact is too large: it unpacks to more than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("artifact has too many entries: more than {limit}")]
    TooManyFiles { limit: u64 },
    #[error("refusing archive entry {path:?}: {reason}")]
    UnsafeEntry { path: String, reason: &'static str },
    #[error("failed to unpack artifact: {0}")]
    Io(#[from] std::io::Error),
}

/// Limits applied while unpacking.
#[derive(Clone, Copy, Debug)]
pub struct UntarLimits {
    /// Maximum total bytes of file content.
    pub max_size: u64,
    /// Maximum number of entries.
    pub max_files: u64,
}

impl Default for UntarLimits {
    fn default() -> Self {
        Self {
            max_size: DEFAULT_MAX_UNTAR_SIZE,
            max_files: DEFAULT_MAX_FILES,
        }
    }
}

/// Computes `<algo>:<hex>` of `data` with the algorithm named by `expected`'s prefix.
pub fn digest_of(algorithm: &str, data: &[u8]) -> Result<String, ArtifactError> {
    let hex = match algorithm {
        "sha256" => hex::encode(sha2::Sha256::digest(data)),
        "sha384" => hex::encode(sha2::Sha384::digest(data)),
        "sha512" => hex::encode(sha2::Sha512::digest(data)),
        other => return Err(ArtifactError::UnsupportedDigest(other.to_string())),
    };
    Ok(format!("{algorithm}:{hex}"))
}

/// Verifies `data` against `expected` (`sha256:<hex>` and friends).
pub fn verify_digest(expected: &str, data: &[u8]) -> Result<(), ArtifactError> {
    let (algorithm, _) = expected
        .split_once(':')
        .ok_or_else(|| ArtifactError::UnsupportedDigest(expected.to_string()))?;
    let actual = digest_of(algorithm, data)?;
    if actual != expected {
        return Err(ArtifactError::DigestMismatch {
            expected: expected.to_string(),
            actual,
        });
    }
    Ok(())
}

/// Downloads artifacts with retries (`--http-retry`), as upstream's fetcher does.
#[derive(Clone)]
pub struct ArtifactFetcher {
    http: reqwest::Client,
    retries: u32,
    max_download: u64,
}

impl ArtifactFetcher {
    pub fn new(retries: u32, timeout: Duration) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(timeout)
                .build()
                .unwrap_or_default(),
            retries,
            max_download: DEFAULT_MAX_UNTAR_SIZE,
        }
    }

    /// Limits the compressed download size.
    pub fn with_max_download(mut self, bytes: u64) -> Self {
        self.max_download = bytes;
        self
    }

    /// Downloads `url`, verifies `digest`, returns the bytes. 404 is not retried.
    pub async fn fetch(&self, url: &str, digest: &str) -> Result<Vec<u8>, ArtifactError> {
        let mut delay = Duration::from_millis(500);
        let mut last = String::new();
        for attempt in 0..=self.retries {
            if attempt > 0 {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
            let resp = match self.http.get(url).send().await {
                Ok(r) => r,
                Err(e) => {
                    last = e.to_string();
                    continue;
                }
            };
            let status = resp.status();
            if status.as_u16() == 404 {
                return Err(ArtifactError::NotFound {
                    url: url.to_string(),
                });
            }
            if !status.is_success() {
                last = format!("HTTP {status}");
                if status.is_client_error() {
                    break;
                }
                continue;
            }
            if resp.content_length().is_some_and(|l| l > self.max_download) {
                return Err(ArtifactError::TooLarge {
                    limit: self.max_download,
                });
            }
            let mut body = Vec::new();
            let mut resp = resp;
            loop {
                match resp.chunk().await {
                    Ok(Some(chunk)) => {
                        body.extend_from_slice(&chunk);
                        if body.len() as u64 > self.max_download {
                            return Err(ArtifactError::TooLarge {
                                limit: self.max_download,
                            });
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        last = e.to_string();
                        body.clear();
                        break;
                    }
                }
            }
            if body.is_empty() && !last.is_empty() {
                continue;
            }
            verify_digest(digest, &body)?;
            return Ok(body);
        }
        Err(ArtifactError::Download {
            url: url.to_string(),
            reason: last,
        })
    }
}

/// Returns the normalised relative path of an entry, refusing absolute paths and `..`.
fn safe_relative(path: &Path) -> Result<PathBuf, &'static str> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => return Err("path traversal ('..') is not allowed"),
            Component::RootDir | Component::Prefix(_) => {
                return Err("absolute paths are not allowed");
            }
        }
    }
    Ok(out)
}

/// Whether `target` (a link target written at `entry`) stays inside the root.
fn link_stays_inside(entry: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth: i64 = entry
        .parent()
        .map(|p| p.components().count() as i64)
        .unwrap_or(0);
    for c in target.components() {
        match c {
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            _ => return false,
        }
    }
    true
}

/// Unpacks a gzip-compressed tarball into `dest` (which must exist), enforcing `limits`.
pub fn untar_gz(data: &[u8], dest: &Path, limits: UntarLimits) -> Result<u64, ArtifactError> {
    let gz = flate2::read::GzDecoder::new(data);
    untar(gz, dest, limits)
}

/// Unpacks an uncompressed tar stream into `dest`, enforcing `limits`. Returns the number of
/// content bytes written.
pub fn untar<R: Read>(reader: R, dest: &Path, limits: UntarLimits) -> Result<u64, ArtifactError> {
    let mut archive = tar::Archive::new(reader);
    let mut total: u64 = 0;
    let mut files: u64 = 0;
    for entry in archive.entries()? {
        let mut entry = entry?;
        files += 1;
        if files > limits.max_files {
            return Err(ArtifactError::TooManyFiles {
                limit: limits.max_files,
            });
        }
        let raw = entry.path()?.into_owned();
        let shown = raw.display().to_string();
        let rel = safe_relative(&raw).map_err(|reason| ArtifactError::UnsafeEntry {
            path: shown.clone(),
            reason,
        })?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let target = dest.join(&rel);
        // Refuse writing through a symlink created by an earlier entry.
        let mut cursor = dest.to_path_buf();
        for c in rel.parent().into_iter().flat_map(|p| p.components()) {
            cursor.push(c);
            if cursor
                .symlink_metadata()
                .map(|m| m.file_type().is_symlink())
                .unwrap_or(false)
            {
                return Err(ArtifactError::UnsafeEntry {
                    path: shown,
                    reason: "entry is nested under a symlink",
                });
            }
        }
        let kind = entry.header().entry_type();
        match kind {
            tar::EntryType::Directory => std::fs::create_dir_all(&target)?,
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let size = entry.header().size()?;
                total = total.saturating_add(size);
                if total > limits.max_size {
                    return Err(ArtifactError::TooLarge {
                        limit: limits.max_size,
                    });
                }
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                let mut out = std::fs::File::create(&target)?;
                // Copy at most `size` bytes even if the header lies.
                let copied = std::io::copy(&mut (&mut entry).take(size), &mut out)?;
                if copied != size {
                    return Err(ArtifactError::UnsafeEntry {
                        path: shown,
                        reason: "entry is shorter than its header says",
                    });
                }
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let link = entry.link_name()?.ok_or(ArtifactError::UnsafeEntry {
                    path: shown.clone(),
                    reason: "link without a target",
                })?;
                let inside = if kind == tar::EntryType::Symlink {
                    link_stays_inside(&rel, &link)
                } else {
                    safe_relative(&link).is_ok()
                };
                if !inside {
                    return Err(ArtifactError::UnsafeEntry {
                        path: shown,
                        reason: "link points outside the artifact root",
                    });
                }
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                if kind == tar::EntryType::Symlink {
                    #[cfg(unix)]
                    std::os::unix::fs::symlink(&link, &target)?;
                } else {
                    let source = dest.join(safe_relative(&link).unwrap_or_default());
                    std::fs::hard_link(source, &target)?;
                }
            }
            tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => {}
            _ => {
                return Err(ArtifactError::UnsafeEntry {
                    path: shown,
                    reason: "unsupported entry type (only files, directories and links)",
                });
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(path: &str, kind: tar::EntryType, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        // set_path refuses '..' and absolute paths, so write the raw name bytes.
        let name = path.as_bytes();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o644);
        h.set_cksum();
        h
    }

    fn archive(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, data, link) in entries {
            let mut h = header(path, *kind, data.len() as u64);
            if let Some(l) = link {
                h.set_link_name(l).unwrap();
                h.set_cksum();
            }
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn unpack(data: &[u8], limits: UntarLimits) -> Result<u64, ArtifactError> {
        let dir = tempfile::tempdir().unwrap();
        untar(data, dir.path(), limits)
    }

    #[test]
    fn unpacks_files_dirs_and_inner_links() {
        let data = archive(&[
            ("app", tar::EntryType::Directory, b"", None),
            (
                "app/deploy.yaml",
                tar::EntryType::Regular,
                b"kind: Deployment\n",
                None,
            ),
            (
                "app/link.yaml",
                tar::EntryType::Symlink,
                b"",
                Some("deploy.yaml"),
            ),
            (
                "app/hard.yaml",
                tar::EntryType::Link,
                b"",
                Some("app/deploy.yaml"),
            ),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let n = untar(&data[..], dir.path(), UntarLimits::default()).unwrap();
        assert_eq!(n, 17);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("app/link.yaml")).unwrap(),
            "kind: Deployment\n"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("app/hard.yaml")).unwrap(),
            "kind: Deployment\n"
        );
    }

    fn refused(data: Vec<u8>, limits: UntarLimits) -> String {
        let err = unpack(&data, limits).unwrap_err();
        err.to_string()
    }

    #[test]
    fn refuses_path_traversal() {
        let e = refused(
            archive(&[("../evil", tar::EntryType::Regular, b"x", None)]),
            UntarLimits::default(),
        );
        assert!(e.contains("path traversal"), "{e}");
        let e = refused(
            archive(&[("a/../../evil", tar::EntryType::Regular, b"x", None)]),
            UntarLimits::default(),
        );
        assert!(e.contains("path traversal"), "{e}");
    }

    #[test]
    fn refuses_absolute_paths() {
        let e = refused(
            archive(&[("/etc/evil", tar::EntryType::Regular, b"x", None)]),
            UntarLimits::default(),
        );
        assert!(e.contains("absolute"), "{e}");
    }

    #[test]
    fn refuses_symlinks_escaping_root() {
        for target in ["../../etc/passwd", "/etc/passwd", "a/../../x"] {
            let e = refused(
                archive(&[("link", tar::EntryType::Symlink, b"", Some(target))]),
                UntarLimits::default(),
            );
            assert!(e.contains("outside the artifact root"), "{target}: {e}");
        }
    }

    #[test]
    fn refuses_hardlinks_escaping_root() {
        let e = refused(
            archive(&[("link", tar::EntryType::Link, b"", Some("../../etc/passwd"))]),
            UntarLimits::default(),
        );
        assert!(e.contains("outside the artifact root"), "{e}");
    }

    #[test]
    fn refuses_writing_through_symlink() {
        let e = refused(
            archive(&[
                ("dir", tar::EntryType::Symlink, b"", Some(".")),
                ("dir/file", tar::EntryType::Regular, b"x", None),
            ]),
            UntarLimits::default(),
        );
        assert!(e.contains("nested under a symlink"), "{e}");
    }

    #[test]
    fn refuses_oversize_archives() {
        let big = vec![b'a'; 2048];
        let e = refused(
            archive(&[("a", tar::EntryType::Regular, &big, None)]),
            UntarLimits {
                max_size: 1024,
                max_files: 10,
            },
        );
        assert!(e.contains("too large"), "{e}");
    }

    #[test]
    fn refuses_too_many_files() {
        let entries: Vec<String> = (0..11).map(|i| format!("f{i}")).collect();
        let list: Vec<(&str, tar::EntryType, &[u8], Option<&str>)> = entries
            .iter()
            .map(|p| (p.as_str(), tar::EntryType::Regular, &b"x"[..], None))
            .collect();
        let e = refused(
            archive(&list),
            UntarLimits {
                max_size: 1 << 20,
                max_files: 10,
            },
        );
        assert!(e.contains("too many entries"), "{e}");
    }

    #[test]
    fn refuses_devices() {
        let e = refused(
            archive(&[("dev", tar::EntryType::Char, b"", None)]),
            UntarLimits::default(),
        );
        assert!(e.contains("unsupported entry type"), "{e}");
    }

    #[test]
    fn digest_verification() {
        let data = b"hello";
        let d = digest_of("sha256", data).unwrap();
        assert_eq!(
            d,
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        verify_digest(&d, data).unwrap();
        assert!(matches!(
            verify_digest(&d, b"other"),
            Err(ArtifactError::DigestMismatch { .. })
        ));
        assert!(matches!(
            verify_digest("md5:abc", data),
            Err(ArtifactError::UnsupportedDigest(_))
        ));
        assert!(verify_digest("sha512:00", data).is_err());
    }
}
