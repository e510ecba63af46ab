//! `Provider` (`notification.toolkit.fluxcd.io/v1beta3`): where and how events are delivered
//! (chat, Git commit statuses, webhooks, ...). Static: no status subresource, no finalizer.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::Duration;
use crate::refs::LocalObjectReference;

/// Desired state of a Provider.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "notification.toolkit.fluxcd.io",
    version = "v1beta3",
    kind = "Provider",
    plural = "providers",
    singular = "provider",
    namespaced,
    category = "all",
    category = "fluxcd",
    category = "fluxcd-notifications",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    doc = "A destination for Flux events and the settings to reach it.",
    derive = "PartialEq",
    derive = "Default"
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "message": "spec.commitStatusExpr is only supported for the 'github', 'gitlab', 'gitea', 'bitbucketserver', 'bitbucket', 'azuredevops' provider types",
        "rule": "self.type == 'github' || self.type == 'gitlab' || self.type == 'gitea' || self.type == 'bitbucketserver' || self.type == 'bitbucket' || self.type == 'azuredevops' || !has(self.commitStatusExpr)",
    },
]))]
pub struct ProviderSpec {
    /// The kind of service events are delivered to.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required)]
    pub r#type: Option<ProviderType>,
    /// Polling interval (deprecated, not used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = crate::schema::DURATION_PATTERN))]
    pub interval: Option<Duration>,
    /// Channel, room or topic to post to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub channel: Option<String>,
    /// Bot user name to post as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub username: Option<String>,
    /// Endpoint (webhook URL, API address or repository URL); the Secret's `address` wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub address: Option<String>,
    /// Timeout of a delivery; 15s when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = crate::schema::SHORT_DURATION_PATTERN))]
    pub timeout: Option<Duration>,
    /// HTTP(S) proxy address (deprecated, use `proxySecretRef`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), regex(pattern = r"^(http|https)://.*$"))]
    pub proxy: Option<String>,
    /// Secret with proxy settings (`address`, `username`, `password`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_secret_ref: Option<LocalObjectReference>,
    /// Secret with `address`, `token`, `username`, `password`, `headers` and TLS keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
    /// ServiceAccount whose workload identity is used (Azure Event Hub, Azure DevOps,
    /// Google Pub/Sub).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Secret with TLS material (`ca.crt`, `tls.crt`, `tls.key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_secret_ref: Option<LocalObjectReference>,
    /// Stop delivering events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
    /// CEL expression (variables `event`, `provider`, `alert`) computing the commit status key
    /// for Git providers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_status_expr: Option<String>,
}

