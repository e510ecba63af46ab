//! Go's `fmt` package as templates use it: `Sprint`, `Sprintln`, `Sprintf` with Go's verbs,
//! flags, widths, precisions, argument indexes and error forms (`%!d(string=x)`,
//! `%!v(MISSING)`, `%!(EXTRA ...)`), and Go's float formatting (`strconv.FormatFloat`).

use crate::value::Value;

const LDIGITS: &[u8] = b"0123456789abcdefx";
const UDIGITS: &[u8] = b"0123456789ABCDEFX";
const MAX_WIDTH: i64 = 1_000_000;

#[derive(Default, Clone, Copy)]
struct Flags {
    plus: bool,
    minus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    plus_v: bool,
    sharp_v: bool,
    wid: Option<usize>,
    prec: Option<usize>,
}

struct Printer {
    buf: String,
    f: Flags,
}

/// `fmt.Sprint(args...)`.
pub fn sprint(args: &[Value]) -> String {
    let mut p = Printer::new();
    let mut prev_string = false;
    for (i, arg) in args.iter().enumerate() {
        let is_string = matches!(arg, Value::String(_));
        if i > 0 && !is_string && !prev_string {
            p.buf.push(' ');
        }
        p.print_arg(arg, 'v');
        prev_string = is_string;
    }
    p.buf
}

/// `fmt.Sprintln(args...)`.
pub fn sprintln(args: &[Value]) -> String {
    let mut p = Printer::new();
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            p.buf.push(' ');
        }
        p.print_arg(arg, 'v');
    }
    p.buf.push('\n');
    p.buf
}

/// `fmt.Sprintf(format, args...)`.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut p = Printer::new();
    p.do_printf(format, args);
    p.buf
}

// Go's strconv float formatting has its home in goyaml (the YAML writers print floats the
// same way); templates use it from there.
pub use ferroflux_goyaml::num::{format_float, format_float_shortest};

/// `strconv.Quote(s)`.
pub fn quote(s: &str) -> String {
    quote_with(s, '"', false)
}

fn too_large(n: i64) -> bool {
    !(-MAX_WIDTH..=MAX_WIDTH).contains(&n)
}

fn parse_num(s: &[u8], start: usize, end: usize) -> (usize, bool, usize) {
    if start >= end {
        return (0, false, end);
    }
    let mut num: i64 = 0;
    let mut isnum = false;
    let mut i = start;
    while i < end && s[i].is_ascii_digit() {
        if too_large(num) {
            return (0, false, end);
        }
        num = num * 10 + i64::from(s[i] - b'0');
        isnum = true;
        i += 1;
    }
    (num as usize, isnum, i)
}

fn parse_arg_number(format: &[u8]) -> (usize, usize, bool) {
    if format.len() < 3 {
        return (0, 1, false);
    }
    for i in 1..format.len() {
        if format[i] == b']' {
            let (width, ok, newi) = parse_num(format, 1, i);
            if !ok || newi != i || width == 0 {
                return (0, i + 1, ok && newi == i && width > 0);
            }
            return (width - 1, i + 1, true);
        }
    }
    (0, 1, false)
}

fn int_from_arg(args: &[Value], arg_num: usize) -> (i64, bool, usize) {
    if arg_num >= args.len() {
        return (0, false, arg_num);
    }
    let (mut num, mut ok) = match &args[arg_num] {
        Value::Int(i) | Value::Int64(i) => (*i, true),
        Value::Uint(u) if i64::try_from(*u).is_ok() => (*u as i64, true),
        Value::Byte(b) => (i64::from(*b), true),
        _ => (0, false),
    };
    if too_large(num) {
        num = 0;
        ok = false;
    }
    (num, ok, arg_num + 1)
}

impl Printer {
    fn new() -> Self {
        Printer {
            buf: String::new(),
            f: Flags::default(),
        }
    }

