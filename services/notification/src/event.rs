//! The event as notification-controller handles it (upstream's `fluxcd/pkg/apis/event`
//! `Event`), its JSON encoding as Go's `encoding/json` writes it (field order, `omitempty`,
//! HTML-safe escaping), and the intake-side rules: metadata clean-up, the rate-limit key and
//! the removal of internal metadata.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The API group of event metadata added through object annotations.
pub const EVENT_GROUP: &str = "event.toolkit.fluxcd.io";

/// The object an event is about (core/v1 ObjectReference; every field `omitempty`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub field_path: String,
}

impl ObjectRef {
    /// The API group of the object (`kustomize.toolkit.fluxcd.io` for
    /// `kustomize.toolkit.fluxcd.io/v1`, empty for core `v1`).
    pub fn group(&self) -> &str {
        match self.api_version.rsplit_once('/') {
            Some((group, _)) => group,
            None => "",
        }
    }

    /// `Kind/namespace/name`, as upstream names objects in warnings.
    pub fn display(&self) -> String {
        format!("{}/{}/{}", self.kind, self.namespace, self.name)
    }
}

/// An event; fields in upstream's order so the JSON is byte-identical.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    #[serde(default)]
    pub involved_object: ObjectRef,
    #[serde(default)]
    pub severity: String,
    /// RFC 3339 in UTC with second precision (metav1.Time); `None` is Go's zero time (`null`).
    #[serde(default, with = "go_time")]
    pub timestamp: Option<jiff::Timestamp>,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub reporting_controller: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reporting_instance: String,
}

