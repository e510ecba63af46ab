//! `otel`: each event becomes one OpenTelemetry span exported with OTLP over HTTP (protobuf), as
//! upstream's OTLPTracer does through the OpenTelemetry Go SDK (a simple span processor and the
//! `otlptracehttp` exporter, v1.44):
//!
//! - `POST <address>` (the address is the full endpoint URL; an empty path is `/`),
//!   `Content-Type: application/x-protobuf`, `User-Agent: OTel OTLP Exporter Go/1.44.0`, the
//!   Secret's headers; only when there are headers and none is `Authorization`, one is added:
//!   `Bearer <password or token>` without a username, `Basic` with one;
//! - resource: schema `https://opentelemetry.io/schemas/1.34.0`, `service.instance.id` = the
//!   Alert's UID, `service.name` = `<namespace>/<name>` of the Alert, `service.namespace`;
//! - scope `flux:notification-controller`;
//! - the span: trace id = the first 16 bytes of SHA-256(`<alert uid>:<revision>`) (revision:
//!   `app-version@oci-digest`, else `revision`, else `unknown`), so all events of one revision
//!   land in one trace; a random span id; the parent is the remote, sampled trace context
//!   without a span id (flags `0x301`); name `<Kind>: <namespace>/<name>`; kind internal; start
//!   = the event's timestamp, end = now; attributes `object.uid`, `object.kind`,
//!   `object.name`, `object.namespace` and every metadata entry; status OK (no description) for
//!   info, ERROR with the message for errors;
//! - HelmRepository events are not exported.
//!
//! Not reproduced: `OTEL_RESOURCE_ATTRIBUTES`/`OTEL_SERVICE_NAME` merged into the resource, the
//! exporter's own retry schedule (ours is the other providers' go-retryablehttp one), and the
//! Provider's username/password set as proxy credentials.

use prost::Message;

use super::{Request, Settings, parse_request_uri};
use crate::event::Event;

/// `ExportTraceServiceRequest` (opentelemetry/proto/collector/trace/v1).
#[derive(Clone, PartialEq, Message)]
pub struct ExportTraceServiceRequest {
    #[prost(message, repeated, tag = "1")]
    pub resource_spans: Vec<ResourceSpans>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ResourceSpans {
    #[prost(message, optional, tag = "1")]
    pub resource: Option<Resource>,
    #[prost(message, repeated, tag = "2")]
    pub scope_spans: Vec<ScopeSpans>,
    #[prost(string, tag = "3")]
    pub schema_url: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct Resource {
    #[prost(message, repeated, tag = "1")]
    pub attributes: Vec<KeyValue>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ScopeSpans {
    #[prost(message, optional, tag = "1")]
    pub scope: Option<Scope>,
    #[prost(message, repeated, tag = "2")]
    pub spans: Vec<Span>,
    #[prost(string, tag = "3")]
    pub schema_url: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct Scope {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub version: String,
}

/// Fields in field-number order, as Go's protobuf encoder writes them.
#[derive(Clone, PartialEq, Message)]
pub struct Span {
    #[prost(bytes = "vec", tag = "1")]
    pub trace_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "2")]
    pub span_id: Vec<u8>,
    #[prost(string, tag = "3")]
    pub trace_state: String,
    #[prost(bytes = "vec", tag = "4")]
    pub parent_span_id: Vec<u8>,
    #[prost(string, tag = "5")]
    pub name: String,
    #[prost(int32, tag = "6")]
    pub kind: i32,
    #[prost(fixed64, tag = "7")]
    pub start_time_unix_nano: u64,
    #[prost(fixed64, tag = "8")]
    pub end_time_unix_nano: u64,
    #[prost(message, repeated, tag = "9")]
    pub attributes: Vec<KeyValue>,
    #[prost(message, optional, tag = "15")]
    pub status: Option<Status>,
    #[prost(fixed32, tag = "16")]
    pub flags: u32,
}

#[derive(Clone, PartialEq, Message)]
pub struct Status {
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(int32, tag = "3")]
    pub code: i32,
}

#[derive(Clone, PartialEq, Message)]
pub struct KeyValue {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<AnyValue>,
}

/// Only the string case of `AnyValue`'s oneof is used.
#[derive(Clone, PartialEq, Message)]
pub struct AnyValue {
    #[prost(string, optional, tag = "1")]
    pub string_value: Option<String>,
}

const SCHEMA_URL: &str = "https://opentelemetry.io/schemas/1.34.0";
pub const USER_AGENT: &str = "OTel OTLP Exporter Go/1.44.0";
const SPAN_KIND_INTERNAL: i32 = 1;
const STATUS_OK: i32 = 1;
const STATUS_ERROR: i32 = 2;
/// W3C sampled flag, "has is-remote" and "is remote" bits.
const FLAGS: u32 = 0x1 | 0x100 | 0x200;

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            string_value: Some(value.to_string()),
        }),
    }
}

