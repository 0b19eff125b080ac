//! Go's built-in template functions and the sprig functions stencil templates use.

use std::collections::BTreeMap;

use base64::Engine;

use super::Pos;
use super::exec::{Exec, ExecError, Res, fail};
use super::value::{Value, format_float};
use super::yaml;

/// Every function name the engine knows.
pub(crate) const FUNCTIONS: &[&str] = &[
    // Go's text/template built-ins.
    "and",
    "or",
    "not",
    "len",
    "index",
    "print",
    "printf",
    "println",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge", // sprig
    "expandenv",
    "env",
    "default",
    "empty",
    "required",
    "quote",
    "squote",
    "upper",
    "lower",
    "title",
    "trim",
    "trimSuffix",
    "trimPrefix",
    "replace",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "b64enc",
    "b64dec",
    "toJson",
    "toYaml",
    "indent",
    "nindent",
    "list",
    "dict",
];

pub(crate) fn exists(name: &str) -> bool {
    FUNCTIONS.contains(&name)
}

/// Functions that accept a missing value as an empty one.
pub(crate) fn tolerates_missing(name: &str) -> bool {
    matches!(name, "default" | "empty" | "required" | "not")
}

fn want(name: &str, args: &[Value], n: usize, pos: Pos) -> Res<()> {
    if args.len() != n {
        return fail(
            format!(
                "wrong number of args for {name}: want {n} got {}",
                args.len()
            ),
            pos,
        );
    }
    Ok(())
}

fn string_arg(name: &str, v: &Value, pos: Pos) -> Res<String> {
    match v {
        Value::Str(s) => Ok(s.clone()),
        Value::Nil | Value::Missing { .. } => fail(
            format!("error calling {name}: invalid value; expected string"),
            pos,
        ),
        other => fail(
            format!(
                "error calling {name}: wrong type for value; expected string; got {}",
                other.type_name()
            ),
            pos,
        ),
    }
}

fn int_arg(name: &str, v: &Value, pos: Pos) -> Res<i64> {
    match v {
        Value::Int(n) => Ok(*n),
        other => fail(
            format!(
                "error calling {name}: wrong type for value; expected int; got {}",
                other.type_name()
            ),
            pos,
        ),
    }
}

/// sprig's `strval`: strings as they are, anything else as `%v`.
fn strval(v: &Value) -> String {
    v.to_string()
}

/// sprig's `empty`.
pub(crate) fn empty(v: &Value) -> bool {
    !v.truthy()
}

