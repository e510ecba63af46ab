//! `toToml`: a TOML encoder shaped like BurntSushi/toml's (plain keys first, then tables).

use ferroflux_gotemplate::Value;

fn key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        quote(k)
    }
}

fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\u{:04X}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn scalar(v: &Value) -> Option<String> {
    Some(match v {
        Value::Bool(b) => b.to_string(),
        Value::Int(i) | Value::Int64(i) => i.to_string(),
        Value::Uint(u) => u.to_string(),
        Value::Byte(b) => b.to_string(),
        Value::Float(f) => {
            if f.is_nan() {
                "nan".into()
            } else if f.is_infinite() {
                if *f > 0.0 {
                    "inf".into()
                } else {
                    "-inf".into()
                }
            } else if f.fract() == 0.0 && f.abs() < 1e16 {
                format!("{f:.1}")
            } else {
                ferroflux_gotemplate::gofmt::format_float(*f, 'f', None)
            }
        }
        Value::String(s) => quote(s),
        Value::List(l) => {
            let items: Vec<String> = l.iter().filter_map(scalar).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Map(_) => {
            let m = v.as_map()?;
            let m = m.borrow();
            let items: Vec<String> = m
                .iter()
                .filter_map(|(k, x)| scalar(x).map(|s| format!("{} = {}", key(k), s)))
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        _ => return None,
    })
}

fn is_table(v: &Value) -> bool {
    matches!(v, Value::Map(_))
}

fn is_table_array(v: &Value) -> bool {
    matches!(v, Value::List(l) if !l.is_empty() && l.iter().all(is_table))
}

fn write_table(out: &mut String, path: &[String], v: &Value, indent: usize) {
    let Some(m) = v.as_map() else { return };
    let m = m.borrow();
    let pad = "  ".repeat(indent);
    for (k, x) in m.iter() {
        if x.is_nil() || is_table(x) || is_table_array(x) {
            continue;
        }
        if let Some(s) = scalar(x) {
            out.push_str(&format!("{pad}{} = {}\n", key(k), s));
        }
    }
    for (k, x) in m.iter() {
        let mut p = path.to_vec();
        p.push(key(k));
        let ipad = "  ".repeat(indent);
        if is_table(x) {
            out.push_str(&format!("\n{ipad}[{}]\n", p.join(".")));
            write_table(out, &p, x, indent + 1);
        } else if is_table_array(x)
            && let Value::List(l) = x
        {
            for e in l.iter() {
                out.push_str(&format!("\n{ipad}[[{}]]\n", p.join(".")));
                write_table(out, &p, e, indent + 1);
            }
        }
    }
}

/// BurntSushi/toml encoding of a map.
pub fn to_toml(v: &Value) -> String {
    if !is_table(v) {
        return "toml: top-level values must be Go maps or structs".into();
    }
    let mut out = String::new();
    write_table(&mut out, &[], v, 0);
    if out.starts_with('\n') {
        out.remove(0);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// fromToml: a TOML reader producing what BurntSushi/toml decodes into map[string]interface{}
// (integers int64, floats float64, strings, bools, arrays, tables).

struct Reader<'a> {
    s: &'a [u8],
    i: usize,
    line: usize,
    /// BurntSushi's "last key": the table and key being read, for error messages.
    last_key: String,
}

/// Go's `%q` of a rune.
fn q_rune(c: char) -> String {
    ferroflux_gotemplate::gofmt::sprintf("%q", &[Value::Int(c as i64)])
}

type TResult<T> = Result<T, String>;

impl Reader<'_> {
    fn err<T>(&self, msg: &str) -> TResult<T> {
        // at the end of the input the position is the last character's line
        let at_end = self.i >= self.s.len() && self.s.ends_with(b"\n") && self.line > 1;
        self.err_at(if at_end { self.line - 1 } else { self.line }, msg)
    }
    fn err_at<T>(&self, line: usize, msg: &str) -> TResult<T> {
        if self.last_key.is_empty() {
            Err(format!("toml: line {line}: {msg}"))
        } else {
            Err(format!(
                "toml: line {line} (last key {}): {msg}",
                ferroflux_gotemplate::gofmt::quote(&self.last_key)
            ))
        }
    }
    /// The character at the reader, Go-`%q` style, or `end of file`.
    fn here(&self) -> String {
        std::str::from_utf8(&self.s[self.i..])
            .ok()
            .and_then(|r| r.chars().next())
            .map_or_else(|| "end of file".to_string(), q_rune)
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn ws(&mut self) {
        while let Some(c) = self.peek() {
            if c == b' ' || c == b'\t' {
                self.i += 1;
            } else {
                break;
            }
        }
    }
    fn ws_nl(&mut self) {
        loop {
            self.ws();
            match self.peek() {
                Some(b'\n') => {
                    self.line += 1;
                    self.i += 1;
                }
                Some(b'\r') => self.i += 1,
                Some(b'#') => self.comment(),
                _ => return,
            }
        }
    }
    fn comment(&mut self) {
        while let Some(c) = self.peek() {
            if c == b'\n' {
                return;
            }
            self.i += 1;
        }
    }
    fn key_part(&mut self) -> TResult<String> {
        self.ws();
        match self.peek() {
            Some(b'"') => self.basic_string(),
            Some(b'\'') => self.literal_string(),
            _ => {
                let st = self.i;
                while let Some(c) = self.peek() {
                    if c.is_ascii_alphanumeric() || c == b'_' || c == b'-' {
                        self.i += 1;
                    } else {
                        break;
                    }
                }
                if st == self.i {
                    return match self.peek() {
                        Some(b'=') => self.err("unexpected '=': key name appears blank"),
                        Some(b'.') => self.err("unexpected '.': keys cannot start with a '.'"),
                        None => self.err("unexpected EOF; expected key separator '='"),
                        _ => self.err(&format!("expected key but found {} instead", self.here())),
                    };
                }
                Ok(String::from_utf8_lossy(&self.s[st..self.i]).into_owned())
            }
        }
    }
    fn key(&mut self) -> TResult<Vec<String>> {
        let mut parts = vec![self.key_part()?];
        loop {
            self.ws();
            if self.peek() == Some(b'.') {
                self.i += 1;
                parts.push(self.key_part()?);
            } else {
                return Ok(parts);
            }
        }
    }
    fn basic_string(&mut self) -> TResult<String> {
        if self.s[self.i..].starts_with(b"\"\"\"") {
            self.i += 3;
            if self.peek() == Some(b'\n') {
                self.i += 1;
                self.line += 1;
            }
            let mut out = Vec::new();
            loop {
                if self.s[self.i..].starts_with(b"\"\"\"") {
                    self.i += 3;
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
                match self.peek() {
                    None => return self.err("unexpected EOF; expected '\"\"\"'"),
                    Some(b'\\') => {
                        // line-ending backslash trims following whitespace
                        let mut j = self.i + 1;
                        while j < self.s.len() && (self.s[j] == b' ' || self.s[j] == b'\t') {
                            j += 1;
                        }
                        if j < self.s.len() && (self.s[j] == b'\n' || self.s[j] == b'\r') {
                            self.i = j;
                            while let Some(c) = self.peek() {
                                if c.is_ascii_whitespace() {
                                    if c == b'\n' {
                                        self.line += 1;
                                    }
                                    self.i += 1;
                                } else {
                                    break;
                                }
                            }
                            continue;
                        }
                        self.escape(&mut out)?;
                    }
                    Some(c) => {
                        if c == b'\n' {
                            self.line += 1;
                        }
                        out.push(c);
                        self.i += 1;
                    }
                }
            }
        }
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return self.err("unexpected EOF; expected '\"'"),
                Some(b'\n') => return self.err("strings cannot contain newlines"),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
                Some(b'\\') => self.escape(&mut out)?,
                Some(c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }
    fn escape(&mut self, out: &mut Vec<u8>) -> TResult<()> {
        self.i += 1;
        let c = match self.peek() {
            Some(c) => c,
            None => return self.err("unexpected EOF; expected '\"'"),
        };
        self.i += 1;
        let simple = match c {
            b'b' => Some(8u8),
            b't' => Some(b'\t'),
            b'n' => Some(b'\n'),
            b'f' => Some(12),
            b'r' => Some(b'\r'),
            b'"' => Some(b'"'),
            b'\\' => Some(b'\\'),
            b'e' => Some(27),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            return Ok(());
        }
        let n = match c {
            b'u' => 4,
            b'U' => 8,
            _ => {
                return self.err(&format!("invalid escape in string '\\{}'", char::from(c)));
            }
        };
        let hex = std::str::from_utf8(self.s.get(self.i..self.i + n).unwrap_or_default())
            .unwrap_or_default()
            .to_string();
        self.i += n;
        let ch = u32::from_str_radix(&hex, 16)
            .ok()
            .and_then(char::from_u32)
            .ok_or_else(|| format!("toml: line {}: invalid unicode escape", self.line))?;
        let mut b = [0u8; 4];
        out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
        Ok(())
    }
    fn literal_string(&mut self) -> TResult<String> {
        if self.s[self.i..].starts_with(b"'''") {
            self.i += 3;
            if self.peek() == Some(b'\n') {
                self.i += 1;
                self.line += 1;
            }
            let st = self.i;
            while !self.s[self.i..].starts_with(b"'''") {
                match self.peek() {
                    None => return self.err("unexpected EOF; expected \"'''\""),
                    Some(c) => {
                        if c == b'\n' {
                            self.line += 1;
                        }
                        self.i += 1;
                    }
                }
            }
            let v = String::from_utf8_lossy(&self.s[st..self.i]).into_owned();
            self.i += 3;
            return Ok(v);
        }
        self.i += 1;
        let st = self.i;
        loop {
            match self.peek() {
                None => return self.err("unexpected EOF; expected \"'\""),
                Some(b'\n') => return self.err("strings cannot contain newlines"),
                Some(b'\'') => {
                    let v = String::from_utf8_lossy(&self.s[st..self.i]).into_owned();
                    self.i += 1;
                    return Ok(v);
                }
                _ => self.i += 1,
            }
        }
    }
    fn value(&mut self, depth: usize) -> TResult<Value> {
        if depth > 200 {
            return self.err("nesting too deep");
        }
        self.ws();
        match self.peek() {
            None => self.err("unexpected EOF; expected value"),
            Some(b'\n') | Some(b'\r') => {
                self.err(&format!("expected value but found {} instead", self.here()))
            }
            Some(b'"') => Ok(Value::str(self.basic_string()?)),
            Some(b'\'') => Ok(Value::str(self.literal_string()?)),
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    self.ws_nl();
                    if self.peek() == Some(b']') {
                        self.i += 1;
                        return Ok(Value::list(items));
                    }
                    items.push(self.value(depth + 1)?);
                    self.ws_nl();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Value::list(items));
                        }
                        _ => {
                            return self.err(&format!(
                                "expected a comma (',') or array terminator (']'), but got {}",
                                self.here()
                            ));
                        }
                    }
                }
            }
            Some(b'{') => {
                self.i += 1;
                let table = Value::new_map();
                self.ws();
                if self.peek() == Some(b'}') {
                    self.i += 1;
                    return Ok(table);
                }
                let outer = self.last_key.clone();
                loop {
                    let k = self.key()?;
                    self.ws();
                    if self.peek() != Some(b'=') {
                        return self.err(&format!(
                            "expected '.' or '=', but got {} instead",
                            self.here()
                        ));
                    }
                    self.i += 1;
                    self.last_key = join_key(&outer, &k);
                    let v = self.value(depth + 1)?;
                    if insert_path(&table, &k, v, self.line).is_err() {
                        return self.err(&defined(&self.last_key));
                    }
                    self.ws_nl();
                    match self.peek() {
                        Some(b',') => {
                            self.i += 1;
                            // a trailing comma is allowed (TOML 1.1)
                            self.ws_nl();
                            if self.peek() == Some(b'}') {
                                self.i += 1;
                                return Ok(table);
                            }
                        }
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(table);
                        }
                        _ => {
                            return self.err(&format!(
                                "expected a comma or an inline table terminator '}}', but got {} instead",
                                self.here()
                            ));
                        }
                    }
                }
            }
            _ => {
                let st = self.i;
                while let Some(c) = self.peek() {
                    if c == b',' || c == b']' || c == b'}' || c == b'#' || c == b'\n' || c == b'\r'
                    {
                        break;
                    }
                    self.i += 1;
                }
                let raw = std::str::from_utf8(&self.s[st..self.i])
                    .unwrap_or_default()
                    .trim_end()
                    .to_string();
                if let Some(why) = number_error(&raw) {
                    return self.err(&why);
                }
                if let Some(v) = scalar_value(&raw) {
                    return Ok(v);
                }
                // the longest prefix that is a number or date ends the value (`0x1G`: `0x1`)
                let numeric = raw.starts_with(|c: char| c.is_ascii_digit() || c == '+' || c == '-');
                let bounds: Vec<usize> = raw.char_indices().map(|(i, _)| i).skip(1).collect();
                let cut = bounds
                    .into_iter()
                    .rev()
                    .find(|i| numeric && scalar_value(raw[..*i].trim_end()).is_some());
                match cut {
                    Some(i) => {
                        self.i = st + i;
                        Ok(scalar_value(raw[..i].trim_end()).unwrap_or(Value::Nil))
                    }
                    None => self.err(&format!(
                        "expected value but found {} instead",
                        ferroflux_gotemplate::gofmt::quote(&raw)
                    )),
                }
            }
        }
    }
}

