//! Receivers end to end, one cluster for every type: notification-controller and
//! source-controller as processes, one GitRepository per Receiver. For each type, a request as
//! the real sender makes it (signatures, tokens, event headers, a CloudEvent, an OIDC token from
//! a test issuer) gets 200, annotates that Receiver's GitRepository and no other, and
//! source-controller has handled the request (`status.lastHandledReconcileAt` = the annotation)
//! within a second; a wrong request first gets upstream's 400 and annotates nothing.
//!
//! `gcr` is the one type not here: its tokens are checked against Google's keys at a fixed URL
//! the controller process cannot be pointed away from; it is covered with a test issuer in
//! services/notification/tests/it/receivers_tokens.rs.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ferroflux_api::{GitRepository, Receiver};
use ferroflux_e2e::{Cluster, NOTIFICATION, SOURCE};
use ferroflux_testsupport::webhooks::{
    GITHUB_PAYLOAD, GITHUB_SECRET, GITHUB_SIGNATURE, Hmac, Keys, cdevent, cloudevent_headers,
    hmac_hex, serve_issuer,
};
use kube::ResourceExt;
use kube::api::Api;
use serde_json::{Value, json};

use crate::{CONVERGE, configmap};

const TOKEN: &str = "e2e-receiver-token";

/// One request: headers and body.
type Request = (Vec<(&'static str, String)>, String);

/// One Receiver type: its spec (without `resources`), a valid request, and a refused one.
struct Case {
    kind: &'static str,
    spec: Value,
    valid: Request,
    /// A request upstream refuses with 400.
    refused: Request,
}

fn hmac_sig(prefix: &str, alg: Hmac, body: &str) -> String {
    format!("{prefix}={}", hmac_hex(alg, TOKEN, body.as_bytes()))
}

fn cases(issuer: &str, keys: &Keys, other_keys: &Keys) -> Vec<Case> {
    let token = json!({"name": "webhook-token"});
    let json_ct = ("Content-Type", "application/json".to_string());
    let bitbucket = r#"{"eventKey":"repo:refs_changed","repository":{"slug":"app"}}"#;
    let nexus = r#"{"action":"CREATED","repositoryName":"charts"}"#;
    let merged = "dev.cdevents.change.merged.0.2.0";
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = json!({"iss": issuer, "aud": "flux", "sub": "repo:org/app",
                        "repository": "org/app", "iat": now, "exp": now + 600});
    vec![
        Case {
            kind: "generic",
            // generic checks nothing but the path; with a resource filter over the body, a body
            // that is not JSON is refused (upstream: 500).
            spec: json!({"type": "generic", "secretRef": token,
                         "resourceFilter": "req.ref == 'refs/heads/main'"}),
            valid: (vec![json_ct.clone()], r#"{"ref":"refs/heads/main"}"#.into()),
            refused: (vec![json_ct.clone()], "{not json".into()),
        },
        Case {
            kind: "generic-hmac",
            spec: json!({"type": "generic-hmac", "secretRef": token}),
            valid: (
                vec![("X-Signature", hmac_sig("sha512", Hmac::Sha512, "payload"))],
                "payload".into(),
            ),
            refused: (
                vec![("X-Signature", hmac_sig("sha256", Hmac::Sha256, "other"))],
                "payload".into(),
            ),
        },
        Case {
            kind: "github",
            spec: json!({"type": "github", "events": ["push"],
                         "secretRef": {"name": "github-token"}}),
            valid: (
                vec![
                    json_ct.clone(),
                    ("X-GitHub-Event", "push".into()),
                    ("X-Hub-Signature-256", GITHUB_SIGNATURE.into()),
                ],
                GITHUB_PAYLOAD.into(),
            ),
            refused: (
                vec![
                    json_ct.clone(),
                    ("X-GitHub-Event", "issues".into()),
                    ("X-Hub-Signature-256", GITHUB_SIGNATURE.into()),
                ],
                GITHUB_PAYLOAD.into(),
            ),
        },
        Case {
            kind: "gitlab",
            spec: json!({"type": "gitlab", "events": ["Push Hook"], "secretRef": token}),
            valid: (
                vec![
                    ("X-Gitlab-Token", TOKEN.into()),
                    ("X-Gitlab-Event", "Push Hook".into()),
                ],
                r#"{"object_kind":"push"}"#.into(),
            ),
            refused: (
                vec![
                    ("X-Gitlab-Token", "wrong".into()),
                    ("X-Gitlab-Event", "Push Hook".into()),
                ],
                r#"{"object_kind":"push"}"#.into(),
            ),
        },
        Case {
            kind: "bitbucket",
            spec: json!({"type": "bitbucket", "events": ["repo:refs_changed"],
                         "secretRef": token}),
            valid: (
                vec![
                    json_ct.clone(),
                    ("X-Event-Key", "repo:refs_changed".into()),
                    (
                        "X-Hub-Signature",
                        hmac_sig("sha256", Hmac::Sha256, bitbucket),
                    ),
                ],
                bitbucket.into(),
            ),
            refused: (
                vec![
                    json_ct.clone(),
                    ("X-Event-Key", "repo:refs_changed".into()),
                    ("X-Hub-Signature", hmac_sig("sha256", Hmac::Sha256, "{}")),
                ],
                bitbucket.into(),
            ),
        },
        Case {
            kind: "harbor",
            spec: json!({"type": "harbor", "secretRef": token}),
            valid: (
                vec![json_ct.clone(), ("Authorization", TOKEN.into())],
                r#"{"type":"PUSH_ARTIFACT"}"#.into(),
            ),
            refused: (
                vec![json_ct.clone(), ("Authorization", "Bearer nope".into())],
                r#"{"type":"PUSH_ARTIFACT"}"#.into(),
            ),
        },
        Case {
            kind: "dockerhub",
            spec: json!({"type": "dockerhub", "secretRef": token}),
            valid: (
                vec![json_ct.clone()],
                r#"{"push_data":{"tag":"latest"},"repository":{"repo_name":"org/app"}}"#.into(),
            ),
            refused: (vec![json_ct.clone()], "not json".into()),
        },
        Case {
            kind: "quay",
            spec: json!({"type": "quay", "secretRef": token}),
            valid: (
                vec![json_ct.clone()],
                r#"{"repository":"org/app","updated_tags":["latest"]}"#.into(),
            ),
            refused: (vec![json_ct.clone()], "not json".into()),
        },
        Case {
            kind: "nexus",
            spec: json!({"type": "nexus", "secretRef": token}),
            valid: (
                vec![(
                    "X-Nexus-Webhook-Signature",
                    hmac_hex(Hmac::Sha1, TOKEN, nexus.as_bytes()),
                )],
                nexus.into(),
            ),
            refused: (
                vec![("X-Nexus-Webhook-Signature", "00".into())],
                nexus.into(),
            ),
        },
        Case {
            kind: "acr",
            spec: json!({"type": "acr", "secretRef": token}),
            valid: (
                vec![json_ct.clone()],
                r#"{"action":"push","target":{"repository":"app","tag":"v1"}}"#.into(),
            ),
            refused: (vec![json_ct.clone()], "not json".into()),
        },
        Case {
            kind: "cdevents",
            spec: json!({"type": "cdevents", "events": [merged], "secretRef": token}),
            valid: (cloudevent_headers(merged), cdevent(merged).to_string()),
            refused: (
                cloudevent_headers("dev.cdevents.change.created.0.3.0"),
                cdevent("dev.cdevents.change.created.0.3.0").to_string(),
            ),
        },
        Case {
            kind: "generic-oidc",
            spec: json!({"type": "generic-oidc",
                         "oidcProviders": [{"issuerURL": issuer, "audience": "flux",
                             "validations": [{"expression": "claims.repository == 'org/app'",
                                              "message": "only org/app"}]}]}),
            valid: (
                vec![("Authorization", format!("Bearer {}", keys.es256(&claims)))],
                "{}".into(),
            ),
            refused: (
                vec![(
                    "Authorization",
                    format!("Bearer {}", other_keys.es256(&claims)),
                )],
                "{}".into(),
            ),
        },
    ]
}

fn requested(r: &GitRepository) -> Option<String> {
    r.annotations()
        .get("reconcile.fluxcd.io/requestedAt")
        .cloned()
}

async fn annotations(repos: &Api<GitRepository>, names: &[String]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for n in names {
        if let Some(a) = requested(&repos.get(n).await.unwrap()) {
            out.insert(n.clone(), a);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn every_receiver_type_gets_its_source_reconciled_within_a_second() {
    let mut cluster = Cluster::start().await.unwrap();
    cluster.start_controller(NOTIFICATION).await.unwrap();
    let repo = cluster
        .repo(
            "org/app",
            &[("cm.yaml", &configmap("settings", &[("a", "1")]))],
        )
        .unwrap();
    let keys = Keys::new();
    let other_keys = Keys::new();
    let issuer = serve_issuer(keys.jwks()).await;
    let table = cases(&issuer, &keys, &other_keys);

    for (name, token) in [("webhook-token", TOKEN), ("github-token", GITHUB_SECRET)] {
        cluster
            .apply(json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": name, "namespace": "flux-system"},
                "stringData": {"token": token}}))
            .await
            .unwrap();
    }
    let names: Vec<String> = table.iter().map(|c| format!("src-{}", c.kind)).collect();
    for (case, source) in table.iter().zip(&names) {
        cluster
            .apply(
                json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                "metadata": {"name": source, "namespace": "flux-system"},
                "spec": {"url": repo.url, "interval": "1h", "ref": {"branch": "main"}}}),
            )
            .await
            .unwrap();
        let mut spec = case.spec.clone();
        spec["resources"] = json!([{"kind": "GitRepository", "name": source}]);
        cluster
            .apply(
                json!({"apiVersion": "notification.toolkit.fluxcd.io/v1", "kind": "Receiver",
                "metadata": {"name": case.kind, "namespace": "flux-system"}, "spec": spec}),
            )
            .await
            .unwrap();
    }
    let repos: Api<GitRepository> = Api::namespaced(cluster.client.clone(), "flux-system");
    let receivers: Api<Receiver> = Api::namespaced(cluster.client.clone(), "flux-system");
    // Every source has its first artifact, and every Receiver its path.
    let deadline = Instant::now() + CONVERGE;
    let mut paths = BTreeMap::new();
    loop {
        let mut missing = Vec::new();
        for (case, source) in table.iter().zip(&names) {
            let r = receivers.get(case.kind).await.unwrap();
            match r.status.and_then(|s| s.webhook_path) {
                Some(p) => {
                    paths.insert(case.kind, p);
                }
                None => missing.push(format!("receiver {}", case.kind)),
            }
            let g = repos.get(source).await.unwrap();
            if g.status.and_then(|s| s.artifact).is_none() {
                missing.push(format!("artifact of {source}"));
            }
        }
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not ready: {missing:?}\n--- notification-controller:\n{}\n--- source-controller:\n{}",
            cluster.log(NOTIFICATION),
            cluster.log(SOURCE)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let http = reqwest::Client::new();
    let send = |path: &str, (headers, body): &Request| {
        let mut rb = http
            .post(format!("http://{}{path}", cluster.notification_receiver))
            .body(body.clone());
        for (k, v) in headers {
            rb = rb.header(*k, v);
        }
        rb.send()
    };
    let mut timings = Vec::new();
    for (case, source) in table.iter().zip(&names) {
        let path = &paths[case.kind];
        // The webhook server follows the watch: 404 until it has the Receiver's status.
        let deadline = Instant::now() + CONVERGE;
        let refused = loop {
            let r = send(path, &case.refused).await.unwrap();
            if r.status().as_u16() != 404 || Instant::now() > deadline {
                break r;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let before = annotations(&repos, &names).await;
        assert_eq!(
            refused.status().as_u16(),
            // A body the resource filter cannot read: upstream answers 500.
            if case.kind == "generic" { 500 } else { 400 },
            "{}: the refused request",
            case.kind
        );
        assert_eq!(
            annotations(&repos, &names).await,
            before,
            "{}: a refused request annotated something",
            case.kind
        );

        let sent = send(path, &case.valid).await.unwrap();
        let t0 = Instant::now();
        assert_eq!(
            sent.status().as_u16(),
            200,
            "{}: {:?}\n--- notification-controller:\n{}",
            case.kind,
            sent.text().await,
            cluster.log(NOTIFICATION)
        );
        // That Receiver's source, and only it, has a new request.
        let after = annotations(&repos, &names).await;
        let annotation = after.get(source).cloned().expect("annotated");
        assert_ne!(before.get(source), Some(&annotation), "{}", case.kind);
        let mut others = after.clone();
        others.remove(source);
        let mut others_before = before.clone();
        others_before.remove(source);
        assert_eq!(
            others, others_before,
            "{}: other sources annotated",
            case.kind
        );
        loop {
            let g = repos.get(source).await.unwrap();
            if g.status.and_then(|s| s.last_handled_reconcile_at) == Some(annotation.clone()) {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(1),
                "{}: source-controller did not handle the request within a second\n--- source-controller:\n{}",
                case.kind,
                cluster.log(SOURCE)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        timings.push((case.kind, t0.elapsed()));
    }
    eprintln!("webhook 200 -> source reconciled: {timings:?}");
}
