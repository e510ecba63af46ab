//! The executor: walks parse trees the way Go's text/template does.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::builtins;
use crate::error::{Error, ExecError};
use crate::func::{Env, Func, FuncError, Param};
use crate::gofmt::quote;
use crate::parse::{self, Arg, Branch, Command, Node, Pipe, TemplateCall, Tree, Variable};
use crate::value::Value;

/// What a missing map key evaluates to (Go's `missingkey` option).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MissingKey {
    /// `missingkey=default`/`invalid`: the invalid value, printed `<no value>`.
    #[default]
    Default,
    /// `missingkey=zero`: the zero value of the map's element type (nil for interface{}).
    Zero,
    /// `missingkey=error`: execution stops with an error.
    Error,
}

/// Execution options and limits.
#[derive(Clone, Debug)]
pub struct Options {
    pub missing_key: MissingKey,
    /// Maximum nesting of `template` calls (Go: 100000).
    pub max_depth: usize,
    /// Maximum nesting of template executions started by functions (include, tpl) plus
    /// `template` calls, guarding the native stack.
    pub max_nesting: usize,
    /// Maximum bytes one execution may write.
    pub max_output: usize,
    /// Maximum number of nodes one execution may walk (None: unlimited, as Go).
    pub max_steps: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            missing_key: MissingKey::Default,
            max_depth: 100_000,
            max_nesting: 3_000,
            max_output: 256 * 1024 * 1024,
            max_steps: None,
        }
    }
}

type ParseCache = Rc<RefCell<HashMap<(String, String), Rc<[Rc<Tree>]>>>>;

/// A set of associated templates sharing functions and definitions (Go's `*template.Template`
/// with its common namespace).
#[derive(Clone)]
pub struct Templates {
    /// Keys are shared strings so that copying the set (`tpl`) copies no text.
    trees: HashMap<Rc<str>, Rc<Tree>>,
    /// Texts parsed by [`Env::execute_text`] (`tpl`), by template name and text; shared by the
    /// copies of the set, emptied when functions or delimiters change.
    parsed: ParseCache,
    funcs: Rc<HashMap<String, Func>>,
    builtins: Rc<HashMap<String, Func>>,
    /// Name of the root template (used in "no template ... associated with template X").
    pub root_name: String,
    pub options: Options,
    left: String,
    right: String,
}

impl Default for Templates {
    fn default() -> Self {
        Self::new("")
    }
}

impl Templates {
    /// An empty set whose root template is called `root_name`.
    pub fn new(root_name: &str) -> Self {
        Templates {
            trees: HashMap::new(),
            parsed: Rc::default(),
            funcs: Rc::new(HashMap::new()),
            builtins: Rc::new(builtins::table()),
            root_name: root_name.to_string(),
            options: Options::default(),
            left: String::new(),
            right: String::new(),
        }
    }

    /// Set the action delimiters (empty strings mean `{{` and `}}`).
    pub fn delims(&mut self, left: &str, right: &str) {
        self.parsed.borrow_mut().clear();
        self.left = left.to_string();
        self.right = right.to_string();
    }

    /// Register a function (replacing one of the same name).
    pub fn add_func(&mut self, f: Func) {
        self.parsed.borrow_mut().clear();
        Rc::make_mut(&mut self.funcs).insert(f.name().to_string(), f);
    }

    /// Register several functions.
    pub fn add_funcs(&mut self, fs: impl IntoIterator<Item = Func>) {
        self.parsed.borrow_mut().clear();
        let m = Rc::make_mut(&mut self.funcs);
        for f in fs {
            m.insert(f.name().to_string(), f);
        }
    }

    /// Whether a function (registered or predefined) has this name.
    pub fn has_func(&self, name: &str) -> bool {
        self.funcs.contains_key(name) || self.builtins.contains_key(name)
    }

    /// Parse `text` as template `name`, adding it and its definitions to the set. Like Go's
    /// `t.New(name).Parse(text)`: a later definition replaces an earlier one unless it is empty.
    pub fn parse(&mut self, name: &str, text: &str) -> Result<(), Error> {
        let funcs = self.funcs.clone();
        let builtins = self.builtins.clone();
        let has = move |n: &str| funcs.contains_key(n) || builtins.contains_key(n);
        let trees = parse::parse(name, text, &self.left, &self.right, &has)?;
        self.associate(trees.into_iter().map(Rc::new), name);
        Ok(())
    }

