//! `ferroflux export`: Flux objects as the clean YAML `flux export` writes — apiVersion, kind,
//! metadata with name, namespace, labels and annotations only, the spec as flux's round trip
//! through its Go types leaves it (durations as Go prints them, `1m` → `1m0s`; false booleans
//! and empty strings of `omitempty` fields dropped), no status;
//! each document after a `---` line, keys sorted as sigs.k8s.io/yaml orders them.

use std::io::Write;

use anyhow::{anyhow, bail};
use kube::api::ListParams;
use serde_json::{Map, Value};

use super::cluster::{ClusterArgs, describe, run, with_timeout};
use super::target::Target;

/// `ferroflux export`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  # Export all Kustomizations of flux-system
  ferroflux export kustomization --all > kustomizations.yaml

  # Export one GitRepository
  ferroflux export source git podinfo > source.yaml")]
pub struct ExportArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Select all resources.
    #[arg(long, global = true)]
    pub all: bool,
    #[command(subcommand)]
    pub what: Target,
}

/// The fields of Flux specs typed `metav1.Duration` (every one is named so).
const DURATION_KEYS: &[&str] = &["interval", "timeout", "retryInterval"];

/// Subtrees of a spec that are free-form data, not Go struct fields.
const OPAQUE_KEYS: &[&str] = &[
    "values",
    "substitute",
    "labels",
    "annotations",
    "matchLabels",
    "patches",
    "commonMetadata",
];

/// Boolean fields of the Flux specs that Go keeps when false (no `omitempty`, or `*bool`);
/// every other false boolean and empty string is dropped, as flux's Go types drop them.
const KEPT_FALSE: &[&str] = &[
    "prune",
    "persistentClient",
    "serverSideApply",
    "ignoreTestFailures",
    "remediateLastFailure",
];

fn normalise(v: &mut Value) {
    if let Value::Object(m) = v {
        m.retain(|k, child| match child {
            Value::Bool(false) => KEPT_FALSE.contains(&k.as_str()),
            Value::String(s) => !s.is_empty(),
            _ => true,
        });
        for (k, child) in m.iter_mut() {
            if OPAQUE_KEYS.contains(&k.as_str()) {
                continue;
            }
            if DURATION_KEYS.contains(&k.as_str())
                && let Value::String(s) = child
                && let Ok(d) = ferroflux_api::duration::parse_go_duration(s)
            {
                *s = ferroflux_api::duration::format_go(d);
                continue;
            }
            normalise(child);
        }
    } else if let Value::Array(items) = v {
        for i in items {
            normalise(i);
        }
    }
}

/// The exported form of one object.
pub fn clean(obj: &Value) -> Value {
    let mut meta = Map::new();
    let m = obj.get("metadata");
    for key in ["name", "namespace", "labels", "annotations"] {
        if let Some(v) = m.and_then(|m| m.get(key)).filter(|v| !v.is_null()) {
            if v.as_object().is_some_and(Map::is_empty) {
                continue;
            }
            meta.insert(key.into(), v.clone());
        }
    }
    let mut out = Map::new();
    out.insert("apiVersion".into(), obj["apiVersion"].clone());
    out.insert("kind".into(), obj["kind"].clone());
    out.insert("metadata".into(), Value::Object(meta));
    let mut spec = obj
        .get("spec")
        .cloned()
        .unwrap_or(Value::Object(Map::new()));
    normalise(&mut spec);
    out.insert("spec".into(), spec);
    Value::Object(out)
}

/// One exported document: `---` then the YAML.
pub fn document(obj: &Value) -> String {
    let yaml = ferroflux_kustomize::yaml::emit::to_yaml(&clean(obj));
    format!("---\n{}\n", yaml.trim())
}

/// Runs `ferroflux export`.
pub fn command(args: ExportArgs) -> anyhow::Result<()> {
    let timeout = args.cluster.timeout;
    run(with_timeout(timeout, async move {
        let (kind, names) = args.what.resolve();
        if !args.all && names.is_empty() {
            bail!("name is required");
        }
        let cluster = args.cluster.connect().await?;
        let ns = cluster.namespace.clone();
        let mut out = String::new();
        if args.all {
            let (items, _) = cluster
                .list(kind, Some(&ns), &ListParams::default())
                .await
                .map_err(|e| anyhow!(describe(&e)))?;
            if items.is_empty() {
                bail!("no objects found in {ns} namespace");
            }
            for obj in &items {
                out.push_str(&document(obj));
            }
        } else {
            let obj = cluster
                .get(kind, &ns, &names[0])
                .await
                .map_err(|e| anyhow!(describe(&e)))?;
            out.push_str(&document(&obj));
        }
        std::io::stdout().lock().write_all(out.as_bytes())?;
        Ok(())
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn export_as_flux() {
        let obj = json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": "apps", "namespace": "flux-system", "uid": "x", "generation": 3,
                         "resourceVersion": "9", "creationTimestamp": "2026-01-01T00:00:00Z",
                         "labels": {"team": "a"}, "managedFields": []},
            "spec": {"interval": "10m", "retryInterval": "90s", "path": "./apps", "prune": true,
                     "force": false, "suspend": false,
                     "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
                     "postBuild": {"substitute": {"interval": "1m"}},
                     "healthChecks": [{"kind": "Deployment", "name": "a", "namespace": "b"}]},
            "status": {"observedGeneration": 3}
        });
        assert_eq!(
            document(&obj),
            "---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  labels:
    team: a
  name: apps
  namespace: flux-system
spec:
  healthChecks:
  - kind: Deployment
    name: a
    namespace: b
  interval: 10m0s
  path: ./apps
  postBuild:
    substitute:
      interval: 1m
  prune: true
  retryInterval: 1m30s
  sourceRef:
    kind: GitRepository
    name: flux-system
"
        );
    }
}
