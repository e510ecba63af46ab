//! Authentication options of a GitRepository, read from its `secretRef` (and `proxySecretRef`)
//! with upstream's key names and validation rules.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// The transport named by the URL scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Http,
    Https,
    Ssh,
    Git,
    File,
}

impl Transport {
    /// The transport of a URL (`scp`-like `user@host:path` is SSH).
    pub fn of(url: &str) -> Result<Self, String> {
        let scheme = match url.split_once("://") {
            Some((s, _)) => s.to_ascii_lowercase(),
            None if url.contains('@') && url.contains(':') => return Ok(Self::Ssh),
            None if url.starts_with('/') => return Ok(Self::File),
            None => return Err(format!("unsupported URL '{url}': no scheme")),
        };
        match scheme.as_str() {
            "http" => Ok(Self::Http),
            "https" => Ok(Self::Https),
            "ssh" => Ok(Self::Ssh),
            "git" => Ok(Self::Git),
            "file" => Ok(Self::File),
            other => Err(format!("unsupported URL scheme '{other}'")),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
            Self::Ssh => "ssh",
            Self::Git => "git",
            Self::File => "file",
        }
    }
}

/// Proxy settings from `proxySecretRef` (`address`, `username`, `password`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ProxyOptions {
    pub address: String,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl fmt::Debug for ProxyOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyOptions")
            .field("address", &self.address)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl ProxyOptions {
    /// Reads a proxy Secret; `address` is required.
    pub fn from_secret(data: &BTreeMap<String, Vec<u8>>) -> Result<Self, String> {
        let get = |k: &str| {
            data.get(k)
                .map(|v| String::from_utf8_lossy(v).trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let address = get("address")
            .ok_or_else(|| "invalid proxy secret: key 'address' is missing".to_string())?;
        Ok(Self {
            address,
            username: get("username"),
            password: get("password"),
        })
    }
}

/// Credentials and TLS/SSH material for one remote. `Debug` never prints secrets.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AuthOptions {
    pub username: Option<String>,
    pub password: Option<String>,
    pub bearer_token: Option<String>,
    pub ca_file: Option<Vec<u8>>,
    pub client_cert: Option<Vec<u8>>,
    pub client_key: Option<Vec<u8>>,
    pub identity: Option<Vec<u8>>,
    pub known_hosts: Option<Vec<u8>>,
    pub proxy: Option<ProxyOptions>,
}

impl fmt::Debug for AuthOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthOptions")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| "<redacted>"),
            )
            .field("ca_file", &self.ca_file.is_some())
            .field("client_cert", &self.client_cert.is_some())
            .field("identity", &self.identity.is_some())
            .field("known_hosts", &self.known_hosts.is_some())
            .field("proxy", &self.proxy)
            .finish()
    }
}

impl AuthOptions {
    /// Reads the Secret keys upstream reads (`username`, `password`, `bearerToken`, `ca.crt` or
    /// legacy `caFile`, `tls.crt`, `tls.key`, `identity`, `known_hosts`) and validates them for
    /// the URL's transport.
    pub fn from_secret(url: &str, data: &BTreeMap<String, Vec<u8>>) -> Result<Self, String> {
        let transport = Transport::of(url)?;
        let text = |k: &str| {
            data.get(k)
                .map(|v| String::from_utf8_lossy(v).to_string())
                .filter(|v| !v.is_empty())
        };
        let bytes = |k: &str| data.get(k).filter(|v| !v.is_empty()).cloned();
        let opts = Self {
            username: text("username"),
            password: text("password"),
            bearer_token: text("bearerToken"),
            ca_file: bytes("ca.crt").or_else(|| bytes("caFile")),
            client_cert: bytes("tls.crt"),
            client_key: bytes("tls.key"),
            identity: bytes("identity"),
            known_hosts: bytes("known_hosts"),
            proxy: None,
        };
        opts.validate(transport)?;
        Ok(opts)
    }

    fn validate(&self, transport: Transport) -> Result<(), String> {
        let t = transport.name();
        if self.bearer_token.is_some() && (self.username.is_some() || self.password.is_some()) {
            return Err(format!(
                "invalid '{t}' auth option: bearer token and basic auth are mutually exclusive"
            ));
        }
        match transport {
            Transport::Http | Transport::Https => {
                if self.client_cert.is_some() != self.client_key.is_some() {
                    return Err(format!(
                        "invalid '{t}' auth option: 'tls.crt' and 'tls.key' must both be specified"
                    ));
                }
                if self.username.is_some() != self.password.is_some() && self.bearer_token.is_none()
                {
                    // A token used as user name only (GitHub style) is accepted.
                    if self.password.is_some() {
                        return Err(format!(
                            "invalid '{t}' auth option: 'password' requires 'username' to be set"
                        ));
                    }
                }
            }
            Transport::Ssh => {
                if self.identity.is_none() {
                    return Err(format!("invalid '{t}' auth option: 'identity' is required"));
                }
                if self.known_hosts.is_none() {
                    return Err(format!(
                        "invalid '{t}' auth option: 'known_hosts' is required"
                    ));
                }
            }
            Transport::Git | Transport::File => {}
        }
        Ok(())
    }
}

