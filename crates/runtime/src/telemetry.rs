//! OpenTelemetry: when an OTLP endpoint is configured, every reconcile span (and its children)
//! is exported over OTLP/gRPC with the controller's name as `service.name`.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::Layer;

/// Keeps the tracer provider alive; flushes pending spans on drop.
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown();
        }
    }
}

/// A boxed tracing layer.
pub type BoxedLayer<S> = Box<dyn Layer<S> + Send + Sync>;

/// A tracing layer exporting spans to `endpoint` (must be called inside a tokio runtime),
/// or `None` when the endpoint is empty.
pub fn otlp_layer<S>(
    service: &str,
    endpoint: &str,
) -> Result<(Option<BoxedLayer<S>>, TelemetryGuard), String>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a> + Send + Sync,
{
    if endpoint.is_empty() {
        return Ok((None, TelemetryGuard { provider: None }));
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint.to_string())
        .build()
        .map_err(|e| format!("failed to build the OTLP exporter for {endpoint}: {e}"))?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(service.to_string())
                .build(),
        )
        .build();
    let tracer = provider.tracer(service.to_string());
    let layer = tracing_opentelemetry::layer().with_tracer(tracer).boxed();
    Ok((
        Some(layer),
        TelemetryGuard {
            provider: Some(provider),
        },
    ))
}
