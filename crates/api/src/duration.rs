//! Go-style durations (`metav1.Duration` on the wire).
//!
//! Flux fields such as `spec.interval` hold a Go duration string. [`Duration`] keeps the text exactly
//! as the user wrote it (`"1m"` stays `"1m"`, it is never normalised to `"1m0s"`), so reading an
//! object and writing it back changes nothing. [`Duration::to_std`] parses the text with the rules
//! of Go's `time.ParseDuration`; [`format_go`] renders a [`std::time::Duration`] the way Go's
//! `time.Duration.String` does, for status fields the controllers write themselves.

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// A Go duration string, kept verbatim.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Duration(String);

/// Why a duration string could not be turned into a [`std::time::Duration`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The text does not follow Go's duration syntax.
    #[error("invalid duration {0:?}")]
    Invalid(String),
    /// A number was given without a unit (only `0` may omit it).
    #[error("missing unit in duration {0:?}")]
    MissingUnit(String),
    /// The unit is not one of `ns`, `us`, `µs`, `ms`, `s`, `m`, `h`.
    #[error("unknown unit {unit:?} in duration {text:?}")]
    UnknownUnit {
        /// The offending unit.
        unit: String,
        /// The whole duration text.
        text: String,
    },
    /// The value does not fit in Go's signed 64-bit nanosecond range.
    #[error("duration {0:?} is out of range")]
    Overflow(String),
    /// The duration is negative, which a [`std::time::Duration`] cannot hold.
    #[error("duration {0:?} is negative")]
    Negative(String),
}

impl Duration {
    /// Wraps a duration string without checking it.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The duration as written by the user.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Parses the text with Go's `time.ParseDuration` rules (`"1h30m"`, `"500ms"`, `"1.5s"`, `"0"`).
    pub fn to_std(&self) -> Result<std::time::Duration, DurationError> {
        parse_go_duration(&self.0)
    }

    /// Builds a duration from a [`std::time::Duration`], written the way Go prints it (`"1m0s"`).
    pub fn from_std(d: std::time::Duration) -> Self {
        Self(format_go(d))
    }
}

