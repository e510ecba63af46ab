//! Cosign signatures checked with public keys, offline, as upstream does for `spec.verify`
//! with a `secretRef` (no transparency log): the signature image is the tag
//! `sha256-<hex>.sig` in the artifact's repository; each of its layers with the simple-signing
//! media type carries the payload (`critical.image.docker-manifest-digest` must name the
//! artifact's digest) and, in the `dev.cosignproject.cosign/signature` annotation, the base64
//! signature over it: ECDSA (ASN.1) with SHA-256 for EC keys (as cosign's default verifier
//! for keys loaded from PEM), RSA PKCS#1 v1.5 with SHA-256, or Ed25519.

use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use base64::Engine as _;

/// Media type of a cosign simple-signing payload layer.
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Annotation holding the base64 signature of a payload layer.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The `critical.type` of cosign image signatures.
pub const SIGNATURE_TYPE: &str = "cosign container image signature";

/// The tag cosign stores the signatures of `digest` under: `sha256-<hex>.sig`.
pub fn signature_tag(digest: &str) -> String {
    format!("{}.sig", digest.replacen(':', "-", 1))
}

/// A public key from a `*.pub` entry (PEM `PUBLIC KEY`, i.e. SubjectPublicKeyInfo).
pub struct PublicKey {
    spki: Vec<u8>,
}

/// Ed25519's SubjectPublicKeyInfo prefix (OID 1.3.101.112); the raw key follows.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

impl PublicKey {
    /// Parses a PEM public key; errors in the words cosign's loader uses.
    pub fn from_pem(pem: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(pem).map_err(|_| "PEM decoding failed".to_string())?;
        let begin = "-----BEGIN PUBLIC KEY-----";
        let end = "-----END PUBLIC KEY-----";
        let start = text.find(begin).ok_or("PEM decoding failed")?;
        let body = &text[start + begin.len()..];
        let stop = body.find(end).ok_or("PEM decoding failed")?;
        let b64: String = body[..stop].split_whitespace().collect();
        let spki = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| "PEM decoding failed".to_string())?;
        if spki.first() != Some(&0x30) {
            return Err("public key is not a DER SubjectPublicKeyInfo".to_string());
        }
        Ok(Self { spki })
    }

    /// True if `sig` is a valid signature of `message` by this key.
    pub fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        if self.spki.len() == 44 && self.spki[..12] == ED25519_SPKI_PREFIX {
            return UnparsedPublicKey::new(&signature::ED25519, &self.spki[12..])
                .verify(message, sig)
                .is_ok();
        }
        let algorithms: [&'static dyn VerificationAlgorithm; 4] = [
            &signature::ECDSA_P256_SHA256_ASN1,
            &signature::ECDSA_P384_SHA256_ASN1,
            &signature::ECDSA_P521_SHA256_ASN1,
            &signature::RSA_PKCS1_2048_8192_SHA256,
        ];
        algorithms.iter().any(|alg| {
            UnparsedPublicKey::new(*alg, &self.spki)
                .verify(message, sig)
                .is_ok()
        })
    }
}

/// The part of a simple-signing payload that is checked.
#[derive(serde::Deserialize)]
struct Payload {
    critical: Critical,
}

#[derive(serde::Deserialize)]
struct Critical {
    image: Image,
    #[serde(rename = "type", default)]
    kind: String,
}

#[derive(serde::Deserialize)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// Checks one signature layer: the signature over the payload by `key`, and the payload's
/// claim on `digest`.
pub fn verify_layer(
    key: &PublicKey,
    payload: &[u8],
    signature_b64: &str,
    digest: &str,
) -> Result<(), String> {
    let sig = base64::engine::general_purpose::STANDARD
        .decode(signature_b64.trim())
        .map_err(|_| "signature annotation is not base64".to_string())?;
    if !key.verify(payload, &sig) {
        return Err("invalid signature when validating ASN.1 encoded signature".to_string());
    }
    let p: Payload = serde_json::from_slice(payload)
        .map_err(|e| format!("invalid simple signing payload: {e}"))?;
    if !p.critical.kind.is_empty() && p.critical.kind != SIGNATURE_TYPE {
        return Err(format!("unexpected payload type '{}'", p.critical.kind));
    }
    if p.critical.image.docker_manifest_digest != digest {
        return Err(format!(
            "invalid or missing digest in claim: {}",
            p.critical.image.docker_manifest_digest
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair};

    fn pem(spki: &[u8]) -> Vec<u8> {
        let b64 = base64::engine::general_purpose::STANDARD.encode(spki);
        format!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----\n").into_bytes()
    }

    fn payload(digest: &str) -> Vec<u8> {
        serde_json::json!({"critical": {"identity": {"docker-reference": "r/app"},
            "image": {"docker-manifest-digest": digest}, "type": SIGNATURE_TYPE}, "optional": null})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn ecdsa_and_ed25519_signatures() {
        let rng = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let kp =
            EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref())
                .unwrap();
        // SPKI for the P-256 key: fixed header + uncompressed point.
        let mut spki = vec![
            0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06,
            0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
        ];
        spki.extend_from_slice(kp.public_key().as_ref());
        let key = PublicKey::from_pem(&pem(&spki)).unwrap();
        let d = format!("sha256:{}", "a".repeat(64));
        let p = payload(&d);
        let sig = kp.sign(&rng, &p).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(sig.as_ref());
        verify_layer(&key, &p, &b64, &d).unwrap();
        let other = format!("sha256:{}", "b".repeat(64));
        assert!(
            verify_layer(&key, &p, &b64, &other)
                .unwrap_err()
                .contains("invalid or missing digest")
        );
        let mut tampered = p.clone();
        tampered.push(b' ');
        assert!(verify_layer(&key, &tampered, &b64, &d).is_err());

        let ed = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let ed = Ed25519KeyPair::from_pkcs8(ed.as_ref()).unwrap();
        let mut spki = ED25519_SPKI_PREFIX.to_vec();
        spki.extend_from_slice(ed.public_key().as_ref());
        let key = PublicKey::from_pem(&pem(&spki)).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(ed.sign(&p).as_ref());
        verify_layer(&key, &p, &b64, &d).unwrap();
        assert!(PublicKey::from_pem(b"nope").is_err());
        assert_eq!(signature_tag(&d), format!("sha256-{}.sig", "a".repeat(64)));
    }
}
