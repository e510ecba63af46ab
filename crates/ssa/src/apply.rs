//! Staged server-side apply with drift detection (upstream `ApplyAllStaged` / `ApplyAll`).

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PropagationPolicy};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::error::{is_immutable, is_not_found, message, reason};
use crate::ignore::{CompiledIgnoreRules, pointer_tokens, remove_pointer, set_pointer};
use crate::manager::{FieldManager, to_value};
use crate::normalize::{for_diff, normalize_object};
use crate::object::{
    annotations, any_in_metadata, apply_order, is_class_definition, is_cluster_definition, labels,
    str_at,
};
use crate::{
    Action, ChangeSet, ChangeSetEntry, IgnoreRule, ObjMetadata, ResourceManager, SsaError,
    WaitOptions,
};

/// Options of an apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplyOptions {
    /// Recreate objects whose change the server refuses as immutable (Kustomization
    /// `spec.force`).
    pub force: bool,
    /// Objects matching one of these label/annotation pairs are recreated on immutable
    /// changes too (`kustomize.toolkit.fluxcd.io/force: Enabled`).
    pub force_selector: BTreeMap<String, String>,
    /// Objects (desired or live) matching one of these are skipped
    /// (`kustomize.toolkit.fluxcd.io/reconcile: disabled`, `.../ssa: Ignore`).
    pub exclusions: BTreeMap<String, String>,
    /// Desired objects matching one of these are only created, never updated
    /// (`kustomize.toolkit.fluxcd.io/ssa: IfNotPresent`).
    pub if_not_present_selector: BTreeMap<String, String>,
    /// Fields left out of the drift comparison; when they drifted, the live value is kept.
    pub ignore: Vec<IgnoreRule>,
    /// (group, kind) pairs applied in their own stage after the class definitions
    /// (`--custom-apply-stage-kinds`).
    pub custom_stage_kinds: Vec<(String, String)>,
    /// Poll interval while waiting for the first stages (and for recreated objects to go).
    pub wait_interval: Duration,
    /// How long to wait for the first stages to become ready.
    pub wait_timeout: Duration,
    /// Rewrite the apiVersion of every managedFields entry of a live object to the applied
    /// apiVersion before applying (upstream `MigrateAPIVersion`): after a CRD gains a version
    /// with defaulted fields, entries left at the old version make applies fail with "field
    /// not declared in schema".
    pub migrate_api_version: bool,
}

impl Default for ApplyOptions {
    /// Upstream `DefaultApplyOptions`: no force, no selectors, wait every 2s up to 60s.
    fn default() -> Self {
        ApplyOptions {
            force: false,
            force_selector: BTreeMap::new(),
            exclusions: BTreeMap::new(),
            if_not_present_selector: BTreeMap::new(),
            ignore: Vec::new(),
            custom_stage_kinds: Vec::new(),
            wait_interval: Duration::from_secs(2),
            wait_timeout: Duration::from_secs(60),
            migrate_api_version: false,
        }
    }
}

impl ApplyOptions {
    /// The options kustomize-controller uses: `force` from the Kustomization, exclusions
    /// `kustomize.toolkit.fluxcd.io/reconcile: disabled` and `.../ssa: Ignore`, if-not-present
    /// `.../ssa: IfNotPresent`, force selector `.../force: Enabled`.
    pub fn kustomization(force: bool) -> Self {
        let g = "kustomize.toolkit.fluxcd.io";
        let pair = |k: &str, v: &str| (format!("{g}/{k}"), v.to_string());
        ApplyOptions {
            force,
            force_selector: BTreeMap::from([pair("force", "Enabled")]),
            exclusions: BTreeMap::from([pair("reconcile", "disabled"), pair("ssa", "Ignore")]),
            if_not_present_selector: BTreeMap::from([pair("ssa", "IfNotPresent")]),
            ..Default::default()
        }
    }
}

/// What the concurrent planning decided for one object.
struct Planned {
    entry: ChangeSetEntry,
    to_apply: Option<(Api<DynamicObject>, Value)>,
}

