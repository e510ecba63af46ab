//! Event intake: the EventSink gRPC service and upstream Flux's HTTP endpoint (any path, the
//! event JSON in the body) on one listener (`--events-addr`, default :9090), so our controllers
//! (gRPC) and upstream or third-party senders (HTTP) reach the same pipeline:
//!
//! 1. body at most 3 MiB (413), JSON decoded (400), metadata cleaned up;
//! 2. rate limit: one event per key (name, namespace, kind, message, revisions, token) per
//!    `--rate-limit-interval`; duplicates get 429 (gRPC: `accepted: false`);
//! 3. the object group's `token` metadata dropped, the Alerts matched, and per Alert the
//!    Provider checked and the delivery queued; 202 once every Alert has been handled (the
//!    deliveries themselves run asynchronously).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response as HttpResponse};
use ferroflux_api::{Alert, Provider};
use ferroflux_proto::event_sink_server::EventSink;
use ferroflux_proto::{Event as ProtoEvent, SendResponse};
use ferroflux_runtime::events::{EventRecorder, Severity};
use kube::runtime::reflector::Store;
use kube::{Client, ResourceExt};
use tonic::{Request, Response, Status};

use crate::alert;
use crate::event::Event;
use crate::provider::{self, Dispatcher, Job, Route};
use crate::providers;

/// Largest request body accepted (upstream: 3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Upstream's in-memory rate limiter (go-limiter, one token per interval per key): the first
/// event of a key opens a window of `interval`; further events with that key inside the window
/// are refused.
pub struct RateLimiter {
    interval: Duration,
    /// Window start by key. Keys are kept as 128 bits of their SHA-256 (the event key already
    /// is a SHA-256): every distinct event of the last two intervals has an entry, 60,000 at a
    /// minute of 1,000 distinct events a second, so the entry size is what the idle memory after
    /// a burst is made of.
    windows: Mutex<HashMap<u128, Instant>>,
    last_sweep: Mutex<Instant>,
}

/// The answer of the limiter.
#[derive(Debug, PartialEq, Eq)]
pub enum Take {
    Allowed { reset: Instant },
    Limited { reset: Instant },
}

impl RateLimiter {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            windows: Mutex::new(HashMap::new()),
            last_sweep: Mutex::new(Instant::now()),
        }
    }

    /// The map key of `key`: its first 128 bits when it is a hex SHA-256 (the event key), else
    /// those of its SHA-256.
    fn compact(key: &str) -> u128 {
        if key.len() == 64
            && let Ok(v) = u128::from_str_radix(&key[..32], 16)
        {
            return v;
        }
        use sha2::Digest;
        let d = sha2::Sha256::digest(key.as_bytes());
        u128::from_be_bytes(d[..16].try_into().unwrap_or_default())
    }

    /// Takes the token of `key` at `now`.
    pub fn take(&self, key: &str, now: Instant) -> Take {
        if self.interval.is_zero() {
            return Take::Allowed { reset: now };
        }
        let key = Self::compact(key);
        self.sweep(now);
        let Ok(mut windows) = self.windows.lock() else {
            return Take::Allowed { reset: now };
        };
        match windows.get_mut(&key) {
            Some(start) if now.duration_since(*start) < self.interval => Take::Limited {
                reset: *start + self.interval,
            },
            Some(start) => {
                // Windows follow each other at interval boundaries from the first event.
                let elapsed = now.duration_since(*start).as_nanos();
                let n = elapsed / self.interval.as_nanos();
                *start += Duration::from_nanos((n * self.interval.as_nanos()) as u64);
                Take::Allowed {
                    reset: *start + self.interval,
                }
            }
            None => {
                windows.insert(key, now);
                Take::Allowed {
                    reset: now + self.interval,
                }
            }
        }
    }

    /// Forgets keys idle for two intervals (upstream sweeps at every interval).
    fn sweep(&self, now: Instant) {
        let Ok(mut last) = self.last_sweep.lock() else {
            return;
        };
        if now.duration_since(*last) < self.interval {
            return;
        }
        *last = now;
        drop(last);
        if let Ok(mut windows) = self.windows.lock() {
            let ttl = self.interval * 2;
            windows.retain(|_, start| now.duration_since(*start) < ttl);
            windows.shrink_to_fit();
        }
    }
}

