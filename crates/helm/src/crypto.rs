//! Sprig's crypto functions: keys, CA and certificates (PEM like Go's x509 output), AES
//! encryption, random bytes.

use std::rc::Rc;

use base64::Engine as _;
use ferroflux_gotemplate::{Env, Func, FuncError, FuncResult, Object, Param, Value};
use rand::RngCore;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};

/// Sprig's `certificate` struct.
pub struct Certificate {
    pub cert: String,
    pub key: String,
    /// Parameters and key that can sign other certificates (set for generated CAs).
    signer: Option<(CertificateParams, String)>,
}

impl Object for Certificate {
    fn type_name(&self) -> String {
        "sprig.certificate".into()
    }
    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "Cert" => Some(Value::str(self.cert.as_str())),
            "Key" => Some(Value::str(self.key.as_str())),
            _ => None,
        }
    }
    fn format(&self, _plus: bool) -> String {
        format!("{{{} {}}}", self.cert, self.key)
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn pem_decode(text: &str) -> Option<(String, Vec<u8>)> {
    let start = text.find("-----BEGIN ")?;
    let rest = &text[start + 11..];
    let label_end = rest.find("-----")?;
    let label = rest[..label_end].to_string();
    let body_start = label_end + 5;
    let end = rest.find("-----END ")?;
    let body: String = rest[body_start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .ok()?;
    Some((label, der))
}

/// Read one DER TLV at `i`: (tag, content range, next index).
fn der_tlv(b: &[u8], i: usize) -> Option<(u8, std::ops::Range<usize>, usize)> {
    let tag = *b.get(i)?;
    let l0 = *b.get(i + 1)? as usize;
    let (len, hdr) = if l0 < 0x80 {
        (l0, 2)
    } else {
        let n = l0 & 0x7f;
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for k in 0..n {
            len = (len << 8) | *b.get(i + 2 + k)? as usize;
        }
        (len, 2 + n)
    };
    let start = i + hdr;
    let end = start.checked_add(len)?;
    if end > b.len() {
        return None;
    }
    Some((tag, start..end, end))
}

fn der_len(n: usize) -> Vec<u8> {
    if n < 0x80 {
        vec![n as u8]
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        let mut v = vec![0x80 | bytes.len() as u8];
        v.extend(bytes);
        v
    }
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend(der_len(content.len()));
    v.extend_from_slice(content);
    v
}

/// The private key inside a PKCS#8 document.
fn pkcs8_inner(p8: &[u8]) -> Option<Vec<u8>> {
    let (_, seq, _) = der_tlv(p8, 0)?;
    let (_, _, i) = der_tlv(p8, seq.start)?; // version
    let (_, _, i) = der_tlv(p8, i)?; // algorithm
    let (tag, key, _) = der_tlv(p8, i)?;
    (tag == 0x04).then(|| p8[key].to_vec())
}

const RSA_ALG: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];

/// Wrap a PKCS#1 RSA key into PKCS#8.
fn pkcs1_to_pkcs8(p1: &[u8]) -> Vec<u8> {
    let mut content = vec![0x02, 0x01, 0x00];
    content.extend_from_slice(RSA_ALG);
    content.extend(der(0x04, p1));
    der(0x30, &content)
}

/// Go's PEM form of a generated key: PKCS#1 for RSA, SEC1 for ECDSA, PKCS#8 for Ed25519.
fn key_pem(kp: &KeyPair, kind: &str) -> String {
    let p8 = kp.serialized_der();
    match kind {
        "rsa" => match pkcs8_inner(p8) {
            Some(p1) => pem("RSA PRIVATE KEY", &p1),
            None => pem("PRIVATE KEY", p8),
        },
        "ecdsa" => match pkcs8_inner(p8) {
            Some(sec1) => pem("EC PRIVATE KEY", &sec1),
            None => pem("PRIVATE KEY", p8),
        },
        _ => pem("PRIVATE KEY", p8),
    }
}

fn parse_key(text: &str) -> Result<KeyPair, FuncError> {
    let (label, der) = pem_decode(text).ok_or("error decoding PEM key")?;
    let p8 = if label == "RSA PRIVATE KEY" {
        pkcs1_to_pkcs8(&der)
    } else {
        der
    };
    let p8 = pem("PRIVATE KEY", &p8);
    KeyPair::from_pem(&p8).map_err(|e| FuncError::Msg(format!("error parsing private key: {e}")))
}

fn rsa_key() -> Result<KeyPair, FuncError> {
    KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)
        .map_err(|e| FuncError::Msg(format!("error generating RSA key: {e}")))
}

