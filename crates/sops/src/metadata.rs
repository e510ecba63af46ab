//! The `sops` metadata section: where it sits in each store, and what it says.

use regex::Regex;

use crate::tree::{Branches, Entry, Node};

/// One master key of a key group.
#[derive(Debug, Clone)]
pub(crate) enum MasterKey {
    Age {
        recipient: String,
        enc: String,
    },
    Pgp {
        fingerprint: String,
        enc: String,
    },
    /// A key source this crate cannot reach (cloud KMS, Vault): its kind and identifier.
    Unsupported {
        kind: &'static str,
        id: String,
    },
}

impl MasterKey {
    /// Decryption order as sops's default: age, then PGP, then the rest.
    pub fn priority(&self) -> u8 {
        match self {
            MasterKey::Age { .. } => 0,
            MasterKey::Pgp { .. } => 1,
            MasterKey::Unsupported { .. } => 2,
        }
    }
}

/// Which values a file encrypts.
#[derive(Debug, Clone)]
pub(crate) enum CryptRule {
    UnencryptedSuffix(String),
    EncryptedSuffix(String),
    UnencryptedRegex(Regex),
    EncryptedRegex(Regex),
    UnencryptedCommentRegex(Regex),
    EncryptedCommentRegex(Regex),
}

#[derive(Debug, Clone)]
pub(crate) struct Metadata {
    pub groups: Vec<Vec<MasterKey>>,
    pub shamir_threshold: usize,
    /// `lastmodified` as Go's RFC 3339 formatting prints it (the MAC's additional data).
    pub last_modified: String,
    pub mac: String,
    pub rule: CryptRule,
    pub mac_only_encrypted: bool,
}

/// Take the `sops` mapping out of every branch (only the first branch's counts), as the
/// YAML and JSON stores do.
pub(crate) fn extract_nested(branches: &mut Branches) -> Result<Metadata, String> {
    parse(&take_nested(branches)?)
}

/// The INI store: a `[sops]` section whose keys are flattened below the top, with newlines
/// escaped as `\n`.
pub(crate) fn extract_ini(branches: &mut Branches) -> Result<Metadata, String> {
    let Node::Map(entries) = take_nested(branches)? else {
        return Err("Found sops entry that is not a mapping".into());
    };
    let flat: Vec<(String, Node)> = entries
        .into_iter()
        .filter_map(|e| match e {
            Entry::Pair(k, Node::Str(s)) => Some((k, Node::Str(s.replace("\\n", "\n")))),
            Entry::Pair(k, v) => Some((k, v)),
            Entry::Comment(_) => None,
        })
        .collect();
    parse(&unflatten(flat)?)
}

fn take_nested(branches: &mut Branches) -> Result<Node, String> {
    let mut found: Option<Node> = None;
    for (bi, branch) in branches.iter_mut().enumerate() {
        let mut i = 0;
        while i < branch.len() {
            let is_sops = matches!(&branch[i], Entry::Pair(k, _) if k == "sops");
            if is_sops {
                let Entry::Pair(_, v) = branch.remove(i) else {
                    continue;
                };
                if bi == 0 {
                    if found.is_some() {
                        return Err("Found duplicate sops entry".into());
                    }
                    if !matches!(v, Node::Map(_)) {
                        return Err("Found sops entry that is not a mapping".into());
                    }
                    found = Some(v);
                }
            } else {
                i += 1;
            }
        }
    }
    found.ok_or_else(|| METADATA_NOT_FOUND.to_string())
}

pub(crate) const METADATA_NOT_FOUND: &str = "sops metadata not found";

/// Take the `sops_*` keys out of a flat branch (dotenv) and unflatten them.
pub(crate) fn extract_flat(branches: &mut Branches) -> Result<Metadata, String> {
    let Some(branch) = branches.first_mut() else {
        return Err(METADATA_NOT_FOUND.into());
    };
    let mut flat: Vec<(String, Node)> = Vec::new();
    let mut i = 0;
    while i < branch.len() {
        let take = matches!(&branch[i], Entry::Pair(k, _) if k.starts_with("sops_"));
        if take {
            if let Entry::Pair(k, v) = branch.remove(i) {
                flat.push((k["sops_".len()..].to_string(), v));
            }
        } else {
            i += 1;
        }
    }
    if flat.is_empty() {
        return Err(METADATA_NOT_FOUND.into());
    }
    parse(&unflatten(flat)?)
}

enum Tok {
    Map(String),
    List(usize),
}

