//! The HelmChart pipeline against real chart repositories (charts packaged and indexed by
//! `helm`, served on 127.0.0.1; no API server): version ranges resolve as `helm pull` does,
//! pulled charts are stored as served, values files repackage the chart so that it renders as
//! `helm template -f` renders the original, credentials follow the passCredentials rule, and
//! bad input keeps the last artifact.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferroflux_api::conditions as cond;
use ferroflux_api::{GitRepository, HelmChart, HelmRepository};
use serde_json::json;
use source_controller::helmchart::{PipelineOutput, PipelineResult, Settings, run_pipeline};
use source_controller::storage::{DigestAlgo, Storage};

use crate::helm_support::{
    ChartRepo, create_chart, helm, helm_repository, helm_try, serve_http, serve_http_on,
};

/// Secrets and sources held in memory.
#[derive(Default, Clone)]
pub struct ChartLookup {
    pub secrets: HashMap<String, BTreeMap<String, Vec<u8>>>,
    pub helm_repos: Vec<HelmRepository>,
    pub git_repos: Vec<GitRepository>,
}

impl ChartLookup {
    pub fn with_secret(mut self, name: &str, pairs: &[(&str, &[u8])]) -> Self {
        self.secrets.insert(
            name.to_string(),
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_vec()))
                .collect(),
        );
        self
    }
}

impl source_controller::helm_http::SecretLookup for ChartLookup {
    async fn secret(
        &self,
        _namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, Vec<u8>>>, String> {
        Ok(self.secrets.get(name).cloned())
    }
}

impl source_controller::helmchart::Lookup for ChartLookup {
    async fn helm_repository(
        &self,
        _namespace: &str,
        name: &str,
    ) -> Result<Option<HelmRepository>, String> {
        Ok(self
            .helm_repos
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(name))
            .cloned())
    }

    async fn git_repository(
        &self,
        _namespace: &str,
        name: &str,
    ) -> Result<Option<GitRepository>, String> {
        Ok(self
            .git_repos
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(name))
            .cloned())
    }

    async fn helm_repositories(&self, _namespace: &str) -> Result<Vec<HelmRepository>, String> {
        Ok(self.helm_repos.clone())
    }
}

pub struct Env {
    pub storage: Storage,
    _dir: tempfile::TempDir,
    scratch: tempfile::TempDir,
    pub settings: Settings,
}

impl Env {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::new(
            dir.path(),
            "localhost:9090",
            Duration::from_secs(60),
            2,
            DigestAlgo::Sha256,
        )
        .unwrap();
        Self {
            storage,
            _dir: dir,
            scratch: tempfile::tempdir().unwrap(),
            settings: Settings {
                requeue_dependency: Duration::from_secs(1),
                ..Settings::default()
            },
        }
    }

    /// Reconciles a HelmRepository in this storage until Ready; returns it with its status.
    pub async fn repository(&self, repo: HelmRepository, lookup: &ChartLookup) -> HelmRepository {
        let out = source_controller::helmrepository::run_pipeline(
            &repo,
            &self.storage,
            lookup,
            &Default::default(),
        )
        .await;
        assert_eq!(out.result, PipelineResult::Success, "{:?}", out.status);
        HelmRepository {
            status: Some(out.status),
            ..repo
        }
    }

    pub async fn run(&self, obj: &HelmChart, lookup: &ChartLookup) -> PipelineOutput {
        run_pipeline(
            obj,
            &self.storage,
            lookup,
            &self.settings,
            self.scratch.path(),
        )
        .await
    }

    pub async fn ready(
        &self,
        obj: &HelmChart,
        lookup: &ChartLookup,
    ) -> (HelmChart, PipelineOutput) {
        let out = self.run(obj, lookup).await;
        let ready = cond::get(out.status.conditions.as_deref().unwrap(), cond::READY).unwrap();
        assert_eq!(
            (out.result.clone(), ready.status.as_str()),
            (PipelineResult::Success, "True"),
            "{}",
            ready.message
        );
        let mut next = obj.clone();
        next.status = Some(out.status.clone());
        (next, out)
    }

    /// Expects Ready=False with `reason` and `needle`, on `condition`; the last artifact kept.
    pub async fn fails(
        &self,
        obj: &HelmChart,
        lookup: &ChartLookup,
        condition: &str,
        reason: &str,
        needle: &str,
    ) -> PipelineOutput {
        let out = self.run(obj, lookup).await;
        let conds = out.status.conditions.as_deref().unwrap();
        let ready = cond::get(conds, cond::READY).unwrap();
        assert_eq!(ready.status, "False", "{}", ready.message);
        assert_eq!(ready.reason, reason, "{}", ready.message);
        assert!(
            ready.message.contains(needle),
            "{:?} lacks {needle:?}",
            ready.message
        );
        assert!(!ready.message.contains('\n'), "one line: {}", ready.message);
        let c = cond::get(conds, condition).expect(condition);
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("True", reason));
        if let Some(old) = obj.status.as_ref().and_then(|s| s.artifact.as_ref()) {
            let kept = out.status.artifact.as_ref().expect("artifact kept");
            assert_eq!(kept.digest, old.digest);
            assert!(self.storage.artifact_exist(kept));
            self.storage.verify_artifact(kept).unwrap();
        }
        assert!(out.new_artifact.is_none());
        out
    }

    pub fn artifact_path(&self, out: &PipelineOutput) -> PathBuf {
        let a = out.status.artifact.as_ref().unwrap();
        self.storage.local_path(&a.path).unwrap()
    }
}

