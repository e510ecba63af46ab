//! Side-by-side benchmark: `helm template` (v4) versus ferroflux on the same charts.
//!
//! `cargo run --release -p ferroflux-helm --example bench [RUNS] [--cli PATH/TO/ferroflux]`
//!
//! Charts: the `helm create` chart, the umbrella fixture and every chart of the shared corpus
//! (`charts/` of `FERROFLUX_CORPUS`, default ../shared/corpus; rendered with its README's `--set` flags as
//! `template rel DIR --namespace ns --skip-tests`). For each it reports the median wall time of
//! - `helm template` as a process,
//! - this binary rendering the chart as a process (`bench render DIR [--set ...]`, whole process),
//! - with `--cli`, `ferroflux helm template` as a process,
//! - the in-process render (`ferroflux_helm::template`),
//!
//! checks that the outputs are identical, and prints the ratios and the median ratio.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ferroflux_helm::{TemplateOptions, template};

fn oracle(name: &str) -> PathBuf {
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    let home = std::env::var_os("HOME").unwrap_or_default();
    let p = Path::new(&home)
        .join(".cache/ferroflux-oracles/bin")
        .join(name);
    if p.is_file() {
        return p;
    }
    eprintln!("oracle {name} not found; run ../shared/tools/get-oracles");
    std::process::exit(2);
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time<F: FnMut()>(runs: usize, mut f: F) -> Duration {
    let mut v = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f();
        v.push(t.elapsed());
    }
    median(v)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() >= 3 && args[1] == "render" {
        match template("rel", Path::new(&args[2]), &options(&args[3..])) {
            Ok(out) => print!("{out}"),
            Err(e) => {
                eprintln!("Error: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    let runs: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20);
    let cli: Option<PathBuf> = args
        .iter()
        .position(|a| a == "--cli")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from);
    let helm = oracle("helm");
    let me = std::env::current_exe().expect("current exe");
    let tmp = std::env::temp_dir().join(format!("ferroflux-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("temp dir");
    let st = Command::new(&helm)
        .args(["create", "created"])
        .current_dir(&tmp)
        .output()
        .expect("helm create");
    assert!(st.status.success(), "helm create failed");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let umbrella = tmp.join("umbrella");
    copy_dir(&fixtures.join("umbrella"), &umbrella);
    let st = Command::new(&helm)
        .arg("package")
        .arg(fixtures.join("exporter"))
        .arg("-d")
        .arg(umbrella.join("charts"))
        .output()
        .expect("helm package");
    assert!(st.status.success(), "helm package failed");
    let mut charts: Vec<(String, PathBuf, Vec<String>)> = vec![
        ("helm create".into(), tmp.join("created"), base_flags("")),
        ("umbrella fixture".into(), umbrella, base_flags("")),
    ];
    let corpus = ferroflux_testsupport::corpus().join("charts");
    let mut names: Vec<String> = std::fs::read_dir(&corpus)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().join("Chart.yaml").is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    for n in names {
        let set = CORPUS_SET
            .iter()
            .find(|(c, _)| *c == n)
            .map(|(_, s)| *s)
            .unwrap_or("");
        charts.push((n.clone(), corpus.join(&n), base_flags(set)));
    }
    println!(
        "{:<30} {:>10} {:>10} {:>10} {:>10} {:>7} {:>7}",
        "chart", "helm", "ours proc", "cli proc", "in-proc", "x proc", "x cli"
    );
    let (mut ratios, mut cli_ratios) = (Vec::new(), Vec::new());
    for (name, dir, flags) in &charts {
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let run = |bin: &Path, pre: &[&str], post: &[&str]| {
            let out = Command::new(bin)
                .args(pre)
                .arg(dir)
                .args(post)
                .output()
                .expect("run");
            assert!(out.status.success(), "{} failed on {name}", bin.display());
            out.stdout
        };
        let helm_out = run(&helm, &["template", "rel"], &flags);
        let our_out = run(&me, &["render"], &flags);
        assert_eq!(
            String::from_utf8_lossy(&helm_out),
            String::from_utf8_lossy(&our_out),
            "outputs differ for {name}"
        );
        let h = time(runs, || {
            run(&helm, &["template", "rel"], &flags);
        });
        let p = time(runs, || {
            run(&me, &["render"], &flags);
        });
        let c = cli.as_ref().map(|cli| {
            let out = run(cli, &["helm", "template", "rel"], &flags);
            assert_eq!(out, helm_out, "ferroflux CLI output differs for {name}");
            time(runs, || {
                run(cli, &["helm", "template", "rel"], &flags);
            })
        });
        let opts = options(&flags);
        let i = time(runs, || {
            template("rel", dir, &opts).expect("render");
        });
        ratios.push(h.as_secs_f64() / p.as_secs_f64());
        if let Some(c) = c {
            cli_ratios.push(h.as_secs_f64() / c.as_secs_f64());
        }
        println!(
            "{:<30} {:>8.1}ms {:>8.1}ms {:>10} {:>8.2}ms {:>6.1}x {:>7}",
            name,
            h.as_secs_f64() * 1e3,
            p.as_secs_f64() * 1e3,
            c.map(|c| format!("{:.1}ms", c.as_secs_f64() * 1e3))
                .unwrap_or_else(|| "-".into()),
            i.as_secs_f64() * 1e3,
            h.as_secs_f64() / p.as_secs_f64(),
            c.map(|c| format!("{:.1}x", h.as_secs_f64() / c.as_secs_f64()))
                .unwrap_or_else(|| "-".into()),
        );
    }
    let med = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    println!(
        "median ratio helm/ours over {} charts: {:.1}x (this binary){}",
        charts.len(),
        med(ratios),
        if cli_ratios.is_empty() {
            String::new()
        } else {
            format!(", {:.1}x (ferroflux CLI)", med(cli_ratios))
        }
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

/// The corpus README's `--set` flags for a deterministic render.
const CORPUS_SET: &[(&str, &str)] = &[
    (
        "aws-load-balancer-controller",
        "clusterName=test-cluster,enableCertManager=true",
    ),
    (
        "harbor",
        "core.secret=0123456789abcdef,core.xsrfKey=0123456789abcdef0123456789abcdef,core.secretName=harbor-token,jobservice.secret=0123456789abcdef,registry.secret=0123456789abcdef,registry.credentials.htpasswdString=harbor_registry_user:pinned,expose.tls.certSource=none",
    ),
    ("jenkins", "controller.admin.password=admin"),
    ("minio", "rootUser=minioadmin,rootPassword=minioadmin123"),
    ("nginx", "tls.autoGenerated=false"),
    (
        "opentelemetry-collector",
        "mode=deployment,image.repository=otel/opentelemetry-collector-k8s",
    ),
];

fn base_flags(set: &str) -> Vec<String> {
    let mut v: Vec<String> = ["--namespace", "ns", "--skip-tests"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if !set.is_empty() {
        v.push("--set".into());
        v.push(set.into());
    }
    v
}

/// `TemplateOptions` from the flags `base_flags` makes.
fn options<S: AsRef<str>>(flags: &[S]) -> TemplateOptions {
    let mut o = TemplateOptions::default();
    let mut it = flags.iter().map(AsRef::as_ref);
    while let Some(f) = it.next() {
        match f {
            "--namespace" => o.namespace = it.next().unwrap_or("default").to_string(),
            "--skip-tests" => o.skip_tests = true,
            "--set" => o.set.extend(it.next().map(str::to_string)),
            _ => {}
        }
    }
    o
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir").flatten() {
        let p = e.path();
        let t = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &t);
        } else {
            std::fs::copy(&p, &t).expect("copy");
        }
    }
}
