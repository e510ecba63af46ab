//! The GitRepository pipeline against real Git servers (no API server): references, revisions,
//! artifacts, determinism, failures and what stays served after them.

use std::path::Path;
use std::time::Duration;

use ferroflux_api::conditions as cond;
use ferroflux_api::gitrepository::GitRepositoryStatus;
use ferroflux_api::{Artifact, GitRepository};
use serde_json::json;
use source_controller::gitrepository::{PipelineOutput, PipelineResult, Settings, run_pipeline};
use source_controller::storage::{ArchiveLimits, DigestAlgo, Storage};

use crate::support::{
    FakeLookup, Repos, git, git_daemon, git_env, git_repository, http_git, http_git_bearer,
    http_proxy, https_git, pki, ssh_keygen, sshd,
};

struct Env {
    storage: Storage,
    _storage_dir: tempfile::TempDir,
    scratch: tempfile::TempDir,
    settings: Settings,
}

impl Env {
    fn new() -> Self {
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
            _storage_dir: dir,
            scratch: tempfile::tempdir().unwrap(),
            settings: Settings::default(),
        }
    }

    async fn run(&self, obj: &GitRepository, lookup: &FakeLookup) -> PipelineOutput {
        run_pipeline(
            obj,
            &self.storage,
            lookup,
            &self.settings,
            self.scratch.path(),
        )
        .await
    }

    /// Names of the entries in the stored artifact.
    fn entries(&self, a: &Artifact) -> Vec<String> {
        let data = std::fs::read(self.storage.local_path(&a.path).unwrap()).unwrap();
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(&data[..]));
        ar.entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    fn file(&self, a: &Artifact, name: &str) -> String {
        use std::io::Read;
        let data = std::fs::read(self.storage.local_path(&a.path).unwrap()).unwrap();
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(&data[..]));
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            if e.path().unwrap().to_string_lossy() == name {
                let mut s = String::new();
                e.read_to_string(&mut s).unwrap();
                return s;
            }
        }
        panic!("{name} not in artifact");
    }
}

fn ready(out: &PipelineOutput) -> (String, String, String) {
    let c = cond::get(out.status.conditions.as_deref().unwrap_or(&[]), cond::READY)
        .expect("Ready is set");
    (c.status.clone(), c.reason.clone(), c.message.clone())
}

fn with_status(mut obj: GitRepository, status: &GitRepositoryStatus) -> GitRepository {
    obj.status = Some(status.clone());
    obj
}

/// The fixture repository `app`: two commits on main (tags v1.0.0 annotated, v1.1.0
/// lightweight, v2.0.0-rc.1), a `feature` branch also published as `refs/pull/1/head`.
struct App {
    c1: String,
    c2: String,
    c3: String,
}

fn app(repos: &Repos) -> App {
    let c1 = repos.commit(
        "app",
        &[
            ("deploy/app.yaml", "kind: ConfigMap\nversion: 1\n"),
            ("README.md", "# app\n"),
            ("logo.png", "PNG"),
            (".github/workflows/ci.yaml", "on: push\n"),
            ("deploy/.sops.yaml", "creation_rules: []\n"),
        ],
        "first commit\n\nwith a body",
    );
    let w = repos.work("app");
    git(&w, &["tag", "-a", "v1.0.0", "-m", "release 1.0.0"]);
    let c2 = repos.commit(
        "app",
        &[("deploy/app.yaml", "kind: ConfigMap\nversion: 2\n")],
        "second commit",
    );
    git(&w, &["tag", "v1.1.0"]);
    git(&w, &["tag", "v2.0.0-rc.1"]);
    git(&w, &["checkout", "-q", "-b", "feature"]);
    let c3 = repos.commit("app", &[("feature.txt", "feature\n")], "feature commit");
    git(&w, &["checkout", "-q", "main"]);
    let bare = repos.publish("app");
    git(
        &w,
        &[
            "push",
            "-q",
            bare.to_str().unwrap(),
            "feature:refs/pull/1/head",
        ],
    );
    App { c1, c2, c3 }
}

