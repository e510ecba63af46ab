//! Semantic versions and version constraints as Masterminds/semver v3.4 reads them. One
//! implementation serves every place Flux and Helm use that library: Sprig's `semverCompare`
//! and `semver`, a chart's `kubeVersion`, chart dependency and repository index ranges, and
//! source-controller's semver selection over Git and OCI tags.
//!
//! The rules that matter and differ from other SemVer libraries:
//! - versions are read leniently (`NewVersion`): a `v` prefix, missing minor/patch (`1.2` is
//!   `1.2.0`), leading zeros;
//! - constraints are an OR (`||`) of AND groups separated by commas or spaces, with `=`, `!=`,
//!   `>`, `<`, `>=`/`=>`, `<=`/`=<`, `~`/`~>`, `^`, wildcards (`x`, `X`, `*`, missing parts)
//!   and hyphen ranges (`1.2 - 1.4`);
//! - a pre-release version only satisfies an AND group in which some comparator names a
//!   pre-release (v3.4.0, "handle pre-releases for an and group if one constraint includes
//!   them"; earlier versions checked each comparator on its own).

use std::cmp::Ordering;

/// A version, ordered by SemVer precedence (build metadata ignored).
#[derive(Clone, Debug)]
pub struct Version {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    /// The pre-release, without its `-`; empty for a release.
    pub pre: String,
    /// The build metadata, without its `+`.
    pub meta: String,
    /// The text the version was read from.
    pub original: String,
}

fn parse_num(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl Version {
    /// Reads a version leniently (Masterminds `NewVersion`); the error is its message.
    pub fn parse(s: &str) -> Result<Version, String> {
        let bad = || "Invalid Semantic Version".to_string();
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
        let identifiers_ok = |s: &str| {
            s.split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'))
        };
        if (!pre.is_empty() && !identifiers_ok(&pre))
            || (!meta.is_empty() && !identifiers_ok(&meta))
        {
            return Err(bad());
        }
        Ok(Version {
            major,
            minor,
            patch,
            pre,
            meta,
            original: s.to_string(),
        })
    }

    fn cmp_pre(a: &str, b: &str) -> Ordering {
        match (a.is_empty(), b.is_empty()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Greater,
            (false, true) => return Ordering::Less,
            _ => {}
        }
        let mut pa = a.split('.');
        let mut pb = b.split('.');
        loop {
            let o = match (pa.next(), pb.next()) {
                (None, None) => return Ordering::Equal,
                (None, Some(_)) => return Ordering::Less,
                (Some(_), None) => return Ordering::Greater,
                (Some(x), Some(y)) => match (parse_num(x), parse_num(y)) {
                    (Some(m), Some(n)) => m.cmp(&n),
                    (Some(_), None) => Ordering::Less,
                    (None, Some(_)) => Ordering::Greater,
                    (None, None) => x.cmp(y),
                },
            };
            if o != Ordering::Equal {
                return o;
            }
        }
    }

    /// SemVer precedence: major, minor, patch, then pre-release (a release is greater).
    pub fn compare(&self, o: &Version) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(o.major, o.minor, o.patch))
            .then_with(|| Self::cmp_pre(&self.pre, &o.pre))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.compare(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.compare(other)
    }
}

/// One comparator of an AND group.
#[derive(Clone, Debug)]
struct Comparator {
    op: String,
    v: Version,
    /// Wildcard or missing parts: 0 none, 1 patch, 2 minor and patch, 3 all.
    dirty: u8,
}

fn parse_part(p: Option<&str>, whole: &str) -> Result<(u64, bool), String> {
    match p {
        None | Some("x" | "X" | "*") => Ok((0, true)),
        Some(x) => parse_num(x)
            .map(|n| (n, false))
            .ok_or_else(|| format!("improper constraint: {whole}")),
    }
}

