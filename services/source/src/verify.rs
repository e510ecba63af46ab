//! Signature verification of the checked out commit and/or tag (`spec.verify`).
//!
//! Mode handling follows upstream: `Tag` and `TagAndHEAD` need the commit to have been checked
//! out through an annotated tag (else the object stalls with `InvalidVerificationMode`), an
//! unsigned tag is `InvalidGitObject`, a bad tag signature `InvalidTagSignature`, a bad or
//! missing commit signature `InvalidCommitSignature`.
//!
//! Keys come from the verification Secret: values of keys ending in `.sshpub` are SSH public
//! keys (`authorized_keys` lines), every other value is an OpenPGP keyring (armored). PGP
//! signatures are checked with rPGP against every primary key and subkey; SSH signatures
//! (`SSHSIG`, namespace `git`, sha256/sha512) against ed25519, RSA, ECDSA (P-256, P-384,
//! P-521) and security keys (`sk-ssh-ed25519@openssh.com`, `sk-ecdsa-sha2-nistp256@openssh.com`).

use std::collections::BTreeMap;

use base64::Engine;
use pgp::composed::{Deserializable, DetachedSignature, SignedPublicKey};
use pgp::types::KeyDetails;
use sha2::Digest;

use crate::git::Commit;

/// A verification failure with its upstream reason.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("cannot verify tag object's signature if a tag reference is not specified")]
    NoTag,
    #[error("cannot verify signature of tag '{0}' since it is not signed")]
    UnsignedTag(String),
    #[error("signature verification of tag '{tag}' failed: {reason}")]
    Tag { tag: String, reason: String },
    #[error("signature verification of commit '{hash}' failed: {reason}")]
    Commit { hash: String, reason: String },
}

impl VerifyError {
    /// The condition reason upstream uses.
    pub fn reason(&self) -> &'static str {
        match self {
            VerifyError::NoTag => "InvalidVerificationMode",
            VerifyError::UnsignedTag(_) => "InvalidGitObject",
            VerifyError::Tag { .. } => "InvalidTagSignature",
            VerifyError::Commit { .. } => "InvalidCommitSignature",
        }
    }

    /// Whether only a spec change can fix it.
    pub fn stalling(&self) -> bool {
        matches!(self, VerifyError::NoTag)
    }
}

/// Checks `signature` over `payload`; returns the identifier of the key that made it.
pub fn check(
    signature: Option<&str>,
    payload: &[u8],
    keys: &BTreeMap<String, Vec<u8>>,
) -> Result<String, String> {
    let Some(sig) = signature else {
        return Err("unable to verify payload: no signature".to_string());
    };
    if sig.contains("-----BEGIN SSH SIGNATURE-----") {
        let allowed: Vec<&[u8]> = keys
            .iter()
            .filter(|(k, _)| k.ends_with(".sshpub"))
            .map(|(_, v)| v.as_slice())
            .collect();
        if allowed.is_empty() {
            return Err("no SSH public keys ('*.sshpub') found in secret".to_string());
        }
        return ssh::verify(sig, payload, &allowed);
    }
    let rings: Vec<&[u8]> = keys
        .iter()
        .filter(|(k, _)| !k.ends_with(".sshpub"))
        .map(|(_, v)| v.as_slice())
        .collect();
    if rings.is_empty() {
        return Err("no PGP public keys found in secret".to_string());
    }
    verify_pgp(sig, payload, &rings)
}

fn verify_pgp(armored: &str, payload: &[u8], rings: &[&[u8]]) -> Result<String, String> {
    let (sig, _) = DetachedSignature::from_string(armored)
        .map_err(|e| format!("unable to read signature: {e}"))?;
    for ring in rings {
        let Ok(text) = std::str::from_utf8(ring) else {
            continue;
        };
        let Ok((keys, _)) = SignedPublicKey::from_string_many(text) else {
            continue;
        };
        for key in keys.flatten() {
            if sig.verify(&key.primary_key, payload).is_ok() {
                return Ok(key_id(&key.primary_key.legacy_key_id()));
            }
            for sub in &key.public_subkeys {
                if sig.verify(&sub.key, payload).is_ok() {
                    return Ok(key_id(&sub.key.legacy_key_id()));
                }
            }
        }
    }
    Err("unable to verify payload with any of the given key rings".to_string())
}

fn key_id(id: &pgp::types::KeyId) -> String {
    hex::encode_upper(id.as_ref())
}

