//! source-controller: fetches Git repositories, OCI artifacts, Helm repositories and charts and
//! S3 buckets, packs each revision as a tar.gz artifact, serves artifacts over HTTP and streams
//! artifact events over gRPC.

pub mod artifact_events;
pub mod bucket;
pub mod bucket_gcs;
pub mod git;
pub mod gitrepository;
pub mod helm_cache;
pub mod helm_http;
pub mod helm_oci;
pub mod helmchart;
pub mod helmrepository;
pub mod oci;
pub mod ocirepository;
pub mod pipeline;
pub mod server;
pub mod storage;
pub mod verify;

/// `.sourceignore` rules, shared with `ferroflux push artifact` through `ferroflux-oci`.
pub use ferroflux_oci::ignore;

use std::process::ExitCode;

use clap::Parser;
use ferroflux_api::{Bucket, GitRepository, HelmChart, HelmRepository, OCIRepository};
use ferroflux_proto::artifact_events_server::ArtifactEventsServer;
use ferroflux_runtime::{Manager, RuntimeOptions};

use crate::artifact_events::ArtifactEventLog;

const CONTROLLER: &str = "source-controller";
const GROUP: &str = "source.toolkit.fluxcd.io";

/// Feature gates of source-controller with upstream's defaults.
const FEATURE_GATES: &[(&str, bool)] = &[
    ("CacheSecretsAndConfigMaps", false),
    ("ObjectLevelWorkloadIdentity", false),
    ("OptimizedGitClones", true),
];

#[derive(Parser, Debug)]
#[command(name = CONTROLLER, version, about = "ferroflux source-controller")]
pub struct Flags {
    #[command(flatten)]
    pub runtime: RuntimeOptions,

    /// The local storage path.
    #[arg(long = "storage-path", default_value = "/data")]
    storage_path: String,

    /// The address the static file server binds to.
    #[arg(long = "storage-addr", default_value = ":9090")]
    storage_addr: String,

    /// The advertised address of the static file server.
    #[arg(long = "storage-adv-addr", default_value = "")]
    storage_adv_addr: String,

    /// The duration of time that artifacts from previous reconciliations will be kept in storage
    /// before being garbage collected.
    #[arg(long = "artifact-retention-ttl", default_value = "1m")]
    artifact_retention_ttl: String,

    /// The maximum number of artifacts to be kept in storage after a garbage collection.
    #[arg(long = "artifact-retention-records", default_value_t = 2)]
    artifact_retention_records: u32,

    /// The algorithm to use to calculate the digest of artifacts.
    #[arg(long = "artifact-digest-algo", default_value = "sha256")]
    artifact_digest_algo: String,

    /// The max allowed size in bytes of a Helm repository index file.
    #[arg(long = "helm-index-max-size", default_value_t = 52_428_800)]
    helm_index_max_size: u64,

    /// The max allowed size in bytes of a Helm chart file.
    #[arg(long = "helm-chart-max-size", default_value_t = 10_485_760)]
    helm_chart_max_size: u64,

    /// The max allowed size in bytes of a file in a Helm chart.
    #[arg(long = "helm-chart-file-max-size", default_value_t = 5_242_880)]
    helm_chart_file_max_size: u64,

    /// The maximum size of the index cache (0 disables it).
    #[arg(long = "helm-cache-max-size", default_value_t = 0)]
    helm_cache_max_size: u64,

    /// The TTL of an index in the cache.
    #[arg(long = "helm-cache-ttl", default_value = "15m")]
    helm_cache_ttl: String,

    /// The interval at which the cache is purged of expired items.
    #[arg(long = "helm-cache-purge-interval", default_value = "1m")]
    helm_cache_purge_interval: String,

    /// The list of key exchange algorithms to use for SSH connections.
    #[arg(long = "ssh-kex-algos", value_delimiter = ',')]
    ssh_kex_algos: Vec<String>,

    /// The list of hostkey algorithms to use for SSH connections.
    #[arg(long = "ssh-hostkey-algos", value_delimiter = ',')]
    ssh_hostkey_algos: Vec<String>,

