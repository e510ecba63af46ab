//! Alert: which events an Alert selects (event sources, severity, inclusion and exclusion
//! lists), how its metadata is merged into the event, and the Alert reconciler.
//!
//! Alerts are static (`v1beta3`: no status, no finalizer): the reconciler only removes the
//! finalizer older versions added, with a `Migration` event, as upstream does.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ferroflux_api::Alert;
use ferroflux_api::alert::{CrossNamespaceObjectReference, EventSeverity};
use ferroflux_runtime::events::{EventRecorder, Severity};
use futures::{FutureExt, StreamExt};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::Store;
use kube::{Client, ResourceExt};

use crate::event::{EVENT_GROUP, Event};

/// How long the Alert and Provider loops may finish in-flight status updates after a shutdown
/// signal (their reconciles only patch status, so this is short).
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// The finalizer older notification-controllers put on Alerts and Providers.
pub const FINALIZER: &str = "finalizers.fluxcd.io";

/// Whether `source` (namespace already defaulted) selects the event, before label matching.
/// `Some(labels)` when the object's labels must still be checked.
pub fn source_matches<'a>(
    event: &Event,
    severity: EventSeverity,
    source: &'a CrossNamespaceObjectReference,
    namespace: &str,
) -> Option<Option<&'a BTreeMap<String, String>>> {
    let o = &event.involved_object;
    if o.namespace != namespace || o.kind != source.kind.as_str() {
        return None;
    }
    if severity == EventSeverity::Error && event.severity != "error" {
        return None;
    }
    if source.name != "*" && source.name != o.name {
        return None;
    }
    Some(source.match_labels.as_ref())
}

/// Why an Alert does not want an event, or the regex it could not compile.
#[derive(Debug, PartialEq, Eq)]
pub enum ListCheck {
    Pass,
    Drop,
}

/// Upstream's inclusion then exclusion rules. Invalid expressions are reported through
/// `invalid` (an `InvalidConfig` warning on the Alert) and skipped.
pub fn message_allowed(alert: &Alert, message: &str, invalid: &mut Vec<String>) -> ListCheck {
    let compile = |exp: &str, invalid: &mut Vec<String>, what: &str| match regex::Regex::new(exp) {
        Ok(r) => Some(r),
        Err(_) => {
            invalid.push(format!("failed to compile {what} regex: {exp}"));
            None
        }
    };
    if let Some(list) = alert.spec.inclusion_list.as_ref().filter(|l| !l.is_empty()) {
        let mut included = false;
        for exp in list {
            if let Some(r) = compile(exp, invalid, "inclusion")
                && r.is_match(message)
            {
                included = true;
                break;
            }
        }
        if !included {
            return ListCheck::Drop;
        }
    }
    if let Some(list) = alert.spec.exclusion_list.as_ref() {
        for exp in list {
            if let Some(r) = compile(exp, invalid, "exclusion")
                && r.is_match(message)
            {
                return ListCheck::Drop;
            }
        }
    }
    ListCheck::Pass
}

/// Where a merged metadata key came from (upstream's wording, used in the conflict warning).
const FROM_EVENT_GROUP: &str = "involved object annotations";
const FROM_ALERT_METADATA: &str = "Alert object .spec.eventMetadata";
const FROM_ALERT_SUMMARY: &str = "Alert object .spec.summary";
const FROM_OBJECT_GROUP: &str = "involved object controller metadata";

/// The message of the `MetadataAppendFailed` warning.
pub const CONFLICT_MESSAGE: &str = "metadata key conflicts detected (please refer to the Alert API docs and Flux RFC 0008 for more information)";

/// Merges the event's metadata with the Alert's, lowest to highest precedence:
/// `event.toolkit.fluxcd.io/*` (prefix stripped), `spec.eventMetadata`, `spec.summary` (as
/// `summary`), `<object group>/*` (prefix stripped). Returns the keys set by more than one
/// source with those sources, comma-separated.
pub fn combine_metadata(event: &mut Event, alert: &Alert) -> BTreeMap<String, String> {
    let mut merged: BTreeMap<String, String> = BTreeMap::new();
    let mut sources: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    let event_prefix = format!("{EVENT_GROUP}/");
    for (k, v) in &event.metadata {
        if let Some(key) = k.strip_prefix(&event_prefix) {
            merged.insert(key.to_string(), v.clone());
            sources
                .entry(key.to_string())
                .or_default()
                .push(FROM_EVENT_GROUP);
        }
    }
    for (k, v) in alert.spec.event_metadata.iter().flatten() {
        merged.insert(k.clone(), v.clone());
        sources
            .entry(k.clone())
            .or_default()
            .push(FROM_ALERT_METADATA);
    }
    if let Some(summary) = alert.spec.summary.as_ref().filter(|s| !s.is_empty()) {
        merged.insert("summary".into(), summary.clone());
        sources
            .entry("summary".into())
            .or_default()
            .push(FROM_ALERT_SUMMARY);
    }
    let object_prefix = format!("{}/", event.involved_object.group());
    for (k, v) in &event.metadata {
        if let Some(key) = k.strip_prefix(&object_prefix) {
            merged.insert(key.to_string(), v.clone());
            sources
                .entry(key.to_string())
                .or_default()
                .push(FROM_OBJECT_GROUP);
        }
    }
    if !merged.is_empty() {
        event.metadata = merged;
    }
    sources
        .into_iter()
        .filter(|(_, s)| s.len() > 1)
        .map(|(k, s)| (k, s.join(", ")))
        .collect()
}

