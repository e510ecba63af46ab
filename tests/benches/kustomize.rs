//! kustomize-controller benchmarks, bounded figures (issue targets in brackets):
//!
//! 1. commit-to-applied latency: push a commit, ask source-controller to fetch (what a webhook
//!    Receiver does), wait until the Kustomization reports the commit as applied; with the
//!    ArtifactEvents gRPC stream and, for comparison, with the API watch only [p50 ≤ 1 s];
//! 2. a no-op resync of N Kustomizations (every one asked to reconcile at once, nothing
//!    changed), for N = 250, 500, 1000, to show the cost grows linearly [1,000 in ≤ 10 s];
//! 3. idle RSS of kustomize-controller with none, 100 and 1,000 Kustomizations [≤ 15 MiB].
//!
//! Run with `cargo bench -p ferroflux-e2e` (release build of the controllers).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ferroflux_api::Kustomization;
use ferroflux_e2e::bench::{cpu_time, idle_rss, print_rss, rss_parts};
use ferroflux_e2e::{Cluster, KUSTOMIZE, ready_at};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

fn configmap(name: &str, value: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  k: \"{value}\"\n")
}

fn percentile(v: &[Duration], p: f64) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn ks(name: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut spec = json!({
        "interval": "1h", "retryInterval": "5s", "path": "./one", "prune": true,
        "targetNamespace": "apps", "sourceRef": {"kind": "GitRepository", "name": "bench"}
    });
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            s.insert(k.clone(), v.clone());
        }
    }
    json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
           "metadata": {"name": name, "namespace": "flux-system"}, "spec": spec})
}

async fn latency(events: bool, runs: usize) -> Vec<Duration> {
    let mut flags = BTreeMap::new();
    if !events {
        flags.insert(KUSTOMIZE, vec!["--artifact-events-addr=".to_string()]);
    }
    let cluster = Cluster::start_with(flags).await.unwrap();
    cluster
        .apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}}))
        .await
        .unwrap();
    let repo = cluster
        .repo("bench", &[("one/cm.yaml", &configmap("cm", "0"))])
        .unwrap();
    let first = ferroflux_e2e::git(&repo.work, &["rev-parse", "HEAD"]).unwrap();
    cluster.git_repository(&repo).await.unwrap();
    cluster.apply(ks("latency", json!({}))).await.unwrap();
    cluster
        .wait_kustomization("flux-system", "latency", Duration::from_secs(60), |k| {
            ready_at(k, &first)
        })
        .await
        .unwrap();
    let mut out = Vec::new();
    for i in 1..=runs {
        let start = Instant::now();
        let commit = repo
            .commit(
                &[("one/cm.yaml", Some(&configmap("cm", &i.to_string())))],
                "bump",
            )
            .unwrap();
        cluster.request_fetch("bench").await.unwrap();
        cluster
            .wait_kustomization("flux-system", "latency", Duration::from_secs(60), |k| {
                ready_at(k, &commit)
            })
            .await
            .unwrap();
        out.push(start.elapsed());
    }
    out
}

/// Waits until `pred` holds for `n` Kustomizations named `ks-*`, following a watch (cheaper
/// for the API server, which shares the 2 cores, than listing 1,000 objects again and again).
async fn wait_all(
    api: &Api<Kustomization>,
    n: usize,
    pred: impl Fn(&Kustomization) -> bool,
    started: impl std::future::Future<Output = ()>,
) {
    use futures::StreamExt;
    use kube::runtime::watcher::{self, Event};
    // Keeps `done` current from one event; true once the initial list is complete.
    let follow = |done: &mut std::collections::BTreeSet<String>, ev: Event<Kustomization>| {
        match ev {
            Event::Apply(k) | Event::InitApply(k) => {
                let name = k.metadata.name.clone().unwrap_or_default();
                if name.starts_with("ks-") && pred(&k) {
                    done.insert(name);
                } else {
                    done.remove(&name);
                }
            }
            Event::Delete(k) => {
                done.remove(&k.metadata.name.clone().unwrap_or_default());
            }
            Event::InitDone => return true,
            Event::Init => {}
        }
        false
    };
    let mut done = std::collections::BTreeSet::new();
    let mut events = std::pin::pin!(watcher::watcher(api.clone(), watcher::Config::default()));
    // The watch is established (initial list seen) before the caller's action starts.
    while let Some(ev) = events.next().await {
        if follow(&mut done, ev.expect("watch")) {
            break;
        }
    }
    started.await;
    let deadline = Instant::now() + Duration::from_secs(600);
    while done.len() < n {
        let next = tokio::time::timeout_at(deadline.into(), events.next()).await;
        let Ok(Some(ev)) = next else {
            panic!("only {}/{n} done", done.len());
        };
        follow(&mut done, ev.expect("watch"));
    }
}

