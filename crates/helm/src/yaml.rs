//! YAML and JSON as Helm sees them: reading through `sigs.k8s.io/yaml` (YAML 1.1 scalars,
//! every number a float64), writing like `yaml.Marshal` (JSON first, then go-yaml v2's
//! emitter) and `encoding/json`.

use std::collections::BTreeMap;
use std::fmt;

use ferroflux_gotemplate::Value;
use ferroflux_goyaml::{Emitter, Mode, num};
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

mod fast;

/// A Helm value read from YAML.
struct YValue(Value);

impl<'de> de::Deserialize<'de> for YValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(YVisitor).map(YValue)
    }
}

struct YVisitor;

impl<'de> Visitor<'de> for YVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Float(v as f64))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Float(v as f64))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Float(v as f64))
    }
    fn visit_u128<E>(self, v: u128) -> Result<Value, E> {
        Ok(Value::Float(v as f64))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::str(v))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::str(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Nil)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Nil)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(YVisitor)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut v = Vec::new();
        while let Some(YValue(x)) = seq.next_element()? {
            v.push(x);
        }
        Ok(Value::list(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut m = BTreeMap::new();
        while let Some((YValue(k), YValue(v))) = map.next_entry()? {
            if k.is_nil() {
                // sigs.k8s.io/yaml cannot turn a null key into JSON
                return Err(serde::de::Error::custom(format!(
                    "unsupported map key of type: %!s(<nil>), key: <nil>, value: {}",
                    go_sharp_v(&v)
                )));
            }
            if matches!(k, Value::List(_) | Value::Map(_)) {
                // sigs.k8s.io/yaml only takes scalar keys
                return Err(serde::de::Error::custom(format!(
                    "invalid map key: {}",
                    go_sharp_v(&k)
                )));
            }
            m.insert(key_string(&k), v);
        }
        Ok(Value::map(m))
    }
}

