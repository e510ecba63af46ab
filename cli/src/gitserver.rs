//! A Git smart-HTTP server on loopback for the embedded demo: `git http-backend` behind a small
//! CGI bridge, serving the bare repositories under one directory (read-only).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;

use anyhow::Context;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Response, StatusCode};
use tokio::io::AsyncWriteExt;

/// Serves the bare repositories under `root` at `http://<addr>/<name>.git` until `shutdown`.
pub async fn serve(
    root: PathBuf,
    addr: SocketAddr,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .context("binding the git server")?;
    let local = listener.local_addr()?;
    let app = axum::Router::new().fallback(handle).with_state(root);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await;
    });
    Ok(local)
}

async fn handle(State(root): State<PathBuf>, req: Request) -> Response<Body> {
    match cgi(root, req).await {
        Ok(r) => r,
        Err(e) => Response::builder()
            .status(StatusCode::INTERNAL_SERVER_ERROR)
            .body(Body::from(format!("git http-backend failed: {e:#}\n")))
            .unwrap_or_default(),
    }
}

async fn cgi(root: PathBuf, req: Request) -> anyhow::Result<Response<Body>> {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_string();
    if path.contains("..") {
        return Ok(Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .body(Body::empty())?);
    }
    // Read-only: pushes are refused.
    if path.ends_with("/git-receive-pack")
        || parts.uri.query().unwrap_or("").contains("git-receive-pack")
    {
        return Ok(Response::builder()
            .status(StatusCode::FORBIDDEN)
            .body(Body::from("read-only\n"))?);
    }
    let body = axum::body::to_bytes(body, 64 << 20)
        .await
        .context("reading the request body")?;
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let mut child = tokio::process::Command::new("git")
        .arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", &root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GIT_CONFIG_COUNT", "1")
        .env("GIT_CONFIG_KEY_0", "safe.directory")
        .env("GIT_CONFIG_VALUE_0", "*")
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("PATH_INFO", &path)
        .env("QUERY_STRING", parts.uri.query().unwrap_or(""))
        .env("CONTENT_TYPE", header("content-type"))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("GIT_PROTOCOL", header("git-protocol"))
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("starting git http-backend (is git installed?)")?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(&body).await?;
    }
    let out = child.wait_with_output().await?;
    let split = out
        .stdout
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| {
            out.stdout
                .windows(2)
                .position(|w| w == b"\n\n")
                .map(|i| (i, 2))
        })
        .context("git http-backend answered without headers")?;
    let (head, rest) = out.stdout.split_at(split.0);
    let mut resp = Response::builder().status(StatusCode::OK);
    for line in String::from_utf8_lossy(head).lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        if k.eq_ignore_ascii_case("status") {
            let code: u16 = v
                .split_whitespace()
                .next()
                .unwrap_or("500")
                .parse()
                .unwrap_or(500);
            resp = resp.status(code);
        } else if let (Ok(k), Ok(v)) = (HeaderName::try_from(k.trim()), HeaderValue::from_str(v)) {
            resp = resp.header(k, v);
        }
    }
    Ok(resp.body(Body::from(rest[split.1..].to_vec()))?)
}

/// Creates (or replaces) the bare repository `<root>/<name>.git` with one commit holding
/// `files` (path, content) on branch `main`, with a fixed author and date so that the commit
/// id is the same on every machine.
pub async fn create_repository(
    root: &std::path::Path,
    name: &str,
    files: &[(&str, &str)],
) -> anyhow::Result<String> {
    let work = root.join(format!("{name}.work"));
    let bare = root.join(format!("{name}.git"));
    for d in [&work, &bare] {
        if d.exists() {
            tokio::fs::remove_dir_all(d).await?;
        }
    }
    tokio::fs::create_dir_all(&work).await?;
    for (path, content) in files {
        let p = work.join(path);
        if let Some(parent) = p.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        tokio::fs::write(&p, content).await?;
    }
    let git = |args: &[&str], dir: &std::path::Path| {
        let mut c = tokio::process::Command::new("git");
        c.args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_NAME", "ferroflux")
            .env("GIT_AUTHOR_EMAIL", "demo@ferroflux.invalid")
            .env("GIT_COMMITTER_NAME", "ferroflux")
            .env("GIT_COMMITTER_EMAIL", "demo@ferroflux.invalid")
            .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
            .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1");
        c
    };
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["add", "-A"],
        &["commit", "-q", "-m", "Sample application"],
    ] {
        let out = git(args, &work).output().await.context("running git")?;
        anyhow::ensure!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = git(
        &[
            "clone",
            "-q",
            "--bare",
            &work.to_string_lossy(),
            &bare.to_string_lossy(),
        ],
        root,
    )
    .output()
    .await?;
    anyhow::ensure!(
        out.status.success(),
        "git clone --bare failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let head = git(&["rev-parse", "HEAD"], &work).output().await?;
    tokio::fs::remove_dir_all(&work).await?;
    Ok(String::from_utf8_lossy(&head.stdout).trim().to_string())
}
