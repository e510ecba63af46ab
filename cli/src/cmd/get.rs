//! `ferroflux get`: the status tables of `flux get` for every Flux kind and `get all`, with
//! `-A`, `--status-selector`, `-l`, `--no-header` and `--watch`.

use std::io::Write;

use anyhow::bail;
use futures::{StreamExt, TryStreamExt};
use kube::api::{ListParams, WatchEvent, WatchParams};
use serde_json::Value;

use super::cluster::{Cluster, ClusterArgs, describe, run, with_timeout};
use super::kinds::{self, Family, Kind, truncate_hex};
use super::table;

/// `ferroflux get`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  # List all Kustomizations and their status
  ferroflux get kustomizations

  # List every Flux object in all namespaces
  ferroflux get all -A

  # List the GitRepositories that are not ready
  ferroflux get sources git --status-selector ready=false")]
pub struct GetArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// List the requested object(s) across all namespaces.
    #[arg(short = 'A', long = "all-namespaces", global = true)]
    pub all_namespaces: bool,
    /// Skip the header when printing the results.
    #[arg(long, global = true)]
    pub no_header: bool,
    /// After listing/getting the requested object, watch for changes.
    #[arg(short = 'w', long, global = true)]
    pub watch: bool,
    /// Filter on a status condition: type=status or type!=status (e.g. ready=false).
    #[arg(long, global = true)]
    pub status_selector: Option<String>,
    /// Filter objects by label selector.
    #[arg(short = 'l', long, global = true)]
    pub label_selector: Option<String>,
    #[command(subcommand)]
    pub what: What,
}

#[derive(clap::Subcommand, Debug)]
pub enum What {
    /// Get source statuses (git, oci, helm, chart, bucket, external, all).
    #[command(alias = "source")]
    Sources {
        #[command(subcommand)]
        what: SourceWhat,
    },
    /// Get Kustomization statuses.
    #[command(visible_aliases = ["ks", "kustomization"])]
    Kustomizations {
        name: Option<String>,
        /// Show the source reference for each kustomization.
        #[arg(long)]
        show_source: bool,
    },
    /// Get HelmRelease statuses.
    #[command(visible_aliases = ["hr", "helmrelease"])]
    Helmreleases {
        name: Option<String>,
        /// Show the source reference for each helmrelease.
        #[arg(long)]
        show_source: bool,
    },
    /// Get Alert statuses.
    #[command(alias = "alert")]
    Alerts { name: Option<String> },
    /// Get Provider statuses.
    #[command(name = "alert-providers", alias = "alert-provider")]
    AlertProviders { name: Option<String> },
    /// Get Receiver statuses.
    #[command(alias = "receiver")]
    Receivers { name: Option<String> },
    /// Get all resources and statuses.
    All,
}

#[derive(clap::Subcommand, Debug)]
pub enum SourceWhat {
    /// Get GitRepository source statuses.
    Git { name: Option<String> },
    /// Get OCIRepository statuses.
    Oci { name: Option<String> },
    /// Get HelmRepository source statuses.
    Helm { name: Option<String> },
    /// Get HelmChart statuses.
    Chart { name: Option<String> },
    /// Get Bucket source statuses.
    Bucket { name: Option<String> },
    /// Get ExternalArtifact source statuses.
    External { name: Option<String> },
    /// Get all source statuses.
    All,
}

/// The options that shape rows.
#[derive(Clone, Copy)]
struct Shape {
    namespace: bool,
    with_kind: bool,
    show_source: bool,
}

/// The column headers of a kind's table.
fn headers(kind: &Kind, shape: Shape) -> Vec<&'static str> {
    let mut h = vec![];
    if shape.namespace {
        h.push("Namespace");
    }
    h.push("Name");
    match kind.family {
        Family::Alert | Family::Receiver => h.extend(["Suspended", "Ready", "Message"]),
        Family::Provider => h.extend(["Ready", "Message"]),
        Family::ExternalArtifact => h.extend(["Revision", "Source", "Ready", "Message"]),
        Family::Kustomization | Family::HelmRelease if shape.show_source => {
            h.extend(["Source", "Revision", "Suspended", "Ready", "Message"])
        }
        _ => h.extend(["Revision", "Suspended", "Ready", "Message"]),
    }
    h
}

