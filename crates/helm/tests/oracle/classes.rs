//! Classes of differences found on real public charts (the corpus), each reduced to small
//! cases rendered by helm and by ferroflux.

use super::{batch_with_values_matches_helm, compare};
use ferroflux_helm::TemplateOptions;

/// `tpl` runs its text in a copy of the template set, under the name "gotpl", and executes the
/// text just parsed: an empty (or define-only) text renders nothing, even inside another
/// `tpl` whose own text is the set's "gotpl"; definitions made inside `tpl` stay there.
const TPL_CASES: &[&str] = &[
    "[{{ tpl .Values.empty . }}]",
    "[{{ tpl \"a{{ tpl .Values.empty . }}b\" . }}]",
    "[{{ tpl \"a{{ tpl \\\"{{/* only a comment */}}\\\" . }}b\" . }}]",
    "[{{ tpl \"  \" . }}]",
    "[{{ tpl \"{{ define \\\"tdef\\\" }}D{{ end }}\" . }}]",
    "[{{ tpl \"{{ define \\\"tdef2\\\" }}E{{ end }}{{ include \\\"tdef2\\\" . }}\" . }}]",
    "[{{ tpl \"{{ define \\\"helper\\\" }}redefined{{ end }}{{ include \\\"helper\\\" . }}\" . }}|{{ include \"helper\" . }}]",
    "[{{ tpl \"x{{ tpl \\\"{{ define \\\\\\\"q\\\\\\\" }}Q{{ end }}\\\" . }}y{{ tpl \\\"z\\\" . }}\" . }}]",
    "[{{ tpl \"{{ include \\\"helper\\\" . }}\" . }}]",
    "[{{ tpl \"{{ .Template.Name }}\" . }}]",
    "[{{ tpl \"{{ tpl .Values.nested . }}\" . }}]",
    "[{{ tpl (toYaml .Values.map) . }}]",
];

#[test]
fn tpl_scoping_matches_helm() {
    let values = r#"{"empty": "", "nested": "n{{ tpl .Values.empty . }}n", "map": {"a": "{{ .Release.Name }}"}}"#;
    batch_with_values_matches_helm(values, TPL_CASES);
}

/// `.Capabilities.APIVersions` is a `VersionSet` (a named `[]string` with `Has`): every
/// function that takes a slice takes it. `.Capabilities.KubeVersion` is a struct with a
/// `String` method.
const CAPABILITIES_CASES: &[&str] = &[
    "{{ has \"apps/v1\" .Capabilities.APIVersions }}|{{ has \"monitoring.coreos.com/v1/ServiceMonitor\" .Capabilities.APIVersions }}|{{ mustHas \"v1\" .Capabilities.APIVersions }}",
    "{{ .Capabilities.APIVersions.Has \"apps/v1\" }}|{{ .Capabilities.APIVersions.Has \"x/v9\" }}",
    "{{ len .Capabilities.APIVersions }}|{{ empty .Capabilities.APIVersions }}",
    "{{ range $i, $v := .Capabilities.APIVersions }}{{ if lt $i 3 }}{{ $v }},{{ end }}{{ end }}",
    "{{ join \",\" .Capabilities.APIVersions | sha256sum }}",
    "{{ toYaml .Capabilities.APIVersions | sha256sum }}|{{ toJson .Capabilities.APIVersions | sha256sum }}",
    "{{ index .Capabilities.APIVersions 0 }}|{{ first .Capabilities.APIVersions }}|{{ last .Capabilities.APIVersions }}",
    "{{ typeOf .Capabilities.APIVersions }}|{{ kindOf .Capabilities.APIVersions }}|{{ kindIs \"slice\" .Capabilities.APIVersions }}",
    "{{ slice .Capabilities.APIVersions 0 2 }}|{{ concat .Capabilities.APIVersions (list \"x\") | len }}|{{ without .Capabilities.APIVersions \"v1\" | len }}",
    "{{ sortAlpha .Capabilities.APIVersions | first }}|{{ uniq .Capabilities.APIVersions | len }}|{{ toStrings .Capabilities.APIVersions | len }}",
    "{{ printf \"%v\" .Capabilities.APIVersions | sha256sum }}|{{ toString .Capabilities.APIVersions | sha256sum }}",
    "{{ .Capabilities.KubeVersion }}|{{ .Capabilities.KubeVersion.Version }}|{{ .Capabilities.KubeVersion.Major }}|{{ .Capabilities.KubeVersion.Minor }}|{{ .Capabilities.KubeVersion.GitVersion }}",
    "{{ semverCompare \">=1.20-0\" .Capabilities.KubeVersion.Version }}|{{ semverCompare \"<1.20-0\" .Capabilities.KubeVersion.GitVersion }}",
    "{{ typeOf .Capabilities.KubeVersion }}|{{ kindOf .Capabilities.KubeVersion }}",
    "{{ toYaml .Capabilities.KubeVersion }}|{{ toYaml .Capabilities.HelmVersion }}",
];

