//! Go's number formatting, as sops (strconv) and its stores (encoding/json, yaml.v3) print.

/// Shortest decimal digits and decimal-point position of a finite, non-zero `f`:
/// value = 0.d1d2d3... × 10^dp.
fn shortest(f: f64) -> (String, i32) {
    // `{:e}` prints the shortest round-trip digits as d.ddddde<exp>
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

fn special(f: f64) -> Option<&'static str> {
    if f.is_nan() {
        Some("NaN")
    } else if f == f64::INFINITY {
        Some("+Inf")
    } else if f == f64::NEG_INFINITY {
        Some("-Inf")
    } else {
        None
    }
}

/// `strconv.FormatFloat(f, 'f', -1, 64)`: shortest digits, never an exponent.
pub(crate) fn format_f(f: f64) -> String {
    if let Some(s) = special(f) {
        return s.to_string();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    let (digits, dp) = shortest(f);
    let mut out = String::new();
    if f < 0.0 {
        out.push('-');
    }
    let nd = digits.len() as i32;
    if dp <= 0 {
        out.push_str("0.");
        for _ in 0..(-dp) {
            out.push('0');
        }
        out.push_str(&digits);
    } else if dp >= nd {
        out.push_str(&digits);
        for _ in 0..(dp - nd) {
            out.push('0');
        }
    } else {
        out.push_str(&digits[..dp as usize]);
        out.push('.');
        out.push_str(&digits[dp as usize..]);
    }
    out
}

/// `strconv.FormatFloat(f, 'e', -1, 64)`: d.ddde±XX.
pub(crate) fn format_e(f: f64) -> String {
    if let Some(s) = special(f) {
        return s.to_string();
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0e+00"
        } else {
            "0e+00"
        }
        .to_string();
    }
    let (digits, dp) = shortest(f);
    let mut out = String::new();
    if f < 0.0 {
        out.push('-');
    }
    out.push_str(&digits[..1]);
    if digits.len() > 1 {
        out.push('.');
        out.push_str(&digits[1..]);
    }
    let exp = dp - 1;
    out.push('e');
    out.push(if exp < 0 { '-' } else { '+' });
    let a = exp.unsigned_abs();
    if a < 10 {
        out.push('0');
    }
    out.push_str(&a.to_string());
    out
}

/// `strconv.FormatFloat(f, 'g', -1, 64)`.
pub(crate) fn format_g(f: f64) -> String {
    if let Some(s) = special(f) {
        return s.to_string();
    }
    if f == 0.0 {
        return format_f(f);
    }
    let (_, dp) = shortest(f);
    let exp = dp - 1;
    if !(-4..6).contains(&exp) {
        format_e(f)
    } else {
        format_f(f)
    }
}

/// yaml.v3's float text: `'g'` shortest (Go switches to %e below 1e-4 and from 1e6), infinities and
/// NaN in YAML spelling.
pub(crate) fn yaml_float(f: f64) -> String {
    if f.is_nan() {
        return ".nan".into();
    }
    if f == f64::INFINITY {
        return ".inf".into();
    }
    if f == f64::NEG_INFINITY {
        return "-.inf".into();
    }
    format_g(f)
}

/// encoding/json's float text (ES6 style): `'f'` unless the magnitude is below 1e-6 or at
/// least 1e21, then `'e'` with a one-digit minimum exponent.
pub(crate) fn json_float(f: f64) -> Option<String> {
    if !f.is_finite() {
        return None;
    }
    let a = f.abs();
    if a != 0.0 && !(1e-6..1e21).contains(&a) {
        let s = format_e(f);
        // e-07 -> e-7
        if let Some(pos) = s.find("e-0") {
            let mut t = s.clone();
            t.replace_range(pos..pos + 3, "e-");
            return Some(t);
        }
        if let Some(pos) = s.find("e+0") {
            let mut t = s.clone();
            t.replace_range(pos..pos + 3, "e+");
            return Some(t);
        }
        return Some(s);
    }
    Some(format_f(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_go() {
        assert_eq!(format_f(1.5), "1.5");
        assert_eq!(format_f(1e20), "100000000000000000000");
        assert_eq!(format_f(0.0001), "0.0001");
        assert_eq!(format_f(-2.0), "-2");
        assert_eq!(format_e(1e6), "1e+06");
        assert_eq!(format_e(1.25e-7), "1.25e-07");
        assert_eq!(yaml_float(1000000.0), "1e+06");
        assert_eq!(yaml_float(3.25159), "3.25159");
        assert_eq!(yaml_float(100000.0), "100000");
        assert_eq!(yaml_float(0.00001), "1e-05");
        assert_eq!(json_float(1e21).as_deref(), Some("1e+21"));
        assert_eq!(json_float(1e-7).as_deref(), Some("1e-7"));
        assert_eq!(json_float(1000000.0).as_deref(), Some("1000000"));
    }
}
