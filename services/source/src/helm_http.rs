//! HTTP(S) access to Helm chart repositories, as source-controller configures Helm's HTTP
//! getter: the repository URL normalised (one trailing slash), basic auth from `secretRef`
//! (sent only to the repository's scheme and host unless `passCredentials`), TLS from
//! `certSecretRef` (or, deprecated, `secretRef`): CA certificates added to the system roots and
//! a client certificate, the HelmRepository timeout, and a size limit on every download.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::time::Duration;

use ferroflux_api::HelmRepository;
use reqwest::Url;

/// Secrets, as every Helm reconciler reads them.
pub trait SecretLookup: Send + Sync {
    /// The data of a Secret; `Ok(None)` if it does not exist.
    fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<BTreeMap<String, Vec<u8>>>, String>> + Send;
}

/// Helm's `NormalizeURL`: `oci://` URLs lose trailing slashes, HTTP(S) URLs end with exactly
/// one.
pub fn normalize_url(url: &str) -> Result<String, String> {
    if url.is_empty() {
        return Ok(String::new());
    }
    let mut u = Url::parse(url).map_err(|e| format!("parse \"{url}\": {e}"))?;
    let path = u.path().trim_end_matches('/').to_string();
    if u.scheme() == "oci" {
        u.set_path(&path);
    } else {
        u.set_path(&format!("{path}/"));
    }
    Ok(u.to_string())
}

/// True for `oci://` URLs (Helm's `IsOCI`).
pub fn is_oci(url: &str) -> bool {
    url.starts_with("oci://")
}

/// `<url>/index.yaml` (path joined, query kept).
pub fn index_url(url: &str) -> Result<String, String> {
    let mut u = Url::parse(url).map_err(|e| format!("parse \"{url}\": {e}"))?;
    let path = format!("{}/index.yaml", u.path().trim_end_matches('/'));
    u.set_path(&path);
    Ok(u.to_string())
}

/// Helm's `ResolveReferenceURL`: an absolute chart URL as is, a relative one against the
/// repository URL (read as a directory), keeping the repository URL's query.
pub fn resolve_reference_url(base: &str, reference: &str) -> Result<String, String> {
    if Url::parse(reference).is_ok() {
        return Ok(reference.to_string());
    }
    let mut b = Url::parse(base).map_err(|e| format!("failed to parse {base} as URL: {e}"))?;
    let path = format!("{}/", b.path().trim_end_matches('/'));
    b.set_path(&path);
    let query = b.query().map(str::to_string);
    let mut r = b
        .join(reference)
        .map_err(|e| format!("failed to parse {reference} as URL: {e}"))?;
    r.set_query(query.as_deref());
    Ok(r.to_string())
}

/// TLS material for the client.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Tls {
    pub ca: Option<Vec<u8>>,
    pub cert_key: Option<(Vec<u8>, Vec<u8>)>,
}

/// How to reach one repository. `Debug` never prints credentials.
#[derive(Clone, Default)]
pub struct ClientOptions {
    /// The normalised repository URL (credentials go to its scheme and host).
    pub url: String,
    pub basic_auth: Option<(String, String)>,
    pub pass_credentials: bool,
    pub tls: Option<Tls>,
    pub timeout: Duration,
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOptions")
            .field("url", &self.url)
            .field(
                "basic_auth",
                &self.basic_auth.as_ref().map(|(u, _)| (u, "<redacted>")),
            )
            .field("pass_credentials", &self.pass_credentials)
            .field("tls", &self.tls.is_some())
            .field("timeout", &self.timeout)
            .finish()
    }
}

fn get<'a>(data: &'a BTreeMap<String, Vec<u8>>, key: &str, legacy: &str) -> Option<&'a [u8]> {
    data.get(key)
        .or_else(|| data.get(legacy))
        .map(Vec::as_slice)
        .filter(|v| !v.is_empty())
}

/// fluxcd/pkg's TLS reading: `tls.crt`/`tls.key`/`ca.crt` (or the legacy `certFile`/`keyFile`/
/// `caFile`); `Err` names the secret.
fn tls_from_secret(secret: &str, data: &BTreeMap<String, Vec<u8>>) -> Result<Tls, TlsError> {
    let cert = get(data, "tls.crt", "certFile");
    let key = get(data, "tls.key", "keyFile");
    let ca = get(data, "ca.crt", "caFile");
    match (cert, key) {
        (Some(_), None) => {
            return Err(TlsError::Validation(format!(
                "secret '{secret}' contains 'tls.crt' but missing 'tls.key'"
            )));
        }
        (None, Some(_)) => {
            return Err(TlsError::Validation(format!(
                "secret '{secret}' contains 'tls.key' but missing 'tls.crt'"
            )));
        }
        (None, None) if ca.is_none() => {
            return Err(TlsError::Validation(format!(
                "secret '{secret}' must contain either 'ca.crt' or both 'tls.crt' and 'tls.key'"
            )));
        }
        _ => {}
    }
    let cert_key = match (cert, key) {
        (Some(c), Some(k)) => {
            let mut pem = c.to_vec();
            pem.push(b'\n');
            pem.extend_from_slice(k);
            reqwest::Identity::from_pem(&pem).map_err(|e| {
                TlsError::Invalid(format!("failed to parse TLS certificate and key: {e}"))
            })?;
            Some((c.to_vec(), k.to_vec()))
        }
        _ => None,
    };
    if let Some(ca) = ca {
        match reqwest::Certificate::from_pem_bundle(ca) {
            Ok(c) if !c.is_empty() => {}
            _ => return Err(TlsError::Invalid("failed to parse CA certificate".into())),
        }
    }
    Ok(Tls {
        ca: ca.map(<[u8]>::to_vec),
        cert_key,
    })
}

