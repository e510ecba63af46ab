//! Prometheus metrics with upstream Flux's names and labels.
//!
//! `gotk_reconcile_duration_seconds{kind,name,namespace}` is the Flux metric; the
//! `controller_runtime_*`, `workqueue_*` and `leader_election_master_status` series mirror
//! controller-runtime's, with the controller (and queue) named after the lowercase kind.
//! Served in the Prometheus 0.0.4 text format, as controller-runtime does for a plain scrape.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{
    Histogram, exponential_buckets, exponential_buckets_range,
};
use prometheus_client::registry::Registry;

/// Labels of the Flux per-object metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabels {
    pub kind: String,
    pub name: String,
    pub namespace: String,
}

/// Labels of `gotk_reconcile_condition`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConditionLabels {
    pub kind: String,
    pub name: String,
    pub namespace: String,
    #[prometheus(flatten)]
    pub condition: ConditionTypeStatus,
}

/// The `type` and `status` labels of `gotk_reconcile_condition`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConditionTypeStatus {
    pub r#type: String,
    pub status: String,
}

/// `controller` + `result` labels of `controller_runtime_reconcile_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerResult {
    pub controller: String,
    pub result: String,
}

/// `controller` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabel {
    pub controller: String,
}

/// `name` label of the workqueue and leader-election series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NameLabel {
    pub name: String,
}

/// Outcome of one reconcile, as controller-runtime labels it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReconcileResult {
    Success,
    Error,
    Requeue,
    RequeueAfter,
}

impl ReconcileResult {
    pub fn as_str(self) -> &'static str {
        match self {
            ReconcileResult::Success => "success",
            ReconcileResult::Error => "error",
            ReconcileResult::Requeue => "requeue",
            ReconcileResult::RequeueAfter => "requeue_after",
        }
    }
}

type GaugeF = Gauge<f64, AtomicU64>;

/// Labels of `gotk_cache_events_total` (source-controller's Helm index cache): `event_type`
/// `cache_hit` or `cache_miss`, and the HelmRepository whose index was looked up.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheEventLabels {
    pub event_type: String,
    pub name: String,
    pub namespace: String,
}

/// Every metric a controller process exports; cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    pub reconcile_duration: Family<ObjectLabels, Histogram, fn() -> Histogram>,
    pub reconcile_condition: Family<ConditionLabels, GaugeF>,
    pub suspend_status: Family<ObjectLabels, GaugeF>,
    pub reconcile_total: Family<ControllerResult, Counter>,
    pub reconcile_errors: Family<ControllerLabel, Counter>,
    pub reconcile_time: Family<ControllerLabel, Histogram, fn() -> Histogram>,
    pub active_workers: Family<ControllerLabel, Gauge>,
    pub max_concurrent_reconciles: Family<ControllerLabel, Gauge>,
    pub workqueue_depth: Family<NameLabel, Gauge>,
    pub workqueue_adds: Family<NameLabel, Counter>,
    pub leader_election_master_status: Family<NameLabel, Gauge>,
    pub cache_events: Family<CacheEventLabels, Counter>,
}

fn gotk_duration_histogram() -> Histogram {
    // Upstream: prometheus.ExponentialBucketsRange(10e-3, 1800, 10).
    Histogram::new(exponential_buckets_range(0.01, 1800.0, 10))
}

