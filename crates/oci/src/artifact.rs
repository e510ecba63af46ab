//! The Flux artifact format and the operations of `ferroflux push/pull/tag/list artifact`,
//! as fluxcd/pkg `oci` (v0.68, go-containerregistry v0.21.6, what Flux v2.9 ships) lays them
//! out:
//!
//! - an OCI image manifest (`application/vnd.oci.image.manifest.v1+json`) with one layer, the
//!   artifact tarball (`application/vnd.cncf.flux.content.v1.tar+gzip`, see [`crate::build`]);
//! - the config blob `application/vnd.cncf.flux.config.v1+json` holding the empty image
//!   config go-containerregistry starts from (upstream's created time never reaches it: a
//!   non-image config media type keeps the base config blob as is);
//! - manifest annotations `org.opencontainers.image.created` (RFC 3339, the push time unless
//!   given), `.source` and `.revision` (always present, possibly empty), then the user's
//!   annotations, which may override them;
//! - the manifest serialised as Go's `encoding/json` does (field order, sorted map keys,
//!   `<`, `>`, `&`, U+2028/U+2029 escaped).

use std::collections::BTreeMap;
use std::path::Path;

use crate::client::{Registry, RegistryError};
use crate::{
    CREATED_ANNOTATION, FLUX_CONFIG_MEDIA_TYPE, FLUX_CONTENT_MEDIA_TYPE, REVISION_ANNOTATION,
    Resolved, SOURCE_ANNOTATION,
};

/// The OCI image manifest media type.
pub const OCI_MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// The config blob of every artifact `flux push artifact` pushes (go-containerregistry's
/// empty image config, serialised by Go).
pub const FLUX_CONFIG_BLOB: &[u8] = br#"{"architecture":"","created":"0001-01-01T00:00:00Z","os":"","rootfs":{"type":"layers","diff_ids":null},"config":{}}"#;

/// The `created` value of `--reproducible` pushes.
pub const REPRODUCIBLE_CREATED: &str = "1970-01-01T00:00:00Z";

/// Tag suffixes of cosign's signatures, attestations and SBOMs, left out of listings.
pub const COSIGN_TAG_SUFFIXES: [&str; 3] = [".att", ".sbom", ".sig"];

