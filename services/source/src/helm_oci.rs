//! Helm charts in OCI registries, for HelmCharts whose HelmRepository has `type: oci`:
//! credentials and TLS as source-controller's `GetClientOpts` reads them for OCI, the chart
//! version picked among the registry's tags as Helm's client and source-controller's OCI chart
//! repository pick it ([`ferroflux_helm::package::oci`]), and the chart layer pulled as Helm's
//! registry client pulls it. The registry protocol is `ferroflux-oci`'s client.

use std::collections::BTreeMap;

use base64::Engine as _;
use ferroflux_api::HelmRepository;
use ferroflux_helm::package::oci as chart_oci;
use ferroflux_oci::Repository;
use ferroflux_oci::auth::Credentials;
use ferroflux_oci::client::{ClientOptions, OciImageManifest, Registry};

use crate::helm_http::{self, SecretLookup};

/// The largest signature payload read.
const MAX_SIGNATURE_PAYLOAD: u64 = 1 << 20;

/// Why the client could not be configured (an `AuthenticationFailed` message).
pub type OptionsError = String;

/// Upstream's `KeychainFromSecret` for one registry host: a `.dockerconfigjson` entry whose
/// key names this host (scheme and path ignored), else the `username`/`password` keys.
/// `Ok(None)` is anonymous access.
pub fn credentials_from_secret(
    host: &str,
    secret_name: &str,
    data: &BTreeMap<String, Vec<u8>>,
) -> Result<Option<Credentials>, String> {
    let (username, password) = if let Some(raw) = data.get(".dockerconfigjson") {
        #[derive(serde::Deserialize)]
        struct Config {
            #[serde(default)]
            auths: BTreeMap<String, Entry>,
        }
        #[derive(serde::Deserialize)]
        struct Entry {
            #[serde(default)]
            username: Option<String>,
            #[serde(default)]
            password: Option<String>,
            #[serde(default)]
            auth: Option<String>,
        }
        let cfg: Config = serde_json::from_slice(raw).map_err(|e| {
            format!("unable to load Docker config from Secret '{secret_name}': {e}")
        })?;
        let hostname = |key: &str| {
            let k = key
                .strip_prefix("http://")
                .or_else(|| key.strip_prefix("https://"))
                .unwrap_or(key);
            k.split('/').next().unwrap_or(k).to_string()
        };
        let entry = cfg
            .auths
            .get(host)
            .or_else(|| {
                cfg.auths
                    .iter()
                    .find(|(k, _)| hostname(k) == host)
                    .map(|(_, e)| e)
            })
            .ok_or_else(|| {
                format!("no auth config for '{host}' in the docker-registry Secret '{secret_name}'")
            })?;
        let mut user = entry.username.clone().unwrap_or_default();
        let mut pass = entry.password.clone().unwrap_or_default();
        if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|e| {
                    format!("unable to load Docker config from Secret '{secret_name}': {e}")
                })?;
            let decoded = String::from_utf8_lossy(&decoded).into_owned();
            let (u, p) = decoded.split_once(':').ok_or_else(|| {
                format!(
                    "unable to load Docker config from Secret '{secret_name}': invalid auth configuration file"
                )
            })?;
            user = u.to_string();
            pass = p.to_string();
        }
        (user, pass)
    } else {
        let get = |k: &str| {
            data.get(k)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        };
        (get("username"), get("password"))
    };
    match (username.is_empty(), password.is_empty()) {
        (true, true) => Ok(None),
        (false, false) => Ok(Some(Credentials { username, password })),
        _ => Err(format!(
            "invalid '{secret_name}' secret data: required fields 'username' and 'password'"
        )),
    }
}

