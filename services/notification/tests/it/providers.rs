//! Every provider type delivers to a local HTTP server; method, path, headers and the exact
//! body are compared with what upstream's notifier of that type sends for the same event (the
//! expected payloads are written from reading upstream's internal/notifier code and tests).

use std::time::Duration;

use ferroflux_api::provider::ProviderType;
use notification_controller::event::Event;
use notification_controller::providers::{self, Delivery, Settings};

use crate::support::{Capture, Captured};

pub const BODY_INFO: &str = r#"{"involvedObject":{"kind":"Kustomization","namespace":"flux-system","name":"podinfo","uid":"u-1","apiVersion":"kustomize.toolkit.fluxcd.io/v1"},"severity":"info","timestamp":"2026-01-01T00:00:00Z","message":"Applied revision: main@sha1:abc","reason":"ReconciliationSucceeded","metadata":{"revision":"main@sha1:abc","summary":"prod cluster"},"reportingController":"kustomize-controller"}"#;

/// An info event as a provider receives it (metadata already merged).
pub fn info_event() -> Event {
    serde_json::from_str(BODY_INFO).unwrap()
}

/// An error event whose message needs Go's HTML-safe escapes.
pub fn error_event() -> Event {
    let mut e = info_event();
    e.severity = "error".into();
    e.reason = "HealthCheckFailed".into();
    e.message = "Health check failed <timeout> & more".into();
    e
}

fn settings(url: String) -> Settings {
    Settings {
        url,
        ..Default::default()
    }
}

async fn deliver(kind: ProviderType, s: &Settings, e: &Event, capture: &Capture) -> Vec<Captured> {
    let delivery = providers::build(kind, s, e).expect("notifier builds");
    let n = match &delivery {
        Delivery::Http(r) => r.len(),
        _ => 0,
    };
    let client = reqwest::Client::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        providers::send(&delivery, s, &client),
    )
    .await
    .expect("delivery within 10s")
    .expect("delivery succeeds");
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(capture.next(Duration::from_secs(5)).await);
    }
    out
}

fn assert_request(c: &Captured, method: &str, path: &str, body: &str) {
    assert_eq!(c.method, method);
    assert_eq!(c.path, path);
    assert_eq!(c.header("content-type"), Some("application/json"));
    assert_eq!(c.body_str(), body, "body of {method} {path}");
}

#[tokio::test]
async fn generic_and_generic_hmac() {
    let cap = Capture::start().await;
    let mut s = settings(cap.url("/hook?x=1"));
    s.headers.insert("X-Custom".into(), "yes".into());
    let got = deliver(ProviderType::Generic, &s, &info_event(), &cap).await;
    assert_request(&got[0], "POST", "/hook?x=1", BODY_INFO);
    assert_eq!(
        got[0].header("gotk-component"),
        Some("kustomize-controller")
    );
    assert_eq!(got[0].header("x-custom"), Some("yes"));
    assert_eq!(got[0].header("x-signature"), None);

    s.token = "s3cr3t".into();
    let got = deliver(ProviderType::GenericHmac, &s, &info_event(), &cap).await;
    assert_request(&got[0], "POST", "/hook?x=1", BODY_INFO);
    // HMAC-SHA256 of the body keyed with the token, computed independently (Python's hmac).
    assert_eq!(
        got[0].header("x-signature"),
        Some("sha256=24fd82fdbb3acb6c0f8700f7739da3eb7cb3739693758fdf37295b972d674c48")
    );
    s.token.clear();
    assert_eq!(
        providers::build(ProviderType::GenericHmac, &s, &info_event()).unwrap_err(),
        "HMAC key is empty"
    );
}

#[tokio::test]
async fn slack_discord_rocket() {
    let cap = Capture::start().await;
    let fields = r#""fields":[{"title":"revision","value":"main@sha1:abc","short":false},{"title":"summary","value":"prod cluster","short":false}]"#;
    let mut s = settings(cap.url("/services/T/B/X"));
    s.channel = "#flux".into();
    s.token = "xoxb-1".into();
    let got = deliver(ProviderType::Slack, &s, &info_event(), &cap).await;
    assert_request(
        &got[0],
        "POST",
        "/services/T/B/X",
        &format!(
            r##"{{"channel":"#flux","username":"kustomize-controller","icon_url":"","icon_emoji":"","attachments":[{{"fallback":"kustomization/podinfo.flux-system: Applied revision: main@sha1:abc","color":"good","author_name":"kustomization/podinfo.flux-system","text":"Applied revision: main@sha1:abc","mrkdwn_in":["text"],{fields}}}]}}"##
        ),
    );
    assert_eq!(got[0].header("authorization"), Some("Bearer xoxb-1"));

    let mut s = settings(cap.url("/api/webhooks/1/abc"));
    s.username = "flux-bot".into();
    let got = deliver(ProviderType::Discord, &s, &error_event(), &cap).await;
    assert_request(
        &got[0],
        "POST",
        "/api/webhooks/1/abc/slack",
        &format!(
            r#"{{"channel":"","username":"flux-bot","icon_url":"","icon_emoji":"","attachments":[{{"fallback":"","color":"danger","author_name":"kustomization/podinfo.flux-system","text":"Health check failed \u003ctimeout\u003e \u0026 more","mrkdwn_in":["text"],{fields}}}]}}"#
        ),
    );

    let mut s = settings(cap.url("/hooks/rocket"));
    s.channel = "general".into();
    let got = deliver(ProviderType::Rocket, &s, &info_event(), &cap).await;
    assert_request(
        &got[0],
        "POST",
        "/hooks/rocket",
        &format!(
            r##"{{"channel":"general","username":"","icon_url":"","icon_emoji":"","attachments":[{{"fallback":"","color":"#0076D7","author_name":"kustomization/podinfo.flux-system","text":"Applied revision: main@sha1:abc","mrkdwn_in":["text"],{fields}}}]}}"##
        ),
    );
}

