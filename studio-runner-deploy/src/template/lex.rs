//! The lexer: template text into text runs and action tokens, with byte offsets.

use super::Pos;

/// One token of an action (between `{{` and `}}`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    /// A keyword or function name.
    Ident(String),
    /// `.Field` (one segment; chains are consecutive `Field` tokens without space).
    Field(String),
    /// `.` alone.
    Dot,
    /// `$name` (`$` alone is the empty name).
    Var(String),
    /// A string literal (already unescaped).
    Str(String),
    /// An integer literal.
    Int(i64),
    /// A float literal.
    Float(f64),
    /// `true` / `false`.
    Bool(bool),
    /// `nil`.
    Nil,
    /// `|`
    Pipe,
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `:=`
    Declare,
    /// `=`
    Assign,
    /// `,`
    Comma,
    /// Whitespace between tokens (significant: it separates arguments from field chains).
    Space,
}

/// A token with the offset where it starts.
#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub tok: Tok,
    pub pos: Pos,
}

/// A piece of the template.
#[derive(Debug)]
pub(crate) enum Piece {
    /// Literal text.
    Text(String),
    /// An action: its tokens, and where `{{` is.
    Action(Vec<Token>, Pos),
}

/// A lexing error: message and offset.
pub(crate) type LexError = (String, Pos);

const LEFT: &str = "{{";
const RIGHT: &str = "}}";

fn is_trim_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Splits `src` into text and actions, applying `{{-` / `-}}` trimming and dropping comments.
pub(crate) fn lex(src: &str) -> Result<Vec<Piece>, LexError> {
    let mut pieces = Vec::new();
    let mut i = 0;
    let mut trim_next = false;
    while i < src.len() {
        let Some(found) = src[i..].find(LEFT) else {
            let mut text = &src[i..];
            if trim_next {
                text = text.trim_start_matches(is_trim_space);
            }
            if !text.is_empty() {
                pieces.push(Piece::Text(text.to_owned()));
            }
            break;
        };
        let open = i + found;
        let mut text = &src[i..open];
        if trim_next {
            text = text.trim_start_matches(is_trim_space);
        }
        let mut inner_start = open + LEFT.len();
        // `{{- ` trims the text before; the dash must be followed by a space.
        let rest = &src[inner_start..];
        if rest.starts_with('-') && rest[1..].starts_with(is_trim_space) {
            text = text.trim_end_matches(is_trim_space);
            inner_start += 1;
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text.to_owned()));
        }
        let (tokens, end, trim_after) = lex_action(src, inner_start, open)?;
        trim_next = trim_after;
        if let Some(tokens) = tokens {
            pieces.push(Piece::Action(tokens, open));
        }
        i = end;
    }
    Ok(pieces)
}

