//! CLI tests: the embedded demo (`ferroflux up`) and leader election between controller
//! processes, each run as real processes against testenv.

mod artifact;
mod engines;
mod leader;
mod up;
mod workflow;

use std::path::Path;
use std::time::{Duration, Instant};

pub const FERROFLUX: &str = env!("CARGO_BIN_EXE_ferroflux");

/// Polls `f` until it returns `Some`, failing the test with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// GET `url`, returning status and body (None when the connection fails).
pub async fn http_get(url: &str) -> Option<(u16, String)> {
    let r = reqwest::get(url).await.ok()?;
    let status = r.status().as_u16();
    Some((status, r.text().await.ok()?))
}

pub fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: signalling a child process of this test.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

pub fn read_json(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}
