//! The filesystem the engine reads from: a trait, the real disk, and an in-memory tree.

use std::collections::BTreeMap;
use std::io;
use std::path::{Component, Path, PathBuf};

/// What the engine needs from a filesystem. Paths given to it are absolute and cleaned.
/// Implementations are shareable across threads, so a `Kustomizer` can be too.
pub trait Filesystem: Send + Sync {
    /// The whole content of a file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Whether the path is a directory.
    fn is_dir(&self, path: &Path) -> bool;
    /// Whether anything exists at the path.
    fn exists(&self, path: &Path) -> bool;
    /// Entries (full paths) of a directory, sorted by name.
    fn list_dir(&self, path: &Path) -> io::Result<Vec<PathBuf>>;
    /// The path with symbolic links resolved (the identity where there are none).
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf>;
}

/// Clean a path lexically: drop `.`, resolve `..` against earlier components.
pub fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// The machine's own filesystem.
#[derive(Debug, Default, Clone, Copy)]
pub struct DiskFs;

impl Filesystem for DiskFs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }
    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<PathBuf>> {
        let mut v = Vec::new();
        for e in std::fs::read_dir(path)? {
            v.push(e?.path());
        }
        v.sort();
        Ok(v)
    }
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        std::fs::canonicalize(path)
    }
}

/// An in-memory tree of files (directories exist implicitly above files, or explicitly).
#[derive(Debug, Default, Clone)]
pub struct MemFs {
    files: BTreeMap<PathBuf, Vec<u8>>,
    dirs: std::collections::BTreeSet<PathBuf>,
}

impl MemFs {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add (or replace) a file; the path is made absolute against `/`.
    pub fn add_file(&mut self, path: impl AsRef<Path>, content: impl Into<Vec<u8>>) {
        let p = clean(&Path::new("/").join(path.as_ref()));
        let mut d = p.parent().map(Path::to_path_buf);
        while let Some(dir) = d {
            self.dirs.insert(dir.clone());
            d = dir.parent().map(Path::to_path_buf);
        }
        self.files.insert(p, content.into());
    }

    /// Add an empty directory.
    pub fn add_dir(&mut self, path: impl AsRef<Path>) {
        let p = clean(&Path::new("/").join(path.as_ref()));
        let mut d = Some(p);
        while let Some(dir) = d {
            self.dirs.insert(dir.clone());
            d = dir.parent().map(Path::to_path_buf);
        }
    }
}

impl Filesystem for MemFs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.files.get(&clean(path)).cloned().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: no such file", path.display()),
            )
        })
    }
    fn is_dir(&self, path: &Path) -> bool {
        self.dirs.contains(&clean(path))
    }
    fn exists(&self, path: &Path) -> bool {
        let p = clean(path);
        self.files.contains_key(&p) || self.dirs.contains(&p)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<PathBuf>> {
        let p = clean(path);
        if !self.dirs.contains(&p) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: no such directory", path.display()),
            ));
        }
        let mut v: Vec<PathBuf> = self
            .files
            .keys()
            .chain(self.dirs.iter())
            .filter(|f| f.parent() == Some(p.as_path()))
            .cloned()
            .collect();
        v.sort();
        v.dedup();
        Ok(v)
    }
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        let p = clean(path);
        if self.exists(&p) {
            Ok(p)
        } else {
            Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{}: no such file or directory", path.display()),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memfs_basics() {
        let mut fs = MemFs::new();
        fs.add_file("a/b/c.yaml", "x: 1");
        assert!(fs.is_dir(Path::new("/a/b")));
        assert!(fs.exists(Path::new("/a/./b/../b/c.yaml")));
        assert_eq!(
            fs.list_dir(Path::new("/a")).unwrap(),
            vec![PathBuf::from("/a/b")]
        );
        assert_eq!(fs.read(Path::new("/a/b/c.yaml")).unwrap(), b"x: 1");
        assert!(fs.read(Path::new("/nope")).is_err());
    }
}
