//! Charts as files: read from a `.tgz` (Helm's archive loader, with its path checks and size
//! limits) or a directory (`.helmignore`, symlinks only inside the root), the metadata check
//! source-controller runs on a pulled chart, default values rewritten from values files, the
//! version given SemVer build metadata, dependencies added, and packaged as `helm package`
//! writes a chart (Helm's `chartutil.Save`).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use ferroflux_gotemplate::Value;
use serde::{Deserialize, Serialize};

use super::index::{ChartVersion, Dependency, Maintainer};

/// Why a chart could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PackageError(pub String);

fn err(msg: impl Into<String>) -> PackageError {
    PackageError(msg.into())
}

/// Size limits on untrusted charts (source-controller's `--helm-chart-max-size` and
/// `--helm-chart-file-max-size`, Helm's decompressed total).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// The largest chart archive (compressed).
    pub max_chart_size: u64,
    /// The largest file in a chart.
    pub max_file_size: u64,
    /// The most a chart may decompress to.
    pub max_total_size: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_chart_size: 10 << 20,
            max_file_size: 5 << 20,
            max_total_size: 100 << 20,
        }
    }
}

/// A file of a chart, its name relative to the chart root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    pub name: String,
    pub data: Vec<u8>,
    /// Modification time (seconds since the epoch), kept into the package.
    pub mtime: u64,
}

/// Chart.yaml: Helm's `Metadata`, in its field order.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub home: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub maintainers: Vec<Option<Maintainer>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub icon: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub condition: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tags: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub app_version: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deprecated: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kube_version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<Option<Dependency>>,
    #[serde(default, rename = "type", skip_serializing_if = "String::is_empty")]
    pub chart_type: String,
}

impl Metadata {
    /// Helm's `Metadata.Validate` (strings sanitised on the way).
    pub fn validate(&mut self) -> Result<(), PackageError> {
        let v = serde_json::to_value(&*self).map_err(|e| err(e.to_string()))?;
        let mut cv: ChartVersion = serde_json::from_value(v).map_err(|e| err(e.to_string()))?;
        cv.validate().map_err(err)?;
        let mut v = serde_json::to_value(&cv).map_err(|e| err(e.to_string()))?;
        if let Some(o) = v.as_object_mut() {
            for k in [
                "urls",
                "created",
                "removed",
                "digest",
                "checksum",
                "engine",
                "tillerVersion",
                "url",
            ] {
                o.remove(k);
            }
        }
        *self = serde_json::from_value(v).map_err(|e| err(e.to_string()))?;
        Ok(())
    }

    fn deps(&self) -> impl Iterator<Item = &Dependency> {
        self.dependencies.iter().flatten()
    }
}

/// Chart.lock (or requirements.lock).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Lock {
    #[serde(default)]
    pub generated: String,
    #[serde(default)]
    pub digest: String,
    #[serde(default)]
    pub dependencies: Vec<Option<Dependency>>,
}

/// A chart as Helm's loader holds it for packaging.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Chart {
    pub metadata: Metadata,
    /// The modification time of Chart.yaml.
    pub mtime: u64,
    pub lock: Option<Lock>,
    /// values.yaml as read (written back verbatim unless the defaults are replaced).
    pub values_file: Option<File>,
    pub schema: Option<File>,
    pub templates: Vec<File>,
    pub files: Vec<File>,
    pub dependencies: Vec<Chart>,
}

impl Chart {
    pub fn name(&self) -> &str {
        &self.metadata.name
    }

    /// The default values (values.yaml; every document merged, as Helm v4 reads it).
    pub fn values(&self) -> Result<BTreeMap<String, Value>, PackageError> {
        match &self.values_file {
            None => Ok(BTreeMap::new()),
            Some(f) => crate::yaml::load_values(&String::from_utf8_lossy(&f.data))
                .map_err(|e| err(format!("cannot load values.yaml: {e}"))),
        }
    }

