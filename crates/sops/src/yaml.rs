//! YAML store: reads documents (with comments) into the tree the way sops's yaml.v3-based
//! store does, and writes the tree back as sops does (yaml.v3 emitter, 4-space indent).

use granit_parser::{Event, Parser, Placement, ScalarStyle, Span};

use crate::tree::{Branches, Comment, Entry, Node};

/// Deepest accepted nesting.
const MAX_DEPTH: usize = 128;
/// Most nodes a document may expand to (aliases included).
const MAX_NODES: usize = 1_000_000;

type Ev<'a> = (Event<'a>, Span);

struct Reader<'a> {
    parser: Parser<'a, granit_parser::StrInput<'a>>,
    /// Read as kustomize-controller sees a built resource (kyaml to JSON): no comments,
    /// timestamps left as their text.
    json_like: bool,
    /// Comments read but not yet placed: text, same-line, column.
    pending: Vec<(String, bool, usize)>,
    /// Columns of the block collections along the last-element path of the node just read
    /// (itself first); empty after a scalar.
    chain: Vec<usize>,
    /// Column of the mapping key whose value is about to be read.
    value_key_col: Option<usize>,
    anchors: Vec<(usize, Node)>,
    nodes: usize,
}

fn pos(span: &Span) -> String {
    format!("line {}", span.start.line())
}

/// Parse a YAML stream into one branch per document.
pub(crate) fn read(src: &str) -> Result<Branches, String> {
    read_with(src, false)
}

/// Parse; with `json_like`, drop comments and keep timestamps as text, as a document goes
/// through kustomize's JSON form before kustomize-controller decrypts it.
pub(crate) fn read_with(src: &str, json_like: bool) -> Result<Branches, String> {
    // comments between a key and its value are buffered while the parser looks ahead; the
    // input is already bounded in size, so do not bound their number
    let mut options = granit_parser::Options::default();
    options.max_buffered_comment_events = usize::MAX;
    let mut r = Reader {
        json_like,
        parser: Parser::new_from_str_with_options(src, options),
        pending: Vec::new(),
        chain: Vec::new(),
        value_key_col: None,
        anchors: Vec::new(),
        nodes: 0,
    };
    let mut branches = Vec::new();
    while let Some((ev, span)) = r.next()? {
        match ev {
            Event::StreamStart | Event::DocumentEnd => {}
            Event::StreamEnd => break,
            Event::DocumentStart(..) => {
                r.anchors.clear();
                r.nodes = 0;
                let Some((ev2, span2)) = r.next()? else {
                    break;
                };
                let mut branch = match ev2 {
                    Event::DocumentEnd => Vec::new(),
                    Event::MappingStart(..) => match r.node(ev2, span2, &[], 0)? {
                        Node::Map(entries) => entries,
                        _ => Vec::new(),
                    },
                    Event::SequenceStart(..) => {
                        return Err("YAML documents that are sequences are not supported".into());
                    }
                    Event::Scalar(ref text, style, _, ref tag) => {
                        let v =
                            resolve_scalar(text, style, tag.as_deref().map(tag_text).as_deref());
                        if v != Node::Null {
                            return Err("YAML documents that are values are not supported".into());
                        }
                        Vec::new()
                    }
                    _ => return Err(format!("{}: unexpected YAML event", pos(&span2))),
                };
                let top = r.chain.clone();
                let own = top.split_first().map(|(c, rest)| (*c, rest));
                r.flush_into_map(&mut branch, &[], None, own);
                branches.push(branch);
            }
            _ => {
                return Err(format!(
                    "{}: unexpected YAML event outside a document",
                    pos(&span)
                ));
            }
        }
    }
    Ok(branches)
}

fn tag_text(t: &granit_parser::Tag) -> String {
    let s = format!("{}{}", t.handle(), t.suffix());
    match s.strip_prefix("tag:yaml.org,2002:") {
        Some(rest) => format!("!!{rest}"),
        None => s,
    }
}

