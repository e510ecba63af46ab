//! `ferroflux get all -A` against `kubectl get <every Flux kind> -A` on the same 1,000 Flux
//! objects (with Ready conditions and artifacts in their status, over 10 namespaces), both as
//! whole processes against one testenv API server, interleaved runs, medians and their ratio.
//!
//! `cargo bench -p ferroflux-cli --bench get [-- RUNS]`; `KUBECTL=/path/to/kubectl` picks the
//! kubectl (default: the one on PATH). kubectl's discovery cache lives in a temporary
//! directory warmed by one untimed run, as on a workstation.

use std::process::Command;
use std::time::{Duration, Instant};

use kube::api::{Api, Patch, PatchParams};
use kube::core::{ApiResource, DynamicObject};
use serde_json::{Value, json};

const FERROFLUX: &str = env!("CARGO_BIN_EXE_ferroflux");

/// (group, version, kind, plural, how many)
const MIX: &[(&str, &str, &str, &str, usize)] = &[
    (
        "source.toolkit.fluxcd.io",
        "v1",
        "GitRepository",
        "gitrepositories",
        200,
    ),
    (
        "source.toolkit.fluxcd.io",
        "v1",
        "OCIRepository",
        "ocirepositories",
        100,
    ),
    ("source.toolkit.fluxcd.io", "v1", "Bucket", "buckets", 50),
    (
        "source.toolkit.fluxcd.io",
        "v1",
        "HelmRepository",
        "helmrepositories",
        50,
    ),
    (
        "source.toolkit.fluxcd.io",
        "v1",
        "HelmChart",
        "helmcharts",
        100,
    ),
    (
        "kustomize.toolkit.fluxcd.io",
        "v1",
        "Kustomization",
        "kustomizations",
        300,
    ),
    (
        "helm.toolkit.fluxcd.io",
        "v2",
        "HelmRelease",
        "helmreleases",
        150,
    ),
    (
        "notification.toolkit.fluxcd.io",
        "v1beta3",
        "Provider",
        "providers",
        20,
    ),
    (
        "notification.toolkit.fluxcd.io",
        "v1beta3",
        "Alert",
        "alerts",
        20,
    ),
    (
        "notification.toolkit.fluxcd.io",
        "v1",
        "Receiver",
        "receivers",
        10,
    ),
];

fn spec(kind: &str, i: usize) -> Value {
    match kind {
        "GitRepository" => {
            json!({"url": format!("https://git.example.com/org/repo-{i}.git"), "interval": "5m", "ref": {"branch": "main"}})
        }
        "OCIRepository" => {
            json!({"url": format!("oci://registry.example.com/org/app-{i}"), "interval": "5m", "ref": {"tag": "latest"}})
        }
        "Bucket" => {
            json!({"bucketName": format!("b-{i}"), "endpoint": "s3.example.com", "interval": "5m"})
        }
        "HelmRepository" => {
            json!({"url": format!("https://charts.example.com/{i}"), "interval": "1h"})
        }
        "HelmChart" => json!({"chart": "podinfo", "version": "6.x", "interval": "1h",
            "sourceRef": {"kind": "HelmRepository", "name": format!("helmrepository-{i}")}}),
        "Kustomization" => json!({"interval": "10m", "path": format!("./apps/{i}"), "prune": true,
            "sourceRef": {"kind": "GitRepository", "name": format!("gitrepository-{i}")}}),
        "HelmRelease" => {
            json!({"interval": "10m", "chart": {"spec": {"chart": "podinfo", "version": "6.x",
            "sourceRef": {"kind": "HelmRepository", "name": format!("helmrepository-{i}")}}}})
        }
        "Provider" => {
            json!({"type": "slack", "channel": "general", "address": "https://hooks.example.com/x"})
        }
        "Alert" => json!({"providerRef": {"name": format!("provider-{i}")},
            "eventSources": [{"kind": "Kustomization", "name": "*"}]}),
        "Receiver" => json!({"type": "github", "events": ["push"], "secretRef": {"name": "token"},
            "resources": [{"kind": "GitRepository", "name": "*"}]}),
        _ => json!({}),
    }
}

