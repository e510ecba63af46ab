//! Validation of built-in kinds: the object must decode as its k8s-openapi type (wrong types and
//! missing required fields are refused as kube-apiserver refuses them), plus the workload
//! selector rules.

use crate::registry::ResourceDef;
use crate::selector::LabelSelector;
use crate::status::{ApiError, ApiResult, Cause};
use serde_json::Value;

fn decode<T: serde::de::DeserializeOwned>(def: &ResourceDef, obj: &Value) -> ApiResult<()> {
    serde_json::from_value::<T>(obj.clone())
        .map(|_| ())
        .map_err(|e| {
            ApiError::bad_request(format!(
                "{kind} in version \"{v}\" cannot be handled as a {kind}: {e}",
                kind = def.kind,
                v = def.version
            ))
        })
}

fn typed(def: &ResourceDef, obj: &Value) -> ApiResult<()> {
    use k8s_openapi::api::*;
    match (def.group.as_str(), def.kind.as_str()) {
        ("", "Namespace") => decode::<core::v1::Namespace>(def, obj),
        ("", "ConfigMap") => decode::<core::v1::ConfigMap>(def, obj),
        ("", "Secret") => decode::<core::v1::Secret>(def, obj),
        ("", "ServiceAccount") => decode::<core::v1::ServiceAccount>(def, obj),
        ("", "Service") => decode::<core::v1::Service>(def, obj),
        ("", "Pod") => decode::<core::v1::Pod>(def, obj),
        ("", "PersistentVolumeClaim") => decode::<core::v1::PersistentVolumeClaim>(def, obj),
        ("", "Event") => decode::<core::v1::Event>(def, obj),
        ("apps", "Deployment") => decode::<apps::v1::Deployment>(def, obj),
        ("apps", "StatefulSet") => decode::<apps::v1::StatefulSet>(def, obj),
        ("apps", "DaemonSet") => decode::<apps::v1::DaemonSet>(def, obj),
        ("apps", "ReplicaSet") => decode::<apps::v1::ReplicaSet>(def, obj),
        ("batch", "Job") => decode::<batch::v1::Job>(def, obj),
        ("batch", "CronJob") => decode::<batch::v1::CronJob>(def, obj),
        ("networking.k8s.io", "Ingress") => decode::<networking::v1::Ingress>(def, obj),
        ("networking.k8s.io", "NetworkPolicy") => decode::<networking::v1::NetworkPolicy>(def, obj),
        ("rbac.authorization.k8s.io", "Role") => decode::<rbac::v1::Role>(def, obj),
        ("rbac.authorization.k8s.io", "RoleBinding") => decode::<rbac::v1::RoleBinding>(def, obj),
        ("rbac.authorization.k8s.io", "ClusterRole") => decode::<rbac::v1::ClusterRole>(def, obj),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => decode::<rbac::v1::ClusterRoleBinding>(def, obj),
        ("autoscaling", "HorizontalPodAutoscaler") => decode::<autoscaling::v2::HorizontalPodAutoscaler>(def, obj),
        ("policy", "PodDisruptionBudget") => decode::<policy::v1::PodDisruptionBudget>(def, obj),
        ("coordination.k8s.io", "Lease") => decode::<coordination::v1::Lease>(def, obj),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => decode::<
            k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
        >(def, obj),
        _ => Ok(()),
    }
}

/// Workloads: a selector that matches the pod template's labels, and at least one container.
fn workload(def: &ResourceDef, obj: &Value) -> Vec<Cause> {
    let mut causes = vec![];
    let is_workload = matches!(
        (def.group.as_str(), def.kind.as_str()),
        (
            "apps",
            "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet"
        )
    );
    let has_template = is_workload || (def.group == "batch" && def.kind == "Job");
    if !has_template {
        return causes;
    }
    if obj
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        causes.push(Cause::required("spec.template.spec.containers"));
    }
    if is_workload {
        match obj.pointer("/spec/selector") {
            None => causes.push(Cause::required("spec.selector")),
            Some(sel) => {
                let labels = obj
                    .pointer("/spec/template/metadata/labels")
                    .cloned()
                    .unwrap_or(Value::Null);
                let probe = serde_json::json!({"metadata": {"labels": labels}});
                let s = LabelSelector::from_label_selector_object(sel);
                if !s.matches(&probe) {
                    causes.push(Cause::invalid(
                        "spec.template.metadata.labels",
                        &labels,
                        "`selector` does not match template `labels`",
                    ));
                }
            }
        }
    }
    causes
}

/// Checks a built-in object before it is stored.
pub fn validate(def: &ResourceDef, obj: &Value, name: &str) -> ApiResult<()> {
    if def.custom {
        return Ok(());
    }
    typed(def, obj)?;
    let causes = workload(def, obj);
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(&def.kind, &def.group, name, causes))
    }
}
