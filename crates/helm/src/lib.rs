//! Helm chart rendering identical to `helm template`: chart loading (directories and .tgz,
//! subcharts, .helmignore), values (files, `--set`, coalescing, globals, dependency
//! conditions/tags/aliases/import-values), the Sprig and Helm function set on
//! `ferroflux-gotemplate`, and Helm's output (`# Source:` headers, install order, hooks).
//!
//! Entry point: [`template`].

mod chart;
mod crypto;
mod date;
mod decimal;
mod go_regex;
mod objects;
pub mod package;
pub mod release;
mod render;
mod schema;
mod schema_format;
mod semver;
mod sha1;
mod sprig;
mod toml;
mod url;
mod values;
pub mod yaml;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use ferroflux_gotemplate::Value;

pub use chart::{Chart, Dependency, load as load_chart};
pub use render::{render, render_as};

/// Which Helm major version to reproduce where v3 and v4 differ.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HelmVersion {
    /// Helm v4.1 (default).
    #[default]
    V4,
    /// Helm v3.19: default kube version v1.34.0, `.Chart` as a struct, Go's raw execution
    /// errors.
    V3,
}

/// Errors, displayed as `helm template` prints them after `Error: `.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Chart(String),
    #[error("{0}")]
    Values(String),
    #[error("{0}")]
    Render(String),
    #[error("{0}")]
    Manifest(String),
}

/// Options of `helm template` that affect rendering.
#[derive(Clone, Debug)]
pub struct TemplateOptions {
    /// `-f/--values` files, in order.
    pub values_files: Vec<PathBuf>,
    /// `--set` arguments, in order.
    pub set: Vec<String>,
    /// `--set-string` arguments, in order (applied after `--set`).
    pub set_string: Vec<String>,
    /// `--set-json` arguments (applied before `--set`).
    pub set_json: Vec<String>,
    /// `--set-file` arguments (`key=path`, applied after `--set-string`).
    pub set_file: Vec<String>,
    /// `--set-literal` arguments (applied last).
    pub set_literal: Vec<String>,
    /// `--namespace` (default `default`).
    pub namespace: String,
    /// `--kube-version` (default `v1.35.0`, as helm v4.1).
    pub kube_version: Option<String>,
    /// `--api-versions`, added to the built-in set.
    pub api_versions: Vec<String>,
    /// `--include-crds`.
    pub include_crds: bool,
    /// `--skip-tests`.
    pub skip_tests: bool,
    /// `--is-upgrade`.
    pub is_upgrade: bool,
    /// `--skip-schema-validation`.
    pub skip_schema_validation: bool,
    /// `--show-only/-s`: only the manifests rendered from templates matching these paths
    /// (globs as `filepath.Match`, relative to the chart, e.g. `templates/service.yaml`).
    pub show_only: Vec<String>,
    /// The Helm version to reproduce.
    pub helm_version: HelmVersion,
}

impl Default for TemplateOptions {
    fn default() -> Self {
        TemplateOptions {
            values_files: Vec::new(),
            set: Vec::new(),
            set_string: Vec::new(),
            set_json: Vec::new(),
            set_file: Vec::new(),
            set_literal: Vec::new(),
            namespace: "default".into(),
            kube_version: None,
            api_versions: Vec::new(),
            include_crds: false,
            skip_tests: false,
            is_upgrade: false,
            skip_schema_validation: false,
            show_only: Vec::new(),
            helm_version: HelmVersion::V4,
        }
    }
}

const DEFAULT_KUBE_VERSION: &str = "v1.35.0";

fn parse_kube_version(v: &str) -> Result<objects::KubeVersion, Error> {
    let t = v.strip_prefix('v').unwrap_or(v);
    let core = t.split(['-', '+']).next().unwrap_or(t);
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() < 2 || parts.iter().any(|p| p.parse::<u64>().is_err()) {
        return Err(Error::Values(format!(
            "invalid kube version '{v}': could not parse \"{v}\" as version"
        )));
    }
    let patch = parts.get(2).copied().unwrap_or("0");
    Ok(objects::KubeVersion {
        version: format!("v{}.{}.{}", parts[0], parts[1], patch),
        major: parts[0].to_string(),
        minor: parts[1].to_string(),
    })
}

