//! `grafana`: an annotation (`/api/annotations`) tagged with `flux`, the reporting
//! controller, the metadata (`:` replaced by `|`) and kind, name and namespace.

use serde::Serialize;

use super::{Request, Settings, object_title, parse_request_uri};
use crate::event::{Event, to_go_json};

#[derive(Serialize)]
struct Payload {
    when: i64,
    text: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<String>,
}

pub fn build(s: &Settings, event: &Event) -> Result<Request, String> {
    parse_request_uri(&s.url).map_err(|_| format!("invalid Grafana URL {}", s.url))?;
    let o = &event.involved_object;
    let mut tags = vec!["flux".to_string(), event.reporting_controller.clone()];
    for (k, v) in &event.metadata {
        tags.push(format!("{}: {}", k.replace(':', "|"), v.replace(':', "|")));
    }
    tags.push(format!("kind: {}", o.kind));
    tags.push(format!("name: {}", o.name));
    tags.push(format!("namespace: {}", o.namespace));
    let payload = Payload {
        when: event.unix(),
        text: object_title(event),
        tags,
    };
    let mut req = Request::post_json(&s.url, to_go_json(&payload));
    if !s.username.is_empty() && !s.password.is_empty() && s.token.is_empty() {
        use base64::Engine;
        let v = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", s.username, s.password));
        req.add("Authorization", format!("Basic {v}"));
    }
    if !s.token.is_empty() {
        req.add("Authorization", format!("Bearer {}", s.token));
    }
    Ok(req)
}