pub fn helm_chart(name: &str, generation: i64, spec: serde_json::Value) -> HelmChart {
    let mut spec = spec;
    if spec.get("interval").is_none() {
        spec["interval"] = "1m".into();
    }
    serde_json::from_value(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "HelmChart",
        "metadata": {"name": name, "namespace": "default", "generation": generation, "uid": "u-2"},
        "spec": spec,
    }))
    .unwrap()
}

fn sha256_file(p: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(p).unwrap()))
}

/// `helm template` of a chart (directory or archive) with values files.
pub fn template(home: &Path, chart: &Path, values: &[&Path]) -> String {
    let mut args = vec!["template", "rel", chart.to_str().unwrap()];
    for v in values {
        args.extend(["-f", v.to_str().unwrap()]);
    }
    helm(home, &args)
}

const PROD_VALUES: &str = "replicaCount: 3\nservice:\n  port: 8080\nimage:\n  tag: prod\n";

/// podinfo at several versions, with a values-prod.yaml inside the chart.
fn versions_repo() -> ChartRepo {
    let repo = ChartRepo::new();
    let src = create_chart(
        repo.work.path(),
        "podinfo",
        &[("values-prod.yaml", PROD_VALUES)],
    );
    for v in [
        "1.0.0",
        "1.1.0",
        "1.2.0-rc.1",
        "1.10.0",
        "2.0.0",
        "2.1.0",
        "3.0.0-beta.1",
    ] {
        repo.package(&src, v);
    }
    repo.index(None);
    repo
}

