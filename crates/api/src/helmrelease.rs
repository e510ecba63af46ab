//! `HelmRelease` (`helm.toolkit.fluxcd.io/v2`): installs and upgrades a Helm chart from a Flux
//! source, with remediation, tests, drift detection and post-rendering.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::Duration;
use crate::helmchart::{HelmChartSourceKind, ReconcileStrategy};
use crate::kustomization::ValuesSourceKind;
use crate::kustomize::{
    CommonMetadata, CustomHealthCheck, IgnoreRule, Image, Patch, ResourceInventory,
};
use crate::ocirepository::VerificationProvider;
use crate::refs::{DependencyReference, KubeConfigReference, LocalObjectReference};

/// Desired state of a HelmRelease.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "helm.toolkit.fluxcd.io",
    version = "v2",
    kind = "HelmRelease",
    plural = "helmreleases",
    singular = "helmrelease",
    namespaced,
    status = "HelmReleaseStatus",
    shortname = "hr",
    category = "all",
    category = "fluxcd",
    category = "fluxcd-appliers",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#,
    doc = "Installs a Helm chart from a Flux source and keeps the release in sync.",
    derive = "PartialEq",
    derive = "Default"
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "message": "either chart or chartRef must be set",
        "rule": "(has(self.chart) && !has(self.chartRef)) || (!has(self.chart) && has(self.chartRef))",
    },
]))]
pub struct HelmReleaseSpec {
    /// Template of the HelmChart object the controller creates for this release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<HelmChartTemplate>,
    /// An existing chart source (OCIRepository, HelmChart or ExternalArtifact) instead of a
    /// chart template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart_ref: Option<CrossNamespaceSourceReference>,
    /// How often the release is reconciled.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required, regex(pattern = crate::schema::DURATION_PATTERN))]
    pub interval: Option<Duration>,
    /// Kubeconfig of a remote cluster to install into.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_config: Option<KubeConfigReference>,
    /// Stop reconciling this object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
    /// Helm release name; `[<targetNamespace>-]<name>` when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 53))]
    pub release_name: Option<String>,
    /// Namespace the release is installed into; the HelmRelease's namespace when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub target_namespace: Option<String>,
    /// Namespace of the Helm storage Secrets; the HelmRelease's namespace when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub storage_namespace: Option<String>,
    /// HelmReleases that must be ready before this one is reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depends_on: Option<Vec<DependencyReference>>,
    /// Default timeout of Helm actions; `5m0s` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = crate::schema::DURATION_PATTERN))]
    pub timeout: Option<Duration>,
    /// Number of release revisions kept; 5 when absent, 0 for unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::integer")]
    pub max_history: Option<i64>,
    /// ServiceAccount to impersonate for Helm actions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub service_account_name: Option<String>,
    /// Reuse one Kubernetes client for all Helm actions of a reconciliation; true when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_client: Option<bool>,
    /// Detection (and correction) of changes made to the release objects in the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift_detection: Option<DriftDetection>,
    /// Settings of Helm install.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install: Option<Install>,
    /// Settings of Helm upgrade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<Upgrade>,
    /// Settings of Helm test.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<Test>,
    /// Settings of Helm rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback: Option<Rollback>,
    /// Settings of Helm uninstall.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uninstall: Option<Uninstall>,
    /// ConfigMaps and Secrets supplying values, merged in order before `values`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values_from: Option<Vec<ValuesReference>>,
    /// Inline values, merged last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_fields")]
    pub values: Option<serde_json::Value>,
    /// Kustomize post-renderers applied to the rendered manifests, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_renderers: Option<Vec<PostRenderer>>,
    /// Whether post-renderers also see hooks, and whether hooks are rendered separately.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_render_strategy: Option<PostRenderStrategy>,
    /// Labels and annotations added to every object of the release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_metadata: Option<CommonMetadata>,
    /// How the controller waits for release objects to become ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_strategy: Option<WaitStrategy>,
    /// CEL health checks for custom kinds (used with the `poller` wait strategy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_exprs: Option<Vec<CustomHealthCheck>>,
}

