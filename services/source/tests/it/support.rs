//! Test fixtures: Git repositories built with the `git` CLI, and real servers on 127.0.0.1
//! (`git daemon`, `git http-backend` behind a basic-auth HTTP bridge, `sshd`).

use std::collections::{BTreeMap, HashMap};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferroflux_api::GitRepository;
use source_controller::gitrepository::Lookup;

/// Runs git with a clean, deterministic environment; panics with stderr on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    git_env(dir, args, &[])
}

/// Like [`git`], with extra environment variables.
pub fn git_env(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
        .envs(envs.iter().copied())
        .output()
        .expect("git is installed");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A directory holding bare repositories (served by the servers below) and scratch space.
pub struct Repos {
    pub dir: tempfile::TempDir,
}

impl Repos {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("srv")).unwrap();
        Self { dir }
    }

    /// Where bare repositories live.
    pub fn base(&self) -> PathBuf {
        self.dir.path().join("srv")
    }

    /// A work tree for building the repository `name` (created on first use).
    pub fn work(&self, name: &str) -> PathBuf {
        let w = self.dir.path().join("work").join(name);
        if !w.exists() {
            std::fs::create_dir_all(&w).unwrap();
            git(&w, &["init", "-q", "-b", "main"]);
        }
        w
    }

    /// Writes files (path, content) into the work tree, commits them, returns the commit id.
    pub fn commit(&self, name: &str, files: &[(&str, &str)], message: &str) -> String {
        let w = self.work(name);
        for (p, c) in files {
            let path = w.join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, c).unwrap();
        }
        git(&w, &["add", "-A"]);
        git(&w, &["commit", "-q", "--allow-empty", "-m", message]);
        git(&w, &["rev-parse", "HEAD"])
    }

    /// Pushes every branch and tag (and extra refs) of the work tree to `<base>/<name>.git`.
    pub fn publish(&self, name: &str) -> PathBuf {
        let w = self.work(name);
        let bare = self.base().join(format!("{name}.git"));
        if !bare.exists() {
            git(
                self.dir.path(),
                &["init", "-q", "--bare", bare.to_str().unwrap()],
            );
            git(
                &bare,
                &["config", "uploadpack.allowReachableSHA1InWant", "true"],
            );
            git(&bare, &["config", "uploadpack.allowFilter", "true"]);
            git(&bare, &["symbolic-ref", "HEAD", "refs/heads/main"]);
        }
        git(
            &w,
            &[
                "push",
                "-q",
                "--force",
                bare.to_str().unwrap(),
                "refs/heads/*:refs/heads/*",
                "refs/tags/*:refs/tags/*",
            ],
        );
        bare
    }
}

/// A free port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("server on port {port} did not start");
}

/// A child process killed on drop.
pub struct Server {
    child: Child,
    pub port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `git daemon` exporting every repository under `base`.
pub fn git_daemon(base: &Path) -> Server {
    let port = free_port();
    let child = Command::new("git")
        .args([
            "daemon",
            "--reuseaddr",
            "--export-all",
            "--listen=127.0.0.1",
            &format!("--port={port}"),
            &format!("--base-path={}", base.display()),
            "--enable=upload-pack",
        ])
        .arg(base)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("git daemon starts");
    wait_for_port(port);
    Server { child, port }
}

/// `git http-backend` behind an HTTP server that requires basic auth `user:pass`.
pub struct HttpGit {
    pub addr: SocketAddr,
    _task: tokio::task::JoinHandle<()>,
}

pub async fn http_git(base: &Path, user: &str, pass: &str) -> HttpGit {
    use base64::Engine;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    );
    http_git_with(base, &expected).await
}

/// Like [`http_git`], requiring `Authorization: Bearer <token>`.
pub async fn http_git_bearer(base: &Path, token: &str) -> HttpGit {
    http_git_with(base, &format!("Bearer {token}")).await
}

async fn http_git_with(base: &Path, expected: &str) -> HttpGit {
    let router = git_router(base, expected);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    HttpGit { addr, _task: task }
}

/// PEM material of a test PKI: a CA, a server certificate for 127.0.0.1 and a client certificate.
pub struct Pki {
    pub ca: String,
    pub server_cert: String,
    pub server_key: String,
    pub client_cert: String,
    pub client_key: String,
}