impl ResourceManager {
    /// Applies in stages: CRDs, Namespaces and ClusterRoles, then waits for them to be ready;
    /// kinds ending in `Class`, then waits; the custom stage kinds; everything else.
    pub async fn apply_all_staged(
        &self,
        objects: Vec<Value>,
        opts: &ApplyOptions,
    ) -> Result<ChangeSet, SsaError> {
        let (cs, res) = self.apply_all_staged_partial(objects, opts).await;
        res.map(|()| cs)
    }

    /// As [`Self::apply_all_staged`], but also returns what was applied before an error (as
    /// upstream returns the change set with the error).
    pub async fn apply_all_staged_partial(
        &self,
        objects: Vec<Value>,
        opts: &ApplyOptions,
    ) -> (ChangeSet, Result<(), SsaError>) {
        let mut defs = vec![];
        let mut classes = vec![];
        let mut custom = vec![];
        let mut rest = vec![];
        for o in objects {
            let gk = (
                crate::object::split_api_version(str_at(&o, &["apiVersion"]))
                    .0
                    .to_string(),
                str_at(&o, &["kind"]).to_string(),
            );
            if is_cluster_definition(&o) {
                defs.push(o);
            } else if is_class_definition(&o) {
                classes.push(o);
            } else if opts.custom_stage_kinds.contains(&gk) {
                custom.push(o);
            } else {
                rest.push(o);
            }
        }
        let mut out = ChangeSet::new();
        let wait = WaitOptions {
            interval: opts.wait_interval,
            timeout: opts.wait_timeout,
            ..Default::default()
        };
        for (stage, then_wait) in [(defs, true), (classes, true), (custom, false)] {
            if stage.is_empty() {
                continue;
            }
            let cs = match self.apply_all(stage, opts).await {
                Ok(cs) => cs,
                Err(e) => return (out, Err(e)),
            };
            out.append(cs.entries.iter().cloned());
            if then_wait && let Err(e) = self.wait_for_set(&cs.to_obj_metadata_set(), &wait).await {
                return (out, Err(e));
            }
        }
        match self.apply_all(rest, opts).await {
            Ok(cs) => {
                out.append(cs.entries);
                (out, Ok(()))
            }
            Err(e) => (out, Err(e)),
        }
    }

    /// Applies one object (as [`Self::apply_all`] with a single object).
    pub async fn apply(
        &self,
        object: Value,
        opts: &ApplyOptions,
    ) -> Result<ChangeSetEntry, SsaError> {
        let cs = self.apply_all(vec![object], opts).await?;
        cs.entries
            .into_iter()
            .next()
            .ok_or_else(|| SsaError::InvalidObject("apply produced no change set entry".into()))
    }

    /// Dry-runs every object (concurrently, see [`Self::with_concurrency`]), compares the
    /// result with the live object and applies, in order, only the new and drifted ones.
    pub async fn apply_all(
        &self,
        objects: Vec<Value>,
        opts: &ApplyOptions,
    ) -> Result<ChangeSet, SsaError> {
        let rules = CompiledIgnoreRules::compile(&opts.ignore)?;
        let mut objects = objects
            .into_iter()
            .map(|mut o| {
                normalize_object(&mut o);
                ObjMetadata::of(&o).map(|m| (m, o))
            })
            .collect::<Result<Vec<_>, _>>()?;
        objects.sort_by(|a, b| apply_order(&a.0, &b.0));
        let plans: Vec<_> = objects
            .into_iter()
            .map(|(meta, obj)| self.plan(meta, obj, opts, &rules))
            .collect();
        let planned: Vec<Result<Planned, SsaError>> = futures::stream::iter(plans)
            .buffered(self.concurrency)
            .collect()
            .await;
        let planned = planned.into_iter().collect::<Result<Vec<_>, _>>()?;
        let mut cs = ChangeSet::new();
        for p in planned {
            if let Some((api, obj)) = p.to_apply {
                let name = str_at(&obj, &["metadata", "name"]).to_string();
                let params = PatchParams::apply(&self.owner.field_manager).force();
                api.patch(&name, &params, &Patch::Apply(&obj))
                    .await
                    .map_err(|e| SsaError::Apply {
                        subject: p.entry.subject.clone(),
                        message: message(&e),
                    })?;
            }
            cs.add(p.entry);
        }
        Ok(cs)
    }

