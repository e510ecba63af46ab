//! The artifact tarball of `flux push artifact` (fluxcd/pkg `oci` build + `tar.Tar`), written
//! the way Go's `archive/tar` and `compress/gzip` write it so that the uncompressed stream is
//! the same bytes upstream produces for the same tree:
//!
//! - a lexical walk (`filepath.WalkDir`: entries of a directory sorted by name, a directory's
//!   entry before its children), the root itself first as `.`;
//! - regular files and directories only (symlinks, devices, sockets are skipped);
//! - an excluded directory leaves only its own entry out: its children are matched on their own;
//! - names relative to the root with `/`, no trailing `/` on directories;
//! - permission bits as on disk (plus setuid/setgid/sticky), uid/gid 0, no user/group names,
//!   mtime 0, type `0`/`5`; USTAR headers (a long ASCII name split into prefix and name), PAX
//!   `path` records for names USTAR cannot hold, each exactly as Go formats them (octal fields
//!   zero-padded and NUL-terminated, the checksum as six digits, NUL, space);
//! - two zero blocks at the end and no record padding;
//! - gzip at the default level with a header without name, time 0, XFL 0, OS 255.
//!
//! The deflate stream itself comes from flate2, not Go's compress/flate, so the compressed
//! bytes (and the layer digest) differ from upstream's for the same tree; the tar inside and
//! everything a reader sees are the same.
//!
//! A single file is archived as upstream does: staged alone in a fresh directory (mode 0700),
//! so the tarball holds `.` and the file.

use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest as _, Sha256};

use crate::ignore::{self, Matcher};

/// The default `--ignore-paths` of `flux push artifact` / `flux build artifact`: the VCS
/// patterns and the default file extensions of sourceignore.
pub fn default_ignore_paths() -> Vec<String> {
    ignore::EXCLUDE_VCS
        .split(',')
        .chain(ignore::EXCLUDE_EXT.split(','))
        .map(str::to_string)
        .collect()
}

/// A failure while building the tarball.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("source path does not exist: {0}")]
    NotFound(String),
    #[error("invalid source path {path}: {source}")]
    InvalidSource {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("path '{0}' is not valid UTF-8")]
    NonUtf8Path(String),
    #[error("file '{path}' is too large for a tar header ({size} bytes)")]
    TooLarge { path: String, size: u64 },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> BuildError {
    let context = context.into();
    move |source| BuildError::Io { context, source }
}

/// The result of a build: the compressed bytes' digest (`sha256:<hex>`) and size, and the
/// uncompressed stream's digest (the layer's diff ID).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Built {
    pub digest: String,
    pub size: u64,
    pub diff_id: String,
}

/// Builds the artifact tarball of `source` (a directory, or a single file) into `out`,
/// leaving out what `ignore_paths` (gitignore lines, relative to the root) exclude.
pub fn build<W: Write>(
    source: &Path,
    ignore_paths: &[String],
    out: W,
) -> Result<Built, BuildError> {
    let abs = std::path::absolute(source).map_err(|e| BuildError::InvalidSource {
        path: source.display().to_string(),
        source: e,
    })?;
    let meta = match fs::metadata(&abs) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(BuildError::NotFound(abs.display().to_string()));
        }
        Err(e) => {
            return Err(BuildError::InvalidSource {
                path: abs.display().to_string(),
                source: e,
            });
        }
    };
    let patterns = ignore::read_patterns(&ignore_paths.join("\n"), &[]);
    let matcher = Matcher::new(patterns);

    let hashed = HashWriter::new(io::BufWriter::with_capacity(256 * 1024, out));
    let gz = GzEncoder::new(hashed, Compression::default());
    let mut tar = TarWriter {
        inner: HashWriter::new(gz),
    };
    let stage;
    let root: PathBuf = if meta.is_dir() {
        abs
    } else {
        stage = tempfile_dir()?;
        let name = abs
            .file_name()
            .ok_or_else(|| BuildError::NotFound(abs.display().to_string()))?;
        let staged = stage.path().join(name);
        fs::copy(&abs, &staged).map_err(io_err(format!("failed to stage {}", abs.display())))?;
        fs::set_permissions(
            &staged,
            fs::Permissions::from_mode(meta.permissions().mode() & 0o777),
        )
        .map_err(io_err("failed to stage the file"))?;
        stage.path().to_path_buf()
    };
    let root_meta =
        fs::metadata(&root).map_err(io_err(format!("failed to stat {}", root.display())))?;
    tar.header(".", &root_meta, true)
        .map_err(io_err("failed to write archive header"))?;
    let mut components = Vec::new();
    walk(&root, &mut components, &matcher, &mut tar)?;

    tar.inner
        .write_all(&[0u8; 1024])
        .map_err(io_err("failed to finish tar stream"))?;
    let diff_id = tar.inner.digest();
    let gz = tar.inner.inner;
    let mut hashed = gz
        .finish()
        .map_err(io_err("failed to finish gzip stream"))?;
    hashed
        .flush()
        .map_err(io_err("failed to write the artifact"))?;
    Ok(Built {
        digest: hashed.digest(),
        size: hashed.written,
        diff_id,
    })
}

