//! HTTP layer: routing, authentication, discovery, list/watch, writes, tables.

use crate::auth::{self, Attributes};
use crate::ops::{self, DeleteOpts, PatchType, WriteOpts};
use crate::registry::{ResourceDef, api_resource_json};
use crate::selector::{FieldSelector, LabelSelector};
use crate::status::{ApiError, ApiResult, success_status};
use crate::store::{EventType, Identity, Inner, meta_str};
use crate::{openapi, table};
use axum::body::Body;
use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;

/// State shared by all connections.
pub struct Shared {
    pub inner: Mutex<Inner>,
    pub admin_token: String,
    pub bookmark_interval: Duration,
    pub gc_notify: Notify,
    pub addr: String,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }
}

const MAX_BODY: usize = 64 * 1024 * 1024;

fn json_response(code: u16, v: &Value) -> Response<Body> {
    let body = serde_json::to_vec(v).unwrap_or_default();
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::OK))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap_or_default()
}

fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.code, &e.to_status())
}

fn pct_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or(())
                {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(q: Option<&str>) -> HashMap<String, String> {
    let mut m = HashMap::new();
    if let Some(q) = q {
        for part in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            m.insert(pct_decode(k), pct_decode(v));
        }
    }
    m
}

fn truthy(q: &HashMap<String, String>, k: &str) -> bool {
    matches!(q.get(k).map(String::as_str), Some("true" | "1"))
}

/// Entry point for every request.
pub async fn handle(shared: Arc<Shared>, req: Request<hyper::body::Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = match http_body_util::Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return error_response(&ApiError::new(
                413,
                "RequestEntityTooLarge",
                "request entity too large",
            ));
        }
        Err(e) => return error_response(&ApiError::bad_request(format!("reading body: {e}"))),
    };
    let ct = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let mut body = body;
    if !body.is_empty() && (ct.contains("protobuf") || ct.contains("cbor")) {
        let decoded = if ct.contains("protobuf") {
            crate::protobuf::decode(&body)
        } else {
            Err("CBOR is not supported by testenv".to_string())
        };
        match decoded {
            Ok(v) => body = Bytes::from(serde_json::to_vec(&v).unwrap_or_default()),
            Err(e) => {
                return error_response(&ApiError::unsupported_media(format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml ({ct}: {e})"
                )));
            }
        }
    }
    match route(
        &shared,
        &parts.method,
        parts.uri.path(),
        parts.uri.query(),
        &parts.headers,
        body,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}

fn authenticate(shared: &Shared, headers: &HeaderMap) -> ApiResult<Identity> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or_else(ApiError::unauthorized)?;
    let caller = if token == shared.admin_token {
        Identity {
            user: "admin".into(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
        }
    } else {
        let inner = shared.lock();
        let id = inner
            .tokens
            .get(token)
            .cloned()
            .ok_or_else(ApiError::unauthorized)?;
        if !auth::token_valid(&inner, &id) {
            return Err(ApiError::unauthorized());
        }
        id
    };
    let user = headers
        .get("impersonate-user")
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    let groups: Vec<String> = headers
        .get_all("impersonate-group")
        .iter()
        .filter_map(|h| h.to_str().ok().map(str::to_string))
        .collect();
    match user {
        Some(u) => {
            let inner = shared.lock();
            auth::impersonate(&inner, &caller, &u, &groups)
        }
        None if !groups.is_empty() => Err(ApiError::bad_request(
            "requested impersonation of groups without a user",
        )),
        None => Ok(caller),
    }
}

