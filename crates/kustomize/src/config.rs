//! Transformer configuration: the field specs each built-in transformer uses, kustomize's
//! defaults (tables under `tables/`, in our own compact notation), and merging of custom
//! `configurations:` files.

use serde::Deserialize;
use serde_json::Value;

use crate::fieldspec::FieldSpec;
use crate::resource::Gvk;

/// Where a name reference points (the referral kind) and the fields that hold it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct NameBackRefs {
    /// Referral group.
    pub group: String,
    /// Referral version.
    pub version: String,
    /// Referral kind.
    pub kind: String,
    /// Referrer fields.
    #[serde(rename = "fieldSpecs")]
    pub field_specs: Vec<FieldSpec>,
}

impl NameBackRefs {
    /// Referral gvk.
    pub fn gvk(&self) -> Gvk {
        Gvk {
            group: self.group.clone(),
            version: self.version.clone(),
            kind: self.kind.clone(),
        }
    }
}

/// All transformer field specs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TransformerConfig {
    pub name_prefix: Vec<FieldSpec>,
    pub name_suffix: Vec<FieldSpec>,
    /// `namespace:` in kustomize's configuration files (not `nameSpace`).
    #[serde(rename = "namespace")]
    pub name_space: Vec<FieldSpec>,
    pub common_labels: Vec<FieldSpec>,
    pub labels: Vec<FieldSpec>,
    pub template_labels: Vec<FieldSpec>,
    pub common_annotations: Vec<FieldSpec>,
    pub name_reference: Vec<NameBackRefs>,
    pub var_reference: Vec<FieldSpec>,
    pub images: Vec<FieldSpec>,
    pub replicas: Vec<FieldSpec>,
}

const FIELDSPECS: &str = include_str!("tables/fieldspecs.txt");
const NAMEREFS: &str = include_str!("tables/namereference.txt");
const VARREFS: &str = include_str!("tables/varreference.txt");

fn parse_attrs(spec: &mut FieldSpec, words: &[&str]) {
    for w in words {
        if let Some(v) = w.strip_prefix("g=") {
            spec.group = v.to_string();
        } else if let Some(v) = w.strip_prefix("v=") {
            spec.version = v.to_string();
        } else if let Some(v) = w.strip_prefix("k=") {
            spec.kind = v.to_string();
        }
    }
}

impl TransformerConfig {
    /// kustomize's built-in configuration.
    pub fn defaults() -> TransformerConfig {
        static DEFAULTS: std::sync::LazyLock<TransformerConfig> =
            std::sync::LazyLock::new(TransformerConfig::parse_defaults);
        DEFAULTS.clone()
    }

    fn parse_defaults() -> TransformerConfig {
        let mut c = TransformerConfig::default();
        let mut metadata_labels = Vec::new();
        for line in FIELDSPECS.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.len() < 3 || words[0].starts_with('#') {
                continue;
            }
            let mut fs = FieldSpec::any(words[1], words[2] == "+");
            parse_attrs(&mut fs, &words[3..]);
            match words[0] {
                "commonLabels" => c.common_labels.push(fs),
                "metadataLabels" => metadata_labels.push(fs),
                "commonAnnotations" => c.common_annotations.push(fs),
                "namespace" => c.name_space.push(fs),
                "namePrefix" => c.name_prefix.push(fs),
                "nameSuffix" => c.name_suffix.push(fs),
                "images" => c.images.push(fs),
                "replicas" => c.replicas.push(fs),
                _ => {}
            }
        }
        c.common_labels.extend(metadata_labels.iter().cloned());
        c.template_labels = metadata_labels;
        for line in NAMEREFS.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.is_empty() {
                continue;
            }
            if let Some(kind) = words[0].strip_prefix('>') {
                let mut head = FieldSpec::default();
                parse_attrs(&mut head, &words[1..]);
                c.name_reference.push(NameBackRefs {
                    group: head.group,
                    version: head.version,
                    kind: kind.to_string(),
                    field_specs: Vec::new(),
                });
            } else if let Some(last) = c.name_reference.last_mut() {
                let mut fs = FieldSpec::any(words[0], false);
                parse_attrs(&mut fs, &words[1..]);
                last.field_specs.push(fs);
            }
        }
        for line in VARREFS.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.is_empty() {
                continue;
            }
            let mut fs = FieldSpec::any(words[0], false);
            parse_attrs(&mut fs, &words[1..]);
            c.var_reference.push(fs);
        }
        c
    }

    /// Parse a `configurations:` file.
    pub fn from_value(v: &Value) -> Result<TransformerConfig, String> {
        serde_json::from_value(v.clone()).map_err(|e| e.to_string())
    }

    /// Merge another configuration into this one (union of field specs).
    pub fn merge(&mut self, o: &TransformerConfig) {
        merge_specs(&mut self.name_prefix, &o.name_prefix);
        merge_specs(&mut self.name_suffix, &o.name_suffix);
        merge_specs(&mut self.name_space, &o.name_space);
        merge_specs(&mut self.common_labels, &o.common_labels);
        merge_specs(&mut self.labels, &o.labels);
        merge_specs(&mut self.template_labels, &o.template_labels);
        merge_specs(&mut self.common_annotations, &o.common_annotations);
        merge_specs(&mut self.var_reference, &o.var_reference);
        merge_specs(&mut self.images, &o.images);
        merge_specs(&mut self.replicas, &o.replicas);
        for nb in &o.name_reference {
            match self
                .name_reference
                .iter_mut()
                .find(|x| x.group == nb.group && x.version == nb.version && x.kind == nb.kind)
            {
                Some(x) => merge_specs(&mut x.field_specs, &nb.field_specs),
                None => self.name_reference.push(nb.clone()),
            }
        }
    }
}

