//! Robustness: random and hostile templates must never panic or overflow the stack; they
//! either render or fail with an error.

use std::collections::BTreeMap;

use crate::{Templates, Value};

const FRAGMENTS: &[&str] = &[
    "{{",
    "}}",
    "{{- ",
    " -}}",
    " ",
    "if ",
    "else ",
    "end",
    "range ",
    "with ",
    "define \"a\"",
    "template \"a\" .",
    "block \"b\" .",
    ".",
    "$",
    "$x",
    " := ",
    " = ",
    " | ",
    "(",
    ")",
    "1",
    "-2.5",
    "\"s\"",
    "`r`",
    "'c'",
    "nil",
    "true",
    ".m",
    ".m.l",
    ".m.self.self",
    ".l",
    "len ",
    "index ",
    "print ",
    "printf \"%d %s %v %x %q %-5.2f %[2]*d\" ",
    "eq ",
    "lt ",
    "and ",
    "or ",
    "not ",
    "slice ",
    "break",
    "continue",
    "{{/* c */}}",
    "text\n",
    ", ",
    "call ",
    "html ",
    "js ",
    "urlquery ",
    "println ",
    "5",
    "0x10",
    "1e300",
    "$x.y",
    "(.)",
    "3",
    "\"%!\"",
    "ne ",
    "{{ range $i, $v := .l }}",
    "{{ end }}",
    "{{ template \"a\" . }}",
    "{{ define \"a\" }}",
    "{{ if .m }}",
    "{{ else if .l }}",
    "{{ with .m.l }}",
    "{{ $x := .m }}",
    "{{ . }}",
];

fn data() -> Value {
    let inner = Value::list(vec![
        Value::Int(1),
        Value::str("two"),
        Value::Float(3.5),
        Value::Nil,
    ]);
    let mut m = BTreeMap::new();
    m.insert("l".to_string(), inner.clone());
    m.insert("s".to_string(), Value::str("str"));
    let map = Value::map(m);
    // a cycle, as Sprig's `set $m "self" $m` builds
    if let Value::Map(r) = &map {
        r.borrow_mut().insert("self".into(), map.clone());
    }
    let mut top = BTreeMap::new();
    top.insert("m".to_string(), map);
    top.insert("l".to_string(), inner);
    Value::map(top)
}

fn run(text: &str) {
    let mut t = Templates::new("t");
    t.options.max_depth = 200;
    t.options.max_nesting = 250;
    t.options.max_output = 1 << 20;
    t.options.max_steps = Some(100_000);
    if t.parse("t", text).is_ok() {
        let _ = t.execute("t", &data());
    }
}

fn with_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn random_templates_never_panic() {
    with_stack(|| {
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut rendered = 0;
        for _ in 0..4000 {
            let n = (next() % 24 + 1) as usize;
            let mut text = String::new();
            for _ in 0..n {
                text.push_str(FRAGMENTS[(next() % FRAGMENTS.len() as u64) as usize]);
            }
            let mut t = Templates::new("t");
            t.options.max_steps = Some(100_000);
            t.options.max_output = 1 << 20;
            if t.parse("t", &text).is_ok() && t.execute("t", &data()).is_ok() {
                rendered += 1;
            }
            run(&text);
        }
        assert!(
            rendered > 50,
            "too few random templates rendered: {rendered}"
        );
    });
}

#[test]
fn hostile_templates_fail_cleanly() {
    with_stack(|| {
        let deep_parens = format!("{{{{ {}1{} }}}}", "(".repeat(5000), ")".repeat(5000));
        let deep_ifs = format!("{}x{}", "{{ if 1 }}".repeat(5000), "{{ end }}".repeat(5000));
        let self_call = "{{ define \"a\" }}{{ template \"a\" . }}{{ end }}{{ template \"a\" . }}";
        let big_range = "{{ range 100000000 }}{{ end }}";
        let big_output = "{{ range 100000000 }}xxxxxxxxxx{{ end }}";
        let cyclic_print = "{{ .m }}{{ printf \"%v\" .m }}";
        for text in [&deep_parens, &deep_ifs, self_call, big_range, big_output] {
            let mut t = Templates::new("t");
            t.options.max_depth = 1000;
            t.options.max_steps = Some(1_000_000);
            t.options.max_output = 1 << 20;
            let r = t.parse("t", text).and_then(|_| t.execute("t", &data()));
            assert!(r.is_err(), "expected a limit error for {:.40}", text);
        }
        let mut t = Templates::new("t");
        t.parse("t", cyclic_print).unwrap();
        let out = t.execute("t", &data()).unwrap();
        assert!(out.contains("map["));
        assert!(data().deep_copy().as_map().is_some());
    });
}
