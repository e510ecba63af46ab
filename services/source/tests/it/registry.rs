//! A real OCI registry on 127.0.0.1 (Debian's `docker-registry`, the CNCF distribution
//! registry) with optional TLS and htpasswd basic auth, and a pusher built on oci-client that
//! publishes artifacts the way `flux push artifact` and `helm push` lay them out.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use sha2::Digest as _;

use crate::support::{Pki, free_port};

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
pub const FLUX_CONFIG: &str = "application/vnd.cncf.flux.config.v1+json";
pub const FLUX_CONTENT: &str = "application/vnd.cncf.flux.content.v1.tar+gzip";
pub const HELM_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";
pub const HELM_CHART: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const COSIGN_SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

/// A running registry; stopped on drop.
pub struct Registry {
    child: std::process::Child,
    /// `127.0.0.1:<port>`.
    pub addr: String,
    pub tls: bool,
    pub user: Option<(String, String)>,
    ca: Option<String>,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `docker-registry` with TLS from `pki` (server cert for 127.0.0.1) and/or htpasswd
/// auth for `user`.
pub fn start(pki: Option<&Pki>, user: Option<(&str, &str)>) -> Registry {
    start_with(pki, false, user, None)
}

impl Registry {
    /// A second registry serving this one's storage that requires a TLS client certificate
    /// signed by the test CA (`http.tls.clientcas`); push through `self`, pull through it.
    pub fn client_cert_twin(&self, pki: &Pki) -> Registry {
        let user = self.user.clone();
        start_with(
            Some(pki),
            true,
            user.as_ref().map(|(u, p)| (u.as_str(), p.as_str())),
            Some(self._dir.path().join("data")),
        )
    }
}

fn start_with(
    pki: Option<&Pki>,
    client_certs: bool,
    user: Option<(&str, &str)>,
    data: Option<std::path::PathBuf>,
) -> Registry {
    assert!(
        Path::new(REGISTRY_BIN).exists(),
        "{REGISTRY_BIN} is missing: install it with `apt-get install -y docker-registry`"
    );
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut config = format!(
        "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: ferroflux-test\n",
        data.unwrap_or_else(|| dir.path().join("data")).display()
    );
    if let Some(pki) = pki {
        let (cert, key) = (dir.path().join("server.crt"), dir.path().join("server.key"));
        std::fs::write(&cert, &pki.server_cert).unwrap();
        std::fs::write(&key, &pki.server_key).unwrap();
        config.push_str(&format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            cert.display(),
            key.display()
        ));
        if client_certs {
            let ca = dir.path().join("client-ca.crt");
            std::fs::write(&ca, &pki.ca).unwrap();
            config.push_str(&format!("    clientcas:\n      - {}\n", ca.display()));
        }
    }
    if let Some((u, p)) = user {
        let hash = bcrypt::hash(p, 4).unwrap();
        let file = dir.path().join("htpasswd");
        std::fs::write(&file, format!("{u}:{hash}\n")).unwrap();
        config.push_str(&format!(
            "auth:\n  htpasswd:\n    realm: ferroflux-test\n    path: {}\n",
            file.display()
        ));
    }
    let cfg = dir.path().join("config.yml");
    std::fs::write(&cfg, config).unwrap();
    let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
    let child = Command::new(REGISTRY_BIN)
        .arg("serve")
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{REGISTRY_BIN} failed to start ({e}): install it with `apt-get install -y docker-registry`")
        });
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "docker-registry did not start: {}",
            std::fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Registry {
        child,
        addr: format!("127.0.0.1:{port}"),
        tls: pki.is_some(),
        user: user.map(|(u, p)| (u.to_string(), p.to_string())),
        ca: pki.map(|p| p.ca.clone()),
        _dir: dir,
    }
}

/// sha256 digest string of bytes.
pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

/// A gzip'ed tarball of `files` (path, content), written the way `flux push artifact` does.
pub fn tar_gz(files: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    for (path, content) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        b.append_data(&mut h, path, content.as_bytes()).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}

/// A tarball with one entry whose name is written raw (e.g. `../evil`), bypassing the tar
/// crate's own checks.
pub fn hostile_tar_gz(name: &str, content: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    b.append(&h, content.as_bytes()).unwrap();
    b.into_inner().unwrap().finish().unwrap()
}

