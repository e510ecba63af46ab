//! helm-controller's atomic release (upstream `internal/reconcile`): the state of the release
//! (Absent, Locked, Unmanaged, Failed, OutOfSync, Untested, Drifted, InSync) is determined
//! from Helm's storage and `status.history`, an action is chosen for it (install, upgrade,
//! test, rollback or uninstall remediation, unlock, drift correction), run, and the loop starts
//! again until no action is left, an action type would run twice, or a remediation ran. The
//! conditions (Released, TestSuccess, Remediated, Drifted) are summarised into Ready.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ferroflux_api::HelmRelease;
use ferroflux_api::conditions::{self as cond, helm_reason, reason};
use ferroflux_api::duration::format_go;
use ferroflux_api::helmrelease::{
    CrdsPolicy, InstallRemediation, ReleaseAction, RemediationStrategy, Snapshot, StrategyName,
    UpgradeRemediation,
};
use ferroflux_helm::release::{self as hr, Release, ReleaseOptions, status};
use ferroflux_runtime::events::Severity;
use ferroflux_ssa::Propagation;
use kube::{Resource, ResourceExt};

use crate::action::{ApplyArgs, Helm, Wait};
use crate::drift::{self, Change};
use crate::helmrelease::{Desired, GROUP, HelmReleaseReconciler, Writer};
use crate::history::{self, full_name};

const FORCE_AT: &str = "reconcile.fluxcd.io/forceAt";
const RESET_AT: &str = "reconcile.fluxcd.io/resetAt";
const REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";

/// The release's state as upstream determines it.
#[derive(Debug)]
pub enum State {
    Absent(String),
    Locked(String),
    Unmanaged(String),
    OutOfSync(String),
    Drifted(Vec<Change>),
    Untested,
    InSync,
    Failed(String),
}

/// The kinds of action, for the loop's continue/stop rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Release,
    Remediate,
    Test,
    Unlock,
    DriftCorrection,
}

#[derive(Debug)]
enum Next {
    Install,
    Upgrade,
    Test,
    Rollback,
    UninstallRemediation,
    Unlock,
    CorrectDrift(Vec<Change>),
}

impl Next {
    fn kind(&self) -> Kind {
        match self {
            Next::Install | Next::Upgrade => Kind::Release,
            Next::Test => Kind::Test,
            Next::Rollback | Next::UninstallRemediation => Kind::Remediate,
            Next::Unlock => Kind::Unlock,
            Next::CorrectDrift(_) => Kind::DriftCorrection,
        }
    }
    fn name(&self) -> &'static str {
        match self {
            Next::Install => "install",
            Next::Upgrade => "upgrade",
            Next::Test => "test",
            Next::Rollback => "rollback",
            Next::UninstallRemediation => "uninstall",
            Next::Unlock => "unlock",
            Next::CorrectDrift(_) => "correct cluster drift",
        }
    }
}

/// How the atomic release ended.
#[derive(Debug)]
pub enum AtomicEnd {
    /// No action left.
    Done,
    /// Remediated or stopped before repeating an action: reconcile again soon.
    MustRequeue,
    /// `RetryOnFailure`: reconcile again after the interval.
    RetryAfter(Duration),
    /// Stalled (`RetriesExceeded`, `MissingRollbackTarget`): wait for a change.
    Stalled,
    /// An error that changed nothing in storage: retry with backoff.
    Error(String),
}

/// The active remediation: the install's or the upgrade's, after the last attempted action.
#[derive(Clone, Debug)]
enum Remediation {
    Install(InstallRemediation),
    Upgrade(UpgradeRemediation),
}

impl Remediation {
    fn failures(&self, w: &Writer) -> i64 {
        match self {
            Remediation::Install(_) => w.status.install_failures.unwrap_or(0),
            Remediation::Upgrade(_) => w.status.upgrade_failures.unwrap_or(0),
        }
    }
    fn increment(&self, w: &mut Writer) {
        let c = match self {
            Remediation::Install(_) => &mut w.status.install_failures,
            Remediation::Upgrade(_) => &mut w.status.upgrade_failures,
        };
        *c = Some(c.unwrap_or(0) + 1);
    }
    fn exhausted(&self, w: &Writer) -> bool {
        let n = self.failures(w);
        match self {
            Remediation::Install(r) => r.retries_exhausted(n),
            Remediation::Upgrade(r) => r.retries_exhausted(n),
        }
    }
    fn remediate_last_failure(&self) -> bool {
        match self {
            Remediation::Install(r) => r.remediate_last_failure(),
            Remediation::Upgrade(r) => r.remediate_last_failure(),
        }
    }
    fn ignore_test_failures(&self, default: bool) -> bool {
        match self {
            Remediation::Install(r) => r.ignore_test_failures_or(default),
            Remediation::Upgrade(r) => r.ignore_test_failures_or(default),
        }
    }
    fn strategy(&self) -> RemediationStrategy {
        match self {
            Remediation::Install(_) => RemediationStrategy::Uninstall,
            Remediation::Upgrade(r) => r.strategy(),
        }
    }
    fn uninstall_after_upgrade(&self) -> bool {
        matches!(self, Remediation::Upgrade(r) if r.strategy() == RemediationStrategy::Uninstall)
    }
}

fn active_remediation(obj: &HelmRelease, w: &Writer) -> Option<Remediation> {
    match w.status.last_attempted_release_action? {
        ReleaseAction::Install => Some(Remediation::Install(obj.install().remediation())),
        ReleaseAction::Upgrade => Some(Remediation::Upgrade(obj.upgrade().remediation())),
    }
}

/// The retry interval when the last action's strategy is `RetryOnFailure`.
fn active_retry(obj: &HelmRelease, w: &Writer) -> Option<Duration> {
    match w.status.last_attempted_release_action? {
        ReleaseAction::Install => obj
            .install()
            .strategy
            .filter(|s| s.name == StrategyName::RetryOnFailure)
            .map(|s| s.effective_retry_interval()),
        ReleaseAction::Upgrade => obj
            .upgrade()
            .strategy
            .filter(|s| s.name == StrategyName::RetryOnFailure)
            .map(|s| s.effective_retry_interval()),
    }
}

fn annotation<'a>(obj: &'a HelmRelease, key: &str) -> Option<&'a str> {
    obj.meta()
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

/// `meta.ShouldHandleForceRequest`: `forceAt` equal to `requestedAt` and not handled yet
/// (marked handled).
fn should_handle_force(obj: &HelmRelease, w: &mut Writer) -> bool {
    match (annotation(obj, FORCE_AT), annotation(obj, REQUESTED_AT)) {
        (Some(f), Some(r)) if f == r && w.status.last_handled_force_at.as_deref() != Some(f) => {
            w.status.last_handled_force_at = Some(f.to_string());
            true
        }
        _ => false,
    }
}

