//! Provider: turning a Provider and its Secrets into notifier settings, the rules of which
//! events go to which kind of provider, the asynchronous dispatcher (one bounded queue and a
//! bounded number of in-flight deliveries per Provider, each delivery bounded by the Provider's
//! timeout, failures reported as `NotificationDispatchFailed` warnings with the token masked),
//! and the Provider reconciler (finalizer only, as upstream: Providers are static).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferroflux_api::provider::ProviderType;
use ferroflux_api::{Alert, Provider};
use ferroflux_runtime::events::{EventRecorder, Severity};
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::Store;
use kube::{Client, ResourceExt};
use tokio::sync::{Semaphore, mpsc};

use crate::alert::FINALIZER;
use crate::event::{Event, mask_token};
use crate::providers::{self, Delivery, Settings, Tls};

/// Providers that set Git commit statuses.
pub fn is_commit_status_provider(t: ProviderType) -> bool {
    use ProviderType as T;
    matches!(
        t,
        T::GitHub | T::GitLab | T::Gitea | T::BitbucketServer | T::Bitbucket | T::AzureDevOps
    )
}

/// Providers that forward events as they are.
pub fn is_generic_provider(t: ProviderType) -> bool {
    matches!(t, ProviderType::Generic | ProviderType::GenericHmac)
}

/// Providers that comment on pull/merge requests.
pub fn is_change_request_provider(t: ProviderType) -> bool {
    use ProviderType as T;
    matches!(
        t,
        T::GitHubPullRequestComment | T::GitLabMergeRequestComment | T::GiteaPullRequestComment
    )
}

/// Whether the event is a commit status update (`<group>/commit_status: update`).
pub fn is_commit_status_update(event: &Event) -> bool {
    let key = format!("{}/commit_status", event.involved_object.group());
    event.metadata.get(&key).is_some_and(|v| v == "update")
}

/// Whether `event.toolkit.fluxcd.io/<key>` is set and not empty (the commit and change
/// request keys come from object annotations, so they carry the event group).
fn has_event_key(event: &Event, key: &str) -> bool {
    let key = format!("{}/{key}", crate::event::EVENT_GROUP);
    event.metadata.get(&key).is_some_and(|v| !v.is_empty())
}

/// Upstream's default commit status id: `<kind>/<name>/<first segment of the Provider UID>`,
/// lower case.
pub fn default_commit_status(provider_uid: &str, event: &Event) -> String {
    let first = provider_uid.split('-').next().unwrap_or_default();
    let o = &event.involved_object;
    format!("{}/{}/{first}", o.kind, o.name).to_lowercase()
}

/// What routing decides for one (event, provider type) pair.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    Send,
    /// Not for this kind of provider (silently skipped).
    Skip,
    /// Dropped: a commit status provider without commit metadata.
    DroppedCommitStatus,
    /// Dropped: a change request provider without change request metadata.
    DroppedChangeRequest,
}

/// Upstream's rules of which events go to which kind of provider.
pub fn route(t: ProviderType, event: &Event) -> Route {
    let update = is_commit_status_update(event);
    if !is_commit_status_provider(t) && !is_generic_provider(t) && update {
        return Route::Skip;
    }
    if is_commit_status_provider(t)
        && !has_event_key(event, "commit")
        && !update
        && event.severity != "error"
    {
        return Route::DroppedCommitStatus;
    }
    if is_change_request_provider(t) && !has_event_key(event, "change_request") {
        return Route::DroppedChangeRequest;
    }
    Route::Send
}

fn secret_str(secret: &Secret, key: &str) -> Option<String> {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|v| String::from_utf8_lossy(&v.0).trim().to_string())
}

async fn get_secret(client: &Client, namespace: &str, name: &str) -> Result<Secret, String> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    api.get(name).await.map_err(|e| match e {
        kube::Error::Api(s) if s.code == 404 => {
            format!("failed to get secret '{namespace}/{name}': secret not found")
        }
        other => format!("failed to get secret '{namespace}/{name}': {other}"),
    })
}

