//! Object semantics: create, update, patch, apply, delete, garbage collection, namespace and
//! CRD finalization. Everything here runs under the store lock.

use crate::fields;
use crate::patch::{self, Builtin, ListTypes, SchemaLists};
use crate::registry::{Gr, ResourceDef};
use crate::schema;
use crate::status::{ApiError, ApiResult, Cause, Target};
use crate::store::{Inner, meta_str};
use rand::Rng;
use serde_json::{Map, Value, json};
use std::sync::Arc;

pub const CRD_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// Options common to writes.
#[derive(Debug, Clone, Default)]
pub struct WriteOpts {
    pub dry_run: bool,
    pub manager: String,
    pub force: bool,
    /// `fieldValidation=Strict`: unknown fields of custom resources are an error, not pruned.
    pub strict: bool,
}

/// `DeleteOptions` that matter here.
#[derive(Debug, Clone, Default)]
pub struct DeleteOpts {
    pub dry_run: bool,
    pub propagation: Option<String>,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
    Apply,
}

pub fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

pub fn new_uid() -> String {
    let mut b: [u8; 16] = rand::rng().random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn random_suffix() -> String {
    const ALPHA: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut r = rand::rng();
    (0..5)
        .map(|_| ALPHA[r.random_range(0..ALPHA.len())] as char)
        .collect()
}

fn target<'a>(def: &'a ResourceDef, name: &'a str) -> Target<'a> {
    Target {
        group: &def.group,
        resource: &def.resource,
        name,
    }
}

fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    let m = &mut obj["metadata"];
    if !m.is_object() {
        *m = Value::Object(Map::new());
    }
    match m {
        Value::Object(map) => map,
        _ => unreachable!("metadata was just made an object"),
    }
}

pub fn list_types(def: &ResourceDef) -> Box<dyn ListTypes + '_> {
    if def.custom {
        Box::new(SchemaLists(def.schema.as_deref()))
    } else {
        Box::new(patch::BuiltinApply)
    }
}

fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.ends_with(|c: char| c.is_ascii_alphanumeric())
}

fn is_dns_label(s: &str) -> bool {
    is_dns_subdomain(s) && s.len() <= 63 && !s.contains('.')
}

fn validate_name(def: &ResourceDef, name: &str) -> Option<Cause> {
    let v = Value::String(name.to_string());
    match (def.group.as_str(), def.resource.as_str()) {
        ("rbac.authorization.k8s.io", _) => {
            if name.contains('/') || name.contains('%') || name == "." || name == ".." {
                return Some(Cause::invalid("metadata.name", &v, "may not contain '/' or '%'"));
            }
            None
        }
        ("", "namespaces") | ("", "services") => (!is_dns_label(name)).then(|| {
            Cause::invalid(
                "metadata.name",
                &v,
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
            )
        }),
        _ => (!is_dns_subdomain(name)).then(|| {
            Cause::invalid(
                "metadata.name",
                &v,
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
            )
        }),
    }
}

fn validate_labels(obj: &Value, causes: &mut Vec<Cause>) {
    if let Some(labels) = obj.pointer("/metadata/labels") {
        let Some(l) = labels.as_object() else {
            causes.push(Cause::invalid(
                "metadata.labels",
                labels,
                "must be a map of strings",
            ));
            return;
        };
        for (k, v) in l {
            let Some(s) = v.as_str() else {
                causes.push(Cause::invalid(
                    format!("metadata.labels.{k}"),
                    v,
                    "must be a string",
                ));
                continue;
            };
            let ok = s.len() <= 63
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                && (s.is_empty()
                    || (s.starts_with(|c: char| c.is_ascii_alphanumeric())
                        && s.ends_with(|c: char| c.is_ascii_alphanumeric())));
            if !ok {
                causes.push(Cause::invalid(
                    "metadata.labels",
                    v,
                    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
                ));
            }
        }
    }
    if let Some(a) = obj.pointer("/metadata/annotations")
        && let Some(o) = a.as_object()
    {
        for (k, v) in o {
            if !v.is_string() {
                causes.push(Cause::invalid(
                    format!("metadata.annotations.{k}"),
                    v,
                    "must be a string",
                ));
            }
        }
    }
}

/// The part of an object that bumps generation when it changes.
fn spec_part(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        m.remove("metadata");
        m.remove("status");
        m.remove("apiVersion");
        m.remove("kind");
    }
    o
}

fn check_type(def: &ResourceDef, obj: &Value) -> ApiResult<()> {
    if !obj.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml",
        ));
    }
    if let Some(av) = obj.get("apiVersion").and_then(Value::as_str)
        && !av.is_empty()
    {
        let expected = def.api_version();
        let same_group = if def.custom {
            av.split_once('/').map(|(g, _)| g) == Some(def.group.as_str())
        } else {
            av == expected
        };
        if !same_group {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({av}) does not match the expected API version ({expected})"
            )));
        }
    }
    if let Some(k) = obj.get("kind").and_then(Value::as_str)
        && !k.is_empty()
        && k != def.kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({k}) does not match the expected kind ({})",
            def.kind
        )));
    }
    Ok(())
}

fn storage_api_version(def: &ResourceDef) -> String {
    if def.group.is_empty() {
        def.storage_version.clone()
    } else {
        format!("{}/{}", def.group, def.storage_version)
    }
}

/// Rewrites apiVersion for reading at the requested version (CRD conversion strategy None).
pub fn at_version(def: &ResourceDef, obj: &Value) -> Value {
    let mut o = obj.clone();
    if def.is_event_view() {
        return event_convert(&o, false);
    }
    if def.custom && def.version != def.storage_version {
        o["apiVersion"] = Value::String(def.api_version());
    }
    o
}

/// core/v1 <-> events.k8s.io/v1 field names (the rest is shared).
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("reportingComponent", "reportingController"),
];