/// `ShouldHandleResetRequest`, as the force request but for `resetAt`.
pub fn should_handle_reset(obj: &HelmRelease, w: &mut Writer) -> bool {
    match (annotation(obj, RESET_AT), annotation(obj, REQUESTED_AT)) {
        (Some(f), Some(r)) if f == r && w.status.last_handled_reset_at.as_deref() != Some(f) => {
            w.status.last_handled_reset_at = Some(f.to_string());
            true
        }
        _ => false,
    }
}

fn bump(c: &mut Option<i64>) {
    *c = Some(c.unwrap_or(0) + 1);
}

fn is_true(w: &Writer, t: &str) -> bool {
    w.condition(t).is_some_and(|c| c.status == cond::TRUE)
}

/// upstream's `replaceCondition`: the `target` condition becomes `replacement`.
fn replace_condition(w: &mut Writer, target: &str, replacement: &str, reason: &str, msg: &str) {
    if w.condition(target).is_some() {
        w.delete(target);
        w.mark(replacement, cond::TRUE, reason, msg);
    }
}

/// Ready from Remediated, TestSuccess (when tests are enabled and failures count) and
/// Released: the newest, then the first in that order; a Remediated one means not ready.
pub fn summarize(obj: &HelmRelease, w: &mut Writer) {
    let test = obj.test();
    let enabled = test.enable.unwrap_or(false);
    let sum: &[&str] = if enabled && !test.ignore_failures.unwrap_or(false) {
        &[cond::REMEDIATED, cond::TEST_SUCCESS, cond::RELEASED]
    } else {
        &[cond::REMEDIATED, cond::RELEASED]
    };
    if !enabled {
        w.delete(cond::TEST_SUCCESS);
    }
    let mut best: Option<(
        usize,
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition,
    )> = None;
    for c in w.status.conditions.iter().flatten() {
        let Some(pos) = sum.iter().position(|t| *t == c.type_) else {
            continue;
        };
        let better = match &best {
            None => true,
            Some((bp, b)) => {
                c.observed_generation > b.observed_generation
                    || (c.observed_generation == b.observed_generation && pos < *bp)
            }
        };
        if better {
            best = Some((pos, c.clone()));
        }
    }
    let Some((_, c)) = best else {
        return;
    };
    let st = if c.type_ == cond::REMEDIATED {
        cond::FALSE
    } else {
        c.status.as_str()
    };
    if st == cond::TRUE {
        w.delete(cond::STALLED);
    }
    let st = st.to_string();
    w.mark(cond::READY, &st, &c.reason, &c.message);
    crate::post_render::observe(obj, &mut w.status);
}

/// The observed records of one action, last write per version.
fn by_version(observed: Vec<Release>) -> BTreeMap<i64, Release> {
    observed.into_iter().map(|r| (r.version, r)).collect()
}

impl HelmReleaseReconciler {
    async fn snap_event(
        &self,
        obj: &HelmRelease,
        severity: Severity,
        reason: &str,
        msg: &str,
        s: Option<&Snapshot>,
    ) {
        let mut meta = BTreeMap::new();
        if let Some(s) = s {
            meta.insert(format!("{GROUP}/revision"), s.chart_version.clone());
            meta.insert(format!("{GROUP}/token"), s.config_digest.clone());
            if let Some(a) = &s.app_version {
                meta.insert(format!("{GROUP}/app-version"), a.clone());
            }
            if let Some(o) = &s.oci_digest {
                meta.insert(format!("{GROUP}/oci-digest"), o.clone());
            }
        }
        self.recorder
            .publish(obj, severity, reason, msg, &meta)
            .await;
    }

    /// Upstream's `DetermineReleaseState`.
    async fn determine_state(
        &self,
        obj: &HelmRelease,
        helm: &Helm,
        w: &mut Writer,
        desired: &Desired,
    ) -> Result<State, String> {
        let name = crate::naming::release_name(obj);
        let last = helm
            .store
            .last(&name)
            .await
            .map_err(|e| format!("failed to retrieve last release from storage: {e}"))?;
        let Some(last) = last else {
            return Ok(State::Absent("no release in storage for object".into()));
        };
        if status::is_pending(last.status()) {
            return Ok(State::Locked(format!(
                "release with status '{}'",
                last.status()
            )));
        }
        let history = w.status.history.get_or_insert_with(Vec::new);
        let Some(cur) = history::latest(history).cloned() else {
            if last.status() == status::UNINSTALLED {
                return Ok(State::Absent("found uninstalled release in storage".into()));
            }
            return Ok(State::Unmanaged("found existing release in storage".into()));
        };
        // the release in storage must be the one last observed (same digest)
        if cur.api_version.as_deref() == Some(history::SNAPSHOT_API_VERSION)
            && history::release_digest(&last, cur.oci_digest.as_deref().unwrap_or("")) != cur.digest
        {
            return Ok(State::Unmanaged(
                "release not observed to be made for object".into(),
            ));
        }
        match last.status() {
            status::FAILED => Ok(State::Failed(String::new())),
            status::UNINSTALLED => Ok(State::Absent("found uninstalled release in storage".into())),
            status::DEPLOYED => {
                let meta = last.chart.as_ref().and_then(|c| c.metadata.as_ref());
                if meta.map(|m| (m.name.as_str(), m.version.as_str()))
                    != Some((desired.chart_name.as_str(), desired.chart_version.as_str()))
                {
                    return Ok(State::OutOfSync("release chart changed".into()));
                }
                if cur.config_digest != desired.config_digest {
                    return Ok(State::OutOfSync("release config values changed".into()));
                }
                if let Some(why) = crate::post_render::out_of_sync(obj) {
                    return Ok(State::OutOfSync(why.into()));
                }
                let test = obj.test();
                if test.enable.unwrap_or(false) {
                    if !history::has_been_tested(&cur) {
                        return Ok(State::Untested);
                    }
                    if let Some(r) = active_remediation(obj, w)
                        && !r.ignore_test_failures(test.ignore_failures.unwrap_or(false))
                        && history::has_test_in_phase(&cur, history::PHASE_FAILED)
                    {
                        return Ok(State::Failed("release has test in failed phase".into()));
                    }
                }
                if obj.drift_detection_mode()
                    != ferroflux_api::helmrelease::DriftDetectionMode::Disabled
                {
                    let set = drift::diff(helm, obj, &last)
                        .await
                        .map_err(|e| format!("unable to determine cluster state: {e}"))?;
                    if set.iter().any(Change::has_changes) {
                        return Ok(State::Drifted(set));
                    }
                }
                Ok(State::InSync)
            }
            s => Err(format!(
                "unable to determine state for release with status '{s}'"
            )),
        }
    }