/// Parses an optional duration, falling back to `default` when it is absent or does not parse
/// (the CRD patterns reject unparsable values at admission).
pub fn or_default(d: Option<&Duration>, default: std::time::Duration) -> std::time::Duration {
    d.and_then(|d| d.to_std().ok()).unwrap_or(default)
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Duration {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl From<String> for Duration {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl JsonSchema for Duration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string" })
    }
}

const NANOS_PER_MICRO: u128 = 1_000;
const NANOS_PER_MILLI: u128 = 1_000_000;
const NANOS_PER_SEC: u128 = 1_000_000_000;
const NANOS_PER_MIN: u128 = 60 * NANOS_PER_SEC;
const NANOS_PER_HOUR: u128 = 60 * NANOS_PER_MIN;
/// Go keeps durations in an `int64` of nanoseconds.
const GO_MAX_NANOS: u128 = i64::MAX as u128;

fn unit_nanos(unit: &str) -> Option<u128> {
    Some(match unit {
        "ns" => 1,
        // U+00B5 (micro sign) and U+03BC (Greek mu) are both accepted by Go.
        "us" | "\u{b5}s" | "\u{3bc}s" => NANOS_PER_MICRO,
        "ms" => NANOS_PER_MILLI,
        "s" => NANOS_PER_SEC,
        "m" => NANOS_PER_MIN,
        "h" => NANOS_PER_HOUR,
        _ => return None,
    })
}

/// Parses a Go duration string into a [`std::time::Duration`].
///
/// Accepts an optional sign, then one or more `<number><unit>` groups where the number may have a
/// fraction. A lone `0` (with or without sign) is zero. Negative non-zero values are an error.
pub fn parse_go_duration(text: &str) -> Result<std::time::Duration, DurationError> {
    let invalid = || DurationError::Invalid(text.to_owned());
    let mut rest = text;
    let mut negative = false;
    if let Some(r) = rest.strip_prefix('-') {
        negative = true;
        rest = r;
    } else if let Some(r) = rest.strip_prefix('+') {
        rest = r;
    }
    if rest == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        // Integer part.
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_digits, after_int) = rest.split_at(int_len);
        // Optional fraction.
        let (frac_digits, after_num) = match after_int.strip_prefix('.') {
            Some(f) => {
                let frac_len = f.bytes().take_while(u8::is_ascii_digit).count();
                f.split_at(frac_len)
            }
            None => ("", after_int),
        };
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err(invalid());
        }
        // Unit: everything up to the next digit or '.'.
        let unit_len = after_num
            .char_indices()
            .find(|(_, c)| *c == '.' || c.is_ascii_digit())
            .map_or(after_num.len(), |(i, _)| i);
        let (unit, after_unit) = after_num.split_at(unit_len);
        if unit.is_empty() {
            return Err(DurationError::MissingUnit(text.to_owned()));
        }
        let per_unit = unit_nanos(unit).ok_or_else(|| DurationError::UnknownUnit {
            unit: unit.to_owned(),
            text: text.to_owned(),
        })?;
        let overflow = || DurationError::Overflow(text.to_owned());
        let mut whole: u128 = 0;
        for b in int_digits.bytes() {
            whole = whole
                .checked_mul(10)
                .and_then(|v| v.checked_add(u128::from(b - b'0')))
                .filter(|v| *v <= GO_MAX_NANOS)
                .ok_or_else(overflow)?;
        }
        let mut value = whole.checked_mul(per_unit).ok_or_else(overflow)?;
        if !frac_digits.is_empty() {
            // Exact fraction: digits / 10^len * unit, truncated to whole nanoseconds. Digits past
            // the precision that can matter are dropped, as Go does.
            let mut num: u128 = 0;
            let mut scale: u128 = 1;
            for b in frac_digits.bytes() {
                if scale > GO_MAX_NANOS {
                    break;
                }
                num = num * 10 + u128::from(b - b'0');
                scale *= 10;
            }
            value = value
                .checked_add(num * per_unit / scale)
                .ok_or_else(overflow)?;
        }
        total = total.checked_add(value).ok_or_else(overflow)?;
        if total > GO_MAX_NANOS {
            return Err(overflow());
        }
        rest = after_unit;
    }
    if negative && total != 0 {
        return Err(DurationError::Negative(text.to_owned()));
    }
    let secs = u64::try_from(total / NANOS_PER_SEC).map_err(|_| invalid())?;
    let nanos = u32::try_from(total % NANOS_PER_SEC).map_err(|_| invalid())?;
    Ok(std::time::Duration::new(secs, nanos))
}

/// Renders a duration the way Go's `time.Duration.String` does: `"0s"`, `"1.5µs"`, `"500ms"`,
/// `"1m30s"`, `"2h0m0s"`. Values above Go's range are clamped to its maximum.
pub fn format_go(d: std::time::Duration) -> String {
    let nanos = d.as_nanos().min(GO_MAX_NANOS);
    if nanos == 0 {
        return "0s".to_owned();
    }
    if nanos < NANOS_PER_SEC {
        // Sub-second values use the largest unit that keeps a leading non-zero digit.
        let (unit_nanos, unit, digits) = if nanos < NANOS_PER_MICRO {
            (1, "ns", 0)
        } else if nanos < NANOS_PER_MILLI {
            (NANOS_PER_MICRO, "\u{b5}s", 3)
        } else {
            (NANOS_PER_MILLI, "ms", 6)
        };
        return format!("{}{unit}", fixed(nanos, unit_nanos, digits));
    }
    let hours = nanos / NANOS_PER_HOUR;
    let minutes = (nanos % NANOS_PER_HOUR) / NANOS_PER_MIN;
    let sec_nanos = nanos % NANOS_PER_MIN;
    let secs = fixed(sec_nanos, NANOS_PER_SEC, 9);
    if hours > 0 {
        format!("{hours}h{minutes}m{secs}s")
    } else if minutes > 0 {
        format!("{minutes}m{secs}s")
    } else {
        format!("{secs}s")
    }
}