/// Template of the HelmChart generated for a HelmRelease.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HelmChartTemplate {
    /// Labels and annotations of the generated HelmChart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<HelmChartTemplateObjectMeta>,
    /// Spec of the generated HelmChart.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    pub spec: Option<HelmChartTemplateSpec>,
}

/// Metadata of the generated HelmChart.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HelmChartTemplateObjectMeta {
    /// Annotations of the generated HelmChart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Labels of the generated HelmChart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

/// Spec of the generated HelmChart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HelmChartTemplateSpec {
    /// Chart name in the repository, or path of the chart in a Git/Bucket artifact.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required, length(min = 1, max = 2048))]
    pub chart: Option<String>,
    /// SemVer range of the chart version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "*"))]
    pub version: Option<String>,
    /// The source holding the chart.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    pub source_ref: Option<CrossNamespaceObjectReference>,
    /// How often the generated HelmChart checks its source; the HelmRelease interval when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = crate::schema::DURATION_PATTERN))]
    pub interval: Option<Duration>,
    /// When the generated HelmChart builds a new artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "ChartVersion"))]
    pub reconcile_strategy: Option<ReconcileStrategy>,
    /// Values files inside the chart merged in order into its defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values_files: Option<Vec<String>>,
    /// Skip missing values files instead of failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_missing_values_files: Option<bool>,
    /// Signature verification of OCI charts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<HelmChartTemplateVerification>,
}

/// The chart source of a chart template, possibly in another namespace.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CrossNamespaceObjectReference {
    /// API version of the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind of the source.
    pub kind: HelmChartSourceKind,
    /// Name of the source.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the source; the HelmRelease's namespace when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
}

/// Signature verification settings of a chart template.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HelmChartTemplateVerification {
    /// Signing tool.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required, extend("default" = "cosign"))]
    pub provider: Option<VerificationProvider>,
    /// Secret with the trusted keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
}

/// An existing chart source of a HelmRelease, possibly in another namespace.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CrossNamespaceSourceReference {
    /// API version of the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind of the source.
    pub kind: ChartRefKind,
    /// Name of the source.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the source; the HelmRelease's namespace when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
}

crate::refs::kind_enum! {
    /// Kinds a HelmRelease `chartRef` can point to.
    pub enum ChartRefKind {
        /// An OCIRepository holding a chart.
        OCIRepository,
        /// A HelmChart.
        HelmChart,
        /// An ExternalArtifact holding a chart.
        ExternalArtifact,
    }
}

/// Drift detection settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DriftDetection {
    /// `enabled` corrects drift, `warn` only reports it, `disabled` (default) skips the check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<DriftDetectionMode>,
    /// Fields left out of drift detection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore: Option<Vec<IgnoreRule>>,
}

/// Drift detection mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DriftDetectionMode {
    /// Detect and correct drift.
    Enabled,
    /// Detect and report drift.
    Warn,
    /// No drift detection.
    #[default]
    Disabled,
}

/// How CRDs shipped in a chart's `crds/` directory are handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum CrdsPolicy {
    /// Leave them alone.
    Skip,
    /// Create missing ones, never update.
    Create,
    /// Create missing ones and replace existing ones.
    CreateReplace,
}

/// Whether an action failure is remediated or simply retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum StrategyName {
    /// Remediate (rollback/uninstall) according to `remediation`.
    RemediateOnFailure,
    /// Retry after `retryInterval` without remediating.
    RetryOnFailure,
}

/// Failure strategy of install.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "message": ".retryInterval cannot be set when .name is 'RemediateOnFailure'",
        "rule": "!has(self.retryInterval) || self.name != 'RemediateOnFailure'",
    },
]))]
pub struct InstallStrategy {
    /// The strategy.
    pub name: StrategyName,
    /// Wait between retries with `RetryOnFailure`; 5m when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = crate::schema::DURATION_PATTERN))]
    pub retry_interval: Option<Duration>,
}

/// Failure strategy of upgrade.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "message": ".retryInterval can only be set when .name is 'RetryOnFailure'",
        "rule": "!has(self.retryInterval) || self.name == 'RetryOnFailure'",
    },
]))]
pub struct UpgradeStrategy {
    /// The strategy.
    pub name: StrategyName,
    /// Wait between retries with `RetryOnFailure`; 5m when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = crate::schema::DURATION_PATTERN))]
    pub retry_interval: Option<Duration>,
}

