//! The build: loading kustomizations, accumulating resources, running generators and
//! transformers in kustomize's order, fixing name references, sorting.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::config::{TransformerConfig, merge_specs};
use crate::fieldspec::{self, CreateKind, FieldSpec};
use crate::fs::{Filesystem, clean};
use crate::kustfile::{GeneratorArgs, GeneratorOptions, Kustomization, Patch, Selector};
use crate::resource::{Behavior, Gvk, ResId, Resource};
use crate::{Error, yaml};

/// Which files a kustomization may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoadRestrictions {
    /// Files must be inside the kustomization's directory (kustomize's default).
    #[default]
    RootOnly,
    /// Any file may be read.
    None,
}

/// Options of a build.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// File load restrictions.
    pub load_restrictions: LoadRestrictions,
    /// Allow `helmCharts` (refused for now: Helm support comes with the Helm engine).
    pub enable_helm: bool,
}

/// Field names of a kustomization file, as kustomize spells them.
pub const KUSTOMIZATION_FIELDS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "openapi",
    "namePrefix",
    "nameSuffix",
    "namespace",
    "commonLabels",
    "labels",
    "commonAnnotations",
    "patchesStrategicMerge",
    "patchesJson6902",
    "patches",
    "images",
    "imageTags",
    "replacements",
    "replicas",
    "vars",
    "sortOptions",
    "resources",
    "components",
    "crds",
    "bases",
    "configMapGenerator",
    "secretGenerator",
    "helmGlobals",
    "helmCharts",
    "helmChartInflationGenerator",
    "generatorOptions",
    "configurations",
    "generators",
    "transformers",
    "validators",
    "buildMetadata",
];

/// File names kustomize recognises as a kustomization, in its order of preference.
pub const KUSTFILE_NAMES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// Builds kustomizations from any [`Filesystem`].
pub struct Kustomizer<'a> {
    fs: &'a dyn Filesystem,
    options: BuildOptions,
    /// The custom OpenAPI document of this build (`openapi: {path: ...}`): the first one
    /// met while loading, the top kustomization first, as kustomize does.
    schema: std::sync::Mutex<Option<std::sync::Arc<Value>>>,
}

struct Acc {
    resources: Vec<Resource>,
    config: TransformerConfig,
    vars: Vec<crate::kustfile::Var>,
}

impl Acc {
    fn new() -> Acc {
        Acc {
            resources: Vec::new(),
            config: TransformerConfig::default(),
            vars: Vec::new(),
        }
    }

    /// Append resources, refusing any whose id is already registered.
    fn append_all(&mut self, rs: Vec<Resource>, origin: &str) -> Result<(), Error> {
        let key = |id: ResId| {
            let ns = id.effective_namespace().to_string();
            (id.gvk, id.name, ns)
        };
        let mut seen: std::collections::HashSet<(Gvk, String, String)> =
            self.resources.iter().map(|r| key(r.cur_id())).collect();
        for r in rs {
            if !seen.insert(key(r.cur_id())) {
                return Err(Error::Build(format!(
                    "{origin}: may not add resource with an already registered id: {}",
                    r.cur_id()
                )));
            }
            self.resources.push(r);
        }
        Ok(())
    }

    fn merge(&mut self, o: Acc, origin: &str) -> Result<(), Error> {
        self.append_all(o.resources, origin)?;
        self.config.merge(&o.config);
        for v in o.vars {
            if self.vars.iter().any(|x| x.name == v.name) {
                return Err(Error::Build(format!(
                    "{origin}: var '{}' already encountered",
                    v.name
                )));
            }
            self.vars.push(v);
        }
        Ok(())
    }
}

struct Target<'k, 'a> {
    kz: &'k Kustomizer<'a>,
    k: Kustomization,
    root: PathBuf,
    file: PathBuf,
    chain: Vec<PathBuf>,
    /// Origin tracking (when the top kustomization has buildMetadata): the path of this
    /// kustomization relative to the top one.
    origin: Option<String>,
}

fn is_remote(s: &str) -> bool {
    s.contains("://")
        || s.starts_with("github.com/")
        || s.starts_with("gitlab.com/")
        || s.starts_with("bitbucket.org/")
        || s.starts_with("git@")
        || s.contains("?ref=")
        || s.contains(".git//")
}

