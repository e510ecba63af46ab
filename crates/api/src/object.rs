//! [`FluxObject`]: what the shared runtime needs to know about every reconciled kind.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use crate::annotations::RECONCILE_REQUESTED_AT;

/// A Flux kind with a status, driven generically by the shared reconcile runtime.
pub trait FluxObject:
    kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + serde::Serialize
    + serde::de::DeserializeOwned
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
    /// `spec.suspend`; false when absent or when the kind cannot be suspended.
    fn suspended(&self) -> bool;
    /// `spec.interval` parsed; `None` if absent or not a valid duration.
    fn interval(&self) -> Option<std::time::Duration>;
    /// `spec.retryInterval` (Kustomization, HelmRelease); `None` elsewhere.
    fn retry_interval(&self) -> Option<std::time::Duration> {
        None
    }
    /// `status.conditions`, or an empty slice.
    fn conditions(&self) -> &[Condition];
    /// `status.observedGeneration`.
    fn observed_generation(&self) -> Option<i64>;
    /// `status.lastHandledReconcileAt`.
    fn last_handled_reconcile_at(&self) -> Option<&str>;

    /// The `reconcile.fluxcd.io/requestedAt` annotation, if set.
    fn reconcile_requested_at(&self) -> Option<&str> {
        self.meta()
            .annotations
            .as_ref()
            .and_then(|a| a.get(RECONCILE_REQUESTED_AT))
            .map(String::as_str)
    }

    /// True if a reconcile was requested through the annotation and not handled yet.
    fn reconcile_request_pending(&self) -> bool {
        match self.reconcile_requested_at() {
            Some(token) => self.last_handled_reconcile_at() != Some(token),
            None => false,
        }
    }

    /// True if `status.observedGeneration` equals `metadata.generation`.
    fn generation_observed(&self) -> bool {
        self.meta().generation.is_some() && self.observed_generation() == self.meta().generation
    }

    /// True if the Ready condition is True and refers to the current generation.
    fn is_ready(&self) -> bool {
        crate::conditions::is_ready(self.conditions()) && self.generation_observed()
    }
}

/// A Flux source: a kind whose status publishes an [`Artifact`](crate::Artifact) for consumers.
pub trait Source: FluxObject {
    /// `status.artifact`, if one has been published.
    fn artifact(&self) -> Option<&crate::artifact::Artifact>;
}

macro_rules! impl_source {
    ($($kind:ty),+ $(,)?) => {
        $(
            impl Source for $kind {
                fn artifact(&self) -> Option<&crate::artifact::Artifact> {
                    self.status.as_ref().and_then(|s| s.artifact.as_ref())
                }
            }
        )+
    };
}

impl_source!(
    crate::gitrepository::GitRepository,
    crate::ocirepository::OCIRepository,
    crate::helmrepository::HelmRepository,
    crate::helmchart::HelmChart,
    crate::bucket::Bucket,
    crate::externalartifact::ExternalArtifact,
);

/// Implements [`FluxObject`] for a kind whose spec has `suspend`/`interval` and whose status has
/// `conditions`, `observedGeneration` and `lastHandledReconcileAt`.
macro_rules! impl_flux_object {
    ($kind:ty $(, retry_interval = $retry:ident)?) => {
        impl $crate::object::FluxObject for $kind {
            fn suspended(&self) -> bool {
                self.spec.suspend.unwrap_or(false)
            }
            fn interval(&self) -> Option<std::time::Duration> {
                $crate::object::parse_opt(self.spec.interval.as_ref())
            }
            $(
                fn retry_interval(&self) -> Option<std::time::Duration> {
                    $crate::object::parse_opt(self.spec.$retry.as_ref())
                }
            )?
            fn conditions(&self) -> &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition] {
                self.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_deref())
                    .unwrap_or(&[])
            }
            fn observed_generation(&self) -> Option<i64> {
                self.status.as_ref().and_then(|s| s.observed_generation)
            }
            fn last_handled_reconcile_at(&self) -> Option<&str> {
                self.status
                    .as_ref()
                    .and_then(|s| s.last_handled_reconcile_at.as_deref())
            }
        }
    };
}
pub(crate) use impl_flux_object;

/// Parses an optional duration, `None` when absent or invalid.
pub(crate) fn parse_opt(d: Option<&crate::duration::Duration>) -> Option<std::time::Duration> {
    d.and_then(|d| d.to_std().ok())
}

