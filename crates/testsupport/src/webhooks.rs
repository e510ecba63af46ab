//! What tests of webhook receivers need to make valid (and invalid) requests as the real
//! senders do (feature `webhooks`): HMAC signatures, GitHub's documented signature test vector,
//! a test OIDC issuer (discovery document and JWKS served on 127.0.0.1, ES256 and RS256 tokens),
//! and CDEvents.

use aws_lc_rs::signature::{self, KeyPair};
use base64::Engine;
use serde_json::{Value, json};

/// GitHub's documented webhook test vector: secret, payload, and the `X-Hub-Signature-256`.
pub const GITHUB_SECRET: &str = "It's a Secret to Everybody";
pub const GITHUB_PAYLOAD: &str = "Hello, World!";
pub const GITHUB_SIGNATURE: &str =
    "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

/// The HMAC algorithms webhook senders use.
#[derive(Clone, Copy, Debug)]
pub enum Hmac {
    Sha1,
    Sha256,
    Sha512,
}

/// Hex HMAC of `body` keyed with `key`.
pub fn hmac_hex(alg: Hmac, key: &str, body: &[u8]) -> String {
    let alg = match alg {
        Hmac::Sha1 => aws_lc_rs::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        Hmac::Sha256 => aws_lc_rs::hmac::HMAC_SHA256,
        Hmac::Sha512 => aws_lc_rs::hmac::HMAC_SHA512,
    };
    let key = aws_lc_rs::hmac::Key::new(alg, key.as_bytes());
    hex::encode(aws_lc_rs::hmac::sign(&key, body).as_ref())
}

/// Base64url without padding (JWT segments).
pub fn b64url(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// `(n, e)` of a PKCS#1 RSAPublicKey (DER SEQUENCE of two INTEGERs).
fn rsa_components(der: &[u8]) -> (Vec<u8>, Vec<u8>) {
    fn read(der: &[u8], i: &mut usize) -> Vec<u8> {
        let mut len = der[*i + 1] as usize;
        *i += 2;
        if len & 0x80 != 0 {
            let n = len & 0x7f;
            len = 0;
            for _ in 0..n {
                len = (len << 8) | der[*i] as usize;
                *i += 1;
            }
        }
        let v = der[*i..*i + len].to_vec();
        *i += len;
        v
    }
    let mut i = 0;
    let seq = read(der, &mut i);
    let mut j = 0;
    let mut n = read(&seq, &mut j);
    let e = read(&seq, &mut j);
    while n.first() == Some(&0) {
        n.remove(0);
    }
    (n, e)
}

/// Signing keys of a test issuer: one ES256 (`kid` `ec-1`) and one RS256 (`kid` `rsa-1`) key.
pub struct Keys {
    ec: signature::EcdsaKeyPair,
    rsa: aws_lc_rs::rsa::KeyPair,
}

impl Default for Keys {
    fn default() -> Self {
        Self::new()
    }
}

impl Keys {
    /// Fresh keys.
    pub fn new() -> Self {
        Self {
            ec: signature::EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)
                .expect("EC key"),
            rsa: aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                .expect("RSA key"),
        }
    }

    /// The JWKS of both public keys.
    pub fn jwks(&self) -> Value {
        let point = self.ec.public_key().as_ref();
        let (n, e) = rsa_components(self.rsa.public_key().as_ref());
        json!({"keys": [
            {"kty": "EC", "crv": "P-256", "kid": "ec-1", "use": "sig", "alg": "ES256",
             "x": b64url(&point[1..33]), "y": b64url(&point[33..65])},
            {"kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256",
             "n": b64url(&n), "e": b64url(&e)}
        ]})
    }

    /// An ES256 JWT of `claims`.
    pub fn es256(&self, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64url(
                json!({"alg": "ES256", "kid": "ec-1", "typ": "JWT"})
                    .to_string()
                    .as_bytes()
            ),
            b64url(claims.to_string().as_bytes())
        );
        let sig = self
            .ec
            .sign(&aws_lc_rs::rand::SystemRandom::new(), input.as_bytes())
            .expect("ES256 signature");
        format!("{input}.{}", b64url(sig.as_ref()))
    }

    /// An RS256 JWT of `claims`.
    pub fn rs256(&self, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64url(
                json!({"alg": "RS256", "kid": "rsa-1", "typ": "JWT"})
                    .to_string()
                    .as_bytes()
            ),
            b64url(claims.to_string().as_bytes())
        );
        let mut sig = vec![0u8; self.rsa.public_modulus_len()];
        self.rsa
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .expect("RS256 signature");
        format!("{input}.{}", b64url(&sig))
    }
}

/// Serves a test OIDC issuer on 127.0.0.1: `/.well-known/openid-configuration` (issuer = the
/// returned base URL, `jwks_uri` = `<base>/keys`) and `/keys` (`jwks`). Returns the base URL.
pub async fn serve_issuer(jwks: Value) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("issuer listens");
    let base = format!("http://{}", listener.local_addr().expect("local address"));
    let b = base.clone();
    let app = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            axum::routing::get(move || {
                let b = b.clone();
                async move {
                    axum::Json(json!({"issuer": b, "jwks_uri": format!("{b}/keys"),
                        "id_token_signing_alg_values_supported": ["ES256", "RS256"]}))
                }
            }),
        )
        .route(
            "/keys",
            axum::routing::get(move || {
                let jwks = jwks.clone();
                async move { axum::Json(jwks) }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

/// A CDEvent (spec v0.4) of type `ty` about a change.
pub fn cdevent(ty: &str) -> Value {
    json!({
        "context": {"version": "0.4.1", "id": "271069a8-fc18-44f1-b38f-9d70a1695819",
                    "source": "/event/source/123", "type": ty,
                    "timestamp": "2026-12-07T21:00:00Z"},
        "subject": {"id": "mySubject123", "source": "/event/source/123", "type": "change",
                    "content": {"repository": {"id": "cdevents/service1",
                                                "source": "https://example.org"}}}
    })
}

/// The headers of a CloudEvent in binary mode carrying a CDEvent of type `ty`.
pub fn cloudevent_headers(ty: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Content-Type", "application/json".to_string()),
        ("Ce-Specversion", "1.0".to_string()),
        ("Ce-Id", "271069a8-fc18-44f1-b38f-9d70a1695819".to_string()),
        ("Ce-Source", "/event/source/123".to_string()),
        ("Ce-Type", ty.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_test_vector() {
        assert_eq!(
            format!(
                "sha256={}",
                hmac_hex(Hmac::Sha256, GITHUB_SECRET, GITHUB_PAYLOAD.as_bytes())
            ),
            GITHUB_SIGNATURE
        );
    }
}