/// Lower-case plural of a Flux kind, for reading an involved object's labels.
pub fn plural(kind: &str) -> String {
    let lower = kind.to_lowercase();
    if let Some(stem) = lower.strip_suffix('y') {
        format!("{stem}ies")
    } else if lower.ends_with('s') {
        format!("{lower}es")
    } else {
        format!("{lower}s")
    }
}

/// The labels of the event's involved object (a metadata-only GET).
pub async fn involved_object_labels(
    client: &Client,
    event: &Event,
) -> Result<BTreeMap<String, String>, kube::Error> {
    let o = &event.involved_object;
    let (group, version) = match o.api_version.rsplit_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), o.api_version.clone()),
    };
    let gvk = kube::api::GroupVersionKind::gvk(&group, &version, &o.kind);
    let resource = kube::api::ApiResource::from_gvk_with_plural(&gvk, &plural(&o.kind));
    let api: Api<kube::api::DynamicObject> =
        Api::namespaced_with(client.clone(), &o.namespace, &resource);
    let meta = api.get_metadata(&o.name).await?;
    Ok(meta.metadata.labels.unwrap_or_default())
}

/// Selects the Alerts that want `event`: not suspended, an event source matching (labels read
/// from the cluster when `matchLabels` is set), inclusion and exclusion lists passed.
pub async fn alerts_for_event(
    alerts: &Store<Alert>,
    client: &Client,
    recorder: &EventRecorder,
    event: &Event,
) -> Vec<Arc<Alert>> {
    let mut out = Vec::new();
    for alert in alerts.state() {
        if alert.suspended() {
            continue;
        }
        let alert_ns = alert.namespace().unwrap_or_default();
        let severity = alert.event_severity();
        let mut matched = false;
        for source in alert.spec.event_sources.iter().flatten() {
            let ns = source
                .namespace
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| alert_ns.clone());
            let Some(labels) = source_matches(event, severity, source, &ns) else {
                continue;
            };
            let Some(want) = labels else {
                matched = true;
                break;
            };
            match involved_object_labels(client, event).await {
                Ok(have) => {
                    if want.iter().all(|(k, v)| have.get(k) == Some(v)) {
                        matched = true;
                        break;
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, alert = %alert.name_any(), "error getting the involved object");
                    recorder
                        .publish(
                            alert.as_ref(),
                            Severity::Error,
                            "SourceFetchFailed",
                            &format!(
                                "error getting source object {}",
                                event.involved_object.display()
                            ),
                            &BTreeMap::new(),
                        )
                        .await;
                }
            }
        }
        if !matched {
            continue;
        }
        let mut invalid = Vec::new();
        let verdict = message_allowed(&alert, &event.message, &mut invalid);
        for msg in invalid {
            tracing::error!(alert = %alert.name_any(), "{msg}");
            recorder
                .publish(
                    alert.as_ref(),
                    Severity::Error,
                    "InvalidConfig",
                    &msg,
                    &BTreeMap::new(),
                )
                .await;
        }
        if verdict == ListCheck::Pass {
            out.push(alert);
        }
    }
    out
}

/// The Alert reconciler: removes the legacy finalizer (event `Migration`).
#[derive(Clone)]
pub struct AlertReconciler {
    pub client: Client,
    pub recorder: EventRecorder,
}

