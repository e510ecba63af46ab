//! testenv: a Kubernetes-API-compatible control plane for tests and the embedded demo.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ferroflux_testenv::Error> {
//! let env = ferroflux_testenv::TestEnv::start(Default::default()).await?;
//! let client = env.client().await?; // a kube::Client over HTTPS, exactly as against a cluster
//! env.write_kubeconfig("/tmp/kubeconfig")?; // for kubectl
//! # drop(client); Ok(()) }
//! ```
//!
//! See README.md for what is implemented and how it differs from kube-apiserver.

mod auth;
mod builtin;
mod cel;
mod fields;
mod openapi;
mod ops;
mod patch;
mod persist;
mod protobuf;
mod registry;
mod schema;
mod selector;
mod server;
mod simulator;
mod status;
mod store;
mod table;
mod tls;

use base64::Engine;
use serde_json::json;
use server::Shared;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::{Identity, Inner};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

pub use simulator::FAIL_ANNOTATION;

/// Errors starting or talking to the environment.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("binding 127.0.0.1:{port}: {source}")]
    Bind { port: u16, source: std::io::Error },
    #[error("generating certificates: {0}")]
    Certificates(String),
    #[error("data directory {path}: {message}")]
    DataDir { path: PathBuf, message: String },
    #[error("writing kubeconfig {path}: {source}")]
    WriteKubeconfig {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("building a kube client: {0}")]
    Client(String),
    #[error("applying manifests: {0}")]
    Apply(String),
}

/// How to start a [`TestEnv`].
#[derive(Debug, Clone)]
pub struct Options {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Keep state (objects, tokens, certificates) here across restarts; memory only when `None`.
    pub data_dir: Option<PathBuf>,
    /// How often watches with `allowWatchBookmarks` get a BOOKMARK.
    pub bookmark_interval: Duration,
    /// How many events are kept for watches that resume from a resourceVersion; older ones get 410.
    pub watch_window: usize,
    /// Admin bearer token; generated when `None`.
    pub admin_token: Option<String>,
    /// Mark Deployments, StatefulSets, DaemonSets and Jobs ready after this delay.
    pub simulate_workloads: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            port: 0,
            data_dir: None,
            bookmark_interval: Duration::from_secs(5),
            watch_window: 10_000,
            admin_token: None,
            simulate_workloads: None,
        }
    }
}

/// A running control plane. Dropping it stops the server.
pub struct TestEnv {
    shared: Arc<Shared>,
    addr: SocketAddr,
    ca_pem: String,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

fn random_token(prefix: &str) -> String {
    let b: [u8; 24] = rand::random();
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    )
}

fn bootstrap(inner: &mut Inner) {
    let ns_def = inner.registry.get("", "v1", "namespaces");
    let cr_def = inner
        .registry
        .get("rbac.authorization.k8s.io", "v1", "clusterroles");
    let opts = ops::WriteOpts {
        manager: "testenv".into(),
        ..Default::default()
    };
    if let Some(d) = ns_def {
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let _ = ops::create(
                inner,
                &d,
                "",
                json!({"metadata": {"name": ns}}),
                &opts,
                None,
            );
        }
    }
    if let Some(d) = cr_def {
        let roles = [
            (
                "cluster-admin",
                json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]),
            ),
            (
                "view",
                json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list", "watch"]}]),
            ),
            (
                "edit",
                json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]}]),
            ),
        ];
        for (name, rules) in roles {
            let _ = ops::create(
                inner,
                &d,
                "",
                json!({"metadata": {"name": name}, "rules": rules}),
                &opts,
                None,
            );
        }
    }
}

impl TestEnv {
    /// Starts a server on 127.0.0.1 with a fresh CA, server certificate and admin token.
    pub async fn start(opts: Options) -> Result<TestEnv, Error> {
        let mut inner = Inner::new(opts.watch_window);
        let (pki, admin_token) = match &opts.data_dir {
            Some(dir) => {
                let (pki, token) = persist::load_identity(dir, opts.admin_token.clone())?;
                if !persist::load_state(dir, &mut inner)? {
                    bootstrap(&mut inner);
                }
                (pki, token)
            }
            None => {
                bootstrap(&mut inner);
                let pki = tls::generate().map_err(|e| Error::Certificates(e.to_string()))?;
                (
                    pki,
                    opts.admin_token
                        .clone()
                        .unwrap_or_else(|| random_token("admin.")),
                )
            }
        };
        let cfg = tls::server_config(&pki).map_err(Error::Certificates)?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", opts.port))
            .await
            .map_err(|source| Error::Bind {
                port: opts.port,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            port: opts.port,
            source,
        })?;
        let shared = Arc::new(Shared {
            inner: Mutex::new(inner),
            admin_token,
            bookmark_interval: opts.bookmark_interval,
            gc_notify: Notify::new(),
            addr: addr.to_string(),
        });
        let (shutdown, rx) = watch::channel(false);
        let mut tasks = vec![tokio::spawn(serve(
            listener,
            Arc::new(cfg),
            shared.clone(),
            rx.clone(),
        ))];
        tasks.push(tokio::spawn(gc_loop(shared.clone(), rx.clone())));
        if let Some(dir) = &opts.data_dir {
            tasks.push(tokio::spawn(persist::save_loop(
                shared.clone(),
                dir.clone(),
                rx.clone(),
            )));
        }
        if let Some(delay) = opts.simulate_workloads {
            tasks.push(tokio::spawn(simulator::run(
                shared.clone(),
                delay,
                rx.clone(),
            )));
        }
        Ok(TestEnv {
            shared,
            addr,
            ca_pem: pki.ca_cert_pem,
            shutdown,
            tasks,
        })
    }

