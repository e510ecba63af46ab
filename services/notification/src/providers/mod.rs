//! Provider types: each module turns an event into the request(s) upstream's notifier of that
//! type sends (method, URL, headers, JSON body), and [`send`] delivers them with upstream's HTTP
//! client behaviour (go-retryablehttp: 4 retries, 2s..30s backoff, on connection errors, 429
//! and 5xx) within the Provider's timeout.

pub mod alertmanager;
pub mod azuredevops;
pub mod azureeventhub;
pub mod bitbucket;
pub mod comments;
pub mod commitstatus;
pub mod datadog;
pub mod generic;
pub mod gitea;
pub mod github;
pub mod gitlab;
pub mod googlechat;
pub mod googlepubsub;
pub mod grafana;
pub mod incidentio;
pub mod lark;
pub mod matrix;
pub mod msteams;
pub mod nats;
pub mod opsgenie;
pub mod otel;
pub mod pagerduty;
pub mod sentry;
pub mod slack;
pub mod telegram;
pub mod webex;
pub mod zoom;
pub mod zulip;

use std::collections::BTreeMap;
use std::time::Duration;

use ferroflux_api::provider::ProviderType;

use crate::event::Event;

/// Everything a notifier needs, resolved from the Provider and its Secrets (upstream's
/// notifierOptions).
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// Webhook / API address (`spec.address`, or the Secret's `address`).
    pub url: String,
    /// Proxy URL (`spec.proxy`, the Secret's `proxy`, or `proxySecretRef`).
    pub proxy: String,
    pub username: String,
    pub password: String,
    pub token: String,
    pub channel: String,
    /// Extra headers from the Secret's `headers` key.
    pub headers: BTreeMap<String, String>,
    /// PEM material from `certSecretRef` (or the Secret of a commit status provider).
    pub tls: Option<Tls>,
    pub provider_uid: String,
    pub provider_name: String,
    pub provider_namespace: String,
    /// The whole Secret (NATS reads `creds` and `nkey` from it).
    pub secret_data: BTreeMap<String, Vec<u8>>,
    /// The commit status id (context/name) of Git commit status providers.
    pub commit_status: String,
    /// Where the telegram provider finds the Bot API; empty: `https://api.telegram.org`. Not
    /// set from any Provider field (upstream ignores `address` for telegram); tests only.
    pub telegram_api_base: String,
    /// `PUBSUB_EMULATOR_HOST` (host:port) as the Go Pub/Sub client reads it: googlepubsub then
    /// publishes there over plain HTTP without credentials.
    pub pubsub_emulator_host: String,
    /// Replaces the scheme and host of the googlepubsub and azureeventhub (token) endpoints.
    /// Not set from any Provider field (upstream has none); tests only.
    pub api_base: String,
    /// The Alert the event is delivered for (the otel provider names its resource after it).
    pub alert_name: String,
    pub alert_namespace: String,
    pub alert_uid: String,
}

/// TLS material of a Provider.
#[derive(Clone, Debug, Default)]
pub struct Tls {
    pub ca: Option<Vec<u8>>,
    pub cert: Option<Vec<u8>>,
    pub key: Option<Vec<u8>>,
}

/// How a response is judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validate {
    /// Any 2xx.
    Status2xx,
    /// Slack's Web API: 2xx and `{"ok": true}`.
    SlackApi,
    /// Not judged (Sentry: upstream's SDK sends in the background and never fails a post).
    Ignore,
}

/// One HTTP request of a delivery.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: &'static str,
    pub url: String,
    /// In the order they are set; a later value of the same name replaces an earlier one when
    /// `set` is used.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub validate: Validate,
}

impl Request {
    /// A JSON POST as upstream's postMessage builds it.
    pub fn post_json(url: impl Into<String>, body: Vec<u8>) -> Self {
        Self {
            method: "POST",
            url: url.into(),
            headers: vec![("Content-Type".into(), "application/json".into())],
            body,
            validate: Validate::Status2xx,
        }
    }

