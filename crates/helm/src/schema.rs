//! values.schema.json validation with the error shape Helm prints. Helm v4 and Helm v3.19 both
//! use santhosh-tekuri/jsonschema v6; this follows its validator: the draft comes from
//! `$schema` (2020-12 when absent), keywords are checked in its order (a failed `type`,
//! `const`, `enum` or `format` ends the checks of that schema; with drafts before 2019-09 a
//! `$ref` replaces its siblings), and errors are nested the way it prints them
//! (`- at '/replicas': minimum: got 0, want 1`).

use std::collections::BTreeSet;

use ferroflux_gotemplate::Value;

use crate::chart::Chart;
use crate::schema_format;
use crate::yaml;

/// One validation error: instance location (a JSON pointer), message, nested causes.
struct E {
    loc: String,
    msg: String,
    causes: Vec<E>,
    kind: Kind,
}

#[derive(PartialEq)]
enum Kind {
    Plain,
    /// Several errors of one schema ("validation failed").
    Group,
    /// A failed `$ref`: printed only when it groups several causes.
    Ref,
}

impl E {
    fn new(loc: &str, msg: impl Into<String>) -> E {
        E {
            loc: loc.to_string(),
            msg: msg.into(),
            causes: Vec::new(),
            kind: Kind::Plain,
        }
    }
    fn with(loc: &str, msg: impl Into<String>, causes: Vec<E>) -> E {
        E {
            causes,
            ..E::new(loc, msg)
        }
    }
}

/// What a schema evaluated (for `unevaluatedProperties` / `unevaluatedItems`).
#[derive(Default)]
struct Evaluated {
    props: BTreeSet<String>,
    items: BTreeSet<usize>,
}

impl Evaluated {
    fn merge(&mut self, o: Evaluated) {
        self.props.extend(o.props);
        self.items.extend(o.items);
    }
}

/// `kind.quote`: Go's `%q` with `"` unescaped and `'` escaped, in single quotes.
fn quote(s: &str) -> String {
    let q = ferroflux_gotemplate::gofmt::quote(s);
    let inner = &q[1..q.len() - 1];
    format!("'{}'", inner.replace("\\\"", "\"").replace('\'', "\\'"))
}

fn render(errs: &[E], depth: usize, out: &mut String) {
    for e in errs {
        if e.kind == Kind::Ref && e.causes.len() == 1 {
            render(&e.causes, depth, out);
            continue;
        }
        out.push_str(&"  ".repeat(depth));
        out.push_str(&format!("- at {}: {}\n", quote(&e.loc), e.msg));
        render(&e.causes, depth + 1, out);
    }
}

fn esc_ptr(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Nil | Value::NoValue => "null",
        Value::Bool(_) => "boolean",
        Value::Int(_) | Value::Int64(_) | Value::Uint(_) | Value::Byte(_) | Value::Float(_) => {
            "number"
        }
        Value::String(_) => "string",
        Value::List(_) => "array",
        _ => "object",
    }
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) | Value::Int64(i) => Some(*i as f64),
        Value::Uint(u) => Some(*u as f64),
        Value::Byte(b) => Some(f64::from(*b)),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

fn as_usize(v: &Value) -> Option<usize> {
    as_f64(v).filter(|f| *f >= 0.0).map(|f| f as usize)
}

/// The order santhosh-tekuri lists types in.
const TYPE_ORDER: [&str; 7] = [
    "null", "boolean", "number", "integer", "string", "array", "object",
];

fn is_type(v: &Value, t: &str) -> bool {
    match t {
        "integer" => as_f64(v).is_some_and(|f| f.fract() == 0.0),
        other => type_of(v) == other,
    }
}

