//! YAML store: reads documents (with comments) into the tree the way sops's yaml.v3-based
//! store does, and writes the tree back as sops does (yaml.v3 emitter, 4-space indent).

use ferroflux_goyaml::{Anchors, Emitter, Mode, Resolved, Schema, num, resolve::resolve};
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
    anchors: Anchors<Node>,
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
        anchors: Anchors::default(),
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
                self.anchors.define(anchor, &v);
                self.chain.clear();
                Ok(v)
            }
            Event::Alias(id) => match self.anchors.get(id) {
                Some(v) => {
                    self.count(count_nodes(&v))?;
                    self.chain.clear();
                    Ok(v)
                }
                None => Err(format!(
                    "{}: unknown anchor referenced by alias",
                    pos(&span)
                )),
            },
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
                self.anchors.define(anchor, &v);
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
                self.anchors.define(anchor, &v);
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

/// yaml.v3's plain-scalar resolution, as sops takes it into its tree.
pub(crate) fn resolve_plain(text: &str) -> Node {
    match resolve(text, Schema::V3) {
        Resolved::Null => Node::Null,
        Resolved::Bool(b) => Node::Bool(b),
        Resolved::Int(i) => Node::Int(i),
        // yaml.v3 yields a uint64 that sops cannot walk; keep the text
        Resolved::Uint(_) | Resolved::Merge | Resolved::Str => Node::Str(text.to_string()),
        Resolved::Float(f) => Node::Float(f),
        // sops decodes timestamps into time.Time
        Resolved::Timestamp(_) => match crate::timestamp::yaml_timestamp(text) {
            Some(t) => Node::Time(t),
            None => Node::Str(text.to_string()),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Writer

/// sops writes YAML through yaml.v3's encoder with an indent of 4.
const MODE: Mode = Mode::v3(4);

/// yaml.v3 resolves the string `<<` to its merge tag and spells it with that tag, as a key
/// or a value.
const MERGE: &str = "<<";

fn has_pairs(entries: &[Entry]) -> bool {
    entries.iter().any(|e| matches!(e, Entry::Pair(..)))
}

/// Emit branches as sops writes plain YAML (one document per branch). Comments go out on
/// lines of their own before the node they were read with.
pub(crate) fn write(branches: &Branches) -> String {
    let mut out = String::new();
    for (i, branch) in branches.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        let mut e = Emitter::new(MODE, out);
        if has_pairs(branch) {
            write_map(&mut e, branch);
        } else {
            for entry in branch {
                if let Entry::Comment(c) = entry {
                    e.comment(&c.text);
                }
            }
            e.empty_map();
        }
        out = e.finish();
    }
    out
}

fn write_map(e: &mut Emitter, entries: &[Entry]) {
    e.begin_map();
    for entry in entries {
        match entry {
            Entry::Comment(c) => e.comment(&c.text),
            Entry::Pair(k, v) => {
                if k == MERGE {
                    e.tagged_key("!!merge", k);
                } else {
                    e.key(k);
                }
                write_node(e, v, true);
            }
        }
    }
    e.end();
}

/// Write a node; `map_value`: it is the value of a mapping key.
fn write_node(e: &mut Emitter, v: &Node, map_value: bool) {
    match v {
        Node::Map(entries) if has_pairs(entries) => write_map(e, entries),
        // yaml.v3 drops the comments of an empty mapping
        Node::Map(_) => e.empty_map(),
        Node::Seq(items) if items.iter().any(|n| !matches!(n, Node::Comment(_))) => {
            e.begin_seq();
            for item in items {
                write_node(e, item, false);
            }
            e.end();
        }
        Node::Seq(items) => {
            e.empty_seq();
            // the comments of an empty sequence follow it at the key's indentation (an
            // empty sequence inside a sequence loses them)
            for item in items.iter().filter(|_| map_value) {
                if let Node::Comment(c) = item {
                    e.comment(&c.text);
                }
            }
        }
        Node::Comment(c) => e.comment(&c.text),
        Node::Null => e.plain("null"),
        Node::Bool(b) => e.plain(if *b { "true" } else { "false" }),
        Node::Int(i) => e.plain(&i.to_string()),
        Node::Float(f) => e.plain(&num::v3_float(*f)),
        Node::Time(t) => e.plain(t),
        Node::Bytes(b) => e.tagged(
            "!!binary",
            &base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b),
        ),
        Node::Str(s) if s == MERGE => e.tagged("!!merge", s),
        Node::Str(s) => e.string(s),
    }
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
        let doc = |s: &str| write(&vec![vec![Entry::Pair("k".into(), Node::Str(s.into()))]]);
        assert_eq!(doc("plain"), "k: plain\n");
        assert_eq!(doc("true"), "k: \"true\"\n");
        assert_eq!(doc("yes"), "k: \"yes\"\n");
        assert_eq!(doc("a: b"), "k: 'a: b'\n");
        assert_eq!(doc(" x"), "k: ' x'\n");
        assert_eq!(doc(""), "k: \"\"\n");
        assert_eq!(doc("1:20"), "k: \"1:20\"\n");
        assert_eq!(doc("tab\there"), "k: \"tab\\there\"\n");
        assert_eq!(doc("a\n\tb\n"), "k: |\n    a\n    \tb\n");
    }
}
