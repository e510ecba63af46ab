//! The kustomization file a Kustomization builds: the one in `spec.path` (or one generated
//! from the YAML files there, upstream's rules), with the Kustomization's own fields merged in
//! (targetNamespace, namePrefix/Suffix, patches, components, images, buildMetadata).
//! Also a filesystem view that never reads outside the artifact.

use std::io;
use std::path::{Path, PathBuf};

use ferroflux_api::kustomization::KustomizationSpec;
use ferroflux_kustomize::{DiskFs, Filesystem};
use serde_json::{Map, Value, json};

/// File names kustomize recognises, in its order of preference (the engine's list).
pub const KUSTOMIZATION_FILES: [&str; 3] = ferroflux_kustomize::build::KUSTFILE_NAMES;

/// Fields of a kustomization file that survive upstream's re-serialisation (unknown fields are
/// dropped, as Go's struct decoding does): the fields kustomize knows.
const KNOWN_FIELDS: &[&str] = ferroflux_kustomize::build::KUSTOMIZATION_FIELDS;

/// Largest YAML file read while generating a kustomization.
const MAX_MANIFEST_SIZE: u64 = 50 << 20;

fn display(root: &Path, path: &Path) -> String {
    match path.strip_prefix(root) {
        Ok(rel) if rel.as_os_str().is_empty() => ".".to_string(),
        Ok(rel) => rel.display().to_string(),
        Err(_) => path.display().to_string(),
    }
}

fn find_kustomization_file(dir: &Path) -> Option<PathBuf> {
    KUSTOMIZATION_FILES
        .iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
}

