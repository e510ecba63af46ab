//! Sprig's `urlParse`/`urlJoin` over a parser with Go `net/url` semantics for common URLs.

use std::collections::BTreeMap;

use ferroflux_gotemplate::Value;

fn unescape(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = s
                .get(i + 1..i + 3)
                .ok_or_else(|| format!("invalid URL escape {:?}", &s[i..]))?;
            let v =
                u8::from_str_radix(h, 16).map_err(|_| format!("invalid URL escape \"%{h}\""))?;
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn escape_path(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric() || b"-_.~/:@!$&'()*+,;=".contains(&b);
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn escape_fragment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric() || b"-_.~/:@!$&'()*+,;=?".contains(&b);
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `urlParse`: scheme, host, hostname, path, query, opaque, fragment, userinfo.
pub fn parse(raw: &str) -> Result<Value, String> {
    let (rest, fragment) = match raw.split_once('#') {
        Some((a, f)) => (
            a,
            unescape(f).map_err(|e| format!("unable to parse url: parse {raw:?}: {e}"))?,
        ),
        None => (raw, String::new()),
    };
    let mut scheme = String::new();
    let mut rest = rest.to_string();
    if let Some(i) = rest.find(':') {
        let cand = &rest[..i];
        if !cand.is_empty()
            && cand.as_bytes()[0].is_ascii_alphabetic()
            && cand
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(&c))
        {
            scheme = cand.to_lowercase();
            rest = rest[i + 1..].to_string();
        } else if i == 0 {
            return Err(format!(
                "unable to parse url: parse {raw:?}: missing protocol scheme"
            ));
        }
    }
    let (rest, query) = match rest.split_once('?') {
        Some((a, q)) => (a.to_string(), q.to_string()),
        None => (rest, String::new()),
    };
    let mut opaque = String::new();
    let mut host = String::new();
    let mut userinfo = String::new();
    let mut path = String::new();
    if !scheme.is_empty() && !rest.starts_with('/') {
        opaque = rest;
    } else if let Some(r) = rest.strip_prefix("//") {
        let (auth, p) = match r.find('/') {
            Some(i) => (&r[..i], &r[i..]),
            None => (r, ""),
        };
        match auth.rsplit_once('@') {
            Some((u, h)) => {
                userinfo = u.to_string();
                host = h.to_string();
            }
            None => host = auth.to_string(),
        }
        path = unescape(p).map_err(|e| format!("unable to parse url: parse {raw:?}: {e}"))?;
    } else {
        path = unescape(&rest).map_err(|e| format!("unable to parse url: parse {raw:?}: {e}"))?;
    }
    let hostname = if host.starts_with('[') {
        host.split(']')
            .next()
            .unwrap_or("")
            .trim_start_matches('[')
            .to_string()
    } else {
        host.split(':').next().unwrap_or("").to_string()
    };
    let mut m = BTreeMap::new();
    m.insert("scheme".to_string(), Value::str(scheme));
    m.insert("host".to_string(), Value::str(host));
    m.insert("hostname".to_string(), Value::str(hostname));
    m.insert("path".to_string(), Value::str(path));
    m.insert("query".to_string(), Value::str(query));
    m.insert("opaque".to_string(), Value::str(opaque));
    m.insert("fragment".to_string(), Value::str(fragment));
    m.insert("userinfo".to_string(), Value::str(userinfo));
    Ok(Value::map(m))
}

/// `urlJoin`: Go's `URL.String` of the parts.
pub fn join(d: &BTreeMap<String, Value>) -> String {
    let get = |k: &str| d.get(k).map(crate::sprig::strval).unwrap_or_default();
    let (scheme, host, path, query, opaque, fragment, userinfo) = (
        get("scheme"),
        get("host"),
        get("path"),
        get("query"),
        get("opaque"),
        get("fragment"),
        get("userinfo"),
    );
    let mut out = String::new();
    if !scheme.is_empty() {
        out.push_str(&scheme);
        out.push(':');
    }
    if !opaque.is_empty() {
        out.push_str(&opaque);
    } else {
        if !scheme.is_empty() || !host.is_empty() || !userinfo.is_empty() {
            if !host.is_empty() || !path.is_empty() || !userinfo.is_empty() {
                out.push_str("//");
            }
            if !userinfo.is_empty() {
                out.push_str(&userinfo);
                out.push('@');
            }
            out.push_str(&host);
        }
        if !path.is_empty() && !path.starts_with('/') && !host.is_empty() {
            out.push('/');
        }
        out.push_str(&escape_path(&path));
    }
    if !query.is_empty() {
        out.push('?');
        out.push_str(&query);
    }
    if !fragment.is_empty() {
        out.push('#');
        out.push_str(&escape_fragment(&fragment));
    }
    out
}
