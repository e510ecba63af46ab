//! Pull/merge request comments: `githubpullrequestcomment`, `gitlabmergerequestcomment` and
//! `giteapullrequestcomment`. As upstream: the event's `change_request` metadata names the pull
//! (merge) request; the comment body is a hidden key marker
//! (`<!-- flux-pr-comment-key:<provider UID>/<kind>/<namespace>/<name> -->`, `flux-mr-...` on
//! GitLab) followed by the Markdown post; the authenticated user is asked for, the request's
//! comments are listed (oldest first, 100), and the first one of that user carrying the marker
//! is edited, otherwise a new comment is created. So each object keeps one comment per Provider.

use serde::Serialize;

use super::commitstatus::{self, parse_git_address};
use super::{Request, Settings, Validate, send_request};
use crate::event::{Event, to_go_json};

/// The Git host a comment goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Host {
    GitHub,
    GitLab,
    Gitea,
}

/// One comment delivery.
#[derive(Clone, Debug)]
pub struct Plan {
    pub host: Host,
    /// Asks who the token belongs to.
    pub user: Request,
    /// Lists the request's comments.
    pub list: Request,
    /// The key marker a comment of ours carries.
    pub marker: String,
    /// Creates the comment (its body is also the body of an edit).
    pub create: Request,
    /// URL of a comment to edit, without the comment id.
    pub edit_prefix: String,
    pub edit_method: &'static str,
}

/// Upstream's key marker of an event's comment.
pub fn marker(prefix: &str, provider_uid: &str, event: &Event) -> String {
    let o = &event.involved_object;
    format!(
        "<!-- {prefix}:{provider_uid}/{}/{}/{} -->",
        o.kind, o.namespace, o.name
    )
}

/// The comment body: the marker, a blank line, the Markdown post.
pub fn body(marker: &str, event: &Event) -> String {
    format!("{marker}\n\n{}", super::zulip::markdown_post(event))
}

/// The pull/merge request number in the event's `change_request` metadata.
fn number(event: &Event) -> Result<i64, String> {
    let v = event
        .metadata
        .get("change_request")
        .ok_or_else(|| "missing \"change_request\" metadata key".to_string())?;
    v.parse::<i64>().map_err(|_| {
        format!(
            "invalid \"change_request\" metadata value {v:?}: strconv.Atoi: parsing {v:?}: invalid syntax"
        )
    })
}

fn token_or_password(s: &Settings) -> String {
    if s.token.is_empty() {
        s.password.clone()
    } else {
        s.token.clone()
    }
}

#[derive(Serialize)]
struct Comment<'a> {
    body: &'a str,
}

pub fn github(s: &Settings, event: &Event) -> Result<Plan, String> {
    if s.provider_uid.is_empty() {
        return Err("provider UID cannot be empty".into());
    }
    let token = super::github::token(s)?;
    let (base, owner, repo) = super::github::repository(s)?;
    let marker = marker("flux-pr-comment-key", &s.provider_uid, event);
    let text = body(&marker, event);
    let n = number(event)?;
    let with_headers = |mut r: Request| {
        super::github::headers(&mut r, &token);
        r
    };
    // go-github's encoder: no HTML escaping, a trailing newline.
    let mut json = serde_json::to_vec(&Comment { body: &text }).map_err(|e| e.to_string())?;
    json.push(b'\n');
    let issue = format!("{base}repos/{owner}/{repo}/issues");
    Ok(Plan {
        host: Host::GitHub,
        user: with_headers(commitstatus::get(format!("{base}user"))),
        list: with_headers(commitstatus::get(format!(
            "{issue}/{n}/comments?direction=asc&per_page=100&sort=created"
        ))),
        marker,
        create: with_headers(Request::post_json(format!("{issue}/{n}/comments"), json)),
        edit_prefix: format!("{issue}/comments/"),
        edit_method: "PATCH",
    })
}