fn validity(params: &mut CertificateParams, days: i64) {
    let now = jiff::Zoned::now().with_time_zone(jiff::tz::TimeZone::UTC);
    let end = now
        .checked_add(jiff::Span::new().days(days))
        .unwrap_or(now.clone());
    params.not_before =
        rcgen::date_time_ymd(i32::from(now.year()), now.month() as u8, now.day() as u8);
    params.not_after =
        rcgen::date_time_ymd(i32::from(end.year()), end.month() as u8, end.day() as u8);
}

fn base_params(
    cn: &str,
    ips: &Value,
    dns: &Value,
    days: i64,
) -> Result<CertificateParams, FuncError> {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, cn);
    validity(&mut params, days);
    let items = |v: &Value| -> Vec<Value> {
        match v {
            Value::List(l) => l.as_ref().clone(),
            _ => Vec::new(),
        }
    };
    for ip in items(ips) {
        let s = crate::sprig::strval(&ip);
        let addr: std::net::IpAddr = s
            .parse()
            .map_err(|_| FuncError::Msg(format!("error parsing ip: {s}")))?;
        params.subject_alt_names.push(SanType::IpAddress(addr));
    }
    for d in items(dns) {
        let s = crate::sprig::strval(&d);
        let name = s
            .clone()
            .try_into()
            .map_err(|_| FuncError::Msg(format!("invalid DNS name: {s}")))?;
        params.subject_alt_names.push(SanType::DnsName(name));
    }
    params.key_usages = vec![
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    Ok(params)
}

fn rc_err(e: rcgen::Error) -> FuncError {
    FuncError::Msg(format!("error creating certificate: {e}"))
}

fn gen_ca(cn: &str, days: i64, key: Option<KeyPair>) -> FuncResult {
    let kp = match key {
        Some(k) => k,
        None => rsa_key()?,
    };
    let mut params = base_params(cn, &Value::Nil, &Value::Nil, days)?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyCertSign,
    ];
    let cert = params.self_signed(&kp).map_err(rc_err)?;
    let key_text = key_pem(&kp, "rsa");
    Ok(Value::Object(Rc::new(Certificate {
        cert: cert.pem(),
        key: key_text.clone(),
        signer: Some((params, key_text)),
    })))
}

fn ca_of(v: &Value) -> Result<(CertificateParams, KeyPair), FuncError> {
    let Value::Object(o) = v else {
        return Err(FuncError::Msg(format!(
            "wrong type for value; expected sprig.certificate; got {}",
            v.type_name()
        )));
    };
    let Some(c) = o.as_any().and_then(|a| a.downcast_ref::<Certificate>()) else {
        return Err(FuncError::Msg("expected a certificate".into()));
    };
    match &c.signer {
        Some((params, key)) => Ok((params.clone(), parse_key(key)?)),
        None => Err(FuncError::Msg(
            "signing with a certificate built by buildCustomCert is not supported".into(),
        )),
    }
}

fn gen_signed(a: &[Value], key: Option<KeyPair>) -> FuncResult {
    let cn = a[0].as_str().unwrap_or_default();
    let days = crate::sprig::to_int64(&a[3]);
    let (ca_params, ca_key) = ca_of(&a[4])?;
    let kp = match key {
        Some(k) => k,
        None => rsa_key()?,
    };
    let params = base_params(cn, &a[1], &a[2], days)?;
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let cert = params.signed_by(&kp, &issuer).map_err(rc_err)?;
    Ok(Value::Object(Rc::new(Certificate {
        cert: cert.pem(),
        key: key_pem(&kp, "rsa"),
        signer: None,
    })))
}

