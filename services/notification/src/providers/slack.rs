//! `slack`, `discord` and `rocket`: Slack-compatible attachments. Discord gets the payload on
//! `<address>/slack`; Slack's Web API (`chat.postMessage`) is called with the token as bearer and
//! its `{"ok": ...}` answer is checked.

use serde::Serialize;

use super::{Request, Settings, Validate, object_title, parse_request_uri};
use crate::event::{Event, to_go_json};

#[derive(Serialize)]
struct Payload<'a> {
    channel: &'a str,
    username: &'a str,
    icon_url: &'a str,
    icon_emoji: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    text: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    attachments: Vec<Attachment<'a>>,
}

#[derive(Serialize)]
struct Attachment<'a> {
    fallback: String,
    color: &'a str,
    author_name: String,
    text: &'a str,
    mrkdwn_in: [&'a str; 1],
    fields: Vec<Field<'a>>,
}

#[derive(Serialize)]
struct Field<'a> {
    title: &'a str,
    value: &'a str,
    short: bool,
}

fn fields(event: &Event) -> Vec<Field<'_>> {
    event
        .metadata
        .iter()
        .map(|(k, v)| Field {
            title: k,
            value: v,
            short: false,
        })
        .collect()
}

fn attachment<'a>(event: &'a Event, color: &'a str, fallback: bool) -> Attachment<'a> {
    let author = object_title(event);
    Attachment {
        fallback: if fallback {
            format!(
                "{author}: {}",
                event.message.split('\n').next().unwrap_or_default()
            )
        } else {
            String::new()
        },
        color,
        author_name: author,
        text: &event.message,
        mrkdwn_in: ["text"],
        fields: fields(event),
    }
}

fn good_or_danger(event: &Event) -> &'static str {
    if event.severity == "error" {
        "danger"
    } else {
        "good"
    }
}

/// The Slack Web API endpoint whose JSON answer is checked.
pub const SLACK_API: &str = "https://slack.com/api/chat.postMessage";

pub fn slack(s: &Settings, event: &Event) -> Result<Request, String> {
    parse_request_uri(&s.url).map_err(|e| format!("invalid Slack hook URL {}: '{e}'", s.url))?;
    let username = if s.username.is_empty() {
        event.reporting_controller.as_str()
    } else {
        s.username.as_str()
    };
    let payload = Payload {
        channel: &s.channel,
        username,
        icon_url: "",
        icon_emoji: "",
        text: "",
        attachments: vec![attachment(event, good_or_danger(event), true)],
    };
    let mut req = Request::post_json(&s.url, to_go_json(&payload));
    if !s.token.is_empty() {
        req.add("Authorization", format!("Bearer {}", s.token));
    }
    if s.url == SLACK_API {
        req.validate = Validate::SlackApi;
    }
    Ok(req)
}

/// Discord's Slack-compatible endpoint: `<address>/slack` unless the address already ends so.
pub fn discord_url(address: &str) -> Result<String, String> {
    let mut url = parse_request_uri(address)
        .map_err(|e| format!("invalid Discord hook URL {address}: '{e}'"))?;
    if !address.ends_with("/slack") {
        let path = url.path().trim_end_matches('/').to_string();
        url.set_path(&format!("{path}/slack"));
    }
    Ok(url.to_string())
}

pub fn discord(s: &Settings, event: &Event) -> Result<Request, String> {
    let url = discord_url(&s.url)?;
    let username = if s.username.is_empty() {
        event.reporting_controller.as_str()
    } else {
        s.username.as_str()
    };
    let payload = Payload {
        channel: "",
        username,
        icon_url: "",
        icon_emoji: "",
        text: "",
        attachments: vec![attachment(event, good_or_danger(event), false)],
    };
    Ok(Request::post_json(url, to_go_json(&payload)))
}

pub fn rocket(s: &Settings, event: &Event) -> Result<Request, String> {
    parse_request_uri(&s.url).map_err(|e| format!("invalid Rocket hook URL {}: '{e}'", s.url))?;
    let color = if event.severity == "error" {
        "#FF0000"
    } else {
        "#0076D7"
    };
    let payload = Payload {
        channel: &s.channel,
        username: &s.username,
        icon_url: "",
        icon_emoji: "",
        text: "",
        attachments: vec![attachment(event, color, false)],
    };
    Ok(Request::post_json(&s.url, to_go_json(&payload)))
}
