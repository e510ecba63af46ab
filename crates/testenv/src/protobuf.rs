//! Just enough of the Kubernetes protobuf encoding to accept what `kubectl create namespace |
//! configmap | secret | serviceaccount` send (kubectl's typed commands write protobuf) and the
//! DeleteOptions of typed deletes (Helm's release storage deletes its Secrets that way).
//! Other kinds sent as protobuf are refused with 415.

use base64::Engine;
use serde_json::{Map, Value, json};

#[derive(Debug)]
enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, String> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos).ok_or("truncated varint")?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("varint too long".into())
}

fn fields(buf: &[u8]) -> Result<Vec<(u64, Wire<'_>)>, String> {
    let mut pos = 0;
    let mut out = vec![];
    while pos < buf.len() {
        let key = varint(buf, &mut pos)?;
        let (field, wire) = (key >> 3, key & 7);
        let w = match wire {
            0 => Wire::Varint(varint(buf, &mut pos)?),
            2 => {
                let len = usize::try_from(varint(buf, &mut pos)?).map_err(|e| e.to_string())?;
                let end = pos
                    .checked_add(len)
                    .filter(|e| *e <= buf.len())
                    .ok_or("truncated field")?;
                let b = &buf[pos..end];
                pos = end;
                Wire::Bytes(b)
            }
            1 => {
                pos += 8;
                Wire::Fixed
            }
            5 => {
                pos += 4;
                Wire::Fixed
            }
            other => return Err(format!("unsupported wire type {other}")),
        };
        out.push((field, w));
    }
    Ok(out)
}

fn string(b: &[u8]) -> Result<String, String> {
    String::from_utf8(b.to_vec()).map_err(|e| e.to_string())
}

/// A `map<string, string|bytes>` entry (key = 1, value = 2).
fn map_entry(b: &[u8], bytes_value: bool) -> Result<(String, Value), String> {
    let (mut k, mut v) = (String::new(), Value::String(String::new()));
    for (f, w) in fields(b)? {
        match (f, w) {
            (1, Wire::Bytes(x)) => k = string(x)?,
            (2, Wire::Bytes(x)) if bytes_value => {
                v = json!(base64::engine::general_purpose::STANDARD.encode(x))
            }
            (2, Wire::Bytes(x)) => v = json!(string(x)?),
            _ => {}
        }
    }
    Ok((k, v))
}

fn insert_map(obj: &mut Map<String, Value>, key: &str, entry: (String, Value)) {
    let m = obj.entry(key).or_insert_with(|| json!({}));
    if let Some(m) = m.as_object_mut() {
        m.insert(entry.0, entry.1);
    }
}

fn object_meta(b: &[u8]) -> Result<Value, String> {
    let mut m = Map::new();
    for (f, w) in fields(b)? {
        match (f, w) {
            (1, Wire::Bytes(x)) => {
                m.insert("name".into(), json!(string(x)?));
            }
            (2, Wire::Bytes(x)) => {
                m.insert("generateName".into(), json!(string(x)?));
            }
            (3, Wire::Bytes(x)) => {
                m.insert("namespace".into(), json!(string(x)?));
            }
            (6, Wire::Bytes(x)) => {
                m.insert("resourceVersion".into(), json!(string(x)?));
            }
            (11, Wire::Bytes(x)) => insert_map(&mut m, "labels", map_entry(x, false)?),
            (12, Wire::Bytes(x)) => insert_map(&mut m, "annotations", map_entry(x, false)?),
            (13, Wire::Bytes(x)) => {
                let mut r = Map::new();
                for (rf, rw) in fields(x)? {
                    match (rf, rw) {
                        (1, Wire::Bytes(v)) => {
                            r.insert("kind".into(), json!(string(v)?));
                        }
                        (3, Wire::Bytes(v)) => {
                            r.insert("name".into(), json!(string(v)?));
                        }
                        (4, Wire::Bytes(v)) => {
                            r.insert("uid".into(), json!(string(v)?));
                        }
                        (5, Wire::Bytes(v)) => {
                            r.insert("apiVersion".into(), json!(string(v)?));
                        }
                        (6, Wire::Varint(v)) => {
                            r.insert("controller".into(), json!(v != 0));
                        }
                        (7, Wire::Varint(v)) => {
                            r.insert("blockOwnerDeletion".into(), json!(v != 0));
                        }
                        _ => {}
                    }
                }
                let refs = m.entry("ownerReferences").or_insert_with(|| json!([]));
                if let Some(a) = refs.as_array_mut() {
                    a.push(Value::Object(r));
                }
            }
            (14, Wire::Bytes(x)) => {
                let fs = m.entry("finalizers").or_insert_with(|| json!([]));
                if let Some(a) = fs.as_array_mut() {
                    a.push(json!(string(x)?));
                }
            }
            _ => {}
        }
    }
    Ok(Value::Object(m))
}

