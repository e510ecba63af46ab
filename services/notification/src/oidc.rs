//! OIDC ID token verification for the `generic-oidc` and `gcr` Receivers, as upstream does it
//! with go-oidc (generic-oidc) and Google's idtoken package (gcr):
//!
//! - discovery: `GET <issuer>/.well-known/openid-configuration`, whose `issuer` must be the
//!   configured one; its `jwks_uri` gives the keys and `id_token_signing_alg_values_supported`
//!   the accepted algorithms (RS256 when it lists none);
//! - claims: `iss` = the issuer, `aud` (string or list) holding the expected audience, `exp` in
//!   the future, `nbf` (if any) at most 5 minutes ahead;
//! - signature: RS256/384/512, PS256/384/512 or ES256/384 with the JWKS key named by `kid`
//!   (every key when the token names none).

use base64::Engine;
use serde_json::Value;

/// A JWT split into its parts (nothing verified yet).
pub struct Jwt {
    pub header: Value,
    pub claims: Value,
    signing_input: Vec<u8>,
    signature: Vec<u8>,
}

fn b64(part: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|e| format!("malformed jwt: {e}"))
}

/// Splits and decodes a compact JWS.
pub fn decode(raw: &str) -> Result<Jwt, String> {
    let parts: Vec<&str> = raw.split('.').collect();
    if parts.len() != 3 {
        return Err("token is not a JWT".into());
    }
    let header: Value = serde_json::from_slice(&b64(parts[0])?)
        .map_err(|e| format!("malformed jwt header: {e}"))?;
    let claims: Value = serde_json::from_slice(&b64(parts[1])?)
        .map_err(|e| format!("failed to parse token payload: {e}"))?;
    Ok(Jwt {
        header,
        claims,
        signing_input: format!("{}.{}", parts[0], parts[1]).into_bytes(),
        signature: b64(parts[2])?,
    })
}

/// The `iss` claim, unverified (only used to pick the configured provider).
pub fn unverified_issuer(raw: &str) -> Result<String, String> {
    let jwt = decode(raw)?;
    match jwt.claims["iss"].as_str() {
        Some(i) if !i.is_empty() => Ok(i.to_string()),
        _ => Err("token is missing the 'iss' claim".into()),
    }
}

/// What discovery tells.
pub struct Discovery {
    pub jwks_uri: String,
    pub algorithms: Vec<String>,
}

async fn get_json(http: &reqwest::Client, url: &str) -> Result<Value, String> {
    let resp = http.get(url).send().await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!(
            "{} {}",
            status.as_u16(),
            String::from_utf8_lossy(&body)
        ));
    }
    serde_json::from_slice(&body).map_err(|e| format!("failed to decode response: {e}"))
}

/// go-oidc's NewProvider: the discovery document of `issuer`.
pub async fn discover(http: &reqwest::Client, issuer: &str) -> Result<Discovery, String> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let doc = get_json(http, &url).await?;
    let got = doc["issuer"].as_str().unwrap_or_default();
    if got != issuer {
        return Err(format!(
            "oidc: issuer did not match the issuer returned by provider, expected {issuer:?} got {got:?}"
        ));
    }
    let jwks_uri = doc["jwks_uri"]
        .as_str()
        .filter(|u| !u.is_empty())
        .ok_or("oidc: discovery document has no jwks_uri")?
        .to_string();
    let algorithms = doc["id_token_signing_alg_values_supported"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|a| SUPPORTED.contains(a))
        .map(str::to_string)
        .collect();
    Ok(Discovery {
        jwks_uri,
        algorithms,
    })
}

const SUPPORTED: &[&str] = &[
    "RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "PS384", "PS512",
];

/// The keys at `uri` (`{"keys": [...]}`).
pub async fn fetch_keys(http: &reqwest::Client, uri: &str) -> Result<Vec<Value>, String> {
    let set = get_json(http, uri)
        .await
        .map_err(|e| format!("oidc: get keys failed: {e}"))?;
    Ok(set["keys"].as_array().cloned().unwrap_or_default())
}

