//! Value decryption (`ENC[AES256_GCM,...]`), the tree walk and the MAC.

use aes_gcm::aead::consts::{U12, U16, U32};
use aes_gcm::aead::generic_array::ArrayLength;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes256;
use aes_gcm::{AesGcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use regex::Regex;
use sha2::{Digest, Sha512};
use std::sync::OnceLock;

use crate::metadata::{CryptRule, Metadata};
use crate::tree::{Entry, Node};

/// Bytes sops hashes first when `mac_only_encrypted` is set (sha256 of "sops").
const MAC_ONLY_ENCRYPTED_INIT: [u8; 32] = [
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b,
    0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
];

fn enc_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]")
            .unwrap_or_else(|_| unreachable!())
    })
}

/// Why one value could not be decrypted. Never carries the value itself.
#[derive(Debug)]
pub(crate) enum ValueError {
    /// Not of the form ENC[AES256_GCM,...].
    Format,
    Base64(&'static str),
    Auth,
    BadType(String),
    Parse(&'static str),
}

impl std::fmt::Display for ValueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // upstream's message with the value redacted, as Flux's safeDecrypt prints it
            ValueError::Format => {
                f.write_str("Input string <redacted> does not match sops' data format")
            }
            ValueError::Base64(what) => write!(f, "Error base64-decoding {what}"),
            ValueError::Auth => {
                f.write_str("Could not decrypt with AES_GCM: cipher: message authentication failed")
            }
            ValueError::BadType(t) => write!(f, "Unknown datatype: {t}"),
            ValueError::Parse(t) => write!(f, "decrypted value is not a valid {t}"),
        }
    }
}