/// Converts an Event between core/v1 (`to_core`) and events.k8s.io/v1.
pub fn event_convert(obj: &Value, to_core: bool) -> Value {
    let Some(src) = obj.as_object() else {
        return obj.clone();
    };
    let mut out = Map::new();
    for (k, v) in src {
        let renamed = EVENT_FIELDS.iter().find_map(|(core, view)| {
            if to_core && k == view {
                Some(*core)
            } else if !to_core && k == core {
                Some(*view)
            } else {
                None
            }
        });
        out.insert(renamed.unwrap_or(k).to_string(), v.clone());
    }
    out.insert(
        "apiVersion".into(),
        json!(if to_core { "v1" } else { "events.k8s.io/v1" }),
    );
    out.insert("kind".into(), json!("Event"));
    Value::Object(out)
}

fn core_events_def(inner: &Inner) -> ApiResult<Arc<ResourceDef>> {
    inner
        .registry
        .get("", "v1", "events")
        .ok_or_else(ApiError::not_found_path)
}

fn ensure_namespace(inner: &Inner, def: &ResourceDef, ns: &str, creating: bool) -> ApiResult<()> {
    if !def.namespaced {
        return Ok(());
    }
    let nsgr = Gr::new("", "namespaces");
    match inner.get(&nsgr, "", ns) {
        None => Err(ApiError::not_found(Target {
            group: "",
            resource: "namespaces",
            name: ns,
        })),
        Some(n) if creating && n.pointer("/metadata/deletionTimestamp").is_some() => {
            Err(ApiError::forbidden(format!(
                "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                def.resource,
                meta_str(&n, "name")
            )))
        }
        _ => Ok(()),
    }
}

fn builtin_defaults(def: &ResourceDef, obj: &mut Value, creating: bool, counter: u64) {
    if def.group.is_empty()
        && def.resource == "secrets"
        && let Some(Value::Object(sd)) = obj.as_object_mut().and_then(|o| o.remove("stringData"))
    {
        use base64::Engine;
        if !obj.get("data").is_some_and(Value::is_object) {
            obj["data"] = json!({});
        }
        for (k, v) in sd {
            let enc =
                base64::engine::general_purpose::STANDARD.encode(v.as_str().unwrap_or_default());
            obj["data"][k.as_str()] = json!(enc);
        }
    }
    match (def.group.as_str(), def.resource.as_str()) {
        ("", "namespaces") => {
            if creating {
                obj["spec"] = json!({"finalizers": ["kubernetes"]});
                obj["status"] = json!({"phase": "Active"});
            }
            let name = meta_str(obj, "name").to_string();
            let m = meta_mut(obj);
            let labels = m.entry("labels").or_insert_with(|| json!({}));
            if let Some(l) = labels.as_object_mut() {
                l.insert("kubernetes.io/metadata.name".into(), Value::String(name));
            }
        }
        ("", "secrets")
            if obj
                .get("type")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty) =>
        {
            obj["type"] = json!("Opaque");
        }
        ("", "services") => {
            if !obj.get("spec").is_some_and(Value::is_object) {
                obj["spec"] = json!({});
            }
            let spec = &mut obj["spec"];
            if spec.get("type").is_none() {
                spec["type"] = json!("ClusterIP");
            }
            if creating && spec.get("clusterIP").is_none() && spec["type"] != "ExternalName" {
                let ip = format!("10.96.{}.{}", (counter / 250) % 250, counter % 250 + 2);
                spec["clusterIP"] = json!(ip);
                spec["clusterIPs"] = json!([ip]);
            }
            if spec.get("sessionAffinity").is_none() {
                spec["sessionAffinity"] = json!("None");
            }
            if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                for p in ports {
                    if p.get("protocol").is_none() {
                        p["protocol"] = json!("TCP");
                    }
                    if p.get("targetPort").is_none()
                        && let Some(port) = p.get("port").cloned()
                    {
                        p["targetPort"] = port;
                    }
                }
            }
        }
        ("", "pods") if creating => {
            obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
        }
        ("apps", "deployments" | "statefulsets" | "replicasets")
        | ("", "replicationcontrollers") => {
            if obj.get("spec").is_some_and(Value::is_object)
                && obj["spec"].get("replicas").is_none()
            {
                obj["spec"]["replicas"] = json!(1);
            }
            if def.resource == "deployments" && obj.get("spec").is_some_and(Value::is_object) {
                let spec = &mut obj["spec"];
                if spec.get("revisionHistoryLimit").is_none() {
                    spec["revisionHistoryLimit"] = json!(10);
                }
                if spec.get("progressDeadlineSeconds").is_none() {
                    spec["progressDeadlineSeconds"] = json!(600);
                }
            }
        }
        _ => {}
    }
}

// ---------- CRDs ----------

