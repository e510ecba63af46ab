//! `ferroflux push artifact`, `pull artifact`, `tag artifact` and `list artifacts`: Flux's OCI
//! artifact commands with `flux`'s flags, output and artifact format (the registry layer and
//! the format live in `ferroflux-oci`).

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use clap::{Args, Subcommand};
use ferroflux_oci::artifact::{self, Metadata};
use ferroflux_oci::auth::{Credentials, Keychain};
use ferroflux_oci::client::{ClientOptions, Registry, is_local_registry};
use ferroflux_oci::{ArtifactRef, Repository, Resolved};

#[derive(Subcommand, Debug)]
pub enum PushCommand {
    /// Push an artifact: a tarball of a directory or a single file, uploaded to an OCI
    /// repository in Flux's format (config `application/vnd.cncf.flux.config.v1+json`, layer
    /// `application/vnd.cncf.flux.content.v1.tar+gzip`, annotations
    /// `org.opencontainers.image.{created,source,revision}`), as `flux push artifact`.
    ///
    /// Credentials come from --creds, else from the Docker config
    /// ($DOCKER_CONFIG/config.json or ~/.docker/config.json).
    ///
    /// Example:
    ///   ferroflux push artifact oci://ghcr.io/org/config/app:$(git rev-parse --short HEAD) \
    ///     --path=./manifests --source="$(git config --get remote.origin.url)" \
    ///     --revision="$(git branch --show-current)@sha1:$(git rev-parse HEAD)"
    #[command(verbatim_doc_comment)]
    Artifact(PushArgs),
}

#[derive(Subcommand, Debug)]
pub enum PullCommand {
    /// Pull an artifact and extract its first layer into a directory, as `flux pull artifact`.
    ///
    /// Example:
    ///   ferroflux pull artifact oci://ghcr.io/org/config/app:v1 --output ./out
    #[command(verbatim_doc_comment)]
    Artifact(PullArgs),
}

#[derive(Subcommand, Debug)]
pub enum TagCommand {
    /// Add tags to an artifact (the manifest is copied unchanged, so the digest stays), as
    /// `flux tag artifact`.
    ///
    /// Example:
    ///   ferroflux tag artifact oci://ghcr.io/org/config/app:v1.0.0 --tag latest
    #[command(verbatim_doc_comment)]
    Artifact(TagArgs),
}

#[derive(Subcommand, Debug)]
pub enum ListCommand {
    /// List the artifacts of a repository with their digest, source and revision, as
    /// `flux list artifacts` (cosign `.sig`/`.att`/`.sbom` tags left out).
    ///
    /// Example:
    ///   ferroflux list artifacts oci://ghcr.io/org/config/app --filter-semver '>=1.0.0'
    #[command(verbatim_doc_comment)]
    Artifacts(ListArgs),
}

