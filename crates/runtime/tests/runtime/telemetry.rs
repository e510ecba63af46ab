//! One OTLP span per reconcile: the exporter sends the reconcile span, with the controller's
//! keys as attributes, to a real OTLP/gRPC collector (an in-test TraceService server).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::Span;
use tracing_subscriber::layer::SubscriberExt;

#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<(String, Span)>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        for rs in request.into_inner().resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| r.attributes.iter())
                .find(|a| a.key == "service.name")
                .and_then(|a| a.value.as_ref())
                .map(|v| format!("{:?}", v.value))
                .unwrap_or_default();
            for ss in rs.scope_spans {
                for span in ss.spans {
                    self.spans.lock().unwrap().push((service.clone(), span));
                }
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

fn attr(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref())
        .map(|v| format!("{:?}", v.value))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_spans_are_exported_over_otlp() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let (layer, guard) = ferroflux_runtime::telemetry::otlp_layer::<tracing_subscriber::Registry>(
        "source-controller",
        &format!("http://{addr}"),
    )
    .unwrap();
    assert!(layer.is_some(), "an endpoint enables the exporter");
    let subscriber = tracing_subscriber::registry().with(layer);
    {
        let _default = tracing::subscriber::set_default(subscriber);
        for name in ["podinfo", "flux-system"] {
            let span = tracing::info_span!(
                "reconcile",
                controller = "gitrepository",
                controllerKind = "GitRepository",
                name = name,
                namespace = "flux-system",
                reconcileID = "id"
            );
            let _entered = span.enter();
            tracing::info!("reconciling");
        }
    }
    // Dropping the guard flushes the batch exporter.
    tokio::task::spawn_blocking(move || drop(guard))
        .await
        .unwrap();

    let start = Instant::now();
    while collector.spans.lock().unwrap().len() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "spans never reached the collector"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let spans = collector.spans.lock().unwrap().clone();
    assert_eq!(spans.len(), 2, "one span per reconcile");
    for (service, span) in &spans {
        assert!(service.contains("source-controller"), "{service}");
        assert_eq!(span.name, "reconcile");
        assert!(attr(span, "controller").unwrap().contains("gitrepository"));
        assert!(attr(span, "reconcileID").unwrap().contains("id"));
    }
    let names: Vec<String> = spans
        .iter()
        .map(|(_, s)| attr(s, "name").unwrap())
        .collect();
    assert!(
        names.iter().any(|n| n.contains("podinfo"))
            && names.iter().any(|n| n.contains("flux-system"))
    );
}

#[test]
fn no_endpoint_no_exporter() {
    let (layer, _guard) =
        ferroflux_runtime::telemetry::otlp_layer::<tracing_subscriber::Registry>("x", "").unwrap();
    assert!(layer.is_none());
}
