//! Bad input never panics: deterministic mutations of the fixtures fed to the YAML reader,
//! the writer, and the whole build over an in-memory filesystem. (The libFuzzer targets under
//! `fuzz/` explore the same entry points without a time bound.)

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use ferroflux_kustomize::yaml::{parse_documents, to_yaml};
use ferroflux_kustomize::{BuildOptions, Kustomizer, MemFs};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const TOKENS: &[&str] = &[
    "- ",
    ": ",
    "&a ",
    "*a",
    "<<: *a\n",
    "{",
    "}",
    "[",
    "]",
    "'",
    "\"",
    "|",
    "|-\n",
    ">\n",
    "\n  ",
    "\t",
    "%YAML 1.1\n",
    "!!str ",
    "!!int ",
    "!!binary ",
    "---\n",
    "...\n",
    "$patch: delete\n",
    "$patch: replace\n",
    "# c\n",
    "? ",
    ",",
    "\\",
    "0x",
    "1e999",
    ".nan",
    "~",
    "null",
    "2024-13-45",
    "\u{feff}",
    "\u{2028}",
    "😀",
    "resources:\n- ..\n",
    "kind: Component\n",
    "behavior: merge\n",
    "namePrefix: p-\n",
    "op: remove\n",
];

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(5) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            1 => {
                let end = (at + rng.below(16)).min(v.len());
                v.drain(at..end);
            }
            2 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                v.splice(at..at, t.bytes());
            }
            3 => {
                let end = (at + rng.below(64)).min(v.len());
                let piece: Vec<u8> = v[at..end].to_vec();
                v.splice(at..at, piece);
            }
            _ => v.truncate(at),
        }
    }
    v
}

fn fixture_files() -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut out = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((
                    p.strip_prefix(&root).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn yaml_reader_and_writer_never_panic_on_mutated_input() {
    let files = fixture_files();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut parsed_ok = 0;
    for round in 0..4000 {
        let (name, content) = &files[round % files.len()];
        let m = mutate(&mut rng, content);
        let Ok(text) = String::from_utf8(m) else {
            continue;
        };
        let r = catch_unwind(AssertUnwindSafe(|| {
            if let Ok(docs) = parse_documents(&text) {
                for d in &docs {
                    let out = to_yaml(d);
                    // what we write reads back to a value written the same way (NEL, LS and PS are line
                    // breaks to go-yaml but not to a YAML 1.2 reader, so skip those)
                    if out.contains(['\u{85}', '\u{2028}', '\u{2029}']) {
                        continue;
                    }
                    let again = parse_documents(&out).expect("our own output parses");
                    let Some(first) = again.first() else {
                        panic!("nothing read back from {out:?}")
                    };
                    assert_eq!(to_yaml(first), out, "writing is not stable for {d:?}");
                }
                return true;
            }
            false
        }));
        match r {
            Ok(true) => parsed_ok += 1,
            Ok(false) => {}
            Err(_) => panic!(
                "panic on mutated {} (round {round}):\n{text}",
                name.display()
            ),
        }
    }
    assert!(
        parsed_ok > 500,
        "mutations should leave many inputs parsable, got {parsed_ok}"
    );
}

#[test]
fn build_never_panics_on_mutated_fixtures() {
    let files = fixture_files();
    let fixtures: Vec<PathBuf> = {
        let mut v: Vec<PathBuf> = files
            .iter()
            .filter_map(|(p, _)| p.components().next().map(|c| PathBuf::from(c.as_os_str())))
            .collect();
        v.dedup();
        v
    };
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut built = 0;
    for round in 0..1500 {
        let fx = &fixtures[round % fixtures.len()];
        let mine: Vec<&(PathBuf, Vec<u8>)> =
            files.iter().filter(|(p, _)| p.starts_with(fx)).collect();
        let victim = rng.below(mine.len());
        let mut fs = MemFs::new();
        for (i, (p, c)) in mine.iter().enumerate() {
            let content = if i == victim {
                mutate(&mut rng, c)
            } else {
                c.clone()
            };
            fs.add_file(Path::new("/src").join(p), content);
        }
        let root = if mine.iter().any(|(p, _)| p.starts_with(fx.join("overlay"))) {
            Path::new("/src").join(fx).join("overlay")
        } else {
            Path::new("/src").join(fx)
        };
        let r = catch_unwind(AssertUnwindSafe(|| {
            let k = Kustomizer::new(&fs, BuildOptions::default());
            k.build(&root).is_ok()
        }));
        match r {
            Ok(ok) => built += usize::from(ok),
            Err(_) => panic!(
                "panic building mutated fixture {} (round {round}, file {})",
                fx.display(),
                mine[victim].0.display()
            ),
        }
    }
    assert!(
        built > 100,
        "many mutated fixtures should still build, got {built}"
    );
}

#[test]
fn deep_nesting_is_built_or_refused_without_overflow() {
    for depth in [100, 128, 129, 200, 100_000] {
        let mut doc = String::from(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\ndata:\n  x: y\nextra: ",
        );
        doc.push_str(&"[".repeat(depth));
        doc.push_str(&"]".repeat(depth));
        doc.push('\n');
        let mut fs = MemFs::new();
        fs.add_file(
            "/d/kustomization.yaml",
            "resources:\n- a.yaml\ncommonLabels:\n  a: b\nnamePrefix: p-\n",
        );
        fs.add_file("/d/a.yaml", doc);
        let r = Kustomizer::new(&fs, BuildOptions::default()).build(Path::new("/d"));
        let limit = ferroflux_kustomize::yaml::read::MAX_DEPTH;
        assert_eq!(
            r.is_ok(),
            depth <= limit,
            "depth {depth}: {:?}",
            r.as_ref().err()
        );
    }
}
