//! The Readiness gRPC stream each applier (kustomize-controller, helm-controller) serves for its
//! own objects: a snapshot of every matching object, then each change of its Ready state,
//! observed generation, revision or last handled reconcile request.

use std::collections::{BTreeMap, BTreeSet};
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};

use ferroflux_api::FluxObject;
use ferroflux_proto::readiness_server::Readiness;
use ferroflux_proto::{ReadinessRequest, ReadinessUpdate};
use futures::{Stream, StreamExt};
use kube::ResourceExt;
use kube::runtime::watcher;
use tokio::sync::broadcast;
use tonic::{Request, Response, Status};

type Key = (String, String, String);

/// The current readiness of every object of the served kinds, and a broadcast of changes.
#[derive(Clone)]
pub struct ReadinessHub {
    current: Arc<RwLock<BTreeMap<Key, ReadinessUpdate>>>,
    changes: broadcast::Sender<ReadinessUpdate>,
    /// Objects listed so far during a relist of the watch (kind → keys), to forget the objects
    /// deleted while the watch was down once the relist is complete.
    relisted: Arc<Mutex<BTreeMap<String, BTreeSet<Key>>>>,
}

impl Default for ReadinessHub {
    fn default() -> Self {
        Self::new()
    }
}

fn key(u: &ReadinessUpdate) -> Key {
    (u.kind.clone(), u.namespace.clone(), u.name.clone())
}

fn matches(req: &ReadinessRequest, u: &ReadinessUpdate) -> bool {
    (req.kind.is_empty() || req.kind == u.kind)
        && (req.namespace.is_empty() || req.namespace == u.namespace)
        && (req.name.is_empty() || req.name == u.name)
}

impl ReadinessHub {
    pub fn new() -> Self {
        let (changes, _) = broadcast::channel(1024);
        Self {
            current: Arc::new(RwLock::new(BTreeMap::new())),
            changes,
            relisted: Arc::new(Mutex::new(BTreeMap::new())),
        }
    }

    /// Records an object's state; broadcasts it when it changed.
    pub fn update(&self, u: ReadinessUpdate) {
        let Ok(mut current) = self.current.write() else {
            return;
        };
        if current.get(&key(&u)) == Some(&u) {
            return;
        }
        current.insert(key(&u), u.clone());
        let _ = self.changes.send(u);
    }

    /// Forgets a deleted object.
    pub fn remove(&self, kind: &str, namespace: &str, name: &str) {
        if let Ok(mut current) = self.current.write() {
            current.remove(&(kind.to_string(), namespace.to_string(), name.to_string()));
        }
    }

    /// Follows one watch event of kind `K`: objects listed or changed are recorded, deleted
    /// ones forgotten, and at the end of a relist the objects it did not list (deleted while
    /// the watch was down) are forgotten too.
    pub fn observe<K: FluxObject>(&self, event: &watcher::Event<K>, revision: &str) {
        let kind = K::kind(&()).to_string();
        match event {
            watcher::Event::Init => {
                if let Ok(mut r) = self.relisted.lock() {
                    r.insert(kind, BTreeSet::new());
                }
            }
            watcher::Event::InitApply(obj) => {
                let u = readiness_of(obj, revision);
                if let Ok(mut r) = self.relisted.lock()
                    && let Some(seen) = r.get_mut(&kind)
                {
                    seen.insert(key(&u));
                }
                self.update(u);
            }
            watcher::Event::InitDone => {
                let seen = self
                    .relisted
                    .lock()
                    .ok()
                    .and_then(|mut r| r.remove(&kind))
                    .unwrap_or_default();
                if let Ok(mut current) = self.current.write() {
                    current.retain(|k, _| k.0 != kind || seen.contains(k));
                }
            }
            watcher::Event::Apply(obj) => self.update(readiness_of(obj, revision)),
            watcher::Event::Delete(obj) => {
                self.remove(&kind, &obj.namespace().unwrap_or_default(), &obj.name_any());
            }
        }
    }

    /// A tap for the driver's watch of `K` that keeps this hub current; `revision` picks the
    /// revision to report.
    pub fn tap<K, F>(&self, revision: F) -> crate::driver::WatchTap<K>
    where
        K: FluxObject,
        F: Fn(&K) -> String + Send + Sync + 'static,
    {
        let hub = self.clone();
        Arc::new(move |event: &watcher::Event<K>| {
            let rev = match event {
                watcher::Event::Apply(obj) | watcher::Event::InitApply(obj) => revision(obj),
                _ => String::new(),
            };
            hub.observe(event, &rev);
        })
    }

    fn snapshot(
        &self,
        req: &ReadinessRequest,
    ) -> (Vec<ReadinessUpdate>, broadcast::Receiver<ReadinessUpdate>) {
        let rx = self.changes.subscribe();
        let snap = self
            .current
            .read()
            .map(|c| c.values().filter(|u| matches(req, u)).cloned().collect())
            .unwrap_or_default();
        (snap, rx)
    }
}

/// The readiness of one object, from its status.
pub fn readiness_of<K: FluxObject>(obj: &K, revision: &str) -> ReadinessUpdate {
    let ready = ferroflux_api::conditions::get(obj.conditions(), ferroflux_api::conditions::READY);
    ReadinessUpdate {
        kind: K::kind(&()).to_string(),
        namespace: obj.namespace().unwrap_or_default(),
        name: obj.name_any(),
        generation: obj.meta().generation.unwrap_or_default(),
        observed_generation: obj.observed_generation().unwrap_or(-1),
        ready: ready
            .map(|c| c.status.clone())
            .unwrap_or_else(|| "Unknown".to_string()),
        reason: ready.map(|c| c.reason.clone()).unwrap_or_default(),
        message: ready.map(|c| c.message.clone()).unwrap_or_default(),
        revision: revision.to_string(),
        last_handled_reconcile_at: obj
            .last_handled_reconcile_at()
            .unwrap_or_default()
            .to_string(),
    }
}

