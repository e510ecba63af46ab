//! The real-world corpus: every overlay in ../shared/corpus/kustomize/index.tsv built by us
//! and by `kubectl kustomize`, compared after parsing. Overlays that do not match yet are
//! listed in `EXCEPTIONS` with the reason; the test fails for any other mismatch and for
//! any listed overlay that now matches, so the list stays honest.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ferroflux_kustomize::yaml::parse_documents;
use ferroflux_kustomize::{BuildOptions, build_dir};

/// Overlays known to differ from kubectl, with the reason.
const EXCEPTIONS: &[(&str, &str)] = &[
    (
        "giantswarm+gitops-template/bases/app_sets/hello-web-app",
        "buildMetadata originAnnotations (origin tracking) not implemented yet",
    ),
    (
        "giantswarm+gitops-template/bases/apps/hello-world",
        "buildMetadata originAnnotations (origin tracking) not implemented yet",
    ),
    (
        "giantswarm+gitops-template/bases/apps/ingress-nginx",
        "buildMetadata originAnnotations (origin tracking) not implemented yet",
    ),
    (
        "giantswarm+gitops-template/bases/apps/simple-db",
        "buildMetadata originAnnotations (origin tracking) not implemented yet",
    ),
    (
        "giantswarm+gitops-template/bases/cluster_templates/hello_app_cluster",
        "buildMetadata originAnnotations (origin tracking) not implemented yet",
    ),
    (
        "giantswarm+gitops-template/bases/cluster_templates/hello_app_cluster/app_sets/hello-web-app",
        "buildMetadata originAnnotations (origin tracking) not implemented yet",
    ),
    (
        "giantswarm+gitops-template/bases/cluster_templates/hello_app_cluster/apps",
        "buildMetadata originAnnotations (origin tracking) not implemented yet",
    ),
    (
        "giantswarm+gitops-template/bases/cluster_templates/hello_app_cluster/apps/ingress-nginx-from-template",
        "buildMetadata originAnnotations (origin tracking) not implemented yet",
    ),
    (
        "giantswarm+gitops-template/bases/cluster_templates/hello_app_cluster/cluster",
        "buildMetadata originAnnotations (origin tracking) not implemented yet",
    ),
    (
        "giantswarm+gitops-template/bases/environments/regions/eu_central",
        "buildMetadata originAnnotations (origin tracking) not implemented yet",
    ),
    (
        "giantswarm+gitops-template/bases/environments/regions/us_west",
        "buildMetadata originAnnotations (origin tracking) not implemented yet",
    ),
    (
        "giantswarm+gitops-template/bases/environments/stages/dev/hello_app_cluster",
        "buildMetadata originAnnotations (origin tracking) not implemented yet",
    ),
    (
        "giantswarm+gitops-template/bases/environments/stages/dev/hello_app_cluster/automatic_updates",
        "buildMetadata originAnnotations (origin tracking) not implemented yet",
    ),
    (
        "giantswarm+gitops-template/bases/environments/stages/prod/hello_app_cluster",
        "buildMetadata originAnnotations (origin tracking) not implemented yet",
    ),
    (
        "giantswarm+gitops-template/bases/environments/stages/staging/hello_app_cluster",
        "buildMetadata originAnnotations (origin tracking) not implemented yet",
    ),
    (
        "giantswarm+gitops-template/bases/environments/stages/staging/hello_app_cluster/automatic_updates",
        "buildMetadata originAnnotations (origin tracking) not implemented yet",
    ),
    (
        "giantswarm+gitops-template/management-clusters/MC_NAME/organizations/ORG_NAME/workload-clusters",
        "buildMetadata originAnnotations (origin tracking) not implemented yet",
    ),
    (
        "giantswarm+gitops-template/management-clusters/MC_NAME/organizations/ORG_NAME/workload-clusters/HELLO_APP_DEV_CLUSTER_1/mapi/cluster",
        "buildMetadata originAnnotations (origin tracking) not implemented yet",
    ),
    (
        "giantswarm+gitops-template/management-clusters/MC_NAME/organizations/ORG_NAME/workload-clusters/HELLO_APP_PROD_CLUSTER_EU_CENTRAL/mapi/cluster",
        "buildMetadata originAnnotations (origin tracking) not implemented yet",
    ),
    (
        "giantswarm+gitops-template/management-clusters/MC_NAME/organizations/ORG_NAME/workload-clusters/HELLO_APP_PROD_CLUSTER_US_WEST/mapi/cluster",
        "buildMetadata originAnnotations (origin tracking) not implemented yet",
    ),
    (
        "giantswarm+gitops-template/management-clusters/MC_NAME/organizations/ORG_NAME/workload-clusters/HELLO_APP_STAGING_CLUSTER_1/mapi/cluster",
        "buildMetadata originAnnotations (origin tracking) not implemented yet",
    ),
    (
        "giantswarm+gitops-template/management-clusters/MC_NAME/organizations/ORG_NAME/workload-clusters/WC_NAME/mapi/cluster",
        "buildMetadata originAnnotations (origin tracking) not implemented yet",
    ),
    (
        "giantswarm+gitops-template/management-clusters/MC_NAME/organizations/ORG_NAME/workload-clusters/WC_NAME_OUT_OF_BAND_FLUX_APP/mapi/app_sets/hello-web-app-1",
        "buildMetadata originAnnotations (origin tracking) not implemented yet",
    ),
    (
        "giantswarm+gitops-template/management-clusters/MC_NAME/organizations/ORG_NAME/workload-clusters/WC_NAME_OUT_OF_BAND_FLUX_APP/mapi/apps",
        "buildMetadata originAnnotations (origin tracking) not implemented yet",
    ),
    (
        "giantswarm+gitops-template/management-clusters/MC_NAME/organizations/ORG_NAME/workload-clusters/WC_NAME_OUT_OF_BAND_FLUX_APP/mapi/apps/ingress-nginx-from-template",
        "buildMetadata originAnnotations (origin tracking) not implemented yet",
    ),
    (
        "giantswarm+gitops-template/management-clusters/MC_NAME/organizations/ORG_NAME/workload-clusters/WC_NAME_OUT_OF_BAND_FLUX_APP/mapi/automatic-updates",
        "buildMetadata originAnnotations (origin tracking) not implemented yet",
    ),
    (
        "giantswarm+gitops-template/management-clusters/MC_NAME/organizations/ORG_NAME/workload-clusters/WC_NAME_OUT_OF_BAND_FLUX_APP/mapi/cluster",
        "buildMetadata originAnnotations (origin tracking) not implemented yet",
    ),
    (
        "giantswarm+gitops-template/management-clusters/MC_NAME/organizations/ORG_NAME/workload-clusters/WC_NAME_OUT_OF_BAND_NO_FLUX_APP/mapi/app_sets/hello-web-app-1",
        "buildMetadata originAnnotations (origin tracking) not implemented yet",
    ),
    (
        "giantswarm+gitops-template/management-clusters/MC_NAME/organizations/ORG_NAME/workload-clusters/WC_NAME_OUT_OF_BAND_NO_FLUX_APP/mapi/apps",
        "buildMetadata originAnnotations (origin tracking) not implemented yet",
    ),
    (
        "giantswarm+gitops-template/management-clusters/MC_NAME/organizations/ORG_NAME/workload-clusters/WC_NAME_OUT_OF_BAND_NO_FLUX_APP/mapi/apps/ingress-nginx-from-template",
        "buildMetadata originAnnotations (origin tracking) not implemented yet",
    ),
    (
        "giantswarm+gitops-template/management-clusters/MC_NAME/organizations/ORG_NAME/workload-clusters/WC_NAME_OUT_OF_BAND_NO_FLUX_APP/mapi/automatic-updates",
        "buildMetadata originAnnotations (origin tracking) not implemented yet",
    ),
    (
        "giantswarm+gitops-template/management-clusters/MC_NAME/organizations/ORG_NAME/workload-clusters/WC_NAME_OUT_OF_BAND_NO_FLUX_APP/mapi/cluster",
        "buildMetadata originAnnotations (origin tracking) not implemented yet",
    ),
    (
        "giantswarm+gitops-template/management-clusters/MC_NAME/secrets",
        "buildMetadata originAnnotations (origin tracking) not implemented yet",
    ),
    (
        "kubernetes-sigs+kustomize/md-examples/valueAdd/s1/demo1/projects/dog-222",
        "ValueAddTransformer plugin not supported yet",
    ),
    (
        "kubernetes-sigs+kustomize/md-examples/valueAdd/s1/demo1/all",
        "ValueAddTransformer plugin not supported yet",
    ),
    (
        "kubernetes-sigs+kustomize/md-examples/valueAdd/s1/demo1/projects/cat-111",
        "ValueAddTransformer plugin not supported yet",
    ),
    (
        "kubernetes-sigs+kustomize/md-examples/valueAdd/s1/demo1/projects/fox-333",
        "ValueAddTransformer plugin not supported yet",
    ),
];