/// BurntSushi's complaints about a decimal number token (leading zeroes, a bare `.`,
/// misplaced underscores).
fn number_error(raw: &str) -> Option<String> {
    let tok = raw.split([' ', '\t']).next().unwrap_or_default();
    let body = tok.strip_prefix(['+', '-']).unwrap_or(tok);
    if body.is_empty()
        || !body.starts_with(|c: char| c.is_ascii_digit())
        || body.starts_with("0x")
        || body.starts_with("0o")
        || body.starts_with("0b")
        || (body.len() >= 5 && body.as_bytes()[4] == b'-')
        || (body.len() >= 3 && body.as_bytes()[2] == b':')
        || !body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '_' | 'e' | 'E' | '+' | '-'))
    {
        return None;
    }
    let q = ferroflux_gotemplate::gofmt::quote(tok);
    let float = body.contains(['.', 'e', 'E']);
    let kind = if float { "float" } else { "integer" };
    let b = body.as_bytes();
    let bad_underscore = b.iter().enumerate().any(|(i, c)| {
        *c == b'_'
            && !(i > 0 && b[i - 1].is_ascii_digit() && b.get(i + 1).is_some_and(u8::is_ascii_digit))
    });
    if bad_underscore {
        return Some(format!(
            "Invalid {kind} {q}: underscores must be surrounded by digits"
        ));
    }
    let int_part: String = body
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '_')
        .collect();
    if int_part.len() > 1 && int_part.starts_with('0') {
        return Some(format!("Invalid {kind} {q}: cannot have leading zeroes"));
    }
    if let Some(dot) = body.find('.')
        && !body[dot + 1..].starts_with(|c: char| c.is_ascii_digit())
    {
        return Some(format!(
            "Invalid float {q}: '.' must be followed by one or more digits"
        ));
    }
    None
}

