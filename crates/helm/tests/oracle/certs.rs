//! Certificates from Sprig's `genCA`/`genSignedCert`/`genSelfSignedCert`/`buildCustomCert`
//! are random, so they are compared with helm's by shape: the same checks run on helm's
//! output and on ours (PEM parses, issuer is the CA's subject, the signature verifies with
//! the CA's key, SANs and validity as requested, the key matches the certificate).

use std::collections::HashMap;
use std::path::Path;

use base64::Engine as _;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::*;

/// One certificate the template makes: (name, issuer name or itself, CN, IPs, DNS names,
/// days, key PEM label, whether it is a CA).
type Expected = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    i64,
    &'static str,
    bool,
);

pub const CERTS: &[Expected] = &[
    ("ca", "ca", "my-ca", &[], &[], 30, "RSA PRIVATE KEY", true),
    (
        "c1",
        "ca",
        "svc",
        &["10.0.0.1", "::1"],
        &["svc.ns.svc", "svc"],
        10,
        "RSA PRIVATE KEY",
        false,
    ),
    (
        "c2",
        "ca",
        "svc2",
        &["192.168.1.2"],
        &["b.example"],
        20,
        "RSA PRIVATE KEY",
        false,
    ),
    ("eca", "eca", "ec-ca", &[], &[], 5, "EC PRIVATE KEY", true),
    (
        "c3",
        "eca",
        "svc3",
        &[],
        &["c.example"],
        3,
        "PRIVATE KEY",
        false,
    ),
    (
        "c4",
        "eca",
        "svc4",
        &["1.2.3.4"],
        &[],
        1,
        "RSA PRIVATE KEY",
        false,
    ),
    (
        "s1",
        "s1",
        "self",
        &["127.0.0.1"],
        &["self.example"],
        7,
        "RSA PRIVATE KEY",
        false,
    ),
    ("s2", "s2", "self2", &[], &[], 2, "EC PRIVATE KEY", false),
];

/// c2 is signed through `buildCustomCert` of the RSA CA, c3 and c4 through `buildCustomCert`
/// of an ECDSA CA made by `genCAWithKey`.
pub const TEMPLATE: &str = r#"
{{- $ca := genCA "my-ca" 30 }}
{{- $c1 := genSignedCert "svc" (list "10.0.0.1" "::1") (list "svc.ns.svc" "svc") 10 $ca }}
{{- $custom := buildCustomCert ($ca.Cert | b64enc) ($ca.Key | b64enc) }}
{{- $c2 := genSignedCert "svc2" (list "192.168.1.2") (list "b.example") 20 $custom }}
{{- $eca := genCAWithKey "ec-ca" 5 (genPrivateKey "ecdsa") }}
{{- $ecustom := buildCustomCert ($eca.Cert | b64enc) ($eca.Key | b64enc) }}
{{- $c3 := genSignedCertWithKey "svc3" nil (list "c.example") 3 $ecustom (genPrivateKey "ed25519") }}
{{- $c4 := genSignedCert "svc4" (list "1.2.3.4") nil 1 $ecustom }}
{{- $s1 := genSelfSignedCert "self" (list "127.0.0.1") (list "self.example") 7 }}
{{- $s2 := genSelfSignedCertWithKey "self2" nil nil 2 (genPrivateKey "ecdsa") }}
{{- range $n, $c := dict "ca" $ca "c1" $c1 "c2" $c2 "eca" $eca "c3" $c3 "c4" $c4 "s1" $s1 "s2" $s2 }}
{{ $n }}-cert: {{ $c.Cert | b64enc }}
{{ $n }}-key: {{ $c.Key | b64enc }}
{{- end }}
"#;

fn decode(out: &str) -> HashMap<String, String> {
    out.lines()
        .filter_map(|l| l.split_once(": "))
        .filter(|(k, _)| k.ends_with("-cert") || k.ends_with("-key"))
        .map(|(k, v)| {
            let b = base64::engine::general_purpose::STANDARD
                .decode(v.trim())
                .unwrap_or_else(|e| panic!("{k}: bad base64: {e}"));
            (k.to_string(), String::from_utf8(b).unwrap())
        })
        .collect()
}

fn der_of(pem_text: &str, label: &str, who: &str) -> Vec<u8> {
    let (_, p) = parse_x509_pem(pem_text.as_bytes())
        .unwrap_or_else(|e| panic!("{who}: PEM does not parse: {e:?}\n{pem_text}"));
    assert_eq!(p.label, label, "{who}: PEM label");
    p.contents
}

