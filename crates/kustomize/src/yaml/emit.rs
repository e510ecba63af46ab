//! YAML writer reproducing kustomize's output byte for byte.
//!
//! kustomize prints every resource by turning it into JSON and then into YAML with the
//! go-yaml v2 encoder (through sigs.k8s.io/yaml). The rules reproduced here are the ones of
//! that encoder: keys sorted in its "natural" order, two-space indentation, sequences not
//! indented under a mapping key, plain scalars unless the text would read back as something
//! else (then double quotes) or starts with an indicator (then single quotes), literal
//! blocks for multi-line text, and long lines folded at spaces past column 80.

use std::borrow::Cow;

use serde_json::Value;

const BEST_INDENT: i64 = 2;
const BEST_WIDTH: usize = 80;

/// Emit one YAML document (no `---` marker) for a value, as kustomize prints a resource.
pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    emit_document(v, &mut out);
    out
}

/// Append one document to `out`.
fn emit_document(v: &Value, out: &mut String) {
    let mut e = Emitter {
        out: std::mem::take(out),
        column: 0,
        indent: -1,
        indents: Vec::new(),
        whitespace: true,
        indention: true,
        flow_level: 0,
    };
    e.node(v, Ctx::ROOT);
    // document end: make sure the stream ends with a line break
    e.write_indent();
    *out = e.out;
}

/// Emit several documents separated by `---` lines, as `kustomize build` does.
pub fn to_yaml_stream<'a>(docs: impl IntoIterator<Item = &'a Value>) -> String {
    let mut out = String::new();
    for (i, d) in docs.into_iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        emit_document(d, &mut out);
    }
    out
}

/// Number of characters of a text (the emitter counts columns in characters).
fn width(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.chars().count()
    }
}

#[derive(Clone, Copy)]
struct Ctx {
    mapping: bool,
    simple_key: bool,
}

