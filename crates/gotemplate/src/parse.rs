//! Parse trees and the parser, following Go's text/template/parse.

use std::fmt::{self, Write as _};
use std::rc::Rc;

use crate::error::Error;
use crate::gofmt::quote;
use crate::lex::{Item, Lexer, Token};

/// One parsed template: a file's top level or a `define`/`block` body.
#[derive(Debug)]
pub struct Tree {
    /// The template's name.
    pub name: String,
    /// Name of the top-level template the text came from (for error locations).
    pub parse_name: Rc<str>,
    /// The full text that was parsed (positions index into it).
    pub text: Rc<str>,
    pub root: Vec<Node>,
}

impl Tree {
    /// Go's `parse.IsEmptyTree`: only whitespace text and no actions.
    pub fn is_empty(&self) -> bool {
        is_empty_list(&self.root)
    }

    /// `LINE:COL` of a byte position, like Go's `ErrorContext`.
    pub fn line_col(&self, pos: usize) -> (usize, usize) {
        let pos = pos.min(self.text.len());
        let text = &self.text[..pos];
        let line = 1 + text.matches('\n').count();
        let col = match text.rfind('\n') {
            None => pos,
            Some(i) => pos - (i + 1),
        };
        (line, col)
    }
}

fn is_empty_list(list: &[Node]) -> bool {
    list.iter().all(|n| match n {
        Node::Text(t) => t
            .trim_matches([' ', '\t', '\r', '\n', '\u{b}', '\u{c}'])
            .is_empty(),
        _ => false,
    })
}

#[derive(Debug)]
pub enum Node {
    Text(Rc<str>),
    Action(Box<Action>),
    If(Box<Branch>),
    Range(Box<Branch>),
    With(Box<Branch>),
    Template(Box<TemplateCall>),
    Break(usize),
    Continue(usize),
}

#[derive(Debug)]
pub struct Action {
    pub pos: usize,
    pub pipe: Pipe,
}

#[derive(Debug)]
pub struct Branch {
    pub pos: usize,
    pub pipe: Pipe,
    pub list: Vec<Node>,
    pub else_list: Option<Vec<Node>>,
}

#[derive(Debug)]
pub struct TemplateCall {
    pub pos: usize,
    pub name: String,
    pub pipe: Option<Pipe>,
}

#[derive(Debug)]
pub struct Pipe {
    pub pos: usize,
    pub is_assign: bool,
    pub decl: Vec<Variable>,
    pub cmds: Vec<Command>,
}

#[derive(Debug)]
pub struct Variable {
    pub pos: usize,
    pub ident: Vec<String>,
}

#[derive(Debug)]
pub struct Command {
    pub pos: usize,
    pub args: Vec<Arg>,
}

#[derive(Debug)]
pub struct Number {
    pub pos: usize,
    pub text: String,
    pub is_int: bool,
    pub is_uint: bool,
    pub is_float: bool,
    pub is_complex: bool,
    pub int: i64,
    pub uint: u64,
    pub float: f64,
}

#[derive(Debug)]
pub enum Arg {
    Field {
        pos: usize,
        ident: Vec<String>,
    },
    Chain {
        pos: usize,
        node: Box<Arg>,
        field: Vec<String>,
    },
    Ident {
        pos: usize,
        name: String,
    },
    Var(Variable),
    Dot(usize),
    Nil(usize),
    Bool(usize, bool),
    Number(Box<Number>),
    Str {
        pos: usize,
        quoted: String,
        text: Rc<str>,
    },
    Pipe(Box<Pipe>),
}

impl Arg {
    pub fn pos(&self) -> usize {
        match self {
            Arg::Field { pos, .. }
            | Arg::Chain { pos, .. }
            | Arg::Ident { pos, .. }
            | Arg::Dot(pos)
            | Arg::Nil(pos)
            | Arg::Bool(pos, _)
            | Arg::Str { pos, .. } => *pos,
            Arg::Var(v) => v.pos,
            Arg::Number(n) => n.pos,
            Arg::Pipe(p) => p.pos,
        }
    }
}