/// The registry client settings of a `type: oci` HelmRepository: TLS from `certSecretRef`
/// (or the TLS keys of `secretRef`), credentials from `secretRef`, `insecure` (plain HTTP),
/// the repository's timeout.
pub async fn client_options<L: SecretLookup>(
    lookup: &L,
    repo: &HelmRepository,
    normalized_url: &str,
) -> Result<ClientOptions, OptionsError> {
    use kube::ResourceExt;
    let http = helm_http::client_options(lookup, repo, normalized_url).await?;
    let mut opts = ClientOptions {
        insecure: repo.spec.insecure.unwrap_or(false),
        timeout: Some(repo.effective_timeout()),
        ..Default::default()
    };
    if let Some(tls) = http.tls {
        if tls.cert_key.is_some() {
            return Err(
                "failed to construct Helm client's TLS config: client certificates for OCI registries are not supported by this source-controller"
                    .to_string(),
            );
        }
        opts.ca_pem = tls.ca;
    }
    if let Some(r) = &repo.spec.secret_ref {
        let ns = repo.namespace().unwrap_or_default();
        let data = match lookup.secret(&ns, &r.name).await {
            Ok(Some(d)) => d,
            Ok(None) => {
                return Err(format!(
                    "failed to get authentication secret '{ns}/{}': secrets \"{}\" not found",
                    r.name, r.name
                ));
            }
            Err(e) => {
                return Err(format!(
                    "failed to get authentication secret '{ns}/{}': {e}",
                    r.name
                ));
            }
        };
        let host = Repository::parse(&format!("{}/x", normalized_url.trim_end_matches('/')))
            .map(|r| r.registry)
            .map_err(|e| format!("unable to parse registry URL '{normalized_url}': {e}"))?;
        opts.credentials = credentials_from_secret(&host, &r.name, &data)
            .map_err(|e| format!("failed to configure OCI registry authentication: {e}"))?;
    }
    Ok(opts)
}

/// A registry error in the words Helm's client (oras) would use where they matter: a refused
/// login says `401 unauthorized`, which is how upstream tells authentication failures apart.
fn registry_error(e: &ferroflux_oci::client::RegistryError) -> String {
    let text = e.to_string();
    if text.starts_with("Not authorized") || text.contains("Authentication failure") {
        format!("{text}: response status code 401: unauthorized: authentication required")
    } else {
        text
    }
}

/// One chart's repository in a registry: `<repository URL>/<chart>`.
pub struct ChartRepository {
    /// `oci://host/path/chart`.
    pub url: String,
    registry: Registry,
}