fn join_key(ctx: &str, key: &[String]) -> String {
    let k = key.join(".");
    if ctx.is_empty() {
        k
    } else {
        format!("{ctx}.{k}")
    }
}

fn defined(key: &str) -> String {
    format!("Key '{key}' has already been defined.")
}

fn scalar_value(raw: &str) -> Option<Value> {
    match raw {
        "true" => return Some(Value::Bool(true)),
        "false" => return Some(Value::Bool(false)),
        "inf" | "+inf" => return Some(Value::Float(f64::INFINITY)),
        "-inf" => return Some(Value::Float(f64::NEG_INFINITY)),
        "nan" | "+nan" | "-nan" => return Some(Value::Float(f64::NAN)),
        _ => {}
    }
    let clean = raw.replace('_', "");
    let (neg, body) = match clean.strip_prefix('-') {
        Some(b) => (true, b.to_string()),
        None => (false, clean.strip_prefix('+').unwrap_or(&clean).to_string()),
    };
    for (p, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(d) = body.strip_prefix(p) {
            let v = i64::from_str_radix(d, radix).ok()?;
            return Some(Value::Int64(if neg { -v } else { v }));
        }
    }
    if !body.is_empty() && body.bytes().all(|c| c.is_ascii_digit()) {
        if body.len() > 1 && body.starts_with('0') {
            return None;
        }
        let v: i64 = clean.parse().ok()?;
        return Some(Value::Int64(v));
    }
    if body.bytes().next().is_some_and(|c| c.is_ascii_digit())
        && body.contains(['.', 'e', 'E'])
        && let Ok(f) = clean.parse::<f64>()
    {
        return Some(Value::Float(f));
    }
    datetime(raw)
}