    /// The dependencies Chart.yaml (or the lock) asks for that are not in the chart yet,
    /// by alias or name (source-controller's `collectMissing`).
    pub fn missing_dependencies(&self) -> Vec<Dependency> {
        let reqs: Vec<Dependency> = match &self.lock {
            Some(l) => l.dependencies.iter().flatten().cloned().collect(),
            None => self.metadata.deps().cloned().collect(),
        };
        if reqs.len() == self.dependencies.len() {
            return Vec::new();
        }
        let mut missing: BTreeMap<String, Dependency> = BTreeMap::new();
        for d in reqs {
            let name = if d.alias.is_empty() {
                d.name.clone()
            } else {
                d.alias.clone()
            };
            if self.dependencies.iter().any(|c| c.name() == name) {
                continue;
            }
            missing.insert(name, d);
        }
        missing.into_values().collect()
    }
}

fn yaml_to_json(text: &str) -> Result<serde_json::Value, String> {
    let v = crate::yaml::parse_yaml(text)?;
    let json = crate::yaml::to_json(&v, false, None)?;
    serde_json::from_str(&json).map_err(|e| e.to_string())
}

/// Helm's `LoadFiles`: the chart, its lock and its subcharts from files named relative to the
/// chart root.
pub fn load_files(files: Vec<File>, limits: Limits) -> Result<Chart, PackageError> {
    let mut c = Chart::default();
    let mut have_meta = false;
    for f in &files {
        if f.name == "Chart.yaml" {
            let v = yaml_to_json(&String::from_utf8_lossy(&f.data)).map_err(|e| {
                err(format!(
                    "cannot load Chart.yaml: error converting YAML to JSON: {e}"
                ))
            })?;
            c.metadata = if v.is_null() {
                Metadata::default()
            } else {
                serde_json::from_value(v).map_err(|e| {
                    err(format!(
                        "cannot load Chart.yaml: error unmarshaling JSON: {e}"
                    ))
                })?
            };
            if c.metadata.api_version.is_empty() {
                c.metadata.api_version = "v1".into();
            }
            c.mtime = f.mtime;
            have_meta = true;
        }
    }
    let mut subcharts: BTreeMap<String, Vec<File>> = BTreeMap::new();
    for f in files {
        match f.name.as_str() {
            "Chart.yaml" => {}
            "Chart.lock" | "requirements.lock" => {
                let v = yaml_to_json(&String::from_utf8_lossy(&f.data))
                    .map_err(|e| err(format!("cannot load {}: {e}", f.name)))?;
                let lock: Lock = serde_json::from_value(v)
                    .map_err(|e| err(format!("cannot load {}: {e}", f.name)))?;
                c.lock = Some(lock);
                if f.name == "requirements.lock" && c.metadata.api_version == "v1" {
                    c.files.push(f);
                }
            }
            "values.yaml" => {
                crate::yaml::load_values(&String::from_utf8_lossy(&f.data))
                    .map_err(|e| err(format!("cannot load values.yaml: {e}")))?;
                c.values_file = Some(f);
            }
            "values.schema.json" => c.schema = Some(f),
            "requirements.yaml" => {
                let v = yaml_to_json(&String::from_utf8_lossy(&f.data))
                    .map_err(|e| err(format!("cannot load requirements.yaml: {e}")))?;
                let req: Metadata = if v.is_null() {
                    Metadata::default()
                } else {
                    serde_json::from_value(v)
                        .map_err(|e| err(format!("cannot load requirements.yaml: {e}")))?
                };
                if !req.dependencies.is_empty() {
                    c.metadata.dependencies = req.dependencies;
                }
                if c.metadata.api_version == "v1" {
                    c.files.push(f);
                }
            }
            n if n.starts_with("templates/") => c.templates.push(f),
            n if n.starts_with("charts/") => {
                if n.ends_with(".prov") {
                    c.files.push(f);
                    continue;
                }
                let rest = n["charts/".len()..].to_string();
                let cname = rest.split('/').next().unwrap_or("").to_string();
                subcharts
                    .entry(cname)
                    .or_default()
                    .push(File { name: rest, ..f });
            }
            _ => c.files.push(f),
        }
    }
    if !have_meta {
        return Err(err("Chart.yaml file is missing"));
    }
    c.metadata.validate()?;
    for (n, files) in subcharts {
        if n.starts_with(['_', '.']) {
            continue;
        }
        let sub = if n.ends_with(".tgz") {
            let Some(f) = files.into_iter().find(|f| f.name == n) else {
                return Err(err(format!(
                    "error unpacking subchart tar in {}: expected {n}",
                    c.name()
                )));
            };
            load_archive(&f.data, limits)
        } else {
            let inner: Vec<File> = files
                .into_iter()
                .filter_map(|f| {
                    let (_, rest) = f.name.split_once('/')?;
                    Some(File {
                        name: rest.to_string(),
                        ..f
                    })
                })
                .collect();
            load_files(inner, limits)
        };
        let sub = sub.map_err(|e| {
            err(format!(
                "error unpacking subchart {n} in {}: {}",
                c.name(),
                e.0
            ))
        })?;
        c.dependencies.push(sub);
    }
    Ok(c)
}

