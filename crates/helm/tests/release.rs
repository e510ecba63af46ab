//! Release records against the real `helm` v4: `helm install --dry-run=client -o json` prints
//! the release exactly as its storage driver encodes it (Go's `json.Marshal` of the record), so
//! it is the oracle both for our JSON writer (decode + re-encode is byte-identical) and for
//! `render_release` + `chart_record` (the same chart and values give the same record).

use ferroflux_helm::release::{self, Release, ReleaseOptions, storage};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn helm() -> PathBuf {
    ferroflux_testsupport::tool("helm", "scripts/get-oracles installs helm v4")
}

/// `helm create NAME` in `dir` (the starter chart of the helm under test).
fn created_chart(dir: &Path) -> PathBuf {
    let out = Command::new(helm())
        .current_dir(dir)
        .args(["create", "starter"])
        .output()
        .expect("run helm create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join("starter")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let t = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &t);
        } else {
            std::fs::copy(&p, &t).unwrap();
        }
    }
}

/// The umbrella fixture with its `exporter` subchart packaged into charts/ by helm.
fn umbrella(tmp: &Path) -> PathBuf {
    let dir = tmp.join("umbrella");
    copy_dir(&fixture("umbrella"), &dir);
    let out = Command::new(helm())
        .arg("package")
        .arg(fixture("exporter"))
        .arg("-d")
        .arg(dir.join("charts"))
        .output()
        .expect("run helm package");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// The release `helm install NAME CHART --dry-run=client -o json` prints (raw JSON text).
fn helm_release(name: &str, ns: &str, chart: &Path, values: &Value, tmp: &Path) -> String {
    let vf = tmp.join(format!("{name}-values.json"));
    std::fs::write(&vf, values.to_string()).unwrap();
    let out = Command::new(helm())
        .env("KUBECONFIG", tmp.join("no-cluster"))
        .args(["install", name])
        .arg(chart)
        .args(["--dry-run=client", "-o", "json", "-n", ns, "-f"])
        .arg(&vf)
        .output()
        .expect("run helm install");
    assert!(
        out.status.success(),
        "helm install {}: {}",
        chart.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .trim_end()
        .to_string()
}

fn cases(tmp: &Path) -> Vec<(&'static str, PathBuf, Value)> {
    vec![
        (
            "starter",
            created_chart(tmp),
            json!({"replicaCount": 3, "podAnnotations": {"a&b": "<x>"}, "big": 1.5e21, "f": 0.25}),
        ),
        (
            "umbrella",
            umbrella(tmp),
            json!({"sub": {"enabled": true}, "tags": {"extra": true}}),
        ),
        ("webapp", fixture("webapp"), json!({})),
        (
            "exporter",
            fixture("exporter"),
            json!({"x": [1, "two", null, false]}),
        ),
    ]
}

#[test]
fn helm_release_json_decodes_and_reencodes_byte_for_byte() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, chart, values) in cases(tmp.path()) {
        let raw = helm_release(name, "apps", &chart, &values, tmp.path());
        let rel = Release::from_json(raw.as_bytes()).unwrap();
        assert_eq!(rel.name, name);
        assert_eq!(rel.version, 1);
        let again = rel.to_go_json();
        if again != raw {
            let at = again
                .bytes()
                .zip(raw.bytes())
                .position(|(a, b)| a != b)
                .unwrap_or(again.len().min(raw.len()));
            let lo = at.saturating_sub(80);
            panic!(
                "{name}: re-encoding differs at byte {at}\n helm: {}\n ours: {}",
                &raw[lo..(at + 80).min(raw.len())],
                &again[lo..(at + 80).min(again.len())]
            );
        }
    }
}

fn without_modtimes(mut r: Release) -> Release {
    if let Some(c) = &mut r.chart {
        c.modtime = None;
        c.schemamodtime = None;
        for f in c
            .templates
            .iter_mut()
            .flatten()
            .chain(c.files.iter_mut().flatten())
        {
            f.modtime = None;
        }
    }
    r
}