impl fmt::Display for Variable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.ident.join("."))
    }
}

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Field { ident, .. } => {
                for i in ident {
                    f.write_char('.')?;
                    f.write_str(i)?;
                }
                Ok(())
            }
            Arg::Chain { node, field, .. } => {
                if let Arg::Pipe(p) = node.as_ref() {
                    write!(f, "({p})")?;
                } else {
                    write!(f, "{node}")?;
                }
                for i in field {
                    f.write_char('.')?;
                    f.write_str(i)?;
                }
                Ok(())
            }
            Arg::Ident { name, .. } => f.write_str(name),
            Arg::Var(v) => write!(f, "{v}"),
            Arg::Dot(_) => f.write_char('.'),
            Arg::Nil(_) => f.write_str("nil"),
            Arg::Bool(_, b) => write!(f, "{b}"),
            Arg::Number(n) => f.write_str(&n.text),
            Arg::Str { quoted, .. } => f.write_str(quoted),
            Arg::Pipe(p) => write!(f, "{p}"),
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_char(' ')?;
            }
            if let Arg::Pipe(p) = a {
                write!(f, "({p})")?;
            } else {
                write!(f, "{a}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            for (i, v) in self.decl.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{v}")?;
            }
            f.write_str(if self.is_assign { " = " } else { " := " })?;
        }
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

fn write_list(f: &mut fmt::Formatter<'_>, list: &[Node]) -> fmt::Result {
    for n in list {
        write!(f, "{n}")?;
    }
    Ok(())
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Text(t) => f.write_str(t),
            Node::Action(a) => write!(f, "{{{{{}}}}}", a.pipe),
            Node::If(b) | Node::Range(b) | Node::With(b) => {
                let name = match self {
                    Node::If(_) => "if",
                    Node::Range(_) => "range",
                    _ => "with",
                };
                write!(f, "{{{{{} {}}}}}", name, b.pipe)?;
                write_list(f, &b.list)?;
                if let Some(e) = &b.else_list {
                    f.write_str("{{else}}")?;
                    write_list(f, e)?;
                }
                f.write_str("{{end}}")
            }
            Node::Template(t) => match &t.pipe {
                None => write!(f, "{{{{template {}}}}}", quote(&t.name)),
                Some(p) => write!(f, "{{{{template {} {}}}}}", quote(&t.name), p),
            },
            Node::Break(_) => f.write_str("{{break}}"),
            Node::Continue(_) => f.write_str("{{continue}}"),
        }
    }
}

/// A node of the parse (only for reporting "unexpected X").
enum Parsed {
    Node(Node),
    End,
    Else,
}

struct Parser<'f, 'a> {
    parse_name: Rc<str>,
    text: Rc<str>,
    toks: Vec<Token<'a>>,
    idx: usize,
    max_fetched: usize,
    vars: Vec<String>,
    range_depth: usize,
    nesting: usize,
    has_func: &'f dyn Fn(&str) -> bool,
    trees: Vec<Tree>,
}

type PResult<T> = Result<T, Error>;

/// Nesting limit for control structures and parentheses (the native stack is finite; Go's
/// goroutine stacks grow to 1 GB instead).
const MAX_NESTING: usize = 2000;

/// Parse `text` as the template `name`. Returns every tree it defines (its own first).
pub fn parse(
    name: &str,
    text: &str,
    left: &str,
    right: &str,
    has_func: &dyn Fn(&str) -> bool,
) -> Result<Vec<Tree>, Error> {
    let toks = Lexer::lex(text, left, right, !has_func("break"), !has_func("continue"));
    let text: Rc<str> = text.into();
    let parse_name: Rc<str> = name.into();
    let mut p = Parser {
        parse_name: parse_name.clone(),
        text: text.clone(),
        toks,
        idx: 0,
        max_fetched: 0,
        vars: vec!["$".into()],
        range_depth: 0,
        nesting: 0,
        has_func,
        trees: Vec::new(),
    };
    let root = p.parse_top()?;
    let eof_line = p.toks.last().map(|t| t.line).unwrap_or(1);
    let own = Tree {
        name: name.to_string(),
        parse_name,
        text,
        root,
    };
    let mut out: Vec<Tree> = Vec::with_capacity(p.trees.len() + 1);
    let mut own = Some(own);
    for t in p.trees {
        if t.name == name {
            let mine = own.take();
            if let Some(mine) = mine {
                if t.is_empty() || mine.is_empty() {
                    out.push(if mine.is_empty() { t } else { mine });
                } else {
                    return Err(Error::parse(
                        name,
                        eof_line,
                        format!("template: multiple definition of template {}", quote(name)),
                    ));
                }
            }
            continue;
        }
        out.push(t);
    }
    if let Some(mine) = own {
        out.insert(0, mine);
    }
    Ok(out)
}

