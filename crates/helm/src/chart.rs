//! Loading charts from directories and `.tgz` archives (Helm's loader), with `.helmignore`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::rc::Rc;

use ferroflux_gotemplate::Value;

use crate::Error;
use crate::yaml;

/// Maximum size of one decompressed file, and of a whole archive (Helm: 5 MiB per file).
const MAX_FILE: u64 = 5 * 1024 * 1024;
const MAX_ARCHIVE: u64 = 100 * 1024 * 1024;
const MAX_FILES: usize = 100_000;

/// A chart dependency from Chart.yaml.
#[derive(Clone, Debug, Default)]
pub struct Dependency {
    pub name: String,
    pub version: String,
    pub repository: String,
    pub condition: String,
    pub tags: Vec<String>,
    pub enabled: bool,
    pub import_values: Vec<Value>,
    pub alias: String,
}

/// A loaded chart.
#[derive(Clone, Debug)]
pub struct Chart {
    /// Chart.yaml as parsed.
    pub metadata: Value,
    pub name: String,
    pub version: String,
    pub api_version: String,
    pub chart_type: String,
    pub kube_version: String,
    pub dependencies: Vec<Dependency>,
    /// values.yaml (a map).
    pub values: Value,
    pub schema: Option<Vec<u8>>,
    /// Files under templates/ (names relative to the chart root).
    pub templates: Vec<(String, Rc<[u8]>)>,
    /// Every other file (for `.Files`), including crds/.
    pub files: Vec<(String, Rc<[u8]>)>,
    /// Loaded subcharts (charts/).
    pub subcharts: Vec<Chart>,
    /// Parent chain for `ChartFullPath`.
    pub parent_path: Option<String>,
}

impl Chart {
    pub fn is_library(&self) -> bool {
        self.chart_type == "library"
    }

    /// `ChartFullPath`: `parent/charts/name`.
    pub fn full_path(&self) -> String {
        match &self.parent_path {
            None => self.name.clone(),
            Some(p) => format!("{p}/charts/{}", self.name),
        }
    }

    fn set_parent(&mut self, parent: Option<String>) {
        self.parent_path = parent;
        let me = self.full_path();
        for s in &mut self.subcharts {
            s.set_parent(Some(me.clone()));
        }
    }

    /// Files under crds/ (name, data).
    pub fn crd_files(&self) -> Vec<(String, Rc<[u8]>)> {
        self.files
            .iter()
            .filter(|(n, _)| n.starts_with("crds/"))
            .cloned()
            .collect()
    }
}

