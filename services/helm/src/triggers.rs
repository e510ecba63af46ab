//! Reconcile requests from chart sources: when an OCIRepository, HelmChart or ExternalArtifact
//! publishes a new artifact (revision or digest), the HelmReleases whose `chartRef` points at
//! it, or whose chart template made it (`spec.chart`), are enqueued. Which HelmReleases use which source is learned from the driver's own
//! HelmRelease watch (a [`WatchTap`]), so no second watch of HelmReleases is opened.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use ferroflux_api::object::Source;
use ferroflux_api::{ExternalArtifact, HelmChart, HelmRelease, OCIRepository};
use ferroflux_runtime::driver::WatchTap;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, Resource, ResourceExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// (kind, namespace, name) of a source.
type SourceKey = (String, String, String);
/// (namespace, name) of a HelmRelease.
type ReleaseId = (String, String);

#[derive(Default)]
struct Index {
    /// source → the HelmReleases using it
    users: BTreeMap<SourceKey, BTreeSet<ReleaseId>>,
    /// HelmRelease → its source
    source_of: BTreeMap<ReleaseId, SourceKey>,
    /// last artifact (revision, digest) seen per source
    seen: BTreeMap<SourceKey, (String, String)>,
    /// HelmReleases listed since the current relist began
    relisting: Option<BTreeSet<ReleaseId>>,
}

impl Index {
    fn forget(&mut self, id: &ReleaseId) {
        if let Some(key) = self.source_of.remove(id)
            && let Some(set) = self.users.get_mut(&key)
        {
            set.remove(id);
            if set.is_empty() {
                self.users.remove(&key);
            }
        }
    }

    fn learn(&mut self, hr: &HelmRelease) {
        let id = (hr.namespace().unwrap_or_default(), hr.name_any());
        self.forget(&id);
        let key = match &hr.spec.chart_ref {
            Some(r) => {
                let ns = r
                    .namespace
                    .clone()
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| id.0.clone());
                (r.kind.as_str().to_string(), ns, r.name.clone())
            }
            // a chart template's HelmChart
            None if hr.spec.chart.is_some() => (
                "HelmChart".to_string(),
                crate::chart_template::chart_namespace(hr),
                hr.helm_chart_name(),
            ),
            None => return,
        };
        self.users
            .entry(key.clone())
            .or_default()
            .insert(id.clone());
        self.source_of.insert(id, key);
    }
}

/// The source watches and the HelmRelease index.
#[derive(Clone)]
pub struct Triggers {
    index: Arc<Mutex<Index>>,
    tx: mpsc::UnboundedSender<ObjectRef<HelmRelease>>,
}

impl Triggers {
    /// Starts the source watches and, when `events_addr` is set, the subscription to
    /// source-controller's ArtifactEvents (a new artifact within a second, the watches being
    /// the fallback); returns the triggers and the stream of HelmReleases to reconcile.
    pub fn start(
        client: Client,
        namespace: Option<String>,
        events_addr: String,
        external_artifacts: bool,
        shutdown: CancellationToken,
    ) -> (Triggers, BoxStream<'static, ObjectRef<HelmRelease>>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let t = Triggers {
            index: Arc::new(Mutex::new(Index::default())),
            tx,
        };
        spawn_until(
            shutdown.clone(),
            t.clone()
                .watch::<OCIRepository>(client.clone(), namespace.clone()),
        );
        spawn_until(
            shutdown.clone(),
            t.clone()
                .watch::<HelmChart>(client.clone(), namespace.clone()),
        );
        if external_artifacts {
            spawn_until(
                shutdown.clone(),
                t.clone()
                    .watch::<ExternalArtifact>(client, namespace.clone()),
            );
        }
        if !events_addr.is_empty() {
            let events = t.clone();
            spawn_until(
                shutdown,
                ferroflux_runtime::artifact_events::follow(events_addr, namespace, move |ev| {
                    if matches!(
                        ev.kind.as_str(),
                        "OCIRepository" | "HelmChart" | "ExternalArtifact"
                    ) {
                        events.announce(
                            (ev.kind, ev.namespace, ev.name),
                            (ev.revision, ev.digest),
                            false,
                        );
                    }
                }),
            );
        }
        (
            t,
            tokio_stream::wrappers::UnboundedReceiverStream::new(rx).boxed(),
        )
    }

    /// Keeps the source → HelmReleases index from the driver's HelmRelease watch.
    pub fn index_tap(&self) -> WatchTap<HelmRelease> {
        let index = self.index.clone();
        Arc::new(move |event: &Event<HelmRelease>| {
            let Ok(mut ix) = index.lock() else {
                return;
            };
            match event {
                Event::Init => ix.relisting = Some(BTreeSet::new()),
                Event::InitApply(hr) => {
                    if let Some(l) = ix.relisting.as_mut() {
                        l.insert((hr.namespace().unwrap_or_default(), hr.name_any()));
                    }
                    ix.learn(hr);
                }
                Event::InitDone => {
                    let listed = ix.relisting.take().unwrap_or_default();
                    let stale: Vec<ReleaseId> = ix
                        .source_of
                        .keys()
                        .filter(|id| !listed.contains(*id))
                        .cloned()
                        .collect();
                    for id in stale {
                        ix.forget(&id);
                    }
                }
                Event::Apply(hr) => ix.learn(hr),
                Event::Delete(hr) => {
                    ix.forget(&(hr.namespace().unwrap_or_default(), hr.name_any()))
                }
            }
        })
    }

    async fn watch<K>(self, client: Client, namespace: Option<String>)
    where
        K: Source
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
        let mut events = watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        loop {
            match events.try_next().await {
                Ok(Some(Event::Apply(src))) => self.changed(&kind, &src, false),
                // sources listed at start-up: every HelmRelease is reconciled then anyway
                Ok(Some(Event::InitApply(src))) => self.changed(&kind, &src, true),
                Ok(Some(_)) => {}
                Ok(None) => return,
                Err(e) => tracing::warn!(kind = %kind, error = %e, "source watch error"),
            }
        }
    }

    fn changed<K: Source + Resource<DynamicType = ()>>(&self, kind: &str, src: &K, listing: bool) {
        let Some(a) = src.artifact() else {
            return;
        };
        let key = (
            kind.to_string(),
            src.namespace().unwrap_or_default(),
            src.name_any(),
        );
        self.announce(key, (a.revision.clone(), a.digest.clone()), listing);
    }

    /// Records the artifact (revision, digest) of a source, from its watch or from the
    /// ArtifactEvents stream (whichever comes first), and enqueues its users when it changed.
    fn announce(&self, key: SourceKey, now: (String, String), listing: bool) {
        let users = {
            let Ok(mut ix) = self.index.lock() else {
                return;
            };
            let before = ix.seen.insert(key.clone(), now.clone());
            if listing || before.as_ref() == Some(&now) {
                return;
            }
            ix.users.get(&key).cloned().unwrap_or_default()
        };
        for (ns, name) in users {
            tracing::debug!(source = ?key, revision = %now.0, helmrelease = %name, "chart source changed");
            let _ = self.tx.send(ObjectRef::new(&name).within(&ns));
        }
    }
}

fn spawn_until(token: CancellationToken, fut: impl Future<Output = ()> + Send + 'static) {
    tokio::spawn(async move {
        tokio::select! {
            _ = token.cancelled() => {}
            _ = fut => {}
        }
    });
}