fn tokenize(path: &str) -> Vec<Tok> {
    const MAP: &str = "__map_";
    const LIST: &str = "__list_";
    let mut toks = Vec::new();
    let mut state = 0u8; // 0 normal, 1 map, 2 list
    let mut last = 0usize;
    let mut i = 0usize;
    let finish = |toks: &mut Vec<Tok>, state: u8, last: usize, i: usize| match state {
        0 => toks.push(Tok::Map(path[last..i].to_string())),
        1 => toks.push(Tok::Map(path[last + MAP.len()..i].to_string())),
        _ => toks.push(Tok::List(path[last + LIST.len()..i].parse().unwrap_or(0))),
    };
    while i < path.len() {
        if path[i..].starts_with(MAP) {
            finish(&mut toks, state, last, i);
            last = i;
            state = 1;
            i += MAP.len();
        } else if path[i..].starts_with(LIST) {
            finish(&mut toks, state, last, i);
            last = i;
            state = 2;
            i += LIST.len();
        } else {
            i += path[i..].chars().next().map_or(1, char::len_utf8);
        }
    }
    finish(&mut toks, state, last, i);
    toks
}

enum U {
    Leaf(Node),
    Map(Vec<(String, U)>),
    List(std::collections::BTreeMap<usize, U>),
}

fn place(root: &mut U, toks: &[Tok], value: Node) -> Result<(), String> {
    let Some((first, rest)) = toks.split_first() else {
        *root = U::Leaf(value);
        return Ok(());
    };
    match first {
        Tok::Map(k) => {
            if !matches!(root, U::Map(_)) {
                *root = U::Map(Vec::new());
            }
            let U::Map(m) = root else {
                return Err("metadata key collision".into());
            };
            let idx = match m.iter().position(|(kk, _)| kk == k) {
                Some(i) => i,
                None => {
                    m.push((k.clone(), U::Leaf(Node::Null)));
                    m.len() - 1
                }
            };
            place(&mut m[idx].1, rest, value)
        }
        Tok::List(n) => {
            if !matches!(root, U::List(_)) {
                *root = U::List(Default::default());
            }
            let U::List(l) = root else {
                return Err("metadata key collision".into());
            };
            let slot = l.entry(*n).or_insert(U::Leaf(Node::Null));
            place(slot, rest, value)
        }
    }
}

fn convert(u: U) -> Node {
    match u {
        U::Leaf(n) => n,
        U::Map(m) => Node::Map(
            m.into_iter()
                .map(|(k, v)| Entry::Pair(k, convert(v)))
                .collect(),
        ),
        U::List(l) => Node::Seq(l.into_values().map(convert).collect()),
    }
}

fn unflatten(flat: Vec<(String, Node)>) -> Result<Node, String> {
    let mut root = U::Map(Vec::new());
    for (k, v) in flat {
        place(&mut root, &tokenize(&k), v)?;
    }
    Ok(convert(root))
}

fn text(m: &Node, key: &str) -> String {
    m.get(key).and_then(Node::as_text).unwrap_or_default()
}

fn list<'a>(m: &'a Node, key: &str) -> Vec<&'a Node> {
    match m.get(key) {
        Some(Node::Seq(items)) => items.iter().filter(|n| matches!(n, Node::Map(_))).collect(),
        _ => Vec::new(),
    }
}

fn group_from(m: &Node) -> Vec<MasterKey> {
    let mut keys = Vec::new();
    // the order sops builds a group in
    for k in list(m, "kms") {
        keys.push(MasterKey::Unsupported {
            kind: "AWS KMS",
            id: text(k, "arn"),
        });
    }
    for k in list(m, "gcp_kms") {
        keys.push(MasterKey::Unsupported {
            kind: "GCP KMS",
            id: text(k, "resource_id"),
        });
    }
    for k in list(m, "hckms") {
        keys.push(MasterKey::Unsupported {
            kind: "HuaweiCloud KMS",
            id: text(k, "key_id"),
        });
    }
    for k in list(m, "azure_kv") {
        keys.push(MasterKey::Unsupported {
            kind: "Azure Key Vault",
            id: format!(
                "{}/keys/{}/{}",
                text(k, "vault_url"),
                text(k, "name"),
                text(k, "version")
            ),
        });
    }
    for k in list(m, "hc_vault") {
        keys.push(MasterKey::Unsupported {
            kind: "HashiCorp Vault",
            id: format!(
                "{}/v1/{}/keys/{}",
                text(k, "vault_address"),
                text(k, "engine_path"),
                text(k, "key_name")
            ),
        });
    }
    for k in list(m, "pgp") {
        keys.push(MasterKey::Pgp {
            fingerprint: text(k, "fp"),
            enc: text(k, "enc"),
        });
    }
    for k in list(m, "age") {
        keys.push(MasterKey::Age {
            recipient: text(k, "recipient"),
            enc: text(k, "enc"),
        });
    }
    keys
}

fn weak_bool(n: Option<&Node>) -> Result<bool, String> {
    match n {
        None | Some(Node::Null) => Ok(false),
        Some(Node::Bool(b)) => Ok(*b),
        Some(Node::Int(i)) => Ok(*i != 0),
        Some(Node::Str(s)) => match s.as_str() {
            "" => Ok(false),
            "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
            "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
            _ => Err(format!("cannot parse 'mac_only_encrypted' as bool: {s:?}")),
        },
        Some(_) => Err("'mac_only_encrypted' expected a bool".into()),
    }
}

