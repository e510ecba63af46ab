//! Receiver: the reconciler (webhook path from the token, Ready/TokenNotFound, terminal
//! validation errors) and the webhook server (`--receiverAddr`, `/hook/<sha256(token + name +
//! namespace)>`): request checks per receiver type, then the `reconcile.fluxcd.io/requestedAt`
//! annotation on the selected objects.
//!
//! Status codes as upstream: 404 unknown path, 503 suspended or not ready, 400 when the request
//! fails validation, 413 for bodies over 3 MiB, 500 when an object could not be annotated, 200
//! otherwise.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ferroflux_api::Receiver;
use ferroflux_api::conditions::{self as cond, notification_reason, reason, reason as reasons};
use ferroflux_api::receiver::{ReceiverResourceReference, ReceiverType};
use ferroflux_runtime::driver::WatchTap;
use ferroflux_runtime::events::{EventRecorder, Severity};
use ferroflux_runtime::{Outcome, ReconcileContext, ReconcileError, Reconciler};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};

use crate::intake::MAX_BODY_BYTES;

/// Field manager of the Receiver status.
pub const FIELD_MANAGER: &str = "notification-controller";

/// The path a Receiver is served on: `/hook/<hex sha256(token + name + namespace)>`.
pub fn webhook_path(token: &str, name: &str, namespace: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{token}{name}{namespace}").as_bytes());
    format!("/hook/{}", hex::encode(digest))
}

/// API versions used when a resource reference has none (upstream's defaults).
pub fn default_api_version(kind: &str) -> Option<&'static str> {
    match kind {
        "Bucket" | "HelmChart" | "HelmRepository" | "GitRepository" | "OCIRepository" => {
            Some("source.toolkit.fluxcd.io/v1")
        }
        "ImageRepository" => Some("image.toolkit.fluxcd.io/v1"),
        "ArtifactGenerator" => Some("source.extensions.fluxcd.io/v1beta1"),
        _ => None,
    }
}

/// Where Google's ID token signing keys are (the `gcr` receiver verifies Pub/Sub push tokens
/// with them).
pub const GOOGLE_CERTS_URL: &str = "https://www.googleapis.com/oauth2/v3/certs";

/// Reads the `token` of the Receiver's Secret.
async fn read_token(client: &Client, receiver: &Receiver) -> Result<String, String> {
    let ns = receiver.namespace().unwrap_or_default();
    let Some(r) = &receiver.spec.secret_ref else {
        return Ok(String::new());
    };
    let api: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let secret = api.get(&r.name).await.map_err(|e| {
        format!(
            "unable to read token from secret '{ns}/{}' error: {e}",
            r.name
        )
    })?;
    match secret.data.as_ref().and_then(|d| d.get("token")) {
        Some(v) => Ok(String::from_utf8_lossy(&v.0).to_string()),
        None => Err(format!(
            "invalid '{ns}/{}' secret data: required fields 'token'",
            r.name
        )),
    }
}

/// The terminal configuration errors of a Receiver, in upstream's order: CEL filters, then
/// the OIDC/secretRef rules; plus the types this controller cannot verify yet.
pub fn validate_spec(obj: &Receiver) -> Option<(&'static str, String)> {
    if let Some(f) = obj.spec.resource_filter.as_ref().filter(|f| !f.is_empty())
        && let Err(e) = crate::cel::Expression::new(f)
    {
        return Some((
            reason::INVALID_CEL_EXPRESSION,
            format!("invalid resourceFilter expression: {e}"),
        ));
    }
    for (i, r) in obj.spec.resources.iter().flatten().enumerate() {
        if let Some(f) = r.filter.as_ref().filter(|f| !f.is_empty())
            && let Err(e) = crate::cel::Expression::new(f)
        {
            return Some((
                reason::INVALID_CEL_EXPRESSION,
                format!(
                    "invalid filter expression for resources[{i}] (kind={:?}, name={:?}): {e}",
                    r.kind.as_str(),
                    r.name
                ),
            ));
        }
    }
    let t = obj.spec.r#type;
    let is_oidc = t == Some(ReceiverType::GenericOidc);
    let has_oidc = obj
        .spec
        .oidc_providers
        .as_ref()
        .is_some_and(|p| !p.is_empty());
    let invalid = |m: &str| Some((notification_reason::VALIDATION_FAILED, m.to_string()));
    if is_oidc && !has_oidc {
        return invalid("generic-oidc receiver requires at least one oidcProvider");
    }
    if !is_oidc && has_oidc {
        return invalid("oidcProviders can only be set when type is generic-oidc");
    }
    if is_oidc && obj.spec.secret_ref.is_some() {
        return invalid("secretRef cannot be set when type is generic-oidc");
    }
    if !is_oidc && obj.spec.secret_ref.is_none() {
        return invalid("secretRef is required when type is not generic-oidc");
    }
    if let Some(e) = obj
        .spec
        .oidc_providers
        .as_deref()
        .filter(|p| !p.is_empty())
        .and_then(|p| validate_oidc_providers(p).err())
    {
        return Some(e);
    }
    None
}

