//! The block emitter: libyaml's emitter as go-yaml v2 and yaml.v3 run it, driven by calls
//! (`begin_map`, `key`, `scalar`, ...) that each caller makes while walking its own tree.
//! What differs between the Go libraries is one [`Mode`] value per caller; each difference is
//! written once below, at the place that names the upstream behaviour.

use crate::resolve::{Schema, plain_is_string};
use crate::scalar::{Analysis, analyze, is_break, is_printable};

/// libyaml's `best_width`, where go-yaml v2 folds long plain and quoted lines.
const BEST_WIDTH: usize = 80;

/// The writer a caller imitates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mode {
    /// Whose rules pick a string's style: v2 quotes what go-yaml v2 would read back as
    /// something else; v3 also quotes the YAML 1.1 booleans, indents nested blocks
    /// "regularly" and lets tabs into literal blocks.
    pub schema: Schema,
    /// The indentation step (`best_indent`; yaml.v3's `Encoder.SetIndent`).
    pub indent: usize,
    /// Fold long lines at spaces past column 80: go-yaml v2 does (`best_width` 80), yaml.v3
    /// does not (its `best_width` starts at -1, "unlimited").
    pub fold: bool,
    /// A block sequence that is a mapping value starts at the key's column (go-yaml v2, and
    /// kyaml's fork with `CompactSeqIndent`); yaml.v3 indents it.
    pub indentless_seq: bool,
}

impl Mode {
    /// go-yaml v2's encoder as `sigs.k8s.io/yaml.Marshal` runs it: Helm's `toYaml`, and
    /// every resource `kustomize build` prints.
    pub const V2: Mode = Mode {
        schema: Schema::V2,
        indent: 2,
        fold: true,
        indentless_seq: true,
    };

    /// yaml.v3's `Encoder` with `SetIndent(indent)`: Helm's `toYamlPretty` (2), sops (4).
    pub const fn v3(indent: usize) -> Mode {
        Mode {
            schema: Schema::V3,
            indent,
            fold: false,
            indentless_seq: false,
        }
    }

    /// The style go-yaml's encoder asks for a string (`stringv`): a literal block for
    /// multi-line text, plain when it reads back as the same string, else double quotes.
    /// The emitter may still fall back (`select_scalar_style`).
    fn string_style(self, s: &str) -> Style {
        if s.contains('\n') {
            Style::Literal
        } else if plain_is_string(s, self.schema) {
            Style::Plain
        } else {
            Style::Double
        }
    }

    fn analyze(self, s: &str) -> Analysis {
        analyze(s, self.schema == Schema::V3)
    }
}

/// Number of characters of a text (the emitter counts columns in characters).
fn width(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.chars().count()
    }
}

/// Where a node stands (libyaml's `mapping_context`, `simple_key_context`, and whether the
/// state below it is a sequence item).
#[derive(Clone, Copy)]
struct Ctx {
    mapping: bool,
    simple_key: bool,
    seq_item: bool,
}

impl Ctx {
    const ROOT: Ctx = Ctx {
        mapping: false,
        simple_key: false,
        seq_item: false,
    };
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

/// The open collections, innermost last.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Frame {
    Seq,
    /// A mapping whose next node is a key.
    MapKey,
    /// A mapping whose next node is the value of the key just written.
    MapValue,
}

/// One document being written. Call the node methods in document order: inside a mapping,
/// [`Emitter::key`] and then one node for its value.
pub struct Emitter {
    out: String,
    mode: Mode,
    column: usize,
    indent: i64,
    indents: Vec<i64>,
    whitespace: bool,
    indention: bool,
    frames: Vec<Frame>,
}

impl Emitter {
    /// Start a document at the end of `out` (which should end with a line break, or be empty).
    pub fn new(mode: Mode, out: String) -> Emitter {
        Emitter {
            out,
            mode,
            column: 0,
            indent: -1,
            indents: Vec::new(),
            whitespace: true,
            indention: true,
            frames: Vec::new(),
        }
    }

