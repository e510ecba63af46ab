//! `status.history`: release snapshots as helm-controller keeps them (newest first), their
//! digests, and the rules that pick the previous good release and truncate the list.

use std::collections::BTreeMap;

use ferroflux_api::helmrelease::{Snapshot, TestHookStatus};
use ferroflux_helm::release::{Release, status};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use sha2::Digest;

/// The snapshot format written (`v2`: digest over helm-controller's release observation).
pub const SNAPSHOT_API_VERSION: &str = "v2";
/// Snapshots kept when none is a previous good release.
pub const DEFAULT_MAX_HISTORY: usize = 5;
/// Test hook phases as Helm writes them.
pub const PHASE_FAILED: &str = "Failed";
pub const PHASE_SUCCEEDED: &str = "Succeeded";

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

/// upstream's `chartutil.DigestValues(digest.Canonical, values)`: sha256 of the values' YAML.
pub fn config_digest(values: &serde_json::Map<String, serde_json::Value>) -> String {
    let yaml = ferroflux_helm::release::values_yaml(values).unwrap_or_default();
    format!("sha256:{}", sha256_hex(yaml.as_bytes()))
}

/// The digest of a stored release as a snapshot records it (sha256 of the observation JSON,
/// see [`Release::observation_json`]).
pub fn release_digest(rel: &Release, oci_digest: &str) -> String {
    format!(
        "sha256:{}",
        sha256_hex(rel.observation_json(oci_digest).as_bytes())
    )
}

fn time_of(s: &Option<String>) -> Option<Time> {
    s.as_deref()
        .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        .map(Time)
}

/// `ObservedToSnapshot(ObserveRelease(rel))` with the action that wrote it and the OCI digest.
pub fn snapshot_of(rel: &Release, action: Option<&str>, oci_digest: Option<&str>) -> Snapshot {
    let info = rel.info.clone().unwrap_or_default();
    let meta = rel
        .chart
        .as_ref()
        .and_then(|c| c.metadata.clone())
        .unwrap_or_default();
    let zero = || Time(jiff::Timestamp::UNIX_EPOCH);
    Snapshot {
        api_version: Some(SNAPSHOT_API_VERSION.into()),
        digest: release_digest(rel, oci_digest.unwrap_or("")),
        name: rel.name.clone(),
        namespace: rel.namespace.clone(),
        version: rel.version,
        status: info.status.clone(),
        chart_name: meta.name,
        chart_version: meta.version,
        app_version: Some(meta.app_version).filter(|a| !a.is_empty()),
        config_digest: config_digest(&rel.config),
        first_deployed: time_of(&info.first_deployed).unwrap_or_else(zero),
        last_deployed: time_of(&info.last_deployed).unwrap_or_else(zero),
        deleted: time_of(&info.deleted),
        test_hooks: None,
        oci_digest: oci_digest.filter(|d| !d.is_empty()).map(str::to_string),
        action: action.map(str::to_string),
    }
}

/// `<ns>/<name>.v<version>`.
pub fn full_name(s: &Snapshot) -> String {
    format!("{}/{}.v{}", s.namespace, s.name, s.version)
}

/// `<chart>@<version>`.
pub fn chart_name(s: &Snapshot) -> String {
    format!("{}@{}", s.chart_name, s.chart_version)
}

pub fn targets(s: &Snapshot, name: &str, namespace: &str, version: i64) -> bool {
    s.name == name && s.namespace == namespace && s.version == version
}

fn sort(h: &mut [Snapshot]) {
    h.sort_by_key(|s| std::cmp::Reverse(s.version));
}

/// The newest snapshot.
pub fn latest(h: &mut [Snapshot]) -> Option<&Snapshot> {
    sort(h);
    h.first()
}

/// Test results were observed (an empty map: no tests selected); a failed test counts.
pub fn has_been_tested(s: &Snapshot) -> bool {
    let Some(hooks) = &s.test_hooks else {
        return false;
    };
    if hooks.is_empty() || has_test_in_phase(s, PHASE_FAILED) {
        return true;
    }
    hooks
        .values()
        .all(|h| h.phase.as_deref() == Some(PHASE_SUCCEEDED))
}

pub fn has_test_in_phase(s: &Snapshot, phase: &str) -> bool {
    s.test_hooks
        .iter()
        .flatten()
        .any(|(_, h)| h.phase.as_deref() == Some(phase))
}

fn good(s: &Snapshot, ignore_tests: bool) -> bool {
    (s.status == status::DEPLOYED || s.status == status::SUPERSEDED)
        && (ignore_tests || !has_test_in_phase(s, PHASE_FAILED))
}

/// The newest deployed or superseded snapshot before the latest (one with a failed test only
/// when `ignore_tests`): the rollback target.
pub fn previous(h: &mut [Snapshot], ignore_tests: bool) -> Option<Snapshot> {
    sort(h);
    h.iter().skip(1).find(|s| good(s, ignore_tests)).cloned()
}

