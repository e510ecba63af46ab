//! The ArtifactEvents gRPC stream: every stored artifact is appended to a bounded in-memory log
//! with a sequence number and broadcast to subscribers. A subscriber that reconnects with its
//! last sequence number receives everything after it that is still retained; when that is no
//! longer possible (evicted, or the server restarted) it gets a `RetentionGap` first and must
//! fall back to listing sources from the API server.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use ferroflux_proto::artifact_events_server::ArtifactEvents;
use ferroflux_proto::artifact_stream_message::Message;
use ferroflux_proto::{ArtifactEvent, ArtifactStreamMessage, RetentionGap, SubscribeRequest};
use futures::Stream;
use tokio::sync::broadcast;
use tonic::{Request, Response, Status};

/// Default number of events kept for resuming subscribers.
pub const DEFAULT_RETAINED: usize = 4096;

/// Slots of the live fan-out channel. Small on purpose: tokio's broadcast channel allocates
/// and initialises every slot up front (4096 slots were 1 MiB of resident memory at idle),
/// and a subscriber that falls behind catches up from the retained log instead.
const LIVE_BUFFER: usize = 64;

struct LogState {
    retained: VecDeque<ArtifactEvent>,
    next_sequence: u64,
}

/// The in-memory, bounded, sequenced log of artifact events.
#[derive(Clone)]
pub struct ArtifactEventLog {
    state: Arc<Mutex<LogState>>,
    capacity: usize,
    live: broadcast::Sender<ArtifactEvent>,
}

impl ArtifactEventLog {
    pub fn new(capacity: usize) -> Self {
        let (live, _) = broadcast::channel(LIVE_BUFFER);
        Self {
            state: Arc::new(Mutex::new(LogState {
                retained: VecDeque::new(),
                next_sequence: 1,
            })),
            capacity: capacity.max(1),
            live,
        }
    }

    /// Appends an event (its `sequence` is assigned here) and returns the sequence number.
    pub fn publish(&self, mut event: ArtifactEvent) -> u64 {
        let Ok(mut state) = self.state.lock() else {
            return 0;
        };
        event.sequence = state.next_sequence;
        state.next_sequence += 1;
        state.retained.push_back(event.clone());
        while state.retained.len() > self.capacity {
            state.retained.pop_front();
        }
        // Sent under the lock so that subscribers see a gap-free order.
        let _ = self.live.send(event.clone());
        event.sequence
    }

    /// Newest assigned sequence number (0 when nothing was published).
    pub fn newest(&self) -> u64 {
        self.state.lock().map(|s| s.next_sequence - 1).unwrap_or(0)
    }

    /// The replay for a subscriber resuming after `after` (0 = from now on), the live receiver
    /// subscribed atomically with it, whether a gap must be reported, and the sequence the
    /// subscriber is at once the replay is delivered (`after`, or the newest one for 0).
    pub fn subscribe(
        &self,
        after: u64,
    ) -> (
        Option<RetentionGap>,
        Vec<ArtifactEvent>,
        broadcast::Receiver<ArtifactEvent>,
        u64,
    ) {
        self.subscribe_after(after, after == 0)
    }

    /// [`Self::subscribe`], where `after` = 0 means "from sequence 1" unless `from_now`.
    fn subscribe_after(
        &self,
        after: u64,
        from_now: bool,
    ) -> (
        Option<RetentionGap>,
        Vec<ArtifactEvent>,
        broadcast::Receiver<ArtifactEvent>,
        u64,
    ) {
        let Ok(state) = self.state.lock() else {
            return (None, Vec::new(), self.live.subscribe(), after);
        };
        let rx = self.live.subscribe();
        let newest = state.next_sequence - 1;
        if from_now {
            return (None, Vec::new(), rx, newest);
        }
        let oldest = state
            .retained
            .front()
            .map(|e| e.sequence)
            .unwrap_or(newest + 1);
        let gap = if after > newest || after + 1 < oldest {
            Some(RetentionGap {
                oldest_retained: oldest,
                newest,
            })
        } else {
            None
        };
        let replay = if after > newest {
            Vec::new()
        } else {
            state
                .retained
                .iter()
                .filter(|e| e.sequence > after)
                .cloned()
                .collect()
        };
        (gap, replay, rx, after)
    }
}

