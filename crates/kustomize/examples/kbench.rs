//! Benchmark: our build against `kubectl kustomize` over the corpus, side by side in one run.
//!
//! `cargo run --release -p ferroflux-kustomize --example kbench [-- --ours 'CMD ARGS' --limit N CORPUS_DIR]`
//!
//! For every overlay of `CORPUS_DIR/index.tsv` (default: `$FERROFLUX_CORPUS/kustomize`, else
//! ../shared/corpus/kustomize beside the checkout) it times, as whole processes,
//! `kubectl kustomize DIR` and our build (by default this binary re-run as
//! `kbench --build DIR`; `--ours 'ferroflux kustomize build'` times the CLI instead), plus the
//! in-process `build_dir` time. It prints the median per overlay and the total for each, the
//! ratios, and how many outputs were byte-identical.
//!
//! `--largest N [--runs R]` instead takes the N overlays with the largest output (ranked by
//! the in-process build's output size, which is byte-identical to kubectl's: checked again
//! here for the chosen ones) and times each R times (default 11) as whole processes,
//! kubectl and ours interleaved, printing per overlay the medians, the ratio and the
//! in-process median, then the median of the N ratios.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ferroflux_kustomize::{BuildOptions, build_dir};

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    if v.is_empty() {
        Duration::ZERO
    } else {
        v[v.len() / 2]
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 3 && args[1] == "--build" {
        match build_dir(Path::new(&args[2]), &BuildOptions::default()) {
            Ok(s) => print!("{s}"),
            Err(e) => {
                eprintln!("Error: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    let mut ours: Vec<String> = vec![args[0].clone(), "--build".to_string()];
    let mut limit = usize::MAX;
    let mut largest: Option<usize> = None;
    let mut runs = 11usize;
    let mut corpus = match ferroflux_testsupport::corpus_location() {
        Ok(c) => c.join("kustomize"),
        Err(_) => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/corpus/kustomize"
        )),
    };
    let mut i = 1;
    while i < args.len() {
        match args[i].as_str() {
            "--ours" if i + 1 < args.len() => {
                ours = args[i + 1].split_whitespace().map(String::from).collect();
                i += 1;
            }
            "--limit" if i + 1 < args.len() => {
                limit = args[i + 1].parse().unwrap_or(usize::MAX);
                i += 1;
            }
            "--largest" if i + 1 < args.len() => {
                largest = args[i + 1].parse().ok();
                i += 1;
            }
            "--runs" if i + 1 < args.len() => {
                runs = args[i + 1].parse().unwrap_or(11).max(1);
                i += 1;
            }
            other => corpus = PathBuf::from(other),
        }
        i += 1;
    }
    let index = match std::fs::read_to_string(corpus.join("index.tsv")) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{}: {e}", corpus.join("index.tsv").display());
            std::process::exit(2);
        }
    };
    let dirs: Vec<PathBuf> = index
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next())
        .take(limit)
        .map(|d| corpus.join(d))
        .collect();
    if let Some(n) = largest {
        side_by_side(&corpus, &dirs, n, runs, &ours);
        return;
    }
    let (mut t_kubectl, mut t_ours, mut t_lib) = (Vec::new(), Vec::new(), Vec::new());
    let mut identical = 0;
    for d in &dirs {
        let start = Instant::now();
        let want = Command::new("kubectl").arg("kustomize").arg(d).output();
        t_kubectl.push(start.elapsed());
        let start = Instant::now();
        let got = Command::new(&ours[0]).args(&ours[1..]).arg(d).output();
        t_ours.push(start.elapsed());
        let start = Instant::now();
        let lib = build_dir(d, &BuildOptions::default());
        t_lib.push(start.elapsed());
        if let (Ok(w), Ok(g), Ok(l)) = (&want, &got, &lib)
            && w.status.success()
            && w.stdout == g.stdout
            && w.stdout == l.as_bytes()
        {
            identical += 1;
        }
    }
    let mut slowest: Vec<(Duration, &PathBuf)> = t_lib.iter().copied().zip(dirs.iter()).collect();
    slowest.sort_by_key(|x| std::cmp::Reverse(x.0));
    for (t, d) in slowest.iter().take(5) {
        println!(
            "slowest in-process: {} {}",
            ms(*t),
            d.strip_prefix(&corpus).unwrap_or(d).display()
        );
    }
    let total = |v: &[Duration]| v.iter().sum::<Duration>();
    let (tk, to, tl) = (total(&t_kubectl), total(&t_ours), total(&t_lib));
    let (mk, mo, ml) = (
        median(&mut t_kubectl),
        median(&mut t_ours),
        median(&mut t_lib),
    );
    println!(
        "overlays: {} ({identical} outputs byte-identical across the three)",
        dirs.len()
    );
    println!("{:<28} {:>12} {:>12}", "", "median", "total");
    println!(
        "{:<28} {:>12} {:>12}",
        "kubectl kustomize (process)",
        ms(mk),
        ms(tk)
    );
    println!(
        "{:<28} {:>12} {:>12}",
        format!("{} (process)", ours.join(" ")),
        ms(mo),
        ms(to)
    );
    println!(
        "{:<28} {:>12} {:>12}",
        "build_dir (in-process)",
        ms(ml),
        ms(tl)
    );
    println!(
        "speed-up, whole process: {:.1}x median, {:.1}x total; in-process: {:.1}x median",
        mk.as_secs_f64() / mo.as_secs_f64().max(1e-9),
        tk.as_secs_f64() / to.as_secs_f64().max(1e-9),
        mk.as_secs_f64() / ml.as_secs_f64().max(1e-9)
    );
}

