//! `ferroflux create`: generate a source, Kustomization or HelmRelease from flags, as `flux
//! create` does — `--export` prints the YAML `flux create ... --export` prints; otherwise the
//! object is applied (created or updated) and its reconciliation awaited.

use std::io::Write;

use anyhow::{anyhow, bail};
use serde_json::{Map, Value, json};

use super::cluster::{Cluster, ClusterArgs, describe, is_not_found, run, with_timeout};
use super::kinds::{self, Kind};
use super::log;
use super::wait;

/// `ferroflux create`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  # Print a GitRepository for a public repository
  ferroflux create source git podinfo --url=https://github.com/stefanprodan/podinfo --branch=master --export

  # Create a Kustomization applying ./kustomize from it and wait for it
  ferroflux create kustomization podinfo --source=podinfo --path=./kustomize --prune=true --interval=10m")]
pub struct CreateArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Source sync interval.
    #[arg(long, global = true, default_value = "1m", value_parser = ferroflux_api::duration::parse_go_duration)]
    pub interval: std::time::Duration,
    /// Export in YAML format to stdout.
    #[arg(long, global = true)]
    pub export: bool,
    /// Labels on the resource (key=value, repeatable or comma-separated).
    #[arg(long = "label", global = true, value_delimiter = ',')]
    pub labels: Vec<String>,
    #[command(subcommand)]
    pub what: What,
}

#[derive(clap::Subcommand, Debug)]
pub enum What {
    /// Create or update sources.
    Source {
        #[command(subcommand)]
        what: SourceWhat,
    },
    /// Create or update a Kustomization.
    #[command(visible_alias = "ks")]
    Kustomization(KsArgs),
    /// Create or update a HelmRelease.
    #[command(visible_alias = "hr")]
    Helmrelease(HrArgs),
}

#[derive(clap::Subcommand, Debug)]
pub enum SourceWhat {
    /// Create or update a GitRepository source.
    Git(GitArgs),
    /// Create or update an OCIRepository source.
    Oci(OciArgs),
    /// Create or update a HelmRepository source.
    Helm(HelmArgs),
    /// Create or update a Bucket source.
    Bucket(BucketArgs),
}

#[derive(clap::Args, Debug)]
pub struct GitArgs {
    pub name: String,
    /// Git address (http, https or ssh).
    #[arg(long)]
    pub url: Option<String>,
    #[arg(long)]
    pub branch: Option<String>,
    #[arg(long)]
    pub tag: Option<String>,
    /// Git tag semver range.
    #[arg(long = "tag-semver")]
    pub semver: Option<String>,
    /// Git reference name.
    #[arg(long = "ref-name")]
    pub ref_name: Option<String>,
    #[arg(long)]
    pub commit: Option<String>,
    /// An existing Secret with the credentials.
    #[arg(long = "secret-ref")]
    pub secret_ref: Option<String>,
    /// Paths to ignore (comma-separated).
    #[arg(long = "ignore-paths", value_delimiter = ',')]
    pub ignore_paths: Vec<String>,
    /// Paths to check out sparsely (comma-separated).
    #[arg(long = "sparse-checkout-paths", value_delimiter = ',')]
    pub sparse: Vec<String>,
    /// Also fetch submodules.
    #[arg(long = "recurse-submodules")]
    pub recurse_submodules: bool,
}

#[derive(clap::Args, Debug)]
pub struct OciArgs {
    pub name: String,
    /// The OCI repository address (oci://...).
    #[arg(long)]
    pub url: Option<String>,
    #[arg(long)]
    pub tag: Option<String>,
    #[arg(long = "tag-semver")]
    pub semver: Option<String>,
    #[arg(long)]
    pub digest: Option<String>,
    #[arg(long = "secret-ref")]
    pub secret_ref: Option<String>,
    /// Allow plain HTTP registries.
    #[arg(long)]
    pub insecure: bool,
}

