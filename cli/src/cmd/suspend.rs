//! `ferroflux suspend` and `ferroflux resume` (also `--all`), as `flux suspend/resume`: patch
//! `spec.suspend`, and on resume wait for the object to be reconciled again.

use std::collections::BTreeSet;

use anyhow::{anyhow, bail};
use kube::api::ListParams;
use serde_json::{Value, json};

use super::cluster::{Cluster, ClusterArgs, describe, run, with_timeout};
use super::kinds::{self, Kind};
use super::log;
use super::target::Target;
use super::wait;

/// `ferroflux suspend`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  # Suspend reconciliation of an existing Kustomization
  ferroflux suspend ks podinfo

  # Suspend every GitRepository of a namespace
  ferroflux suspend source git --all -n apps")]
pub struct SuspendArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Suspend all resources in that namespace.
    #[arg(long, global = true)]
    pub all: bool,
    #[command(subcommand)]
    pub what: Target,
}

/// `ferroflux resume`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  # Resume reconciliation of a Kustomization and wait for it
  ferroflux resume ks podinfo

  # Resume several, waiting for each
  ferroflux resume ks podinfo-1 podinfo-2 --wait")]
pub struct ResumeArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Resume all resources in that namespace.
    #[arg(long, global = true)]
    pub all: bool,
    /// Wait for the resources to reconcile (the default for a single name).
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = "true")]
    pub wait: Option<bool>,
    #[command(subcommand)]
    pub what: Target,
}

fn unique(names: Vec<String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    names
        .into_iter()
        .filter(|n| seen.insert(n.clone()))
        .collect()
}

async fn list(cluster: &Cluster, kind: &Kind, name: Option<&str>) -> anyhow::Result<Vec<Value>> {
    let mut lp = ListParams::default();
    if let Some(n) = name {
        lp = lp.fields(&format!("metadata.name={n}"));
    }
    cluster
        .list(kind, Some(&cluster.namespace), &lp)
        .await
        .map(|(items, _)| items)
        .map_err(|e| anyhow!(describe(&e)))
}

async fn set_suspend(
    cluster: &Cluster,
    kind: &Kind,
    obj: &Value,
    value: Value,
) -> anyhow::Result<Value> {
    cluster
        .merge_patch(
            kind,
            &cluster.namespace,
            kinds::name(obj),
            &json!({"spec": {"suspend": value}}),
        )
        .await
        .map_err(|e| anyhow!(describe(&e)))
}

/// Runs `ferroflux suspend`.
pub fn suspend(args: SuspendArgs) -> anyhow::Result<()> {
    let timeout = args.cluster.timeout;
    run(with_timeout(timeout, async move {
        let (kind, names) = args.what.resolve();
        if names.is_empty() && !args.all {
            bail!("{} name is required", kind.human);
        }
        let cluster = args.cluster.connect().await?;
        let patch_all = |items: Vec<Value>| {
            let cluster = &cluster;
            async move {
                for obj in items {
                    log::action(format!(
                        "suspending {} {} in {} namespace",
                        kind.human,
                        kinds::name(&obj),
                        cluster.namespace
                    ));
                    set_suspend(cluster, kind, &obj, json!(true)).await?;
                    log::success(format!("{} suspended", kind.human));
                }
                anyhow::Ok(())
            }
        };
        if names.is_empty() {
            let items = list(&cluster, kind, None).await?;
            if items.is_empty() {
                bail!("no objects found");
            }
            return patch_all(items).await;
        }
        for name in unique(names) {
            match list(&cluster, kind, Some(&name)).await {
                Ok(items) if items.is_empty() => log::failure(format!(
                    "{} {name} not found in {} namespace",
                    kind.kind, cluster.namespace
                )),
                Ok(items) => {
                    if let Err(e) = patch_all(items).await {
                        log::failure(format!(
                            "failed suspending {} {name} in {} namespace: {e}",
                            kind.kind, cluster.namespace
                        ));
                    }
                }
                Err(e) => log::failure(format!(
                    "failed suspending {} {name} in {} namespace: {e}",
                    kind.kind, cluster.namespace
                )),
            }
        }
        Ok(())
    }))
}

/// Runs `ferroflux resume`.
pub fn resume(args: ResumeArgs) -> anyhow::Result<()> {
    let timeout = args.cluster.timeout;
    run(with_timeout(timeout, async move {
        let (kind, names) = args.what.resolve();
        if names.is_empty() && !args.all {
            bail!("{} name is required", kind.human);
        }
        let should_wait = match args.wait {
            Some(w) => w,
            None => names.len() == 1,
        };
        let cluster = args.cluster.connect().await?;
        let ns = cluster.namespace.clone();
        let mut resumed: Vec<Value> = Vec::new();
        let mut groups: Vec<(Option<String>, Vec<Value>)> = Vec::new();
        if names.is_empty() {
            groups.push((None, list(&cluster, kind, None).await?));
        } else {
            for name in unique(names.clone()) {
                let items = list(&cluster, kind, Some(&name)).await?;
                groups.push((Some(name), items));
            }
        }
        for (name, items) in groups {
            if items.is_empty() {
                match name {
                    None => {
                        log::failure(format!("no {} objects found in {ns} namespace", kind.kind))
                    }
                    // flux names the first argument here
                    Some(_) => log::failure(format!(
                        "{} object '{}' not found in {ns} namespace",
                        kind.kind, names[0]
                    )),
                }
                continue;
            }
            for obj in items {
                log::action(format!(
                    "resuming {} {} in {ns} namespace",
                    kind.human,
                    kinds::name(&obj)
                ));
                let patched = set_suspend(&cluster, kind, &obj, Value::Null).await?;
                resumed.push(patched);
                log::success(format!("{} resumed", kind.human));
            }
        }
        if !should_wait {
            return Ok(());
        }
        let waits = resumed.iter().map(|obj| {
            let cluster = &cluster;
            let ns = ns.clone();
            async move {
                log::waiting(format!("waiting for {} reconciliation", kind.kind));
                let is_static = kind.is_static(obj);
                let r = wait::until(cluster, kind, &ns, obj.clone(), |o| {
                    wait::ready_verdict(o, is_static)
                })
                .await;
                (kinds::name(obj).to_string(), r)
            }
        });
        let mut results = futures::future::join_all(waits).await;
        results.sort_by(|a, b| a.0.cmp(&b.0));
        let mut failed = 0;
        for (name, r) in results {
            match r {
                Ok(obj) => {
                    log::success(format!("{} {name} reconciliation completed", kind.kind));
                    log::success(kind.success_message(&obj));
                }
                Err(e) => {
                    failed += 1;
                    log::failure(format!("{} {name} reconciliation failed: {e}", kind.kind));
                }
            }
        }
        if failed > 0 {
            bail!("reconciliation failed for {failed} {}(s)", kind.kind);
        }
        Ok(())
    }))
}
