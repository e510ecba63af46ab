//! helm-controller benchmarks, side by side with the real `helm` in one run (issue targets in
//! brackets), against testenv with the real source-controller serving the chart:
//!
//! 1. install and no-op upgrade of `helm create`'s chart: a HelmRelease created until Ready,
//!    then a reconcile request until handled, versus `helm upgrade --install --wait` of the same
//!    packaged chart and values, run twice, against the same API server; whole operations,
//!    interleaved rounds, medians [ferroflux ≤ 0.5x helm's time];
//! 2. a no-op resync of N HelmReleases (every one asked to reconcile at once, nothing
//!    changed) for N = 250 and 500, to show the cost grows linearly [500 in ≤ 10 s];
//! 3. idle RSS of helm-controller with 100 HelmReleases [≤ 15 MiB].
//!
//! Run with `cargo bench -p ferroflux-e2e --bench helm`; with `FERROFLUX_E2E_BIN_DIR` pointing
//! at a `release-small` build (`cargo build --profile release-small -p helm-controller -p
//! source-controller -p kustomize-controller`) the controllers are the shipped binaries.
//! `FERROFLUX_BENCH=ops|resync` runs one part (resync includes the RSS figure).

use std::path::Path;
use std::time::{Duration, Instant};

use ferroflux_api::{HelmChart, HelmRelease};
use ferroflux_e2e::bench::{cpu_time, idle_rss, print_rss};
use ferroflux_e2e::helm_repo::{helm, publish, serve};
use ferroflux_e2e::{Cluster, HELM};
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;

const ROUNDS: usize = 5;
/// As kustomize's bench: idle figures after the controller's first quiet tick.
const SETTLE: Duration = Duration::from_secs(25);

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[v.len() / 2]
}

fn ready_reason(hr: &HelmRelease) -> Option<String> {
    hr.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == "True")
        .map(|c| c.reason.clone())
}

fn handled(hr: &HelmRelease, token: &str) -> bool {
    hr.status
        .as_ref()
        .and_then(|s| s.last_handled_reconcile_at.as_deref())
        == Some(token)
        && ready_reason(hr).is_some()
}

fn release(name: &str, target: &str) -> serde_json::Value {
    json!({
        "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
        "metadata": {"name": name, "namespace": "flux-system"},
        "spec": {"interval": "1h", "targetNamespace": target, "releaseName": name,
                 "chartRef": {"kind": "HelmChart", "name": "web"},
                 "values": {"replicaCount": 1}}
    })
}

/// Polls the HelmReleases of flux-system (one list per 50 ms) until `n` satisfy `done`.
async fn wait_all(api: &Api<HelmRelease>, n: usize, done: impl Fn(&HelmRelease) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let list = api.list(&ListParams::default()).await.unwrap();
        let count = list.items.iter().filter(|h| done(h)).count();
        if count >= n {
            return;
        }
        assert!(Instant::now() < deadline, "{count}/{n} done");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_one(api: &Api<HelmRelease>, name: &str, done: impl Fn(&HelmRelease) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(hr) = api.get_opt(name).await.unwrap()
            && done(&hr)
        {
            return;
        }
        assert!(Instant::now() < deadline, "{name} not done");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn request(api: &Api<HelmRelease>, name: &str, token: &str) {
    let patch = json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

/// testenv + source-controller + helm-controller, a chart repository with `helm create web`,
/// and the HelmChart `web` built by source-controller. Returns the cluster and the package.
async fn setup() -> (Cluster, std::path::PathBuf) {
    let mut cluster = Cluster::start().await.unwrap();
    cluster.start_controller(HELM).await.unwrap();
    let home = cluster.dir.path().join("helm-home");
    let repo = cluster.dir.path().join("chart-repo");
    std::fs::create_dir_all(&repo).unwrap();
    let url = serve(repo.clone()).await.unwrap();
    let package = publish(&home, &repo, &url, "web", "0.1.0").unwrap();
    cluster
        .apply(json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "HelmRepository",
            "metadata": {"name": "charts", "namespace": "flux-system"},
            "spec": {"url": url, "interval": "1h"}
        }))
        .await
        .unwrap();
    cluster
        .apply(json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "HelmChart",
            "metadata": {"name": "web", "namespace": "flux-system"},
            "spec": {"chart": "web", "version": "*", "interval": "1h",
                     "sourceRef": {"kind": "HelmRepository", "name": "charts"}}
        }))
        .await
        .unwrap();
    let charts: Api<HelmChart> = Api::namespaced(cluster.client.clone(), "flux-system");
    let deadline = Instant::now() + Duration::from_secs(60);
    while charts
        .get("web")
        .await
        .unwrap()
        .status
        .and_then(|s| s.artifact)
        .is_none()
    {
        assert!(Instant::now() < deadline, "HelmChart not built");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (cluster, package)
}

async fn namespace(cluster: &Cluster, name: &str) {
    cluster
        .apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}))
        .await
        .unwrap();
}

fn timed_helm(home: &Path, kubeconfig: &Path, args: &[&str]) -> Duration {
    let start = Instant::now();
    helm(home, kubeconfig, args).unwrap();
    start.elapsed()
}