/// Decodes a `k8s\0`-prefixed protobuf body into JSON, for the kinds listed above.
pub fn decode(body: &[u8]) -> Result<Value, String> {
    let raw = body
        .strip_prefix(b"k8s\0")
        .ok_or("missing k8s protobuf magic")?;
    let (mut api_version, mut kind, mut inner) = (String::new(), String::new(), &[][..]);
    for (f, w) in fields(raw)? {
        match (f, w) {
            (1, Wire::Bytes(tm)) => {
                for (tf, tw) in fields(tm)? {
                    match (tf, tw) {
                        (1, Wire::Bytes(v)) => api_version = string(v)?,
                        (2, Wire::Bytes(v)) => kind = string(v)?,
                        _ => {}
                    }
                }
            }
            (2, Wire::Bytes(r)) => inner = r,
            _ => {}
        }
    }
    let mut obj = Map::new();
    obj.insert("apiVersion".into(), json!(api_version));
    obj.insert("kind".into(), json!(kind));
    if kind == "DeleteOptions" && matches!(api_version.as_str(), "v1" | "meta.k8s.io/v1") {
        return delete_options(inner, obj);
    }
    let supported = api_version == "v1"
        && matches!(
            kind.as_str(),
            "Namespace" | "ConfigMap" | "Secret" | "ServiceAccount"
        );
    if !supported {
        return Err(format!(
            "{api_version} {kind} in protobuf is not supported by testenv"
        ));
    }
    for (f, w) in fields(inner)? {
        match (kind.as_str(), f, w) {
            (_, 1, Wire::Bytes(x)) => {
                obj.insert("metadata".into(), object_meta(x)?);
            }
            ("ConfigMap", 2, Wire::Bytes(x)) => insert_map(&mut obj, "data", map_entry(x, false)?),
            ("ConfigMap", 3, Wire::Bytes(x)) => {
                insert_map(&mut obj, "binaryData", map_entry(x, true)?)
            }
            ("ConfigMap", 4, Wire::Varint(v)) | ("Secret", 5, Wire::Varint(v)) => {
                obj.insert("immutable".into(), json!(v != 0));
            }
            ("Secret", 2, Wire::Bytes(x)) => insert_map(&mut obj, "data", map_entry(x, true)?),
            ("Secret", 3, Wire::Bytes(x)) => {
                obj.insert("type".into(), json!(string(x)?));
            }
            ("Secret", 4, Wire::Bytes(x)) => {
                insert_map(&mut obj, "stringData", map_entry(x, false)?)
            }
            ("ServiceAccount", 4, Wire::Varint(v)) => {
                obj.insert("automountServiceAccountToken".into(), json!(v != 0));
            }
            _ => {}
        }
    }
    Ok(Value::Object(obj))
}

/// `metav1.DeleteOptions` (gracePeriodSeconds = 1, preconditions = 2, orphanDependents = 3,
/// propagationPolicy = 4, dryRun = 5).
fn delete_options(b: &[u8], mut obj: Map<String, Value>) -> Result<Value, String> {
    for (f, w) in fields(b)? {
        match (f, w) {
            (1, Wire::Varint(v)) => {
                obj.insert("gracePeriodSeconds".into(), json!(v as i64));
            }
            (2, Wire::Bytes(x)) => {
                let mut p = Map::new();
                for (pf, pw) in fields(x)? {
                    match (pf, pw) {
                        (1, Wire::Bytes(v)) => {
                            p.insert("uid".into(), json!(string(v)?));
                        }
                        (2, Wire::Bytes(v)) => {
                            p.insert("resourceVersion".into(), json!(string(v)?));
                        }
                        _ => {}
                    }
                }
                obj.insert("preconditions".into(), Value::Object(p));
            }
            (3, Wire::Varint(v)) => {
                obj.insert("orphanDependents".into(), json!(v != 0));
            }
            (4, Wire::Bytes(x)) => {
                obj.insert("propagationPolicy".into(), json!(string(x)?));
            }
            (5, Wire::Bytes(x)) => {
                let d = obj.entry("dryRun").or_insert_with(|| json!([]));
                if let Some(a) = d.as_array_mut() {
                    a.push(json!(string(x)?));
                }
            }
            _ => {}
        }
    }
    Ok(Value::Object(obj))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(n: u64, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![((n << 3) | 2) as u8, payload.len() as u8];
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn decodes_a_configmap() {
        let tm = [field(1, b"v1"), field(2, b"ConfigMap")].concat();
        let meta = [
            field(1, b"cm"),
            field(11, &[field(1, b"a"), field(2, b"b")].concat()),
        ]
        .concat();
        let cm = [
            field(1, &meta),
            field(2, &[field(1, b"k"), field(2, b"v")].concat()),
        ]
        .concat();
        let mut body = b"k8s\0".to_vec();
        body.extend([field(1, &tm), field(2, &cm)].concat());
        let v = decode(&body).unwrap();
        assert_eq!(
            v,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm", "labels": {"a": "b"}}, "data": {"k": "v"}})
        );
        assert!(decode(b"k8s\0\x0a\x0d\x0a\x07apps/v1\x12\x02XX").is_err());
    }

    #[test]
    fn decodes_delete_options() {
        let tm = [field(1, b"v1"), field(2, b"DeleteOptions")].concat();
        let pre = [field(1, b"u-1"), field(2, b"42")].concat();
        let opts = [
            vec![0x08, 0x05],
            field(2, &pre),
            field(4, b"Foreground"),
            field(5, b"All"),
        ]
        .concat();
        let mut body = b"k8s\0".to_vec();
        body.extend([field(1, &tm), field(2, &opts)].concat());
        assert_eq!(
            decode(&body).unwrap(),
            json!({"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 5,
                   "preconditions": {"uid": "u-1", "resourceVersion": "42"},
                   "propagationPolicy": "Foreground", "dryRun": ["All"]})
        );
        // an empty DeleteOptions (what Helm sends)
        let mut body = b"k8s\0".to_vec();
        body.extend([field(1, &tm), field(2, b"")].concat());
        assert_eq!(
            decode(&body).unwrap(),
            json!({"apiVersion": "v1", "kind": "DeleteOptions"})
        );
    }
}