impl<'a> Kustomizer<'a> {
    /// A kustomizer over a filesystem.
    pub fn new(fs: &'a dyn Filesystem, options: BuildOptions) -> Kustomizer<'a> {
        Kustomizer {
            fs,
            options,
            schema: std::sync::Mutex::new(None),
        }
    }

    fn schema(&self) -> Option<std::sync::Arc<Value>> {
        self.schema.lock().ok().and_then(|g| g.clone())
    }

    /// Build the kustomization in `dir`, returning the resources in output order.
    pub fn build(&self, dir: &Path) -> Result<Vec<Value>, Error> {
        if let Ok(mut g) = self.schema.lock() {
            *g = None;
        }
        let root = self.canonical_dir(dir)?;
        let mut t = self.load_target(&root, Vec::new())?;
        if !t.k.build_metadata.is_empty() {
            t.origin = Some(String::new());
        }
        let mut acc = t.accumulate(Acc::new())?;
        // content hashes on generated names
        for r in acc.resources.iter_mut() {
            if r.needs_hash {
                let h = crate::generators::content_hash(&r.obj)?;
                r.store_previous_id();
                let name = format!("{}-{}", r.name(), h);
                r.set_name(&name);
            }
        }
        crate::transform::fix_name_references(&mut acc.resources, &acc.config.name_reference)?;
        crate::transform::resolve_vars(&mut acc.resources, &acc.vars, &acc.config.var_reference)?;
        acc.resources.retain(|r| {
            r.obj
                .get("metadata")
                .and_then(|m| m.get("annotations"))
                .and_then(|a| a.get("config.kubernetes.io/local-config"))
                .and_then(Value::as_str)
                != Some("true")
        });
        let sort = t.k.sort_options.clone();
        let resources = sort_resources(acc.resources, sort.as_ref())?;
        let mut out = Vec::with_capacity(resources.len());
        let origin_annotations = t.k.build_metadata.iter().any(|b| b == "originAnnotations");
        let transformer_annotations =
            t.k.build_metadata
                .iter()
                .any(|b| b == "transformerAnnotations");
        let managed_by = t.k.build_metadata.iter().any(|b| b == "managedByLabel");
        for mut r in resources {
            if managed_by {
                let labels = labels_map(&mut r.obj);
                labels.insert(
                    "app.kubernetes.io/managed-by".into(),
                    Value::String("kustomize-(devel)".into()),
                );
            }
            strip_build_annotations(&mut r.obj, origin_annotations, transformer_annotations);
            if has_yaml_control_chars(&r.obj) {
                // kustomize prints through JSON (which leaves these raw) read back as YAML
                return Err(Error::Build(format!(
                    "{}: yaml: control characters are not allowed",
                    r.cur_id()
                )));
            }
            out.push(r.obj);
        }
        Ok(out)
    }

    /// `openapi:` of a kustomization: a built-in version, or a custom schema document that
    /// then serves for strategic merges (the first one met wins).
    fn load_openapi(&self, k: &Kustomization, root: &Path, file: &Path) -> Result<(), Error> {
        if let Some(v) = k.open_api.get("version")
            && v != "v1.21.2"
        {
            return Err(Error::Build(format!(
                "{}: the specified OpenAPI version is not built in",
                file.display()
            )));
        }
        let Some(path) = k.open_api.get("path") else {
            return Ok(());
        };
        if k.open_api.contains_key("version") {
            return Err(Error::Build(format!(
                "{}: builtin version and custom schema provided, cannot use both",
                file.display()
            )));
        }
        if self.schema().is_some() {
            return Ok(());
        }
        let p = clean(&root.join(path));
        let bytes = self.fs.read(&p).map_err(|e| Error::Io {
            path: p.display().to_string(),
            message: e.to_string(),
        })?;
        let text = String::from_utf8(bytes).map_err(|_| Error::Yaml {
            file: p.display().to_string(),
            message: "not valid UTF-8".into(),
        })?;
        let doc = yaml::parse_documents(&text)
            .map_err(|e| Error::Yaml {
                file: p.display().to_string(),
                message: e.message,
            })?
            .into_iter()
            .next()
            .unwrap_or(Value::Null);
        if let Ok(mut g) = self.schema.lock() {
            *g = Some(std::sync::Arc::new(doc));
        }
        Ok(())
    }

    fn canonical_dir(&self, dir: &Path) -> Result<PathBuf, Error> {
        let abs = if dir.is_absolute() {
            clean(dir)
        } else {
            let cwd = std::env::current_dir().map_err(|e| Error::Io {
                path: dir.display().to_string(),
                message: e.to_string(),
            })?;
            clean(&cwd.join(dir))
        };
        let c = self.fs.canonicalize(&abs).map_err(|e| Error::Io {
            path: abs.display().to_string(),
            message: e.to_string(),
        })?;
        if !self.fs.is_dir(&c) {
            return Err(Error::Build(format!(
                "must build at directory: '{}' is not a directory",
                abs.display()
            )));
        }
        Ok(c)
    }

    fn load_target(&self, root: &Path, chain: Vec<PathBuf>) -> Result<Target<'_, 'a>, Error> {
        let mut found = Vec::new();
        for n in KUSTFILE_NAMES {
            let p = root.join(n);
            if self.fs.exists(&p) && !self.fs.is_dir(&p) {
                found.push(p);
            }
        }
        let file = match found.len() {
            0 => {
                return Err(Error::Build(format!(
                    "unable to find one of 'kustomization.yaml', 'kustomization.yml' or 'Kustomization' in directory '{}'",
                    root.display()
                )));
            }
            1 => found.remove(0),
            _ => {
                return Err(Error::Build(format!(
                    "Found multiple kustomization files under: {}",
                    root.display()
                )));
            }
        };
        let bytes = self.fs.read(&file).map_err(|e| Error::Io {
            path: file.display().to_string(),
            message: e.to_string(),
        })?;
        let text = String::from_utf8(bytes).map_err(|_| Error::Yaml {
            file: file.display().to_string(),
            message: "not valid UTF-8".into(),
        })?;
        let docs = yaml::parse_documents_yaml11(&text).map_err(|e| Error::Yaml {
            file: file.display().to_string(),
            message: e.message,
        })?;
        let v = docs.into_iter().next().unwrap_or(Value::Null);
        if v.is_null() {
            return Err(Error::Build(format!(
                "kustomization file is empty: {}",
                file.display()
            )));
        }
        // fields written but left empty (`resources:`) read as absent
        let mut v = v;
        if let Some(m) = v.as_object_mut() {
            m.retain(|_, x| !x.is_null());
        }
        // Go's JSON decoding matches field names case-insensitively and kustomize refuses
        // unknown ones, at every level of the file's structure
        normalize_fields(&mut v, Shape::Kustomization).map_err(|k| Error::Yaml {
            file: file.display().to_string(),
            message: format!("invalid Kustomization: json: unknown field {k:?}"),
        })?;
        let mut k: Kustomization = serde_json::from_value(v).map_err(|e| Error::Yaml {
            file: file.display().to_string(),
            message: e.to_string(),
        })?;
        // kustomize's FixKustomization
        let bases = std::mem::take(&mut k.bases);
        k.resources.extend(bases);
        let tags = std::mem::take(&mut k.image_tags);
        k.images.extend(tags);
        self.load_openapi(&k, root, &file)?;
        let mut chain = chain;
        chain.push(root.to_path_buf());
        Ok(Target {
            kz: self,
            k,
            root: root.to_path_buf(),
            file,
            chain,
            origin: None,
        })
    }
}

impl Target<'_, '_> {
    fn fs(&self) -> &dyn Filesystem {
        self.kz.fs
    }

    fn ctx(&self) -> String {
        self.file.display().to_string()
    }

    /// Resolve a file path for reading, applying the load restriction.
    fn file_path(&self, rel: &str) -> Result<PathBuf, Error> {
        let p = clean(&self.root.join(rel));
        if self.kz.options.load_restrictions == LoadRestrictions::RootOnly {
            let dir = p.parent().map(Path::to_path_buf).unwrap_or_default();
            let real = self.fs().canonicalize(&dir).unwrap_or(dir);
            if !real.starts_with(&self.root) {
                return Err(Error::Build(format!(
                    "{}: security; file '{}' is not in or below '{}'",
                    self.ctx(),
                    p.display(),
                    self.root.display()
                )));
            }
        }
        Ok(p)
    }

    fn read_file(&self, rel: &str) -> Result<Vec<u8>, Error> {
        let p = self.file_path(rel)?;
        self.fs().read(&p).map_err(|e| Error::Io {
            path: p.display().to_string(),
            message: e.to_string(),
        })
    }

    fn read_text(&self, rel: &str) -> Result<String, Error> {
        let b = self.read_file(rel)?;
        String::from_utf8(b).map_err(|_| Error::Yaml {
            file: rel.to_string(),
            message: "not valid UTF-8".into(),
        })
    }

    fn parse_objects(&self, text: &str, what: &str) -> Result<Vec<Value>, Error> {
        let docs = yaml::parse_documents(text).map_err(|e| Error::Yaml {
            file: what.to_string(),
            message: e.message,
        })?;
        let mut out = Vec::new();
        for d in docs {
            match d {
                Value::Null => {}
                Value::Object(m) => {
                    let is_list = m
                        .get("kind")
                        .and_then(Value::as_str)
                        .is_some_and(|k| k.ends_with("List"))
                        && m.get("items").is_some_and(Value::is_array);
                    if is_list {
                        if let Some(Value::Array(items)) = m.get("items") {
                            for it in items {
                                if it.is_object() {
                                    out.push(it.clone());
                                }
                            }
                        }
                    } else if !m.is_empty() {
                        out.push(Value::Object(m));
                    }
                }
                Value::Array(items) => {
                    for it in items {
                        if it.is_object() {
                            out.push(it);
                        } else {
                            return Err(Error::Yaml {
                                file: what.to_string(),
                                message: "expected a mapping in the list of resources".into(),
                            });
                        }
                    }
                }
                _ => {
                    return Err(Error::Yaml {
                        file: what.to_string(),
                        message: "a resource must be a YAML mapping".into(),
                    });
                }
            }
        }
        for o in &out {
            let md = o.get("metadata");
            let named = md
                .and_then(|m| m.get("name"))
                .is_some_and(|n| !n.is_null() && n.as_str() != Some(""))
                || md
                    .and_then(|m| m.get("generateName"))
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.is_empty());
            if !named {
                return Err(Error::Build(format!(
                    "{what}: missing metadata.name in object {}",
                    short_json(o)
                )));
            }
            if o.get("kind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
            {
                return Err(Error::Build(format!(
                    "{what}: missing kind in object {}",
                    short_json(o)
                )));
            }
        }
        Ok(out)
    }

