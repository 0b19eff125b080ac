//! The evaluator: walks the tree with a data value and writes the output.

use std::collections::{BTreeMap, HashMap};

use super::Pos;
use super::funcs;
use super::parse::{Arg, Cmd, Node, Pipe};
use super::value::Value;

/// Why execution stopped.
#[derive(Debug)]
pub(crate) enum ExecError {
    /// A failure at a position.
    Failed(String, Pos),
    /// A missing value was used (`key` names it).
    Missing { key: String, pos: Pos },
}

pub(crate) type Res<T> = Result<T, ExecError>;

pub(crate) fn fail<T>(msg: impl Into<String>, pos: Pos) -> Res<T> {
    Err(ExecError::Failed(msg.into(), pos))
}

enum Flow {
    Normal,
    Break,
    Continue,
}

/// Execution state.
pub(crate) struct Exec<'a> {
    pub defines: &'a HashMap<String, Vec<Node>>,
    pub env: &'a BTreeMap<String, String>,
    pub allow_missing: bool,
    vars: Vec<(String, Value)>,
    pub out: String,
    depth: usize,
}

impl<'a> Exec<'a> {
    pub fn new(
        defines: &'a HashMap<String, Vec<Node>>,
        env: &'a BTreeMap<String, String>,
        allow_missing: bool,
        root: &Value,
    ) -> Self {
        Self {
            defines,
            env,
            allow_missing,
            vars: vec![(String::new(), root.clone())],
            out: String::new(),
            depth: 0,
        }
    }

    pub fn run(&mut self, nodes: &[Node], dot: &Value) -> Res<()> {
        self.walk(nodes, dot).map(drop)
    }

    fn walk(&mut self, nodes: &[Node], dot: &Value) -> Res<Flow> {
        for node in nodes {
            match self.node(node, dot)? {
                Flow::Normal => {}
                other => return Ok(other),
            }
        }
        Ok(Flow::Normal)
    }

    /// Runs `nodes` in a variable scope of their own.
    fn scoped(&mut self, nodes: &[Node], dot: &Value) -> Res<Flow> {
        let mark = self.vars.len();
        let flow = self.walk(nodes, dot);
        self.vars.truncate(mark);
        flow
    }

    fn node(&mut self, node: &Node, dot: &Value) -> Res<Flow> {
        match node {
            Node::Text(t) => self.out.push_str(t),
            Node::Action(pipe) => {
                let value = self.pipe(pipe, dot)?;
                if pipe.decl.is_empty() {
                    let value = self.usable(value)?;
                    self.out.push_str(&value.to_string());
                }
            }
            Node::If {
                pipe,
                then,
                otherwise,
            } => {
                let mark = self.vars.len();
                let cond = self.pipe(pipe, dot)?;
                let flow = if cond.truthy() {
                    self.scoped(then, dot)
                } else if let Some(o) = otherwise {
                    self.scoped(o, dot)
                } else {
                    Ok(Flow::Normal)
                };
                self.vars.truncate(mark);
                return flow;
            }
            Node::With {
                pipe,
                body,
                otherwise,
            } => {
                let mark = self.vars.len();
                let value = self.pipe(pipe, dot)?;
                let flow = if value.truthy() {
                    self.scoped(body, &value)
                } else if let Some(o) = otherwise {
                    self.scoped(o, dot)
                } else {
                    Ok(Flow::Normal)
                };
                self.vars.truncate(mark);
                return flow;
            }
            Node::Range {
                pipe,
                body,
                otherwise,
            } => return self.range(pipe, body, otherwise.as_deref(), dot),
            Node::Break => return Ok(Flow::Break),
            Node::Continue => return Ok(Flow::Continue),
            Node::Template { pos, name, pipe } => {
                let Some(body) = self.defines.get(name) else {
                    return fail(format!("no such template {name:?}"), *pos);
                };
                if self.depth > 1000 {
                    return fail("exceeded maximum template depth (1000)", *pos);
                }
                let value = match pipe {
                    Some(p) => self.pipe(p, dot)?,
                    None => Value::Nil,
                };
                let saved = std::mem::replace(&mut self.vars, vec![(String::new(), value.clone())]);
                self.depth += 1;
                let result = self.walk(body, &value);
                self.depth -= 1;
                self.vars = saved;
                result?;
            }
        }
        Ok(Flow::Normal)
    }

    fn range(
        &mut self,
        pipe: &Pipe,
        body: &[Node],
        otherwise: Option<&[Node]>,
        dot: &Value,
    ) -> Res<Flow> {
        let mark = self.vars.len();
        let mut no_decl = pipe.clone();
        no_decl.decl.clear();
        let value = self.pipe(&no_decl, dot)?;
        let value = self.usable(value)?;
        let items: Vec<(Value, Value)> = match value {
            Value::List(l) => l
                .into_iter()
                .enumerate()
                .map(|(i, v)| (Value::Int(i as i64), v))
                .collect(),
            Value::Map(m) => m.into_iter().map(|(k, v)| (Value::Str(k), v)).collect(),
            Value::Int(n) => (0..n.max(0))
                .map(|i| (Value::Int(i), Value::Int(i)))
                .collect(),
            Value::Nil | Value::Missing { .. } => Vec::new(),
            other => {
                return fail(format!("range can't iterate over {other}"), pipe.pos);
            }
        };
        if items.is_empty() {
            let flow = match otherwise {
                Some(o) => self.scoped(o, dot)?,
                None => Flow::Normal,
            };
            self.vars.truncate(mark);
            return Ok(match flow {
                Flow::Normal => Flow::Normal,
                // break/continue inside an else belong to an outer range.
                other => other,
            });
        }
        for (key, elem) in items {
            let inner = self.vars.len();
            match pipe.decl.as_slice() {
                [] => {}
                [v] => self.vars.push((v.clone(), elem.clone())),
                [k, v, ..] => {
                    self.vars.push((k.clone(), key));
                    self.vars.push((v.clone(), elem.clone()));
                }
            }
            let flow = self.scoped(body, &elem)?;
            self.vars.truncate(inner);
            if let Flow::Break = flow {
                break;
            }
        }
        self.vars.truncate(mark);
        Ok(Flow::Normal)
    }

