//! `spec.provider: github`: a GitHub App's key is exchanged for an installation token at a
//! small stand-in for the GitHub API (it checks the app JWT's RS256 signature with `openssl`
//! against the app's public key, its issuer and its validity window), and the token is then
//! accepted by `git http-backend` behind basic auth as `x-access-token`.

use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use ferroflux_api::conditions as cond;
use serde_json::json;
use source_controller::gitrepository::{PipelineResult, Settings, run_pipeline};
use source_controller::storage::{DigestAlgo, Storage};

use crate::support::{FakeLookup, Repos, git_repository, http_git};

const APP_ID: &str = "4242";
const INSTALLATION: &str = "77";
const TOKEN: &str = "ghs_installationtoken123";

struct Api {
    public_pem: std::path::PathBuf,
    work: std::path::PathBuf,
    calls: Mutex<Vec<String>>,
}

/// `POST /app/installations/{id}/access_tokens`, as GitHub answers it for a valid app JWT.
async fn access_tokens(
    State(api): State<Arc<Api>>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> (StatusCode, String) {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(jwt) = auth.strip_prefix("Bearer ") else {
        return (StatusCode::UNAUTHORIZED, "no bearer".into());
    };
    let parts: Vec<&str> = jwt.split('.').collect();
    if parts.len() != 3 {
        return (StatusCode::UNAUTHORIZED, "not a JWT".into());
    }
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header: serde_json::Value = serde_json::from_slice(&b64.decode(parts[0]).unwrap()).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    // The signature, checked by openssl (not by the code under test).
    let n = api.calls.lock().unwrap().len();
    let input = api.work.join(format!("input{n}"));
    let sig = api.work.join(format!("sig{n}"));
    std::fs::write(&input, format!("{}.{}", parts[0], parts[1])).unwrap();
    std::fs::write(&sig, b64.decode(parts[2]).unwrap()).unwrap();
    let verified = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(&api.public_pem)
        .arg("-signature")
        .arg(&sig)
        .arg(&input)
        .output()
        .expect("openssl is installed")
        .status
        .success();
    let now = jiff::Timestamp::now().as_second();
    let iat = claims["iat"].as_i64().unwrap_or(i64::MAX);
    let exp = claims["exp"].as_i64().unwrap_or(0);
    api.calls.lock().unwrap().push(id.clone());
    if !verified
        || header["alg"] != "RS256"
        || claims["iss"] != APP_ID
        || iat > now
        || exp <= now
        || exp - iat > 660
    {
        return (
            StatusCode::UNAUTHORIZED,
            format!("bad JWT: verified={verified} header={header} claims={claims}"),
        );
    }
    if id != INSTALLATION {
        return (StatusCode::NOT_FOUND, "no such installation".into());
    }
    (
        StatusCode::CREATED,
        json!({"token": TOKEN, "expires_at": "2099-01-01T00:00:00Z"}).to_string(),
    )
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is installed");
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn github_app_installation_token() {
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("app.pem");
    let public = keys.path().join("app.pub.pem");
    let other = keys.path().join("other.pem");
    // GitHub hands out PKCS#1 ("RSA PRIVATE KEY") app keys.
    openssl(&[
        "genrsa",
        "-traditional",
        "-out",
        key.to_str().unwrap(),
        "2048",
    ]);
    openssl(&[
        "rsa",
        "-in",
        key.to_str().unwrap(),
        "-pubout",
        "-out",
        public.to_str().unwrap(),
    ]);
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        other.to_str().unwrap(),
    ]);

    let api = Arc::new(Api {
        public_pem: public.clone(),
        work: keys.path().to_path_buf(),
        calls: Mutex::new(Vec::new()),
    });
    let router = axum::Router::new()
        .route(
            "/api/v3/app/installations/{id}/access_tokens",
            axum::routing::post(access_tokens),
        )
        .with_state(api.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let repos = Repos::new();
    let c = repos.commit("app", &[("app.yaml", "a: 1\n")], "first");
    repos.publish("app");
    let http = http_git(&repos.base(), "x-access-token", TOKEN).await;
    let url = format!("http://{}/app.git", http.addr);
    let base = format!("http://{api_addr}/api/v3");
    let pem = std::fs::read(&key).unwrap();
    let other_pem = std::fs::read(&other).unwrap();
    let app = |pem: &[u8], installation: &str| -> Vec<(&'static str, Vec<u8>)> {
        vec![
            ("githubAppID", APP_ID.as_bytes().to_vec()),
            ("githubAppInstallationID", installation.as_bytes().to_vec()),
            ("githubAppPrivateKey", pem.to_vec()),
            ("githubAppBaseURL", base.as_bytes().to_vec()),
        ]
    };
    let basic = vec![
        ("username", b"x-access-token".to_vec()),
        ("password", TOKEN.as_bytes().to_vec()),
    ];
    let mut lookup = FakeLookup::default();
    for (name, data) in [
        ("app", app(&pem, INSTALLATION)),
        ("wrong-key", app(&other_pem, INSTALLATION)),
        ("wrong-installation", app(&pem, "78")),
        ("basic", basic),
    ] {
        let pairs: Vec<(&str, &[u8])> = data.iter().map(|(k, v)| (*k, v.as_slice())).collect();
        lookup = lookup.with_secret(name, &pairs);
    }

    let dir = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let storage = Storage::new(
        dir.path(),
        "localhost:9090",
        std::time::Duration::from_secs(60),
        2,
        DigestAlgo::Sha256,
    )
    .unwrap();
    let run = |name: &str, spec: serde_json::Value| {
        let obj = git_repository(name, 1, spec);
        let (storage, lookup, scratch) = (&storage, &lookup, scratch.path());
        async move { run_pipeline(&obj, storage, lookup, &Settings::default(), scratch).await }
    };
    let ready = |out: &source_controller::gitrepository::PipelineOutput| {
        let c = cond::get(out.status.conditions.as_deref().unwrap(), cond::READY)
            .cloned()
            .unwrap();
        (c.status, c.reason, c.message)
    };

    // The app's token opens the repository.
    let out = run(
        "gh",
        json!({"url": url, "provider": "github", "ref": {"branch": "main"}, "secretRef": {"name": "app"}}),
    )
    .await;
    assert_eq!(out.result, PipelineResult::Success, "{:?}", ready(&out));
    assert_eq!(
        out.status.artifact.unwrap().revision,
        format!("main@sha1:{c}")
    );
    assert_eq!(api.calls.lock().unwrap().as_slice(), [INSTALLATION]);

    // Failures, each with upstream's reason.
    let cases = [
        (
            "wrong-key",
            json!({"url": url, "provider": "github", "secretRef": {"name": "wrong-key"}}),
            "AuthenticationFailed",
            "failed to configure authentication options: could not refresh installation id 77's token: received non 2xx response status \"401 Unauthorized\"",
            false,
        ),
        (
            "wrong-installation",
            json!({"url": url, "provider": "github", "secretRef": {"name": "wrong-installation"}}),
            "AuthenticationFailed",
            "received non 2xx response status \"404 Not Found\"",
            false,
        ),
        (
            "no-secret",
            json!({"url": url, "provider": "github"}),
            "InvalidProviderConfiguration",
            "secretRef with github app data must be specified when provider is set to github",
            true,
        ),
        (
            "no-app-data",
            json!({"url": url, "provider": "github", "secretRef": {"name": "basic"}}),
            "InvalidProviderConfiguration",
            "secretRef with github app data must be specified when provider is set to github",
            false,
        ),
        (
            "app-data-generic",
            json!({"url": url, "secretRef": {"name": "app"}}),
            "InvalidProviderConfiguration",
            "secretRef 'default/app' has github app data but provider is not set to github",
            false,
        ),
        (
            "azure",
            json!({"url": url, "provider": "azure"}),
            "AuthenticationFailed",
            "failed to configure authentication options: provider 'azure'",
            false,
        ),
    ];
    for (name, spec, reason, needle, stalled) in cases {
        let out = run(name, spec).await;
        let (s, r, m) = ready(&out);
        assert_eq!((s.as_str(), r.as_str()), ("False", reason), "{name}: {m}");
        assert!(m.contains(needle), "{name}: {m}");
        assert!(
            !m.contains(TOKEN) && !m.contains("BEGIN"),
            "{name}: no secrets in {m}"
        );
        assert_eq!(
            matches!(out.result, PipelineResult::Stalled { .. }),
            stalled,
            "{name}"
        );
        assert!(out.status.artifact.is_none(), "{name}");
    }
}