#[tokio::test]
async fn msteams_workflows_and_legacy_connector_through_a_proxy() {
    let cap = Capture::start().await;
    let s = settings(cap.url("/workflows/1"));
    let got = deliver(ProviderType::MsTeams, &s, &error_event(), &cap).await;
    assert_request(
        &got[0],
        "POST",
        "/workflows/1",
        r#"{"type":"message","attachments":[{"contentType":"application/vnd.microsoft.card.adaptive","content":{"$schema":"http://adaptivecards.io/schemas/adaptive-card.json","type":"AdaptiveCard","version":"1.4","body":[{"type":"Container","items":[{"type":"TextBlock","text":"kustomization/podinfo.flux-system","size":"large","weight":"bolder","wrap":true},{"type":"TextBlock","text":"Health check failed \u003ctimeout\u003e \u0026 more","color":"attention","wrap":true},{"type":"FactSet","facts":[{"title":"summary","value":"prod cluster"},{"title":"revision","value":"main@sha1:abc"}]}]}],"msteams":{"width":"Full"}}}]}"#,
    );

    // An Office 365 connector address selects the MessageCard; the capture server acts as the
    // HTTP proxy (the name does not resolve here, so only the proxy can have answered).
    let mut s = settings("http://org.webhook.office.com/webhookb2/x".into());
    s.proxy = cap.url("");
    let got = deliver(ProviderType::MsTeams, &s, &info_event(), &cap).await;
    assert_request(
        &got[0],
        "POST",
        "/webhookb2/x",
        r#"{"@type":"MessageCard","@context":"http://schema.org/extensions","themeColor":"0076D7","summary":"kustomization/podinfo.flux-system","sections":[{"activityTitle":"Applied revision: main@sha1:abc","activitySubtitle":"kustomization/podinfo.flux-system","facts":[{"name":"revision","value":"main@sha1:abc"},{"name":"summary","value":"prod cluster"}]}]}"#,
    );
    assert_eq!(got[0].header("host"), Some("org.webhook.office.com"));
}

#[tokio::test]
async fn googlechat_webex_lark() {
    let cap = Capture::start().await;
    let got = deliver(
        ProviderType::GoogleChat,
        &settings(cap.url("/v1/spaces/X/messages?key=k")),
        &error_event(),
        &cap,
    )
    .await;
    assert_request(
        &got[0],
        "POST",
        "/v1/spaces/X/messages?key=k",
        r##"{"cards":[{"header":{"title":"kustomization/podinfo.flux-system","subtitle":"kustomize-controller","imageUrl":null,"imageStyle":null},"sections":[{"header":"","widgets":[{"textParagraph":{"text":"\u003cfont color=\"#ff0000\"\u003eHealth check failed \u003ctimeout\u003e \u0026 more\u003c/font\u003e"},"keyValue":null}]},{"header":"","widgets":[{"textParagraph":null,"keyValue":{"topLabel":"revision","content":"main@sha1:abc","contentMultiline":false,"bottomLabel":null,"icon":null}},{"textParagraph":null,"keyValue":{"topLabel":"summary","content":"prod cluster","contentMultiline":false,"bottomLabel":null,"icon":null}}]}]}]}"##,
    );

    let mut s = settings(cap.url("/v1/messages"));
    s.channel = "room-1".into();
    s.token = "wt".into();
    let got = deliver(ProviderType::Webex, &s, &info_event(), &cap).await;
    assert_request(
        &got[0],
        "POST",
        "/v1/messages",
        r#"{"roomId":"room-1","markdown":"✅ **kustomization/podinfo.flux-system**\nApplied revision: main@sha1:abc\n\u003e**revision**: main@sha1:abc\n\u003e**summary**: prod cluster\n"}"#,
    );
    assert_eq!(got[0].header("authorization"), Some("Bearer wt"));

    let got = deliver(
        ProviderType::Lark,
        &settings(cap.url("/open-apis/bot/v2/hook/x")),
        &error_event(),
        &cap,
    )
    .await;
    assert_request(
        &got[0],
        "POST",
        "/open-apis/bot/v2/hook/x",
        r#"{"msg_type":"interactive","card":{"config":{"wide_screen_mode":true},"header":{"title":{"tag":"plain_text","content":"🚨 kustomization/podinfo.flux-system"},"template":"red"},"elements":[{"tag":"div","text":{"tag":"lark_md","content":"**Health check failed \u003ctimeout\u003e \u0026 more**\n\nrevision: main@sha1:abc\nsummary: prod cluster\n"}}]}}"#,
    );
}

#[tokio::test]
async fn telegram_and_matrix() {
    let cap = Capture::start().await;
    // The address is not what telegram reads (upstream ignores it).
    let mut s = settings("http://127.0.0.1:9/unused".into());
    s.telegram_api_base = cap.url("");
    s.channel = "-100123:42".into();
    s.token = "123:ABC".into();
    let got = deliver(ProviderType::Telegram, &s, &info_event(), &cap).await;
    assert_request(
        &got[0],
        "POST",
        "/bot123:ABC/sendMessage",
        r#"{"chat_id":"-100123","message_thread_id":"42","text":"*💫 kustomization/podinfo/flux\\-system*\nApplied revision: main@sha1:abc\n\\- *revision*: main@sha1:abc\n\\- *summary*: prod cluster\n","parse_mode":"MarkdownV2"}"#,
    );
    s.token.clear();
    assert_eq!(
        providers::build(ProviderType::Telegram, &s, &info_event()).unwrap_err(),
        "empty Telegram token"
    );

    let mut s = settings(cap.url(""));
    s.channel = "!room:example.org".into();
    s.token = "syt_x".into();
    let got = deliver(ProviderType::Matrix, &s, &info_event(), &cap).await;
    // The transaction id is the SHA-1 of the event JSON (computed independently).
    assert_request(
        &got[0],
        "PUT",
        "/_matrix/client/r0/rooms/!room:example.org/send/m.room.message/f2d0f9588bb8915de4631801c925b0f2ce46c545",
        r#"{"body":"💫 kustomization/podinfo.flux-system\nApplied revision: main@sha1:abc\n- revision: main@sha1:abc\n- summary: prod cluster\n","msgtype":"m.text"}"#,
    );
    assert_eq!(got[0].header("authorization"), Some("Bearer syt_x"));
}

