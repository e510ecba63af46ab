//! Our generated CRDs against the upstream Flux 2.9 CRDs: same names, versions, printer columns
//! and, recursively, the same schema (descriptions ignored). Deliberate differences are listed in
//! [`DELIBERATE`]; everything else must be equal, and every listed difference must still occur.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::{corpus, read_yaml};

/// A difference we keep on purpose: kind, location (`<schema path> <keyword>` or a CRD field),
/// and why.
struct Deliberate {
    kind: &'static str,
    path: &'static str,
    reason: &'static str,
}

const DELIBERATE: &[Deliberate] = &[];

#[derive(Debug)]
struct Diff {
    kind: String,
    path: String,
    detail: String,
}

/// JSON equality where numbers compare by value (`0` equals `0.0`).
pub fn json_equal(a: &Value, b: &Value) -> bool {
    num_eq(a, b)
}

fn num_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| num_eq(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| num_eq(v, w)))
        }
        _ => a == b,
    }
}

fn show(v: Option<&Value>) -> String {
    v.map_or_else(|| "<absent>".to_owned(), |v| v.to_string())
}

struct Ctx<'a> {
    kind: &'a str,
    diffs: Vec<Diff>,
}

impl Ctx<'_> {
    fn push(&mut self, path: impl Into<String>, detail: impl Into<String>) {
        self.diffs.push(Diff {
            kind: self.kind.to_owned(),
            path: path.into(),
            detail: detail.into(),
        });
    }

    fn field(&mut self, path: &str, ours: Option<&Value>, theirs: Option<&Value>) {
        let same = match (ours, theirs) {
            (Some(a), Some(b)) => num_eq(a, b),
            (None, None) => true,
            _ => false,
        };
        if !same {
            self.push(
                path,
                format!("ours {}, upstream {}", show(ours), show(theirs)),
            );
        }
    }

    fn schema(&mut self, path: &str, ours: &Value, theirs: &Value) {
        let (Some(a), Some(b)) = (ours.as_object(), theirs.as_object()) else {
            self.field(&format!("{path} <schema>"), Some(ours), Some(theirs));
            return;
        };
        let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        for key in keys {
            let (x, y) = (a.get(key), b.get(key));
            match key.as_str() {
                "description" => {}
                "properties" => {
                    let empty = serde_json::Map::new();
                    let px = x.and_then(Value::as_object).unwrap_or(&empty);
                    let py = y.and_then(Value::as_object).unwrap_or(&empty);
                    let names: BTreeSet<&String> = px.keys().chain(py.keys()).collect();
                    for name in names {
                        let child = format!("{path}.{name}");
                        match (px.get(name), py.get(name)) {
                            (Some(c), Some(d)) => self.schema(&child, c, d),
                            (Some(_), None) => self.push(child, "property only in ours"),
                            (None, Some(_)) => self.push(child, "property missing in ours"),
                            (None, None) => {}
                        }
                    }
                }
                "items" => match (x, y) {
                    (Some(c), Some(d)) => self.schema(&format!("{path}[]"), c, d),
                    _ => self.field(&format!("{path} items"), x, y),
                },
                "additionalProperties" => match (x, y) {
                    (Some(c @ Value::Object(_)), Some(d @ Value::Object(_))) => {
                        self.schema(&format!("{path}{{}}"), c, d)
                    }
                    _ => self.field(&format!("{path} additionalProperties"), x, y),
                },
                "required" => {
                    let set = |v: Option<&Value>| -> BTreeSet<String> {
                        v.and_then(Value::as_array)
                            .map(|l| {
                                l.iter()
                                    .filter_map(|s| s.as_str().map(str::to_owned))
                                    .collect()
                            })
                            .unwrap_or_default()
                    };
                    let (rx, ry) = (set(x), set(y));
                    if rx != ry {
                        self.push(
                            format!("{path} required"),
                            format!("ours {rx:?}, upstream {ry:?}"),
                        );
                    }
                }
                _ => self.field(&format!("{path} {key}"), x, y),
            }
        }
    }

    fn crd(&mut self, ours: &Value, theirs: &Value) {
        for field in ["group", "scope"] {
            let p = format!("/spec/{field}");
            self.field(
                &format!("spec.{field}"),
                ours.pointer(&p),
                theirs.pointer(&p),
            );
        }
        for field in [
            "plural",
            "singular",
            "kind",
            "listKind",
            "shortNames",
            "categories",
        ] {
            let p = format!("/spec/names/{field}");
            self.field(
                &format!("spec.names.{field}"),
                ours.pointer(&p),
                theirs.pointer(&p),
            );
        }
        let substitute = "/metadata/annotations/kustomize.toolkit.fluxcd.io~1substitute";
        self.field(
            "metadata.annotations[kustomize.toolkit.fluxcd.io/substitute]",
            ours.pointer(substitute),
            theirs.pointer(substitute),
        );
        let versions = |v: &Value| -> BTreeMap<String, Value> {
            v.pointer("/spec/versions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|ver| Some((ver.get("name")?.as_str()?.to_owned(), ver.clone())))
                .collect()
        };
        let (vo, vt) = (versions(ours), versions(theirs));
        let names: BTreeSet<&String> = vo.keys().chain(vt.keys()).collect();
        for name in names {
            let (Some(a), Some(b)) = (vo.get(name), vt.get(name)) else {
                self.push(
                    format!("spec.versions[{name}]"),
                    format!(
                        "version present only in {}",
                        if vo.contains_key(name) {
                            "ours"
                        } else {
                            "upstream"
                        }
                    ),
                );
                continue;
            };
            for field in [
                "served",
                "storage",
                "deprecated",
                "deprecationWarning",
                "subresources",
            ] {
                self.field(
                    &format!("spec.versions[{name}].{field}"),
                    a.get(field),
                    b.get(field),
                );
            }
            let columns = |v: &Value| -> Option<Value> {
                let mut cols = v.get("additionalPrinterColumns")?.clone();
                for col in cols.as_array_mut()? {
                    col.as_object_mut()?.remove("description");
                }
                Some(cols)
            };
            self.field(
                &format!("spec.versions[{name}].additionalPrinterColumns"),
                columns(a).as_ref(),
                columns(b).as_ref(),
            );
            match (
                a.pointer("/schema/openAPIV3Schema"),
                b.pointer("/schema/openAPIV3Schema"),
            ) {
                (Some(x), Some(y)) => self.schema("", x, y),
                (x, y) => self.field(&format!("spec.versions[{name}].schema"), x, y),
            }
        }
    }
}