/// The kind of service a Provider delivers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ProviderType {
    /// `slack`.
    #[serde(rename = "slack")]
    Slack,
    /// `discord`.
    #[serde(rename = "discord")]
    Discord,
    /// `msteams`.
    #[serde(rename = "msteams")]
    MsTeams,
    /// `rocket`.
    #[serde(rename = "rocket")]
    Rocket,
    /// `generic`.
    #[serde(rename = "generic")]
    Generic,
    /// `generic-hmac`.
    #[serde(rename = "generic-hmac")]
    GenericHmac,
    /// `github`.
    #[serde(rename = "github")]
    GitHub,
    /// `gitlab`.
    #[serde(rename = "gitlab")]
    GitLab,
    /// `gitea`.
    #[serde(rename = "gitea")]
    Gitea,
    /// `giteapullrequestcomment`.
    #[serde(rename = "giteapullrequestcomment")]
    GiteaPullRequestComment,
    /// `bitbucketserver`.
    #[serde(rename = "bitbucketserver")]
    BitbucketServer,
    /// `bitbucket`.
    #[serde(rename = "bitbucket")]
    Bitbucket,
    /// `azuredevops`.
    #[serde(rename = "azuredevops")]
    AzureDevOps,
    /// `googlechat`.
    #[serde(rename = "googlechat")]
    GoogleChat,
    /// `googlepubsub`.
    #[serde(rename = "googlepubsub")]
    GooglePubSub,
    /// `webex`.
    #[serde(rename = "webex")]
    Webex,
    /// `sentry`.
    #[serde(rename = "sentry")]
    Sentry,
    /// `azureeventhub`.
    #[serde(rename = "azureeventhub")]
    AzureEventHub,
    /// `telegram`.
    #[serde(rename = "telegram")]
    Telegram,
    /// `lark`.
    #[serde(rename = "lark")]
    Lark,
    /// `matrix`.
    #[serde(rename = "matrix")]
    Matrix,
    /// `opsgenie`.
    #[serde(rename = "opsgenie")]
    Opsgenie,
    /// `alertmanager`.
    #[serde(rename = "alertmanager")]
    Alertmanager,
    /// `grafana`.
    #[serde(rename = "grafana")]
    Grafana,
    /// `githubdispatch`.
    #[serde(rename = "githubdispatch")]
    GitHubDispatch,
    /// `githubpullrequestcomment`.
    #[serde(rename = "githubpullrequestcomment")]
    GitHubPullRequestComment,
    /// `gitlabmergerequestcomment`.
    #[serde(rename = "gitlabmergerequestcomment")]
    GitLabMergeRequestComment,
    /// `pagerduty`.
    #[serde(rename = "pagerduty")]
    PagerDuty,
    /// `datadog`.
    #[serde(rename = "datadog")]
    Datadog,
    /// `nats`.
    #[serde(rename = "nats")]
    Nats,
    /// `zulip`.
    #[serde(rename = "zulip")]
    Zulip,
    /// `otel`.
    #[serde(rename = "otel")]
    Otel,
    /// `zoom`.
    #[serde(rename = "zoom")]
    Zoom,
    /// `incident.io`.
    #[serde(rename = "incident.io")]
    IncidentIo,
}

impl ProviderType {
    /// The name used in `spec.type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Slack => "slack",
            Self::Discord => "discord",
            Self::MsTeams => "msteams",
            Self::Rocket => "rocket",
            Self::Generic => "generic",
            Self::GenericHmac => "generic-hmac",
            Self::GitHub => "github",
            Self::GitLab => "gitlab",
            Self::Gitea => "gitea",
            Self::GiteaPullRequestComment => "giteapullrequestcomment",
            Self::BitbucketServer => "bitbucketserver",
            Self::Bitbucket => "bitbucket",
            Self::AzureDevOps => "azuredevops",
            Self::GoogleChat => "googlechat",
            Self::GooglePubSub => "googlepubsub",
            Self::Webex => "webex",
            Self::Sentry => "sentry",
            Self::AzureEventHub => "azureeventhub",
            Self::Telegram => "telegram",
            Self::Lark => "lark",
            Self::Matrix => "matrix",
            Self::Opsgenie => "opsgenie",
            Self::Alertmanager => "alertmanager",
            Self::Grafana => "grafana",
            Self::GitHubDispatch => "githubdispatch",
            Self::GitHubPullRequestComment => "githubpullrequestcomment",
            Self::GitLabMergeRequestComment => "gitlabmergerequestcomment",
            Self::PagerDuty => "pagerduty",
            Self::Datadog => "datadog",
            Self::Nats => "nats",
            Self::Zulip => "zulip",
            Self::Otel => "otel",
            Self::Zoom => "zoom",
            Self::IncidentIo => "incident.io",
        }
    }
}

impl Provider {
    /// Timeout of one delivery: `spec.timeout`, or 15 seconds.
    pub fn effective_timeout(&self) -> std::time::Duration {
        crate::duration::or_default(
            self.spec.timeout.as_ref(),
            std::time::Duration::from_secs(15),
        )
    }

    /// `spec.suspend`, false when absent.
    pub fn suspended(&self) -> bool {
        self.spec.suspend.unwrap_or(false)
    }
}
