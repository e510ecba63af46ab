//! A subset of CEL for `x-kubernetes-validations`: literals, `self`/`oldSelf`, field access,
//! indexing, `! - * / % + < <= > >= == != in && || ?:`, `has()`, `size()`, string methods
//! (`startsWith`, `endsWith`, `contains`, `matches`), and the `all`/`exists`/`exists_one`
//! macros. Anything else fails to parse or evaluate, and the rule is then not enforced.

use serde_json::{Value, json};
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64, bool),
    Str(String),
    Ident(String),
    Op(&'static str),
}

fn lex(src: &str) -> Result<Vec<Tok>, String> {
    let cs: Vec<char> = src.chars().collect();
    let mut i = 0;
    let mut out = vec![];
    const OPS: &[&str] = &[
        "==", "!=", "<=", ">=", "&&", "||", "<", ">", "!", "+", "-", "*", "/", "%", "(", ")", "[",
        "]", ".", ",", "?", ":", "{", "}",
    ];
    while i < cs.len() {
        let c = cs[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() {
            let start = i;
            while i < cs.len() && (cs[i].is_ascii_digit() || cs[i] == '.') {
                i += 1;
            }
            let s: String = cs[start..i].iter().collect();
            if i < cs.len() && (cs[i] == 'u' || cs[i] == 'U') {
                i += 1;
            }
            let f: f64 = s.parse().map_err(|_| format!("bad number {s}"))?;
            out.push(Tok::Num(f, !s.contains('.')));
        } else if c == '\'' || c == '"' {
            let q = c;
            i += 1;
            let mut s = String::new();
            while i < cs.len() && cs[i] != q {
                if cs[i] == '\\' && i + 1 < cs.len() {
                    i += 1;
                    s.push(match cs[i] {
                        'n' => '\n',
                        't' => '\t',
                        other => other,
                    });
                } else {
                    s.push(cs[i]);
                }
                i += 1;
            }
            if i >= cs.len() {
                return Err("unterminated string".into());
            }
            i += 1;
            out.push(Tok::Str(s));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < cs.len() && (cs[i].is_alphanumeric() || cs[i] == '_') {
                i += 1;
            }
            out.push(Tok::Ident(cs[start..i].iter().collect()));
        } else {
            let rest: String = cs[i..cs.len().min(i + 2)].iter().collect();
            match OPS.iter().find(|o| rest.starts_with(**o)) {
                Some(o) => {
                    out.push(Tok::Op(o));
                    i += o.len();
                }
                None => return Err(format!("unexpected {c}")),
            }
        }
    }
    Ok(out)
}

#[derive(Debug, Clone)]
enum Expr {
    Lit(Value),
    Var(String),
    Member(Box<Expr>, String),
    Index(Box<Expr>, Box<Expr>),
    Call(Option<Box<Expr>>, String, Vec<Expr>),
    Unary(&'static str, Box<Expr>),
    Binary(&'static str, Box<Expr>, Box<Expr>),
    Cond(Box<Expr>, Box<Expr>, Box<Expr>),
    List(Vec<Expr>),
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek_op(&self, op: &str) -> bool {
        matches!(self.toks.get(self.pos), Some(Tok::Op(o)) if *o == op)
    }
    fn eat(&mut self, op: &str) -> bool {
        if self.peek_op(op) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, op: &str) -> Result<(), String> {
        if self.eat(op) {
            Ok(())
        } else {
            Err(format!("expected {op}"))
        }
    }
    fn expr(&mut self) -> Result<Expr, String> {
        let c = self.or()?;
        if self.eat("?") {
            let a = self.expr()?;
            self.expect(":")?;
            let b = self.expr()?;
            return Ok(Expr::Cond(Box::new(c), Box::new(a), Box::new(b)));
        }
        Ok(c)
    }
    fn or(&mut self) -> Result<Expr, String> {
        let mut l = self.and()?;
        while self.eat("||") {
            l = Expr::Binary("||", Box::new(l), Box::new(self.and()?));
        }
        Ok(l)
    }
    fn and(&mut self) -> Result<Expr, String> {
        let mut l = self.rel()?;
        while self.eat("&&") {
            l = Expr::Binary("&&", Box::new(l), Box::new(self.rel()?));
        }
        Ok(l)
    }
    fn rel(&mut self) -> Result<Expr, String> {
        let mut l = self.add()?;
        loop {
            let op = ["==", "!=", "<=", ">=", "<", ">"]
                .into_iter()
                .find(|o| self.peek_op(o));
            if let Some(op) = op {
                self.pos += 1;
                l = Expr::Binary(op, Box::new(l), Box::new(self.add()?));
            } else if matches!(self.toks.get(self.pos), Some(Tok::Ident(i)) if i == "in") {
                self.pos += 1;
                l = Expr::Binary("in", Box::new(l), Box::new(self.add()?));
            } else {
                return Ok(l);
            }
        }
    }
    fn add(&mut self) -> Result<Expr, String> {
        let mut l = self.mul()?;
        loop {
            let op = ["+", "-"].into_iter().find(|o| self.peek_op(o));
            let Some(op) = op else { return Ok(l) };
            self.pos += 1;
            l = Expr::Binary(op, Box::new(l), Box::new(self.mul()?));
        }
    }
    fn mul(&mut self) -> Result<Expr, String> {
        let mut l = self.unary()?;
        loop {
            let op = ["*", "/", "%"].into_iter().find(|o| self.peek_op(o));
            let Some(op) = op else { return Ok(l) };
            self.pos += 1;
            l = Expr::Binary(op, Box::new(l), Box::new(self.unary()?));
        }
    }
    fn unary(&mut self) -> Result<Expr, String> {
        if self.eat("!") {
            return Ok(Expr::Unary("!", Box::new(self.unary()?)));
        }
        if self.eat("-") {
            return Ok(Expr::Unary("-", Box::new(self.unary()?)));
        }
        self.member()
    }
    fn args(&mut self) -> Result<Vec<Expr>, String> {
        let mut args = vec![];
        if self.eat(")") {
            return Ok(args);
        }
        loop {
            args.push(self.expr()?);
            if self.eat(")") {
                return Ok(args);
            }
            self.expect(",")?;
        }
    }
    fn member(&mut self) -> Result<Expr, String> {
        let mut e = self.primary()?;
        loop {
            if self.eat(".") {
                let Some(Tok::Ident(name)) = self.toks.get(self.pos).cloned() else {
                    return Err("expected field".into());
                };
                self.pos += 1;
                if self.eat("(") {
                    e = Expr::Call(Some(Box::new(e)), name, self.args()?);
                } else {
                    e = Expr::Member(Box::new(e), name);
                }
            } else if self.eat("[") {
                let i = self.expr()?;
                self.expect("]")?;
                e = Expr::Index(Box::new(e), Box::new(i));
            } else {
                return Ok(e);
            }
        }
    }
    fn primary(&mut self) -> Result<Expr, String> {
        let t = self.toks.get(self.pos).cloned().ok_or("unexpected end")?;
        self.pos += 1;
        match t {
            Tok::Num(n, true) => Ok(Expr::Lit(json!(n as i64))),
            Tok::Num(n, false) => Ok(Expr::Lit(json!(n))),
            Tok::Str(s) => Ok(Expr::Lit(Value::String(s))),
            Tok::Ident(i) => match i.as_str() {
                "true" => Ok(Expr::Lit(json!(true))),
                "false" => Ok(Expr::Lit(json!(false))),
                "null" => Ok(Expr::Lit(Value::Null)),
                _ if self.eat("(") => Ok(Expr::Call(None, i, self.args()?)),
                _ => Ok(Expr::Var(i)),
            },
            Tok::Op("(") => {
                let e = self.expr()?;
                self.expect(")")?;
                Ok(e)
            }
            Tok::Op("[") => {
                let mut items = vec![];
                if !self.eat("]") {
                    loop {
                        items.push(self.expr()?);
                        if self.eat("]") {
                            break;
                        }
                        self.expect(",")?;
                    }
                }
                Ok(Expr::List(items))
            }
            other => Err(format!("unexpected {other:?}")),
        }
    }
}

fn parse(src: &str) -> Result<Expr, String> {
    let mut p = Parser {
        toks: lex(src)?,
        pos: 0,
    };
    let e = p.expr()?;
    if p.pos != p.toks.len() {
        return Err("trailing input".into());
    }
    Ok(e)
}

type Env = HashMap<String, Value>;

fn truth(v: &Value) -> Result<bool, String> {
    v.as_bool().ok_or_else(|| format!("not a bool: {v}"))
}

fn num(v: &Value) -> Result<f64, String> {
    v.as_f64().ok_or_else(|| format!("not a number: {v}"))
}

fn size(v: &Value) -> Result<Value, String> {
    Ok(json!(match v {
        Value::String(s) => s.chars().count(),
        Value::Array(a) => a.len(),
        Value::Object(o) => o.len(),
        _ => return Err("size of scalar".into()),
    }))
}

fn eval(e: &Expr, env: &Env) -> Result<Value, String> {
    match e {
        Expr::Lit(v) => Ok(v.clone()),
        Expr::Var(n) => env.get(n).cloned().ok_or_else(|| format!("undeclared {n}")),
        Expr::Member(o, f) => {
            let o = eval(o, env)?;
            o.get(f).cloned().ok_or_else(|| format!("no such key: {f}"))
        }
        Expr::Index(o, i) => {
            let o = eval(o, env)?;
            let i = eval(i, env)?;
            match (&o, &i) {
                (Value::Array(a), Value::Number(n)) => a
                    .get(n.as_u64().unwrap_or(u64::MAX) as usize)
                    .cloned()
                    .ok_or_else(|| "index out of range".into()),
                (Value::Object(m), Value::String(k)) => {
                    m.get(k).cloned().ok_or_else(|| format!("no such key: {k}"))
                }
                _ => Err("bad index".into()),
            }
        }
        Expr::List(items) => Ok(Value::Array(
            items
                .iter()
                .map(|i| eval(i, env))
                .collect::<Result<_, _>>()?,
        )),
        Expr::Cond(c, a, b) => {
            if truth(&eval(c, env)?)? {
                eval(a, env)
            } else {
                eval(b, env)
            }
        }
        Expr::Unary("!", x) => Ok(json!(!truth(&eval(x, env)?)?)),
        Expr::Unary(_, x) => Ok(json!(-num(&eval(x, env)?)?)),
        Expr::Binary("&&", a, b) => {
            // CEL's commutative short-circuit: a false side wins over an error on the other
            let l = eval(a, env).and_then(|v| truth(&v));
            if l == Ok(false) {
                return Ok(json!(false));
            }
            let r = eval(b, env).and_then(|v| truth(&v))?;
            Ok(json!(l? && r))
        }
        Expr::Binary("||", a, b) => {
            let l = eval(a, env).and_then(|v| truth(&v));
            if l == Ok(true) {
                return Ok(json!(true));
            }
            let r = eval(b, env).and_then(|v| truth(&v))?;
            Ok(json!(l? || r))
        }
        Expr::Binary(op, a, b) => {
            let (l, r) = (eval(a, env)?, eval(b, env)?);
            match *op {
                "==" => Ok(json!(eq(&l, &r))),
                "!=" => Ok(json!(!eq(&l, &r))),
                "in" => match &r {
                    Value::Array(a) => Ok(json!(a.iter().any(|x| eq(x, &l)))),
                    Value::Object(m) => Ok(json!(l.as_str().is_some_and(|k| m.contains_key(k)))),
                    _ => Err("in on scalar".into()),
                },
                "<" | "<=" | ">" | ">=" => {
                    let ord = match (&l, &r) {
                        (Value::String(x), Value::String(y)) => x.cmp(y),
                        _ => num(&l)?.partial_cmp(&num(&r)?).ok_or("nan")?,
                    };
                    Ok(json!(match *op {
                        "<" => ord.is_lt(),
                        "<=" => ord.is_le(),
                        ">" => ord.is_gt(),
                        _ => ord.is_ge(),
                    }))
                }
                "+" => match (&l, &r) {
                    (Value::String(x), Value::String(y)) => Ok(json!(format!("{x}{y}"))),
                    (Value::Array(x), Value::Array(y)) => {
                        Ok(Value::Array(x.iter().chain(y).cloned().collect()))
                    }
                    _ => arith(&l, &r, |x, y| x + y),
                },
                "-" => arith(&l, &r, |x, y| x - y),
                "*" => arith(&l, &r, |x, y| x * y),
                "/" => {
                    if num(&r)? == 0.0 {
                        return Err("division by zero".into());
                    }
                    arith(&l, &r, |x, y| {
                        if l.is_i64() && r.is_i64() {
                            (x / y).trunc()
                        } else {
                            x / y
                        }
                    })
                }
                "%" => arith(&l, &r, |x, y| x % y),
                _ => Err(format!("unsupported operator {op}")),
            }
        }
        Expr::Call(None, f, args) => match (f.as_str(), args.as_slice()) {
            ("has", [Expr::Member(o, field)]) => {
                let o = eval(o, env)?;
                Ok(json!(o.as_object().is_some_and(|m| m.contains_key(field))))
            }
            ("size", [x]) => size(&eval(x, env)?),
            ("int", [x]) => {
                let v = eval(x, env)?;
                match &v {
                    Value::String(s) => s
                        .parse::<i64>()
                        .map(|i| json!(i))
                        .map_err(|e| e.to_string()),
                    _ => Ok(json!(num(&v)? as i64)),
                }
            }
            ("string", [x]) => {
                let v = eval(x, env)?;
                Ok(json!(match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                }))
            }
            _ => Err(format!("unsupported function {f}")),
        },
        Expr::Call(Some(recv), m, args) => {
            // macros bind a variable
            if let ("all" | "exists" | "exists_one", [Expr::Var(var), pred]) =
                (m.as_str(), args.as_slice())
            {
                let r = eval(recv, env)?;
                let items: Vec<Value> = match r {
                    Value::Array(a) => a,
                    Value::Object(o) => o.keys().map(|k| json!(k)).collect(),
                    _ => return Err("macro on scalar".into()),
                };
                let mut hits = 0;
                for it in items {
                    let mut e2 = env.clone();
                    e2.insert(var.clone(), it);
                    if truth(&eval(pred, &e2)?)? {
                        hits += 1;
                    } else if m == "all" {
                        return Ok(json!(false));
                    }
                }
                return Ok(json!(match m.as_str() {
                    "all" => true,
                    "exists" => hits > 0,
                    _ => hits == 1,
                }));
            }
            let r = eval(recv, env)?;
            let a: Vec<Value> = args
                .iter()
                .map(|x| eval(x, env))
                .collect::<Result<_, _>>()?;
            let s = r.as_str();
            let arg = a.first().and_then(Value::as_str);
            match (m.as_str(), s, arg) {
                ("size", _, _) => size(&r),
                ("startsWith", Some(s), Some(p)) => Ok(json!(s.starts_with(p))),
                ("endsWith", Some(s), Some(p)) => Ok(json!(s.ends_with(p))),
                ("contains", Some(s), Some(p)) => Ok(json!(s.contains(p))),
                ("matches", Some(s), Some(p)) => {
                    let re = regex::Regex::new(p).map_err(|e| e.to_string())?;
                    Ok(json!(re.is_match(s)))
                }
                _ => Err(format!("unsupported method {m}")),
            }
        }
    }
}

fn eq(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn arith(l: &Value, r: &Value, f: impl Fn(f64, f64) -> f64) -> Result<Value, String> {
    let v = f(num(l)?, num(r)?);
    if l.is_i64() && r.is_i64() {
        Ok(json!(v as i64))
    } else {
        Ok(json!(v))
    }
}

/// Outcome of one rule.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    Pass,
    Fail,
    /// Could not be parsed or evaluated here; not enforced.
    Unsupported,
}

/// Evaluates a rule with `self` (and `oldSelf` on updates).
pub fn check(rule: &str, this: &Value, old: Option<&Value>) -> Outcome {
    let Ok(expr) = parse(rule) else {
        return Outcome::Unsupported;
    };
    let mut env = Env::new();
    env.insert("self".into(), this.clone());
    match old {
        Some(o) => {
            env.insert("oldSelf".into(), o.clone());
        }
        None if rule.contains("oldSelf") => return Outcome::Pass, // transition rules apply to updates only
        None => {}
    }
    match eval(&expr, &env) {
        Ok(Value::Bool(true)) => Outcome::Pass,
        Ok(Value::Bool(false)) => Outcome::Fail,
        _ => Outcome::Unsupported,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flux_rules() {
        let o = json!({"type": "generic", "secretRef": {"name": "x"}, "items": [1, 2, 3], "name": "RetryOnFailure"});
        assert_eq!(
            check(
                "self.type == 'generic-oidc' || has(self.secretRef)",
                &o,
                None
            ),
            Outcome::Pass
        );
        assert_eq!(
            check(
                "self.type != 'generic-oidc' || (has(self.oidcProviders) && size(self.oidcProviders) > 0)",
                &o,
                None
            ),
            Outcome::Pass
        );
        assert_eq!(check("!has(self.secretRef)", &o, None), Outcome::Fail);
        assert_eq!(
            check(
                "self.items.all(i, i > 0) && self.items.exists(i, i == 2)",
                &o,
                None
            ),
            Outcome::Pass
        );
        assert_eq!(
            check("self.items.size() == 3 && 2 in self.items", &o, None),
            Outcome::Pass
        );
        assert_eq!(
            check("self.name.startsWith('Retry') ? true : false", &o, None),
            Outcome::Pass
        );
        assert_eq!(check("self.x == oldSelf.x", &o, None), Outcome::Pass);
        assert_eq!(
            check(
                "self.type == oldSelf.type",
                &o,
                Some(&json!({"type": "other"}))
            ),
            Outcome::Fail
        );
        assert_eq!(check("self.quantity(1)", &o, None), Outcome::Unsupported);
        assert_eq!(
            check(
                "(1 + 2) * 3 == 9 && 7 / 2 == 3 && 'a' + 'b' == 'ab'",
                &o,
                None
            ),
            Outcome::Pass
        );
    }
}
