//! The Receivers that authenticate with signed tokens or validate event documents, against the
//! test API server: generic-oidc (a test OIDC issuer served here: discovery document, JWKS,
//! ES256 tokens), gcr (a Pub/Sub push with a Google-style RS256 ID token checked against keys
//! served here) and cdevents (a CloudEvent in binary mode carrying a CDEvent). Valid requests
//! annotate the GitRepository; bad tokens, failed claim checks, unknown issuers, wrong
//! audiences, expired tokens, invalid CDEvents and unlisted event types get 400 and annotate
//! nothing.

use std::time::Duration;

use aws_lc_rs::signature::{self, KeyPair};
use base64::Engine;
use ferroflux_api::{GitRepository, Receiver};
use ferroflux_runtime::driver::{DriverConfig, run};
use ferroflux_runtime::events::EventRecorder;
use ferroflux_runtime::metrics::Metrics;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};
use notification_controller::receiver::{
    ReceiverIndex, ReceiverReconciler, ReceiverServer, router,
};
use serde_json::{Value, json};

use crate::support::wait_for;

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Signing keys of the test issuer: one ES256 (OIDC) and one RS256 (Google-style) key.
struct Keys {
    ec: signature::EcdsaKeyPair,
    rsa: aws_lc_rs::rsa::KeyPair,
}

/// `(n, e)` of a PKCS#1 RSAPublicKey (DER SEQUENCE of two INTEGERs).
fn rsa_components(der: &[u8]) -> (Vec<u8>, Vec<u8>) {
    fn read(der: &[u8], i: &mut usize) -> (u8, Vec<u8>) {
        let tag = der[*i];
        let mut len = der[*i + 1] as usize;
        *i += 2;
        if len & 0x80 != 0 {
            let n = len & 0x7f;
            len = 0;
            for _ in 0..n {
                len = (len << 8) | der[*i] as usize;
                *i += 1;
            }
        }
        let v = der[*i..*i + len].to_vec();
        *i += len;
        (tag, v)
    }
    let mut i = 0;
    let (_, seq) = read(der, &mut i);
    let mut j = 0;
    let (_, mut n) = read(&seq, &mut j);
    let (_, e) = read(&seq, &mut j);
    while n.first() == Some(&0) {
        n.remove(0);
    }
    (n, e)
}

