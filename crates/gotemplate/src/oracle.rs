//! Test support (feature `test-support`): finding and running the real `helm` binaries that
//! the oracle tests of this crate and of `ferroflux-helm` compare with. Not part of the API.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;

/// Find an oracle binary on PATH, then in `$HOME/.cache/ferroflux-oracles/bin`. Panics with
/// install instructions when missing (a missing oracle is a failure, never a skip).
pub fn oracle(name: &str) -> PathBuf {
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    if let Some(home) = std::env::var_os("HOME") {
        let p = Path::new(&home)
            .join(".cache/ferroflux-oracles/bin")
            .join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "oracle `{name}` not found on PATH or in $HOME/.cache/ferroflux-oracles/bin; \
         install it with scripts/get-oracles (scripts/test installs every tool the tests need)"
    );
}

/// Write a chart `c` (apiVersion v2) into `dir` with the given values.yaml text and files
/// under templates/.
pub fn write_chart(dir: &Path, values_json: &str, files: &[(String, String)]) {
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    std::fs::write(
        dir.join("Chart.yaml"),
        "apiVersion: v2\nname: c\nversion: 0.1.0\n",
    )
    .unwrap();
    std::fs::write(dir.join("values.yaml"), values_json).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join("templates").join(name), text).unwrap();
    }
}

/// `helm template r DIR`; Ok(stdout) or Err(stderr).
pub fn helm_template(bin: &Path, dir: &Path) -> Result<String, String> {
    let out = Command::new(bin)
        .args(["template", "r"])
        .arg(dir)
        .output()
        .expect("run helm");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Parse lines `KEY: "BASE64"` from helm's output.
pub fn decode_cases(out: &str) -> std::collections::HashMap<String, String> {
    let mut m = std::collections::HashMap::new();
    for line in out.lines() {
        if let Some((k, v)) = line.split_once(": ")
            && k.starts_with('c')
        {
            let v = v.trim_matches('"');
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v)
                .unwrap_or_else(|e| panic!("bad base64 for {k}: {e}"));
            m.insert(k.to_string(), String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    m
}
