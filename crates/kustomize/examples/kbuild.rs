//! `cargo run --example kbuild -- DIR`: print what `kustomize build DIR` prints.
fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| ".".to_string());
    match ferroflux_kustomize::build_dir(std::path::Path::new(&dir), &Default::default()) {
        Ok(s) => print!("{s}"),
        Err(e) => {
            eprintln!("Error: {e}");
            std::process::exit(1);
        }
    }
}
