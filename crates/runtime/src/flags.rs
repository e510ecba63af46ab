//! The command-line flags every controller shares, with upstream's names and defaults
//! (fluxcd/pkg/runtime: client, leaderelection, logger, metrics, features options).

use std::collections::BTreeMap;
use std::time::Duration;

use clap::{ArgAction, Args};

use ferroflux_api::duration::parse_go_duration;

/// Flags shared by all four controllers. Flatten into each binary's own `clap::Parser`.
#[derive(Args, Clone, Debug)]
pub struct RuntimeOptions {
    /// The address the metric endpoint binds to.
    #[arg(long = "metrics-addr", default_value = ":8080")]
    pub metrics_addr: String,

    /// The address the health endpoint binds to.
    #[arg(long = "health-addr", default_value = ":9440")]
    pub health_addr: String,

    /// The address of the events receiver: an http(s) URL (Flux's JSON POST) or grpc://host:port.
    #[arg(long = "events-addr", default_value = "")]
    pub events_addr: String,

    /// The number of concurrent reconciles per kind.
    #[arg(long = "concurrent")]
    pub concurrent: Option<u16>,

    /// Enable leader election for controller manager.
    #[arg(long = "enable-leader-election", action = ArgAction::Set, num_args = 0..=1,
          default_value_t = false, default_missing_value = "true")]
    pub enable_leader_election: bool,

    /// Interval at which non-leader candidates wait to force acquire leadership.
    #[arg(long = "leader-election-lease-duration", default_value = "35s", value_parser = parse_go_duration)]
    pub leader_election_lease_duration: Duration,

    /// Duration that the leading controller manager retries refreshing leadership before giving up.
    #[arg(long = "leader-election-renew-deadline", default_value = "30s", value_parser = parse_go_duration)]
    pub leader_election_renew_deadline: Duration,

    /// Duration the LeaderElector clients should wait between tries of actions.
    #[arg(long = "leader-election-retry-period", default_value = "5s", value_parser = parse_go_duration)]
    pub leader_election_retry_period: Duration,

    /// Release the leader lease when the process stops.
    #[arg(long = "leader-election-release-on-cancel", action = ArgAction::Set, num_args = 0..=1,
          default_value_t = true, default_missing_value = "true")]
    pub leader_election_release_on_cancel: bool,

    /// Log verbosity level: trace, debug, info or error.
    #[arg(long = "log-level", default_value = "info")]
    pub log_level: String,

    /// Log encoding format: json or console.
    #[arg(long = "log-encoding", default_value = "json")]
    pub log_encoding: String,

    /// The maximum queries-per-second of requests sent to the Kubernetes API.
    #[arg(long = "kube-api-qps", default_value_t = 50.0)]
    pub kube_api_qps: f32,

    /// The maximum burst of requests sent to the Kubernetes API.
    #[arg(long = "kube-api-burst", default_value_t = 300)]
    pub kube_api_burst: u32,

    /// The minimum amount of time for which an object being reconciled will have to wait before a retry.
    #[arg(long = "min-retry-delay", default_value = "750ms", value_parser = parse_go_duration)]
    pub min_retry_delay: Duration,

    /// The maximum amount of time for which an object being reconciled will have to wait before a retry.
    #[arg(long = "max-retry-delay", default_value = "15m", value_parser = parse_go_duration)]
    pub max_retry_delay: Duration,

    /// Watch for resources in all namespaces; if false, only the RUNTIME_NAMESPACE.
    #[arg(long = "watch-all-namespaces", action = ArgAction::Set, num_args = 0..=1,
          default_value_t = true, default_missing_value = "true")]
    pub watch_all_namespaces: bool,

    /// Watch for resources with matching labels, e.g. 'sharding.fluxcd.io/key=shard1'.
    #[arg(long = "watch-label-selector", default_value = "")]
    pub watch_label_selector: String,

    /// Watch for ConfigMaps and Secrets with matching labels.
    #[arg(
        long = "watch-configs-label-selector",
        default_value = "reconcile.fluxcd.io/watch=Enabled"
    )]
    pub watch_configs_label_selector: String,

    /// Percentage of jitter to apply to interval durations.
    #[arg(long = "interval-jitter-percentage", default_value_t = 5)]
    pub interval_jitter_percentage: u8,

    /// A comma separated list of key=value pairs defining the state of experimental features.
    #[arg(long = "feature-gates", default_value = "")]
    pub feature_gates: String,

    /// The maximum size of the cache in number of tokens.
    #[arg(long = "token-cache-max-size", default_value_t = 100)]
    pub token_cache_max_size: u32,

    /// The maximum duration for which a token will be cached.
    #[arg(long = "token-cache-max-duration", default_value = "1h", value_parser = parse_go_duration)]
    pub token_cache_max_duration: Duration,

    /// Default service account used for impersonation.
    #[arg(long = "default-service-account", default_value = "")]
    pub default_service_account: String,

    /// When set to true, references between custom resources are allowed only within the same namespace.
    #[arg(long = "no-cross-namespace-refs", action = ArgAction::Set, num_args = 0..=1,
          default_value_t = false, default_missing_value = "true")]
    pub no_cross_namespace_refs: bool,

    /// Allow use of the user entry in kubeconfigs specified in the kubeConfig field (exec plugins).
    #[arg(long = "insecure-kubeconfig-exec", action = ArgAction::Set, num_args = 0..=1,
          default_value_t = false, default_missing_value = "true")]
    pub insecure_kubeconfig_exec: bool,

    /// Allow that kubeconfigs disable TLS verification.
    #[arg(long = "insecure-kubeconfig-tls", action = ArgAction::Set, num_args = 0..=1,
          default_value_t = false, default_missing_value = "true")]
    pub insecure_kubeconfig_tls: bool,

    /// The interval at which failing dependencies are reevaluated.
    #[arg(long = "requeue-dependency", default_value = "30s", value_parser = parse_go_duration)]
    pub requeue_dependency: Duration,

    /// OTLP/gRPC endpoint for traces (one span per reconcile); also read from
    /// OTEL_EXPORTER_OTLP_ENDPOINT. Empty disables tracing export.
    #[arg(
        long = "otlp-endpoint",
        env = "OTEL_EXPORTER_OTLP_ENDPOINT",
        default_value = ""
    )]
    pub otlp_endpoint: String,
}

