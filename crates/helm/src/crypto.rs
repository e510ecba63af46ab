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

/// Sprig's `certificate` struct: PEM texts; signing parses them again, as Sprig does.
pub struct Certificate {
    pub cert: String,
    pub key: String,
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

/// The algorithm and private key inside a PKCS#8 document: (algorithm content, key bytes).
fn pkcs8_parts(p8: &[u8]) -> Option<(std::ops::Range<usize>, Vec<u8>)> {
    let (_, seq, _) = der_tlv(p8, 0)?;
    let (_, _, i) = der_tlv(p8, seq.start)?; // version
    let (_, alg, i) = der_tlv(p8, i)?; // algorithm
    let (tag, key, _) = der_tlv(p8, i)?;
    (tag == 0x04).then(|| (alg, p8[key].to_vec()))
}

const RSA_ALG: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];

/// DER of the OID 1.2.840.10045.2.1 (id-ecPublicKey).
const EC_PUBLIC_KEY_OID: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

/// Wrap a PKCS#1 RSA key into PKCS#8.
fn pkcs1_to_pkcs8(p1: &[u8]) -> Vec<u8> {
    let mut content = vec![0x02, 0x01, 0x00];
    content.extend_from_slice(RSA_ALG);
    content.extend(der(0x04, p1));
    der(0x30, &content)
}

/// Wrap a SEC1 EC key (which names its curve) into PKCS#8.
fn sec1_to_pkcs8(sec1: &[u8]) -> Option<Vec<u8>> {
    let (_, seq, _) = der_tlv(sec1, 0)?;
    let (_, _, mut i) = der_tlv(sec1, seq.start)?; // version
    let (_, _, next) = der_tlv(sec1, i)?; // private key
    i = next;
    let mut curve = None;
    while i < seq.end {
        let (tag, content, next) = der_tlv(sec1, i)?;
        if tag == 0xa0 {
            curve = Some(sec1[content].to_vec());
        }
        i = next;
    }
    let mut alg = EC_PUBLIC_KEY_OID.to_vec();
    alg.extend(curve?);
    let mut content = vec![0x02, 0x01, 0x00];
    content.extend(der(0x30, &alg));
    content.extend(der(0x04, sec1));
    Some(der(0x30, &content))
}

/// Go's SEC1 form of an EC key from PKCS#8: the curve is named inside (`[0]`), as
/// `x509.MarshalECPrivateKey` writes it.
fn pkcs8_to_sec1(p8: &[u8]) -> Option<Vec<u8>> {
    let (alg, inner) = pkcs8_parts(p8)?;
    let (_, _, curve_at) = der_tlv(p8, alg.start)?; // id-ecPublicKey
    let (_, _, curve_end) = der_tlv(p8, curve_at)?;
    let curve = &p8[curve_at..curve_end];
    let (_, seq, _) = der_tlv(&inner, 0)?;
    let (_, _, i) = der_tlv(&inner, seq.start)?; // version
    let (_, _, after_key) = der_tlv(&inner, i)?;
    let mut content = inner[seq.start..after_key].to_vec();
    let mut rest = after_key;
    if inner.get(rest) != Some(&0xa0) {
        content.extend(der(0xa0, curve));
    }
    while rest < seq.end {
        let (_, _, next) = der_tlv(&inner, rest)?;
        content.extend_from_slice(&inner[rest..next]);
        rest = next;
    }
    Some(der(0x30, &content))
}

/// Go's PEM form of a key (`pemBlockForKey`): PKCS#1 for RSA, SEC1 for ECDSA, PKCS#8 for
/// the rest (Ed25519).
fn key_pem(kp: &KeyPair) -> String {
    let p8 = kp.serialized_der();
    let alg = kp.algorithm();
    let ec = alg == &rcgen::PKCS_ECDSA_P256_SHA256
        || alg == &rcgen::PKCS_ECDSA_P384_SHA384
        || alg == &rcgen::PKCS_ECDSA_P521_SHA512;
    if alg == &rcgen::PKCS_RSA_SHA256
        && let Some((_, p1)) = pkcs8_parts(p8)
    {
        return pem("RSA PRIVATE KEY", &p1);
    }
    if ec && let Some(sec1) = pkcs8_to_sec1(p8) {
        return pem("EC PRIVATE KEY", &sec1);
    }
    pem("PRIVATE KEY", p8)
}