impl<'a> Reader<'a> {
    fn next(&mut self) -> Result<Option<Ev<'a>>, String> {
        loop {
            match self.parser.next_event() {
                None => return Ok(None),
                Some(Err(e)) => {
                    return Err(format!(
                        "line {} column {}: {}",
                        e.marker().line(),
                        e.marker().col() + 1,
                        e.info()
                    ));
                }
                Some(Ok((Event::Comment(text, placement), span))) => {
                    let inline = placement == Placement::Right;
                    let col = if inline { usize::MAX } else { span.start.col() };
                    if !self.json_like {
                        self.pending.push((text.into_owned(), inline, col));
                    }
                }
                Some(Ok((Event::UnresolvedAlias(name), span))) => {
                    return Err(format!(
                        "{}: unknown anchor '{name}' referenced",
                        pos(&span)
                    ));
                }
                Some(Ok((Event::Anchor(..), _))) => {}
                Some(Ok(x)) => return Ok(Some(x)),
            }
        }
    }

    fn count(&mut self, add: usize) -> Result<(), String> {
        self.nodes = self.nodes.saturating_add(add);
        if self.nodes > MAX_NODES {
            return Err(format!(
                "YAML document expands to more than {MAX_NODES} nodes"
            ));
        }
        Ok(())
    }

    fn comment(&self, text: String, inline: bool, path: &[String]) -> Comment {
        // sops decrypts a comment under the key path of the collection yaml.v3 attached it
        // to, which is where it sits in the file; when that fails (sops itself writes some
        // foot comments one level deeper than it read them), the comment stays as it is
        Comment {
            text,
            inline,
            paths: vec![path.to_vec()],
        }
    }

    /// Pending comments indented at least `min_col` (all when `None`), in order.
    fn take_pending(&mut self, min_col: Option<usize>) -> Vec<(String, bool, usize)> {
        let pending = std::mem::take(&mut self.pending);
        let mut out = Vec::new();
        for (text, inline, col) in pending {
            if min_col.is_none_or(|m| col >= m) {
                out.push((text, inline, col));
            } else {
                self.pending.push((text, inline, col));
            }
        }
        out
    }

    fn flush_into_map(
        &mut self,
        entries: &mut Vec<Entry>,
        path: &[String],
        min_col: Option<usize>,
        own: Option<(usize, &[usize])>,
    ) {
        // at the end of the mapping (min_col set) nothing of it follows the comments
        let at_end = min_col.is_some();
        let pending = self.take_pending(min_col);
        for (text, inline, col) in pending {
            if inline && let Some(idx) = last_scalar_pair(entries) {
                let c = self.comment(text, true, path);
                entries.insert(idx, Entry::Comment(c));
                continue;
            }
            if let Some(steps) = deeper(own, col, at_end) {
                let mut p = path.to_vec();
                if let Some(t) = descend(Target::Map(entries), &mut p, steps) {
                    let c = self.comment(text, false, &p);
                    t.push(c);
                    continue;
                }
            }
            let c = self.comment(text, false, path);
            entries.push(Entry::Comment(c));
        }
    }

    fn flush_into_seq(
        &mut self,
        items: &mut Vec<Node>,
        path: &[String],
        min_col: Option<usize>,
        own: Option<(usize, &[usize])>,
    ) {
        let pending = self.take_pending(min_col);
        for (text, inline, col) in pending {
            if !inline && let Some(steps) = deeper(own, col, false) {
                let mut p = path.to_vec();
                if let Some(t) = descend(Target::Seq(items), &mut p, steps) {
                    let c = self.comment(text, false, &p);
                    t.push(c);
                    continue;
                }
            }
            let c = self.comment(text, inline, path);
            items.push(Node::Comment(c));
        }
    }

    fn node(
        &mut self,
        ev: Event<'a>,
        span: Span,
        path: &[String],
        depth: usize,
    ) -> Result<Node, String> {
        if depth > MAX_DEPTH {
            return Err(format!(
                "{}: YAML nesting deeper than {MAX_DEPTH}",
                pos(&span)
            ));
        }
        self.count(1)?;
        let key_col = self.value_key_col.take();
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let mut v = resolve_scalar(&text, style, tag.as_deref().map(tag_text).as_deref());
                if self.json_like && matches!(v, Node::Time(_)) {
                    v = Node::Str(text.to_string());
                }
                if anchor != 0 {
                    self.anchors.push((anchor, v.clone()));
                }
                self.chain.clear();
                Ok(v)
            }
            Event::Alias(id) => {
                let found = self
                    .anchors
                    .iter()
                    .rev()
                    .find(|(a, _)| *a == id)
                    .map(|(_, v)| v.clone());
                match found {
                    Some(v) => {
                        self.count(count_nodes(&v))?;
                        self.chain.clear();
                        Ok(v)
                    }
                    None => Err(format!(
                        "{}: unknown anchor referenced by alias",
                        pos(&span)
                    )),
                }
            }
            Event::SequenceStart(style, anchor, _) => {
                let block = style == granit_parser::StructureStyle::Block;
                let mut items = Vec::new();
                let mut col = None;
                let mut last_chain: Vec<usize> = Vec::new();
                loop {
                    let (ev, sp) = self
                        .next()?
                        .ok_or_else(|| format!("{}: unterminated sequence", pos(&span)))?;
                    if matches!(ev, Event::SequenceEnd) {
                        break;
                    }
                    // a block sequence item starts two columns right of its dash; a sequence
                    // that is a mapping value counts at its key's column
                    col.get_or_insert(key_col.unwrap_or(sp.start.col().saturating_sub(2)));
                    let own = own_chain(block, col, &last_chain);
                    self.flush_into_seq(&mut items, path, None, own);
                    let item = self.node(ev, sp, path, depth + 1)?;
                    last_chain = std::mem::take(&mut self.chain);
                    items.push(item);
                }
                // comments left of the sequence belong to an enclosing collection
                let own = own_chain(block, col, &last_chain);
                // a comment at the key's column may still be the mapping's (a head comment of
                // the next key, or the sequence's foot): the mapping decides
                let min = match (block, col, key_col) {
                    (false, ..) => None,
                    (true, Some(c), Some(_)) => Some(c + 1),
                    (true, c, None) => c,
                    (true, None, Some(_)) => None,
                };
                self.flush_into_seq(&mut items, path, min, own);
                self.chain = match (block, col) {
                    (true, Some(c)) => std::iter::once(c).chain(last_chain).collect(),
                    _ => Vec::new(),
                };
                let v = Node::Seq(items);
                if anchor != 0 {
                    self.anchors.push((anchor, v.clone()));
                }
                Ok(v)
            }
            Event::MappingStart(style, anchor, _) => {
                let block = style == granit_parser::StructureStyle::Block;
                let mut entries = Vec::new();
                let mut seen: Vec<(String, usize)> = Vec::new();
                let mut col = None;
                let mut last_chain: Vec<usize> = Vec::new();
                loop {
                    let (kev, ksp) = self
                        .next()?
                        .ok_or_else(|| format!("{}: unterminated mapping", pos(&span)))?;
                    if matches!(kev, Event::MappingEnd) {
                        break;
                    }
                    col.get_or_insert(ksp.start.col());
                    let own = own_chain(block, col, &last_chain);
                    self.flush_into_map(&mut entries, path, None, own);
                    let key = match self.node(kev, ksp, path, depth + 1)? {
                        Node::Str(s) => s,
                        other => {
                            return Err(format!(
                                "{}: Tree contains a non-string key ({}). Only string keys are supported",
                                pos(&ksp),
                                type_name(&other)
                            ));
                        }
                    };
                    // yaml.v3 refuses a key defined twice in one mapping
                    if let Some(line) = seen.iter().find_map(|(k, l)| (k == &key).then_some(*l)) {
                        return Err(format!(
                            "{}: mapping key {key:?} already defined at line {line}",
                            pos(&ksp)
                        ));
                    }
                    seen.push((key.clone(), ksp.start.line()));
                    let mut child = path.to_vec();
                    child.push(key.clone());
                    let (vev, vsp) = self
                        .next()?
                        .ok_or_else(|| format!("{}: mapping key without value", pos(&span)))?;
                    self.value_key_col = Some(ksp.start.col());
                    let val = self.node(vev, vsp, &child, depth + 1)?;
                    last_chain = std::mem::take(&mut self.chain);
                    entries.push(Entry::Pair(key, val));
                }
                // comments left of the mapping belong to an enclosing collection
                let own = own_chain(block, col, &last_chain);
                self.flush_into_map(&mut entries, path, if block { col } else { None }, own);
                self.chain = match (block, col) {
                    (true, Some(c)) => std::iter::once(c).chain(last_chain).collect(),
                    _ => Vec::new(),
                };
                let v = Node::Map(entries);
                if anchor != 0 {
                    self.anchors.push((anchor, v.clone()));
                }
                Ok(v)
            }
            _ => Err(format!("{}: unexpected YAML event", pos(&span))),
        }
    }
}

