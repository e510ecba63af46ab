//! Post-build variable substitution (`spec.postBuild`), with the bash-like syntax Flux accepts:
//! `${var}`, `${var:=default}`, `${var:-default}`, `${var:pos:len}`, `${var/from/to}`,
//! `${var//from/to}`, `${var#glob}`, `${var%%glob}`, `${#var}`, `${var^^}`, `${var,}`, and
//! `$$` as an escaped `$`. The quirks of upstream's scanner are kept on purpose (for example
//! every `:`/`=` operator behaves like "default when empty"), so manifests render the same.

use std::collections::BTreeMap;

use serde_json::Value;

/// Label or annotation that turns substitution off for one object.
pub const SUBSTITUTE_KEY: &str = "kustomize.toolkit.fluxcd.io/substitute";

/// Why a substitution failed; messages follow upstream's wording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubstituteError {
    #[error("bad substitution")]
    BadSubstitution,
    #[error("missing closing brace")]
    MissingClosingBrace,
    #[error("unable to parse variable name")]
    VariableName,
    #[error("unable to parse substitution within function")]
    FuncSubstitution,
    #[error("unable to parse default function")]
    DefaultFunction,
    #[error("variable not set (strict mode): {0:?}")]
    NotSet(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Func(Func),
}

#[derive(Debug, Clone, PartialEq)]
struct Func {
    /// The variable name.
    param: String,
    /// The operator: "" for a plain `${x}`, ":=", "//", "#", ...
    op: String,
    /// One node per argument.
    args: Vec<Node>,
}

/// Where a text run inside a function stops.
#[derive(Clone, Copy)]
enum Until {
    Brace,
    ColonOrBrace,
    Slash,
}

impl Until {
    fn allows(self, c: char) -> bool {
        match self {
            Until::Brace => c != '}',
            Until::ColonOrBrace => c != ':' && c != '}',
            Until::Slash => c != '/',
        }
    }
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn at_open(&self) -> bool {
        self.peek() == Some('$') && self.peek_at(1) == Some('{')
    }

    /// The whole input: text with `$$` escapes and `${...}` functions.
    fn parse_all(&mut self) -> Result<Vec<Node>, SubstituteError> {
        let mut nodes = Vec::new();
        let mut text = String::new();
        while let Some(c) = self.peek() {
            if self.at_open() {
                if !text.is_empty() {
                    nodes.push(Node::Text(std::mem::take(&mut text)));
                }
                self.pos += 2;
                nodes.push(Node::Func(self.parse_func()?));
            } else if c == '$' && self.peek_at(1) == Some('$') {
                // `$$` stands for one `$` (so `$${x}` prints `${x}`).
                text.push('$');
                self.pos += 2;
            } else {
                text.push(c);
                self.pos += 1;
            }
        }
        if !text.is_empty() {
            nodes.push(Node::Text(text));
        }
        Ok(nodes)
    }