/// One entry of a chart archive after Helm's path checks: `None` for entries to skip.
fn archive_name(raw: &str) -> Result<Option<(Vec<String>, String)>, PackageError> {
    let delimiter = if raw.contains('\\') { '\\' } else { '/' };
    let parts: Vec<String> = raw.split(delimiter).map(str::to_string).collect();
    let n = parts[1..].join("/");
    if n.starts_with('/') {
        return Err(err("chart illegally contains absolute paths"));
    }
    let cleaned = clean_path(&n);
    if cleaned == "." {
        return Err(err(format!(
            "chart illegally contains content outside the base directory: {raw:?}"
        )));
    }
    if cleaned.starts_with("..") {
        return Err(err("chart illegally references parent directory"));
    }
    let b = cleaned.as_bytes();
    if b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && b[2] == b'/' {
        return Err(err("chart contains illegally named files"));
    }
    Ok(Some((parts, cleaned)))
}

/// Go's `path.Clean`.
fn clean_path(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|l| *l != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            s => out.push(s),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Walks a gzip'd chart archive, calling `f` for each regular file with its parts and clean
/// name; Helm's checks (absolute and parent paths, drive letters, Chart.yaml outside the
/// chart directory) and limits (per file, in total) apply.
fn walk_archive(
    data: &[u8],
    limits: Limits,
    mut f: impl FnMut(&[String], String, Vec<u8>, u64) -> Result<(), PackageError>,
) -> Result<usize, PackageError> {
    if data.len() as u64 > limits.max_chart_size {
        return Err(err(format!(
            "size of chart exceeds '{}' bytes limit",
            limits.max_chart_size
        )));
    }
    let gz = flate2::read::GzDecoder::new(data);
    let mut ar = tar::Archive::new(gz);
    let mut remaining = limits.max_total_size;
    let mut count = 0;
    let entries = ar.entries().map_err(|e| err(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| err(e.to_string()))?;
        let kind = entry.header().entry_type();
        if kind.is_dir() || kind == tar::EntryType::XGlobalHeader || kind == tar::EntryType::XHeader
        {
            continue;
        }
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some((parts, name)) = archive_name(&raw)? else {
            continue;
        };
        if parts[0] == "Chart.yaml" {
            return Err(err("chart yaml not in base directory"));
        }
        if !(kind.is_file()
            || kind == tar::EntryType::Continuous
            || kind == tar::EntryType::GNUSparse)
        {
            return Err(err(format!("chart contains a non-regular file: {raw:?}")));
        }
        let size = entry.size();
        if size > remaining {
            return Err(err(format!(
                "decompressed chart is larger than the maximum size {}",
                limits.max_total_size
            )));
        }
        if size > limits.max_file_size {
            return Err(err(format!(
                "decompressed chart file {raw:?} is larger than the maximum file size {}",
                limits.max_file_size
            )));
        }
        let mtime = entry.header().mtime().unwrap_or(0);
        let mut buf = Vec::with_capacity(size as usize);
        (&mut entry)
            .take(size)
            .read_to_end(&mut buf)
            .map_err(|e| err(e.to_string()))?;
        remaining -= buf.len() as u64;
        if buf.starts_with(&[0xEF, 0xBB, 0xBF]) {
            buf.drain(..3);
        }
        count += 1;
        f(&parts, name, buf, mtime)?;
    }
    Ok(count)
}

/// Helm's `LoadArchive`: a chart from `.tgz` bytes.
pub fn load_archive(data: &[u8], limits: Limits) -> Result<Chart, PackageError> {
    let mut files = Vec::new();
    let n = walk_archive(data, limits, |_, name, data, mtime| {
        files.push(File { name, data, mtime });
        Ok(())
    })?;
    if n == 0 {
        return Err(err("no files in chart archive"));
    }
    load_files(files, limits)
}

/// source-controller's `LoadChartMetadataFromArchive` followed by `Validate`: the metadata
/// of a pulled chart, with the archive's paths checked.
pub fn metadata_from_archive(data: &[u8], limits: Limits) -> Result<Metadata, PackageError> {
    let mut meta: Option<Metadata> = None;
    let mut requirements: Vec<Option<Dependency>> = Vec::new();
    walk_archive(data, limits, |parts, _, data, _| {
        if parts.len() != 2 {
            return Ok(());
        }
        let which = parts[1].as_str();
        if which != "Chart.yaml" && which != "requirements.yaml" {
            return Ok(());
        }
        let v = yaml_to_json(&String::from_utf8_lossy(&data))
            .map_err(|e| err(format!("cannot load '{which}': {e}")))?;
        let m: Metadata = if v.is_null() {
            Metadata::default()
        } else {
            serde_json::from_value(v).map_err(|e| err(format!("cannot load '{which}': {e}")))?
        };
        if which == "Chart.yaml" {
            let deps = meta.take().map(|m| m.dependencies).unwrap_or_default();
            let mut m = m;
            if m.dependencies.is_empty() {
                m.dependencies = deps;
            }
            meta = Some(m);
        } else {
            requirements = m.dependencies;
            if let Some(cur) = meta.as_mut() {
                cur.dependencies = requirements.clone();
            }
        }
        Ok(())
    })?;
    let mut m = meta.ok_or_else(|| err("no 'Chart.yaml' found"))?;
    if !requirements.is_empty() {
        m.dependencies = requirements;
    }
    if m.api_version.is_empty() {
        m.api_version = "v1".into();
    }
    m.validate()?;
    Ok(m)
}

/// Helm's directory loader below `root` (flux's secure loader): `.helmignore` rules, symlinks
/// followed only when they stay inside `root`, the per-file limit.
pub fn load_dir(root: &Path, chart: &Path, limits: Limits) -> Result<Chart, PackageError> {
    let root = root
        .canonicalize()
        .map_err(|e| err(format!("{}: {e}", root.display())))?;
    let dir = secure_join(&root, chart)?;
    if !dir.join("Chart.yaml").is_file() {
        return Err(err(format!(
            "unable to detect chart at {}: no Chart.yaml",
            chart.display()
        )));
    }
    let ignore = match std::fs::read_to_string(dir.join(".helmignore")) {
        Ok(t) => crate::chart::Ignore::parse(&t),
        Err(_) => crate::chart::Ignore::parse(""),
    }
    .map_err(|e| err(e.to_string()))?;
    let mut walk = Walk {
        root: &root,
        ignore: &ignore,
        limits,
        total: 0,
        out: Vec::new(),
        seen: std::collections::HashSet::new(),
    };
    walk.dir(&dir, "", 0)?;
    load_files(walk.out, limits)
}

/// A directory walk: symlinks followed when they stay inside `root`, each real directory
/// read once (link cycles end), `.helmignore` rules and size limits applied.
struct Walk<'a> {
    root: &'a Path,
    ignore: &'a crate::chart::Ignore,
    limits: Limits,
    total: u64,
    out: Vec<File>,
    seen: std::collections::HashSet<PathBuf>,
}

