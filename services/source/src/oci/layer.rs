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
//!
//! While unpacking, the layer is also checked for being *plain*: a tarball whose every entry
//! any tar reader reads the same way (see [`Tree::plain`]). A plain layer that the ignore rules
//! leave whole unpacks to exactly the tree the re-archived artifact would hold, so the
//! reconciler may store the layer blob itself as the artifact instead of compressing the same
//! files again; the checks above apply to it all the same, entry by entry.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufWriter, Read, Write};
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
    /// Why the layer is not plain (`None`: it is).
    not_plain: Option<&'static str>,
    /// Whether all file contents are in `data` (else only `.sourceignore` files).
    contents: bool,
}

/// Most bytes read after the tar's end-of-archive block while checking that only zeros
/// follow (writers pad to their record size, 10 KiB for GNU tar).
const MAX_TRAILER: u64 = 1 << 20;

/// PAX keys a plain layer may carry: the path, and owner and time fields no reader of an
/// artifact applies.
const PLAIN_PAX_KEYS: &[&[u8]] = &[
    b"path", b"mtime", b"atime", b"ctime", b"uid", b"gid", b"uname", b"gname",
];

/// Why an entry is not plain, if it is not: a regular file (`0`, `\0`) or a directory (`5`, no
/// data) in USTAR, GNU or old format, with a canonical relative path, permission bits within
/// 0755, an octal size field, and PAX records (if any) well formed, each key once and only
/// path, owner or time keys. These rule out every construct that tar readers are known to
/// read differently (Go's `archive/tar` as upstream's consumers use it, and this crate):
/// star prefixes, data on header-only types, `\0`-typed names ending in `/`, PAX `size`,
/// duplicate or conflicting path records, global headers, sparse and link entries.
fn plain_entry<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<(), &'static str> {
    let header = entry.header();
    let bytes = header.as_bytes();
    let kind = bytes[156];
    // `\0` is the old regular type (Go reads it as a directory when the name ends in `/`,
    // which a canonical file path cannot).
    if !matches!(kind, b'0' | b'\0' | b'5') {
        return Err("an entry is neither a regular file nor a directory");
    }
    if header.as_ustar().is_some() && &bytes[508..512] == b"tar\0" {
        return Err("an entry has a star header");
    }
    let mode = header
        .mode()
        .map_err(|_| "an entry has an unreadable mode")?;
    if mode & !0o755 != 0 {
        return Err("an entry has permission bits beyond 0755");
    }
    // Octal digits, then NULs or spaces: read alike by every parser.
    let size_field = &bytes[124..136];
    let digits = size_field
        .iter()
        .position(|b| *b == 0 || *b == b' ')
        .unwrap_or(size_field.len());
    if !size_field[..digits]
        .iter()
        .all(|b| (b'0'..=b'7').contains(b))
        || !size_field[digits..].iter().all(|b| *b == 0 || *b == b' ')
    {
        return Err("an entry has a non-octal size field");
    }
    if kind == b'5' && entry.size() != 0 {
        return Err("a directory entry carries data");
    }
    let path = entry.path_bytes().into_owned();
    if let Some(pax) = entry
        .pax_extensions()
        .map_err(|_| "an entry has unreadable PAX records")?
    {
        let mut seen: Vec<&[u8]> = Vec::new();
        for record in pax {
            let record = record.map_err(|_| "an entry has a malformed PAX record")?;
            let key = record.key_bytes();
            if !PLAIN_PAX_KEYS.contains(&key) {
                return Err("an entry has a PAX record other than path, owner or time");
            }
            if seen.contains(&key) {
                return Err("an entry has a PAX key twice");
            }
            seen.push(key);
            // A GNU long name takes precedence over a PAX path here but not in Go.
            if key == b"path" && record.value_bytes() != path.as_slice() {
                return Err("an entry has both a GNU long name and a PAX path");
            }
        }
    }
    canonical_path(&path, kind == b'5')
}

/// A relative path of non-empty components other than `.` and `..` (an optional leading
/// `./`, a trailing `/` on directories, and the root `.` itself allowed), UTF-8 without `\`.
fn canonical_path(path: &[u8], is_dir: bool) -> Result<(), &'static str> {
    let bad = Err("an entry has a path that is not canonical");
    let Ok(path) = std::str::from_utf8(path) else {
        return bad;
    };
    if path.contains('\\') {
        return bad;
    }
    let path = path.strip_prefix("./").unwrap_or(path);
    let path = if is_dir {
        if path.is_empty() || path == "." {
            return Ok(());
        }
        path.strip_suffix('/').unwrap_or(path)
    } else {
        path
    };
    if path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return bad;
    }
    Ok(())
}

