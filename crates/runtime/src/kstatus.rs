//! kstatus: the status computation that `flux`, `kubectl wait`-style tools and health checks use
//! (sigs.k8s.io/cli-utils/pkg/kstatus), over any object as JSON.
//!
//! Order of the rules, as upstream: deletion → Terminating; a status.observedGeneration behind
//! metadata.generation → InProgress; `Reconciling=True` → InProgress; `Stalled=True` → Failed;
//! then the built-in kinds' own rules; then a `Ready` condition if present; otherwise Current.

use serde_json::Value;

/// The computed status of an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    InProgress,
    Failed,
    Current,
    Terminating,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::InProgress => "InProgress",
            Status::Failed => "Failed",
            Status::Current => "Current",
            Status::Terminating => "Terminating",
        }
    }
}

/// A status and the one-line reason for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Computed {
    pub status: Status,
    pub message: String,
}

fn result(status: Status, message: impl Into<String>) -> Computed {
    Computed {
        status,
        message: message.into(),
    }
}

fn int(v: &Value, path: &[&str]) -> Option<i64> {
    path.iter()
        .try_fold(v, |v, k| v.get(*k))
        .and_then(Value::as_i64)
}

fn string<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(v, |v, k| v.get(*k))
        .and_then(Value::as_str)
}

/// The condition of `type_` in `status.conditions`: (status, reason, message).
fn condition<'a>(obj: &'a Value, type_: &str) -> Option<(&'a str, &'a str, &'a str)> {
    obj.get("status")?
        .get("conditions")?
        .as_array()?
        .iter()
        .find_map(|c| {
            (c.get("type")?.as_str()? == type_).then(|| {
                (
                    c.get("status").and_then(Value::as_str).unwrap_or(""),
                    c.get("reason").and_then(Value::as_str).unwrap_or(""),
                    c.get("message").and_then(Value::as_str).unwrap_or(""),
                )
            })
        })
}

/// Computes the kstatus of an object.
pub fn compute(obj: &Value) -> Computed {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let group = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .and_then(|v| v.rsplit_once('/').map(|(g, _)| g))
        .unwrap_or("");
    if obj
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
    {
        return result(Status::Terminating, "Resource scheduled for deletion");
    }
    if let (Some(observed), Some(generation)) = (
        int(obj, &["status", "observedGeneration"]),
        int(obj, &["metadata", "generation"]),
    ) && observed != generation
    {
        return result(
            Status::InProgress,
            format!(
                "{kind} generation is {generation}, but latest observed generation is {observed}"
            ),
        );
    }
    if let Some(("True", reason, message)) = condition(obj, "Reconciling") {
        return result(
            Status::InProgress,
            if message.is_empty() { reason } else { message },
        );
    }
    if let Some(("True", reason, message)) = condition(obj, "Stalled") {
        return result(
            Status::Failed,
            if message.is_empty() { reason } else { message },
        );
    }
    let builtin = match (group, kind) {
        ("apps", "Deployment") => Some(deployment(obj)),
        ("apps", "StatefulSet") => Some(statefulset(obj)),
        ("apps", "DaemonSet") => Some(daemonset(obj)),
        ("apps", "ReplicaSet") => Some(replicaset(obj)),
        ("batch", "Job") => Some(job(obj)),
        ("", "Pod") => Some(pod(obj)),
        ("", "PersistentVolumeClaim") => Some(pvc(obj)),
        ("", "Service") => Some(service(obj)),
        ("", "Namespace") => Some(namespace(obj)),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => Some(crd(obj)),
        _ => None,
    };
    if let Some(r) = builtin {
        return r;
    }
    match condition(obj, "Ready") {
        Some(("True", _, message)) => result(Status::Current, message),
        Some((_, reason, message)) => result(
            Status::InProgress,
            if message.is_empty() { reason } else { message },
        ),
        None => result(Status::Current, "Resource is current"),
    }
}

