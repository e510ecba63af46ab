//! kustomize-controller benchmarks, bounded figures (issue targets in brackets):
//!
//! 1. commit-to-applied latency: push a commit, ask source-controller to fetch (what a webhook
//!    Receiver does), wait until the Kustomization reports the commit as applied; with the
//!    ArtifactEvents gRPC stream and, for comparison, with the API watch only [p50 ≤ 1 s];
//! 2. a no-op resync of N Kustomizations (every one asked to reconcile at once, nothing
//!    changed), for N = 250, 500, 1000, to show the cost grows linearly [1,000 in ≤ 10 s];
//! 3. idle RSS of kustomize-controller with those 1,000 Kustomizations [≤ 15 MiB].
//!
//! Run with `cargo bench -p ferroflux-e2e` (release build of the controllers).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ferroflux_api::Kustomization;
use ferroflux_e2e::{Cluster, KUSTOMIZE, ready_at};
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;

fn configmap(name: &str, value: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  k: \"{value}\"\n")
}

fn percentile(v: &[Duration], p: f64) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
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

/// Creates `n` Kustomizations, waits until all are Ready, then times a resync of all.
async fn resync(cluster: &Cluster, n: usize, commit: &str) -> Duration {
    let api: Api<Kustomization> = Api::namespaced(cluster.client.clone(), "flux-system");
    for i in 0..n {
        let name = format!("ks-{i:04}");
        cluster
            .apply(ks(&name, json!({"namePrefix": format!("{name}-")})))
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let list = api.list(&ListParams::default()).await.unwrap();
        let ready = list
            .items
            .iter()
            .filter(|k| {
                k.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with("ks-"))
            })
            .filter(|k| ready_at(k, commit))
            .count();
        if ready >= n {
            break;
        }
        assert!(Instant::now() < deadline, "only {ready}/{n} Ready");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let token = format!("resync-{n}");
    let start = Instant::now();
    let patch = json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}});
    for i in 0..n {
        api.patch(
            &format!("ks-{i:04}"),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .unwrap();
    }
    loop {
        let list = api.list(&ListParams::default()).await.unwrap();
        let done = list
            .items
            .iter()
            .filter(|k| {
                k.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with("ks-"))
            })
            .filter(|k| {
                k.status
                    .as_ref()
                    .and_then(|s| s.last_handled_reconcile_at.as_deref())
                    == Some(token.as_str())
                    && ready_at(k, commit)
            })
            .count();
        if done >= n {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "resync of {n}: only {done} done"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::main]
async fn main() {
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

    // The default client-side limit (--kube-api-qps 50, as upstream) bounds a no-op resync at
    // about 5 API calls per Kustomization, i.e. ~100 ms each; this measures our own cost.
    println!("2. no-op resync of N Kustomizations (--concurrent=4, --kube-api-qps=5000, 2 cores)");
    let cluster = Cluster::start_with(BTreeMap::from([(
        KUSTOMIZE,
        vec![
            "--kube-api-qps=5000".to_string(),
            "--kube-api-burst=10000".to_string(),
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
    tokio::time::sleep(Duration::from_secs(2)).await;
    let baseline = rss_kib(pid);
    for n in [250usize, 500, 1000] {
        // Cumulative: the first n Kustomizations exist after this call (ks-0000..).
        let took = resync(&cluster, n, &commit).await;
        println!(
            "   N = {n:>4}: {:>6.2}s  ({:.2} ms per Kustomization)  (target for 1,000: <= 10s)",
            took.as_secs_f64(),
            took.as_secs_f64() / n as f64 * 1000.0
        );
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    println!("3. idle RSS of kustomize-controller");
    println!(
        "   no Kustomizations:     {:>6.1} MiB",
        baseline as f64 / 1024.0
    );
    println!(
        "   1,000 Kustomizations:  {:>6.1} MiB  (target <= 15 MiB)",
        rss_kib(pid) as f64 / 1024.0
    );
}
