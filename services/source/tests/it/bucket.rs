//! The Bucket pipeline against real object-store emulators started on 127.0.0.1 with random
//! ports: S3 (`moto_server`, PyPI `moto[server]`) for the `generic` and `aws` providers, Azure
//! Blob (`azurite-blob`, npm `azurite`) and Google Cloud Storage (`gcp-storage-emulator`, PyPI).
//! Prefix, `.sourceignore` and `spec.ignore` are respected, the revision is the digest of the
//! key → etag index read back from the emulator, a changed object gives a new revision, an
//! unchanged bucket gives none (and nothing is downloaded), bad input keeps the last artifact.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use ferroflux_api::Bucket;
use ferroflux_api::conditions as cond;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde_json::json;
use sha2::Digest;
use source_controller::bucket::{PipelineOutput, PipelineResult, Settings, run_pipeline};
use source_controller::storage::{DigestAlgo, Storage};

use crate::support::free_port;

/// Secrets held in memory.
#[derive(Default, Clone)]
struct Secrets(HashMap<String, BTreeMap<String, Vec<u8>>>);

impl Secrets {
    fn with(mut self, name: &str, pairs: &[(&str, &str)]) -> Self {
        self.0.insert(
            name.into(),
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect(),
        );
        self
    }
}

impl source_controller::helm_http::SecretLookup for Secrets {
    async fn secret(
        &self,
        _namespace: &str,
        name: &str,
    ) -> Result<Option<BTreeMap<String, Vec<u8>>>, String> {
        Ok(self.0.get(name).cloned())
    }
}

/// A child process stopped on drop, its stderr in a file.
struct Emulator {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Emulator {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// A tool installed by scripts/test: on PATH, or in its cache directory under $HOME.
fn tool(name: &str, cached: &str, hint: &str) -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(name))
            .find(|c| c.is_file())
    });
    let cached = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(cached));
    on_path
        .or(cached.filter(|c| c.is_file()))
        .unwrap_or_else(|| panic!("{name} is missing: {hint} (scripts/test installs it)"))
}

fn spawn(bin: &Path, args: &[String], port: u16) -> Emulator {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr.log");
    let child = Command::new(bin)
        .args(args)
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("{} starts: {e}", bin.display()));
    let mut em = Emulator {
        child,
        port,
        log,
        _dir: dir,
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = em.child.try_wait() {
            panic!("{} exited ({status}): {}", bin.display(), em.log());
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} did not start: {}",
            bin.display(),
            em.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    em
}

fn start_moto() -> Emulator {
    let bin = tool(
        "moto_server",
        ".cache/ferroflux-s3/bin/moto_server",
        "python3 -m venv ~/.cache/ferroflux-s3 && ~/.cache/ferroflux-s3/bin/pip install 'moto[server]==5.2.5'",
    );
    let port = free_port();
    spawn(
        &bin,
        &[
            "-H".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
        ],
        port,
    )
}

fn start_azurite() -> Emulator {
    let bin = tool(
        "azurite-blob",
        ".cache/ferroflux-azurite/node_modules/.bin/azurite-blob",
        "npm install --prefix ~/.cache/ferroflux-azurite azurite@3.37.0",
    );
    let port = free_port();
    spawn(
        &bin,
        &[
            "--blobHost".into(),
            "127.0.0.1".into(),
            "--blobPort".into(),
            port.to_string(),
            "--inMemoryPersistence".into(),
            "--skipApiVersionCheck".into(),
        ],
        port,
    )
}

fn start_gcs() -> Emulator {
    let bin = tool(
        "gcp-storage-emulator",
        ".cache/ferroflux-gcs/bin/gcp-storage-emulator",
        "python3 -m venv ~/.cache/ferroflux-gcs && ~/.cache/ferroflux-gcs/bin/pip install 'gcp-storage-emulator==2026.7.19'",
    );
    let port = free_port();
    spawn(
        &bin,
        &[
            "start".into(),
            "--host".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port.to_string(),
            "--in-memory".into(),
        ],
        port,
    )
}

