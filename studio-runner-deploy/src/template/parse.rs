//! The parser: pieces from the lexer into a tree of nodes.

use super::Pos;
use super::lex::{Piece, Tok, Token};
use super::value::Value;

/// A node of the template tree.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Text(String),
    Action(Pipe),
    If {
        pipe: Pipe,
        then: Vec<Node>,
        otherwise: Option<Vec<Node>>,
    },
    Range {
        pipe: Pipe,
        body: Vec<Node>,
        otherwise: Option<Vec<Node>>,
    },
    With {
        pipe: Pipe,
        body: Vec<Node>,
        otherwise: Option<Vec<Node>>,
    },
    Break,
    Continue,
    Template {
        pos: Pos,
        name: String,
        pipe: Option<Pipe>,
    },
}

/// A pipeline: optional variable declarations, then commands joined by `|`.
#[derive(Debug, Clone)]
pub(crate) struct Pipe {
    pub pos: Pos,
    pub decl: Vec<String>,
    pub assign: bool,
    pub cmds: Vec<Cmd>,
}

/// A command: a function (or operand) and its arguments.
#[derive(Debug, Clone)]
pub(crate) struct Cmd {
    pub pos: Pos,
    pub args: Vec<Arg>,
}

/// An operand.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    Field {
        pos: Pos,
        path: Vec<String>,
    },
    Var {
        pos: Pos,
        name: String,
        path: Vec<String>,
    },
    Dot(Pos),
    Func {
        pos: Pos,
        name: String,
    },
    Lit {
        pos: Pos,
        value: Value,
    },
    Nil(Pos),
    Chain {
        pos: Pos,
        pipe: Box<Pipe>,
        path: Vec<String>,
    },
}

impl Arg {
    pub fn pos(&self) -> Pos {
        match self {
            Arg::Field { pos, .. }
            | Arg::Var { pos, .. }
            | Arg::Dot(pos)
            | Arg::Func { pos, .. }
            | Arg::Lit { pos, .. }
            | Arg::Nil(pos)
            | Arg::Chain { pos, .. } => *pos,
        }
    }
}

/// A parse error: message and offset.
pub(crate) type ParseError = (String, Pos);

/// The parsed template: the main list and the `define`d templates.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub root: Vec<Node>,
    pub defines: Vec<(String, Vec<Node>)>,
}

/// Parses the lexed pieces.
pub(crate) fn parse(pieces: Vec<Piece>) -> Result<Parsed, ParseError> {
    let mut p = TreeParser {
        pieces,
        i: 0,
        defines: Vec::new(),
        range_depth: 0,
    };
    let (root, end) = p.list()?;
    if let Some((word, pos, _)) = end {
        return Err((format!("unexpected {{{{{word}}}}}"), pos));
    }
    Ok(Parsed {
        root,
        defines: p.defines,
    })
}

struct TreeParser {
    pieces: Vec<Piece>,
    i: usize,
    defines: Vec<(String, Vec<Node>)>,
    range_depth: usize,
}

/// How a list ended: `end` or `else` (with the rest of the else action's tokens).
type ListEnd = Option<(String, Pos, Vec<Token>)>;

fn strip_spaces(tokens: Vec<Token>) -> Vec<Token> {
    let mut t = tokens;
    while t.first().is_some_and(|t| t.tok == Tok::Space) {
        t.remove(0);
    }
    while t.last().is_some_and(|t| t.tok == Tok::Space) {
        t.pop();
    }
    t
}