fn tls_from_secret(secret: &Secret) -> Option<Tls> {
    let get = |keys: &[&str]| {
        keys.iter().find_map(|k| {
            secret
                .data
                .as_ref()
                .and_then(|d| d.get(*k))
                .map(|v| v.0.clone())
        })
    };
    let tls = Tls {
        ca: get(&["ca.crt", "caFile"]),
        cert: get(&["tls.crt", "certFile"]),
        key: get(&["tls.key", "keyFile"]),
    };
    (tls.ca.is_some() || tls.cert.is_some()).then_some(tls)
}

/// Resolves a Provider's settings (spec, `secretRef`, `proxySecretRef`, `certSecretRef`) as
/// upstream's createNotifier does; the error says which part failed.
pub async fn load_settings(client: &Client, provider: &Provider) -> Result<Settings, String> {
    let ns = provider.namespace().unwrap_or_default();
    let spec = &provider.spec;
    let mut s = Settings {
        url: spec.address.clone().unwrap_or_default(),
        proxy: spec.proxy.clone().unwrap_or_default(),
        username: spec.username.clone().unwrap_or_default(),
        channel: spec.channel.clone().unwrap_or_default(),
        provider_uid: provider.uid().unwrap_or_default(),
        provider_name: provider.name_any(),
        provider_namespace: ns.clone(),
        pubsub_emulator_host: std::env::var("PUBSUB_EMULATOR_HOST").unwrap_or_default(),
        ..Default::default()
    };
    let mut provider_secret = None;
    if let Some(r) = &spec.secret_ref {
        let secret = get_secret(client, &ns, &r.name).await?;
        if let Some(addr) = secret_str(&secret, "address") {
            if addr.len() > 2048 {
                return Err(
                    "invalid address in secret: address exceeds maximum length of 2048 bytes"
                        .into(),
                );
            }
            s.url = addr;
        }
        if let Some(proxy) = secret_str(&secret, "proxy") {
            reqwest::Url::parse(&proxy)
                .map_err(|_| format!("invalid 'proxy' in secret '{ns}/{}'", r.name))?;
            s.proxy = proxy;
        }
        if let Some(h) = secret
            .data
            .as_ref()
            .and_then(|d| d.get("headers"))
            .map(|v| String::from_utf8_lossy(&v.0).to_string())
        {
            s.headers = serde_saphyr::from_str::<BTreeMap<String, String>>(&h)
                .map_err(|e| format!("failed to read headers from secret: {e}"))?;
        }
        if let Some(token) = secret_str(&secret, "token") {
            s.token = token;
        }
        let user = secret_str(&secret, "username");
        let pass = secret_str(&secret, "password");
        if let (Some(u), Some(p)) = (&user, &pass) {
            s.username = u.clone();
            s.password = p.clone();
        }
        s.secret_data = secret
            .data
            .clone()
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect();
        provider_secret = Some(secret);
    }
    if let Some(r) = &spec.proxy_secret_ref {
        let secret = get_secret(client, &ns, &r.name).await?;
        let addr = secret_str(&secret, "address").ok_or_else(|| {
            format!(
                "failed to get proxy URL: secret '{ns}/{}': key 'address' not found",
                r.name
            )
        })?;
        let mut url = reqwest::Url::parse(&addr)
            .map_err(|e| format!("failed to get proxy URL: invalid address: {e}"))?;
        if let Some(u) = secret_str(&secret, "username") {
            let _ = url.set_username(&u);
            let _ = url.set_password(secret_str(&secret, "password").as_deref());
        }
        s.proxy = url.to_string();
    }
    if let Some(r) = &spec.cert_secret_ref {
        let secret = get_secret(client, &ns, &r.name).await?;
        s.tls = tls_from_secret(&secret);
        if s.tls.is_none() {
            return Err(format!(
                "failed to get TLS config: secret '{ns}/{}' has no TLS data",
                r.name
            ));
        }
    } else if let (Some(t), Some(secret)) = (spec.r#type, &provider_secret)
        && is_commit_status_provider(t)
    {
        s.tls = tls_from_secret(secret).filter(|t| t.ca.is_some());
    }
    if spec.r#type == Some(ProviderType::GitLab) && s.token.is_empty() && !s.password.is_empty() {
        s.token = s.password.clone();
    }
    Ok(s)
}