/// Upstream's getRevision over the merged metadata.
pub fn revision(event: &Event) -> String {
    let m = &event.metadata;
    match (m.get("oci-digest"), m.get("app-version")) {
        (Some(digest), Some(app)) => format!("{app}@{digest}"),
        _ => m
            .get("revision")
            .cloned()
            .unwrap_or_else(|| "unknown".into()),
    }
}

/// The trace id of an Alert's events for one revision.
pub fn trace_id(alert_uid: &str, revision: &str) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(format!("{alert_uid}:{revision}").as_bytes())[..16].to_vec()
}

fn unix_nanos(t: Option<jiff::Timestamp>) -> u64 {
    t.map(|t| t.as_nanosecond().max(0) as u64).unwrap_or(0)
}

/// The export request for one event.
pub fn span_request(
    s: &Settings,
    event: &Event,
    end: jiff::Timestamp,
) -> ExportTraceServiceRequest {
    let o = &event.involved_object;
    let mut attributes = vec![
        kv("object.uid", &o.uid),
        kv("object.kind", &o.kind),
        kv("object.name", &o.name),
        kv("object.namespace", &o.namespace),
    ];
    for (k, v) in &event.metadata {
        attributes.push(kv(k, v));
    }
    let status = if event.severity == "error" {
        Status {
            message: event.message.clone(),
            code: STATUS_ERROR,
        }
    } else {
        Status {
            message: String::new(),
            code: STATUS_OK,
        }
    };
    let mut span_id = [0u8; 8];
    while span_id == [0u8; 8] {
        let _ = aws_lc_rs::rand::fill(&mut span_id);
    }
    let span = Span {
        trace_id: trace_id(&s.alert_uid, &revision(event)),
        span_id: span_id.to_vec(),
        name: format!("{}: {}/{}", o.kind, o.namespace, o.name),
        kind: SPAN_KIND_INTERNAL,
        start_time_unix_nano: unix_nanos(event.timestamp),
        end_time_unix_nano: unix_nanos(Some(end)),
        attributes,
        status: Some(status),
        flags: FLAGS,
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                // An attribute set: sorted by key.
                attributes: vec![
                    kv("service.instance.id", &s.alert_uid),
                    kv(
                        "service.name",
                        &format!("{}/{}", s.alert_namespace, s.alert_name),
                    ),
                    kv("service.namespace", &s.alert_namespace),
                ],
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(Scope {
                    name: "flux:notification-controller".into(),
                    version: String::new(),
                }),
                spans: vec![span],
                schema_url: String::new(),
            }],
            schema_url: SCHEMA_URL.into(),
        }],
    }
}

pub fn build(s: &Settings, event: &Event) -> Result<Option<Request>, String> {
    let url = parse_request_uri(&s.url).map_err(|e| format!("invalid endpoint URL: {e}"))?;
    if s.alert_name.is_empty() {
        return Err("alert metadata not found in context".into());
    }
    if event.involved_object.kind == "HelmRepository" {
        return Ok(None);
    }
    let mut target = url.to_string();
    if url.path().is_empty() {
        target.push('/');
    }
    let body = span_request(s, event, jiff::Timestamp::now()).encode_to_vec();
    let mut req = Request {
        method: "POST",
        url: target,
        headers: Vec::new(),
        body,
        validate: super::Validate::Status2xx,
    };
    req.set("User-Agent", USER_AGENT);
    let password = if s.token.is_empty() {
        &s.password
    } else {
        &s.token
    };
    let mut headers = s.headers.clone();
    if !headers.is_empty() && headers.get("Authorization").is_none_or(String::is_empty) {
        use base64::Engine;
        if s.username.is_empty() {
            headers.insert("Authorization".into(), format!("Bearer {password}"));
        } else if !password.is_empty() {
            let basic = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{password}", s.username));
            headers.insert("Authorization".into(), format!("Basic {basic}"));
        }
    }
    for (k, v) in headers {
        req.set(&k, v);
    }
    req.set("Content-Type", "application/x-protobuf");
    Ok(Some(req))
}
