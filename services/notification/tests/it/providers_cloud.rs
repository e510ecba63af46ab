//! googlepubsub and azureeventhub against local HTTP servers: the captured requests carry the
//! event as upstream's notifiers send it (Pub/Sub: one message whose data is the event JSON and
//! whose attributes are the Secret's headers; Event Hubs: one event whose body is the event
//! JSON), with the credentials upstream's clients derive from the Provider (a self-signed
//! service account JWT or a refreshed user token for Pub/Sub; a SAS token from the connection
//! string or the JWT for Event Hubs). The real Pub/Sub emulator is in `peers.rs`.

use std::time::Duration;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{self, KeyPair};
use base64::Engine;
use ferroflux_api::provider::ProviderType;
use notification_controller::providers::{self, Settings};
use serde_json::{Value, json};

use crate::providers::{BODY_INFO, info_event};
use crate::support::{Capture, Captured};

fn b64url_decode(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

/// A service account key file as Google issues it (PKCS#8 PEM private key).
fn service_account(key: &aws_lc_rs::rsa::KeyPair) -> String {
    let der = key.as_der().unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap());
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    json!({"type": "service_account", "project_id": "my-proj", "private_key_id": "key-1",
           "private_key": pem, "client_email": "flux@my-proj.iam.gserviceaccount.com",
           "client_id": "1234", "token_uri": "https://oauth2.googleapis.com/token"})
    .to_string()
}

async fn send(kind: ProviderType, s: &Settings) -> Result<(), String> {
    let delivery = providers::build(kind, s, &info_event())?;
    tokio::time::timeout(
        Duration::from_secs(10),
        providers::send(&delivery, s, &reqwest::Client::new()),
    )
    .await
    .expect("delivery within 10s")
}

/// The publish request upstream's client sends for the info event, as REST JSON.
fn publish_body(attributes: Option<Value>) -> String {
    let data = base64::engine::general_purpose::STANDARD.encode(BODY_INFO);
    let mut message = json!({"data": data});
    if let Some(a) = attributes {
        message["attributes"] = a;
    }
    json!({"messages": [message]}).to_string()
}

fn assert_publish(c: &Captured, body: &str) {
    assert_eq!(c.method, "POST");
    assert_eq!(c.path, "/v1/projects/my-proj/topics/flux-events:publish");
    assert_eq!(c.header("content-type"), Some("application/json"));
    assert_eq!(c.body_str(), body);
    // The message data is exactly the event JSON upstream marshals.
    let sent: Value = c.json();
    let data = base64::engine::general_purpose::STANDARD
        .decode(sent["messages"][0]["data"].as_str().unwrap())
        .unwrap();
    assert_eq!(data, BODY_INFO.as_bytes());
}

