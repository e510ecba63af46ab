//! What every ferroflux controller shares.
//!
//! - [`flags`]: the common command-line flags with upstream names and defaults;
//! - [`logging`] and [`telemetry`]: controller-runtime style JSON logs, OTLP traces;
//! - [`metrics`] and [`serve`]: Prometheus metrics on `--metrics-addr`, health on `--health-addr`;
//! - [`leader`]: leader election on a Lease;
//! - [`driver`]: the reconcile loop on kube-runtime's Controller (finalizer, suspend, requeue,
//!   backoff, metrics, one span per reconcile);
//! - [`status`]: status patching with a field manager; [`events`]: Kubernetes Events and the
//!   forwarding to the notification service;
//! - [`kstatus`]: the kstatus computation (Current/InProgress/Failed/Terminating) of any object;
//! - [`readiness`]: the Readiness gRPC stream appliers serve for their objects;
//! - [`ratelimit`]: `--kube-api-qps`/`--kube-api-burst` token bucket on the API client;
//! - [`artifact`]: artifact download, digest verification and safe untar for consumers;
//! - [`Manager`]: process bootstrap tying the above together for a controller binary.

pub mod artifact;
pub mod artifact_events;
pub mod cel;
pub mod driver;
pub mod events;
pub mod flags;
pub mod kstatus;
pub mod leader;
pub mod logging;
pub mod memory;
pub mod metrics;
pub mod ratelimit;
pub mod readiness;
pub mod serve;
pub mod status;
pub mod telemetry;

use std::future::Future;
use std::net::SocketAddr;

use kube::Client;
use tokio_util::sync::CancellationToken;

pub use driver::{DriverConfig, Outcome, ReconcileContext, ReconcileError, Reconciler};
pub use flags::RuntimeOptions;
pub use metrics::Metrics;

/// A failure while starting a controller process.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);

/// A running controller process: client, metrics, health, leadership and shutdown signal.
pub struct Manager {
    /// Controller name, e.g. "source-controller" (field manager, event source, lease prefix).
    pub name: String,
    pub client: Client,
    pub metrics: Metrics,
    pub readiness: serve::Readiness,
    pub options: RuntimeOptions,
    pub metrics_addr: SocketAddr,
    pub health_addr: SocketAddr,
    shutdown: CancellationToken,
    leadership: Option<leader::Leadership>,
    _telemetry: telemetry::TelemetryGuard,
}