/// One delivery waiting in a Provider's queue.
pub struct Job {
    pub alert: Arc<Alert>,
    /// `Kind/namespace/name` of the event's object, for the failure warning.
    pub object: String,
    pub delivery: Delivery,
    pub settings: Arc<Settings>,
    pub timeout: Duration,
    /// Upstream starts the Provider's timeout when the event is dispatched, not when the
    /// request leaves: time spent queued counts against it.
    pub deadline: tokio::time::Instant,
}

/// Deliveries waiting per Provider before new ones are refused. Upstream starts a goroutine per
/// delivery and drops nothing; here a delivery waits in its Provider's queue, and since its
/// timeout runs from the moment it was queued (as upstream's context does), the queue holds at
/// most `rate × timeout` deliveries of a stalled Provider (15,000 at 1,000 events/s and the
/// default 15s) before expired ones are failed. This cap only guards memory beyond that.
pub const QUEUE_CAPACITY: usize = 32 * 1024;
/// Deliveries in flight per Provider (connections to it, at most): enough that a Provider
/// answering within 100 ms takes over 1,000 deliveries a second.
pub const IN_FLIGHT_PER_PROVIDER: usize = 128;

/// A Provider's worker retires after this long without a delivery (its queue is made again by
/// the next one). Deleted Providers lose theirs at once ([`Dispatcher::remove_provider`]); this
/// also ends a worker started by a delivery that raced with the deletion.
pub const WORKER_IDLE: Duration = Duration::from_secs(300);

/// The queue of each Provider, by namespace and name: its worker's id and sender.
type Queues = HashMap<(String, String), (u64, mpsc::Sender<Job>)>;

/// HTTP clients of Providers with their own proxy or TLS settings, kept so that their
/// connections are reused (key: proxy URL and the PEM material).
type Clients = HashMap<(String, Vec<u8>), reqwest::Client>;

/// Sends deliveries asynchronously: one queue and worker per Provider, so a slow or failing
/// Provider only ever delays its own deliveries.
#[derive(Clone)]
pub struct Dispatcher {
    queues: Arc<Mutex<Queues>>,
    clients: Arc<Mutex<Clients>>,
    recorder: EventRecorder,
    http: reqwest::Client,
    /// Failure Events being recorded; beyond [`MAX_PENDING_REPORTS`] a failure is only logged
    /// (a stalled Provider fails every delivery; client-go's event spam filter likewise drops
    /// most of such a storm upstream).
    reports: Arc<Semaphore>,
    /// Worker tasks alive (each ends when its queue is dropped and drained, or when idle).
    workers: Arc<AtomicUsize>,
    next_worker: Arc<AtomicU64>,
    idle: Duration,
}

/// Decrements the live worker count when a worker task ends, however it ends.
struct WorkerAlive(Arc<AtomicUsize>);