/// Writes the effective kustomization file into `dir` (inside the artifact at `root`).
pub fn write_kustomization(
    root: &Path,
    dir: &Path,
    spec: &KustomizationSpec,
) -> Result<(), String> {
    let (mut kus, file, existing) = match find_kustomization_file(dir) {
        Some(file) => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| format!("failed to read {}: {e}", display(root, &file)))?;
            let docs = ferroflux_kustomize::yaml::parse_documents(&text)
                .map_err(|e| format!("failed to parse {}: {e}", display(root, &file)))?;
            let doc = docs.into_iter().next().unwrap_or(Value::Null);
            let map = match doc {
                Value::Object(m) => m,
                Value::Null => Map::new(),
                _ => {
                    return Err(format!(
                        "failed to parse {}: not a kustomization (expected a mapping)",
                        display(root, &file)
                    ));
                }
            };
            let kept: Map<String, Value> = map
                .into_iter()
                .filter(|(k, v)| KNOWN_FIELDS.contains(&k.as_str()) && !v.is_null())
                .collect();
            (kept, file, true)
        }
        None => {
            let resources = scan_manifests(root, dir)?;
            let mut m = Map::new();
            if resources.is_empty() {
                m.insert("namespace".into(), json!("_placeholder"));
            } else {
                m.insert("resources".into(), json!(resources));
            }
            (m, dir.join(KUSTOMIZATION_FILES[0]), false)
        }
    };
    kus.entry("apiVersion")
        .or_insert_with(|| json!("kustomize.config.k8s.io/v1beta1"));
    kus.entry("kind").or_insert_with(|| json!("Kustomization"));

    let has_resources = kus
        .get("resources")
        .and_then(Value::as_array)
        .is_some_and(|r| !r.is_empty());
    if existing && !has_resources {
        // An otherwise empty kustomization would fail with "kustomization.yaml is empty".
        kus.insert("buildMetadata".into(), json!(["originAnnotations"]));
    }
    if let Some(ns) = &spec.target_namespace {
        kus.insert("namespace".into(), json!(ns));
    }
    if let Some(p) = &spec.name_prefix {
        kus.insert("namePrefix".into(), json!(p));
    }
    if let Some(s) = &spec.name_suffix {
        kus.insert("nameSuffix".into(), json!(s));
    }
    for patch in spec.patches.iter().flatten() {
        let mut p = Map::new();
        p.insert("patch".into(), json!(patch.patch));
        if let Some(t) = &patch.target {
            let target = serde_json::to_value(t).map_err(|e| e.to_string())?;
            let target: Map<String, Value> = target
                .as_object()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|(_, v)| !v.is_null() && v.as_str() != Some(""))
                .collect();
            p.insert("target".into(), Value::Object(target));
        }
        push(&mut kus, "patches", Value::Object(p));
    }
    let ignore_missing = spec.ignore_missing_components.unwrap_or(false);
    for component in spec.components.iter().flatten() {
        if !is_local_relative_path(component) {
            return Err(format!(
                "component path '{component}' must be local and relative"
            ));
        }
        if ignore_missing && !dir.join(component).exists() {
            continue;
        }
        push(&mut kus, "components", json!(component));
    }
    for image in spec.images.iter().flatten() {
        let images = kus
            .entry("images")
            .or_insert_with(|| Value::Array(Vec::new()));
        let Some(list) = images.as_array_mut() else {
            return Err("unable to get images: 'images' is not a list".into());
        };
        let existing = list
            .iter_mut()
            .find(|i| i.get("name").and_then(Value::as_str) == Some(image.name.as_str()));
        match existing {
            Some(Value::Object(entry)) => {
                if let Some(n) = image.new_name.as_deref().filter(|s| !s.is_empty()) {
                    entry.insert("newName".into(), json!(n));
                }
                let tag = image.new_tag.as_deref().unwrap_or("");
                let digest = image.digest.as_deref().unwrap_or("");
                if !tag.is_empty() || !digest.is_empty() {
                    set_or_remove(entry, "newTag", tag);
                    set_or_remove(entry, "digest", digest);
                }
            }
            _ => {
                let mut entry = Map::new();
                entry.insert("name".into(), json!(image.name));
                set_or_remove(
                    &mut entry,
                    "newName",
                    image.new_name.as_deref().unwrap_or(""),
                );
                set_or_remove(&mut entry, "newTag", image.new_tag.as_deref().unwrap_or(""));
                set_or_remove(&mut entry, "digest", image.digest.as_deref().unwrap_or(""));
                list.push(Value::Object(entry));
            }
        }
    }
    if let Some(bm) = spec.build_metadata.as_ref().filter(|b| !b.is_empty()) {
        let values = serde_json::to_value(bm).map_err(|e| e.to_string())?;
        kus.insert("buildMetadata".into(), values);
    }
    let text = ferroflux_kustomize::yaml::to_yaml(&Value::Object(kus));
    std::fs::write(&file, text)
        .map_err(|e| format!("failed to write {}: {e}", display(root, &file)))
}

fn push(kus: &mut Map<String, Value>, field: &str, v: Value) {
    let entry = kus.entry(field).or_insert_with(|| Value::Array(Vec::new()));
    if let Some(list) = entry.as_array_mut() {
        list.push(v);
    } else {
        *entry = Value::Array(vec![v]);
    }
}

fn set_or_remove(m: &mut Map<String, Value>, key: &str, v: &str) {
    if v.is_empty() {
        m.remove(key);
    } else {
        m.insert(key.into(), json!(v));
    }
}

/// Upstream's test for component paths: no remote URL schemes, not absolute.
pub fn is_local_relative_path(path: &str) -> bool {
    let lower = path.to_lowercase();
    let remote = [
        "git::",
        "gh:",
        "ssh://",
        "https://",
        "http://",
        "git@",
        "github.com:",
        "github.com/",
    ];
    if remote
        .iter()
        .any(|p| p.len() < path.len() && lower.starts_with(p))
    {
        return false;
    }
    !(Path::new(path).is_absolute()
        || Path::new(lower.strip_prefix("file://").unwrap_or(&lower)).is_absolute())
}