    /// A value that may be output or passed on: missing values are errors unless allowed.
    pub fn usable(&self, value: Value) -> Res<Value> {
        match value {
            Value::Missing { key, pos } if !self.allow_missing => {
                Err(ExecError::Missing { key, pos })
            }
            Value::Missing { .. } => Ok(Value::Nil),
            other => Ok(other),
        }
    }

    fn pipe(&mut self, pipe: &Pipe, dot: &Value) -> Res<Value> {
        let mut value = None;
        for cmd in &pipe.cmds {
            value = Some(self.cmd(cmd, dot, value)?);
        }
        let value = value.unwrap_or(Value::Nil);
        match (pipe.decl.first(), pipe.assign) {
            (None, _) => {}
            (Some(name), false) => self.vars.push((name.clone(), value.clone())),
            (Some(name), true) => match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                Some(slot) => slot.1 = value.clone(),
                None => return fail(format!("undefined variable: ${name}"), pipe.pos),
            },
        }
        Ok(value)
    }

    fn cmd(&mut self, cmd: &Cmd, dot: &Value, last: Option<Value>) -> Res<Value> {
        let first = &cmd.args[0];
        if let Arg::Func { pos, name } = first {
            return self.call(name, &cmd.args[1..], last, dot, *pos);
        }
        if cmd.args.len() > 1 || last.is_some() {
            return fail(
                "can't give argument to non-function",
                cmd.args.get(1).map(Arg::pos).unwrap_or(cmd.pos),
            );
        }
        self.arg(first, dot)
    }

    fn call(
        &mut self,
        name: &str,
        args: &[Arg],
        last: Option<Value>,
        dot: &Value,
        pos: Pos,
    ) -> Res<Value> {
        if !funcs::exists(name) {
            return fail(format!("function {name:?} not defined"), pos);
        }
        // `and` and `or` stop at the first argument that decides the result.
        if name == "and" || name == "or" {
            let total = args.len() + usize::from(last.is_some());
            if total < 1 {
                return fail(
                    format!("wrong number of args for {name}: want at least 1 got 0"),
                    pos,
                );
            }
            let mut result = Value::Nil;
            for a in args {
                result = self.arg(a, dot)?;
                if result.truthy() != (name == "and") {
                    return Ok(result);
                }
            }
            if let Some(l) = last {
                result = l;
            }
            return Ok(result);
        }
        let mut values = Vec::with_capacity(args.len() + 1);
        for a in args {
            values.push(self.arg(a, dot)?);
        }
        values.extend(last);
        if !funcs::tolerates_missing(name) {
            values = values
                .into_iter()
                .map(|v| self.usable(v))
                .collect::<Res<_>>()?;
        }
        funcs::call(self, name, values, pos)
    }

    fn arg(&mut self, arg: &Arg, dot: &Value) -> Res<Value> {
        match arg {
            Arg::Dot(_) => Ok(dot.clone()),
            Arg::Lit { value, .. } => Ok(value.clone()),
            Arg::Nil(pos) => fail("nil is not a command", *pos),
            Arg::Func { pos, name } => self.call(name, &[], None, dot, *pos),
            Arg::Field { pos, path } => self.fields(dot.clone(), path, String::new(), *pos),
            Arg::Var { pos, name, path } => {
                let Some((_, value)) = self.vars.iter().rev().find(|(n, _)| n == name) else {
                    return fail(format!("undefined variable: ${name}"), *pos);
                };
                let value = value.clone();
                self.fields(value, path, format!("${name}"), *pos)
            }
            Arg::Chain { pos, pipe, path } => {
                let value = self.pipe(pipe, dot)?;
                self.fields(value, path, "(...)".to_owned(), *pos)
            }
        }
    }

    fn fields(&self, mut value: Value, path: &[String], mut shown: String, pos: Pos) -> Res<Value> {
        for field in path {
            shown.push('.');
            shown.push_str(field);
            value = match value {
                Value::Map(mut m) => match m.remove(field) {
                    Some(v) => v,
                    None => Value::Missing {
                        key: shown.clone(),
                        pos,
                    },
                },
                missing @ Value::Missing { .. } if self.allow_missing => missing,
                Value::Missing { key, pos } => return Err(ExecError::Missing { key, pos }),
                Value::Nil => {
                    return fail(
                        format!("nil pointer evaluating interface {{}}.{field}"),
                        pos,
                    );
                }
                other => {
                    return fail(
                        format!("can't evaluate field {field} in type {}", other.type_name()),
                        pos,
                    );
                }
            };
        }
        Ok(value)
    }
}
