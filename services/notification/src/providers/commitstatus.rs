//! What the Git commit status providers share: the repository address, the commit a revision
//! names, the state and description of a status, and the list-then-create delivery (a status
//! identical to the latest one with the same context is not posted again).

use super::{Request, send_request};
use crate::event::Event;

/// `(scheme://host[:port], owner/repo)` of a repository URL (HTTPS, `ssh://` or scp-like
/// `git@host:owner/repo`; SSH becomes HTTPS), `.git` trimmed.
pub fn parse_git_address(address: &str) -> Result<(String, String), String> {
    let (scheme, rest) = if let Some((scheme, rest)) = address.split_once("://") {
        (scheme.to_string(), rest.to_string())
    } else if let Some((userhost, path)) = address.split_once(':')
        && !userhost.contains('/')
    {
        ("ssh".to_string(), format!("{userhost}/{path}"))
    } else {
        return Err(format!("failed parsing URL {address:?}: no scheme"));
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest.as_str(), ""));
    let host = authority.rsplit('@').next().unwrap_or(authority);
    if host.is_empty() {
        return Err(format!("failed parsing URL {address:?}: no host"));
    }
    let scheme = if scheme == "ssh" {
        "https".to_string()
    } else {
        scheme
    };
    let id = path.trim_start_matches('/');
    let id = id.strip_suffix(".git").unwrap_or(id);
    Ok((format!("{scheme}://{host}"), id.to_string()))
}

/// The commit hash of a revision (`main@sha1:<hex>`, `sha1:<hex>`, legacy `main/<hex>`).
pub fn parse_revision(rev: &str) -> Result<String, String> {
    let last = rev.rsplit('@').next().unwrap_or(rev);
    let hash = if let Some((algo, hex)) = last.split_once(':') {
        matches!(algo, "sha1" | "sha256").then_some(hex)
    } else {
        // Legacy `<branch>/<hash>` or a bare hash.
        Some(last.rsplit('/').next().unwrap_or(last))
    };
    match hash {
        Some(h) if (h.len() == 40 || h.len() == 64) && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(h.to_string())
        }
        _ => Err(format!(
            "failed to extract commit hash from '{rev}' revision"
        )),
    }
}

/// The revision of the event: `originRevision`, else `revision` (metadata already merged).
pub fn revision(event: &Event) -> Result<String, String> {
    let rev = event
        .metadata
        .get("originRevision")
        .or_else(|| event.metadata.get("revision"))
        .ok_or_else(|| "missing revision metadata".to_string())?;
    parse_revision(rev)
}

/// Hex SHA-1 of a string (Bitbucket status keys).
pub fn sha1_hex(s: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, s.as_bytes());
    hex::encode(d.as_ref())
}

/// `kind/name`, lower case (the status name of Bitbucket).
pub fn lower_name(event: &Event) -> String {
    let o = &event.involved_object;
    format!("{}/{}", o.kind, o.name).to_lowercase()
}

/// A GET request with no body.
pub fn get(url: String) -> Request {
    Request {
        method: "GET",
        url,
        headers: Vec::new(),
        body: Vec::new(),
        validate: super::Validate::Status2xx,
    }
}

/// The status description: the reason as lower-case words (`reconciliation succeeded`).
pub fn description(event: &Event) -> String {
    super::pagerduty::split_camel_case(&event.reason)
        .join(" ")
        .to_lowercase()
}

/// A status whose sending depends on the statuses already on the commit.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Lists the statuses of the commit.
    pub list: Request,
    /// Creates the status.
    pub create: Request,
    /// Whether the listed statuses (JSON) already hold this status.
    pub duplicate: fn(&serde_json::Value, &Request) -> bool,
    /// Prefix of the error when listing fails.
    pub list_error: &'static str,
    /// Prefix of the error when creating fails (empty: the error as is).
    pub create_error: &'static str,
    /// A 404 from the list request means "no status yet" (Bitbucket's single-status GETs).
    pub missing_ok: bool,
}

pub async fn send(client: &reqwest::Client, plan: &Plan) -> Result<(), String> {
    let listed = fetch_json(client, &plan.list, plan.missing_ok)
        .await
        .map_err(|e| format!("{}: {e}", plan.list_error))?;
    if (plan.duplicate)(&listed, &plan.create) {
        return Ok(());
    }
    send_request(client, &plan.create).await.map_err(|e| {
        if plan.create_error.is_empty() {
            e
        } else {
            format!("{}: {e}", plan.create_error)
        }
    })
}

/// GETs `req` and decodes its JSON answer (`Null` for a 404 when `missing_ok`).
pub async fn fetch_json(
    client: &reqwest::Client,
    req: &Request,
    missing_ok: bool,
) -> Result<serde_json::Value, String> {
    let mut rb = client.get(&req.url);
    for (k, v) in &req.headers {
        rb = rb.header(k, v);
    }
    let resp = rb.send().await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = resp.bytes().await.map_err(|e| e.to_string())?;
    if missing_ok && status.as_u16() == 404 {
        return Ok(serde_json::Value::Null);
    }
    if !status.is_success() {
        return Err(format!(
            "{} {}: {} {}",
            req.method,
            req.url,
            status.as_u16(),
            String::from_utf8_lossy(&body)
        ));
    }
    serde_json::from_slice(&body).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_revisions() {
        assert_eq!(
            parse_git_address("https://github.com/org/repo.git").unwrap(),
            ("https://github.com".to_string(), "org/repo".to_string())
        );
        assert_eq!(
            parse_git_address("ssh://git@gitlab.example.com:2222/group/sub/repo").unwrap(),
            (
                "https://gitlab.example.com:2222".to_string(),
                "group/sub/repo".to_string()
            )
        );
        assert_eq!(
            parse_git_address("git@github.com:org/repo.git").unwrap(),
            ("https://github.com".to_string(), "org/repo".to_string())
        );
        let sha = "a".repeat(40);
        assert_eq!(parse_revision(&format!("main@sha1:{sha}")).unwrap(), sha);
        assert_eq!(parse_revision(&format!("main/{sha}")).unwrap(), sha);
        assert_eq!(parse_revision(&format!("sha1:{sha}")).unwrap(), sha);
        assert!(parse_revision("v1.2.3").is_err());
    }
}
