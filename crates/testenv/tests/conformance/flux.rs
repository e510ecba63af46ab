//! Real inputs: the upstream Flux 2.9 CRDs install through kubectl, and every real-world Flux
//! object of a served version from the corpus is admitted by their schemas.

use crate::common::*;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, PostParams};
use kube::core::DynamicObject;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};

use ferroflux_testsupport::corpus;

#[tokio::test]
async fn upstream_flux_crds_and_corpus_objects() {
    let (env, client) = env().await;
    let k = Kubectl::new(&env);
    let crd_dir = corpus().join("upstream-crds");
    assert!(crd_dir.is_dir(), "corpus missing at {}", crd_dir.display());
    k.ok(
        &["apply", "--server-side", "-f", crd_dir.to_str().unwrap()],
        None,
    )
    .await;
    k.ok(
        &[
            "wait",
            "--for=condition=Established",
            "crd",
            "--all",
            "--timeout=20s",
        ],
        None,
    )
    .await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let installed = crds.list(&ListParams::default()).await.unwrap().items;
    assert!(
        installed.len() == std::fs::read_dir(&crd_dir).unwrap().count(),
        "{} CRDs",
        installed.len()
    );

    // served versions -> plural
    let mut served: BTreeMap<(String, String), String> = BTreeMap::new();
    for c in &installed {
        for v in &c.spec.versions {
            if v.served {
                served.insert(
                    (
                        format!("{}/{}", c.spec.group, v.name),
                        c.spec.names.kind.clone(),
                    ),
                    c.spec.names.plural.clone(),
                );
            }
        }
    }
    // messages of the CRDs' CEL rules (x-kubernetes-validations)
    fn rule_messages(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::Array(rules)) = m.get("x-kubernetes-validations") {
                    out.extend(
                        rules
                            .iter()
                            .filter_map(|r| r["message"].as_str().map(str::to_string)),
                    );
                }
                m.values().for_each(|c| rule_messages(c, out));
            }
            Value::Array(a) => a.iter().for_each(|c| rule_messages(c, out)),
            _ => {}
        }
    }
    let mut cel_messages = vec![];
    rule_messages(&to_value(&installed), &mut cel_messages);
    assert!(!cel_messages.is_empty());
    let index = std::fs::read_to_string(corpus().join("flux-objects/index.tsv")).unwrap();
    let nss: Api<Namespace> = Api::all(client.clone());
    let mut made_ns: HashSet<String> = HashSet::new();
    let (mut admitted, mut rejected, mut failures, mut skipped) = (0, 0, vec![], 0);
    for line in index.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (file, api_version, kind, templated) = (
            cols[0],
            cols[1],
            cols[2],
            cols.get(3).is_some_and(|t| !t.is_empty()),
        );
        let Some(plural) = served.get(&(api_version.to_string(), kind.to_string())) else {
            skipped += 1;
            continue;
        };
        if templated {
            skipped += 1;
            continue;
        }
        let text = std::fs::read_to_string(corpus().join("flux-objects").join(file)).unwrap();
        // post-build variables anywhere (not only the ones the index flags) need substitution first
        if text.contains("${") {
            skipped += 1;
            continue;
        }
        let mut obj: Value = serde_saphyr::from_str(&text).unwrap();
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        obj["metadata"]["namespace"] = json!(ns);
        if made_ns.insert(ns.clone()) && nss.get_opt(&ns).await.unwrap().is_none() {
            nss.create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
            )
            .await
            .unwrap();
        }
        let (group, version) = api_version.split_once('/').unwrap();
        let api = dyn_api(&client, group, version, kind, plural, Some(&ns));
        let o: DynamicObject = serde_json::from_value(obj).unwrap();
        match api
            .create(
                &PostParams {
                    dry_run: true,
                    ..Default::default()
                },
                &o,
            )
            .await
        {
            Ok(_) => admitted += 1,
            Err(e) => {
                let s = status_of(e);
                // fragments (kustomize patches, values files) are rejected the way the real
                // apiserver rejects them: 422 for missing required fields, values outside an enum, or
                // the CRDs' CEL rules
                let details = s.details.clone().unwrap();
                let schema_violation = s.code == 422
                    && !details.causes.is_empty()
                    && details.causes.iter().all(|c| {
                        matches!(
                            c.reason.as_str(),
                            "FieldValueRequired" | "FieldValueNotSupported"
                        ) || (c.reason == "FieldValueInvalid"
                            && cel_messages.iter().any(|m| c.message.ends_with(m.as_str())))
                    });
                if !schema_violation {
                    failures.push(format!("{file}: {} {}", s.code, s.message));
                }
                rejected += 1;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "unexpected rejections:\n{}",
        failures.join("\n")
    );
    eprintln!("admitted {admitted}, rejected by schema or CEL rules {rejected}, skipped {skipped}");
    assert!(
        admitted > 1200,
        "admitted {admitted}, rejected {rejected}, skipped {skipped}"
    );
}
