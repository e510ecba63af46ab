//! JSON store: an order-preserving reader (Go's `json.Decoder` with `UseNumber`, numbers
//! becoming ints when they fit) and sops's writer (tab indentation, Go string escaping).

use crate::tree::{Entry, Node};

const MAX_DEPTH: usize = 128;

struct P<'a> {
    b: &'a [u8],
    i: usize,
}

/// Parse a JSON document whose top level is an object.
pub(crate) fn read(src: &[u8]) -> Result<Vec<Entry>, String> {
    let mut p = P { b: src, i: 0 };
    p.ws();
    match p.peek() {
        Some(b'{') => {}
        Some(b'[') => {
            return Err("SOPS only supports JSON files with a top-level object (starting with '{'), not arrays or other types".into());
        }
        None => return Err("unexpected end of JSON input".into()),
        Some(_) => {
            return Err("SOPS only supports JSON files with a top-level object (starting with '{'), not other JSON types".into());
        }
    }
    let v = p.value(0)?;
    p.ws();
    if p.i != p.b.len() {
        return Err(format!(
            "invalid character after top-level value at offset {}",
            p.i
        ));
    }
    match v {
        Node::Map(entries) => Ok(entries),
        _ => Err("expected a JSON object".into()),
    }
}

impl P<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while let Some(c) = self.peek() {
            if matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    fn err(&self, what: &str) -> String {
        format!("{what} at offset {}", self.i)
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        self.ws();
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err(&format!("expected '{}'", c as char)))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Node, String> {
        if depth > MAX_DEPTH {
            return Err(self.err("JSON nesting too deep"));
        }
        self.ws();
        match self.peek() {
            Some(b'{') => {
                self.i += 1;
                let mut entries = Vec::new();
                self.ws();
                if self.peek() == Some(b'}') {
                    self.i += 1;
                    return Ok(Node::Map(entries));
                }
                loop {
                    self.ws();
                    if self.peek() != Some(b'"') {
                        return Err(self.err("expected object key"));
                    }
                    let k = self.string()?;
                    self.expect(b':')?;
                    let v = self.value(depth + 1)?;
                    entries.push(Entry::Pair(k, v));
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Node::Map(entries));
                        }
                        _ => return Err(self.err("expected ',' or '}'")),
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.peek() == Some(b']') {
                    self.i += 1;
                    return Ok(Node::Seq(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Node::Seq(items));
                        }
                        _ => return Err(self.err("expected ',' or ']'")),
                    }
                }
            }
            Some(b'"') => Ok(Node::Str(self.string()?)),
            Some(b't') => self.word("true", Node::Bool(true)),
            Some(b'f') => self.word("false", Node::Bool(false)),
            Some(b'n') => self.word("null", Node::Null),
            Some(c) if c == b'-' || c.is_ascii_digit() => self.number(),
            _ => Err(self.err("invalid character")),
        }
    }

    fn word(&mut self, w: &str, v: Node) -> Result<Node, String> {
        if self.b[self.i..].starts_with(w.as_bytes()) {
            self.i += w.len();
            Ok(v)
        } else {
            Err(self.err("invalid literal"))
        }
    }

    fn number(&mut self) -> Result<Node, String> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        let digits = |p: &mut Self| {
            let s = p.i;
            while p.peek().is_some_and(|c| c.is_ascii_digit()) {
                p.i += 1;
            }
            p.i - s
        };
        if digits(self) == 0 {
            return Err(self.err("invalid number"));
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if digits(self) == 0 {
                return Err(self.err("invalid number"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if digits(self) == 0 {
                return Err(self.err("invalid number"));
            }
        }
        let text =
            std::str::from_utf8(&self.b[start..self.i]).map_err(|_| self.err("invalid number"))?;
        if let Ok(i) = text.parse::<i64>() {
            return Ok(Node::Int(i));
        }
        text.parse::<f64>()
            .map(Node::Float)
            .map_err(|_| self.err("invalid number"))
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let h = self
            .b
            .get(self.i..self.i + 4)
            .ok_or_else(|| self.err("truncated escape"))?;
        let s = std::str::from_utf8(h).map_err(|_| self.err("invalid escape"))?;
        let v = u32::from_str_radix(s, 16).map_err(|_| self.err("invalid escape"))?;
        self.i += 4;
        Ok(v)
    }

    fn string(&mut self) -> Result<String, String> {
        // at the opening quote
        self.i += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let c = self.peek().ok_or_else(|| self.err("unterminated string"))?;
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let e = self.peek().ok_or_else(|| self.err("unterminated string"))?;
                    self.i += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let u = self.hex4()?;
                            if (0xd800..0xdc00).contains(&u) && self.b[self.i..].starts_with(b"\\u")
                            {
                                let save = self.i;
                                self.i += 2;
                                let lo = self.hex4()?;
                                if (0xdc00..0xe000).contains(&lo) {
                                    let cp = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
                                    char::from_u32(cp).unwrap_or('\u{fffd}')
                                } else {
                                    self.i = save;
                                    '\u{fffd}'
                                }
                            } else {
                                char::from_u32(u).unwrap_or('\u{fffd}')
                            }
                        }
                        _ => return Err(self.err("invalid escape")),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                c if c < 0x20 => return Err(self.err("invalid character in string literal")),
                c => out.push(c),
            }
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}

/// Go's `json.Marshal` of a string.
pub(crate) fn go_string(s: &str, out: &mut String) {
    ferroflux_goyaml::json::write_string(s, true, out);
}

/// Emit a branch as sops does: `json.Indent` with a tab, then a newline.
pub(crate) fn write(entries: &[Entry]) -> Result<String, String> {
    let mut out = String::new();
    write_map(entries, 0, &mut out)?;
    out.push('\n');
    Ok(out)
}

fn indent(out: &mut String, n: usize) {
    out.push('\n');
    for _ in 0..n {
        out.push('\t');
    }
}

fn write_map(entries: &[Entry], depth: usize, out: &mut String) -> Result<(), String> {
    let pairs: Vec<(&String, &Node)> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::Pair(k, v) => Some((k, v)),
            Entry::Comment(_) => None,
        })
        .collect();
    if pairs.is_empty() {
        out.push_str("{}");
        return Ok(());
    }
    out.push('{');
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        indent(out, depth + 1);
        go_string(k, out);
        out.push_str(": ");
        write_value(v, depth + 1, out)?;
    }
    indent(out, depth);
    out.push('}');
    Ok(())
}

fn write_value(v: &Node, depth: usize, out: &mut String) -> Result<(), String> {
    match v {
        Node::Map(entries) => write_map(entries, depth, out)?,
        Node::Seq(items) => {
            let items: Vec<&Node> = items
                .iter()
                .filter(|n| !matches!(n, Node::Comment(_)))
                .collect();
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, n) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                indent(out, depth + 1);
                write_value(n, depth + 1, out)?;
            }
            indent(out, depth);
            out.push(']');
        }
        Node::Null => out.push_str("null"),
        Node::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Node::Int(i) => out.push_str(&i.to_string()),
        Node::Float(f) => {
            out.push_str(&ferroflux_goyaml::num::json_float(*f).ok_or_else(|| {
                format!(
                    "json: unsupported value: {}",
                    ferroflux_goyaml::num::format_float_shortest(*f)
                )
            })?)
        }
        Node::Str(s) => go_string(s, out),
        Node::Time(t) => go_string(t, out),
        Node::Bytes(b) => {
            out.push('"');
            out.push_str(&base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                b,
            ));
            out.push('"');
        }
        Node::Comment(_) => out.push_str("null"),
    }
    Ok(())
}
