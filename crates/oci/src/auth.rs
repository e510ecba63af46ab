//! Registry credentials from image pull Secrets (`kubernetes.io/dockerconfigjson` with a
//! `.dockerconfigjson` key, or the legacy `kubernetes.io/dockercfg` with `.dockercfg`), matched
//! against a registry host the way the kubelet's credential keyring (k8schain) does: the key's
//! host (with `*` globs per label), port and path prefix. `Debug` never prints secrets.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;

/// Username and password for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// One `auths` entry: the registry key it was found under and its credentials.
#[derive(Clone, Debug)]
struct Entry {
    key: String,
    credentials: Credentials,
}

/// The credentials of every pull Secret, in the order they were given.
#[derive(Clone, Debug, Default)]
pub struct Keychain {
    entries: Vec<Entry>,
}

#[derive(serde::Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(serde::Deserialize, Default)]
struct AuthEntry {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    auth: Option<String>,
}

impl Keychain {
    /// Adds the credentials of a pull Secret's data; `name` only names the Secret in errors.
    pub fn add_secret(
        &mut self,
        name: &str,
        data: &BTreeMap<String, Vec<u8>>,
    ) -> Result<(), String> {
        let (auths, legacy) = if let Some(raw) = data.get(".dockerconfigjson") {
            (raw, false)
        } else if let Some(raw) = data.get(".dockercfg") {
            (raw, true)
        } else {
            // k8schain ignores Secrets of other types; nothing to add.
            return Ok(());
        };
        let parsed: BTreeMap<String, AuthEntry> = if legacy {
            serde_json::from_slice(auths)
                .map_err(|e| format!("failed to parse '.dockercfg' of secret '{name}': {e}"))?
        } else {
            serde_json::from_slice::<DockerConfig>(auths)
                .map_err(|e| {
                    format!("failed to parse '.dockerconfigjson' of secret '{name}': {e}")
                })?
                .auths
        };
        for (key, entry) in parsed {
            let (mut username, mut password) = (
                entry.username.unwrap_or_default(),
                entry.password.unwrap_or_default(),
            );
            if let Some(auth) = entry.auth.filter(|a| !a.is_empty()) {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(auth.trim())
                    .map_err(|_| {
                        format!(
                            "invalid 'auth' for registry '{key}' in secret '{name}': not base64"
                        )
                    })?;
                let decoded = String::from_utf8_lossy(&decoded).into_owned();
                let Some((u, p)) = decoded.split_once(':') else {
                    return Err(format!(
                        "invalid 'auth' for registry '{key}' in secret '{name}': expected 'user:password'"
                    ));
                };
                username = u.to_string();
                password = p.to_string();
            }
            if username.is_empty() && password.is_empty() {
                continue;
            }
            self.entries.push(Entry {
                key,
                credentials: Credentials { username, password },
            });
        }
        Ok(())
    }

    /// True when no credentials were added (anonymous access).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The credentials for `registry` (`host[:port]`) and repository `path`: the entry with the
    /// most specific matching key (longest path), the first such one on ties.
    pub fn lookup(&self, registry: &str, path: &str) -> Option<&Credentials> {
        let mut best: Option<(usize, &Credentials)> = None;
        for e in &self.entries {
            if let Some(score) = key_matches(&e.key, registry, path)
                && best.is_none_or(|(b, _)| score > b)
            {
                best = Some((score, &e.credentials));
            }
        }
        best.map(|(_, c)| c)
    }
}

/// Docker Hub's names; a key for any of them matches the others.
const DOCKER_HUB_ALIASES: [&str; 4] = [
    "index.docker.io",
    "docker.io",
    "registry-1.docker.io",
    "registry.hub.docker.com",
];