    /// Upstream's `actionForState`. `Err(Ok(()))`: retries exceeded; `Err(Err(msg))`:
    /// missing rollback target or another error.
    async fn action_for_state(
        &self,
        obj: &HelmRelease,
        helm: &Helm,
        w: &mut Writer,
        state: State,
    ) -> Result<Option<Next>, Stop> {
        let force = should_handle_force(obj, w);
        let test = obj.test();
        match state {
            State::InSync => {
                if active_retry(obj, w).is_some() {
                    history::truncate_ignoring_previous(
                        w.status.history.get_or_insert_with(Vec::new),
                    );
                } else {
                    let mut ignore = test.ignore_failures.unwrap_or(false);
                    if let Some(r) = active_remediation(obj, w) {
                        ignore = r.ignore_test_failures(ignore);
                    }
                    let history = w.status.history.get_or_insert_with(Vec::new);
                    history::truncate(history, ignore);
                }
                if force {
                    tracing::info!(
                        "forcing upgrade for in-sync release: force requested through annotation"
                    );
                    return Ok(Some(Next::Upgrade));
                }
                let cur = released_after_remediation(w);
                if !is_true(w, cond::READY) || !is_true(w, cond::RELEASED) {
                    let released = w.condition(cond::RELEASED).map(|c| c.reason.clone());
                    let next = match released.as_deref() {
                        Some(helm_reason::INSTALL_FAILED) => {
                            Some((helm_reason::INSTALL_SUCCEEDED, "install"))
                        }
                        Some(helm_reason::UPGRADE_FAILED) => {
                            Some((helm_reason::UPGRADE_SUCCEEDED, "upgrade"))
                        }
                        _ => None,
                    };
                    if let (Some((r, verb)), Some(cur)) = (next, &cur) {
                        let msg = format!(
                            "Helm {verb} succeeded for release {} with chart {}",
                            full_name(cur),
                            history::chart_name(cur)
                        );
                        w.mark(cond::RELEASED, cond::TRUE, r, &msg);
                        summarize(obj, w);
                    }
                }
                if obj.drift_detection_mode()
                    != ferroflux_api::helmrelease::DriftDetectionMode::Disabled
                {
                    w.mark(
                        cond::DRIFTED,
                        cond::FALSE,
                        helm_reason::NO_DRIFT_DETECTED,
                        "No drift detected against the cluster state",
                    );
                }
                Ok(None)
            }
            State::Locked(why) => {
                tracing::info!("release locked: {why}");
                Ok(Some(Next::Unlock))
            }
            State::Absent(why) => {
                tracing::info!("release not installed: {why}");
                if obj
                    .install()
                    .remediation()
                    .retries_exhausted(w.status.install_failures.unwrap_or(0))
                {
                    if force {
                        return Ok(Some(Next::Install));
                    }
                    return Err(Stop::Exceeded);
                }
                Ok(Some(Next::Install))
            }
            State::Unmanaged(why) => {
                tracing::info!("release not managed by controller: {why}");
                w.status.history = None;
                Ok(Some(Next::Upgrade))
            }
            State::OutOfSync(why) => {
                tracing::info!("release out-of-sync with desired state: {why}");
                if obj
                    .upgrade()
                    .remediation()
                    .retries_exhausted(w.status.upgrade_failures.unwrap_or(0))
                {
                    if force {
                        return Ok(Some(Next::Upgrade));
                    }
                    return Err(Stop::Exceeded);
                }
                Ok(Some(Next::Upgrade))
            }
            State::Drifted(set) => {
                tracing::info!(
                    "detected changes in cluster state: {}",
                    drift::summarize_brief(&set)
                );
                let cur = w
                    .status
                    .history
                    .as_mut()
                    .and_then(|h| history::latest(h).cloned());
                let msg = format!(
                    "Cluster state of release {} has drifted from the desired state:\n{}",
                    cur.as_ref().map(full_name).unwrap_or_default(),
                    drift::summarize(&set)
                );
                self.snap_event(
                    obj,
                    Severity::Error,
                    helm_reason::DRIFT_DETECTED,
                    &msg,
                    None,
                )
                .await;
                w.mark(cond::DRIFTED, cond::TRUE, helm_reason::DRIFT_DETECTED, &msg);
                if obj.drift_detection_mode()
                    == ferroflux_api::helmrelease::DriftDetectionMode::Enabled
                {
                    return Ok(Some(Next::CorrectDrift(set)));
                }
                Ok(None)
            }
            State::Untested => {
                released_after_remediation(w);
                Ok(Some(Next::Test))
            }
            State::Failed(why) => {
                tracing::info!("release is in a failed state: {why}");
                if active_retry(obj, w).is_some() {
                    history::truncate_ignoring_previous(
                        w.status.history.get_or_insert_with(Vec::new),
                    );
                    return Ok(Some(Next::Upgrade));
                }
                let Some(rem) = active_remediation(obj, w) else {
                    return Ok(Some(Next::Upgrade));
                };
                if rem.failures(w) <= 0 {
                    tracing::info!("release conditions have changed since last failure");
                    return Ok(Some(Next::Upgrade));
                }
                if force {
                    return Ok(Some(Next::Upgrade));
                }
                if rem.exhausted(w) && !rem.remediate_last_failure() {
                    return Err(Stop::Exceeded);
                }
                let ignore = rem.ignore_test_failures(test.ignore_failures.unwrap_or(false));
                history::truncate(w.status.history.get_or_insert_with(Vec::new), ignore);
                match rem.strategy() {
                    RemediationStrategy::Rollback => {
                        let prev = history::previous(
                            w.status.history.get_or_insert_with(Vec::new),
                            ignore,
                        );
                        let Some(prev) = prev else {
                            return Err(Stop::MissingTarget);
                        };
                        // the rollback target must still be in storage, unmodified
                        match helm.store.get(&prev.name, prev.version).await {
                            Ok(None) => Ok(Some(Next::Upgrade)),
                            Ok(Some(r))
                                if prev.api_version.as_deref()
                                    == Some(history::SNAPSHOT_API_VERSION)
                                    && history::release_digest(
                                        &r,
                                        prev.oci_digest.as_deref().unwrap_or(""),
                                    ) != prev.digest =>
                            {
                                tracing::info!(
                                    "unable to verify previous release in storage to roll back to"
                                );
                                Ok(Some(Next::Upgrade))
                            }
                            Ok(Some(_)) => Ok(Some(Next::Rollback)),
                            Err(e) => Err(Stop::Error(format!(
                                "cannot verify previous release to roll back to: {e}"
                            ))),
                        }
                    }
                    RemediationStrategy::Uninstall => Ok(Some(Next::UninstallRemediation)),
                }
            }
        }
    }

