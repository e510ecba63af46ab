//! `ferroflux reconcile`: request a reconciliation (`reconcile.fluxcd.io/requestedAt`), wait for
//! the controller to handle that very request and print the outcome as `flux reconcile` does
//! (`► annotating ...`, `✔ ... annotated`, `◎ waiting for ... reconciliation`, `✔ applied
//! revision ...`), optionally reconciling the source first (`--with-source`).

use anyhow::{anyhow, bail};
use serde_json::{Value, json};

use super::cluster::{Cluster, ClusterArgs, describe, run, with_timeout};
use super::kinds::{self, Kind};
use super::log;
use super::wait::{self, Verdict};

/// `ferroflux reconcile`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  # Trigger a Kustomization apply outside of the reconciliation interval
  ferroflux reconcile kustomization podinfo

  # Fetch the Kustomization's source first, then apply
  ferroflux reconcile kustomization podinfo --with-source

  # Trigger a git fetch of a GitRepository
  ferroflux reconcile source git podinfo")]
pub struct ReconcileArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(subcommand)]
    pub what: What,
}

#[derive(clap::Subcommand, Debug)]
pub enum What {
    /// Reconcile sources.
    Source {
        #[command(subcommand)]
        what: SourceWhat,
    },
    /// Reconcile a Kustomization resource.
    #[command(visible_alias = "ks")]
    Kustomization {
        name: String,
        /// Reconcile the Kustomization's source first.
        #[arg(long)]
        with_source: bool,
    },
    /// Reconcile a HelmRelease resource.
    #[command(visible_alias = "hr")]
    Helmrelease {
        name: String,
        /// Reconcile the HelmRelease's source first.
        #[arg(long)]
        with_source: bool,
        /// Force a one-off install or upgrade of the HelmRelease.
        #[arg(long)]
        force: bool,
        /// Reset the failure count of the HelmRelease.
        #[arg(long)]
        reset: bool,
    },
    /// Reconcile a Receiver.
    Receiver { name: String },
}

#[derive(clap::Subcommand, Debug)]
pub enum SourceWhat {
    /// Reconcile a GitRepository source.
    Git { name: String },
    /// Reconcile an OCIRepository source.
    Oci { name: String },
    /// Reconcile a HelmRepository source.
    Helm { name: String },
    /// Reconcile a Bucket source.
    Bucket { name: String },
    /// Reconcile a HelmChart source.
    Chart {
        name: String,
        /// Reconcile the HelmChart's source first.
        #[arg(long)]
        with_source: bool,
    },
}

/// The request token: the time as Go's RFC3339Nano.
fn token() -> String {
    k8s_openapi::jiff::Timestamp::now().to_string()
}

/// Sets the request annotation (plus `forceAt`/`resetAt` for HelmReleases when asked); returns
/// the token and the patched object.
async fn annotate(
    cluster: &Cluster,
    kind: &'static Kind,
    namespace: &str,
    name: &str,
    force: bool,
    reset: bool,
) -> anyhow::Result<(String, Value)> {
    let ts = token();
    let mut annotations = serde_json::Map::new();
    annotations.insert(
        ferroflux_api::annotations::RECONCILE_REQUESTED_AT.into(),
        json!(ts),
    );
    if force {
        annotations.insert(
            ferroflux_api::annotations::FORCE_REQUESTED_AT.into(),
            json!(ts),
        );
    }
    if reset {
        annotations.insert(
            ferroflux_api::annotations::RESET_REQUESTED_AT.into(),
            json!(ts),
        );
    }
    let patch = json!({"metadata": {"annotations": annotations}});
    let obj = cluster
        .merge_patch(kind, namespace, name, &patch)
        .await
        .map_err(|e| anyhow!(describe(&e)))?;
    Ok((ts, obj))
}

/// flux's `reconcileCommand` / `reconcileWithSourceCommand` for one object.
struct Reconcile<'a> {
    cluster: &'a Cluster,
    kind: &'static Kind,
    namespace: String,
    name: String,
    /// Reconcile the source first (`--with-source`, or a HelmChart reconciled for a HelmRelease).
    with_source: bool,
    force: bool,
    reset: bool,
}

