//! `azuredevops`: a Git commit status through the Azure DevOps REST API, sent as upstream's
//! client library (azure-devops-go-api v6) sends it:
//!
//! 1. `OPTIONS <host>/<org>/_apis` (once per organisation URL and process, as the library
//!    caches it): the resource locations; the commit status location
//!    (`428dd4fb-fda5-4722-af02-9313b80305da`) gives the route template and supported versions;
//! 2. `GET <route>` (the statuses of the commit, `{"count": n, "value": [...]}`), api-version
//!    6.0 negotiated against the location;
//! 3. unless the first listed status with our context (genre `fluxcd[:<summary>]`, name = the
//!    commit status id) already has the same state and description, `POST <route>` with
//!    `{"context":{"genre":…,"name":…},"description":…,"state":…}`.
//!
//! State: `succeeded` for info, `error` for error events; Progressing events are not sent.
//! Authentication: `Basic base64(":" + token)` (a personal access token); the organisation URL
//! is lower-cased as the library does.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use base64::Engine;
use serde::{Deserialize, Serialize};

use super::commitstatus;
use super::{Settings, send_request};
use crate::event::{Event, to_go_json};

/// The resource location id of Git commit statuses.
pub const STATUS_LOCATION: &str = "428dd4fb-fda5-4722-af02-9313b80305da";
/// The api-version the library asks for.
const API_VERSION: &str = "6.0";
const USER_AGENT: &str = "go/go1.25 (linux amd64) azure-devops-go-api/6.0.0-b1 (dev)";

/// One resource location from `OPTIONS _apis` (the fields the library reads).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub area: String,
    #[serde(default)]
    pub resource_name: String,
    #[serde(default)]
    pub route_template: String,
    #[serde(default)]
    pub min_version: String,
    #[serde(default)]
    pub max_version: String,
    #[serde(default)]
    pub released_version: String,
    #[serde(default)]
    pub resource_version: i64,
}

#[derive(Serialize)]
struct Context<'a> {
    genre: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
struct Status<'a> {
    context: Context<'a>,
    description: &'a str,
    state: &'a str,
}

/// Everything needed to send one status (the URLs depend on the server's locations).
#[derive(Clone, Debug)]
pub struct Plan {
    /// `<host>/<org>`, lower case.
    pub base: String,
    pub project: String,
    pub repo: String,
    pub commit: String,
    pub authorization: String,
    pub genre: String,
    pub name: String,
    pub description: String,
    pub state: &'static str,
}

/// The library's session id: one per process.
fn session_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let mut b = [0u8; 16];
        let _ = aws_lc_rs::rand::fill(&mut b);
        let h = hex::encode(b);
        format!(
            "{}-{}-4{}-{:x}{}-{}",
            &h[0..8],
            &h[8..12],
            &h[13..16],
            (b[8] & 0x3) | 0x8,
            &h[17..20],
            &h[20..32]
        )
    })
}

/// Locations by organisation URL, fetched once (as the library's cache).
fn cache() -> &'static Mutex<HashMap<String, Vec<Location>>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Vec<Location>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

pub fn build(s: &Settings, event: &Event) -> Result<Option<Plan>, String> {
    if s.token.is_empty() {
        // Upstream falls back to a managed identity token (workload identity), which ferroflux
        // does not have.
        return Err("failed to acquire azure devops token: no token in the Provider's secret and managed identity is not supported".into());
    }
    let (host, id) = commitstatus::parse_git_address(&s.url)?;
    if s.commit_status.is_empty() {
        return Err("commit status cannot be empty".into());
    }
    let comp: Vec<&str> = id.split('/').collect();
    if comp.len() != 4 {
        return Err(format!("invalid repository id {id:?}"));
    }
    if event.reason == "Progressing" {
        return Ok(None);
    }
    let commit = commitstatus::revision(event)?;
    let state = match event.severity.as_str() {
        "info" => "succeeded",
        "error" => "error",
        _ => return Err("can't convert to azure devops state".into()),
    };
    let genre = match event.metadata.get("summary") {
        Some(summary) => format!("fluxcd:{summary}"),
        None => "fluxcd".to_string(),
    };
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(":{}", s.token));
    Ok(Some(Plan {
        base: format!("{host}/{}", comp[0])
            .trim_end_matches('/')
            .to_lowercase(),
        project: comp[1].to_string(),
        repo: comp[3].to_string(),
        commit,
        authorization: format!("Basic {basic}"),
        genre,
        name: s.commit_status.clone(),
        description: commitstatus::description(event),
        state,
    }))
}

