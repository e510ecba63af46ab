//! The in-memory cache of parsed Helm repository indexes (`--helm-cache-max-size`,
//! `--helm-cache-ttl`, `--helm-cache-purge-interval`), keyed by the index artifact's storage
//! path as upstream keys it (safe across tenants: the path names the repository's namespace
//! and name). At most `max_items` entries; a full cache refuses new ones (upstream's "cache is
//! full"); entries expire after the TTL, which every use extends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferroflux_helm::package::index::IndexFile;

/// Storage path of an index artifact to the parsed index and its expiry.
type Entries = HashMap<String, (Arc<IndexFile>, Instant)>;

#[derive(Clone, Debug)]
pub struct IndexCache {
    inner: Arc<Mutex<Entries>>,
    max_items: usize,
    ttl: Duration,
}

impl IndexCache {
    /// `None` when `max_items` is 0 (the cache is off, upstream's default).
    pub fn new(max_items: usize, ttl: Duration) -> Option<Self> {
        (max_items > 0).then(|| Self {
            inner: Arc::new(Mutex::new(HashMap::new())),
            max_items,
            ttl,
        })
    }

    /// The index stored under `key`, its expiry extended; `None` on a miss or when expired.
    pub fn get(&self, key: &str) -> Option<Arc<IndexFile>> {
        let mut m = self.inner.lock().ok()?;
        let now = Instant::now();
        match m.get_mut(key) {
            Some((idx, exp)) if *exp > now => {
                *exp = now + self.ttl;
                Some(idx.clone())
            }
            Some(_) => {
                m.remove(key);
                None
            }
            None => None,
        }
    }

    /// Stores an index; `Err` when the cache is full.
    pub fn set(&self, key: &str, index: Arc<IndexFile>) -> Result<(), String> {
        let Ok(mut m) = self.inner.lock() else {
            return Err("cache lock poisoned".into());
        };
        let now = Instant::now();
        if !m.contains_key(key) && m.len() >= self.max_items {
            m.retain(|_, (_, exp)| *exp > now);
            if m.len() >= self.max_items {
                return Err("cache is full".into());
            }
        }
        m.insert(key.to_string(), (index, now + self.ttl));
        Ok(())
    }

    /// Extends the expiry of `key` if it is cached.
    pub fn touch(&self, key: &str) {
        if let Ok(mut m) = self.inner.lock()
            && let Some((_, exp)) = m.get_mut(key)
        {
            *exp = Instant::now() + self.ttl;
        }
    }

    /// Drops expired entries (run every `--helm-cache-purge-interval`).
    pub fn purge(&self) {
        if let Ok(mut m) = self.inner.lock() {
            let now = Instant::now();
            m.retain(|_, (_, exp)| *exp > now);
        }
    }

    pub fn len(&self) -> usize {
        self.inner.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_with_expiry() {
        assert!(IndexCache::new(0, Duration::from_secs(1)).is_none());
        let c = IndexCache::new(2, Duration::from_millis(50)).unwrap();
        let idx = Arc::new(IndexFile::default());
        c.set("a", idx.clone()).unwrap();
        c.set("b", idx.clone()).unwrap();
        assert_eq!(c.set("c", idx.clone()).unwrap_err(), "cache is full");
        assert!(c.get("a").is_some());
        std::thread::sleep(Duration::from_millis(80));
        assert!(c.get("a").is_none());
        c.set("c", idx).unwrap();
        c.purge();
        assert_eq!(c.len(), 1);
    }
}
