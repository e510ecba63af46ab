//! The artifact a source publishes in `status.artifact` (upstream `meta.Artifact`).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Pattern of an artifact digest: `<algorithm>:<hex or base64url checksum>`.
pub const DIGEST_PATTERN: &str = r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$";

/// A file produced by a source reconciliation and served over HTTP to its consumers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    /// Path of the file relative to the storage root (`<kind>/<namespace>/<name>/<file>`).
    pub path: String,
    /// Address the file can be downloaded from.
    pub url: String,
    /// Origin revision the file was built from, e.g. `main@sha1:<hex>` or a chart version.
    pub revision: String,
    /// Checksum of the file, `<algorithm>:<checksum>`; consumers must verify it after download.
    #[schemars(regex(pattern = DIGEST_PATTERN))]
    pub digest: String,
    /// When the artifact was last written.
    pub last_update_time: Time,
    /// Size of the file in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    /// Extra information about the origin, such as OCI manifest annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
}

impl Artifact {
    /// True if both artifacts name the same revision with the same digest.
    pub fn same_revision_and_digest(&self, other: &Artifact) -> bool {
        self.revision == other.revision && self.digest == other.digest
    }

    /// The hex (or encoded) checksum after the `<algorithm>:` prefix of the digest.
    pub fn digest_checksum(&self) -> Option<&str> {
        self.digest.split_once(':').map(|(_, sum)| sum)
    }

    /// The algorithm named in the digest (`sha256`, ...).
    pub fn digest_algorithm(&self) -> Option<&str> {
        self.digest.split_once(':').map(|(algo, _)| algo)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_parts() {
        let a = Artifact {
            path: "gitrepository/ns/name/abc.tar.gz".into(),
            url: "http://source/gitrepository/ns/name/abc.tar.gz".into(),
            revision: "main@sha1:abc".into(),
            digest: "sha256:abc".into(),
            last_update_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ),
            size: None,
            metadata: None,
        };
        assert_eq!(a.digest_algorithm(), Some("sha256"));
        assert_eq!(a.digest_checksum(), Some("abc"));
        let b = Artifact {
            digest: "nocolon".into(),
            ..a.clone()
        };
        assert_eq!(b.digest_checksum(), None);
        assert!(a.same_revision_and_digest(&a.clone()));
        assert!(!a.same_revision_and_digest(&b));
    }
}
