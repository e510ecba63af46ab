//! `gitea`: a commit status on `<host>/api/v1/repos/<owner>/<repo>`, context = the commit
//! status id, state pending (Progressing) / success / failure; an identical latest status with
//! the same context is not posted again.

use serde::Serialize;

use super::commitstatus::{self, Plan};
use super::{Request, Settings};
use crate::event::{Event, to_go_json};

#[derive(Serialize)]
struct CreateStatus<'a> {
    state: &'a str,
    target_url: &'a str,
    description: &'a str,
    context: &'a str,
}

fn duplicate(listed: &serde_json::Value, create: &Request) -> bool {
    let Ok(want) = serde_json::from_slice::<serde_json::Value>(&create.body) else {
        return false;
    };
    let empty = |v: &serde_json::Value| v.as_str().is_none_or(str::is_empty);
    for s in listed.as_array().into_iter().flatten() {
        if empty(&s["context"])
            || empty(&s["status"]) && empty(&s["state"])
            || empty(&s["description"])
        {
            continue;
        }
        if s["context"] == want["context"] {
            let state = if s["status"].is_string() {
                &s["status"]
            } else {
                &s["state"]
            };
            return *state == want["state"] && s["description"] == want["description"];
        }
    }
    false
}

pub fn build(s: &Settings, commit_status: &str, event: &Event) -> Result<Plan, String> {
    if commit_status.is_empty() {
        return Err("commit status cannot be empty".into());
    }
    let token = if s.token.is_empty() {
        s.password.clone()
    } else {
        s.token.clone()
    };
    if token.is_empty() {
        return Err("gitea token cannot be empty".into());
    }
    let (host, id) = commitstatus::parse_git_address(&s.url)?;
    let parts: Vec<&str> = id.split('/').collect();
    if parts.len() != 2 {
        return Err(format!("invalid repository id {id:?}"));
    }
    let rev = commitstatus::revision(event)?;
    let state = if event.reason == "Progressing" {
        "pending"
    } else {
        match event.severity.as_str() {
            "info" => "success",
            "error" => "failure",
            _ => return Err("can't convert to gitea state".into()),
        }
    };
    let desc = commitstatus::description(event);
    let repo = format!("{host}/api/v1/repos/{}/{}", parts[0], parts[1]);
    let mut list = commitstatus::get(format!("{repo}/commits/{rev}/statuses?limit=50&page=1"));
    list.set("Authorization", format!("token {token}"));
    list.set("Content-Type", "application/json");
    let mut create = Request::post_json(
        format!("{repo}/statuses/{rev}"),
        to_go_json(&CreateStatus {
            state,
            target_url: "",
            description: &desc,
            context: commit_status,
        }),
    );
    create.set("Authorization", format!("token {token}"));
    Ok(Plan {
        list,
        create,
        duplicate,
        list_error: "could not list commit statuses",
        create_error: "",
        missing_ok: false,
    })
}
