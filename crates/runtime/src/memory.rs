//! A small idle footprint on glibc, for every controller: one malloc arena (each worker and
//! blocking thread would otherwise get its own heap), a fixed mmap threshold (big temporary
//! buffers such as artifacts are mapped and unmapped instead of fragmenting the heap), and free
//! heap pages handed back to the OS once a burst of reconciles is over.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Reconciles finished since start; the idle trimmer compares it between ticks.
static RECONCILES: AtomicU64 = AtomicU64::new(0);

/// Allocations of at least this size get their own mapping.
const MMAP_THRESHOLD: i32 = 128 * 1024;

/// Tunes malloc; call first thing in `main`, before any other thread exists.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; no other thread is running yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

/// Gives free heap pages back to the OS now.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe and has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Counts a finished reconcile, so that the idle trimmer runs once after the burst.
pub fn note_reconcile() {
    RECONCILES.fetch_add(1, Ordering::Relaxed);
}

/// Every `period`, trims the heap if reconciles ran since the last tick, and at the first quiet
/// tick after start-up or after a burst of reconciles also releases the resident code pages
/// ([`release_code_pages`]); runs forever.
pub async fn trim_after_activity(period: Duration) {
    let mut last = RECONCILES.load(Ordering::Relaxed);
    let mut released = false;
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick of an interval fires at once; start-up is not over yet.
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let now = RECONCILES.load(Ordering::Relaxed);
        if now != last {
            last = now;
            released = false;
            trim();
        } else if !released {
            released = true;
            trim();
            let bytes = release_code_pages();
            tracing::debug!(bytes, "released resident code pages");
        }
    }
}

/// Drops this process's resident pages of read-only file mappings (program code, read-only
/// data, shared libraries) from its page tables, with `madvise(MADV_DONTNEED)`; returns the
/// bytes that were resident.
///
/// Why: the kernel maps code in 64 KiB fault-around windows, so everything run once at start-up
/// (flag parsing, kubeconfig, TLS set-up, discovery, ...) and its neighbours stay resident for
/// the life of the process, most of an idle controller's RSS. The pages stay in the page cache:
/// the code still in use faults straight back in (a minor fault, no I/O) and the rest is
/// reclaimable like any cached file.
///
/// Safe because only mappings that cannot hold data of their own are touched: file-backed, not
/// writable, and without a single anonymous (copied-on-write) page, which rules out the
/// relocated read-only data (RELRO) whose contents differ from the file. Dropping a clean page
/// of a private file mapping only means that the next access reads the file's bytes again,
/// which are the bytes it held.
pub fn release_code_pages() -> u64 {
    #[cfg(target_os = "linux")]
    {
        let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
            return 0;
        };
        let mut released = 0;
        for vma in parse_smaps(&smaps) {
            if !vma.releasable() {
                continue;
            }
            // SAFETY: the range is a whole mapping of this process that is read-only, backed
            // by a file and holds no anonymous pages (see above); MADV_DONTNEED on it only
            // unmaps clean page-cache pages, which later accesses fault in again unchanged.
            let rc = unsafe {
                libc::madvise(
                    vma.start as *mut libc::c_void,
                    vma.end - vma.start,
                    libc::MADV_DONTNEED,
                )
            };
            if rc == 0 {
                released += vma.rss_kib * 1024;
            }
        }
        released
    }
    #[cfg(not(target_os = "linux"))]
    {
        0
    }
}

/// One mapping from `/proc/self/smaps`, with what [`release_code_pages`] looks at.
#[derive(Debug, Default, PartialEq)]
struct Vma {
    start: usize,
    end: usize,
    writable: bool,
    file_backed: bool,
    rss_kib: u64,
    anonymous_kib: Option<u64>,
}

impl Vma {
    fn releasable(&self) -> bool {
        self.file_backed && !self.writable && self.anonymous_kib == Some(0) && self.rss_kib > 0
    }
}

