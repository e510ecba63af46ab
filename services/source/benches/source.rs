//! source-controller benchmarks, ours and the reference side by side in one run, as ratios:
//!
//! 1. fetch + artifact of a repository of 5,000 files / ~50 MB over git:// versus
//!    `git clone --depth 1` + `tar czf` (target: at most 1.0x the time);
//! 2. artifact serving throughput versus nginx on the same file, measured with wrk
//!    (target: at least 0.8x);
//! 3. idle RSS of the source-controller binary watching 100 ready GitRepositories
//!    (target: at most 15 MiB);
//! 4. (`oci`) pulling and storing an OCIRepository artifact of 5,000 files / ~50 MB from a
//!    local `docker-registry` versus `skopeo copy` of the same artifact to a directory
//!    (target: at most 1.0x the time);
//! 5. (`rss-oci`) idle RSS as in 3, watching 100 ready OCIRepositories of a small artifact in a
//!    local `docker-registry` (target: at most 15 MiB).
//!
//! Run with `cargo bench -p source-controller` (needs git, nginx and wrk:
//! `apt-get install -y nginx-light wrk`; the `oci` part docker-registry and skopeo:
//! `apt-get install -y docker-registry skopeo`).

#[allow(dead_code)]
#[path = "../tests/it/support.rs"]
mod support;

#[allow(dead_code)]
#[path = "../tests/it/registry.rs"]
mod registry;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferroflux_api::GitRepository;
use kube::api::{Api, PostParams};
use serde_json::json;
use source_controller::gitrepository::{PipelineResult, Settings, run_pipeline};
use source_controller::storage::{DigestAlgo, Storage};

use support::{FakeLookup, Repos, free_port, git, git_daemon};

