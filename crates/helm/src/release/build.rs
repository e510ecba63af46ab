//! Rendering a chart for `helm install` / `helm upgrade`: the same engine as `helm template`,
//! cut the way Helm's action package cuts it into a release — the manifest of the ordinary
//! objects, the hooks, the NOTES.txt of the parent chart, the chart's CRDs — and the chart
//! record the release stores.

use super::model::{ChartRecord, Dependency, File, Hook, Maintainer, Metadata};
use crate::{Chart, Error, chart, objects, schema, semver, values, yaml};
use ferroflux_gotemplate::Value as TValue;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// What a release render needs besides the chart and the values.
#[derive(Clone, Debug)]
pub struct ReleaseOptions {
    pub name: String,
    pub namespace: String,
    /// The revision being made (`.Release.Revision`).
    pub revision: i64,
    /// `.Release.IsUpgrade` (and not `.Release.IsInstall`).
    pub is_upgrade: bool,
    /// The cluster's version (`.Capabilities.KubeVersion`), default Helm's.
    pub kube_version: Option<String>,
    /// API versions the cluster serves, added to Helm's built-in set.
    pub api_versions: Vec<String>,
    pub skip_schema_validation: bool,
}

/// A rendered release.
#[derive(Clone, Debug, Default)]
pub struct Rendered {
    /// The ordinary objects in Helm's install order, each as `---\n# Source: PATH\nDOC\n`.
    pub manifest: String,
    /// The hooks, in install order of their kinds (not yet by weight).
    pub hooks: Vec<Hook>,
    /// The parent chart's rendered NOTES.txt.
    pub notes: String,
    /// `crds/` files of the chart and its subcharts (path, content), installed before the rest.
    pub crds: Vec<(String, String)>,
    /// The chart as the release records it.
    pub chart: ChartRecord,
}

/// Render `chart_path` (a chart directory or .tgz) with the user-supplied `values` as Helm's
/// install/upgrade action does. Runs on a thread with a large stack, like [`crate::template`].
pub fn render_release(
    chart_path: &Path,
    values: &serde_json::Map<String, Value>,
    opts: &ReleaseOptions,
) -> Result<Rendered, Error> {
    let path: PathBuf = chart_path.to_path_buf();
    let values_json = super::model::go_json_value(&Value::Object(values.clone()));
    let opts = opts.clone();
    std::thread::Builder::new()
        .name("helm-release".into())
        .stack_size(1 << 30)
        .spawn(move || render_on_thread(&path, &values_json, &opts))
        .map_err(|e| Error::Render(format!("cannot start render thread: {e}")))?
        .join()
        .unwrap_or_else(|_| Err(Error::Render("rendering templates failed".into())))
}

fn render_on_thread(
    path: &Path,
    values_json: &str,
    opts: &ReleaseOptions,
) -> Result<Rendered, Error> {
    let kube = crate::parse_kube_version(
        opts.kube_version
            .as_deref()
            .unwrap_or(crate::DEFAULT_KUBE_VERSION),
    )?;
    let user: BTreeMap<String, TValue> = match yaml::parse_json(values_json) {
        Ok(TValue::Map(m)) => m.borrow().clone(),
        Ok(_) => BTreeMap::new(),
        Err(e) => return Err(Error::Values(format!("values: {e}"))),
    };
    let mut chart = chart::load_with(path, false)?;
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
            "found in Chart.yaml, but missing in charts/ directory: {}",
            missing.join(", ")
        )));
    }
    crate::check_release_name(&opts.name)?;
    values::process_dependencies(&mut chart, &user, false)?;
    // Helm's install processes import-values of every chart with dependencies, which leaves
    // each such chart's values coalesced with its subcharts' (as the record shows);
    // `helm template`'s path skips that when nothing is imported, as rendering is the same
    if !values::has_import_values(&chart) {
        values::process_imports_rec(&mut chart)?;
    }
    // Helm records Chart.yaml's dependencies as processing left them
    let record = chart_record(&chart);
    let vals = values::coalesce_values_top(&chart, &user, false, false)?;
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
    let caps = TValue::Object(Rc::new(objects::Capabilities {
        kube: Rc::new(kube),
        apis: Rc::new(objects::ApiVersions(Rc::new(crate::api_versions(
            &opts.api_versions,
        )))),
        helm: objects::HelmVersion { v3: false },
    }));
    let mut release = BTreeMap::new();
    release.insert("Name".to_string(), TValue::str(opts.name.as_str()));
    release.insert(
        "Namespace".to_string(),
        TValue::str(opts.namespace.as_str()),
    );
    release.insert("IsUpgrade".to_string(), TValue::Bool(opts.is_upgrade));
    release.insert("IsInstall".to_string(), TValue::Bool(!opts.is_upgrade));
    release.insert("Revision".to_string(), TValue::Int(opts.revision));
    release.insert("Service".to_string(), TValue::str("Helm"));
    let mut top = BTreeMap::new();
    top.insert("Chart".to_string(), chart::metadata_map(&chart, true));
    top.insert("Capabilities".to_string(), caps);
    top.insert("Release".to_string(), TValue::map(release));
    top.insert("Values".to_string(), vals);
    let files = crate::render::render_as(&chart, &TValue::map(top), false)?;
    let mut out = split(&files, &chart.name)?;
    out.chart = record;
    out.crds = crds(&chart);
    Ok(out)
}

