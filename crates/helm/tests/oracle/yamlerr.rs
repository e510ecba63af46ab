//! Broken YAML in every place helm reads it (values.yaml, `-f` files, Chart.yaml, template
//! output, `fromYaml`) must fail with go-yaml's words, as helm prints them.

/// Broken (and a few odd but valid) YAML documents.
pub const DOCS: &[&str] = &[
    "a:\n\tb: 1\n",
    "a: 1\n b: 2\n",
    "a: \"unclosed\n",
    "a: 'unclosed\n",
    "a: 1\na: 2\n",
    "a: b: c\n",
    "- a\nb: c\n",
    "a:\n  - x\n  y: z\n",
    "a: [1, 2\n",
    "a: {x: 1\n",
    "a: &x 1\nb: *y\n",
    "a: |\n x\n  y\n b\n",
    "a:\n  b: 1\n c: 2\n",
    "x: 1\n\ny: [\n",
    "a: \"bad \\q escape\"\n",
    "? complex\n: key\n",
    "a: @x\n",
    "a: `x\n",
    "%FOO bar\na: 1\n",
    "a: !!int x\n",
    "a:\n- b\n  - c\n",
    "list:\n  - a\n  -b: c\n   d: e\n",
    "k: v\n---\nk2: [\n",
    "\"a\nb\": 1\n",
    "a: 'it''s'\nb: \"x\n",
    "{a: 1, b}\n",
    "[a, b]: 1\n",
    "a:\n  b:\n    c: 1\n   d: 2\n",
    "a: b\n  c: d\n",
    "- a\n - b\n",
    "a: 'x'y\n",
    "a: \"x\"y\n",
    "a: [b, c]]\n",
    "a: {b: c}}\n",
    "key: v\nbad line\n",
    "a: b #c\nd\n",
    "a: *\n",
    "a: &\n",
    "x: |\n\tfoo\n",
    "- [a\n- b]\n",
    "a:\n  b: 1\n  b: 2\n",
    "a: !foo x\n",
    "a: b\n---\nc: d\n",
    "---\na: 1\n",
    "# only a comment\n",
    "a: 1\n--- x\n",
    "- 1\n- 2\n",
    "\"unterminated: 1\n",
    "a: \"multi\n  line\"\nb: [1,\n 2\n",
    "~: 1\n",
    "a:\n  null: [x, 2]\n",
    "a:\n  ~: {b: 'c', d: 1.5}\n",
    "? \n: x\n",
    "a: b\n\t\n",
    "a: b\n \t\n",
    "x:\n  a: b\n  \t\nc: 1\n",
    "x:\n  a: b\n   \t\n",
    "- b\n\t\n",
    "a: 'b'\n\t\n",
    "a: b # c\n\t\n",
    "a: |\n  x\n\t\n",
    "a: b\n\t\nc: d\n",
    "- k: v\n  \t\n",
    "a:\n\t\n",
    "a: b\n\n\t\n",
    "a: \"x\n\t\ny\"\nb: 1\n",
    "a: 'x\n\t\n y'\n",
    "a: [1,\n\t\n 2]\nb: {c: 1,\n\t\n d: 2}\n",
    "a: |\n  x\n  \t\n  y\n",
    "a: |\n  x\tz\n",
    "a: b\n  c\n\t\n",
];

/// Where a document goes: (label, how the chart is changed).
pub fn place(dir: &std::path::Path, kind: &str, doc: &str) -> Vec<String> {
    let mut args = Vec::new();
    match kind {
        "values" => std::fs::write(dir.join("values.yaml"), doc).unwrap(),
        "chart" => std::fs::write(
            dir.join("Chart.yaml"),
            format!("apiVersion: v2\nname: c\nversion: 0.1.0\n{doc}"),
        )
        .unwrap(),
        "tpl" => std::fs::write(dir.join("templates/a.yaml"), doc).unwrap(),
        "fromyaml" => {
            std::fs::write(dir.join("x.txt"), doc).unwrap();
            std::fs::write(
                dir.join("templates/a.yaml"),
                "a: {{ fromYaml (.Files.Get \"x.txt\") | toJson | quote }}\nb: {{ fromYamlArray (.Files.Get \"x.txt\") | toJson | quote }}\n",
            )
            .unwrap();
        }
        _ => {
            let f = dir.join("extra.yaml");
            std::fs::write(&f, doc).unwrap();
            args.push("-f".to_string());
            args.push(f.to_string_lossy().into_owned());
        }
    }
    args
}
