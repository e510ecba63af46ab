//! SOPS decryption for a Kustomization (`spec.decryption`): keys from the decryption Secret,
//! encrypted generator sources decrypted in place before the build, encrypted Secrets (and
//! encrypted files inside Secret data) decrypted after it. The format work is crates/sops.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use base64::Engine;
use ferroflux_api::Kustomization;
use ferroflux_sops::{DecryptOptions, Format, Keyring};
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, Client, ResourceExt};
use serde_json::Value;

use crate::generator::KUSTOMIZATION_FILES;

/// Largest encrypted file decrypted (upstream's limit).
const MAX_ENCRYPTED_FILE_SIZE: u64 = 5 << 20;
/// Annotation that turns decryption off for one object.
pub const DECRYPT_KEY: &str = "kustomize.toolkit.fluxcd.io/decrypt";

/// The keys of one Kustomization.
pub struct Decryptor {
    keys: Keyring,
}

impl Decryptor {
    /// Imports the keys of `spec.decryption.secretRef` (none: only unencrypted input works).
    pub async fn load(obj: &Kustomization, client: Client) -> Result<Self, String> {
        let ns = obj.namespace().unwrap_or_default();
        let Some(secret_ref) = obj
            .spec
            .decryption
            .as_ref()
            .and_then(|d| d.secret_ref.as_ref())
        else {
            return Ok(Self {
                keys: Keyring::new(),
            });
        };
        let api: Api<Secret> = Api::namespaced(client, &ns);
        let secret = api.get(&secret_ref.name).await.map_err(|e| {
            format!(
                "cannot get sops decryption Secret '{ns}/{}': {e}",
                secret_ref.name
            )
        })?;
        let data: BTreeMap<String, Vec<u8>> = secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect();
        let keys = Keyring::from_secret_data(&data).map_err(|e| {
            format!(
                "failed to import data from sops decryption Secret '{ns}/{}': {e}",
                secret_ref.name
            )
        })?;
        Ok(Self { keys })
    }

    /// Decrypts, in place, the encrypted files secretGenerators and patches of the
    /// kustomization at `dir` (and of the local kustomizations it includes) read.
    pub fn decrypt_sources(&self, root: &Path, dir: &Path) -> Result<(), String> {
        let mut visited_dirs = BTreeSet::new();
        let mut decrypted = BTreeSet::new();
        self.visit(root, dir, &mut visited_dirs, &mut decrypted)
    }