    fn helm_for(&self, obj: &HelmRelease, client: &kube::Client) -> Helm {
        Helm {
            manager: self.manager(client.clone()),
            store: crate::storage::ReleaseStorage::new(client.clone(), &obj.storage_namespace())
                .observing(),
            poll: self.settings.wait_interval,
            owner: (obj.name_any(), obj.namespace().unwrap_or_default()),
        }
    }

    fn timeout_for(obj: &HelmRelease, next: &Next) -> Duration {
        let t = obj.effective_timeout();
        match next {
            Next::Install => obj.install().timeout_or(t),
            Next::Upgrade => obj.upgrade().timeout_or(t),
            Next::Test => obj.test().timeout_or(t),
            Next::Rollback => obj.rollback().timeout_or(t),
            Next::UninstallRemediation => obj.uninstall().timeout_or(t),
            _ => t,
        }
    }

    fn mark_stalled_exceeded(obj: &HelmRelease, w: &mut Writer) {
        let n = active_remediation(obj, w)
            .map(|r| r.failures(w))
            .unwrap_or(0);
        let action = match w.status.last_attempted_release_action {
            Some(ReleaseAction::Install) => "install",
            Some(ReleaseAction::Upgrade) => "upgrade",
            None => "",
        };
        w.mark(
            cond::STALLED,
            cond::TRUE,
            helm_reason::RETRIES_EXCEEDED,
            &format!("Failed to {action} after {n} attempt(s)"),
        );
    }

    /// Upstream's `AtomicRelease.Reconcile`.
    pub(crate) async fn atomic_release(
        &self,
        obj: &HelmRelease,
        client: &kube::Client,
        w: &mut Writer,
        desired: &Desired,
    ) -> AtomicEnd {
        let helm = self.helm_for(obj, client);
        let mut previous: Vec<Kind> = Vec::new();
        loop {
            let state = match self.determine_state(obj, &helm, w, desired).await {
                Ok(s) => s,
                Err(e) => {
                    w.mark(
                        cond::READY,
                        cond::FALSE,
                        helm_reason::STATE_ERROR,
                        &format!("Could not determine release state: {e}"),
                    );
                    return AtomicEnd::Error(format!("cannot determine release state: {e}"));
                }
            };
            tracing::debug!("determined release state: {state:?}");
            let next = match self.action_for_state(obj, &helm, w, state).await {
                Ok(n) => n,
                Err(Stop::Exceeded) => {
                    Self::mark_stalled_exceeded(obj, w);
                    return AtomicEnd::Stalled;
                }
                Err(Stop::MissingTarget) => {
                    w.mark(
                        cond::STALLED,
                        cond::TRUE,
                        helm_reason::MISSING_ROLLBACK_TARGET,
                        "Failed to perform remediation: missing target release for rollback: cannot remediate failed release",
                    );
                    return AtomicEnd::Stalled;
                }
                Err(Stop::Error(e)) => return AtomicEnd::Error(e),
            };
            let Some(next) = next else {
                w.delete(cond::RECONCILING);
                summarize(obj, w);
                return AtomicEnd::Done;
            };
            let kind = next.kind();
            if previous.contains(&kind) {
                if let Some(d) = active_retry(obj, w) {
                    w.mark(
                        cond::RECONCILING,
                        cond::TRUE,
                        reason::PROGRESSING_WITH_RETRY,
                        &format!("retrying after {}", format_go(d)),
                    );
                    return AtomicEnd::RetryAfter(d);
                }
                if active_remediation(obj, w).is_none_or(|r| !r.exhausted(w)) {
                    let msg = w
                        .condition(cond::READY)
                        .map(|c| c.message.clone())
                        .unwrap_or_default();
                    w.mark(
                        cond::RECONCILING,
                        cond::TRUE,
                        reason::PROGRESSING_WITH_RETRY,
                        &msg,
                    );
                    return AtomicEnd::MustRequeue;
                }
                w.delete(cond::RECONCILING);
                return AtomicEnd::Done;
            }
            let progress = format!(
                "Running '{}' action with timeout of {}",
                next.name(),
                format_go(Self::timeout_for(obj, &next))
            );
            w.mark(
                cond::RECONCILING,
                cond::TRUE,
                reason::PROGRESSING,
                &progress,
            );
            if kind == Kind::Release {
                w.mark(cond::READY, cond::UNKNOWN, reason::PROGRESSING, &progress);
            }
            if let Err(e) = w.patch().await {
                return AtomicEnd::Error(e);
            }
            tracing::info!("{}", progress.replacen("Running", "running", 1));
            if let Err(e) = self.run_action(obj, &helm, w, desired, &next).await {
                if let Some(d) = active_retry(obj, w) {
                    tracing::error!("failed to run '{}' action: {e}", next.name());
                    w.mark(
                        cond::RECONCILING,
                        cond::TRUE,
                        reason::PROGRESSING_WITH_RETRY,
                        &format!("retrying after {}", format_go(d)),
                    );
                    return AtomicEnd::RetryAfter(d);
                }
                if is_true(w, cond::READY) {
                    w.mark(cond::READY, cond::FALSE, helm_reason::RECONCILE_ERROR, &e);
                }
                return AtomicEnd::Error(e);
            }
            if kind == Kind::Remediate {
                if let Some(d) = active_retry(obj, w) {
                    w.mark(
                        cond::RECONCILING,
                        cond::TRUE,
                        reason::PROGRESSING_WITH_RETRY,
                        &format!("retrying after {}", format_go(d)),
                    );
                    return AtomicEnd::RetryAfter(d);
                }
                let rem = active_remediation(obj, w);
                if rem
                    .as_ref()
                    .is_none_or(|r| !r.exhausted(w) || r.uninstall_after_upgrade())
                {
                    let msg = w
                        .condition(cond::READY)
                        .map(|c| c.message.clone())
                        .unwrap_or_default();
                    w.mark(
                        cond::RECONCILING,
                        cond::TRUE,
                        reason::PROGRESSING_WITH_RETRY,
                        &msg,
                    );
                    return AtomicEnd::MustRequeue;
                }
                Self::mark_stalled_exceeded(obj, w);
                return AtomicEnd::Stalled;
            }
            previous.push(kind);
            if let Err(e) = w.patch().await {
                return AtomicEnd::Error(e);
            }
        }
    }