pub(crate) fn call(ex: &mut Exec<'_>, name: &str, args: Vec<Value>, pos: Pos) -> Res<Value> {
    let s = |i: usize| string_arg(name, &args[i], pos);
    Ok(match name {
        "not" => {
            want(name, &args, 1, pos)?;
            Value::Bool(!args[0].truthy())
        }
        "len" => {
            want(name, &args, 1, pos)?;
            Value::Int(match &args[0] {
                Value::Str(s) => s.len() as i64,
                Value::List(l) => l.len() as i64,
                Value::Map(m) => m.len() as i64,
                other => {
                    return fail(
                        format!("error calling len: len of type {}", other.type_name()),
                        pos,
                    );
                }
            })
        }
        "index" => {
            if args.is_empty() {
                return fail("wrong number of args for index: want at least 1 got 0", pos);
            }
            let mut item = args[0].clone();
            for key in &args[1..] {
                item = match (item, key) {
                    (Value::List(l), Value::Int(i)) => {
                        match usize::try_from(*i).ok().and_then(|i| l.get(i)) {
                            Some(v) => v.clone(),
                            None => {
                                return fail(
                                    format!("error calling index: index out of range: {i}"),
                                    pos,
                                );
                            }
                        }
                    }
                    (Value::Str(s), Value::Int(i)) => {
                        match usize::try_from(*i).ok().and_then(|i| s.as_bytes().get(i)) {
                            Some(b) => Value::Int(i64::from(*b)),
                            None => {
                                return fail(
                                    format!("error calling index: index out of range: {i}"),
                                    pos,
                                );
                            }
                        }
                    }
                    (Value::Map(m), Value::Str(k)) => match m.get(k) {
                        Some(v) => v.clone(),
                        None => Value::Missing {
                            key: format!("index {:?}", k),
                            pos,
                        },
                    },
                    (Value::Nil, _) => {
                        return fail("error calling index: index of untyped nil", pos);
                    }
                    (item, key) => {
                        return fail(
                            format!(
                                "error calling index: cannot index {} with {}",
                                item.type_name(),
                                key.type_name()
                            ),
                            pos,
                        );
                    }
                };
            }
            item
        }
        "print" => Value::Str(sprint(&args)),
        "println" => {
            let parts: Vec<String> = args.iter().map(strval).collect();
            Value::Str(format!("{}\n", parts.join(" ")))
        }
        "printf" => {
            if args.is_empty() {
                return fail(
                    "wrong number of args for printf: want at least 1 got 0",
                    pos,
                );
            }
            Value::Str(sprintf(&s(0)?, &args[1..]))
        }
        "eq" => {
            if args.len() < 2 {
                return fail("error calling eq: missing argument for comparison", pos);
            }
            let mut any = false;
            for other in &args[1..] {
                if compare(&args[0], other, pos)? == Some(std::cmp::Ordering::Equal) {
                    any = true;
                }
            }
            Value::Bool(any)
        }
        "ne" => {
            want(name, &args, 2, pos)?;
            Value::Bool(compare(&args[0], &args[1], pos)? != Some(std::cmp::Ordering::Equal))
        }
        "lt" | "le" | "gt" | "ge" => {
            want(name, &args, 2, pos)?;
            if !matches!(args[0], Value::Int(_) | Value::Float(_) | Value::Str(_)) {
                return fail(
                    format!("error calling {name}: invalid type for comparison"),
                    pos,
                );
            }
            let ord = compare(&args[0], &args[1], pos)?.ok_or_else(|| {
                ExecError::Failed(format!("error calling {name}: incomparable"), pos)
            })?;
            use std::cmp::Ordering::*;
            Value::Bool(match name {
                "lt" => ord == Less,
                "le" => ord != Greater,
                "gt" => ord == Greater,
                _ => ord != Less,
            })
        }
        "expandenv" => {
            want(name, &args, 1, pos)?;
            let mut unset = None;
            let out = expand(&s(0)?, |var| match ex.env.get(var) {
                Some(v) => v.clone(),
                None => {
                    unset.get_or_insert_with(|| var.to_owned());
                    String::new()
                }
            });
            match unset {
                // stencil (os.ExpandEnv) expands an unset variable to nothing.
                Some(_) if ex.allow_missing => Value::Str(out),
                Some(var) => Value::Missing {
                    key: format!("environment variable ${var}"),
                    pos,
                },
                None => Value::Str(out),
            }
        }
        "env" => {
            want(name, &args, 1, pos)?;
            let var = s(0)?;
            match ex.env.get(&var) {
                Some(v) => Value::Str(v.clone()),
                None if ex.allow_missing => Value::Str(String::new()),
                None => Value::Missing {
                    key: format!("environment variable {var}"),
                    pos,
                },
            }
        }
        "default" => {
            if args.is_empty() {
                return fail(
                    "wrong number of args for default: want at least 1 got 0",
                    pos,
                );
            }
            match args.get(1) {
                Some(given) if !empty(given) => given.clone(),
                _ => ex.usable(args[0].clone())?,
            }
        }
        "empty" => {
            want(name, &args, 1, pos)?;
            Value::Bool(empty(&args[0]))
        }
        "required" => {
            want(name, &args, 2, pos)?;
            let msg = s(0)?;
            match &args[1] {
                Value::Nil | Value::Missing { .. } => {
                    return fail(format!("error calling required: {msg}"), pos);
                }
                Value::Str(v) if v.is_empty() => {
                    return fail(format!("error calling required: {msg}"), pos);
                }
                other => other.clone(),
            }
        }
        "quote" => Value::Str(
            args.iter()
                .filter(|a| !matches!(a, Value::Nil))
                .map(|a| go_quote(&strval(a)))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        "squote" => Value::Str(
            args.iter()
                .filter(|a| !matches!(a, Value::Nil))
                .map(|a| format!("'{}'", strval(a)))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        "upper" => {
            want(name, &args, 1, pos)?;
            Value::Str(s(0)?.to_uppercase())
        }
        "lower" => {
            want(name, &args, 1, pos)?;
            Value::Str(s(0)?.to_lowercase())
        }
        "title" => {
            want(name, &args, 1, pos)?;
            Value::Str(title(&s(0)?))
        }
        "trim" => {
            want(name, &args, 1, pos)?;
            Value::Str(s(0)?.trim().to_owned())
        }
        "trimSuffix" => {
            want(name, &args, 2, pos)?;
            let (suffix, text) = (s(0)?, s(1)?);
            Value::Str(
                text.strip_suffix(suffix.as_str())
                    .unwrap_or(&text)
                    .to_owned(),
            )
        }
        "trimPrefix" => {
            want(name, &args, 2, pos)?;
            let (prefix, text) = (s(0)?, s(1)?);
            Value::Str(
                text.strip_prefix(prefix.as_str())
                    .unwrap_or(&text)
                    .to_owned(),
            )
        }
        "replace" => {
            want(name, &args, 3, pos)?;
            Value::Str(s(2)?.replace(&s(0)?, &s(1)?))
        }
        "contains" => {
            want(name, &args, 2, pos)?;
            Value::Bool(s(1)?.contains(&s(0)?))
        }
        "hasPrefix" => {
            want(name, &args, 2, pos)?;
            Value::Bool(s(1)?.starts_with(&s(0)?))
        }
        "hasSuffix" => {
            want(name, &args, 2, pos)?;
            Value::Bool(s(1)?.ends_with(&s(0)?))
        }
        "b64enc" => {
            want(name, &args, 1, pos)?;
            Value::Str(base64::engine::general_purpose::STANDARD.encode(s(0)?))
        }
        "b64dec" => {
            want(name, &args, 1, pos)?;
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(s(0)?)
                .map_err(|e| ExecError::Failed(format!("error calling b64dec: {e}"), pos))?;
            Value::Str(String::from_utf8_lossy(&decoded).into_owned())
        }
        "toJson" => {
            want(name, &args, 1, pos)?;
            let mut out = String::new();
            json(&args[0], &mut out);
            Value::Str(out)
        }
        "toYaml" => {
            want(name, &args, 1, pos)?;
            Value::Str(yaml::to_yaml(&args[0]))
        }
        "indent" | "nindent" => {
            want(name, &args, 2, pos)?;
            let n = int_arg(name, &args[0], pos)?;
            let pad = " ".repeat(usize::try_from(n).unwrap_or(0));
            let text = format!("{pad}{}", s(1)?.replace('\n', &format!("\n{pad}")));
            Value::Str(if name == "nindent" {
                format!("\n{text}")
            } else {
                text
            })
        }
        "list" => Value::List(args),
        "dict" => {
            let mut map = BTreeMap::new();
            for pair in args.chunks(2) {
                let key = strval(&pair[0]);
                map.insert(
                    key,
                    pair.get(1).cloned().unwrap_or(Value::Str(String::new())),
                );
            }
            Value::Map(map)
        }
        other => return fail(format!("function {other:?} not defined"), pos),
    })
}

fn compare(a: &Value, b: &Value, pos: Pos) -> Res<Option<std::cmp::Ordering>> {
    use Value::*;
    Ok(match (a, b) {
        (Int(x), Int(y)) => Some(x.cmp(y)),
        (Float(x), Float(y)) => x.partial_cmp(y),
        (Int(x), Float(y)) => (*x as f64).partial_cmp(y),
        (Float(x), Int(y)) => x.partial_cmp(&(*y as f64)),
        (Str(x), Str(y)) => Some(x.cmp(y)),
        (Bool(x), Bool(y)) => (x == y).then_some(std::cmp::Ordering::Equal),
        (Nil, Nil) => Some(std::cmp::Ordering::Equal),
        (Nil, _) | (_, Nil) => None,
        (List(_) | Map(_), _) | (_, List(_) | Map(_)) => {
            return fail("error calling eq: non-comparable type", pos);
        }
        _ => return fail("error calling eq: incompatible types for comparison", pos),
    })
}

/// `fmt.Sprint`: spaces between operands when neither side is a string.
fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !matches!(a, Value::Str(_)) && !matches!(args[i - 1], Value::Str(_)) {
            out.push(' ');
        }
        out.push_str(&strval(a));
    }
    out
}

