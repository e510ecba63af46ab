//! `googlechat`: a card with the object as title, the reporting controller as subtitle, the
//! message (red for errors) and the metadata as key/value widgets.

use serde::Serialize;

use super::{Request, Settings, object_title, parse_request_uri};
use crate::event::{Event, to_go_json};

#[derive(Serialize)]
struct Payload<'a> {
    cards: [Card<'a>; 1],
}

#[derive(Serialize)]
struct Card<'a> {
    header: Header<'a>,
    sections: Vec<Section<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Header<'a> {
    title: String,
    subtitle: &'a str,
    image_url: Option<&'a str>,
    image_style: Option<&'a str>,
}

#[derive(Serialize)]
struct Section<'a> {
    header: &'a str,
    widgets: Vec<Widget<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Widget<'a> {
    text_paragraph: Option<TextParagraph>,
    key_value: Option<KeyValue<'a>>,
}

#[derive(Serialize)]
struct TextParagraph {
    text: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct KeyValue<'a> {
    top_label: &'a str,
    content: &'a str,
    #[serde(rename = "contentMultiline")]
    content_multiline: bool,
    bottom_label: Option<&'a str>,
    icon: Option<&'a str>,
}

pub fn build(s: &Settings, event: &Event) -> Result<Request, String> {
    parse_request_uri(&s.url).map_err(|_| format!("invalid Google Chat hook URL {}", s.url))?;
    let text = if event.severity == "error" {
        format!("<font color=\"#ff0000\">{}</font>", event.message)
    } else {
        event.message.clone()
    };
    let mut sections = vec![Section {
        header: "",
        widgets: vec![Widget {
            text_paragraph: Some(TextParagraph { text }),
            key_value: None,
        }],
    }];
    if !event.metadata.is_empty() {
        sections.push(Section {
            header: "",
            widgets: event
                .metadata
                .iter()
                .map(|(k, v)| Widget {
                    text_paragraph: None,
                    key_value: Some(KeyValue {
                        top_label: k,
                        content: v,
                        content_multiline: false,
                        bottom_label: None,
                        icon: None,
                    }),
                })
                .collect(),
        });
    }
    let payload = Payload {
        cards: [Card {
            header: Header {
                title: object_title(event),
                subtitle: &event.reporting_controller,
                image_url: None,
                image_style: None,
            },
            sections,
        }],
    };
    Ok(Request::post_json(&s.url, to_go_json(&payload)))
}
