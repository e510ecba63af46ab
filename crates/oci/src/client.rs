//! The registry client, on oci-client (reqwest with rustls and aws-lc-rs, the same TLS stack as
//! the rest of the workspace): tag listing, digest resolution (HEAD, GET as fallback),
//! manifests by tag or digest, blob downloads with a size limit and digest check, and the push
//! side (blobs skipped when present, manifests under a tag or digest).

use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use tokio::io::AsyncWrite;

/// The descriptor and manifest types the client's methods take and return (oci-client's), so
/// users need no direct dependency on oci-client.
pub use oci_client::manifest::{OciDescriptor, OciImageIndex, OciImageManifest};

use super::auth::Credentials;
use super::{Repository, Resolved};

/// Upstream's user agent for registry requests (fluxcd/pkg/oci).
pub const USER_AGENT: &str = "flux/v2";

/// Manifest media types asked for when pulling.
const MANIFEST_MEDIA_TYPES: [&str; 4] = [
    oci_client::manifest::OCI_IMAGE_MEDIA_TYPE,
    oci_client::manifest::OCI_IMAGE_INDEX_MEDIA_TYPE,
    oci_client::manifest::IMAGE_MANIFEST_MEDIA_TYPE,
    oci_client::manifest::IMAGE_MANIFEST_LIST_MEDIA_TYPE,
];

/// Page size of tag listings.
const TAGS_PAGE: usize = 1000;
/// At most this many pages of tags are read.
const MAX_TAG_PAGES: usize = 100;

/// A registry operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{0}")]
    Registry(String),
    #[error("layer size {size} exceeds the limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl RegistryError {
    fn from_oci(e: oci_client::errors::OciDistributionError) -> Self {
        Self::Registry(error_chain(&e))
    }
}

/// An error and its causes on one line (reqwest hides the cause, e.g. "Connection refused").
pub fn error_chain(e: &dyn std::error::Error) -> String {
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
    out.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// How to reach a registry.
#[derive(Clone, Default)]
pub struct ClientOptions {
    /// `spec.insecure`: plain HTTP (HTTPS without certificate checks is tried first, as
    /// go-containerregistry does for insecure registries).
    pub insecure: bool,
    /// Extra CA certificates (PEM) trusted besides the system roots.
    pub ca_pem: Option<Vec<u8>>,
    /// Proxy URL, credentials included.
    pub proxy: Option<String>,
    /// Registry credentials; anonymous when absent. An empty user name makes the password a
    /// bearer token.
    pub credentials: Option<Credentials>,
    /// Read and connect timeout of single requests.
    pub timeout: Option<Duration>,
    /// Try plain HTTP when the registry does not answer HTTPS, keeping certificate checks
    /// for HTTPS (what go-containerregistry does for registries on loopback and private
    /// addresses, see [`is_local_registry`]). `insecure` implies it.
    pub allow_http: bool,
    /// A TLS client certificate: the PEM certificate chain followed by the PEM private key.
    /// Pulls then go through the client in `direct.rs` (oci-client has no such option);
    /// pushing with it is refused.
    pub client_identity_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("insecure", &self.insecure)
            .field("ca_pem", &self.ca_pem.is_some())
            .field("proxy", &self.proxy.is_some())
            .field("credentials", &self.credentials)
            .field("allow_http", &self.allow_http)
            .field("client_identity_pem", &self.client_identity_pem.is_some())
            .finish_non_exhaustive()
    }
}

/// A client for one repository.
pub struct Registry {
    client: Client,
    auth: RegistryAuth,
    repo: Repository,
    /// Set with a client certificate: pulls go through it.
    direct: Option<crate::direct::Direct>,
}