impl Comparator {
    fn parse(s: &str, whole: &str) -> Result<Comparator, String> {
        let s = s.trim();
        const OPS: [&str; 11] = ["!=", ">=", "=>", "<=", "=<", "~>", ">", "<", "=", "~", "^"];
        let (op, rest) = OPS
            .iter()
            .find_map(|o| s.strip_prefix(o).map(|r| (o.to_string(), r)))
            .unwrap_or((String::new(), s));
        let rest = rest.trim();
        let rest = rest.strip_prefix(['v', 'V']).unwrap_or(rest);
        if rest.is_empty() || rest == "*" || rest == "x" || rest == "X" {
            let v = Version::parse("0.0.0")?;
            return Ok(Comparator { op, v, dirty: 3 });
        }
        let (core, pre_meta) = match rest.find(['-', '+']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let parts: Vec<&str> = core.split('.').collect();
        if parts.len() > 3 {
            return Err(format!("improper constraint: {whole}"));
        }
        let (maj, dm) = parse_part(parts.first().copied(), whole)?;
        let (min, dn) = parse_part(parts.get(1).copied(), whole)?;
        let (pat, dp) = parse_part(parts.get(2).copied(), whole)?;
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
            .map_err(|_| format!("improper constraint: {whole}"))?;
        Ok(Comparator { op, v, dirty })
    }

    /// Whether `v` satisfies this comparator; `group_has_pre` says whether the AND group
    /// names a pre-release anywhere (otherwise no pre-release version matches).
    fn check(&self, v: &Version, group_has_pre: bool) -> bool {
        if !v.pre.is_empty() && !group_has_pre {
            return false;
        }
        let c = &self.v;
        let cmp = v.compare(c);
        let same_minor = v.major == c.major && v.minor == c.minor;
        match self.op.as_str() {
            "" | "=" => match self.dirty {
                0 => cmp == Ordering::Equal,
                1 => same_minor,
                2 => v.major == c.major,
                _ => true,
            },
            "!=" => match self.dirty {
                0 => cmp != Ordering::Equal,
                1 => !same_minor,
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
            "<" => cmp == Ordering::Less,
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
                match self.dirty {
                    3 => true,
                    2 => v.major == c.major,
                    _ => same_minor,
                }
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

/// A constraint: an OR of AND groups of comparators.
#[derive(Clone, Debug)]
pub struct Constraints(Vec<Group>);

#[derive(Clone, Debug)]
struct Group {
    comparators: Vec<Comparator>,
    names_pre_release: bool,
}

impl Constraints {
    /// Reads a constraint (Masterminds `NewConstraint`); the error is its message
    /// (`improper constraint: <text>`).
    pub fn parse(s: &str) -> Result<Constraints, String> {
        let mut groups = Vec::new();
        for or in s.split("||") {
            let or = or.trim();
            let mut comparators = Vec::new();
            if let Some((a, b)) = or.split_once(" - ") {
                let mut lo = Comparator::parse(a, s)?;
                let mut hi = Comparator::parse(b, s)?;
                lo.op = ">=".into();
                hi.op = "<=".into();
                comparators.push(lo);
                comparators.push(hi);
            } else {
                // Commas and spaces separate comparators, except a space after a bare
                // operator (`>= 1.2`).
                let mut tokens: Vec<String> = Vec::new();
                for piece in or.split(',') {
                    let mut cur = String::new();
                    for w in piece.split_whitespace() {
                        if !cur.is_empty() && !cur.chars().all(|c| "<>=!~^".contains(c)) {
                            tokens.push(std::mem::take(&mut cur));
                        }
                        cur.push_str(w);
                    }
                    if !cur.is_empty() {
                        tokens.push(cur);
                    }
                }
                if tokens.is_empty() {
                    return Err(format!("improper constraint: {s}"));
                }
                for t in tokens {
                    comparators.push(Comparator::parse(&t, s)?);
                }
            }
            let names_pre_release = comparators.iter().any(|c| !c.v.pre.is_empty());
            groups.push(Group {
                comparators,
                names_pre_release,
            });
        }
        Ok(Constraints(groups))
    }

    /// Whether `v` satisfies the constraint.
    pub fn matches(&self, v: &Version) -> bool {
        self.0.iter().any(|g| {
            g.comparators
                .iter()
                .all(|c| c.check(v, g.names_pre_release))
        })
    }
}

/// Sprig's `semverCompare`: parses both and checks.
pub fn compare(constraint: &str, version: &str) -> Result<bool, String> {
    let c = Constraints::parse(constraint)?;
    let v = Version::parse(version)?;
    Ok(c.matches(&v))
}

/// Helm's `IsCompatibleRange`: false when either does not parse.
pub fn is_compatible_range(constraint: &str, version: &str) -> bool {
    compare(constraint, version).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick<'a>(c: &str, tags: &[&'a str]) -> Vec<&'a str> {
        let c = Constraints::parse(c).unwrap();
        tags.iter()
            .copied()
            .filter(|t| Version::parse(t).is_ok_and(|v| c.matches(&v)))
            .collect()
    }

    #[test]
    fn operators_wildcards_and_ranges() {
        assert!(compare(">=1.19-0", "v1.35.0").unwrap());
        assert!(compare("~1.2", "1.2.9").unwrap());
        assert!(!compare("~1.2", "1.3.0").unwrap());
        assert!(compare("^1.2.3", "1.9.0").unwrap());
        assert!(compare(">= 1.0, < 2.0", "1.5.0").unwrap());
        assert!(compare("1.2.x || >=3", "3.1.0").unwrap());
        assert!(compare("1.2 - 1.4", "1.3.5").unwrap());
        assert!(!compare("^0.2.3", "0.3.0").unwrap());
        assert!(compare("^0.0.3", "0.0.3").unwrap());
        assert!(!compare("^0.0.3", "0.0.4").unwrap());
        let tags = [
            "v1.2.3",
            "1.2.5",
            "v1.3.0",
            "2.0.0",
            "v3.1.0",
            "1.0.0-rc.1",
            "latest",
            "1.2",
        ];
        assert_eq!(
            pick(">=1.0.0 <2.0.0", &tags),
            ["v1.2.3", "1.2.5", "v1.3.0", "1.2"]
        );
        assert_eq!(pick("1.x != 1.2.5", &tags), ["v1.2.3", "v1.3.0", "1.2"]);
        assert_eq!(
            Constraints::parse("not a range").unwrap_err(),
            "improper constraint: not a range"
        );
    }

    #[test]
    fn pre_releases_match_groups_that_name_one() {
        // Checked against helm v4 and helm3's semverCompare (Masterminds v3.4).
        assert!(!compare(">=1.0.0", "1.2.0-beta").unwrap());
        assert!(compare(">=1.0.0-0 <3.0.0", "2.0.0-rc.1").unwrap());
        assert!(compare(">=1.0.0 <3.0.0-0", "2.0.0-rc.1").unwrap());
        assert!(compare("1.0.1-0 - 3", "2.0.0-rc.1").unwrap());
        assert!(!compare(">=5 || >=1.0.0", "2.0.0-rc.1").unwrap());
        let pre = ["1.0.0-rc.1", "2.0.0-rc.1", "2.0.0"];
        assert_eq!(pick(">=1.0.0-0", &pre), pre);
        assert_eq!(pick(">=1.0.0", &pre), ["2.0.0"]);
    }

    #[test]
    fn ordering_is_precedence() {
        let v = |s| Version::parse(s).unwrap();
        assert!(v("v1.2.3") < v("1.10.0"));
        assert!(v("1.0.0-rc.1") < v("1.0.0"));
        assert!(v("1.0.0-rc.2") < v("1.0.0-rc.10"));
        assert!(v("1.0.0-alpha") < v("1.0.0-alpha.1"));
        assert!(v("1.0.0-1") < v("1.0.0-alpha"));
        assert_eq!(v("1.0.0+a"), v("v1.0.0"));
        assert!(Version::parse("1.2.3.4").is_err());
        assert!(Version::parse("latest").is_err());
    }
}