fn deployment(obj: &Value) -> Computed {
    let spec = int(obj, &["spec", "replicas"]).unwrap_or(1);
    let replicas = int(obj, &["status", "replicas"]).unwrap_or(0);
    let updated = int(obj, &["status", "updatedReplicas"]).unwrap_or(0);
    let ready = int(obj, &["status", "readyReplicas"]).unwrap_or(0);
    let available = int(obj, &["status", "availableReplicas"]).unwrap_or(0);
    if let Some((_, "ProgressDeadlineExceeded", _)) = condition(obj, "Progressing") {
        return result(Status::Failed, "Progress deadline exceeded");
    }
    if spec > replicas {
        return result(Status::InProgress, format!("Replicas: {replicas}/{spec}"));
    }
    if spec > updated {
        return result(Status::InProgress, format!("Updated: {updated}/{spec}"));
    }
    if replicas > spec {
        return result(
            Status::InProgress,
            format!("Pending termination: {}", replicas - spec),
        );
    }
    if spec > available {
        return result(Status::InProgress, format!("Available: {available}/{spec}"));
    }
    if spec > ready {
        return result(Status::InProgress, format!("Ready: {ready}/{spec}"));
    }
    let progressing = matches!(
        condition(obj, "Progressing"),
        Some(("True", "NewReplicaSetAvailable", _))
    );
    let is_available = matches!(condition(obj, "Available"), Some(("True", _, _)));
    if !progressing {
        return result(Status::InProgress, "ReplicaSet not Available");
    }
    if !is_available {
        return result(Status::InProgress, "Deployment not Available");
    }
    result(
        Status::Current,
        format!("Deployment is available. Replicas: {replicas}"),
    )
}

fn statefulset(obj: &Value) -> Computed {
    if string(obj, &["spec", "updateStrategy", "type"]) == Some("OnDelete") {
        return result(
            Status::Current,
            "StatefulSet is using the OnDelete update strategy",
        );
    }
    let spec = int(obj, &["spec", "replicas"]).unwrap_or(1);
    let replicas = int(obj, &["status", "replicas"]).unwrap_or(0);
    let ready = int(obj, &["status", "readyReplicas"]).unwrap_or(0);
    let current = int(obj, &["status", "currentReplicas"]).unwrap_or(0);
    let updated = int(obj, &["status", "updatedReplicas"]).unwrap_or(0);
    if spec > replicas {
        return result(Status::InProgress, format!("Replicas: {replicas}/{spec}"));
    }
    if spec > ready {
        return result(Status::InProgress, format!("Ready: {ready}/{spec}"));
    }
    if replicas > spec {
        return result(
            Status::InProgress,
            format!("Pending termination: {}", replicas - spec),
        );
    }
    if let Some(partition) = int(
        obj,
        &["spec", "updateStrategy", "rollingUpdate", "partition"],
    ) {
        let expected = (spec - partition).max(0);
        if updated < expected {
            return result(Status::InProgress, format!("updated: {updated}/{expected}"));
        }
        return result(
            Status::Current,
            format!("Partitioned roll out complete. updated: {updated}/{expected}"),
        );
    }
    if spec > current {
        return result(Status::InProgress, format!("current: {current}/{spec}"));
    }
    let current_rev = string(obj, &["status", "currentRevision"]).unwrap_or("");
    let update_rev = string(obj, &["status", "updateRevision"]).unwrap_or("");
    if current_rev != update_rev {
        return result(
            Status::InProgress,
            format!("Waiting for updated revision {update_rev}"),
        );
    }
    result(
        Status::Current,
        format!("All replicas scheduled as expected. Replicas: {replicas}"),
    )
}