/// `n` ASCII digits at `s[at..]`.
fn digits(s: &str, at: usize, n: usize) -> Option<i32> {
    let part = s.get(at..at + n)?;
    part.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| part.parse().ok())?
}

/// A TOML date, time or date-time as the `time.Time` BurntSushi/toml decodes it: offset
/// date-times in a UTC or fixed zone, local forms in the zones it names `datetime-local`,
/// `date-local` and `time-local` (offset 0; local times on 0000-01-01).
fn datetime(raw: &str) -> Option<Value> {
    use jiff::civil::{Date, DateTime, Time};
    let time_at = |s: &str| -> Option<(Time, usize)> {
        let (h, m, sec) = (digits(s, 0, 2)?, digits(s, 3, 2)?, digits(s, 6, 2)?);
        if s.as_bytes().get(2) != Some(&b':') || s.as_bytes().get(5) != Some(&b':') {
            return None;
        }
        let mut used = 8;
        let mut nanos = 0i32;
        if s.as_bytes().get(8) == Some(&b'.') {
            let frac: String = s[9..].chars().take_while(char::is_ascii_digit).collect();
            if frac.is_empty() {
                return None;
            }
            used += 1 + frac.len();
            let nine: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
            nanos = nine.parse().ok()?;
        }
        let t = Time::new(
            i8::try_from(h).ok()?,
            i8::try_from(m).ok()?,
            i8::try_from(sec).ok()?,
            nanos,
        )
        .ok()?;
        Some((t, used))
    };
    let named = |dt: DateTime, name: &'static str| -> Option<Value> {
        let ts = dt.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp();
        Some(Value::Object(std::rc::Rc::new(crate::date::GoTime {
            ts,
            tz: jiff::tz::TimeZone::UTC,
            name: Some(name),
        })))
    };
    // a local time
    if raw.as_bytes().get(2) == Some(&b':') {
        let (t, used) = time_at(raw)?;
        if used != raw.len() {
            return None;
        }
        return named(Date::new(0, 1, 1).ok()?.to_datetime(t), "time-local");
    }
    let (y, mo, d) = (digits(raw, 0, 4)?, digits(raw, 5, 2)?, digits(raw, 8, 2)?);
    if raw.as_bytes().get(4) != Some(&b'-') || raw.as_bytes().get(7) != Some(&b'-') {
        return None;
    }
    let date = Date::new(
        i16::try_from(y).ok()?,
        i8::try_from(mo).ok()?,
        i8::try_from(d).ok()?,
    )
    .ok()?;
    if raw.len() == 10 {
        return named(date.to_datetime(Time::midnight()), "date-local");
    }
    if !matches!(raw.as_bytes().get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let rest = &raw[11..];
    let (t, used) = time_at(rest)?;
    let dt = date.to_datetime(t);
    let zone = &rest[used..];
    if zone.is_empty() {
        return named(dt, "datetime-local");
    }
    let tz = if zone == "Z" || zone == "z" {
        jiff::tz::TimeZone::UTC
    } else {
        let sign = match zone.as_bytes().first() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return None,
        };
        if zone.len() != 6 || zone.as_bytes()[3] != b':' {
            return None;
        }
        let secs = sign * (digits(zone, 1, 2)? * 3600 + digits(zone, 4, 2)? * 60);
        jiff::tz::TimeZone::fixed(jiff::tz::Offset::from_seconds(secs).ok()?)
    };
    let ts = dt.to_zoned(tz.clone()).ok()?.timestamp();
    Some(Value::Object(std::rc::Rc::new(crate::date::GoTime {
        ts,
        tz,
        name: None,
    })))
}