/// flux's `statusAndMessage`: the Ready condition, or False "waiting to be reconciled".
fn status_and_message(obj: &Value) -> (String, String) {
    match kinds::ready_condition(obj) {
        Some((s, m)) => (s.to_string(), m.to_string()),
        None => ("False".into(), "waiting to be reconciled".into()),
    }
}

fn title_bool(b: bool) -> String {
    if b { "True" } else { "False" }.to_string()
}

fn source_ref(obj: &Value, pointer: &str) -> String {
    let r = obj.pointer(pointer);
    let f = |k: &str| {
        r.and_then(|r| r.get(k))
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let ns = if f("namespace").is_empty() {
        kinds::namespace(obj)
    } else {
        f("namespace")
    };
    format!("{}/{}/{}", f("kind"), ns, f("name"))
}

/// One row of a kind's table, as flux's `summariseItem`.
fn row(kind: &Kind, obj: &Value, shape: Shape) -> Vec<String> {
    let mut r = Vec::with_capacity(7);
    if shape.namespace {
        r.push(kinds::namespace(obj).to_string());
    }
    let name = kinds::name(obj);
    r.push(if shape.with_kind {
        format!("{}/{name}", kind.kind.to_ascii_lowercase())
    } else {
        name.to_string()
    });
    let suspended = title_bool(kinds::suspended(obj));
    match kind.family {
        Family::Alert => {
            r.extend([suspended, "True".into(), "Alert is Ready".into()]);
        }
        Family::Provider => r.extend(["True".into(), "Provider is Ready".into()]),
        Family::Receiver => {
            let (s, m) = status_and_message(obj);
            r.extend([suspended, s, m]);
        }
        Family::ExternalArtifact => {
            let (s, m) = status_and_message(obj);
            let source = match obj.pointer("/spec/sourceRef") {
                Some(sr) if !sr.is_null() => {
                    let f = |k: &str| sr.get(k).and_then(Value::as_str).unwrap_or_default();
                    format!("{}/{}/{}", f("kind"), f("namespace"), f("name"))
                }
                _ => String::new(),
            };
            r.extend([
                truncate_hex(&kind.revision(obj)),
                source,
                s,
                truncate_hex(&m),
            ]);
        }
        Family::HelmRelease => {
            let (s, m) = status_and_message(obj);
            if shape.show_source {
                r.push(
                    if obj.pointer("/spec/chartRef").is_some_and(|v| !v.is_null()) {
                        source_ref(obj, "/spec/chartRef")
                    } else {
                        source_ref(obj, "/spec/chart/spec/sourceRef")
                    },
                );
            }
            r.extend([kind.revision(obj), suspended, s, m]);
        }
        Family::Kustomization => {
            let (s, m) = status_and_message(obj);
            if shape.show_source {
                r.push(source_ref(obj, "/spec/sourceRef"));
            }
            r.extend([
                truncate_hex(&kind.revision(obj)),
                suspended,
                s,
                truncate_hex(&m),
            ]);
        }
        Family::HelmChart => {
            let (s, m) = status_and_message(obj);
            r.extend([kind.revision(obj), suspended, s, truncate_hex(&m)]);
        }
        Family::HelmRepository if kind.is_static(obj) => {
            r.extend([
                truncate_hex(&kind.revision(obj)),
                suspended,
                "True".into(),
                "Helm repository is Ready".into(),
            ]);
        }
        Family::Source | Family::HelmRepository => {
            let (s, m) = status_and_message(obj);
            r.extend([
                truncate_hex(&kind.revision(obj)),
                suspended,
                s,
                truncate_hex(&m),
            ]);
        }
    }
    r
}

/// A parsed `--status-selector`.
struct StatusSelector {
    type_: String,
    status: String,
    negate: bool,
}

impl StatusSelector {
    fn parse(s: &str) -> anyhow::Result<Self> {
        let (sep, negate) = if s.contains("!=") {
            ("!=", true)
        } else {
            ("=", false)
        };
        match s.split_once(sep) {
            Some((t, st)) => Ok(StatusSelector {
                type_: t.to_string(),
                status: st.to_string(),
                negate,
            }),
            None => bail!(
                "expected status selector in type=status or type!=status format, but found: {s}"
            ),
        }
    }

    fn matches(&self, kind: &Kind, obj: &Value) -> bool {
        let m = match kind.family {
            // static kinds: only ready=true matches
            Family::Alert | Family::Provider => {
                self.type_.eq_ignore_ascii_case("Ready") && self.status.eq_ignore_ascii_case("True")
            }
            _ => {
                let last = obj
                    .pointer("/status/conditions")
                    .and_then(Value::as_array)
                    .and_then(|cs| {
                        cs.iter().rev().find(|c| {
                            c.get("type")
                                .and_then(Value::as_str)
                                .is_some_and(|t| t.eq_ignore_ascii_case(&self.type_))
                        })
                    });
                last.and_then(|c| c.get("status").and_then(Value::as_str))
                    .is_some_and(|s| s.eq_ignore_ascii_case(&self.status))
            }
        };
        m != self.negate
    }
}

/// What one `get` for one kind needs.
struct Query<'a> {
    cluster: &'a Cluster,
    args: &'a GetArgs,
    name: Option<&'a str>,
    selector: Option<StatusSelector>,
}