/// Verifies per `mode` (`HEAD`, `Tag`, `TagAndHEAD`); returns upstream's success message.
pub fn verify(
    mode: &str,
    commit: &Commit,
    keys: &BTreeMap<String, Vec<u8>>,
) -> Result<String, VerifyError> {
    let mut message = String::new();
    if mode == "Tag" || mode == "TagAndHEAD" {
        let tag = commit.referencing_tag.as_ref().ok_or(VerifyError::NoTag)?;
        let Some(sig) = tag.signature.as_deref() else {
            return Err(VerifyError::UnsignedTag(tag.name.clone()));
        };
        let key = check(Some(sig), &tag.payload, keys).map_err(|reason| VerifyError::Tag {
            tag: tag.name.clone(),
            reason,
        })?;
        message.push_str(&format!(
            "verified signature of\n\t- tag '{}' with key '{key}'",
            tag.name
        ));
    }
    if mode == "HEAD" || mode == "TagAndHEAD" {
        let key = check(commit.signature.as_deref(), &commit.payload, keys).map_err(|reason| {
            VerifyError::Commit {
                hash: commit.hash.clone(),
                reason,
            }
        })?;
        if message.is_empty() {
            message.push_str(&format!(
                "verified signature of\n\t- commit '{}' with key '{key}'",
                commit.hash
            ));
        } else {
            message.push_str(&format!("\n\t- commit '{}' with key '{key}'", commit.hash));
        }
    }
    Ok(message)
}

/// SSH signatures (OpenSSH `PROTOCOL.sshsig`).
mod ssh {
    use super::*;

