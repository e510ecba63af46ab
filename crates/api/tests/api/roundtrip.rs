//! Every Flux object of the corpus at a served apiVersion must deserialize into our type and
//! serialize back unchanged (compared as JSON values).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::{corpus, read_yaml};

type RoundTrip = fn(Value) -> Result<Value, String>;

fn via<T: serde::de::DeserializeOwned + serde::Serialize>(v: Value) -> Result<Value, String> {
    let typed: T = serde_json::from_value(v).map_err(|e| e.to_string())?;
    serde_json::to_value(&typed).map_err(|e| e.to_string())
}

/// (apiVersion, kind) we serve, with the round trip through our type.
fn served() -> BTreeMap<(&'static str, &'static str), RoundTrip> {
    use ferroflux_api::*;
    let mut m: BTreeMap<(&'static str, &'static str), RoundTrip> = BTreeMap::new();
    m.insert(
        ("source.toolkit.fluxcd.io/v1", "GitRepository"),
        via::<GitRepository>,
    );
    m.insert(
        ("source.toolkit.fluxcd.io/v1", "OCIRepository"),
        via::<OCIRepository>,
    );
    m.insert(
        ("source.toolkit.fluxcd.io/v1", "HelmRepository"),
        via::<HelmRepository>,
    );
    m.insert(
        ("source.toolkit.fluxcd.io/v1", "HelmChart"),
        via::<HelmChart>,
    );
    m.insert(("source.toolkit.fluxcd.io/v1", "Bucket"), via::<Bucket>);
    m.insert(
        ("kustomize.toolkit.fluxcd.io/v1", "Kustomization"),
        via::<Kustomization>,
    );
    m.insert(
        ("helm.toolkit.fluxcd.io/v2", "HelmRelease"),
        via::<HelmRelease>,
    );
    m.insert(
        ("notification.toolkit.fluxcd.io/v1beta3", "Provider"),
        via::<Provider>,
    );
    m.insert(
        ("notification.toolkit.fluxcd.io/v1beta3", "Alert"),
        via::<Alert>,
    );
    m.insert(
        ("notification.toolkit.fluxcd.io/v1", "Receiver"),
        via::<Receiver>,
    );
    m.insert(
        ("source.toolkit.fluxcd.io/v1", "ExternalArtifact"),
        via::<ExternalArtifact>,
    );
    m
}

/// Replaces `${VAR}` / `${VAR:=default}` post-build placeholders with plausible values, the way
/// a Kustomization's substitution would before the object reaches the API server. A string that
/// is exactly one placeholder gets a value of the type its key suggests.
fn substitute(v: &mut Value, key: &str) {
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                substitute(child, k);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|c| substitute(c, key)),
        Value::String(s) if s.contains("${") => {
            let whole = s.starts_with("${") && s.ends_with('}') && s.matches("${").count() == 1;
            if whole {
                let replacement = match key {
                    "interval" | "timeout" | "retryInterval" => Some(Value::from("5m")),
                    "suspend" | "prune" | "wait" | "force" | "insecure" => Some(Value::Bool(true)),
                    "maxHistory" | "retries" => Some(Value::from(3)),
                    _ => None,
                };
                if let Some(r) = replacement {
                    *v = r;
                    return;
                }
            }
            *s = replace_placeholders(s);
        }
        _ => {}
    }
}

fn replace_placeholders(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let body = &after[..end];
        match body.split_once(":=") {
            Some((_, default)) => out.push_str(default),
            None => out.push_str(&format!(
                "{}-value",
                body.to_ascii_lowercase().replace('_', "-")
            )),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Paths at which two JSON values differ.
fn differences(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) => differences(&format!("{path}.{k}"), v, w, out),
                    None => out.push(format!("{path}.{k}: lost")),
                }
            }
            for k in y.keys().filter(|k| !x.contains_key(*k)) {
                out.push(format!("{path}.{k}: added"));
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                differences(&format!("{path}[{i}]"), v, w, out);
            }
        }
        _ if a == b => {}
        _ => out.push(format!("{path}: {a} became {b}")),
    }
}

#[test]
fn corpus_objects_round_trip() {
    let dir = corpus().join("flux-objects");
    let index = std::fs::read_to_string(dir.join("index.tsv")).expect("index.tsv");
    let served = served();
    let mut checked: BTreeMap<String, usize> = BTreeMap::new();
    let mut substituted = 0usize;
    let mut skipped: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for line in index.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (file, api_version, kind) = (cols[0], cols[1], cols[2]);
        let templated = cols.get(3).is_some_and(|t| !t.trim().is_empty());
        let Some(round_trip) = served.get(&(api_version, kind)) else {
            assert!(
                ferroflux_api::versions::needs_migration(api_version, kind),
                "{file}: {kind} {api_version} is neither served nor an older Flux version"
            );
            *skipped.entry(format!("{kind} {api_version}")).or_default() += 1;
            continue;
        };
        let mut input = read_yaml(&dir.join(file));
        if templated || input.to_string().contains("${") {
            substitute(&mut input, "");
            substituted += 1;
        }
        match round_trip(input.clone()) {
            Ok(output) => {
                let mut diffs = Vec::new();
                differences("", &input, &output, &mut diffs);
                if diffs.is_empty() {
                    *checked.entry(kind.to_owned()).or_default() += 1;
                } else {
                    failures.push(format!("{file}: {}", diffs.join("; ")));
                }
            }
            Err(e) => failures.push(format!("{file}: does not deserialize: {e}")),
        }
    }
    println!("round-tripped per kind: {checked:?}");
    println!("objects with placeholders substituted first: {substituted}");
    println!("skipped (apiVersion not served, needs `flux migrate`): {skipped:?}");
    assert!(
        failures.is_empty(),
        "{} objects failed the round trip:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Every kind we serve that the corpus holds at a served version was really checked.
    for line in index.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        if cols.len() >= 3 && served.contains_key(&(cols[1], cols[2])) {
            assert!(
                checked.get(cols[2]).copied().unwrap_or(0) > 0,
                "no {} object was checked",
                cols[2]
            );
        }
    }
}

#[test]
fn placeholder_substitution() {
    let mut v = serde_json::json!({
        "spec": {
            "interval": "${INTERVAL}",
            "prune": "${PRUNE}",
            "path": "./apps/${CLUSTER}",
            "targetNamespace": "${NS:=flux-system}",
        }
    });
    substitute(&mut v, "");
    assert_eq!(
        v,
        serde_json::json!({
            "spec": {
                "interval": "5m",
                "prune": true,
                "path": "./apps/cluster-value",
                "targetNamespace": "flux-system",
            }
        })
    );
}