/// A block collection's column and the column chain of its last element.
fn own_chain(block: bool, col: Option<usize>, last: &[usize]) -> Option<(usize, &[usize])> {
    match (block, col) {
        (true, Some(c)) => Some((c, last)),
        _ => None,
    }
}

/// yaml.v3 keeps a comment indented deeper than a collection's entries with the deepest
/// block along the last entry whose column it reaches: how many levels down that is.
///
/// A sequence that is a mapping value counts at its key's column; a comment at that column
/// after the mapping's last entry (nothing of the mapping follows it) goes to the foot of the
/// deepest block of the sequence's last item.
fn deeper(own: Option<(usize, &[usize])>, col: usize, at_end: bool) -> Option<usize> {
    let (own_col, chain) = own?;
    if col < own_col {
        return None;
    }
    if col == own_col {
        if !at_end {
            return None;
        }
        // the foot of the sequence's last item, as deep as the last item goes
        return (chain.first() == Some(&own_col)).then_some(chain.len());
    }
    chain.iter().rposition(|c| *c <= col).map(|j| j + 1)
}

enum Target<'t> {
    Map(&'t mut Vec<Entry>),
    Seq(&'t mut Vec<Node>),
}

impl Target<'_> {
    fn push(self, c: Comment) {
        match self {
            Target::Map(e) => e.push(Entry::Comment(c)),
            Target::Seq(i) => i.push(Node::Comment(c)),
        }
    }
}

