//! Go's `time` as Sprig's date functions use it: layouts (`2006-01-02T15:04:05Z07:00`),
//! `time.Time` values, durations and their Go text.

use std::rc::Rc;

use ferroflux_gotemplate::{Func, FuncResult, Object, Param, Value};
use jiff::Timestamp;
use jiff::tz::TimeZone;

/// A Go `time.Time`.
pub struct GoTime {
    pub ts: Timestamp,
    pub tz: TimeZone,
    /// The zone's name when it is a named fixed zone (TOML's `date-local`, ...).
    pub name: Option<&'static str>,
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Std {
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    PM,
    Pm,
    TZ,
    Iso8601TZ,
    Iso8601SecondsTZ,
    Iso8601ShortTZ,
    Iso8601ColonTZ,
    Iso8601ColonSecondsTZ,
    NumTZ,
    NumSecondsTz,
    NumShortTZ,
    NumColonTZ,
    NumColonSecondsTZ,
    /// fractional seconds: (digits, trailing zeros trimmed)
    Frac(usize, bool),
}

/// Split a Go layout into literal text and std chunks.
fn chunks(layout: &str) -> Vec<Result<String, Std>> {
    let b = layout.as_bytes();
    let mut out: Vec<Result<String, Std>> = Vec::new();
    let mut lit = String::new();
    let mut i = 0;
    let starts = |i: usize, s: &str| layout[i..].starts_with(s);
    while i < b.len() {
        let (std, len): (Option<Std>, usize) = match b[i] {
            b'J' if starts(i, "January") => (Some(Std::LongMonth), 7),
            b'J' if starts(i, "Jan") => (Some(Std::Month), 3),
            b'M' if starts(i, "Monday") => (Some(Std::LongWeekDay), 6),
            b'M' if starts(i, "Mon") => (Some(Std::WeekDay), 3),
            b'M' if starts(i, "MST") => (Some(Std::TZ), 3),
            b'0' if starts(i, "002") => (Some(Std::ZeroYearDay), 3),
            b'0' if i + 1 < b.len() && (b'1'..=b'6').contains(&b[i + 1]) => (
                Some(match b[i + 1] {
                    b'1' => Std::ZeroMonth,
                    b'2' => Std::ZeroDay,
                    b'3' => Std::ZeroHour12,
                    b'4' => Std::ZeroMinute,
                    b'5' => Std::ZeroSecond,
                    _ => Std::Year,
                }),
                2,
            ),
            b'1' if starts(i, "15") => (Some(Std::Hour), 2),
            b'1' => (Some(Std::NumMonth), 1),
            b'2' if starts(i, "2006") => (Some(Std::LongYear), 4),
            b'2' => (Some(Std::Day), 1),
            b'_' if starts(i, "_2006") => {
                lit.push('_');
                i += 1;
                continue;
            }
            b'_' if starts(i, "__2") => (Some(Std::UnderYearDay), 3),
            b'_' if starts(i, "_2") => (Some(Std::UnderDay), 2),
            b'3' => (Some(Std::Hour12), 1),
            b'4' => (Some(Std::Minute), 1),
            b'5' => (Some(Std::Second), 1),
            b'P' if starts(i, "PM") => (Some(Std::PM), 2),
            b'p' if starts(i, "pm") => (Some(Std::Pm), 2),
            b'-' if starts(i, "-07:00:00") => (Some(Std::NumColonSecondsTZ), 9),
            b'-' if starts(i, "-070000") => (Some(Std::NumSecondsTz), 7),
            b'-' if starts(i, "-07:00") => (Some(Std::NumColonTZ), 6),
            b'-' if starts(i, "-0700") => (Some(Std::NumTZ), 5),
            b'-' if starts(i, "-07") => (Some(Std::NumShortTZ), 3),
            b'Z' if starts(i, "Z07:00:00") => (Some(Std::Iso8601ColonSecondsTZ), 9),
            b'Z' if starts(i, "Z070000") => (Some(Std::Iso8601SecondsTZ), 7),
            b'Z' if starts(i, "Z07:00") => (Some(Std::Iso8601ColonTZ), 6),
            b'Z' if starts(i, "Z0700") => (Some(Std::Iso8601TZ), 5),
            b'Z' if starts(i, "Z07") => (Some(Std::Iso8601ShortTZ), 3),
            b'.' | b',' if i + 1 < b.len() && (b[i + 1] == b'0' || b[i + 1] == b'9') => {
                let c = b[i + 1];
                let mut j = i + 1;
                while j < b.len() && b[j] == c {
                    j += 1;
                }
                if j < b.len() && b[j].is_ascii_digit() {
                    (None, 1)
                } else {
                    (Some(Std::Frac(j - i - 1, c == b'9')), j - i)
                }
            }
            _ => (None, 1),
        };
        match std {
            Some(s) => {
                if !lit.is_empty() {
                    out.push(Ok(std::mem::take(&mut lit)));
                }
                // keep the separator of fractional seconds
                if let Std::Frac(..) = s {
                    out.push(Ok((b[i] as char).to_string()));
                }
                out.push(Err(s));
                i += len;
            }
            None => {
                let c = layout[i..].chars().next().unwrap_or(' ');
                lit.push(c);
                i += c.len_utf8();
            }
        }
    }
    if !lit.is_empty() {
        out.push(Ok(lit));
    }
    out
}

fn zone_abbrev(t: &GoTime) -> String {
    if let Some(n) = t.name {
        return n.to_string();
    }
    let off = t.tz.to_offset(t.ts);
    match t.tz.iana_name() {
        Some("UTC") | Some("Etc/UTC") | None if off.seconds() == 0 => "UTC".into(),
        None => {
            // a zone from a parsed offset: Go's FixedZone("", offset) prints as -0700
            let s = off.seconds();
            let sign = if s < 0 { '-' } else { '+' };
            let a = s.unsigned_abs();
            format!("{sign}{:02}{:02}", a / 3600, (a % 3600) / 60)
        }
        _ => {
            let info = t.tz.to_offset_info(t.ts);
            let abbr = info.abbreviation().to_string();
            if abbr.is_empty() || abbr.starts_with(['+', '-']) {
                let s = off.seconds();
                let sign = if s < 0 { '-' } else { '+' };
                let a = s.unsigned_abs();
                if a.is_multiple_of(3600) {
                    format!("{sign}{:02}", a / 3600)
                } else {
                    format!("{sign}{:02}{:02}", a / 3600, (a % 3600) / 60)
                }
            } else {
                abbr
            }
        }
    }
}

/// Go's `Time.Format`.
pub fn format(t: &GoTime, layout: &str) -> String {
    let dt = t.tz.to_datetime(t.ts);
    let off = t.tz.to_offset(t.ts).seconds();
    let mut out = String::new();
    for c in chunks(layout) {
        let std = match c {
            Ok(l) => {
                out.push_str(&l);
                continue;
            }
            Err(s) => s,
        };
        let (y, mo, d) = (dt.year() as i64, dt.month() as usize, dt.day() as i64);
        let (h, mi, s) = (dt.hour() as i64, dt.minute() as i64, dt.second() as i64);
        let h12 = match h % 12 {
            0 => 12,
            x => x,
        };
        let wd = dt.weekday().to_sunday_zero_offset() as usize;
        let yd = dt.day_of_year() as i64;
        match std {
            Std::LongMonth => out.push_str(MONTHS[mo - 1]),
            Std::Month => out.push_str(&MONTHS[mo - 1][..3]),
            Std::NumMonth => out.push_str(&mo.to_string()),
            Std::ZeroMonth => out.push_str(&format!("{mo:02}")),
            Std::LongWeekDay => out.push_str(DAYS[wd]),
            Std::WeekDay => out.push_str(&DAYS[wd][..3]),
            Std::Day => out.push_str(&d.to_string()),
            Std::UnderDay => out.push_str(&format!("{d:>2}")),
            Std::ZeroDay => out.push_str(&format!("{d:02}")),
            Std::UnderYearDay => out.push_str(&format!("{yd:>3}")),
            Std::ZeroYearDay => out.push_str(&format!("{yd:03}")),
            Std::Hour => out.push_str(&format!("{h:02}")),
            Std::Hour12 => out.push_str(&h12.to_string()),
            Std::ZeroHour12 => out.push_str(&format!("{h12:02}")),
            Std::Minute => out.push_str(&mi.to_string()),
            Std::ZeroMinute => out.push_str(&format!("{mi:02}")),
            Std::Second => out.push_str(&s.to_string()),
            Std::ZeroSecond => out.push_str(&format!("{s:02}")),
            Std::LongYear => out.push_str(&format!("{y:04}")),
            Std::Year => out.push_str(&format!("{:02}", y.rem_euclid(100))),
            Std::PM => out.push_str(if h >= 12 { "PM" } else { "AM" }),
            Std::Pm => out.push_str(if h >= 12 { "pm" } else { "am" }),
            Std::TZ => out.push_str(&zone_abbrev(t)),
            Std::Frac(n, trim) => {
                let ns = format!("{:09}", dt.subsec_nanosecond());
                let mut f = ns[..n.min(9)].to_string();
                if trim {
                    f = f.trim_end_matches('0').to_string();
                    if f.is_empty() {
                        // drop the separator written before
                        out.pop();
                    }
                }
                out.push_str(&f);
            }
            z => {
                let iso = matches!(
                    z,
                    Std::Iso8601TZ
                        | Std::Iso8601SecondsTZ
                        | Std::Iso8601ShortTZ
                        | Std::Iso8601ColonTZ
                        | Std::Iso8601ColonSecondsTZ
                );
                if iso && off == 0 {
                    out.push('Z');
                    continue;
                }
                let sign = if off < 0 { '-' } else { '+' };
                let a = off.unsigned_abs();
                let (hh, mm, ss) = (a / 3600, (a % 3600) / 60, a % 60);
                out.push(sign);
                out.push_str(&format!("{hh:02}"));
                match z {
                    Std::NumShortTZ | Std::Iso8601ShortTZ => {}
                    Std::NumTZ | Std::Iso8601TZ => out.push_str(&format!("{mm:02}")),
                    Std::NumColonTZ | Std::Iso8601ColonTZ => out.push_str(&format!(":{mm:02}")),
                    Std::NumSecondsTz | Std::Iso8601SecondsTZ => {
                        out.push_str(&format!("{mm:02}{ss:02}"))
                    }
                    _ => out.push_str(&format!(":{mm:02}:{ss:02}")),
                }
            }
        }
    }
    out
}

fn take_num(s: &str, min: usize, max: usize) -> Option<(i64, &str)> {
    let n = s.bytes().take(max).take_while(u8::is_ascii_digit).count();
    if n < min {
        return None;
    }
    Some((s[..n].parse().ok()?, &s[n..]))
}

/// Go's `time.ParseInLocation` for the common layout elements.
pub fn parse(layout: &str, value: &str, tz: &TimeZone) -> Option<GoTime> {
    let (mut y, mut mo, mut d, mut h, mut mi, mut s, mut ns) =
        (0i64, 1i64, 1i64, 0i64, 0i64, 0i64, 0i64);
    let mut pm: Option<bool> = None;
    let mut offset: Option<i32> = None;
    let mut rest = value;
    for c in chunks(layout) {
        match c {
            Ok(l) => rest = rest.strip_prefix(l.as_str())?,
            Err(std) => match std {
                Std::LongYear => (y, rest) = take_num(rest, 4, 4)?,
                Std::Year => {
                    let (v, r) = take_num(rest, 2, 2)?;
                    y = if v >= 69 { 1900 + v } else { 2000 + v };
                    rest = r;
                }
                Std::NumMonth | Std::ZeroMonth => {
                    (mo, rest) = take_num(rest, if std == Std::ZeroMonth { 2 } else { 1 }, 2)?
                }
                Std::Month | Std::LongMonth => {
                    let idx = MONTHS.iter().position(|m| {
                        let cand = if std == Std::Month { &m[..3] } else { m };
                        rest.len() >= cand.len() && rest[..cand.len()].eq_ignore_ascii_case(cand)
                    })?;
                    let len = if std == Std::Month {
                        3
                    } else {
                        MONTHS[idx].len()
                    };
                    mo = idx as i64 + 1;
                    rest = &rest[len..];
                }
                Std::WeekDay | Std::LongWeekDay => {
                    let idx = DAYS.iter().position(|m| {
                        let cand = if std == Std::WeekDay { &m[..3] } else { m };
                        rest.len() >= cand.len() && rest[..cand.len()].eq_ignore_ascii_case(cand)
                    })?;
                    let len = if std == Std::WeekDay {
                        3
                    } else {
                        DAYS[idx].len()
                    };
                    rest = &rest[len..];
                }
                Std::Day | Std::ZeroDay | Std::UnderDay => {
                    let r = rest.trim_start_matches(' ');
                    (d, rest) = take_num(r, if std == Std::ZeroDay { 2 } else { 1 }, 2)?
                }
                Std::Hour => (h, rest) = take_num(rest, 2, 2)?,
                Std::Hour12 | Std::ZeroHour12 => (h, rest) = take_num(rest, 1, 2)?,
                Std::Minute | Std::ZeroMinute => (mi, rest) = take_num(rest, 1, 2)?,
                Std::Second | Std::ZeroSecond => {
                    (s, rest) = take_num(rest, 1, 2)?;
                    if let Some(r) = rest.strip_prefix('.') {
                        let n = r.bytes().take_while(u8::is_ascii_digit).count();
                        if n > 0 && !layout.contains(".0") && !layout.contains(".9") {
                            let frac = format!("{:0<9}", &r[..n.min(9)]);
                            ns = frac.parse().ok()?;
                            rest = &r[n..];
                        }
                    }
                }
                Std::Frac(..) => {
                    let n = rest.bytes().take_while(u8::is_ascii_digit).count();
                    let frac = format!("{:0<9}", &rest[..n.min(9)]);
                    ns = frac.parse().ok()?;
                    rest = &rest[n..];
                }
                Std::PM | Std::Pm => {
                    let p = rest.get(..2)?;
                    pm = Some(p.eq_ignore_ascii_case("pm"));
                    rest = &rest[2..];
                }
                Std::TZ => {
                    let n = rest.bytes().take_while(u8::is_ascii_uppercase).count();
                    if rest[..n].eq("UTC") || rest[..n].eq("GMT") {
                        offset = Some(0);
                    }
                    rest = &rest[n..];
                }
                _ => {
                    if let Some(r) = rest.strip_prefix('Z') {
                        offset = Some(0);
                        rest = r;
                        continue;
                    }
                    let sign = match rest.as_bytes().first()? {
                        b'+' => 1,
                        b'-' => -1,
                        _ => return None,
                    };
                    let (hh, r) = take_num(&rest[1..], 2, 2)?;
                    let r = r.strip_prefix(':').unwrap_or(r);
                    let (mm, r) = take_num(r, 2, 2).unwrap_or((0, r));
                    offset = Some(sign * (hh as i32 * 3600 + mm as i32 * 60));
                    rest = r;
                }
            },
        }
    }
    if !rest.is_empty() {
        return None;
    }
    if let Some(p) = pm {
        if p && h < 12 {
            h += 12;
        } else if !p && h == 12 {
            h = 0;
        }
    }
    let dt = jiff::civil::DateTime::new(
        y as i16, mo as i8, d as i8, h as i8, mi as i8, s as i8, ns as i32,
    )
    .ok()?;
    match offset {
        Some(o) => {
            let off = jiff::tz::Offset::from_seconds(o).ok()?;
            let ts = off.to_timestamp(dt).ok()?;
            let tz = if o == 0 && tz.iana_name() == Some("UTC") {
                tz.clone()
            } else {
                TimeZone::fixed(off)
            };
            Some(GoTime { ts, tz, name: None })
        }
        None => {
            let zdt = dt.to_zoned(tz.clone()).ok()?;
            Some(GoTime {
                ts: zdt.timestamp(),
                tz: tz.clone(),
                name: None,
            })
        }
    }
}

/// Go's `Duration.String`.
pub fn duration_string(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let neg = ns < 0;
    let u = ns.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        let (val, unit, prec) = if u < 1_000 {
            (u as f64, "ns", 0)
        } else if u < 1_000_000 {
            (u as f64 / 1e3, "µs", 3)
        } else {
            (u as f64 / 1e6, "ms", 6)
        };
        let _ = prec;
        let s = ferroflux_gotemplate::gofmt::format_float(val, 'f', None);
        out.push_str(&s);
        out.push_str(unit);
    } else {
        let h = u / 3_600_000_000_000;
        let m = (u / 60_000_000_000) % 60;
        let sns = u % 60_000_000_000;
        if h > 0 {
            out.push_str(&format!("{h}h"));
        }
        if h > 0 || m > 0 {
            out.push_str(&format!("{m}m"));
        }
        let secs = sns / 1_000_000_000;
        let frac = sns % 1_000_000_000;
        if frac == 0 {
            out.push_str(&format!("{secs}s"));
        } else {
            let f = format!("{frac:09}");
            out.push_str(&format!("{secs}.{}s", f.trim_end_matches('0')));
        }
    }
    if neg { format!("-{out}") } else { out }
}

