//! Waiting for objects to become ready (upstream `WaitForSetWithContext`, kstatus polling).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ferroflux_runtime::kstatus::{self, Computed};
use futures::StreamExt;
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::message;
use crate::manager::to_value;
use crate::{ObjMetadata, ResourceManager, SsaError};

/// A status reader plugged in before kstatus: `Some` decides, `None` falls back to kstatus
/// (kustomize-controller's CEL `healthCheckExprs` go here).
pub type CustomStatus = Arc<dyn Fn(&Value) -> Option<Computed> + Send + Sync>;

/// Options of a wait.
#[derive(Clone)]
pub struct WaitOptions {
    /// Poll interval.
    pub interval: Duration,
    /// Give up after this long.
    pub timeout: Duration,
    /// Stop as soon as one object is Failed.
    pub fail_fast: bool,
    pub custom_status: Option<CustomStatus>,
    /// Stops the wait with [`SsaError::Canceled`] (a new revision, shutdown).
    pub cancel: Option<CancellationToken>,
    /// Jobs with `spec.ttlSecondsAfterFinished` (see [`crate::jobs_with_ttl`]): gone counts
    /// as done.
    pub jobs_with_ttl: Vec<ObjMetadata>,
}

impl Default for WaitOptions {
    /// Upstream `DefaultWaitOptions`: every 5s, up to 60s.
    fn default() -> Self {
        WaitOptions {
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(60),
            fail_fast: false,
            custom_status: None,
            cancel: None,
            jobs_with_ttl: Vec::new(),
        }
    }
}

impl fmt::Debug for WaitOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitOptions")
            .field("interval", &self.interval)
            .field("timeout", &self.timeout)
            .field("fail_fast", &self.fail_fast)
            .field("custom_status", &self.custom_status.is_some())
            .field("cancel", &self.cancel)
            .field("jobs_with_ttl", &self.jobs_with_ttl)
            .finish()
    }
}

/// The polled status of one object (kstatus plus NotFound and Unknown, as the poller reports).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitStatus {
    InProgress,
    Failed,
    Current,
    Terminating,
    NotFound,
    Unknown,
}

impl WaitStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WaitStatus::InProgress => "InProgress",
            WaitStatus::Failed => "Failed",
            WaitStatus::Current => "Current",
            WaitStatus::Terminating => "Terminating",
            WaitStatus::NotFound => "NotFound",
            WaitStatus::Unknown => "Unknown",
        }
    }
}

impl fmt::Display for WaitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<kstatus::Status> for WaitStatus {
    fn from(s: kstatus::Status) -> Self {
        match s {
            kstatus::Status::InProgress => WaitStatus::InProgress,
            kstatus::Status::Failed => WaitStatus::Failed,
            kstatus::Status::Current => WaitStatus::Current,
            kstatus::Status::Terminating => WaitStatus::Terminating,
        }
    }
}

/// One poll result: status, the reader's message, and the error when reading failed.
#[derive(Clone, Debug)]
pub struct ObjectStatus {
    pub status: WaitStatus,
    pub message: String,
    pub error: Option<String>,
}