#[derive(clap::Args, Debug)]
pub struct HelmArgs {
    pub name: String,
    /// Helm repository address (http, https or oci).
    #[arg(long)]
    pub url: Option<String>,
    #[arg(long = "secret-ref")]
    pub secret_ref: Option<String>,
    /// Pass credentials to all domains.
    #[arg(long = "pass-credentials")]
    pub pass_credentials: bool,
}

#[derive(clap::Args, Debug)]
pub struct BucketArgs {
    pub name: String,
    #[arg(long = "bucket-name")]
    pub bucket_name: Option<String>,
    #[arg(long)]
    pub endpoint: Option<String>,
    /// generic, aws, gcp or azure.
    #[arg(long, default_value = "generic")]
    pub provider: String,
    #[arg(long)]
    pub region: Option<String>,
    #[arg(long = "secret-ref")]
    pub secret_ref: Option<String>,
    #[arg(long)]
    pub insecure: bool,
}

#[derive(clap::Args, Debug)]
pub struct KsArgs {
    pub name: String,
    /// Source: '[<kind>/]<name>[.<namespace>]' (kind GitRepository, OCIRepository or Bucket).
    #[arg(long)]
    pub source: Option<String>,
    /// Path to the directory with the manifests (must begin with ./).
    #[arg(long)]
    pub path: Option<String>,
    /// Enable garbage collection.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "false")]
    pub prune: bool,
    /// Enable health checking of all the applied resources.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "false")]
    pub wait: bool,
    #[arg(long = "target-namespace")]
    pub target_namespace: Option<String>,
    /// Kustomizations that must be ready first ('<name>' or '<namespace>/<name>').
    #[arg(long = "depends-on", value_delimiter = ',')]
    pub depends_on: Vec<String>,
    #[arg(long = "service-account")]
    pub service_account: Option<String>,
    /// Retry interval of a failed reconciliation.
    #[arg(long = "retry-interval", value_parser = ferroflux_api::duration::parse_go_duration)]
    pub retry_interval: Option<std::time::Duration>,
}

#[derive(clap::Args, Debug)]
pub struct HrArgs {
    pub name: String,
    /// Source: '<kind>/<name>[.<namespace>]' (HelmRepository, GitRepository or Bucket).
    #[arg(long)]
    pub source: Option<String>,
    /// Helm chart name or path.
    #[arg(long)]
    pub chart: Option<String>,
    /// Chart version (semver range).
    #[arg(long = "chart-version")]
    pub chart_version: Option<String>,
    /// A chart reference '<kind>/<name>[.<namespace>]' (OCIRepository or HelmChart).
    #[arg(long = "chart-ref")]
    pub chart_ref: Option<String>,
    #[arg(long = "release-name")]
    pub release_name: Option<String>,
    #[arg(long = "target-namespace")]
    pub target_namespace: Option<String>,
    #[arg(long = "storage-namespace")]
    pub storage_namespace: Option<String>,
    #[arg(long = "create-target-namespace")]
    pub create_namespace: bool,
    #[arg(long = "service-account")]
    pub service_account: Option<String>,
    /// Revision or ChartVersion.
    #[arg(long = "reconcile-strategy", default_value = "ChartVersion")]
    pub reconcile_strategy: String,
    /// Local values files (YAML), merged in order.
    #[arg(long = "values", value_delimiter = ',')]
    pub values: Vec<std::path::PathBuf>,
}

/// `[<kind>/]<name>[.<namespace>]`.
fn parse_ref(
    s: &str,
    default_kind: Option<&str>,
) -> anyhow::Result<(String, String, Option<String>)> {
    let (kind, rest) = match s.split_once('/') {
        Some((k, r)) => (k.to_string(), r),
        None => match default_kind {
            Some(d) => (d.to_string(), s),
            None => {
                bail!("invalid Kubernetes object reference '{s}', must be in format <kind>/<name>")
            }
        },
    };
    let (name, ns) = match rest.split_once('.') {
        Some((n, ns)) => (n.to_string(), Some(ns.to_string())),
        None => (rest.to_string(), None),
    };
    Ok((kind, name, ns))
}