/// The first place two JSON documents differ, as a path and both values.
fn first_difference(want: &Value, got: &Value, path: String) -> Option<String> {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for k in w.keys().chain(g.keys()) {
                let (a, b) = (
                    w.get(k).unwrap_or(&Value::Null),
                    g.get(k).unwrap_or(&Value::Null),
                );
                if let Some(d) = first_difference(a, b, format!("{path}/{k}")) {
                    return Some(d);
                }
            }
            None
        }
        (Value::Array(w), Value::Array(g)) if w.len() == g.len() => w
            .iter()
            .zip(g)
            .enumerate()
            .find_map(|(i, (a, b))| first_difference(a, b, format!("{path}/{i}"))),
        _ if want == got => None,
        _ => {
            let short = |v: &Value| v.to_string().chars().take(400).collect::<String>();
            Some(format!(
                "{path}:\n helm: {}\n ours: {}",
                short(want),
                short(got)
            ))
        }
    }
}

#[test]
fn render_release_makes_the_record_helm_install_makes() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, chart, values) in cases(tmp.path()) {
        let raw = helm_release(name, "apps", &chart, &values, tmp.path());
        let want = without_modtimes(Release::from_json(raw.as_bytes()).unwrap());
        let r = release::render_release(
            &chart,
            values.as_object().unwrap(),
            &ReleaseOptions {
                name: name.into(),
                namespace: "apps".into(),
                revision: 1,
                is_upgrade: false,
                kube_version: None,
                api_versions: vec![],
                skip_schema_validation: false,
            },
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let mut info = want.info.clone().unwrap();
        info.notes = r.notes.clone();
        let got = Release {
            name: name.into(),
            info: Some(info),
            chart: Some(r.chart),
            config: values.as_object().unwrap().clone(),
            manifest: r.manifest,
            hooks: r.hooks,
            version: 1,
            namespace: "apps".into(),
            apply_method: "ssa".into(),
            ..Release::default()
        };
        let (w, g) = (want.to_go_json(), got.to_go_json());
        if w != g {
            let wv: Value = serde_json::from_str(&w).unwrap();
            let gv: Value = serde_json::from_str(&g).unwrap();
            if let Some(d) = first_difference(&wv, &gv, String::new()) {
                panic!("{name}: {d}");
            }
            assert_eq!(g, w, "{name}: JSON differs");
        }
    }
}

#[test]
fn storage_encoding_is_gzip_base64_and_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let chart = created_chart(tmp.path());
    let raw = helm_release("enc", "default", &chart, &json!({"k": "v"}), tmp.path());
    let mut rel = Release::from_json(raw.as_bytes()).unwrap();
    rel.labels.insert("team".into(), "a".into());
    rel.set_status(release::status::DEPLOYED, "Install complete");
    let data = storage::encode(&rel);
    let gz = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &data).unwrap();
    assert_eq!(&gz[..3], &[0x1f, 0x8b, 0x08], "gzip magic");
    let back = storage::decode(&data).unwrap();
    assert_eq!(back.to_go_json(), rel.to_go_json());
    // pre-compression releases (plain base64 JSON) still read
    let plain = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        rel.to_go_json().as_bytes(),
    );
    assert_eq!(
        storage::decode(&plain).unwrap().to_go_json(),
        rel.to_go_json()
    );

    let s = storage::secret(&rel, "default", true, 1_700_000_000);
    assert_eq!(s["metadata"]["name"], "sh.helm.release.v1.enc.v1");
    assert_eq!(s["type"], "helm.sh/release.v1");
    assert_eq!(
        s["metadata"]["labels"],
        json!({"name": "enc", "owner": "helm", "status": "deployed", "version": "1", "createdAt": "1700000000", "team": "a"})
    );
    let read = storage::from_object(&s).unwrap();
    assert_eq!(read.labels.get("team").map(String::as_str), Some("a"));
    assert_eq!(read.labels.len(), 1, "system labels are not release labels");
    assert_eq!(read.to_go_json(), rel.to_go_json());
    let cm = storage::config_map(&rel, "default", false, 1_700_000_001);
    assert_eq!(cm["metadata"]["labels"]["modifiedAt"], "1700000001");
    assert_eq!(
        storage::from_object(&cm).unwrap().to_go_json(),
        rel.to_go_json()
    );
    // garbage is an error, not a panic
    assert!(storage::decode("not base64!").is_err());
    let bad_gz = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        [0x1f, 0x8b, 0x08, 0, 1, 2, 3],
    );
    assert!(storage::decode(&bad_gz).is_err());
}
