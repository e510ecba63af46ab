//! Post-rendering of a release's manifest as helm-controller does it (upstream
//! `internal/postrender`): each `spec.postRenderers[].kustomize` in order is a kustomize build
//! (crates/kustomize) of a kustomization whose only resource is the rendered manifest, with the
//! renderer's `patches` and `images`; then `spec.commonMetadata` labels and annotations are set
//! on every object.
//!
//! Only the release manifest is post-rendered; hooks are left as the chart renders them (Helm 3's
//! post-renderer scope, upstream's `nohooks` strategy).

use std::path::Path;

use ferroflux_api::HelmRelease;
use ferroflux_kustomize::{BuildOptions, Kustomizer, MemFs};
use serde_json::{Map, Value, json};

const INPUT: &str = "helm-output.yaml";

/// Whether `obj` has anything to post-render.
pub fn configured(obj: &HelmRelease) -> bool {
    obj.spec
        .post_renderers
        .as_ref()
        .is_some_and(|r| r.iter().any(|p| p.kustomize.is_some()))
        || obj.spec.common_metadata.is_some()
}

/// One kustomize post-renderer over `manifest`: the YAML stream kustomize prints.
fn kustomize(
    manifest: &str,
    renderer: &ferroflux_api::helmrelease::KustomizePostRenderer,
) -> Result<String, String> {
    let mut k = Map::new();
    k.insert(
        "apiVersion".into(),
        json!("kustomize.config.k8s.io/v1beta1"),
    );
    k.insert("kind".into(), json!("Kustomization"));
    k.insert("resources".into(), json!([INPUT]));
    if let Some(p) = renderer.patches.as_ref().filter(|p| !p.is_empty()) {
        k.insert(
            "patches".into(),
            serde_json::to_value(p).map_err(|e| e.to_string())?,
        );
    }
    if let Some(i) = renderer.images.as_ref().filter(|i| !i.is_empty()) {
        k.insert(
            "images".into(),
            serde_json::to_value(i).map_err(|e| e.to_string())?,
        );
    }
    let mut fs = MemFs::new();
    fs.add_file(format!("/work/{INPUT}"), manifest.as_bytes().to_vec());
    fs.add_file(
        "/work/kustomization.yaml",
        serde_json::to_string(&Value::Object(k)).map_err(|e| e.to_string())?,
    );
    let resources = Kustomizer::new(&fs, BuildOptions::default())
        .build(Path::new("/work"))
        .map_err(|e| e.to_string())?;
    Ok(ferroflux_kustomize::yaml::to_yaml_stream(resources.iter()))
}

/// Sets `labels` and `annotations` on the metadata of every object of the YAML stream.
fn common_metadata(
    manifest: &str,
    meta: &ferroflux_api::kustomize::CommonMetadata,
) -> Result<String, String> {
    let mut objects: Vec<Value> = ferroflux_kustomize::yaml::parse_documents(manifest)
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|o| !o.is_null())
        .collect();
    for o in objects.iter_mut() {
        let Some(m) = o
            .as_object_mut()
            .map(|o| o.entry("metadata").or_insert_with(|| json!({})))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        for (field, values) in [
            ("labels", meta.labels.as_ref()),
            ("annotations", meta.annotations.as_ref()),
        ] {
            let Some(values) = values.filter(|v| !v.is_empty()) else {
                continue;
            };
            let entry = m.entry(field).or_insert_with(|| json!({}));
            if !entry.is_object() {
                *entry = json!({});
            }
            if let Some(map) = entry.as_object_mut() {
                for (k, v) in values {
                    map.insert(k.clone(), Value::String(v.clone()));
                }
            }
        }
    }
    Ok(ferroflux_kustomize::yaml::to_yaml_stream(objects.iter()))
}

/// The post-rendered manifest of `obj` (the manifest itself when nothing is configured).
/// Errors read like upstream's: the renderer's index and kustomize's message.
pub fn run(obj: &HelmRelease, manifest: &str) -> Result<String, String> {
    let mut out = manifest.to_string();
    for (i, r) in obj.spec.post_renderers.iter().flatten().enumerate() {
        if let Some(k) = &r.kustomize {
            out = kustomize(&out, k).map_err(|e| {
                format!("error while running post render on files: postRenderers[{i}]: {e}")
            })?;
        }
    }
    if let Some(meta) = &obj.spec.common_metadata {
        out = common_metadata(&out, meta).map_err(|e| {
            format!("error while running post render on files: commonMetadata: {e}")
        })?;
    }
    Ok(out)
}

