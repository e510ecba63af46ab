//! What makes a Kustomization reconcile besides its own changes: a new artifact of its source,
//! announced on source-controller's ArtifactEvents gRPC stream (within a second), with a watch
//! on the source objects as the fallback when the stream is down or reports a gap.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use ferroflux_api::{
    Artifact, Bucket, ExternalArtifact, GitRepository, Kustomization, OCIRepository,
};
use ferroflux_runtime::driver::WatchTap;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Resource, ResourceExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A source: (kind, namespace, name).
pub type SourceKey = (String, String, String);

/// Which Kustomizations use which source, and the last revision each source announced.
#[derive(Default)]
struct State {
    users: HashMap<SourceKey, BTreeSet<(String, String)>>,
    by_kustomization: HashMap<(String, String), SourceKey>,
    revisions: HashMap<SourceKey, String>,
    /// The artifact each source's status carries, as last seen by the watch.
    artifacts: HashMap<SourceKey, Artifact>,
    /// Kustomizations listed so far during a relist of the controller's watch.
    relisted: Option<BTreeSet<(String, String)>>,
}

/// Shared trigger state and the channel into the controller.
#[derive(Clone)]
pub struct Triggers {
    state: Arc<Mutex<State>>,
    tx: mpsc::UnboundedSender<ObjectRef<Kustomization>>,
}

fn source_key_of(ks: &Kustomization) -> Option<SourceKey> {
    let r = ks.spec.source_ref.as_ref()?;
    let kind = r.kind.as_str().to_string();
    let ns = r
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .or_else(|| ks.namespace())?;
    Some((kind, ns, r.name.clone()))
}

