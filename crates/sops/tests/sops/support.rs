//! Oracle helpers: the real `sops`, `age-keygen` and `gpg`, run in a temporary directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ferroflux_sops::Keyring;

/// Find a tool on PATH, then in the oracle cache; fail with an install hint otherwise.
pub use ferroflux_testsupport::tool;

pub fn sops_bin() -> PathBuf {
    tool("sops", ferroflux_testsupport::ORACLES_HINT)
}

fn age_keygen_bin() -> PathBuf {
    tool(
        "age-keygen",
        "install the Debian package: sudo apt-get install -y age",
    )
}

fn gpg_bin() -> PathBuf {
    tool("gpg", "install GnuPG: sudo apt-get install -y gnupg")
}

fn check(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An age key pair made by `age-keygen`.
pub struct AgeKey {
    pub file: PathBuf,
    pub identity: Vec<u8>,
    pub recipient: String,
}

/// A PGP key pair made by `gpg --batch` in its own GNUPGHOME.
pub struct PgpKey {
    pub home: PathBuf,
    pub fingerprint: String,
    pub armored_secret: Vec<u8>,
}

/// A temporary workspace for one test.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        // make sure the oracles exist before anything else
        sops_bin();
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn age_key(&self, name: &str) -> AgeKey {
        let file = self.path(&format!("{name}.agekey"));
        let out = Command::new(age_keygen_bin())
            .arg("-o")
            .arg(&file)
            .output()
            .unwrap();
        check(&out, "age-keygen");
        let identity = std::fs::read(&file).unwrap();
        let text = String::from_utf8(identity.clone()).unwrap();
        let recipient = text
            .lines()
            .find_map(|l| l.strip_prefix("# public key: "))
            .expect("age-keygen writes the public key")
            .trim()
            .to_string();
        AgeKey {
            file,
            identity,
            recipient,
        }
    }

    pub fn pgp_key(&self, name: &str, algo: &str, usage: &str) -> PgpKey {
        let home = self.path(&format!("gnupg-{name}"));
        std::fs::create_dir_all(&home).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        let gpg = |args: &[&str]| {
            Command::new(gpg_bin())
                .env("GNUPGHOME", &home)
                .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
                .args(args)
                .output()
                .unwrap()
        };
        let uid = format!("{name} <{name}@ferroflux.test>");
        let out = gpg(&["--quick-generate-key", &uid, algo, usage, "never"]);
        check(&out, "gpg --quick-generate-key");
        let out = gpg(&["--with-colons", "--list-secret-keys", &uid]);
        check(&out, "gpg --list-secret-keys");
        let fingerprint = String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| {
                l.strip_prefix("fpr:")
                    .map(|r| r.trim_matches(':').to_string())
            })
            .expect("gpg lists a fingerprint");
        let out = gpg(&["--armor", "--export-secret-keys", &fingerprint]);
        check(&out, "gpg --export-secret-keys");
        PgpKey {
            home,
            fingerprint,
            armored_secret: out.stdout,
        }
    }

    /// `sops --encrypt` of `plain` (written as `name`) with extra arguments.
    pub fn encrypt(
        &self,
        name: &str,
        plain: &[u8],
        args: &[&str],
        gnupg: Option<&Path>,
    ) -> Vec<u8> {
        let file = self.path(name);
        std::fs::write(&file, plain).unwrap();
        let mut cmd = Command::new(sops_bin());
        cmd.current_dir(self.dir.path())
            .arg("--encrypt")
            .args(args)
            .arg(&file);
        cmd.env_remove("SOPS_AGE_KEY_FILE")
            .env_remove("SOPS_AGE_KEY");
        if let Some(h) = gnupg {
            cmd.env("GNUPGHOME", h);
        }
        let out = cmd.output().unwrap();
        check(&out, "sops --encrypt");
        out.stdout
    }

    /// `sops --encrypt`, returning sops's complaint when it refuses the input.
    pub fn try_encrypt(&self, name: &str, plain: &[u8], args: &[&str]) -> Result<Vec<u8>, String> {
        let file = self.path(name);
        std::fs::write(&file, plain).unwrap();
        let out = Command::new(sops_bin())
            .current_dir(self.dir.path())
            .arg("--encrypt")
            .args(args)
            .arg(&file)
            .env_remove("SOPS_AGE_KEY_FILE")
            .env_remove("SOPS_AGE_KEY")
            .output()
            .unwrap();
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// `sops --decrypt` of `data` (written as `name`); Err(stderr) when sops fails.
    pub fn sops_decrypt(
        &self,
        name: &str,
        data: &[u8],
        args: &[&str],
        age: Option<&AgeKey>,
        gnupg: Option<&Path>,
    ) -> Result<Vec<u8>, String> {
        let file = self.path(name);
        std::fs::write(&file, data).unwrap();
        let mut cmd = Command::new(sops_bin());
        cmd.current_dir(self.dir.path())
            .arg("--decrypt")
            .args(args)
            .arg(&file);
        cmd.env_remove("SOPS_AGE_KEY");
        match age {
            Some(k) => cmd.env("SOPS_AGE_KEY_FILE", &k.file),
            None => cmd.env("SOPS_AGE_KEY_FILE", self.path("no-such-key")),
        };
        match gnupg {
            Some(h) => cmd.env("GNUPGHOME", h),
            None => cmd.env("GNUPGHOME", self.path("no-gnupg")),
        };
        let out = cmd.output().unwrap();
        if out.status.success() {
            Ok(out.stdout)
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }
}

/// A keyring from Secret-like data, as kustomize-controller imports it.
pub fn keyring(entries: &[(&str, &[u8])]) -> Keyring {
    let data: BTreeMap<String, Vec<u8>> = entries
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_vec()))
        .collect();
    Keyring::from_secret_data(&data).unwrap()
}

/// Assert equal texts, showing both and the first differing line on failure.
pub fn assert_same(ours: &[u8], theirs: &[u8], what: &str) {
    let a = String::from_utf8_lossy(ours);
    let b = String::from_utf8_lossy(theirs);
    if a != b {
        let first = a
            .lines()
            .zip(b.lines())
            .enumerate()
            .find(|(_, (x, y))| x != y)
            .map(|(i, (x, y))| format!("line {}: ours {x:?} / sops {y:?}", i + 1))
            .unwrap_or_else(|| "one output is a prefix of the other".into());
        panic!(
            "{what}: output differs from sops --decrypt ({first})\n--- ours\n{a}\n--- sops\n{b}"
        );
    }
}