/// Go's `time.Parse(time.RFC3339, s)` then `Format(time.RFC3339)`: fractions dropped, a zero
/// offset printed as `Z`.
pub(crate) fn normalize_rfc3339(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let bad = || format!("parsing time {s:?} as \"2006-01-02T15:04:05Z07:00\": cannot parse");
    if b.len() < 20 {
        return Err(bad());
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if !(digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && (b[10] == b'T' || b[10] == b't')
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19))
    {
        return Err(bad());
    }
    let mut i = 19;
    if b[i] == b'.' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err(bad());
        }
    }
    let zone = &s[i..];
    let base = format!("{}T{}", &s[..10], &s[11..19]);
    match zone {
        "Z" | "z" => Ok(format!("{base}Z")),
        z if z.len() == 6
            && (z.starts_with('+') || z.starts_with('-'))
            && z.as_bytes()[3] == b':' =>
        {
            if &z[1..] == "00:00" {
                Ok(format!("{base}Z"))
            } else {
                Ok(format!("{base}{z}"))
            }
        }
        _ => Err(bad()),
    }
}

fn parse(m: &Node) -> Result<Metadata, String> {
    let top_keys = [
        "pgp", "kms", "gcp_kms", "hckms", "azure_kv", "hc_vault", "age",
    ];
    let groups = if top_keys.iter().any(|k| !list(m, k).is_empty()) {
        vec![group_from(m)]
    } else {
        let gs = list(m, "key_groups");
        if gs.is_empty() {
            return Err("No keys found in file".into());
        }
        gs.into_iter().map(group_from).collect()
    };
    let shamir_threshold = match m.get("shamir_threshold") {
        Some(Node::Int(i)) if *i >= 0 => *i as usize,
        Some(Node::Str(s)) if !s.is_empty() => s
            .parse()
            .map_err(|_| "invalid shamir_threshold".to_string())?,
        _ => 0,
    };
    let last_modified = normalize_rfc3339(&text(m, "lastmodified"))?;
    let compile = |k: &str, s: &str| Regex::new(s).map_err(|e| format!("invalid {k}: {e}"));
    let mut rules = Vec::new();
    for k in [
        "unencrypted_suffix",
        "encrypted_suffix",
        "unencrypted_regex",
        "encrypted_regex",
        "unencrypted_comment_regex",
        "encrypted_comment_regex",
    ] {
        let v = text(m, k);
        if v.is_empty() {
            continue;
        }
        rules.push(match k {
            "unencrypted_suffix" => CryptRule::UnencryptedSuffix(v),
            "encrypted_suffix" => CryptRule::EncryptedSuffix(v),
            "unencrypted_regex" => CryptRule::UnencryptedRegex(compile(k, &v)?),
            "encrypted_regex" => CryptRule::EncryptedRegex(compile(k, &v)?),
            "unencrypted_comment_regex" => CryptRule::UnencryptedCommentRegex(compile(k, &v)?),
            _ => CryptRule::EncryptedCommentRegex(compile(k, &v)?),
        });
    }
    if rules.len() > 1 {
        return Err("Cannot use more than one of encrypted_suffix, unencrypted_suffix, encrypted_regex, unencrypted_regex, encrypted_comment_regex, or unencrypted_comment_regex in the same file".into());
    }
    let rule = rules
        .pop()
        .unwrap_or_else(|| CryptRule::UnencryptedSuffix("_unencrypted".into()));
    Ok(Metadata {
        groups,
        shamir_threshold,
        last_modified,
        mac: text(m, "mac"),
        rule,
        mac_only_encrypted: weak_bool(m.get("mac_only_encrypted"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_like_go() {
        assert_eq!(
            normalize_rfc3339("2024-01-02T03:04:05Z").unwrap(),
            "2024-01-02T03:04:05Z"
        );
        assert_eq!(
            normalize_rfc3339("2024-01-02T03:04:05.123Z").unwrap(),
            "2024-01-02T03:04:05Z"
        );
        assert_eq!(
            normalize_rfc3339("2024-01-02T03:04:05+00:00").unwrap(),
            "2024-01-02T03:04:05Z"
        );
        assert_eq!(
            normalize_rfc3339("2024-01-02T03:04:05+02:00").unwrap(),
            "2024-01-02T03:04:05+02:00"
        );
        assert!(normalize_rfc3339("yesterday").is_err());
    }

    #[test]
    fn unflattens_dotenv_keys() {
        let n = unflatten(vec![
            ("age__list_0__map_recipient".into(), Node::Str("r0".into())),
            ("age__list_0__map_enc".into(), Node::Str("e0".into())),
            ("age__list_1__map_recipient".into(), Node::Str("r1".into())),
            ("mac".into(), Node::Str("m".into())),
        ])
        .unwrap();
        let ages = list(&n, "age");
        assert_eq!(ages.len(), 2);
        assert_eq!(text(ages[0], "enc"), "e0");
        assert_eq!(text(ages[1], "recipient"), "r1");
        assert_eq!(text(&n, "mac"), "m");
    }
}