/// Settings of Helm install.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Install {
    /// Timeout of the install; `spec.timeout` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = crate::schema::DURATION_PATTERN))]
    pub timeout: Option<Duration>,
    /// What to do when the install fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<InstallRemediation>,
    /// Whether failures are remediated or retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<InstallStrategy>,
    /// Refuse to adopt objects that exist but belong to no release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_take_ownership: Option<bool>,
    /// Do not wait for the objects to become ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_wait: Option<bool>,
    /// Do not wait for Jobs to complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_wait_for_jobs: Option<bool>,
    /// Do not run hooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_hooks: Option<bool>,
    /// Skip validation of the manifests against the cluster's OpenAPI schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "disableOpenAPIValidation")]
    pub disable_openapi_validation: Option<bool>,
    /// Skip validation of values against the chart's JSON schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_schema_validation: Option<bool>,
    /// Reuse a release name that exists in history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace: Option<bool>,
    /// Do not install CRDs (deprecated, use `crds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "skipCRDs")]
    pub skip_crds: Option<bool>,
    /// How CRDs of the chart are handled; `Create` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crds: Option<CrdsPolicy>,
    /// Create the target namespace if missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_namespace: Option<bool>,
    /// Install with server-side apply; true when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_side_apply: Option<bool>,
}

/// Remediation of a failed install.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstallRemediation {
    /// Attempts before giving up; 0 when absent, negative for unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::integer")]
    pub retries: Option<i64>,
    /// Do not treat failed tests as a failed install.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_test_failures: Option<bool>,
    /// Uninstall after the last failed attempt too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediate_last_failure: Option<bool>,
}

/// Settings of Helm upgrade.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Upgrade {
    /// Timeout of the upgrade; `spec.timeout` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = crate::schema::DURATION_PATTERN))]
    pub timeout: Option<Duration>,
    /// What to do when the upgrade fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<UpgradeRemediation>,
    /// Whether failures are remediated or retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<UpgradeStrategy>,
    /// Refuse to adopt objects that exist but belong to no release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_take_ownership: Option<bool>,
    /// Do not wait for the objects to become ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_wait: Option<bool>,
    /// Do not wait for Jobs to complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_wait_for_jobs: Option<bool>,
    /// Do not run hooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_hooks: Option<bool>,
    /// Skip validation of the manifests against the cluster's OpenAPI schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "disableOpenAPIValidation")]
    pub disable_openapi_validation: Option<bool>,
    /// Skip validation of values against the chart's JSON schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_schema_validation: Option<bool>,
    /// Replace objects that cannot be patched (delete and recreate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force: Option<bool>,
    /// Reuse the values of the previous release (ignores new values).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preserve_values: Option<bool>,
    /// Delete objects created by a failed upgrade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleanup_on_fail: Option<bool>,
    /// How CRDs of the chart are handled; `Skip` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crds: Option<CrdsPolicy>,
    /// Upgrade with server-side apply; `auto` follows the previous release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_side_apply: Option<ServerSideApplyMode>,
    /// What to do when the chart name changes; `Reinstall` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart_name_change_strategy: Option<ChartNameChangeStrategy>,
}

/// Remediation of a failed upgrade.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeRemediation {
    /// Attempts before giving up; 0 when absent, negative for unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::integer")]
    pub retries: Option<i64>,
    /// Do not treat failed tests as a failed upgrade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_test_failures: Option<bool>,
    /// Remediate after the last failed attempt too; true when retries > 0 and absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediate_last_failure: Option<bool>,
    /// `rollback` (default) or `uninstall`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<RemediationStrategy>,
}

/// How a failed upgrade is remediated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RemediationStrategy {
    /// Roll back to the last successful release.
    #[default]
    Rollback,
    /// Uninstall the release.
    Uninstall,
}

/// Server-side apply choice for upgrade and rollback.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ServerSideApplyMode {
    /// Always server-side apply.
    Enabled,
    /// Always client-side (three-way merge).
    Disabled,
    /// Follow what the previous release used.
    #[default]
    Auto,
}