fn reconcile_time_histogram() -> Histogram {
    // controller-runtime's reconcile_time_seconds buckets start at 5ms.
    Histogram::new(exponential_buckets(0.005, 2.0, 17))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let reconcile_duration: Family<ObjectLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(gotk_duration_histogram);
        registry.register(
            "gotk_reconcile_duration_seconds",
            "The duration in seconds of a GitOps Toolkit resource reconciliation.",
            reconcile_duration.clone(),
        );
        let reconcile_condition = Family::<ConditionLabels, GaugeF>::default();
        registry.register(
            "gotk_reconcile_condition",
            "The current condition status of a GitOps Toolkit resource reconciliation.",
            reconcile_condition.clone(),
        );
        let suspend_status = Family::<ObjectLabels, GaugeF>::default();
        registry.register(
            "gotk_suspend_status",
            "The current suspend status of a GitOps Toolkit resource.",
            suspend_status.clone(),
        );
        // prometheus-client appends `_total` to counters itself.
        let reconcile_total = Family::<ControllerResult, Counter>::default();
        registry.register(
            "controller_runtime_reconcile",
            "Total number of reconciliations per controller",
            reconcile_total.clone(),
        );
        let reconcile_errors = Family::<ControllerLabel, Counter>::default();
        registry.register(
            "controller_runtime_reconcile_errors",
            "Total number of reconciliation errors per controller",
            reconcile_errors.clone(),
        );
        let reconcile_time: Family<ControllerLabel, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(reconcile_time_histogram);
        registry.register(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller",
            reconcile_time.clone(),
        );
        let active_workers = Family::<ControllerLabel, Gauge>::default();
        registry.register(
            "controller_runtime_active_workers",
            "Number of currently used workers per controller",
            active_workers.clone(),
        );
        let max_concurrent_reconciles = Family::<ControllerLabel, Gauge>::default();
        registry.register(
            "controller_runtime_max_concurrent_reconciles",
            "Maximum number of concurrent reconciles per controller",
            max_concurrent_reconciles.clone(),
        );
        let workqueue_depth = Family::<NameLabel, Gauge>::default();
        registry.register(
            "workqueue_depth",
            "Current depth of workqueue",
            workqueue_depth.clone(),
        );
        let workqueue_adds = Family::<NameLabel, Counter>::default();
        registry.register(
            "workqueue_adds",
            "Total number of adds handled by workqueue",
            workqueue_adds.clone(),
        );
        let leader_election_master_status = Family::<NameLabel, Gauge>::default();
        registry.register(
            "leader_election_master_status",
            "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master. 'name' is the string used to identify the lease. Please make sure to group by name.",
            leader_election_master_status.clone(),
        );
        let cache_events = Family::<CacheEventLabels, Counter>::default();
        registry.register(
            "gotk_cache_events",
            "Total number of cache retrieval events for a Gitops Toolkit resource reconciliation.",
            cache_events.clone(),
        );
        Self {
            registry: Arc::new(registry),
            cache_events,
            reconcile_duration,
            reconcile_condition,
            suspend_status,
            reconcile_total,
            reconcile_errors,
            reconcile_time,
            active_workers,
            max_concurrent_reconciles,
            workqueue_depth,
            workqueue_adds,
            leader_election_master_status,
        }
    }

    /// Renders every series in the Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }

    /// Records the duration of one reconcile of an object.
    pub fn observe_reconcile(&self, object: &ObjectLabels, controller: &str, seconds: f64) {
        self.reconcile_duration
            .get_or_create(object)
            .observe(seconds);
        self.reconcile_time
            .get_or_create(&ControllerLabel {
                controller: controller.to_string(),
            })
            .observe(seconds);
    }

    /// Counts one reconcile result (and an error, when it is one).
    pub fn count_result(&self, controller: &str, result: ReconcileResult) {
        self.reconcile_total
            .get_or_create(&ControllerResult {
                controller: controller.to_string(),
                result: result.as_str().to_string(),
            })
            .inc();
        if result == ReconcileResult::Error {
            self.reconcile_errors
                .get_or_create(&ControllerLabel {
                    controller: controller.to_string(),
                })
                .inc();
        }
    }

    /// Counts one cache lookup (`cache_hit` / `cache_miss`) for an object, as upstream's
    /// `IncCacheEvents`.
    pub fn count_cache_event(&self, event_type: &str, name: &str, namespace: &str) {
        self.cache_events
            .get_or_create(&CacheEventLabels {
                event_type: event_type.to_string(),
                name: name.to_string(),
                namespace: namespace.to_string(),
            })
            .inc();
    }

    /// Removes the per-object series of a deleted object, as upstream does.
    pub fn delete_object(&self, object: &ObjectLabels) {
        self.reconcile_duration.remove(object);
        self.suspend_status.remove(object);
    }

    /// Initialises the per-controller series so they are visible before the first reconcile.
    pub fn register_controller(&self, controller: &str, concurrency: u16) {
        let label = ControllerLabel {
            controller: controller.to_string(),
        };
        self.max_concurrent_reconciles
            .get_or_create(&label)
            .set(i64::from(concurrency));
        drop(self.active_workers.get_or_create(&label));
        drop(self.reconcile_errors.get_or_create(&label));
        for result in [
            ReconcileResult::Success,
            ReconcileResult::Error,
            ReconcileResult::Requeue,
            ReconcileResult::RequeueAfter,
        ] {
            drop(self.reconcile_total.get_or_create(&ControllerResult {
                controller: controller.to_string(),
                result: result.as_str().to_string(),
            }));
        }
        let queue = NameLabel {
            name: controller.to_string(),
        };
        drop(self.workqueue_depth.get_or_create(&queue));
        drop(self.workqueue_adds.get_or_create(&queue));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_upstream_names_and_buckets() {
        let m = Metrics::new();
        m.register_controller("gitrepository", 2);
        let obj = ObjectLabels {
            kind: "GitRepository".into(),
            name: "podinfo".into(),
            namespace: "flux-system".into(),
        };
        m.observe_reconcile(&obj, "gitrepository", 0.2);
        m.count_result("gitrepository", ReconcileResult::Error);
        let text = m.render();
        assert!(text.contains(
            "gotk_reconcile_duration_seconds_bucket{kind=\"GitRepository\",name=\"podinfo\",namespace=\"flux-system\",le=\"0.01\"} 0"
        ), "{text}");
        assert!(text.contains("controller_runtime_reconcile_total{controller=\"gitrepository\",result=\"error\"} 1"), "{text}");
        assert!(
            text.contains(
                "controller_runtime_reconcile_errors_total{controller=\"gitrepository\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "controller_runtime_max_concurrent_reconciles{controller=\"gitrepository\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains("workqueue_depth{name=\"gitrepository\"} 0"),
            "{text}"
        );
        m.delete_object(&obj);
        assert!(!m.render().contains("name=\"podinfo\""));
    }

    #[test]
    fn counts_cache_events_as_upstream() {
        let m = Metrics::new();
        m.count_cache_event("cache_miss", "podinfo", "default");
        m.count_cache_event("cache_hit", "podinfo", "default");
        m.count_cache_event("cache_hit", "podinfo", "default");
        let text = m.render();
        assert!(
            text.contains("gotk_cache_events_total{event_type=\"cache_hit\",name=\"podinfo\",namespace=\"default\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("gotk_cache_events_total{event_type=\"cache_miss\",name=\"podinfo\",namespace=\"default\"} 1"),
            "{text}"
        );
    }
}