/// Upstream's ValidateOIDCProvidersSpec (ValidationFailed) then CompileOIDCProviders
/// (InvalidCELExpression).
fn validate_oidc_providers(
    providers: &[ferroflux_api::receiver::OIDCProvider],
) -> Result<(), (&'static str, String)> {
    let invalid = |m: String| (notification_reason::VALIDATION_FAILED, m);
    let mut seen = std::collections::HashSet::new();
    for (i, p) in providers.iter().enumerate() {
        let iss = &p.issuer_url;
        if iss.is_empty() {
            return Err(invalid(format!(
                "oidcProviders[{i}]: issuerURL is required"
            )));
        }
        if !iss.starts_with("http://") && !iss.starts_with("https://") {
            return Err(invalid(format!(
                "oidcProviders[{i}]: issuerURL {iss:?} must start with http:// or https://"
            )));
        }
        if !seen.insert(iss.clone()) {
            return Err(invalid(format!(
                "oidcProviders[{i}]: duplicate issuerURL {iss:?}"
            )));
        }
        if p.validations.is_empty() {
            return Err(invalid(format!(
                "oidcProviders[{i}] (issuerURL={iss:?}): at least one validation is required; without validations any caller able to obtain a token from this issuer can trigger the Receiver"
            )));
        }
        for (j, v) in p.variables.iter().flatten().enumerate() {
            if v.name.is_empty() {
                return Err(invalid(format!(
                    "oidcProviders[{i}] (issuerURL={iss:?}): variables[{j}]: name is required"
                )));
            }
            if v.expression.is_empty() {
                return Err(invalid(format!(
                    "oidcProviders[{i}] (issuerURL={iss:?}): variables[{j}] (name={:?}): expression is required",
                    v.name
                )));
            }
        }
        for (j, v) in p.validations.iter().enumerate() {
            if v.expression.is_empty() {
                return Err(invalid(format!(
                    "oidcProviders[{i}] (issuerURL={iss:?}): validations[{j}]: expression is required"
                )));
            }
            if v.message.is_empty() {
                return Err(invalid(format!(
                    "oidcProviders[{i}] (issuerURL={iss:?}): validations[{j}]: message is required"
                )));
            }
        }
    }
    for (i, p) in providers.iter().enumerate() {
        if let Err(e) = ClaimsProcessor::new(p) {
            return Err((
                reason::INVALID_CEL_EXPRESSION,
                format!("oidcProviders[{i}] (issuerURL={:?}): {e}", p.issuer_url),
            ));
        }
    }
    Ok(())
}

/// The CEL variables and validations of an OIDC provider (variables `claims`, `vars`).
struct ClaimsProcessor {
    variables: Vec<(String, crate::cel::Expression)>,
    validations: Vec<(crate::cel::Expression, String)>,
}

impl ClaimsProcessor {
    fn new(p: &ferroflux_api::receiver::OIDCProvider) -> Result<Self, String> {
        let mut variables = Vec::new();
        for v in p.variables.iter().flatten() {
            let e = crate::cel::Expression::new(&v.expression)
                .map_err(|e| format!("invalid expression for variable {:?}: {e}", v.name))?;
            variables.push((v.name.clone(), e));
        }
        let mut validations = Vec::new();
        for v in &p.validations {
            let e = crate::cel::Expression::new(&v.expression)
                .map_err(|e| format!("invalid expression for validation {:?}: {e}", v.message))?;
            validations.push((e, v.message.clone()));
        }
        Ok(Self {
            variables,
            validations,
        })
    }

    /// Runs the variables in order, then every validation; failed validations' messages are
    /// joined with `; `.
    fn evaluate(&self, claims: &serde_json::Value) -> Result<(), String> {
        let mut vars = serde_json::Map::new();
        for (name, e) in &self.variables {
            let v = e
                .eval_json(&[
                    ("claims", claims),
                    ("vars", &serde_json::Value::Object(vars.clone())),
                ])
                .map_err(|err| format!("failed to evaluate variable {name:?}: {err}"))?;
            vars.insert(name.clone(), v);
        }
        let vars = serde_json::Value::Object(vars);
        let mut failures = Vec::new();
        for (e, message) in &self.validations {
            let ok = e
                .eval_bool(&[("claims", claims), ("vars", &vars)])
                .map_err(|err| format!("failed to evaluate validation: {err}"))?;
            if !ok {
                failures.push(message.as_str());
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(format!("token validation failed: {}", failures.join("; ")))
        }
    }
}

/// What a successful validation hands on: the body the filters see (the unwrapped event for
/// gcr) and, for generic-oidc, the verified claims.
#[derive(Default)]
pub struct Validated {
    pub body: Option<Vec<u8>>,
    pub claims: Option<serde_json::Value>,
}

/// The CDEvents v0.4 event types (subject.predicate) and the major version the SDK knows.
const CDEVENT_TYPES: &[&str] = &[
    "artifact.deleted",
    "artifact.downloaded",
    "artifact.packaged",
    "artifact.published",
    "artifact.signed",
    "branch.created",
    "branch.deleted",
    "build.finished",
    "build.queued",
    "build.started",
    "change.abandoned",
    "change.created",
    "change.merged",
    "change.reviewed",
    "change.updated",
    "environment.created",
    "environment.deleted",
    "environment.modified",
    "incident.detected",
    "incident.reported",
    "incident.resolved",
    "pipelinerun.finished",
    "pipelinerun.queued",
    "pipelinerun.started",
    "repository.created",
    "repository.deleted",
    "repository.modified",
    "service.deployed",
    "service.published",
    "service.removed",
    "service.rolledback",
    "service.upgraded",
    "taskrun.finished",
    "taskrun.started",
    "testcaserun.finished",
    "testcaserun.queued",
    "testcaserun.skipped",
    "testcaserun.started",
    "testoutput.published",
    "testsuiterun.finished",
    "testsuiterun.queued",
    "testsuiterun.started",
    "ticket.closed",
    "ticket.created",
    "ticket.updated",
];

/// A CDEvent (spec v0.4) as the SDK reads and validates it: the context names a known type
/// (`dev.cdevents.<subject>.<predicate>.<0.x.y>`, or a custom `dev.cdeventsx.` one) and has
/// its required fields; the subject has an id and a content object. The per-type content
/// schemas are not checked.
pub fn validate_cdevent(body: &[u8]) -> Result<(), String> {
    let v: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| format!("unable to validate CDEvent event: {e}"))?;
    let ctx = &v["context"];
    let ty = ctx["type"].as_str().unwrap_or_default();
    let err = |m: String| Err(format!("unable to validate CDEvent event: {m}"));
    if let Some(rest) = ty.strip_prefix("dev.cdevents.") {
        let mut parts = rest.splitn(3, '.');
        let (subject, predicate, version) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        if !CDEVENT_TYPES.contains(&format!("{subject}.{predicate}").as_str()) {
            return err(format!("unknown event type {ty}"));
        }
        if !version.starts_with("0.") {
            return err(format!("sdk event version not compatible with {version}"));
        }
    } else if !ty.starts_with("dev.cdeventsx.") {
        return err(format!("cannot parse event type {ty:?}"));
    }
    for field in ["version", "id", "source", "type", "timestamp"] {
        if ctx[field].as_str().is_none_or(str::is_empty) {
            return err(format!("context.{field} is required"));
        }
    }
    if ctx["timestamp"]
        .as_str()
        .is_some_and(|t| t.parse::<jiff::Timestamp>().is_err())
    {
        return err("context.timestamp is not an RFC 3339 time".into());
    }
    if v["subject"]["id"].as_str().is_none_or(str::is_empty) {
        return err("subject.id is required".into());
    }
    if !v["subject"]["content"].is_object() {
        return err("subject.content is required".into());
    }
    Ok(())
}