/// A `-f` values file: Helm v4 reads every document (`LoadValues`), helm3 the first one.
fn read_values_file(p: &Path, v3: bool) -> Result<BTreeMap<String, Value>, Error> {
    let text = std::fs::read_to_string(p)
        .map_err(|e| Error::Values(format!("open {}: {e}", p.display())))?;
    let failed = |e: String| Error::Values(format!("failed to parse {}: {e}", p.display()));
    if v3 {
        yaml::load_values_v3(&text).map_err(failed)
    } else {
        yaml::load_values(&text).map_err(failed)
    }
}

fn api_versions(extra: &[String]) -> Vec<String> {
    let mut v: Vec<String> =
        serde_json::from_str(include_str!("api_versions.json")).unwrap_or_default();
    v.extend(extra.iter().cloned());
    v
}

/// A manifest after splitting, with the head fields Helm sorts by.
struct Manifest {
    name: String,
    content: String,
    kind: String,
}

const INSTALL_ORDER: &[&str] = &[
    "PriorityClass",
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

/// Helm's `InstallOrder` comparison; helm3 (v3.19) does not list the webhook configurations
/// (the last two kinds of v4's list), so they sort with the unknown kinds, by name.
fn kind_less(a: &str, b: &str, v3: bool) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let order = if v3 {
        &INSTALL_ORDER[..INSTALL_ORDER.len() - 2]
    } else {
        INSTALL_ORDER
    };
    let pa = order.iter().position(|k| *k == a);
    let pb = order.iter().position(|k| *k == b);
    match (pa, pb) {
        (None, None) => a.cmp(b),
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => x.cmp(&y),
    }
}

/// Helm's `SplitManifests` (v4.1).
fn split_manifests(text: &str) -> Vec<String> {
    let t = text.trim();
    let mut docs = Vec::new();
    // separator: (?:^|\s*\n)---\s*
    let mut rest = t;
    let mut cur_start = 0usize;
    let bytes = t.as_bytes();
    let mut i = 0usize;
    let mut pieces: Vec<(usize, usize)> = Vec::new();
    while i < bytes.len() {
        let at_start = i == 0;
        // find "---" either at start or after a newline
        if (at_start || bytes[i - 1] == b'\n') && t[i..].starts_with("---") {
            // back up over whitespace before the newline
            let mut s = i;
            if !at_start {
                s -= 1; // the newline
                while s > cur_start && (bytes[s - 1] as char).is_whitespace() {
                    s -= 1;
                }
            }
            let mut e = i + 3;
            while e < bytes.len() && (bytes[e] as char).is_whitespace() {
                e += 1;
            }
            pieces.push((cur_start, s));
            cur_start = e;
            i = e;
            continue;
        }
        i += 1;
    }
    pieces.push((cur_start, bytes.len()));
    rest = &rest[..0];
    let _ = rest;
    for (a, b) in pieces {
        let d = t[a..b.max(a)].trim();
        if !d.is_empty() {
            docs.push(d.to_string());
        }
    }
    docs
}

fn head(doc: &str, path: &str) -> Result<(String, Option<BTreeMap<String, String>>), Error> {
    let v = yaml::parse_yaml(doc).map_err(|e| {
        Error::Manifest(format!(
            "YAML parse error on {path}: error converting YAML to JSON: {e}"
        ))
    })?;
    let m = match &v {
        Value::Map(m) => m.borrow().clone(),
        Value::Nil => BTreeMap::new(),
        Value::String(_) => {
            return Err(Error::Manifest(format!(
                "YAML parse error on {path}: error unmarshaling JSON: while decoding JSON: json: cannot unmarshal string into Go value of type util.SimpleHead"
            )));
        }
        Value::List(_) => {
            return Err(Error::Manifest(format!(
                "YAML parse error on {path}: error unmarshaling JSON: while decoding JSON: json: cannot unmarshal array into Go value of type util.SimpleHead"
            )));
        }
        other => {
            let kind = if matches!(other, Value::Bool(_)) {
                "bool"
            } else {
                "number"
            };
            return Err(Error::Manifest(format!(
                "YAML parse error on {path}: error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {kind} into Go value of type util.SimpleHead"
            )));
        }
    };
    let kind = m
        .get("kind")
        .and_then(|k| k.as_str().map(str::to_string))
        .unwrap_or_default();
    let ann = m
        .get("metadata")
        .and_then(Value::as_map)
        .and_then(|md| md.borrow().get("annotations").cloned())
        .and_then(|a| a.as_map())
        .map(|a| {
            a.borrow()
                .iter()
                .map(|(k, v)| (k.clone(), sprig::strval(v)))
                .collect::<BTreeMap<_, _>>()
        });
    Ok((kind, ann))
}

