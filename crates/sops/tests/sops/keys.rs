//! Key sources: age identities and OpenPGP private keys, imported from Secret data.

use std::collections::BTreeMap;

use ferroflux_sops::{DecryptOptions, Format, Keyring, SopsError, decrypt, decrypt_with};

use crate::formats::SECRET;
use crate::support::{Env, assert_same, keyring};

#[test]
fn pgp_recipient_default_key() {
    let env = Env::new();
    let pgp = env.pgp_key("flux", "default", "default");
    let enc = env.encrypt(
        "pgp.yaml",
        SECRET.as_bytes(),
        &["--pgp", &pgp.fingerprint],
        Some(&pgp.home),
    );
    let text = String::from_utf8(enc.clone()).unwrap();
    assert!(text.contains("BEGIN PGP MESSAGE"), "{text}");
    let theirs = env
        .sops_decrypt("d.yaml", &enc, &[], None, Some(&pgp.home))
        .unwrap();
    let keys = keyring(&[("sops.asc", &pgp.armored_secret)]);
    assert_eq!(keys.pgp_keys(), 1);
    let ours = decrypt(&enc, Format::Yaml, &keys).unwrap();
    assert_same(&ours, &theirs, "pgp");
}

#[test]
fn pgp_recipient_rsa_key() {
    let env = Env::new();
    let pgp = env.pgp_key("rsa", "rsa3072", "sign,encr");
    let plain = r#"{"token": "abc", "n": 1}"#;
    let enc = env.encrypt(
        "pgp.json",
        plain.as_bytes(),
        &["--pgp", &pgp.fingerprint],
        Some(&pgp.home),
    );
    let theirs = env
        .sops_decrypt("d.json", &enc, &[], None, Some(&pgp.home))
        .unwrap();
    let keys = keyring(&[("rsa.asc", &pgp.armored_secret)]);
    let ours = decrypt(&enc, Format::Json, &keys).unwrap();
    assert_same(&ours, &theirs, "pgp rsa");
}

#[test]
fn age_and_pgp_recipients_either_key_works() {
    let env = Env::new();
    let age = env.age_key("a");
    let pgp = env.pgp_key("p", "default", "default");
    let enc = env.encrypt(
        "both.yaml",
        SECRET.as_bytes(),
        &["--age", &age.recipient, "--pgp", &pgp.fingerprint],
        Some(&pgp.home),
    );
    let theirs = env
        .sops_decrypt("d.yaml", &enc, &[], Some(&age), None)
        .unwrap();
    for keys in [
        keyring(&[("age.agekey", &age.identity)]),
        keyring(&[("pgp.asc", &pgp.armored_secret)]),
        keyring(&[
            ("age.agekey", &age.identity),
            ("pgp.asc", &pgp.armored_secret),
        ]),
    ] {
        let ours = decrypt(&enc, Format::Yaml, &keys).unwrap();
        assert_same(&ours, &theirs, &format!("{keys:?}"));
    }
}

#[test]
fn two_age_recipients_only_second_key_present() {
    let env = Env::new();
    let first = env.age_key("first");
    let second = env.age_key("second");
    let recipients = format!("{},{}", first.recipient, second.recipient);
    let enc = env.encrypt("two.yaml", SECRET.as_bytes(), &["--age", &recipients], None);
    let theirs = env
        .sops_decrypt("d.yaml", &enc, &[], Some(&second), None)
        .unwrap();
    let keys = keyring(&[("second.agekey", &second.identity)]);
    let ours = decrypt(&enc, Format::Yaml, &keys).unwrap();
    assert_same(&ours, &theirs, "second recipient");
}

#[test]
fn secret_data_import_rules() {
    let env = Env::new();
    let age = env.age_key("a");
    let mut data = BTreeMap::new();
    data.insert("identity.agekey".to_string(), age.identity.clone());
    // other entries are ignored, as kustomize-controller does
    data.insert("sops.aws-kms".to_string(), b"aws_access_key_id: x".to_vec());
    data.insert("sops.vault-token".to_string(), b"token".to_vec());
    data.insert("README".to_string(), b"not a key".to_vec());
    let keys = Keyring::from_secret_data(&data).unwrap();
    assert_eq!((keys.age_identities(), keys.pgp_keys()), (1, 0));

    // the global age Secret takes .agekey entries only
    let pgp = env.pgp_key("p", "default", "default");
    data.insert("key.asc".to_string(), pgp.armored_secret.clone());
    assert_eq!(Keyring::from_secret_data(&data).unwrap().pgp_keys(), 1);
    let global = Keyring::from_age_secret_data(&data).unwrap();
    assert_eq!((global.age_identities(), global.pgp_keys()), (1, 0));

    // a malformed identity is refused, naming the entry and never echoing its content
    let mut bad = BTreeMap::new();
    bad.insert(
        "broken.agekey".to_string(),
        b"AGE-SECRET-KEY-1NOTAREALKEYATALL".to_vec(),
    );
    let err = Keyring::from_secret_data(&bad).unwrap_err().to_string();
    assert!(
        err.contains("failed to import 'broken.agekey' data"),
        "{err}"
    );
    assert!(!err.contains("NOTAREALKEY"), "{err}");

    let mut bad = BTreeMap::new();
    bad.insert("other.agekey".to_string(), b"ssh-ed25519 AAAA".to_vec());
    let err = Keyring::from_secret_data(&bad).unwrap_err().to_string();
    assert!(err.contains("unknown identity type"), "{err}");

    // plugin identities are skipped (named when a file needs an age key)
    let mut with_plugin = BTreeMap::new();
    let mut both = b"AGE-PLUGIN-YUBIKEY-1QQQQQQ\n".to_vec();
    both.extend_from_slice(&age.identity);
    with_plugin.insert("mixed.agekey".to_string(), both);
    assert_eq!(
        Keyring::from_secret_data(&with_plugin)
            .unwrap()
            .age_identities(),
        1
    );
    let mut only_plugin = BTreeMap::new();
    only_plugin.insert(
        "p.agekey".to_string(),
        b"AGE-PLUGIN-YUBIKEY-1QQQQQQ\n".to_vec(),
    );
    let plugin_only = Keyring::from_secret_data(&only_plugin).unwrap();
    let enc = env.encrypt("p.yaml", b"a: b\n", &["--age", &age.recipient], None);
    let err = decrypt(&enc, Format::Yaml, &plugin_only)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "failed to load age identities (age identities not supported here were skipped: plugin)"
        ),
        "{err}"
    );

    let mut bad = BTreeMap::new();
    bad.insert(
        "broken.asc".to_string(),
        b"-----BEGIN PGP PRIVATE KEY BLOCK-----\ngarbage\n".to_vec(),
    );
    let err = Keyring::from_secret_data(&bad).unwrap_err().to_string();
    assert!(err.contains("failed to import 'broken.asc' data"), "{err}");
}

