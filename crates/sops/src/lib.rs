//! SOPS decryption as Flux's kustomize-controller performs it.
//!
//! Reads files written by the `sops` tool (YAML, JSON, dotenv, binary), recovers the data
//! key with age identities or OpenPGP private keys, decrypts every `ENC[AES256_GCM,...]`
//! value (comments included), optionally verifies the MAC, and writes the cleartext the way
//! sops's stores do. Pure library: no I/O besides the bytes handed in.
//!
//! ```no_run
//! use std::collections::BTreeMap;
//! use ferroflux_sops::{decrypt_with, DecryptOptions, Format, Keyring};
//! # fn main() -> Result<(), ferroflux_sops::SopsError> {
//! let mut secret = BTreeMap::new();
//! secret.insert("identity.agekey".to_string(), b"AGE-SECRET-KEY-1...".to_vec());
//! let keys = Keyring::from_secret_data(&secret)?;
//! let yaml = decrypt_with(b"...", Format::Yaml, Format::Yaml, &keys, &DecryptOptions::FLUX)?;
//! # let _ = yaml; Ok(()) }
//! ```

mod crypto;
mod dotenv;
mod ini;
mod json;
mod keys;
mod metadata;
mod shamir;
mod timestamp;
mod tree;
mod yaml;

use std::path::Path;

pub use keys::{AGE_KEY_SUFFIX, Keyring, PGP_KEY_SUFFIX};

use crate::tree::{Branches, Entry, Node};

/// kustomize-controller's bound on an encrypted file (5 MiB).
pub const MAX_ENCRYPTED_FILE_SIZE: usize = 5 << 20;

/// Errors, worded after sops and kustomize-controller. None carries key material or
/// cleartext.
#[derive(Debug, thiserror::Error)]
pub enum SopsError {
    /// The input is larger than the configured bound.
    #[error("cannot decrypt file with size ({size} bytes) exceeding limit ({limit})")]
    TooLarge { size: usize, limit: usize },
    /// A key in the decryption Secret could not be imported.
    #[error("{0}")]
    KeyImport(String),
    /// The input has no `sops` metadata.
    #[error("failed to load encrypted {format} data: sops metadata not found")]
    MetadataNotFound { format: &'static str },
    /// The input could not be parsed, or its metadata is invalid.
    #[error("failed to load encrypted {format} data: {message}")]
    Load {
        format: &'static str,
        message: String,
    },
    /// No key could recover the data key.
    #[error("cannot get sops data key: {0}")]
    DataKey(String),
    /// A value could not be decrypted.
    #[error("error decrypting sops tree: {0}")]
    Tree(String),
    /// The MAC does not match the cleartext (or could not be decrypted).
    #[error("failed to verify sops data integrity: {0}")]
    Integrity(String),
    /// The cleartext cannot be written in the output format.
    #[error("failed to emit encrypted {input} file as decrypted {output}: {message}")]
    Emit {
        input: &'static str,
        output: &'static str,
        message: String,
    },
}

/// The stores sops knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Yaml,
    Json,
    Dotenv,
    /// A JSON envelope `{"data": "ENC[...]", "sops": {...}}` around opaque bytes.
    Binary,
    /// go-ini sections; metadata in a `[sops]` section.
    Ini,
}

impl Format {
    /// The format kustomize-controller infers from a path: `.yaml`/`.yml`, `.json`,
    /// `.env`, `.ini`, a `.dockerconfigjson` suffix is JSON, anything else binary.
    pub fn from_path(path: &Path) -> Format {
        let s = path.to_string_lossy();
        if s.ends_with(".dockerconfigjson") || s.ends_with(".json") {
            Format::Json
        } else if s.ends_with(".yaml") || s.ends_with(".yml") {
            Format::Yaml
        } else if s.ends_with(".env") {
            Format::Dotenv
        } else if s.ends_with(".ini") {
            Format::Ini
        } else {
            Format::Binary
        }
    }

    /// The name upstream uses in messages.
    pub fn name(self) -> &'static str {
        match self {
            Format::Yaml => "YAML",
            Format::Json => "JSON",
            Format::Dotenv => "dotenv",
            Format::Binary => "binary",
            Format::Ini => "INI",
        }
    }

    /// The bytes kustomize-controller looks for before it tries to decrypt a file or a
    /// Secret value of this format.
    pub fn marker(self) -> &'static [u8] {
        match self {
            Format::Binary | Format::Json => b"\"mac\": \"ENC[",
            Format::Dotenv => b"sops_mac=ENC[",
            Format::Ini => b"[sops]",
            Format::Yaml => b"mac: ENC[",
        }
    }
}

/// Whether `data` carries the sops marker of `format` (kustomize-controller leaves files
/// without it alone).
pub fn has_marker(data: &[u8], format: Format) -> bool {
    let m = format.marker();
    data.windows(m.len()).any(|w| w == m)
}

