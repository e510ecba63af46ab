//! Waiting for a Flux object to reach a state: a watch on the one object (no polling delay, so
//! `reconcile` returns as soon as the controller writes its status), re-established when the
//! server ends it.

use anyhow::anyhow;
use futures::{StreamExt, TryStreamExt};
use kube::api::{WatchEvent, WatchParams};
use serde_json::Value;

use super::cluster::{Cluster, describe};
use super::kinds::{self, Kind};

/// What a check of the object decided.
pub enum Verdict {
    Wait,
    Done,
    Fail(String),
}

/// Calls `check` on `start` and then on every new version of the object until it is not
/// [`Verdict::Wait`]; returns the object it decided on.
pub async fn until(
    cluster: &Cluster,
    kind: &'static Kind,
    namespace: &str,
    start: Value,
    mut check: impl FnMut(&Value) -> Verdict,
) -> anyhow::Result<Value> {
    let name = kinds::name(&start).to_string();
    let mut obj = start;
    loop {
        match check(&obj) {
            Verdict::Done => return Ok(obj),
            Verdict::Fail(m) => return Err(anyhow!(m)),
            Verdict::Wait => {}
        }
        let rv = kinds::str_at(&obj, "/metadata/resourceVersion")
            .unwrap_or("0")
            .to_string();
        let wp = WatchParams::default()
            .fields(&format!("metadata.name={name}"))
            .timeout(290);
        let stream = match cluster.watch(kind, Some(namespace), &wp, &rv).await {
            Ok(s) => s,
            Err(e) => return Err(anyhow!(describe(&e))),
        };
        let mut stream = std::pin::pin!(stream.into_stream());
        let mut changed = false;
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(WatchEvent::Added(o)) | Ok(WatchEvent::Modified(o)) => {
                    obj = o;
                    changed = true;
                    break;
                }
                Ok(WatchEvent::Deleted(_)) => {
                    return Err(anyhow!(
                        "{} {namespace}/{name} was deleted while waiting",
                        kind.kind
                    ));
                }
                Ok(WatchEvent::Bookmark(_)) => {}
                // an expired resourceVersion: read the object again
                Ok(WatchEvent::Error(_)) | Err(_) => break,
            }
        }
        if !changed {
            obj = cluster
                .get(kind, namespace, &name)
                .await
                .map_err(|e| anyhow!(describe(&e)))?;
        }
    }
}

/// kstatus of a Flux object as fluxcd/cli-utils computes it, with one addition: a Ready=False
/// whose Reconciling condition says `ProgressingWithRetry` (or that has none) is a finished,
/// failed attempt — flux's wait keeps polling such an object until `--timeout`; we report the
/// failure at once.
pub fn attempt_verdict(obj: &Value) -> Verdict {
    use ferroflux_runtime::kstatus::{Status, compute};
    let c = compute(obj);
    match c.status {
        Status::Current => Verdict::Done,
        Status::Failed | Status::Terminating => Verdict::Fail(c.message),
        Status::InProgress => {
            let generation_observed =
                obj.pointer("/status/observedGeneration") == obj.pointer("/metadata/generation");
            let ready_false = matches!(kinds::ready_condition(obj), Some(("False", _)));
            let retrying = match reconciling_reason(obj) {
                None => true,
                Some(r) => r == "ProgressingWithRetry",
            };
            if ready_false && retrying && (generation_observed || reconciling_reason(obj).is_some())
            {
                Verdict::Done
            } else {
                Verdict::Wait
            }
        }
    }
}

fn reconciling_reason(obj: &Value) -> Option<&str> {
    obj.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| {
            c.get("type").and_then(Value::as_str) == Some("Reconciling")
                && c.get("status").and_then(Value::as_str) == Some("True")
        })
        .and_then(|c| c.get("reason").and_then(Value::as_str))
}

/// flux's `isObjectReady` (resume): a reconciled object (observed generation >= 1, a Ready
/// condition of the current generation) whose kstatus is Current; a failed attempt as in
/// [`attempt_verdict`] is a failure.
pub fn ready_verdict(obj: &Value, is_static: bool) -> Verdict {
    if !is_static {
        let observed = obj
            .pointer("/status/observedGeneration")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if observed < 1 {
            return Verdict::Wait;
        }
        let generation = obj
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        let ready = obj
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .and_then(|cs| {
                cs.iter()
                    .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
            });
        match ready {
            None => return Verdict::Wait,
            Some(c) => {
                let cond_gen = c
                    .get("observedGeneration")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                if (cond_gen != 0 && cond_gen != generation)
                    || (cond_gen == 0 && observed != generation)
                {
                    return Verdict::Wait;
                }
            }
        }
    }
    match attempt_verdict(obj) {
        Verdict::Done => match kinds::ready_condition(obj) {
            Some(("False", m)) if !is_static => Verdict::Fail(m.to_string()),
            _ => Verdict::Done,
        },
        other => other,
    }
}
