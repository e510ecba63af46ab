//! The API version Flux 2.9 serves for each Flux kind, as `flux migrate` uses it to rewrite
//! objects written against removed versions (v1beta2, v2beta1, v2beta2, ...).

/// `(group, kind, served version)` for every Flux kind, including the image automation and
/// source-watcher kinds this project has no types for.
pub const SERVED: &[(&str, &str, &str)] = &[
    ("source.toolkit.fluxcd.io", "Bucket", "v1"),
    ("source.toolkit.fluxcd.io", "GitRepository", "v1"),
    ("source.toolkit.fluxcd.io", "OCIRepository", "v1"),
    ("source.toolkit.fluxcd.io", "HelmRepository", "v1"),
    ("source.toolkit.fluxcd.io", "HelmChart", "v1"),
    ("source.toolkit.fluxcd.io", "ExternalArtifact", "v1"),
    ("kustomize.toolkit.fluxcd.io", "Kustomization", "v1"),
    ("helm.toolkit.fluxcd.io", "HelmRelease", "v2"),
    ("notification.toolkit.fluxcd.io", "Receiver", "v1"),
    ("notification.toolkit.fluxcd.io", "Alert", "v1beta3"),
    ("notification.toolkit.fluxcd.io", "Provider", "v1beta3"),
    ("image.toolkit.fluxcd.io", "ImageRepository", "v1"),
    ("image.toolkit.fluxcd.io", "ImagePolicy", "v1"),
    ("image.toolkit.fluxcd.io", "ImageUpdateAutomation", "v1"),
    (
        "source.extensions.fluxcd.io",
        "ArtifactGenerator",
        "v1beta1",
    ),
];

/// The served `apiVersion` (`group/version`) for an object's `apiVersion` and `kind`, if the kind
/// is a Flux kind. Returns the input unchanged in meaning when it is already served.
pub fn served_api_version(api_version: &str, kind: &str) -> Option<String> {
    let group = api_version.split_once('/').map_or("", |(g, _)| g);
    SERVED
        .iter()
        .find(|(g, k, _)| *g == group && *k == kind)
        .map(|(g, _, v)| format!("{g}/{v}"))
}

/// True if `apiVersion` names a Flux kind at a version that is no longer served.
pub fn needs_migration(api_version: &str, kind: &str) -> bool {
    served_api_version(api_version, kind).is_some_and(|served| served != api_version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::Resource;

    #[test]
    fn table_matches_our_types() {
        let ours = [
            (
                crate::GitRepository::api_version(&()),
                crate::GitRepository::kind(&()),
            ),
            (
                crate::OCIRepository::api_version(&()),
                crate::OCIRepository::kind(&()),
            ),
            (
                crate::HelmRepository::api_version(&()),
                crate::HelmRepository::kind(&()),
            ),
            (
                crate::HelmChart::api_version(&()),
                crate::HelmChart::kind(&()),
            ),
            (crate::Bucket::api_version(&()), crate::Bucket::kind(&())),
            (
                crate::ExternalArtifact::api_version(&()),
                crate::ExternalArtifact::kind(&()),
            ),
            (
                crate::Kustomization::api_version(&()),
                crate::Kustomization::kind(&()),
            ),
            (
                crate::HelmRelease::api_version(&()),
                crate::HelmRelease::kind(&()),
            ),
            (
                crate::Provider::api_version(&()),
                crate::Provider::kind(&()),
            ),
            (crate::Alert::api_version(&()), crate::Alert::kind(&())),
            (
                crate::Receiver::api_version(&()),
                crate::Receiver::kind(&()),
            ),
        ];
        for (api_version, kind) in ours {
            assert_eq!(
                served_api_version(&api_version, &kind).as_deref(),
                Some(&*api_version)
            );
            assert!(!needs_migration(&api_version, &kind));
        }
    }

    #[test]
    fn old_versions_map_to_served_ones() {
        assert_eq!(
            served_api_version("helm.toolkit.fluxcd.io/v2beta1", "HelmRelease").as_deref(),
            Some("helm.toolkit.fluxcd.io/v2")
        );
        assert!(needs_migration(
            "source.toolkit.fluxcd.io/v1beta2",
            "OCIRepository"
        ));
        assert!(needs_migration(
            "notification.toolkit.fluxcd.io/v1beta2",
            "Alert"
        ));
        assert!(!needs_migration("apps/v1", "Deployment"));
        assert_eq!(served_api_version("v1", "ConfigMap"), None);
    }
}
