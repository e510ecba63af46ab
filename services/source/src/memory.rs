//! Keeping the resident set small on glibc: fewer malloc arenas (each blocking Git fetch thread
//! would otherwise get its own) and freed heap returned to the OS after each fetch.

/// Caps glibc's malloc arenas at two; call before any thread starts.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator parameters; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
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