enum TlsError {
    /// Missing keys (ignored when TLS is only one of the things a `secretRef` may hold).
    Validation(String),
    Invalid(String),
}

impl TlsError {
    fn message(self) -> String {
        match self {
            Self::Validation(m) | Self::Invalid(m) => m,
        }
    }
}

/// source-controller's `GetClientOpts` for an HTTP(S) repository: `certSecretRef` TLS first,
/// then `secretRef` basic auth (and its TLS keys when there is no `certSecretRef`). The error
/// is the message of an `AuthenticationFailed` condition.
pub async fn client_options<L: SecretLookup>(
    lookup: &L,
    repo: &HelmRepository,
    normalized_url: &str,
) -> Result<ClientOptions, String> {
    use kube::ResourceExt;
    let ns = repo.namespace().unwrap_or_default();
    let mut opts = ClientOptions {
        url: normalized_url.to_string(),
        pass_credentials: repo.spec.pass_credentials.unwrap_or(false),
        timeout: repo.effective_timeout(),
        ..Default::default()
    };
    let fetch = |name: String| {
        let ns = ns.clone();
        async move {
            match lookup.secret(&ns, &name).await {
                Ok(Some(d)) => Ok(d),
                Ok(None) => Err(format!("secrets \"{name}\" not found")),
                Err(e) => Err(e),
            }
        }
    };
    if let Some(r) = repo.spec.cert_secret_ref.as_ref() {
        let key = format!("{ns}/{}", r.name);
        let data = fetch(r.name.clone())
            .await
            .map_err(|e| format!("failed to get TLS authentication secret '{key}': {e}"))?;
        let tls = tls_from_secret(&key, &data).map_err(|e| {
            format!(
                "failed to construct Helm client's TLS config: {}",
                e.message()
            )
        })?;
        opts.tls = Some(tls);
    }
    if let Some(r) = repo.spec.secret_ref.as_ref() {
        let key = format!("{ns}/{}", r.name);
        let data = fetch(r.name.clone())
            .await
            .map_err(|e| format!("failed to get authentication secret '{key}': {e}"))?;
        let user = data.get("username");
        let pass = data.get("password");
        let malformed = |present: &str, missing: &str| {
            format!(
                "failed to detect authentication methods: secret '{key}': malformed basic auth - has '{present}' but missing '{missing}'"
            )
        };
        match (user, pass) {
            (Some(u), Some(p)) => {
                opts.basic_auth = Some((
                    String::from_utf8_lossy(u).into_owned(),
                    String::from_utf8_lossy(p).into_owned(),
                ));
            }
            (Some(_), None) => return Err(malformed("username", "password")),
            (None, Some(_)) => return Err(malformed("password", "username")),
            (None, None) => {}
        }
        match tls_from_secret(&key, &data) {
            Ok(tls) if opts.tls.is_none() => opts.tls = Some(tls),
            Ok(_) | Err(TlsError::Validation(_)) => {}
            Err(e) => {
                return Err(format!(
                    "failed to detect authentication methods: {}",
                    e.message()
                ));
            }
        }
    }
    Ok(opts)
}

/// An HTTP(S) client for one repository.
pub struct Getter {
    client: reqwest::Client,
    opts: ClientOptions,
}

/// A failed download; the text is what upstream's getter reports.
#[derive(Debug, thiserror::Error)]
pub enum GetError {
    #[error("{0}")]
    Client(String),
    #[error("Get \"{url}\": {message}")]
    Transport { url: String, message: String },
    #[error("failed to fetch {url} : {status}")]
    Status { url: String, status: String },
    #[error("{what} exceeds the maximum {limit_name} of {limit} bytes")]
    TooLarge {
        what: &'static str,
        limit_name: &'static str,
        limit: u64,
    },
}

impl GetError {
    /// True for a 401/403 or a TLS failure (what upstream reports as AuthenticationFailed).
    pub fn is_auth(&self) -> bool {
        match self {
            Self::Status { status, .. } => status.starts_with("401") || status.starts_with("403"),
            Self::Transport { message, .. } => {
                let m = message.to_lowercase();
                m.contains("tls") || m.contains("certificate")
            }
            _ => false,
        }
    }
}

