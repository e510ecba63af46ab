//! Google Cloud Storage for Buckets of provider `gcp`, over the JSON API that upstream's Go
//! client uses (so that etags — and revisions — are the ones upstream computes): the bucket's
//! metadata for its existence, paged object listings, object metadata and media downloads.
//! Credentials: a service-account key (`serviceaccount` in the secret) exchanged for a
//! read-only OAuth2 token (a JWT signed RS256 with aws-lc-rs); with `STORAGE_EMULATOR_HOST`
//! set, requests go to that host unauthenticated, as Go's storage client does.
//!
//! object_store's GCS client is not used: it lists through the XML API, which the emulator the
//! tests use (`gcp-storage-emulator`) does not serve, and whose etags differ from the JSON API's.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

/// The public endpoint.
pub const DEFAULT_BASE: &str = "https://storage.googleapis.com";
const SCOPE: &str = "https://www.googleapis.com/auth/devstorage.read_only";
const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

/// A service-account key (the JSON file GCP issues).
#[derive(serde::Deserialize)]
struct ServiceAccount {
    client_email: String,
    private_key: String,
    #[serde(default)]
    token_uri: Option<String>,
}

/// A client for one bucket.
pub struct Gcs {
    http: reqwest::Client,
    base: String,
    bucket: String,
    token: Option<String>,
}

/// The JSON API's path-segment encoding of object names (everything but unreserved bytes).
fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn b64url(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

/// The signed JWT-bearer assertion for a service account.
fn assertion(sa: &ServiceAccount, now: i64) -> Result<String, String> {
    let der: Vec<u8> = {
        let body: String = sa
            .private_key
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        base64::engine::general_purpose::STANDARD
            .decode(body.trim())
            .map_err(|e| format!("invalid private_key in service account: {e}"))?
    };
    let key = aws_lc_rs::signature::RsaKeyPair::from_pkcs8(&der)
        .map_err(|e| format!("invalid private_key in service account: {e}"))?;
    let header = b64url(br#"{"alg":"RS256","typ":"JWT"}"#);
    let claims = serde_json::json!({
        "iss": sa.client_email,
        "scope": SCOPE,
        "aud": sa.token_uri.as_deref().unwrap_or(DEFAULT_TOKEN_URI),
        "iat": now,
        "exp": now + 3600,
    });
    let signing_input = format!("{header}.{}", b64url(claims.to_string().as_bytes()));
    let mut sig = vec![0u8; key.public_modulus_len()];
    key.sign(
        &aws_lc_rs::signature::RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        signing_input.as_bytes(),
        &mut sig,
    )
    .map_err(|e| format!("failed to sign the service account assertion: {e}"))?;
    Ok(format!("{signing_input}.{}", b64url(&sig)))
}

fn send_error(e: reqwest::Error) -> String {
    ferroflux_oci::client::error_chain(&e)
}

async fn status_error(r: reqwest::Response) -> String {
    let status = r.status();
    let body = r.text().await.unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| body.lines().next().unwrap_or_default().to_string());
    format!("googleapi: Error {}: {message}", status.as_u16())
}

impl Gcs {
    /// A client: against `emulator_host` unauthenticated when given, else against Google with
    /// the service-account key (its token fetched now).
    pub async fn connect(
        http: reqwest::Client,
        bucket: &str,
        emulator_host: Option<&str>,
        service_account: Option<&[u8]>,
    ) -> Result<Self, String> {
        if let Some(host) = emulator_host {
            let base = if host.contains("://") {
                host.trim_end_matches('/').to_string()
            } else {
                format!("http://{}", host.trim_end_matches('/'))
            };
            return Ok(Self {
                http,
                base,
                bucket: bucket.to_string(),
                token: None,
            });
        }
        let Some(sa) = service_account else {
            return Err(
                "failed to get credential from 'gcp': workload identity is not supported by this source-controller"
                    .to_string(),
            );
        };
        let sa: ServiceAccount =
            serde_json::from_slice(sa).map_err(|e| format!("invalid service account JSON: {e}"))?;
        let now = jiff::Timestamp::now().as_second();
        let jwt = assertion(&sa, now)?;
        let r = http
            .post(sa.token_uri.as_deref().unwrap_or(DEFAULT_TOKEN_URI))
            .header("content-type", "application/x-www-form-urlencoded")
            // The assertion is base64url and dots: nothing to escape.
            .body(format!(
                "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={jwt}"
            ))
            .send()
            .await
            .map_err(send_error)?;
        if !r.status().is_success() {
            return Err(format!(
                "failed to get a token for '{}': {}",
                sa.client_email,
                status_error(r).await
            ));
        }
        let v: serde_json::Value = r.json().await.map_err(send_error)?;
        let token = v["access_token"]
            .as_str()
            .ok_or("token response without access_token")?
            .to_string();
        Ok(Self {
            http,
            base: DEFAULT_BASE.to_string(),
            bucket: bucket.to_string(),
            token: Some(token),
        })
    }

    fn get(&self, url: String) -> reqwest::RequestBuilder {
        let r = self.http.get(url);
        match &self.token {
            Some(t) => r.bearer_auth(t),
            None => r,
        }
    }

    /// Whether the bucket exists.
    pub async fn exists(&self) -> Result<bool, String> {
        let r = self
            .get(format!(
                "{}/storage/v1/b/{}",
                self.base,
                encode(&self.bucket)
            ))
            .send()
            .await
            .map_err(send_error)?;
        match r.status().as_u16() {
            200..=299 => Ok(true),
            404 => Ok(false),
            _ => Err(status_error(r).await),
        }
    }

    /// Every object under `prefix` with its etag (all pages).
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, String)>, String> {
        let mut out = Vec::new();
        let mut page: Option<String> = None;
        loop {
            let mut req = self
                .get(format!(
                    "{}/storage/v1/b/{}/o",
                    self.base,
                    encode(&self.bucket)
                ))
                .query(&[
                    ("prefix", prefix),
                    ("fields", "items(name,etag),nextPageToken"),
                ]);
            if let Some(p) = &page {
                req = req.query(&[("pageToken", p.as_str())]);
            }
            let r = req.send().await.map_err(send_error)?;
            if !r.status().is_success() {
                return Err(status_error(r).await);
            }
            let v: serde_json::Value = r.json().await.map_err(send_error)?;
            for item in v["items"].as_array().into_iter().flatten() {
                if let Some(name) = item["name"].as_str() {
                    let etag = item["etag"].as_str().unwrap_or_default();
                    out.push((name.to_string(), etag.to_string()));
                }
            }
            match v["nextPageToken"].as_str() {
                Some(t) if !t.is_empty() && page.as_deref() != Some(t) => page = Some(t.into()),
                _ => return Ok(out),
            }
        }
    }

    /// Downloads `name` into `dest`; `Ok(None)` when it does not exist; else its etag.
    pub async fn fetch(&self, name: &str, dest: &Path) -> Result<Option<String>, String> {
        let object = format!(
            "{}/storage/v1/b/{}/o/{}",
            self.base,
            encode(&self.bucket),
            encode(name)
        );
        let r = self.get(object).send().await.map_err(send_error)?;
        if r.status().as_u16() == 404 {
            return Ok(None);
        }
        if !r.status().is_success() {
            return Err(status_error(r).await);
        }
        let v: serde_json::Value = r.json().await.map_err(send_error)?;
        let etag = v["etag"].as_str().unwrap_or_default().to_string();
        let media = format!(
            "{}/download/storage/v1/b/{}/o/{}?alt=media",
            self.base,
            encode(&self.bucket),
            encode(name)
        );
        let r = self.get(media).send().await.map_err(send_error)?;
        if r.status().as_u16() == 404 {
            return Ok(None);
        }
        if !r.status().is_success() {
            return Err(status_error(r).await);
        }
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| e.to_string())?;
        }
        let mut file = tokio::fs::File::create(dest)
            .await
            .map_err(|e| e.to_string())?;
        let mut body = r.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(send_error)?;
            file.write_all(&chunk).await.map_err(|e| e.to_string())?;
        }
        file.flush().await.map_err(|e| e.to_string())?;
        Ok(Some(etag))
    }
}

