//! `incident.io`: an alert event (`firing` for errors, `resolved` otherwise, deduplicated by
//! the object UID) with the metadata plus severity, reason and reporting controller; bearer
//! token. `Progressing` events are not sent.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Delivery, Request, Settings, object_title, parse_request_uri};
use crate::event::{Event, to_go_json};

#[derive(Serialize)]
struct Payload<'a> {
    title: String,
    status: &'a str,
    deduplication_key: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    description: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    metadata: BTreeMap<String, String>,
}

pub fn build(s: &Settings, event: &Event) -> Result<Delivery, String> {
    parse_request_uri(&s.url)
        .map_err(|e| format!("invalid incident.io alert source URL {}: '{e}'", s.url))?;
    if s.token.is_empty() {
        return Err("empty incident.io API token".into());
    }
    if event.reason == "Progressing" {
        return Ok(Delivery::Nothing);
    }
    let mut metadata = event.metadata.clone();
    metadata.insert("severity".into(), event.severity.clone());
    metadata.insert("reason".into(), event.reason.clone());
    if !event.reporting_controller.is_empty() {
        metadata.insert(
            "reportingController".into(),
            event.reporting_controller.clone(),
        );
    }
    let payload = Payload {
        title: format!("{}: {}", object_title(event), event.reason),
        status: if event.severity == "error" {
            "firing"
        } else {
            "resolved"
        },
        deduplication_key: &event.involved_object.uid,
        description: &event.message,
        metadata,
    };
    let mut req = Request::post_json(&s.url, to_go_json(&payload));
    req.set("Authorization", format!("Bearer {}", s.token));
    Ok(Delivery::Http(vec![req]))
}