fn gen_self_signed(a: &[Value], key: Option<KeyPair>) -> FuncResult {
    let cn = a[0].as_str().unwrap_or_default();
    let days = crate::sprig::to_int64(&a[3]);
    let kp = match key {
        Some(k) => k,
        None => rsa_key()?,
    };
    let params = base_params(cn, &a[1], &a[2], days)?;
    let cert = params.self_signed(&kp).map_err(rc_err)?;
    Ok(Value::Object(Rc::new(Certificate {
        cert: cert.pem(),
        key: key_pem(&kp, "rsa"),
        signer: None,
    })))
}

fn aes_key(password: &str) -> [u8; 32] {
    let mut key = [0u8; 32];
    let p = password.as_bytes();
    let n = p.len().min(32);
    key[..n].copy_from_slice(&p[..n]);
    key
}

fn encrypt_aes(password: &str, plaintext: &str) -> Result<String, FuncError> {
    use aws_lc_rs::cipher::{
        AES_256, DecryptionContext, PaddedBlockEncryptingKey, UnboundCipherKey,
    };
    if plaintext.is_empty() {
        return Ok(String::new());
    }
    let key = UnboundCipherKey::new(&AES_256, &aes_key(password))
        .map_err(|_| FuncError::Msg("crypto/aes: invalid key".into()))?;
    let enc = PaddedBlockEncryptingKey::cbc_pkcs7(key)
        .map_err(|_| FuncError::Msg("crypto/aes: invalid key".into()))?;
    let mut buf = plaintext.as_bytes().to_vec();
    let ctx = enc
        .encrypt(&mut buf)
        .map_err(|_| FuncError::Msg("crypto/aes: encryption failed".into()))?;
    let iv: &[u8] = match &ctx {
        DecryptionContext::Iv128(iv) => iv.as_ref(),
        _ => return Err(FuncError::Msg("crypto/aes: no IV".into())),
    };
    let mut out = iv.to_vec();
    out.extend_from_slice(&buf);
    Ok(base64::engine::general_purpose::STANDARD.encode(out))
}

fn decrypt_aes(password: &str, crypt: &str) -> Result<String, FuncError> {
    use aws_lc_rs::cipher::{
        AES_256, DecryptionContext, PaddedBlockDecryptingKey, UnboundCipherKey,
    };
    use aws_lc_rs::iv::FixedLength;
    let data = base64::engine::general_purpose::STANDARD
        .decode(crypt)
        .map_err(|e| FuncError::Msg(e.to_string()))?;
    if data.len() < 16 || (data.len() - 16) % 16 != 0 {
        return Err("crypto/cipher: input not full blocks".into());
    }
    let mut iv = [0u8; 16];
    iv.copy_from_slice(&data[..16]);
    let mut body = data[16..].to_vec();
    let key = UnboundCipherKey::new(&AES_256, &aes_key(password))
        .map_err(|_| FuncError::Msg("crypto/aes: invalid key".into()))?;
    let dec = PaddedBlockDecryptingKey::cbc_pkcs7(key)
        .map_err(|_| FuncError::Msg("crypto/aes: invalid key".into()))?;
    let plain = dec
        .decrypt(&mut body, DecryptionContext::Iv128(FixedLength::from(iv)))
        .map_err(|_| FuncError::Msg("crypto/cipher: bad padding".into()))?;
    Ok(String::from_utf8_lossy(plain).into_owned())
}