#[tokio::test]
async fn alertmanager_grafana_opsgenie_datadog() {
    let cap = Capture::start().await;
    let mut s = settings(cap.url("/api/v2/alerts"));
    s.username = "am".into();
    s.password = "pw".into();
    let got = deliver(ProviderType::Alertmanager, &s, &error_event(), &cap).await;
    assert_request(
        &got[0],
        "POST",
        "/api/v2/alerts",
        r#"[{"status":"firing","labels":{"alertname":"FluxKustomizationHealthcheckfailed","kind":"Kustomization","name":"podinfo","namespace":"flux-system","reason":"HealthCheckFailed","reportingcontroller":"kustomize-controller","revision":"main@sha1:abc","severity":"error"},"annotations":{"message":"Health check failed \u003ctimeout\u003e \u0026 more","summary":"prod cluster"},"startsAt":"2026-01-01T00:00:00Z","endsAt":"0001-01-01T00:00:00Z"}]"#,
    );
    assert_eq!(got[0].header("authorization"), Some("Basic YW06cHc="));

    let mut s = settings(cap.url("/api/annotations"));
    s.username = "admin".into();
    s.password = "pw".into();
    let got = deliver(ProviderType::Grafana, &s, &info_event(), &cap).await;
    assert_request(
        &got[0],
        "POST",
        "/api/annotations",
        r#"{"when":1767225600,"text":"kustomization/podinfo.flux-system","tags":["flux","kustomize-controller","revision: main@sha1|abc","summary: prod cluster","kind: Kustomization","name: podinfo","namespace: flux-system"]}"#,
    );
    assert_eq!(got[0].header("authorization"), Some("Basic YWRtaW46cHc="));

    let mut s = settings(cap.url("/v2/alerts"));
    s.token = "og-key".into();
    s.provider_uid = "p-uid".into();
    let got = deliver(ProviderType::Opsgenie, &s, &info_event(), &cap).await;
    // The alias is the SHA-256 of "<provider uid>/<kind>/<namespace>/<name>/<reason>".
    assert_request(
        &got[0],
        "POST",
        "/v2/alerts",
        r#"{"message":"Kustomization/podinfo","alias":"d32ab551ddcbf6690f2ce978ecdbb47510acbebfcb38d8667b911912a7256301","description":"Applied revision: main@sha1:abc","details":{"revision":"main@sha1:abc","severity":"info","summary":"prod cluster"}}"#,
    );
    assert_eq!(got[0].header("authorization"), Some("GenieKey og-key"));

    let mut s = settings(cap.url("/ignored/path"));
    s.token = "dd-key".into();
    let got = deliver(ProviderType::Datadog, &s, &info_event(), &cap).await;
    assert_request(
        &got[0],
        "POST",
        "/api/v1/events",
        r#"{"alert_type":"info","date_happened":1767225600,"source_type_name":"fluxcd","tags":["flux_reporting_controller:kustomize-controller","flux_reason:reconciliationsucceeded","kube_kind:kustomization","kube_name:podinfo","kube_namespace:flux-system","revision:main@sha1:abc","summary:prod cluster"],"text":"Applied revision: main@sha1:abc","title":"Events from the Kustomization podinfo/flux-system"}"#,
    );
    assert_eq!(got[0].header("dd-api-key"), Some("dd-key"));
}

#[tokio::test]
async fn pagerduty_events_and_change_events() {
    let cap = Capture::start().await;
    let mut s = settings(cap.url("/v2/enqueue"));
    s.channel = "rk".into();
    let got = deliver(ProviderType::PagerDuty, &s, &info_event(), &cap).await;
    assert_eq!(got.len(), 2);
    assert_request(
        &got[0],
        "POST",
        "/v2/enqueue",
        r#"{"routing_key":"rk","event_action":"resolve","dedup_key":"u-1"}"#,
    );
    assert_request(
        &got[1],
        "POST",
        "/v2/change/enqueue",
        r#"{"routing_key":"rk","payload":{"source":"Flux kustomize-controller","summary":"reconciliation succeeded: kustomization/podinfo","timestamp":"2026-01-01T00:00:00Z","custom_details":{"message":"Applied revision: main@sha1:abc","metadata":{"revision":"main@sha1:abc","summary":"prod cluster"}}},"links":null}"#,
    );
    let got = deliver(ProviderType::PagerDuty, &s, &error_event(), &cap).await;
    assert_eq!(got.len(), 1);
    assert_request(
        &got[0],
        "POST",
        "/v2/enqueue",
        r#"{"routing_key":"rk","event_action":"trigger","dedup_key":"u-1","payload":{"summary":"health check failed: kustomization/podinfo","source":"Flux kustomize-controller","severity":"error","timestamp":"2026-01-01T00:00:00Z","component":"podinfo","group":"Kustomization","custom_details":{"message":"Health check failed \u003ctimeout\u003e \u0026 more","metadata":{"revision":"main@sha1:abc","summary":"prod cluster"}}}}"#,
    );
    let mut progressing = info_event();
    progressing.reason = "Progressing".into();
    assert!(matches!(
        providers::build(ProviderType::PagerDuty, &s, &progressing).unwrap(),
        Delivery::Nothing
    ));
}