/// Field specs from a `crds:` file: OpenAPI definitions by type name (`{NAME: {Schema: ...}}`)
/// whose properties carry kustomize's extensions (`x-kubernetes-annotation`,
/// `x-kubernetes-label-selector`, `x-kubernetes-identity`, `x-kubernetes-object-ref-*`).
pub fn config_from_crd_definitions(doc: &Value) -> Result<TransformerConfig, String> {
    let defs = doc
        .as_object()
        .ok_or("expected a mapping of type names to definitions")?;
    let mut out = TransformerConfig::default();
    for (name, def) in defs {
        let def = def
            .as_object()
            .ok_or_else(|| format!("definition {name} is not a mapping"))?;
        let props = schema_of(def)
            .and_then(|s| s.get("properties"))
            .and_then(Value::as_object);
        let looks_like_k8s = props.is_some_and(|p| {
            ["kind", "apiVersion", "metadata"]
                .iter()
                .all(|k| p.contains_key(*k))
        });
        if !looks_like_k8s {
            continue;
        }
        let kind = name.rsplit('.').next().unwrap_or(name).to_string();
        crd_walk(&mut out, &kind, defs, name, &mut Vec::new(), 0);
    }
    Ok(out)
}

fn schema_of(def: &serde_json::Map<String, Value>) -> Option<&Value> {
    def.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("schema"))
        .map(|(_, v)| v)
}

fn crd_walk(
    out: &mut TransformerConfig,
    kind: &str,
    defs: &serde_json::Map<String, Value>,
    type_name: &str,
    path: &mut Vec<String>,
    depth: usize,
) {
    if depth > 32 {
        return;
    }
    let Some(props) = defs
        .get(type_name)
        .and_then(Value::as_object)
        .and_then(schema_of)
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
    else {
        return;
    };
    let spec = |path: &[String], extra: Option<&str>| {
        let mut p = path.to_vec();
        if let Some(e) = extra {
            p.push(e.to_string());
        }
        FieldSpec {
            kind: kind.to_string(),
            path: p.join("/"),
            ..Default::default()
        }
    };
    for (prop, schema) in props {
        path.push(prop.clone());
        let ext = |k: &str| schema.get(k).and_then(Value::as_str);
        if ext("x-kubernetes-annotation").is_some() {
            merge_specs(&mut out.common_annotations, &[spec(path, None)]);
        }
        if ext("x-kubernetes-label-selector").is_some() {
            merge_specs(&mut out.common_labels, &[spec(path, None)]);
        }
        if ext("x-kubernetes-identity").is_some() {
            merge_specs(&mut out.name_prefix, &[spec(path, None)]);
        }
        if let (Some(version), Some(ref_kind)) = (
            ext("x-kubernetes-object-ref-api-version"),
            ext("x-kubernetes-object-ref-kind"),
        ) {
            let name_key = ext("x-kubernetes-object-ref-name-key").unwrap_or("name");
            let nb = NameBackRefs {
                group: String::new(),
                version: version.to_string(),
                kind: ref_kind.to_string(),
                field_specs: vec![spec(path, Some(name_key))],
            };
            out.merge(&TransformerConfig {
                name_reference: vec![nb],
                ..Default::default()
            });
        }
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            let r = r.to_string();
            crd_walk(out, kind, defs, &r, path, depth + 1);
        }
        path.pop();
    }
}

/// Append specs not already present (same selector and path).
pub fn merge_specs(into: &mut Vec<FieldSpec>, more: &[FieldSpec]) {
    // nothing new when `more` is a prefix of `into` (a configuration merged into one built
    // from the same defaults, as every nested kustomization's is)
    if more.is_empty() || into.starts_with(more) {
        return;
    }
    let fresh: Vec<FieldSpec> = {
        fn k(f: &FieldSpec) -> (&str, &str, &str, &str) {
            (&f.group, &f.version, &f.kind, &f.path)
        }
        let mut seen: std::collections::HashSet<(&str, &str, &str, &str)> =
            into.iter().map(k).collect();
        more.iter().filter(|f| seen.insert(k(f))).cloned().collect()
    };
    into.extend(fresh);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_load() {
        let c = TransformerConfig::defaults();
        assert!(
            c.common_labels
                .iter()
                .any(|f| f.path == "spec/selector/matchLabels" && f.kind == "Deployment")
        );
        let cm = c
            .name_reference
            .iter()
            .find(|n| n.kind == "ConfigMap")
            .unwrap();
        assert!(cm.field_specs.len() > 40);
        assert_eq!(c.template_labels.len(), 10);
        assert!(c.var_reference.len() > 60);
    }
}
