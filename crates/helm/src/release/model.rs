//! The release record Helm v4 stores (`helm.sh/helm/v4/pkg/release/v1`), with JSON written
//! byte for byte as Go's `encoding/json` writes it: fields in Go's declaration order, the
//! `omitempty`/`omitzero` rules of each field, map keys sorted, HTML characters escaped,
//! `[]byte` as standard base64 and numbers as Go prints `float64`/`int64`.

use base64::Engine;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::collections::BTreeMap;

/// `time.Time{}` as Go writes it.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// A release status (`pkg/release/common.Status`).
pub mod status {
    pub const UNKNOWN: &str = "unknown";
    pub const DEPLOYED: &str = "deployed";
    pub const UNINSTALLED: &str = "uninstalled";
    pub const SUPERSEDED: &str = "superseded";
    pub const FAILED: &str = "failed";
    pub const UNINSTALLING: &str = "uninstalling";
    pub const PENDING_INSTALL: &str = "pending-install";
    pub const PENDING_UPGRADE: &str = "pending-upgrade";
    pub const PENDING_ROLLBACK: &str = "pending-rollback";

    /// `Status.IsPending`.
    pub fn is_pending(s: &str) -> bool {
        matches!(s, PENDING_INSTALL | PENDING_UPGRADE | PENDING_ROLLBACK)
    }
}

/// `release.Release`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Release {
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    pub info: Option<Info>,
    pub chart: Option<ChartRecord>,
    /// The user-supplied values (`helm get values`); Go omits it when empty.
    #[serde(deserialize_with = "nullable")]
    pub config: serde_json::Map<String, Value>,
    #[serde(deserialize_with = "nullable")]
    pub manifest: String,
    #[serde(deserialize_with = "nullable")]
    pub hooks: Vec<Hook>,
    #[serde(deserialize_with = "nullable")]
    pub version: i64,
    #[serde(deserialize_with = "nullable")]
    pub namespace: String,
    /// `ssa` or `csa` (empty means client-side apply, as Helm reads it).
    #[serde(deserialize_with = "nullable")]
    pub apply_method: String,
    /// Not in the JSON: the storage object's labels other than Helm's system labels.
    #[serde(skip)]
    pub labels: BTreeMap<String, String>,
}

/// `release.Info`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Info {
    #[serde(deserialize_with = "time")]
    pub first_deployed: Option<String>,
    #[serde(deserialize_with = "time")]
    pub last_deployed: Option<String>,
    #[serde(deserialize_with = "time")]
    pub deleted: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub description: String,
    #[serde(deserialize_with = "nullable")]
    pub status: String,
    /// Written by Helm releases after v4.1 (kept when read, never set by us).
    #[serde(deserialize_with = "nullable")]
    pub rollback_revision: i64,
    #[serde(deserialize_with = "nullable")]
    pub notes: String,
    /// Kept as read (Helm fills it only for `helm status --show-resources`).
    pub resources: Option<Value>,
}

/// `chart.Chart` as a release stores it (the parent chart only: subcharts are not recorded).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ChartRecord {
    pub metadata: Option<Metadata>,
    pub lock: Option<Lock>,
    pub templates: Option<Vec<File>>,
    pub values: Option<serde_json::Map<String, Value>>,
    #[serde(deserialize_with = "bytes")]
    pub schema: Option<Vec<u8>>,
    #[serde(deserialize_with = "time")]
    pub schemamodtime: Option<String>,
    pub files: Option<Vec<File>>,
    #[serde(deserialize_with = "time")]
    pub modtime: Option<String>,
}

/// `common.File`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct File {
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    #[serde(deserialize_with = "bytes")]
    pub data: Option<Vec<u8>>,
    #[serde(deserialize_with = "time")]
    pub modtime: Option<String>,
}

/// `chart.Maintainer`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Maintainer {
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    #[serde(deserialize_with = "nullable")]
    pub email: String,
    #[serde(deserialize_with = "nullable")]
    pub url: String,
}

/// `chart.Metadata` (Chart.yaml).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Metadata {
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    #[serde(deserialize_with = "nullable")]
    pub home: String,
    #[serde(deserialize_with = "nullable")]
    pub sources: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub version: String,
    #[serde(deserialize_with = "nullable")]
    pub description: String,
    #[serde(deserialize_with = "nullable")]
    pub keywords: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub maintainers: Vec<Option<Maintainer>>,
    #[serde(deserialize_with = "nullable")]
    pub icon: String,
    #[serde(deserialize_with = "nullable")]
    pub api_version: String,
    #[serde(deserialize_with = "nullable")]
    pub condition: String,
    #[serde(deserialize_with = "nullable")]
    pub tags: String,
    #[serde(deserialize_with = "nullable")]
    pub app_version: String,
    #[serde(deserialize_with = "nullable")]
    pub deprecated: bool,
    #[serde(deserialize_with = "nullable")]
    pub annotations: BTreeMap<String, String>,
    #[serde(deserialize_with = "nullable")]
    pub kube_version: String,
    #[serde(deserialize_with = "nullable")]
    pub dependencies: Vec<Option<Dependency>>,
    #[serde(rename = "type", deserialize_with = "nullable")]
    pub chart_type: String,
}

