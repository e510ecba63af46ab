//! Running the reference `kubectl kustomize`.

use std::path::Path;
use std::process::Command;

/// The kubectl binary, or a panic explaining how to get it (a missing oracle fails).
pub fn kubectl() -> String {
    let ok = Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .map(|o| o.status.success());
    match ok {
        Ok(true) => "kubectl".to_string(),
        _ => panic!(
            "kubectl (1.32, with kustomize v5.5) is required for the oracle tests but was not found on PATH; \
             it ships on the machine image as the Debian package `kubectl`: `apt-get install -y kubectl`"
        ),
    }
}

/// `kubectl kustomize DIR`: Ok(stdout) or Err(stderr).
pub fn kustomize(dir: &Path) -> Result<String, String> {
    let out = Command::new(kubectl())
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("running kubectl");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}