impl Walk<'_> {
    fn dir(&mut self, dir: &Path, rel: &str, depth: usize) -> Result<(), PackageError> {
        if depth > 64 {
            return Err(err(format!("{rel}: directory nesting too deep")));
        }
        let real_dir = dir
            .canonicalize()
            .map_err(|e| err(format!("{}: {e}", dir.display())))?;
        if !self.seen.insert(real_dir) {
            return Ok(());
        }
        let (root, limits) = (self.root, self.limits);
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| err(format!("{}: {e}", dir.display())))?
            .filter_map(Result::ok)
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            let relp = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let path = e.path();
            let link =
                std::fs::symlink_metadata(&path).map_err(|er| err(format!("{relp}: {er}")))?;
            let real = if link.file_type().is_symlink() {
                let target = path
                    .canonicalize()
                    .map_err(|er| err(format!("{relp}: {er}")))?;
                if !target.starts_with(root) {
                    return Err(err(format!(
                        "cannot load {relp}: symlink points outside of the source root"
                    )));
                }
                target
            } else {
                path.clone()
            };
            let md = std::fs::metadata(&real).map_err(|er| err(format!("{relp}: {er}")))?;
            if md.is_dir() {
                if !self.ignore.ignore(&relp, true) {
                    self.dir(&real, &relp, depth + 1)?;
                }
                continue;
            }
            if self.ignore.ignore(&relp, false) {
                continue;
            }
            if !md.is_file() {
                return Err(err(format!(
                    "cannot load irregular file {relp} as it has file mode type bits set"
                )));
            }
            if md.len() > limits.max_file_size {
                return Err(err(format!(
                    "size of '{relp}' exceeds '{}' bytes limit",
                    limits.max_file_size
                )));
            }
            self.total += md.len();
            if self.total > limits.max_total_size || self.out.len() >= 100_000 {
                return Err(err(format!(
                    "chart is larger than the maximum size {} (or 100000 files)",
                    limits.max_total_size
                )));
            }
            let mut data =
                std::fs::read(&real).map_err(|er| err(format!("error reading {relp}: {er}")))?;
            if data.starts_with(&[0xEF, 0xBB, 0xBF]) {
                data.drain(..3);
            }
            let mtime = md
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs())
                .unwrap_or(0);
            self.out.push(File {
                name: relp,
                data,
                mtime,
            });
        }
        Ok(())
    }
}