const NOTES: &str = "NOTES.txt";

/// Helm's `renderResources` after rendering: NOTES.txt of the parent chart, then
/// `SortManifests` into ordinary objects and hooks.
fn split(files: &BTreeMap<String, String>, chart_name: &str) -> Result<Rendered, Error> {
    let mut out = Rendered::default();
    let notes_key = format!("{chart_name}/templates/{NOTES}");
    if let Some(n) = files.get(&notes_key) {
        out.notes = n.clone();
    }
    struct Doc {
        path: String,
        kind: String,
        content: String,
    }
    let mut generic: Vec<Doc> = Vec::new();
    let mut hooks: Vec<Hook> = Vec::new();
    for (path, content) in files {
        let base = path.rsplit('/').next().unwrap_or(path);
        if base.starts_with('_') || path.ends_with(NOTES) || content.trim().is_empty() {
            continue;
        }
        for doc in crate::split_manifests(content) {
            let (kind, ann) = crate::head(&doc, path)?;
            let ann = ann.unwrap_or_default();
            let Some(types) = ann.get("helm.sh/hook") else {
                generic.push(Doc {
                    path: path.clone(),
                    kind,
                    content: doc,
                });
                continue;
            };
            let mut events = Vec::new();
            let mut unknown = false;
            for t in types.split(',') {
                let t = t.trim().to_lowercase();
                match t.as_str() {
                    "test-success" => events.push("test".to_string()),
                    e if crate::HOOK_EVENTS.contains(&e) => events.push(t.clone()),
                    _ => {
                        unknown = true;
                        break;
                    }
                }
            }
            if unknown {
                continue;
            }
            let name = object_name(&doc);
            let list = |key: &str| -> Vec<String> {
                ann.get(key)
                    .map(|v| {
                        v.split(',')
                            .map(|p| p.trim().to_lowercase())
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default()
            };
            hooks.push(Hook {
                name,
                kind,
                path: path.clone(),
                manifest: doc,
                events,
                weight: ann
                    .get("helm.sh/hook-weight")
                    .and_then(|w| w.trim().parse::<i64>().ok())
                    .unwrap_or(0),
                delete_policies: list("helm.sh/hook-delete-policy"),
                output_log_policies: list("helm.sh/hook-output-log-policy"),
                ..Hook::default()
            });
        }
    }
    generic.sort_by(|a, b| crate::kind_less(&a.kind, &b.kind, false));
    hooks.sort_by(|a, b| crate::kind_less(&a.kind, &b.kind, false));
    for d in &generic {
        out.manifest
            .push_str(&format!("---\n# Source: {}\n{}\n", d.path, d.content));
    }
    out.hooks = hooks;
    Ok(out)
}

fn object_name(doc: &str) -> String {
    yaml::parse_yaml(doc)
        .ok()
        .and_then(|v| v.as_map())
        .and_then(|m| m.borrow().get("metadata").cloned())
        .and_then(|m| m.as_map())
        .and_then(|m| m.borrow().get("name").cloned())
        .and_then(|n| n.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn crds(c: &Chart) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = c
        .crd_files()
        .into_iter()
        .map(|(n, d)| {
            (
                format!("{}/{n}", c.full_path()),
                String::from_utf8_lossy(&d).into_owned(),
            )
        })
        .collect();
    for s in &c.subcharts {
        out.extend(crds(s));
    }
    out
}

fn to_json(v: &TValue) -> Value {
    yaml::to_json(v, false, None)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null)
}

fn string_of(m: &BTreeMap<String, TValue>, k: &str) -> String {
    match m.get(k) {
        Some(TValue::String(s)) => s.to_string(),
        Some(TValue::Nil) | None => String::new(),
        Some(v) => crate::sprig::strval(v),
    }
}

fn strings_of(m: &BTreeMap<String, TValue>, k: &str) -> Vec<String> {
    match m.get(k) {
        Some(TValue::List(l)) => l.iter().map(crate::sprig::strval).collect(),
        _ => Vec::new(),
    }
}

/// The chart as Helm's release record holds it: Chart.yaml, values.yaml, the schema, the
/// templates and the other files (subcharts are not recorded).
pub fn chart_record(c: &Chart) -> ChartRecord {
    let m = c
        .metadata
        .as_map()
        .map(|m| m.borrow().clone())
        .unwrap_or_default();
    let maintainers = match m.get("maintainers") {
        Some(TValue::List(l)) => l
            .iter()
            .map(|x| {
                x.as_map().map(|mm| {
                    let mm = mm.borrow();
                    Maintainer {
                        name: string_of(&mm, "name"),
                        email: string_of(&mm, "email"),
                        url: string_of(&mm, "url"),
                    }
                })
            })
            .collect(),
        _ => Vec::new(),
    };
    let annotations = match m.get("annotations") {
        Some(TValue::Map(a)) => a
            .borrow()
            .iter()
            .map(|(k, v)| (k.clone(), crate::sprig::strval(v)))
            .collect(),
        _ => BTreeMap::new(),
    };
    let deprecated = matches!(m.get("deprecated"), Some(TValue::Bool(true)));
    let metadata = Metadata {
        name: c.name.clone(),
        home: string_of(&m, "home"),
        sources: strings_of(&m, "sources"),
        version: string_of(&m, "version"),
        description: string_of(&m, "description"),
        keywords: strings_of(&m, "keywords"),
        maintainers,
        icon: string_of(&m, "icon"),
        api_version: string_of(&m, "apiVersion"),
        condition: string_of(&m, "condition"),
        tags: string_of(&m, "tags"),
        app_version: string_of(&m, "appVersion"),
        deprecated,
        annotations,
        kube_version: string_of(&m, "kubeVersion"),
        dependencies: c
            .dependencies
            .iter()
            .map(|d| {
                Some(Dependency {
                    name: d.name.clone(),
                    version: d.version.clone(),
                    repository: d.repository.clone(),
                    condition: d.condition.clone(),
                    tags: d.tags.clone(),
                    enabled: d.enabled,
                    import_values: d.import_values.iter().map(to_json).collect(),
                    alias: d.alias.clone(),
                })
            })
            .collect(),
        chart_type: string_of(&m, "type"),
    };
    let file = |(n, d): &(String, Rc<[u8]>)| File {
        name: n.clone(),
        data: Some(d.to_vec()),
        modtime: None,
    };
    // Helm's loader walks the chart directory (or a tarball `helm package` wrote in that
    // walk's order): names in lexical order within each directory
    let walk_order = |a: &File, b: &File| a.name.split('/').cmp(b.name.split('/'));
    let mut templates: Vec<File> = c.templates.iter().map(file).collect();
    templates.sort_by(walk_order);
    let mut files: Vec<File> = c.files.iter().map(file).collect();
    files.sort_by(walk_order);
    ChartRecord {
        metadata: Some(metadata),
        lock: None,
        templates: (!templates.is_empty()).then_some(templates),
        values: match to_json(&c.values) {
            Value::Object(o) => Some(o),
            _ => Some(serde_json::Map::new()),
        },
        schema: c.schema.clone(),
        schemamodtime: None,
        files: (!files.is_empty()).then_some(files),
        modtime: None,
    }
}
