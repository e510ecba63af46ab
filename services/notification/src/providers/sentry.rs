//! `sentry`: events sent to Sentry as upstream sends them through sentry-go (v0.46) —
//! `POST <scheme>://<host>[:port][path]/api/<project>/envelope/` with
//! `Content-Type: application/x-sentry-envelope`, `User-Agent: sentry.go/0.46.2` and
//! `X-Sentry-Auth: Sentry sentry_version=7, sentry_client=sentry.go/0.46.2, sentry_key=<public
//! key>[, sentry_secret=<secret>]`; the body is an envelope (envelope header line, item header
//! line, event JSON line):
//!
//! - error events become Sentry events (item type `event`): level `error`, `server_name` = the
//!   reporting controller, `transaction` = `<Kind>: <namespace>/<name>`, `contexts.metadata` =
//!   the event metadata, the message and the event's timestamp;
//! - info events become transactions (item type `transaction`) holding one span with op
//!   `event`: tags `flux_involved_object_kind/namespace/name`, `flux_reporting_controller`,
//!   `flux_reporting_instance`, `flux_reason` and every metadata entry, start and end = the
//!   event's timestamp, a random trace and span id;
//! - `environment` = the Provider's `channel`; every event gets a random `event_id`,
//!   `platform: go` and the SDK name and version.
//!
//! As upstream (whose SDK sends in the background and never reports a failure), a delivery to
//! Sentry never fails the notification. Not reproduced: the SDK's host contexts (device, os,
//! Go runtime) and module list.

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::{Request, Settings, Validate};
use crate::event::Event;

pub const SDK_NAME: &str = "sentry.go";
pub const SDK_VERSION: &str = "0.46.2";

/// The parts of a DSN the transport uses.
#[derive(Debug, PartialEq, Eq)]
pub struct Dsn {
    pub envelope_url: String,
    pub public_key: String,
    pub secret_key: String,
    /// The DSN as given (the envelope header carries it).
    pub raw: String,
}

/// sentry-go's DSN parsing: `<scheme>://<public>[:<secret>]@<host>[:<port>][/<path>]/<project>`.
pub fn parse_dsn(raw: &str) -> Result<Dsn, String> {
    if raw.is_empty() {
        return Err("DSN cannot be empty".into());
    }
    let url = reqwest::Url::parse(raw)
        .map_err(|e| format!("[Sentry] DsnParseError: invalid url: {e}"))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(format!(
            "[Sentry] DsnParseError: invalid scheme: {}",
            url.scheme()
        ));
    }
    if url.username().is_empty() {
        return Err("[Sentry] DsnParseError: empty username".into());
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or("[Sentry] DsnParseError: empty host")?;
    let path = url.path();
    let (prefix, project) = path.rsplit_once('/').unwrap_or(("", path));
    if project.is_empty() {
        return Err("[Sentry] DsnParseError: empty project id".into());
    }
    let port = match url.port() {
        Some(p) => format!(":{p}"),
        None => String::new(),
    };
    Ok(Dsn {
        envelope_url: format!(
            "{}://{host}{port}{prefix}/api/{project}/envelope/",
            url.scheme()
        ),
        public_key: url.username().to_string(),
        secret_key: url.password().unwrap_or_default().to_string(),
        raw: raw.to_string(),
    })
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    let _ = aws_lc_rs::rand::fill(&mut b);
    hex::encode(b)
}

fn summary(event: &Event) -> String {
    let o = &event.involved_object;
    format!("{}: {}/{}", o.kind, o.namespace, o.name)
}