pub fn pki() -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "git test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, &ca_key);
    let leaf = |names: Vec<String>, usage: ExtendedKeyUsagePurpose| {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(names).unwrap();
        p.distinguished_name.push(DnType::CommonName, "git test");
        p.extended_key_usages = vec![usage];
        p.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        let cert = p.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = leaf(
        vec!["127.0.0.1".into()],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let (client_cert, client_key) =
        leaf(vec!["client".into()], ExtendedKeyUsagePurpose::ClientAuth);
    Pki {
        ca: ca.pem(),
        server_cert,
        server_key,
        client_cert,
        client_key,
    }
}

/// `git http-backend` over HTTPS with the PKI's server certificate, basic auth `user:pass`,
/// and a client certificate signed by the PKI's CA required.
pub async fn https_git(base: &Path, pki: &Pki) -> HttpGit {
    use base64::Engine;
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
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("user:pass")
    );
    let router = git_router(base, &expected);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (acceptor, router) = (acceptor.clone(), router.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        router.clone().oneshot(req.map(axum::body::Body::new))
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
    HttpGit { addr, _task: task }
}

/// The smart-HTTP CGI bridge, requiring `Authorization: <expected>`.
fn git_router(base: &Path, expected: &str) -> axum::Router {
    use axum::body::Body;
    use axum::http::{Request, Response, StatusCode};

    let base = base.to_path_buf();
    let expected = expected.to_string();
    let handler = move |req: Request<Body>| {
        let base = base.clone();
        let expected = expected.clone();
        async move {
            let auth = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            if auth != expected {
                return Response::builder()
                    .status(StatusCode::UNAUTHORIZED)
                    .header("www-authenticate", "Basic realm=\"git\"")
                    .body(Body::empty())
                    .unwrap();
            }
            let method = req.method().to_string();
            let path = req.uri().path().to_string();
            let query = req.uri().query().unwrap_or_default().to_string();
            let ctype = req
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let proto = req
                .headers()
                .get("git-protocol")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let encoding = req
                .headers()
                .get("content-encoding")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let body = axum::body::to_bytes(req.into_body(), 1 << 30)
                .await
                .unwrap();
            let out = tokio::task::spawn_blocking(move || {
                use std::io::Write;
                let mut child = Command::new("git")
                    .arg("http-backend")
                    .env_clear()
                    .env("PATH", std::env::var("PATH").unwrap_or_default())
                    .env("GIT_CONFIG_NOSYSTEM", "1")
                    .env("GIT_CONFIG_GLOBAL", "/dev/null")
                    .env("GIT_PROJECT_ROOT", &base)
                    .env("GIT_HTTP_EXPORT_ALL", "1")
                    .env("REQUEST_METHOD", method)
                    .env("PATH_INFO", path)
                    .env("QUERY_STRING", query)
                    .env("CONTENT_TYPE", ctype)
                    .env("CONTENT_LENGTH", body.len().to_string())
                    .env("HTTP_CONTENT_ENCODING", encoding)
                    .env("GIT_PROTOCOL", proto)
                    .env("REMOTE_USER", "user")
                    .env("REMOTE_ADDR", "127.0.0.1")
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap();
                let mut stdin = child.stdin.take().unwrap();
                stdin.write_all(&body).unwrap();
                drop(stdin);
                child.wait_with_output().unwrap().stdout
            })
            .await
            .unwrap();
            // CGI response: headers, blank line, body.
            let split = out
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|i| (i, 4))
                .or_else(|| out.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)))
                .unwrap_or((out.len(), 0));
            let head = String::from_utf8_lossy(&out[..split.0]).to_string();
            let body = out[(split.0 + split.1).min(out.len())..].to_vec();
            let mut resp = Response::builder();
            let mut status = 200u16;
            for line in head.lines() {
                if let Some((k, v)) = line.split_once(':') {
                    let (k, v) = (k.trim(), v.trim());
                    if k.eq_ignore_ascii_case("status") {
                        status = v
                            .split_whitespace()
                            .next()
                            .and_then(|s| s.parse().ok())
                            .unwrap_or(200);
                    } else {
                        resp = resp.header(k, v);
                    }
                }
            }
            resp.status(status).body(Body::from(body)).unwrap()
        }
    };
    axum::Router::new().fallback(handler)
}

/// `sshd` on 127.0.0.1 accepting `client_pub` for the current user.
pub struct Sshd {
    pub server: Server,
    pub known_hosts: String,
}

pub fn ssh_keygen(dir: &Path, name: &str, passphrase: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", passphrase, "-C", "test", "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    (key, public)
}

