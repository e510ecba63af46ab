//! `ferroflux stats`: per kind, how many objects run, fail and are suspended and the storage
//! their artifacts take, as `flux stats` prints it.

use std::io::Write;

use kube::api::ListParams;
use serde_json::Value;

use super::cluster::{ClusterArgs, run, with_timeout};
use super::kinds::{self, Kind};
use super::table;

/// `ferroflux stats`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  # The stats of flux-system
  ferroflux stats

  # The stats of the whole cluster
  ferroflux stats -A")]
pub struct StatsArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// List the statistics for objects across all namespaces.
    #[arg(short = 'A', long = "all-namespaces")]
    pub all_namespaces: bool,
}

/// flux's order (the image kinds, which ferroflux does not serve, print as zero rows there).
static ORDER: [&Kind; 10] = [
    &kinds::GIT,
    &kinds::OCI,
    &kinds::HELMREPO,
    &kinds::CHART,
    &kinds::BUCKET,
    &kinds::KUSTOMIZATION,
    &kinds::HELMRELEASE,
    &kinds::ALERT,
    &kinds::PROVIDER,
    &kinds::RECEIVER,
];

const IMAGE_KINDS: [&str; 3] = ["ImageUpdateAutomation", "ImagePolicy", "ImageRepository"];

/// flux's `formatSize`.
pub fn format_size(b: i64) -> String {
    if b == 0 {
        return "-".into();
    }
    const UNIT: i64 = 1024;
    if b < UNIT {
        return format!("{b} B");
    }
    let (mut div, mut exp) = (UNIT, 0usize);
    let mut n = b / UNIT;
    while n >= UNIT {
        div *= UNIT;
        exp += 1;
        n /= UNIT;
    }
    format!("{:.1} {}iB", b as f64 / div as f64, &"KMGTPE"[exp..exp + 1])
}

fn stats_row(kind: &str, items: &[Value]) -> Vec<String> {
    let total = items.len();
    let suspended = items.iter().filter(|o| kinds::suspended(o)).count();
    let failing = items
        .iter()
        .map(|o| {
            o.pointer("/status/conditions")
                .and_then(Value::as_array)
                .map(|cs| {
                    cs.iter()
                        .filter(|c| {
                            c.get("type").and_then(Value::as_str) == Some("Ready")
                                && c.get("status").and_then(Value::as_str) == Some("False")
                        })
                        .count()
                })
                .unwrap_or(0)
        })
        .sum::<usize>();
    let size: i64 = items
        .iter()
        .filter_map(|o| o.pointer("/status/artifact/size").and_then(Value::as_i64))
        .sum();
    vec![
        kind.to_string(),
        (total - suspended).to_string(),
        failing.to_string(),
        suspended.to_string(),
        format_size(size),
    ]
}

/// Runs `ferroflux stats`.
pub fn command(args: StatsArgs) -> anyhow::Result<()> {
    let timeout = args.cluster.timeout;
    run(with_timeout(timeout, async move {
        let cluster = args.cluster.connect().await?;
        let scope = (!args.all_namespaces).then_some(cluster.namespace.as_str());
        let lp = ListParams::default();
        let lists =
            futures::future::join_all(ORDER.iter().map(|k| cluster.list(k, scope, &lp))).await;
        let mut rows: Vec<Vec<String>> = ORDER
            .iter()
            .zip(lists)
            .map(|(k, r)| stats_row(k.kind, &r.map(|(items, _)| items).unwrap_or_default()))
            .collect();
        for k in IMAGE_KINDS {
            rows.push(stats_row(k, &[]));
        }
        let text = table::render(
            &["Reconcilers", "Running", "Failing", "Suspended", "Storage"],
            &rows,
        );
        std::io::stdout().lock().write_all(text.as_bytes())?;
        Ok(())
    }))
}

#[cfg(test)]
mod tests {
    use super::format_size;

    #[test]
    fn sizes_as_flux() {
        assert_eq!(format_size(0), "-");
        assert_eq!(format_size(512), "512 B");
        assert_eq!(format_size(1536), "1.5 KiB");
        assert_eq!(format_size(5 * 1024 * 1024), "5.0 MiB");
    }
}