async fn route(
    shared: &Arc<Shared>,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Bytes,
) -> ApiResult<Response<Body>> {
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(pct_decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    match segs.as_slice() {
        ["healthz"] | ["livez"] | ["readyz"] => {
            return Ok(Response::builder()
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Body::from("ok"))
                .unwrap_or_default());
        }
        ["version"] => return Ok(json_response(200, &version())),
        _ => {}
    }
    let id = authenticate(shared, headers)?;
    let q = parse_query(query);
    match segs.as_slice() {
        ["api"] => {
            return Ok(json_response(
                200,
                &json!({"kind": "APIVersions", "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": shared.addr}]}),
            ));
        }
        ["apis"] => return Ok(json_response(200, &group_list(&shared.lock()))),
        ["apis", g] => {
            let inner = shared.lock();
            let list = group_list(&inner);
            return match list["groups"]
                .as_array()
                .and_then(|gs| gs.iter().find(|x| x["name"] == *g))
            {
                Some(grp) => {
                    let mut grp = grp.clone();
                    grp["kind"] = json!("APIGroup");
                    grp["apiVersion"] = json!("v1");
                    Ok(json_response(200, &grp))
                }
                None => Err(ApiError::not_found_path()),
            };
        }
        ["api", "v1"] => return resource_list(&shared.lock(), "", "v1"),
        ["apis", g, v] => return resource_list(&shared.lock(), g, v),
        ["openapi", "v3"] => return Ok(json_response(200, &openapi::root(&shared.lock()))),
        ["openapi", "v3", rest @ ..] => {
            let gv = rest.join("/");
            return match openapi::group_version(&shared.lock(), &gv) {
                Some(doc) => Ok(json_response(200, &doc)),
                None => Err(ApiError::not_found_path()),
            };
        }
        _ => {}
    }
    let (group, version, rest): (&str, &str, &[&str]) = match segs.as_slice() {
        ["api", "v1", rest @ ..] => ("", "v1", rest),
        ["apis", g, v, rest @ ..] => (g, v, rest),
        _ => return Err(ApiError::not_found_path()),
    };
    let def_lookup = |res: &str| shared.lock().registry.get(group, version, res);
    let (ns, res, name, sub) = match rest {
        ["namespaces", ns, res, tail @ ..]
            if *res != "status"
                && *res != "finalize"
                && def_lookup(res).is_some_and(|d| d.namespaced) =>
        {
            (Some(*ns), *res, tail.first().copied(), tail.get(1).copied())
        }
        [res, tail @ ..] => (None, *res, tail.first().copied(), tail.get(1).copied()),
        [] => return Err(ApiError::not_found_path()),
    };
    if rest.len() > 5 {
        return Err(ApiError::not_found_path());
    }
    let def = def_lookup(res).ok_or_else(ApiError::not_found_path)?;
    if !def.namespaced && ns.is_some() {
        return Err(ApiError::not_found_path());
    }
    let sub = sub.unwrap_or("");
    let valid_sub = match sub {
        "" => true,
        "status" => def.status,
        "scale" => def.scale.is_some(),
        "token" => def.extra_sub.contains(&"token"),
        "finalize" => def.resource == "namespaces",
        _ => false,
    };
    if !valid_sub {
        return Err(ApiError::not_found_path());
    }
    let watching = truthy(&q, "watch");
    let verb = match (method.as_str(), name.is_some()) {
        ("GET", false) if watching => "watch",
        ("GET", false) => "list",
        ("GET", true) => "get",
        ("POST", _) => "create",
        ("PUT", true) => "update",
        ("PATCH", true) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => {
            return Err(ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource",
            ));
        }
    };
    {
        let inner = shared.lock();
        let a = Attributes {
            verb,
            group,
            resource: res,
            subresource: sub,
            namespace: ns.unwrap_or(""),
            name: name.unwrap_or(""),
        };
        // like system:basic-user: anyone may ask about themselves
        let self_review = def.is_review() && def.kind.starts_with("SelfSubject");
        if !self_review && !auth::allowed(&inner, &id, &a) {
            return Err(auth::forbidden(&id, &a));
        }
    }
    if def.is_review() {
        if verb != "create" || name.is_some() {
            return Err(ApiError::method_not_allowed(
                "the server does not allow this method on the requested resource",
            ));
        }
        let v = ops::parse_body(&body)?;
        return Ok(json_response(201, &review(shared, &def, &id, v)));
    }
    let ns_str = ns.unwrap_or("");
    if def.namespaced && ns.is_none() && !matches!(verb, "list" | "watch" | "deletecollection") {
        return Err(ApiError::not_found_path());
    }
    let dry_run = q.get("dryRun").is_some_and(|v| v == "All");
    if let Some(d) = q.get("dryRun")
        && !d.is_empty()
        && d != "All"
    {
        return Err(ApiError::bad_request(format!(
            "dryRun: Unsupported value: {d:?}: supported values: \"All\""
        )));
    }
    let manager = q.get("fieldManager").cloned().unwrap_or_else(|| {
        headers
            .get(header::USER_AGENT)
            .and_then(|h| h.to_str().ok())
            .map(|ua| ua.split('/').next().unwrap_or(ua).to_string())
            .unwrap_or_else(|| "unknown".into())
    });
    let wopts = WriteOpts {
        dry_run,
        manager,
        force: truthy(&q, "force"),
        strict: q.get("fieldValidation").is_some_and(|v| v == "Strict"),
    };
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let render = if accept.contains("as=Table") {
        Render::Table
    } else if accept.contains("as=PartialObjectMetadata") {
        Render::Meta
    } else {
        Render::Full
    };
    let wants_table = render == Render::Table;

    let resp = match verb {
        "watch" => return watch(shared.clone(), def, ns.map(str::to_string), &q, render),
        "list" => {
            if render == Render::Full {
                let t0 = std::time::Instant::now();
                let (items, encoded, meta) = {
                    let inner = shared.lock();
                    let (items, meta) = list_raw(&inner, &def, ns, &q)?;
                    let gr = def.gr();
                    let encoded: Vec<Option<Bytes>> = items
                        .iter()
                        .map(|o| {
                            let key = (
                                meta_str(o, "namespace").to_string(),
                                meta_str(o, "name").to_string(),
                            );
                            inner.encoded(&gr, &key).cloned()
                        })
                        .collect();
                    (items, encoded, meta)
                };
                let t1 = std::time::Instant::now();
                let bytes = list_bytes(&def, &items, &encoded, &meta);
                tracing::debug!(
                    items = items.len(),
                    bytes = bytes.len(),
                    select_us = (t1 - t0).as_micros() as u64,
                    encode_us = t1.elapsed().as_micros() as u64,
                    "list"
                );
                return Ok(Response::builder()
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(Body::from(bytes))
                    .unwrap_or_default());
            }
            let mut list = list(&shared.lock(), &def, ns, &q)?;
            match render {
                Render::Table => return Ok(json_response(200, &table::from_list(&def, &list))),
                Render::Meta => {
                    list["kind"] = json!("PartialObjectMetadataList");
                    list["apiVersion"] = json!("meta.k8s.io/v1");
                    if let Some(items) = list["items"].as_array_mut() {
                        for i in items.iter_mut() {
                            *i = partial(i);
                        }
                    }
                }
                Render::Full => {}
            }
            json_response(200, &list)
        }
        "get" => {
            let inner = shared.lock();
            let name = name.unwrap_or_default();
            let obj = inner.get(&def.gr(), ns_str, name).ok_or_else(|| {
                ApiError::not_found(crate::status::Target {
                    group,
                    resource: res,
                    name,
                })
            })?;
            if sub == "scale" {
                return Ok(json_response(200, &ops::scale_of(&def, &obj)));
            }
            let obj = ops::at_version(&def, &obj);
            if render == Render::Meta {
                return Ok(json_response(200, &partial(&obj)));
            }
            if wants_table {
                return Ok(json_response(
                    200,
                    &table::from_items(&def, std::slice::from_ref(&obj), &json!({})),
                ));
            }
            json_response(200, &obj)
        }
        "create" => {
            let v = ops::parse_body(&body)?;
            if sub == "token" {
                return token_request(shared, ns_str, name.unwrap_or_default(), &v);
            }
            if name.is_some() {
                return Err(ApiError::method_not_allowed(
                    "the server does not allow this method on the requested resource",
                ));
            }
            let mut inner = shared.lock();
            let obj = ops::create(&mut inner, &def, ns_str, v, &wopts, None)?;
            json_response(201, &ops::at_version(&def, &obj))
        }
        "update" => {
            let v = ops::parse_body(&body)?;
            let name = name.unwrap_or_default();
            // custom resources do not allow unconditional updates
            if def.custom && sub != "scale" && meta_str(&v, "resourceVersion").is_empty() {
                return Err(ApiError::invalid(
                    &def.kind,
                    &def.group,
                    name,
                    vec![crate::status::Cause::new(
                        "FieldValueInvalid",
                        "metadata.resourceVersion",
                        "Invalid value: 0x0: must be specified for an update",
                    )],
                ));
            }
            let mut inner = shared.lock();
            let obj = match sub {
                "scale" => {
                    let cur = inner.get(&def.gr(), ns_str, name).ok_or_else(|| {
                        ApiError::not_found(crate::status::Target {
                            group,
                            resource: res,
                            name,
                        })
                    })?;
                    let mut o = (*cur).clone();
                    ops::set_scale(&def, &mut o, &v)?;
                    let rv = meta_str(&v, "resourceVersion");
                    if !rv.is_empty() {
                        o["metadata"]["resourceVersion"] = json!(rv);
                    }
                    let out = ops::update(&mut inner, &def, ns_str, name, o, "", &wopts, None)?;
                    ops::scale_of(&def, &out)
                }
                "finalize" => {
                    ops::update(&mut inner, &def, ns_str, name, v, "finalize", &wopts, None)?
                }
                _ => ops::update(&mut inner, &def, ns_str, name, v, sub, &wopts, None)?,
            };
            drop(inner);
            shared.gc_notify.notify_one();
            json_response(200, &ops::at_version(&def, &obj))
        }
        "patch" => {
            let ct = headers
                .get(header::CONTENT_TYPE)
                .and_then(|h| h.to_str().ok())
                .unwrap_or_default();
            let ptype = match ct.split(';').next().unwrap_or_default().trim() {
                "application/json-patch+json" => PatchType::Json,
                "application/merge-patch+json" => PatchType::Merge,
                "application/strategic-merge-patch+json" => PatchType::Strategic,
                "application/apply-patch+yaml" => PatchType::Apply,
                other => {
                    return Err(ApiError::unsupported_media(format!(
                        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml ({other})"
                    )));
                }
            };
            if ptype == PatchType::Apply && q.get("fieldManager").is_none_or(|m| m.is_empty()) {
                return Err(ApiError::invalid(
                    "PatchOptions",
                    "meta.k8s.io",
                    "",
                    vec![crate::status::Cause::new(
                        "FieldValueRequired",
                        "fieldManager",
                        "Required value: is required for apply patch",
                    )],
                ));
            }
            let v = ops::parse_body(&body)?;
            let name = name.unwrap_or_default();
            let mut inner = shared.lock();
            let obj = if sub == "scale" {
                let cur = inner.get(&def.gr(), ns_str, name).ok_or_else(|| {
                    ApiError::not_found(crate::status::Target {
                        group,
                        resource: res,
                        name,
                    })
                })?;
                let mut scale = ops::scale_of(&def, &cur);
                match ptype {
                    PatchType::Json => crate::patch::json_patch(&mut scale, &v)?,
                    _ => crate::patch::merge_patch(&mut scale, &v),
                }
                let mut o = (*cur).clone();
                ops::set_scale(&def, &mut o, &scale)?;
                let out = ops::update(&mut inner, &def, ns_str, name, o, "", &wopts, None)?;
                ops::scale_of(&def, &out)
            } else {
                let created =
                    ptype == PatchType::Apply && inner.get(&def.gr(), ns_str, name).is_none();
                let out = ops::patch(&mut inner, &def, ns_str, name, ptype, &v, sub, &wopts)?;
                if created {
                    return Ok(json_response(201, &ops::at_version(&def, &out)));
                }
                out
            };
            drop(inner);
            shared.gc_notify.notify_one();
            json_response(200, &ops::at_version(&def, &obj))
        }
        "delete" => {
            let v = ops::parse_body(&body)?;
            let dopts = delete_opts(&q, &v, dry_run);
            let name = name.unwrap_or_default();
            let mut inner = shared.lock();
            let obj = ops::delete(&mut inner, &def, ns_str, name, &dopts)?;
            let still_there = inner.get(&def.gr(), ns_str, name).is_some();
            drop(inner);
            shared.gc_notify.notify_one();
            json_response(
                if still_there && !dry_run { 202 } else { 200 },
                &ops::at_version(&def, &obj),
            )
        }
        "deletecollection" => {
            let v = ops::parse_body(&body)?;
            let dopts = delete_opts(&q, &v, dry_run);
            let mut inner = shared.lock();
            let items = list(&inner, &def, ns, &q)?;
            for item in items["items"].as_array().cloned().unwrap_or_default() {
                let _ = ops::delete(
                    &mut inner,
                    &def,
                    meta_str(&item, "namespace"),
                    meta_str(&item, "name"),
                    &dopts,
                );
            }
            drop(inner);
            shared.gc_notify.notify_one();
            json_response(200, &success_status(None))
        }
        _ => return Err(ApiError::method_not_allowed("unsupported")),
    };
    Ok(resp)
}

