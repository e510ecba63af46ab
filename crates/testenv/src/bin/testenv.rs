//! `testenv`: serve the Kubernetes API on 127.0.0.1 until SIGTERM or Ctrl-C.

use clap::Parser;
use ferroflux_testenv::{Options, TestEnv};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "testenv",
    about = "A Kubernetes-API-compatible control plane for tests and demos"
)]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Where to write the kubeconfig.
    #[arg(long, default_value = "kubeconfig")]
    kubeconfig: PathBuf,
    /// Keep state here across restarts (memory only without it).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Mark Deployments, StatefulSets, DaemonSets and Jobs ready after DELAY (e.g. 2s, 500ms).
    #[arg(long, num_args = 0..=1, default_missing_value = "1s", value_name = "DELAY")]
    simulate_workloads: Option<String>,
    /// Interval of watch BOOKMARK events (e.g. 5s).
    #[arg(long, default_value = "5s")]
    bookmark_interval: String,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map(|i| s.split_at(i))
        .unwrap_or((s, "s"));
    let n: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(format!(
                "invalid duration unit in {s:?} (use ms, s, m or h)"
            ));
        }
    };
    Ok(Duration::from_secs_f64(secs))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    // RUST_LOG as `target=level` directives; errors only by default.
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| v.parse::<tracing_subscriber::filter::Targets>().ok())
        .unwrap_or_else(|| {
            tracing_subscriber::filter::Targets::new().with_default(tracing::Level::ERROR)
        });
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer())
        .with(filter)
        .init();
    let args = Args::parse();
    let opts = Options {
        port: args.port,
        data_dir: args.data_dir,
        simulate_workloads: args
            .simulate_workloads
            .as_deref()
            .map(parse_duration)
            .transpose()?,
        bookmark_interval: parse_duration(&args.bookmark_interval)?,
        ..Options::default()
    };
    let env = TestEnv::start(opts).await?;
    env.write_kubeconfig(&args.kubeconfig)?;
    println!(
        "testenv serving on {} (kubeconfig: {})",
        env.url(),
        args.kubeconfig.display()
    );
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    env.stop().await;
    Ok(())
}
