//! One fixture per feature under `tests/fixtures/<feature>/`, built by us and by
//! `kubectl kustomize`, compared byte for byte. Fixtures under `tests/errors/<case>/` must
//! fail with both.

use std::path::{Path, PathBuf};

use ferroflux_kustomize::{BuildOptions, build_dir};

fn dirs(under: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(under);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    v
}

/// The directory to build in a fixture: `overlay/` when present, else the fixture itself.
fn build_root(fixture: &Path) -> PathBuf {
    let o = fixture.join("overlay");
    if o.is_dir() { o } else { fixture.to_path_buf() }
}

#[test]
fn fixtures_match_kubectl_byte_for_byte() {
    let mut failures = Vec::new();
    let all = dirs("fixtures");
    assert!(
        all.len() >= 20,
        "expected the feature fixtures, found {}",
        all.len()
    );
    for f in &all {
        let root = build_root(f);
        let want = match crate::oracle::kustomize(&root) {
            Ok(s) => s,
            Err(e) => {
                failures.push(format!("{}: kubectl kustomize failed: {e}", f.display()));
                continue;
            }
        };
        match build_dir(&root, &BuildOptions::default()) {
            Ok(got) if got == want => {}
            Ok(got) => failures.push(format!(
                "{}: output differs\n--- kubectl\n{want}\n--- ours\n{got}",
                f.display()
            )),
            Err(e) => failures.push(format!("{}: we failed: {e}", f.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "{} fixture(s) differ:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn error_fixtures_fail_like_kubectl() {
    let mut failures = Vec::new();
    let all = dirs("errors");
    assert!(!all.is_empty());
    for f in &all {
        let root = build_root(f);
        if let Ok(out) = crate::oracle::kustomize(&root) {
            failures.push(format!(
                "{}: kubectl succeeded, the fixture is wrong:\n{out}",
                f.display()
            ));
            continue;
        }
        match build_dir(&root, &BuildOptions::default()) {
            Ok(out) => failures.push(format!(
                "{}: we succeeded but kubectl fails:\n{out}",
                f.display()
            )),
            Err(e) => {
                // the message must name the kustomization or file involved
                let msg = e.to_string();
                if !msg.contains('/') {
                    failures.push(format!(
                        "{}: error does not name a file: {msg}",
                        f.display()
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