/// `chart.Dependency`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Dependency {
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    #[serde(deserialize_with = "nullable")]
    pub version: String,
    #[serde(deserialize_with = "nullable")]
    pub repository: String,
    #[serde(deserialize_with = "nullable")]
    pub condition: String,
    #[serde(deserialize_with = "nullable")]
    pub tags: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub enabled: bool,
    #[serde(rename = "import-values", deserialize_with = "nullable")]
    pub import_values: Vec<Value>,
    #[serde(deserialize_with = "nullable")]
    pub alias: String,
}

/// `chart.Lock` (Chart.lock).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Lock {
    #[serde(deserialize_with = "time")]
    pub generated: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub digest: String,
    pub dependencies: Option<Vec<Option<Dependency>>>,
}

/// `release.Hook`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Hook {
    #[serde(deserialize_with = "nullable")]
    pub name: String,
    #[serde(deserialize_with = "nullable")]
    pub kind: String,
    /// Chart-relative template path (`mychart/templates/job.yaml`).
    #[serde(deserialize_with = "nullable")]
    pub path: String,
    #[serde(deserialize_with = "nullable")]
    pub manifest: String,
    #[serde(deserialize_with = "nullable")]
    pub events: Vec<String>,
    pub last_run: HookExecution,
    #[serde(deserialize_with = "nullable")]
    pub weight: i64,
    #[serde(deserialize_with = "nullable")]
    pub delete_policies: Vec<String>,
    #[serde(deserialize_with = "nullable")]
    pub output_log_policies: Vec<String>,
}

/// `release.HookExecution`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct HookExecution {
    #[serde(deserialize_with = "time")]
    pub started_at: Option<String>,
    #[serde(deserialize_with = "time")]
    pub completed_at: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub phase: String,
}

fn nullable<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A Go `time.Time`: absent, null, "" and the zero time all read as unset (Helm's
/// `UnmarshalJSON` maps "" to the zero time, and every time field but `schemamodtime` and a
/// lock's `generated` is `omitzero`).
fn time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|s| !s.is_empty() && !is_zero_time(s)))
}

fn bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) => base64::engine::general_purpose::STANDARD
            .decode(s)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

/// Whether `s` is Go's zero `time.Time` (in any offset Go would print it with).
pub fn is_zero_time(s: &str) -> bool {
    s.starts_with("0001-01-01T00:00:00") && (s.ends_with('Z') || s.len() == 25)
}

/// Go's RFC 3339 with nanoseconds (`time.RFC3339Nano`: trailing zeros of the fraction dropped)
/// of a UTC instant, as `json.Marshal` writes a `time.Time` in UTC.
pub fn format_time(t: jiff::Timestamp) -> String {
    let dt = t.to_zoned(jiff::tz::TimeZone::UTC).datetime();
    let mut s = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
    let nanos = dt.subsec_nanosecond();
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

// ---- writing, as Go's encoding/json ----

/// A JSON object written field by field in the order given.
struct Obj(String);

impl Obj {
    fn new() -> Obj {
        Obj(String::from("{"))
    }
    fn raw(&mut self, key: &str, value: String) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        go_string(key, &mut self.0);
        self.0.push(':');
        self.0.push_str(&value);
    }
    /// `omitempty` string.
    fn s(&mut self, key: &str, v: &str) {
        if !v.is_empty() {
            self.raw(key, quote(v));
        }
    }
    /// string without `omitempty`.
    fn s_always(&mut self, key: &str, v: &str) {
        self.raw(key, quote(v));
    }
    /// `omitempty` / `omitzero` integer.
    fn i(&mut self, key: &str, v: i64) {
        if v != 0 {
            self.raw(key, v.to_string());
        }
    }
    fn b(&mut self, key: &str, v: bool) {
        if v {
            self.raw(key, "true".into());
        }
    }
    /// `omitempty` slice of strings.
    fn strs(&mut self, key: &str, v: &[String]) {
        if !v.is_empty() {
            self.raw(key, list(v.iter().map(|s| quote(s))));
        }
    }
    /// `omitzero` time.
    fn t(&mut self, key: &str, v: &Option<String>) {
        if let Some(t) = v.as_deref().filter(|t| !is_zero_time(t)) {
            self.raw(key, quote(t));
        }
    }
    fn end(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

fn list(items: impl Iterator<Item = String>) -> String {
    let mut out = String::from("[");
    for (i, it) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&it);
    }
    out.push(']');
    out
}