impl Ctx {
    const ROOT: Ctx = Ctx {
        mapping: false,
        simple_key: false,
    };
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

struct Emitter {
    out: String,
    column: usize,
    indent: i64,
    indents: Vec<i64>,
    whitespace: bool,
    indention: bool,
    flow_level: usize,
}

#[derive(Debug, Default)]
struct Analysis {
    multiline: bool,
    flow_plain: bool,
    block_plain: bool,
    single_ok: bool,
    block_ok: bool,
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Characters go-yaml writes without escaping.
pub fn is_printable(c: char) -> bool {
    let u = c as u32;
    u == 0x0A
        || (0x20..=0x7E).contains(&u)
        || (0xA0..=0xD7FF).contains(&u)
        || ((0xE000..=0xFFFD).contains(&u) && u != 0xFEFF)
}

/// Would kyaml's go-yaml v3 write this string as a literal block when asked to? Unlike the
/// v2 rules above, v3 lets tabs into block scalars.
pub fn block_scalar_allowed_v3(s: &str) -> bool {
    analyze(&s.replace('\t', "x")).block_ok
}

fn analyze(s: &str) -> Analysis {
    if s.is_empty() {
        return Analysis {
            multiline: false,
            flow_plain: false,
            block_plain: true,
            single_ok: true,
            block_ok: false,
        };
    }
    if s.is_ascii() {
        return analyze_ascii(s.as_bytes());
    }
    analyze_chars(s)
}

/// ASCII bytes that play a part in [`analyze`] past the first character: blanks, breaks,
/// controls, and the indicators (`flow` false: all of them; true: those that can still
/// change the outcome once a flow indicator was seen).
const fn interesting_bytes(flow: bool) -> [bool; 128] {
    let mut t = [false; 128];
    let mut b = 0;
    while b < 0x20 {
        t[b] = true;
        b += 1;
    }
    t[0x7F] = true;
    let special: &[u8] = if flow { b" #:" } else { b" #:,?[]{}" };
    let mut i = 0;
    while i < special.len() {
        t[special[i] as usize] = true;
        i += 1;
    }
    t
}

const INTERESTING: [bool; 128] = interesting_bytes(false);
const INTERESTING_IN_FLOW: [bool; 128] = interesting_bytes(true);

/// [`analyze`] for ASCII text: runs of ordinary characters are skipped at once (for them
/// the character loop only clears the previous-space/break state).
fn analyze_ascii(b: &[u8]) -> Analysis {
    let n = b.len();
    let mut st = Scan::new(b.starts_with(b"---") || b.starts_with(b"..."));
    let mut i = 0;
    while i < n {
        let c = b[i];
        let table = if st.flow_ind {
            &INTERESTING_IN_FLOW
        } else {
            &INTERESTING
        };
        if i > 0 && !table[c as usize] {
            let mut j = i + 1;
            while j < n && !table[b[j] as usize] {
                j += 1;
            }
            st.prev_space = false;
            st.prev_break = false;
            st.preceded_by_ws = false;
            i = j;
            continue;
        }
        if c == b' ' && i > 0 {
            // a run of spaces: only its first and last characters can change the state
            let mut j = i + 1;
            while j < n && b[j] == b' ' {
                j += 1;
            }
            st.step(' ', false, b.get(i + 1).map(|&x| x as char));
            if j - 1 > i {
                st.step(' ', false, b.get(j).map(|&x| x as char));
            }
            i = j;
            continue;
        }
        let next = b.get(i + 1).map(|&x| x as char);
        st.step(c as char, i == 0, next);
        i += 1;
    }
    st.finish()
}

fn analyze_chars(s: &str) -> Analysis {
    let mut st = Scan::new(s.starts_with("---") || s.starts_with("..."));
    let mut it = s.chars().peekable();
    let mut first = true;
    while let Some(c) = it.next() {
        st.step(c, first, it.peek().copied());
        first = false;
    }
    st.finish()
}

/// The state of go-yaml's scalar analysis loop.
struct Scan {
    block_ind: bool,
    flow_ind: bool,
    line_breaks: bool,
    special: bool,
    leading_space: bool,
    leading_break: bool,
    trailing_space: bool,
    trailing_break: bool,
    break_space: bool,
    space_break: bool,
    prev_space: bool,
    prev_break: bool,
    preceded_by_ws: bool,
}

impl Scan {
    fn new(document_indicator: bool) -> Scan {
        Scan {
            block_ind: document_indicator,
            flow_ind: document_indicator,
            line_breaks: false,
            special: false,
            leading_space: false,
            leading_break: false,
            trailing_space: false,
            trailing_break: false,
            break_space: false,
            space_break: false,
            prev_space: false,
            prev_break: false,
            preceded_by_ws: true,
        }
    }

    fn step(&mut self, c: char, first: bool, next: Option<char>) {
        let last = next.is_none();
        let followed_by_ws = next.is_none_or(|n| is_blank(n) || is_break(n));
        if first {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => {
                    self.flow_ind = true;
                    self.block_ind = true;
                }
                '?' | ':' => {
                    self.flow_ind = true;
                    if followed_by_ws {
                        self.block_ind = true;
                    }
                }
                '-' if followed_by_ws => {
                    self.flow_ind = true;
                    self.block_ind = true;
                }
                _ => {}
            }
        } else {
            match c {
                ',' | '?' | '[' | ']' | '{' | '}' => self.flow_ind = true,
                ':' => {
                    self.flow_ind = true;
                    if followed_by_ws {
                        self.block_ind = true;
                    }
                }
                '#' if self.preceded_by_ws => {
                    self.flow_ind = true;
                    self.block_ind = true;
                }
                _ => {}
            }
        }
        if !is_printable(c) {
            self.special = true;
        }
        if c == ' ' {
            if first {
                self.leading_space = true;
            }
            if last {
                self.trailing_space = true;
            }
            if self.prev_break {
                self.break_space = true;
            }
            self.prev_space = true;
            self.prev_break = false;
        } else if is_break(c) {
            self.line_breaks = true;
            if first {
                self.leading_break = true;
            }
            if last {
                self.trailing_break = true;
            }
            if self.prev_space {
                self.space_break = true;
            }
            self.prev_space = false;
            self.prev_break = true;
        } else {
            self.prev_space = false;
            self.prev_break = false;
        }
        self.preceded_by_ws = is_blank(c) || is_break(c) || c == '\0';
    }

