//! Client plumbing shared by the Flux workflow commands: the kubeconfig flags as `flux` and
//! `kubectl` take them, the client built from them, the `--timeout` deadline, dynamic access to
//! the Flux kinds as JSON, and errors turned into the one line `flux` prints.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use futures::{Stream, StreamExt};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::Value;

use super::kinds::Kind;

/// The cluster flags of every command that talks to the API server (as `flux`: `--kubeconfig`,
/// `--context`, `--cluster`, `--user`, `-n/--namespace` defaulting to `flux-system` or
/// `$FLUX_SYSTEM_NAMESPACE`, `--timeout` for the whole operation).
#[derive(clap::Args, Debug, Clone)]
pub struct ClusterArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster).
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The name of the kubeconfig context to use.
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// The name of the kubeconfig cluster to use.
    #[arg(long, global = true)]
    pub cluster: Option<String>,
    /// The name of the kubeconfig user to use.
    #[arg(long, global = true)]
    pub user: Option<String>,
    /// The namespace scope for this operation.
    #[arg(
        short = 'n',
        long,
        global = true,
        env = "FLUX_SYSTEM_NAMESPACE",
        default_value = "flux-system"
    )]
    pub namespace: String,
    /// Timeout for this operation (Go duration: 30s, 5m, 1h).
    #[arg(long, global = true, default_value = "5m", value_parser = ferroflux_api::duration::parse_go_duration)]
    pub timeout: Duration,
}

/// An API server connection with the command's namespace.
pub struct Cluster {
    pub client: kube::Client,
    pub namespace: String,
}

/// True if `s` is a DNS-1123 label (what a namespace name must be).
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

impl ClusterArgs {
    /// Connects as the flags say.
    pub async fn connect(&self) -> anyhow::Result<Cluster> {
        if !is_dns_label(&self.namespace) {
            bail!("namespace must be a valid DNS label: {:?}", self.namespace);
        }
        let options = KubeConfigOptions {
            context: self.context.clone(),
            cluster: self.cluster.clone(),
            user: self.user.clone(),
        };
        let kubeconfig = match &self.kubeconfig {
            Some(path) => Some(
                Kubeconfig::read_from(path)
                    .map_err(|e| anyhow!("reading kubeconfig {}: {}", path.display(), chain(&e)))?,
            ),
            None => match Kubeconfig::read() {
                Ok(k) => Some(k),
                Err(e) => {
                    if std::env::var_os("KUBECONFIG").is_some_and(|v| !v.is_empty()) {
                        bail!("reading $KUBECONFIG: {}", chain(&e));
                    }
                    None
                }
            },
        };
        let config = match kubeconfig {
            Some(k) => {
                if let Some(ctx) = &self.context
                    && !k.contexts.iter().any(|c| &c.name == ctx)
                {
                    bail!("context {ctx:?} does not exist");
                }
                kube::Config::from_custom_kubeconfig(k, &options)
                    .await
                    .map_err(|e| anyhow!("invalid kubeconfig: {}", chain(&e)))?
            }
            None => kube::Config::incluster().map_err(|_| {
                anyhow!(
                    "no kubeconfig found: set --kubeconfig or $KUBECONFIG, or create ~/.kube/config"
                )
            })?,
        };
        let client = kube::Client::try_from(config)
            .map_err(|e| anyhow!("Kubernetes client initialization failed: {}", chain(&e)))?;
        Ok(Cluster {
            client,
            namespace: self.namespace.clone(),
        })
    }
}

/// Runs a command's future within `--timeout`, as flux's context deadline.
pub async fn with_timeout<T>(
    timeout: Duration,
    fut: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    match tokio::time::timeout(timeout, fut).await {
        Ok(r) => r,
        Err(_) => bail!("context deadline exceeded"),
    }
}

/// Builds a current-thread runtime and runs `fut` on it (the commands are short and mostly
/// wait on the network; one thread starts fastest).
pub fn run<T>(fut: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?
        .block_on(fut)
}

/// The message of an error and its sources, deduplicated, on one line.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let s = err.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = err.source();
    }
    parts.join(": ")
}

/// A kube error as flux prints it: the API server's message for API errors (e.g.
/// `kustomizations.kustomize.toolkit.fluxcd.io "x" not found`), else the transport failure.
pub fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if !s.message.is_empty() => s.message.clone(),
        other => {
            let text = chain(other);
            if text.contains("Connection refused") || text.contains("connection refused") {
                "the Kubernetes API server refused the connection (is it running? check --kubeconfig/--context)".to_string()
            } else {
                text
            }
        }
    }
}

/// True if `e` is the API server's NotFound.
pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