    fn do_printf(&mut self, format: &str, args: &[Value]) {
        let fb = format.as_bytes();
        let end = fb.len();
        let mut arg_num = 0usize;
        let mut after_index;
        let mut reordered = false;
        let mut i = 0usize;
        'format_loop: while i < end {
            let mut good_arg_num = true;
            let lasti = i;
            while i < end && fb[i] != b'%' {
                i += 1;
            }
            if i > lasti {
                self.buf.push_str(&format[lasti..i]);
            }
            if i >= end {
                break;
            }
            i += 1;
            self.f = Flags::default();
            // flags
            while i < end {
                let c = fb[i];
                match c {
                    b'#' => self.f.sharp = true,
                    b'0' => self.f.zero = !self.f.minus,
                    b'+' => self.f.plus = true,
                    b'-' => {
                        self.f.minus = true;
                        self.f.zero = false;
                    }
                    b' ' => self.f.space = true,
                    _ => {
                        if c.is_ascii_lowercase() && arg_num < args.len() {
                            if c == b'v' {
                                self.f.sharp_v = self.f.sharp;
                                self.f.sharp = false;
                                self.f.plus_v = self.f.plus;
                                self.f.plus = false;
                            }
                            self.print_arg(&args[arg_num], c as char);
                            arg_num += 1;
                            i += 1;
                            continue 'format_loop;
                        }
                        break;
                    }
                }
                i += 1;
            }
            // argument index
            let (an, ni, ai) = self.arg_number(
                arg_num,
                fb,
                i,
                args.len(),
                &mut good_arg_num,
                &mut reordered,
            );
            arg_num = an;
            i = ni;
            after_index = ai;
            // width
            if i < end && fb[i] == b'*' {
                i += 1;
                let (w, ok, na) = int_from_arg(args, arg_num);
                arg_num = na;
                if !ok {
                    self.buf.push_str("%!(BADWIDTH)");
                    self.f.wid = None;
                } else if w < 0 {
                    self.f.wid = Some((-w) as usize);
                    self.f.minus = true;
                    self.f.zero = false;
                } else {
                    self.f.wid = Some(w as usize);
                }
                after_index = false;
            } else {
                let (w, present, ni) = parse_num(fb, i, end);
                i = ni;
                self.f.wid = present.then_some(w);
                if after_index && present {
                    good_arg_num = false;
                }
            }
            // precision
            if i + 1 < end && fb[i] == b'.' {
                i += 1;
                if after_index {
                    good_arg_num = false;
                }
                let (an, ni, ai) = self.arg_number(
                    arg_num,
                    fb,
                    i,
                    args.len(),
                    &mut good_arg_num,
                    &mut reordered,
                );
                arg_num = an;
                i = ni;
                after_index = ai;
                if i < end && fb[i] == b'*' {
                    i += 1;
                    let (p, ok, na) = int_from_arg(args, arg_num);
                    arg_num = na;
                    if p < 0 {
                        self.f.prec = None;
                    } else {
                        self.f.prec = ok.then_some(p as usize);
                    }
                    if !ok {
                        self.buf.push_str("%!(BADPREC)");
                    }
                    after_index = false;
                } else {
                    let (p, present, ni) = parse_num(fb, i, end);
                    i = ni;
                    self.f.prec = Some(if present { p } else { 0 });
                }
            }
            if !after_index {
                let (an, ni, _) = self.arg_number(
                    arg_num,
                    fb,
                    i,
                    args.len(),
                    &mut good_arg_num,
                    &mut reordered,
                );
                arg_num = an;
                i = ni;
            }
            if i >= end {
                self.buf.push_str("%!(NOVERB)");
                break;
            }
            let verb = format[i..].chars().next().unwrap_or('?');
            i += verb.len_utf8();
            if verb == '%' {
                self.buf.push('%');
            } else if !good_arg_num {
                self.buf.push_str("%!");
                self.buf.push(verb);
                self.buf.push_str("(BADINDEX)");
            } else if arg_num >= args.len() {
                self.buf.push_str("%!");
                self.buf.push(verb);
                self.buf.push_str("(MISSING)");
            } else {
                if verb == 'v' {
                    self.f.sharp_v = self.f.sharp;
                    self.f.sharp = false;
                    self.f.plus_v = self.f.plus;
                    self.f.plus = false;
                }
                self.print_arg(&args[arg_num], verb);
                arg_num += 1;
            }
        }
        if !reordered && arg_num < args.len() {
            self.f = Flags::default();
            self.buf.push_str("%!(EXTRA ");
            for (k, arg) in args[arg_num..].iter().enumerate() {
                if k > 0 {
                    self.buf.push_str(", ");
                }
                if arg.is_nil() {
                    self.buf.push_str("<nil>");
                } else {
                    self.buf.push_str(&arg.type_name());
                    self.buf.push('=');
                    self.print_arg(arg, 'v');
                }
            }
            self.buf.push(')');
        }
    }

    fn arg_number(
        &mut self,
        arg_num: usize,
        fb: &[u8],
        i: usize,
        num_args: usize,
        good: &mut bool,
        reordered: &mut bool,
    ) -> (usize, usize, bool) {
        if fb.len() <= i || fb[i] != b'[' {
            return (arg_num, i, false);
        }
        *reordered = true;
        let (index, wid, ok) = parse_arg_number(&fb[i..]);
        if ok && index < num_args {
            return (index, i + wid, true);
        }
        *good = false;
        (arg_num, i + wid, ok)
    }

    fn write_padding(&mut self, n: usize) {
        let c = if self.f.zero { '0' } else { ' ' };
        for _ in 0..n {
            self.buf.push(c);
        }
    }

    fn pad(&mut self, s: &str) {
        let Some(wid) = self.f.wid.filter(|w| *w > 0) else {
            self.buf.push_str(s);
            return;
        };
        let n = s.chars().count();
        let width = wid.saturating_sub(n);
        if !self.f.minus {
            self.write_padding(width);
            self.buf.push_str(s);
        } else {
            self.buf.push_str(s);
            self.write_padding(width);
        }
    }

    fn bad_verb(&mut self, verb: char, arg: &Value) {
        self.buf.push_str("%!");
        self.buf.push(verb);
        self.buf.push('(');
        if arg.is_nil() {
            self.buf.push_str("<nil>");
        } else {
            self.buf.push_str(&arg.type_name());
            self.buf.push('=');
            self.print_arg(arg, 'v');
        }
        self.buf.push(')');
    }

    fn print_arg(&mut self, arg: &Value, verb: char) {
        if arg.is_nil() {
            match verb {
                'T' | 'v' => self.pad("<nil>"),
                _ => self.bad_verb(verb, arg),
            }
            return;
        }
        if verb == 'T' {
            let t = arg.type_name();
            self.pad(&t);
            return;
        }
        self.print_value(arg, verb, 0);
    }

    fn go_syntax(&mut self, arg: &Value, depth: usize) {
        if depth > 64 {
            self.buf.push_str("...");
            return;
        }
        match arg {
            Value::NoValue | Value::Nil => {
                if depth == 0 {
                    self.buf.push_str("<nil>");
                } else {
                    self.buf.push_str("interface {}(nil)");
                }
            }
            Value::Uint(u) => self.buf.push_str(&format!("0x{u:x}")),
            Value::Byte(u) => self.buf.push_str(&format!("0x{u:x}")),
            Value::String(s) => {
                let q = quote(s);
                self.buf.push_str(&q);
            }
            Value::Bytes(b) => {
                self.buf.push_str("[]byte{");
                let parts: Vec<String> = b.iter().map(|x| format!("0x{x:x}")).collect();
                self.buf.push_str(&parts.join(", "));
                self.buf.push('}');
            }
            Value::List(l) => {
                self.buf.push_str("[]interface {}{");
                for (i, e) in l.iter().enumerate() {
                    if i > 0 {
                        self.buf.push_str(", ");
                    }
                    self.go_syntax(e, depth + 1);
                }
                self.buf.push('}');
            }
            Value::Map(m) => {
                self.buf.push_str("map[string]interface {}{");
                let Ok(m) = m.try_borrow() else {
                    self.buf.push('}');
                    return;
                };
                for (i, (k, e)) in m.iter().enumerate() {
                    if i > 0 {
                        self.buf.push_str(", ");
                    }
                    self.buf.push_str(&quote(k));
                    self.buf.push(':');
                    self.go_syntax(e, depth + 1);
                }
                self.buf.push('}');
            }
            other => {
                let saved = self.f;
                self.f.sharp_v = false;
                self.print_value(other, 'v', depth + 1);
                self.f = saved;
            }
        }
    }

    fn print_value(&mut self, arg: &Value, verb: char, depth: usize) {
        if verb == 'v' && self.f.sharp_v {
            self.go_syntax(arg, depth);
            return;
        }
        match arg {
            Value::NoValue | Value::Nil => {
                if depth == 0 {
                    self.print_arg(arg, verb)
                } else {
                    self.buf.push_str("<nil>")
                }
            }
            Value::Bool(b) => match verb {
                't' | 'v' => self.pad(if *b { "true" } else { "false" }),
                _ => self.bad_verb(verb, arg),
            },
            Value::Int(i) | Value::Int64(i) => self.fmt_integer(*i as u64, true, verb, arg),
            Value::Uint(u) => self.fmt_integer(*u, false, verb, arg),
            Value::Byte(u) => self.fmt_integer(u64::from(*u), false, verb, arg),
            Value::Float(f) => self.fmt_float_verb(*f, verb, arg),
            Value::String(s) => self.fmt_string(s, verb, arg),
            Value::Bytes(b) => self.fmt_bytes(b, verb, arg),
            Value::List(l) => {
                if depth > 64 {
                    self.buf.push_str("[...]");
                    return;
                }
                self.buf.push('[');
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        self.buf.push(' ');
                    }
                    self.print_value(v, verb, depth + 1);
                }
                self.buf.push(']');
            }
            Value::Map(m) => {
                if depth > 64 {
                    self.buf.push_str("map[...]");
                    return;
                }
                self.buf.push_str("map[");
                let Ok(m) = m.try_borrow() else {
                    self.buf.push_str("...]");
                    return;
                };
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        self.buf.push(' ');
                    }
                    let key = Value::String(k.as_str().into());
                    self.print_value(&key, verb, depth + 1);
                    self.buf.push(':');
                    self.print_value(v, verb, depth + 1);
                }
                self.buf.push(']');
            }
            Value::Object(o) => {
                let s = o.format(self.f.plus_v);
                self.buf.push_str(&s);
            }
            Value::Func(_) => {
                if verb == 'v' || verb == 'p' {
                    self.pad("0x0");
                } else {
                    self.bad_verb(verb, arg);
                }
            }
        }
    }

    fn fmt_integer(&mut self, v: u64, signed: bool, verb: char, arg: &Value) {
        match verb {
            'v' | 'd' => self.fmt_int_base(v, 10, signed, verb, LDIGITS),
            'b' => self.fmt_int_base(v, 2, signed, verb, LDIGITS),
            'o' | 'O' => self.fmt_int_base(v, 8, signed, verb, LDIGITS),
            'x' => self.fmt_int_base(v, 16, signed, verb, LDIGITS),
            'X' => self.fmt_int_base(v, 16, signed, verb, UDIGITS),
            'c' => {
                let c = char::from_u32(v as u32)
                    .filter(|_| v <= 0x10FFFF)
                    .unwrap_or('\u{FFFD}');
                self.pad(&c.to_string());
            }
            'q' => {
                let c = char::from_u32(v as u32)
                    .filter(|_| v <= 0x10FFFF)
                    .unwrap_or('\u{FFFD}');
                let q = quote_rune(c, self.f.plus);
                self.pad(&q);
            }
            'U' => {
                let mut s = format!("U+{v:04X}");
                if self.f.sharp
                    && let Some(c) = char::from_u32(v as u32)
                    && is_print(c)
                {
                    s.push_str(&format!(" '{c}'"));
                }
                self.pad(&s);
            }
            _ => self.bad_verb(verb, arg),
        }
    }

    fn fmt_int_base(&mut self, u: u64, base: u64, signed: bool, verb: char, digits: &[u8]) {
        let negative = signed && (u as i64) < 0;
        let mut u = if negative {
            (u as i64).unsigned_abs()
        } else {
            u
        };
        let mut prec = 0usize;
        if let Some(p) = self.f.prec {
            prec = p;
            if p == 0 && u == 0 {
                let old = self.f.zero;
                self.f.zero = false;
                let w = self.f.wid.unwrap_or(0);
                self.write_padding(w);
                self.f.zero = old;
                return;
            }
        } else if self.f.zero
            && !self.f.minus
            && let Some(w) = self.f.wid
        {
            prec = w;
            if negative || self.f.plus || self.f.space {
                prec = prec.saturating_sub(1);
            }
        }
        let mut out: Vec<u8> = Vec::new();
        loop {
            out.push(digits[(u % base) as usize]);
            u /= base;
            if u == 0 {
                break;
            }
        }
        while out.len() < prec {
            out.push(b'0');
        }
        if self.f.sharp {
            match base {
                2 => {
                    out.push(b'b');
                    out.push(b'0');
                }
                8 if out.last() != Some(&b'0') => out.push(b'0'),
                16 => {
                    out.push(digits[16]);
                    out.push(b'0');
                }
                _ => {}
            }
        }
        if verb == 'O' {
            out.push(b'o');
            out.push(b'0');
        }
        if negative {
            out.push(b'-');
        } else if self.f.plus {
            out.push(b'+');
        } else if self.f.space {
            out.push(b' ');
        }
        out.reverse();
        let s = String::from_utf8_lossy(&out).into_owned();
        let old = self.f.zero;
        self.f.zero = false;
        self.pad(&s);
        self.f.zero = old;
    }

    fn fmt_float_verb(&mut self, v: f64, verb: char, arg: &Value) {
        match verb {
            'v' => self.fmt_float(v, 'g', None),
            'g' | 'G' => self.fmt_float(v, verb, None),
            'f' | 'F' | 'e' | 'E' => self.fmt_float(v, verb, Some(6)),
            'x' | 'X' | 'b' => self.fmt_float(v, verb, None),
            _ => self.bad_verb(verb, arg),
        }
    }

    fn fmt_float(&mut self, v: f64, verb: char, default_prec: Option<usize>) {
        let prec = self.f.prec.or(default_prec);
        let conv = if verb == 'F' { 'f' } else { verb };
        let body = format_float(v, conv, prec);
        let mut num: Vec<u8> = Vec::with_capacity(body.len() + 1);
        if body.starts_with('-') || body.starts_with('+') {
            num.extend_from_slice(body.as_bytes());
        } else {
            num.push(b'+');
            num.extend_from_slice(body.as_bytes());
        }
        if self.f.space && num[0] == b'+' && !self.f.plus {
            num[0] = b' ';
        }
        if num.len() > 1 && (num[1] == b'I' || num[1] == b'N') {
            let old = self.f.zero;
            self.f.zero = false;
            let start = if num[1] == b'N' && !self.f.space && !self.f.plus {
                1
            } else {
                0
            };
            let s = String::from_utf8_lossy(&num[start..]).into_owned();
            self.pad(&s);
            self.f.zero = old;
            return;
        }
        if self.f.sharp && verb != 'b' {
            let mut digits: i64 = 0;
            if matches!(verb, 'v' | 'g' | 'G' | 'x') {
                digits = prec.map(|p| p as i64).unwrap_or(6);
            }
            let mut tail: Vec<u8> = Vec::new();
            let mut has_point = false;
            let mut saw_nonzero = false;
            let mut k = 1;
            while k < num.len() {
                match num[k] {
                    b'.' => has_point = true,
                    b'p' | b'P' => {
                        tail.extend_from_slice(&num[k..]);
                        num.truncate(k);
                        break;
                    }
                    b'e' | b'E' if verb != 'x' && verb != 'X' => {
                        tail.extend_from_slice(&num[k..]);
                        num.truncate(k);
                        break;
                    }
                    c => {
                        if c != b'0' {
                            saw_nonzero = true;
                        }
                        if saw_nonzero {
                            digits -= 1;
                        }
                    }
                }
                k += 1;
            }
            if !has_point {
                if num.len() == 2 && num[1] == b'0' {
                    digits -= 1;
                }
                num.push(b'.');
            }
            while digits > 0 {
                num.push(b'0');
                digits -= 1;
            }
            num.extend_from_slice(&tail);
        }
        if self.f.plus || num[0] != b'+' {
            if self.f.zero
                && !self.f.minus
                && let Some(w) = self.f.wid
                && w > num.len()
            {
                self.buf.push(num[0] as char);
                self.write_padding(w - num.len());
                self.buf.push_str(&String::from_utf8_lossy(&num[1..]));
                return;
            }
            let s = String::from_utf8_lossy(&num).into_owned();
            self.pad(&s);
            return;
        }
        let s = String::from_utf8_lossy(&num[1..]).into_owned();
        self.pad(&s);
    }

    fn truncate<'a>(&self, s: &'a str) -> &'a str {
        if let Some(p) = self.f.prec
            && let Some((idx, _)) = s.char_indices().nth(p)
        {
            return &s[..idx];
        }
        s
    }

    fn fmt_string(&mut self, s: &str, verb: char, arg: &Value) {
        match verb {
            'v' => {
                if self.f.sharp_v {
                    let q = quote(self.truncate(s));
                    self.pad(&q);
                } else {
                    let t = self.truncate(s).to_string();
                    self.pad(&t);
                }
            }
            's' => {
                let t = self.truncate(s).to_string();
                self.pad(&t);
            }
            'x' => self.fmt_sx(s.as_bytes(), LDIGITS),
            'X' => self.fmt_sx(s.as_bytes(), UDIGITS),
            'q' => {
                let t = self.truncate(s);
                let q = if self.f.sharp && can_backquote(t) {
                    format!("`{t}`")
                } else {
                    quote_with(t, '"', self.f.plus)
                };
                self.pad(&q);
            }
            _ => self.bad_verb(verb, arg),
        }
    }

    fn fmt_bytes(&mut self, b: &[u8], verb: char, arg: &Value) {
        match verb {
            'v' | 'd' => {
                self.buf.push('[');
                for (i, c) in b.iter().enumerate() {
                    if i > 0 {
                        self.buf.push(' ');
                    }
                    self.fmt_int_base(u64::from(*c), 10, false, verb, LDIGITS);
                }
                self.buf.push(']');
            }
            's' => {
                let s = String::from_utf8_lossy(b).into_owned();
                let t = self.truncate(&s).to_string();
                self.pad(&t);
            }
            'x' => self.fmt_sx(b, LDIGITS),
            'X' => self.fmt_sx(b, UDIGITS),
            'q' => {
                let s = String::from_utf8_lossy(b).into_owned();
                self.fmt_string(&s, 'q', arg);
            }
            _ => {
                let v = Value::list(b.iter().map(|c| Value::Byte(*c)).collect());
                self.print_value(&v, verb, 0);
            }
        }
    }

    fn fmt_sx(&mut self, b: &[u8], digits: &[u8]) {
        let len = match self.f.prec {
            Some(p) if p < b.len() => p,
            _ => b.len(),
        };
        let mut out = String::new();
        for (i, c) in b[..len].iter().enumerate() {
            if self.f.space && i > 0 {
                out.push(' ');
            }
            if self.f.sharp && (self.f.space || i == 0) {
                out.push('0');
                out.push(digits[16] as char);
            }
            out.push(digits[(c >> 4) as usize] as char);
            out.push(digits[(c & 0xF) as usize] as char);
        }
        self.pad(&out);
    }
}

