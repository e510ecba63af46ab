//! Following source-controller's ArtifactEvents gRPC stream, as kustomize-controller and
//! helm-controller do: connect, subscribe after the last sequence seen, hand every event to
//! the caller, and reconnect with backoff when the stream ends. A retention gap is only
//! logged: the consumers' source watches (which relist) cover what was missed.

use std::time::Duration;

use ferroflux_proto::artifact_events_client::ArtifactEventsClient;
use ferroflux_proto::artifact_stream_message::Message;
use ferroflux_proto::{ArtifactEvent, SubscribeRequest};

/// Follows the stream at `addr` (`host:port` or a URL) for `namespace` (all when `None`),
/// calling `on_event` for each event, until the future is dropped.
pub async fn follow(addr: String, namespace: Option<String>, on_event: impl Fn(ArtifactEvent)) {
    let url = if addr.contains("://") {
        addr
    } else {
        format!("http://{addr}")
    };
    let mut last = 0u64;
    let mut delay = Duration::from_millis(200);
    loop {
        let mut client = match ArtifactEventsClient::connect(url.clone()).await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, addr = %url, "artifact events unavailable, retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        let request = SubscribeRequest {
            after_sequence: last,
            kinds: Vec::new(),
            namespace: namespace.clone().unwrap_or_default(),
        };
        let mut stream = match client.subscribe(request).await {
            Ok(s) => s.into_inner(),
            Err(e) => {
                tracing::debug!(error = %e, "artifact events subscribe failed, retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
                continue;
            }
        };
        tracing::info!(addr = %url, after = last, "subscribed to artifact events");
        delay = Duration::from_millis(200);
        loop {
            match stream.message().await {
                Ok(Some(msg)) => match msg.message {
                    Some(Message::Event(ev)) => {
                        last = ev.sequence;
                        on_event(ev);
                    }
                    Some(Message::Gap(gap)) => {
                        tracing::info!(
                            oldest = gap.oldest_retained,
                            newest = gap.newest,
                            "artifact events gap; relying on the source watches"
                        );
                        last = gap.newest;
                    }
                    None => {}
                },
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "artifact events stream ended");
                    break;
                }
            }
        }
        tokio::time::sleep(delay).await;
    }
}