const HOOK_EVENTS: &[&str] = &[
    "pre-install",
    "post-install",
    "pre-delete",
    "post-delete",
    "pre-upgrade",
    "post-upgrade",
    "pre-rollback",
    "post-rollback",
    "test",
    "test-success",
];

/// Turn rendered files into `helm template` output.
fn format_output(
    files: &BTreeMap<String, String>,
    chart: &Chart,
    opts: &TemplateOptions,
) -> Result<String, Error> {
    let mut generic: Vec<Manifest> = Vec::new();
    let mut hooks: Vec<(Manifest, bool)> = Vec::new();
    for (path, content) in files {
        let base = path.rsplit('/').next().unwrap_or(path);
        if base.starts_with('_') || content.trim().is_empty() {
            continue;
        }
        for doc in split_manifests(content) {
            let (kind, ann) = head(&doc, path)?;
            let m = Manifest {
                name: path.clone(),
                content: doc,
                kind,
            };
            let Some(ann) = ann.filter(|a| !a.is_empty()) else {
                generic.push(m);
                continue;
            };
            let Some(types) = ann.get("helm.sh/hook") else {
                generic.push(m);
                continue;
            };
            let events: Vec<String> = types.split(',').map(|t| t.trim().to_lowercase()).collect();
            if events.iter().any(|e| !HOOK_EVENTS.contains(&e.as_str())) {
                continue;
            }
            let is_test = events.iter().any(|e| e == "test" || e == "test-success");
            hooks.push((m, is_test));
        }
    }
    let v3 = opts.helm_version == HelmVersion::V3;
    generic.sort_by(|a, b| kind_less(&a.kind, &b.kind, v3));
    hooks.sort_by(|a, b| kind_less(&a.0.kind, &b.0.kind, v3));
    let mut manifest = String::new();
    if opts.include_crds {
        crds(chart, &mut manifest);
    }
    for m in &generic {
        manifest.push_str(&format!("---\n# Source: {}\n{}\n", m.name, m.content));
    }
    let mut out = String::new();
    out.push_str(manifest.trim());
    out.push('\n');
    for (h, is_test) in &hooks {
        if opts.skip_tests && *is_test {
            continue;
        }
        out.push_str(&format!("---\n# Source: {}\n{}\n", h.name, h.content));
    }
    Ok(out)
}

fn crds(c: &Chart, out: &mut String) {
    // Helm's CRDObjects: the chart's crds/ files, then each dependency's.
    for (name, data) in c.crd_files() {
        out.push_str(&format!(
            "---\n# Source: {}/{}\n{}\n",
            c.full_path(),
            name,
            String::from_utf8_lossy(&data)
        ));
    }
    for s in &c.subcharts {
        crds(s, out);
    }
}

/// Helm's release name rule (DNS-1123 subdomain, at most 53 characters).
fn check_release_name(name: &str) -> Result<(), Error> {
    let quoted = ferroflux_gotemplate::gofmt::quote(name);
    if name.is_empty() {
        return Err(Error::Chart(format!(
            "release name check failed: release name {quoted}: no name provided"
        )));
    }
    let label_ok = |l: &str| {
        let b = l.as_bytes();
        !b.is_empty()
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-'
    };
    if name.len() > 53 || !name.split('.').all(label_ok) {
        return Err(Error::Chart(format!(
            "release name check failed: release name {quoted}: invalid release name, must match regex ^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$ and the length must not be longer than 53"
        )));
    }
    Ok(())
}