/// Go's `strconv.Quote`.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's deprecated `strings.Title`: upper-cases the first letter of each word.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_sep = true;
    for c in s.chars() {
        if prev_sep {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_sep = !(c.is_alphanumeric() || c == '_');
    }
    out
}

/// Go's `os.Expand`: `$NAME` and `${NAME}`.
fn expand(s: &str, mut lookup: impl FnMut(&str) -> String) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) if end > 0 => {
                    out.push_str(&lookup(&braced[..end]));
                    rest = &braced[end + 1..];
                }
                _ => {
                    // Go drops a bad `${` syntax.
                    rest = after;
                }
            }
            continue;
        }
        let first = after.chars().next();
        let special = first.is_some_and(|c| "*#$@!?-".contains(c) || c.is_ascii_digit());
        let n = if special {
            1
        } else {
            after
                .char_indices()
                .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_'))
                .map(|(i, _)| i)
                .unwrap_or(after.len())
        };
        if n == 0 {
            // A lone `$` stays as it is only at the end; Go drops it otherwise.
            if after.is_empty() {
                out.push('$');
            }
            rest = after;
            continue;
        }
        out.push_str(&lookup(&after[..n]));
        rest = &after[n..];
    }
    out.push_str(rest);
    out
}

/// `json.Marshal` as Go writes it: sorted keys, HTML-safe escapes, Go number forms.
pub(crate) fn json(v: &Value, out: &mut String) {
    match v {
        Value::Nil | Value::Missing { .. } => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(n) => out.push_str(&n.to_string()),
        Value::Float(f) => {
            let abs = f.abs();
            if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
                let s = format_float(*f);
                // Go's json writes e-07 as e-7.
                out.push_str(&s.replace("e-0", "e-").replace("e+0", "e+"));
            } else {
                out.push_str(&format!("{f}"));
            }
        }
        Value::Str(s) => json_string(s, out),
        Value::List(l) => {
            out.push('[');
            for (i, x) in l.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json(x, out);
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(k, out);
                out.push(':');
                json(x, out);
            }
            out.push('}');
        }
    }
}

fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A subset of Go's `fmt.Sprintf`: flags `-+ 0#`, width, precision and the verbs
/// `v s q d f F e g t x X o b c %`.
pub(crate) fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut next = 0;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let (mut minus, mut plus, mut zero, mut sharp) = (false, false, false, false);
        while let Some(&f) = chars.peek() {
            match f {
                '-' => minus = true,
                '+' => plus = true,
                '0' => zero = true,
                '#' => sharp = true,
                ' ' => {}
                _ => break,
            }
            chars.next();
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            chars.next();
        }
        let mut precision: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                p.push(d);
                chars.next();
            }
            precision = Some(p.parse().unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        next += 1;
        let bad = || format!("%!{verb}({}={arg})", arg.type_name());
        let mut text = match (verb, arg) {
            ('v', Value::Str(s)) if sharp => go_quote(s),
            ('v', _) => strval(arg),
            ('s', Value::Str(s)) => match precision {
                Some(p) => s.chars().take(p).collect(),
                None => s.clone(),
            },
            ('s', Value::Int(_) | Value::Float(_) | Value::Bool(_)) => bad(),
            ('s', _) => strval(arg),
            ('q', Value::Str(s)) => go_quote(s),
            ('q', Value::Int(n)) => format!("'{}'", char::from_u32(*n as u32).unwrap_or('?')),
            ('d', Value::Int(n)) => {
                if plus && *n >= 0 {
                    format!("+{n}")
                } else {
                    n.to_string()
                }
            }
            ('f' | 'F', Value::Float(f)) => format!("{:.*}", precision.unwrap_or(6), f),
            ('e', Value::Float(f)) => {
                let s = format!("{:.*e}", precision.unwrap_or(6), f);
                let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
                let (sign, digits) = match e.strip_prefix('-') {
                    Some(d) => ('-', d),
                    None => ('+', e),
                };
                format!("{m}e{sign}{digits:0>2}")
            }
            ('g', Value::Float(f)) => format_float(*f),
            ('t', Value::Bool(b)) => b.to_string(),
            ('x', Value::Int(n)) => format!("{n:x}"),
            ('X', Value::Int(n)) => format!("{n:X}"),
            ('x', Value::Str(s)) => s.bytes().map(|b| format!("{b:02x}")).collect(),
            ('X', Value::Str(s)) => s.bytes().map(|b| format!("{b:02X}")).collect(),
            ('o', Value::Int(n)) => format!("{n:o}"),
            ('b', Value::Int(n)) => format!("{n:b}"),
            ('c', Value::Int(n)) => char::from_u32(*n as u32).unwrap_or('\u{fffd}').to_string(),
            _ => bad(),
        };
        let width: usize = width.parse().unwrap_or(0);
        let len = text.chars().count();
        if len < width {
            let pad = width - len;
            if minus {
                text.push_str(&" ".repeat(pad));
            } else if zero && matches!(arg, Value::Int(_) | Value::Float(_)) {
                let (sign, digits) = match text.strip_prefix('-') {
                    Some(d) => ("-", d.to_owned()),
                    None => ("", text.clone()),
                };
                text = format!("{sign}{}{digits}", "0".repeat(pad));
            } else {
                text = format!("{}{text}", " ".repeat(pad));
            }
        }
        out.push_str(&text);
    }
    if next < args.len() {
        let extra: Vec<String> = args[next..]
            .iter()
            .map(|a| format!("{}={a}", a.type_name()))
            .collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expand_like_go() {
        let env = |k: &str| match k {
            "A" => "1".to_owned(),
            "B_2" => "two".to_owned(),
            _ => String::new(),
        };
        assert_eq!(expand("$A-${B_2}-$C.x", env), "1-two-.x");
        assert_eq!(expand("cost $", env), "cost $");
    }

    #[test]
    fn printf_verbs() {
        let v = |x: i64| Value::Int(x);
        assert_eq!(
            sprintf("%d|%5d|%-4d|%03d", &[v(1), v(2), v(3), v(4)]),
            "1|    2|3   |004"
        );
        assert_eq!(
            sprintf(
                "%s %q %v %x",
                &["a".into(), "b\"".into(), Value::Bool(true), v(255)]
            ),
            "a \"b\\\"\" true ff"
        );
        assert_eq!(
            sprintf("%.2f %t", &[Value::Float(1.23456), Value::Bool(false)]),
            "1.23 false"
        );
        assert_eq!(sprintf("%d", &["x".into()]), "%!d(string=x)");
        assert_eq!(sprintf("%d %d", &[v(1)]), "1 %!d(MISSING)");
        assert_eq!(sprintf("%d", &[v(1), v(2)]), "1%!(EXTRA int=2)");
        assert_eq!(sprintf("100%%", &[]), "100%");
    }

    #[test]
    fn json_like_go() {
        let mut out = String::new();
        let v = Value::from(serde_json::json!({"b": [1, 2.5, "<&>"], "a": null, "c": 3.0}));
        json(&v, &mut out);
        assert_eq!(out, r#"{"a":null,"b":[1,2.5,"\u003c\u0026\u003e"],"c":3}"#);
    }

    #[test]
    fn title_and_quote() {
        assert_eq!(title("hello wide_world-x"), "Hello Wide_world-X");
        assert_eq!(go_quote("a\tb\"\\"), r#""a\tb\"\\""#);
    }
}
