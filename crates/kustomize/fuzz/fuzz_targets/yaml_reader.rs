//! The YAML reader and writer on arbitrary input: errors are fine, panics are not, and what
//! we write must read back.
#![no_main]

use ferroflux_kustomize::yaml::{parse_documents, to_yaml};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(docs) = parse_documents(text) {
        for d in &docs {
            let out = to_yaml(d);
            if !out.contains(['\u{85}', '\u{2028}', '\u{2029}']) {
                let again = parse_documents(&out).expect("our own output must parse");
                assert_eq!(again.first().map(to_yaml).as_deref(), Some(out.as_str()));
            }
        }
    }
});
