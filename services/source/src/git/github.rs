//! `spec.provider: github`: GitHub App credentials from the Secret (`githubAppID`,
//! `githubAppInstallationID`, `githubAppPrivateKey`, optional `githubAppBaseURL`) exchanged for
//! an installation access token, as upstream does: a JWT signed with the app key (RS256, issued
//! 30 s in the past, valid 10 minutes, issuer = app ID) is sent to
//! `POST <base>/app/installations/<id>/access_tokens`; Git then authenticates as
//! `x-access-token` with the returned token.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;

use super::auth::ProxyOptions;

pub const KEY_APP_ID: &str = "githubAppID";
pub const KEY_INSTALLATION_ID: &str = "githubAppInstallationID";
pub const KEY_PRIVATE_KEY: &str = "githubAppPrivateKey";
pub const KEY_BASE_URL: &str = "githubAppBaseURL";
/// The Git user name that goes with an installation token.
pub const ACCESS_TOKEN_USERNAME: &str = "x-access-token";
const DEFAULT_BASE_URL: &str = "https://api.github.com";

/// The GitHub App settings read from a Secret.
#[derive(Clone)]
pub struct AppData {
    app_id: String,
    installation_id: String,
    private_key: Vec<u8>,
    base_url: String,
    ca: Option<Vec<u8>>,
}

impl AppData {
    /// Whether the Secret carries GitHub App data (an app ID), as upstream decides.
    pub fn present(data: &BTreeMap<String, Vec<u8>>) -> bool {
        data.get(KEY_APP_ID).is_some_and(|v| !v.is_empty())
    }

    /// Reads and checks the App settings; messages follow upstream's.
    pub fn from_secret(data: &BTreeMap<String, Vec<u8>>) -> Result<Self, String> {
        let text = |k: &str| {
            data.get(k)
                .map(|v| String::from_utf8_lossy(v).trim().to_string())
                .unwrap_or_default()
        };
        let app_id = text(KEY_APP_ID);
        if app_id.is_empty() {
            return Err("app ID must be provided to use github app authentication".into());
        }
        app_id
            .parse::<i64>()
            .map_err(|e| format!("invalid app id, err: {e}"))?;
        let installation_id = text(KEY_INSTALLATION_ID);
        if installation_id.is_empty() {
            return Err(
                "app installation ID must be provided to use github app authentication".into(),
            );
        }
        installation_id
            .parse::<i64>()
            .map_err(|e| format!("invalid app installation id, err: {e}"))?;
        let private_key = data.get(KEY_PRIVATE_KEY).cloned().unwrap_or_default();
        if private_key.is_empty() {
            return Err("private key must be provided to use github app authentication".into());
        }
        let base_url = match text(KEY_BASE_URL) {
            b if b.is_empty() => DEFAULT_BASE_URL.to_string(),
            b => b.trim_end_matches('/').to_string(),
        };
        let ca = data
            .get("ca.crt")
            .or_else(|| data.get("caFile"))
            .filter(|v| !v.is_empty())
            .cloned();
        Ok(Self {
            app_id,
            installation_id,
            private_key,
            base_url,
            ca,
        })
    }