/// `root` joined with a relative path that may not leave it (`..` is clamped at the root, as
/// filepath-securejoin does; symlinks are resolved and must stay inside).
pub fn secure_join(root: &Path, rel: &Path) -> Result<PathBuf, PackageError> {
    let mut out = root.to_path_buf();
    for c in rel.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::ParentDir if out != root => {
                out.pop();
            }
            _ => {}
        }
    }
    if let Ok(real) = out.canonicalize() {
        if !real.starts_with(root) {
            return Err(err(format!(
                "path '{}' resolves outside of the source root",
                rel.display()
            )));
        }
        return Ok(real);
    }
    Ok(out)
}

/// source-controller's `mergeChartValues` for a pulled chart: the chart files named by
/// `paths` (`values.yaml` meaning the chart's defaults) merged in order, later winning; a
/// missing file is an error unless `ignore_missing`. Returns the merged values and the files
/// that contributed.
pub fn merge_chart_values(
    chart: &Chart,
    paths: &[String],
    ignore_missing: bool,
) -> Result<(BTreeMap<String, Value>, Vec<String>), PackageError> {
    let mut merged = BTreeMap::new();
    let mut used = Vec::new();
    for p in paths {
        let cleaned = clean_path(p);
        if cleaned == "values.yaml" {
            merged = crate::values::merge_maps(&merged, &chart.values()?);
            used.push(p.clone());
            continue;
        }
        let Some(f) = chart.files.iter().find(|f| f.name == cleaned) else {
            if ignore_missing {
                continue;
            }
            return Err(err(format!("no values file found at path '{p}'")));
        };
        let values = crate::yaml::load_values_v3(&String::from_utf8_lossy(&f.data))
            .map_err(|e| err(format!("unmarshaling values from '{p}' failed: {e}")))?;
        merged = crate::values::merge_maps(&merged, &values);
        used.push(p.clone());
    }
    Ok((merged, used))
}

