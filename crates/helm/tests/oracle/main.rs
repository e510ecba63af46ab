//! Oracle tests: charts rendered by `ferroflux_helm::template` and by the real `helm template`
//! (v4) must produce identical output (or identical errors).

mod certs;
mod classes;
mod funcs;
mod schema;
mod yamlerr;

use std::path::Path;
use std::process::Command;

use ferroflux_gotemplate::oracle as helm;
use ferroflux_helm::{HelmVersion, TemplateOptions, template};

/// Run `helm template NAME DIR ARGS...`; Ok(stdout) or Err(stderr without "Error: ").
fn helm_cmd(bin: &Path, name: &str, dir: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new(bin)
        .arg("template")
        .arg(name)
        .arg(dir)
        .args(args)
        .output()
        .expect("run helm");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let e = String::from_utf8_lossy(&out.stderr).into_owned();
        // log lines (level=...) may precede the error
        let e = match e.find("Error: ") {
            Some(i) if i == 0 || e[..i].ends_with('\n') => e[i + "Error: ".len()..].to_string(),
            _ => e,
        };
        let e = e
            .split("\n\nUse --debug")
            .next()
            .unwrap_or(&e)
            .trim_end()
            .to_string();
        Err(e)
    }
}

fn ours(name: &str, dir: &Path, opts: &TemplateOptions) -> Result<String, String> {
    // Helm's CLI output is compared with trailing whitespace trimmed.
    template(name, dir, opts).map_err(|e| e.to_string().trim_end().to_string())
}

fn compare(name: &str, dir: &Path, args: &[&str], opts: &TemplateOptions) {
    let bin = helm::oracle(if opts.helm_version == HelmVersion::V3 {
        "helm3"
    } else {
        "helm"
    });
    let want = helm_cmd(&bin, name, dir, args);
    let got = ours(name, dir, opts);
    if let Ok(w) = &want {
        assert!(
            w.contains("# Source:"),
            "helm rendered nothing for {}",
            dir.display()
        );
    }
    if want != got {
        let (w, g) = (
            want.clone().unwrap_or_else(|e| format!("ERROR: {e}")),
            got.clone().unwrap_or_else(|e| format!("ERROR: {e}")),
        );
        let wl: Vec<&str> = w.lines().collect();
        let gl: Vec<&str> = g.lines().collect();
        let mut diff = String::new();
        for i in 0..wl.len().max(gl.len()) {
            let (a, b) = (wl.get(i).copied(), gl.get(i).copied());
            if a != b {
                diff.push_str(&format!(
                    "line {}:\n  helm: {:?}\n  ours: {:?}\n",
                    i + 1,
                    a,
                    b
                ));
                if diff.len() > 3000 {
                    break;
                }
            }
        }
        panic!("{} differs from helm template:\n{diff}", dir.display());
    }
}