/// A download limit and how its error names it.
#[derive(Clone, Copy, Debug)]
pub struct Limit {
    pub max: u64,
    pub what: &'static str,
    pub limit_name: &'static str,
}

/// `url` with its password, if any, replaced by `***`.
pub fn redact(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    crate::pipeline::one_line(&out)
}

impl Getter {
    pub fn new(opts: ClientOptions) -> Result<Self, GetError> {
        let mut builder = reqwest::Client::builder()
            .timeout(opts.timeout)
            .user_agent(concat!(
                "ferroflux-source-controller/",
                env!("CARGO_PKG_VERSION")
            ));
        if let Some(tls) = &opts.tls {
            if let Some(ca) = &tls.ca {
                let certs = reqwest::Certificate::from_pem_bundle(ca)
                    .map_err(|e| GetError::Client(format!("can't create TLS config: {e}")))?;
                for c in certs {
                    builder = builder.add_root_certificate(c);
                }
            }
            if let Some((cert, key)) = &tls.cert_key {
                let mut pem = cert.clone();
                pem.push(b'\n');
                pem.extend_from_slice(key);
                let id = reqwest::Identity::from_pem(&pem)
                    .map_err(|e| GetError::Client(format!("can't create TLS config: {e}")))?;
                builder = builder.identity(id);
            }
        }
        let client = builder
            .build()
            .map_err(|e| GetError::Client(error_chain(&e)))?;
        Ok(Self { client, opts })
    }

    /// Whether credentials go along to `url`: Helm sends them to the repository's own scheme
    /// and host (port included), anywhere with `passCredentials`.
    fn sends_credentials(&self, url: &Url) -> bool {
        if self.opts.pass_credentials {
            return true;
        }
        let Ok(base) = Url::parse(&self.opts.url) else {
            return false;
        };
        base.scheme() == url.scheme()
            && base.host_str() == url.host_str()
            && base.port_or_known_default() == url.port_or_known_default()
            && base.port() == url.port()
    }

    /// GETs `url` into memory, refusing bodies larger than the limit. Errors show the URL
    /// with any password replaced by `***` (as Go's HTTP client does).
    pub async fn get(&self, url: &str, limit: Limit) -> Result<Vec<u8>, GetError> {
        let parsed = Url::parse(url).map_err(|e| GetError::Transport {
            url: redact(url),
            message: e.to_string(),
        })?;
        let url = redact(url);
        let url = url.as_str();
        let mut req = self.client.get(parsed.clone());
        if self.sends_credentials(&parsed)
            && let Some((u, p)) = &self.opts.basic_auth
            && !u.is_empty()
            && !p.is_empty()
        {
            req = req.basic_auth(u, Some(p));
        }
        let transport = |e: reqwest::Error| GetError::Transport {
            url: url.to_string(),
            message: error_chain(&e.without_url()),
        };
        let mut resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        if status != reqwest::StatusCode::OK {
            return Err(GetError::Status {
                url: url.to_string(),
                status: status.to_string(),
            });
        }
        let too_large = || GetError::TooLarge {
            what: limit.what,
            limit_name: limit.limit_name,
            limit: limit.max,
        };
        if resp.content_length().is_some_and(|n| n > limit.max) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(transport)? {
            if body.len() as u64 + chunk.len() as u64 > limit.max {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_as_helm_makes_them() {
        assert_eq!(
            normalize_url("https://charts.example.com").unwrap(),
            "https://charts.example.com/"
        );
        assert_eq!(
            normalize_url("https://charts.example.com/a//").unwrap(),
            "https://charts.example.com/a/"
        );
        assert_eq!(
            normalize_url("oci://ghcr.io/org/charts/").unwrap(),
            "oci://ghcr.io/org/charts"
        );
        assert_eq!(
            index_url("http://h:8080/charts/?token=x").unwrap(),
            "http://h:8080/charts/index.yaml?token=x"
        );
        assert_eq!(
            index_url("http://h:8080").unwrap(),
            "http://h:8080/index.yaml"
        );
        let r = |b, x| resolve_reference_url(b, x).unwrap();
        assert_eq!(
            r("http://h:1/charts/", "app-1.0.0.tgz"),
            "http://h:1/charts/app-1.0.0.tgz"
        );
        assert_eq!(
            r("http://h:1/charts", "app-1.0.0.tgz"),
            "http://h:1/charts/app-1.0.0.tgz"
        );
        assert_eq!(r("http://h/a/", "../b/c.tgz"), "http://h/b/c.tgz");
        assert_eq!(r("http://h/a/?q=1", "/abs/c.tgz"), "http://h/abs/c.tgz?q=1");
        assert_eq!(
            r("http://h/a/", "https://o:8443/c.tgz"),
            "https://o:8443/c.tgz"
        );
        assert_eq!(
            redact("https://u:secret@h/charts/"),
            "https://u:***@h/charts/"
        );
        assert_eq!(redact("https://h/charts/"), "https://h/charts/");
    }
}