/// Tags of equal version (they differ only in build metadata or the `v`) resolve to the one
/// whose commit is newest by committer time, as upstream sorts them; equal times fall back to
/// the greatest tag name.
#[tokio::test(flavor = "multi_thread")]
async fn semver_ties_resolve_by_commit_time() {
    let repos = Repos::new();
    let w = repos.work("ties");
    let commit_at = |file: &str, date: &str| {
        std::fs::write(w.join(file), date).unwrap();
        git(&w, &["add", "-A"]);
        git_env(
            &w,
            &["commit", "-q", "-m", file],
            &[("GIT_COMMITTER_DATE", date)],
        );
        git(&w, &["rev-parse", "HEAD"])
    };
    let old = commit_at("a", "2026-01-01T00:00:00Z");
    git(&w, &["tag", "v1.0.0+build.2"]);
    let newest = commit_at("b", "2026-01-03T00:00:00Z");
    git_env(
        &w,
        &["tag", "-a", "v1.0.0+build.1", "-m", "annotated"],
        &[("GIT_COMMITTER_DATE", "2026-01-05T00:00:00Z")],
    );
    let middle = commit_at("c", "2026-01-02T00:00:00Z");
    git(&w, &["tag", "1.0.0"]);
    let same1 = commit_at("d", "2026-02-01T00:00:00Z");
    git(&w, &["tag", "v2.0.0+b"]);
    let same2 = commit_at("e", "2026-02-01T00:00:00Z");
    git(&w, &["tag", "v2.0.0+a"]);
    repos.publish("ties");
    let daemon = git_daemon(&repos.base());
    let url = format!("git://127.0.0.1:{}/ties.git", daemon.port);
    let env = Env::new();
    let lookup = FakeLookup::default();
    let cases = [
        ("1.0.x", format!("v1.0.0+build.1@sha1:{newest}")),
        ("<1.0.1", format!("v1.0.0+build.1@sha1:{newest}")),
        ("2.x", format!("v2.0.0+b@sha1:{same1}")),
        (">=1.0.0", format!("v2.0.0+b@sha1:{same1}")),
    ];
    for (i, (range, want)) in cases.iter().enumerate() {
        let obj = git_repository(
            &format!("t{i}"),
            1,
            json!({"url": url, "ref": {"semver": range}}),
        );
        let out = env.run(&obj, &lookup).await;
        assert_eq!(
            out.result,
            PipelineResult::Success,
            "{range}: {:?}",
            ready(&out)
        );
        assert_eq!(&out.status.artifact.unwrap().revision, want, "{range}");
    }
    // Not picked: the older commits of the same version.
    assert!(![old, middle, same2].contains(&newest));
}