/// Go's `url.PathEscape`.
fn path_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'_'
                    | b'.'
                    | b'~'
                    | b'$'
                    | b'&'
                    | b'+'
                    | b'='
                    | b':'
                    | b'@'
                    | b'!'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b','
                    | b';'
            );
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The library's route template expansion: `{name}` and `{*name}` segments replaced by the
/// escaped value, or dropped when no value is given.
pub fn expand_route(template: &str, values: &[(&str, &str)]) -> String {
    let template = template.replace("{*", "{");
    let mut out = String::new();
    for seg in template.split('/') {
        let n = seg.len();
        if n <= 2 || !seg.starts_with('{') || !seg.ends_with('}') {
            out.push('/');
            out.push_str(seg);
        } else if let Some((_, v)) = values.iter().find(|(k, _)| *k == &seg[1..n - 1]) {
            out.push('/');
            out.push_str(&path_escape(v));
        }
    }
    for (k, v) in values {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

/// `major.minor` of a version string (the library's Version; missing parts are 0).
fn version(v: &str) -> Result<(u64, u64), String> {
    let core = v.split('-').next().unwrap_or(v);
    let mut parts = core.split('.');
    let major = parts
        .next()
        .unwrap_or("0")
        .parse()
        .map_err(|_| format!("invalid version {v:?}"))?;
    let minor = match parts.next() {
        Some(m) => m.parse().map_err(|_| format!("invalid version {v:?}"))?,
        None => 0,
    };
    Ok((major, minor))
}

/// The library's api-version negotiation for a released request version (`6.0`).
pub fn negotiate(location: &Location, requested: &str) -> Result<String, String> {
    let want = version(requested)?;
    if version(&location.min_version)? > want {
        return Ok(requested.to_string());
    }
    if version(&location.max_version)? < want {
        let mut v = location.max_version.clone();
        if location.released_version < location.max_version {
            v.push_str("-preview");
        }
        return Ok(v);
    }
    let released = version(&location.released_version)?;
    if released == (0, 0) || released < want {
        Ok(format!("{requested}-preview"))
    } else {
        Ok(requested.to_string())
    }
}

fn headers(plan: &Plan, rb: reqwest::RequestBuilder, accept: &str) -> reqwest::RequestBuilder {
    rb.header("Authorization", &plan.authorization)
        .header("Accept", accept)
        .header("X-TFS-FedAuthRedirect", "Suppress")
        .header("X-TFS-Session", session_id())
        .header("User-Agent", USER_AGENT)
}

async fn locations(client: &reqwest::Client, plan: &Plan) -> Result<Vec<Location>, String> {
    if let Some(l) = cache().lock().ok().and_then(|c| c.get(&plan.base).cloned()) {
        return Ok(l);
    }
    let url = format!("{}/_apis", plan.base);
    let resp = headers(
        plan,
        client.request(reqwest::Method::OPTIONS, &url),
        "application/json",
    )
    .send()
    .await
    .map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!(
            "OPTIONS {url}: {} {}",
            status.as_u16(),
            String::from_utf8_lossy(&body)
        ));
    }
    #[derive(Deserialize)]
    struct Collection {
        #[serde(default)]
        value: Vec<Location>,
    }
    let body = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&body);
    let list: Collection = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    if let Ok(mut c) = cache().lock() {
        c.insert(plan.base.clone(), list.value.clone());
    }
    Ok(list.value)
}

