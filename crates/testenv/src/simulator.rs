//! Optional workload simulator: after a delay, writes the status that the Deployment,
//! StatefulSet, DaemonSet and Job controllers (and kubelets) would, so readiness checks pass.
//! An object annotated with [`FAIL_ANNOTATION`] gets a failed status instead.

use crate::ops::{self, WriteOpts};
use crate::registry::Gr;
use crate::server::Shared;
use crate::store::{EventType, meta_str};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

type Pending = Arc<Mutex<HashSet<(String, String, String)>>>;

/// Annotation that makes the simulator report a failure (its value becomes the message).
pub const FAIL_ANNOTATION: &str = "testenv.ferroflux.io/fail";

const KINDS: &[(&str, &str)] = &[
    ("apps", "deployments"),
    ("apps", "statefulsets"),
    ("apps", "daemonsets"),
    ("batch", "jobs"),
    ("", "pods"),
    ("", "persistentvolumeclaims"),
    ("", "services"),
];

fn cond(t: &str, s: &str, reason: &str, msg: &str, now: &str) -> Value {
    json!({"type": t, "status": s, "reason": reason, "message": msg, "lastTransitionTime": now, "lastUpdateTime": now})
}

/// The status a controller would write for this object.
pub fn desired_status(resource: &str, obj: &Value, now: &str) -> Option<Value> {
    let generation = obj
        .pointer("/metadata/generation")
        .cloned()
        .unwrap_or(json!(1));
    let name = meta_str(obj, "name");
    let fail = obj
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(FAIL_ANNOTATION))
        .and_then(Value::as_str);
    let replicas = obj
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let hash = format!(
        "{:x}",
        meta_str(obj, "uid")
            .bytes()
            .fold(generation.as_i64().unwrap_or(1) as u64, |h, b| h
                .wrapping_mul(31)
                .wrapping_add(u64::from(b)))
            % 0xffff_ffff
    );
    let rs = format!("{name}-{hash}");
    Some(match (resource, fail) {
        ("deployments", None) => json!({
            "observedGeneration": generation, "replicas": replicas, "updatedReplicas": replicas,
            "readyReplicas": replicas, "availableReplicas": replicas,
            "conditions": [
                cond("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.", now),
                cond("Progressing", "True", "NewReplicaSetAvailable", &format!("ReplicaSet \"{rs}\" has successfully progressed."), now),
            ]
        }),
        ("deployments", Some(msg)) => json!({
            "observedGeneration": generation, "replicas": replicas, "updatedReplicas": replicas,
            "unavailableReplicas": replicas,
            "conditions": [
                cond("Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.", now),
                cond("Progressing", "False", "ProgressDeadlineExceeded", &format!("ReplicaSet \"{rs}\" has timed out progressing. {msg}"), now),
            ]
        }),
        ("statefulsets", f) => {
            let ready = if f.is_some() { 0 } else { replicas };
            json!({
                "observedGeneration": generation, "replicas": replicas, "readyReplicas": ready,
                "currentReplicas": replicas, "updatedReplicas": replicas, "availableReplicas": ready,
                "currentRevision": rs, "updateRevision": rs, "collisionCount": 0,
            })
        }
        ("daemonsets", f) => {
            let ready = if f.is_some() { 0 } else { 1 };
            let mut s = json!({
                "observedGeneration": generation, "currentNumberScheduled": 1, "desiredNumberScheduled": 1,
                "numberReady": ready, "updatedNumberScheduled": 1, "numberAvailable": ready, "numberMisscheduled": 0,
            });
            if f.is_some() {
                s["numberUnavailable"] = json!(1);
            }
            s
        }
        ("jobs", None) => {
            let completions = obj
                .pointer("/spec/completions")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            json!({
                "startTime": now, "completionTime": now, "succeeded": completions, "ready": 0, "active": 0,
                "conditions": [
                    cond("SuccessCriteriaMet", "True", "CompletionsReached", "Reached expected number of succeeded pods", now),
                    cond("Complete", "True", "CompletionsReached", "Reached expected number of succeeded pods", now),
                ]
            })
        }
        ("jobs", Some(msg)) => json!({
            "startTime": now, "failed": 1, "ready": 0, "active": 0,
            "conditions": [
                cond("FailureTarget", "True", "BackoffLimitExceeded", "Job has reached the specified backoff limit", now),
                cond("Failed", "True", "BackoffLimitExceeded", &format!("Job has reached the specified backoff limit: {msg}"), now),
            ]
        }),
        ("pods", f) => {
            let restart = obj
                .pointer("/spec/restartPolicy")
                .and_then(Value::as_str)
                .unwrap_or("Always");
            let runs_to_completion = restart != "Always";
            let containers: Vec<Value> = obj
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .map(|cs| {
                    cs.iter()
                        .map(|c| {
                            let state = match (f, runs_to_completion) {
                                (Some(msg), _) => json!({"terminated": {"exitCode": 1, "reason": "Error", "message": msg, "finishedAt": now}}),
                                (None, true) => json!({"terminated": {"exitCode": 0, "reason": "Completed", "finishedAt": now}}),
                                (None, false) => json!({"running": {"startedAt": now}}),
                            };
                            json!({"name": c["name"], "image": c["image"], "imageID": "", "ready": f.is_none() && !runs_to_completion,
                                "restartCount": 0, "started": !runs_to_completion, "state": state})
                        })
                        .collect()
                })
                .unwrap_or_default();
            let (phase, ready) = match (f, runs_to_completion) {
                (Some(_), _) => ("Failed", "False"),
                (None, true) => ("Succeeded", "False"),
                (None, false) => ("Running", "True"),
            };
            json!({
                "phase": phase, "podIP": "10.244.0.10", "hostIP": "127.0.0.1", "startTime": now, "qosClass": "BestEffort",
                "conditions": [
                    {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
                    {"type": "Initialized", "status": "True", "lastTransitionTime": now},
                    {"type": "ContainersReady", "status": ready, "lastTransitionTime": now},
                    {"type": "Ready", "status": ready, "lastTransitionTime": now},
                ],
                "containerStatuses": containers,
            })
        }
        ("persistentvolumeclaims", None) => {
            let size = obj
                .pointer("/spec/resources/requests/storage")
                .cloned()
                .unwrap_or(json!("1Gi"));
            json!({"phase": "Bound", "accessModes": obj.pointer("/spec/accessModes").cloned().unwrap_or(json!(["ReadWriteOnce"])),
                "capacity": {"storage": size}})
        }
        ("persistentvolumeclaims", Some(_)) => json!({"phase": "Lost"}),
        ("services", None) => {
            json!({"loadBalancer": {"ingress": [{"ip": "127.0.0.1", "ipMode": "VIP"}]}})
        }
        _ => return None,
    })
}

