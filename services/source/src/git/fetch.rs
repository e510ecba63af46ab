//! Fetching one reference with gix (blocking; run it on a blocking thread).
//!
//! The remote's references are listed first (ls-refs, filtered by the wanted prefix), the wanted
//! reference is resolved locally (exact branch/tag/name, highest semver tag, or a commit), then
//! only that tip is fetched, with depth 1 where the server supports shallow fetches. An
//! unchanged remote tip for a branch, tag or name returns [`CloneOutcome::Unchanged`] without
//! fetching (upstream's `OptimizedGitClones`).

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use gix::bstr::ByteSlice;
use gix::protocol::handshake::Ref;
use gix::remote::Direction;
use gix::remote::fetch::{Shallow, Tags};
use gix_transport::client::blocking_io::Transport;

use super::auth::{AuthOptions, Transport as Scheme, write_ssh_wrapper};
use super::checkout::{CheckoutOptions, write_tree};
use super::{Commit, GitError, Reference, Tag};

/// What to fetch and how.
#[derive(Clone, Debug)]
pub struct CloneConfig {
    pub url: String,
    pub reference: Reference,
    pub auth: AuthOptions,
    /// The revision of the stored artifact, when it is known to be in storage.
    pub last_observed_revision: Option<String>,
    pub recurse_submodules: bool,
    /// Directories to check out (everything when `None`).
    pub sparse_checkout: Option<Vec<String>>,
    pub ssh_kex_algos: Vec<String>,
    pub ssh_hostkey_algos: Vec<String>,
    /// Bound on network I/O (socket timeouts for `git://`, request timeout for HTTP(S)).
    pub timeout: Option<std::time::Duration>,
}

/// The result of a clone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CloneOutcome {
    /// The remote reference still points at the last observed revision; nothing was fetched.
    Unchanged { hash: String, reference: String },
    /// The commit was fetched and its tree written to the checkout directory.
    CheckedOut { commit: Commit, shallow: bool },
}

fn clone_err(url: &str, e: impl std::fmt::Display) -> GitError {
    GitError::Clone {
        url: url.to_string(),
        reason: one_line(&e.to_string()),
    }
}

/// A gix error with its chain of causes, on one line.
fn gerr(url: &str, e: &(dyn std::error::Error + 'static)) -> GitError {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(c) = cur {
        let msg = c.to_string();
        if parts.last().is_none_or(|l| !l.contains(&msg)) {
            parts.push(msg);
        }
        cur = c.source();
    }
    clone_err(url, parts.join(": "))
}

fn one_line(s: &str) -> String {
    s.split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(": ")
}