/// source-controller's `mergeFileValues` for a chart from a source directory: files under
/// `root` (paths may not leave it), merged in order, later winning.
pub fn merge_file_values(
    root: &Path,
    paths: &[String],
    ignore_missing: bool,
) -> Result<(BTreeMap<String, Value>, Vec<String>), PackageError> {
    let mut merged = BTreeMap::new();
    let mut used = Vec::new();
    for p in paths {
        let path = secure_join(root, Path::new(p))?;
        let md = std::fs::metadata(&path);
        let shown = path
            .strip_prefix(root)
            .map(|r| format!("/{}", r.display()))
            .unwrap_or_else(|_| p.clone());
        match md {
            Err(e) if ignore_missing && e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(_) => {
                return Err(err(format!(
                    "no values file found at path '{shown}' (reference '{p}')"
                )));
            }
            Ok(m) if !m.is_file() => {
                return Err(err(format!(
                    "no values file found at path '{shown}' (reference '{p}')"
                )));
            }
            Ok(m) if m.len() > 5 << 20 => {
                return Err(err(format!("values file '{p}' is larger than 5 MiB")));
            }
            Ok(_) => {}
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| err(format!("could not read values from file '{p}': {e}")))?;
        let values = crate::yaml::load_values_v3(&text)
            .map_err(|e| err(format!("unmarshaling values from '{p}' failed: {e}")))?;
        merged = crate::values::merge_maps(&merged, &values);
        used.push(p.clone());
    }
    Ok((merged, used))
}

/// source-controller's `OverwriteChartDefaultValues`: values.yaml replaced by `values`
/// (encoded as Helm encodes values); `Ok(false)` when that changes nothing.
pub fn overwrite_default_values(
    chart: &mut Chart,
    values: &BTreeMap<String, Value>,
) -> Result<bool, PackageError> {
    let encoded = if values.is_empty() {
        Vec::new()
    } else {
        crate::yaml::to_yaml(&Value::map(values.clone()))
            .map_err(err)?
            .into_bytes()
    };
    let Some(f) = chart.values_file.as_mut() else {
        return Err(err("failed to locate values file: values.yaml"));
    };
    if f.data == encoded {
        return Ok(false);
    }
    f.data = encoded;
    Ok(true)
}

/// Masterminds' `SetMetadata` then `String`: the version with `+<metadata>`.
pub fn with_build_metadata(version: &str, metadata: &str) -> Result<String, PackageError> {
    let v = crate::semver::Version::parse(version).map_err(|e| {
        err(format!(
            "failed to parse version from chart metadata as SemVer: {e}"
        ))
    })?;
    if metadata.is_empty()
        || !metadata
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err(err(
            "failed to set SemVer metadata on chart version: Invalid Metadata string",
        ));
    }
    let mut out = format!("{}.{}.{}", v.major, v.minor, v.patch);
    if !v.pre.is_empty() {
        out.push('-');
        out.push_str(&v.pre);
    }
    out.push('+');
    out.push_str(metadata);
    Ok(out)
}

/// Helm's gzip header extras on a packaged chart.
const GZIP_EXTRA: &[u8] = b"aHR0cHM6Ly95b3V0dS5iZS96OVV6MWljandyTQo=";

fn to_yaml_bytes<T: Serialize>(v: &T) -> Result<Vec<u8>, PackageError> {
    let json = serde_json::to_string(v).map_err(|e| err(e.to_string()))?;
    let value = crate::yaml::parse_json(&json).map_err(err)?;
    crate::yaml::to_yaml(&value)
        .map(String::into_bytes)
        .map_err(err)
}

