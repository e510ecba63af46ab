//! Helm repository indexes (`index.yaml`) as source-controller reads them: JSON or YAML (YAML
//! strictly: unknown fields are errors), `apiVersion` required, chart versions whose metadata
//! does not validate dropped, versions sorted newest first; the JSON form source-controller
//! stores as the HelmRepository artifact; and the version lookup of a HelmChart (exact match,
//! else the highest version satisfying a SemVer range, ties broken by creation time).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::semver::{Constraints, Version};

/// Why an index could not be read or a chart version not found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    #[error("empty index.yaml file")]
    Empty,
    #[error("no API version specified")]
    NoApiVersion,
    #[error("{0}")]
    Parse(String),
    #[error("no chart name found")]
    NoChartName,
    #[error("no chart version found")]
    NoChartVersion,
    #[error("{0}")]
    Constraint(String),
    #[error("no '{name}' chart with version matching '{version}' found")]
    NoMatch { name: String, version: String },
}

/// A chart maintainer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Maintainer {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub email: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
}

/// A dependency as Chart.yaml (and the index) declare it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Dependency {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(default)]
    pub repository: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub condition: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub enabled: bool,
    #[serde(
        default,
        rename = "import-values",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub import_values: Vec<serde_json::Value>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub alias: String,
}

/// One version of a chart in an index: the chart metadata, then the index fields, in the
/// order Helm serialises them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChartVersion {
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
    #[serde(default, deserialize_with = "null_as_default")]
    pub urls: Vec<String>,
    #[serde(default = "zero_time", deserialize_with = "go_time")]
    pub created: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub removed: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub digest: String,
    #[serde(default, rename = "checksum", skip_serializing_if = "String::is_empty")]
    pub checksum_deprecated: String,
    #[serde(default, rename = "engine", skip_serializing_if = "String::is_empty")]
    pub engine_deprecated: String,
    #[serde(
        default,
        rename = "tillerVersion",
        skip_serializing_if = "String::is_empty"
    )]
    pub tiller_version_deprecated: String,
    #[serde(default, rename = "url", skip_serializing_if = "String::is_empty")]
    pub url_deprecated: String,
}

/// A repository index.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexFile {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub server_info: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub api_version: String,
    #[serde(default = "zero_time", deserialize_with = "go_time")]
    pub generated: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub entries: BTreeMap<String, Vec<Option<ChartVersion>>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub public_keys: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn zero_time() -> String {
    ZERO_TIME.to_string()
}

/// A timestamp as Go's `time.Time` reads (RFC 3339) and writes it back (RFC 3339 with the
/// shortest fraction, `Z` for UTC); `null` is the zero time.
fn go_time<'de, D>(d: D) -> Result<String, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let Some(s) = Option::<String>::deserialize(d)? else {
        return Ok(zero_time());
    };
    normalize_time(&s).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "parsing time {:?} as \"2006-01-02T15:04:05Z07:00\": cannot parse",
            s
        ))
    })
}

fn normalize_time(s: &str) -> Option<String> {
    // date "T" time [fraction] offset
    s.parse::<jiff::Timestamp>().ok()?;
    let b = s.as_bytes();
    if b.len() < 20 || !(b[10] == b'T' || b[10] == b't') {
        return None;
    }
    let (datetime, rest) = s.split_at(19);
    let (frac, offset) = match rest.strip_prefix('.') {
        Some(r) => {
            let n = r.bytes().take_while(u8::is_ascii_digit).count();
            (&r[..n], &r[n..])
        }
        None => ("", rest),
    };
    let frac = frac.trim_end_matches('0');
    let offset = match offset {
        "Z" | "z" | "+00:00" | "-00:00" => "Z",
        o => o,
    };
    let mut out = datetime.replacen('t', "T", 1);
    if !frac.is_empty() {
        out.push('.');
        out.push_str(&frac[..frac.len().min(9)]);
    }
    out.push_str(offset);
    Some(out)
}

const INDEX_KEYS: &[&str] = &[
    "serverInfo",
    "apiVersion",
    "generated",
    "entries",
    "publicKeys",
    "annotations",
];
const VERSION_KEYS: &[&str] = &[
    "name",
    "home",
    "sources",
    "version",
    "description",
    "keywords",
    "maintainers",
    "icon",
    "apiVersion",
    "condition",
    "tags",
    "appVersion",
    "deprecated",
    "annotations",
    "kubeVersion",
    "dependencies",
    "type",
    "urls",
    "created",
    "removed",
    "digest",
    "checksum",
    "engine",
    "tillerVersion",
    "url",
];
const MAINTAINER_KEYS: &[&str] = &["name", "email", "url"];
const DEPENDENCY_KEYS: &[&str] = &[
    "name",
    "version",
    "repository",
    "condition",
    "tags",
    "enabled",
    "import-values",
    "alias",
];