    /// Add parsed trees to the set as Go's `associate` does (an empty tree never replaces a
    /// defined one); returns the tree named `main` from this parse, installed or not.
    fn associate(
        &mut self,
        trees: impl IntoIterator<Item = Rc<Tree>>,
        main: &str,
    ) -> Option<Rc<Tree>> {
        let mut found = None;
        for t in trees {
            if t.name == main {
                found = Some(t.clone());
            }
            if let Some(old) = self.trees.get(t.name.as_str())
                && t.is_empty()
                && !old.root.is_empty()
            {
                continue;
            }
            self.trees.insert(Rc::from(t.name.as_str()), t);
        }
        found
    }

    /// Whether a template of this name is defined.
    pub fn has(&self, name: &str) -> bool {
        self.trees.contains_key(name)
    }

    /// Names of all templates in the set.
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.trees.keys().map(|k| k.to_string()).collect();
        v.sort();
        v
    }

    /// Execute the named template with `data` as dot and `$`.
    pub fn execute(&self, name: &str, data: &Value) -> Result<String, Error> {
        let Some(tree) = self.trees.get(name) else {
            return Err(Error::NoTemplate {
                name: name.to_string(),
                parent: self.root_name.clone(),
            });
        };
        let mut st = State::new(self, tree, 0);
        st.run(data.clone())?;
        Ok(st.out)
    }

    /// Execute within an existing nesting depth (used by [`Env`] implementations).
    fn execute_nested(&self, name: &str, data: Value, nesting: usize) -> Result<String, Error> {
        let Some(tree) = self.trees.get(name) else {
            return Err(Error::NoTemplate {
                name: name.to_string(),
                parent: self.root_name.clone(),
            });
        };
        let mut st = State::new(self, tree, nesting);
        st.run(data)?;
        Ok(st.out)
    }
}

/// A value with its static-interface flag: `iface` is true when the value came out of an
/// `interface{}` slot (map element, slice element) and has not yet passed through the end of a
/// pipeline, exactly where Go keeps a reflect.Value of kind Interface.
#[derive(Clone, Debug)]
pub(crate) struct V {
    pub v: Value,
    pub iface: bool,
}

impl V {
    pub fn new(v: Value) -> V {
        V { v, iface: false }
    }
    pub fn iface(v: Value) -> V {
        V { v, iface: true }
    }
    fn no_value() -> V {
        V::new(Value::NoValue)
    }
    fn static_type(&self) -> String {
        if self.iface {
            "interface {}".into()
        } else {
            self.v.type_name()
        }
    }
    /// Go's "dig down one level" at the end of each pipeline command.
    fn dig(self) -> V {
        if self.iface {
            match self.v {
                Value::Nil => V::no_value(),
                v => V::new(v),
            }
        } else {
            self
        }
    }
}