// helm runs as a blocking child process while the test server answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_ranges_resolve_as_helm_pull() {
    let repo = versions_repo();
    let server = serve_http(repo.dir.path(), None).await;
    let env = Env::new();
    let mut lookup = ChartLookup::default();
    let hr = env
        .repository(
            helm_repository(
                "charts",
                1,
                json!({"url": server.url("/"), "interval": "1m"}),
            ),
            &lookup,
        )
        .await;
    lookup.helm_repos.push(hr);
    let home = tempfile::tempdir().unwrap();
    for range in [
        "",
        "*",
        "1.x",
        "~1.1",
        ">=1.0.0 <2.0.0",
        "^2",
        "2.0.0",
        ">=1.2.0-0 <1.3.0",
        "<=1.10",
        ">= 1.0, < 1.5",
        "1.1.0 || 2.0.0",
        "~1.2.0-0",
        ">=1.2.0-0",
        "1.0.0 - 1.5",
    ] {
        let mut spec =
            json!({"chart": "podinfo", "sourceRef": {"kind": "HelmRepository", "name": "charts"}});
        if !range.is_empty() {
            spec["version"] = range.into();
        }
        let obj = helm_chart("podinfo", 1, spec);
        let (_, out) = env.ready(&obj, &lookup).await;
        let a = out.status.artifact.clone().unwrap();

        let dest = home.path().join(format!("pull-{}", a.revision));
        let repo_url = server.url("/");
        let mut args = vec![
            "pull",
            "podinfo",
            "--repo",
            repo_url.as_str(),
            "-d",
            dest.to_str().unwrap(),
        ];
        if !range.is_empty() {
            args.extend(["--version", range]);
        }
        std::fs::create_dir_all(&dest).unwrap();
        helm(home.path(), &args);
        let pulled: Vec<String> = std::fs::read_dir(&dest)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            pulled,
            [format!("podinfo-{}.tgz", a.revision)],
            "range {range:?}"
        );
        // Stored as served, under the upstream name and with the upstream summary.
        assert_eq!(
            a.path,
            format!("helmchart/default/podinfo/podinfo-{}.tgz", a.revision)
        );
        assert_eq!(
            sha256_file(&env.artifact_path(&out)),
            sha256_file(&dest.join(&pulled[0]))
        );
        let ready = cond::get(out.status.conditions.as_deref().unwrap(), cond::READY).unwrap();
        assert_eq!(
            ready.message,
            format!("pulled 'podinfo' chart with version '{}'", a.revision)
        );
        assert_eq!(ready.reason, "Succeeded");
        assert_eq!(out.status.observed_chart_name.as_deref(), Some("podinfo"));
        assert_eq!(
            out.status.url.as_deref(),
            Some("http://localhost:9090/helmchart/default/podinfo/latest.tar.gz")
        );
        let ev = out
            .events
            .iter()
            .find(|e| e.reason == "ChartPullSucceeded")
            .unwrap();
        assert_eq!(ev.message, ready.message);
    }
}

#[tokio::test]
async fn values_files_repackage_and_render_as_helm() {
    let repo = versions_repo();
    let server = serve_http(repo.dir.path(), None).await;
    let env = Env::new();
    let mut lookup = ChartLookup::default();
    let hr = env
        .repository(
            helm_repository(
                "charts",
                1,
                json!({"url": server.url("/"), "interval": "1m"}),
            ),
            &lookup,
        )
        .await;
    lookup.helm_repos.push(hr);
    let obj = helm_chart(
        "podinfo",
        3,
        json!({"chart": "podinfo", "version": "~1.1", "valuesFiles": ["values.yaml", "values-prod.yaml"],
               "sourceRef": {"kind": "HelmRepository", "name": "charts"}}),
    );
    let (obj, out) = env.ready(&obj, &lookup).await;
    let a = out.status.artifact.clone().unwrap();
    assert_eq!(a.revision, "1.1.0+3");
    let ready = cond::get(out.status.conditions.as_deref().unwrap(), cond::READY).unwrap();
    assert_eq!(
        ready.message,
        "packaged 'podinfo' chart with version '1.1.0+3' and merged values files [values.yaml values-prod.yaml]"
    );
    assert!(
        out.events
            .iter()
            .any(|e| e.reason == "ChartPackageSucceeded")
    );
    assert_eq!(out.status.observed_values_files, None);

    // The artifact renders as the original chart (packaged by helm with the same version)
    // with `-f values.yaml -f values-prod.yaml`.
    let home = tempfile::tempdir().unwrap();
    let src = repo.work.path().join("podinfo");
    let same = ChartRepo::new();
    let expected_chart = same.package(&src, "1.1.0+3");
    let ours = template(home.path(), &env.artifact_path(&out), &[]);
    let theirs = template(
        home.path(),
        &expected_chart,
        &[&src.join("values.yaml"), &src.join("values-prod.yaml")],
    );
    assert_eq!(ours, theirs);
    assert!(ours.contains("replicas: 3"), "{ours}");
    // helm lints and loads the packaged artifact.
    helm(
        home.path(),
        &["show", "chart", env.artifact_path(&out).to_str().unwrap()],
    );

    // Same generation: nothing rebuilt.
    let (obj, out) = env.ready(&obj, &lookup).await;
    assert!(out.new_artifact.is_none());
    assert!(out.events.iter().any(|e| e.reason == "ArtifactUpToDate"));

    // A missing values file stalls; ignored, the observed list records what was merged.
    let mut missing = obj.clone();
    missing.metadata.generation = Some(4);
    missing.spec.values_files = Some(vec!["values-prod.yaml".into(), "nope.yaml".into()]);
    let out = env
        .fails(
            &missing,
            &lookup,
            cond::BUILD_FAILED,
            "ValuesFilesError",
            "values files merge error: failed to merge chart values: no values file found at path 'nope.yaml'",
        )
        .await;
    assert!(matches!(out.result, PipelineResult::Stalled { .. }));
    missing.spec.ignore_missing_values_files = Some(true);
    let (_, out) = env.ready(&missing, &lookup).await;
    assert_eq!(out.status.artifact.unwrap().revision, "1.1.0+4");
    assert_eq!(
        out.status.observed_values_files,
        Some(vec!["values-prod.yaml".to_string()])
    );
}

