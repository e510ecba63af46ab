//! Private keys (age identities, OpenPGP secret keys) and the recovery of a file's data key.

use std::collections::BTreeMap;
use std::io::{BufReader, Cursor, Read};

use pgp::composed::{Deserializable, Message, SignedPublicKey, SignedSecretKey};
use pgp::types::Password;

use crate::SopsError;
use crate::metadata::{MasterKey, Metadata};

/// Secret data-key suffix for age identity files (kustomize-controller's `.agekey`).
pub const AGE_KEY_SUFFIX: &str = ".agekey";
/// Secret data-key suffix for armored OpenPGP private keys (`.asc`).
pub const PGP_KEY_SUFFIX: &str = ".asc";

/// The private keys a decryption may use.
#[derive(Default)]
pub struct Keyring {
    age: Vec<Box<dyn age::Identity + Send + Sync>>,
    /// Kinds of age identities that were present but cannot be used here.
    age_skipped: Vec<&'static str>,
    pgp: Vec<SignedSecretKey>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // counts only: never key material
        f.debug_struct("Keyring")
            .field("age_identities", &self.age.len())
            .field("pgp_keys", &self.pgp.len())
            .finish()
    }
}

/// Go's `filepath.Ext`: the suffix from the last dot of the last path element.
fn ext(name: &str) -> &str {
    let base = name.rsplit('/').next().unwrap_or(name);
    match base.rfind('.') {
        Some(i) => &base[i..],
        None => "",
    }
}

impl Keyring {
    /// An empty keyring.
    pub fn new() -> Keyring {
        Keyring::default()
    }

    /// Import keys from the data of a decryption Secret the way kustomize-controller does:
    /// `*.agekey` entries hold age identities, `*.asc` entries armored OpenPGP private keys;
    /// every other entry is ignored (cloud credentials such as `sops.aws-kms` included; files
    /// that need those key sources fail at decryption instead).
    pub fn from_secret_data(data: &BTreeMap<String, Vec<u8>>) -> Result<Keyring, SopsError> {
        let mut k = Keyring::new();
        for (name, value) in data {
            match ext(name) {
                AGE_KEY_SUFFIX => k
                    .add_age_identities(value)
                    .map_err(|e| import_err(name, e))?,
                PGP_KEY_SUFFIX => k.add_pgp_keys(value).map_err(|e| import_err(name, e))?,
                _ => {}
            }
        }
        Ok(k)
    }

    /// Import only the `*.agekey` entries, as kustomize-controller does for its global SOPS
    /// age Secret (`--sops-age-secret`), where `.asc` and credential entries are ignored.
    pub fn from_age_secret_data(data: &BTreeMap<String, Vec<u8>>) -> Result<Keyring, SopsError> {
        let mut k = Keyring::new();
        for (name, value) in data {
            if ext(name) == AGE_KEY_SUFFIX {
                k.add_age_identities(value)
                    .map_err(|e| import_err(name, e))?;
            }
        }
        Ok(k)
    }