impl Query<'_> {
    fn namespace(&self) -> Option<&str> {
        (!self.args.all_namespaces).then_some(self.cluster.namespace.as_str())
    }

    fn list_params(&self) -> ListParams {
        let mut lp = ListParams::default();
        if let Some(n) = self.name {
            lp = lp.fields(&format!("metadata.name={n}"));
        }
        if let Some(l) = &self.args.label_selector {
            lp = lp.labels(l);
        }
        lp
    }

    fn where_(&self) -> String {
        if self.args.all_namespaces {
            "any".to_string()
        } else {
            format!("{:?}", self.cluster.namespace)
        }
    }

    /// The table of one kind; `None` in `get all` when there is nothing to print.
    fn table(
        &self,
        kind: &Kind,
        items: &[Value],
        all: bool,
        show_source: bool,
    ) -> anyhow::Result<Option<String>> {
        if items.is_empty() {
            if let Some(n) = self.name {
                bail!(
                    "{} object '{n}' not found in {} namespace",
                    kind.kind,
                    self.where_()
                );
            } else if !all {
                bail!(
                    "no {} objects found in {} namespace",
                    kind.kind,
                    self.where_()
                );
            }
            return Ok(None);
        }
        let shape = Shape {
            namespace: self.args.all_namespaces,
            with_kind: all,
            show_source,
        };
        let rows: Vec<Vec<String>> = items
            .iter()
            .filter(|o| self.selector.as_ref().is_none_or(|s| s.matches(kind, o)))
            .map(|o| row(kind, o, shape))
            .collect();
        if all && rows.is_empty() {
            return Ok(None);
        }
        let header = if self.args.no_header {
            vec![]
        } else {
            headers(kind, shape)
        };
        let mut out = table::render(&header, &rows);
        if all {
            out.push('\n');
        }
        Ok(Some(out))
    }

    /// `--watch`: every object as a one-row table (the first with the header), then every
    /// change, until the timeout.
    async fn watch(&self, kind: &'static Kind, show_source: bool) -> anyhow::Result<()> {
        let (items, rv) = self
            .cluster
            .list(kind, self.namespace(), &self.list_params())
            .await
            .map_err(|e| anyhow::anyhow!(describe(&e)))?;
        let shape = Shape {
            namespace: self.args.all_namespaces,
            with_kind: false,
            show_source,
        };
        let mut first = true;
        let mut print = |obj: &Value| {
            let rows: Vec<Vec<String>> = std::iter::once(obj)
                .filter(|o| self.selector.as_ref().is_none_or(|s| s.matches(kind, o)))
                .map(|o| row(kind, o, shape))
                .collect();
            let header = if first && !self.args.no_header {
                headers(kind, shape)
            } else {
                vec![]
            };
            first = false;
            let text = table::render(&header, &rows);
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        };
        for obj in &items {
            print(obj);
        }
        let mut wp = WatchParams::default();
        if let Some(n) = self.name {
            wp = wp.fields(&format!("metadata.name={n}"));
        }
        if let Some(l) = &self.args.label_selector {
            wp = wp.labels(l);
        }
        let mut rv = rv;
        loop {
            let stream = self
                .cluster
                .watch(kind, self.namespace(), &wp, &rv)
                .await
                .map_err(|e| anyhow::anyhow!(describe(&e)))?;
            let mut stream = std::pin::pin!(stream.into_stream());
            while let Some(ev) = stream.next().await {
                match ev.map_err(|e| anyhow::anyhow!(describe(&e)))? {
                    WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) => {
                        if let Some(v) = o
                            .pointer("/metadata/resourceVersion")
                            .and_then(Value::as_str)
                        {
                            rv = v.to_string();
                        }
                        print(&o);
                    }
                    WatchEvent::Bookmark(b) => rv = b.metadata.resource_version,
                    WatchEvent::Error(e) => bail!("{}", e.message),
                }
            }
        }
    }
}

