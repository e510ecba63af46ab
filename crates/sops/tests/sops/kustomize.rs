//! What happens when a kustomize build adds `metadata.namespace` to a sops-encrypted Secret
//! (kustomize-controller decrypts after building, so it sees the built object).

use std::process::Command;

use ferroflux_sops::{DecryptOptions, Format, SopsError, decrypt_with, is_encrypted_document};

use crate::formats::SECRET;
use crate::support::{AgeKey, Env, keyring, tool};

/// Encrypt SECRET without its namespace, build it with `kubectl kustomize` under
/// `namespace: other`, return the built YAML.
fn build(env: &Env, key: &AgeKey, args: &[&str]) -> String {
    let plain = SECRET.replace("  namespace: apps\n", "");
    let mut all = vec!["--age", key.recipient.as_str()];
    all.extend_from_slice(args);
    let enc = env.encrypt("secret.enc.yaml", plain.as_bytes(), &all, None);
    let dir = env.path("overlay");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("secret.enc.yaml"), &enc).unwrap();
    std::fs::write(
        dir.join("kustomization.yaml"),
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: other\nresources:\n  - secret.enc.yaml\n",
    )
    .unwrap();
    let kubectl = tool("kubectl", "install kubectl (with kustomize v5.5) on PATH");
    let out = Command::new(kubectl)
        .arg("kustomize")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl kustomize: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn namespace_added_to_secret_with_encrypted_regex() {
    let env = Env::new();
    let key = env.age_key("k");
    let built = build(&env, &key, &["--encrypted-regex", "^(data|stringData)$"]);
    assert!(built.contains("namespace: other"), "{built}");
    assert!(is_encrypted_document(&built));

    // sops refuses the built object: the added clear value is covered by the MAC
    let sops = env
        .sops_decrypt("built.yaml", built.as_bytes(), &[], Some(&key), None)
        .unwrap_err();
    assert!(sops.contains("MAC mismatch"), "{sops}");
    let keys = keyring(&[("k.agekey", &key.identity)]);
    let err = decrypt_with(
        built.as_bytes(),
        Format::Yaml,
        Format::Yaml,
        &keys,
        &DecryptOptions::SOPS,
    )
    .unwrap_err();
    assert!(matches!(err, SopsError::Integrity(_)), "{err:?}");

    // kustomize-controller skips the MAC check, so the Secret decrypts, namespace included
    let out = decrypt_with(
        built.as_bytes(),
        Format::Yaml,
        Format::Yaml,
        &keys,
        &DecryptOptions::FLUX,
    )
    .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("namespace: other"), "{text}");
    assert!(text.contains("username: admin"), "{text}");
    assert!(text.contains("password: c2VjcmV0LXBhc3N3b3Jk"), "{text}");
    // as upstream, the output is the plain tree: the sops metadata is gone
    assert!(!text.contains("sops:") && !text.contains("ENC["), "{text}");
}

#[test]
fn namespace_added_with_mac_only_encrypted() {
    // --mac-only-encrypted leaves clear values out of the MAC, but kustomize also sorts the
    // keys of `stringData` (username, config.yaml -> config.yaml, username): the encrypted
    // values are hashed in a new order and sops still reports a MAC mismatch. So do we;
    // kustomize-controller's mode decrypts.
    let env = Env::new();
    let key = env.age_key("k");
    let built = build(
        &env,
        &key,
        &[
            "--encrypted-regex",
            "^(data|stringData)$",
            "--mac-only-encrypted",
        ],
    );
    let config = built.find("config.yaml:").unwrap();
    let user = built.find("username:").unwrap();
    assert!(config < user, "kustomize sorted the keys: {built}");
    let sops = env
        .sops_decrypt("built.yaml", built.as_bytes(), &[], Some(&key), None)
        .unwrap_err();
    assert!(sops.contains("MAC mismatch"), "{sops}");
    let keys = keyring(&[("k.agekey", &key.identity)]);
    let err = decrypt_with(
        built.as_bytes(),
        Format::Yaml,
        Format::Yaml,
        &keys,
        &DecryptOptions::SOPS,
    )
    .unwrap_err();
    assert!(matches!(err, SopsError::Integrity(_)), "{err:?}");
    let out = decrypt_with(
        built.as_bytes(),
        Format::Yaml,
        Format::Yaml,
        &keys,
        &DecryptOptions::FLUX,
    )
    .unwrap();
    assert!(String::from_utf8(out).unwrap().contains("username: admin"));

    // without the build (same key order) the namespace alone does not break such a MAC
    let enc = env.encrypt(
        "plain-order.yaml",
        SECRET.replace("  namespace: apps\n", "").as_bytes(),
        &[
            "--age",
            &key.recipient,
            "--encrypted-regex",
            "^(data|stringData)$",
            "--mac-only-encrypted",
        ],
        None,
    );
    let with_ns = String::from_utf8(enc).unwrap().replace(
        "    name: db-credentials\n",
        "    name: db-credentials\n    namespace: other\n",
    );
    let theirs = env
        .sops_decrypt("ns.yaml", with_ns.as_bytes(), &[], Some(&key), None)
        .unwrap();
    let ours = decrypt_with(
        with_ns.as_bytes(),
        Format::Yaml,
        Format::Yaml,
        &keys,
        &DecryptOptions::SOPS,
    )
    .unwrap();
    crate::support::assert_same(&ours, &theirs, "namespace added, mac_only_encrypted");
}

