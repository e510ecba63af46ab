//! `msteams`: an Adaptive Card message for Power Automate workflows, or the legacy
//! MessageCard when the address is an Office 365 connector (`*.webhook.office.com`).

use serde::Serialize;

use super::{Request, Settings, object_title, parse_request_uri};
use crate::event::{Event, to_go_json};

#[derive(Serialize)]
struct MessageCard<'a> {
    #[serde(rename = "@type")]
    kind: &'a str,
    #[serde(rename = "@context")]
    context: &'a str,
    #[serde(rename = "themeColor")]
    theme_color: &'a str,
    summary: &'a str,
    sections: [Section<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Section<'a> {
    activity_title: &'a str,
    activity_subtitle: &'a str,
    facts: Vec<NameValue<'a>>,
}

#[derive(Serialize)]
struct NameValue<'a> {
    name: &'a str,
    value: &'a str,
}

#[derive(Serialize)]
struct Message<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    attachments: [CardAttachment<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CardAttachment<'a> {
    content_type: &'a str,
    content: Card<'a>,
}

#[derive(Serialize)]
struct Card<'a> {
    #[serde(rename = "$schema")]
    schema: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    version: &'a str,
    body: Vec<Element<'a>>,
    msteams: Width<'a>,
}

#[derive(Serialize)]
struct Width<'a> {
    width: &'a str,
}

/// A body element: Go embeds the container, text block and fact set structs (all fields
/// `omitempty`), so only the set ones appear, in this order.
#[derive(Serialize, Default)]
struct Element<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    items: Vec<Element<'a>>,
    #[serde(skip_serializing_if = "str::is_empty")]
    text: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    size: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    weight: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    color: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    wrap: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    facts: Vec<Fact<'a>>,
}

#[derive(Serialize)]
struct Fact<'a> {
    title: &'a str,
    value: &'a str,
}

/// Whether the address is a legacy Office 365 connector.
pub fn is_legacy_connector(url: &reqwest::Url) -> bool {
    url.host_str()
        .is_some_and(|h| h.ends_with(".webhook.office.com"))
}

pub fn build(s: &Settings, event: &Event) -> Result<Request, String> {
    let url = parse_request_uri(&s.url)
        .map_err(|e| format!("invalid MS Teams webhook URL {}: '{e}'", s.url))?;
    let title = object_title(event);
    let body = if is_legacy_connector(&url) {
        let facts = event
            .metadata
            .iter()
            .map(|(k, v)| NameValue { name: k, value: v })
            .collect();
        to_go_json(&MessageCard {
            kind: "MessageCard",
            context: "http://schema.org/extensions",
            theme_color: if event.severity == "error" {
                "FF0000"
            } else {
                "0076D7"
            },
            summary: &title,
            sections: [Section {
                activity_title: &event.message,
                activity_subtitle: &title,
                facts,
            }],
        })
    } else {
        // The summary first, then the other metadata sorted by key.
        let mut facts: Vec<Fact> = Vec::with_capacity(event.metadata.len());
        if let Some(summary) = event.metadata.get("summary") {
            facts.push(Fact {
                title: "summary",
                value: summary,
            });
        }
        facts.extend(
            event
                .metadata
                .iter()
                .filter(|(k, _)| k.as_str() != "summary")
                .map(|(k, v)| Fact { title: k, value: v }),
        );
        let items = vec![
            Element {
                kind: "TextBlock",
                text: &title,
                size: "large",
                weight: "bolder",
                wrap: true,
                ..Default::default()
            },
            Element {
                kind: "TextBlock",
                text: &event.message,
                color: if event.severity == "error" {
                    "attention"
                } else {
                    ""
                },
                wrap: true,
                ..Default::default()
            },
            Element {
                kind: "FactSet",
                facts,
                ..Default::default()
            },
        ];
        to_go_json(&Message {
            kind: "message",
            attachments: [CardAttachment {
                content_type: "application/vnd.microsoft.card.adaptive",
                content: Card {
                    schema: "http://adaptivecards.io/schemas/adaptive-card.json",
                    kind: "AdaptiveCard",
                    version: "1.4",
                    body: vec![Element {
                        kind: "Container",
                        items,
                        ..Default::default()
                    }],
                    msteams: Width { width: "Full" },
                },
            }],
        })
    };
    Ok(Request::post_json(&s.url, body))
}