#[test]
fn capabilities_lists_match_helm() {
    batch_with_values_matches_helm("{}", CAPABILITIES_CASES);
}

/// Go's RE2 syntax where the `regex` crate reads the pattern differently or refuses it.
const REGEX_CASES: &[&str] = &[
    "{{ regexMatch \"^[\\\\w-\\\\.]+$\" \"my-host.example\" }}|{{ regexMatch \"^[\\\\w-\\\\.]+$\" \"a b\" }}",
    "{{ regexFind \"[\\\\w-\\\\.]+\" \"  abc-d.e  \" }}|{{ mustRegexFind \"[a[b]+\" \"x[ab]\" }}",
    "{{ regexReplaceAll \"a{\" \"xa{y\" \"-\" }}|{{ regexReplaceAll \"a{01}\" \"a{01}a\" \"-\" }}",
    "{{ regexReplaceAll \"\\\\Qa.b\\\\E\" \"a.b axb\" \"-\" }}|{{ regexFindAll \"\\\\Q*+\" \"x*+y*+\" -1 }}",
    "{{ regexMatch \"^\\\\d+$\" \"١٢\" }}|{{ regexMatch \"^\\\\w+$\" \"é\" }}|{{ regexMatch \"\\\\bé\" \"xé\" }}",
    "{{ regexReplaceAll \"(?P<first>\\\\w+) (?P<second>\\\\w+)\" \"hello world\" \"${second} $first\" }}",
    "{{ regexReplaceAll \"(?<a>x)(?P<b>y)\" \"xy\" \"$b$a\" }}|{{ regexReplaceAll \"(?i)AB\" \"xaBy\" \"-\" }}|{{ regexReplaceAll \"(?s:a.b)\" \"a\\nb\" \"-\" }}",
    "{{ regexFind \"a\\\\z\" \"aa\" }}|{{ regexMatch \"[[:alpha:]]+\" \"abc\" }}|{{ regexMatch \"^[a&&b]$\" \"&\" }}|{{ regexMatch \"^[a-c--b]+$\" \"-\" }}",
    "{{ regexSplit \"\" \"abc\" -1 }}|{{ regexSplit \",\" \"a,b,c\" 2 }}|{{ regexSplit \"x*\" \"axbxxc\" -1 }}|{{ regexSplit \",\" \"\" -1 | len }}",
    "{{ regexFindAll \"a*\" \"baaac\" -1 }}|{{ regexFindAll \"[0-9]\" \"a1b2c3\" 2 }}",
    "{{ regexQuoteMeta \"a-b#c~d&e.f\" }}",
    "{{ regexMatch \"[\" \"x\" }}|{{ regexMatch \"a**\" \"a\" }}",
    "{{ regexReplaceAllLiteral \"[\\\\w-]+\" \"a-b c\" \"$1\" }}|{{ regexMatch \"\\\\x41\\\\x{42}\\\\101\" \"ABA\" }}",
    "{{ regexMatch \"^\\\\pL\\\\p{Greek}\\\\PN$\" \"aαb\" }}|{{ regexMatch \"^[\\\\p{Lu}\\\\d]+$\" \"A1\" }}",
];

#[test]
fn go_regex_syntax_matches_helm() {
    batch_with_values_matches_helm("{}", REGEX_CASES);
}

