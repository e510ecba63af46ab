//! Front-ends of the two engines: `ferroflux kustomize build` and `ferroflux helm template`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

#[derive(clap::Subcommand, Debug)]
pub enum KustomizeCommand {
    /// Build a kustomization directory and print the resources, like `kustomize build DIR`.
    Build {
        /// The directory holding kustomization.yaml (default: the current directory).
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// File load restrictions: RootOnly (default) or None.
        #[arg(long = "load-restrictor", default_value = "LoadRestrictionsRootOnly")]
        load_restrictor: String,
        /// Write the output to this file instead of standard output.
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
    },
}

#[derive(clap::Subcommand, Debug)]
pub enum HelmCommand {
    /// Render a chart locally and print the manifests, like `helm template NAME CHART`.
    Template {
        /// The release name.
        name: String,
        /// A chart directory or a packaged chart (.tgz).
        chart: PathBuf,
        /// Values files, merged in order.
        #[arg(short = 'f', long = "values")]
        values: Vec<PathBuf>,
        /// Values on the command line (key1=val1,key2=val2).
        #[arg(long = "set")]
        set: Vec<String>,
        /// String values on the command line.
        #[arg(long = "set-string")]
        set_string: Vec<String>,
        /// JSON values on the command line (key=jsonvalue).
        #[arg(long = "set-json")]
        set_json: Vec<String>,
        /// Values read from files (key=path).
        #[arg(long = "set-file")]
        set_file: Vec<String>,
        /// Literal string values on the command line.
        #[arg(long = "set-literal")]
        set_literal: Vec<String>,
        /// The release namespace.
        #[arg(short = 'n', long = "namespace", default_value = "default")]
        namespace: String,
        /// Kubernetes version used for Capabilities.KubeVersion.
        #[arg(long = "kube-version")]
        kube_version: Option<String>,
        /// Kubernetes API versions used for Capabilities.APIVersions.
        #[arg(short = 'a', long = "api-versions")]
        api_versions: Vec<String>,
        /// Include CRDs in the output.
        #[arg(long = "include-crds")]
        include_crds: bool,
        /// Skip tests from the output.
        #[arg(long = "skip-tests")]
        skip_tests: bool,
        /// Set .Release.IsUpgrade instead of .Release.IsInstall.
        #[arg(long = "is-upgrade")]
        is_upgrade: bool,
        /// Disable JSON schema validation.
        #[arg(long = "skip-schema-validation")]
        skip_schema_validation: bool,
    },
}

fn print(out: &str, to: Option<PathBuf>) -> anyhow::Result<()> {
    match to {
        Some(path) => {
            std::fs::write(&path, out).with_context(|| format!("writing {}", path.display()))
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(out.as_bytes())?;
            stdout.flush()?;
            Ok(())
        }
    }
}

pub fn kustomize(command: KustomizeCommand) -> anyhow::Result<()> {
    match command {
        KustomizeCommand::Build {
            dir,
            load_restrictor,
            output,
        } => {
            let load_restrictions = match load_restrictor.as_str() {
                "LoadRestrictionsRootOnly" | "RootOnly" | "rootOnly" => {
                    ferroflux_kustomize::LoadRestrictions::RootOnly
                }
                "LoadRestrictionsNone" | "None" | "none" => {
                    ferroflux_kustomize::LoadRestrictions::None
                }
                other => anyhow::bail!(
                    "invalid --load-restrictor {other:?}: use LoadRestrictionsRootOnly or LoadRestrictionsNone"
                ),
            };
            let options = ferroflux_kustomize::BuildOptions {
                load_restrictions,
                ..Default::default()
            };
            let yaml = ferroflux_kustomize::build_dir(&dir, &options)?;
            print(&yaml, output)
        }
    }
}

pub fn helm(command: HelmCommand) -> anyhow::Result<()> {
    match command {
        HelmCommand::Template {
            name,
            chart,
            values,
            set,
            set_string,
            set_json,
            set_file,
            set_literal,
            namespace,
            kube_version,
            api_versions,
            include_crds,
            skip_tests,
            is_upgrade,
            skip_schema_validation,
        } => {
            let opts = ferroflux_helm::TemplateOptions {
                values_files: values,
                set,
                set_string,
                set_json,
                set_file,
                set_literal,
                namespace,
                kube_version,
                api_versions,
                include_crds,
                skip_tests,
                is_upgrade,
                skip_schema_validation,
                ..Default::default()
            };
            let out = ferroflux_helm::template(&name, &chart, &opts)?;
            print(&out, None)
        }
    }
}
