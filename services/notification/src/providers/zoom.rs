//! `zoom`: a Team Chat incoming webhook message (`format=full` added to the address), the
//! verification token as `Authorization`.

use serde::Serialize;

use super::{Request, Settings, object_title, parse_request_uri};
use crate::event::{Event, to_go_json};

#[derive(Serialize)]
struct Payload<'a> {
    content: Content<'a>,
}

#[derive(Serialize)]
struct Content<'a> {
    head: Head<'a>,
    body: Vec<Item<'a>>,
}

#[derive(Serialize)]
struct Head<'a> {
    text: String,
    sub_head: SubHead<'a>,
}

#[derive(Serialize)]
struct SubHead<'a> {
    text: &'a str,
}

#[derive(Serialize)]
struct Item<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    text: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    items: Vec<Field<'a>>,
}

#[derive(Serialize)]
struct Field<'a> {
    key: &'a str,
    value: &'a str,
}

pub fn build(s: &Settings, event: &Event) -> Result<Request, String> {
    let mut url = parse_request_uri(&s.url)
        .map_err(|e| format!("invalid Zoom incoming webhook URL {}: '{e}'", s.url))?;
    if s.token.is_empty() {
        return Err("empty Zoom verification token".into());
    }
    if !url
        .query_pairs()
        .any(|(k, v)| k == "format" && !v.is_empty())
    {
        let mut pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .filter(|(k, _)| k != "format")
            .collect();
        pairs.push(("format".into(), "full".into()));
        let refs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        url.set_query(Some(&super::zulip::form_encode(&refs)));
    }
    let mut body = vec![Item {
        kind: "message",
        text: &event.message,
        items: Vec::new(),
    }];
    if !event.metadata.is_empty() {
        body.push(Item {
            kind: "fields",
            text: "",
            items: event
                .metadata
                .iter()
                .map(|(k, v)| Field { key: k, value: v })
                .collect(),
        });
    }
    let payload = Payload {
        content: Content {
            head: Head {
                text: object_title(event),
                sub_head: SubHead {
                    text: &event.severity,
                },
            },
            body,
        },
    };
    let mut req = Request::post_json(url.to_string(), to_go_json(&payload));
    req.set("Authorization", s.token.clone());
    Ok(req)
}
