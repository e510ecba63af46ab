//! A fast reader for the block-style YAML that values files and rendered manifests are made
//! of: block mappings and sequences, one-line plain and quoted scalars, literal and folded
//! block scalars, comments, empty flow collections.
//!
//! It answers `None` for anything outside that subset (anchors, tags, flow collections with
//! content, multi-line flow or quoted scalars, plain scalars that continue on the next line,
//! duplicate keys, tabs, control characters, document markers, ...) and for every input that
//! may be an error; the caller then reads the text with the full reader, which also words the
//! errors. Plain scalars that could resolve to something other than a string (numbers,
//! booleans, nulls, timestamps, ...) are resolved by the full reader too, one scalar at a
//! time, so both readers agree on types by construction.

use std::collections::BTreeMap;

use ferroflux_gotemplate::Value;

/// Read `text` (one document) if it lies in the subset; `None` otherwise.
pub(super) fn parse(text: &str, resolve: &dyn Fn(&str) -> Option<Value>) -> Option<Value> {
    if !clean(text) {
        return None;
    }
    let lines: Vec<&str> = text.split('\n').collect();
    let mut p = Reader {
        lines,
        i: 0,
        resolve,
    };
    p.skip_blank();
    if p.i >= p.lines.len() {
        return None;
    }
    let n = indent_of(p.lines[p.i]);
    let v = p.node(n)?;
    p.skip_blank();
    if p.i < p.lines.len() {
        return None;
    }
    Some(v)
}

