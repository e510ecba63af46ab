//! Events: Kubernetes core/v1 Events (what `kubectl describe` and `flux events` read) and the
//! forwarding of the same events to the notification service, either as upstream Flux's JSON
//! POST (`--events-addr=http://...`) or through the `EventSink` gRPC (`--events-addr=grpc://...`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event as CoreEvent, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;

/// Event severity, as upstream: Warning events are `error`, others `info`; `trace` events
/// are recorded in Kubernetes only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Trace,
    Info,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Trace => "trace",
            Severity::Info => "info",
            Severity::Error => "error",
        }
    }
    fn k8s_type(self) -> &'static str {
        match self {
            Severity::Error => "Warning",
            _ => "Normal",
        }
    }
}

/// Events remembered for counting repeats (the table is reset when full).
const MAX_SEEN_EVENTS: usize = 1024;

/// Upstream's maximum event message length.
pub const MAX_MESSAGE_LEN: usize = 39000;

/// The object an event is about.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InvolvedObject {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub api_version: String,
    pub resource_version: String,
}

impl InvolvedObject {
    pub fn of<K: Resource<DynamicType = ()>>(obj: &K) -> Self {
        Self {
            kind: K::kind(&()).to_string(),
            namespace: obj.namespace().unwrap_or_default(),
            name: obj.name_any(),
            uid: obj.uid().unwrap_or_default(),
            api_version: K::api_version(&()).to_string(),
            resource_version: obj.resource_version().unwrap_or_default(),
        }
    }
}

/// One event with upstream's JSON field names (fluxcd/pkg/apis/event.Event).
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FluxEvent {
    pub involved_object: InvolvedObject,
    pub severity: String,
    pub timestamp: String,
    pub message: String,
    pub reason: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    pub reporting_controller: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reporting_instance: String,
}

/// Where events are forwarded besides the Kubernetes API.
#[derive(Clone, Debug)]
enum Sink {
    None,
    Http(String),
    Grpc(String),
}

fn truncate(message: &str) -> String {
    if message.len() <= MAX_MESSAGE_LEN {
        return message.to_string();
    }
    let mut end = MAX_MESSAGE_LEN;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message[..end].to_string()
}

/// Records events for one controller.
#[derive(Clone)]
pub struct EventRecorder {
    client: Client,
    controller: String,
    instance: String,
    sink: Sink,
    http: reqwest::Client,
    /// Aggregation of repeated core events: key -> (event name, count). Locked only to read or
    /// update the table, never across an API call: one slow Event write must not hold up the
    /// events of other objects (every reconcile of the controller publishes through here).
    seen: Arc<Mutex<HashMap<String, (String, u32)>>>,
}

impl EventRecorder {
    /// `events_addr` empty disables forwarding; `grpc://host:port` uses the EventSink gRPC;
    /// anything else is treated as Flux's HTTP endpoint.
    pub fn new(client: Client, controller: &str, events_addr: &str) -> Self {
        let sink = if events_addr.is_empty() {
            Sink::None
        } else if let Some(rest) = events_addr.strip_prefix("grpc://") {
            Sink::Grpc(format!("http://{rest}"))
        } else {
            Sink::Http(events_addr.to_string())
        };
        let instance = std::env::var("HOSTNAME").unwrap_or_default();
        Self {
            client,
            controller: controller.to_string(),
            instance,
            sink,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
            seen: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Builds the event for `obj`, adding the object's `event.toolkit.fluxcd.io/*` annotations to
    /// the metadata and prefixing `metadata` keys with the kind's API group.
    pub fn build_event<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        severity: Severity,
        reason: &str,
        message: &str,
        metadata: &BTreeMap<String, String>,
    ) -> FluxEvent {
        let group = K::group(&()).to_string();
        let mut meta = BTreeMap::new();
        for (k, v) in metadata {
            meta.insert(format!("{group}/{k}"), v.clone());
        }
        for (k, v) in obj.annotations() {
            if let Some(short) = k.strip_prefix("event.toolkit.fluxcd.io/") {
                meta.insert(format!("{group}/{short}"), v.clone());
            }
        }
        FluxEvent {
            involved_object: InvolvedObject::of(obj),
            severity: severity.as_str().to_string(),
            timestamp: jiff::Timestamp::now()
                .strftime("%Y-%m-%dT%H:%M:%SZ")
                .to_string(),
            message: truncate(message),
            reason: reason.to_string(),
            metadata: meta,
            reporting_controller: self.controller.clone(),
            reporting_instance: self.instance.clone(),
        }
    }

    /// Records a Kubernetes Event and forwards it to the notification service. Failures are
    /// logged, never returned: events are best effort, as upstream.
    pub async fn publish<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        severity: Severity,
        reason: &str,
        message: &str,
        metadata: &BTreeMap<String, String>,
    ) {
        let event = self.build_event(obj, severity, reason, message, metadata);
        if let Err(e) = self.record_core_event(&event, severity).await {
            tracing::debug!(error = %e, "failed to record Kubernetes event");
        }
        if severity != Severity::Trace {
            self.forward(&event).await;
        }
    }