#[tokio::test]
async fn failures_say_what_failed() {
    let cap = Capture::start().await;
    cap.answer("/bad", 400, Duration::ZERO, "invalid payload");
    let s = settings(cap.url("/bad"));
    let delivery = providers::build(ProviderType::Generic, &s, &info_event()).unwrap();
    let err = providers::send(&delivery, &s, &reqwest::Client::new())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        "postMessage failed: request failed: request failed with status code 400: invalid payload"
    );
    assert!(
        providers::build(
            ProviderType::Slack,
            &settings("not a url".into()),
            &info_event()
        )
        .unwrap_err()
        .starts_with("invalid Slack hook URL not a url")
    );
    // Slack's Web API answers 200 with ok=false on errors.
    let mut s = settings(providers::slack::SLACK_API.into());
    s.token = "x".into();
    let built = providers::build(ProviderType::Slack, &s, &info_event()).unwrap();
    match built {
        Delivery::Http(r) => assert_eq!(r[0].validate, providers::Validate::SlackApi),
        other => panic!("unexpected {other:?}"),
    }
}

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

fn with_revision(mut e: Event) -> Event {
    e.metadata
        .insert("revision".into(), format!("main@sha1:{SHA}"));
    e
}

#[tokio::test]
async fn github_commit_status() {
    let cap = Capture::start().await;
    cap.answer("/api/v3/repos/org/repo/commits/", 200, Duration::ZERO, "[]");
    let mut s = settings(cap.url("/org/repo.git"));
    s.token = "ghp_x".into();
    s.commit_status = "kustomization/podinfo/7a6a3ec9".into();
    let event = with_revision(info_event());
    let delivery = providers::build(ProviderType::GitHub, &s, &event).unwrap();
    providers::send(&delivery, &s, &reqwest::Client::new())
        .await
        .unwrap();
    let list = cap.next(Duration::from_secs(5)).await;
    assert_eq!(list.method, "GET");
    assert_eq!(
        list.path,
        format!("/api/v3/repos/org/repo/commits/{SHA}/statuses?per_page=50")
    );
    assert_eq!(list.header("authorization"), Some("Bearer ghp_x"));
    let create = cap.next(Duration::from_secs(5)).await;
    assert_eq!(create.method, "POST");
    assert_eq!(
        create.path,
        format!("/api/v3/repos/org/repo/statuses/{SHA}")
    );
    assert_eq!(create.header("authorization"), Some("Bearer ghp_x"));
    assert_eq!(
        create.body_str(),
        "{\"state\":\"success\",\"description\":\"reconciliation succeeded\",\"context\":\"kustomization/podinfo/7a6a3ec9\"}\n"
    );

    // The same status already on the commit: listed, not posted again.
    let cap = Capture::start().await;
    cap.answer(
        "/api/v3/repos/org/repo/commits/",
        200,
        Duration::ZERO,
        r#"[{"context":"kustomization/podinfo/7a6a3ec9","state":"success","description":"reconciliation succeeded"}]"#,
    );
    s.url = cap.url("/org/repo");
    let delivery = providers::build(ProviderType::GitHub, &s, &event).unwrap();
    providers::send(&delivery, &s, &reqwest::Client::new())
        .await
        .unwrap();
    assert_eq!(cap.next(Duration::from_secs(5)).await.method, "GET");
    assert!(cap.try_next(Duration::from_millis(300)).await.is_none());

    // Progressing events and events without a revision.
    let mut progressing = event.clone();
    progressing.reason = "Progressing".into();
    assert!(matches!(
        providers::build(ProviderType::GitHub, &s, &progressing).unwrap(),
        Delivery::Nothing
    ));
    assert_eq!(
        providers::build(ProviderType::GitHub, &s, &info_event()).unwrap_err(),
        "failed to extract commit hash from 'main@sha1:abc' revision"
    );
}

#[tokio::test]
async fn gitlab_commit_status() {
    let cap = Capture::start().await;
    cap.answer(
        "/api/v4/projects/group%2Frepo/repository/",
        200,
        Duration::ZERO,
        "[]",
    );
    let mut s = settings(cap.url("/group/repo"));
    s.token = "glpat-x".into();
    s.commit_status = "kustomization/podinfo/7a6a3ec9".into();
    let event = with_revision(error_event());
    let delivery = providers::build(ProviderType::GitLab, &s, &event).unwrap();
    providers::send(&delivery, &s, &reqwest::Client::new())
        .await
        .unwrap();
    let list = cap.next(Duration::from_secs(5)).await;
    assert_eq!(list.method, "GET");
    assert_eq!(
        list.path,
        format!(
            "/api/v4/projects/group%2Frepo/repository/commits/{SHA}/statuses?name=kustomization%2Fpodinfo%2F7a6a3ec9"
        )
    );
    assert_eq!(list.header("private-token"), Some("glpat-x"));
    let create = cap.next(Duration::from_secs(5)).await;
    assert_request(
        &create,
        "POST",
        &format!("/api/v4/projects/group%2Frepo/statuses/{SHA}"),
        r#"{"state":"failed","name":"kustomization/podinfo/7a6a3ec9","description":"health check failed"}"#,
    );
    assert_eq!(create.header("private-token"), Some("glpat-x"));
}

/// SHA-1 of "kustomization/podinfo/7a6a3ec9" (Bitbucket's status key), computed independently.
const BB_KEY: &str = "ef7c014031dbfc6f8c5b2074b78f8cbc2fab518e";