/// Fetches the configured reference of `cfg.url` into a bare repository under `work` and
/// writes its tree into `checkout`.
pub fn clone(
    cfg: &CloneConfig,
    work: &Path,
    checkout: &Path,
    interrupt: &AtomicBool,
) -> Result<CloneOutcome, GitError> {
    let url = cfg.url.as_str();
    let scheme = Scheme::of(url).map_err(|e| clone_err(url, e))?;
    std::fs::create_dir_all(work)
        .map_err(|e| clone_err(url, format!("failed to create work directory: {e}")))?;
    let mut overrides: Vec<String> = vec!["protocol.version=2".into()];
    if scheme == Scheme::Ssh {
        let wrapper = write_ssh_wrapper(
            &work.join("ssh"),
            &cfg.auth,
            &cfg.ssh_kex_algos,
            &cfg.ssh_hostkey_algos,
        )
        .map_err(|e| clone_err(url, format!("failed to prepare SSH: {e}")))?;
        overrides.push(format!("core.sshCommand={}", wrapper.display()));
    }
    let open = gix::open::Options::isolated().config_overrides(overrides);
    let repo = gix::ThreadSafeRepository::init_opts(
        work.join("repo.git"),
        gix::create::Kind::Bare,
        gix::create::Options::default(),
        open,
    )
    .map_err(|e| clone_err(url, format!("failed to initialise repository: {e}")))?
    .to_thread_local();

    // 1. List the remote's references.
    let (list_spec, shallow_ok) = match &cfg.reference {
        Reference::Branch(b) => (Some(format!("refs/heads/{b}")), true),
        Reference::Tag(t) => (Some(format!("refs/tags/{t}")), true),
        Reference::SemVer(_) => (Some("refs/tags/*:refs/tags/*".to_string()), true),
        Reference::Name(n) => (Some(n.clone()), true),
        Reference::Commit { branch, .. } => {
            (branch.as_ref().map(|b| format!("refs/heads/{b}")), true)
        }
    };
    let refs = match &list_spec {
        Some(spec) => list_refs(&repo, cfg, spec)?,
        None => Vec::new(),
    };

    // 2. Resolve the wanted reference.
    let (full_ref, commit_id, tag_id, fetch_spec) = match &cfg.reference {
        Reference::Branch(b) => {
            let full = format!("refs/heads/{b}");
            let (obj, tag) = find_ref(&refs, &full)
                .ok_or_else(|| clone_err(url, GitError::RefNotFound(full.clone())))?;
            (full.clone(), obj, tag, full)
        }
        Reference::Tag(t) => {
            let full = format!("refs/tags/{t}");
            let (obj, tag) = find_ref(&refs, &full)
                .ok_or_else(|| clone_err(url, GitError::RefNotFound(full.clone())))?;
            (full.clone(), obj, tag, full)
        }
        Reference::Name(n) => {
            let (obj, tag) = find_ref(&refs, n)
                .ok_or_else(|| clone_err(url, GitError::RefNotFound(n.clone())))?;
            (n.clone(), obj, tag, n.clone())
        }
        Reference::SemVer(range) => {
            let tied = pick_semver(&refs, range)?;
            let (name, obj, tag) = latest_commit(&repo, cfg, tied, interrupt)?;
            let full = format!("refs/tags/{name}");
            (full.clone(), obj, tag, full)
        }
        Reference::Commit { commit, branch } => {
            let full = branch
                .as_ref()
                .map(|b| format!("refs/heads/{b}"))
                .unwrap_or_default();
            if let Some(b) = branch
                && find_ref(&refs, &full).is_none()
            {
                return Err(clone_err(
                    url,
                    GitError::RefNotFound(format!("refs/heads/{b}")),
                ));
            }
            let id = gix::ObjectId::from_hex(commit.as_bytes())
                .map_err(|_| GitError::CommitNotFound(commit.clone()))?;
            (full, id, None, commit.clone())
        }
    };

    // 3. Nothing to do when the remote still points at the stored revision.
    if let (Some(last), false) = (&cfg.last_observed_revision, cfg.recurse_submodules)
        && !matches!(
            cfg.reference,
            Reference::Commit { .. } | Reference::SemVer(_)
        )
    {
        let hash = commit_id.to_string();
        let current = if cfg.reference.absolute() {
            super::absolute_revision(&full_ref, &hash)
        } else {
            super::short_revision(&full_ref, &hash)
        };
        if &current == last {
            return Ok(CloneOutcome::Unchanged {
                hash,
                reference: full_ref,
            });
        }
    }

    // 4. Fetch just that tip.
    let depth = NonZeroU32::new(1).filter(|_| shallow_ok);
    match &cfg.reference {
        Reference::Commit {
            branch: Some(b), ..
        } => {
            // The commit must be reachable from the branch: fetch the branch's history.
            fetch_specs(&repo, cfg, &[format!("refs/heads/{b}")], None, interrupt)?;
        }
        Reference::Commit { branch: None, .. } => {
            if fetch_specs(
                &repo,
                cfg,
                std::slice::from_ref(&fetch_spec),
                depth,
                interrupt,
            )
            .is_err()
            {
                // The server refuses unadvertised objects: fetch every branch and tag instead.
                fetch_specs(
                    &repo,
                    cfg,
                    &[
                        "refs/heads/*:refs/heads/*".into(),
                        "refs/tags/*:refs/tags/*".into(),
                    ],
                    None,
                    interrupt,
                )?;
            }
        }
        _ => {
            fetch_specs(
                &repo,
                cfg,
                &[format!("+{fetch_spec}:refs/ferroflux/target")],
                depth,
                interrupt,
            )?;
        }
    }
    let shallow = repo.is_shallow().unwrap_or(false);

    // 5. Read the commit (and tag) and write the tree.
    let object = repo
        .find_object(commit_id)
        .map_err(|_| match &cfg.reference {
            Reference::Commit { commit, .. } => GitError::CommitNotFound(commit.clone()),
            _ => clone_err(url, format!("object {commit_id} missing after fetch")),
        })?;
    let commit_obj = object.try_into_commit().map_err(|e| match &cfg.reference {
        Reference::Commit { commit, .. } => GitError::CommitNotFound(commit.clone()),
        _ => clone_err(url, format!("'{full_ref}' does not point at a commit: {e}")),
    })?;
    let message = commit_obj
        .message_raw()
        .map(|m| m.to_str_lossy().into_owned())
        .unwrap_or_default();
    let (signature, payload) = match commit_obj.signature() {
        Ok(Some((sig, signed))) => (
            Some(sig.to_str_lossy().into_owned()),
            signed.to_bstring().to_vec(),
        ),
        _ => (None, commit_obj.data.clone()),
    };
    let referencing_tag = match tag_id {
        Some(id) => read_tag(&repo, id),
        None => None,
    };
    let tree_id = commit_obj
        .tree_id()
        .map_err(|e| clone_err(url, format!("unable to read tree: {e}")))?
        .detach();
    let commit = Commit {
        hash: commit_id.to_string(),
        reference: full_ref,
        message,
        signature,
        payload,
        referencing_tag,
    };
    let opts = CheckoutOptions {
        sparse: cfg.sparse_checkout.clone(),
    };
    write_tree(&repo, tree_id, checkout, &opts).map_err(GitError::Checkout)?;
    if cfg.recurse_submodules {
        super::checkout::checkout_submodules(&repo, tree_id, checkout, cfg, work, interrupt)?;
    }
    Ok(CloneOutcome::CheckedOut { commit, shallow })
}