/// The Receiver reconciler run by the driver (which owns the finalizer, suspend and requeue).
#[derive(Clone)]
pub struct ReceiverReconciler {
    pub recorder: EventRecorder,
}

impl Reconciler<Receiver> for ReceiverReconciler {
    async fn reconcile(
        &self,
        obj: Arc<Receiver>,
        ctx: ReconcileContext,
    ) -> Result<Outcome, ReconcileError> {
        let old = obj.status.clone().unwrap_or_default();
        let mut status = old.clone();
        let mut conditions = status.conditions.clone().unwrap_or_default();
        let generation = obj.metadata.generation;
        let now = || Time(jiff::Timestamp::now());
        let mut result: Result<Outcome, ReconcileError> = Ok(Outcome::RequeueAtInterval);
        let terminal = validate_spec(&obj);

        if let Some((reason, err)) = terminal {
            let msg = format!("Reconciliation failed terminally due to configuration error: {err}");
            cond::set(
                &mut conditions,
                cond::new_condition(cond::READY, cond::FALSE, reason, &msg, generation, now()),
            );
            cond::set(
                &mut conditions,
                cond::new_condition(cond::STALLED, cond::TRUE, reason, &msg, generation, now()),
            );
            cond::remove(&mut conditions, cond::RECONCILING);
            status.observed_generation = generation;
            tracing::error!(error = %err, "Reconciliation failed terminally due to configuration error");
            self.recorder
                .publish(
                    obj.as_ref(),
                    Severity::Error,
                    reason,
                    &msg,
                    &BTreeMap::new(),
                )
                .await;
            result = Ok(Outcome::AwaitChange);
        } else {
            cond::remove(&mut conditions, cond::STALLED);
            match read_token(&ctx.client, &obj).await {
                Err(e) => {
                    cond::set(
                        &mut conditions,
                        cond::new_condition(
                            cond::READY,
                            cond::FALSE,
                            notification_reason::TOKEN_NOT_FOUND,
                            &e,
                            generation,
                            now(),
                        ),
                    );
                    if let Some(c) = conditions.iter_mut().find(|c| c.type_ == cond::RECONCILING) {
                        c.reason = reasons::PROGRESSING_WITH_RETRY.to_string();
                    } else {
                        cond::set(
                            &mut conditions,
                            cond::new_condition(
                                cond::RECONCILING,
                                cond::TRUE,
                                reasons::PROGRESSING_WITH_RETRY,
                                "Reconciliation in progress",
                                generation,
                                now(),
                            ),
                        );
                    }
                    status.webhook_path = None;
                    result = Err(ReconcileError::new(e));
                }
                Ok(token) => {
                    let path = webhook_path(
                        &token,
                        &obj.name_any(),
                        &obj.namespace().unwrap_or_default(),
                    );
                    let msg = format!("Receiver initialized for path: {path}");
                    cond::set(
                        &mut conditions,
                        cond::new_condition(
                            cond::READY,
                            cond::TRUE,
                            reasons::SUCCEEDED,
                            &msg,
                            generation,
                            now(),
                        ),
                    );
                    cond::remove(&mut conditions, cond::RECONCILING);
                    if status.webhook_path.as_deref() != Some(path.as_str()) {
                        tracing::info!("{msg}");
                    }
                    status.webhook_path = Some(path);
                    status.observed_generation = generation;
                }
            }
        }
        if let Some(v) = obj
            .annotations()
            .get(ferroflux_api::annotations::RECONCILE_REQUESTED_AT)
        {
            status.last_handled_reconcile_at = Some(v.clone());
        }
        status.conditions = Some(conditions);
        let api: Api<Receiver> =
            Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
        ferroflux_runtime::status::patch_status(
            &api,
            &obj.name_any(),
            FIELD_MANAGER,
            &old,
            &status,
        )
        .await
        .map_err(|e| ReconcileError::new(format!("failed to patch status: {e}")))?;
        match &result {
            Err(e) => {
                self.recorder
                    .publish(
                        obj.as_ref(),
                        Severity::Error,
                        reasons::FAILED,
                        &e.message,
                        &BTreeMap::new(),
                    )
                    .await;
            }
            Ok(Outcome::RequeueAtInterval) => {
                let msg = format!(
                    "Reconciliation finished, next run in {}",
                    ferroflux_api::duration::format_go(obj.requeue_after())
                );
                tracing::info!("{msg}");
                self.recorder
                    .publish(
                        obj.as_ref(),
                        Severity::Info,
                        reasons::SUCCEEDED,
                        &msg,
                        &BTreeMap::new(),
                    )
                    .await;
            }
            Ok(_) => {}
        }
        result
    }
}