#[test]
fn fully_encrypted_secret_cannot_be_built_with_a_namespace() {
    // with default settings metadata.name is an ENC[...] value; the namespace transformer
    // records the previous name in a comma-separated annotation, and the commas inside
    // ENC[...] make kustomize itself fail (it panics): such a Secret never reaches decryption
    let env = Env::new();
    let key = env.age_key("k");
    let plain = SECRET.replace("  namespace: apps\n", "");
    let enc = env.encrypt(
        "secret.enc.yaml",
        plain.as_bytes(),
        &["--age", &key.recipient],
        None,
    );
    let dir = env.path("overlay");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("secret.enc.yaml"), &enc).unwrap();
    std::fs::write(
        dir.join("kustomization.yaml"),
        "namespace: other\nresources:\n  - secret.enc.yaml\n",
    )
    .unwrap();
    let kubectl = tool("kubectl", "install kubectl (with kustomize v5.5) on PATH");
    let out = Command::new(kubectl)
        .arg("kustomize")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("number of previous names"), "{stderr}");

    // the same file with a clear namespace added by hand: the value is not ENC[...], so sops
    // and we refuse it, with or without the MAC check
    let with_ns = String::from_utf8(enc).unwrap().replacen(
        "metadata:\n",
        "metadata:\n    namespace: other\n",
        1,
    );
    let sops = env
        .sops_decrypt("ns.yaml", with_ns.as_bytes(), &[], Some(&key), None)
        .unwrap_err();
    assert!(sops.contains("does not match sops' data format"), "{sops}");
    let keys = keyring(&[("k.agekey", &key.identity)]);
    let err = decrypt_with(
        with_ns.as_bytes(),
        Format::Yaml,
        Format::Yaml,
        &keys,
        &DecryptOptions::FLUX,
    )
    .unwrap_err();
    assert!(matches!(err, SopsError::Tree(_)), "{err:?}");
    assert!(
        err.to_string().contains("does not match sops' data format"),
        "{err}"
    );
}

#[test]
fn decrypt_resource_as_flux_does() {
    // upstream decrypts a built resource through its JSON form: comments are gone, a
    // timestamp-looking clear value stays the text it was and a decrypted time is a string
    // (the YAML store would make times of both)
    use ferroflux_sops::decrypt_resource;
    let env = Env::new();
    let key = env.age_key("k");
    let plain = "\
apiVersion: v1
kind: Secret
metadata:
  name: app
  annotations:
    rotated: 2024-01-01
type: Opaque
stringData:
  # the database password
  password: hunter2
  since: 2023-05-06
  port: \"5432\"
";
    let enc = env.encrypt(
        "r.yaml",
        plain.as_bytes(),
        &[
            "--age",
            &key.recipient,
            "--encrypted-regex",
            "^(data|stringData)$",
        ],
        None,
    );
    let built = build_text(&env, &enc);
    // sops itself stored the clear date as a time text; add another clear date by hand after
    // encryption (Flux does not check the MAC)
    assert!(
        built.contains("rotated: \"2024-01-01T00:00:00Z\""),
        "{built}"
    );
    let built = built.replace("    rotated:", "    added: 2024-02-02\n    rotated:");
    let keys = keyring(&[("k.agekey", &key.identity)]);
    let out = decrypt_resource(&built, &keys, &DecryptOptions::FLUX).unwrap();
    assert!(out.contains("added: \"2024-02-02\""), "{out}");
    assert!(out.contains("rotated: \"2024-01-01T00:00:00Z\""), "{out}");
    // an encrypted time comes back as the string upstream's JSON path makes of it
    assert!(out.contains("since: \"2023-05-06T00:00:00Z\""), "{out}");
    assert!(out.contains("password: hunter2"), "{out}");
    assert!(out.contains("port: \"5432\""), "{out}");
    assert!(out.contains("namespace: other"), "{out}");
    assert!(!out.contains('#') && !out.contains("sops:"), "{out}");
    // the YAML store (sops --decrypt, decrypt_with) reads dates as times instead
    let yaml = decrypt_with(
        built.as_bytes(),
        Format::Yaml,
        Format::Yaml,
        &keys,
        &DecryptOptions::FLUX,
    )
    .unwrap();
    let yaml = String::from_utf8(yaml).unwrap();
    assert!(yaml.contains("added: 2024-02-02T00:00:00Z"), "{yaml}");
    assert!(yaml.contains("since: 2023-05-06T00:00:00Z"), "{yaml}");
    // errors as for decrypt_with
    let wrong = env.age_key("w");
    let err = decrypt_resource(
        &built,
        &keyring(&[("w.agekey", &wrong.identity)]),
        &DecryptOptions::FLUX,
    )
    .unwrap_err();
    assert!(matches!(err, SopsError::DataKey(_)), "{err:?}");
    let err = decrypt_resource(plain, &keys, &DecryptOptions::FLUX).unwrap_err();
    assert!(matches!(err, SopsError::MetadataNotFound { .. }), "{err:?}");
}

/// Build one encrypted file under `namespace: other` with `kubectl kustomize`.
fn build_text(env: &Env, enc: &[u8]) -> String {
    let dir = env.path("overlay-r");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("r.yaml"), enc).unwrap();
    std::fs::write(
        dir.join("kustomization.yaml"),
        "namespace: other\nresources:\n  - r.yaml\n",
    )
    .unwrap();
    let kubectl = tool("kubectl", "install kubectl (with kustomize v5.5) on PATH");
    let out = Command::new(kubectl)
        .arg("kustomize")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl kustomize: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
