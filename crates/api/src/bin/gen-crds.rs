//! Writes the Flux CRDs generated from `ferroflux-api` into `deploy/crds/` (or the directory
//! given as the first argument), one file per CRD plus a `kustomization.yaml`. Files in the
//! directory that this command no longer produces are removed.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let dir = std::env::args_os().nth(1).map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/crds")),
        PathBuf::from,
    );
    match run(&dir) {
        Ok(n) => {
            println!("wrote {n} files to {}", dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gen-crds: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(dir: &std::path::Path) -> Result<usize, Box<dyn std::error::Error>> {
    let files = ferroflux_api::crdgen::files()?;
    std::fs::create_dir_all(dir)?;
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let stale =
            path.extension().is_some_and(|e| e == "yaml") && !files.iter().any(|(f, _)| f == name);
        if stale {
            std::fs::remove_file(&path)?;
        }
    }
    for (name, contents) in &files {
        std::fs::write(dir.join(name), contents)?;
    }
    Ok(files.len())
}