#[tokio::test]
async fn gitea_commit_status_and_github_dispatch() {
    let cap = Capture::start().await;
    cap.answer("/api/v1/repos/org/repo/commits/", 200, Duration::ZERO, "[]");
    let mut s = settings(cap.url("/org/repo"));
    s.token = "gt".into();
    s.commit_status = "kustomization/podinfo/7a6a3ec9".into();
    let got = deliver_plan(
        ProviderType::Gitea,
        &s,
        &with_revision(info_event()),
        &cap,
        2,
    )
    .await;
    assert_eq!(got[0].method, "GET");
    assert_eq!(
        got[0].path,
        format!("/api/v1/repos/org/repo/commits/{SHA}/statuses?limit=50&page=1")
    );
    assert_eq!(got[0].header("authorization"), Some("token gt"));
    assert_request(
        &got[1],
        "POST",
        &format!("/api/v1/repos/org/repo/statuses/{SHA}"),
        r#"{"state":"success","target_url":"","description":"reconciliation succeeded","context":"kustomization/podinfo/7a6a3ec9"}"#,
    );
    assert_eq!(got[1].header("authorization"), Some("token gt"));

    let mut s = settings(cap.url("/org/repo"));
    s.token = "ghp_d".into();
    let got = deliver(ProviderType::GitHubDispatch, &s, &info_event(), &cap).await;
    assert_request(
        &got[0],
        "POST",
        "/api/v3/repos/org/repo/dispatches",
        &format!(
            "{{\"event_type\":\"Kustomization/podinfo.flux-system\",\"client_payload\":{BODY_INFO}}}\n"
        ),
    );
    assert_eq!(got[0].header("authorization"), Some("Bearer ghp_d"));
}

#[tokio::test]
async fn bitbucket_cloud_and_server_build_statuses() {
    let cap = Capture::start().await;
    // No status yet: the Go clients read 404 as "none".
    cap.answer(
        &format!("/2.0/repositories/org/repo/commit/{SHA}/statuses/build/{BB_KEY}"),
        404,
        Duration::ZERO,
        "",
    );
    cap.answer(
        &format!("/bitbucket/rest/api/latest/projects/proj/repos/repo/commits/{SHA}/builds?key="),
        404,
        Duration::ZERO,
        "",
    );
    let mut s = settings("https://bitbucket.org/org/repo.git".into());
    s.token = "user:app-pass".into();
    s.commit_status = "kustomization/podinfo/7a6a3ec9".into();
    let event = with_revision(error_event());
    let plan = providers::bitbucket::cloud_with_base(&s, &event, &cap.url("/2.0"))
        .unwrap()
        .unwrap();
    providers::send(&Delivery::CommitStatus(plan), &s, &reqwest::Client::new())
        .await
        .unwrap();
    let get = cap.next(Duration::from_secs(5)).await;
    assert_eq!(get.method, "GET");
    assert_eq!(
        get.path,
        format!("/2.0/repositories/org/repo/commit/{SHA}/statuses/build/{BB_KEY}")
    );
    assert_eq!(
        get.header("authorization"),
        Some("Basic dXNlcjphcHAtcGFzcw==")
    );
    let post = cap.next(Duration::from_secs(5)).await;
    assert_eq!(post.method, "POST");
    assert_eq!(
        post.path,
        format!("/2.0/repositories/org/repo/commit/{SHA}/statuses/build")
    );
    assert_eq!(
        post.body_str(),
        format!(
            r#"{{"key":"{BB_KEY}","url":"https://bitbucket.org","state":"FAILED","name":"kustomization/podinfo","description":"health check failed"}}"#
        )
    );

    let address = cap.url("/bitbucket/scm/proj/repo.git");
    let mut s = settings(address.clone());
    s.token = "bt".into();
    s.commit_status = "kustomization/podinfo/7a6a3ec9".into();
    let delivery = providers::build(
        ProviderType::BitbucketServer,
        &s,
        &with_revision(info_event()),
    )
    .unwrap();
    providers::send(&delivery, &s, &reqwest::Client::new())
        .await
        .unwrap();
    let get = cap.next(Duration::from_secs(5)).await;
    assert_eq!(get.method, "GET");
    assert_eq!(
        get.path,
        format!(
            "/bitbucket/rest/api/latest/projects/proj/repos/repo/commits/{SHA}/builds?key={BB_KEY}"
        )
    );
    assert_eq!(get.header("authorization"), Some("Bearer bt"));
    assert_eq!(get.header("x-atlassian-token"), Some("no-check"));
    let post = cap.next(Duration::from_secs(5)).await;
    assert_eq!(post.method, "POST");
    assert_eq!(
        post.path,
        format!("/bitbucket/rest/api/latest/projects/proj/repos/repo/commits/{SHA}/builds")
    );
    assert_eq!(
        post.body_str(),
        format!(
            "{{\"description\":\"reconciliation succeeded\",\"key\":\"{BB_KEY}\",\"name\":\"kustomization/podinfo [reconciliation succeeded]\",\"state\":\"SUCCESSFUL\",\"url\":\"{address}\"}}\n"
        )
    );
    assert_eq!(post.header("x-requested-with"), Some("XMLHttpRequest"));
}

async fn deliver_plan(
    kind: ProviderType,
    s: &Settings,
    e: &Event,
    capture: &Capture,
    n: usize,
) -> Vec<Captured> {
    let delivery = providers::build(kind, s, e).expect("notifier builds");
    providers::send(&delivery, s, &reqwest::Client::new())
        .await
        .expect("delivery succeeds");
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(capture.next(Duration::from_secs(5)).await);
    }
    out
}