/// A failure of an artifact operation.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("error creating layer: {0}")]
    Build(#[from] crate::build::BuildError),
    #[error("invalid created timestamp \"{value}\": {reason}")]
    InvalidCreated { value: String, reason: String },
    #[error("{0}")]
    Registry(#[from] RegistryError),
    #[error("parsing manifest failed: {0}")]
    Manifest(String),
    #[error("no layers found in artifact")]
    NoLayers,
}

/// What a push writes into the manifest annotations.
#[derive(Clone, Debug, Default)]
pub struct Metadata {
    /// `org.opencontainers.image.created`; the push time when empty.
    pub created: String,
    /// `org.opencontainers.image.source`.
    pub source: String,
    /// `org.opencontainers.image.revision`.
    pub revision: String,
    /// Extra annotations (they win over the three above).
    pub annotations: BTreeMap<String, String>,
}

impl Metadata {
    /// The manifest annotations, as upstream's `ToAnnotations`.
    pub fn to_annotations(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::from([
            (CREATED_ANNOTATION.to_string(), self.created.clone()),
            (SOURCE_ANNOTATION.to_string(), self.source.clone()),
            (REVISION_ANNOTATION.to_string(), self.revision.clone()),
        ]);
        out.extend(self.annotations.clone());
        out
    }
}

/// A descriptor in a manifest.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub size: u64,
    pub digest: String,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// The fields of an image manifest the operations read.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    #[serde(default)]
    pub media_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

impl Manifest {
    pub fn parse(raw: &[u8]) -> Result<Self, ArtifactError> {
        serde_json::from_slice(raw).map_err(|e| ArtifactError::Manifest(e.to_string()))
    }

    /// `org.opencontainers.image.source`, when set.
    pub fn source(&self) -> &str {
        self.annotations
            .get(SOURCE_ANNOTATION)
            .map(String::as_str)
            .unwrap_or("")
    }

    /// `org.opencontainers.image.revision`, when set.
    pub fn revision(&self) -> &str {
        self.annotations
            .get(REVISION_ANNOTATION)
            .map(String::as_str)
            .unwrap_or("")
    }
}

/// A string as Go's `encoding/json` writes it (HTML-safe escaping).
pub fn go_json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn descriptor_json(media_type: &str, size: u64, digest: &str) -> String {
    format!(
        "{{\"mediaType\":{},\"size\":{size},\"digest\":{}}}",
        go_json_string(media_type),
        go_json_string(digest)
    )
}

/// The manifest of a one-layer artifact, serialised as go-containerregistry does.
pub fn manifest_json(
    config: (&str, u64, &str),
    layer: (&str, u64, &str),
    annotations: &BTreeMap<String, String>,
) -> Vec<u8> {
    let mut s = format!(
        "{{\"schemaVersion\":2,\"mediaType\":\"{OCI_MANIFEST_MEDIA_TYPE}\",\"config\":{},\"layers\":[{}]",
        descriptor_json(config.0, config.1, config.2),
        descriptor_json(layer.0, layer.1, layer.2)
    );
    if !annotations.is_empty() {
        let body: Vec<String> = annotations
            .iter()
            .map(|(k, v)| format!("{}:{}", go_json_string(k), go_json_string(v)))
            .collect();
        s.push_str(&format!(",\"annotations\":{{{}}}", body.join(",")));
    }
    s.push('}');
    s.into_bytes()
}

/// The current time as upstream writes `created` (RFC 3339, UTC, seconds).
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Checks an RFC 3339 timestamp (what upstream parses `created` with).
pub fn validate_created(value: &str) -> Result<(), ArtifactError> {
    value
        .parse::<jiff::Timestamp>()
        .map(|_| ())
        .map_err(|e| ArtifactError::InvalidCreated {
            value: value.to_string(),
            reason: e.to_string(),
        })
}

/// What a push produced.
#[derive(Clone, Debug)]
pub struct Pushed {
    /// The manifest digest.
    pub digest: String,
    /// The manifest as pushed.
    pub manifest: Vec<u8>,
    /// The layer's digest and size.
    pub layer_digest: String,
    pub layer_size: u64,
}

/// Builds the artifact of `path` (directory or file) and pushes it under `tag`: layer and
/// config blobs (each skipped when the repository has it), then the manifest.
pub async fn push(
    registry: &Registry,
    tag: &str,
    path: &Path,
    ignore_paths: &[String],
    meta: &Metadata,
) -> Result<Pushed, ArtifactError> {
    let mut meta = meta.clone();
    if meta.created.is_empty() {
        meta.created = now_rfc3339();
    }
    let mut annotations = meta.to_annotations();
    if annotations
        .get(CREATED_ANNOTATION)
        .is_none_or(String::is_empty)
    {
        annotations.insert(CREATED_ANNOTATION.to_string(), meta.created.clone());
    }
    validate_created(&annotations[CREATED_ANNOTATION])?;

    let (path, ignore) = (path.to_path_buf(), ignore_paths.to_vec());
    let (layer, built) =
        tokio::task::spawn_blocking(move || crate::build::build_to_vec(&path, &ignore))
            .await
            .map_err(|e| {
                ArtifactError::Registry(RegistryError::Registry(format!("build task failed: {e}")))
            })??;

    let config_digest = crate::build::sha256_digest(FLUX_CONFIG_BLOB);
    let manifest = manifest_json(
        (
            FLUX_CONFIG_MEDIA_TYPE,
            FLUX_CONFIG_BLOB.len() as u64,
            &config_digest,
        ),
        (FLUX_CONTENT_MEDIA_TYPE, built.size, &built.digest),
        &annotations,
    );
    registry.authorize_push().await?;
    registry
        .push_blob(bytes::Bytes::from(layer), &built.digest)
        .await?;
    registry
        .push_blob(bytes::Bytes::from_static(FLUX_CONFIG_BLOB), &config_digest)
        .await?;
    let digest = registry
        .push_manifest(
            &Resolved::Tag(tag.to_string()),
            manifest.clone(),
            OCI_MANIFEST_MEDIA_TYPE,
        )
        .await?;
    Ok(Pushed {
        digest,
        manifest,
        layer_digest: built.digest,
        layer_size: built.size,
    })
}

/// What a pull found.
#[derive(Clone, Debug)]
pub struct Pulled {
    /// The manifest digest.
    pub digest: String,
    pub manifest: Manifest,
    /// The layer written to the destination file.
    pub layer: Descriptor,
}

/// Pulls the manifest `reference` points at and writes its first layer to `dest` (at most
/// `limit` bytes, digest checked).
pub async fn pull_first_layer(
    registry: &Registry,
    reference: &Resolved,
    dest: &Path,
    limit: Option<u64>,
) -> Result<Pulled, ArtifactError> {
    let (raw, media_type, digest) = registry.pull_manifest(reference).await?;
    if crate::INDEX_MEDIA_TYPES.contains(&media_type.as_str()) {
        return Err(ArtifactError::Manifest(format!(
            "'{}' is an image index ({media_type}), not an artifact",
            registry.repository().digest_ref(&digest)
        )));
    }
    let manifest = Manifest::parse(&raw)?;
    let layer = manifest
        .layers
        .first()
        .ok_or(ArtifactError::NoLayers)?
        .clone();
    let oci_layer = oci_client::manifest::OciDescriptor {
        media_type: layer.media_type.clone(),
        digest: layer.digest.clone(),
        size: layer.size as i64,
        ..Default::default()
    };
    registry.blob_to_file(&oci_layer, dest, limit).await?;
    Ok(Pulled {
        digest,
        manifest,
        layer,
    })
}

/// Puts the manifest `reference` points at under the tag `new_tag` (the manifest is copied
/// byte for byte, so its digest stays).
pub async fn tag(
    registry: &Registry,
    reference: &Resolved,
    new_tag: &str,
) -> Result<String, ArtifactError> {
    let (raw, media_type, _) = registry.pull_manifest(reference).await?;
    registry.authorize_push().await?;
    let digest = registry
        .push_manifest(&Resolved::Tag(new_tag.to_string()), raw, &media_type)
        .await?;
    Ok(digest)
}

/// One listed artifact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listed {
    /// `registry/path:tag`.
    pub url: String,
    pub tag: String,
    pub digest: String,
    pub source: String,
    pub revision: String,
    pub created: String,
}

