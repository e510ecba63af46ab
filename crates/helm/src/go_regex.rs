//! Go's regular expression syntax (`regexp/syntax` with the Perl flags `regexp.Compile` uses),
//! translated into the `regex` crate's syntax.
//!
//! The two dialects mostly agree, but not everywhere: Go takes `[\w-.]` (a `-` after a class
//! escape is a literal), `[a[b]` (a `[` in a class is a literal), `a{` and `a{01}` (a brace
//! that is not a valid repeat is a literal), `\Q...\E`, `(?P<1>...)`, and its `\d`, `\w`, `\s`
//! and `\b` are ASCII-only where Rust's are Unicode. This module parses the pattern the way
//! Go's parser does, fails where it fails with its error text
//! (`error parsing regexp: missing closing ]: `[a``), and writes an equivalent pattern in which
//! every literal is escaped, so Rust never re-interprets a character. Compiled patterns are
//! cached per thread (charts call the same few patterns many times).

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::rc::Rc;

/// A Go `regexp/syntax` error: `error parsing regexp: CODE: `EXPR``.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("error parsing regexp: {code}: `{expr}`")]
pub struct GoRegexError {
    pub code: &'static str,
    pub expr: String,
}

fn err<T>(code: &'static str, expr: &str) -> Result<T, GoRegexError> {
    Err(GoRegexError {
        code,
        expr: expr.to_string(),
    })
}

const MISSING_BRACKET: &str = "missing closing ]";
const INVALID_CHAR_RANGE: &str = "invalid character class range";
const INVALID_ESCAPE: &str = "invalid escape sequence";
const INVALID_NAMED_CAPTURE: &str = "invalid named capture";
const INVALID_PERL_OP: &str = "invalid or unsupported Perl syntax";
const INVALID_REPEAT_OP: &str = "invalid nested repetition operator";
const INVALID_REPEAT_SIZE: &str = "invalid repeat count";
const MISSING_PAREN: &str = "missing closing )";
const MISSING_REPEAT_ARG: &str = "missing argument to repetition operator";
const TRAILING_BACKSLASH: &str = "trailing backslash at end of expression";
const UNEXPECTED_PAREN: &str = "unexpected )";
const TOO_LARGE: &str = "expression too large";
const NESTS_TOO_DEEPLY: &str = "expression nests too deeply";

/// Go's maximum nesting depth of a parsed expression.
const MAX_DEPTH: usize = 1000;

thread_local! {
    static CACHE: RefCell<HashMap<String, Result<Rc<regex::Regex>, GoRegexError>>> =
        RefCell::new(HashMap::new());
}

/// Compile a Go pattern (cached per thread).
pub fn compile(expr: &str) -> Result<Rc<regex::Regex>, GoRegexError> {
    if let Some(hit) = CACHE.with(|c| c.borrow().get(expr).cloned()) {
        return hit;
    }
    let res = translate(expr).and_then(|rust| {
        regex::RegexBuilder::new(&rust)
            .nest_limit(4 * MAX_DEPTH as u32)
            .size_limit(64 << 20)
            .build()
            .map(Rc::new)
            .map_err(|_| GoRegexError {
                code: TOO_LARGE,
                expr: expr.to_string(),
            })
    });
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() > 4096 {
            c.clear();
        }
        c.insert(expr.to_string(), res.clone());
    });
    res
}