/// Creates `n` Kustomizations, waits until all are Ready, then times a resync of all.
/// Returns the resync's wall time, the CPU time the controller and this process (API server and
/// bench) used during it, and the mean time spent inside a reconcile.
async fn resync(cluster: &Cluster, n: usize, commit: &str) -> Resync {
    let pid = cluster.pid(KUSTOMIZE).unwrap().to_string();
    let api: Api<Kustomization> = Api::namespaced(cluster.client.clone(), "flux-system");
    wait_all(&api, n, |k| ready_at(k, commit), async {
        for i in 0..n {
            let name = format!("ks-{i:04}");
            cluster
                .apply(ks(&name, json!({"namePrefix": format!("{name}-")})))
                .await
                .unwrap();
        }
    })
    .await;
    let token = format!("resync-{n}");
    let start = std::cell::Cell::new(Instant::now());
    let cpu = std::cell::Cell::new((Duration::ZERO, Duration::ZERO));
    let metrics = std::cell::Cell::new((0.0, 0.0));
    let patch = json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}});
    let handled = |k: &Kustomization| {
        k.status
            .as_ref()
            .and_then(|s| s.last_handled_reconcile_at.as_deref())
            == Some(token.as_str())
            && ready_at(k, commit)
    };
    wait_all(&api, n, handled, async {
        start.set(Instant::now());
        cpu.set((cpu_time(&pid), cpu_time("self")));
        metrics.set(reconcile_seconds(cluster).await);
        for i in 0..n {
            api.patch(
                &format!("ks-{i:04}"),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .unwrap();
        }
    })
    .await;
    let (ctl, api) = cpu.get();
    let ((sum0, count0), (sum1, count1)) = (metrics.get(), reconcile_seconds(cluster).await);
    Resync {
        wall: start.get().elapsed(),
        controller_cpu: cpu_time(&pid) - ctl,
        api_cpu: cpu_time("self") - api,
        mean_reconcile: Duration::from_secs_f64((sum1 - sum0) / (count1 - count0).max(1.0)),
    }
}

struct Resync {
    wall: Duration,
    controller_cpu: Duration,
    api_cpu: Duration,
    /// Mean of `gotk_reconcile_duration_seconds` over the resync's reconciles.
    mean_reconcile: Duration,
}

/// Sum and count of kustomize-controller's `gotk_reconcile_duration_seconds` over all series.
async fn reconcile_seconds(cluster: &Cluster) -> (f64, f64) {
    let addr = cluster.metrics_addr(KUSTOMIZE).unwrap();
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let total = |suffix: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(&format!("gotk_reconcile_duration_seconds{suffix}")))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    (total("_sum"), total("_count"))
}

/// The controller releases start-up code pages at its first quiet 10 s tick after activity;
/// idle figures are taken after that (and after the heap trim at the same tick).
const SETTLE: Duration = Duration::from_secs(25);

#[tokio::main]
async fn main() {
    // `FERROFLUX_BENCH=latency|resync` runs one part (resync includes the RSS figures).
    let part = std::env::var("FERROFLUX_BENCH").unwrap_or_default();
    if part.is_empty() || part == "latency" {
        println!("1. commit-to-applied latency (commit, fetch request, artifact, apply, status)");
        for events in [true, false] {
            let l = latency(events, 10).await;
            println!(
                "   {:<32} p50 {:>7.3}s  p90 {:>7.3}s  (target p50 <= 1s)",
                if events {
                    "with ArtifactEvents gRPC"
                } else {
                    "API watch only (fallback)"
                },
                percentile(&l, 0.5).as_secs_f64(),
                percentile(&l, 0.9).as_secs_f64()
            );
        }
    }
    if !(part.is_empty() || part == "resync") {
        return;
    }

    // The default client-side limit (--kube-api-qps 50, as upstream) bounds a no-op resync at
    // about 4 API calls per Kustomization, i.e. ~80 ms each; this measures our own cost.
    println!("2. no-op resync of N Kustomizations (--concurrent=4, --kube-api-qps=5000, 2 cores)");
    let cluster = Cluster::start_with(BTreeMap::from([(
        KUSTOMIZE,
        vec![
            "--kube-api-qps=5000".to_string(),
            "--kube-api-burst=10000".to_string(),
            // As deployed (deploy/base): the lease renewals are part of the idle work.
            "--enable-leader-election".to_string(),
        ],
    )]))
    .await
    .unwrap();
    cluster
        .apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}}))
        .await
        .unwrap();
    let repo = cluster
        .repo("bench", &[("one/cm.yaml", &configmap("cm", "0"))])
        .unwrap();
    let commit = ferroflux_e2e::git(&repo.work, &["rev-parse", "HEAD"]).unwrap();
    cluster.git_repository(&repo).await.unwrap();
    let pid = cluster.pid(KUSTOMIZE).unwrap();
    tokio::time::sleep(SETTLE).await;
    let empty = idle_rss(pid).await;
    let mut hundred = empty;
    for n in [100usize, 250, 500, 1000] {
        // Cumulative: the first n Kustomizations exist after this call (ks-0000..).
        let r = resync(&cluster, n, &commit).await;
        println!(
            "   N = {n:>4}: {:>6.2}s  ({:.2} ms per Kustomization; {:.1} ms mean inside a reconcile; CPU: controller {:.1}s, API server + bench {:.1}s)  (target for 1,000: <= 10s)",
            r.wall.as_secs_f64(),
            r.wall.as_secs_f64() / n as f64 * 1000.0,
            r.mean_reconcile.as_secs_f64() * 1000.0,
            r.controller_cpu.as_secs_f64(),
            r.api_cpu.as_secs_f64()
        );
        if n == 100 {
            tokio::time::sleep(SETTLE).await;
            hundred = idle_rss(pid).await;
        }
    }
    let busy = rss_parts(pid);
    tokio::time::sleep(SETTLE).await;
    let thousand = idle_rss(pid).await;
    println!(
        "3. idle RSS of kustomize-controller (leader election on), highest sample over the 20 s from {SETTLE:?} after the last reconcile"
    );
    print_rss("no Kustomizations:", empty);
    print_rss("100 Kustomizations:", hundred);
    print_rss("1,000 Kustomizations:", thousand);
    // For investigations: `FERROFLUX_BENCH_SMAPS=/tmp/x` keeps the controller's mappings.
    if let Ok(prefix) = std::env::var("FERROFLUX_BENCH_SMAPS") {
        let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
        std::fs::write(format!("{prefix}.smaps"), smaps).unwrap();
    }
    print_rss("1,000, right after the resync:", busy);
}
