//! `googlepubsub`: the event published on a Google Pub/Sub topic.
//!
//! Upstream publishes with the Go Pub/Sub client (gRPC `Publish`): one message whose data is
//! the event JSON (`json.Marshal(event)`) and whose attributes are the Secret's `headers`
//! (none when empty); `address` is the project ID, `channel` the topic ID, and the Secret's
//! `token` the JSON credentials. Here the same message goes through Pub/Sub's REST `publish`
//! method (`POST /v1/projects/{project}/topics/{topic}:publish`, data base64-encoded as the
//! REST mapping of the same `PubsubMessage` requires).
//!
//! Credentials as the Go client uses them: a `service_account` key signs a self-signed JWT
//! carrying the client's default scopes, sent as the bearer token without any token exchange
//! (the generated gRPC clients enable "JWT with scope"); `authorized_user` credentials are
//! exchanged for an access token at their token URI with the refresh token. With
//! `PUBSUB_EMULATOR_HOST` set, as the Go client does, requests go to that host over plain HTTP
//! without credentials.

use std::collections::BTreeMap;

use base64::Engine;

use super::zulip::{form_encode, query_escape};
use super::{Request, Settings, Validate};
use crate::event::Event;

/// Pub/Sub's public endpoint.
pub const ENDPOINT: &str = "https://pubsub.googleapis.com";
/// The default scopes of the Go Pub/Sub client, carried by the self-signed JWT.
pub const SCOPES: &str =
    "https://www.googleapis.com/auth/cloud-platform https://www.googleapis.com/auth/pubsub";
/// Where `authorized_user` credentials are exchanged when they name no token URI.
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

/// How the publish request is authorised.
#[derive(Clone)]
pub enum Auth {
    /// The emulator: no credentials.
    None,
    /// A self-signed JWT from a service account key (PKCS#8 DER).
    ServiceAccount {
        email: String,
        key_id: String,
        key: Vec<u8>,
    },
    /// An access token obtained with a refresh token.
    AuthorizedUser {
        token_uri: String,
        client_id: String,
        client_secret: String,
        refresh_token: String,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Key material and secrets stay out of debug output.
        match self {
            Auth::None => f.write_str("None"),
            Auth::ServiceAccount { email, .. } => write!(f, "ServiceAccount({email})"),
            Auth::AuthorizedUser { token_uri, .. } => write!(f, "AuthorizedUser({token_uri})"),
        }
    }
}

/// One publish: the request without its `Authorization`, and how to obtain it.
#[derive(Clone, Debug)]
pub struct Plan {
    pub request: Request,
    pub auth: Auth,
    /// `projects/{project}/topics/{topic}`, for error messages as upstream words them.
    pub topic: String,
}

#[derive(serde::Deserialize)]
struct Credentials {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    client_email: String,
    #[serde(default)]
    private_key: String,
    #[serde(default)]
    private_key_id: String,
    #[serde(default)]
    universe_domain: String,
    #[serde(default)]
    token_uri: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: String,
    #[serde(default)]
    refresh_token: String,
}

/// The DER content of the first PEM block of `pem` (a service account's `private_key`).
fn pem_der(pem: &str) -> Result<Vec<u8>, String> {
    let begin = pem
        .find("-----BEGIN ")
        .ok_or("credentials: could not parse key: no PEM block")?;
    let rest = &pem[begin..];
    let body_start = rest
        .find('\n')
        .ok_or("credentials: could not parse key: truncated PEM block")?;
    let end = rest
        .find("-----END ")
        .ok_or("credentials: could not parse key: truncated PEM block")?;
    if end < body_start {
        return Err("credentials: could not parse key: truncated PEM block".into());
    }
    let b64: String = rest[body_start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("credentials: could not parse key: {e}"))
}

fn auth_from(s: &Settings) -> Result<(Auth, String), String> {
    if !s.pubsub_emulator_host.is_empty() {
        return Ok((Auth::None, format!("http://{}", s.pubsub_emulator_host)));
    }
    if s.token.is_empty() {
        // Upstream then asks for a token of the controller's (or the Provider's) Kubernetes
        // service account through workload identity, which ferroflux does not have.
        return Err("failed to create GCP client options: no JSON credentials in the Provider's secret ('token') and workload identity is not supported".into());
    }
    let c: Credentials = serde_json::from_str(&s.token)
        .map_err(|e| format!("credentials: invalid JSON credentials in 'token': {e}"))?;
    let universe = if c.universe_domain.is_empty() {
        "googleapis.com".to_string()
    } else {
        c.universe_domain.clone()
    };
    let endpoint = if s.api_base.is_empty() {
        if universe == "googleapis.com" {
            ENDPOINT.to_string()
        } else {
            format!("https://pubsub.{universe}")
        }
    } else {
        s.api_base.trim_end_matches('/').to_string()
    };
    let auth = match c.kind.as_str() {
        "service_account" => {
            let der = pem_der(&c.private_key)?;
            // Checked here so that a broken key fails when the notifier is built.
            aws_lc_rs::rsa::KeyPair::from_pkcs8(&der)
                .or_else(|_| aws_lc_rs::rsa::KeyPair::from_der(&der))
                .map_err(|e| format!("credentials: could not parse key: {e}"))?;
            if c.client_email.is_empty() {
                return Err("credentials: service account JSON has no client_email".into());
            }
            Auth::ServiceAccount {
                email: c.client_email,
                key_id: c.private_key_id,
                key: der,
            }
        }
        "authorized_user" => {
            if c.refresh_token.is_empty() {
                return Err("credentials: authorized_user JSON has no refresh_token".into());
            }
            Auth::AuthorizedUser {
                token_uri: if c.token_uri.is_empty() {
                    DEFAULT_TOKEN_URI.to_string()
                } else {
                    c.token_uri
                },
                client_id: c.client_id,
                client_secret: c.client_secret,
                refresh_token: c.refresh_token,
            }
        }
        "" => return Err("credentials: missing 'type' field in JSON credentials".into()),
        other => {
            return Err(format!(
                "credentials: type {other:?} is not supported by ferroflux (service_account and authorized_user are)"
            ));
        }
    };
    Ok((auth, endpoint))
}

