//! Output as `az` prints it: `-o json|jsonc|yaml|table|tsv|none` after an optional JMESPath
//! `--query`. Every command hands its result here as JSON; nothing else writes to stdout.

use std::fmt::Write as _;

use anyhow::{Context, Result};
use serde_json::Value;

/// `-o`: how results are printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Indented JSON (the default, as az).
    #[default]
    Json,
    /// Indented JSON with ANSI colours.
    Jsonc,
    /// YAML.
    Yaml,
    /// A table of the scalar fields, headers capitalised.
    Table,
    /// Tab-separated scalar fields, one line per item (for shell scripts).
    Tsv,
    /// Nothing.
    None,
}

/// The output settings every command shares.
#[derive(Clone, Debug, Default)]
pub struct Output {
    /// The format.
    pub format: Format,
    /// A JMESPath expression applied first.
    pub query: Option<String>,
}

impl Output {
    /// Prints `value` to stdout.
    pub fn emit(&self, value: impl serde::Serialize) -> Result<()> {
        let value = serde_json::to_value(value).context("encoding the result")?;
        let text = self.render(value)?;
        if !text.is_empty() {
            print!("{text}");
        }
        Ok(())
    }

    /// The text `emit` prints.
    pub fn render(&self, value: Value) -> Result<String> {
        let value = match &self.query {
            Some(q) => query(q, &value)?,
            None => value,
        };
        Ok(match self.format {
            Format::Json => format!("{}\n", serde_json::to_string_pretty(&value)?),
            Format::Jsonc => {
                let mut out = String::new();
                colour(&value, 0, &mut out);
                out.push('\n');
                out
            }
            Format::Yaml => {
                let mut text = serde_saphyr::to_string(&value).context("writing YAML")?;
                if !text.ends_with('\n') {
                    text.push('\n');
                }
                text
            }
            Format::Table => table(&value),
            Format::Tsv => tsv(&value),
            Format::None => String::new(),
        })
    }
}

/// Applies a JMESPath expression.
pub fn query(expression: &str, value: &Value) -> Result<Value> {
    let compiled = jmespath::compile(expression)
        .map_err(|e| anyhow::anyhow!("--query '{expression}' is not valid JMESPath: {e}"))?;
    let data = jmespath::Variable::from_serializable(value)
        .map_err(|e| anyhow::anyhow!("--query: {e}"))?;
    let result = compiled
        .search(data)
        .map_err(|e| anyhow::anyhow!("--query '{expression}': {e}"))?;
    let mut orders = Vec::new();
    hash_key_orders(compiled.as_ast(), &mut orders);
    Ok(in_expression_order(
        serde_json::to_value(&*result)?,
        &orders,
    ))
}

/// The keys of every multiselect hash (`{name: ..., id: ...}`) in `ast`, in the order written.
fn hash_key_orders(ast: &jmespath::ast::Ast, out: &mut Vec<Vec<String>>) {
    use jmespath::ast::Ast;
    match ast {
        Ast::MultiHash { elements, .. } => {
            out.push(elements.iter().map(|kv| kv.key.clone()).collect());
            for kv in elements {
                hash_key_orders(&kv.value, out);
            }
        }
        Ast::Comparison { lhs, rhs, .. }
        | Ast::Projection { lhs, rhs, .. }
        | Ast::And { lhs, rhs, .. }
        | Ast::Or { lhs, rhs, .. }
        | Ast::Subexpr { lhs, rhs, .. }
        | Ast::Condition {
            predicate: lhs,
            then: rhs,
            ..
        } => {
            hash_key_orders(lhs, out);
            hash_key_orders(rhs, out);
        }
        Ast::Expref { ast: node, .. }
        | Ast::Flatten { node, .. }
        | Ast::Not { node, .. }
        | Ast::ObjectValues { node, .. } => hash_key_orders(node, out),
        Ast::Function { args: nodes, .. }
        | Ast::MultiList {
            elements: nodes, ..
        } => nodes.iter().for_each(|n| hash_key_orders(n, out)),
        Ast::Identity { .. }
        | Ast::Field { .. }
        | Ast::Index { .. }
        | Ast::Literal { .. }
        | Ast::Slice { .. } => {}
    }
}

/// `value` with every object whose keys are exactly a multiselect hash's keys put back in the
/// expression's order: the jmespath crate keeps objects in sorted maps, and az (Python's
/// jmespath) prints a `--query '[].{Name:name, Id:id}'` table's columns as written.
fn in_expression_order(value: Value, orders: &[Vec<String>]) -> Value {
    match value {
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| in_expression_order(v, orders))
                .collect(),
        ),
        Value::Object(mut map) => {
            let order = orders
                .iter()
                .find(|keys| keys.len() == map.len() && keys.iter().all(|k| map.contains_key(k)));
            let mut out = serde_json::Map::new();
            if let Some(keys) = order {
                for key in keys {
                    if let Some(v) = map.remove(key) {
                        out.insert(key.clone(), in_expression_order(v, orders));
                    }
                }
            }
            for (key, v) in map {
                out.insert(key, in_expression_order(v, orders));
            }
            Value::Object(out)
        }
        other => other,
    }
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::Null => Some(String::new()),
        Value::Bool(b) => Some(if *b { "True" } else { "False" }.to_owned()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        Value::Array(_) | Value::Object(_) => None,
    }
}

fn rows(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    }
}

