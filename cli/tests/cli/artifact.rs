//! `ferroflux push/pull/tag/list artifact` against a real registry (Debian `docker-registry`
//! on 127.0.0.1, plain HTTP, with and without htpasswd basic auth), read back by clients that
//! share no code with ours: Debian's `skopeo` (Go, containers/image), GNU `tar` and the PyPI
//! `oras` package (oras-py, installed by scripts/test into ~/.cache/ferroflux-oras).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ferroflux_testsupport::registry;
use sha2::Digest as _;

use crate::FERROFLUX;

const SOURCE: &str = "https://github.com/example/app.git";
const REVISION: &str = "main@sha1:0123456789abcdef0123456789abcdef01234567";
const FLUX_CONFIG: &str = "application/vnd.cncf.flux.config.v1+json";
const FLUX_CONTENT: &str = "application/vnd.cncf.flux.content.v1.tar+gzip";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

fn ok(mut cmd: impl std::borrow::BorrowMut<Command>) -> (String, String) {
    let cmd = cmd.borrow_mut();
    let out = run(cmd);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    (stdout, stderr)
}

fn ferroflux(args: &[&str]) -> Command {
    let mut c = Command::new(FERROFLUX);
    c.args(args);
    // No Docker config of the machine's user.
    c.env("DOCKER_CONFIG", "/nonexistent-ferroflux-docker-config");
    c
}

fn skopeo() -> Command {
    Command::new(ferroflux_testsupport::tool(
        "skopeo",
        "install it with `apt-get install -y skopeo`",
    ))
}

fn oras_python() -> PathBuf {
    let home = std::env::var_os("HOME").expect("HOME");
    let py = PathBuf::from(home).join(".cache/ferroflux-oras/bin/python");
    assert!(
        py.is_file(),
        "{} is missing: run scripts/test (it installs oras==0.2.43 into ~/.cache/ferroflux-oras)",
        py.display()
    );
    py
}

/// Reads a manifest and pulls its layers with oras-py; returns (manifest, files).
fn oras_pull(reference: &str, out: &Path, login: Option<(&str, &str)>) -> serde_json::Value {
    let script = r#"
import json, sys, oras.client
ref, outdir = sys.argv[1], sys.argv[2]
host = ref.split("/")[0]
login = len(sys.argv) > 4
# htpasswd registries answer with a Basic challenge: oras-py's "basic" auth backend.
c = oras.client.OrasClient(hostname=host, insecure=True, auth_backend="basic" if login else "token")
if login:
    c.auth.set_basic_auth(sys.argv[3], sys.argv[4])
m = c.get_manifest(ref)
files = c.pull(target=ref, outdir=outdir)
print(json.dumps({"manifest": m, "files": files}))
"#;
    let mut cmd = Command::new(oras_python());
    cmd.arg("-c").arg(script).arg(reference).arg(out);
    if let Some((u, p)) = login {
        cmd.args([u, p]);
    }
    let (stdout, _) = ok(&mut cmd);
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("oras output {stdout:?}: {e}"))
}

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