fn corpus_root() -> PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpus/kustomize"
    ))
    .to_path_buf()
}

#[derive(Debug)]
enum Outcome {
    Same,
    Differs(String),
}

fn compare(dir: &Path) -> Outcome {
    let want = crate::oracle::kustomize(dir);
    let got = build_dir(dir, &BuildOptions::default());
    match (want, got) {
        (Err(e), _) => Outcome::Differs(format!(
            "kubectl failed: {}",
            e.lines().next().unwrap_or("")
        )),
        (Ok(_), Err(e)) => Outcome::Differs(format!("we failed: {e}")),
        (Ok(w), Ok(g)) => {
            if w == g {
                return Outcome::Same;
            }
            let (pw, pg) = (parse_documents(&w), parse_documents(&g));
            match (pw, pg) {
                (Ok(a), Ok(b)) if a == b => Outcome::Same,
                (Ok(a), Ok(b)) => {
                    let n = a.iter().zip(b.iter()).take_while(|(x, y)| x == y).count();
                    Outcome::Differs(format!(
                        "{} vs {} documents, first difference at document {n}",
                        a.len(),
                        b.len()
                    ))
                }
                (Err(e), _) | (_, Err(e)) => Outcome::Differs(format!("unparsable output: {e}")),
            }
        }
    }
}