impl TreeParser {
    /// Parses nodes until `{{end}}`, `{{else ...}}` or the end of input.
    fn list(&mut self) -> Result<(Vec<Node>, ListEnd), ParseError> {
        let mut nodes = Vec::new();
        while self.i < self.pieces.len() {
            let piece = std::mem::replace(&mut self.pieces[self.i], Piece::Text(String::new()));
            self.i += 1;
            let (tokens, pos) = match piece {
                Piece::Text(t) => {
                    nodes.push(Node::Text(t));
                    continue;
                }
                Piece::Action(tokens, pos) => (strip_spaces(tokens), pos),
            };
            let keyword = match tokens.first().map(|t| &t.tok) {
                Some(Tok::Ident(w)) => w.clone(),
                None => return Err(("missing value for command".to_owned(), pos)),
                _ => String::new(),
            };
            let rest = || strip_spaces(tokens[1..].to_vec());
            match keyword.as_str() {
                "end" => {
                    if tokens.len() > 1 {
                        return Err(("unexpected tokens after end".to_owned(), tokens[1].pos));
                    }
                    return Ok((nodes, Some(("end".to_owned(), pos, Vec::new()))));
                }
                "else" => return Ok((nodes, Some(("else".to_owned(), pos, rest())))),
                "if" | "with" => nodes.push(self.branch(&keyword, rest(), pos)?),
                "range" => {
                    let pipe = pipeline(rest(), pos, true)?;
                    self.range_depth += 1;
                    let (body, otherwise) = self.body_and_else("range", pos)?;
                    self.range_depth -= 1;
                    nodes.push(Node::Range {
                        pipe,
                        body,
                        otherwise,
                    });
                }
                "break" | "continue" => {
                    if self.range_depth == 0 {
                        return Err((format!("{{{{{keyword}}}}} outside {{{{range}}}}"), pos));
                    }
                    nodes.push(if keyword == "break" {
                        Node::Break
                    } else {
                        Node::Continue
                    });
                }
                "define" => {
                    let r = rest();
                    let Some(Token {
                        tok: Tok::Str(name),
                        ..
                    }) = r.first()
                    else {
                        return Err(("define needs a quoted name".to_owned(), pos));
                    };
                    let name = name.clone();
                    let (body, end) = self.list()?;
                    match end {
                        Some((w, _, _)) if w == "end" => self.defines.push((name, body)),
                        Some((w, p, _)) => return Err((format!("unexpected {{{{{w}}}}}"), p)),
                        None => return Err(("unexpected EOF in define".to_owned(), pos)),
                    }
                }
                "template" => {
                    let r = rest();
                    let Some(Token {
                        tok: Tok::Str(name),
                        ..
                    }) = r.first()
                    else {
                        return Err(("template needs a quoted name".to_owned(), pos));
                    };
                    let arg = strip_spaces(r[1..].to_vec());
                    let pipe = if arg.is_empty() {
                        None
                    } else {
                        Some(pipeline(arg, pos, false)?)
                    };
                    nodes.push(Node::Template {
                        pos,
                        name: name.clone(),
                        pipe,
                    });
                }
                "block" => return Err(("{{block}} is not supported".to_owned(), pos)),
                _ => nodes.push(Node::Action(pipeline(tokens, pos, false)?)),
            }
        }
        Ok((nodes, None))
    }

    /// `if`/`with`: the condition, the body and an optional else (or `else if`/`else with`).
    fn branch(&mut self, keyword: &str, tokens: Vec<Token>, pos: Pos) -> Result<Node, ParseError> {
        let pipe = pipeline(tokens, pos, false)?;
        let (body, otherwise) = self.body_and_else(keyword, pos)?;
        Ok(if keyword == "if" {
            Node::If {
                pipe,
                then: body,
                otherwise,
            }
        } else {
            Node::With {
                pipe,
                body,
                otherwise,
            }
        })
    }

