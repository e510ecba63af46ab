//! Helm's storage drivers `secret` and `configmap` (`pkg/storage/driver`): object names,
//! labels, and the gzip + base64 encoding of the release JSON.

use super::model::Release;
use base64::Engine;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{Read, Write};

/// The Secret type Helm's `secret` driver writes.
pub const SECRET_TYPE: &str = "helm.sh/release.v1";
/// The `owner` label value of every release object.
pub const OWNER: &str = "helm";
/// Labels Helm manages itself; other labels of a storage object are the release's labels.
pub const SYSTEM_LABELS: &[&str] = &[
    "name",
    "owner",
    "status",
    "version",
    "createdAt",
    "modifiedAt",
];
/// Decoded release JSON larger than this is refused (a release object is at most 1 MiB in
/// etcd; gzip of JSON seldom beats 20:1).
pub const MAX_DECODED: u64 = 64 * 1024 * 1024;

/// Errors reading or writing a release record.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("release data is not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("release data is not valid gzip: {0}")]
    Gzip(std::io::Error),
    #[error("release data is larger than {MAX_DECODED} bytes once decompressed")]
    TooLarge,
    #[error("release JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("storage object has no release data")]
    Missing,
}

/// `makeKey`: `sh.helm.release.v1.<name>.v<version>`.
pub fn object_name(release: &str, version: i64) -> String {
    format!("sh.helm.release.v1.{release}.v{version}")
}

/// `encodeRelease`: JSON, gzip at best compression, standard base64.
pub fn encode(rel: &Release) -> String {
    let json = rel.to_go_json();
    let mut gz = flate2::GzBuilder::new().write(Vec::new(), flate2::Compression::best());
    // writing to a Vec cannot fail
    let _ = gz.write_all(json.as_bytes());
    let bytes = gz.finish().unwrap_or_default();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `decodeRelease`: base64, gunzip when the gzip magic is there (releases stored before Helm
/// compressed them are plain JSON), JSON.
pub fn decode(data: &str) -> Result<Release, StorageError> {
    let b = base64::engine::general_purpose::STANDARD.decode(data.trim())?;
    let json = if b.len() > 3 && b[..3] == [0x1f, 0x8b, 0x08] {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&b[..])
            .take(MAX_DECODED + 1)
            .read_to_end(&mut out)
            .map_err(StorageError::Gzip)?;
        if out.len() as u64 > MAX_DECODED {
            return Err(StorageError::TooLarge);
        }
        out
    } else {
        b
    };
    Ok(Release::from_json(&json)?)
}

/// The labels Helm writes on a release object: the release's own labels, then `name`,
/// `owner`, `status`, `version`, and `createdAt` (on create) or `modifiedAt` (on update) in
/// Unix seconds.
pub fn labels(rel: &Release, create: bool, unix_now: i64) -> BTreeMap<String, String> {
    let mut l: BTreeMap<String, String> = rel
        .labels
        .iter()
        .filter(|(k, _)| !SYSTEM_LABELS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    l.insert(
        if create { "createdAt" } else { "modifiedAt" }.into(),
        unix_now.to_string(),
    );
    l.insert("name".into(), rel.name.clone());
    l.insert("owner".into(), OWNER.into());
    l.insert("status".into(), rel.status().to_string());
    l.insert("version".into(), rel.version.to_string());
    l
}

/// The Secret Helm's `secret` driver writes for `rel` (`newSecretsObject`); `data.release`
/// holds the encoded release, base64-encoded once more by the API as every Secret value.
pub fn secret(rel: &Release, namespace: &str, create: bool, unix_now: i64) -> Value {
    let encoded = encode(rel);
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": object_name(&rel.name, rel.version),
            "namespace": namespace,
            "labels": labels(rel, create, unix_now),
        },
        "type": SECRET_TYPE,
        "data": {"release": base64::engine::general_purpose::STANDARD.encode(encoded)},
    })
}

/// The ConfigMap Helm's `configmap` driver writes (`data.release` is the encoded release).
pub fn config_map(rel: &Release, namespace: &str, create: bool, unix_now: i64) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": object_name(&rel.name, rel.version),
            "namespace": namespace,
            "labels": labels(rel, create, unix_now),
        },
        "data": {"release": encode(rel)},
    })
}

/// A release from a storage object (Secret or ConfigMap as JSON): the record, with the
/// object's non-system labels as the release's labels.
pub fn from_object(obj: &Value) -> Result<Release, StorageError> {
    let data = obj
        .pointer("/data/release")
        .and_then(Value::as_str)
        .ok_or(StorageError::Missing)?;
    let is_secret = obj.get("kind").and_then(Value::as_str) == Some("Secret")
        || obj.get("type").and_then(Value::as_str).is_some();
    let mut rel = if is_secret {
        let inner = base64::engine::general_purpose::STANDARD.decode(data.trim())?;
        decode(&String::from_utf8_lossy(&inner))?
    } else {
        decode(data)?
    };
    if let Some(l) = obj.pointer("/metadata/labels").and_then(Value::as_object) {
        rel.labels = l
            .iter()
            .filter(|(k, _)| !SYSTEM_LABELS.contains(&k.as_str()))
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect();
    }
    Ok(rel)
}

/// The label selector of every release object of `name` (`owner=helm,name=<name>`).
pub fn selector(name: &str) -> String {
    format!("owner={OWNER},name={name}")
}