fn read_tag(repo: &gix::Repository, id: gix::ObjectId) -> Option<Tag> {
    let obj = repo.find_object(id).ok()?;
    let data = obj.data.clone();
    let tag = obj.try_into_tag().ok()?;
    let name = tag.decode().ok()?.name.to_str_lossy().into_owned();
    let (signature, payload) = match gix::objs::TagRefIter::signature(&data) {
        Some((sig, signed)) => (
            Some(sig.data.to_str_lossy().into_owned()),
            signed.to_bstring().to_vec(),
        ),
        None => (None, data.clone()),
    };
    Some(Tag {
        hash: id.to_string(),
        name,
        signature,
        payload,
    })
}

/// (peeled object, annotated tag object) of a listed reference.
fn find_ref(refs: &[Ref], full: &str) -> Option<(gix::ObjectId, Option<gix::ObjectId>)> {
    refs.iter().find_map(|r| match r {
        Ref::Direct {
            full_ref_name,
            object,
        } if full_ref_name == full => Some((*object, None)),
        Ref::Peeled {
            full_ref_name,
            tag,
            object,
        } if full_ref_name == full => Some((*object, Some(*tag))),
        Ref::Symbolic {
            full_ref_name,
            tag,
            object,
            ..
        } if full_ref_name == full => Some((*object, *tag)),
        _ => None,
    })
}

/// A tag matching a semver range: (short name, peeled commit, annotated tag object).
type SemverCandidate = (String, gix::ObjectId, Option<gix::ObjectId>);