impl<'a> Parser<'_, 'a> {
    fn fetch(&mut self, i: usize) -> &Token<'a> {
        if i > self.max_fetched {
            self.max_fetched = i;
        }
        let last = self.toks.len() - 1;
        &self.toks[i.min(last)]
    }

    fn next(&mut self) -> Token<'a> {
        let i = self.idx;
        self.idx += 1;
        self.fetch(i).clone()
    }

    fn backup(&mut self) {
        self.idx -= 1;
    }

    fn peek(&mut self) -> Token<'a> {
        let i = self.idx;
        self.fetch(i).clone()
    }

    fn next_non_space(&mut self) -> Token<'a> {
        loop {
            let t = self.next();
            if t.typ != Item::Space {
                return t;
            }
        }
    }

    fn peek_non_space(&mut self) -> Token<'a> {
        let t = self.next_non_space();
        self.backup();
        t
    }

    fn errorf(&self, msg: impl Into<String>) -> Error {
        let last = self.toks.len() - 1;
        let line = self.toks[self.max_fetched.min(last)].line;
        Error::parse(&self.parse_name, line, msg)
    }

    fn unexpected(&self, tok: &Token, context: &str) -> Error {
        if tok.typ == Item::Error {
            return self.errorf(tok.val.clone());
        }
        self.errorf(format!("unexpected {} in {}", tok.describe(), context))
    }

    fn expect(&mut self, typ: Item, context: &str) -> PResult<Token<'a>> {
        let t = self.next_non_space();
        if t.typ != typ {
            return Err(self.unexpected(&t, context));
        }
        Ok(t)
    }

    fn parse_top(&mut self) -> PResult<Vec<Node>> {
        let mut root = Vec::new();
        while self.peek().typ != Item::Eof {
            if self.peek().typ == Item::LeftDelim {
                self.next();
                let save = self.idx;
                if self.next_non_space().typ == Item::Define {
                    self.parse_definition()?;
                    continue;
                }
                self.idx = save - 1;
            }
            match self.text_or_action()? {
                Parsed::Node(n) => root.push(n),
                Parsed::End => return Err(self.errorf("unexpected {{end}}")),
                Parsed::Else => return Err(self.errorf("unexpected {{else}}")),
            }
        }
        Ok(root)
    }

    fn parse_definition(&mut self) -> PResult<()> {
        let context = "define clause";
        let t = self.next_non_space();
        if t.typ != Item::String && t.typ != Item::RawString {
            return Err(self.unexpected(&t, context));
        }
        let name = unquote(&t.val).map_err(|e| self.errorf(e))?;
        self.expect(Item::RightDelim, context)?;
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let saved_depth = std::mem::replace(&mut self.range_depth, 0);
        let (list, end) = self.item_list()?;
        self.vars = saved_vars;
        self.range_depth = saved_depth;
        if let Parsed::Else = end {
            return Err(self.errorf(format!("unexpected {{{{else}}}} in {context}")));
        }
        self.add_tree(name, list)
    }

    fn add_tree(&mut self, name: String, root: Vec<Node>) -> PResult<()> {
        let tree = Tree {
            name,
            parse_name: self.parse_name.clone(),
            text: self.text.clone(),
            root,
        };
        if let Some(existing) = self.trees.iter_mut().find(|t| t.name == tree.name) {
            if existing.is_empty() {
                *existing = tree;
            } else if !tree.is_empty() {
                return Err(self.errorf(format!(
                    "template: multiple definition of template {}",
                    quote(&tree.name)
                )));
            }
            return Ok(());
        }
        self.trees.push(tree);
        Ok(())
    }

    fn item_list(&mut self) -> PResult<(Vec<Node>, Parsed)> {
        let mut list = Vec::new();
        while self.peek_non_space().typ != Item::Eof {
            match self.text_or_action()? {
                Parsed::Node(n) => list.push(n),
                other => return Ok((list, other)),
            }
        }
        Err(self.errorf("unexpected EOF"))
    }

    fn text_or_action(&mut self) -> PResult<Parsed> {
        let t = self.next_non_space();
        match t.typ {
            Item::Text => Ok(Parsed::Node(Node::Text(t.val.as_ref().into()))),
            Item::LeftDelim => self.action(),
            _ => Err(self.unexpected(&t, "input")),
        }
    }

    fn action(&mut self) -> PResult<Parsed> {
        let t = self.next_non_space();
        match t.typ {
            Item::Block => return self.block_control().map(Parsed::Node),
            Item::Break => return self.break_control(t.pos, "break").map(Parsed::Node),
            Item::Continue => return self.break_control(t.pos, "continue").map(Parsed::Node),
            Item::Else => return self.else_control(),
            Item::End => {
                let e = self.expect(Item::RightDelim, "end")?;
                let _ = e;
                return Ok(Parsed::End);
            }
            Item::If => return self.if_control().map(Parsed::Node),
            Item::Range => {
                let b = self.parse_control("range")?;
                return Ok(Parsed::Node(Node::Range(Box::new(b))));
            }
            Item::Template => return self.template_control().map(Parsed::Node),
            Item::With => return self.with_control().map(Parsed::Node),
            _ => {}
        }
        self.backup();
        let tok = self.peek();
        let pipe = self.pipeline("command", Item::RightDelim)?;
        Ok(Parsed::Node(Node::Action(Box::new(Action {
            pos: tok.pos,
            pipe,
        }))))
    }

    fn break_control(&mut self, pos: usize, which: &str) -> PResult<Node> {
        let t = self.next_non_space();
        if t.typ != Item::RightDelim {
            return Err(self.unexpected(&t, &format!("{{{{{which}}}}}")));
        }
        if self.range_depth == 0 {
            return Err(self.errorf(format!("{{{{{which}}}}} outside {{{{range}}}}")));
        }
        Ok(if which == "break" {
            Node::Break(pos)
        } else {
            Node::Continue(pos)
        })
    }

    fn if_control(&mut self) -> PResult<Node> {
        Ok(Node::If(Box::new(self.parse_control("if")?)))
    }

    fn with_control(&mut self) -> PResult<Node> {
        Ok(Node::With(Box::new(self.parse_control("with")?)))
    }

    fn else_control(&mut self) -> PResult<Parsed> {
        let peek = self.peek_non_space();
        if peek.typ == Item::If || peek.typ == Item::With {
            return Ok(Parsed::Else);
        }
        let t = self.expect(Item::RightDelim, "else")?;
        let _ = t;
        Ok(Parsed::Else)
    }

    fn enter(&mut self) -> PResult<()> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(self.errorf(format!("nesting deeper than {MAX_NESTING} levels")));
        }
        Ok(())
    }

    fn parse_control(&mut self, context: &str) -> PResult<Branch> {
        self.enter()?;
        let r = self.parse_control_inner(context);
        self.nesting -= 1;
        r
    }

    fn parse_control_inner(&mut self, context: &str) -> PResult<Branch> {
        let nvars = self.vars.len();
        let pipe = self.pipeline(context, Item::RightDelim)?;
        if context == "range" {
            self.range_depth += 1;
        }
        let (list, next) = self.item_list()?;
        if context == "range" {
            self.range_depth -= 1;
        }
        let mut else_list = None;
        match next {
            Parsed::End => {}
            Parsed::Else => {
                if context == "if" && self.peek().typ == Item::If {
                    self.next();
                    else_list = Some(vec![self.if_control()?]);
                } else if context == "with" && self.peek().typ == Item::With {
                    self.next();
                    else_list = Some(vec![self.with_control()?]);
                } else {
                    let (l, n) = self.item_list()?;
                    match n {
                        Parsed::End => {}
                        _ => return Err(self.errorf("expected end; found {{else}}")),
                    }
                    else_list = Some(l);
                }
            }
            Parsed::Node(_) => {}
        }
        self.vars.truncate(nvars);
        Ok(Branch {
            pos: pipe.pos,
            pipe,
            list,
            else_list,
        })
    }

    fn template_name(&mut self, t: &Token, context: &str) -> PResult<String> {
        match t.typ {
            Item::String | Item::RawString => unquote(&t.val).map_err(|e| self.errorf(e)),
            _ => Err(self.unexpected(t, context)),
        }
    }

    fn template_control(&mut self) -> PResult<Node> {
        let context = "template clause";
        let t = self.next_non_space();
        let name = self.template_name(&t, context)?;
        let mut pipe = None;
        if self.next_non_space().typ != Item::RightDelim {
            self.backup();
            pipe = Some(self.pipeline(context, Item::RightDelim)?);
        }
        Ok(Node::Template(Box::new(TemplateCall {
            pos: t.pos,
            name,
            pipe,
        })))
    }

    fn block_control(&mut self) -> PResult<Node> {
        let context = "block clause";
        let t = self.next_non_space();
        let name = self.template_name(&t, context)?;
        let pipe = self.pipeline(context, Item::RightDelim)?;
        let saved_vars = std::mem::replace(&mut self.vars, vec!["$".into()]);
        let saved_depth = std::mem::replace(&mut self.range_depth, 0);
        let (list, end) = self.item_list()?;
        self.vars = saved_vars;
        self.range_depth = saved_depth;
        if let Parsed::Else = end {
            return Err(self.errorf(format!("unexpected {{{{else}}}} in {context}")));
        }
        self.add_tree(name.clone(), list)?;
        Ok(Node::Template(Box::new(TemplateCall {
            pos: t.pos,
            name,
            pipe: Some(pipe),
        })))
    }

    fn pipeline(&mut self, context: &str, end: Item) -> PResult<Pipe> {
        let tok = self.peek_non_space();
        let mut pipe = Pipe {
            pos: tok.pos,
            is_assign: false,
            decl: Vec::new(),
            cmds: Vec::new(),
        };
        'decls: loop {
            let v = self.peek_non_space();
            if v.typ != Item::Variable {
                break;
            }
            let save = self.idx;
            self.next_non_space();
            let after_var = self.peek();
            let next = self.peek_non_space();
            match next.typ {
                Item::Assign | Item::Declare => {
                    pipe.is_assign = next.typ == Item::Assign;
                    self.next_non_space();
                    pipe.decl.push(Variable {
                        pos: v.pos,
                        ident: vec![v.val.to_string()],
                    });
                    self.vars.push(v.val.to_string());
                }
                Item::Char if next.val == "," => {
                    self.next_non_space();
                    pipe.decl.push(Variable {
                        pos: v.pos,
                        ident: vec![v.val.to_string()],
                    });
                    self.vars.push(v.val.to_string());
                    if context == "range" && pipe.decl.len() < 2 {
                        match self.peek_non_space().typ {
                            Item::Variable | Item::RightDelim | Item::RightParen => {
                                continue 'decls;
                            }
                            _ => return Err(self.errorf("range can only initialize variables")),
                        }
                    }
                    return Err(self.errorf(format!("too many declarations in {context}")));
                }
                _ => {
                    let _ = after_var;
                    self.idx = save;
                }
            }
            break;
        }
        loop {
            let t = self.next_non_space();
            if t.typ == end {
                self.check_pipeline(&pipe, context)?;
                return Ok(pipe);
            }
            match t.typ {
                Item::Bool
                | Item::CharConstant
                | Item::Complex
                | Item::Dot
                | Item::Field
                | Item::Identifier
                | Item::Number
                | Item::Nil
                | Item::RawString
                | Item::String
                | Item::Variable
                | Item::LeftParen => {
                    self.backup();
                    let c = self.command()?;
                    pipe.cmds.push(c);
                }
                _ => return Err(self.unexpected(&t, context)),
            }
        }
    }

    fn check_pipeline(&self, pipe: &Pipe, context: &str) -> PResult<()> {
        if pipe.cmds.is_empty() {
            return Err(self.errorf(format!("missing value for {context}")));
        }
        for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
            if matches!(
                c.args.first(),
                Some(Arg::Bool(..) | Arg::Dot(_) | Arg::Nil(_) | Arg::Number(_) | Arg::Str { .. })
            ) {
                return Err(self.errorf(format!(
                    "non executable command in pipeline stage {}",
                    i + 1
                )));
            }
        }
        Ok(())
    }

    fn command(&mut self) -> PResult<Command> {
        let pos = self.peek_non_space().pos;
        let mut cmd = Command {
            pos,
            args: Vec::new(),
        };
        loop {
            self.peek_non_space();
            if let Some(op) = self.operand()? {
                cmd.args.push(op);
            }
            let t = self.next();
            match t.typ {
                Item::Space => continue,
                Item::RightDelim | Item::RightParen => self.backup(),
                Item::Pipe => {}
                Item::Error => return Err(self.errorf(t.val.clone())),
                _ => return Err(self.errorf(format!("unexpected {} in operand", t.describe()))),
            }
            break;
        }
        if cmd.args.is_empty() {
            return Err(self.errorf("empty command"));
        }
        Ok(cmd)
    }

    fn operand(&mut self) -> PResult<Option<Arg>> {
        let Some(node) = self.term()? else {
            return Ok(None);
        };
        if self.peek().typ == Item::Field {
            let chain_pos = self.peek().pos;
            let mut fields = Vec::new();
            while self.peek().typ == Item::Field {
                let t = self.next();
                fields.push(t.val[1..].to_string());
            }
            return Ok(Some(match node {
                Arg::Field { mut ident, .. } => {
                    ident.extend(fields);
                    Arg::Field {
                        pos: chain_pos,
                        ident,
                    }
                }
                Arg::Var(mut v) => {
                    v.ident.extend(fields);
                    Arg::Var(Variable {
                        pos: chain_pos,
                        ident: v.ident,
                    })
                }
                Arg::Bool(..) | Arg::Str { .. } | Arg::Number(_) | Arg::Nil(_) | Arg::Dot(_) => {
                    return Err(self.errorf(format!(
                        "unexpected . after term {}",
                        quote(&node.to_string())
                    )));
                }
                other => Arg::Chain {
                    pos: chain_pos,
                    node: Box::new(other),
                    field: fields,
                },
            }));
        }
        Ok(Some(node))
    }

    fn term(&mut self) -> PResult<Option<Arg>> {
        let t = self.next_non_space();
        Ok(Some(match t.typ {
            Item::Error => return Err(self.errorf(t.val.clone())),
            Item::Identifier => {
                if !(self.has_func)(&t.val) {
                    return Err(self.errorf(format!("function {} not defined", quote(&t.val))));
                }
                Arg::Ident {
                    pos: t.pos,
                    name: t.val.to_string(),
                }
            }
            Item::Dot => Arg::Dot(t.pos),
            Item::Nil => Arg::Nil(t.pos),
            Item::Variable => {
                let ident: Vec<String> = t.val.split('.').map(str::to_string).collect();
                if !self.vars.iter().any(|v| *v == ident[0]) {
                    return Err(self.errorf(format!("undefined variable {}", quote(&ident[0]))));
                }
                Arg::Var(Variable { pos: t.pos, ident })
            }
            Item::Field => Arg::Field {
                pos: t.pos,
                ident: vec![t.val[1..].to_string()],
            },
            Item::Bool => Arg::Bool(t.pos, t.val == "true"),
            Item::CharConstant | Item::Complex | Item::Number => {
                let n = new_number(t.pos, &t.val, t.typ).map_err(|e| self.errorf(e))?;
                Arg::Number(Box::new(n))
            }
            Item::LeftParen => {
                self.enter()?;
                let pipe = self.pipeline("parenthesized pipeline", Item::RightParen);
                self.nesting -= 1;
                let pipe = pipe?;
                Arg::Pipe(Box::new(pipe))
            }
            Item::String | Item::RawString => {
                let s = unquote(&t.val).map_err(|e| self.errorf(e))?;
                Arg::Str {
                    pos: t.pos,
                    quoted: t.val.to_string(),
                    text: s.into(),
                }
            }
            _ => {
                self.backup();
                return Ok(None);
            }
        }))
    }
}

