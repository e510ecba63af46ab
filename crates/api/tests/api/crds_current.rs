//! `deploy/crds` must be exactly what the generator produces now.

use std::collections::BTreeSet;
use std::path::PathBuf;

use ferroflux_api::crdgen;

#[test]
fn checked_in_crds_are_current() {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/crds"));
    let files = crdgen::files().expect("CRDs render as YAML");
    let mut problems = Vec::new();
    for (name, want) in &files {
        match std::fs::read_to_string(dir.join(name)) {
            Ok(have) if &have == want => {}
            Ok(_) => problems.push(format!("{name}: differs from the generated content")),
            Err(e) => problems.push(format!("{name}: cannot read ({e})")),
        }
    }
    let expected: BTreeSet<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".yaml") && !expected.contains(name.as_str()) {
                problems.push(format!("{name}: not produced by the generator any more"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "deploy/crds is stale; run `{}` and commit the result:\n  {}",
        crdgen::GENERATE_COMMAND,
        problems.join("\n  ")
    );
}

#[test]
fn generated_crds_parse_back_as_crds() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    for (name, yaml) in crdgen::files().unwrap() {
        if name == "kustomization.yaml" {
            continue;
        }
        let crd: CustomResourceDefinition = serde_saphyr::from_str(&yaml)
            .unwrap_or_else(|e| panic!("{name} does not parse as a CRD: {e}"));
        assert_eq!(
            name,
            format!("{}_{}.yaml", crd.spec.group, crd.spec.names.plural),
            "file name follows upstream naming"
        );
    }
}