fn go(d: std::time::Duration) -> String {
    ferroflux_api::duration::format_go(d)
}

fn object(
    kind: &Kind,
    name: &str,
    ns: &str,
    labels: &[String],
    spec: Value,
) -> anyhow::Result<Value> {
    let mut meta = Map::new();
    meta.insert("name".into(), json!(name));
    meta.insert("namespace".into(), json!(ns));
    if !labels.is_empty() {
        let mut l = Map::new();
        for kv in labels {
            let Some((k, v)) = kv.split_once('=') else {
                bail!("invalid label format '{kv}', must be key=value");
            };
            l.insert(k.into(), json!(v));
        }
        meta.insert("labels".into(), Value::Object(l));
    }
    Ok(json!({"apiVersion": kind.api_version(), "kind": kind.kind, "metadata": meta, "spec": spec}))
}

fn set(spec: &mut Value, key: &str, v: Option<Value>) {
    if let (Some(v), Some(m)) = (v, spec.as_object_mut()) {
        m.insert(key.into(), v);
    }
}

/// Builds the object a `create` command describes; also returns its display name ("GitRepository
/// source", "Kustomization", ...).
fn build(args: &CreateArgs, ns: &str) -> anyhow::Result<(&'static Kind, Value, &'static str)> {
    let interval = go(args.interval);
    let secret = |s: &Option<String>| s.as_ref().map(|n| json!({"name": n}));
    match &args.what {
        What::Source {
            what: SourceWhat::Git(g),
        } => {
            let Some(url) = &g.url else {
                bail!("url is required")
            };
            let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or("");
            if !matches!(scheme, "ssh" | "http" | "https") {
                bail!("git URL scheme '{scheme}' not supported, can be: ssh, http and https");
            }
            let mut r = Map::new();
            for (k, v) in [
                ("commit", &g.commit),
                ("branch", &g.branch),
                ("name", &g.ref_name),
                ("semver", &g.semver),
                ("tag", &g.tag),
            ] {
                if let Some(v) = v {
                    r.insert(k.into(), json!(v));
                }
            }
            if r.is_empty() {
                bail!(
                    "a Git ref is required, use one of the following: --branch, --tag, --commit, --ref-name or --tag-semver"
                );
            }
            let mut spec = json!({"url": url, "interval": interval, "ref": r});
            set(&mut spec, "secretRef", secret(&g.secret_ref));
            if !g.ignore_paths.is_empty() {
                set(&mut spec, "ignore", Some(json!(g.ignore_paths.join("\n"))));
            }
            if !g.sparse.is_empty() {
                set(&mut spec, "sparseCheckout", Some(json!(g.sparse)));
            }
            if g.recurse_submodules {
                set(&mut spec, "recurseSubmodules", Some(json!(true)));
            }
            Ok((
                &kinds::GIT,
                object(&kinds::GIT, &g.name, ns, &args.labels, spec)?,
                "GitRepository source",
            ))
        }
        What::Source {
            what: SourceWhat::Oci(o),
        } => {
            let Some(url) = &o.url else {
                bail!("url is required")
            };
            let mut r = Map::new();
            for (k, v) in [
                ("digest", &o.digest),
                ("semver", &o.semver),
                ("tag", &o.tag),
            ] {
                if let Some(v) = v {
                    r.insert(k.into(), json!(v));
                }
            }
            if r.is_empty() {
                bail!("--tag, --tag-semver or --digest is required");
            }
            let mut spec = json!({"url": url, "interval": interval, "ref": r});
            set(&mut spec, "secretRef", secret(&o.secret_ref));
            if o.insecure {
                set(&mut spec, "insecure", Some(json!(true)));
            }
            Ok((
                &kinds::OCI,
                object(&kinds::OCI, &o.name, ns, &args.labels, spec)?,
                "OCIRepository",
            ))
        }
        What::Source {
            what: SourceWhat::Helm(h),
        } => {
            let Some(url) = &h.url else {
                bail!("url is required")
            };
            let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or("");
            if !matches!(scheme, "http" | "https" | "oci") {
                bail!("url scheme '{scheme}' not supported, can be: http, https and oci");
            }
            let mut spec = json!({"url": url, "interval": interval});
            if scheme == "oci" {
                set(&mut spec, "type", Some(json!("oci")));
            }
            set(&mut spec, "secretRef", secret(&h.secret_ref));
            if h.pass_credentials {
                set(&mut spec, "passCredentials", Some(json!(true)));
            }
            Ok((
                &kinds::HELMREPO,
                object(&kinds::HELMREPO, &h.name, ns, &args.labels, spec)?,
                "HelmRepository source",
            ))
        }
        What::Source {
            what: SourceWhat::Bucket(b),
        } => {
            let Some(bucket) = &b.bucket_name else {
                bail!("bucket-name is required")
            };
            let Some(endpoint) = &b.endpoint else {
                bail!("endpoint is required")
            };
            let mut spec = json!({"bucketName": bucket, "endpoint": endpoint, "interval": interval, "provider": b.provider});
            set(&mut spec, "region", b.region.as_ref().map(|r| json!(r)));
            set(&mut spec, "secretRef", secret(&b.secret_ref));
            if b.insecure {
                set(&mut spec, "insecure", Some(json!(true)));
            }
            Ok((
                &kinds::BUCKET,
                object(&kinds::BUCKET, &b.name, ns, &args.labels, spec)?,
                "Bucket source",
            ))
        }
        What::Kustomization(k) => {
            let Some(path) = &k.path else {
                bail!("path is required")
            };
            if !path.starts_with("./") {
                bail!("path must begin with ./");
            }
            let Some(source) = &k.source else {
                bail!("source is required")
            };
            let (skind, sname, sns) = parse_ref(source, Some("GitRepository"))?;
            let skind = match kinds::by_kind(&skind) {
                Some(k) if matches!(k.kind, "GitRepository" | "OCIRepository" | "Bucket") => k.kind,
                _ => bail!(
                    "source kind '{skind}' is not supported, must be one of: GitRepository, OCIRepository, Bucket"
                ),
            };
            let mut source_ref = json!({"kind": skind, "name": sname});
            set(&mut source_ref, "namespace", sns.map(|n| json!(n)));
            let mut spec = json!({"interval": interval, "path": path, "prune": k.prune, "sourceRef": source_ref});
            if k.wait {
                set(&mut spec, "wait", Some(json!(true)));
            }
            set(
                &mut spec,
                "targetNamespace",
                k.target_namespace.as_ref().map(|v| json!(v)),
            );
            set(
                &mut spec,
                "serviceAccountName",
                k.service_account.as_ref().map(|v| json!(v)),
            );
            set(
                &mut spec,
                "retryInterval",
                k.retry_interval.map(|d| json!(go(d))),
            );
            if !k.depends_on.is_empty() {
                let deps: Vec<Value> = k
                    .depends_on
                    .iter()
                    .map(|d| match d.split_once('/') {
                        Some((ns, n)) => json!({"name": n, "namespace": ns}),
                        None => json!({"name": d}),
                    })
                    .collect();
                set(&mut spec, "dependsOn", Some(Value::Array(deps)));
            }
            Ok((
                &kinds::KUSTOMIZATION,
                object(&kinds::KUSTOMIZATION, &k.name, ns, &args.labels, spec)?,
                "Kustomization",
            ))
        }
        What::Helmrelease(h) => {
            let mut spec = json!({"interval": interval});
            match (&h.chart, &h.chart_ref) {
                (None, None) => bail!("chart or chart-ref is required"),
                (Some(_), Some(_)) => bail!("cannot use --chart in combination with --chart-ref"),
                (None, Some(cr)) => {
                    let (k, n, cns) = parse_ref(cr, None)?;
                    if !matches!(k.as_str(), "OCIRepository" | "HelmChart") {
                        bail!(
                            "chart reference kind '{k}' is not supported, must be one of: OCIRepository, HelmChart"
                        );
                    }
                    let mut r = json!({"kind": k, "name": n});
                    set(&mut r, "namespace", cns.map(|v| json!(v)));
                    set(&mut spec, "chartRef", Some(r));
                }
                (Some(chart), None) => {
                    let Some(source) = &h.source else {
                        bail!("source is required")
                    };
                    let (k, n, sns) = parse_ref(source, None)?;
                    if !matches!(k.as_str(), "HelmRepository" | "GitRepository" | "Bucket") {
                        bail!(
                            "reference kind '{k}' is not supported, must be one of: HelmRepository, GitRepository, Bucket"
                        );
                    }
                    if !matches!(h.reconcile_strategy.as_str(), "Revision" | "ChartVersion") {
                        bail!(
                            "'{}' is an invalid reconcile strategy(valid: Revision, ChartVersion)",
                            h.reconcile_strategy
                        );
                    }
                    let mut r = json!({"kind": k, "name": n});
                    set(&mut r, "namespace", sns.map(|v| json!(v)));
                    let mut cs = json!({"chart": chart, "sourceRef": r, "reconcileStrategy": h.reconcile_strategy});
                    set(
                        &mut cs,
                        "version",
                        h.chart_version.as_ref().map(|v| json!(v)),
                    );
                    set(&mut spec, "chart", Some(json!({"spec": cs})));
                }
            }
            set(
                &mut spec,
                "releaseName",
                h.release_name.as_ref().map(|v| json!(v)),
            );
            set(
                &mut spec,
                "targetNamespace",
                h.target_namespace.as_ref().map(|v| json!(v)),
            );
            set(
                &mut spec,
                "storageNamespace",
                h.storage_namespace.as_ref().map(|v| json!(v)),
            );
            set(
                &mut spec,
                "serviceAccountName",
                h.service_account.as_ref().map(|v| json!(v)),
            );
            if h.create_namespace {
                set(&mut spec, "install", Some(json!({"createNamespace": true})));
            }
            if !h.values.is_empty() {
                let mut merged = json!({});
                for f in &h.values {
                    let text = std::fs::read_to_string(f)
                        .map_err(|e| anyhow!("reading values from {} failed: {e}", f.display()))?;
                    let docs =
                        ferroflux_kustomize::yaml::read::parse_documents(&text).map_err(|e| {
                            anyhow!("unmarshaling values from {} failed: {e}", f.display())
                        })?;
                    if let Some(v) = docs.into_iter().next() {
                        merge(&mut merged, v);
                    }
                }
                set(&mut spec, "values", Some(merged));
            }
            Ok((
                &kinds::HELMRELEASE,
                object(&kinds::HELMRELEASE, &h.name, ns, &args.labels, spec)?,
                "HelmRelease",
            ))
        }
    }
}

