//! Commit statuses end to end: a local fake Git host serves a repository (Git smart HTTP,
//! proxied to the harness's Git server) and GitHub's commit status API; a GitRepository and a
//! Kustomization sync from that host, kustomize-controller sends its events to
//! notification-controller (upstream's HTTP event endpoint), and an Alert routes them to a
//! `github` Provider whose address is the repository URL. The host must receive the status
//! calls upstream makes: context `kustomization/<name>/<first segment of the Provider UID>`,
//! state `success` for the applied revision and `failure` for a revision that does not build,
//! each on the commit of that revision. A second Provider's endpoint refuses every delivery
//! quoting the Provider's token: the Alert gets NotificationDispatchFailed warnings with the
//! token masked, and the token is in no Event, no log line and not in the Alert. (Receivers end
//! to end, every type: `receivers.rs`.)

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use ferroflux_api::Provider;
use ferroflux_e2e::{Cluster, KUSTOMIZE, NOTIFICATION, free_port};
use k8s_openapi::api::core::v1::Event as CoreEvent;
use kube::ResourceExt;
use kube::api::Api;
use serde_json::{Value, json};

use crate::{CONVERGE, configmap, kustomization, namespace};

/// One call to the fake host's API.
#[derive(Clone, Debug)]
struct Call {
    method: String,
    path: String,
    authorization: String,
    body: Value,
}