/// Go's `regexp.QuoteMeta`: a backslash before each of `\.+*?()|[]{}^$`.
pub fn quote_meta(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The `regexp: Compile(...)` prefix Go's `MustCompile` panics with (the pattern backquoted
/// when `strconv.CanBackquote` allows, else double-quoted).
pub fn must_compile_message(expr: &str, e: &GoRegexError) -> String {
    let can_backquote = !expr
        .chars()
        .any(|c| c == '`' || c == '\u{FEFF}' || (c.is_control() && c != '\t'));
    let q = if can_backquote {
        format!("`{expr}`")
    } else {
        ferroflux_gotemplate::gofmt::quote(expr)
    };
    format!("regexp: Compile({q}): {e}")
}

/// Go's `Regexp.Split`.
pub fn split(re: &regex::Regex, s: &str, n: i64) -> Vec<String> {
    if n == 0 {
        return Vec::new();
    }
    if !re.as_str().is_empty() && s.is_empty() {
        return vec![String::new()];
    }
    let mut out = Vec::new();
    let (mut beg, mut end) = (0, 0);
    for m in find_all(re, s, n) {
        if n > 0 && out.len() as i64 == n - 1 {
            break;
        }
        end = m.0;
        if m.1 != 0 {
            out.push(s[beg..end].to_string());
        }
        beg = m.1;
    }
    if end != s.len() {
        out.push(s[beg..].to_string());
    }
    out
}

/// Go's `FindAllStringIndex(s, n)`: an empty match right after the previous match is skipped.
pub fn find_all(re: &regex::Regex, s: &str, n: i64) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut prev_end: Option<usize> = None;
    for m in re.find_iter(s) {
        if n >= 0 && out.len() as i64 >= n {
            break;
        }
        if m.start() == m.end() && prev_end == Some(m.start()) {
            continue;
        }
        out.push((m.start(), m.end()));
        prev_end = Some(m.end());
    }
    out
}

struct Translator<'a> {
    whole: &'a str,
    out: String,
    /// Open groups (for `)` and the nesting limit).
    depth: usize,
    /// Whether the last item can take a repetition operator.
    operand: bool,
}

/// Translate Go syntax into `regex` crate syntax, or fail with Go's error.
pub fn translate(expr: &str) -> Result<String, GoRegexError> {
    let mut tr = Translator {
        whole: expr,
        out: String::with_capacity(expr.len() + 8),
        depth: 0,
        operand: false,
    };
    tr.run()?;
    Ok(tr.out)
}