    /// End the document (the text ends with a line break) and hand the text back.
    pub fn finish(mut self) -> String {
        self.write_indent();
        self.out
    }

    /// Place the next node: the `- ` of a sequence item, or the value slot of a mapping.
    fn enter(&mut self) -> Ctx {
        match self.frames.last_mut() {
            Some(Frame::Seq) => {
                self.write_indent();
                self.write_indicator("-", true, false, true);
                Ctx {
                    seq_item: true,
                    ..Ctx::ROOT
                }
            }
            Some(f @ Frame::MapValue) => {
                *f = Frame::MapKey;
                Ctx {
                    mapping: true,
                    ..Ctx::ROOT
                }
            }
            // a value without a key, or the root
            Some(Frame::MapKey) | None => Ctx::ROOT,
        }
    }

    /// A string scalar: its style as the mode's encoder and the emitter choose it.
    pub fn string(&mut self, s: &str) {
        let ctx = self.enter();
        let a = self.mode.analyze(s);
        self.scalar_text(s, self.mode.string_style(s), &a, ctx);
    }

    /// A typed scalar's text (a number, a boolean, `null`, a timestamp), asked plain.
    pub fn plain(&mut self, text: &str) {
        let ctx = self.enter();
        let a = self.mode.analyze(text);
        self.scalar_text(text, Style::Plain, &a, ctx);
    }

    /// A plain scalar behind an explicit tag (`!!binary ...`).
    pub fn tagged(&mut self, tag: &str, text: &str) {
        let ctx = self.enter();
        self.write_indicator(tag, true, false, false);
        let a = self.mode.analyze(text);
        self.scalar_text(text, Style::Plain, &a, ctx);
    }

    /// A mapping key (a string). A key that fits on one line in at most 128 bytes is a
    /// simple key (`k: v`); any other takes libyaml's long form (`? k` then `: v`).
    pub fn key(&mut self, k: &str) {
        self.key_with(None, k);
    }

    /// A mapping key behind a tag (yaml.v3 writes the string `<<` as `!!merge <<`).
    pub fn tagged_key(&mut self, tag: &str, k: &str) {
        self.key_with(Some(tag), k);
    }

    fn key_with(&mut self, tag: Option<&str>, k: &str) {
        if let Some(f) = self.frames.last_mut() {
            *f = Frame::MapValue;
        }
        self.write_indent();
        let a = self.mode.analyze(k);
        let style = if tag.is_some() {
            Style::Plain
        } else {
            self.mode.string_style(k)
        };
        let simple = !a.multiline && k.len() + tag.map_or(0, str::len) <= 128;
        if !simple {
            self.write_indicator("?", true, false, true);
        }
        if let Some(t) = tag {
            self.write_indicator(t, true, false, false);
        }
        let ctx = Ctx {
            mapping: true,
            simple_key: simple,
            seq_item: false,
        };
        self.scalar_text(k, style, &a, ctx);
        if simple {
            self.write_indicator(":", false, false, false);
        } else {
            self.write_indent();
            self.write_indicator(":", true, false, true);
        }
    }

    /// Open a block sequence (call [`Emitter::empty_seq`] for one without items).
    pub fn begin_seq(&mut self) {
        let ctx = self.enter();
        let indentless = self.mode.indentless_seq && ctx.mapping && !self.indention;
        self.increase_indent(false, indentless, ctx.seq_item);
        self.frames.push(Frame::Seq);
    }

    /// Open a block mapping (call [`Emitter::empty_map`] for one without entries).
    pub fn begin_map(&mut self) {
        let ctx = self.enter();
        self.increase_indent(false, false, ctx.seq_item);
        self.frames.push(Frame::MapKey);
    }

    /// Close the innermost sequence or mapping.
    pub fn end(&mut self) {
        self.frames.pop();
        self.pop_indent();
    }

