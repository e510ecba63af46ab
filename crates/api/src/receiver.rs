//! `Receiver` (`notification.toolkit.fluxcd.io/v1`): a webhook endpoint that turns incoming
//! notifications (Git pushes, registry pushes, ...) into reconcile requests for Flux objects.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::alert::EventSourceKind;
use crate::duration::Duration;
use crate::refs::LocalObjectReference;

/// Desired state of a Receiver.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "notification.toolkit.fluxcd.io",
    version = "v1",
    kind = "Receiver",
    plural = "receivers",
    singular = "receiver",
    namespaced,
    status = "ReceiverStatus",
    category = "all",
    category = "fluxcd",
    category = "fluxcd-notifications",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#,
    doc = "A webhook endpoint that requests reconciliation of Flux objects.",
    derive = "PartialEq",
    derive = "Default"
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "message": "generic-oidc receivers must define at least one oidcProvider",
        "rule": "self.type != 'generic-oidc' || (has(self.oidcProviders) && size(self.oidcProviders) > 0)",
    },
    {
        "message": "oidcProviders can only be set when type is generic-oidc",
        "rule": "self.type == 'generic-oidc' || !has(self.oidcProviders) || size(self.oidcProviders) == 0",
    },
    {
        "message": "secretRef cannot be set when type is generic-oidc",
        "rule": "self.type != 'generic-oidc' || !has(self.secretRef)",
    },
    {
        "message": "secretRef is required when type is not generic-oidc",
        "rule": "self.type == 'generic-oidc' || has(self.secretRef)",
    },
]))]
pub struct ReceiverSpec {
    /// The kind of sender, which decides how requests are authenticated and parsed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    pub r#type: Option<ReceiverType>,
    /// How often the Receiver's Secret is re-read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = crate::schema::DURATION_PATTERN), extend("default" = "10m"))]
    pub interval: Option<Duration>,
    /// Event types to accept (e.g. `push` for GitHub); all when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
    /// Objects to reconcile when a request is accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    pub resources: Option<Vec<ReceiverResourceReference>>,
    /// CEL expression (variables `res`, `req`, `claims`) filtering the objects to reconcile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_filter: Option<String>,
    /// Secret with the `token` used to build the webhook path and check requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
    /// OIDC issuers whose tokens are accepted (`generic-oidc` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend(
        "x-kubernetes-list-map-keys" = ["issuerURL"],
        "x-kubernetes-list-type" = "map",
    ))]
    pub oidc_providers: Option<Vec<OIDCProvider>>,
    /// Stop accepting requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
}

/// The kind of sender a Receiver accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ReceiverType {
    /// Any sender knowing the token.
    Generic,
    /// HMAC-signed requests.
    GenericHmac,
    /// Requests with an OIDC bearer token.
    GenericOidc,
    /// GitHub webhooks.
    Github,
    /// GitLab webhooks.
    Gitlab,
    /// Bitbucket webhooks.
    Bitbucket,
    /// Harbor webhooks.
    Harbor,
    /// Docker Hub webhooks.
    Dockerhub,
    /// Quay webhooks.
    Quay,
    /// Google Container Registry Pub/Sub pushes.
    Gcr,
    /// Nexus webhooks.
    Nexus,
    /// Azure Container Registry webhooks.
    Acr,
    /// CDEvents.
    Cdevents,
}

/// Objects a Receiver reconciles: one by name, or all (`name: "*"`) of a kind matching labels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReceiverResourceReference {
    /// API version of the objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind of the objects.
    pub kind: EventSourceKind,
    /// Name of the object, or `*` for all.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of the objects; the Receiver's namespace when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub namespace: Option<String>,
    /// Labels the objects must carry (only with `name: "*"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<BTreeMap<String, String>>,
    /// CEL expression (variables `res`, `req`, `claims`) an object must satisfy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
}

/// An OIDC issuer accepted by a `generic-oidc` Receiver.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OIDCProvider {
    /// Issuer URL; its discovery document gives the signing keys.
    #[serde(rename = "issuerURL")]
    #[schemars(regex(pattern = r"^https?://"))]
    pub issuer_url: String,
    /// Expected audience; `notification-controller` when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// Named CEL expressions over the token claims, usable in later expressions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variables: Option<Vec<OIDCVariable>>,
    /// CEL checks the claims must pass; at least one.
    #[schemars(length(min = 1))]
    pub validations: Vec<OIDCValidation>,
}

/// A named CEL expression over OIDC claims.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OIDCVariable {
    /// Variable name.
    pub name: String,
    /// CEL expression.
    pub expression: String,
}

/// A CEL check over OIDC claims.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OIDCValidation {
    /// CEL expression that must be true.
    pub expression: String,
    /// Message returned when it is false.
    pub message: String,
}

/// Observed state of a Receiver.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("default" = {"observedGeneration": -1}))]
pub struct ReceiverStatus {
    /// Conditions of the Receiver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::conditions::conditions_schema")]
    pub conditions: Option<Vec<Condition>>,
    /// Path the webhook is served on: `/hook/<sha256 of token+name+namespace>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_path: Option<String>,
    /// Generation of the spec last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Value of the `reconcile.fluxcd.io/requestedAt` annotation last handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

impl Default for ReceiverStatus {
    fn default() -> Self {
        Self {
            conditions: None,
            webhook_path: None,
            observed_generation: Some(-1),
            last_handled_reconcile_at: None,
        }
    }
}

crate::object::impl_flux_object!(Receiver);

impl Receiver {
    /// How often the Receiver is reconciled: `spec.interval`, or 10 minutes.
    pub fn requeue_after(&self) -> std::time::Duration {
        crate::duration::or_default(
            self.spec.interval.as_ref(),
            std::time::Duration::from_secs(600),
        )
    }
}