fn crd_causes(obj: &Value) -> Vec<Cause> {
    let mut c = vec![];
    let spec = &obj["spec"];
    let group = spec["group"].as_str().unwrap_or_default();
    let plural = spec
        .pointer("/names/plural")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = spec
        .pointer("/names/kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if group.is_empty() {
        c.push(Cause::required("spec.group"));
    } else if !group.contains('.') {
        c.push(Cause::invalid(
            "spec.group",
            &spec["group"],
            "should be a domain with at least one dot",
        ));
    }
    if plural.is_empty() {
        c.push(Cause::required("spec.names.plural"));
    }
    if kind.is_empty() {
        c.push(Cause::required("spec.names.kind"));
    }
    let name = meta_str(obj, "name");
    if !plural.is_empty() && !group.is_empty() && name != format!("{plural}.{group}") {
        c.push(Cause::invalid(
            "metadata.name",
            &json!(name),
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    match spec["scope"].as_str() {
        Some("Namespaced" | "Cluster") => {}
        Some(_) => c.push(Cause::new(
            "FieldValueNotSupported",
            "spec.scope",
            format!(
                "Unsupported value: {}: supported values: \"Cluster\", \"Namespaced\"",
                spec["scope"]
            ),
        )),
        None => c.push(Cause::required("spec.scope")),
    }
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    if versions.is_empty() {
        c.push(Cause::new(
            "FieldValueInvalid",
            "spec.versions",
            "Invalid value: \"null\": must have exactly one version marked as storage version",
        ));
    } else {
        let storage = versions
            .iter()
            .filter(|v| v["storage"].as_bool() == Some(true))
            .count();
        if storage != 1 {
            c.push(Cause::new(
                "FieldValueInvalid",
                "spec.versions",
                "Invalid value: \"array\": must have exactly one version marked as storage version",
            ));
        }
        for (i, v) in versions.iter().enumerate() {
            if v["name"].as_str().unwrap_or_default().is_empty() {
                c.push(Cause::required(format!("spec.versions[{i}].name")));
            }
            match v.pointer("/schema/openAPIV3Schema") {
                Some(s) => schema::check_structural(
                    s,
                    &format!("spec.versions[{i}].schema.openAPIV3Schema"),
                    &mut c,
                ),
                None => c.push(Cause::required(format!(
                    "spec.versions[{i}].schema.openAPIV3Schema"
                ))),
            }
        }
    }
    c
}

fn condition(t: &str, status: &str, reason: &str, message: &str, now: &str) -> Value {
    json!({"type": t, "status": status, "reason": reason, "message": message, "lastTransitionTime": now})
}

/// Computes a CRD's status (names accepted, established) the way the apiextensions controllers do.
fn crd_status(inner: &Inner, obj: &mut Value, prev_status: Option<&Value>) {
    let spec = obj["spec"].clone();
    let name = meta_str(obj, "name").to_string();
    let group = spec["group"].as_str().unwrap_or_default();
    let mut names = spec["names"].clone();
    let kind = names["kind"].as_str().unwrap_or_default().to_string();
    let plural = names["plural"].as_str().unwrap_or_default().to_string();
    if names.get("singular").is_none() {
        names["singular"] = json!(kind.to_lowercase());
    }
    if names.get("listKind").is_none() {
        names["listKind"] = json!(format!("{kind}List"));
    }
    let conflict = inner.registry.name_taken(group, &plural, &kind, &name);
    let t = now();
    let keep_time = |ty: &str, status: &str| -> String {
        prev_status
            .and_then(|s| s["conditions"].as_array())
            .and_then(|cs| cs.iter().find(|c| c["type"] == ty && c["status"] == status))
            .and_then(|c| c["lastTransitionTime"].as_str())
            .map(str::to_string)
            .unwrap_or_else(|| t.clone())
    };
    let storage = spec["versions"]
        .as_array()
        .and_then(|vs| vs.iter().find(|v| v["storage"].as_bool() == Some(true)))
        .and_then(|v| v["name"].as_str())
        .unwrap_or_default()
        .to_string();
    let mut stored: Vec<Value> = prev_status
        .and_then(|s| s["storedVersions"].as_array().cloned())
        .unwrap_or_default();
    if !storage.is_empty() && !stored.contains(&json!(storage)) {
        stored.push(json!(storage));
    }
    let mut conditions = vec![];
    if conflict {
        conditions.push(condition(
            "NamesAccepted",
            "False",
            "PluralConflict",
            &format!("\"{plural}\" is already in use"),
            &keep_time("NamesAccepted", "False"),
        ));
        conditions.push(condition(
            "Established",
            "False",
            "NotAccepted",
            "not all names are accepted",
            &keep_time("Established", "False"),
        ));
        obj["status"] = json!({"acceptedNames": {"kind": "", "plural": ""}, "conditions": conditions, "storedVersions": stored});
    } else {
        conditions.push(condition(
            "NamesAccepted",
            "True",
            "NoConflicts",
            "no conflicts found",
            &keep_time("NamesAccepted", "True"),
        ));
        conditions.push(condition(
            "Established",
            "True",
            "InitialNamesAccepted",
            "the initial names have been accepted",
            &keep_time("Established", "True"),
        ));
        if obj.pointer("/metadata/deletionTimestamp").is_some() {
            conditions.push(condition(
                "Terminating",
                "True",
                "InstanceDeletionInProgress",
                "CustomResource deletion is in progress",
                &t,
            ));
        }
        obj["status"] =
            json!({"acceptedNames": names, "conditions": conditions, "storedVersions": stored});
    }
}

fn crd_accepted(obj: &Value) -> bool {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Established" && c["status"] == "True")
        })
}

fn is_crd(def: &ResourceDef) -> bool {
    def.group == "apiextensions.k8s.io" && def.resource == "customresourcedefinitions"
}

fn after_commit(inner: &mut Inner, def: &ResourceDef, obj: &Value) {
    if is_crd(def) && crd_accepted(obj) {
        inner.registry.add_crd(obj);
        // a new storage version: stored instances move to it (conversion strategy None)
        let group = obj
            .pointer("/spec/group")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let plural = obj
            .pointer("/spec/names/plural")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let gr = Gr::new(group, plural);
        if let Some(sdef) = inner.registry.storage(&gr) {
            inner.restamp_api_version(&gr, &storage_api_version(&sdef));
        }
    }
}

/// Custom-resource admission: defaulting, pruning, validation against the version's schema.
fn admit_custom(
    def: &ResourceDef,
    obj: &mut Value,
    old: Option<&Value>,
    strict: bool,
) -> ApiResult<()> {
    let mut causes = vec![];
    if strict && let Some(s) = &def.schema {
        let mut unknown = vec![];
        schema::unknown_fields(obj, s, "", true, &mut unknown);
        if !unknown.is_empty() {
            let list: Vec<String> = unknown
                .iter()
                .map(|f| format!("unknown field \"{f}\""))
                .collect();
            return Err(ApiError::bad_request(format!(
                "{kind} in version \"{v}\" cannot be handled as a {kind}: strict decoding error: {}",
                list.join(", "),
                kind = def.kind,
                v = def.version
            )));
        }
    }
    if let Some(s) = &def.schema {
        causes = schema::admit(obj, s, old);
    }
    validate_labels(obj, &mut causes);
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(
            &def.kind,
            &def.group,
            meta_str(obj, "name"),
            causes,
        ))
    }
}

