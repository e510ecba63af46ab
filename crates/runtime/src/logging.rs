//! Structured logs with controller-runtime's JSON keys, so `flux logs` and log pipelines built
//! for upstream Flux read ours unchanged:
//! `{"level":"info","ts":"2026-01-01T00:00:00.000Z","msg":"...","controller":"gitrepository",
//!   "controllerGroup":"source.toolkit.fluxcd.io","controllerKind":"GitRepository",
//!   "GitRepository":{"name":"x","namespace":"y"},"namespace":"y","name":"x","reconcileID":"..."}`.
//!
//! Fields of every enclosing span are merged into each line (outermost first); a span carrying
//! `controllerKind`, `name` and `namespace` also yields the nested `<Kind>: {name, namespace}` object.

use std::fmt::Write as _;
use std::io::Write as _;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// Collects tracing fields into a JSON map.
#[derive(Default)]
struct FieldMap(Map<String, Value>);

impl Visit for FieldMap {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().to_string(), Value::String(value.to_string()));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_string(), Value::Bool(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_string(), Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .insert(field.name().to_string(), Value::String(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let mut s = String::new();
        let _ = write!(s, "{value:?}");
        self.0.insert(field.name().to_string(), Value::String(s));
    }
}

/// The layer writing controller-runtime style JSON lines to a writer.
pub struct JsonLayer<W> {
    make_writer: W,
}

impl<W> JsonLayer<W> {
    pub fn new(make_writer: W) -> Self {
        Self { make_writer }
    }
}

fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "info",
        Level::ERROR => "error",
    }
}

/// Renders one log line from the event's fields and its spans' fields (outermost first).
pub fn render_line(
    level: &Level,
    target: &str,
    ts: &str,
    spans: &[&Map<String, Value>],
    event: Map<String, Value>,
) -> String {
    let mut line = Map::new();
    line.insert("level".into(), Value::String(level_name(level).into()));
    line.insert("ts".into(), Value::String(ts.to_string()));
    let mut fields = Map::new();
    for span in spans {
        for (k, v) in span.iter() {
            fields.insert(k.clone(), v.clone());
        }
    }
    let mut event = event;
    let msg = event
        .remove("message")
        .unwrap_or(Value::String(String::new()));
    line.insert("msg".into(), msg);
    if !target.is_empty() && !target.starts_with("ferroflux") && !target.contains("_controller") {
        line.insert("logger".into(), Value::String(target.to_string()));
    }
    for (k, v) in event {
        fields.insert(k, v);
    }
    if let (Some(Value::String(kind)), Some(name), Some(namespace)) = (
        fields.get("controllerKind").cloned(),
        fields.get("name").cloned(),
        fields.get("namespace").cloned(),
    ) {
        let mut obj = Map::new();
        obj.insert("name".into(), name);
        obj.insert("namespace".into(), namespace);
        line.insert(kind, Value::Object(obj));
    }
    for (k, v) in fields {
        line.insert(k, v);
    }
    let mut s = Value::Object(line).to_string();
    s.push('\n');
    s
}

impl<S, W> Layer<S> for JsonLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + 'static,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        let mut fields = FieldMap::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: Context<'_, S>,
    ) {
        if let Some(span) = ctx.span(id) {
            let mut ext = span.extensions_mut();
            if let Some(fields) = ext.get_mut::<FieldMap>() {
                values.record(fields);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = FieldMap::default();
        event.record(&mut fields);
        let ts = jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string();
        let scope: Vec<_> = ctx
            .event_scope(event)
            .map(|scope| scope.from_root().collect())
            .unwrap_or_default();
        let exts: Vec<_> = scope.iter().map(|span| span.extensions()).collect();
        let maps: Vec<&Map<String, Value>> = exts
            .iter()
            .filter_map(|ext| ext.get::<FieldMap>().map(|f| &f.0))
            .collect();
        let line = render_line(
            event.metadata().level(),
            event.metadata().target(),
            &ts,
            &maps,
            fields.0,
        );
        let _ = self.make_writer.make_writer().write_all(line.as_bytes());
    }
}

/// The level filter: `RUST_LOG` when set and valid (`target=level` directives, as
/// `tracing_subscriber::filter::Targets` reads them; no span or field filters, so no regex
/// engine is linked for it), otherwise `--log-level` with the HTTP stack quietened.
fn filter_for(level: &str) -> Targets {
    let base = match level {
        "trace" => "trace",
        "debug" => "debug",
        "error" => "error",
        _ => "info",
    };
    // Quiet the HTTP stack unless asked for trace.
    let directives = if base == "trace" {
        base.to_string()
    } else {
        format!(
            "{base},hyper=warn,h2=warn,tower=warn,rustls=warn,kube_client=warn,kube_runtime=warn,reqwest=warn"
        )
    };
    std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse::<Targets>().ok())
        .or_else(|| directives.parse().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO))
}

/// Installs the global subscriber: JSON (default) or console encoding, plus an optional extra
/// layer (the OpenTelemetry exporter).
pub fn init<L>(level: &str, encoding: &str, extra: Option<L>)
where
    L: Layer<tracing_subscriber::Registry> + Send + Sync + 'static,
{
    let registry = tracing_subscriber::registry().with(extra);
    let filter = filter_for(level);
    let result = if encoding == "console" {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_filter(filter),
            )
            .try_init()
    } else {
        registry
            .with(JsonLayer::new(std::io::stderr).with_filter(filter))
            .try_init()
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buf {
        type Writer = Buf;
        fn make_writer(&'a self) -> Buf {
            self.clone()
        }
    }

    #[test]
    fn controller_runtime_keys() {
        let buf = Buf::default();
        let subscriber = tracing_subscriber::registry().with(JsonLayer::new(buf.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(
                "reconcile",
                controller = "gitrepository",
                controllerGroup = "source.toolkit.fluxcd.io",
                controllerKind = "GitRepository",
                name = "podinfo",
                namespace = "flux-system",
                reconcileID = "abc"
            );
            let _g = span.enter();
            tracing::error!(error = "boom", "Reconciler error");
        });
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let v: Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "Reconciler error");
        assert_eq!(v["error"], "boom");
        assert_eq!(v["controller"], "gitrepository");
        assert_eq!(v["controllerKind"], "GitRepository");
        assert_eq!(v["GitRepository"]["name"], "podinfo");
        assert_eq!(v["GitRepository"]["namespace"], "flux-system");
        assert_eq!(v["reconcileID"], "abc");
        let ts = v["ts"].as_str().unwrap();
        assert!(ts.ends_with('Z') && ts.len() == 24, "{ts}");
    }
}