pub fn sshd(dir: &Path, authorized_keys: &[String]) -> Sshd {
    let sshd = ["/usr/sbin/sshd", "/usr/bin/sshd"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("sshd is missing: install it with `apt-get install -y openssh-server`");
    std::fs::create_dir_all("/run/sshd").unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let (host_key, host_pub) = ssh_keygen(dir, "host_key", "");
    let auth = dir.join("authorized_keys");
    std::fs::write(&auth, authorized_keys.join("")).unwrap();
    let port = free_port();
    let config = dir.join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\nPidFile {}\nAcceptEnv GIT_PROTOCOL\nLogLevel ERROR\n",
            host_key.display(),
            auth.display(),
            dir.join("sshd.pid").display()
        ),
    )
    .unwrap();
    let child = Command::new(sshd)
        .args(["-D", "-e", "-f"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sshd starts");
    wait_for_port(port);
    let key = host_pub
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    Sshd {
        server: Server { child, port },
        known_hosts: format!("[127.0.0.1]:{port} {key}\n"),
    }
}

/// Secrets and GitRepositories held in memory.
#[derive(Default)]
pub struct FakeLookup {
    pub secrets: HashMap<String, BTreeMap<String, Vec<u8>>>,
    pub repos: HashMap<String, GitRepository>,
    /// ServiceAccount name -> its imagePullSecrets.
    pub service_accounts: HashMap<String, Vec<String>>,
}

impl FakeLookup {
    pub fn with_secret(mut self, name: &str, pairs: &[(&str, &[u8])]) -> Self {
        self.secrets.insert(
            name.to_string(),
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_vec()))
                .collect(),
        );
        self
    }
}

impl Lookup for FakeLookup {
    async fn secret(
        &self,
        _namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, Vec<u8>>>, String> {
        Ok(self.secrets.get(name).cloned())
    }

    async fn git_repository(
        &self,
        _namespace: &str,
        name: &str,
    ) -> Result<Option<GitRepository>, String> {
        Ok(self.repos.get(name).cloned())
    }
}

impl source_controller::ocirepository::Lookup for FakeLookup {
    async fn secret(
        &self,
        _namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, Vec<u8>>>, String> {
        Ok(self.secrets.get(name).cloned())
    }

    async fn image_pull_secrets(
        &self,
        _namespace: &str,
        name: &str,
    ) -> Result<Option<Vec<String>>, String> {
        Ok(self.service_accounts.get(name).cloned())
    }
}

/// A GitRepository object in namespace `default` at the given generation.
pub fn git_repository(name: &str, generation: i64, spec: serde_json::Value) -> GitRepository {
    let mut spec = spec;
    if spec.get("interval").is_none() {
        spec["interval"] = "1m".into();
    }
    serde_json::from_value(serde_json::json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": name, "namespace": "default", "generation": generation, "uid": "u-1"},
        "spec": spec,
    }))
    .unwrap()
}

/// A forward HTTP proxy requiring `Proxy-Authorization: Basic <user:pass>`; counts the
/// requests it forwarded.
pub struct Proxy {
    pub addr: SocketAddr,
    pub forwarded: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    _task: tokio::task::JoinHandle<()>,
}

pub async fn http_proxy(user: &str, pass: &str) -> Proxy {
    use axum::body::Body;
    use axum::http::{Request, Response, StatusCode};
    use base64::Engine;

    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    );
    let forwarded = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = forwarded.clone();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let handler = move |req: Request<Body>| {
        let (expected, counter, client) = (expected.clone(), counter.clone(), client.clone());
        async move {
            let auth = req
                .headers()
                .get("proxy-authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if auth != expected {
                return Response::builder()
                    .status(StatusCode::PROXY_AUTHENTICATION_REQUIRED)
                    .header("proxy-authenticate", "Basic realm=\"proxy\"")
                    .body(Body::empty())
                    .unwrap();
            }
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let url = req.uri().to_string();
            let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes()).unwrap();
            let mut headers = reqwest::header::HeaderMap::new();
            for (k, v) in req.headers() {
                if k.as_str() != "proxy-authorization" && k.as_str() != "host" {
                    headers.insert(
                        reqwest::header::HeaderName::from_bytes(k.as_str().as_bytes()).unwrap(),
                        reqwest::header::HeaderValue::from_bytes(v.as_bytes()).unwrap(),
                    );
                }
            }
            let body = axum::body::to_bytes(req.into_body(), 1 << 30)
                .await
                .unwrap();
            let resp = client
                .request(method, url)
                .headers(headers)
                .body(body)
                .send()
                .await
                .unwrap();
            let mut out = Response::builder().status(resp.status().as_u16());
            for (k, v) in resp.headers() {
                out = out.header(k.as_str(), v.as_bytes());
            }
            out.body(Body::from(resp.bytes().await.unwrap())).unwrap()
        }
    };
    let router = axum::Router::new().fallback(handler);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    Proxy {
        addr,
        forwarded,
        _task: task,
    }
}