/// Go's `time.ParseDuration`.
pub fn parse_duration(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let n = rest
            .bytes()
            .take_while(|c| c.is_ascii_digit() || *c == b'.')
            .count();
        if n == 0 {
            return None;
        }
        let v: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let units = [
            ("ns", 1.0),
            ("us", 1e3),
            ("µs", 1e3),
            ("μs", 1e3),
            ("ms", 1e6),
            ("s", 1e9),
            ("m", 6e10),
            ("h", 3.6e12),
        ];
        let (u, mult) = units
            .iter()
            .filter(|(u, _)| rest.starts_with(u))
            .max_by_key(|(u, _)| u.len())?;
        total += v * mult;
        rest = &rest[u.len()..];
    }
    let t = total.round() as i64;
    Some(if neg { -t } else { t })
}

impl Object for GoTime {
    fn type_name(&self) -> String {
        "time.Time".into()
    }
    fn field(&self, _name: &str) -> Option<Value> {
        None
    }
    fn method(&self, name: &str) -> Option<Func> {
        let ts = self.ts;
        let tz = self.tz.clone();
        let zone_name = self.name;
        let me = move || GoTime {
            ts,
            tz: tz.clone(),
            name: zone_name,
        };
        Some(match name {
            "Format" => Func::new("Format", &[Param::String], None, move |_, a| {
                Ok(Value::str(format(&me(), a[0].as_str().unwrap_or_default())))
            }),
            "Unix" => Func::new("Unix", &[], None, move |_, _| {
                Ok(Value::Int64(ts.as_second()))
            }),
            "UnixNano" => Func::new("UnixNano", &[], None, move |_, _| {
                Ok(Value::Int64(ts.as_nanosecond() as i64))
            }),
            "Year" => Func::new("Year", &[], None, move |_, _| {
                Ok(Value::Int(i64::from(me().tz.to_datetime(ts).year())))
            }),
            "YearDay" => Func::new("YearDay", &[], None, move |_, _| {
                Ok(Value::Int(i64::from(me().tz.to_datetime(ts).day_of_year())))
            }),
            "Day" => Func::new("Day", &[], None, move |_, _| {
                Ok(Value::Int(i64::from(me().tz.to_datetime(ts).day())))
            }),
            "Hour" => Func::new("Hour", &[], None, move |_, _| {
                Ok(Value::Int(i64::from(me().tz.to_datetime(ts).hour())))
            }),
            "Minute" => Func::new("Minute", &[], None, move |_, _| {
                Ok(Value::Int(i64::from(me().tz.to_datetime(ts).minute())))
            }),
            "Second" => Func::new("Second", &[], None, move |_, _| {
                Ok(Value::Int(i64::from(me().tz.to_datetime(ts).second())))
            }),
            "UTC" => Func::new("UTC", &[], None, move |_, _| {
                Ok(Value::Object(Rc::new(GoTime {
                    ts,
                    tz: TimeZone::UTC,
                    name: None,
                })))
            }),
            _ => return None,
        })
    }
    fn format(&self, _plus: bool) -> String {
        format(self, "2006-01-02 15:04:05.999999999 -0700 MST")
    }
    fn marshal_text(&self) -> Option<String> {
        // time.Time's MarshalJSON / MarshalText: RFC 3339 with nanoseconds
        Some(format(self, "2006-01-02T15:04:05.999999999Z07:00"))
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

fn local() -> TimeZone {
    TimeZone::system()
}

fn time_arg(v: &Value) -> GoTime {
    match v {
        Value::Int(i) | Value::Int64(i) => GoTime {
            ts: Timestamp::from_second(*i).unwrap_or(Timestamp::UNIX_EPOCH),
            tz: local(),
            name: None,
        },
        Value::Object(o) => match o.as_any().and_then(|x| x.downcast_ref::<GoTime>()) {
            Some(t) => GoTime {
                ts: t.ts,
                tz: t.tz.clone(),
                name: t.name,
            },
            None => GoTime {
                ts: Timestamp::now(),
                tz: local(),
                name: None,
            },
        },
        _ => GoTime {
            ts: Timestamp::now(),
            tz: local(),
            name: None,
        },
    }
}

fn time_value(t: GoTime) -> Value {
    Value::Object(Rc::new(t))
}

fn date_in_zone(layout: &str, date: &Value, zone: &str) -> String {
    let t = time_arg(date);
    let tz = if zone == "Local" {
        local()
    } else {
        TimeZone::get(zone).unwrap_or(TimeZone::UTC)
    };
    format(
        &GoTime {
            ts: t.ts,
            tz,
            name: None,
        },
        layout,
    )
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// Sprig's date functions.
pub fn functions() -> Vec<Func> {
    use Param::*;
    let f = |name: &str,
             p: &[Param],
             imp: fn(&mut dyn ferroflux_gotemplate::Env, Vec<Value>) -> FuncResult| {
        Func::new(name, p, None, imp)
    };
    vec![
        f("now", &[], |_, _| {
            Ok(time_value(GoTime {
                ts: Timestamp::now(),
                tz: local(),
                name: None,
            }))
        }),
        f("date", &[String, Any], |_, a| {
            Ok(Value::str(date_in_zone(&s(&a[0]), &a[1], "Local")))
        }),
        f("dateInZone", &[String, Any, String], |_, a| {
            Ok(Value::str(date_in_zone(&s(&a[0]), &a[1], &s(&a[2]))))
        }),
        f("date_in_zone", &[String, Any, String], |_, a| {
            Ok(Value::str(date_in_zone(&s(&a[0]), &a[1], &s(&a[2]))))
        }),
        f("htmlDate", &[Any], |_, a| {
            Ok(Value::str(date_in_zone("2006-01-02", &a[0], "Local")))
        }),
        f("htmlDateInZone", &[Any, String], |_, a| {
            Ok(Value::str(date_in_zone("2006-01-02", &a[0], &s(&a[1]))))
        }),
        f("toDate", &[String, String], |_, a| {
            Ok(time_value(parse(&s(&a[0]), &s(&a[1]), &local()).unwrap_or(
                GoTime {
                    ts: zero_time(),
                    tz: TimeZone::UTC,
                    name: None,
                },
            )))
        }),
        f("mustToDate", &[String, String], |_, a| {
            let layout = s(&a[0]);
            let value = s(&a[1]);
            parse(&layout, &value, &local())
                .map(time_value)
                .ok_or_else(|| {
                    ferroflux_gotemplate::FuncError::Msg(format!(
                        "parsing time {} as {}: cannot parse",
                        ferroflux_gotemplate::gofmt::quote(&value),
                        ferroflux_gotemplate::gofmt::quote(&layout)
                    ))
                })
        }),
        f("unixEpoch", &[Any], |_, a| {
            Ok(Value::str(time_arg(&a[0]).ts.as_second().to_string()))
        }),
        f("dateModify", &[String, Any], date_modify),
        f("date_modify", &[String, Any], date_modify),
        f("mustDateModify", &[String, Any], must_date_modify),
        f("must_date_modify", &[String, Any], must_date_modify),
        f("ago", &[Any], |_, a| {
            let t = time_arg(&a[0]);
            let d = Timestamp::now().duration_since(t.ts);
            let secs = (d.as_nanos() as f64 / 1e9).round() as i64;
            Ok(Value::str(duration_string(secs * 1_000_000_000)))
        }),
        f("duration", &[Any], |_, a| {
            let n = match &a[0] {
                Value::String(x) => x.parse::<i64>().unwrap_or(0),
                Value::Int64(i) => *i,
                _ => 0,
            };
            Ok(Value::str(duration_string(n.saturating_mul(1_000_000_000))))
        }),
        f("durationRound", &[Any], |_, a| {
            let d: i64 = match &a[0] {
                Value::String(x) => parse_duration(x).unwrap_or(0),
                Value::Int64(i) => *i,
                _ => 0,
            };
            let u = d.unsigned_abs();
            let sec = 1_000_000_000u64;
            let (minute, hour) = (60 * sec, 3600 * sec);
            let (day, month, year) = (24 * hour, 30 * 24 * hour, 365 * 24 * hour);
            Ok(Value::str(if u > year {
                format!("{}y", u / year)
            } else if u > month {
                format!("{}mo", u / month)
            } else if u > day {
                format!("{}d", u / day)
            } else if u > hour {
                format!("{}h", u / hour)
            } else if u > minute {
                format!("{}m", u / minute)
            } else if u > sec {
                format!("{}s", u / sec)
            } else {
                "0s".to_string()
            }))
        }),
    ]
}

fn date_modify(_: &mut dyn ferroflux_gotemplate::Env, a: Vec<Value>) -> FuncResult {
    let t = time_arg(&a[1]);
    Ok(time_value(match parse_duration(&s(&a[0])) {
        Some(d) => GoTime {
            ts: t
                .ts
                .checked_add(jiff::SignedDuration::from_nanos(d))
                .unwrap_or(t.ts),
            tz: t.tz,
            name: None,
        },
        None => t,
    }))
}

fn must_date_modify(_: &mut dyn ferroflux_gotemplate::Env, a: Vec<Value>) -> FuncResult {
    let f = s(&a[0]);
    let t = time_arg(&a[1]);
    match parse_duration(&f) {
        Some(d) => Ok(time_value(GoTime {
            ts: t
                .ts
                .checked_add(jiff::SignedDuration::from_nanos(d))
                .unwrap_or(t.ts),
            tz: t.tz,
            name: None,
        })),
        None => Err(ferroflux_gotemplate::FuncError::Msg(format!(
            "time: invalid duration {}",
            ferroflux_gotemplate::gofmt::quote(&f)
        ))),
    }
}

fn zero_time() -> Timestamp {
    // Go's zero time: 0001-01-01 00:00:00 UTC
    Timestamp::from_second(-62135596800).unwrap_or(Timestamp::UNIX_EPOCH)
}