fn unknown_field(v: &serde_json::Value, known: &[&str]) -> Option<String> {
    v.as_object()?
        .keys()
        .find(|k| !known.contains(&k.as_str()))
        .cloned()
}

/// Go's strict decoding: the first field no struct of the index declares.
fn strict_check(v: &serde_json::Value) -> Result<(), String> {
    let unknown = |k: String| Err(format!("json: unknown field \"{k}\""));
    if let Some(k) = unknown_field(v, INDEX_KEYS) {
        return unknown(k);
    }
    let Some(entries) = v.get("entries").and_then(|e| e.as_object()) else {
        return Ok(());
    };
    for versions in entries.values() {
        for cv in versions.as_array().into_iter().flatten() {
            if let Some(k) = unknown_field(cv, VERSION_KEYS) {
                return unknown(k);
            }
            for m in cv
                .get("maintainers")
                .and_then(|m| m.as_array())
                .into_iter()
                .flatten()
            {
                if let Some(k) = unknown_field(m, MAINTAINER_KEYS) {
                    return unknown(k);
                }
            }
            for d in cv
                .get("dependencies")
                .and_then(|m| m.as_array())
                .into_iter()
                .flatten()
            {
                if let Some(k) = unknown_field(d, DEPENDENCY_KEYS) {
                    return unknown(k);
                }
            }
        }
    }
    Ok(())
}

/// Helm's `sanitizeString`: whitespace becomes a space, unprintable characters go.
fn sanitize(s: &mut String) {
    if s.chars()
        .all(|c| (!c.is_control() && !c.is_whitespace()) || c == ' ')
    {
        return;
    }
    *s = s
        .chars()
        .filter_map(|c| {
            if c.is_whitespace() {
                Some(' ')
            } else if c.is_control() {
                None
            } else {
                Some(c)
            }
        })
        .collect();
}

