//! Keeping the resident set small on glibc: one malloc arena (each blocking Git fetch thread
//! would otherwise get its own), a fixed mmap threshold (large temporary buffers, such as the
//! archive writer's, are mapped and unmapped rather than left fragmenting the heap), and freed
//! heap returned to the OS after each fetch and once activity settles.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Reconciles since the process started; the idle trimmer compares it between ticks.
static ACTIVITY: AtomicU64 = AtomicU64::new(0);

/// Allocations at least this large get their own mapping, returned to the OS when freed.
const MMAP_THRESHOLD: i32 = 128 * 1024;

/// Tunes glibc malloc for a small idle footprint; call before any thread starts.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator parameters; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

/// Returns free heap pages to the OS (after a fetch released its buffers).
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe and has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Records that a reconcile ran (so the idle trimmer trims once afterwards).
pub fn note_activity() {
    ACTIVITY.fetch_add(1, Ordering::Relaxed);
}

/// Trims the heap every `period` in which reconciles ran: after a burst of work (status
/// patches, events and watch updates allocate after the per-fetch trim) the freed memory goes
/// back to the OS instead of staying resident while the controller idles.
pub async fn trim_when_idle(period: Duration) {
    let mut seen = ACTIVITY.load(Ordering::Relaxed);
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let now = ACTIVITY.load(Ordering::Relaxed);
        if now != seen {
            seen = now;
            trim();
        }
    }
}
