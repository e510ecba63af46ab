//! `opsgenie`: an alert (`/v2/alerts`) with `GenieKey` authorisation, the metadata plus the
//! severity as details, and an alias from the Provider UID, object and reason.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Request, Settings, parse_request_uri};
use crate::event::{Event, to_go_json};

#[derive(Serialize)]
struct Alert<'a> {
    message: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    alias: String,
    description: &'a str,
    details: BTreeMap<String, String>,
}

/// Hex SHA-256 of `<provider uid>/<kind>/<namespace>/<name>/<reason>`.
pub fn alias(provider_uid: &str, event: &Event) -> String {
    use sha2::Digest;
    let o = &event.involved_object;
    let key = format!(
        "{provider_uid}/{}/{}/{}/{}",
        o.kind, o.namespace, o.name, event.reason
    );
    hex::encode(sha2::Sha256::digest(key.as_bytes()))
}

pub fn build(s: &Settings, event: &Event) -> Result<Request, String> {
    parse_request_uri(&s.url).map_err(|e| format!("invalid Opsgenie hook URL {}: '{e}'", s.url))?;
    if s.token.is_empty() {
        return Err("empty Opsgenie apikey/token".into());
    }
    let mut details = event.metadata.clone();
    details.insert("severity".into(), event.severity.clone());
    let o = &event.involved_object;
    let payload = Alert {
        message: format!("{}/{}", o.kind, o.name),
        alias: alias(&s.provider_uid, event),
        description: &event.message,
        details,
    };
    let mut req = Request::post_json(&s.url, to_go_json(&payload));
    req.set("Authorization", format!("GenieKey {}", s.token));
    Ok(req)
}