/// Helm's values merge: maps merge recursively, anything else is replaced.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// Creates the object or updates its spec and labels; true if it was created.
async fn upsert(
    cluster: &Cluster,
    kind: &'static Kind,
    obj: &Value,
) -> anyhow::Result<(bool, Value)> {
    let ns = kinds::namespace(obj).to_string();
    let name = kinds::name(obj).to_string();
    match cluster.get(kind, &ns, &name).await {
        Err(e) if is_not_found(&e) => {
            let created = cluster
                .create(kind, &ns, obj)
                .await
                .map_err(|e| anyhow!(describe(&e)))?;
            Ok((true, created))
        }
        Err(e) => Err(anyhow!(describe(&e))),
        Ok(mut existing) => {
            existing["spec"] = obj["spec"].clone();
            if let Some(l) = obj.pointer("/metadata/labels") {
                existing["metadata"]["labels"] = l.clone();
            }
            let updated = cluster
                .replace(kind, &ns, &name, &existing)
                .await
                .map_err(|e| anyhow!(describe(&e)))?;
            Ok((false, updated))
        }
    }
}

/// Runs `ferroflux create`.
pub fn command(args: CreateArgs) -> anyhow::Result<()> {
    let timeout = args.cluster.timeout;
    run(with_timeout(timeout, async move {
        if !super::cluster::is_dns_label(&args.cluster.namespace) {
            bail!(
                "namespace must be a valid DNS label: {:?}",
                args.cluster.namespace
            );
        }
        let (kind, obj, display) = build(&args, &args.cluster.namespace)?;
        if args.export {
            std::io::stdout()
                .lock()
                .write_all(super::export::document(&obj).as_bytes())?;
            return Ok(());
        }
        let cluster = args.cluster.connect().await?;
        let name = kinds::name(&obj).to_string();
        log::generate(format!("generating {display}"));
        log::action(format!("applying {display}"));
        let (created, applied) = upsert(&cluster, kind, &obj).await?;
        log::success(format!(
            "{display} {}",
            if created { "created" } else { "updated" }
        ));
        log::waiting(format!("waiting for {display} reconciliation"));
        let ns = cluster.namespace.clone();
        let done = wait::until(&cluster, kind, &ns, applied, |o| {
            wait::ready_verdict(o, kind.is_static(o))
        })
        .await?;
        match kind.family {
            kinds::Family::Kustomization | kinds::Family::HelmRelease => {
                log::success(format!("{} {name} is ready", kind.kind));
                log::success(kind.success_message(&done));
            }
            _ => {
                log::success(format!("{display} reconciliation completed"));
                if !kind.is_static(&done) {
                    let rev = kind.revision(&done);
                    if rev.is_empty() {
                        bail!("{display} reconciliation completed but no artifact was found");
                    }
                    log::success(format!("fetched revision: {rev}"));
                }
            }
        }
        Ok(())
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        c: CreateArgs,
    }

    fn export(argv: &[&str]) -> String {
        let t = T::try_parse_from(std::iter::once("create").chain(argv.iter().copied())).unwrap();
        let (_, obj, _) = build(&t.c, &t.c.cluster.namespace).unwrap();
        crate::cmd::export::document(&obj)
    }

    #[test]
    fn export_as_flux_create() {
        assert_eq!(
            export(&[
                "source",
                "git",
                "podinfo",
                "--url=https://github.com/stefanprodan/podinfo",
                "--branch=master",
                "--ignore-paths=.cosign,non-existent-dir/",
                "--sparse-checkout-paths=.cosign,non-existent-dir/",
                "-n",
                "default"
            ]),
            "---\napiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: podinfo\n  namespace: default\n\
             spec:\n  ignore: |-\n    .cosign\n    non-existent-dir/\n  interval: 1m0s\n  ref:\n    branch: master\n\
             \x20 sparseCheckout:\n  - .cosign\n  - non-existent-dir/\n  url: https://github.com/stefanprodan/podinfo\n"
        );
        assert_eq!(
            export(&[
                "kustomization",
                "podinfo",
                "--source=podinfo",
                "--path=./kustomize",
                "--interval=10m"
            ]),
            "---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: podinfo\n  namespace: flux-system\n\
             spec:\n  interval: 10m0s\n  path: ./kustomize\n  prune: false\n  sourceRef:\n    kind: GitRepository\n    name: podinfo\n"
        );
        assert_eq!(
            export(&[
                "hr",
                "podinfo",
                "--source=HelmRepository/podinfo.infra",
                "--chart=podinfo",
                "--chart-version=6.x"
            ]),
            "---\napiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: podinfo\n  namespace: flux-system\n\
             spec:\n  chart:\n    spec:\n      chart: podinfo\n      reconcileStrategy: ChartVersion\n      sourceRef:\n\
             \x20       kind: HelmRepository\n        name: podinfo\n        namespace: infra\n      version: 6.x\n  interval: 1m0s\n"
        );
    }
}