/// The tags with the highest version matching the range (Masterminds semantics: `v` prefix
/// allowed, pre-releases only when the range names one), sorted by name. More than one when
/// versions are equal in precedence (`v1.0.0` and `1.0.0`, or only build metadata differs).
fn pick_semver(refs: &[Ref], range: &str) -> Result<Vec<SemverCandidate>, GitError> {
    let constraint = ferroflux_semver::Constraints::parse(range).map_err(GitError::SemverParse)?;
    let mut best: Option<ferroflux_semver::Version> = None;
    let mut tied: Vec<SemverCandidate> = Vec::new();
    for r in refs {
        let (name, object, tag) = match r {
            Ref::Direct {
                full_ref_name,
                object,
            } => (full_ref_name, *object, None),
            Ref::Peeled {
                full_ref_name,
                tag,
                object,
            } => (full_ref_name, *object, Some(*tag)),
            _ => continue,
        };
        let Some(short) = name
            .to_str()
            .ok()
            .and_then(|n| n.strip_prefix("refs/tags/"))
        else {
            continue;
        };
        let Ok(v) = ferroflux_semver::Version::parse(short) else {
            continue;
        };
        if !constraint.matches(&v) {
            continue;
        }
        match best.as_ref().map(|b| v.cmp(b)) {
            Some(std::cmp::Ordering::Less) => continue,
            Some(std::cmp::Ordering::Equal) => {}
            None | Some(std::cmp::Ordering::Greater) => {
                best = Some(v);
                tied.clear();
            }
        }
        tied.push((short.to_string(), object, tag));
    }
    if tied.is_empty() {
        return Err(GitError::NoSemverMatch(range.to_string()));
    }
    tied.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(tied)
}

/// Among tags of equal version, the one whose commit has the latest committer time, as
/// upstream orders them; equal times fall back to the greatest tag name (upstream's order is
/// then unspecified). Fetches the tied commits (depth 1) only when there is a tie.
fn latest_commit(
    repo: &gix::Repository,
    cfg: &CloneConfig,
    mut tied: Vec<SemverCandidate>,
    interrupt: &AtomicBool,
) -> Result<SemverCandidate, GitError> {
    if tied.len() < 2 {
        return tied
            .pop()
            .ok_or_else(|| GitError::NoSemverMatch(String::new()));
    }
    let specs: Vec<String> = tied
        .iter()
        .enumerate()
        .map(|(i, (name, ..))| format!("+refs/tags/{name}:refs/ferroflux/semver/{i}"))
        .collect();
    fetch_specs(repo, cfg, &specs, NonZeroU32::new(1), interrupt)?;
    let url = cfg.url.as_str();
    let mut timed = Vec::with_capacity(tied.len());
    for candidate in tied {
        let time = repo
            .find_commit(candidate.1)
            .map_err(|e| {
                clone_err(
                    url,
                    format!("unable to read commit of tag '{}': {e}", candidate.0),
                )
            })?
            .time()
            .map_err(|e| {
                clone_err(
                    url,
                    format!("unable to read commit time of tag '{}': {e}", candidate.0),
                )
            })?
            .seconds;
        timed.push((time, candidate));
    }
    timed.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.0.cmp(&b.1.0)));
    timed
        .pop()
        .map(|(_, c)| c)
        .ok_or_else(|| GitError::NoSemverMatch(String::new()))
}

fn list_refs(repo: &gix::Repository, cfg: &CloneConfig, spec: &str) -> Result<Vec<Ref>, GitError> {
    let url = cfg.url.as_str();
    let remote = repo
        .remote_at(url)
        .map_err(|e| gerr(url, &e))?
        .with_fetch_tags(Tags::None);
    match daemon_transport(cfg)? {
        Some(t) => list_with(remote.to_connection_with_transport(t), repo, cfg, spec),
        None => {
            let conn = remote
                .connect(Direction::Fetch)
                .map_err(|e| gerr(url, &e))?;
            list_with(conn, repo, cfg, spec)
        }
    }
}

fn list_with<T: Transport>(
    mut conn: gix::remote::Connection<'_, '_, '_, T>,
    repo: &gix::Repository,
    cfg: &CloneConfig,
    spec: &str,
) -> Result<Vec<Ref>, GitError> {
    let url = cfg.url.as_str();
    configure(&mut conn, repo, cfg)?;
    let extra = gix::refspec::parse(spec.into(), gix::refspec::parse::Operation::Fetch)
        .map_err(|e| clone_err(url, format!("invalid reference '{spec}': {e}")))?
        .to_owned();
    let (map, _) = conn
        .ref_map(
            gix::progress::Discard,
            gix::remote::ref_map::Options {
                extra_refspecs: vec![extra],
                ..Default::default()
            },
        )
        .map_err(|e| gerr(url, &e))?;
    Ok(map.remote_refs)
}

