//! A `kustomize build` in Rust: a pure library whose output matches `kubectl kustomize`
//! byte for byte.
//!
//! - [`build_dir`] builds a directory on disk and returns the YAML stream.
//! - [`Kustomizer`] builds from any [`Filesystem`] (e.g. [`MemFs`] over an artifact) and
//!   returns the resources as JSON values, in output order.

pub mod build;
pub mod config;
pub mod fieldspec;
pub mod fs;
pub mod generators;
pub mod kustfile;
pub mod patch;
pub mod replacements;
pub mod resource;
pub mod transform;
pub mod yaml;

pub use build::{BuildOptions, Kustomizer, LoadRestrictions};
pub use fs::{DiskFs, Filesystem, MemFs};

/// A build failure. Messages name the kustomization file and the object involved.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading a file or directory failed.
    #[error("{path}: {message}")]
    Io {
        /// The path.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A file is not valid YAML, or not of the expected shape.
    #[error("{file}: {message}")]
    Yaml {
        /// The file (or the kustomization naming inline content).
        file: String,
        /// What went wrong.
        message: String,
    },
    /// kustomize would refuse this build.
    #[error("{0}")]
    Build(String),
    /// Something kustomize can do that this engine refuses (remote resources, Helm, plugins).
    #[error("{0}")]
    Unsupported(String),
}

/// Build the kustomization in `path` on disk and return the YAML stream `kustomize build`
/// prints.
pub fn build_dir(path: &std::path::Path, options: &BuildOptions) -> Result<String, Error> {
    let fs = DiskFs;
    let k = Kustomizer::new(&fs, options.clone());
    let resources = k.build(path)?;
    Ok(yaml::to_yaml_stream(resources.iter()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_restrictions() {
        let mut fs = MemFs::new();
        fs.add_file(
            "/app/kustomization.yaml",
            "resources:\n- ../shared/cm.yaml\n",
        );
        fs.add_file(
            "/shared/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n",
        );
        let root_only =
            Kustomizer::new(&fs, BuildOptions::default()).build(std::path::Path::new("/app"));
        let err = root_only.unwrap_err().to_string();
        assert!(err.contains("is not in or below '/app'"), "{err}");
        let none = BuildOptions {
            load_restrictions: LoadRestrictions::None,
            ..Default::default()
        };
        let out = Kustomizer::new(&fs, none)
            .build(std::path::Path::new("/app"))
            .unwrap();
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn remote_and_helm_are_refused() {
        let mut fs = MemFs::new();
        fs.add_file(
            "/a/kustomization.yaml",
            "resources:\n- github.com/org/repo//deploy?ref=v1\n",
        );
        fs.add_file("/b/kustomization.yaml", "helmCharts:\n- name: x\n");
        for dir in ["/a", "/b"] {
            let r = Kustomizer::new(&fs, BuildOptions::default()).build(std::path::Path::new(dir));
            assert!(matches!(r, Err(Error::Unsupported(_))), "{dir}: {r:?}");
        }
    }

    #[test]
    fn kustomizer_is_send_and_sync_and_builds_from_memory() {
        fn check<T: Send + Sync>(_: &T) {}
        let mut fs = MemFs::new();
        fs.add_file(
            "/app/kustomization.yaml",
            "namePrefix: x-\nresources:\n- cm.yaml\n",
        );
        fs.add_file(
            "/app/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  k: v\n",
        );
        let k = Kustomizer::new(&fs, BuildOptions::default());
        check(&k);
        let out = k.build(std::path::Path::new("/app")).unwrap();
        assert_eq!(
            yaml::to_yaml_stream(out.iter()),
            "apiVersion: v1\ndata:\n  k: v\nkind: ConfigMap\nmetadata:\n  name: x-c\n"
        );
    }
}
