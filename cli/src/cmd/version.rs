//! `ferroflux version`: the client's version and, unless `--client`, the controllers' versions
//! (the image tags of the Flux Deployments, or the embedded demo's processes), as `flux version`
//! prints them (YAML by default, `-o json`).

use std::collections::BTreeMap;

use anyhow::bail;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams};
use serde_json::Value;

use super::cluster::{ClusterArgs, describe, is_not_found, run, with_timeout};

/// The Flux release whose APIs ferroflux serves.
pub const FLUX_COMPATIBLE: &str = "v2.9.0";

/// `ferroflux version`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  # Client and controller versions
  ferroflux version

  # Only the client, as JSON
  ferroflux version --client -o json")]
pub struct VersionArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Print only the client version.
    #[arg(long)]
    pub client: bool,
    /// Output format: yaml or json.
    #[arg(short = 'o', long, default_value = "yaml")]
    pub output: String,
}

fn split_image(image: &str) -> (String, String) {
    let last = image.rsplit('/').next().unwrap_or(image);
    let last = last.split('@').next().unwrap_or(last);
    match last.split_once(':') {
        Some((n, t)) => (n.to_string(), t.to_string()),
        None => (last.to_string(), "latest".to_string()),
    }
}

/// Runs `ferroflux version`.
pub fn command(args: VersionArgs) -> anyhow::Result<()> {
    if args.output != "yaml" && args.output != "json" {
        bail!("--output must be json or yaml, not {}", args.output);
    }
    let timeout = args.cluster.timeout;
    let mut head: Vec<(String, String)> = vec![
        (
            "ferroflux".into(),
            format!("v{}", env!("CARGO_PKG_VERSION")),
        ),
        ("flux".into(), FLUX_COMPATIBLE.into()),
    ];
    let mut controllers: BTreeMap<String, String> = BTreeMap::new();
    if !args.client {
        let found = run(with_timeout(timeout, async {
            let cluster = args.cluster.connect().await?;
            let crds: Api<CustomResourceDefinition> = Api::all(cluster.client.clone());
            let mut distribution = None;
            match crds
                .get_metadata("gitrepositories.source.toolkit.fluxcd.io")
                .await
            {
                Ok(m) => {
                    // flux's `distribution()`: part-of and version labels
                    let l = m.metadata.labels.unwrap_or_default();
                    let v = l
                        .get("app.kubernetes.io/version")
                        .cloned()
                        .unwrap_or_default();
                    let d = match l.get("app.kubernetes.io/part-of") {
                        Some(p) => format!("{p}-{v}"),
                        None => v,
                    };
                    distribution = (!d.is_empty()).then_some(d);
                }
                Err(e) if is_not_found(&e) => {}
                Err(e) => bail!(describe(&e)),
            }
            let deployments: Api<Deployment> =
                Api::namespaced(cluster.client.clone(), &cluster.namespace);
            let list = deployments
                .list(&ListParams::default().labels("app.kubernetes.io/part-of=flux"))
                .await
                .map_err(|e| anyhow::anyhow!(describe(&e)))?;
            let mut found = BTreeMap::new();
            for d in list.items {
                for c in d
                    .spec
                    .and_then(|s| s.template.spec)
                    .map(|s| s.containers)
                    .unwrap_or_default()
                {
                    let (n, t) = split_image(&c.image.unwrap_or_default());
                    found.insert(n, t);
                }
            }
            if found.is_empty()
                && let Some(state) = super::check::up_state_for(&args.cluster)
            {
                for c in state
                    .get("controllers")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(n) = c.get("name").and_then(Value::as_str) {
                        found.insert(n.to_string(), format!("v{}", env!("CARGO_PKG_VERSION")));
                    }
                }
            }
            if found.is_empty() {
                bail!("no deployments found in {} namespace", cluster.namespace);
            }
            Ok((distribution, found))
        }))?;
        if let Some(d) = found.0 {
            head.push(("distribution".into(), d));
        }
        controllers = found.1;
    }
    let mut out = String::new();
    if args.output == "json" {
        let mut all: BTreeMap<String, String> = head.into_iter().collect();
        all.extend(controllers);
        out.push_str(&serde_json::to_string_pretty(&all)?);
        out.push('\n');
    } else {
        for (k, v) in head.into_iter().chain(controllers) {
            out.push_str(&format!("{k}: {v}\n"));
        }
    }
    print!("{out}");
    Ok(())
}
