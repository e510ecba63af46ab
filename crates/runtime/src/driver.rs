//! The reconcile driver: kube-runtime's `Controller` wrapped with the behaviour every Flux
//! controller shares.
//!
//! - Triggers: generation changes, `reconcile.fluxcd.io/requestedAt` changes and deletion
//!   (upstream's GenerationChanged OR ReconcileRequested predicates), plus any extra trigger
//!   stream a service adds (artifact events) and the requeues the driver schedules.
//! - Finalizer `finalizers.fluxcd.io`: added before the first reconcile, removed after the
//!   reconciler's cleanup when the object is being deleted.
//! - `spec.suspend`: the object is left untouched and not requeued.
//! - Requeue at the object's interval with jitter on success; per-object exponential backoff
//!   between `--min-retry-delay` and `--max-retry-delay` on errors.
//! - Metrics (`gotk_reconcile_duration_seconds`, `controller_runtime_*`, `workqueue_*`), a
//!   tracing span per reconcile with controller-runtime's keys and a fresh `reconcileID`.

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::future::Future;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Client, Resource, ResourceExt};
use rand::Rng;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::metrics::{ControllerLabel, Metrics, NameLabel, ObjectLabels, ReconcileResult};

/// The finalizer every reconciled Flux kind carries.
pub const FINALIZER: &str = "finalizers.fluxcd.io";
/// How long in-flight reconciles may run after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// Drives `controller` (a kube-runtime controller run to its end) until it ends, or until
/// `grace` has passed after `shutdown` resolved: a graceful shutdown in kube-runtime can keep
/// waiting on requeues still scheduled or on a watch that makes no progress, and a process must
/// still stop promptly on SIGTERM. For loops that do not go through [`run`].
pub async fn run_until_shutdown<F, S>(controller: F, shutdown: S, grace: Duration)
where
    F: Future<Output = ()>,
    S: Future<Output = ()>,
{
    tokio::pin!(controller);
    tokio::select! {
        _ = &mut controller => {}
        _ = async {
            shutdown.await;
            tokio::time::sleep(grace).await;
        } => {}
    }
}

/// Annotation that requests an immediate reconcile.
pub const REQUESTED_AT_ANNOTATION: &str = "reconcile.fluxcd.io/requestedAt";

/// What the driver needs to know about an object; implemented for every Flux kind with a status.
pub trait Reconcilable:
    Resource<DynamicType = ()>
    + Clone
    + DeserializeOwned
    + serde::Serialize
    + Debug
    + Send
    + Sync
    + 'static
{
    /// `spec.suspend`.
    fn suspended(&self) -> bool;
    /// `spec.interval`, parsed.
    fn interval(&self) -> Option<Duration>;
}

impl<T> Reconcilable for T
where
    T: ferroflux_api::FluxObject,
{
    fn suspended(&self) -> bool {
        ferroflux_api::FluxObject::suspended(self)
    }
    fn interval(&self) -> Option<Duration> {
        ferroflux_api::FluxObject::interval(self)
    }
}

/// What a reconcile asks the driver to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Requeue at the object's interval (with jitter).
    RequeueAtInterval,
    /// Requeue after the given delay (dependency not ready, retry interval, ...).
    RequeueAfter(Duration),
    /// Wait for the next change of the object (stalled, terminal).
    AwaitChange,
}

/// A failed reconcile; retried with per-object exponential backoff.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ReconcileError {
    pub message: String,
}

impl ReconcileError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// Everything a reconciler gets besides the object.
#[derive(Clone)]
pub struct ReconcileContext {
    pub client: Client,
    pub metrics: Metrics,
    /// Lowercase kind, the controller name in metrics and logs (e.g. "gitrepository").
    pub controller: String,
}

/// One Flux kind's reconciler, called by the driver.
pub trait Reconciler<K: Reconcilable>: Send + Sync + 'static {
    /// Brings the cluster (and the object's status) in line with the object's spec.
    fn reconcile(
        &self,
        obj: Arc<K>,
        ctx: ReconcileContext,
    ) -> impl Future<Output = Result<Outcome, ReconcileError>> + Send;

    /// Cleans up before the finalizer is removed (artifacts, pruned objects, ...).
    fn cleanup(
        &self,
        obj: Arc<K>,
        ctx: ReconcileContext,
    ) -> impl Future<Output = Result<(), ReconcileError>> + Send {
        let _ = (obj, ctx);
        async { Ok(()) }
    }

    /// Whether the driver adds and removes `finalizers.fluxcd.io` (false for static kinds).
    fn uses_finalizer(&self) -> bool {
        true
    }

    /// Whether the driver adds the finalizer to this object before reconciling it (false for
    /// objects a kind keeps static, e.g. a HelmRepository of type `oci`); removal on deletion
    /// follows [`Reconciler::uses_finalizer`].
    fn adds_finalizer(&self, obj: &K) -> bool {
        let _ = obj;
        self.uses_finalizer()
    }
}