impl ResourceManager {
    /// Polls the objects every `interval` until all are Current. Returns early when one is
    /// Failed and `fail_fast` is set, or when only Failed and Current objects are left (they
    /// will not change); errors list the objects as `Kind/ns/name status: 'S'`.
    pub async fn wait_for_set(
        &self,
        objects: &[ObjMetadata],
        opts: &WaitOptions,
    ) -> Result<(), SsaError> {
        if objects.is_empty() {
            return Ok(());
        }
        let deadline = Instant::now() + opts.timeout;
        let is_ttl_job = |o: &ObjMetadata| opts.jobs_with_ttl.iter().any(|j| j.same_object(o));
        loop {
            // at most 16 reads in flight, in the order of `objects`
            // (collected first: a lazy map over borrowed items would make the future !Send)
            // (boxed as `dyn Future + Send`: otherwise rustc cannot prove the caller's future
            // Send for every lifetime of the borrowed items)
            let reads: Vec<
                std::pin::Pin<Box<dyn std::future::Future<Output = ObjectStatus> + Send + '_>>,
            > = objects
                .iter()
                .map(|o| {
                    Box::pin(self.poll_status(o, opts))
                        as std::pin::Pin<Box<dyn std::future::Future<Output = ObjectStatus> + Send>>
                })
                .collect();
            let statuses: Vec<ObjectStatus> =
                futures::stream::iter(reads).buffered(16).collect().await;
            let effective: Vec<WaitStatus> = objects
                .iter()
                .zip(&statuses)
                .map(|(o, s)| {
                    if s.status == WaitStatus::NotFound && is_ttl_job(o) {
                        WaitStatus::Current
                    } else {
                        s.status
                    }
                })
                .collect();
            if effective.iter().all(|s| *s == WaitStatus::Current) {
                return Ok(());
            }
            let failed = effective.contains(&WaitStatus::Failed);
            let terminal = effective
                .iter()
                .all(|s| matches!(s, WaitStatus::Current | WaitStatus::Failed));
            let timed_out = Instant::now() >= deadline;
            if (opts.fail_fast && failed) || terminal || timed_out {
                let items: Vec<String> = objects
                    .iter()
                    .zip(&statuses)
                    .zip(&effective)
                    .filter(|(_, e)| {
                        **e == WaitStatus::Failed || (timed_out && **e != WaitStatus::Current)
                    })
                    .map(|((o, s), _)| {
                        let mut line = format!("{} status: '{}'", o.subject(), s.status);
                        if let Some(err) = &s.error {
                            line.push_str(": ");
                            line.push_str(err);
                        }
                        line
                    })
                    .collect();
                return Err(if timed_out && !(opts.fail_fast && failed) && !terminal {
                    SsaError::Timeout(items)
                } else {
                    SsaError::FailedEarly(items)
                });
            }
            let nap = opts
                .interval
                .min(deadline.saturating_duration_since(Instant::now()));
            match &opts.cancel {
                Some(token) => tokio::select! {
                    _ = token.cancelled() => return Err(SsaError::Canceled),
                    _ = tokio::time::sleep(nap) => {}
                },
                None => tokio::time::sleep(nap).await,
            }
        }
    }

    /// Reads one object and computes its status.
    pub async fn poll_status(&self, obj: &ObjMetadata, opts: &WaitOptions) -> ObjectStatus {
        let unknown = |error: String| ObjectStatus {
            status: WaitStatus::Unknown,
            message: String::new(),
            error: Some(error),
        };
        let (api, _) = match self.api_for(obj).await {
            Ok(x) => x,
            Err(SsaError::NoMatch {
                kind, api_version, ..
            }) => {
                return unknown(format!(
                    "no matches for kind \"{kind}\" in version \"{api_version}\""
                ));
            }
            Err(e) => return unknown(e.to_string()),
        };
        match api.get_opt(&obj.name).await {
            Ok(None) => ObjectStatus {
                status: WaitStatus::NotFound,
                message: "Resource not found".into(),
                error: None,
            },
            Ok(Some(o)) => {
                let v = to_value(o);
                let c = opts
                    .custom_status
                    .as_ref()
                    .and_then(|f| f(&v))
                    .unwrap_or_else(|| kstatus::compute(&v));
                ObjectStatus {
                    status: c.status.into(),
                    message: c.message,
                    error: None,
                }
            }
            Err(e) => unknown(message(&e)),
        }
    }

    /// Waits until the objects are gone (upstream `WaitForTermination`).
    pub async fn wait_for_termination(
        &self,
        objects: &[ObjMetadata],
        opts: &WaitOptions,
    ) -> Result<(), SsaError> {
        let deadline = Instant::now() + opts.timeout;
        for obj in objects {
            loop {
                let (api, _) = match self.api_for(obj).await {
                    Ok(x) => x,
                    Err(SsaError::NoMatch { .. }) => break,
                    Err(e) => return Err(e),
                };
                match api.get_opt(&obj.name).await {
                    Ok(None) => break,
                    Ok(Some(_)) => {}
                    Err(e) => {
                        return Err(SsaError::TerminationTimeout {
                            subject: obj.subject(),
                            message: message(&e),
                        });
                    }
                }
                if Instant::now() >= deadline {
                    return Err(SsaError::TerminationTimeout {
                        subject: obj.subject(),
                        message: "context deadline exceeded".into(),
                    });
                }
                let nap = opts
                    .interval
                    .min(deadline.saturating_duration_since(Instant::now()));
                match &opts.cancel {
                    Some(token) => tokio::select! {
                        _ = token.cancelled() => return Err(SsaError::Canceled),
                        _ = tokio::time::sleep(nap) => {}
                    },
                    None => tokio::time::sleep(nap).await,
                }
            }
        }
        Ok(())
    }
}