    /// Runs one action and records its outcome; `Err`: nothing was stored, retry.
    async fn run_action(
        &self,
        obj: &HelmRelease,
        helm: &Helm,
        w: &mut Writer,
        desired: &Desired,
        next: &Next,
    ) -> Result<(), String> {
        helm.store.take_observed();
        match next {
            Next::Install | Next::Upgrade => self.release(obj, helm, w, desired, next).await,
            Next::Test => self.test(obj, helm, w).await,
            Next::Rollback => self.rollback(obj, helm, w).await,
            Next::UninstallRemediation => self.uninstall_remediation(obj, helm, w).await,
            Next::Unlock => self.unlock(obj, helm, w).await,
            Next::CorrectDrift(set) => {
                self.correct_drift(obj, helm, w, set).await;
                Ok(())
            }
        }
    }

    /// Renders the chart for `version` as Helm's install/upgrade does.
    async fn render(
        &self,
        obj: &HelmRelease,
        desired: &Desired,
        version: i64,
        upgrade: bool,
    ) -> Result<hr::Rendered, String> {
        let install = obj.install();
        let up = obj.upgrade();
        let opts = ReleaseOptions {
            name: crate::naming::release_name(obj),
            namespace: obj.release_namespace(),
            revision: version,
            is_upgrade: upgrade,
            kube_version: None,
            api_versions: Vec::new(),
            skip_schema_validation: if upgrade {
                up.disable_schema_validation.unwrap_or(false)
            } else {
                install.disable_schema_validation.unwrap_or(false)
            },
        };
        let dir = desired.chart_dir.clone();
        let values = desired.values.clone();
        let rendered =
            tokio::task::spawn_blocking(move || hr::render_release(&dir, &values, &opts))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
        crate::post_render::apply(obj, rendered)
    }

    /// Install or upgrade (upstream `Install`/`Upgrade` reconcilers).
    async fn release(
        &self,
        obj: &HelmRelease,
        helm: &Helm,
        w: &mut Writer,
        desired: &Desired,
        next: &Next,
    ) -> Result<(), String> {
        let started = Instant::now();
        let upgrade = matches!(next, Next::Upgrade);
        let action = if upgrade {
            ReleaseAction::Upgrade
        } else {
            ReleaseAction::Install
        };
        w.status.last_attempted_release_action = Some(action);
        if !upgrade {
            w.status.history = None;
        }
        w.delete(cond::TEST_SUCCESS);
        w.delete(cond::REMEDIATED);
        let name = crate::naming::release_name(obj);
        let namespace = obj.release_namespace();
        let result = async {
            let stored = helm.store.history(&name).await.map_err(|e| (None, e))?;
            let version = stored.last().map(|r| r.version).unwrap_or(0) + 1;
            let rendered = self
                .render(obj, desired, version, upgrade)
                .await
                .map_err(|e| (None, e))?;
            let install = obj.install();
            let up = obj.upgrade();
            let crd_policy = if upgrade {
                up.crds.unwrap_or(CrdsPolicy::Skip)
            } else if install.skip_crds.unwrap_or(false) {
                CrdsPolicy::Skip
            } else {
                install.crds.unwrap_or(CrdsPolicy::Create)
            };
            let crds = if crd_policy == CrdsPolicy::Skip {
                Vec::new()
            } else {
                helm.crds_to_apply(&rendered.crds, &namespace, crd_policy == CrdsPolicy::Create)
                    .await
                    .map_err(|e| (None, e))?
            };
            let ts = hr::format_time(jiff::Timestamp::now());
            let rel = Release {
                name: name.clone(),
                info: Some(hr::Info {
                    first_deployed: Some(ts.clone()),
                    last_deployed: Some(ts),
                    notes: rendered.notes.clone(),
                    ..Default::default()
                }),
                chart: Some(rendered.chart.clone()),
                config: desired.values.clone(),
                manifest: rendered.manifest.clone(),
                hooks: rendered.hooks.clone(),
                version,
                namespace: namespace.clone(),
                apply_method: "ssa".into(),
                labels: BTreeMap::new(),
            };
            let t = obj.effective_timeout();
            let args = if upgrade {
                ApplyArgs {
                    wait: Wait {
                        disabled: up.disable_wait.unwrap_or(false),
                        for_jobs: !up.disable_wait_for_jobs.unwrap_or(false),
                        timeout: up.timeout_or(t),
                    },
                    disable_hooks: up.disable_hooks.unwrap_or(false),
                    force: up.force.unwrap_or(false),
                    cleanup_on_fail: up.cleanup_on_fail.unwrap_or(false),
                    create_namespace: false,
                }
            } else {
                ApplyArgs {
                    wait: Wait {
                        disabled: install.disable_wait.unwrap_or(false),
                        for_jobs: !install.disable_wait_for_jobs.unwrap_or(false),
                        timeout: install.timeout_or(t),
                    },
                    disable_hooks: install.disable_hooks.unwrap_or(false),
                    force: false,
                    cleanup_on_fail: false,
                    create_namespace: install.create_namespace.unwrap_or(false),
                }
            };
            if upgrade {
                helm.upgrade(&stored, rel, crds, &args).await
            } else {
                helm.install(rel, crds, &args).await
            }
        }
        .await;
        w.status.last_attempted_release_action_duration = Some(
            ferroflux_api::duration::Duration::from_std(started.elapsed()),
        );
        let observed = by_version(helm.store.take_observed());
        let stored_any = !observed.is_empty();
        self.record_observed(w, observed, action, desired.oci_digest.as_deref());
        if let Ok(rel) = &result {
            self.prune_history(obj, helm, &rel.name, rel.version).await;
        }
        let verb = if upgrade { "upgrade" } else { "install" };
        let out = match result {
            Err((_, err)) => {
                let msg = format!(
                    "Helm {verb} failed for release {namespace}/{name} with chart {}@{}: {}",
                    desired.chart_name,
                    desired.chart_version,
                    err.trim()
                );
                bump(&mut w.status.failures);
                let r = if upgrade {
                    helm_reason::UPGRADE_FAILED
                } else {
                    helm_reason::INSTALL_FAILED
                };
                w.mark(cond::RELEASED, cond::FALSE, r, &msg);
                self.event(obj, Severity::Error, r, &msg, Some(desired))
                    .await;
                if !stored_any {
                    Err(err)
                } else {
                    if upgrade {
                        Remediation::Upgrade(obj.upgrade().remediation()).increment(w);
                    } else {
                        Remediation::Install(obj.install().remediation()).increment(w);
                    }
                    Ok(())
                }
            }
            Ok(_) => {
                let cur = w
                    .status
                    .history
                    .as_mut()
                    .and_then(|h| history::latest(h).cloned());
                let cur =
                    cur.unwrap_or_else(|| history::snapshot_of(&Release::default(), None, None));
                let msg = format!(
                    "Helm {verb} succeeded for release {} with chart {}",
                    full_name(&cur),
                    history::chart_name(&cur)
                );
                let r = if upgrade {
                    helm_reason::UPGRADE_SUCCEEDED
                } else {
                    helm_reason::INSTALL_SUCCEEDED
                };
                w.mark(cond::RELEASED, cond::TRUE, r, &msg);
                if obj.test().enable.unwrap_or(false) && !history::has_been_tested(&cur) {
                    w.mark(
                        cond::TEST_SUCCESS,
                        cond::UNKNOWN,
                        helm_reason::AWAITING_TESTS,
                        &format!(
                            "Helm release {} with chart {} is awaiting tests",
                            full_name(&cur),
                            history::chart_name(&cur)
                        ),
                    );
                }
                if active_retry(obj, w).is_some() {
                    w.status.failures = None;
                    w.status.install_failures = None;
                    w.status.upgrade_failures = None;
                }
                self.snap_event(obj, Severity::Info, r, &msg, Some(&cur))
                    .await;
                Ok(())
            }
        };
        summarize(obj, w);
        out
    }