#[derive(Clone, Copy)]
enum Cur<'a> {
    None,
    Node(&'a Node),
    Pipe(&'a Pipe),
    Cmd(&'a Command),
    Arg(&'a Arg),
    Var(&'a Variable),
    Tmpl(&'a TemplateCall),
}

impl Cur<'_> {
    fn pos(&self) -> Option<usize> {
        Some(match self {
            Cur::None => return None,
            Cur::Node(n) => match n {
                Node::Text(_) => 0,
                Node::Action(a) => a.pos,
                Node::If(b) | Node::Range(b) | Node::With(b) => b.pos,
                Node::Template(t) => t.pos,
                Node::Break(p) | Node::Continue(p) => *p,
            },
            Cur::Pipe(p) => p.pos,
            Cur::Cmd(c) => c.pos,
            Cur::Arg(a) => a.pos(),
            Cur::Var(v) => v.pos,
            Cur::Tmpl(t) => t.pos,
        })
    }

    fn context(&self) -> String {
        match self {
            Cur::None => String::new(),
            Cur::Node(n) => n.to_string(),
            Cur::Pipe(p) => p.to_string(),
            Cur::Cmd(c) => c.to_string(),
            Cur::Arg(a) => a.to_string(),
            Cur::Var(v) => v.to_string(),
            Cur::Tmpl(t) => match &t.pipe {
                None => format!("{{{{template {}}}}}", quote(&t.name)),
                Some(p) => format!("{{{{template {} {}}}}}", quote(&t.name), p),
            },
        }
    }
}

#[derive(PartialEq, Eq)]
enum Flow {
    Normal,
    Break,
    Continue,
}

type R<T> = Result<T, Error>;

pub(crate) struct State<'a> {
    set: &'a Templates,
    tree: &'a Tree,
    vars: Vec<(&'a str, V)>,
    cur: Cur<'a>,
    depth: usize,
    nesting: usize,
    steps: u64,
    pub out: String,
}

impl<'a> State<'a> {
    fn new(set: &'a Templates, tree: &'a Tree, nesting: usize) -> Self {
        State {
            set,
            tree,
            vars: Vec::new(),
            cur: Cur::None,
            depth: 0,
            nesting,
            steps: 0,
            out: String::new(),
        }
    }

    fn run(&mut self, data: Value) -> R<()> {
        if self.nesting > self.set.options.max_nesting {
            return Err(Error::Limit(format!(
                "exceeded maximum template nesting ({})",
                self.set.options.max_nesting
            )));
        }
        let dot = V::new(data);
        self.vars.push(("$", dot.clone()));
        let tree = self.tree;
        self.walk_list(&dot, &tree.root)?;
        Ok(())
    }

    fn errorf(&self, msg: impl Into<String>) -> Error {
        self.error_with(msg.into(), None)
    }

    fn error_with(&self, msg: String, call: Option<(String, Box<FuncError>)>) -> Error {
        let location = self.cur.pos().map(|p| {
            let (l, c) = self.tree.line_col(p);
            format!("{}:{}:{}", self.tree.parse_name, l, c)
        });
        Error::Exec(Box::new(ExecError {
            template: self.tree.name.clone(),
            location,
            context: self.cur.context(),
            msg,
            call,
        }))
    }

    fn write(&mut self, s: &str) -> R<()> {
        if self.out.len() + s.len() > self.set.options.max_output {
            return Err(Error::Limit(format!(
                "output exceeds {} bytes",
                self.set.options.max_output
            )));
        }
        self.out.push_str(s);
        Ok(())
    }

    fn step(&mut self) -> R<()> {
        if let Some(max) = self.set.options.max_steps {
            self.steps += 1;
            if self.steps > max {
                return Err(Error::Limit(format!("execution exceeded {max} steps")));
            }
        }
        Ok(())
    }

    fn walk_list(&mut self, dot: &V, list: &'a [Node]) -> R<Flow> {
        for n in list {
            let f = self.walk(dot, n)?;
            if f != Flow::Normal {
                return Ok(f);
            }
        }
        Ok(Flow::Normal)
    }

    fn walk(&mut self, dot: &V, node: &'a Node) -> R<Flow> {
        self.cur = Cur::Node(node);
        self.step()?;
        match node {
            Node::Text(t) => {
                self.write(t)?;
            }
            Node::Action(a) => {
                let val = self.eval_pipeline(dot, &a.pipe)?;
                if a.pipe.decl.is_empty() {
                    self.print_value(node, &val)?;
                }
            }
            Node::If(b) => return self.walk_if_or_with(false, dot, b),
            Node::With(b) => return self.walk_if_or_with(true, dot, b),
            Node::Range(b) => return self.walk_range(dot, b),
            Node::Template(t) => self.walk_template(dot, t)?,
            Node::Break(_) => return Ok(Flow::Break),
            Node::Continue(_) => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    fn walk_if_or_with(&mut self, with: bool, dot: &V, b: &'a Branch) -> R<Flow> {
        let mark = self.vars.len();
        let val = self.eval_pipeline(dot, &b.pipe)?;
        let truth = val.v.truth();
        let flow = if truth {
            if with {
                self.walk_list(&val, &b.list)?
            } else {
                self.walk_list(dot, &b.list)?
            }
        } else if let Some(e) = &b.else_list {
            self.walk_list(dot, e)?
        } else {
            Flow::Normal
        };
        self.vars.truncate(mark);
        Ok(flow)
    }

    fn one_iteration(&mut self, b: &'a Branch, mark: usize, index: V, elem: V) -> R<Flow> {
        self.step()?;
        let decl = &b.pipe.decl;
        if !decl.is_empty() {
            if b.pipe.is_assign {
                if decl.len() > 1 {
                    self.set_var(&decl[0].ident[0], index.clone())?;
                } else {
                    self.set_var(&decl[0].ident[0], elem.clone())?;
                }
            } else {
                let n = self.vars.len();
                self.vars[n - 1].1 = elem.clone();
            }
        }
        if decl.len() > 1 {
            if b.pipe.is_assign {
                self.set_var(&decl[1].ident[0], elem.clone())?;
            } else {
                let n = self.vars.len();
                self.vars[n - 2].1 = index;
            }
        }
        let f = self.walk_list(&elem, &b.list);
        self.vars.truncate(mark);
        f
    }

    fn walk_range(&mut self, dot: &V, b: &'a Branch) -> R<Flow> {
        self.cur = Cur::Pipe(&b.pipe);
        let outer = self.vars.len();
        let val = self.eval_pipeline(dot, &b.pipe)?;
        let mark = self.vars.len();
        let mut ran = false;
        macro_rules! iterate {
            ($idx:expr, $elem:expr) => {{
                ran = true;
                match self.one_iteration(b, mark, $idx, $elem)? {
                    Flow::Break => break,
                    _ => {}
                }
            }};
        }
        match &val.v {
            Value::List(l) => {
                let l = l.clone();
                #[allow(clippy::never_loop)]
                for (i, e) in l.iter().enumerate() {
                    iterate!(V::new(Value::Int(i as i64)), V::iface(e.clone()));
                }
            }
            Value::Bytes(bs) => {
                let bs = bs.clone();
                for (i, e) in bs.iter().enumerate() {
                    iterate!(V::new(Value::Int(i as i64)), V::new(Value::Byte(*e)));
                }
            }
            Value::Map(_) | Value::Object(_) if val.v.as_map().is_some() => {
                let m = val
                    .v
                    .as_map()
                    .map(|m| m.borrow().clone())
                    .unwrap_or_default();
                for (k, e) in m {
                    iterate!(V::new(Value::str(k)), V::iface(e));
                }
            }
            Value::Object(o) if o.as_list().is_some() => {
                let l = o.as_list().unwrap_or_default();
                for (i, e) in l.into_iter().enumerate() {
                    iterate!(V::new(Value::Int(i as i64)), V::new(e));
                }
            }
            Value::NoValue => {}
            Value::Int(_) | Value::Int64(_) | Value::Uint(_) | Value::Byte(_) => {
                if b.pipe.decl.len() > 1 {
                    return Err(self.errorf(format!(
                        "can't use {} to iterate over more than one variable",
                        val.v.to_go_string()
                    )));
                }
                match val.v {
                    Value::Int(n) => {
                        for i in 0..n.max(0) {
                            iterate!(V::new(Value::Int(i)), V::new(Value::Int(i)));
                        }
                    }
                    Value::Int64(n) => {
                        for i in 0..n.max(0) {
                            iterate!(V::new(Value::Int64(i)), V::new(Value::Int64(i)));
                        }
                    }
                    Value::Uint(n) => {
                        for i in 0..n {
                            iterate!(V::new(Value::Uint(i)), V::new(Value::Uint(i)));
                        }
                    }
                    Value::Byte(n) => {
                        for i in 0..n {
                            iterate!(V::new(Value::Byte(i)), V::new(Value::Byte(i)));
                        }
                    }
                    _ => {}
                }
            }
            other => {
                return Err(
                    self.errorf(format!("range can't iterate over {}", other.to_go_string()))
                );
            }
        }
        let flow = if !ran && let Some(e) = &b.else_list {
            self.walk_list(dot, e)?
        } else {
            Flow::Normal
        };
        self.vars.truncate(outer);
        // break/continue end at their range
        let _ = flow;
        Ok(Flow::Normal)
    }

    fn walk_template(&mut self, dot: &V, t: &'a TemplateCall) -> R<()> {
        self.cur = Cur::Tmpl(t);
        let set = self.set;
        let Some(tmpl) = set.trees.get(t.name.as_str()) else {
            return Err(self.errorf(format!("template {} not defined", quote(&t.name))));
        };
        if self.depth >= set.options.max_depth {
            return Err(self.errorf(format!(
                "exceeded maximum template depth ({})",
                set.options.max_depth
            )));
        }
        if self.depth + self.nesting >= set.options.max_nesting {
            return Err(Error::Limit(format!(
                "exceeded maximum template nesting ({})",
                set.options.max_nesting
            )));
        }
        let newdot = match &t.pipe {
            Some(p) => self.eval_pipeline(dot, p)?,
            None => V::no_value(),
        };
        let tree: &'a Tree = tmpl;
        let saved_tree = std::mem::replace(&mut self.tree, tree);
        let saved_vars = std::mem::replace(&mut self.vars, vec![("$", newdot.clone())]);
        self.depth += 1;
        let r = self.walk_list(&newdot, &tree.root);
        self.depth -= 1;
        self.vars = saved_vars;
        self.tree = saved_tree;
        r.map(|_| ())
    }

    fn print_value(&mut self, node: &'a Node, v: &V) -> R<()> {
        self.cur = Cur::Node(node);
        match &v.v {
            Value::NoValue => self.write("<no value>"),
            Value::Func(_) => {
                Err(self.errorf(format!("can't print {} of type {}", node, v.v.type_name())))
            }
            other => {
                let s = crate::gofmt::sprint(std::slice::from_ref(other));
                self.write(&s)
            }
        }
    }

    fn set_var(&mut self, name: &str, v: V) -> R<()> {
        for i in (0..self.vars.len()).rev() {
            if self.vars[i].0 == name {
                self.vars[i].1 = v;
                return Ok(());
            }
        }
        Err(self.errorf(format!("undefined variable: {name}")))
    }

    fn var_value(&self, name: &str) -> R<V> {
        for i in (0..self.vars.len()).rev() {
            if self.vars[i].0 == name {
                return Ok(self.vars[i].1.clone());
            }
        }
        Err(self.errorf(format!("undefined variable: {name}")))
    }

    fn eval_pipeline(&mut self, dot: &V, pipe: &'a Pipe) -> R<V> {
        self.cur = Cur::Pipe(pipe);
        let mut value: Option<V> = None;
        for cmd in &pipe.cmds {
            let v = self.eval_command(dot, cmd, value.take())?;
            value = Some(v.dig());
        }
        let value = value.unwrap_or_else(V::no_value);
        for var in &pipe.decl {
            if pipe.is_assign {
                self.set_var(&var.ident[0], value.clone())?;
            } else {
                self.vars.push((&var.ident[0], value.clone()));
            }
        }
        Ok(value)
    }

    fn not_a_function(&self, args: &[Arg], fin: &Option<V>) -> R<()> {
        if args.len() > 1 || fin.is_some() {
            return Err(self.errorf(format!("can't give argument to non-function {}", args[0])));
        }
        Ok(())
    }

    fn eval_command(&mut self, dot: &V, cmd: &'a Command, fin: Option<V>) -> R<V> {
        let first = &cmd.args[0];
        match first {
            Arg::Field { ident, .. } => {
                return self.eval_field_node(dot, first, ident, &cmd.args, fin);
            }
            Arg::Chain { node, field, .. } => {
                return self.eval_chain_node(dot, first, node, field, &cmd.args, fin);
            }
            Arg::Ident { name, .. } => {
                return self.eval_function(dot, first, name, Cur::Cmd(cmd), &cmd.args, fin);
            }
            Arg::Pipe(p) => {
                self.not_a_function(&cmd.args, &fin)?;
                return self.eval_pipeline(dot, p);
            }
            Arg::Var(v) => return self.eval_variable_node(dot, v, &cmd.args, fin),
            _ => {}
        }
        self.cur = Cur::Arg(first);
        self.not_a_function(&cmd.args, &fin)?;
        match first {
            Arg::Bool(_, b) => Ok(V::new(Value::Bool(*b))),
            Arg::Dot(_) => Ok(dot.clone()),
            Arg::Nil(_) => Err(self.errorf("nil is not a command")),
            Arg::Number(n) => self.ideal_constant(first, n),
            Arg::Str { text, .. } => Ok(V::new(Value::String(text.clone()))),
            _ => Err(self.errorf(format!(
                "can't evaluate command {}",
                quote(&first.to_string())
            ))),
        }
    }

    fn ideal_constant(&mut self, arg: &'a Arg, n: &parse::Number) -> R<V> {
        self.cur = Cur::Arg(arg);
        if n.is_complex {
            return Err(self.errorf(format!("complex constant {} is not supported", n.text)));
        }
        let t = &n.text;
        let is_hex_int = t.len() > 2
            && t.starts_with('0')
            && (t.as_bytes()[1] == b'x' || t.as_bytes()[1] == b'X')
            && !t.contains(['p', 'P']);
        let is_rune = t.starts_with('\'');
        if n.is_float && !is_hex_int && !is_rune && t.contains(['.', 'e', 'E', 'p', 'P']) {
            return Ok(V::new(Value::Float(n.float)));
        }
        if n.is_int {
            return Ok(V::new(Value::Int(n.int)));
        }
        if n.is_uint {
            return Err(self.errorf(format!("{t} overflows int")));
        }
        Ok(V::no_value())
    }

    fn eval_field_node(
        &mut self,
        dot: &V,
        node: &'a Arg,
        ident: &'a [String],
        args: &'a [Arg],
        fin: Option<V>,
    ) -> R<V> {
        self.cur = Cur::Arg(node);
        self.eval_field_chain(dot, dot.clone(), ident, args, fin)
    }

    fn eval_chain_node(
        &mut self,
        dot: &V,
        chain: &'a Arg,
        node: &'a Arg,
        field: &'a [String],
        args: &'a [Arg],
        fin: Option<V>,
    ) -> R<V> {
        self.cur = Cur::Arg(chain);
        if let Arg::Nil(_) = node {
            return Err(self.errorf(format!("indirection through explicit nil in {chain}")));
        }
        let pipe = self.eval_arg_untyped(dot, node)?;
        self.eval_field_chain(dot, pipe, field, args, fin)
    }

    fn eval_variable_node(
        &mut self,
        dot: &V,
        var: &'a Variable,
        args: &'a [Arg],
        fin: Option<V>,
    ) -> R<V> {
        self.cur = Cur::Var(var);
        let value = self.var_value(&var.ident[0])?;
        if var.ident.len() == 1 {
            self.not_a_function(args, &fin)?;
            return Ok(value);
        }
        self.eval_field_chain(dot, value, &var.ident[1..], args, fin)
    }

    fn eval_field_chain(
        &mut self,
        dot: &V,
        mut receiver: V,
        ident: &'a [String],
        args: &'a [Arg],
        fin: Option<V>,
    ) -> R<V> {
        let n = ident.len();
        for name in &ident[..n - 1] {
            receiver = self.eval_field(dot, name, &[], None, receiver)?;
        }
        self.eval_field(dot, &ident[n - 1], args, fin, receiver)
    }

    fn eval_field(
        &mut self,
        dot: &V,
        name: &str,
        args: &'a [Arg],
        fin: Option<V>,
        receiver: V,
    ) -> R<V> {
        if let Value::NoValue = receiver.v {
            if self.set.options.missing_key == MissingKey::Error {
                return Err(self.errorf(format!("nil data; no entry for key {}", quote(name))));
            }
            return Ok(V::no_value());
        }
        let typ = receiver.static_type();
        if let Value::Nil = receiver.v {
            return Err(self.errorf(format!("nil pointer evaluating {typ}.{name}")));
        }
        if let Value::Object(o) = &receiver.v
            && let Some(m) = o.method(name)
        {
            let cur = self.cur;
            return self.eval_call(dot, &m, false, cur, name, args, fin);
        }
        let has_args = args.len() > 1 || fin.is_some();
        let field = match &receiver.v {
            Value::Object(o) => o.try_field(name).map_err(|e| self.errorf(e.to_string()))?,
            _ => None,
        };
        if let Some(f) = field {
            if has_args {
                return Err(self.errorf(format!(
                    "{name} has arguments but cannot be invoked as function"
                )));
            }
            return Ok(V::new(f));
        }
        if let Some(m) = receiver.v.as_map() {
            if has_args {
                return Err(self.errorf(format!("{name} is not a method but has arguments")));
            }
            let found = m.borrow().get(name).cloned();
            return match found {
                Some(v) => Ok(V::iface(v)),
                None => match self.set.options.missing_key {
                    MissingKey::Default => Ok(V::no_value()),
                    MissingKey::Zero => Ok(V::iface(Value::Nil)),
                    MissingKey::Error => {
                        Err(self.errorf(format!("map has no entry for key {}", quote(name))))
                    }
                },
            };
        }
        Err(self.errorf(format!("can't evaluate field {name} in type {typ}")))
    }

    fn eval_function(
        &mut self,
        dot: &V,
        ident: &'a Arg,
        name: &str,
        cmd: Cur<'a>,
        args: &'a [Arg],
        fin: Option<V>,
    ) -> R<V> {
        self.cur = Cur::Arg(ident);
        let set = self.set;
        let (f, builtin) = match set.funcs.get(name) {
            Some(f) => (f, false),
            None => match set.builtins.get(name) {
                Some(f) => (f, true),
                None => {
                    return Err(self.errorf(format!("{} is not a defined function", quote(name))));
                }
            },
        };
        self.eval_call(dot, f, builtin, cmd, name, args, fin)
    }

    #[allow(clippy::too_many_arguments)]
    fn eval_call(
        &mut self,
        dot: &V,
        f: &Func,
        builtin: bool,
        node: Cur<'a>,
        name: &str,
        args: &'a [Arg],
        fin: Option<V>,
    ) -> R<V> {
        let args: &'a [Arg] = if args.is_empty() { args } else { &args[1..] };
        let params = f.params();
        let variadic = f.variadic();
        let num_in = args.len() + usize::from(fin.is_some());
        let num_fixed = if variadic.is_some() {
            if num_in < params.len() {
                return Err(self.errorf(format!(
                    "wrong number of args for {name}: want at least {} got {}",
                    params.len(),
                    args.len()
                )));
            }
            params.len()
        } else {
            if num_in != params.len() {
                return Err(self.errorf(format!(
                    "wrong number of args for {name}: want {} got {num_in}",
                    params.len()
                )));
            }
            args.len()
        };
        if builtin && (name == "and" || name == "or") {
            let want = name == "or";
            let mut v = V::no_value();
            for a in args {
                v = self.eval_arg(dot, Param::Raw, a)?;
                if v.v.truth() == want {
                    return Ok(v);
                }
            }
            if let Some(fv) = fin {
                v = self.validate_type(fv, Param::Raw)?;
            }
            return Ok(v);
        }
        let mut argv: Vec<V> = Vec::with_capacity(num_in);
        let mut i = 0;
        while i < num_fixed && i < args.len() {
            argv.push(self.eval_arg(dot, params[i], &args[i])?);
            i += 1;
        }
        if let Some(vp) = variadic {
            while i < args.len() {
                argv.push(self.eval_arg(dot, vp, &args[i])?);
                i += 1;
            }
        }
        if let Some(fv) = fin {
            let t = match variadic {
                Some(vp) => {
                    if num_in - 1 < num_fixed {
                        params[num_in - 1]
                    } else {
                        vp
                    }
                }
                None => params[params.len() - 1],
            };
            argv.push(self.validate_type(fv, t)?);
        }
        let result = if builtin {
            let callee = if name == "call" {
                args.first().map(|a| a.to_string()).unwrap_or_default()
            } else {
                String::new()
            };
            builtins::call(self, name, argv, &callee)
        } else {
            let vals: Vec<Value> = argv.into_iter().map(|v| v.v).collect();
            f.call(self, vals).map(|v| {
                let nil = v.is_nil();
                V { v, iface: nil }
            })
        };
        match result {
            Ok(v) => Ok(v),
            Err(e) => {
                self.cur = node;
                let msg = format!("error calling {name}: {e}");
                Err(self.error_with(msg, Some((name.to_string(), Box::new(e)))))
            }
        }
    }

    fn validate_type(&mut self, v: V, p: Param) -> R<V> {
        if let Value::NoValue = v.v {
            if p == Param::Raw {
                return Ok(v);
            }
            if p.can_be_nil() {
                return Ok(V::iface(Value::Nil));
            }
            return Err(self.errorf(format!("invalid value; expected {}", p.go_name())));
        }
        match p {
            Param::Raw | Param::Any => Ok(v),
            _ => {
                if p.accepts(&v.v) {
                    return Ok(V::new(v.v));
                }
                let got = if let Value::Nil = v.v {
                    "interface {}".to_string()
                } else {
                    v.v.type_name()
                };
                Err(self.errorf(format!(
                    "wrong type for value; expected {}; got {}",
                    p.go_name(),
                    got
                )))
            }
        }
    }

    fn eval_arg_untyped(&mut self, dot: &V, n: &'a Arg) -> R<V> {
        self.cur = Cur::Arg(n);
        match n {
            Arg::Dot(_) => Ok(dot.clone()),
            Arg::Field { ident, .. } => {
                self.eval_field_node(dot, n, ident, std::slice::from_ref(n), None)
            }
            Arg::Var(v) => self.eval_variable_node(dot, v, &[], None),
            Arg::Pipe(p) => self.eval_pipeline(dot, p),
            Arg::Ident { name, .. } => {
                self.eval_function(dot, n, name, Cur::Arg(n), std::slice::from_ref(n), None)
            }
            Arg::Chain { node, field, .. } => self.eval_chain_node(dot, n, node, field, &[], None),
            _ => self.eval_empty_interface(dot, n),
        }
    }

    fn eval_arg(&mut self, dot: &V, p: Param, n: &'a Arg) -> R<V> {
        self.cur = Cur::Arg(n);
        match n {
            Arg::Dot(_) => return self.validate_type(dot.clone(), p),
            Arg::Nil(_) => {
                if p.can_be_nil() {
                    return Ok(if p == Param::Raw {
                        V::no_value()
                    } else {
                        V::iface(Value::Nil)
                    });
                }
                return Err(self.errorf(format!("cannot assign nil to {}", p.go_name())));
            }
            Arg::Field { ident, .. } => {
                let v = self.eval_field_node(dot, n, ident, std::slice::from_ref(n), None)?;
                return self.validate_type(v, p);
            }
            Arg::Var(var) => {
                let v = self.eval_variable_node(dot, var, &[], None)?;
                return self.validate_type(v, p);
            }
            Arg::Pipe(pipe) => {
                let v = self.eval_pipeline(dot, pipe)?;
                return self.validate_type(v, p);
            }
            Arg::Ident { name, .. } => {
                let v =
                    self.eval_function(dot, n, name, Cur::Arg(n), std::slice::from_ref(n), None)?;
                return self.validate_type(v, p);
            }
            Arg::Chain { node, field, .. } => {
                let v = self.eval_chain_node(dot, n, node, field, &[], None)?;
                return self.validate_type(v, p);
            }
            _ => {}
        }
        match p {
            Param::Bool => match n {
                Arg::Bool(_, b) => Ok(V::new(Value::Bool(*b))),
                _ => Err(self.errorf(format!("expected bool; found {n}"))),
            },
            Param::Float64 => match n {
                Arg::Number(num) if num.is_float => Ok(V::new(Value::Float(num.float))),
                _ => Err(self.errorf(format!("expected float; found {n}"))),
            },
            Param::Int | Param::Int64 => match n {
                Arg::Number(num) if num.is_int => Ok(V::new(if p == Param::Int {
                    Value::Int(num.int)
                } else {
                    Value::Int64(num.int)
                })),
                _ => Err(self.errorf(format!("expected integer; found {n}"))),
            },
            Param::Uint64 | Param::Uint32 => match n {
                // reflect's SetUint truncates to the parameter's width
                Arg::Number(num) if num.is_uint => Ok(V::new(Value::Uint(if p == Param::Uint32 {
                    u64::from(num.uint as u32)
                } else {
                    num.uint
                }))),
                _ => Err(self.errorf(format!("expected unsigned integer; found {n}"))),
            },
            Param::String => match n {
                Arg::Str { text, .. } => Ok(V::new(Value::String(text.clone()))),
                _ => Err(self.errorf(format!("expected string; found {n}"))),
            },
            Param::Any | Param::Raw => self.eval_empty_interface(dot, n),
            Param::Map | Param::List | Param::Bytes | Param::Object(_) => {
                Err(self.errorf(format!("can't handle {n} for arg of type {}", p.go_name())))
            }
        }
    }

    fn eval_empty_interface(&mut self, dot: &V, n: &'a Arg) -> R<V> {
        self.cur = Cur::Arg(n);
        match n {
            Arg::Bool(_, b) => Ok(V::new(Value::Bool(*b))),
            Arg::Dot(_) => Ok(dot.clone()),
            Arg::Field { ident, .. } => self.eval_field_node(dot, n, ident, &[], None),
            Arg::Ident { name, .. } => {
                self.eval_function(dot, n, name, Cur::Arg(n), std::slice::from_ref(n), None)
            }
            Arg::Nil(_) => Err(self.errorf("evalEmptyInterface: nil (can't happen)")),
            Arg::Number(num) => self.ideal_constant(n, num),
            Arg::Str { text, .. } => Ok(V::new(Value::String(text.clone()))),
            Arg::Var(v) => self.eval_variable_node(dot, v, &[], None),
            Arg::Pipe(p) => self.eval_pipeline(dot, p),
            Arg::Chain { .. } => Err(self.errorf(format!(
                "can't handle assignment of {n} to empty interface argument"
            ))),
        }
    }
}

impl Env for State<'_> {
    fn execute_template(&mut self, name: &str, data: Value) -> Result<String, Error> {
        self.set
            .execute_nested(name, data, self.nesting + self.depth + 1)
    }

    /// Go's `parent.Clone()` + `t.New(name).Parse(text)` + `t.Execute`: the text runs in a copy
    /// of the set (its definitions stay there), and what runs is the tree just parsed, even when
    /// it is empty and so was not installed over a defined template of the same name (Go's
    /// `AddParseTree` gives the new template its tree either way).
    fn execute_text(&mut self, name: &str, text: &str, data: Value) -> Result<String, Error> {
        let mut set = self.set.clone();
        // the same text parses to the same trees (trees are not changed once parsed)
        let key = (name.to_string(), text.to_string());
        let cached = set.parsed.borrow().get(&key).cloned();
        let trees = match cached {
            Some(t) => t,
            None => {
                let funcs = set.funcs.clone();
                let builtins = set.builtins.clone();
                let has = move |n: &str| funcs.contains_key(n) || builtins.contains_key(n);
                let parsed = parse::parse(name, text, &set.left, &set.right, &has)?;
                let t: Rc<[Rc<Tree>]> = parsed.into_iter().map(Rc::new).collect();
                set.parsed.borrow_mut().insert(key, t.clone());
                t
            }
        };
        let Some(tree) = set.associate(trees.iter().cloned(), name) else {
            return Err(Error::NoTemplate {
                name: name.to_string(),
                parent: set.root_name.clone(),
            });
        };
        let mut st = State::new(&set, &tree, self.nesting + self.depth + 1);
        st.run(data)?;
        Ok(st.out)
    }

    fn current_template(&self) -> String {
        self.tree.name.clone()
    }
}
