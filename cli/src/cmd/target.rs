//! The kind-and-names arguments shared by `suspend`, `resume`, `delete` and `export`
//! (`source git NAME...`, `kustomization|ks NAME...`, `helmrelease|hr`, `alert`,
//! `alert-provider`, `receiver`).

use super::kinds::{self, Kind};

#[derive(clap::Subcommand, Debug)]
pub enum Target {
    /// Sources (git, oci, helm, bucket, chart).
    Source {
        #[command(subcommand)]
        what: SourceTarget,
    },
    /// Kustomizations.
    #[command(visible_alias = "ks")]
    Kustomization { names: Vec<String> },
    /// HelmReleases.
    #[command(visible_alias = "hr")]
    Helmrelease { names: Vec<String> },
    /// Alerts.
    Alert { names: Vec<String> },
    /// Alert Providers.
    #[command(name = "alert-provider")]
    AlertProvider { names: Vec<String> },
    /// Receivers.
    Receiver { names: Vec<String> },
}

#[derive(clap::Subcommand, Debug)]
pub enum SourceTarget {
    /// GitRepository sources.
    Git { names: Vec<String> },
    /// OCIRepository sources.
    Oci { names: Vec<String> },
    /// HelmRepository sources.
    Helm { names: Vec<String> },
    /// Bucket sources.
    Bucket { names: Vec<String> },
    /// HelmChart sources.
    Chart { names: Vec<String> },
}

impl Target {
    /// The kind and the names given.
    pub fn resolve(self) -> (&'static Kind, Vec<String>) {
        match self {
            Target::Source { what } => match what {
                SourceTarget::Git { names } => (&kinds::GIT, names),
                SourceTarget::Oci { names } => (&kinds::OCI, names),
                SourceTarget::Helm { names } => (&kinds::HELMREPO, names),
                SourceTarget::Bucket { names } => (&kinds::BUCKET, names),
                SourceTarget::Chart { names } => (&kinds::CHART, names),
            },
            Target::Kustomization { names } => (&kinds::KUSTOMIZATION, names),
            Target::Helmrelease { names } => (&kinds::HELMRELEASE, names),
            Target::Alert { names } => (&kinds::ALERT, names),
            Target::AlertProvider { names } => (&kinds::PROVIDER, names),
            Target::Receiver { names } => (&kinds::RECEIVER, names),
        }
    }
}