/// Go's `bcrypt.GenerateFromPassword` with the default cost 10 (`$2a$` prefix).
fn bcrypt_hash(password: &str) -> String {
    match bcrypt::hash_with_result(password, 10) {
        Ok(h) => h.format_for_version(bcrypt::Version::TwoA),
        Err(e) => format!("failed to encrypt string with bcrypt: {e}"),
    }
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

type Imp = fn(&mut dyn Env, Vec<Value>) -> FuncResult;

/// Sprig's crypto functions.
pub fn functions() -> Vec<Func> {
    use Param::*;
    let f = |n: &str, p: &[Param], imp: Imp| Func::new(n, p, None, imp);
    vec![
        f("genPrivateKey", &[String], |_, a| {
            let kind = s(&a[0]);
            let alg = match kind.as_str() {
                "rsa" => &rcgen::PKCS_RSA_SHA256,
                "ecdsa" => &rcgen::PKCS_ECDSA_P256_SHA256,
                "ed25519" => &rcgen::PKCS_ED25519,
                _ => return Ok(Value::str(format!("Unknown type {kind}"))),
            };
            let kp = KeyPair::generate_for(alg)
                .map_err(|e| FuncError::Msg(format!("failed to generate private key: {e}")))?;
            Ok(Value::str(key_pem(&kp, &kind)))
        }),
        f("genCA", &[String, Int], |_, a| {
            gen_ca(&s(&a[0]), crate::sprig::to_int64(&a[1]), None)
        }),
        f("genCAWithKey", &[String, Int, String], |_, a| {
            let k = parse_key(&s(&a[2]))?;
            gen_ca(&s(&a[0]), crate::sprig::to_int64(&a[1]), Some(k))
        }),
        f("genSelfSignedCert", &[String, List, List, Int], |_, a| {
            gen_self_signed(&a, None)
        }),
        f(
            "genSelfSignedCertWithKey",
            &[String, List, List, Int, String],
            |_, a| {
                let k = parse_key(&s(&a[4]))?;
                gen_self_signed(&a, Some(k))
            },
        ),
        f("genSignedCert", &[String, List, List, Int, Any], |_, a| {
            gen_signed(&a, None)
        }),
        f(
            "genSignedCertWithKey",
            &[String, List, List, Int, Any, String],
            |_, a| {
                let k = parse_key(&s(&a[5]))?;
                gen_signed(&a, Some(k))
            },
        ),
        f("buildCustomCert", &[String, String], |_, a| {
            let dec = |x: &Value| {
                base64::engine::general_purpose::STANDARD
                    .decode(s(x))
                    .map(|b| std::string::String::from_utf8_lossy(&b).into_owned())
                    .map_err(|e| {
                        FuncError::Msg(format!("unable to decode base64 certificate: {e}"))
                    })
            };
            let cert = dec(&a[0])?;
            let key = dec(&a[1])?;
            if pem_decode(&cert).is_none() {
                return Err("error decoding pem block for certificate".into());
            }
            if pem_decode(&key).is_none() {
                return Err("error decoding pem block for key".into());
            }
            Ok(Value::Object(Rc::new(Certificate {
                cert,
                key,
                signer: None,
            })))
        }),
        f("encryptAES", &[String, String], |_, a| {
            encrypt_aes(&s(&a[0]), &s(&a[1])).map(Value::str)
        }),
        f("decryptAES", &[String, String], |_, a| {
            decrypt_aes(&s(&a[0]), &s(&a[1])).map(Value::str)
        }),
        f("bcrypt", &[String], |_, a| {
            Ok(Value::str(bcrypt_hash(&s(&a[0]))))
        }),
        f("htpasswd", &[String, String], |_, a| {
            let (user, pass) = (s(&a[0]), s(&a[1]));
            if user.contains(':') {
                return Ok(Value::str(format!("invalid username: {user}")));
            }
            Ok(Value::str(format!("{user}:{}", bcrypt_hash(&pass))))
        }),
        f("randBytes", &[Int], |_, a| {
            let n = crate::sprig::to_int64(&a[0]).max(0) as usize;
            let mut b = vec![0u8; n];
            rand::rng().fill_bytes(&mut b);
            Ok(Value::str(
                base64::engine::general_purpose::STANDARD.encode(b),
            ))
        }),
    ]
}
