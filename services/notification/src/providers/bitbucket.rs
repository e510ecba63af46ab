//! `bitbucket` (Bitbucket Cloud) and `bitbucketserver` (Bitbucket Data Center) build statuses.
//!
//! Cloud: `https://api.bitbucket.org/2.0/repositories/<owner>/<repo>/commit/<sha>/statuses/
//! build[/<key>]` (`BITBUCKET_API_BASE_URL` overrides the base, as in the Go client), basic auth
//! from a `<user>:<password>` token, key = SHA-1 of the commit status id.
//! Server: `<context>/rest/api/latest/projects/<key>/repos/<slug>/commits/<sha>/builds` from an
//! HTTP(S) clone URL (`.../scm/<project>/<repo>.git`), bearer token or basic auth.
//! Both read the current status first and do not post an identical one.

use serde::Serialize;

use super::commitstatus::{self, Plan};
use super::{Request, Settings};
use crate::event::{Event, to_go_json};

/// Bitbucket Cloud's API base.
pub const CLOUD_API: &str = "https://api.bitbucket.org/2.0";

#[derive(Serialize)]
struct CloudStatus<'a> {
    key: &'a str,
    url: &'a str,
    state: &'a str,
    name: &'a str,
    description: &'a str,
}

fn state(event: &Event, what: &str) -> Result<&'static str, String> {
    match event.severity.as_str() {
        "info" => Ok("SUCCESSFUL"),
        "error" => Ok("FAILED"),
        _ => Err(what.to_string()),
    }
}

fn same_state_and_description(listed: &serde_json::Value, create: &Request) -> bool {
    let Ok(want) = serde_json::from_slice::<serde_json::Value>(&create.body) else {
        return false;
    };
    let field = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
    field(listed, "state") == field(&want, "state")
        && field(listed, "description") == field(&want, "description")
}

/// Bitbucket Cloud with the API base from `BITBUCKET_API_BASE_URL` or the default.
pub fn cloud(s: &Settings, event: &Event) -> Result<Option<Plan>, String> {
    let base = std::env::var("BITBUCKET_API_BASE_URL")
        .ok()
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| CLOUD_API.to_string());
    cloud_with_base(s, event, &base)
}

pub fn cloud_with_base(s: &Settings, event: &Event, base: &str) -> Result<Option<Plan>, String> {
    if s.token.is_empty() {
        return Err("bitbucket token cannot be empty".into());
    }
    if s.commit_status.is_empty() {
        return Err("commit status cannot be empty".into());
    }
    let (_, id) = commitstatus::parse_git_address(&s.url)?;
    let Some((user, pass)) = s.token.split_once(':').filter(|(_, p)| !p.contains(':')) else {
        return Err("invalid token format, expected to be <user>:<password>".into());
    };
    let parts: Vec<&str> = id.split('/').collect();
    if parts.len() != 2 {
        return Err(format!("invalid repository id {id:?}"));
    }
    if event.reason == "Progressing" {
        return Ok(None);
    }
    let rev = commitstatus::revision(event)?;
    let state = state(event, "can't convert to bitbucket state")?;
    let key = commitstatus::sha1_hex(&s.commit_status);
    let name = commitstatus::lower_name(event);
    let desc = commitstatus::description(event);
    let statuses = format!(
        "{}/repositories/{}/{}/commit/{rev}/statuses/build",
        base.trim_end_matches('/'),
        parts[0],
        parts[1]
    );
    let mut list = commitstatus::get(format!("{statuses}/{key}"));
    list.basic_auth(user, pass);
    let mut create = Request::post_json(
        statuses,
        to_go_json(&CloudStatus {
            key: &key,
            url: "https://bitbucket.org",
            state,
            name: &name,
            description: &desc,
        }),
    );
    create.basic_auth(user, pass);
    Ok(Some(Plan {
        list,
        create,
        duplicate: same_state_and_description,
        list_error: "could not get commit status",
        create_error: "",
        missing_ok: true,
    }))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ServerStatus<'a> {
    description: &'a str,
    key: &'a str,
    name: &'a str,
    state: &'a str,
    url: &'a str,
}

/// The builds endpoint base of a Bitbucket Server clone URL.
pub fn server_commits_url(address: &str) -> Result<reqwest::Url, String> {
    let mut url =
        reqwest::Url::parse(address).map_err(|e| format!("could not parse git address: {e}"))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(format!(
            "could not parse git address: unsupported scheme type in address: {}. Must be http or https",
            url.scheme()
        ));
    }
    let path = url.path().to_string();
    let id_with_context = path.strip_suffix(".git").unwrap_or(&path);
    let Some(at) = id_with_context.rfind("/scm/") else {
        return Err(
            "could not parse git address: supplied provider address is not http(s) git clone url"
                .into(),
        );
    };
    let context = &id_with_context[..at];
    let id = &id_with_context[at + "/scm/".len()..];
    let parts: Vec<&str> = id.split('/').collect();
    if parts.len() != 2 {
        return Err(format!(
            "could not parse git address: invalid repository id {id:?}"
        ));
    }
    url.set_path(&format!(
        "{context}/rest/api/latest/projects/{}/repos/{}/commits",
        parts[0], parts[1]
    ));
    Ok(url)
}

fn server_duplicate(listed: &serde_json::Value, create: &Request) -> bool {
    let Ok(want) = serde_json::from_slice::<serde_json::Value>(&create.body) else {
        return false;
    };
    !listed.is_null()
        && ["key", "state", "description", "name"].iter().all(|k| {
            listed[*k].as_str().unwrap_or_default() == want[*k].as_str().unwrap_or_default()
        })
}

pub fn server(s: &Settings, event: &Event) -> Result<Option<Plan>, String> {
    let url = server_commits_url(&s.url)?;
    if s.commit_status.is_empty() {
        return Err("commit status cannot be empty".into());
    }
    if s.token.is_empty() && (s.username.is_empty() || s.password.is_empty()) {
        return Err(
            "invalid credentials, expected to be one of username/password or API Token".into(),
        );
    }
    if event.reason == "Progressing" {
        return Ok(None);
    }
    let rev =
        commitstatus::revision(event).map_err(|e| format!("could not parse revision: {e}"))?;
    let state = state(
        event,
        "bitbucket server state generated on info or error events only",
    )
    .map_err(|e| format!("couldn't convert to bitbucket server state: {e}"))?;
    let desc = commitstatus::description(event);
    let name = format!("{} [{desc}]", commitstatus::lower_name(event));
    let key = commitstatus::sha1_hex(&s.commit_status);
    let builds = format!("{}/{rev}/builds", url.as_str().trim_end_matches('/'));
    let auth = |r: &mut Request| {
        if s.token.is_empty() {
            r.basic_auth(&s.username, &s.password);
        } else {
            r.set("Authorization", format!("Bearer {}", s.token));
        }
        r.add("x-atlassian-token", "no-check");
        r.add("x-requested-with", "XMLHttpRequest");
    };
    let mut list = commitstatus::get(format!("{builds}?key={key}"));
    auth(&mut list);
    // json.Encoder: HTML-safe escapes and a trailing newline.
    let mut body = to_go_json(&ServerStatus {
        description: &desc,
        key: &key,
        name: &name,
        state,
        url: &s.url,
    });
    body.push(b'\n');
    let mut create = Request::post_json(builds, body);
    auth(&mut create);
    Ok(Some(Plan {
        list,
        create,
        duplicate: server_duplicate,
        list_error: "could not get existing commit status",
        create_error: "could not post build status",
        missing_ok: true,
    }))
}
