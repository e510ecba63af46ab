//! `ferroflux tree kustomization NAME`: the inventory of a Kustomization, nested through the
//! Kustomizations and HelmReleases it applied, drawn as `flux tree` draws it.

use std::io::{Read, Write};

use anyhow::{anyhow, bail};
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use serde_json::Value;

use super::cluster::{Cluster, ClusterArgs, describe, is_not_found, run, with_timeout};
use super::kinds;

/// `ferroflux tree`.
#[derive(clap::Args, Debug)]
pub struct TreeArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(subcommand)]
    pub what: TreeWhat,
}

#[derive(clap::Subcommand, Debug)]
pub enum TreeWhat {
    /// Print the resource inventory of a Kustomization.
    #[command(
        visible_alias = "ks",
        after_help = "Examples:
  # The objects managed by the root Kustomization
  ferroflux tree kustomization flux-system

  # Only the Flux objects
  ferroflux tree kustomization flux-system --compact"
    )]
    Kustomization {
        name: String,
        /// List Flux resources only.
        #[arg(long)]
        compact: bool,
    },
}

/// An inventory entry: (namespace, name, group, kind), as cli-utils' `ParseObjMetadata`.
fn parse_id(id: &str) -> Option<(String, String, String, String)> {
    let (ns, rest) = id.split_once('_')?;
    let (rest, kind) = rest.rsplit_once('_')?;
    let (name, group) = rest.rsplit_once('_')?;
    Some((
        ns.to_string(),
        name.replace("__", ":"),
        group.to_string(),
        kind.to_string(),
    ))
}

struct Node {
    text: String,
    children: Vec<Node>,
}

fn fmt_meta(ns: &str, name: &str, kind: &str) -> String {
    if ns.is_empty() {
        format!("{kind}/{name}")
    } else {
        format!("{kind}/{ns}/{name}")
    }
}

fn print_items(out: &mut String, items: &[Node], spaces: &mut Vec<bool>) {
    for (i, n) in items.iter().enumerate() {
        let last = i + 1 == items.len();
        for s in spaces.iter() {
            out.push_str(if *s { "    " } else { "│   " });
        }
        out.push_str(if last { "└── " } else { "├── " });
        out.push_str(&n.text);
        out.push('\n');
        if !n.children.is_empty() {
            spaces.push(last);
            print_items(out, &n.children, spaces);
            spaces.pop();
        }
    }
}

const COMPACT_GROUP: &str = "toolkit.fluxcd.io";

fn tree_kustomization<'a>(
    cluster: &'a Cluster,
    ks: Value,
    compact: bool,
) -> futures::future::BoxFuture<'a, anyhow::Result<Vec<Node>>> {
    Box::pin(async move {
        let mut nodes = Vec::new();
        let entries = ks
            .pointer("/status/inventory/entries")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let remote = ks.pointer("/spec/kubeConfig").is_some_and(|v| !v.is_null());
        for e in entries {
            let id = e.get("id").and_then(Value::as_str).unwrap_or_default();
            let Some((ns, name, group, kind)) = parse_id(id) else {
                bail!("unable to parse stored object metadata: {id}");
            };
            if compact && !group.contains(COMPACT_GROUP) {
                continue;
            }
            let is_ks = group == "kustomize.toolkit.fluxcd.io" && kind == "Kustomization";
            if is_ks && ns == kinds::namespace(&ks) && name == kinds::name(&ks) {
                continue;
            }
            let mut node = Node {
                text: fmt_meta(&ns, &name, &kind),
                children: vec![],
            };
            if group == "helm.toolkit.fluxcd.io" && kind == "HelmRelease" {
                for (ons, oname, ogroup, okind) in
                    helmrelease_inventory(cluster, &ns, &name).await?
                {
                    if compact && !ogroup.contains(COMPACT_GROUP) {
                        continue;
                    }
                    node.children.push(Node {
                        text: fmt_meta(&ons, &oname, &okind),
                        children: vec![],
                    });
                }
            }
            if is_ks && !remote {
                let child = cluster
                    .get(&kinds::KUSTOMIZATION, &ns, &name)
                    .await
                    .map_err(|e| anyhow!("failed to find object: {}", describe(&e)))?;
                node.children = tree_kustomization(cluster, child, compact).await?;
            }
            nodes.push(node);
        }
        Ok(nodes)
    })
}