/// The event JSON (without the envelope) and its item type.
pub fn payload(s: &Settings, event: &Event, event_id: &str) -> (Value, &'static str) {
    let ts = event.timestamp_rfc3339();
    let mut v = Map::new();
    let item = if event.severity == "error" {
        v.insert("contexts".into(), json!({ "metadata": event.metadata }));
        "event"
    } else {
        let o = &event.involved_object;
        let mut tags = serde_json::Map::new();
        for (k, val) in [
            ("flux_involved_object_kind", &o.kind),
            ("flux_involved_object_namespace", &o.namespace),
            ("flux_involved_object_name", &o.name),
            ("flux_reporting_controller", &event.reporting_controller),
            ("flux_reporting_instance", &event.reporting_instance),
            ("flux_reason", &event.reason),
        ] {
            tags.insert(k.into(), Value::String(val.clone()));
        }
        for (k, val) in &event.metadata {
            tags.insert(k.clone(), Value::String(val.clone()));
        }
        let trace_id = random_hex(16);
        let span_id = random_hex(8);
        v.insert(
            "contexts".into(),
            json!({"trace": {"trace_id": trace_id, "span_id": span_id, "op": "event"}}),
        );
        v.insert("tags".into(), Value::Object(tags.clone()));
        v.insert("type".into(), "transaction".into());
        v.insert("start_timestamp".into(), ts.clone().into());
        v.insert(
            "spans".into(),
            json!([{"trace_id": trace_id, "span_id": span_id, "op": "event", "tags": tags,
                    "start_timestamp": ts, "timestamp": ts}]),
        );
        "transaction"
    };
    if !s.channel.is_empty() {
        v.insert("environment".into(), s.channel.clone().into());
    }
    v.insert("event_id".into(), event_id.into());
    v.insert(
        "level".into(),
        if event.severity.is_empty() {
            "info".into()
        } else {
            event.severity.clone().into()
        },
    );
    if !event.message.is_empty() {
        v.insert("message".into(), event.message.clone().into());
    }
    v.insert("platform".into(), "go".into());
    v.insert(
        "sdk".into(),
        json!({"name": SDK_NAME, "version": SDK_VERSION,
               "packages": [{"name": "sentry-go", "version": SDK_VERSION}]}),
    );
    if item == "event" && !event.reporting_controller.is_empty() {
        v.insert(
            "server_name".into(),
            event.reporting_controller.clone().into(),
        );
    }
    v.insert("timestamp".into(), ts.into());
    v.insert("transaction".into(), summary(event).into());
    (Value::Object(v), item)
}

#[derive(Serialize)]
struct EnvelopeHeader<'a> {
    event_id: &'a str,
    sent_at: String,
    dsn: &'a str,
    sdk: Sdk,
}

#[derive(Serialize)]
struct Sdk {
    name: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
struct ItemHeader<'a> {
    r#type: &'a str,
    length: usize,
}

pub fn build(s: &Settings, event: &Event) -> Result<Request, String> {
    let dsn = parse_dsn(&s.url)?;
    let event_id = random_hex(16);
    let (body, item) = payload(s, event, &event_id);
    let body = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
    let mut envelope = serde_json::to_vec(&EnvelopeHeader {
        event_id: &event_id,
        sent_at: jiff::Timestamp::now().to_string(),
        dsn: &dsn.raw,
        sdk: Sdk {
            name: SDK_NAME,
            version: SDK_VERSION,
        },
    })
    .map_err(|e| e.to_string())?;
    envelope.push(b'\n');
    envelope.extend(
        serde_json::to_vec(&ItemHeader {
            r#type: item,
            length: body.len(),
        })
        .map_err(|e| e.to_string())?,
    );
    envelope.push(b'\n');
    envelope.extend(&body);
    envelope.push(b'\n');
    let mut auth = format!(
        "Sentry sentry_version=7, sentry_client={SDK_NAME}/{SDK_VERSION}, sentry_key={}",
        dsn.public_key
    );
    if !dsn.secret_key.is_empty() {
        auth.push_str(&format!(", sentry_secret={}", dsn.secret_key));
    }
    let mut req = Request::post_json(dsn.envelope_url, envelope);
    req.set("User-Agent", format!("{SDK_NAME}/{SDK_VERSION}"));
    req.set("Content-Type", "application/x-sentry-envelope");
    req.set("X-Sentry-Auth", auth);
    req.validate = Validate::Ignore;
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsns() {
        let d = parse_dsn("https://abc:def@sentry.example.com:9000/sub/42").unwrap();
        assert_eq!(
            d.envelope_url,
            "https://sentry.example.com:9000/sub/api/42/envelope/"
        );
        assert_eq!(
            (d.public_key.as_str(), d.secret_key.as_str()),
            ("abc", "def")
        );
        assert_eq!(parse_dsn("").unwrap_err(), "DSN cannot be empty");
        assert!(parse_dsn("https://sentry.example.com/1").is_err());
        assert!(parse_dsn("https://k@sentry.example.com/").is_err());
    }
}
