//! The artifact file server on `--storage-addr`: the storage root served at `/`, with Range
//! requests, ETag / Last-Modified and conditional 304 answers (tower-http `ServeDir`). `GET /`
//! answers 200, which is what upstream's readiness probe checks on this port.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower::ServiceExt;
use tower_http::services::{ServeDir, ServeFile};

use crate::storage::remote::Remote;

/// The router serving `root`.
pub fn router(root: &Path) -> Router {
    router_with_remote(root, None)
}

/// The router serving `root`; paths missing locally are fetched from the shared object store
/// first (another replica stored them) when there is one.
pub fn router_with_remote(root: &Path, remote: Option<Remote>) -> Router {
    let files = ServeDir::new(root)
        .append_index_html_on_directories(false)
        .with_buf_chunk_size(256 * 1024);
    let router = Router::new().route("/", get(|| async { "" }));
    match remote {
        None => router.fallback_service(files),
        Some(remote) => {
            let root: PathBuf = root.to_path_buf();
            let fetch = move |req: Request<Body>| {
                let (root, remote) = (root.clone(), remote.clone());
                async move { from_remote(&root, &remote, req).await }
            };
            router.fallback_service(files.fallback(tower::service_fn(move |req: Request<Body>| {
                let fut = fetch(req);
                async move { Ok::<_, std::convert::Infallible>(fut.await) }
            })))
        }
    }
}

async fn from_remote(root: &Path, remote: &Remote, req: Request<Body>) -> Response {
    let rel = req.uri().path().trim_start_matches('/').to_string();
    let safe = !rel.is_empty()
        && Path::new(&rel)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    if !safe {
        return StatusCode::NOT_FOUND.into_response();
    }
    let local = root.join(&rel);
    match remote.download(&rel, &local).await {
        Ok(true) => match ServeFile::new(&local).oneshot(req).await {
            Ok(resp) => resp.into_response(),
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        },
        Ok(false) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => {
            tracing::warn!(error = %e, path = %rel, "failed to fetch artifact from shared storage");
            StatusCode::BAD_GATEWAY.into_response()
        }
    }
}

/// Binds `addr` and serves `root` until `shutdown` resolves; returns the bound address.
pub async fn spawn(
    addr: SocketAddr,
    root: &Path,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    ferroflux_runtime::serve::spawn_http(addr, router(root), shutdown).await
}

/// Like [`spawn`], with the shared object store as a fallback.
pub async fn spawn_with_remote(
    addr: SocketAddr,
    root: &Path,
    remote: Option<Remote>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    ferroflux_runtime::serve::spawn_http(addr, router_with_remote(root, remote), shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn range_etag_and_not_modified() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("gitrepository/ns/app")).unwrap();
        let body: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        std::fs::write(tmp.path().join("gitrepository/ns/app/a.tar.gz"), &body).unwrap();
        let (addr, _task) = spawn(
            "127.0.0.1:0".parse().unwrap(),
            tmp.path(),
            std::future::pending(),
        )
        .await
        .unwrap();
        let url = format!("http://{addr}/gitrepository/ns/app/a.tar.gz");
        let client = reqwest::Client::new();

        let full = client.get(&url).send().await.unwrap();
        assert_eq!(full.status(), 200);
        let etag = full.headers()["etag"].to_str().unwrap().to_string();
        assert_eq!(full.bytes().await.unwrap().as_ref(), &body[..]);

        let part = client
            .get(&url)
            .header("range", "bytes=100-199")
            .send()
            .await
            .unwrap();
        assert_eq!(part.status(), 206);
        assert_eq!(part.bytes().await.unwrap().as_ref(), &body[100..200]);

        let cached = client
            .get(&url)
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(cached.status(), 304);

        let root = client.get(format!("http://{addr}/")).send().await.unwrap();
        assert_eq!(root.status(), 200);
        let missing = client
            .get(format!("http://{addr}/gitrepository/ns/app/none.tar.gz"))
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), 404);
        let escape = client
            .get(format!("http://{addr}/../../etc/passwd"))
            .send()
            .await
            .unwrap();
        assert_eq!(escape.status(), 404);
    }
}
