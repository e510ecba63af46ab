//! Drift detection as helm-controller does it (`action.Diff`): every object of the release
//! manifest, with the metadata it was applied with, is dry-run applied (server-side, field
//! manager helm-controller) and compared with the live object, `spec.driftDetection.ignore`
//! paths left out and objects annotated `helm.toolkit.fluxcd.io/driftDetection: disabled`
//! excluded. Correction (`mode: enabled`) applies the drifted objects again.

use std::collections::BTreeMap;

use ferroflux_api::HelmRelease;
use ferroflux_helm::release::Release;
use ferroflux_ssa::{Action, ApplyOptions, ChangeSet};
use serde_json::Value;

use crate::action::Helm;

/// One difference between the release and the cluster.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// The object is missing from the cluster (upstream's `DiffTypeCreate`, "removed").
    Removed { subject: String, desired: Value },
    /// The object differs; counts of JSON patch operations.
    Changed {
        subject: String,
        desired: Value,
        added: usize,
        changed: usize,
        removed: usize,
    },
    /// Excluded by annotation.
    Excluded { subject: String },
}

impl Change {
    pub fn has_changes(&self) -> bool {
        !matches!(self, Change::Excluded { .. })
    }
}

/// upstream's `SummarizeDiffSet`: one line per removed, changed or excluded object.
pub fn summarize(set: &[Change]) -> String {
    set.iter()
        .map(|c| match c {
            Change::Removed { subject, .. } => format!("{subject} removed"),
            Change::Excluded { subject } => format!("{subject} excluded"),
            Change::Changed {
                subject,
                added,
                changed,
                removed,
                ..
            } => format!(
                "{subject} changed ({added} additions, {changed} changes, {removed} removals)"
            ),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// upstream's `SummarizeDiffSetBrief`: `removed: N, changed: N, excluded: N`.
pub fn summarize_brief(set: &[Change]) -> String {
    let count = |f: fn(&Change) -> bool| set.iter().filter(|c| f(c)).count();
    format!(
        "removed: {}, changed: {}, excluded: {}",
        count(|c| matches!(c, Change::Removed { .. })),
        count(|c| matches!(c, Change::Changed { .. })),
        count(|c| matches!(c, Change::Excluded { .. })),
    )
}

/// Counts the operations of an RFC 6902 patch from `live` to `desired`: objects compared key
/// by key, arrays of equal length element by element, anything else replaced whole.
pub fn patch_counts(live: &Value, desired: &Value) -> (usize, usize, usize) {
    fn walk(a: &Value, b: &Value, acc: &mut (usize, usize, usize)) {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                for (k, va) in x {
                    match y.get(k) {
                        Some(vb) => walk(va, vb, acc),
                        None => acc.2 += 1,
                    }
                }
                acc.0 += y.keys().filter(|k| !x.contains_key(*k)).count();
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
                for (va, vb) in x.iter().zip(y) {
                    walk(va, vb, acc);
                }
            }
            (a, b) if a != b => acc.1 += 1,
            _ => {}
        }
    }
    let mut acc = (0, 0, 0);
    walk(live, desired, &mut acc);
    acc
}

fn options(obj: &HelmRelease) -> ApplyOptions {
    let ignore = obj
        .spec
        .drift_detection
        .as_ref()
        .and_then(|d| d.ignore.as_ref())
        .into_iter()
        .flatten()
        .map(|rule| ferroflux_ssa::IgnoreRule {
            paths: rule.paths.clone(),
            target: rule.target.as_ref().map(|t| ferroflux_ssa::Selector {
                group: t.group.clone().unwrap_or_default(),
                version: t.version.clone().unwrap_or_default(),
                kind: t.kind.clone().unwrap_or_default(),
                name: t.name.clone().unwrap_or_default(),
                namespace: t.namespace.clone().unwrap_or_default(),
                annotation_selector: t.annotation_selector.clone().unwrap_or_default(),
                label_selector: t.label_selector.clone().unwrap_or_default(),
            }),
        })
        .collect();
    ApplyOptions {
        ignore,
        exclusions: BTreeMap::from([(
            "helm.toolkit.fluxcd.io/driftDetection".to_string(),
            "disabled".to_string(),
        )]),
        ..Default::default()
    }
}

/// The differences between the release's objects and the cluster. Errors of single objects
/// are collected; with some changes found they are logged, without any returned.
pub async fn diff(helm: &Helm, obj: &HelmRelease, rel: &Release) -> Result<Vec<Change>, String> {
    let objects = helm.release_objects(rel).await?;
    let opts = options(obj);
    let mut set = Vec::new();
    let mut errs = Vec::new();
    for o in objects {
        match helm.manager.diff(o.clone(), &opts).await {
            Ok(r) => {
                let subject = r.entry.subject.clone();
                match r.entry.action {
                    Action::Created => set.push(Change::Removed {
                        subject,
                        desired: o,
                    }),
                    Action::Skipped => set.push(Change::Excluded { subject }),
                    Action::Configured => {
                        let (added, changed, removed) = patch_counts(
                            r.live.as_ref().unwrap_or(&Value::Null),
                            r.desired.as_ref().unwrap_or(&Value::Null),
                        );
                        set.push(Change::Changed {
                            subject,
                            desired: o,
                            added,
                            changed,
                            removed,
                        });
                    }
                    _ => {}
                }
            }
            Err(e) => errs.push(e.to_string()),
        }
    }
    let changed = set.iter().any(Change::has_changes);
    if !errs.is_empty() {
        if !changed {
            return Err(errs.join("\n"));
        }
        tracing::error!(
            "diff of release against cluster state completed with error: {}",
            errs.join("; ")
        );
    }
    Ok(set)
}

/// Applies the removed and changed objects again (`ApplyDiff`): the change set of what was
/// corrected, and the error if some could not be.
pub async fn correct(helm: &Helm, set: &[Change]) -> (ChangeSet, Result<(), String>) {
    let objects: Vec<Value> = set
        .iter()
        .filter_map(|c| match c {
            Change::Removed { desired, .. } | Change::Changed { desired, .. } => {
                Some(desired.clone())
            }
            Change::Excluded { .. } => None,
        })
        .collect();
    let (cs, res) = helm
        .manager
        .apply_all_staged_partial(objects, &ApplyOptions::default())
        .await;
    (cs, res.map_err(|e| e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_and_summaries() {
        let live = json!({"spec": {"replicas": 3, "template": {"x": [1, 2]}, "gone": 1}});
        let desired = json!({"spec": {"replicas": 1, "template": {"x": [1, 3]}, "new": true}});
        assert_eq!(patch_counts(&live, &desired), (1, 2, 1));
        let set = vec![
            Change::Changed {
                subject: "Deployment/default/web".into(),
                desired: json!({}),
                added: 0,
                changed: 1,
                removed: 0,
            },
            Change::Removed {
                subject: "Service/default/web".into(),
                desired: json!({}),
            },
        ];
        assert_eq!(
            summarize(&set),
            "Deployment/default/web changed (0 additions, 1 changes, 0 removals)\nService/default/web removed"
        );
        assert_eq!(summarize_brief(&set), "removed: 1, changed: 1, excluded: 0");
    }
}
