//! Drift reports without applying (upstream `Diff`, what `flux diff kustomization` prints).

use kube::api::{Patch, PatchParams};
use serde_json::Value;

use crate::apply::{dry_run_error, has_drifted};
use crate::error::is_immutable;
use crate::ignore::{CompiledIgnoreRules, remove_pointer};
use crate::manager::to_value;
use crate::normalize::normalize_object;
use crate::object::{any_in_metadata, is_secret, str_at};
use crate::{Action, ApplyOptions, ChangeSetEntry, ObjMetadata, ResourceManager, SsaError};

/// The outcome of a diff. For `Configured`, the live object and the dry-run result, both
/// without managedFields and ignored fields, Secret values masked.
#[derive(Clone, Debug, PartialEq)]
pub struct DiffResult {
    pub entry: ChangeSetEntry,
    pub live: Option<Value>,
    pub desired: Option<Value>,
}

const MASK: &str = "***";
const MASK_BEFORE: &str = "*** (before)";
const MASK_AFTER: &str = "*** (after)";

/// Masks Secret `data` values: equal values become `***`, changed ones `*** (before)` /
/// `*** (after)` (upstream `SanitizeUnstructuredData`).
pub fn sanitize_secret_data(old: &mut Value, new: &mut Value) {
    let old_data = old.get("data").and_then(Value::as_object).cloned();
    let new_data = new.get("data").and_then(Value::as_object).cloned();
    if let Some(od) = &old_data
        && let Some(o) = old.get_mut("data").and_then(Value::as_object_mut)
    {
        for (k, v) in od {
            let mask = match new_data.as_ref().and_then(|n| n.get(k)) {
                Some(nv) if nv != v => MASK_BEFORE,
                _ => MASK,
            };
            o.insert(k.clone(), Value::String(mask.into()));
        }
    }
    if let Some(nd) = &new_data
        && let Some(n) = new.get_mut("data").and_then(Value::as_object_mut)
    {
        for (k, v) in nd {
            let mask = match old_data.as_ref().and_then(|o| o.get(k)) {
                Some(ov) if ov != v => MASK_AFTER,
                _ => MASK,
            };
            n.insert(k.clone(), Value::String(mask.into()));
        }
    }
}

impl ResourceManager {
    /// Dry-runs one object and reports whether applying it would create, configure or leave
    /// it unchanged (or skip it), without writing anything. Uses the exclusion, if-not-present,
    /// force and ignore settings of `opts`.
    pub async fn diff(&self, mut obj: Value, opts: &ApplyOptions) -> Result<DiffResult, SsaError> {
        let rules = CompiledIgnoreRules::compile(&opts.ignore)?;
        normalize_object(&mut obj);
        let mut meta = ObjMetadata::of(&obj)?;
        let only = |meta: ObjMetadata, action| DiffResult {
            entry: ChangeSetEntry::new(meta, action),
            live: None,
            desired: None,
        };
        let (api, resolved) = match self.api_for(&meta).await {
            Ok(x) => x,
            Err(_) if any_in_metadata(&obj, &opts.exclusions) => {
                return Ok(only(meta, Action::Skipped));
            }
            Err(e) => return Err(e),
        };
        if !resolved.namespaced {
            meta.namespace.clear();
            if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("namespace");
            }
        }
        let existing = api.get_opt(&meta.name).await.ok().flatten().map(to_value);
        if any_in_metadata(&obj, &opts.exclusions)
            || existing
                .as_ref()
                .is_some_and(|e| any_in_metadata(e, &opts.exclusions))
            || (existing.is_some() && any_in_metadata(&obj, &opts.if_not_present_selector))
        {
            return Ok(only(meta, Action::Skipped));
        }
        let params = PatchParams::apply(&self.owner.field_manager)
            .force()
            .dry_run();
        let dry = match api.patch(&meta.name, &params, &Patch::Apply(&obj)).await {
            Ok(d) => to_value(d),
            Err(e) => {
                let recreate = existing.as_ref().is_some_and(|live| {
                    is_immutable(&e)
                        && (opts.force
                            || any_in_metadata(&obj, &opts.force_selector)
                            || any_in_metadata(live, &opts.force_selector))
                });
                if recreate {
                    return Ok(only(meta, Action::Created));
                }
                return Err(dry_run_error(&meta, &e));
            }
        };
        if str_at(&dry, &["metadata", "resourceVersion"]).is_empty() {
            return Ok(only(meta, Action::Created));
        }
        if !has_drifted(existing.as_ref(), &dry, &rules) {
            return Ok(only(meta, Action::Unchanged));
        }
        let mut live = existing.unwrap_or(Value::Null);
        let mut desired = dry.clone();
        for v in [&mut live, &mut desired] {
            if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("managedFields");
            }
        }
        for p in rules.paths_for(&dry) {
            remove_pointer(&mut live, &p);
            remove_pointer(&mut desired, &p);
        }
        if is_secret(&dry) {
            sanitize_secret_data(&mut live, &mut desired);
        }
        Ok(DiffResult {
            entry: ChangeSetEntry::new(meta, Action::Configured),
            live: Some(live),
            desired: Some(desired),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_values_are_masked() {
        let mut old = json!({"data": {"same": "YQ==", "changed": "Yg==", "removed": "Yw=="}});
        let mut new = json!({"data": {"same": "YQ==", "changed": "ZA==", "added": "ZQ=="}});
        sanitize_secret_data(&mut old, &mut new);
        assert_eq!(
            old["data"],
            json!({"same": "***", "changed": "*** (before)", "removed": "***"})
        );
        assert_eq!(
            new["data"],
            json!({"same": "***", "changed": "*** (after)", "added": "***"})
        );
    }
}