/// Go's `json.Encoder` string: quotes, escapes, and HTML-safe `<`, `>`, `&`.
fn go_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `{"k":"v",...}` of the present (non-empty) fields, in the given (Go struct) order.
fn go_object(fields: &[(&str, Option<String>)]) -> String {
    let parts: Vec<String> = fields
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("\"{k}\":{v}")))
        .collect();
    format!("{{{}}}", parts.join(","))
}

fn non_empty(s: &Option<String>) -> Option<String> {
    s.as_deref().filter(|s| !s.is_empty()).map(go_string)
}

fn go_map(m: &Option<std::collections::BTreeMap<String, String>>) -> Option<String> {
    // Go encodes maps with sorted keys, as BTreeMap iterates; nil is omitted
    m.as_ref().map(|m| {
        let parts: Vec<String> = m
            .iter()
            .map(|(k, v)| format!("{}:{}", go_string(k), go_string(v)))
            .collect();
        format!("{{{}}}", parts.join(","))
    })
}

/// upstream's `postrender.Digest`: sha256 of the Go JSON encoding of `spec.postRenderers`.
pub fn post_renderers_digest(obj: &HelmRelease) -> Option<String> {
    let renderers = obj.spec.post_renderers.as_ref()?;
    let items: Vec<String> = renderers
        .iter()
        .map(|r| {
            let k = r.kustomize.as_ref().map(|k| {
                let patches = k.patches.as_ref().filter(|p| !p.is_empty()).map(|p| {
                    let v: Vec<String> = p
                        .iter()
                        .map(|p| {
                            let target = p.target.as_ref().map(|t| {
                                go_object(&[
                                    ("group", non_empty(&t.group)),
                                    ("version", non_empty(&t.version)),
                                    ("kind", non_empty(&t.kind)),
                                    ("namespace", non_empty(&t.namespace)),
                                    ("name", non_empty(&t.name)),
                                    ("annotationSelector", non_empty(&t.annotation_selector)),
                                    ("labelSelector", non_empty(&t.label_selector)),
                                ])
                            });
                            go_object(&[("patch", Some(go_string(&p.patch))), ("target", target)])
                        })
                        .collect();
                    format!("[{}]", v.join(","))
                });
                let images = k.images.as_ref().filter(|i| !i.is_empty()).map(|i| {
                    let v: Vec<String> = i
                        .iter()
                        .map(|i| {
                            go_object(&[
                                ("name", Some(go_string(&i.name))),
                                ("newName", non_empty(&i.new_name)),
                                ("newTag", non_empty(&i.new_tag)),
                                ("digest", non_empty(&i.digest)),
                            ])
                        })
                        .collect();
                    format!("[{}]", v.join(","))
                });
                go_object(&[("patches", patches), ("images", images)])
            });
            go_object(&[("kustomize", k)])
        })
        .collect();
    Some(sha256(&format!("[{}]\n", items.join(","))))
}

/// upstream's `postrender.CommonMetadataDigest`.
pub fn common_metadata_digest(obj: &HelmRelease) -> Option<String> {
    let m = obj.spec.common_metadata.as_ref()?;
    let json = go_object(&[
        ("annotations", go_map(&m.annotations)),
        ("labels", go_map(&m.labels)),
    ]);
    Some(sha256(&format!("{json}\n")))
}

fn sha256(s: &str) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(s.as_bytes())))
}

/// upstream's state rule: on a new generation, changed post-renderers or common metadata make
/// the release out of sync (an upgrade re-renders it).
pub fn out_of_sync(obj: &HelmRelease) -> Option<&'static str> {
    let st = obj.status.clone().unwrap_or_default();
    if st.observed_generation == kube::Resource::meta(obj).generation {
        return None;
    }
    if post_renderers_digest(obj) != st.observed_post_renderers_digest {
        return Some("postrenderers digest has changed");
    }
    if common_metadata_digest(obj) != st.observed_common_metadata_digest {
        return Some("common metadata digest has changed");
    }
    None
}

/// Records the digests of the current spec in the status (upstream's `summarize`).
pub fn observe(obj: &HelmRelease, status: &mut ferroflux_api::helmrelease::HelmReleaseStatus) {
    status.observed_post_renderers_digest = post_renderers_digest(obj);
    status.observed_common_metadata_digest = common_metadata_digest(obj);
}