impl RuntimeOptions {
    /// The namespace the controller runs in (env RUNTIME_NAMESPACE, default flux-system).
    pub fn runtime_namespace() -> String {
        std::env::var("RUNTIME_NAMESPACE")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "flux-system".to_string())
    }

    /// Parses `--feature-gates` (`a=true,b=false`) over the given defaults. Unknown gates are an error,
    /// as upstream refuses them.
    pub fn feature_gates(
        &self,
        defaults: &[(&str, bool)],
    ) -> Result<BTreeMap<String, bool>, String> {
        let mut gates: BTreeMap<String, bool> =
            defaults.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        for item in self
            .feature_gates
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| format!("invalid feature gate {item:?}: expected key=value"))?;
            let key = key.trim();
            if !gates.contains_key(key) {
                return Err(format!("unknown feature gate {key:?}"));
            }
            let value: bool = value
                .trim()
                .parse()
                .map_err(|_| format!("invalid value for feature gate {key:?}: {value:?}"))?;
            gates.insert(key.to_string(), value);
        }
        Ok(gates)
    }
}

/// Parses Go's `host:port` listen address form (`:8080` means all interfaces).
pub fn parse_listen_addr(addr: &str) -> Result<std::net::SocketAddr, String> {
    let full = if addr.starts_with(':') {
        format!("0.0.0.0{addr}")
    } else {
        addr.to_string()
    };
    use std::net::ToSocketAddrs;
    full.to_socket_addrs()
        .map_err(|e| format!("invalid address {addr:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("invalid address {addr:?}: resolves to nothing"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        rt: RuntimeOptions,
    }

    #[test]
    fn upstream_defaults() {
        let cli = Cli::try_parse_from(["x"]).unwrap();
        assert_eq!(cli.rt.metrics_addr, ":8080");
        assert_eq!(cli.rt.health_addr, ":9440");
        assert!(cli.rt.watch_all_namespaces);
        assert!(!cli.rt.enable_leader_election);
        assert_eq!(cli.rt.min_retry_delay, Duration::from_millis(750));
        assert_eq!(cli.rt.max_retry_delay, Duration::from_secs(900));
        assert_eq!(
            cli.rt.leader_election_lease_duration,
            Duration::from_secs(35)
        );
        assert_eq!(cli.rt.requeue_dependency, Duration::from_secs(30));
        assert_eq!(cli.rt.interval_jitter_percentage, 5);
    }

    #[test]
    fn go_style_boolean_flags() {
        let cli = Cli::try_parse_from([
            "x",
            "--watch-all-namespaces=false",
            "--enable-leader-election",
        ])
        .unwrap();
        assert!(!cli.rt.watch_all_namespaces);
        assert!(cli.rt.enable_leader_election);
    }

    #[test]
    fn feature_gates_parse_and_reject_unknown() {
        let cli = Cli::try_parse_from(["x", "--feature-gates=OOMWatch=true"]).unwrap();
        let gates = cli
            .rt
            .feature_gates(&[("OOMWatch", false), ("ExternalArtifact", true)])
            .unwrap();
        assert!(gates["OOMWatch"]);
        assert!(gates["ExternalArtifact"]);
        let cli = Cli::try_parse_from(["x", "--feature-gates=Nope=true"]).unwrap();
        assert!(
            cli.rt
                .feature_gates(&[("OOMWatch", false)])
                .unwrap_err()
                .contains("unknown")
        );
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(parse_listen_addr(":8080").unwrap().port(), 8080);
        assert_eq!(
            parse_listen_addr("127.0.0.1:0").unwrap().ip().to_string(),
            "127.0.0.1"
        );
        assert!(parse_listen_addr("nonsense").is_err());
    }
}
