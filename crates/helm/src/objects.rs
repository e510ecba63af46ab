//! Go structs that templates see: `.Capabilities` and `.Files`.

use std::collections::BTreeMap;
use std::rc::Rc;

use base64::Engine as _;
use ferroflux_gotemplate::{Func, FuncError, Object, Param, Value};

/// `.Capabilities.KubeVersion`.
pub struct KubeVersion {
    pub version: String,
    pub major: String,
    pub minor: String,
}

impl Object for KubeVersion {
    fn type_name(&self) -> String {
        "common.KubeVersion".into()
    }
    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "Version" => Some(Value::str(self.version.as_str())),
            "Major" => Some(Value::str(self.major.as_str())),
            "Minor" => Some(Value::str(self.minor.as_str())),
            _ => None,
        }
    }
    fn method(&self, name: &str) -> Option<Func> {
        let v = self.version.clone();
        match name {
            "String" | "GitVersion" => Some(Func::new(name, &[], None, move |_, _| {
                Ok(Value::str(v.as_str()))
            })),
            _ => None,
        }
    }
    fn format(&self, _plus: bool) -> String {
        self.version.clone()
    }
    fn marshal_value(&self) -> Option<Value> {
        let mut m = BTreeMap::new();
        m.insert("Version".to_string(), Value::str(self.version.as_str()));
        m.insert("Major".to_string(), Value::str(self.major.as_str()));
        m.insert("Minor".to_string(), Value::str(self.minor.as_str()));
        Some(Value::map(m))
    }
}

/// `.Capabilities.APIVersions` (a `VersionSet` with `Has`).
pub struct ApiVersions(pub Rc<Vec<String>>);

impl Object for ApiVersions {
    fn type_name(&self) -> String {
        "common.VersionSet".into()
    }
    fn field(&self, _name: &str) -> Option<Value> {
        None
    }
    fn method(&self, name: &str) -> Option<Func> {
        let set = self.0.clone();
        match name {
            "Has" => Some(Func::new("Has", &[Param::String], None, move |_, a| {
                let want = a[0].as_str().unwrap_or_default();
                Ok(Value::Bool(set.iter().any(|v| v == want)))
            })),
            _ => None,
        }
    }
    fn format(&self, _plus: bool) -> String {
        format!("[{}]", self.0.join(" "))
    }
    fn as_list(&self) -> Option<Vec<Value>> {
        Some(self.0.iter().map(|s| Value::str(s.as_str())).collect())
    }
}

/// `.Capabilities.HelmVersion` (the build this engine mirrors).
#[derive(Clone, Copy)]
pub struct HelmVersion {
    pub v3: bool,
}

impl HelmVersion {
    fn parts(
        &self,
    ) -> (
        &'static str,
        &'static str,
        &'static str,
        Option<&'static str>,
    ) {
        if self.v3 {
            (
                "v3.19.0",
                "3d8990f0836691f0229297773f3524598f46bda6",
                "go1.24.7",
                None,
            )
        } else {
            (
                "v4.1.4",
                "05fa37973dc9e42b76e1d2883494c87174b6074f",
                "go1.25.9",
                Some("v1.35"),
            )
        }
    }
}

impl Object for HelmVersion {
    fn type_name(&self) -> String {
        "version.BuildInfo".into()
    }
    fn field(&self, name: &str) -> Option<Value> {
        let (v, commit, go, kube) = self.parts();
        match name {
            "Version" => Some(Value::str(v)),
            "GitCommit" => Some(Value::str(commit)),
            "GitTreeState" => Some(Value::str("clean")),
            "GoVersion" => Some(Value::str(go)),
            "KubeClientVersion" if !self.v3 => Some(Value::str(kube.unwrap_or_default())),
            _ => None,
        }
    }
    fn marshal_value(&self) -> Option<Value> {
        let (v, commit, go, kube) = self.parts();
        let mut m = BTreeMap::new();
        m.insert("version".to_string(), Value::str(v));
        m.insert("git_commit".to_string(), Value::str(commit));
        m.insert("git_tree_state".to_string(), Value::str("clean"));
        m.insert("go_version".to_string(), Value::str(go));
        if let Some(k) = kube {
            m.insert("kube_client_version".to_string(), Value::str(k));
        }
        Some(Value::map(m))
    }
    fn format(&self, _plus: bool) -> String {
        let (v, commit, go, kube) = self.parts();
        match kube {
            Some(k) => format!("{{{v} {commit} clean {go} {k}}}"),
            None => format!("{{{v} {commit} clean {go}}}"),
        }
    }
}