/// What happens when the chart name of a release changes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ChartNameChangeStrategy {
    /// Upgrade the existing release.
    InPlaceUpdate,
    /// Uninstall and install again.
    #[default]
    Reinstall,
}

/// Settings of Helm test.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Test {
    /// Run the chart tests after install and upgrade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable: Option<bool>,
    /// Timeout of the tests; `spec.timeout` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = crate::schema::DURATION_PATTERN))]
    pub timeout: Option<Duration>,
    /// Do not let failed tests affect readiness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_failures: Option<bool>,
    /// Which tests to run or skip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<Vec<TestFilter>>,
}

/// Includes or excludes a test by name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestFilter {
    /// Name of the test.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Skip this test instead of running only the listed ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<bool>,
}

/// Settings of Helm rollback.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rollback {
    /// Timeout of the rollback; `spec.timeout` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = crate::schema::DURATION_PATTERN))]
    pub timeout: Option<Duration>,
    /// Do not wait for the objects to become ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_wait: Option<bool>,
    /// Do not wait for Jobs to complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_wait_for_jobs: Option<bool>,
    /// Do not run hooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_hooks: Option<bool>,
    /// Restart pods (no effect, kept for compatibility).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recreate: Option<bool>,
    /// Replace objects that cannot be patched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force: Option<bool>,
    /// Delete objects created by a failed rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleanup_on_fail: Option<bool>,
    /// Roll back with server-side apply; `auto` follows the target release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_side_apply: Option<ServerSideApplyMode>,
}

/// Settings of Helm uninstall.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Uninstall {
    /// Timeout of the uninstall; `spec.timeout` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = crate::schema::DURATION_PATTERN))]
    pub timeout: Option<Duration>,
    /// Do not run hooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_hooks: Option<bool>,
    /// Keep the release history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_history: Option<bool>,
    /// Do not wait for the objects to be deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_wait: Option<bool>,
    /// Deletion propagation policy of the release objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "background"))]
    pub deletion_propagation: Option<DeletionPropagation>,
}

/// Kubernetes deletion propagation policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeletionPropagation {
    /// Delete dependents in the background.
    #[default]
    Background,
    /// Delete dependents first.
    Foreground,
    /// Leave dependents.
    Orphan,
}

/// A ConfigMap or Secret key supplying values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValuesReference {
    /// `Secret` or `ConfigMap`.
    pub kind: ValuesSourceKind,
    /// Name of the object, in the HelmRelease's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Data key holding the values; `values.yaml` when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253), regex(pattern = r"^[\-._a-zA-Z0-9]+$"))]
    pub values_key: Option<String>,
    /// Path (Helm `--set` syntax) where the value is placed instead of merging a YAML document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        length(max = 250),
        regex(pattern = r"^([a-zA-Z0-9_\-.\\\/]|\[[0-9]{1,5}\])+$")
    )]
    pub target_path: Option<String>,
    /// Carry on when the object or key is missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
    /// With `targetPath`, use the value as a literal string (Helm `--set-literal`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub literal: Option<bool>,
}

/// A post-renderer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PostRenderer {
    /// Kustomize patches and image overrides applied to the rendered manifests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kustomize: Option<KustomizePostRenderer>,
}

/// Kustomize post-renderer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KustomizePostRenderer {
    /// Strategic merge or JSON6902 patches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patches: Option<Vec<Patch>>,
    /// Image overrides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<Image>>,
}

/// Which manifests post-renderers see.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PostRenderStrategy {
    /// Only non-hook manifests (Helm 3 behaviour).
    Nohooks,
    /// Manifests and hooks together.
    #[default]
    Combined,
    /// Manifests and hooks in separate passes.
    Separate,
}

/// How readiness of release objects is awaited.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WaitStrategy {
    /// `poller` (kstatus, default) or `legacy` (Helm 3 wait).
    pub name: WaitStrategyName,
}

/// Wait implementation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum WaitStrategyName {
    /// kstatus polling.
    #[default]
    Poller,
    /// Helm 3 readiness checks.
    Legacy,
}

/// Helm action last attempted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReleaseAction {
    /// helm install.
    Install,
    /// helm upgrade.
    Upgrade,
}

