//! `spec.chart`: the HelmChart a HelmRelease's chart template describes, kept in the source's
//! namespace under the name `<namespace>-<name>` by server-side apply, and deleted when the
//! HelmRelease switches to `chartRef`, moves the chart to another namespace, or is deleted.
//!
//! Upstream's rules (helm-controller `internal/reconcile/helmchart_template.go`): the chart is
//! applied with the HelmRelease's owner labels (`helm.toolkit.fluxcd.io/name|namespace`) and the
//! template's own labels and annotations; `status.helmChart` names it once the apply
//! succeeded; a chart named in `status.helmChart` that is no longer the desired one goes first.
//! A suspended HelmRelease never deletes its chart.

use ferroflux_api::helmrelease::HelmReleaseStatus;
use ferroflux_api::{HelmChart, HelmRelease};
use ferroflux_runtime::events::{EventRecorder, Severity};
use ferroflux_ssa::{Action, ApplyOptions, Owner, ResourceManager};
use kube::api::DeleteParams;
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::{Map, Value, json};

use crate::helmrelease::{FIELD_MANAGER, GROUP};

/// Why the template could not be reconciled.
#[derive(Debug, PartialEq, Eq)]
pub enum TemplateError {
    /// `--no-cross-namespace-refs` forbids the chart's namespace (terminal: AccessDenied).
    AccessDenied(String),
    /// The apply or the deletion failed (retried).
    Failed(String),
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TemplateError::AccessDenied(m) | TemplateError::Failed(m) => f.write_str(m),
        }
    }
}

/// Namespace of the HelmChart a template makes: the source's namespace, else the HelmRelease's.
pub fn chart_namespace(obj: &HelmRelease) -> String {
    obj.spec
        .chart
        .as_ref()
        .and_then(|c| c.spec.as_ref())
        .and_then(|s| s.source_ref.as_ref())
        .and_then(|r| r.namespace.clone())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| obj.namespace().unwrap_or_default())
}

/// `<namespace>/<name>` of the HelmChart the template of `obj` makes.
pub fn chart_ref(obj: &HelmRelease) -> String {
    format!("{}/{}", chart_namespace(obj), obj.helm_chart_name())
}

fn cross_namespace_denied(obj: &HelmRelease, ns: &str, name: &str) -> Option<String> {
    (ns != obj.namespace().unwrap_or_default()).then(|| {
        format!(
            "can't access 'HelmChart/{ns}/{name}', cross-namespace references have been blocked"
        )
    })
}

/// The HelmChart object built from the template, as upstream builds it (no owner labels yet).
pub fn build_chart(obj: &HelmRelease) -> Option<Value> {
    let template = obj.spec.chart.as_ref()?;
    let spec = template.spec.as_ref()?;
    let mut s = Map::new();
    s.insert(
        "chart".into(),
        json!(spec.chart.clone().unwrap_or_default()),
    );
    if let Some(v) = spec.version.as_ref().filter(|v| !v.is_empty()) {
        s.insert("version".into(), json!(v));
    }
    if let Some(r) = &spec.source_ref {
        s.insert(
            "sourceRef".into(),
            json!({"kind": r.kind.as_str(), "name": r.name}),
        );
    }
    // the template's interval, else the HelmRelease's
    let interval = spec
        .interval
        .as_ref()
        .or(obj.spec.interval.as_ref())
        .map(|d| serde_json::to_value(d).unwrap_or(Value::Null))
        .unwrap_or(Value::Null);
    if !interval.is_null() {
        s.insert("interval".into(), interval);
    }
    if let Some(rs) = &spec.reconcile_strategy {
        s.insert(
            "reconcileStrategy".into(),
            serde_json::to_value(rs).unwrap_or(Value::Null),
        );
    }
    if let Some(files) = spec.values_files.as_ref().filter(|f| !f.is_empty()) {
        s.insert("valuesFiles".into(), json!(files));
    }
    if spec.ignore_missing_values_files.unwrap_or(false) {
        s.insert("ignoreMissingValuesFiles".into(), json!(true));
    }
    if let Some(v) = &spec.verify {
        let mut verify = Map::new();
        verify.insert(
            "provider".into(),
            v.provider
                .as_ref()
                .map(|p| serde_json::to_value(p).unwrap_or(Value::Null))
                .unwrap_or_else(|| json!("cosign")),
        );
        if let Some(r) = &v.secret_ref {
            verify.insert("secretRef".into(), json!({"name": r.name}));
        }
        s.insert("verify".into(), Value::Object(verify));
    }
    let mut meta = Map::new();
    meta.insert("name".into(), json!(obj.helm_chart_name()));
    meta.insert("namespace".into(), json!(chart_namespace(obj)));
    if let Some(m) = &template.metadata {
        if let Some(l) = m.labels.as_ref().filter(|l| !l.is_empty()) {
            meta.insert("labels".into(), json!(l));
        }
        if let Some(a) = m.annotations.as_ref().filter(|a| !a.is_empty()) {
            meta.insert("annotations".into(), json!(a));
        }
    }
    Some(json!({
        "apiVersion": HelmChart::api_version(&()),
        "kind": HelmChart::kind(&()),
        "metadata": meta,
        "spec": s,
    }))
}

