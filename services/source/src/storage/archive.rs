//! Deterministic tar.gz of a directory, normalised as upstream source-controller does so that
//! equal trees give equal bytes and equal digests:
//!
//! - lexical walk (entries of each directory sorted by name, parents before children), the root
//!   itself appears as `.`;
//! - regular files and directories only (symlinks, devices, sockets are left out);
//! - header name = path relative to the root, uid/gid 0, no user/group names, mtime 0;
//! - modes: directories 0750, regular files 0600, executables (any x bit) 0700;
//! - gzip header without file name or time; the deflate stream made in 1 MiB blocks on several
//!   threads ([`ParallelGz`]), the same bytes whatever the thread count.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use flate2::Compression;

use super::{DigestAlgo, Hasher};

/// Decides whether an entry is left out: gets the path components relative to the root and
/// whether the entry is a directory; returns true to exclude.
pub type ArchiveFilter<'a> = dyn Fn(&[&str], bool) -> bool + 'a;

/// Limits applied while archiving.
#[derive(Clone, Copy, Debug, Default)]
pub struct ArchiveLimits {
    /// Largest allowed regular file, in bytes.
    pub max_file_size: Option<u64>,
}

/// An archiving failure.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("file '{path}' is {size} bytes, larger than the limit of {limit} bytes")]
    FileTooLarge { path: String, size: u64, limit: u64 },
    #[error("path '{0}' is not valid UTF-8")]
    NonUtf8Path(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> ArchiveError {
    let context = context.into();
    move |source| ArchiveError::Io { context, source }
}

/// Counts and hashes what is written through it.
struct DigestWriter<W: Write> {
    inner: W,
    hasher: Hasher,
    written: u64,
}

impl<W: Write> Write for DigestWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Bytes of uncompressed input per block of [`ParallelGz`].
const GZ_BLOCK: usize = 1 << 20;
/// Deflate's window: each block starts with this much of the previous block as dictionary.
const GZ_WINDOW: usize = 32 * 1024;

/// A gzip writer that deflates 1 MiB blocks on several threads, as pigz does: each block is
/// compressed at the default level with the 32 KiB before it as preset dictionary and ends on
/// a sync flush (the last one finishes the stream), so the output depends only on the input —
/// not on the thread count or on timing — and is one ordinary gzip member.
pub struct ParallelGz<W: Write> {
    out: W,
    block: Vec<u8>,
    window: Vec<u8>,
    crc: flate2::Crc,
    pending: std::collections::VecDeque<std::thread::JoinHandle<io::Result<Vec<u8>>>>,
    threads: usize,
}

impl<W: Write> ParallelGz<W> {
    /// Writes the gzip header (no name, no time, unknown OS).
    pub fn new(mut out: W, threads: usize) -> io::Result<Self> {
        out.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff])?;
        Ok(Self {
            out,
            block: Vec::with_capacity(GZ_BLOCK),
            window: Vec::new(),
            crc: flate2::Crc::new(),
            pending: Default::default(),
            threads: threads.max(1),
        })
    }

    fn dispatch(&mut self, last: bool) -> io::Result<()> {
        let data = std::mem::replace(&mut self.block, Vec::with_capacity(GZ_BLOCK));
        self.crc.update(&data);
        let dict = std::mem::take(&mut self.window);
        self.window = data[data.len().saturating_sub(GZ_WINDOW)..].to_vec();
        if self.window.len() < GZ_WINDOW && !dict.is_empty() {
            // A short block: the window continues from the one before.
            let keep = (GZ_WINDOW - self.window.len()).min(dict.len());
            let mut w = dict[dict.len() - keep..].to_vec();
            w.extend_from_slice(&self.window);
            self.window = w;
        }
        self.pending.push_back(std::thread::spawn(move || {
            deflate_block(&dict, &data, last)
        }));
        while self.pending.len() > self.threads {
            self.write_oldest()?;
        }
        Ok(())
    }

    fn write_oldest(&mut self) -> io::Result<()> {
        if let Some(h) = self.pending.pop_front() {
            let out = h
                .join()
                .map_err(|_| io::Error::other("compression thread panicked"))??;
            self.out.write_all(&out)?;
        }
        Ok(())
    }

    /// Compresses what is left, writes the trailer and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.dispatch(true)?;
        while !self.pending.is_empty() {
            self.write_oldest()?;
        }
        let crc = self.crc.sum();
        let size = self.crc.amount();
        self.out.write_all(&crc.to_le_bytes())?;
        self.out.write_all(&size.to_le_bytes())?;
        Ok(self.out)
    }
}