fn insert_path(table: &Value, key: &[String], v: Value, line: usize) -> TResult<()> {
    let mut cur = table.clone();
    for (i, k) in key.iter().enumerate() {
        let m = cur
            .as_map()
            .ok_or_else(|| format!("toml: line {line}: key {k:?} is not a table"))?;
        if i + 1 == key.len() {
            if m.borrow().contains_key(k) {
                return Err(format!("toml: line {line}: key {k:?} is already defined"));
            }
            m.borrow_mut().insert(k.clone(), v);
            return Ok(());
        }
        let next = m.borrow().get(k).cloned();
        cur = match next {
            Some(n) => n,
            None => {
                let t = Value::new_map();
                m.borrow_mut().insert(k.clone(), t.clone());
                t
            }
        };
    }
    Ok(())
}

fn table_at(root: &Value, key: &[String], array: bool, line: usize) -> TResult<Value> {
    let mut cur = root.clone();
    for (i, k) in key.iter().enumerate() {
        let m = cur
            .as_map()
            .ok_or_else(|| format!("toml: line {line}: key {k:?} is not a table"))?;
        let last = i + 1 == key.len();
        let existing = m.borrow().get(k).cloned();
        cur = match (existing, last && array) {
            (None, true) => {
                let t = Value::new_map();
                m.borrow_mut()
                    .insert(k.clone(), Value::list(vec![t.clone()]));
                t
            }
            (Some(Value::List(l)), true) => {
                let t = Value::new_map();
                let mut v = l.as_ref().clone();
                v.push(t.clone());
                m.borrow_mut().insert(k.clone(), Value::list(v));
                t
            }
            (Some(Value::List(l)), false) => l
                .last()
                .cloned()
                .ok_or_else(|| format!("toml: line {line}: empty array of tables"))?,
            (Some(t), _) => t,
            (None, false) => {
                let t = Value::new_map();
                m.borrow_mut().insert(k.clone(), t.clone());
                t
            }
        };
    }
    Ok(cur)
}

