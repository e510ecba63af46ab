//! YAML reader: parser events into `serde_json::Value`, resolving plain scalars the way
//! kustomize's pipeline does (YAML 1.2 core schema with Go-style integer parsing, legacy
//! octals, timestamps turned into RFC 3339 strings, anchors and `<<` merge keys expanded).

use ferroflux_goyaml::Anchors;
use ferroflux_goyaml::resolve::{Resolved, Schema, parse_timestamp, resolve};
use granit_parser::{Event, Parser, ScalarStyle, Span};
use serde_json::{Map, Number, Value};

/// Largest accepted YAML input, in bytes.
pub const MAX_INPUT_BYTES: usize = 64 * 1024 * 1024;
/// Deepest accepted nesting of collections.
pub const MAX_DEPTH: usize = 128;
/// Most nodes one document may expand to (guards against alias bombs).
pub const MAX_NODES: usize = 4_000_000;

/// A YAML reading failure with its position (1-based line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct YamlError {
    /// What went wrong, with position where known.
    pub message: String,
}

fn err_at(span: Option<&Span>, msg: impl std::fmt::Display) -> YamlError {
    match span {
        Some(s) => YamlError {
            message: format!("line {}: {msg}", s.start.line()),
        },
        None => YamlError {
            message: msg.to_string(),
        },
    }
}

/// Parse every document of a YAML stream. Empty documents (and documents that are only
/// `null`) are returned as `Value::Null`; the caller decides what to do with them.
pub fn parse_documents(src: &str) -> Result<Vec<Value>, YamlError> {
    parse_with(src, false)
}

/// Parse the way sigs.k8s.io/yaml (go-yaml v2, YAML 1.1) does, which kustomize uses for its
/// own configuration: the kustomization file, plugin configs and JSON 6902 patches. The
/// differences: `y`, `yes`, `on`, `off`, `no`, `n` (any case variant go-yaml knows) are
/// booleans, and timestamps stay the text they were.
pub fn parse_documents_yaml11(src: &str) -> Result<Vec<Value>, YamlError> {
    parse_with(src, true)
}

fn parse_with(src: &str, yaml11: bool) -> Result<Vec<Value>, YamlError> {
    if src.len() > MAX_INPUT_BYTES {
        return Err(err_at(
            None,
            format!("YAML input is larger than {MAX_INPUT_BYTES} bytes"),
        ));
    }
    // Comments between a key and its value are buffered while the parser looks ahead; the
    // input is bounded in size above, so their number is not bounded (go-yaml has no limit,
    // granit's default of 96 refused long commented-out blocks in real manifests).
    let mut options = granit_parser::Options::default();
    options.max_buffered_comment_events = usize::MAX;
    let mut parser = Parser::new_from_str_with_options(src, options);
    let mut b = Builder {
        anchors: Anchors::default(),
        nodes: 0,
        yaml11,
    };
    let mut docs = Vec::new();
    while let Some((ev, span)) = next(&mut parser)? {
        match ev {
            Event::StreamStart | Event::DocumentEnd => {}
            Event::StreamEnd => break,
            Event::DocumentStart(..) => {
                b.anchors.clear();
                b.nodes = 0;
                // the document content, or an immediate end for an empty document
                let (ev2, span2) = match next(&mut parser)? {
                    Some(x) => x,
                    None => break,
                };
                if matches!(ev2, Event::DocumentEnd) {
                    docs.push(Value::Null);
                    continue;
                }
                let v = b.node(&mut parser, ev2, span2, 0)?;
                docs.push(v);
            }
            _ => {
                return Err(err_at(
                    Some(&span),
                    "unexpected YAML event outside a document",
                ));
            }
        }
    }
    Ok(docs)
}

type Ev<'a> = (Event<'a>, Span);

fn next<'a>(p: &mut Parser<'a, granit_parser::StrInput<'a>>) -> Result<Option<Ev<'a>>, YamlError> {
    loop {
        match p.next_event() {
            None => return Ok(None),
            Some(Err(e)) => {
                return Err(YamlError {
                    message: format!(
                        "line {} column {}: {}",
                        e.marker().line(),
                        e.marker().col() + 1,
                        e.info()
                    ),
                });
            }
            Some(Ok((ev, span))) => {
                let keep = matches!(
                    ev,
                    Event::StreamStart
                        | Event::StreamEnd
                        | Event::DocumentStart(..)
                        | Event::DocumentEnd
                        | Event::Alias(..)
                        | Event::Scalar(..)
                        | Event::SequenceStart(..)
                        | Event::SequenceEnd
                        | Event::MappingStart(..)
                        | Event::MappingEnd
                );
                if let Event::UnresolvedAlias(name) = &ev {
                    return Err(err_at(
                        Some(&span),
                        format!("unknown anchor '{name}' referenced"),
                    ));
                }
                if keep {
                    return Ok(Some((ev, span)));
                }
            }
        }
    }
}