fn delete_opts(q: &HashMap<String, String>, body: &Value, dry_run: bool) -> DeleteOpts {
    let prop = q
        .get("propagationPolicy")
        .cloned()
        .or_else(|| body["propagationPolicy"].as_str().map(str::to_string))
        .or_else(|| {
            match body["orphanDependents"]
                .as_bool()
                .or_else(|| q.get("orphanDependents").map(|v| v == "true"))
            {
                Some(true) => Some("Orphan".to_string()),
                _ => None,
            }
        });
    let body_dry = body["dryRun"]
        .as_array()
        .is_some_and(|a| a.iter().any(|v| v == "All"));
    DeleteOpts {
        dry_run: dry_run || body_dry,
        propagation: prop,
        uid: body
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_string),
        resource_version: body
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string),
    }
}

pub fn version() -> Value {
    json!({
        "major": "1", "minor": "33", "gitVersion": "v1.33.0-ferroflux-testenv",
        "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.24", "compiler": "gc",
        "platform": format!("{}/{}", std::env::consts::OS, if std::env::consts::ARCH == "x86_64" { "amd64" } else { std::env::consts::ARCH }),
    })
}

fn group_list(inner: &Inner) -> Value {
    let groups: Vec<Value> = inner
        .registry
        .groups()
        .into_iter()
        .map(|(g, vs)| {
            let versions: Vec<Value> = vs
                .iter()
                .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
                .collect();
            let preferred = versions.first().cloned().unwrap_or(Value::Null);
            json!({"name": g, "versions": versions, "preferredVersion": preferred})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

fn resource_list(inner: &Inner, group: &str, version: &str) -> ApiResult<Response<Body>> {
    let defs = inner.registry.resources_in(group, version);
    if defs.is_empty() {
        return Err(ApiError::not_found_path());
    }
    let resources: Vec<Value> = defs.iter().flat_map(|d| api_resource_json(d)).collect();
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Ok(json_response(
        200,
        &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    ))
}

type Entry<'a> = (&'a (String, String), &'a Arc<Value>);

#[derive(serde::Serialize, serde::Deserialize)]
struct Continue {
    rv: u64,
    ns: String,
    name: String,
}

/// A list response (selectors, limit/continue).
pub fn list(
    inner: &Inner,
    def: &ResourceDef,
    ns: Option<&str>,
    q: &HashMap<String, String>,
) -> ApiResult<Value> {
    let (items, meta) = list_raw(inner, def, ns, q)?;
    let items: Vec<Value> = items.iter().map(|o| ops::at_version(def, o)).collect();
    Ok(
        json!({"kind": def.list_kind, "apiVersion": def.api_version(), "metadata": meta, "items": items}),
    )
}

/// Serializes a list without copying the stored objects.
fn list_bytes(
    def: &ResourceDef,
    items: &[Arc<Value>],
    encoded: &[Option<Bytes>],
    meta: &Value,
) -> Vec<u8> {
    let size: usize = encoded
        .iter()
        .map(|e| e.as_ref().map_or(512, |b| b.len() + 1))
        .sum();
    let mut buf = Vec::with_capacity(size + 256);
    let head = json!({"kind": def.list_kind, "apiVersion": def.api_version(), "metadata": meta});
    let head = serde_json::to_vec(&head).unwrap_or_default();
    // `{...}` without the closing brace, then the items
    buf.extend_from_slice(&head[..head.len().saturating_sub(1)]);
    buf.extend_from_slice(b",\"items\":[");
    let convert = def.converts();
    for (i, o) in items.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        let r = match encoded.get(i) {
            Some(Some(json)) if !convert => {
                buf.extend_from_slice(json);
                Ok(())
            }
            _ if convert => serde_json::to_writer(&mut buf, &ops::at_version(def, o)),
            _ => serde_json::to_writer(&mut buf, &**o),
        };
        if r.is_err() {
            buf.extend_from_slice(b"null");
        }
    }
    buf.extend_from_slice(b"]}");
    buf
}

fn list_raw(
    inner: &Inner,
    def: &ResourceDef,
    ns: Option<&str>,
    q: &HashMap<String, String>,
) -> ApiResult<(Vec<Arc<Value>>, Value)> {
    let labels = LabelSelector::parse(q.get("labelSelector").map(String::as_str).unwrap_or(""))?;
    let fields = FieldSelector::parse(&field_selector(def, q), &def.kind)?;
    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(0);
    let cont = match q.get("continue").filter(|c| !c.is_empty()) {
        Some(c) => {
            let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(c)
                .map_err(|_| ApiError::bad_request("continue key is not valid"))?;
            let c: Continue = serde_json::from_slice(&raw)
                .map_err(|_| ApiError::bad_request("continue key is not valid"))?;
            if c.rv < inner.compacted {
                return Err(ApiError::gone(
                    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                ));
            }
            Some(c)
        }
        None => None,
    };
    let list_rv = cont.as_ref().map(|c| c.rv).unwrap_or(inner.rv);
    let mut items = vec![];
    let mut remaining = 0u64;
    if let Some(bucket) = inner.bucket(&def.gr()) {
        let iter: Box<dyn Iterator<Item = Entry<'_>>> = match (&cont, ns) {
            (Some(c), _) => Box::new(bucket.range((
                std::ops::Bound::Excluded((c.ns.clone(), c.name.clone())),
                std::ops::Bound::Unbounded,
            ))),
            (None, Some(n)) => Box::new(bucket.range((n.to_string(), String::new())..)),
            (None, None) => Box::new(bucket.iter()),
        };
        for ((ons, _), obj) in iter {
            if let Some(n) = ns
                && ons != n
            {
                if ons.as_str() > n {
                    break;
                }
                continue;
            }
            if !labels.matches(obj) || !fields.matches(obj) {
                continue;
            }
            if limit > 0 && items.len() >= limit {
                remaining += 1;
                continue;
            }
            items.push(obj.clone());
        }
    }
    let next = match items.last() {
        Some(last) if remaining > 0 => Some(Continue {
            rv: list_rv,
            ns: meta_str(last, "namespace").to_string(),
            name: meta_str(last, "name").to_string(),
        }),
        _ => None,
    };
    let mut meta = json!({"resourceVersion": list_rv.to_string()});
    if let Some(n) = next {
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&n).unwrap_or_default());
        meta["continue"] = json!(token);
        meta["remainingItemCount"] = json!(remaining);
    }
    Ok((items, meta))
}