/// Lexes one action from `start` (after `{{` and any trim marker). Returns the tokens (None for
/// a comment), the offset after `}}`, and whether the action ends with `-}}`.
fn lex_action(
    src: &str,
    start: usize,
    open: usize,
) -> Result<(Option<Vec<Token>>, usize, bool), LexError> {
    let bytes = src.as_bytes();
    // Comments: `{{/* ... */}}`, possibly with spaces and trim markers around.
    let after_space =
        start + src[start..].len() - src[start..].trim_start_matches(is_trim_space).len();
    if src[after_space..].starts_with("/*") {
        let Some(close) = src[after_space + 2..].find("*/") else {
            return Err(("unclosed comment".to_owned(), open));
        };
        let mut j = after_space + 2 + close + 2;
        j += src[j..].len() - src[j..].trim_start_matches(is_trim_space).len();
        let mut trim = false;
        if src[j..].starts_with("-}}") && j > 0 && is_trim_space(bytes[j - 1] as char) {
            trim = true;
            j += 1;
        }
        if !src[j..].starts_with(RIGHT) {
            return Err(("comment ends before closing delimiter".to_owned(), open));
        }
        return Ok((None, j + RIGHT.len(), trim));
    }
    let mut tokens = Vec::new();
    let mut j = start;
    loop {
        if j >= src.len() {
            return Err(("unclosed action".to_owned(), open));
        }
        let rest = &src[j..];
        let c = rest.chars().next().unwrap_or(' ');
        // ` -}}` closes with trimming; `}}` closes.
        if is_trim_space(c) {
            let ws_end = j + rest.len() - rest.trim_start_matches(is_trim_space).len();
            if src[ws_end..].starts_with("-}}") {
                return Ok((Some(tokens), ws_end + 3, true));
            }
            if src[ws_end..].starts_with(RIGHT) {
                return Ok((Some(tokens), ws_end + 2, false));
            }
            if rest.starts_with('\n') || src[j..ws_end].contains('\n') {
                // Newlines are allowed inside actions since Go 1.16; they are spaces.
            }
            tokens.push(Token {
                tok: Tok::Space,
                pos: j,
            });
            j = ws_end;
            continue;
        }
        if rest.starts_with(RIGHT) {
            return Ok((Some(tokens), j + 2, false));
        }
        let pos = j;
        let (tok, len) = match c {
            '|' => (Tok::Pipe, 1),
            '(' => (Tok::LParen, 1),
            ')' => (Tok::RParen, 1),
            ',' => (Tok::Comma, 1),
            '=' => (Tok::Assign, 1),
            ':' if rest.starts_with(":=") => (Tok::Declare, 2),
            '"' => lex_quoted(rest, pos)?,
            '`' => match rest[1..].find('`') {
                Some(end) => (Tok::Str(rest[1..1 + end].to_owned()), end + 2),
                None => return Err(("unterminated raw quoted string".to_owned(), pos)),
            },
            '\'' => lex_char(rest, pos)?,
            '$' => {
                let n = ident_len(&rest[1..]);
                (Tok::Var(rest[1..1 + n].to_owned()), 1 + n)
            }
            '.' => {
                let next = rest[1..].chars().next();
                match next {
                    Some(d) if d.is_ascii_digit() => lex_number(rest, pos)?,
                    Some(a) if a.is_alphabetic() || a == '_' => {
                        let n = ident_len(&rest[1..]);
                        (Tok::Field(rest[1..1 + n].to_owned()), 1 + n)
                    }
                    _ => (Tok::Dot, 1),
                }
            }
            '+' | '-' | '0'..='9' => lex_number(rest, pos)?,
            a if a.is_alphabetic() || a == '_' => {
                let n = ident_len(rest);
                let word = &rest[..n];
                let tok = match word {
                    "true" => Tok::Bool(true),
                    "false" => Tok::Bool(false),
                    "nil" => Tok::Nil,
                    _ => Tok::Ident(word.to_owned()),
                };
                (tok, n)
            }
            other => {
                return Err((format!("unexpected {other:?} in action"), pos));
            }
        };
        tokens.push(Token { tok, pos });
        j += len;
    }
}

fn ident_len(s: &str) -> usize {
    s.char_indices()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
        .map(|(i, _)| i)
        .unwrap_or(s.len())
}

fn lex_quoted(rest: &str, pos: Pos) -> Result<(Tok, usize), LexError> {
    let mut out = String::new();
    let mut chars = rest.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((Tok::Str(out), i + 1)),
            '\n' => break,
            '\\' => {
                let Some((_, e)) = chars.next() else { break };
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    '\'' => out.push('\''),
                    '0' => out.push('\0'),
                    'a' => out.push('\x07'),
                    'b' => out.push('\x08'),
                    'f' => out.push('\x0c'),
                    'v' => out.push('\x0b'),
                    'x' | 'u' | 'U' => {
                        let n = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let mut hex = String::new();
                        for _ in 0..n {
                            if let Some((_, h)) = chars.next() {
                                hex.push(h);
                            }
                        }
                        let ch = u32::from_str_radix(&hex, 16)
                            .ok()
                            .and_then(char::from_u32)
                            .ok_or_else(|| (format!("bad escape \\{e}{hex}"), pos))?;
                        out.push(ch);
                    }
                    other => return Err((format!("unknown escape sequence \\{other}"), pos)),
                }
            }
            c => out.push(c),
        }
    }
    Err(("unterminated quoted string".to_owned(), pos))
}

