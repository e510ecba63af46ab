//! Plain-scalar resolution: what go-yaml's `resolve` makes of an unquoted, untagged scalar.
//! The readers turn the answer into their own values; the writers ask it whether a string
//! can go out plain.

use crate::num::{parse_float, parse_int, parse_uint};

/// Which resolver's table applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schema {
    /// go-yaml v2 (`resolve.go`), as sigs.k8s.io/yaml reads: YAML 1.1 booleans (`y`, `yes`,
    /// `on`, `off`, ... in go-yaml's case variants).
    V2,
    /// yaml.v3 and kyaml's fork of it: only `true`/`false` (three spellings each) are
    /// booleans; `0o` octals.
    V3,
}

/// A plain scalar's type as go-yaml resolves it.
#[derive(Clone, Debug, PartialEq)]
pub enum Resolved {
    Null,
    Bool(bool),
    Int(i64),
    /// Fits only an unsigned 64-bit integer.
    Uint(u64),
    /// Includes the infinities and NaN (`.inf`, `.nan`).
    Float(f64),
    /// A timestamp, as Go's `time.Time` prints in RFC 3339 with nanoseconds.
    Timestamp(String),
    /// `<<`, the merge key.
    Merge,
    Str,
}

/// go-yaml v2's extra booleans, which yaml.v3 reads as strings but still quotes when
/// writing (its `isOldBool`).
pub fn is_old_bool(s: &str) -> Option<bool> {
    match s {
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Some(true),
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

/// Resolve a plain scalar.
pub fn resolve(text: &str, schema: Schema) -> Resolved {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Resolved::Null,
        "true" | "True" | "TRUE" => return Resolved::Bool(true),
        "false" | "False" | "FALSE" => return Resolved::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Resolved::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Resolved::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Resolved::Float(f64::NAN),
        "<<" => return Resolved::Merge,
        _ => {}
    }
    if schema == Schema::V2
        && let Some(b) = is_old_bool(text)
    {
        return Resolved::Bool(b);
    }
    match text.as_bytes()[0] {
        b'.' => match parse_float(text) {
            Some(f) if is_yaml_float(text) => Resolved::Float(f),
            _ => Resolved::Str,
        },
        b'0'..=b'9' | b'+' | b'-' => {
            if let Some(ts) = parse_timestamp(text) {
                return Resolved::Timestamp(ts);
            }
            let plain: String = text.chars().filter(|&c| c != '_').collect();
            if let Some(i) = parse_int(&plain) {
                Resolved::Int(i)
            } else if let Some(u) = parse_uint(&plain) {
                Resolved::Uint(u)
            } else if is_yaml_float(&plain)
                && let Some(f) = parse_float(&plain)
            {
                Resolved::Float(f)
            } else {
                Resolved::Str
            }
        }
        _ => Resolved::Str,
    }
}

/// Would the writer of `schema` put this string out plain? go-yaml's `stringv`: only when it
/// reads back as a string and is not a YAML 1.1 base-60 float; yaml.v3 also quotes the
/// YAML 1.1 booleans it no longer reads as such (`isOldBool`).
pub fn plain_is_string(s: &str, schema: Schema) -> bool {
    resolve(s, schema) == Resolved::Str
        && !is_base60_float(s)
        // (under V2 the old booleans already resolve to booleans)
        && (schema == Schema::V2 || is_old_bool(s).is_none())
}

/// go-yaml's `yamlStyleFloat`: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
pub fn is_yaml_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let digits = |i: &mut usize| {
        let st = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - st
    };
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            digits(&mut i);
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// go-yaml's `isBase60Float`: `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`, which
/// both writers quote (YAML 1.1 read it as a sexagesimal number).
pub fn is_base60_float(s: &str) -> bool {
    let b = s.strip_prefix(['-', '+']).unwrap_or(s).as_bytes();
    if b.is_empty() || !b[0].is_ascii_digit() || !b.contains(&b':') {
        return false;
    }
    let mut i = 1;
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    let mut groups = 0;
    while i < b.len() && b[i] == b':' {
        i += 1;
        // [0-5]?[0-9]: one or two digits, the first of two in 0-5
        match (b.get(i), b.get(i + 1)) {
            (Some(d), Some(e)) if d.is_ascii_digit() && e.is_ascii_digit() && *d <= b'5' => i += 2,
            (Some(d), _) if d.is_ascii_digit() => i += 1,
            _ => return false,
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

/// A timestamp in one of the layouts go-yaml's `parseTimestamp` tries (`2006-1-2T15:4:5.999999999Z07:00`,
/// the same with `t`, `2006-1-2 15:4:5.999999999`, `2006-1-2`), formatted as Go's
/// `time.RFC3339Nano` prints the parsed time (a zero offset as `Z`).
pub fn parse_timestamp(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return None;
    }
    let mut p = Cur { b, i: 5 };
    let year: i64 = s[..4].parse().ok()?;
    let month = p.num(1, 2)?;
    p.eat(b'-')?;
    let day = p.num(1, 2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if p.i == b.len() {
        return Some(format!("{year:04}-{month:02}-{day:02}T00:00:00Z"));
    }
    let sep = b[p.i];
    if sep != b'T' && sep != b't' && sep != b' ' {
        return None;
    }
    p.i += 1;
    let hour = p.num(1, 2)?;
    p.eat(b':')?;
    let min = p.num(1, 2)?;
    p.eat(b':')?;
    let sec = p.num(1, 2)?;
    if hour > 23 || min > 59 || sec > 59 {
        return None;
    }
    let mut frac = "";
    if p.i < b.len() && b[p.i] == b'.' {
        p.i += 1;
        let st = p.i;
        while p.i < b.len() && b[p.i].is_ascii_digit() {
            p.i += 1;
        }
        if p.i == st || p.i - st > 9 {
            return None;
        }
        frac = s[st..p.i].trim_end_matches('0');
    }
    let zone = if sep == b' ' {
        "Z".to_string()
    } else {
        match b.get(p.i) {
            Some(b'Z') => {
                p.i += 1;
                "Z".to_string()
            }
            Some(&sign @ (b'+' | b'-')) => {
                p.i += 1;
                let zh = p.num(2, 2)?;
                p.eat(b':')?;
                let zm = p.num(2, 2)?;
                if zh > 24 || zm > 59 {
                    return None;
                }
                if zh == 0 && zm == 0 {
                    "Z".to_string()
                } else {
                    format!("{}{zh:02}:{zm:02}", sign as char)
                }
            }
            _ => return None,
        }
    };
    if p.i != b.len() {
        return None;
    }
    let dot = if frac.is_empty() { "" } else { "." };
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{hour:02}:{min:02}:{sec:02}{dot}{frac}{zone}"
    ))
}

struct Cur<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cur<'_> {
    fn num(&mut self, min: usize, max: usize) -> Option<i64> {
        let st = self.i;
        while self.i < self.b.len() && self.i - st < max && self.b[self.i].is_ascii_digit() {
            self.i += 1;
        }
        if self.i - st < min {
            return None;
        }
        std::str::from_utf8(&self.b[st..self.i]).ok()?.parse().ok()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.b.get(self.i) == Some(&c)).then(|| self.i += 1)
    }
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_like_go_yaml() {
        use Resolved::*;
        let v3 = |s| resolve(s, Schema::V3);
        assert_eq!(v3("0755"), Int(493));
        assert_eq!(v3("on"), Str);
        assert_eq!(resolve("on", Schema::V2), Bool(true));
        assert_eq!(v3("1_000"), Int(1000));
        assert_eq!(v3("1e3"), Float(1000.0));
        assert_eq!(v3("08"), Float(8.0));
        assert_eq!(v3("18446744073709551615"), Uint(u64::MAX));
        assert_eq!(v3("2024-01-01"), Timestamp("2024-01-01T00:00:00Z".into()));
        assert_eq!(
            v3("2024-1-2T3:04:05.500+01:00"),
            Timestamp("2024-01-02T03:04:05.5+01:00".into())
        );
        assert_eq!(v3("2024-01-02T10:00:00"), Str);
        assert_eq!(v3("1.2.3"), Str);
        assert_eq!(v3("<<"), Merge);
        assert!(matches!(v3(".nan"), Float(f) if f.is_nan()));
    }

    #[test]
    fn plain_strings() {
        assert!(plain_is_string("plain", Schema::V2));
        assert!(!plain_is_string("yes", Schema::V3));
        assert!(!plain_is_string("1:20", Schema::V3));
        assert!(!plain_is_string("", Schema::V2));
        assert!(is_base60_float("190:20:30.15"));
        assert!(!is_base60_float("1:2:"));
    }
}