/// Go's `unicode.IsPrint` (approximation for non-ASCII).
pub fn is_print(c: char) -> bool {
    if c.is_ascii() {
        return (' '..='~').contains(&c);
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(
        c,
        '\u{AD}'
            | '\u{600}'..='\u{605}'
            | '\u{61C}'
            | '\u{6DD}'
            | '\u{70F}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{E000}'..='\u{F8FF}'
            | '\u{F0000}'..='\u{10FFFF}'
    ) && !is_unassigned_guess(c)
}

fn is_unassigned_guess(c: char) -> bool {
    matches!(c, '\u{FFFE}' | '\u{FFFF}')
}

fn can_backquote(s: &str) -> bool {
    s.chars()
        .all(|c| c != '`' && c != '\u{FEFF}' && (c == '\t' || !(c < ' ' || c == '\u{7F}')))
}

fn push_escaped(out: &mut String, c: char, quote: char, ascii_only: bool) {
    if c == quote || c == '\\' {
        out.push('\\');
        out.push(c);
        return;
    }
    if ascii_only {
        if c.is_ascii() && is_print(c) {
            out.push(c);
            return;
        }
    } else if is_print(c) {
        out.push(c);
        return;
    }
    match c {
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{C}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{B}' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c == '\u{7F}' => {
            out.push_str(&format!("\\x{:02x}", c as u32));
        }
        c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push_str(&format!("\\U{:08x}", c as u32)),
    }
}

