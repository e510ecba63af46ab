//! Go's `strconv` number texts as the YAML and JSON libraries and `fmt` print them, and the
//! integer/float parsing go-yaml's resolver does. gotemplate's `%v`/`printf` use the same
//! `format_float`.

const LDIGITS: &[u8] = b"0123456789abcdefx";
const UDIGITS: &[u8] = b"0123456789ABCDEFX";

/// `strconv.FormatFloat(f, 'g', -1, 64)`, which is also `%v` of a float64.
pub fn format_float_shortest(f: f64) -> String {
    format_float(f, 'g', None)
}

/// encoding/json's float64 text (ES6 style): `'f'` unless the magnitude is below 1e-6 or at
/// least 1e21, then `'e'` with the exponent's leading zero dropped (`1e-7`). `None` for NaN
/// and the infinities, which encoding/json refuses.
pub fn json_float(f: f64) -> Option<String> {
    if !f.is_finite() {
        return None;
    }
    let a = f.abs();
    if a != 0.0 && !(1e-6..1e21).contains(&a) {
        let s = format_float(f, 'e', None);
        return Some(match s.find("e-0") {
            Some(pos) => format!("{}e-{}", &s[..pos], &s[pos + 3..]),
            None => s,
        });
    }
    Some(format_float(f, 'f', None))
}

/// yaml.v3's text for a float64: `'g'` shortest, with the YAML spellings of the infinities
/// and NaN.
pub fn v3_float(f: f64) -> String {
    if f.is_nan() {
        ".nan".into()
    } else if f == f64::INFINITY {
        ".inf".into()
    } else if f == f64::NEG_INFINITY {
        "-.inf".into()
    } else {
        format_float_shortest(f)
    }
}

/// What sigs.k8s.io/yaml prints for a float64: encoding/json writes it, go-yaml v2 reads
/// the JSON text back (an integer literal stays an integer) and writes the float with `'g'`.
/// `None` for NaN and the infinities (encoding/json refuses them).
pub fn v2_float_after_json(f: f64) -> Option<String> {
    let json = json_float(f)?;
    if parse_int(&json).is_some() || parse_uint(&json).is_some() {
        return Some(json);
    }
    Some(format_float_shortest(json.parse::<f64>().unwrap_or(f)))
}

/// Go's `strconv.ParseInt(s, 0, 64)` (go-yaml removes underscores before calling it).
pub fn parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let mag = parse_uint(body)?;
    if neg {
        (mag <= i64::MAX as u64 + 1).then(|| (mag as i128).wrapping_neg() as i64)
    } else {
        i64::try_from(mag).ok()
    }
}