    fn accumulate(&self, mut acc: Acc) -> Result<Acc, Error> {
        if !self.k.helm_charts.is_empty() || !self.k.helm_chart_inflation_generator.is_empty() {
            return Err(Error::Unsupported(format!(
                "{}: helmCharts need Helm support, which is not enabled (it comes with the Helm engine)",
                self.ctx()
            )));
        }
        acc = self.accumulate_resources(acc, &self.k.resources.clone())?;
        // kustomize's defaults plus custom transformer configurations
        let mut cfg = TransformerConfig::defaults();
        for c in &self.k.configurations {
            let text = self.read_text(c)?;
            for d in yaml::parse_documents(&text).map_err(|e| Error::Yaml {
                file: c.clone(),
                message: e.message,
            })? {
                if d.is_null() {
                    continue;
                }
                let tc = TransformerConfig::from_value(&d).map_err(|m| Error::Yaml {
                    file: c.clone(),
                    message: m,
                })?;
                cfg.merge(&tc);
            }
        }
        acc.config.merge(&cfg);
        for c in &self.k.crds {
            let text = self.read_text(c)?;
            let doc = yaml::parse_documents(&text)
                .map_err(|e| Error::Yaml {
                    file: c.clone(),
                    message: e.message,
                })?
                .into_iter()
                .next()
                .unwrap_or(Value::Null);
            let tc = crate::config::config_from_crd_definitions(&doc).map_err(|m| Error::Yaml {
                file: c.clone(),
                message: format!("unable to parse open API definition: {m}"),
            })?;
            acc.config.merge(&tc);
        }
        self.run_generators(&mut acc)?;
        for c in &self.k.components {
            if is_remote(c) {
                return Err(Error::Unsupported(format!(
                    "{}: remote component '{c}' refused",
                    self.ctx()
                )));
            }
            let dir = clean(&self.root.join(c));
            let taken = std::mem::replace(&mut acc, Acc::new());
            acc = self.accumulate_dir(taken, &dir, true, c)?;
        }
        self.run_transformers(&mut acc)?;
        for v in &self.k.vars {
            if acc.vars.iter().any(|x| x.name == v.name) {
                return Err(Error::Build(format!(
                    "{}: var '{}' already encountered",
                    self.ctx(),
                    v.name
                )));
            }
            acc.vars.push(v.clone());
        }
        Ok(acc)
    }

    fn accumulate_resources(&self, mut acc: Acc, paths: &[String]) -> Result<Acc, Error> {
        for p in paths {
            if is_remote(p) {
                return Err(Error::Unsupported(format!(
                    "{}: remote resource '{p}' refused (remote resources are not supported)",
                    self.ctx()
                )));
            }
            let abs = clean(&self.root.join(p));
            if self.fs().is_dir(&abs) {
                acc = self.accumulate_dir(acc, &abs, false, p)?;
                continue;
            }
            if !self.fs().exists(&abs) {
                return Err(Error::Build(format!(
                    "{}: accumulating resources: '{}' does not exist",
                    self.ctx(),
                    abs.display()
                )));
            }
            let text = self.read_text(p)?;
            let objs = self.parse_objects(&text, &abs.display().to_string())?;
            let mut rs = Vec::with_capacity(objs.len());
            for o in objs {
                let mut r = Resource::new(o);
                if let Some(origin) = &self.origin {
                    set_annotation(
                        &mut r.obj,
                        ORIGIN_ANNOTATION,
                        &format!("path: {}\n", go_join(origin, p)),
                    );
                }
                rs.push(r);
            }
            acc.append_all(rs, &format!("{}: merging resources from '{p}'", self.ctx()))?;
        }
        Ok(acc)
    }

    /// kustomize refuses a directory that contains (or is) one being built.
    fn check_cycle(&self, real: &Path) -> Result<(), Error> {
        for visited in &self.chain {
            if visited.starts_with(real) {
                return Err(Error::Build(format!(
                    "{}: cycle detected: candidate root '{}' contains visited root '{}'",
                    self.ctx(),
                    real.display(),
                    visited.display()
                )));
            }
        }
        if self.chain.len() > 200 {
            return Err(Error::Build(format!(
                "{}: kustomizations nested too deeply",
                self.ctx()
            )));
        }
        Ok(())
    }

    fn accumulate_dir(
        &self,
        acc: Acc,
        dir: &Path,
        component: bool,
        rel: &str,
    ) -> Result<Acc, Error> {
        let real = self.fs().canonicalize(dir).map_err(|e| Error::Io {
            path: dir.display().to_string(),
            message: e.to_string(),
        })?;
        self.check_cycle(&real)?;
        let mut sub = self.kz.load_target(&real, self.chain.clone())?;
        sub.origin = self.origin.as_ref().map(|o| go_join(o, rel));
        let is_comp = sub.k.kind == "Component";
        if component && !is_comp {
            return Err(Error::Build(format!(
                "{}: expected kind 'Component' for path '{}' but got '{}'",
                self.ctx(),
                real.display(),
                sub.k.kind
            )));
        }
        if !component && is_comp {
            return Err(Error::Build(format!(
                "{}: expected kind != 'Component' for path '{}'",
                self.ctx(),
                real.display()
            )));
        }
        let origin = format!("{}: recursed merging from path '{rel}'", self.ctx());
        if component {
            sub.accumulate(acc)
        } else {
            let sub_acc = sub.accumulate(Acc::new())?;
            let mut acc = acc;
            acc.merge(sub_acc, &origin)?;
            Ok(acc)
        }
    }

    /// The origin annotation of a resource made by a built-in generator of this kustomization.
    fn generator_origin(&self, r: &mut Resource, kind: &str) {
        let Some(origin) = &self.origin else { return };
        let has = r
            .obj
            .get("metadata")
            .and_then(|m| m.get("annotations"))
            .and_then(|a| a.get(ORIGIN_ANNOTATION))
            .is_some();
        if has {
            return;
        }
        let file = self
            .file
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = format!(
            "configuredIn: {}\nconfiguredBy:\n  apiVersion: builtin\n  kind: {kind}\n",
            go_join(origin, &file)
        );
        set_annotation(&mut r.obj, ORIGIN_ANNOTATION, &text);
    }