/// Wall time of one whole-process run, and its output (None when it failed).
fn timed(cmd: &[String], dir: &Path) -> (Duration, Option<Vec<u8>>) {
    let start = Instant::now();
    let out = Command::new(&cmd[0]).args(&cmd[1..]).arg(dir).output();
    let t = start.elapsed();
    (t, out.ok().filter(|o| o.status.success()).map(|o| o.stdout))
}

/// `--largest N`: the N overlays with the largest output, each timed `runs` times.
fn side_by_side(corpus: &Path, dirs: &[PathBuf], n: usize, runs: usize, ours: &[String]) {
    let mut sized: Vec<(usize, &PathBuf)> = dirs
        .iter()
        .filter_map(|d| {
            build_dir(d, &BuildOptions::default())
                .ok()
                .map(|s| (s.len(), d))
        })
        .collect();
    // largest first; equal sizes in index order
    sized.sort_by_key(|x| std::cmp::Reverse(x.0));
    let kubectl: Vec<String> = vec!["kubectl".into(), "kustomize".into()];
    println!(
        "{} largest overlays of {} (output bytes), {runs} runs each, whole process, medians",
        n,
        corpus.display()
    );
    println!(
        "{:<72} {:>8} {:>10} {:>10} {:>7} {:>10} {:>9}",
        "overlay", "bytes", "kubectl", "ours", "ratio", "in-process", "identical"
    );
    let mut ratios = Vec::new();
    for (bytes, d) in sized.iter().take(n) {
        let (mut tk, mut to, mut tl) = (Vec::new(), Vec::new(), Vec::new());
        let mut identical = true;
        for _ in 0..runs {
            let (t, want) = timed(&kubectl, d);
            tk.push(t);
            let (t, got) = timed(ours, d);
            to.push(t);
            let start = Instant::now();
            let lib = build_dir(d, &BuildOptions::default());
            tl.push(start.elapsed());
            identical &= matches!((&want, &got, &lib), (Some(w), Some(g), Ok(l))
                if w == g && w.as_slice() == l.as_bytes());
        }
        let (mk, mo, ml) = (median(&mut tk), median(&mut to), median(&mut tl));
        let ratio = mk.as_secs_f64() / mo.as_secs_f64().max(1e-9);
        ratios.push(ratio);
        println!(
            "{:<72} {:>8} {:>10} {:>10} {:>6.1}x {:>10} {:>9}",
            d.strip_prefix(corpus).unwrap_or(d).display().to_string(),
            bytes,
            ms(mk),
            ms(mo),
            ratio,
            ms(ml),
            if identical { "yes" } else { "NO" }
        );
    }
    ratios.sort_by(f64::total_cmp);
    if !ratios.is_empty() {
        println!(
            "ours = {}; median ratio {:.1}x (min {:.1}x, max {:.1}x)",
            ours.join(" "),
            ratios[ratios.len() / 2],
            ratios[0],
            ratios[ratios.len() - 1]
        );
    }
}