    /// `https://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn admin_token(&self) -> &str {
        &self.shared.admin_token
    }

    /// PEM of the CA that signed the server certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A kubeconfig (context `testenv`, namespace `default`) with the admin token.
    pub fn kubeconfig_yaml(&self) -> String {
        self.kubeconfig_for(&self.shared.admin_token, "admin")
    }

    /// A kubeconfig authenticating with another bearer token.
    pub fn kubeconfig_for(&self, token: &str, user: &str) -> String {
        let ca = base64::engine::general_purpose::STANDARD.encode(self.ca_pem.as_bytes());
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: testenv\n  cluster:\n    server: {url}\n    certificate-authority-data: {ca}\ncontexts:\n- name: testenv\n  context:\n    cluster: testenv\n    user: {user}\n    namespace: default\ncurrent-context: testenv\nusers:\n- name: {user}\n  user:\n    token: {token}\n",
            url = self.url()
        )
    }

    pub fn write_kubeconfig(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        let path = path.as_ref();
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent).map_err(|source| Error::WriteKubeconfig {
                path: path.to_path_buf(),
                source,
            })?;
        }
        std::fs::write(path, self.kubeconfig_yaml()).map_err(|source| Error::WriteKubeconfig {
            path: path.to_path_buf(),
            source,
        })
    }

    /// A kube client built from [`Self::kubeconfig_yaml`], i.e. over the real HTTPS path.
    pub async fn client(&self) -> Result<kube::Client, Error> {
        client_from_yaml(&self.kubeconfig_yaml()).await
    }

    /// Mints a bearer token for any user and groups (RBAC applies to it).
    pub fn token_for(&self, user: &str, groups: &[&str]) -> String {
        let token = random_token("user.");
        let mut groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        if !groups.iter().any(|g| g == "system:authenticated") {
            groups.push("system:authenticated".into());
        }
        let mut inner = self.shared.lock();
        inner.tokens.insert(
            token.clone(),
            Identity {
                user: user.to_string(),
                groups,
            },
        );
        inner.dirty = true;
        token
    }

    /// Server-side applies every document of a (multi-document) YAML or JSON manifest, in
    /// order, with `force`, directly on the store (no HTTP). CRDs are established at once, so
    /// later documents may use their kinds. Namespaced objects without a namespace go to
    /// `default`. Returns the stored objects.
    pub fn apply_yaml(
        &self,
        yaml: &str,
        field_manager: &str,
    ) -> Result<Vec<serde_json::Value>, Error> {
        let docs: Vec<serde_json::Value> =
            serde_saphyr::from_str_multiple::<serde_json::Value, Vec<_>>(yaml)
                .map_err(|e| Error::Apply(format!("parsing YAML: {e}")))?;
        let opts = ops::WriteOpts {
            manager: field_manager.to_string(),
            force: true,
            ..Default::default()
        };
        let mut out = vec![];
        let mut inner = self.shared.lock();
        for doc in docs.into_iter().filter(|d| !d.is_null()) {
            let api_version = doc["apiVersion"].as_str().unwrap_or_default().to_string();
            let kind = doc["kind"].as_str().unwrap_or_default().to_string();
            let (group, version) = api_version
                .split_once('/')
                .unwrap_or(("", api_version.as_str()));
            let def = inner
                .registry
                .all()
                .find(|d| d.group == group && d.version == version && d.kind == kind)
                .cloned()
                .ok_or_else(|| Error::Apply(format!("no resource for {api_version} {kind}")))?;
            let name = store::meta_str(&doc, "name").to_string();
            let ns = match store::meta_str(&doc, "namespace") {
                "" if def.namespaced => "default".to_string(),
                n => n.to_string(),
            };
            let mut doc = doc;
            if def.namespaced {
                doc["metadata"]["namespace"] = json!(ns);
            }
            let obj = ops::patch(
                &mut inner,
                &def,
                &ns,
                &name,
                ops::PatchType::Apply,
                &doc,
                "",
                &opts,
            )
            .map_err(|e| Error::Apply(format!("{kind} {name}: {}", e.message)))?;
            out.push(ops::at_version(&def, &obj));
        }
        drop(inner);
        self.shared.gc_notify.notify_one();
        Ok(out)
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.lock().rv
    }

    /// Stops serving and waits for the background tasks to end.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }
}

/// A kube client from kubeconfig YAML.
pub async fn client_from_yaml(yaml: &str) -> Result<kube::Client, Error> {
    let kc = kube::config::Kubeconfig::from_yaml(yaml).map_err(|e| Error::Client(e.to_string()))?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .map_err(|e| Error::Client(e.to_string()))?;
    kube::Client::try_from(cfg).map_err(|e| Error::Client(e.to_string()))
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn serve(
    listener: tokio::net::TcpListener,
    cfg: Arc<tokio_rustls::rustls::ServerConfig>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
    let mut conns = tokio::task::JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let acceptor = acceptor.clone();
                let shared = shared.clone();
                conns.spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else { return };
                    let svc = hyper::service::service_fn(move |req| {
                        let shared = shared.clone();
                        async move { Ok::<_, std::convert::Infallible>(server::handle(shared, req).await) }
                    });
                    let builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
                    let _ = builder.serve_connection(hyper_util::rt::TokioIo::new(tls), svc).await;
                });
            }
        }
    }
    conns.abort_all();
}

async fn gc_loop(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = shared.gc_notify.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        let mut inner = shared.lock();
        if !inner.gc_dirty {
            continue;
        }
        inner.gc_dirty = false;
        for _ in 0..16 {
            if !ops::gc_pass(&mut inner) {
                break;
            }
        }
    }
}