    fn finish(self) -> Analysis {
        let Scan {
            block_ind,
            flow_ind,
            line_breaks,
            special,
            leading_space,
            leading_break,
            trailing_space,
            trailing_break,
            break_space,
            space_break,
            ..
        } = self;
        analysis_of(
            block_ind,
            flow_ind,
            line_breaks,
            special,
            leading_space,
            leading_break,
            trailing_space,
            trailing_break,
            break_space,
            space_break,
        )
    }
}

#[allow(clippy::too_many_arguments)]
fn analysis_of(
    block_ind: bool,
    flow_ind: bool,
    line_breaks: bool,
    special: bool,
    leading_space: bool,
    leading_break: bool,
    trailing_space: bool,
    trailing_break: bool,
    break_space: bool,
    space_break: bool,
) -> Analysis {
    let mut a = Analysis {
        multiline: line_breaks,
        flow_plain: true,
        block_plain: true,
        single_ok: true,
        block_ok: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.flow_plain = false;
        a.block_plain = false;
    }
    if trailing_space {
        a.block_ok = false;
    }
    if break_space {
        a.flow_plain = false;
        a.block_plain = false;
        a.single_ok = false;
    }
    if space_break || special {
        a.flow_plain = false;
        a.block_plain = false;
        a.single_ok = false;
        a.block_ok = false;
    }
    if line_breaks {
        a.flow_plain = false;
        a.block_plain = false;
    }
    if flow_ind {
        a.flow_plain = false;
    }
    if block_ind {
        a.block_plain = false;
    }
    a
}

/// The text and requested style of a scalar, as go-yaml v2's encoder chooses them.
fn scalar_of(v: &Value) -> (Cow<'_, str>, Style) {
    match v {
        Value::Null => (Cow::Borrowed("null"), Style::Plain),
        Value::Bool(b) => (
            Cow::Borrowed(if *b { "true" } else { "false" }),
            Style::Plain,
        ),
        Value::Number(n) => (Cow::Owned(number_text(n)), Style::Plain),
        Value::String(s) => (Cow::Borrowed(s.as_str()), string_style(s)),
        _ => (Cow::Borrowed(""), Style::Plain),
    }
}

/// The style go-yaml v2 asks for a string.
fn string_style(s: &str) -> Style {
    if s.contains('\n') {
        Style::Literal
    } else if resolves_to_string_v2(s) && !is_base60_float(s) {
        Style::Plain
    } else {
        Style::Double
    }
}

/// Text of a number after kustomize's JSON round trip (Go json encoding, then go-yaml v2
/// resolution and formatting).
pub fn number_text(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    let json = go_json_float(f);
    // go-yaml v2 reads the JSON text back: integers stay integers
    let plain: String = json.chars().filter(|&c| c != '_').collect();
    if let Some(i) = super::read::go_parse_int(&plain) {
        return i.to_string();
    }
    if let Some(u) = super::read::go_parse_uint(&plain) {
        return u.to_string();
    }
    go_format_g(json.parse::<f64>().unwrap_or(f))
}

/// Text of a scalar value (strings as they are, numbers and booleans as kustomize prints them).
pub fn number_text_or(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => number_text(n),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Decimal digits and decimal-point position of the shortest representation of |f|:
/// value = 0.DIGITS × 10^dp.
fn shortest(f: f64) -> (String, i32) {
    let s = format!("{:e}", f.abs());
    let (mant, exp) = s.split_once('e').unwrap_or((s.as_str(), "0"));
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits = digits.trim_end_matches('0').to_string();
    let digits = if digits.is_empty() {
        "0".to_string()
    } else {
        digits
    };
    (digits, exp + 1)
}

fn fmt_e(neg: bool, digits: &str, dp: i32) -> String {
    let mut s = String::new();
    if neg {
        s.push('-');
    }
    s.push_str(&digits[..1]);
    if digits.len() > 1 {
        s.push('.');
        s.push_str(&digits[1..]);
    }
    let exp = if digits == "0" { 0 } else { dp - 1 };
    s.push('e');
    s.push(if exp < 0 { '-' } else { '+' });
    let a = exp.abs();
    if a < 10 {
        s.push('0');
    }
    s.push_str(&a.to_string());
    s
}

fn fmt_f(neg: bool, digits: &str, dp: i32) -> String {
    let mut s = String::new();
    if neg {
        s.push('-');
    }
    let nd = digits.len() as i32;
    if dp <= 0 {
        s.push_str("0.");
        for _ in 0..(-dp) {
            s.push('0');
        }
        s.push_str(digits);
    } else if dp >= nd {
        s.push_str(digits);
        for _ in 0..(dp - nd) {
            s.push('0');
        }
    } else {
        s.push_str(&digits[..dp as usize]);
        s.push('.');
        s.push_str(&digits[dp as usize..]);
    }
    s
}

/// Go's encoding/json text for a float64.
pub fn go_json_float(f: f64) -> String {
    let neg = f.is_sign_negative() && f != 0.0;
    let (digits, dp) = shortest(f);
    let a = f.abs();
    if a != 0.0 && !(1e-6..1e21).contains(&a) {
        let s = fmt_e(neg, &digits, dp);
        // Go trims a leading zero of a two-digit negative exponent: e-07 -> e-7
        if let Some(pos) = s.find("e-0") {
            let mut t = s[..pos + 2].to_string();
            t.push_str(&s[pos + 3..]);
            return t;
        }
        return s;
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".to_string()
        } else {
            "0".to_string()
        };
    }
    fmt_f(neg, &digits, dp)
}

/// Go's strconv.FormatFloat(f, 'g', -1, 64).
fn go_format_g(f: f64) -> String {
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".to_string()
        } else {
            "0".to_string()
        };
    }
    let neg = f.is_sign_negative();
    let (digits, dp) = shortest(f);
    let exp = dp - 1;
    if !(-4..6).contains(&exp) {
        fmt_e(neg, &digits, dp)
    } else {
        fmt_f(neg, &digits, dp)
    }
}

