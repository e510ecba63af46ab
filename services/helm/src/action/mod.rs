//! Helm v4's release actions on a cluster, as helm-controller drives them: install, upgrade,
//! rollback, uninstall, test, with hooks (`hooks.rs`), server-side apply through crates/ssa and
//! Helm's wait (kstatus; Failed objects end the wait early). Every record written goes
//! through [`ReleaseStorage`], whose observer the reconcile loop reads to keep `status.history`.
//!
//! The storage sequence of each action is Helm's: the new revision is created pending, then
//! hooks, objects and waits run, then the revision is marked deployed (the one before
//! superseded) or failed with Helm's description.

mod hooks;

use std::time::Duration;

use ferroflux_helm::release::{self as hr, Release, status};
use ferroflux_ssa::{
    ApplyOptions, DeleteOptions, ObjMetadata, Propagation, ResourceManager, WaitOptions, WaitStatus,
};
use serde_json::{Map, Value};

use crate::storage::ReleaseStorage;

/// API group of HelmRelease (labels of the release's objects).
const GROUP: &str = "helm.toolkit.fluxcd.io";

/// How an action waits for the release's objects.
#[derive(Clone, Copy, Debug)]
pub struct Wait {
    /// `disableWait`: no wait for the objects (hooks are still watched).
    pub disabled: bool,
    /// Wait for Jobs to complete too (`!disableWaitForJobs`).
    pub for_jobs: bool,
    pub timeout: Duration,
}

/// Options common to the actions that apply a release.
#[derive(Clone, Debug)]
pub struct ApplyArgs {
    pub wait: Wait,
    pub disable_hooks: bool,
    /// Recreate objects whose change is refused as immutable.
    pub force: bool,
    /// Delete the objects this action created when it fails.
    pub cleanup_on_fail: bool,
    /// Install: create the release namespace first when missing (`createNamespace`).
    pub create_namespace: bool,
}

/// The helm "library" bound to one release: the cluster, the storage namespace, and the
/// HelmRelease whose labels the objects get.
pub struct Helm {
    pub manager: ResourceManager,
    pub store: ReleaseStorage,
    pub poll: Duration,
    /// `(name, namespace)` of the HelmRelease (labels `helm.toolkit.fluxcd.io/name|namespace`).
    pub owner: (String, String),
}

fn now() -> String {
    hr::format_time(jiff::Timestamp::now())
}

/// Splits a manifest into objects, with the namespace of namespaced kinds defaulted to
/// `namespace` as Helm's kube client does.
pub async fn manifest_objects(
    manager: &ResourceManager,
    manifest: &str,
    namespace: &str,
) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for doc in manifest.split("\n---") {
        let doc = doc.trim_start_matches("---");
        let body: String = doc
            .lines()
            .filter(|l| !l.starts_with("# Source:"))
            .collect::<Vec<_>>()
            .join("\n");
        if body.trim().is_empty() {
            continue;
        }
        let mut v: Value = match ferroflux_helm::yaml::parse_yaml(&body) {
            Ok(t) => {
                let json = ferroflux_helm::yaml::to_json(&t, false, None)
                    .map_err(|e| format!("manifest: {e}"))?;
                serde_json::from_str(&json).map_err(|e| format!("manifest: {e}"))?
            }
            Err(e) => return Err(format!("manifest: {e}")),
        };
        if v.is_null() {
            continue;
        }
        let meta = ObjMetadata::of(&v).map_err(|e| e.to_string())?;
        if meta.namespace.is_empty() {
            let resolved = manager
                .discovery()
                .resolve(manager.client(), &meta)
                .await
                .map_err(|e| e.to_string())?;
            if resolved.namespaced
                && let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut)
            {
                m.insert("namespace".into(), Value::String(namespace.to_string()));
            }
        }
        out.push(v);
    }
    Ok(out)
}

fn meta_map<'a>(meta: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Map<String, Value>> {
    let e = meta.entry(key).or_insert_with(|| Value::Object(Map::new()));
    if !e.is_object() {
        *e = Value::Object(Map::new());
    }
    e.as_object_mut()
}