pub async fn send(client: &reqwest::Client, plan: &Plan) -> Result<(), String> {
    let list_err = |e: String| format!("could not list commit statuses: {e}");
    let locs = locations(client, plan).await.map_err(list_err)?;
    let loc = locs
        .iter()
        .find(|l| l.id.eq_ignore_ascii_case(STATUS_LOCATION))
        .ok_or_else(|| {
            list_err(format!(
                "API resource location {STATUS_LOCATION} is not registered on {}.",
                plan.base
            ))
        })?;
    let route = expand_route(
        &loc.route_template,
        &[
            ("project", &plan.project),
            ("commitId", &plan.commit),
            ("repositoryId", &plan.repo),
            ("area", &loc.area),
            ("resource", &loc.resource_name),
        ],
    );
    let url = format!("{}/{}", plan.base, route.trim_start_matches('/'));
    let accept = format!(
        "application/json;api-version={}",
        negotiate(loc, API_VERSION).map_err(list_err)?
    );
    let resp = headers(plan, client.get(&url), &accept)
        .send()
        .await
        .map_err(|e| list_err(e.to_string()))?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| list_err(e.to_string()))?;
    if !status.is_success() {
        return Err(list_err(format!(
            "GET {url}: {} {}",
            status.as_u16(),
            String::from_utf8_lossy(&body)
        )));
    }
    let listed: serde_json::Value =
        serde_json::from_slice(body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&body))
            .map_err(|e| list_err(e.to_string()))?;
    if duplicate(&listed, plan) {
        return Ok(());
    }
    let mut create = super::Request::post_json(
        url,
        to_go_json(&Status {
            context: Context {
                genre: &plan.genre,
                name: &plan.name,
            },
            description: &plan.description,
            state: plan.state,
        }),
    );
    create.set("Authorization", plan.authorization.clone());
    create.set("Accept", accept);
    create.set("Content-Type", "application/json;charset=utf-8");
    create.set("X-TFS-FedAuthRedirect", "Suppress");
    create.set("X-TFS-Session", session_id());
    create.set("User-Agent", USER_AGENT);
    send_request(client, &create)
        .await
        .map_err(|e| format!("could not create commit status: {e}"))
}

/// The first listed status with our name and genre decides: same state and description is a
/// duplicate.
fn duplicate(listed: &serde_json::Value, plan: &Plan) -> bool {
    for s in listed["value"].as_array().into_iter().flatten() {
        let (Some(name), Some(genre), Some(state), Some(desc)) = (
            s["context"]["name"].as_str(),
            s["context"]["genre"].as_str(),
            s["state"].as_str(),
            s["description"].as_str(),
        ) else {
            continue;
        };
        if name == plan.name && genre == plan.genre {
            return state == plan.state && desc == plan.description;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_versions() {
        assert_eq!(
            expand_route(
                "{project}/_apis/{area}/repositories/{repositoryId}/commits/{commitId}/{resource}",
                &[
                    ("project", "my proj"),
                    ("repositoryId", "repo"),
                    ("commitId", "abc"),
                    ("area", "git"),
                    ("resource", "statuses")
                ]
            ),
            "/my%20proj/_apis/git/repositories/repo/commits/abc/statuses"
        );
        // An optional segment without a value is dropped.
        assert_eq!(
            expand_route("_apis/{area}/{*id}", &[("area", "git")]),
            "/_apis/git"
        );
        let loc = |min: &str, max: &str, rel: &str| Location {
            min_version: min.into(),
            max_version: max.into(),
            released_version: rel.into(),
            ..Default::default()
        };
        assert_eq!(negotiate(&loc("1.0", "7.1", "7.1"), "6.0").unwrap(), "6.0");
        assert_eq!(
            negotiate(&loc("1.0", "5.1", "5.0"), "6.0").unwrap(),
            "5.1-preview"
        );
        assert_eq!(
            negotiate(&loc("1.0", "7.1", "5.0"), "6.0").unwrap(),
            "6.0-preview"
        );
        assert_eq!(session_id().len(), 36);
    }
}
