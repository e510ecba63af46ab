//! Authentication (bearer tokens), impersonation and RBAC authorization.

use crate::registry::Gr;
use crate::selector::LabelSelector;
use crate::status::ApiError;
use crate::store::{Identity, Inner, meta_str};
use serde_json::Value;

/// What a request wants to do, for authorization.
pub struct Attributes<'a> {
    pub verb: &'a str,
    pub group: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
}

fn subject_matches(s: &Value, id: &Identity, binding_ns: &str) -> bool {
    let name = s["name"].as_str().unwrap_or_default();
    match s["kind"].as_str() {
        Some("User") => name == id.user,
        Some("Group") => id.groups.iter().any(|g| g == name),
        Some("ServiceAccount") => {
            let ns = s["namespace"]
                .as_str()
                .filter(|n| !n.is_empty())
                .unwrap_or(binding_ns);
            id.user == format!("system:serviceaccount:{ns}:{name}")
        }
        _ => false,
    }
}

fn contains(list: &Value, want: &str) -> bool {
    list.as_array().is_some_and(|a| {
        a.iter()
            .any(|v| v.as_str() == Some("*") || v.as_str() == Some(want))
    })
}

fn rule_allows(rule: &Value, a: &Attributes<'_>) -> bool {
    if !contains(&rule["verbs"], a.verb) || !contains(&rule["apiGroups"], a.group) {
        return false;
    }
    let res_ok = rule["resources"].as_array().is_some_and(|rs| {
        rs.iter().filter_map(Value::as_str).any(|r| {
            if a.subresource.is_empty() {
                r == "*" || r == a.resource
            } else {
                r == "*"
                    || r == format!("{}/{}", a.resource, a.subresource)
                    || r == format!("*/{}", a.subresource)
            }
        })
    });
    if !res_ok {
        return false;
    }
    match rule["resourceNames"].as_array() {
        Some(names) if !names.is_empty() => {
            names.iter().any(|n| n.as_str() == Some(a.name)) && !a.name.is_empty()
        }
        _ => true,
    }
}

fn role_rules(inner: &Inner, role_ref: &Value, binding_ns: &str) -> Vec<Value> {
    let name = role_ref["name"].as_str().unwrap_or_default();
    let obj = match role_ref["kind"].as_str() {
        Some("ClusterRole") => inner.get(
            &Gr::new("rbac.authorization.k8s.io", "clusterroles"),
            "",
            name,
        ),
        Some("Role") => inner.get(
            &Gr::new("rbac.authorization.k8s.io", "roles"),
            binding_ns,
            name,
        ),
        _ => None,
    };
    let Some(obj) = obj else { return vec![] };
    let mut rules = obj["rules"].as_array().cloned().unwrap_or_default();
    // aggregated ClusterRoles: the rules of every ClusterRole their selectors match
    if let Some(selectors) = obj
        .pointer("/aggregationRule/clusterRoleSelectors")
        .and_then(Value::as_array)
        && let Some(all) = inner.bucket(&Gr::new("rbac.authorization.k8s.io", "clusterroles"))
    {
        let sels: Vec<LabelSelector> = selectors
            .iter()
            .map(LabelSelector::from_label_selector_object)
            .collect();
        for cr in all.values() {
            if meta_str(cr, "name") != name && sels.iter().any(|s| s.matches(cr)) {
                rules.extend(cr["rules"].as_array().cloned().unwrap_or_default());
            }
        }
    }
    rules
}

