//! Helm sources, ours and the real `helm` side by side in one run, as ratios:
//!
//! 1. (`fetch`) index fetch + chart pull from a chart repository of 500 chart versions (one
//!    chart made by `helm create`, packaged by `helm package` at 500 versions, indexed by
//!    `helm repo index`, served over HTTP on 127.0.0.1): a HelmRepository reconcile (index
//!    downloaded, parsed, stored) then a HelmChart reconcile (`version: "*"` resolved, chart
//!    downloaded, digest checked, stored), in process, versus `helm repo update` + `helm pull
//!    <repo>/<chart>` (target: at most 0.5x helm's time). Rounds are interleaved; medians.
//! 2. (`rss`) idle RSS of the source-controller binary with 100 ready HelmRepositories and 100
//!    ready HelmCharts (one per repository) of a small chart repository (target: at most
//!    15 MiB). `FERROFLUX_BENCH_BIN` points it at another build (the shipped `release-small`).
//!
//! Run with `cargo bench -p source-controller --bench helm` (needs the helm v4 oracle:
//! `scripts/get-oracles`; `FERROFLUX_BENCH=fetch|rss` runs one part, `FERROFLUX_BENCH_ROUNDS`
//! sets the rounds of part 1, default 5).

#[allow(dead_code)]
#[path = "../tests/it/support.rs"]
mod support;

#[allow(dead_code)]
#[path = "../tests/it/helm_support.rs"]
mod helm_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferroflux_api::{GitRepository, HelmChart, HelmRepository};
use helm_support::{ChartRepo, create_chart, helm, helm_repository};
use kube::api::{Api, PostParams};
use serde_json::json;
use source_controller::helmchart::PipelineResult;
use source_controller::storage::{DigestAlgo, Storage};

const VERSIONS: usize = 500;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// HelmRepositories held in memory; no secrets.
#[derive(Default, Clone)]
struct Lookup {
    repos: Vec<HelmRepository>,
}

impl source_controller::helm_http::SecretLookup for Lookup {
    async fn secret(
        &self,
        _namespace: &str,
        _name: &str,
    ) -> Result<Option<BTreeMap<String, Vec<u8>>>, String> {
        Ok(None)
    }
}

impl source_controller::helmchart::Lookup for Lookup {
    async fn helm_repository(
        &self,
        _namespace: &str,
        name: &str,
    ) -> Result<Option<HelmRepository>, String> {
        Ok(self
            .repos
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(name))
            .cloned())
    }
    async fn git_repository(
        &self,
        _namespace: &str,
        _name: &str,
    ) -> Result<Option<GitRepository>, String> {
        Ok(None)
    }
    async fn helm_repositories(&self, _namespace: &str) -> Result<Vec<HelmRepository>, String> {
        Ok(self.repos.clone())
    }
}

/// `podinfo` packaged by helm at `n` versions (1.0.0 … 1.0.<n-1>... spread over minors) and
/// indexed by `helm repo index`.
fn chart_repo(n: usize) -> ChartRepo {
    let repo = ChartRepo::new();
    let src = create_chart(repo.work.path(), "podinfo", &[]);
    let versions: Vec<String> = (0..n)
        .map(|i| format!("{}.{}.{}", 1 + i / 100, (i / 10) % 10, i % 10))
        .collect();
    // Two helm processes at a time.
    std::thread::scope(|s| {
        for half in versions.chunks(versions.len().div_ceil(2)) {
            let (repo, src) = (&repo, &src);
            s.spawn(move || {
                for v in half {
                    repo.package(src, v);
                }
            });
        }
    });
    repo.index(None);
    repo
}

