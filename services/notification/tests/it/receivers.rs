//! Receivers against the test API server: the reconciler publishes the webhook path, the
//! webhook server checks requests as upstream does for each type and annotates the selected
//! GitRepositories with `reconcile.fluxcd.io/requestedAt`; wrong signatures, wrong tokens,
//! unlisted events, unknown paths and suspended receivers get upstream's status codes and
//! annotate nothing.

use ferroflux_api::{GitRepository, Receiver};
use ferroflux_testsupport::webhooks::{
    GITHUB_PAYLOAD, GITHUB_SECRET, GITHUB_SIGNATURE, Hmac, hmac_hex,
};
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::support::{
    NOTIFICATION, Receivers, SOURCE, hook_path as expected_path, install_crds, post, requested_at,
    wait_for,
};

const TOKEN: &str = "r3c31v3r-token";

struct Hook {
    http: reqwest::Client,
    base: String,
}

impl Hook {
    fn new(receivers: &Receivers) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: receivers.base.clone(),
        }
    }

    async fn send(&self, path: &str, headers: &[(&str, String)], body: &str) -> u16 {
        post(
            &self.http,
            &format!("{}{path}", self.base),
            headers,
            body.to_string(),
        )
        .await
    }
}

async fn setup(client: &Client) {
    install_crds(client, &[NOTIFICATION, SOURCE]).await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    for (name, token) in [("token", TOKEN), ("github-token", GITHUB_SECRET)] {
        let s: Secret = serde_json::from_value(
            json!({"metadata": {"name": name}, "stringData": {"token": token}}),
        )
        .unwrap();
        secrets.create(&PostParams::default(), &s).await.unwrap();
    }
    let repos: Api<GitRepository> = Api::namespaced(client.clone(), "default");
    for (name, team) in [("app", "a"), ("app2", "a"), ("other", "b")] {
        let r: GitRepository = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"team": team}},
            "spec": {"url": "https://example.com/repo.git", "interval": "1h"}}))
        .unwrap();
        repos.create(&PostParams::default(), &r).await.unwrap();
    }
    let app = json!([{"kind": "GitRepository", "name": "app"}]);
    let receivers: Api<Receiver> = Api::namespaced(client.clone(), "default");
    for (name, spec) in [
        (
            "github",
            json!({"type": "github", "events": ["push"], "resources": app,
                          "secretRef": {"name": "github-token"}}),
        ),
        (
            "gitlab",
            json!({"type": "gitlab", "events": ["Push Hook"],
                          "resources": [{"kind": "GitRepository", "name": "*",
                                         "matchLabels": {"team": "a"}}],
                          "secretRef": {"name": "token"}}),
        ),
        (
            "bitbucket",
            json!({"type": "bitbucket", "events": ["repo:refs_changed"],
                             "resources": app, "secretRef": {"name": "token"}}),
        ),
        (
            "hmac",
            json!({"type": "generic-hmac", "resources": app, "secretRef": {"name": "token"}}),
        ),
        (
            "harbor",
            json!({"type": "harbor", "resources": app, "secretRef": {"name": "token"}}),
        ),
        (
            "nexus",
            json!({"type": "nexus", "resources": app, "secretRef": {"name": "token"}}),
        ),
        (
            "broken",
            json!({"type": "generic", "secretRef": {"name": "token"},
                          "resources": [{"kind": "GitRepository", "name": "missing"}]}),
        ),
        (
            "generic",
            json!({"type": "generic", "resources": app, "secretRef": {"name": "token"}}),
        ),
        (
            "no-secret",
            json!({"type": "generic", "resources": app,
                             "secretRef": {"name": "does-not-exist"}}),
        ),
    ] {
        let r: Receiver =
            serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap();
        receivers.create(&PostParams::default(), &r).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn receivers_annotate_the_selected_objects() {
    let env = ferroflux_testenv::TestEnv::start(ferroflux_testenv::Options::default())
        .await
        .unwrap();
    let client = env.client().await.unwrap();
    setup(&client).await;

    let receivers_loop = Receivers::start(&client, None).await;
    let index = receivers_loop.index.clone();
    let hook = Hook::new(&receivers_loop);

    // Ready with upstream's path; the index (fed by the driver's watch) knows them.
    let receivers: Api<Receiver> = Api::namespaced(client.clone(), "default");
    for name in [
        "github",
        "gitlab",
        "bitbucket",
        "hmac",
        "harbor",
        "nexus",
        "broken",
        "generic",
    ] {
        let token = if name == "github" {
            GITHUB_SECRET
        } else {
            TOKEN
        };
        let path = expected_path(token, name);
        let r = receivers_loop.wait_ready(&receivers, name, &path).await;
        let ready = r
            .status
            .unwrap()
            .conditions
            .unwrap()
            .into_iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(ready.status, "True");
        assert_eq!(ready.reason, "Succeeded");
        assert_eq!(
            ready.message,
            format!("Receiver initialized for path: {path}")
        );
        assert!(
            r.metadata
                .finalizers
                .unwrap()
                .contains(&"finalizers.fluxcd.io".to_string())
        );
    }
    // A missing Secret: TokenNotFound and no path.
    let missing = wait_for("TokenNotFound", 30, || {
        let receivers = receivers.clone();
        async move {
            let r = receivers.get("no-secret").await.ok()?;
            let c = r
                .status
                .clone()?
                .conditions?
                .into_iter()
                .find(|c| c.type_ == "Ready")?;
            (c.reason == "TokenNotFound").then_some(r)
        }
    })
    .await;
    assert_eq!(missing.status.unwrap().webhook_path, None);

    let repos: Api<GitRepository> = Api::namespaced(client.clone(), "default");
    let json_ct = ("Content-Type", "application/json".to_string());

    // GitHub: the documented test vector; wrong signature and unlisted event refused first.
    let gh = expected_path(GITHUB_SECRET, "github");
    let bad_sig = GITHUB_SIGNATURE.replace("757", "758");
    assert_eq!(
        hook.send(
            &gh,
            &[
                json_ct.clone(),
                ("X-GitHub-Event", "push".into()),
                ("X-Hub-Signature-256", bad_sig)
            ],
            GITHUB_PAYLOAD
        )
        .await,
        400
    );
    assert_eq!(
        hook.send(
            &gh,
            &[
                json_ct.clone(),
                ("X-GitHub-Event", "issues".into()),
                ("X-Hub-Signature-256", GITHUB_SIGNATURE.into())
            ],
            GITHUB_PAYLOAD
        )
        .await,
        400
    );
    assert_eq!(requested_at(&repos, "app").await, None);
    assert_eq!(
        hook.send(
            &gh,
            &[
                json_ct.clone(),
                ("X-GitHub-Event", "push".into()),
                ("X-Hub-Signature-256", GITHUB_SIGNATURE.into())
            ],
            GITHUB_PAYLOAD
        )
        .await,
        200
    );
    let first = requested_at(&repos, "app").await.expect("app annotated");
    assert!(first.ends_with(" +0000 UTC"), "{first}");
    assert_eq!(requested_at(&repos, "other").await, None);

    // GitLab: token header and event; name "*" with matchLabels annotates app and app2 only.
    let gl = expected_path(TOKEN, "gitlab");
    assert_eq!(
        hook.send(
            &gl,
            &[
                ("X-Gitlab-Token", "wrong".into()),
                ("X-Gitlab-Event", "Push Hook".into())
            ],
            "{}"
        )
        .await,
        400
    );
    assert_eq!(
        hook.send(
            &gl,
            &[
                ("X-Gitlab-Token", TOKEN.into()),
                ("X-Gitlab-Event", "Tag Push Hook".into())
            ],
            "{}"
        )
        .await,
        400
    );
    assert_eq!(requested_at(&repos, "app2").await, None);
    assert_eq!(
        hook.send(
            &gl,
            &[
                ("X-Gitlab-Token", TOKEN.into()),
                ("X-Gitlab-Event", "push hook".into())
            ],
            "{}"
        )
        .await,
        200
    );
    assert!(requested_at(&repos, "app2").await.is_some());
    assert_eq!(requested_at(&repos, "other").await, None);

    // Bitbucket Server: GitHub-style signature, X-Event-Key.
    let bb = expected_path(TOKEN, "bitbucket");
    let body = r#"{"eventKey":"repo:refs_changed"}"#;
    let sig = format!("sha256={}", hmac_hex(Hmac::Sha256, TOKEN, body.as_bytes()));
    assert_eq!(
        hook.send(
            &bb,
            &[
                json_ct.clone(),
                ("X-Event-Key", "repo:refs_changed".into()),
                ("X-Hub-Signature", sig.clone())
            ],
            body
        )
        .await,
        200
    );
    assert_eq!(
        hook.send(
            &bb,
            &[
                json_ct.clone(),
                ("X-Event-Key", "pr:opened".into()),
                ("X-Hub-Signature", sig)
            ],
            body
        )
        .await,
        400
    );

    // generic-hmac with each algorithm upstream accepts.
    let hm = expected_path(TOKEN, "hmac");
    for (prefix, alg) in [
        ("sha1", Hmac::Sha1),
        ("sha256", Hmac::Sha256),
        ("sha512", Hmac::Sha512),
    ] {
        let sig = format!("{prefix}={}", hmac_hex(alg, TOKEN, b"payload"));
        let before = requested_at(&repos, "app").await;
        assert_eq!(
            hook.send(&hm, &[("X-Signature", sig)], "payload").await,
            200,
            "{prefix}"
        );
        assert_ne!(requested_at(&repos, "app").await, before, "{prefix}");
    }
    let wrong = format!("sha256={}", hmac_hex(Hmac::Sha256, "other", b"payload"));
    assert_eq!(
        hook.send(&hm, &[("X-Signature", wrong)], "payload").await,
        400
    );
    assert_eq!(hook.send(&hm, &[], "payload").await, 400);

    // Harbor: the Authorization header is the token.
    let hb = expected_path(TOKEN, "harbor");
    assert_eq!(
        hook.send(&hb, &[("Authorization", "nope".into())], "{}")
            .await,
        400
    );
    assert_eq!(
        hook.send(&hb, &[("Authorization", TOKEN.into())], "{}")
            .await,
        200
    );

    // Nexus: hex HMAC-SHA1 of the body.
    let nx = expected_path(TOKEN, "nexus");
    let body = r#"{"action":"CREATED","repositoryName":"charts"}"#;
    let sig = hmac_hex(Hmac::Sha1, TOKEN, body.as_bytes());
    assert_eq!(
        hook.send(&nx, &[("X-Nexus-Webhook-Signature", sig)], body)
            .await,
        200
    );
    assert_eq!(
        hook.send(&nx, &[("X-Nexus-Webhook-Signature", "00".into())], body)
            .await,
        400
    );

    // An object that does not exist: 500. Unknown paths: 404.
    assert_eq!(
        hook.send(&expected_path(TOKEN, "broken"), &[], "{}").await,
        500
    );
    assert_eq!(
        hook.send(&expected_path("x", "nobody"), &[], "{}").await,
        404
    );
    assert_eq!(hook.send("/not-a-hook", &[], "{}").await, 404);

    // Suspended: 503 and nothing annotated.
    let gen_path = expected_path(TOKEN, "generic");
    assert_eq!(hook.send(&gen_path, &[], "").await, 200);
    receivers
        .patch(
            "generic",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"suspend": true}})),
        )
        .await
        .unwrap();
    wait_for("suspension seen", 10, || {
        let index = index.clone();
        let p = gen_path.clone();
        async move {
            index
                .by_path(&p)
                .filter(|r| r.spec.suspend == Some(true))
                .map(|_| ())
        }
    })
    .await;
    let before = requested_at(&repos, "app").await;
    assert_eq!(hook.send(&gen_path, &[], "").await, 503);
    assert_eq!(requested_at(&repos, "app").await, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn cel_filters_select_objects_and_invalid_ones_stall() {
    let env = ferroflux_testenv::TestEnv::start(ferroflux_testenv::Options::default())
        .await
        .unwrap();
    let client = env.client().await.unwrap();
    setup(&client).await;
    let receivers: Api<Receiver> = Api::namespaced(client.clone(), "default");
    for (name, spec) in [
        (
            "filtered",
            json!({"type": "generic", "secretRef": {"name": "token"},
            "resourceFilter": "req.ref == 'refs/heads/main'",
            "resources": [{"kind": "GitRepository", "name": "*", "matchLabels": {"team": "a"},
                           "filter": "res.metadata.name == 'app2' && res.kind == 'GitRepository'"}]}),
        ),
        (
            "bad-cel",
            json!({"type": "generic", "secretRef": {"name": "token"},
            "resources": [{"kind": "GitRepository", "name": "app", "filter": "res.metadata.("}]}),
        ),
    ] {
        let r: Receiver =
            serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap();
        receivers.create(&PostParams::default(), &r).await.unwrap();
    }
    let receivers_loop = Receivers::start(&client, None).await;
    let hook = Hook::new(&receivers_loop);
    let path = expected_path(TOKEN, "filtered");
    receivers_loop
        .wait_ready(&receivers, "filtered", &path)
        .await;
    let stalled = wait_for("bad-cel stalled", 30, || {
        let receivers = receivers.clone();
        async move {
            let r = receivers.get("bad-cel").await.ok()?;
            r.status?
                .conditions?
                .into_iter()
                .find(|c| c.type_ == "Stalled")
        }
    })
    .await;
    assert_eq!(stalled.reason, "InvalidCELExpression");
    assert!(
        stalled.message.starts_with(
            "Reconciliation failed terminally due to configuration error: invalid filter expression for resources[0] (kind=\"GitRepository\", name=\"app\"): "
        ),
        "{}",
        stalled.message
    );

    let repos: Api<GitRepository> = Api::namespaced(client.clone(), "default");
    let json_ct = ("Content-Type", "application/json".to_string());
    // The top-level filter refuses other branches: nothing annotated.
    assert_eq!(
        hook.send(
            &path,
            std::slice::from_ref(&json_ct),
            r#"{"ref":"refs/heads/dev"}"#
        )
        .await,
        200
    );
    for name in ["app", "app2", "other"] {
        assert_eq!(requested_at(&repos, name).await, None, "{name}");
    }
    // main: of the team-a repositories, only app2 passes the resource's own filter.
    assert_eq!(
        hook.send(
            &path,
            std::slice::from_ref(&json_ct),
            r#"{"ref":"refs/heads/main"}"#
        )
        .await,
        200
    );
    assert!(requested_at(&repos, "app2").await.is_some());
    assert_eq!(requested_at(&repos, "app").await, None);
    assert_eq!(requested_at(&repos, "other").await, None);
    // A JSON body that does not parse: upstream answers 500.
    assert_eq!(hook.send(&path, &[json_ct], "{not json").await, 500);
}