struct Env {
    storage: Storage,
    _dir: tempfile::TempDir,
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
            _dir: dir,
            scratch: tempfile::tempdir().unwrap(),
            settings: Settings::default(),
        }
    }

    async fn run(&self, obj: &Bucket, secrets: &Secrets) -> PipelineOutput {
        run_pipeline(
            obj,
            &self.storage,
            secrets,
            &self.settings,
            self.scratch.path(),
        )
        .await
    }

    async fn ready(&self, obj: &Bucket, secrets: &Secrets) -> (Bucket, PipelineOutput) {
        let out = self.run(obj, secrets).await;
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

    /// Ready=False with `reason` and `needle` on FetchFailed; the last artifact kept.
    async fn fails(&self, obj: &Bucket, secrets: &Secrets, reason: &str, needle: &str) {
        let out = self.run(obj, secrets).await;
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
        let c = cond::get(conds, cond::FETCH_FAILED).unwrap();
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("True", reason));
        let old = obj
            .status
            .as_ref()
            .and_then(|s| s.artifact.as_ref())
            .unwrap();
        let kept = out.status.artifact.as_ref().expect("artifact kept");
        assert_eq!(kept.digest, old.digest);
        self.storage.verify_artifact(kept).unwrap();
        assert!(out.new_artifact.is_none());
    }

    /// The artifact's files and their contents.
    fn files(&self, out: &PipelineOutput) -> BTreeMap<String, String> {
        let a = out.status.artifact.as_ref().unwrap();
        let data = std::fs::read(self.storage.local_path(&a.path).unwrap()).unwrap();
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(&data[..]));
        let mut files = BTreeMap::new();
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            if e.header().entry_type().is_file() {
                let p = e.path().unwrap().to_string_lossy().into_owned();
                let mut s = String::new();
                e.read_to_string(&mut s).unwrap();
                files.insert(p, s);
            }
        }
        files
    }
}

fn bucket(generation: i64, spec: serde_json::Value) -> Bucket {
    let mut spec = spec;
    spec["interval"] = "1m".into();
    serde_json::from_value(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "Bucket",
        "metadata": {"name": "manifests", "namespace": "default", "generation": generation, "uid": "u-b"},
        "spec": spec,
    }))
    .unwrap()
}