    /// Sets a header, replacing any value of the same (case-insensitive) name (Go's
    /// `Header.Set`).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_string(), value.into()));
    }

    /// Adds a header (Go's `Header.Add`).
    pub fn add(&mut self, name: &str, value: impl Into<String>) {
        self.headers.push((name.to_string(), value.into()));
    }

    /// Sets `Authorization: Basic ...`.
    pub fn basic_auth(&mut self, username: &str, password: &str) {
        use base64::Engine;
        let v = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        self.set("Authorization", format!("Basic {v}"));
    }
}

/// What delivering one event to one Provider means.
#[derive(Clone, Debug)]
pub enum Delivery {
    /// HTTP requests, sent in order (PagerDuty sends two).
    Http(Vec<Request>),
    /// One message published on a NATS subject.
    Nats(nats::Publish),
    /// A Git commit status: list the commit's statuses, create ours unless identical.
    CommitStatus(commitstatus::Plan),
    /// An Azure DevOps commit status (resource locations first, then list and create).
    AzureDevOps(azuredevops::Plan),
    /// A pull/merge request comment: who am I, list, then edit ours or create one.
    Comment(comments::Plan),
    /// A Google Pub/Sub publish (credentials first).
    GooglePubSub(googlepubsub::Plan),
    /// An Azure Event Hubs send (SAS token computed at send time).
    AzureEventHub(azureeventhub::Plan),
    /// Nothing to send (e.g. PagerDuty ignores `Progressing` events).
    Nothing,
}

/// Builds the delivery of `event` for a Provider of type `kind`. Errors are upstream's
/// notifier-construction errors (invalid URL, missing token, ...).
pub fn build(kind: ProviderType, s: &Settings, event: &Event) -> Result<Delivery, String> {
    use ProviderType as T;
    let one = |r: Result<Request, String>| r.map(|r| Delivery::Http(vec![r]));
    match kind {
        T::Generic => one(generic::build(s, event, false)),
        T::GenericHmac => one(generic::build(s, event, true)),
        T::Slack => one(slack::slack(s, event)),
        T::Discord => one(slack::discord(s, event)),
        T::Rocket => one(slack::rocket(s, event)),
        T::MsTeams => one(msteams::build(s, event)),
        T::GoogleChat => one(googlechat::build(s, event)),
        T::Webex => one(webex::build(s, event)),
        T::Telegram => one(telegram::build(s, event)),
        T::Lark => one(lark::build(s, event)),
        T::Matrix => one(matrix::build(s, event)),
        T::Opsgenie => one(opsgenie::build(s, event)),
        T::Alertmanager => one(alertmanager::build(s, event)),
        T::Grafana => one(grafana::build(s, event)),
        T::PagerDuty => pagerduty::build(s, event),
        T::Datadog => one(datadog::build(s, event)),
        T::Nats => nats::build(s, event).map(Delivery::Nats),
        T::GitHub => github::build(s, &s.commit_status, event)
            .map(|p| p.map_or(Delivery::Nothing, Delivery::CommitStatus)),
        T::GitLab => gitlab::build(s, &s.commit_status, event)
            .map(|p| p.map_or(Delivery::Nothing, Delivery::CommitStatus)),
        T::Gitea => gitea::build(s, &s.commit_status, event).map(Delivery::CommitStatus),
        T::Bitbucket => {
            bitbucket::cloud(s, event).map(|p| p.map_or(Delivery::Nothing, Delivery::CommitStatus))
        }
        T::BitbucketServer => {
            bitbucket::server(s, event).map(|p| p.map_or(Delivery::Nothing, Delivery::CommitStatus))
        }
        T::AzureDevOps => {
            azuredevops::build(s, event).map(|p| p.map_or(Delivery::Nothing, Delivery::AzureDevOps))
        }
        T::GitHubDispatch => one(github::dispatch(s, event)),
        T::GitHubPullRequestComment => comments::github(s, event).map(Delivery::Comment),
        T::GitLabMergeRequestComment => comments::gitlab(s, event).map(Delivery::Comment),
        T::GiteaPullRequestComment => comments::gitea(s, event).map(Delivery::Comment),
        T::Zulip => one(zulip::build(s, event)),
        T::Zoom => one(zoom::build(s, event)),
        T::IncidentIo => incidentio::build(s, event),
        T::Sentry => one(sentry::build(s, event)),
        T::Otel => {
            otel::build(s, event).map(|r| r.map_or(Delivery::Nothing, |r| Delivery::Http(vec![r])))
        }
        T::AzureEventHub => azureeventhub::build(s, event).map(Delivery::AzureEventHub),
        T::GooglePubSub => googlepubsub::build(s, event).map(Delivery::GooglePubSub),
    }
}

