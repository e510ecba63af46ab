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

#[derive(Clone)]
pub struct IndexCache {
    inner: Arc<Mutex<Entries>>,
    max_items: usize,
    ttl: Duration,
    /// Where hits and misses are counted (`gotk_cache_events_total`).
    metrics: Option<ferroflux_runtime::Metrics>,
}

impl std::fmt::Debug for IndexCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexCache")
            .field("items", &self.len())
            .field("max_items", &self.max_items)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl IndexCache {
    /// `None` when `max_items` is 0 (the cache is off, upstream's default).
    pub fn new(max_items: usize, ttl: Duration) -> Option<Self> {
        (max_items > 0).then(|| Self {
            inner: Arc::new(Mutex::new(HashMap::new())),
            max_items,
            ttl,
            metrics: None,
        })
    }

    /// Counts lookups in `metrics` as upstream's cache recorder does.
    pub fn with_metrics(mut self, metrics: ferroflux_runtime::Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// [`get`](Self::get) for the HelmRepository `namespace/name`, counted as a `cache_hit` or
    /// `cache_miss` event.
    pub fn get_for(&self, key: &str, name: &str, namespace: &str) -> Option<Arc<IndexFile>> {
        let found = self.get(key);
        if let Some(m) = &self.metrics {
            let event = if found.is_some() {
                "cache_hit"
            } else {
                "cache_miss"
            };
            m.count_cache_event(event, name, namespace);
        }
        found
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

    #[test]
    fn lookups_are_counted() {
        let metrics = ferroflux_runtime::Metrics::new();
        let c = IndexCache::new(2, Duration::from_secs(60))
            .unwrap()
            .with_metrics(metrics.clone());
        assert!(c.get_for("k", "podinfo", "apps").is_none());
        c.set("k", Arc::new(IndexFile::default())).unwrap();
        assert!(c.get_for("k", "podinfo", "apps").is_some());
        let text = metrics.render();
        for event in ["cache_hit", "cache_miss"] {
            assert!(
                text.contains(&format!(
                    "gotk_cache_events_total{{event_type=\"{event}\",name=\"podinfo\",namespace=\"apps\"}} 1"
                )),
                "{text}"
            );
        }
    }
}
