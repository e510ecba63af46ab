//! Load benchmark of the alerting path, with the real `notification-controller` binary against
//! the test API server: events POSTed at a fixed rate (default 60,000 over one minute) →
//! intake → Alert matching → a generic Provider → a local HTTP receiver. Prints the intake
//! latency percentiles, how many events arrived (every event is distinct, so the rate limit
//! drops none), and the controller's resident memory idle and after the load.
//!
//! `cargo bench -p notification-controller --bench intake -- [--events N] [--rate PER_SECOND]`
//!
//! The controller measured is the `bench`-profile build of the binary unless
//! `FERROFLUX_BENCH_BIN` names another one, e.g. the shipped `release-small` build:
//! `FERROFLUX_BENCH_BIN=$CARGO_TARGET_DIR/release-small/notification-controller`.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn event(i: u64) -> serde_json::Value {
    serde_json::json!({
        "involvedObject": {"kind": "Kustomization", "namespace": "default", "name": "podinfo",
                           "uid": "u-1", "apiVersion": "kustomize.toolkit.fluxcd.io/v1"},
        "severity": "info", "timestamp": "2026-01-01T00:00:00Z",
        "message": format!("Applied revision: main@sha1:{i:040x}"),
        "reason": "ReconciliationSucceeded",
        "metadata": {"kustomize.toolkit.fluxcd.io/revision": format!("main@sha1:{i:040x}")},
        "reportingController": "kustomize-controller"
    })
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let total = arg("--events", 60_000);
    let rate = arg("--rate", 1_000).max(1);

    let env = ferroflux_testenv::TestEnv::start(ferroflux_testenv::Options::default())
        .await
        .unwrap();
    let client = env.client().await.unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in ferroflux_api::crdgen::crd_objects().unwrap() {
        if crd.spec.group == "notification.toolkit.fluxcd.io" {
            crds.create(&PostParams::default(), &crd).await.unwrap();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    env.write_kubeconfig(&kubeconfig).unwrap();

    // The receiving end: counts distinct messages.
    let seen: Arc<Mutex<HashSet<String>>> = Arc::new(Mutex::new(HashSet::new()));
    let s = seen.clone();
    let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let s = s.clone();
        async move {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body)
                && let Some(m) = v["message"].as_str()
            {
                s.lock().unwrap().insert(m.to_string());
            }
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let provider: ferroflux_api::Provider = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "hook"},
        "spec": {"type": "generic", "address": format!("http://{hook}/")}}))
    .unwrap();
    Api::<ferroflux_api::Provider>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &provider)
        .await
        .unwrap();
    let alert: ferroflux_api::Alert = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "all"},
        "spec": {"providerRef": {"name": "hook"},
                 "eventSources": [{"kind": "Kustomization", "name": "*"}]}}))
    .unwrap();
    Api::<ferroflux_api::Alert>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &alert)
        .await
        .unwrap();

    let events_port = free_port();
    let bin = std::env::var("FERROFLUX_BENCH_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_notification-controller").to_string());
    println!("controller binary:  {bin}");
    println!(
        "load average:       {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let mut child = Command::new(&bin)
        .args([
            &format!("--events-addr=127.0.0.1:{events_port}"),
            &format!("--receiverAddr=127.0.0.1:{}", free_port()),
            &format!("--metrics-addr=127.0.0.1:{}", free_port()),
            &format!("--health-addr=127.0.0.1:{}", free_port()),
            "--enable-leader-election=false",
            "--log-level=error",
        ])
        .env("KUBECONFIG", &kubeconfig)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("notification-controller starts");
    let pid = child.id();
    let url = format!("http://127.0.0.1:{events_port}/");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();

    // Warm-up: one event delivered end to end.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let _ = http.post(&url).json(&event(u64::MAX)).send().await;
        if seen.lock().unwrap().len() == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "controller did not come up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Idle: the controller hands back heap and start-up code at its first quiet 10 s tick.
    tokio::time::sleep(Duration::from_secs(25)).await;
    let idle = rss_kib(pid);
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(idle));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_kib(pid), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    // The load: `rate` events per second, each request timed.
    let latencies: Arc<Mutex<Vec<Duration>>> =
        Arc::new(Mutex::new(Vec::with_capacity(total as usize)));
    let refused = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    let tick = Duration::from_millis(10);
    let per_tick = (rate / 100).max(1);
    let mut sent = 0u64;
    let mut interval = tokio::time::interval(tick);
    while sent < total {
        interval.tick().await;
        for _ in 0..per_tick.min(total - sent) {
            let http = http.clone();
            let url = url.clone();
            let lat = latencies.clone();
            let refused = refused.clone();
            let body = event(sent);
            tasks.push(tokio::spawn(async move {
                let t = Instant::now();
                match http.post(&url).json(&body).send().await {
                    Ok(r) if r.status().as_u16() == 202 => lat.lock().unwrap().push(t.elapsed()),
                    _ => {
                        refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }));
            sent += 1;
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    let send_time = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(60);
    while (seen.lock().unwrap().len() as u64) < total + 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let delivered = seen.lock().unwrap().len() as u64 - 1;
    let drained = started.elapsed();
    let loaded = rss_kib(pid);
    sampler.abort();
    tokio::time::sleep(Duration::from_secs(25)).await;
    let idle_after = rss_kib(pid);
    let mut lat = latencies.lock().unwrap().clone();
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "events sent:        {total} in {:.1}s ({:.0}/s)",
        send_time.as_secs_f64(),
        total as f64 / send_time.as_secs_f64()
    );
    println!("accepted (202):     {}", lat.len());
    println!(
        "refused or failed:  {}",
        refused.load(std::sync::atomic::Ordering::Relaxed)
    );
    println!(
        "delivered:          {delivered} (lost: {}), all delivered {:.1}s after the first",
        total.saturating_sub(delivered),
        drained.as_secs_f64()
    );
    println!(
        "intake latency:     p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
    println!(
        "controller RSS:     idle {:.1} MiB, peak under load {:.1} MiB, at the end of the load {:.1} MiB, idle after {:.1} MiB",
        idle as f64 / 1024.0,
        peak.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1024.0,
        loaded as f64 / 1024.0,
        idle_after as f64 / 1024.0
    );
    let _ = child.kill();
    let _ = child.wait();
}