impl Triggers {
    /// Starts the source watches and (when `events_addr` is set) the gRPC subscription;
    /// returns the stream of Kustomizations to reconcile. The source → Kustomizations index is
    /// fed by the controller's own watch through [`Triggers::index_tap`].
    pub fn start(
        client: Client,
        namespace: Option<String>,
        events_addr: String,
        external_artifacts: bool,
        shutdown: CancellationToken,
    ) -> (Triggers, BoxStream<'static, ObjectRef<Kustomization>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let triggers = Triggers {
            state: Arc::new(Mutex::new(State::default())),
            tx,
        };
        spawn_until(
            shutdown.clone(),
            triggers
                .clone()
                .watch_sources::<GitRepository>(client.clone(), namespace.clone()),
        );
        spawn_until(
            shutdown.clone(),
            triggers
                .clone()
                .watch_sources::<OCIRepository>(client.clone(), namespace.clone()),
        );
        spawn_until(
            shutdown.clone(),
            triggers
                .clone()
                .watch_sources::<Bucket>(client.clone(), namespace.clone()),
        );
        if external_artifacts {
            spawn_until(
                shutdown.clone(),
                triggers
                    .clone()
                    .watch_sources::<ExternalArtifact>(client.clone(), namespace.clone()),
            );
        }
        if !events_addr.is_empty() {
            spawn_until(shutdown, triggers.clone().subscribe(events_addr, namespace));
        }
        (
            triggers,
            tokio_stream::wrappers::UnboundedReceiverStream::new(rx).boxed(),
        )
    }

    /// A tap for the controller's watch of Kustomizations that keeps the source →
    /// Kustomizations index: listed or changed Kustomizations are (re-)indexed, deleted ones
    /// dropped, and at the end of a relist those it did not list are dropped too.
    pub fn index_tap(&self) -> WatchTap<Kustomization> {
        let state = self.state.clone();
        Arc::new(move |event: &Event<Kustomization>| {
            let Ok(mut st) = state.lock() else {
                return;
            };
            match event {
                Event::Init => st.relisted = Some(BTreeSet::new()),
                Event::InitApply(ks) => {
                    if let Some(seen) = st.relisted.as_mut() {
                        seen.insert((ks.namespace().unwrap_or_default(), ks.name_any()));
                    }
                    st.upsert(ks);
                }
                Event::InitDone => {
                    let seen = st.relisted.take().unwrap_or_default();
                    let gone: Vec<(String, String)> = st
                        .by_kustomization
                        .keys()
                        .filter(|id| !seen.contains(*id))
                        .cloned()
                        .collect();
                    for id in gone {
                        st.remove_id(&id);
                    }
                }
                Event::Apply(ks) => st.upsert(ks),
                Event::Delete(ks) => st.remove(ks),
            }
        })
    }

    /// Watches one source kind and triggers users when an artifact appears or its revision
    /// changes.
    async fn watch_sources<K>(self, client: Client, namespace: Option<String>)
    where
        K: ferroflux_api::object::Source
            + Resource<DynamicType = ()>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug
            + Send
            + Sync
            + 'static,
    {
        let kind = K::kind(&()).to_string();
        let api: Api<K> = match &namespace {
            Some(ns) => Api::namespaced(client, ns),
            None => Api::all(client),
        };
        let mut stream = watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        loop {
            match stream.try_next().await {
                Ok(Some(ev @ (Event::Apply(_) | Event::InitApply(_)))) => {
                    let initial = matches!(ev, Event::InitApply(_));
                    if let Event::Apply(src) | Event::InitApply(src) = ev {
                        let key = (
                            kind.clone(),
                            src.namespace().unwrap_or_default(),
                            src.name_any(),
                        );
                        let revision = src
                            .artifact()
                            .map(|a| a.revision.clone())
                            .unwrap_or_default();
                        self.remember(&key, src.artifact());
                        self.announce(key, &revision, initial);
                    }
                }
                Ok(Some(Event::Init)) => {
                    // A relist: forget this kind's artifacts until they are listed again, so a
                    // source deleted while the watch was down is not served from the cache.
                    if let Ok(mut st) = self.state.lock() {
                        st.artifacts.retain(|k, _| k.0 != kind);
                    }
                }
                Ok(Some(Event::Delete(src))) => {
                    let key = (
                        kind.clone(),
                        src.namespace().unwrap_or_default(),
                        src.name_any(),
                    );
                    self.remember(&key, None);
                }
                Ok(Some(_)) => {}
                Ok(None) => return,
                Err(e) => tracing::debug!(kind = %kind, error = %e, "source watch error"),
            }
        }
    }

    /// Follows source-controller's ArtifactEvents (the shared follower of the runtime).
    async fn subscribe(self, addr: String, namespace: Option<String>) {
        ferroflux_runtime::artifact_events::follow(addr, namespace, |ev| {
            self.announce((ev.kind, ev.namespace, ev.name), &ev.revision, false)
        })
        .await
    }

    /// Keeps the artifact a source's status carries (what reconciles read, as upstream reads
    /// sources through its informer cache).
    fn remember(&self, key: &SourceKey, artifact: Option<&Artifact>) {
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        match artifact {
            Some(a) => {
                st.artifacts.insert(key.clone(), a.clone());
            }
            None => {
                st.artifacts.remove(key);
            }
        }
    }

    /// The cached artifact of a source, but only when it is the newest revision announced by
    /// either path (the gRPC stream can be ahead of the watch); `None` means: ask the API server.
    pub fn artifact(&self, key: &SourceKey) -> Option<Artifact> {
        let st = self.state.lock().ok()?;
        let cached = st.artifacts.get(key)?;
        (st.revisions.get(key) == Some(&cached.revision)).then(|| cached.clone())
    }

    /// Records `revision` for the source (empty: no artifact yet) and, when it changed, enqueues
    /// its users. A source first seen while listing at start-up triggers nothing: every
    /// Kustomization is reconciled at start-up anyway.
    fn announce(&self, key: SourceKey, revision: &str, initial_listing: bool) {
        let users = {
            let Ok(mut st) = self.state.lock() else {
                return;
            };
            let previous = st.revisions.insert(key.clone(), revision.to_string());
            let changed = match previous {
                Some(p) => p != revision,
                None => !initial_listing,
            };
            if !changed || revision.is_empty() {
                return;
            }
            st.users.get(&key).cloned().unwrap_or_default()
        };
        for (ns, name) in users {
            tracing::debug!(source = ?key, revision, kustomization = %name, "source revision changed");
            let _ = self.tx.send(ObjectRef::new(&name).within(&ns));
        }
    }
}