/// Sprig's `parsePrivateKeyPEM` (RSA, EC and PKCS#8 keys; the key is kept as PKCS#8).
fn parse_key(text: &str) -> Result<KeyPair, FuncError> {
    let (label, der) = pem_decode(text).ok_or("no PEM data in input")?;
    let bad = |what: &str| FuncError::Msg(format!("{what}: unsupported or malformed key"));
    let p8 = match label.as_str() {
        "PRIVATE KEY" => der,
        "RSA PRIVATE KEY" => pkcs1_to_pkcs8(&der),
        "EC PRIVATE KEY" => {
            sec1_to_pkcs8(&der).ok_or_else(|| bad("parsing EC private key from PEM"))?
        }
        l if !l.ends_with(" PRIVATE KEY") => {
            return Err(FuncError::Msg(format!(
                "no private key data in PEM block of type {l}"
            )));
        }
        l => return Err(FuncError::Msg(format!("invalid private key type {l}"))),
    };
    let what = match label.as_str() {
        "PRIVATE KEY" => "decoding PEM as PKCS#8",
        "RSA PRIVATE KEY" => "parsing RSA private key from PEM",
        _ => "parsing EC private key from PEM",
    };
    KeyPair::from_pem(&pem("PRIVATE KEY", &p8)).map_err(|_| bad(what))
}

fn rsa_key() -> Result<KeyPair, FuncError> {
    KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)
        .map_err(|e| FuncError::Msg(format!("error generating RSA key: {e}")))
}

/// NotBefore now, NotAfter `days` × 24h later (to the second, like Go's `time.Now()`).
fn validity(params: &mut CertificateParams, days: i64) {
    let at = |t: &jiff::Zoned| {
        let secs = u64::from(t.hour().unsigned_abs()) * 3600
            + u64::from(t.minute().unsigned_abs()) * 60
            + u64::from(t.second().unsigned_abs());
        rcgen::date_time_ymd(i32::from(t.year()), t.month() as u8, t.day() as u8)
            + std::time::Duration::from_secs(secs)
    };
    let now = jiff::Zoned::now().with_time_zone(jiff::tz::TimeZone::UTC);
    let end = now
        .checked_add(jiff::SignedDuration::from_hours(
            days.clamp(-4_000_000, 4_000_000) * 24,
        ))
        .unwrap_or(now.clone());
    params.not_before = at(&now);
    params.not_after = at(&end);
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
        let Value::String(s) = &ip else {
            return Err(FuncError::Msg(format!(
                "error parsing ip: {} is not a string",
                crate::sprig::strval(&ip)
            )));
        };
        let addr: std::net::IpAddr = s
            .parse()
            .map_err(|_| FuncError::Msg(format!("error parsing ip: {s}")))?;
        params.subject_alt_names.push(SanType::IpAddress(addr));
    }
    for d in items(dns) {
        let Value::String(s) = &d else {
            return Err(FuncError::Msg(format!(
                "error processing alternate dns name: {} is not a string",
                crate::sprig::strval(&d)
            )));
        };
        let name = s
            .to_string()
            .try_into()
            .map_err(|_| FuncError::Msg(format!("invalid DNS name: {s}")))?;
        params.subject_alt_names.push(SanType::DnsName(name));
    }
    // Go: a random serial below 2^128, BasicConstraintsValid with IsCA false
    let mut serial = [0u8; 16];
    rand::rng().fill_bytes(&mut serial);
    serial[0] &= 0x7f;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    params.is_ca = IsCa::ExplicitNoCa;
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

fn new_cert(cert: String, kp: &KeyPair) -> FuncResult {
    Ok(Value::Object(Rc::new(Certificate {
        cert,
        key: key_pem(kp),
    })))
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
    new_cert(cert.pem(), &kp)
}

/// Whether every relative distinguished name of the certificate's subject holds exactly one
/// attribute (what the issuer side of rcgen can reproduce).
fn subject_is_simple(cert_der: &[u8]) -> bool {
    let simple = || -> Option<bool> {
        let (_, cert, _) = der_tlv(cert_der, 0)?;
        let (_, tbs, _) = der_tlv(cert_der, cert.start)?;
        let mut i = tbs.start;
        if cert_der.get(i) == Some(&0xa0) {
            i = der_tlv(cert_der, i)?.2; // version
        }
        for _ in 0..4 {
            i = der_tlv(cert_der, i)?.2; // serial, signature, issuer, validity
        }
        let (_, subject, _) = der_tlv(cert_der, i)?;
        let mut at = subject.start;
        while at < subject.end {
            let (_, set, next) = der_tlv(cert_der, at)?;
            let (_, _, after_first) = der_tlv(cert_der, set.start)?;
            if set.is_empty() || after_first != set.end {
                return Some(false);
            }
            at = next;
        }
        Some(true)
    };
    simple().unwrap_or(false)
}