/// The field selector, with events.k8s.io names mapped to the stored core/v1 names.
fn field_selector(def: &ResourceDef, q: &HashMap<String, String>) -> String {
    let raw = q.get("fieldSelector").cloned().unwrap_or_default();
    if def.is_event_view() {
        return raw
            .replace("regarding.", "involvedObject.")
            .replace("reportingController", "reportingComponent");
    }
    raw
}

fn ns_matches(ns: Option<&str>, obj_ns: &str) -> bool {
    ns.is_none_or(|n| n == obj_ns)
}

fn event_line(t: &str, obj: &Value) -> Bytes {
    let mut v = serde_json::to_vec(&json!({"type": t, "object": obj})).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

fn event_line_raw(t: &str, obj: &[u8]) -> Bytes {
    let mut v = Vec::with_capacity(obj.len() + 32);
    v.extend_from_slice(b"{\"type\":\"");
    v.extend_from_slice(t.as_bytes());
    v.extend_from_slice(b"\",\"object\":");
    v.extend_from_slice(obj);
    v.extend_from_slice(b"}\n");
    Bytes::from(v)
}

fn bookmark(def: &ResourceDef, rv: u64, initial_end: bool) -> Bytes {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    event_line(
        "BOOKMARK",
        &json!({"kind": def.kind, "apiVersion": def.api_version(), "metadata": meta}),
    )
}

/// How objects are rendered for the client (`Accept: ...;as=Table` and friends).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Render {
    Full,
    Table,
    Meta,
}

