//! Release naming rules of helm-controller: the 53-character limit of Helm release names
//! (longer names are cut and suffixed with a hash) and the release target whose change makes
//! the controller uninstall the old release before installing the new one.

use ferroflux_api::HelmRelease;
use sha2::Digest;

/// Helm's limit on release names.
const MAX_RELEASE_NAME: usize = 53;
const SHORT_HASH: usize = 12;

/// upstream's `release.ShortenName`: a name longer than 53 characters becomes its first 40
/// characters, `-`, and the first 12 hex digits of the sha256 of the whole name.
pub fn shorten_name(name: &str) -> String {
    if name.len() <= MAX_RELEASE_NAME {
        return name.to_string();
    }
    let sum = hex::encode(sha2::Sha256::digest(name.as_bytes()));
    let mut cut = MAX_RELEASE_NAME - (SHORT_HASH + 1);
    // names are DNS labels (ASCII); never split a character of anything else
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}-{}", &name[..cut], &sum[..SHORT_HASH])
}

/// The Helm release name the controller uses: `spec.releaseName`, else
/// `[<targetNamespace>-]<name>`, shortened to 53 characters.
pub fn release_name(obj: &HelmRelease) -> String {
    shorten_name(&obj.release_name())
}

/// What changed in the release target since the latest release (`status.history[0]` and
/// `status.storageNamespace`), as upstream's `ReleaseTargetChanged` names it: the old release
/// is then uninstalled before the new one is installed. `chart_name` is the name of the chart
/// about to be released.
pub fn release_target_changed(obj: &HelmRelease, chart_name: &str) -> Option<&'static str> {
    let status = obj.status.as_ref()?;
    let stored_ns = status
        .storage_namespace
        .as_deref()
        .filter(|s| !s.is_empty())?;
    let latest = status.history.as_ref()?.first()?;
    if obj.storage_namespace() != stored_ns {
        return Some("storage namespace");
    }
    if obj.release_namespace() != latest.namespace {
        return Some("release namespace");
    }
    if release_name(obj) != latest.name {
        return Some("release name");
    }
    if chart_name != latest.chart_name {
        return Some("chart name");
    }
    None
}

impl crate::helmrelease::HelmReleaseReconciler {
    /// upstream's uninstall on a changed release target: the release named by the latest
    /// snapshot is uninstalled from the storage namespace the status recorded (the hooks and
    /// wait of `spec.uninstall` apply). `Ok(None)` when there was nothing left to uninstall.
    pub(crate) async fn uninstall_previous_target(
        &self,
        obj: &HelmRelease,
        client: &kube::Client,
    ) -> Result<Option<ferroflux_helm::release::Release>, String> {
        let Some(status) = obj.status.as_ref() else {
            return Ok(None);
        };
        let (Some(storage_ns), Some(latest)) = (
            status.storage_namespace.as_deref(),
            status.history.as_ref().and_then(|h| h.first()),
        ) else {
            return Ok(None);
        };
        let helm = crate::action::Helm {
            manager: self.manager(client.clone()),
            store: crate::storage::ReleaseStorage::new(client.clone(), storage_ns),
            poll: self.settings.wait_interval,
            owner: (
                kube::ResourceExt::name_any(obj),
                kube::ResourceExt::namespace(obj).unwrap_or_default(),
            ),
        };
        let un = obj.uninstall();
        let propagation = match un.deletion_propagation {
            Some(ferroflux_api::helmrelease::DeletionPropagation::Foreground) => {
                ferroflux_ssa::Propagation::Foreground
            }
            Some(ferroflux_api::helmrelease::DeletionPropagation::Orphan) => {
                ferroflux_ssa::Propagation::Orphan
            }
            _ => ferroflux_ssa::Propagation::Background,
        };
        helm.uninstall(
            &latest.name,
            un.keep_history.unwrap_or(false),
            un.disable_hooks.unwrap_or(false),
            un.disable_wait.unwrap_or(false),
            propagation,
            un.timeout_or(obj.effective_timeout()),
        )
        .await
        .map_err(|(_, e)| e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn long_names_are_cut_and_hashed_as_upstream() {
        assert_eq!(shorten_name("podinfo"), "podinfo");
        let exact = "a".repeat(53);
        assert_eq!(shorten_name(&exact), exact);
        // vectors of upstream's name_test.go
        assert_eq!(
            shorten_name("release-name-with-very-long-name-which-is-longer-than-53-characters"),
            "release-name-with-very-long-name-which-i-788ca0d0d7b0"
        );
        assert_eq!(
            shorten_name(
                "another-release-name-with-very-long-name-which-is-longer-than-53-characters"
            ),
            "another-release-name-with-very-long-name-7e72150d5a36"
        );
        assert_eq!(shorten_name(""), "");
    }

    fn hr(spec: serde_json::Value, status: serde_json::Value) -> HelmRelease {
        serde_json::from_value(json!({
            "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
            "metadata": {"name": "web", "namespace": "apps"},
            "spec": spec, "status": status,
        }))
        .expect("HelmRelease")
    }

    fn snapshot(name: &str, ns: &str, chart: &str) -> serde_json::Value {
        json!({"name": name, "namespace": ns, "version": 1, "status": "deployed",
               "chartName": chart, "chartVersion": "1.0.0", "configDigest": "sha256:0",
               "firstDeployed": "2024-01-01T00:00:00Z", "lastDeployed": "2024-01-01T00:00:00Z",
               "digest": "sha256:1"})
    }

    #[test]
    fn release_target_changes_in_upstream_order() {
        let spec = json!({"interval": "1m", "chartRef": {"kind": "OCIRepository", "name": "c"}});
        let st = |ns: &str, name: &str, rel_ns: &str, chart: &str| json!({"storageNamespace": ns, "history": [snapshot(name, rel_ns, chart)]});
        // nothing recorded yet: no change
        assert_eq!(
            release_target_changed(&hr(spec.clone(), json!({})), "c"),
            None
        );
        assert_eq!(
            release_target_changed(&hr(spec.clone(), st("apps", "web", "apps", "c")), "c"),
            None
        );
        assert_eq!(
            release_target_changed(&hr(spec.clone(), st("other", "web", "apps", "c")), "c"),
            Some("storage namespace")
        );
        let mut targeted = spec.clone();
        targeted["targetNamespace"] = json!("prod");
        assert_eq!(
            release_target_changed(&hr(targeted.clone(), st("apps", "web", "apps", "c")), "c"),
            Some("release namespace")
        );
        assert_eq!(
            release_target_changed(&hr(targeted, st("apps", "web", "prod", "c")), "c"),
            Some("release name")
        );
        assert_eq!(
            release_target_changed(&hr(spec, st("apps", "web", "apps", "c")), "d"),
            Some("chart name")
        );
    }
}