/// Builds into a byte vector.
pub fn build_to_vec(
    source: &Path,
    ignore_paths: &[String],
) -> Result<(Vec<u8>, Built), BuildError> {
    let mut out = Vec::new();
    let built = build(source, ignore_paths, &mut out)?;
    Ok((out, built))
}

/// A temporary directory with mode 0700 (as Go's `os.MkdirTemp`), removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn tempfile_dir() -> Result<TempDir, BuildError> {
    let base = std::env::temp_dir();
    for attempt in 0u32..100 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = base.join(format!(
            "oci-build-{}-{nanos:x}-{attempt}",
            std::process::id()
        ));
        match fs::create_dir(&dir) {
            Ok(()) => {
                fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
                    .map_err(io_err("failed to create a staging directory"))?;
                return Ok(TempDir(dir));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err("failed to create a staging directory")(e)),
        }
    }
    Err(io_err("failed to create a staging directory")(
        io::Error::other("too many attempts"),
    ))
}

fn walk<W: Write>(
    dir: &Path,
    components: &mut Vec<String>,
    matcher: &Matcher,
    tar: &mut TarWriter<W>,
) -> Result<(), BuildError> {
    let mut entries: Vec<(String, fs::DirEntry)> = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(format!("failed to read {}", dir.display())))? {
        let entry = entry.map_err(io_err(format!("failed to read {}", dir.display())))?;
        let name = entry
            .file_name()
            .into_string()
            .map_err(|n| BuildError::NonUtf8Path(n.to_string_lossy().into_owned()))?;
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
        if !matcher.is_excluded(&rel, ft.is_dir()) {
            let path = entry.path();
            let meta = fs::metadata(&path).map_err(io_err(format!("failed to stat {rel_path}")))?;
            tar.header(&rel_path, &meta, ft.is_dir())
                .map_err(io_err(format!("failed to write header of {rel_path}")))?;
            if !ft.is_dir() {
                let size = meta.len();
                let mut file =
                    fs::File::open(&path).map_err(io_err(format!("failed to open {rel_path}")))?;
                let copied = io::copy(&mut (&mut file).take(size), &mut tar.inner)
                    .map_err(io_err(format!("failed to archive {rel_path}")))?;
                if copied != size {
                    return Err(io_err(format!("failed to archive {rel_path}"))(
                        io::Error::other("file changed size while archiving"),
                    ));
                }
                let pad = (512 - (size % 512) as usize) % 512;
                tar.inner
                    .write_all(&[0u8; 512][..pad])
                    .map_err(io_err(format!("failed to archive {rel_path}")))?;
            }
        }
        if ft.is_dir() {
            walk(&entry.path(), components, matcher, tar)?;
        }
        components.pop();
    }
    Ok(())
}

/// Counts and hashes what passes through.
struct HashWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W> HashWriter<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            written: 0,
        }
    }

    fn digest(&self) -> String {
        format!("sha256:{}", hex::encode(self.hasher.clone().finalize()))
    }
}