pub fn gitlab(s: &Settings, event: &Event) -> Result<Plan, String> {
    if s.provider_uid.is_empty() {
        return Err("provider UID cannot be empty".into());
    }
    let token = token_or_password(s);
    if token.is_empty() {
        return Err("gitlab token cannot be empty".into());
    }
    let (host, id) = parse_git_address(&s.url)?;
    let marker = marker("flux-mr-comment-key", &s.provider_uid, event);
    let text = body(&marker, event);
    let iid = number(event)?;
    let with_headers = |mut r: Request| {
        r.set("PRIVATE-TOKEN", token.clone());
        r.set("Accept", "application/json");
        r
    };
    let notes = format!(
        "{host}/api/v4/projects/{}/merge_requests/{iid}/notes",
        super::gitlab::escape(&id)
    );
    Ok(Plan {
        host: Host::GitLab,
        user: with_headers(commitstatus::get(format!("{host}/api/v4/user"))),
        list: with_headers(commitstatus::get(format!(
            "{notes}?order_by=created_at&per_page=100&sort=asc"
        ))),
        marker,
        create: with_headers(Request::post_json(
            notes.clone(),
            to_go_json(&Comment { body: &text }),
        )),
        edit_prefix: format!("{notes}/"),
        edit_method: "PUT",
    })
}

pub fn gitea(s: &Settings, event: &Event) -> Result<Plan, String> {
    if s.provider_uid.is_empty() {
        return Err("provider UID cannot be empty".into());
    }
    let token = token_or_password(s);
    if token.is_empty() {
        return Err("gitea token cannot be empty".into());
    }
    let (host, id) = parse_git_address(&s.url)?;
    let parts: Vec<&str> = id.split('/').collect();
    if parts.len() != 2 {
        return Err(format!("invalid repository id {id:?}"));
    }
    let marker = marker("flux-pr-comment-key", &s.provider_uid, event);
    let text = body(&marker, event);
    let n = number(event)?;
    let with_headers = |mut r: Request| {
        r.set("Authorization", format!("token {token}"));
        r.set("Content-Type", "application/json");
        r
    };
    let issues = format!("{host}/api/v1/repos/{}/{}/issues", parts[0], parts[1]);
    Ok(Plan {
        host: Host::Gitea,
        user: with_headers(commitstatus::get(format!("{host}/api/v1/user"))),
        list: with_headers(commitstatus::get(format!(
            "{issues}/{n}/comments?limit=100&page=1"
        ))),
        marker,
        create: with_headers(Request::post_json(
            format!("{issues}/{n}/comments"),
            to_go_json(&Comment { body: &text }),
        )),
        edit_prefix: format!("{issues}/comments/"),
        edit_method: "PATCH",
    })
}

/// Who the token belongs to, and who wrote a listed comment, in each host's JSON.
fn login(host: Host, user: &serde_json::Value) -> Option<&str> {
    match host {
        Host::GitLab => user["username"].as_str(),
        Host::GitHub | Host::Gitea => user["login"].as_str(),
    }
}

fn author(host: Host, comment: &serde_json::Value) -> Option<&str> {
    match host {
        Host::GitLab => comment["author"]["username"].as_str(),
        Host::GitHub | Host::Gitea => comment["user"]["login"].as_str(),
    }
}

pub async fn send(client: &reqwest::Client, plan: &Plan) -> Result<(), String> {
    let (what, list_err) = match plan.host {
        Host::GitLab => ("merge request note", "failed to list merge request notes"),
        _ => (
            "pull request comment",
            "failed to list pull request comments",
        ),
    };
    let user = commitstatus::fetch_json(client, &plan.user, false)
        .await
        .map_err(|e| format!("failed to get authenticated user info: {e}"))?;
    let me = login(plan.host, &user).unwrap_or_default().to_string();
    let listed = commitstatus::fetch_json(client, &plan.list, false)
        .await
        .map_err(|e| format!("{list_err}: {e}"))?;
    let ours = listed.as_array().into_iter().flatten().find(|c| {
        author(plan.host, c) == Some(me.as_str())
            && c["body"].as_str().is_some_and(|b| b.contains(&plan.marker))
    });
    match ours.and_then(|c| c["id"].as_i64()) {
        Some(id) => {
            let mut edit = plan.create.clone();
            edit.method = plan.edit_method;
            edit.url = format!("{}{id}", plan.edit_prefix);
            edit.validate = Validate::Status2xx;
            send_request(client, &edit)
                .await
                .map_err(|e| format!("failed to update {what}: {e}"))
        }
        None => send_request(client, &plan.create)
            .await
            .map_err(|e| format!("failed to create {what}: {e}")),
    }
}