    /// upstream's `observedReleases.recordOnObject`: the newest observed revision becomes the
    /// newest snapshot; older observed revisions (the one superseded) update their snapshot.
    fn record_observed(
        &self,
        w: &mut Writer,
        observed: BTreeMap<i64, Release>,
        action: ReleaseAction,
        oci_digest: Option<&str>,
    ) {
        let action = match action {
            ReleaseAction::Install => "install",
            ReleaseAction::Upgrade => "upgrade",
        };
        let mut versions: Vec<i64> = observed.keys().copied().collect();
        versions.sort_unstable_by(|a, b| b.cmp(a));
        let Some(newest) = versions.first() else {
            return;
        };
        let history = w.status.history.get_or_insert_with(Vec::new);
        history.insert(
            0,
            history::snapshot_of(&observed[newest], Some(action), oci_digest),
        );
        for v in &versions[1..] {
            let r = &observed[v];
            if let Some(i) = history
                .iter()
                .position(|s| history::targets(s, &r.name, &r.namespace, r.version))
            {
                let old = history[i].clone();
                let mut snap =
                    history::snapshot_of(r, old.action.as_deref(), old.oci_digest.as_deref());
                snap.test_hooks = old.test_hooks.clone();
                history[i] = snap;
                // upstream stops at the first older revision it updates
                break;
            }
        }
    }

    /// `maxHistory`: the oldest revisions beyond the limit go (never the newest).
    async fn prune_history(&self, obj: &HelmRelease, helm: &Helm, name: &str, newest: i64) {
        let max = obj.max_history();
        if max <= 0 {
            return;
        }
        let Ok(all) = helm.store.history(name).await else {
            return;
        };
        let excess = all.len().saturating_sub(max as usize);
        for r in all.iter().filter(|r| r.version != newest).take(excess) {
            if let Err(e) = helm.store.delete(name, r.version).await {
                tracing::warn!("could not delete release revision {}: {e}", r.version);
            }
        }
    }

    /// upstream `Test`.
    async fn test(&self, obj: &HelmRelease, helm: &Helm, w: &mut Writer) -> Result<(), String> {
        let Some(cur) = w
            .status
            .history
            .as_mut()
            .and_then(|h| history::latest(h).cloned())
        else {
            return Err("no latest release: required for test".into());
        };
        let test = obj.test();
        let filters = test.filters.clone().unwrap_or_default();
        let timeout = test.timeout_or(obj.effective_timeout());
        let names = |exclude: bool| -> Vec<String> {
            filters
                .iter()
                .filter(|f| f.exclude.unwrap_or(false) == exclude)
                .map(|f| f.name.clone())
                .collect()
        };
        let res = helm
            .test(
                &crate::naming::release_name(obj),
                &names(true),
                &names(false),
                timeout,
            )
            .await;
        // only results for the latest release count
        for r in helm.store.take_observed() {
            if history::targets(&cur, &r.name, &r.namespace, r.version)
                && let Some(h) = w.status.history.as_mut()
            {
                let mut snap =
                    history::snapshot_of(&r, cur.action.as_deref(), cur.oci_digest.as_deref());
                snap.test_hooks = Some(history::test_hooks_of(&r, &filters));
                h[0] = snap;
            }
        }
        let mut err = res.as_ref().err().map(|(_, e)| e.clone());
        let tested = match &res {
            Ok(r) | Err((Some(r), _)) => Some(r),
            _ => None,
        };
        if let Some(r) = tested
            && !history::targets(&cur, &r.name, &r.namespace, r.version)
        {
            err = Some(format!(
                "release mismatch: tested release {}/{}.v{} != current release {}",
                r.namespace,
                r.name,
                r.version,
                full_name(&cur)
            ));
        }
        let latest = w
            .status
            .history
            .as_mut()
            .and_then(|h| history::latest(h).cloned())
            .unwrap_or(cur);
        match err {
            Some(e) => {
                let msg = format!(
                    "Helm test failed for release {} with chart {}: {}",
                    full_name(&latest),
                    history::chart_name(&latest),
                    e.trim()
                );
                bump(&mut w.status.failures);
                w.mark(
                    cond::TEST_SUCCESS,
                    cond::FALSE,
                    helm_reason::TEST_FAILED,
                    &msg,
                );
                self.snap_event(
                    obj,
                    Severity::Error,
                    helm_reason::TEST_FAILED,
                    &msg,
                    Some(&latest),
                )
                .await;
                let tested = history::has_been_tested(&latest);
                if tested
                    && let Some(r) = active_remediation(obj, w)
                    && !r.ignore_test_failures(test.ignore_failures.unwrap_or(false))
                {
                    r.increment(w);
                }
                summarize(obj, w);
                if tested { Ok(()) } else { Err(e) }
            }
            None => {
                let n = latest.test_hooks.as_ref().map(BTreeMap::len).unwrap_or(0);
                let hooks = match n {
                    0 => "no test hooks".to_string(),
                    1 => "1 test hook completed successfully".to_string(),
                    n => format!("{n} test hooks completed successfully"),
                };
                let msg = format!(
                    "Helm test succeeded for release {} with chart {}: {hooks}",
                    full_name(&latest),
                    history::chart_name(&latest)
                );
                w.mark(
                    cond::TEST_SUCCESS,
                    cond::TRUE,
                    helm_reason::TEST_SUCCEEDED,
                    &msg,
                );
                self.snap_event(
                    obj,
                    Severity::Info,
                    helm_reason::TEST_SUCCEEDED,
                    &msg,
                    Some(&latest),
                )
                .await;
                summarize(obj, w);
                Ok(())
            }
        }
    }