#[tokio::test]
async fn credentials_follow_the_pass_credentials_rule() {
    // The index on one server, the charts (absolute URLs) on another; both want basic auth.
    let repo = ChartRepo::new();
    let src = create_chart(repo.work.path(), "app", &[]);
    repo.package(&src, "0.1.0");
    let charts_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let charts_url = format!("http://{}/", charts_listener.local_addr().unwrap());
    repo.index(Some(&charts_url));
    let _charts = serve_http_on(charts_listener, repo.dir.path(), Some(("user", "pass")));
    let index_server = serve_http(repo.dir.path(), Some(("user", "pass"))).await;

    let env = Env::new();
    let mut lookup = ChartLookup::default()
        .with_secret("creds", &[("username", b"user"), ("password", b"pass")]);
    let hr = env
        .repository(
            helm_repository(
                "charts",
                1,
                json!({"url": index_server.url("/"), "interval": "1m", "secretRef": {"name": "creds"}}),
            ),
            &lookup,
        )
        .await;
    lookup.helm_repos.push(hr.clone());
    let obj = helm_chart(
        "app",
        1,
        json!({"chart": "app", "sourceRef": {"kind": "HelmRepository", "name": "charts"}}),
    );
    env.fails(
        &obj,
        &lookup,
        cond::FETCH_FAILED,
        "AuthenticationFailed",
        "failed to authenticate with the Helm repository: chart pull error: failed to download chart for remote reference: failed to fetch",
    )
    .await;
    let mut passing = hr.clone();
    passing.spec.pass_credentials = Some(true);
    lookup.helm_repos = vec![passing];
    let (_, out) = env.ready(&obj, &lookup).await;
    assert_eq!(out.status.artifact.unwrap().revision, "0.1.0");
}

