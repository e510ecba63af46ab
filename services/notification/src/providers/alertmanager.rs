//! `alertmanager`: one firing alert POSTed to the Alertmanager API (`/api/v2/alerts`); the
//! metadata become labels (plus alertname, severity, reason, kind, name, namespace and
//! reportingcontroller), the message and the summary annotations.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Request, Settings, parse_request_uri};
use crate::event::{Event, to_go_json};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Alert {
    status: &'static str,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    starts_at: String,
    ends_at: &'static str,
}

/// golang.org/x/text `cases.Title`: the first letter of each word upper case, the rest lower.
pub fn title_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut at_word_start = true;
    for c in s.chars() {
        if c.is_alphanumeric() || c == '\'' {
            if at_word_start {
                out.extend(c.to_uppercase());
            } else {
                out.extend(c.to_lowercase());
            }
            at_word_start = false;
        } else {
            out.push(c);
            at_word_start = true;
        }
    }
    out
}

pub fn build(s: &Settings, event: &Event) -> Result<Request, String> {
    parse_request_uri(&s.url).map_err(|e| format!("invalid Alertmanager URL {}: '{e}'", s.url))?;
    let mut labels = event.metadata.clone();
    let mut annotations = BTreeMap::new();
    annotations.insert("message".to_string(), event.message.clone());
    if let Some(summary) = labels.remove("summary") {
        annotations.insert("summary".to_string(), summary);
    }
    let o = &event.involved_object;
    labels.insert(
        "alertname".into(),
        format!("Flux{}{}", o.kind, title_case(&event.reason)),
    );
    labels.insert("severity".into(), event.severity.clone());
    labels.insert("reason".into(), event.reason.clone());
    labels.insert("kind".into(), o.kind.clone());
    labels.insert("name".into(), o.name.clone());
    labels.insert("namespace".into(), o.namespace.clone());
    labels.insert(
        "reportingcontroller".into(),
        event.reporting_controller.clone(),
    );
    let alerts = [Alert {
        status: "firing",
        labels,
        annotations,
        starts_at: event.timestamp_rfc3339(),
        // Go's zero time: upstream never sets an end.
        ends_at: "0001-01-01T00:00:00Z",
    }];
    let mut req = Request::post_json(&s.url, to_go_json(&alerts));
    if !s.token.is_empty() {
        req.add("Authorization", format!("Bearer {}", s.token));
    }
    if !s.username.is_empty() && !s.password.is_empty() {
        req.basic_auth(&s.username, &s.password);
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    #[test]
    fn title_case_lowers_the_rest_of_each_word() {
        assert_eq!(
            super::title_case("ReconciliationSucceeded"),
            "Reconciliationsucceeded"
        );
        assert_eq!(super::title_case("health check"), "Health Check");
    }
}