/// The Receivers known from the driver's watch, for looking them up by webhook path.
#[derive(Clone, Default)]
pub struct ReceiverIndex {
    inner: Arc<RwLock<IndexState>>,
}

#[derive(Default)]
struct IndexState {
    objects: HashMap<(String, String), Arc<Receiver>>,
    /// Objects of a relist in progress.
    staging: Option<HashMap<(String, String), Arc<Receiver>>>,
}

fn key(r: &Receiver) -> (String, String) {
    (r.namespace().unwrap_or_default(), r.name_any())
}

impl ReceiverIndex {
    /// The tap that keeps the index in line with the driver's watch.
    pub fn tap(&self) -> WatchTap<Receiver> {
        let index = self.clone();
        Arc::new(move |event: &watcher::Event<Receiver>| {
            let Ok(mut s) = index.inner.write() else {
                return;
            };
            match event {
                watcher::Event::Apply(r) => {
                    s.objects.insert(key(r), Arc::new(r.clone()));
                }
                watcher::Event::Delete(r) => {
                    s.objects.remove(&key(r));
                }
                watcher::Event::Init => s.staging = Some(HashMap::new()),
                watcher::Event::InitApply(r) => {
                    if let Some(st) = s.staging.as_mut() {
                        st.insert(key(r), Arc::new(r.clone()));
                    }
                }
                watcher::Event::InitDone => {
                    if let Some(st) = s.staging.take() {
                        s.objects = st;
                    }
                }
            }
        })
    }

    /// Adds or replaces a Receiver (for callers without a watch).
    pub fn insert(&self, r: Receiver) {
        if let Ok(mut s) = self.inner.write() {
            s.objects.insert(key(&r), Arc::new(r));
        }
    }

    /// The Receiver whose `status.webhookPath` is `path`.
    pub fn by_path(&self, path: &str) -> Option<Arc<Receiver>> {
        let s = self.inner.read().ok()?;
        s.objects
            .values()
            .find(|r| r.status.as_ref().and_then(|st| st.webhook_path.as_deref()) == Some(path))
            .cloned()
    }
}

/// The webhook server's state.
#[derive(Clone)]
pub struct ReceiverServer {
    pub client: Client,
    pub index: ReceiverIndex,
    pub no_cross_namespace_refs: bool,
    /// For OIDC discovery and signing keys.
    pub http: reqwest::Client,
    /// Google's signing keys for `gcr` push tokens ([`GOOGLE_CERTS_URL`]; tests serve their own).
    pub google_certs_url: String,
}

impl ReceiverServer {
    pub fn new(client: Client, index: ReceiverIndex, no_cross_namespace_refs: bool) -> Self {
        Self {
            client,
            index,
            no_cross_namespace_refs,
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
            google_certs_url: GOOGLE_CERTS_URL.to_string(),
        }
    }
}

/// The router of the webhook server.
pub fn router(server: ReceiverServer) -> axum::Router {
    axum::Router::new()
        .fallback(
            move |uri: axum::http::Uri, headers: HeaderMap, body: axum::body::Body| {
                let server = server.clone();
                async move { server.handle(uri, headers, body).await }
            },
        )
        .layer(axum::extract::DefaultBodyLimit::disable())
}

/// Hex HMAC of `body` with `key`; `algo` is `sha1`, `sha256` or `sha512`.
fn hmac_hex(algo: &str, key: &[u8], body: &[u8]) -> Option<String> {
    use aws_lc_rs::hmac;
    let alg = match algo {
        "sha1" => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        "sha256" => hmac::HMAC_SHA256,
        "sha512" => hmac::HMAC_SHA512,
        _ => return None,
    };
    Some(hex::encode(
        hmac::sign(&hmac::Key::new(alg, key), body).as_ref(),
    ))
}

/// Checks a `<algo>=<hex>` signature of `body` (go-github's ValidateSignature).
pub fn validate_signature(signature: &str, body: &[u8], key: &[u8]) -> Result<(), String> {
    let Some((algo, hex_sig)) = signature.split_once('=') else {
        return Err(format!("error parsing signature {signature:?}"));
    };
    let Some(expected) = hmac_hex(algo, key, body) else {
        return Err(format!("unknown hash type prefix: {algo:?}"));
    };
    let Ok(given) = hex::decode(hex_sig) else {
        return Err(format!("error decoding signature {signature:?}"));
    };
    let Ok(expected) = hex::decode(expected) else {
        return Err("internal error".into());
    };
    if aws_lc_rs::constant_time::verify_slices_are_equal(&given, &expected).is_err() {
        return Err("payload signature check failed".into());
    }
    Ok(())
}