/// Go's `path/filepath.Match` on '/'-separated names.
pub fn path_match(pattern: &str, name: &str) -> bool {
    // over bytes when both are ASCII (the usual case: nothing to allocate), else over chars
    fn m<T: Copy + PartialOrd + From<u8>>(p: &[T], n: &[T]) -> bool {
        let c = |b: u8| T::from(b);
        let Some(&first) = p.first() else {
            return n.is_empty();
        };
        if first == c(b'*') {
            (0..=n.len())
                .take_while(|&i| i == 0 || n[i - 1] != c(b'/'))
                .any(|i| m(&p[1..], &n[i..]))
        } else if first == c(b'?') {
            !n.is_empty() && n[0] != c(b'/') && m(&p[1..], &n[1..])
        } else if first == c(b'[') {
            let Some(end) = p.iter().skip(1).position(|x| *x == c(b']')).map(|x| x + 1) else {
                return false;
            };
            if n.is_empty() || n[0] == c(b'/') {
                return false;
            }
            let set = &p[1..end];
            let (neg, set) = match set.first() {
                Some(&x) if x == c(b'^') => (true, &set[1..]),
                _ => (false, set),
            };
            let mut hit = false;
            let mut i = 0;
            while i < set.len() {
                if i + 2 < set.len() && set[i + 1] == c(b'-') {
                    if set[i] <= n[0] && n[0] <= set[i + 2] {
                        hit = true;
                    }
                    i += 3;
                } else {
                    if set[i] == n[0] {
                        hit = true;
                    }
                    i += 1;
                }
            }
            hit != neg && m(&p[end + 1..], &n[1..])
        } else if first == c(b'\\') && p.len() > 1 {
            !n.is_empty() && n[0] == p[1] && m(&p[2..], &n[1..])
        } else {
            !n.is_empty() && n[0] == first && m(&p[1..], &n[1..])
        }
    }
    if pattern.is_ascii() && name.is_ascii() {
        return m(pattern.as_bytes(), name.as_bytes());
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    m(&p, &n)
}

struct Rule {
    pattern: String,
    negate: bool,
    must_dir: bool,
    kind: u8, // 0: basename, 1: path, 2: rooted
}

/// `.helmignore` rules.
pub struct Ignore {
    rules: Vec<Rule>,
}

impl Ignore {
    pub fn parse(text: &str) -> Result<Ignore, Error> {
        let mut rules = Vec::new();
        for line in text.lines() {
            let line = line.trim_start_matches('\u{feff}');
            Self::add(&mut rules, line)?;
        }
        Self::add(&mut rules, "templates/.?*")?;
        Ok(Ignore { rules })
    }

    fn add(rules: &mut Vec<Rule>, rule: &str) -> Result<(), Error> {
        let mut rule = rule.trim();
        if rule.is_empty() || rule.starts_with('#') {
            return Ok(());
        }
        if rule.contains("**") {
            return Err(Error::Chart(
                "double-star (**) syntax is not supported".to_string(),
            ));
        }
        let negate = rule.starts_with('!');
        if negate {
            rule = &rule[1..];
        }
        let must_dir = rule.ends_with('/');
        let rule = rule.trim_end_matches('/');
        let (pattern, kind) = if let Some(r) = rule.strip_prefix('/') {
            (r.to_string(), 2)
        } else if rule.contains('/') {
            (rule.to_string(), 1)
        } else {
            (rule.to_string(), 0)
        };
        rules.push(Rule {
            pattern,
            negate,
            must_dir,
            kind,
        });
        Ok(())
    }

    pub fn ignore(&self, path: &str, is_dir: bool) -> bool {
        if path.is_empty() || path == "." || path == "./" {
            return false;
        }
        for r in &self.rules {
            let target = if r.kind == 0 {
                path.rsplit('/').next().unwrap_or(path)
            } else {
                path
            };
            let hit = path_match(&r.pattern, target);
            if r.negate {
                if r.must_dir && !is_dir {
                    return true;
                }
                if !hit {
                    return true;
                }
                continue;
            }
            if r.must_dir && !is_dir {
                continue;
            }
            if hit {
                return true;
            }
        }
        false
    }
}

fn read_dir_files(root: &Path) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let ignore = match std::fs::read_to_string(root.join(".helmignore")) {
        Ok(t) => Ignore::parse(&t)?,
        Err(_) => Ignore::parse("")?,
    };
    let mut out = Vec::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    // symlinked directories are followed (as Helm's sympath does) but each real directory is
    // read once, so link cycles end
    let mut seen = std::collections::HashSet::new();
    let mut total: u64 = 0;
    while let Some((dir, rel)) = stack.pop() {
        if let Ok(real) = std::fs::canonicalize(&dir)
            && !seen.insert(real)
        {
            continue;
        }
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .map_err(|e| Error::Chart(format!("{}: {e}", dir.display())))?
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
            let md = std::fs::metadata(&path)
                .map_err(|err| Error::Chart(format!("{}: {err}", path.display())))?;
            if md.is_dir() {
                if !ignore.ignore(&relp, true) {
                    stack.push((path, relp));
                }
                continue;
            }
            if ignore.ignore(&relp, false) {
                continue;
            }
            if !md.is_file() {
                return Err(Error::Chart(format!(
                    "cannot load irregular file {} as it has file mode type bits set",
                    path.display()
                )));
            }
            if md.len() > MAX_FILE {
                return Err(Error::Chart(format!(
                    "chart file {name:?} is larger than the maximum file size {MAX_FILE}"
                )));
            }
            total += md.len();
            if total > MAX_ARCHIVE || out.len() >= MAX_FILES {
                return Err(Error::Chart(format!(
                    "chart is larger than the limit of {MAX_ARCHIVE} bytes or {MAX_FILES} files"
                )));
            }
            let mut data = std::fs::read(&path)
                .map_err(|err| Error::Chart(format!("error reading {relp}: {err}")))?;
            if data.starts_with(&[0xEF, 0xBB, 0xBF]) {
                data.drain(..3);
            }
            out.push((relp, data));
        }
    }
    Ok(out)
}