struct Builder {
    anchors: Anchors<Value>,
    nodes: usize,
    yaml11: bool,
}

impl Builder {
    fn count(&mut self, span: &Span, add: usize) -> Result<(), YamlError> {
        self.nodes = self.nodes.saturating_add(add);
        if self.nodes > MAX_NODES {
            return Err(err_at(
                Some(span),
                format!("YAML document expands to more than {MAX_NODES} nodes"),
            ));
        }
        Ok(())
    }

    fn remember(&mut self, anchor: usize, v: &Value) {
        self.anchors.define(anchor, v);
    }

    fn node<'a>(
        &mut self,
        p: &mut Parser<'a, granit_parser::StrInput<'a>>,
        ev: Event<'a>,
        span: Span,
        depth: usize,
    ) -> Result<Value, YamlError> {
        if depth > MAX_DEPTH {
            return Err(err_at(
                Some(&span),
                format!("YAML nesting deeper than {MAX_DEPTH}"),
            ));
        }
        self.count(&span, 1)?;
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let tag_s = tag
                    .as_ref()
                    .map(|t| format!("{}{}", t.handle(), t.suffix()));
                let mut v = scalar_value(&text, style, tag_s.as_deref())
                    .map_err(|m| err_at(Some(&span), m))?;
                if self.yaml11 && style == ScalarStyle::Plain && tag_s.is_none() {
                    v = yaml11_adjust(&text, v);
                }
                self.remember(anchor, &v);
                Ok(v)
            }
            Event::Alias(id) => match self.anchors.get(id) {
                Some(v) => {
                    let n = count_nodes(&v);
                    self.count(&span, n)?;
                    Ok(v)
                }
                None => Err(err_at(Some(&span), "unknown anchor referenced by alias")),
            },
            Event::SequenceStart(_, anchor, _) => {
                let mut items = Vec::new();
                loop {
                    let (ev, sp) =
                        next(p)?.ok_or_else(|| err_at(Some(&span), "unterminated sequence"))?;
                    if matches!(ev, Event::SequenceEnd) {
                        break;
                    }
                    items.push(self.node(p, ev, sp, depth + 1)?);
                }
                let v = Value::Array(items);
                self.remember(anchor, &v);
                Ok(v)
            }
            Event::MappingStart(_, anchor, _) => {
                let mut map = Map::new();
                let mut merges: Vec<Value> = Vec::new();
                loop {
                    let (kev, ksp) =
                        next(p)?.ok_or_else(|| err_at(Some(&span), "unterminated mapping"))?;
                    if matches!(kev, Event::MappingEnd) {
                        break;
                    }
                    let is_merge =
                        matches!(&kev, Event::Scalar(t, ScalarStyle::Plain, _, None) if t == "<<");
                    // scalar keys keep their text (kustomize reads keys into strings)
                    let raw_key = match &kev {
                        Event::Scalar(t, ..) => Some(t.to_string()),
                        _ => None,
                    };
                    // below the top level, go-yaml v3 makes a mapping with a key that is not
                    // a string (`1:`, `true:`, a date) into a map that JSON cannot encode, and
                    // kustomize fails; so do we
                    if depth > 0
                        && !self.yaml11
                        && let Event::Scalar(t, ScalarStyle::Plain, _, None) = &kev
                        && t != "<<"
                        && (parse_timestamp(t).is_some()
                            || !matches!(resolve_plain(t), Ok(Value::String(_))))
                    {
                        return Err(err_at(
                            Some(&ksp),
                            format!(
                                "json: unsupported type: map[interface {{}}]interface {{}} (the key {t:?} is not a string)"
                            ),
                        ));
                    }
                    let key = self.node(p, kev, ksp, depth + 1)?;
                    let (vev, vsp) =
                        next(p)?.ok_or_else(|| err_at(Some(&span), "mapping key without value"))?;
                    let val_span = vsp;
                    let val = self.node(p, vev, val_span, depth + 1)?;
                    if is_merge {
                        merges.push(val);
                        continue;
                    }
                    let k = match raw_key {
                        // sigs.k8s.io/yaml turns YAML 1.1 booleans, numbers and null used as
                        // keys into their JSON text
                        Some(_) if self.yaml11 && !key.is_string() => {
                            key_string(&key).map_err(|m| err_at(Some(&ksp), m))?
                        }
                        Some(t) => t,
                        None => key_string(&key).map_err(|m| err_at(Some(&ksp), m))?,
                    };
                    if map.contains_key(&k) {
                        return Err(err_at(
                            Some(&ksp),
                            format!("mapping key {k:?} already defined"),
                        ));
                    }
                    map.insert(k, val);
                }
                for m in merges {
                    let sources: Vec<Value> = match m {
                        Value::Object(_) => vec![m],
                        Value::Array(items) => items,
                        _ => {
                            return Err(err_at(
                                Some(&span),
                                "map merge requires map or sequence of maps as the value",
                            ));
                        }
                    };
                    for src in sources {
                        match src {
                            Value::Object(o) => {
                                for (k, v) in o {
                                    map.entry(k).or_insert(v);
                                }
                            }
                            _ => {
                                return Err(err_at(
                                    Some(&span),
                                    "map merge requires map or sequence of maps as the value",
                                ));
                            }
                        }
                    }
                }
                let v = Value::Object(map);
                self.remember(anchor, &v);
                Ok(v)
            }
            _ => Err(err_at(Some(&span), "unexpected YAML event")),
        }
    }
}