    async fn plan(
        &self,
        meta: ObjMetadata,
        mut obj: Value,
        opts: &ApplyOptions,
        rules: &CompiledIgnoreRules,
    ) -> Result<Planned, SsaError> {
        let skipped = |meta: ObjMetadata| Planned {
            entry: ChangeSetEntry::new(meta, Action::Skipped),
            to_apply: None,
        };
        let (api, resolved) = match self.api_for(&meta).await {
            Ok(x) => x,
            Err(_) if any_in_metadata(&obj, &opts.exclusions) => return Ok(skipped(meta)),
            Err(e) => return Err(e),
        };
        let mut meta = meta;
        if !resolved.namespaced {
            // the server drops it; drop it here so entries and inventories agree
            meta.namespace.clear();
            if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("namespace");
            }
        }
        let name = meta.name.clone();
        let mut existing = api.get_opt(&name).await.ok().flatten().map(to_value);

        // exclusions and IfNotPresent
        let live_meta = || {
            existing
                .as_ref()
                .and_then(|e| ObjMetadata::of(e).ok())
                .map(|mut m| {
                    m.version = meta.version.clone();
                    m
                })
                .unwrap_or_else(|| meta.clone())
        };
        if any_in_metadata(&obj, &opts.exclusions)
            || existing
                .as_ref()
                .is_some_and(|e| any_in_metadata(e, &opts.exclusions))
        {
            return Ok(skipped(live_meta()));
        }
        if existing.is_some() && any_in_metadata(&obj, &opts.if_not_present_selector) {
            return Ok(skipped(live_meta()));
        }

        let mut patched = false;
        if opts.migrate_api_version
            && let Some(live) = existing.as_mut()
        {
            patched = self
                .migrate_api_version(&api, &meta, str_at(&obj, &["apiVersion"]), live)
                .await?;
        }

        let dry_params = PatchParams::apply(&self.owner.field_manager)
            .force()
            .dry_run();
        let dry = match api.patch(&name, &dry_params, &Patch::Apply(&obj)).await {
            Ok(d) => to_value(d),
            Err(e) => {
                let recreate = existing.as_ref().is_some_and(|live| {
                    is_immutable(&e)
                        && (opts.force
                            || any_in_metadata(&obj, &opts.force_selector)
                            || any_in_metadata(live, &opts.force_selector))
                });
                if !recreate {
                    return Err(dry_run_error(&meta, &e));
                }
                tracing::info!(object = %meta, "immutable field change, recreating");
                self.delete_and_wait(&api, &meta, opts).await?;
                existing = None;
                match api.patch(&name, &dry_params, &Patch::Apply(&obj)).await {
                    Ok(d) => to_value(d),
                    Err(e) => return Err(dry_run_error(&meta, &e)),
                }
            }
        };