    /// (ferroflux) Object store shared by replicas, e.g.
    /// `s3://bucket/prefix?endpoint=http://minio:9000&region=us-east-1&allow_http=true`
    /// (credentials from the `AWS_*` environment variables); empty = local disk only.
    #[arg(
        long = "storage-remote-url",
        env = "STORAGE_REMOTE_URL",
        default_value = ""
    )]
    storage_remote_url: String,

    /// (ferroflux) The largest file allowed in an artifact, in bytes; 0 (the default) means no
    /// limit, as upstream has none.
    #[arg(long = "artifact-max-file-size", default_value_t = 0)]
    artifact_max_file_size: u64,

    /// (ferroflux) The largest OCI layer an OCIRepository pulls, in bytes, and the most it may
    /// unpack to; 0 (the default) means no limit, as upstream has none.
    #[arg(long = "oci-max-layer-size", default_value_t = 0)]
    oci_max_layer_size: u64,

    /// (ferroflux) The address of the gRPC server streaming artifact events.
    #[arg(long = "grpc-addr", default_value = ":9091")]
    grpc_addr: String,
}

/// Runs the controller until SIGTERM/SIGINT (or lost leadership).
pub async fn run(flags: Flags) -> anyhow::Result<()> {
    flags
        .runtime
        .feature_gates(FEATURE_GATES)
        .map_err(anyhow::Error::msg)?;
    let manager = Manager::start(CONTROLLER, flags.runtime.clone()).await?;

    let events = ArtifactEventLog::new(artifact_events::DEFAULT_RETAINED);
    let grpc_addr = ferroflux_runtime::flags::parse_listen_addr(&flags.grpc_addr)
        .map_err(anyhow::Error::msg)?;
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<ArtifactEventsServer<ArtifactEventLog>>()
        .await;
    let shutdown = manager.shutdown_signal();
    let grpc = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(ArtifactEventsServer::new(events.clone()))
        .serve_with_shutdown(grpc_addr, shutdown);
    tokio::spawn(async move {
        if let Err(e) = grpc.await {
            tracing::error!(error = %e, "artifact events gRPC server failed");
        }
    });

    let ttl = ferroflux_api::duration::parse_go_duration(&flags.artifact_retention_ttl)
        .map_err(|e| anyhow::anyhow!("invalid --artifact-retention-ttl: {e}"))?;
    let digest = storage::DigestAlgo::parse(&flags.artifact_digest_algo)?;
    let adv_addr = if flags.storage_adv_addr.is_empty() {
        storage::determine_adv_addr(&flags.storage_addr)
    } else {
        flags.storage_adv_addr.clone()
    };
    let storage = storage::Storage::new(
        &flags.storage_path,
        &adv_addr,
        ttl,
        flags.artifact_retention_records as usize,
        digest,
    )
    .map_err(|e| {
        anyhow::anyhow!(
            "unable to initialise storage at {}: {e}",
            flags.storage_path
        )
    })?;
    let storage = match flags.storage_remote_url.as_str() {
        "" => storage,
        url => storage.with_remote(storage::remote::Remote::from_url(url)?),
    };
    let storage_addr = ferroflux_runtime::flags::parse_listen_addr(&flags.storage_addr)
        .map_err(anyhow::Error::msg)?;
    let (bound, _files) = server::spawn_with_remote(
        storage_addr,
        storage.root(),
        storage.remote().cloned(),
        manager.shutdown_signal(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("unable to serve artifacts on {}: {e}", flags.storage_addr))?;
    tracing::info!(addr = %bound, adv_addr = %adv_addr, path = %storage.root().display(), "serving artifacts");

    let gates = flags
        .runtime
        .feature_gates(FEATURE_GATES)
        .map_err(anyhow::Error::msg)?;
    let limits = storage::ArchiveLimits {
        max_file_size: (flags.artifact_max_file_size > 0).then_some(flags.artifact_max_file_size),
    };
    let oci_reconciler = ocirepository::OCIRepositoryReconciler {
        storage: storage.clone(),
        events: events.clone(),
        recorder: ferroflux_runtime::events::EventRecorder::new(
            manager.client.clone(),
            CONTROLLER,
            &flags.runtime.events_addr,
        ),
        settings: ocirepository::Settings {
            limits,
            max_layer_size: (flags.oci_max_layer_size > 0).then_some(flags.oci_max_layer_size),
            object_level_workload_identity: gates
                .get(ocirepository::OBJECT_LEVEL_WORKLOAD_IDENTITY)
                .copied()
                .unwrap_or(false),
        },
        scratch_root: std::env::temp_dir().join("source-controller"),
    };
    let reconciler = gitrepository::GitRepositoryReconciler {
        storage: storage.clone(),
        events: events.clone(),
        recorder: ferroflux_runtime::events::EventRecorder::new(
            manager.client.clone(),
            CONTROLLER,
            &flags.runtime.events_addr,
        ),
        settings: gitrepository::Settings {
            limits,
            optimized_git_clones: gates.get("OptimizedGitClones").copied().unwrap_or(true),
            ssh_kex_algos: flags.ssh_kex_algos.clone(),
            ssh_hostkey_algos: flags.ssh_hostkey_algos.clone(),
            requeue_dependency: flags.runtime.requeue_dependency,
        },
        scratch_root: std::env::temp_dir().join("source-controller"),
    };

    tokio::spawn(ferroflux_runtime::memory::trim_after_activity(
        std::time::Duration::from_secs(10),
    ));

    let git = manager.controller::<GitRepository, _>(GROUP, 2, reconciler, None);
    let oci = manager.controller::<OCIRepository, _>(GROUP, 2, oci_reconciler, None);
    let helm_cache_ttl = ferroflux_api::duration::parse_go_duration(&flags.helm_cache_ttl)
        .map_err(|e| anyhow::anyhow!("invalid --helm-cache-ttl: {e}"))?;
    let helm_cache_purge =
        ferroflux_api::duration::parse_go_duration(&flags.helm_cache_purge_interval)
            .map_err(|e| anyhow::anyhow!("invalid --helm-cache-purge-interval: {e}"))?;
    let helm_cache =
        helm_cache::IndexCache::new(flags.helm_cache_max_size as usize, helm_cache_ttl)
            .map(|c| c.with_metrics(manager.metrics.clone()));
    if let Some(cache) = helm_cache.clone()
        && !helm_cache_purge.is_zero()
    {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(helm_cache_purge);
            loop {
                tick.tick().await;
                cache.purge();
            }
        });
    }
    let helmrepo_reconciler = helmrepository::HelmRepositoryReconciler {
        storage: storage.clone(),
        events: events.clone(),
        recorder: ferroflux_runtime::events::EventRecorder::new(
            manager.client.clone(),
            CONTROLLER,
            &flags.runtime.events_addr,
        ),
        settings: helmrepository::Settings {
            index_max_size: flags.helm_index_max_size,
            cache: helm_cache.clone(),
        },
    };
    let helmrepo = manager.controller::<HelmRepository, _>(GROUP, 2, helmrepo_reconciler, None);
    let chart_reconciler = helmchart::HelmChartReconciler {
        storage: storage.clone(),
        events: events.clone(),
        recorder: ferroflux_runtime::events::EventRecorder::new(
            manager.client.clone(),
            CONTROLLER,
            &flags.runtime.events_addr,
        ),
        settings: helmchart::Settings {
            index_max_size: flags.helm_index_max_size,
            limits: ferroflux_helm::package::chart::Limits {
                max_chart_size: flags.helm_chart_max_size,
                max_file_size: flags.helm_chart_file_max_size,
                ..Default::default()
            },
            requeue_dependency: flags.runtime.requeue_dependency,
            cache: helm_cache,
        },
        scratch_root: std::env::temp_dir().join("source-controller"),
    };
    let chart_sources = helmchart::SourceIndex::default();
    let chart = manager.controller_with_taps::<HelmChart, _>(
        GROUP,
        2,
        chart_reconciler,
        Some(helmchart::source_triggers(&events, chart_sources.clone())),
        vec![chart_sources.tap()],
    );
    let bucket_reconciler = bucket::BucketReconciler {
        storage: storage.clone(),
        events: events.clone(),
        recorder: ferroflux_runtime::events::EventRecorder::new(
            manager.client.clone(),
            CONTROLLER,
            &flags.runtime.events_addr,
        ),
        settings: bucket::Settings {
            limits,
            // Go's storage client talks to this host, unauthenticated, when it is set.
            gcs_emulator_host: std::env::var("STORAGE_EMULATOR_HOST")
                .ok()
                .filter(|h| !h.is_empty()),
            object_level_workload_identity: gates
                .get(ocirepository::OBJECT_LEVEL_WORKLOAD_IDENTITY)
                .copied()
                .unwrap_or(false),
        },
        scratch_root: std::env::temp_dir().join("source-controller"),
    };
    let bucket = manager.controller::<Bucket, _>(GROUP, 2, bucket_reconciler, None);
    let controllers = async move {
        tokio::join!(git, oci, helmrepo, chart, bucket);
    };
    manager.run(controllers).await?;
    Ok(())
}

/// The process entry point: parses `args` (first item = program name) and runs the controller
/// with few malloc arenas and a bounded blocking pool (idle memory).
pub fn main_entry<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    ferroflux_runtime::memory::tune_allocator();
    ferroflux_runtime::main_entry_with::<Flags, _, _, _, _>(
        CONTROLLER,
        args,
        |builder| {
            builder.max_blocking_threads(16);
        },
        run,
    )
}