/// az's header: the key with its first letter upper-cased (`isDefault` → `IsDefault`).
fn header(key: &str) -> String {
    let mut chars = key.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn table(value: &Value) -> String {
    let items = rows(value);
    // Columns: the scalar keys of the objects, in first-seen order.
    let mut columns: Vec<String> = Vec::new();
    for item in &items {
        if let Value::Object(map) = item {
            for (k, v) in map {
                if scalar(v).is_some() && !columns.contains(k) {
                    columns.push(k.clone());
                }
            }
        }
    }
    let mut grid: Vec<Vec<String>> = Vec::new();
    if columns.is_empty() {
        grid.push(vec!["Result".to_owned()]);
        for item in &items {
            grid.push(vec![scalar(item).unwrap_or_else(|| item.to_string())]);
        }
    } else {
        grid.push(columns.iter().map(|c| header(c)).collect());
        for item in &items {
            grid.push(
                columns
                    .iter()
                    .map(|c| item.get(c).and_then(scalar).unwrap_or_default())
                    .collect(),
            );
        }
    }
    let widths: Vec<usize> = (0..grid[0].len())
        .map(|i| grid.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    let line = |row: &[String], out: &mut String| {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    };
    line(&grid[0], &mut out);
    let dashes: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(&dashes, &mut out);
    for row in &grid[1..] {
        line(row, &mut out);
    }
    out
}

fn tsv(value: &Value) -> String {
    let mut out = String::new();
    for item in rows(value) {
        let cells: Vec<String> = match item {
            Value::Object(map) => map.values().filter_map(scalar).collect(),
            Value::Array(values) => values.iter().filter_map(scalar).collect(),
            other => scalar(other).into_iter().collect(),
        };
        out.push_str(&cells.join("\t"));
        out.push('\n');
    }
    out
}

const KEY: &str = "\x1b[94m";
const STRING: &str = "\x1b[32m";
const LITERAL: &str = "\x1b[33m";
const RESET: &str = "\x1b[0m";

fn colour(value: &Value, indent: usize, out: &mut String) {
    let pad = "  ".repeat(indent + 1);
    let close = "  ".repeat(indent);
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push_str("{\n");
            for (i, (k, v)) in map.iter().enumerate() {
                let _ = write!(out, "{pad}{KEY}{}{RESET}: ", Value::String(k.clone()));
                colour(v, indent + 1, out);
                out.push_str(if i + 1 < map.len() { ",\n" } else { "\n" });
            }
            let _ = write!(out, "{close}}}");
        }
        Value::Array(items) if !items.is_empty() => {
            out.push_str("[\n");
            for (i, v) in items.iter().enumerate() {
                out.push_str(&pad);
                colour(v, indent + 1, out);
                out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
            }
            let _ = write!(out, "{close}]");
        }
        Value::String(_) => {
            let _ = write!(out, "{STRING}{value}{RESET}");
        }
        other => {
            let _ = write!(out, "{LITERAL}{other}{RESET}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn subs() -> Value {
        json!([
            {"id": "/subscriptions/a", "subscriptionId": "a", "displayName": "One", "isDefault": true, "tags": {"x": "y"}},
            {"id": "/subscriptions/b", "subscriptionId": "b", "displayName": "Two", "isDefault": false},
        ])
    }

    #[test]
    fn table_has_capitalised_headers_and_skips_nested_values() {
        let text = Output {
            format: Format::Table,
            query: None,
        }
        .render(subs())
        .unwrap();
        let lines: Vec<&str> = text.lines().collect();
        // Columns in the objects' key order, as az prints them.
        assert_eq!(
            lines[0],
            "Id                SubscriptionId  DisplayName  IsDefault"
        );
        assert_eq!(
            lines[1],
            "----------------  --------------  -----------  ---------"
        );
        assert_eq!(
            lines[2],
            "/subscriptions/a  a               One          True"
        );
        assert_eq!(
            lines[3],
            "/subscriptions/b  b               Two          False"
        );
        assert!(!text.contains("tags"));
    }

    #[test]
    fn query_then_tsv() {
        let out = Output {
            format: Format::Tsv,
            query: Some("[?isDefault].{n:displayName, id:subscriptionId}".into()),
        };
        // Columns in the expression's order, as az prints them (the jmespath crate alone
        // would sort them: `id` before `n`).
        assert_eq!(out.render(subs()).unwrap(), "One\ta\n");
    }

    #[test]
    fn query_hashes_keep_the_expression_order_at_every_depth() {
        let out = Output {
            format: Format::Json,
            query: Some("[].{z:displayName, a:{y:id, b:subscriptionId}, m:isDefault}".into()),
        };
        let text = out.render(subs()).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        let keys: Vec<&str> = value[0]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["z", "a", "m"]);
        let inner: Vec<&str> = value[0]["a"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(inner, ["y", "b"]);
    }

    #[test]
    fn bad_query_names_the_expression() {
        let out = Output {
            format: Format::Json,
            query: Some("[?".into()),
        };
        let e = out.render(subs()).unwrap_err().to_string();
        assert!(e.contains("'[?'"), "{e}");
    }

    #[test]
    fn jsonc_is_json_once_colours_are_removed() {
        let out = Output {
            format: Format::Jsonc,
            query: None,
        };
        let text = out.render(subs()).unwrap();
        assert!(text.contains(KEY));
        let plain = text
            .replace(KEY, "")
            .replace(STRING, "")
            .replace(LITERAL, "")
            .replace(RESET, "");
        assert_eq!(serde_json::from_str::<Value>(&plain).unwrap(), subs());
    }
}
