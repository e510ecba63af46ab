//! The `extract` layer operation without a round trip through thousands of files: the layer's
//! tar stream is unpacked into an in-memory tree (names, kinds, modes) whose file contents go
//! to one scratch file, written sequentially, and the artifact is archived from that tree.
//!
//! The result is the artifact that unpacking onto disk with the runtime's safe untar and then
//! archiving the directory gives, with the same checks: no absolute paths, no `..`, no links
//! leaving the root, nothing written under a link, only files, directories and links, the
//! size and entry limits; later entries replace earlier files as on disk. Two differences from
//! the disk round trip, both closer to upstream (whose untar keeps file modes): an executable
//! file keeps its x bit (archived with mode 0700), and a name that is not UTF-8 is refused
//! while unpacking rather than when archiving. Also, a hard link copies its target as it is
//! when the link entry comes (on disk a later entry rewriting the target would show through the
//! link), and a file entry at the path of a symlink is refused rather than written through it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Component, Path};

use crate::ignore::{self, Pattern};
use crate::storage::archive::{ArchiveError, ArchiveFilter, ArchiveLimits, TarGzWriter};

/// The name of the per-directory ignore file.
const IGNORE_FILE: &str = ".sourceignore";

/// Largest `.sourceignore` read (larger ones are read up to this size).
const MAX_IGNORE_FILE: u64 = 1 << 20;

/// Limits applied while unpacking.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Most bytes of file content in total.
    pub max_size: u64,
    /// Most entries.
    pub max_files: u64,
}

