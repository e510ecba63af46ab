//! The Flux kinds the workflow commands handle, with what `flux` prints for each: the kind name,
//! the "human" kind of its progress lines, the revision column and the message of `get`.

use serde_json::Value;

/// How a kind's `get` table and reconcile messages read its status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// GitRepository, OCIRepository, Bucket: `status.artifact.revision`, hex truncated.
    Source,
    /// HelmRepository: as a source; `type: oci` ones are static ("Helm repository is Ready").
    HelmRepository,
    /// HelmChart: artifact revision, not truncated (a chart version).
    HelmChart,
    /// ExternalArtifact: REVISION and SOURCE columns, no SUSPENDED.
    ExternalArtifact,
    Kustomization,
    HelmRelease,
    /// Alert and Provider (v1beta3): static, always Ready.
    Alert,
    Provider,
    Receiver,
}

/// A Flux kind.
#[derive(Debug)]
pub struct Kind {
    pub kind: &'static str,
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    /// flux's `humanKind`: "source git", "kustomization", "alert provider", ...
    pub human: &'static str,
    pub family: Family,
}

impl Kind {
    pub fn api_version(&self) -> String {
        format!("{}/{}", self.group, self.version)
    }

    /// Sets `apiVersion` and `kind` on an object read from a list or watch.
    pub fn stamp(&self, obj: &mut Value) {
        if let Some(o) = obj.as_object_mut() {
            if !o.contains_key("kind") {
                o.insert("kind".into(), Value::String(self.kind.to_string()));
            }
            if !o.contains_key("apiVersion") {
                o.insert("apiVersion".into(), Value::String(self.api_version()));
            }
        }
    }

    /// True if objects of this kind have no reconciler status to wait for.
    pub fn is_static(&self, obj: &Value) -> bool {
        match self.family {
            Family::Alert | Family::Provider => true,
            Family::HelmRepository => str_at(obj, "/spec/type") == Some("oci"),
            _ => false,
        }
    }

    /// The revision `flux get` shows (before hex truncation).
    pub fn revision(&self, obj: &Value) -> String {
        let s = match self.family {
            Family::Kustomization => str_at(obj, "/status/lastAppliedRevision"),
            Family::HelmRelease => return helmrelease_revision(obj),
            Family::Alert | Family::Provider | Family::Receiver => None,
            _ => str_at(obj, "/status/artifact/revision"),
        };
        s.unwrap_or_default().to_string()
    }

    /// What `flux reconcile`/`resume` prints once the object is ready.
    pub fn success_message(&self, obj: &Value) -> String {
        match self.family {
            Family::Kustomization | Family::HelmRelease => {
                format!("applied revision {}", self.revision(obj))
            }
            Family::HelmRepository if self.is_static(obj) => ready_condition(obj)
                .map(|(_, m)| m.to_string())
                .unwrap_or_default(),
            Family::Alert => "Alert reconciliation completed".into(),
            Family::Provider => "Provider reconciliation completed".into(),
            Family::Receiver => "Receiver reconciliation completed".into(),
            _ => format!("fetched revision {}", self.revision(obj)),
        }
    }
}

/// A HelmRelease's revision: the chart version of the latest history snapshot, else the last
/// attempted revision.
pub fn helmrelease_revision(obj: &Value) -> String {
    obj.pointer("/status/history/0/chartVersion")
        .and_then(Value::as_str)
        .or_else(|| str_at(obj, "/status/lastAttemptedRevision"))
        .unwrap_or_default()
        .to_string()
}

pub fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

pub fn name(obj: &Value) -> &str {
    str_at(obj, "/metadata/name").unwrap_or_default()
}

pub fn namespace(obj: &Value) -> &str {
    str_at(obj, "/metadata/namespace").unwrap_or_default()
}

pub fn suspended(obj: &Value) -> bool {
    obj.pointer("/spec/suspend")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// The condition of `type_` (exact match): (status, message).
pub fn condition<'a>(obj: &'a Value, type_: &str) -> Option<(&'a str, &'a str)> {
    obj.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
        .map(|c| {
            (
                c.get("status").and_then(Value::as_str).unwrap_or_default(),
                c.get("message").and_then(Value::as_str).unwrap_or_default(),
            )
        })
}

pub fn ready_condition(obj: &Value) -> Option<(&str, &str)> {
    condition(obj, "Ready")
}

const fn k(
    kind: &'static str,
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    human: &'static str,
    family: Family,
) -> Kind {
    Kind {
        kind,
        group,
        version,
        plural,
        human,
        family,
    }
}

const SOURCE: &str = "source.toolkit.fluxcd.io";
const NOTIFICATION: &str = "notification.toolkit.fluxcd.io";