fn run(release_name: &str, chart_path: &Path, opts: &TemplateOptions) -> Result<String, Error> {
    let v3 = opts.helm_version == HelmVersion::V3;
    let default_kube = if v3 { "v1.34.0" } else { DEFAULT_KUBE_VERSION };
    let kube = parse_kube_version(opts.kube_version.as_deref().unwrap_or(default_kube))?;
    let mut user: BTreeMap<String, Value> = BTreeMap::new();
    for f in &opts.values_files {
        let m = read_values_file(f, v3)?;
        user = values::merge_maps(&user, &m);
    }
    for s in &opts.set_json {
        values::parse_set_json(&mut user, s)?;
    }
    for s in &opts.set {
        values::parse_set(&mut user, s, false)
            .map_err(|e| Error::Values(format!("failed parsing --set data: {e}")))?;
    }
    for s in &opts.set_string {
        values::parse_set(&mut user, s, true)
            .map_err(|e| Error::Values(format!("failed parsing --set-string data: {e}")))?;
    }
    for s in &opts.set_file {
        values::parse_set_file(&mut user, s)
            .map_err(|e| Error::Values(format!("failed parsing --set-file data: {e}")))?;
    }
    for s in &opts.set_literal {
        values::parse_set_literal(&mut user, s)
            .map_err(|e| Error::Values(format!("failed parsing --set-literal data: {e}")))?;
    }
    let mut chart = chart::load_with(chart_path, v3)?;
    match chart.chart_type.as_str() {
        "" | "application" => {}
        t => return Err(Error::Chart(format!("{t} charts are not installable"))),
    }
    let missing: Vec<String> = chart
        .dependencies
        .iter()
        .filter(|d| !chart.subcharts.iter().any(|s| s.name == d.name))
        .map(|d| d.name.clone())
        .collect();
    if !missing.is_empty() {
        return Err(Error::Chart(format!(
            "an error occurred while checking for chart dependencies. You may need to run `helm dependency build` to fetch missing dependencies: found in Chart.yaml, but missing in charts/ directory: {}",
            missing.join(", ")
        )));
    }
    check_release_name(release_name)?;
    values::process_dependencies(&mut chart, &user, v3)?;
    let vals = values::coalesce_values_top(&chart, &user, false, v3)?;
    if !opts.skip_schema_validation
        && let Some(e) = schema::validate(&chart, &vals).map_err(Error::Values)?
    {
        return Err(Error::Values(format!(
            "values don't meet the specifications of the schema(s) in the following chart(s):\n{e}"
        )));
    }
    if !chart.kube_version.is_empty()
        && !semver::is_compatible_range(&chart.kube_version, &kube.version)
    {
        return Err(Error::Chart(format!(
            "chart requires kubeVersion: {} which is incompatible with Kubernetes {}",
            chart.kube_version, kube.version
        )));
    }
    let caps = Value::Object(Rc::new(objects::Capabilities {
        kube: Rc::new(kube),
        apis: Rc::new(objects::ApiVersions(Rc::new(api_versions(
            &opts.api_versions,
        )))),
        helm: objects::HelmVersion { v3 },
    }));
    let mut release = BTreeMap::new();
    release.insert("Name".to_string(), Value::str(release_name));
    release.insert("Namespace".to_string(), Value::str(opts.namespace.as_str()));
    release.insert("IsUpgrade".to_string(), Value::Bool(opts.is_upgrade));
    release.insert("IsInstall".to_string(), Value::Bool(!opts.is_upgrade));
    release.insert("Revision".to_string(), Value::Int(1));
    release.insert("Service".to_string(), Value::str("Helm"));
    let mut top = BTreeMap::new();
    let meta = chart::metadata_map(&chart, true);
    top.insert(
        "Chart".to_string(),
        if v3 {
            Value::Object(Rc::new(objects::ChartStruct(meta)))
        } else {
            meta
        },
    );
    top.insert("Capabilities".to_string(), caps);
    top.insert("Release".to_string(), Value::map(release));
    top.insert("Values".to_string(), vals);
    let top = Value::map(top);
    let mut files = render::render_as(&chart, &top, v3)?;
    files.retain(|k, _| !k.ends_with("NOTES.txt"));
    format_output(&files, &chart, opts).map_err(|e| match (v3, e) {
        (true, Error::Manifest(m)) => {
            Error::Manifest(m.replace("util.SimpleHead", "releaseutil.SimpleHead"))
        }
        (_, e) => e,
    })
}