/// Why a layer could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    #[error("artifact is too large: it unpacks to more than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("artifact has too many entries: more than {limit}")]
    TooManyFiles { limit: u64 },
    #[error("refusing archive entry {path:?}: {reason}")]
    UnsafeEntry { path: String, reason: &'static str },
    #[error("failed to unpack artifact: {0}")]
    Io(#[from] io::Error),
}

fn unsafe_entry(path: &str, reason: &'static str) -> LayerError {
    LayerError::UnsafeEntry {
        path: path.to_string(),
        reason,
    }
}

#[derive(Clone, Debug)]
enum Node {
    Dir(BTreeMap<String, Node>),
    File {
        offset: u64,
        len: u64,
        executable: bool,
    },
    Link,
}

/// An unpacked layer: the tree, and the scratch file holding the contents.
pub struct Tree {
    root: BTreeMap<String, Node>,
    data: File,
}

impl Tree {
    /// Unpacks an uncompressed tar stream; file contents go to `scratch` (created).
    pub fn unpack<R: Read>(reader: R, scratch: &Path, limits: Limits) -> Result<Self, LayerError> {
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(scratch)?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        let mut root: BTreeMap<String, Node> = BTreeMap::new();
        let mut offset: u64 = 0;
        let mut total: u64 = 0;
        let mut count: u64 = 0;
        let mut archive = tar::Archive::new(reader);
        for entry in archive.entries()? {
            let mut entry = entry?;
            count += 1;
            if count > limits.max_files {
                return Err(LayerError::TooManyFiles {
                    limit: limits.max_files,
                });
            }
            let raw = entry.path()?.into_owned();
            let shown = raw.display().to_string();
            let parts = components(&raw).map_err(|reason| unsafe_entry(&shown, reason))?;
            let kind = entry.header().entry_type();
            let Some((name, parents)) = parts.split_last() else {
                continue;
            };
            match kind {
                tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => continue,
                tar::EntryType::Directory
                | tar::EntryType::Regular
                | tar::EntryType::Continuous
                | tar::EntryType::GNUSparse
                | tar::EntryType::Symlink
                | tar::EntryType::Link => {}
                _ => {
                    return Err(unsafe_entry(
                        &shown,
                        "unsupported entry type (only files, directories and links)",
                    ));
                }
            }
            let dir = parent_dir(&mut root, parents, &shown)?;
            match kind {
                tar::EntryType::Directory => match dir.get(name) {
                    Some(Node::Dir(_)) => {}
                    Some(_) => return Err(exists(&shown)),
                    None => {
                        dir.insert(name.clone(), Node::Dir(BTreeMap::new()));
                    }
                },
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    let link = entry
                        .link_name()?
                        .ok_or_else(|| unsafe_entry(&shown, "link without a target"))?
                        .into_owned();
                    if kind == tar::EntryType::Symlink {
                        if !link_stays_inside(parents.len(), &link) {
                            return Err(unsafe_entry(
                                &shown,
                                "link points outside the artifact root",
                            ));
                        }
                        if dir.contains_key(name) {
                            return Err(exists(&shown));
                        }
                        dir.insert(name.clone(), Node::Link);
                    } else {
                        let target = components(&link).map_err(|_| {
                            unsafe_entry(&shown, "link points outside the artifact root")
                        })?;
                        if dir.contains_key(name) {
                            return Err(exists(&shown));
                        }
                        let node = match lookup(&root, &target) {
                            Some(n @ Node::File { .. }) => n.clone(),
                            Some(_) => {
                                return Err(LayerError::Io(io::Error::new(
                                    io::ErrorKind::PermissionDenied,
                                    format!("hard link {shown:?} to a directory or link"),
                                )));
                            }
                            None => {
                                return Err(LayerError::Io(io::Error::new(
                                    io::ErrorKind::NotFound,
                                    format!("hard link {shown:?} to a missing file"),
                                )));
                            }
                        };
                        // Looked up from the root, so the parent is found again.
                        parent_dir(&mut root, parents, &shown)?.insert(name.clone(), node);
                    }
                }
                _ => {
                    match dir.get(name) {
                        Some(Node::Dir(_)) => {
                            return Err(LayerError::Io(io::Error::new(
                                io::ErrorKind::IsADirectory,
                                format!("{shown:?} is a directory"),
                            )));
                        }
                        Some(Node::Link) => {
                            return Err(unsafe_entry(
                                &shown,
                                "entry would be written through a symlink",
                            ));
                        }
                        _ => {}
                    }
                    let size = entry.header().size()?;
                    total = total.saturating_add(size);
                    if total > limits.max_size {
                        return Err(LayerError::TooLarge {
                            limit: limits.max_size,
                        });
                    }
                    let executable = entry.header().mode().map(|m| m & 0o111 != 0)?;
                    // At most `size` bytes even if the header lies.
                    let copied = io::copy(&mut (&mut entry).take(size), &mut out)?;
                    if copied != size {
                        return Err(unsafe_entry(
                            &shown,
                            "entry is shorter than its header says",
                        ));
                    }
                    dir.insert(
                        name.clone(),
                        Node::File {
                            offset,
                            len: size,
                            executable,
                        },
                    );
                    offset += size;
                }
            }
        }
        let data = out.into_inner().map_err(|e| e.into_error())?;
        Ok(Self { root, data })
    }

    /// The `.sourceignore` rules of the tree, as [`ignore::load_ignore_patterns`] reads them
    /// from a directory: the root's first, then subdirectories in name order (`.git`
    /// skipped), each scoped to its directory.
    pub fn ignore_patterns(&self) -> io::Result<Vec<Pattern>> {
        let mut out = Vec::new();
        self.patterns_rec(&self.root, &mut Vec::new(), &mut out)?;
        Ok(out)
    }

    fn patterns_rec(
        &self,
        dir: &BTreeMap<String, Node>,
        domain: &mut Vec<String>,
        out: &mut Vec<Pattern>,
    ) -> io::Result<()> {
        if let Some(Node::File { offset, len, .. }) = dir.get(IGNORE_FILE) {
            let mut bytes = Vec::new();
            self.reader(*offset, (*len).min(MAX_IGNORE_FILE))
                .read_to_end(&mut bytes)?;
            out.extend(ignore::read_patterns(
                &String::from_utf8_lossy(&bytes),
                domain,
            ));
        }
        for (name, node) in dir {
            if let Node::Dir(children) = node
                && name != ".git"
            {
                domain.push(name.clone());
                self.patterns_rec(children, domain, out)?;
                domain.pop();
            }
        }
        Ok(())
    }

    /// Writes the artifact: the tree's directories and files in lexical order (links left
    /// out), entries rejected by `filter` left out, as the directory archiver does.
    pub fn archive<W: Write>(
        &self,
        filter: &ArchiveFilter<'_>,
        limits: ArchiveLimits,
        tar: &mut TarGzWriter<W>,
    ) -> Result<(), ArchiveError> {
        let mut components = Vec::new();
        self.archive_rec(&self.root, &mut components, filter, limits, tar)
    }

    fn archive_rec<'a, W: Write>(
        &self,
        dir: &'a BTreeMap<String, Node>,
        components: &mut Vec<&'a str>,
        filter: &ArchiveFilter<'_>,
        limits: ArchiveLimits,
        tar: &mut TarGzWriter<W>,
    ) -> Result<(), ArchiveError> {
        for (name, node) in dir {
            if let Node::Link = node {
                continue;
            }
            components.push(name);
            let is_dir = matches!(node, Node::Dir(_));
            if !filter(components, is_dir) {
                let rel = components.join("/");
                match node {
                    Node::Dir(_) => tar.dir(&rel).map_err(|source| ArchiveError::Io {
                        context: format!("failed to write header of {rel}"),
                        source,
                    })?,
                    Node::File {
                        offset,
                        len,
                        executable,
                    } => {
                        if let Some(limit) = limits.max_file_size
                            && *len > limit
                        {
                            return Err(ArchiveError::FileTooLarge {
                                path: rel,
                                size: *len,
                                limit,
                            });
                        }
                        tar.file(&rel, *len, *executable, self.reader(*offset, *len))
                            .map_err(|source| ArchiveError::Io {
                                context: format!("failed to archive {rel}"),
                                source,
                            })?;
                    }
                    Node::Link => {}
                }
            }
            if let Node::Dir(children) = node {
                self.archive_rec(children, components, filter, limits, tar)?;
            }
            components.pop();
        }
        Ok(())
    }

    fn reader(&self, offset: u64, len: u64) -> At<'_> {
        At {
            file: &self.data,
            pos: offset,
            end: offset + len,
        }
    }
}