fn partial(obj: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]})
}

fn rendered(def: &ResourceDef, obj: &Value, render: Render) -> Value {
    let obj = ops::at_version(def, obj);
    match render {
        Render::Full => obj,
        Render::Meta => partial(&obj),
        Render::Table => table::from_items(def, std::slice::from_ref(&obj), &json!({})),
    }
}

/// A watch: an HTTP response streaming JSON lines.
fn watch(
    shared: Arc<Shared>,
    def: Arc<ResourceDef>,
    ns: Option<String>,
    q: &HashMap<String, String>,
    render: Render,
) -> ApiResult<Response<Body>> {
    let labels = LabelSelector::parse(q.get("labelSelector").map(String::as_str).unwrap_or(""))?;
    let fields = FieldSelector::parse(&field_selector(&def, q), &def.kind)?;
    let bookmarks = truthy(q, "allowWatchBookmarks");
    let send_initial = truthy(q, "sendInitialEvents");
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(1800 + rand::random::<u64>() % 1800));
    let rv_param = q.get("resourceVersion").cloned().unwrap_or_default();
    let gr = def.gr();
    let matches = move |o: &Value| -> bool {
        ns_matches(ns.as_deref(), meta_str(o, "namespace"))
            && labels.matches(o)
            && fields.matches(o)
    };

    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1024);
    let (initial, replay, mut sub, start_rv, initial_error) = {
        let inner = shared.lock();
        let sub = inner.subscribe();
        let current = inner.rv;
        if rv_param.is_empty() || rv_param == "0" || send_initial {
            let objs: Vec<Arc<Value>> = inner
                .bucket(&gr)
                .map(|b| b.values().filter(|o| matches(o)).cloned().collect())
                .unwrap_or_default();
            (objs, vec![], sub, current, None)
        } else {
            match rv_param.parse::<u64>() {
                Ok(rv) => match inner.events_since(&gr, rv) {
                    Ok(evs) => (vec![], evs, sub, current, None),
                    Err(e) => (vec![], vec![], sub, current, Some(e)),
                },
                Err(_) => {
                    return Err(ApiError::bad_request(format!(
                        "invalid resource version: {rv_param}"
                    )));
                }
            }
        }
    };
    let interval = shared.bookmark_interval;
    tokio::spawn(async move {
        if let Some(e) = initial_error {
            let _ = tx.send(event_line("ERROR", &e.to_status())).await;
            return;
        }
        for o in &initial {
            if tx
                .send(event_line("ADDED", &rendered(&def, o, render)))
                .await
                .is_err()
            {
                return;
            }
        }
        if send_initial && bookmarks {
            let _ = tx.send(bookmark(&def, start_rv, true)).await;
        }
        let mut last_rv = start_rv;
        let emit = |ev: &crate::store::Event, last_rv: &mut u64| -> Option<Bytes> {
            *last_rv = (*last_rv).max(ev.rv);
            if ev.gr != gr {
                return None;
            }
            let now = matches(&ev.obj);
            let before = ev.prev.as_deref().is_some_and(&matches);
            let t = match ev.etype {
                EventType::Deleted if before || now => "DELETED",
                EventType::Deleted => return None,
                EventType::Added if now => "ADDED",
                EventType::Modified if now && before => "MODIFIED",
                EventType::Modified if now => "ADDED",
                EventType::Modified if before => "DELETED",
                _ => return None,
            };
            if render == Render::Full && !def.converts() {
                return Some(event_line_raw(t, ev.json()));
            }
            Some(event_line(t, &rendered(&def, &ev.obj, render)))
        };
        for ev in &replay {
            if let Some(line) = emit(ev, &mut last_rv)
                && tx.send(line).await.is_err()
            {
                return;
            }
        }
        last_rv = last_rv.max(start_rv);
        let deadline = tokio::time::Instant::now() + timeout;
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return,
                _ = tick.tick(), if bookmarks => {
                    if tx.send(bookmark(&def, last_rv, false)).await.is_err() { return; }
                }
                ev = sub.recv() => match ev {
                    Ok(ev) => {
                        if ev.rv <= last_rv { continue; }
                        if let Some(line) = emit(&ev, &mut last_rv) && tx.send(line).await.is_err() {
                            return;
                        }
                    }
                    // a watcher that fell behind is closed; the client resumes from its last version
                    Err(_) => return,
                },
                _ = tx.closed() => return,
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(b), rx))
    });
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::TRANSFER_ENCODING, "chunked")
        .body(Body::from_stream(stream))
        .unwrap_or_default())
}

