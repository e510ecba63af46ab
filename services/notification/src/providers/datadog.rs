//! `datadog`: an event on the Events API v1 (`<scheme>://<host>/api/v1/events`) with the API
//! key in `DD-API-KEY`; the Go client serialises the request as a map, so keys are sorted.

use serde::Serialize;

use super::{Request, Settings};
use crate::event::{Event, to_go_json};

#[derive(Serialize)]
struct CreateEvent<'a> {
    alert_type: &'a str,
    date_happened: i64,
    source_type_name: &'a str,
    tags: Vec<String>,
    text: &'a str,
    title: String,
}

pub fn build(s: &Settings, event: &Event) -> Result<Request, String> {
    if s.token.is_empty() {
        return Err("token cannot be empty".into());
    }
    let url = reqwest::Url::parse(&s.url)
        .map_err(|e| format!("failed to parse address {:?}: {e}", s.url))?;
    let o = &event.involved_object;
    let mut tags = vec![
        format!("flux_reporting_controller:{}", event.reporting_controller),
        format!("flux_reason:{}", event.reason),
        format!("kube_kind:{}", o.kind),
        format!("kube_name:{}", o.name),
        format!("kube_namespace:{}", o.namespace),
    ];
    for (k, v) in &event.metadata {
        tags.push(format!("{k}:{v}"));
    }
    let tags = tags.into_iter().map(|t| t.to_lowercase()).collect();
    let payload = CreateEvent {
        alert_type: if event.severity == "error" {
            "error"
        } else {
            "info"
        },
        date_happened: event.unix(),
        source_type_name: "fluxcd",
        tags,
        text: &event.message,
        title: format!("Events from the {} {}/{}", o.kind, o.name, o.namespace),
    };
    let endpoint = format!(
        "{}://{}/api/v1/events",
        url.scheme(),
        super::pagerduty::host_port(&url)
    );
    let mut req = Request::post_json(endpoint, to_go_json(&payload));
    req.set("Accept", "application/json");
    req.set("DD-API-KEY", s.token.clone());
    Ok(req)
}
