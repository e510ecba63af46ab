//! A real OCI registry on 127.0.0.1 for tests: Debian's `docker-registry` (the CNCF
//! distribution registry), plain HTTP, optionally behind htpasswd basic auth, storage in a
//! temporary directory; stopped and removed on drop. (source-controller's own tests have a
//! richer harness with TLS; this one serves the CLI and end-to-end tests.)

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian installs the registry.
pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
/// How to install it.
pub const REGISTRY_HINT: &str = "install it with `apt-get install -y docker-registry`";

/// A running registry.
pub struct Registry {
    child: Child,
    /// `127.0.0.1:<port>`.
    pub addr: String,
    /// The user and password htpasswd accepts, when auth is on.
    pub user: Option<(String, String)>,
    dir: PathBuf,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Registry {
    /// The registry's storage and log directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The registry's log so far (errors only).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }
}

/// Starts a registry; with `user`, only that user and password are let in.
pub fn start(user: Option<(&str, &str)>) -> Registry {
    assert!(
        Path::new(REGISTRY_BIN).exists(),
        "{REGISTRY_BIN} is missing: {REGISTRY_HINT}"
    );
    let dir = std::env::temp_dir().join(format!(
        "ferroflux-registry-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir_all(&dir).expect("registry directory");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut config = format!(
        "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: ferroflux-test\n",
        dir.join("data").display()
    );
    if let Some((u, p)) = user {
        let hash = bcrypt::hash(p, 4).expect("bcrypt");
        let file = dir.join("htpasswd");
        std::fs::write(&file, format!("{u}:{hash}\n")).expect("htpasswd");
        config.push_str(&format!(
            "auth:\n  htpasswd:\n    realm: ferroflux-test\n    path: {}\n",
            file.display()
        ));
    }
    let cfg = dir.join("config.yml");
    std::fs::write(&cfg, config).expect("registry config");
    let log = std::fs::File::create(dir.join("registry.log")).expect("registry log");
    let child = Command::new(REGISTRY_BIN)
        .arg("serve")
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("{REGISTRY_BIN} failed to start ({e}): {REGISTRY_HINT}"));
    let registry = Registry {
        child,
        addr: format!("127.0.0.1:{port}"),
        user: user.map(|(u, p)| (u.to_string(), p.to_string())),
        dir,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "docker-registry did not start: {}",
            registry.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    registry
}