/// Parse a TOML document (errors as BurntSushi/toml words them).
pub fn from_toml(text: &str) -> Result<Value, String> {
    let mut r = Reader {
        s: text.as_bytes(),
        i: 0,
        line: 1,
        last_key: String::new(),
    };
    let root = Value::new_map();
    let mut current = root.clone();
    let mut context = String::new();
    let mut headers: std::collections::HashSet<Vec<String>> = Default::default();
    loop {
        r.ws_nl();
        let Some(c) = r.peek() else {
            return Ok(root);
        };
        if c == b'[' {
            let array = r.s[r.i..].starts_with(b"[[");
            r.i += if array { 2 } else { 1 };
            r.last_key.clear();
            let key = r.key()?;
            r.ws();
            let close: &[u8] = if array { b"]]" } else { b"]" };
            if !r.s[r.i..].starts_with(close) {
                let line = if r.peek() == Some(b'\n') {
                    r.line + 1
                } else {
                    r.line
                };
                return r.err_at(
                    line,
                    &format!(
                        "expected '.' or ']' to end table name, but got {} instead",
                        r.here()
                    ),
                );
            }
            r.i += close.len();
            if !array && !headers.insert(key.clone()) {
                return r.err(&defined(&key.join(".")));
            }
            current = table_at(&root, &key, array, r.line)?;
            context = key.join(".");
        } else {
            r.last_key.clear();
            let key = r.key()?;
            r.ws();
            if r.peek() != Some(b'=') {
                return match r.peek() {
                    None => r.err("unexpected EOF; expected key separator '='"),
                    _ => r.err(&format!(
                        "expected '.' or '=', but got {} instead",
                        r.here()
                    )),
                };
            }
            r.i += 1;
            r.last_key = join_key(&context, &key);
            let v = r.value(0)?;
            if insert_path(&current, &key, v, r.line).is_err() {
                return r.err(&defined(&r.last_key));
            }
        }
        r.last_key.clear();
        r.ws();
        match r.peek() {
            None | Some(b'\n') | Some(b'\r') | Some(b'#') => {}
            _ => {
                return r.err(&format!(
                    "expected a top-level item to end with a newline, comment, or EOF, but got {} instead",
                    r.here()
                ));
            }
        }
    }
}
