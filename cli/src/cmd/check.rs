//! `ferroflux check`: the API server is reachable and recent enough, the controllers run and are
//! ready (their Deployments in the namespace, or — for the embedded demo — the processes `up`
//! started, found through the `state.json` beside its kubeconfig), and every Flux CRD is
//! installed and serves the version ferroflux speaks. Output and exit code as `flux check`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::anyhow;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams};
use serde_json::Value;

use super::cluster::{Cluster, ClusterArgs, describe, run, with_timeout};
use super::kinds;
use super::log;

/// `ferroflux check`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  # Check the cluster before installing
  ferroflux check --pre

  # Check an installation (or the embedded demo: KUBECONFIG=.ferroflux/kubeconfig)
  ferroflux check")]
pub struct CheckArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Only run the pre-installation checks.
    #[arg(long)]
    pub pre: bool,
    /// How often to poll the controllers' readiness.
    #[arg(long, default_value = "5s", value_parser = ferroflux_api::duration::parse_go_duration)]
    pub poll_interval: Duration,
}

const PART_OF: &str = "app.kubernetes.io/part-of=flux";
const MIN_KUBERNETES: (u64, u64, u64) = (1, 33, 0);

/// `v1.33.0-x` → ((1,33,0), "1.33.0-x").
fn parse_version(git: &str) -> Option<((u64, u64, u64), String)> {
    let v = git.trim_start_matches('v');
    let core = v.split(['-', '+']).next()?;
    let mut it = core.split('.').map(|p| p.parse::<u64>().ok());
    let t = (
        it.next()??,
        it.next()?.unwrap_or(0),
        it.next().flatten().unwrap_or(0),
    );
    Some((t, v.to_string()))
}

/// The `state.json` that `ferroflux up` wrote beside the kubeconfig in use, if any.
pub fn up_state_for(args: &ClusterArgs) -> Option<Value> {
    let kubeconfig: PathBuf = match &args.kubeconfig {
        Some(p) => p.clone(),
        None => std::env::split_paths(&std::env::var_os("KUBECONFIG")?).next()?,
    };
    let state = kubeconfig.parent()?.join("state.json");
    let v: Value = serde_json::from_slice(&std::fs::read(state).ok()?).ok()?;
    let same = v
        .get("kubeconfig")
        .and_then(Value::as_str)
        .map(PathBuf::from)
        .and_then(|p| std::fs::canonicalize(p).ok())
        == std::fs::canonicalize(&kubeconfig).ok();
    same.then_some(v)
}

async fn kubernetes_check(cluster: &Cluster) -> bool {
    let info = match cluster.client.apiserver_version().await {
        Ok(i) => i,
        Err(e) => {
            log::failure(format!("Kubernetes API call failed: {}", describe(&e)));
            return false;
        }
    };
    let Some((v, text)) = parse_version(&info.git_version) else {
        log::failure("Kubernetes version can't be determined");
        return false;
    };
    if v < MIN_KUBERNETES {
        log::failure(format!(
            "Kubernetes version {} does not match >=1.33.0-0",
            info.git_version
        ));
        return false;
    }
    log::success(format!("Kubernetes {text} >=1.33.0-0"));
    true
}

async fn version_check(cluster: &Cluster) -> bool {
    let crds: Api<CustomResourceDefinition> = Api::all(cluster.client.clone());
    match crds
        .get_metadata("gitrepositories.source.toolkit.fluxcd.io")
        .await
    {
        Ok(m) => {
            let labels = m.metadata.labels.unwrap_or_default();
            let version = labels
                .get("app.kubernetes.io/version")
                .cloned()
                .unwrap_or_default();
            let distribution = match labels.get("app.kubernetes.io/part-of") {
                Some(p) => format!("{p}-{version}"),
                None => version,
            };
            if !distribution.is_empty() {
                log::success(format!("distribution: {distribution}"));
            }
            let bootstrapped = labels.contains_key("kustomize.toolkit.fluxcd.io/name")
                || labels.contains_key("kustomize.toolkit.fluxcd.io/namespace");
            log::success(format!("bootstrapped: {bootstrapped}"));
            true
        }
        Err(e) => {
            log::failure(format!("checking failed: {}", describe(&e)));
            false
        }
    }
}