/// Go's `%#v` of a value go-yaml v2 decoded (for `invalid map key` errors).
fn go_sharp_v(v: &Value) -> String {
    match v {
        Value::String(s) => ferroflux_gotemplate::gofmt::quote(s),
        Value::Nil | Value::NoValue => "interface {}(nil)".into(),
        Value::Bool(b) => b.to_string(),
        Value::Float(f) => ferroflux_gotemplate::gofmt::format_float_shortest(*f),
        Value::List(l) => format!(
            "[]interface {{}}{{{}}}",
            l.iter().map(go_sharp_v).collect::<Vec<_>>().join(", ")
        ),
        Value::Map(m) => format!(
            "map[interface {{}}]interface {{}}{{{}}}",
            m.borrow()
                .iter()
                .map(|(k, v)| format!(
                    "{}:{}",
                    ferroflux_gotemplate::gofmt::quote(k),
                    go_sharp_v(v)
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_go_string(),
    }
}

fn key_string(k: &Value) -> String {
    match k {
        Value::String(s) => s.to_string(),
        Value::Nil | Value::NoValue => "null".into(),
        Value::Float(f) => json_number(*f),
        other => other.to_go_string(),
    }
}

/// Reader options as go-yaml reads: YAML 1.1 octals, the last of duplicate keys wins, and
/// comments are not collected (go-yaml keeps none while reading values). Collecting them made the
/// parser buffer the comments between a key and its value while it looks ahead, and refuse
/// more than 96 of them ("too many buffered comments"): a values.yaml with a long
/// commented-out block before a key failed to load where Helm reads it.
fn read_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        legacy_octal_numbers: true,
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::LastWins,
        emit_comments: false,
    }
}

/// One plain scalar as the full reader types it (for the fast reader).
fn resolve_scalar(s: &str) -> Option<Value> {
    serde_saphyr::from_str_with_options::<YValue>(s, read_options())
        .ok()
        .map(|y| y.0)
}

/// Parse one YAML document into a value (numbers become float64, like sigs.k8s.io/yaml). As
/// go-yaml's `Unmarshal`, only the first document of a stream is read; errors read like
/// go-yaml's (`yaml: line 2: mapping values are not allowed in this context`).
pub fn parse_yaml(text: &str) -> Result<Value, String> {
    if text.trim().is_empty() {
        return Ok(Value::Nil);
    }
    if let Some(v) = fast::parse(text, &resolve_scalar) {
        // debug builds (the test suites) check every text the fast reader reads against the
        // full reader
        #[cfg(debug_assertions)]
        {
            let full = parse_yaml_full(text).map(|f| format!("{f:?}"));
            assert_eq!(
                full,
                Ok(format!("{v:?}")),
                "fast and full YAML readers differ on {text:?}"
            );
        }
        return Ok(v);
    }
    parse_yaml_full(text)
}

/// [`parse_yaml`] with the full reader only.
fn parse_yaml_full(text: &str) -> Result<Value, String> {
    let opts = read_options();
    let tab = tab_line_error(text);
    match serde_saphyr::from_str_with_options::<YValue>(text, opts) {
        Ok(y) => match tab {
            Some((_, e)) => Err(e),
            None => Ok(y.0),
        },
        Err(e) => {
            let raw = e.to_string();
            let (line, col, msg) = error_location(&raw).unwrap_or((0, 0, String::new()));
            if let Some((tab_line, e)) = tab
                && tab_line < line
            {
                return Err(e);
            }
            if msg.starts_with("multiple YAML documents detected") && line > 0 {
                // only the first document counts: parse the text before the `---` line that
                // starts the second one
                let at = offset_of(text, line, col);
                let cut = text[..at]
                    .rmatch_indices("---")
                    .map(|(i, _)| i)
                    .find(|i| *i == 0 || text.as_bytes()[i - 1] == b'\n')
                    .unwrap_or(at);
                if cut < text.len() && cut > 0 {
                    return parse_yaml(&text[..cut]);
                }
            }
            Err(go_yaml_error(text, &raw))
        }
    }
}

/// What the line before a blank line left the scanner in (for tabs on blank lines).
#[derive(Clone, Copy)]
enum LineState {
    /// A plain scalar that may go on: a tab below this column breaks the indentation.
    Plain(usize),
    /// Inside a block scalar whose parent is at this column; content indentation once known.
    Block(usize, Option<usize>),
    /// Inside a quoted scalar or flow collection spanning lines (tabs are fine there):
    /// the closing quote, or the flow depth.
    Open(char, i32),
    /// Anything else: a tab cannot start a token.
    Other,
}

/// Open minus closed flow brackets on a line (quotes not considered).
fn flow_depth(s: &str) -> i32 {
    s.chars()
        .map(|c| match c {
            '[' | '{' => 1,
            ']' | '}' => -1,
            _ => 0,
        })
        .sum()
}

/// go-yaml refuses a tab in the leading whitespace of an otherwise blank line in block
/// context, which serde-saphyr accepts: `(1-based line, go-yaml's error)` of the first one.
fn tab_line_error(text: &str) -> Option<(usize, String)> {
    if !text.contains('\t') {
        return None;
    }
    let mut state = LineState::Other;
    for (i, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        if let LineState::Open(q, depth) = state {
            state = if q == ']' {
                let d = depth + flow_depth(line);
                if d > 0 {
                    LineState::Open(q, d)
                } else {
                    LineState::Other
                }
            } else if line.contains(q) {
                LineState::Other
            } else {
                state
            };
            continue;
        }
        if line.trim().is_empty() {
            let Some(tab) = line.find('\t') else {
                continue;
            };
            let problem = match state {
                LineState::Plain(limit) if tab < limit => {
                    "found a tab character that violates indentation"
                }
                LineState::Plain(_) => continue,
                LineState::Block(parent, content) => {
                    if content.is_some_and(|c| tab >= c) || (content.is_none() && tab > parent) {
                        continue;
                    }
                    "found a tab character where an indentation space is expected"
                }
                LineState::Other => "found character that cannot start any token",
                LineState::Open(..) => continue,
            };
            return Some((i + 1, format!("yaml: {}{problem}", go_where(i, i, true))));
        }
        if let LineState::Block(parent, content) = state {
            let inside = match content {
                Some(c) => indent >= c,
                None => indent > parent,
            };
            if inside {
                state = LineState::Block(parent, Some(content.unwrap_or(indent)));
                continue;
            }
        }
        let body = line.trim_end();
        if body == "---" || body == "..." || body.starts_with("--- ") || line.contains('\t') {
            state = LineState::Other;
            continue;
        }
        // where the innermost collection of this line starts
        let mut col = indent;
        let mut rest = &line[indent..];
        let mut dash = None;
        while let Some(r) = rest.strip_prefix("- ") {
            dash = Some(col);
            let r2 = r.trim_start_matches(' ');
            col += 2 + (r.len() - r2.len());
            rest = r2;
        }
        let key = rest.find(": ").is_some() || rest.trim_end().ends_with(':');
        let value = if key {
            rest.split_once(": ").map_or("", |(_, v)| v).trim()
        } else {
            rest.trim()
        };
        let parent = if key { col } else { dash.unwrap_or(col) };
        state = if let Some(q) = value.chars().next().filter(|c| *c == '"' || *c == '\'')
            && (value.len() < 2 || !value.ends_with(q))
        {
            LineState::Open(q, 0)
        } else if value.starts_with(['[', '{']) && flow_depth(value) > 0 {
            LineState::Open(']', flow_depth(value))
        } else if value.contains(" #") || value.starts_with('#') {
            LineState::Other
        } else if value.starts_with(['|', '>'])
            && value[1..]
                .chars()
                .all(|c| matches!(c, '-' | '+' | '0'..='9'))
        {
            LineState::Block(parent, None)
        } else if value.is_empty()
            || value.ends_with(['\'', '"', ']', '}'])
            || value.starts_with(['\'', '"', '[', '{', '&', '*', '!'])
        {
            LineState::Other
        } else if key || dash.is_some() {
            LineState::Plain(parent + 1)
        } else {
            // a continuation line of a plain scalar keeps its collection
            match state {
                LineState::Plain(limit) => LineState::Plain(limit),
                _ => LineState::Other,
            }
        };
    }
    None
}

/// `(line, column, message)` of a serde-saphyr error (`error: line L column C: MESSAGE`).
fn error_location(raw: &str) -> Option<(usize, usize, String)> {
    let first = raw.lines().next()?;
    let rest = first.strip_prefix("error: line ")?;
    let (line, rest) = rest.split_once(" column ")?;
    let (col, msg) = rest.split_once(": ")?;
    Some((line.parse().ok()?, col.parse().ok()?, msg.to_string()))
}

/// Byte offset of 1-based `line`/`col` (columns count characters).
fn offset_of(text: &str, line: usize, col: usize) -> usize {
    let mut off = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            return off
                + l.char_indices()
                    .nth(col.saturating_sub(1))
                    .map_or(l.len(), |(b, _)| b);
        }
        off += l.len();
    }
    text.len()
}

