//! `spec.verify`: commits and tags signed with gpg and with an SSH key, checked against the keys
//! of a Secret; unsigned and wrongly signed objects fail with upstream's reasons.

use std::process::Command;

use ferroflux_api::conditions as cond;
use serde_json::json;
use source_controller::gitrepository::{PipelineResult, Settings, run_pipeline};
use source_controller::storage::{DigestAlgo, Storage};

use crate::support::{FakeLookup, Repos, git, git_daemon, git_env, git_repository, ssh_keygen};

fn gpg(home: &str, args: &[&str]) -> String {
    let out = Command::new("gpg")
        .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
        .args(args)
        .env("GNUPGHOME", home)
        .output()
        .expect("gpg is installed (apt-get install -y gnupg)");
    assert!(
        out.status.success(),
        "gpg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn gpg_and_ssh_signatures_on_commits_and_tags() {
    let repos = Repos::new();
    let gnupg = tempfile::Builder::new()
        .prefix("g")
        .tempdir_in("/tmp")
        .unwrap();
    let home = gnupg.path().to_str().unwrap().to_string();
    std::fs::set_permissions(
        gnupg.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    gpg(
        &home,
        &[
            "--quick-gen-key",
            "Signer <signer@example.com>",
            "ed25519",
            "sign",
            "never",
        ],
    );
    gpg(
        &home,
        &[
            "--quick-gen-key",
            "Other <other@example.com>",
            "ed25519",
            "sign",
            "never",
        ],
    );
    let signer_pub = gpg(&home, &["--armor", "--export", "signer@example.com"]);
    let colons = gpg(
        &home,
        &["--list-keys", "--with-colons", "signer@example.com"],
    );
    let signer_id = colons
        .lines()
        .find(|l| l.starts_with("pub:"))
        .and_then(|l| l.split(':').nth(4))
        .unwrap()
        .to_string();
    let keys = tempfile::tempdir().unwrap();
    let (ssh_key, ssh_pub) = ssh_keygen(keys.path(), "signing", "");
    let ssh_key = ssh_key.to_str().unwrap().to_string();

    let w = repos.work("signed");
    let env = [("GNUPGHOME", home.as_str())];
    let pgp_cfg = [
        "-c",
        "gpg.program=gpg",
        "-c",
        "user.signingkey=signer@example.com",
    ];
    let ssh_cfg = [
        "-c",
        "gpg.format=ssh",
        "-c",
        &format!("user.signingkey={ssh_key}"),
    ];
    let signed_by = |cfg: &[&str], extra: &[&str]| {
        let mut args: Vec<&str> = cfg.to_vec();
        args.extend_from_slice(extra);
        git_env(&w, &args, &env);
    };
    std::fs::write(w.join("a.yaml"), "a: 1\n").unwrap();
    git(&w, &["add", "-A"]);
    signed_by(&pgp_cfg, &["commit", "-q", "-S", "-m", "gpg signed"]);
    let c_pgp = git(&w, &["rev-parse", "HEAD"]);
    signed_by(&pgp_cfg, &["tag", "-s", "v1.0.0", "-m", "gpg signed tag"]);
    git(&w, &["tag", "-a", "v1.0.1", "-m", "unsigned annotated tag"]);

    std::fs::write(w.join("b.yaml"), "b: 1\n").unwrap();
    git(&w, &["add", "-A"]);
    signed_by(&ssh_cfg, &["commit", "-q", "-S", "-m", "ssh signed"]);
    let c_ssh = git(&w, &["rev-parse", "HEAD"]);
    signed_by(&ssh_cfg, &["tag", "-s", "v2.0.0", "-m", "ssh signed tag"]);

    git(&w, &["checkout", "-q", "-b", "unsigned"]);
    repos.commit("signed", &[("c.yaml", "c: 1\n")], "unsigned");
    git(&w, &["checkout", "-q", "-b", "other"]);
    std::fs::write(w.join("d.yaml"), "d: 1\n").unwrap();
    git(&w, &["add", "-A"]);
    git_env(
        &w,
        &[
            "-c",
            "gpg.program=gpg",
            "-c",
            "user.signingkey=other@example.com",
            "commit",
            "-q",
            "-S",
            "-m",
            "other key",
        ],
        &env,
    );
    git(&w, &["checkout", "-q", "main"]);
    repos.publish("signed");

    let daemon = git_daemon(&repos.base());
    let url = format!("git://127.0.0.1:{}/signed.git", daemon.port);
    let dir = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let storage = Storage::new(
        dir.path(),
        "localhost:9090",
        std::time::Duration::from_secs(60),
        2,
        DigestAlgo::Sha256,
    )
    .unwrap();
    let settings = Settings::default();
    let lookup = FakeLookup::default()
        .with_secret("pgp", &[("author.asc", signer_pub.as_bytes())])
        .with_secret("ssh", &[("author.sshpub", ssh_pub.as_bytes())])
        .with_secret(
            "both",
            &[
                ("author.asc", signer_pub.as_bytes()),
                ("author.sshpub", ssh_pub.as_bytes()),
            ],
        );

    let run = |name: &str, r: serde_json::Value, mode: &str, secret: &str| {
        let obj = git_repository(
            name,
            1,
            json!({"url": url, "ref": r, "verify": {"mode": mode, "secretRef": {"name": secret}}}),
        );
        let (storage, settings, lookup, scratch) = (&storage, &settings, &lookup, scratch.path());
        async move { run_pipeline(&obj, storage, lookup, settings, scratch).await }
    };
    let sv = |out: &source_controller::gitrepository::PipelineOutput| {
        let c = cond::get(
            out.status.conditions.as_deref().unwrap(),
            cond::SOURCE_VERIFIED,
        )
        .cloned()
        .unwrap();
        let r = cond::get(out.status.conditions.as_deref().unwrap(), cond::READY)
            .cloned()
            .unwrap();
        (c.status, c.reason, c.message, r.status, r.reason, r.message)
    };

    // Good signatures.
    let out = run("head-pgp", json!({"tag": "v1.0.0"}), "HEAD", "pgp").await;
    assert_eq!(out.result, PipelineResult::Success, "{:?}", sv(&out));
    let (s, r, m, rs, ..) = sv(&out);
    assert_eq!(
        (s.as_str(), r.as_str(), rs.as_str()),
        ("True", "Succeeded", "True")
    );
    assert_eq!(
        m,
        format!("verified signature of\n\t- commit '{c_pgp}' with key '{signer_id}'")
    );
    assert_eq!(out.status.source_verification_mode.as_deref(), Some("HEAD"));

    let out = run("tag-pgp", json!({"tag": "v1.0.0"}), "Tag", "pgp").await;
    assert_eq!(out.result, PipelineResult::Success, "{:?}", sv(&out));
    assert!(
        sv(&out)
            .2
            .starts_with("verified signature of\n\t- tag 'v1.0.0' with key '")
    );

    let out = run("both-ssh", json!({"tag": "v2.0.0"}), "TagAndHEAD", "ssh").await;
    assert_eq!(out.result, PipelineResult::Success, "{:?}", sv(&out));
    let m = sv(&out).2;
    assert!(
        m.contains("- tag 'v2.0.0' with key 'SHA256:")
            && m.contains(&format!("- commit '{c_ssh}' with key 'SHA256:")),
        "{m}"
    );
    assert_eq!(
        out.status.source_verification_mode.as_deref(),
        Some("TagAndHEAD")
    );

    let out = run("head-ssh-branch", json!({"branch": "main"}), "head", "both").await;
    assert_eq!(out.result, PipelineResult::Success, "{:?}", sv(&out));

    // Bad cases.
    let cases = [
        (
            "unsigned",
            json!({"branch": "unsigned"}),
            "HEAD",
            "pgp",
            "InvalidCommitSignature",
            "unable to verify payload: no signature",
        ),
        (
            "other-key",
            json!({"branch": "other"}),
            "HEAD",
            "pgp",
            "InvalidCommitSignature",
            "unable to verify payload with any of the given key rings",
        ),
        (
            "ssh-not-trusted",
            json!({"branch": "main"}),
            "HEAD",
            "pgp",
            "InvalidCommitSignature",
            "no SSH public keys",
        ),
        (
            "pgp-key-for-ssh",
            json!({"tag": "v1.0.0"}),
            "HEAD",
            "ssh",
            "InvalidCommitSignature",
            "no PGP public keys found in secret",
        ),
        (
            "unsigned-tag",
            json!({"tag": "v1.0.1"}),
            "Tag",
            "pgp",
            "InvalidGitObject",
            "cannot verify signature of tag 'v1.0.1' since it is not signed",
        ),
        (
            "tag-mode-on-branch",
            json!({"branch": "main"}),
            "Tag",
            "pgp",
            "InvalidVerificationMode",
            "cannot verify tag object's signature if a tag reference is not specified",
        ),
        (
            "no-secret",
            json!({"branch": "main"}),
            "HEAD",
            "absent",
            "VerificationError",
            "PGP public keys secret error",
        ),
    ];
    for (name, r, mode, secret, reason, needle) in cases {
        let out = run(name, r, mode, secret).await;
        let (s, cr, cm, rs, rr, rm) = sv(&out);
        assert_eq!((s.as_str(), cr.as_str()), ("False", reason), "{name}: {cm}");
        assert_eq!((rs.as_str(), rr.as_str()), ("False", reason), "{name}");
        assert!(rm.contains(needle), "{name}: {rm}");
        assert!(!rm.contains('\n'), "{name}: one line");
        assert!(
            out.status.artifact.is_none(),
            "{name}: no artifact from an unverified source"
        );
        if reason == "InvalidVerificationMode" {
            assert!(
                matches!(out.result, PipelineResult::Stalled { .. }),
                "{name}"
            );
        }
    }
}

/// Commits signed by git with ECDSA keys on the three NIST curves (`ssh-keygen -t ecdsa -b N`).
#[tokio::test(flavor = "multi_thread")]
async fn ecdsa_ssh_signatures_on_commits() {
    let repos = Repos::new();
    let keys = tempfile::tempdir().unwrap();
    let w = repos.work("ecdsa");
    std::fs::write(w.join("base.yaml"), "a: 1\n").unwrap();
    git(&w, &["add", "-A"]);
    git(&w, &["commit", "-q", "-m", "base"]);
    let mut signed = Vec::new();
    for bits in ["256", "384", "521"] {
        let key = keys.path().join(format!("ecdsa{bits}"));
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ecdsa", "-b", bits, "-N", "", "-C", "t", "-f"])
            .arg(&key)
            .output()
            .expect("ssh-keygen is installed");
        assert!(out.status.success(), "{out:?}");
        let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
        git(&w, &["checkout", "-q", "-b", &format!("p{bits}"), "main"]);
        std::fs::write(w.join("curve.yaml"), format!("bits: {bits}\n")).unwrap();
        git(&w, &["add", "-A"]);
        git(
            &w,
            &[
                "-c",
                "gpg.format=ssh",
                "-c",
                &format!("user.signingkey={}", key.display()),
                "commit",
                "-q",
                "-S",
                "-m",
                &format!("signed with P-{bits}"),
            ],
        );
        signed.push((bits, git(&w, &["rev-parse", "HEAD"]), public));
    }
    git(&w, &["checkout", "-q", "main"]);
    repos.publish("ecdsa");

    let daemon = git_daemon(&repos.base());
    let url = format!("git://127.0.0.1:{}/ecdsa.git", daemon.port);
    let dir = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let storage = Storage::new(
        dir.path(),
        "localhost:9090",
        std::time::Duration::from_secs(60),
        2,
        DigestAlgo::Sha256,
    )
    .unwrap();
    let mut lookup = FakeLookup::default();
    for (bits, _, public) in &signed {
        lookup = lookup.with_secret(&format!("k{bits}"), &[("signer.sshpub", public.as_bytes())]);
    }
    for (bits, hash, _) in &signed {
        for (key_bits, ..) in &signed {
            let obj = git_repository(
                &format!("c{bits}-k{key_bits}"),
                1,
                json!({"url": url, "ref": {"branch": format!("p{bits}")},
                       "verify": {"mode": "HEAD", "secretRef": {"name": format!("k{key_bits}")}}}),
            );
            let out = run_pipeline(
                &obj,
                &storage,
                &lookup,
                &Settings::default(),
                scratch.path(),
            )
            .await;
            let conditions = out.status.conditions.as_deref().unwrap();
            let c = cond::get(conditions, cond::SOURCE_VERIFIED).unwrap();
            if bits == key_bits {
                assert_eq!(
                    out.result,
                    PipelineResult::Success,
                    "P-{bits}: {}",
                    c.message
                );
                assert!(
                    c.message.starts_with(&format!(
                        "verified signature of\n\t- commit '{hash}' with key 'SHA256:"
                    )),
                    "P-{bits}: {}",
                    c.message
                );
            } else {
                assert_eq!(
                    (c.status.as_str(), c.reason.as_str()),
                    ("False", "InvalidCommitSignature"),
                    "P-{bits} commit, P-{key_bits} key"
                );
                assert!(
                    c.message.contains("is not among the trusted keys"),
                    "{}",
                    c.message
                );
            }
        }
    }
}