#[test]
fn generated_crds_match_the_corpus_upstream_crds() {
    let ours: BTreeMap<String, Value> = ferroflux_api::crdgen::crds()
        .into_iter()
        .map(|c| (c.file_name, c.value))
        .collect();
    let dir = corpus().join("upstream-crds");
    let mut upstream: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    upstream.sort();
    assert!(
        !upstream.is_empty(),
        "no upstream CRDs in {}",
        dir.display()
    );

    let mut diffs = Vec::new();
    let mut seen = BTreeSet::new();
    for path in &upstream {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let theirs = read_yaml(path);
        let kind = theirs
            .pointer("/spec/names/kind")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned();
        let mut ctx = Ctx {
            kind: &kind,
            diffs: Vec::new(),
        };
        match ours.get(&file) {
            Some(ours) => ctx.crd(ours, &theirs),
            None => ctx.push(file.clone(), "no generated CRD with this file name"),
        }
        seen.insert(file);
        diffs.extend(ctx.diffs);
    }
    for file in ours.keys() {
        if !seen.contains(file) {
            diffs.push(Diff {
                kind: "?".into(),
                path: file.clone(),
                detail: "generated CRD has no upstream counterpart".into(),
            });
        }
    }

    let mut used = vec![false; DELIBERATE.len()];
    let unexpected: Vec<&Diff> = diffs
        .iter()
        .filter(|d| {
            match DELIBERATE
                .iter()
                .position(|a| a.kind == d.kind && a.path == d.path)
            {
                Some(i) => {
                    used[i] = true;
                    false
                }
                None => true,
            }
        })
        .collect();
    let stale: Vec<String> = DELIBERATE
        .iter()
        .zip(&used)
        .filter(|(_, u)| !**u)
        .map(|(a, _)| format!("{} {} ({})", a.kind, a.path, a.reason))
        .collect();
    println!(
        "compared {} upstream CRDs; {} deliberate differences",
        upstream.len(),
        DELIBERATE.len()
    );
    assert!(
        unexpected.is_empty() && stale.is_empty(),
        "{} unexpected differences from upstream CRDs:\n{}\n{} deliberate differences no longer occur:\n{}",
        unexpected.len(),
        unexpected
            .iter()
            .map(|d| format!("  {} {}: {}", d.kind, d.path, d.detail))
            .collect::<Vec<_>>()
            .join("\n"),
        stale.len(),
        stale.join("\n")
    );
}

/// The comparator itself must see every kind of difference, or the test above proves nothing.
#[test]
fn comparator_reports_every_difference_on_a_corpus_crd() {
    let upstream =
        read_yaml(&corpus().join("upstream-crds/source.toolkit.fluxcd.io_gitrepositories.yaml"));
    let mut changed = upstream.clone();
    let spec = "/spec/versions/0/schema/openAPIV3Schema/properties/spec";
    let edits: &[(&str, Value)] = &[
        ("/properties/interval/pattern", Value::from("^x$")),
        ("/properties/timeout/default", Value::from("30s")),
        (
            "/properties/provider/enum",
            serde_json::json!(["generic", "aws"]),
        ),
        (
            "/properties/url/description",
            Value::from("descriptions are ignored"),
        ),
        ("/required", serde_json::json!(["url"])),
        ("/x-kubernetes-validations/0/rule", Value::from("true")),
    ];
    for (path, value) in edits {
        *changed.pointer_mut(&format!("{spec}{path}")).unwrap() = value.clone();
    }
    changed
        .pointer_mut(&format!("{spec}/properties"))
        .and_then(Value::as_object_mut)
        .unwrap()
        .remove("ignore");
    changed
        .pointer_mut("/spec/versions/0/additionalPrinterColumns/0")
        .and_then(Value::as_object_mut)
        .unwrap()
        .insert("jsonPath".into(), Value::from(".spec.other"));
    *changed.pointer_mut("/spec/names/shortNames").unwrap() = serde_json::json!(["gr"]);

    let mut ctx = Ctx {
        kind: "GitRepository",
        diffs: Vec::new(),
    };
    ctx.crd(&changed, &upstream);
    let mut paths: Vec<&str> = ctx.diffs.iter().map(|d| d.path.as_str()).collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        vec![
            ".spec required",
            ".spec x-kubernetes-validations",
            ".spec.ignore",
            ".spec.interval pattern",
            ".spec.provider enum",
            ".spec.timeout default",
            "spec.names.shortNames",
            "spec.versions[v1].additionalPrinterColumns",
        ],
        "{:#?}",
        ctx.diffs
    );

    let mut same = Ctx {
        kind: "GitRepository",
        diffs: Vec::new(),
    };
    same.crd(&upstream, &upstream);
    assert!(same.diffs.is_empty(), "{:?}", same.diffs);
}
