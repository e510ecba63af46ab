//! SemVer versions and ranges with the leniency of Masterminds/semver (what Flux uses): a `v`
//! prefix, `1.2` meaning `1.2.0`, comma or space AND, `||` OR, `~`, `^`, `x`, hyphen ranges and
//! `!=`. Built on `nodejs-semver`, with `!=` handled here.

use std::cmp::Ordering;

/// A parsed version; ordered by SemVer precedence.
#[derive(Clone, Debug)]
pub struct Version(nodejs_semver::Version);

impl Version {
    /// Parses a tag name leniently; `None` if it is not a version.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let body = s
            .strip_prefix('v')
            .or_else(|| s.strip_prefix('V'))
            .unwrap_or(s);
        let split = body.find(['-', '+']).unwrap_or(body.len());
        let (core, rest) = body.split_at(split);
        let parts: Vec<&str> = core.split('.').collect();
        if parts.is_empty()
            || parts.len() > 3
            || parts
                .iter()
                .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
        {
            return None;
        }
        let mut full = parts.join(".");
        for _ in parts.len()..3 {
            full.push_str(".0");
        }
        full.push_str(rest);
        nodejs_semver::Version::parse(&full).ok().map(Self)
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
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
        self.0.cmp(&other.0)
    }
}

/// One alternative of a constraint: a range and the versions it excludes (`!=`).
#[derive(Clone, Debug)]
struct Alternative {
    range: Option<nodejs_semver::Range>,
    excluded: Vec<Version>,
    /// Every term names a pre-release: only then may a pre-release version match
    /// (Masterminds checks each term: a pre-release never satisfies a term without one).
    prerelease_terms: bool,
}

/// A version constraint.
#[derive(Clone, Debug)]
pub struct Constraint {
    alternatives: Vec<Alternative>,
}

impl Constraint {
    /// Parses a constraint; the error text is what follows upstream's "semver parse error: ".
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.trim().is_empty() {
            return Err(format!("improper constraint: {s}"));
        }
        let mut alternatives = Vec::new();
        for alt in s.split("||") {
            let mut excluded = Vec::new();
            let mut kept: Vec<String> = Vec::new();
            // Terms are separated by commas or spaces; `!=` terms are pulled out.
            let normalized = alt.replace(',', " ");
            let mut tokens = normalized.split_whitespace().peekable();
            while let Some(tok) = tokens.next() {
                if let Some(v) = tok.strip_prefix("!=") {
                    let v = if v.is_empty() {
                        tokens.next().unwrap_or("")
                    } else {
                        v
                    };
                    let ver =
                        Version::parse(v).ok_or_else(|| format!("improper constraint: {s}"))?;
                    excluded.push(ver);
                } else {
                    kept.push(tok.to_string());
                }
            }
            let range = if kept.is_empty() {
                None
            } else {
                Some(
                    nodejs_semver::Range::parse(kept.join(" "))
                        .map_err(|_| format!("improper constraint: {s}"))?,
                )
            };
            let prerelease_terms = !kept.is_empty()
                && kept.iter().filter(|t| t.as_str() != "-").all(|t| {
                    t.trim_start_matches(['<', '>', '=', '~', '^', 'v', 'V'])
                        .contains('-')
                });
            alternatives.push(Alternative {
                range,
                excluded,
                prerelease_terms,
            });
        }
        Ok(Self { alternatives })
    }

    /// True if `v` satisfies the constraint.
    pub fn matches(&self, v: &Version) -> bool {
        self.alternatives.iter().any(|a| {
            let in_range = match &a.range {
                Some(r) if v.0.is_prerelease() => {
                    a.prerelease_terms && r.satisfies_with_prerelease(&v.0, true)
                }
                Some(r) => r.satisfies(&v.0),
                None => !v.0.is_prerelease(),
            };
            in_range && !a.excluded.iter().any(|x| x == v)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick<'a>(c: &str, tags: &[&'a str]) -> Vec<&'a str> {
        let c = Constraint::parse(c).unwrap();
        tags.iter()
            .copied()
            .filter(|t| Version::parse(t).is_some_and(|v| c.matches(&v)))
            .collect()
    }

    #[test]
    fn masterminds_style_ranges() {
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
            vec!["v1.2.3", "1.2.5", "v1.3.0", "1.2"]
        );
        assert_eq!(
            pick(">= 1.0, < 2.0", &tags),
            vec!["v1.2.3", "1.2.5", "v1.3.0", "1.2"]
        );
        assert_eq!(pick("~1.2", &tags), vec!["v1.2.3", "1.2.5", "1.2"]);
        assert_eq!(pick("^1.2.3", &tags), vec!["v1.2.3", "1.2.5", "v1.3.0"]);
        assert_eq!(
            pick(">=1.0.0 <2.0.0 || >=3.0.0", &tags),
            vec!["v1.2.3", "1.2.5", "v1.3.0", "v3.1.0", "1.2"]
        );
        assert_eq!(pick("1.x != 1.2.5", &tags), vec!["v1.2.3", "v1.3.0", "1.2"]);
        assert!(Constraint::parse("not a range").is_err());
        // Pre-releases: only when every term of the alternative names one (Masterminds).
        let pre = ["1.0.0-rc.1", "2.0.0-rc.1", "2.0.0"];
        assert_eq!(pick(">=1.0.0-0", &pre), pre.to_vec());
        assert_eq!(pick(">=1.0.0-0 <3.0.0", &pre), vec!["2.0.0"]);
        assert_eq!(pick(">=1.0.0", &pre), vec!["2.0.0"]);
        assert!(Version::parse("v1.2.3").unwrap() < Version::parse("1.10.0").unwrap());
        assert!(Version::parse("1.0.0-rc.1").unwrap() < Version::parse("1.0.0").unwrap());
    }
}
