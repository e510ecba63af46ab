//! Client-side rate limiting of Kubernetes API requests, as client-go's token bucket does with
//! `--kube-api-qps` and `--kube-api-burst` (kube-rs has none built in).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// A token bucket: `burst` tokens, refilled at `qps` per second.
#[derive(Debug)]
pub struct TokenBucket {
    qps: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    pub fn new(qps: f32, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            qps: f64::from(qps).max(0.001),
            burst,
            tokens: burst,
            last: Instant::now(),
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.qps).min(self.burst);
        self.last = now;
    }

    /// Takes a token now, or says how long to wait for the next one.
    pub fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.qps))
        }
    }
}

/// A tower layer that holds each request until the bucket has a token.
#[derive(Clone, Copy, Debug)]
pub struct RateLimitLayer {
    qps: f32,
    burst: u32,
}

impl RateLimitLayer {
    pub fn new(qps: f32, burst: u32) -> Self {
        Self { qps, burst }
    }
}

impl<S> tower::Layer<S> for RateLimitLayer {
    type Service = RateLimited<S>;
    fn layer(&self, inner: S) -> RateLimited<S> {
        RateLimited {
            inner,
            bucket: TokenBucket::new(self.qps, self.burst),
            sleep: None,
            ready: false,
        }
    }
}

/// The rate-limited service (kube's client buffers it, so it needs no Clone).
pub struct RateLimited<S> {
    inner: S,
    bucket: TokenBucket,
    sleep: Option<Pin<Box<Sleep>>>,
    /// A token was taken for the next call.
    ready: bool,
}

impl<S, R> tower::Service<R> for RateLimited<S>
where
    S: tower::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        while !self.ready {
            if let Some(sleep) = self.sleep.as_mut() {
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.sleep = None;
            }
            match self.bucket.try_take(Instant::now()) {
                Ok(()) => self.ready = true,
                Err(wait) => self.sleep = Some(Box::pin(tokio::time::sleep(wait))),
            }
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        self.ready = false;
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{Service, ServiceExt};

    #[test]
    fn bucket_allows_burst_then_paces() {
        let start = Instant::now();
        let mut b = TokenBucket::new(10.0, 3);
        for _ in 0..3 {
            assert!(b.try_take(start).is_ok());
        }
        let wait = b.try_take(start).unwrap_err();
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-6, "{wait:?}");
        assert!(b.try_take(start + Duration::from_millis(100)).is_ok());
        // Idle time refills up to the burst, not beyond.
        let later = start + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(b.try_take(later).is_ok());
        }
        assert!(b.try_take(later).is_err());
    }

    #[tokio::test]
    async fn service_waits_for_tokens() {
        let inner = tower::service_fn(|x: u32| async move { Ok::<_, std::convert::Infallible>(x) });
        let mut svc = tower::Layer::layer(&RateLimitLayer::new(5.0, 2), inner);
        let start = Instant::now();
        for i in 0..6u32 {
            let out = svc.ready().await.unwrap().call(i).await.unwrap();
            assert_eq!(out, i);
        }
        // 2 immediately, then 4 more at 5/s.
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(790) && elapsed < Duration::from_secs(2),
            "{elapsed:?}"
        );
    }
}