    struct Reader<'a>(&'a [u8]);

    impl<'a> Reader<'a> {
        fn u32(&mut self) -> Option<u32> {
            let (h, t) = self.0.split_first_chunk::<4>()?;
            self.0 = t;
            Some(u32::from_be_bytes(*h))
        }
        fn string(&mut self) -> Option<&'a [u8]> {
            let n = self.u32()? as usize;
            if self.0.len() < n {
                return None;
            }
            let (h, t) = self.0.split_at(n);
            self.0 = t;
            Some(h)
        }
    }

    fn put_string(out: &mut Vec<u8>, s: &[u8]) {
        out.extend_from_slice(&(s.len() as u32).to_be_bytes());
        out.extend_from_slice(s);
    }

    /// The key blobs of `authorized_keys`-style lines.
    fn key_blobs(text: &[u8]) -> Vec<Vec<u8>> {
        String::from_utf8_lossy(text)
            .lines()
            .filter_map(|l| {
                let l = l.trim();
                if l.is_empty() || l.starts_with('#') {
                    return None;
                }
                let mut parts = l.split_whitespace();
                // Skip options (e.g. `namespaces="git"`) and principals before the key type.
                let b64 = loop {
                    let p = parts.next()?;
                    if p.starts_with("ssh-") || p.starts_with("ecdsa-") || p.starts_with("sk-") {
                        break parts.next()?;
                    }
                };
                base64::engine::general_purpose::STANDARD.decode(b64).ok()
            })
            .collect()
    }

    pub(super) fn fingerprint(blob: &[u8]) -> String {
        let digest = sha2::Sha256::digest(blob);
        format!(
            "SHA256:{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
        )
    }

    pub(super) fn verify(
        armored: &str,
        payload: &[u8],
        allowed: &[&[u8]],
    ) -> Result<String, String> {
        let body: String = armored
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .map(str::trim)
            .collect();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|e| format!("unable to read SSH signature: {e}"))?;
        let bad = || "malformed SSH signature".to_string();
        let rest = raw.strip_prefix(b"SSHSIG").ok_or_else(bad)?;
        let mut r = Reader(rest);
        if r.u32().ok_or_else(bad)? != 1 {
            return Err("unsupported SSH signature version".to_string());
        }
        let public = r.string().ok_or_else(bad)?;
        let namespace = r.string().ok_or_else(bad)?;
        let reserved = r.string().ok_or_else(bad)?;
        let hash_alg = r.string().ok_or_else(bad)?;
        let sig = r.string().ok_or_else(bad)?;
        if namespace != b"git" {
            return Err(format!(
                "SSH signature namespace '{}' is not 'git'",
                String::from_utf8_lossy(namespace)
            ));
        }
        let trusted = allowed
            .iter()
            .flat_map(|k| key_blobs(k))
            .any(|b| b == public);
        if !trusted {
            return Err(format!(
                "signing key {} is not among the trusted keys",
                fingerprint(public)
            ));
        }
        let digest: Vec<u8> = match hash_alg {
            b"sha512" => sha2::Sha512::digest(payload).to_vec(),
            b"sha256" => sha2::Sha256::digest(payload).to_vec(),
            other => {
                return Err(format!(
                    "unsupported SSH signature hash '{}'",
                    String::from_utf8_lossy(other)
                ));
            }
        };
        let mut signed = b"SSHSIG".to_vec();
        put_string(&mut signed, namespace);
        put_string(&mut signed, reserved);
        put_string(&mut signed, hash_alg);
        put_string(&mut signed, &digest);

        let mut s = Reader(sig);
        let sig_type = s.string().ok_or_else(bad)?;
        let sig_blob = s.string().ok_or_else(bad)?;
        let mut k = Reader(public);
        let key_type = k.string().ok_or_else(bad)?;
        // Security-key signatures (PROTOCOL.u2f) carry the authenticator's flags and counter
        // after the signature; what the key signed is sha256(application) || flags ||
        // counter || sha256(message).
        let sk_signed = |application: &[u8], s: &mut Reader<'_>| -> Option<Vec<u8>> {
            let flags = *s.0.first()?;
            s.0 = &s.0[1..];
            let counter = s.u32()?;
            let mut out = sha2::Sha256::digest(application).to_vec();
            out.push(flags);
            out.extend_from_slice(&counter.to_be_bytes());
            out.extend_from_slice(&sha2::Sha256::digest(&signed));
            Some(out)
        };
        if sig_type != key_type && !key_type.starts_with(b"ssh-rsa") {
            return Err(format!(
                "SSH signature type '{}' does not match key type '{}'",
                String::from_utf8_lossy(sig_type),
                String::from_utf8_lossy(key_type)
            ));
        }
        let ok = match key_type {
            b"ssh-ed25519" => {
                let key = k.string().ok_or_else(bad)?;
                ed25519_ok(key, &signed, sig_blob).ok_or_else(bad)?
            }
            b"sk-ssh-ed25519@openssh.com" => {
                let key = k.string().ok_or_else(bad)?;
                let application = k.string().ok_or_else(bad)?;
                let message = sk_signed(application, &mut s).ok_or_else(bad)?;
                ed25519_ok(key, &message, sig_blob).ok_or_else(bad)?
            }
            b"ecdsa-sha2-nistp256" | b"ecdsa-sha2-nistp384" | b"ecdsa-sha2-nistp521" => {
                let curve = k.string().ok_or_else(bad)?;
                let point = k.string().ok_or_else(bad)?;
                ecdsa_ok(curve, point, &signed, sig_blob).ok_or_else(bad)?
            }
            b"sk-ecdsa-sha2-nistp256@openssh.com" => {
                let curve = k.string().ok_or_else(bad)?;
                let point = k.string().ok_or_else(bad)?;
                let application = k.string().ok_or_else(bad)?;
                let message = sk_signed(application, &mut s).ok_or_else(bad)?;
                ecdsa_ok(curve, point, &message, sig_blob).ok_or_else(bad)?
            }
            b"ssh-rsa" => {
                use rsa::signature::Verifier;
                let e = rsa::BigUint::from_bytes_be(k.string().ok_or_else(bad)?);
                let n = rsa::BigUint::from_bytes_be(k.string().ok_or_else(bad)?);
                let pk = rsa::RsaPublicKey::new(n, e).map_err(|e| e.to_string())?;
                let sig =
                    rsa::pkcs1v15::Signature::try_from(sig_blob).map_err(|e| e.to_string())?;
                match sig_type {
                    b"rsa-sha2-512" => rsa::pkcs1v15::VerifyingKey::<sha2::Sha512>::new(pk)
                        .verify(&signed, &sig)
                        .is_ok(),
                    b"rsa-sha2-256" => rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(pk)
                        .verify(&signed, &sig)
                        .is_ok(),
                    _ => false,
                }
            }
            other => {
                return Err(format!(
                    "unsupported SSH key type '{}'",
                    String::from_utf8_lossy(other)
                ));
            }
        };
        if ok {
            Ok(fingerprint(public))
        } else {
            Err("SSH signature does not match the payload".to_string())
        }
    }

    /// Ed25519 over `message`; `None` when the key or signature is malformed.
    fn ed25519_ok(key: &[u8], message: &[u8], sig: &[u8]) -> Option<bool> {
        let key: [u8; 32] = key.try_into().ok()?;
        let sig: [u8; 64] = sig.try_into().ok()?;
        let vk = ed25519_dalek::VerifyingKey::from_bytes(&key).ok()?;
        Some(
            vk.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&sig))
                .is_ok(),
        )
    }

    /// ECDSA on a NIST curve (hash by curve size, as RFC 5656 says) over `message`; the SSH
    /// signature blob holds `r` and `s` as mpints. `None` when something is malformed.
    fn ecdsa_ok(curve: &[u8], point: &[u8], message: &[u8], sig: &[u8]) -> Option<bool> {
        use aws_lc_rs::signature;
        let (alg, size): (&signature::EcdsaVerificationAlgorithm, usize) = match curve {
            b"nistp256" => (&signature::ECDSA_P256_SHA256_FIXED, 32),
            b"nistp384" => (&signature::ECDSA_P384_SHA384_FIXED, 48),
            b"nistp521" => (&signature::ECDSA_P521_SHA512_FIXED, 66),
            _ => return None,
        };
        let mut s = Reader(sig);
        let mut fixed = Vec::with_capacity(2 * size);
        for _ in 0..2 {
            let mpint = s.string()?;
            let digits = match mpint.iter().position(|b| *b != 0) {
                Some(i) => &mpint[i..],
                None => &[][..],
            };
            if digits.len() > size {
                return None;
            }
            fixed.resize(fixed.len() + size - digits.len(), 0);
            fixed.extend_from_slice(digits);
        }
        Some(
            signature::UnparsedPublicKey::new(alg, point)
                .verify(message, &fixed)
                .is_ok(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::Tag;

    fn commit(sig: Option<&str>, tag: Option<Tag>) -> Commit {
        Commit {
            hash: "a".repeat(40),
            reference: "refs/heads/main".into(),
            message: "m".into(),
            signature: sig.map(Into::into),
            payload: b"tree x".to_vec(),
            referencing_tag: tag,
        }
    }

    #[test]
    fn modes_and_reasons() {
        let keys: BTreeMap<String, Vec<u8>> = [("a.asc".to_string(), b"KEY".to_vec())].into();
        let e = verify("Tag", &commit(None, None), &keys).unwrap_err();
        assert_eq!(
            (e.reason(), e.stalling()),
            ("InvalidVerificationMode", true)
        );
        let unsigned = Tag {
            hash: "t".into(),
            name: "v1".into(),
            signature: None,
            payload: vec![],
        };
        let e = verify("TagAndHEAD", &commit(None, Some(unsigned)), &keys).unwrap_err();
        assert_eq!(e.reason(), "InvalidGitObject");
        assert_eq!(
            e.to_string(),
            "cannot verify signature of tag 'v1' since it is not signed"
        );
        let e = verify("HEAD", &commit(None, None), &keys).unwrap_err();
        assert_eq!(e.reason(), "InvalidCommitSignature");
        assert!(e.to_string().starts_with(&format!(
            "signature verification of commit '{}' failed",
            "a".repeat(40)
        )));
        // Garbage is never accepted.
        let e = verify(
            "HEAD",
            &commit(
                Some("-----BEGIN PGP SIGNATURE-----\nxx\n-----END PGP SIGNATURE-----\n"),
                None,
            ),
            &keys,
        )
        .unwrap_err();
        assert_eq!(e.reason(), "InvalidCommitSignature");
        let e = verify(
            "HEAD",
            &commit(
                Some("-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n"),
                None,
            ),
            &[("k.sshpub".to_string(), b"ssh-ed25519 AAAA".to_vec())].into(),
        )
        .unwrap_err();
        assert_eq!(e.reason(), "InvalidCommitSignature");
    }
}

/// Security-key signatures: vectors made by the real `ssh-keygen -Y sign` with a software
/// authenticator (`tests/fixtures/sk/generate.sh`) and accepted by `ssh-keygen -Y verify`.
#[cfg(test)]
mod sk_vectors {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/tests/fixtures/sk/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    fn fingerprint_of(pub_line: &[u8]) -> String {
        let text = String::from_utf8_lossy(pub_line);
        let b64 = text.split_whitespace().nth(1).unwrap();
        ssh::fingerprint(
            &base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap(),
        )
    }

    #[test]
    fn security_key_signatures_verify() {
        let payload = fixture("payload");
        for kind in ["ecdsa-sk", "ed25519-sk"] {
            let sig = String::from_utf8(fixture(&format!("{kind}.sig"))).unwrap();
            let public = fixture(&format!("{kind}.pub"));
            let keys: BTreeMap<String, Vec<u8>> =
                [("signer.sshpub".to_string(), public.clone())].into();
            assert_eq!(
                check(Some(&sig), &payload, &keys),
                Ok(fingerprint_of(&public)),
                "{kind}"
            );
            // A changed payload fails.
            let mut tampered = payload.clone();
            tampered[5] ^= 1;
            assert_eq!(
                check(Some(&sig), &tampered, &keys),
                Err("SSH signature does not match the payload".to_string()),
                "{kind}"
            );
            // The other security key is not trusted for this signature.
            let other = if kind == "ecdsa-sk" {
                "ed25519-sk"
            } else {
                "ecdsa-sk"
            };
            let keys: BTreeMap<String, Vec<u8>> =
                [("other.sshpub".to_string(), fixture(&format!("{other}.pub")))].into();
            let e = check(Some(&sig), &payload, &keys).unwrap_err();
            assert!(e.contains("is not among the trusted keys"), "{kind}: {e}");
        }
    }
}