    /// upstream `RollbackRemediation`.
    async fn rollback(&self, obj: &HelmRelease, helm: &Helm, w: &mut Writer) -> Result<(), String> {
        let history = w.status.history.get_or_insert_with(Vec::new);
        let cur = history::latest(history).cloned();
        let ignore = obj
            .upgrade()
            .remediation()
            .ignore_test_failures_or(obj.test().ignore_failures.unwrap_or(false));
        let Some(prev) = history::previous(history, ignore) else {
            summarize(obj, w);
            return Err("missing target release for rollback: required to rollback".into());
        };
        let rb = obj.rollback();
        let args = ApplyArgs {
            wait: Wait {
                disabled: rb.disable_wait.unwrap_or(false),
                for_jobs: !rb.disable_wait_for_jobs.unwrap_or(false),
                timeout: rb.timeout_or(obj.effective_timeout()),
            },
            disable_hooks: rb.disable_hooks.unwrap_or(false),
            force: rb.force.unwrap_or(false),
            cleanup_on_fail: rb.cleanup_on_fail.unwrap_or(false),
            create_namespace: false,
        };
        let res = helm.rollback(&prev.name, prev.version, &args).await;
        for r in helm.store.take_observed() {
            let h = w.status.history.get_or_insert_with(Vec::new);
            match h
                .iter()
                .position(|s| history::targets(s, &r.name, &r.namespace, r.version))
            {
                Some(i) => {
                    let old = h[i].clone();
                    let mut snap =
                        history::snapshot_of(&r, Some("rollback"), old.oci_digest.as_deref());
                    snap.test_hooks = old.test_hooks;
                    h[i] = snap;
                }
                None => h.insert(0, history::snapshot_of(&r, None, None)),
            }
        }
        let values_digest = cur
            .as_ref()
            .map(|c| c.config_digest.clone())
            .unwrap_or_default();
        let mut meta_snap = prev.clone();
        meta_snap.config_digest = values_digest;
        let out = match res {
            Err(e) => {
                let msg = format!(
                    "Helm rollback to previous release {} with chart {} failed: {}",
                    full_name(&prev),
                    history::chart_name(&prev),
                    e.trim()
                );
                bump(&mut w.status.failures);
                w.mark(
                    cond::REMEDIATED,
                    cond::FALSE,
                    helm_reason::ROLLBACK_FAILED,
                    &msg,
                );
                self.snap_event(
                    obj,
                    Severity::Error,
                    helm_reason::ROLLBACK_FAILED,
                    &msg,
                    Some(&meta_snap),
                )
                .await;
                let new_cur = w
                    .status
                    .history
                    .as_mut()
                    .and_then(|h| history::latest(h).cloned());
                if new_cur.is_none()
                    || (cur.is_some()
                        && new_cur.map(|n| n.digest) == cur.as_ref().map(|c| c.digest.clone()))
                {
                    Err(e)
                } else {
                    Ok(())
                }
            }
            Ok(_) => {
                let msg = format!(
                    "Helm rollback to previous release {} with chart {} succeeded",
                    full_name(&prev),
                    history::chart_name(&prev)
                );
                w.mark(
                    cond::REMEDIATED,
                    cond::TRUE,
                    helm_reason::ROLLBACK_SUCCEEDED,
                    &msg,
                );
                self.snap_event(
                    obj,
                    Severity::Info,
                    helm_reason::ROLLBACK_SUCCEEDED,
                    &msg,
                    Some(&meta_snap),
                )
                .await;
                Ok(())
            }
        };
        summarize(obj, w);
        out
    }

    /// Records an uninstall's writes on the snapshots of the same revisions.
    fn observe_uninstall(w: &mut Writer, observed: Vec<Release>, action: &str) {
        let h = w.status.history.get_or_insert_with(Vec::new);
        for r in observed {
            if let Some(i) = h
                .iter()
                .position(|s| history::targets(s, &r.name, &r.namespace, r.version))
            {
                let old = h[i].clone();
                let mut snap = history::snapshot_of(&r, Some(action), old.oci_digest.as_deref());
                snap.test_hooks = old.test_hooks;
                h[i] = snap;
            }
        }
    }

    /// upstream `UninstallRemediation`.
    async fn uninstall_remediation(
        &self,
        obj: &HelmRelease,
        helm: &Helm,
        w: &mut Writer,
    ) -> Result<(), String> {
        let Some(cur) = w
            .status
            .history
            .as_mut()
            .and_then(|h| history::latest(h).cloned())
        else {
            return Err("no latest release: required to uninstall".into());
        };
        let un = obj.uninstall();
        let res = helm
            .uninstall(
                &cur.name,
                un.keep_history.unwrap_or(false),
                un.disable_hooks.unwrap_or(false),
                un.disable_wait.unwrap_or(false),
                propagation(obj),
                un.timeout_or(obj.effective_timeout()),
            )
            .await;
        Self::observe_uninstall(w, helm.store.take_observed(), "uninstall");
        let latest_digest = w
            .status
            .history
            .as_mut()
            .and_then(|h| history::latest(h).map(|s| s.digest.clone()));
        let mut err = match &res {
            Ok(None) => Some(format!(
                "uninstall: Release not loaded: {}: release: not found",
                cur.name
            )),
            Ok(Some(r)) if !history::targets(&cur, &r.name, &r.namespace, r.version) => {
                Some(format!(
                    "release mismatch: uninstalled release {}/{}.v{} != current release {}",
                    r.namespace,
                    r.name,
                    r.version,
                    full_name(&cur)
                ))
            }
            Ok(_) => None,
            Err((_, e)) => Some(e.clone()),
        };
        if err.is_none() && latest_digest.as_deref() == Some(cur.digest.as_str()) {
            err =
                Some("uninstall completed with error: release not updated in Helm storage".into());
        }
        let latest = w
            .status
            .history
            .as_mut()
            .and_then(|h| history::latest(h).cloned())
            .unwrap_or_else(|| cur.clone());
        let out = match err {
            Some(e) => {
                let msg = format!(
                    "Helm uninstall remediation for release {} with chart {} failed: {}",
                    full_name(&latest),
                    history::chart_name(&latest),
                    e.trim()
                );
                bump(&mut w.status.failures);
                w.mark(
                    cond::REMEDIATED,
                    cond::FALSE,
                    helm_reason::UNINSTALL_FAILED,
                    &msg,
                );
                self.snap_event(
                    obj,
                    Severity::Error,
                    helm_reason::UNINSTALL_FAILED,
                    &msg,
                    Some(&latest),
                )
                .await;
                if latest_digest.as_deref() == Some(cur.digest.as_str()) {
                    Err(e)
                } else {
                    Ok(())
                }
            }
            None => {
                let msg = format!(
                    "Helm uninstall remediation for release {} with chart {} succeeded",
                    full_name(&latest),
                    history::chart_name(&latest)
                );
                w.mark(
                    cond::REMEDIATED,
                    cond::TRUE,
                    helm_reason::UNINSTALL_SUCCEEDED,
                    &msg,
                );
                self.snap_event(
                    obj,
                    Severity::Info,
                    helm_reason::UNINSTALL_SUCCEEDED,
                    &msg,
                    Some(&latest),
                )
                .await;
                Ok(())
            }
        };
        summarize(obj, w);
        out
    }