    /// Asks the GitHub API for an installation token.
    pub async fn installation_token(
        &self,
        proxy: Option<&ProxyOptions>,
        timeout: Duration,
    ) -> Result<String, String> {
        let jwt = self.jwt(jiff::Timestamp::now().as_second())?;
        let mut builder = reqwest::Client::builder().timeout(timeout);
        if let Some(ca) = &self.ca {
            for cert in reqwest::Certificate::from_pem_bundle(ca)
                .map_err(|e| format!("invalid CA certificate: {e}"))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let Some(p) = proxy {
            let mut px =
                reqwest::Proxy::all(&p.address).map_err(|e| format!("invalid proxy: {e}"))?;
            if let (Some(u), Some(pw)) = (&p.username, &p.password) {
                px = px.basic_auth(u, pw);
            }
            builder = builder.proxy(px);
        }
        let client = builder.build().map_err(|e| e.to_string())?;
        let url = format!(
            "{}/app/installations/{}/access_tokens",
            self.base_url, self.installation_id
        );
        let resp = client
            .post(&url)
            .header(reqwest::header::ACCEPT, "application/vnd.github.v3+json")
            .header(reqwest::header::USER_AGENT, "ferroflux-source-controller")
            .bearer_auth(jwt)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "could not refresh installation id {}'s token: {e}",
                    self.installation_id
                )
            })?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!(
                "could not refresh installation id {}'s token: received non 2xx response status \"{status}\" when fetching {url}",
                self.installation_id
            ));
        }
        #[derive(serde::Deserialize)]
        struct Token {
            token: String,
        }
        let body: Token = resp.json().await.map_err(|e| {
            format!(
                "could not refresh installation id {}'s token: {e}",
                self.installation_id
            )
        })?;
        Ok(body.token)
    }

    /// The app's JWT at `now` (Unix seconds).
    fn jwt(&self, now: i64) -> Result<String, String> {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = b64.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = serde_json::json!({
            "iat": now - 30,
            "exp": now + 600,
            "iss": self.app_id,
        });
        let claims = b64.encode(claims.to_string());
        let signing_input = format!("{header}.{claims}");
        let key = rsa_key(&self.private_key)?;
        let mut sig = vec![0; key.public_modulus_len()];
        key.sign(
            &aws_lc_rs::signature::RSA_PKCS1_SHA256,
            &aws_lc_rs::rand::SystemRandom::new(),
            signing_input.as_bytes(),
            &mut sig,
        )
        .map_err(|_| "could not sign JWT with the GitHub App private key".to_string())?;
        Ok(format!("{signing_input}.{}", b64.encode(sig)))
    }
}

/// An RSA key from PEM: PKCS#1 (`RSA PRIVATE KEY`, what GitHub hands out) or PKCS#8.
fn rsa_key(pem: &[u8]) -> Result<aws_lc_rs::signature::RsaKeyPair, String> {
    let text = String::from_utf8_lossy(pem);
    let bad = || {
        "could not parse private key: invalid key: Key must be a PEM encoded PKCS1 or PKCS8 key"
            .to_string()
    };
    let (label, body) = pem_block(&text).ok_or_else(bad)?;
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|_| bad())?;
    match label.as_str() {
        "RSA PRIVATE KEY" => aws_lc_rs::signature::RsaKeyPair::from_der(&der),
        "PRIVATE KEY" => aws_lc_rs::signature::RsaKeyPair::from_pkcs8(&der),
        _ => return Err(bad()),
    }
    .map_err(|_| bad())
}

/// The label and base64 body of the first PEM block.
fn pem_block(text: &str) -> Option<(String, String)> {
    let start = text.find("-----BEGIN ")?;
    let rest = &text[start + 11..];
    let label_end = rest.find("-----")?;
    let label = rest[..label_end].to_string();
    let body_start = label_end + 5;
    let end = rest.find(&format!("-----END {label}-----"))?;
    let body: String = rest[body_start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    Some((label, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn app_data_is_validated_with_upstream_messages() {
        let e = |pairs: &[(&str, &str)]| AppData::from_secret(&secret(pairs)).err().unwrap();
        assert_eq!(
            e(&[]),
            "app ID must be provided to use github app authentication"
        );
        assert!(e(&[(KEY_APP_ID, "x")]).starts_with("invalid app id, err: "));
        assert_eq!(
            e(&[(KEY_APP_ID, "1")]),
            "app installation ID must be provided to use github app authentication"
        );
        assert_eq!(
            e(&[(KEY_APP_ID, "1"), (KEY_INSTALLATION_ID, "2")]),
            "private key must be provided to use github app authentication"
        );
        assert!(AppData::present(&secret(&[(KEY_APP_ID, "1")])));
        assert!(!AppData::present(&secret(&[("username", "u")])));
    }
}
