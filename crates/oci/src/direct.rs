//! The pull side of the distribution API on reqwest directly, for what oci-client cannot be
//! configured for: a TLS client certificate (`certSecretRef` with `tls.crt`/`tls.key`).
//! Anonymous, basic and bearer-token auth as the distribution spec's token flow describes
//! (a `401` with `WWW-Authenticate: Bearer realm=…,service=…` answered by a token request with
//! the repository's pull scope; `Basic` sends the credentials on every request).

use std::sync::Mutex;
use std::time::Duration;

use sha2::Digest as _;
use tokio::io::{AsyncWrite, AsyncWriteExt as _};

use super::auth::Credentials;
use super::client::{RegistryError, USER_AGENT, error_chain};

/// Largest manifest or token response read.
const MAX_SMALL_BODY: usize = 4 << 20;

/// Page size of tag listings.
const TAGS_PAGE: usize = 1000;
/// At most this many pages of tags are read.
const MAX_TAG_PAGES: usize = 100;

/// How requests are authorised once the registry said how.
#[derive(Clone, Debug)]
enum Authorization {
    None,
    Basic,
    Bearer(String),
}

pub(crate) struct Direct {
    http: reqwest::Client,
    /// `https://host:port` or `http://…`.
    base: String,
    path: String,
    credentials: Option<Credentials>,
    authorization: Mutex<Authorization>,
}

/// What [`Direct::new`] needs besides the repository.
pub(crate) struct DirectOptions<'a> {
    pub https: bool,
    pub accept_invalid_certificates: bool,
    pub ca_pem: Option<&'a [u8]>,
    /// PEM certificate chain followed by the PEM private key.
    pub identity_pem: &'a [u8],
    pub proxy: Option<&'a str>,
    pub timeout: Option<Duration>,
    pub credentials: Option<Credentials>,
}

fn registry_error(e: reqwest::Error) -> RegistryError {
    RegistryError::Registry(error_chain(&e))
}