/// Go's `url.ParseRequestURI` acceptance: an absolute URL (or an absolute path).
pub fn parse_request_uri(raw: &str) -> Result<reqwest::Url, String> {
    reqwest::Url::parse(raw).map_err(|e| format!("parse {raw:?}: {e}"))
}

/// `kind/name.namespace` with the kind lowercased: how chat providers title an event.
pub fn object_title(event: &Event) -> String {
    let o = &event.involved_object;
    format!("{}/{}.{}", o.kind.to_lowercase(), o.name, o.namespace)
}

/// The connection pool of the notifiers' HTTP clients: as many idle connections per host as
/// deliveries may be in flight to it, closed after 30 s unused. Upstream's pooled transport keeps
/// only CPUs + 1 idle, which under load closes a connection after most requests; with that
/// setting the load benchmark delivered only 7,018 of 60,000 events (on a machine at load
/// average 11-15; likely cause, not verified: closed sockets in TIME_WAIT using up local ports
/// at 1,000 new connections a second), so more are kept, for a shorter time.
pub fn pooled(b: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
    b.pool_max_idle_per_host(crate::provider::IN_FLIGHT_PER_PROVIDER)
        .pool_idle_timeout(Duration::from_secs(30))
}

/// An HTTP client for the Provider's proxy and TLS settings.
pub fn http_client(s: &Settings) -> Result<reqwest::Client, String> {
    let mut b = pooled(reqwest::Client::builder())
        .redirect(reqwest::redirect::Policy::limited(10))
        .user_agent(concat!(
            "ferroflux-notification-controller/",
            env!("CARGO_PKG_VERSION")
        ));
    if !s.proxy.is_empty() {
        let proxy =
            reqwest::Proxy::all(&s.proxy).map_err(|e| format!("unable to parse proxy URL: {e}"))?;
        b = b.proxy(proxy);
    }
    if let Some(tls) = &s.tls {
        if let Some(ca) = &tls.ca {
            let certs = reqwest::Certificate::from_pem_bundle(ca)
                .map_err(|e| format!("failed to get TLS config: invalid CA certificate: {e}"))?;
            b = b.tls_certs_merge(certs);
        }
        if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
            let mut pem = cert.clone();
            pem.push(b'\n');
            pem.extend_from_slice(key);
            let id = reqwest::Identity::from_pem(&pem).map_err(|e| {
                format!("failed to get TLS config: invalid client certificate: {e}")
            })?;
            b = b.identity(id);
        }
    }
    b.build()
        .map_err(|e| format!("failed to create HTTP client: {e}"))
}

const RETRY_MAX: u32 = 4;
const RETRY_WAIT_MIN: Duration = Duration::from_secs(2);
const RETRY_WAIT_MAX: Duration = Duration::from_secs(30);