/// A Go string literal as `json.Marshal` writes it (HTML characters escaped).
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    go_string(s, &mut out);
    out
}

fn go_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// An `interface{}` value (values, config, import-values) as Go writes it.
pub fn go_json_value(v: &Value) -> String {
    let mut out = String::new();
    write_value(v, &mut out);
    out
}

fn write_value(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.push_str(&i.to_string());
            } else if let Some(u) = n.as_u64() {
                out.push_str(&u.to_string());
            } else {
                out.push_str(&crate::yaml::json_number(n.as_f64().unwrap_or(0.0)));
            }
        }
        Value::String(s) => go_string(s, out),
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(x, out);
            }
            out.push(']');
        }
        Value::Object(m) => write_map(m, out),
    }
}

fn write_map(m: &serde_json::Map<String, Value>, out: &mut String) {
    // Go sorts map keys bytewise, as String's Ord does
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort();
    out.push('{');
    for (i, k) in keys.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        go_string(k, out);
        out.push(':');
        write_value(&m[k.as_str()], out);
    }
    out.push('}');
}

fn map_json(m: &serde_json::Map<String, Value>) -> String {
    let mut out = String::new();
    write_map(m, &mut out);
    out
}

fn b64(b: &[u8]) -> String {
    quote(&base64::engine::general_purpose::STANDARD.encode(b))
}

impl Release {
    /// `json.Marshal(release)`.
    pub fn to_go_json(&self) -> String {
        let mut o = Obj::new();
        o.s("name", &self.name);
        if let Some(i) = &self.info {
            o.raw("info", i.to_go_json());
        }
        if let Some(c) = &self.chart {
            o.raw("chart", c.to_go_json());
        }
        if !self.config.is_empty() {
            o.raw("config", map_json(&self.config));
        }
        o.s("manifest", &self.manifest);
        if !self.hooks.is_empty() {
            o.raw("hooks", list(self.hooks.iter().map(Hook::to_go_json)));
        }
        o.i("version", self.version);
        o.s("namespace", &self.namespace);
        o.s("apply_method", &self.apply_method);
        o.end()
    }

    /// What helm-controller hashes into a `status.history` snapshot digest: its
    /// `release.Observation` of this release (name, version, info, chart metadata, config,
    /// manifest, the hooks of events other than `test`, namespace, `ociDigest` when set),
    /// written by Go's `json.Encoder` (fields never omitted but `ociDigest`, newline at the end).
    pub fn observation_json(&self, oci_digest: &str) -> String {
        let mut o = Obj::new();
        o.s_always("name", &self.name);
        o.raw("version", self.version.to_string());
        o.raw("info", self.info.clone().unwrap_or_default().to_go_json());
        o.raw(
            "chartMetadata",
            self.chart
                .as_ref()
                .and_then(|c| c.metadata.clone())
                .unwrap_or_default()
                .to_go_json(),
        );
        o.raw(
            "config",
            if self.config.is_empty() {
                "null".into()
            } else {
                map_json(&self.config)
            },
        );
        o.s_always("manifest", &self.manifest);
        let hooks: Vec<&Hook> = self
            .hooks
            .iter()
            .filter(|h| !h.events.iter().any(|e| e == "test"))
            .collect();
        o.raw(
            "hooks",
            if hooks.is_empty() {
                "null".into()
            } else {
                list(hooks.iter().map(|h| h.to_go_json()))
            },
        );
        o.s_always("namespace", &self.namespace);
        o.s("ociDigest", oci_digest);
        let mut out = o.end();
        out.push('\n');
        out
    }

    /// `json.Unmarshal` of a release record.
    pub fn from_json(data: &[u8]) -> Result<Release, serde_json::Error> {
        serde_json::from_slice(data)
    }

    /// The status, `""` without info.
    pub fn status(&self) -> &str {
        self.info.as_ref().map(|i| i.status.as_str()).unwrap_or("")
    }

    /// `Release.SetStatus`.
    pub fn set_status(&mut self, status: &str, description: impl Into<String>) {
        let info = self.info.get_or_insert_with(Info::default);
        info.status = status.to_string();
        info.description = description.into();
    }
}