/// go-yaml's `line N: ` prefix: a scanner error names the problem's line (1-based), a
/// parser error the problem's 0-based line; when that is 0, the context's 0-based line; when
/// that is 0 too, nothing.
fn go_where(problem0: usize, context0: usize, scanner: bool) -> String {
    let line = if problem0 != 0 {
        if scanner { problem0 + 1 } else { problem0 }
    } else {
        context0
    };
    if line == 0 {
        String::new()
    } else {
        format!("line {line}: ")
    }
}

/// Translate a serde-saphyr error into go-yaml v2's words (`yaml: line N: PROBLEM`); errors
/// without a go-yaml counterpart keep serde-saphyr's first line.
fn go_yaml_error(text: &str, raw: &str) -> String {
    if let Some(i) = raw.find("unsupported map key of type: ") {
        return raw[i..].lines().next().unwrap_or_default().to_string();
    }
    if let Some(i) = raw.find("invalid map key: ") {
        return format!("yaml: {}", raw[i..].lines().next().unwrap_or_default());
    }
    let Some((line, col, msg)) = error_location(raw) else {
        return raw.lines().next().unwrap_or(raw).to_string();
    };
    let l0 = line.saturating_sub(1);
    let eof0 = text.matches('\n').count();
    let scanner =
        |problem: &str, p0: usize, c0: usize| format!("yaml: {}{problem}", go_where(p0, c0, true));
    let parser =
        |problem: &str, p0: usize, c0: usize| format!("yaml: {}{problem}", go_where(p0, c0, false));
    if msg.starts_with("tabs disallowed") || msg.starts_with("unexpected character") {
        return scanner("found character that cannot start any token", l0, l0);
    }
    if msg == "mapping values are not allowed in this context" {
        return scanner(&msg, l0, l0);
    }
    if msg == "unclosed quote" {
        return scanner("found unexpected end of stream", eof0, l0);
    }
    if let Some(p) = msg.strip_prefix("while parsing a block collection, ") {
        return parser(p, l0, 0);
    }
    if let Some(p) = msg.strip_prefix("while parsing a block mapping, ") {
        return parser(p, l0, 0);
    }
    if msg.ends_with("found unknown escape character") {
        // the problem is the escape itself, the context the scalar's start
        let start = offset_of(text, line, col);
        let body = &text[start..];
        let mut p0 = l0;
        let mut chars = body.char_indices().skip(1);
        while let Some((_, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, e)) = chars.next() {
                        if !"0abtnvfre \"/\\N_LPxuU\t\n".contains(e) {
                            break;
                        }
                        if e == '\n' {
                            p0 += 1;
                        }
                    }
                }
                '"' => break,
                '\n' => p0 += 1,
                _ => {}
            }
        }
        return scanner("found unknown escape character", p0, l0);
    }
    if let Some(b) = msg.strip_prefix("unclosed bracket '") {
        let close = if b.starts_with('{') { '}' } else { ']' };
        let last = text.trim_end().chars().last().unwrap_or(' ');
        let problem = if matches!(last, '[' | '{' | ',') {
            "did not find expected node content".to_string()
        } else {
            format!("did not find expected ',' or '{close}'")
        };
        // the stream-end token sits on a line of its own
        let end0 = eof0 + usize::from(!text.is_empty() && !text.ends_with('\n'));
        return parser(&problem, end0, l0);
    }
    let expected_key = || {
        // junk after a complete value: the parser wanted the next key (or `-` in a sequence)
        let this_line = text.lines().nth(l0).unwrap_or_default().trim_start();
        if this_line.starts_with("- ") {
            parser("did not find expected '-' indicator", l0, 0)
        } else {
            parser("did not find expected key", l0, 0)
        }
    };
    let at_char = text[offset_of(text, line, col)..].chars().next();
    if msg == "misplaced bracket"
        || (msg.starts_with("invalid trailing content after ") && at_char != Some(':'))
    {
        return expected_key();
    }
    if let Some(p) = msg.strip_prefix("while scanning an anchor or alias, ") {
        return scanner(p, l0, l0);
    }
    if msg == "a block scalar content cannot start with a tab" {
        return scanner(
            "found a tab character where an indentation space is expected",
            l0 + 1,
            l0,
        );
    }
    if msg == "invalid trailing content after double-quoted scalar" {
        // a quoted key over several lines: where a key is required at this indentation
        // (inside a block mapping), go-yaml gives up on the simple key at the line break;
        // otherwise it stops at the `:`
        let at = offset_of(text, line, col);
        let quote_at = text[..at].rfind('"').and_then(|end| text[..end].rfind('"'));
        if let Some(q) = quote_at {
            let q_line0 = text[..q].matches('\n').count();
            let q_col = q - text[..q].rfind('\n').map_or(0, |i| i + 1);
            let required = text[..q]
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
                .any(|l| l.len() - l.trim_start().len() == q_col);
            if required {
                return scanner("could not find expected ':'", q_line0 + 1, q_line0);
            }
        }
        return scanner("mapping values are not allowed in this context", l0, l0);
    }
    if msg == "simple key expected ':'" {
        // go-yaml notices at the line break, so the problem is on the next line
        return scanner("could not find expected ':'", l0 + 1, l0);
    }
    if msg.starts_with("did not find expected <document start>")
        || msg.starts_with("missing explicit document end marker before directive")
    {
        let directive = text.lines().position(|l| {
            l.starts_with('%') && !l.starts_with("%YAML ") && !l.starts_with("%TAG ")
        });
        if let Some(d0) = directive {
            return scanner("found unknown directive name", d0, d0);
        }
    }
    if msg.starts_with("invalid ") {
        // a scalar that its explicit tag (`!!int x`) cannot hold: go-yaml's decoder error
        let at = offset_of(text, line, col);
        let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
        let line_text = &text[line_start..];
        let line_text = line_text.split('\n').next().unwrap_or_default();
        if let Some(t) = line_text
            .get(..at - line_start)
            .and_then(|head| head.rfind("!!"))
        {
            let rest = &line_text[t + 2..];
            let tag: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            let value = rest[tag.len()..].trim();
            return format!("yaml: cannot decode !!str `{value}` as a !!{tag}");
        }
    }
    if msg == "alias references unknown anchor" {
        let at = offset_of(text, line, col);
        let name: String = text[at..]
            .trim_start_matches('*')
            .chars()
            .take_while(|c| !c.is_whitespace() && !",[]{}".contains(*c))
            .collect();
        return format!("yaml: unknown anchor '{name}' referenced");
    }
    format!("yaml: line {line}: {msg}")
}