fn daemonset(obj: &Value) -> Computed {
    let desired = int(obj, &["status", "desiredNumberScheduled"]).unwrap_or(0);
    let current = int(obj, &["status", "currentNumberScheduled"]).unwrap_or(0);
    let updated = int(obj, &["status", "updatedNumberScheduled"]).unwrap_or(0);
    let available = int(obj, &["status", "numberAvailable"]).unwrap_or(0);
    let ready = int(obj, &["status", "numberReady"]).unwrap_or(0);
    if obj.pointer("/status/desiredNumberScheduled").is_none() {
        return result(Status::InProgress, "Missing .status.desiredNumberScheduled");
    }
    if desired > current {
        return result(Status::InProgress, format!("Current: {current}/{desired}"));
    }
    if desired > updated {
        return result(Status::InProgress, format!("Updated: {updated}/{desired}"));
    }
    if desired > available {
        return result(
            Status::InProgress,
            format!("Available: {available}/{desired}"),
        );
    }
    if desired > ready {
        return result(Status::InProgress, format!("Ready: {ready}/{desired}"));
    }
    result(
        Status::Current,
        format!("All replicas scheduled as expected. Replicas: {desired}"),
    )
}

fn replicaset(obj: &Value) -> Computed {
    let spec = int(obj, &["spec", "replicas"]).unwrap_or(1);
    let replicas = int(obj, &["status", "replicas"]).unwrap_or(0);
    let ready = int(obj, &["status", "readyReplicas"]).unwrap_or(0);
    let available = int(obj, &["status", "availableReplicas"]).unwrap_or(0);
    if let Some(("True", _, message)) = condition(obj, "ReplicaFailure") {
        return result(Status::InProgress, message);
    }
    if spec > replicas || spec > ready || spec > available {
        return result(Status::InProgress, format!("Ready: {ready}/{spec}"));
    }
    if replicas > spec {
        return result(
            Status::InProgress,
            format!("Pending termination: {}", replicas - spec),
        );
    }
    result(
        Status::Current,
        format!("ReplicaSet is available. Replicas: {replicas}"),
    )
}

fn job(obj: &Value) -> Computed {
    if let Some(("True", _, message)) = condition(obj, "Failed") {
        return result(Status::Failed, format!("Job Failed. failed: {message}"));
    }
    if let Some(("True", _, _)) = condition(obj, "Complete") {
        return result(Status::Current, "Job Completed");
    }
    let active = int(obj, &["status", "active"]).unwrap_or(0);
    let succeeded = int(obj, &["status", "succeeded"]).unwrap_or(0);
    result(
        Status::InProgress,
        format!("Job in progress. success:{succeeded}, active: {active}"),
    )
}

fn pod(obj: &Value) -> Computed {
    match string(obj, &["status", "phase"]).unwrap_or("") {
        "Succeeded" => result(Status::Current, "Pod has completed successfully"),
        "Failed" => result(Status::Failed, "Pod has completed, but not successfully"),
        "Running" if matches!(condition(obj, "Ready"), Some(("True", _, _))) => {
            result(Status::Current, "Pod is Ready")
        }
        _ => result(Status::InProgress, "Pod is not Ready"),
    }
}

fn pvc(obj: &Value) -> Computed {
    if string(obj, &["status", "phase"]) == Some("Bound") {
        result(Status::Current, "PVC is Bound")
    } else {
        result(Status::InProgress, "PVC is not Bound")
    }
}

fn service(obj: &Value) -> Computed {
    if string(obj, &["spec", "type"]) == Some("LoadBalancer")
        && obj
            .pointer("/status/loadBalancer/ingress")
            .and_then(Value::as_array)
            .is_none_or(|i| i.is_empty())
    {
        return result(Status::InProgress, "Pending external IP assignment");
    }
    result(Status::Current, "Service is ready")
}

fn namespace(obj: &Value) -> Computed {
    match string(obj, &["status", "phase"]) {
        Some("Terminating") => result(Status::Terminating, "Namespace is terminating"),
        _ => result(Status::Current, "Namespace is Active"),
    }
}

