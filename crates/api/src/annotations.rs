//! Well-known annotation and label keys, their values, and the Flux finalizer.

use std::collections::BTreeMap;

/// Finalizer every reconciled Flux kind carries.
pub const FINALIZER: &str = "finalizers.fluxcd.io";

// ---- Annotations on Flux objects -------------------------------------------------------------

/// Token annotation; a new value asks for an immediate reconcile. Copied into
/// `status.lastHandledReconcileAt` once handled.
pub const RECONCILE_REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";
/// HelmRelease: one-off forced install/upgrade when equal to `requestedAt`.
pub const FORCE_REQUESTED_AT: &str = "reconcile.fluxcd.io/forceAt";
/// HelmRelease: reset of the failure counters when equal to `requestedAt`.
pub const RESET_REQUESTED_AT: &str = "reconcile.fluxcd.io/resetAt";
/// Prefix of object annotations copied into the metadata of every event about the object.
pub const EVENT_METADATA_PREFIX: &str = "event.toolkit.fluxcd.io/";

// ---- Annotations/labels on managed objects ---------------------------------------------------

/// `disabled`: the Kustomization neither applies nor prunes this object.
pub const KUSTOMIZE_RECONCILE: &str = "kustomize.toolkit.fluxcd.io/reconcile";
/// Server-side apply policy for this object (see the `SSA_*` values).
pub const KUSTOMIZE_SSA: &str = "kustomize.toolkit.fluxcd.io/ssa";
/// `Enabled`: recreate the object when an immutable field changes.
pub const KUSTOMIZE_FORCE: &str = "kustomize.toolkit.fluxcd.io/force";
/// `Disabled`: never delete this object when pruning.
pub const KUSTOMIZE_PRUNE: &str = "kustomize.toolkit.fluxcd.io/prune";
/// `disabled`: skip post-build variable substitution for this manifest.
pub const KUSTOMIZE_SUBSTITUTE: &str = "kustomize.toolkit.fluxcd.io/substitute";
/// `disabled`: do not SOPS-decrypt this Secret.
pub const KUSTOMIZE_DECRYPT: &str = "kustomize.toolkit.fluxcd.io/decrypt";
/// `disabled`: leave this chart object out of Helm drift detection.
pub const HELM_DRIFT_DETECTION: &str = "helm.toolkit.fluxcd.io/driftDetection";

/// Value that turns a feature off (`reconcile`, `substitute`, `decrypt`, `driftDetection`).
pub const DISABLED_VALUE: &str = "disabled";
/// Value that turns a feature on (`force`, `reconcile.fluxcd.io/watch`).
pub const ENABLED_VALUE: &str = "Enabled";
/// SSA policy: take ownership of every field (default).
pub const SSA_OVERRIDE: &str = "Override";
/// SSA policy: keep fields set by other managers.
pub const SSA_MERGE: &str = "Merge";
/// SSA policy: create the object only if it does not exist.
pub const SSA_IF_NOT_PRESENT: &str = "IfNotPresent";
/// SSA policy: neither apply nor prune the object.
pub const SSA_IGNORE: &str = "Ignore";

// ---- Labels ----------------------------------------------------------------------------------

/// Name of the Kustomization that applied an object.
pub const KUSTOMIZE_NAME_LABEL: &str = "kustomize.toolkit.fluxcd.io/name";
/// Namespace of the Kustomization that applied an object.
pub const KUSTOMIZE_NAMESPACE_LABEL: &str = "kustomize.toolkit.fluxcd.io/namespace";
/// Name of the HelmRelease that rendered an object (also on the generated HelmChart).
pub const HELM_NAME_LABEL: &str = "helm.toolkit.fluxcd.io/name";
/// Namespace of the HelmRelease that rendered an object.
pub const HELM_NAMESPACE_LABEL: &str = "helm.toolkit.fluxcd.io/namespace";
/// `Enabled` on a ConfigMap/Secret: referencing Kustomizations/HelmReleases reconcile on change.
pub const WATCH_LABEL: &str = "reconcile.fluxcd.io/watch";
/// Shard key used with `--watch-label-selector`.
pub const SHARDING_KEY_LABEL: &str = "sharding.fluxcd.io/key";
/// Helm release name annotation on Helm-owned objects.
pub const HELM_RELEASE_NAME_ANNOTATION: &str = "meta.helm.sh/release-name";
/// Helm release namespace annotation on Helm-owned objects.
pub const HELM_RELEASE_NAMESPACE_ANNOTATION: &str = "meta.helm.sh/release-namespace";

/// `app.kubernetes.io/part-of`; `flux` on every component, CRDs included.
pub const PART_OF_LABEL: &str = "app.kubernetes.io/part-of";
/// Value of [`PART_OF_LABEL`].
pub const PART_OF_FLUX: &str = "flux";
/// `app.kubernetes.io/component`: the controller a component belongs to.
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";
/// `app.kubernetes.io/instance`.
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
/// `app.kubernetes.io/version`.
pub const VERSION_LABEL: &str = "app.kubernetes.io/version";
/// `app.kubernetes.io/managed-by`.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";

/// True if `key` is set to `value` (compared case-insensitively) in either the labels or the
/// annotations, the way the Flux controllers read their per-object switches.
pub fn has_value(
    labels: Option<&BTreeMap<String, String>>,
    annotations: Option<&BTreeMap<String, String>>,
    key: &str,
    value: &str,
) -> bool {
    [labels, annotations]
        .into_iter()
        .flatten()
        .filter_map(|m| m.get(key))
        .any(|v| v.eq_ignore_ascii_case(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_value_reads_labels_and_annotations_case_insensitively() {
        let labels = BTreeMap::from([(KUSTOMIZE_PRUNE.to_owned(), "disabled".to_owned())]);
        let annotations = BTreeMap::from([(KUSTOMIZE_SSA.to_owned(), "ifnotpresent".to_owned())]);
        assert!(has_value(Some(&labels), None, KUSTOMIZE_PRUNE, "Disabled"));
        assert!(has_value(
            None,
            Some(&annotations),
            KUSTOMIZE_SSA,
            SSA_IF_NOT_PRESENT
        ));
        assert!(!has_value(
            Some(&labels),
            Some(&annotations),
            KUSTOMIZE_FORCE,
            ENABLED_VALUE
        ));
        assert!(!has_value(None, None, KUSTOMIZE_PRUNE, "disabled"));
    }
}