/// Patterns Go refuses: the template error (Go's wording) for `must` variants and the
/// `regexp: Compile(...)` panic for the others.
#[test]
fn go_regex_errors_match_helm() {
    let dir = tempfile::tempdir().unwrap();
    for (i, t) in [
        "{{ mustRegexMatch \"[a\" \"x\" }}",
        "{{ regexFind \"a**\" \"x\" }}",
        "{{ mustRegexFindAll \"*a\" \"x\" -1 }}",
        "{{ regexReplaceAll \"(a\" \"x\" \"y\" }}",
        "{{ mustRegexReplaceAll \"a)\" \"x\" \"y\" }}",
        "{{ regexSplit \"\\\\Z\" \"x\" -1 }}",
        "{{ mustRegexSplit \"a{1001}\" \"x\" -1 }}",
        "{{ mustRegexFind \"(?x)a\" \"x\" }}",
        "{{ mustRegexFind \"[z-a]\" \"x\" }}",
        "{{ mustRegexFind \"(?P<a-b>x)\" \"x\" }}",
        "{{ mustRegexFind \"\\\\p{Foo}\" \"x\" }}",
        "{{ mustRegexFind \"[[:foo:]]\" \"x\" }}",
        "{{ mustRegexFind \"x\\\\\" \"x\" }}",
        "{{ regexFind \"a{2}{3}\" \"x\" }}",
        "{{ regexFind \"(?=a)\" \"x\" }}",
        "{{ regexFind \"\\\\8\" \"x\" }}",
    ]
    .iter()
    .enumerate()
    {
        let d = dir.path().join(format!("c{i}"));
        ferroflux_gotemplate::oracle::write_chart(
            &d,
            "{}",
            &[("e.yaml".to_string(), t.to_string())],
        );
        compare("r", &d, &[], &TemplateOptions::default());
    }
}

/// A null in a chart's own values.yaml survives coalescing when nothing overrides it (helm
/// v4.1 and helm3), in the chart, in subcharts and in globals; a user null deletes.
const NULL_VALUES: &str = "resources:\n  limits:\n  requests:\n    cpu: 1\nempty:\nlist: [1, null]\nnested:\n  a:\n    b:\n    c: 1\nglobal:\n  g:\n  h: 1\n";

#[test]
fn null_defaults_match_helm() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    ferroflux_gotemplate::oracle::write_chart(
        &dir,
        NULL_VALUES,
        &[(
            "cm.yaml".to_string(),
            "kind: ConfigMap\ndata:\n  v: |\n    {{- toYaml .Values | nindent 4 }}\n  k: {{ hasKey .Values.resources \"limits\" }}|{{ kindOf .Values.resources.limits }}\n".to_string(),
        )],
    );
    let sub = dir.join("charts/sub");
    ferroflux_gotemplate::oracle::write_chart(
        &sub,
        "x:\n  y:\n  z: 1\nw:\n",
        &[(
            "cm.yaml".to_string(),
            "kind: ConfigMap\nmetadata:\n  name: sub\ndata:\n  v: |\n    {{- toYaml .Values | nindent 4 }}\n".to_string(),
        )],
    );
    std::fs::write(
        sub.join("Chart.yaml"),
        "apiVersion: v2\nname: sub\nversion: 0.1.0\n",
    )
    .unwrap();
    let flag_sets: &[&[&str]] = &[
        &[],
        &[
            "--set",
            "resources.requests.cpu=null,nested.a.c=null,sub.x.z=null",
        ],
        &["--set", "resources.limits.cpu=2,empty=x,global.g=3,sub.w=4"],
        &["--set", "resources.limits=null,sub.x.y=null"],
    ];
    for args in flag_sets {
        let set: Vec<String> = args.iter().skip(1).map(|s| s.to_string()).collect();
        for v3 in [false, true] {
            let opts = TemplateOptions {
                set: set.clone(),
                helm_version: if v3 {
                    ferroflux_helm::HelmVersion::V3
                } else {
                    ferroflux_helm::HelmVersion::V4
                },
                ..TemplateOptions::default()
            };
            compare("r", &dir, args, &opts);
        }
    }
}

/// A values.yaml with a long comment block (more than the YAML reader's default 96 buffered
/// comments) before a value loads, as Helm reads it.
#[test]
fn long_comment_blocks_load_like_helm() {
    let mut values = String::from("config:\n");
    for i in 0..300 {
        values.push_str(&format!("  # commented-out option {i}: value\n"));
    }
    values.push_str("  key: value\nlist:\n");
    for i in 0..150 {
        values.push_str(&format!("# note {i}\n"));
    }
    values.push_str("  - a\n");
    batch_with_values_matches_helm(&values, &["{{ toYaml .Values }}"]);
}
