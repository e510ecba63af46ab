//! Pull/merge request comments against a local HTTP server acting as GitHub (Enterprise),
//! GitLab and Gitea: who am I, the request's comments listed, then ours (same author, same key
//! marker) edited or a new one created, with upstream's marker and Markdown body and each
//! client library's JSON encoding.

use std::time::Duration;

use ferroflux_api::provider::ProviderType;
use notification_controller::event::Event;
use notification_controller::providers::{self, Settings};

use crate::providers::info_event;
use crate::support::{Capture, Captured};

const UID: &str = "0c9c2e41-d2f9-4f9b-9c41-bebc1984d67a";
const MARKER: &str = "<!-- flux-pr-comment-key:0c9c2e41-d2f9-4f9b-9c41-bebc1984d67a/Kustomization/flux-system/podinfo -->";
const MR_MARKER: &str = "<!-- flux-mr-comment-key:0c9c2e41-d2f9-4f9b-9c41-bebc1984d67a/Kustomization/flux-system/podinfo -->";
/// upstream's formatMarkdownPost of the info event (metadata sorted, change_request left out).
const POST: &str = "## Flux Status\n\nℹ️ Kustomization/flux-system/podinfo\n\nApplied revision: main@sha1:abc\n\nMetadata:\n* `revision`: main@sha1:abc\n* `summary`: prod cluster\n";

fn pr_event() -> Event {
    let mut e = info_event();
    e.metadata.insert("change_request".into(), "42".into());
    e
}

fn settings(url: String) -> Settings {
    Settings {
        url,
        token: "t0ken".into(),
        provider_uid: UID.into(),
        ..Default::default()
    }
}

async fn deliver(kind: ProviderType, s: &Settings, cap: &Capture, n: usize) -> Vec<Captured> {
    let delivery = providers::build(kind, s, &pr_event()).expect("notifier builds");
    providers::send(&delivery, s, &reqwest::Client::new())
        .await
        .expect("delivery succeeds");
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(cap.next(Duration::from_secs(5)).await);
    }
    assert!(cap.try_next(Duration::from_millis(200)).await.is_none());
    out
}

