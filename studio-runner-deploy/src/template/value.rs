//! Template values: what Go's `interface{}` holds in a stencil template.

use std::collections::BTreeMap;
use std::fmt::{self, Write};

/// A value in a template's data or produced by an expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Go's `nil`; prints as `<no value>`.
    Nil,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating point number.
    Float(f64),
    /// A string.
    Str(String),
    /// A list.
    List(Vec<Value>),
    /// A map with string keys (ranged over in key order, as Go does).
    Map(BTreeMap<String, Value>),
    /// A value that was looked up but does not exist: a missing map key or an unset
    /// environment variable. Using it as output or as a function argument is an error naming
    /// `key` (unless missing values are allowed); `default`, `empty`, `required`, `if`, `with`,
    /// `and`, `or` and `not` treat it as empty.
    Missing {
        /// What was looked up, e.g. `.duat.versoin` or `$azure_registry_name`.
        key: String,
        /// Where it was looked up (byte offset in the template).
        pos: usize,
    },
}

impl Value {
    /// Go's truth: false, 0, nil, missing and empty strings, lists and maps are false.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Nil | Value::Missing { .. } => false,
            Value::Bool(b) => *b,
            Value::Int(n) => *n != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
        }
    }

    /// A map from string pairs.
    pub fn map_of<K: Into<String>, V: Into<Value>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Value::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// The Go type name, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil | Value::Missing { .. } => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::List(_) => "[]interface {}",
            Value::Map(_) => "map[string]interface {}",
        }
    }

    /// This value as JSON (missing becomes null).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Nil | Value::Missing { .. } => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(n) => serde_json::Value::from(*n),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::Str(s) => serde_json::Value::String(s.clone()),
            Value::List(l) => serde_json::Value::Array(l.iter().map(Value::to_json).collect()),
            Value::Map(m) => {
                serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Int(n)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<serde_json::Value> for Value {
    fn from(v: serde_json::Value) -> Self {
        match v {
            serde_json::Value::Null => Value::Nil,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(0.0)),
            },
            serde_json::Value::String(s) => Value::Str(s),
            serde_json::Value::Array(a) => Value::List(a.into_iter().map(Value::from).collect()),
            serde_json::Value::Object(o) => {
                Value::Map(o.into_iter().map(|(k, v)| (k, Value::from(v))).collect())
            }
        }
    }
}

/// Go's `%v` for a float64 (`strconv.FormatFloat(f, 'g', -1, 64)` with Go's exponent form).
pub(crate) fn format_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-4..1e21).contains(&abs) {
        // Rust's `{:e}` gives `1e21`; Go writes `1e+21`.
        let s = format!("{f:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        return format!("{mantissa}e{sign}{digits:0>2}");
    }
    format!("{f}")
}

impl fmt::Display for Value {
    /// Go's `fmt.Print` of the value (`%v`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Nil | Value::Missing { .. } => f.write_str("<no value>"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(n) => write!(f, "{n}"),
            Value::Float(x) => f.write_str(&format_float(*x)),
            Value::Str(s) => f.write_str(s),
            Value::List(l) => {
                f.write_char('[')?;
                for (i, v) in l.iter().enumerate() {
                    if i > 0 {
                        f.write_char(' ')?;
                    }
                    nested(v, f)?;
                }
                f.write_char(']')
            }
            Value::Map(m) => {
                f.write_str("map[")?;
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_char(' ')?;
                    }
                    write!(f, "{k}:")?;
                    nested(v, f)?;
                }
                f.write_char(']')
            }
        }
    }
}

/// Inside a list or map Go prints nil as `<nil>`.
fn nested(v: &Value, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match v {
        Value::Nil | Value::Missing { .. } => f.write_str("<nil>"),
        other => write!(f, "{other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_as_go() {
        let v = Value::from(serde_json::json!({"b": [1, "x", null], "a": 1.5, "c": true}));
        assert_eq!(v.to_string(), "map[a:1.5 b:[1 x <nil>] c:true]");
        assert_eq!(Value::Nil.to_string(), "<no value>");
        assert_eq!(Value::Float(3.0).to_string(), "3");
        assert_eq!(Value::Float(1e21).to_string(), "1e+21");
        assert_eq!(Value::Float(1.5e-7).to_string(), "1.5e-07");
    }

    #[test]
    fn truth() {
        assert!(!Value::Str(String::new()).truthy());
        assert!(Value::Int(-1).truthy());
        assert!(!Value::List(vec![]).truthy());
        assert!(
            !Value::Missing {
                key: "x".into(),
                pos: 0
            }
            .truthy()
        );
    }
}
