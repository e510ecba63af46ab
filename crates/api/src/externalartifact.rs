//! `ExternalArtifact` (`source.toolkit.fluxcd.io/v1`): an artifact produced by a third-party
//! controller and consumed like any Flux source. It has no reconciler of its own in Flux; the
//! producer writes its status.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::artifact::Artifact;
use crate::refs::NamespacedObjectKindReference;

/// Desired state of an ExternalArtifact.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "source.toolkit.fluxcd.io",
    version = "v1",
    kind = "ExternalArtifact",
    plural = "externalartifacts",
    singular = "externalartifact",
    namespaced,
    status = "ExternalArtifactStatus",
    shortname = "ea",
    category = "all",
    category = "fluxcd",
    category = "fluxcd-sources",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#,
    printcolumn = r#"{"name":"Source","type":"string","jsonPath":".spec.sourceRef.name"}"#,
    doc = "An artifact published by a third-party controller, consumable by Flux appliers.",
    derive = "PartialEq",
    derive = "Default"
)]
#[serde(rename_all = "camelCase")]
pub struct ExternalArtifactSpec {
    /// The custom resource the artifact was generated for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ref: Option<NamespacedObjectKindReference>,
}

/// Observed state of an ExternalArtifact, written by its producer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalArtifactStatus {
    /// The artifact currently offered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Artifact>,
    /// Conditions reported by the producer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::conditions::conditions_schema")]
    pub conditions: Option<Vec<Condition>>,
}

impl crate::object::FluxObject for ExternalArtifact {
    fn suspended(&self) -> bool {
        false
    }
    fn interval(&self) -> Option<std::time::Duration> {
        None
    }
    fn conditions(&self) -> &[Condition] {
        self.status
            .as_ref()
            .and_then(|s| s.conditions.as_deref())
            .unwrap_or(&[])
    }
    fn observed_generation(&self) -> Option<i64> {
        None
    }
    fn last_handled_reconcile_at(&self) -> Option<&str> {
        None
    }
    /// The status has no `observedGeneration`: Ready alone decides.
    fn is_ready(&self) -> bool {
        crate::conditions::is_ready(self.conditions())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::{FluxObject, Source};

    #[test]
    fn readiness_and_artifact_come_from_the_producer() {
        let ea: ExternalArtifact = serde_json::from_value(serde_json::json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "ExternalArtifact",
            "metadata": {"name": "generated", "namespace": "apps", "generation": 4},
            "spec": {"sourceRef": {"apiVersion": "source.extensions.fluxcd.io/v1beta1",
                                   "kind": "ArtifactGenerator", "name": "gen"}},
            "status": {
                "artifact": {
                    "path": "externalartifact/apps/generated/abc.tar.gz",
                    "url": "http://source-watcher/externalartifact/apps/generated/abc.tar.gz",
                    "revision": "latest@sha256:abc",
                    "digest": "sha256:abc",
                    "lastUpdateTime": "2026-01-01T00:00:00Z",
                },
                "conditions": [{
                    "type": "Ready", "status": "True", "reason": "Succeeded", "message": "ok",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                }],
            },
        }))
        .unwrap();
        assert!(ea.is_ready());
        assert_eq!(
            ea.artifact().map(|a| a.revision.as_str()),
            Some("latest@sha256:abc")
        );
    }
}