/// Observed state of a HelmRelease.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("default" = {"observedGeneration": -1}))]
pub struct HelmReleaseStatus {
    /// Generation of the spec last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Digest of the post-renderers last applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_post_renderers_digest: Option<String>,
    /// Digest of the common metadata last applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_common_metadata_digest: Option<String>,
    /// Generation of the last reconciliation attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_generation: Option<i64>,
    /// Conditions of the HelmRelease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::conditions::conditions_schema")]
    pub conditions: Option<Vec<Condition>>,
    /// `<namespace>/<name>` of the generated HelmChart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helm_chart: Option<String>,
    /// Namespace of the Helm storage of the current release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub storage_namespace: Option<String>,
    /// Snapshots of the releases, newest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<Snapshot>>,
    /// Objects of the current release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<ResourceInventory>,
    /// The last Helm action attempted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_release_action: Option<ReleaseAction>,
    /// How long the last action took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_release_action_duration: Option<Duration>,
    /// Failures since the last success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failures: Option<i64>,
    /// Failed installs since the last success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install_failures: Option<i64>,
    /// Failed upgrades since the last success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_failures: Option<i64>,
    /// Chart version of the last attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_revision: Option<String>,
    /// Digest of the chart artifact of the last attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_revision_digest: Option<String>,
    /// Digest of the values of the last attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_config_digest: Option<String>,
    /// Checksum of the values of the last attempt (deprecated, cleared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_values_checksum: Option<String>,
    /// Revision of the last release (deprecated, set to 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::integer")]
    pub last_release_revision: Option<i64>,
    /// Value of the `reconcile.fluxcd.io/requestedAt` annotation last handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
    /// Value of the `reconcile.fluxcd.io/forceAt` annotation last handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_force_at: Option<String>,
    /// Value of the `reconcile.fluxcd.io/resetAt` annotation last handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reset_at: Option<String>,
}

impl Default for HelmReleaseStatus {
    fn default() -> Self {
        Self {
            observed_generation: Some(-1),
            observed_post_renderers_digest: None,
            observed_common_metadata_digest: None,
            last_attempted_generation: None,
            conditions: None,
            helm_chart: None,
            storage_namespace: None,
            history: None,
            inventory: None,
            last_attempted_release_action: None,
            last_attempted_release_action_duration: None,
            failures: None,
            install_failures: None,
            upgrade_failures: None,
            last_attempted_revision: None,
            last_attempted_revision_digest: None,
            last_attempted_config_digest: None,
            last_attempted_values_checksum: None,
            last_release_revision: None,
            last_handled_reconcile_at: None,
            last_handled_force_at: None,
            last_handled_reset_at: None,
        }
    }
}

/// A summary of one Helm release revision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// Version of the snapshot format (`v2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Digest of the release object.
    pub digest: String,
    /// Release name.
    pub name: String,
    /// Release namespace.
    pub namespace: String,
    /// Release revision.
    #[schemars(schema_with = "crate::schema::integer")]
    pub version: i64,
    /// Helm release status (`deployed`, `failed`, ...).
    pub status: String,
    /// Chart name.
    pub chart_name: String,
    /// Chart version.
    pub chart_version: String,
    /// Chart app version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_version: Option<String>,
    /// Digest of the release values.
    pub config_digest: String,
    /// When the release was first deployed.
    pub first_deployed: Time,
    /// When the release was last deployed.
    pub last_deployed: Time,
    /// When the release was deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<Time>,
    /// Status of the test hooks, by hook name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_hooks: Option<BTreeMap<String, TestHookStatus>>,
    /// OCI digest of the chart, for charts from OCI sources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oci_digest: Option<String>,
    /// Helm action that produced the release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}

/// State of one Helm test hook.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestHookStatus {
    /// When the hook last started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_started: Option<Time>,
    /// When the hook last completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_completed: Option<Time>,
    /// Phase of the hook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
}

/// Default timeout of Helm actions.
pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);
/// Default number of release revisions kept.
pub const DEFAULT_MAX_HISTORY: i64 = 5;
/// Default wait between retries with the `RetryOnFailure` strategy.
pub const DEFAULT_STRATEGY_RETRY_INTERVAL: std::time::Duration =
    std::time::Duration::from_secs(300);