/// `helm package`'s archive of a chart (Helm's `chartutil.Save`): `<name>/Chart.yaml` from
/// the metadata, `Chart.lock`, values.yaml, the schema, templates, files, then each
/// dependency under `<name>/charts/`.
pub fn save(chart: &Chart) -> Result<Vec<u8>, PackageError> {
    let mut meta = chart.metadata.clone();
    meta.validate()?;
    let mut out = Vec::new();
    {
        let gz = flate2::GzBuilder::new()
            .extra(format!(
                "rr\x28\x00{}",
                std::str::from_utf8(GZIP_EXTRA).unwrap_or("")
            ))
            .comment("Helm")
            .write(&mut out, flate2::Compression::default());
        let mut ar = tar::Builder::new(gz);
        write_chart(&mut ar, chart, "")?;
        let gz = ar.into_inner().map_err(|e| err(e.to_string()))?;
        gz.finish().map_err(|e| err(e.to_string()))?;
    }
    Ok(out)
}

fn check_name(name: &str) -> Result<(), PackageError> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(err(format!("invalid chart name {name:?}")));
    }
    Ok(())
}

fn write_chart<W: Write>(
    ar: &mut tar::Builder<W>,
    chart: &Chart,
    prefix: &str,
) -> Result<(), PackageError> {
    check_name(chart.name())?;
    let base = if prefix.is_empty() {
        chart.name().to_string()
    } else {
        format!("{prefix}/{}", chart.name())
    };
    let mut meta = chart.metadata.clone();
    if meta.api_version == "v1" {
        meta.dependencies.clear();
    }
    let cdata = to_yaml_bytes(&meta)?;
    put(ar, &format!("{base}/Chart.yaml"), &cdata, chart.mtime)?;
    if meta.api_version == "v2"
        && let Some(lock) = &chart.lock
    {
        let ldata = to_yaml_bytes(lock)?;
        let mtime = lock
            .generated
            .parse::<jiff::Timestamp>()
            .map(|t| t.as_second().max(0) as u64)
            .unwrap_or(chart.mtime);
        put(ar, &format!("{base}/Chart.lock"), &ldata, mtime)?;
    }
    if let Some(f) = &chart.values_file {
        put(ar, &format!("{base}/values.yaml"), &f.data, f.mtime)?;
    }
    if let Some(f) = &chart.schema {
        if serde_json::from_slice::<serde_json::Value>(&f.data).is_err() {
            return Err(err("invalid JSON in values.schema.json"));
        }
        put(ar, &format!("{base}/values.schema.json"), &f.data, f.mtime)?;
    }
    for f in chart.templates.iter().chain(chart.files.iter()) {
        put(ar, &format!("{base}/{}", f.name), &f.data, f.mtime)?;
    }
    for d in &chart.dependencies {
        write_chart(ar, d, &format!("{base}/charts"))?;
    }
    Ok(())
}

