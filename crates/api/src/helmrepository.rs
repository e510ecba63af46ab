//! `HelmRepository` (`source.toolkit.fluxcd.io/v1`): a Helm chart repository. For HTTP(S)
//! repositories the index is fetched and published as an artifact; `type: oci` repositories are
//! static (no status) and only hold connection settings for HelmCharts.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::artifact::Artifact;
use crate::duration::Duration;
use crate::ocirepository::OCIProvider;
use crate::refs::LocalObjectReference;

/// Desired state of a HelmRepository.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "source.toolkit.fluxcd.io",
    version = "v1",
    kind = "HelmRepository",
    plural = "helmrepositories",
    singular = "helmrepository",
    namespaced,
    status = "HelmRepositoryStatus",
    shortname = "helmrepo",
    category = "all",
    category = "fluxcd",
    category = "fluxcd-sources",
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".spec.url"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#,
    doc = "A Helm chart repository, served over HTTP(S) or from an OCI registry.",
    derive = "PartialEq",
    derive = "Default"
)]
#[serde(rename_all = "camelCase")]
pub struct HelmRepositorySpec {
    /// Repository address (`http`, `https` or `oci` scheme).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required, regex(pattern = r"^(http|https|oci)://.*$"))]
    pub url: Option<String>,
    /// Secret with `username`/`password` (and, deprecated, `certFile`/`keyFile`/`caFile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
    /// Secret with TLS material (`tls.crt`, `tls.key`, `ca.crt`); wins over the TLS keys of
    /// `secretRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_secret_ref: Option<LocalObjectReference>,
    /// Send the credentials to chart URLs on other hosts than the index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pass_credentials: Option<bool>,
    /// How often the index is fetched; one minute when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = crate::schema::DURATION_PATTERN))]
    pub interval: Option<Duration>,
    /// Talk plain HTTP to an OCI registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure: Option<bool>,
    /// Timeout of index downloads and registry operations; 60s when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = crate::schema::SHORT_DURATION_PATTERN))]
    pub timeout: Option<Duration>,
    /// Stop reconciling this object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
    /// Namespaces allowed to use this repository (reserved, not enforced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_from: Option<AccessFrom>,
    /// `default` for an HTTP(S) index, `oci` for an OCI registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#type: Option<HelmRepositoryType>,
    /// Cloud provider used to log in to an OCI registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "generic"))]
    pub provider: Option<OCIProvider>,
}

/// Kind of Helm repository.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum HelmRepositoryType {
    /// An HTTP(S) repository with an `index.yaml`.
    #[default]
    Default,
    /// An OCI registry.
    Oci,
}

/// Namespaces allowed to refer to an object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessFrom {
    /// Namespace selectors; a namespace matching any of them is allowed.
    pub namespace_selectors: Vec<NamespaceSelector>,
}

/// Selects namespaces by label.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceSelector {
    /// Labels a namespace must carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<BTreeMap<String, String>>,
}

/// Observed state of a HelmRepository.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("default" = {"observedGeneration": -1}))]
pub struct HelmRepositoryStatus {
    /// Generation of the spec last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Conditions of the HelmRepository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::conditions::conditions_schema")]
    pub conditions: Option<Vec<Condition>>,
    /// Address of the latest index (`index.yaml`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The last successfully fetched index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Artifact>,
    /// Value of the `reconcile.fluxcd.io/requestedAt` annotation last handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

impl Default for HelmRepositoryStatus {
    fn default() -> Self {
        Self {
            observed_generation: Some(-1),
            conditions: None,
            url: None,
            artifact: None,
            last_handled_reconcile_at: None,
        }
    }
}

impl HelmRepository {
    /// Timeout of index downloads and registry operations: `spec.timeout`, or 60s.
    pub fn effective_timeout(&self) -> std::time::Duration {
        crate::duration::or_default(
            self.spec.timeout.as_ref(),
            std::time::Duration::from_secs(60),
        )
    }

    /// Time until the next reconciliation: `spec.interval`, or one minute.
    pub fn requeue_after(&self) -> std::time::Duration {
        crate::duration::or_default(
            self.spec.interval.as_ref(),
            std::time::Duration::from_secs(60),
        )
    }

    /// True for `type: oci` repositories, which are static (no artifact, no status).
    pub fn is_oci(&self) -> bool {
        self.spec.r#type == Some(HelmRepositoryType::Oci)
    }
}

crate::object::impl_flux_object!(HelmRepository);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_and_timeout_defaults() {
        let repo: HelmRepository = serde_json::from_value(serde_json::json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "HelmRepository",
            "metadata": {"name": "charts"},
            "spec": {"url": "oci://ghcr.io/org/charts", "type": "oci"},
        }))
        .unwrap();
        assert!(repo.is_oci());
        assert_eq!(repo.requeue_after(), std::time::Duration::from_secs(60));
        assert_eq!(repo.effective_timeout(), std::time::Duration::from_secs(60));
        assert_eq!(crate::FluxObject::interval(&repo), None);
    }
}