/// A directory of manifests plus what the default ignore rules leave out.
fn manifests(dir: &Path) {
    std::fs::create_dir_all(dir.join("apps/podinfo")).unwrap();
    std::fs::create_dir_all(dir.join(".git/objects")).unwrap();
    std::fs::write(
        dir.join("apps/podinfo/cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: podinfo\ndata:\n  a: b\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("kustomization.yaml"),
        "resources:\n- apps/podinfo/cm.yaml\n",
    )
    .unwrap();
    std::fs::write(dir.join("hook.sh"), "#!/bin/sh\necho hi\n").unwrap();
    std::fs::set_permissions(dir.join("hook.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        dir.join("kustomization.yaml"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    std::fs::write(dir.join(".git/objects/x"), "git").unwrap();
    std::fs::write(dir.join(".gitignore"), "*.tmp\n").unwrap();
    std::fs::write(dir.join("logo.png"), "png").unwrap();
}

fn skopeo_raw(reference: &str, creds: Option<&str>) -> Vec<u8> {
    let mut cmd = skopeo();
    cmd.args(["inspect", "--raw", "--tls-verify=false"]);
    if let Some(c) = creds {
        cmd.args(["--creds", c]);
    }
    cmd.arg(format!("docker://{reference}"));
    let out = run(&mut cmd);
    assert!(
        out.status.success(),
        "skopeo inspect {reference}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `tar -tvzf` listing: (mode string, owner, mtime date, name).
fn gnu_tar_listing(file: &Path) -> Vec<(String, String, String, String)> {
    let (stdout, _) = ok(Command::new("tar")
        .arg("--numeric-owner")
        .arg("--utc")
        .arg("-tvzf")
        .arg(file));
    stdout
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[0].to_string(),
                f[1].to_string(),
                f[3].to_string(),
                f[5..].join(" "),
            )
        })
        .collect()
}

#[test]
fn push_pull_tag_list_read_back_by_skopeo_gnu_tar_and_oras() {
    let reg = registry::start(None);
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    manifests(&src);
    let repo = format!("{}/org/manifests/app", reg.addr);

    // push: flux's messages on stderr, the digest URL at the end.
    let (_, stderr) = ok(ferroflux(&[
        "push",
        "artifact",
        &format!("oci://{repo}:v1.0.0"),
        "--path",
        src.to_str().unwrap(),
        "--source",
        SOURCE,
        "--revision",
        REVISION,
        "--annotations",
        "org.opencontainers.image.description=Podinfo & friends",
    ]));
    assert!(
        stderr.contains(&format!("► pushing artifact to {repo}:v1.0.0")),
        "{stderr}"
    );
    let pushed_digest = stderr
        .split(&format!("✔ artifact successfully pushed to {repo}@"))
        .nth(1)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| panic!("no success line in {stderr}"));

    // skopeo reads the manifest: media types and annotations as flux writes them.
    let raw = skopeo_raw(&format!("{repo}:v1.0.0"), None);
    assert_eq!(
        sha256(&raw),
        pushed_digest,
        "the printed digest is the manifest's"
    );
    let m: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(m["schemaVersion"], 2);
    assert_eq!(m["mediaType"], OCI_MANIFEST);
    assert_eq!(m["config"]["mediaType"], FLUX_CONFIG);
    assert_eq!(m["layers"].as_array().unwrap().len(), 1);
    assert_eq!(m["layers"][0]["mediaType"], FLUX_CONTENT);
    let ann = m["annotations"].as_object().unwrap();
    assert_eq!(ann["org.opencontainers.image.source"], SOURCE);
    assert_eq!(ann["org.opencontainers.image.revision"], REVISION);
    assert_eq!(
        ann["org.opencontainers.image.description"],
        "Podinfo & friends"
    );
    let created = ann["org.opencontainers.image.created"].as_str().unwrap();
    assert!(
        created.len() == 20 && created.ends_with('Z') && created.as_bytes()[10] == b'T',
        "RFC 3339 UTC seconds: {created}"
    );
    // Go's encoding/json escapes '&' in strings.
    assert!(
        String::from_utf8_lossy(&raw).contains("Podinfo \\u0026 friends"),
        "{}",
        String::from_utf8_lossy(&raw)
    );

    // skopeo copies the blobs: the config is go-containerregistry's empty config, the layer a
    // tarball GNU tar lists with flux's normalisation (uid/gid 0, mtime 0, modes from disk,
    // lexical order, root as '.', ignored files left out).
    let copy = tmp.path().join("skopeo-dir");
    ok(skopeo().args([
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{repo}:v1.0.0"),
        &format!("dir:{}", copy.display()),
    ]));
    let hex_of = |d: &serde_json::Value| {
        d.as_str()
            .unwrap()
            .trim_start_matches("sha256:")
            .to_string()
    };
    let config = std::fs::read(copy.join(hex_of(&m["config"]["digest"]))).unwrap();
    assert_eq!(
        String::from_utf8(config).unwrap(),
        r#"{"architecture":"","created":"0001-01-01T00:00:00Z","os":"","rootfs":{"type":"layers","diff_ids":null},"config":{}}"#
    );
    let layer = copy.join(hex_of(&m["layers"][0]["digest"]));
    let layer_bytes = std::fs::read(&layer).unwrap();
    assert_eq!(
        sha256(&layer_bytes),
        m["layers"][0]["digest"].as_str().unwrap()
    );
    assert_eq!(
        layer_bytes.len() as u64,
        m["layers"][0]["size"].as_u64().unwrap()
    );
    let listing = gnu_tar_listing(&layer);
    let names: Vec<&str> = listing.iter().map(|e| e.3.as_str()).collect();
    assert_eq!(
        names,
        [
            ".",
            "apps",
            "apps/podinfo",
            "apps/podinfo/cm.yaml",
            "hook.sh",
            "kustomization.yaml"
        ],
        "{listing:?}"
    );
    for (mode, owner, date, name) in &listing {
        assert_eq!(owner, "0/0", "{name}");
        assert_eq!(date, "1970-01-01", "{name}");
        match name.as_str() {
            "hook.sh" => assert_eq!(mode, "-rwxr-xr-x"),
            "kustomization.yaml" => assert_eq!(mode, "-rw-r--r--"),
            _ => {}
        }
    }

    // oras-py reads the same manifest and pulls the same layer bytes.
    let oras = oras_pull(&format!("{repo}:v1.0.0"), &tmp.path().join("oras"), None);
    assert_eq!(oras["manifest"], m);
    let files = oras["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{oras}");
    assert_eq!(
        std::fs::read(files[0].as_str().unwrap()).unwrap(),
        layer_bytes
    );

    // --reproducible: the same tree gives the same digest on every push.
    let repro = |tag: &str| {
        let (stdout, _) = ok(ferroflux(&[
            "push",
            "artifact",
            &format!("oci://{repo}:{tag}"),
            "--path",
            src.to_str().unwrap(),
            "--source",
            SOURCE,
            "--revision",
            REVISION,
            "--reproducible",
            "--output",
            "json",
        ]));
        serde_json::from_str::<serde_json::Value>(&stdout).unwrap()
    };
    let (a, b) = (repro("v1.1.0"), repro("v1.1.1"));
    assert_eq!(a["digest"], b["digest"]);
    assert_eq!(a["repository"], repo.as_str());
    assert_eq!(a["tag"], "v1.1.0");
    assert_eq!(
        a["url"].as_str().unwrap(),
        format!("oci://{repo}@{}", a["digest"].as_str().unwrap())
    );
    let raw = skopeo_raw(&format!("{repo}:v1.1.0"), None);
    let rm: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(
        rm["annotations"]["org.opencontainers.image.created"],
        "1970-01-01T00:00:00Z"
    );
    assert_eq!(rm["layers"][0]["digest"], m["layers"][0]["digest"]);

    // tag: the manifest is copied byte for byte.
    let (_, stderr) = ok(ferroflux(&[
        "tag",
        "artifact",
        &format!("oci://{repo}:v1.0.0"),
        "--tag",
        "latest",
        "--tag",
        "stable",
    ]));
    assert!(
        stderr.contains(&format!("✔ artifact tagged as {repo}:latest")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("✔ artifact tagged as {repo}:stable")),
        "{stderr}"
    );
    assert_eq!(
        sha256(&skopeo_raw(&format!("{repo}:latest"), None)),
        pushed_digest
    );

    // list: newest tag first, filters applied, source and revision from the annotations.
    let (stdout, _) = ok(ferroflux(&[
        "list",
        "artifacts",
        &format!("oci://{repo}"),
        "--filter-semver",
        ">=1.0.0 <1.1.1",
    ]));
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .map(|l| l.split('\t').map(str::trim).collect())
        .collect();
    assert_eq!(rows[0], ["ARTIFACT", "DIGEST", "SOURCE", "REVISION"]);
    assert_eq!(
        rows[1..],
        [
            vec![
                format!("{repo}:v1.1.0").as_str(),
                a["digest"].as_str().unwrap(),
                SOURCE,
                REVISION
            ],
            vec![
                format!("{repo}:v1.0.0").as_str(),
                pushed_digest.as_str(),
                SOURCE,
                REVISION
            ],
        ],
        "{stdout}"
    );
    let (stdout, _) = ok(ferroflux(&[
        "list",
        "artifacts",
        &format!("oci://{repo}"),
        "--filter-regex",
        "^st",
    ]));
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    assert!(stdout.contains(&format!("{repo}:stable")));

    // pull: the tree comes back without what the ignore rules left out.
    let out = tmp.path().join("pulled");
    std::fs::create_dir_all(&out).unwrap();
    let (_, stderr) = ok(ferroflux(&[
        "pull",
        "artifact",
        &format!("oci://{repo}:latest"),
        "--output",
        out.to_str().unwrap(),
    ]));
    assert!(stderr.contains(&format!("✔ source {SOURCE}")), "{stderr}");
    assert!(
        stderr.contains(&format!("✔ revision {REVISION}")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("✔ digest {repo}@{pushed_digest}")),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("apps/podinfo/cm.yaml")).unwrap(),
        std::fs::read_to_string(src.join("apps/podinfo/cm.yaml")).unwrap()
    );
    assert!(out.join("hook.sh").is_file() && out.join("kustomization.yaml").is_file());
    assert!(
        !out.join(".git").exists()
            && !out.join("logo.png").exists()
            && !out.join(".gitignore").exists()
    );

    // A single file from stdin and --ignore-paths replacing the defaults.
    let mut child = ferroflux(&[
        "push",
        "artifact",
        &format!("oci://{repo}:stdin"),
        "-f",
        "-",
        "--source",
        SOURCE,
        "--revision",
        REVISION,
    ])
    .stdin(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"kind: ConfigMap\n")
        .unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    let one = tmp.path().join("one");
    std::fs::create_dir_all(&one).unwrap();
    ok(ferroflux(&[
        "pull",
        "artifact",
        &format!("oci://{repo}:stdin"),
        "-o",
        one.to_str().unwrap(),
    ]));
    let pulled: Vec<_> = std::fs::read_dir(&one)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(pulled.len(), 1, "{pulled:?}");
    assert_eq!(
        std::fs::read_to_string(one.join(&pulled[0])).unwrap(),
        "kind: ConfigMap\n"
    );

    // Bad input: each a one-line error and a non-zero exit.
    let bad = |args: &[&str], want: &str| {
        let out = run(&mut ferroflux(args));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
    };
    let url = format!("oci://{repo}:v9");
    let p = src.to_str().unwrap();
    bad(
        &[
            "push",
            "artifact",
            &url,
            "--path",
            p,
            "--revision",
            REVISION,
        ],
        "--source is required",
    );
    bad(
        &["push", "artifact", &url, "--path", p, "--source", SOURCE],
        "--revision is required",
    );
    bad(
        &[
            "push",
            "artifact",
            &url,
            "--path",
            "/nonexistent",
            "--source",
            SOURCE,
            "--revision",
            REVISION,
        ],
        "invalid path '/nonexistent', must point to an existing directory or file",
    );
    bad(
        &[
            "push",
            "artifact",
            &url,
            "--path",
            p,
            "--source",
            SOURCE,
            "--revision",
            REVISION,
            "-a",
            "a=b=c",
        ],
        "invalid annotation a=b=c, must be in the format key=value",
    );
    bad(
        &[
            "push",
            "artifact",
            &format!("{repo}:v9"),
            "--path",
            p,
            "--source",
            SOURCE,
            "--revision",
            REVISION,
        ],
        "URL must be in format 'oci://<domain>/<org>/<repo>'",
    );
    bad(
        &[
            "pull",
            "artifact",
            &format!("oci://{repo}:nope"),
            "-o",
            out.to_str().unwrap(),
        ],
        "manifest unknown",
    );
    bad(
        &[
            "list",
            "artifacts",
            &format!("oci://{repo}"),
            "--filter-semver",
            "not a range",
        ],
        "semver 'not a range' parse error",
    );
    bad(
        &["tag", "artifact", &format!("oci://{repo}:v1.0.0")],
        "--tag is required",
    );
}

