//! The Kubernetes client a Kustomization applies with: the controller's own, one impersonating
//! `spec.serviceAccountName` (or `--default-service-account`), or one for a remote cluster from
//! `spec.kubeConfig.secretRef`.

use std::collections::HashMap;
use std::sync::Mutex;

use ferroflux_api::Kustomization;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config, ResourceExt};

/// Builds and caches clients.
pub struct Clients {
    base: Config,
    default: Client,
    default_service_account: String,
    insecure_kubeconfig_exec: bool,
    insecure_kubeconfig_tls: bool,
    impersonating: Mutex<HashMap<String, Client>>,
}

/// The service account a Kustomization acts as, if any.
pub fn service_account(obj: &Kustomization, default: &str) -> Option<String> {
    obj.spec
        .service_account_name
        .clone()
        .filter(|s| !s.is_empty())
        .or_else(|| (!default.is_empty()).then(|| default.to_string()))
}

impl Clients {
    pub fn new(
        base: Config,
        default: Client,
        default_service_account: String,
        insecure_kubeconfig_exec: bool,
        insecure_kubeconfig_tls: bool,
    ) -> Self {
        Self {
            base,
            default,
            default_service_account,
            insecure_kubeconfig_exec,
            insecure_kubeconfig_tls,
            impersonating: Mutex::new(HashMap::new()),
        }
    }

    /// The controller's own client (reads of sources, dependencies, variables).
    pub fn own(&self) -> Client {
        self.default.clone()
    }

    /// Whether the account to impersonate exists (upstream skips pruning on deletion if not).
    pub async fn can_impersonate(&self, obj: &Kustomization) -> bool {
        if obj.spec.kube_config.is_some() {
            return true;
        }
        let Some(sa) = service_account(obj, &self.default_service_account) else {
            return true;
        };
        let ns = obj.namespace().unwrap_or_default();
        let api: Api<ServiceAccount> = Api::namespaced(self.default.clone(), &ns);
        matches!(api.get_opt(&sa).await, Ok(Some(_)))
    }

    /// The client to apply, prune and health-check with.
    pub async fn for_kustomization(&self, obj: &Kustomization) -> Result<Client, String> {
        let ns = obj.namespace().unwrap_or_default();
        let sa = service_account(obj, &self.default_service_account);
        if let Some(kc) = &obj.spec.kube_config {
            let Some(secret_ref) = &kc.secret_ref else {
                return Err(
                    "kubeConfig.configMapRef (cloud provider authentication) is not supported by ferroflux yet"
                        .into(),
                );
            };
            let secrets: Api<Secret> = Api::namespaced(self.default.clone(), &ns);
            let secret = secrets.get(&secret_ref.name).await.map_err(|e| {
                format!(
                    "unable to read KubeConfig secret '{ns}/{}': {e}",
                    secret_ref.name
                )
            })?;
            let data = secret.data.unwrap_or_default();
            let bytes = match secret_ref.key.as_deref().filter(|k| !k.is_empty()) {
                Some(key) => data.get(key),
                None => data.get("value").or_else(|| data.get("value.yaml")),
            }
            .ok_or_else(|| {
                format!(
                    "KubeConfig secret '{ns}/{}' does not contain a 'value' or 'value.yaml' key",
                    secret_ref.name
                )
            })?;
            let text = String::from_utf8_lossy(&bytes.0);
            let kubeconfig = Kubeconfig::from_yaml(&text).map_err(|e| {
                format!(
                    "failed to parse KubeConfig secret '{ns}/{}': {e}",
                    secret_ref.name
                )
            })?;
            for user in &kubeconfig.auth_infos {
                if let Some(auth) = &user.auth_info
                    && auth.exec.is_some()
                    && !self.insecure_kubeconfig_exec
                {
                    return Err(format!(
                        "KubeConfig secret '{ns}/{}' uses an exec credential plugin, which is disabled (enable with --insecure-kubeconfig-exec)",
                        secret_ref.name
                    ));
                }
            }
            for cluster in &kubeconfig.clusters {
                if let Some(c) = &cluster.cluster
                    && c.insecure_skip_tls_verify == Some(true)
                    && !self.insecure_kubeconfig_tls
                {
                    return Err(format!(
                        "KubeConfig secret '{ns}/{}' disables TLS verification, which is not allowed (enable with --insecure-kubeconfig-tls)",
                        secret_ref.name
                    ));
                }
            }
            let mut config =
                Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                    .await
                    .map_err(|e| format!("failed to load KubeConfig secret: {e}"))?;
            if let Some(sa) = obj
                .spec
                .service_account_name
                .as_deref()
                .filter(|s| !s.is_empty())
            {
                config.auth_info.impersonate = Some(format!("system:serviceaccount:{ns}:{sa}"));
            }
            return Client::try_from(config)
                .map_err(|e| format!("failed to build kube client: {e}"));
        }
        let Some(sa) = sa else {
            return Ok(self.default.clone());
        };
        let user = format!("system:serviceaccount:{ns}:{sa}");
        if let Ok(cache) = self.impersonating.lock()
            && let Some(c) = cache.get(&user)
        {
            return Ok(c.clone());
        }
        let mut config = self.base.clone();
        config.auth_info.impersonate = Some(user.clone());
        let client =
            Client::try_from(config).map_err(|e| format!("failed to build kube client: {e}"))?;
        if let Ok(mut cache) = self.impersonating.lock() {
            cache.insert(user, client.clone());
        }
        Ok(client)
    }
}