/// `sha256:` of the `"<key> <etag>\n"` lines, computed here from what the emulator reports.
fn expected_revision(index: &BTreeMap<String, String>) -> String {
    let mut h = sha2::Sha256::new();
    for (k, v) in index {
        h.update(format!("{k} {v}\n"));
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// Where the tests write objects: an object_store client, or the GCS emulator's JSON API.
enum Seeder {
    Store(Arc<dyn ObjectStore>),
    Gcs { port: u16, bucket: String },
}

impl Seeder {
    async fn put(&self, key: &str, body: &str) {
        match self {
            Seeder::Store(store) => {
                store
                    .put(&ObjectPath::from(key), PutPayload::from(body.to_string()))
                    .await
                    .unwrap();
            }
            Seeder::Gcs { port, bucket } => {
                let r = reqwest::Client::new()
                    .post(format!(
                        "http://127.0.0.1:{port}/upload/storage/v1/b/{bucket}/o"
                    ))
                    .query(&[("uploadType", "media"), ("name", key)])
                    .body(body.to_string())
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success(), "{:?}", r.text().await);
            }
        }
    }
}

async fn put(store: &Seeder, key: &str, body: &str) {
    store.put(key, body).await
}

/// The objects every provider test starts with.
const OBJECTS: [(&str, &str); 7] = [
    (".sourceignore", "*.txt\n"),
    (
        "deploy/app.yaml",
        "kind: ConfigMap\nmetadata:\n  name: app\n",
    ),
    ("deploy/notes.txt", "ignored by .sourceignore\n"),
    (
        "deploy/sub/cm.yaml",
        "kind: ConfigMap\nmetadata:\n  name: cm\n",
    ),
    ("deploy/sub/skip.yaml", "ignored by spec.ignore\n"),
    ("other/x.yaml", "outside the prefix\n"),
    ("deploy/empty/", ""),
];

/// The keys the artifact must hold: under the prefix, not ignored; `.sourceignore` is in the
/// download directory as upstream leaves it there.
const KEPT: [&str; 2] = ["deploy/app.yaml", "deploy/sub/cm.yaml"];

/// The common scenario: first artifact, the no-op, a changed object, a removed one.
/// `etags` reads back the etag of every kept key as the provider reports it.
async fn scenario<F, Fut>(
    env: &Env,
    store: &Seeder,
    obj: Bucket,
    secrets: &Secrets,
    etags: F,
    downloads: Option<&dyn Fn() -> usize>,
    dbg_log: &dyn Fn() -> String,
) -> Bucket
where
    F: Fn(Vec<String>) -> Fut,
    Fut: std::future::Future<Output = BTreeMap<String, String>>,
{
    let (obj, out) = env.ready(&obj, secrets).await;
    let a = out.status.artifact.clone().unwrap();
    let kept: Vec<String> = KEPT.iter().map(|s| s.to_string()).collect();
    assert_eq!(a.revision, expected_revision(&etags(kept.clone()).await));
    assert_eq!(
        a.path,
        format!(
            "bucket/default/manifests/{}.tar.gz",
            a.revision.trim_start_matches("sha256:")
        )
    );
    let files = env.files(&out);
    let names: Vec<&str> = files.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [".sourceignore", "deploy/app.yaml", "deploy/sub/cm.yaml"]
    );
    assert_eq!(files["deploy/app.yaml"], OBJECTS[1].1);
    let ready = cond::get(out.status.conditions.as_deref().unwrap(), cond::READY).unwrap();
    assert_eq!(
        ready.message,
        format!("stored artifact: revision '{}'", a.revision)
    );
    let ev = out
        .events
        .iter()
        .find(|e| e.reason == "NewArtifact")
        .unwrap();
    assert_eq!(
        ev.message,
        "stored artifact with 2 fetched files from 'manifests' bucket"
    );
    assert_eq!(
        out.status.url.as_deref(),
        Some("http://localhost:9090/bucket/default/manifests/latest.tar.gz")
    );

    // Unchanged: no new revision, nothing downloaded.
    let before = downloads.map(|d| d());
    let (obj, out) = env.ready(&obj, secrets).await;
    assert!(out.new_artifact.is_none());
    assert_eq!(out.status.artifact.as_ref().unwrap().revision, a.revision);
    assert!(out.events.iter().any(|e| e.reason == "ArtifactUpToDate"));
    if let (Some(d), Some(b)) = (downloads, before) {
        assert_eq!(
            d(),
            b,
            "an unchanged bucket downloads nothing: {}",
            dbg_log()
        );
    }

    // A changed object: a new revision and the new content.
    put(
        store,
        "deploy/app.yaml",
        "kind: ConfigMap\nmetadata:\n  name: app2\n",
    )
    .await;
    let (obj, out) = env.ready(&obj, secrets).await;
    let b = out.status.artifact.clone().unwrap();
    assert_ne!(b.revision, a.revision);
    assert_eq!(b.revision, expected_revision(&etags(kept).await));
    assert!(env.files(&out)["deploy/app.yaml"].contains("app2"));
    assert!(out.new_artifact.is_some());
    // An ignored object changing changes nothing.
    put(store, "deploy/notes.txt", "changed\n").await;
    let (obj, out) = env.ready(&obj, secrets).await;
    assert!(out.new_artifact.is_none());
    assert_eq!(out.status.artifact.as_ref().unwrap().revision, b.revision);
    obj
}

async fn seed(store: &Seeder) {
    for (k, v) in OBJECTS {
        if !k.ends_with('/') {
            put(store, k, v).await;
        }
    }
}

fn s3_store(port: u16, bucket: &str) -> Arc<dyn ObjectStore> {
    Arc::new(
        object_store::aws::AmazonS3Builder::new()
            .with_endpoint(format!("http://127.0.0.1:{port}"))
            .with_allow_http(true)
            .with_region("us-east-1")
            .with_bucket_name(bucket)
            .with_access_key_id("AKIDTEST")
            .with_secret_access_key("secret")
            .build()
            .unwrap(),
    )
}

