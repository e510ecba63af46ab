//! Differential test of the artifact tarball against Go: the same tree archived by
//! `ferroflux_oci::build` and by Go's `archive/tar` driven as fluxcd/pkg/tar does
//! (`tests/go-tar/main.go`, built with the Debian `golang-go` toolchain) gives the same
//! uncompressed bytes, and the same gzip header. Names longer than USTAR's fields (prefix
//! split and PAX records), non-ASCII names, setgid directories, executables, empty
//! directories and symlinks (skipped) are in the tree.

use std::io::Read as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

fn tree(root: &Path) {
    let d = |p: &str| std::fs::create_dir_all(root.join(p)).unwrap();
    let f = |p: &str, c: &str| std::fs::write(root.join(p), c).unwrap();
    let mode = |p: &str, m: u32| {
        std::fs::set_permissions(root.join(p), std::fs::Permissions::from_mode(m)).unwrap()
    };
    d("a/empty");
    f("a/x.yaml", "kind: ConfigMap\n");
    mode("a/x.yaml", 0o640);
    mode("a", 0o2775);
    f("run.sh", "#!/bin/sh\necho hi\n");
    mode("run.sh", 0o755);
    let long_dir = "d".repeat(120);
    d(&long_dir);
    f(&format!("{long_dir}/f.yaml"), "z\n");
    d("ünï");
    f(&format!("ünï/{}.yaml", "y".repeat(200)), "y\n");
    let deep = format!("{}/{}", "p".repeat(150), "q".repeat(90));
    d(&deep);
    f(&format!("{deep}/{}", "r".repeat(99)), "w\n");
    f("big.bin", &"0123456789abcdef".repeat(4096));
    std::os::unix::fs::symlink("a/x.yaml", root.join("link")).unwrap();
    mode("", 0o755);
}

#[test]
fn tarball_is_go_archive_tar_bytes() {
    let go = ferroflux_testsupport::tool("go", "install it with `apt-get install -y golang-go`");
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("go-tar");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/go-tar/main.go");
    let out = Command::new(&go)
        .arg("build")
        .arg("-o")
        .arg(&bin)
        .arg(&src)
        .env("GO111MODULE", "off")
        .env("GOCACHE", tmp.path().join("gocache"))
        .env("GOPATH", tmp.path().join("gopath"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "go build: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let root = tmp.path().join("tree");
    std::fs::create_dir_all(&root).unwrap();
    tree(&root);
    let (go_tar, go_gz) = (tmp.path().join("go.tar"), tmp.path().join("go.tar.gz"));
    let out = Command::new(&bin)
        .arg(&root)
        .arg(&go_tar)
        .arg(&go_gz)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let go_tar = std::fs::read(go_tar).unwrap();
    let go_gz = std::fs::read(go_gz).unwrap();

    // No ignore rules: every regular file and directory goes in, as with Go's walk.
    let (ours_gz, built) = ferroflux_oci::build::build_to_vec(&root, &[]).unwrap();
    let mut ours_tar = Vec::new();
    flate2::read::GzDecoder::new(&ours_gz[..])
        .read_to_end(&mut ours_tar)
        .unwrap();
    if let Some(i) = ours_tar.iter().zip(&go_tar).position(|(a, b)| a != b) {
        let blk = i / 512 * 512;
        panic!(
            "first difference at byte {i} (block at {blk}):\n go:   {:?}\n ours: {:?}",
            String::from_utf8_lossy(&go_tar[blk..blk + 512]),
            String::from_utf8_lossy(&ours_tar[blk..blk + 512])
        );
    }
    assert_eq!(ours_tar.len(), go_tar.len());
    assert_eq!(built.diff_id, ferroflux_oci::build::sha256_digest(&go_tar));
    // Go's gzip header (no name, time 0, XFL 0 at the default level, OS 255); the deflate
    // stream after it is flate2's, not Go's.
    assert_eq!(ours_gz[..10], go_gz[..10]);
    let mut go_again = Vec::new();
    flate2::read::GzDecoder::new(&go_gz[..])
        .read_to_end(&mut go_again)
        .unwrap();
    assert_eq!(go_again, go_tar);
}