pub static GIT: Kind = k(
    "GitRepository",
    SOURCE,
    "v1",
    "gitrepositories",
    "source git",
    Family::Source,
);
pub static OCI: Kind = k(
    "OCIRepository",
    SOURCE,
    "v1",
    "ocirepositories",
    "source oci",
    Family::Source,
);
pub static BUCKET: Kind = k(
    "Bucket",
    SOURCE,
    "v1",
    "buckets",
    "source bucket",
    Family::Source,
);
pub static HELMREPO: Kind = k(
    "HelmRepository",
    SOURCE,
    "v1",
    "helmrepositories",
    "source helm",
    Family::HelmRepository,
);
pub static CHART: Kind = k(
    "HelmChart",
    SOURCE,
    "v1",
    "helmcharts",
    "source chart",
    Family::HelmChart,
);
pub static EXTERNAL: Kind = k(
    "ExternalArtifact",
    SOURCE,
    "v1",
    "externalartifacts",
    "source external-artifact",
    Family::ExternalArtifact,
);
pub static KUSTOMIZATION: Kind = k(
    "Kustomization",
    "kustomize.toolkit.fluxcd.io",
    "v1",
    "kustomizations",
    "kustomization",
    Family::Kustomization,
);
pub static HELMRELEASE: Kind = k(
    "HelmRelease",
    "helm.toolkit.fluxcd.io",
    "v2",
    "helmreleases",
    "helmrelease",
    Family::HelmRelease,
);
pub static RECEIVER: Kind = k(
    "Receiver",
    NOTIFICATION,
    "v1",
    "receivers",
    "receiver",
    Family::Receiver,
);
pub static PROVIDER: Kind = k(
    "Provider",
    NOTIFICATION,
    "v1beta3",
    "providers",
    "alert provider",
    Family::Provider,
);
pub static ALERT: Kind = k(
    "Alert",
    NOTIFICATION,
    "v1beta3",
    "alerts",
    "alert",
    Family::Alert,
);

/// The sources in the order `flux get sources all` prints them.
pub static SOURCES: [&Kind; 6] = [&OCI, &BUCKET, &GIT, &HELMREPO, &CHART, &EXTERNAL];
/// Every kind (sources first).
pub static ALL: [&Kind; 11] = [
    &OCI,
    &BUCKET,
    &GIT,
    &HELMREPO,
    &CHART,
    &EXTERNAL,
    &HELMRELEASE,
    &KUSTOMIZATION,
    &RECEIVER,
    &PROVIDER,
    &ALERT,
];

/// The kind of a Kind name, case-insensitively (`--for Kustomization/x`, inventories).
pub fn by_kind(kind: &str) -> Option<&'static Kind> {
    ALL.iter()
        .copied()
        .find(|k| k.kind.eq_ignore_ascii_case(kind))
}

/// Go's `TruncateHex`: every run of 40-128 lowercase hex digits between word boundaries is
/// shortened to its first 8.
pub fn truncate_hex(s: &str) -> String {
    if s.is_empty() {
        return String::new();
    }
    let b = s.as_bytes();
    let is_word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let is_hex = |c: u8| c.is_ascii_digit() || (b'a'..=b'f').contains(&c);
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut copied = 0;
    while i < b.len() {
        if is_hex(b[i]) && (i == 0 || !is_word(b[i - 1])) {
            let mut j = i;
            while j < b.len() && is_hex(b[j]) {
                j += 1;
            }
            let len = j - i;
            // `\b[a-f0-9]{40,128}\b`: a longer hex run still matches its first 128 only when
            // a word boundary follows, which it cannot inside a hex run; so exact lengths only.
            if (40..=128).contains(&len) && (j == b.len() || !is_word(b[j])) {
                out.push_str(&s[copied..i + 8]);
                copied = j;
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    out.push_str(&s[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncate_hex_as_flux() {
        let sha = "67e2c98a60dc92283531412a9e604dd4bae005a9";
        assert_eq!(
            truncate_hex(&format!("main@sha1:{sha}")),
            "main@sha1:67e2c98a"
        );
        assert_eq!(
            truncate_hex(&format!("Applied revision: main@sha1:{sha}")),
            "Applied revision: main@sha1:67e2c98a"
        );
        // too short, or glued to a word character: kept
        assert_eq!(truncate_hex("abc123"), "abc123");
        assert_eq!(truncate_hex(&format!("x{sha}")), format!("x{sha}"));
        let sha256 = "6c959c51ccbb952e5fe4737563338a0aaf975675dcf812912cf09e5463181871";
        assert_eq!(
            truncate_hex(&format!(
                "stored artifact for digest '6.3.5@sha256:{sha256}'"
            )),
            "stored artifact for digest '6.3.5@sha256:6c959c51'"
        );
        assert_eq!(truncate_hex(""), "");
    }
}