/// A `git://` transport whose socket reads and writes time out with the object's timeout, so a
/// stalled daemon cannot hold a worker thread forever (gix's own has no I/O timeout).
fn daemon_transport(
    cfg: &CloneConfig,
) -> Result<
    Option<
        gix_transport::client::git::blocking_io::Connection<
            std::net::TcpStream,
            std::net::TcpStream,
        >,
    >,
    GitError,
> {
    use std::net::ToSocketAddrs;
    let url = cfg.url.as_str();
    if Scheme::of(url).ok() != Some(Scheme::Git) {
        return Ok(None);
    }
    let parsed = gix::url::parse(url.as_bytes()).map_err(|e| gerr(url, &e))?;
    let host = parsed
        .host()
        .ok_or_else(|| clone_err(url, "missing host"))?
        .to_string();
    let port = parsed.port;
    let timeout = cfg.timeout.unwrap_or(std::time::Duration::from_secs(60));
    let addr = (host.as_str(), port.unwrap_or(9418))
        .to_socket_addrs()
        .map_err(|e| clone_err(url, format!("could not resolve git server: {e}")))?
        .next()
        .ok_or_else(|| clone_err(url, "could not resolve git server"))?;
    let read = std::net::TcpStream::connect_timeout(
        &addr,
        timeout.min(std::time::Duration::from_secs(30)),
    )
    .map_err(|e| clone_err(url, format!("could not connect to git server: {e}")))?;
    read.set_read_timeout(Some(timeout))
        .and_then(|_| read.set_write_timeout(Some(timeout)))
        .map_err(|e| clone_err(url, e))?;
    let write = read.try_clone().map_err(|e| clone_err(url, e))?;
    Ok(Some(
        gix_transport::client::git::blocking_io::Connection::new(
            read,
            write,
            gix_transport::Protocol::V2,
            parsed.path.clone(),
            Some((host, port)),
            gix_transport::client::git::ConnectMode::Daemon,
            false,
        ),
    ))
}

fn fetch_specs(
    repo: &gix::Repository,
    cfg: &CloneConfig,
    specs: &[String],
    depth: Option<NonZeroU32>,
    interrupt: &AtomicBool,
) -> Result<(), GitError> {
    let url = cfg.url.as_str();
    let remote = repo
        .remote_at(url)
        .map_err(|e| gerr(url, &e))?
        .with_fetch_tags(Tags::None);
    match daemon_transport(cfg)? {
        Some(t) => fetch_with(
            remote.to_connection_with_transport(t),
            repo,
            cfg,
            specs,
            depth,
            interrupt,
        ),
        None => {
            let conn = remote
                .connect(Direction::Fetch)
                .map_err(|e| gerr(url, &e))?;
            fetch_with(conn, repo, cfg, specs, depth, interrupt)
        }
    }
}

fn fetch_with<T: Transport>(
    mut conn: gix::remote::Connection<'_, '_, '_, T>,
    repo: &gix::Repository,
    cfg: &CloneConfig,
    specs: &[String],
    depth: Option<NonZeroU32>,
    interrupt: &AtomicBool,
) -> Result<(), GitError> {
    let url = cfg.url.as_str();
    configure(&mut conn, repo, cfg)?;
    let mut extra = Vec::new();
    for s in specs {
        extra.push(
            gix::refspec::parse(s.as_str().into(), gix::refspec::parse::Operation::Fetch)
                .map_err(|e| clone_err(url, format!("invalid refspec '{s}': {e}")))?
                .to_owned(),
        );
    }
    let mut prepare = conn
        .prepare_fetch(
            gix::progress::Discard,
            gix::remote::ref_map::Options {
                extra_refspecs: extra,
                ..Default::default()
            },
        )
        .map_err(|e| gerr(url, &e))?;
    if let Some(d) = depth {
        prepare = prepare.with_shallow(Shallow::DepthAtRemote(d));
    }
    prepare
        .receive(gix::progress::Discard, interrupt)
        .map_err(|e| gerr(url, &e))?;
    Ok(())
}

