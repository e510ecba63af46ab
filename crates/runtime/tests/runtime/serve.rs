//! The HTTP servers of `ferroflux_runtime::serve` answer without Nagle delays.

use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::Bytes;

/// A response whose body comes after the headers (as a file streamed from disk does): hyper
/// sends the headers first, then the body in a second segment. Without TCP_NODELAY that second
/// segment waits for the client's delayed ACK, at least 40 ms on Linux, on every request of a
/// kept-alive connection; the bound below leaves room for a loaded machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_in_two_segments_are_not_delayed() {
    let app = axum::Router::new().route(
        "/artifact",
        axum::routing::get(|| async {
            let body = futures::stream::once(async {
                tokio::time::sleep(Duration::from_millis(1)).await;
                Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 4096]))
            });
            Body::from_stream(body)
        }),
    );
    let (addr, _task) = ferroflux_runtime::serve::spawn_http(
        "127.0.0.1:0".parse().unwrap(),
        app,
        futures::future::pending(),
    )
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let url = format!("http://{addr}/artifact");
    let mut took = Vec::new();
    for _ in 0..30 {
        let start = Instant::now();
        let body = client
            .get(&url)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(body.len(), 4096);
        took.push(start.elapsed());
    }
    took.sort();
    let median = took[took.len() / 2];
    assert!(
        median < Duration::from_millis(30),
        "median request time {median:?} (all: {took:?}): the server waits for delayed ACKs"
    );
}