fn verify_with(jwk: &Value, alg: &str, jwt: &Jwt) -> bool {
    use aws_lc_rs::signature as sig;
    let field = |k: &str| jwk[k].as_str().and_then(|v| b64(v).ok());
    match alg {
        "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512" => {
            if jwk["kty"] != "RSA" {
                return false;
            }
            let (Some(n), Some(e)) = (field("n"), field("e")) else {
                return false;
            };
            let params: &sig::RsaParameters = match alg {
                "RS256" => &sig::RSA_PKCS1_2048_8192_SHA256,
                "RS384" => &sig::RSA_PKCS1_2048_8192_SHA384,
                "RS512" => &sig::RSA_PKCS1_2048_8192_SHA512,
                "PS256" => &sig::RSA_PSS_2048_8192_SHA256,
                "PS384" => &sig::RSA_PSS_2048_8192_SHA384,
                _ => &sig::RSA_PSS_2048_8192_SHA512,
            };
            sig::RsaPublicKeyComponents { n: &n, e: &e }
                .verify(params, &jwt.signing_input, &jwt.signature)
                .is_ok()
        }
        "ES256" | "ES384" => {
            if jwk["kty"] != "EC" {
                return false;
            }
            let (Some(x), Some(y)) = (field("x"), field("y")) else {
                return false;
            };
            let mut point = vec![4u8];
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            let alg: &sig::EcdsaVerificationAlgorithm = if alg == "ES256" {
                &sig::ECDSA_P256_SHA256_FIXED
            } else {
                &sig::ECDSA_P384_SHA384_FIXED
            };
            sig::UnparsedPublicKey::new(alg, &point)
                .verify(&jwt.signing_input, &jwt.signature)
                .is_ok()
        }
        _ => false,
    }
}

/// Checks the signature of `jwt` with `keys`, the algorithm being one of `algorithms`.
pub fn verify_signature(jwt: &Jwt, keys: &[Value], algorithms: &[String]) -> Result<(), String> {
    let alg = jwt.header["alg"].as_str().unwrap_or_default();
    let allowed: Vec<String> = if algorithms.is_empty() {
        vec!["RS256".into()]
    } else {
        algorithms.to_vec()
    };
    if !allowed.iter().any(|a| a == alg) {
        return Err(format!(
            "oidc: id token signed with unsupported algorithm, expected {:?} got {alg:?}",
            allowed
        ));
    }
    let kid = jwt.header["kid"].as_str().unwrap_or_default();
    let verified = keys
        .iter()
        .filter(|k| kid.is_empty() || k["kid"].as_str() == Some(kid))
        .any(|k| verify_with(k, alg, jwt));
    if verified {
        Ok(())
    } else {
        Err("failed to verify signature: failed to verify id token signature".into())
    }
}

/// go-oidc's claim checks: issuer, audience, expiry and not-before (5 minutes of leeway).
pub fn verify_claims(jwt: &Jwt, issuer: &str, audience: &str, now: i64) -> Result<(), String> {
    let c = &jwt.claims;
    let iss = c["iss"].as_str().unwrap_or_default();
    if iss != issuer {
        return Err(format!(
            "oidc: id token issued by a different provider, expected {issuer:?} got {iss:?}"
        ));
    }
    let auds: Vec<&str> = match &c["aud"] {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !auds.contains(&audience) {
        return Err(format!("oidc: expected audience {audience:?} got {auds:?}"));
    }
    let exp = c["exp"].as_f64().unwrap_or(0.0) as i64;
    if exp < now {
        return Err(format!("oidc: token is expired (Token Expiry: {exp})"));
    }
    if let Some(nbf) = c["nbf"].as_f64()
        && now + 300 < nbf as i64
    {
        return Err(format!(
            "oidc: current time {now} before the nbf (not before) time: {}",
            nbf as i64
        ));
    }
    Ok(())
}

/// Discovery, keys, claims and signature of `raw` for `issuer` and `audience`; the claims.
pub async fn verify(
    http: &reqwest::Client,
    raw: &str,
    issuer: &str,
    audience: &str,
) -> Result<Value, String> {
    let discovery = discover(http, issuer)
        .await
        .map_err(|e| format!("failed to initialize OIDC provider for issuer {issuer:?}: {e}"))?;
    let jwt = decode(raw).map_err(|e| format!("failed to verify OIDC token: {e}"))?;
    verify_claims(&jwt, issuer, audience, jiff::Timestamp::now().as_second())
        .map_err(|e| format!("failed to verify OIDC token: {e}"))?;
    let keys = fetch_keys(http, &discovery.jwks_uri)
        .await
        .map_err(|e| format!("failed to verify OIDC token: {e}"))?;
    verify_signature(&jwt, &keys, &discovery.algorithms)
        .map_err(|e| format!("failed to verify OIDC token: {e}"))?;
    Ok(jwt.claims)
}