/// Reconciles the chart template of `obj` into its HelmChart, updating `status.helmChart`:
/// a stale chart (another name/namespace, or the HelmRelease now uses `chartRef`) is deleted,
/// then the desired one applied (when `spec.chart` is set).
pub async fn reconcile(
    obj: &HelmRelease,
    client: &Client,
    status: &mut HelmReleaseStatus,
    no_cross_namespace_refs: bool,
    recorder: &EventRecorder,
) -> Result<(), TemplateError> {
    let desired = obj.spec.chart.as_ref().map(|_| chart_ref(obj));
    let current = status.helm_chart.clone().filter(|c| !c.is_empty());
    if current.is_some() && current != desired {
        delete(obj, client, status, no_cross_namespace_refs, recorder).await?;
    }
    let Some(chart) = build_chart(obj) else {
        return Ok(());
    };
    let ns = chart_namespace(obj);
    let name = obj.helm_chart_name();
    if no_cross_namespace_refs && let Some(m) = cross_namespace_denied(obj, &ns, &name) {
        return Err(TemplateError::AccessDenied(m));
    }
    let manager = ResourceManager::new(
        client.clone(),
        Owner {
            field_manager: FIELD_MANAGER.to_string(),
            group: GROUP.to_string(),
        },
    );
    let mut objects = [chart];
    manager.set_owner_labels(
        &mut objects,
        &obj.name_any(),
        &obj.namespace().unwrap_or_default(),
    );
    let [chart] = objects;
    let source = obj
        .spec
        .chart
        .as_ref()
        .and_then(|c| c.spec.as_ref())
        .and_then(|s| s.source_ref.as_ref())
        .map(|r| format!("{}/{ns}/{}", r.kind.as_str(), r.name))
        .unwrap_or_default();
    let entry = match manager.apply(chart, &ApplyOptions::default()).await {
        Ok(e) => e,
        Err(e) => {
            let msg = format!("failed to run server-side apply: {e}");
            recorder
                .publish(
                    obj,
                    Severity::Trace,
                    "HelmChartSyncErr",
                    &msg,
                    &Default::default(),
                )
                .await;
            return Err(TemplateError::Failed(msg));
        }
    };
    match entry.action {
        Action::Created | Action::Configured => {
            let verb = entry.action.as_str();
            let msg = format!("{} {verb} with SourceRef '{source}'", entry.subject);
            tracing::info!("{msg}");
            let mut title = verb.to_string();
            if let Some(first) = title.get_mut(0..1) {
                first.make_ascii_uppercase();
            }
            recorder
                .publish(
                    obj,
                    Severity::Trace,
                    &format!("HelmChart{title}"),
                    &msg,
                    &Default::default(),
                )
                .await;
        }
        _ => tracing::debug!("{} with SourceRef '{source}' is in-sync", entry.subject),
    }
    status.helm_chart = Some(format!("{ns}/{name}"));
    Ok(())
}

