//! `HelmChart` (`source.toolkit.fluxcd.io/v1`): a chart pulled from a HelmRepository or packaged
//! from a GitRepository/Bucket, published as a chart tarball artifact.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::artifact::Artifact;
use crate::duration::Duration;
use crate::ocirepository::{OIDCIdentityMatch, VerificationProvider};
use crate::refs::LocalObjectReference;

/// Desired state of a HelmChart.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "source.toolkit.fluxcd.io",
    version = "v1",
    kind = "HelmChart",
    plural = "helmcharts",
    singular = "helmchart",
    namespaced,
    status = "HelmChartStatus",
    shortname = "hc",
    category = "all",
    category = "fluxcd",
    category = "fluxcd-sources",
    printcolumn = r#"{"name":"Chart","type":"string","jsonPath":".spec.chart"}"#,
    printcolumn = r#"{"name":"Version","type":"string","jsonPath":".spec.version"}"#,
    printcolumn = r#"{"name":"Source Kind","type":"string","jsonPath":".spec.sourceRef.kind"}"#,
    printcolumn = r#"{"name":"Source Name","type":"string","jsonPath":".spec.sourceRef.name"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#,
    doc = "A Helm chart fetched from a repository or packaged from a Git or bucket source.",
    derive = "PartialEq",
    derive = "Default"
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "message": "spec.verify is only supported when spec.sourceRef.kind is 'HelmRepository'",
        "rule": "!has(self.verify) || self.sourceRef.kind == 'HelmRepository'",
    },
]))]
pub struct HelmChartSpec {
    /// Chart name in the repository, or path of the chart in a Git/Bucket artifact.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    pub chart: Option<String>,
    /// SemVer range of the chart version (ignored for Git/Bucket sources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "*"))]
    pub version: Option<String>,
    /// The source holding the chart, in the same namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    pub source_ref: Option<LocalHelmChartSourceReference>,
    /// How often the source is checked for a new chart.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required, regex(pattern = crate::schema::DURATION_PATTERN))]
    pub interval: Option<Duration>,
    /// When to build a new artifact: on a new chart version, or on any new source revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "ChartVersion"))]
    pub reconcile_strategy: Option<ReconcileStrategy>,
    /// Values files inside the chart merged in order (later wins) into the packaged defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values_files: Option<Vec<String>>,
    /// Skip missing values files instead of failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_missing_values_files: Option<bool>,
    /// Stop reconciling this object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
    /// Signature verification of OCI charts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<HelmChartVerification>,
}

/// The source of a HelmChart.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalHelmChartSourceReference {
    /// API version of the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind of the source.
    pub kind: HelmChartSourceKind,
    /// Name of the source.
    pub name: String,
}

crate::refs::kind_enum! {
    /// Kinds a HelmChart can be built from.
    pub enum HelmChartSourceKind {
        /// A Helm repository (HTTP or OCI).
        HelmRepository,
        /// A Git repository holding the chart directory.
        GitRepository,
        /// A bucket holding the chart directory.
        Bucket,
    }
}

/// When a HelmChart builds a new artifact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ReconcileStrategy {
    /// When the chart version changes.
    #[default]
    ChartVersion,
    /// When the source revision changes.
    Revision,
}

/// Signature verification settings of a HelmChart.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HelmChartVerification {
    /// Signing tool.
    // Required in the schema (the API server defaults it), optional when reading.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required, extend("default" = "cosign"))]
    pub provider: Option<VerificationProvider>,
    /// Secret with the trusted keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
    /// Identities accepted for keyless cosign signatures; any match is enough.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "matchOIDCIdentity")]
    pub match_oidc_identity: Option<Vec<OIDCIdentityMatch>>,
}

/// Observed state of a HelmChart.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("default" = {"observedGeneration": -1}))]
pub struct HelmChartStatus {
    /// Generation of the spec last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Source revision the current artifact was built from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_source_artifact_revision: Option<String>,
    /// Chart name the current artifact was built for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_chart_name: Option<String>,
    /// Values files the current artifact was built with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_values_files: Option<Vec<String>>,
    /// Conditions of the HelmChart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::conditions::conditions_schema")]
    pub conditions: Option<Vec<Condition>>,
    /// Address of the latest chart (`latest.tar.gz`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The last successfully built chart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Artifact>,
    /// Value of the `reconcile.fluxcd.io/requestedAt` annotation last handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

impl Default for HelmChartStatus {
    fn default() -> Self {
        Self {
            observed_generation: Some(-1),
            observed_source_artifact_revision: None,
            observed_chart_name: None,
            observed_values_files: None,
            conditions: None,
            url: None,
            artifact: None,
            last_handled_reconcile_at: None,
        }
    }
}

impl HelmChart {
    /// The SemVer range of the chart version: `spec.version`, or `*`.
    pub fn version_range(&self) -> &str {
        self.spec.version.as_deref().unwrap_or("*")
    }

    /// When a new artifact is built: `spec.reconcileStrategy`, or `ChartVersion`.
    pub fn reconcile_strategy(&self) -> ReconcileStrategy {
        self.spec.reconcile_strategy.unwrap_or_default()
    }
}

crate::object::impl_flux_object!(HelmChart);