/// Runs `ferroflux get`.
pub fn command(args: GetArgs) -> anyhow::Result<()> {
    let timeout = args.cluster.timeout;
    run(with_timeout(timeout, async move {
        let selector = args
            .status_selector
            .as_deref()
            .map(StatusSelector::parse)
            .transpose()?;
        let (kind, name, show_source): (&'static Kind, Option<String>, bool) = match &args.what {
            What::All => {
                if args.watch {
                    bail!("expected a single resource type, but found all");
                }
                let cluster = args.cluster.connect().await?;
                let q = Query {
                    cluster: &cluster,
                    args: &args,
                    name: None,
                    selector,
                };
                return get_all(&q, kinds::ALL.as_slice()).await;
            }
            What::Sources {
                what: SourceWhat::All,
            } => {
                if args.watch {
                    bail!("expected a single resource type, but found all");
                }
                let cluster = args.cluster.connect().await?;
                let q = Query {
                    cluster: &cluster,
                    args: &args,
                    name: None,
                    selector,
                };
                return get_all(&q, kinds::SOURCES.as_slice()).await;
            }
            What::Sources { what } => match what {
                SourceWhat::Git { name } => (&kinds::GIT, name.clone(), false),
                SourceWhat::Oci { name } => (&kinds::OCI, name.clone(), false),
                SourceWhat::Helm { name } => (&kinds::HELMREPO, name.clone(), false),
                SourceWhat::Chart { name } => (&kinds::CHART, name.clone(), false),
                SourceWhat::Bucket { name } => (&kinds::BUCKET, name.clone(), false),
                SourceWhat::External { name } => (&kinds::EXTERNAL, name.clone(), false),
                SourceWhat::All => unreachable!("handled above"),
            },
            What::Kustomizations { name, show_source } => {
                (&kinds::KUSTOMIZATION, name.clone(), *show_source)
            }
            What::Helmreleases { name, show_source } => {
                (&kinds::HELMRELEASE, name.clone(), *show_source)
            }
            What::Alerts { name } => (&kinds::ALERT, name.clone(), false),
            What::AlertProviders { name } => (&kinds::PROVIDER, name.clone(), false),
            What::Receivers { name } => (&kinds::RECEIVER, name.clone(), false),
        };
        let cluster = args.cluster.connect().await?;
        let q = Query {
            cluster: &cluster,
            args: &args,
            name: name.as_deref(),
            selector,
        };
        if args.watch {
            return q.watch(kind, show_source).await;
        }
        let (items, _) = cluster
            .list(kind, q.namespace(), &q.list_params())
            .await
            .map_err(|e| anyhow::anyhow!(describe(&e)))?;
        if let Some(t) = q.table(kind, &items, false, show_source)? {
            std::io::stdout().lock().write_all(t.as_bytes())?;
        }
        Ok(())
    }))
}