/// The etags an emulator reports for `keys` (HEAD), quotes removed as minio-go does.
async fn head_etags(store: &dyn ObjectStore, keys: Vec<String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for k in keys {
        let m = store.head(&ObjectPath::from(k.as_str())).await.unwrap();
        out.insert(k, m.e_tag.unwrap().trim_matches('"').to_string());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_generic_and_aws_buckets_against_moto() {
    let moto = start_moto();
    let port = moto.port;
    let c = reqwest::Client::new();
    assert!(
        c.put(format!("http://127.0.0.1:{port}/manifests"))
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    );
    // A "directory" key (ends with `/`): never indexed.
    c.put(format!("http://127.0.0.1:{port}/manifests/deploy/empty/"))
        .send()
        .await
        .unwrap();
    let store = s3_store(port, "manifests");
    let seeder = Seeder::Store(store.clone());
    seed(&seeder).await;
    let secrets = Secrets::default()
        .with(
            "creds",
            &[("accesskey", "AKIDTEST"), ("secretkey", "secret")],
        )
        .with("half", &[("accesskey", "AKIDTEST")]);
    let env = Env::new();
    let spec = |provider: &str| {
        json!({
            "provider": provider,
            "bucketName": "manifests",
            "endpoint": format!("127.0.0.1:{port}"),
            "insecure": true,
            "prefix": "deploy/",
            "ignore": "deploy/sub/skip.yaml",
            "secretRef": {"name": "creds"},
        })
    };
    // Object downloads seen by moto (its request log on stderr).
    let log = moto.log.clone();
    let downloads = move || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("\"GET /manifests/deploy/"))
            .count()
    };
    let obj = scenario(
        &env,
        &seeder,
        bucket(1, spec("generic")),
        &secrets,
        |keys| head_etags(store.as_ref(), keys),
        Some(&downloads),
        &|| moto.log(),
    )
    .await;

    // Bad input: each a clear reason, the last artifact kept.
    let with = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut s = spec("generic");
        f(&mut s);
        let mut b = bucket(2, s);
        b.status = obj.status.clone();
        b
    };
    env.fails(
        &with(&|s| s["bucketName"] = "nope".into()),
        &secrets,
        "BucketOperationFailed",
        "bucket 'nope' not found",
    )
    .await;
    let closed = free_port();
    env.fails(
        &with(&|s| s["endpoint"] = format!("127.0.0.1:{closed}").into()),
        &secrets,
        "BucketOperationFailed",
        "failed to confirm existence of 'manifests' bucket",
    )
    .await;
    env.fails(
        &with(&|s| s["secretRef"]["name"] = "half".into()),
        &secrets,
        "AuthenticationFailed",
        "invalid 'half' secret data: required fields 'accesskey' and 'secretkey'",
    )
    .await;
    env.fails(
        &with(&|s| s["secretRef"]["name"] = "absent".into()),
        &secrets,
        "AuthenticationFailed",
        "failed to get secret 'default/absent': secrets \"absent\" not found",
    )
    .await;

    // The aws provider reads the same S3 API (a separate bucket, its own artifact).
    c.put(format!("http://127.0.0.1:{port}/other"))
        .send()
        .await
        .unwrap();
    let other = Seeder::Store(s3_store(port, "other"));
    put(&other, "a.yaml", "a: 1\n").await;
    let mut s = spec("aws");
    s["bucketName"] = "other".into();
    s["prefix"] = "".into();
    let env2 = Env::new();
    let (_, out) = env2.ready(&bucket(1, s), &secrets).await;
    assert_eq!(
        env2.files(&out).keys().collect::<Vec<_>>(),
        ["a.yaml"],
        "{}",
        moto.log().lines().last().unwrap_or_default()
    );
}

/// Azurite's well-known development account.
const AZURITE_ACCOUNT: &str = "devstoreaccount1";
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Creates a container with a SharedKey-signed `PUT ?restype=container` (the Blob REST API).
async fn azure_create_container(port: u16, container: &str) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let date = jiff::fmt::rfc2822::DateTimePrinter::new()
        .timestamp_to_rfc9110_string(&jiff::Timestamp::now())
        .unwrap();
    let version = "2021-08-06";
    let to_sign = format!(
        "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{container}\nrestype:container"
    );
    let key = aws_lc_rs::hmac::Key::new(
        aws_lc_rs::hmac::HMAC_SHA256,
        &b64.decode(AZURITE_KEY).unwrap(),
    );
    let sig = b64.encode(aws_lc_rs::hmac::sign(&key, to_sign.as_bytes()).as_ref());
    let r = reqwest::Client::new()
        .put(format!(
            "http://127.0.0.1:{port}/{AZURITE_ACCOUNT}/{container}?restype=container"
        ))
        .header("x-ms-date", &date)
        .header("x-ms-version", version)
        .header("content-length", "0")
        .header(
            "authorization",
            format!("SharedKey {AZURITE_ACCOUNT}:{sig}"),
        )
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);
}

