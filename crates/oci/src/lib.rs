//! ferroflux's OCI registry layer, shared by source-controller (OCIRepository, OCI Helm charts)
//! and the `ferroflux` CLI (`push/pull/tag/list artifact`):
//!
//! - repository URLs and references as upstream reads them (this file);
//! - `client`: the registry client on oci-client (tags, digests, manifests and blobs by
//!   reference, pushes, tags), `auth`: credentials from dockerconfigjson Secrets;
//! - `build`: the artifact tarball `flux push artifact` builds (Go `archive/tar` headers,
//!   gzip), `ignore`: gitignore-style rules as fluxcd/pkg/sourceignore;
//! - `artifact`: the Flux artifact format (media types, annotations, config blob, manifest) and
//!   the push, pull, tag and list operations of the CLI.

pub mod artifact;
pub mod auth;
pub mod build;
pub mod client;
mod direct;
pub mod ignore;

/// Config media type of artifacts pushed by `flux push artifact`.
pub const FLUX_CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.flux.config.v1+json";
/// Layer media type of artifacts pushed by `flux push artifact`.
pub const FLUX_CONTENT_MEDIA_TYPE: &str = "application/vnd.cncf.flux.content.v1.tar+gzip";
/// Layer media type of Helm charts pushed by `helm push`.
pub const HELM_CHART_CONTENT_MEDIA_TYPE: &str =
    "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
/// Annotation with the source the artifact was built from.
pub const SOURCE_ANNOTATION: &str = "org.opencontainers.image.source";
/// Annotation with the source revision the artifact was built from.
pub const REVISION_ANNOTATION: &str = "org.opencontainers.image.revision";
/// Annotation with the creation time of the artifact.
pub const CREATED_ANNOTATION: &str = "org.opencontainers.image.created";
/// The tag used when the spec names none.
pub const DEFAULT_TAG: &str = "latest";

/// Media types of manifests that list other manifests (multi-arch).
pub const INDEX_MEDIA_TYPES: [&str; 2] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// The platform upstream resolves multi-arch indexes to (go-containerregistry's default).
pub const DEFAULT_PLATFORM: (&str, &str) = ("linux", "amd64");

/// Docker Hub's registry host.
pub const DOCKER_HUB: &str = "index.docker.io";
/// Names of Docker Hub.
const DOCKER_HUB_ALIASES: [&str; 3] = [DOCKER_HUB, "docker.io", "registry-1.docker.io"];

/// A repository in a registry, from `oci://<registry>/<path>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repository {
    /// `host[:port]`.
    pub registry: String,
    /// The path inside the registry, e.g. `org/app`.
    pub path: String,
}

impl Repository {
    /// Parses `spec.url` the way upstream does: an `oci://` prefix, no tag, a registry host
    /// when the first component looks like one (has `.` or `:`, or is `localhost`), Docker
    /// Hub otherwise (`library/` for single names).
    pub fn parse(url: &str) -> Result<Self, String> {
        let Some(rest) = url.strip_prefix("oci://") else {
            return Err("URL must be in format 'oci://<domain>/<org>/<repo>'".to_string());
        };
        let (registry, path) = match rest.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), path.to_string())
            }
            _ => {
                let path = if rest.contains('/') {
                    rest.to_string()
                } else {
                    format!("library/{rest}")
                };
                (DOCKER_HUB.to_string(), path)
            }
        };
        // Docker Hub's official images live under `library/`, whichever alias names it.
        let path = if DOCKER_HUB_ALIASES.contains(&registry.as_str()) && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        if let Some((_, tag)) = path.split_once(':') {
            return Err(format!("URL must not contain a tag; remove ':{tag}'"));
        }
        if registry.is_empty() || path.is_empty() {
            return Err(format!("repository name must not be empty: '{rest}'"));
        }
        const ALLOWED: &str = "abcdefghijklmnopqrstuvwxyz0123456789_-./";
        if path.chars().any(|c| !ALLOWED.contains(c))
            || path.starts_with('/')
            || path.ends_with('/')
            || path.contains("//")
        {
            return Err(format!(
                "repository can only contain the characters `{ALLOWED}`: {path}"
            ));
        }
        if registry.contains('@') || registry.contains('/') {
            return Err(format!("registry '{registry}' is not a valid host"));
        }
        Ok(Self { registry, path })
    }

    /// `registry/path:tag`, as upstream prints references in messages.
    pub fn tag_ref(&self, tag: &str) -> String {
        format!("{}/{}:{tag}", self.registry, self.path)
    }

    /// `registry/path@digest`.
    pub fn digest_ref(&self, digest: &str) -> String {
        format!("{}/{}@{digest}", self.registry, self.path)
    }
}