impl Registry {
    /// Builds the client; with `insecure`, probes whether the registry speaks HTTPS.
    pub async fn connect(repo: &Repository, opts: &ClientOptions) -> Result<Self, RegistryError> {
        let https_ok = if opts.insecure || opts.allow_http {
            probe_https(&repo.registry, opts).await
        } else {
            true
        };
        let mut config = ClientConfig {
            protocol: if https_ok {
                ClientProtocol::Https
            } else {
                ClientProtocol::Http
            },
            // Upstream skips certificate checks only for `insecure` without a certSecretRef.
            accept_invalid_certificates: opts.insecure && opts.ca_pem.is_none(),
            read_timeout: opts.timeout,
            connect_timeout: opts.timeout,
            user_agent: USER_AGENT,
            https_proxy: opts.proxy.clone(),
            http_proxy: opts.proxy.clone(),
            platform_resolver: None,
            ..ClientConfig::default()
        };
        if let Some(ca) = &opts.ca_pem {
            config.extra_root_certificates.push(Certificate {
                encoding: CertificateEncoding::Pem,
                data: ca.clone(),
            });
        }
        let direct = match &opts.client_identity_pem {
            Some(identity) => Some(crate::direct::Direct::new(
                &repo.registry,
                &repo.path,
                crate::direct::DirectOptions {
                    https: https_ok,
                    accept_invalid_certificates: config.accept_invalid_certificates,
                    ca_pem: opts.ca_pem.as_deref(),
                    identity_pem: identity,
                    proxy: opts.proxy.as_deref(),
                    timeout: opts.timeout,
                    credentials: opts.credentials.clone(),
                },
            )?),
            None => None,
        };
        let client = Client::try_from(config).map_err(RegistryError::from_oci)?;
        let auth = match &opts.credentials {
            // A password without a user name is a registry token (`--creds <token>`).
            Some(c) if c.username.is_empty() => RegistryAuth::Bearer(c.password.clone()),
            Some(c) => RegistryAuth::Basic(c.username.clone(), c.password.clone()),
            None => RegistryAuth::Anonymous,
        };
        Ok(Self {
            client,
            auth,
            repo: repo.clone(),
            direct,
        })
    }

    /// The repository this client talks to.
    pub fn repository(&self) -> &Repository {
        &self.repo
    }

    fn reference(&self, r: &Resolved) -> Reference {
        match r {
            Resolved::Tag(t) => self.tag_ref(t),
            Resolved::Digest(d) => self.digest_ref(d),
        }
    }

    fn tag_ref(&self, tag: &str) -> Reference {
        Reference::with_tag(
            self.repo.registry.clone(),
            self.repo.path.clone(),
            tag.to_string(),
        )
    }

    fn digest_ref(&self, digest: &str) -> Reference {
        Reference::with_digest(
            self.repo.registry.clone(),
            self.repo.path.clone(),
            digest.to_string(),
        )
    }