/// The controllers' Deployments (part-of=flux) Ready, or under `up` its processes' `/readyz`.
async fn components_check(cluster: &Cluster, args: &CheckArgs) -> bool {
    let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let list = match deployments
        .list(&ListParams::default().labels(PART_OF))
        .await
    {
        Ok(l) => l.items,
        Err(_) => Vec::new(),
    };
    if list.is_empty() {
        if let Some(state) = up_state_for(&args.cluster) {
            return processes_check(&state).await;
        }
        log::failure(format!(
            "no controllers found in the '{}' namespace with the label selector '{PART_OF}'",
            cluster.namespace
        ));
        return false;
    }
    let mut ok = true;
    let mut items = list;
    items.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    for d in items {
        let name = d.metadata.name.clone().unwrap_or_default();
        // poll until Current or the command's timeout
        let mut current = d.clone();
        loop {
            let v = serde_json::to_value(&current).unwrap_or_default();
            let mut v = v;
            v["apiVersion"] = "apps/v1".into();
            v["kind"] = "Deployment".into();
            if ferroflux_runtime::kstatus::compute(&v).status
                == ferroflux_runtime::kstatus::Status::Current
            {
                log::success(format!("{name}: deployment ready"));
                break;
            }
            tokio::time::sleep(args.poll_interval).await;
            match deployments.get(&name).await {
                Ok(d) => current = d,
                Err(e) => {
                    log::failure(format!("{name}: deployment not found ({})", describe(&e)));
                    ok = false;
                    break;
                }
            }
        }
        for c in d
            .spec
            .and_then(|s| s.template.spec)
            .map(|s| s.containers)
            .unwrap_or_default()
        {
            log::action(c.image.unwrap_or_default());
        }
    }
    ok
}

/// The embedded demo's controllers: each process alive and its `/readyz` answering 200.
async fn processes_check(state: &Value) -> bool {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_default();
    let mut ok = true;
    let mut controllers: Vec<&Value> = state
        .get("controllers")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    controllers.sort_by_key(|c| {
        c.get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    });
    if controllers.is_empty() {
        log::failure("no controllers found in the state of `ferroflux up`");
        return false;
    }
    for c in controllers {
        let name = c.get("name").and_then(Value::as_str).unwrap_or_default();
        let health = c.get("health").and_then(Value::as_str).unwrap_or_default();
        let pid = c.get("pid").and_then(Value::as_u64).unwrap_or(0);
        let ready = match http.get(format!("http://{health}/readyz")).send().await {
            Ok(r) => r.status().is_success(),
            Err(_) => false,
        };
        if ready {
            log::success(format!("{name}: process ready"));
        } else {
            log::failure(format!("{name}: process not ready"));
            ok = false;
        }
        log::action(format!(
            "ferroflux {} controller {name} (pid {pid}, embedded by up)",
            env!("CARGO_PKG_VERSION")
        ));
    }
    ok
}

/// Every Flux CRD: installed, labelled part-of=flux, serving the version ferroflux uses.
async fn crds_check(cluster: &Cluster) -> bool {
    let crds: Api<CustomResourceDefinition> = Api::all(cluster.client.clone());
    let list = match crds.list(&ListParams::default().labels(PART_OF)).await {
        Ok(l) => l.items,
        Err(e) => {
            log::failure(format!("listing CRDs failed: {}", describe(&e)));
            return false;
        }
    };
    if list.is_empty() {
        log::failure(format!("no crds found with the label selector '{PART_OF}'"));
        return false;
    }
    let mut ok = true;
    for crd in &list {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let stored = crd
            .status
            .as_ref()
            .and_then(|s| s.stored_versions.clone())
            .unwrap_or_default();
        match stored.last() {
            Some(v) => log::success(format!("{name}/{v}")),
            None => {
                ok = false;
                log::failure(format!("no stored versions for {name}"));
            }
        }
    }
    for k in kinds::ALL {
        let name = format!("{}.{}", k.plural, k.group);
        match list
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some(name.as_str()))
        {
            None => {
                ok = false;
                log::failure(format!("{name}: CRD not installed"));
            }
            Some(crd) => {
                let served = crd
                    .spec
                    .versions
                    .iter()
                    .any(|v| v.name == k.version && v.served);
                if !served {
                    ok = false;
                    log::failure(format!("{name}: version {} not served", k.version));
                }
            }
        }
    }
    ok
}

/// Runs `ferroflux check`; a failed check exits 1 after `✗ check failed`.
pub fn command(args: CheckArgs) -> anyhow::Result<()> {
    let timeout = args.cluster.timeout;
    run(with_timeout(timeout, async move {
        log::action("checking prerequisites");
        let cluster = args
            .cluster
            .connect()
            .await
            .map_err(|e| anyhow!("Kubernetes client initialization failed: {e}"))?;
        let mut failed = !kubernetes_check(&cluster).await;
        if args.pre {
            if failed {
                return Err(anyhow!("prerequisites checks failed"));
            }
            log::success("prerequisites checks passed");
            return Ok(());
        }
        log::action("checking version in cluster");
        failed |= !version_check(&cluster).await;
        log::action("checking controllers");
        failed |= !components_check(&cluster, &args).await;
        log::action("checking crds");
        failed |= !crds_check(&cluster).await;
        if failed {
            return Err(anyhow!("check failed"));
        }
        log::success("all checks passed");
        Ok(())
    }))
}

#[cfg(test)]
mod tests {
    use super::parse_version;

    #[test]
    fn versions() {
        assert_eq!(
            parse_version("v1.33.0-ferroflux-testenv"),
            Some(((1, 33, 0), "1.33.0-ferroflux-testenv".into()))
        );
        assert_eq!(parse_version("v1.29.3").map(|v| v.0), Some((1, 29, 3)));
    }
}