/// The collection `steps` levels down the last-element path, with its key path.
fn descend<'t>(mut t: Target<'t>, path: &mut Vec<String>, steps: usize) -> Option<Target<'t>> {
    for _ in 0..steps {
        t = match t {
            Target::Map(entries) => {
                let (k, v) = entries.iter_mut().rev().find_map(|e| match e {
                    Entry::Pair(k, v) => Some((k, v)),
                    Entry::Comment(_) => None,
                })?;
                match v {
                    Node::Map(m) => {
                        path.push(k.clone());
                        Target::Map(m)
                    }
                    Node::Seq(items) => {
                        path.push(k.clone());
                        Target::Seq(items)
                    }
                    _ => return None,
                }
            }
            Target::Seq(items) => match items
                .iter_mut()
                .rev()
                .find(|n| !matches!(n, Node::Comment(_)))?
            {
                Node::Map(m) => Target::Map(m),
                Node::Seq(inner) => Target::Seq(inner),
                _ => return None,
            },
        };
    }
    Some(t)
}

fn last_scalar_pair(entries: &[Entry]) -> Option<usize> {
    match entries.last() {
        Some(Entry::Pair(_, v)) if !matches!(v, Node::Map(_) | Node::Seq(_)) => {
            Some(entries.len() - 1)
        }
        _ => None,
    }
}

fn type_name(n: &Node) -> &'static str {
    match n {
        Node::Int(_) => "int",
        Node::Float(_) => "float64",
        Node::Bool(_) => "bool",
        Node::Null => "<nil>",
        Node::Map(_) => "map",
        Node::Seq(_) => "[]interface {}",
        _ => "string",
    }
}