#[test]
fn unsupported_key_sources_fail_when_needed() {
    // a file whose only master key is a cloud KMS: the error names the key source
    let env = Env::new();
    let age = env.age_key("a");
    let enc = env.encrypt("kms.yaml", b"a: b\n", &["--age", &age.recipient], None);
    let text = String::from_utf8(enc).unwrap();
    // swap the age stanza for an AWS KMS one (sops cannot encrypt for KMS offline)
    let start = text.find("    age:").unwrap();
    let end = text.find("    lastmodified:").unwrap();
    let kms = "    kms:\n        - arn: arn:aws:kms:eu-west-1:000000000000:key/test\n          created_at: \"2024-01-01T00:00:00Z\"\n          enc: AQICAHh\n          aws_profile: \"\"\n";
    let swapped = format!("{}{}{}", &text[..start], kms, &text[end..]);
    let keys = keyring(&[("a.agekey", &age.identity)]);
    let err = decrypt_with(
        swapped.as_bytes(),
        Format::Yaml,
        Format::Yaml,
        &keys,
        &DecryptOptions::FLUX,
    )
    .unwrap_err();
    assert!(matches!(err, SopsError::DataKey(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.starts_with("cannot get sops data key:"), "{msg}");
    assert!(
        msg.contains("AWS KMS key sources are not supported"),
        "{msg}"
    );
    assert!(
        msg.contains("arn:aws:kms:eu-west-1:000000000000:key/test"),
        "{msg}"
    );
}

#[test]
fn shamir_key_groups() {
    // three key groups, threshold 2 (configured in .sops.yaml as sops requires)
    let env = Env::new();
    let (a, b, c) = (env.age_key("a"), env.age_key("b"), env.age_key("c"));
    std::fs::write(
        env.path(".sops.yaml"),
        format!(
            "creation_rules:\n  - shamir_threshold: 2\n    key_groups:\n      - age: [{}]\n      - age: [{}]\n      - age: [{}]\n",
            a.recipient, b.recipient, c.recipient
        ),
    )
    .unwrap();
    let enc = env.encrypt("shamir.yaml", SECRET.as_bytes(), &[], None);
    let text = String::from_utf8(enc.clone()).unwrap();
    assert!(
        text.contains("shamir_threshold: 2") && text.contains("key_groups:"),
        "{text}"
    );

    // sops needs every key to be findable in one file: give it all three
    let all = env.path("all.agekey");
    std::fs::write(
        &all,
        [a.identity.clone(), b.identity.clone(), c.identity.clone()].concat(),
    )
    .unwrap();
    let all_key = crate::support::AgeKey {
        file: all,
        identity: Vec::new(),
        recipient: String::new(),
    };
    let theirs = env
        .sops_decrypt("d.yaml", &enc, &[], Some(&all_key), None)
        .unwrap();
    // two of three groups suffice, in any combination
    for pair in [[&a, &c], [&b, &c], [&a, &b]] {
        let keys = keyring(&[
            ("x.agekey", &pair[0].identity),
            ("y.agekey", &pair[1].identity),
        ]);
        let ours = decrypt(&enc, Format::Yaml, &keys).unwrap();
        assert_same(&ours, &theirs, "shamir 2 of 3");
    }
    // one group is not enough, for sops either
    assert!(
        env.sops_decrypt("d1.yaml", &enc, &[], Some(&b), None)
            .is_err()
    );
    let keys = keyring(&[("b.agekey", &b.identity)]);
    let err = decrypt(&enc, Format::Yaml, &keys).unwrap_err().to_string();
    assert!(
        err.contains("Shamir threshold of 2, but only 1 part(s)"),
        "{err}"
    );
}
