//! ConfigMap and Secret generators, and kustomize's content hash for generated names.

use base64::Engine;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::Error;
use crate::kustfile::{GeneratorArgs, GeneratorOptions};
use crate::resource::{Behavior, Resource};

/// Where generator sources are read from (relative to the kustomization).
pub trait Source {
    /// Read a file, applying load restrictions.
    fn read(&self, rel: &str) -> Result<Vec<u8>, Error>;
}

fn remove_quotes(s: &str) -> &str {
    let b = s.as_bytes();
    if b.len() >= 2 && b[0] == b[b.len() - 1] && (b[0] == b'"' || b[0] == b'\'') {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

fn base_name(p: &str) -> String {
    let t = p.trim_end_matches('/');
    t.rsplit('/').next().unwrap_or(t).to_string()
}

/// Key/value pairs from envs, literals and files, in kustomize's order.
fn pairs(
    src: &dyn Source,
    args: &GeneratorArgs,
    what: &str,
) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let mut envs = args.envs.clone();
    if !args.env.is_empty() {
        envs.push(args.env.clone());
    }
    for e in &envs {
        let content = src.read(e)?;
        let text = String::from_utf8(content)
            .map_err(|_| Error::Build(format!("{what}: env file {e} is not UTF-8")))?;
        for (i, line) in text.lines().enumerate() {
            let line = if i == 0 {
                line.trim_start_matches('\u{feff}')
            } else {
                line
            };
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = match line.split_once('=') {
                Some((k, v)) => (k, v),
                None => (line, ""),
            };
            // kubectl's kustomize does not validate the names; lines with an empty key are skipped
            if k.is_empty() {
                continue;
            }
            out.push((k.to_string(), v.as_bytes().to_vec()));
        }
    }
    for l in &args.literals {
        if l.starts_with('=') || !l.contains('=') {
            return Err(Error::Build(format!(
                "{what}: invalid literal source {l}, expected key=value"
            )));
        }
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        out.push((k.to_string(), remove_quotes(v).as_bytes().to_vec()));
    }
    for f in &args.files {
        let seps = f.matches('=').count();
        let (k, path) = match seps {
            0 => (base_name(f), f.clone()),
            1 if f.starts_with('=') => {
                return Err(Error::Build(format!(
                    "{what}: missing key name for file path in source {f:?}"
                )));
            }
            1 if f.ends_with('=') => {
                return Err(Error::Build(format!(
                    "{what}: missing file path for key name in source {f:?}"
                )));
            }
            1 => {
                let (k, p) = f.split_once('=').unwrap_or(("", ""));
                (k.to_string(), p.to_string())
            }
            _ => {
                return Err(Error::Build(format!(
                    "{what}: source {f:?} key name or file path contains '='"
                )));
            }
        };
        let content = src.read(&path)?;
        out.push((k, content));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (k, _) in &out {
        if !seen.insert(k.clone()) {
            return Err(Error::Build(format!(
                "{what}: configmap {} illegally repeats the key `{k}`",
                args.name
            )));
        }
    }
    Ok(out)
}

/// Make the ConfigMap or Secret a generator entry describes.
pub fn make(
    src: &dyn Source,
    args: &GeneratorArgs,
    opts: &GeneratorOptions,
    secret: bool,
) -> Result<Resource, Error> {
    let kind = if secret { "Secret" } else { "ConfigMap" };
    let what = format!("{kind}Generator '{}'", args.name);
    if args.name.is_empty() {
        return Err(Error::Build(format!(
            "{what}: a configmap or secret generator must have a name"
        )));
    }
    let mut md = Map::new();
    md.insert("name".into(), Value::String(args.name.clone()));
    if !args.namespace.is_empty() {
        md.insert("namespace".into(), Value::String(args.namespace.clone()));
    }
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), json!("v1"));
    obj.insert("kind".into(), json!(kind));
    if secret {
        let t = if args.type_.is_empty() {
            "Opaque"
        } else {
            &args.type_
        };
        obj.insert("type".into(), json!(t));
    }
    let mut data = Map::new();
    let mut binary = Map::new();
    for (k, v) in pairs(src, args, &what)? {
        if secret {
            data.insert(k, Value::String(wrapped_base64(&v)));
        } else {
            match String::from_utf8(v) {
                Ok(s) => {
                    // kustomize holds a multi-line value as a literal block and reads it back:
                    // a block whose first line starts with a tab does not read
                    if s.contains('\n')
                        && s.starts_with('\t')
                        && crate::yaml::emit::block_scalar_allowed_v3(&s)
                    {
                        return Err(Error::Build(format!(
                            "{what}: key {k}: yaml: found a tab character where an \
                             indentation space is expected"
                        )));
                    }
                    data.insert(k, Value::String(s));
                }
                Err(e) => {
                    binary.insert(k, Value::String(wrapped_base64(e.as_bytes())));
                }
            }
        }
    }
    // kustomize creates a Secret's `data` map before filling it (so a Secret without keys
    // has `data: {}`); a ConfigMap's only once a key goes in
    if secret || !data.is_empty() {
        obj.insert("data".into(), Value::Object(data));
    }
    if !binary.is_empty() {
        obj.insert("binaryData".into(), Value::Object(binary));
    }
    if !opts.labels.is_empty() {
        md.insert(
            "labels".into(),
            Value::Object(
                opts.labels
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            ),
        );
    }
    if !opts.annotations.is_empty() {
        md.insert(
            "annotations".into(),
            Value::Object(
                opts.annotations
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            ),
        );
    }
    obj.insert("metadata".into(), Value::Object(md));
    if opts.immutable {
        obj.insert("immutable".into(), Value::Bool(true));
    }
    let mut r = Resource::new(Value::Object(obj));
    r.generated = true;
    r.needs_hash = !opts.disable_name_suffix_hash;
    // kustomize's NewGenerationBehavior: anything but these three is "unspecified", which
    // acts as create
    r.behavior = match args.behavior.as_str() {
        "merge" => Behavior::Merge,
        "replace" => Behavior::Replace,
        _ => Behavior::Create,
    };
    Ok(r)
}

