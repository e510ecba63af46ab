//! `Kustomization` (`kustomize.toolkit.fluxcd.io/v1`): builds a kustomize overlay from a source
//! artifact, applies it with server-side apply, prunes what left it and waits for health.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::Duration;
use crate::kustomize::{
    CommonMetadata, CustomHealthCheck, IgnoreRule, Image, Patch, ResourceInventory,
};
use crate::refs::{
    DependencyReference, KubeConfigReference, LocalObjectReference, NamespacedObjectKindReference,
};

/// Desired state of a Kustomization.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "kustomize.toolkit.fluxcd.io",
    version = "v1",
    kind = "Kustomization",
    plural = "kustomizations",
    singular = "kustomization",
    namespaced,
    status = "KustomizationStatus",
    shortname = "ks",
    category = "all",
    category = "fluxcd",
    category = "fluxcd-appliers",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#,
    doc = "Applies a kustomize overlay from a Flux source to the cluster and keeps it in sync.",
    derive = "PartialEq",
    derive = "Default"
)]
#[serde(rename_all = "camelCase")]
pub struct KustomizationSpec {
    /// Labels and annotations added to every applied object (existing keys are overwritten).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_metadata: Option<CommonMetadata>,
    /// Kustomizations that must be ready before this one is applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depends_on: Option<Vec<DependencyReference>>,
    /// How to decrypt SOPS-encrypted Secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decryption: Option<Decryption>,
    /// What happens to the applied objects when the Kustomization is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
    /// How often the overlay is applied again to correct drift.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required, regex(pattern = crate::schema::DURATION_PATTERN))]
    pub interval: Option<Duration>,
    /// Retry interval after a failure; `interval` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = crate::schema::DURATION_PATTERN))]
    pub retry_interval: Option<Duration>,
    /// Kubeconfig of a remote cluster to apply to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_config: Option<KubeConfigReference>,
    /// Directory of the overlay inside the artifact; its root when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Variable substitution after the build.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_build: Option<PostBuild>,
    /// Delete objects that left the overlay.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    pub prune: Option<bool>,
    /// Objects whose health is checked after applying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_checks: Option<Vec<NamespacedObjectKindReference>>,
    /// CEL health checks for custom kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_exprs: Option<Vec<CustomHealthCheck>>,
    /// Prefix added to the names of all objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 200))]
    pub name_prefix: Option<String>,
    /// Suffix added to the names of all objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 200))]
    pub name_suffix: Option<String>,
    /// Strategic merge or JSON6902 patches applied to the overlay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patches: Option<Vec<Patch>>,
    /// Image name, tag or digest overrides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<Image>>,
    /// ServiceAccount to impersonate when applying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// The source whose artifact holds the overlay.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    pub source_ref: Option<CrossNamespaceSourceReference>,
    /// Stop reconciling this object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
    /// Namespace set on all namespaced objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub target_namespace: Option<String>,
    /// Timeout of build, apply and health checks; derived from `interval` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = crate::schema::DURATION_PATTERN))]
    pub timeout: Option<Duration>,
    /// Recreate objects whose immutable fields changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = false))]
    pub force: Option<bool>,
    /// Wait for every applied object to become ready (replaces `healthChecks`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<bool>,
    /// Kustomize components (paths relative to `path`) to include.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub components: Option<Vec<String>>,
    /// Skip components that do not exist instead of failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_missing_components: Option<bool>,
    /// Kustomize build metadata options to enable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_metadata: Option<Vec<BuildMetadata>>,
    /// Fields left alone by drift correction and apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore: Option<Vec<IgnoreRule>>,
}

/// SOPS decryption settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Decryption {
    /// Decryption tool.
    pub provider: DecryptionProvider,
    /// Secret with decryption keys (age, PGP, cloud KMS credentials).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
    /// ServiceAccount whose workload identity reaches the cloud KMS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
}

/// Decryption tool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DecryptionProvider {
    /// Mozilla SOPS.
    Sops,
}