fn calls(got: &[Captured]) -> Vec<(String, String)> {
    got.iter()
        .map(|c| (c.method.clone(), c.path.clone()))
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// JSON of `{"body": text}` as Go's json.Marshal writes it (HTML characters escaped).
fn go_body(text: &str) -> String {
    serde_json::to_string(&serde_json::json!({"body": text}))
        .unwrap()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

#[tokio::test]
async fn github_pull_request_comment_created_then_edited() {
    let cap = Capture::start().await;
    cap.answer(
        "/api/v3/user",
        200,
        Duration::ZERO,
        r#"{"login":"flux-bot"}"#,
    );
    // First: only someone else's comment carries our marker.
    cap.answer(
        "/api/v3/repos/org/app/issues/42/comments?",
        200,
        Duration::ZERO,
        &serde_json::json!([{"id": 7, "body": format!("{MARKER}\n\nold"), "user": {"login": "mallory"}}])
            .to_string(),
    );
    let s = settings(cap.url("/org/app"));
    let got = deliver(ProviderType::GitHubPullRequestComment, &s, &cap, 3).await;
    assert_eq!(
        calls(&got),
        pairs(&[
            ("GET", "/api/v3/user"),
            (
                "GET",
                "/api/v3/repos/org/app/issues/42/comments?direction=asc&per_page=100&sort=created"
            ),
            ("POST", "/api/v3/repos/org/app/issues/42/comments"),
        ])
    );
    // go-github: no HTML escaping, trailing newline.
    let text = format!("{MARKER}\n\n{POST}");
    assert_eq!(
        got[2].body_str(),
        format!("{}\n", serde_json::json!({"body": text}))
    );
    assert!(got[2].body_str().contains("<!-- flux-pr-comment-key:"));
    for c in &got {
        assert_eq!(c.header("authorization"), Some("Bearer t0ken"));
        assert_eq!(c.header("accept"), Some("application/vnd.github.v3+json"));
    }

    // Then our own comment is there: it is edited, nothing created.
    let cap = Capture::start().await;
    cap.answer(
        "/api/v3/user",
        200,
        Duration::ZERO,
        r#"{"login":"flux-bot"}"#,
    );
    cap.answer(
        "/api/v3/repos/org/app/issues/42/comments?",
        200,
        Duration::ZERO,
        &serde_json::json!([
            {"id": 5, "body": "unrelated", "user": {"login": "flux-bot"}},
            {"id": 9, "body": format!("{MARKER}\n\nold"), "user": {"login": "flux-bot"}}])
        .to_string(),
    );
    let s = settings(cap.url("/org/app"));
    let got = deliver(ProviderType::GitHubPullRequestComment, &s, &cap, 3).await;
    assert_eq!(
        (got[2].method.as_str(), got[2].path.as_str()),
        ("PATCH", "/api/v3/repos/org/app/issues/comments/9")
    );
    assert_eq!(
        got[2].body_str(),
        format!("{}\n", serde_json::json!({"body": text}))
    );
}

#[tokio::test]
async fn gitlab_merge_request_note_and_gitea_pull_request_comment() {
    let cap = Capture::start().await;
    cap.answer(
        "/api/v4/user",
        200,
        Duration::ZERO,
        r#"{"username":"flux"}"#,
    );
    cap.answer(
        "/api/v4/projects/group%2Fsub%2Fapp/merge_requests/42/notes?",
        200,
        Duration::ZERO,
        &serde_json::json!([{"id": 3, "body": format!("{MR_MARKER}\n\nold"), "author": {"username": "flux"}}])
            .to_string(),
    );
    let mut s = settings(cap.url("/group/sub/app.git"));
    s.token.clear();
    s.password = "glpat".into();
    let got = deliver(ProviderType::GitLabMergeRequestComment, &s, &cap, 3).await;
    assert_eq!(
        calls(&got),
        pairs(&[
            ("GET", "/api/v4/user"),
            (
                "GET",
                "/api/v4/projects/group%2Fsub%2Fapp/merge_requests/42/notes?order_by=created_at&per_page=100&sort=asc"
            ),
            (
                "PUT",
                "/api/v4/projects/group%2Fsub%2Fapp/merge_requests/42/notes/3"
            ),
        ])
    );
    assert_eq!(
        got[2].body_str(),
        go_body(&format!("{MR_MARKER}\n\n{POST}"))
    );
    for c in &got {
        assert_eq!(c.header("private-token"), Some("glpat"));
    }

    let cap = Capture::start().await;
    cap.answer(
        "/api/v1/user",
        200,
        Duration::ZERO,
        r#"{"id":1,"login":"flux"}"#,
    );
    cap.answer(
        "/api/v1/repos/org/app/issues/42/comments?",
        200,
        Duration::ZERO,
        "[]",
    );
    let s = settings(cap.url("/org/app"));
    let got = deliver(ProviderType::GiteaPullRequestComment, &s, &cap, 3).await;
    assert_eq!(
        calls(&got),
        pairs(&[
            ("GET", "/api/v1/user"),
            (
                "GET",
                "/api/v1/repos/org/app/issues/42/comments?limit=100&page=1"
            ),
            ("POST", "/api/v1/repos/org/app/issues/42/comments"),
        ])
    );
    assert_eq!(got[2].body_str(), go_body(&format!("{MARKER}\n\n{POST}")));
    for c in &got {
        assert_eq!(c.header("authorization"), Some("token t0ken"));
    }

    // Upstream's refusals.
    let refused = |kind, f: fn(&mut Settings), e: &Event| {
        let mut bad = settings("https://git.example.com/org/app".into());
        f(&mut bad);
        providers::build(kind, &bad, e).unwrap_err()
    };
    let e = pr_event();
    assert_eq!(
        refused(
            ProviderType::GitHubPullRequestComment,
            |s| s.provider_uid.clear(),
            &e
        ),
        "provider UID cannot be empty"
    );
    assert_eq!(
        refused(
            ProviderType::GitLabMergeRequestComment,
            |s| s.token.clear(),
            &e
        ),
        "gitlab token cannot be empty"
    );
    assert_eq!(
        refused(
            ProviderType::GiteaPullRequestComment,
            |s| s.url = "https://git.example.com/org/app/x".into(),
            &e
        ),
        "invalid repository id \"org/app/x\""
    );
    let mut bad = pr_event();
    bad.metadata.insert("change_request".into(), "x".into());
    assert_eq!(
        refused(ProviderType::GitHubPullRequestComment, |_| {}, &bad),
        "invalid \"change_request\" metadata value \"x\": strconv.Atoi: parsing \"x\": invalid syntax"
    );
}