        if let Some(live) = existing.as_mut() {
            patched |= self.cleanup_metadata(&api, &meta, &obj, live).await?;
        }
        let drifted = has_drifted(existing.as_ref(), &dry, rules);
        let entry_meta = ObjMetadata::of(&dry)
            .map(|mut m| {
                m.version = meta.version.clone();
                m
            })
            .unwrap_or_else(|_| meta.clone());
        if !patched && !drifted {
            return Ok(Planned {
                entry: ChangeSetEntry::new(entry_meta, Action::Unchanged),
                to_apply: None,
            });
        }
        let created = str_at(&dry, &["metadata", "resourceVersion"]).is_empty();
        if !created
            && !rules.is_empty()
            && let Some(live) = existing.as_ref()
        {
            keep_drifted_ignored_fields(&mut obj, live, &dry, rules, &self.owner.field_manager);
        }
        Ok(Planned {
            entry: ChangeSetEntry::new(
                entry_meta,
                if created {
                    Action::Created
                } else {
                    Action::Configured
                },
            ),
            to_apply: Some((api, obj)),
        })
    }

    async fn delete_and_wait(
        &self,
        api: &Api<DynamicObject>,
        meta: &ObjMetadata,
        opts: &ApplyOptions,
    ) -> Result<(), SsaError> {
        let dp = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..Default::default()
        };
        if let Err(e) = api.delete(&meta.name, &dp).await
            && !is_not_found(&e)
        {
            return Err(SsaError::ImmutableDelete {
                subject: meta.subject(),
                message: message(&e),
            });
        }
        let deadline = Instant::now() + opts.wait_timeout;
        loop {
            match api.get_opt(&meta.name).await {
                Ok(None) => return Ok(()),
                Ok(Some(_)) => {}
                Err(e) => {
                    return Err(SsaError::ImmutableWait {
                        subject: meta.subject(),
                        message: message(&e),
                    });
                }
            }
            if Instant::now() >= deadline {
                return Err(SsaError::ImmutableWait {
                    subject: meta.subject(),
                    message: "context deadline exceeded".into(),
                });
            }
            tokio::time::sleep(opts.wait_interval.min(Duration::from_millis(500))).await;
        }
    }

    /// Rewrites every managedFields entry to `api_version`; `live` becomes the server's
    /// answer. True if patched.
    async fn migrate_api_version(
        &self,
        api: &Api<DynamicObject>,
        meta: &ObjMetadata,
        api_version: &str,
        live: &mut Value,
    ) -> Result<bool, SsaError> {
        let Some(entries) = live
            .pointer("/metadata/managedFields")
            .and_then(Value::as_array)
        else {
            return Ok(false);
        };
        if entries
            .iter()
            .all(|e| str_at(e, &["apiVersion"]) == api_version)
        {
            return Ok(false);
        }
        let entries: Vec<Value> = entries
            .iter()
            .map(|e| {
                let mut e = e.clone();
                e["apiVersion"] = Value::String(api_version.into());
                e
            })
            .collect();
        let params = PatchParams {
            field_manager: Some(self.owner.field_manager.clone()),
            ..Default::default()
        };
        let patch = json!({"metadata": {"managedFields": entries}});
        let res = api
            .patch(&meta.name, &params, &Patch::Merge(&patch))
            .await
            .map_err(|e| SsaError::MigrateApiVersion {
                subject: meta.subject(),
                message: format!(
                    "failed to migrate managed fields API version to {api_version}: {}",
                    message(&e)
                ),
            })?;
        *live = to_value(res);
        Ok(true)
    }

    /// Removes the cleanup annotations and labels and hands the cleanup managers' fields to
    /// the owner, with one patch (upstream sends the same as a JSON patch); `live` becomes the server's answer. True if patched.
    async fn cleanup_metadata(
        &self,
        api: &Api<DynamicObject>,
        meta: &ObjMetadata,
        desired: &Value,
        live: &mut Value,
    ) -> Result<bool, SsaError> {
        let c = &self.cleanup;
        if any_in_metadata(desired, &c.exclusions) || any_in_metadata(live, &c.exclusions) {
            return Ok(false);
        }
        // one merge patch: null deletes a key, a list replaces the managedFields
        let mut meta_patch = serde_json::Map::new();
        let live_annotations = annotations(live);
        let remove: serde_json::Map<String, Value> = c
            .annotations
            .iter()
            .filter(|k| live_annotations.contains_key(*k))
            .map(|k| (k.clone(), Value::Null))
            .collect();
        if !remove.is_empty() {
            // removing every key drops the map (an empty map is no map to the API server)
            let v = if remove.len() == live_annotations.len() {
                Value::Null
            } else {
                Value::Object(remove)
            };
            meta_patch.insert("annotations".into(), v);
        }
        let live_labels = labels(live);
        let remove: serde_json::Map<String, Value> = c
            .labels
            .iter()
            .filter(|k| live_labels.contains_key(*k))
            .map(|k| (k.clone(), Value::Null))
            .collect();
        if !remove.is_empty() {
            let v = if remove.len() == live_labels.len() {
                Value::Null
            } else {
                Value::Object(remove)
            };
            meta_patch.insert("labels".into(), v);
        }
        if !c.field_managers.is_empty()
            && let Some(entries) =
                take_over_managers(live, &c.field_managers, &self.owner.field_manager)
        {
            meta_patch.insert("managedFields".into(), Value::Array(entries));
        }
        if meta_patch.is_empty() {
            return Ok(false);
        }
        let params = PatchParams {
            field_manager: Some(self.owner.field_manager.clone()),
            ..Default::default()
        };
        let patch = json!({"metadata": meta_patch});
        let res = api
            .patch(&meta.name, &params, &Patch::Merge(&patch))
            .await
            .map_err(|e| SsaError::Cleanup {
                subject: meta.subject(),
                message: message(&e),
            })?;
        *live = to_value(res);
        Ok(true)
    }
}

