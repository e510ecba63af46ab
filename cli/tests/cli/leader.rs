//! Leader election between controller processes: one leader at a time, hand-over on a clean
//! stop (the lease is released) and on a crash (the lease expires).

use std::net::SocketAddr;
use std::process::Stdio;

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};

use crate::{FERROFLUX, eventually, http_get, signal};

const LEASE: &str = "notification-controller-leader-election";

struct Candidate {
    child: tokio::process::Child,
    health: SocketAddr,
    metrics: SocketAddr,
}

fn port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn start(identity: &str, kubeconfig: &std::path::Path) -> Candidate {
    let (health, metrics) = (port(), port());
    let child = tokio::process::Command::new(FERROFLUX)
        .args([
            "controller",
            "notification-controller",
            "--enable-leader-election",
        ])
        .arg("--leader-election-lease-duration=4s")
        .arg("--leader-election-renew-deadline=3s")
        .arg(format!("--health-addr={health}"))
        .arg(format!("--metrics-addr={metrics}"))
        .arg(format!("--events-addr={}", port()))
        .arg(format!("--receiverAddr={}", port()))
        .env("KUBECONFIG", kubeconfig)
        .env("RUNTIME_NAMESPACE", "flux-system")
        .env("HOSTNAME", identity)
        .stdout(Stdio::null())
        .stderr(
            std::fs::File::create(kubeconfig.with_file_name(format!("{identity}.log"))).unwrap(),
        )
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    Candidate {
        child,
        health,
        metrics,
    }
}

async fn holder(leases: &Api<Lease>) -> Option<String> {
    leases
        .get_opt(LEASE)
        .await
        .ok()
        .flatten()?
        .spec?
        .holder_identity
        .filter(|h| !h.is_empty())
}

async fn is_ready(c: &Candidate) -> bool {
    matches!(
        http_get(&format!("http://{}/readyz", c.health)).await,
        Some((200, _))
    )
}

async fn master_status(c: &Candidate) -> Option<String> {
    let (_, text) = http_get(&format!("http://{}/metrics", c.metrics)).await?;
    text.lines()
        .find(|l| {
            l.starts_with(&format!(
                "leader_election_master_status{{name=\"{LEASE}\"}}"
            ))
        })
        .map(|l| l.rsplit(' ').next().unwrap_or_default().to_string())
}

#[tokio::test]
async fn leader_hand_over_between_processes() {
    let env = ferroflux_testenv::TestEnv::start(Default::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    env.write_kubeconfig(&kubeconfig).unwrap();
    let client = env.client().await.unwrap();
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "flux-system"}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let leases: Api<Lease> = Api::namespaced(client.clone(), "flux-system");

    let mut a = start("replica-a", &kubeconfig);
    let h = eventually("replica-a to lead", Duration::from_secs(30), || async {
        holder(&leases).await
    })
    .await;
    assert!(h.starts_with("replica-a_"), "{h}");
    eventually("replica-a ready", Duration::from_secs(10), || async {
        is_ready(&a).await.then_some(())
    })
    .await;
    assert_eq!(master_status(&a).await.as_deref(), Some("1"));

    // A second replica waits: not ready, not leader.
    let mut b = start("replica-b", &kubeconfig);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(holder(&leases).await.unwrap().starts_with("replica-a_"));
    assert!(
        !is_ready(&b).await,
        "a standby replica must not report ready"
    );

    // Clean stop: the leader releases the lease and the standby takes over quickly.
    signal(a.child.id().unwrap(), libc::SIGTERM);
    let status = tokio::time::timeout(Duration::from_secs(15), a.child.wait())
        .await
        .unwrap_or_else(|_| {
            let log = std::fs::read_to_string(dir.path().join("replica-a.log")).unwrap_or_default();
            panic!("leader did not stop within 15s of SIGTERM; its log:\n{log}")
        })
        .unwrap();
    assert!(
        status.success(),
        "leader exits cleanly on SIGTERM: {status}"
    );
    let h = eventually(
        "replica-b to take over",
        Duration::from_secs(15),
        || async {
            holder(&leases)
                .await
                .filter(|h| h.starts_with("replica-b_"))
        },
    )
    .await;
    assert!(h.starts_with("replica-b_"));
    eventually("replica-b ready", Duration::from_secs(10), || async {
        is_ready(&b).await.then_some(())
    })
    .await;
    assert_eq!(master_status(&b).await.as_deref(), Some("1"));

    // Crash: the lease is not released, a third replica takes over once it expires.
    let mut c = start("replica-c", &kubeconfig);
    tokio::time::sleep(Duration::from_secs(1)).await;
    signal(b.child.id().unwrap(), libc::SIGKILL);
    let _ = b.child.wait().await;
    let h = eventually(
        "replica-c to take over after expiry",
        Duration::from_secs(30),
        || async {
            holder(&leases)
                .await
                .filter(|h| h.starts_with("replica-c_"))
        },
    )
    .await;
    assert!(h.starts_with("replica-c_"));
    eventually("replica-c ready", Duration::from_secs(10), || async {
        is_ready(&c).await.then_some(())
    })
    .await;
    signal(c.child.id().unwrap(), libc::SIGTERM);
    let _ = tokio::time::timeout(Duration::from_secs(15), c.child.wait()).await;
}