/// Go's `strconv.Unquote` for "..." and `...` strings.
pub fn unquote(s: &str) -> Result<String, String> {
    let bad = || "invalid syntax".to_string();
    if s.len() < 2 {
        return Err(bad());
    }
    if s.starts_with('`') {
        if !s.ends_with('`') {
            return Err(bad());
        }
        let inner = &s[1..s.len() - 1];
        if inner.contains('`') {
            return Err(bad());
        }
        return Ok(inner.replace('\r', ""));
    }
    if !s.starts_with('"') || !s.ends_with('"') {
        return Err(bad());
    }
    let inner = &s[1..s.len() - 1];
    let mut out = String::new();
    let mut rest = inner;
    while !rest.is_empty() {
        let (c, tail) = unquote_char(rest, '"')?;
        match c {
            Unq::Char(c) => out.push(c),
            Unq::Byte(b) => {
                // raw byte; keep valid UTF-8 by mapping through Latin-1 when not combinable
                let mut bytes = std::mem::take(&mut out).into_bytes();
                bytes.push(b);
                out = match String::from_utf8(bytes) {
                    Ok(s) => s,
                    Err(e) => {
                        let b = e.into_bytes();
                        String::from_utf8_lossy(&b).into_owned()
                    }
                };
            }
        }
        rest = tail;
    }
    Ok(out)
}