fn open_with<N: ArrayLength<u8>>(
    key: &[u8; 32],
    iv: &[u8],
    ct_and_tag: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, ValueError> {
    let cipher = AesGcm::<Aes256, N>::new_from_slice(key).map_err(|_| ValueError::Auth)?;
    let nonce = Nonce::<N>::from_slice(iv);
    cipher
        .decrypt(
            nonce,
            Payload {
                msg: ct_and_tag,
                aad,
            },
        )
        .map_err(|_| ValueError::Auth)
}

/// Decrypt one `ENC[...]` value under `key` with additional data `aad`.
pub(crate) fn decrypt_value(key: &[u8; 32], value: &str, aad: &str) -> Result<Node, ValueError> {
    if value.is_empty() {
        return Ok(Node::Str(String::new()));
    }
    let caps = enc_re().captures(value).ok_or(ValueError::Format)?;
    let data = STANDARD
        .decode(&caps[1])
        .map_err(|_| ValueError::Base64("data"))?;
    let iv = STANDARD
        .decode(&caps[2])
        .map_err(|_| ValueError::Base64("iv"))?;
    let tag = STANDARD
        .decode(&caps[3])
        .map_err(|_| ValueError::Base64("tag"))?;
    let typ = caps[4].to_string();
    if tag.len() != 16 {
        return Err(ValueError::Auth);
    }
    let mut ct = data;
    ct.extend_from_slice(&tag);
    let plain = match iv.len() {
        32 => open_with::<U32>(key, &iv, &ct, aad.as_bytes())?,
        16 => open_with::<U16>(key, &iv, &ct, aad.as_bytes())?,
        12 => open_with::<U12>(key, &iv, &ct, aad.as_bytes())?,
        _ => return Err(ValueError::Auth),
    };
    let text = || String::from_utf8_lossy(&plain).into_owned();
    Ok(match typ.as_str() {
        "str" => Node::Str(text()),
        "time" => {
            Node::Time(crate::timestamp::rfc3339_nano(&text()).ok_or(ValueError::Parse("time"))?)
        }
        "int" => Node::Int(go_atoi(&text()).ok_or(ValueError::Parse("int"))?),
        "float" => Node::Float(
            text()
                .parse::<f64>()
                .map_err(|_| ValueError::Parse("float"))?,
        ),
        "bool" => Node::Bool(match text().as_str() {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => true,
            "0" | "f" | "F" | "FALSE" | "false" | "False" => false,
            _ => return Err(ValueError::Parse("bool")),
        }),
        "bytes" => Node::Bytes(plain),
        "comment" => Node::Comment(crate::tree::Comment {
            text: text(),
            inline: false,
            paths: Vec::new(),
        }),
        _ => return Err(ValueError::BadType(typ)),
    })
}

fn go_atoi(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The bytes sops hashes for a cleartext value.
fn to_bytes(n: &Node) -> Vec<u8> {
    match n {
        Node::Str(s) => s.as_bytes().to_vec(),
        Node::Int(i) => i.to_string().into_bytes(),
        Node::Float(f) => ferroflux_goyaml::num::format_float(*f, 'f', None).into_bytes(),
        Node::Bool(b) => if *b { "True" } else { "False" }.as_bytes().to_vec(),
        Node::Bytes(b) => b.clone(),
        Node::Time(t) => t.as_bytes().to_vec(),
        Node::Comment(c) => c.text.as_bytes().to_vec(),
        Node::Null | Node::Map(_) | Node::Seq(_) => Vec::new(),
    }
}

struct Walker<'a> {
    key: &'a [u8; 32],
    meta: &'a Metadata,
    hash: Sha512,
}

fn path_aad(path: &[String]) -> String {
    let mut s = path.join(":");
    s.push(':');
    s
}

impl Walker<'_> {
    fn should_be_encrypted(
        &self,
        path: &[String],
        stack: &[Vec<String>],
        is_comment: bool,
    ) -> bool {
        match &self.meta.rule {
            CryptRule::UnencryptedSuffix(s) => !path.iter().any(|p| p.ends_with(s.as_str())),
            CryptRule::EncryptedSuffix(s) => path.iter().any(|p| p.ends_with(s.as_str())),
            CryptRule::UnencryptedRegex(r) => !path.iter().any(|p| r.is_match(p)),
            CryptRule::EncryptedRegex(r) => path.iter().any(|p| r.is_match(p)),
            CryptRule::UnencryptedCommentRegex(r) => !stack.iter().flatten().any(|c| r.is_match(c)),
            CryptRule::EncryptedCommentRegex(r) => {
                let last = stack.len().saturating_sub(1);
                let last_len = stack.last().map_or(0, Vec::len);
                stack.iter().enumerate().any(|(i, cs)| {
                    cs.iter().enumerate().any(|(j, c)| {
                        // the comment line that matches is itself left in clear
                        !(is_comment && i == last && j + 1 == last_len) && r.is_match(c)
                    })
                })
            }
        }
    }

    fn leaf(&mut self, v: &mut Node, path: &[String], stack: &[Vec<String>]) -> Result<(), String> {
        let is_comment = matches!(v, Node::Comment(_));
        let encrypted = self.should_be_encrypted(path, stack, is_comment);
        if encrypted {
            match v {
                Node::Comment(c) => {
                    let mut candidates = c.paths.clone();
                    if candidates.is_empty() {
                        candidates.push(path.to_vec());
                    }
                    for p in candidates {
                        // an unencrypted comment (older sops) stays as it is
                        if let Ok(Node::Comment(d)) =
                            decrypt_value(self.key, &c.text, &path_aad(&p))
                        {
                            c.text = d.text;
                            break;
                        }
                    }
                }
                Node::Str(s) => {
                    *v = decrypt_value(self.key, s, &path_aad(path))
                        .map_err(|e| format!("Could not decrypt value: {e}"))?;
                }
                other => {
                    return Err(format!(
                        "Expected encrypted value as string, but got {}",
                        go_type(other)
                    ));
                }
            }
        }
        if (!self.meta.mac_only_encrypted || encrypted) && !matches!(v, Node::Comment(_)) {
            self.hash.update(to_bytes(v));
        }
        Ok(())
    }

    fn value(
        &mut self,
        v: &mut Node,
        path: &mut Vec<String>,
        stack: &mut Vec<Vec<String>>,
    ) -> Result<(), String> {
        match v {
            Node::Map(entries) => self.branch(entries, path, stack),
            Node::Seq(items) => {
                stack.push(Vec::new());
                for item in items.iter_mut() {
                    let is_comment = if let Node::Comment(c) = item {
                        if let Some(top) = stack.last_mut() {
                            top.push(c.text.clone());
                        }
                        true
                    } else {
                        false
                    };
                    self.value(item, path, stack)?;
                    if !is_comment && let Some(top) = stack.last_mut() {
                        top.clear();
                    }
                }
                stack.pop();
                Ok(())
            }
            Node::Null => Ok(()),
            _ => self.leaf(v, path, stack),
        }
    }

    fn branch(
        &mut self,
        entries: &mut [Entry],
        path: &mut Vec<String>,
        stack: &mut Vec<Vec<String>>,
    ) -> Result<(), String> {
        stack.push(Vec::new());
        for e in entries.iter_mut() {
            match e {
                Entry::Comment(c) => {
                    if let Some(top) = stack.last_mut() {
                        top.push(c.text.clone());
                    }
                    let mut node = Node::Comment(c.clone());
                    self.leaf(&mut node, path, stack)?;
                    if let Node::Comment(d) = node {
                        *c = d;
                    }
                }
                Entry::Pair(k, v) => {
                    path.push(k.clone());
                    let r = self.value(v, path, stack);
                    path.pop();
                    r?;
                    if let Some(top) = stack.last_mut() {
                        top.clear();
                    }
                }
            }
        }
        stack.pop();
        Ok(())
    }
}

fn go_type(n: &Node) -> &'static str {
    match n {
        Node::Int(_) => "int",
        Node::Float(_) => "float64",
        Node::Bool(_) => "bool",
        Node::Bytes(_) => "[]uint8",
        Node::Time(_) => "time.Time",
        _ => "string",
    }
}

/// Decrypt every branch in place; returns the MAC of the cleartext (uppercase hex sha512).
pub(crate) fn decrypt_tree(
    branches: &mut [Vec<Entry>],
    key: &[u8; 32],
    meta: &Metadata,
) -> Result<String, String> {
    let mut w = Walker {
        key,
        meta,
        hash: Sha512::new(),
    };
    if meta.mac_only_encrypted {
        w.hash.update(MAC_ONLY_ENCRYPTED_INIT);
    }
    for b in branches.iter_mut() {
        w.branch(b, &mut Vec::new(), &mut Vec::new())
            .map_err(|e| format!("Error walking tree: {e}"))?;
    }
    let digest = w.hash.finalize();
    Ok(digest.iter().map(|b| format!("{b:02X}")).collect())
}

/// Decrypt the stored MAC (its additional data is `lastmodified`).
pub(crate) fn stored_mac(key: &[u8; 32], meta: &Metadata) -> Result<String, ValueError> {
    match decrypt_value(key, &meta.mac, &meta.last_modified)? {
        Node::Str(s) => Ok(s),
        _ => Err(ValueError::Parse("MAC")),
    }
}