fn matches(req: &SubscribeRequest, e: &ArtifactEvent) -> bool {
    (req.kinds.is_empty() || req.kinds.iter().any(|k| k == &e.kind))
        && (req.namespace.is_empty() || req.namespace == e.namespace)
}

type EventStream = Pin<Box<dyn Stream<Item = Result<ArtifactStreamMessage, Status>> + Send>>;

#[tonic::async_trait]
impl ArtifactEvents for ArtifactEventLog {
    type SubscribeStream = EventStream;

    async fn subscribe(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let req = request.into_inner();
        let (gap, replay, mut rx, start) = ArtifactEventLog::subscribe(self, req.after_sequence);
        let log = self.clone();
        let stream = async_stream(move |tx| async move {
            let mut last = start;
            if let Some(gap) = gap {
                // After the gap the subscriber is at the newest sequence (the replay below
                // repeats what is still retained).
                let newest = gap.newest;
                if tx
                    .send(Ok(ArtifactStreamMessage {
                        message: Some(Message::Gap(gap)),
                    }))
                    .await
                    .is_err()
                {
                    return;
                }
                last = newest;
            }
            for e in replay {
                last = last.max(e.sequence);
                if matches(&req, &e)
                    && tx
                        .send(Ok(ArtifactStreamMessage {
                            message: Some(Message::Event(e)),
                        }))
                        .await
                        .is_err()
                {
                    return;
                }
            }
            loop {
                match rx.recv().await {
                    Ok(e) => {
                        if e.sequence <= last {
                            continue;
                        }
                        last = e.sequence;
                        if matches(&req, &e)
                            && tx
                                .send(Ok(ArtifactStreamMessage {
                                    message: Some(Message::Event(e)),
                                }))
                                .await
                                .is_err()
                        {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Fell behind the live channel: catch up from the retained log; only
                        // when that no longer holds what was missed, report a gap and end.
                        let (gap, replay, live, _) = log.subscribe_after(last, false);
                        rx = live;
                        if let Some(gap) = gap {
                            let _ = tx
                                .send(Ok(ArtifactStreamMessage {
                                    message: Some(Message::Gap(gap)),
                                }))
                                .await;
                            return;
                        }
                        for e in replay {
                            last = last.max(e.sequence);
                            if matches(&req, &e)
                                && tx
                                    .send(Ok(ArtifactStreamMessage {
                                        message: Some(Message::Event(e)),
                                    }))
                                    .await
                                    .is_err()
                            {
                                return;
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        Ok(Response::new(stream))
    }
}

/// A small channel-backed stream builder.
fn async_stream<F, Fut>(f: F) -> EventStream
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<ArtifactStreamMessage, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(f(tx));
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferroflux_proto::artifact_events_client::ArtifactEventsClient;
    use ferroflux_proto::artifact_events_server::ArtifactEventsServer;
    use futures::StreamExt;

    fn event(name: &str, rev: &str) -> ArtifactEvent {
        ArtifactEvent {
            kind: "GitRepository".into(),
            namespace: "flux-system".into(),
            name: name.into(),
            revision: rev.into(),
            ..Default::default()
        }
    }

    async fn serve(log: ArtifactEventLog) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(ArtifactEventsServer::new(log))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        format!("http://{addr}")
    }

    async fn next(s: &mut tonic::Streaming<ArtifactStreamMessage>) -> Message {
        tokio::time::timeout(std::time::Duration::from_secs(5), s.next())
            .await
            .expect("timely message")
            .expect("stream open")
            .expect("ok message")
            .message
            .expect("message set")
    }

    #[tokio::test]
    async fn resuming_subscriber_misses_nothing_retained() {
        let log = ArtifactEventLog::new(100);
        let url = serve(log.clone()).await;
        let mut client = ArtifactEventsClient::connect(url).await.unwrap();

        let mut live = client
            .subscribe(SubscribeRequest {
                after_sequence: 0,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert_eq!(log.publish(event("a", "main@sha1:1")), 1);
        let Message::Event(e) = next(&mut live).await else {
            panic!("expected event")
        };
        assert_eq!((e.sequence, e.name.as_str()), (1, "a"));
        drop(live);

        // While disconnected, two more artifacts are stored.
        log.publish(event("b", "main@sha1:2"));
        log.publish(event("c", "main@sha1:3"));
        let mut resumed = client
            .subscribe(SubscribeRequest {
                after_sequence: 1,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let Message::Event(e) = next(&mut resumed).await else {
            panic!("expected event")
        };
        assert_eq!(e.sequence, 2);
        let Message::Event(e) = next(&mut resumed).await else {
            panic!("expected event")
        };
        assert_eq!(e.sequence, 3);
        log.publish(event("d", "main@sha1:4"));
        let Message::Event(e) = next(&mut resumed).await else {
            panic!("expected event")
        };
        assert_eq!((e.sequence, e.name.as_str()), (4, "d"));
    }

    #[tokio::test]
    async fn slow_subscriber_catches_up_from_the_retained_log() {
        let log = ArtifactEventLog::new(1000);
        let url = serve(log.clone()).await;
        let mut client = ArtifactEventsClient::connect(url).await.unwrap();
        let mut s = client
            .subscribe(SubscribeRequest {
                after_sequence: 0,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        // Far more than the live channel holds, while the subscriber does not read.
        let n = (LIVE_BUFFER * 5) as u64;
        for i in 1..=n {
            log.publish(event("x", &format!("main@sha1:{i}")));
        }
        for want in 1..=n {
            match next(&mut s).await {
                Message::Event(e) => assert_eq!(e.sequence, want, "order"),
                Message::Gap(g) => panic!("unexpected gap at {want}: {g:?}"),
            }
        }
    }

    #[tokio::test]
    async fn evicted_history_reports_a_gap() {
        let log = ArtifactEventLog::new(2);
        let url = serve(log.clone()).await;
        for i in 0..5 {
            log.publish(event("x", &format!("main@sha1:{i}")));
        }
        let mut client = ArtifactEventsClient::connect(url).await.unwrap();
        let mut s = client
            .subscribe(SubscribeRequest {
                after_sequence: 1,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let Message::Gap(g) = next(&mut s).await else {
            panic!("expected gap")
        };
        assert_eq!((g.oldest_retained, g.newest), (4, 5));
        // The retained tail still follows.
        let Message::Event(e) = next(&mut s).await else {
            panic!("expected event")
        };
        assert_eq!(e.sequence, 4);
    }

    #[tokio::test]
    async fn restarted_server_reports_a_gap_and_filters_apply() {
        let log = ArtifactEventLog::new(10);
        let url = serve(log.clone()).await;
        log.publish(event("x", "r1"));
        let mut client = ArtifactEventsClient::connect(url).await.unwrap();
        // The subscriber saw sequence 40 from a previous server process.
        let mut s = client
            .subscribe(SubscribeRequest {
                after_sequence: 40,
                kinds: vec!["Bucket".into()],
                namespace: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        let Message::Gap(g) = next(&mut s).await else {
            panic!("expected gap")
        };
        assert_eq!(g.newest, 1);
        log.publish(event("git", "r2"));
        let mut bucket = event("bucket", "r3");
        bucket.kind = "Bucket".into();
        log.publish(bucket);
        let Message::Event(e) = next(&mut s).await else {
            panic!("expected event")
        };
        assert_eq!(e.name, "bucket", "the GitRepository event is filtered out");
    }
}