fn crd(obj: &Value) -> Computed {
    if let Some(("False", _, message)) = condition(obj, "NamesAccepted") {
        return result(Status::Failed, message);
    }
    match condition(obj, "Established") {
        Some(("True", _, _)) => result(Status::Current, "CRD is established"),
        _ => result(Status::InProgress, "CRD is not established"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn flux(generation: i64, observed: i64, conditions: Value) -> Value {
        json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
               "metadata": {"name": "x", "generation": generation},
               "status": {"observedGeneration": observed, "conditions": conditions}})
    }

    #[test]
    fn flux_objects_follow_the_contract() {
        let ready = json!([{"type": "Ready", "status": "True", "reason": "ReconciliationSucceeded", "message": "Applied revision: main@sha1:1"}]);
        assert_eq!(compute(&flux(2, 2, ready.clone())).status, Status::Current);
        assert_eq!(
            compute(&flux(3, 2, ready)).status,
            Status::InProgress,
            "generation not observed"
        );
        let reconciling = json!([{"type": "Reconciling", "status": "True", "reason": "Progressing", "message": "building"},
                                 {"type": "Ready", "status": "Unknown", "reason": "Progressing", "message": "Reconciliation in progress"}]);
        assert_eq!(compute(&flux(1, 1, reconciling)).status, Status::InProgress);
        let stalled = json!([{"type": "Stalled", "status": "True", "reason": "InvalidPath", "message": "path not found"},
                             {"type": "Ready", "status": "False", "reason": "InvalidPath", "message": "path not found"}]);
        let c = compute(&flux(1, 1, stalled));
        assert_eq!(
            (c.status, c.message.as_str()),
            (Status::Failed, "path not found")
        );
        let failed = json!([{"type": "Ready", "status": "False", "reason": "BuildFailed", "message": "boom"}]);
        assert_eq!(
            compute(&flux(1, 1, failed)).status,
            Status::InProgress,
            "Ready=False without Stalled retries"
        );
        let mut deleting = flux(1, 1, json!([]));
        deleting["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        assert_eq!(compute(&deleting).status, Status::Terminating);
    }

    #[test]
    fn deployments() {
        let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "generation": 1},
            "spec": {"replicas": 2},
            "status": {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 1, "availableReplicas": 1,
                       "conditions": [{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}]}});
        assert_eq!(compute(&d).status, Status::InProgress);
        d["status"]["readyReplicas"] = json!(2);
        d["status"]["availableReplicas"] = json!(2);
        assert_eq!(
            compute(&d).status,
            Status::InProgress,
            "rollout not finished"
        );
        d["status"]["conditions"] = json!([
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}]);
        assert_eq!(compute(&d).status, Status::Current);
        d["status"]["conditions"] = json!([{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]);
        assert_eq!(compute(&d).status, Status::Failed);
    }

    #[test]
    fn jobs_pods_pvcs_services_crds() {
        let job = |conds: Value| json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"}, "status": {"conditions": conds}});
        assert_eq!(
            compute(&job(json!([{"type": "Complete", "status": "True"}]))).status,
            Status::Current
        );
        assert_eq!(
            compute(&job(
                json!([{"type": "Failed", "status": "True", "message": "BackoffLimitExceeded"}])
            ))
            .status,
            Status::Failed
        );
        assert_eq!(compute(&job(json!([]))).status, Status::InProgress);
        let pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "p"}, "status": {"phase": "Pending"}});
        assert_eq!(compute(&pvc).status, Status::InProgress);
        let lb = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"type": "LoadBalancer"}, "status": {}});
        assert_eq!(compute(&lb).status, Status::InProgress);
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"type": "ClusterIP"}});
        assert_eq!(compute(&svc).status, Status::Current);
        let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "c"},
            "status": {"conditions": [{"type": "NamesAccepted", "status": "True"}, {"type": "Established", "status": "True"}]}});
        assert_eq!(compute(&crd).status, Status::Current);
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "status": {"phase": "Failed"}});
        assert_eq!(compute(&pod).status, Status::Failed);
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        assert_eq!(compute(&cm).status, Status::Current);
    }
}