#[test]
fn helm_create_chart_matches() {
    let bin = helm::oracle("helm");
    let tmp = tempfile::tempdir().unwrap();
    let st = Command::new(&bin)
        .args(["create", "mychart"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(st.status.success(), "helm create failed");
    let dir = tmp.path().join("mychart");
    compare("release-a", &dir, &[], &TemplateOptions::default());
    let opts = TemplateOptions {
        set: vec![
            "ingress.enabled=true,autoscaling.enabled=true,serviceAccount.create=false".into(),
        ],
        namespace: "prod".into(),
        ..TemplateOptions::default()
    };
    compare(
        "rel",
        &dir,
        &[
            "--set",
            "ingress.enabled=true,autoscaling.enabled=true,serviceAccount.create=false",
            "--namespace",
            "prod",
        ],
        &opts,
    );
}

#[test]
fn function_cases_match_helm() {
    batch_matches_helm(funcs::CASES);
}

#[test]
fn toml_errors_match_helm() {
    batch_matches_helm(funcs::TOML_ERRORS);
}

#[test]
fn derive_password_matches_helm() {
    batch_matches_helm(funcs::DERIVE_PASSWORD);
}

/// Render every case as a `define` of one chart, with helm and with ferroflux; each case's
/// output must be identical.
fn batch_matches_helm(cases: &[&str]) {
    batch_with_values_matches_helm(funcs::VALUES, cases);
}

/// [`batch_matches_helm`] with the chart's values.yaml text given.
fn batch_with_values_matches_helm(values: &str, cases: &[&str]) {
    let bin = helm::oracle("helm");
    let dir = tempfile::tempdir().unwrap();
    let mut files = vec![(
        "_helper.tpl".to_string(),
        "{{- define \"helper\" -}}helped {{ .Chart.Name }}{{- end -}}".to_string(),
    )];
    let mut out = String::new();
    for (i, case) in cases.iter().enumerate() {
        let name = format!("c{i:04}");
        files.push((
            format!("_{name}.tpl"),
            format!("{{{{ define \"{name}\" }}}}{case}{{{{ end }}}}"),
        ));
        out.push_str(&format!(
            "{name}: {{{{ include \"{name}\" . | b64enc | quote }}}}\n"
        ));
    }
    files.push(("out.yaml".to_string(), out));
    helm::write_chart(dir.path(), values, &files);
    std::fs::create_dir_all(dir.path().join("files")).unwrap();
    std::fs::write(dir.path().join("files/a.txt"), "line1\nline2\n").unwrap();
    std::fs::write(dir.path().join("files/b.conf"), "key=value").unwrap();
    // bytes that are not UTF-8 (a binary file, as keystores are)
    std::fs::create_dir_all(dir.path().join("bin")).unwrap();
    std::fs::write(
        dir.path().join("bin/x.bin"),
        b"\xff\xfe\x00\x01abc\x80\xc3\xa9\xe2\x82",
    )
    .unwrap();
    let want = match helm_cmd(&bin, "rel", dir.path(), &[]) {
        Ok(o) => helm::decode_cases(&o),
        Err(e) => panic!("helm failed on the batch: {e}"),
    };
    let got = match ours("rel", dir.path(), &TemplateOptions::default()) {
        Ok(o) => helm::decode_cases(&o),
        Err(e) => panic!("ferroflux failed on the batch: {e}"),
    };
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let name = format!("c{i:04}");
        let (w, g) = (want.get(&name), got.get(&name));
        if w != g {
            failures.push(format!("{name} {case:?}\n   want {w:?}\n   got  {g:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} function cases differ from helm:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    eprintln!("{} function cases identical to helm", cases.len());
}

/// genCA/genSignedCert/buildCustomCert/genSelfSignedCert: the same shape checks pass on
/// helm's certificates and on ours.
#[test]
fn certificates_have_helms_shape() {
    certs::run(&helm::oracle("helm"));
}

/// Sprig's certificate errors.
#[test]
fn certificate_errors_match_helm() {
    let cases = [
        "{{ buildCustomCert \"!!\" \"eA==\" }}",
        "{{ buildCustomCert \"eA==\" \"!!\" }}",
        "{{ buildCustomCert \"eA==\" \"eA==\" }}",
        "{{ $ca := genCA \"x\" 1 }}{{ buildCustomCert ($ca.Cert | b64enc) (\"nope\" | b64enc) }}",
        "{{ $ca := genCA \"x\" 1 }}{{ buildCustomCert ($ca.Cert | b64enc) (\"-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n\" | b64enc) }}",
        "{{ genCAWithKey \"x\" 1 \"garbage\" }}",
        "{{ $ca := genCA \"x\" 1 }}{{ genSignedCert \"a\" (list \"not-an-ip\") nil 1 $ca }}",
        "{{ $ca := genCA \"x\" 1 }}{{ genSignedCert \"a\" (list 5) nil 1 $ca }}",
        "{{ genSelfSignedCert \"a\" nil (list 5) 1 }}",
        "{{ genSignedCert \"a\" nil nil 1 (dict) }}",
    ];
    for text in cases {
        let d = tempfile::tempdir().unwrap();
        helm::write_chart(d.path(), "{}", &[("e.yaml".to_string(), text.to_string())]);
        compare("r", d.path(), &[], &TemplateOptions::default());
    }
}

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        let t = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &t);
        } else {
            std::fs::copy(&p, &t).unwrap();
        }
    }
}

/// The umbrella chart with the `exporter` subchart packaged as a .tgz by helm itself.
fn umbrella(tmp: &Path) -> std::path::PathBuf {
    let bin = helm::oracle("helm");
    let dir = tmp.join("umbrella");
    copy_dir(&fixtures().join("umbrella"), &dir);
    let st = Command::new(&bin)
        .args(["package"])
        .arg(fixtures().join("exporter"))
        .arg("-d")
        .arg(dir.join("charts"))
        .output()
        .unwrap();
    assert!(st.status.success(), "helm package failed: {st:?}");
    dir
}

#[test]
fn umbrella_chart_matches() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = umbrella(tmp.path());
    compare("demo", &dir, &[], &TemplateOptions::default());
    let extra = fixtures().join("extra-values.yaml");
    let extra_s = extra.to_string_lossy().into_owned();
    compare(
        "second",
        &dir,
        &[
            "-f",
            &extra_s,
            "--set",
            "sub2.replicas=3,global.env=dev,removeme=null,nested.deeper.list[1]=x",
            "--set-string",
            "port=9090",
            "--namespace",
            "ns1",
            "--include-crds",
        ],
        &TemplateOptions {
            values_files: vec![extra.clone()],
            set: vec![
                "sub2.replicas=3,global.env=dev,removeme=null,nested.deeper.list[1]=x".into(),
            ],
            set_string: vec!["port=9090".into()],
            namespace: "ns1".into(),
            include_crds: true,
            ..TemplateOptions::default()
        },
    );
    compare(
        "third",
        &dir,
        &[
            "--set",
            "tags.extra=true,sub.enabled=false,disabled.enabled=true",
            "--skip-tests",
            "--kube-version",
            "1.28.3",
            "--api-versions",
            "foo/v1",
        ],
        &TemplateOptions {
            set: vec!["tags.extra=true,sub.enabled=false,disabled.enabled=true".into()],
            skip_tests: true,
            kube_version: Some("1.28.3".into()),
            api_versions: vec!["foo/v1".into()],
            ..TemplateOptions::default()
        },
    );
}