/// Deletes the HelmChart named in `status.helmChart` (a suspended HelmRelease keeps it) and
/// clears the field.
pub async fn delete(
    obj: &HelmRelease,
    client: &Client,
    status: &mut HelmReleaseStatus,
    no_cross_namespace_refs: bool,
    recorder: &EventRecorder,
) -> Result<(), TemplateError> {
    if obj.spec.suspend.unwrap_or(false) {
        return Ok(());
    }
    let Some(current) = status.helm_chart.clone().filter(|c| !c.is_empty()) else {
        return Ok(());
    };
    let (ns, name) = current
        .split_once('/')
        .map(|(n, m)| (n.to_string(), m.to_string()))
        .unwrap_or_else(|| (obj.namespace().unwrap_or_default(), current.clone()));
    if no_cross_namespace_refs && let Some(m) = cross_namespace_denied(obj, &ns, &name) {
        return Err(TemplateError::AccessDenied(m));
    }
    let api = Api::<HelmChart>::namespaced(client.clone(), &ns);
    match api.delete(&name, &DeleteParams::default()).await {
        Ok(_) => {
            recorder
                .publish(
                    obj,
                    Severity::Trace,
                    "HelmChartDeleted",
                    &format!("deleted HelmChart '{current}'"),
                    &Default::default(),
                )
                .await;
        }
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        Err(e) => {
            return Err(TemplateError::Failed(format!(
                "failed to delete HelmChart '{current}': {e}"
            )));
        }
    }
    status.helm_chart = None;
    Ok(())
}

/// Upstream's readiness rule for a chart source: the latest generation observed, not stalled,
/// an artifact present. `Err(message)` says why not, as upstream's `isReady` words it.
pub fn source_ready(
    kind: &str,
    namespace: &str,
    name: &str,
    generation: Option<i64>,
    observed_generation: Option<i64>,
    conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
    has_artifact: bool,
) -> Result<(), String> {
    use ferroflux_api::conditions as cond;
    let not_ready = |why: &str| Err(format!("{kind} '{namespace}/{name}' is not ready: {why}"));
    if generation.unwrap_or(0) != observed_generation.unwrap_or(0) {
        let why = cond::get(conditions, cond::READY)
            .filter(|c| c.status == cond::FALSE)
            .map(|c| c.message.clone())
            .unwrap_or_else(|| "latest generation of object has not been reconciled".into());
        return not_ready(&why);
    }
    if let Some(c) = cond::get(conditions, cond::STALLED).filter(|c| c.status == cond::TRUE) {
        return not_ready(&c.message);
    }
    if !has_artifact {
        return not_ready("does not have an artifact");
    }
    Ok(())
}