    /// `[]`.
    pub fn empty_seq(&mut self) {
        self.empty_flow("[", "]");
    }

    /// `{}`.
    pub fn empty_map(&mut self) {
        self.empty_flow("{", "}");
    }

    fn empty_flow(&mut self, open: &str, close: &str) {
        self.enter();
        self.write_indicator(open, true, true, false);
        self.write_indicator(close, false, false, false);
    }

    /// A comment line (`#` and `text`) at the current block indentation, as sops writes the
    /// comments it keeps; a line already begun is ended first.
    pub fn comment(&mut self, text: &str) {
        if self.indention && !self.whitespace {
            // right after a sequence item's `-`: sops ends that line (`- `) first
            self.put(' ');
            self.put_break();
        }
        self.write_indent();
        self.put('#');
        self.put_str(text);
        self.put_break();
        self.indention = true;
        self.whitespace = true;
    }

    fn put(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    fn put_break(&mut self) {
        self.out.push('\n');
        self.column = 0;
    }

    fn write_break_char(&mut self, c: char) {
        if c == '\n' {
            self.put_break();
        } else {
            self.out.push(c);
            self.column = 0;
        }
    }

    /// libyaml's `increase_indent`. yaml.v3 changed it "so that indentations are more
    /// regular": the first indent inside a sequence item skips the `- ` (two columns), every
    /// other one snaps to the next multiple of the indentation step; go-yaml v2 adds the
    /// step (the same numbers for v2's step of 2).
    fn increase_indent(&mut self, flow: bool, indentless: bool, seq_item: bool) {
        let best = self.mode.indent as i64;
        self.indents.push(self.indent);
        if self.indent < 0 {
            self.indent = if flow { best } else { 0 };
        } else if !indentless {
            self.indent = match self.mode.schema {
                Schema::V3 if seq_item => self.indent + 2,
                Schema::V3 => best * ((self.indent + best) / best),
                Schema::V2 => self.indent + best,
            };
        }
    }

    fn pop_indent(&mut self) {
        self.indent = self.indents.pop().unwrap_or(-1);
    }

    fn write_indent(&mut self) {
        let indent = self.indent.max(0) as usize;
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break();
        }
        while self.column < indent {
            self.put(' ');
        }
        self.whitespace = true;
        self.indention = true;
    }

    fn write_indicator(&mut self, ind: &str, need_ws: bool, is_ws: bool, is_indention: bool) {
        if need_ws && !self.whitespace {
            self.put(' ');
        }
        for c in ind.chars() {
            self.put(c);
        }
        self.whitespace = is_ws;
        self.indention = self.indention && is_indention;
    }

    fn scalar_text(&mut self, text: &str, requested: Style, a: &Analysis, ctx: Ctx) {
        let mut style = requested;
        if ctx.simple_key && a.multiline {
            style = Style::Double;
        }
        if style == Style::Plain {
            // (block context only: nothing here writes flow collections with content)
            if !a.block_plain {
                style = Style::Single;
            }
            if text.is_empty() && ctx.simple_key {
                style = Style::Single;
            }
        }
        if style == Style::Single && !a.single_ok {
            style = Style::Double;
        }
        if style == Style::Literal && (!a.block_ok || ctx.simple_key) {
            style = Style::Double;
        }
        self.increase_indent(true, false, ctx.seq_item);
        let allow_breaks = !ctx.simple_key && self.mode.fold;
        match style {
            Style::Plain => self.write_plain(text, allow_breaks),
            Style::Single => self.write_single(text, allow_breaks),
            Style::Double => self.write_double(text, allow_breaks),
            Style::Literal => self.write_literal(text),
        }
        self.pop_indent();
    }

    /// Write text with no line breaks and no characters needing escapes as it is.
    fn put_str(&mut self, s: &str) {
        self.out.push_str(s);
        self.column += width(s);
    }