/// `--show-only`: single templates, globs, subchart templates, hooks and tests, several
/// patterns, and a template that is not there.
#[test]
fn show_only_matches_helm() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = umbrella(tmp.path());
    let cases: &[&[&str]] = &[
        &["templates/configmap.yaml"],
        &["templates/multi.yaml"],
        &["templates/*.yaml"],
        &["charts/sub/templates/deploy.yaml", "templates/secret.yaml"],
        &["templates/hook.yaml"],
        &["templates/tests/test-connection.yaml"],
        &["charts/*/templates/*"],
        &["templates/nope.yaml"],
        &["templates/empty.yaml"],
        &["templates\\configmap.yaml"],
    ];
    for files in cases {
        let mut args = Vec::new();
        for f in *files {
            args.push("--show-only");
            args.push(*f);
        }
        args.push("--include-crds");
        compare(
            "shown",
            &dir,
            &args,
            &TemplateOptions {
                show_only: files.iter().map(|f| f.to_string()).collect(),
                include_crds: true,
                ..TemplateOptions::default()
            },
        );
    }
    compare(
        "shown",
        &dir,
        &["-s", "templates/multi.yaml", "-s", "charts/sub/templates/*"],
        &TemplateOptions {
            show_only: vec![
                "templates/multi.yaml".into(),
                "charts/sub/templates/*".into(),
            ],
            ..v3()
        },
    );
}

#[test]
fn release_names_are_checked_like_helm() {
    let dir = fixtures().join("legacy");
    let long = "a".repeat(54);
    for name in ["Bad_Name", "", long.as_str(), "a.b-c", "x-", "ok-1", "a..b"] {
        compare(name, &dir, &[], &TemplateOptions::default());
    }
}

#[test]
fn packaged_and_legacy_charts_match() {
    let bin = helm::oracle("helm");
    let tmp = tempfile::tempdir().unwrap();
    let dir = umbrella(tmp.path());
    let st = Command::new(&bin)
        .args(["package"])
        .arg(&dir)
        .arg("-d")
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(st.status.success(), "helm package failed");
    let tgz = tmp.path().join("umbrella-1.2.3.tgz");
    compare("packed", &tgz, &[], &TemplateOptions::default());
    compare(
        "old",
        &fixtures().join("legacy"),
        &[],
        &TemplateOptions::default(),
    );
}