impl Direct {
    pub(crate) fn new(
        registry: &str,
        path: &str,
        opts: DirectOptions<'_>,
    ) -> Result<Self, RegistryError> {
        let identity = reqwest::Identity::from_pem(opts.identity_pem).map_err(|e| {
            RegistryError::Registry(format!(
                "invalid client certificate or key: {}",
                error_chain(&e)
            ))
        })?;
        let mut b = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .identity(identity)
            .danger_accept_invalid_certs(opts.accept_invalid_certificates);
        if let Some(ca) = opts.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(ca).map_err(|e| {
                RegistryError::Registry(format!("invalid CA certificate: {}", error_chain(&e)))
            })?;
            b = b.tls_certs_merge(certs);
        }
        if let Some(t) = opts.timeout {
            b = b.read_timeout(t).connect_timeout(t);
        }
        if let Some(p) = opts.proxy {
            b = b.proxy(reqwest::Proxy::all(p).map_err(registry_error)?);
        }
        let http = b.build().map_err(registry_error)?;
        // Docker Hub's API lives on another host than its name, as for oci-client.
        let host = if registry == "docker.io" || registry == "index.docker.io" {
            "registry-1.docker.io"
        } else {
            registry
        };
        Ok(Self {
            http,
            base: format!("{}://{host}", if opts.https { "https" } else { "http" }),
            path: path.to_string(),
            credentials: opts.credentials,
            authorization: Mutex::new(Authorization::None),
        })
    }

    fn authorization(&self) -> Authorization {
        self.authorization
            .lock()
            .map(|a| a.clone())
            .unwrap_or(Authorization::None)
    }

    fn with_auth(
        &self,
        req: reqwest::RequestBuilder,
        auth: &Authorization,
    ) -> reqwest::RequestBuilder {
        match (auth, &self.credentials) {
            (Authorization::Bearer(t), _) => req.bearer_auth(t),
            (Authorization::Basic, Some(c)) => req.basic_auth(&c.username, Some(&c.password)),
            _ => req,
        }
    }

    /// Sends a request, answering one authentication challenge.
    async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        accept: &str,
    ) -> Result<reqwest::Response, RegistryError> {
        let build = |auth: &Authorization| {
            let mut r = self.http.request(method.clone(), url);
            if !accept.is_empty() {
                r = r.header(reqwest::header::ACCEPT, accept);
            }
            self.with_auth(r, auth)
        };
        let resp = build(&self.authorization())
            .send()
            .await
            .map_err(registry_error)?;
        if resp.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let challenge = resp
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let auth = self.answer(&challenge).await?;
        if let Ok(mut a) = self.authorization.lock() {
            *a = auth.clone();
        }
        build(&auth).send().await.map_err(registry_error)
    }

    /// The authorization a `WWW-Authenticate` challenge asks for.
    async fn answer(&self, challenge: &str) -> Result<Authorization, RegistryError> {
        let (scheme, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return Ok(Authorization::Basic);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(RegistryError::Registry(format!(
                "unsupported authentication challenge '{challenge}'"
            )));
        }
        let params = challenge_params(params);
        let realm = params
            .iter()
            .find(|(k, _)| k == "realm")
            .map(|(_, v)| v.clone())
            .ok_or_else(|| RegistryError::Registry("bearer challenge without realm".into()))?;
        let mut query: Vec<(String, String)> = params
            .iter()
            .filter(|(k, _)| k == "service")
            .cloned()
            .collect();
        query.push(("scope".into(), format!("repository:{}:pull", self.path)));
        let mut req = self.http.get(&realm).query(&query);
        if let Some(c) = &self.credentials {
            req = req.basic_auth(&c.username, Some(&c.password));
        }
        let resp = req.send().await.map_err(registry_error)?;
        let status = resp.status();
        let body = read_small(resp).await?;
        if !status.is_success() {
            return Err(RegistryError::Registry(format!(
                "token request to {realm} failed: {status}"
            )));
        }
        #[derive(serde::Deserialize)]
        struct Token {
            #[serde(default)]
            token: String,
            #[serde(default)]
            access_token: String,
        }
        let t: Token = serde_json::from_slice(&body)
            .map_err(|e| RegistryError::Registry(format!("invalid token response: {e}")))?;
        let token = if t.token.is_empty() {
            t.access_token
        } else {
            t.token
        };
        Ok(Authorization::Bearer(token))
    }

    fn url(&self, tail: &str) -> String {
        format!("{}/v2/{}/{tail}", self.base, self.path)
    }

    pub(crate) async fn list_tags(&self) -> Result<Vec<String>, RegistryError> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let mut tags: Vec<String> = Vec::new();
        let mut last: Option<String> = None;
        for _ in 0..MAX_TAG_PAGES {
            let mut url = self.url(&format!("tags/list?n={TAGS_PAGE}"));
            if let Some(l) = &last {
                url.push_str("&last=");
                url.push_str(&urlencode(l));
            }
            let resp = self.send(reqwest::Method::GET, &url, "").await?;
            let body = checked(resp).await?;
            let page: Page = serde_json::from_slice(&body)
                .map_err(|e| RegistryError::Registry(format!("invalid tag list: {e}")))?;
            let page = page.tags.unwrap_or_default();
            let n = page.len();
            let next = page.last().cloned();
            for t in page {
                if !tags.contains(&t) {
                    tags.push(t);
                }
            }
            if n < TAGS_PAGE || next == last {
                break;
            }
            last = next;
        }
        Ok(tags)
    }

    /// The digest a tag or digest reference names: HEAD, then GET.
    pub(crate) async fn manifest_digest(
        &self,
        reference: &str,
        accept: &str,
    ) -> Result<String, RegistryError> {
        let url = self.url(&format!("manifests/{reference}"));
        let resp = self.send(reqwest::Method::HEAD, &url, accept).await?;
        if resp.status().is_success()
            && let Some(d) = resp
                .headers()
                .get("docker-content-digest")
                .and_then(|v| v.to_str().ok())
        {
            return Ok(d.to_string());
        }
        let (raw, digest) = self.manifest(reference, accept).await?;
        Ok(if digest.is_empty() {
            format!("sha256:{}", hex::encode(sha2::Sha256::digest(&raw)))
        } else {
            digest
        })
    }

    /// A raw manifest and the registry's `Docker-Content-Digest` (empty when absent).
    pub(crate) async fn manifest(
        &self,
        reference: &str,
        accept: &str,
    ) -> Result<(Vec<u8>, String), RegistryError> {
        let url = self.url(&format!("manifests/{reference}"));
        let resp = self.send(reqwest::Method::GET, &url, accept).await?;
        let digest = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = checked(resp).await?;
        Ok((body, digest))
    }

    /// Streams a blob into `out`, at most `limit` bytes, its sha256 checked against `digest`.
    /// Returns the size.
    pub(crate) async fn blob<W: AsyncWrite + Unpin>(
        &self,
        digest: &str,
        out: &mut W,
        limit: Option<u64>,
    ) -> Result<u64, RegistryError> {
        let url = self.url(&format!("blobs/{digest}"));
        let mut resp = self.send(reqwest::Method::GET, &url, "").await?;
        if !resp.status().is_success() {
            return Err(status_error(resp).await);
        }
        let mut hasher = sha2::Sha256::new();
        let mut written: u64 = 0;
        while let Some(chunk) = resp.chunk().await.map_err(registry_error)? {
            written += chunk.len() as u64;
            if let Some(limit) = limit
                && written > limit
            {
                return Err(RegistryError::TooLarge {
                    size: written,
                    limit,
                });
            }
            hasher.update(&chunk);
            out.write_all(&chunk).await?;
        }
        out.flush().await?;
        let got = format!("sha256:{}", hex::encode(hasher.finalize()));
        if got != digest {
            return Err(RegistryError::Registry(format!(
                "digest mismatch: expected {digest}, got {got}"
            )));
        }
        Ok(written)
    }
}