#[tokio::test]
async fn bad_input_keeps_the_last_artifact() {
    let repo = versions_repo();
    let server = serve_http(repo.dir.path(), None).await;
    let env = Env::new();
    let mut lookup = ChartLookup::default();

    // No source artifact yet: wait for it.
    let bare = helm_repository(
        "charts",
        1,
        json!({"url": server.url("/"), "interval": "1m"}),
    );
    lookup.helm_repos.push(bare.clone());
    let obj = helm_chart(
        "podinfo",
        1,
        json!({"chart": "podinfo", "version": "1.0.0", "sourceRef": {"kind": "HelmRepository", "name": "charts"}}),
    );
    let out = env.run(&obj, &lookup).await;
    assert!(
        matches!(&out.result, PipelineResult::Waiting { reason, .. } if reason == "NoSourceArtifact"),
        "{:?}",
        out.result
    );
    let hr = env.repository(bare, &lookup).await;
    lookup.helm_repos = vec![hr];
    let (obj, _) = env.ready(&obj, &lookup).await;

    // No version in range: a spec problem.
    let mut nomatch = obj.clone();
    nomatch.spec.version = Some("9.x".into());
    nomatch.metadata.generation = Some(2);
    let out = env
        .fails(
            &nomatch,
            &lookup,
            cond::FETCH_FAILED,
            "InvalidChartReference",
            "invalid chart reference: failed to get chart version for remote reference: no 'podinfo' chart with version matching '9.x' found",
        )
        .await;
    assert!(matches!(out.result, PipelineResult::Stalled { .. }));

    // The chart file changed after indexing: the digest does not match.
    let mut v11 = obj.clone();
    v11.spec.version = Some("1.1.0".into());
    v11.metadata.generation = Some(3);
    let good = std::fs::read(repo.dir.path().join("podinfo-1.1.0.tgz")).unwrap();
    std::fs::copy(
        repo.dir.path().join("podinfo-1.0.0.tgz"),
        repo.dir.path().join("podinfo-1.1.0.tgz"),
    )
    .unwrap();
    env.fails(
        &v11,
        &lookup,
        cond::FETCH_FAILED,
        "ChartPullError",
        "digest mismatch",
    )
    .await;
    repo.write("podinfo-1.1.0.tgz", &good);

    // A chart archive with `..` paths (indexed by hand: helm refuses to index it).
    let hostile = crate::registry::hostile_tar_gz("evil/../../pwned", "x");
    repo.write("evil-1.0.0.tgz", &hostile);
    let index = std::fs::read_to_string(repo.dir.path().join("index.yaml")).unwrap();
    let index = index.replacen(
        "entries:\n",
        "entries:\n  evil:\n  - apiVersion: v2\n    name: evil\n    version: 1.0.0\n    urls:\n    - evil-1.0.0.tgz\n",
        1,
    );
    repo.write("index.yaml", index.as_bytes());
    let hr = env.repository(lookup.helm_repos[0].clone(), &lookup).await;
    lookup.helm_repos = vec![hr];
    let mut evil = obj.clone();
    evil.spec.chart = Some("evil".into());
    evil.metadata.generation = Some(4);
    env.fails(
        &evil,
        &lookup,
        cond::FETCH_FAILED,
        "ChartPullError",
        "chart pull error: failed to load chart metadata from written chart: chart illegally references parent directory",
    )
    .await;

    // The chart host unreachable.
    let port = crate::support::free_port();
    let index = std::fs::read_to_string(repo.dir.path().join("index.yaml")).unwrap();
    let index = index.replace(
        "- podinfo-2.1.0.tgz",
        &format!("- http://127.0.0.1:{port}/podinfo-2.1.0.tgz"),
    );
    repo.write("index.yaml", index.as_bytes());
    let hr = env.repository(lookup.helm_repos[0].clone(), &lookup).await;
    lookup.helm_repos = vec![hr];
    let mut gone = obj.clone();
    gone.spec.version = Some("2.1.0".into());
    gone.metadata.generation = Some(5);
    env.fails(
        &gone,
        &lookup,
        cond::FETCH_FAILED,
        "ChartPullError",
        &format!("Get \"http://127.0.0.1:{port}/podinfo-2.1.0.tgz\""),
    )
    .await;

    // An invalid chart name.
    let mut bad = obj.clone();
    bad.spec.chart = Some("Bad_Name".into());
    bad.metadata.generation = Some(6);
    env.fails(
        &bad,
        &lookup,
        cond::FETCH_FAILED,
        "InvalidChartReference",
        "invalid chart name 'Bad_Name'",
    )
    .await;

    // spec.verify on an HTTP repository: upstream's verifier is not implemented for it.
    let mut verify = obj.clone();
    verify.metadata.generation = Some(7);
    verify.spec.verify = serde_json::from_value(json!({"provider": "cosign"})).unwrap();
    let out = env
        .fails(
            &verify,
            &lookup,
            cond::BUILD_FAILED,
            "ChartVerificationError",
            "chart verification error: not implemented",
        )
        .await;
    let sv = cond::get(
        out.status.conditions.as_deref().unwrap(),
        cond::SOURCE_VERIFIED,
    )
    .unwrap();
    assert_eq!(
        (sv.status.as_str(), sv.reason.as_str()),
        ("False", "VerificationError")
    );
    let _ = helm_try;
}