impl ChartRepository {
    /// The client for `chart` under the normalised repository URL.
    pub async fn connect(
        normalized_url: &str,
        chart: &str,
        opts: &ClientOptions,
    ) -> Result<Self, String> {
        let url = format!("{}/{chart}", normalized_url.trim_end_matches('/'));
        let repo = Repository::parse(&url)?;
        let registry = Registry::connect(&repo, opts)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Self { url, registry })
    }

    /// The chart version `version` names: itself when it is a version (no listing), else the
    /// best tag. Errors carry upstream's words.
    pub async fn resolve(&self, chart: &str, version: &str) -> Result<String, String> {
        if chart_oci::concrete_version(version).is_some() {
            return Ok(version.to_string());
        }
        let tags = self.registry.list_tags().await.map_err(|e| {
            format!(
                "could not get tags for \"{chart}\": could not fetch tags for \"{}\": {}",
                self.url,
                registry_error(&e)
            )
        })?;
        let versions = chart_oci::chart_versions(&tags);
        if versions.is_empty() {
            return Err(format!(
                "could not get tags for \"{chart}\": unable to locate any tags in provided repository: {}",
                self.url
            ));
        }
        chart_oci::match_version(&versions, version).map_err(|e| e.to_string())
    }

    /// cosign verification of the chart `version` with public keys, offline as upstream's
    /// verifier for keys: the signature image `sha256-<hex>.sig` of the chart's manifest, any
    /// simple-signing layer verified by any key and claiming that digest.
    pub async fn verify_cosign(
        &self,
        version: &str,
        keys: &[crate::oci::cosign::PublicKey],
    ) -> Result<(), String> {
        use crate::oci::cosign;
        let tag = chart_oci::tag_for_version(version);
        let url = format!("{}:{version}", self.url);
        let digest = self
            .registry
            .tag_digest(&tag)
            .await
            .map_err(|e| format!("failed to verify {url}: {}", registry_error(&e)))?;
        let reference = format!(
            "{}:{tag}",
            self.url.strip_prefix("oci://").unwrap_or(&self.url)
        );
        let no_match = || format!("no matching signatures were found for '{reference}'");
        if keys.is_empty() {
            return Err(no_match());
        }
        // No signature image, or one that cannot be read: nothing matches (as cosign).
        let Ok(raw) = self
            .registry
            .tag_manifest(&cosign::signature_tag(&digest))
            .await
        else {
            return Err(no_match());
        };
        let Ok(manifest) = serde_json::from_slice::<OciImageManifest>(&raw) else {
            return Err(no_match());
        };
        for layer in manifest
            .layers
            .iter()
            .filter(|l| l.media_type == cosign::SIMPLE_SIGNING_MEDIA_TYPE)
        {
            let Some(sig) = layer
                .annotations
                .as_ref()
                .and_then(|a| a.get(cosign::SIGNATURE_ANNOTATION))
            else {
                continue;
            };
            let Ok(payload) = self.registry.blob_bytes(layer, MAX_SIGNATURE_PAYLOAD).await else {
                continue;
            };
            if keys
                .iter()
                .any(|k| cosign::verify_layer(k, &payload, sig, &digest).is_ok())
            {
                return Ok(());
            }
        }
        Err(no_match())
    }

    /// The chart layer of `version` (at most `max` bytes), as Helm's client pulls it: the
    /// manifest must have the Helm config and a chart layer.
    pub async fn pull(&self, version: &str, max: u64) -> Result<Vec<u8>, String> {
        let tag = chart_oci::tag_for_version(version);
        let reference = format!("{}:{version}", self.url);
        let fail = |e: String| format!("failed to get '{reference}': {e}");
        let raw = self
            .registry
            .tag_manifest(&tag)
            .await
            .map_err(|e| fail(registry_error(&e)))?;
        let manifest: OciImageManifest =
            serde_json::from_slice(&raw).map_err(|e| fail(format!("invalid manifest: {e}")))?;
        let has_config = manifest.config.media_type == chart_oci::CONFIG_MEDIA_TYPE;
        let layer = manifest.layers.iter().rev().find(|l| {
            l.media_type == chart_oci::CHART_LAYER_MEDIA_TYPE
                || l.media_type == chart_oci::LEGACY_CHART_LAYER_MEDIA_TYPE
        });
        if manifest.layers.is_empty() {
            return Err(fail(format!(
                "manifest does not contain minimum number of descriptors (2), descriptors found: {}",
                usize::from(has_config)
            )));
        }
        if !has_config {
            return Err(fail(format!(
                "could not load config with mediatype {}",
                chart_oci::CONFIG_MEDIA_TYPE
            )));
        }
        let Some(layer) = layer else {
            return Err(fail(format!(
                "manifest does not contain a layer with mediatype {}",
                chart_oci::CHART_LAYER_MEDIA_TYPE
            )));
        };
        self.registry.blob_bytes(layer, max).await.map_err(|e| {
            fail(format!(
                "unable to retrieve blob with digest {}: {}",
                layer.digest,
                registry_error(&e)
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn credentials_as_upstream_reads_secrets() {
        let auth = base64::engine::general_purpose::STANDARD.encode("bob:pw2");
        let cfg = format!(
            r#"{{"auths":{{"https://reg.example:5000/v1/":{{"auth":"{auth}"}},"other.io":{{"username":"a","password":"b"}}}}}}"#
        );
        let d = data(&[(".dockerconfigjson", &cfg)]);
        let c = credentials_from_secret("reg.example:5000", "s", &d)
            .unwrap()
            .unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("bob", "pw2"));
        let c = credentials_from_secret("other.io", "s", &d)
            .unwrap()
            .unwrap();
        assert_eq!(c.username, "a");
        assert_eq!(
            credentials_from_secret("nope.io", "s", &d).unwrap_err(),
            "no auth config for 'nope.io' in the docker-registry Secret 's'"
        );
        let basic = data(&[("username", "u"), ("password", "p")]);
        assert!(credentials_from_secret("x", "s", &basic).unwrap().is_some());
        assert!(
            credentials_from_secret("x", "s", &data(&[]))
                .unwrap()
                .is_none()
        );
        assert_eq!(
            credentials_from_secret("x", "s", &data(&[("username", "u")])).unwrap_err(),
            "invalid 's' secret data: required fields 'username' and 'password'"
        );
    }
}