impl Manager {
    /// Sets up logs and traces, connects to the API server (KUBECONFIG or in-cluster), serves
    /// metrics and health, installs the SIGTERM/SIGINT handler and, when enabled, waits for
    /// leadership before returning.
    pub async fn start(name: &str, options: RuntimeOptions) -> Result<Self, StartError> {
        let (otel, guard) =
            telemetry::otlp_layer(name, &options.otlp_endpoint).map_err(StartError)?;
        logging::init(&options.log_level, &options.log_encoding, otel);

        let config = kube::Config::infer()
            .await
            .map_err(|e| StartError(format!("unable to load the Kubernetes client config: {e}")))?;
        let client = kube::client::ClientBuilder::try_from(config)
            .map_err(|e| StartError(format!("unable to create a Kubernetes client: {e}")))?
            .with_layer(&ratelimit::RateLimitLayer::new(
                options.kube_api_qps,
                options.kube_api_burst,
            ))
            .build();
        let metrics = Metrics::new();
        let readiness = serve::Readiness::default();
        let shutdown = CancellationToken::new();

        let metrics_addr = flags::parse_listen_addr(&options.metrics_addr).map_err(StartError)?;
        let health_addr = flags::parse_listen_addr(&options.health_addr).map_err(StartError)?;
        let s = shutdown.clone();
        let (metrics_addr, _) = serve::spawn_http(
            metrics_addr,
            serve::metrics_router(metrics.clone()),
            async move { s.cancelled().await },
        )
        .await
        .map_err(|e| {
            StartError(format!(
                "unable to serve metrics on {}: {e}",
                options.metrics_addr
            ))
        })?;
        let s = shutdown.clone();
        let (health_addr, _) = serve::spawn_http(
            health_addr,
            serve::health_router(readiness.clone()),
            async move { s.cancelled().await },
        )
        .await
        .map_err(|e| {
            StartError(format!(
                "unable to serve health on {}: {e}",
                options.health_addr
            ))
        })?;

        let s = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown signal received, stopping");
            s.cancel();
        });

        let leadership = if options.enable_leader_election {
            let cfg = leader::LeaderConfig {
                lease_name: leader::lease_name(name, &options.watch_label_selector),
                namespace: RuntimeOptions::runtime_namespace(),
                identity: leader::identity(),
                lease_duration: options.leader_election_lease_duration,
                renew_deadline: options.leader_election_renew_deadline,
            };
            tracing::info!(lease = %cfg.lease_name, identity = %cfg.identity, "attempting to acquire leader lease");
            let wait = leader::Leadership::acquire(client.clone(), &cfg);
            let leadership = tokio::select! {
                l = wait => l.map_err(StartError)?,
                _ = shutdown.cancelled() => return Err(StartError("stopped before acquiring leadership".into())),
            };
            tracing::info!(lease = %cfg.lease_name, "successfully acquired lease");
            metrics
                .leader_election_master_status
                .get_or_create(&metrics::NameLabel {
                    name: cfg.lease_name.clone(),
                })
                .set(1);
            Some(leadership)
        } else {
            None
        };

        Ok(Self {
            name: name.to_string(),
            client,
            metrics,
            readiness,
            options,
            metrics_addr,
            health_addr,
            shutdown,
            leadership,
            _telemetry: guard,
        })
    }

    /// `None` to watch all namespaces, else RUNTIME_NAMESPACE (`--watch-all-namespaces=false`).
    pub fn watch_namespace(&self) -> Option<String> {
        if self.options.watch_all_namespaces {
            None
        } else {
            Some(RuntimeOptions::runtime_namespace())
        }
    }

    /// Driver settings for one kind from the common flags.
    pub fn driver_config(&self, kind: &str, group: &str, default_concurrency: u16) -> DriverConfig {
        DriverConfig {
            controller: kind.to_lowercase(),
            group: group.to_string(),
            kind: kind.to_string(),
            concurrency: self
                .options
                .concurrent
                .unwrap_or(default_concurrency)
                .max(1),
            min_retry_delay: self.options.min_retry_delay,
            max_retry_delay: self.options.max_retry_delay,
            jitter_percentage: self.options.interval_jitter_percentage,
            namespace: self.watch_namespace(),
            label_selector: self.options.watch_label_selector.clone(),
        }
    }

    /// The reconcile loop of one kind, configured from the common flags; runs until shutdown.
    pub fn controller<K, R>(
        &self,
        group: &str,
        default_concurrency: u16,
        reconciler: R,
        extra_triggers: Option<
            futures::stream::BoxStream<'static, kube::runtime::reflector::ObjectRef<K>>,
        >,
    ) -> impl Future<Output = ()> + Send + use<K, R>
    where
        K: driver::Reconcilable<Scope = k8s_openapi::NamespaceResourceScope>,
        R: Reconciler<K>,
    {
        self.controller_with_taps(
            group,
            default_concurrency,
            reconciler,
            extra_triggers,
            Vec::new(),
        )
    }

    /// [`Manager::controller`] whose watch also feeds `taps` (the Readiness stream from
    /// [`Manager::serve_readiness`], indexes).
    pub fn controller_with_taps<K, R>(
        &self,
        group: &str,
        default_concurrency: u16,
        reconciler: R,
        extra_triggers: Option<
            futures::stream::BoxStream<'static, kube::runtime::reflector::ObjectRef<K>>,
        >,
        taps: Vec<driver::WatchTap<K>>,
    ) -> impl Future<Output = ()> + Send + use<K, R>
    where
        K: driver::Reconcilable<Scope = k8s_openapi::NamespaceResourceScope>,
        R: Reconciler<K>,
    {
        let kind = K::kind(&()).to_string();
        driver::run::<K, R>(
            self.client.clone(),
            self.driver_config(&kind, group, default_concurrency),
            reconciler,
            self.metrics.clone(),
            extra_triggers,
            taps,
            self.shutdown_signal(),
        )
    }

    /// Serves the Readiness gRPC stream of kind `K` on `addr` (Go `host:port` form) until
    /// shutdown; `revision` picks the revision to report. Returns the bound address and the tap
    /// that feeds the stream: pass it to [`Manager::controller_with_taps`] for `K`.
    pub async fn serve_readiness<K, R>(
        &self,
        addr: &str,
        revision: R,
    ) -> Result<(SocketAddr, driver::WatchTap<K>), StartError>
    where
        K: ferroflux_api::FluxObject,
        R: Fn(&K) -> String + Send + Sync + 'static,
    {
        let listen = flags::parse_listen_addr(addr).map_err(StartError)?;
        let hub = readiness::ReadinessHub::new();
        let bound = readiness::serve(hub.clone(), listen, self.shutdown_signal())
            .await
            .map_err(|e| StartError(format!("unable to serve readiness on {addr}: {e}")))?;
        tracing::info!(addr = %bound, "readiness gRPC server listening");
        Ok((bound, hub.tap(revision)))
    }

    /// Resolves when the process should stop (signal or lost leadership).
    pub fn shutdown_signal(&self) -> impl Future<Output = ()> + Send + Sync + 'static + use<> {
        let token = self.shutdown.clone();
        async move { token.cancelled().await }
    }

    /// A token cancelled on shutdown, for tasks that outlive the controllers' futures.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Runs the controllers until shutdown; exits with an error when leadership is lost.
    pub async fn run<F>(mut self, controllers: F) -> Result<(), StartError>
    where
        F: Future<Output = ()> + Send,
    {
        self.readiness.set_ready(true);
        tracing::info!(metrics = %self.metrics_addr, health = %self.health_addr, "starting controllers");
        let lost = async {
            match self.leadership.as_mut() {
                Some(l) => {
                    l.lost().await;
                    true
                }
                None => futures::future::pending::<bool>().await,
            }
        };
        let result = tokio::select! {
            _ = controllers => Ok(()),
            true = lost => Err(StartError("leader election lost".into())),
        };
        self.shutdown.cancel();
        tracing::info!("controllers stopped");
        if let Some(l) = self.leadership.take()
            && self.options.leader_election_release_on_cancel
            && result.is_ok()
        {
            l.release().await;
            tracing::info!("leader lease released");
        }
        tracing::info!("stopped");
        result
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The process entry point every controller binary shares: parses `args` (first item = program
/// name) into `F`, runs `run` on a multi-threaded tokio runtime, and maps the outcome to an exit
/// code (2 for bad flags, 1 for a failure logged as one JSON line).
pub fn main_entry<F, I, T, Fut, E>(
    controller: &str,
    args: I,
    run: impl FnOnce(F) -> Fut,
) -> std::process::ExitCode
where
    F: clap::Parser,
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
    Fut: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    main_entry_with(controller, args, |_| {}, run)
}

/// [`main_entry`] with a hook that tunes the tokio runtime before it is built (called after the
/// flags parsed), for controllers with special needs such as a bounded blocking pool.
pub fn main_entry_with<F, I, T, Fut, E>(
    controller: &str,
    args: I,
    tune: impl FnOnce(&mut tokio::runtime::Builder),
    run: impl FnOnce(F) -> Fut,
) -> std::process::ExitCode
where
    F: clap::Parser,
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
    Fut: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    use std::process::ExitCode;
    let flags = match F::try_parse_from(args) {
        Ok(f) => f,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    tune(&mut builder);
    let runtime = match builder.build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{controller}: unable to start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(flags)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let line = serde_json::json!({
                "level": "error",
                "msg": format!("{controller} failed"),
                "error": format!("{e:#}"),
            });
            eprintln!("{line}");
            ExitCode::FAILURE
        }
    }
}
