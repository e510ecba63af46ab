//! Charts in OCI registries: which tags are chart versions and which one a version range
//! picks, as Helm's registry client and source-controller's OCI chart repository decide.
//!
//! Helm stores a chart version `1.2.3+build` under the tag `1.2.3_build` (`+` is not allowed in
//! tags). Listing tags, Helm's client reads `_` back as `+`, keeps only the tags that are strict
//! SemVer versions and sorts them newest first; source-controller then takes an exact match of
//! the requested version, else the highest version satisfying it as a range (`*` when empty).
//! Pulling, `+` becomes `_` again ([`tag_for_version`]).

use std::cmp::Ordering;

use crate::semver::{Constraints, Version};

/// The manifest config media type of a Helm chart.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.helm.config.v1+json";
/// The chart layer media type.
pub const CHART_LAYER_MEDIA_TYPE: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
/// The chart layer media type of Helm before 3.8 (still accepted, with a warning).
pub const LEGACY_CHART_LAYER_MEDIA_TYPE: &str = "application/tar+gzip";
/// The provenance layer media type.
pub const PROV_LAYER_MEDIA_TYPE: &str = "application/vnd.cncf.helm.chart.provenance.v1.prov";

fn numeric(p: &str) -> bool {
    !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())
}

fn identifiers_ok(s: &str, no_leading_zero: bool) -> bool {
    s.split('.').all(|id| {
        !id.is_empty()
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !(no_leading_zero && numeric(id) && id.len() > 1 && id.starts_with('0'))
    })
}

/// Masterminds `StrictNewVersion`: exactly `MAJOR.MINOR.PATCH[-PRE][+META]`, no `v` prefix, no
/// leading zeros in numbers.
pub fn strict_version(s: &str) -> Option<Version> {
    let parts: Vec<&str> = s.splitn(3, '.').collect();
    if parts.len() != 3 {
        return None;
    }
    let (rest, meta) = match parts[2].split_once('+') {
        Some((r, m)) => (r, Some(m)),
        None => (parts[2], None),
    };
    let (patch, pre) = match rest.split_once('-') {
        Some((p, pre)) => (p, Some(pre)),
        None => (rest, None),
    };
    if meta.is_some_and(|m| !identifiers_ok(m, false))
        || pre.is_some_and(|p| !identifiers_ok(p, true))
    {
        return None;
    }
    for n in [parts[0], parts[1], patch] {
        if !numeric(n) || (n.len() > 1 && n.starts_with('0')) {
            return None;
        }
    }
    Version::parse(s).ok()
}

/// fluxcd/pkg's `ParseVersion`: three dot-separated parts, then Masterminds' lenient parse (a
/// `v` prefix and leading zeros allowed). A version this accepts is pulled as is, without
/// listing tags.
pub fn concrete_version(s: &str) -> Option<Version> {
    if s.splitn(3, '.').count() != 3 {
        return None;
    }
    Version::parse(s).ok()
}

/// Helm's registry `Tags`: the tags that are chart versions (`_` read as `+`), newest first.
pub fn chart_versions(tags: &[String]) -> Vec<String> {
    let mut versions: Vec<Version> = tags
        .iter()
        .filter_map(|t| strict_version(&t.replace('_', "+")))
        .collect();
    // Go's sort.Sort is not stable; equal versions (differing only in metadata) keep the
    // listing order here.
    versions.sort_by(|a, b| b.compare(a));
    versions.into_iter().map(|v| v.original).collect()
}

/// Why no version was picked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatchError {
    #[error("{0}")]
    Constraint(String),
    #[error("could not locate a version matching provided version string {0}")]
    NoMatch(String),
}

/// source-controller's `getLastMatchingVersionOrConstraint` over [`chart_versions`]: the
/// version itself when listed, else the highest version satisfying `version` as a range.
pub fn match_version(versions: &[String], version: &str) -> Result<String, MatchError> {
    if !version.is_empty()
        && let Some(v) = versions.iter().find(|v| *v == version)
    {
        return Ok(v.clone());
    }
    let range = if version.is_empty() || version == "*" {
        "*"
    } else {
        version
    };
    let constraint = Constraints::parse(range).map_err(MatchError::Constraint)?;
    let mut best: Option<Version> = None;
    for v in versions {
        let Some(parsed) = concrete_version(v) else {
            continue;
        };
        if !constraint.matches(&parsed) {
            continue;
        }
        if best
            .as_ref()
            .is_none_or(|b| parsed.compare(b) == Ordering::Greater)
        {
            best = Some(parsed);
        }
    }
    best.map(|v| v.original)
        .ok_or_else(|| MatchError::NoMatch(version.to_string()))
}

/// The tag a chart version is stored under: `+` written as `_`.
pub fn tag_for_version(version: &str) -> String {
    version.replace('+', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn tags_become_versions_as_helm_lists_them() {
        let tags = s(&[
            "latest",
            "1.0.0",
            "v1.1.0",
            "1.2",
            "01.3.0",
            "1.4.0_build.7",
            "2.0.0-rc.1",
            "2.0.0-01",
            "sha256-abc.sig",
            "1.10.0",
        ]);
        assert_eq!(
            chart_versions(&tags),
            s(&["2.0.0-rc.1", "1.10.0", "1.4.0+build.7", "1.0.0"])
        );
    }

    #[test]
    fn ranges_pick_the_highest_match() {
        let versions = chart_versions(&s(&[
            "1.0.0",
            "1.1.0",
            "1.2.0-rc.1",
            "1.10.0",
            "2.0.0",
            "2.1.0_meta",
            "3.0.0-beta.1",
        ]));
        let pick = |r: &str| match_version(&versions, r);
        assert_eq!(pick("").unwrap(), "2.1.0+meta");
        assert_eq!(pick("*").unwrap(), "2.1.0+meta");
        assert_eq!(pick("1.x").unwrap(), "1.10.0");
        assert_eq!(pick("~1.1").unwrap(), "1.1.0");
        assert_eq!(pick(">=1.2.0-0 <1.3.0").unwrap(), "1.2.0-rc.1");
        assert_eq!(pick("2.1.0+meta").unwrap(), "2.1.0+meta");
        assert_eq!(pick(">=3.0.0-0").unwrap(), "3.0.0-beta.1");
        assert_eq!(
            pick("~4").unwrap_err(),
            MatchError::NoMatch("~4".to_string())
        );
        assert!(matches!(
            pick("not a range"),
            Err(MatchError::Constraint(_))
        ));
        assert_eq!(tag_for_version("2.1.0+meta"), "2.1.0_meta");
    }

    #[test]
    fn concrete_versions_skip_the_listing() {
        assert!(concrete_version("1.2.3").is_some());
        assert!(concrete_version("v1.2.3-rc.1").is_some());
        assert!(concrete_version("1.2").is_none());
        assert!(concrete_version(">=1.2.3").is_none());
        assert!(concrete_version("*").is_none());
    }
}