fn put<W: Write>(
    ar: &mut tar::Builder<W>,
    name: &str,
    data: &[u8],
    mtime: u64,
) -> Result<(), PackageError> {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_mtime(mtime);
    h.set_uid(0);
    h.set_gid(0);
    ar.append_data(&mut h, name, data)
        .map_err(|e| err(format!("failed to package chart: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tgz(entries: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let gz = flate2::write::GzEncoder::new(&mut out, flate2::Compression::fast());
            let mut ar = tar::Builder::new(gz);
            for (name, data) in entries {
                let mut h = tar::Header::new_gnu();
                h.set_size(data.len() as u64);
                h.set_mode(0o644);
                let bytes = name.as_bytes();
                h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
                h.set_cksum();
                ar.append(&h, data.as_bytes()).unwrap();
            }
            ar.into_inner().unwrap().finish().unwrap();
        }
        out
    }

    const CHART: &str =
        "apiVersion: v2\nname: app\nversion: 1.2.3\ndescription: x\nextra: dropped\n";

    #[test]
    fn archives_round_trip_and_paths_are_checked() {
        let data = tgz(&[
            ("app/Chart.yaml", CHART),
            ("app/values.yaml", "a: 1\nb:\n  c: x\n"),
            ("app/templates/cm.yaml", "kind: ConfigMap\n"),
            ("app/prod.yaml", "b:\n  c: z\n"),
            (
                "app/charts/sub/Chart.yaml",
                "apiVersion: v2\nname: sub\nversion: 0.1.0\n",
            ),
        ]);
        let m = metadata_from_archive(&data, Limits::default()).unwrap();
        assert_eq!((m.name.as_str(), m.version.as_str()), ("app", "1.2.3"));
        let mut c = load_archive(&data, Limits::default()).unwrap();
        assert_eq!(c.dependencies.len(), 1);
        let (vals, used) =
            merge_chart_values(&c, &["values.yaml".into(), "prod.yaml".into()], false).unwrap();
        assert_eq!(used, ["values.yaml", "prod.yaml"]);
        assert!(overwrite_default_values(&mut c, &vals).unwrap());
        assert_eq!(
            String::from_utf8_lossy(&c.values_file.as_ref().unwrap().data),
            "a: 1\nb:\n  c: z\n"
        );
        c.metadata.version = with_build_metadata("1.2.3", "5").unwrap();
        let packed = save(&c).unwrap();
        let back = load_archive(&packed, Limits::default()).unwrap();
        assert_eq!(back.metadata.version, "1.2.3+5");
        assert_eq!(back.dependencies[0].name(), "sub");
        // Chart.yaml written from the metadata, keys sorted.
        let mut names = Vec::new();
        walk_archive(&packed, Limits::default(), |_, n, d, _| {
            if n == "Chart.yaml" {
                assert_eq!(
                    String::from_utf8_lossy(&d),
                    "apiVersion: v2\ndescription: x\nname: app\nversion: 1.2.3+5\n"
                );
            }
            names.push(n);
            Ok(())
        })
        .unwrap();
        assert_eq!(
            names,
            [
                "Chart.yaml",
                "values.yaml",
                "templates/cm.yaml",
                "prod.yaml",
                "charts/sub/Chart.yaml"
            ]
        );
        assert_eq!(
            merge_chart_values(&c, &["nope.yaml".into()], false)
                .unwrap_err()
                .0,
            "no values file found at path 'nope.yaml'"
        );
        assert!(merge_chart_values(&c, &["nope.yaml".into()], true).is_ok());

        let evil = tgz(&[("app/Chart.yaml", CHART), ("app/../../evil", "x")]);
        assert_eq!(
            metadata_from_archive(&evil, Limits::default())
                .unwrap_err()
                .0,
            "chart illegally references parent directory"
        );
        assert!(load_archive(&evil, Limits::default()).is_err());
        let big = Limits {
            max_file_size: 4,
            ..Limits::default()
        };
        assert!(load_archive(&data, big).is_err());
    }

    #[test]
    fn directories_with_link_cycles_and_escapes() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("src");
        let c = root.join("chart");
        std::fs::create_dir_all(c.join("templates")).unwrap();
        std::fs::write(c.join("Chart.yaml"), CHART).unwrap();
        std::fs::write(c.join("values.yaml"), "a: 1\n").unwrap();
        std::fs::write(c.join("templates/cm.yaml"), "x\n").unwrap();
        std::os::unix::fs::symlink(".", c.join("templates/a")).unwrap();
        std::os::unix::fs::symlink(".", c.join("templates/b")).unwrap();
        let chart = load_dir(&root, Path::new("chart"), Limits::default()).unwrap();
        assert_eq!(chart.templates.len(), 1);
        std::fs::write(tmp.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(tmp.path().join("secret"), c.join("leak")).unwrap();
        let e = load_dir(&root, Path::new("chart"), Limits::default()).unwrap_err();
        assert!(e.0.contains("symlink points outside"), "{e}");
        assert!(load_dir(&root, Path::new("../src/chart/../../"), Limits::default()).is_err());
    }

    #[test]
    fn build_metadata() {
        assert_eq!(with_build_metadata("v1.2", "abc").unwrap(), "1.2.0+abc");
        assert_eq!(
            with_build_metadata("1.0.0-rc.1+old", "0123456789ab.3").unwrap(),
            "1.0.0-rc.1+0123456789ab.3"
        );
        assert!(with_build_metadata("1.0.0", "a_b").is_err());
    }
}