/// What the spec asks for, after resolution: a tag or a digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolved {
    Tag(String),
    Digest(String),
}

/// The revision upstream records: `<tag>@<digest>` for tags, `<digest>` for digests.
pub fn revision(resolved: &Resolved, digest: &str) -> String {
    match resolved {
        Resolved::Tag(tag) => format!("{tag}@{digest}"),
        Resolved::Digest(_) => digest.to_string(),
    }
}

/// The digest part of a revision (after the last `@`).
pub fn digest_of_revision(revision: &str) -> &str {
    revision.rsplit('@').next().unwrap_or(revision)
}

/// Checks a digest the way go-containerregistry does: `sha256:` and 64 lower-case hex digits.
pub fn validate_digest(digest: &str) -> Result<(), String> {
    let Some((algo, hex)) = digest.split_once(':') else {
        return Err(format!("cannot parse hash: \"{digest}\""));
    };
    if algo != "sha256" {
        return Err(format!("unsupported hash: \"{algo}\""));
    }
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(format!("wrong number of hex digits for sha256: {hex}"));
    }
    Ok(())
}

/// The scheme of artifact and repository URLs.
pub const OCI_SCHEME: &str = "oci://";

/// A manifest reference from `oci://<registry>/<path>[:<tag>|@<digest>]` (the CLI's artifact
/// URLs): a tag (`latest` when none is given) or a digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArtifactRef {
    pub repo: Repository,
    pub reference: Resolved,
}

impl ArtifactRef {
    /// Parses an artifact URL; the repository part is read as [`Repository::parse`] does.
    pub fn parse(url: &str) -> Result<Self, String> {
        let Some(rest) = url.strip_prefix(OCI_SCHEME) else {
            return Err("URL must be in format 'oci://<domain>/<org>/<repo>'".to_string());
        };
        let (name, reference) = if let Some((name, digest)) = rest.split_once('@') {
            validate_digest(digest).map_err(|e| format!("'{url}' invalid URL: {e}"))?;
            (name, Resolved::Digest(digest.to_string()))
        } else {
            // A tag follows the last ':' after the last '/' (a port comes before a '/').
            let last_slash = rest.rfind('/').unwrap_or(0);
            match rest[last_slash..].rfind(':') {
                Some(i) => {
                    let (name, tag) = (&rest[..last_slash + i], &rest[last_slash + i + 1..]);
                    validate_tag(tag).map_err(|e| format!("'{url}' invalid URL: {e}"))?;
                    (name, Resolved::Tag(tag.to_string()))
                }
                None => (rest, Resolved::Tag(DEFAULT_TAG.to_string())),
            }
        };
        let repo = Repository::parse(&format!("{OCI_SCHEME}{name}"))
            .map_err(|e| format!("'{url}' invalid URL: {e}"))?;
        Ok(Self { repo, reference })
    }

    /// `registry/path:tag` or `registry/path@digest`.
    pub fn name(&self) -> String {
        match &self.reference {
            Resolved::Tag(t) => self.repo.tag_ref(t),
            Resolved::Digest(d) => self.repo.digest_ref(d),
        }
    }
}

/// Checks a tag as the distribution spec does: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn validate_tag(tag: &str) -> Result<(), String> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "tag can only contain the characters `abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.`: {tag}"
        ))
    }
}

/// One entry of an image index.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexEntry {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub platform: Option<Platform>,
}

/// The platform of an index entry.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct Platform {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
}

