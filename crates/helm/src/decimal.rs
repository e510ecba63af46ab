//! Decimal arithmetic for Sprig's `addf`/`subf`/`mulf`/`divf` (shopspring/decimal semantics:
//! each float enters as its shortest decimal text; division keeps 16 fractional digits).

use ferroflux_gotemplate::Value;
use ferroflux_gotemplate::gofmt::format_float;

use crate::sprig::to_float64;

/// A decimal `mant * 10^-scale`.
#[derive(Clone, Copy)]
struct Dec {
    mant: i128,
    scale: u32,
}

fn from_f64(f: f64) -> Dec {
    let s = format_float(f, 'f', None);
    let neg = s.starts_with('-');
    let s = s.trim_start_matches('-');
    let (i, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = format!("{i}{frac}");
    let mant: i128 = digits.parse().unwrap_or(0);
    Dec {
        mant: if neg { -mant } else { mant },
        scale: frac.len() as u32,
    }
}

fn align(a: Dec, b: Dec) -> (i128, i128, u32) {
    let s = a.scale.max(b.scale);
    let am = a.mant.saturating_mul(10i128.saturating_pow(s - a.scale));
    let bm = b.mant.saturating_mul(10i128.saturating_pow(s - b.scale));
    (am, bm, s)
}

fn to_f64(d: Dec) -> f64 {
    let neg = d.mant < 0;
    let digits = d.mant.unsigned_abs().to_string();
    let s = if d.scale == 0 {
        digits
    } else if digits.len() as u32 > d.scale {
        let (i, f) = digits.split_at(digits.len() - d.scale as usize);
        format!("{i}.{f}")
    } else {
        format!(
            "0.{}{}",
            "0".repeat((d.scale as usize) - digits.len()),
            digits
        )
    };
    let v: f64 = s.parse().unwrap_or(0.0);
    if neg { -v } else { v }
}

fn div(a: Dec, b: Dec) -> Dec {
    if b.mant == 0 {
        return Dec { mant: 0, scale: 0 };
    }
    // result scale 16, rounded half away from zero
    let (am, bm, _) = align(a, b);
    let num = am.saturating_mul(10i128.pow(17));
    let q = num / bm;
    let rounded = if q >= 0 { (q + 5) / 10 } else { (q - 5) / 10 };
    Dec {
        mant: rounded,
        scale: 16,
    }
}

/// Apply `op` left to right: `a op b[0] op b[1] ...`.
pub fn op(a: &Value, b: &[Value], op: char) -> f64 {
    let mut acc = from_f64(to_float64(a));
    for x in b {
        let d = from_f64(to_float64(x));
        acc = match op {
            '+' => {
                let (x, y, s) = align(acc, d);
                Dec {
                    mant: x.saturating_add(y),
                    scale: s,
                }
            }
            '-' => {
                let (x, y, s) = align(acc, d);
                Dec {
                    mant: x.saturating_sub(y),
                    scale: s,
                }
            }
            '*' => Dec {
                mant: acc.mant.saturating_mul(d.mant),
                scale: acc.scale + d.scale,
            },
            _ => div(acc, d),
        };
        // keep the mantissa bounded
        while acc.scale > 30 {
            acc.mant /= 10;
            acc.scale -= 1;
        }
    }
    to_f64(acc)
}