fn lex_char(rest: &str, pos: Pos) -> Result<(Tok, usize), LexError> {
    let mut chars = rest.char_indices().skip(1);
    let (_, c) = chars
        .next()
        .ok_or_else(|| ("unterminated character constant".to_owned(), pos))?;
    let value = if c == '\\' {
        let (_, e) = chars
            .next()
            .ok_or_else(|| ("unterminated character constant".to_owned(), pos))?;
        match e {
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            '\\' => '\\',
            '\'' => '\'',
            '0' => '\0',
            other => return Err((format!("unknown escape sequence \\{other}"), pos)),
        }
    } else {
        c
    };
    match chars.next() {
        Some((i, '\'')) => Ok((Tok::Int(i64::from(u32::from(value))), i + 1)),
        _ => Err(("unterminated character constant".to_owned(), pos)),
    }
}

fn lex_number(rest: &str, pos: Pos) -> Result<(Tok, usize), LexError> {
    let len = rest
        .char_indices()
        .find(|(i, c)| {
            !(c.is_ascii_alphanumeric()
                || *c == '.'
                || *c == '_'
                || ((*c == '+' || *c == '-')
                    && (*i == 0
                        || rest[..*i].ends_with(['e', 'E', 'p', 'P'])
                            && !rest.starts_with("0x")
                            && !rest.starts_with("0X"))))
        })
        .map(|(i, _)| i)
        .unwrap_or(rest.len());
    let text = &rest[..len];
    let clean: String = text.chars().filter(|c| *c != '_').collect();
    let (sign, digits) = match clean.strip_prefix('-') {
        Some(d) => (-1i64, d.to_owned()),
        None => (1, clean.trim_start_matches('+').to_owned()),
    };
    let int = if let Some(h) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        i64::from_str_radix(h, 16).ok()
    } else if let Some(o) = digits
        .strip_prefix("0o")
        .or_else(|| digits.strip_prefix("0O"))
    {
        i64::from_str_radix(o, 8).ok()
    } else if let Some(b) = digits
        .strip_prefix("0b")
        .or_else(|| digits.strip_prefix("0B"))
    {
        i64::from_str_radix(b, 2).ok()
    } else if digits.len() > 1
        && digits.starts_with('0')
        && digits.bytes().all(|b| b.is_ascii_digit())
    {
        i64::from_str_radix(&digits[1..], 8).ok()
    } else {
        digits.parse::<i64>().ok()
    };
    if let Some(n) = int {
        return Ok((Tok::Int(sign * n), len));
    }
    match clean.parse::<f64>() {
        Ok(f) if !digits.is_empty() => Ok((Tok::Float(f), len)),
        _ => Err((format!("bad number syntax: {text:?}"), pos)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        match lex(src).unwrap().remove(0) {
            Piece::Action(t, _) => t.into_iter().map(|t| t.tok).collect(),
            Piece::Text(t) => panic!("text {t}"),
        }
    }

    #[test]
    fn tokens() {
        assert_eq!(
            toks(r#"{{ .a.b | printf "%d" 0x10 -2 1.5 'x' $v }}"#),
            vec![
                Tok::Space,
                Tok::Field("a".into()),
                Tok::Field("b".into()),
                Tok::Space,
                Tok::Pipe,
                Tok::Space,
                Tok::Ident("printf".into()),
                Tok::Space,
                Tok::Str("%d".into()),
                Tok::Space,
                Tok::Int(16),
                Tok::Space,
                Tok::Int(-2),
                Tok::Space,
                Tok::Float(1.5),
                Tok::Space,
                Tok::Int(120),
                Tok::Space,
                Tok::Var("v".into()),
            ]
        );
    }

    #[test]
    fn trimming_and_comments() {
        let pieces = lex("a  \n{{- 1 -}}\n  b {{/* c */}} d {{- /* e */ -}} f").unwrap();
        let texts: Vec<String> = pieces
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.clone(),
                Piece::Action(..) => "#".into(),
            })
            .collect();
        assert_eq!(texts, vec!["a", "#", "b ", " d", "f"]);
        // `{{-3}}` is the number -3, not a trim marker.
        assert_eq!(toks("{{-3}}"), vec![Tok::Int(-3)]);
    }

    #[test]
    fn errors_have_offsets() {
        assert_eq!(lex("ab{{ .x ").unwrap_err().1, 2);
        assert_eq!(lex(r#"{{ "abc }}"#).unwrap_err().1, 3);
    }
}