/// Writes the SSH key material and an `ssh` wrapper (named `ssh`, so that gix treats it as
/// OpenSSH) into `dir`; returns the wrapper's path. The wrapper pins the identity and the known
/// hosts, refuses unknown hosts, never prompts and ignores the user's SSH configuration. A key
/// passphrase (`password`) is supplied through `SSH_ASKPASS`.
pub fn write_ssh_wrapper(
    dir: &Path,
    auth: &AuthOptions,
    kex_algos: &[String],
    hostkey_algos: &[String],
) -> io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    set_mode(dir, 0o700)?;
    let quote = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', "'\\''"));
    let mut args: Vec<String> = vec![
        "-F".into(),
        "/dev/null".into(),
        "-o".into(),
        "StrictHostKeyChecking=yes".into(),
        "-o".into(),
        "IdentitiesOnly=yes".into(),
        "-o".into(),
        "PasswordAuthentication=no".into(),
        "-o".into(),
        "KbdInteractiveAuthentication=no".into(),
        "-o".into(),
        "ConnectTimeout=30".into(),
    ];
    if let Some(identity) = &auth.identity {
        let key = dir.join("identity");
        let mut content = identity.clone();
        if !content.ends_with(b"\n") {
            content.push(b'\n');
        }
        std::fs::write(&key, content)?;
        set_mode(&key, 0o600)?;
        args.push("-i".into());
        args.push(quote(&key));
    }
    let known_hosts = dir.join("known_hosts");
    std::fs::write(
        &known_hosts,
        auth.known_hosts.as_deref().unwrap_or_default(),
    )?;
    args.push("-o".into());
    args.push(format!("UserKnownHostsFile={}", quote(&known_hosts)));
    args.push("-o".into());
    args.push("GlobalKnownHostsFile=/dev/null".into());
    if !kex_algos.is_empty() {
        args.push("-o".into());
        args.push(format!("KexAlgorithms={}", kex_algos.join(",")));
    }
    if !hostkey_algos.is_empty() {
        args.push("-o".into());
        args.push(format!("HostKeyAlgorithms={}", hostkey_algos.join(",")));
    }
    let mut env = String::new();
    match &auth.password {
        Some(passphrase) if auth.identity.is_some() => {
            let askpass = dir.join("askpass");
            let pass_file = dir.join("passphrase");
            std::fs::write(&pass_file, passphrase)?;
            set_mode(&pass_file, 0o600)?;
            std::fs::write(
                &askpass,
                format!("#!/bin/sh\nexec cat {}\n", quote(&pass_file)),
            )?;
            set_mode(&askpass, 0o700)?;
            env.push_str(&format!(
                "SSH_ASKPASS={} SSH_ASKPASS_REQUIRE=force DISPLAY=none ",
                quote(&askpass)
            ));
        }
        _ => args.push("-oBatchMode=yes".into()),
    }
    let wrapper = dir.join("ssh");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\n{env}exec ssh {} \"$@\"\n", args.join(" ")),
    )?;
    set_mode(&wrapper, 0o700)?;
    Ok(wrapper)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn reads_keys_and_validates_per_transport() {
        let a = AuthOptions::from_secret(
            "https://example.com/repo.git",
            &secret(&[
                ("username", "git"),
                ("password", "s3cr3t"),
                ("caFile", "PEM"),
            ]),
        )
        .unwrap();
        assert_eq!(a.username.as_deref(), Some("git"));
        assert_eq!(a.ca_file.as_deref(), Some(&b"PEM"[..]));
        assert!(!format!("{a:?}").contains("s3cr3t"));

        let e = AuthOptions::from_secret(
            "https://example.com/repo.git",
            &secret(&[("username", "git"), ("bearerToken", "t")]),
        )
        .unwrap_err();
        assert_eq!(
            e,
            "invalid 'https' auth option: bearer token and basic auth are mutually exclusive"
        );

        let e = AuthOptions::from_secret(
            "ssh://git@example.com/repo.git",
            &secret(&[("identity", "KEY")]),
        )
        .unwrap_err();
        assert_eq!(e, "invalid 'ssh' auth option: 'known_hosts' is required");
        let e = AuthOptions::from_secret(
            "ssh://git@example.com/repo.git",
            &secret(&[("known_hosts", "x")]),
        )
        .unwrap_err();
        assert_eq!(e, "invalid 'ssh' auth option: 'identity' is required");
        let e = AuthOptions::from_secret("https://h/r", &secret(&[("tls.crt", "c")])).unwrap_err();
        assert!(e.contains("'tls.crt' and 'tls.key'"), "{e}");
        assert_eq!(
            Transport::of("git@github.com:org/repo").unwrap(),
            Transport::Ssh
        );
        assert!(Transport::of("ftp://x/y").is_err());
    }

    #[test]
    fn proxy_secret_requires_address() {
        assert!(ProxyOptions::from_secret(&secret(&[("username", "u")])).is_err());
        let p = ProxyOptions::from_secret(&secret(&[
            ("address", "http://proxy:3128"),
            ("password", "pw"),
        ]))
        .unwrap();
        assert_eq!(p.address, "http://proxy:3128");
        assert!(!format!("{p:?}").contains("pw"));
    }
}