    fn visit(
        &self,
        root: &Path,
        dir: &Path,
        visited_dirs: &mut BTreeSet<PathBuf>,
        decrypted: &mut BTreeSet<PathBuf>,
    ) -> Result<(), String> {
        let Ok(canonical) = std::fs::canonicalize(dir) else {
            return Ok(());
        };
        if !canonical.starts_with(root) || !visited_dirs.insert(canonical.clone()) {
            return Ok(());
        }
        let Some(file) = KUSTOMIZATION_FILES
            .iter()
            .map(|n| canonical.join(n))
            .find(|p| p.is_file())
        else {
            return Ok(());
        };
        let text = std::fs::read_to_string(&file)
            .map_err(|e| format!("failed to read kustomization file: {e}"))?;
        let kus = ferroflux_kustomize::yaml::parse_documents(&text)
            .ok()
            .and_then(|d| d.into_iter().next())
            .unwrap_or(Value::Null);
        let strings = |v: Option<&Value>| -> Vec<String> {
            v.and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        for generator in kus
            .get("secretGenerator")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for src in strings(generator.get("files")) {
                let (key, path) = match src.split_once('=') {
                    Some((k, p)) => (k.to_string(), p.to_string()),
                    None => (src.clone(), src.clone()),
                };
                let format = Format::from_path(Path::new(&key));
                self.decrypt_file(root, &canonical.join(&path), format, decrypted)?;
            }
            let mut envs = strings(generator.get("envs"));
            if let Some(e) = generator.get("env").and_then(Value::as_str) {
                envs.push(e.to_string());
            }
            for env in envs {
                let format = match Format::from_path(Path::new(&env)) {
                    Format::Binary => Format::Dotenv,
                    f => f,
                };
                self.decrypt_file(root, &canonical.join(&env), format, decrypted)?;
            }
        }
        for patch in kus
            .get("patches")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(path) = patch.get("path").and_then(Value::as_str)
                && !path.contains("://")
            {
                let format = Format::from_path(Path::new(path));
                self.decrypt_file(root, &canonical.join(path), format, decrypted)?;
            }
        }
        for field in ["resources", "components", "bases"] {
            for entry in strings(kus.get(field)) {
                let next = canonical.join(&entry);
                if next.is_dir() {
                    self.visit(root, &next, visited_dirs, decrypted)?;
                }
            }
        }
        Ok(())
    }

    fn decrypt_file(
        &self,
        root: &Path,
        path: &Path,
        format: Format,
        decrypted: &mut BTreeSet<PathBuf>,
    ) -> Result<(), String> {
        let rel = path
            .strip_prefix(root)
            .unwrap_or(path)
            .display()
            .to_string();
        let Ok(real) = std::fs::canonicalize(path) else {
            // Missing files are kustomize's to report.
            return Ok(());
        };
        if !real.starts_with(root) {
            return Err(format!("path '{rel}' is outside the source root"));
        }
        if !decrypted.insert(real.clone()) {
            return Ok(());
        }
        let meta = std::fs::symlink_metadata(&real).map_err(|e| format!("{rel}: {e}"))?;
        if !meta.is_file() {
            return Err(format!(
                "{rel}: cannot decrypt irregular file as it has file mode type bits set"
            ));
        }
        if meta.len() > MAX_ENCRYPTED_FILE_SIZE {
            return Err(format!(
                "{rel}: cannot decrypt file with size ({} bytes) exceeding limit ({MAX_ENCRYPTED_FILE_SIZE})",
                meta.len()
            ));
        }
        let data = std::fs::read(&real).map_err(|e| format!("{rel}: {e}"))?;
        if !ferroflux_sops::has_marker(&data, format) {
            return Ok(());
        }
        let plain = self
            .decrypt(&data, format)
            .map_err(|e| format!("{rel}: {e}"))?;
        std::fs::write(&real, plain)
            .map_err(|e| format!("error writing sops decrypted data to {rel}: {e}"))
    }

    /// Decrypts like kustomize-controller: the MAC is not checked (kustomize changes the
    /// documents it builds, so it would not match).
    fn decrypt(&self, data: &[u8], format: Format) -> Result<Vec<u8>, ferroflux_sops::SopsError> {
        ferroflux_sops::decrypt_with(data, format, format, &self.keys, &DecryptOptions::FLUX)
    }

    /// Decrypts a built object: a Secret with SOPS metadata, or encrypted files inside a
    /// Secret's data. `None` when there was nothing to do.
    pub fn decrypt_resource(&self, obj: &Value) -> Result<Option<Value>, String> {
        if decryption_disabled(obj) {
            return Ok(None);
        }
        let ns = obj
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("");
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
        if is_sops_encrypted_resource(obj) {
            let json = serde_json::to_vec(obj).map_err(|e| e.to_string())?;
            let plain = self.decrypt(&json, Format::Json).map_err(|e| {
                format!("failed to decrypt and format '{ns}/{name}' {kind} data: {e}")
            })?;
            let value: Value = serde_json::from_slice(&plain).map_err(|e| {
                format!("failed to unmarshal decrypted '{ns}/{name}' {kind} to JSON: {e}")
            })?;
            return Ok(Some(value));
        }
        if kind != "Secret" {
            return Ok(None);
        }
        let Some(data) = obj.get("data").and_then(Value::as_object) else {
            return Ok(None);
        };
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut changed = false;
        let mut out = obj.clone();
        for (key, value) in data {
            let Some(Ok(bytes)) = value.as_str().map(|s| b64.decode(s)) else {
                continue;
            };
            let Some(format) = ferroflux_sops::detect_format_from_markers(&bytes) else {
                continue;
            };
            let output = Format::from_path(Path::new(key));
            let plain = ferroflux_sops::decrypt_with(
                &bytes,
                format,
                output,
                &self.keys,
                &DecryptOptions::FLUX,
            )
            .map_err(|e| {
                format!("failed to decrypt and format '{ns}/{name}' Secret field '{key}': {e}")
            })?;
            out["data"][key] = Value::String(b64.encode(plain));
            changed = true;
        }
        Ok(changed.then_some(out))
    }
}

/// `kustomize.toolkit.fluxcd.io/decrypt: disabled` (any case), as upstream's IsDecryptionDisabled.
pub fn decryption_disabled(obj: &Value) -> bool {
    obj.pointer("/metadata/annotations")
        .and_then(|m| m.get(DECRYPT_KEY))
        .and_then(Value::as_str)
        .is_some_and(|v| v.eq_ignore_ascii_case("disabled"))
}

/// True if `obj` is a whole resource encrypted by sops, as upstream decides it: a non-empty
/// `sops` mapping with a non-empty `mac` (a resource with some other `sops` field is left alone
/// here, and a Secret among those is then refused before apply).
pub fn is_sops_encrypted_resource(obj: &Value) -> bool {
    let non_empty = |v: &Value| match v {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::Bool(_) | Value::Number(_) => true,
    };
    obj.get("sops")
        .and_then(|sops| sops.get("mac"))
        .is_some_and(non_empty)
}