/// What routing needs from the cluster: the Alert and Provider caches, a client for Secrets
/// and object labels, the recorder of warnings on Alerts, and the dispatcher.
pub struct Router {
    pub client: Client,
    pub alerts: Store<Alert>,
    pub providers: Store<Provider>,
    pub recorder: EventRecorder,
    pub dispatcher: Dispatcher,
    pub no_cross_namespace_refs: bool,
    pub workload_identity: bool,
    /// Set once the caches have been waited for.
    pub caches_ready: std::sync::atomic::AtomicBool,
}

impl Router {
    /// Routes one accepted event to the Alerts that want it.
    pub async fn route(&self, mut event: Event) {
        event.exclude_internal_metadata();
        // Before the first list the caches are empty: the first events wait for them (at most
        // 15s, once) rather than being dropped.
        if !self.caches_ready.load(std::sync::atomic::Ordering::Relaxed) {
            let _ = tokio::time::timeout(Duration::from_secs(15), async {
                let _ = self.alerts.wait_until_ready().await;
                let _ = self.providers.wait_until_ready().await;
            })
            .await;
            self.caches_ready
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let o = &event.involved_object;
        let alerts =
            alert::alerts_for_event(&self.alerts, &self.client, &self.recorder, &event).await;
        if alerts.is_empty() {
            tracing::info!(kind = %o.kind, name = %o.name, namespace = %o.namespace,
                "discarding event, no alerts found for the involved object");
            return;
        }
        tracing::info!(kind = %o.kind, name = %o.name, namespace = %o.namespace,
            message = %event.message, "dispatching event");
        for a in alerts {
            if let Err(e) = self.dispatch(&event, a.clone()).await {
                tracing::error!(error = %e, alert = %a.name_any(), "failed to dispatch notification");
                // Events are recorded off the intake's path, as client-go's recorder does.
                let recorder = self.recorder.clone();
                let msg = format!(
                    "failed to dispatch notification for {}: {e}",
                    event.involved_object.display()
                );
                tokio::spawn(async move {
                    recorder
                        .publish(
                            a.as_ref(),
                            Severity::Error,
                            "NotificationDispatchFailed",
                            &msg,
                            &BTreeMap::new(),
                        )
                        .await;
                });
            }
        }
    }

    async fn dispatch(&self, event: &Event, alert: Arc<Alert>) -> Result<(), String> {
        let alert_ns = alert.namespace().unwrap_or_default();
        if self.no_cross_namespace_refs && event.involved_object.namespace != alert_ns {
            return Err(format!(
                "discarding event, access denied to cross-namespace sources: alert '{alert_ns}/{}' can't process event from '{}', cross-namespace references have been blocked",
                alert.name_any(),
                event.involved_object.display()
            ));
        }
        let provider_name = alert
            .spec
            .provider_ref
            .as_ref()
            .map(|r| r.name.clone())
            .unwrap_or_default();
        let Some(p) = provider::find_provider(&self.providers, &alert_ns, &provider_name) else {
            return Err(format!(
                "failed to read provider: Provider.notification.toolkit.fluxcd.io \"{provider_name}\" not found"
            ));
        };
        if p.suspended() {
            return Ok(());
        }
        let Some(kind) = p.spec.r#type else {
            return Err(format!(
                "failed to initialize notifier for provider '{provider_name}': provider type is empty"
            ));
        };
        match provider::route(kind, event) {
            Route::Send => {}
            Route::Skip => return Ok(()),
            Route::DroppedCommitStatus => {
                tracing::info!(alert = %format!("{alert_ns}/{}", alert.name_any()),
                    "event dropped for commit status providers due to missing commit metadata key");
                return Ok(());
            }
            Route::DroppedChangeRequest => {
                tracing::info!(alert = %format!("{alert_ns}/{}", alert.name_any()),
                    "event dropped for change request providers due to missing change request metadata key");
                return Ok(());
            }
        }
        if p.spec
            .service_account_name
            .as_ref()
            .is_some_and(|s| !s.is_empty())
            && !self.workload_identity
        {
            return Err("to use spec.serviceAccountName for provider authentication please enable the ObjectLevelWorkloadIdentity feature gate in the controller".into());
        }
        let mut notification = event.clone();
        let conflicts = alert::combine_metadata(&mut notification, &alert);
        if !conflicts.is_empty() {
            tracing::info!(conflictingKeys = ?conflicts, "warning: {}", alert::CONFLICT_MESSAGE);
            let recorder = self.recorder.clone();
            let a = alert.clone();
            tokio::spawn(async move {
                recorder
                    .record_annotated(
                        a.as_ref(),
                        Severity::Error,
                        "MetadataAppendFailed",
                        alert::CONFLICT_MESSAGE,
                        &conflicts,
                    )
                    .await;
            });
        }
        let commit_status = if provider::is_commit_status_provider(kind) {
            match p.spec.commit_status_expr.as_ref().filter(|e| !e.is_empty()) {
                Some(expr) => commit_status_from_expr(expr, &notification, &p, &alert)
                    .map_err(|e| {
                        format!(
                            "failed to create commit status: failed to evaluate the spec.commitStatusExpr CEL expression for the event: {e}"
                        )
                    })?,
                None => {
                    provider::default_commit_status(&p.uid().unwrap_or_default(), &notification)
                }
            }
        } else {
            String::new()
        };
        let mut settings = provider::load_settings(&self.client, &p)
            .await
            .map_err(|e| {
                format!("failed to initialize notifier for provider '{provider_name}': {e}")
            })?;
        settings.commit_status = commit_status;
        settings.alert_name = alert.name_any();
        settings.alert_namespace = alert_ns.clone();
        settings.alert_uid = alert.uid().unwrap_or_default();
        let delivery = providers::build(kind, &settings, &notification).map_err(|e| {
            let e = crate::event::mask_token(&e, &settings.token);
            format!(
                "failed to initialize notifier for provider '{provider_name}': failed to initialize notifier: {e}"
            )
        })?;
        let timeout = p.effective_timeout();
        self.dispatcher.enqueue(
            &alert_ns,
            &provider_name,
            Job {
                alert,
                object: notification.involved_object.display(),
                delivery,
                settings: Arc::new(settings),
                timeout,
                deadline: tokio::time::Instant::now() + timeout,
            },
        );
        Ok(())
    }
}

