//! `pagerduty`: an Events API v2 event (`<scheme>://<host>/v2/enqueue`; `trigger` for errors,
//! `resolve` otherwise, deduplicated by the object UID) and, for info events, a change event
//! (`/v2/change/enqueue`). `Progressing` events are not sent. The routing key is `channel`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Delivery, Request, Settings, parse_request_uri};
use crate::event::{Event, to_go_json};

#[derive(Serialize)]
struct V2Event<'a> {
    routing_key: &'a str,
    event_action: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    dedup_key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<V2Payload<'a>>,
}

#[derive(Serialize)]
struct V2Payload<'a> {
    summary: String,
    source: String,
    severity: &'a str,
    #[serde(skip_serializing_if = "String::is_empty")]
    timestamp: String,
    #[serde(skip_serializing_if = "str::is_empty")]
    component: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    group: &'a str,
    custom_details: Details<'a>,
}

#[derive(Serialize)]
struct Details<'a> {
    message: &'a str,
    metadata: Option<&'a BTreeMap<String, String>>,
}

#[derive(Serialize)]
struct ChangeEvent<'a> {
    routing_key: &'a str,
    payload: ChangePayload<'a>,
    links: Option<()>,
}

#[derive(Serialize)]
struct ChangePayload<'a> {
    source: String,
    summary: String,
    timestamp: String,
    custom_details: Details<'a>,
}

/// Words of a CamelCase reason, as upstream's splitCamelcase splits them.
pub fn split_camel_case(src: &str) -> Vec<String> {
    fn class(c: char) -> u8 {
        if c.is_lowercase() {
            1
        } else if c.is_uppercase() {
            2
        } else if c.is_numeric() {
            3
        } else {
            4
        }
    }
    let mut runs: Vec<Vec<char>> = Vec::new();
    let mut last = 0u8;
    for c in src.chars() {
        let k = class(c);
        match runs.last_mut() {
            Some(run) if k == last => run.push(c),
            _ => runs.push(vec![c]),
        }
        last = k;
    }
    // An upper-case run followed by a lower-case run gives its last letter to the latter.
    for i in 0..runs.len().saturating_sub(1) {
        if runs[i][0].is_uppercase()
            && runs[i + 1][0].is_lowercase()
            && let Some(c) = runs[i].pop()
        {
            runs[i + 1].insert(0, c);
        }
    }
    runs.into_iter()
        .filter(|r| !r.is_empty())
        .map(|r| r.into_iter().collect())
        .collect()
}

/// `kind/name` and the reason as lower-case words.
fn name_and_description(event: &Event) -> (String, String) {
    let o = &event.involved_object;
    let name = format!("{}/{}", o.kind, o.name).to_lowercase();
    let desc = split_camel_case(&event.reason).join(" ").to_lowercase();
    (name, desc)
}

pub fn build(s: &Settings, event: &Event) -> Result<Delivery, String> {
    let url = parse_request_uri(&s.url)
        .map_err(|e| format!("invalid PagerDuty endpoint URL {:?}: '{e}'", s.url))?;
    if event.reason == "Progressing" {
        return Ok(Delivery::Nothing);
    }
    let endpoint = format!("{}://{}", url.scheme(), host_port(&url));
    let (name, desc) = name_and_description(event);
    let metadata = (!event.metadata.is_empty()).then_some(&event.metadata);
    let o = &event.involved_object;
    let error = event.severity == "error";
    let v2 = V2Event {
        routing_key: &s.channel,
        event_action: if error { "trigger" } else { "resolve" },
        dedup_key: &o.uid,
        payload: error.then(|| V2Payload {
            summary: format!("{desc}: {name}"),
            source: format!("Flux {}", event.reporting_controller),
            severity: "error",
            timestamp: event.timestamp_rfc3339(),
            component: &o.name,
            group: &o.kind,
            custom_details: Details {
                message: &event.message,
                metadata,
            },
        }),
    };
    let mut requests = vec![Request::post_json(
        format!("{endpoint}/v2/enqueue"),
        to_go_json(&v2),
    )];
    if event.severity == "info" {
        let change = ChangeEvent {
            routing_key: &s.channel,
            payload: ChangePayload {
                source: format!("Flux {}", event.reporting_controller),
                summary: format!("{desc}: {name}"),
                timestamp: event.timestamp_rfc3339(),
                custom_details: Details {
                    message: &event.message,
                    metadata,
                },
            },
            links: None,
        };
        requests.push(Request::post_json(
            format!("{endpoint}/v2/change/enqueue"),
            to_go_json(&change),
        ));
    }
    Ok(Delivery::Http(requests))
}

/// `host[:port]` of a URL as Go's `URL.Host` keeps it.
pub fn host_port(url: &reqwest::Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn splits_reasons_like_upstream() {
        assert_eq!(
            super::split_camel_case("ReconciliationSucceeded"),
            ["Reconciliation", "Succeeded"]
        );
        assert_eq!(super::split_camel_case("HTTPServer"), ["HTTP", "Server"]);
        assert_eq!(super::split_camel_case("Failed"), ["Failed"]);
    }
}