/// The format of a sops-encrypted blob found in a Secret value, by its marker bytes (JSON
/// and binary share theirs; both load the same way, so JSON is reported).
pub fn detect_format_from_markers(data: &[u8]) -> Option<Format> {
    [Format::Yaml, Format::Json, Format::Dotenv, Format::Ini]
        .into_iter()
        .find(|f| has_marker(data, *f))
}

/// How to decrypt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecryptOptions {
    /// Recompute the MAC over the cleartext and compare it with the stored one.
    pub verify_mac: bool,
    /// Largest input accepted, in bytes.
    pub max_size: usize,
}

impl DecryptOptions {
    /// kustomize-controller's behaviour: the MAC is not checked (kustomize adds fields such
    /// as `metadata.namespace` to encrypted Secrets, which would break it), 5 MiB bound.
    pub const FLUX: DecryptOptions = DecryptOptions {
        verify_mac: false,
        max_size: MAX_ENCRYPTED_FILE_SIZE,
    };
    /// `sops --decrypt`'s behaviour: the MAC is checked, 5 MiB bound.
    pub const SOPS: DecryptOptions = DecryptOptions {
        verify_mac: true,
        max_size: MAX_ENCRYPTED_FILE_SIZE,
    };
}

impl Default for DecryptOptions {
    fn default() -> Self {
        DecryptOptions::FLUX
    }
}

/// Decrypt like `sops --decrypt` (MAC verified), reading and writing `format`.
pub fn decrypt(data: &[u8], format: Format, keys: &Keyring) -> Result<Vec<u8>, SopsError> {
    decrypt_with(data, format, format, keys, &DecryptOptions::SOPS)
}

fn load(data: &[u8], format: Format) -> Result<(Branches, metadata::Metadata), SopsError> {
    let load_err = |message: String| {
        if message == metadata::METADATA_NOT_FOUND {
            SopsError::MetadataNotFound {
                format: format.name(),
            }
        } else {
            SopsError::Load {
                format: format.name(),
                message,
            }
        }
    };
    match format {
        Format::Yaml => {
            let text =
                std::str::from_utf8(data).map_err(|_| load_err("input is not UTF-8".into()))?;
            let mut branches = yaml::read(text)
                .map_err(|e| load_err(format!("Error unmarshaling input YAML: {e}")))?;
            let meta = metadata::extract_nested(&mut branches).map_err(load_err)?;
            Ok((branches, meta))
        }
        Format::Json | Format::Binary => {
            let branch = json::read(data)
                .map_err(|e| load_err(format!("Could not unmarshal input data: {e}")))?;
            let mut branches = vec![branch];
            let meta = metadata::extract_nested(&mut branches).map_err(load_err)?;
            Ok((branches, meta))
        }
        Format::Dotenv => {
            let branch = dotenv::read(data).map_err(load_err)?;
            let mut branches = vec![branch];
            let meta = metadata::extract_flat(&mut branches).map_err(load_err)?;
            Ok((branches, meta))
        }
        Format::Ini => {
            let branch = ini::read(data)
                .map_err(|e| load_err(format!("Could not unmarshal input data: {e}")))?;
            let mut branches = vec![branch];
            let meta = metadata::extract_ini(&mut branches).map_err(load_err)?;
            Ok((branches, meta))
        }
    }
}

fn emit(branches: &Branches, input: Format, output: Format) -> Result<Vec<u8>, SopsError> {
    let emit_err = |message: String| SopsError::Emit {
        input: input.name(),
        output: output.name(),
        message,
    };
    let first = || branches.first().map(Vec::as_slice).unwrap_or(&[]);
    match output {
        Format::Yaml => Ok(yaml::write(branches).into_bytes()),
        Format::Json => json::write(first())
            .map(String::into_bytes)
            .map_err(emit_err),
        Format::Dotenv => dotenv::write(first())
            .map(String::into_bytes)
            .map_err(emit_err),
        Format::Binary => {
            if branches.len() != 1 {
                return Err(emit_err(
                    "error emitting binary store: there must be exactly one tree branch".into(),
                ));
            }
            for e in first() {
                if let Entry::Pair(k, v) = e
                    && k == "data"
                {
                    return match v {
                        Node::Str(s) => Ok(s.clone().into_bytes()),
                        _ => Err(emit_err(
                            "error emitting binary store: 'data' key in tree does not have a string value".into(),
                        )),
                    };
                }
            }
            Err(emit_err(
                "error emitting binary store: no binary data found in tree".into(),
            ))
        }
        Format::Ini => ini::write(first())
            .map(String::into_bytes)
            .map_err(|e| emit_err(format!("Error marshaling to INI: {e}"))),
    }
}