impl Tree {
    /// Unpacks a gzip-compressed layer; file contents go to `scratch` (created). Besides the
    /// entries, plainness needs the compressed stream to be one gzip member that ends the
    /// input, its checksum right, and nothing but zeros after the tar's end.
    pub fn unpack_gz<R: BufRead>(
        reader: R,
        scratch: &Path,
        limits: Limits,
    ) -> Result<Self, LayerError> {
        Self::unpack_gz_with(reader, scratch, limits, true)
    }

    /// As [`Tree::unpack_gz`], with the same checks on every entry, but only `.sourceignore`
    /// contents are kept: enough to decide whether the layer can be stored as it is
    /// ([`Tree::plain`], then [`Tree::ignore_patterns`] and [`Tree::archives_whole`]: a hard
    /// link, which makes a layer not plain, may point at contents not kept); such a tree
    /// cannot be archived (unpack again with [`Tree::unpack_gz`] for that).
    pub fn index_gz<R: BufRead>(
        reader: R,
        scratch: &Path,
        limits: Limits,
    ) -> Result<Self, LayerError> {
        Self::unpack_gz_with(reader, scratch, limits, false)
    }

    fn unpack_gz_with<R: BufRead>(
        reader: R,
        scratch: &Path,
        limits: Limits,
        contents: bool,
    ) -> Result<Self, LayerError> {
        let mut gz = flate2::bufread::GzDecoder::new(reader);
        // Inflated in large steps, whatever size the tar reader asks for.
        let mut inflated = io::BufReader::with_capacity(1 << 20, &mut gz);
        let mut tree = Self::unpack_with(&mut inflated, scratch, limits, contents)?;
        if tree.not_plain.is_none() {
            tree.not_plain = zeros_to_end(&mut inflated).err();
        }
        drop(inflated);
        if tree.not_plain.is_none() && !matches!(gz.into_inner().fill_buf(), Ok([])) {
            tree.not_plain = Some("data follows the gzip stream");
        }
        Ok(tree)
    }

    /// Unpacks an uncompressed tar stream; file contents go to `scratch` (created). The
    /// stream is read up to the tar's end-of-archive block.
    pub fn unpack<R: Read>(reader: R, scratch: &Path, limits: Limits) -> Result<Self, LayerError> {
        Self::unpack_with(reader, scratch, limits, true)
    }

    fn unpack_with<R: Read>(
        reader: R,
        scratch: &Path,
        limits: Limits,
        contents: bool,
    ) -> Result<Self, LayerError> {
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
        let mut not_plain: Option<&'static str> = None;
        let mut archive = tar::Archive::new(reader);
        for entry in archive.entries()? {
            let mut entry = entry?;
            if not_plain.is_none() {
                not_plain = plain_entry(&mut entry).err();
            }
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
                if kind != tar::EntryType::Directory {
                    not_plain.get_or_insert("an entry has an empty path");
                }
                continue;
            };
            match kind {
                tar::EntryType::XGlobalHeader | tar::EntryType::XHeader => {
                    // Not taken as extensions here (no USTAR/GNU magic), but Go applies them.
                    not_plain.get_or_insert("an extension header is not applied to an entry");
                    continue;
                }
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
                        Some(Node::File { .. }) => {
                            not_plain.get_or_insert("a file appears twice");
                        }
                        None => {}
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
                    let keep = contents || name == IGNORE_FILE;
                    let copied = if keep {
                        io::copy(&mut (&mut entry).take(size), &mut out)?
                    } else {
                        io::copy(&mut (&mut entry).take(size), &mut io::sink())?
                    };
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
                    if keep {
                        offset += size;
                    }
                }
            }
        }
        let data = out.into_inner().map_err(|e| e.into_error())?;
        Ok(Self {
            root,
            data,
            not_plain,
            contents,
        })
    }

    /// Whether the layer is plain (every entry read alike by any tar reader, nothing after
    /// the archive but zeros): `Err` says why not.
    pub fn plain(&self) -> Result<(), &'static str> {
        self.not_plain.map_or(Ok(()), Err)
    }

    /// Whether archiving with `filter` and `limits` would write every file and directory of
    /// the tree and nothing else (no entry left out, no link, no file over the size limit):
    /// then a plain layer unpacks to the same tree as the archive.
    pub fn archives_whole(&self, filter: &ArchiveFilter<'_>, limits: ArchiveLimits) -> bool {
        fn rec<'a>(
            dir: &'a BTreeMap<String, Node>,
            components: &mut Vec<&'a str>,
            filter: &ArchiveFilter<'_>,
            limits: ArchiveLimits,
        ) -> bool {
            for (name, node) in dir {
                components.push(name);
                let whole = match node {
                    Node::Link => false,
                    Node::Dir(children) => {
                        !filter(components, true) && rec(children, components, filter, limits)
                    }
                    Node::File { len, .. } => {
                        !filter(components, false)
                            && limits.max_file_size.is_none_or(|limit| *len <= limit)
                    }
                };
                components.pop();
                if !whole {
                    return false;
                }
            }
            true
        }
        rec(&self.root, &mut Vec::new(), filter, limits)
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
        if !self.contents {
            return Err(ArchiveError::Io {
                context: "failed to archive layer".to_string(),
                source: io::Error::other("the layer was indexed without its contents"),
            });
        }
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