/// `--show-only`: helm splits the whole output at `---` lines, keeps (in output order, per
/// pattern) the documents whose `# Source: CHART/PATH` matches, and prints each as
/// `---\n{doc}\n`.
fn show_only(out: &str, patterns: &[String]) -> Result<String, Error> {
    // the documents as helm's SplitManifests cuts them (at `^---[ \t]*`)
    let text = out.trim_start();
    let mut docs = Vec::new();
    let mut cur = String::new();
    for line in text.split_inclusive('\n') {
        if let Some(rest) = line.strip_prefix("---") {
            let rest = rest.trim_start_matches([' ', '\t']);
            docs.push(std::mem::take(&mut cur));
            cur.push_str(rest);
            continue;
        }
        cur.push_str(line);
    }
    docs.push(cur);
    let docs: Vec<&str> = docs
        .iter()
        .filter(|d| !d.trim().is_empty())
        .map(|d| d.trim())
        .collect();
    let mut picked = Vec::new();
    for pat in patterns {
        // (filepath.ToSlash changes nothing on Unix: a `\\` stays an escape)
        let mut missing = true;
        for d in &docs {
            let Some(i) = d.find("# Source: ") else {
                continue;
            };
            let line = d[i + "# Source: ".len()..]
                .lines()
                .next()
                .unwrap_or_default();
            let Some((chart, path)) = line.split_once('/') else {
                continue;
            };
            if chart.is_empty() || path.is_empty() || !chart::path_match(pat, path) {
                continue;
            }
            picked.push(*d);
            missing = false;
        }
        if missing {
            return Err(Error::Render(format!(
                "could not find template {pat} in chart"
            )));
        }
    }
    Ok(picked.iter().map(|d| format!("---\n{d}\n")).collect())
}

/// Render a chart like `helm template RELEASE CHART [flags]` and return its standard output.
///
/// Rendering runs on a thread with a large stack so deeply recursive templates fail with
/// Helm's recursion errors instead of overflowing the native stack.
pub fn template(
    release_name: &str,
    chart_path: &Path,
    opts: &TemplateOptions,
) -> Result<String, Error> {
    let name = release_name.to_string();
    let path = chart_path.to_path_buf();
    let opts = opts.clone();
    let handle = std::thread::Builder::new()
        .name("helm-template".into())
        .stack_size(1 << 30)
        .spawn(move || {
            let out = run(&name, &path, &opts)?;
            if opts.show_only.is_empty() {
                Ok(out)
            } else {
                show_only(&out, &opts.show_only)
            }
        })
        .map_err(|e| Error::Render(format!("cannot start render thread: {e}")))?;
    handle
        .join()
        .unwrap_or_else(|_| Err(Error::Render("rendering template failed".into())))
}

/// Random and hostile text through the readers that take user input (YAML with go-yaml's
/// error translation and tab scan, values files, TOML, schema formats): errors, never panics.
#[cfg(test)]
mod robust_tests {
    use rand::{Rng, SeedableRng};

    const PIECES: &[&str] = &[
        "a",
        ": ",
        "- ",
        "\n",
        "\t",
        " ",
        "\"",
        "'",
        "[",
        "]",
        "{",
        "}",
        ",",
        "#",
        "é",
        "€",
        "😀",
        "\\",
        "|",
        ">",
        "&x",
        "*x",
        "!!int",
        "---",
        "...",
        "%",
        "=",
        ".",
        "0x",
        "1",
        "-07:00",
        "T",
        ":",
        "@",
        "~",
        "\r",
        "?",
        "null",
        "[[",
        "]]",
        "\u{10FE80}",
    ];

    fn random_text(rng: &mut rand::rngs::StdRng) -> String {
        let n = rng.random_range(0..40);
        (0..n)
            .map(|_| PIECES[rng.random_range(0..PIECES.len())])
            .collect()
    }

    #[test]
    fn readers_never_panic() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..20_000 {
            let t = random_text(&mut rng);
            let _ = crate::yaml::parse_yaml(&t);
            let _ = crate::yaml::load_values(&t);
            let _ = crate::yaml::load_values_v3(&t);
            let _ = crate::toml::from_toml(&t);
            for f in [
                "email",
                "hostname",
                "ipv4",
                "ipv6",
                "date",
                "time",
                "date-time",
                "uri",
                "uri-reference",
                "uuid",
                "duration",
                "period",
                "semver",
                "json-pointer",
                "relative-json-pointer",
                "regex",
            ] {
                let _ = crate::schema_format::check(f, &t);
            }
        }
    }
}