/// `.Capabilities`.
pub struct Capabilities {
    pub kube: Rc<KubeVersion>,
    pub apis: Rc<ApiVersions>,
    pub helm: HelmVersion,
}

impl Object for Capabilities {
    fn type_name(&self) -> String {
        "*common.Capabilities".into()
    }
    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "KubeVersion" => Some(Value::Object(self.kube.clone())),
            "APIVersions" => Some(Value::Object(self.apis.clone())),
            "HelmVersion" => Some(Value::Object(Rc::new(self.helm))),
            _ => None,
        }
    }
    fn marshal_value(&self) -> Option<Value> {
        let mut m = BTreeMap::new();
        for k in ["KubeVersion", "APIVersions", "HelmVersion"] {
            if let Some(Value::Object(o)) = self.field(k) {
                m.insert(k.to_string(), o.marshal_value().unwrap_or_default());
            }
        }
        Some(Value::map(m))
    }
    fn format(&self, _plus: bool) -> String {
        format!(
            "&{{{} {} {}}}",
            self.kube.version,
            self.apis.format(false),
            self.helm.format(false)
        )
    }
}

/// `.Files`: the chart's non-template files.
#[derive(Clone)]
pub struct Files(pub Rc<BTreeMap<String, Rc<[u8]>>>);

impl Files {
    fn get(&self, name: &str) -> Option<Rc<[u8]>> {
        self.0.get(name).cloned()
    }
}