#[test]
fn basic_auth_with_creds_and_docker_config() {
    let reg = registry::start(Some(("flux", "s3cret")));
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    manifests(&src);
    let repo = format!("{}/private/app", reg.addr);
    let url = format!("oci://{repo}:v1");
    let push = |extra: &[&str]| {
        let mut args = vec![
            "push",
            "artifact",
            url.as_str(),
            "--path",
            src.to_str().unwrap(),
            "--source",
            SOURCE,
            "--revision",
            REVISION,
        ];
        args.extend_from_slice(extra);
        run(&mut ferroflux(&args))
    };

    // Without credentials the registry refuses; a wrong password too; the password never
    // shows in the message.
    let out = push(&[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("pushing artifact failed"), "{stderr}");
    let out = push(&["--creds", "flux:wrong-password"]);
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("wrong-password"));

    let out = push(&["--creds", "flux:s3cret"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("► logging in to registry with credentials"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"));

    // skopeo and oras-py read it with the same credentials.
    let raw = skopeo_raw(&format!("{repo}:v1"), Some("flux:s3cret"));
    let m: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(m["config"]["mediaType"], FLUX_CONFIG);
    assert_eq!(m["layers"][0]["mediaType"], FLUX_CONTENT);
    assert_eq!(
        m["annotations"]["org.opencontainers.image.revision"],
        REVISION
    );
    let oras = oras_pull(
        &format!("{repo}:v1"),
        &tmp.path().join("oras"),
        Some(("flux", "s3cret")),
    );
    assert_eq!(oras["manifest"], m);

    // pull, tag and list with credentials from a Docker config file.
    let docker = tmp.path().join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    let auth = base64_encode(b"flux:s3cret");
    std::fs::write(
        docker.join("config.json"),
        serde_json::to_vec(&serde_json::json!({"auths": {reg.addr.clone(): {"auth": auth}}}))
            .unwrap(),
    )
    .unwrap();
    let with_config = |args: &[&str]| {
        let mut c = ferroflux(args);
        c.env("DOCKER_CONFIG", &docker);
        c
    };
    let out_dir = tmp.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    ok(&mut with_config(&[
        "pull",
        "artifact",
        &url,
        "-o",
        out_dir.to_str().unwrap(),
    ]));
    assert!(out_dir.join("apps/podinfo/cm.yaml").is_file());
    ok(&mut with_config(&[
        "tag", "artifact", &url, "--tag", "latest",
    ]));
    let (stdout, _) = ok(&mut with_config(&[
        "list",
        "artifacts",
        &format!("oci://{repo}"),
    ]));
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    let tags: BTreeMap<&str, &str> = stdout
        .lines()
        .skip(1)
        .map(|l| {
            let cells: Vec<&str> = l.split('\t').map(str::trim).collect();
            (cells[0], cells[1])
        })
        .collect();
    assert_eq!(
        tags[format!("{repo}:latest").as_str()],
        tags[format!("{repo}:v1").as_str()]
    );
    // Without the config the pull is refused.
    let out = run(&mut ferroflux(&[
        "pull",
        "artifact",
        &url,
        "-o",
        out_dir.to_str().unwrap(),
    ]));
    assert!(!out.status.success());
}

fn base64_encode(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