    fn body_and_else(
        &mut self,
        keyword: &str,
        pos: Pos,
    ) -> Result<(Vec<Node>, Option<Vec<Node>>), ParseError> {
        let (body, end) = self.list()?;
        match end {
            None => Err((
                format!("unexpected EOF: {{{{{keyword}}}}} has no {{{{end}}}}"),
                pos,
            )),
            Some((w, _, _)) if w == "end" => Ok((body, None)),
            Some((_, else_pos, rest)) => {
                if rest.is_empty() {
                    let (otherwise, end) = self.list()?;
                    match end {
                        Some((w, _, _)) if w == "end" => Ok((body, Some(otherwise))),
                        Some((w, p, _)) => Err((format!("unexpected {{{{{w}}}}} after else"), p)),
                        None => Err((
                            format!("unexpected EOF: {{{{{keyword}}}}} has no {{{{end}}}}"),
                            pos,
                        )),
                    }
                } else {
                    // `else if ...` / `else with ...`: a nested branch sharing our `end`.
                    let word = match rest.first().map(|t| &t.tok) {
                        Some(Tok::Ident(w)) if w == "if" || w == "with" => w.clone(),
                        _ => {
                            return Err((
                                "expected end, if or with after else".to_owned(),
                                rest[0].pos,
                            ));
                        }
                    };
                    let nested = self.branch(&word, strip_spaces(rest[1..].to_vec()), else_pos)?;
                    Ok((body, Some(vec![nested])))
                }
            }
        }
    }
}

/// Parses a pipeline from the tokens of an action (or a parenthesised group).
fn pipeline(tokens: Vec<Token>, pos: Pos, in_range: bool) -> Result<Pipe, ParseError> {
    let mut p = ArgParser { t: tokens, i: 0 };
    let pipe = p.pipe(pos, in_range, false)?;
    if p.i < p.t.len() {
        return Err((
            format!("unexpected {:?} in operand", p.t[p.i].tok),
            p.t[p.i].pos,
        ));
    }
    Ok(pipe)
}

struct ArgParser {
    t: Vec<Token>,
    i: usize,
}

impl ArgParser {
    fn peek(&self) -> Option<&Tok> {
        self.t.get(self.i).map(|t| &t.tok)
    }

    fn pos(&self, fallback: Pos) -> Pos {
        self.t
            .get(self.i)
            .or(self.t.last())
            .map(|t| {
                if self.i < self.t.len() {
                    t.pos
                } else {
                    t.pos + 1
                }
            })
            .unwrap_or(fallback)
    }

    fn skip_space(&mut self) {
        while self.peek() == Some(&Tok::Space) {
            self.i += 1;
        }
    }

    fn pipe(&mut self, pos: Pos, in_range: bool, in_paren: bool) -> Result<Pipe, ParseError> {
        self.skip_space();
        let mut decl = Vec::new();
        let mut assign = false;
        // `$x :=`, `$x =`, or in range `$i, $v :=`.
        let save = self.i;
        if let Some(Tok::Var(name)) = self.peek() {
            let name = name.clone();
            self.i += 1;
            self.skip_space();
            match self.peek() {
                Some(Tok::Declare) | Some(Tok::Assign) => {
                    assign = self.peek() == Some(&Tok::Assign);
                    self.i += 1;
                    decl.push(name);
                }
                Some(Tok::Comma) if in_range => {
                    self.i += 1;
                    self.skip_space();
                    let Some(Tok::Var(second)) = self.peek() else {
                        return Err(("expected a variable after comma".to_owned(), self.pos(pos)));
                    };
                    let second = second.clone();
                    self.i += 1;
                    self.skip_space();
                    if !matches!(self.peek(), Some(Tok::Declare) | Some(Tok::Assign)) {
                        return Err((
                            "expected := after range variables".to_owned(),
                            self.pos(pos),
                        ));
                    }
                    assign = self.peek() == Some(&Tok::Assign);
                    self.i += 1;
                    decl.push(name);
                    decl.push(second);
                }
                _ => self.i = save,
            }
        }
        let mut cmds = Vec::new();
        loop {
            self.skip_space();
            let cmd_pos = self.pos(pos);
            let mut args = Vec::new();
            loop {
                self.skip_space();
                match self.peek() {
                    None => break,
                    Some(Tok::Pipe) => break,
                    Some(Tok::RParen) if in_paren => break,
                    _ => args.push(self.operand(pos)?),
                }
                // Operands are separated by spaces; anything else right after one is an error.
                match self.peek() {
                    None | Some(Tok::Space) | Some(Tok::Pipe) => {}
                    Some(Tok::RParen) if in_paren => {}
                    Some(other) => {
                        return Err((format!("unexpected {other:?} in operand"), self.pos(pos)));
                    }
                }
            }
            if args.is_empty() {
                return Err(("missing value for command".to_owned(), cmd_pos));
            }
            cmds.push(Cmd { pos: cmd_pos, args });
            match self.peek() {
                Some(Tok::Pipe) => self.i += 1,
                _ => break,
            }
        }
        Ok(Pipe {
            pos,
            decl,
            assign,
            cmds,
        })
    }