impl State {
    fn upsert(&mut self, ks: &Kustomization) {
        let id = (ks.namespace().unwrap_or_default(), ks.name_any());
        self.remove_id(&id);
        if let Some(key) = source_key_of(ks) {
            self.users
                .entry(key.clone())
                .or_default()
                .insert(id.clone());
            self.by_kustomization.insert(id, key);
        }
    }

    fn remove(&mut self, ks: &Kustomization) {
        let id = (ks.namespace().unwrap_or_default(), ks.name_any());
        self.remove_id(&id);
    }

    fn remove_id(&mut self, id: &(String, String)) {
        if let Some(old) = self.by_kustomization.remove(id)
            && let Some(set) = self.users.get_mut(&old)
        {
            set.remove(id);
            if set.is_empty() {
                self.users.remove(&old);
            }
        }
    }
}

fn spawn_until(
    token: CancellationToken,
    fut: impl std::future::Future<Output = ()> + Send + 'static,
) {
    tokio::spawn(async move {
        tokio::select! {
            _ = token.cancelled() => {}
            _ = fut => {}
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ks(name: &str, source: &str) -> Kustomization {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": name, "namespace": "apps"},
            "spec": {"interval": "1m", "prune": true,
                     "sourceRef": {"kind": "GitRepository", "name": source, "namespace": "flux-system"}}
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn new_revisions_trigger_users_once() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let t = Triggers {
            state: Arc::new(Mutex::new(State::default())),
            tx,
        };
        // The index follows the controller's watch (initial list).
        let index = t.index_tap();
        index(&Event::Init);
        for k in [
            ks("a", "repo"),
            ks("b", "repo"),
            ks("c", "other"),
            ks("gone", "repo"),
        ] {
            index(&Event::InitApply(k));
        }
        index(&Event::InitDone);
        index(&Event::Delete(ks("gone", "repo")));
        let key = (
            "GitRepository".to_string(),
            "flux-system".to_string(),
            "repo".to_string(),
        );
        t.announce(key.clone(), "main@sha1:0", true);
        assert!(
            rx.try_recv().is_err(),
            "sources listed at start-up trigger nothing"
        );
        t.announce(key.clone(), "main@sha1:1", false);
        t.announce(key.clone(), "main@sha1:1", true);
        let mut got = Vec::new();
        while let Ok(r) = rx.try_recv() {
            got.push(r.name);
        }
        assert_eq!(got, vec!["a", "b"], "one trigger per user per revision");

        index(&Event::Apply(ks("b", "other")));
        t.announce(key.clone(), "main@sha1:2", true);
        let got: Vec<String> = std::iter::from_fn(|| rx.try_recv().ok().map(|r| r.name)).collect();
        assert_eq!(got, vec!["a"], "re-pointed Kustomizations leave the index");

        // A relist (the watch reconnected) that no longer lists "a": it was deleted meanwhile.
        index(&Event::Init);
        index(&Event::InitApply(ks("b", "repo")));
        index(&Event::InitDone);
        t.announce(key.clone(), "main@sha1:2b", false);
        let got: Vec<String> = std::iter::from_fn(|| rx.try_recv().ok().map(|r| r.name)).collect();
        assert_eq!(
            got,
            vec!["b"],
            "Kustomizations missing from a relist leave the index"
        );

        // The cached artifact is served only while it is the newest announced revision.
        let artifact = |rev: &str| -> Artifact {
            serde_json::from_value(serde_json::json!({
                "path": "p", "url": "http://x/p", "revision": rev, "digest": "sha256:00",
                "lastUpdateTime": "2026-01-01T00:00:00Z"}))
            .unwrap()
        };
        t.remember(&key, Some(&artifact("main@sha1:2b")));
        assert_eq!(t.artifact(&key).unwrap().revision, "main@sha1:2b");
        t.announce(key.clone(), "main@sha1:3", false);
        assert!(
            t.artifact(&key).is_none(),
            "gRPC ahead of the watch: ask the API server"
        );
        t.remember(&key, None);
        assert!(t.artifact(&key).is_none());
    }
}