/// Every Kubernetes YAML file below `dir` (directories holding a kustomization file are listed
/// as directories and not descended into), as `./relative/path`, in walk order.
fn scan_manifests(root: &Path, dir: &Path) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    walk(root, dir, dir, &mut out)?;
    Ok(out)
}

fn walk(root: &Path, base: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), String> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("failed to list {}: {e}", display(root, dir)))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        let meta = std::fs::symlink_metadata(&path)
            .map_err(|e| format!("failed to stat {}: {e}", display(root, &path)))?;
        let rel = format!("./{}", path.strip_prefix(base).unwrap_or(&path).display());
        if meta.is_dir() {
            if find_kustomization_file(&path).is_some() {
                out.push(rel);
            } else {
                walk(root, base, &path, out)?;
            }
            continue;
        }
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if ext != "yaml" && ext != "yml" {
            continue;
        }
        if meta.len() > MAX_MANIFEST_SIZE {
            return Err(format!(
                "failed to decode Kubernetes YAML from {}: file is larger than {MAX_MANIFEST_SIZE} bytes",
                display(root, &path)
            ));
        }
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "failed to decode Kubernetes YAML from {}: {e}",
                display(root, &path)
            )
        })?;
        check_kubernetes_yaml(&text).map_err(|e| {
            format!(
                "failed to decode Kubernetes YAML from {}: {e}",
                display(root, &path)
            )
        })?;
        out.push(rel);
    }
    Ok(())
}

/// Whether a file holds Kubernetes objects (or nothing).
fn check_kubernetes_yaml(text: &str) -> Result<(), String> {
    let docs = ferroflux_kustomize::yaml::parse_documents(text).map_err(|e| e.to_string())?;
    for doc in docs {
        match doc {
            Value::Null => {}
            Value::Object(m) if m.is_empty() => {}
            Value::Object(m) => {
                if m.get("kind")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .is_empty()
                {
                    return Err("missing Resource metadata".into());
                }
            }
            _ => return Err("missing Resource metadata".into()),
        }
    }
    Ok(())
}

/// The disk, restricted to one directory tree: kustomize may follow `../` anywhere inside the
/// artifact but never outside it.
pub struct RootedFs {
    root: PathBuf,
}

impl RootedFs {
    /// `root` must exist.
    pub fn new(root: &Path) -> io::Result<Self> {
        Ok(Self {
            root: std::fs::canonicalize(root)?,
        })
    }

    fn check(&self, path: &Path) -> io::Result<()> {
        let resolved = match std::fs::canonicalize(path) {
            Ok(p) => p,
            // Not there: judge the path itself, so a missing file reports "not found".
            Err(_) => ferroflux_kustomize::fs::clean(path),
        };
        if resolved.starts_with(&self.root) {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("path '{}' is outside the source root", path.display()),
            ))
        }
    }
}