fn count_nodes(n: &Node) -> usize {
    match n {
        Node::Map(e) => {
            1 + e
                .iter()
                .map(|e| match e {
                    Entry::Pair(_, v) => count_nodes(v),
                    Entry::Comment(_) => 1,
                })
                .sum::<usize>()
        }
        Node::Seq(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        _ => 1,
    }
}

/// yaml.v3's reading of a scalar into `interface{}`.
fn resolve_scalar(text: &str, style: ScalarStyle, tag: Option<&str>) -> Node {
    match tag {
        Some("!!str") => return Node::Str(text.to_string()),
        Some("!!binary") => {
            let clean: String = text.chars().filter(|c| !c.is_whitespace()).collect();
            return match base64::Engine::decode(&base64::engine::general_purpose::STANDARD, clean) {
                Ok(b) => Node::Str(String::from_utf8_lossy(&b).into_owned()),
                Err(_) => Node::Str(text.to_string()),
            };
        }
        Some("!!timestamp") => {
            return match crate::timestamp::yaml_timestamp(text) {
                Some(t) => Node::Time(t),
                None => Node::Str(text.to_string()),
            };
        }
        Some("!!null") => return Node::Null,
        Some("!!bool") | Some("!!int") | Some("!!float") => return resolve_plain(text),
        Some(_) => {
            if style != ScalarStyle::Plain {
                return Node::Str(text.to_string());
            }
            return resolve_plain(text);
        }
        None => {}
    }
    if style != ScalarStyle::Plain {
        return Node::Str(text.to_string());
    }
    resolve_plain(text)
}

/// yaml.v3's plain-scalar resolution (timestamps stay strings when decoding into
/// `interface{}`).
pub(crate) fn resolve_plain(text: &str) -> Node {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Node::Null,
        "true" | "True" | "TRUE" => return Node::Bool(true),
        "false" | "False" | "FALSE" => return Node::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Node::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Node::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Node::Float(f64::NAN),
        _ => {}
    }
    let first = text.as_bytes()[0];
    if !(first.is_ascii_digit() || first == b'-' || first == b'+' || first == b'.') {
        return Node::Str(text.to_string());
    }
    if let Some(t) = crate::timestamp::yaml_timestamp(text) {
        // sops decodes timestamps into time.Time
        return Node::Time(t);
    }
    let plain: String = text.chars().filter(|c| *c != '_').collect();
    if let Some(i) = go_parse_int(&plain) {
        return Node::Int(i);
    }
    if go_parse_uint(&plain).is_some() {
        // yaml.v3 yields a uint64 that sops cannot walk; keep the text
        return Node::Str(text.to_string());
    }
    if is_yaml_float(&plain)
        && let Ok(f) = plain.parse::<f64>()
    {
        return Node::Float(f);
    }
    for (prefix, neg, radix) in [
        ("0b", false, 2),
        ("-0b", true, 2),
        ("0o", false, 8),
        ("-0o", true, 8),
    ] {
        if let Some(rest) = plain.strip_prefix(prefix)
            && let Ok(v) = i64::from_str_radix(rest, radix)
        {
            return Node::Int(if neg { -v } else { v });
        }
    }
    Node::Str(text.to_string())
}

fn is_yaml_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    let start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = i - start;
    if int_digits == 0 {
        // \.[0-9]+
        if i >= b.len() || b[i] != b'.' {
            return false;
        }
        i += 1;
        let s2 = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == s2 {
            return false;
        }
    } else if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            i += 1;
        }
        let s3 = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == s3 {
            return false;
        }
    }
    i == b.len()
}

fn split_sign(s: &str) -> (bool, &str) {
    if let Some(r) = s.strip_prefix('-') {
        (true, r)
    } else if let Some(r) = s.strip_prefix('+') {
        (false, r)
    } else {
        (false, s)
    }
}

