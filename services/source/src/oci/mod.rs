//! OCI registries for OCIRepository. The registry layer (repository URLs, references, the
//! client, credentials, the artifact format) lives in the `ferroflux-oci` crate and is
//! re-exported here; this module adds what only the reconciler needs: SemVer selection over
//! tags (with source-controller's Masterminds-style ranges) and cosign verification.

pub mod cosign;
pub mod layer;

pub use ferroflux_oci::*;

use ferroflux_semver::{Constraints, Version};

/// Helm charts map SemVer `+` to `_` in OCI tags (`+` is not allowed in tags); upstream reads
/// `_` as `+` when the layer selector asks for Helm chart content.
pub fn tag_to_semver(tag: &str, media_type: &str) -> String {
    if media_type == HELM_CHART_CONTENT_MEDIA_TYPE {
        tag.replace('_', "+")
    } else {
        tag.to_string()
    }
}

/// A tag that is a strict SemVer version (three numeric parts, no leading zeros, an optional
/// `v` prefix), as fluxcd/pkg/version's ParseVersion accepts.
pub fn strict_version(tag: &str) -> Option<Version> {
    let body = tag.strip_prefix('v').unwrap_or(tag);
    let end = body.find(['-', '+']).unwrap_or(body.len());
    let core: Vec<&str> = body[..end].split('.').collect();
    if core.len() != 3
        || core.iter().any(|p| {
            p.is_empty()
                || !p.bytes().all(|b| b.is_ascii_digit())
                || (p.len() > 1 && p.starts_with('0'))
        })
    {
        return None;
    }
    let rest = &body[end..];
    if rest == "-" || rest == "+" || rest.ends_with('.') || rest.contains("..") {
        return None;
    }
    Version::parse(body).ok()
}

/// Picks the highest tag matching `range` among `tags` (those matching `filter`, a regular
/// expression, when given). Errors carry upstream's words.
pub fn select_semver_tag(
    tags: &[String],
    range: &str,
    filter: Option<&str>,
    media_type: &str,
) -> Result<String, String> {
    let filter = match filter.filter(|f| !f.is_empty()) {
        Some(f) => Some(regex::Regex::new(f).map_err(|e| one_line(&e.to_string()))?),
        None => None,
    };
    let constraint =
        Constraints::parse(range).map_err(|e| format!("semver '{range}' parse error: {e}"))?;
    let mut best: Option<(Version, &String)> = None;
    for tag in tags {
        if filter.as_ref().is_some_and(|re| !re.is_match(tag)) {
            continue;
        }
        let Some(v) = strict_version(&tag_to_semver(tag, media_type)) else {
            continue;
        };
        if !constraint.matches(&v) {
            continue;
        }
        if best.as_ref().is_none_or(|(b, _)| v > *b) {
            best = Some((v, tag));
        }
    }
    best.map(|(_, t)| t.clone())
        .ok_or_else(|| format!("no match found for semver: {range}"))
}

fn one_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_selection_with_filter_and_helm_tags() {
        let tags: Vec<String> = [
            "latest",
            "6.0.0",
            "6.1.0",
            "6.1.1-rc.1",
            "v6.2.0",
            "7.0.0",
            "6.3",
            "06.4.0",
            "6.1.5-dev",
            "6.1.4_build.1",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(select_semver_tag(&tags, "6.x", None, "").unwrap(), "v6.2.0");
        assert_eq!(
            select_semver_tag(&tags, ">=6.0.0", None, "").unwrap(),
            "7.0.0"
        );
        assert_eq!(
            select_semver_tag(&tags, ">=6.1.0-0", Some(".*-dev$"), "").unwrap(),
            "6.1.5-dev"
        );
        assert_eq!(
            select_semver_tag(&tags, "~6.1.0", None, "").unwrap(),
            "6.1.0",
            "6.1.4_build.1 is not a version for plain artifacts"
        );
        assert_eq!(
            select_semver_tag(&tags, "~6.1.0", None, HELM_CHART_CONTENT_MEDIA_TYPE).unwrap(),
            "6.1.4_build.1"
        );
        assert_eq!(
            select_semver_tag(&tags, ">=8.0.0", None, "").unwrap_err(),
            "no match found for semver: >=8.0.0"
        );
        assert!(
            select_semver_tag(&tags, "not a range", None, "")
                .unwrap_err()
                .starts_with("semver 'not a range' parse error")
        );
        assert!(select_semver_tag(&tags, "*", Some("(["), "").is_err());
    }
}
