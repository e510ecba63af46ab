//! The optional data directory: certificates + admin token, and snapshots of the state.

use crate::Error;
use crate::registry::Gr;
use crate::server::Shared;
use crate::store::{Identity, Inner};
use crate::tls::{self, Pki};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

#[derive(Serialize, Deserialize)]
struct IdentityFile {
    pki: Pki,
    admin_token: String,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    group: String,
    resource: String,
    object: Value,
}

#[derive(Serialize, Deserialize)]
struct StateFile {
    resource_version: u64,
    objects: Vec<Stored>,
    tokens: HashMap<String, Identity>,
}

fn err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::DataDir {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Loads (or creates) the certificates and admin token, so kubeconfigs stay valid across restarts.
pub fn load_identity(dir: &Path, token: Option<String>) -> Result<(Pki, String), Error> {
    std::fs::create_dir_all(dir).map_err(|e| err(dir, e))?;
    let path = dir.join("identity.json");
    if path.exists() {
        let raw = std::fs::read(&path).map_err(|e| err(&path, e))?;
        let f: IdentityFile = serde_json::from_slice(&raw).map_err(|e| err(&path, e))?;
        return Ok((f.pki, token.unwrap_or(f.admin_token)));
    }
    let pki = tls::generate().map_err(|e| Error::Certificates(e.to_string()))?;
    let admin_token = token.unwrap_or_else(|| crate::random_token("admin."));
    let f = IdentityFile {
        pki: pki.clone(),
        admin_token: admin_token.clone(),
    };
    let bytes = serde_json::to_vec_pretty(&f).map_err(|e| err(&path, e))?;
    write_atomic(&path, &bytes).map_err(|e| err(&path, e))?;
    Ok((pki, admin_token))
}

/// Loads the saved state; false when there is none yet.
pub fn load_state(dir: &Path, inner: &mut Inner) -> Result<bool, Error> {
    let path = dir.join("state.json");
    if !path.exists() {
        return Ok(false);
    }
    let raw = std::fs::read(&path).map_err(|e| err(&path, e))?;
    let f: StateFile = serde_json::from_slice(&raw).map_err(|e| err(&path, e))?;
    let crds: Vec<Value> = f
        .objects
        .iter()
        .filter(|s| s.group == "apiextensions.k8s.io" && s.resource == "customresourcedefinitions")
        .map(|s| s.object.clone())
        .collect();
    inner.load(
        f.resource_version,
        f.objects
            .into_iter()
            .map(|s| {
                (
                    Gr {
                        group: s.group,
                        resource: s.resource,
                    },
                    s.object,
                )
            })
            .collect(),
    );
    inner.tokens = f.tokens;
    for c in crds {
        let established = c
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|cs| {
                cs.iter()
                    .any(|x| x["type"] == "Established" && x["status"] == "True")
            });
        if established {
            inner.registry.add_crd(&c);
        }
    }
    inner.gc_dirty = true;
    Ok(true)
}

fn snapshot(shared: &Shared) -> Option<StateFile> {
    let mut inner = shared.lock();
    if !inner.dirty {
        return None;
    }
    inner.dirty = false;
    let objects = inner
        .objects
        .iter()
        .flat_map(|(gr, b)| b.values().map(move |o| (gr.clone(), o.clone())))
        .collect::<Vec<_>>();
    let rv = inner.rv;
    let tokens = inner.tokens.clone();
    drop(inner);
    Some(StateFile {
        resource_version: rv,
        objects: objects
            .into_iter()
            .map(|(gr, o)| Stored {
                group: gr.group,
                resource: gr.resource,
                object: (*o).clone(),
            })
            .collect(),
        tokens,
    })
}

fn save(shared: &Shared, dir: &Path) {
    if let Some(state) = snapshot(shared) {
        let path = dir.join("state.json");
        match serde_json::to_vec(&state) {
            Ok(bytes) => {
                if let Err(e) = write_atomic(&path, &bytes) {
                    tracing::warn!(path = %path.display(), error = %e, "saving testenv state failed");
                }
            }
            Err(e) => tracing::warn!(error = %e, "encoding testenv state failed"),
        }
    }
}

/// Saves the state whenever it changed (at most twice a second) and once more at shutdown.
pub async fn save_loop(shared: Arc<Shared>, dir: PathBuf, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = shutdown.changed() => {
                save(&shared, &dir);
                return;
            }
            _ = tokio::time::sleep(Duration::from_millis(500)) => save(&shared, &dir),
        }
    }
}
