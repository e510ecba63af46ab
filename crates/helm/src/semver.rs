//! Semantic versions and constraints with Masterminds/semver v3 semantics (Helm's
//! `semverCompare`, dependency version ranges and `kubeVersion`).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use ferroflux_gotemplate::Value;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    pub pre: String,
    pub meta: String,
    pub original: String,
}

fn parse_num(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl Version {
    /// Masterminds `NewVersion` (lenient: `v` prefix, missing minor/patch).
    pub fn parse(s: &str) -> Result<Version, String> {
        let bad = || "Invalid Semantic Version".to_string();
        let orig = s;
        let t = s.trim();
        let t = t.strip_prefix(['v', 'V']).unwrap_or(t);
        let (t, meta) = match t.split_once('+') {
            Some((a, b)) => (a, b.to_string()),
            None => (t, String::new()),
        };
        let (t, pre) = match t.split_once('-') {
            Some((a, b)) => (a, b.to_string()),
            None => (t, String::new()),
        };
        let parts: Vec<&str> = t.split('.').collect();
        if parts.is_empty() || parts.len() > 3 {
            return Err(bad());
        }
        let major = parse_num(parts[0]).ok_or_else(bad)?;
        let minor = match parts.get(1) {
            Some(p) => parse_num(p).ok_or_else(bad)?,
            None => 0,
        };
        let patch = match parts.get(2) {
            Some(p) => parse_num(p).ok_or_else(bad)?,
            None => 0,
        };
        if !pre.is_empty()
            && !pre
                .split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'))
        {
            return Err(bad());
        }
        Ok(Version {
            major,
            minor,
            patch,
            pre,
            meta,
            original: orig.to_string(),
        })
    }

    fn cmp_pre(a: &str, b: &str) -> Ordering {
        match (a.is_empty(), b.is_empty()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Greater,
            (false, true) => return Ordering::Less,
            _ => {}
        }
        let pa: Vec<&str> = a.split('.').collect();
        let pb: Vec<&str> = b.split('.').collect();
        for i in 0..pa.len().max(pb.len()) {
            match (pa.get(i), pb.get(i)) {
                (None, Some(_)) => return Ordering::Less,
                (Some(_), None) => return Ordering::Greater,
                (Some(x), Some(y)) => {
                    let o = match (parse_num(x), parse_num(y)) {
                        (Some(m), Some(n)) => m.cmp(&n),
                        (Some(_), None) => Ordering::Less,
                        (None, Some(_)) => Ordering::Greater,
                        (None, None) => x.cmp(y),
                    };
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                (None, None) => {}
            }
        }
        Ordering::Equal
    }

    pub fn compare(&self, o: &Version) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(o.major, o.minor, o.patch))
            .then_with(|| Self::cmp_pre(&self.pre, &o.pre))
    }
}

#[derive(Clone, Debug)]
struct Cmp {
    op: String,
    v: Version,
    /// Which parts were wildcards/missing: 0 = none, 1 = patch, 2 = minor+patch, 3 = all.
    dirty: u8,
}

fn parse_part(p: Option<&str>) -> Result<(u64, bool), String> {
    match p {
        None => Ok((0, true)),
        Some(x) if x == "x" || x == "X" || x == "*" => Ok((0, true)),
        Some(x) => parse_num(x)
            .map(|n| (n, false))
            .ok_or_else(|| format!("improper constraint: {x}")),
    }
}