impl<W: Write> Write for ParallelGz<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(GZ_BLOCK - self.block.len());
        self.block.extend_from_slice(&buf[..n]);
        if self.block.len() == GZ_BLOCK {
            self.dispatch(false)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Raw deflate of one block with a preset dictionary, ending on a sync flush or, for the last
/// block, finishing the stream.
fn deflate_block(dict: &[u8], data: &[u8], last: bool) -> io::Result<Vec<u8>> {
    use flate2::{Compress, FlushCompress, Status};
    let mut c = Compress::new(Compression::default(), false);
    if !dict.is_empty() {
        c.set_dictionary(dict).map_err(io::Error::other)?;
    }
    let mut out = Vec::with_capacity(data.len() / 2 + 1024);
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    loop {
        let consumed = c.total_in() as usize;
        if out.capacity() - out.len() < 1024 {
            out.reserve(64 * 1024);
        }
        let status = c
            .compress_vec(&data[consumed..], &mut out, flush)
            .map_err(io::Error::other)?;
        if status == Status::StreamEnd {
            break;
        }
        // A sync flush is complete once all input is taken and output space was left over.
        if !last && c.total_in() as usize == data.len() && out.len() < out.capacity() {
            break;
        }
    }
    Ok(out)
}

/// The normalised tar.gz stream with the root entry written; entries are appended in the order
/// the caller gives them (the directory walk below, or an in-memory tree).
pub struct TarGzWriter<W: Write> {
    tar: tar::Builder<io::BufWriter<ParallelGz<DigestWriter<io::BufWriter<W>>>>>,
}

impl<W: Write> TarGzWriter<W> {
    /// Starts the stream and writes the root (`.`) entry.
    pub fn new(out: W, algo: DigestAlgo) -> io::Result<Self> {
        let counter = DigestWriter {
            inner: io::BufWriter::with_capacity(256 * 1024, out),
            hasher: algo.hasher(),
            written: 0,
        };
        let threads = std::thread::available_parallelism()
            .map(|n| n.get().min(4))
            .unwrap_or(1);
        let gz = ParallelGz::new(counter, threads)?;
        let mut tar = tar::Builder::new(io::BufWriter::with_capacity(256 * 1024, gz));
        tar.mode(tar::HeaderMode::Deterministic);
        tar.follow_symlinks(false);
        let mut w = Self { tar };
        w.dir(".")?;
        Ok(w)
    }

    /// A directory header (mode 0750).
    pub fn dir(&mut self, rel: &str) -> io::Result<()> {
        let mut h = base_header(tar::EntryType::Directory, 0o750, 0);
        self.tar.append_data(&mut h, rel, io::empty())
    }

    /// A regular file of `size` bytes read from `data` (mode 0700 if executable, else 0600).
    pub fn file(
        &mut self,
        rel: &str,
        size: u64,
        executable: bool,
        data: impl io::Read,
    ) -> io::Result<()> {
        let mode = if executable { 0o700 } else { 0o600 };
        let mut h = base_header(tar::EntryType::Regular, mode, size);
        self.tar
            .append_data(&mut h, rel, io::Read::take(data, size))
    }

    /// Ends the tar and gzip streams; returns the digest (`<algo>:<hex>`) and size of the
    /// compressed bytes.
    pub fn finish(self) -> io::Result<(String, u64)> {
        let gz = self.tar.into_inner()?;
        let gz = gz.into_inner().map_err(|e| e.into_error())?;
        let mut counter = gz.finish()?;
        counter.flush()?;
        Ok((counter.hasher.finish(), counter.written))
    }
}

/// Writes the archive of `dir` to `out`; returns the digest (`<algo>:<hex>`) and size of the
/// compressed bytes.
pub fn write_tar_gz<W: Write>(
    dir: &Path,
    filter: &ArchiveFilter<'_>,
    limits: ArchiveLimits,
    algo: DigestAlgo,
    out: W,
) -> Result<(String, u64), ArchiveError> {
    let mut tar = TarGzWriter::new(out, algo).map_err(io_err("failed to write archive header"))?;
    let mut components: Vec<String> = Vec::new();
    walk(dir, &mut components, filter, limits, &mut tar)?;
    tar.finish().map_err(io_err("failed to finish archive"))
}

fn walk<W: Write>(
    dir: &Path,
    components: &mut Vec<String>,
    filter: &ArchiveFilter<'_>,
    limits: ArchiveLimits,
    tar: &mut TarGzWriter<W>,
) -> Result<(), ArchiveError> {
    let mut entries: Vec<(String, fs::DirEntry)> = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(format!("failed to read {}", dir.display())))? {
        let entry = entry.map_err(io_err(format!("failed to read {}", dir.display())))?;
        let name = entry
            .file_name()
            .into_string()
            .map_err(|n| ArchiveError::NonUtf8Path(n.to_string_lossy().into_owned()))?;
        entries.push((name, entry));
    }
    entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));

    for (name, entry) in entries {
        let ft = entry
            .file_type()
            .map_err(io_err(format!("failed to stat {name}")))?;
        if !(ft.is_file() || ft.is_dir()) {
            continue;
        }
        components.push(name);
        let rel: Vec<&str> = components.iter().map(String::as_str).collect();
        let rel_path = rel.join("/");
        if !filter(&rel, ft.is_dir()) {
            let path = entry.path();
            if ft.is_dir() {
                tar.dir(&rel_path)
                    .map_err(io_err(format!("failed to write header of {rel_path}")))?;
            } else {
                append_file(tar, &path, &rel_path, limits)?;
            }
        }
        // Children of an excluded directory are matched on their own, as upstream does (a
        // negated pattern may bring some of them back).
        if ft.is_dir() {
            walk(&entry.path(), components, filter, limits, tar)?;
        }
        components.pop();
    }
    Ok(())
}