#[test]
fn set_json_file_literal_match() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = umbrella(tmp.path());
    let file = tmp.path().join("msg.txt");
    std::fs::write(&file, "from a file, with commas\nand lines\n").unwrap();
    let set_file = format!("message={}", file.display());
    compare(
        "flags",
        &dir,
        &[
            "--set-json",
            "{\"nested\":{\"keep\":[1,2]},\"port\":9000}",
            "--set-json",
            "sub.replicas=4",
            "--set-json",
            "nested.extra={\"x\":[1,{\"y\":null}]}, port=9001 ,sub2.replicas=2,removeme=",
            "--set-file",
            &set_file,
            "--set-literal",
            "removeme=a,b=c",
        ],
        &TemplateOptions {
            set_json: vec![
                "{\"nested\":{\"keep\":[1,2]},\"port\":9000}".into(),
                "sub.replicas=4".into(),
                "nested.extra={\"x\":[1,{\"y\":null}]}, port=9001 ,sub2.replicas=2,removeme="
                    .into(),
            ],
            set_file: vec![set_file.clone()],
            set_literal: vec!["removeme=a,b=c".into()],
            ..TemplateOptions::default()
        },
    );
}

#[test]
fn umbrella_with_optional_subcharts_matches() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = umbrella(tmp.path());
    compare(
        "fourth",
        &dir,
        &[
            "--set",
            "tags.extra=true,disabled.enabled=true",
            "--include-crds",
        ],
        &TemplateOptions {
            set: vec!["tags.extra=true,disabled.enabled=true".into()],
            include_crds: true,
            ..TemplateOptions::default()
        },
    );
}

/// Charts that fail: (Chart.yaml extra lines, template text). Helm v4's error text must match.
const ERROR_CASES: &[(&str, &str)] = &[
    ("", "{{ required \"need foo\" .Values.foo }}"),
    ("", "{{ fail \"boom\" }}"),
    ("", "{{ include \"nope\" . }}"),
    ("", "a: {{ .Values.a.b.c }}"),
    ("", "{{ .Values.x"),
    (
        "",
        "{{ define \"r\" }}{{ include \"r\" . }}{{ end }}{{ include \"r\" . }}",
    ),
    ("", "{{ tpl \"{{ .x.y.z }}\" . }}"),
    ("", "{{ tpl \"{{ bad\" . }}"),
    ("", "{{ upper 3 }}"),
    ("kubeVersion: \"<1.20.0\"\n", "a: b"),
    (
        "",
        "{{ define \"x\" }}{{ template \"x\" . }}{{ end }}{{ template \"x\" . }}",
    ),
    (
        "",
        "{{ define \"w\" }}{{ required \"inner need\" .nothing }}{{ end }}x: {{ include \"w\" . }}",
    ),
    ("", "{{ first 3 }}"),
    ("", "{{ index (list 1 2) 5 }}"),
    (
        "",
        "{{ define \"d\" }}{{ .a.b }}{{ end }}{{ include \"d\" (dict \"a\" 1) }}",
    ),
    ("", "{{ toYaml }}"),
    ("", "{{ $x := 1 }}{{ $x.y }}"),
    ("", "- a\n- b"),
    ("", "just a string"),
    ("type: library\n", "a: b"),
    ("", "{{ derivePassword -1 \"long\" \"a\" \"b\" \"c\" }}"),
    ("", "{{ derivePassword 1.5 \"long\" \"a\" \"b\" \"c\" }}"),
    (
        "",
        "{{ derivePassword (add 1 1) \"long\" \"a\" \"b\" \"c\" }}",
    ),
];