enum Unq {
    Char(char),
    Byte(u8),
}

fn unquote_char(s: &str, quote: char) -> Result<(Unq, &str), String> {
    let bad = || "invalid syntax".to_string();
    let mut chars = s.chars();
    let c = chars.next().ok_or_else(bad)?;
    if c == quote && (quote == '\'' || quote == '"') {
        return Err(bad());
    }
    if c != '\\' {
        if c == '\n' && quote == '"' {
            return Err(bad());
        }
        return Ok((Unq::Char(c), chars.as_str()));
    }
    let e = chars.next().ok_or_else(bad)?;
    let rest = chars.as_str();
    let simple = match e {
        'a' => Some('\u{7}'),
        'b' => Some('\u{8}'),
        'f' => Some('\u{c}'),
        'n' => Some('\n'),
        'r' => Some('\r'),
        't' => Some('\t'),
        'v' => Some('\u{b}'),
        '\\' => Some('\\'),
        '\'' | '"' => {
            if e != quote {
                return Err(bad());
            }
            Some(e)
        }
        _ => None,
    };
    if let Some(c) = simple {
        return Ok((Unq::Char(c), rest));
    }
    match e {
        'x' | 'u' | 'U' => {
            let n = match e {
                'x' => 2,
                'u' => 4,
                _ => 8,
            };
            if rest.len() < n || !rest.is_char_boundary(n) {
                return Err(bad());
            }
            let v = u32::from_str_radix(&rest[..n], 16).map_err(|_| bad())?;
            if e == 'x' {
                return Ok((Unq::Byte(v as u8), &rest[n..]));
            }
            let c = char::from_u32(v).ok_or_else(bad)?;
            Ok((Unq::Char(c), &rest[n..]))
        }
        '0'..='7' => {
            if rest.len() < 2 || !rest.is_char_boundary(2) {
                return Err(bad());
            }
            let digits = format!("{e}{}", &rest[..2]);
            let v = u32::from_str_radix(&digits, 8).map_err(|_| bad())?;
            if v > 255 {
                return Err(bad());
            }
            Ok((Unq::Byte(v as u8), &rest[2..]))
        }
        _ => Err(bad()),
    }
}