/// The error of a failed dry-run, worded as upstream's `DryRunErr`.
pub(crate) fn dry_run_error(meta: &ObjMetadata, e: &kube::Error) -> SsaError {
    if is_not_found(e) {
        return if meta.namespace.is_empty() {
            SsaError::NamespaceNotSpecified {
                subject: meta.subject(),
                message: message(e),
            }
        } else {
            SsaError::DryRunNotFound {
                subject: meta.subject(),
                message: message(e),
            }
        };
    }
    SsaError::DryRun {
        subject: meta.subject(),
        reason: reason(e),
        message: message(e),
    }
}

/// Upstream `PatchReplaceFieldsManagers`: the entries of the matching managers (same
/// operation, no subresource, name prefix or exact) are merged into the owner's Apply entry,
/// or the first one becomes it. `None` when nothing matches.
fn take_over_managers(live: &Value, managers: &[FieldManager], owner: &str) -> Option<Vec<Value>> {
    let entries = live.pointer("/metadata/managedFields")?.as_array()?;
    let matches = |e: &Value| {
        let subresource = str_at(e, &["subresource"]);
        let name = str_at(e, &["manager"]);
        let op = str_at(e, &["operation"]);
        subresource.is_empty()
            && managers.iter().any(|m| {
                m.operation.as_str() == op
                    && if m.exact_match {
                        name == m.name
                    } else {
                        name.starts_with(&m.name)
                    }
            })
    };
    let owner_idx = entries.iter().position(|e| {
        str_at(e, &["manager"]) == owner
            && str_at(e, &["operation"]) == "Apply"
            && str_at(e, &["subresource"]).is_empty()
    });
    let mut owner_entry = owner_idx.map(|i| entries[i].clone());
    let mut kept = vec![];
    let mut edited = false;
    for (i, e) in entries.iter().enumerate() {
        if Some(i) == owner_idx {
            continue;
        }
        if !matches(e) {
            kept.push(e.clone());
            continue;
        }
        edited = true;
        match owner_entry.as_mut() {
            None => {
                let mut renamed = e.clone();
                renamed["manager"] = Value::String(owner.into());
                renamed["operation"] = Value::String("Apply".into());
                owner_entry = Some(renamed);
            }
            Some(o) => {
                let fields = e.get("fieldsV1").cloned().unwrap_or(Value::Null);
                match o.get_mut("fieldsV1") {
                    Some(f) => union_fields(f, &fields),
                    None => o["fieldsV1"] = fields,
                }
            }
        }
    }
    if !edited {
        return None;
    }
    kept.extend(owner_entry);
    Some(kept)
}

