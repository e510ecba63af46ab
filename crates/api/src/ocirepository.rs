//! `OCIRepository` (`source.toolkit.fluxcd.io/v1`): a source that pulls an OCI artifact from a
//! container registry and publishes one of its layers as an artifact.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::artifact::Artifact;
use crate::duration::Duration;
use crate::refs::LocalObjectReference;

/// Desired state of an OCIRepository.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "source.toolkit.fluxcd.io",
    version = "v1",
    kind = "OCIRepository",
    plural = "ocirepositories",
    singular = "ocirepository",
    namespaced,
    status = "OCIRepositoryStatus",
    shortname = "ocirepo",
    category = "all",
    category = "fluxcd",
    category = "fluxcd-sources",
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".spec.url"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    doc = "A source that produces an artifact from an OCI artifact in a container registry.",
    derive = "PartialEq",
    derive = "Default"
)]
#[serde(rename_all = "camelCase")]
pub struct OCIRepositorySpec {
    /// Repository address, `oci://<host>/<path>` without tag or digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required, regex(pattern = r"^oci://.*$"))]
    pub url: Option<String>,
    /// Which tag, SemVer range or digest to pull; tag `latest` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#ref: Option<OCIRepositoryRef>,
    /// Which layer to use and how (extract the tarball or copy it as is); the first layer is
    /// extracted when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_selector: Option<OCILayerSelector>,
    /// Cloud provider used to log in to the registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "generic"))]
    pub provider: Option<OCIProvider>,
    /// Secret of type `kubernetes.io/dockerconfigjson` with registry credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
    /// Signature verification of the artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<OCIRepositoryVerification>,
    /// ServiceAccount whose image pull secrets are used for registry login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Secret with TLS material (`tls.crt`, `tls.key`, `ca.crt`) for the registry connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_secret_ref: Option<LocalObjectReference>,
    /// Secret with proxy settings (`address`, `username`, `password`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_secret_ref: Option<LocalObjectReference>,
    /// How often the registry is checked for a new digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required, regex(pattern = crate::schema::DURATION_PATTERN))]
    pub interval: Option<Duration>,
    /// Timeout of registry operations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = crate::schema::SHORT_DURATION_PATTERN), extend("default" = "60s"))]
    pub timeout: Option<Duration>,
    /// Extra `.gitignore`-style rules for files to leave out of the artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore: Option<String>,
    /// Talk plain HTTP to the registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure: Option<bool>,
    /// Stop reconciling this object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
}

/// The OCI reference to pull. Digest wins over SemVer, which wins over tag.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OCIRepositoryRef {
    /// Manifest digest, `sha256:<hex>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// SemVer range; the highest matching tag is pulled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver: Option<String>,
    /// Regular expression that tags must match before the SemVer range is applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver_filter: Option<String>,
    /// Tag to pull.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// Chooses the layer of the artifact and what to do with it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OCILayerSelector {
    /// Media type of the layer; the first layer when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// `extract` the tarball (default) or `copy` the layer unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<OCILayerOperation>,
}

/// What to do with the selected layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OCILayerOperation {
    /// Untar the layer and re-archive its files.
    #[default]
    Extract,
    /// Store the layer blob as it is.
    Copy,
}

/// Cloud provider used to log in to an OCI registry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OCIProvider {
    /// Static credentials, or none.
    #[default]
    Generic,
    /// Amazon ECR.
    Aws,
    /// Azure Container Registry.
    Azure,
    /// Google Artifact Registry.
    Gcp,
}

/// Signature verification settings of an OCI artifact or chart.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OCIRepositoryVerification {
    /// Signing tool.
    // Required in the schema (the API server defaults it), optional when reading.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required, extend("default" = "cosign"))]
    pub provider: Option<VerificationProvider>,
    /// Secret with the trusted keys: cosign `*.pub`; notation `trustpolicy.json` plus CA
    /// certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
    /// Identities accepted for keyless cosign signatures; any match is enough.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "matchOIDCIdentity")]
    pub match_oidc_identity: Option<Vec<OIDCIdentityMatch>>,
    /// Secret with a `trusted_root.json` for keyless verification against a private Sigstore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_root_secret_ref: Option<LocalObjectReference>,
}

/// A signing tool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum VerificationProvider {
    /// Sigstore cosign.
    #[default]
    Cosign,
    /// Notary Project notation.
    Notation,
}

/// An accepted keyless signing identity; both fields are regular expressions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OIDCIdentityMatch {
    /// Regular expression the OIDC issuer must match.
    pub issuer: String,
    /// Regular expression the certificate subject must match.
    pub subject: String,
}

/// Observed state of an OCIRepository.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("default" = {"observedGeneration": -1}))]
pub struct OCIRepositoryStatus {
    /// Generation of the spec last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Conditions of the OCIRepository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::conditions::conditions_schema")]
    pub conditions: Option<Vec<Condition>>,
    /// Address of the latest artifact (deprecated, kept for compatibility).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The last successfully built artifact; its metadata holds the manifest annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Artifact>,
    /// The `spec.ignore` the current artifact was built with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_ignore: Option<String>,
    /// The `spec.layerSelector` the current artifact was built with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_layer_selector: Option<OCILayerSelector>,
    /// Value of the `reconcile.fluxcd.io/requestedAt` annotation last handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

impl Default for OCIRepositoryStatus {
    fn default() -> Self {
        Self {
            observed_generation: Some(-1),
            conditions: None,
            url: None,
            artifact: None,
            observed_ignore: None,
            observed_layer_selector: None,
            last_handled_reconcile_at: None,
        }
    }
}

impl OCIRepository {
    /// Timeout of registry operations: `spec.timeout`, or 60s.
    pub fn effective_timeout(&self) -> std::time::Duration {
        crate::duration::or_default(
            self.spec.timeout.as_ref(),
            std::time::Duration::from_secs(60),
        )
    }
}

crate::object::impl_flux_object!(OCIRepository);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_provider_may_be_left_to_the_api_server_default() {
        let repo: OCIRepository = serde_json::from_value(serde_json::json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "OCIRepository",
            "metadata": {"name": "app"},
            "spec": {
                "url": "oci://ghcr.io/org/app", "interval": "5m", "timeout": "30s",
                "verify": {"secretRef": {"name": "keys"}},
                "ref": {"semver": ">=1.0.0"},
            },
        }))
        .unwrap();
        let verify = repo.spec.verify.as_ref().unwrap();
        assert_eq!(verify.provider, None);
        assert_eq!(repo.effective_timeout(), std::time::Duration::from_secs(30));
        let back = serde_json::to_value(&repo).unwrap();
        assert_eq!(
            back["spec"]["verify"],
            serde_json::json!({"secretRef": {"name": "keys"}})
        );
        assert_eq!(back["apiVersion"], "source.toolkit.fluxcd.io/v1");
        assert_eq!(back["kind"], "OCIRepository");
    }
}
