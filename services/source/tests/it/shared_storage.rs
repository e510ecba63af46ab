//! The object-store backend against an S3-compatible server (moto) on 127.0.0.1: two replicas
//! share artifacts (built once, restored and served by the other), garbage collection and
//! deletion reach the bucket.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use serde_json::json;
use source_controller::gitrepository::{PipelineResult, Settings, run_pipeline};
use source_controller::storage::remote::Remote;
use source_controller::storage::{DigestAlgo, Storage};

use crate::support::{FakeLookup, Repos, free_port, git_daemon, git_repository};

fn moto_server() -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("moto_server"))
            .find(|c| c.is_file())
    });
    let cached = std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".cache/ferroflux-s3/bin/moto_server"));
    on_path.or(cached.filter(|c| c.is_file())).unwrap_or_else(|| {
        panic!(
            "moto_server (S3-compatible test server) is missing: install it with \
             `python3 -m venv ~/.cache/ferroflux-s3 && ~/.cache/ferroflux-s3/bin/pip install 'moto[server]==5.2.5'`"
        )
    })
}

struct Moto {
    child: std::process::Child,
    port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_moto() -> Moto {
    let port = free_port();
    let child = Command::new(moto_server())
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server starts");
    let moto = Moto { child, port };
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = client
            .put(format!("http://127.0.0.1:{port}/artifacts"))
            .send()
            .await
            && r.status().is_success()
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "moto_server did not start"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    moto
}

fn remote(port: u16) -> Remote {
    let store = AmazonS3Builder::new()
        .with_endpoint(format!("http://127.0.0.1:{port}"))
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_bucket_name("artifacts")
        .with_access_key_id("test")
        .with_secret_access_key("test")
        .build()
        .unwrap();
    Remote::new(Arc::new(store), "replicas")
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_share_artifacts_through_s3() {
    let moto = start_moto().await;
    let repos = Repos::new();
    let c1 = repos.commit("app", &[("a.yaml", "a: 1\n")], "one");
    repos.publish("app");
    let daemon = git_daemon(&repos.base());
    let url = format!("git://127.0.0.1:{}/app.git", daemon.port);
    let lookup = FakeLookup::default();
    let settings = Settings::default();
    let scratch = tempfile::tempdir().unwrap();

    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let a = Storage::new(
        dir_a.path(),
        "source-controller",
        Duration::from_secs(60),
        2,
        DigestAlgo::Sha256,
    )
    .unwrap()
    .with_remote(remote(moto.port));
    let b = Storage::new(
        dir_b.path(),
        "source-controller",
        Duration::from_secs(60),
        2,
        DigestAlgo::Sha256,
    )
    .unwrap()
    .with_remote(remote(moto.port));

    // Replica A builds and uploads.
    let obj = git_repository("app", 1, json!({"url": url, "ref": {"branch": "main"}}));
    let out_a = run_pipeline(&obj, &a, &lookup, &settings, scratch.path()).await;
    assert_eq!(out_a.result, PipelineResult::Success);
    let art = out_a.status.artifact.clone().unwrap();
    assert_eq!(art.revision, format!("main@sha1:{c1}"));
    let listed = a
        .remote()
        .unwrap()
        .list("gitrepository/default/app")
        .await
        .unwrap();
    assert_eq!(listed, vec![art.path.clone()]);

    // Replica B takes over with the object's status: restores the artifact, builds nothing.
    let mut seen = obj.clone();
    seen.status = Some(out_a.status.clone());
    let out_b = run_pipeline(&seen, &b, &lookup, &settings, scratch.path()).await;
    assert_eq!(out_b.result, PipelineResult::Success);
    assert!(
        out_b.new_artifact.is_none(),
        "restored from shared storage, not rebuilt"
    );
    assert_eq!(out_b.status.artifact.as_ref().unwrap().digest, art.digest);
    b.verify_artifact(&art).unwrap();

    // A third replica with an empty disk serves it over HTTP from the bucket.
    let dir_c = tempfile::tempdir().unwrap();
    let (addr, _srv) = source_controller::server::spawn_with_remote(
        "127.0.0.1:0".parse().unwrap(),
        dir_c.path(),
        Some(remote(moto.port)),
        std::future::pending(),
    )
    .await
    .unwrap();
    let body = reqwest::get(format!("http://{addr}/{}", art.path))
        .await
        .unwrap();
    assert_eq!(body.status(), 200);
    ferroflux_runtime::artifact::verify_digest(&art.digest, &body.bytes().await.unwrap()).unwrap();
    let missing = reqwest::get(format!(
        "http://{addr}/gitrepository/default/app/none.tar.gz"
    ))
    .await
    .unwrap();
    assert_eq!(missing.status(), 404);

    // New revisions on A; garbage collection keeps two artifacts, in the bucket too.
    let mut status = out_a.status.clone();
    for i in 2..=3 {
        repos.commit("app", &[("a.yaml", &format!("a: {i}\n"))], "next");
        repos.publish("app");
        let mut o = obj.clone();
        o.status = Some(status.clone());
        let out = run_pipeline(&o, &a, &lookup, &settings, scratch.path()).await;
        assert!(out.new_artifact.is_some());
        status = out.status;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut o = obj.clone();
    o.status = Some(status.clone());
    let out = run_pipeline(&o, &a, &lookup, &settings, scratch.path()).await;
    assert_eq!(out.result, PipelineResult::Success);
    let listed = a
        .remote()
        .unwrap()
        .list("gitrepository/default/app")
        .await
        .unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(!listed.contains(&art.path), "oldest collected: {listed:?}");
    assert!(listed.contains(&status.artifact.as_ref().unwrap().path));

    // Deletion empties the object's directory in the bucket.
    assert_eq!(
        a.remove_all_remote("GitRepository", "default", "app")
            .await
            .unwrap(),
        2
    );
    assert!(
        a.remote()
            .unwrap()
            .list("gitrepository/default/app")
            .await
            .unwrap()
            .is_empty()
    );
}