/// `get all` / `get sources all`: the lists run concurrently, the tables print in flux's order,
/// failures as `✗` lines on stderr (a kind whose CRD is not installed is left out silently).
async fn get_all(q: &Query<'_>, which: &[&'static Kind]) -> anyhow::Result<()> {
    let lp = q.list_params();
    let results =
        futures::future::join_all(which.iter().map(|k| q.cluster.list(k, q.namespace(), &lp)))
            .await;
    let mut out = String::new();
    for (kind, res) in which.iter().zip(results) {
        match res {
            Ok((items, _)) => match q.table(kind, &items, true, false) {
                Ok(Some(t)) => out.push_str(&t),
                Ok(None) => {}
                Err(e) => eprintln!("✗ {e}"),
            },
            Err(e) if super::cluster::is_not_found(&e) => {}
            Err(e) => eprintln!("✗ {}", describe(&e)),
        }
    }
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shape() -> Shape {
        Shape {
            namespace: false,
            with_kind: false,
            show_source: false,
        }
    }

    #[test]
    fn rows_as_flux() {
        let ks = json!({"metadata": {"name": "app", "namespace": "flux-system"},
            "spec": {"sourceRef": {"kind": "GitRepository", "name": "repo"}},
            "status": {"lastAppliedRevision": "main@sha1:67e2c98a60dc92283531412a9e604dd4bae005a9",
              "conditions": [{"type": "Ready", "status": "True", "message": "Applied revision: main@sha1:67e2c98a60dc92283531412a9e604dd4bae005a9"}]}});
        assert_eq!(
            row(&kinds::KUSTOMIZATION, &ks, shape()),
            [
                "app",
                "main@sha1:67e2c98a",
                "False",
                "True",
                "Applied revision: main@sha1:67e2c98a"
            ]
        );
        let s = Shape {
            namespace: true,
            with_kind: true,
            show_source: true,
        };
        assert_eq!(
            row(&kinds::KUSTOMIZATION, &ks, s)[..3],
            [
                "flux-system",
                "kustomization/app",
                "GitRepository/flux-system/repo"
            ]
        );
        let fresh = json!({"metadata": {"name": "new"}, "spec": {"suspend": true}});
        assert_eq!(
            row(&kinds::GIT, &fresh, shape()),
            ["new", "", "True", "False", "waiting to be reconciled"]
        );
        let alert = json!({"metadata": {"name": "a"}, "spec": {}});
        assert_eq!(
            row(&kinds::ALERT, &alert, shape()),
            ["a", "False", "True", "Alert is Ready"]
        );
        assert_eq!(
            row(&kinds::PROVIDER, &alert, shape()),
            ["a", "True", "Provider is Ready"]
        );
    }

    #[test]
    fn status_selector_as_flux() {
        let obj = json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}});
        let s = StatusSelector::parse("ready=false").unwrap();
        assert!(s.matches(&kinds::GIT, &obj));
        let s = StatusSelector::parse("ready!=true").unwrap();
        assert!(s.matches(&kinds::GIT, &obj));
        assert!(!s.matches(&kinds::ALERT, &obj));
        assert!(StatusSelector::parse("ready").is_err());
    }
}