/// The fake Git host: `/api/v3/*` answered and recorded as GitHub Enterprise would, everything
/// else (Git smart HTTP) proxied to `git`.
async fn fake_git_host(git: SocketAddr, calls: Arc<Mutex<Vec<Call>>>) -> SocketAddr {
    let http = reqwest::Client::new();
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let http = http.clone();
            let calls = calls.clone();
            async move {
                let path = uri
                    .path_and_query()
                    .map(|p| p.to_string())
                    .unwrap_or_default();
                if path.starts_with("/api/v3/") {
                    calls.lock().unwrap().push(Call {
                        method: method.to_string(),
                        path: path.clone(),
                        authorization: headers
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_string(),
                        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                    });
                    return if method == Method::GET {
                        (StatusCode::OK, "[]".to_string()).into_response()
                    } else {
                        (StatusCode::CREATED, "{}".to_string()).into_response()
                    };
                }
                let mut rb = http.request(method, format!("http://{git}{path}"));
                for name in ["content-type", "accept", "git-protocol", "content-encoding"] {
                    if let Some(v) = headers.get(name) {
                        rb = rb.header(name, v);
                    }
                }
                match rb.body(body).send().await {
                    Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
                    Ok(resp) => {
                        let status = resp.status();
                        let ct = resp.headers().get("content-type").cloned();
                        let bytes = resp.bytes().await.unwrap_or_default();
                        let mut r = (status, bytes).into_response();
                        if let Some(ct) = ct {
                            r.headers_mut().insert("content-type", ct);
                        }
                        r
                    }
                }
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Waits for the status POST on `sha`; fails with what the host saw and the logs.
async fn wait_status(
    cluster: &Cluster,
    calls: &Arc<Mutex<Vec<Call>>>,
    sha: &str,
) -> (Call, Vec<Call>) {
    let deadline = Instant::now() + CONVERGE;
    let path = format!("/api/v3/repos/org/app/statuses/{sha}");
    loop {
        let seen = calls.lock().unwrap().clone();
        if let Some(c) = seen.iter().find(|c| c.method == "POST" && c.path == path) {
            return (c.clone(), seen);
        }
        assert!(
            Instant::now() < deadline,
            "no commit status for {sha}; calls: {seen:#?}\n--- notification-controller:\n{}\n--- kustomize-controller:\n{}",
            cluster.log(NOTIFICATION),
            cluster.log(KUSTOMIZE)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kustomization_results_become_github_commit_statuses() {
    let events = free_port();
    let mut flags = BTreeMap::new();
    flags.insert(KUSTOMIZE, vec![format!("--events-addr=http://{events}/")]);
    let mut cluster = Cluster::start_with(flags).await.unwrap();
    cluster.notification_events = events;
    cluster.start_controller(NOTIFICATION).await.unwrap();
    cluster.apply(namespace("apps")).await.unwrap();

    let repo = cluster
        .repo(
            "org/app",
            &[("cm.yaml", &configmap("settings", &[("a", "1")]))],
        )
        .unwrap();
    let first = ferroflux_e2e::git(&repo.work, &["rev-parse", "HEAD"]).unwrap();
    let git: SocketAddr = repo
        .url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let host = fake_git_host(git, calls.clone()).await;
    let url = format!("http://{host}/org/app.git");

    cluster
        .apply(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "github-token", "namespace": "flux-system"},
            "stringData": {"token": "ghp_e2e"}}))
        .await
        .unwrap();
    cluster
        .apply(
            json!({"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Provider",
            "metadata": {"name": "github", "namespace": "flux-system"},
            "spec": {"type": "github", "address": url, "secretRef": {"name": "github-token"}}}),
        )
        .await
        .unwrap();
    cluster
        .apply(
            json!({"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Alert",
            "metadata": {"name": "statuses", "namespace": "flux-system"},
            "spec": {"providerRef": {"name": "github"},
                     "eventSources": [{"kind": "Kustomization", "name": "*"}]}}),
        )
        .await
        .unwrap();
    // A Provider whose endpoint refuses every delivery, quoting the Provider's token back.
    let rejecting = rejecting_endpoint().await;
    cluster
        .apply(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "rejecting-token", "namespace": "flux-system"},
            "stringData": {"address": format!("http://{rejecting}/hook"), "token": REJECTED_TOKEN}}))
        .await
        .unwrap();
    cluster
        .apply(
            json!({"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Provider",
            "metadata": {"name": "rejecting", "namespace": "flux-system"},
            "spec": {"type": "generic", "secretRef": {"name": "rejecting-token"}}}),
        )
        .await
        .unwrap();
    cluster
        .apply(
            json!({"apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Alert",
            "metadata": {"name": "rejected", "namespace": "flux-system"},
            "spec": {"providerRef": {"name": "rejecting"},
                     "eventSources": [{"kind": "Kustomization", "name": "*"}]}}),
        )
        .await
        .unwrap();
    cluster
        .apply(
            json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": "app", "namespace": "flux-system"},
            "spec": {"url": url, "interval": "1m", "ref": {"branch": "main"}}}),
        )
        .await
        .unwrap();
    cluster
        .apply(kustomization("app", "app", "./", json!({})))
        .await
        .unwrap();

    let providers: Api<Provider> = Api::namespaced(cluster.client.clone(), "flux-system");
    let uid = providers.get("github").await.unwrap().uid().unwrap();
    let context = format!("kustomization/app/{}", uid.split('-').next().unwrap());

    // The applied revision: success on its commit.
    let (ok, seen) = wait_status(&cluster, &calls, &first).await;
    assert_eq!(ok.body["state"], "success", "{seen:#?}");
    assert_eq!(ok.body["context"], context.as_str());
    assert_eq!(ok.authorization, "Bearer ghp_e2e");
    // Listed first (no identical status is posted twice).
    assert!(
        seen.iter().any(|c| c.method == "GET"
            && c.path == format!("/api/v3/repos/org/app/commits/{first}/statuses?per_page=50")),
        "{seen:#?}"
    );

    // A revision that does not build: failure on its commit.
    let second = repo
        .commit(
            &[("kustomization.yaml", Some("resources:\n- missing.yaml\n"))],
            "broken",
        )
        .unwrap();
    cluster.request_fetch("app").await.unwrap();
    let (failed, seen) = wait_status(&cluster, &calls, &second).await;
    assert_eq!(failed.body["state"], "failure", "{seen:#?}");
    assert_eq!(failed.body["context"], context.as_str());
    assert!(
        !failed.body["description"]
            .as_str()
            .unwrap_or_default()
            .is_empty(),
        "{failed:?}"
    );

    // The refused deliveries: a NotificationDispatchFailed warning on the Alert with the token
    // masked; the token in no Event, no log line of notification-controller (at debug level)
    // and not in the Alert.
    let events: Api<CoreEvent> = Api::namespaced(cluster.client.clone(), "flux-system");
    let deadline = Instant::now() + CONVERGE;
    let warnings = loop {
        let all = events.list(&Default::default()).await.unwrap().items;
        let w: Vec<CoreEvent> = all
            .iter()
            .filter(|e| {
                e.involved_object.name.as_deref() == Some("rejected")
                    && e.reason.as_deref() == Some("NotificationDispatchFailed")
            })
            .cloned()
            .collect();
        if !w.is_empty() {
            for e in &all {
                assert!(
                    !serde_json::to_string(e).unwrap().contains(REJECTED_TOKEN),
                    "token in an Event: {e:?}"
                );
            }
            break w;
        }
        assert!(
            Instant::now() < deadline,
            "no NotificationDispatchFailed on Alert rejected\n--- notification-controller:\n{}",
            cluster.log(NOTIFICATION)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let message = warnings[0].message.clone().unwrap_or_default();
    assert_eq!(warnings[0].type_.as_deref(), Some("Warning"));
    assert!(message.contains("invalid token *****"), "{message}");
    let log = cluster.log(NOTIFICATION);
    assert!(log.contains("failed to send notification"), "{log}");
    assert!(!log.contains(REJECTED_TOKEN), "token in the log:\n{log}");
    let alert: Value = serde_json::to_value(
        Api::<ferroflux_api::Alert>::namespaced(cluster.client.clone(), "flux-system")
            .get("rejected")
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(!alert.to_string().contains(REJECTED_TOKEN), "{alert}");
}

const REJECTED_TOKEN: &str = "tok-e2e-SECRET-42";

/// An endpoint that refuses every request with 401, quoting the token in its answer.
async fn rejecting_endpoint() -> SocketAddr {
    let app = axum::Router::new().fallback(|| async {
        (
            StatusCode::UNAUTHORIZED,
            format!("invalid token {REJECTED_TOKEN}"),
        )
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}