/// `value / unit` printed with up to `digits` fractional digits, trailing zeros removed.
fn fixed(value: u128, unit: u128, digits: u32) -> String {
    let whole = value / unit;
    let frac = value % unit;
    if frac == 0 || digits == 0 {
        return whole.to_string();
    }
    let mut frac_text = format!("{frac:0width$}", width = digits as usize);
    while frac_text.ends_with('0') {
        frac_text.pop();
    }
    format!("{whole}.{frac_text}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration as Std;

    fn ms(v: u64) -> Std {
        Std::from_millis(v)
    }

    #[test]
    fn parses_go_syntax() {
        let cases: &[(&str, Std)] = &[
            ("0", Std::ZERO),
            ("-0", Std::ZERO),
            ("+0", Std::ZERO),
            ("0s", Std::ZERO),
            ("1m", Std::from_secs(60)),
            ("5m0s", Std::from_secs(300)),
            ("1h30m", Std::from_secs(5400)),
            ("500ms", ms(500)),
            ("1.5s", ms(1500)),
            (".5s", ms(500)),
            ("1.s", Std::from_secs(1)),
            ("1h1m1s1ms1us1ns", Std::new(3661, 1_001_001)),
            ("3\u{b5}s", Std::from_nanos(3000)),
            ("3\u{3bc}s", Std::from_nanos(3000)),
            ("1.0000000001s", Std::from_secs(1)),
            ("2562047h", Std::from_secs(2_562_047 * 3600)),
            ("+10s", Std::from_secs(10)),
            ("0.25h", Std::from_secs(900)),
            ("1m1m", Std::from_secs(120)),
        ];
        for (text, want) in cases {
            assert_eq!(parse_go_duration(text), Ok(*want), "{text}");
        }
    }

    #[test]
    fn rejects_invalid_text() {
        for text in [
            "", "s", ".", ".s", "1", "10 s", "1d", "1x", "-", "1.5", "h1", "1m-1s",
        ] {
            assert!(parse_go_duration(text).is_err(), "{text:?} should fail");
        }
        assert!(matches!(
            parse_go_duration("10"),
            Err(DurationError::MissingUnit(_))
        ));
        assert!(matches!(
            parse_go_duration("3d"),
            Err(DurationError::UnknownUnit { unit, .. }) if unit == "d"
        ));
        assert!(matches!(
            parse_go_duration("-5s"),
            Err(DurationError::Negative(_))
        ));
        assert!(matches!(
            parse_go_duration("2562048h"),
            Err(DurationError::Overflow(_))
        ));
        assert!(matches!(
            parse_go_duration("99999999999999999999s"),
            Err(DurationError::Overflow(_))
        ));
    }

    #[test]
    fn keeps_text_verbatim() {
        for text in ["1m", "60s", "1h0m0s", "00010s"] {
            let d: Duration = serde_json::from_value(serde_json::json!(text)).unwrap();
            assert_eq!(d.as_str(), text);
            assert_eq!(serde_json::to_value(&d).unwrap(), serde_json::json!(text));
        }
        assert_eq!(Duration::new("1m").to_std(), Duration::new("60s").to_std());
    }

    #[test]
    fn formats_like_go() {
        let cases: &[(Std, &str)] = &[
            (Std::ZERO, "0s"),
            (Std::from_nanos(1), "1ns"),
            (Std::from_nanos(1500), "1.5\u{b5}s"),
            (ms(500), "500ms"),
            (Std::from_micros(1250), "1.25ms"),
            (ms(1500), "1.5s"),
            (Std::from_secs(60), "1m0s"),
            (Std::from_secs(90), "1m30s"),
            (Std::from_secs(7200), "2h0m0s"),
            (Std::new(3661, 500_000_000), "1h1m1.5s"),
        ];
        for (d, want) in cases {
            assert_eq!(format_go(*d), *want);
            assert_eq!(
                parse_go_duration(want),
                Ok(*d),
                "format output must parse back"
            );
        }
        assert_eq!(Duration::from_std(Std::from_secs(300)).as_str(), "5m0s");
    }
}