#[test]
fn error_cases_match_helm() {
    let bin = helm::oracle("helm");
    type Outcome = (usize, Result<String, String>, Result<String, String>);
    let results: Vec<Outcome> = std::thread::scope(|s| {
        let handles: Vec<_> = ERROR_CASES
            .chunks(ERROR_CASES.len().div_ceil(4))
            .enumerate()
            .map(|(ci, chunk)| {
                let bin = bin.clone();
                s.spawn(move || {
                    let mut res = Vec::new();
                    for (k, (chart_extra, text)) in chunk.iter().enumerate() {
                        let i = ci * ERROR_CASES.len().div_ceil(4) + k;
                        let dir = tempfile::tempdir().unwrap();
                        helm::write_chart(
                            dir.path(),
                            "{}",
                            &[("e.yaml".to_string(), text.to_string())],
                        );
                        if !chart_extra.is_empty() {
                            let p = dir.path().join("Chart.yaml");
                            let mut c = std::fs::read_to_string(&p).unwrap();
                            c.push_str(chart_extra);
                            std::fs::write(&p, c).unwrap();
                        }
                        let want = helm_cmd(&bin, "r", dir.path(), &[]);
                        let got = ours("r", dir.path(), &TemplateOptions::default());
                        res.push((i, want, got));
                    }
                    res
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let mut failures = Vec::new();
    for (i, want, got) in &results {
        assert!(
            want.is_err(),
            "case {i} was expected to fail in helm: {want:?}"
        );
        if want != got {
            failures.push(format!(
                "e{i} {:?}\n   helm: {want:?}\n   ours: {got:?}",
                ERROR_CASES[*i].1
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} error cases differ from helm:\n{}",
        failures.len(),
        results.len(),
        failures.join("\n")
    );
}

/// `--set` flags per corpus chart: the README's flags for a deterministic render (generated
/// secrets, keys and certificates pinned, required values given), then flags that switch on
/// optional templates (monitoring, ingress, autoscaling, network policies, disruption budgets).
const CORPUS_FLAGS: &[(&str, &str, &str)] = &[
    (
        "argo-events",
        "",
        "controller.metrics.enabled=true,controller.metrics.serviceMonitor.enabled=true,controller.pdb.enabled=true",
    ),
    (
        "aws-load-balancer-controller",
        "clusterName=test-cluster,enableCertManager=true",
        "autoscaling.enabled=true,serviceMonitor.enabled=true",
    ),
    (
        "cluster-autoscaler",
        "",
        "prometheusRule.enabled=true,serviceMonitor.enabled=true,autoDiscovery.clusterName=test",
    ),
    (
        "cnpg-cluster",
        "",
        "cluster.monitoring.enabled=true,cluster.monitoring.podMonitor.enabled=true",
    ),
    (
        "coredns",
        "",
        "prometheus.service.enabled=true,prometheus.monitor.enabled=true,hpa.enabled=true",
    ),
    (
        "harbor",
        "core.secret=0123456789abcdef,core.xsrfKey=0123456789abcdef0123456789abcdef,core.secretName=harbor-token,jobservice.secret=0123456789abcdef,registry.secret=0123456789abcdef,registry.credentials.htpasswdString=harbor_registry_user:pinned,expose.tls.certSource=none",
        "metrics.enabled=true,metrics.serviceMonitor.enabled=true",
    ),
    (
        "jenkins",
        "controller.admin.password=admin",
        "controller.ingress.enabled=true,controller.prometheus.enabled=true,networkPolicy.enabled=true,controller.podDisruptionBudget.enabled=true",
    ),
    (
        "longhorn",
        "",
        "ingress.enabled=true,metrics.serviceMonitor.enabled=true",
    ),
    (
        "metallb",
        "",
        "prometheus.serviceMonitor.enabled=true,prometheus.prometheusRule.enabled=true,prometheus.serviceAccount=prometheus-k8s,prometheus.namespace=monitoring",
    ),
    (
        "minio",
        "rootUser=minioadmin,rootPassword=minioadmin123",
        "ingress.enabled=true,networkPolicy.enabled=true,podDisruptionBudget.enabled=true,metrics.serviceMonitor.enabled=true",
    ),
    (
        "nats",
        "",
        "podDisruptionBudget.enabled=true,config.websocket.enabled=true,config.websocket.ingress.enabled=true,config.websocket.ingress.hosts[0]=nats.example.com",
    ),
    (
        "nginx",
        "tls.autoGenerated=false",
        "ingress.enabled=true,metrics.enabled=true,metrics.serviceMonitor.enabled=true,metrics.prometheusRule.enabled=true,networkPolicy.enabled=true,autoscaling.hpa.enabled=true",
    ),
    (
        "opentelemetry-collector",
        "mode=deployment,image.repository=otel/opentelemetry-collector-k8s",
        "ingress.enabled=true,autoscaling.enabled=true,serviceMonitor.enabled=true,networkPolicy.enabled=true",
    ),
    (
        "prometheus-blackbox-exporter",
        "",
        "ingress.enabled=true,serviceMonitor.enabled=true,prometheusRule.enabled=true,networkPolicy.enabled=true",
    ),
    (
        "tempo",
        "",
        "serviceMonitor.enabled=true,networkPolicy.enabled=true,tempoQuery.ingress.enabled=true",
    ),
    (
        "vault",
        "",
        "server.ingress.enabled=true,serverTelemetry.serviceMonitor.enabled=true,server.networkPolicy.enabled=true,injector.metrics.enabled=true",
    ),
    (
        "vertical-pod-autoscaler",
        "",
        "admissionController.certManager.enabled=true,updater.enabled=false",
    ),
];

/// The corpus's real public charts (`charts/` of `FERROFLUX_CORPUS`).
fn corpus_dir() -> std::path::PathBuf {
    ferroflux_testsupport::corpus().join("charts")
}

/// Every chart of the shared corpus renders exactly as `helm template rel DIR --namespace ns
/// --skip-tests` does, with the README's flags and with optional templates switched on, with
/// helm v4 and helm3. Every chart found must have an entry in [`CORPUS_FLAGS`].
#[test]
fn corpus_charts_match() {
    let corpus = corpus_dir();
    let mut charts: Vec<String> = std::fs::read_dir(&corpus)
        .unwrap_or_else(|e| panic!("corpus {} unreadable: {e}", corpus.display()))
        .flatten()
        .filter(|e| e.path().join("Chart.yaml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    charts.sort();
    assert!(
        !charts.is_empty(),
        "no charts found in {}",
        corpus.display()
    );
    for c in &charts {
        assert!(
            CORPUS_FLAGS.iter().any(|(n, _, _)| n == c),
            "corpus chart {c} has no entry in CORPUS_FLAGS"
        );
    }
    // One job per chart and flag set and helm version, on a few threads.
    let mut jobs = Vec::new();
    for (name, base, optional) in CORPUS_FLAGS {
        assert!(
            charts.iter().any(|c| c == name),
            "corpus chart {name} missing"
        );
        for extra in ["", *optional] {
            for v3 in [false, true] {
                jobs.push((*name, *base, extra, v3));
            }
        }
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some((name, base, extra, v3)) = jobs.get(i) else {
                        break;
                    };
                    let dir = corpus.join(name);
                    let mut args = vec!["--namespace", "ns", "--skip-tests"];
                    let mut set = Vec::new();
                    for f in [*base, *extra] {
                        if !f.is_empty() {
                            args.extend(["--set", f]);
                            set.push(f.to_string());
                        }
                    }
                    let opts = TemplateOptions {
                        set,
                        namespace: "ns".into(),
                        skip_tests: true,
                        helm_version: if *v3 {
                            HelmVersion::V3
                        } else {
                            HelmVersion::V4
                        },
                        ..TemplateOptions::default()
                    };
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        compare("rel", &dir, &args, &opts)
                    }));
                    if let Err(e) = r {
                        let msg = e
                            .downcast_ref::<String>()
                            .cloned()
                            .unwrap_or_else(|| "panic".into());
                        let head: String = msg.chars().take(1500).collect();
                        failures
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(format!(
                                "{name} (helm{}, {}): {head}",
                                if *v3 { "3" } else { " v4" },
                                if extra.is_empty() {
                                    "defaults"
                                } else {
                                    "optional templates on"
                                }
                            ));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap_or_else(|p| p.into_inner());
    assert!(
        failures.is_empty(),
        "{} of {} corpus renders differ from helm:\n{}",
        failures.len(),
        jobs.len(),
        failures.join("\n\n")
    );
    eprintln!(
        "{} corpus charts x {} renders identical to helm",
        charts.len(),
        jobs.len()
    );
}

const SCHEMA: &str = r##"{
  "$schema": "http://json-schema.org/draft-07/schema#",
  "type": "object",
  "required": ["image"],
  "properties": {
    "image": {"type": "string"},
    "replicas": {"type": "integer", "minimum": 1, "maximum": 10},
    "name": {"type": "string", "minLength": 3, "maxLength": 5, "pattern": "^[a-z]+$"},
    "mode": {"enum": ["a", "b"]},
    "fixed": {"const": 3},
    "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2, "uniqueItems": true},
    "obj": {"type": "object", "additionalProperties": false, "properties": {"x": {"type": "number"}}},
    "multi": {"type": ["string", "null"]},
    "any": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
    "one": {"oneOf": [{"type": "string"}, {"minLength": 1}]},
    "ref": {"$ref": "#/definitions/port"},
    "sub": {"type": "object"}
  },
  "definitions": {"port": {"type": "integer", "exclusiveMaximum": 65536}}
}"##;

#[test]
fn schema_validation_matches_helm() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sc");
    helm::write_chart(
        &dir,
        "image: nginx\nreplicas: 2\n",
        &[("x.yaml".into(), "a: {{ .Values.image }}".into())],
    );
    std::fs::write(dir.join("values.schema.json"), SCHEMA).unwrap();
    // single failures: helm's order is deterministic only for one error
    let sets = [
        "replicas=0",
        "replicas=20",
        "replicas=2.5",
        "image=null",
        "name=AB",
        "name=abcdefg",
        "mode=c",
        "fixed=4",
        "tags={a}",
        "tags={a\\,a}",
        "obj.y=1",
        "obj.x=s",
        "multi=3",
        "any=true",
        "one=xx",
        "ref=70000",
        "ref=1",
        "sub=3",
    ];
    for set in sets {
        compare(
            "s",
            &dir,
            &["--set", set],
            &TemplateOptions {
                set: vec![set.into()],
                ..TemplateOptions::default()
            },
        );
    }
    compare(
        "s",
        &dir,
        &["--set", "replicas=0", "--skip-schema-validation"],
        &TemplateOptions {
            set: vec!["replicas=0".into()],
            skip_schema_validation: true,
            ..TemplateOptions::default()
        },
    );
    // several failures: compare the set of lines (helm orders properties by Go map iteration)
    let set = "replicas=20,name=AB,mode=c,obj.y=1,obj.x=s";
    let bin = helm::oracle("helm");
    let want = helm_cmd(&bin, "s", &dir, &["--set", set]).unwrap_err();
    let got = ours(
        "s",
        &dir,
        &TemplateOptions {
            set: vec![set.into()],
            ..TemplateOptions::default()
        },
    )
    .unwrap_err();
    let norm = |s: &str| {
        let mut v: Vec<String> = s.lines().map(str::to_string).collect();
        v.sort();
        v
    };
    assert_eq!(norm(&want), norm(&got), "helm:\n{want}\nours:\n{got}");
}

/// Every schema keyword case of `schema::CASES`, against helm v4 and helm3.
#[test]
fn schema_keywords_match_helm() {
    let bins = [
        (helm::oracle("helm"), HelmVersion::V4),
        (helm::oracle("helm3"), HelmVersion::V3),
    ];
    let n = schema::CASES.len();
    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = schema::CASES
            .chunks(n.div_ceil(4))
            .enumerate()
            .map(|(ci, chunk)| {
                let bins = &bins;
                s.spawn(move || {
                    let mut failures = Vec::new();
                    for (k, (draft, body, values)) in chunk.iter().enumerate() {
                        let i = ci * n.div_ceil(4) + k;
                        let dir = tempfile::tempdir().unwrap();
                        schema::chart(dir.path(), draft, body, values);
                        for (bin, version) in bins {
                            let want = helm_cmd(bin, "r", dir.path(), &[]);
                            let opts = TemplateOptions {
                                helm_version: *version,
                                ..TemplateOptions::default()
                            };
                            let got = ours("r", dir.path(), &opts);
                            if !schema::same(&want, &got) {
                                failures.push(format!(
                                    "s{i} ({version:?}) {draft}{body} | {values:?}\n   helm: {want:?}\n   ours: {got:?}"
                                ));
                            }
                        }
                    }
                    failures
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} of {} schema cases differ from helm:\n{}",
        failures.len(),
        n * 2,
        failures.join("\n")
    );
}

/// Broken YAML in values files, Chart.yaml, template output and `fromYaml`: go-yaml's
/// messages as helm v4 prints them.
#[test]
fn yaml_errors_match_helm() {
    let bins = [helm::oracle("helm"), helm::oracle("helm3")];
    // every place with helm v4; values files (read differently by helm3) with helm3 too
    let kinds = [
        ("values", 0),
        ("valfile", 0),
        ("chart", 0),
        ("tpl", 0),
        ("fromyaml", 0),
        ("values", 1),
        ("valfile", 1),
    ];
    let jobs: Vec<(&str, usize, usize)> = kinds
        .iter()
        .flat_map(|(k, b)| (0..yamlerr::DOCS.len()).map(move |i| (*k, *b, i)))
        .collect();
    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .chunks(jobs.len().div_ceil(4))
            .map(|chunk| {
                let bins = &bins;
                s.spawn(move || {
                    let mut failures = Vec::new();
                    for (kind, b, i) in chunk {
                        let doc = yamlerr::DOCS[*i];
                        let dir = tempfile::tempdir().unwrap();
                        helm::write_chart(dir.path(), "{}", &[("a.yaml".into(), "a: b".into())]);
                        let args = yamlerr::place(dir.path(), kind, doc);
                        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
                        let want = helm_cmd(&bins[*b], "r", dir.path(), &argv);
                        let opts = TemplateOptions {
                            values_files: args.get(1).map(Into::into).into_iter().collect(),
                            helm_version: if *b == 1 {
                                HelmVersion::V3
                            } else {
                                HelmVersion::V4
                            },
                            ..TemplateOptions::default()
                        };
                        let got = ours("r", dir.path(), &opts);
                        let strip = |r: Result<String, String>| {
                            r.map_err(|e| e.replace(&dir.path().display().to_string(), "DIR"))
                        };
                        let (want, got) = (strip(want), strip(got));
                        if want != got {
                            failures.push(format!(
                                "{kind} (helm{}) {doc:?}\n   helm: {want:?}\n   ours: {got:?}",
                                ["", "3"][*b]
                            ));
                        }
                    }
                    failures
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} of {} YAML cases differ from helm:\n{}",
        failures.len(),
        jobs.len(),
        failures.join("\n")
    );
}

/// A chart in the style of popular charts built on a `common` library (tplvalues rendering,
/// label merging, image helpers, capabilities checks, checksum annotations).
#[test]
fn library_style_chart_matches() {
    let dir = fixtures().join("webapp");
    compare("web", &dir, &[], &TemplateOptions::default());
    let sets = "global.imageRegistry=registry.example.com,image.digest=sha256:abc,autoscaling.enabled=false,ingress.tls=false,persistence.enabled=false,fullnameOverride=custom";
    compare(
        "web",
        &dir,
        &["--set", sets, "--kube-version", "1.22.0"],
        &TemplateOptions {
            set: vec![sets.into()],
            kube_version: Some("1.22.0".into()),
            ..TemplateOptions::default()
        },
    );
    compare(
        "webapp-prod",
        &dir,
        &["--kube-version", "1.26.1"],
        &TemplateOptions {
            kube_version: Some("1.26.1".into()),
            ..TemplateOptions::default()
        },
    );
}

fn v3() -> TemplateOptions {
    TemplateOptions {
        helm_version: HelmVersion::V3,
        ..TemplateOptions::default()
    }
}

/// Where Helm v3 differs from v4 (default kube version, `.Chart` struct, raw Go errors,
/// HelmVersion), ferroflux's V3 mode matches `helm3`.
#[test]
fn helm3_differences_match() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = umbrella(tmp.path());
    compare("demo", &dir, &[], &v3());
    compare("web", &fixtures().join("webapp"), &[], &v3());
    let cases = [
        "kube: {{ .Capabilities.KubeVersion }} {{ .Capabilities.HelmVersion }} {{ .Chart.Name }}",
        "a: {{ .Values.a.b.c }}",
        "{{ define \"d\" }}{{ .a.b }}{{ end }}{{ include \"d\" (dict \"a\" 1) }}",
        "{{ required \"need foo\" .Values.foo }}",
        "{{ .Chart.IsRoot }}",
        "x: {{ .Chart.nope }}",
        "just a string",
    ];
    for text in cases {
        let d = tempfile::tempdir().unwrap();
        helm::write_chart(d.path(), "{}", &[("e.yaml".to_string(), text.to_string())]);
        compare("r", d.path(), &[], &v3());
    }
}

/// Chart loading failures read like helm's.
#[test]
fn loader_errors_match_helm() {
    let charts = [
        "apiVersion: v2\nversion: 1.0.0\n",
        "apiVersion: v2\nname: d\n",
        "apiVersion: v2\nname: e\nversion: notsemver\n",
        "apiVersion: v2\nname: e\nversion: 1.0.0\ntype: weird\n",
        "apiVersion: v2\nname: \"..\"\nversion: 1.0.0\n",
    ];
    for chart in charts {
        let d = tempfile::tempdir().unwrap();
        helm::write_chart(
            d.path(),
            "{}",
            &[("a.yaml".to_string(), "a: b".to_string())],
        );
        std::fs::write(d.path().join("Chart.yaml"), chart).unwrap();
        compare("r", d.path(), &[], &TemplateOptions::default());
    }
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("templates")).unwrap();
    compare("r", d.path(), &[], &TemplateOptions::default());
}