/// Whether a `auths` key matches; `Some(path length)` as the specificity.
fn key_matches(key: &str, registry: &str, path: &str) -> Option<usize> {
    let key = key
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let (host_port, key_path) = match key.split_once('/') {
        Some((h, p)) => (h, p.trim_end_matches('/')),
        None => (key, ""),
    };
    // Docker Hub keys are usually `https://index.docker.io/v1/`; the path is an API version.
    let hub = |h: &str| DOCKER_HUB_ALIASES.contains(&h);
    let (key_host, key_port) = split_port(host_port);
    let (reg_host, reg_port) = split_port(registry);
    if hub(key_host) && hub(reg_host) {
        return Some(0);
    }
    if key_port != reg_port || !host_matches(key_host, reg_host) {
        return None;
    }
    if key_path.is_empty() {
        return Some(0);
    }
    let prefix_ok = path == key_path || path.starts_with(&format!("{key_path}/"));
    prefix_ok.then_some(key_path.len())
}

fn split_port(host_port: &str) -> (&str, &str) {
    match host_port.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => (h, p),
        _ => (host_port, ""),
    }
}

/// Host equality with `*` globs per label (`*.example.com`), case-insensitive.
fn host_matches(pattern: &str, host: &str) -> bool {
    let p: Vec<&str> = pattern.split('.').collect();
    let h: Vec<&str> = host.split('.').collect();
    p.len() == h.len()
        && p.iter()
            .zip(&h)
            .all(|(p, h)| *p == "*" || p.eq_ignore_ascii_case(h) || glob_label(p, h))
}

fn glob_label(pattern: &str, label: &str) -> bool {
    match pattern.split_once('*') {
        None => false,
        Some((pre, post)) => {
            label.len() >= pre.len() + post.len()
                && label.starts_with(pre)
                && label.ends_with(post)
                && !post.contains('*')
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(json: serde_json::Value) -> BTreeMap<String, Vec<u8>> {
        BTreeMap::from([(
            ".dockerconfigjson".to_string(),
            json.to_string().into_bytes(),
        )])
    }

    #[test]
    fn matches_host_port_and_path_prefix() {
        let mut k = Keychain::default();
        let auth = base64::engine::general_purpose::STANDARD.encode("a:b");
        k.add_secret(
            "s",
            &secret(serde_json::json!({"auths": {
                "127.0.0.1:5000": {"auth": auth},
                "127.0.0.1:5000/team/special": {"username": "c", "password": "d"},
                "https://index.docker.io/v1/": {"username": "hub", "password": "x"},
                "*.example.com": {"username": "glob", "password": "y"},
            }})),
        )
        .unwrap();
        let user = |r: &str, p: &str| k.lookup(r, p).map(|c| c.username.clone());
        assert_eq!(user("127.0.0.1:5000", "app").as_deref(), Some("a"));
        assert_eq!(
            user("127.0.0.1:5000", "team/special/app").as_deref(),
            Some("c")
        );
        assert_eq!(
            user("127.0.0.1:5000", "team/specialist").as_deref(),
            Some("a")
        );
        assert_eq!(user("127.0.0.1:5001", "app"), None);
        assert_eq!(user("127.0.0.1", "app"), None);
        assert_eq!(
            user("index.docker.io", "library/nginx").as_deref(),
            Some("hub")
        );
        assert_eq!(user("r.example.com", "app").as_deref(), Some("glob"));
        assert_eq!(user("a.r.example.com", "app"), None);
        assert!(!format!("{:?}", k.lookup("127.0.0.1:5000", "app").unwrap()).contains('b'));
    }

    #[test]
    fn bad_secrets_are_reported() {
        let mut k = Keychain::default();
        let err = k
            .add_secret(
                "s",
                &BTreeMap::from([(".dockerconfigjson".into(), b"{".to_vec())]),
            )
            .unwrap_err();
        assert!(
            err.starts_with("failed to parse '.dockerconfigjson' of secret 's'"),
            "{err}"
        );
        let err = k
            .add_secret(
                "s",
                &secret(serde_json::json!({"auths": {"r": {"auth": "%%%"}}})),
            )
            .unwrap_err();
        assert_eq!(
            err,
            "invalid 'auth' for registry 'r' in secret 's': not base64"
        );
        k.add_secret("o", &BTreeMap::from([("token".into(), b"x".to_vec())]))
            .unwrap();
        assert!(k.is_empty());
    }
}