async fn operations() {
    let (cluster, package) = setup().await;
    let api: Api<HelmRelease> = Api::namespaced(cluster.client.clone(), "flux-system");
    let home = cluster.dir.path().join("helm-home");
    let values = home.join("values.yaml");
    std::fs::write(&values, "replicaCount: 1\n").unwrap();
    let pkg = package.to_string_lossy().into_owned();
    let vals = values.to_string_lossy().into_owned();
    let (mut ff_install, mut ff_noop, mut helm_install, mut helm_noop) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // one warm-up round of each, not counted
    for round in 0..=ROUNDS {
        let name = format!("ff-{round}");
        namespace(&cluster, &name).await;
        let start = Instant::now();
        cluster.apply(release(&name, &name)).await.unwrap();
        wait_one(&api, &name, |h| {
            ready_reason(h).as_deref() == Some("InstallSucceeded")
        })
        .await;
        let install = start.elapsed();
        let token = format!("noop-{round}");
        let start = Instant::now();
        request(&api, &name, &token).await;
        wait_one(&api, &name, |h| handled(h, &token)).await;
        let noop = start.elapsed();

        let hname = format!("helm-{round}");
        let args = [
            "upgrade",
            "--install",
            &hname,
            &pkg,
            "-n",
            &hname,
            "--create-namespace",
            "--wait",
            "--timeout",
            "2m",
            "-f",
            &vals,
        ];
        let hi = timed_helm(&home, &cluster.kubeconfig, &args);
        let hn = timed_helm(&home, &cluster.kubeconfig, &args);
        if round > 0 {
            ff_install.push(install);
            ff_noop.push(noop);
            helm_install.push(hi);
            helm_noop.push(hn);
        }
    }
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!(
        "1. helm create's chart, {ROUNDS} interleaved rounds, medians (target: ferroflux <= 0.5x helm)"
    );
    let (fi, hi) = (median(&ff_install), median(&helm_install));
    let (fno, hno) = (median(&ff_noop), median(&helm_noop));
    println!(
        "   install:        ferroflux {:>7.1} ms   helm upgrade --install --wait {:>7.1} ms   {:.2}x",
        fi.as_secs_f64() * 1e3,
        hi.as_secs_f64() * 1e3,
        ratio(fi, hi)
    );
    println!(
        "   no-op upgrade:  ferroflux {:>7.1} ms   helm upgrade --install --wait {:>7.1} ms   {:.2}x",
        fno.as_secs_f64() * 1e3,
        hno.as_secs_f64() * 1e3,
        ratio(fno, hno)
    );
    println!(
        "   ferroflux install rounds: {ff_install:?}\n   helm install rounds: {helm_install:?}"
    );
    println!("   ferroflux no-op rounds: {ff_noop:?}\n   helm no-op rounds: {helm_noop:?}");
}

/// Creates HelmReleases `r-<from>..r-<to>` (one namespace each) and waits for them.
async fn populate(cluster: &Cluster, api: &Api<HelmRelease>, from: usize, to: usize) {
    for i in from..to {
        let name = format!("r-{i:04}");
        namespace(cluster, &name).await;
        cluster.apply(release(&name, &name)).await.unwrap();
    }
    wait_all(api, to, |h| ready_reason(h).is_some()).await;
}

async fn resync(cluster: &Cluster, api: &Api<HelmRelease>, n: usize) -> (Duration, Duration) {
    let pid = cluster.pid(HELM).unwrap().to_string();
    let token = format!("resync-{n}");
    let start = Instant::now();
    let cpu = cpu_time(&pid);
    for i in 0..n {
        request(api, &format!("r-{i:04}"), &token).await;
    }
    wait_all(api, n, |h| handled(h, &token)).await;
    (start.elapsed(), cpu_time(&pid) - cpu)
}

async fn scale() {
    let (cluster, _) = setup().await;
    let api: Api<HelmRelease> = Api::namespaced(cluster.client.clone(), "flux-system");
    let pid = cluster.pid(HELM).unwrap();
    let t = Instant::now();
    populate(&cluster, &api, 0, 100).await;
    println!("   (100 installs took {:?})", t.elapsed());
    tokio::time::sleep(SETTLE).await;
    let hundred = idle_rss(pid).await;
    populate(&cluster, &api, 100, 250).await;
    let r250 = resync(&cluster, &api, 250).await;
    let t = Instant::now();
    populate(&cluster, &api, 250, 500).await;
    println!("   (250 more installs took {:?})", t.elapsed());
    let r500 = resync(&cluster, &api, 500).await;
    println!("2. no-op resync of N HelmReleases (2 cores; target 500 in <= 10 s, linear)");
    for (n, (wall, cpu)) in [(250, r250), (500, r500)] {
        println!(
            "   N = {n}: {:>6.2} s wall, helm-controller CPU {:>6.2} s, {:.1} ms per release",
            wall.as_secs_f64(),
            cpu.as_secs_f64(),
            wall.as_secs_f64() * 1e3 / n as f64
        );
    }
    println!("3. idle RSS of helm-controller, highest sample over 20 s after {SETTLE:?} idle");
    print_rss("100 HelmReleases:", hundred);
}

#[tokio::main]
async fn main() {
    let part = std::env::var("FERROFLUX_BENCH").unwrap_or_default();
    if part.is_empty() || part == "ops" {
        operations().await;
    }
    if part.is_empty() || part == "resync" {
        scale().await;
    }
}
