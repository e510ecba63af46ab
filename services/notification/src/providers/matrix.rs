//! `matrix`: an `m.text` message PUT to `<homeserver>/_matrix/client/r0/rooms/<room>/send/
//! m.room.message/<txn>`, the transaction id being the SHA-1 of the event JSON.

use serde::Serialize;

use super::{Request, Settings, object_title, parse_request_uri};
use crate::event::{Event, to_go_json};

#[derive(Serialize)]
struct Payload {
    body: String,
    msgtype: &'static str,
}

pub fn build(s: &Settings, event: &Event) -> Result<Request, String> {
    parse_request_uri(&s.url)
        .map_err(|e| format!("invalid Matrix homeserver URL {}: '{e}'", s.url))?;
    let txn = {
        let d = aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
            &event.to_go_json(),
        );
        hex::encode(d.as_ref())
    };
    let url = format!(
        "{}/_matrix/client/r0/rooms/{}/send/m.room.message/{txn}",
        s.url, s.channel
    );
    let emoji = if event.severity == "error" {
        "🚨"
    } else {
        "💫"
    };
    let mut metadata = String::new();
    for (k, v) in &event.metadata {
        metadata.push_str(&format!("- {k}: {v}\n"));
    }
    let body = format!(
        "{emoji} {}\n{}\n{metadata}",
        object_title(event),
        event.message
    );
    let mut req = Request::post_json(
        url,
        to_go_json(&Payload {
            body,
            msgtype: "m.text",
        }),
    );
    req.method = "PUT";
    req.add("Authorization", format!("Bearer {}", s.token));
    Ok(req)
}