/// The HelmChart of a template (named in `status.helmChart`), checked ready.
/// `Err((reason, message))` with upstream's reasons.
pub async fn template_source(
    client: &Client,
    helm_chart: Option<&str>,
) -> Result<(HelmChart, String), (String, String)> {
    use ferroflux_api::conditions::{helm_reason, reason};
    let Some(current) = helm_chart.filter(|c| !c.is_empty()) else {
        return Err((
            reason::ARTIFACT_FAILED.into(),
            "could not get Source object: the HelmChart of the chart template has not been created"
                .into(),
        ));
    };
    let (ns, name) = current.split_once('/').unwrap_or(("", current));
    let chart = match Api::<HelmChart>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
    {
        Ok(Some(c)) => c,
        Ok(None) => {
            return Err((
                reason::ARTIFACT_FAILED.into(),
                format!("could not get Source object: HelmChart '{current}' not found"),
            ));
        }
        Err(e) => {
            return Err((
                reason::ARTIFACT_FAILED.into(),
                format!("could not get Source object: {e}"),
            ));
        }
    };
    let st = chart.status.clone().unwrap_or_default();
    source_ready(
        "HelmChart",
        ns,
        name,
        chart.meta().generation,
        st.observed_generation,
        st.conditions.as_deref().unwrap_or_default(),
        st.artifact.is_some(),
    )
    .map_err(|m| (helm_reason::SOURCE_NOT_READY.to_string(), m))?;
    Ok((chart, current.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hr(v: Value) -> HelmRelease {
        serde_json::from_value(v).expect("HelmRelease")
    }

    #[test]
    fn chart_from_template_as_upstream_builds_it() {
        let obj = hr(json!({
            "apiVersion": "helm.toolkit.fluxcd.io/v2",
            "kind": "HelmRelease",
            "metadata": {"name": "podinfo", "namespace": "apps"},
            "spec": {
                "interval": "10m",
                "chart": {
                    "metadata": {"labels": {"team": "a"}, "annotations": {"note": "b"}},
                    "spec": {
                        "chart": "podinfo",
                        "version": "6.x",
                        "sourceRef": {"kind": "HelmRepository", "name": "charts", "namespace": "flux-system"},
                        "reconcileStrategy": "Revision",
                        "valuesFiles": ["values.yaml", "values-prod.yaml"],
                        "verify": {"provider": "cosign", "secretRef": {"name": "keys"}}
                    }
                }
            }
        }));
        let c = build_chart(&obj).expect("chart");
        assert_eq!(c["metadata"]["name"], "apps-podinfo");
        assert_eq!(c["metadata"]["namespace"], "flux-system");
        assert_eq!(c["metadata"]["labels"]["team"], "a");
        assert_eq!(c["metadata"]["annotations"]["note"], "b");
        assert_eq!(c["spec"]["chart"], "podinfo");
        assert_eq!(c["spec"]["version"], "6.x");
        assert_eq!(
            c["spec"]["sourceRef"],
            json!({"kind": "HelmRepository", "name": "charts"})
        );
        assert_eq!(c["spec"]["interval"], "10m");
        assert_eq!(c["spec"]["reconcileStrategy"], "Revision");
        assert_eq!(
            c["spec"]["valuesFiles"],
            json!(["values.yaml", "values-prod.yaml"])
        );
        assert_eq!(
            c["spec"]["verify"],
            json!({"provider": "cosign", "secretRef": {"name": "keys"}})
        );
        assert_eq!(chart_ref(&obj), "flux-system/apps-podinfo");
        assert_eq!(
            cross_namespace_denied(&obj, "flux-system", "apps-podinfo").as_deref(),
            Some(
                "can't access 'HelmChart/flux-system/apps-podinfo', cross-namespace references have been blocked"
            )
        );
    }

    #[test]
    fn template_interval_wins_and_namespace_defaults_to_the_release() {
        let obj = hr(json!({
            "apiVersion": "helm.toolkit.fluxcd.io/v2",
            "kind": "HelmRelease",
            "metadata": {"name": "web", "namespace": "apps"},
            "spec": {
                "interval": "10m",
                "chart": {"spec": {
                    "chart": "./charts/web",
                    "interval": "1m",
                    "sourceRef": {"kind": "GitRepository", "name": "repo"}
                }}
            }
        }));
        let c = build_chart(&obj).expect("chart");
        assert_eq!(c["metadata"]["namespace"], "apps");
        assert_eq!(c["spec"]["interval"], "1m");
        assert!(c["spec"].get("version").is_none());
        assert!(c["metadata"].get("labels").is_none());
        assert!(cross_namespace_denied(&obj, "apps", "apps-web").is_none());
    }

    #[test]
    fn readiness_words_as_upstream() {
        let ready = source_ready("HelmChart", "ns", "c", Some(2), Some(1), &[], true);
        assert_eq!(
            ready.unwrap_err(),
            "HelmChart 'ns/c' is not ready: latest generation of object has not been reconciled"
        );
        let ready = source_ready("HelmChart", "ns", "c", Some(1), Some(1), &[], false);
        assert_eq!(
            ready.unwrap_err(),
            "HelmChart 'ns/c' is not ready: does not have an artifact"
        );
        assert!(source_ready("HelmChart", "ns", "c", Some(1), Some(1), &[], true).is_ok());
    }
}
