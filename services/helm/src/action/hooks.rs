//! Helm v4's hook execution (`execHook`): the hooks of one event sorted by weight then name;
//! for each, the `before-hook-creation` policy (the default when a hook names none) deletes a
//! leftover object, the hook's objects are created by server-side apply, its last run is
//! recorded `Running` in the release, and the objects are watched until done (Jobs and Pods
//! to completion, other kinds at once). A failure marks the hook `Failed`, deletes it under
//! `hook-failed` and the hooks already run under `hook-succeeded`; after a successful event
//! every hook is deleted under `hook-succeeded`, newest first.

use std::time::Duration;

use ferroflux_helm::release::{HookExecution, Release};
use ferroflux_ssa::{ApplyOptions, DeleteOptions, ObjMetadata, WaitOptions};

use super::{Helm, ids, manifest_objects, now};

pub const BEFORE_HOOK_CREATION: &str = "before-hook-creation";
pub const HOOK_SUCCEEDED: &str = "hook-succeeded";
pub const HOOK_FAILED: &str = "hook-failed";

impl Helm {
    async fn hook_ids(&self, rel: &Release, i: usize) -> Result<Vec<ObjMetadata>, String> {
        let h = &rel.hooks[i];
        let objects = manifest_objects(&self.manager, &h.manifest, &rel.namespace)
            .await
            .map_err(|e| {
                format!(
                    "unable to build kubernetes object for deleting hook {}: {e}",
                    h.path
                )
            })?;
        Ok(ids(&objects))
    }

    /// Deletes the hook's objects when it carries `policy` (never a CRD), then waits for them
    /// to be gone.
    async fn delete_hook_by_policy(
        &self,
        rel: &Release,
        i: usize,
        policy: &str,
        timeout: Duration,
    ) -> Result<(), String> {
        let h = &rel.hooks[i];
        if h.kind == "CustomResourceDefinition" || !h.delete_policies.iter().any(|p| p == policy) {
            return Ok(());
        }
        let objects = self.hook_ids(rel, i).await?;
        self.manager
            .delete_all(objects.clone(), &DeleteOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        self.manager
            .wait_for_termination(
                &objects,
                &WaitOptions {
                    interval: self.poll,
                    timeout,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| e.to_string())
    }

    /// Runs the hooks of `event` of `rel` (whose record is updated as each starts); the
    /// hooks' last runs and default delete policies are left in `rel` for the caller's final
    /// write.
    pub async fn exec_hooks(
        &self,
        rel: &mut Release,
        event: &str,
        timeout: Duration,
    ) -> Result<(), String> {
        let mut order: Vec<usize> = rel
            .hooks
            .iter()
            .enumerate()
            .filter(|(_, h)| h.events.iter().any(|e| e == event))
            .map(|(i, _)| i)
            .collect();
        // stable: hooks of equal weight and name keep the kind order of the render
        order.sort_by(|&a, &b| {
            let (x, y) = (&rel.hooks[a], &rel.hooks[b]);
            x.weight.cmp(&y.weight).then_with(|| x.name.cmp(&y.name))
        });
        for (n, &i) in order.iter().enumerate() {
            if rel.hooks[i].delete_policies.is_empty() {
                rel.hooks[i].delete_policies = vec![BEFORE_HOOK_CREATION.to_string()];
            }
            self.delete_hook_by_policy(rel, i, BEFORE_HOOK_CREATION, timeout)
                .await?;
            let path = rel.hooks[i].path.clone();
            let objects = manifest_objects(&self.manager, &rel.hooks[i].manifest, &rel.namespace)
                .await
                .map_err(|e| {
                    format!("unable to build kubernetes object for {event} hook {path}: {e}")
                })?;
            let hook_ids = ids(&objects);
            rel.hooks[i].last_run = HookExecution {
                started_at: Some(now()),
                completed_at: None,
                phase: "Running".into(),
            };
            self.record(rel).await;
            rel.hooks[i].last_run.phase = "Unknown".into();
            if let Err(e) = self
                .manager
                .apply_all_staged(objects, &ApplyOptions::default())
                .await
            {
                rel.hooks[i].last_run.completed_at = Some(now());
                rel.hooks[i].last_run.phase = "Failed".into();
                return Err(format!("warning: Hook {event} {path} failed: {e}"));
            }
            let watched = self.wait(&hook_ids, timeout, true).await;
            rel.hooks[i].last_run.completed_at = Some(now());
            if let Err(e) = watched {
                rel.hooks[i].last_run.phase = "Failed".into();
                if let Err(de) = self
                    .delete_hook_by_policy(rel, i, HOOK_FAILED, timeout)
                    .await
                {
                    tracing::warn!("error deleting the hook resource on hook failure: {de}");
                }
                for &j in &order[..n] {
                    self.delete_hook_by_policy(rel, j, HOOK_SUCCEEDED, timeout)
                        .await?;
                }
                return Err(e);
            }
            rel.hooks[i].last_run.phase = "Succeeded".into();
        }
        for &i in order.iter().rev() {
            self.delete_hook_by_policy(rel, i, HOOK_SUCCEEDED, timeout)
                .await?;
        }
        Ok(())
    }
}