/// What happens to the applied objects when a Kustomization is deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum DeletionPolicy {
    /// Delete them if `prune` is true, keep them otherwise.
    #[default]
    MirrorPrune,
    /// Delete them.
    Delete,
    /// Delete them and wait until they are gone.
    WaitForTermination,
    /// Keep them.
    Orphan,
}

/// Post-build variable substitution.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PostBuild {
    /// Variables and their values; these win over `substituteFrom`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub substitute: Option<BTreeMap<String, String>>,
    /// ConfigMaps and Secrets whose data supply variables, later ones winning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub substitute_from: Option<Vec<SubstituteReference>>,
    /// Whether substitution runs only when variables are defined, or always.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub substitute_strategy: Option<SubstituteStrategy>,
}

/// A ConfigMap or Secret supplying substitution variables.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubstituteReference {
    /// `Secret` or `ConfigMap`.
    pub kind: ValuesSourceKind,
    /// Name of the object, in the Kustomization's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Carry on when the object is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = false))]
    pub optional: Option<bool>,
}

/// Kinds that hold configuration data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ValuesSourceKind {
    /// A Secret.
    Secret,
    /// A ConfigMap.
    ConfigMap,
}

/// When variable substitution runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum SubstituteStrategy {
    /// Only when `substitute` or `substituteFrom` define variables.
    #[default]
    WithVariables,
    /// Always, so that `${VAR:=default}` expressions resolve.
    Always,
}

/// Kustomize build metadata options.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum BuildMetadata {
    /// Annotate objects with the file they came from.
    OriginAnnotations,
    /// Annotate objects with the transformers that changed them.
    TransformerAnnotations,
}

/// The source of a Kustomization, possibly in another namespace.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CrossNamespaceSourceReference {
    /// API version of the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind of the source.
    pub kind: KustomizationSourceKind,
    /// Name of the source.
    pub name: String,
    /// Namespace of the source; the Kustomization's namespace when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

crate::refs::kind_enum! {
    /// Kinds a Kustomization can take its artifact from.
    pub enum KustomizationSourceKind {
        /// An OCIRepository.
        OCIRepository,
        /// A GitRepository.
        GitRepository,
        /// A Bucket.
        Bucket,
        /// An ExternalArtifact.
        ExternalArtifact,
    }
}

/// Observed state of a Kustomization.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("default" = {"observedGeneration": -1}))]
pub struct KustomizationStatus {
    /// Generation of the spec last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Conditions of the Kustomization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::conditions::conditions_schema")]
    pub conditions: Option<Vec<Condition>>,
    /// Source revision last applied successfully.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_revision: Option<String>,
    /// Origin revision (from the artifact metadata) last applied successfully.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_origin_revision: Option<String>,
    /// Source revision of the last attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_revision: Option<String>,
    /// Objects applied by the last successful reconciliation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<ResourceInventory>,
    /// The latest distinct reconciliations, newest first (at most five).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<HistoryEntry>>,
    /// Value of the `reconcile.fluxcd.io/requestedAt` annotation last handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

impl Default for KustomizationStatus {
    fn default() -> Self {
        Self {
            observed_generation: Some(-1),
            conditions: None,
            last_applied_revision: None,
            last_applied_origin_revision: None,
            last_attempted_revision: None,
            inventory: None,
            history: None,
            last_handled_reconcile_at: None,
        }
    }
}

/// A summary of reconciliations that produced the same build with the same outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// `sha256:<hex>` of the built manifests.
    pub digest: String,
    /// First reconciliation with this digest and outcome.
    pub first_reconciled: Time,
    /// Latest reconciliation with this digest and outcome.
    pub last_reconciled: Time,
    /// How long the latest one took.
    pub last_reconciled_duration: Duration,
    /// Outcome of the latest one (the Ready reason).
    pub last_reconciled_status: String,
    /// Number of reconciliations with this digest and outcome.
    pub total_reconciliations: i64,
    /// Source revisions involved (`revision`, `originRevision`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
}