/// Sends one request with go-retryablehttp's default policy; the caller bounds the whole
/// delivery with the Provider's timeout.
pub async fn send_request(client: &reqwest::Client, req: &Request) -> Result<(), String> {
    let method = reqwest::Method::from_bytes(req.method.as_bytes())
        .map_err(|e| format!("failed to create a new request: {e}"))?;
    let mut attempt = 0u32;
    loop {
        let mut rb = client
            .request(method.clone(), &req.url)
            .body(req.body.clone());
        for (k, v) in &req.headers {
            rb = rb.header(k, v);
        }
        let (retry, wait, err) = match rb.send().await {
            Err(e) => (true, None, format!("failed to execute request: {e}")),
            Ok(resp) => {
                let status = resp.status().as_u16();
                let retry_after = resp
                    .headers()
                    .get("Retry-After")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                let retryable = req.validate != Validate::Ignore
                    && (status == 429 || (status >= 500 && status != 501));
                if retryable && attempt < RETRY_MAX {
                    let wait = if status == 429 || status == 503 {
                        retry_after
                    } else {
                        None
                    };
                    (
                        true,
                        wait,
                        format!("request failed with status code {status}"),
                    )
                } else {
                    return validate(req.validate, resp).await;
                }
            }
        };
        if req.validate == Validate::Ignore {
            tracing::debug!(error = %err, "notification not sent, ignored as upstream");
            return Ok(());
        }
        if !retry || attempt >= RETRY_MAX {
            return Err(format!(
                "{} {} giving up after {} attempt(s): {err}",
                req.method,
                req.url,
                attempt + 1
            ));
        }
        let backoff = wait.unwrap_or_else(|| {
            let exp = RETRY_WAIT_MIN.saturating_mul(1 << attempt);
            exp.min(RETRY_WAIT_MAX)
        });
        tracing::debug!(attempt, error = %err, "retrying notification request");
        tokio::time::sleep(backoff).await;
        attempt += 1;
    }
}

async fn validate(how: Validate, resp: reqwest::Response) -> Result<(), String> {
    let status = resp.status().as_u16();
    match how {
        Validate::Ignore => {
            if !(200..300).contains(&status) {
                tracing::debug!(status, "notification not accepted, ignored as upstream");
            }
            Ok(())
        }
        Validate::Status2xx => {
            if (200..300).contains(&status) {
                return Ok(());
            }
            let body = resp.text().await.unwrap_or_default();
            Err(format!(
                "request failed: request failed with status code {status}: {body}"
            ))
        }
        Validate::SlackApi => {
            #[derive(serde::Deserialize)]
            struct SlackResp {
                #[serde(default)]
                ok: bool,
                #[serde(default)]
                error: String,
            }
            let body = resp.bytes().await.unwrap_or_default();
            match serde_json::from_slice::<SlackResp>(&body) {
                Err(e) => Err(format!(
                    "request failed: unable to unmarshal response body: {e}"
                )),
                Ok(r) if r.ok => Ok(()),
                Ok(r) => Err(format!(
                    "request failed: Slack responded with error: {}",
                    r.error
                )),
            }
        }
    }
}

/// Delivers `delivery` with a client for the Provider's proxy and TLS settings (`shared` when it
/// has none); no timeout here: the dispatcher bounds it.
pub async fn send(
    delivery: &Delivery,
    s: &Settings,
    shared: &reqwest::Client,
) -> Result<(), String> {
    if s.proxy.is_empty() && s.tls.is_none() {
        send_with(delivery, shared).await
    } else {
        send_with(delivery, &http_client(s)?).await
    }
}

/// Delivers `delivery` with `client` (already set up for the Provider's proxy and TLS).
pub async fn send_with(delivery: &Delivery, client: &reqwest::Client) -> Result<(), String> {
    match delivery {
        Delivery::Nothing => Ok(()),
        Delivery::Nats(p) => nats::publish(p).await,
        Delivery::CommitStatus(plan) => commitstatus::send(client, plan).await,
        Delivery::AzureDevOps(plan) => azuredevops::send(client, plan).await,
        Delivery::Comment(plan) => comments::send(client, plan).await,
        Delivery::GooglePubSub(plan) => googlepubsub::send(client, plan).await,
        Delivery::AzureEventHub(plan) => azureeventhub::send(client, plan).await,
        Delivery::Http(requests) => {
            for r in requests {
                send_request(client, r)
                    .await
                    .map_err(|e| format!("postMessage failed: {e}"))?;
            }
            Ok(())
        }
    }
}