/// Helm v4's `LoadValues`: the stream is split into documents at `---` lines (as
/// apimachinery's YAMLReader does) and each document's map is merged over the previous ones.
/// Errors read like helm's (after `cannot load values.yaml: ` or `failed to parse FILE: `).
pub fn load_values(text: &str) -> Result<BTreeMap<String, Value>, String> {
    let mut docs: Vec<String> = Vec::new();
    let mut buf = String::new();
    let mut text = text.to_string();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    for line in text.split_inclusive('\n') {
        if let Some(rest) = line.strip_prefix("---") {
            let trimmed = rest.trim();
            if !trimmed.is_empty() && !trimmed.starts_with('#') {
                return Err(format!(
                    "error reading yaml document: invalid Yaml document separator: {trimmed}"
                ));
            }
            if !buf.is_empty() {
                docs.push(std::mem::take(&mut buf));
            }
            continue;
        }
        buf.push_str(line);
    }
    if !buf.is_empty() {
        docs.push(buf);
    }
    let mut out = BTreeMap::new();
    for d in docs {
        let v = parse_yaml(&d).map_err(|e| {
            format!("cannot unmarshal yaml document: error converting YAML to JSON: {e}")
        })?;
        match v {
            Value::Nil => {}
            Value::Map(m) => {
                let m = m.borrow().clone();
                out = crate::values::merge_maps(&out, &m);
            }
            other => {
                return Err(format!(
                    "cannot unmarshal yaml document: error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                    json_kind(&other)
                ));
            }
        }
    }
    Ok(out)
}