/// After the tar's end: at most [`MAX_TRAILER`] bytes, all zeros, up to the end of the
/// stream (for gzip, the decoder checks the member's CRC and size on the way).
fn zeros_to_end<R: Read>(reader: R) -> Result<(), &'static str> {
    let mut rest = reader.take(MAX_TRAILER + 1);
    let mut buf = [0u8; 8192];
    let mut seen: u64 = 0;
    loop {
        let n = rest
            .read(&mut buf)
            .map_err(|_| "the gzip stream does not end cleanly")?;
        if n == 0 {
            return Ok(());
        }
        seen += n as u64;
        if seen > MAX_TRAILER || buf[..n].iter().any(|b| *b != 0) {
            return Err("data follows the end of the tar archive");
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

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        w.write_all(data).unwrap();
        w.finish().unwrap()
    }

    fn plainness(layer: &[u8]) -> Result<(), &'static str> {
        let dir = tempfile::tempdir().unwrap();
        let tree = Tree::unpack_gz(layer, &dir.path().join("scratch"), BIG).unwrap();
        tree.plain()
    }

    fn with_header(path: &str, edit: impl Fn(&mut tar::Header)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = header(path, tar::EntryType::Regular, 1, 0o644);
        edit(&mut h);
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
        b.into_inner().unwrap()
    }

    /// Layers as `flux push artifact` (ours, USTAR with PAX paths), the tar crate (GNU long
    /// names) and old-style headers write them are plain; a plain layer that the ignore
    /// rules leave whole archives whole.
    #[test]
    fn pushed_layers_are_plain() {
        use tar::EntryType::*;
        let src = tempfile::tempdir().unwrap();
        let long = format!("deep/{}/{}.yaml", "d".repeat(120), "é".repeat(60));
        for (p, c) in [("a/x.yaml", "x"), ("b.yaml", "b"), (long.as_str(), "l")] {
            let p = src.path().join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, c).unwrap();
        }
        let (pushed, _) = crate::oci::build::build_to_vec(src.path(), &[]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let tree = Tree::unpack_gz(&pushed[..], &dir.path().join("s"), BIG).unwrap();
        assert_eq!(tree.plain(), Ok(()));
        let matcher = ignore::Matcher::for_artifact(tree.ignore_patterns().unwrap());
        assert!(tree.archives_whole(&|p, d| matcher.is_excluded(p, d), ArchiveLimits::default()));

        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o755);
        b.append_data(&mut h, format!("{}/run.sh", "x".repeat(150)), &b"r"[..])
            .unwrap();
        assert_eq!(plainness(&gz(&b.into_inner().unwrap())), Ok(()));

        let old = tar(&[
            ("./", Directory, b"", 0o755, None),
            ("./a/", Directory, b"", 0o755, None),
            ("./a/x", Regular, b"x", 0o644, None),
        ]);
        assert_eq!(plainness(&gz(&old)), Ok(()));
        // Record padding (zeros) after the end is fine.
        let mut padded = old.clone();
        padded.resize(old.len() + 9 * 1024, 0);
        assert_eq!(plainness(&gz(&padded)), Ok(()));
    }

    /// Everything a tar reader might read differently, or that the archive would not keep as
    /// it is, makes a layer not plain (it is still unpacked, and archived, as before).
    #[test]
    fn layers_that_are_not_plain() {
        use tar::EntryType::*;
        fn file(path: &str, mode: u32) -> Entry<'_> {
            (path, tar::EntryType::Regular, b"x", mode, None)
        }
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                gz(&tar(&[
                    file("a", 0o644),
                    ("l", Symlink, b"", 0o777, Some("a")),
                ])),
                "neither a regular file",
            ),
            (
                gz(&tar(&[
                    file("a", 0o644),
                    ("h", Link, b"", 0o644, Some("a")),
                ])),
                "neither a regular file",
            ),
            (gz(&tar(&[file("a", 0o4755)])), "beyond 0755"),
            (gz(&tar(&[file("a", 0o666)])), "beyond 0755"),
            (
                gz(&tar(&[file("a", 0o644), file("a", 0o644)])),
                "appears twice",
            ),
            (
                gz(&tar(&[("d", Directory, b"data", 0o755, None)])),
                "directory entry carries data",
            ),
            (gz(&tar(&[file("a//b", 0o644)])), "not canonical"),
            (gz(&tar(&[file("a/./b", 0o644)])), "not canonical"),
            (gz(&tar(&[file("a\\b", 0o644)])), "not canonical"),
            (
                gz(&with_header("a", |h| {
                    // A star header: USTAR magic and the star trailer.
                    h.as_mut_bytes()[257..265].copy_from_slice(b"ustar\x0000");
                    h.as_mut_bytes()[508..512].copy_from_slice(b"tar\0");
                })),
                "star header",
            ),
            (
                gz(&with_header("a", |h| {
                    // Size in base-256.
                    let f = &mut h.as_mut_bytes()[124..136];
                    f.fill(0);
                    f[0] = 0x80;
                    f[11] = 1;
                })),
                "non-octal size",
            ),
        ];
        for (layer, want) in cases {
            let got = plainness(&layer).expect_err(want);
            assert!(got.contains(want), "{got} lacks {want}");
        }

        let pax = |records: &[(&str, &str)]| {
            let mut b = tar::Builder::new(Vec::new());
            b.append_pax_extensions(records.iter().map(|(k, v)| (*k, v.as_bytes())))
                .unwrap();
            let mut h = tar::Header::new_ustar();
            h.set_path("a").unwrap();
            h.set_size(1);
            h.set_mode(0o644);
            h.set_cksum();
            b.append(&h, &b"x"[..]).unwrap();
            gz(&b.into_inner().unwrap())
        };
        assert_eq!(plainness(&pax(&[("path", "b"), ("mtime", "0")])), Ok(()));
        for (records, want) in [
            (&[("comment", "x")][..], "other than path"),
            (&[("path", "b"), ("path", "c")][..], "key twice"),
            (&[("GNU.sparse.map", "0,1")][..], "other than path"),
        ] {
            let got = plainness(&pax(records)).expect_err(want);
            assert!(got.contains(want), "{got} lacks {want}");
        }

        // After the archive: data past the end-of-archive block, a second gzip member,
        // bytes after the member, a wrong CRC.
        let ok = tar(&[file("a", 0o644)]);
        let mut hidden = ok.clone();
        hidden.extend_from_slice(&tar(&[file("b", 0o644)]));
        assert_eq!(
            plainness(&gz(&hidden)),
            Err("data follows the end of the tar archive")
        );
        let mut two = gz(&ok);
        two.extend_from_slice(&gz(&ok));
        assert_eq!(plainness(&two), Err("data follows the gzip stream"));
        let mut junk = gz(&ok);
        junk.extend_from_slice(b"junk");
        assert_eq!(plainness(&junk), Err("data follows the gzip stream"));
        let mut bad_crc = gz(&ok);
        let n = bad_crc.len();
        bad_crc[n - 8] ^= 1;
        assert_eq!(
            plainness(&bad_crc),
            Err("the gzip stream does not end cleanly")
        );
    }

    /// The archive leaves something out: an ignored entry, a link, a file over the limit.
    #[test]
    fn archives_whole_only_when_nothing_is_left_out() {
        use tar::EntryType::*;
        let layer = tar(&[
            ("a/x.yaml", Regular, b"xx", 0o644, None),
            ("b/.sourceignore", Regular, b"*.tmp\n", 0o644, None),
            ("b/k.yaml", Regular, b"k", 0o644, None),
        ]);
        let (_d, tree) = unpack(&layer, BIG).unwrap();
        let whole = |tree: &Tree, extra: &str, limit: Option<u64>| {
            let mut patterns = tree.ignore_patterns().unwrap();
            patterns.extend(ignore::read_patterns(extra, &[]));
            let matcher = ignore::Matcher::for_artifact(patterns);
            tree.archives_whole(
                &|p, d| matcher.is_excluded(p, d),
                ArchiveLimits {
                    max_file_size: limit,
                },
            )
        };
        assert!(whole(&tree, "", None));
        assert!(whole(&tree, "", Some(6)));
        assert!(!whole(&tree, "", Some(5)), "b/.sourceignore is 6 bytes");
        assert!(!whole(&tree, "a/\n", None));
        assert!(!whole(&tree, "*.yaml\n", None));

        let layer = tar(&[
            ("b/.sourceignore", Regular, b"*.tmp\n", 0o644, None),
            ("b/k.tmp", Regular, b"t", 0o644, None),
        ]);
        let (_d, tree) = unpack(&layer, BIG).unwrap();
        assert!(!whole(&tree, "", None), ".sourceignore drops b/k.tmp");
        let layer = tar(&[
            ("a", Regular, b"a", 0o644, None),
            ("l", Symlink, b"", 0o777, Some("a")),
        ]);
        let (_d, tree) = unpack(&layer, BIG).unwrap();
        assert!(!whole(&tree, "", None), "the archive drops links");
    }

    /// The index pass decides as the full unpack does, keeps only `.sourceignore` contents
    /// and refuses to be archived.
    #[test]
    fn index_decides_like_the_full_unpack() {
        use tar::EntryType::*;
        let dir = tempfile::tempdir().unwrap();
        let decide = |layer: &[u8], extra: &str| {
            let mut out = Vec::new();
            for full in [true, false] {
                let scratch = dir.path().join(if full { "full" } else { "index" });
                let tree = if full {
                    Tree::unpack_gz(layer, &scratch, BIG).unwrap()
                } else {
                    Tree::index_gz(layer, &scratch, BIG).unwrap()
                };
                let mut patterns = tree.ignore_patterns().unwrap();
                patterns.extend(ignore::read_patterns(extra, &[]));
                let matcher = ignore::Matcher::for_artifact(patterns);
                let whole = tree
                    .archives_whole(&|p, d| matcher.is_excluded(p, d), ArchiveLimits::default());
                let kept = std::fs::metadata(&scratch).unwrap().len();
                out.push((tree.plain(), whole, kept));
                if !full {
                    let mut buf = Vec::new();
                    let mut w = TarGzWriter::new(&mut buf, DigestAlgo::Sha256).unwrap();
                    let err = tree
                        .archive(&|_, _| false, ArchiveLimits::default(), &mut w)
                        .unwrap_err();
                    assert!(err.to_string().contains("indexed without its contents"));
                }
            }
            out
        };
        let layer = gz(&tar(&[
            ("a/x.yaml", Regular, b"0123456789", 0o644, None),
            ("b/.sourceignore", Regular, b"*.tmp\n", 0o644, None),
            ("b/k.yaml", Regular, b"k", 0o644, None),
        ]));
        assert_eq!(
            decide(&layer, ""),
            vec![(Ok(()), true, 17), (Ok(()), true, 6)]
        );
        let with_tmp = gz(&tar(&[
            ("b/.sourceignore", Regular, b"*.tmp\n", 0o644, None),
            ("b/k.tmp", Regular, b"t", 0o644, None),
        ]));
        assert_eq!(
            decide(&with_tmp, ""),
            vec![(Ok(()), false, 7), (Ok(()), false, 6)]
        );
        assert!(!decide(&layer, "a/\n")[1].1);
        let linked = gz(&tar(&[
            ("a", Regular, b"a", 0o644, None),
            ("l", Symlink, b"", 0o777, Some("a")),
        ]));
        assert_eq!(
            decide(&linked, "")[1].0,
            Err("an entry is neither a regular file nor a directory")
        );
        // The same safety checks: a hostile entry fails the index pass too.
        let evil = gz(&tar(&[("../evil", Regular, b"x", 0o644, None)]));
        let err = Tree::index_gz(&evil[..], &dir.path().join("e"), BIG)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("path traversal"), "{err}");
    }
}