impl Filesystem for RootedFs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.check(path)?;
        DiskFs.read(path)
    }
    fn is_dir(&self, path: &Path) -> bool {
        self.check(path).is_ok() && DiskFs.is_dir(path)
    }
    fn exists(&self, path: &Path) -> bool {
        self.check(path).is_ok() && DiskFs.exists(path)
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<PathBuf>> {
        self.check(path)?;
        DiskFs.list_dir(path)
    }
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        self.check(path)?;
        DiskFs.canonicalize(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: Value) -> KustomizationSpec {
        serde_json::from_value(v).unwrap()
    }

    fn read(dir: &Path) -> Value {
        let text = std::fs::read_to_string(dir.join("kustomization.yaml")).unwrap();
        ferroflux_kustomize::yaml::parse_documents(&text)
            .unwrap()
            .remove(0)
    }

    #[test]
    fn generates_from_manifests_and_skips_non_yaml() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir_all(root.join("app/sub")).unwrap();
        std::fs::create_dir_all(root.join("app/base")).unwrap();
        std::fs::write(
            root.join("app/cm.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
        )
        .unwrap();
        std::fs::write(
            root.join("app/sub/b.yml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n",
        )
        .unwrap();
        std::fs::write(root.join("app/README.md"), "# docs").unwrap();
        std::fs::write(root.join("app/base/kustomization.yaml"), "resources: []\n").unwrap();
        std::fs::write(root.join("app/base/ignored.yaml"), "not: [k8s").unwrap();
        write_kustomization(
            root,
            &root.join("app"),
            &spec(
                json!({"targetNamespace": "prod", "prune": true, "interval": "1m",
                        "sourceRef": {"kind": "GitRepository", "name": "x"}}),
            ),
        )
        .unwrap();
        let k = read(&root.join("app"));
        assert_eq!(
            k["resources"],
            json!(["./base", "./cm.yaml", "./sub/b.yml"])
        );
        assert_eq!(k["namespace"], "prod");
        assert_eq!(k["kind"], "Kustomization");
    }

    #[test]
    fn invalid_yaml_names_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir_all(root.join("app")).unwrap();
        std::fs::write(root.join("app/bad.yaml"), "kind: [unclosed\n").unwrap();
        let err = write_kustomization(root, &root.join("app"), &spec(json!({}))).unwrap_err();
        assert!(
            err.starts_with("failed to decode Kubernetes YAML from app/bad.yaml: "),
            "{err}"
        );
        std::fs::write(root.join("app/bad.yaml"), "just: values\n").unwrap();
        let err = write_kustomization(root, &root.join("app"), &spec(json!({}))).unwrap_err();
        assert!(err.ends_with("missing Resource metadata"), "{err}");
    }

    #[test]
    fn empty_directory_gets_placeholder_namespace() {
        let tmp = tempfile::tempdir().unwrap();
        write_kustomization(tmp.path(), tmp.path(), &spec(json!({}))).unwrap();
        assert_eq!(read(tmp.path())["namespace"], "_placeholder");
    }

    #[test]
    fn merges_flux_fields_into_an_existing_file() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir_all(root.join("comp")).unwrap();
        std::fs::write(
            root.join("kustomization.yaml"),
            "resources:\n- cm.yaml\nimages:\n- name: nginx\n  newTag: '1'\nunknownField: x\n",
        )
        .unwrap();
        write_kustomization(
            root,
            root,
            &spec(json!({
                "namePrefix": "p-", "nameSuffix": "-s",
                "patches": [{"patch": "- op: remove\n  path: /x", "target": {"kind": "ConfigMap"}}],
                "images": [{"name": "nginx", "newTag": "2"}, {"name": "redis", "newName": "r"}],
                "components": ["comp", "missing"], "ignoreMissingComponents": true,
            })),
        )
        .unwrap();
        let k = read(root);
        assert_eq!(k["namePrefix"], "p-");
        assert_eq!(k["nameSuffix"], "-s");
        assert_eq!(k["patches"][0]["target"], json!({"kind": "ConfigMap"}));
        assert_eq!(
            k["images"],
            json!([{"name": "nginx", "newTag": "2"}, {"name": "redis", "newName": "r"}])
        );
        assert_eq!(k["components"], json!(["comp"]));
        assert!(k.get("unknownField").is_none());
        assert!(k.get("buildMetadata").is_none());

        let err = write_kustomization(
            root,
            root,
            &spec(json!({"components": ["https://github.com/x/y"]})),
        )
        .unwrap_err();
        assert!(err.contains("must be local and relative"), "{err}");
    }

    #[test]
    fn rooted_fs_refuses_paths_outside() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(tmp.path().join("secret.txt"), "x").unwrap();
        std::fs::write(root.join("ok.txt"), "y").unwrap();
        let fs = RootedFs::new(&root).unwrap();
        assert_eq!(fs.read(&root.join("ok.txt")).unwrap(), b"y");
        assert!(fs.read(&root.join("../secret.txt")).is_err());
        std::os::unix::fs::symlink(tmp.path().join("secret.txt"), root.join("link")).unwrap();
        assert!(fs.read(&root.join("link")).is_err());
    }
}
