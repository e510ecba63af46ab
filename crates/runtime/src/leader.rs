//! Leader election on a coordination.k8s.io Lease, named like upstream:
//! `<controller>-leader-election`, plus `-<first 8 hex of sha256(selector)>` when the controller
//! is sharded with `--watch-label-selector`, in RUNTIME_NAMESPACE.

use std::time::Duration;

use kube::Client;
use kube_lease_manager::{LeaseCreateMode, LeaseManagerBuilder};
use sha2::Digest as _;
use tokio::sync::watch;

/// The Lease name for a controller and its shard selector.
pub fn lease_name(controller: &str, label_selector: &str) -> String {
    if label_selector.is_empty() {
        format!("{controller}-leader-election")
    } else {
        let h = hex::encode(sha2::Sha256::digest(label_selector.as_bytes()));
        format!("{controller}-leader-election-{}", &h[..8])
    }
}

/// A unique identity for this process: `<hostname>_<random>` as client-go builds it.
pub fn identity() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "localhost".into());
    let r: u64 = rand::random();
    format!("{host}_{r:016x}")
}

/// Settings of leader election.
#[derive(Clone, Debug)]
pub struct LeaderConfig {
    pub lease_name: String,
    pub namespace: String,
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
}

/// A held (or awaited) leadership; dropping it releases the lease.
pub struct Leadership {
    rx: watch::Receiver<bool>,
    task: tokio::task::JoinHandle<
        Result<kube_lease_manager::LeaseManager, kube_lease_manager::LeaseManagerError>,
    >,
}

impl Leadership {
    /// Starts competing for the lease and waits until this process holds it.
    pub async fn acquire(client: Client, cfg: &LeaderConfig) -> Result<Self, String> {
        let duration = cfg.lease_duration.as_secs().max(2);
        // Renew before (lease_duration - renew_deadline) is left, at least one second.
        let grace = cfg
            .lease_duration
            .saturating_sub(cfg.renew_deadline)
            .as_secs()
            .clamp(1, duration - 1);
        let manager = LeaseManagerBuilder::new(client, &cfg.lease_name)
            .with_namespace(&cfg.namespace)
            .with_identity(&cfg.identity)
            .with_duration(duration)
            .with_grace(grace)
            .with_create_mode(LeaseCreateMode::AutoCreate)
            .with_field_manager(cfg.lease_name.clone())
            .build()
            .await
            .map_err(|e| format!("leader election: {e}"))?;
        let (mut rx, task) = manager.watch().await;
        while !*rx.borrow_and_update() {
            if rx.changed().await.is_err() {
                return Err("leader election: lease manager stopped".into());
            }
        }
        Ok(Self { rx, task })
    }

    /// Resolves when leadership is lost.
    pub async fn lost(&mut self) {
        loop {
            if self.rx.changed().await.is_err() || !*self.rx.borrow_and_update() {
                return;
            }
        }
    }

    /// Releases the lease (when `--leader-election-release-on-cancel`) and waits for it.
    pub async fn release(self) {
        drop(self.rx);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_names_like_upstream() {
        assert_eq!(
            lease_name("source-controller", ""),
            "source-controller-leader-election"
        );
        let sharded = lease_name("source-controller", "sharding.fluxcd.io/key=shard1");
        assert!(sharded.starts_with("source-controller-leader-election-"));
        assert_eq!(
            sharded.len(),
            "source-controller-leader-election-".len() + 8
        );
    }
}
