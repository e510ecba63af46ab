//! Oracle tests: charts rendered by `ferroflux_helm::template` and by the real `helm template`
//! (v4) must produce identical output (or identical errors).

mod funcs;
mod helm;

use std::path::Path;
use std::process::Command;

use ferroflux_helm::{TemplateOptions, template};

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
        let e = e.strip_prefix("Error: ").unwrap_or(&e).to_string();
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
    template(name, dir, opts).map_err(|e| e.to_string())
}

fn compare(name: &str, dir: &Path, args: &[&str], opts: &TemplateOptions) {
    let bin = helm::oracle("helm");
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
    let bin = helm::oracle("helm");
    let dir = tempfile::tempdir().unwrap();
    let mut files = vec![(
        "_helper.tpl".to_string(),
        "{{- define \"helper\" -}}helped {{ .Chart.Name }}{{- end -}}".to_string(),
    )];
    let mut out = String::new();
    for (i, case) in funcs::CASES.iter().enumerate() {
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
    helm::write_chart(dir.path(), funcs::VALUES, &files);
    std::fs::create_dir_all(dir.path().join("files")).unwrap();
    std::fs::write(dir.path().join("files/a.txt"), "line1\nline2\n").unwrap();
    std::fs::write(dir.path().join("files/b.conf"), "key=value").unwrap();
    let want = match helm_cmd(&bin, "rel", dir.path(), &[]) {
        Ok(o) => helm::decode_cases(&o),
        Err(e) => panic!("helm failed on the batch: {e}"),
    };
    let got = match ours("rel", dir.path(), &TemplateOptions::default()) {
        Ok(o) => helm::decode_cases(&o),
        Err(e) => panic!("ferroflux failed on the batch: {e}"),
    };
    let mut failures = Vec::new();
    for (i, case) in funcs::CASES.iter().enumerate() {
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
        funcs::CASES.len(),
        failures.join("\n")
    );
    eprintln!("{} function cases identical to helm", funcs::CASES.len());
}