// ---------- create ----------

pub fn create(
    inner: &mut Inner,
    def: &ResourceDef,
    ns: &str,
    mut obj: Value,
    opts: &WriteOpts,
    managed: Option<Value>,
) -> ApiResult<Value> {
    check_type(def, &obj)?;
    let core;
    let def = if def.is_event_view() {
        obj = event_convert(&obj, true);
        core = core_events_def(inner)?;
        &*core
    } else {
        def
    };
    obj["apiVersion"] = json!(storage_api_version(def));
    obj["kind"] = json!(def.kind);
    let body_ns = meta_str(&obj, "namespace").to_string();
    {
        let m = meta_mut(&mut obj);
        let name = m
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if name.is_empty()
            && let Some(g) = m
                .get("generateName")
                .and_then(Value::as_str)
                .filter(|g| !g.is_empty())
        {
            let n = format!("{g}{}", random_suffix());
            m.insert("name".into(), json!(n));
        }
    }
    let name = meta_str(&obj, "name").to_string();
    if name.is_empty() {
        return Err(ApiError::invalid(
            &def.kind,
            &def.group,
            "",
            vec![Cause::new(
                "FieldValueRequired",
                "metadata.name",
                "Required value: name or generateName is required",
            )],
        ));
    }
    if def.namespaced {
        if !body_ns.is_empty() && body_ns != ns {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        meta_mut(&mut obj).insert("namespace".into(), json!(ns));
    } else {
        meta_mut(&mut obj).remove("namespace");
    }
    let mut causes = vec![];
    if let Some(c) = validate_name(def, &name) {
        causes.push(c);
    }
    validate_labels(&obj, &mut causes);
    if !causes.is_empty() {
        return Err(ApiError::invalid(&def.kind, &def.group, &name, causes));
    }
    ensure_namespace(inner, def, ns, true)?;
    if inner
        .get(&def.gr(), if def.namespaced { ns } else { "" }, &name)
        .is_some()
    {
        return Err(ApiError::already_exists(target(def, &name)));
    }
    if def.status
        && let Some(o) = obj.as_object_mut()
    {
        o.remove("status");
    }
    let counter = inner.rv;
    builtin_defaults(def, &mut obj, true, counter);
    if def.custom {
        admit_custom(def, &mut obj, None, opts.strict)?;
    } else {
        crate::builtin::validate(def, &obj, &name)?;
    }
    let t = now();
    {
        let m = meta_mut(&mut obj);
        m.insert("uid".into(), json!(new_uid()));
        m.insert("creationTimestamp".into(), json!(t));
        m.remove("deletionTimestamp");
        m.remove("deletionGracePeriodSeconds");
        m.remove("resourceVersion");
        m.remove("selfLink");
        if def.generation {
            m.insert("generation".into(), json!(1));
        } else {
            m.remove("generation");
        }
        m.remove("managedFields");
    }
    if is_crd(def) {
        let causes = crd_causes(&obj);
        if !causes.is_empty() {
            return Err(ApiError::invalid(&def.kind, &def.group, &name, causes));
        }
        let mut f = finalizers(&obj);
        if !f.iter().any(|x| x == CRD_FINALIZER) {
            f.push(CRD_FINALIZER.to_string());
        }
        meta_mut(&mut obj).insert("finalizers".into(), json!(f));
        crd_status(inner, &mut obj, None);
    }
    let lt = list_types(def);
    match managed {
        Some(m) => {
            meta_mut(&mut obj).insert("managedFields".into(), m);
        }
        None => fields::record_update(None, &mut obj, &opts.manager, "", lt.as_ref(), false, &t),
    }
    if opts.dry_run {
        return Ok(obj);
    }
    let stored = inner.put(&def.gr(), obj);
    after_commit(inner, def, &stored);
    Ok((*stored).clone())
}

// ---------- update ----------

fn strip_times(v: &Value) -> Value {
    let mut o = v.clone();
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
        if let Some(Value::Array(mf)) = m.get_mut("managedFields") {
            for e in mf {
                if let Some(eo) = e.as_object_mut() {
                    eo.remove("time");
                }
            }
        }
    }
    o
}

