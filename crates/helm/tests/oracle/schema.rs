//! values.schema.json keywords: each case is a chart with that schema and values.yaml, and
//! the error (or success) must match helm v4's and helm3's (both use santhosh-tekuri/jsonschema
//! v6). Where several errors are siblings, helm orders them by Go map iteration (random),
//! so those are compared as sets of lines.

const D4: &str = r#""$schema": "http://json-schema.org/draft-04/schema#", "#;
const D6: &str = r#""$schema": "http://json-schema.org/draft-06/schema#", "#;
const D7: &str = r#""$schema": "http://json-schema.org/draft-07/schema#", "#;
const D19: &str = r#""$schema": "https://json-schema.org/draft/2019-09/schema", "#;

/// (draft prefix, schema body without braces, values.yaml)
pub const CASES: &[(&str, &str, &str)] = &[
    // format: asserted before 2019-09, ignored by 2020-12 (the default)
    (
        D7,
        r#""properties": {"e": {"format": "email"}}"#,
        "e: notanemail",
    ),
    (
        D7,
        r#""properties": {"e": {"format": "email"}}"#,
        "e: a..b@x.io",
    ),
    (
        D7,
        r#""properties": {"e": {"format": "email"}}"#,
        "e: ok@example.com",
    ),
    (
        D7,
        r#""properties": {"e": {"format": "email"}}"#,
        "e: a@-x.io",
    ),
    (
        D7,
        r#""properties": {"e": {"format": "email"}}"#,
        "e: a@[1.2.3]",
    ),
    (
        "",
        r#""properties": {"e": {"format": "email"}}"#,
        "e: notanemail",
    ),
    (
        D19,
        r#""properties": {"e": {"format": "email"}}"#,
        "e: notanemail",
    ),
    (
        D7,
        r#""properties": {"h": {"format": "hostname"}}"#,
        "h: '-bad-'",
    ),
    (
        D7,
        r#""properties": {"h": {"format": "hostname"}}"#,
        "h: a_b.example",
    ),
    (
        D7,
        r#""properties": {"h": {"format": "hostname"}}"#,
        "h: a..b",
    ),
    (
        D7,
        r#""properties": {"i": {"format": "ipv4"}}"#,
        "i: '1.2.3'",
    ),
    (
        D7,
        r#""properties": {"i": {"format": "ipv4"}}"#,
        "i: '1.2.3.256'",
    ),
    (
        D7,
        r#""properties": {"i": {"format": "ipv4"}}"#,
        "i: '01.2.3.4'",
    ),
    (
        D7,
        r#""properties": {"i": {"format": "ipv4"}}"#,
        "i: '1.2.x.4'",
    ),
    (
        D7,
        r#""properties": {"i": {"format": "ipv6"}}"#,
        "i: '1.2.3.4'",
    ),
    (D7, r#""properties": {"i": {"format": "ipv6"}}"#, "i: '::1'"),
    (
        D7,
        r#""properties": {"d": {"format": "date"}}"#,
        "d: '2020-13-01'",
    ),
    (
        D7,
        r#""properties": {"d": {"format": "date"}}"#,
        "d: '2021-02-29'",
    ),
    (
        D7,
        r#""properties": {"d": {"format": "date"}}"#,
        "d: '20-01-01'",
    ),
    (
        D7,
        r#""properties": {"d": {"format": "date"}}"#,
        "d: '2020-01-011'",
    ),
    (
        D7,
        r#""properties": {"d": {"format": "date"}}"#,
        "d: '2020/01/01'",
    ),
    (
        D7,
        r#""properties": {"d": {"format": "date-time"}}"#,
        "d: '2020-13-01'",
    ),
    (
        D7,
        r#""properties": {"d": {"format": "date-time"}}"#,
        "d: '2020-01-01 10:00:00Z'",
    ),
    (
        D7,
        r#""properties": {"d": {"format": "date-time"}}"#,
        "d: '2020-01-01T25:00:00Z'",
    ),
    (
        D7,
        r#""properties": {"d": {"format": "date-time"}}"#,
        "d: '2020-01-01T10:00:00+0100'",
    ),
    (
        D7,
        r#""properties": {"d": {"format": "date-time"}}"#,
        "d: '2020-01-01T10:00:00.5+01:00'",
    ),
    (
        D7,
        r#""properties": {"t": {"format": "time"}}"#,
        "t: '10:00'",
    ),
    (
        D7,
        r#""properties": {"t": {"format": "time"}}"#,
        "t: '10:00:61Z'",
    ),
    (
        D7,
        r#""properties": {"u": {"format": "uri"}}"#,
        "u: not a uri",
    ),
    (
        D7,
        r#""properties": {"u": {"format": "uri"}}"#,
        "u: 'https://x/%zz'",
    ),
    (
        D7,
        r#""properties": {"u": {"format": "uri"}}"#,
        "u: ':nope'",
    ),
    (
        D7,
        r#""properties": {"u": {"format": "uri-reference"}}"#,
        "u: 'a:b/c'",
    ),
    (
        D7,
        r#""properties": {"u": {"format": "uri-reference"}}"#,
        "u: '../rel'",
    ),
    (D7, r#""properties": {"u": {"format": "uuid"}}"#, "u: 1234"),
    (
        D7,
        r#""properties": {"u": {"format": "uuid"}}"#,
        "u: 123e4567-e89b-12d3-a456-42661417400z",
    ),
    (
        D7,
        r#""properties": {"p": {"format": "json-pointer"}}"#,
        "p: a/b",
    ),
    (
        D7,
        r#""properties": {"p": {"format": "json-pointer"}}"#,
        "p: /a~2",
    ),
    (
        D7,
        r#""properties": {"d": {"format": "duration"}}"#,
        "d: P1H",
    ),
    (
        D7,
        r#""properties": {"d": {"format": "duration"}}"#,
        "d: PT1M1H",
    ),
    (
        D7,
        r#""properties": {"v": {"format": "semver"}}"#,
        "v: 1.02.3",
    ),
    (
        D7,
        r#""properties": {"v": {"format": "unknown-format"}}"#,
        "v: anything",
    ),
    (D7, r#""properties": {"v": {"format": "email"}}"#, "v: 3"),
    // if / then / else
    (
        D7,
        r#""if": {"properties": {"a": {"const": 1}}, "required": ["a"]}, "then": {"required": ["b"]}, "else": {"required": ["c"]}"#,
        "a: 1",
    ),
    (
        D7,
        r#""if": {"properties": {"a": {"const": 1}}, "required": ["a"]}, "then": {"required": ["b"]}, "else": {"required": ["c"]}"#,
        "a: 2",
    ),
    (
        "",
        r#""if": {"properties": {"a": {"const": 1}}}, "then": {"properties": {"b": {"type": "string"}}}"#,
        "a: 1\nb: 2",
    ),
    (
        D6,
        r#""if": {"properties": {"a": {"const": 1}}}, "then": {"required": ["zz"]}"#,
        "a: 1",
    ),
    // dependencies, dependentRequired, dependentSchemas
    (D7, r#""dependencies": {"a": ["b", "c"]}"#, "a: 1"),
    (D7, r#""dependencies": {"x": {"required": ["y"]}}"#, "x: 1"),
    (
        D7,
        r#""dependencies": {"x": {"properties": {"z": {"minimum": 5}}}}"#,
        "x: 1\nz: 2",
    ),
    ("", r#""dependentRequired": {"a": ["b"]}"#, "a: 1"),
    (D7, r#""dependentRequired": {"a": ["b"]}"#, "a: 1"),
    (
        "",
        r#""dependentSchemas": {"a": {"required": ["q"]}}"#,
        "a: 1",
    ),
    // $ref: definitions, $defs, siblings (ignored before 2019-09)
    (
        D7,
        r##""properties": {"a": {"$ref": "#/definitions/x", "maximum": 0}}, "definitions": {"x": {"minimum": 3}}"##,
        "a: 1",
    ),
    (
        "",
        r##""properties": {"a": {"$ref": "#/$defs/x", "maximum": 0}}, "$defs": {"x": {"minimum": 3}}"##,
        "a: 1",
    ),
    (
        "",
        r##""properties": {"a": {"$ref": "#/$defs/x"}}, "$defs": {"x": {"minimum": 3, "multipleOf": 2}}"##,
        "a: 1",
    ),
    (
        "",
        r##""properties": {"a": {"$ref": "#/$defs/n"}}, "$defs": {"n": {"type": "object", "properties": {"b": {"$ref": "#/$defs/s"}}}, "s": {"type": "string"}}"##,
        "a:\n  b: 1",
    ),
    // patternProperties, additionalProperties, propertyNames
    (
        "",
        r#""patternProperties": {"^x-": {"type": "string"}}, "additionalProperties": false"#,
        "x-a: 1\nother: 2",
    ),
    (
        "",
        r#""properties": {"m": {"additionalProperties": {"type": "integer"}}}"#,
        "m:\n  a: 1\n  b: x",
    ),
    ("", r#""propertyNames": {"maxLength": 2}"#, "abc: 1"),
    (
        "",
        r#""properties": {"m": {"propertyNames": {"pattern": "^[a-z]+$"}}}"#,
        "m:\n  Bad: 1",
    ),
    (D4, r#""propertyNames": {"maxLength": 2}"#, "abc: 1"),
    // arrays: items (array form), additionalItems, prefixItems, contains
    (
        D7,
        r#""properties": {"a": {"items": [{"type": "string"}], "additionalItems": false}}"#,
        "a: [x, 1, 2]",
    ),
    (
        D7,
        r#""properties": {"a": {"items": [{"type": "string"}], "additionalItems": {"type": "string"}}}"#,
        "a: [x, 1]",
    ),
    (
        "",
        r#""properties": {"a": {"prefixItems": [{"type": "string"}], "items": {"type": "string"}}}"#,
        "a: [x, z, 2]",
    ),
    (
        "",
        r#""properties": {"a": {"prefixItems": [{"type": "string"}], "items": false}}"#,
        "a: [x, z]",
    ),
    (
        "",
        r#""properties": {"a": {"contains": {"const": 3}}}"#,
        "a: [1, 2]",
    ),
    (
        "",
        r#""properties": {"a": {"contains": {"const": 3}, "minContains": 2}}"#,
        "a: [3, 2]",
    ),
    (
        "",
        r#""properties": {"a": {"contains": {"const": 3}, "minContains": 2}}"#,
        "a: [1]",
    ),
    (
        "",
        r#""properties": {"a": {"contains": {"const": 3}, "maxContains": 1}}"#,
        "a: [3, 3]",
    ),
    (
        D7,
        r#""properties": {"a": {"contains": {"const": 3}, "minContains": 2}}"#,
        "a: [3]",
    ),
    (
        "",
        r#""properties": {"a": {"uniqueItems": true, "maxItems": 2}}"#,
        "a: [1, 1, 2]",
    ),
    // const, enum, type, not, allOf, oneOf
    (
        "",
        r#""properties": {"a": {"const": {"x": 1}}}"#,
        "a: {x: 2}",
    ),
    ("", r#""properties": {"a": {"const": null}}"#, "a: 2"),
    (D4, r#""properties": {"a": {"const": 1}}"#, "a: 2"),
    (
        "",
        r#""properties": {"a": {"enum": [1, "x", null, [1]]}}"#,
        "a: 2",
    ),
    (
        "",
        r#""properties": {"a": {"enum": [1, "x", null, true]}}"#,
        "a: 2",
    ),
    ("", r#""properties": {"a": {"enum": ["only"]}}"#, "a: 2"),
    (
        "",
        r#""properties": {"a": {"type": ["object", "array", "boolean", "string", "null"]}}"#,
        "a: 1",
    ),
    (
        "",
        r#""properties": {"a": {"type": ["string", "integer"]}}"#,
        "a: 1.5",
    ),
    (
        "",
        r#""properties": {"a": {"type": "string", "minLength": 3}}"#,
        "a: 1",
    ),
    (
        "",
        r#""properties": {"a": {"not": {"type": "integer"}}}"#,
        "a: 1",
    ),
    (
        "",
        r#""properties": {"a": {"allOf": [{"minimum": 5}, {"maximum": 3}]}}"#,
        "a: 1",
    ),
    (
        "",
        r#""properties": {"a": {"oneOf": [{"minimum": 0}, {"maximum": 5}]}}"#,
        "a: 1",
    ),
    ("", r#""properties": {"a": false}"#, "a: 1"),
    // numbers: draft-04 boolean exclusives, multipleOf with decimals, big numbers
    (
        D4,
        r#""properties": {"a": {"maximum": 3, "exclusiveMaximum": true}}"#,
        "a: 3",
    ),
    (
        D4,
        r#""properties": {"a": {"minimum": 3, "exclusiveMinimum": true}}"#,
        "a: 3",
    ),
    ("", r#""properties": {"a": {"multipleOf": 0.1}}"#, "a: 0.3"),
    ("", r#""properties": {"a": {"multipleOf": 0.1}}"#, "a: 0.35"),
    (
        "",
        r#""properties": {"a": {"maximum": 1000}}"#,
        "a: 123456.5",
    ),
    ("", r#""properties": {"a": {"minimum": 1000000}}"#, "a: 5"),
    (
        "",
        r#""properties": {"a": {"maximum": 0.00001}}"#,
        "a: 1234567.25",
    ),
    (
        "",
        r#""properties": {"a": {"minimum": -0.5}}"#,
        "a: -12345.125",
    ),
    ("", r#""properties": {"a": {"maxLength": 1}}"#, "a: héllo"),
    // unevaluatedProperties
    (
        "",
        r#""unevaluatedProperties": false, "properties": {"a": true}"#,
        "a: 1\nb: 2",
    ),
    (
        "",
        r#""unevaluatedProperties": false, "allOf": [{"properties": {"a": true}}]"#,
        "a: 1\nb: 2",
    ),
    // strings needing Go quoting
    (
        "",
        r#""properties": {"a": {"pattern": "^[a-z]+$"}}"#,
        "a: \"it's \\\"x\\\"\\t\"",
    ),
    ("", r#""required": ["it's", "a/b"]"#, "x: 1"),
    (
        "",
        r#""properties": {"a/b": {"properties": {"c~d": {"type": "string"}}}}"#,
        "a/b:\n  c~d: 1",
    ),
];

/// Compare helm's error with ours: exactly, or as a set of lines when helm lists sibling
/// errors (their order comes from Go map iteration).
pub fn same(want: &Result<String, String>, got: &Result<String, String>) -> bool {
    if want == got {
        return true;
    }
    match (want, got) {
        (Err(w), Err(g)) => {
            let sorted = |s: &str| {
                let mut v: Vec<String> = s.lines().map(str::to_string).collect();
                v.sort_unstable();
                v
            };
            let siblings = {
                let mut seen = std::collections::HashMap::new();
                w.lines()
                    .filter(|l| l.trim_start().starts_with("- at"))
                    .any(|l| {
                        let ind = l.len() - l.trim_start().len();
                        *seen.entry(ind).or_insert(0) += 1;
                        seen[&ind] > 1
                    })
            };
            siblings && sorted(w) == sorted(g)
        }
        _ => false,
    }
}

pub fn chart(dir: &std::path::Path, draft: &str, body: &str, values: &str) {
    super::helm::write_chart(dir, values, &[("a.yaml".to_string(), "a: b".to_string())]);
    std::fs::write(dir.join("values.schema.json"), format!("{{{draft}{body}}}")).unwrap();
}
