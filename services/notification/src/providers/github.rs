//! `github`: a commit status on the repository in `address` (github.com through
//! api.github.com, GitHub Enterprise through `<host>/api/v3/`), context = the commit status id,
//! state success/failure, description = the reason in words. The latest status with the same
//! context is listed first and an identical one is not posted again.

use serde::Serialize;

use super::commitstatus::{self, Plan};
use super::{Request, Settings};
use crate::event::Event;

/// go-github's request headers.
pub fn headers(req: &mut Request, token: &str) {
    req.set("Accept", "application/vnd.github.v3+json");
    req.set("X-GitHub-Api-Version", "2022-11-28");
    req.set("Authorization", format!("Bearer {token}"));
}

/// The API base URL for a repository host.
pub fn api_base(host: &str) -> String {
    if host == "https://github.com" || host == "http://github.com" {
        "https://api.github.com/".to_string()
    } else {
        format!("{}/api/v3/", host.trim_end_matches('/'))
    }
}

/// `(api base, owner, repo)` of the Provider's address.
pub fn repository(s: &Settings) -> Result<(String, String, String), String> {
    let (host, id) = commitstatus::parse_git_address(&s.url)?;
    let parts: Vec<&str> = id.split('/').collect();
    if parts.len() != 2 {
        return Err(format!("invalid repository id: '{id}'"));
    }
    Ok((api_base(&host), parts[0].to_string(), parts[1].to_string()))
}

#[derive(Serialize)]
struct RepoStatus<'a> {
    state: &'a str,
    description: &'a str,
    context: &'a str,
}

fn duplicate(listed: &serde_json::Value, create: &Request) -> bool {
    let Ok(want) = serde_json::from_slice::<serde_json::Value>(&create.body) else {
        return false;
    };
    for s in listed.as_array().into_iter().flatten() {
        if s["context"].is_null() || s["state"].is_null() || s["description"].is_null() {
            continue;
        }
        if s["context"] == want["context"] {
            return s["state"] == want["state"] && s["description"] == want["description"];
        }
    }
    false
}

/// The token used for GitHub: `token`, else `password`.
pub fn token(s: &Settings) -> Result<String, String> {
    let t = if s.token.is_empty() {
        s.password.clone()
    } else {
        s.token.clone()
    };
    if t.is_empty() {
        return Err("github token or github app details must be specified".into());
    }
    Ok(t)
}

pub fn build(s: &Settings, commit_status: &str, event: &Event) -> Result<Option<Plan>, String> {
    if commit_status.is_empty() {
        return Err("commit status cannot be empty".into());
    }
    let token = token(s)?;
    let (base, owner, repo) = repository(s)?;
    if event.reason == "Progressing" {
        return Ok(None);
    }
    let rev = commitstatus::revision(event)?;
    let state = match event.severity.as_str() {
        "info" => "success",
        "error" => "failure",
        _ => return Err("can't convert to github state".into()),
    };
    let desc = commitstatus::description(event);
    let mut list = Request {
        method: "GET",
        url: format!("{base}repos/{owner}/{repo}/commits/{rev}/statuses?per_page=50"),
        headers: Vec::new(),
        body: Vec::new(),
        validate: super::Validate::Status2xx,
    };
    headers(&mut list, &token);
    // go-github encodes bodies without HTML escaping and with a trailing newline.
    let mut body = serde_json::to_vec(&RepoStatus {
        state,
        description: &desc,
        context: commit_status,
    })
    .map_err(|e| e.to_string())?;
    body.push(b'\n');
    let mut create = Request::post_json(format!("{base}repos/{owner}/{repo}/statuses/{rev}"), body);
    headers(&mut create, &token);
    Ok(Some(Plan {
        list,
        create,
        duplicate,
        list_error: "could not list commit statuses",
        create_error: "could not create commit status",
        missing_ok: false,
    }))
}

/// `githubdispatch`: a `repository_dispatch` with event type `<kind>/<name>.<namespace>` and
/// the event JSON as client payload.
pub fn dispatch(s: &Settings, event: &Event) -> Result<Request, String> {
    let token = token(s)?;
    let (base, owner, repo) = repository(s)?;
    let o = &event.involved_object;
    // go-github's encoder (no HTML escaping) around the event as json.Marshal wrote it.
    let event_type = serde_json::to_string(&format!("{}/{}.{}", o.kind, o.name, o.namespace))
        .map_err(|e| e.to_string())?;
    let mut body = format!("{{\"event_type\":{event_type},\"client_payload\":").into_bytes();
    body.extend_from_slice(&event.to_go_json());
    body.extend_from_slice(b"}\n");
    let mut req = Request::post_json(format!("{base}repos/{owner}/{repo}/dispatches"), body);
    headers(&mut req, &token);
    Ok(req)
}
