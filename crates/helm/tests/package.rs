//! `package::chart` against the real `helm package` (helm v4 from scripts/get-oracles): the
//! same chart directories give archives with the same entries, in the same order, with the
//! same bytes (Chart.yaml re-serialised, values.yaml, templates, files, dependencies expanded
//! under charts/); and `package::index` reads what `helm repo index` writes.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::Command;

use ferroflux_helm::package::chart::{Limits, load_dir, save};
use ferroflux_helm::package::index::IndexFile;

fn helm(dir: &Path, args: &[&str]) -> String {
    let bin = ferroflux_testsupport::tool("helm", "run scripts/get-oracles (helm v4)");
    let out = Command::new(bin)
        .args(args)
        .current_dir(dir)
        .env("HELM_CACHE_HOME", dir.join(".helm/cache"))
        .env("HELM_CONFIG_HOME", dir.join(".helm/config"))
        .env("HELM_DATA_HOME", dir.join(".helm/data"))
        .output()
        .expect("helm runs");
    assert!(
        out.status.success(),
        "helm {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// (name, bytes) of every entry, in archive order.
fn entries(tgz: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(tgz));
    let mut out = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.push((name, data));
    }
    out
}

fn packaged_by_helm(dir: &Path, chart: &str) -> Vec<u8> {
    let dest = dir.join("out");
    std::fs::create_dir_all(&dest).unwrap();
    let out = helm(dir, &["package", chart, "-d", dest.to_str().unwrap()]);
    let path = out.trim().rsplit(": ").next().unwrap().to_string();
    std::fs::read(path).unwrap()
}

fn assert_same(ours: &[u8], theirs: &[u8]) {
    let (o, t) = (entries(ours), entries(theirs));
    let names = |v: &[(String, Vec<u8>)]| v.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    assert_eq!(names(&o), names(&t));
    let t: BTreeMap<_, _> = t.into_iter().collect();
    for (name, data) in &o {
        assert_eq!(
            String::from_utf8_lossy(data),
            String::from_utf8_lossy(&t[name]),
            "{name}"
        );
    }
}

#[test]
fn packages_like_helm_package() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    helm(dir, &["create", "web"]);
    helm(dir, &["create", "common"]);
    // Chart.yaml with more fields (keywords, maintainers, annotations, a file:// dependency).
    std::fs::write(
        dir.join("web/Chart.yaml"),
        "apiVersion: v2\nname: web\ndescription: A web app & more <ok>\ntype: application\nversion: 1.2.3\nappVersion: \"2.0\"\nkeywords: [web, app]\nhome: https://example.com\nmaintainers:\n- name: Jo\n  email: jo@example.com\nannotations:\n  example.com/team: \"platform\"\n  category: Web\ndependencies:\n- name: common\n  version: \">=0.1.0\"\n  repository: file://../common\n  condition: common.enabled\nunknownField: dropped\n",
    )
    .unwrap();
    std::fs::write(dir.join("web/README.md"), "# web\n").unwrap();
    std::fs::write(dir.join("web/.helmignore"), "*.tmp\nREADME.md\n").unwrap();
    std::fs::write(dir.join("web/notes.tmp"), "ignored\n").unwrap();
    std::fs::create_dir_all(dir.join("web/files")).unwrap();
    std::fs::write(dir.join("web/files/config.json"), "{\"a\": 1}\n").unwrap();
    helm(dir, &["dependency", "build", "web"]);

    let theirs = packaged_by_helm(dir, "web");
    let chart = load_dir(dir, Path::new("web"), Limits::default()).unwrap();
    let ours = save(&chart).unwrap();
    assert_same(&ours, &theirs);

    // A chart without dependencies, as helm create writes it.
    let theirs = packaged_by_helm(dir, "common");
    let chart = load_dir(dir, Path::new("common"), Limits::default()).unwrap();
    assert_same(&save(&chart).unwrap(), &theirs);

    // helm itself loads our package.
    let pkg = dir.join("ours.tgz");
    std::fs::write(&pkg, &ours).unwrap();
    helm(dir, &["template", "rel", pkg.to_str().unwrap()]);
}

#[test]
fn reads_helm_repo_index() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    helm(dir, &["create", "app"]);
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    for v in ["0.1.0", "0.2.0", "0.10.0", "1.0.0-rc.1"] {
        helm(
            dir,
            &[
                "package",
                "app",
                "--version",
                v,
                "-d",
                repo.to_str().unwrap(),
            ],
        );
    }
    helm(
        dir,
        &[
            "repo",
            "index",
            repo.to_str().unwrap(),
            "--url",
            "https://charts.example.com",
        ],
    );
    let idx = IndexFile::from_bytes(&std::fs::read(repo.join("index.yaml")).unwrap()).unwrap();
    let versions: Vec<&str> = idx.entries["app"]
        .iter()
        .flatten()
        .map(|v| v.version.as_str())
        .collect();
    assert_eq!(versions, ["1.0.0-rc.1", "0.10.0", "0.2.0", "0.1.0"]);
    let latest = idx.get("app", "").unwrap();
    assert_eq!(latest.version, "0.10.0");
    assert_eq!(
        latest.urls,
        ["https://charts.example.com/app-0.10.0.tgz".to_string()]
    );
    assert_eq!(latest.digest.len(), 64);
    // The stored JSON form reads back to the same index.
    assert_eq!(IndexFile::from_bytes(&idx.to_json()).unwrap(), idx);
}