/// Helm's ownership metadata on every object of a release (`managed-by: Helm`,
/// `meta.helm.sh/release-name|namespace`) and the HelmRelease's labels.
pub fn set_release_metadata(objects: &mut [Value], rel: &Release, owner: &(String, String)) {
    for o in objects {
        let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) else {
            continue;
        };
        if let Some(l) = meta_map(meta, "labels") {
            l.insert("app.kubernetes.io/managed-by".into(), "Helm".into());
            l.insert(format!("{GROUP}/name"), owner.0.clone().into());
            l.insert(format!("{GROUP}/namespace"), owner.1.clone().into());
        }
        if let Some(a) = meta_map(meta, "annotations") {
            a.insert("meta.helm.sh/release-name".into(), rel.name.clone().into());
            a.insert(
                "meta.helm.sh/release-namespace".into(),
                rel.namespace.clone().into(),
            );
        }
    }
}

fn ids(objects: &[Value]) -> Vec<ObjMetadata> {
    objects
        .iter()
        .filter_map(|o| ObjMetadata::of(o).ok())
        .collect()
}

/// Whether the live object is done for Helm's hook watch (`WatchUntilReady`): Jobs and Pods
/// run to completion, every other kind is ready once created.
fn hook_status(v: &Value) -> Option<ferroflux_runtime::kstatus::Computed> {
    use ferroflux_runtime::kstatus::{Computed, Status};
    let done = |status, message: &str| {
        Some(Computed {
            status,
            message: message.to_string(),
        })
    };
    match v.get("kind").and_then(Value::as_str) {
        Some("Job") => {
            let conds = v
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let has = |t: &str| {
                conds.iter().any(|c| {
                    c.get("type").and_then(Value::as_str) == Some(t)
                        && c.get("status").and_then(Value::as_str) == Some("True")
                })
            };
            if has("Complete") {
                done(Status::Current, "Job Completed")
            } else if has("Failed") {
                done(Status::Failed, "Job Failed")
            } else {
                done(Status::InProgress, "Job in progress")
            }
        }
        Some("Pod") => match v.pointer("/status/phase").and_then(Value::as_str) {
            Some("Succeeded") => done(Status::Current, "Pod has completed successfully"),
            Some("Failed") => done(Status::Failed, "Pod has completed, but not successfully"),
            _ => done(Status::InProgress, "Pod in progress"),
        },
        _ => done(Status::Current, "Resource is current"),
    }
}