fn status(kind: &str, i: usize) -> Option<Value> {
    let sha = format!("{:040x}", i as u128 * 0x9e3779b97f4a7c15);
    let ready = |msg: String| {
        json!([{"type": "Ready", "status": "True", "reason": "Succeeded",
        "message": msg, "lastTransitionTime": "2026-12-01T00:00:00Z", "observedGeneration": 1}])
    };
    let artifact = |rev: String| {
        json!({"revision": rev, "digest": format!("sha256:{sha}{}", &sha[..24]),
        "path": "x.tar.gz", "url": "http://source-controller/x.tar.gz", "size": 1234 + i,
        "lastUpdateTime": "2026-12-01T00:00:00Z"})
    };
    Some(match kind {
        "GitRepository" | "OCIRepository" | "Bucket" => {
            let rev = format!("main@sha1:{sha}");
            json!({"observedGeneration": 1, "artifact": artifact(rev.clone()),
                   "conditions": ready(format!("stored artifact for revision '{rev}'"))})
        }
        "HelmRepository" => {
            json!({"observedGeneration": 1, "artifact": artifact(format!("sha256:{sha}")),
            "conditions": ready(format!("stored artifact: revision 'sha256:{sha}'"))})
        }
        "HelmChart" => json!({"observedGeneration": 1, "artifact": artifact("6.3.5".into()),
            "conditions": ready("pulled 'podinfo' chart with version '6.3.5'".into())}),
        "Kustomization" => {
            let rev = format!("main@sha1:{sha}");
            json!({"observedGeneration": 1, "lastAppliedRevision": rev.clone(),
                   "conditions": ready(format!("Applied revision: {rev}"))})
        }
        "HelmRelease" => json!({"observedGeneration": 1, "lastAttemptedRevision": "6.3.5",
            "history": [{"chartName": "podinfo", "chartVersion": "6.3.5", "name": format!("hr-{i}"),
                         "namespace": "default", "version": 1, "status": "deployed",
                         "digest": format!("sha256:{sha}{}", &sha[..24]), "configDigest": format!("sha256:{sha}{}", &sha[..24]),
                         "firstDeployed": "2026-12-01T00:00:00Z", "lastDeployed": "2026-12-01T00:00:00Z"}],
            "conditions": ready(format!("Helm install succeeded for release default/hr-{i}.v1 with chart podinfo@6.3.5"))}),
        "Receiver" => json!({"observedGeneration": 1, "webhookPath": format!("/hook/{sha}"),
            "conditions": ready(format!("Receiver initialized for path: /hook/{sha}"))}),
        _ => return None,
    })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time(cmd: &mut Command) -> (Duration, usize) {
    let start = Instant::now();
    let out = cmd.output().expect("running the command");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (took, out.stdout.iter().filter(|b| **b == b'\n').count())
}

fn main() {
    let runs: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(11);
    let kubectl = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    let env = rt.block_on(async {
        let env = ferroflux_testenv::TestEnv::start(Default::default())
            .await
            .expect("testenv");
        env.write_kubeconfig(&kubeconfig).expect("kubeconfig");
        let client = env.client().await.expect("client");
        ferroflux_cli::bootstrap::install_crds(&client)
            .await
            .expect("CRDs");
        let pp = PatchParams::apply("bench").force();
        for n in 0..10 {
            let ns = format!("team-{n}");
            let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
            api.patch(
                &ns,
                &pp,
                &Patch::Apply(
                    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
                ),
            )
            .await
            .expect("namespace");
        }
        let mut total = 0;
        for (group, version, kind, plural, count) in MIX {
            let ar = ApiResource {
                group: group.to_string(),
                version: version.to_string(),
                api_version: format!("{group}/{version}"),
                kind: kind.to_string(),
                plural: plural.to_string(),
            };
            for i in 0..*count {
                let ns = format!("team-{}", i % 10);
                let name = format!("{}-{i}", kind.to_ascii_lowercase());
                let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &ar);
                let obj = json!({"apiVersion": format!("{group}/{version}"), "kind": kind,
                    "metadata": {"name": name, "namespace": ns}, "spec": spec(kind, i)});
                api.patch(&name, &pp, &Patch::Apply(obj))
                    .await
                    .expect("object");
                if let Some(st) = status(kind, i) {
                    api.patch_status(
                        &name,
                        &PatchParams::default(),
                        &Patch::Merge(json!({"status": st})),
                    )
                    .await
                    .expect("status");
                }
                total += 1;
            }
        }
        assert_eq!(total, 1000);
        env
    });
    let kinds = MIX
        .iter()
        .map(|(g, _, _, p, _)| format!("{p}.{g}"))
        .collect::<Vec<_>>()
        .join(",");
    let cache = dir.path().join("kube-cache");
    let ours = || {
        let mut c = Command::new(FERROFLUX);
        c.args(["get", "all", "-A"]).env("KUBECONFIG", &kubeconfig);
        c
    };
    let theirs = || {
        let mut c = Command::new(&kubectl);
        c.args(["get", &kinds, "-A", "--cache-dir"])
            .arg(&cache)
            .env("KUBECONFIG", &kubeconfig);
        c
    };
    // warm-up: kubectl fills its discovery cache; both touch the binaries once
    let (_, our_lines) = time(&mut ours());
    let (_, their_lines) = time(&mut theirs());
    println!(
        "rows printed: ferroflux {our_lines} lines, kubectl {their_lines} lines (1,000 objects)"
    );
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        a.push(time(&mut ours()).0);
        b.push(time(&mut theirs()).0);
    }
    let (ma, mb) = (median(a.clone()), median(b.clone()));
    println!(
        "ferroflux get all -A: median {:.1} ms (min {:.1}, max {:.1})",
        ma.as_secs_f64() * 1e3,
        a.iter().min().unwrap().as_secs_f64() * 1e3,
        a.iter().max().unwrap().as_secs_f64() * 1e3
    );
    println!(
        "kubectl get <10 kinds> -A: median {:.1} ms (min {:.1}, max {:.1})",
        mb.as_secs_f64() * 1e3,
        b.iter().min().unwrap().as_secs_f64() * 1e3,
        b.iter().max().unwrap().as_secs_f64() * 1e3
    );
    println!(
        "ratio: ferroflux {:.1}x faster ({runs} interleaved runs)",
        mb.as_secs_f64() / ma.as_secs_f64()
    );
    rt.block_on(env.stop());
}
