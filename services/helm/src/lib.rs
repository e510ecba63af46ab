//! helm-controller: reconciles HelmReleases (render charts as Helm does, install, upgrade, test,
//! rollback, uninstall with remediation, drift detection, Helm-compatible release storage).

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use ferroflux_api::HelmRelease;
use ferroflux_runtime::artifact::ArtifactFetcher;
use ferroflux_runtime::events::EventRecorder;
use ferroflux_runtime::{Manager, RuntimeOptions};

pub mod action;
pub mod chart_template;
pub mod depends_on;
pub mod drift;
pub mod helmrelease;
pub mod history;
pub mod naming;
pub mod post_render;
mod reconcile;
pub mod storage;
pub mod triggers;

const CONTROLLER: &str = "helm-controller";
const GROUP: &str = "helm.toolkit.fluxcd.io";

/// Feature gates of helm-controller with upstream's defaults.
const FEATURE_GATES: &[(&str, bool)] = &[
    ("AdditiveCELDependencyCheck", false),
    ("AdoptLegacyReleases", true),
    ("AllowDNSLookups", false),
    ("CacheSecretsAndConfigMaps", false),
    ("CancelHealthCheckOnNewRevision", false),
    ("DefaultToRetryOnFailure", false),
    ("DirectSourceFetch", false),
    ("DisableChartDigestTracking", false),
    ("DisableConfigWatchers", false),
    ("ExternalArtifact", true),
    ("ObjectLevelWorkloadIdentity", false),
    ("OOMWatch", false),
    ("UseHelm3Defaults", false),
];

#[derive(Parser, Debug)]
#[command(name = CONTROLLER, version, about = "ferroflux helm-controller")]
pub struct Flags {
    #[command(flatten)]
    pub runtime: RuntimeOptions,

    /// The maximum time to wait for in-flight Helm actions on shutdown.
    #[arg(long = "graceful-shutdown-timeout", default_value = "600s")]
    graceful_shutdown_timeout: String,

    /// The maximum number of retries when failing to fetch artifacts over HTTP.
    #[arg(long = "http-retry", default_value_t = 9)]
    http_retry: u32,

    /// The timeout of artifact downloads.
    #[arg(long = "http-timeout", default_value = "30s")]
    http_timeout: String,

    /// Default service account used to access the remote clusters of kubeConfig.secretRef.
    #[arg(long = "default-kubeconfig-service-account", default_value = "")]
    default_kubeconfig_service_account: String,

    /// The interval at which the OOM watcher checks memory usage.
    #[arg(long = "oom-watch-interval", default_value = "500ms")]
    oom_watch_interval: String,

    /// The memory threshold (percentage) at which the OOM watcher cancels in-flight actions.
    #[arg(long = "oom-watch-memory-threshold", default_value_t = 95)]
    oom_watch_memory_threshold: u8,

    /// Path to the cgroup file with the memory limit.
    #[arg(long = "oom-watch-max-memory-path", default_value = "")]
    oom_watch_max_memory_path: String,

    /// Path to the cgroup file with the current memory usage.
    #[arg(long = "oom-watch-current-memory-path", default_value = "")]
    oom_watch_current_memory_path: String,

    /// Field manager disallowed to perform changes on managed resources (repeatable).
    #[arg(long = "override-manager")]
    override_manager: Vec<String>,

    /// The digest algorithm of release snapshots.
    #[arg(long = "snapshot-digest-algo", default_value = "sha256")]
    snapshot_digest_algo: String,

    /// (ferroflux) The address of the gRPC server streaming the readiness of this controller's objects.
    #[arg(long = "grpc-addr", default_value = ":9091")]
    pub grpc_addr: String,

    /// (ferroflux) source-controller's artifact events gRPC address, e.g. http://source-controller:9091.
    #[arg(long = "artifact-events-addr", default_value = "")]
    artifact_events_addr: String,
}

/// Runs the controller until SIGTERM/SIGINT (or lost leadership).
pub async fn run(flags: Flags) -> anyhow::Result<()> {
    let gates = flags
        .runtime
        .feature_gates(FEATURE_GATES)
        .map_err(anyhow::Error::msg)?;
    let gate = |name: &str| gates.get(name).copied().unwrap_or(false);
    let http_timeout = ferroflux_api::duration::parse_go_duration(&flags.http_timeout)
        .map_err(|e| anyhow::anyhow!("invalid --http-timeout: {e}"))?;
    let manager = Manager::start(CONTROLLER, flags.runtime.clone()).await?;
    let (_, readiness) = manager
        .serve_readiness::<HelmRelease, _>(&flags.grpc_addr, |obj| {
            obj.status
                .as_ref()
                .and_then(|s| s.last_attempted_revision.clone())
                .unwrap_or_default()
        })
        .await?;
    let reconciler = helmrelease::HelmReleaseReconciler {
        settings: helmrelease::Settings {
            no_cross_namespace_refs: flags.runtime.no_cross_namespace_refs,
            allow_external_artifact: gate("ExternalArtifact"),
            disable_chart_digest_tracking: gate("DisableChartDigestTracking"),
            source_localhost: std::env::var("SOURCE_CONTROLLER_LOCALHOST").ok(),
            wait_interval: Duration::from_secs(2),
            requeue_dependency: flags.runtime.requeue_dependency,
            additive_cel_dependency_check: gate("AdditiveCELDependencyCheck"),
        },
        recorder: EventRecorder::new(
            manager.client.clone(),
            CONTROLLER,
            &flags.runtime.events_addr,
        ),
        fetcher: ArtifactFetcher::new(flags.http_retry, http_timeout),
        scratch_root: std::env::temp_dir().join(CONTROLLER),
        discovery: ferroflux_ssa::discovery::DiscoveryCache::new(),
    };
    let (triggers, requests) = triggers::Triggers::start(
        manager.client.clone(),
        manager.watch_namespace(),
        flags.artifact_events_addr.clone(),
        gate("ExternalArtifact"),
        manager.shutdown_token(),
    );
    // one watch of HelmReleases feeds the loop, the Readiness stream and the source index
    let taps = vec![readiness, triggers.index_tap()];
    let controllers =
        manager.controller_with_taps::<HelmRelease, _>(GROUP, 4, reconciler, Some(requests), taps);
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