fn group_thousands(digits: &str) -> String {
    let mut out = String::new();
    for (k, c) in digits.chars().enumerate() {
        if k > 0 && (digits.len() - k).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A float64 as golang.org/x/text's `message.Printer` prints `%v`: strconv's shortest `%g`
/// decision (exponent form below 1e-4 and from 1e6 up), thousands separators, and the
/// exponent as `×10⁰⁶`.
fn num_f(f: f64) -> String {
    if f.is_nan() || f.is_infinite() {
        return ferroflux_gotemplate::gofmt::format_float_shortest(f);
    }
    if f == 0.0 {
        return "0".into();
    }
    let sci = format!("{:e}", f.abs());
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let sign = if f < 0.0 { "-" } else { "" };
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    if !(-4..6).contains(&exp) {
        const SUP: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];
        let e = format!("{:02}", exp.unsigned_abs());
        let sup: String = e
            .chars()
            .map(|c| SUP[c.to_digit(10).unwrap_or(0) as usize])
            .collect();
        let neg = if exp < 0 { "⁻" } else { "" };
        return format!("{sign}{mant}×10{neg}{sup}");
    }
    let point = exp + 1; // digits before the decimal point
    let (int, frac) = if point <= 0 {
        (
            "0".to_string(),
            format!("{}{digits}", "0".repeat(point.unsigned_abs() as usize)),
        )
    } else if point as usize >= digits.len() {
        (
            format!("{digits}{}", "0".repeat(point as usize - digits.len())),
            String::new(),
        )
    } else {
        (
            digits[..point as usize].to_string(),
            digits[point as usize..].to_string(),
        )
    };
    let int = group_thousands(&int);
    if frac.is_empty() {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    }
}

fn int_f(n: usize) -> String {
    num_f(n as f64)
}

/// `kind.display`: how a primitive schema value is shown.
fn display(v: &Value) -> String {
    match v {
        Value::String(s) => quote(s),
        Value::Nil | Value::NoValue => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::List(_) | Value::Map(_) => "value".into(),
        v => match as_f64(v) {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e21 => format!("{f:.0}"),
            Some(f) => ferroflux_gotemplate::gofmt::format_float_shortest(f),
            None => "value".into(),
        },
    }
}

fn json_eq(a: &Value, b: &Value) -> bool {
    match (as_f64(a), as_f64(b)) {
        (Some(x), Some(y)) => x == y,
        _ => match (a, b) {
            (Value::List(x), Value::List(y)) => {
                x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| json_eq(p, q))
            }
            (Value::Map(_), Value::Map(_)) => {
                let (x, y) = (
                    a.as_map().unwrap_or_default(),
                    b.as_map().unwrap_or_default(),
                );
                let (x, y) = (x.borrow(), y.borrow());
                x.len() == y.len()
                    && x.iter()
                        .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
            }
            (Value::Nil | Value::NoValue, Value::Nil | Value::NoValue) => true,
            _ => a == b,
        },
    }
}

/// A number as an exact decimal: `digits × 10^exp`.
fn decimal(f: f64) -> Option<(i128, i32)> {
    let s = format!("{f:e}");
    let (mant, exp) = s.split_once('e')?;
    let exp: i32 = exp.parse().ok()?;
    let (neg, mant) = match mant.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mant),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    let digits: i128 = format!("{int}{frac}").parse().ok()?;
    let e = exp - frac.len() as i32;
    Some((if neg { -digits } else { digits }, e))
}

/// `multipleOf` as big.Rat decides it: is `x / m` an integer (in decimal arithmetic)?
fn is_multiple(x: f64, m: f64) -> bool {
    let exact = || -> Option<bool> {
        let (a, ea) = decimal(x)?;
        let (b, eb) = decimal(m)?;
        if b == 0 {
            return None;
        }
        let pow = |n: i32| 10i128.checked_pow(u32::try_from(n).ok()?);
        if ea >= eb {
            Some(a.checked_mul(pow(ea - eb)?)? % b == 0)
        } else {
            Some(a % b.checked_mul(pow(eb - ea)?)? == 0)
        }
    };
    exact().unwrap_or_else(|| (x / m).fract() == 0.0)
}

/// The draft a schema document follows, from its `$schema`.
fn draft_of(root: &Value) -> u32 {
    let Some(m) = root.as_map() else {
        return 2020;
    };
    let s = match m.borrow().get("$schema") {
        Some(Value::String(s)) => s.to_string(),
        _ => return 2020,
    };
    if s.contains("draft-04") {
        4
    } else if s.contains("draft-06") {
        6
    } else if s.contains("draft-07") {
        7
    } else if s.contains("2019-09") {
        2019
    } else {
        2020
    }
}

fn resolve(root: &Value, r: &str) -> Option<Value> {
    let path = r.strip_prefix('#')?;
    let mut cur = root.clone();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        let part = part.replace("~1", "/").replace("~0", "~");
        let next = match &cur {
            Value::List(l) => part.parse::<usize>().ok().and_then(|i| l.get(i).cloned())?,
            _ => cur.as_map()?.borrow().get(&part).cloned()?,
        };
        cur = next;
    }
    Some(cur)
}

