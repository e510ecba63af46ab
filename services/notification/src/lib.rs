//! notification-controller: receives events from the other controllers (gRPC and Flux's HTTP
//! POST), routes them through Alerts to Providers, and turns Receiver webhooks into reconcile
//! requests.

pub mod intake;

use std::process::ExitCode;

use clap::Parser;
use ferroflux_api::Receiver;
use ferroflux_runtime::driver::NotYetImplemented;
use ferroflux_runtime::{Manager, RuntimeOptions};

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

/// Runs the controller until SIGTERM/SIGINT (or lost leadership).
pub async fn run(mut flags: Flags) -> anyhow::Result<()> {
    flags
        .runtime
        .feature_gates(FEATURE_GATES)
        .map_err(anyhow::Error::msg)?;
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

    let (addr, _server) = ferroflux_runtime::serve::spawn_http(
        listen,
        intake::router(intake::Intake),
        manager.shutdown_signal(),
    )
    .await?;
    tracing::info!(addr = %addr, "event intake listening (HTTP and gRPC)");

    // Alert and Provider are static kinds (no status); their loops come with alerting.
    let controllers = manager.controller::<Receiver, _>(GROUP, 4, NotYetImplemented, None);
    manager.run(controllers).await?;
    Ok(())
}

/// The process entry point: parses `args` (first item = program name) and runs the controller.
pub fn main_entry<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    ferroflux_runtime::main_entry::<Flags, _, _, _, _>(CONTROLLER, args, run)
}