/// Would go-yaml v2 read this text, unquoted, back as a string?
fn resolves_to_string_v2(s: &str) -> bool {
    match s {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" | "n"
        | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" | ""
        | "~" | "null" | "Null" | "NULL" | ".nan" | ".NaN" | ".NAN" | ".inf" | ".Inf" | ".INF"
        | "+.inf" | "+.Inf" | "+.INF" | "-.inf" | "-.Inf" | "-.INF" | "<<" => return false,
        _ => {}
    }
    let first = s.as_bytes()[0];
    match first {
        b'.' => super::read::go_parse_float(s).is_none(),
        b'0'..=b'9' | b'+' | b'-' => {
            if super::read::parse_timestamp(s).is_some() {
                return false;
            }
            let plain: String = s.chars().filter(|&c| c != '_').collect();
            if super::read::go_parse_int(&plain).is_some()
                || super::read::go_parse_uint(&plain).is_some()
            {
                return false;
            }
            if is_float_syntax(&plain) && super::read::go_parse_float(&plain).is_some() {
                return false;
            }
            if let Some(rest) = plain.strip_prefix("0b")
                && !rest.is_empty()
                && rest.chars().all(|c| c == '0' || c == '1')
            {
                return false;
            }
            if let Some(rest) = plain.strip_prefix("-0b")
                && !rest.is_empty()
                && rest.chars().all(|c| c == '0' || c == '1')
            {
                return false;
            }
            true
        }
        _ => true,
    }
}

fn is_float_syntax(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let st = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = i - st;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let fs = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if int_digits == 0 && i == fs {
            return false;
        }
    } else if int_digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let es = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == es {
            return false;
        }
    }
    i == b.len()
}