/// Errors of one schema as it reports them: none, the one, or a group.
fn finish(loc: &str, mut errs: Vec<E>, ev: Evaluated) -> Result<Evaluated, E> {
    match errs.len() {
        0 => Ok(ev),
        1 => Err(errs.remove(0)),
        _ => Err(E {
            kind: Kind::Group,
            ..E::with(loc, "validation failed", errs)
        }),
    }
}

/// The causes an error stands for when it is wrapped (a group gives its members).
fn causes_of(e: E) -> Vec<E> {
    if e.kind == Kind::Group {
        e.causes
    } else {
        vec![e]
    }
}

struct Validator<'a> {
    root: &'a Value,
    draft: u32,
}

type Map = std::collections::BTreeMap<String, Value>;

impl Validator<'_> {
    fn validate(&self, schema: &Value, v: &Value, loc: &str, depth: usize) -> Result<Evaluated, E> {
        let s: Map = match schema {
            Value::Bool(false) => return Err(E::new(loc, "false schema")),
            Value::Map(m) => m.borrow().clone(),
            _ => return Ok(Evaluated::default()),
        };
        if depth > 128 {
            return Ok(Evaluated::default());
        }
        let get = |k: &str| s.get(k);
        // with drafts before 2019-09 `$ref` replaces every sibling keyword
        if self.draft < 2019
            && let Some(Value::String(r)) = get("$ref")
        {
            return self
                .validate_ref(r, v, loc, depth)
                .map(|e| e.unwrap_or_default());
        }
        // type
        if let Some(t) = get("type") {
            let types: Vec<&str> = match t {
                Value::String(x) => vec![x.as_ref()],
                Value::List(l) => l.iter().filter_map(|x| x.as_str()).collect(),
                _ => vec![],
            };
            if !types.is_empty() && !types.iter().any(|t| is_type(v, t)) {
                let want: Vec<&str> = TYPE_ORDER
                    .iter()
                    .copied()
                    .filter(|t| types.contains(t))
                    .collect();
                return Err(E::new(
                    loc,
                    format!("got {}, want {}", type_of(v), want.join(" or ")),
                ));
            }
        }
        if self.draft >= 6
            && let Some(c) = get("const")
            && !json_eq(c, v)
        {
            return Err(E::new(
                loc,
                match c {
                    Value::List(_) | Value::Map(_) => "'const' failed".to_string(),
                    c => format!("value must be {}", display(c)),
                },
            ));
        }
        if let Some(Value::List(options)) = get("enum")
            && !options.iter().any(|o| json_eq(o, v))
        {
            let primitive = !options
                .iter()
                .any(|o| matches!(o, Value::List(_) | Value::Map(_)));
            let msg = if !primitive {
                "'enum' failed".to_string()
            } else if options.len() == 1 {
                format!("value must be {}", display(&options[0]))
            } else {
                let opts: Vec<String> = options.iter().map(display).collect();
                format!("value must be one of {}", opts.join(", "))
            };
            return Err(E::new(loc, msg));
        }
        // format is an assertion before draft 2019-09 only
        if self.draft < 2019
            && let Some(Value::String(f)) = get("format")
            && let Value::String(st) = v
            && let Some(Err(why)) = schema_format::check(f, st)
        {
            return Err(E::new(
                loc,
                format!("{} is not valid {f}: {why}", display(v)),
            ));
        }
        let mut errs = Vec::new();
        let mut ev = Evaluated::default();
        if let Some(Value::String(r)) = get("$ref") {
            match self.validate_ref(r, v, loc, depth) {
                Ok(e) => ev.merge(e.unwrap_or_default()),
                Err(e) => errs.push(e),
            }
        }
        match v {
            Value::Map(m) => {
                let m = m.borrow().clone();
                self.object(&s, &m, loc, depth, &mut errs, &mut ev);
            }
            Value::List(items) => self.array(&s, items, loc, depth, &mut errs, &mut ev),
            Value::String(st) => string(&s, st, loc, &mut errs),
            _ => {
                if let Some(x) = as_f64(v) {
                    self.number(&s, x, loc, &mut errs);
                }
            }
        }
        self.conditions(&s, v, loc, depth, &mut errs, &mut ev);
        if self.draft >= 2019 {
            self.unevaluated(&s, v, loc, depth, &mut errs, &mut ev);
        }
        finish(loc, errs, ev)
    }

    /// `$ref` (local pointers; remote documents are not fetched and pass).
    fn validate_ref(
        &self,
        r: &str,
        v: &Value,
        loc: &str,
        depth: usize,
    ) -> Result<Option<Evaluated>, E> {
        let Some(target) = resolve(self.root, r) else {
            return Ok(None);
        };
        match self.validate(&target, v, loc, depth + 1) {
            Ok(e) => Ok(Some(e)),
            Err(e) => Err(E {
                kind: Kind::Ref,
                ..E::with(loc, "validation failed", causes_of(e))
            }),
        }
    }

    /// Validate `v` (at `loc`) against an in-place subschema.
    fn sub(&self, schema: &Value, v: &Value, loc: &str, depth: usize) -> Result<Evaluated, E> {
        self.validate(schema, v, loc, depth + 1)
    }

    fn object(
        &self,
        s: &Map,
        m: &Map,
        loc: &str,
        depth: usize,
        errs: &mut Vec<E>,
        ev: &mut Evaluated,
    ) {
        let here = Value::map(m.clone());
        let n = m.len();
        if let Some(l) = s.get("minProperties").and_then(as_usize)
            && n < l
        {
            errs.push(E::new(
                loc,
                format!("minProperties: got {}, want {}", int_f(n), int_f(l)),
            ));
        }
        if let Some(l) = s.get("maxProperties").and_then(as_usize)
            && n > l
        {
            errs.push(E::new(
                loc,
                format!("maxProperties: got {}, want {}", int_f(n), int_f(l)),
            ));
        }
        let missing = |names: &Value| -> Vec<String> {
            match names {
                Value::List(l) => l
                    .iter()
                    .filter_map(|r| r.as_str())
                    .filter(|r| !m.contains_key(*r))
                    .map(quote)
                    .collect(),
                _ => Vec::new(),
            }
        };
        if let Some(req) = s.get("required") {
            let miss = missing(req);
            match miss.len() {
                0 => {}
                1 => errs.push(E::new(loc, format!("missing property {}", miss[0]))),
                _ => errs.push(E::new(
                    loc,
                    format!("missing properties {}", miss.join(", ")),
                )),
            }
        }
        if let Some(Value::Map(deps)) = s.get("dependencies") {
            for (prop, dep) in deps.borrow().iter() {
                if !m.contains_key(prop) {
                    continue;
                }
                match dep {
                    Value::List(_) => {
                        let miss = missing(dep);
                        if !miss.is_empty() {
                            errs.push(E::new(
                                loc,
                                format!(
                                    "properties {} required, if {} exists",
                                    miss.join(", "),
                                    quote(prop)
                                ),
                            ));
                        }
                    }
                    sch => match self.sub(sch, &here, loc, depth) {
                        Ok(e) => ev.merge(e),
                        Err(e) => errs.push(e),
                    },
                }
            }
        }
        let props = s.get("properties").and_then(Value::as_map);
        let props = props.map(|p| p.borrow().clone()).unwrap_or_default();
        let patterns: Vec<(regex::Regex, Value)> = s
            .get("patternProperties")
            .and_then(Value::as_map)
            .map(|p| {
                p.borrow()
                    .iter()
                    .filter_map(|(k, v)| regex::Regex::new(k).ok().map(|r| (r, v.clone())))
                    .collect()
            })
            .unwrap_or_default();
        let additional = s.get("additionalProperties");
        let mut extra = Vec::new();
        for (k, val) in m {
            let l = format!("{loc}/{}", esc_ptr(k));
            let mut evaluated = false;
            if let Some(sub) = props.get(k) {
                evaluated = true;
                if let Err(e) = self.validate(sub, val, &l, depth + 1) {
                    errs.push(e);
                }
            }
            for (re, sub) in &patterns {
                if re.is_match(k) {
                    evaluated = true;
                    if let Err(e) = self.validate(sub, val, &l, depth + 1) {
                        errs.push(e);
                    }
                }
            }
            if !evaluated && let Some(ap) = additional {
                evaluated = true;
                match ap {
                    Value::Bool(false) => extra.push(quote(k)),
                    Value::Bool(true) => {}
                    sub => {
                        if let Err(e) = self.validate(sub, val, &l, depth + 1) {
                            errs.push(e);
                        }
                    }
                }
            }
            if evaluated {
                ev.props.insert(k.clone());
            }
        }
        if !extra.is_empty() {
            errs.push(E::new(
                loc,
                format!("additional properties {} not allowed", extra.join(", ")),
            ));
        }
        if self.draft == 4 {
            return;
        }
        if let Some(names) = s.get("propertyNames") {
            for k in m.keys() {
                // validated as a document of its own: locations start afresh
                if let Err(e) = self.validate(names, &Value::str(k.as_str()), "", depth + 1) {
                    errs.push(E::with(
                        "",
                        format!("invalid propertyName {}", quote(k)),
                        causes_of(e),
                    ));
                }
            }
        }
        if self.draft < 2019 {
            return;
        }
        if let Some(Value::Map(deps)) = s.get("dependentSchemas") {
            for (prop, sch) in deps.borrow().iter() {
                if m.contains_key(prop) {
                    match self.sub(sch, &here, loc, depth) {
                        Ok(e) => ev.merge(e),
                        Err(e) => errs.push(e),
                    }
                }
            }
        }
        if let Some(Value::Map(deps)) = s.get("dependentRequired") {
            for (prop, req) in deps.borrow().iter() {
                if m.contains_key(prop) {
                    let miss = missing(req);
                    if !miss.is_empty() {
                        errs.push(E::new(
                            loc,
                            format!(
                                "properties {} required, if {} exists",
                                miss.join(", "),
                                quote(prop)
                            ),
                        ));
                    }
                }
            }
        }
    }

    fn array(
        &self,
        s: &Map,
        items: &[Value],
        loc: &str,
        depth: usize,
        errs: &mut Vec<E>,
        ev: &mut Evaluated,
    ) {
        let n = items.len();
        if let Some(l) = s.get("minItems").and_then(as_usize)
            && n < l
        {
            errs.push(E::new(
                loc,
                format!("minItems: got {}, want {}", int_f(n), int_f(l)),
            ));
        }
        if let Some(l) = s.get("maxItems").and_then(as_usize)
            && n > l
        {
            errs.push(E::new(
                loc,
                format!("maxItems: got {}, want {}", int_f(n), int_f(l)),
            ));
        }
        if matches!(s.get("uniqueItems"), Some(Value::Bool(true))) {
            'outer: for i in 0..n {
                for j in i + 1..n {
                    if json_eq(&items[i], &items[j]) {
                        errs.push(E::new(loc, format!("items at {i} and {j} are equal")));
                        break 'outer;
                    }
                }
            }
        }
        // the validator names items after the first evaluated ones by their offset in the
        // rest of the array (`/0` for the item after one prefix item), and so do we
        let check = |sch: &Value, i: usize, shown: usize, errs: &mut Vec<E>| {
            let l = format!("{loc}/{shown}");
            if let Err(e) = self.validate(sch, &items[i], &l, depth + 1) {
                errs.push(e);
            }
        };
        if self.draft < 2020 {
            let mut evaluated = 0;
            match s.get("items") {
                Some(Value::List(list)) => {
                    evaluated = n.min(list.len());
                    for (i, sch) in list.iter().enumerate().take(evaluated) {
                        check(sch, i, i, errs);
                    }
                    match s.get("additionalItems") {
                        Some(Value::Bool(false)) if evaluated != n => errs.push(E::new(
                            loc,
                            format!("last {} additionalItem(s) not allowed", n - evaluated),
                        )),
                        Some(sch @ Value::Map(_)) => {
                            for i in evaluated..n {
                                check(sch, i, i - evaluated, errs);
                            }
                            evaluated = n;
                        }
                        _ => {}
                    }
                }
                Some(sch) => {
                    for i in 0..n {
                        check(sch, i, i, errs);
                    }
                    evaluated = n;
                }
                None => {}
            }
            ev.items.extend(0..evaluated);
        } else {
            let prefix = match s.get("prefixItems") {
                Some(Value::List(list)) => list.as_ref().clone(),
                _ => Vec::new(),
            };
            let evaluated = prefix.len().min(n);
            for (i, sch) in prefix.iter().enumerate().take(evaluated) {
                check(sch, i, i, errs);
            }
            ev.items.extend(0..evaluated);
            if let Some(sch) = s.get("items") {
                for i in evaluated..n {
                    check(sch, i, i - evaluated, errs);
                }
                ev.items.extend(evaluated..n);
            }
        }
        if self.draft >= 6
            && let Some(contains) = s.get("contains")
        {
            let mut failures = Vec::new();
            let mut matched = Vec::new();
            for (i, it) in items.iter().enumerate() {
                match self.validate(contains, it, &format!("{loc}/{i}"), depth + 1) {
                    Ok(_) => matched.push(i),
                    Err(e) => failures.push(e),
                }
            }
            if self.draft >= 2020 {
                ev.items.extend(matched.iter().copied());
            }
            let at = |m: &[usize]| {
                m.iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let (min, max) = if self.draft >= 2019 {
                (
                    s.get("minContains").and_then(as_usize),
                    s.get("maxContains").and_then(as_usize),
                )
            } else {
                (None, None)
            };
            match min {
                Some(min) if matched.len() < min => {
                    let msg = if matched.is_empty() {
                        format!(
                            "min {} items required to match contains schema, but none matched",
                            int_f(min)
                        )
                    } else {
                        format!(
                            "min {} items required to match contains schema, but matched {} items at {}",
                            int_f(min),
                            int_f(matched.len()),
                            at(&matched)
                        )
                    };
                    errs.push(E::with(loc, msg, failures));
                }
                Some(_) => {}
                None if matched.is_empty() => {
                    errs.push(E::with(loc, "no items match contains schema", failures))
                }
                None => {}
            }
            if let Some(max) = max
                && matched.len() > max
            {
                errs.push(E::new(
                    loc,
                    format!(
                        "max {} items required to match contains schema, but matched {} items at {}",
                        int_f(max),
                        int_f(matched.len()),
                        at(&matched)
                    ),
                ));
            }
        }
    }

    fn number(&self, s: &Map, x: f64, loc: &str, errs: &mut Vec<E>) {
        let lim = |k: &str| s.get(k).and_then(as_f64);
        let (mut min, mut max) = (lim("minimum"), lim("maximum"));
        let (mut xmin, mut xmax) = (lim("exclusiveMinimum"), lim("exclusiveMaximum"));
        if self.draft == 4 {
            // draft-04: exclusiveMinimum/Maximum are booleans on minimum/maximum
            xmin = None;
            xmax = None;
            if matches!(s.get("exclusiveMinimum"), Some(Value::Bool(true))) {
                xmin = min.take();
            }
            if matches!(s.get("exclusiveMaximum"), Some(Value::Bool(true))) {
                xmax = max.take();
            }
        }
        let mut fail = |kw: &str, want: f64| {
            errs.push(E::new(
                loc,
                format!("{kw}: got {}, want {}", num_f(x), num_f(want)),
            ));
        };
        if let Some(l) = min
            && x < l
        {
            fail("minimum", l);
        }
        if let Some(l) = max
            && x > l
        {
            fail("maximum", l);
        }
        if let Some(l) = xmin
            && x <= l
        {
            fail("exclusiveMinimum", l);
        }
        if let Some(l) = xmax
            && x >= l
        {
            fail("exclusiveMaximum", l);
        }
        if let Some(m) = lim("multipleOf")
            && m != 0.0
            && !is_multiple(x, m)
        {
            fail("multipleOf", m);
        }
    }

    fn conditions(
        &self,
        s: &Map,
        v: &Value,
        loc: &str,
        depth: usize,
        errs: &mut Vec<E>,
        ev: &mut Evaluated,
    ) {
        if let Some(not) = s.get("not")
            && self.sub(not, v, loc, depth).is_ok()
        {
            errs.push(E::new(loc, "'not' failed"));
        }
        if let Some(Value::List(all)) = s.get("allOf") {
            let mut failures = Vec::new();
            for sch in all.iter() {
                match self.sub(sch, v, loc, depth) {
                    Ok(e) => ev.merge(e),
                    Err(e) => failures.push(e),
                }
            }
            if !failures.is_empty() {
                errs.push(E::with(loc, "'allOf' failed", failures));
            }
        }
        if let Some(Value::List(any)) = s.get("anyOf") {
            let mut failures = Vec::new();
            let mut matched = false;
            for sch in any.iter() {
                match self.sub(sch, v, loc, depth) {
                    Ok(e) => {
                        matched = true;
                        ev.merge(e);
                    }
                    Err(e) => failures.push(e),
                }
            }
            if !matched {
                errs.push(E::with(loc, "'anyOf' failed", failures));
            }
        }
        if let Some(Value::List(one)) = s.get("oneOf") {
            let mut failures = Vec::new();
            let mut matched: Option<usize> = None;
            for (i, sch) in one.iter().enumerate() {
                match self.sub(sch, v, loc, depth) {
                    Ok(e) => match matched {
                        None => {
                            matched = Some(i);
                            ev.merge(e);
                        }
                        Some(first) => {
                            errs.push(E::new(
                                loc,
                                format!("'oneOf' failed, subschemas {first}, {i} matched"),
                            ));
                            break;
                        }
                    },
                    Err(e) => {
                        if matched.is_none() {
                            failures.push(e);
                        }
                    }
                }
            }
            if matched.is_none() {
                errs.push(E::with(loc, "'oneOf' failed, none matched", failures));
            }
        }
        if self.draft >= 7
            && let Some(cond) = s.get("if")
        {
            let branch = match self.sub(cond, v, loc, depth) {
                Ok(e) => {
                    ev.merge(e);
                    s.get("then")
                }
                Err(_) => s.get("else"),
            };
            if let Some(b) = branch {
                match self.sub(b, v, loc, depth) {
                    Ok(e) => ev.merge(e),
                    Err(e) => errs.push(e),
                }
            }
        }
    }

    /// `unevaluatedProperties` / `unevaluatedItems` (2019-09 and later).
    fn unevaluated(
        &self,
        s: &Map,
        v: &Value,
        loc: &str,
        depth: usize,
        errs: &mut Vec<E>,
        ev: &mut Evaluated,
    ) {
        if let (Some(sch), Value::Map(m)) = (s.get("unevaluatedProperties"), v) {
            let m = m.borrow().clone();
            for (k, val) in &m {
                if ev.props.contains(k) {
                    continue;
                }
                let l = format!("{loc}/{}", esc_ptr(k));
                if let Err(e) = self.validate(sch, val, &l, depth + 1) {
                    errs.push(e);
                }
            }
            ev.props.extend(m.keys().cloned());
        }
        if let (Some(sch), Value::List(items)) = (s.get("unevaluatedItems"), v) {
            for (i, it) in items.iter().enumerate() {
                if ev.items.contains(&i) {
                    continue;
                }
                if let Err(e) = self.validate(sch, it, &format!("{loc}/{i}"), depth + 1) {
                    errs.push(e);
                }
            }
            ev.items.extend(0..items.len());
        }
    }
}