/// Check every certificate of one output; `who` names the producer in failures.
pub fn check(out: &str, who: &str) {
    let pems = decode(out);
    let ders: HashMap<&str, Vec<u8>> = CERTS
        .iter()
        .map(|c| {
            let pem = pems
                .get(&format!("{}-cert", c.0))
                .unwrap_or_else(|| panic!("{who}: no {}-cert in output", c.0));
            (c.0, der_of(pem, "CERTIFICATE", &format!("{who} {}", c.0)))
        })
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    for &(name, issuer, cn, ips, dns, days, key_label, is_ca) in CERTS {
        let at = format!("{who} {name}");
        let (_, cert) = parse_x509_certificate(&ders[name]).unwrap();
        let (_, ca) = parse_x509_certificate(&ders[issuer]).unwrap();
        let cns: Vec<&str> = cert
            .subject()
            .iter_common_name()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(cns, [cn], "{at}: subject CN");
        assert_eq!(
            cert.issuer().as_raw(),
            ca.subject().as_raw(),
            "{at}: issuer is not {issuer}'s subject"
        );
        cert.verify_signature(Some(ca.public_key()))
            .unwrap_or_else(|e| panic!("{at}: signature does not verify with {issuer}: {e}"));
        // SANs
        let mut got_dns = Vec::new();
        let mut got_ips = Vec::new();
        if let Some(san) = cert.subject_alternative_name().unwrap() {
            for n in &san.value.general_names {
                match n {
                    GeneralName::DNSName(d) => got_dns.push(d.to_string()),
                    GeneralName::IPAddress(b) => got_ips.push(match b.len() {
                        4 => std::net::IpAddr::from(<[u8; 4]>::try_from(*b).unwrap()),
                        _ => std::net::IpAddr::from(<[u8; 16]>::try_from(*b).unwrap()),
                    }),
                    other => panic!("{at}: unexpected SAN {other:?}"),
                }
            }
        }
        assert_eq!(got_dns, dns, "{at}: DNS SANs");
        let want_ips: Vec<std::net::IpAddr> = ips.iter().map(|s| s.parse().unwrap()).collect();
        assert_eq!(got_ips, want_ips, "{at}: IP SANs");
        // validity: from now, `days` × 24h
        let (nb, na) = (
            cert.validity().not_before.timestamp(),
            cert.validity().not_after.timestamp(),
        );
        assert!(
            (nb - now).abs() < 600,
            "{at}: notBefore {nb} is not now {now}"
        );
        assert!(
            (na - nb - days * 86400).abs() <= 2,
            "{at}: validity {}s, want {days} days",
            na - nb
        );
        let bc = cert
            .basic_constraints()
            .unwrap()
            .unwrap_or_else(|| panic!("{at}: no basicConstraints"));
        assert_eq!(bc.value.ca, is_ca, "{at}: basicConstraints CA flag");
        let ku = cert.key_usage().unwrap().expect("key usage");
        assert!(ku.value.digital_signature() && ku.value.key_encipherment());
        assert_eq!(ku.value.key_cert_sign(), is_ca, "{at}: keyCertSign");
        // the key: Go's PEM form, and the certificate's public key
        let key = &pems[&format!("{name}-key")];
        der_of(key, key_label, &format!("{at} key"));
        let kp = rcgen::KeyPair::from_pem(key)
            .unwrap_or_else(|e| panic!("{at}: key does not load: {e}"));
        assert_eq!(
            rcgen::PublicKeyData::subject_public_key_info(&kp),
            cert.public_key().raw,
            "{at}: key does not match the certificate"
        );
    }
}

/// Render [`TEMPLATE`] with helm and with ferroflux; both must pass [`check`].
pub fn run(bin: &Path) {
    let dir = tempfile::tempdir().unwrap();
    super::helm::write_chart(
        dir.path(),
        "{}",
        &[("certs.yaml".to_string(), TEMPLATE.to_string())],
    );
    let want = super::helm_cmd(bin, "r", dir.path(), &[]).expect("helm renders the certificates");
    check(&want, "helm");
    let got = super::ours("r", dir.path(), &ferroflux_helm::TemplateOptions::default())
        .expect("ferroflux renders the certificates");
    check(&got, "ferroflux");
}
