//! Bad inputs: each fails with a clear error that carries no key material or cleartext, and
//! sops fails on the same input.

use ferroflux_sops::{
    DecryptOptions, Format, MAX_ENCRYPTED_FILE_SIZE, SopsError, decrypt, decrypt_with,
    is_encrypted_document,
};

use crate::formats::SECRET;
use crate::support::{Env, keyring};

/// Cleartext values of SECRET that must never show up in an error.
const CLEAR: [&str; 3] = ["c2VjcmV0LXBhc3N3b3Jk", "admin", "db.internal"];

fn assert_clean(msg: &str, identity: &[u8]) {
    assert!(
        !msg.contains("AGE-SECRET-KEY"),
        "error shows key material: {msg}"
    );
    let id = String::from_utf8_lossy(identity);
    for line in id.lines().filter(|l| !l.starts_with('#')) {
        assert!(
            !msg.contains(line.trim()),
            "error shows the identity: {msg}"
        );
    }
    for c in CLEAR {
        assert!(!msg.contains(c), "error shows cleartext {c:?}: {msg}");
    }
}

#[test]
fn wrong_key() {
    let env = Env::new();
    let right = env.age_key("right");
    let wrong = env.age_key("wrong");
    let enc = env.encrypt(
        "s.yaml",
        SECRET.as_bytes(),
        &["--age", &right.recipient],
        None,
    );
    let sops = env
        .sops_decrypt("d.yaml", &enc, &[], Some(&wrong), None)
        .unwrap_err();
    assert!(sops.contains("Failed to get the data key"), "{sops}");

    let keys = keyring(&[("wrong.agekey", &wrong.identity)]);
    let err = decrypt(&enc, Format::Yaml, &keys).unwrap_err();
    assert!(matches!(err, SopsError::DataKey(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.starts_with(
            "cannot get sops data key: Failed to get the data key required to decrypt the SOPS file"
        ),
        "{msg}"
    );
    assert!(
        msg.contains("no identity matched any of the recipients"),
        "{msg}"
    );
    // the public recipient is named so the operator knows which key is missing
    assert!(msg.contains(&right.recipient), "{msg}");
    assert!(!msg.contains('\n'), "one line: {msg}");
    assert_clean(&msg, &wrong.identity);

    // no keys at all
    let err = decrypt(&enc, Format::Yaml, &keyring(&[]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("failed to load age identities"), "{err}");
}

#[test]
fn tampered_value_breaks_the_mac() {
    let env = Env::new();
    let key = env.age_key("k");
    let enc = env.encrypt(
        "s.yaml",
        SECRET.as_bytes(),
        &[
            "--age",
            &key.recipient,
            "--encrypted-regex",
            "^(data|stringData)$",
        ],
        None,
    );
    let tampered = String::from_utf8(enc)
        .unwrap()
        .replace("name: db-credentials", "name: evil");
    let sops = env
        .sops_decrypt("d.yaml", tampered.as_bytes(), &[], Some(&key), None)
        .unwrap_err();
    assert!(sops.contains("MAC mismatch"), "{sops}");

    let keys = keyring(&[("k.agekey", &key.identity)]);
    let err = decrypt(tampered.as_bytes(), Format::Yaml, &keys).unwrap_err();
    assert!(matches!(err, SopsError::Integrity(_)), "{err:?}");
    let msg = err.to_string();
    assert_eq!(msg, "failed to verify sops data integrity: MAC mismatch");
    assert_clean(&msg, &key.identity);
    // kustomize-controller does not check the MAC by default
    let out = decrypt_with(
        tampered.as_bytes(),
        Format::Yaml,
        Format::Yaml,
        &keys,
        &DecryptOptions::FLUX,
    )
    .unwrap();
    assert!(String::from_utf8(out).unwrap().contains("name: evil"));
}

#[test]
fn swapped_ciphertext_fails_authentication() {
    // a value moved to another key fails AES-GCM (its path is the additional data)
    let env = Env::new();
    let key = env.age_key("k");
    let enc = String::from_utf8(env.encrypt(
        "s.yaml",
        SECRET.as_bytes(),
        &["--age", &key.recipient],
        None,
    ))
    .unwrap();
    let grab = |k: &str| {
        let line = enc.lines().find(|l| l.trim_start().starts_with(k)).unwrap();
        line[line.find("ENC[").unwrap()..].to_string()
    };
    let (user, kind) = (grab("username:"), grab("kind:"));
    let tampered = enc
        .replace(&user, "PLACEHOLDER")
        .replace(&kind, &user)
        .replace("PLACEHOLDER", &kind);
    assert!(
        env.sops_decrypt("d.yaml", tampered.as_bytes(), &[], Some(&key), None)
            .is_err()
    );
    let keys = keyring(&[("k.agekey", &key.identity)]);
    let err = decrypt_with(
        tampered.as_bytes(),
        Format::Yaml,
        Format::Yaml,
        &keys,
        &DecryptOptions::FLUX,
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, SopsError::Tree(_)), "{err:?}");
    assert!(msg.contains("Could not decrypt with AES_GCM"), "{msg}");
    assert_clean(&msg, &key.identity);
}

#[test]
fn tampered_mac() {
    let env = Env::new();
    let key = env.age_key("k");
    let enc = String::from_utf8(env.encrypt(
        "s.yaml",
        SECRET.as_bytes(),
        &["--age", &key.recipient],
        None,
    ))
    .unwrap();
    let pos = enc.find("mac: ENC[AES256_GCM,data:").unwrap() + "mac: ENC[AES256_GCM,data:".len();
    let mut bytes = enc.into_bytes();
    bytes[pos] = if bytes[pos] == b'A' { b'B' } else { b'A' };
    assert!(
        env.sops_decrypt("d.yaml", &bytes, &[], Some(&key), None)
            .is_err()
    );
    let keys = keyring(&[("k.agekey", &key.identity)]);
    let err = decrypt(&bytes, Format::Yaml, &keys).unwrap_err();
    assert!(matches!(err, SopsError::Integrity(_)), "{err:?}");
    assert!(
        err.to_string()
            .starts_with("failed to verify sops data integrity"),
        "{err}"
    );
}

#[test]
fn truncated_enc_value() {
    let env = Env::new();
    let key = env.age_key("k");
    let enc = String::from_utf8(env.encrypt(
        "s.yaml",
        SECRET.as_bytes(),
        &["--age", &key.recipient],
        None,
    ))
    .unwrap();
    let line = enc
        .lines()
        .find(|l| l.trim_start().starts_with("username:"))
        .unwrap();
    let value = &line[line.find("ENC[").unwrap()..];
    let truncated = enc.replace(value, &value[..value.find(",iv:").unwrap()]);
    let sops = env
        .sops_decrypt("d.yaml", truncated.as_bytes(), &[], Some(&key), None)
        .unwrap_err();
    assert!(sops.contains("does not match sops' data format"), "{sops}");
    let keys = keyring(&[("k.agekey", &key.identity)]);
    let err = decrypt_with(
        truncated.as_bytes(),
        Format::Yaml,
        Format::Yaml,
        &keys,
        &DecryptOptions::FLUX,
    )
    .unwrap_err();
    let msg = err.to_string();
    assert_eq!(
        msg,
        "error decrypting sops tree: Error walking tree: Could not decrypt value: Input string <redacted> does not match sops' data format"
    );
}

#[test]
fn missing_metadata() {
    let env = Env::new();
    let key = env.age_key("k");
    let sops = env
        .sops_decrypt("plain.yaml", SECRET.as_bytes(), &[], Some(&key), None)
        .unwrap_err();
    assert!(sops.contains("sops metadata not found"), "{sops}");
    let keys = keyring(&[("k.agekey", &key.identity)]);
    let err = decrypt(SECRET.as_bytes(), Format::Yaml, &keys).unwrap_err();
    assert!(matches!(err, SopsError::MetadataNotFound { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "failed to load encrypted YAML data: sops metadata not found"
    );
    let err = decrypt(b"{\"a\": 1}", Format::Json, &keys).unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to load encrypted JSON data: sops metadata not found"
    );
    let err = decrypt(b"A=1\n", Format::Dotenv, &keys).unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to load encrypted dotenv data: sops metadata not found"
    );
    assert!(!is_encrypted_document(SECRET));
}

#[test]
fn size_limit() {
    let keys = keyring(&[]);
    let big = vec![b'a'; MAX_ENCRYPTED_FILE_SIZE + 1];
    let err = decrypt(&big, Format::Binary, &keys).unwrap_err();
    assert!(matches!(err, SopsError::TooLarge { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "cannot decrypt file with size ({} bytes) exceeding limit (5242880)",
            MAX_ENCRYPTED_FILE_SIZE + 1
        )
    );
    let small = DecryptOptions {
        max_size: 10,
        ..DecryptOptions::FLUX
    };
    assert!(matches!(
        decrypt_with(b"0123456789a", Format::Yaml, Format::Yaml, &keys, &small),
        Err(SopsError::TooLarge {
            size: 11,
            limit: 10
        })
    ));
}

#[test]
fn detects_encrypted_documents() {
    let env = Env::new();
    let key = env.age_key("k");
    let enc = String::from_utf8(env.encrypt(
        "s.yaml",
        SECRET.as_bytes(),
        &["--age", &key.recipient],
        None,
    ))
    .unwrap();
    assert!(is_encrypted_document(&enc));
    assert!(!is_encrypted_document("sops: {}\n"));
    assert!(!is_encrypted_document("sops:\n  mac: \"\"\n"));
    assert!(!is_encrypted_document("not: [valid"));
}

#[test]
fn mangled_files_never_panic() {
    // every truncation and a spread of byte flips of real sops files: each call returns a
    // result (usually an error), none panics
    let env = Env::new();
    let key = env.age_key("k");
    let pgp = env.pgp_key("p", "default", "default");
    let keys = keyring(&[("k.agekey", &key.identity), ("p.asc", &pgp.armored_secret)]);
    // (format, file, flip stride): PGP decryption is slow in debug builds, flip its file less
    let files = [
        (
            Format::Yaml,
            env.encrypt(
                "m.yaml",
                crate::formats::NESTED.as_bytes(),
                &["--age", &key.recipient],
                None,
            ),
            29,
        ),
        (
            Format::Json,
            env.encrypt(
                "m.json",
                br#"{"a": [1, {"b": "c"}], "d": 1.5}"#,
                &["--pgp", &pgp.fingerprint],
                Some(&pgp.home),
            ),
            151,
        ),
        (
            Format::Dotenv,
            env.encrypt("m.env", b"A=1\nB=two\n", &["--age", &key.recipient], None),
            17,
        ),
        (
            Format::Ini,
            env.encrypt(
                "m.ini",
                b"; c\n[s]\nA = 1\nB = two\n",
                &["--age", &key.recipient],
                None,
            ),
            17,
        ),
    ];
    let mut ok = 0usize;
    for (format, enc, stride) in &files {
        assert!(decrypt(enc, *format, &keys).is_ok());
        for cut in (0..enc.len()).step_by(*stride / 2) {
            for opts in [DecryptOptions::FLUX, DecryptOptions::SOPS] {
                if decrypt_with(&enc[..cut], *format, *format, &keys, &opts).is_ok() {
                    ok += 1;
                }
            }
        }
        for pos in (0..enc.len()).step_by(*stride) {
            for byte in [b'\n', b' ', b'"', b':', b'[', b'{', b'#', b'A', 0xff] {
                let mut m = enc.clone();
                m[pos] = byte;
                let _ = decrypt_with(&m, *format, *format, &keys, &DecryptOptions::SOPS);
            }
        }
    }
    // some truncations only drop trailing text and still decrypt
    assert!(ok > 0);
}

#[test]
fn duplicate_keys_refused() {
    let env = Env::new();
    let key = env.age_key("k");
    let enc =
        String::from_utf8(env.encrypt("s.yaml", b"a: 1\nb: 2\n", &["--age", &key.recipient], None))
            .unwrap();
    let dup = enc.replacen("b: ENC", "a: ENC", 1);
    assert!(
        env.sops_decrypt("d.yaml", dup.as_bytes(), &[], Some(&key), None)
            .is_err()
    );
    let keys = keyring(&[("k.agekey", &key.identity)]);
    let err = decrypt_with(
        dup.as_bytes(),
        Format::Yaml,
        Format::Yaml,
        &keys,
        &DecryptOptions::FLUX,
    )
    .unwrap_err();
    assert!(matches!(err, SopsError::Load { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("mapping key \"a\" already defined at line 1"),
        "{err}"
    );
}