/// The body of a successful response (bounded), or the status as an error.
async fn checked(resp: reqwest::Response) -> Result<Vec<u8>, RegistryError> {
    if !resp.status().is_success() {
        return Err(status_error(resp).await);
    }
    read_small(resp).await
}

async fn status_error(resp: reqwest::Response) -> RegistryError {
    let status = resp.status();
    let url = resp.url().to_string();
    let body = read_small(resp).await.unwrap_or_default();
    #[derive(serde::Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let detail = serde_json::from_slice::<Errors>(&body)
        .ok()
        .and_then(|e| e.errors.into_iter().next())
        .map(|e| format!(": {}: {}", e.code, e.message))
        .unwrap_or_default();
    RegistryError::Registry(format!("{url}: {status}{detail}"))
}

async fn read_small(mut resp: reqwest::Response) -> Result<Vec<u8>, RegistryError> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(registry_error)? {
        if body.len() + chunk.len() > MAX_SMALL_BODY {
            return Err(RegistryError::Registry(format!(
                "response from {} is larger than {MAX_SMALL_BODY} bytes",
                resp.url()
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `key="value"` pairs of a challenge (values may be unquoted).
fn challenge_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, tail) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"').unwrap_or(q.len());
            (q[..end].to_string(), q.get(end + 1..).unwrap_or(""))
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        out.push((key, value));
        rest = tail.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_as_registries_send_them() {
        assert_eq!(
            challenge_params(
                r#"realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull""#
            ),
            vec![
                (
                    "realm".to_string(),
                    "https://auth.example.com/token".to_string()
                ),
                ("service".to_string(), "registry.example.com".to_string()),
                ("scope".to_string(), "repository:a/b:pull".to_string()),
            ]
        );
        assert_eq!(
            challenge_params("realm=x, service=y"),
            vec![
                ("realm".to_string(), "x".to_string()),
                ("service".to_string(), "y".to_string())
            ]
        );
        assert_eq!(urlencode("v1.0+b"), "v1.0%2Bb");
    }
}
