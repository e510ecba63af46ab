//! Benchmark: 10,000 objects and 100 concurrent watchers.
//!
//! Measures (1) the time to list 10,000 ConfigMaps through the HTTPS API (raw response and a
//! typed kube-rs list) and (2) the latency from issuing a write to its delivery on all 100
//! watchers. Targets on the 2-core machine: list < 100 ms, write-to-all-watchers < 10 ms.
//!
//! `cargo bench -p ferroflux-testenv --bench scale` (env `OBJECTS`, `WATCHERS`, `WRITES`).

use ferroflux_testenv::{Options, TestEnv};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;
use std::time::{Duration, Instant};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
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
    let objects = env_usize("OBJECTS", 10_000);
    let watchers = env_usize("WATCHERS", 100);
    let writes = env_usize("WRITES", 200);
    let env = TestEnv::start(Options {
        watch_window: objects * 2 + writes * 2,
        ..Default::default()
    })
    .await
    .expect("start testenv");
    let client = env.client().await.expect("client");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");

    // fill
    let t = Instant::now();
    let chunks = 16;
    let mut tasks = vec![];
    for c in 0..chunks {
        let cms = cms.clone();
        tasks.push(tokio::spawn(async move {
            for i in (c..objects).step_by(chunks) {
                let o: ConfigMap = serde_json::from_value(json!({
                    "metadata": {"name": format!("cm-{i:05}"), "labels": {"app": "bench", "shard": (i % 10).to_string()}},
                    "data": {"key": "value", "index": i.to_string()}
                }))
                .unwrap();
                cms.create(&PostParams::default(), &o).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    println!("created {objects} configmaps in {}", ms(t.elapsed()));

    // list
    let mut raw = vec![];
    let mut typed = vec![];
    for _ in 0..10 {
        let t = Instant::now();
        let req = http::Request::get("/api/v1/namespaces/default/configmaps")
            .body(vec![])
            .unwrap();
        let body = client.request_text(req).await.unwrap();
        raw.push(t.elapsed());
        assert!(body.len() > objects * 50);
        let t = Instant::now();
        let l = cms.list(&ListParams::default()).await.unwrap();
        typed.push(t.elapsed());
        assert_eq!(l.items.len(), objects);
    }
    raw.sort();
    typed.sort();
    println!(
        "list {objects}: raw HTTPS response median {} (min {}), kube-rs typed list median {} (min {})",
        ms(pct(&raw, 0.5)),
        ms(raw[0]),
        ms(pct(&typed, 0.5)),
        ms(typed[0])
    );

    // watchers
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, String, Instant)>();
    let start_rv = cms
        .list(&ListParams::default().limit(1))
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut handles = vec![];
    for w in 0..watchers {
        let cms = cms.clone();
        let tx = tx.clone();
        let rv = start_rv.clone();
        handles.push(tokio::spawn(async move {
            let mut s = cms
                .watch(
                    &WatchParams::default().labels("watched=yes").timeout(290),
                    &rv,
                )
                .await
                .unwrap()
                .boxed();
            while let Ok(Some(ev)) = s.try_next().await {
                if let WatchEvent::Modified(o) | WatchEvent::Added(o) = ev {
                    let now = Instant::now();
                    let _ = tx.send((w, o.metadata.resource_version.unwrap(), now));
                }
            }
        }));
    }
    // mark one object as watched, and wait until every watcher sees it
    cms.patch(
        "cm-00000",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"watched": "yes"}}})),
    )
    .await
    .unwrap();
    let mut ready = std::collections::HashSet::new();
    while ready.len() < watchers {
        let (w, _, _) = tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .unwrap()
            .unwrap();
        ready.insert(w);
    }

    let mut lat = vec![];
    for i in 0..writes {
        let t0 = Instant::now();
        let o = cms
            .patch(
                "cm-00000",
                &PatchParams::default(),
                &Patch::Merge(json!({"data": {"n": i.to_string()}})),
            )
            .await
            .unwrap();
        let rv = o.metadata.resource_version.unwrap();
        let mut seen = std::collections::HashSet::new();
        let mut last = t0;
        while seen.len() < watchers {
            let (w, erv, at) = tokio::time::timeout(Duration::from_secs(30), rx.recv())
                .await
                .unwrap()
                .unwrap();
            if erv == rv {
                seen.insert(w);
                last = last.max(at);
            }
        }
        lat.push(last - t0);
    }
    lat.sort();
    println!(
        "write -> delivery on all {watchers} watchers ({writes} writes): p50 {} p90 {} p99 {} max {}",
        ms(pct(&lat, 0.5)),
        ms(pct(&lat, 0.9)),
        ms(pct(&lat, 0.99)),
        ms(*lat.last().unwrap())
    );
    let list_ok = pct(&raw, 0.5) < Duration::from_millis(100);
    let watch_ok = pct(&lat, 0.5) < Duration::from_millis(10);
    println!(
        "targets: list < 100 ms: {} ; write-to-all-watchers < 10 ms (median): {}",
        if list_ok { "met" } else { "MISSED" },
        if watch_ok { "met" } else { "MISSED" }
    );
    for h in handles {
        h.abort();
    }
    env.stop().await;
}
