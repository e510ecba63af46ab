//! `zulip`: a stream message (`<address host>/api/v1/messages`, form-encoded) to the
//! `<channel>/<topic>` in `channel`, with the Markdown post upstream formats, basic auth from
//! username/password.

use super::{Request, Settings};
use crate::event::Event;

/// The Markdown post shared by Zulip (and upstream's change request comments).
pub fn markdown_post(event: &Event) -> String {
    let emoji = if event.severity == "error" {
        "⚠️"
    } else {
        "ℹ️"
    };
    let o = &event.involved_object;
    let mut lines = String::new();
    for (k, v) in &event.metadata {
        if k != "change_request" {
            lines.push_str(&format!("* `{k}`: {v}\n"));
        }
    }
    format!(
        "## Flux Status\n\n{emoji} {}/{}/{}\n\n{}\n\nMetadata:\n{lines}",
        o.kind, o.namespace, o.name, event.message
    )
}

/// Go's `url.QueryEscape`.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Go's `url.Values.Encode` (keys sorted).
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    let mut sorted: Vec<&(&str, &str)> = pairs.iter().collect();
    sorted.sort_by_key(|(k, _)| *k);
    sorted
        .iter()
        .map(|(k, v)| format!("{}={}", query_escape(k), query_escape(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub fn build(s: &Settings, event: &Event) -> Result<Request, String> {
    let mut url =
        reqwest::Url::parse(&s.url).map_err(|e| format!("invalid Zulip endpoint URL: {e}"))?;
    url.set_path("/api/v1/messages");
    let Some((channel, topic)) = s
        .channel
        .split_once('/')
        .filter(|(c, t)| !c.is_empty() && !t.is_empty())
    else {
        return Err(format!(
            "invalid Zulip channel format, expected <channel>/<topic>, got '{}'",
            s.channel
        ));
    };
    let content = markdown_post(event);
    let body = form_encode(&[
        ("type", "stream"),
        ("to", channel),
        ("topic", topic),
        ("content", &content),
    ]);
    let mut req = Request::post_json(url.to_string(), body.into_bytes());
    req.set("Content-Type", "application/x-www-form-urlencoded");
    if !s.username.is_empty() || !s.password.is_empty() {
        req.basic_auth(&s.username, &s.password);
    }
    Ok(req)
}