/// Reads `[pos, end)` of a file with positioned reads.
struct At<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for At<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt as _;
        let want = (self.end - self.pos).min(buf.len() as u64) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "scratch file is shorter than expected",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

fn exists(shown: &str) -> LayerError {
    LayerError::Io(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("{shown:?} exists with another type"),
    ))
}

/// The directory holding an entry, created with its parents as unpacking onto disk does; a
/// parent that is a link (anything could be written through it) or a file is refused.
fn parent_dir<'a>(
    root: &'a mut BTreeMap<String, Node>,
    parents: &[String],
    shown: &str,
) -> Result<&'a mut BTreeMap<String, Node>, LayerError> {
    let mut dir = root;
    for p in parents {
        let node = dir
            .entry(p.clone())
            .or_insert_with(|| Node::Dir(BTreeMap::new()));
        dir = match node {
            Node::Dir(children) => children,
            Node::Link => return Err(unsafe_entry(shown, "entry is nested under a symlink")),
            Node::File { .. } => {
                return Err(LayerError::Io(io::Error::new(
                    io::ErrorKind::NotADirectory,
                    format!("a parent of {shown:?} is a file"),
                )));
            }
        };
    }
    Ok(dir)
}

fn lookup<'a>(root: &'a BTreeMap<String, Node>, path: &[String]) -> Option<&'a Node> {
    let (last, parents) = path.split_last()?;
    let mut dir = root;
    for p in parents {
        match dir.get(p)? {
            Node::Dir(children) => dir = children,
            _ => return None,
        }
    }
    dir.get(last)
}

