//! `lark`: an interactive card (title with the object, body with the message and metadata).

use serde::Serialize;

use super::{Request, Settings, object_title, parse_request_uri};
use crate::event::{Event, to_go_json};

#[derive(Serialize)]
struct Payload<'a> {
    msg_type: &'a str,
    card: Card<'a>,
}

#[derive(Serialize)]
struct Card<'a> {
    config: Config,
    header: Header<'a>,
    elements: [Element<'a>; 1],
}

#[derive(Serialize)]
struct Config {
    wide_screen_mode: bool,
}

#[derive(Serialize)]
struct Header<'a> {
    title: Text<'a>,
    template: &'a str,
}

#[derive(Serialize)]
struct Element<'a> {
    tag: &'a str,
    text: Text<'a>,
}

#[derive(Serialize)]
struct Text<'a> {
    tag: &'a str,
    content: String,
}

pub fn build(s: &Settings, event: &Event) -> Result<Request, String> {
    parse_request_uri(&s.url).map_err(|_| format!("invalid Slack hook URL {}", s.url))?;
    let (emoji, color) = if event.severity == "error" {
        ("🚨", "red")
    } else {
        ("💫", "turquoise")
    };
    let mut message = format!("**{}**\n\n", event.message);
    for (k, v) in &event.metadata {
        message.push_str(&format!("{k}: {v}\n"));
    }
    let payload = Payload {
        msg_type: "interactive",
        card: Card {
            config: Config {
                wide_screen_mode: true,
            },
            header: Header {
                title: Text {
                    tag: "plain_text",
                    content: format!("{emoji} {}", object_title(event)),
                },
                template: color,
            },
            elements: [Element {
                tag: "div",
                text: Text {
                    tag: "lark_md",
                    content: message,
                },
            }],
        },
    };
    Ok(Request::post_json(&s.url, to_go_json(&payload)))
}
