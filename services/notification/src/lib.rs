//! notification-controller: receives events from the other controllers (gRPC and Flux's HTTP
//! POST), routes them through Alerts to Providers, and turns Receiver webhooks into reconcile
//! requests.

pub mod alert;
pub mod cel;
pub mod event;
pub mod intake;
pub mod oidc;
pub mod provider;
pub mod providers;
pub mod receiver;

use std::process::ExitCode;

use std::sync::Arc;

use clap::Parser;
use ferroflux_api::{Alert, Provider, Receiver};
use ferroflux_runtime::events::EventRecorder;
use ferroflux_runtime::{Manager, RuntimeOptions};
use futures::StreamExt;
use futures::stream::BoxStream;
use kube::ResourceExt;
use kube::runtime::reflector::Store;
use kube::runtime::{WatchStreamExt, reflector, watcher};

const CONTROLLER: &str = "notification-controller";
const GROUP: &str = "notification.toolkit.fluxcd.io";

/// Feature gates of notification-controller with upstream's defaults.
const FEATURE_GATES: &[(&str, bool)] = &[
    ("CacheSecretsAndConfigMaps", false),
    ("DisableConfigWatchers", false),
    ("ObjectLevelWorkloadIdentity", false),
];

#[derive(Parser, Debug)]
#[command(name = CONTROLLER, version, about = "ferroflux notification-controller")]
pub struct Flags {
    #[command(flatten)]
    pub runtime: RuntimeOptions,

    /// The address the webhook receiver server binds to.
    #[arg(long = "receiverAddr", default_value = ":9292")]
    receiver_addr: String,

    /// Interval within which identical events are rate limited.
    #[arg(long = "rate-limit-interval", default_value = "5m")]
    rate_limit_interval: String,

    /// Export HTTP path metrics of the event and receiver servers.
    #[arg(long = "export-http-path-metrics", action = clap::ArgAction::Set, num_args = 0..=1,
          default_value_t = false, default_missing_value = "true")]
    export_http_path_metrics: bool,
}

/// One watch of a static kind (Alert, Provider): the cache routing reads, and the stream its
/// reconciler runs on (applied objects); `on_delete` sees each object the watch reports deleted.
#[allow(clippy::type_complexity)]
fn watch_static<K>(
    client: kube::Client,
    namespace: Option<String>,
    label_selector: &str,
    on_delete: impl Fn(&K) + Send + Sync + 'static,
) -> (Store<K>, BoxStream<'static, Result<K, watcher::Error>>)
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    let api: kube::Api<K> = match namespace {
        Some(ns) => kube::Api::namespaced(client, &ns),
        None => kube::Api::all(client),
    };
    let mut wc = watcher::Config::default().any_semantic();
    if !label_selector.is_empty() {
        wc = wc.labels(label_selector);
    }
    let (reader, writer) = reflector::store();
    let stream = watcher(api, wc)
        .default_backoff()
        .modify(|obj: &mut K| {
            obj.meta_mut().managed_fields = None;
        })
        .reflect(writer)
        .filter_map(move |event| {
            futures::future::ready(match event {
                Ok(watcher::Event::Apply(obj) | watcher::Event::InitApply(obj)) => Some(Ok(obj)),
                Ok(watcher::Event::Delete(obj)) => {
                    on_delete(&obj);
                    None
                }
                Ok(watcher::Event::Init | watcher::Event::InitDone) => None,
                Err(e) => Some(Err(e)),
            })
        })
        .boxed();
    (reader, stream)
}

/// The alerting half of the controller: event intake, Alert and Provider caches and
/// reconcilers, dispatcher. Used by [`run`] and by tests against a test API server.
#[derive(Clone, Debug)]
pub struct Wiring {
    /// Where the event intake listens.
    pub listen: std::net::SocketAddr,
    pub rate_limit_interval: std::time::Duration,
    /// `None` watches all namespaces.
    pub namespace: Option<String>,
    pub label_selector: String,
    pub no_cross_namespace_refs: bool,
    /// The ObjectLevelWorkloadIdentity feature gate.
    pub workload_identity: bool,
}