/// One HelmRepository + HelmChart reconcile into fresh storage; the pulled version.
async fn ours_once(url: &str) -> (f64, String) {
    let dir = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let storage = Storage::new(
        dir.path(),
        "localhost:9090",
        Duration::from_secs(60),
        2,
        DigestAlgo::Sha256,
    )
    .unwrap();
    let repo = helm_repository("bench", 1, json!({"url": url, "interval": "10m"}));
    let chart: HelmChart = serde_json::from_value(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "HelmChart",
        "metadata": {"name": "podinfo", "namespace": "default", "generation": 1},
        "spec": {"chart": "podinfo", "version": "*", "interval": "10m",
                 "sourceRef": {"kind": "HelmRepository", "name": "bench"}},
    }))
    .unwrap();
    let start = Instant::now();
    let out = source_controller::helmrepository::run_pipeline(
        &repo,
        &storage,
        &Lookup::default(),
        &Default::default(),
    )
    .await;
    assert_eq!(out.result, PipelineResult::Success, "{:?}", out.status);
    let lookup = Lookup {
        repos: vec![HelmRepository {
            status: Some(out.status),
            ..repo
        }],
    };
    let out = source_controller::helmchart::run_pipeline(
        &chart,
        &storage,
        &lookup,
        &Default::default(),
        scratch.path(),
    )
    .await;
    let elapsed = start.elapsed().as_secs_f64();
    assert_eq!(out.result, PipelineResult::Success, "{:?}", out.status);
    (elapsed, out.status.artifact.unwrap().revision)
}