fn parse_smaps(text: &str) -> Vec<Vma> {
    let mut out: Vec<Vma> = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let Some(first) = words.next() else {
            continue;
        };
        if let Some((start, end)) = first.split_once('-')
            && let (Ok(start), Ok(end)) = (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
            )
        {
            // "start-end perms offset dev inode [path]"
            let perms = words.next().unwrap_or("");
            let _offset = words.next();
            let _dev = words.next();
            let inode = words.next().unwrap_or("0");
            let path = words.next().unwrap_or("");
            out.push(Vma {
                start,
                end,
                writable: perms.contains('w'),
                file_backed: inode != "0" && path.starts_with('/'),
                ..Vma::default()
            });
            continue;
        }
        let Some(vma) = out.last_mut() else {
            continue;
        };
        let mut kib = || words.next().and_then(|v| v.parse::<u64>().ok());
        match first {
            "Rss:" => vma.rss_kib = kib().unwrap_or(0),
            "Anonymous:" => vma.anonymous_kib = kib(),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_clean_read_only_file_mappings_are_releasable() {
        let smaps = "\
55d0c0000000-55d0c0100000 r--p 00000000 fd:01 123 /usr/bin/ctl
Rss:                 512 kB
Anonymous:             0 kB
55d0c0100000-55d0c0900000 r-xp 00100000 fd:01 123 /usr/bin/ctl
Size:               8192 kB
Rss:                6000 kB
Anonymous:             0 kB
55d0c0900000-55d0c0a00000 r--p 00900000 fd:01 123 /usr/bin/ctl
Rss:                 600 kB
Anonymous:           600 kB
55d0c0a00000-55d0c0a10000 rw-p 00a00000 fd:01 123 /usr/bin/ctl
Rss:                  64 kB
Anonymous:            16 kB
7f0000000000-7f0000100000 rw-p 00000000 00:00 0 [heap]
Rss:                 900 kB
Anonymous:           900 kB
7f0000200000-7f0000201000 r-xp 00000000 00:00 0 [vdso]
Rss:                   4 kB
Anonymous:             0 kB
7f0000300000-7f0000400000 r-xp 00000000 fd:01 77 /usr/lib/libc.so.6
Rss:                   0 kB
Anonymous:             0 kB
";
        let vmas = parse_smaps(smaps);
        assert_eq!(vmas.len(), 7);
        assert_eq!(vmas[1].start, 0x55d0c0100000);
        assert_eq!(vmas[1].rss_kib, 6000);
        let releasable: Vec<bool> = vmas.iter().map(Vma::releasable).collect();
        // Read-only data and code yes; RELRO (copied pages), writable data, heap, vdso and a
        // mapping with nothing resident no.
        assert_eq!(releasable, [true, true, false, false, false, false, false]);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn released_code_faults_back_in_unchanged() {
        fn rss_file_kib() -> u64 {
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            status
                .lines()
                .find_map(|l| l.strip_prefix("RssFile:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap()
        }
        // Something that needs code and read-only data (formatting tables, parsing).
        let work = || {
            let v: Vec<String> = (0..2000)
                .map(|i| format!("{i:08x}-{:.3}", i as f64 / 7.0))
                .collect();
            let parsed: u64 = v
                .iter()
                .map(|s| u64::from_str_radix(&s[..8], 16).unwrap())
                .sum();
            (v.join(",").len(), parsed)
        };
        let before = work();
        let resident = rss_file_kib();
        let released = release_code_pages();
        assert!(released > 0, "nothing released");
        let after_release = rss_file_kib();
        assert!(
            after_release < resident,
            "file-backed RSS {resident} KiB -> {after_release} KiB"
        );
        // The code runs again from the page cache and computes the same.
        assert_eq!(work(), before);
    }

    #[tokio::test]
    async fn counts_reconciles_and_keeps_trimming() {
        let before = RECONCILES.load(Ordering::Relaxed);
        note_reconcile();
        assert!(RECONCILES.load(Ordering::Relaxed) > before);
        // The trimmer keeps running across ticks with and without activity.
        let task = tokio::spawn(trim_after_activity(Duration::from_millis(5)));
        tokio::time::sleep(Duration::from_millis(30)).await;
        note_reconcile();
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(!task.is_finished());
        task.abort();
    }
}