impl Drop for WorkerAlive {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Failure Events recorded at the same time, at most.
pub const MAX_PENDING_REPORTS: usize = 64;

impl Dispatcher {
    pub fn new(recorder: EventRecorder) -> Self {
        let http = providers::pooled(reqwest::Client::builder())
            .user_agent(concat!(
                "ferroflux-notification-controller/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .unwrap_or_default();
        Self {
            queues: Arc::new(Mutex::new(HashMap::new())),
            clients: Arc::new(Mutex::new(HashMap::new())),
            recorder,
            http,
            reports: Arc::new(Semaphore::new(MAX_PENDING_REPORTS)),
            workers: Arc::new(AtomicUsize::new(0)),
            next_worker: Arc::new(AtomicU64::new(0)),
            idle: WORKER_IDLE,
        }
    }

    /// Like [`Dispatcher::new`], with workers retiring after `idle` without deliveries.
    pub fn with_idle(recorder: EventRecorder, idle: Duration) -> Self {
        Self {
            idle,
            ..Self::new(recorder)
        }
    }

    /// Providers (namespace, name) that have a delivery queue.
    pub fn queues(&self) -> Vec<(String, String)> {
        let mut v: Vec<_> = self
            .queues
            .lock()
            .map(|q| q.keys().cloned().collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Worker tasks alive (one per queue, plus any still draining a dropped queue).
    pub fn workers(&self) -> usize {
        self.workers.load(Ordering::SeqCst)
    }

    /// Drops the queue of a deleted Provider: deliveries already queued are still sent (or
    /// fail on their deadline), then its worker ends.
    pub fn remove_provider(&self, namespace: &str, name: &str) {
        if let Ok(mut queues) = self.queues.lock() {
            queues.remove(&(namespace.to_string(), name.to_string()));
        }
    }

    /// The HTTP client for `s`: the shared one, or one per proxy and TLS setting, built once.
    pub fn client_for(&self, s: &Settings) -> Result<reqwest::Client, String> {
        if s.proxy.is_empty() && s.tls.is_none() {
            return Ok(self.http.clone());
        }
        let mut pem = Vec::new();
        if let Some(tls) = &s.tls {
            for part in [&tls.ca, &tls.cert, &tls.key] {
                let part = part.as_deref().unwrap_or_default();
                pem.extend_from_slice(&(part.len() as u64).to_le_bytes());
                pem.extend_from_slice(part);
            }
        }
        let key = (s.proxy.clone(), pem);
        let Ok(mut clients) = self.clients.lock() else {
            return providers::http_client(s);
        };
        if let Some(c) = clients.get(&key) {
            return Ok(c.clone());
        }
        let c = providers::http_client(s)?;
        // Settings change rarely; a Provider whose Secret keeps changing must not grow this.
        if clients.len() >= 256 {
            clients.clear();
        }
        clients.insert(key, c.clone());
        Ok(c)
    }

    /// Queues `job` for the Provider `namespace/name`; a full queue is reported like a failed
    /// delivery.
    pub fn enqueue(&self, namespace: &str, name: &str, job: Job) {
        let key = (namespace.to_string(), name.to_string());
        let mut job = job;
        // A second try when the queue was closed by its worker retiring in between.
        for _ in 0..2 {
            let (id, sender) = {
                let Ok(mut queues) = self.queues.lock() else {
                    return;
                };
                match queues.get(&key) {
                    Some((id, s)) if !s.is_closed() => (*id, s.clone()),
                    _ => {
                        let (id, s) = self.spawn_worker(key.clone());
                        queues.insert(key.clone(), (id, s.clone()));
                        (id, s)
                    }
                }
            };
            match sender.try_send(job) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Closed(j)) => {
                    if let Ok(mut queues) = self.queues.lock()
                        && queues.get(&key).is_some_and(|(i, _)| *i == id)
                    {
                        queues.remove(&key);
                    }
                    job = j;
                }
                Err(mpsc::error::TrySendError::Full(j)) => {
                    let err =
                        format!("the delivery queue of provider '{namespace}/{name}' is full");
                    // Reported off the intake's path: recording an Event must not slow it down.
                    self.report(j, &err);
                    return;
                }
            }
        }
        let err = format!("the delivery queue of provider '{namespace}/{name}' is closed");
        self.report(job, &err);
    }

    /// Removes the queue `key` if it is still the one of worker `id` (it may have been
    /// dropped, or replaced, meanwhile); true when it was.
    fn retire(&self, key: &(String, String), id: u64) -> bool {
        let Ok(mut queues) = self.queues.lock() else {
            return false;
        };
        if queues.get(key).is_some_and(|(i, _)| *i == id) {
            queues.remove(key);
            return true;
        }
        !queues.contains_key(key)
    }

    fn spawn_worker(&self, key: (String, String)) -> (u64, mpsc::Sender<Job>) {
        let (tx, mut rx) = mpsc::channel::<Job>(QUEUE_CAPACITY);
        let id = self.next_worker.fetch_add(1, Ordering::SeqCst);
        let limit = Arc::new(Semaphore::new(IN_FLIGHT_PER_PROVIDER));
        let this = self.clone();
        self.workers.fetch_add(1, Ordering::SeqCst);
        let alive = WorkerAlive(self.workers.clone());
        tokio::spawn(async move {
            let _alive = alive;
            loop {
                let job = match tokio::time::timeout(this.idle, rx.recv()).await {
                    Ok(Some(job)) => job,
                    // Every sender dropped (the Provider was deleted) and the queue drained.
                    Ok(None) => break,
                    Err(_idle) => {
                        if this.retire(&key, id) {
                            // No new sender can be taken now; what was sent meanwhile is
                            // still delivered.
                            rx.close();
                        }
                        continue;
                    }
                };
                // Expired while queued: failed as upstream's Post fails on its context.
                if tokio::time::Instant::now() >= job.deadline {
                    let err = deadline_exceeded(job.timeout);
                    this.report(job, &err);
                    continue;
                }
                let Ok(permit) = limit.clone().acquire_owned().await else {
                    break;
                };
                let reporter = this.clone();
                let client = this.client_for(&job.settings);
                tokio::spawn(async move {
                    let result = match client {
                        Err(e) => Err(e),
                        Ok(client) => tokio::time::timeout_at(
                            job.deadline,
                            providers::send_with(&job.delivery, &client),
                        )
                        .await
                        .unwrap_or_else(|_| Err(deadline_exceeded(job.timeout))),
                    };
                    drop(permit);
                    if let Err(e) = result {
                        reporter.report(job, &e);
                    }
                });
            }
        });
        (id, tx)
    }

    /// Logs a failed delivery (token masked) and records its `NotificationDispatchFailed`
    /// Event in the background, unless [`MAX_PENDING_REPORTS`] are being recorded already.
    fn report(&self, job: Job, err: &str) {
        let masked = log_failure(&job, err);
        match self.reports.clone().try_acquire_owned() {
            Ok(permit) => {
                let recorder = self.recorder.clone();
                tokio::spawn(async move {
                    publish_failure(&recorder, &job, &masked).await;
                    drop(permit);
                });
            }
            Err(_) => {
                tracing::debug!("too many failure events being recorded, not recording this one")
            }
        }
    }
}

fn deadline_exceeded(timeout: Duration) -> String {
    format!("postMessage failed: context deadline exceeded (timeout {timeout:?})")
}

/// Logs a failed delivery; returns the error with the token and password masked.
fn log_failure(job: &Job, err: &str) -> String {
    let mut masked = mask_token(err, &job.settings.token);
    masked = mask_token(&masked, &job.settings.password);
    tracing::error!(
        error = %masked,
        alert = %job.alert.name_any(),
        namespace = %job.alert.namespace().unwrap_or_default(),
        "failed to send notification"
    );
    masked
}

/// The `NotificationDispatchFailed` warning of a failed delivery (error already masked).
async fn publish_failure(recorder: &EventRecorder, job: &Job, masked: &str) {
    recorder
        .publish(
            job.alert.as_ref(),
            Severity::Error,
            "NotificationDispatchFailed",
            &format!("failed to send notification for {}: {masked}", job.object),
            &BTreeMap::new(),
        )
        .await;
}

/// Looks up a Provider in the watch cache.
pub fn find_provider(
    store: &Store<Provider>,
    namespace: &str,
    name: &str,
) -> Option<Arc<Provider>> {
    store.get(&kube::runtime::reflector::ObjectRef::new(name).within(namespace))
}

/// The Provider reconciler: keeps `finalizers.fluxcd.io` on Providers and removes it when
/// they are deleted (upstream cleans its token cache there).
#[derive(Clone)]
pub struct ProviderReconciler {
    pub client: Client,
}

impl ProviderReconciler {
    async fn reconcile(&self, provider: Arc<Provider>) -> Result<Action, kube::Error> {
        let has = provider.finalizers().iter().any(|f| f == FINALIZER);
        let deleting = provider.metadata.deletion_timestamp.is_some();
        let finalizers: Vec<String> = if deleting && has {
            provider
                .finalizers()
                .iter()
                .filter(|f| *f != FINALIZER)
                .cloned()
                .collect()
        } else if !deleting && !has {
            let mut f = provider.finalizers().to_vec();
            f.push(FINALIZER.to_string());
            f
        } else {
            return Ok(Action::await_change());
        };
        let api: Api<Provider> = Api::namespaced(
            self.client.clone(),
            &provider.namespace().unwrap_or_default(),
        );
        let patch = serde_json::json!({"metadata": {
            "finalizers": finalizers, "resourceVersion": provider.resource_version()}});
        api.patch(
            &provider.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
        Ok(Action::await_change())
    }

    /// Runs the reconciler on the objects of `stream` (the shared Provider watch).
    pub async fn run(
        self,
        store: Store<Provider>,
        stream: futures::stream::BoxStream<
            'static,
            Result<Provider, kube::runtime::watcher::Error>,
        >,
        shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
    ) {
        let this = Arc::new(self);
        let shutdown = shutdown.shared();
        let controller = Controller::for_stream(stream, store)
            .graceful_shutdown_on(shutdown.clone())
            .run(
                |obj, ctx: Arc<ProviderReconciler>| async move { ctx.reconcile(obj).await },
                |_obj, err, _ctx| {
                    tracing::error!(error = %err, "Reconciler error");
                    Action::requeue(Duration::from_secs(5))
                },
                this,
            )
            .for_each(|_| futures::future::ready(()));
        ferroflux_runtime::driver::run_until_shutdown(
            controller,
            shutdown,
            crate::alert::SHUTDOWN_GRACE,
        )
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(meta: &[(&str, &str)], severity: &str) -> Event {
        let mut e = Event {
            severity: severity.into(),
            ..Default::default()
        };
        e.involved_object.api_version = "kustomize.toolkit.fluxcd.io/v1".into();
        for (k, v) in meta {
            // commit_status comes from the controller (object group), the commit and change
            // request keys from annotations (event group).
            let group = if *k == "commit_status" {
                "kustomize.toolkit.fluxcd.io"
            } else {
                "event.toolkit.fluxcd.io"
            };
            e.metadata.insert(format!("{group}/{k}"), v.to_string());
        }
        e
    }

    #[test]
    fn routing_rules() {
        use ProviderType as T;
        let update = event(&[("commit_status", "update")], "info");
        assert_eq!(route(T::Slack, &update), Route::Skip);
        assert_eq!(route(T::Generic, &update), Route::Send);
        assert_eq!(route(T::GitHub, &update), Route::Send);
        let plain = event(&[], "info");
        assert_eq!(route(T::GitHub, &plain), Route::DroppedCommitStatus);
        assert_eq!(route(T::GitHub, &event(&[], "error")), Route::Send);
        assert_eq!(
            route(T::GitHub, &event(&[("commit", "x")], "info")),
            Route::Send
        );
        assert_eq!(
            route(T::GitHubPullRequestComment, &plain),
            Route::DroppedChangeRequest
        );
        assert_eq!(route(T::Slack, &plain), Route::Send);
        // The commit key under the object's group does not count.
        let mut wrong = event(&[], "info");
        wrong
            .metadata
            .insert("kustomize.toolkit.fluxcd.io/commit".into(), "x".into());
        assert_eq!(route(T::GitHub, &wrong), Route::DroppedCommitStatus);
    }
}