fn strip_underscores(s: &str, base_prefix: bool) -> Option<String> {
    // Go's underscoreOK: '_' only between digits, or between a base prefix and a digit.
    let b = s.as_bytes();
    let mut out = String::with_capacity(b.len());
    for (i, &c) in b.iter().enumerate() {
        if c == b'_' {
            let prev_ok = if i == 0 {
                base_prefix
            } else {
                b[i - 1].is_ascii_alphanumeric()
            };
            let next_ok = b.get(i + 1).is_some_and(|n| n.is_ascii_alphanumeric());
            if !prev_ok || !next_ok {
                return None;
            }
            continue;
        }
        out.push(c as char);
    }
    Some(out)
}

fn parse_go_uint(text: &str) -> Option<u64> {
    if text.is_empty() || text.starts_with(['+', '-']) {
        return None;
    }
    let (base, digits, prefixed) =
        if let Some(r) = text.strip_prefix("0x").or(text.strip_prefix("0X")) {
            (16, r, true)
        } else if let Some(r) = text.strip_prefix("0o").or(text.strip_prefix("0O")) {
            (8, r, true)
        } else if let Some(r) = text.strip_prefix("0b").or(text.strip_prefix("0B")) {
            (2, r, true)
        } else if text.len() > 1 && text.starts_with('0') {
            (8, &text[1..], true)
        } else {
            (10, text, false)
        };
    if text.contains('_') {
        let d = strip_underscores(digits, prefixed)?;
        if d.is_empty() {
            return None;
        }
        return u64::from_str_radix(&d, base).ok();
    }
    if digits.is_empty() || digits.starts_with(['+', '-']) {
        return None;
    }
    u64::from_str_radix(digits, base).ok()
}