/// Base64 in lines of 70 characters, each ended by a newline once the text reaches 70
/// characters (kustomize's encodeBase64, for Secret data and ConfigMap binaryData).
fn wrapped_base64(v: &[u8]) -> String {
    let enc = base64::engine::general_purpose::STANDARD.encode(v);
    let lines = enc.len() / 70 + 1;
    if lines <= 1 {
        return enc;
    }
    let mut out = String::with_capacity(enc.len() + lines);
    for chunk in enc.as_bytes().chunks(70) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out
}

fn encode_hash(hex: &str) -> String {
    hex.chars()
        .take(10)
        .map(|c| match c {
            '0' => 'g',
            '1' => 'h',
            '3' => 'k',
            'a' => 'm',
            'e' => 't',
            o => o,
        })
        .collect()
}

/// kustomize's name-suffix hash of a resource's content.
pub fn content_hash(obj: &Value) -> Result<String, Error> {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    // kustomize looks the name up with a one-segment lookup of "metadata/name", which never
    // matches: the name always hashes as "".
    let name = Value::String(String::new());
    let field = |f: &str| obj.get(f).cloned().unwrap_or(Value::String(String::new()));
    let encoded = match kind {
        "ConfigMap" => {
            let mut m = Map::new();
            m.insert("kind".into(), json!("ConfigMap"));
            m.insert("name".into(), name);
            m.insert("data".into(), field("data"));
            if obj.get("binaryData").is_some_and(Value::is_object) {
                m.insert("binaryData".into(), field("binaryData"));
            }
            crate::yaml::go_json(&Value::Object(m))
        }
        "Secret" => {
            let mut m = Map::new();
            m.insert("kind".into(), json!("Secret"));
            m.insert("type".into(), field("type"));
            m.insert("name".into(), name);
            m.insert("data".into(), field("data"));
            if obj.get("stringData").is_some_and(Value::is_object) {
                m.insert("stringData".into(), field("stringData"));
            }
            crate::yaml::go_json(&Value::Object(m))
        }
        _ => crate::yaml::go_json(obj),
    };
    let digest = Sha256::digest(encoded.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Ok(encode_hash(&hex))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_of_known_configmap() {
        // `kubectl kustomize` names this generated configmap `test-4h2mbtbbt6`
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "test"}, "data": {"a": "b"}});
        assert_eq!(content_hash(&obj).unwrap(), "4h2mbtbbt6");
    }
}