/// Flags every artifact command shares.
#[derive(Args, Debug, Clone)]
pub struct RegistryArgs {
    /// Credentials for the OCI registry in the format <username>[:<password>] (a value
    /// without ':' is a registry token).
    #[arg(long)]
    creds: Option<String>,
    /// The OCI provider name: only 'generic' (cloud logins are not implemented).
    #[arg(long, default_value = "generic")]
    provider: String,
    /// Allow the registry to be reached without TLS (plain HTTP, or HTTPS without certificate
    /// checks). Registries on localhost, loopback and private addresses are tried over plain
    /// HTTP anyway, as flux does.
    #[arg(long = "insecure-registry")]
    insecure_registry: bool,
    /// How long the whole command may take (Go duration).
    #[arg(long, default_value = "5m")]
    timeout: String,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// The artifact URL: oci://<registry>/<repository>[:<tag>] (tag 'latest' when omitted).
    url: String,
    /// Path to the directory with the Kubernetes manifests, a single file, or '-' for stdin.
    #[arg(long, short = 'f')]
    path: Option<String>,
    /// The source address, e.g. the Git URL.
    #[arg(long)]
    source: Option<String>,
    /// The source revision in the format '<branch|tag>@sha1:<commit-sha>'.
    #[arg(long)]
    revision: Option<String>,
    /// Paths to ignore in .gitignore format (comma-separated or repeated); replaces the
    /// defaults (VCS files and archive/image extensions).
    #[arg(long = "ignore-paths", value_delimiter = ',', default_values_t = ferroflux_oci::build::default_ignore_paths())]
    ignore_paths: Vec<String>,
    /// Additional paths to ignore in .gitignore format (appended to --ignore-paths).
    #[arg(long = "add-ignore-paths", value_delimiter = ',')]
    add_ignore_paths: Vec<String>,
    /// Custom OCI annotations in the format '<key>=<value>' (repeatable).
    #[arg(long, short = 'a')]
    annotations: Vec<String>,
    /// Print the artifact URL, repository, tag and digest as 'json' or 'yaml' on stdout.
    #[arg(long, short = 'o')]
    output: Option<String>,
    /// Reproducible digests: the created annotation is '1970-01-01T00:00:00Z'.
    #[arg(long)]
    reproducible: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

#[derive(Args, Debug)]
pub struct PullArgs {
    /// The artifact URL: oci://<registry>/<repository>[:<tag>|@<digest>].
    url: String,
    /// The directory the artifact content is extracted into (must exist).
    #[arg(long, short = 'o')]
    output: Option<PathBuf>,
    /// (ferroflux) The most the layer may download and unpack to, in bytes; untrusted
    /// archives are also refused `..`, absolute paths and links leaving the directory.
    #[arg(long = "max-size", default_value_t = 1 << 30)]
    max_size: u64,
    #[command(flatten)]
    registry: RegistryArgs,
}

#[derive(Args, Debug)]
pub struct TagArgs {
    /// The artifact URL: oci://<registry>/<repository>[:<tag>|@<digest>].
    url: String,
    /// The new tag(s) (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    tag: Vec<String>,
    #[command(flatten)]
    registry: RegistryArgs,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// The repository URL: oci://<registry>/<repository>.
    url: String,
    /// Keep the tags matching this semver range.
    #[arg(long = "filter-semver")]
    filter_semver: Option<String>,
    /// Keep the tags matching this regular expression.
    #[arg(long = "filter-regex")]
    filter_regex: Option<String>,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// The artifact commands alone, for running `ferroflux push artifact ...` in-process (the
/// end-to-end tests do): `args` are what follows `ferroflux`.
#[derive(clap::Parser, Debug)]
#[command(name = "ferroflux")]
struct ArtifactCli {
    #[command(subcommand)]
    command: ArtifactCommand,
}

#[derive(Subcommand, Debug)]
enum ArtifactCommand {
    Push {
        #[command(subcommand)]
        command: PushCommand,
    },
    Pull {
        #[command(subcommand)]
        command: PullCommand,
    },
    Tag {
        #[command(subcommand)]
        command: TagCommand,
    },
    List {
        #[command(subcommand)]
        command: ListCommand,
    },
}

/// Runs one artifact command (`["push", "artifact", "oci://...", ...]`) as the `ferroflux`
/// binary would, on its own runtime: call it outside async contexts (or in `spawn_blocking`).
pub fn run<I, T>(args: I) -> anyhow::Result<()>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    use clap::Parser as _;
    let cli = ArtifactCli::try_parse_from(
        std::iter::once(std::ffi::OsString::from("ferroflux"))
            .chain(args.into_iter().map(Into::into)),
    )?;
    match cli.command {
        ArtifactCommand::Push { command } => push(command),
        ArtifactCommand::Pull { command } => pull(command),
        ArtifactCommand::Tag { command } => tag(command),
        ArtifactCommand::List { command } => list(command),
    }
}

fn action(msg: &str) {
    eprintln!("► {msg}");
}

fn success(msg: &str) {
    eprintln!("✔ {msg}");
}

/// Runs `fut` on a fresh runtime within the command's timeout.
fn block_on<T>(
    timeout: &str,
    fut: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let limit = ferroflux_api::duration::parse_go_duration(timeout)
        .map_err(|e| anyhow!("invalid --timeout: {e}"))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match tokio::time::timeout(limit, fut).await {
            Ok(r) => r,
            Err(_) => Err(anyhow!("context deadline exceeded (timeout {timeout})")),
        }
    })
}

