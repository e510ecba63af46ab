//! Preparing a cluster for the controllers: the Flux CRDs (generated from crates/api) and the
//! `flux-system` namespace, server-side applied so that repeating it is harmless.

use anyhow::Context;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};

/// Installs (or updates) every Flux CRD and the `flux-system` namespace.
pub async fn install_crds(client: &Client) -> anyhow::Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let pp = PatchParams::apply("ferroflux").force();
    for crd in ferroflux_api::crdgen::crd_objects().context("generating the CRDs")? {
        crds.patch(&crd.name_any(), &pp, &Patch::Apply(&crd))
            .await
            .with_context(|| format!("installing CRD {}", crd.name_any()))?;
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flux-system"}
    }))?;
    namespaces
        .patch("flux-system", &pp, &Patch::Apply(&ns))
        .await
        .context("creating flux-system")?;
    Ok(())
}