/// metav1.Time: RFC 3339 in, RFC 3339 UTC seconds out, `null`/"" as the zero time.
mod go_time {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<jiff::Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&super::rfc3339(*t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<jiff::Timestamp>, D::Error> {
        let raw: Option<String> = Option::deserialize(d)?;
        match raw.as_deref() {
            None | Some("") => Ok(None),
            Some(s) => s
                .parse::<jiff::Timestamp>()
                .map(Some)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// Go's `time.RFC3339` of a UTC time, seconds precision.
pub fn rfc3339(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl Event {
    /// Seconds since the epoch (Go's `Time.Unix()`; the zero time is year 1).
    pub fn unix(&self) -> i64 {
        self.timestamp
            .map(|t| t.as_second())
            .unwrap_or(-62_135_596_800)
    }

    /// RFC 3339 of the timestamp (Go prints the zero time as `0001-01-01T00:00:00Z`).
    pub fn timestamp_rfc3339(&self) -> String {
        match self.timestamp {
            Some(t) => rfc3339(t),
            None => "0001-01-01T00:00:00Z".to_string(),
        }
    }

    /// Keeps only metadata keys prefixed with `event.toolkit.fluxcd.io/` or the involved
    /// object's group, without the object group's `checksum` and `digest` (upstream's
    /// cleanupMetadata).
    pub fn cleanup_metadata(&mut self) {
        let event_prefix = format!("{EVENT_GROUP}/");
        let object_prefix = format!("{}/", self.involved_object.group());
        let excluded = [
            format!("{object_prefix}checksum"),
            format!("{object_prefix}digest"),
        ];
        self.metadata.retain(|k, _| {
            !excluded.iter().any(|x| x.eq_ignore_ascii_case(k))
                && (k.starts_with(&event_prefix) || k.starts_with(&object_prefix))
        });
    }

    /// The rate-limit key: hex SHA-256 of name, namespace, kind, message and the object group's
    /// originRevision, revision and token metadata (upstream's eventKeyFunc).
    pub fn rate_limit_key(&self) -> String {
        use sha2::Digest;
        let o = &self.involved_object;
        let mut comps = vec![
            "event".to_string(),
            format!("name={}", o.name),
            format!("namespace={}", o.namespace),
            format!("kind={}", o.kind),
            format!("message={}", self.message),
        ];
        let group = o.group();
        for (key, label) in [
            ("originRevision", "originRevision"),
            ("revision", "revision"),
            ("token", "token"),
        ] {
            if let Some(v) = self.metadata.get(&format!("{group}/{key}")) {
                comps.push(format!("{label}={v}"));
            }
        }
        hex::encode(sha2::Sha256::digest(comps.join("/").as_bytes()))
    }

    /// Drops the object group's `token` metadata before routing (upstream's
    /// excludeInternalMetadata).
    pub fn exclude_internal_metadata(&mut self) {
        let key = format!("{}/token", self.involved_object.group());
        self.metadata.remove(&key);
    }

    /// Go's `json.Marshal` of the event.
    pub fn to_go_json(&self) -> Vec<u8> {
        to_go_json(self)
    }
}

impl From<ferroflux_proto::Event> for Event {
    fn from(e: ferroflux_proto::Event) -> Self {
        let o = e.involved_object.unwrap_or_default();
        Event {
            involved_object: ObjectRef {
                kind: o.kind,
                namespace: o.namespace,
                name: o.name,
                uid: o.uid,
                api_version: o.api_version,
                resource_version: o.resource_version,
                field_path: String::new(),
            },
            severity: e.severity,
            timestamp: e.timestamp.parse().ok(),
            message: e.message,
            reason: e.reason,
            metadata: e.metadata.into_iter().collect(),
            reporting_controller: e.reporting_controller,
            reporting_instance: e.reporting_instance,
        }
    }
}

/// A serde_json formatter that escapes like Go's `encoding/json` (`<`, `>`, `&`, U+2028 and
/// U+2029 as `\u` sequences).
struct GoFormatter;

impl serde_json::ser::Formatter for GoFormatter {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let esc = match c {
                '<' => "\\u003c",
                '>' => "\\u003e",
                '&' => "\\u0026",
                '\u{2028}' => "\\u2028",
                '\u{2029}' => "\\u2029",
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..i])?;
            writer.write_all(esc.as_bytes())?;
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// Serialises `value` as Go's `json.Marshal` would (struct fields in declaration order, map
/// keys sorted, HTML-safe escapes).
pub fn to_go_json<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, GoFormatter);
    // Serialising plain data into a Vec cannot fail.
    if value.serialize(&mut ser).is_err() {
        out.clear();
    }
    out
}

/// Replaces every occurrence of `token` in `text` with `*****` (upstream's masktoken: the token
/// and any repeats of its last character).
pub fn mask_token(text: &str, token: &str) -> String {
    if token.is_empty() {
        return text.to_string();
    }
    let last = token.chars().last().unwrap_or_default();
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find(token) {
        out.push_str(&rest[..pos]);
        out.push_str("*****");
        let mut after = &rest[pos + token.len()..];
        while let Some(stripped) = after.strip_prefix(last) {
            after = stripped;
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Event {
        serde_json::from_value(serde_json::json!({
            "involvedObject": {"kind": "Kustomization", "namespace": "apps", "name": "podinfo",
                               "uid": "u1", "apiVersion": "kustomize.toolkit.fluxcd.io/v1"},
            "severity": "info", "timestamp": "2026-01-01T00:00:00.5+01:00", "message": "a <b> & c",
            "reason": "ReconciliationSucceeded",
            "metadata": {
                "kustomize.toolkit.fluxcd.io/revision": "main@sha1:abc",
                "kustomize.toolkit.fluxcd.io/checksum": "x",
                "kustomize.toolkit.fluxcd.io/token": "t",
                "event.toolkit.fluxcd.io/env": "prod",
                "other.io/x": "dropped"
            },
            "reportingController": "kustomize-controller"
        }))
        .unwrap()
    }

    #[test]
    fn json_is_what_go_writes() {
        let mut e = sample();
        e.metadata.clear();
        let json = String::from_utf8(e.to_go_json()).unwrap();
        assert_eq!(
            json,
            r#"{"involvedObject":{"kind":"Kustomization","namespace":"apps","name":"podinfo","uid":"u1","apiVersion":"kustomize.toolkit.fluxcd.io/v1"},"severity":"info","timestamp":"2025-12-31T23:00:00Z","message":"a \u003cb\u003e \u0026 c","reason":"ReconciliationSucceeded","reportingController":"kustomize-controller"}"#
        );
    }

    #[test]
    fn cleanup_keeps_group_keys_and_drops_checksum() {
        let mut e = sample();
        e.cleanup_metadata();
        let keys: Vec<&str> = e.metadata.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "event.toolkit.fluxcd.io/env",
                "kustomize.toolkit.fluxcd.io/revision",
                "kustomize.toolkit.fluxcd.io/token"
            ]
        );
        e.exclude_internal_metadata();
        assert!(!e.metadata.contains_key("kustomize.toolkit.fluxcd.io/token"));
    }

    #[test]
    fn rate_limit_key_is_upstreams() {
        use sha2::Digest;
        let mut e = sample();
        e.cleanup_metadata();
        let expected = hex::encode(sha2::Sha256::digest(
            b"event/name=podinfo/namespace=apps/kind=Kustomization/message=a <b> & c/revision=main@sha1:abc/token=t",
        ));
        assert_eq!(e.rate_limit_key(), expected);
        let mut other = e.clone();
        other.metadata.insert(
            "kustomize.toolkit.fluxcd.io/revision".into(),
            "main@sha1:def".into(),
        );
        assert_ne!(other.rate_limit_key(), e.rate_limit_key());
    }

    #[test]
    fn masks_tokens() {
        assert_eq!(
            mask_token("POST https://x/botS3CRET/send: S3CRETT failed", "S3CRET"),
            "POST https://x/bot*****/send: ***** failed"
        );
        assert_eq!(mask_token("no token", ""), "no token");
    }
}