/// helm3's `ReadValues`: the first document, which must be a map (or empty).
pub fn load_values_v3(text: &str) -> Result<BTreeMap<String, Value>, String> {
    match parse_yaml(text).map_err(|e| format!("error converting YAML to JSON: {e}"))? {
        Value::Nil => Ok(BTreeMap::new()),
        Value::Map(m) => Ok(m.borrow().clone()),
        other => Err(format!(
            "error unmarshaling JSON: while decoding JSON: json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
            json_kind(&other)
        )),
    }
}

/// Go's JSON name of a value's kind, as `json.Unmarshal` errors print it.
pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::List(_) => "array",
        Value::String(_) => "string",
        Value::Bool(_) => "bool",
        Value::Map(_) => "object",
        Value::Float(_) | Value::Int(_) | Value::Int64(_) | Value::Uint(_) => "number",
        _ => "value",
    }
}

/// Parse every document of a multi-document YAML stream.
pub fn parse_yaml_docs(text: &str) -> Result<Vec<Value>, String> {
    let opts = read_options();
    serde_saphyr::from_multiple_with_options::<YValue>(text, opts)
        .map(|v| v.into_iter().map(|y| y.0).collect())
        .map_err(|e| e.to_string())
}

/// Parse JSON like Go's `json.Unmarshal` into `interface{}` (numbers are float64).
pub fn parse_json(text: &str) -> Result<Value, String> {
    if let Some(e) = go_json_syntax_error(text) {
        return Err(e);
    }
    let j: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    Ok(from_json(&j))
}

fn from_json(j: &serde_json::Value) -> Value {
    match j {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => Value::Float(n.as_f64().unwrap_or(0.0)),
        serde_json::Value::String(s) => Value::str(s.as_str()),
        serde_json::Value::Array(a) => Value::list(a.iter().map(from_json).collect()),
        serde_json::Value::Object(o) => {
            Value::map(o.iter().map(|(k, v)| (k.clone(), from_json(v))).collect())
        }
    }
}

/// Go's `encoding/json` float64 text (`null` for NaN and the infinities, which callers
/// refuse before).
pub fn json_number(f: f64) -> String {
    num::json_float(f).unwrap_or_else(|| "null".into())
}

fn json_string(s: &str, escape_html: bool, out: &mut String) {
    ferroflux_goyaml::json::write_string(s, escape_html, out);
}

/// Go's `json.Marshal` (or `MarshalIndent` with `indent`, or without HTML escaping).
pub fn to_json(v: &Value, escape_html: bool, indent: Option<&str>) -> Result<String, String> {
    let mut out = String::new();
    write_json(v, escape_html, indent, 0, &mut out, 0)?;
    Ok(out)
}

fn newline(out: &mut String, indent: Option<&str>, level: usize) {
    if let Some(ind) = indent {
        out.push('\n');
        for _ in 0..level {
            out.push_str(ind);
        }
    }
}

fn write_json(
    v: &Value,
    eh: bool,
    indent: Option<&str>,
    level: usize,
    out: &mut String,
    depth: usize,
) -> Result<(), String> {
    if depth > 1000 {
        return Err("json: unsupported value: encountered a cycle".into());
    }
    match v {
        Value::NoValue | Value::Nil => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) | Value::Int64(i) => out.push_str(&i.to_string()),
        Value::Uint(u) => out.push_str(&u.to_string()),
        Value::Byte(b) => out.push_str(&b.to_string()),
        Value::Float(f) => {
            if f.is_nan() || f.is_infinite() {
                return Err(format!(
                    "json: unsupported value: {}",
                    num::format_float_shortest(*f)
                ));
            }
            out.push_str(&json_number(*f))
        }
        Value::String(s) => json_string(s, eh, out),
        Value::Bytes(b) => {
            use base64::Engine as _;
            let s = base64::engine::general_purpose::STANDARD.encode(b);
            json_string(&s, eh, out)
        }
        Value::List(l) => {
            out.push('[');
            for (i, e) in l.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, indent, level + 1);
                write_json(e, eh, indent, level + 1, out, depth + 1)?;
            }
            if !l.is_empty() {
                newline(out, indent, level);
            }
            out.push(']');
        }
        Value::Map(_) | Value::Object(_) if v.as_map().is_some() => {
            let m = v.as_map().unwrap_or_default();
            let m = m.borrow();
            out.push('{');
            for (i, (k, e)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, indent, level + 1);
                json_string(k, eh, out);
                out.push(':');
                if indent.is_some() {
                    out.push(' ');
                }
                write_json(e, eh, indent, level + 1, out, depth + 1)?;
            }
            if !m.is_empty() {
                newline(out, indent, level);
            }
            out.push('}');
        }
        Value::Object(o) if o.marshal_text().is_none() && o.marshal_value().is_some() => {
            let mv = o.marshal_value().unwrap_or_default();
            write_json(&mv, eh, indent, level, out, depth)?;
        }
        Value::Object(o) => json_string(
            &o.marshal_text().unwrap_or_else(|| o.format(false)),
            eh,
            out,
        ),
        Value::Map(_) => out.push_str("{}"),
        Value::Func(_) => return Err("json: unsupported type: func()".into()),
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// YAML writing: helm's values turned into the tree the Go encoders see, walked into goyaml's
// emitter (go-yaml v2 as sigs.k8s.io/yaml runs it for `toYaml`, yaml.v3 for `toYamlPretty`)

