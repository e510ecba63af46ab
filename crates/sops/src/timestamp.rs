//! Timestamps as sops's YAML store sees them: plain scalars in one of yaml.v3's layouts
//! become `time.Time`, printed in RFC 3339 with nanoseconds (trailing zeros dropped).

fn digits(b: &[u8], from: usize, min: usize, max: usize) -> Option<(u32, usize)> {
    let n = b[from.min(b.len())..]
        .iter()
        .take(max)
        .take_while(|c| c.is_ascii_digit())
        .count();
    if n < min {
        return None;
    }
    let v = std::str::from_utf8(&b[from..from + n]).ok()?.parse().ok()?;
    Some((v, from + n))
}

fn days_in(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        _ => 28,
    }
}

struct Parsed {
    date: (u32, u32, u32),
    time: (u32, u32, u32),
    frac: String,
    zone: String,
}

impl Parsed {
    fn nano(&self) -> String {
        let (y, mo, d) = self.date;
        let (h, mi, s) = self.time;
        let frac = self.frac.trim_end_matches('0');
        let frac = if frac.is_empty() {
            String::new()
        } else {
            format!(".{frac}")
        };
        format!(
            "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{frac}{}",
            self.zone
        )
    }
}

fn valid(p: &Parsed) -> bool {
    let (y, mo, d) = p.date;
    let (h, mi, s) = p.time;
    (1..=12).contains(&mo) && d >= 1 && d <= days_in(y, mo) && h < 24 && mi < 60 && s < 60
}

/// Parse `YYYY-M-D` followed by `T`/`t` + `H:M:S[.frac](Z|±hh:mm)`, by ` ` + `H:M:S[.frac]`, or
/// by nothing.
fn parse(s: &str, zone_required_for_t: bool) -> Option<Parsed> {
    let b = s.as_bytes();
    if b.len() < 8 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return None;
    }
    let (y, i) = digits(b, 0, 4, 4)?;
    let (mo, i) = digits(b, i + 1, 1, 2)?;
    if b.get(i) != Some(&b'-') {
        return None;
    }
    let (d, i) = digits(b, i + 1, 1, 2)?;
    let mut p = Parsed {
        date: (y, mo, d),
        time: (0, 0, 0),
        frac: String::new(),
        zone: "Z".into(),
    };
    if i == b.len() {
        return valid(&p).then_some(p);
    }
    let sep = b[i];
    if !matches!(sep, b'T' | b't' | b' ') {
        return None;
    }
    let (h, i) = digits(b, i + 1, 1, 2)?;
    if b.get(i) != Some(&b':') {
        return None;
    }
    let (mi, i) = digits(b, i + 1, 1, 2)?;
    if b.get(i) != Some(&b':') {
        return None;
    }
    let (sec, mut i) = digits(b, i + 1, 1, 2)?;
    p.time = (h, mi, sec);
    if matches!(b.get(i), Some(b'.' | b',')) && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
        let n = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        p.frac = s[i + 1..i + 1 + n].chars().take(9).collect();
        i += 1 + n;
    }
    let rest = &s[i..];
    if sep == b' ' {
        if !rest.is_empty() {
            return None;
        }
    } else if rest == "Z" {
    } else if rest.len() == 6
        && (rest.starts_with('+') || rest.starts_with('-'))
        && rest.as_bytes()[3] == b':'
        && rest[1..3].bytes().all(|c| c.is_ascii_digit())
        && rest[4..].bytes().all(|c| c.is_ascii_digit())
    {
        p.zone = if &rest[1..] == "00:00" {
            "Z".into()
        } else {
            rest.to_string()
        };
    } else if !rest.is_empty() || zone_required_for_t {
        return None;
    }
    valid(&p).then_some(p)
}

/// A plain YAML scalar yaml.v3 resolves to a timestamp: its RFC 3339 (nano) text.
pub(crate) fn yaml_timestamp(s: &str) -> Option<String> {
    parse(s, true).map(|p| p.nano())
}

/// Go's `time.Time.UnmarshalText` (RFC 3339) then `MarshalText`.
pub(crate) fn rfc3339_nano(s: &str) -> Option<String> {
    let p = parse(s, true)?;
    let b = s.as_bytes();
    // RFC 3339 wants the full two-digit fields and a T
    if b.len() < 20
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
        || b[7] != b'-'
    {
        return None;
    }
    Some(p.nano())
}

/// `Format(time.RFC3339)` of a timestamp text (fraction dropped).
pub(crate) fn rfc3339(nano: &str) -> String {
    match nano.find('.') {
        Some(dot) => {
            let end = nano[dot + 1..]
                .find(|c: char| !c.is_ascii_digit())
                .map_or(nano.len(), |e| dot + 1 + e);
            format!("{}{}", &nano[..dot], &nano[end..])
        }
        None => nano.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_like_yaml_v3() {
        assert_eq!(
            yaml_timestamp("2024-01-01").as_deref(),
            Some("2024-01-01T00:00:00Z")
        );
        assert_eq!(
            yaml_timestamp("2024-1-2 3:4:5.50").as_deref(),
            Some("2024-01-02T03:04:05.5Z")
        );
        assert_eq!(
            yaml_timestamp("2024-01-01T10:00:00+02:00").as_deref(),
            Some("2024-01-01T10:00:00+02:00")
        );
        assert_eq!(
            yaml_timestamp("2024-01-01T10:00:00+00:00").as_deref(),
            Some("2024-01-01T10:00:00Z")
        );
        assert_eq!(yaml_timestamp("2024-01-01T10:00:00"), None);
        assert_eq!(yaml_timestamp("2024-02-30"), None);
        assert_eq!(yaml_timestamp("2024-01-01 10:00:00 +1"), None);
        assert_eq!(yaml_timestamp("12024-01-01"), None);
        assert_eq!(
            rfc3339("2024-01-01T10:00:00.123+02:00"),
            "2024-01-01T10:00:00+02:00"
        );
        assert_eq!(
            rfc3339_nano("2024-01-01T10:00:00.100Z").as_deref(),
            Some("2024-01-01T10:00:00.1Z")
        );
    }
}