#[cfg(test)]
mod tests {
    use super::FluxObject;
    use crate::conditions::{self, READY, TRUE, reason};
    use crate::{ExternalArtifact, HelmRelease, Kustomization};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn kustomization() -> Kustomization {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": {
                "name": "apps",
                "namespace": "flux-system",
                "generation": 3,
                "annotations": {"reconcile.fluxcd.io/requestedAt": "2026-01-01T00:00:00Z"},
            },
            "spec": {
                "interval": "10m",
                "retryInterval": "1m30s",
                "prune": true,
                "suspend": true,
                "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
            },
            "status": {
                "observedGeneration": 3,
                "lastHandledReconcileAt": "2025-12-31T00:00:00Z",
            },
        }))
        .unwrap()
    }

    #[test]
    fn reads_spec_and_status_fields() {
        let mut ks = kustomization();
        assert!(ks.suspended());
        assert_eq!(ks.interval(), Some(std::time::Duration::from_secs(600)));
        assert_eq!(
            ks.retry_interval(),
            Some(std::time::Duration::from_secs(90))
        );
        assert_eq!(ks.observed_generation(), Some(3));
        assert!(ks.generation_observed());
        assert_eq!(ks.last_handled_reconcile_at(), Some("2025-12-31T00:00:00Z"));
        assert!(ks.reconcile_request_pending());
        assert!(ks.conditions().is_empty());
        assert!(!ks.is_ready());

        let status = ks.status.get_or_insert_with(Default::default);
        status.last_handled_reconcile_at = Some("2026-01-01T00:00:00Z".into());
        let list = status.conditions.get_or_insert_with(Vec::new);
        let now = Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH);
        conditions::set(
            list,
            conditions::new_condition(READY, TRUE, reason::SUCCEEDED, "ok", Some(3), now),
        );
        assert!(!ks.reconcile_request_pending());
        assert!(ks.is_ready());
    }

    #[test]
    fn missing_or_invalid_fields_read_as_none() {
        let mut hr: HelmRelease = serde_json::from_value(serde_json::json!({
            "apiVersion": "helm.toolkit.fluxcd.io/v2",
            "kind": "HelmRelease",
            "metadata": {"name": "podinfo"},
            "spec": {"interval": "soon"},
        }))
        .unwrap();
        assert_eq!(hr.interval(), None, "unparsable interval");
        assert!(!hr.suspended());
        assert_eq!(hr.observed_generation(), None);
        hr.spec.interval = None;
        assert_eq!(hr.interval(), None);
        assert!(!hr.reconcile_request_pending());

        let ea: ExternalArtifact = serde_json::from_value(serde_json::json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "ExternalArtifact",
            "metadata": {"name": "generated"},
            "spec": {},
        }))
        .unwrap();
        assert!(!ea.suspended());
        assert_eq!(ea.interval(), None);
    }

    #[test]
    fn objects_can_be_built_in_code() {
        use crate::gitrepository::{GitRepository, GitRepositoryRef, GitRepositorySpec};
        let mut repo = GitRepository::new(
            "podinfo",
            GitRepositorySpec {
                url: Some("https://github.com/stefanprodan/podinfo".into()),
                interval: Some("1m".into()),
                r#ref: Some(GitRepositoryRef {
                    branch: Some("master".into()),
                    ..Default::default()
                }),
                ..Default::default()
            },
        );
        repo.metadata.namespace = Some("flux-system".into());
        assert_eq!(repo.interval(), Some(std::time::Duration::from_secs(60)));
        assert_eq!(
            serde_json::to_value(&repo).unwrap(),
            serde_json::json!({
                "apiVersion": "source.toolkit.fluxcd.io/v1",
                "kind": "GitRepository",
                "metadata": {"name": "podinfo", "namespace": "flux-system"},
                "spec": {
                    "url": "https://github.com/stefanprodan/podinfo",
                    "interval": "1m",
                    "ref": {"branch": "master"},
                },
            })
        );
        assert!(Kustomization::default().spec.source_ref.is_none());
        assert!(super::Source::artifact(&repo).is_none());
    }

    #[test]
    fn default_status_has_unobserved_generation() {
        let status = crate::kustomization::KustomizationStatus::default();
        assert_eq!(status.observed_generation, Some(-1));
        assert_eq!(
            serde_json::to_value(&status).unwrap(),
            serde_json::json!({"observedGeneration": -1})
        );
    }
}