/// Answers SelfSubjectAccessReview, SubjectAccessReview, TokenReview and SelfSubjectReview.
fn review(shared: &Arc<Shared>, def: &ResourceDef, caller: &Identity, mut body: Value) -> Value {
    let inner = shared.lock();
    let status = match def.kind.as_str() {
        "SelfSubjectAccessReview" | "SubjectAccessReview" => {
            let who = if def.kind == "SubjectAccessReview" {
                let groups = body
                    .pointer("/spec/groups")
                    .and_then(Value::as_array)
                    .map(|g| {
                        g.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                Identity {
                    user: body
                        .pointer("/spec/user")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    groups,
                }
            } else {
                caller.clone()
            };
            match body.pointer("/spec/resourceAttributes") {
                Some(ra) => {
                    let s = |k: &str| {
                        ra.get(k)
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string()
                    };
                    let (verb, group, resource, sub, ns, name) = (
                        s("verb"),
                        s("group"),
                        s("resource"),
                        s("subresource"),
                        s("namespace"),
                        s("name"),
                    );
                    let a = Attributes {
                        verb: &verb,
                        group: &group,
                        resource: &resource,
                        subresource: &sub,
                        namespace: &ns,
                        name: &name,
                    };
                    let allowed = auth::allowed(&inner, &who, &a);
                    let mut st = json!({"allowed": allowed});
                    if allowed {
                        st["reason"] = json!("allowed by RBAC (testenv)");
                    }
                    st
                }
                // discovery and other non-resource URLs are open to authenticated users
                None => json!({"allowed": true}),
            }
        }
        "TokenReview" => {
            let token = body
                .pointer("/spec/token")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let id = if token == shared.admin_token {
                Some(Identity {
                    user: "admin".into(),
                    groups: vec!["system:masters".into(), "system:authenticated".into()],
                })
            } else {
                inner
                    .tokens
                    .get(token)
                    .cloned()
                    .filter(|id| auth::token_valid(&inner, id))
            };
            match id {
                Some(id) => {
                    json!({"authenticated": true, "user": {"username": id.user, "groups": id.groups},
                    "audiences": body.pointer("/spec/audiences").cloned().unwrap_or(json!([]))})
                }
                None => json!({"authenticated": false, "error": "invalid bearer token"}),
            }
        }
        _ => json!({"userInfo": {"username": caller.user, "groups": caller.groups}}),
    };
    body["apiVersion"] = json!(def.api_version());
    body["kind"] = json!(def.kind);
    if !body.get("metadata").is_some_and(Value::is_object) {
        body["metadata"] = json!({});
    }
    body["status"] = status;
    body
}

fn token_request(
    shared: &Arc<Shared>,
    ns: &str,
    name: &str,
    body: &Value,
) -> ApiResult<Response<Body>> {
    let mut inner = shared.lock();
    if inner
        .get(&crate::registry::Gr::new("", "serviceaccounts"), ns, name)
        .is_none()
    {
        return Err(ApiError::not_found(crate::status::Target {
            group: "",
            resource: "serviceaccounts",
            name,
        }));
    }
    let bytes: [u8; 32] = rand::random();
    let token = format!(
        "sa.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    inner
        .tokens
        .insert(token.clone(), auth::service_account_identity(ns, name));
    inner.dirty = true;
    let secs = body
        .pointer("/spec/expirationSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(3600);
    let exp = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(secs))
        .unwrap_or_else(|_| jiff::Timestamp::now())
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let audiences = body
        .pointer("/spec/audiences")
        .cloned()
        .unwrap_or(json!([]));
    Ok(json_response(
        201,
        &json!({
            "kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": null},
            "spec": {"audiences": audiences, "expirationSeconds": secs, "boundObjectRef": body.pointer("/spec/boundObjectRef").cloned().unwrap_or(Value::Null)},
            "status": {"token": token, "expirationTimestamp": exp},
        }),
    ))
}
