//! The object store: one global resourceVersion, buckets per group/resource, an event log
//! retained for watches, and a broadcast channel feeding live watchers.

use crate::registry::{Gr, Registry};
use crate::status::{ApiError, ApiResult};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use tokio::sync::broadcast;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

/// One change, as retained in the log and sent to watchers.
#[derive(Debug)]
pub struct Event {
    pub rv: u64,
    pub gr: Gr,
    pub etype: EventType,
    pub obj: Arc<Value>,
    pub prev: Option<Arc<Value>>,
    /// `obj` serialized once, shared by every watcher
    pub json: std::sync::OnceLock<bytes::Bytes>,
}

impl Event {
    pub fn json(&self) -> &bytes::Bytes {
        self.json
            .get_or_init(|| bytes::Bytes::from(serde_json::to_vec(&*self.obj).unwrap_or_default()))
    }
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    pub user: String,
    pub groups: Vec<String>,
}

impl Identity {
    pub fn is_admin(&self) -> bool {
        self.groups.iter().any(|g| g == "system:masters")
    }
}

pub type Key = (String, String);

pub struct Inner {
    pub rv: u64,
    pub registry: Registry,
    pub objects: HashMap<Gr, BTreeMap<Key, Arc<Value>>>,
    /// JSON of every stored object, encoded once per version (lists and watches reuse it)
    encoded: HashMap<Gr, HashMap<Key, bytes::Bytes>>,
    pub uids: HashMap<String, (Gr, String, String)>,
    pub tokens: HashMap<String, Identity>,
    log: VecDeque<Arc<Event>>,
    window: usize,
    /// events with rv <= compacted have left the log
    pub compacted: u64,
    tx: broadcast::Sender<Arc<Event>>,
    /// set when something may need garbage collection / finalization
    pub gc_dirty: bool,
    /// set when state changed (for persistence)
    pub dirty: bool,
}

pub fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