fn azure_store(port: u16, container: &str) -> Arc<dyn ObjectStore> {
    Arc::new(
        object_store::azure::MicrosoftAzureBuilder::new()
            .with_account(AZURITE_ACCOUNT)
            .with_access_key(AZURITE_KEY)
            .with_container_name(container)
            .with_endpoint(format!("http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"))
            .with_allow_http(true)
            .build()
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_bucket_against_azurite() {
    let azurite = start_azurite();
    let port = azurite.port;
    azure_create_container(port, "manifests").await;
    let store = azure_store(port, "manifests");
    let seeder = Seeder::Store(store.clone());
    seed(&seeder).await;
    let secrets = Secrets::default()
        .with("key", &[("accountKey", AZURITE_KEY)])
        .with("bad", &[("nothing", "here")]);
    let env = Env::new();
    let spec = json!({
        "provider": "azure",
        "bucketName": "manifests",
        "endpoint": format!("http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"),
        "prefix": "deploy/",
        "ignore": "deploy/sub/skip.yaml",
        "secretRef": {"name": "key"},
    });
    // Upstream prints the Azure ETag with %x: the hex of its text.
    let etags = |keys: Vec<String>| {
        let store = store.clone();
        async move {
            head_etags(store.as_ref(), keys)
                .await
                .into_iter()
                .map(|(k, v)| (k, hex::encode(v)))
                .collect()
        }
    };
    let obj = scenario(
        &env,
        &seeder,
        bucket(1, spec.clone()),
        &secrets,
        etags,
        None,
        &|| azurite.log(),
    )
    .await;

    let mut s = spec.clone();
    s["bucketName"] = "nope".into();
    let mut b = bucket(2, s);
    b.status = obj.status.clone();
    env.fails(
        &b,
        &secrets,
        "BucketOperationFailed",
        "bucket 'nope' not found",
    )
    .await;
    let mut s = spec;
    s["secretRef"]["name"] = "bad".into();
    let mut b = bucket(2, s);
    b.status = obj.status.clone();
    env.fails(
        &b,
        &secrets,
        "AuthenticationFailed",
        "invalid 'bad' secret data: requires a 'clientId' or 'accountKey' field",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcp_bucket_against_gcp_storage_emulator() {
    let gcs = start_gcs();
    let port = gcs.port;
    let c = reqwest::Client::new();
    let r = c
        .post(format!("http://127.0.0.1:{port}/storage/v1/b"))
        .json(&json!({"name": "manifests"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let seeder = Seeder::Gcs {
        port,
        bucket: "manifests".into(),
    };
    seed(&seeder).await;
    let secrets = Secrets::default().with("bad", &[("key.json", "{}")]);
    let mut env = Env::new();
    env.settings.gcs_emulator_host = Some(format!("127.0.0.1:{port}"));
    let spec = json!({
        "provider": "gcp",
        "bucketName": "manifests",
        "endpoint": "storage.googleapis.com",
        "prefix": "deploy/",
        "ignore": "deploy/sub/skip.yaml",
    });
    // The etags of the JSON API, read back object by object.
    let etags = |keys: Vec<String>| async move {
        let c = reqwest::Client::new();
        let mut out = BTreeMap::new();
        for k in keys {
            let v: serde_json::Value = c
                .get(format!(
                    "http://127.0.0.1:{port}/storage/v1/b/manifests/o/{}",
                    k.replace('/', "%2F")
                ))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            out.insert(k, v["etag"].as_str().unwrap().to_string());
        }
        out
    };
    let obj = scenario(
        &env,
        &seeder,
        bucket(1, spec.clone()),
        &Secrets::default(),
        etags,
        None,
        &|| gcs.log(),
    )
    .await;

    let mut s = spec.clone();
    s["bucketName"] = "nope".into();
    let mut b = bucket(2, s);
    b.status = obj.status.clone();
    env.fails(
        &b,
        &secrets,
        "BucketOperationFailed",
        "bucket 'nope' not found",
    )
    .await;
    let mut s = spec;
    s["secretRef"] = json!({"name": "bad"});
    let mut b = bucket(2, s);
    b.status = obj.status.clone();
    env.fails(
        &b,
        &secrets,
        "AuthenticationFailed",
        "invalid 'bad' secret data: required fields 'serviceaccount'",
    )
    .await;
}

/// A Bucket as the only source a HelmChart can find.
struct BucketSource(Bucket);

impl source_controller::helm_http::SecretLookup for BucketSource {
    async fn secret(
        &self,
        _namespace: &str,
        _name: &str,
    ) -> Result<Option<BTreeMap<String, Vec<u8>>>, String> {
        Ok(None)
    }
}

impl source_controller::helmchart::Lookup for BucketSource {
    async fn helm_repository(
        &self,
        _namespace: &str,
        _name: &str,
    ) -> Result<Option<ferroflux_api::HelmRepository>, String> {
        Ok(None)
    }
    async fn git_repository(
        &self,
        _namespace: &str,
        _name: &str,
    ) -> Result<Option<ferroflux_api::GitRepository>, String> {
        Ok(None)
    }
    async fn helm_repositories(
        &self,
        _namespace: &str,
    ) -> Result<Vec<ferroflux_api::HelmRepository>, String> {
        Ok(Vec::new())
    }
    async fn bucket(&self, _namespace: &str, name: &str) -> Result<Option<Bucket>, String> {
        Ok((self.0.metadata.name.as_deref() == Some(name)).then(|| self.0.clone()))
    }
}

// helm runs as a blocking child process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_chart_from_a_bucket_renders_as_helm() {
    use crate::helm_support::create_chart;
    use crate::helmchart::{helm_chart, template};
    let moto = start_moto();
    let port = moto.port;
    assert!(
        reqwest::Client::new()
            .put(format!("http://127.0.0.1:{port}/manifests"))
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    );
    // A chart made by `helm create`, uploaded file by file under charts/.
    let work = tempfile::tempdir().unwrap();
    let src = create_chart(
        work.path(),
        "podinfo",
        &[("values-prod.yaml", "replicaCount: 3\n")],
    );
    let seeder = Seeder::Store(s3_store(port, "manifests"));
    let mut stack = vec![src.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(work.path()).unwrap().to_string_lossy();
                let body = std::fs::read_to_string(&p).unwrap();
                seeder.put(&format!("charts/{rel}"), &body).await;
            }
        }
    }
    let env = crate::helmchart::Env::new();
    let secrets = Secrets::default().with(
        "creds",
        &[("accesskey", "AKIDTEST"), ("secretkey", "secret")],
    );
    let b = bucket(
        1,
        json!({"bucketName": "manifests", "endpoint": format!("127.0.0.1:{port}"), "insecure": true,
               "secretRef": {"name": "creds"}}),
    );
    let out = run_pipeline(
        &b,
        &env.storage,
        &secrets,
        &Settings::default(),
        work.path(),
    )
    .await;
    assert_eq!(out.result, PipelineResult::Success, "{:?}", out.status);
    let b = Bucket {
        status: Some(out.status),
        ..b
    };
    let lookup = BucketSource(b.clone());
    let obj = helm_chart(
        "podinfo",
        1,
        json!({"chart": "charts/podinfo", "valuesFiles": ["charts/podinfo/values.yaml", "charts/podinfo/values-prod.yaml"],
               "sourceRef": {"kind": "Bucket", "name": "manifests"}}),
    );
    let out = source_controller::helmchart::run_pipeline(
        &obj,
        &env.storage,
        &lookup,
        &env.settings,
        work.path(),
    )
    .await;
    assert_eq!(
        out.result,
        source_controller::helmchart::PipelineResult::Success,
        "{:?}",
        out.status
    );
    let a = out.status.artifact.clone().unwrap();
    assert_eq!(a.revision, "0.1.0+1");
    assert_eq!(
        out.status.observed_source_artifact_revision,
        b.status
            .as_ref()
            .unwrap()
            .artifact
            .as_ref()
            .map(|a| a.revision.clone())
    );
    let home = tempfile::tempdir().unwrap();
    let ours = template(home.path(), &env.artifact_path(&out), &[]);
    let theirs = template(home.path(), &src, &[&src.join("values-prod.yaml")]);
    assert_eq!(ours.replace("podinfo-0.1.0_1", "podinfo-0.1.0"), theirs);
}
