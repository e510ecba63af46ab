//! Object references shared by several kinds (upstream `pkg/apis/meta`).
//!
//! References whose `kind` is restricted to an enum live next to the kind that uses them
//! (e.g. [`crate::kustomization::CrossNamespaceSourceReference`]).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A reference to an object in the same namespace, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalObjectReference {
    /// Name of the referenced object.
    pub name: String,
}

/// A reference to an object by name, optionally in another namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespacedObjectReference {
    /// Name of the referenced object.
    pub name: String,
    /// Namespace of the referenced object; the referrer's namespace when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// A reference to an object of any kind, optionally in another namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespacedObjectKindReference {
    /// API version of the referenced object; the preferred version when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind of the referenced object.
    pub kind: String,
    /// Name of the referenced object.
    pub name: String,
    /// Namespace of the referenced object; the referrer's namespace when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// A reference to one key of a Secret in the same namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyReference {
    /// Name of the Secret.
    pub name: String,
    /// Key inside the Secret; each user of this reference documents its default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// Where to find the kubeconfig of a remote cluster: a Secret key or a ConfigMap with
/// provider settings. Exactly one of the two must be given.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "message": "exactly one of spec.kubeConfig.configMapRef or spec.kubeConfig.secretRef must be specified",
        "rule": "has(self.configMapRef) || has(self.secretRef)",
    },
    {
        "message": "exactly one of spec.kubeConfig.configMapRef or spec.kubeConfig.secretRef must be specified",
        "rule": "!has(self.configMapRef) || !has(self.secretRef)",
    },
]))]
pub struct KubeConfigReference {
    /// ConfigMap holding cloud-provider settings (`provider`, `cluster`, `address`, `ca.crt`, ...)
    /// used to obtain credentials for the remote cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<LocalObjectReference>,
    /// Secret holding a kubeconfig; the key defaults to `value` (then `value.yaml`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeyReference>,
}

/// A dependency on another object of the same kind, with an optional CEL readiness expression.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DependencyReference {
    /// Name of the dependency.
    pub name: String,
    /// Namespace of the dependency; the referrer's namespace when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// CEL expression (variables `self` and `dep`) deciding whether the dependency is ready;
    /// the Ready condition is used when empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_expr: Option<String>,
}

/// Declares a `kind` enum for references: the kinds Flux accepts are variants and make up the
/// schema's `enum`; any other string is kept as `Other` when reading. Reference kinds are read
/// leniently because clusters extend these CRD enums for third-party kinds, and because one object
/// that fails to decode would break a controller's whole watch stream; the reconcilers report an
/// unsupported kind on that object instead.
macro_rules! kind_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A kind outside the CRD enum, kept as written.
            Other(String),
        }

        impl $name {
            /// The kinds listed in the CRD enum, in CRD order.
            pub const KNOWN: &'static [&'static str] = &[$(stringify!($variant)),+];

            /// The kind name.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => stringify!($variant),)+
                    Self::Other(kind) => kind,
                }
            }

            /// Parses a kind name; names outside the CRD enum become `Other`.
            pub fn parse(kind: &str) -> Self {
                match kind {
                    $(stringify!($variant) => Self::$variant,)+
                    other => Self::Other(other.to_owned()),
                }
            }

            /// True for kinds listed in the CRD enum.
            pub fn is_known(&self) -> bool {
                !matches!(self, Self::Other(_))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let kind = <String as serde::Deserialize>::deserialize(deserializer)?;
                Ok(Self::parse(&kind))
            }
        }

        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn inline_schema() -> bool {
                true
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({ "type": "string", "enum": Self::KNOWN })
            }
        }
    };
}
pub(crate) use kind_enum;

#[cfg(test)]
mod tests {
    kind_enum! {
        /// Test kinds.
        pub enum TestKind {
            /// First.
            Alpha,
            /// Second.
            Beta,
        }
    }

    #[test]
    fn kind_enum_reads_known_and_unknown_kinds() {
        let alpha: TestKind = serde_json::from_str("\"Alpha\"").unwrap();
        assert_eq!(alpha, TestKind::Alpha);
        assert!(alpha.is_known());
        let other: TestKind = serde_json::from_str("\"Gamma\"").unwrap();
        assert_eq!(other, TestKind::Other("Gamma".into()));
        assert!(!other.is_known());
        assert_eq!(serde_json::to_string(&other).unwrap(), "\"Gamma\"");
        assert_eq!(serde_json::to_string(&TestKind::Beta).unwrap(), "\"Beta\"");
        let schema = schemars::schema_for!(TestKind);
        assert_eq!(
            schema.get("enum"),
            Some(&serde_json::json!(["Alpha", "Beta"]))
        );
    }
}