/// The tags of the repository in upstream's listing order (descending string order), cosign
/// tags left out, each kept when `keep` says so, with its manifest's digest and annotations.
pub async fn list(
    registry: &Registry,
    keep: impl Fn(&str) -> bool,
) -> Result<Vec<Listed>, ArtifactError> {
    let mut tags = registry.list_tags().await?;
    tags.sort_by(|a, b| b.cmp(a));
    let mut out = Vec::new();
    for tag in tags {
        if COSIGN_TAG_SUFFIXES.iter().any(|s| tag.ends_with(s)) || !keep(&tag) {
            continue;
        }
        let (raw, _, digest) = registry
            .pull_manifest(&Resolved::Tag(tag.clone()))
            .await
            .map_err(|e| ArtifactError::Manifest(format!("fetching manifest failed: {e}")))?;
        #[derive(serde::Deserialize, Default)]
        struct Annotated {
            #[serde(default)]
            annotations: BTreeMap<String, String>,
        }
        let m: Annotated =
            serde_json::from_slice(&raw).map_err(|e| ArtifactError::Manifest(e.to_string()))?;
        let get = |k: &str| m.annotations.get(k).cloned().unwrap_or_default();
        out.push(Listed {
            url: registry.repository().tag_ref(&tag),
            tag,
            digest,
            source: get(SOURCE_ANNOTATION),
            revision: get(REVISION_ANNOTATION),
            created: get(CREATED_ANNOTATION),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_blob_is_the_empty_image_config() {
        let v: serde_json::Value = serde_json::from_slice(FLUX_CONFIG_BLOB).unwrap();
        assert_eq!(v["rootfs"]["type"], "layers");
        assert!(v["rootfs"]["diff_ids"].is_null());
    }

    #[test]
    fn manifest_as_go_serialises_it() {
        let ann = Metadata {
            created: "2026-01-02T03:04:05Z".into(),
            source: "https://example.com/repo?a=1&b=<2>".into(),
            revision: "main@sha1:abc".into(),
            annotations: BTreeMap::from([("z.custom".into(), "x".into())]),
        }
        .to_annotations();
        let m = manifest_json(
            (FLUX_CONFIG_MEDIA_TYPE, 10, "sha256:c"),
            (FLUX_CONTENT_MEDIA_TYPE, 20, "sha256:l"),
            &ann,
        );
        assert_eq!(
            String::from_utf8(m.clone()).unwrap(),
            "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\
             \"config\":{\"mediaType\":\"application/vnd.cncf.flux.config.v1+json\",\"size\":10,\"digest\":\"sha256:c\"},\
             \"layers\":[{\"mediaType\":\"application/vnd.cncf.flux.content.v1.tar+gzip\",\"size\":20,\"digest\":\"sha256:l\"}],\
             \"annotations\":{\"org.opencontainers.image.created\":\"2026-01-02T03:04:05Z\",\
             \"org.opencontainers.image.revision\":\"main@sha1:abc\",\
             \"org.opencontainers.image.source\":\"https://example.com/repo?a=1\\u0026b=\\u003c2\\u003e\",\
             \"z.custom\":\"x\"}}"
        );
        let parsed = Manifest::parse(&m).unwrap();
        assert_eq!(parsed.source(), "https://example.com/repo?a=1&b=<2>");
        assert_eq!(parsed.revision(), "main@sha1:abc");
    }

    #[test]
    fn user_annotations_win_and_created_is_checked() {
        let meta = Metadata {
            created: "2026-01-02T03:04:05Z".into(),
            source: "s".into(),
            revision: "r".into(),
            annotations: BTreeMap::from([(SOURCE_ANNOTATION.into(), "mine".into())]),
        };
        assert_eq!(meta.to_annotations()[SOURCE_ANNOTATION], "mine");
        assert!(validate_created("2026-01-02T03:04:05Z").is_ok());
        assert!(validate_created("2026-01-02T03:04:05+02:00").is_ok());
        assert!(validate_created("yesterday").is_err());
        assert_eq!(now_rfc3339().len(), 20);
        assert_eq!(go_json_string("a\u{1}\u{2028}"), "\"a\\u0001\\u2028\"");
    }
}