/// The HTTP client for GCS: the Bucket's timeout, proxy and CA.
pub fn http_client(
    timeout: Duration,
    proxy: Option<&str>,
    ca: Option<&[u8]>,
) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder()
        .timeout(timeout)
        .user_agent("flux/v2");
    if let Some(p) = proxy {
        b = b.proxy(reqwest::Proxy::all(p).map_err(send_error)?);
    }
    if let Some(ca) = ca {
        let certs = reqwest::Certificate::from_pem_bundle(ca)
            .map_err(|e| format!("failed to parse CA certificate: {e}"))?;
        b = b.tls_certs_merge(certs);
    }
    b.build().map_err(send_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_encoded_as_one_segment() {
        assert_eq!(encode("deploy/a b.yaml"), "deploy%2Fa%20b.yaml");
        assert_eq!(encode("x-y_z.~"), "x-y_z.~");
    }

    #[test]
    fn assertions_are_rs256_jwts_over_the_claims() {
        use aws_lc_rs::signature::KeyPair as _;
        let out = std::process::Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
            ])
            .output()
            .expect("openssl runs");
        let pem = String::from_utf8(out.stdout).unwrap();
        let sa = ServiceAccount {
            client_email: "sa@p.iam.gserviceaccount.com".into(),
            private_key: pem.clone(),
            token_uri: None,
        };
        let jwt = assertion(&sa, 1_700_000_000).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let dec = |s: &str| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(s)
                .unwrap()
        };
        let claims: serde_json::Value = serde_json::from_slice(&dec(parts[1])).unwrap();
        assert_eq!(claims["iss"], "sa@p.iam.gserviceaccount.com");
        assert_eq!(claims["aud"], DEFAULT_TOKEN_URI);
        assert_eq!(claims["scope"], SCOPE);
        assert_eq!(claims["exp"], 1_700_003_600);
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        let kp = aws_lc_rs::signature::RsaKeyPair::from_pkcs8(&der).unwrap();
        let public = aws_lc_rs::signature::UnparsedPublicKey::new(
            &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
            kp.public_key().as_ref(),
        );
        public
            .verify(
                format!("{}.{}", parts[0], parts[1]).as_bytes(),
                &dec(parts[2]),
            )
            .unwrap();
    }
}
