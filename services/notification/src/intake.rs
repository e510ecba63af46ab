//! Event intake: the EventSink gRPC service and upstream Flux's HTTP endpoint (`POST /` with the
//! event JSON) on one listener (`--events-addr`, default :9090), so both our controllers (gRPC)
//! and upstream or third-party senders (HTTP) reach the same pipeline.
//!
//! Alert matching and Provider delivery come with the notification issue; until then accepted
//! events are validated and logged.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use ferroflux_proto::event_sink_server::EventSink;
use ferroflux_proto::{Event, ObjectReference, SendResponse};
use serde::Deserialize;
use tonic::{Request, Response, Status};

/// Upstream's event JSON (fluxcd/pkg/apis/event.Event).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventJson {
    pub involved_object: ObjectRefJson,
    pub severity: String,
    pub timestamp: String,
    pub message: String,
    pub reason: String,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    pub reporting_controller: String,
    #[serde(default)]
    pub reporting_instance: String,
}

/// The involved object of an event.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRefJson {
    pub kind: String,
    #[serde(default)]
    pub namespace: String,
    pub name: String,
    #[serde(default)]
    pub uid: String,
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub resource_version: String,
}

impl From<EventJson> for Event {
    fn from(e: EventJson) -> Self {
        Event {
            involved_object: Some(ObjectReference {
                kind: e.involved_object.kind,
                namespace: e.involved_object.namespace,
                name: e.involved_object.name,
                uid: e.involved_object.uid,
                api_version: e.involved_object.api_version,
                resource_version: e.involved_object.resource_version,
            }),
            severity: e.severity,
            timestamp: e.timestamp,
            message: e.message,
            reason: e.reason,
            metadata: e.metadata.into_iter().collect(),
            reporting_controller: e.reporting_controller,
            reporting_instance: e.reporting_instance,
        }
    }
}

/// Checks an event has what routing needs; the error is the reason given to the sender.
pub fn validate(event: &Event) -> Result<(), String> {
    let Some(obj) = &event.involved_object else {
        return Err("involvedObject is required".into());
    };
    if obj.kind.is_empty() || obj.name.is_empty() {
        return Err("involvedObject.kind and involvedObject.name are required".into());
    }
    if !matches!(event.severity.as_str(), "info" | "error" | "trace") {
        return Err(format!(
            "invalid severity {:?}: expected info or error",
            event.severity
        ));
    }
    if event.reporting_controller.is_empty() {
        return Err("reportingController is required".into());
    }
    Ok(())
}

/// Where accepted events go.
#[derive(Clone, Default)]
pub struct Intake;

impl Intake {
    /// Accepts one validated event.
    pub fn accept(&self, event: &Event) {
        let obj = event.involved_object.clone().unwrap_or_default();
        tracing::info!(
            kind = %obj.kind,
            name = %obj.name,
            namespace = %obj.namespace,
            severity = %event.severity,
            reason = %event.reason,
            reportingController = %event.reporting_controller,
            "event received"
        );
    }
}

#[tonic::async_trait]
impl EventSink for Intake {
    async fn send(&self, request: Request<Event>) -> Result<Response<SendResponse>, Status> {
        let event = request.into_inner();
        validate(&event).map_err(Status::invalid_argument)?;
        self.accept(&event);
        Ok(Response::new(SendResponse { accepted: true }))
    }
}

/// `POST /`: upstream's HTTP event endpoint.
pub async fn post_event(
    axum::extract::State(intake): axum::extract::State<Intake>,
    body: axum::body::Bytes,
) -> (StatusCode, String) {
    let parsed: EventJson = match serde_json::from_slice(&body) {
        Ok(e) => e,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("failed to decode the event: {e}"),
            );
        }
    };
    let event: Event = parsed.into();
    if let Err(e) = validate(&event) {
        return (StatusCode::BAD_REQUEST, e);
    }
    intake.accept(&event);
    (StatusCode::ACCEPTED, String::new())
}

/// The HTTP + gRPC router of the intake listener (EventSink and the gRPC health service).
pub fn router(intake: Intake) -> axum::Router {
    use ferroflux_proto::event_sink_server::EventSinkServer;
    let (health, health_service) = tonic_health::server::health_reporter();
    // The reporter starts with the overall status SERVING; mark the EventSink service too.
    tokio::spawn(async move { health.set_serving::<EventSinkServer<Intake>>().await });
    let grpc = tonic::service::Routes::new(EventSinkServer::new(intake.clone()))
        .add_service(health_service)
        .into_axum_router();
    axum::Router::new()
        .route("/", axum::routing::post(post_event))
        .with_state(intake)
        .merge(grpc)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn serve() -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router(Intake)).await });
        addr
    }

    fn sample() -> serde_json::Value {
        serde_json::json!({
            "involvedObject": {"kind": "Kustomization", "namespace": "apps", "name": "podinfo",
                               "uid": "u", "apiVersion": "kustomize.toolkit.fluxcd.io/v1"},
            "severity": "info", "timestamp": "2026-01-01T00:00:00Z", "message": "applied",
            "reason": "ReconciliationSucceeded",
            "metadata": {"kustomize.toolkit.fluxcd.io/revision": "main@sha1:abc"},
            "reportingController": "kustomize-controller"
        })
    }

    #[tokio::test]
    async fn http_and_grpc_share_the_listener() {
        let addr = serve().await;
        // Upstream senders: JSON POST.
        let http = reqwest_like_post(addr, &sample().to_string()).await;
        assert!(http.starts_with("HTTP/1.1 202"), "{http}");
        let bad = reqwest_like_post(addr, "{\"severity\":\"info\"}").await;
        assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");

        // Our controllers: gRPC on the same port.
        let mut client =
            ferroflux_proto::event_sink_client::EventSinkClient::connect(format!("http://{addr}"))
                .await
                .unwrap();
        let parsed: EventJson = serde_json::from_value(sample()).unwrap();
        let ok = client.send(Event::from(parsed)).await.unwrap().into_inner();
        assert!(ok.accepted);
        let err = client.send(Event::default()).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);

        // The gRPC health service answers on the same port.
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
        let status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: "ferroflux.v1.EventSink".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .status;
        assert_eq!(
            status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        );
    }

    /// A minimal HTTP/1.1 client (the service crate has no HTTP client dependency).
    async fn reqwest_like_post(addr: std::net::SocketAddr, body: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }
}
