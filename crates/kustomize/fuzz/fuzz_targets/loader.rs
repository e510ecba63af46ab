//! The whole build over an in-memory tree made from the input: a kustomization file, then
//! further files after lines `=== NAME` (names may contain directories). Errors are fine,
//! panics are not.
#![no_main]

use ferroflux_kustomize::{BuildOptions, Kustomizer, MemFs};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut fs = MemFs::new();
    let mut name = String::from("kustomization.yaml");
    let mut body = String::new();
    for line in text.split_inclusive('\n') {
        if let Some(n) = line.strip_prefix("=== ") {
            fs.add_file(format!("/w/{name}"), body.clone());
            name = n.trim().trim_start_matches('/').to_string();
            body.clear();
        } else {
            body.push_str(line);
        }
    }
    fs.add_file(format!("/w/{name}"), body);
    let k = Kustomizer::new(&fs, BuildOptions::default());
    if let Ok(resources) = k.build(std::path::Path::new("/w")) {
        let _ = ferroflux_kustomize::yaml::to_yaml_stream(resources.iter());
    }
});