/// Decrypt `data` read as `input` and write the cleartext as `output`
/// (kustomize-controller's `SopsDecryptWithFormat`).
pub fn decrypt_with(
    data: &[u8],
    input: Format,
    output: Format,
    keys: &Keyring,
    opts: &DecryptOptions,
) -> Result<Vec<u8>, SopsError> {
    if data.len() > opts.max_size {
        return Err(SopsError::TooLarge {
            size: data.len(),
            limit: opts.max_size,
        });
    }
    let (mut branches, meta) = load(data, input)?;
    decrypt_loaded(&mut branches, &meta, keys, opts)?;
    emit(&branches, input, output)
}

fn decrypt_loaded(
    branches: &mut Branches,
    meta: &metadata::Metadata,
    keys: &Keyring,
    opts: &DecryptOptions,
) -> Result<(), SopsError> {
    let key = keys.data_key(meta).map_err(SopsError::DataKey)?;
    let mac = crypto::decrypt_tree(branches, &key, meta).map_err(SopsError::Tree)?;
    if opts.verify_mac {
        let stored =
            crypto::stored_mac(&key, meta).map_err(|e| SopsError::Integrity(e.to_string()))?;
        if stored != mac {
            let what = if stored.is_empty() {
                "the file has no MAC"
            } else {
                "MAC mismatch"
            };
            return Err(SopsError::Integrity(what.into()));
        }
    }
    Ok(())
}

/// kustomize-controller's `DecryptResource` for one built resource where
/// [`is_encrypted_document`] holds: upstream decrypts the resource's JSON form, so comments
/// are gone and timestamps stay the text they were; the result is the resource without its
/// `sops` section, as YAML.
pub fn decrypt_resource(
    yaml_text: &str,
    keys: &Keyring,
    opts: &DecryptOptions,
) -> Result<String, SopsError> {
    if yaml_text.len() > opts.max_size {
        return Err(SopsError::TooLarge {
            size: yaml_text.len(),
            limit: opts.max_size,
        });
    }
    let load_err = |message: String| {
        if message == metadata::METADATA_NOT_FOUND {
            SopsError::MetadataNotFound { format: "JSON" }
        } else {
            SopsError::Load {
                format: "JSON",
                message,
            }
        }
    };
    let mut branches = yaml::read_with(yaml_text, true)
        .map_err(|e| load_err(format!("Could not unmarshal input data: {e}")))?;
    if branches.len() != 1 {
        return Err(load_err(format!(
            "expected one resource, found {} documents",
            branches.len()
        )));
    }
    let meta = metadata::extract_nested(&mut branches).map_err(load_err)?;
    decrypt_loaded(&mut branches, &meta, keys, opts)?;
    // a decrypted time is a JSON string on upstream's path
    for b in branches.iter_mut() {
        times_to_strings(b);
    }
    Ok(yaml::write(&branches))
}

fn times_to_strings(entries: &mut [Entry]) {
    fn node(n: &mut Node) {
        match n {
            Node::Time(t) => *n = Node::Str(std::mem::take(t)),
            Node::Map(entries) => times_to_strings(entries),
            Node::Seq(items) => items.iter_mut().for_each(node),
            _ => {}
        }
    }
    for e in entries {
        if let Entry::Pair(_, v) = e {
            node(v);
        }
    }
}

/// kustomize-controller's handling of one `data` value of a Secret that is not itself
/// sops-encrypted (e.g. made by a secretGenerator from an encrypted file): when the value
/// (already base64-decoded) carries a sops marker, decrypt it, reading the format the marker
/// names and writing the format the data key's name implies (`Format::from_path(key)`).
/// Returns `Ok(None)` for values without a marker.
pub fn decrypt_secret_value(
    data_key: &str,
    value: &[u8],
    keys: &Keyring,
    opts: &DecryptOptions,
) -> Result<Option<Vec<u8>>, SopsError> {
    let Some(input) = detect_format_from_markers(value) else {
        return Ok(None);
    };
    let output = Format::from_path(Path::new(data_key));
    decrypt_with(value, input, output, keys, opts).map(Some)
}

/// Whether a YAML document has a top-level `sops` mapping with a non-empty `mac`, the test
/// kustomize-controller applies to a built resource before decrypting it.
pub fn is_encrypted_document(yaml_text: &str) -> bool {
    let Ok(branches) = yaml::read(yaml_text) else {
        return false;
    };
    let Some(first) = branches.first() else {
        return false;
    };
    let doc = Node::Map(first.clone());
    match doc.get("sops") {
        Some(m @ Node::Map(_)) => match m.get("mac") {
            None | Some(Node::Null) => false,
            Some(Node::Str(s)) => !s.is_empty(),
            Some(_) => true,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn keyring_is_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<super::Keyring>();
        assert_send_sync::<super::SopsError>();
    }
}
