//! Real peers: a Prometheus Alertmanager (Debian `prometheus-alertmanager`) receives and lists
//! the alert, a `nats-server` subscriber receives the event, and a subscription of the Google
//! Pub/Sub emulator (Google Cloud SDK) receives the published message.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ferroflux_api::provider::ProviderType;
use notification_controller::providers::{self, Settings};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::providers::error_event;
use crate::support::{free_port, wait_for};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn alertmanager_receives_and_lists_the_alert() {
    let bin = ferroflux_testsupport::tool(
        "prometheus-alertmanager",
        "apt-get install prometheus-alertmanager",
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &config,
        "route:\n  receiver: default\nreceivers:\n  - name: default\n",
    )
    .unwrap();
    let port = free_port();
    let _am = Killed(
        Command::new(bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("alertmanager starts"),
    );
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    wait_for("alertmanager ready", 30, || {
        let http = http.clone();
        let url = format!("{base}/-/ready");
        async move {
            match http.get(url).send().await {
                Ok(r) if r.status().is_success() => Some(()),
                _ => None,
            }
        }
    })
    .await;

    let mut event = error_event();
    event.timestamp = Some(jiff::Timestamp::now());
    let s = Settings {
        url: format!("{base}/api/v2/alerts"),
        ..Default::default()
    };
    let delivery = providers::build(ProviderType::Alertmanager, &s, &event).unwrap();
    providers::send(&delivery, &s, &http)
        .await
        .expect("Alertmanager accepts the alert");

    let alerts: serde_json::Value = wait_for("the alert listed", 20, || {
        let http = http.clone();
        let url = format!("{base}/api/v2/alerts");
        async move {
            let v: serde_json::Value = http.get(url).send().await.ok()?.json().await.ok()?;
            (v.as_array()?.len() == 1).then_some(v)
        }
    })
    .await;
    let alert = &alerts[0];
    assert_eq!(
        alert["labels"]["alertname"],
        "FluxKustomizationHealthcheckfailed"
    );
    assert_eq!(alert["labels"]["severity"], "error");
    assert_eq!(alert["labels"]["revision"], "main@sha1:abc");
    assert_eq!(
        alert["annotations"]["message"],
        "Health check failed <timeout> & more"
    );
    assert_eq!(alert["annotations"]["summary"], "prod cluster");
    assert_eq!(alert["status"]["state"], "active");
}

#[tokio::test]
async fn nats_subscriber_receives_the_event() {
    let bin = ferroflux_testsupport::tool("nats-server", "apt-get install nats-server");
    let port = free_port();
    let _nats = Killed(
        Command::new(bin)
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .args(["--user", "flux", "--pass", "n4ts-pass"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts"),
    );
    // A subscriber speaking the NATS protocol directly.
    let stream = wait_for("nats-server listening", 20, || async move {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()
    })
    .await;
    let (read, mut write) = stream.into_split();
    let mut sub = BufReader::new(read);
    let mut line = String::new();
    sub.read_line(&mut line).await.unwrap();
    assert!(line.starts_with("INFO "), "{line}");
    write
        .write_all(
            b"CONNECT {\"verbose\":false,\"user\":\"flux\",\"pass\":\"n4ts-pass\"}\r\nSUB flux.events 1\r\nPING\r\n",
        )
        .await
        .unwrap();
    line.clear();
    sub.read_line(&mut line).await.unwrap();
    assert_eq!(line.trim_end(), "PONG");

    let event = error_event();
    let mut s = Settings {
        url: format!("nats://127.0.0.1:{port}"),
        channel: "flux.events".into(),
        username: "flux".into(),
        password: "n4ts-pass".into(),
        ..Default::default()
    };
    let delivery = providers::build(ProviderType::Nats, &s, &event).unwrap();
    providers::send(&delivery, &s, &reqwest::Client::new())
        .await
        .expect("published");

    line.clear();
    tokio::time::timeout(Duration::from_secs(5), sub.read_line(&mut line))
        .await
        .expect("message within 5s")
        .unwrap();
    let parts: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(parts[0], "MSG", "{line}");
    assert_eq!(parts[1], "flux.events");
    let len: usize = parts.last().unwrap().parse().unwrap();
    let mut payload = vec![0u8; len + 2];
    sub.read_exact(&mut payload).await.unwrap();
    payload.truncate(len);
    assert_eq!(payload, event.to_go_json());

    // Wrong credentials are an error that says so.
    s.password = "wrong".into();
    let delivery = providers::build(ProviderType::Nats, &s, &event).unwrap();
    let err = providers::send(&delivery, &s, &reqwest::Client::new())
        .await
        .unwrap_err();
    assert!(err.contains("Authorization Violation"), "{err}");
}

/// Where Google's Cloud SDK package (`google-cloud-cli-pubsub-emulator`) puts the emulator.
const PUBSUB_EMULATOR: &str =
    "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator";

#[tokio::test]
async fn pubsub_emulator_subscriber_receives_the_event() {
    let bin = if std::path::Path::new(PUBSUB_EMULATOR).is_file() {
        PUBSUB_EMULATOR.into()
    } else {
        ferroflux_testsupport::tool(
            "cloud-pubsub-emulator",
            "apt-get install google-cloud-cli-pubsub-emulator (Java)",
        )
    };
    let port = free_port();
    let _emulator = Killed(
        Command::new(bin)
            .args(["--host=127.0.0.1", &format!("--port={port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the Pub/Sub emulator starts"),
    );
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}/v1/projects/my-proj");
    // The topic and a subscription, through the emulator's REST API (it starts in seconds).
    wait_for("the Pub/Sub emulator creates the topic", 60, || {
        let http = http.clone();
        let url = format!("{base}/topics/flux-events");
        async move {
            let r = http.put(url).send().await.ok()?;
            r.status().is_success().then_some(())
        }
    })
    .await;
    let sub = http
        .put(format!("{base}/subscriptions/flux-sub"))
        .json(&serde_json::json!({"topic": "projects/my-proj/topics/flux-events"}))
        .send()
        .await
        .unwrap();
    assert!(sub.status().is_success(), "{:?}", sub.text().await);

    let event = error_event();
    let mut s = Settings {
        url: "my-proj".into(),
        channel: "flux-events".into(),
        // As the controller reads PUBSUB_EMULATOR_HOST.
        pubsub_emulator_host: format!("127.0.0.1:{port}"),
        ..Default::default()
    };
    s.headers.insert("cluster".into(), "prod".into());
    let delivery = providers::build(ProviderType::GooglePubSub, &s, &event).unwrap();
    providers::send(&delivery, &s, &http)
        .await
        .expect("published");

    let pulled: serde_json::Value = http
        .post(format!("{base}/subscriptions/flux-sub:pull"))
        .json(&serde_json::json!({"maxMessages": 10}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let received = pulled["receivedMessages"].as_array().expect("a message");
    assert_eq!(received.len(), 1, "{pulled}");
    let message = &received[0]["message"];
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD
        .decode(message["data"].as_str().unwrap())
        .unwrap();
    assert_eq!(data, event.to_go_json());
    assert_eq!(
        message["attributes"],
        serde_json::json!({"cluster": "prod"})
    );

    // A topic that does not exist: the emulator's 404, worded as upstream words it.
    s.channel = "missing-topic".into();
    let delivery = providers::build(ProviderType::GooglePubSub, &s, &event).unwrap();
    let err = providers::send(&delivery, &s, &http).await.unwrap_err();
    assert!(
        err.starts_with(
            "error publishing to GCP Pub/Sub topic projects/my-proj/topics/missing-topic: "
        ),
        "{err}"
    );
    assert!(err.contains("404"), "{err}");
}