    /// Every tag of the repository (all pages).
    pub async fn list_tags(&self) -> Result<Vec<String>, RegistryError> {
        if let Some(d) = &self.direct {
            return d.list_tags().await;
        }
        let image = self.tag_ref(super::DEFAULT_TAG);
        let mut tags: Vec<String> = Vec::new();
        let mut last: Option<String> = None;
        for _ in 0..MAX_TAG_PAGES {
            let page = self
                .client
                .list_tags(&image, &self.auth, Some(TAGS_PAGE), last.as_deref())
                .await
                .map_err(RegistryError::from_oci)?;
            let n = page.tags.len();
            let next = page.tags.last().cloned();
            for t in page.tags {
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

    /// The manifest digest a tag points at: HEAD, then GET when the registry gives no
    /// `Docker-Content-Digest`.
    pub async fn tag_digest(&self, tag: &str) -> Result<String, RegistryError> {
        if let Some(d) = &self.direct {
            return d
                .manifest_digest(tag, &MANIFEST_MEDIA_TYPES.join(", "))
                .await;
        }
        self.client
            .fetch_manifest_digest(&self.tag_ref(tag), &self.auth)
            .await
            .map_err(RegistryError::from_oci)
    }

    /// The raw manifest (image or index) with this digest, and its media type.
    pub async fn manifest(&self, digest: &str) -> Result<(Vec<u8>, String), RegistryError> {
        if self.direct.is_some() {
            let (raw, media_type, _) = self
                .pull_manifest(&Resolved::Digest(digest.to_string()))
                .await?;
            return Ok((raw, media_type));
        }
        let (raw, _) = self
            .client
            .pull_manifest_raw(&self.digest_ref(digest), &self.auth, &MANIFEST_MEDIA_TYPES)
            .await
            .map_err(RegistryError::from_oci)?;
        let media_type = manifest_media_type(&raw);
        Ok((raw.to_vec(), media_type))
    }

    /// The raw manifest a tag points at.
    pub async fn tag_manifest(&self, tag: &str) -> Result<Vec<u8>, RegistryError> {
        if let Some(d) = &self.direct {
            return Ok(d.manifest(tag, &MANIFEST_MEDIA_TYPES.join(", ")).await?.0);
        }
        let (raw, _) = self
            .client
            .pull_manifest_raw(&self.tag_ref(tag), &self.auth, &MANIFEST_MEDIA_TYPES)
            .await
            .map_err(RegistryError::from_oci)?;
        Ok(raw.to_vec())
    }

    /// A small blob in memory (at most `limit` bytes), digest checked.
    pub async fn blob_bytes(
        &self,
        desc: &OciDescriptor,
        limit: u64,
    ) -> Result<Vec<u8>, RegistryError> {
        if desc.size > 0 && desc.size as u64 > limit {
            return Err(RegistryError::TooLarge {
                size: desc.size as u64,
                limit,
            });
        }
        if let Some(d) = &self.direct {
            let mut out = Vec::new();
            d.blob(&desc.digest, &mut out, Some(limit)).await?;
            return Ok(out);
        }
        let mut out = Limited {
            inner: Vec::new(),
            written: 0,
            limit: Some(limit),
        };
        self.client
            .pull_blob(&self.digest_ref(&desc.digest), desc, &mut out)
            .await
            .map_err(RegistryError::from_oci)?;
        Ok(out.inner)
    }

    /// Downloads a blob into `dest` (created), refusing more than `limit` bytes; the digest
    /// is checked against the descriptor. Returns the size.
    pub async fn blob_to_file(
        &self,
        desc: &OciDescriptor,
        dest: &Path,
        limit: Option<u64>,
    ) -> Result<u64, RegistryError> {
        if let Some(e) = too_large(desc, limit) {
            return Err(e);
        }
        // Buffered: every write to a tokio File is a hop to the blocking pool, and the
        // response arrives in chunks of a few KiB.
        let file =
            tokio::io::BufWriter::with_capacity(1 << 20, tokio::fs::File::create(dest).await?);
        self.blob_to_writer(desc, file, limit).await
    }

    /// Streams a blob into `out` as it arrives (flushed at the end), refusing more than
    /// `limit` bytes; the digest is checked against the descriptor once all is read, so a
    /// reader of `out` must hold its conclusions until this returns `Ok`. Returns the size.
    pub async fn blob_to_writer<W: AsyncWrite + Unpin>(
        &self,
        desc: &OciDescriptor,
        out: W,
        limit: Option<u64>,
    ) -> Result<u64, RegistryError> {
        if let Some(e) = too_large(desc, limit) {
            return Err(e);
        }
        if let Some(d) = &self.direct {
            let mut out = out;
            return d.blob(&desc.digest, &mut out, limit).await;
        }
        let mut out = Limited {
            inner: out,
            written: 0,
            limit,
        };
        let res = self
            .client
            .pull_blob(&self.digest_ref(&desc.digest), desc, &mut out)
            .await;
        if res.is_ok() {
            use tokio::io::AsyncWriteExt as _;
            out.inner.flush().await?;
        }
        if let Some(limit) = limit
            && out.written > limit
        {
            return Err(RegistryError::TooLarge {
                size: out.written,
                limit,
            });
        }
        res.map_err(RegistryError::from_oci)?;
        Ok(out.written)
    }
}

/// A descriptor announcing more than `limit` bytes.
fn too_large(desc: &OciDescriptor, limit: Option<u64>) -> Option<RegistryError> {
    let limit = limit?;
    (desc.size > 0 && desc.size as u64 > limit).then_some(RegistryError::TooLarge {
        size: desc.size as u64,
        limit,
    })
}

impl Registry {
    /// The raw manifest a tag or digest points at, its media type and its digest (the
    /// registry's `Docker-Content-Digest`, else the digest of the bytes).
    pub async fn pull_manifest(
        &self,
        reference: &Resolved,
    ) -> Result<(Vec<u8>, String, String), RegistryError> {
        let (raw, digest) = match &self.direct {
            Some(d) => {
                let name = match reference {
                    Resolved::Tag(t) | Resolved::Digest(t) => t,
                };
                d.manifest(name, &MANIFEST_MEDIA_TYPES.join(", ")).await?
            }
            None => {
                let (raw, digest) = self
                    .client
                    .pull_manifest_raw(
                        &self.reference(reference),
                        &self.auth,
                        &MANIFEST_MEDIA_TYPES,
                    )
                    .await
                    .map_err(RegistryError::from_oci)?;
                (raw.to_vec(), digest)
            }
        };
        let computed = crate::build::sha256_digest(&raw);
        if let Resolved::Digest(want) = reference
            && *want != computed
        {
            return Err(RegistryError::Registry(format!(
                "manifest digest mismatch: asked for {want}, got {computed}"
            )));
        }
        let media_type = manifest_media_type(&raw);
        let digest = if digest.is_empty() { computed } else { digest };
        Ok((raw.to_vec(), media_type, digest))
    }

    /// Authenticates for pushing (a bearer token with pull and push scope, or basic
    /// credentials); call once before the push methods.
    pub async fn authorize_push(&self) -> Result<(), RegistryError> {
        if self.direct.is_some() {
            return Err(RegistryError::Registry(
                "pushing with a client certificate is not supported".to_string(),
            ));
        }
        self.client
            .auth(
                &self.tag_ref(super::DEFAULT_TAG),
                &self.auth,
                RegistryOperation::Push,
            )
            .await
            .map_err(RegistryError::from_oci)?;
        Ok(())
    }

    /// Whether the repository has a blob.
    pub async fn blob_exists(&self, digest: &str) -> Result<bool, RegistryError> {
        self.client
            .store_auth_if_needed(&self.repo.registry, &self.auth)
            .await;
        self.client
            .blob_exists(&self.digest_ref(digest), digest)
            .await
            .map_err(RegistryError::from_oci)
    }

    /// Uploads a blob unless the repository has it already (as go-containerregistry does).
    /// Returns whether it was uploaded.
    pub async fn push_blob(&self, data: bytes::Bytes, digest: &str) -> Result<bool, RegistryError> {
        if self.blob_exists(digest).await? {
            return Ok(false);
        }
        self.client
            .push_blob(&self.tag_ref(super::DEFAULT_TAG), data, digest)
            .await
            .map_err(RegistryError::from_oci)?;
        Ok(true)
    }

    /// Puts a raw manifest under a tag (or its digest); returns the manifest's digest.
    pub async fn push_manifest(
        &self,
        reference: &Resolved,
        raw: Vec<u8>,
        media_type: &str,
    ) -> Result<String, RegistryError> {
        let digest = crate::build::sha256_digest(&raw);
        let content_type = media_type.parse().map_err(|_| {
            RegistryError::Registry(format!("invalid manifest media type '{media_type}'"))
        })?;
        self.client
            .push_manifest_raw(&self.reference(reference), raw, content_type)
            .await
            .map_err(RegistryError::from_oci)?;
        Ok(digest)
    }
}

/// Whether go-containerregistry talks plain HTTP to a registry without being told to: a
/// `localhost` host, a loopback address (`127.*`, `::1`) or a private (RFC 1918) IPv4
/// address, with or without a port.
pub fn is_local_registry(registry: &str) -> bool {
    let host = match registry.rsplit_once(':') {
        Some((h, port)) if !h.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => registry,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host == "localhost" {
        return true;
    }
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => ip.is_loopback() || ip.is_private(),
        Ok(std::net::IpAddr::V6(ip)) => ip.is_loopback(),
        Err(_) => false,
    }
}

/// The media type of a raw manifest: its `mediaType`, or by shape (`manifests` = index).
pub fn manifest_media_type(raw: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        #[serde(default)]
        media_type: Option<String>,
        #[serde(default)]
        manifests: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Probe>(raw) {
        Ok(Probe {
            media_type: Some(m),
            ..
        }) if !m.is_empty() => m,
        Ok(Probe {
            manifests: Some(_), ..
        }) => oci_client::manifest::OCI_IMAGE_INDEX_MEDIA_TYPE.to_string(),
        _ => oci_client::manifest::OCI_IMAGE_MEDIA_TYPE.to_string(),
    }
}

/// Whether an insecure registry answers HTTPS (any HTTP status counts; certificates are not
/// checked); a transport failure means plain HTTP.
async fn probe_https(registry: &str, opts: &ClientOptions) -> bool {
    let mut b = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .timeout(
            opts.timeout
                .unwrap_or(Duration::from_secs(10))
                .min(Duration::from_secs(10)),
        )
        .user_agent(USER_AGENT);
    if let Some(p) = &opts.proxy {
        match reqwest::Proxy::all(p) {
            Ok(p) => b = b.proxy(p),
            Err(_) => return false,
        }
    }
    let Ok(client) = b.build() else {
        return false;
    };
    client
        .get(format!("https://{registry}/v2/"))
        .send()
        .await
        .is_ok()
}

/// A writer that fails once more than `limit` bytes were written.
struct Limited<W> {
    inner: W,
    written: u64,
    limit: Option<u64>,
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Limited<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if let Some(limit) = self.limit
            && self.written + buf.len() as u64 > limit
        {
            self.written += buf.len() as u64;
            return Poll::Ready(Err(std::io::Error::other(format!(
                "layer exceeds the limit of {limit} bytes"
            ))));
        }
        let res = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &res {
            self.written += *n as u64;
        }
        res
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_type_of_manifests() {
        assert_eq!(
            manifest_media_type(br#"{"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#),
            "application/vnd.oci.image.manifest.v1+json"
        );
        assert_eq!(
            manifest_media_type(br#"{"schemaVersion":2,"manifests":[]}"#),
            "application/vnd.oci.image.index.v1+json"
        );
    }

    #[test]
    fn local_registries_as_go_containerregistry_reads_them() {
        for r in [
            "localhost:5000",
            "localhost",
            "127.0.0.1:5000",
            "10.1.2.3",
            "192.168.0.1:443",
            "172.16.0.9",
            "[::1]:5000",
        ] {
            assert!(is_local_registry(r), "{r}");
        }
        for r in [
            "ghcr.io",
            "8.8.8.8:5000",
            "172.32.0.1",
            "registry.local.example.com",
        ] {
            assert!(!is_local_registry(r), "{r}");
        }
    }

    #[tokio::test]
    async fn limited_writer_refuses_more_than_the_limit() {
        use tokio::io::AsyncWriteExt;
        let mut w = Limited {
            inner: Vec::new(),
            written: 0,
            limit: Some(4),
        };
        w.write_all(b"abcd").await.unwrap();
        assert!(w.write_all(b"e").await.is_err());
        assert_eq!(w.inner, b"abcd");
    }
}