fn parse_cmp(s: &str) -> Result<Cmp, String> {
    let s = s.trim();
    let ops = ["!=", ">=", "=>", "<=", "=<", "~>", ">", "<", "=", "~", "^"];
    let (op, rest) = ops
        .iter()
        .find_map(|o| s.strip_prefix(o).map(|r| (o.to_string(), r)))
        .unwrap_or((String::new(), s));
    let rest = rest.trim();
    let rest = rest.strip_prefix(['v', 'V']).unwrap_or(rest);
    if rest.is_empty() || rest == "*" || rest == "x" || rest == "X" {
        return Ok(Cmp {
            op,
            v: Version::parse("0.0.0").map_err(|e| e.to_string())?,
            dirty: 3,
        });
    }
    let (core, pre_meta) = match rest.find(['-', '+']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() > 3 {
        return Err(format!("improper constraint: {s}"));
    }
    let (maj, dm) = parse_part(parts.first().copied())?;
    let (min, dn) = parse_part(parts.get(1).copied())?;
    let (pat, dp) = parse_part(parts.get(2).copied())?;
    let dirty = if dm {
        3
    } else if dn {
        2
    } else if dp {
        1
    } else {
        0
    };
    let v = Version::parse(&format!("{maj}.{min}.{pat}{pre_meta}"))
        .map_err(|_| format!("improper constraint: {s}"))?;
    Ok(Cmp { op, v, dirty })
}

impl Cmp {
    fn check(&self, v: &Version) -> bool {
        // Pre-releases only match constraints that name a pre-release.
        if !v.pre.is_empty() && self.v.pre.is_empty() {
            return false;
        }
        let c = &self.v;
        let cmp = v.compare(c);
        match self.op.as_str() {
            "" | "=" => match self.dirty {
                0 => cmp == Ordering::Equal,
                1 => v.major == c.major && v.minor == c.minor,
                2 => v.major == c.major,
                _ => true,
            },
            "!=" => match self.dirty {
                0 => cmp != Ordering::Equal,
                1 => !(v.major == c.major && v.minor == c.minor),
                2 => v.major != c.major,
                _ => false,
            },
            ">" => match self.dirty {
                0 => cmp == Ordering::Greater,
                1 => (v.major, v.minor) > (c.major, c.minor),
                2 => v.major > c.major,
                _ => false,
            },
            ">=" | "=>" => cmp != Ordering::Less,
            "<" => match self.dirty {
                0 | 3 => cmp == Ordering::Less,
                _ => cmp == Ordering::Less,
            },
            "<=" | "=<" => match self.dirty {
                0 => cmp != Ordering::Greater,
                1 => (v.major, v.minor) <= (c.major, c.minor),
                2 => v.major <= c.major,
                _ => true,
            },
            "~" | "~>" => {
                if cmp == Ordering::Less {
                    return false;
                }
                if self.dirty >= 3 {
                    return true;
                }
                if self.dirty == 2 {
                    return v.major == c.major;
                }
                v.major == c.major && v.minor == c.minor
            }
            "^" => {
                if cmp == Ordering::Less {
                    return false;
                }
                if self.dirty >= 3 {
                    return true;
                }
                if c.major > 0 || self.dirty == 2 {
                    return v.major == c.major;
                }
                if c.minor > 0 || self.dirty == 1 {
                    return v.major == 0 && v.minor == c.minor;
                }
                v.major == 0 && v.minor == 0 && v.patch == c.patch
            }
            _ => false,
        }
    }
}

/// A parsed constraint: OR of AND groups.
pub struct Constraints(Vec<Vec<Cmp>>);

impl Constraints {
    pub fn parse(s: &str) -> Result<Constraints, String> {
        let mut groups = Vec::new();
        for or in s.split("||") {
            let or = or.trim();
            let mut cmps = Vec::new();
            // hyphen ranges: "1.2 - 1.4"
            if let Some((a, b)) = or.split_once(" - ") {
                let lo = parse_cmp(a)?;
                let hi = parse_cmp(b)?;
                cmps.push(Cmp {
                    op: ">=".into(),
                    ..lo
                });
                cmps.push(Cmp {
                    op: "<=".into(),
                    ..hi
                });
                groups.push(cmps);
                continue;
            }
            // split on commas and on spaces that separate comparators (not after an operator)
            let mut toks: Vec<String> = Vec::new();
            for part in or.split(',') {
                let mut cur = String::new();
                for w in part.split_whitespace() {
                    if !cur.is_empty() && !cur.chars().all(|c| "<>=!~^".contains(c)) {
                        toks.push(std::mem::take(&mut cur));
                    }
                    cur.push_str(w);
                }
                if !cur.is_empty() {
                    toks.push(cur);
                }
            }
            if toks.is_empty() {
                return Err(format!("improper constraint: {s}"));
            }
            for t in toks {
                cmps.push(parse_cmp(&t)?);
            }
            groups.push(cmps);
        }
        Ok(Constraints(groups))
    }

    pub fn check(&self, v: &Version) -> bool {
        self.0.iter().any(|g| g.iter().all(|c| c.check(v)))
    }
}

/// Sprig `semverCompare`.
pub fn compare(constraint: &str, version: &str) -> Result<bool, String> {
    let c = Constraints::parse(constraint)?;
    let v = Version::parse(version)?;
    Ok(c.check(&v))
}

/// Helm's `IsCompatibleRange`.
pub fn is_compatible_range(constraint: &str, version: &str) -> bool {
    let Ok(v) = Version::parse(version) else {
        return false;
    };
    match Constraints::parse(constraint) {
        Ok(c) => c.check(&v),
        Err(_) => false,
    }
}

/// Sprig `semver`: a version struct.
pub fn version_value(s: &str) -> Result<Value, String> {
    let v = Version::parse(s)?;
    let mut m = BTreeMap::new();
    m.insert("Major".into(), Value::Int64(v.major as i64));
    m.insert("Minor".into(), Value::Int64(v.minor as i64));
    m.insert("Patch".into(), Value::Int64(v.patch as i64));
    m.insert("Prerelease".into(), Value::str(v.pre.as_str()));
    m.insert("Metadata".into(), Value::str(v.meta.as_str()));
    m.insert("Original".into(), Value::str(v.original.as_str()));
    Ok(Value::map(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constraints() {
        assert!(compare(">=1.19-0", "v1.35.0").unwrap());
        assert!(compare("~1.2", "1.2.9").unwrap());
        assert!(!compare("~1.2", "1.3.0").unwrap());
        assert!(compare("^1.2.3", "1.9.0").unwrap());
        assert!(compare(">= 1.0, < 2.0", "1.5.0").unwrap());
        assert!(compare("1.2.x || >=3", "3.1.0").unwrap());
        assert!(!compare(">=1.0.0", "1.2.0-beta").unwrap());
        assert!(compare("1.2 - 1.4", "1.3.5").unwrap());
    }
}