/// A layer to push: media type and bytes.
pub struct Layer {
    pub media_type: String,
    pub data: Vec<u8>,
}

impl Layer {
    pub fn flux(files: &[(&str, &str)]) -> Self {
        Self {
            media_type: FLUX_CONTENT.into(),
            data: tar_gz(files),
        }
    }
}

impl Registry {
    fn client(&self) -> Client {
        let mut cfg = ClientConfig {
            protocol: if self.tls {
                ClientProtocol::Https
            } else {
                ClientProtocol::Http
            },
            ..ClientConfig::default()
        };
        if let Some(ca) = &self.ca {
            cfg.extra_root_certificates.push(Certificate {
                encoding: CertificateEncoding::Pem,
                data: ca.clone().into_bytes(),
            });
        }
        Client::try_from(cfg).unwrap()
    }

    fn auth(&self) -> RegistryAuth {
        match &self.user {
            Some((u, p)) => RegistryAuth::Basic(u.clone(), p.clone()),
            None => RegistryAuth::Anonymous,
        }
    }

    /// `oci://<addr>/<repo>`.
    pub fn url(&self, repo: &str) -> String {
        format!("oci://{}/{repo}", self.addr)
    }

    async fn ready_client(&self, repo: &str) -> (Client, Reference) {
        let client = self.client();
        let r = Reference::with_tag(self.addr.clone(), repo.to_string(), "latest".into());
        client
            .auth(&r, &self.auth(), RegistryOperation::Push)
            .await
            .unwrap();
        (client, r)
    }

    /// Pushes an image manifest (config + layers + annotations) under `tag` (or untagged when
    /// `tag` is None); returns the manifest digest.
    pub async fn push(
        &self,
        repo: &str,
        tag: Option<&str>,
        config_media_type: &str,
        layers: &[Layer],
        annotations: &BTreeMap<String, String>,
    ) -> String {
        let (client, r) = self.ready_client(repo).await;
        let config = b"{}".to_vec();
        let config_digest = sha256(&config);
        client
            .push_blob(&r, config.clone(), &config_digest)
            .await
            .unwrap();
        let mut descs = Vec::new();
        for l in layers {
            let d = sha256(&l.data);
            client.push_blob(&r, l.data.clone(), &d).await.unwrap();
            descs.push(
                serde_json::json!({"mediaType": l.media_type, "digest": d, "size": l.data.len()}),
            );
        }
        let mut manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": config_media_type, "digest": config_digest, "size": config.len()},
            "layers": descs,
        });
        if !annotations.is_empty() {
            manifest["annotations"] = serde_json::to_value(annotations).unwrap();
        }
        self.put_manifest(&client, repo, tag, manifest, OCI_MANIFEST)
            .await
    }

    /// Pushes a cosign signature image for `digest` the way cosign lays it out: tag
    /// `sha256-<hex>.sig`, one simple-signing layer per `(payload, base64 signature)`, the
    /// signature in the `dev.cosignproject.cosign/signature` annotation.
    pub async fn push_signature(&self, repo: &str, digest: &str, sigs: &[(Vec<u8>, String)]) {
        let (client, r) = self.ready_client(repo).await;
        let config = br#"{"architecture":"","config":{},"created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"}],"os":"","rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec();
        let config_digest = sha256(&config);
        client
            .push_blob(&r, config.clone(), &config_digest)
            .await
            .unwrap();
        let mut layers = Vec::new();
        for (payload, sig) in sigs {
            let d = sha256(payload);
            client.push_blob(&r, payload.clone(), &d).await.unwrap();
            layers.push(serde_json::json!({
                "mediaType": COSIGN_SIMPLE_SIGNING, "digest": d, "size": payload.len(),
                "annotations": {"dev.cosignproject.cosign/signature": sig},
            }));
        }
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
            "layers": layers,
        });
        let tag = format!("{}.sig", digest.replacen(':', "-", 1));
        self.put_manifest(&client, repo, Some(&tag), manifest, OCI_MANIFEST)
            .await;
    }

    /// Pushes an index of `(os, arch, manifest digest)` under `tag`; returns its digest.
    pub async fn push_index(
        &self,
        repo: &str,
        tag: &str,
        children: &[(&str, &str, &str)],
    ) -> String {
        let (client, _) = self.ready_client(repo).await;
        let mut manifests = Vec::new();
        for (os, arch, digest) in children {
            let r = Reference::with_digest(self.addr.clone(), repo.into(), digest.to_string());
            let (raw, _) = client
                .pull_manifest_raw(&r, &self.auth(), &[OCI_MANIFEST])
                .await
                .unwrap();
            manifests.push(serde_json::json!({
                "mediaType": OCI_MANIFEST, "digest": digest, "size": raw.len(),
                "platform": {"os": os, "architecture": arch},
            }));
        }
        let index =
            serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
        self.put_manifest(&client, repo, Some(tag), index, OCI_INDEX)
            .await
    }

    async fn put_manifest(
        &self,
        client: &Client,
        repo: &str,
        tag: Option<&str>,
        manifest: serde_json::Value,
        media_type: &str,
    ) -> String {
        let body = serde_json::to_vec(&manifest).unwrap();
        let digest = sha256(&body);
        let r = match tag {
            Some(t) => Reference::with_tag(self.addr.clone(), repo.into(), t.into()),
            None => Reference::with_digest(self.addr.clone(), repo.into(), digest.clone()),
        };
        client
            .push_manifest_raw(
                &r,
                body,
                reqwest::header::HeaderValue::from_str(media_type).unwrap(),
            )
            .await
            .unwrap();
        digest
    }

    /// Deletes a blob (so any later pull of it fails).
    pub async fn delete_blob(&self, repo: &str, digest: &str) {
        let scheme = if self.tls { "https" } else { "http" };
        let mut b = reqwest::Client::builder();
        if let Some(ca) = &self.ca {
            b = b.tls_certs_merge([reqwest::Certificate::from_pem(ca.as_bytes()).unwrap()]);
        }
        let mut req = b
            .build()
            .unwrap()
            .delete(format!("{scheme}://{}/v2/{repo}/blobs/{digest}", self.addr));
        if let Some((u, p)) = &self.user {
            req = req.basic_auth(u, Some(p));
        }
        let status = req.send().await.unwrap().status();
        assert_eq!(status.as_u16(), 202, "deleting blob {digest}");
    }
}

