//! Signature verification of the checked out commit and/or tag (`spec.verify`).
//!
//! Mode handling follows upstream: `Tag` and `TagAndHEAD` need the commit to have been checked
//! out through an annotated tag (else the object stalls with `InvalidVerificationMode`), an
//! unsigned tag is `InvalidGitObject`, a bad tag signature `InvalidTagSignature`, a bad or
//! missing commit signature `InvalidCommitSignature`.
//!
//! Cryptographic verification of PGP (`*.asc` keys) and SSH (`*.sshpub` keys) signatures is
//! not implemented yet: a present signature is reported as not verifiable, so nothing is ever
//! marked verified without a check.

use std::collections::BTreeMap;

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

fn check(
    signature: Option<&str>,
    _payload: &[u8],
    keys: &BTreeMap<String, Vec<u8>>,
) -> Result<String, String> {
    let Some(sig) = signature else {
        return Err("unable to verify payload: no signature".to_string());
    };
    if keys.is_empty() {
        return Err("no public keys found in secret".to_string());
    }
    let kind = if sig.contains("BEGIN SSH SIGNATURE") {
        "SSH"
    } else {
        "PGP"
    };
    Err(format!(
        "{kind} signature verification is not supported by this build"
    ))
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
        // A signature that cannot be checked is never accepted.
        let e = verify(
            "HEAD",
            &commit(Some("-----BEGIN PGP SIGNATURE-----"), None),
            &keys,
        )
        .unwrap_err();
        assert_eq!(e.reason(), "InvalidCommitSignature");
    }
}
