//! `toYaml` as stencil has it: go-yaml v2's `yaml.Marshal` (block style, sorted keys,
//! sequences not indented under their key, literal blocks for multi-line strings, a final
//! newline).

use super::value::{Value, format_float};

/// Marshals `v` the way go-yaml v2 does.
pub(crate) fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Map(m) if !m.is_empty() => map(m, 0, &mut out),
        Value::List(l) if !l.is_empty() => list(l, 0, &mut out),
        other => {
            out.push_str(&scalar(other, 0));
            out.push('\n');
        }
    }
    out
}

fn is_block(v: &Value) -> bool {
    matches!(v, Value::Map(m) if !m.is_empty()) || matches!(v, Value::List(l) if !l.is_empty())
}

fn map(m: &std::collections::BTreeMap<String, Value>, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    for (k, v) in m {
        out.push_str(&pad);
        out.push_str(&string(k, indent));
        out.push(':');
        match v {
            Value::Map(inner) if !inner.is_empty() => {
                out.push('\n');
                map(inner, indent + 2, out);
            }
            Value::List(inner) if !inner.is_empty() => {
                out.push('\n');
                list(inner, indent, out);
            }
            other => {
                out.push(' ');
                out.push_str(&scalar(other, indent + 2));
                out.push('\n');
            }
        }
    }
}

fn list(l: &[Value], indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    for v in l {
        out.push_str(&pad);
        out.push('-');
        if is_block(v) {
            // The first entry of a nested block shares the dash's line.
            let mut inner = String::new();
            match v {
                Value::Map(m) => map(m, indent + 2, &mut inner),
                Value::List(l) => list(l, indent + 2, &mut inner),
                _ => {}
            }
            out.push(' ');
            out.push_str(inner.trim_start_matches(' '));
        } else {
            out.push(' ');
            out.push_str(&scalar(v, indent + 2));
            out.push('\n');
        }
    }
}

fn scalar(v: &Value, indent: usize) -> String {
    match v {
        Value::Nil | Value::Missing { .. } => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Int(n) => n.to_string(),
        Value::Float(f) if f.is_nan() => ".NaN".to_owned(),
        Value::Float(f) if f.is_infinite() => if *f > 0.0 { ".inf" } else { "-.inf" }.to_owned(),
        Value::Float(f) => format_float(*f),
        Value::Str(s) => string(s, indent),
        Value::Map(_) => "{}".to_owned(),
        Value::List(_) => "[]".to_owned(),
    }
}

/// Words YAML 1.1 reads as something other than a string.
fn resolves_to_non_string(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE", "false",
        "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF", "null", "Null", "NULL", "~",
        ".inf", ".Inf", ".INF", "-.inf", "-.Inf", "-.INF", "+.inf", ".nan", ".NaN", ".NAN",
    ];
    if WORDS.contains(&s) {
        return true;
    }
    let t = s.strip_prefix(['-', '+']).unwrap_or(s);
    t.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && (t.replace('_', "").parse::<f64>().is_ok()
            || t.strip_prefix("0x")
                .is_some_and(|h| i64::from_str_radix(h, 16).is_ok())
            || t.strip_prefix("0o")
                .is_some_and(|o| i64::from_str_radix(o, 8).is_ok()))
}

fn string(s: &str, indent: usize) -> String {
    if s.contains('\n') && !s.contains(['\r', '\t']) && s.trim() == s.trim_end_matches('\n') {
        let chomp = if s.ends_with('\n') { "|" } else { "|-" };
        let pad = " ".repeat(indent);
        let body: Vec<String> = s
            .trim_end_matches('\n')
            .split('\n')
            .map(|l| {
                if l.is_empty() {
                    String::new()
                } else {
                    format!("{pad}{l}")
                }
            })
            .collect();
        return format!("{chomp}\n{}", body.join("\n"));
    }
    let needs_quotes = s.is_empty()
        || resolves_to_non_string(s)
        || s.starts_with([
            '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '"', '%', '@',
            '`', ' ',
        ])
        || s == "-"
        || s.starts_with("- ")
        || s.ends_with([' ', ':'])
        || s.contains(": ")
        || s.contains(" #")
        || s.chars().any(|c| c.is_control());
    if needs_quotes {
        super::funcs::go_quote(s)
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_style_like_go_yaml_v2() {
        let v = Value::from(serde_json::json!({
            "b": ["x", {"k": 1, "j": "true"}],
            "a": {"n": null, "s": "", "e": {}, "num": "123"},
            "m": "line1\nline2",
        }));
        assert_eq!(
            to_yaml(&v),
            "a:\n  e: {}\n  \"n\": null\n  num: \"123\"\n  s: \"\"\nb:\n- x\n- j: \"true\"\n  k: 1\nm: |-\n  line1\n  line2\n"
        );
        assert_eq!(to_yaml(&Value::Str("plain".into())), "plain\n");
    }
}