impl Keys {
    fn new() -> Self {
        Self {
            ec: signature::EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)
                .unwrap(),
            rsa: aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap(),
        }
    }

    fn jwks(&self) -> Value {
        let point = self.ec.public_key().as_ref();
        let (n, e) = rsa_components(self.rsa.public_key().as_ref());
        json!({"keys": [
            {"kty": "EC", "crv": "P-256", "kid": "ec-1", "use": "sig", "alg": "ES256",
             "x": b64(&point[1..33]), "y": b64(&point[33..65])},
            {"kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256", "n": b64(&n), "e": b64(&e)}
        ]})
    }

    fn es256(&self, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(json!({"alg": "ES256", "kid": "ec-1", "typ": "JWT"})
                .to_string()
                .as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = self
            .ec
            .sign(&aws_lc_rs::rand::SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", b64(sig.as_ref()))
    }

    fn rs256(&self, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(json!({"alg": "RS256", "kid": "rsa-1", "typ": "JWT"})
                .to_string()
                .as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let mut sig = vec![0u8; self.rsa.public_modulus_len()];
        self.rsa
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .unwrap();
        format!("{input}.{}", b64(&sig))
    }
}

/// The test issuer: `/.well-known/openid-configuration` and `/keys`.
async fn serve_issuer(jwks: Value) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let b = base.clone();
    let app = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            axum::routing::get(move || {
                let b = b.clone();
                async move {
                    axum::Json(json!({"issuer": b, "jwks_uri": format!("{b}/keys"),
                        "id_token_signing_alg_values_supported": ["ES256", "RS256"]}))
                }
            }),
        )
        .route(
            "/keys",
            axum::routing::get(move || {
                let jwks = jwks.clone();
                async move { axum::Json(jwks) }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

fn path_for(token: &str, name: &str) -> String {
    use sha2::Digest;
    format!(
        "/hook/{}",
        hex::encode(sha2::Sha256::digest(
            format!("{token}{name}default").as_bytes()
        ))
    )
}

async fn annotated(repos: &Api<GitRepository>, name: &str) -> Option<String> {
    repos
        .get(name)
        .await
        .unwrap()
        .annotations()
        .get("reconcile.fluxcd.io/requestedAt")
        .cloned()
}

async fn post(
    http: &reqwest::Client,
    url: String,
    headers: &[(&str, String)],
    body: String,
) -> u16 {
    let mut rb = http.post(url).body(body);
    for (k, v) in headers {
        rb = rb.header(*k, v);
    }
    rb.send().await.unwrap().status().as_u16()
}

fn cdevent(ty: &str) -> Value {
    json!({
        "context": {"version": "0.4.1", "id": "271069a8-fc18-44f1-b38f-9d70a1695819",
                    "source": "/event/source/123", "type": ty,
                    "timestamp": "2026-12-07T21:00:00Z"},
        "subject": {"id": "mySubject123", "source": "/event/source/123", "type": "change",
                    "content": {"repository": {"id": "cdevents/service1",
                                                "source": "https://example.org"}}}
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn oidc_gcr_and_cdevents_receivers() {
    let env = ferroflux_testenv::TestEnv::start(ferroflux_testenv::Options::default())
        .await
        .unwrap();
    let client: Client = env.client().await.unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in ferroflux_api::crdgen::crd_objects().unwrap() {
        if crd.spec.group == "notification.toolkit.fluxcd.io"
            || crd.spec.group == "source.toolkit.fluxcd.io"
        {
            crds.create(&PostParams::default(), &crd).await.unwrap();
        }
    }
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

    let index = ReceiverIndex::default();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let s = shutdown.clone();
    tokio::spawn(run::<Receiver, _>(
        client.clone(),
        DriverConfig {
            controller: "receiver".into(),
            group: "notification.toolkit.fluxcd.io".into(),
            kind: "Receiver".into(),
            concurrency: 4,
            min_retry_delay: Duration::from_millis(200),
            max_retry_delay: Duration::from_secs(2),
            jitter_percentage: 0,
            namespace: None,
            label_selector: String::new(),
        },
        ReceiverReconciler {
            recorder: EventRecorder::new(client.clone(), "notification-controller", ""),
        },
        Metrics::new(),
        None,
        vec![index.tap()],
        async move { s.cancelled().await },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut server = ReceiverServer::new(client.clone(), index.clone(), false);
    // Google's keys are served by the test issuer here.
    server.google_certs_url = format!("{issuer}/keys");
    let app = router(server);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let http = reqwest::Client::new();

    // Paths: generic-oidc has no Secret, so its path comes from name and namespace only.
    for (name, token) in [("oidc", ""), ("gcr", "gcr-token"), ("cdevents", "cd-token")] {
        let path = path_for(token, name);
        wait_for(&format!("receiver {name} ready"), 30, || {
            let receivers = receivers.clone();
            let index = index.clone();
            let path = path.clone();
            async move {
                let r = receivers.get(name).await.ok()?;
                let st = r.status.clone()?;
                (st.webhook_path.as_deref() == Some(path.as_str())
                    && index.by_path(&path).is_some_and(|x| x.status == r.status))
                .then_some(())
            }
        })
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
    let url = format!("http://{addr}{}", path_for("", "oidc"));
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
        assert_eq!(
            post(&http, url.clone(), &headers, "{}".into()).await,
            code,
            "{what}"
        );
    }
    assert_eq!(annotated(&repos, "oidc-app").await, None);
    // Valid but the resourceFilter (over claims) rejects it: 200, nothing annotated.
    let filtered = keys.es256(&claims(json!({"repository": "org/other"})));
    assert_eq!(
        post(&http, url.clone(), &bearer(filtered), "{}".into()).await,
        200
    );
    assert_eq!(annotated(&repos, "oidc-app").await, None);
    let good = keys.es256(&claims(json!({})));
    assert_eq!(
        post(&http, url.clone(), &bearer(good), "{}".into()).await,
        200
    );
    assert!(annotated(&repos, "oidc-app").await.is_some());

    // gcr: a Pub/Sub push with the registry event base64-encoded in message.data.
    let url = format!("http://{addr}{}", path_for("gcr-token", "gcr"));
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
            post(&http, url.clone(), &bearer(token), push.clone()).await,
            400,
            "{what}"
        );
    }
    assert_eq!(post(&http, url.clone(), &[], push.clone()).await, 400);
    assert_eq!(annotated(&repos, "gcr-app").await, None);
    assert_eq!(
        post(&http, url.clone(), &bearer(google(json!({}))), push).await,
        200
    );
    assert!(annotated(&repos, "gcr-app").await.is_some());

    // cdevents: a CloudEvent in binary mode, the CDEvent as its data.
    let url = format!("http://{addr}{}", path_for("cd-token", "cdevents"));
    let ce = |ty: &str| {
        vec![
            ("Content-Type", "application/json".to_string()),
            ("Ce-Specversion", "1.0".to_string()),
            ("Ce-Id", "271069a8-fc18-44f1-b38f-9d70a1695819".to_string()),
            ("Ce-Source", "/event/source/123".to_string()),
            ("Ce-Type", ty.to_string()),
        ]
    };
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
        assert_eq!(
            post(&http, url.clone(), &headers, body).await,
            400,
            "{what}"
        );
    }
    assert_eq!(annotated(&repos, "cd-app").await, None);
    assert_eq!(
        post(&http, url.clone(), &ce(merged), cdevent(merged).to_string()).await,
        200
    );
    assert!(annotated(&repos, "cd-app").await.is_some());
    shutdown.cancel();
}