    /// upstream `Unlock`: a release left pending is marked failed.
    async fn unlock(&self, obj: &HelmRelease, helm: &Helm, w: &mut Writer) -> Result<(), String> {
        let name = crate::naming::release_name(obj);
        let last = helm.store.last(&name).await?;
        let Some(mut rel) = last else {
            summarize(obj, w);
            return Ok(());
        };
        let oci = w
            .status
            .history
            .iter()
            .flatten()
            .find(|s| history::targets(s, &rel.name, &rel.namespace, rel.version))
            .and_then(|s| s.oci_digest.clone());
        let cur = history::snapshot_of(&rel, None, oci.as_deref());
        let st = rel.status().to_string();
        let out = if status::is_pending(&st) {
            rel.set_status(
                status::FAILED,
                format!("Release unlocked from stale '{st}' state"),
            );
            match helm.store.update(&rel).await {
                Err(e) => {
                    let msg = format!(
                        "Unlock of Helm release {} with chart {} in {st} state failed: {}",
                        full_name(&cur),
                        history::chart_name(&cur),
                        e.trim()
                    );
                    bump(&mut w.status.failures);
                    w.mark(
                        cond::RELEASED,
                        cond::FALSE,
                        helm_reason::PENDING_RELEASE,
                        &msg,
                    );
                    self.snap_event(
                        obj,
                        Severity::Error,
                        helm_reason::PENDING_RELEASE,
                        &msg,
                        Some(&cur),
                    )
                    .await;
                    Err(e)
                }
                Ok(()) => {
                    for r in helm.store.take_observed() {
                        if let Some(h) = w.status.history.as_mut()
                            && let Some(i) = h
                                .iter()
                                .position(|s| history::targets(s, &r.name, &r.namespace, r.version))
                        {
                            let old = h[i].clone();
                            h[i] = history::snapshot_of(
                                &r,
                                old.action.as_deref(),
                                old.oci_digest.as_deref(),
                            );
                        }
                    }
                    let msg = format!(
                        "Unlocked Helm release {} with chart {} in {st} state",
                        full_name(&cur),
                        history::chart_name(&cur)
                    );
                    w.mark(
                        cond::RELEASED,
                        cond::FALSE,
                        helm_reason::PENDING_RELEASE,
                        &msg,
                    );
                    self.snap_event(
                        obj,
                        Severity::Info,
                        helm_reason::PENDING_RELEASE,
                        &msg,
                        Some(&cur),
                    )
                    .await;
                    Ok(())
                }
            }
        } else {
            Ok(())
        };
        summarize(obj, w);
        out
    }

    /// upstream `CorrectClusterDrift`.
    async fn correct_drift(&self, obj: &HelmRelease, helm: &Helm, w: &mut Writer, set: &[Change]) {
        if set.is_empty() {
            return;
        }
        w.mark(
            cond::READY,
            cond::UNKNOWN,
            reason::PROGRESSING,
            "correcting cluster drift",
        );
        let (cs, res) = drift::correct(helm, set).await;
        let cur = w
            .status
            .history
            .as_mut()
            .and_then(|h| history::latest(h).cloned());
        let name = cur.as_ref().map(full_name).unwrap_or_default();
        match res {
            Err(e) => {
                let mut msg = String::from("Failed to ");
                if !cs.is_empty() {
                    msg.push_str("partially ");
                }
                msg.push_str(&format!("correct cluster state of release {name}:\n{e}"));
                if !cs.is_empty() {
                    msg.push_str(&format!("\n\nSuccessful corrections:\n{}", cs.summary()));
                }
                self.snap_event(
                    obj,
                    Severity::Error,
                    "DriftCorrectionFailed",
                    &msg,
                    cur.as_ref(),
                )
                .await;
            }
            Ok(()) if !cs.is_empty() => {
                let msg = format!(
                    "Cluster state of release {name} has been corrected:\n{}",
                    cs.summary()
                );
                self.snap_event(obj, Severity::Info, "DriftCorrected", &msg, cur.as_ref())
                    .await;
            }
            Ok(()) => {}
        }
    }

    /// Uninstall of the release on deletion of the HelmRelease (upstream `Uninstall`).
    pub(crate) async fn uninstall_release(
        &self,
        obj: &HelmRelease,
        client: &kube::Client,
    ) -> Result<Option<Release>, String> {
        let helm = self.helm_for(obj, client);
        let un = obj.uninstall();
        match helm
            .uninstall(
                &crate::naming::release_name(obj),
                un.keep_history.unwrap_or(false),
                un.disable_hooks.unwrap_or(false),
                un.disable_wait.unwrap_or(false),
                propagation(obj),
                un.timeout_or(obj.effective_timeout()),
            )
            .await
        {
            Ok(r) => Ok(r),
            Err((Some(r), e))
                if un.keep_history.unwrap_or(false) && e.contains("is already deleted") =>
            {
                let _ = e;
                Ok(Some(r))
            }
            Err((_, e)) => Err(e),
        }
    }
}

fn propagation(obj: &HelmRelease) -> Propagation {
    match obj.uninstall().deletion_propagation {
        Some(ferroflux_api::helmrelease::DeletionPropagation::Foreground) => {
            Propagation::Foreground
        }
        Some(ferroflux_api::helmrelease::DeletionPropagation::Orphan) => Propagation::Orphan,
        _ => Propagation::Background,
    }
}

/// Why the action choice stopped the loop.
#[derive(Debug)]
enum Stop {
    Exceeded,
    MissingTarget,
    Error(String),
}

/// `release_ref` of a release in messages.
pub fn release_ref(rel: &Release) -> String {
    format!("{}/{}.v{}", rel.namespace, rel.name, rel.version)
}

/// A release remediated earlier that is now current again: its Remediated condition gives way
/// to Released (UpgradeSucceeded), as upstream does. Returns the latest snapshot.
fn released_after_remediation(w: &mut Writer) -> Option<Snapshot> {
    let cur = w
        .status
        .history
        .as_mut()
        .and_then(|h| history::latest(h).cloned());
    if is_true(w, cond::REMEDIATED)
        && let Some(cur) = &cur
    {
        let msg = format!(
            "Helm upgrade succeeded for release {} with chart {}",
            full_name(cur),
            history::chart_name(cur)
        );
        replace_condition(
            w,
            cond::REMEDIATED,
            cond::RELEASED,
            helm_reason::UPGRADE_SUCCEEDED,
            &msg,
        );
    }
    cur
}