/// A `kubernetes.io/dockerconfigjson` Secret's data for one registry.
pub fn dockerconfigjson(registry: &str, user: &str, pass: &str) -> Vec<u8> {
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    serde_json::json!({"auths": {registry: {"username": user, "password": pass, "auth": auth}}})
        .to_string()
        .into_bytes()
}

/// A cosign simple-signing payload claiming `digest` for `reference` (cosign's format).
pub fn simple_signing_payload(reference: &str, digest: &str) -> Vec<u8> {
    serde_json::json!({
        "critical": {
            "identity": {"docker-reference": reference},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature",
        },
        "optional": null,
    })
    .to_string()
    .into_bytes()
}

/// An ECDSA P-256 key pair made by the `openssl` CLI (independent of the verifier under
/// test): `(private key path, public key PEM)`.
pub fn openssl_p256_key(dir: &Path, name: &str) -> (std::path::PathBuf, Vec<u8>) {
    let key = dir.join(format!("{name}.key"));
    let public = dir.join(format!("{name}.pub"));
    openssl(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        key.to_str().unwrap(),
    ]);
    openssl(&[
        "ec",
        "-in",
        key.to_str().unwrap(),
        "-pubout",
        "-out",
        public.to_str().unwrap(),
    ]);
    (key, std::fs::read(public).unwrap())
}

/// Signs `payload` with `openssl dgst -sha256 -sign` (ASN.1 DER ECDSA, as cosign writes);
/// returns the base64 signature.
pub fn openssl_sign(dir: &Path, key: &Path, payload: &[u8]) -> String {
    use base64::Engine;
    let input = dir.join("payload.json");
    let output = dir.join("payload.sig");
    std::fs::write(&input, payload).unwrap();
    openssl(&[
        "dgst",
        "-sha256",
        "-sign",
        key.to_str().unwrap(),
        "-out",
        output.to_str().unwrap(),
        input.to_str().unwrap(),
    ]);
    base64::engine::general_purpose::STANDARD.encode(std::fs::read(output).unwrap())
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("openssl is missing ({e}): install it with `apt-get install -y openssl`")
        });
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