/// The signer of `genSignedCert`: the CA certificate and key as PEM (from `genCA` or
/// `buildCustomCert`), parsed as Sprig does.
fn issuer_of(v: &Value) -> Result<rcgen::Issuer<'static, KeyPair>, FuncError> {
    let Value::Object(o) = v else {
        return Err(FuncError::Msg(format!(
            "wrong type for value; expected sprig.certificate; got {}",
            v.type_name()
        )));
    };
    let Some(c) = o.as_any().and_then(|a| a.downcast_ref::<Certificate>()) else {
        return Err(FuncError::Msg(format!(
            "wrong type for value; expected sprig.certificate; got {}",
            o.type_name()
        )));
    };
    let der = match pem_decode(&c.cert) {
        Some((_, der)) => der,
        None => return Err("unable to decode certificate".into()),
    };
    if !subject_is_simple(&der) {
        return Err(FuncError::Msg(
            "error parsing certificate: decodedSignerCert.Bytes: unsupported subject".into(),
        ));
    }
    let key =
        parse_key(&c.key).map_err(|e| FuncError::Msg(format!("error parsing private key: {e}")))?;
    rcgen::Issuer::from_ca_cert_der(&der.into(), key).map_err(|e| {
        FuncError::Msg(format!(
            "error parsing certificate: decodedSignerCert.Bytes: {e}"
        ))
    })
}

fn gen_signed(a: &[Value], key: Option<KeyPair>) -> FuncResult {
    let cn = a[0].as_str().unwrap_or_default();
    let days = crate::sprig::to_int64(&a[3]);
    let issuer = issuer_of(&a[4])?;
    let params = base_params(cn, &a[1], &a[2], days)?;
    let kp = match key {
        Some(k) => k,
        None => rsa_key()?,
    };
    let cert = params.signed_by(&kp, &issuer).map_err(rc_err)?;
    new_cert(cert.pem(), &kp)
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
    new_cert(cert.pem(), &kp)
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

/// Character classes of the Master Password algorithm's templates.
fn template_chars(class: u8) -> &'static [u8] {
    match class {
        b'V' => b"AEIOU",
        b'C' => b"BCDFGHJKLMNPQRSTVWXYZ",
        b'v' => b"aeiou",
        b'c' => b"bcdfghjklmnpqrstvwxyz",
        b'A' => b"AEIOUBCDFGHJKLMNPQRSTVWXYZ",
        b'a' => b"AEIOUaeiouBCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz",
        b'n' => b"0123456789",
        b'o' => b"@&%?,=[]_:-+*$#!'^~;()/.",
        _ => b"AEIOUaeiouBCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz0123456789!@#$%^&*()",
    }
}

/// The templates of each password type (Master Password v3).
fn password_templates(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "maximum" => &["anoxxxxxxxxxxxxxxxxx", "axxxxxxxxxxxxxxxxxno"],
        "long" => &[
            "CvcvnoCvcvCvcv",
            "CvcvCvcvnoCvcv",
            "CvcvCvcvCvcvno",
            "CvccnoCvcvCvcv",
            "CvccCvcvnoCvcv",
            "CvccCvcvCvcvno",
            "CvcvnoCvccCvcv",
            "CvcvCvccnoCvcv",
            "CvcvCvccCvcvno",
            "CvcvnoCvcvCvcc",
            "CvcvCvcvnoCvcc",
            "CvcvCvcvCvccno",
            "CvccnoCvccCvcv",
            "CvccCvccnoCvcv",
            "CvccCvccCvcvno",
            "CvcvnoCvccCvcc",
            "CvcvCvccnoCvcc",
            "CvcvCvccCvccno",
            "CvccnoCvcvCvcc",
            "CvccCvcvnoCvcc",
            "CvccCvcvCvccno",
        ],
        "medium" => &["CvcnoCvc", "CvcCvcno"],
        "short" => &["Cvcn"],
        "basic" => &["aaanaaan", "aannaaan", "aaannaaa"],
        "pin" => &["nnnn"],
        _ => return None,
    })
}