fn needs_status(resource: &str, obj: &Value) -> bool {
    if obj.pointer("/metadata/deletionTimestamp").is_some() {
        return false;
    }
    match resource {
        "pods" | "persistentvolumeclaims" => {
            return obj
                .pointer("/status/phase")
                .and_then(Value::as_str)
                .is_none_or(|p| p == "Pending");
        }
        "services" => {
            return obj.pointer("/spec/type").and_then(Value::as_str) == Some("LoadBalancer")
                && obj.pointer("/status/loadBalancer/ingress").is_none();
        }
        _ => {}
    }
    if resource == "jobs" {
        // a finished job stays finished
        return obj
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_none_or(|c| c.is_empty());
    }
    obj.pointer("/status/observedGeneration") != obj.pointer("/metadata/generation")
        || obj.pointer("/status/replicas").and_then(Value::as_i64)
            != obj.pointer("/spec/replicas").and_then(Value::as_i64)
            && resource != "daemonsets"
        || (obj
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(FAIL_ANNOTATION))
            .is_some()
            != obj.pointer("/status/readyReplicas").is_none_or(|r| r == 0)
            && resource == "deployments")
}

pub async fn run(shared: Arc<Shared>, delay: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut rx = shared.lock().subscribe();
    let pending: Pending = Arc::default();
    // objects that existed before we started
    let existing: Vec<(String, Value)> = {
        let inner = shared.lock();
        KINDS
            .iter()
            .flat_map(|(g, r)| {
                inner
                    .bucket(&Gr::new(g, r))
                    .map(|b| {
                        b.values()
                            .map(|o| (r.to_string(), (**o).clone()))
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default()
            })
            .collect()
    };
    for (r, o) in existing {
        schedule(&shared, &pending, delay, &r, &o);
    }
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            ev = rx.recv() => match ev {
                Ok(ev) => {
                    if ev.etype == EventType::Deleted || !KINDS.iter().any(|(g, r)| ev.gr.group == *g && ev.gr.resource == *r) {
                        continue;
                    }
                    let r = ev.gr.resource.clone();
                    schedule(&shared, &pending, delay, &r, &ev.obj);
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            }
        }
    }
}

fn schedule(shared: &Arc<Shared>, pending: &Pending, delay: Duration, resource: &str, obj: &Value) {
    if !needs_status(resource, obj) {
        return;
    }
    let key = (
        resource.to_string(),
        meta_str(obj, "namespace").to_string(),
        meta_str(obj, "name").to_string(),
    );
    {
        let mut p = match pending.lock() {
            Ok(p) => p,
            Err(e) => e.into_inner(),
        };
        if !p.insert(key.clone()) {
            return;
        }
    }
    let shared = shared.clone();
    let pending = pending.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        if let Ok(mut p) = pending.lock() {
            p.remove(&key);
        }
        let (resource, ns, name) = key;
        let group = match resource.as_str() {
            "jobs" => "batch",
            "pods" | "persistentvolumeclaims" | "services" => "",
            _ => "apps",
        };
        let mut inner = shared.lock();
        let Some(def) = inner.registry.storage(&Gr::new(group, &resource)) else {
            return;
        };
        let Some(cur) = inner.get(&def.gr(), &ns, &name) else {
            return;
        };
        if !needs_status(&resource, &cur) {
            return;
        }
        let Some(status) = desired_status(&resource, &cur, &ops::now()) else {
            return;
        };
        let mut body = (*cur).clone();
        body["status"] = status;
        let opts = WriteOpts {
            manager: "testenv-simulator".into(),
            ..Default::default()
        };
        if let Err(e) = ops::update(&mut inner, &def, &ns, &name, body, "status", &opts, None) {
            tracing::debug!(error = %e, "simulator status update failed");
        }
    });
}
