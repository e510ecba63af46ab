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

/// Every `period`, trims the heap if reconciles ran since the last tick; runs forever.
pub async fn trim_after_activity(period: Duration) {
    let mut last = RECONCILES.load(Ordering::Relaxed);
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let now = RECONCILES.load(Ordering::Relaxed);
        if now != last {
            last = now;
            trim();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
