//! The Receivers that authenticate with signed tokens or validate event documents, against the
//! test API server: generic-oidc (a test OIDC issuer served here: discovery document, JWKS,
//! ES256 tokens), gcr (a Pub/Sub push with a Google-style RS256 ID token checked against keys
//! served here) and cdevents (a CloudEvent in binary mode carrying a CDEvent). Valid requests
//! annotate the GitRepository; bad tokens, failed claim checks, unknown issuers, wrong
//! audiences, expired tokens, invalid CDEvents and unlisted event types get 400 and annotate
//! nothing.

use base64::Engine;
use ferroflux_api::{GitRepository, Receiver};
use ferroflux_testsupport::webhooks::{Keys, cdevent, cloudevent_headers, serve_issuer};
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

use crate::support::{
    NOTIFICATION, Receivers, SOURCE, hook_path as path_for, install_crds, post,
    requested_at as annotated, wait_for,
};

#[tokio::test(flavor = "multi_thread")]
async fn oidc_gcr_and_cdevents_receivers() {
    let env = ferroflux_testenv::TestEnv::start(ferroflux_testenv::Options::default())
        .await
        .unwrap();
    let client: Client = env.client().await.unwrap();
    install_crds(&client, &[NOTIFICATION, SOURCE]).await;
    let keys = Keys::new();
    let issuer = serve_issuer(keys.jwks()).await;
    let other_keys = Keys::new();
    let rogue_issuer = serve_issuer(other_keys.jwks()).await;

    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    for (name, data) in [
        ("token", json!({"token": "cd-token"})),
        (
            "gcr",
            json!({"token": "gcr-token", "email": "push@proj.iam.gserviceaccount.com",
                   "audience": "https://flux.example.com/hook"}),
        ),
    ] {
        let s: Secret =
            serde_json::from_value(json!({"metadata": {"name": name}, "stringData": data}))
                .unwrap();
        secrets.create(&PostParams::default(), &s).await.unwrap();
    }
    let repos: Api<GitRepository> = Api::namespaced(client.clone(), "default");
    for name in ["oidc-app", "gcr-app", "cd-app"] {
        let r: GitRepository = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"url": "https://example.com/repo.git", "interval": "1h"}}))
        .unwrap();
        repos.create(&PostParams::default(), &r).await.unwrap();
    }
    let receivers: Api<Receiver> = Api::namespaced(client.clone(), "default");
    for (name, spec) in [
        (
            "oidc",
            json!({"type": "generic-oidc",
                   "resources": [{"kind": "GitRepository", "name": "oidc-app"}],
                   "resourceFilter": "claims.repository == 'org/app'",
                   "oidcProviders": [{
                       "issuerURL": issuer, "audience": "flux",
                       "variables": [{"name": "repo", "expression": "claims.repository"}],
                       "validations": [
                           {"expression": "vars.repo.startsWith('org/')",
                            "message": "repository must be in org"},
                           {"expression": "claims.ref == 'refs/heads/main'",
                            "message": "only main"}]}]}),
        ),
        (
            "bad-cel",
            json!({"type": "generic-oidc",
                   "resources": [{"kind": "GitRepository", "name": "oidc-app"}],
                   "oidcProviders": [{"issuerURL": issuer,
                       "validations": [{"expression": "claims.(", "message": "x"}]}]}),
        ),
        (
            "gcr",
            json!({"type": "gcr", "secretRef": {"name": "gcr"},
                   "resources": [{"kind": "GitRepository", "name": "gcr-app"}]}),
        ),
        (
            "cdevents",
            json!({"type": "cdevents", "secretRef": {"name": "token"},
                   "events": ["dev.cdevents.change.merged.0.2.0"],
                   "resources": [{"kind": "GitRepository", "name": "cd-app"}]}),
        ),
    ] {
        let r: Receiver =
            serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap();
        receivers.create(&PostParams::default(), &r).await.unwrap();
    }

    // Google's keys are served by the test issuer here.
    let receivers_loop = Receivers::start(&client, Some(format!("{issuer}/keys"))).await;
    let http = reqwest::Client::new();

    // Paths: generic-oidc has no Secret, so its path comes from name and namespace only.
    for (name, token) in [("oidc", ""), ("gcr", "gcr-token"), ("cdevents", "cd-token")] {
        receivers_loop
            .wait_ready(&receivers, name, &path_for(token, name))
            .await;
    }
    // An invalid claim expression stalls the Receiver.
    let stalled = wait_for("bad-cel stalled", 30, || {
        let receivers = receivers.clone();
        async move {
            let r = receivers.get("bad-cel").await.ok()?;
            r.status?
                .conditions?
                .into_iter()
                .find(|c| c.type_ == "Stalled" && c.status == "True")
        }
    })
    .await;
    assert_eq!(stalled.reason, "InvalidCELExpression");

    // generic-oidc.
    let url = receivers_loop.url(&path_for("", "oidc"));
    let now = jiff::Timestamp::now().as_second();
    let claims = |over: Value| {
        let mut c = json!({"iss": issuer, "aud": ["flux"], "sub": "repo:org/app",
                           "repository": "org/app", "ref": "refs/heads/main",
                           "iat": now, "exp": now + 300});
        for (k, v) in over.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let bearer = |t: String| vec![("Authorization", format!("Bearer {t}"))];
    let refused = [
        ("no token", vec![], 400),
        ("not a JWT", bearer("abc".into()), 400),
        (
            "signed by another key",
            bearer(other_keys.es256(&claims(json!({})))),
            400,
        ),
        (
            "unknown issuer",
            bearer(other_keys.es256(&claims(json!({"iss": rogue_issuer})))),
            400,
        ),
        (
            "wrong audience",
            bearer(keys.es256(&claims(json!({"aud": "someone-else"})))),
            400,
        ),
        (
            "expired",
            bearer(keys.es256(&claims(json!({"exp": now - 60})))),
            400,
        ),
        (
            "validation fails",
            bearer(keys.es256(&claims(json!({"ref": "refs/heads/dev"})))),
            400,
        ),
    ];
    for (what, headers, code) in refused {
        assert_eq!(post(&http, &url, &headers, "{}").await, code, "{what}");
    }
    assert_eq!(annotated(&repos, "oidc-app").await, None);
    // Valid but the resourceFilter (over claims) rejects it: 200, nothing annotated.
    let filtered = keys.es256(&claims(json!({"repository": "org/other"})));
    assert_eq!(post(&http, &url, &bearer(filtered), "{}").await, 200);
    assert_eq!(annotated(&repos, "oidc-app").await, None);
    let good = keys.es256(&claims(json!({})));
    assert_eq!(post(&http, &url, &bearer(good), "{}").await, 200);
    assert!(annotated(&repos, "oidc-app").await.is_some());

    // gcr: a Pub/Sub push with the registry event base64-encoded in message.data.
    let url = receivers_loop.url(&path_for("gcr-token", "gcr"));
    let data = base64::engine::general_purpose::STANDARD.encode(
        json!({"action": "INSERT",
               "digest": "gcr.io/proj/app@sha256:6ec128e26cd5", "tag": "gcr.io/proj/app:1.0"})
        .to_string(),
    );
    let push = json!({"message": {"data": data, "messageId": "136969346945",
                                  "publishTime": "2026-12-07T21:00:00Z"},
                      "subscription": "projects/proj/subscriptions/flux"})
    .to_string();
    let google = |over: Value| {
        let mut c = json!({"iss": "https://accounts.google.com",
                           "aud": "https://flux.example.com/hook",
                           "email": "push@proj.iam.gserviceaccount.com", "email_verified": true,
                           "sub": "1234", "iat": now, "exp": now + 300});
        for (k, v) in over.as_object().unwrap() {
            c[k] = v.clone();
        }
        keys.rs256(&c)
    };
    for (what, token) in [
        (
            "wrong audience",
            google(json!({"aud": "https://elsewhere"})),
        ),
        (
            "wrong issuer",
            google(json!({"iss": "https://evil.example"})),
        ),
        (
            "wrong email",
            google(json!({"email": "x@proj.iam.gserviceaccount.com"})),
        ),
        ("unverified email", google(json!({"email_verified": false}))),
        ("expired", google(json!({"exp": now - 60}))),
        (
            "foreign key",
            other_keys.rs256(&json!({"aud": "https://flux.example.com/hook"})),
        ),
    ] {
        assert_eq!(
            post(&http, &url, &bearer(token), push.clone()).await,
            400,
            "{what}"
        );
    }
    assert_eq!(post(&http, &url, &[], push.clone()).await, 400);
    assert_eq!(annotated(&repos, "gcr-app").await, None);
    assert_eq!(
        post(&http, &url, &bearer(google(json!({}))), push).await,
        200
    );
    assert!(annotated(&repos, "gcr-app").await.is_some());

    // cdevents: a CloudEvent in binary mode, the CDEvent as its data.
    let url = receivers_loop.url(&path_for("cd-token", "cdevents"));
    let ce = cloudevent_headers;
    let merged = "dev.cdevents.change.merged.0.2.0";
    let mut invalid = cdevent(merged);
    invalid["subject"].as_object_mut().unwrap().remove("id");
    for (what, headers, body) in [
        ("not a CDEvent", ce(merged), "{\"hello\":1}".to_string()),
        ("subject without id", ce(merged), invalid.to_string()),
        (
            "unknown type",
            ce("dev.cdevents.change.exploded.0.1.0"),
            cdevent("dev.cdevents.change.exploded.0.1.0").to_string(),
        ),
        (
            "event type not listed",
            ce("dev.cdevents.change.created.0.3.0"),
            cdevent("dev.cdevents.change.created.0.3.0").to_string(),
        ),
    ] {
        assert_eq!(post(&http, &url, &headers, body).await, 400, "{what}");
    }
    assert_eq!(annotated(&repos, "cd-app").await, None);
    assert_eq!(
        post(&http, &url, &ce(merged), cdevent(merged).to_string()).await,
        200
    );
    assert!(annotated(&repos, "cd-app").await.is_some());
}