/// The child of an index that upstream pulls: the first entry for linux/amd64 (what
/// go-containerregistry's `remote.Image` resolves an index to).
pub fn select_platform<'a>(
    entries: &'a [IndexEntry],
    index_ref: &str,
) -> Result<&'a IndexEntry, String> {
    entries
        .iter()
        .find(|e| {
            e.platform
                .as_ref()
                .is_some_and(|p| p.os == DEFAULT_PLATFORM.0 && p.architecture == DEFAULT_PLATFORM.1)
        })
        .ok_or_else(|| {
            format!(
                "no child with platform {}/{} in index {index_ref}",
                DEFAULT_PLATFORM.0, DEFAULT_PLATFORM.1
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_urls_as_upstream_reads_them() {
        let r = Repository::parse("oci://127.0.0.1:5000/org/app").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.path.as_str()),
            ("127.0.0.1:5000", "org/app")
        );
        let r = Repository::parse("oci://ghcr.io/stefanprodan/manifests/podinfo").unwrap();
        assert_eq!(r.path, "stefanprodan/manifests/podinfo");
        let r = Repository::parse("oci://nginx").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.path.as_str()),
            (DOCKER_HUB, "library/nginx")
        );
        let r = Repository::parse("oci://docker.io/nginx").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.path.as_str()),
            ("docker.io", "library/nginx")
        );
        let r = Repository::parse("oci://docker.io/stefanprodan/podinfo").unwrap();
        assert_eq!(r.path, "stefanprodan/podinfo");
        let r = Repository::parse("oci://localhost/app").unwrap();
        assert_eq!(r.registry, "localhost");
        assert_eq!(
            Repository::parse("https://ghcr.io/app").unwrap_err(),
            "URL must be in format 'oci://<domain>/<org>/<repo>'"
        );
        assert_eq!(
            Repository::parse("oci://ghcr.io/app:v1").unwrap_err(),
            "URL must not contain a tag; remove ':v1'"
        );
        assert!(Repository::parse("oci://ghcr.io/App").is_err());
        assert_eq!(r.tag_ref("v1"), "localhost/app:v1");
    }

    #[test]
    fn revisions_and_digests() {
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(revision(&Resolved::Tag("v1".into()), &d), format!("v1@{d}"));
        assert_eq!(revision(&Resolved::Digest(d.clone()), &d), d);
        assert_eq!(digest_of_revision(&format!("v1@{d}")), d);
        assert_eq!(digest_of_revision(&d), d);
        assert!(validate_digest(&d).is_ok());
        assert!(validate_digest("sha256:abc").is_err());
        assert!(validate_digest("md5:abc").is_err());
    }

    #[test]
    fn index_resolves_to_linux_amd64() {
        let entries: Vec<IndexEntry> = serde_json::from_value(serde_json::json!([
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:1",
             "platform": {"os": "linux", "architecture": "arm64"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:2",
             "platform": {"os": "linux", "architecture": "amd64"}},
        ]))
        .unwrap();
        assert_eq!(select_platform(&entries, "r").unwrap().digest, "sha256:2");
        assert_eq!(
            select_platform(&entries[..1], "r@sha256:x").unwrap_err(),
            "no child with platform linux/amd64 in index r@sha256:x"
        );
    }

    #[test]
    fn artifact_urls() {
        let r = ArtifactRef::parse("oci://127.0.0.1:5000/org/app:v1.0.0").unwrap();
        assert_eq!(r.repo.registry, "127.0.0.1:5000");
        assert_eq!(r.repo.path, "org/app");
        assert_eq!(r.reference, Resolved::Tag("v1.0.0".into()));
        assert_eq!(r.name(), "127.0.0.1:5000/org/app:v1.0.0");
        let r = ArtifactRef::parse("oci://127.0.0.1:5000/org/app").unwrap();
        assert_eq!(r.reference, Resolved::Tag("latest".into()));
        let d = format!("sha256:{}", "b".repeat(64));
        let r = ArtifactRef::parse(&format!("oci://ghcr.io/org/app@{d}")).unwrap();
        assert_eq!(r.reference, Resolved::Digest(d.clone()));
        assert_eq!(r.name(), format!("ghcr.io/org/app@{d}"));
        assert!(ArtifactRef::parse("ghcr.io/org/app:v1").is_err());
        assert!(ArtifactRef::parse("oci://ghcr.io/org/app:-bad").is_err());
        assert!(ArtifactRef::parse("oci://ghcr.io/org/app@sha256:abc").is_err());
        assert!(ArtifactRef::parse("oci://ghcr.io/Org/app:v1").is_err());
    }
}