/// Reconciles one object; boxed because `--with-source` recurses (HelmRelease → HelmChart →
/// its source).
fn reconcile<'a>(r: Reconcile<'a>) -> futures::future::BoxFuture<'a, anyhow::Result<()>> {
    Box::pin(async move {
        let obj = r
            .cluster
            .get(r.kind, &r.namespace, &r.name)
            .await
            .map_err(|e| anyhow!(describe(&e)))?;
        let with_source_kind = matches!(
            r.kind.family,
            kinds::Family::Kustomization | kinds::Family::HelmRelease | kinds::Family::HelmChart
        );
        if !with_source_kind && r.kind.is_static(&obj) {
            log::success("reconciliation not supported by the object");
            return Ok(());
        }
        if kinds::suspended(&obj) {
            bail!("resource is suspended");
        }
        if r.with_source {
            let (src_kind, src_ns, src_name, src_with_source) = source_of(r.kind, &obj)?;
            reconcile(Reconcile {
                cluster: r.cluster,
                kind: src_kind,
                namespace: src_ns,
                name: src_name,
                with_source: src_with_source,
                force: false,
                reset: false,
            })
            .await?;
        }
        log::action(format!(
            "annotating {} {} in {} namespace",
            r.kind.kind, r.name, r.namespace
        ));
        let (ts, patched) =
            annotate(r.cluster, r.kind, &r.namespace, &r.name, r.force, r.reset).await?;
        log::success(format!("{} annotated", r.kind.kind));
        log::waiting(format!("waiting for {} reconciliation", r.kind.kind));
        let done = wait::until(r.cluster, r.kind, &r.namespace, patched, |o| {
            if kinds::str_at(o, "/status/lastHandledReconcileAt") != Some(ts.as_str()) {
                return Verdict::Wait;
            }
            wait::attempt_verdict(o)
        })
        .await?;
        match kinds::ready_condition(&done) {
            None => bail!("status can't be determined"),
            Some(("True", _)) => {
                log::success(r.kind.success_message(&done));
                Ok(())
            }
            Some((_, msg)) => {
                if with_source_kind {
                    bail!("{} reconciliation failed: {msg}", r.kind.kind)
                } else {
                    bail!("{} reconciliation failed: '{msg}'", r.kind.kind)
                }
            }
        }
    })
}

/// The source to reconcile first, as flux's `getSource`: (kind, namespace, name, with its own
/// source).
fn source_of(kind: &Kind, obj: &Value) -> anyhow::Result<(&'static Kind, String, String, bool)> {
    let own_ns = kinds::namespace(obj).to_string();
    let pick = |r: Option<&Value>| -> (String, String, String) {
        let f = |k: &str| {
            r.and_then(|r| r.get(k))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let ns = f("namespace");
        (
            f("kind"),
            if ns.is_empty() { own_ns.clone() } else { ns },
            f("name"),
        )
    };
    match kind.family {
        kinds::Family::Kustomization => {
            let (k, ns, name) = pick(obj.pointer("/spec/sourceRef"));
            let src = match k.as_str() {
                "OCIRepository" => &kinds::OCI,
                "GitRepository" => &kinds::GIT,
                "Bucket" => &kinds::BUCKET,
                other => bail!("cannot reconcile source of kind {other}"),
            };
            Ok((src, ns, name, false))
        }
        kinds::Family::HelmRelease => {
            if let Some(cr) = obj.pointer("/spec/chartRef").filter(|v| !v.is_null()) {
                let (k, ns, name) = pick(Some(cr));
                match k.as_str() {
                    "HelmChart" => Ok((&kinds::CHART, ns, name, true)),
                    "OCIRepository" => Ok((&kinds::OCI, ns, name, false)),
                    other => bail!("cannot reconcile source of kind {other}"),
                }
            } else {
                let (_, ns, _) = pick(obj.pointer("/spec/chart/spec/sourceRef"));
                let name = format!("{}-{}", kinds::namespace(obj), kinds::name(obj));
                Ok((&kinds::CHART, ns, name, true))
            }
        }
        kinds::Family::HelmChart => {
            // a HelmChart's sourceRef is local to it
            let r = obj.pointer("/spec/sourceRef");
            let k = r
                .and_then(|r| r.get("kind"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            let name = r
                .and_then(|r| r.get("name"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let src = match k {
                "HelmRepository" => &kinds::HELMREPO,
                "GitRepository" => &kinds::GIT,
                "Bucket" => &kinds::BUCKET,
                other => bail!("cannot reconcile source of kind {other}"),
            };
            Ok((src, own_ns, name, false))
        }
        _ => bail!("{} has no source to reconcile", kind.kind),
    }
}

/// Runs `ferroflux reconcile`.
pub fn command(args: ReconcileArgs) -> anyhow::Result<()> {
    let timeout = args.cluster.timeout;
    run(with_timeout(timeout, async move {
        let cluster = args.cluster.connect().await?;
        let (kind, name, with_source, force, reset): (&'static Kind, String, bool, bool, bool) =
            match args.what {
                What::Source { what } => match what {
                    SourceWhat::Git { name } => (&kinds::GIT, name, false, false, false),
                    SourceWhat::Oci { name } => (&kinds::OCI, name, false, false, false),
                    SourceWhat::Helm { name } => (&kinds::HELMREPO, name, false, false, false),
                    SourceWhat::Bucket { name } => (&kinds::BUCKET, name, false, false, false),
                    SourceWhat::Chart { name, with_source } => {
                        (&kinds::CHART, name, with_source, false, false)
                    }
                },
                What::Kustomization { name, with_source } => {
                    (&kinds::KUSTOMIZATION, name, with_source, false, false)
                }
                What::Helmrelease {
                    name,
                    with_source,
                    force,
                    reset,
                } => (&kinds::HELMRELEASE, name, with_source, force, reset),
                What::Receiver { name } => (&kinds::RECEIVER, name, false, false, false),
            };
        let namespace = cluster.namespace.clone();
        reconcile(Reconcile {
            cluster: &cluster,
            kind,
            namespace,
            name,
            with_source,
            force,
            reset,
        })
        .await
    }))
}