fn glob_match(pattern: &str, name: &str) -> bool {
    // gobwas/glob with '/' as separator: `*` does not cross '/', `**` does.
    fn m(p: &[char], n: &[char]) -> bool {
        if p.is_empty() {
            return n.is_empty();
        }
        match p[0] {
            '*' => {
                if p.len() > 1 && p[1] == '*' {
                    (0..=n.len()).any(|i| m(&p[2..], &n[i..]))
                } else {
                    (0..=n.len())
                        .take_while(|&i| i == 0 || n[i - 1] != '/')
                        .any(|i| m(&p[1..], &n[i..]))
                }
            }
            '?' => !n.is_empty() && n[0] != '/' && m(&p[1..], &n[1..]),
            '[' => {
                let Some(end) = p.iter().position(|c| *c == ']') else {
                    return !n.is_empty() && n[0] == '[' && m(&p[1..], &n[1..]);
                };
                if n.is_empty() {
                    return false;
                }
                let set = &p[1..end];
                let (neg, set) = match set.first() {
                    Some('!') | Some('^') => (true, &set[1..]),
                    _ => (false, set),
                };
                let mut hit = false;
                let mut i = 0;
                while i < set.len() {
                    if i + 2 < set.len() && set[i + 1] == '-' {
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
            }
            '{' => {
                let Some(end) = p.iter().position(|c| *c == '}') else {
                    return !n.is_empty() && n[0] == '{' && m(&p[1..], &n[1..]);
                };
                let alts: String = p[1..end].iter().collect();
                alts.split(',').any(|alt| {
                    let mut q: Vec<char> = alt.chars().collect();
                    q.extend_from_slice(&p[end + 1..]);
                    m(&q, n)
                })
            }
            '\\' if p.len() > 1 => !n.is_empty() && n[0] == p[1] && m(&p[2..], &n[1..]),
            c => !n.is_empty() && n[0] == c && m(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    m(&p, &n)
}

fn base_name(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

impl Object for Files {
    fn type_name(&self) -> String {
        "engine.files".into()
    }
    fn field(&self, _name: &str) -> Option<Value> {
        None
    }
    fn method(&self, name: &str) -> Option<Func> {
        let me = self.clone();
        Some(match name {
            "Get" => Func::new("Get", &[Param::String], None, move |_, a| {
                let n = a[0].as_str().unwrap_or_default();
                Ok(Value::str(
                    me.get(n)
                        .map(|b| ferroflux_gotemplate::string_from_go_bytes(&b))
                        .unwrap_or_default(),
                ))
            }),
            "GetBytes" => Func::new("GetBytes", &[Param::String], None, move |_, a| {
                let n = a[0].as_str().unwrap_or_default();
                Ok(Value::Bytes(
                    me.get(n).unwrap_or_else(|| Rc::from(Vec::new())),
                ))
            }),
            "Glob" => Func::new("Glob", &[Param::String], None, move |_, a| {
                let pat = a[0].as_str().unwrap_or_default().to_string();
                let m: BTreeMap<String, Rc<[u8]>> =
                    me.0.iter()
                        .filter(|(k, _)| glob_match(&pat, k))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                Ok(Value::Object(Rc::new(Files(Rc::new(m)))))
            }),
            "Lines" => Func::new("Lines", &[Param::String], None, move |_, a| {
                let n = a[0].as_str().unwrap_or_default();
                let Some(b) = me.get(n) else {
                    return Ok(Value::list(Vec::new()));
                };
                let s = ferroflux_gotemplate::string_from_go_bytes(&b);
                let s = s.strip_suffix('\n').unwrap_or(&s);
                Ok(Value::list(s.split('\n').map(Value::str).collect()))
            }),
            "AsConfig" => Func::new("AsConfig", &[], None, move |_, _| {
                let m: BTreeMap<String, Value> =
                    me.0.iter()
                        .map(|(k, v)| {
                            (
                                base_name(k).to_string(),
                                Value::str(ferroflux_gotemplate::string_from_go_bytes(v)),
                            )
                        })
                        .collect();
                if m.is_empty() {
                    return Ok(Value::str(""));
                }
                let y = crate::yaml::to_yaml(&Value::map(m)).map_err(FuncError::Msg)?;
                Ok(Value::str(y.trim_end_matches('\n')))
            }),
            "AsSecrets" => Func::new("AsSecrets", &[], None, move |_, _| {
                let m: BTreeMap<String, Value> =
                    me.0.iter()
                        .map(|(k, v)| {
                            (
                                base_name(k).to_string(),
                                Value::str(base64::engine::general_purpose::STANDARD.encode(v)),
                            )
                        })
                        .collect();
                if m.is_empty() {
                    return Ok(Value::str(""));
                }
                let y = crate::yaml::to_yaml(&Value::map(m)).map_err(FuncError::Msg)?;
                Ok(Value::str(y.trim_end_matches('\n')))
            }),
            _ => return None,
        })
    }
    fn format(&self, _plus: bool) -> String {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(k, v)| {
                let bytes: Vec<String> = v.iter().map(|b| b.to_string()).collect();
                format!("{k}:[{}]", bytes.join(" "))
            })
            .collect();
        format!("map[{}]", parts.join(" "))
    }
    fn as_len(&self) -> Option<usize> {
        Some(self.0.len())
    }
    fn as_map(&self) -> Option<ferroflux_gotemplate::MapRef> {
        let m: BTreeMap<String, Value> = self
            .0
            .iter()
            .map(|(k, v)| (k.clone(), Value::Bytes(v.clone())))
            .collect();
        Some(Rc::new(std::cell::RefCell::new(m)))
    }
}

/// Helm v3's `.Chart`: the chart's Metadata struct embedded with `IsRoot`.
pub struct ChartStruct(pub Value);

impl Object for ChartStruct {
    fn type_name(&self) -> String {
        "struct { chart.Metadata; IsRoot bool }".into()
    }
    fn field(&self, name: &str) -> Option<Value> {
        self.0.as_map().and_then(|m| m.borrow().get(name).cloned())
    }
    fn format(&self, _plus: bool) -> String {
        let m = self
            .0
            .as_map()
            .map(|m| m.borrow().clone())
            .unwrap_or_default();
        let order = [
            "Name",
            "Home",
            "Sources",
            "Version",
            "Description",
            "Keywords",
            "Maintainers",
            "Icon",
            "APIVersion",
            "Condition",
            "Tags",
            "AppVersion",
            "Deprecated",
            "Annotations",
            "KubeVersion",
            "Dependencies",
            "Type",
        ];
        let parts: Vec<String> = order
            .iter()
            .map(|k| m.get(*k).map(|v| v.to_go_string()).unwrap_or_default())
            .collect();
        let root = m
            .get("IsRoot")
            .map(|v| v.to_go_string())
            .unwrap_or_default();
        format!("{{{{{}}} {root}}}", parts.join(" "))
    }
}