fn base_header(entry_type: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(entry_type);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(size);
    let _ = h.set_username("");
    let _ = h.set_groupname("");
    h
}

fn append_file<W: Write>(
    tar: &mut TarGzWriter<W>,
    path: &Path,
    rel: &str,
    limits: ArchiveLimits,
) -> Result<(), ArchiveError> {
    let file = fs::File::open(path).map_err(io_err(format!("failed to open {rel}")))?;
    let meta = file
        .metadata()
        .map_err(io_err(format!("failed to stat {rel}")))?;
    let size = meta.len();
    if let Some(limit) = limits.max_file_size
        && size > limit
    {
        return Err(ArchiveError::FileTooLarge {
            path: rel.to_string(),
            size,
            limit,
        });
    }
    tar.file(rel, size, is_executable(&meta), file)
        .map_err(io_err(format!("failed to archive {rel}")))
}

#[cfg(unix)]
fn is_executable(meta: &fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_meta: &fs::Metadata) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(root: &Path) {
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::create_dir_all(root.join("a-c")).unwrap();
        fs::write(root.join("a/b/file.yaml"), "kind: A\n").unwrap();
        fs::write(root.join("a-c/x"), "x").unwrap();
        fs::write(root.join("README.md"), "# hi\n").unwrap();
        fs::write(root.join("run.sh"), "#!/bin/sh\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(root.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
            std::os::unix::fs::symlink("README.md", root.join("link")).unwrap();
        }
    }

    fn build(root: &Path, filter: &ArchiveFilter<'_>) -> (String, Vec<u8>) {
        let mut out = Vec::new();
        let (digest, size) = write_tar_gz(
            root,
            filter,
            ArchiveLimits::default(),
            DigestAlgo::Sha256,
            &mut out,
        )
        .unwrap();
        assert_eq!(size as usize, out.len());
        (digest, out)
    }

    fn entries(gz: &[u8]) -> Vec<(String, u32, u64, u64)> {
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(gz));
        ar.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    h.mode().unwrap(),
                    h.mtime().unwrap(),
                    h.uid().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn equal_trees_give_equal_bytes() {
        let t1 = tempfile::tempdir().unwrap();
        let t2 = tempfile::tempdir().unwrap();
        tree(t1.path());
        // Same content written in another order, with other mtimes.
        fs::create_dir_all(t2.path().join("a-c")).unwrap();
        fs::write(t2.path().join("a-c/x"), "x").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        tree(t2.path());
        let (d1, b1) = build(t1.path(), &|_, _| false);
        let (d2, b2) = build(t2.path(), &|_, _| false);
        assert_eq!(d1, d2);
        assert_eq!(b1, b2);
        let mut h = DigestAlgo::Sha256.hasher();
        h.update(&b1);
        assert_eq!(h.finish(), d1);
    }

    #[test]
    fn entries_are_normalised_and_in_lexical_walk_order() {
        let t = tempfile::tempdir().unwrap();
        tree(t.path());
        let (_, bytes) = build(t.path(), &|_, _| false);
        let list = entries(&bytes);
        let names: Vec<&str> = list.iter().map(|e| e.0.as_str()).collect();
        // Per-directory order: "a" (and its children) before "a-c"; symlink left out.
        assert_eq!(
            names,
            vec![
                ".",
                "README.md",
                "a",
                "a/b",
                "a/b/file.yaml",
                "a-c",
                "a-c/x",
                "run.sh"
            ]
        );
        let modes: Vec<u32> = list.iter().map(|e| e.1).collect();
        assert_eq!(
            modes,
            vec![0o750, 0o600, 0o750, 0o750, 0o600, 0o750, 0o600, 0o700]
        );
        assert!(list.iter().all(|e| e.2 == 0 && e.3 == 0));
        // The gzip header carries no time.
        assert_eq!(&bytes[4..8], &[0, 0, 0, 0]);
    }

    #[test]
    fn filter_and_size_limit() {
        let t = tempfile::tempdir().unwrap();
        tree(t.path());
        let (_, bytes) = build(t.path(), &|p, _| p.first() == Some(&"a"));
        let names: Vec<String> = entries(&bytes).into_iter().map(|e| e.0).collect();
        assert!(!names.iter().any(|n| n.starts_with("a/") || n == "a"));
        assert!(names.contains(&"a-c/x".to_string()));

        let err = write_tar_gz(
            t.path(),
            &|_, _| false,
            ArchiveLimits {
                max_file_size: Some(6),
            },
            DigestAlgo::Sha256,
            Vec::new(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "file 'a/b/file.yaml' is 8 bytes, larger than the limit of 6 bytes"
        );
    }

    #[test]
    fn parallel_gzip_is_valid_and_independent_of_threads() {
        use std::io::Read as _;
        let mut x: u64 = 7;
        let mut data = Vec::new();
        while data.len() < 3 * GZ_BLOCK + 12_345 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            data.extend_from_slice(format!("key{}: {:x}\n", x % 13, x % 100_000).as_bytes());
        }
        let gz = |threads: usize, data: &[u8]| {
            let mut w = ParallelGz::new(Vec::new(), threads).unwrap();
            // Odd write sizes cross block boundaries.
            for chunk in data.chunks(77_777) {
                w.write_all(chunk).unwrap();
            }
            w.finish().unwrap()
        };
        let one = gz(1, &data);
        assert_eq!(one, gz(3, &data));
        // GzDecoder checks the CRC and the size in the trailer.
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&one[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        assert!(one.len() < data.len() / 2, "compressed {}", one.len());
        for small in [&b""[..], b"x", &data[..GZ_BLOCK]] {
            let out = gz(2, small);
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&out[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, small);
        }
    }
}