#[tokio::test]
async fn zulip_zoom_incidentio() {
    let cap = Capture::start().await;
    let mut s = settings(cap.url("/ignored"));
    s.channel = "flux/alerts".into();
    s.username = "bot@example.com".into();
    s.password = "zk".into();
    let got = deliver(ProviderType::Zulip, &s, &info_event(), &cap).await;
    assert_eq!(got[0].method, "POST");
    assert_eq!(got[0].path, "/api/v1/messages");
    assert_eq!(
        got[0].header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    // Encoded independently (Python's urlencode over the sorted fields).
    assert_eq!(
        got[0].body_str(),
        "content=%23%23+Flux+Status%0A%0A%E2%84%B9%EF%B8%8F+Kustomization%2Fflux-system%2Fpodinfo%0A%0AApplied+revision%3A+main%40sha1%3Aabc%0A%0AMetadata%3A%0A%2A+%60revision%60%3A+main%40sha1%3Aabc%0A%2A+%60summary%60%3A+prod+cluster%0A&to=flux&topic=alerts&type=stream"
    );
    assert_eq!(
        got[0].header("authorization"),
        Some("Basic Ym90QGV4YW1wbGUuY29tOnpr")
    );

    let mut s = settings(cap.url("/inbound/x?token=1"));
    s.token = "zt".into();
    let got = deliver(ProviderType::Zoom, &s, &info_event(), &cap).await;
    assert_request(
        &got[0],
        "POST",
        "/inbound/x?format=full&token=1",
        r#"{"content":{"head":{"text":"kustomization/podinfo.flux-system","sub_head":{"text":"info"}},"body":[{"type":"message","text":"Applied revision: main@sha1:abc"},{"type":"fields","items":[{"key":"revision","value":"main@sha1:abc"},{"key":"summary","value":"prod cluster"}]}]}}"#,
    );
    assert_eq!(got[0].header("authorization"), Some("zt"));

    let mut s = settings(cap.url("/v2/alert_events/http/1"));
    s.token = "inc".into();
    let got = deliver(ProviderType::IncidentIo, &s, &error_event(), &cap).await;
    assert_request(
        &got[0],
        "POST",
        "/v2/alert_events/http/1",
        r#"{"title":"kustomization/podinfo.flux-system: HealthCheckFailed","status":"firing","deduplication_key":"u-1","description":"Health check failed \u003ctimeout\u003e \u0026 more","metadata":{"reason":"HealthCheckFailed","reportingController":"kustomize-controller","revision":"main@sha1:abc","severity":"error","summary":"prod cluster"}}"#,
    );
    assert_eq!(got[0].header("authorization"), Some("Bearer inc"));
}

/// The resource locations an Azure DevOps organisation answers `OPTIONS _apis` with (the
/// commit status entry as dev.azure.com lists it, and an unrelated one).
const ADO_LOCATIONS: &str = r#"{"count":2,"value":[
 {"id":"ab3ddd39-7c29-4b8c-9d52-2b57fb7f9d8f","area":"git","resourceName":"other","routeTemplate":"{project}/_apis/{area}/{resource}","resourceVersion":1,"minVersion":"1.0","maxVersion":"7.2","releasedVersion":"7.1"},
 {"id":"428dd4fb-fda5-4722-af02-9313b80305da","area":"git","resourceName":"statuses","routeTemplate":"{project}/_apis/{area}/repositories/{repositoryId}/commits/{commitId}/{resource}","resourceVersion":1,"minVersion":"1.0","maxVersion":"7.2","releasedVersion":"7.1"}]}"#;

#[tokio::test]
async fn azuredevops_commit_status() {
    let cap = Capture::start().await;
    cap.answer("/myorg/_apis", 200, Duration::ZERO, ADO_LOCATIONS);
    cap.answer(
        "/myorg/Proj/_apis/git/repositories/app/commits/",
        200,
        Duration::ZERO,
        r#"{"count":1,"value":[{"context":{"genre":"fluxcd:prod cluster","name":"kustomization/podinfo/7a6a3ec9"},"state":"error","description":"health check failed"}]}"#,
    );
    // Organisation names are lower-cased (the client library's URL normalisation).
    let mut s = settings(cap.url("/MyOrg/Proj/_git/app"));
    s.token = "pat".into();
    s.commit_status = "kustomization/podinfo/7a6a3ec9".into();
    let got = deliver_plan(
        ProviderType::AzureDevOps,
        &s,
        &with_revision(info_event()),
        &cap,
        3,
    )
    .await;
    let auth = "Basic OnBhdA=="; // base64(":pat")
    assert_eq!(got[0].method, "OPTIONS");
    assert_eq!(got[0].path, "/myorg/_apis");
    assert_eq!(got[0].header("accept"), Some("application/json"));
    let statuses = format!("/myorg/Proj/_apis/git/repositories/app/commits/{SHA}/statuses");
    assert_eq!(got[1].method, "GET");
    assert_eq!(got[1].path, statuses);
    assert_eq!(
        got[1].header("accept"),
        Some("application/json;api-version=6.0")
    );
    assert_eq!(got[2].method, "POST");
    assert_eq!(got[2].path, statuses);
    // Go's json.Marshal of git.GitStatus{Context, Description, State} (field order of the
    // struct; the genre carries the Alert's summary).
    assert_eq!(
        got[2].body_str(),
        r#"{"context":{"genre":"fluxcd:prod cluster","name":"kustomization/podinfo/7a6a3ec9"},"description":"reconciliation succeeded","state":"succeeded"}"#
    );
    assert_eq!(
        got[2].header("content-type"),
        Some("application/json;charset=utf-8")
    );
    for c in &got {
        assert_eq!(c.header("authorization"), Some(auth));
        assert_eq!(c.header("x-tfs-fedauthredirect"), Some("Suppress"));
        assert_eq!(c.header("x-tfs-session").map(str::len), Some(36));
    }

    // The same status as the latest one listed with our context: nothing created (and the
    // locations are not asked for again).
    let mut failed = with_revision(error_event());
    failed.reason = "HealthCheckFailed".into();
    let delivery = providers::build(ProviderType::AzureDevOps, &s, &failed).unwrap();
    providers::send(&delivery, &s, &reqwest::Client::new())
        .await
        .unwrap();
    let get = cap.next(Duration::from_secs(5)).await;
    assert_eq!(
        (get.method.as_str(), get.path.as_str()),
        ("GET", statuses.as_str())
    );
    assert!(cap.try_next(Duration::from_millis(300)).await.is_none());

    // Progressing events are not sent; bad repository ids and missing tokens are refused.
    let mut progressing = with_revision(info_event());
    progressing.reason = "Progressing".into();
    assert!(matches!(
        providers::build(ProviderType::AzureDevOps, &s, &progressing).unwrap(),
        Delivery::Nothing
    ));
    let mut bad = s.clone();
    bad.url = "https://dev.azure.com/foo/bar/baz".into();
    assert_eq!(
        providers::build(ProviderType::AzureDevOps, &bad, &failed).unwrap_err(),
        "invalid repository id \"foo/bar/baz\""
    );
    let mut no_token = s.clone();
    no_token.token.clear();
    assert!(
        providers::build(ProviderType::AzureDevOps, &no_token, &failed)
            .unwrap_err()
            .starts_with("failed to acquire azure devops token")
    );
}