fn parse_go_int(text: &str) -> Option<i64> {
    let (neg, body) = if let Some(r) = text.strip_prefix('-') {
        (true, r)
    } else if let Some(r) = text.strip_prefix('+') {
        (false, r)
    } else {
        (false, text)
    };
    let u = parse_go_uint(body)?;
    if neg {
        if u > (i64::MAX as u64) + 1 {
            return None;
        }
        Some((u as i64).wrapping_neg())
    } else {
        i64::try_from(u).ok()
    }
}

fn parse_go_float(text: &str) -> Option<f64> {
    let (neg, body) = if let Some(r) = text.strip_prefix('-') {
        (true, r)
    } else if let Some(r) = text.strip_prefix('+') {
        (false, r)
    } else {
        (false, text)
    };
    let v = if let Some(h) = body.strip_prefix("0x").or(body.strip_prefix("0X")) {
        let h = if h.contains('_') {
            strip_underscores(h, true)?
        } else {
            h.to_string()
        };
        let (mant, exp) = match h.find(['p', 'P']) {
            Some(i) => (&h[..i], h[i + 1..].parse::<i32>().ok()?),
            None => return None,
        };
        let (ip, fp) = mant.split_once('.').unwrap_or((mant, ""));
        if ip.is_empty() && fp.is_empty() {
            return None;
        }
        let mut v = 0f64;
        for c in ip.chars() {
            v = v * 16.0 + f64::from(c.to_digit(16)?);
        }
        let mut scale = 1.0 / 16.0;
        for c in fp.chars() {
            v += f64::from(c.to_digit(16)?) * scale;
            scale /= 16.0;
        }
        v * 2f64.powi(exp)
    } else {
        let b = if body.contains('_') {
            strip_underscores(body, false)?
        } else {
            body.to_string()
        };
        if b.is_empty()
            || !b
                .bytes()
                .next()
                .is_some_and(|c| c.is_ascii_digit() || c == b'.')
        {
            return None;
        }
        if b.contains(['i', 'n', 'N', 'I']) {
            return None;
        }
        b.parse::<f64>().ok()?
    };
    if v.is_infinite() {
        return None;
    }
    Some(if neg { -v } else { v })
}