/// Go's `strconv.ParseUint(s, 0, 64)`: `0x`, `0o`, `0b` prefixes (any case) and legacy
/// octal with a leading `0`.
pub fn parse_uint(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    let (radix, digits) = match b {
        [] => return None,
        [b'0', b'x' | b'X', ..] => (16, &s[2..]),
        [b'0', b'o' | b'O', ..] => (8, &s[2..]),
        [b'0', b'b' | b'B', ..] => (2, &s[2..]),
        [b'0', _, ..] => (8, &s[1..]),
        _ => (10, s),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(digits, radix).ok()
}

/// Go's `strconv.ParseFloat(s, 64)` for the decimal forms YAML produces; infinities, NaN,
/// hexadecimal floats and out-of-range values are refused.
pub fn parse_float(s: &str) -> Option<f64> {
    let body = s.trim_start_matches(['+', '-']);
    if body.is_empty()
        || !body
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    let f: f64 = s.parse().ok()?;
    f.is_finite().then_some(f)
}

/// Decimal digits of |v| (no leading/trailing zeros) and the decimal point position.
struct Digits {
    d: Vec<u8>,
    dp: i64,
}

fn digits_from_sci(s: &str) -> Digits {
    // s like "1.2345e-5" or "0e0"
    let (mant, exp) = s.split_once('e').unwrap_or((s, "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let mut d: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
    while d.last() == Some(&b'0') {
        d.pop();
    }
    if d.is_empty() {
        return Digits { d, dp: 0 };
    }
    Digits { d, dp: exp + 1 }
}

fn digits_from_fixed(s: &str) -> Digits {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let mut all: Vec<u8> = int.bytes().chain(frac.bytes()).collect();
    let mut dp = int.len() as i64;
    let lead = all.iter().take_while(|c| **c == b'0').count();
    all.drain(..lead);
    dp -= lead as i64;
    while all.last() == Some(&b'0') {
        all.pop();
    }
    if all.is_empty() {
        return Digits { d: all, dp: 0 };
    }
    Digits { d: all, dp }
}

fn shortest(v: f64) -> Digits {
    digits_from_sci(&format!("{:e}", v.abs()))
}

fn fmt_e(neg: bool, dg: &Digits, prec: usize, e: char) -> String {
    let mut s = String::new();
    if neg {
        s.push('-');
    }
    let first = dg.d.first().copied().unwrap_or(b'0');
    s.push(first as char);
    if prec > 0 {
        s.push('.');
        for i in 1..=prec {
            s.push(dg.d.get(i).copied().unwrap_or(b'0') as char);
        }
    }
    s.push(e);
    let exp = if dg.d.is_empty() { 0 } else { dg.dp - 1 };
    s.push(if exp < 0 { '-' } else { '+' });
    let a = exp.unsigned_abs();
    if a < 10 {
        s.push('0');
    }
    s.push_str(&a.to_string());
    s
}

fn fmt_f(neg: bool, dg: &Digits, prec: usize) -> String {
    let mut s = String::new();
    if neg {
        s.push('-');
    }
    if dg.dp > 0 {
        let mut m = dg.dp.min(dg.d.len() as i64) as usize;
        s.push_str(std::str::from_utf8(&dg.d[..m]).unwrap_or(""));
        while (m as i64) < dg.dp {
            s.push('0');
            m += 1;
        }
    } else {
        s.push('0');
    }
    if prec > 0 {
        s.push('.');
        for i in 1..=prec as i64 {
            let j = dg.dp + i - 1;
            let c = if j < 0 || j >= dg.d.len() as i64 {
                b'0'
            } else {
                dg.d[j as usize]
            };
            s.push(c as char);
        }
    }
    s
}

/// `strconv.FormatFloat(v, fmt, prec, 64)` for fmt in e, E, f, g, G (prec None = -1).
pub fn format_float(v: f64, fmt: char, prec: Option<usize>) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let neg = v.is_sign_negative();
    match fmt {
        'e' | 'E' => {
            let (dg, p) = match prec {
                None => {
                    let d = shortest(v);
                    let p = d.d.len().saturating_sub(1);
                    (d, p)
                }
                Some(p) => (digits_from_sci(&format!("{:.*e}", p.min(800), v.abs())), p),
            };
            fmt_e(neg, &dg, p, fmt)
        }
        'f' => {
            let (dg, p) = match prec {
                None => {
                    let d = shortest(v);
                    let p = (d.d.len() as i64 - d.dp).max(0) as usize;
                    (d, p)
                }
                Some(p) => (
                    digits_from_fixed(&format!("{:.*}", p.min(1100), v.abs())),
                    p,
                ),
            };
            fmt_f(neg, &dg, p)
        }
        'g' | 'G' => {
            let is_shortest = prec.is_none();
            let (dg, mut p) = match prec {
                None => {
                    let d = shortest(v);
                    let n = d.d.len();
                    (d, n as i64)
                }
                Some(p) => {
                    let p = p.max(1);
                    (
                        digits_from_sci(&format!("{:.*e}", (p - 1).min(800), v.abs())),
                        p as i64,
                    )
                }
            };
            let nd = dg.d.len() as i64;
            let mut eprec = p;
            if eprec > nd && nd >= dg.dp {
                eprec = nd;
            }
            if is_shortest {
                eprec = 6;
            }
            let exp = dg.dp - 1;
            let e = if fmt == 'G' { 'E' } else { 'e' };
            if exp < -4 || exp >= eprec {
                if p > nd {
                    p = nd;
                }
                return fmt_e(neg, &dg, (p - 1).max(0) as usize, e);
            }
            if p > dg.dp {
                p = nd;
            }
            fmt_f(neg, &dg, (p - dg.dp).max(0) as usize)
        }
        'x' | 'X' => format_hex_float(v, fmt, prec),
        'b' => {
            let bits = v.to_bits();
            let mant = bits & ((1u64 << 52) - 1);
            let exp = ((bits >> 52) & 0x7FF) as i64;
            let (mant, exp) = if exp == 0 {
                (mant, -1074)
            } else {
                (mant | (1u64 << 52), exp - 1075)
            };
            format!(
                "{}{}p{}{}",
                if neg { "-" } else { "" },
                mant,
                if exp >= 0 { "+" } else { "-" },
                exp.abs()
            )
        }
        _ => format!("%{fmt}"),
    }
}

fn format_hex_float(v: f64, fmt: char, prec: Option<usize>) -> String {
    let neg = v.is_sign_negative();
    let bits = v.to_bits();
    let mut mant = bits & ((1u64 << 52) - 1);
    let raw_exp = ((bits >> 52) & 0x7FF) as i64;
    let mut exp: i64;
    if v == 0.0 {
        exp = 0;
    } else if raw_exp == 0 {
        exp = -1022;
        // normalise subnormal
        while mant & (1u64 << 52) == 0 {
            mant <<= 1;
            exp -= 1;
        }
        mant &= (1u64 << 52) - 1;
    } else {
        exp = raw_exp - 1023;
    }
    // mantissa as 13 hex digits after the leading 1
    let mut frac = mant; // 52 bits
    let mut lead: u64 = if v == 0.0 { 0 } else { 1 };
    let mut ndig = 13usize;
    if let Some(p) = prec
        && p < 13
    {
        let shift = (13 - p) * 4;
        let full = (lead << 52) | frac;
        let half = 1u64 << (shift - 1);
        let rem = full & ((1u64 << shift) - 1);
        let mut q = full >> shift;
        if rem > half || (rem == half && q & 1 == 1) {
            q += 1;
        }
        let full2 = q << shift;
        if full2 >> 53 != 0 {
            exp += 1;
            lead = 1;
            frac = (full2 >> 1) & ((1u64 << 52) - 1);
        } else {
            lead = full2 >> 52;
            frac = full2 & ((1u64 << 52) - 1);
        }
        ndig = p;
    }
    let digits = if fmt == 'X' { UDIGITS } else { LDIGITS };
    let mut s = String::new();
    if neg {
        s.push('-');
    }
    s.push('0');
    s.push(if fmt == 'X' { 'X' } else { 'x' });
    s.push((b'0' + lead as u8) as char);
    let mut hex: Vec<u8> = (0..13)
        .map(|i| digits[((frac >> (48 - 4 * i)) & 0xF) as usize])
        .collect();
    if prec.is_none() {
        while hex.last() == Some(&b'0') {
            hex.pop();
        }
    } else {
        hex.truncate(ndig);
        while hex.len() < ndig {
            hex.push(b'0');
        }
    }
    if !hex.is_empty() {
        s.push('.');
        s.push_str(&String::from_utf8_lossy(&hex));
    }
    s.push(if fmt == 'X' { 'P' } else { 'p' });
    s.push(if exp < 0 { '-' } else { '+' });
    let a = exp.unsigned_abs();
    if a < 10 {
        s.push('0');
    }
    s.push_str(&a.to_string());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_go() {
        assert_eq!(format_float(1.5, 'f', None), "1.5");
        assert_eq!(format_float(1e20, 'f', None), "100000000000000000000");
        assert_eq!(format_float(1.25e-7, 'e', None), "1.25e-07");
        assert_eq!(format_float_shortest(1e6), "1e+06");
        assert_eq!(format_float_shortest(100000.0), "100000");
        assert_eq!(format_float_shortest(0.00001), "1e-05");
        assert_eq!(format_float_shortest(123456789.0), "1.23456789e+08");
        assert_eq!(json_float(1e21).as_deref(), Some("1e+21"));
        assert_eq!(json_float(1e-7).as_deref(), Some("1e-7"));
        assert_eq!(json_float(1000000.0).as_deref(), Some("1000000"));
        assert_eq!(v3_float(f64::NEG_INFINITY), "-.inf");
        let v2 = |f| v2_float_after_json(f).unwrap();
        assert_eq!(v2(1.0), "1");
        assert_eq!(v2(1e21), "1e+21");
        assert_eq!(v2(1e-7), "1e-07");
        assert_eq!(v2(123456789.5), "1.234567895e+08");
        assert_eq!(v2(100000.5), "100000.5");
        assert_eq!(v2(1e20), "1e+20");
    }

    #[test]
    fn parses_like_go() {
        assert_eq!(parse_int("0755"), Some(493));
        assert_eq!(parse_int("-0x10"), Some(-16));
        assert_eq!(parse_int("0o17"), Some(15));
        assert_eq!(parse_int("08"), None);
        assert_eq!(parse_int("9223372036854775808"), None);
        assert_eq!(parse_uint("9223372036854775808"), Some(1 << 63));
        assert_eq!(parse_int("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_float("1e400"), None);
        assert_eq!(parse_float(".5"), Some(0.5));
    }
}