fn is_ascii_alnum(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

/// One literal character, escaped so that it means itself inside or outside a class.
fn push_lit(out: &mut String, c: char) {
    if is_ascii_alnum(c) || (!c.is_ascii() && !c.is_control() && !c.is_whitespace()) {
        out.push(c);
    } else {
        let _ = write!(out, "\\x{{{:X}}}", c as u32);
    }
}

/// Go's Perl classes (ASCII): the ranges inside a class.
fn perl_class(c: char) -> Option<(&'static str, bool)> {
    match c {
        'd' => Some(("0-9", false)),
        'D' => Some(("0-9", true)),
        's' => Some(("\\t\\n\\x0C\\r ", false)),
        'S' => Some(("\\t\\n\\x0C\\r ", true)),
        'w' => Some(("0-9A-Za-z_", false)),
        'W' => Some(("0-9A-Za-z_", true)),
        _ => None,
    }
}

const POSIX: &[&str] = &[
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct",
    "space", "upper", "word", "xdigit",
];

fn next_char(t: &str) -> Option<(char, &str)> {
    let c = t.chars().next()?;
    Some((c, &t[c.len_utf8()..]))
}

fn unhex(c: char) -> Option<u32> {
    c.to_digit(16)
}

/// Go's `parseEscape`: `t` starts with a backslash; the escaped character and the rest.
fn parse_escape(t: &str) -> Result<(char, &str), GoRegexError> {
    let s = t;
    let t = &t[1..];
    let Some((c, mut t)) = next_char(t) else {
        return err(TRAILING_BACKSLASH, "");
    };
    let invalid = |rest: &str| err(INVALID_ESCAPE, &s[..s.len() - rest.len()]);
    match c {
        '1'..='7' if !t.starts_with(|d: char| ('0'..='7').contains(&d)) => return invalid(t),
        '0'..='7' => {
            let mut r = c as u32 - '0' as u32;
            for _ in 1..3 {
                match t.chars().next() {
                    Some(d @ '0'..='7') => {
                        r = r * 8 + (d as u32 - '0' as u32);
                        t = &t[1..];
                    }
                    _ => break,
                }
            }
            return Ok((char::from_u32(r).unwrap_or('\0'), t));
        }
        'x' => {
            let Some((c2, t2)) = next_char(t) else {
                return invalid(t);
            };
            t = t2;
            if c2 == '{' {
                let mut r: u32 = 0;
                let mut n = 0;
                loop {
                    let Some((d, t3)) = next_char(t) else {
                        return invalid(t);
                    };
                    t = t3;
                    if d == '}' {
                        break;
                    }
                    let Some(v) = unhex(d) else {
                        return invalid(t);
                    };
                    r = r * 16 + v;
                    if r > 0x10FFFF {
                        return invalid(t);
                    }
                    n += 1;
                }
                if n == 0 {
                    return invalid(t);
                }
                return match char::from_u32(r) {
                    Some(ch) => Ok((ch, t)),
                    None => invalid(t),
                };
            }
            let x = unhex(c2);
            let (y, t3) = match next_char(t) {
                Some((d, t3)) => (unhex(d), t3),
                None => (None, t),
            };
            t = t3;
            match (x, y) {
                (Some(x), Some(y)) => return Ok((char::from_u32(x * 16 + y).unwrap_or('\0'), t)),
                _ => return invalid(t),
            }
        }
        'a' => return Ok(('\x07', t)),
        'f' => return Ok(('\x0C', t)),
        'n' => return Ok(('\n', t)),
        'r' => return Ok(('\r', t)),
        't' => return Ok(('\t', t)),
        'v' => return Ok(('\x0B', t)),
        c if c.is_ascii() && !is_ascii_alnum(c) => return Ok((c, t)),
        _ => {}
    }
    invalid(t)
}

/// `\p{Name}`/`\pN`/`\P...` at the start of `t`: the Rust text and the rest, `None` when `t`
/// does not start with one.
fn parse_unicode_class(t: &str) -> Result<Option<(String, &str)>, GoRegexError> {
    let b = t.as_bytes();
    if b.len() < 2 || b[0] != b'\\' || (b[1] != b'p' && b[1] != b'P') {
        return Ok(None);
    }
    let mut negated = b[1] == b'P';
    let Some((c, rest)) = next_char(&t[2..]) else {
        return err(INVALID_CHAR_RANGE, t);
    };
    let (seq, mut name, rest) = if c != '{' {
        let seq = &t[..2 + c.len_utf8()];
        (seq, &seq[2..], rest)
    } else {
        let Some(end) = t.find('}') else {
            return err(INVALID_CHAR_RANGE, t);
        };
        (&t[..=end], &t[3..end], &t[end + 1..])
    };
    if let Some(n) = name.strip_prefix('^') {
        negated = !negated;
        name = n;
    }
    // Go knows the Unicode categories and scripts (and "Any"); a name Rust does not know
    // either is refused as Go refuses unknown names.
    let valid = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && regex::Regex::new(&format!("\\p{{{name}}}")).is_ok();
    if !valid {
        return err(INVALID_CHAR_RANGE, seq);
    }
    let p = if negated { 'P' } else { 'p' };
    Ok(Some((format!("\\{p}{{{name}}}"), rest)))
}

/// Go's `parseRepeat` on `{n}`, `{n,}`, `{n,m}`: (min, max (-1: none), rest); `None` when the
/// brace is a literal.
fn parse_repeat(s: &str) -> Option<(i64, i64, &str)> {
    fn int(s: &str) -> Option<(i64, &str)> {
        let n = s.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 || (n >= 2 && s.as_bytes()[0] == b'0') {
            return None;
        }
        let v = if n >= 8 {
            -1
        } else {
            s[..n].parse().unwrap_or(-1)
        };
        Some((v, &s[n..]))
    }
    let s = s.strip_prefix('{')?;
    let (mut min, s) = int(s)?;
    let (max, s) = if let Some(s) = s.strip_prefix(',') {
        if let Some(s2) = s.strip_prefix('}') {
            return Some((min, -1, s2));
        }
        let (max, s) = int(s)?;
        if max < 0 {
            min = -1;
        }
        (max, s)
    } else {
        (min, s)
    };
    let s = s.strip_prefix('}')?;
    Some((min, max, s))
}

impl<'a> Translator<'a> {
    fn run(&mut self) -> Result<(), GoRegexError> {
        let mut t: &'a str = self.whole;
        // Where the previous repetition operator started (Go's `lastRepeat`).
        let mut repeat: Option<&'a str> = None;
        while !t.is_empty() {
            let last_repeat = repeat.take();
            let c = t.as_bytes()[0];
            match c {
                b'(' => {
                    if t.starts_with("(?") {
                        t = self.perl_flags(t)?;
                    } else {
                        self.open("(")?;
                        t = &t[1..];
                    }
                }
                b'|' => {
                    self.out.push('|');
                    self.operand = false;
                    t = &t[1..];
                }
                b')' => {
                    if self.depth == 0 {
                        return err(UNEXPECTED_PAREN, self.whole);
                    }
                    self.depth -= 1;
                    self.out.push(')');
                    self.operand = true;
                    t = &t[1..];
                }
                b'^' | b'$' | b'.' => {
                    self.out.push(c as char);
                    self.operand = true;
                    t = &t[1..];
                }
                b'[' => t = self.class(t)?,
                b'*' | b'+' | b'?' => {
                    let before = t;
                    let after = self.repeat_op(&t[1..], before, last_repeat)?;
                    self.out.push_str(&before[..before.len() - after.len()]);
                    repeat = Some(before);
                    t = after;
                }
                b'{' => match parse_repeat(t) {
                    None => {
                        push_lit(&mut self.out, '{');
                        self.operand = true;
                        t = &t[1..];
                    }
                    Some((min, max, after)) => {
                        let before = t;
                        if !(0..=1000).contains(&min) || max > 1000 || (max >= 0 && min > max) {
                            return err(INVALID_REPEAT_SIZE, &before[..before.len() - after.len()]);
                        }
                        let after = self.repeat_op(after, before, last_repeat)?;
                        if max < 0 {
                            let _ = write!(self.out, "{{{min},}}");
                        } else if max == min {
                            let _ = write!(self.out, "{{{min}}}");
                        } else {
                            let _ = write!(self.out, "{{{min},{max}}}");
                        }
                        if before.len() - after.len() > 0
                            && before[..before.len() - after.len()].ends_with("}?")
                        {
                            self.out.push('?');
                        }
                        repeat = Some(before);
                        t = after;
                    }
                },
                b'\\' => t = self.escape(t)?,
                _ => {
                    let Some((ch, rest)) = next_char(t) else {
                        break;
                    };
                    push_lit(&mut self.out, ch);
                    self.operand = true;
                    t = rest;
                }
            }
        }
        if self.depth != 0 {
            return err(MISSING_PAREN, self.whole);
        }
        Ok(())
    }

    fn open(&mut self, text: &str) -> Result<(), GoRegexError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return err(NESTS_TOO_DEEPLY, self.whole);
        }
        self.out.push_str(text);
        self.operand = false;
        Ok(())
    }

    /// A repetition operator whose text starts at `before` and continues at `after` (just
    /// past `*`, `+`, `?` or `{...}`): the rest after an optional non-greedy `?`.
    fn repeat_op(
        &mut self,
        mut after: &'a str,
        before: &'a str,
        last_repeat: Option<&'a str>,
    ) -> Result<&'a str, GoRegexError> {
        if let Some(a) = after.strip_prefix('?') {
            after = a;
        }
        if let Some(last) = last_repeat {
            return err(INVALID_REPEAT_OP, &last[..last.len() - after.len()]);
        }
        if !self.operand {
            return err(MISSING_REPEAT_ARG, &before[..before.len() - after.len()]);
        }
        Ok(after)
    }

    /// `(?` ...: named groups, flag groups; Go's `parsePerlFlags`.
    fn perl_flags(&mut self, s: &'a str) -> Result<&'a str, GoRegexError> {
        let b = s.as_bytes();
        let with_p = b.len() > 4 && b[2] == b'P' && b[3] == b'<';
        let with_name = b.len() > 3 && b[2] == b'<';
        if with_p || with_name {
            let start = if with_p { 4 } else { 3 };
            let Some(end) = s.find('>') else {
                return err(INVALID_NAMED_CAPTURE, s);
            };
            let capture = &s[..=end];
            let name = &s[start..end];
            if name.is_empty() || !name.chars().all(|c| c == '_' || is_ascii_alnum(c)) {
                return err(INVALID_NAMED_CAPTURE, capture);
            }
            // Rust's names may not start with a digit; Go's may.
            let rust_name = if name.starts_with(|c: char| c.is_ascii_digit()) {
                format!("_{name}")
            } else {
                name.to_string()
            };
            self.open(&format!("(?P<{rust_name}>"))?;
            return Ok(&s[end + 1..]);
        }
        let mut t = &s[2..];
        let mut flags = String::new();
        let mut negative = false;
        let mut saw_flag = false;
        while let Some((c, rest)) = next_char(t) {
            t = rest;
            match c {
                'i' | 'm' | 's' | 'U' => {
                    flags.push(c);
                    saw_flag = true;
                }
                '-' => {
                    if negative {
                        break;
                    }
                    negative = true;
                    flags.push('-');
                    saw_flag = false;
                }
                ':' | ')' => {
                    if negative && !saw_flag {
                        break;
                    }
                    if c == ':' {
                        if flags.is_empty() {
                            self.open("(?:")?;
                        } else {
                            self.open(&format!("(?{flags}:"))?;
                        }
                    } else if !flags.is_empty() {
                        let _ = write!(self.out, "(?{flags})");
                    }
                    return Ok(t);
                }
                _ => break,
            }
        }
        err(INVALID_PERL_OP, &s[..s.len() - t.len()])
    }

    /// A backslash outside a class.
    fn escape(&mut self, t: &'a str) -> Result<&'a str, GoRegexError> {
        let b = t.as_bytes();
        if b.len() >= 2 {
            let simple = match b[1] {
                b'A' => Some("\\A"),
                b'z' => Some("\\z"),
                b'b' => Some("(?-u:\\b)"),
                b'B' => Some("(?-u:\\B)"),
                _ => None,
            };
            if let Some(s) = simple {
                self.out.push_str(s);
                self.operand = true;
                return Ok(&t[2..]);
            }
            if b[1] == b'C' {
                return err(INVALID_ESCAPE, &t[..2]);
            }
            if b[1] == b'Q' {
                let body = &t[2..];
                let (lit, rest) = match body.find("\\E") {
                    Some(i) => (&body[..i], &body[i + 2..]),
                    None => (body, ""),
                };
                for ch in lit.chars() {
                    push_lit(&mut self.out, ch);
                    self.operand = true;
                }
                return Ok(rest);
            }
        }
        if let Some((class, rest)) = parse_unicode_class(t)? {
            self.out.push_str(&class);
            self.operand = true;
            return Ok(rest);
        }
        if b.len() >= 2
            && let Some((ranges, neg)) = perl_class(b[1] as char)
        {
            let _ = write!(self.out, "[{}{ranges}]", if neg { "^" } else { "" });
            self.operand = true;
            return Ok(&t[2..]);
        }
        let (ch, rest) = parse_escape(t)?;
        push_lit(&mut self.out, ch);
        self.operand = true;
        Ok(rest)
    }

    /// A character class `[...]`; Go's `parseClass`.
    fn class(&mut self, s: &'a str) -> Result<&'a str, GoRegexError> {
        let whole_class = s;
        let mut t = &s[1..];
        let mut out = String::from("[");
        if let Some(r) = t.strip_prefix('^') {
            out.push('^');
            t = r;
        }
        let mut items = 0;
        let mut first = true;
        while t.is_empty() || !t.starts_with(']') || first {
            first = false;
            if t.len() > 2
                && t.starts_with("[:")
                && let Some(i) = t[2..].find(":]")
            {
                let name = &t[..i + 4];
                let inner = &name[2..name.len() - 2];
                let bare = inner.strip_prefix('^').unwrap_or(inner);
                if !POSIX.contains(&bare) {
                    return err(INVALID_CHAR_RANGE, name);
                }
                out.push_str(name);
                items += 1;
                t = &t[i + 4..];
                continue;
            }
            if let Some((class, rest)) = parse_unicode_class(t)? {
                out.push_str(&class);
                items += 1;
                t = rest;
                continue;
            }
            if t.len() >= 2
                && t.as_bytes()[0] == b'\\'
                && let Some((ranges, neg)) = perl_class(t.as_bytes()[1] as char)
            {
                if neg {
                    let _ = write!(out, "[^{ranges}]");
                } else {
                    out.push_str(ranges);
                }
                items += 1;
                t = &t[2..];
                continue;
            }
            let rng = t;
            let (lo, rest) = class_char(t, whole_class)?;
            t = rest;
            let mut hi = lo;
            if t.len() >= 2 && t.starts_with('-') && !t[1..].starts_with(']') {
                let (h, rest) = class_char(&t[1..], whole_class)?;
                t = rest;
                hi = h;
                if hi < lo {
                    return err(INVALID_CHAR_RANGE, &rng[..rng.len() - t.len()]);
                }
            }
            push_lit(&mut out, lo);
            if hi != lo {
                out.push('-');
                push_lit(&mut out, hi);
            }
            items += 1;
        }
        let _ = items;
        out.push(']');
        self.out.push_str(&out);
        self.operand = true;
        Ok(&t[1..])
    }
}

/// Go's `parseClassChar`.
fn class_char<'b>(t: &'b str, whole_class: &str) -> Result<(char, &'b str), GoRegexError> {
    if t.is_empty() {
        return err(MISSING_BRACKET, whole_class);
    }
    if t.starts_with('\\') {
        return parse_escape(t);
    }
    next_char(t).ok_or_else(|| GoRegexError {
        code: MISSING_BRACKET,
        expr: whole_class.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(go: &str) -> regex::Regex {
        let r = compile(go).unwrap_or_else(|e| panic!("{go}: {e}"));
        (*r).clone()
    }

    #[test]
    fn go_only_syntax_translates() {
        assert!(ok(r"^[\w-\.]+$").is_match("a-b.c_d"));
        assert!(!ok(r"^[\w-\.]+$").is_match("a b"));
        assert!(ok(r"^[a[b]+$").is_match("[ab"));
        assert!(ok(r"^a{$").is_match("a{"));
        assert!(ok(r"^a{01}$").is_match("a{01}"));
        assert!(ok(r"^\Qa.b*\E+$").is_match("a.b**"));
        assert!(!ok(r"^\d$").is_match("٣"));
        assert!(ok(r"(?P<1a>x)").is_match("x"));
        assert!(ok(r"a\z").is_match("ba"));
        assert!(ok(r"[[:alpha:]]+").is_match("abc"));
        assert!(ok(r"[a&&b]").is_match("&"));
        assert!(ok(r"\pL\p{Greek}\PN").is_match("aαb"));
    }

    #[test]
    fn go_errors_are_reproduced() {
        let e = |s: &str| compile(s).unwrap_err().to_string();
        assert_eq!(e("[a"), "error parsing regexp: missing closing ]: `[a`");
        assert_eq!(
            e("a**"),
            "error parsing regexp: invalid nested repetition operator: `**`"
        );
        assert_eq!(
            e("*a"),
            "error parsing regexp: missing argument to repetition operator: `*`"
        );
        assert_eq!(e("(a"), "error parsing regexp: missing closing ): `(a`");
        assert_eq!(e("a)"), "error parsing regexp: unexpected ): `a)`");
        assert_eq!(
            e(r"\Z"),
            "error parsing regexp: invalid escape sequence: `\\Z`"
        );
        assert_eq!(
            e("a{1001}"),
            "error parsing regexp: invalid repeat count: `{1001}`"
        );
        assert_eq!(
            e("(?x)"),
            "error parsing regexp: invalid or unsupported Perl syntax: `(?x`"
        );
        assert_eq!(
            e("[z-a]"),
            "error parsing regexp: invalid character class range: `z-a`"
        );
        assert_eq!(
            e("a\\"),
            "error parsing regexp: trailing backslash at end of expression: ``"
        );
    }

    #[test]
    fn split_and_find_all_follow_go() {
        let r = ok("");
        assert_eq!(split(&r, "abc", -1), vec!["a", "b", "c"]);
        let r = ok("a*");
        assert_eq!(find_all(&r, "baaac", -1), vec![(0, 0), (1, 4), (5, 5)]);
    }
}