fn read_archive(data: &[u8]) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let gz = flate2::read::GzDecoder::new(data);
    let mut ar = tar::Archive::new(gz.take(MAX_ARCHIVE));
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    let entries = ar
        .entries()
        .map_err(|e| Error::Chart(format!("invalid archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::Chart(format!("invalid archive: {e}")))?;
        let kind = entry.header().entry_type();
        if kind == tar::EntryType::Directory {
            continue;
        }
        if kind != tar::EntryType::Regular && kind != tar::EntryType::GNUSparse {
            if kind == tar::EntryType::XGlobalHeader || kind == tar::EntryType::XHeader {
                continue;
            }
            return Err(Error::Chart(format!(
                "archive contains a non-regular file: {kind:?}"
            )));
        }
        let path = entry
            .path()
            .map_err(|e| Error::Chart(format!("invalid archive path: {e}")))?
            .to_string_lossy()
            .replace('\\', "/");
        let mut parts = path.splitn(2, '/');
        let _top = parts.next();
        let Some(rel) = parts.next() else {
            continue;
        };
        if rel.split('/').any(|p| p == "..") || rel.starts_with('/') {
            return Err(Error::Chart(format!(
                "chart illegally references parent directory: {path}"
            )));
        }
        if entry.size() > MAX_FILE {
            return Err(Error::Chart(format!(
                "decompression size limit reached for {rel}"
            )));
        }
        let mut buf = Vec::new();
        entry
            .read_to_end(&mut buf)
            .map_err(|e| Error::Chart(format!("invalid archive: {e}")))?;
        if buf.starts_with(&[0xEF, 0xBB, 0xBF]) {
            buf.drain(..3);
        }
        out.push((rel.to_string(), buf));
    }
    // .helmignore inside archives is applied by `helm package`, not on load.
    Ok(out)
}

/// Load a chart from a directory or a `.tgz` archive (values files read as Helm v4 does).
pub fn load(path: &Path) -> Result<Chart, Error> {
    load_with(path, false)
}

/// [`load`], reading values.yaml as helm3 does when `v3` (the first document only).
pub fn load_with(path: &Path, v3: bool) -> Result<Chart, Error> {
    if path.is_dir() && !path.join("Chart.yaml").is_file() {
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        let f = abs.join("Chart.yaml");
        return Err(Error::Chart(format!(
            "unable to detect chart at {}: open {}: no such file or directory",
            f.display(),
            f.display()
        )));
    }
    let files = if path.is_dir() {
        read_dir_files(path)?
    } else {
        let data =
            std::fs::read(path).map_err(|e| Error::Chart(format!("{}: {e}", path.display())))?;
        read_archive(&data)?
    };
    let mut c = load_files_with(files, v3)?;
    c.set_parent(None);
    Ok(c)
}

fn str_field(m: &BTreeMap<String, Value>, k: &str) -> String {
    match m.get(k) {
        Some(Value::String(s)) => s.to_string(),
        Some(Value::Float(f)) => ferroflux_gotemplate::gofmt::format_float_shortest(*f),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

fn parse_dependency(v: &Value) -> Dependency {
    let m = v.as_map().map(|m| m.borrow().clone()).unwrap_or_default();
    Dependency {
        name: str_field(&m, "name"),
        version: str_field(&m, "version"),
        repository: str_field(&m, "repository"),
        condition: str_field(&m, "condition"),
        tags: match m.get("tags") {
            Some(Value::List(l)) => l
                .iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        },
        enabled: false,
        import_values: match m.get("import-values") {
            Some(Value::List(l)) => l.as_ref().clone(),
            _ => Vec::new(),
        },
        alias: str_field(&m, "alias"),
    }
}

/// Helm's `Metadata.Validate` checks.
fn validate_metadata(m: &BTreeMap<String, Value>) -> Result<(), Error> {
    let err = |msg: String| Err(Error::Chart(format!("validation: {msg}")));
    let name = str_field(m, "name");
    let version = str_field(m, "version");
    if name.is_empty() {
        return err("chart.metadata.name is required".into());
    }
    let quoted = ferroflux_gotemplate::gofmt::quote;
    if name == "." || name == ".." {
        return err(format!(
            "chart.metadata.name {} is not allowed",
            quoted(&name)
        ));
    }
    if name.contains('/') {
        return err(format!("chart.metadata.name {} is invalid", quoted(&name)));
    }
    if version.is_empty() {
        return err("chart.metadata.version is required".into());
    }
    if crate::semver::Version::parse(&version).is_err() {
        return err(format!(
            "chart.metadata.version {} is invalid",
            quoted(&version)
        ));
    }
    let t = str_field(m, "type");
    if !(t.is_empty() || t == "application" || t == "library") {
        return err("chart.metadata.type must be application or library".into());
    }
    Ok(())
}

/// Build a chart from its files (names relative to the chart root); `v3` reads values.yaml
/// as helm3 does.
fn load_files_with(files: Vec<(String, Vec<u8>)>, v3: bool) -> Result<Chart, Error> {
    let mut metadata: Option<Value> = None;
    let mut values = Value::new_map();
    let mut schema = None;
    let mut templates = Vec::new();
    let mut other = Vec::new();
    let mut sub: BTreeMap<String, Vec<(String, Vec<u8>)>> = BTreeMap::new();
    let mut requirements: Option<Value> = None;
    // requirements.* are chart files only for apiVersion v1 charts
    let mut legacy_files: Vec<(String, Rc<[u8]>)> = Vec::new();
    for (name, data) in files {
        match name.as_str() {
            "Chart.yaml" => {
                let text = String::from_utf8_lossy(&data);
                metadata = Some(yaml::parse_yaml(&text).map_err(|e| {
                    Error::Chart(format!(
                        "cannot load Chart.yaml: error converting YAML to JSON: {e}"
                    ))
                })?);
            }
            "values.yaml" => {
                let text = String::from_utf8_lossy(&data);
                let v = if v3 {
                    yaml::load_values_v3(&text)
                } else {
                    yaml::load_values(&text)
                };
                values = Value::map(
                    v.map_err(|e| Error::Chart(format!("cannot load values.yaml: {e}")))?,
                );
            }
            "values.schema.json" => schema = Some(data),
            "requirements.yaml" => {
                let text = String::from_utf8_lossy(&data);
                requirements = Some(yaml::parse_yaml(&text).map_err(|e| {
                    Error::Chart(format!(
                        "cannot load requirements.yaml: error converting YAML to JSON: {e}"
                    ))
                })?);
                legacy_files.push((name, Rc::from(data)));
            }
            "requirements.lock" => legacy_files.push((name, Rc::from(data))),
            "Chart.lock" => {}
            n if n.starts_with("templates/") => templates.push((name, Rc::from(data))),
            n if n.starts_with("charts/") => {
                if n.ends_with(".prov") {
                    other.push((name, Rc::from(data)));
                    continue;
                }
                let rest = &n["charts/".len()..];
                let cname = rest.split('/').next().unwrap_or(rest).to_string();
                sub.entry(cname).or_default().push((rest.to_string(), data));
            }
            _ => other.push((name, Rc::from(data))),
        }
    }
    let Some(metadata) = metadata else {
        return Err(Error::Chart("Chart.yaml file is missing".into()));
    };
    let m = metadata
        .as_map()
        .map(|m| m.borrow().clone())
        .unwrap_or_default();
    let name = str_field(&m, "name");
    validate_metadata(&m)?;
    let api_version = str_field(&m, "apiVersion");
    let mut deps: Vec<Dependency> = match m.get("dependencies") {
        Some(Value::List(l)) => l.iter().map(parse_dependency).collect(),
        _ => Vec::new(),
    };
    if let Some(r) = &requirements
        && let Some(rm) = r.as_map()
        && let Some(Value::List(l)) = rm.borrow().get("dependencies")
    {
        deps = l.iter().map(parse_dependency).collect();
    }
    if api_version == "v1" {
        other.extend(legacy_files);
        other.sort_by(|a, b| a.0.cmp(&b.0));
    }
    let mut subcharts = Vec::new();
    for (cname, files) in sub {
        // an archive `charts/foo-1.0.0.tgz` or a directory `charts/foo/...`
        if files.len() == 1
            && (files[0].0.ends_with(".tgz") || files[0].0.ends_with(".tar.gz"))
            && !files[0].0.contains('/')
        {
            let inner = read_archive(&files[0].1).map_err(|e| {
                Error::Chart(format!(
                    "error unpacking subchart {} in {name}: {e}",
                    files[0].0
                ))
            })?;
            subcharts.push(load_files_with(inner, v3)?);
            continue;
        }
        let prefix = format!("{cname}/");
        let inner: Vec<(String, Vec<u8>)> = files
            .into_iter()
            .filter_map(|(n, d)| n.strip_prefix(&prefix).map(|r| (r.to_string(), d)))
            .collect();
        if inner.is_empty() {
            continue;
        }
        subcharts.push(load_files_with(inner, v3).map_err(|e| {
            Error::Chart(format!("error unpacking subchart {cname} in {name}: {e}"))
        })?);
    }
    Ok(Chart {
        name,
        version: str_field(&m, "version"),
        api_version,
        chart_type: str_field(&m, "type"),
        kube_version: str_field(&m, "kubeVersion"),
        dependencies: deps,
        metadata,
        values,
        schema,
        templates,
        files: other,
        subcharts,
        parent_path: None,
    })
}

/// `MetadataAsMap` of Helm v4: Go field names as keys.
pub fn metadata_map(c: &Chart, is_root: bool) -> Value {
    let m = c
        .metadata
        .as_map()
        .map(|m| m.borrow().clone())
        .unwrap_or_default();
    let s = |k: &str| Value::str(str_field(&m, k));
    let strs = |k: &str| match m.get(k) {
        Some(Value::List(l)) => Value::list(
            l.iter()
                .map(|x| Value::str(crate::sprig::strval(x)))
                .collect(),
        ),
        _ => Value::list(Vec::new()),
    };
    let mut out = BTreeMap::new();
    out.insert("Name".into(), Value::str(c.name.as_str()));
    out.insert("Home".into(), s("home"));
    out.insert("Sources".into(), strs("sources"));
    out.insert("Version".into(), s("version"));
    out.insert("Description".into(), s("description"));
    out.insert("Keywords".into(), strs("keywords"));
    let maint = match m.get("maintainers") {
        Some(Value::List(l)) => Value::list(
            l.iter()
                .map(|x| {
                    let mm = x.as_map().map(|m| m.borrow().clone()).unwrap_or_default();
                    let mut o = BTreeMap::new();
                    o.insert("Name".into(), Value::str(str_field(&mm, "name")));
                    o.insert("Email".into(), Value::str(str_field(&mm, "email")));
                    o.insert("URL".into(), Value::str(str_field(&mm, "url")));
                    Value::map(o)
                })
                .collect(),
        ),
        _ => Value::list(Vec::new()),
    };
    out.insert("Maintainers".into(), maint);
    out.insert("Icon".into(), s("icon"));
    out.insert("APIVersion".into(), s("apiVersion"));
    out.insert("Condition".into(), s("condition"));
    out.insert("Tags".into(), s("tags"));
    out.insert("AppVersion".into(), s("appVersion"));
    out.insert(
        "Deprecated".into(),
        Value::Bool(matches!(m.get("deprecated"), Some(Value::Bool(true)))),
    );
    let ann = match m.get("annotations").and_then(Value::as_map) {
        Some(a) => Value::map(
            a.borrow()
                .iter()
                .map(|(k, v)| (k.clone(), Value::str(crate::sprig::strval(v))))
                .collect(),
        ),
        None => Value::new_map(),
    };
    out.insert("Annotations".into(), ann);
    out.insert("KubeVersion".into(), s("kubeVersion"));
    let deps = Value::list(
        c.dependencies
            .iter()
            .map(|d| {
                let mut o = BTreeMap::new();
                o.insert("Name".into(), Value::str(d.name.as_str()));
                o.insert("Version".into(), Value::str(d.version.as_str()));
                o.insert("Repository".into(), Value::str(d.repository.as_str()));
                o.insert("Condition".into(), Value::str(d.condition.as_str()));
                o.insert(
                    "Tags".into(),
                    Value::list(d.tags.iter().map(|t| Value::str(t.as_str())).collect()),
                );
                o.insert("Enabled".into(), Value::Bool(d.enabled));
                o.insert("ImportValues".into(), Value::list(d.import_values.clone()));
                o.insert("Alias".into(), Value::str(d.alias.as_str()));
                Value::map(o)
            })
            .collect(),
    );
    out.insert("Dependencies".into(), deps);
    out.insert("Type".into(), s("type"));
    out.insert("IsRoot".into(), Value::Bool(is_root));
    Value::map(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Go's `filepath.Match` cases, ASCII (matched over bytes) and not (over chars).
    #[test]
    fn path_match_as_go() {
        let cases: &[(&str, &str, bool)] = &[
            ("*.md", "README.md", true),
            ("*.md", "docs/README.md", false),
            ("docs/*", "docs/a.md", true),
            ("a?c", "abc", true),
            ("a?c", "a/c", false),
            ("[a-c]x", "bx", true),
            ("[^a-c]x", "bx", false),
            ("[^a-c]x", "dx", true),
            ("[ab", "a", false),
            ("\\*", "*", true),
            ("\\*", "a", false),
            ("*~", "values.yaml~", true),
            (".git", ".git", true),
            ("é*", "été", true),
            ("?t?", "été", true),
            ("[à-ê]t*", "été", true),
            ("*.ß", "a/b.ß", false),
        ];
        for &(p, n, want) in cases {
            assert_eq!(path_match(p, n), want, "{p:?} on {n:?}");
        }
    }

    #[test]
    fn symlink_cycles_end() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("c");
        std::fs::create_dir_all(root.join("templates")).unwrap();
        std::fs::write(
            root.join("Chart.yaml"),
            "apiVersion: v2\nname: c\nversion: 1.0.0\n",
        )
        .unwrap();
        std::fs::write(root.join("templates/a.yaml"), "a: b\n").unwrap();
        std::os::unix::fs::symlink(&root, root.join("loop")).unwrap();
        let c = load(&root).unwrap();
        assert_eq!(c.templates.len(), 1);
    }

    #[test]
    fn archives_refuse_parent_paths() {
        let mut buf = Vec::new();
        {
            let gz = flate2::write::GzEncoder::new(&mut buf, flate2::Compression::fast());
            let mut ar = tar::Builder::new(gz);
            let data = b"apiVersion: v2\nname: c\nversion: 1.0.0\n";
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            ar.append_data(&mut h, "c/Chart.yaml", &data[..]).unwrap();
            let mut h = tar::Header::new_gnu();
            h.set_size(1);
            h.set_mode(0o644);
            // write the path bytes directly: tar::Builder refuses ".." itself
            let name = b"c/../../evil";
            h.as_old_mut().name[..name.len()].copy_from_slice(name);
            h.set_cksum();
            ar.append(&h, &b"x"[..]).unwrap();
            ar.into_inner().unwrap().finish().unwrap();
        }
        let err = read_archive(&buf).unwrap_err().to_string();
        assert!(
            err.contains("illegally references parent directory"),
            "{err}"
        );
    }
}