/// `helm repo update` + `helm pull` in a helm home where the repository was added.
fn helm_once(home: &Path) -> (f64, String) {
    let dest = tempfile::tempdir().unwrap();
    let start = Instant::now();
    helm(home, &["repo", "update", "bench"]);
    helm(
        home,
        &["pull", "bench/podinfo", "-d", dest.path().to_str().unwrap()],
    );
    let elapsed = start.elapsed().as_secs_f64();
    let file = std::fs::read_dir(dest.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name()
        .to_string_lossy()
        .into_owned();
    (elapsed, file)
}

async fn bench_fetch() {
    let t = Instant::now();
    let repo = chart_repo(VERSIONS);
    let index_size = std::fs::metadata(repo.dir.path().join("index.yaml"))
        .unwrap()
        .len();
    eprintln!(
        "fixture: {VERSIONS} versions packaged and indexed by helm in {:.1} s, index.yaml {index_size} bytes",
        t.elapsed().as_secs_f64()
    );
    let server = helm_support::serve_http(repo.dir.path(), None).await;
    let url = server.url("/");
    let home = tempfile::tempdir().unwrap();
    let h = home.path().to_path_buf();
    let u = url.clone();
    tokio::task::spawn_blocking(move || helm(&h, &["repo", "add", "bench", &u]))
        .await
        .unwrap();
    let rounds: usize = std::env::var("FERROFLUX_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    // One warm-up each (page cache, helm binary), not counted.
    ours_once(&url).await;
    let h = home.path().to_path_buf();
    tokio::task::spawn_blocking(move || helm_once(&h))
        .await
        .unwrap();
    for _ in 0..rounds {
        let (o, version) = ours_once(&url).await;
        let h = home.path().to_path_buf();
        let (t, file) = tokio::task::spawn_blocking(move || helm_once(&h))
            .await
            .unwrap();
        assert_eq!(file, format!("podinfo-{version}.tgz"), "same chart pulled");
        ours.push(o);
        theirs.push(t);
    }
    let (o, t) = (median(ours.clone()), median(theirs.clone()));
    println!("| benchmark | ours | helm | ratio | target |");
    println!("|---|---|---|---|---|");
    println!(
        "| index fetch + chart pull, {VERSIONS} versions ({index_size}-byte index), median of {rounds} | {:.1} ms | `helm repo update` + `helm pull`: {:.1} ms | {:.2}x | <= 0.5x |",
        o * 1000.0,
        t * 1000.0,
        o / t
    );
    eprintln!("ours (s): {ours:?}\nhelm (s): {theirs:?}");
}

fn rss_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn wait_ready(api: &Api<kube::api::DynamicObject>, count: usize, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let list = api.list(&Default::default()).await.unwrap();
        let ready = list
            .items
            .iter()
            .filter(|o| {
                o.data["status"]["conditions"].as_array().is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
            })
            .count();
        if ready == count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {ready}/{count} {what} became ready"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn bench_idle_rss() {
    let repo = chart_repo(10);
    let server = helm_support::serve_http(repo.dir.path(), None).await;
    let url = server.url("/");
    let env = ferroflux_testenv::TestEnv::start(ferroflux_testenv::Options::default())
        .await
        .unwrap();
    let client = env.client().await.unwrap();
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    for crd in ferroflux_api::crdgen::crd_objects().unwrap() {
        if crd.spec.group == "source.toolkit.fluxcd.io" {
            crds.create(&PostParams::default(), &crd).await.unwrap();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    env.write_kubeconfig(&kubeconfig).unwrap();
    let bin = std::env::var("FERROFLUX_BENCH_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_source-controller").to_string());
    let mut child = Command::new(&bin)
        .args([
            "--storage-path",
            dir.path().join("data").to_str().unwrap(),
            "--storage-addr",
            "127.0.0.1:0",
            "--metrics-addr",
            "127.0.0.1:0",
            "--health-addr",
            "127.0.0.1:0",
            "--grpc-addr",
            "127.0.0.1:0",
            "--log-level",
            "error",
            "--enable-leader-election",
        ])
        .env("KUBECONFIG", &kubeconfig)
        .env("RUNTIME_NAMESPACE", "default")
        .env("TMPDIR", dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let resource = |kind: &str, plural: &str| kube::api::ApiResource {
        group: "source.toolkit.fluxcd.io".into(),
        version: "v1".into(),
        api_version: "source.toolkit.fluxcd.io/v1".into(),
        kind: kind.into(),
        plural: plural.into(),
    };
    let repos: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &resource("HelmRepository", "helmrepositories"),
    );
    let charts: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &resource("HelmChart", "helmcharts"),
    );
    let count = 100;
    for i in 0..count {
        repos
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({
                    "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "HelmRepository",
                    "metadata": {"name": format!("repo-{i:03}"), "namespace": "default"},
                    "spec": {"url": url, "interval": "10m"},
                }))
                .unwrap(),
            )
            .await
            .unwrap();
        charts
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({
                    "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "HelmChart",
                    "metadata": {"name": format!("chart-{i:03}"), "namespace": "default"},
                    "spec": {"chart": "podinfo", "version": "1.x", "interval": "10m",
                             "sourceRef": {"kind": "HelmRepository", "name": format!("repo-{i:03}")}},
                }))
                .unwrap(),
            )
            .await
            .unwrap();
    }
    wait_ready(&repos, count, "HelmRepositories").await;
    wait_ready(&charts, count, "HelmCharts").await;
    // Idle: from 30 s after the last object became ready, the highest of 40 samples over 20 s.
    tokio::time::sleep(Duration::from_secs(30)).await;
    let mut rss = 0;
    for _ in 0..40 {
        rss = rss.max(rss_kib(child.id(), "VmRSS:"));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let hwm = rss_kib(child.id(), "VmHWM:");
    let _ = child.kill();
    let _ = child.wait();
    println!(
        "| idle RSS of `{}` with {count} ready HelmRepositories + {count} ready HelmCharts | {:.1} MiB (peak {:.1}) | - | {:.2}x of target | <= 15 MiB |",
        Path::new(&bin).display(),
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0,
        rss as f64 / 1024.0 / 15.0
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let only = std::env::var("FERROFLUX_BENCH").unwrap_or_default();
    rt.block_on(async {
        if only.is_empty() || only == "fetch" {
            bench_fetch().await;
        }
        if only.is_empty() || only == "rss" {
            bench_idle_rss().await;
        }
    });
}