impl Kustomization {
    /// Timeout of build, apply and health checks: `spec.timeout`, else `spec.interval` minus
    /// 30s; never less than 30s.
    pub fn effective_timeout(&self) -> std::time::Duration {
        let floor = std::time::Duration::from_secs(30);
        let wanted = match &self.spec.timeout {
            Some(t) => t.to_std().ok(),
            None => crate::object::parse_opt(self.spec.interval.as_ref())
                .map(|i| i.saturating_sub(floor)),
        };
        wanted.map_or(floor, |d| d.max(floor))
    }

    /// Wait after a failed reconciliation: `spec.retryInterval`, else `spec.interval`.
    pub fn effective_retry_interval(&self) -> Option<std::time::Duration> {
        crate::object::parse_opt(self.spec.retry_interval.as_ref())
            .or_else(|| crate::object::parse_opt(self.spec.interval.as_ref()))
    }

    /// `spec.prune`, false when absent.
    pub fn prune(&self) -> bool {
        self.spec.prune.unwrap_or(false)
    }

    /// `spec.deletionPolicy`, or `MirrorPrune`.
    pub fn deletion_policy(&self) -> DeletionPolicy {
        self.spec.deletion_policy.unwrap_or_default()
    }

    /// `spec.postBuild.substituteStrategy`, or `WithVariables`.
    pub fn substitute_strategy(&self) -> SubstituteStrategy {
        self.spec
            .post_build
            .as_ref()
            .and_then(|p| p.substitute_strategy)
            .unwrap_or_default()
    }
}

crate::object::impl_flux_object!(Kustomization, retry_interval = retry_interval);

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration as Std;

    fn ks(spec: serde_json::Value) -> Kustomization {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": {"name": "apps", "namespace": "flux-system"},
            "spec": spec,
        }))
        .unwrap()
    }

    #[test]
    fn timeout_follows_interval_with_a_floor() {
        assert_eq!(
            ks(serde_json::json!({"interval": "10m"})).effective_timeout(),
            Std::from_secs(570)
        );
        assert_eq!(
            ks(serde_json::json!({"interval": "40s"})).effective_timeout(),
            Std::from_secs(30)
        );
        assert_eq!(
            ks(serde_json::json!({"interval": "10m", "timeout": "2m"})).effective_timeout(),
            Std::from_secs(120)
        );
        assert_eq!(
            ks(serde_json::json!({"interval": "10m", "timeout": "5s"})).effective_timeout(),
            Std::from_secs(30)
        );
        assert_eq!(
            ks(serde_json::json!({})).effective_timeout(),
            Std::from_secs(30)
        );
    }

    #[test]
    fn defaults_of_optional_fields() {
        let k = ks(serde_json::json!({"interval": "10m"}));
        assert_eq!(k.effective_retry_interval(), Some(Std::from_secs(600)));
        assert!(!k.prune());
        assert_eq!(k.deletion_policy(), DeletionPolicy::MirrorPrune);
        assert_eq!(k.substitute_strategy(), SubstituteStrategy::WithVariables);
        let k = ks(serde_json::json!({
            "interval": "10m", "retryInterval": "1m", "prune": true, "deletionPolicy": "Orphan",
            "postBuild": {"substituteStrategy": "Always"},
            "sourceRef": {"kind": "ArtifactGenerator", "name": "x"},
        }));
        assert_eq!(k.effective_retry_interval(), Some(Std::from_secs(60)));
        assert!(k.prune());
        assert_eq!(k.deletion_policy(), DeletionPolicy::Orphan);
        assert_eq!(k.substitute_strategy(), SubstituteStrategy::Always);
        let kind = &k.spec.source_ref.as_ref().unwrap().kind;
        assert_eq!(
            kind,
            &KustomizationSourceKind::Other("ArtifactGenerator".into())
        );
        assert!(!kind.is_known());
    }

    #[test]
    fn serializes_only_what_is_set() {
        let k = ks(serde_json::json!({"interval": "1m", "prune": false, "suspend": false}));
        assert_eq!(
            serde_json::to_value(&k).unwrap()["spec"],
            serde_json::json!({"interval": "1m", "prune": false, "suspend": false})
        );
    }
}
