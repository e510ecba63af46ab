//! Side-by-side benchmark: `helm template` (v4) versus ferroflux on the same charts.
//!
//! `cargo build --release -p ferroflux-cli` first, then
//! `cargo run --release -p ferroflux-helm --example bench [RUNS] [--cli PATH/TO/ferroflux]`
//! (default: 11 runs, the `ferroflux` binary beside this example's directory).
//!
//! Charts: the `helm create` chart, the umbrella fixture and every chart of the shared corpus
//! (`charts/` of `FERROFLUX_CORPUS`, default ../shared/corpus; rendered with its README's `--set` flags as
//! `template rel DIR --namespace ns --skip-tests`). Each run times, one after the other,
//! - `helm template` (v4) as a process,
//! - `ferroflux helm template` as a process (the CLI, whole process),
//! - this binary rendering the chart as a process (`bench render DIR [--set ...]`),
//! - the in-process render (`ferroflux_helm::template`),
//!
//! so a change in the machine's load touches all four alike. It checks that the outputs are
//! identical and prints per-chart medians and ratios as a table, and the median of the
//! helm/CLI ratios over the corpus charts (the two fixtures are shown, not counted).

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

fn time1<F: FnOnce()>(f: F) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
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
    let runs: usize = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(11)
        .max(1);
    let me = std::env::current_exe().expect("current exe");
    // `ferroflux helm template`: --cli PATH, else the release CLI beside this example
    // (target/release/examples/bench -> target/release/ferroflux)
    let cli: PathBuf = args
        .iter()
        .position(|a| a == "--cli")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
        .or_else(|| {
            me.parent()
                .and_then(Path::parent)
                .map(|d| d.join("ferroflux"))
        })
        .filter(|p| p.is_file())
        .unwrap_or_else(|| {
            eprintln!(
                "no ferroflux CLI: build it (cargo build --release -p ferroflux-cli) or pass --cli PATH"
            );
            std::process::exit(2);
        });
    let helm = oracle("helm");
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
    // (name, dir, flags, in the corpus)
    let mut charts: Vec<(String, PathBuf, Vec<String>, bool)> = vec![
        (
            "helm create".into(),
            tmp.join("created"),
            base_flags(""),
            false,
        ),
        ("umbrella fixture".into(), umbrella, base_flags(""), false),
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
        charts.push((n.clone(), corpus.join(&n), base_flags(set), true));
    }
    println!(
        "helm: {}\nferroflux: {}\n{runs} runs per chart, interleaved (helm, ferroflux CLI, this binary, in-process); medians",
        helm.display(),
        cli.display()
    );
    println!(
        "| {:<28} | {:>9} | {:>14} | {:>7} | {:>11} | {:>11} | {:>9} |",
        "chart", "helm ms", "ferroflux ms", "ratio", "example ms", "in-proc ms", "in-proc x"
    );
    println!(
        "| {:-<28} | {:->9} | {:->14} | {:->7} | {:->11} | {:->11} | {:->9} |",
        ":", ":", ":", ":", ":", ":", ":"
    );
    let (mut cli_ratios, mut inproc_ratios) = (Vec::new(), Vec::new());
    for (name, dir, flags, in_corpus) in &charts {
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
        let cli_out = run(&cli, &["helm", "template", "rel"], &flags);
        assert_eq!(cli_out, helm_out, "ferroflux CLI output differs for {name}");
        let opts = options(&flags);
        // one round is one run of each, so a change in the machine's load hits all of them
        let (mut h, mut c, mut p, mut i) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            h.push(time1(|| {
                run(&helm, &["template", "rel"], &flags);
            }));
            c.push(time1(|| {
                run(&cli, &["helm", "template", "rel"], &flags);
            }));
            p.push(time1(|| {
                run(&me, &["render"], &flags);
            }));
            i.push(time1(|| {
                template("rel", dir, &opts).expect("render");
            }));
        }
        let (h, c, p, i) = (median(h), median(c), median(p), median(i));
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        if *in_corpus {
            cli_ratios.push(ms(h) / ms(c));
            inproc_ratios.push(ms(h) / ms(i));
        }
        println!(
            "| {:<28} | {:>9.1} | {:>14.1} | {:>6.1}x | {:>11.1} | {:>11.2} | {:>8.0}x |",
            if *in_corpus {
                name.clone()
            } else {
                format!("({name})")
            },
            ms(h),
            ms(c),
            ms(h) / ms(c),
            ms(p),
            ms(i),
            ms(h) / ms(i),
        );
    }
    let med = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    let range = |v: &[f64]| {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(0.0, f64::max);
        format!("{lo:.1}x-{hi:.1}x")
    };
    println!(
        "median over the {} corpus charts (fixtures in parentheses are not counted): ferroflux helm template {:.1}x faster than helm template, whole process ({}); in-process render {:.0}x",
        cli_ratios.len(),
        med(cli_ratios.clone()),
        range(&cli_ratios),
        med(inproc_ratios),
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
