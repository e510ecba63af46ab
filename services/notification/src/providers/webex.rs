//! `webex`: a Markdown message to the room in `channel`, authorised with the token.

use serde::Serialize;

use super::{Request, Settings, object_title, parse_request_uri};
use crate::event::{Event, to_go_json};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Payload<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    room_id: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    markdown: &'a str,
}

/// The Markdown upstream writes for an event.
pub fn markdown(event: &Event) -> String {
    let emoji = if event.severity == "error" {
        "💣"
    } else {
        "✅"
    };
    let mut out = format!("{emoji} **{}**\n{}\n", object_title(event), event.message);
    for (k, v) in &event.metadata {
        out.push_str(&format!(">**{k}**: {v}\n"));
    }
    out
}

pub fn build(s: &Settings, event: &Event) -> Result<Request, String> {
    parse_request_uri(&s.url).map_err(|e| format!("invalid Webex hook URL {}: '{e}'", s.url))?;
    let md = markdown(event);
    let mut req = Request::post_json(
        &s.url,
        to_go_json(&Payload {
            room_id: &s.channel,
            markdown: &md,
        }),
    );
    req.add("Authorization", format!("Bearer {}", s.token));
    Ok(req)
}