impl HelmRelease {
    /// The Helm release name: `spec.releaseName`, else `<targetNamespace>-<name>` when a target
    /// namespace is set, else the object name. (The helm controller shortens names longer than
    /// 53 characters before use.)
    pub fn release_name(&self) -> String {
        let name = self.metadata.name.clone().unwrap_or_default();
        match (&self.spec.release_name, &self.spec.target_namespace) {
            (Some(release), _) if !release.is_empty() => release.clone(),
            (_, Some(ns)) if !ns.is_empty() => format!("{ns}-{name}"),
            _ => name,
        }
    }

    /// Namespace the release is installed into: `spec.targetNamespace`, else the object's.
    pub fn release_namespace(&self) -> String {
        non_empty(self.spec.target_namespace.as_deref())
            .or(self.metadata.namespace.as_deref())
            .unwrap_or_default()
            .to_owned()
    }

    /// Namespace of the Helm storage: `spec.storageNamespace`, else the object's.
    pub fn storage_namespace(&self) -> String {
        non_empty(self.spec.storage_namespace.as_deref())
            .or(self.metadata.namespace.as_deref())
            .unwrap_or_default()
            .to_owned()
    }

    /// Name of the HelmChart generated from `spec.chart`: `<namespace>-<name>`.
    pub fn helm_chart_name(&self) -> String {
        format!(
            "{}-{}",
            self.metadata.namespace.as_deref().unwrap_or_default(),
            self.metadata.name.as_deref().unwrap_or_default()
        )
    }

    /// Default timeout of Helm actions: `spec.timeout`, or 5 minutes.
    pub fn effective_timeout(&self) -> std::time::Duration {
        crate::duration::or_default(self.spec.timeout.as_ref(), DEFAULT_TIMEOUT)
    }

    /// Revisions kept: `spec.maxHistory`, or 5 (0 means unlimited).
    pub fn max_history(&self) -> i64 {
        self.spec.max_history.unwrap_or(DEFAULT_MAX_HISTORY)
    }

    /// `spec.persistentClient`, true when absent.
    pub fn persistent_client(&self) -> bool {
        self.spec.persistent_client.unwrap_or(true)
    }

    /// Install settings, or the defaults.
    pub fn install(&self) -> Install {
        self.spec.install.clone().unwrap_or_default()
    }

    /// Upgrade settings, or the defaults.
    pub fn upgrade(&self) -> Upgrade {
        self.spec.upgrade.clone().unwrap_or_default()
    }

    /// Test settings, or the defaults.
    pub fn test(&self) -> Test {
        self.spec.test.clone().unwrap_or_default()
    }

    /// Rollback settings, or the defaults.
    pub fn rollback(&self) -> Rollback {
        self.spec.rollback.clone().unwrap_or_default()
    }

    /// Uninstall settings, or the defaults.
    pub fn uninstall(&self) -> Uninstall {
        self.spec.uninstall.clone().unwrap_or_default()
    }

    /// Drift detection mode, `disabled` when absent.
    pub fn drift_detection_mode(&self) -> DriftDetectionMode {
        self.spec
            .drift_detection
            .as_ref()
            .and_then(|d| d.mode)
            .unwrap_or_default()
    }
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.is_empty())
}

fn action_timeout(timeout: Option<&Duration>, default: std::time::Duration) -> std::time::Duration {
    crate::duration::or_default(timeout, default)
}

impl Install {
    /// Timeout of the install, or `default` (the release's timeout).
    pub fn timeout_or(&self, default: std::time::Duration) -> std::time::Duration {
        action_timeout(self.timeout.as_ref(), default)
    }

    /// Remediation settings, or the defaults.
    pub fn remediation(&self) -> InstallRemediation {
        self.remediation.clone().unwrap_or_default()
    }
}

impl Upgrade {
    /// Timeout of the upgrade, or `default` (the release's timeout).
    pub fn timeout_or(&self, default: std::time::Duration) -> std::time::Duration {
        action_timeout(self.timeout.as_ref(), default)
    }

    /// Remediation settings, or the defaults.
    pub fn remediation(&self) -> UpgradeRemediation {
        self.remediation.clone().unwrap_or_default()
    }