/// The reconciler of a kind whose behaviour a later milestone brings: it leaves the object
/// untouched (no finalizer, no status), so nothing ever reports it Ready by mistake.
#[derive(Clone, Copy, Debug, Default)]
pub struct NotYetImplemented;

impl<K: Reconcilable> Reconciler<K> for NotYetImplemented {
    async fn reconcile(
        &self,
        _obj: Arc<K>,
        _ctx: ReconcileContext,
    ) -> Result<Outcome, ReconcileError> {
        tracing::debug!("no reconciler for this kind yet; object left untouched");
        Ok(Outcome::AwaitChange)
    }

    fn uses_finalizer(&self) -> bool {
        false
    }
}

/// Settings of one controller loop.
#[derive(Clone, Debug)]
pub struct DriverConfig {
    /// Lowercase kind (controller and workqueue name).
    pub controller: String,
    /// API group of the kind (for logs).
    pub group: String,
    /// Kind (for logs and metrics).
    pub kind: String,
    /// `--concurrent`.
    pub concurrency: u16,
    /// `--min-retry-delay` / `--max-retry-delay`.
    pub min_retry_delay: Duration,
    pub max_retry_delay: Duration,
    /// `--interval-jitter-percentage`.
    pub jitter_percentage: u8,
    /// `None` watches all namespaces.
    pub namespace: Option<String>,
    /// `--watch-label-selector` (empty = everything).
    pub label_selector: String,
}

/// Exponential per-item backoff as controller-runtime's rate limiter computes it:
/// `min * 2^failures`, capped at `max`.
pub fn backoff_delay(failures: u32, min: Duration, max: Duration) -> Duration {
    let factor = 2f64.powi(failures.min(60) as i32);
    let secs = (min.as_secs_f64() * factor).min(max.as_secs_f64());
    Duration::from_secs_f64(secs)
}

/// The interval with a random jitter of ±`percentage` percent, as upstream's jitter package does.
pub fn jittered(interval: Duration, percentage: u8) -> Duration {
    if percentage == 0 || interval.is_zero() {
        return interval;
    }
    let p = f64::from(percentage.min(100)) / 100.0;
    let offset = rand::rng().random_range(-p..=p);
    Duration::from_secs_f64((interval.as_secs_f64() * (1.0 + offset)).max(0.0))
}

/// Hash of what should trigger a reconcile: generation, requestedAt and deletion.
fn trigger_hash<K: Resource>(obj: &K) -> Option<u64> {
    let mut h = DefaultHasher::new();
    obj.meta().generation.hash(&mut h);
    obj.meta()
        .annotations
        .as_ref()
        .and_then(|a| a.get(REQUESTED_AT_ANNOTATION))
        .hash(&mut h);
    obj.meta().deletion_timestamp.is_some().hash(&mut h);
    Some(h.finish())
}

