//! Garbage collection of old artifacts in one object's storage directory, with upstream's rules:
//! files other than the current artifact, lock files and symlinks are removed when older than
//! the retention TTL; then, oldest first, until no more than the retention count remain. The
//! `.lock` file of each removed artifact goes with it. At most `max_files` files are looked at.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Upstream's limit on the number of files walked per collection.
pub const MAX_WALKED_FILES: usize = 1000;

/// Collects garbage next to `current`; returns the removed artifact files.
pub fn collect(
    current: &Path,
    ttl: Duration,
    records: usize,
    max_files: usize,
) -> io::Result<Vec<PathBuf>> {
    let Some(dir) = current.parent() else {
        return Ok(Vec::new());
    };
    let read = match fs::read_dir(dir) {
        Ok(r) => r,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let now = SystemTime::now();
    let mut files: Vec<(SystemTime, PathBuf)> = Vec::new();
    for entry in read {
        let entry = entry?;
        if files.len() >= max_files {
            break;
        }
        let meta = entry.metadata()?;
        let path = entry.path();
        let is_lock = path.extension().is_some_and(|e| e == "lock");
        if meta.is_dir() || meta.file_type().is_symlink() || is_lock {
            continue;
        }
        // Temporary files of a write in progress are not artifacts.
        if entry.file_name().to_string_lossy().starts_with(".tmp-") {
            continue;
        }
        files.push((meta.modified().unwrap_or(now), path));
    }
    files.sort();

    let mut garbage: Vec<PathBuf> = Vec::new();
    for (mtime, path) in &files {
        let age = now.duration_since(*mtime).unwrap_or_default();
        if path != current && age > ttl {
            garbage.push(path.clone());
        }
    }
    let mut remaining = files.len() - garbage.len();
    for (_, path) in &files {
        if remaining <= records {
            break;
        }
        if path != current && !garbage.contains(path) {
            garbage.push(path.clone());
            remaining -= 1;
        }
    }

    let mut removed = Vec::new();
    for path in garbage {
        match fs::remove_file(&path) {
            Ok(()) => {
                let mut lock = path.clone().into_os_string();
                lock.push(".lock");
                let _ = fs::remove_file(PathBuf::from(lock));
                removed.push(path);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(dir: &Path, name: &str, age: Duration) -> PathBuf {
        let p = dir.join(name);
        fs::write(&p, name).unwrap();
        let t = SystemTime::now() - age;
        fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(t)
            .unwrap();
        p
    }

    #[test]
    fn ttl_then_records_keep_current_and_locks() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let old1 = touch(d, "1.tar.gz", Duration::from_secs(600));
        touch(d, "1.tar.gz.lock", Duration::from_secs(600));
        let new2 = touch(d, "2.tar.gz", Duration::from_secs(5));
        let new3 = touch(d, "3.tar.gz", Duration::from_secs(4));
        let cur = touch(d, "4.tar.gz", Duration::from_secs(3));
        touch(d, "4.tar.gz.lock", Duration::from_secs(3));

        let removed = collect(&cur, Duration::from_secs(60), 2, 1000).unwrap();
        // 1 expired; of 2, 3, 4 only two may stay: the oldest non-current one goes.
        assert_eq!(removed, vec![old1.clone(), new2.clone()]);
        assert!(!d.join("1.tar.gz.lock").exists());
        assert!(d.join("4.tar.gz.lock").exists());
        assert!(new3.exists() && cur.exists());

        // Nothing more to do.
        assert!(
            collect(&cur, Duration::from_secs(60), 2, 1000)
                .unwrap()
                .is_empty()
        );
        // The current artifact is never removed, even when expired and over the count.
        let removed = collect(&cur, Duration::ZERO, 0, 1000).unwrap();
        assert_eq!(removed, vec![new3]);
        assert!(cur.exists());
    }
}