/// Post-renders the manifest of a rendered release.
pub fn apply(
    obj: &HelmRelease,
    mut rendered: ferroflux_helm::release::Rendered,
) -> Result<ferroflux_helm::release::Rendered, String> {
    if configured(obj) {
        rendered.manifest = run(obj, &rendered.manifest)?;
    }
    Ok(rendered)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "---
# Source: web/templates/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
      - name: web
        image: nginx:1.27
---
# Source: web/templates/service.yaml
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  ports:
  - port: 80
";

    fn hr(spec: Value) -> HelmRelease {
        let mut s = json!({"interval": "1m", "chartRef": {"kind": "OCIRepository", "name": "c"}});
        for (k, v) in spec.as_object().cloned().unwrap_or_default() {
            s[k] = v;
        }
        serde_json::from_value(json!({
            "apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
            "metadata": {"name": "web", "namespace": "apps"}, "spec": s,
        }))
        .expect("HelmRelease")
    }

    fn objects(stream: &str) -> Vec<Value> {
        ferroflux_kustomize::yaml::parse_documents(stream)
            .expect("yaml")
            .into_iter()
            .filter(|o| !o.is_null())
            .collect()
    }

    #[test]
    fn patches_images_and_common_metadata_in_order() {
        let obj = hr(json!({
            "postRenderers": [
                {"kustomize": {
                    "patches": [
                        {"target": {"kind": "Deployment"},
                         "patch": "- op: add\n  path: /spec/replicas\n  value: 3\n"},
                        {"patch": "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  annotations:\n    patched: \"yes\"\n"}
                    ],
                    "images": [{"name": "nginx", "newName": "registry.local/nginx", "newTag": "1.28"}]
                }},
                {"kustomize": {"patches": [
                    {"target": {"kind": "Deployment", "name": "web"},
                     "patch": "- op: replace\n  path: /spec/replicas\n  value: 4\n"}]}}
            ],
            "commonMetadata": {"labels": {"team": "a"}, "annotations": {"owner": "b"}}
        }));
        assert!(configured(&obj));
        let out = objects(&run(&obj, MANIFEST).expect("post-render"));
        let d = out.iter().find(|o| o["kind"] == "Deployment").unwrap();
        let s = out.iter().find(|o| o["kind"] == "Service").unwrap();
        // the second renderer sees the first one's output
        assert_eq!(d["spec"]["replicas"], 4);
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["image"],
            "registry.local/nginx:1.28"
        );
        assert_eq!(s["metadata"]["annotations"]["patched"], "yes");
        for o in [d, s] {
            assert_eq!(o["metadata"]["labels"]["team"], "a");
            assert_eq!(o["metadata"]["annotations"]["owner"], "b");
        }
    }

    #[test]
    fn nothing_configured_leaves_the_manifest_alone() {
        let obj = hr(json!({}));
        assert!(!configured(&obj));
        assert_eq!(run(&obj, MANIFEST).unwrap(), MANIFEST);
    }

    #[test]
    fn a_patch_without_a_target_is_kustomizes_error() {
        let obj = hr(json!({"postRenderers": [{"kustomize": {"patches": [
            {"patch": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: absent\ndata: {a: b}\n"}]}}]}));
        let e = run(&obj, MANIFEST).unwrap_err();
        assert!(
            e.starts_with("error while running post render on files: postRenderers[0]: "),
            "{e}"
        );
    }

    #[test]
    fn digests_are_of_go_json() {
        let obj = hr(json!({
            "postRenderers": [{"kustomize": {
                "patches": [{"patch": "a<b", "target": {"kind": "Deployment", "name": "web"}}],
                "images": [{"name": "nginx", "newTag": "1.28"}]}}],
            "commonMetadata": {"labels": {"b": "2", "a": "1"}}
        }));
        let expected = r#"[{"kustomize":{"patches":[{"patch":"a\u003cb","target":{"kind":"Deployment","name":"web"}}],"images":[{"name":"nginx","newTag":"1.28"}]}}]"#;
        assert_eq!(
            post_renderers_digest(&obj),
            Some(sha256(&format!("{expected}\n")))
        );
        assert_eq!(
            common_metadata_digest(&obj),
            Some(sha256("{\"labels\":{\"a\":\"1\",\"b\":\"2\"}}\n"))
        );
        assert_eq!(post_renderers_digest(&hr(json!({}))), None);
    }
}