/// The components of an entry's path, refusing absolute paths, `..` and names that are not
/// UTF-8 (`.` components dropped).
fn components(path: &Path) -> Result<Vec<String>, &'static str> {
    let mut out = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => {
                out.push(p.to_str().ok_or("path is not valid UTF-8")?.to_string())
            }
            Component::CurDir => {}
            Component::ParentDir => return Err("path traversal ('..') is not allowed"),
            Component::RootDir | Component::Prefix(_) => {
                return Err("absolute paths are not allowed");
            }
        }
    }
    Ok(out)
}

/// Whether a symlink target, written in a directory `depth` levels below the root, stays
/// inside the root.
fn link_stays_inside(depth: usize, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth = depth as i64;
    for c in target.components() {
        match c {
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::DigestAlgo;

    fn header(path: &str, kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        // set_path refuses '..' and absolute paths, so write the raw name bytes.
        let name = path.as_bytes();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(mode);
        h.set_cksum();
        h
    }

    /// (path, kind, data, mode, link target)
    type Entry<'a> = (&'a str, tar::EntryType, &'a [u8], u32, Option<&'a str>);

    fn tar(entries: &[Entry<'_>]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, data, mode, link) in entries {
            let mut h = header(path, *kind, data.len() as u64, *mode);
            if let Some(l) = link {
                h.set_link_name(l).unwrap();
                h.set_cksum();
            }
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    const BIG: Limits = Limits {
        max_size: u64::MAX,
        max_files: 100_000,
    };

    fn unpack(data: &[u8], limits: Limits) -> Result<(tempfile::TempDir, Tree), LayerError> {
        let dir = tempfile::tempdir().unwrap();
        let t = Tree::unpack(data, &dir.path().join("scratch"), limits)?;
        Ok((dir, t))
    }

    fn archive_of(tree: &Tree, filter: &ArchiveFilter<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        let mut w = TarGzWriter::new(&mut out, DigestAlgo::Sha256).unwrap();
        tree.archive(filter, ArchiveLimits::default(), &mut w)
            .unwrap();
        w.finish().unwrap();
        out
    }

    /// The same layer unpacked onto disk with the runtime's untar and archived from there
    /// gives the same bytes (no executables here: the disk untar drops modes).
    #[test]
    fn same_artifact_as_unpacking_onto_disk_and_archiving() {
        use tar::EntryType::*;
        let layer = tar(&[
            ("b/z.yaml", Regular, b"z", 0o644, None),
            ("./a/", Directory, b"", 0o755, None),
            ("a/x.yaml", Regular, b"x: 1\n", 0o644, None),
            ("a-b/y", Regular, b"yy", 0o600, None),
            ("a/x.yaml", Regular, b"x: 2\n", 0o644, None),
            ("a/link", Symlink, b"", 0o777, Some("x.yaml")),
            ("a/hard", Link, b"", 0o644, Some("a/x.yaml")),
            (".sourceignore", Regular, b"b/\n", 0o644, None),
            ("c/.sourceignore", Regular, b"*.tmp\n", 0o644, None),
            ("c/k.tmp", Regular, b"t", 0o644, None),
            ("c/k.yaml", Regular, b"k", 0o644, None),
            ("empty/", Directory, b"", 0o755, None),
        ]);
        let (_d, tree) = unpack(&layer, BIG).unwrap();
        let patterns = tree.ignore_patterns().unwrap();
        let matcher = ignore::Matcher::for_artifact(patterns);
        let filter = |p: &[&str], d: bool| matcher.is_excluded(p, d);
        let ours = archive_of(&tree, &filter);

        let disk = tempfile::tempdir().unwrap();
        ferroflux_runtime::artifact::untar(
            &layer[..],
            disk.path(),
            ferroflux_runtime::artifact::UntarLimits::default(),
        )
        .unwrap();
        let matcher =
            ignore::Matcher::for_artifact(ignore::load_ignore_patterns(disk.path()).unwrap());
        let filter = |p: &[&str], d: bool| matcher.is_excluded(p, d);
        let mut theirs = Vec::new();
        crate::storage::archive::write_tar_gz(
            disk.path(),
            &filter,
            ArchiveLimits::default(),
            DigestAlgo::Sha256,
            &mut theirs,
        )
        .unwrap();
        assert_eq!(ours, theirs);

        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(&ours[..]));
        let names: Vec<(String, Vec<u8>)> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                (e.path().unwrap().to_string_lossy().into_owned(), data)
            })
            .collect();
        let want: Vec<(String, Vec<u8>)> = [
            (".", ""),
            (".sourceignore", "b/\n"),
            ("a", ""),
            ("a/hard", "x: 2\n"),
            ("a/x.yaml", "x: 2\n"),
            ("a-b", ""),
            ("a-b/y", "yy"),
            ("c", ""),
            ("c/.sourceignore", "*.tmp\n"),
            ("c/k.yaml", "k"),
            ("empty", ""),
        ]
        .iter()
        .map(|(n, d)| (n.to_string(), d.as_bytes().to_vec()))
        .collect();
        assert_eq!(names, want);
    }

    #[test]
    fn executables_keep_their_x_bit() {
        use tar::EntryType::*;
        let layer = tar(&[
            ("run.sh", Regular, b"#!/bin/sh\n", 0o755, None),
            ("data", Regular, b"d", 0o644, None),
        ]);
        let (_d, tree) = unpack(&layer, BIG).unwrap();
        let out = archive_of(&tree, &|_, _| false);
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(&out[..]));
        let modes: Vec<(String, u32)> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    e.header().mode().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            modes,
            vec![
                (".".to_string(), 0o750),
                ("data".to_string(), 0o600),
                ("run.sh".to_string(), 0o700)
            ]
        );
    }

    #[test]
    fn hostile_and_oversized_layers_are_refused() {
        use tar::EntryType::*;
        let cases: Vec<(Vec<u8>, Limits, &str)> = vec![
            (
                tar(&[("../evil", Regular, b"x", 0o644, None)]),
                BIG,
                "path traversal",
            ),
            (
                tar(&[("a/../../evil", Regular, b"x", 0o644, None)]),
                BIG,
                "path traversal",
            ),
            (
                tar(&[("/etc/passwd", Regular, b"x", 0o644, None)]),
                BIG,
                "absolute paths",
            ),
            (
                tar(&[("l", Symlink, b"", 0o777, Some("../outside"))]),
                BIG,
                "outside the artifact root",
            ),
            (
                tar(&[("l", Symlink, b"", 0o777, Some("/etc"))]),
                BIG,
                "outside the artifact root",
            ),
            (
                tar(&[
                    ("l", Symlink, b"", 0o777, Some("d")),
                    ("l/x", Regular, b"x", 0o644, None),
                ]),
                BIG,
                "nested under a symlink",
            ),
            (
                tar(&[("h", Link, b"", 0o644, Some("../x"))]),
                BIG,
                "outside the artifact root",
            ),
            (
                tar(&[("dev", Char, b"", 0o644, None)]),
                BIG,
                "unsupported entry type",
            ),
            (
                tar(&[("a", Regular, b"0123456789", 0o644, None)]),
                Limits {
                    max_size: 9,
                    max_files: 10,
                },
                "more than 9 bytes",
            ),
            (
                tar(&[
                    ("a", Regular, b"", 0o644, None),
                    ("b", Regular, b"", 0o644, None),
                ]),
                Limits {
                    max_size: 100,
                    max_files: 1,
                },
                "too many entries",
            ),
            (
                tar(&[
                    ("f", Regular, b"x", 0o644, None),
                    ("f/x", Regular, b"x", 0o644, None),
                ]),
                BIG,
                "is a file",
            ),
        ];
        for (layer, limits, want) in cases {
            let err = unpack(&layer, limits).err().expect(want).to_string();
            assert!(err.contains(want), "{err} lacks {want}");
        }
        // Not a tar stream at all.
        let err = unpack(&[0x1f; 700], BIG).err().unwrap().to_string();
        assert!(err.contains("failed to unpack artifact"), "{err}");
    }
}