/// Evaluates a Provider's `commitStatusExpr` with the variables `event`, `provider` and
/// `alert` (the objects as JSON).
pub fn commit_status_from_expr(
    expr: &str,
    event: &Event,
    provider: &Provider,
    alert: &Alert,
) -> Result<String, String> {
    let e = crate::cel::Expression::new(expr)
        .map_err(|e| format!("failed to compile expression: {e}"))?;
    let event = serde_json::to_value(event).map_err(|e| e.to_string())?;
    let provider = serde_json::to_value(provider).map_err(|e| e.to_string())?;
    let alert = serde_json::to_value(alert).map_err(|e| e.to_string())?;
    e.eval_string(&[
        ("event", &event),
        ("provider", &provider),
        ("alert", &alert),
    ])
}

/// The intake: rate limiter and router (none in tests of the intake alone).
#[derive(Clone)]
pub struct Intake {
    pub limiter: Arc<RateLimiter>,
    pub router: Option<Arc<Router>>,
}

impl Intake {
    pub fn new(rate_limit_interval: Duration, router: Option<Arc<Router>>) -> Self {
        Self {
            limiter: Arc::new(RateLimiter::new(rate_limit_interval)),
            router,
        }
    }

    /// Rate-limits and routes one decoded event; false when it was a duplicate.
    pub async fn accept(&self, mut event: Event) -> bool {
        event.cleanup_metadata();
        let key = event.rate_limit_key();
        if let Take::Limited { .. } = self.limiter.take(&key, Instant::now()) {
            let o = &event.involved_object;
            tracing::debug!(kind = %o.kind, name = %o.name, namespace = %o.namespace,
                "Discarding event, rate limiting duplicate events");
            return false;
        }
        if let Some(router) = &self.router {
            ferroflux_runtime::memory::note_reconcile();
            router.route(event).await;
        }
        true
    }
}