/// go-github's ValidatePayload: the body (JSON, or the `payload` field of a form), checked
/// against `X-Hub-Signature-256` (or `X-Hub-Signature`) when a token is set.
pub fn validate_github_payload(
    headers: &HeaderMap,
    body: &[u8],
    token: &str,
) -> Result<Vec<u8>, String> {
    let content_type = header(headers, "Content-Type");
    let media = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let payload = match media.as_str() {
        "application/json" => body.to_vec(),
        "application/x-www-form-urlencoded" => form_value(body, "payload")
            .ok_or_else(|| "missing form field payload".to_string())?
            .into_bytes(),
        other => {
            return Err(format!(
                "webhook request has unsupported Content-Type {other:?}"
            ));
        }
    };
    if !token.is_empty() {
        let mut sig = header(headers, "X-Hub-Signature-256");
        if sig.is_empty() {
            sig = header(headers, "X-Hub-Signature");
        }
        if sig.is_empty() {
            return Err("missing signature".into());
        }
        // The signature covers the raw body.
        validate_signature(&sig, body, token.as_bytes())?;
    }
    Ok(payload)
}

fn form_value(body: &[u8], field: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    for pair in text.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == field {
            return Some(percent_decode(v));
        }
    }
    None
}

fn percent_decode(s: &str) -> String {
    fn hex_val(c: u8) -> Option<u8> {
        (c as char).to_digit(16).map(|d| d as u8)
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex_val(b[i + 1]), hex_val(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

fn event_allowed(receiver: &Receiver, event: &str) -> bool {
    match receiver.spec.events.as_ref().filter(|e| !e.is_empty()) {
        None => true,
        Some(list) => list.iter().any(|e| e.eq_ignore_ascii_case(event)),
    }
}

/// Go's `time.Time.String()` of now in UTC (the annotation value upstream writes).
pub fn go_time_string(t: jiff::Timestamp) -> String {
    let dt = t.to_zoned(jiff::tz::TimeZone::UTC);
    let nanos = dt.subsec_nanosecond();
    let frac = if nanos == 0 {
        String::new()
    } else {
        format!(".{nanos:09}").trim_end_matches('0').to_string()
    };
    format!("{}{frac} +0000 UTC", dt.strftime("%Y-%m-%d %H:%M:%S"))
}

/// The CEL filters of one request: `resourceFilter` and each resource's `filter`, with the
/// request body (JSON, else `{}`) as `req`.
pub struct Filters {
    top: Option<crate::cel::Expression>,
    per_resource: Vec<Option<crate::cel::Expression>>,
    req: serde_json::Value,
    /// The verified token claims of generic-oidc Receivers (the `claims` variable).
    claims: Option<serde_json::Value>,
}

impl Filters {
    /// `None` when the Receiver has no filter at all.
    pub fn new(
        receiver: &Receiver,
        headers: &HeaderMap,
        body: &[u8],
        claims: Option<serde_json::Value>,
    ) -> Result<Option<Self>, String> {
        let compile = |f: Option<&String>| -> Result<Option<crate::cel::Expression>, String> {
            match f.filter(|f| !f.is_empty()) {
                Some(f) => crate::cel::Expression::new(f).map(Some),
                None => Ok(None),
            }
        };
        let top = compile(receiver.spec.resource_filter.as_ref())?;
        let per_resource = receiver
            .spec
            .resources
            .iter()
            .flatten()
            .map(|r| compile(r.filter.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        if top.is_none() && per_resource.iter().all(Option::is_none) {
            return Ok(None);
        }
        let is_json = header(headers, "Content-Type").split(',').any(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case("application/json")
        });
        let req = if is_json {
            serde_json::from_slice(body)
                .map_err(|e| format!("failed to parse request body as JSON: {e}"))?
        } else {
            serde_json::json!({})
        };
        Ok(Some(Self {
            top,
            per_resource,
            req,
            claims,
        }))
    }

    /// Whether the object (its metadata as JSON) passes the filters of resource `index`.
    pub fn accept(&self, index: usize, res: &serde_json::Value) -> Result<bool, String> {
        let mut vars = vec![("res", res), ("req", &self.req)];
        if let Some(c) = &self.claims {
            vars.push(("claims", c));
        }
        if let Some(top) = &self.top
            && !top.eval_bool(&vars)?
        {
            return Ok(false);
        }
        match self.per_resource.get(index).and_then(Option::as_ref) {
            Some(f) => f.eval_bool(&vars),
            None => Ok(true),
        }
    }
}

impl ReceiverServer {
    async fn handle(
        &self,
        uri: axum::http::Uri,
        headers: HeaderMap,
        body: axum::body::Body,
    ) -> Response {
        let request_uri = uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_default();
        if !request_uri.starts_with("/hook/") {
            return StatusCode::NOT_FOUND.into_response();
        }
        tracing::info!(
            "handling request: {}",
            request_uri.trim_start_matches("/hook/")
        );
        let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
            Ok(b) => b,
            Err(e) => {
                let too_large = e.to_string().contains("length limit exceeded")
                    || std::error::Error::source(&e)
                        .is_some_and(|s| s.to_string().contains("length limit exceeded"));
                return if too_large {
                    StatusCode::PAYLOAD_TOO_LARGE.into_response()
                } else {
                    StatusCode::BAD_REQUEST.into_response()
                };
            }
        };
        let Some(receiver) = self.index.by_path(&request_uri) else {
            return StatusCode::NOT_FOUND.into_response();
        };
        let name = receiver.name_any();
        let ns = receiver.namespace().unwrap_or_default();
        let ready = receiver
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_deref())
            .is_some_and(cond::is_ready);
        if receiver.spec.suspend.unwrap_or(false) || !ready {
            tracing::error!(name = %name, namespace = %ns,
                "unable to process request: receiver is {}",
                if receiver.spec.suspend.unwrap_or(false) { "suspended" } else { "not ready" });
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        let validated = match self.validate(&receiver, &headers, &body).await {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(name = %name, namespace = %ns, error = %e, "unable to validate payload");
                return StatusCode::BAD_REQUEST.into_response();
            }
        };
        let body = validated.body.map(Into::into).unwrap_or(body);
        let filters = match Filters::new(&receiver, &headers, &body, validated.claims) {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(name = %name, namespace = %ns, error = %e,
                    "unable to create resource filters");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        };
        let mut failed = false;
        for (i, resource) in receiver.spec.resources.iter().flatten().enumerate() {
            let filter = filters.as_ref().map(|f| (f, i));
            if let Err(e) = self.request_reconciliation(resource, &ns, filter).await {
                tracing::error!(name = %name, namespace = %ns, error = %e,
                    resource = %format!("{}/{}", resource.kind.as_str(), resource.name),
                    "unable to request reconciliation");
                failed = true;
            }
        }
        if failed {
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        } else {
            StatusCode::OK.into_response()
        }
    }

    async fn validate(
        &self,
        receiver: &Receiver,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Validated, String> {
        let Some(t) = receiver.spec.r#type else {
            return Err("receiver type is empty".into());
        };
        match t {
            ReceiverType::GenericOidc => {
                return Ok(Validated {
                    body: None,
                    claims: Some(self.validate_generic_oidc(receiver, headers).await?),
                });
            }
            ReceiverType::Gcr => {
                return Ok(Validated {
                    body: Some(self.validate_gcr(receiver, headers, body).await?),
                    claims: None,
                });
            }
            _ => {}
        }
        self.validate_with_token(receiver, t, headers, body)
            .await
            .map(|()| Validated::default())
    }

    /// generic-oidc: the bearer token verified against the configured issuer whose URL is the
    /// token's `iss`, then the provider's CEL variables and validations over its claims.
    async fn validate_generic_oidc(
        &self,
        receiver: &Receiver,
        headers: &HeaderMap,
    ) -> Result<serde_json::Value, String> {
        let providers = receiver.spec.oidc_providers.as_deref().unwrap_or_default();
        if providers.is_empty() {
            return Err("generic-oidc receiver has no oidcProviders configured".into());
        }
        let bearer = header(headers, "Authorization");
        let Some(raw) = bearer.strip_prefix("Bearer ") else {
            return Err("the Authorization header is missing or malformed".into());
        };
        let raw = raw.trim();
        if raw.is_empty() {
            return Err("the Authorization header is missing a bearer token".into());
        }
        let iss = crate::oidc::unverified_issuer(raw)
            .map_err(|e| format!("failed to parse bearer token: {e}"))?;
        let Some(p) = providers.iter().find(|p| p.issuer_url == iss) else {
            return Err(format!("no oidcProvider configured for issuer {iss:?}"));
        };
        let audience = p
            .audience
            .as_deref()
            .filter(|a| !a.is_empty())
            .unwrap_or("notification-controller");
        let claims = crate::oidc::verify(&self.http, raw, &p.issuer_url, audience).await?;
        let processor = ClaimsProcessor::new(p).map_err(|e| {
            format!(
                "invalid oidcProvider configuration for issuer {:?}: {e}",
                p.issuer_url
            )
        })?;
        processor.evaluate(&claims)?;
        Ok(claims)
    }

    /// gcr: a Pub/Sub push request whose bearer token is a Google ID token for the Secret's
    /// `audience`, issued by accounts.google.com to the Secret's (verified) `email`; the
    /// filters see the unwrapped registry event (`action`, `digest`, `tag`).
    async fn validate_gcr(
        &self,
        receiver: &Receiver,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Vec<u8>, String> {
        let ns = receiver.namespace().unwrap_or_default();
        let Some(r) = &receiver.spec.secret_ref else {
            return Err("secretRef is required for GCR receivers".into());
        };
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &ns);
        let secret = api
            .get(&r.name)
            .await
            .map_err(|e| format!("unable to read secret, error: {e}"))?;
        let get = |k: &str| {
            secret
                .data
                .as_ref()
                .and_then(|d| d.get(k))
                .map(|v| String::from_utf8_lossy(&v.0).to_string())
                .unwrap_or_default()
        };
        if secret
            .data
            .as_ref()
            .is_none_or(|d| !d.contains_key("token"))
        {
            return Err(format!(
                "unable to read secret, error: invalid \"{ns}/{}\" secret data: required field 'token'",
                r.name
            ));
        }
        let email = get("email");
        if email.is_empty() {
            return Err("invalid secret data: required field 'email' for GCR receiver".into());
        }
        let audience = get("audience");
        if audience.is_empty() {
            return Err("invalid secret data: required field 'audience' for GCR receiver".into());
        }
        self.authenticate_gcr(&header(headers, "Authorization"), &email, &audience)
            .await
            .map_err(|e| format!("cannot authenticate GCR request: {e}"))?;
        #[derive(serde::Deserialize)]
        struct Push {
            message: PushMessage,
        }
        #[derive(serde::Deserialize)]
        struct PushMessage {
            #[serde(default)]
            data: String,
        }
        #[derive(serde::Deserialize, serde::Serialize)]
        struct Data {
            #[serde(default)]
            action: String,
            #[serde(default)]
            digest: String,
            #[serde(default)]
            tag: String,
        }
        let push: Push = serde_json::from_slice(body)
            .map_err(|e| format!("cannot decode GCR webhook payload: {e}"))?;
        use base64::Engine;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(push.message.data.as_bytes())
            .unwrap_or_default();
        let d: Data = serde_json::from_slice(&raw)
            .map_err(|e| format!("cannot decode GCR webhook body: {e}"))?;
        tracing::info!("handling GCR event from {} for tag {}", d.digest, d.tag);
        serde_json::to_vec(&d).map_err(|e| format!("cannot decode GCR webhook body: {e}"))
    }

    /// Google's idtoken validation (signature with Google's keys, audience, expiry), then the
    /// issuer and the verified email.
    async fn authenticate_gcr(
        &self,
        bearer: &str,
        email: &str,
        audience: &str,
    ) -> Result<(), String> {
        let Some(raw) = bearer.strip_prefix("Bearer ") else {
            return Err("the Authorization header is missing or malformed".into());
        };
        let jwt = crate::oidc::decode(raw);
        let got_aud = jwt
            .as_ref()
            .ok()
            .and_then(|j| j.claims["aud"].as_str().map(str::to_string))
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| "<unknown>".into());
        let invalid = |e: String| {
            format!("invalid ID token: audience is '{got_aud}', want '{audience}': {e}")
        };
        let jwt = jwt.map_err(invalid)?;
        let keys = crate::oidc::fetch_keys(&self.http, &self.google_certs_url)
            .await
            .map_err(invalid)?;
        crate::oidc::verify_signature(&jwt, &keys, &["RS256".into(), "ES256".into()])
            .map_err(invalid)?;
        if jwt.claims["aud"].as_str() != Some(audience) {
            return Err(invalid(
                "idtoken: audience provided does not match aud claim in the JWT".to_string(),
            ));
        }
        let exp = jwt.claims["exp"].as_f64().unwrap_or(0.0) as i64;
        if jiff::Timestamp::now().as_second() > exp {
            return Err(invalid("idtoken: token expired".into()));
        }
        let iss = jwt.claims["iss"].as_str().unwrap_or_default();
        if iss != "accounts.google.com" && iss != "https://accounts.google.com" {
            return Err(format!(
                "token issuer is '{iss}', want 'accounts.google.com' or 'https://accounts.google.com'"
            ));
        }
        let got_email = jwt.claims["email"].as_str().unwrap_or_default();
        if got_email != email {
            return Err(format!("token email is '{got_email}', want '{email}'"));
        }
        if jwt.claims["email_verified"].as_bool() != Some(true) {
            return Err(format!("token email '{got_email}' is not verified"));
        }
        Ok(())
    }

    async fn validate_with_token(
        &self,
        receiver: &Receiver,
        t: ReceiverType,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), String> {
        let token = read_token(&self.client, receiver)
            .await
            .map_err(|e| format!("unable to read secret, error: {e}"))?;
        match t {
            ReceiverType::Cdevents => {
                let event = header(headers, "Ce-Type");
                validate_cdevent(body)?;
                if !event_allowed(receiver, &event) {
                    return Err(format!("the CDEvent {event:?} is not authorised"));
                }
                tracing::info!("handling CDEvent: {event}");
                Ok(())
            }
            ReceiverType::Generic => Ok(()),
            ReceiverType::GenericHmac => {
                validate_signature(&header(headers, "X-Signature"), body, token.as_bytes())
                    .map_err(|e| format!("unable to validate HMAC signature: {e}"))
            }
            ReceiverType::Github => {
                validate_github_payload(headers, body, &token)
                    .map_err(|e| format!("the GitHub signature header is invalid, err: {e}"))?;
                let event = header(headers, "X-GitHub-Event");
                if !event_allowed(receiver, &event) {
                    return Err(format!("the GitHub event {event:?} is not authorised"));
                }
                tracing::info!("handling GitHub event: {event}");
                Ok(())
            }
            ReceiverType::Gitlab => {
                if header(headers, "X-Gitlab-Token") != token {
                    return Err(
                        "the X-Gitlab-Token header value does not match the receiver token".into(),
                    );
                }
                let event = header(headers, "X-Gitlab-Event");
                if !event_allowed(receiver, &event) {
                    return Err(format!("the GitLab event {event:?} is not authorised"));
                }
                tracing::info!("handling GitLab event: {event}");
                Ok(())
            }
            ReceiverType::Bitbucket => {
                validate_github_payload(headers, body, &token).map_err(|e| {
                    format!("the Bitbucket server signature header is invalid, err: {e}")
                })?;
                let event = header(headers, "X-Event-Key");
                if !event_allowed(receiver, &event) {
                    return Err(format!(
                        "the Bitbucket server event {event:?} is not authorised"
                    ));
                }
                tracing::info!("handling Bitbucket server event: {event}");
                Ok(())
            }
            ReceiverType::Harbor => {
                if header(headers, "Authorization") != token {
                    return Err(
                        "the Harbor Authorization header value does not match the receiver token"
                            .into(),
                    );
                }
                tracing::info!("handling Harbor event");
                Ok(())
            }
            ReceiverType::Nexus => {
                let sig = header(headers, "X-Nexus-Webhook-Signature");
                if sig.is_empty() {
                    return Err("the Nexus signature is missing from header".into());
                }
                let expected = hmac_hex("sha1", token.as_bytes(), body).unwrap_or_default();
                if aws_lc_rs::constant_time::verify_slices_are_equal(
                    sig.as_bytes(),
                    expected.as_bytes(),
                )
                .is_err()
                {
                    return Err("invalid Nexus signature".into());
                }
                serde_json::from_slice::<serde_json::Value>(body)
                    .map_err(|e| format!("cannot decode Nexus webhook payload: {e}"))?;
                Ok(())
            }
            ReceiverType::Quay => serde_json::from_slice::<serde_json::Value>(body)
                .map(|_| ())
                .map_err(|e| format!("cannot decode Quay webhook payload: {e}")),
            ReceiverType::Dockerhub => serde_json::from_slice::<serde_json::Value>(body)
                .map(|_| ())
                .map_err(|_| "cannot decode DockerHub webhook payload".to_string()),
            ReceiverType::Acr => serde_json::from_slice::<serde_json::Value>(body)
                .map(|_| ())
                .map_err(|e| format!("cannot decode ACR webhook payload: {e}")),
            other => Err(format!("recevier type {other:?} not supported")),
        }
    }

    async fn request_reconciliation(
        &self,
        resource: &ReceiverResourceReference,
        default_namespace: &str,
        filter: Option<(&Filters, usize)>,
    ) -> Result<(), String> {
        let mut namespace = default_namespace.to_string();
        if let Some(ns) = resource.namespace.as_ref().filter(|n| !n.is_empty()) {
            if self.no_cross_namespace_refs && ns != default_namespace {
                return Err("cross-namespace references are not allowed".into());
            }
            namespace = ns.clone();
        }
        let kind = resource.kind.as_str();
        let api_version = match resource.api_version.as_ref().filter(|v| !v.is_empty()) {
            Some(v) => v.clone(),
            None => default_api_version(kind)
                .ok_or_else(|| format!("apiVersion must be specified for kind {kind:?}"))?
                .to_string(),
        };
        let accept = |meta: &kube::core::PartialObjectMeta<DynamicObject>| -> Result<bool, String> {
            let Some((filters, i)) = filter else {
                return Ok(true);
            };
            // As upstream's PartialObjectMetadata: the object's own apiVersion and kind.
            let mut res = serde_json::to_value(meta).map_err(|e| e.to_string())?;
            res["apiVersion"] = serde_json::Value::String(api_version.clone());
            res["kind"] = serde_json::Value::String(kind.to_string());
            let ok = filters.accept(i, &res)?;
            if !ok {
                tracing::debug!(
                    "resource '{}/{}.{}' NOT annotated because CEL expression returned false",
                    resource.kind.as_str(),
                    meta.name_any(),
                    meta.namespace().unwrap_or_default()
                );
            }
            Ok(ok)
        };
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), api_version.clone()),
        };
        let gvk = GroupVersionKind::gvk(&group, &version, kind);
        let ar = ApiResource::from_gvk_with_plural(&gvk, &crate::alert::plural(kind));
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), &namespace, &ar);
        if resource.name == "*" {
            let Some(labels) = &resource.match_labels else {
                return Err("matchLabels field not set when using wildcard '*' as name".into());
            };
            let selector = labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",");
            let list = api
                .list_metadata(&ListParams::default().labels(&selector))
                .await
                .map_err(|e| {
                    format!(
                        "failed listing resources in namespace {namespace:?} by matching labels {labels:?}: {e}"
                    )
                })?;
            if list.items.is_empty() {
                tracing::error!(
                    "error annotating resources: no {kind:?} resources found with matching labels {labels:?} in {namespace:?} namespace"
                );
                return Ok(());
            }
            for item in list.items {
                if accept(&item)? {
                    self.annotate(&api, kind, &item.name_any(), &namespace)
                        .await?;
                }
            }
            Ok(())
        } else {
            let meta = api.get_metadata(&resource.name).await.map_err(|e| {
                format!(
                    "unable to read {kind} \"{namespace}/{}\" error: {e}",
                    resource.name
                )
            })?;
            if !accept(&meta)? {
                return Ok(());
            }
            self.annotate(&api, kind, &resource.name, &namespace).await
        }
    }

    async fn annotate(
        &self,
        api: &Api<DynamicObject>,
        kind: &str,
        name: &str,
        namespace: &str,
    ) -> Result<(), String> {
        let patch = serde_json::json!({"metadata": {"annotations": {
            ferroflux_api::annotations::RECONCILE_REQUESTED_AT: go_time_string(jiff::Timestamp::now())
        }}});
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| {
                format!(
                    "failed to annotate resource: '{kind}/{name}.{namespace}': unable to annotate {kind} \"{namespace}/{name}\" error: {e}"
                )
            })?;
        tracing::info!("resource '{kind}/{name}.{namespace}' annotated");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_documented_test_vector() {
        // docs.github.com, "Validating webhook deliveries": secret "It's a Secret to
        // Everybody", payload "Hello, World!".
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert!(validate_signature(sig, b"Hello, World!", b"It's a Secret to Everybody").is_ok());
        assert!(validate_signature(sig, b"Hello, World?", b"It's a Secret to Everybody").is_err());
        assert!(validate_signature("md5=00", b"x", b"k").is_err());
    }

    #[test]
    fn paths_and_times() {
        use sha2::Digest;
        let expected = hex::encode(sha2::Sha256::digest(b"tokenreceiverflux-system"));
        assert_eq!(
            webhook_path("token", "receiver", "flux-system"),
            format!("/hook/{expected}")
        );
        let t: jiff::Timestamp = "2026-01-02T03:04:05.120Z".parse().unwrap();
        assert_eq!(go_time_string(t), "2026-01-02 03:04:05.12 +0000 UTC");
        assert_eq!(percent_decode("a%20b+c"), "a b c");
    }
}