    /// Records a Kubernetes Event only (never forwarded), with `annotations` as the Event's
    /// annotations, keys as given (client-go's AnnotatedEventf).
    pub async fn record_annotated<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        severity: Severity,
        reason: &str,
        message: &str,
        annotations: &BTreeMap<String, String>,
    ) {
        let mut event = self.build_event(obj, severity, reason, message, &BTreeMap::new());
        event.metadata = annotations.clone();
        if let Err(e) = self.record_core_event(&event, severity).await {
            tracing::debug!(error = %e, "failed to record Kubernetes event");
        }
    }

    async fn record_core_event(
        &self,
        ev: &FluxEvent,
        severity: Severity,
    ) -> Result<(), kube::Error> {
        let ns = if ev.involved_object.namespace.is_empty() {
            "default".to_string()
        } else {
            ev.involved_object.namespace.clone()
        };
        let api: Api<CoreEvent> = Api::namespaced(self.client.clone(), &ns);
        let key = format!(
            "{}/{}/{}/{}/{}",
            ev.involved_object.kind, ns, ev.involved_object.name, ev.reason, ev.message
        );
        let now = Time(jiff::Timestamp::now());
        // The repeat count is taken under the lock, the patch sent without it.
        let repeat = {
            let Ok(mut seen) = self.seen.lock() else {
                return Ok(());
            };
            // Messages often carry timings, so keys rarely repeat: keep the table bounded.
            if seen.len() >= MAX_SEEN_EVENTS && !seen.contains_key(&key) {
                seen.clear();
            }
            seen.get_mut(&key).map(|(name, count)| {
                *count += 1;
                (name.clone(), *count)
            })
        };
        if let Some((name, count)) = repeat {
            let patch = serde_json::json!({"count": count, "lastTimestamp": now});
            if api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .is_ok()
            {
                return Ok(());
            }
        }
        let suffix: u64 = rand::random();
        let name = format!("{}.{:016x}", ev.involved_object.name, suffix);
        let annotations: BTreeMap<String, String> = ev.metadata.clone();
        let core = CoreEvent {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns.clone()),
                annotations: if annotations.is_empty() {
                    None
                } else {
                    Some(annotations)
                },
                ..Default::default()
            },
            involved_object: ObjectReference {
                kind: Some(ev.involved_object.kind.clone()),
                namespace: Some(ns.clone()),
                name: Some(ev.involved_object.name.clone()),
                uid: Some(ev.involved_object.uid.clone()).filter(|s| !s.is_empty()),
                api_version: Some(ev.involved_object.api_version.clone()),
                resource_version: Some(ev.involved_object.resource_version.clone())
                    .filter(|s| !s.is_empty()),
                ..Default::default()
            },
            reason: Some(ev.reason.clone()),
            message: Some(ev.message.clone()),
            type_: Some(severity.k8s_type().to_string()),
            source: Some(EventSource {
                component: Some(self.controller.clone()),
                host: None,
            }),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now.clone()),
            event_time: None::<MicroTime>,
            count: Some(1),
            reporting_component: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Default::default()
        };
        api.create(&PostParams::default(), &core).await?;
        if let Ok(mut seen) = self.seen.lock() {
            if seen.len() >= MAX_SEEN_EVENTS {
                seen.clear();
            }
            seen.insert(key, (name, 1));
        }
        Ok(())
    }

    async fn forward(&self, event: &FluxEvent) {
        match &self.sink {
            Sink::None => {}
            Sink::Http(url) => {
                // go-retryablehttp defaults: 4 retries, 1s..30s backoff, no retry on 429.
                let mut delay = Duration::from_secs(1);
                for attempt in 0..=4 {
                    match self.http.post(url).json(event).send().await {
                        Ok(resp) if resp.status().is_success() => return,
                        Ok(resp)
                            if resp.status().as_u16() == 429 || resp.status().is_client_error() =>
                        {
                            tracing::debug!(status = %resp.status(), "event not accepted");
                            return;
                        }
                        Ok(resp) => {
                            tracing::debug!(status = %resp.status(), attempt, "event post failed")
                        }
                        Err(e) => tracing::debug!(error = %e, attempt, "event post failed"),
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
                tracing::error!("unable to send event to {url}");
            }
            Sink::Grpc(endpoint) => {
                if let Err(e) = send_grpc(endpoint, event).await {
                    tracing::error!(error = %e, "unable to send event over gRPC");
                }
            }
        }
    }
}

async fn send_grpc(
    endpoint: &str,
    ev: &FluxEvent,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    use ferroflux_proto::event_sink_client::EventSinkClient;
    let channel = tonic::transport::Endpoint::from_shared(endpoint.to_string())?
        .timeout(Duration::from_secs(5))
        .connect()
        .await?;
    let mut client = EventSinkClient::new(channel);
    client.send(to_proto(ev)).await?;
    Ok(())
}

/// The gRPC form of an event.
pub fn to_proto(ev: &FluxEvent) -> ferroflux_proto::Event {
    let o = &ev.involved_object;
    ferroflux_proto::Event {
        involved_object: Some(ferroflux_proto::ObjectReference {
            kind: o.kind.clone(),
            namespace: o.namespace.clone(),
            name: o.name.clone(),
            uid: o.uid.clone(),
            api_version: o.api_version.clone(),
            resource_version: o.resource_version.clone(),
        }),
        severity: ev.severity.clone(),
        timestamp: ev.timestamp.clone(),
        message: ev.message.clone(),
        reason: ev.reason.clone(),
        metadata: ev.metadata.clone().into_iter().collect(),
        reporting_controller: ev.reporting_controller.clone(),
        reporting_instance: ev.reporting_instance.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake API server that accepts Event creates and patches (echoing the body), holding
    /// those of namespace `slow` for `delay`; counts creates.
    async fn fake_api(delay: Duration) -> (Client, Arc<std::sync::atomic::AtomicUsize>) {
        use axum::extract::Path;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let creates = Arc::new(AtomicUsize::new(0));
        let c = creates.clone();
        let app = axum::Router::new()
            .route(
                "/api/v1/namespaces/{ns}/events",
                axum::routing::post(move |Path(ns): Path<String>, body: String| {
                    let c = c.clone();
                    async move {
                        if ns == "slow" {
                            tokio::time::sleep(delay).await;
                        }
                        c.fetch_add(1, Ordering::SeqCst);
                        (
                            axum::http::StatusCode::CREATED,
                            [("content-type", "application/json")],
                            body,
                        )
                    }
                }),
            )
            .route(
                "/api/v1/namespaces/{ns}/events/{name}",
                axum::routing::patch(move |Path((ns, name)): Path<(String, String)>| async move {
                    let ev = serde_json::json!({"apiVersion": "v1", "kind": "Event",
                        "metadata": {"name": name, "namespace": ns},
                        "involvedObject": {}});
                    (
                        axum::http::StatusCode::OK,
                        [("content-type", "application/json")],
                        ev.to_string(),
                    )
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let config = kube::Config::new(format!("http://{addr}").parse().unwrap());
        (Client::try_from(config).unwrap(), creates)
    }

    fn config_map(ns: &str) -> k8s_openapi::api::core::v1::ConfigMap {
        k8s_openapi::api::core::v1::ConfigMap {
            metadata: ObjectMeta {
                name: Some("obj".into()),
                namespace: Some(ns.into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_slow_event_write_does_not_hold_up_other_objects() {
        let (client, creates) = fake_api(Duration::from_secs(3)).await;
        let recorder = EventRecorder::new(client, "test-controller", "");
        let r = recorder.clone();
        let slow = tokio::spawn(async move {
            r.publish(
                &config_map("slow"),
                Severity::Info,
                "Slow",
                "m",
                &BTreeMap::new(),
            )
            .await
        });
        // The slow create is under way (the API server holds it).
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = std::time::Instant::now();
        recorder
            .publish(
                &config_map("fast"),
                Severity::Info,
                "Fast",
                "m",
                &BTreeMap::new(),
            )
            .await;
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "another object's event waited {:?} for the slow one",
            started.elapsed()
        );
        assert_eq!(creates.load(std::sync::atomic::Ordering::SeqCst), 1);
        slow.await.unwrap();
        assert_eq!(creates.load(std::sync::atomic::Ordering::SeqCst), 2);
        // A repeat is counted on the Event already created (a patch, no new Event).
        recorder
            .publish(
                &config_map("fast"),
                Severity::Info,
                "Fast",
                "m",
                &BTreeMap::new(),
            )
            .await;
        assert_eq!(creates.load(std::sync::atomic::Ordering::SeqCst), 2);
        let seen = recorder.seen.lock().unwrap();
        assert_eq!(seen.get("ConfigMap/fast/obj/Fast/m").map(|e| e.1), Some(2));
    }

    #[test]
    fn truncates_on_char_boundary() {
        let long = "é".repeat(MAX_MESSAGE_LEN);
        let t = truncate(&long);
        assert!(t.len() <= MAX_MESSAGE_LEN);
        assert!(t.chars().all(|c| c == 'é'));
        assert_eq!(truncate("short"), "short");
    }

    #[test]
    fn json_field_names_match_upstream() {
        let ev = FluxEvent {
            involved_object: InvolvedObject {
                kind: "Kustomization".into(),
                namespace: "apps".into(),
                name: "podinfo".into(),
                uid: "u".into(),
                api_version: "kustomize.toolkit.fluxcd.io/v1".into(),
                resource_version: "1".into(),
            },
            severity: "info".into(),
            timestamp: "2026-01-01T00:00:00Z".into(),
            message: "m".into(),
            reason: "ReconciliationSucceeded".into(),
            metadata: [(
                "kustomize.toolkit.fluxcd.io/revision".to_string(),
                "main@sha1:x".to_string(),
            )]
            .into(),
            reporting_controller: "kustomize-controller".into(),
            reporting_instance: String::new(),
        };
        let v = serde_json::to_value(&ev).unwrap();
        assert_eq!(
            v["involvedObject"]["apiVersion"],
            "kustomize.toolkit.fluxcd.io/v1"
        );
        assert_eq!(v["involvedObject"]["resourceVersion"], "1");
        assert_eq!(v["reportingController"], "kustomize-controller");
        assert_eq!(
            v["metadata"]["kustomize.toolkit.fluxcd.io/revision"],
            "main@sha1:x"
        );
        assert!(v.get("reportingInstance").is_none());
        let p = to_proto(&ev);
        assert_eq!(p.involved_object.unwrap().kind, "Kustomization");
    }
}