/// Replaces an object. `sub` is "" or "status". `managed` carries managedFields computed by apply.
#[allow(clippy::too_many_arguments)]
pub fn update(
    inner: &mut Inner,
    def: &ResourceDef,
    ns: &str,
    name: &str,
    mut body: Value,
    sub: &str,
    opts: &WriteOpts,
    managed: Option<Value>,
) -> ApiResult<Value> {
    check_type(def, &body)?;
    let core;
    let def = if def.is_event_view() {
        body = event_convert(&body, true);
        core = core_events_def(inner)?;
        &*core
    } else {
        def
    };
    let body_managed = body.pointer("/metadata/managedFields").cloned();
    let ns = if def.namespaced { ns } else { "" };
    let Some(old) = inner.get(&def.gr(), ns, name) else {
        return Err(ApiError::not_found(target(def, name)));
    };
    let body_name = meta_str(&body, "name");
    if !body_name.is_empty() && body_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({body_name}) does not match the name on the URL ({name})"
        )));
    }
    let body_ns = meta_str(&body, "namespace");
    if def.namespaced && !body_ns.is_empty() && body_ns != ns {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let body_rv = meta_str(&body, "resourceVersion");
    if !body_rv.is_empty() && body_rv != meta_str(&old, "resourceVersion") {
        return Err(ApiError::stale(target(def, name)));
    }
    let mut new = if sub == "status" {
        let mut n = (*old).clone();
        match body.get("status") {
            Some(s) => n["status"] = s.clone(),
            None => {
                if let Some(o) = n.as_object_mut() {
                    o.remove("status");
                }
            }
        }
        n
    } else {
        if def.status
            && let Some(o) = body.as_object_mut()
        {
            match old.get("status") {
                Some(s) => {
                    o.insert("status".into(), s.clone());
                }
                None => {
                    o.remove("status");
                }
            }
        }
        body
    };
    new["apiVersion"] = json!(storage_api_version(def));
    new["kind"] = json!(def.kind);
    {
        let om = old.get("metadata").cloned().unwrap_or_else(|| json!({}));
        let m = meta_mut(&mut new);
        m.insert("name".into(), json!(name));
        if def.namespaced {
            m.insert("namespace".into(), json!(ns));
        } else {
            m.remove("namespace");
        }
        for k in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "managedFields",
        ] {
            match om.get(k) {
                Some(v) => {
                    m.insert(k.into(), v.clone());
                }
                None => {
                    m.remove(k);
                }
            }
        }
        m.insert("resourceVersion".into(), om["resourceVersion"].clone());
        m.remove("selfLink");
    }
    // namespaces keep spec.finalizers (changed only via /finalize)
    if def.group.is_empty() && def.resource == "namespaces" && sub != "finalize" {
        new["spec"] = old.get("spec").cloned().unwrap_or_else(|| json!({}));
    }
    let deleting = old.pointer("/metadata/deletionTimestamp").is_some();
    if deleting {
        let oldf = finalizers(&old);
        let added: Vec<String> = finalizers(&new)
            .into_iter()
            .filter(|f| !oldf.contains(f))
            .collect();
        if !added.is_empty() {
            return Err(ApiError::invalid(
                &def.kind,
                &def.group,
                name,
                vec![Cause::new(
                    "FieldValueForbidden",
                    "metadata.finalizers",
                    format!(
                        "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"
                    ),
                )],
            ));
        }
    }
    let mut causes = vec![];
    validate_labels(&new, &mut causes);
    if !causes.is_empty() {
        return Err(ApiError::invalid(&def.kind, &def.group, name, causes));
    }
    builtin_defaults(def, &mut new, false, 0);
    if def.custom {
        admit_custom(def, &mut new, Some(&old), opts.strict)?;
    } else {
        crate::builtin::validate(def, &new, name)?;
    }
    if def.generation && spec_part(&new) != spec_part(&old) {
        let g = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            + 1;
        meta_mut(&mut new).insert("generation".into(), json!(g));
    }
    if is_crd(def) {
        let causes = crd_causes(&new);
        if !causes.is_empty() {
            return Err(ApiError::invalid(&def.kind, &def.group, name, causes));
        }
        if sub != "status" {
            crd_status(inner, &mut new, old.get("status"));
        }
    }
    let t = now();
    let lt = list_types(def);
    match managed {
        Some(m) => {
            meta_mut(&mut new).insert("managedFields".into(), m);
        }
        // a writer that sets managedFields explicitly replaces them (an empty list resets them)
        None if sub != "status"
            && body_managed
                .as_ref()
                .is_some_and(|mf| Some(mf) != old.pointer("/metadata/managedFields")) =>
        {
            let mf = body_managed.unwrap_or_default();
            let reset = mf.as_array().is_some_and(Vec::is_empty);
            let mut base = (*old).clone();
            meta_mut(&mut base).insert("managedFields".into(), mf);
            fields::record_update(
                if reset { None } else { Some(&base) },
                &mut new,
                &opts.manager,
                sub,
                lt.as_ref(),
                def.status,
                &t,
            )
        }
        None => fields::record_update(
            Some(&old),
            &mut new,
            &opts.manager,
            sub,
            lt.as_ref(),
            def.status,
            &t,
        ),
    }
    if strip_times(&new) == strip_times(&old) {
        return Ok((*old).clone());
    }
    if opts.dry_run {
        return Ok(new);
    }
    commit_changed(inner, def, new)
}

/// Writes a changed object; a deleting object whose last finalizer went is removed.
fn commit_changed(inner: &mut Inner, def: &ResourceDef, new: Value) -> ApiResult<Value> {
    let gr = def.gr();
    let deleting = new.pointer("/metadata/deletionTimestamp").is_some();
    let ns = meta_str(&new, "namespace").to_string();
    let name = meta_str(&new, "name").to_string();
    if deleting && finalizers(&new).is_empty() && !namespace_pending(def, &new) {
        inner.put(&gr, new);
        let gone = inner.remove(&gr, &ns, &name);
        on_removed(inner, def, &name);
        return Ok(gone.map(|g| (*g).clone()).unwrap_or(Value::Null));
    }
    let stored = inner.put(&gr, new);
    if deleting {
        inner.gc_dirty = true;
    }
    after_commit(inner, def, &stored);
    Ok((*stored).clone())
}

fn namespace_pending(def: &ResourceDef, obj: &Value) -> bool {
    def.group.is_empty()
        && def.resource == "namespaces"
        && obj
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
}

fn on_removed(inner: &mut Inner, def: &ResourceDef, name: &str) {
    if is_crd(def) {
        inner.registry.remove_crd(name);
    }
    inner.gc_dirty = true;
}

// ---------- patch ----------

pub fn parse_body(bytes: &[u8]) -> ApiResult<Value> {
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    if let Ok(v) = serde_json::from_slice::<Value>(bytes) {
        return Ok(v);
    }
    let s = std::str::from_utf8(bytes)
        .map_err(|e| ApiError::bad_request(format!("body is not UTF-8: {e}")))?;
    serde_saphyr::from_str::<Value>(s)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))
}