fn new_reconcile_id() -> String {
    let b: [u8; 16] = rand::rng().random();
    let hex = hex::encode(b);
    format!(
        "{}-{}-4{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The annotation in which client-side `kubectl apply` keeps the whole applied object.
const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

struct DriverState<R> {
    reconciler: R,
    ctx: ReconcileContext,
    config: DriverConfig,
    failures: Mutex<HashMap<(String, String), u32>>,
    pending: Mutex<HashSet<(String, String)>>,
    /// Reconciles running right now (drained on shutdown).
    in_flight: AtomicUsize,
}

fn key_of<K: Resource>(obj: &K) -> (String, String) {
    (obj.namespace().unwrap_or_default(), obj.name_any())
}

async fn patch_finalizers<K: Reconcilable>(
    api: &Api<K>,
    name: &str,
    finalizers: &[String],
    resource_version: Option<&str>,
) -> Result<(), ReconcileError> {
    // Merge patch guarded by resourceVersion: a concurrent change makes it fail and retry.
    let patch = serde_json::json!({
        "metadata": {"finalizers": finalizers, "resourceVersion": resource_version}
    });
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
        .map_err(|e| ReconcileError::new(format!("failed to update finalizers: {e}")))
}

/// Returns the requeue delay (`None` = wait for the next change).
async fn reconcile_one<K, R>(
    obj: Arc<K>,
    state: Arc<DriverState<R>>,
) -> Result<Option<Duration>, ReconcileError>
where
    K: Reconcilable<Scope = k8s_openapi::NamespaceResourceScope>,
    R: Reconciler<K>,
{
    let cfg = &state.config;
    let key = key_of(obj.as_ref());
    state.pending.lock().map(|mut p| p.remove(&key)).ok();
    let queue = NameLabel {
        name: cfg.controller.clone(),
    };
    let depth = state.pending.lock().map(|p| p.len()).unwrap_or(0);
    state
        .ctx
        .metrics
        .workqueue_depth
        .get_or_create(&queue)
        .set(depth as i64);

    let api: Api<K> = Api::namespaced(state.ctx.client.clone(), &key.0);
    let labels = ObjectLabels {
        kind: cfg.kind.clone(),
        name: key.1.clone(),
        namespace: key.0.clone(),
    };
    let finalizers = obj.finalizers().to_vec();
    let uses_finalizer = state.reconciler.uses_finalizer();

    if obj.meta().deletion_timestamp.is_some() {
        if uses_finalizer && finalizers.iter().any(|f| f == FINALIZER) {
            state
                .reconciler
                .cleanup(obj.clone(), state.ctx.clone())
                .await?;
            let rest: Vec<String> = finalizers.into_iter().filter(|f| f != FINALIZER).collect();
            patch_finalizers(&api, &key.1, &rest, obj.meta().resource_version.as_deref()).await?;
        }
        state.ctx.metrics.delete_object(&labels);
        tracing::info!("object deleted, finalizer removed");
        return Ok(None);
    }

    if obj.suspended() {
        tracing::info!("Reconciliation is suspended for this object");
        return Ok(None);
    }

    if uses_finalizer
        && state.reconciler.adds_finalizer(&obj)
        && !finalizers.iter().any(|f| f == FINALIZER)
    {
        let mut with = finalizers.clone();
        with.push(FINALIZER.to_string());
        patch_finalizers(&api, &key.1, &with, obj.meta().resource_version.as_deref()).await?;
    }

    let outcome = state
        .reconciler
        .reconcile(obj.clone(), state.ctx.clone())
        .await?;
    Ok(match outcome {
        Outcome::RequeueAtInterval => obj
            .interval()
            .filter(|i| !i.is_zero())
            .map(|i| jittered(i, cfg.jitter_percentage)),
        Outcome::RequeueAfter(d) => Some(d),
        Outcome::AwaitChange => None,
    })
}

/// Sees every event of the driver's watch, after the cache has taken it in: one watch per kind
/// feeds the reconcile loop and whatever else follows those objects (the Readiness stream, an
/// index of sources), instead of one watch each.
pub type WatchTap<K> = Arc<dyn Fn(&watcher::Event<K>) + Send + Sync>;

/// Runs one controller loop until `shutdown` resolves.
///
/// `extra_triggers` enqueues objects for reasons other than their own changes (e.g. artifact
/// events); `taps` see every event of the driver's watch.
pub async fn run<K, R>(
    client: Client,
    config: DriverConfig,
    reconciler: R,
    metrics: Metrics,
    extra_triggers: Option<BoxStream<'static, ObjectRef<K>>>,
    taps: Vec<WatchTap<K>>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) where
    K: Reconcilable<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default + Eq + Hash + Clone,
    R: Reconciler<K>,
{
    let api: Api<K> = match &config.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut wc = watcher::Config::default().any_semantic();
    if !config.label_selector.is_empty() {
        wc = wc.labels(&config.label_selector);
    }
    metrics.register_controller(&config.controller, config.concurrency);
    let state = Arc::new(DriverState {
        reconciler,
        ctx: ReconcileContext {
            client: client.clone(),
            metrics: metrics.clone(),
            controller: config.controller.clone(),
        },
        config: config.clone(),
        failures: Mutex::new(HashMap::new()),
        pending: Mutex::new(HashSet::new()),
        in_flight: AtomicUsize::new(0),
    });

    let (reader, writer) = reflector::store();
    let trigger_state = state.clone();
    let triggers = watcher(api, wc)
        .default_backoff()
        // No reconciler reads managedFields or `kubectl apply`'s copy of the whole object (and
        // objects are only ever patched, never replaced): not keeping them makes the cached
        // objects smaller, about half for objects created with client-side `kubectl apply`.
        .modify(|obj: &mut K| {
            obj.managed_fields_mut().clear();
            obj.annotations_mut().remove(LAST_APPLIED_ANNOTATION);
        })
        .reflect(writer)
        .inspect(move |event| {
            if let Ok(event) = event {
                for tap in &taps {
                    tap(event);
                }
            }
        })
        .applied_objects()
        .predicate_filter(trigger_hash, Default::default())
        .inspect(move |res| {
            if let Ok(obj) = res {
                let queue = NameLabel {
                    name: trigger_state.config.controller.clone(),
                };
                trigger_state
                    .ctx
                    .metrics
                    .workqueue_adds
                    .get_or_create(&queue)
                    .inc();
                if let Ok(mut p) = trigger_state.pending.lock() {
                    p.insert(key_of(obj));
                    trigger_state
                        .ctx
                        .metrics
                        .workqueue_depth
                        .get_or_create(&queue)
                        .set(p.len() as i64);
                }
            }
        });

    let mut controller = Controller::for_stream(triggers, reader)
        .with_config(kube::runtime::controller::Config::default().concurrency(config.concurrency));
    if let Some(extra) = extra_triggers {
        controller = controller.reconcile_on(extra);
    }
    let controller_name = config.controller.clone();
    let shutdown = shutdown.shared();
    let drain_state = state.clone();
    let drained = {
        let shutdown = shutdown.clone();
        async move {
            shutdown.await;
            // Let in-flight reconciles finish (bounded), then stop even if kube-runtime is
            // still waiting on a watch that cannot make progress (e.g. a missing CRD).
            let deadline = Instant::now() + SHUTDOWN_GRACE;
            while drain_state.in_flight.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let running = controller
        .graceful_shutdown_on(shutdown)
        .run(
            move |obj: Arc<K>, state: Arc<DriverState<R>>| {
                let cfg = state.config.clone();
                let span = tracing::info_span!(
                    "reconcile",
                    controller = %cfg.controller,
                    controllerGroup = %cfg.group,
                    controllerKind = %cfg.kind,
                    name = %obj.name_any(),
                    namespace = %obj.namespace().unwrap_or_default(),
                    reconcileID = %new_reconcile_id(),
                );
                async move {
                    let worker = ControllerLabel { controller: cfg.controller.clone() };
                    state.ctx.metrics.active_workers.get_or_create(&worker).inc();
                    state.in_flight.fetch_add(1, Ordering::SeqCst);
                    let started = Instant::now();
                    let key = key_of(obj.as_ref());
                    let labels = ObjectLabels {
                        kind: cfg.kind.clone(),
                        name: key.1.clone(),
                        namespace: key.0.clone(),
                    };
                    let deleted = obj.meta().deletion_timestamp.is_some();
                    let result = reconcile_one(obj, state.clone()).await;
                    let elapsed = started.elapsed().as_secs_f64();
                    state.ctx.metrics.active_workers.get_or_create(&worker).dec();
                    state.in_flight.fetch_sub(1, Ordering::SeqCst);
                    if !deleted {
                        state.ctx.metrics.observe_reconcile(&labels, &cfg.controller, elapsed);
                    }
                    let kind = match &result {
                        Err(e) => {
                            tracing::error!(error = %e.message, "Reconciler error");
                            ReconcileResult::Error
                        }
                        Ok(Some(_)) => ReconcileResult::RequeueAfter,
                        Ok(None) => ReconcileResult::Success,
                    };
                    state.ctx.metrics.count_result(&cfg.controller, kind);
                    if result.is_ok() {
                        state.failures.lock().map(|mut f| f.remove(&key)).ok();
                    }
                    result.map(|delay| match delay {
                        Some(d) => Action::requeue(d),
                        None => Action::await_change(),
                    })
                }
                .instrument(span)
            },
            |obj: Arc<K>, _err: &ReconcileError, state: Arc<DriverState<R>>| {
                let key = key_of(obj.as_ref());
                let failures = state
                    .failures
                    .lock()
                    .map(|mut f| {
                        let n = f.entry(key).or_insert(0);
                        let current = *n;
                        *n = n.saturating_add(1);
                        current
                    })
                    .unwrap_or(0);
                Action::requeue(backoff_delay(
                    failures,
                    state.config.min_retry_delay,
                    state.config.max_retry_delay,
                ))
            },
            state.clone(),
        )
        .for_each(|res| {
            if let Err(e) = res {
                match e {
                    kube::runtime::controller::Error::ReconcilerFailed(_, _) => {}
                    other => tracing::debug!(controller = %controller_name, error = %other, "controller event"),
                }
            }
            futures::future::ready(())
        });
    tokio::select! {
        _ = running => {}
        _ = drained => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_min_to_max() {
        let min = Duration::from_millis(750);
        let max = Duration::from_secs(900);
        assert_eq!(backoff_delay(0, min, max), Duration::from_millis(750));
        assert_eq!(backoff_delay(1, min, max), Duration::from_millis(1500));
        assert_eq!(backoff_delay(3, min, max), Duration::from_millis(6000));
        assert_eq!(backoff_delay(20, min, max), max);
        assert_eq!(backoff_delay(u32::MAX, min, max), max);
    }

    #[test]
    fn jitter_stays_within_percentage() {
        let base = Duration::from_secs(600);
        for _ in 0..1000 {
            let j = jittered(base, 5);
            assert!(
                j >= Duration::from_secs(570) && j <= Duration::from_secs(630),
                "{j:?}"
            );
        }
        assert_eq!(jittered(base, 0), base);
    }

    #[test]
    fn reconcile_ids_are_uuids() {
        let id = new_reconcile_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id.matches('-').count(), 4);
        assert_ne!(id, new_reconcile_id());
    }
}