type UpdateStream = Pin<Box<dyn Stream<Item = Result<ReadinessUpdate, Status>> + Send>>;

#[tonic::async_trait]
impl Readiness for ReadinessHub {
    type WatchStream = UpdateStream;

    async fn watch(
        &self,
        request: Request<ReadinessRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let req = request.into_inner();
        let (snapshot, rx) = self.snapshot(&req);
        let live = tokio_stream::wrappers::BroadcastStream::new(rx).filter_map(move |u| {
            let out = match u {
                Ok(u) if matches(&req, &u) => Some(Ok(u)),
                Ok(_) => None,
                Err(_) => Some(Err(Status::data_loss(
                    "readiness stream lagged; resubscribe",
                ))),
            };
            futures::future::ready(out)
        });
        let stream = futures::stream::iter(snapshot.into_iter().map(Ok)).chain(live);
        Ok(Response::new(Box::pin(stream)))
    }
}

/// Serves the Readiness gRPC stream (plus the gRPC health service) of `hub` on `addr` until
/// `shutdown`; the hub is fed by the controller's watch through [`ReadinessHub::tap`]. Returns
/// the bound address.
pub async fn serve(
    hub: ReadinessHub,
    addr: std::net::SocketAddr,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<std::net::SocketAddr> {
    use ferroflux_proto::readiness_server::ReadinessServer;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<ReadinessServer<ReadinessHub>>().await;
    let server = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(ReadinessServer::new(hub))
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            shutdown,
        );
    tokio::spawn(async move {
        if let Err(e) = server.await {
            tracing::error!(error = %e, "readiness gRPC server failed");
        }
    });
    Ok(local)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferroflux_proto::readiness_client::ReadinessClient;
    use ferroflux_proto::readiness_server::ReadinessServer;

    fn update(name: &str, ready: &str) -> ReadinessUpdate {
        ReadinessUpdate {
            kind: "Kustomization".into(),
            namespace: "apps".into(),
            name: name.into(),
            ready: ready.into(),
            ..Default::default()
        }
    }

    fn kustomization(name: &str, ready: &str, revision: &str) -> ferroflux_api::Kustomization {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
            "metadata": {"name": name, "namespace": "apps", "generation": 2},
            "spec": {"interval": "1m", "prune": true,
                     "sourceRef": {"kind": "GitRepository", "name": "repo"}},
            "status": {"observedGeneration": 2, "lastAppliedRevision": revision,
                       "conditions": [{"type": "Ready", "status": ready, "reason": "R",
                                       "message": "m", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
        }))
        .unwrap()
    }

    #[test]
    fn the_tap_follows_the_watch_and_relists() {
        use ferroflux_api::Kustomization;
        let hub = ReadinessHub::new();
        let tap = hub.tap(|k: &Kustomization| {
            k.status
                .as_ref()
                .and_then(|s| s.last_applied_revision.clone())
                .unwrap_or_default()
        });
        let names = |hub: &ReadinessHub| -> Vec<(String, String, String)> {
            hub.snapshot(&ReadinessRequest::default())
                .0
                .into_iter()
                .map(|u| (u.name, u.ready, u.revision))
                .collect()
        };
        tap(&watcher::Event::Init);
        tap(&watcher::Event::InitApply(kustomization("a", "True", "r1")));
        tap(&watcher::Event::InitApply(kustomization(
            "b", "False", "r1",
        )));
        tap(&watcher::Event::InitDone);
        tap(&watcher::Event::Apply(kustomization("a", "True", "r2")));
        assert_eq!(
            names(&hub),
            [
                ("a".to_string(), "True".to_string(), "r2".to_string()),
                ("b".to_string(), "False".to_string(), "r1".to_string())
            ]
        );
        let u = &hub.snapshot(&ReadinessRequest::default()).0[0];
        assert_eq!(
            (u.kind.as_str(), u.namespace.as_str()),
            ("Kustomization", "apps")
        );
        assert_eq!((u.generation, u.observed_generation), (2, 2));
        tap(&watcher::Event::Delete(kustomization("b", "False", "r1")));
        assert_eq!(names(&hub).len(), 1);
        // A relist that does not list "a" (deleted while the watch was down) forgets it.
        tap(&watcher::Event::Init);
        tap(&watcher::Event::InitApply(kustomization("c", "True", "r3")));
        tap(&watcher::Event::InitDone);
        assert_eq!(
            names(&hub),
            [("c".to_string(), "True".to_string(), "r3".to_string())]
        );
    }

    #[tokio::test]
    async fn snapshot_then_changes_filtered_by_name() {
        let hub = ReadinessHub::new();
        hub.update(update("a", "Unknown"));
        hub.update(update("b", "True"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(ReadinessServer::new(hub.clone()))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        let mut client = ReadinessClient::connect(format!("http://{addr}"))
            .await
            .unwrap();
        let mut s = client
            .watch(ReadinessRequest {
                name: "a".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let first = s.next().await.unwrap().unwrap();
        assert_eq!(
            (first.name.as_str(), first.ready.as_str()),
            ("a", "Unknown")
        );
        hub.update(update("b", "False"));
        hub.update(update("a", "Unknown")); // unchanged: not re-sent
        hub.update(update("a", "True"));
        let next = tokio::time::timeout(std::time::Duration::from_secs(5), s.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!((next.name.as_str(), next.ready.as_str()), ("a", "True"));
    }
}