/// Parses `<username>[:<password>]` as upstream: a value without ':' is a token.
fn parse_creds(creds: &str) -> anyhow::Result<Credentials> {
    if creds.is_empty() {
        bail!("could not login with credentials: credentials cannot be empty");
    }
    Ok(match creds.split_once(':') {
        Some((user, pass)) => Credentials {
            username: user.to_string(),
            password: pass.to_string(),
        },
        None => Credentials {
            username: String::new(),
            password: creds.to_string(),
        },
    })
}

/// Credentials from the Docker config file (`auths`; credential helpers are not run).
fn docker_config_credentials(repo: &Repository) -> anyhow::Result<Option<Credentials>> {
    let file = match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => PathBuf::from(dir).join("config.json"),
        None => match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(".docker").join("config.json"),
            None => return Ok(None),
        },
    };
    let data = match std::fs::read(&file) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(anyhow!("failed to read {}: {e}", file.display())),
    };
    let mut keychain = Keychain::default();
    keychain
        .add_secret(
            &file.display().to_string(),
            &BTreeMap::from([(".dockerconfigjson".to_string(), data)]),
        )
        .map_err(|e| anyhow!(e))?;
    Ok(keychain.lookup(&repo.registry, &repo.path).cloned())
}

async fn connect(repo: &Repository, args: &RegistryArgs) -> anyhow::Result<Registry> {
    if args.provider != "generic" {
        bail!(
            "error during login with provider: provider '{}' is not supported by ferroflux (use --creds or a Docker config)",
            args.provider
        );
    }
    let credentials = match args.creds.as_deref() {
        Some(c) => {
            action("logging in to registry with credentials");
            Some(parse_creds(c)?)
        }
        None => docker_config_credentials(repo)?,
    };
    let opts = ClientOptions {
        insecure: args.insecure_registry,
        allow_http: args.insecure_registry || is_local_registry(&repo.registry),
        credentials,
        ..ClientOptions::default()
    };
    Registry::connect(repo, &opts)
        .await
        .map_err(|e| anyhow!("{e}"))
}

pub fn push(cmd: PushCommand) -> anyhow::Result<()> {
    let PushCommand::Artifact(args) = cmd;
    let source = args
        .source
        .clone()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| anyhow!("--source is required"))?;
    let revision = args
        .revision
        .clone()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| anyhow!("--revision is required"))?;
    let path_arg = args.path.clone().unwrap_or_default();
    if path_arg.is_empty() {
        bail!("invalid path \"{path_arg}\"");
    }
    let reference = ArtifactRef::parse(&args.url).map_err(|e| anyhow!(e))?;
    let Resolved::Tag(tag) = &reference.reference else {
        bail!(
            "artifact tag parsing failed: '{}' names a digest, not a tag",
            args.url
        );
    };
    if let Some(o) = args.output.as_deref()
        && o != "json"
        && o != "yaml"
    {
        bail!("invalid --output '{o}': must be 'json' or 'yaml'");
    }
    // `-` reads the content from stdin into a temporary file, as upstream.
    let _stdin_file;
    let path: PathBuf = if path_arg == "-" {
        let mut data = Vec::new();
        std::io::stdin()
            .read_to_end(&mut data)
            .context("failed to read stdin")?;
        let dir = tempfile_dir()?;
        let file = dir.join(format!("{}.yaml", std::process::id()));
        std::fs::write(&file, &data).context("failed to save stdin")?;
        _stdin_file = RemoveOnDrop(dir);
        file
    } else {
        PathBuf::from(&path_arg)
    };
    if let Err(e) = std::fs::metadata(&path) {
        bail!(
            "invalid path '{}', must point to an existing directory or file: {e}",
            path.display()
        );
    }
    let mut annotations = BTreeMap::new();
    for a in &args.annotations {
        let parts: Vec<&str> = a.split('=').collect();
        if parts.len() != 2 {
            bail!("invalid annotation {a}, must be in the format key=value");
        }
        annotations.insert(parts[0].to_string(), parts[1].to_string());
    }
    let meta = Metadata {
        created: if args.reproducible {
            artifact::REPRODUCIBLE_CREATED.to_string()
        } else {
            String::new()
        },
        source,
        revision,
        annotations,
    };
    let mut ignore = args.ignore_paths.clone();
    ignore.extend(args.add_ignore_paths.iter().cloned());
    let name = reference.name();
    let pushed = block_on(&args.registry.timeout, async {
        let registry = connect(&reference.repo, &args.registry).await?;
        if args.output.is_none() {
            action(&format!("pushing artifact to {name}"));
        }
        artifact::push(&registry, tag, &path, &ignore, &meta)
            .await
            .map_err(|e| anyhow!("pushing artifact failed: {e}"))
    })?;
    let repository = format!("{}/{}", reference.repo.registry, reference.repo.path);
    let digest_url = reference.repo.digest_ref(&pushed.digest);
    match args.output.as_deref() {
        Some("json") => {
            let info = serde_json::json!({
                "url": format!("oci://{digest_url}"),
                "repository": repository,
                "tag": tag,
                "digest": pushed.digest,
            });
            // Field order as upstream's struct: url, repository, tag, digest.
            println!(
                "{{\n  \"url\": {},\n  \"repository\": {},\n  \"tag\": {},\n  \"digest\": {}\n}}",
                info["url"], info["repository"], info["tag"], info["digest"]
            );
        }
        Some(_) => {
            // sigs.k8s.io/yaml sorts the keys.
            println!(
                "digest: {}\nrepository: {repository}\ntag: {}\nurl: oci://{digest_url}",
                pushed.digest,
                yaml_scalar(tag)
            );
        }
        None => success(&format!("artifact successfully pushed to {digest_url}")),
    }
    Ok(())
}