impl<W: Write> Write for HashWriter<W> {
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

const NAME_SIZE: usize = 100;
const PREFIX_SIZE: usize = 155;
/// The largest size an 11-digit octal field holds.
const MAX_OCTAL_SIZE: u64 = 0o77777777777;

struct TarWriter<W: Write> {
    inner: HashWriter<W>,
}

impl<W: Write> TarWriter<W> {
    /// Writes the header(s) of one entry as Go's `tar.Writer.WriteHeader` does for a
    /// `FileInfoHeader` with zeroed owner and times.
    fn header(&mut self, name: &str, meta: &fs::Metadata, is_dir: bool) -> io::Result<()> {
        let size = if is_dir { 0 } else { meta.len() };
        if size > MAX_OCTAL_SIZE {
            return Err(io::Error::other(format!(
                "file '{name}' is too large for a tar header ({size} bytes)"
            )));
        }
        let raw_mode = meta.permissions().mode();
        // Permission bits plus setuid (04000), setgid (02000), sticky (01000).
        let mode = u64::from(raw_mode & 0o7777);
        let typeflag = if is_dir { b'5' } else { b'0' };
        let ascii = name.is_ascii();
        if ascii && name.len() <= NAME_SIZE {
            let blk = header_block(name, "", mode, size, typeflag);
            return self.inner.write_all(&blk);
        }
        if let Some((prefix, suffix)) = split_ustar_path(name) {
            let blk = header_block(suffix, prefix, mode, size, typeflag);
            return self.inner.write_all(&blk);
        }
        // PAX: an extended header with the `path` record, then the main header with the
        // name's ASCII characters cut at 100 bytes.
        let record = pax_record("path", name);
        let (dir, file) = match name.rfind('/') {
            Some(i) => (&name[..=i], &name[i + 1..]),
            None => ("", name),
        };
        let pax_name: String = to_ascii(&format!("{dir}PaxHeaders.0/{file}"));
        let mut pax_name = pax_name.as_str();
        if pax_name.len() > NAME_SIZE {
            pax_name = &pax_name[..NAME_SIZE];
        }
        let pax_name = pax_name.trim_end_matches('/');
        let blk = header_block_with(pax_name, "", 0, record.len() as u64, b'x', false);
        self.inner.write_all(&blk)?;
        self.inner.write_all(record.as_bytes())?;
        let pad = (512 - record.len() % 512) % 512;
        self.inner.write_all(&[0u8; 512][..pad])?;
        let main_name = to_ascii(name);
        let blk = header_block(&main_name, "", mode, size, typeflag);
        self.inner.write_all(&blk)
    }
}

fn to_ascii(s: &str) -> String {
    s.chars().filter(char::is_ascii).collect()
}

/// A PAX record `"<len> <key>=<value>\n"` where `<len>` counts the whole record.
fn pax_record(key: &str, value: &str) -> String {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    loop {
        let total = len.to_string().len() + body.len();
        if total == len {
            break;
        }
        len = total;
    }
    format!("{len}{body}")
}

/// Go's `splitUSTARPath`: a prefix of at most 155 bytes and a name of at most 100, split at
/// a `/`.
fn split_ustar_path(name: &str) -> Option<(&str, &str)> {
    let mut length = name.len();
    if length <= NAME_SIZE || !name.is_ascii() {
        return None;
    } else if length > PREFIX_SIZE + 1 {
        length = PREFIX_SIZE + 1;
    } else if name.as_bytes()[length - 1] == b'/' {
        length -= 1;
    }
    let i = name[..length].rfind('/')?;
    let (nlen, plen) = (name.len() - i - 1, i);
    if i == 0 || nlen > NAME_SIZE || nlen == 0 || plen > PREFIX_SIZE {
        return None;
    }
    Some((&name[..i], &name[i + 1..]))
}

/// Go's `formatString`: the bytes, NUL-terminated when shorter than the field, cut when
/// longer (a cut that ends in `/` loses its trailing slashes).
fn put_str(field: &mut [u8], s: &str) {
    let b = s.as_bytes();
    let n = b.len().min(field.len());
    field[..n].copy_from_slice(&b[..n]);
    if b.len() < field.len() {
        field[b.len()] = 0;
    }
    if b.len() > field.len() && field[field.len() - 1] == b'/' {
        let kept = s[..field.len() - 1].trim_end_matches('/').len();
        field[kept] = 0;
    }
}

/// Go's `formatOctal`: zero-padded octal digits leaving room for a NUL.
fn put_octal(field: &mut [u8], x: u64) {
    let mut s = format!("{x:o}");
    let want = field.len() - 1;
    if s.len() < want {
        s = format!("{}{s}", "0".repeat(want - s.len()));
    }
    put_str(field, &s);
}

/// One 512-byte USTAR/PAX header block as Go's `templateV7Plus` + `setFormat` fill it.
fn header_block(name: &str, prefix: &str, mode: u64, size: u64, typeflag: u8) -> [u8; 512] {
    header_block_with(name, prefix, mode, size, typeflag, true)
}

/// A header block; `dev` fills `devmajor`/`devminor` with zeros as `templateV7Plus` does
/// (Go's `writeRawFile`, which writes PAX extended headers, leaves them empty).
fn header_block_with(
    name: &str,
    prefix: &str,
    mode: u64,
    size: u64,
    typeflag: u8,
    dev: bool,
) -> [u8; 512] {
    let mut b = [0u8; 512];
    put_str(&mut b[0..100], name);
    put_octal(&mut b[100..108], mode);
    put_octal(&mut b[108..116], 0); // uid
    put_octal(&mut b[116..124], 0); // gid
    put_octal(&mut b[124..136], size);
    put_octal(&mut b[136..148], 0); // mtime
    b[156] = typeflag;
    // linkname [157..257] stays empty
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    // uname [265..297], gname [297..329] empty
    if dev {
        put_octal(&mut b[329..337], 0); // devmajor
        put_octal(&mut b[337..345], 0); // devminor
    }
    put_str(&mut b[345..500], prefix);
    // The checksum counts its own field as spaces; written as 6 digits, NUL, space.
    b[148..156].copy_from_slice(b"        ");
    let sum: u64 = b.iter().map(|&x| u64::from(x)).sum();
    put_octal(&mut b[148..155], sum);
    b[155] = b' ';
    b
}

/// Computes `sha256:<hex>` of bytes.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(gz: &[u8]) -> Vec<(String, u32, u64, char)> {
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
                    h.entry_type().as_byte() as char,
                )
            })
            .collect()
    }

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        fs::create_dir_all(p.join("deploy")).unwrap();
        fs::create_dir_all(p.join(".git/objects")).unwrap();
        fs::create_dir_all(p.join("ignore-dir")).unwrap();
        fs::write(p.join("deploy/repo.yaml"), "kind: A\n").unwrap();
        fs::write(p.join("deployment.yaml"), "kind: B\n").unwrap();
        fs::write(p.join("ignore-dir/x.yaml"), "kind: C\n").unwrap();
        fs::write(p.join(".git/objects/o"), "x").unwrap();
        fs::write(p.join(".gitignore"), "x").unwrap();
        fs::write(p.join("logo.png"), "x").unwrap();
        fs::write(p.join("run.sh"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(p.join("run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(p.join("deployment.yaml"), fs::Permissions::from_mode(0o644)).unwrap();
        fs::set_permissions(p, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(p.join("deploy"), fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("deployment.yaml", p.join("link.yaml")).unwrap();
        d
    }

    #[test]
    fn walk_order_modes_and_default_ignores() {
        let d = tree();
        let (gz, built) = build_to_vec(d.path(), &default_ignore_paths()).unwrap();
        let names: Vec<_> = entries(&gz);
        let got: Vec<(&str, u32, char)> = names
            .iter()
            .map(|(n, m, _, t)| (n.as_str(), *m, *t))
            .collect();
        // `.git` is left out as an entry, its children as `.git/` patterns match them too;
        // `*.png` excluded; the symlink skipped; the root first as `.`.
        let dir_mode = fs::metadata(d.path().join("ignore-dir"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(
            got,
            vec![
                (".", 0o755, '5'),
                ("deploy", 0o755, '5'),
                (
                    "deploy/repo.yaml",
                    fs::metadata(d.path().join("deploy/repo.yaml"))
                        .unwrap()
                        .permissions()
                        .mode()
                        & 0o777,
                    '0'
                ),
                ("deployment.yaml", 0o644, '0'),
                ("ignore-dir", dir_mode, '5'),
                (
                    "ignore-dir/x.yaml",
                    fs::metadata(d.path().join("ignore-dir/x.yaml"))
                        .unwrap()
                        .permissions()
                        .mode()
                        & 0o777,
                    '0'
                ),
                ("run.sh", 0o755, '0'),
            ]
        );
        assert!(names.iter().all(|(_, _, mtime, _)| *mtime == 0));
        assert_eq!(built.size, gz.len() as u64);
        assert_eq!(built.digest, sha256_digest(&gz));
        // Deterministic: a second build is byte-identical.
        let (gz2, _) = build_to_vec(d.path(), &default_ignore_paths()).unwrap();
        assert_eq!(gz, gz2);
        // gzip header as Go writes it: no name, mtime 0, XFL 0, OS 255.
        assert_eq!(&gz[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
        // The diff ID is the digest of the uncompressed stream.
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut raw)
            .unwrap();
        assert_eq!(built.diff_id, sha256_digest(&raw));
        assert_eq!(raw.len() % 512, 0);
        assert!(raw[raw.len() - 1024..].iter().all(|b| *b == 0));
    }

    #[test]
    fn user_ignore_paths_replace_the_defaults_and_children_are_matched_alone() {
        let d = tree();
        let ignore = vec!["ignore-dir/".to_string(), "!ignore-dir/x.yaml".to_string()];
        let (gz, _) = build_to_vec(d.path(), &ignore).unwrap();
        let names: Vec<String> = entries(&gz).into_iter().map(|e| e.0).collect();
        assert!(
            names.contains(&".git".to_string()),
            "no VCS default: {names:?}"
        );
        assert!(names.contains(&"logo.png".to_string()));
        assert!(!names.contains(&"ignore-dir".to_string()));
        assert!(
            names.contains(&"ignore-dir/x.yaml".to_string()),
            "re-included child of an excluded directory: {names:?}"
        );
    }

    #[test]
    fn headers_are_go_archive_tar_bytes() {
        let blk = header_block("deploy/repo.yaml", "", 0o644, 8, b'0');
        assert_eq!(&blk[0..17], b"deploy/repo.yaml\0");
        assert_eq!(&blk[100..108], b"0000644\0");
        assert_eq!(&blk[108..116], b"0000000\0");
        assert_eq!(&blk[124..136], b"00000000010\0");
        assert_eq!(&blk[136..148], b"00000000000\0");
        assert_eq!(blk[155], b' ');
        assert_eq!(blk[154], 0);
        assert_eq!(&blk[257..265], b"ustar\x0000");
        assert_eq!(&blk[329..345], b"0000000\x000000000\0");
        // The checksum is what tar readers compute.
        let h = tar::Header::from_byte_slice(&blk);
        assert_eq!(h.cksum().unwrap(), {
            let mut c = blk;
            c[148..156].copy_from_slice(b"        ");
            c.iter().map(|&x| u32::from(x)).sum::<u32>()
        });
    }

    #[test]
    fn long_and_non_ascii_names() {
        let long = format!("{}/{}", "d".repeat(120), "f.yaml");
        assert_eq!(split_ustar_path(&long), Some((&long[..120], "f.yaml")));
        assert_eq!(split_ustar_path("short"), None);
        assert_eq!(split_ustar_path(&"x".repeat(101)), None);
        assert_eq!(pax_record("path", "a"), "9 path=a\n");
        assert_eq!(pax_record("path", &"a".repeat(95)).len(), 105);
        let d = tempfile::tempdir().unwrap();
        let deep = d.path().join("d".repeat(120));
        fs::create_dir_all(&deep).unwrap();
        fs::write(deep.join("f.yaml"), "x").unwrap();
        let very = d.path().join("é".repeat(3));
        fs::create_dir_all(&very).unwrap();
        fs::write(very.join(format!("{}.yaml", "y".repeat(200))), "z").unwrap();
        let (gz, _) = build_to_vec(d.path(), &[]).unwrap();
        let names: Vec<String> = entries(&gz).into_iter().map(|e| e.0).collect();
        assert!(names.contains(&long), "{names:?}");
        assert!(
            names.contains(&format!("{}/{}.yaml", "é".repeat(3), "y".repeat(200))),
            "{names:?}"
        );
    }

    #[test]
    fn a_single_file_is_staged_alone() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("app.yaml");
        fs::write(&f, "kind: X\n").unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o640)).unwrap();
        let (gz, _) = build_to_vec(&f, &default_ignore_paths()).unwrap();
        let got: Vec<(String, u32)> = entries(&gz).into_iter().map(|e| (e.0, e.1)).collect();
        assert_eq!(got, vec![(".".into(), 0o700), ("app.yaml".into(), 0o640)]);
        assert!(matches!(
            build_to_vec(&d.path().join("missing"), &[]),
            Err(BuildError::NotFound(_))
        ));
    }
}
