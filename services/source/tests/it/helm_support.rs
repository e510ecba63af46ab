//! Helm chart repositories for the tests: charts made and packaged by the real `helm` (v4),
//! indexed by `helm repo index`, served from a directory over HTTP or HTTPS (client
//! certificate required) on 127.0.0.1, with or without basic auth.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::Pki;

/// The real `helm`, with its caches and configuration inside `home`.
pub fn helm(home: &Path, args: &[&str]) -> String {
    let bin = ferroflux_testsupport::tool("helm", "run scripts/get-oracles (helm v4)");
    let out = Command::new(bin)
        .args(args)
        .current_dir(home)
        .env("HELM_CACHE_HOME", home.join(".helm/cache"))
        .env("HELM_CONFIG_HOME", home.join(".helm/config"))
        .env("HELM_DATA_HOME", home.join(".helm/data"))
        .output()
        .expect("helm runs");
    assert!(
        out.status.success(),
        "helm {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[allow(dead_code)]
/// Like [`helm`], returning the error text instead of panicking on failure.
pub fn helm_try(home: &Path, args: &[&str]) -> Result<String, String> {
    let bin = ferroflux_testsupport::tool("helm", "run scripts/get-oracles (helm v4)");
    let out = Command::new(bin)
        .args(args)
        .current_dir(home)
        .env("HELM_CACHE_HOME", home.join(".helm/cache"))
        .env("HELM_CONFIG_HOME", home.join(".helm/config"))
        .env("HELM_DATA_HOME", home.join(".helm/data"))
        .output()
        .expect("helm runs");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A chart source directory made by `helm create`, with `extra` files written over it.
pub fn create_chart(work: &Path, name: &str, extra: &[(&str, &str)]) -> PathBuf {
    std::fs::create_dir_all(work).unwrap();
    helm(work, &["create", name]);
    let dir = work.join(name);
    for (p, c) in extra {
        let path = dir.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, c).unwrap();
    }
    dir
}

/// A chart repository directory: packaged charts and the index.
pub struct ChartRepo {
    pub dir: tempfile::TempDir,
    pub work: tempfile::TempDir,
}

impl ChartRepo {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            work: tempfile::tempdir().unwrap(),
        }
    }

    /// Packages the chart source `src` at `version` into the repository (`helm package`).
    pub fn package(&self, src: &Path, version: &str) -> PathBuf {
        let out = helm(
            self.work.path(),
            &[
                "package",
                src.to_str().unwrap(),
                "--version",
                version,
                "--destination",
                self.dir.path().to_str().unwrap(),
            ],
        );
        let path = out.trim().rsplit(": ").next().unwrap().to_string();
        PathBuf::from(path)
    }

    /// `helm repo index` (relative URLs, or absolute ones under `url`).
    pub fn index(&self, url: Option<&str>) -> Vec<u8> {
        let mut args = vec!["repo", "index", self.dir.path().to_str().unwrap()];
        if let Some(u) = url {
            args.extend(["--url", u]);
        }
        helm(self.work.path(), &args);
        std::fs::read(self.dir.path().join("index.yaml")).unwrap()
    }

    pub fn write(&self, name: &str, data: &[u8]) {
        std::fs::write(self.dir.path().join(name), data).unwrap();
    }
}

/// A static file server on 127.0.0.1.
pub struct FileServer {
    pub addr: SocketAddr,
    pub scheme: &'static str,
    _task: tokio::task::JoinHandle<()>,
}

impl FileServer {
    pub fn url(&self, path: &str) -> String {
        format!(
            "{}://{}/{}",
            self.scheme,
            self.addr,
            path.trim_start_matches('/')
        )
    }
}

fn router(root: &Path, auth: Option<(&str, &str)>) -> axum::Router {
    use axum::body::Body;
    use axum::http::{Request, Response, StatusCode};
    use base64::Engine;

    let root = root.to_path_buf();
    let expected = auth.map(|(u, p)| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        )
    });
    let handler = move |req: Request<Body>| {
        let root = root.clone();
        let expected = expected.clone();
        async move {
            if let Some(exp) = &expected {
                let got = req
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if got != exp {
                    return Response::builder()
                        .status(StatusCode::UNAUTHORIZED)
                        .header("www-authenticate", "Basic realm=\"charts\"")
                        .body(Body::empty())
                        .unwrap();
                }
            }
            let rel = req.uri().path().trim_start_matches('/');
            if rel.split('/').any(|p| p == "..") {
                return Response::builder()
                    .status(StatusCode::BAD_REQUEST)
                    .body(Body::empty())
                    .unwrap();
            }
            match std::fs::read(root.join(rel)) {
                Ok(data) => Response::builder()
                    .status(StatusCode::OK)
                    .body(Body::from(data))
                    .unwrap(),
                Err(_) => Response::builder()
                    .status(StatusCode::NOT_FOUND)
                    .body(Body::empty())
                    .unwrap(),
            }
        }
    };
    axum::Router::new().fallback(handler)
}

/// Serves `root` over plain HTTP, requiring basic auth when `auth` is set.
pub async fn serve_http(root: &Path, auth: Option<(&str, &str)>) -> FileServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    serve_http_on(listener, root, auth)
}

/// Like [`serve_http`] on a listener bound beforehand (to know the address in advance).
pub fn serve_http_on(
    listener: tokio::net::TcpListener,
    root: &Path,
    auth: Option<(&str, &str)>,
) -> FileServer {
    let addr = listener.local_addr().unwrap();
    let r = router(root, auth);
    let task = tokio::spawn(async move {
        axum::serve(listener, r).await.unwrap();
    });
    FileServer {
        addr,
        scheme: "http",
        _task: task,
    }
}

/// Serves `root` over HTTPS with the PKI's server certificate, requiring a client certificate
/// signed by its CA and, when `auth` is set, basic auth.
pub async fn serve_https(root: &Path, pki: &Pki, auth: Option<(&str, &str)>) -> FileServer {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls::server::WebPkiClientVerifier;
    use tokio_rustls::rustls::{RootCertStore, ServerConfig, crypto::aws_lc_rs};
    use tower::ServiceExt;

    let provider = std::sync::Arc::new(aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(pki.ca.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let verifier =
        WebPkiClientVerifier::builder_with_provider(std::sync::Arc::new(roots), provider.clone())
            .build()
            .unwrap();
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(pki.server_cert.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_slice(pki.server_key.as_bytes()).unwrap();
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .unwrap();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(cfg));
    let r = router(root, auth);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (acceptor, r) = (acceptor.clone(), r.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        r.clone().oneshot(req.map(axum::body::Body::new))
                    },
                );
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                .await;
            });
        }
    });
    FileServer {
        addr,
        scheme: "https",
        _task: task,
    }
}

/// A HelmRepository in namespace `default` at the given generation.
pub fn helm_repository(
    name: &str,
    generation: i64,
    spec: serde_json::Value,
) -> ferroflux_api::HelmRepository {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "HelmRepository",
        "metadata": {"name": name, "namespace": "default", "generation": generation, "uid": "u-1"},
        "spec": spec,
    }))
    .unwrap()
}