/// One protobuf field as the wire format carries it (decoded here independently of the
/// provider's message types).
#[derive(Debug, Clone, PartialEq)]
enum Wire {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Bytes(Vec<u8>),
}

fn varint(buf: &[u8], i: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let b = buf[*i];
        *i += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return v;
        }
        shift += 7;
    }
}

fn wire_fields(buf: &[u8]) -> Vec<(u64, Wire)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < buf.len() {
        let key = varint(buf, &mut i);
        let v = match key & 7 {
            0 => Wire::Varint(varint(buf, &mut i)),
            1 => {
                let v = u64::from_le_bytes(buf[i..i + 8].try_into().unwrap());
                i += 8;
                Wire::Fixed64(v)
            }
            2 => {
                let n = varint(buf, &mut i) as usize;
                let v = buf[i..i + n].to_vec();
                i += n;
                Wire::Bytes(v)
            }
            5 => {
                let v = u32::from_le_bytes(buf[i..i + 4].try_into().unwrap());
                i += 4;
                Wire::Fixed32(v)
            }
            t => panic!("unexpected wire type {t}"),
        };
        out.push((key >> 3, v));
    }
    out
}

fn bytes_of(fields: &[(u64, Wire)], n: u64) -> Vec<Vec<u8>> {
    fields
        .iter()
        .filter(|(f, _)| *f == n)
        .map(|(_, w)| match w {
            Wire::Bytes(b) => b.clone(),
            other => panic!("field {n}: {other:?}"),
        })
        .collect()
}

fn string_of(fields: &[(u64, Wire)], n: u64) -> String {
    bytes_of(fields, n)
        .first()
        .map(|b| String::from_utf8(b.clone()).unwrap())
        .unwrap_or_default()
}

/// `KeyValue` list (string values) as (key, value) pairs.
fn key_values(fields: &[(u64, Wire)], n: u64) -> Vec<(String, String)> {
    bytes_of(fields, n)
        .iter()
        .map(|kv| {
            let kv = wire_fields(kv);
            let value = wire_fields(&bytes_of(&kv, 2)[0]);
            (string_of(&kv, 1), string_of(&value, 1))
        })
        .collect()
}

#[tokio::test]
async fn otel_span_over_otlp_http() {
    let cap = Capture::start().await;
    let mut s = settings(cap.url("/v1/traces"));
    s.alert_name = "ops".into();
    s.alert_namespace = "flux-system".into();
    s.alert_uid = "6f1c2a90-1111-2222-3333-444455556666".into();
    s.username = "otel".into();
    s.password = "pw".into();
    s.headers.insert("X-Scope-OrgID".into(), "tenant-1".into());
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let got = deliver_plan(ProviderType::Otel, &s, &error_event(), &cap, 1).await;
    let c = &got[0];
    assert_eq!((c.method.as_str(), c.path.as_str()), ("POST", "/v1/traces"));
    assert_eq!(c.header("content-type"), Some("application/x-protobuf"));
    assert_eq!(c.header("user-agent"), Some("OTel OTLP Exporter Go/1.44.0"));
    assert_eq!(c.header("x-scope-orgid"), Some("tenant-1"));
    // Headers present and no Authorization among them: Basic from username and password.
    assert_eq!(c.header("authorization"), Some("Basic b3RlbDpwdw=="));

    let req = wire_fields(&c.body);
    let rs = wire_fields(&bytes_of(&req, 1)[0]);
    assert_eq!(string_of(&rs, 3), "https://opentelemetry.io/schemas/1.34.0");
    let resource = wire_fields(&bytes_of(&rs, 1)[0]);
    let kv = |k: &str, v: &str| (k.to_string(), v.to_string());
    assert_eq!(
        key_values(&resource, 1),
        vec![
            kv(
                "service.instance.id",
                "6f1c2a90-1111-2222-3333-444455556666"
            ),
            kv("service.name", "flux-system/ops"),
            kv("service.namespace", "flux-system"),
        ]
    );
    let ss = wire_fields(&bytes_of(&rs, 2)[0]);
    let scope = wire_fields(&bytes_of(&ss, 1)[0]);
    assert_eq!(string_of(&scope, 1), "flux:notification-controller");
    let spans = bytes_of(&ss, 2);
    assert_eq!(spans.len(), 1);
    let span = wire_fields(&spans[0]);
    // First 16 bytes of SHA-256("<alert uid>:<revision>") (computed with Python's hashlib).
    assert_eq!(
        hex::encode(&bytes_of(&span, 1)[0]),
        "d4c0cf93e626ac92c01fce6f05e7b3c0"
    );
    assert_eq!(bytes_of(&span, 2)[0].len(), 8);
    assert!(bytes_of(&span, 4).is_empty(), "no parent span id");
    assert_eq!(string_of(&span, 5), "Kustomization: flux-system/podinfo");
    assert!(span.contains(&(6, Wire::Varint(1))), "kind internal");
    // 2026-01-01T00:00:00Z in nanoseconds.
    assert!(span.contains(&(7, Wire::Fixed64(1_767_225_600_000_000_000))));
    let end = span
        .iter()
        .find_map(|(f, w)| match (f, w) {
            (8, Wire::Fixed64(v)) => Some(*v),
            _ => None,
        })
        .unwrap();
    assert!(end >= before);
    let mut attrs = key_values(&span, 9);
    attrs.sort();
    assert_eq!(
        attrs,
        vec![
            kv("object.kind", "Kustomization"),
            kv("object.name", "podinfo"),
            kv("object.namespace", "flux-system"),
            kv("object.uid", "u-1"),
            kv("revision", "main@sha1:abc"),
            kv("summary", "prod cluster"),
        ]
    );
    let status = wire_fields(&bytes_of(&span, 15)[0]);
    assert_eq!(
        string_of(&status, 2),
        "Health check failed <timeout> & more"
    );
    assert!(status.contains(&(3, Wire::Varint(2))), "status ERROR");
    assert!(span.contains(&(16, Wire::Fixed32(0x301))));

    // Info: status OK without a description; no headers, so no Authorization either.
    let mut s2 = s.clone();
    s2.headers.clear();
    let got = deliver_plan(ProviderType::Otel, &s2, &info_event(), &cap, 1).await;
    assert_eq!(got[0].header("authorization"), None);
    let rs = wire_fields(&bytes_of(&wire_fields(&got[0].body), 1)[0]);
    let ss = wire_fields(&bytes_of(&rs, 2)[0]);
    let span = wire_fields(&bytes_of(&ss, 2)[0]);
    let status = wire_fields(&bytes_of(&span, 15)[0]);
    assert_eq!(status, vec![(3, Wire::Varint(1))]);

    // HelmRepository events are not exported.
    let mut helm = info_event();
    helm.involved_object.kind = "HelmRepository".into();
    assert!(matches!(
        providers::build(ProviderType::Otel, &s, &helm).unwrap(),
        Delivery::Nothing
    ));
}