const FILES: usize = 5_000;
const FILE_SIZE: usize = 10_000;
const RUNS: usize = 3;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn need(bin: &str, hint: &str) {
    let ok = Command::new("sh")
        .args(["-c", &format!("command -v {bin}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "{bin} is required for this benchmark: {hint}");
}

/// 5,000 files of pseudo-random text in 50 directories, one commit.
fn big_repo(repos: &Repos) {
    let w = repos.work("big");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..FILES {
        let dir = w.join(format!("dir{:02}", i % 50));
        std::fs::create_dir_all(&dir).unwrap();
        let mut s = String::with_capacity(FILE_SIZE);
        while s.len() < FILE_SIZE {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            s.push_str(&format!("key{}: {:016x}\n", x % 97, x));
        }
        std::fs::write(dir.join(format!("file{i:05}.yaml")), s).unwrap();
    }
    git(&w, &["add", "-A"]);
    git(&w, &["commit", "-q", "-m", "big"]);
    repos.publish("big");
}

async fn bench_fetch(url: &str) -> (f64, f64, std::path::PathBuf, tempfile::TempDir) {
    let lookup = FakeLookup::default();
    let settings = Settings::default();
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    let mut last = None;
    for i in 0..RUNS {
        let dir = tempfile::tempdir().unwrap();
        let scratch = tempfile::tempdir().unwrap();
        let storage = Storage::new(
            dir.path(),
            "localhost",
            Duration::from_secs(60),
            2,
            DigestAlgo::Sha256,
        )
        .unwrap();
        let obj: GitRepository =
            support::git_repository("big", 1, json!({"url": url, "ref": {"branch": "main"}}));
        let t = Instant::now();
        let out = run_pipeline(&obj, &storage, &lookup, &settings, scratch.path()).await;
        ours.push(t.elapsed().as_secs_f64());
        assert_eq!(out.result, PipelineResult::Success, "run {i}");
        let path = storage
            .local_path(&out.status.artifact.unwrap().path)
            .unwrap();
        last = Some((path, dir));

        let work = tempfile::tempdir().unwrap();
        let t = Instant::now();
        let clone = Command::new("git")
            .args(["clone", "-q", "--depth", "1", "--branch", "main", url])
            .arg(work.path().join("c"))
            .status()
            .unwrap();
        let tar = Command::new("tar")
            .args(["czf"])
            .arg(work.path().join("out.tar.gz"))
            .args(["--exclude=.git", "-C"])
            .arg(work.path().join("c"))
            .arg(".")
            .status()
            .unwrap();
        theirs.push(t.elapsed().as_secs_f64());
        assert!(clone.success() && tar.success());
    }
    let (path, dir) = last.unwrap();
    (median(ours), median(theirs), path, dir)
}

fn wrk(url: &str) -> (f64, f64) {
    let out = Command::new("wrk")
        .args(["-t2", "-c16", "-d8s", url])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("Non-2xx") && !text.contains("Socket errors"),
        "wrk against {url} saw errors:\n{text}"
    );
    let field = |name: &str| -> String {
        text.lines()
            .find(|l| l.trim_start().starts_with(name))
            .and_then(|l| l.split(':').nth(1))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    let rps: f64 = field("Requests/sec").parse().unwrap_or(0.0);
    let tput = field("Transfer/sec");
    let (num, unit) = tput.split_at(
        tput.find(|c: char| c.is_ascii_alphabetic())
            .unwrap_or(tput.len()),
    );
    let mult = match unit {
        "GB" => 1024.0 * 1024.0 * 1024.0,
        "MB" => 1024.0 * 1024.0,
        "KB" => 1024.0,
        _ => 1.0,
    };
    (rps, num.parse::<f64>().unwrap_or(0.0) * mult)
}

async fn bench_serving(file: &Path, root: &Path) -> (f64, f64, f64, f64) {
    need("nginx", "apt-get install -y nginx-light");
    need("wrk", "apt-get install -y wrk");
    let rel = file
        .strip_prefix(root)
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let (addr, _srv) = source_controller::server::spawn(
        "127.0.0.1:0".parse().unwrap(),
        root,
        std::future::pending(),
    )
    .await
    .unwrap();
    let ngx_dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = ngx_dir.path().join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "daemon off;\nuser root;\nworker_processes auto;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{ worker_connections 1024; }}\nhttp {{\n access_log off;\n sendfile on;\n tcp_nopush on;\n client_body_temp_path {d};\n proxy_temp_path {d};\n fastcgi_temp_path {d};\n uwsgi_temp_path {d};\n scgi_temp_path {d};\n server {{ listen 127.0.0.1:{port}; root {r}; }}\n}}\n",
            d = ngx_dir.path().display(),
            r = root.display()
        ),
    )
    .unwrap();
    let mut nginx = Command::new("nginx")
        .args(["-c"])
        .arg(&conf)
        .args(["-p"])
        .arg(ngx_dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let ours = tokio::task::spawn_blocking({
        let url = format!("http://{addr}/{rel}");
        move || wrk(&url)
    })
    .await
    .unwrap();
    let theirs = wrk(&format!("http://127.0.0.1:{port}/{rel}"));
    let _ = nginx.kill();
    let _ = nginx.wait();
    (ours.0, ours.1, theirs.0, theirs.1)
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

/// The kind of the 100 objects the RSS part watches: GitRepositories of a Git repository over
/// HTTP with basic auth, or OCIRepositories of a small artifact in a local registry.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RssKind {
    Git,
    Oci,
}

async fn bench_idle_rss(url: &str, kind: RssKind) -> (u64, u64, usize) {
    use k8s_openapi::api::core::v1::Secret;
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
    // `FERROFLUX_BENCH_BIN` measures another build of the binary (e.g. a different profile).
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
            // As deployed (deploy/base): the lease renewals are part of the idle work.
            "--enable-leader-election",
        ])
        .env("KUBECONFIG", &kubeconfig)
        .env("RUNTIME_NAMESPACE", "default")
        .env("TMPDIR", dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "auth"}, "stringData": {"username": "user", "password": "pass"}}))
                .unwrap(),
        )
        .await
        .unwrap();
    let (plural, kind_name) = match kind {
        RssKind::Git => ("gitrepositories", "GitRepository"),
        RssKind::Oci => ("ocirepositories", "OCIRepository"),
    };
    let resource = kube::api::ApiResource {
        group: "source.toolkit.fluxcd.io".into(),
        version: "v1".into(),
        api_version: "source.toolkit.fluxcd.io/v1".into(),
        kind: kind_name.into(),
        plural: plural.into(),
    };
    let api: Api<kube::api::DynamicObject> =
        Api::namespaced_with(client.clone(), "default", &resource);
    let count: usize = std::env::var("FERROFLUX_BENCH_REPOS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    for i in 0..count {
        let spec = match kind {
            RssKind::Git => {
                json!({"url": url, "interval": "10m", "ref": {"branch": "main"}, "secretRef": {"name": "auth"}})
            }
            RssKind::Oci => {
                json!({"url": url, "interval": "10m", "ref": {"tag": "v1"}, "insecure": true})
            }
        };
        api.create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": kind_name,
                "metadata": {"name": format!("repo-{i:03}"), "namespace": "default"},
                "spec": spec,
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(300);
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
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {ready}/{count} {kind_name} objects became ready"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Idle: from 30 s after the last object became ready (past the controller's 10 s idle
    // trim and code release), the highest of 40 samples over 20 s.
    tokio::time::sleep(Duration::from_secs(30)).await;
    let mut rss = 0;
    for _ in 0..40 {
        rss = rss.max(rss_kib(child.id(), "VmRSS:"));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let hwm = rss_kib(child.id(), "VmHWM:");
    // For investigations: keep a copy of the mappings (`FERROFLUX_BENCH_SMAPS=/path/prefix`
    // writes `<prefix>.smaps`, `<prefix>.rollup` and `<prefix>.status`).
    if let Ok(prefix) = std::env::var("FERROFLUX_BENCH_SMAPS") {
        for part in ["smaps", "smaps_rollup", "status"] {
            let text =
                std::fs::read_to_string(format!("/proc/{}/{part}", child.id())).unwrap_or_default();
            std::fs::write(format!("{prefix}.{part}"), text).unwrap();
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    (rss, hwm, count)
}

/// The `big_repo` tree as one Flux content layer in a local registry; returns the registry,
/// the OCIRepository URL and the tree size.
async fn oci_fixture() -> (registry::Registry, String, usize) {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut files = Vec::with_capacity(FILES);
    for i in 0..FILES {
        let mut s = String::with_capacity(FILE_SIZE);
        while s.len() < FILE_SIZE {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            s.push_str(&format!("key{}: {:016x}\n", x % 97, x));
        }
        files.push((format!("dir{:02}/file{i:05}.yaml", i % 50), s));
    }
    let size = files.iter().map(|(_, c)| c.len()).sum();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    let reg = registry::start(None, None);
    reg.push(
        "big",
        Some("v1"),
        registry::FLUX_CONFIG,
        &[registry::Layer::flux(&refs)],
        &std::collections::BTreeMap::new(),
    )
    .await;
    let url = reg.url("big");
    (reg, url, size)
}

/// Timings of one OCI comparison, median seconds over the interleaved rounds.
struct OciTimes {
    /// Median of the per-round ratios extract / skopeo.
    extract_ratio: f64,
    extract: f64,
    /// `extract` with an ignore rule that drops one file (the tree archived again).
    rearchive: f64,
    copy: f64,
    skopeo: f64,
    artifact_size: u64,
    blob_size: u64,
}

/// Medians of ours (the OCIRepository pipeline, fresh storage each round, with the `extract`
/// and the `copy` layer operation) and of `skopeo copy docker://… dir:…`, run in turns.
async fn bench_oci(reg: &registry::Registry, url: &str) -> OciTimes {
    use source_controller::ocirepository as oci;
    let lookup = FakeLookup::default();
    let settings = oci::Settings::default();
    let (mut extract, mut copy, mut rearchive, mut theirs) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut artifact_size, mut blob_size) = (0, 0);
    let mut ratios = Vec::new();
    let mut extract_digest = String::new();
    let rounds: usize = std::env::var("FERROFLUX_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    for i in 0..rounds {
        for (operation, ignore) in [
            ("extract", None),
            ("copy", None),
            // A rule that drops one file: the tree is archived again.
            ("extract", Some("dir07/file00007.yaml\n")),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let scratch = tempfile::tempdir().unwrap();
            let storage = Storage::new(
                dir.path(),
                "localhost",
                Duration::from_secs(60),
                2,
                DigestAlgo::Sha256,
            )
            .unwrap();
            let obj: ferroflux_api::OCIRepository = serde_json::from_value(json!({
                "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "OCIRepository",
                "metadata": {"name": "big", "namespace": "default", "generation": 1},
                "spec": {"url": url, "interval": "1m", "insecure": true, "ref": {"tag": "v1"},
                         "ignore": ignore,
                         "layerSelector": {"mediaType": registry::FLUX_CONTENT, "operation": operation}},
            }))
            .unwrap();
            let t = Instant::now();
            let out = oci::run_pipeline(&obj, &storage, &lookup, &settings, scratch.path()).await;
            let took = t.elapsed().as_secs_f64();
            assert_eq!(
                out.result,
                oci::PipelineResult::Success,
                "round {i} {operation}"
            );
            let artifact = out.status.artifact.unwrap();
            if ignore.is_some() {
                rearchive.push(took);
                artifact_size = artifact.size.unwrap_or(0) as u64;
            } else if operation == "extract" {
                extract.push(took);
                extract_digest = artifact.digest;
            } else {
                copy.push(took);
                assert_eq!(
                    artifact.digest, extract_digest,
                    "the plain layer, left whole, is stored as is by extract"
                );
            }
        }

        let dest = tempfile::tempdir().unwrap();
        let t = Instant::now();
        let out = Command::new("skopeo")
            .args(["copy", "--quiet", "--src-tls-verify=false"])
            .arg(format!("docker://{}/big:v1", reg.addr))
            .arg(format!("dir:{}", dest.path().join("out").display()))
            .output()
            .unwrap();
        theirs.push(t.elapsed().as_secs_f64());
        assert!(
            out.status.success(),
            "skopeo copy: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        blob_size = std::fs::read_dir(dest.path().join("out"))
            .unwrap()
            .filter_map(|e| e.ok()?.metadata().ok())
            .map(|m| m.len())
            .max()
            .unwrap_or(0);
        eprintln!(
            "round {i}: extract {:.2}s, copy {:.2}s, extract+ignore {:.2}s, skopeo {:.2}s; ratios {:.2}x {:.2}x {:.2}x",
            extract[i],
            copy[i],
            rearchive[i],
            theirs[i],
            extract[i] / theirs[i],
            copy[i] / theirs[i],
            rearchive[i] / theirs[i]
        );
        ratios.push(extract[i] / theirs[i]);
    }
    OciTimes {
        extract_ratio: median(ratios),
        extract: median(extract),
        rearchive: median(rearchive),
        copy: median(copy),
        skopeo: median(theirs),
        artifact_size,
        blob_size,
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let repos = Repos::new();
        let t = Instant::now();
        big_repo(&repos);
        repos.commit("small", &[("app.yaml", "kind: ConfigMap\n")], "small");
        repos.publish("small");
        eprintln!("fixture: {FILES} files in {:.1}s", t.elapsed().as_secs_f64());
        let daemon = git_daemon(&repos.base());
        // The reference speaks protocol v2 too (its default).
        let big = format!("git://127.0.0.1:{}/big.git", daemon.port);

        let only = std::env::var("FERROFLUX_BENCH").unwrap_or_default();
        let run = |name: &str| only.is_empty() || only.split(',').any(|o| o == name);
        if run("fetch") || run("serve") {
        let (ours, theirs, artifact, storage_dir) = bench_fetch(&big).await;
        let size = std::fs::metadata(&artifact).unwrap().len();
        println!(
            "fetch+artifact ({FILES} files, {} MB tree, {:.1} MB tar.gz): ours {ours:.2}s, git clone --depth 1 + tar czf {theirs:.2}s, ratio {:.2}x (target <= 1.0x)",
            FILES * FILE_SIZE / 1_000_000,
            size as f64 / 1e6,
            ours / theirs
        );

        if run("serve") {
        let (o_rps, o_bps, n_rps, n_bps) = bench_serving(&artifact, storage_dir.path()).await;
        println!(
            "serving {:.1} MB artifact (wrk -t2 -c16 -d8s): ours {o_rps:.1} req/s {:.0} MB/s, nginx {n_rps:.1} req/s {:.0} MB/s, ratio {:.2}x (target >= 0.8x)",
            size as f64 / 1e6,
            o_bps / 1e6,
            n_bps / 1e6,
            o_bps / n_bps.max(1.0)
        );
        }
        }
        if run("rss-oci") {
        let reg = registry::start(None, None);
        reg.push(
            "small",
            Some("v1"),
            registry::FLUX_CONFIG,
            &[registry::Layer::flux(&[("app.yaml", "kind: ConfigMap\n")])],
            &std::collections::BTreeMap::new(),
        )
        .await;
        let (rss, hwm, count) = bench_idle_rss(&reg.url("small"), RssKind::Oci).await;
        println!(
            "idle RSS watching {count} ready OCIRepositories: {:.1} MiB (peak {:.1} MiB), ratio to target {:.2}x (target <= 15 MiB)",
            rss as f64 / 1024.0,
            hwm as f64 / 1024.0,
            rss as f64 / 1024.0 / 15.0
        );
        }
        if run("oci") {
        need("skopeo", "apt-get install -y skopeo");
        let (reg, url, tree) = oci_fixture().await;
        let t = bench_oci(&reg, &url).await;
        println!(
            "OCIRepository pull+artifact ({FILES} files, {} MB tree, {:.1} MB layer, {:.1} MB re-archived artifact), median of rounds: extract (checked unpack, plain layer stored as is) {:.2}s, copy (blob stored as is) {:.2}s, extract with an ignore rule dropping one file (re-archived) {:.2}s, skopeo copy to dir {:.2}s; ratios of medians extract {:.2}x, copy {:.2}x, extract+ignore {:.2}x; median of per-round extract ratios {:.2}x (target <= 1.0x)",
            tree / 1_000_000,
            t.blob_size as f64 / 1e6,
            t.artifact_size as f64 / 1e6,
            t.extract,
            t.copy,
            t.rearchive,
            t.skopeo,
            t.extract / t.skopeo,
            t.copy / t.skopeo,
            t.rearchive / t.skopeo,
            t.extract_ratio
        );
        }
        if run("rss") {
        let http = support::http_git(&repos.base(), "user", "pass").await;
        let small = format!("http://{}/small.git", http.addr);
        let (rss, hwm, count) = bench_idle_rss(&small, RssKind::Git).await;
        println!(
            "idle RSS watching {count} ready GitRepositories: {:.1} MiB (peak {:.1} MiB), ratio to target {:.2}x (target <= 15 MiB)",
            rss as f64 / 1024.0,
            hwm as f64 / 1024.0,
            rss as f64 / 1024.0 / 15.0
        );
        }
    });
}