fn alias_ok(a: &str) -> bool {
    !a.is_empty()
        && a.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl ChartVersion {
    /// Helm's `Metadata.Validate` (which also sanitises the strings); `Err` with the message.
    pub fn validate(&mut self) -> Result<(), String> {
        for s in [
            &mut self.name,
            &mut self.description,
            &mut self.home,
            &mut self.icon,
            &mut self.condition,
            &mut self.tags,
            &mut self.app_version,
            &mut self.kube_version,
        ] {
            sanitize(s);
        }
        self.sources.iter_mut().for_each(sanitize);
        self.keywords.iter_mut().for_each(sanitize);
        let quoted = ferroflux_gotemplate::gofmt::quote;
        if self.api_version.is_empty() {
            return Err("validation: chart.metadata.apiVersion is required".into());
        }
        if self.name.is_empty() {
            return Err("validation: chart.metadata.name is required".into());
        }
        if self.name == "." || self.name == ".." {
            return Err(format!(
                "validation: chart.metadata.name {} is not allowed",
                quoted(&self.name)
            ));
        }
        if self.name.contains('/') {
            return Err(format!(
                "validation: chart.metadata.name {} is invalid",
                quoted(&self.name)
            ));
        }
        if self.version.is_empty() {
            return Err("validation: chart.metadata.version is required".into());
        }
        if Version::parse(&self.version).is_err() {
            return Err(format!(
                "validation: chart.metadata.version {} is invalid",
                quoted(&self.version)
            ));
        }
        if !matches!(self.chart_type.as_str(), "" | "application" | "library") {
            return Err("validation: chart.metadata.type must be application or library".into());
        }
        for m in &mut self.maintainers {
            let Some(m) = m else {
                return Err("validation: maintainers must not contain empty or null nodes".into());
            };
            sanitize(&mut m.name);
            sanitize(&mut m.email);
            sanitize(&mut m.url);
        }
        let mut seen = std::collections::BTreeSet::new();
        for d in &mut self.dependencies {
            let Some(d) = d else {
                return Err("validation: dependencies must not contain empty or null nodes".into());
            };
            for s in [
                &mut d.name,
                &mut d.version,
                &mut d.repository,
                &mut d.condition,
            ] {
                sanitize(s);
            }
            d.tags.iter_mut().for_each(sanitize);
            if !d.alias.is_empty() && !alias_ok(&d.alias) {
                return Err(format!(
                    "validation: dependency {} has disallowed characters in the alias",
                    quoted(&d.name)
                ));
            }
            let key = if d.alias.is_empty() {
                d.name.clone()
            } else {
                d.alias.clone()
            };
            if !seen.insert(key.clone()) {
                return Err(format!(
                    "validation: more than one dependency with name or alias {}",
                    quoted(&key)
                ));
            }
        }
        Ok(())
    }
}

/// Masterminds' ordering, a version that does not parse sorting lowest.
fn version_cmp(a: &str, b: &str) -> Ordering {
    match (Version::parse(a), Version::parse(b)) {
        (Ok(x), Ok(y)) => x.compare(&y),
        (Err(_), Ok(_)) => Ordering::Less,
        (Ok(_), Err(_)) => Ordering::Greater,
        (Err(_), Err(_)) => Ordering::Equal,
    }
}

impl IndexFile {
    /// Reads an index as source-controller does (`IndexFromBytes`): JSON when the bytes are
    /// valid JSON, strict YAML otherwise; versions with invalid metadata are dropped (a
    /// duplicate dependency alias is tolerated, as Helm does) and each chart's versions are
    /// sorted newest first.
    pub fn from_bytes(data: &[u8]) -> Result<IndexFile, IndexError> {
        if data.is_empty() {
            return Err(IndexError::Empty);
        }
        let value: serde_json::Value = match serde_json::from_slice(data) {
            Ok(v) => v,
            Err(_) => {
                let text = std::str::from_utf8(data).map_err(|e| {
                    IndexError::Parse(format!("error converting YAML to JSON: {e}"))
                })?;
                let v = crate::yaml::parse_yaml(text).map_err(|e| {
                    IndexError::Parse(format!("error converting YAML to JSON: {e}"))
                })?;
                let json = crate::yaml::to_json(&v, false, None).map_err(|e| {
                    IndexError::Parse(format!("error converting YAML to JSON: {e}"))
                })?;
                let v: serde_json::Value = serde_json::from_str(&json).map_err(|e| {
                    IndexError::Parse(format!("error converting YAML to JSON: {e}"))
                })?;
                strict_check(&v).map_err(|e| {
                    IndexError::Parse(format!("error unmarshaling JSON: while decoding JSON: {e}"))
                })?;
                v
            }
        };
        if !value.is_object() {
            return Err(IndexError::Parse(format!(
                "error unmarshaling JSON: json: cannot unmarshal {} into Go value of type repo.IndexFile",
                json_kind(&value)
            )));
        }
        let mut index: IndexFile = serde_json::from_value(value).map_err(|e| {
            IndexError::Parse(format!("error unmarshaling JSON: while decoding JSON: {e}"))
        })?;
        if index.api_version.is_empty() {
            return Err(IndexError::NoApiVersion);
        }
        for versions in index.entries.values_mut() {
            versions.retain_mut(|cv| match cv {
                None => true,
                Some(cv) => {
                    if cv.api_version.is_empty() {
                        cv.api_version = "v1".into();
                    }
                    match cv.validate() {
                        Ok(()) => true,
                        Err(e) => e.starts_with("validation: more than one dependency"),
                    }
                }
            });
        }
        index.sort_entries();
        Ok(index)
    }

    /// Newest version first (Helm's `SortEntries`); the sort is stable.
    pub fn sort_entries(&mut self) {
        for versions in self.entries.values_mut() {
            versions.sort_by(|a, b| {
                let va = a.as_ref().map(|c| c.version.as_str()).unwrap_or("");
                let vb = b.as_ref().map(|c| c.version.as_str()).unwrap_or("");
                version_cmp(vb, va)
            });
        }
    }

    /// The index as source-controller stores it: Go's `json.MarshalIndent` with two spaces.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let fmt = serde_json::ser::PrettyFormatter::with_indent(b"  ");
        let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
        // Serialising plain structs and JSON values cannot fail.
        let _ = self.serialize(&mut ser);
        go_escape_html(out)
    }

    /// The chart version a HelmChart resolves (source-controller's `GetChartVersion`): an exact
    /// version string first, else the highest version matching the range (`*` or empty: the
    /// latest stable), ties broken by the later creation time.
    pub fn get(&self, name: &str, version: &str) -> Result<&ChartVersion, IndexError> {
        let versions = self.entries.get(name).ok_or(IndexError::NoChartName)?;
        let versions: Vec<&ChartVersion> = versions.iter().flatten().collect();
        if versions.is_empty() {
            return Err(IndexError::NoChartVersion);
        }
        if !version.is_empty()
            && let Some(cv) = versions.iter().find(|cv| cv.version == version)
        {
            return Ok(cv);
        }
        let range = if version.is_empty() { "*" } else { version };
        let constraint = Constraints::parse(range).map_err(IndexError::Constraint)?;
        let mut matched: Vec<(Version, &ChartVersion)> = versions
            .iter()
            .filter(|cv| cv.version.splitn(3, '.').count() == 3)
            .filter_map(|cv| Version::parse(&cv.version).ok().map(|v| (v, *cv)))
            .filter(|(v, _)| constraint.matches(v))
            .collect();
        if matched.is_empty() {
            return Err(IndexError::NoMatch {
                name: name.to_string(),
                version: version.to_string(),
            });
        }
        matched.sort_by(|(va, a), (vb, b)| {
            vb.compare(va).then_with(|| {
                let ta = a.created.parse::<jiff::Timestamp>().ok();
                let tb = b.created.parse::<jiff::Timestamp>().ok();
                tb.cmp(&ta)
            })
        });
        Ok(matched[0].1)
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// Go's encoder escapes `<`, `>` and `&` in strings (and U+2028/U+2029).
fn go_escape_html(json: Vec<u8>) -> Vec<u8> {
    let text = String::from_utf8_lossy(&json);
    if !text.contains(['<', '>', '&', '\u{2028}', '\u{2029}']) {
        return json;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = r#"apiVersion: v1
entries:
  app:
  - apiVersion: v2
    name: app
    version: 1.2.0
    created: "2026-01-01T00:00:00.000000000Z"
    urls: [app-1.2.0.tgz]
    digest: abc
  - apiVersion: v2
    name: app
    version: 1.10.0
    created: "2026-01-02T00:00:00Z"
    urls: [https://other.example/app-1.10.0.tgz]
  - apiVersion: v2
    name: app
    version: 2.0.0-rc.1
    urls: [app-2.0.0-rc.1.tgz]
  - name: app
    version: not-a-version
    urls: [x.tgz]
generated: "2026-01-03T10:00:00.500+01:00"
"#;

    #[test]
    fn reads_sorts_and_resolves() {
        let idx = IndexFile::from_bytes(INDEX.as_bytes()).unwrap();
        let versions: Vec<&str> = idx.entries["app"]
            .iter()
            .flatten()
            .map(|c| c.version.as_str())
            .collect();
        assert_eq!(versions, ["2.0.0-rc.1", "1.10.0", "1.2.0"]);
        assert_eq!(idx.generated, "2026-01-03T10:00:00.5+01:00");
        assert_eq!(idx.get("app", "").unwrap().version, "1.10.0");
        assert_eq!(idx.get("app", "*").unwrap().version, "1.10.0");
        assert_eq!(idx.get("app", "~1.2").unwrap().version, "1.2.0");
        assert_eq!(idx.get("app", ">=2.0.0-0").unwrap().version, "2.0.0-rc.1");
        assert_eq!(
            idx.get("app", ">=2.0.0-0 <3.0.0").unwrap().version,
            "2.0.0-rc.1"
        );
        assert_eq!(idx.get("app", ">=1.0.0 <3.0.0").unwrap().version, "1.10.0");
        assert_eq!(idx.get("app", "2.0.0-rc.1").unwrap().version, "2.0.0-rc.1");
        assert_eq!(
            idx.get("app", "3.x").unwrap_err().to_string(),
            "no 'app' chart with version matching '3.x' found"
        );
        assert_eq!(idx.get("nope", "*").unwrap_err(), IndexError::NoChartName);
        let json = String::from_utf8(idx.to_json()).unwrap();
        assert!(
            json.starts_with("{\n  \"apiVersion\": \"v1\",\n  \"generated\""),
            "{json}"
        );
        assert!(
            json.contains("\"created\": \"0001-01-01T00:00:00Z\""),
            "{json}"
        );
        // The stored JSON reads back to the same index.
        assert_eq!(IndexFile::from_bytes(json.as_bytes()).unwrap(), idx);
    }

    #[test]
    fn bad_indexes() {
        assert_eq!(IndexFile::from_bytes(b""), Err(IndexError::Empty));
        assert_eq!(
            IndexFile::from_bytes(b"entries: {}\n"),
            Err(IndexError::NoApiVersion)
        );
        let e = IndexFile::from_bytes(b"apiVersion: v1\nbogus: 1\n").unwrap_err();
        assert!(e.to_string().contains("unknown field \"bogus\""), "{e}");
        let e = IndexFile::from_bytes(b"apiVersion: v1\nentries: [\n").unwrap_err();
        assert!(
            e.to_string().starts_with("error converting YAML to JSON"),
            "{e}"
        );
        let e = IndexFile::from_bytes(b"- a\n").unwrap_err();
        assert!(e.to_string().contains("cannot unmarshal array"), "{e}");
    }
}
