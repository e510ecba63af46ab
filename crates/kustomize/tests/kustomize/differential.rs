//! Differential oracle: many small cases under `tests/differential/*.txt`, each a set of
//! files in one text file, written to a temporary directory at test time and built by us and
//! by `kubectl kustomize`, compared byte for byte (or both must fail).
//!
//! Cases named `*fail*` must fail with kubectl and with us; every other case must build.
//!
//! Case format: lines `-- PATH --` start a file (relative to the case directory); `-- PATH
//! base64 --` starts a file whose content is base64 (binary or CRLF content). Lines before the
//! first file are a comment. The directory built is `overlay/` when the case has one, else
//! the case directory itself.
//!
//! `FERROFLUX_DIFF_CASE=substring` limits every test here to the matching cases.

use std::path::{Path, PathBuf};

use base64::Engine;
use ferroflux_kustomize::{BuildOptions, build_dir};

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/differential")
}

/// The case files whose name starts with `prefix` (all when empty).
fn cases(prefix: &str) -> Vec<PathBuf> {
    let only = std::env::var("FERROFLUX_DIFF_CASE").unwrap_or_default();
    let mut v: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .expect("tests/differential")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .filter(|p| {
            let n = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            n.starts_with(prefix) && n.contains(only.as_str())
        })
        .collect();
    v.sort();
    v
}

/// Write the files of a case under `dir`.
fn materialise(case: &Path, dir: &Path) {
    let text = std::fs::read_to_string(case).expect("case file");
    let mut files: Vec<(String, bool, String)> = Vec::new();
    for line in text.split_inclusive('\n') {
        let t = line.trim_end_matches(['\n', '\r']);
        if let Some(h) = t.strip_prefix("-- ").and_then(|h| h.strip_suffix(" --")) {
            let (name, b64) = match h.strip_suffix(" base64") {
                Some(n) => (n, true),
                None => (h, false),
            };
            files.push((name.to_string(), b64, String::new()));
        } else if let Some(f) = files.last_mut() {
            f.2.push_str(line);
        }
    }
    assert!(!files.is_empty(), "{}: no files", case.display());
    for (name, b64, content) in files {
        let path = dir.join(&name);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        let bytes = if b64 {
            let compact: String = content.split_whitespace().collect();
            base64::engine::general_purpose::STANDARD
                .decode(compact)
                .unwrap_or_else(|e| panic!("{}: {name}: bad base64: {e}", case.display()))
        } else {
            content.into_bytes()
        };
        std::fs::write(&path, bytes).expect("write");
    }
}

/// Build every case with a name starting with `prefix`; fail listing every difference.
fn run(prefix: &str, at_least: usize) {
    crate::oracle::kubectl();
    let all = cases(prefix);
    let filtered = std::env::var("FERROFLUX_DIFF_CASE").is_ok_and(|s| !s.is_empty());
    assert!(
        filtered || all.len() >= at_least,
        "expected at least {at_least} cases `{prefix}*`, found {}",
        all.len()
    );
    let mut failures = Vec::new();
    for case in &all {
        let tmp = tempfile::tempdir().expect("tempdir");
        materialise(case, tmp.path());
        let root = if tmp.path().join("overlay").is_dir() {
            tmp.path().join("overlay")
        } else {
            tmp.path().to_path_buf()
        };
        let name = case.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        let want = crate::oracle::kustomize(&root);
        // a case whose name says `fail` must fail in kubectl, any other must build there
        let expect_failure = name.contains("fail");
        if want.is_err() != expect_failure {
            failures.push(format!(
                "{name}: the case is wrong: kubectl {}",
                match &want {
                    Ok(_) => "succeeded".to_string(),
                    Err(e) => format!("failed: {e}"),
                }
            ));
            continue;
        }
        let got = build_dir(&root, &BuildOptions::default());
        match (want, got) {
            (Ok(w), Ok(g)) if w == g => {}
            (Ok(w), Ok(g)) => failures.push(format!(
                "{name}: output differs\n--- kubectl\n{w}\n--- ours\n{g}"
            )),
            (Ok(w), Err(e)) => failures.push(format!("{name}: we failed: {e}\n--- kubectl\n{w}")),
            (Err(e), Ok(g)) => failures.push(format!(
                "{name}: kubectl failed but we succeeded\n--- kubectl\n{e}\n--- ours\n{g}"
            )),
            (Err(_), Err(_)) => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} case(s) differ from kubectl kustomize:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n\n")
    );
}

/// Every case, byte for byte.
#[test]
fn differential_all_cases_match_kubectl() {
    run("", 35);
}

/// Class 1: null and empty map fields (annotations, labels, empty-valued fields) after
/// loading and after patches.
#[test]
fn null_map_fields_match_kubectl() {
    run("null-", 3);
}

/// Class 2: strategic-merge patches with null values and `$patch`/`$retainKeys`/
/// `$deleteFromPrimitiveList`/`$setElementOrder` directives.
#[test]
fn smp_nulls_and_directives_match_kubectl() {
    run("smp-", 5);
}

/// Class 3: the namespace transformer's special cases (webhook services, role binding
/// subjects, APIService, CRD conversion webhooks).
#[test]
fn namespace_special_cases_match_kubectl() {
    run("ns-", 3);
}

/// Class 4: JSON 6902 with the tolerances of evanphx/json-patch v4 kustomize uses.
#[test]
fn json6902_edge_cases_match_kubectl() {
    run("json6902-", 3);
}

/// Class 5: generator `behavior` values kustomize does not know.
#[test]
fn generator_unknown_behavior_matches_kubectl() {
    run("gen-behavior-", 1);
}

/// Class 6: binary files in generators (base64 wrapped at 70 columns).
#[test]
fn generator_binary_data_matches_kubectl() {
    run("gen-binary-", 1);
}

/// Class 7: ConfigMaps generated from text files of every shape (nginx-style configs).
#[test]
fn generator_text_files_match_kubectl() {
    run("gen-text-", 2);
}

/// Class 8: generator entries that yield no keys.
#[test]
fn generator_empty_entries_match_kubectl() {
    run("gen-empty-", 1);
}