impl Helm {
    /// Helm's status waiter: polls until every object is Current, or Failed (terminal, it
    /// will not change by waiting), or the timeout; then lists the objects not Current as
    /// `resource <Kind>/<ns>/<name> not ready. status: <S>, message: <M>`.
    pub async fn wait(
        &self,
        objects: &[ObjMetadata],
        timeout: Duration,
        hooks: bool,
    ) -> Result<(), String> {
        if objects.is_empty() {
            return Ok(());
        }
        let opts = WaitOptions {
            interval: self.poll,
            timeout,
            custom_status: hooks
                .then(|| std::sync::Arc::new(hook_status) as ferroflux_ssa::CustomStatus),
            ..Default::default()
        };
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let mut statuses = Vec::with_capacity(objects.len());
            for o in objects {
                statuses.push(self.manager.poll_status(o, &opts).await);
            }
            let settled = statuses
                .iter()
                .all(|s| matches!(s.status, WaitStatus::Current | WaitStatus::Failed));
            let timed_out = tokio::time::Instant::now() >= deadline;
            if settled || timed_out {
                let mut errs: Vec<String> = objects
                    .iter()
                    .zip(&statuses)
                    .filter(|(_, s)| s.status != WaitStatus::Current)
                    .map(|(o, s)| {
                        let ns = &o.namespace;
                        format!(
                            "resource {}/{ns}/{} not ready. status: {}, message: {}",
                            o.kind,
                            o.name,
                            s.status,
                            s.error.clone().unwrap_or_else(|| s.message.clone())
                        )
                    })
                    .collect();
                if timed_out && !settled {
                    errs.push("context deadline exceeded".into());
                }
                return if errs.is_empty() {
                    Ok(())
                } else {
                    Err(errs.join("\n"))
                };
            }
            tokio::time::sleep(
                self.poll
                    .min(deadline.saturating_duration_since(tokio::time::Instant::now())),
            )
            .await;
        }
    }

    /// Writes a record, logging a failure as Helm's `recordRelease` does.
    async fn record(&self, rel: &Release) {
        if let Err(e) = self.store.update(rel).await {
            tracing::warn!(
                "failed to update release {}.v{}: {e}",
                rel.name,
                rel.version
            );
        }
    }

    /// The objects of a release manifest with Helm's and the HelmRelease's metadata.
    pub async fn release_objects(&self, rel: &Release) -> Result<Vec<Value>, String> {
        let mut objects = manifest_objects(&self.manager, &rel.manifest, &rel.namespace).await?;
        set_release_metadata(&mut objects, rel, &self.owner);
        Ok(objects)
    }

    /// Helm's `KubeClient.Update(current, target)` with server-side apply: every target object
    /// applied, current objects missing from the target deleted. Returns the objects created.
    async fn update(
        &self,
        current: Option<&Release>,
        target: &Release,
        extra: Vec<Value>,
        force: bool,
        created: &mut Vec<ObjMetadata>,
    ) -> Result<Vec<ObjMetadata>, String> {
        let objects = self.release_objects(target).await?;
        let target_ids = ids(&objects);
        let mut all = extra;
        all.extend(objects);
        let apply = ApplyOptions {
            force,
            ..Default::default()
        };
        let (cs, res) = self.manager.apply_all_staged_partial(all, &apply).await;
        created.extend(
            cs.entries
                .iter()
                .filter(|e| e.action == ferroflux_ssa::Action::Created)
                .map(|e| e.object.clone()),
        );
        res.map_err(|e| e.to_string())?;
        if let Some(prev) = current {
            let old = manifest_objects(&self.manager, &prev.manifest, &prev.namespace).await?;
            let stale: Vec<ObjMetadata> = ids(&old)
                .into_iter()
                .filter(|o| !target_ids.iter().any(|n| n.same_object(o)))
                .collect();
            if !stale.is_empty() {
                self.manager
                    .delete_all(stale, &DeleteOptions::default())
                    .await
                    .map_err(|e| format!("failed to delete resources: {e}"))?;
            }
        }
        Ok(target_ids)
    }

    async fn wait_release(&self, ids: &[ObjMetadata], wait: &Wait) -> Result<(), String> {
        if wait.disabled {
            return Ok(());
        }
        let objs: Vec<ObjMetadata> = if wait.for_jobs {
            ids.to_vec()
        } else {
            ids.iter().filter(|o| o.kind != "Job").cloned().collect()
        };
        self.wait(&objs, wait.timeout, false).await
    }

    async fn cleanup(&self, created: Vec<ObjMetadata>) {
        if created.is_empty() {
            return;
        }
        if let Err(e) = self
            .manager
            .delete_all(created, &DeleteOptions::default())
            .await
        {
            tracing::warn!("cleanup on fail: {e}");
        }
    }

    /// `helm install`: `rel` (version set, rendered) stored pending-install, pre-install hooks,
    /// CRDs and objects applied, wait, post-install hooks, deployed; on failure the record is
    /// failed with `Release "<name>" failed: <err>` and the error returned.
    pub async fn install(
        &self,
        mut rel: Release,
        crds: Vec<Value>,
        args: &ApplyArgs,
    ) -> Result<Release, (Option<Release>, String)> {
        if args.create_namespace {
            self.create_namespace(&rel.namespace)
                .await
                .map_err(|e| (None, e))?;
        }
        rel.set_status(status::PENDING_INSTALL, "Initial install underway");
        self.store.create(&rel).await.map_err(|e| (None, e))?;
        match self.perform_install(&mut rel, crds, args).await {
            Ok(()) => {
                rel.set_status(status::DEPLOYED, "Install complete");
                self.record(&rel).await;
                Ok(rel)
            }
            Err(e) => {
                rel.set_status(
                    status::FAILED,
                    format!("Release {:?} failed: {e}", rel.name),
                );
                self.record(&rel).await;
                Err((Some(rel), e))
            }
        }
    }

    async fn perform_install(
        &self,
        rel: &mut Release,
        crds: Vec<Value>,
        args: &ApplyArgs,
    ) -> Result<(), String> {
        if !args.disable_hooks {
            self.exec_hooks(rel, "pre-install", args.wait.timeout)
                .await
                .map_err(|e| format!("failed pre-install: {e}"))?;
        }
        let ids = self
            .update(None, rel, crds, args.force, &mut Vec::new())
            .await?;
        self.wait_release(&ids, &args.wait).await?;
        if !args.disable_hooks {
            self.exec_hooks(rel, "post-install", args.wait.timeout)
                .await
                .map_err(|e| format!("failed post-install: {e}"))?;
        }
        Ok(())
    }

    /// `helm upgrade` of the release whose records are `history` (oldest first) to `rel`
    /// (version set, rendered): stored pending-upgrade, pre-upgrade hooks, objects applied
    /// (those gone from the chart deleted), wait, post-upgrade hooks; then the current release
    /// superseded and `rel` deployed. Failure: `Upgrade "<name>" failed: <err>`.
    pub async fn upgrade(
        &self,
        history: &[Release],
        mut rel: Release,
        crds: Vec<Value>,
        args: &ApplyArgs,
    ) -> Result<Release, (Option<Release>, String)> {
        let last = history.last();
        if let Some(l) = last
            && status::is_pending(l.status())
        {
            return Err((
                None,
                "another operation (install/upgrade/rollback) is in progress".into(),
            ));
        }
        // the deployed release, else the last one when it failed or was superseded
        let current = history
            .iter()
            .rev()
            .find(|r| r.status() == status::DEPLOYED)
            .or(last.filter(|l| l.status() == status::FAILED || l.status() == status::SUPERSEDED))
            .cloned();
        if let Some(i) = &mut rel.info {
            i.first_deployed = current
                .as_ref()
                .and_then(|c| c.info.as_ref())
                .and_then(|i| i.first_deployed.clone())
                .or(i.first_deployed.clone());
        }
        rel.set_status(status::PENDING_UPGRADE, "Preparing upgrade");
        self.store.create(&rel).await.map_err(|e| (None, e))?;
        let mut created = Vec::new();
        let outcome = self
            .perform_upgrade(&mut rel, current.as_ref(), crds, args, &mut created)
            .await;
        match outcome {
            Ok(()) => {
                if let Some(mut c) = current {
                    if let Some(i) = &mut c.info {
                        i.status = status::SUPERSEDED.into();
                    }
                    self.record(&c).await;
                }
                rel.set_status(status::DEPLOYED, "Upgrade complete");
                self.record(&rel).await;
                Ok(rel)
            }
            Err(e) => {
                if let Some(i) = &mut rel.info {
                    i.status = status::FAILED.into();
                    i.description = format!("Upgrade {:?} failed: {e}", rel.name);
                }
                self.record(&rel).await;
                if args.cleanup_on_fail {
                    self.cleanup(created).await;
                }
                Err((Some(rel), e))
            }
        }
    }

    async fn perform_upgrade(
        &self,
        rel: &mut Release,
        current: Option<&Release>,
        crds: Vec<Value>,
        args: &ApplyArgs,
        created: &mut Vec<ObjMetadata>,
    ) -> Result<(), String> {
        if !args.disable_hooks {
            self.exec_hooks(rel, "pre-upgrade", args.wait.timeout)
                .await
                .map_err(|e| format!("pre-upgrade hooks failed: {e}"))?;
        }
        let ids = self.update(current, rel, crds, args.force, created).await?;
        self.wait_release(&ids, &args.wait).await?;
        if !args.disable_hooks {
            self.exec_hooks(rel, "post-upgrade", args.wait.timeout)
                .await
                .map_err(|e| format!("post-upgrade hooks failed: {e}"))?;
        }
        Ok(())
    }

    /// `helm rollback <name> <version>`: a new revision copying the target's chart, values,
    /// manifest and hooks (`Rollback to <version>`), stored pending-rollback; pre-rollback
    /// hooks, objects applied, wait, post-rollback hooks; every deployed record superseded and
    /// the new one deployed. As Helm, a failing hook leaves the record pending-rollback.
    pub async fn rollback(
        &self,
        name: &str,
        version: i64,
        args: &ApplyArgs,
    ) -> Result<Release, String> {
        let history = self.store.history(name).await?;
        let current = history
            .last()
            .cloned()
            .ok_or_else(|| "release: not found".to_string())?;
        if status::is_pending(current.status()) {
            return Err("another operation (install/upgrade/rollback) is in progress".into());
        }
        let Some(previous) = history.iter().find(|r| r.version == version).cloned() else {
            return Err(format!("release has no {version} version"));
        };
        let mut target = Release {
            name: name.to_string(),
            namespace: current.namespace.clone(),
            chart: previous.chart.clone(),
            config: previous.config.clone(),
            info: Some(hr::Info {
                first_deployed: current.info.as_ref().and_then(|i| i.first_deployed.clone()),
                last_deployed: Some(now()),
                status: status::PENDING_ROLLBACK.into(),
                notes: previous
                    .info
                    .as_ref()
                    .map(|i| i.notes.clone())
                    .unwrap_or_default(),
                rollback_revision: version,
                description: format!("Rollback to {version}"),
                ..Default::default()
            }),
            version: current.version + 1,
            labels: previous.labels.clone(),
            manifest: previous.manifest.clone(),
            hooks: previous.hooks.clone(),
            apply_method: "ssa".into(),
        };
        self.store.create(&target).await?;
        if !args.disable_hooks {
            self.exec_hooks(&mut target, "pre-rollback", args.wait.timeout)
                .await?;
        }
        let mut current = current;
        let mut created = Vec::new();
        let ids = match self
            .update(
                Some(&current),
                &target,
                Vec::new(),
                args.force,
                &mut created,
            )
            .await
        {
            Ok(ids) => ids,
            Err(e) => {
                let msg = format!("Rollback {name:?} failed: {e}");
                if let Some(i) = &mut current.info {
                    i.status = status::SUPERSEDED.into();
                }
                target.set_status(status::FAILED, msg);
                self.record(&current).await;
                self.record(&target).await;
                if args.cleanup_on_fail {
                    self.cleanup(created).await;
                }
                return Err(e);
            }
        };
        if let Err(e) = self.wait_release(&ids, &args.wait).await {
            target.set_status(status::FAILED, format!("Release {name:?} failed: {e}"));
            self.record(&current).await;
            self.record(&target).await;
            return Err(format!("release {name} failed: {e}"));
        }
        if !args.disable_hooks {
            self.exec_hooks(&mut target, "post-rollback", args.wait.timeout)
                .await?;
        }
        for mut r in self
            .store
            .history(name)
            .await?
            .into_iter()
            .filter(|r| r.status() == status::DEPLOYED)
        {
            if let Some(i) = &mut r.info {
                i.status = status::SUPERSEDED.into();
            }
            self.record(&r).await;
        }
        if let Some(i) = &mut target.info {
            i.status = status::DEPLOYED.into();
        }
        self.store.update(&target).await?;
        Ok(target)
    }

    /// `helm uninstall`: pre-delete hooks, the release's objects deleted (and waited for),
    /// post-delete hooks; the records purged, or with `keep_history` the last one kept
    /// `uninstalled` and the deployed ones superseded. `Ok(None)`: no release.
    pub async fn uninstall(
        &self,
        name: &str,
        keep_history: bool,
        disable_hooks: bool,
        disable_wait: bool,
        propagation: Propagation,
        timeout: Duration,
    ) -> Result<Option<Release>, (Option<Release>, String)> {
        let history = self.store.history(name).await.map_err(|e| (None, e))?;
        let Some(mut rel) = history.last().cloned() else {
            return Ok(None);
        };
        if rel.status() == status::UNINSTALLED {
            if !keep_history {
                self.purge(&history).await.map_err(|e| (None, e))?;
                return Ok(Some(rel));
            }
            return Err((
                Some(rel),
                format!("the release named {name:?} is already deleted"),
            ));
        }
        if let Some(i) = &mut rel.info {
            i.status = status::UNINSTALLING.into();
            i.deleted = Some(now());
            i.description = "Deletion in progress (or silently failed)".into();
        }
        if !disable_hooks && let Err(e) = self.exec_hooks(&mut rel, "pre-delete", timeout).await {
            return Err((Some(rel), e));
        }
        self.record(&rel).await;
        let objects = manifest_objects(&self.manager, &rel.manifest, &rel.namespace)
            .await
            .map_err(|e| (Some(rel.clone()), e))?;
        let ids = ids(&objects);
        self.manager
            .delete_all(
                ids.clone(),
                &DeleteOptions {
                    propagation,
                    ..Default::default()
                },
            )
            .await
            .map_err(|_| {
                (
                    Some(rel.clone()),
                    format!("failed to delete release: {name}"),
                )
            })?;
        let mut errs = Vec::new();
        if !disable_wait
            && let Err(e) = self
                .manager
                .wait_for_termination(
                    &ids,
                    &WaitOptions {
                        interval: self.poll,
                        timeout,
                        ..Default::default()
                    },
                )
                .await
        {
            errs.push(e.to_string());
        }
        if !disable_hooks && let Err(e) = self.exec_hooks(&mut rel, "post-delete", timeout).await {
            errs.push(e);
        }
        if let Some(i) = &mut rel.info {
            i.status = status::UNINSTALLED.into();
            i.description = "Uninstallation complete".into();
        }
        if !keep_history {
            if let Err(e) = self.purge(&history).await {
                errs.push(format!("uninstall: Failed to purge the release: {e}"));
            }
        } else {
            self.record(&rel).await;
            for mut r in history
                .into_iter()
                .filter(|r| r.status() == status::DEPLOYED && r.version != rel.version)
            {
                if let Some(i) = &mut r.info {
                    i.status = status::SUPERSEDED.into();
                }
                self.record(&r).await;
            }
        }
        if !errs.is_empty() {
            return Err((
                Some(rel),
                format!(
                    "uninstallation completed with {} error(s): {}",
                    errs.len(),
                    errs.join("; ")
                ),
            ));
        }
        Ok(Some(rel))
    }

    async fn purge(&self, history: &[Release]) -> Result<(), String> {
        for r in history {
            self.store.delete(&r.name, r.version).await?;
        }
        Ok(())
    }

    /// `helm test`: the test hooks of the last release selected by the filters run (weights,
    /// delete policies); the record is updated with their last runs (skipped hooks first, as
    /// Helm reorders them). `Err((release, err))` when one failed.
    pub async fn test(
        &self,
        name: &str,
        excludes: &[String],
        includes: &[String],
        timeout: Duration,
    ) -> Result<Release, (Option<Release>, String)> {
        let mut rel = self
            .store
            .last(name)
            .await
            .map_err(|e| (None, e))?
            .ok_or_else(|| (None, "release: not found".to_string()))?;
        // Helm's filters: the excluded names first, then, with include filters, every hook
        // not included joins the skipped ones
        let mut skipped = Vec::new();
        if !excludes.is_empty() {
            let (out, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut rel.hooks)
                .into_iter()
                .partition(|h| excludes.contains(&h.name));
            skipped.extend(out);
            rel.hooks = keep;
        }
        if !includes.is_empty() {
            let (keep, out): (Vec<_>, Vec<_>) = std::mem::take(&mut rel.hooks)
                .into_iter()
                .partition(|h| includes.contains(&h.name));
            skipped.extend(out);
            rel.hooks = keep;
        }
        let res = self.exec_hooks(&mut rel, "test", timeout).await;
        let mut hooks = skipped;
        hooks.append(&mut rel.hooks);
        rel.hooks = hooks;
        let stored = self.store.update(&rel).await;
        match (res, stored) {
            (Err(e), _) => Err((Some(rel), e)),
            (Ok(()), Err(e)) => Err((Some(rel), e)),
            (Ok(()), Ok(())) => Ok(rel),
        }
    }

    /// Helm's `--create-namespace`: a Namespace labelled `name: <ns>`, created unless it
    /// exists.
    async fn create_namespace(&self, namespace: &str) -> Result<(), String> {
        let api: kube::Api<k8s_openapi::api::core::v1::Namespace> =
            kube::Api::all(self.manager.client().clone());
        let ns = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": namespace, "labels": {"name": namespace}},
        }))
        .map_err(|e| e.to_string())?;
        match api.create(&kube::api::PostParams::default(), &ns).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
            Err(e) => Err(format!("failed to create namespace {namespace}: {e}")),
        }
    }

    /// The CRDs of a chart as objects; with `only_missing` (policy `Create`) those already on
    /// the cluster are left out, as Helm never updates them then.
    pub async fn crds_to_apply(
        &self,
        crds: &[(String, String)],
        namespace: &str,
        only_missing: bool,
    ) -> Result<Vec<Value>, String> {
        let all = self.crd_objects(crds, namespace).await?;
        if !only_missing {
            return Ok(all);
        }
        let api: kube::Api<
            k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
        > = kube::Api::all(self.manager.client().clone());
        let mut out = Vec::new();
        for c in all {
            let name = c
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            match api.get_opt(&name).await {
                Ok(Some(_)) => {}
                Ok(None) => out.push(c),
                Err(e) => return Err(format!("failed to install CRD {name}: {e}")),
            }
        }
        Ok(out)
    }

    /// The CRDs of a chart as objects (`crds/`), for install with policy Create/CreateReplace.
    pub async fn crd_objects(
        &self,
        crds: &[(String, String)],
        namespace: &str,
    ) -> Result<Vec<Value>, String> {
        let mut out = Vec::new();
        for (path, text) in crds {
            let mut found = manifest_objects(&self.manager, text, namespace)
                .await
                .map_err(|e| format!("failed to install CRD {path}: {e}"))?;
            out.append(&mut found);
        }
        Ok(out)
    }
}