/// RBAC: is this identity allowed to do this?
pub fn allowed(inner: &Inner, id: &Identity, a: &Attributes<'_>) -> bool {
    if id.is_admin() {
        return true;
    }
    let crb = Gr::new("rbac.authorization.k8s.io", "clusterrolebindings");
    if let Some(b) = inner.bucket(&crb) {
        for binding in b.values() {
            let subjects = binding["subjects"].as_array().cloned().unwrap_or_default();
            if subjects.iter().any(|s| subject_matches(s, id, ""))
                && role_rules(inner, &binding["roleRef"], "")
                    .iter()
                    .any(|r| rule_allows(r, a))
            {
                return true;
            }
        }
    }
    if a.namespace.is_empty() {
        return false;
    }
    let rb = Gr::new("rbac.authorization.k8s.io", "rolebindings");
    if let Some(b) = inner.bucket(&rb) {
        for ((ns, _), binding) in b.iter() {
            if ns != a.namespace {
                continue;
            }
            let subjects = binding["subjects"].as_array().cloned().unwrap_or_default();
            if subjects.iter().any(|s| subject_matches(s, id, ns))
                && role_rules(inner, &binding["roleRef"], ns)
                    .iter()
                    .any(|r| rule_allows(r, a))
            {
                return true;
            }
        }
    }
    false
}

/// The 403 kube-apiserver answers.
pub fn forbidden(id: &Identity, a: &Attributes<'_>) -> ApiError {
    let res = if a.subresource.is_empty() {
        a.resource.to_string()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    let qualified = if a.group.is_empty() {
        a.resource.to_string()
    } else {
        format!("{}.{}", a.resource, a.group)
    };
    let subject = if a.name.is_empty() {
        qualified.clone()
    } else {
        format!("{qualified} \"{}\"", a.name)
    };
    let scope = if a.namespace.is_empty() {
        "at the cluster scope".to_string()
    } else {
        format!("in the namespace \"{}\"", a.namespace)
    };
    let mut e = ApiError::forbidden(format!(
        "{subject} is forbidden: User \"{}\" cannot {} resource \"{res}\" in API group \"{}\" {scope}",
        id.user, a.verb, a.group
    ));
    e.details = Some(serde_json::json!({"name": a.name, "group": a.group, "kind": a.resource}));
    e
}

/// Identity of a service account.
pub fn service_account_identity(ns: &str, name: &str) -> Identity {
    Identity {
        user: format!("system:serviceaccount:{ns}:{name}"),
        groups: vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{ns}"),
            "system:authenticated".into(),
        ],
    }
}

/// Applies `Impersonate-User` / `Impersonate-Group` headers, checking the `impersonate` verb.
pub fn impersonate(
    inner: &Inner,
    caller: &Identity,
    user: &str,
    groups: &[String],
) -> Result<Identity, ApiError> {
    let (resource, ns, name) = match user
        .strip_prefix("system:serviceaccount:")
        .and_then(|r| r.split_once(':'))
    {
        Some((ns, n)) => ("serviceaccounts", ns, n),
        None => ("users", "", user),
    };
    let a = Attributes {
        verb: "impersonate",
        group: "",
        resource,
        subresource: "",
        namespace: ns,
        name,
    };
    if !allowed(inner, caller, &a) {
        return Err(forbidden(caller, &a));
    }
    for g in groups {
        let ga = Attributes {
            verb: "impersonate",
            group: "",
            resource: "groups",
            subresource: "",
            namespace: "",
            name: g,
        };
        if !allowed(inner, caller, &ga) {
            return Err(forbidden(caller, &ga));
        }
    }
    let mut id = if resource == "serviceaccounts" && groups.is_empty() {
        service_account_identity(ns, name)
    } else {
        Identity {
            user: user.to_string(),
            groups: groups.to_vec(),
        }
    };
    if !id.groups.iter().any(|g| g == "system:authenticated") {
        id.groups.push("system:authenticated".into());
    }
    Ok(id)
}

/// Whether a service account still exists for a token's identity.
pub fn token_valid(inner: &Inner, id: &Identity) -> bool {
    match id
        .user
        .strip_prefix("system:serviceaccount:")
        .and_then(|r| r.split_once(':'))
    {
        Some((ns, name)) => inner
            .get(&Gr::new("", "serviceaccounts"), ns, name)
            .is_some_and(|sa| !meta_str(&sa, "uid").is_empty()),
        None => true,
    }
}