/// No tabs, carriage returns, control or non-printable characters, BOMs or Unicode line
/// breaks; no directive or document marker lines.
fn clean(text: &str) -> bool {
    for c in text.chars() {
        let ok = match c {
            '\n' => true,
            ' '..='~' => true,
            '\u{a0}'..='\u{d7ff}' => c != '\u{2028}' && c != '\u{2029}',
            '\u{e000}'..='\u{fffd}' => c != '\u{feff}',
            '\u{10000}'.. => true,
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    !text.split('\n').any(|l| {
        let t = l.trim_start_matches(' ');
        t.starts_with("---") || t.starts_with("...") || l.starts_with('%')
    })
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// A line with nothing but spaces, or a comment.
fn is_blank(line: &str) -> bool {
    let t = line.trim_start_matches(' ');
    t.is_empty() || t.starts_with('#')
}

struct Reader<'a, 'r> {
    lines: Vec<&'a str>,
    i: usize,
    resolve: &'r dyn Fn(&str) -> Option<Value>,
}

impl<'a> Reader<'a, '_> {
    fn skip_blank(&mut self) {
        while self.i < self.lines.len() && is_blank(self.lines[self.i]) {
            self.i += 1;
        }
    }

    /// The indentation of the next line with content, if any.
    fn next_indent(&mut self) -> Option<usize> {
        self.skip_blank();
        self.lines.get(self.i).map(|l| indent_of(l))
    }

    /// A block node whose first line (the current one) is indented by `n`.
    fn node(&mut self, n: usize) -> Option<Value> {
        let content = &self.lines[self.i][n..];
        if content == "-" || content.starts_with("- ") {
            return self.sequence(n);
        }
        if content.starts_with(['[', '{']) {
            // a flow collection on a line of its own
            self.i += 1;
            return self.value_after(content, n.checked_sub(1)?, false);
        }
        match split_key(content)? {
            Some(_) => self.mapping(n, None),
            // a scalar on a line of its own: left to the full reader
            None => None,
        }
    }

    /// A block mapping with its keys at column `n`; `first` is the content of the first entry
    /// when it starts inside the current line (a compact mapping in a sequence entry).
    fn mapping(&mut self, n: usize, mut first: Option<&'a str>) -> Option<Value> {
        let mut m: BTreeMap<String, Value> = BTreeMap::new();
        loop {
            let content = match first.take() {
                Some(c) => c,
                None => {
                    let Some(ind) = self.next_indent() else {
                        break;
                    };
                    if ind < n {
                        break;
                    }
                    if ind > n {
                        return None;
                    }
                    &self.lines[self.i][n..]
                }
            };
            if content == "-" || content.starts_with("- ") {
                return None;
            }
            let (key, rest) = split_key(content)??;
            let key = match key {
                Key::Plain(k) => {
                    if definitely_string(k) {
                        k.to_string()
                    } else {
                        // only keys the full reader reads as that same string
                        match (self.resolve)(k)? {
                            Value::String(s) if &*s == k && k != "<<" => k.to_string(),
                            _ => return None,
                        }
                    }
                }
                Key::Quoted(k) => k,
            };
            if m.contains_key(&key) {
                return None;
            }
            self.i += 1;
            let value = self.value_after(rest, n, true)?;
            m.insert(key, value);
        }
        Some(Value::map(m))
    }

    /// A block sequence with its dashes at column `n`.
    fn sequence(&mut self, n: usize) -> Option<Value> {
        let mut items = Vec::new();
        while let Some(ind) = self.next_indent() {
            if ind < n {
                break;
            }
            if ind > n {
                return None;
            }
            let line = self.lines[self.i];
            let content = &line[n..];
            let rest = if content == "-" {
                ""
            } else if let Some(r) = content.strip_prefix("- ") {
                r
            } else {
                break;
            };
            let spaces = rest.len() - rest.trim_start_matches(' ').len();
            let rest = &rest[spaces..];
            if rest == "-" || rest.starts_with("- ") {
                return None;
            }
            if !rest.is_empty()
                && !rest.starts_with(['#', '|', '>', '[', '{'])
                && split_key(rest)?.is_some()
            {
                // a compact mapping: its keys line up with the first one
                let col = n + 2 + spaces;
                items.push(self.mapping(col, Some(rest))?);
                continue;
            }
            self.i += 1;
            items.push(self.value_after(rest, n, false)?);
        }
        Some(Value::list(items))
    }

    /// The value of an entry whose line (already consumed) ended with `rest` after the key's
    /// colon or the entry's dash; the entry is at column `n`.
    fn value_after(&mut self, rest: &'a str, n: usize, in_mapping: bool) -> Option<Value> {
        let rest = rest.trim_start_matches(' ');
        if rest.is_empty() || rest.starts_with('#') {
            // the value is on the following lines, or null
            return match self.next_indent() {
                Some(ind) if ind > n => self.node(ind),
                Some(ind) if ind == n && in_mapping => {
                    let c = &self.lines[self.i][n..];
                    if c == "-" || c.starts_with("- ") {
                        self.sequence(n)
                    } else {
                        Some(Value::Nil)
                    }
                }
                _ => Some(Value::Nil),
            };
        }
        let v = match rest.as_bytes()[0] {
            b'|' | b'>' => return self.block_scalar(rest, n),
            b'"' => {
                let (s, after) = double_quoted(rest)?;
                trailing_ok(after)?;
                Value::str(s)
            }
            b'\'' => {
                let (s, after) = single_quoted(rest)?;
                trailing_ok(after)?;
                Value::str(s)
            }
            b'[' => {
                let (items, after) = self.flow_sequence(rest)?;
                trailing_ok(after)?;
                Value::list(items)
            }
            b'{' => {
                let after = rest[1..].trim_start_matches(' ').strip_prefix('}')?;
                trailing_ok(after)?;
                Value::new_map()
            }
            _ => {
                let first = plain_value(rest)?;
                match self.plain_continued(first, n)? {
                    None => self.plain(first)?,
                    Some(text) if definitely_string(&text) => Value::str(text),
                    Some(_) => return None,
                }
            }
        };
        // nothing may follow on more indented lines (a continued scalar, or an error)
        match self.next_indent() {
            Some(ind) if ind > n => None,
            _ => Some(v),
        }
    }

    /// The lines that continue a plain scalar whose first line was `first` (an entry at
    /// column `n`), folded into it: `Some(None)` when none does.
    #[allow(clippy::option_option)]
    fn plain_continued(&mut self, first: &str, n: usize) -> Option<Option<String>> {
        let mut text: Option<String> = None;
        loop {
            let mut j = self.i;
            let mut empties = 0;
            while j < self.lines.len() && self.lines[j].trim_start_matches(' ').is_empty() {
                empties += 1;
                j += 1;
            }
            let Some(l) = self.lines.get(j) else {
                break;
            };
            let ind = indent_of(l);
            let c = l[ind..].trim_end_matches(' ');
            if ind <= n || c.starts_with('#') {
                break;
            }
            // a continuation line may start with any character but `#` (a comment, seen
            // above) and `:`; lines that look like entries are left to the full reader
            if c.starts_with([':', '?', '-', '&', '*', '!', '|', '>', '%', '@', '`'])
                || c.contains(": ")
                || c.ends_with(':')
                || c.contains(" #")
            {
                return None;
            }
            let t = text.get_or_insert_with(|| first.to_string());
            if empties == 0 {
                t.push(' ');
            } else {
                t.extend(std::iter::repeat_n('\n', empties));
            }
            t.push_str(c);
            self.i = j + 1;
        }
        Some(text)
    }

    /// A plain scalar, typed as the full reader types it.
    fn plain(&self, s: &str) -> Option<Value> {
        if definitely_string(s) {
            return Some(Value::str(s));
        }
        if let Some(f) = plain_decimal(s) {
            return Some(Value::Float(f));
        }
        match (self.resolve)(s)? {
            v @ (Value::Nil | Value::Bool(_) | Value::Float(_) | Value::String(_)) => Some(v),
            _ => None,
        }
    }

    /// A one-line flow sequence of scalars at the start of `s` (`[a, "b", 'c']`) and the text
    /// after it.
    fn flow_sequence<'s>(&self, s: &'s str) -> Option<(Vec<Value>, &'s str)> {
        let mut rest = s[1..].trim_start_matches(' ');
        let mut items = Vec::new();
        if let Some(after) = rest.strip_prefix(']') {
            return Some((items, after));
        }
        loop {
            let (item, after) = match rest.as_bytes().first()? {
                b'"' => {
                    let (v, after) = double_quoted(rest)?;
                    (Value::str(v), after)
                }
                b'\'' => {
                    let (v, after) = single_quoted(rest)?;
                    (Value::str(v), after)
                }
                _ => {
                    let end = rest.find([',', ']'])?;
                    let text = rest[..end].trim_end_matches(' ');
                    if text.is_empty()
                        || text.contains(['[', '{', '}', '#', ':', '"', '\''])
                        || is_indicator(text.as_bytes()[0])
                    {
                        return None;
                    }
                    (self.plain(text)?, &rest[end..])
                }
            };
            items.push(item);
            let after = after.trim_start_matches(' ');
            if let Some(a) = after.strip_prefix(']') {
                return Some((items, a));
            }
            // another item must follow the comma
            rest = after.strip_prefix(',')?.trim_start_matches(' ');
            if rest.starts_with([',', ']']) {
                return None;
            }
        }
    }

    /// A literal (`|`) or folded (`>`) block scalar; its header is `header`, the entry is at
    /// column `n`.
    fn block_scalar(&mut self, header: &str, n: usize) -> Option<Value> {
        let literal = header.starts_with('|');
        let h = &header[1..];
        let (chomp, h) = match h.as_bytes().first() {
            Some(b'-') => (Chomp::Strip, &h[1..]),
            Some(b'+') => (Chomp::Keep, &h[1..]),
            _ => (Chomp::Clip, h),
        };
        // no explicit indentation indicator; only a comment may follow
        if !h.is_empty() {
            let t = h.trim_start_matches(' ');
            if !(t.is_empty() || (t.starts_with('#') && t.len() < h.len())) {
                return None;
            }
        }
        // the content's indentation is the first non-empty line's
        let start = self.i;
        let mut j = start;
        while j < self.lines.len() && self.lines[j].trim_start_matches(' ').is_empty() {
            j += 1;
        }
        let m = match self.lines.get(j) {
            Some(l) if indent_of(l) > n => indent_of(l),
            _ => {
                // no content: an empty scalar (its empty lines are dropped by clipping)
                if matches!(chomp, Chomp::Keep) || self.lines[start..j].iter().any(|l| l.len() > n)
                {
                    return None;
                }
                self.i = j;
                return Some(Value::str(""));
            }
        };
        let mut body: Vec<&str> = Vec::new();
        let mut k = start;
        while k < self.lines.len() {
            let l = self.lines[k];
            if l.trim_start_matches(' ').is_empty() {
                // lines of spaces longer than the indentation are content (or an error
                // before the first content line): leave them to the full reader
                if l.len() > m {
                    return None;
                }
                body.push("");
                k += 1;
                continue;
            }
            if indent_of(l) < m {
                break;
            }
            body.push(&l[m..]);
            k += 1;
        }
        // the piece after the text's last newline is not a line
        let text_ends_here = k == self.lines.len();
        if text_ends_here {
            if self.ends_with_newline() {
                body.pop();
            } else if body.last() == Some(&"") {
                return None;
            }
        }
        self.i = k;
        // trailing empty lines
        let mut content_len = body.len();
        while content_len > 0 && body[content_len - 1].is_empty() {
            content_len -= 1;
        }
        let trailing = body.len() - content_len;
        let lines = &body[..content_len];
        if lines.is_empty() {
            return None;
        }
        let mut s = String::new();
        if literal {
            for (idx, l) in lines.iter().enumerate() {
                if idx > 0 {
                    s.push('\n');
                }
                s.push_str(l);
            }
        } else {
            // folding: lines starting with a space keep their breaks; leave those to the
            // full reader
            if lines.iter().any(|l| l.starts_with(' ')) {
                return None;
            }
            let mut empties = 0usize;
            for (idx, l) in lines.iter().enumerate() {
                if l.is_empty() {
                    empties += 1;
                    continue;
                }
                if idx > 0 {
                    if empties == 0 {
                        s.push(' ');
                    } else {
                        s.extend(std::iter::repeat_n('\n', empties));
                    }
                }
                empties = 0;
                s.push_str(l);
            }
        }
        // the end of the text ends the last line as a line break does
        match chomp {
            Chomp::Strip => {}
            Chomp::Clip => s.push('\n'),
            Chomp::Keep => {
                s.push('\n');
                s.extend(std::iter::repeat_n('\n', trailing));
            }
        }
        Some(Value::str(s))
    }

    fn ends_with_newline(&self) -> bool {
        self.lines.last() == Some(&"")
    }
}

#[derive(Clone, Copy)]
enum Chomp {
    Strip,
    Clip,
    Keep,
}

enum Key<'a> {
    Plain(&'a str),
    Quoted(String),
}

/// If `content` starts a mapping entry, its key and the text after the colon. `Some(None)`:
/// not a mapping entry; `None`: outside the subset.
#[allow(clippy::option_option)]
fn split_key(content: &str) -> Option<Option<(Key<'_>, &str)>> {
    let b = content.as_bytes();
    let Some(&c0) = b.first() else {
        return Some(None);
    };
    let (key, after) = match c0 {
        b'"' | b'\'' => {
            let (k, after) = if c0 == b'"' {
                double_quoted(content)?
            } else {
                single_quoted(content)?
            };
            if !after.starts_with(':') {
                return Some(None);
            }
            (Key::Quoted(k), after)
        }
        _ => {
            if !plain_start(b) {
                // `?`, `&`, `!` and the other indicators: leave them to the full reader
                // (sequence entries are recognised before this)
                return None;
            }
            let mut i = 0;
            loop {
                if i >= b.len() {
                    return Some(None);
                }
                match b[i] {
                    b':' if i + 1 == b.len() || b[i + 1] == b' ' => break,
                    b'#' if b[i - 1] == b' ' => return Some(None),
                    _ => {}
                }
                i += 1;
            }
            let k = &content[..i];
            if k.ends_with(' ') || k.contains(['"', '\'', '{', '}', '[', ']', ',', '#']) {
                return None;
            }
            (Key::Plain(k), &content[i..])
        }
    };
    let after = after.strip_prefix(':')?;
    if !(after.is_empty() || after.starts_with(' ')) {
        return None;
    }
    Some(Some((key, after)))
}

fn is_indicator(c: u8) -> bool {
    matches!(
        c,
        b'-' | b'?'
            | b':'
            | b','
            | b'['
            | b']'
            | b'{'
            | b'}'
            | b'#'
            | b'&'
            | b'*'
            | b'!'
            | b'|'
            | b'>'
            | b'\''
            | b'"'
            | b'%'
            | b'@'
            | b'`'
            | b' '
    )
}

/// Whether a plain scalar may start here: not with an indicator, except `-` and `:` before
/// a non-space (`-3`, `:8080`).
fn plain_start(b: &[u8]) -> bool {
    !is_indicator(b[0]) || (matches!(b[0], b'-' | b':') && b.len() > 1 && b[1] != b' ')
}

/// After a quoted scalar or flow collection: only spaces and a comment.
fn trailing_ok(after: &str) -> Option<()> {
    let t = after.trim_start_matches(' ');
    if t.is_empty() || (t.starts_with('#') && t.len() < after.len()) {
        Some(())
    } else {
        None
    }
}

/// A one-line plain scalar value: up to a comment, without trailing spaces.
fn plain_value(rest: &str) -> Option<&str> {
    let b = rest.as_bytes();
    if !plain_start(b) {
        return None;
    }
    let mut end = b.len();
    for i in 0..b.len() {
        match b[i] {
            b'#' if b[i - 1] == b' ' => {
                end = i;
                break;
            }
            b':' if i + 1 == b.len() || b[i + 1] == b' ' => return None,
            _ => {}
        }
    }
    let s = rest[..end].trim_end_matches(' ');
    if s.is_empty() { None } else { Some(s) }
}

/// A one-line double-quoted scalar at the start of `s` and the text after it. Escapes
/// other than the common ones are left to the full reader.
fn double_quoted(s: &str) -> Option<(String, &str)> {
    let body = &s[1..];
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((out, &body[i + 1..])),
            '\\' => {
                let (_, e) = chars.next()?;
                out.push(match e {
                    '\\' => '\\',
                    '"' => '"',
                    '/' => '/',
                    'n' => '\n',
                    't' => '\t',
                    _ => return None,
                });
            }
            c => out.push(c),
        }
    }
    None
}