/// Sprig's `derivePassword`: the Master Password algorithm (scrypt N=32768 r=8 p=2 over the
/// master password salted with the user name, then HMAC-SHA256 over the site and counter
/// picks a template and its characters). Failures are returned as text, as Sprig does.
fn derive_password(counter: u32, kind: &str, password: &str, user: &str, site: &str) -> String {
    use aws_lc_rs::hmac;
    const SEED: &[u8] = b"com.lyndir.masterpassword";
    let Some(templates) = password_templates(kind) else {
        return format!("cannot find password template {kind}");
    };
    let mut salt = SEED.to_vec();
    salt.extend_from_slice(&(user.len() as u32).to_be_bytes());
    salt.extend_from_slice(user.as_bytes());
    let mut key = [0u8; 64];
    let derived = scrypt::Params::new(15, 8, 2, 64)
        .map_err(|e| e.to_string())
        .and_then(|p| {
            scrypt::scrypt(password.as_bytes(), &salt, &p, &mut key).map_err(|e| e.to_string())
        });
    if let Err(e) = derived {
        return format!("failed to derive password: {e}");
    }
    let mut msg = SEED.to_vec();
    msg.extend_from_slice(&(site.len() as u32).to_be_bytes());
    msg.extend_from_slice(site.as_bytes());
    msg.extend_from_slice(&counter.to_be_bytes());
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), &msg);
    let seed = tag.as_ref();
    let template = templates[usize::from(seed[0]) % templates.len()].as_bytes();
    template
        .iter()
        .enumerate()
        .map(|(i, class)| {
            let chars = template_chars(*class);
            char::from(chars[usize::from(seed[i + 1]) % chars.len()])
        })
        .collect()
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

/// Sprig's `certificate` struct as a parameter type.
const CERT: Param = Param::Object("sprig.certificate");

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
            Ok(Value::str(key_pem(&kp)))
        }),
        f("genCA", &[String, Int], |_, a| {
            gen_ca(&s(&a[0]), crate::sprig::to_int64(&a[1]), None)
        }),
        f("genCAWithKey", &[String, Int, String], |_, a| {
            let k = parse_key(&s(&a[2]))
                .map_err(|e| FuncError::Msg(format!("parsing private key: {e}")))?;
            gen_ca(&s(&a[0]), crate::sprig::to_int64(&a[1]), Some(k))
        }),
        f("genSelfSignedCert", &[String, List, List, Int], |_, a| {
            gen_self_signed(&a, None)
        }),
        f(
            "genSelfSignedCertWithKey",
            &[String, List, List, Int, String],
            |_, a| {
                let k = parse_key(&s(&a[4]))
                    .map_err(|e| FuncError::Msg(format!("parsing private key: {e}")))?;
                gen_self_signed(&a, Some(k))
            },
        ),
        f("genSignedCert", &[String, List, List, Int, CERT], |_, a| {
            gen_signed(&a, None)
        }),
        f(
            "genSignedCertWithKey",
            &[String, List, List, Int, CERT, String],
            |_, a| {
                let k = parse_key(&s(&a[5]))
                    .map_err(|e| FuncError::Msg(format!("parsing private key: {e}")))?;
                gen_signed(&a, Some(k))
            },
        ),
        f("buildCustomCert", &[String, String], |_, a| {
            let dec = |x: &Value, what: &str| {
                base64::engine::general_purpose::STANDARD
                    .decode(s(x))
                    .map(|b| std::string::String::from_utf8_lossy(&b).into_owned())
                    .map_err(|_| FuncError::Msg(format!("unable to decode base64 {what}")))
            };
            let cert = dec(&a[0], "certificate")?;
            let key = dec(&a[1], "private key")?;
            let Some((_, der)) = pem_decode(&cert) else {
                return Err("unable to decode certificate".into());
            };
            if der_tlv(&der, 0).is_none_or(|(tag, _, end)| tag != 0x30 || end != der.len()) {
                return Err(
                    "error parsing certificate: decodedCert.Bytes: x509: malformed certificate"
                        .into(),
                );
            }
            parse_key(&key)
                .map_err(|e| FuncError::Msg(format!("error parsing private key: {e}")))?;
            Ok(Value::Object(Rc::new(Certificate { cert, key })))
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
        f(
            "derivePassword",
            &[Uint32, String, String, String, String],
            |_, a| {
                let counter = match &a[0] {
                    Value::Uint(u) => *u as u32,
                    other => crate::sprig::to_int64(other) as u32,
                };
                Ok(Value::str(derive_password(
                    counter,
                    &s(&a[1]),
                    &s(&a[2]),
                    &s(&a[3]),
                    &s(&a[4]),
                )))
            },
        ),
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