/// The union of two fieldsV1 tries.
fn union_fields(into: &mut Value, other: &Value) {
    match (into, other) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(k) {
                    Some(existing) => union_fields(existing, v),
                    None => {
                        a.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (into @ Value::Null, other) => *into = other.clone(),
        _ => {}
    }
}

/// Upstream `hasDrifted` (with the ignore rules applied to both sides, matched against the
/// dry-run object): new objects drifted; otherwise labels, annotations and everything but
/// metadata and status are compared.
pub(crate) fn has_drifted(live: Option<&Value>, dry: &Value, rules: &CompiledIgnoreRules) -> bool {
    let Some(live) = live else {
        return true;
    };
    if str_at(dry, &["metadata", "resourceVersion"]).is_empty() {
        return true;
    }
    let mut live = live.clone();
    let mut dry_copy = dry.clone();
    for p in rules.paths_for(dry) {
        remove_pointer(&mut live, &p);
        remove_pointer(&mut dry_copy, &p);
    }
    labels(&live) != labels(&dry_copy)
        || annotations(&live) != annotations(&dry_copy)
        || for_diff(&live) != for_diff(&dry_copy)
}

/// For each ignored path whose live value differs from the dry-run: drop it from the payload
/// when another Apply manager owns it, otherwise put the live value in the payload (so the
/// apply keeps it), as upstream `computeDriftedPaths` + `applyDriftResult`.
fn keep_drifted_ignored_fields(
    payload: &mut Value,
    live: &Value,
    dry: &Value,
    rules: &CompiledIgnoreRules,
    owner: &str,
) {
    for p in rules.paths_for(dry) {
        let lv = if p.is_empty() {
            Some(live)
        } else {
            live.pointer(&p)
        };
        let dv = if p.is_empty() {
            Some(dry)
        } else {
            dry.pointer(&p)
        };
        if lv == dv || p.is_empty() {
            continue;
        }
        if owned_by_other_apply_manager(live, &p, owner) {
            remove_pointer(payload, &p);
        } else if let Some(v) = lv {
            set_pointer(payload, &p, v.clone());
        } else {
            remove_pointer(payload, &p);
        }
    }
}

/// True when an Apply manager other than `owner` owns the field at `pointer`. A list index in
/// the pointer is resolved to the `k:{...}` key (of any Apply entry) whose fields all equal the
/// live list item's, as upstream `isFieldOwnedByOtherApplyManager`; an index that cannot be
/// resolved counts as not owned.
fn owned_by_other_apply_manager(live: &Value, pointer: &str, owner: &str) -> bool {
    let Some(tokens) = pointer_tokens(pointer) else {
        return false;
    };
    let Some(entries) = live
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
    else {
        return false;
    };
    let applies: Vec<(&str, &Value)> = entries
        .iter()
        .filter(|e| str_at(e, &["operation"]) == "Apply" && str_at(e, &["subresource"]).is_empty())
        .filter_map(|e| Some((str_at(e, &["manager"]), e.get("fieldsV1")?)))
        .collect();
    // the fieldsV1 path of the pointer
    let mut segments: Vec<String> = vec![];
    let mut item = live;
    for t in &tokens {
        let index = t.parse::<usize>().ok().filter(|_| item.is_array());
        let Some(index) = index else {
            segments.push(format!("f:{t}"));
            match item.get(t) {
                Some(next) => item = next,
                None => item = &Value::Null,
            }
            continue;
        };
        let Some(element) = item.get(index) else {
            return false;
        };
        let key = applies.iter().find_map(|(_, fields)| {
            let parent = segments.iter().try_fold(*fields, |f, s| f.get(s))?;
            parent.as_object()?.keys().find(|k| {
                k.strip_prefix("k:")
                    .and_then(|kv| serde_json::from_str::<serde_json::Map<String, Value>>(kv).ok())
                    .is_some_and(|kv| kv.iter().all(|(k, v)| element.get(k) == Some(v)))
            })
        });
        let Some(key) = key else {
            return false;
        };
        segments.push(key.clone());
        item = element;
    }
    applies
        .iter()
        .filter(|(manager, _)| *manager != owner)
        .any(|(_, fields)| segments.iter().try_fold(*fields, |f, s| f.get(s)).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manager::ManagedFieldsOperation;

    #[test]
    fn managers_are_taken_over_and_merged() {
        let live = json!({"metadata": {"managedFields": [
            {"manager": "kustomize-controller", "operation": "Apply", "fieldsV1": {"f:data": {"f:a": {}}}},
            {"manager": "kubectl-edit", "operation": "Update", "fieldsV1": {"f:data": {"f:b": {}}}},
            {"manager": "kubectl-client-side-apply", "operation": "Update", "fieldsV1": {"f:data": {"f:c": {}}}},
            {"manager": "kubectl", "operation": "Update", "subresource": "status", "fieldsV1": {"f:status": {}}},
            {"manager": "other", "operation": "Update", "fieldsV1": {"f:data": {"f:d": {}}}}
        ]}});
        let managers = [FieldManager::prefix(
            "kubectl",
            ManagedFieldsOperation::Update,
        )];
        let out = take_over_managers(&live, &managers, "kustomize-controller").unwrap();
        let names: Vec<_> = out.iter().map(|e| e["manager"].as_str().unwrap()).collect();
        assert_eq!(names, ["kubectl", "other", "kustomize-controller"]);
        assert_eq!(
            out[2]["fieldsV1"],
            json!({"f:data": {"f:a": {}, "f:b": {}, "f:c": {}}})
        );

        // no owner entry: the first match is renamed
        let live = json!({"metadata": {"managedFields": [
            {"manager": "kubectl", "operation": "Apply", "fieldsV1": {"f:data": {"f:b": {}}}}
        ]}});
        let managers = [FieldManager::prefix(
            "kubectl",
            ManagedFieldsOperation::Apply,
        )];
        let out = take_over_managers(&live, &managers, "kc").unwrap();
        assert_eq!(
            out,
            vec![
                json!({"manager": "kc", "operation": "Apply", "fieldsV1": {"f:data": {"f:b": {}}}})
            ]
        );
        // nothing to do
        let managers = [FieldManager::prefix("helm", ManagedFieldsOperation::Apply)];
        assert!(take_over_managers(&live, &managers, "kc").is_none());
    }

    #[test]
    fn drift_ignores_metadata_noise_and_ignored_paths() {
        let live = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "resourceVersion": "5", "managedFields": [], "labels": {}},
            "data": {"a": "1", "b": "2"}});
        let mut dry = live.clone();
        dry["metadata"]["resourceVersion"] = json!("6");
        dry["metadata"]["generation"] = json!(3);
        dry["metadata"].as_object_mut().unwrap().remove("labels");
        let none = CompiledIgnoreRules::default();
        assert!(!has_drifted(Some(&live), &dry, &none));
        dry["data"]["b"] = json!("3");
        assert!(has_drifted(Some(&live), &dry, &none));
        let rules = CompiledIgnoreRules::compile(&[IgnoreRule {
            paths: vec!["/data/b".into()],
            target: None,
        }])
        .unwrap();
        assert!(!has_drifted(Some(&live), &dry, &rules));
        dry["metadata"]["labels"] = json!({"x": "y"});
        assert!(has_drifted(Some(&live), &dry, &rules));
        assert!(has_drifted(None, &dry, &rules));
    }

    #[test]
    fn ownership_of_ignored_paths_follows_list_keys() {
        let live = json!({
            "metadata": {"managedFields": [
                {"manager": "kustomize-controller", "operation": "Apply",
                 "fieldsV1": {"f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {"f:image": {}}}}}},
                {"manager": "vpa", "operation": "Apply",
                 "fieldsV1": {"f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {"f:resources": {}}}, "f:replicas": {}}}},
                {"manager": "editor", "operation": "Update", "fieldsV1": {"f:spec": {"f:paused": {}}}}
            ]},
            "spec": {"replicas": 2, "paused": true, "containers": [{"name": "app", "image": "x", "resources": {}}]}
        });
        let owned = |p: &str| owned_by_other_apply_manager(&live, p, "kustomize-controller");
        assert!(owned("/spec/replicas"));
        assert!(owned("/spec/containers/0/resources"));
        assert!(
            !owned("/spec/containers/0/image"),
            "only the owner applies it"
        );
        assert!(!owned("/spec/paused"), "Update managers do not count");
        assert!(!owned("/spec/containers/3/resources"));
    }
}