    fn ident(&mut self) -> String {
        let start = self.pos;
        while self.peek().is_some_and(is_ident_char) {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    /// Consumes characters while `ok(char, index_from_1)` holds.
    fn op(&mut self, ok: impl Fn(char, usize) -> bool) -> String {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if !ok(c, self.pos - start + 1) {
                break;
            }
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    fn closing(&mut self) -> Result<(), SubstituteError> {
        if self.peek() == Some('}') {
            self.pos += 1;
            Ok(())
        } else {
            Err(SubstituteError::BadSubstitution)
        }
    }

    /// After `${`.
    fn parse_func(&mut self) -> Result<Func, SubstituteError> {
        if self.peek() == Some('#') {
            let op = self.op(|c, i| c == '#' && i == 1);
            let param = self.ident();
            if op.is_empty() || param.is_empty() {
                return Err(SubstituteError::BadSubstitution);
            }
            self.closing()?;
            return Ok(Func {
                param,
                op,
                args: Vec::new(),
            });
        }
        let param = self.ident();
        if param.is_empty() {
            return Err(SubstituteError::VariableName);
        }
        match self.peek() {
            Some(':') => match self.peek_at(1) {
                Some('=' | '-' | '?' | '+') => self.parse_default(param),
                _ => self.parse_substr(param),
            },
            Some('=') => self.parse_default(param),
            Some(',' | '^') => {
                let op = self.op(|c, i| (c == ',' || c == '^') && i < 3);
                self.closing()?;
                Ok(Func {
                    param,
                    op,
                    args: Vec::new(),
                })
            }
            Some('/') => self.parse_replace(param),
            Some(mark @ ('#' | '%')) => {
                let op = self.op(|c, i| c == mark && i < 3);
                let arg = self.parse_param(Until::Brace, false)?;
                self.closing()?;
                Ok(Func {
                    param,
                    op,
                    args: vec![arg],
                })
            }
            Some('}') => {
                self.pos += 1;
                Ok(Func {
                    param,
                    op: String::new(),
                    args: Vec::new(),
                })
            }
            _ => Err(SubstituteError::MissingClosingBrace),
        }
    }

    /// One argument: a nested `${...}` or a run of accepted characters.
    fn parse_param(&mut self, accept: Until, escapes: bool) -> Result<Node, SubstituteError> {
        if self.at_open() {
            self.pos += 2;
            return Ok(Node::Func(self.parse_func()?));
        }
        let mut text = String::new();
        let mut first = true;
        while let Some(c) = self.peek() {
            if self.at_open() {
                break;
            }
            if escapes {
                let next = self.peek_at(1);
                let escaped = (c == '$' && next == Some('$'))
                    || (c == '\\' && matches!(next, Some('/' | '\\')));
                if escaped {
                    if let Some(n) = next {
                        text.push(n);
                    }
                    self.pos += 2;
                    first = false;
                    continue;
                }
            }
            if !accept.allows(c) {
                break;
            }
            text.push(c);
            self.pos += 1;
            first = false;
        }
        if first {
            return Err(SubstituteError::FuncSubstitution);
        }
        Ok(Node::Text(text))
    }

    fn parse_default(&mut self, param: String) -> Result<Func, SubstituteError> {
        let op = if self.peek() == Some('=') {
            self.op(|c, i| i == 1 && c == '=')
        } else {
            self.op(|c, i| (i == 1 && c == ':') || (i == 2 && matches!(c, '=' | '-' | '?' | '+')))
        };
        if op.is_empty() {
            return Err(SubstituteError::DefaultFunction);
        }
        let mut args = Vec::new();
        loop {
            if self.peek() == Some('}') {
                self.pos += 1;
                return Ok(Func { param, op, args });
            }
            args.push(self.parse_param(Until::Brace, false)?);
        }
    }

    fn parse_substr(&mut self, param: String) -> Result<Func, SubstituteError> {
        let op = self.op(|c, i| i == 1 && c == ':');
        if op.is_empty() {
            return Err(SubstituteError::BadSubstitution);
        }
        let mut args = vec![self.parse_param(Until::ColonOrBrace, false)?];
        match self.peek() {
            Some('}') => {
                self.pos += 1;
                return Ok(Func { param, op, args });
            }
            Some(':') => {
                while self.peek() == Some(':') {
                    self.pos += 1;
                }
            }
            _ => return Err(SubstituteError::BadSubstitution),
        }
        args.push(self.parse_param(Until::Brace, false)?);
        self.closing()?;
        Ok(Func { param, op, args })
    }

    fn parse_replace(&mut self, param: String) -> Result<Func, SubstituteError> {
        let op = self.op(|c, i| (i == 1 && c == '/') || (i == 2 && matches!(c, '/' | '#' | '%')));
        let mut args = vec![self.parse_param(Until::Slash, true)?];
        if self.peek() != Some('/') {
            return Err(SubstituteError::BadSubstitution);
        }
        while self.peek() == Some('/') {
            self.pos += 1;
        }
        if self.peek() == Some('}') {
            self.pos += 1;
            return Ok(Func { param, op, args });
        }
        args.push(self.parse_param(Until::Brace, true)?);
        self.closing()?;
        Ok(Func { param, op, args })
    }
}

fn is_default_op(op: &str) -> bool {
    matches!(op, "-" | "+" | "=" | "?" | ":-" | ":+" | ":=" | ":?")
}

/// Replaces every `${...}` in `input`; `lookup` answers a variable's value and whether it is
/// set (non-strict callers answer every name as set).
pub fn eval(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, SubstituteError> {
    let mut parser = Parser {
        chars: input.chars().collect(),
        pos: 0,
    };
    let nodes = parser.parse_all()?;
    let mut out = String::with_capacity(input.len());
    for node in &nodes {
        eval_node(node, lookup, &mut out)?;
    }
    Ok(out)
}

fn eval_node(
    node: &Node,
    lookup: &dyn Fn(&str) -> Option<String>,
    out: &mut String,
) -> Result<(), SubstituteError> {
    match node {
        Node::Text(t) => out.push_str(t),
        Node::Func(f) => {
            let mut args = Vec::with_capacity(f.args.len());
            for a in &f.args {
                let mut s = String::new();
                eval_node(a, lookup, &mut s)?;
                args.push(s);
            }
            let value = match lookup(&f.param) {
                Some(v) => v,
                None if is_default_op(&f.op) => String::new(),
                None => return Err(SubstituteError::NotSet(f.param.clone())),
            };
            out.push_str(&apply(&f.op, &value, &args));
        }
    }
    Ok(())
}

fn apply(op: &str, s: &str, args: &[String]) -> String {
    match op {
        "," => first_char_mapped(s, |c| c.to_lowercase().collect()),
        ",," => s.to_lowercase(),
        "^" => first_char_mapped(s, |c| c.to_uppercase().collect()),
        "^^" => s.to_uppercase(),
        "#" if args.is_empty() => s.len().to_string(),
        "#" => trim_prefix(s, &args[0], false),
        "##" => trim_prefix(s, &args[0], true),
        "%" => trim_suffix(s, &args[0], false),
        "%%" => trim_suffix(s, &args[0], true),
        ":" => substring(s, args),
        "/#" => match args {
            [from, to] if s.starts_with(from.as_str()) => s.replacen(from.as_str(), to, 1),
            _ => s.to_string(),
        },
        "/%" => match args {
            [from, to] if s.ends_with(from.as_str()) => {
                format!("{}{}", &s[..s.len() - from.len()], to)
            }
            _ => s.to_string(),
        },
        "/" => match args {
            [] => s.to_string(),
            [from] => s.replacen(from.as_str(), "", 1),
            [from, to, ..] => s.replacen(from.as_str(), to, 1),
        },
        "//" => match args {
            [] => s.to_string(),
            [from] => replace_all(s, from, ""),
            [from, to, ..] => replace_all(s, from, to),
        },
        // Plain `${x}` and every default-like operator: the value, or the arguments joined
        // when the value is empty.
        _ => {
            if s.is_empty() && !args.is_empty() {
                args.concat()
            } else {
                s.to_string()
            }
        }
    }
}

/// Go's strings.Replace with n = -1 (an empty `from` inserts `to` around every character).
fn replace_all(s: &str, from: &str, to: &str) -> String {
    if from.is_empty() {
        let mut out = String::from(to);
        for c in s.chars() {
            out.push(c);
            out.push_str(to);
        }
        return out;
    }
    s.replace(from, to)
}

fn first_char_mapped(s: &str, f: impl Fn(char) -> String) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => f(c) + chars.as_str(),
        None => String::new(),
    }
}

/// Go's strconv.Atoi.
fn atoi(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn substring(s: &str, args: &[String]) -> String {
    let bytes = s.as_bytes();
    let len = bytes.len() as i64;
    let Some(first) = args.first() else {
        return s.to_string();
    };
    let Some(mut pos) = atoi(first) else {
        return s.to_string();
    };
    if pos < 0 {
        pos = (len + pos).max(0);
    }
    let tail = |pos: i64| {
        if pos < len {
            String::from_utf8_lossy(&bytes[pos as usize..]).into_owned()
        } else {
            String::new()
        }
    };
    let Some(length) = args.get(1) else {
        return tail(pos);
    };
    let Some(length) = atoi(length) else {
        return s.to_string();
    };
    if pos + length >= len {
        return tail(pos);
    }
    if length < 0 {
        return String::new();
    }
    String::from_utf8_lossy(&bytes[pos as usize..(pos + length) as usize]).into_owned()
}

fn trim_prefix(s: &str, pattern: &str, longest: bool) -> String {
    // Candidate prefixes from the longest to the shortest, on character boundaries.
    let mut ends: Vec<usize> = s.char_indices().map(|(i, _)| i).skip(1).collect();
    ends.push(s.len());
    ends.reverse();
    let mut found: Option<usize> = None;
    for end in ends {
        match glob_match(pattern, &s[..end]) {
            Err(()) => return s.to_string(),
            Ok(true) => {
                found = Some(end);
                if longest {
                    break;
                }
            }
            Ok(false) => {}
        }
    }
    match found {
        Some(end) => s[end..].to_string(),
        None => s.to_string(),
    }
}

fn trim_suffix(s: &str, pattern: &str, longest: bool) -> String {
    let rev = |t: &str| t.chars().rev().collect::<String>();
    rev(&trim_prefix(&rev(s), &rev(pattern), longest))
}

/// Shell-style glob (`*`, `?`, `[a-z]`, `[^x]`, `\` escapes) where `*` also matches `/`.
/// `Err` means a malformed pattern.
fn glob_match(pattern: &str, name: &str) -> Result<bool, ()> {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    glob_at(&p, &n)
}

fn glob_at(p: &[char], n: &[char]) -> Result<bool, ()> {
    let Some(&first) = p.first() else {
        return Ok(n.is_empty());
    };
    match first {
        '*' => {
            let rest = &p[1..];
            for skip in 0..=n.len() {
                if glob_at(rest, &n[skip..])? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        '?' => {
            if n.is_empty() {
                return Ok(false);
            }
            glob_at(&p[1..], &n[1..])
        }
        '[' => {
            let mut i = 1;
            let negated = p.get(i) == Some(&'^');
            if negated {
                i += 1;
            }
            let mut matched = false;
            let mut ranges = 0;
            let c = n.first().copied();
            loop {
                match p.get(i) {
                    None => return Err(()),
                    Some(']') if ranges > 0 => {
                        i += 1;
                        break;
                    }
                    Some(_) => {}
                }
                let (lo, next) = class_char(p, i)?;
                let (hi, next) = if p.get(next) == Some(&'-') {
                    class_char(p, next + 1)?
                } else {
                    (lo, next)
                };
                if let Some(c) = c
                    && lo <= c
                    && c <= hi
                {
                    matched = true;
                }
                ranges += 1;
                i = next;
            }
            if n.is_empty() || matched == negated {
                return Ok(false);
            }
            glob_at(&p[i..], &n[1..])
        }
        '\\' => {
            let Some(&lit) = p.get(1) else {
                return Err(());
            };
            if n.first() != Some(&lit) {
                return Ok(false);
            }
            glob_at(&p[2..], &n[1..])
        }
        lit => {
            if n.first() != Some(&lit) {
                return Ok(false);
            }
            glob_at(&p[1..], &n[1..])
        }
    }
}

fn class_char(p: &[char], i: usize) -> Result<(char, usize), ()> {
    match p.get(i) {
        None | Some('-') | Some(']') => Err(()),
        Some('\\') => match p.get(i + 1) {
            Some(&c) => Ok((c, i + 2)),
            None => Err(()),
        },
        Some(&c) => Ok((c, i + 1)),
    }
}

/// `^[_[:alpha:]][_[:alpha:][:digit:]]*$`, the variable names upstream accepts.
pub fn valid_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) if c == '_' || c.is_ascii_alphabetic() => {}
        _ => return false,
    }
    chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// Whether the object opts out of substitution with the label or annotation.
pub fn disabled(obj: &Value) -> bool {
    ["labels", "annotations"].iter().any(|field| {
        obj.pointer(&format!("/metadata/{field}"))
            .and_then(|m| m.get(SUBSTITUTE_KEY))
            .and_then(Value::as_str)
            == Some("disabled")
    })
}

/// Substitutes variables in one built object, as kustomize-controller does: the object is
/// printed as YAML, substituted as text and parsed back, so `replicas: ${N}` becomes a number.
/// Returns `Ok(None)` when the object is left alone.
pub fn substitute_object(
    obj: &Value,
    vars: &BTreeMap<String, String>,
    strict: bool,
    always: bool,
) -> Result<Option<Value>, String> {
    if disabled(obj) || (vars.is_empty() && !always) {
        return Ok(None);
    }
    for name in vars.keys() {
        if !valid_var_name(name) {
            return Err(format!(
                "envsubst error: '{name}' var name is invalid, must match '^[_[:alpha:]][_[:alpha:][:digit:]]*$'"
            ));
        }
    }
    let text = ferroflux_kustomize::yaml::to_yaml(obj);
    let lookup = |name: &str| -> Option<String> {
        match vars.get(name) {
            Some(v) => Some(v.clone()),
            None if strict => None,
            None => Some(String::new()),
        }
    };
    let out = eval(&text, &lookup)
        .map_err(|e| format!("envsubst error: variable substitution failed: {e}"))?;
    let mut docs = ferroflux_kustomize::yaml::read::parse_documents(&out)
        .map_err(|e| format!("envsubst error: YAMLToJSON: {e}"))?;
    match docs.len() {
        1 => Ok(docs.pop()),
        n => Err(format!(
            "envsubst error: YAMLToJSON: substitution produced {n} documents instead of one"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(input: &str, vars: &[(&str, &str)], strict: bool) -> Result<String, SubstituteError> {
        let map: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        eval(input, &|name| match map.get(name) {
            Some(v) => Some(v.clone()),
            None if strict => None,
            None => Some(String::new()),
        })
    }

    #[test]
    fn plain_defaults_and_escapes() {
        let vars = [("NAME", "web"), ("EMPTY", "")];
        let cases = [
            ("name: ${NAME}", "name: web"),
            ("${MISSING:=dflt}", "dflt"),
            ("${MISSING:-dflt}", "dflt"),
            ("${EMPTY:=x}", "x"),
            ("${NAME:=x}", "web"),
            ("${MISSING=plain}", "plain"),
            ("${MISSING:=a${NAME}b}", "awebb"),
            ("$${NAME}", "${NAME}"),
            ("$$HOME and $x", "$HOME and $x"),
            ("$$${NAME}", "$web"),
            ("cost: $5", "cost: $5"),
            ("${#NAME}", "3"),
            ("${NAME^^}", "WEB"),
            ("${NAME^}", "Web"),
            ("${NAME:1}", "eb"),
            ("${NAME:0:2}", "we"),
            ("${NAME:-1}", "web"),
            // Go's Atoi refuses the space, so the value is returned whole (unlike bash).
            ("${NAME: -1}", "web"),
            ("${NAME:(-1)}", "web"),
            ("${NAME/e/E}", "wEb"),
            ("${NAME//w/}", "eb"),
            ("${NAME/#w/W}", "Web"),
            ("${NAME/%b/B}", "weB"),
        ];
        for (input, want) in cases {
            assert_eq!(run(input, &vars, true).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn trimming_with_globs() {
        let vars = [("P", "a/b/c.tar.gz")];
        assert_eq!(run("${P#*/}", &vars, true).unwrap(), "b/c.tar.gz");
        assert_eq!(run("${P##*/}", &vars, true).unwrap(), "c.tar.gz");
        assert_eq!(run("${P%.*}", &vars, true).unwrap(), "a/b/c.tar");
        assert_eq!(run("${P%%.*}", &vars, true).unwrap(), "a/b/c");
        assert_eq!(run("${P#[ab]/}", &vars, true).unwrap(), "b/c.tar.gz");
    }

    #[test]
    fn strict_mode_and_errors() {
        assert_eq!(
            run("x: ${MISSING}", &[], true),
            Err(SubstituteError::NotSet("MISSING".into()))
        );
        assert_eq!(
            SubstituteError::NotSet("MISSING".into()).to_string(),
            "variable not set (strict mode): \"MISSING\""
        );
        assert_eq!(run("x: ${MISSING}", &[], false).unwrap(), "x: ");
        assert_eq!(run("${}", &[], true), Err(SubstituteError::VariableName));
        assert_eq!(
            run("${A", &[("A", "1")], true),
            Err(SubstituteError::MissingClosingBrace)
        );
        assert_eq!(
            run("${A-x}", &[("A", "1")], true),
            Err(SubstituteError::MissingClosingBrace)
        );
        assert_eq!(
            run("${A:=x", &[], true),
            Err(SubstituteError::FuncSubstitution)
        );
        assert_eq!(
            run("${A/x}", &[("A", "1")], true),
            Err(SubstituteError::BadSubstitution)
        );
    }

    #[test]
    fn var_names() {
        assert!(valid_var_name("_a1"));
        assert!(valid_var_name("cluster_env"));
        assert!(!valid_var_name("1a"));
        assert!(!valid_var_name("a-b"));
        assert!(!valid_var_name(""));
    }

    #[test]
    fn objects_are_substituted_as_yaml_text() {
        let obj = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web-${ENV}"}, "spec": {"replicas": "${REPLICAS}"}});
        let vars: BTreeMap<String, String> = [("ENV", "prod"), ("REPLICAS", "3")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let out = substitute_object(&obj, &vars, true, false)
            .unwrap()
            .unwrap();
        assert_eq!(out["metadata"]["name"], "web-prod");
        assert_eq!(
            out["spec"]["replicas"], 3,
            "a substituted number is a number"
        );

        let no_vars = BTreeMap::new();
        assert_eq!(
            substitute_object(&obj, &no_vars, true, false).unwrap(),
            None
        );
        let err = substitute_object(&obj, &no_vars, true, true).unwrap_err();
        assert_eq!(
            err,
            "envsubst error: variable substitution failed: variable not set (strict mode): \"ENV\""
        );

        let mut disabled = obj.clone();
        disabled["metadata"]["annotations"] = json!({SUBSTITUTE_KEY: "disabled"});
        assert_eq!(
            substitute_object(&disabled, &vars, true, false).unwrap(),
            None
        );
        let bad: BTreeMap<String, String> = [("bad-name".to_string(), "x".to_string())].into();
        assert!(
            substitute_object(&obj, &bad, true, false)
                .unwrap_err()
                .contains("'bad-name' var name is invalid")
        );
    }
}