#[allow(clippy::too_many_arguments)]
pub fn patch(
    inner: &mut Inner,
    def: &ResourceDef,
    ns: &str,
    name: &str,
    ptype: PatchType,
    body: &Value,
    sub: &str,
    opts: &WriteOpts,
) -> ApiResult<Value> {
    let ns = if def.namespaced { ns } else { "" };
    let current = inner.get(&def.gr(), ns, name);
    if ptype == PatchType::Apply {
        return apply(inner, def, ns, name, body, sub, opts, current);
    }
    let Some(cur) = current else {
        return Err(ApiError::not_found(target(def, name)));
    };
    let mut doc = at_version(def, &cur);
    match ptype {
        PatchType::Json => patch::json_patch(&mut doc, body)?,
        PatchType::Merge => {
            if !body.is_object() {
                return Err(ApiError::bad_request(
                    "the body of the request was in an unknown format",
                ));
            }
            patch::merge_patch(&mut doc, body)
        }
        PatchType::Strategic => {
            if def.custom {
                return Err(ApiError::unsupported_media(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
                ));
            }
            doc = patch::strategic_merge(&doc, body, &Builtin)?;
        }
        PatchType::Apply => {}
    }
    // a patch that does not set resourceVersion is unconditional
    let patched_rv = meta_str(&doc, "resourceVersion").to_string();
    if patched_rv.is_empty()
        && let Some(m) = doc.get_mut("metadata").and_then(Value::as_object_mut)
    {
        m.insert(
            "resourceVersion".into(),
            cur["metadata"]["resourceVersion"].clone(),
        );
    }
    update(inner, def, ns, name, doc, sub, opts, None)
}

#[allow(clippy::too_many_arguments)]
fn apply(
    inner: &mut Inner,
    def: &ResourceDef,
    ns: &str,
    name: &str,
    config: &Value,
    sub: &str,
    opts: &WriteOpts,
    current: Option<Arc<Value>>,
) -> ApiResult<Value> {
    if opts.manager.is_empty() {
        return Err(ApiError::invalid(
            "PatchOptions",
            "meta.k8s.io",
            "",
            vec![Cause::new(
                "FieldValueRequired",
                "fieldManager",
                "Required value: is required for apply patch",
            )],
        ));
    }
    if !config.is_object() {
        return Err(ApiError::bad_request(
            "error decoding YAML: apply configuration must be an object",
        ));
    }
    // Like kube-apiserver, an apply configuration without metadata.name takes the URL's name
    // (kube-lease-manager, for one, sends Lease patches that way).
    let named;
    let config = if meta_str(config, "name").is_empty() {
        let mut c = config.clone();
        if !c.get("metadata").is_some_and(Value::is_object) {
            c["metadata"] = json!({});
        }
        c["metadata"]["name"] = json!(name);
        named = c;
        &named
    } else {
        config
    };
    let cfg_name = meta_str(config, "name");
    if cfg_name != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({cfg_name}) does not match the name on the URL ({name})"
        )));
    }
    if config
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .is_empty()
        || config
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .is_empty()
    {
        return Err(ApiError::bad_request(
            "apiVersion and kind must be set in an apply configuration",
        ));
    }
    check_type(def, config)?;
    let lt = list_types(def);
    let t = now();
    let live = current.as_deref().map(|c| at_version(def, c));
    let merged = fields::apply(
        live.as_ref(),
        config,
        &opts.manager,
        sub,
        opts.force,
        lt.as_ref(),
        def.status,
        &t,
    )
    .map_err(|conflicts| {
        let api_version = def.api_version();
        let mut lines = vec![];
        let mut causes = vec![];
        for c in &conflicts {
            let who = if c.api_version.is_empty() || c.api_version == api_version {
                format!("conflict with \"{}\"", c.manager)
            } else {
                format!("conflict with \"{}\" using {}", c.manager, c.api_version)
            };
            let field = fields::render_path(&c.path);
            lines.push(format!("{who}: {field}"));
            causes.push(json!({"type": "FieldManagerConflict", "message": who, "field": field}));
        }
        let msg = if lines.len() == 1 {
            format!("Apply failed with 1 conflict: {}", lines[0])
        } else {
            format!(
                "Apply failed with {} conflicts: {}",
                lines.len(),
                lines.join("\n")
            )
        };
        ApiError {
            code: 409,
            reason: "Conflict",
            message: msg,
            details: Some(json!({"causes": causes})),
        }
    })?;
    let managed = merged
        .pointer("/metadata/managedFields")
        .cloned()
        .unwrap_or_else(|| json!([]));
    match current {
        None => {
            if sub == "status" {
                return Err(ApiError::not_found(target(def, name)));
            }
            create(inner, def, ns, merged, opts, Some(managed))
        }
        Some(cur) => {
            // a resourceVersion in the applied configuration is a precondition
            let want = meta_str(config, "resourceVersion");
            if !want.is_empty() && want != meta_str(&cur, "resourceVersion") {
                return Err(ApiError::stale(target(def, name)));
            }
            let mut body = merged;
            if let Some(m) = body.get_mut("metadata").and_then(Value::as_object_mut) {
                m.insert(
                    "resourceVersion".into(),
                    cur["metadata"]["resourceVersion"].clone(),
                );
            }
            update(inner, def, ns, name, body, sub, opts, Some(managed))
        }
    }
}

// ---------- delete ----------

