//! Side-by-side benchmark: `helm template` (v4) versus ferroflux on the same charts.
//!
//! `cargo run --release -p ferroflux-helm --example bench [RUNS]`
//!
//! For each chart it reports the median wall time of
//! - `helm template` as a process,
//! - this binary rendering the chart as a process (`bench render DIR`, whole process),
//! - the in-process render (`ferroflux_helm::template`),
//!
//! and checks that both outputs are identical.

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
    if args.len() == 3 && args[1] == "render" {
        match template("bench", Path::new(&args[2]), &TemplateOptions::default()) {
            Ok(out) => print!("{out}"),
            Err(e) => {
                eprintln!("Error: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    let runs: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20);
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
    let charts = [
        ("helm create", tmp.join("created")),
        ("umbrella fixture", umbrella),
    ];
    println!(
        "{:<18} {:>12} {:>14} {:>12} {:>9}",
        "chart", "helm (proc)", "ferroflux proc", "in-process", "speedup"
    );
    for (name, dir) in &charts {
        let run = |bin: &Path, pre: &[&str]| {
            let out = Command::new(bin).args(pre).arg(dir).output().expect("run");
            assert!(out.status.success(), "{} failed", bin.display());
            out.stdout
        };
        let helm_out = run(&helm, &["template", "bench"]);
        let our_out = run(&me, &["render"]);
        assert_eq!(
            String::from_utf8_lossy(&helm_out),
            String::from_utf8_lossy(&our_out),
            "outputs differ for {name}"
        );
        let h = time(runs, || {
            run(&helm, &["template", "bench"]);
        });
        let p = time(runs, || {
            run(&me, &["render"]);
        });
        let i = time(runs, || {
            template("bench", dir, &TemplateOptions::default()).expect("render");
        });
        println!(
            "{:<18} {:>10.2}ms {:>12.2}ms {:>10.3}ms {:>8.1}x",
            name,
            h.as_secs_f64() * 1e3,
            p.as_secs_f64() * 1e3,
            i.as_secs_f64() * 1e3,
            h.as_secs_f64() / p.as_secs_f64()
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
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