fn count_nodes(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(count_nodes).sum::<usize>(),
        Value::Object(o) => 1 + o.values().map(count_nodes).sum::<usize>(),
        _ => 1,
    }
}

fn key_string(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Ok("null".to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(crate::yaml::emit::number_text(n)),
        _ => Err("mapping keys must be scalars".to_string()),
    }
}

const TAG_PREFIX: &str = "tag:yaml.org,2002:";

/// Resolve one scalar into a JSON value.
fn scalar_value(text: &str, style: ScalarStyle, tag: Option<&str>) -> Result<Value, String> {
    let short = tag.map(|t| {
        t.strip_prefix(TAG_PREFIX)
            .map(|s| format!("!!{s}"))
            .unwrap_or_else(|| t.to_string())
    });
    match short.as_deref() {
        Some("!!str") => return Ok(Value::String(text.to_string())),
        Some("!!binary") => {
            use base64::Engine;
            let cleaned: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(cleaned)
                .map_err(|_| "!!binary value contains invalid base64 data".to_string())?;
            return Ok(Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        }
        Some("!!int") | Some("!!float") | Some("!!bool") | Some("!!null") | Some("!!timestamp")
        | None | Some("!") => {}
        Some(_) => return Ok(Value::String(text.to_string())),
    }
    if style == ScalarStyle::Folded && short.is_none() {
        return Ok(Value::String(folded_roundtrip(text)));
    }
    if style != ScalarStyle::Plain && short.is_none() {
        return Ok(Value::String(text.to_string()));
    }
    let v = resolve_plain(text)?;
    match short.as_deref() {
        Some("!!float") => match &v {
            Value::Number(n) => Ok(n
                .as_f64()
                .and_then(Number::from_f64)
                .map(Value::Number)
                .unwrap_or(v)),
            _ => Err(format!("cannot decode `{text}` as a !!float")),
        },
        Some("!!int") if !matches!(v, Value::Number(ref n) if !n.is_f64()) => {
            Err(format!("cannot decode `{text}` as a !!int"))
        }
        Some("!!bool") if !v.is_boolean() => Err(format!("cannot decode `{text}` as a !!bool")),
        Some("!!null") if !v.is_null() => Err(format!("cannot decode `{text}` as a !!null")),
        _ => Ok(v),
    }
}

/// kustomize re-encodes folded (`>`) scalars with go-yaml v3 and reads them back before
/// printing. That encoder puts an extra line break after a line that does not start with a
/// blank, and only when the whole value does not start with a blank; reading back, the extra
/// break survives in front of more-indented lines (and, without it, single breaks between
/// plain lines fold into spaces). This reproduces the round trip on the parsed value.
pub fn folded_roundtrip(s: &str) -> String {
    if !s.contains('\n') {
        return s.to_string();
    }
    let is_blank = |c: char| c == ' ' || c == '\t';
    // the emitter cannot write folded text with these; it falls back to quoting (lossless)
    let special = s
        .chars()
        .any(|c| c != '\n' && !ferroflux_goyaml::scalar::is_printable(c));
    if special || s.contains(" \n") || s.ends_with(' ') {
        return s.to_string();
    }
    let body = s.trim_end_matches('\n');
    let tail = &s[body.len()..];
    let extra = body
        .chars()
        .find(|&c| c != '\n')
        .is_some_and(|c| !is_blank(c));
    let lines: Vec<&str> = body.split('\n').collect();
    let mut emitted: Vec<&str> = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        emitted.push(l);
        if i + 1 < lines.len() && extra && !l.is_empty() && !l.starts_with(is_blank) {
            emitted.push("");
        }
    }
    let mut out = String::new();
    let mut leading_break = false;
    let mut trailing_breaks = String::new();
    let mut leading_blank = false;
    let mut first = true;
    for l in emitted {
        if l.is_empty() {
            trailing_breaks.push('\n');
            continue;
        }
        let trailing_blank = l.starts_with(is_blank);
        if !first {
            if leading_break && !leading_blank && !trailing_blank {
                if trailing_breaks.is_empty() {
                    out.push(' ');
                }
            } else if leading_break {
                out.push('\n');
            }
        }
        out.push_str(&trailing_breaks);
        trailing_breaks.clear();
        leading_blank = trailing_blank;
        out.push_str(l);
        leading_break = true;
        first = false;
    }
    out.push_str(&trailing_breaks);
    out.push_str(tail);
    out
}