/// Credentials and HTTP client settings for one connection.
fn configure<T: Transport>(
    conn: &mut gix::remote::Connection<'_, '_, '_, T>,
    repo: &gix::Repository,
    cfg: &CloneConfig,
) -> Result<(), GitError> {
    let url = cfg.url.as_str();
    let auth = cfg.auth.clone();
    match (&auth.username, &auth.password) {
        (Some(user), pass) => {
            let user = user.clone();
            let pass = pass.clone().unwrap_or_default();
            conn.set_credentials(move |action| match action {
                gix::credentials::helper::Action::Get(ctx) => {
                    Ok(Some(gix::credentials::protocol::Outcome {
                        identity: gix::sec::identity::Account {
                            username: user.clone(),
                            password: pass.clone(),
                            oauth_refresh_token: None,
                        },
                        next: ctx.into(),
                    }))
                }
                _ => Ok(None),
            });
        }
        (None, _) => {
            // Never fall back to helpers or prompts.
            conn.set_credentials(|_| Ok(None));
        }
    }
    let scheme = Scheme::of(url).map_err(|e| clone_err(url, e))?;
    if !matches!(scheme, Scheme::Http | Scheme::Https) {
        return Ok(());
    }
    let Some(mut opts) = repo
        .transport_options(url, None)
        .map_err(|e| gerr(url, &e))?
    else {
        return Ok(());
    };
    let Some(http) = opts.downcast_mut::<gix_transport::client::blocking_io::http::Options>()
    else {
        return Ok(());
    };
    let ca = auth.ca_file.clone();
    let identity = match (&auth.client_cert, &auth.client_key) {
        (Some(c), Some(k)) => {
            let mut pem = c.clone();
            if !pem.ends_with(b"\n") {
                pem.push(b'\n');
            }
            pem.extend_from_slice(k);
            Some(pem)
        }
        _ => None,
    };
    let proxy = auth.proxy.clone();
    let bearer = auth.bearer_token.clone();
    let timeout = cfg.timeout;
    let backend = gix_transport::client::blocking_io::http::reqwest::Options {
        configure_client: Some(Box::new(
            move |mut builder: reqwest::blocking::ClientBuilder| {
                if let Some(t) = timeout {
                    builder = builder.timeout(t);
                }
                if let Some(ca) = &ca {
                    for cert in reqwest::Certificate::from_pem_bundle(ca)
                        .map_err(gix::error::Error::from_error)?
                    {
                        builder = builder.add_root_certificate(cert);
                    }
                }
                if let Some(pem) = &identity {
                    let id =
                        reqwest::Identity::from_pem(pem).map_err(gix::error::Error::from_error)?;
                    builder = builder.identity(id);
                }
                if let Some(p) = &proxy {
                    let mut px =
                        reqwest::Proxy::all(&p.address).map_err(gix::error::Error::from_error)?;
                    if let Some(u) = &p.username {
                        px = px.basic_auth(u, p.password.as_deref().unwrap_or_default());
                    }
                    builder = builder.proxy(px);
                }
                Ok(builder)
            },
        )),
        configure_request: bearer.map(|token| {
            Box::new(move |req: &mut reqwest::blocking::Request| {
                if let Ok(v) = reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")) {
                    req.headers_mut().insert(reqwest::header::AUTHORIZATION, v);
                }
                Ok(())
            })
                as Box<gix_transport::client::blocking_io::http::reqwest::ConfigureRequestFn>
        }),
    };
    http.backend = Some(Arc::new(Mutex::new(backend)));
    if auth.proxy.is_none() {
        http.proxy = Some(String::new());
    }
    conn.set_transport_options(opts);
    Ok(())
}

/// Where a clone keeps its bare repository, next to the checkout.
pub fn repo_dir(work: &Path) -> PathBuf {
    work.join("repo.git")
}