    /// Can a text go out in one piece: no line break, and no space where the line could be
    /// folded (the column stays within the best width)?
    fn fits_unfolded(&self, s: &str, allow_breaks: bool) -> bool {
        let no_breaks = if s.is_ascii() {
            !s.bytes().any(|b| b == b'\n' || b == b'\r')
        } else {
            !s.chars().any(is_break)
        };
        no_breaks && (!allow_breaks || self.column + width(s) <= BEST_WIDTH + 1 || !s.contains(' '))
    }

    fn write_plain(&mut self, s: &str, allow_breaks: bool) {
        if !self.whitespace {
            self.put(' ');
        }
        if self.fits_unfolded(s, allow_breaks) {
            self.put_str(s);
            self.whitespace = false;
            self.indention = false;
            return;
        }
        let mut spaces = false;
        let mut breaks = false;
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            if c == ' ' {
                let next_space = chars.peek() == Some(&' ');
                if allow_breaks && !spaces && self.column > BEST_WIDTH && !next_space {
                    self.write_indent();
                } else {
                    self.put(c);
                }
                spaces = true;
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.put_break();
                }
                self.write_break_char(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                self.put(c);
                self.indention = false;
                spaces = false;
                breaks = false;
            }
        }
        self.whitespace = false;
        self.indention = false;
    }

    fn write_single(&mut self, s: &str, allow_breaks: bool) {
        self.write_indicator("'", true, false, false);
        if !s.contains('\'') && self.fits_unfolded(s, allow_breaks) {
            self.put_str(s);
        } else {
            self.write_single_slow(s, allow_breaks);
        }
        self.write_indicator("'", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_single_slow(&mut self, s: &str, allow_breaks: bool) {
        let n = s.chars().count();
        let mut spaces = false;
        let mut breaks = false;
        let mut chars = s.chars().enumerate().peekable();
        while let Some((i, c)) = chars.next() {
            if c == ' ' {
                let next_space = chars.peek().map(|x| x.1) == Some(' ');
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i > 0
                    && i < n - 1
                    && !next_space
                {
                    self.write_indent();
                } else {
                    self.put(c);
                }
                spaces = true;
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.put_break();
                }
                self.write_break_char(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                if c == '\'' {
                    self.put('\'');
                }
                self.put(c);
                self.indention = false;
                spaces = false;
                breaks = false;
            }
        }
    }

    fn write_double(&mut self, s: &str, allow_breaks: bool) {
        self.write_indicator("\"", true, false, false);
        let plain_chars = if s.is_ascii() {
            s.bytes()
                .all(|b| (0x20..=0x7E).contains(&b) && b != b'"' && b != b'\\')
        } else {
            !s.starts_with('\u{FEFF}')
                && s.chars().all(|c| {
                    is_printable(c) && c != '\u{FEFF}' && !is_break(c) && c != '"' && c != '\\'
                })
        };
        if plain_chars && self.fits_unfolded(s, allow_breaks) {
            self.put_str(s);
        } else {
            self.write_double_slow(s, allow_breaks);
        }
        self.write_indicator("\"", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_double_slow(&mut self, s: &str, allow_breaks: bool) {
        let mut spaces = false;
        let n = s.chars().count();
        // go-yaml's is_bom looks at the start of the value whatever the position: a value
        // that starts with a BOM has every character escaped
        let bom = s.starts_with('\u{FEFF}');
        let mut chars = s.chars().enumerate().peekable();
        while let Some((i, c)) = chars.next() {
            if bom || !is_printable(c) || c == '\u{FEFF}' || is_break(c) || c == '"' || c == '\\' {
                self.put('\\');
                let u = c as u32;
                match u {
                    0x00 => self.put('0'),
                    0x07 => self.put('a'),
                    0x08 => self.put('b'),
                    0x09 => self.put('t'),
                    0x0A => self.put('n'),
                    0x0B => self.put('v'),
                    0x0C => self.put('f'),
                    0x0D => self.put('r'),
                    0x1B => self.put('e'),
                    0x22 => self.put('"'),
                    0x5C => self.put('\\'),
                    0x85 => self.put('N'),
                    0xA0 => self.put('_'),
                    0x2028 => self.put('L'),
                    0x2029 => self.put('P'),
                    _ => {
                        let (lead, width) = if u <= 0xFF {
                            ('x', 2)
                        } else if u <= 0xFFFF {
                            ('u', 4)
                        } else {
                            ('U', 8)
                        };
                        self.put(lead);
                        let hex = format!("{u:0width$X}");
                        for h in hex.chars() {
                            self.put(h);
                        }
                    }
                }
                spaces = false;
            } else if c == ' ' {
                if allow_breaks && !spaces && self.column > BEST_WIDTH && i > 0 && i < n - 1 {
                    self.write_indent();
                    if chars.peek().map(|x| x.1) == Some(' ') {
                        self.put('\\');
                    }
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                self.put(c);
                spaces = false;
            }
        }
    }

    fn write_literal(&mut self, s: &str) {
        self.write_indicator("|", true, false, false);
        // block scalar hints
        if let Some(first) = s.chars().next()
            && (first == ' ' || is_break(first))
        {
            let hint = self.mode.indent.to_string();
            self.write_indicator(&hint, false, false, false);
        }
        let mut rev = s.chars().rev();
        let chomp = match (rev.next(), rev.next()) {
            (None, _) => Some("-"),
            (Some(last), before) => {
                if !is_break(last) {
                    Some("-")
                } else if before.is_none_or(is_break) {
                    Some("+")
                } else {
                    None
                }
            }
        };
        if let Some(h) = chomp {
            self.write_indicator(h, false, false, false);
        }
        self.put_break();
        self.indention = true;
        self.whitespace = true;
        let mut breaks = true;
        // lines (runs without a break character) go out whole
        let mut rest = s;
        while !rest.is_empty() {
            let end = rest.find(is_break).unwrap_or(rest.len());
            let (line, tail) = rest.split_at(end);
            if !line.is_empty() {
                if breaks {
                    self.write_indent();
                }
                self.put_str(line);
                self.indention = false;
                breaks = false;
            }
            let mut tail_chars = tail.chars();
            if let Some(c) = tail_chars.next() {
                self.write_break_char(c);
                self.indention = true;
                breaks = true;
            }
            rest = tail_chars.as_str();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `{a: [x, {b: "multi\nline\n", c: ""}], "k: v": yes}` written in `mode`.
    fn doc(mode: Mode) -> String {
        let mut e = Emitter::new(mode, String::new());
        e.begin_map();
        e.key("a");
        e.begin_seq();
        e.string("x");
        e.begin_map();
        e.comment(" note");
        e.key("b");
        e.string("multi\nline\n");
        e.key("c");
        e.string("");
        e.end();
        e.end();
        e.key("k: v");
        e.string("yes");
        e.end();
        e.finish()
    }

    #[test]
    fn v2_and_v3_layouts() {
        assert_eq!(
            doc(Mode::V2),
            "a:\n- x\n- \n  # note\n  b: |\n    multi\n    line\n  c: \"\"\n'k: v': \"yes\"\n"
        );
        assert_eq!(
            doc(Mode::v3(4)),
            "a:\n    - x\n    - \n      # note\n      b: |\n        multi\n        line\n      c: \"\"\n'k: v': \"yes\"\n"
        );
    }

    #[test]
    fn v2_folds_long_lines_and_v3_does_not() {
        let long = "word ".repeat(30);
        let long = long.trim_end();
        let write = |mode| {
            let mut e = Emitter::new(mode, String::new());
            e.begin_map();
            e.key("k");
            e.string(long);
            e.end();
            e.finish()
        };
        assert!(write(Mode::V2).lines().count() > 1);
        assert_eq!(write(Mode::v3(2)), format!("k: {long}\n"));
    }
}