impl Info {
    fn to_go_json(&self) -> String {
        let mut o = Obj::new();
        o.t("first_deployed", &self.first_deployed);
        o.t("last_deployed", &self.last_deployed);
        o.t("deleted", &self.deleted);
        o.s("description", &self.description);
        o.s("status", &self.status);
        o.i("rollback_revision", self.rollback_revision);
        o.s("notes", &self.notes);
        if let Some(r) = self
            .resources
            .as_ref()
            .filter(|r| r.as_object().is_some_and(|m| !m.is_empty()))
        {
            o.raw("resources", go_json_value(r));
        }
        o.end()
    }
}

impl ChartRecord {
    fn to_go_json(&self) -> String {
        let mut o = Obj::new();
        o.raw(
            "metadata",
            self.metadata
                .as_ref()
                .map_or("null".into(), Metadata::to_go_json),
        );
        o.raw(
            "lock",
            self.lock.as_ref().map_or("null".into(), Lock::to_go_json),
        );
        o.raw("templates", files_json(&self.templates));
        o.raw(
            "values",
            self.values.as_ref().map_or("null".into(), map_json),
        );
        o.raw("schema", self.schema.as_deref().map_or("null".into(), b64));
        // `omitempty` never omits a struct: the zero time is written
        o.s_always(
            "schemamodtime",
            self.schemamodtime.as_deref().unwrap_or(ZERO_TIME),
        );
        o.raw("files", files_json(&self.files));
        o.t("modtime", &self.modtime);
        o.end()
    }
}

fn files_json(f: &Option<Vec<File>>) -> String {
    match f {
        None => "null".into(),
        Some(v) => list(v.iter().map(|f| {
            let mut o = Obj::new();
            o.s_always("name", &f.name);
            o.raw("data", f.data.as_deref().map_or("null".into(), b64));
            o.t("modtime", &f.modtime);
            o.end()
        })),
    }
}

impl Metadata {
    fn to_go_json(&self) -> String {
        let mut o = Obj::new();
        o.s("name", &self.name);
        o.s("home", &self.home);
        o.strs("sources", &self.sources);
        o.s("version", &self.version);
        o.s("description", &self.description);
        o.strs("keywords", &self.keywords);
        if !self.maintainers.is_empty() {
            o.raw(
                "maintainers",
                list(self.maintainers.iter().map(|m| match m {
                    None => "null".into(),
                    Some(m) => {
                        let mut mo = Obj::new();
                        mo.s("name", &m.name);
                        mo.s("email", &m.email);
                        mo.s("url", &m.url);
                        mo.end()
                    }
                })),
            );
        }
        o.s("icon", &self.icon);
        o.s("apiVersion", &self.api_version);
        o.s("condition", &self.condition);
        o.s("tags", &self.tags);
        o.s("appVersion", &self.app_version);
        o.b("deprecated", self.deprecated);
        if !self.annotations.is_empty() {
            let mut a = Obj::new();
            for (k, v) in &self.annotations {
                a.s_always(k, v);
            }
            o.raw("annotations", a.end());
        }
        o.s("kubeVersion", &self.kube_version);
        if !self.dependencies.is_empty() {
            o.raw("dependencies", deps_json(&self.dependencies));
        }
        o.s("type", &self.chart_type);
        o.end()
    }
}

fn deps_json(d: &[Option<Dependency>]) -> String {
    list(d.iter().map(|d| match d {
        None => "null".into(),
        Some(d) => {
            let mut o = Obj::new();
            o.s_always("name", &d.name);
            o.s("version", &d.version);
            o.s_always("repository", &d.repository);
            o.s("condition", &d.condition);
            o.strs("tags", &d.tags);
            o.b("enabled", d.enabled);
            if !d.import_values.is_empty() {
                o.raw(
                    "import-values",
                    list(d.import_values.iter().map(go_json_value)),
                );
            }
            o.s("alias", &d.alias);
            o.end()
        }
    }))
}

impl Lock {
    fn to_go_json(&self) -> String {
        let mut o = Obj::new();
        o.s_always("generated", self.generated.as_deref().unwrap_or(ZERO_TIME));
        o.s_always("digest", &self.digest);
        o.raw(
            "dependencies",
            self.dependencies
                .as_deref()
                .map_or("null".into(), deps_json),
        );
        o.end()
    }
}

impl Hook {
    fn to_go_json(&self) -> String {
        let mut o = Obj::new();
        o.s("name", &self.name);
        o.s("kind", &self.kind);
        o.s("path", &self.path);
        o.s("manifest", &self.manifest);
        o.strs("events", &self.events);
        let mut lr = Obj::new();
        lr.t("started_at", &self.last_run.started_at);
        lr.t("completed_at", &self.last_run.completed_at);
        lr.s_always("phase", &self.last_run.phase);
        o.raw("last_run", lr.end());
        o.i("weight", self.weight);
        o.strs("delete_policies", &self.delete_policies);
        o.strs("output_log_policies", &self.output_log_policies);
        o.end()
    }
}