/// `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`
fn is_base60_float(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || !(b[0] == b'+' || b[0] == b'-' || b[0].is_ascii_digit()) || !s.contains(':')
    {
        return false;
    }
    let mut i = 0;
    if b[0] == b'+' || b[0] == b'-' {
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
        // [0-5]?[0-9]: one or two digits, the first of two in 0-5
        if i < b.len() && b[i].is_ascii_digit() {
            if i + 1 < b.len() && b[i + 1].is_ascii_digit() && b[i] <= b'5' {
                i += 2;
            } else {
                i += 1;
            }
        } else {
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

/// go-yaml v2's key order: numbers by value, strings in a "natural" order where runs of
/// digits compare as numbers and letters sort before non-letters.
pub fn key_less(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return key_less_in(a.as_bytes(), b.as_bytes(), |c| c as char);
    }
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    key_less_in(&ar, &br, |c| c)
}

fn key_less_in<T: Copy + PartialEq + PartialOrd>(
    ar: &[T],
    br: &[T],
    ch: impl Fn(T) -> char,
) -> bool {
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            i += 1;
            continue;
        }
        let al = ch(ar[i]).is_alphabetic();
        let bl = ch(br[i]).is_alphabetic();
        if al && bl {
            return ar[i] < br[i];
        }
        if al || bl {
            return bl;
        }
        let (mut an, mut bn): (i64, i64) = (0, 0);
        if ch(ar[i]) == '0' || ch(br[i]) == '0' {
            let mut j = i;
            while j > 0 {
                j -= 1;
                if !ch(ar[j]).is_ascii_digit() {
                    break;
                }
                if ch(ar[j]) != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ch(ar[ai]).is_ascii_digit() {
            an = an
                .wrapping_mul(10)
                .wrapping_add(ch(ar[ai]) as i64 - '0' as i64);
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && ch(br[bi]).is_ascii_digit() {
            bn = bn
                .wrapping_mul(10)
                .wrapping_add(ch(br[bi]) as i64 - '0' as i64);
            bi += 1;
        }
        if an != bn {
            return an < bn;
        }
        if ai != bi {
            return ai < bi;
        }
        return ar[i] < br[i];
    }
    ar.len() < br.len()
}

/// Sort keys in go-yaml v2's order (a stable merge sort on `key_less`).
pub fn sorted_keys(m: &serde_json::Map<String, Value>) -> Vec<&String> {
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort_by(|a, b| {
        if key_less(a, b) {
            std::cmp::Ordering::Less
        } else if key_less(b, a) {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    });
    keys
}

impl Emitter {
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

    fn increase_indent(&mut self, flow: bool, indentless: bool) {
        self.indents.push(self.indent);
        if self.indent < 0 {
            self.indent = if flow { BEST_INDENT } else { 0 };
        } else if !indentless {
            self.indent += BEST_INDENT;
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

    fn node(&mut self, v: &Value, ctx: Ctx) {
        match v {
            Value::Array(items) if items.is_empty() => self.empty_flow("[", "]"),
            Value::Object(m) if m.is_empty() => self.empty_flow("{", "}"),
            Value::Array(items) => {
                self.increase_indent(false, ctx.mapping && !self.indention);
                for it in items {
                    self.write_indent();
                    self.write_indicator("-", true, false, true);
                    self.node(
                        it,
                        Ctx {
                            mapping: false,
                            simple_key: false,
                        },
                    );
                }
                self.pop_indent();
            }
            Value::Object(m) => {
                self.increase_indent(false, false);
                for k in sorted_keys(m) {
                    self.write_indent();
                    let ka = analyze(k);
                    let simple = !ka.multiline && k.len() <= 128;
                    if simple {
                        self.scalar_text(
                            k,
                            string_style(k),
                            &ka,
                            Ctx {
                                mapping: true,
                                simple_key: true,
                            },
                        );
                        self.write_indicator(":", false, false, false);
                    } else {
                        self.write_indicator("?", true, false, true);
                        self.scalar_text(
                            k,
                            string_style(k),
                            &ka,
                            Ctx {
                                mapping: true,
                                simple_key: false,
                            },
                        );
                        self.write_indent();
                        self.write_indicator(":", true, false, true);
                    }
                    self.node(
                        &m[k.as_str()],
                        Ctx {
                            mapping: true,
                            simple_key: false,
                        },
                    );
                }
                self.pop_indent();
            }
            scalar => self.scalar(scalar, ctx),
        }
    }

    fn empty_flow(&mut self, open: &str, close: &str) {
        self.write_indicator(open, true, true, false);
        self.increase_indent(true, false);
        self.flow_level += 1;
        self.flow_level -= 1;
        self.pop_indent();
        self.write_indicator(close, false, false, false);
    }

    fn scalar(&mut self, v: &Value, ctx: Ctx) {
        let (text, requested) = scalar_of(v);
        let a = analyze(&text);
        self.scalar_text(&text, requested, &a, ctx);
    }

    fn scalar_text(&mut self, text: &str, requested: Style, a: &Analysis, ctx: Ctx) {
        let mut style = requested;
        if ctx.simple_key && a.multiline {
            style = Style::Double;
        }
        if style == Style::Plain {
            if (self.flow_level > 0 && !a.flow_plain) || (self.flow_level == 0 && !a.block_plain) {
                style = Style::Single;
            }
            if text.is_empty() && (self.flow_level > 0 || ctx.simple_key) {
                style = Style::Single;
            }
        }
        if style == Style::Single && !a.single_ok {
            style = Style::Double;
        }
        if style == Style::Literal && (!a.block_ok || self.flow_level > 0 || ctx.simple_key) {
            style = Style::Double;
        }
        self.increase_indent(true, false);
        let allow_breaks = !ctx.simple_key;
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
            self.write_indicator(&BEST_INDENT.to_string(), false, false, false);
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
    use serde_json::json;

    #[test]
    fn fast_analysis_matches_character_loop() {
        let samples = [
            "a",
            " a",
            "a ",
            "a  b",
            "a \n b",
            "a\n\n",
            "\n",
            " ",
            "  ",
            "-",
            "- a",
            "-a",
            "a: b",
            "a:b",
            "a #b",
            "a#b",
            "#a",
            "{\"a\": [1, 2]}",
            "x,y",
            "?x",
            "? x",
            "a\tb",
            "--- x",
            "...",
            "a\u{7f}",
            "line one\n  indented\nlast \n",
            "k: v\n# c\n",
            "a ,b",
            "x:\n y",
            "\r\n",
            "a\0b",
            "a   ",
            "   ",
            "a  \n",
            "x y  z",
        ];
        for s in samples {
            let (a, b) = (analyze_ascii(s.as_bytes()), analyze_chars(s));
            assert_eq!(
                (
                    a.multiline,
                    a.flow_plain,
                    a.block_plain,
                    a.single_ok,
                    a.block_ok
                ),
                (
                    b.multiline,
                    b.flow_plain,
                    b.block_plain,
                    b.single_ok,
                    b.block_ok
                ),
                "{s:?}"
            );
        }
    }

    #[test]
    fn natural_key_order() {
        assert!(key_less("a9", "a10"));
        assert!(key_less("a", "b"));
        assert!(key_less("a_", "ab"));
        assert!(!key_less("b", "B"));
    }

    #[test]
    fn float_texts() {
        let f = |x: f64| number_text(&serde_json::Number::from_f64(x).unwrap());
        assert_eq!(f(1.0), "1");
        assert_eq!(f(1.5), "1.5");
        assert_eq!(f(1e21), "1e+21");
        assert_eq!(f(1e-7), "1e-07");
        assert_eq!(f(123456789.5), "1.234567895e+08");
        assert_eq!(f(100000.5), "100000.5");
        assert_eq!(f(1e20), "1e+20");
    }

    #[test]
    fn basic_document() {
        let v = json!({"b": [1, {"x": "on", "y": ""}], "a": {}, "c": "multi\nline\n", "d": []});
        assert_eq!(
            to_yaml(&v),
            "a: {}\nb:\n- 1\n- x: \"on\"\n  \"y\": \"\"\nc: |\n  multi\n  line\nd: []\n"
        );
    }
}