/// Reinterpret a plain scalar the YAML 1.1 way (booleans; timestamps kept as text).
fn yaml11_adjust(text: &str, v: Value) -> Value {
    match resolve(text, Schema::V2) {
        Resolved::Bool(b) => Value::Bool(b),
        Resolved::Timestamp(_) => Value::String(text.to_string()),
        _ => v,
    }
}

/// Resolve a plain (unquoted, untagged) scalar as kyaml's yaml.v3 does, into JSON.
pub fn resolve_plain(text: &str) -> Result<Value, String> {
    Ok(match resolve(text, Schema::V3) {
        Resolved::Null => Value::Null,
        Resolved::Bool(b) => Value::Bool(b),
        Resolved::Int(i) => Value::Number(Number::from(i)),
        Resolved::Uint(u) => Value::Number(Number::from(u)),
        Resolved::Float(f) => Value::Number(Number::from_f64(f).ok_or_else(|| {
            format!(
                "json: unsupported value: {text} (NaN and infinity cannot be converted to JSON)"
            )
        })?),
        Resolved::Timestamp(ts) => Value::String(ts),
        Resolved::Merge | Resolved::Str => Value::String(text.to_string()),
    })
}

#[cfg(test)]
mod tests {

    #[test]
    fn long_comment_blocks_inside_mappings_are_read() {
        let mut src = String::from("data:\n");
        for i in 0..300 {
            src.push_str(&format!("  # commented-out line {i}\n"));
        }
        src.push_str("  k: v\n");
        let docs = parse_documents(&src).unwrap();
        assert_eq!(docs[0]["data"]["k"], "v");
    }

    use super::*;
    use serde_json::json;

    #[test]
    fn resolves_like_kustomize() {
        assert_eq!(resolve_plain("0755").unwrap(), json!(493));
        assert_eq!(resolve_plain("on").unwrap(), json!("on"));
        assert_eq!(resolve_plain("1_000").unwrap(), json!(1000));
        assert_eq!(resolve_plain("0x1F").unwrap(), json!(31));
        assert_eq!(resolve_plain("1e3").unwrap(), json!(1000.0));
        assert_eq!(resolve_plain("08").unwrap(), json!(8.0));
        assert_eq!(
            resolve_plain("2024-01-01").unwrap(),
            json!("2024-01-01T00:00:00Z")
        );
        assert_eq!(
            resolve_plain("2024-1-2T3:04:05+01:00").unwrap(),
            json!("2024-01-02T03:04:05+01:00")
        );
        assert_eq!(resolve_plain("1.2.3").unwrap(), json!("1.2.3"));
        assert!(resolve_plain(".nan").is_err());
    }

    #[test]
    fn folded_scalars_round_trip_like_kustomize() {
        assert_eq!(
            folded_roundtrip("[\n  JSONPatch{\n  }\n]"),
            "[\n\n  JSONPatch{\n  }\n]"
        );
        assert_eq!(folded_roundtrip("a\nb\n"), "a\nb\n");
        assert_eq!(folded_roundtrip("one line\n"), "one line\n");
    }

    #[test]
    fn anchors_and_merge_keys() {
        let docs = parse_documents("a: &x {p: 1, q: 2}\nb:\n  <<: *x\n  q: 3\n").unwrap();
        assert_eq!(
            docs[0],
            json!({"a": {"p": 1, "q": 2}, "b": {"p": 1, "q": 3}})
        );
    }

    #[test]
    fn duplicate_keys_and_depth_are_errors() {
        assert!(parse_documents("a: 1\na: 2\n").is_err());
        let deep = "[".repeat(MAX_DEPTH + 10);
        assert!(parse_documents(&deep).is_err());
    }
}
