//! Go's YAML reader must see in `deploy/crds` exactly the CRDs we generate: `kubectl kustomize`
//! (sigs.k8s.io/yaml, YAML 1.1 rules) reads the checked-in files and its output is compared with
//! the generated values. This catches emitter choices that Go would read differently (unquoted
//! `True`, `on`, numbers in strings, ...).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn kubectl() -> PathBuf {
    ferroflux_testsupport::tool("kubectl", ferroflux_testsupport::ORACLES_HINT)
}

#[test]
fn kubectl_reads_the_generated_crds_unchanged() {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/crds"));
    let out = Command::new(kubectl())
        .arg("kustomize")
        .arg(&dir)
        .output()
        .expect("run kubectl kustomize");
    assert!(
        out.status.success(),
        "kubectl kustomize {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8 output");
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("kubectl output parses");
    let by_name: BTreeMap<String, Value> = docs
        .into_iter()
        .map(|d| {
            let name = d
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap()
                .to_owned();
            (name, d)
        })
        .collect();
    let generated = ferroflux_api::crdgen::crds();
    assert_eq!(
        by_name.len(),
        generated.len(),
        "one document per generated CRD"
    );
    for crd in generated {
        let name = crd
            .value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap();
        let seen = by_name
            .get(name)
            .unwrap_or_else(|| panic!("kubectl output lacks {name}"));
        assert!(
            crate::crd_compat::json_equal(seen, &crd.value),
            "kubectl reads {} differently from what we generate",
            crd.file_name
        );
    }
}