impl Cluster {
    fn path(kind: &Kind, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) => format!(
                "/apis/{}/{}/namespaces/{ns}/{}",
                kind.group, kind.version, kind.plural
            ),
            None => format!("/apis/{}/{}/{}", kind.group, kind.version, kind.plural),
        }
    }

    /// Lists objects of `kind` (all namespaces when `namespace` is None), each with its
    /// `apiVersion` and `kind` set; also returns the list's resourceVersion.
    pub async fn list(
        &self,
        kind: &Kind,
        namespace: Option<&str>,
        lp: &ListParams,
    ) -> Result<(Vec<Value>, String), kube::Error> {
        let req = kube::core::Request::new(Self::path(kind, namespace))
            .list(lp)
            .map_err(kube::Error::BuildRequest)?;
        let mut list: Value = self.client.request(req).await?;
        let rv = list
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or("0")
            .to_string();
        let mut items = match list.get_mut("items").map(Value::take) {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        };
        for item in &mut items {
            kind.stamp(item);
        }
        Ok((items, rv))
    }

    /// Gets one object of `kind` in the command's namespace (or `namespace`).
    pub async fn get(
        &self,
        kind: &Kind,
        namespace: &str,
        name: &str,
    ) -> Result<Value, kube::Error> {
        let req = kube::core::Request::new(Self::path(kind, Some(namespace)))
            .get(name, &Default::default())
            .map_err(kube::Error::BuildRequest)?;
        let mut v: Value = self.client.request(req).await?;
        kind.stamp(&mut v);
        Ok(v)
    }

    /// Merge-patches one object.
    pub async fn merge_patch(
        &self,
        kind: &Kind,
        namespace: &str,
        name: &str,
        patch: &Value,
    ) -> Result<Value, kube::Error> {
        let req = kube::core::Request::new(Self::path(kind, Some(namespace)))
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .map_err(kube::Error::BuildRequest)?;
        let mut v: Value = self.client.request(req).await?;
        kind.stamp(&mut v);
        Ok(v)
    }

    /// Creates one object.
    pub async fn create(
        &self,
        kind: &Kind,
        namespace: &str,
        obj: &Value,
    ) -> Result<Value, kube::Error> {
        let req = kube::core::Request::new(Self::path(kind, Some(namespace)))
            .create(
                &Default::default(),
                serde_json::to_vec(obj).map_err(kube::Error::SerdeError)?,
            )
            .map_err(kube::Error::BuildRequest)?;
        let mut v: Value = self.client.request(req).await?;
        kind.stamp(&mut v);
        Ok(v)
    }

    /// Replaces one object (an update with its resourceVersion as precondition).
    pub async fn replace(
        &self,
        kind: &Kind,
        namespace: &str,
        name: &str,
        obj: &Value,
    ) -> Result<Value, kube::Error> {
        let req = kube::core::Request::new(Self::path(kind, Some(namespace)))
            .replace(
                name,
                &Default::default(),
                serde_json::to_vec(obj).map_err(kube::Error::SerdeError)?,
            )
            .map_err(kube::Error::BuildRequest)?;
        let mut v: Value = self.client.request(req).await?;
        kind.stamp(&mut v);
        Ok(v)
    }

    /// Deletes one object.
    pub async fn delete(
        &self,
        kind: &Kind,
        namespace: &str,
        name: &str,
    ) -> Result<(), kube::Error> {
        let req = kube::core::Request::new(Self::path(kind, Some(namespace)))
            .delete(name, &DeleteParams::default())
            .map_err(kube::Error::BuildRequest)?;
        let _: Value = self.client.request(req).await?;
        Ok(())
    }

    /// Watches objects of `kind` from resourceVersion `rv`.
    pub async fn watch(
        &self,
        kind: &'static Kind,
        namespace: Option<&str>,
        wp: &WatchParams,
        rv: &str,
    ) -> Result<impl Stream<Item = Result<WatchEvent<Value>, kube::Error>> + use<>, kube::Error>
    {
        let req = kube::core::Request::new(Self::path(kind, namespace))
            .watch(wp, rv)
            .map_err(kube::Error::BuildRequest)?;
        let stream = self.client.request_events::<Value>(req).await?;
        Ok(stream.map(move |ev| {
            ev.map(|ev| match ev {
                WatchEvent::Added(mut o) => {
                    kind.stamp(&mut o);
                    WatchEvent::Added(o)
                }
                WatchEvent::Modified(mut o) => {
                    kind.stamp(&mut o);
                    WatchEvent::Modified(o)
                }
                WatchEvent::Deleted(mut o) => {
                    kind.stamp(&mut o);
                    WatchEvent::Deleted(o)
                }
                other => other,
            })
        }))
    }
}