/// A tag as a YAML plain scalar, quoted when YAML would read it as something else.
fn yaml_scalar(s: &str) -> String {
    let reserved = [
        "true", "false", "yes", "no", "on", "off", "null", "~", "y", "n",
    ];
    let numeric = s.parse::<f64>().is_ok();
    if numeric || reserved.contains(&s.to_ascii_lowercase().as_str()) {
        format!("\"{s}\"")
    } else {
        s.to_string()
    }
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "ferroflux-artifact-{}-{nanos:x}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
    Ok(dir)
}

pub fn pull(cmd: PullCommand) -> anyhow::Result<()> {
    let PullCommand::Artifact(args) = cmd;
    let output = args
        .output
        .clone()
        .filter(|o| !o.as_os_str().is_empty())
        .ok_or_else(|| anyhow!("output path cannot be empty"))?;
    match std::fs::metadata(&output) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => bail!(
            "invalid output path \"{}\": not a directory",
            output.display()
        ),
        Err(e) => bail!("invalid output path \"{}\": {e}", output.display()),
    }
    let reference = ArtifactRef::parse(&args.url).map_err(|e| anyhow!(e))?;
    let scratch = RemoveOnDrop(tempfile_dir()?);
    let blob = scratch.0.join("layer");
    let name = reference.name();
    let pulled = block_on(&args.registry.timeout, async {
        let registry = connect(&reference.repo, &args.registry).await?;
        action(&format!("pulling artifact from {name}"));
        artifact::pull_first_layer(&registry, &reference.reference, &blob, Some(args.max_size))
            .await
            .map_err(|e| anyhow!("{e}"))
    })?;
    extract(&blob, &output, args.max_size, &pulled.layer)?;
    if !pulled.manifest.source().is_empty() {
        success(&format!("source {}", pulled.manifest.source()));
    }
    if !pulled.manifest.revision().is_empty() {
        success(&format!("revision {}", pulled.manifest.revision()));
    }
    success(&format!(
        "digest {}",
        reference.repo.digest_ref(&pulled.digest)
    ));
    success(&format!(
        "artifact content extracted to {}",
        output.display()
    ));
    Ok(())
}

/// Unpacks the layer through the runtime's safe untar (no absolute paths, no `..`, no links
/// leaving the directory, size and entry limits).
fn extract(
    blob: &Path,
    dest: &Path,
    max_size: u64,
    layer: &artifact::Descriptor,
) -> anyhow::Result<()> {
    let mut file = std::fs::File::open(blob).context("extracting layer failed")?;
    let mut magic = [0u8; 2];
    let n = file.read(&mut magic).context("extracting layer failed")?;
    if n < 2 || magic != [0x1f, 0x8b] {
        bail!(
            "extracting layer failed: layer {} ({}) is not a gzip tarball",
            layer.digest,
            layer.media_type
        );
    }
    let file = std::fs::File::open(blob).context("extracting layer failed")?;
    let gz = flate2::read::GzDecoder::new(std::io::BufReader::new(file));
    let limits = ferroflux_runtime::artifact::UntarLimits {
        max_size,
        ..Default::default()
    };
    ferroflux_runtime::artifact::untar(gz, dest, limits)
        .map_err(|e| anyhow!("extracting layer failed: {e}"))?;
    Ok(())
}