#[tokio::test]
async fn sentry_envelopes() {
    let cap = Capture::start().await;
    let mut s = settings(format!("http://pubkey@{}/sub/42", cap.addr));
    s.channel = "production".into();
    let lines = |c: &Captured| -> Vec<serde_json::Value> {
        let text = c.body_str();
        assert!(text.ends_with('\n'));
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let check_request = |c: &Captured| {
        assert_eq!(c.method, "POST");
        assert_eq!(c.path, "/sub/api/42/envelope/");
        assert_eq!(
            c.header("content-type"),
            Some("application/x-sentry-envelope")
        );
        assert_eq!(
            c.header("x-sentry-auth"),
            Some("Sentry sentry_version=7, sentry_client=sentry.go/0.46.2, sentry_key=pubkey")
        );
        assert_eq!(c.header("user-agent"), Some("sentry.go/0.46.2"));
    };

    // Errors: a Sentry event (upstream's toSentryEvent).
    let got = deliver_plan(ProviderType::Sentry, &s, &error_event(), &cap, 1).await;
    check_request(&got[0]);
    let env = lines(&got[0]);
    assert_eq!(env.len(), 3);
    let event_id = env[2]["event_id"].as_str().unwrap();
    assert_eq!(event_id.len(), 32);
    assert_eq!(env[0]["event_id"], event_id);
    assert_eq!(env[0]["dsn"], s.url.as_str());
    assert_eq!(
        env[0]["sdk"],
        serde_json::json!({"name": "sentry.go", "version": "0.46.2"})
    );
    assert_eq!(env[1]["type"], "event");
    let raw_event = got[0].body_str().lines().nth(2).unwrap();
    assert_eq!(env[1]["length"], raw_event.len());
    let e = &env[2];
    assert_eq!(e["level"], "error");
    assert_eq!(e["message"], "Health check failed <timeout> & more");
    assert_eq!(e["server_name"], "kustomize-controller");
    assert_eq!(e["transaction"], "Kustomization: flux-system/podinfo");
    assert_eq!(e["timestamp"], "2026-01-01T00:00:00Z");
    assert_eq!(e["environment"], "production");
    assert_eq!(e["platform"], "go");
    assert_eq!(
        e["contexts"],
        serde_json::json!({"metadata": {"revision": "main@sha1:abc", "summary": "prod cluster"}})
    );
    assert!(e.get("type").is_none() && e.get("spans").is_none());

    // Info: a transaction with one span (upstream's eventToSpan).
    let got = deliver_plan(ProviderType::Sentry, &s, &info_event(), &cap, 1).await;
    check_request(&got[0]);
    let env = lines(&got[0]);
    assert_eq!(env[1]["type"], "transaction");
    let t = &env[2];
    assert_eq!(t["type"], "transaction");
    assert_eq!(t["transaction"], "Kustomization: flux-system/podinfo");
    assert_eq!(t["message"], "Applied revision: main@sha1:abc");
    assert_eq!(t["start_timestamp"], "2026-01-01T00:00:00Z");
    assert_eq!(t["timestamp"], "2026-01-01T00:00:00Z");
    let tags = serde_json::json!({
        "flux_involved_object_kind": "Kustomization",
        "flux_involved_object_namespace": "flux-system",
        "flux_involved_object_name": "podinfo",
        "flux_reporting_controller": "kustomize-controller",
        "flux_reporting_instance": "",
        "flux_reason": "ReconciliationSucceeded",
        "revision": "main@sha1:abc",
        "summary": "prod cluster"});
    assert_eq!(t["tags"], tags);
    let span = &t["spans"][0];
    assert_eq!(span["op"], "event");
    assert_eq!(span["tags"], tags);
    assert_eq!(t["contexts"]["trace"]["trace_id"], span["trace_id"]);
    assert_eq!(span["trace_id"].as_str().unwrap().len(), 32);
    assert_eq!(span["span_id"].as_str().unwrap().len(), 16);

    // A Sentry that refuses the envelope does not fail the notification (as upstream).
    cap.answer("/sub/api/42/envelope/", 500, Duration::ZERO, "down");
    let delivery = providers::build(ProviderType::Sentry, &s, &error_event()).unwrap();
    providers::send(&delivery, &s, &reqwest::Client::new())
        .await
        .unwrap();
    s.url.clear();
    assert_eq!(
        providers::build(ProviderType::Sentry, &s, &error_event()).unwrap_err(),
        "DSN cannot be empty"
    );
}