pub fn delete(
    inner: &mut Inner,
    def: &ResourceDef,
    ns: &str,
    name: &str,
    dopts: &DeleteOpts,
) -> ApiResult<Value> {
    let ns = if def.namespaced { ns } else { "" };
    let Some(old) = inner.get(&def.gr(), ns, name) else {
        return Err(ApiError::not_found(target(def, name)));
    };
    if let Some(uid) = &dopts.uid
        && uid != meta_str(&old, "uid")
    {
        return Err(ApiError::conflict(
            target(def, name),
            &format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                meta_str(&old, "uid")
            ),
        ));
    }
    if let Some(rv) = &dopts.resource_version
        && rv != meta_str(&old, "resourceVersion")
    {
        return Err(ApiError::conflict(
            target(def, name),
            &format!(
                "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                meta_str(&old, "resourceVersion")
            ),
        ));
    }
    let mut obj = (*old).clone();
    let mut fins = finalizers(&obj);
    match dopts.propagation.as_deref() {
        Some("Foreground")
            if !fins.iter().any(|f| f == "foregroundDeletion")
                && has_dependents(inner, meta_str(&obj, "uid")) =>
        {
            fins.push("foregroundDeletion".into());
        }
        Some("Orphan")
            if !fins.iter().any(|f| f == "orphan")
                && has_dependents(inner, meta_str(&obj, "uid")) =>
        {
            fins.push("orphan".into());
        }
        _ => {}
    }
    let is_ns = def.group.is_empty() && def.resource == "namespaces";
    if is_ns && matches!(name, "default" | "kube-system" | "kube-public") {
        let mut e = ApiError::forbidden(format!(
            "namespaces \"{name}\" is forbidden: this namespace may not be deleted"
        ));
        e.details = Some(json!({"name": name, "kind": "namespaces"}));
        return Err(e);
    }
    if !fins.is_empty() || is_ns || (is_crd(def) && !fins.is_empty()) {
        if dopts.dry_run {
            return Ok(obj);
        }
        let already = obj.pointer("/metadata/deletionTimestamp").is_some();
        {
            let t = now();
            let m = meta_mut(&mut obj);
            if !already {
                m.insert("deletionTimestamp".into(), json!(t));
                m.insert("deletionGracePeriodSeconds".into(), json!(0));
                if def.generation {
                    let g = m.get("generation").and_then(Value::as_i64).unwrap_or(0) + 1;
                    m.insert("generation".into(), json!(g));
                }
            }
            if !fins.is_empty() {
                m.insert("finalizers".into(), json!(fins));
            }
        }
        if is_ns {
            obj["status"] = json!({"phase": "Terminating"});
        }
        if is_crd(def) {
            crd_status(inner, &mut obj, old.get("status"));
        }
        if already && *old == obj {
            return Ok(obj);
        }
        inner.gc_dirty = true;
        return commit_changed(inner, def, obj);
    }
    if dopts.dry_run {
        return Ok(obj);
    }
    let gone = inner.remove(&def.gr(), ns, name);
    on_removed(inner, def, name);
    Ok(gone.map(|g| (*g).clone()).unwrap_or(Value::Null))
}

fn has_dependents(inner: &Inner, uid: &str) -> bool {
    inner
        .objects
        .values()
        .flat_map(|b| b.values())
        .any(|o| owner_uids(o).iter().any(|u| u == uid))
}