#[tonic::async_trait]
impl EventSink for Intake {
    async fn send(&self, request: Request<ProtoEvent>) -> Result<Response<SendResponse>, Status> {
        let event = request.into_inner();
        validate(&event).map_err(Status::invalid_argument)?;
        let accepted = self.accept(Event::from(event)).await;
        Ok(Response::new(SendResponse { accepted }))
    }
}

/// Checks a gRPC event has what routing needs (our own senders always fill these).
pub fn validate(event: &ProtoEvent) -> Result<(), String> {
    let Some(obj) = &event.involved_object else {
        return Err("involvedObject is required".into());
    };
    if obj.kind.is_empty() || obj.name.is_empty() {
        return Err("involvedObject.kind and involvedObject.name are required".into());
    }
    Ok(())
}

/// Upstream's HTTP event endpoint (every path, as Go's `/` pattern).
pub async fn post_event(intake: Intake, body: axum::body::Body) -> HttpResponse {
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(e) => {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.to_string().contains("length limit exceeded"))
                || e.to_string().contains("length limit exceeded");
            return if too_large {
                tracing::error!(
                    "reading the request body failed: request body exceeds the maximum size of {MAX_BODY_BYTES} bytes"
                );
                StatusCode::PAYLOAD_TOO_LARGE.into_response()
            } else {
                tracing::error!(error = %e, "reading the request body failed");
                StatusCode::BAD_REQUEST.into_response()
            };
        }
    };
    let event: Event = match serde_json::from_slice(&bytes) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "decoding the request body failed");
            return StatusCode::BAD_REQUEST.into_response();
        }
    };
    if intake.accept(event).await {
        StatusCode::ACCEPTED.into_response()
    } else {
        let mut headers = HeaderMap::new();
        headers.insert("X-RateLimit-Limit", HeaderValue::from_static("1"));
        headers.insert("X-RateLimit-Remaining", HeaderValue::from_static("0"));
        (
            StatusCode::TOO_MANY_REQUESTS,
            headers,
            "Too Many Requests\n",
        )
            .into_response()
    }
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
    // Everything that is not gRPC is upstream's HTTP endpoint (Go's `/` pattern).
    grpc.fallback(move |body: axum::body::Body| {
        let intake = intake.clone();
        async move { post_event(intake, body).await }
    })
    .layer(axum::extract::DefaultBodyLimit::disable())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn serve() -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let intake = Intake::new(Duration::from_secs(300), None);
        tokio::spawn(async move { axum::serve(listener, router(intake)).await });
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

    #[test]
    fn commit_status_expressions() {
        let event: Event = serde_json::from_value(sample()).unwrap();
        let provider: Provider = serde_json::from_value(serde_json::json!({
            "apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Provider",
            "metadata": {"name": "gh", "uid": "1234-5678"}, "spec": {"type": "github"}}))
        .unwrap();
        let alert: Alert = serde_json::from_value(serde_json::json!({
            "apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Alert",
            "metadata": {"name": "ops"}, "spec": {}}))
        .unwrap();
        assert_eq!(
            commit_status_from_expr(
                "event.involvedObject.kind + '/' + event.involvedObject.name + '/' + alert.metadata.name",
                &event,
                &provider,
                &alert
            )
            .unwrap(),
            "Kustomization/podinfo/ops"
        );
        assert!(
            commit_status_from_expr("1 + 1", &event, &provider, &alert)
                .unwrap_err()
                .contains("as string")
        );
    }

    #[test]
    fn limiter_windows() {
        let l = RateLimiter::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert!(matches!(l.take("a", t0), Take::Allowed { .. }));
        assert!(matches!(
            l.take("a", t0 + Duration::from_secs(9)),
            Take::Limited { .. }
        ));
        assert!(matches!(l.take("b", t0), Take::Allowed { .. }));
        assert!(matches!(
            l.take("a", t0 + Duration::from_secs(25)),
            Take::Allowed { .. }
        ));
        // Idle for two intervals, the key was forgotten: a new window opened at 25s.
        assert!(matches!(
            l.take("a", t0 + Duration::from_secs(34)),
            Take::Limited { .. }
        ));
        assert!(matches!(
            l.take("a", t0 + Duration::from_secs(35)),
            Take::Allowed { .. }
        ));
        // A key still in use rolls over at window boundaries: 35s opened [35s, 45s).
        assert!(matches!(
            l.take("a", t0 + Duration::from_secs(44)),
            Take::Limited { .. }
        ));
    }

    #[tokio::test]
    async fn http_and_grpc_share_the_listener() {
        let addr = serve().await;
        // Upstream senders: JSON POST, on any path.
        let http = raw_post(addr, "/", &sample().to_string()).await;
        assert!(http.starts_with("HTTP/1.1 202"), "{http}");
        // The same event again within the interval: 429.
        let dup = raw_post(addr, "/", &sample().to_string()).await;
        assert!(dup.starts_with("HTTP/1.1 429"), "{dup}");
        // A new revision is a new event.
        let mut next = sample();
        next["metadata"]["kustomize.toolkit.fluxcd.io/revision"] = "main@sha1:def".into();
        let other = raw_post(addr, "/any/path", &next.to_string()).await;
        assert!(other.starts_with("HTTP/1.1 202"), "{other}");
        // Checksums are cleaned up before the key is computed: still a duplicate.
        let mut noisy = next.clone();
        noisy["metadata"]["kustomize.toolkit.fluxcd.io/checksum"] = "x".into();
        let dup2 = raw_post(addr, "/", &noisy.to_string()).await;
        assert!(dup2.starts_with("HTTP/1.1 429"), "{dup2}");
        let bad = raw_post(addr, "/", "{\"severity\":").await;
        assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
        let wrong_type = raw_post(addr, "/", "{\"severity\":1}").await;
        assert!(wrong_type.starts_with("HTTP/1.1 400"), "{wrong_type}");
        let big = format!("{{\"message\":\"{}\"}}", "x".repeat(MAX_BODY_BYTES + 10));
        let too_large = raw_post(addr, "/", &big).await;
        assert!(too_large.starts_with("HTTP/1.1 413"), "{too_large}");

        // Our controllers: gRPC on the same port, rate limited the same way.
        let mut client =
            ferroflux_proto::event_sink_client::EventSinkClient::connect(format!("http://{addr}"))
                .await
                .unwrap();
        let mut e = sample();
        e["message"] = "over gRPC".into();
        let proto = to_proto(&e);
        assert!(
            client
                .send(proto.clone())
                .await
                .unwrap()
                .into_inner()
                .accepted
        );
        assert!(!client.send(proto).await.unwrap().into_inner().accepted);
        let err = client.send(ProtoEvent::default()).await.unwrap_err();
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

    fn to_proto(v: &serde_json::Value) -> ProtoEvent {
        let e: Event = serde_json::from_value(v.clone()).unwrap();
        let o = e.involved_object;
        ProtoEvent {
            involved_object: Some(ferroflux_proto::ObjectReference {
                kind: o.kind,
                namespace: o.namespace,
                name: o.name,
                uid: o.uid,
                api_version: o.api_version,
                resource_version: o.resource_version,
            }),
            severity: e.severity,
            timestamp: v["timestamp"].as_str().unwrap().to_string(),
            message: e.message,
            reason: e.reason,
            metadata: e.metadata.into_iter().collect(),
            reporting_controller: e.reporting_controller,
            reporting_instance: e.reporting_instance,
        }
    }

    /// A minimal HTTP/1.1 client (the intake tests need no more).
    async fn raw_post(addr: std::net::SocketAddr, path: &str, body: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        // The server may answer 413 and close before the whole body is written.
        let _ = s.write_all(req.as_bytes()).await;
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out).await;
        String::from_utf8_lossy(&out).to_string()
    }
}
