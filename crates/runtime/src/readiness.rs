//! The Readiness gRPC stream each applier (kustomize-controller, helm-controller) serves for its
//! own objects: a snapshot of every matching object, then each change of its Ready state,
//! observed generation, revision or last handled reconcile request.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use ferroflux_api::FluxObject;
use ferroflux_proto::readiness_server::Readiness;
use ferroflux_proto::{ReadinessRequest, ReadinessUpdate};
use futures::{Stream, StreamExt};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::sync::broadcast;
use tonic::{Request, Response, Status};

type Key = (String, String, String);

/// The current readiness of every object of the served kinds, and a broadcast of changes.
#[derive(Clone)]
pub struct ReadinessHub {
    current: Arc<RwLock<BTreeMap<Key, ReadinessUpdate>>>,
    changes: broadcast::Sender<ReadinessUpdate>,
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

/// Feeds the hub from a watch of `K` until the watch stream ends; `revision` extracts the
/// revision to report (lastAppliedRevision, lastAttemptedRevision, ...).
pub async fn feed<K, F>(client: Client, namespace: Option<String>, hub: ReadinessHub, revision: F)
where
    K: FluxObject,
    F: Fn(&K) -> String + Send + 'static,
{
    let api: Api<K> = match &namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    };
    let mut events = watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .boxed();
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Apply(obj)) | Ok(watcher::Event::InitApply(obj)) => {
                hub.update(readiness_of(&obj, &revision(&obj)));
            }
            Ok(watcher::Event::Delete(obj)) => {
                hub.remove(
                    &K::kind(&()),
                    &obj.namespace().unwrap_or_default(),
                    &obj.name_any(),
                );
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "readiness watch error"),
        }
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

/// Serves the Readiness gRPC stream (plus the gRPC health service) for kind `K` on `addr`
/// until `shutdown`, fed by a watch of `K`. Returns the bound address.
pub async fn serve<K, F>(
    client: Client,
    namespace: Option<String>,
    addr: std::net::SocketAddr,
    revision: F,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<std::net::SocketAddr>
where
    K: FluxObject,
    F: Fn(&K) -> String + Send + 'static,
{
    use ferroflux_proto::readiness_server::ReadinessServer;
    let hub = ReadinessHub::new();
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<ReadinessServer<ReadinessHub>>().await;
    let feeder = tokio::spawn(feed::<K, F>(client, namespace, hub.clone(), revision));
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
        feeder.abort();
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