fn new_number(pos: usize, text: &str, typ: Item) -> Result<Number, String> {
    let mut n = Number {
        pos,
        text: text.to_string(),
        is_int: false,
        is_uint: false,
        is_float: false,
        is_complex: false,
        int: 0,
        uint: 0,
        float: 0.0,
    };
    if typ == Item::CharConstant {
        let inner = &text[1..];
        let (c, tail) = unquote_char(inner, '\'')?;
        if tail != "'" {
            return Err(format!("malformed character constant: {text}"));
        }
        let v = match c {
            Unq::Char(c) => c as u32,
            Unq::Byte(b) => u32::from(b),
        };
        n.int = i64::from(v);
        n.is_int = true;
        n.uint = u64::from(v);
        n.is_uint = true;
        n.float = f64::from(v);
        n.is_float = true;
        return Ok(n);
    }
    if typ == Item::Complex || text.ends_with('i') {
        // Complex constants: accepted by the syntax, not supported as values here.
        n.is_complex = true;
        return Ok(n);
    }
    if let Some(u) = parse_go_uint(text) {
        n.is_uint = true;
        n.uint = u;
    }
    if let Some(i) = parse_go_int(text) {
        n.is_int = true;
        n.int = i;
        if i == 0 {
            n.is_uint = true;
            n.uint = 0;
        }
    }
    if n.is_int {
        n.is_float = true;
        n.float = n.int as f64;
    } else if n.is_uint {
        n.is_float = true;
        n.float = n.uint as f64;
    } else if let Some(f) = parse_go_float(text) {
        if !text.contains(['.', 'e', 'E', 'p', 'P']) {
            return Err(format!("illegal number syntax: {}", quote(text)));
        }
        n.is_float = true;
        n.float = f;
        if !n.is_int && (f as i64) as f64 == f && f.abs() < 9.3e18 {
            n.is_int = true;
            n.int = f as i64;
        }
        if !n.is_uint && f >= 0.0 && (f as u64) as f64 == f && f < 1.8e19 {
            n.is_uint = true;
            n.uint = f as u64;
        }
    }
    if !n.is_int && !n.is_uint && !n.is_float {
        return Err(format!("illegal number syntax: {}", quote(text)));
    }
    Ok(n)
}