/// Writes `dir` as the GitRepository `name`'s artifact (revision `main@sha1:<commit>`).
fn git_source(env: &Env, name: &str, dir: &Path, commit: &str) -> GitRepository {
    let mut artifact = env.storage.new_artifact_for(
        "GitRepository",
        "default",
        name,
        &format!("main@sha1:{commit}"),
        &format!("{commit}.tar.gz"),
    );
    env.storage.mkdir_all(&artifact).unwrap();
    env.storage
        .archive(&mut artifact, dir, &|_, _| false, Default::default())
        .unwrap();
    let mut repo: GitRepository = serde_json::from_value(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"url": "https://example.com/repo.git", "interval": "1m"},
    }))
    .unwrap();
    repo.status = Some(ferroflux_api::gitrepository::GitRepositoryStatus {
        artifact: Some(artifact),
        ..Default::default()
    });
    repo
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

// helm runs as a blocking child process while the test server answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_chart_with_local_and_remote_dependencies_renders_as_helm() {
    // A chart repository (basic auth) with podinfo.
    let repo = versions_repo();
    let server = serve_http(repo.dir.path(), Some(("user", "pass"))).await;
    let url = server.url("/");

    // The Git tree: an umbrella chart with a file:// dependency and a remote one, next to the
    // local chart. (No alias: source-controller renames an aliased subchart, which `helm
    // template` then reports missing, upstream as here.)
    let tree = tempfile::tempdir().unwrap();
    let charts = tree.path().join("charts");
    create_chart(&charts, "lib-local", &[]);
    create_chart(&charts, "umbrella", &[]);
    let chart_yaml = format!(
        "apiVersion: v2\nname: umbrella\ndescription: An umbrella chart\ntype: application\nversion: 0.3.0\nappVersion: \"1.16.0\"\ndependencies:\n- name: lib-local\n  version: \">=0.1.0\"\n  repository: file://../lib-local\n- name: podinfo\n  version: \"~1.1\"\n  repository: {url}\n"
    );
    std::fs::write(charts.join("umbrella/Chart.yaml"), &chart_yaml).unwrap();
    std::fs::write(
        charts.join("umbrella/values.yaml"),
        std::fs::read_to_string(charts.join("umbrella/values.yaml")).unwrap()
            + "lib-local:\n  replicaCount: 4\npodinfo:\n  service:\n    port: 9999\n",
    )
    .unwrap();

    let env = Env::new();
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let git = git_source(&env, "tree", tree.path(), commit);
    let mut lookup = ChartLookup::default()
        .with_secret("creds", &[("username", b"user"), ("password", b"pass")]);
    lookup.git_repos.push(git);
    let obj = helm_chart(
        "umbrella",
        1,
        json!({"chart": "charts/umbrella", "sourceRef": {"kind": "GitRepository", "name": "tree"}}),
    );

    // Without a HelmRepository for the URL the index is fetched without credentials.
    env.fails(
        &obj,
        &lookup,
        cond::BUILD_FAILED,
        "DependencyBuildError",
        "dependency build error: failed to add remote dependency 'podinfo'",
    )
    .await;

    // With one (credentials from its secretRef, its stored index), the chart builds.
    let hr = env
        .repository(
            helm_repository(
                "podinfo-charts",
                1,
                json!({"url": url, "interval": "1m", "secretRef": {"name": "creds"}}),
            ),
            &lookup,
        )
        .await;
    lookup.helm_repos.push(hr);
    let (obj, out) = env.ready(&obj, &lookup).await;
    let a = out.status.artifact.clone().unwrap();
    assert_eq!(a.revision, "0.3.0");
    assert_eq!(a.path, "helmchart/default/umbrella/umbrella-0.3.0.tgz");
    let ready = cond::get(out.status.conditions.as_deref().unwrap(), cond::READY).unwrap();
    assert_eq!(
        ready.message,
        "packaged 'umbrella' chart with version '0.3.0'"
    );
    assert!(out.events.iter().any(
        |e| e.reason == "ResolvedDependencies" && e.message == "resolved 2 chart dependencies"
    ));
    assert_eq!(
        out.status.observed_source_artifact_revision.as_deref(),
        Some(format!("main@sha1:{commit}").as_str())
    );

    // The same directory through `helm dependency build` renders identically.
    let home = tempfile::tempdir().unwrap();
    let work = home.path().join("tree");
    copy_dir(tree.path(), &work);
    helm(
        home.path(),
        &[
            "repo",
            "add",
            "podinfo-charts",
            &url,
            "--username",
            "user",
            "--password",
            "pass",
        ],
    );
    helm(
        home.path(),
        &[
            "dependency",
            "build",
            work.join("charts/umbrella").to_str().unwrap(),
        ],
    );
    let theirs = template(home.path(), &work.join("charts/umbrella"), &[]);
    let ours = template(home.path(), &env.artifact_path(&out), &[]);
    assert_eq!(ours, theirs);
    assert!(
        ours.contains("port: 9999") && ours.contains("replicas: 4"),
        "{ours}"
    );

    // Revision strategy: the commit's first 12 hex digits as build metadata.
    let mut by_rev = obj.clone();
    by_rev.spec.reconcile_strategy = Some(ferroflux_api::helmchart::ReconcileStrategy::Revision);
    by_rev.metadata.generation = Some(2);
    let (_, out) = env.ready(&by_rev, &lookup).await;
    assert_eq!(out.status.artifact.unwrap().revision, "0.3.0+0123456789ab");

    // A values file outside the chart (paths are relative to the source root), and one that
    // tries to leave the root.
    std::fs::write(
        tree.path().join("prod.yaml"),
        "lib-local:\n  replicaCount: 7\n",
    )
    .unwrap();
    let git = git_source(&env, "tree", tree.path(), commit);
    lookup.git_repos = vec![git];
    let mut with_values = obj.clone();
    with_values.metadata.generation = Some(3);
    with_values.spec.values_files = Some(vec![
        "charts/umbrella/values.yaml".into(),
        "prod.yaml".into(),
    ]);
    let (_, out) = env.ready(&with_values, &lookup).await;
    assert_eq!(out.status.artifact.clone().unwrap().revision, "0.3.0+3");
    let rendered = template(home.path(), &env.artifact_path(&out), &[]);
    assert!(rendered.contains("replicas: 7"), "{rendered}");
    let mut escape = with_values.clone();
    escape.metadata.generation = Some(4);
    escape.spec.values_files = Some(vec!["../../etc/passwd".into()]);
    env.fails(
        &escape,
        &lookup,
        cond::BUILD_FAILED,
        "ValuesFilesError",
        "no values file found at path '/etc/passwd' (reference '../../etc/passwd')",
    )
    .await;
}