fn string(s: &Map, st: &str, loc: &str, errs: &mut Vec<E>) {
    let n = st.chars().count();
    if let Some(l) = s.get("minLength").and_then(as_usize)
        && n < l
    {
        errs.push(E::new(
            loc,
            format!("minLength: got {}, want {}", int_f(n), int_f(l)),
        ));
    }
    if let Some(l) = s.get("maxLength").and_then(as_usize)
        && n > l
    {
        errs.push(E::new(
            loc,
            format!("maxLength: got {}, want {}", int_f(n), int_f(l)),
        ));
    }
    if let Some(Value::String(p)) = s.get("pattern")
        && let Ok(re) = regex::Regex::new(p)
        && !re.is_match(st)
    {
        errs.push(E::new(
            loc,
            format!("{} does not match pattern {}", quote(st), quote(p)),
        ));
    }
}

/// Validate `values` against the chart's schema and its subcharts' (Helm's
/// `ValidateAgainstSchema`); `Some(text)` lists the failures per chart.
pub fn validate(c: &Chart, values: &Value) -> Result<Option<String>, String> {
    let mut sb = String::new();
    if let Some(schema) = &c.schema {
        let text = String::from_utf8_lossy(schema);
        let root = yaml::parse_json(&text)?;
        let v = Validator {
            root: &root,
            draft: draft_of(&root),
        };
        if let Err(e) = v.validate(&root, values, "", 0) {
            sb.push_str(&format!("{}:\n", c.name));
            render(&causes_of(e), 0, &mut sb);
        }
    }
    for sub in &c.subcharts {
        let raw = values
            .as_map()
            .and_then(|m| m.borrow().get(&sub.name).cloned());
        match raw {
            None | Some(Value::Nil) => continue,
            Some(v @ Value::Map(_)) => {
                if let Some(e) = validate(sub, &v)? {
                    sb.push_str(&e);
                }
            }
            Some(other) => {
                sb.push_str(&format!(
                    "{}:\ninvalid type for values: expected object (map), got {}\n",
                    sub.name,
                    other.type_name()
                ));
            }
        }
    }
    Ok(if sb.is_empty() { None } else { Some(sb) })
}