#[test]
fn corpus_matches_kubectl() {
    crate::oracle::kubectl();
    let root = corpus_root();
    let index = std::fs::read_to_string(root.join("index.tsv")).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the corpus must sit beside the checkout)",
            root.display()
        )
    });
    let dirs: Vec<String> = index
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next())
        .map(String::from)
        .collect();
    assert!(dirs.len() > 900, "corpus index has {} overlays", dirs.len());
    let results: Arc<Mutex<BTreeMap<String, Outcome>>> = Arc::default();
    let queue = Arc::new(Mutex::new(dirs.clone()));
    let mut handles = Vec::new();
    for _ in 0..2 {
        let (q, res, root) = (queue.clone(), results.clone(), root.clone());
        handles.push(std::thread::spawn(move || {
            loop {
                let Some(d) = q.lock().unwrap().pop() else {
                    break;
                };
                let o = compare(&root.join(&d));
                res.lock().unwrap().insert(d, o);
            }
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    let results = results.lock().unwrap();
    let exceptions: BTreeMap<&str, &str> = EXCEPTIONS.iter().copied().collect();
    let mut unexpected = Vec::new();
    let mut now_passing = Vec::new();
    let mut same = 0;
    for (d, o) in results.iter() {
        match (o, exceptions.get(d.as_str())) {
            (Outcome::Same, None) => same += 1,
            (Outcome::Same, Some(_)) => {
                same += 1;
                now_passing.push(d.clone());
            }
            (Outcome::Differs(why), None) => unexpected.push(format!("{d}: {why}")),
            (Outcome::Differs(_), Some(_)) => {}
        }
    }
    for e in exceptions.keys() {
        assert!(
            results.contains_key(*e),
            "exception {e} is not in the corpus index"
        );
    }
    eprintln!(
        "corpus: {same} of {} overlays identical to kubectl kustomize",
        results.len()
    );
    assert!(
        unexpected.is_empty() && now_passing.is_empty(),
        "unexpected differences ({}):\n{}\n\nlisted as exceptions but now identical ({}):\n{}",
        unexpected.len(),
        unexpected.join("\n"),
        now_passing.len(),
        now_passing.join("\n")
    );
}