/// A value after the JSON round trip that `yaml.Marshal` performs.
enum Node {
    Null,
    Bool(bool),
    /// Number text as go-yaml re-emits it.
    Num(String),
    Str(String),
    Seq(Vec<Node>),
    /// Keys in the order Go's encoders sort a map's keys.
    Map(Vec<(String, Node)>),
}

fn sorted(mut entries: Vec<(String, Node)>) -> Node {
    entries.sort_by(|a, b| ferroflux_goyaml::order::key_cmp(&a.0, &b.0));
    Node::Map(entries)
}

fn to_node(v: &Value, depth: usize) -> Result<Node, String> {
    if depth > 1000 {
        return Err("json: unsupported value: encountered a cycle".into());
    }
    Ok(match v {
        Value::NoValue | Value::Nil => Node::Null,
        Value::Bool(b) => Node::Bool(*b),
        Value::Int(i) | Value::Int64(i) => Node::Num(i.to_string()),
        Value::Uint(u) => Node::Num(u.to_string()),
        Value::Byte(b) => Node::Num(b.to_string()),
        Value::Float(f) => Node::Num(num::v2_float_after_json(*f).ok_or_else(|| {
            format!(
                "json: unsupported value: {}",
                num::format_float_shortest(*f)
            )
        })?),
        Value::String(s) => Node::Str(s.to_string()),
        Value::Bytes(b) => {
            use base64::Engine as _;
            Node::Str(base64::engine::general_purpose::STANDARD.encode(b))
        }
        Value::List(l) => Node::Seq(
            l.iter()
                .map(|e| to_node(e, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Value::Map(_) | Value::Object(_) if v.as_map().is_some() => {
            let m = v.as_map().unwrap_or_default();
            let m = m.borrow();
            let mut out = Vec::with_capacity(m.len());
            for (k, e) in m.iter() {
                out.push((k.clone(), to_node(e, depth + 1)?));
            }
            sorted(out)
        }
        Value::Object(o) if o.marshal_text().is_none() && o.marshal_value().is_some() => {
            to_node(&o.marshal_value().unwrap_or_default(), depth)?
        }
        Value::Object(o) => Node::Str(o.marshal_text().unwrap_or_else(|| o.format(false))),
        Value::Map(_) => Node::Map(Vec::new()),
        Value::Func(_) => return Err("json: unsupported type: func()".into()),
    })
}

/// A value as go-yaml v3 encodes Go values directly (no JSON round trip).
fn to_node_direct(v: &Value, depth: usize) -> Result<Node, String> {
    if depth > 1000 {
        return Err("encountered a cycle".into());
    }
    Ok(match v {
        Value::Float(f) => Node::Num(num::v3_float(*f)),
        Value::List(l) => Node::Seq(
            l.iter()
                .map(|e| to_node_direct(e, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Value::Map(_) => {
            let m = v.as_map().unwrap_or_default();
            let m = m.borrow();
            let mut out = Vec::with_capacity(m.len());
            for (k, e) in m.iter() {
                out.push((k.clone(), to_node_direct(e, depth + 1)?));
            }
            sorted(out)
        }
        other => to_node(other, depth)?,
    })
}

fn emit(e: &mut Emitter, n: &Node) {
    match n {
        Node::Null => e.plain("null"),
        Node::Bool(b) => e.plain(if *b { "true" } else { "false" }),
        Node::Num(s) => e.plain(s),
        Node::Str(s) => e.string(s),
        Node::Seq(items) if items.is_empty() => e.empty_seq(),
        Node::Map(entries) if entries.is_empty() => e.empty_map(),
        Node::Seq(items) => {
            e.begin_seq();
            for it in items {
                emit(e, it);
            }
            e.end();
        }
        Node::Map(entries) => {
            e.begin_map();
            for (k, v) in entries {
                e.key(k);
                emit(e, v);
            }
            e.end();
        }
    }
}

fn write_yaml(n: &Node, mode: Mode) -> String {
    let mut e = Emitter::new(mode, String::new());
    emit(&mut e, n);
    e.finish()
}

/// Helm's `toYaml`: `yaml.Marshal` output (with its trailing newline).
pub fn to_yaml(v: &Value) -> Result<String, String> {
    Ok(write_yaml(&to_node(v, 0)?, Mode::V2))
}

/// Helm's `toYamlPretty`: go-yaml v3's encoder with indent 2 (sequences indented under keys,
/// no line folding, v3 quoting).
pub fn to_yaml_pretty(v: &Value) -> Result<String, String> {
    Ok(write_yaml(&to_node_direct(v, 0)?, Mode::v3(2)))
}

/// Check JSON syntax the way Go's `encoding/json` scanner reports errors.
pub fn go_json_syntax_error(text: &str) -> Option<String> {
    struct P<'a> {
        b: &'a [u8],
        i: usize,
    }
    fn ch(c: u8) -> String {
        match c {
            b'\'' => "'\\''".to_string(),
            b'"' => "'\"'".to_string(),
            c if c.is_ascii_graphic() || c == b' ' => format!("'{}'", c as char),
            c => format!("'\\x{c:02x}'"),
        }
    }
    impl P<'_> {
        fn ws(&mut self) {
            while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
                self.i += 1;
            }
        }
        fn eof(&self) -> String {
            "unexpected end of JSON input".into()
        }
        fn value(&mut self) -> Result<(), String> {
            self.ws();
            let Some(&c) = self.b.get(self.i) else {
                return Err(self.eof());
            };
            match c {
                b'{' => {
                    self.i += 1;
                    self.ws();
                    if self.b.get(self.i) == Some(&b'}') {
                        self.i += 1;
                        return Ok(());
                    }
                    loop {
                        self.ws();
                        match self.b.get(self.i) {
                            None => return Err(self.eof()),
                            Some(b'"') => self.string()?,
                            Some(&c) => {
                                return Err(format!(
                                    "invalid character {} looking for beginning of object key string",
                                    ch(c)
                                ));
                            }
                        }
                        self.ws();
                        match self.b.get(self.i) {
                            None => return Err(self.eof()),
                            Some(b':') => self.i += 1,
                            Some(&c) => {
                                return Err(format!(
                                    "invalid character {} after object key",
                                    ch(c)
                                ));
                            }
                        }
                        self.value()?;
                        self.ws();
                        match self.b.get(self.i) {
                            None => return Err(self.eof()),
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                return Ok(());
                            }
                            Some(&c) => {
                                return Err(format!(
                                    "invalid character {} after object key:value pair",
                                    ch(c)
                                ));
                            }
                        }
                    }
                }
                b'[' => {
                    self.i += 1;
                    self.ws();
                    if self.b.get(self.i) == Some(&b']') {
                        self.i += 1;
                        return Ok(());
                    }
                    loop {
                        self.value()?;
                        self.ws();
                        match self.b.get(self.i) {
                            None => return Err(self.eof()),
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                return Ok(());
                            }
                            Some(&c) => {
                                return Err(format!(
                                    "invalid character {} after array element",
                                    ch(c)
                                ));
                            }
                        }
                    }
                }
                b'"' => self.string(),
                b't' => self.lit("true"),
                b'f' => self.lit("false"),
                b'n' => self.lit("null"),
                b'-' | b'0'..=b'9' => self.number(),
                c => Err(format!(
                    "invalid character {} looking for beginning of value",
                    ch(c)
                )),
            }
        }
        fn lit(&mut self, w: &str) -> Result<(), String> {
            for (k, &e) in w.as_bytes().iter().enumerate() {
                match self.b.get(self.i + k) {
                    None => return Err(self.eof()),
                    Some(&c) if c != e => {
                        return Err(format!(
                            "invalid character {} in literal {w} (expecting {})",
                            ch(c),
                            ch(e)
                        ));
                    }
                    _ => {}
                }
            }
            self.i += w.len();
            Ok(())
        }
        fn string(&mut self) -> Result<(), String> {
            self.i += 1;
            loop {
                match self.b.get(self.i) {
                    None => return Err(self.eof()),
                    Some(b'"') => {
                        self.i += 1;
                        return Ok(());
                    }
                    Some(b'\\') => self.i += 2,
                    Some(&c) if c < 0x20 => {
                        return Err(format!("invalid character {} in string literal", ch(c)));
                    }
                    _ => self.i += 1,
                }
            }
        }
        fn number(&mut self) -> Result<(), String> {
            if self.b.get(self.i) == Some(&b'-') {
                self.i += 1;
            }
            let start = self.i;
            while self.i < self.b.len()
                && (self.b[self.i].is_ascii_digit() || b".eE+-".contains(&self.b[self.i]))
            {
                self.i += 1;
            }
            if self.i == start {
                return match self.b.get(self.i) {
                    None => Err(self.eof()),
                    Some(&c) => Err(format!("invalid character {} in numeric literal", ch(c))),
                };
            }
            Ok(())
        }
    }
    let mut p = P {
        b: text.as_bytes(),
        i: 0,
    };
    if let Err(e) = p.value() {
        return Some(e);
    }
    p.ws();
    if let Some(&c) = p.b.get(p.i) {
        return Some(format!("invalid character {} after top-level value", ch(c)));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn y(v: &Value) -> String {
        to_yaml(v).unwrap()
    }

    #[test]
    fn parses_like_sigs_yaml() {
        let v = parse_yaml("a: yes\nb: 0755\nc: 1e3\nd: [1, x]\n").unwrap();
        assert_eq!(v.to_go_string(), "map[a:true b:493 c:1000 d:[1 x]]");
    }

    /// Where the fast reader reads a text, the full reader reads the same value.
    fn agree(text: &str) -> bool {
        match fast::parse(text, &resolve_scalar) {
            Some(v) => {
                let full = parse_yaml_full(text);
                assert_eq!(
                    full.as_ref().map(|f| format!("{f:?}")),
                    Ok(format!("{v:?}")),
                    "fast and full readers differ on {text:?}"
                );
                true
            }
            None => false,
        }
    }

    #[test]
    fn fast_reader_agrees_with_full_reader() {
        let read = [
            "a: 1\nb: x\n",
            "a:\n  b: c\n  d:\n  - 1\n  - two\n  e: []\n  f: {}\n",
            "k: v # comment\n# c\nl: 'it''s' # c\nm: \"q\\\"x\\\\y\\n\"\n",
            "s: |\n  line1\n\n  line2\n\nt: |-\n  x\n  y\nu: |+\n  x\n\n\nv: >\n  a\n  b\n\n  c\nw: x\n",
            "s: |\n  a\n  b",
            "s: >-\n  a\n  b",
            "s: |+\n  a\n",
            "- a\n- b: 1\n  c: 2\n-   d: x\n    e:\n    - f\n-\n  g: h\n- \n",
            "a:\n- 1\n- 2\nb: null\nc: ~\nd: true\ne: no\nf: 0755\ng: 1.5\nh: 0x1F\ni: -3\nj: Yes\nk: 2024-01-01\n",
            "a: infinity\nb: NaN\nc: nanny\nd: Inf\ne: information\n",
            "a: http://x:80/y\nb: a:b\nc: x #y\nd: x#y\n",
            "\"quoted key\": 1\n'single': 2\nplain key: 3\n",
            "a:\n  # comment\n  b: 1\n\n  c: 2\n",
            "a: [1, 2]\nb: [\"x\", 'y', z, true, 0755]\nc: [ ]\nd:\n  []\ne: [1,2]\n",
            "- --flag=1\n- -3\n- \"k\": v\n- 'x'\n- |\n  x\n- >-\n  y\n- [a]\n- --a=b,c\n- :8080\n",
            "a: one\n  two\n\n  three\n   four\nb:\n- x\n  y\n# c\nc: z\n  w\n",
            "description: NGINX is\n  a server, and (more)\n  its ability.\nk: v\n",
            "d: one of\n  \"a\", \"b\" or 'c'\n  [x] {y}\n",
            "a: |\nb: >-\n\nc: |\n# c\nd: x\ninfo: 1\nnull_key: 2\n",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n  annotations:\n    helm.sh/hook: pre-install\ndata:\n  f: |\n    # not a comment\n    k=v",
        ];
        for t in read {
            assert!(agree(t), "fast reader declined {t:?}");
        }
        let declined = [
            "a: &x 1\nb: *x\n",
            "a: !!str 1\n",
            "a: b\n  c: d\n",
            "a: b\n  - c\n",
            "a: b\n  # c\n  d\n",
            "a: 'x\n  y'\n",
            "a: 1\na: 2\n",
            "a:\tb\n",
            "? a\n: b\n",
            "a: |2\n   x\n",
            "a: >\n  x\n    y\n  z\n",
            "1: a\n",
            "a: b: c\n",
            "- - a\n",
            "x\n",
            "a: 1\n---\nb: 2\n",
            "a: |\n   \n  x\n",
            "a: [1, [2]]\n",
            "a: [1, {b: 2}]\n",
            "a: [1,]\n",
            "a: [1\n",
        ];
        for t in declined {
            assert!(!agree(t), "fast reader read {t:?}");
        }
        // every YAML file of the chart corpus, where present
        let root = std::env::var_os("FERROFLUX_CORPUS")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus")
            })
            .join("charts");
        let mut stack = vec![root];
        let (mut n, mut fast_read) = (0, 0);
        while let Some(d) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd.flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml")
                    && let Ok(t) = std::fs::read_to_string(&p)
                    && !t.contains("{{")
                {
                    n += 1;
                    if agree(&t) {
                        fast_read += 1;
                    }
                }
            }
        }
        eprintln!("corpus YAML files: {n}, read by the fast reader: {fast_read}");
    }

    #[test]
    fn emits_like_go_yaml_v2() {
        let v = parse_yaml("b: {x: 1, q: [a, 'true', '']}\na: \"multi\\nline\"\n").unwrap();
        assert_eq!(
            y(&v),
            "a: |-\n  multi\n  line\nb:\n  q:\n  - a\n  - \"true\"\n  - \"\"\n  x: 1\n"
        );
    }
}
