//! `telegram`: a MarkdownV2 message to the Bot API (`https://api.telegram.org/bot<token>/
//! sendMessage`); `channel` is the chat id, optionally `<chat>:<thread>`. As upstream, the
//! Provider's `address` is not read for this type: a Provider with an address left over from
//! another type still reaches Telegram (only tests move the Bot API, through
//! [`Settings::telegram_api_base`], which no Provider field sets).

use serde::Serialize;

use super::{Request, Settings};
use crate::event::{Event, to_go_json};

/// The Bot API base.
pub const API_BASE: &str = "https://api.telegram.org";

#[derive(Serialize)]
struct Payload<'a> {
    chat_id: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    message_thread_id: &'a str,
    text: String,
    parse_mode: &'a str,
}

/// MarkdownV2 escaping as upstream does it: a backslash before each special character.
pub fn escape(s: &str) -> String {
    const SPECIAL: &str = "\\.-_[]()~>`#+=|{}!*";
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if SPECIAL.contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

pub fn build(s: &Settings, event: &Event) -> Result<Request, String> {
    if s.channel.is_empty() {
        return Err("empty Telegram channel".into());
    }
    if s.token.is_empty() {
        return Err("empty Telegram token".into());
    }
    let emoji = if event.severity == "error" {
        "🚨"
    } else {
        "💫"
    };
    let o = &event.involved_object;
    let heading = format!(
        "{emoji} {}/{}/{}",
        o.kind.to_lowercase(),
        o.name,
        o.namespace
    );
    let mut metadata = String::new();
    for (k, v) in &event.metadata {
        metadata.push_str(&format!("\\- *{}*: {}\n", escape(k), escape(v)));
    }
    let text = format!(
        "*{}*\n{}\n{metadata}",
        escape(&heading),
        escape(&event.message)
    );
    let (chat, thread) = match s.channel.split_once(':') {
        Some((c, t)) => (c, t),
        None => (s.channel.as_str(), ""),
    };
    let base = if s.telegram_api_base.is_empty() {
        API_BASE
    } else {
        s.telegram_api_base.trim_end_matches('/')
    };
    let url = format!("{base}/bot{}/sendMessage", s.token);
    let payload = Payload {
        chat_id: chat,
        message_thread_id: thread,
        text,
        parse_mode: "MarkdownV2",
    };
    Ok(Request::post_json(url, to_go_json(&payload)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn address_is_not_read() {
        let s = super::Settings {
            url: "http://elsewhere.example/".into(),
            channel: "-1".into(),
            token: "123:ABC".into(),
            ..Default::default()
        };
        let req = super::build(&s, &crate::event::Event::default()).unwrap();
        assert_eq!(req.url, "https://api.telegram.org/bot123:ABC/sendMessage");
    }

    #[test]
    fn escapes_markdown_v2() {
        assert_eq!(super::escape("a.b-c_d!"), "a\\.b\\-c\\_d\\!");
        assert_eq!(super::escape("x\\y"), "x\\\\y");
    }
}