/// A one-line single-quoted scalar at the start of `s` and the text after it.
fn single_quoted(s: &str) -> Option<(String, &str)> {
    let body = &s[1..];
    let mut out = String::new();
    let b = body.as_bytes();
    let mut i = 0;
    let mut from = 0;
    while i < b.len() {
        if b[i] == b'\'' {
            if b.get(i + 1) == Some(&b'\'') {
                out.push_str(&body[from..=i]);
                i += 2;
                from = i;
                continue;
            }
            out.push_str(&body[from..i]);
            return Some((out, &body[i + 1..]));
        }
        i += 1;
    }
    None
}

/// A plain scalar that YAML 1.1 (and the full reader) can only read as a string: it starts
/// with a letter and is none of the words that resolve to booleans or null.
fn definitely_string(s: &str) -> bool {
    let b = s.as_bytes();
    if !b[0].is_ascii_alphabetic() {
        return false;
    }
    if b.len() > 5 && !matches!(b[0], b'i' | b'I' | b'n' | b'N') {
        return true;
    }
    let lower = s.to_ascii_lowercase();
    if lower.starts_with("inf") || lower.starts_with("nan") {
        return false;
    }
    !matches!(
        lower.as_str(),
        "y" | "n" | "yes" | "no" | "on" | "off" | "true" | "false" | "null" | "nan" | "inf"
    )
}

/// A decimal integer without sign or leading zero that a float64 holds exactly.
fn plain_decimal(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 15 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if b.len() > 1 && b[0] == b'0' {
        return None;
    }
    s.parse::<u64>().ok().map(|u| u as f64)
}