impl Wiring {
    /// Serves the intake and returns its address and the future running the Alert and
    /// Provider loops until `shutdown` is cancelled.
    pub async fn start(
        self,
        client: kube::Client,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> std::io::Result<(
        std::net::SocketAddr,
        impl std::future::Future<Output = ()> + Send + use<>,
    )> {
        let recorder = EventRecorder::new(client.clone(), CONTROLLER, "");
        let dispatcher = provider::Dispatcher::new(recorder);
        self.start_with(client, dispatcher, shutdown).await
    }

    /// Like [`Wiring::start`], delivering through `dispatcher` (tests keep a handle on it to
    /// see its queues).
    pub async fn start_with(
        self,
        client: kube::Client,
        dispatcher: provider::Dispatcher,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> std::io::Result<(
        std::net::SocketAddr,
        impl std::future::Future<Output = ()> + Send + use<>,
    )> {
        let recorder = EventRecorder::new(client.clone(), CONTROLLER, "");
        let (alerts, alert_stream) = watch_static::<Alert>(
            client.clone(),
            self.namespace.clone(),
            &self.label_selector,
            |_| {},
        );
        // A deleted Provider's queue and worker go with it.
        let d = dispatcher.clone();
        let (providers, provider_stream) = watch_static::<Provider>(
            client.clone(),
            self.namespace.clone(),
            &self.label_selector,
            move |p: &Provider| {
                d.remove_provider(&p.namespace().unwrap_or_default(), &p.name_any());
            },
        );
        let router = Arc::new(intake::Router {
            client: client.clone(),
            alerts: alerts.clone(),
            providers: providers.clone(),
            recorder: recorder.clone(),
            dispatcher,
            no_cross_namespace_refs: self.no_cross_namespace_refs,
            workload_identity: self.workload_identity,
            caches_ready: Default::default(),
        });
        let s = shutdown.clone();
        let (addr, _server) = ferroflux_runtime::serve::spawn_http(
            self.listen,
            intake::router(intake::Intake::new(self.rate_limit_interval, Some(router))),
            async move { s.cancelled().await },
        )
        .await?;
        let signal = |t: tokio_util::sync::CancellationToken| async move { t.cancelled().await };
        let alert_loop = alert::AlertReconciler {
            client: client.clone(),
            recorder,
        }
        .run(alerts, alert_stream, signal(shutdown.clone()));
        let provider_loop = provider::ProviderReconciler { client }.run(
            providers,
            provider_stream,
            signal(shutdown),
        );
        Ok((addr, async move {
            tokio::join!(alert_loop, provider_loop);
        }))
    }
}

/// Runs the controller until SIGTERM/SIGINT (or lost leadership).
pub async fn run(mut flags: Flags) -> anyhow::Result<()> {
    let gates = flags
        .runtime
        .feature_gates(FEATURE_GATES)
        .map_err(anyhow::Error::msg)?;
    let rate_limit_interval =
        ferroflux_api::duration::parse_go_duration(&flags.rate_limit_interval)
            .map_err(|e| anyhow::anyhow!("invalid --rate-limit-interval: {e}"))?;
    // For this controller --events-addr is its own listen address (upstream default :9090).
    if flags.runtime.events_addr.is_empty() {
        flags.runtime.events_addr = ":9090".into();
    }
    let listen = ferroflux_runtime::flags::parse_listen_addr(&flags.runtime.events_addr)
        .map_err(anyhow::Error::msg)?;
    let mut runtime = flags.runtime.clone();
    // Our own events are not sent to ourselves over the network.
    runtime.events_addr.clear();
    let manager = Manager::start(CONTROLLER, runtime).await?;
    let wiring = Wiring {
        listen,
        rate_limit_interval,
        namespace: manager.watch_namespace(),
        label_selector: flags.runtime.watch_label_selector.clone(),
        no_cross_namespace_refs: flags.runtime.no_cross_namespace_refs,
        workload_identity: gates
            .get("ObjectLevelWorkloadIdentity")
            .copied()
            .unwrap_or(false),
    };
    let (addr, alerting) = wiring
        .start(manager.client.clone(), manager.shutdown_token())
        .await?;
    tracing::info!(addr = %addr, "event intake listening (HTTP and gRPC)");
    // Heap and start-up code pages handed back once a burst of events is over (routed events
    // count as activity).
    tokio::spawn(ferroflux_runtime::memory::trim_after_activity(
        std::time::Duration::from_secs(10),
    ));
    let index = receiver::ReceiverIndex::default();
    let receiver_listen = ferroflux_runtime::flags::parse_listen_addr(&flags.receiver_addr)
        .map_err(anyhow::Error::msg)?;
    let (receiver_addr, _receiver_server) = ferroflux_runtime::serve::spawn_http(
        receiver_listen,
        receiver::router(receiver::ReceiverServer::new(
            manager.client.clone(),
            index.clone(),
            flags.runtime.no_cross_namespace_refs,
        )),
        manager.shutdown_signal(),
    )
    .await?;
    tracing::info!(addr = %receiver_addr, "webhook receiver listening");
    let receivers = manager.controller_with_taps::<Receiver, _>(
        GROUP,
        4,
        receiver::ReceiverReconciler {
            recorder: EventRecorder::new(manager.client.clone(), CONTROLLER, ""),
        },
        None,
        vec![index.tap()],
    );
    manager
        .run(async move {
            tokio::join!(alerting, receivers);
        })
        .await?;
    Ok(())
}

/// The process entry point: parses `args` (first item = program name) and runs the controller.
pub fn main_entry<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    ferroflux_runtime::memory::tune_allocator();
    ferroflux_runtime::main_entry::<Flags, _, _, _, _>(CONTROLLER, args, run)
}