fn quote_with(s: &str, quote: char, ascii_only: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        push_escaped(&mut out, c, quote, ascii_only);
    }
    out.push(quote);
    out
}

/// Quote raw bytes like Go's `strconv.Quote` on a string that may hold invalid UTF-8.
pub fn quote_bytes(b: &[u8]) -> String {
    let mut out = String::from("\"");
    let mut rest = b;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                for c in s.chars() {
                    push_escaped(&mut out, c, '"', false);
                }
                break;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                for c in std::str::from_utf8(good).unwrap_or("").chars() {
                    push_escaped(&mut out, c, '"', false);
                }
                let n = e.error_len().unwrap_or(bad.len()).max(1);
                for byte in &bad[..n.min(bad.len())] {
                    out.push_str(&format!("\\x{byte:02x}"));
                }
                rest = &bad[n.min(bad.len())..];
            }
        }
    }
    out.push('"');
    out
}

fn quote_rune(c: char, ascii_only: bool) -> String {
    let mut out = String::from("'");
    if c == '\'' {
        out.push_str("\\'");
    } else if c == '"' {
        out.push('"');
    } else {
        push_escaped(&mut out, c, '\'', ascii_only);
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_like_go() {
        assert_eq!(format_float_shortest(1e6), "1e+06");
        assert_eq!(format_float_shortest(100000.0), "100000");
        assert_eq!(format_float_shortest(0.0001), "0.0001");
        assert_eq!(format_float_shortest(0.00001), "1e-05");
        assert_eq!(format_float_shortest(1.5), "1.5");
        assert_eq!(format_float_shortest(0.0), "0");
        assert_eq!(format_float_shortest(123456789.0), "1.23456789e+08");
        assert_eq!(format_float(4.56789, 'f', Some(2)), "4.57");
        assert_eq!(format_float(1.0, 'e', Some(6)), "1.000000e+00");
        assert_eq!(format_float(1.0, 'g', Some(3)), "1");
        assert_eq!(format_float(1234.5678, 'g', Some(3)), "1.23e+03");
    }

    #[test]
    fn huge_precision_pads_like_go() {
        let s = sprintf(
            "%.2000f|%.1500e|%.1200g",
            &[Value::Float(1.5), Value::Float(2.5), Value::Float(0.1)],
        );
        let parts: Vec<&str> = s.split('|').collect();
        assert_eq!(parts[0].len(), 2 + 2000);
        assert!(parts[0].starts_with("1.5000"));
        assert!(parts[1].starts_with("2.5000") && parts[1].ends_with("e+00"));
        assert!(parts[2].starts_with("0.1000000000000000055511151231257827"));
    }

    #[test]
    fn printf_forms() {
        let s = |x: &str| Value::str(x);
        assert_eq!(sprintf("%d", &[Value::Int(5)]), "5");
        assert_eq!(
            sprintf(
                "%05d|%-4d|%x",
                &[Value::Int(-42), Value::Int(3), Value::Int(255)]
            ),
            "-0042|3   |ff"
        );
        assert_eq!(sprintf("%d", &[Value::Float(1.5)]), "%!d(float64=1.5)");
        assert_eq!(sprintf("%s %s", &[s("a")]), "a %!s(MISSING)");
        assert_eq!(sprintf("%s", &[s("a"), Value::Int(1)]), "a%!(EXTRA int=1)");
        assert_eq!(sprintf("%q", &[s("a\"b\n")]), "\"a\\\"b\\n\"");
        assert_eq!(
            sprintf(
                "%v",
                &[Value::list(vec![Value::Int(1), s("x"), Value::Nil])]
            ),
            "[1 x <nil>]"
        );
        assert_eq!(
            sprintf("%6.2f|%T", &[Value::Float(4.56789), Value::Float(1.0)]),
            "  4.57|float64"
        );
        assert_eq!(
            sprintf("%[2]d %[1]d", &[Value::Int(1), Value::Int(2)]),
            "2 1"
        );
        assert_eq!(
            sprint(&[Value::Int(1), Value::Int(2), s("a"), Value::Int(3)]),
            "1 2a3"
        );
    }
}