    /// Add the identities of an age identity file (`AGE-SECRET-KEY-1...` lines, `#` comments).
    pub fn add_age_identities(&mut self, file: &[u8]) -> Result<(), SopsError> {
        let text = std::str::from_utf8(file).map_err(|_| {
            SopsError::KeyImport("failed to parse and add to age identities: not UTF-8 text".into())
        })?;
        let mut found = 0usize;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            // sops also reads plugin and post-quantum identities; keep going without them
            // (a file that needs one fails at decryption, naming the kind)
            if line.starts_with("AGE-PLUGIN-") {
                self.age_skipped.push("plugin");
                found += 1;
                continue;
            }
            if line.starts_with("AGE-SECRET-KEY-PQ-1") {
                self.age_skipped.push("post-quantum");
                found += 1;
                continue;
            }
            if !line.starts_with("AGE-SECRET-KEY-1") {
                return Err(SopsError::KeyImport(format!(
                    "failed to parse and add to age identities: error at line {}: unknown identity type",
                    i + 1
                )));
            }
            // the line is secret: report its number only
            let id: age::x25519::Identity = line.parse().map_err(|_| {
                SopsError::KeyImport(format!(
                    "failed to parse and add to age identities: error at line {}: malformed secret key",
                    i + 1
                ))
            })?;
            self.age.push(Box::new(id));
            found += 1;
        }
        if found == 0 {
            return Err(SopsError::KeyImport(
                "failed to parse and add to age identities: no secret keys found".into(),
            ));
        }
        Ok(())
    }

    /// Add the private keys of one or more armored OpenPGP key blocks. Public key blocks are
    /// accepted and ignored, as `gpg --import` would take them without gaining a secret.
    pub fn add_pgp_keys(&mut self, armored: &[u8]) -> Result<(), SopsError> {
        let secret: Result<Vec<SignedSecretKey>, _> =
            SignedSecretKey::from_armor_many(Cursor::new(armored))
                .map_err(|e| e.to_string())
                .and_then(|(it, _)| it.collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string()));
        match secret {
            Ok(keys) if !keys.is_empty() => {
                self.pgp.extend(keys);
                Ok(())
            }
            other => {
                let public_ok = SignedPublicKey::from_armor_many(Cursor::new(armored))
                    .map(|(it, _)| it.filter_map(Result::ok).count() > 0)
                    .unwrap_or(false);
                if public_ok {
                    return Ok(());
                }
                let why = match other {
                    Err(e) => e,
                    Ok(_) => "no keys found".into(),
                };
                Err(SopsError::KeyImport(format!(
                    "cannot import armored key data into keyring: {why}"
                )))
            }
        }
    }

    /// Number of age identities held.
    pub fn age_identities(&self) -> usize {
        self.age.len()
    }

    /// Number of OpenPGP secret keys held.
    pub fn pgp_keys(&self) -> usize {
        self.pgp.len()
    }

    fn decrypt_age(&self, enc: &str) -> Result<Vec<u8>, String> {
        let skipped = if self.age_skipped.is_empty() {
            String::new()
        } else {
            let mut kinds = self.age_skipped.clone();
            kinds.dedup();
            format!(
                " (age identities not supported here were skipped: {})",
                kinds.join(", ")
            )
        };
        if self.age.is_empty() {
            return Err(format!("failed to load age identities{skipped}"));
        }
        let reader = age::armor::ArmoredReader::new(BufReader::new(Cursor::new(enc.as_bytes())));
        let dec = age::Decryptor::new(reader).map_err(|e| {
            format!(
                "failed to create reader for decrypting sops data key with age: {}",
                age_err(&e)
            )
        })?;
        let mut r = dec
            .decrypt(self.age.iter().map(|i| i.as_ref() as &dyn age::Identity))
            .map_err(|e| {
                format!(
                    "failed to create reader for decrypting sops data key with age: {}{skipped}",
                    age_err(&e)
                )
            })?;
        let mut out = Vec::new();
        r.read_to_end(&mut out)
            .map_err(|e| format!("failed to copy age decrypted data into bytes.Buffer: {e}"))?;
        Ok(out)
    }

    fn decrypt_pgp(&self, enc: &str) -> Result<Vec<u8>, String> {
        if self.pgp.is_empty() {
            return Err(
                "could not decrypt data key with PGP key: no OpenPGP private keys imported".into(),
            );
        }
        let mut last = String::from("the key could not be decrypted with any of the PGP entries");
        for key in &self.pgp {
            let (msg, _) = Message::from_armor(BufReader::new(Cursor::new(enc.as_bytes())))
                .map_err(|e| {
                    format!("could not decrypt data key with PGP key: armor decoding failed: {e}")
                })?;
            match msg.decrypt(&Password::empty(), key) {
                Ok(mut m) => {
                    if m.is_compressed() {
                        m = match m.decompress() {
                            Ok(d) => d,
                            Err(e) => {
                                last = format!("decompressing failed: {e}");
                                continue;
                            }
                        };
                    }
                    match m.as_data_vec() {
                        Ok(v) if !v.is_empty() => return Ok(v),
                        Ok(_) => {
                            last = "failed to decrypt sops data key with pgp: zero bytes returned"
                                .into()
                        }
                        Err(e) => last = format!("reading PGP message failed: {e}"),
                    }
                }
                Err(_) => continue,
            }
        }
        Err(format!("could not decrypt data key with PGP key: {last}"))
    }

    fn decrypt_master_key(&self, key: &MasterKey) -> Result<Vec<u8>, String> {
        match key {
            MasterKey::Age { enc, .. } => self.decrypt_age(enc),
            MasterKey::Pgp { enc, .. } => self.decrypt_pgp(enc),
            MasterKey::Unsupported { kind, .. } => {
                Err(format!("{kind} key sources are not supported by ferroflux"))
            }
        }
    }

    /// Recover the data key of a file: one part per key group, the first master key of a
    /// group (age first, then PGP) that decrypts it wins.
    pub(crate) fn data_key(&self, meta: &Metadata) -> Result<[u8; 32], String> {
        let mut parts: Vec<Vec<u8>> = Vec::new();
        let mut failures: Vec<String> = Vec::new();
        for (gi, group) in meta.groups.iter().enumerate() {
            let mut order: Vec<&MasterKey> = group.iter().collect();
            order.sort_by_key(|k| k.priority());
            let mut errs = Vec::new();
            let mut got = None;
            for k in order {
                match self.decrypt_master_key(k) {
                    Ok(p) => {
                        got = Some(p);
                        break;
                    }
                    Err(e) => errs.push(format!("{}: {e}", key_name(k))),
                }
            }
            match got {
                Some(p) => parts.push(p),
                None if errs.is_empty() => failures.push(format!("group {gi}: no master keys")),
                None => failures.push(format!("group {gi}: {}", errs.join("; "))),
            }
        }
        let key = if meta.groups.len() > 1 {
            if parts.is_empty() {
                return Err(no_key_msg(&failures));
            }
            if parts.len() < meta.shamir_threshold {
                return Err(format!(
                    "Failed to get the data key required to decrypt the SOPS file: the file was encrypted with a Shamir threshold of {}, but only {} part(s) were successfully recovered ({})",
                    meta.shamir_threshold,
                    parts.len(),
                    failures.join("; ")
                ));
            }
            crate::shamir::combine(&parts)
                .map_err(|e| format!("could not get data key from shamir parts: {e}"))?
        } else {
            match parts.pop() {
                Some(p) => p,
                None => return Err(no_key_msg(&failures)),
            }
        };
        <[u8; 32]>::try_from(key.as_slice())
            .map_err(|_| format!("data key has {} bytes, expected 32", key.len()))
    }
}

fn no_key_msg(failures: &[String]) -> String {
    format!(
        "Failed to get the data key required to decrypt the SOPS file: no master key was able to decrypt the file ({})",
        failures.join("; ")
    )
}

fn key_name(k: &MasterKey) -> String {
    match k {
        MasterKey::Age { recipient, .. } => format!("age {recipient}"),
        MasterKey::Pgp { fingerprint, .. } => format!("pgp {fingerprint}"),
        MasterKey::Unsupported { kind, id } => format!("{kind} {id}"),
    }
}

fn age_err(e: &age::DecryptError) -> String {
    match e {
        age::DecryptError::NoMatchingKeys => "no identity matched any of the recipients".into(),
        other => other.to_string(),
    }
}

fn import_err(name: &str, e: SopsError) -> SopsError {
    match e {
        SopsError::KeyImport(m) => {
            SopsError::KeyImport(format!("failed to import '{name}' data: {m}"))
        }
        other => other,
    }
}