#[tokio::test]
async fn googlepubsub_with_a_service_account_key() {
    let cap = Capture::start().await;
    // The first matching prefix answers.
    cap.answer(
        "/v1/projects/my-proj/topics/denied",
        403,
        Duration::ZERO,
        "",
    );
    cap.answer("/v1/", 200, Duration::ZERO, r#"{"messageIds":["1"]}"#);
    let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let mut s = Settings {
        url: "my-proj".into(),
        channel: "flux-events".into(),
        token: service_account(&key),
        api_base: cap.url(""),
        ..Default::default()
    };
    s.headers.insert("env".into(), "prod".into());
    s.headers.insert("team".into(), "platform".into());
    let before = jiff::Timestamp::now().as_second();
    send(ProviderType::GooglePubSub, &s).await.unwrap();
    let c = cap.next(Duration::from_secs(5)).await;
    assert_publish(
        &c,
        &publish_body(Some(json!({"env": "prod", "team": "platform"}))),
    );

    // A self-signed JWT (no token exchange): RS256 with the key id, the account as issuer and
    // subject, the client's default scopes, an hour of validity, signed by the account's key.
    let bearer = c.header("authorization").unwrap();
    let jwt = bearer.strip_prefix("Bearer ").unwrap();
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    assert_eq!(
        String::from_utf8(b64url_decode(parts[0])).unwrap(),
        r#"{"alg":"RS256","typ":"JWT","kid":"key-1"}"#
    );
    let claims: Value = serde_json::from_slice(&b64url_decode(parts[1])).unwrap();
    assert_eq!(claims["iss"], "flux@my-proj.iam.gserviceaccount.com");
    assert_eq!(claims["sub"], "flux@my-proj.iam.gserviceaccount.com");
    assert_eq!(
        claims["scope"],
        "https://www.googleapis.com/auth/cloud-platform https://www.googleapis.com/auth/pubsub"
    );
    let iat = claims["iat"].as_i64().unwrap();
    assert!(iat >= before && iat <= jiff::Timestamp::now().as_second());
    assert_eq!(claims["exp"].as_i64().unwrap() - iat, 3600);
    signature::UnparsedPublicKey::new(
        &signature::RSA_PKCS1_2048_8192_SHA256,
        key.public_key().as_ref(),
    )
    .verify(
        format!("{}.{}", parts[0], parts[1]).as_bytes(),
        &b64url_decode(parts[2]),
    )
    .expect("signed by the service account's key");

    // No headers: no attributes (upstream sets them to nil).
    s.headers.clear();
    send(ProviderType::GooglePubSub, &s).await.unwrap();
    assert_publish(&cap.next(Duration::from_secs(5)).await, &publish_body(None));

    // The topic refuses: the error names the topic as upstream's does.
    s.channel = "denied".into();
    let err = send(ProviderType::GooglePubSub, &s).await.unwrap_err();
    assert!(
        err.starts_with("error publishing to GCP Pub/Sub topic projects/my-proj/topics/denied: "),
        "{err}"
    );
    assert!(err.contains("403"), "{err}");
    assert!(!err.contains("PRIVATE KEY"), "{err}");
}

#[tokio::test]
async fn googlepubsub_with_user_credentials_and_refusals() {
    let token_server = Capture::start().await;
    token_server.answer(
        "/token",
        200,
        Duration::ZERO,
        r#"{"access_token":"ya29.user-token","expires_in":3599,"token_type":"Bearer"}"#,
    );
    let cap = Capture::start().await;
    cap.answer("/v1/", 200, Duration::ZERO, r#"{"messageIds":["2"]}"#);
    let creds = json!({"type": "authorized_user", "client_id": "cid.apps.googleusercontent.com",
                       "client_secret": "c-secret", "refresh_token": "1//refresh",
                       "token_uri": token_server.url("/token")});
    let s = Settings {
        url: "my-proj".into(),
        channel: "flux-events".into(),
        token: creds.to_string(),
        api_base: cap.url(""),
        ..Default::default()
    };
    send(ProviderType::GooglePubSub, &s).await.unwrap();
    let t = token_server.next(Duration::from_secs(5)).await;
    assert_eq!((t.method.as_str(), t.path.as_str()), ("POST", "/token"));
    assert_eq!(
        t.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        t.body_str(),
        "client_id=cid.apps.googleusercontent.com&client_secret=c-secret&grant_type=refresh_token&refresh_token=1%2F%2Frefresh"
    );
    let c = cap.next(Duration::from_secs(5)).await;
    assert_publish(&c, &publish_body(None));
    assert_eq!(c.header("authorization"), Some("Bearer ya29.user-token"));

    // Upstream's construction errors, and what ferroflux cannot do (workload identity, other
    // credential types) said plainly.
    let refused = |f: fn(&mut Settings)| {
        let mut bad = s.clone();
        f(&mut bad);
        providers::build(ProviderType::GooglePubSub, &bad, &info_event()).unwrap_err()
    };
    assert_eq!(refused(|s| s.url.clear()), "GCP project ID cannot be empty");
    assert_eq!(
        refused(|s| s.channel.clear()),
        "GCP Pub/Sub topic ID cannot be empty"
    );
    assert!(refused(|s| s.token.clear()).contains("workload identity is not supported"));
    assert!(
        refused(|s| s.token = json!({"type": "external_account"}).to_string())
            .contains("\"external_account\" is not supported")
    );
    assert!(refused(|s| s.token = "not json".into()).starts_with("credentials: invalid JSON"));
}

#[tokio::test]
async fn azureeventhub_with_a_connection_string_and_with_a_token() {
    let cap = Capture::start().await;
    cap.answer("/flux", 201, Duration::ZERO, "");
    // The development emulator form of a connection string: plain HTTP to localhost:<port>.
    let s = Settings {
        url: format!(
            "Endpoint=sb://localhost:{}/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=c2VjcmV0LWtleQ==;EntityPath=flux;UseDevelopmentEmulator=true",
            cap.addr.port()
        ),
        ..Default::default()
    };
    let before = jiff::Timestamp::now().as_second();
    send(ProviderType::AzureEventHub, &s).await.unwrap();
    let c = cap.next(Duration::from_secs(5)).await;
    assert_eq!(c.method, "POST");
    assert_eq!(c.path, "/flux/messages?timeout=60&api-version=2014-01");
    assert_eq!(
        c.header("content-type"),
        Some("application/atom+xml;type=entry;charset=utf-8")
    );
    // The event body upstream adds to its batch: json.Marshal(event).
    assert_eq!(c.body_str(), BODY_INFO);
    // The SAS token, checked as Service Bus checks it: HMAC-SHA256 keyed with the key (as
    // given, not decoded) over the URL-encoded resource and the expiry.
    let sas = c.header("authorization").unwrap();
    let rest = sas.strip_prefix("SharedAccessSignature ").unwrap();
    let fields: std::collections::BTreeMap<&str, &str> = rest
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let resource = format!("http%3A%2F%2Flocalhost%3A{}%2Fflux", cap.addr.port());
    assert_eq!(fields["sr"], resource);
    assert_eq!(fields["skn"], "RootManageSharedAccessKey");
    let se: i64 = fields["se"].parse().unwrap();
    assert!(se >= before + 3600 && se <= jiff::Timestamp::now().as_second() + 3600);
    let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, b"c2VjcmV0LWtleQ==");
    let want = base64::engine::general_purpose::STANDARD
        .encode(aws_lc_rs::hmac::sign(&k, format!("{resource}\n{se}").as_bytes()).as_ref());
    let sig = fields["sig"]
        .replace("%2B", "+")
        .replace("%2F", "/")
        .replace("%3D", "=");
    assert_eq!(sig, want);

    // A JWT: address = hub, channel = namespace, the token as bearer.
    let t = Settings {
        url: "flux".into(),
        channel: "my-namespace".into(),
        token: "eyJ.jwt.sig".into(),
        api_base: cap.url(""),
        ..Default::default()
    };
    send(ProviderType::AzureEventHub, &t).await.unwrap();
    let c = cap.next(Duration::from_secs(5)).await;
    assert_eq!(c.path, "/flux/messages?timeout=60&api-version=2014-01");
    assert_eq!(c.header("authorization"), Some("Bearer eyJ.jwt.sig"));
    assert_eq!(c.body_str(), BODY_INFO);
    // Where it goes without the test override: the namespace made fully qualified.
    let mut real = t.clone();
    real.api_base.clear();
    let built = providers::build(ProviderType::AzureEventHub, &real, &info_event()).unwrap();
    let providers::Delivery::AzureEventHub(plan) = built else {
        panic!("an Event Hubs delivery")
    };
    assert_eq!(
        plan.request.url,
        "https://my-namespace.servicebus.windows.net/flux/messages?timeout=60&api-version=2014-01"
    );

    // Refused as upstream refuses (and workload identity, which ferroflux lacks, said so).
    let refused = |f: fn(&mut Settings)| {
        let mut bad = s.clone();
        f(&mut bad);
        providers::build(ProviderType::AzureEventHub, &bad, &info_event()).unwrap_err()
    };
    assert_eq!(
        refused(|s| s.url.clear()),
        "invalid authentication options: endpoint URL cannot be empty"
    );
    assert_eq!(
        refused(|s| s.token = "jwt".into()),
        "invalid authentication options: jwt token and SAS authentication cannot be set at the same time"
    );
    assert_eq!(
        refused(|s| s.url = s.url.replace(";EntityPath=flux", "")),
        "failed to create a eventhub using SAS: connection string does not contain an EntityPath. eventHub cannot be an empty string"
    );
    assert!(
        refused(|s| {
            s.url = "flux".into();
            s.channel = "ns".into();
        })
        .contains("workload identity is not supported")
    );
    // A refused send names neither key nor token.
    cap.answer("/denied", 401, Duration::ZERO, "");
    let mut denied = s.clone();
    denied.url = denied.url.replace("EntityPath=flux", "EntityPath=denied");
    let err = send(ProviderType::AzureEventHub, &denied)
        .await
        .unwrap_err();
    assert!(err.starts_with("failed to send msg: "), "{err}");
    assert!(!err.contains("c2VjcmV0LWtleQ"), "{err}");
}