pub fn tag(cmd: TagCommand) -> anyhow::Result<()> {
    let TagCommand::Artifact(args) = cmd;
    if args.tag.is_empty() {
        bail!("--tag is required");
    }
    let reference = ArtifactRef::parse(&args.url).map_err(|e| anyhow!(e))?;
    for t in &args.tag {
        ferroflux_oci::validate_tag(t).map_err(|e| anyhow!("tagging artifact failed: {e}"))?;
    }
    block_on(&args.registry.timeout, async {
        let registry = connect(&reference.repo, &args.registry).await?;
        action("tagging artifact");
        for t in &args.tag {
            artifact::tag(&registry, &reference.reference, t)
                .await
                .map_err(|e| anyhow!("tagging artifact failed: {e}"))?;
            success(&format!("artifact tagged as {}", reference.repo.tag_ref(t)));
        }
        Ok(())
    })
}

pub fn list(cmd: ListCommand) -> anyhow::Result<()> {
    let ListCommand::Artifacts(args) = cmd;
    let reference = ArtifactRef::parse(&args.url).map_err(|e| anyhow!(e))?;
    let constraint = match args.filter_semver.as_deref().filter(|s| !s.is_empty()) {
        Some(range) => Some(
            ferroflux_semver::Constraints::parse(range)
                .map_err(|e| anyhow!("semver '{range}' parse error: {e}"))?,
        ),
        None => None,
    };
    let re = match args.filter_regex.as_deref().filter(|s| !s.is_empty()) {
        Some(r) => Some(regex::Regex::new(r).map_err(|e| anyhow!("regex '{r}' parse error: {e}"))?),
        None => None,
    };
    let keep = |tag: &str| {
        if let Some(c) = &constraint {
            match source_controller::oci::strict_version(tag) {
                Some(v) if c.matches(&v) => {}
                _ => return false,
            }
        }
        re.as_ref().is_none_or(|re| re.is_match(tag))
    };
    let rows = block_on(&args.registry.timeout, async {
        let registry = connect(&reference.repo, &args.registry).await?;
        artifact::list(&registry, keep)
            .await
            .map_err(|e| anyhow!("{e}"))
    })?;
    let table: Vec<[String; 4]> = rows
        .into_iter()
        .map(|r| [r.url, r.digest, r.source, r.revision])
        .collect();
    print!(
        "{}",
        render_table(["ARTIFACT", "DIGEST", "SOURCE", "REVISION"], &table)
    );
    Ok(())
}

/// Columns padded to their widest cell and separated by a tab, as flux's table printer.
fn render_table(header: [&str; 4], rows: &[[String; 4]]) -> String {
    let mut widths = header.map(str::len);
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: [&str; 4]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("{}\n", padded.join("\t").trim_end())
    };
    let mut out = line(header);
    for r in rows {
        out.push_str(&line([&r[0], &r[1], &r[2], &r[3]]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creds_and_tables() {
        let c = parse_creds("user:pa:ss").unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("user", "pa:ss")
        );
        let t = parse_creds("token").unwrap();
        assert_eq!((t.username.as_str(), t.password.as_str()), ("", "token"));
        assert!(parse_creds("").is_err());
        let table = render_table(
            ["ARTIFACT", "DIGEST", "SOURCE", "REVISION"],
            &[["r:v1".into(), "sha256:a".into(), "".into(), "".into()]],
        );
        assert_eq!(
            table,
            "ARTIFACT\tDIGEST  \tSOURCE\tREVISION\nr:v1    \tsha256:a\n"
        );
        assert_eq!(yaml_scalar("1.0"), "\"1.0\"");
        assert_eq!(yaml_scalar("v1.0.0"), "v1.0.0");
    }
}