#[tokio::test(flavor = "multi_thread")]
async fn references_resolve_to_upstream_revision_strings() {
    let repos = Repos::new();
    let a = app(&repos);
    let daemon = git_daemon(&repos.base());
    let url = format!("git://127.0.0.1:{}/app.git", daemon.port);
    let env = Env::new();
    let lookup = FakeLookup::default();
    let cases: Vec<(serde_json::Value, String)> = vec![
        (json!(null), format!("master@sha1:{}", a.c2)),
        (json!({"branch": "main"}), format!("main@sha1:{}", a.c2)),
        (
            json!({"branch": "feature"}),
            format!("feature@sha1:{}", a.c3),
        ),
        (json!({"tag": "v1.0.0"}), format!("v1.0.0@sha1:{}", a.c1)),
        (json!({"tag": "v1.1.0"}), format!("v1.1.0@sha1:{}", a.c2)),
        (
            json!({"semver": ">=1.0.0 <2.0.0"}),
            format!("v1.1.0@sha1:{}", a.c2),
        ),
        (json!({"semver": "~1.0"}), format!("v1.0.0@sha1:{}", a.c1)),
        (
            json!({"name": "refs/pull/1/head"}),
            format!("refs/pull/1/head@sha1:{}", a.c3),
        ),
        (
            json!({"name": "refs/heads/main"}),
            format!("refs/heads/main@sha1:{}", a.c2),
        ),
        (json!({"commit": a.c1}), format!("sha1:{}", a.c1)),
        (
            json!({"branch": "main", "commit": a.c1}),
            format!("main@sha1:{}", a.c1),
        ),
        // Precedence: commit > name > tag > semver > branch.
        (
            json!({"branch": "main", "tag": "v1.0.0", "name": "refs/pull/1/head"}),
            format!("refs/pull/1/head@sha1:{}", a.c3),
        ),
        (
            json!({"branch": "feature", "tag": "v1.0.0", "semver": ">=1.1.0"}),
            format!("v1.0.0@sha1:{}", a.c1),
        ),
        (
            json!({"branch": "feature", "semver": "1.1.x"}),
            format!("v1.1.0@sha1:{}", a.c2),
        ),
    ];
    // The fixture has no master branch: push main there too, as the default.
    let w = repos.work("app");
    git(
        &w,
        &[
            "push",
            "-q",
            repos.base().join("app.git").to_str().unwrap(),
            "main:master",
        ],
    );
    for (i, (r, want)) in cases.into_iter().enumerate() {
        let mut spec = json!({"url": url});
        if !r.is_null() {
            spec["ref"] = r.clone();
        }
        let obj = git_repository(&format!("r{i}"), 1, spec);
        let out = env.run(&obj, &lookup).await;
        assert_eq!(
            out.result,
            PipelineResult::Success,
            "{r}: {:?}",
            ready(&out)
        );
        let artifact = out.status.artifact.clone().unwrap();
        assert_eq!(artifact.revision, want, "ref {r}");
        let hash = want.rsplit_once("sha1:").unwrap().1;
        assert_eq!(
            artifact.path,
            format!("gitrepository/default/r{i}/{hash}.tar.gz")
        );
        assert_eq!(
            artifact.url,
            format!("http://localhost:9090/gitrepository/default/r{i}/{hash}.tar.gz")
        );
        assert!(artifact.digest.starts_with("sha256:"));
        env.storage.verify_artifact(&artifact).unwrap();
        let (s, reason, msg) = ready(&out);
        assert_eq!((s.as_str(), reason.as_str()), ("True", "Succeeded"));
        assert_eq!(msg, format!("stored artifact for revision '{want}'"));
        assert_eq!(out.status.observed_generation, Some(1));
        let conds = out.status.conditions.as_deref().unwrap();
        assert!(cond::is_true(conds, cond::ARTIFACT_IN_STORAGE));
        assert!(cond::get(conds, cond::RECONCILING).is_none());
        let new = out
            .events
            .iter()
            .find(|e| e.reason == "NewArtifact")
            .expect("NewArtifact event");
        assert_eq!(new.metadata["revision"], want);
        assert_eq!(new.metadata["digest"], artifact.digest);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn same_commit_gives_same_digest_across_runs_replicas_and_transports() {
    let repos = Repos::new();
    let a = app(&repos);
    let daemon = git_daemon(&repos.base());
    let http = http_git(&repos.base(), "user", "pass").await;
    let lookup =
        FakeLookup::default().with_secret("auth", &[("username", b"user"), ("password", b"pass")]);
    let spec_git = json!({"url": format!("git://127.0.0.1:{}/app.git", daemon.port), "ref": {"branch": "main"}});
    let spec_http = json!({"url": format!("http://{}/app.git", http.addr), "ref": {"branch": "main"}, "secretRef": {"name": "auth"}});

    let replica1 = Env::new();
    let replica2 = Env::new();
    let o1 = replica1
        .run(&git_repository("app", 1, spec_git.clone()), &lookup)
        .await;
    let o2 = replica2
        .run(&git_repository("app", 1, spec_git.clone()), &lookup)
        .await;
    let o3 = replica2
        .run(&git_repository("app", 1, spec_http), &lookup)
        .await;
    let d1 = o1.status.artifact.unwrap().digest;
    assert_eq!(d1, o2.status.artifact.unwrap().digest);
    let a3 = o3.status.artifact.unwrap();
    assert_eq!(a3.revision, format!("main@sha1:{}", a.c2));
    assert_eq!(
        d1, a3.digest,
        "HTTP and git:// fetches of one commit give the same bytes"
    );

    // Fetched again after the artifact disappeared from storage: rebuilt with the same digest.
    let obj = git_repository("again", 1, spec_git);
    let first = replica1.run(&obj, &lookup).await;
    let art = first.status.artifact.clone().unwrap();
    std::fs::remove_file(replica1.storage.local_path(&art.path).unwrap()).unwrap();
    let second = replica1
        .run(&with_status(obj, &first.status), &lookup)
        .await;
    assert_eq!(second.result, PipelineResult::Success);
    assert_eq!(second.status.artifact.unwrap().digest, d1);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_cases_fail_with_upstream_reasons_and_keep_the_last_artifact() {
    let repos = Repos::new();
    app(&repos);
    // A second repository with a symlink escaping the tree.
    repos.commit("evil", &[("ok.yaml", "a: 1\n")], "ok");
    let w = repos.work("evil");
    std::os::unix::fs::symlink("../../../../etc/passwd", w.join("passwd")).unwrap();
    std::os::unix::fs::symlink("ok.yaml", w.join("inside")).unwrap();
    git(&w, &["add", "-A"]);
    git(&w, &["commit", "-q", "-m", "symlink out"]);
    repos.publish("evil");
    // A third one with a large file.
    repos.commit("big", &[("big.bin", &"x".repeat(2048))], "big file");
    repos.publish("big");

    let daemon = git_daemon(&repos.base());
    let http = http_git(&repos.base(), "user", "pass").await;
    let env = Env::new();
    let lookup = FakeLookup::default()
        .with_secret("good", &[("username", b"user"), ("password", b"pass")])
        .with_secret("bad", &[("username", b"user"), ("password", b"wrong")]);

    let good_spec = json!({"url": format!("http://{}/app.git", http.addr), "ref": {"branch": "main"}, "secretRef": {"name": "good"}});
    let obj = git_repository("app", 1, good_spec.clone());
    let ok = env.run(&obj, &lookup).await;
    assert_eq!(ok.result, PipelineResult::Success, "{:?}", ready(&ok));
    let good = ok.status.artifact.clone().unwrap();

    let bad_specs: Vec<(&str, serde_json::Value, &str, &str)> = vec![
        (
            "unknown ref",
            json!({"url": format!("http://{}/app.git", http.addr), "ref": {"branch": "nope"}, "secretRef": {"name": "good"}}),
            "GitOperationFailed",
            "couldn't find remote ref \"refs/heads/nope\"",
        ),
        (
            "wrong credentials",
            json!({"url": format!("http://{}/app.git", http.addr), "ref": {"branch": "main"}, "secretRef": {"name": "bad"}}),
            "GitOperationFailed",
            "failed to checkout and determine revision: unable to clone",
        ),
        (
            "missing secret",
            json!({"url": format!("http://{}/app.git", http.addr), "ref": {"branch": "main"}, "secretRef": {"name": "absent"}}),
            "AuthenticationFailed",
            "failed to get secret 'default/absent'",
        ),
        (
            "unreachable host",
            json!({"url": "http://127.0.0.1:1/app.git", "ref": {"branch": "main"}}),
            "GitOperationFailed",
            "unable to clone 'http://127.0.0.1:1/app.git'",
        ),
        (
            "symlink pointing outside the repository",
            json!({"url": format!("git://127.0.0.1:{}/evil.git", daemon.port), "ref": {"branch": "main"}}),
            "GitOperationFailed",
            "symlink 'passwd' points outside the repository (target '../../../../etc/passwd')",
        ),
        (
            "unsigned commit",
            json!({"url": format!("http://{}/app.git", http.addr), "ref": {"branch": "main"}, "secretRef": {"name": "good"}, "verify": {"mode": "HEAD", "secretRef": {"name": "good"}}}),
            "InvalidCommitSignature",
            "signature verification of commit",
        ),
    ];
    for (what, spec, reason, needle) in bad_specs {
        let bad = env
            .run(
                &with_status(git_repository("app", 2, spec), &ok.status),
                &lookup,
            )
            .await;
        let (s, r, m) = ready(&bad);
        assert_eq!((s.as_str(), r.as_str()), ("False", reason), "{what}: {m}");
        assert!(m.contains(needle), "{what}: {m}");
        assert!(!m.contains('\n'), "{what}: one-line message: {m}");
        assert!(
            matches!(bad.result, PipelineResult::Failed { .. }),
            "{what}"
        );
        assert_eq!(
            bad.status.artifact.as_ref(),
            Some(&good),
            "{what}: last artifact kept"
        );
        assert!(env.storage.artifact_exist(&good), "{what}: still served");
        assert_eq!(bad.status.observed_generation, Some(1), "{what}");
        let rc = cond::get(bad.status.conditions.as_deref().unwrap(), cond::RECONCILING);
        assert!(
            rc.is_none_or(|c| c.reason == "ProgressingWithRetry"),
            "{what}"
        );
        assert!(
            bad.events.iter().any(|e| e.reason == reason),
            "{what}: warning event"
        );
    }

    // A symlink escaping the tree fails the revision (upstream would leave it out of the
    // artifact; the issue asks for Ready=False); a symlink inside the tree is fine and, like
    // every symlink, left out of the artifact.
    repos.commit("inner", &[("ok.yaml", "a: 1\n")], "ok");
    let w = repos.work("inner");
    std::os::unix::fs::symlink("ok.yaml", w.join("inside")).unwrap();
    git(&w, &["add", "-A"]);
    git(&w, &["commit", "-q", "-m", "symlink in"]);
    repos.publish("inner");
    let out = env
        .run(
            &git_repository("inner", 1, json!({"url": format!("git://127.0.0.1:{}/inner.git", daemon.port), "ref": {"branch": "main"}})),
            &lookup,
        )
        .await;
    assert_eq!(out.result, PipelineResult::Success, "{:?}", ready(&out));
    let names = env.entries(out.status.artifact.as_ref().unwrap());
    assert!(names.iter().any(|n| n.ends_with("ok.yaml")), "{names:?}");
    assert!(!names.iter().any(|n| n.contains("inside")), "{names:?}");

    // A file over the size limit (`--artifact-max-file-size`, off by default as upstream has
    // no such limit).
    let mut small = Env::new();
    small.settings.limits = ArchiveLimits {
        max_file_size: Some(1024),
    };
    let out = small
        .run(&git_repository("big", 1, json!({"url": format!("git://127.0.0.1:{}/big.git", daemon.port), "ref": {"branch": "main"}})), &lookup)
        .await;
    let (s, r, m) = ready(&out);
    assert_eq!(
        (s.as_str(), r.as_str()),
        ("False", "ArchiveOperationFailed"),
        "{m}"
    );
    assert!(
        m.contains("'big.bin' is 2048 bytes, larger than the limit of 1024 bytes"),
        "{m}"
    );
    assert!(cond::is_true(
        out.status.conditions.as_deref().unwrap(),
        cond::STORAGE_OPERATION_FAILED
    ));

    // An invalid URL stalls.
    let out = env
        .run(
            &git_repository("x", 1, json!({"url": "ftp://h/x"})),
            &lookup,
        )
        .await;
    let (s, r, _) = ready(&out);
    assert_eq!((s.as_str(), r.as_str()), ("False", "URLInvalid"));
    assert!(matches!(out.result, PipelineResult::Stalled { .. }));
    assert!(cond::is_true(
        out.status.conditions.as_deref().unwrap(),
        cond::STALLED
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn ignore_rules_defaults_and_user_patterns() {
    let repos = Repos::new();
    app(&repos);
    repos.commit(
        "app",
        &[
            ("deploy/.sourceignore", "secret.yaml\n"),
            ("deploy/secret.yaml", "x"),
            ("secret.yaml", "y"),
        ],
        "ignore",
    );
    repos.publish("app");
    let daemon = git_daemon(&repos.base());
    let env = Env::new();
    let lookup = FakeLookup::default();
    let url = format!("git://127.0.0.1:{}/app.git", daemon.port);

    let out = env
        .run(
            &git_repository("d", 1, json!({"url": url, "ref": {"branch": "main"}})),
            &lookup,
        )
        .await;
    let names = env.entries(out.status.artifact.as_ref().unwrap());
    assert_eq!(names[0], ".");
    for kept in [
        "README.md",
        "deploy",
        "deploy/app.yaml",
        "deploy/.sourceignore",
        "secret.yaml",
    ] {
        assert!(names.contains(&kept.to_string()), "{kept} kept: {names:?}");
    }
    // The .sourceignore pattern makes user patterns present: the defaults are dropped.
    for gone in ["deploy/secret.yaml", ".git"] {
        assert!(
            !names.contains(&gone.to_string()),
            "{gone} ignored: {names:?}"
        );
    }
    assert!(
        names.contains(&"logo.png".to_string()),
        "defaults dropped when user patterns exist"
    );

    let spec = json!({"url": url, "ref": {"tag": "v1.0.0"}});
    let out = env.run(&git_repository("defaults", 1, spec), &lookup).await;
    let names = env.entries(out.status.artifact.as_ref().unwrap());
    for gone in [
        "logo.png",
        ".github",
        ".github/workflows/ci.yaml",
        "deploy/.sops.yaml",
    ] {
        assert!(
            !names.contains(&gone.to_string()),
            "{gone} excluded by default: {names:?}"
        );
    }

    let spec = json!({"url": url, "ref": {"tag": "v1.0.0"}, "ignore": "/*\n!/deploy\n"});
    let out = env.run(&git_repository("user", 1, spec), &lookup).await;
    let names = env.entries(out.status.artifact.as_ref().unwrap());
    assert_eq!(
        names,
        vec![".", "deploy", "deploy/.sops.yaml", "deploy/app.yaml"]
    );
    assert_eq!(
        out.status.observed_ignore.as_deref(),
        Some("/*\n!/deploy\n")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unchanged_remote_is_a_no_op_and_spec_changes_rebuild() {
    let repos = Repos::new();
    let a = app(&repos);
    let daemon = git_daemon(&repos.base());
    let env = Env::new();
    let lookup = FakeLookup::default();
    let url = format!("git://127.0.0.1:{}/app.git", daemon.port);
    let obj = git_repository("app", 1, json!({"url": url, "ref": {"branch": "main"}}));
    let first = env.run(&obj, &lookup).await;
    let art = first.status.artifact.clone().unwrap();

    let second = env
        .run(&with_status(obj.clone(), &first.status), &lookup)
        .await;
    assert_eq!(second.result, PipelineResult::Success);
    assert!(
        second.new_artifact.is_none(),
        "no new artifact when nothing changed"
    );
    assert_eq!(second.status.artifact.as_ref(), Some(&art));
    assert!(!second.events.iter().any(|e| e.reason == "NewArtifact"));

    // A new commit: new revision, ArtifactOutdated cleared at the end, new artifact.
    let c4 = repos.commit("app", &[("new.yaml", "n: 1\n")], "third commit");
    repos.publish("app");
    let third = env
        .run(&with_status(obj.clone(), &second.status), &lookup)
        .await;
    assert_eq!(
        third.status.artifact.as_ref().unwrap().revision,
        format!("main@sha1:{c4}")
    );
    assert!(third.new_artifact.is_some());
    assert!(
        cond::get(
            third.status.conditions.as_deref().unwrap(),
            cond::ARTIFACT_OUTDATED
        )
        .is_none()
    );
    assert_ne!(c4, a.c2);

    // Same revision, different ignore rules: rebuilt.
    let changed = git_repository(
        "app",
        2,
        json!({"url": url, "ref": {"branch": "main"}, "ignore": "*.md\n"}),
    );
    let fourth = env.run(&with_status(changed, &third.status), &lookup).await;
    assert!(fourth.new_artifact.is_some(), "content config changed");
    assert_eq!(fourth.status.observed_generation, Some(2));
    assert!(
        !env.entries(fourth.status.artifact.as_ref().unwrap())
            .contains(&"README.md".to_string())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn include_copies_other_artifacts_and_records_them() {
    let repos = Repos::new();
    app(&repos);
    repos.commit(
        "lib",
        &[
            ("base/kustomization.yaml", "resources: []\n"),
            ("other/x", "x"),
        ],
        "lib",
    );
    repos.publish("lib");
    let daemon = git_daemon(&repos.base());
    let env = Env::new();
    let url = |n: &str| format!("git://127.0.0.1:{}/{n}.git", daemon.port);
    let lib = git_repository(
        "lib",
        1,
        json!({"url": url("lib"), "ref": {"branch": "main"}}),
    );
    let lib_out = env.run(&lib, &FakeLookup::default()).await;
    let mut lookup = FakeLookup::default();

    let incl = json!({"url": url("app"), "ref": {"branch": "main"},
        "include": [{"repository": {"name": "lib"}, "fromPath": "base", "toPath": "vendor/base"}]});
    // Not ready yet: waits with IncludeUnavailable / NoArtifact.
    lookup.repos.insert("lib".into(), lib.clone());
    let out = env
        .run(&git_repository("app", 1, incl.clone()), &lookup)
        .await;
    let (s, r, m) = ready(&out);
    assert_eq!(
        (s.as_str(), r.as_str(), m.as_str()),
        (
            "False",
            "NoArtifact",
            "no artifact available for include 'lib'"
        )
    );
    assert!(matches!(out.result, PipelineResult::Waiting { .. }));

    lookup
        .repos
        .insert("lib".into(), with_status(lib, &lib_out.status));
    let out = env.run(&git_repository("app", 1, incl), &lookup).await;
    assert_eq!(out.result, PipelineResult::Success, "{:?}", ready(&out));
    let a = out.status.artifact.as_ref().unwrap();
    assert_eq!(
        env.file(a, "vendor/base/kustomization.yaml"),
        "resources: []\n"
    );
    assert!(!env.entries(a).iter().any(|e| e.contains("other")));
    assert_eq!(
        out.status.included_artifacts.as_ref().unwrap()[0].revision,
        lib_out.status.artifact.as_ref().unwrap().revision
    );
    assert_eq!(out.status.observed_include.as_ref().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn sparse_checkout_and_shallow_fetch() {
    let repos = Repos::new();
    let a = app(&repos);
    let daemon = git_daemon(&repos.base());
    let http = http_git(&repos.base(), "user", "pass").await;
    let env = Env::new();
    let lookup =
        FakeLookup::default().with_secret("auth", &[("username", b"user"), ("password", b"pass")]);
    let url = format!("git://127.0.0.1:{}/app.git", daemon.port);

    let out = env
        .run(
            &git_repository(
                "s",
                1,
                json!({"url": url, "ref": {"branch": "main"}, "sparseCheckout": ["./deploy/"]}),
            ),
            &lookup,
        )
        .await;
    let names = env.entries(out.status.artifact.as_ref().unwrap());
    assert_eq!(names, vec![".", "deploy", "deploy/app.yaml"]);
    assert_eq!(
        out.status.observed_sparse_checkout.as_deref(),
        Some(&["./deploy/".to_string()][..])
    );

    let out = env
        .run(
            &git_repository(
                "s2",
                1,
                json!({"url": url, "ref": {"branch": "main"}, "sparseCheckout": ["nope"]}),
            ),
            &lookup,
        )
        .await;
    let (s, r, m) = ready(&out);
    assert_eq!((s.as_str(), r.as_str()), ("False", "GitOperationFailed"));
    assert!(
        m.contains("sparse checkout dir 'nope' does not exist in repository"),
        "{m}"
    );

    // Shallow where the server allows it: git daemon and the HTTP bridge speak protocol v2.
    for (url, auth) in [
        (url.clone(), source_controller::git::AuthOptions::default()),
        (
            format!("http://{}/app.git", http.addr),
            source_controller::git::AuthOptions {
                username: Some("user".into()),
                password: Some("pass".into()),
                ..Default::default()
            },
        ),
    ] {
        let work = tempfile::tempdir().unwrap();
        let cfg = source_controller::git::CloneConfig {
            url: url.clone(),
            reference: source_controller::git::Reference::Branch("main".into()),
            auth,
            last_observed_revision: None,
            recurse_submodules: false,
            sparse_checkout: None,
            ssh_kex_algos: vec![],
            ssh_hostkey_algos: vec![],
            timeout: None,
        };
        let out = tokio::task::spawn_blocking(move || {
            source_controller::git::clone(
                &cfg,
                &work.path().join("w"),
                &work.path().join("c"),
                &Default::default(),
            )
        })
        .await
        .unwrap()
        .unwrap();
        match out {
            source_controller::git::CloneOutcome::CheckedOut { commit, shallow } => {
                assert_eq!(commit.hash, a.c2);
                assert!(shallow, "{url}: depth-1 fetch");
                assert_eq!(commit.short_message(), "second commit");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ssh_with_identity_passphrase_and_known_hosts() {
    let repos = Repos::new();
    let a = app(&repos);
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = ssh_keygen(keys.path(), "id", "");
    let (enc_key, enc_public) = ssh_keygen(keys.path(), "id_enc", "s3cret");
    let server = sshd(&keys.path().join("sshd"), &[public, enc_public]);
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());
    let url = format!(
        "ssh://{user}@127.0.0.1:{}{}",
        server.server.port,
        repos.base().join("app.git").display()
    );
    let identity = std::fs::read(&key).unwrap();
    let enc_identity = std::fs::read(&enc_key).unwrap();
    let (_other_key, _) = ssh_keygen(keys.path(), "other_host", "");
    let wrong_hosts = format!(
        "[127.0.0.1]:{} {}",
        server.server.port,
        std::fs::read_to_string(keys.path().join("other_host.pub"))
            .unwrap()
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let lookup = FakeLookup::default()
        .with_secret(
            "ssh",
            &[
                ("identity", &identity),
                ("known_hosts", server.known_hosts.as_bytes()),
            ],
        )
        .with_secret(
            "ssh-enc",
            &[
                ("identity", &enc_identity),
                ("password", b"s3cret"),
                ("known_hosts", server.known_hosts.as_bytes()),
            ],
        )
        .with_secret(
            "ssh-wrong-host",
            &[
                ("identity", &identity),
                ("known_hosts", wrong_hosts.as_bytes()),
            ],
        )
        .with_secret("ssh-no-hosts", &[("identity", &identity)]);
    let env = Env::new();
    for secret in ["ssh", "ssh-enc"] {
        let out = env
            .run(
                &git_repository(
                    secret,
                    1,
                    json!({"url": url, "ref": {"branch": "main"}, "secretRef": {"name": secret}}),
                ),
                &lookup,
            )
            .await;
        assert_eq!(
            out.result,
            PipelineResult::Success,
            "{secret}: {:?}",
            ready(&out)
        );
        assert_eq!(
            out.status.artifact.unwrap().revision,
            format!("main@sha1:{}", a.c2)
        );
    }
    let out = env.run(&git_repository("w", 1, json!({"url": url, "ref": {"branch": "main"}, "secretRef": {"name": "ssh-wrong-host"}})), &lookup).await;
    let (s, r, _) = ready(&out);
    assert_eq!(
        (s.as_str(), r.as_str()),
        ("False", "GitOperationFailed"),
        "unknown host key refused"
    );
    let out = env.run(&git_repository("n", 1, json!({"url": url, "ref": {"branch": "main"}, "secretRef": {"name": "ssh-no-hosts"}})), &lookup).await;
    let (s, r, m) = ready(&out);
    assert_eq!((s.as_str(), r.as_str()), ("False", "AuthenticationFailed"));
    assert_eq!(
        m,
        "failed to configure authentication options: invalid 'ssh' auth option: 'known_hosts' is required"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn submodules_are_checked_out_when_asked() {
    let repos = Repos::new();
    repos.commit("lib", &[("lib.yaml", "lib: 1\n")], "lib");
    repos.publish("lib");
    let daemon = git_daemon(&repos.base());
    let lib_url = format!("git://127.0.0.1:{}/lib.git", daemon.port);
    repos.commit("top", &[("top.yaml", "top: 1\n")], "top");
    let w = repos.work("top");
    git(
        &w,
        &[
            "-c",
            "protocol.allow=always",
            "submodule",
            "add",
            "-q",
            &lib_url,
            "vendor/lib",
        ],
    );
    git(&w, &["commit", "-q", "-m", "add submodule"]);
    repos.publish("top");
    let env = Env::new();
    let url = format!("git://127.0.0.1:{}/top.git", daemon.port);
    let lookup = FakeLookup::default();

    let out = env
        .run(
            &git_repository("plain", 1, json!({"url": url, "ref": {"branch": "main"}})),
            &lookup,
        )
        .await;
    let names = env.entries(out.status.artifact.as_ref().unwrap());
    assert!(
        names.contains(&"vendor/lib".to_string())
            && !names.contains(&"vendor/lib/lib.yaml".to_string()),
        "{names:?}"
    );

    let out = env
        .run(
            &git_repository(
                "rec",
                1,
                json!({"url": url, "ref": {"branch": "main"}, "recurseSubmodules": true}),
            ),
            &lookup,
        )
        .await;
    assert_eq!(out.result, PipelineResult::Success, "{:?}", ready(&out));
    let art = out.status.artifact.as_ref().unwrap();
    assert_eq!(env.file(art, "vendor/lib/lib.yaml"), "lib: 1\n");
    assert_eq!(out.status.observed_recurse_submodules, Some(true));
    let _ = Path::new("");
}

#[tokio::test(flavor = "multi_thread")]
async fn bearer_token_over_http() {
    let repos = Repos::new();
    let a = app(&repos);
    let http = http_git_bearer(&repos.base(), "t0ken").await;
    let env = Env::new();
    let lookup = FakeLookup::default()
        .with_secret("token", &[("bearerToken", b"t0ken")])
        .with_secret("wrong", &[("bearerToken", b"nope")]);
    let url = format!("http://{}/app.git", http.addr);
    let out = env
        .run(
            &git_repository(
                "t",
                1,
                json!({"url": url, "ref": {"branch": "main"}, "secretRef": {"name": "token"}}),
            ),
            &lookup,
        )
        .await;
    assert_eq!(out.result, PipelineResult::Success, "{:?}", ready(&out));
    assert_eq!(
        out.status.artifact.unwrap().revision,
        format!("main@sha1:{}", a.c2)
    );
    let out = env
        .run(
            &git_repository(
                "w",
                1,
                json!({"url": url, "ref": {"branch": "main"}, "secretRef": {"name": "wrong"}}),
            ),
            &lookup,
        )
        .await;
    let (s, r, _) = ready(&out);
    assert_eq!((s.as_str(), r.as_str()), ("False", "GitOperationFailed"));
}

#[tokio::test(flavor = "multi_thread")]
async fn https_with_custom_ca_client_certificate_and_basic_auth() {
    let repos = Repos::new();
    let a = app(&repos);
    let pki = pki();
    let https = https_git(&repos.base(), &pki).await;
    let env = Env::new();
    let (ca, cert, key) = (
        pki.ca.as_bytes(),
        pki.client_cert.as_bytes(),
        pki.client_key.as_bytes(),
    );
    let lookup = FakeLookup::default()
        .with_secret(
            "full",
            &[
                ("ca.crt", ca),
                ("tls.crt", cert),
                ("tls.key", key),
                ("username", b"user"),
                ("password", b"pass"),
            ],
        )
        .with_secret(
            "legacy-ca",
            &[
                ("caFile", ca),
                ("tls.crt", cert),
                ("tls.key", key),
                ("username", b"user"),
                ("password", b"pass"),
            ],
        )
        .with_secret(
            "no-client-cert",
            &[("ca.crt", ca), ("username", b"user"), ("password", b"pass")],
        )
        .with_secret(
            "no-ca",
            &[
                ("tls.crt", cert),
                ("tls.key", key),
                ("username", b"user"),
                ("password", b"pass"),
            ],
        );
    let url = format!("https://127.0.0.1:{}/app.git", https.addr.port());
    for (secret, ok) in [
        ("full", true),
        ("legacy-ca", true),
        ("no-client-cert", false),
        ("no-ca", false),
    ] {
        let out = env
            .run(
                &git_repository(
                    secret,
                    1,
                    json!({"url": url, "ref": {"branch": "main"}, "secretRef": {"name": secret}}),
                ),
                &lookup,
            )
            .await;
        if ok {
            assert_eq!(
                out.result,
                PipelineResult::Success,
                "{secret}: {:?}",
                ready(&out)
            );
            assert_eq!(
                out.status.artifact.unwrap().revision,
                format!("main@sha1:{}", a.c2)
            );
        } else {
            let (s, r, m) = ready(&out);
            assert_eq!(
                (s.as_str(), r.as_str()),
                ("False", "GitOperationFailed"),
                "{secret}: {m}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn timeout_bounds_a_hanging_server() {
    // Accepts connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    let env = Env::new();
    let started = std::time::Instant::now();
    let out = env
        .run(
            &git_repository(
                "slow",
                1,
                json!({"url": format!("git://127.0.0.1:{port}/app.git"), "timeout": "1s"}),
            ),
            &FakeLookup::default(),
        )
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let (s, r, m) = ready(&out);
    assert_eq!((s.as_str(), r.as_str()), ("False", "GitOperationFailed"));
    assert!(m.contains("context deadline exceeded (timeout 1s)"), "{m}");
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_secret_ref_routes_through_an_authenticating_proxy() {
    let repos = Repos::new();
    let a = app(&repos);
    let http = http_git(&repos.base(), "user", "pass").await;
    let proxy = http_proxy("puser", "ppass").await;
    let env = Env::new();
    let address = format!("http://{}", proxy.addr);
    let lookup = FakeLookup::default()
        .with_secret("auth", &[("username", b"user"), ("password", b"pass")])
        .with_secret(
            "proxy",
            &[
                ("address", address.as_bytes()),
                ("username", b"puser"),
                ("password", b"ppass"),
            ],
        )
        .with_secret(
            "bad-proxy",
            &[
                ("address", address.as_bytes()),
                ("username", b"puser"),
                ("password", b"nope"),
            ],
        )
        .with_secret("no-address", &[("username", b"puser")]);
    let url = format!("http://{}/app.git", http.addr);
    let spec = |proxy: &str| json!({"url": url, "ref": {"branch": "main"}, "secretRef": {"name": "auth"}, "proxySecretRef": {"name": proxy}});

    let out = env
        .run(&git_repository("p", 1, spec("proxy")), &lookup)
        .await;
    assert_eq!(out.result, PipelineResult::Success, "{:?}", ready(&out));
    assert_eq!(
        out.status.artifact.unwrap().revision,
        format!("main@sha1:{}", a.c2)
    );
    assert!(
        proxy.forwarded.load(std::sync::atomic::Ordering::SeqCst) > 0,
        "went through the proxy"
    );

    let out = env
        .run(&git_repository("b", 1, spec("bad-proxy")), &lookup)
        .await;
    let (s, r, _) = ready(&out);
    assert_eq!((s.as_str(), r.as_str()), ("False", "GitOperationFailed"));

    let out = env
        .run(&git_repository("n", 1, spec("no-address")), &lookup)
        .await;
    let (s, r, m) = ready(&out);
    assert_eq!((s.as_str(), r.as_str()), ("False", "AuthenticationFailed"));
    assert!(m.starts_with("failed to configure proxy options: "), "{m}");
}