#[tokio::test]
async fn index_cache_serves_charts_without_reading_storage() {
    let repo = versions_repo();
    let server = serve_http(repo.dir.path(), None).await;
    let mut env = Env::new();
    let cache =
        source_controller::helm_cache::IndexCache::new(10, Duration::from_secs(60)).unwrap();
    let mut lookup = ChartLookup::default();
    let hr = helm_repository(
        "charts",
        1,
        json!({"url": server.url("/"), "interval": "1m"}),
    );
    let settings = source_controller::helmrepository::Settings {
        cache: Some(cache.clone()),
        ..Default::default()
    };
    let out =
        source_controller::helmrepository::run_pipeline(&hr, &env.storage, &lookup, &settings)
            .await;
    assert_eq!(out.result, PipelineResult::Success);
    assert_eq!(cache.len(), 1);
    let artifact = out.status.artifact.clone().unwrap();
    lookup.helm_repos.push(HelmRepository {
        status: Some(out.status),
        ..hr
    });
    // The stored index is damaged: only the cache can answer.
    std::fs::write(env.storage.local_path(&artifact.path).unwrap(), b"{").unwrap();
    let obj = helm_chart(
        "podinfo",
        1,
        json!({"chart": "podinfo", "version": "~1.1", "sourceRef": {"kind": "HelmRepository", "name": "charts"}}),
    );
    env.settings.cache = Some(cache);
    let (_, out) = env.ready(&obj, &lookup).await;
    assert_eq!(out.status.artifact.unwrap().revision, "1.1.0");
    env.settings.cache = None;
    let mut other = obj.clone();
    other.metadata.generation = Some(2);
    env.fails(
        &other,
        &lookup,
        cond::FETCH_FAILED,
        "ChartPullError",
        "failed to load index",
    )
    .await;
}