/// Builds the publish of `event` (upstream's NewGooglePubSub checks, then the message).
pub fn build(s: &Settings, event: &Event) -> Result<Plan, String> {
    if s.url.is_empty() {
        return Err("GCP project ID cannot be empty".into());
    }
    if s.channel.is_empty() {
        return Err("GCP Pub/Sub topic ID cannot be empty".into());
    }
    let (auth, endpoint) = auth_from(s)?;
    let data = base64::engine::general_purpose::STANDARD.encode(event.to_go_json());
    let mut message = serde_json::Map::new();
    message.insert("data".into(), data.into());
    if !s.headers.is_empty() {
        let attrs: BTreeMap<&String, &String> = s.headers.iter().collect();
        message.insert("attributes".into(), serde_json::json!(attrs));
    }
    let body = serde_json::to_vec(&serde_json::json!({ "messages": [message] }))
        .map_err(|e| format!("error json-marshaling event: {e}"))?;
    let seg = |v: &str| query_escape(v).replace('+', "%20");
    let url = format!(
        "{endpoint}/v1/projects/{}/topics/{}:publish",
        seg(&s.url),
        seg(&s.channel)
    );
    let mut request = Request::post_json(url, body);
    request.validate = Validate::Status2xx;
    Ok(Plan {
        request,
        auth,
        topic: format!("projects/{}/topics/{}", s.url, s.channel),
    })
}

fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// The self-signed JWT of a service account, as the Go auth library makes it: RS256, `kid` =
/// the key id, `iss` = `sub` = the account's email, the scopes, valid for an hour.
pub fn self_signed_jwt(email: &str, key_id: &str, der: &[u8], now: i64) -> Result<String, String> {
    let key = aws_lc_rs::rsa::KeyPair::from_pkcs8(der)
        .or_else(|_| aws_lc_rs::rsa::KeyPair::from_der(der))
        .map_err(|e| format!("credentials: could not parse key: {e}"))?;
    #[derive(serde::Serialize)]
    struct Header<'a> {
        alg: &'a str,
        typ: &'a str,
        kid: &'a str,
    }
    #[derive(serde::Serialize)]
    struct Claims<'a> {
        iss: &'a str,
        scope: &'a str,
        aud: &'a str,
        exp: i64,
        iat: i64,
        sub: &'a str,
    }
    let header = serde_json::to_vec(&Header {
        alg: "RS256",
        typ: "JWT",
        kid: key_id,
    })
    .map_err(|e| e.to_string())?;
    let claims = serde_json::to_vec(&Claims {
        iss: email,
        scope: SCOPES,
        aud: "",
        exp: now + 3600,
        iat: now,
        sub: email,
    })
    .map_err(|e| e.to_string())?;
    let input = format!("{}.{}", b64url(&header), b64url(&claims));
    let mut sig = vec![0u8; key.public_modulus_len()];
    key.sign(
        &aws_lc_rs::signature::RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .map_err(|_| "credentials: signing the JWT failed".to_string())?;
    Ok(format!("{input}.{}", b64url(&sig)))
}

/// Exchanges a refresh token for an access token (OAuth 2.0, RFC 6749 §6).
async fn refresh(
    client: &reqwest::Client,
    token_uri: &str,
    client_id: &str,
    client_secret: &str,
    refresh_token: &str,
) -> Result<String, String> {
    #[derive(serde::Deserialize)]
    struct Token {
        #[serde(default)]
        access_token: String,
    }
    let form = form_encode(&[
        ("grant_type", "refresh_token"),
        ("client_id", client_id),
        ("client_secret", client_secret),
        ("refresh_token", refresh_token),
    ]);
    let resp = client
        .post(token_uri)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .map_err(|e| format!("credentials: token request failed: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp.bytes().await.unwrap_or_default();
    if !(200..300).contains(&status) {
        return Err(format!(
            "credentials: token request failed with status code {status}"
        ));
    }
    let t: Token = serde_json::from_slice(&body)
        .map_err(|e| format!("credentials: invalid token response: {e}"))?;
    if t.access_token.is_empty() {
        return Err("credentials: token response has no access_token".into());
    }
    Ok(t.access_token)
}

/// Publishes the message: credentials first, then the publish request (retried as the other
/// HTTP deliveries are).
pub async fn send(client: &reqwest::Client, plan: &Plan) -> Result<(), String> {
    let wrap = |e: String| format!("error publishing to GCP Pub/Sub topic {}: {e}", plan.topic);
    let mut req = plan.request.clone();
    match &plan.auth {
        Auth::None => {}
        Auth::ServiceAccount { email, key_id, key } => {
            let jwt = self_signed_jwt(email, key_id, key, jiff::Timestamp::now().as_second())
                .map_err(wrap)?;
            req.set("Authorization", format!("Bearer {jwt}"));
        }
        Auth::AuthorizedUser {
            token_uri,
            client_id,
            client_secret,
            refresh_token,
        } => {
            let token = refresh(client, token_uri, client_id, client_secret, refresh_token)
                .await
                .map_err(wrap)?;
            req.set("Authorization", format!("Bearer {token}"));
        }
    }
    super::send_request(client, &req).await.map_err(wrap)
}
