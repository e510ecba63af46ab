//! `Alert` (`notification.toolkit.fluxcd.io/v1beta3`): routes events about Flux objects to a
//! Provider. Static: no status subresource, no finalizer.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::refs::LocalObjectReference;

/// Desired state of an Alert.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "notification.toolkit.fluxcd.io",
    version = "v1beta3",
    kind = "Alert",
    plural = "alerts",
    singular = "alert",
    namespaced,
    category = "all",
    category = "fluxcd",
    category = "fluxcd-notifications",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    doc = "Routes events about Flux objects to a notification Provider.",
    derive = "PartialEq",
    derive = "Default"
)]
#[serde(rename_all = "camelCase")]
pub struct AlertSpec {
    /// The Provider that delivers the matched events.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    pub provider_ref: Option<LocalObjectReference>,
    /// Minimum severity of the events to send; `info` sends everything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "info"))]
    pub event_severity: Option<EventSeverity>,
    /// Objects whose events are sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    pub event_sources: Option<Vec<CrossNamespaceObjectReference>>,
    /// Regular expressions; when set, only events whose message matches one are sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inclusion_list: Option<Vec<String>>,
    /// Extra metadata added to every event sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_metadata: Option<BTreeMap<String, String>>,
    /// Regular expressions; events whose message matches one are dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclusion_list: Option<Vec<String>>,
    /// Short summary added to events (deprecated, use `eventMetadata.summary`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub summary: Option<String>,
    /// Stop sending events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
}

/// Severity filter of an Alert.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EventSeverity {
    /// All events.
    #[default]
    Info,
    /// Error events only.
    Error,
}

crate::refs::kind_enum! {
    /// Kinds whose events can be routed (Alert) or that can be triggered (Receiver). Clusters
    /// often extend this CRD enum for third-party controllers (e.g. `FluxInstance`).
    pub enum EventSourceKind {
        /// `Bucket`.
        Bucket,
        /// `GitRepository`.
        GitRepository,
        /// `Kustomization`.
        Kustomization,
        /// `HelmRelease`.
        HelmRelease,
        /// `HelmChart`.
        HelmChart,
        /// `HelmRepository`.
        HelmRepository,
        /// `ImageRepository`.
        ImageRepository,
        /// `ImagePolicy`.
        ImagePolicy,
        /// `ImageUpdateAutomation`.
        ImageUpdateAutomation,
        /// `OCIRepository`.
        OCIRepository,
        /// `ArtifactGenerator`.
        ArtifactGenerator,
        /// `ExternalArtifact`.
        ExternalArtifact,
    }
}

/// An event source of an Alert: one object, or all objects (`name: "*"`) of a kind, optionally
/// narrowed by labels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CrossNamespaceObjectReference {
    /// API version of the objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind of the objects.
    pub kind: EventSourceKind,
    /// Name of the object, or `*` for all.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the objects; the Alert's namespace when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub namespace: Option<String>,
    /// Labels the objects must carry (only with `name: "*"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<BTreeMap<String, String>>,
}

impl Alert {
    /// `spec.eventSeverity`, or `info`.
    pub fn event_severity(&self) -> EventSeverity {
        self.spec.event_severity.unwrap_or_default()
    }

    /// `spec.suspend`, false when absent.
    pub fn suspended(&self) -> bool {
        self.spec.suspend.unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_source_kind_keeps_unknown_kinds() {
        for kind in EventSourceKind::KNOWN {
            let parsed: EventSourceKind = serde_json::from_value(serde_json::json!(kind)).unwrap();
            assert!(!matches!(parsed, EventSourceKind::Other(_)), "{kind}");
            assert_eq!(
                serde_json::to_value(&parsed).unwrap(),
                serde_json::json!(kind)
            );
        }
        let other: EventSourceKind =
            serde_json::from_value(serde_json::json!("FluxInstance")).unwrap();
        assert_eq!(other, EventSourceKind::Other("FluxInstance".into()));
        assert_eq!(
            serde_json::to_value(&other).unwrap(),
            serde_json::json!("FluxInstance")
        );
    }

    #[test]
    fn notification_defaults() {
        let alert = Alert::new("a", AlertSpec::default());
        assert_eq!(alert.event_severity(), EventSeverity::Info);
        assert!(!alert.suspended());
        let provider = crate::Provider::new("p", crate::provider::ProviderSpec::default());
        assert_eq!(
            provider.effective_timeout(),
            std::time::Duration::from_secs(15)
        );
        let receiver = crate::Receiver::new("r", crate::receiver::ReceiverSpec::default());
        assert_eq!(
            receiver.requeue_after(),
            std::time::Duration::from_secs(600)
        );
        let provider_type: crate::provider::ProviderType =
            serde_json::from_value(serde_json::json!("incident.io")).unwrap();
        assert_eq!(provider_type.as_str(), "incident.io");
    }
}
