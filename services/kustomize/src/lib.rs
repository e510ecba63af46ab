//! kustomize-controller: reconciles Kustomizations (download the source artifact, kustomize
//! build, post-build substitution, SOPS decryption, server-side apply in stages, prune by
//! inventory, health checks, dependsOn).
//!
//! Modules: [`kustomization`] (the reconciler), [`generator`] (the kustomization file a build
//! uses), [`substitute`] (postBuild variables), [`decrypt`] (SOPS), [`cel`] (health and
//! dependency expressions), [`clients`] (impersonation, remote clusters), [`triggers`] (source
//! revisions via gRPC artifact events and watches).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use ferroflux_api::Kustomization;
use ferroflux_runtime::artifact::ArtifactFetcher;
use ferroflux_runtime::events::EventRecorder;
use ferroflux_runtime::{Manager, RuntimeOptions};

pub mod cel;
pub mod clients;
pub mod decrypt;
pub mod generator;
pub mod kustomization;
pub mod substitute;
pub mod triggers;

const CONTROLLER: &str = "kustomize-controller";
const GROUP: &str = "kustomize.toolkit.fluxcd.io";

/// Feature gates of kustomize-controller with upstream's defaults.
const FEATURE_GATES: &[(&str, bool)] = &[
    ("AdditiveCELDependencyCheck", false),
    ("CacheSecretsAndConfigMaps", false),
    ("CancelHealthCheckOnNewRevision", false),
    ("DirectSourceFetch", false),
    ("DisableConfigWatchers", false),
    ("DisableFailFastBehavior", false),
    ("DisableStatusPollerCache", true),
    ("ExternalArtifact", true),
    ("GroupChangeLog", false),
    ("MigrateAPIVersion", false),
    ("ObjectLevelWorkloadIdentity", false),
    ("StrictPostBuildSubstitutions", true),
];

#[derive(Parser, Debug)]
#[command(name = CONTROLLER, version, about = "ferroflux kustomize-controller")]
pub struct Flags {
    #[command(flatten)]
    pub runtime: RuntimeOptions,

    /// The number of concurrent server-side apply operations.
    #[arg(long = "concurrent-ssa", default_value_t = 4)]
    concurrent_ssa: u16,

    /// The maximum number of retries when failing to fetch artifacts over HTTP.
    #[arg(long = "http-retry", default_value_t = 9)]
    http_retry: u32,

    /// Disallow remote bases usage in Kustomize overlays.
    #[arg(long = "no-remote-bases", action = clap::ArgAction::Set, num_args = 0..=1,
          default_value_t = false, default_missing_value = "true")]
    no_remote_bases: bool,

    /// Default service account used for decryption.
    #[arg(long = "default-decryption-service-account", default_value = "")]
    default_decryption_service_account: String,

    /// Default service account used to access the remote clusters of kubeConfig.secretRef.
    #[arg(long = "default-kubeconfig-service-account", default_value = "")]
    default_kubeconfig_service_account: String,

    /// The name of a Secret with SOPS age keys used for all Kustomizations.
    #[arg(long = "sops-age-secret", default_value = "")]
    sops_age_secret: String,

    /// The name of a ConfigMap with the Vault address for SOPS.
    #[arg(long = "sops-vault-configmap", default_value = "")]
    sops_vault_configmap: String,

    /// Field manager disallowed to perform changes on managed resources (repeatable).
    #[arg(long = "override-manager")]
    override_manager: Vec<String>,

    /// Kinds applied in a stage of their own before the rest, e.g. 'Gateway,HTTPRoute'.
    #[arg(long = "custom-apply-stage-kinds", value_delimiter = ',')]
    custom_apply_stage_kinds: Vec<String>,

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
    let mut custom_stage_kinds = Vec::new();
    for entry in flags
        .custom_apply_stage_kinds
        .iter()
        .filter(|s| !s.is_empty())
    {
        let (kind, group) = match entry.split_once('.') {
            Some((k, g)) => (k.to_string(), g.to_string()),
            None => (entry.clone(), String::new()),
        };
        custom_stage_kinds.push((group, kind));
    }
    let manager = Manager::start(CONTROLLER, flags.runtime.clone()).await?;
    let (_, readiness) = manager
        .serve_readiness::<Kustomization, _>(&flags.grpc_addr, |obj| {
            obj.status
                .as_ref()
                .and_then(|s| s.last_applied_revision.clone())
                .unwrap_or_default()
        })
        .await?;
    let base_config = kube::Config::infer()
        .await
        .map_err(|e| anyhow::anyhow!("unable to load the kubeconfig: {e}"))?;
    let settings = kustomization::Settings {
        no_cross_namespace_refs: flags.runtime.no_cross_namespace_refs,
        requeue_dependency: flags.runtime.requeue_dependency,
        strict_substitutions: gate("StrictPostBuildSubstitutions"),
        allow_external_artifact: gate("ExternalArtifact"),
        additive_cel_dependency_check: gate("AdditiveCELDependencyCheck"),
        fail_fast: !gate("DisableFailFastBehavior"),
        concurrent_ssa: usize::from(flags.concurrent_ssa.max(1)),
        override_managers: flags.override_manager.clone(),
        custom_stage_kinds,
        source_localhost: std::env::var("SOURCE_CONTROLLER_LOCALHOST").ok(),
        health_poll_interval: Duration::from_secs(2),
    };
    let (source_cache, triggers) = triggers::Triggers::start(
        manager.client.clone(),
        manager.watch_namespace(),
        flags.artifact_events_addr.clone(),
        gate("ExternalArtifact"),
        manager.shutdown_token(),
    );
    let triggers_index = source_cache.index_tap();
    let reconciler = kustomization::KustomizationReconciler {
        settings,
        recorder: EventRecorder::new(
            manager.client.clone(),
            CONTROLLER,
            &flags.runtime.events_addr,
        ),
        fetcher: ArtifactFetcher::new(flags.http_retry, Duration::from_secs(60)),
        clients: Arc::new(clients::Clients::new(
            base_config,
            manager.client.clone(),
            flags.runtime.default_service_account.clone(),
            flags.runtime.insecure_kubeconfig_exec,
            flags.runtime.insecure_kubeconfig_tls,
        )),
        scratch_root: std::env::temp_dir().join(CONTROLLER),
        discovery: ferroflux_ssa::discovery::DiscoveryCache::new(),
        // Sources are read from the watch cache, unless DirectSourceFetch asks for the API.
        source_cache: (!gate("DirectSourceFetch")).then_some(source_cache),
    };
    tokio::spawn(ferroflux_runtime::memory::trim_after_activity(
        Duration::from_secs(10),
    ));
    // One watch of Kustomizations feeds the reconcile loop, the Readiness stream and the
    // source → Kustomizations index of the triggers.
    let taps = vec![readiness, triggers_index];
    let controllers = manager.controller_with_taps::<Kustomization, _>(
        GROUP,
        4,
        reconciler,
        Some(triggers),
        taps,
    );
    manager.run(controllers).await?;
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