    /// `chartNameChangeStrategy`, or `Reinstall`.
    pub fn chart_name_change_strategy(&self) -> ChartNameChangeStrategy {
        self.chart_name_change_strategy.unwrap_or_default()
    }
}

impl Test {
    /// Timeout of the tests, or `default` (the release's timeout).
    pub fn timeout_or(&self, default: std::time::Duration) -> std::time::Duration {
        action_timeout(self.timeout.as_ref(), default)
    }
}

impl Rollback {
    /// Timeout of the rollback, or `default` (the release's timeout).
    pub fn timeout_or(&self, default: std::time::Duration) -> std::time::Duration {
        action_timeout(self.timeout.as_ref(), default)
    }
}

impl Uninstall {
    /// Timeout of the uninstall, or `default` (the release's timeout).
    pub fn timeout_or(&self, default: std::time::Duration) -> std::time::Duration {
        action_timeout(self.timeout.as_ref(), default)
    }

    /// Deletion propagation, `background` when absent.
    pub fn deletion_propagation(&self) -> DeletionPropagation {
        self.deletion_propagation.unwrap_or_default()
    }
}

impl InstallStrategy {
    /// Wait between retries: `retryInterval`, or 5 minutes.
    pub fn effective_retry_interval(&self) -> std::time::Duration {
        action_timeout(
            self.retry_interval.as_ref(),
            DEFAULT_STRATEGY_RETRY_INTERVAL,
        )
    }
}

impl UpgradeStrategy {
    /// Wait between retries: `retryInterval`, or 5 minutes.
    pub fn effective_retry_interval(&self) -> std::time::Duration {
        action_timeout(
            self.retry_interval.as_ref(),
            DEFAULT_STRATEGY_RETRY_INTERVAL,
        )
    }
}

impl InstallRemediation {
    /// Attempts before giving up; 0 when absent, negative for unlimited.
    pub fn retries(&self) -> i64 {
        self.retries.unwrap_or(0)
    }

    /// Whether the last failure is remediated too; false when absent.
    pub fn remediate_last_failure(&self) -> bool {
        self.remediate_last_failure.unwrap_or(false)
    }

    /// `ignoreTestFailures`, or `default` (the test settings' `ignoreFailures`).
    pub fn ignore_test_failures_or(&self, default: bool) -> bool {
        self.ignore_test_failures.unwrap_or(default)
    }

    /// True when `failures` exceeds a non-negative retry budget.
    pub fn retries_exhausted(&self, failures: i64) -> bool {
        self.retries() >= 0 && failures > self.retries()
    }
}

impl UpgradeRemediation {
    /// Attempts before giving up; 0 when absent, negative for unlimited.
    pub fn retries(&self) -> i64 {
        self.retries.unwrap_or(0)
    }

    /// Whether the last failure is remediated too; when absent, true if retries > 0.
    pub fn remediate_last_failure(&self) -> bool {
        self.remediate_last_failure.unwrap_or(self.retries() > 0)
    }

    /// `ignoreTestFailures`, or `default` (the test settings' `ignoreFailures`).
    pub fn ignore_test_failures_or(&self, default: bool) -> bool {
        self.ignore_test_failures.unwrap_or(default)
    }

    /// Remediation strategy, `rollback` when absent.
    pub fn strategy(&self) -> RemediationStrategy {
        self.strategy.unwrap_or_default()
    }

    /// True when `failures` exceeds a non-negative retry budget.
    pub fn retries_exhausted(&self, failures: i64) -> bool {
        self.retries() >= 0 && failures > self.retries()
    }
}

