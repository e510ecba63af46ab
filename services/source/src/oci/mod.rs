//! OCI registries for OCIRepository: repository URLs, reference resolution (digest > SemVer >
//! tag > `latest`), the platform choice in multi-arch indexes, registry credentials
//! (`auth`) and the registry client on oci-client (`client`).

pub mod auth;
pub mod client;
pub mod cosign;

use crate::semver::{Constraint, Version};

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

/// Helm charts map SemVer `+` to `_` in OCI tags (`+` is not allowed in tags); upstream reads
/// `_` as `+` when the layer selector asks for Helm chart content.
pub fn tag_to_semver(tag: &str, media_type: &str) -> String {
    if media_type == HELM_CHART_CONTENT_MEDIA_TYPE {
        tag.replace('_', "+")
    } else {
        tag.to_string()
    }
}

/// A tag that is a strict SemVer version (three numeric parts, no leading zeros, an optional
/// `v` prefix), as fluxcd/pkg/version's ParseVersion accepts.
pub fn strict_version(tag: &str) -> Option<Version> {
    let body = tag.strip_prefix('v').unwrap_or(tag);
    let end = body.find(['-', '+']).unwrap_or(body.len());
    let core: Vec<&str> = body[..end].split('.').collect();
    if core.len() != 3
        || core.iter().any(|p| {
            p.is_empty()
                || !p.bytes().all(|b| b.is_ascii_digit())
                || (p.len() > 1 && p.starts_with('0'))
        })
    {
        return None;
    }
    let rest = &body[end..];
    if rest == "-" || rest == "+" || rest.ends_with('.') || rest.contains("..") {
        return None;
    }
    Version::parse(body)
}

/// Picks the highest tag matching `range` among `tags` (those matching `filter`, a regular
/// expression, when given). Errors carry upstream's words.
pub fn select_semver_tag(
    tags: &[String],
    range: &str,
    filter: Option<&str>,
    media_type: &str,
) -> Result<String, String> {
    let filter = match filter.filter(|f| !f.is_empty()) {
        Some(f) => Some(regex::Regex::new(f).map_err(|e| one_line(&e.to_string()))?),
        None => None,
    };
    let constraint =
        Constraint::parse(range).map_err(|e| format!("semver '{range}' parse error: {e}"))?;
    let mut best: Option<(Version, &String)> = None;
    for tag in tags {
        if filter.as_ref().is_some_and(|re| !re.is_match(tag)) {
            continue;
        }
        let Some(v) = strict_version(&tag_to_semver(tag, media_type)) else {
            continue;
        };
        if !constraint.matches(&v) {
            continue;
        }
        if best.as_ref().is_none_or(|(b, _)| v > *b) {
            best = Some((v, tag));
        }
    }
    best.map(|(_, t)| t.clone())
        .ok_or_else(|| format!("no match found for semver: {range}"))
}

fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(": ")
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
    fn semver_selection_with_filter_and_helm_tags() {
        let tags: Vec<String> = [
            "latest",
            "6.0.0",
            "6.1.0",
            "6.1.1-rc.1",
            "v6.2.0",
            "7.0.0",
            "6.3",
            "06.4.0",
            "6.1.5-dev",
            "6.1.4_build.1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(select_semver_tag(&tags, "6.x", None, "").unwrap(), "v6.2.0");
        assert_eq!(
            select_semver_tag(&tags, ">=6.0.0", None, "").unwrap(),
            "7.0.0"
        );
        assert_eq!(
            select_semver_tag(&tags, ">=6.1.0-0", Some(".*-dev$"), "").unwrap(),
            "6.1.5-dev"
        );
        assert_eq!(
            select_semver_tag(&tags, "~6.1.0", None, "").unwrap(),
            "6.1.0",
            "6.1.4_build.1 is not a version for plain artifacts"
        );
        assert_eq!(
            select_semver_tag(&tags, "~6.1.0", None, HELM_CHART_CONTENT_MEDIA_TYPE).unwrap(),
            "6.1.4_build.1"
        );
        assert_eq!(
            select_semver_tag(&tags, ">=8.0.0", None, "").unwrap_err(),
            "no match found for semver: >=8.0.0"
        );
        assert!(
            select_semver_tag(&tags, "not a range", None, "")
                .unwrap_err()
                .starts_with("semver 'not a range' parse error")
        );
        assert!(select_semver_tag(&tags, "*", Some("(["), "").is_err());
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
}