fn base0(s: &str) -> Option<(u32, &str)> {
    if s.is_empty() {
        return None;
    }
    let lower = s.to_ascii_lowercase();
    if lower.starts_with("0x") {
        Some((16, &s[2..]))
    } else if lower.starts_with("0o") {
        Some((8, &s[2..]))
    } else if lower.starts_with("0b") {
        Some((2, &s[2..]))
    } else if s.len() > 1 && s.starts_with('0') {
        Some((8, &s[1..]))
    } else {
        Some((10, s))
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`.
fn go_parse_int(s: &str) -> Option<i64> {
    let (neg, rest) = split_sign(s);
    let (radix, digits) = base0(rest)?;
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let mag = u64::from_str_radix(digits, radix).ok()?;
    if neg {
        if mag <= i64::MAX as u64 + 1 {
            Some((mag as i128).wrapping_neg() as i64)
        } else {
            None
        }
    } else {
        i64::try_from(mag).ok()
    }
}

/// Go's `strconv.ParseUint(s, 0, 64)`.
fn go_parse_uint(s: &str) -> Option<u64> {
    if s.starts_with('-') || s.starts_with('+') {
        return None;
    }
    let (radix, digits) = base0(s)?;
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

// ---------------------------------------------------------------------------------------------
// Writer

const INDENT: usize = 4;

/// yaml.v3's indentation of a block nested in a mapping whose keys sit at `indent`: the next
/// multiple of the indentation step (a mapping inside a sequence item starts two columns
/// after the dash, so its children snap back to the grid).
fn nested(indent: usize) -> usize {
    INDENT * ((indent + INDENT) / INDENT)
}

/// Emit branches as sops writes plain YAML (one document per branch).
pub(crate) fn write(branches: &Branches) -> String {
    let mut out = String::new();
    for (i, branch) in branches.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        if !branch.iter().any(|e| matches!(e, Entry::Pair(..))) {
            for e in branch {
                if let Entry::Comment(c) = e {
                    push_comment(&mut out, 0, c);
                }
            }
            out.push_str("{}\n");
            continue;
        }
        write_map(&mut out, branch, 0);
    }
    out
}

fn push_comment(out: &mut String, indent: usize, c: &Comment) {
    push_indent(out, indent);
    out.push('#');
    out.push_str(&c.text);
    out.push('\n');
}

fn push_indent(out: &mut String, n: usize) {
    for _ in 0..n {
        out.push(' ');
    }
}

/// Write the entries of a block mapping; every line starts at `indent` (the caller has
/// already written the indentation of the first line when `first_inline` holds).
fn write_map(out: &mut String, entries: &[Entry], indent: usize) {
    write_map_from(out, entries, indent, false);
}

fn write_map_from(out: &mut String, entries: &[Entry], indent: usize, mut first_inline: bool) {
    for e in entries {
        match e {
            Entry::Comment(c) => {
                if first_inline {
                    // cannot put a comment after "- "; start the item on the next line
                    out.push('\n');
                    first_inline = false;
                }
                push_comment(out, indent, c);
            }
            Entry::Pair(k, v) => {
                if !first_inline {
                    push_indent(out, indent);
                }
                first_inline = false;
                out.push_str(&scalar_text(k));
                out.push(':');
                write_value(out, v, indent);
            }
        }
    }
}

/// Write a mapping value after `key:`.
fn write_value(out: &mut String, v: &Node, indent: usize) {
    match v {
        Node::Map(entries) if entries.iter().any(|e| matches!(e, Entry::Pair(..))) => {
            out.push('\n');
            write_map(out, entries, nested(indent));
        }
        Node::Map(_) => {
            // yaml.v3 drops the comments of an empty mapping
            out.push_str(" {}\n");
        }
        Node::Seq(items) if items.iter().any(|n| !matches!(n, Node::Comment(_))) => {
            out.push('\n');
            write_seq(out, items, nested(indent));
        }
        Node::Seq(items) => {
            // the comments of an empty sequence follow it at the key's indentation
            out.push_str(" []\n");
            for n in items {
                if let Node::Comment(c) = n {
                    push_comment(out, indent, c);
                }
            }
        }
        scalar => {
            out.push(' ');
            write_scalar(out, scalar, nested(indent));
        }
    }
}

fn write_seq(out: &mut String, items: &[Node], indent: usize) {
    write_seq_from(out, items, indent, false);
}

fn write_seq_from(out: &mut String, items: &[Node], indent: usize, mut first_inline: bool) {
    for item in items {
        if let Node::Comment(c) = item {
            if first_inline {
                out.push('\n');
                first_inline = false;
            }
            push_comment(out, indent, c);
            continue;
        }
        if !first_inline {
            push_indent(out, indent);
        }
        first_inline = false;
        out.push_str("- ");
        match item {
            Node::Map(entries) if entries.iter().any(|e| matches!(e, Entry::Pair(..))) => {
                write_map_from(out, entries, indent + 2, true);
            }
            Node::Seq(inner) if inner.iter().any(|n| !matches!(n, Node::Comment(_))) => {
                write_seq_from(out, inner, indent + 2, true);
            }
            Node::Map(_) => out.push_str("{}\n"),
            Node::Seq(_) => out.push_str("[]\n"),
            scalar => write_scalar(out, scalar, indent + 2),
        }
    }
}

/// Write a scalar and its line break; `block_indent` is where a literal block's lines go.
fn write_scalar(out: &mut String, v: &Node, block_indent: usize) {
    match v {
        Node::Null => out.push_str("null\n"),
        Node::Bool(b) => {
            out.push_str(if *b { "true" } else { "false" });
            out.push('\n');
        }
        Node::Int(i) => {
            out.push_str(&i.to_string());
            out.push('\n');
        }
        Node::Float(f) => {
            out.push_str(&crate::gofmt::yaml_float(*f));
            out.push('\n');
        }
        Node::Time(t) => {
            out.push_str(t);
            out.push('\n');
        }
        Node::Bytes(b) => {
            out.push_str("!!binary ");
            out.push_str(&base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                b,
            ));
            out.push('\n');
        }
        Node::Str(s) => {
            if s.contains('\n') && analyze(s).block_allowed {
                write_literal(out, s, block_indent);
            } else {
                out.push_str(&scalar_text(s));
                out.push('\n');
            }
        }
        Node::Comment(_) | Node::Map(_) | Node::Seq(_) => out.push('\n'),
    }
}

fn write_literal(out: &mut String, s: &str, indent: usize) {
    out.push('|');
    if s.starts_with(' ') || s.starts_with('\n') {
        out.push_str(&INDENT.to_string());
    }
    if !s.ends_with('\n') {
        out.push('-');
    } else if s.len() == 1 || s[..s.len() - 1].ends_with('\n') {
        out.push('+');
    }
    out.push('\n');
    let body = s.strip_suffix('\n').unwrap_or(s);
    for line in body.split('\n') {
        if !line.is_empty() {
            push_indent(out, indent);
            out.push_str(line);
        }
        out.push('\n');
    }
}

#[derive(Default)]
struct Analysis {
    multiline: bool,
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

fn is_printable(c: char) -> bool {
    let u = c as u32;
    c == '\n'
        || (0x20..=0x7e).contains(&u)
        || (0xa0..=0xd7ff).contains(&u)
        || ((0xe000..=0xfffd).contains(&u) && u != 0xfeff)
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_blank_or_end(c: Option<char>) -> bool {
    match c {
        None => true,
        Some(c) => c == ' ' || c == '\t' || is_break(c),
    }
}

/// libyaml's scalar analysis (block context).
fn analyze(s: &str) -> Analysis {
    if s.is_empty() {
        return Analysis {
            multiline: false,
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: false,
        };
    }
    let mut block_indicators = s.starts_with("---") || s.starts_with("...");
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
        (false, false, false, false);
    let (mut break_space, mut space_break, mut previous_space, mut previous_break) =
        (false, false, false, false);
    let (mut line_breaks, mut special, mut tabs) = (false, false, false);
    let mut preceded_by_ws = true;
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len();
    for i in 0..n {
        let c = chars[i];
        let followed_by_ws = is_blank_or_end(chars.get(i + 1).copied());
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => {
                    block_indicators = true;
                }
                '?' | ':' if followed_by_ws => block_indicators = true,
                '-' if followed_by_ws => block_indicators = true,
                _ => {}
            }
        } else {
            match c {
                ':' if followed_by_ws => block_indicators = true,
                '#' if preceded_by_ws => block_indicators = true,
                _ => {}
            }
        }
        if c == '\t' {
            tabs = true;
        } else if !is_printable(c) {
            special = true;
        }
        if is_break(c) {
            line_breaks = true;
        }
        if c == ' ' {
            if i == 0 {
                leading_space = true;
            }
            if i == n - 1 {
                trailing_space = true;
            }
            if previous_break {
                break_space = true;
            }
            previous_space = true;
            previous_break = false;
        } else if is_break(c) {
            if i == 0 {
                leading_break = true;
            }
            if i == n - 1 {
                trailing_break = true;
            }
            if previous_space {
                space_break = true;
            }
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_ws = c == ' ' || c == '\t' || is_break(c);
    }
    let mut a = Analysis {
        multiline: line_breaks,
        block_plain_allowed: true,
        single_quoted_allowed: true,
        block_allowed: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.block_plain_allowed = false;
    }
    if trailing_space {
        a.block_allowed = false;
    }
    if break_space {
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
    }
    if space_break || tabs || special {
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
    }
    if space_break || special {
        a.block_allowed = false;
    }
    if line_breaks {
        a.block_plain_allowed = false;
    }
    if block_indicators {
        a.block_plain_allowed = false;
    }
    a
}

fn is_old_bool(s: &str) -> bool {
    matches!(
        s,
        "y" | "Y"
            | "yes"
            | "Yes"
            | "YES"
            | "n"
            | "N"
            | "no"
            | "No"
            | "NO"
            | "on"
            | "On"
            | "ON"
            | "off"
            | "Off"
            | "OFF"
    )
}

fn is_base60_float(s: &str) -> bool {
    // [-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
        i += 1;
    }
    if i >= b.len() || !b[i].is_ascii_digit() {
        return false;
    }
    i += 1;
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    let mut groups = 0;
    while i < b.len() && b[i] == b':' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() && i - start < 2 {
            i += 1;
        }
        let g = &b[start..i];
        let ok = match g.len() {
            1 => true,
            2 => g[0] <= b'5',
            _ => false,
        };
        if !ok {
            return false;
        }
        groups += 1;
    }
    if groups == 0 {
        return false;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            i += 1;
        }
    }
    i == b.len()
}

/// The text of a single-line string scalar (plain, single- or double-quoted) as yaml.v3 picks.
fn scalar_text(s: &str) -> String {
    if s == "<<" {
        // yaml.v3 resolves "<<" to its merge tag and spells the string with that tag
        return "!!merge <<".to_string();
    }
    let resolves_to_str = !s.is_empty() && matches!(resolve_plain(s), Node::Str(_)) && s != "<<";
    let can_plain = resolves_to_str && !is_base60_float(s) && !is_old_bool(s);
    let a = analyze(s);
    if s.contains('\n') || !can_plain {
        // literal is handled by the caller; keys and rejected plain go double-quoted unless
        // the plain attempt merely failed the emitter (then single quotes)
        return double_quoted(s);
    }
    if a.block_plain_allowed && !a.multiline {
        return s.to_string();
    }
    if a.single_quoted_allowed {
        return format!("'{}'", s.replace('\'', "''"));
    }
    double_quoted(s)
}

fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    // go-yaml's BOM test looks at the start of the value, not at the current character: a
    // value that starts with a BOM has every character escaped
    let bom = s.starts_with('\u{feff}');
    for c in s.chars() {
        match c {
            '\0' => out.push_str("\\0"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{b}' => out.push_str("\\v"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            '\u{1b}' => out.push_str("\\e"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{85}' => out.push_str("\\N"),
            '\u{a0}' => out.push_str("\\_"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if bom || !is_printable(c) || c == '\u{feff}' => {
                let u = c as u32;
                if u <= 0xff {
                    out.push_str(&format!("\\x{u:02X}"));
                } else if u <= 0xffff {
                    out.push_str(&format!("\\u{u:04X}"));
                } else {
                    out.push_str(&format!("\\U{u:08X}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_resolution() {
        assert_eq!(resolve_plain("42"), Node::Int(42));
        assert_eq!(resolve_plain("0x1F"), Node::Int(31));
        assert_eq!(resolve_plain("1.5"), Node::Float(1.5));
        assert_eq!(resolve_plain("true"), Node::Bool(true));
        assert_eq!(resolve_plain("yes"), Node::Str("yes".into()));
        assert_eq!(
            resolve_plain("2024-01-02"),
            Node::Time("2024-01-02T00:00:00Z".into())
        );
        assert_eq!(
            resolve_plain("2024-01-02T10:00:00"),
            Node::Str("2024-01-02T10:00:00".into())
        );
        assert_eq!(resolve_plain("~"), Node::Null);
    }

    #[test]
    fn string_styles() {
        assert_eq!(scalar_text("plain"), "plain");
        assert_eq!(scalar_text("true"), "\"true\"");
        assert_eq!(scalar_text("yes"), "\"yes\"");
        assert_eq!(scalar_text("a: b"), "'a: b'");
        assert_eq!(scalar_text(" x"), "' x'");
        assert_eq!(scalar_text(""), "\"\"");
        assert_eq!(scalar_text("1:20"), "\"1:20\"");
        assert_eq!(scalar_text("tab\there"), "\"tab\\there\"");
    }
}