impl AlertReconciler {
    async fn reconcile(&self, alert: Arc<Alert>) -> Result<Action, kube::Error> {
        if !alert.finalizers().iter().any(|f| f == FINALIZER) {
            return Ok(Action::await_change());
        }
        let deleting = alert.metadata.deletion_timestamp.is_some();
        if alert.suspended() && !deleting {
            tracing::info!("reconciliation is suspended for this object");
            return Ok(Action::await_change());
        }
        let api: Api<Alert> =
            Api::namespaced(self.client.clone(), &alert.namespace().unwrap_or_default());
        let rest: Vec<&String> = alert
            .finalizers()
            .iter()
            .filter(|f| *f != FINALIZER)
            .collect();
        let patch = serde_json::json!({"metadata": {
            "finalizers": rest, "resourceVersion": alert.resource_version()}});
        api.patch(
            &alert.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
        let msg = "removed finalizer from Alert to migrate to static Alert";
        tracing::info!("{msg}");
        if !deleting {
            self.recorder
                .publish(
                    alert.as_ref(),
                    Severity::Info,
                    "Migration",
                    msg,
                    &BTreeMap::new(),
                )
                .await;
        }
        Ok(Action::await_change())
    }

    /// Runs the reconciler on the objects of `stream` (the shared Alert watch) until `shutdown`.
    pub async fn run(
        self,
        store: Store<Alert>,
        stream: futures::stream::BoxStream<'static, Result<Alert, kube::runtime::watcher::Error>>,
        shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
    ) {
        let this = Arc::new(self);
        let shutdown = shutdown.shared();
        let controller = Controller::for_stream(stream, store)
            .graceful_shutdown_on(shutdown.clone())
            .run(
                |obj, ctx: Arc<AlertReconciler>| async move { ctx.reconcile(obj).await },
                |_obj, err, _ctx| {
                    tracing::error!(error = %err, "Reconciler error");
                    Action::requeue(Duration::from_secs(5))
                },
                this,
            )
            .for_each(|_| futures::future::ready(()));
        ferroflux_runtime::driver::run_until_shutdown(controller, shutdown, SHUTDOWN_GRACE).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferroflux_api::alert::AlertSpec;

    fn event(severity: &str) -> Event {
        serde_json::from_value(serde_json::json!({
            "involvedObject": {"kind": "Kustomization", "namespace": "apps", "name": "podinfo",
                               "apiVersion": "kustomize.toolkit.fluxcd.io/v1"},
            "severity": severity, "timestamp": "2026-01-01T00:00:00Z", "message": "Health check failed",
            "reason": "HealthCheckFailed",
            "metadata": {"kustomize.toolkit.fluxcd.io/revision": "main@sha1:abc",
                         "kustomize.toolkit.fluxcd.io/summary": "from object",
                         "event.toolkit.fluxcd.io/env": "prod",
                         "event.toolkit.fluxcd.io/cluster": "c1"},
            "reportingController": "kustomize-controller"
        }))
        .unwrap()
    }

    fn source(kind: &str, name: &str) -> CrossNamespaceObjectReference {
        serde_json::from_value(serde_json::json!({"kind": kind, "name": name})).unwrap()
    }

    #[test]
    fn sources_match_on_namespace_kind_name_and_severity() {
        let info = event("info");
        let err = event("error");
        let s = source("Kustomization", "*");
        assert!(source_matches(&info, EventSeverity::Info, &s, "apps").is_some());
        assert!(source_matches(&info, EventSeverity::Info, &s, "other").is_none());
        assert!(source_matches(&info, EventSeverity::Error, &s, "apps").is_none());
        assert!(source_matches(&err, EventSeverity::Error, &s, "apps").is_some());
        assert!(
            source_matches(
                &info,
                EventSeverity::Info,
                &source("Kustomization", "podinfo"),
                "apps"
            )
            .is_some()
        );
        assert!(
            source_matches(
                &info,
                EventSeverity::Info,
                &source("Kustomization", "x"),
                "apps"
            )
            .is_none()
        );
        assert!(
            source_matches(
                &info,
                EventSeverity::Info,
                &source("HelmRelease", "*"),
                "apps"
            )
            .is_none()
        );
    }

    #[test]
    fn inclusion_and_exclusion_lists() {
        let mut alert = Alert::new("a", AlertSpec::default());
        let mut invalid = Vec::new();
        assert_eq!(message_allowed(&alert, "x", &mut invalid), ListCheck::Pass);
        alert.spec.inclusion_list = Some(vec!["^Health".into(), "(".into()]);
        assert_eq!(
            message_allowed(&alert, "Health check failed", &mut invalid),
            ListCheck::Pass
        );
        assert_eq!(
            message_allowed(&alert, "applied", &mut invalid),
            ListCheck::Drop
        );
        assert_eq!(invalid, ["failed to compile inclusion regex: ("]);
        alert.spec.exclusion_list = Some(vec!["failed$".into()]);
        assert_eq!(
            message_allowed(&alert, "Health check failed", &mut invalid),
            ListCheck::Drop
        );
    }

    #[test]
    fn metadata_precedence_and_conflicts() {
        let mut alert = Alert::new("a", AlertSpec::default());
        alert.spec.event_metadata = Some(
            [
                ("env".to_string(), "staging".to_string()),
                ("team".to_string(), "x".to_string()),
            ]
            .into(),
        );
        alert.spec.summary = Some("alert summary".into());
        let mut e = event("info");
        let conflicts = combine_metadata(&mut e, &alert);
        assert_eq!(
            e.metadata,
            BTreeMap::from([
                ("cluster".to_string(), "c1".to_string()),
                ("env".to_string(), "staging".to_string()),
                ("revision".to_string(), "main@sha1:abc".to_string()),
                ("summary".to_string(), "from object".to_string()),
                ("team".to_string(), "x".to_string()),
            ])
        );
        assert_eq!(
            conflicts,
            BTreeMap::from([
                (
                    "env".to_string(),
                    "involved object annotations, Alert object .spec.eventMetadata".to_string()
                ),
                (
                    "summary".to_string(),
                    "Alert object .spec.summary, involved object controller metadata".to_string()
                ),
            ])
        );
    }

    #[test]
    fn plurals() {
        assert_eq!(plural("GitRepository"), "gitrepositories");
        assert_eq!(plural("Kustomization"), "kustomizations");
        assert_eq!(plural("ImagePolicy"), "imagepolicies");
    }
}
