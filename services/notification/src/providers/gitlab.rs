//! `gitlab`: a commit status on the project in `address` (`<host>/api/v4/projects/<id>`),
//! name = the commit status id, state success/failed, description = the reason in words;
//! statuses with that name are listed first and an identical one is not posted again.

use serde::Serialize;

use super::commitstatus::{self, Plan};
use super::{Request, Settings};
use crate::event::{Event, to_go_json};

#[derive(Serialize)]
struct SetStatus<'a> {
    state: &'a str,
    name: &'a str,
    description: &'a str,
}

/// Path-escapes a project id (`group/repo` -> `group%2Frepo`).
pub fn escape(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn query_escape(s: &str) -> String {
    escape(s).replace("%20", "+")
}

fn duplicate(listed: &serde_json::Value, create: &Request) -> bool {
    let Ok(want) = serde_json::from_slice::<serde_json::Value>(&create.body) else {
        return false;
    };
    let sha = create
        .url
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    listed.as_array().into_iter().flatten().any(|s| {
        s["sha"] == sha.as_str()
            && s["status"] == want["state"]
            && s["description"] == want["description"]
            && s["name"] == want["name"]
    })
}

pub fn build(s: &Settings, commit_status: &str, event: &Event) -> Result<Option<Plan>, String> {
    if s.token.is_empty() {
        return Err("gitlab token cannot be empty".into());
    }
    let (host, id) = commitstatus::parse_git_address(&s.url)?;
    if commit_status.is_empty() {
        return Err("commit status cannot be empty".into());
    }
    if event.reason == "Progressing" {
        return Ok(None);
    }
    let rev = commitstatus::revision(event)?;
    let state = match event.severity.as_str() {
        "info" => "success",
        "error" => "failed",
        _ => return Err("can't convert to gitlab state".into()),
    };
    let desc = commitstatus::description(event);
    let project = format!("{host}/api/v4/projects/{}", escape(&id));
    let mut list = Request {
        method: "GET",
        url: format!(
            "{project}/repository/commits/{rev}/statuses?name={}",
            query_escape(commit_status)
        ),
        headers: Vec::new(),
        body: Vec::new(),
        validate: super::Validate::Status2xx,
    };
    list.set("PRIVATE-TOKEN", s.token.clone());
    list.set("Accept", "application/json");
    let mut create = Request::post_json(
        format!("{project}/statuses/{rev}"),
        to_go_json(&SetStatus {
            state,
            name: commit_status,
            description: &desc,
        }),
    );
    create.set("PRIVATE-TOKEN", s.token.clone());
    create.set("Accept", "application/json");
    Ok(Some(Plan {
        list,
        create,
        duplicate,
        list_error: "unable to list commit status",
        create_error: "",
        missing_ok: false,
    }))
}
