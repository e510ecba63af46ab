//! The artifact client over real HTTP: retries on server errors, no retry on 404, digest check.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use ferroflux_runtime::artifact::{ArtifactError, ArtifactFetcher, digest_of};

const BODY: &[u8] = b"artifact bytes";

async fn server(failures_before_success: usize) -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let flaky_calls = Arc::new(AtomicUsize::new(0));
    let missing_calls = Arc::new(AtomicUsize::new(0));
    let (f, m) = (flaky_calls.clone(), missing_calls.clone());
    let app = axum::Router::new()
        .route(
            "/flaky.tar.gz",
            axum::routing::get(move || {
                let f = f.clone();
                async move {
                    if f.fetch_add(1, Ordering::SeqCst) < failures_before_success {
                        (StatusCode::SERVICE_UNAVAILABLE, Vec::new())
                    } else {
                        (StatusCode::OK, BODY.to_vec())
                    }
                }
            }),
        )
        .route(
            "/missing.tar.gz",
            axum::routing::get(move || {
                let m = m.clone();
                async move {
                    m.fetch_add(1, Ordering::SeqCst);
                    StatusCode::NOT_FOUND
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), flaky_calls, missing_calls)
}

#[tokio::test]
async fn retries_server_errors_then_verifies_digest() {
    let (base, flaky, _) = server(2).await;
    let fetcher = ArtifactFetcher::new(3, Duration::from_secs(5));
    let digest = digest_of("sha256", BODY).unwrap();
    let got = fetcher
        .fetch(&format!("{base}/flaky.tar.gz"), &digest)
        .await
        .unwrap();
    assert_eq!(got, BODY);
    assert_eq!(
        flaky.load(Ordering::SeqCst),
        3,
        "two failures, then success"
    );
}

#[tokio::test]
async fn gives_up_after_the_retry_budget() {
    let (base, flaky, _) = server(10).await;
    let fetcher = ArtifactFetcher::new(1, Duration::from_secs(5));
    let err = fetcher
        .fetch(
            &format!("{base}/flaky.tar.gz"),
            &digest_of("sha256", BODY).unwrap(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ArtifactError::Download { .. }), "{err}");
    assert!(err.to_string().contains("503"), "{err}");
    assert_eq!(flaky.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn not_found_is_not_retried() {
    let (base, _, missing) = server(0).await;
    let fetcher = ArtifactFetcher::new(5, Duration::from_secs(5));
    let err = fetcher
        .fetch(
            &format!("{base}/missing.tar.gz"),
            &digest_of("sha256", BODY).unwrap(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ArtifactError::NotFound { .. }), "{err}");
    assert_eq!(missing.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn digest_mismatch_is_refused() {
    let (base, _, _) = server(0).await;
    let fetcher = ArtifactFetcher::new(0, Duration::from_secs(5));
    let wrong = digest_of("sha256", b"something else").unwrap();
    let err = fetcher
        .fetch(&format!("{base}/flaky.tar.gz"), &wrong)
        .await
        .unwrap_err();
    assert!(matches!(err, ArtifactError::DigestMismatch { .. }), "{err}");
}

#[tokio::test]
async fn download_size_is_bounded() {
    let (base, _, _) = server(0).await;
    let fetcher = ArtifactFetcher::new(0, Duration::from_secs(5)).with_max_download(4);
    let err = fetcher
        .fetch(
            &format!("{base}/flaky.tar.gz"),
            &digest_of("sha256", BODY).unwrap(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ArtifactError::TooLarge { .. }), "{err}");
}
