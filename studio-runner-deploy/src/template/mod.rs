//! Stencil-compatible templates: Go's `text/template` with the sprig functions stencil
//! templates use, over the data stencil provides (`.duat.*`, `.Env.*`, `--values`).
//!
//! The engine is ours (no maintained Rust crate reports positions for missing values):
//!
//! - syntax: `{{ }}`, `{{- -}}` trimming, comments, pipelines, parenthesised pipelines,
//!   `if`/`else if`/`else`, `range` (lists, maps in key order, integers; `break`/`continue`),
//!   `with`/`else`, variables (`$x := …`, `$x = …`, `$`), `define`/`template`;
//! - Go's functions `and or not len index print printf println eq ne lt le gt ge`;
//! - sprig's `expandenv env default empty required quote squote upper lower title trim
//!   trimSuffix trimPrefix replace contains hasPrefix hasSuffix b64enc b64dec toJson toYaml
//!   indent nindent list dict` (`toJson`/`toYaml` as stencil's own: Go's `json.Marshal` and
//!   go-yaml v2).
//!
//! A missing value (an absent map key, an unset environment variable in `env`/`expandenv`)
//! is an error naming it with `file:line:column`, where stencil printed `<no value>`;
//! [`RenderOptions::allow_missing`] restores stencil's behaviour (`<no value>` for a missing
//! key, the empty string for an unset variable). `default`, `empty`,
//! `required`, `not`, `if`, `with`, `and` and `or` treat a missing value as empty, so
//! `{{ default "x" .maybe }}` and `{{ if .maybe }}` work either way.
//!
//! ```
//! use studio_runner_deploy::template::{Template, Context, RenderOptions, Duat};
//!
//! let t = Template::parse("image.yaml", "image: {{ expandenv \"$acr\" }}.azurecr.io/{{ .duat.module }}:{{ .duat.version }}\n")?;
//! let ctx = Context {
//!     duat: Duat { module: "runner".into(), version: "0.9.1".into(), ..Default::default() },
//!     env: [("acr".to_owned(), "studioml".to_owned())].into(),
//!     ..Default::default()
//! };
//! assert_eq!(t.render(&ctx, &RenderOptions::default())?, "image: studioml.azurecr.io/runner:0.9.1\n");
//!
//! let err = t.render(&Context::default(), &RenderOptions::default()).unwrap_err();
//! assert_eq!(err.to_string(), "image.yaml:1:11: missing value: environment variable $acr");
//! # Ok::<(), studio_runner_deploy::Error>(())
//! ```

mod context;
mod exec;
mod funcs;
mod lex;
mod parse;
mod value;
mod yaml;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

pub use context::{
    Context, Duat, base62, image_name, parse_values, release_version, scrub_module_name,
};
pub use value::Value;

use crate::Error;

/// A byte offset in the template source.
pub(crate) type Pos = usize;

/// How to render.
#[derive(Clone, Debug, Default)]
pub struct RenderOptions {
    /// Print `<no value>` for missing values, as stencil did, instead of failing.
    pub allow_missing: bool,
}

/// A parsed template.
#[derive(Debug)]
pub struct Template {
    name: String,
    source: String,
    root: Vec<parse::Node>,
    defines: HashMap<String, Vec<parse::Node>>,
}

impl Template {
    /// Parses `source`; `name` (usually the file name) prefixes error positions.
    pub fn parse(name: &str, source: &str) -> Result<Self, Error> {
        let syntax = |(message, pos): (String, Pos)| {
            let (line, column) = line_column(source, pos);
            Error::TemplateSyntax {
                file: name.to_owned(),
                line,
                column,
                message,
            }
        };
        let pieces = lex::lex(source).map_err(syntax)?;
        let parsed = parse::parse(pieces).map_err(syntax)?;
        Ok(Self {
            name: name.to_owned(),
            source: source.to_owned(),
            root: parsed.root,
            defines: parsed.defines.into_iter().collect(),
        })
    }

    /// Reads and parses a template file.
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let source = std::fs::read_to_string(path).map_err(|e| Error::Io {
            path: path.to_owned(),
            source: e,
        })?;
        Self::parse(&path.display().to_string(), &source)
    }

    /// Renders with `context` (its data is `.duat`, `.Env` and the values).
    pub fn render(&self, context: &Context, options: &RenderOptions) -> Result<String, Error> {
        self.render_value(&context.data(), &context.env, options)
    }

    /// Renders with any data as dot; `env` serves `env` and `expandenv`.
    pub fn render_value(
        &self,
        data: &Value,
        env: &BTreeMap<String, String>,
        options: &RenderOptions,
    ) -> Result<String, Error> {
        let mut exec = exec::Exec::new(&self.defines, env, options.allow_missing, data);
        match exec.run(&self.root, data) {
            Ok(()) => Ok(exec.out),
            Err(exec::ExecError::Failed(message, pos)) => {
                let (line, column) = line_column(&self.source, pos);
                Err(Error::TemplateExec {
                    file: self.name.clone(),
                    line,
                    column,
                    message,
                })
            }
            Err(exec::ExecError::Missing { key, pos }) => {
                let (line, column) = line_column(&self.source, pos);
                Err(Error::MissingValue {
                    file: self.name.clone(),
                    line,
                    column,
                    key,
                })
            }
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(source: &str, pos: Pos) -> (usize, usize) {
    let pos = pos.min(source.len());
    let before = &source[..pos];
    let line = before.matches('\n').count() + 1;
    let start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    (line, before[start..].chars().count() + 1)
}

#[cfg(test)]
mod tests;