crate::object::impl_flux_object!(HelmRelease);

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration as Std;

    fn release(spec: serde_json::Value) -> HelmRelease {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "helm.toolkit.fluxcd.io/v2",
            "kind": "HelmRelease",
            "metadata": {"name": "podinfo", "namespace": "apps"},
            "spec": spec,
        }))
        .unwrap()
    }

    #[test]
    fn names_and_namespaces() {
        let plain = release(serde_json::json!({"interval": "5m"}));
        assert_eq!(plain.release_name(), "podinfo");
        assert_eq!(plain.release_namespace(), "apps");
        assert_eq!(plain.storage_namespace(), "apps");
        assert_eq!(plain.helm_chart_name(), "apps-podinfo");

        let targeted = release(serde_json::json!({
            "interval": "5m", "targetNamespace": "prod", "storageNamespace": "helm",
        }));
        assert_eq!(targeted.release_name(), "prod-podinfo");
        assert_eq!(targeted.release_namespace(), "prod");
        assert_eq!(targeted.storage_namespace(), "helm");

        let named = release(serde_json::json!({
            "interval": "5m", "targetNamespace": "prod", "releaseName": "web",
        }));
        assert_eq!(named.release_name(), "web");
    }

    #[test]
    fn defaults_when_absent() {
        let hr = release(serde_json::json!({"interval": "5m"}));
        assert_eq!(hr.effective_timeout(), Std::from_secs(300));
        assert_eq!(hr.max_history(), 5);
        assert!(hr.persistent_client());
        assert_eq!(hr.drift_detection_mode(), DriftDetectionMode::Disabled);
        assert_eq!(
            hr.install().timeout_or(hr.effective_timeout()),
            Std::from_secs(300)
        );
        assert_eq!(
            hr.uninstall().deletion_propagation(),
            DeletionPropagation::Background
        );
        assert_eq!(
            hr.upgrade().chart_name_change_strategy(),
            ChartNameChangeStrategy::Reinstall
        );
        let remediation = hr.upgrade().remediation();
        assert_eq!(remediation.strategy(), RemediationStrategy::Rollback);
        assert!(!remediation.remediate_last_failure());
        assert!(remediation.retries_exhausted(1));
        assert!(!remediation.retries_exhausted(0));
    }

    #[test]
    fn configured_values_win() {
        let hr = release(serde_json::json!({
            "interval": "5m",
            "timeout": "10m",
            "maxHistory": 0,
            "persistentClient": false,
            "install": {"timeout": "2m", "strategy": {"name": "RetryOnFailure"},
                        "remediation": {"retries": -1}},
            "upgrade": {"remediation": {"retries": 3, "strategy": "uninstall"},
                        "strategy": {"name": "RetryOnFailure", "retryInterval": "30s"}},
            "driftDetection": {"mode": "warn"},
        }));
        assert_eq!(hr.effective_timeout(), Std::from_secs(600));
        assert_eq!(hr.max_history(), 0);
        assert!(!hr.persistent_client());
        assert_eq!(hr.drift_detection_mode(), DriftDetectionMode::Warn);
        let install = hr.install();
        assert_eq!(
            install.timeout_or(hr.effective_timeout()),
            Std::from_secs(120)
        );
        assert_eq!(
            install
                .strategy
                .as_ref()
                .unwrap()
                .effective_retry_interval(),
            Std::from_secs(300)
        );
        assert!(
            !install.remediation().retries_exhausted(1000),
            "negative retries: unlimited"
        );
        let upgrade = hr.upgrade();
        assert_eq!(
            upgrade.timeout_or(hr.effective_timeout()),
            Std::from_secs(600)
        );
        assert_eq!(
            upgrade
                .strategy
                .as_ref()
                .unwrap()
                .effective_retry_interval(),
            Std::from_secs(30)
        );
        let remediation = upgrade.remediation();
        assert!(
            remediation.remediate_last_failure(),
            "defaults to true when retries > 0"
        );
        assert_eq!(remediation.strategy(), RemediationStrategy::Uninstall);
        assert!(!remediation.retries_exhausted(3));
        assert!(remediation.retries_exhausted(4));
    }

    #[test]
    fn values_are_kept_as_free_json() {
        let hr = release(serde_json::json!({
            "interval": "5m",
            "chart": {"spec": {"chart": "podinfo", "sourceRef": {"kind": "HelmRepository", "name": "repo"}}},
            "values": {"replicas": 2, "nested": {"list": [1, "a", null]}},
        }));
        assert_eq!(
            hr.spec.values.as_ref().unwrap()["nested"]["list"][2],
            serde_json::Value::Null
        );
        let chart = hr
            .spec
            .chart
            .as_ref()
            .and_then(|c| c.spec.as_ref())
            .unwrap();
        assert_eq!(
            chart.source_ref.as_ref().unwrap().kind,
            HelmChartSourceKind::HelmRepository
        );
    }
}