/// The objects of a HelmRelease's current release, read from its Helm storage Secret.
async fn helmrelease_inventory(
    cluster: &Cluster,
    ns: &str,
    name: &str,
) -> anyhow::Result<Vec<(String, String, String, String)>> {
    let hr = cluster
        .get(&kinds::HELMRELEASE, ns, name)
        .await
        .map_err(|e| anyhow!(describe(&e)))?;
    if hr.pointer("/spec/kubeConfig").is_some_and(|v| !v.is_null()) {
        return Ok(vec![]);
    }
    let storage_ns = kinds::str_at(&hr, "/status/storageNamespace").unwrap_or_default();
    let latest = hr.pointer("/status/history/0");
    let (Some(latest), false) = (latest, storage_ns.is_empty()) else {
        return Ok(vec![]);
    };
    let rel_name = latest
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let rel_ns = latest
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let version = latest.get("version").and_then(Value::as_i64).unwrap_or(0);
    let secrets: Api<Secret> = Api::namespaced(cluster.client.clone(), storage_ns);
    let secret = match secrets
        .get(&format!("sh.helm.release.v1.{rel_name}.v{version}"))
        .await
    {
        Ok(s) => s,
        Err(e) if is_not_found(&e) => return Ok(vec![]),
        Err(e) => bail!(
            "failed to find the Helm storage object for HelmRelease '{ns}/{name}': {}",
            describe(&e)
        ),
    };
    let data = secret
        .data
        .and_then(|d| d.get("release").cloned())
        .ok_or_else(|| {
            anyhow!("failed to decode the Helm storage object for HelmRelease '{ns}/{name}'")
        })?;
    // the Secret's bytes are base64 text of the (gzipped) release JSON
    let text = String::from_utf8_lossy(&data.0).to_string();
    let raw = decode_base64(text.trim()).ok_or_else(|| {
        anyhow!("failed to decode the Helm storage object for HelmRelease '{ns}/{name}'")
    })?;
    let json = if raw.starts_with(&[0x1f, 0x8b, 0x08]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .take(256 << 20)
            .read_to_end(&mut out)?;
        out
    } else {
        raw
    };
    let rel: Value = serde_json::from_slice(&json).map_err(|e| {
        anyhow!("failed to decode the Helm storage object for HelmRelease '{ns}/{name}': {e}")
    })?;
    let manifest = rel
        .get("manifest")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut out = Vec::new();
    let docs = ferroflux_kustomize::yaml::read::parse_documents(manifest).map_err(|e| {
        anyhow!("failed to read the Helm storage object for HelmRelease '{ns}/{name}': {e}")
    })?;
    for v in docs {
        let Some(kind) = v.get("kind").and_then(Value::as_str) else {
            continue;
        };
        let api = v
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let group = api.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
        let oname = kinds::name(&v).to_string();
        let ons = match kinds::namespace(&v) {
            "" if !cluster_scoped(kind) => rel_ns.to_string(),
            n => n.to_string(),
        };
        out.push((ons, oname, group.to_string(), kind.to_string()));
    }
    Ok(out)
}

fn cluster_scoped(kind: &str) -> bool {
    matches!(
        kind,
        "Namespace"
            | "ClusterRole"
            | "ClusterRoleBinding"
            | "CustomResourceDefinition"
            | "PersistentVolume"
            | "StorageClass"
            | "PriorityClass"
            | "MutatingWebhookConfiguration"
            | "ValidatingWebhookConfiguration"
            | "APIService"
            | "IngressClass"
            | "RuntimeClass"
            | "CSIDriver"
    )
}

fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let table = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        })
    };
    let bytes: Vec<u8> = s
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'=')
        .collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            acc |= table(*c)? << (18 - 6 * i);
        }
        let n = chunk.len();
        out.push((acc >> 16) as u8);
        if n > 2 {
            out.push((acc >> 8) as u8);
        }
        if n > 3 {
            out.push(acc as u8);
        }
    }
    Some(out)
}

/// Runs `ferroflux tree`.
pub fn command(args: TreeArgs) -> anyhow::Result<()> {
    let timeout = args.cluster.timeout;
    run(with_timeout(timeout, async move {
        let TreeWhat::Kustomization { name, compact } = args.what;
        let cluster = args.cluster.connect().await?;
        let ns = cluster.namespace.clone();
        let ks = cluster
            .get(&kinds::KUSTOMIZATION, &ns, &name)
            .await
            .map_err(|e| anyhow!(describe(&e)))?;
        let children = tree_kustomization(&cluster, ks.clone(), compact).await?;
        let mut out = format!(
            "{}\n",
            fmt_meta(kinds::namespace(&ks), kinds::name(&ks), "Kustomization")
        );
        print_items(&mut out, &children, &mut Vec::new());
        out.push('\n');
        std::io::stdout().lock().write_all(out.as_bytes())?;
        Ok(())
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_drawing() {
        assert_eq!(
            parse_id("_system__admin_rbac.authorization.k8s.io_ClusterRole"),
            Some((
                "".into(),
                "system:admin".into(),
                "rbac.authorization.k8s.io".into(),
                "ClusterRole".into()
            ))
        );
        let tree = vec![
            Node {
                text: "Namespace/a".into(),
                children: vec![],
            },
            Node {
                text: "Kustomization/flux-system/infra".into(),
                children: vec![
                    Node {
                        text: "Namespace/b".into(),
                        children: vec![],
                    },
                    Node {
                        text: "HelmRepository/b/r".into(),
                        children: vec![],
                    },
                ],
            },
            Node {
                text: "GitRepository/flux-system/x".into(),
                children: vec![],
            },
        ];
        let mut out = String::new();
        print_items(&mut out, &tree, &mut Vec::new());
        assert_eq!(
            out,
            "├── Namespace/a\n├── Kustomization/flux-system/infra\n│   ├── Namespace/b\n│   └── HelmRepository/b/r\n└── GitRepository/flux-system/x\n"
        );
        assert_eq!(decode_base64("aGVsbG8="), Some(b"hello".to_vec()));
    }
}