fn owner_uids(o: &Value) -> Vec<String> {
    o.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|r| r["uid"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn def_for(inner: &Inner, gr: &Gr) -> Option<Arc<ResourceDef>> {
    inner.registry.storage(gr)
}

/// Removes one finalizer (and the object, if it was the last one and it is being deleted).
fn drop_finalizer(inner: &mut Inner, gr: &Gr, ns: &str, name: &str, fin: &str) {
    let (Some(def), Some(cur)) = (def_for(inner, gr), inner.get(gr, ns, name)) else {
        return;
    };
    let mut obj = (*cur).clone();
    let fins: Vec<String> = finalizers(&obj).into_iter().filter(|f| f != fin).collect();
    let m = meta_mut(&mut obj);
    if fins.is_empty() {
        m.remove("finalizers");
    } else {
        m.insert("finalizers".into(), json!(fins));
    }
    let _ = commit_changed(inner, &def, obj);
}

/// One round of background work: garbage collection of dependents, foreground/orphan
/// finalizers, namespace and CRD cleanup. Returns whether anything changed.
pub fn gc_pass(inner: &mut Inner) -> bool {
    let before = inner.rv;
    let bg = DeleteOpts::default();
    // snapshot of what to look at
    let all: Vec<(Gr, Arc<Value>)> = inner
        .objects
        .iter()
        .flat_map(|(gr, b)| b.values().map(move |o| (gr.clone(), o.clone())))
        .collect();
    let deleting_fg: Vec<String> = all
        .iter()
        .filter(|(_, o)| {
            o.pointer("/metadata/deletionTimestamp").is_some()
                && finalizers(o).iter().any(|f| f == "foregroundDeletion")
        })
        .map(|(_, o)| meta_str(o, "uid").to_string())
        .collect();
    let orphaning: Vec<(Gr, String, String, String)> = all
        .iter()
        .filter(|(_, o)| {
            o.pointer("/metadata/deletionTimestamp").is_some()
                && finalizers(o).iter().any(|f| f == "orphan")
        })
        .map(|(gr, o)| {
            (
                gr.clone(),
                meta_str(o, "namespace").to_string(),
                meta_str(o, "name").to_string(),
                meta_str(o, "uid").to_string(),
            )
        })
        .collect();

    // orphan: strip owner references, then drop the finalizer
    for (gr, ns, name, uid) in &orphaning {
        for (dgr, d) in &all {
            if owner_uids(d).contains(uid)
                && let Some(def) = def_for(inner, dgr)
                && let Some(cur) = inner.get(dgr, meta_str(d, "namespace"), meta_str(d, "name"))
            {
                let mut o = (*cur).clone();
                if let Some(refs) = o
                    .pointer_mut("/metadata/ownerReferences")
                    .and_then(Value::as_array_mut)
                {
                    refs.retain(|r| r["uid"].as_str() != Some(uid));
                }
                let _ = commit_changed(inner, &def, o);
            }
        }
        drop_finalizer(inner, gr, ns, name, "orphan");
    }

    // dependents whose owners are all gone, or whose owner is being deleted in the foreground
    for (gr, o) in &all {
        // re-read: the orphaning above may have changed it
        let Some(o) = inner.get(gr, meta_str(o, "namespace"), meta_str(o, "name")) else {
            continue;
        };
        let owners = owner_uids(&o);
        if owners.is_empty() || o.pointer("/metadata/deletionTimestamp").is_some() {
            continue;
        }
        let all_gone = owners.iter().all(|u| !inner.uids.contains_key(u));
        let fg = owners.iter().any(|u| deleting_fg.contains(u));
        if (all_gone || fg)
            && let Some(def) = def_for(inner, gr)
        {
            let opts = if fg {
                DeleteOpts {
                    propagation: Some("Foreground".into()),
                    ..Default::default()
                }
            } else {
                bg.clone()
            };
            let _ = delete(
                inner,
                &def,
                meta_str(&o, "namespace"),
                meta_str(&o, "name"),
                &opts,
            );
        }
    }
    // foreground owners whose dependents are gone
    for (gr, o) in &all {
        let uid = meta_str(o, "uid");
        if deleting_fg.iter().any(|u| u == uid) && !has_dependents(inner, uid) {
            drop_finalizer(
                inner,
                gr,
                meta_str(o, "namespace"),
                meta_str(o, "name"),
                "foregroundDeletion",
            );
        }
    }

    // namespaces being deleted: delete their content, then finalize
    let nsgr = Gr::new("", "namespaces");
    let terminating: Vec<String> = inner
        .bucket(&nsgr)
        .map(|b| {
            b.values()
                .filter(|n| n.pointer("/metadata/deletionTimestamp").is_some())
                .map(|n| meta_str(n, "name").to_string())
                .collect()
        })
        .unwrap_or_default();
    for ns in terminating {
        let content: Vec<(Gr, String, bool)> = inner
            .objects
            .iter()
            .filter(|(gr, _)| **gr != nsgr)
            .flat_map(|(gr, b)| {
                b.iter()
                    .filter(|((n, _), _)| *n == ns)
                    .map(move |((_, name), o)| {
                        (
                            gr.clone(),
                            name.clone(),
                            o.pointer("/metadata/deletionTimestamp").is_some(),
                        )
                    })
            })
            .collect();
        if content.is_empty() {
            if let (Some(def), Some(cur)) = (def_for(inner, &nsgr), inner.get(&nsgr, "", &ns)) {
                let mut o = (*cur).clone();
                o["spec"]["finalizers"] = json!([]);
                let _ = commit_changed(inner, &def, o);
            }
            continue;
        }
        for (gr, name, deleting) in content {
            if deleting {
                continue;
            }
            if let Some(def) = def_for(inner, &gr) {
                let _ = delete(inner, &def, &ns, &name, &bg);
            }
        }
    }

    // CRDs being deleted: delete every instance, then drop the cleanup finalizer
    let crdgr = Gr::new("apiextensions.k8s.io", "customresourcedefinitions");
    let crds: Vec<Arc<Value>> = inner
        .bucket(&crdgr)
        .map(|b| {
            b.values()
                .filter(|c| c.pointer("/metadata/deletionTimestamp").is_some())
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    for crd in crds {
        let group = crd
            .pointer("/spec/group")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let plural = crd
            .pointer("/spec/names/plural")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let gr = Gr::new(group, plural);
        let items: Vec<(String, String, bool)> = inner
            .bucket(&gr)
            .map(|b| {
                b.iter()
                    .map(|((ns, n), o)| {
                        (
                            ns.clone(),
                            n.clone(),
                            o.pointer("/metadata/deletionTimestamp").is_some(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        if items.is_empty() {
            inner.objects.remove(&gr);
            drop_finalizer(inner, &crdgr, "", meta_str(&crd, "name"), CRD_FINALIZER);
            continue;
        }
        if let Some(def) = def_for(inner, &gr) {
            for (ns, n, deleting) in items {
                if !deleting {
                    let _ = delete(inner, &def, &ns, &n, &bg);
                }
            }
        }
    }
    inner.rv != before
}

/// Builds a `Scale` object for the scale subresource.
pub fn scale_of(def: &ResourceDef, obj: &Value) -> Value {
    let Some(sc) = &def.scale else {
        return Value::Null;
    };
    let ptr = |p: &str| p.replace('.', "/");
    let spec_r = obj
        .pointer(&ptr(&sc.spec_replicas))
        .cloned()
        .unwrap_or(json!(0));
    let status_r = obj
        .pointer(&ptr(&sc.status_replicas))
        .cloned()
        .unwrap_or(json!(0));
    let selector = if def.custom {
        sc.label_selector
            .as_ref()
            .and_then(|p| obj.pointer(&ptr(p)))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    } else {
        obj.pointer("/spec/selector")
            .map(|s| {
                if s.get("matchLabels").is_some() || s.get("matchExpressions").is_some() {
                    crate::selector::LabelSelector::from_label_selector_object(s).to_string_form()
                } else {
                    // ReplicationController: plain map
                    s.as_object()
                        .map(|m| {
                            m.iter()
                                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                                .collect::<Vec<_>>()
                                .join(",")
                        })
                        .unwrap_or_default()
                }
            })
            .unwrap_or_default()
    };
    let m = &obj["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {"name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
            "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"]},
        "spec": {"replicas": spec_r},
        "status": {"replicas": status_r, "selector": selector},
    })
}

/// Sets spec replicas from a Scale object.
pub fn set_scale(def: &ResourceDef, obj: &mut Value, scale: &Value) -> ApiResult<()> {
    let Some(sc) = &def.scale else {
        return Err(ApiError::not_found_path());
    };
    let replicas = scale.pointer("/spec/replicas").cloned().unwrap_or(json!(0));
    if !replicas.is_i64() && !replicas.is_u64() {
        return Err(ApiError::bad_request("spec.replicas must be an integer"));
    }
    let parts: Vec<&str> = sc
        .spec_replicas
        .trim_start_matches('.')
        .split('.')
        .collect();
    let mut cur = obj;
    for (i, p) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            cur[*p] = replicas.clone();
        } else {
            if !cur.get(*p).is_some_and(Value::is_object) {
                cur[*p] = json!({});
            }
            cur = &mut cur[*p];
        }
    }
    Ok(())
}