    fn fields(&mut self) -> Vec<String> {
        let mut path = Vec::new();
        while let Some(Tok::Field(f)) = self.peek() {
            path.push(f.clone());
            self.i += 1;
        }
        path
    }

    fn operand(&mut self, fallback: Pos) -> Result<Arg, ParseError> {
        let pos = self.pos(fallback);
        let tok = self.peek().cloned();
        let Some(tok) = tok else {
            return Err(("missing operand".to_owned(), pos));
        };
        self.i += 1;
        Ok(match tok {
            Tok::Field(f) => {
                let mut path = vec![f];
                path.extend(self.fields());
                Arg::Field { pos, path }
            }
            Tok::Dot => Arg::Dot(pos),
            Tok::Var(name) => Arg::Var {
                pos,
                name,
                path: self.fields(),
            },
            Tok::Ident(name) => {
                if matches!(self.peek(), Some(Tok::Field(_))) {
                    return Err((format!("function {name} cannot have fields"), pos));
                }
                Arg::Func { pos, name }
            }
            Tok::Str(s) => Arg::Lit {
                pos,
                value: Value::Str(s),
            },
            Tok::Int(n) => Arg::Lit {
                pos,
                value: Value::Int(n),
            },
            Tok::Float(f) => Arg::Lit {
                pos,
                value: Value::Float(f),
            },
            Tok::Bool(b) => Arg::Lit {
                pos,
                value: Value::Bool(b),
            },
            Tok::Nil => Arg::Nil(pos),
            Tok::LParen => {
                let inner = self.pipe(pos, false, true)?;
                if self.peek() != Some(&Tok::RParen) {
                    return Err(("unclosed left paren".to_owned(), pos));
                }
                self.i += 1;
                Arg::Chain {
                    pos,
                    pipe: Box::new(inner),
                    path: self.fields(),
                }
            }
            Tok::RParen => return Err(("unexpected right paren".to_owned(), pos)),
            other => return Err((format!("unexpected {other:?} in command"), pos)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::lex::lex;
    use super::*;

    fn parse_src(src: &str) -> Result<Parsed, ParseError> {
        parse(lex(src).map_err(|e| (e.0, e.1))?)
    }

    #[test]
    fn structure() {
        let p = parse_src("{{ if .a }}x{{ else if .b }}y{{ else }}z{{ end }}").unwrap();
        let Node::If { otherwise, .. } = &p.root[0] else {
            panic!()
        };
        let nested = otherwise.as_ref().unwrap();
        assert!(matches!(
            nested[0],
            Node::If {
                otherwise: Some(_),
                ..
            }
        ));
        let p = parse_src("{{ range $i, $v := .l }}{{ $v }}{{ end }}").unwrap();
        let Node::Range { pipe, .. } = &p.root[0] else {
            panic!()
        };
        assert_eq!(pipe.decl, vec!["i", "v"]);
    }

    #[test]
    fn errors() {
        assert_eq!(parse_src("ab{{ if .a }}").unwrap_err().1, 2);
        assert!(parse_src("{{ end }}").unwrap_err().0.contains("unexpected"));
        assert!(parse_src("{{ (.a }}").unwrap_err().0.contains("paren"));
        assert!(parse_src("{{ break }}").unwrap_err().0.contains("outside"));
        assert!(parse_src("{{ }}").unwrap_err().0.contains("missing value"));
    }
}