/// Drops everything older than the previous good snapshot; without one, keeps five.
pub fn truncate(h: &mut Vec<Snapshot>, ignore_tests: bool) {
    if h.len() < 2 {
        return;
    }
    sort(h);
    if let Some(i) = h.iter().skip(1).position(|s| good(s, ignore_tests)) {
        h.truncate(i + 2);
        return;
    }
    h.truncate(DEFAULT_MAX_HISTORY);
}

/// Keeps the five newest.
pub fn truncate_ignoring_previous(h: &mut Vec<Snapshot>) {
    sort(h);
    h.truncate(DEFAULT_MAX_HISTORY);
}

/// The test hooks of a release (by name) selected by the filters, with their last run.
pub fn test_hooks_of(
    rel: &Release,
    filters: &[ferroflux_api::helmrelease::TestFilter],
) -> BTreeMap<String, TestHookStatus> {
    let mut out = BTreeMap::new();
    for h in rel
        .hooks
        .iter()
        .filter(|h| h.events.iter().any(|e| e == "test"))
    {
        if !test_selected(&h.name, filters) {
            continue;
        }
        out.insert(
            h.name.clone(),
            TestHookStatus {
                last_started: time_of(&h.last_run.started_at),
                last_completed: time_of(&h.last_run.completed_at),
                phase: Some(h.last_run.phase.clone()).filter(|p| !p.is_empty()),
            },
        );
    }
    out
}

/// upstream's filter rule: an excluded name is out; with any include filter, only included
/// names are in.
pub fn test_selected(name: &str, filters: &[ferroflux_api::helmrelease::TestFilter]) -> bool {
    let mut has_include = false;
    let mut included = false;
    for f in filters {
        if f.exclude.unwrap_or(false) {
            if f.name == name {
                return false;
            }
            continue;
        }
        has_include = true;
        if f.name == name {
            included = true;
        }
    }
    !has_include || included
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(version: i64, st: &str, failed_test: bool) -> Snapshot {
        let mut s = snapshot_of(&Release::default(), None, None);
        s.version = version;
        s.status = st.into();
        if failed_test {
            s.test_hooks = Some(BTreeMap::from([(
                "t".to_string(),
                TestHookStatus {
                    phase: Some(PHASE_FAILED.into()),
                    ..Default::default()
                },
            )]));
        }
        s
    }

    #[test]
    fn previous_and_truncate_follow_upstream() {
        let mut h = vec![
            snap(1, "superseded", false),
            snap(3, "failed", false),
            snap(2, "superseded", true),
        ];
        assert_eq!(previous(&mut h, false).map(|s| s.version), Some(1));
        assert_eq!(previous(&mut h, true).map(|s| s.version), Some(2));
        let mut t = h.clone();
        truncate(&mut t, false);
        assert_eq!(t.iter().map(|s| s.version).collect::<Vec<_>>(), [3, 2, 1]);
        truncate(&mut t, true);
        assert_eq!(t.iter().map(|s| s.version).collect::<Vec<_>>(), [3, 2]);
        let mut failed: Vec<Snapshot> = (1..=7).map(|v| snap(v, "failed", false)).collect();
        truncate(&mut failed, false);
        assert_eq!(failed.len(), 5);
        assert_eq!(failed[0].version, 7);
    }

    #[test]
    fn tested_rules() {
        let mut s = snap(1, "deployed", false);
        assert!(!has_been_tested(&s));
        s.test_hooks = Some(BTreeMap::new());
        assert!(has_been_tested(&s), "no selected tests counts as tested");
        s.test_hooks = Some(BTreeMap::from([(
            "a".to_string(),
            TestHookStatus {
                phase: Some("Running".into()),
                ..Default::default()
            },
        )]));
        assert!(!has_been_tested(&s));
        assert!(has_been_tested(&snap(1, "deployed", true)));
    }

    #[test]
    fn filters() {
        use ferroflux_api::helmrelease::TestFilter;
        let f = |n: &str, ex: bool| TestFilter {
            name: n.into(),
            exclude: Some(ex),
        };
        assert!(test_selected("a", &[]));
        assert!(!test_selected("a", &[f("a", true)]));
        assert!(test_selected("b", &[f("a", true)]));
        assert!(!test_selected("b", &[f("a", false)]));
        assert!(test_selected("a", &[f("a", false), f("c", true)]));
    }

    #[test]
    fn digest_changes_with_the_record_but_not_with_test_hooks() {
        let mut rel = Release {
            name: "web".into(),
            namespace: "default".into(),
            version: 1,
            ..Default::default()
        };
        let d1 = release_digest(&rel, "");
        rel.hooks.push(ferroflux_helm::release::Hook {
            name: "t".into(),
            events: vec!["test".into()],
            ..Default::default()
        });
        assert_eq!(d1, release_digest(&rel, ""), "test hooks are left out");
        rel.set_status("failed", "x");
        assert_ne!(d1, release_digest(&rel, ""));
        assert_ne!(release_digest(&rel, ""), release_digest(&rel, "sha256:ab"));
        let json = rel.observation_json("");
        assert!(json.starts_with(r#"{"name":"web","version":1,"info":{"description":"x","status":"failed"},"chartMetadata":{},"config":null,"manifest":"","hooks":null,"namespace":"default"}"#), "{json}");
        assert!(json.ends_with('\n'));
    }
}
