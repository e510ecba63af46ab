//! A capturing HTTP server: records every request (method, path with query, headers, body) and
//! answers with a configurable status after a configurable delay per path prefix.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use tokio::sync::mpsc;

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Captured {
    pub method: String,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Captured {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_lowercase()).map(String::as_str)
    }
    pub fn body_str(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// How the server answers requests whose path starts with a prefix.
#[derive(Clone, Debug)]
pub struct Answer {
    pub prefix: String,
    pub status: u16,
    pub delay: Duration,
    pub body: String,
}

pub struct Capture {
    pub addr: SocketAddr,
    rx: tokio::sync::Mutex<mpsc::UnboundedReceiver<Captured>>,
    answers: Arc<Mutex<Vec<Answer>>>,
}

impl Capture {
    pub async fn start() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let answers: Arc<Mutex<Vec<Answer>>> = Arc::new(Mutex::new(Vec::new()));
        let a = answers.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let tx = tx.clone();
                let a = a.clone();
                async move {
                    let path = uri
                        .path_and_query()
                        .map(|p| p.to_string())
                        .unwrap_or_default();
                    let answer = a
                        .lock()
                        .unwrap()
                        .iter()
                        .find(|x| path.starts_with(&x.prefix))
                        .cloned();
                    let mut h = BTreeMap::new();
                    for (k, v) in &headers {
                        h.insert(k.as_str().to_string(), v.to_str().unwrap_or("").to_string());
                    }
                    let _ = tx.send(Captured {
                        method: method.to_string(),
                        path: path.clone(),
                        headers: h,
                        body: body.to_vec(),
                    });
                    match answer {
                        Some(x) => {
                            tokio::time::sleep(x.delay).await;
                            (StatusCode::from_u16(x.status).unwrap(), x.body)
                        }
                        None => (StatusCode::OK, "{\"ok\":true}".to_string()),
                    }
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            addr,
            rx: tokio::sync::Mutex::new(rx),
            answers,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn answer(&self, prefix: &str, status: u16, delay: Duration, body: &str) {
        self.answers.lock().unwrap().push(Answer {
            prefix: prefix.into(),
            status,
            delay,
            body: body.into(),
        });
    }

    /// The next request, or a panic after `timeout`.
    pub async fn next(&self, timeout: Duration) -> Captured {
        let mut rx = self.rx.lock().await;
        tokio::time::timeout(timeout, rx.recv())
            .await
            .expect("timed out waiting for a request")
            .expect("capture server stopped")
    }

    /// The next request within `timeout`, if any.
    pub async fn try_next(&self, timeout: Duration) -> Option<Captured> {
        let mut rx = self.rx.lock().await;
        tokio::time::timeout(timeout, rx.recv())
            .await
            .ok()
            .flatten()
    }
}

/// Waits until `f` returns `Some`, polling every 100 ms, panicking after `secs` seconds.
pub async fn wait_for<T, F, Fut>(what: &str, secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Upstream's webhook path of a Receiver in `default`: `/hook/<sha256(token + name + namespace)>`.
pub fn hook_path(token: &str, name: &str) -> String {
    use sha2::Digest;
    format!(
        "/hook/{}",
        hex::encode(sha2::Sha256::digest(
            format!("{token}{name}default").as_bytes()
        ))
    )
}

/// The `reconcile.fluxcd.io/requestedAt` annotation of GitRepository `default/<name>`.
pub async fn requested_at(
    repos: &kube::Api<ferroflux_api::GitRepository>,
    name: &str,
) -> Option<String> {
    use kube::ResourceExt;
    repos
        .get(name)
        .await
        .unwrap()
        .annotations()
        .get("reconcile.fluxcd.io/requestedAt")
        .cloned()
}

/// POSTs `body` with `headers`; returns the status code.
pub async fn post(
    http: &reqwest::Client,
    url: &str,
    headers: &[(&str, String)],
    body: impl Into<reqwest::Body>,
) -> u16 {
    let mut rb = http.post(url).body(body);
    for (k, v) in headers {
        rb = rb.header(*k, v);
    }
    rb.send().await.unwrap().status().as_u16()
}

pub const NOTIFICATION: &str = "notification.toolkit.fluxcd.io";
pub const SOURCE: &str = "source.toolkit.fluxcd.io";
pub const KUSTOMIZE: &str = "kustomize.toolkit.fluxcd.io";

/// The CRDs of the API groups `groups` in the test API server.
pub async fn install_crds(client: &kube::Client, groups: &[&str]) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let crds: kube::Api<CustomResourceDefinition> = kube::Api::all(client.clone());
    for crd in ferroflux_api::crdgen::crd_objects().unwrap() {
        if groups.contains(&crd.spec.group.as_str()) {
            crds.create(&kube::api::PostParams::default(), &crd)
                .await
                .unwrap();
        }
    }
}

/// The Receiver half of the controller against the test API server: the reconciler on the
/// shared driver feeding the index, and the webhook server on 127.0.0.1.
pub struct Receivers {
    /// The webhook server's base URL.
    pub base: String,
    pub index: notification_controller::receiver::ReceiverIndex,
    shutdown: tokio_util::sync::CancellationToken,
}

impl Receivers {
    /// Starts both; `google_certs_url` replaces Google's keys URL (gcr).
    pub async fn start(client: &kube::Client, google_certs_url: Option<String>) -> Self {
        use ferroflux_runtime::driver::{DriverConfig, run};
        use notification_controller::receiver::{
            ReceiverIndex, ReceiverReconciler, ReceiverServer, router,
        };
        let index = ReceiverIndex::default();
        let shutdown = tokio_util::sync::CancellationToken::new();
        let s = shutdown.clone();
        tokio::spawn(run::<ferroflux_api::Receiver, _>(
            client.clone(),
            DriverConfig {
                controller: "receiver".into(),
                group: "notification.toolkit.fluxcd.io".into(),
                kind: "Receiver".into(),
                concurrency: 4,
                min_retry_delay: Duration::from_millis(200),
                max_retry_delay: Duration::from_secs(2),
                jitter_percentage: 0,
                namespace: None,
                label_selector: String::new(),
            },
            ReceiverReconciler {
                recorder: ferroflux_runtime::events::EventRecorder::new(
                    client.clone(),
                    "notification-controller",
                    "",
                ),
            },
            ferroflux_runtime::metrics::Metrics::new(),
            None,
            vec![index.tap()],
            async move { s.cancelled().await },
        ));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut server = ReceiverServer::new(client.clone(), index.clone(), false);
        if let Some(url) = google_certs_url {
            server.google_certs_url = url;
        }
        let app = router(server);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            base: format!("http://{addr}"),
            index,
            shutdown,
        }
    }

    /// The URL of a webhook path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Waits until Receiver `default/<name>` publishes `path` and the index serves that status.
    pub async fn wait_ready(
        &self,
        receivers: &kube::Api<ferroflux_api::Receiver>,
        name: &str,
        path: &str,
    ) -> ferroflux_api::Receiver {
        wait_for(&format!("receiver {name} ready"), 30, || {
            let receivers = receivers.clone();
            let index = self.index.clone();
            async move {
                let r = receivers.get(name).await.ok()?;
                let st = r.status.clone()?;
                (st.webhook_path.as_deref() == Some(path)
                    && index.by_path(path).is_some_and(|x| x.status == r.status))
                .then_some(r)
            }
        })
        .await
    }
}

impl Drop for Receivers {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The alerting half of the controller (event intake, Alert and Provider loops, dispatcher)
/// against the test API server; stopped when dropped.
pub struct Alerting {
    /// The event intake.
    pub addr: SocketAddr,
    pub dispatcher: notification_controller::provider::Dispatcher,
    shutdown: tokio_util::sync::CancellationToken,
}

impl Alerting {
    pub async fn start(client: &kube::Client, no_cross_namespace_refs: bool) -> Self {
        let dispatcher = notification_controller::provider::Dispatcher::new(
            ferroflux_runtime::events::EventRecorder::new(
                client.clone(),
                "notification-controller",
                "",
            ),
        );
        let shutdown = tokio_util::sync::CancellationToken::new();
        let (addr, loops) = notification_controller::Wiring {
            listen: "127.0.0.1:0".parse().unwrap(),
            rate_limit_interval: Duration::from_secs(300),
            namespace: None,
            label_selector: String::new(),
            no_cross_namespace_refs,
            workload_identity: false,
        }
        .start_with(client.clone(), dispatcher.clone(), shutdown.clone())
        .await
        .unwrap();
        tokio::spawn(loops);
        Self {
            addr,
            dispatcher,
            shutdown,
        }
    }
}

impl Drop for Alerting {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
