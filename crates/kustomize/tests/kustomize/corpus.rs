//! The real-world corpus: every overlay in ../shared/corpus/kustomize/index.tsv built by us
//! and by `kubectl kustomize`, compared after parsing. Overlays that do not match yet are
//! listed in `EXCEPTIONS` with the reason; the test fails for any other mismatch and for
//! any listed overlay that now matches, so the list stays honest.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ferroflux_kustomize::yaml::parse_documents;
use ferroflux_kustomize::{BuildOptions, build_dir};

/// Overlays known to differ from kubectl, with the reason.
const EXCEPTIONS: &[(&str, &str)] = &[];

fn corpus_root() -> PathBuf {
    ferroflux_testsupport::corpus().join("kustomize")
}

#[derive(Debug)]
enum Outcome {
    /// Equal after parsing; `true` when byte-identical too.
    Same(bool),
    Differs(String),
}

fn compare(dir: &Path) -> Outcome {
    let want = crate::oracle::kustomize(dir);
    let got = build_dir(dir, &BuildOptions::default());
    match (want, got) {
        (Err(e), _) => Outcome::Differs(format!(
            "kubectl failed: {}",
            e.lines().next().unwrap_or("")
        )),
        (Ok(_), Err(e)) => Outcome::Differs(format!("we failed: {e}")),
        (Ok(w), Ok(g)) => {
            if w == g {
                return Outcome::Same(true);
            }
            let (pw, pg) = (parse_documents(&w), parse_documents(&g));
            match (pw, pg) {
                (Ok(a), Ok(b)) if a == b => Outcome::Same(false),
                (Ok(a), Ok(b)) => {
                    let n = a.iter().zip(b.iter()).take_while(|(x, y)| x == y).count();
                    Outcome::Differs(format!(
                        "{} vs {} documents, first difference at document {n}",
                        a.len(),
                        b.len()
                    ))
                }
                (Err(e), _) | (_, Err(e)) => Outcome::Differs(format!("unparsable output: {e}")),
            }
        }
    }
}

#[test]
fn corpus_matches_kubectl() {
    crate::oracle::kubectl();
    let root = corpus_root();
    let index = std::fs::read_to_string(root.join("index.tsv")).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the corpus must sit beside the checkout)",
            root.display()
        )
    });
    let dirs: Vec<String> = index
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next())
        .map(String::from)
        .collect();
    assert!(dirs.len() > 900, "corpus index has {} overlays", dirs.len());
    let results: Arc<Mutex<BTreeMap<String, Outcome>>> = Arc::default();
    let queue = Arc::new(Mutex::new(dirs.clone()));
    let mut handles = Vec::new();
    for _ in 0..2 {
        let (q, res, root) = (queue.clone(), results.clone(), root.clone());
        handles.push(std::thread::spawn(move || {
            loop {
                let Some(d) = q.lock().unwrap().pop() else {
                    break;
                };
                let o = compare(&root.join(&d));
                res.lock().unwrap().insert(d, o);
            }
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    let results = results.lock().unwrap();
    let exceptions: BTreeMap<&str, &str> = EXCEPTIONS.iter().copied().collect();
    let mut unexpected = Vec::new();
    let mut now_passing = Vec::new();
    let mut same = 0;
    let mut bytes = 0;
    for (d, o) in results.iter() {
        match (o, exceptions.get(d.as_str())) {
            (Outcome::Same(b), None) => {
                same += 1;
                bytes += usize::from(*b);
            }
            (Outcome::Same(_), Some(_)) => {
                same += 1;
                now_passing.push(d.clone());
            }
            (Outcome::Differs(why), None) => unexpected.push(format!("{d}: {why}")),
            (Outcome::Differs(_), Some(_)) => {}
        }
    }
    for e in exceptions.keys() {
        assert!(
            results.contains_key(*e),
            "exception {e} is not in the corpus index"
        );
    }
    eprintln!(
        "corpus: {same} of {} overlays identical to kubectl kustomize after parsing ({bytes} byte for byte)",
        results.len()
    );
    assert!(
        unexpected.is_empty() && now_passing.is_empty(),
        "unexpected differences ({}):\n{}\n\nlisted as exceptions but now identical ({}):\n{}",
        unexpected.len(),
        unexpected.join("\n"),
        now_passing.len(),
        now_passing.join("\n")
    );
}