impl Inner {
    pub fn new(window: usize) -> Self {
        let (tx, _) = broadcast::channel(16_384);
        Inner {
            rv: 1,
            registry: Registry::new(),
            objects: HashMap::new(),
            encoded: HashMap::new(),
            uids: HashMap::new(),
            tokens: HashMap::new(),
            log: VecDeque::new(),
            window: window.max(16),
            compacted: 0,
            tx,
            gc_dirty: false,
            dirty: false,
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    pub fn get(&self, gr: &Gr, ns: &str, name: &str) -> Option<Arc<Value>> {
        self.objects
            .get(gr)
            .and_then(|b| b.get(&(ns.to_string(), name.to_string())))
            .cloned()
    }

    pub fn bucket(&self, gr: &Gr) -> Option<&BTreeMap<Key, Arc<Value>>> {
        self.objects.get(gr)
    }

    fn record(&mut self, ev: Event) {
        let ev = Arc::new(ev);
        self.log.push_back(ev.clone());
        while self.log.len() > self.window {
            if let Some(old) = self.log.pop_front() {
                self.compacted = old.rv;
            }
        }
        self.dirty = true;
        // no receivers is fine
        let _ = self.tx.send(ev);
    }

    /// Stores an object (new or changed) under a fresh resourceVersion and emits the event.
    pub fn put(&mut self, gr: &Gr, mut obj: Value) -> Arc<Value> {
        self.rv += 1;
        let rv = self.rv;
        if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
            m.insert("resourceVersion".into(), Value::String(rv.to_string()));
        }
        let ns = meta_str(&obj, "namespace").to_string();
        let name = meta_str(&obj, "name").to_string();
        let uid = meta_str(&obj, "uid").to_string();
        let obj = Arc::new(obj);
        let json = bytes::Bytes::from(serde_json::to_vec(&*obj).unwrap_or_default());
        self.encoded
            .entry(gr.clone())
            .or_default()
            .insert((ns.clone(), name.clone()), json.clone());
        let prev = self
            .objects
            .entry(gr.clone())
            .or_default()
            .insert((ns.clone(), name.clone()), obj.clone());
        if !uid.is_empty() {
            self.uids.insert(uid, (gr.clone(), ns.clone(), name));
        }
        let etype = if prev.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.record(Event {
            rv,
            gr: gr.clone(),
            etype,
            obj: obj.clone(),
            prev,
            json: std::sync::OnceLock::from(json),
        });
        obj
    }

    /// Rewrites the apiVersion of stored objects (storage version migration); no events.
    pub fn restamp_api_version(&mut self, gr: &Gr, api_version: &str) {
        let Some(bucket) = self.objects.get_mut(gr) else {
            return;
        };
        for (key, obj) in bucket.iter_mut() {
            if obj.get("apiVersion").and_then(Value::as_str) == Some(api_version) {
                continue;
            }
            let mut o = (**obj).clone();
            o["apiVersion"] = Value::String(api_version.to_string());
            let json = bytes::Bytes::from(serde_json::to_vec(&o).unwrap_or_default());
            *obj = Arc::new(o);
            self.encoded
                .entry(gr.clone())
                .or_default()
                .insert(key.clone(), json);
        }
    }

    /// The stored JSON of an object.
    pub fn encoded(&self, gr: &Gr, key: &Key) -> Option<&bytes::Bytes> {
        self.encoded.get(gr).and_then(|b| b.get(key))
    }

    /// Removes an object; the DELETED event carries a fresh resourceVersion.
    pub fn remove(&mut self, gr: &Gr, ns: &str, name: &str) -> Option<Arc<Value>> {
        let old = self
            .objects
            .get_mut(gr)?
            .remove(&(ns.to_string(), name.to_string()))?;
        if let Some(b) = self.encoded.get_mut(gr) {
            b.remove(&(ns.to_string(), name.to_string()));
        }
        self.rv += 1;
        let rv = self.rv;
        let mut last = (*old).clone();
        if let Some(m) = last.get_mut("metadata").and_then(Value::as_object_mut) {
            m.insert("resourceVersion".into(), Value::String(rv.to_string()));
        }
        let uid = meta_str(&last, "uid").to_string();
        self.uids.remove(&uid);
        let last = Arc::new(last);
        self.record(Event {
            rv,
            gr: gr.clone(),
            etype: EventType::Deleted,
            obj: last.clone(),
            prev: Some(old),
            json: Default::default(),
        });
        self.gc_dirty = true;
        Some(last)
    }

    /// Events after `rv` for a bucket, or 410 if they left the retained window.
    pub fn events_since(&self, gr: &Gr, rv: u64) -> ApiResult<Vec<Arc<Event>>> {
        if rv < self.compacted {
            return Err(ApiError::gone(format!(
                "too old resource version: {rv} ({})",
                self.compacted + 1
            )));
        }
        // the log is ordered by rv; binary search the start
        let start = self.log.partition_point(|e| e.rv <= rv);
        Ok(self
            .log
            .iter()
            .skip(start)
            .filter(|e| e.gr == *gr)
            .cloned()
            .collect())
    }

    /// Loads a full snapshot (used by the data directory).
    pub fn load(&mut self, rv: u64, objects: Vec<(Gr, Value)>) {
        for (gr, obj) in objects {
            let ns = meta_str(&obj, "namespace").to_string();
            let name = meta_str(&obj, "name").to_string();
            let uid = meta_str(&obj, "uid").to_string();
            if !uid.is_empty() {
                self.uids
                    .insert(uid, (gr.clone(), ns.clone(), name.clone()));
            }
            let json = bytes::Bytes::from(serde_json::to_vec(&obj).unwrap_or_default());
            self.encoded
                .entry(gr.clone())
                .or_default()
                .insert((ns.clone(), name.clone()), json);
            self.objects
                .entry(gr)
                .or_default()
                .insert((ns, name), Arc::new(obj));
        }
        self.rv = rv.max(self.rv);
        self.compacted = self.rv;
    }
}