    fn run_generators(&self, acc: &mut Acc) -> Result<(), Error> {
        let global = self.k.generator_options.as_ref();
        for g in &self.k.config_map_generator {
            let opts = GeneratorOptions::merge_global(g.options.as_ref(), global);
            let mut r = crate::generators::make(self, g, &opts, false)?;
            self.generator_origin(&mut r, "ConfigMapGenerator");
            absorb(acc, r, &self.ctx())?;
        }
        for g in &self.k.secret_generator {
            let opts = GeneratorOptions::merge_global(g.options.as_ref(), global);
            let mut r = crate::generators::make(self, g, &opts, true)?;
            self.generator_origin(&mut r, "SecretGenerator");
            absorb(acc, r, &self.ctx())?;
        }
        for g in inline_first(&self.k.generators) {
            for cfg in self.plugin_configs(g)? {
                let kind = cfg
                    .get("kind")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                match kind.as_str() {
                    "ConfigMapGenerator" | "SecretGenerator" => {
                        let mut args: GeneratorArgs =
                            serde_json::from_value(cfg.clone()).map_err(|e| Error::Yaml {
                                file: g.clone(),
                                message: e.to_string(),
                            })?;
                        if let Some(md) = cfg.get("metadata") {
                            if args.name.is_empty() {
                                args.name = md
                                    .get("name")
                                    .and_then(Value::as_str)
                                    .unwrap_or("")
                                    .to_string();
                            }
                            if args.namespace.is_empty() {
                                args.namespace = md
                                    .get("namespace")
                                    .and_then(Value::as_str)
                                    .unwrap_or("")
                                    .to_string();
                            }
                        }
                        let opts = GeneratorOptions::merge_global(args.options.as_ref(), None);
                        let r =
                            crate::generators::make(self, &args, &opts, kind == "SecretGenerator")?;
                        absorb(acc, r, &self.ctx())?;
                    }
                    other => {
                        return Err(Error::Unsupported(format!(
                            "{}: generator plugin kind '{other}' is not supported",
                            self.ctx()
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// Plugin configurations named by a `generators:`/`transformers:` entry: inline YAML,
    /// a file, or a kustomization directory producing them.
    fn plugin_configs(&self, entry: &str) -> Result<Vec<Value>, Error> {
        if entry.contains('\n')
            || entry.trim_start().starts_with("apiVersion")
            || entry.trim_start().starts_with("kind")
        {
            return self.parse_objects(entry, &format!("{} (inline plugin config)", self.ctx()));
        }
        if is_remote(entry) {
            return Err(Error::Unsupported(format!(
                "{}: remote plugin config '{entry}' refused",
                self.ctx()
            )));
        }
        let abs = clean(&self.root.join(entry));
        if self.fs().is_dir(&abs) {
            let real = self.fs().canonicalize(&abs).unwrap_or(abs.clone());
            self.check_cycle(&real)?;
            let mut sub = self.kz.load_target(&real, self.chain.clone())?;
            sub.origin = self.origin.as_ref().map(|o| go_join(o, entry));
            let mut a = sub.accumulate(Acc::new())?;
            crate::transform::fix_name_references(&mut a.resources, &a.config.name_reference)?;
            return Ok(a.resources.into_iter().map(|r| r.obj).collect());
        }
        let text = self.read_text(entry)?;
        self.parse_objects(&text, &abs.display().to_string())
    }

    fn run_transformers(&self, acc: &mut Acc) -> Result<(), Error> {
        let k = &self.k;
        let tc = acc.config.clone();
        let ctx = self.ctx();
        // patchesStrategicMerge
        for p in &k.patches_strategic_merge {
            let text = if p.contains('\n')
                || p.trim_start().starts_with("apiVersion")
                || p.trim_start().starts_with("kind")
            {
                p.clone()
            } else {
                self.read_text(p)?
            };
            let patches = self.parse_objects(&text, p)?;
            for patch in patches {
                crate::transform::apply_smp_by_id(
                    &mut acc.resources,
                    &patch,
                    self.kz.schema().as_deref(),
                    &ctx,
                )?;
            }
        }
        if !k.patches_strategic_merge.is_empty() {
            self.mark_builtin(acc, "PatchStrategicMergeTransformer");
        }
        // patches
        for p in &k.patches {
            self.apply_patch_entry(acc, p)?;
            self.mark_builtin(acc, "PatchTransformer");
        }
        // namespace
        if !k.namespace.is_empty() {
            crate::transform::namespace(
                &mut acc.resources,
                &k.namespace,
                &tc.name_space,
                false,
                "defaultOnly",
            )?;
            self.mark_builtin(acc, "NamespaceTransformer");
        }
        if !k.name_prefix.is_empty() {
            crate::transform::prefix_suffix(
                &mut acc.resources,
                &k.name_prefix,
                "",
                &tc.name_prefix,
            )?;
            self.mark_builtin(acc, "PrefixTransformer");
        }
        if !k.name_suffix.is_empty() {
            crate::transform::prefix_suffix(
                &mut acc.resources,
                "",
                &k.name_suffix,
                &tc.name_suffix,
            )?;
            self.mark_builtin(acc, "SuffixTransformer");
        }
        for l in &k.labels {
            let mut fss: Vec<FieldSpec> = l.fields.clone();
            merge_specs(&mut fss, &tc.labels);
            if l.include_selectors {
                merge_specs(&mut fss, &tc.common_labels);
            } else {
                if l.include_templates {
                    merge_specs(&mut fss, &tc.template_labels);
                }
                merge_specs(&mut fss, &[FieldSpec::any("metadata/labels", true)]);
            }
            crate::transform::set_map_entries(&mut acc.resources, &l.pairs, &fss)?;
            self.mark_builtin(acc, "LabelTransformer");
        }
        if !k.common_labels.is_empty() || !k.labels.is_empty() {
            crate::transform::set_map_entries(
                &mut acc.resources,
                &k.common_labels,
                &tc.common_labels,
            )?;
            self.mark_builtin(acc, "LabelTransformer");
        }
        if !k.common_annotations.is_empty() {
            crate::transform::set_map_entries(
                &mut acc.resources,
                &k.common_annotations,
                &tc.common_annotations,
            )?;
            self.mark_builtin(acc, "AnnotationsTransformer");
        }
        for p in &k.patches_json6902 {
            let Some(target) = p.target.clone() else {
                return Err(Error::Build(format!(
                    "{ctx}: must specify a target for patch {:?}",
                    p.patch
                )));
            };
            if target.name.is_empty() {
                return Err(Error::Build(format!(
                    "{ctx}: patchesJson6902: must specify the target name"
                )));
            }
            let text = match (p.path.is_empty(), p.patch.is_empty()) {
                (true, true) => {
                    return Err(Error::Build(format!(
                        "{ctx}: patchesJson6902: empty file path and empty jsonOp"
                    )));
                }
                (false, false) => {
                    return Err(Error::Build(format!(
                        "{ctx}: patchesJson6902: must specify a file path or jsonOp, not both"
                    )));
                }
                (true, false) => p.patch.clone(),
                (false, true) => self.read_text(&p.path)?,
            };
            let ops = parse_json_patch(&text, &ctx)?;
            crate::transform::apply_json_patch(&mut acc.resources, &target, &ops, false, &ctx)?;
            self.mark_builtin(acc, "PatchJson6902Transformer");
        }
        for r in &k.replicas {
            crate::transform::replicas(&mut acc.resources, &r.name, r.count, &tc.replicas)?;
            self.mark_builtin(acc, "ReplicaCountTransformer");
        }
        for img in &k.images {
            crate::transform::images(&mut acc.resources, img, &tc.images)?;
            self.mark_builtin(acc, "ImageTagTransformer");
        }
        if !k.replacements.is_empty() {
            let mut reps = Vec::new();
            for r in &k.replacements {
                if let Some(path) = r.get("path").and_then(Value::as_str) {
                    let text = self.read_text(path)?;
                    for d in yaml::parse_documents(&text).map_err(|e| Error::Yaml {
                        file: path.to_string(),
                        message: e.message,
                    })? {
                        match d {
                            Value::Array(a) => reps.extend(a),
                            Value::Null => {}
                            other => reps.push(other),
                        }
                    }
                } else {
                    reps.push(r.clone());
                }
            }
            crate::replacements::apply(&mut acc.resources, &reps)
                .map_err(|m| Error::Build(format!("{ctx}: {m}")))?;
            self.mark_builtin(acc, "ReplacementTransformer");
        }
        // transformer plugins
        for t in inline_first(&k.transformers) {
            for (cfg, origin) in self.plugin_configs_with_origin(t)? {
                self.run_plugin(acc, &cfg)?;
                if let Some(configured_in) = origin {
                    let by = configured_by(&cfg);
                    mark_all(acc, &configured_in, &by);
                }
            }
        }
        Ok(())
    }

    /// With origin tracking on, record that a built-in transformer of this kustomization ran
    /// over every resource (kustomize's transformer annotations).
    fn mark_builtin(&self, acc: &mut Acc, kind: &str) {
        let Some(origin) = &self.origin else { return };
        let file = self
            .file
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let by = format!("apiVersion: builtin\nkind: {kind}\n");
        mark_all(acc, &go_join(origin, &file), &by);
    }

    /// Plugin configs with the origin path kustomize records for them (when tracking).
    fn plugin_configs_with_origin(
        &self,
        entry: &str,
    ) -> Result<Vec<(Value, Option<String>)>, Error> {
        let configs = self.plugin_configs(entry)?;
        let Some(origin) = &self.origin else {
            return Ok(configs.into_iter().map(|c| (c, None)).collect());
        };
        let file = self
            .file
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let inline = entry.contains('\n')
            || entry.trim_start().starts_with("apiVersion")
            || entry.trim_start().starts_with("kind");
        let is_dir = !inline && self.fs().is_dir(&clean(&self.root.join(entry)));
        Ok(configs
            .into_iter()
            .map(|c| {
                let path = if inline {
                    go_join(origin, &file)
                } else if is_dir {
                    c.get("metadata")
                        .and_then(|m| m.get("annotations"))
                        .and_then(|a| a.get(ORIGIN_ANNOTATION))
                        .and_then(Value::as_str)
                        .and_then(|t| t.lines().find_map(|l| l.strip_prefix("path: ")))
                        .map(String::from)
                        .unwrap_or_else(|| go_join(origin, entry))
                } else {
                    go_join(origin, entry)
                };
                (c, Some(path))
            })
            .collect())
    }

    fn apply_patch_entry(&self, acc: &mut Acc, p: &Patch) -> Result<(), Error> {
        let ctx = self.ctx();
        let text = match (p.path.is_empty(), p.patch.is_empty()) {
            (false, true) => self.read_text(&p.path)?,
            (true, false) => p.patch.clone(),
            (false, false) => {
                return Err(Error::Build(format!(
                    "{ctx}: patch must not have both 'path' and 'patch'"
                )));
            }
            (true, true) => {
                return Err(Error::Build(format!(
                    "{ctx}: patch must have either 'path' or 'patch'"
                )));
            }
        };
        let allow_name = p.options.get("allowNameChange").copied().unwrap_or(false);
        let allow_kind = p.options.get("allowKindChange").copied().unwrap_or(false);
        crate::transform::apply_patch(
            &mut acc.resources,
            &text,
            p.target.as_ref(),
            allow_name,
            allow_kind,
            self.kz.schema().as_deref(),
            &ctx,
        )
    }

    fn run_plugin(&self, acc: &mut Acc, cfg: &Value) -> Result<(), Error> {
        let ctx = self.ctx();
        let kind = cfg.get("kind").and_then(Value::as_str).unwrap_or("");
        let fss = |key: &str| -> Result<Vec<FieldSpec>, Error> {
            match cfg.get(key) {
                Some(v) if !v.is_null() => {
                    serde_json::from_value(v.clone()).map_err(|e| Error::Yaml {
                        file: ctx.clone(),
                        message: e.to_string(),
                    })
                }
                _ => Ok(Vec::new()),
            }
        };
        let string_map = |key: &str| -> std::collections::BTreeMap<String, String> {
            cfg.get(key)
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), scalar_string(v)))
                        .collect()
                })
                .unwrap_or_default()
        };
        match kind {
            "LabelTransformer" => crate::transform::set_map_entries(
                &mut acc.resources,
                &string_map("labels"),
                &fss("fieldSpecs")?,
            )?,
            "AnnotationsTransformer" => crate::transform::set_map_entries(
                &mut acc.resources,
                &string_map("annotations"),
                &fss("fieldSpecs")?,
            )?,
            "NamespaceTransformer" => {
                let ns = cfg
                    .get("metadata")
                    .and_then(|m| m.get("namespace"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let unset_only = cfg
                    .get("unsetOnly")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let mode = cfg
                    .get("setRoleBindingSubjects")
                    .and_then(Value::as_str)
                    .unwrap_or("defaultOnly");
                if !ns.is_empty() {
                    crate::transform::namespace(
                        &mut acc.resources,
                        ns,
                        &fss("fieldSpecs")?,
                        unset_only,
                        mode,
                    )?;
                }
            }
            "PrefixSuffixTransformer" | "PrefixTransformer" | "SuffixTransformer" => {
                let prefix = cfg.get("prefix").and_then(Value::as_str).unwrap_or("");
                let suffix = cfg.get("suffix").and_then(Value::as_str).unwrap_or("");
                crate::transform::prefix_suffix(
                    &mut acc.resources,
                    prefix,
                    suffix,
                    &fss("fieldSpecs")?,
                )?;
            }
            "ImageTagTransformer" => {
                let img: crate::kustfile::Image =
                    serde_json::from_value(cfg.get("imageTag").cloned().unwrap_or(Value::Null))
                        .unwrap_or_default();
                let mut specs = fss("fieldSpecs")?;
                if specs.is_empty() {
                    specs = acc.config.images.clone();
                }
                crate::transform::images(&mut acc.resources, &img, &specs)?;
            }
            "ReplicaCountTransformer" => {
                let r: crate::kustfile::Replica =
                    serde_json::from_value(cfg.get("replica").cloned().unwrap_or(Value::Null))
                        .unwrap_or_default();
                crate::transform::replicas(
                    &mut acc.resources,
                    &r.name,
                    r.count,
                    &fss("fieldSpecs")?,
                )?;
            }
            "PatchTransformer" => {
                let p: Patch = serde_json::from_value(cfg.clone()).map_err(|e| Error::Yaml {
                    file: ctx.clone(),
                    message: e.to_string(),
                })?;
                self.apply_patch_entry(acc, &p)?;
            }
            "PatchStrategicMergeTransformer" => {
                let paths: Vec<String> = cfg
                    .get("paths")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default();
                for p in paths {
                    let text = self.read_text(&p)?;
                    for patch in self.parse_objects(&text, &p)? {
                        crate::transform::apply_smp_by_id(
                            &mut acc.resources,
                            &patch,
                            self.kz.schema().as_deref(),
                            &ctx,
                        )?;
                    }
                }
                if let Some(inline) = cfg.get("patches").and_then(Value::as_str) {
                    for patch in self.parse_objects(inline, &ctx)? {
                        crate::transform::apply_smp_by_id(
                            &mut acc.resources,
                            &patch,
                            self.kz.schema().as_deref(),
                            &ctx,
                        )?;
                    }
                }
            }
            "PatchJson6902Transformer" => {
                let target: Selector =
                    serde_json::from_value(cfg.get("target").cloned().unwrap_or(Value::Null))
                        .unwrap_or_default();
                let text = match cfg.get("jsonOp").and_then(Value::as_str) {
                    Some(s) => s.to_string(),
                    None => {
                        self.read_text(cfg.get("path").and_then(Value::as_str).unwrap_or(""))?
                    }
                };
                let ops = parse_json_patch(&text, &ctx)?;
                crate::transform::apply_json_patch(&mut acc.resources, &target, &ops, false, &ctx)?;
            }
            "ValueAddTransformer" => self.value_add(acc, cfg)?,
            "ReplacementTransformer" => {
                let reps = cfg
                    .get("replacements")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                crate::replacements::apply(&mut acc.resources, &reps)
                    .map_err(|m| Error::Build(format!("{ctx}: {m}")))?;
            }
            other => {
                return Err(Error::Unsupported(format!(
                    "{ctx}: transformer plugin kind '{other}' is not supported"
                )));
            }
        }
        Ok(())
    }
}

impl Target<'_, '_> {
    /// kustomize's ValueAddTransformer: put a value (by default the kustomization directory's
    /// name) into fields, or into one position of a path-like field.
    fn value_add(&self, acc: &mut Acc, cfg: &Value) -> Result<(), Error> {
        let ctx = self.ctx();
        let mut value = cfg
            .get("value")
            .and_then(Value::as_str)
            .unwrap_or("")
            .trim()
            .to_string();
        if value.is_empty() {
            value = self
                .root
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
        }
        let mut targets: Vec<Value> = cfg
            .get("targets")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if let Some(p) = cfg.get("targetFilePath").and_then(Value::as_str) {
            let text = self.read_text(p)?;
            let doc = yaml::parse_documents(&text)
                .map_err(|e| Error::Yaml {
                    file: p.to_string(),
                    message: e.message,
                })?
                .into_iter()
                .next()
                .unwrap_or(Value::Null);
            targets.extend(
                doc.get("targets")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            );
        }
        if targets.is_empty() {
            return Err(Error::Build(format!(
                "{ctx}: ValueAddTransformer: must specify at least one target"
            )));
        }
        for t in &targets {
            let field_path = t.get("fieldPath").and_then(Value::as_str).unwrap_or("");
            if field_path.is_empty() {
                return Err(Error::Build(format!(
                    "{ctx}: ValueAddTransformer: fieldPath cannot be empty"
                )));
            }
            let pos = t
                .get("filePathPosition")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if pos < 0 {
                return Err(Error::Build(format!(
                    "{ctx}: value of FilePathPosition ({pos}) cannot be negative"
                )));
            }
            let hits: Vec<usize> = match t.get("selector") {
                Some(sel) if !sel.is_null() => {
                    let sel: Selector = serde_json::from_value(sel.clone()).unwrap_or_default();
                    crate::transform::select(&acc.resources, &sel)?
                }
                _ => (0..acc.resources.len()).collect(),
            };
            if field_path == "metadata/namespace" {
                let specs = acc.config.name_space.clone();
                let mut picked: Vec<Resource> =
                    hits.iter().map(|&i| acc.resources[i].clone()).collect();
                crate::transform::namespace(&mut picked, &value, &specs, false, "defaultOnly")?;
                for (k, &i) in hits.iter().enumerate() {
                    acc.resources[i] = picked[k].clone();
                }
                continue;
            }
            let fields = crate::fieldspec::split_path(field_path);
            for &i in &hits {
                let obj = &mut acc.resources[i].obj;
                let mut cur = obj;
                for (n, f) in fields.iter().enumerate() {
                    let m = crate::resource::ensure_object(cur);
                    let last = n + 1 == fields.len();
                    cur = m.entry(f.clone()).or_insert_with(|| {
                        if last {
                            Value::String(String::new())
                        } else {
                            Value::Object(Map::new())
                        }
                    });
                }
                let old = match &*cur {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    Value::Object(_) | Value::Array(_) => {
                        return Err(Error::Build(format!(
                            "{ctx}: ValueAddTransformer: {field_path} is not a scalar"
                        )));
                    }
                    other => other.to_string(),
                };
                let new = if pos > 0 {
                    insert_path_part(&old, (pos - 1) as usize, &value)
                } else {
                    value.clone()
                };
                *cur = Value::String(new);
            }
        }
        Ok(())
    }
}

/// kyaml's InsertPathPart: put `part` at position `pos` of a slash-separated path.
fn insert_path_part(path: &str, pos: usize, part: &str) -> String {
    if part.is_empty() {
        return path.to_string();
    }
    let parts: Vec<&str> = if path.is_empty() {
        Vec::new()
    } else {
        path.split('/').collect()
    };
    if pos > parts.len() {
        return go_join(path, part);
    }
    let mut out: Vec<&str> = parts[..pos].to_vec();
    out.push(part);
    out.extend_from_slice(&parts[pos..]);
    if out.first() == Some(&"") {
        return format!("/{}", go_join("", &out[1..].join("/")));
    }
    go_join("", &out.join("/"))
}

/// Read a generator's key/value sources.
impl crate::generators::Source for Target<'_, '_> {
    fn read(&self, rel: &str) -> Result<Vec<u8>, Error> {
        self.read_file(rel)
    }
}

fn parse_json_patch(text: &str, ctx: &str) -> Result<Value, Error> {
    let docs = yaml::parse_documents_yaml11(text).map_err(|e| Error::Yaml {
        file: ctx.to_string(),
        message: e.message,
    })?;
    Ok(docs.into_iter().next().unwrap_or(Value::Array(Vec::new())))
}

fn absorb(acc: &mut Acc, r: Resource, ctx: &str) -> Result<(), Error> {
    let id = r.cur_id();
    let matches: Vec<usize> = acc
        .resources
        .iter()
        .enumerate()
        .filter(|(_, x)| {
            x.all_ids()
                .iter()
                .any(|i| i.gvk == id.gvk && i.name == id.name && i.ns_equals(&id))
        })
        .map(|(i, _)| i)
        .collect();
    match matches.len() {
        0 => match r.behavior {
            Behavior::Merge | Behavior::Replace => Err(Error::Build(format!(
                "{ctx}: id {id} does not exist; cannot merge or replace"
            ))),
            Behavior::Create => {
                acc.resources.push(r);
                Ok(())
            }
        },
        1 => {
            let i = matches[0];
            let old = acc.resources[i].clone();
            let mut new = r;
            match new.behavior {
                Behavior::Create => {
                    return Err(Error::Build(format!(
                        "{ctx}: id {id} exists; behavior must be merge or replace"
                    )));
                }
                Behavior::Replace => copy_merge_metadata(&mut new, &old),
                Behavior::Merge => {
                    copy_merge_metadata(&mut new, &old);
                    for field in ["data", "binaryData"] {
                        let mut merged = old
                            .obj
                            .get(field)
                            .and_then(Value::as_object)
                            .cloned()
                            .unwrap_or_default();
                        if let Some(m) = new.obj.get(field).and_then(Value::as_object) {
                            for (k, v) in m {
                                merged.insert(k.clone(), v.clone());
                            }
                        }
                        if !merged.is_empty()
                            && let Some(o) = new.obj.as_object_mut()
                        {
                            o.insert(field.to_string(), Value::Object(merged));
                        }
                    }
                }
            }
            new.prev = old.prev.clone();
            new.prefixes = old.prefixes.clone();
            new.suffixes = old.suffixes.clone();
            new.needs_hash = new.needs_hash && old.needs_hash;
            new.behavior = Behavior::Create;
            acc.resources[i] = new;
            Ok(())
        }
        _ => Err(Error::Build(format!(
            "{ctx}: found multiple objects matching {id}"
        ))),
    }
}

fn copy_merge_metadata(new: &mut Resource, old: &Resource) {
    for field in ["labels", "annotations"] {
        let mut merged = old.meta_map(field);
        for (k, v) in new.meta_map(field) {
            merged.insert(k, v);
        }
        let md = new.metadata_mut();
        if merged.is_empty() {
            md.remove(field);
        } else {
            md.insert(field.to_string(), Value::Object(merged));
        }
    }
    let (name, ns) = (old.name(), old.namespace());
    new.set_name(&name);
    new.set_namespace(&ns);
}

fn labels_map(obj: &mut Value) -> &mut Map<String, Value> {
    let o = crate::resource::ensure_object(obj);
    let md = crate::resource::ensure_object(
        o.entry("metadata")
            .or_insert_with(|| Value::Object(Map::new())),
    );
    crate::resource::ensure_object(
        md.entry("labels")
            .or_insert_with(|| Value::Object(Map::new())),
    )
}

const ORIGIN_ANNOTATION: &str = "config.kubernetes.io/origin";
const TRANSFORMATIONS_ANNOTATION: &str = "alpha.config.kubernetes.io/transformations";

/// The struct shapes of a kustomization file whose field names are checked and folded.
#[derive(Clone, Copy)]
enum Shape {
    Kustomization,
    Label,
    FieldSpec,
    Patch,
    Selector,
    Image,
    Replica,
    Var,
    VarObjRef,
    VarFieldRef,
    SortOptions,
    LegacySortOptions,
    Generator,
    GeneratorOptions,
}

impl Shape {
    fn fields(self) -> &'static [&'static str] {
        match self {
            Shape::Kustomization => KUSTOMIZATION_FIELDS,
            Shape::Label => &["pairs", "includeSelectors", "includeTemplates", "fields"],
            Shape::FieldSpec => &["group", "version", "kind", "path", "create"],
            Shape::Patch => &["path", "patch", "target", "options"],
            Shape::Selector => &[
                "group",
                "version",
                "kind",
                "name",
                "namespace",
                "labelSelector",
                "annotationSelector",
            ],
            Shape::Image => &["name", "newName", "newTag", "digest", "tagSuffix"],
            Shape::Replica => &["name", "count"],
            Shape::Var => &["name", "objref", "fieldref"],
            Shape::VarObjRef => &[
                "apiVersion",
                "group",
                "version",
                "kind",
                "name",
                "namespace",
            ],
            Shape::VarFieldRef => &["fieldpath"],
            Shape::SortOptions => &["order", "legacySortOptions"],
            Shape::LegacySortOptions => &["orderFirst", "orderLast"],
            Shape::Generator => &[
                "namespace",
                "name",
                "behavior",
                "literals",
                "files",
                "envs",
                "env",
                "options",
                "type",
                "kvSources",
            ],
            Shape::GeneratorOptions => &[
                "labels",
                "annotations",
                "disableNameSuffixHash",
                "immutable",
            ],
        }
    }

    /// The shape of a field's value (`None`: free-form or scalar), and whether it is a list of it.
    fn child(self, field: &str) -> Option<(Shape, bool)> {
        Some(match (self, field) {
            (Shape::Kustomization, "labels") => (Shape::Label, true),
            (Shape::Kustomization, "patches" | "patchesJson6902") => (Shape::Patch, true),
            (Shape::Kustomization, "images" | "imageTags") => (Shape::Image, true),
            (Shape::Kustomization, "replicas") => (Shape::Replica, true),
            (Shape::Kustomization, "vars") => (Shape::Var, true),
            (Shape::Kustomization, "sortOptions") => (Shape::SortOptions, false),
            (Shape::Kustomization, "configMapGenerator" | "secretGenerator") => {
                (Shape::Generator, true)
            }
            (Shape::Kustomization, "generatorOptions") => (Shape::GeneratorOptions, false),
            (Shape::Label, "fields") => (Shape::FieldSpec, true),
            (Shape::Patch, "target") => (Shape::Selector, false),
            (Shape::Var, "objref") => (Shape::VarObjRef, false),
            (Shape::Var, "fieldref") => (Shape::VarFieldRef, false),
            (Shape::SortOptions, "legacySortOptions") => (Shape::LegacySortOptions, false),
            (Shape::Generator, "options") => (Shape::GeneratorOptions, false),
            _ => return None,
        })
    }
}

/// Fold field names to their spelling (case-insensitively, as Go's JSON decoding matches
/// them) and refuse unknown ones; returns the offending name.
fn normalize_fields(v: &mut Value, shape: Shape) -> Result<(), String> {
    let Some(m) = v.as_object_mut() else {
        return Ok(());
    };
    let keys: Vec<String> = m.keys().cloned().collect();
    for k in keys {
        let Some(known) = shape.fields().iter().find(|f| f.eq_ignore_ascii_case(&k)) else {
            return Err(k);
        };
        if *known != k
            && !m.contains_key(*known)
            && let Some(val) = m.remove(&k)
        {
            m.insert(known.to_string(), val);
        }
    }
    for (field, val) in m.iter_mut() {
        match shape.child(field) {
            Some((child, true)) => {
                if let Value::Array(items) = val {
                    for it in items.iter_mut() {
                        normalize_fields(it, child)?;
                    }
                }
            }
            Some((child, false)) => normalize_fields(val, child)?,
            None => {}
        }
    }
    Ok(())
}

/// Is a `generators:`/`transformers:` entry inline YAML rather than a path?
fn is_inline(entry: &str) -> bool {
    entry.contains('\n')
        || entry.trim_start().starts_with("apiVersion")
        || entry.trim_start().starts_with("kind")
}

/// kustomize loads inline plugin configs before the ones named by path.
fn inline_first(entries: &[String]) -> Vec<&String> {
    let mut v: Vec<&String> = entries.iter().filter(|e| is_inline(e)).collect();
    v.extend(entries.iter().filter(|e| !is_inline(e)));
    v
}

/// The `configuredBy` block of a plugin config: apiVersion, kind, name, namespace.
fn configured_by(cfg: &Value) -> String {
    let get = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
    let md = cfg.get("metadata");
    let mut out = String::new();
    for (k, v) in [
        ("apiVersion", get(cfg.get("apiVersion"))),
        ("kind", get(cfg.get("kind"))),
        ("name", get(md.and_then(|m| m.get("name")))),
        ("namespace", get(md.and_then(|m| m.get("namespace")))),
    ] {
        if !v.is_empty() {
            out.push_str(&format!("{k}: {v}\n"));
        }
    }
    out
}

/// Record a transformer on every resource: as the origin of resources that have none, else
/// appended to their list of transformations.
fn mark_all(acc: &mut Acc, configured_in: &str, configured_by: &str) {
    let indent =
        |text: &str, pad: &str| -> String { text.lines().map(|l| format!("{pad}{l}\n")).collect() };
    let origin = format!(
        "configuredIn: {configured_in}\nconfiguredBy:\n{}",
        indent(configured_by, "  ")
    );
    let entry = format!(
        "- configuredIn: {configured_in}\n  configuredBy:\n{}",
        indent(configured_by, "    ")
    );
    for r in acc.resources.iter_mut() {
        let ann = r.obj.get("metadata").and_then(|m| m.get("annotations"));
        let has_origin = ann.and_then(|a| a.get(ORIGIN_ANNOTATION)).is_some();
        if !has_origin {
            set_annotation(&mut r.obj, ORIGIN_ANNOTATION, &origin);
            continue;
        }
        let prev = ann
            .and_then(|a| a.get(TRANSFORMATIONS_ANNOTATION))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        set_annotation(
            &mut r.obj,
            TRANSFORMATIONS_ANNOTATION,
            &format!("{prev}{entry}"),
        );
    }
}

/// Go's `filepath.Join`: join and clean lexically ("" when both are empty).
fn go_join(a: &str, b: &str) -> String {
    let joined = match (a.is_empty(), b.is_empty()) {
        (true, true) => return String::new(),
        (true, false) => b.to_string(),
        (false, true) => a.to_string(),
        (false, false) => format!("{a}/{b}"),
    };
    let abs = joined.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in joined.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !abs {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let body = parts.join("/");
    match (abs, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".to_string(),
        (false, false) => body,
    }
}

fn set_annotation(obj: &mut Value, key: &str, value: &str) {
    let o = crate::resource::ensure_object(obj);
    let md = crate::resource::ensure_object(
        o.entry("metadata")
            .or_insert_with(|| Value::Object(Map::new())),
    );
    let ann = crate::resource::ensure_object(
        md.entry("annotations")
            .or_insert_with(|| Value::Object(Map::new())),
    );
    ann.insert(key.to_string(), Value::String(value.to_string()));
}

fn strip_build_annotations(obj: &mut Value, keep_origin: bool, keep_transformations: bool) {
    let Some(md) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    // kustomize rewrites every resource's annotations as a string map when it removes its
    // build annotations: a null or empty map disappears, values become their text
    crate::resource::normalize_annotations(md);
    let Some(ann) = md.get_mut("annotations").and_then(Value::as_object_mut) else {
        return;
    };
    ann.retain(|k, _| {
        !(k.starts_with("internal.config.kubernetes.io/")
            || k == "kustomize.config.k8s.io/behavior"
            || k == "kustomize.config.k8s.io/needs-hash"
            || k == "kustomize.config.k8s.io/id"
            || k == "config.kubernetes.io/previousNames"
            || k == "config.kubernetes.io/previousKinds"
            || k == "config.kubernetes.io/previousNamespaces"
            || (!keep_transformations && k == TRANSFORMATIONS_ANNOTATION)
            || (!keep_origin && k == "config.kubernetes.io/origin"))
    });
    if ann.is_empty() {
        md.remove("annotations");
    }
}

/// Characters a YAML stream may not hold raw that Go's JSON encoder leaves raw: DEL, the C1
/// controls but NEL, U+FFFE and U+FFFF.
#[cfg(test)]
fn is_yaml_control(c: char) -> bool {
    matches!(c as u32, 0x7F..=0x84 | 0x86..=0x9F | 0xFFFE | 0xFFFF)
}

/// [`is_yaml_control`] over the UTF-8 bytes: DEL, U+0080-U+0084 and U+0086-U+009F (0xC2
/// then 0x80-0x84 or 0x86-0x9F), U+FFFE and U+FFFF (0xEF 0xBF 0xBE|0xBF).
fn str_has_yaml_control(s: &str) -> bool {
    if s.is_ascii() {
        return s.as_bytes().contains(&0x7F);
    }
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            0x7F => return true,
            0xC2 if matches!(b.get(i + 1), Some(0x80..=0x84 | 0x86..=0x9F)) => return true,
            0xEF if b.get(i + 1) == Some(&0xBF) && matches!(b.get(i + 2), Some(0xBE | 0xBF)) => {
                return true;
            }
            _ => {}
        }
        i += 1;
    }
    false
}

fn has_yaml_control_chars(v: &Value) -> bool {
    match v {
        Value::String(s) => str_has_yaml_control(s),
        Value::Array(a) => a.iter().any(has_yaml_control_chars),
        Value::Object(m) => m
            .iter()
            .any(|(k, x)| str_has_yaml_control(k) || has_yaml_control_chars(x)),
        _ => false,
    }
}

fn scalar_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn short_json(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 200 {
        format!(
            "{}...",
            &s[..s
                .char_indices()
                .take(200)
                .last()
                .map(|(i, _)| i)
                .unwrap_or(0)]
        )
    } else {
        s
    }
}

const ORDER_FIRST: [&str; 22] = [
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Service",
    "LimitRange",
    "PriorityClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
];
const ORDER_LAST: [&str; 2] = [
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

fn sort_resources(
    mut resources: Vec<Resource>,
    opts: Option<&crate::kustfile::SortOptions>,
) -> Result<Vec<Resource>, Error> {
    let (first, last): (Vec<String>, Vec<String>) = match opts {
        None => (
            ORDER_FIRST.iter().map(|s| s.to_string()).collect(),
            ORDER_LAST.iter().map(|s| s.to_string()).collect(),
        ),
        Some(o) => match o.order.as_str() {
            "fifo" => {
                if o.legacy_sort_options.is_some() {
                    return Err(Error::Build(
                        "the field 'sortOptions.legacySortOptions' is set but the selected sort order is 'fifo', not 'legacy'"
                            .into(),
                    ));
                }
                return Ok(resources);
            }
            "legacy" => match &o.legacy_sort_options {
                Some(l) => (l.order_first.clone(), l.order_last.clone()),
                None => (
                    ORDER_FIRST.iter().map(|s| s.to_string()).collect(),
                    ORDER_LAST.iter().map(|s| s.to_string()).collect(),
                ),
            },
            _ => {
                return Err(Error::Build(
                    "the field 'sortOptions.order' must be one of [fifo, legacy]".into(),
                ));
            }
        },
    };
    let rank = |kind: &str| -> i64 {
        if let Some(i) = first.iter().position(|k| k == kind) {
            return i as i64 - first.len() as i64;
        }
        if let Some(i) = last.iter().position(|k| k == kind) {
            return 1 + i as i64;
        }
        0
    };
    let gvk_str = |g: &Gvk| {
        format!(
            "{}_{}_{}",
            if g.group.is_empty() { "~G" } else { &g.group },
            if g.version.is_empty() {
                "~V"
            } else {
                &g.version
            },
            if g.kind.is_empty() { "~K" } else { &g.kind }
        )
    };
    let id_str = |id: &ResId| {
        format!(
            "{}|{}|{}",
            id.gvk.id_string(),
            if id.namespace.is_empty() {
                "~X"
            } else {
                &id.namespace
            },
            if id.name.is_empty() { "~N" } else { &id.name }
        )
    };
    let mut keyed: Vec<(ResId, Resource)> = resources.drain(..).map(|r| (r.cur_id(), r)).collect();
    keyed.sort_by(|(a, _), (b, _)| {
        use std::cmp::Ordering;
        if a.gvk != b.gvk {
            let (ra, rb) = (rank(&a.gvk.kind), rank(&b.gvk.kind));
            if ra != rb {
                return ra.cmp(&rb);
            }
            let (sa, sb) = (gvk_str(&a.gvk), gvk_str(&b.gvk));
            if a.gvk.kind == "Namespace"
                && b.gvk.kind == "Namespace"
                && (a.gvk.group.is_empty() || b.gvk.group.is_empty())
            {
                return sb.cmp(&sa);
            }
            return sa.cmp(&sb);
        }
        let o = id_str(a).cmp(&id_str(b));
        if o == Ordering::Equal {
            Ordering::Equal
        } else {
            o
        }
    });
    Ok(keyed.into_iter().map(|(_, r)| r).collect())
}

/// Convenience used by generators: the selector type is re-exported for them.
pub(crate) fn field_specs_apply(
    r: &mut Resource,
    specs: &[FieldSpec],
    create: CreateKind,
    set: &mut dyn FnMut(&mut Value) -> fieldspec::SetResult,
) -> Result<(), String> {
    let gvk = r.gvk();
    for fs in specs {
        if fs.applies_to(&gvk) {
            fieldspec::apply(&mut r.obj, fs, create, set)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_control_bytes_match_chars() {
        let chars = (0u32..0x300)
            .chain(0xFFF0..=0xFFFF)
            .chain([0x10000, 0x1F600, 0x10FFFF])
            .filter_map(char::from_u32);
        for c in chars {
            for s in [c.to_string(), format!("ab{c}"), format!("é{c}x")] {
                assert_eq!(
                    str_has_yaml_control(&s),
                    s.chars().any(is_yaml_control),
                    "{:?}",
                    c as u32
                );
            }
        }
    }
}
