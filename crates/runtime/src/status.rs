//! Status patching: status is patched, never replaced, with the controller's field manager.
//!
//! The patch is a JSON merge patch computed from the status the reconcile started with and the
//! status it ends with, so fields other writers own are left alone and removed fields are
//! nulled explicitly.

use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// A JSON merge patch (RFC 7386) that turns `old` into `new`. `None` when they are equal.
pub fn merge_patch_diff(old: &Value, new: &Value) -> Option<Value> {
    if old == new {
        return None;
    }
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let mut patch = Map::new();
            for (k, nv) in n {
                match o.get(k) {
                    Some(ov) => {
                        if let Some(p) = merge_patch_diff(ov, nv) {
                            patch.insert(k.clone(), p);
                        }
                    }
                    None => {
                        patch.insert(k.clone(), nv.clone());
                    }
                }
            }
            for k in o.keys() {
                if !n.contains_key(k) {
                    patch.insert(k.clone(), Value::Null);
                }
            }
            Some(Value::Object(patch))
        }
        // Merge patches replace arrays and scalars whole; null values inside objects would be
        // read as deletions, which is what a `null` in the new status means anyway.
        _ => Some(new.clone()),
    }
}

/// Patches `/status` of `name` from `old_status` to `new_status` with `field_manager`.
/// Returns whether a request was sent.
pub async fn patch_status<K, S>(
    api: &Api<K>,
    name: &str,
    field_manager: &str,
    old_status: &S,
    new_status: &S,
) -> Result<bool, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize,
{
    let old = serde_json::to_value(old_status).unwrap_or(Value::Null);
    let new = serde_json::to_value(new_status).unwrap_or(Value::Null);
    let Some(diff) = merge_patch_diff(&old, &new) else {
        return Ok(false);
    };
    let patch = serde_json::json!({ "status": diff });
    let params = PatchParams {
        field_manager: Some(field_manager.to_string()),
        ..Default::default()
    };
    api.patch_status(name, &params, &Patch::Merge(&patch))
        .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn apply(doc: &Value, patch: &Value) -> Value {
        // RFC 7386 application, to check the diff round-trips.
        match (doc, patch) {
            (Value::Object(d), Value::Object(p)) => {
                let mut out = d.clone();
                for (k, v) in p {
                    if v.is_null() {
                        out.remove(k);
                    } else {
                        let merged = apply(d.get(k).unwrap_or(&Value::Null), v);
                        out.insert(k.clone(), merged);
                    }
                }
                Value::Object(out)
            }
            (_, Value::Object(p)) => apply(&json!({}), &Value::Object(p.clone())),
            (_, p) => p.clone(),
        }
    }

    #[test]
    fn diff_round_trips_and_nulls_removed_fields() {
        let old = json!({"observedGeneration": 1, "artifact": {"revision": "a", "size": 3},
                         "conditions": [{"type": "Ready", "status": "False"}], "url": "x"});
        let new = json!({"observedGeneration": 2, "artifact": {"revision": "b", "size": 3},
                         "conditions": [{"type": "Ready", "status": "True"}]});
        let patch = merge_patch_diff(&old, &new).unwrap();
        assert_eq!(patch["url"], Value::Null);
        assert!(
            patch["artifact"].get("size").is_none(),
            "unchanged fields are not sent"
        );
        assert_eq!(apply(&old, &patch), new);
        assert_eq!(merge_patch_diff(&new, &new), None);
    }
}
