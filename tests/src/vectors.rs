//! The shared test vectors in `../shared/vectors`: Microsoft's published ARM examples and the
//! Azure SDKs' recorded sessions, loaded as data so that a new file becomes a new test case.
//!
//! - ARM examples (`azure-rest-api-specs/.../examples/*.json`): `parameters` (path, query and
//!   body parameters of the request) and `responses` keyed by status code, each with optional
//!   `headers` and `body`.
//! - Recordings (`azure-sdk-assets/...`): the test-proxy format, `Entries[]` of request and
//!   response, served in order through wiremock by [`serve_recording`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::{Map, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The vectors folder: `$STUDIO_VECTORS`, else `../shared/vectors` beside the workspace.
pub fn vectors_dir() -> Result<PathBuf> {
    let dir = match std::env::var_os("STUDIO_VECTORS") {
        Some(dir) => PathBuf::from(dir),
        None => crate::workspace_root().join("../shared/vectors"),
    };
    if !dir.join("README.md").is_file() {
        bail!(
            "the shared test vectors are not at {} (set STUDIO_VECTORS)",
            dir.display()
        );
    }
    Ok(dir)
}

/// One response of an ARM example.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ExampleResponse {
    /// Response headers (e.g. `Azure-AsyncOperation`, `Location`, `Retry-After`).
    #[serde(default)]
    pub headers: Map<String, Value>,
    /// The response body, if any.
    #[serde(default)]
    pub body: Option<Value>,
}

/// An ARM example file.
#[derive(Clone, Debug)]
pub struct ArmExample {
    /// The file.
    pub path: PathBuf,
    /// `title`, when the file has one.
    pub title: Option<String>,
    /// `operationId`, when the file has one.
    pub operation_id: Option<String>,
    /// The request's parameters (path, query, and the body parameter by its name).
    pub parameters: Map<String, Value>,
    /// Responses by status code.
    pub responses: BTreeMap<u16, ExampleResponse>,
}

impl ArmExample {
    /// Loads one example file.
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let raw: Value =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let parameters = raw
            .get("parameters")
            .and_then(Value::as_object)
            .cloned()
            .with_context(|| format!("{}: no `parameters` object", path.display()))?;
        let mut responses = BTreeMap::new();
        if let Some(map) = raw.get("responses").and_then(Value::as_object) {
            for (code, response) in map {
                let code: u16 = code.parse().with_context(|| {
                    format!("{}: response key '{code}' is not a status", path.display())
                })?;
                let response: ExampleResponse = serde_json::from_value(response.clone())
                    .with_context(|| format!("{}: response {code}", path.display()))?;
                responses.insert(code, response);
            }
        }
        Ok(Self {
            path: path.to_owned(),
            title: raw.get("title").and_then(Value::as_str).map(str::to_owned),
            operation_id: raw
                .get("operationId")
                .and_then(Value::as_str)
                .map(str::to_owned),
            parameters,
            responses,
        })
    }

    /// The file name without `.json`, e.g. `RegistryCreate`.
    pub fn name(&self) -> String {
        self.path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// A parameter as a string (path and query parameters are strings in examples).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.parameters.get(name).and_then(Value::as_str)
    }
}

/// Every `*.json` file directly under `vectors_dir()/<relative>`, sorted, as ARM examples.
pub fn arm_examples(relative: &str) -> Result<Vec<ArmExample>> {
    json_files(&vectors_dir()?.join(relative))?
        .iter()
        .map(|p| ArmExample::load(p))
        .collect()
}

/// Every `examples` folder below `vectors_dir()/<relative>`, recursively.
pub fn example_dirs(relative: &str) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut stack = vec![vectors_dir()?.join(relative)];
    while let Some(dir) = stack.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n == "examples") {
                    found.push(path.clone());
                }
                stack.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// `*.json` files directly in `dir`, sorted.
pub fn json_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    Ok(files)
}

/// One request and response of a recorded session.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RecordedEntry {
    /// The full request URI.
    pub request_uri: String,
    /// The HTTP method.
    pub request_method: String,
    /// Request headers.
    #[serde(default)]
    pub request_headers: Map<String, Value>,
    /// Request body (a string for forms, JSON otherwise), if any.
    #[serde(default)]
    pub request_body: Option<Value>,
    /// Response status.
    pub status_code: u16,
    /// Response headers (a value may be a list).
    #[serde(default)]
    pub response_headers: Map<String, Value>,
    /// Response body, if any.
    #[serde(default)]
    pub response_body: Option<Value>,
}

impl RecordedEntry {
    /// The request URI's path.
    pub fn path(&self) -> Result<String> {
        Ok(url::Url::parse(&self.request_uri)?.path().to_owned())
    }
}

/// A recorded session (Azure SDK test-proxy format).
#[derive(Clone, Debug, Deserialize)]
pub struct Recording {
    /// The entries, in the order they happened.
    #[serde(rename = "Entries")]
    pub entries: Vec<RecordedEntry>,
    /// The file it came from.
    #[serde(skip)]
    pub path: PathBuf,
}

impl Recording {
    /// Loads a recording.
    pub fn load(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut recording: Recording =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        recording.path = path.to_owned();
        Ok(recording)
    }
}

/// Every recording under `vectors_dir()/<relative>`, sorted.
pub fn recordings(relative: &str) -> Result<Vec<Recording>> {
    json_files(&vectors_dir()?.join(relative))?
        .iter()
        .map(|p| Recording::load(p))
        .collect()
}

/// Mounts `recording` on `server`: each entry answers once, in order, to a request with the
/// same method and path, with the recorded status, headers and body.
pub async fn serve_recording(server: &MockServer, recording: &Recording) -> Result<()> {
    for (i, entry) in recording.entries.iter().enumerate() {
        let mut response = ResponseTemplate::new(entry.status_code);
        for (name, value) in &entry.response_headers {
            let lower = name.to_ascii_lowercase();
            if [
                "content-length",
                "transfer-encoding",
                "connection",
                "content-encoding",
            ]
            .contains(&lower.as_str())
            {
                continue;
            }
            let joined = match value {
                Value::Array(items) => items
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            response = response.insert_header(name.as_str(), joined.as_str());
        }
        match &entry.response_body {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => response = response.set_body_string(s.clone()),
            Some(json) => {
                response = response.set_body_raw(serde_json::to_vec(json)?, "application/json")
            }
        }
        Mock::given(method(entry.request_method.as_str()))
            .and(path(entry.path()?))
            .respond_with(response)
            .up_to_n_times(1)
            .with_priority(u8::try_from(i + 1).unwrap_or(u8::MAX))
            .named(format!("{} entry {i}", recording.path.display()))
            .mount(server)
            .await;
    }
    Ok(())
}

/// One operation of an OpenAPI (Swagger 2.0) ARM spec, as an example file is tied to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecOperation {
    /// `operationId`, e.g. `Registries_Create`.
    pub operation_id: String,
    /// The HTTP method, upper-case.
    pub method: String,
    /// The path template, e.g. `/subscriptions/{subscriptionId}/…/registries/{registryName}`.
    pub path: String,
    /// The name of the parameter that is `in: body`, if the operation has one.
    pub body_parameter: Option<String>,
}

/// The operations of the spec at `spec`, keyed by the file name of each example they list in
/// `x-ms-examples` (e.g. `RegistryCreate.json`), so an example file finds its operation.
pub fn spec_operations_by_example(spec: &Path) -> Result<BTreeMap<String, SpecOperation>> {
    let text =
        std::fs::read_to_string(spec).with_context(|| format!("reading {}", spec.display()))?;
    let raw: Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", spec.display()))?;
    let paths = raw
        .get("paths")
        .and_then(Value::as_object)
        .with_context(|| format!("{}: no `paths`", spec.display()))?;
    let mut found = BTreeMap::new();
    for (path, methods) in paths {
        let Some(methods) = methods.as_object() else {
            continue;
        };
        for (method, operation) in methods {
            if !["get", "put", "post", "patch", "delete", "head"].contains(&method.as_str()) {
                continue; // path-level `parameters`
            }
            let operation_id = operation
                .get("operationId")
                .and_then(Value::as_str)
                .with_context(|| format!("{method} {path}: no operationId"))?;
            let body_parameter = operation
                .get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .find(|p| p.get("in").and_then(Value::as_str) == Some("body"))
                .and_then(|p| p.get("name").and_then(Value::as_str))
                .map(str::to_owned);
            let op = SpecOperation {
                operation_id: operation_id.to_owned(),
                method: method.to_ascii_uppercase(),
                path: path.clone(),
                body_parameter,
            };
            for example in operation
                .get("x-ms-examples")
                .and_then(Value::as_object)
                .into_iter()
                .flat_map(|m| m.values())
            {
                let Some(reference) = example.get("$ref").and_then(Value::as_str) else {
                    continue;
                };
                let file = reference.rsplit('/').next().unwrap_or(reference).to_owned();
                if let Some(previous) = found.insert(file.clone(), op.clone()) {
                    bail!(
                        "{file} is an example of both {} and {operation_id}",
                        previous.operation_id
                    );
                }
            }
        }
    }
    Ok(found)
}

/// How the JSON shapes of two documents compare: every path (`a.b`, array items as `a[]`) with
/// the JSON types found there.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShapeDiff {
    /// Paths both have, with the same types.
    pub shared: Vec<String>,
    /// Paths both have whose types differ: `path: ours vs reference`.
    pub mismatched: Vec<String>,
    /// Paths only `ours` has.
    pub only_ours: Vec<String>,
}

/// Every path of `value` with the JSON types found there.
pub fn shape(value: &Value) -> BTreeMap<String, BTreeSet<&'static str>> {
    fn walk(v: &Value, path: &str, out: &mut BTreeMap<String, BTreeSet<&'static str>>) {
        let kind = match v {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        if !path.is_empty() {
            out.entry(path.to_owned()).or_default().insert(kind);
        }
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    walk(child, &p, out);
                }
            }
            Value::Array(items) => {
                for child in items {
                    walk(child, &format!("{path}[]"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = BTreeMap::new();
    walk(value, "", &mut out);
    out
}

/// Compares the shape of `ours` with `reference` (e.g. a request body from an ARM example).
pub fn compare_shapes(ours: &Value, reference: &Value) -> ShapeDiff {
    let ours = shape(ours);
    let reference = shape(reference);
    let mut diff = ShapeDiff::default();
    for (path, kinds) in &ours {
        match reference.get(path) {
            None => diff.only_ours.push(path.clone()),
            Some(theirs) if kinds.is_subset(theirs) => diff.shared.push(path.clone()),
            Some(theirs) => diff
                .mismatched
                .push(format!("{path}: {kinds:?} vs {theirs:?}")),
        }
    }
    diff
}

/// Every `*.json` file below `vectors_dir()/<relative>`, recursively, sorted.
pub fn json_files_recursive(relative: &str) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut stack = vec![vectors_dir()?.join(relative)];
    while let Some(dir) = stack.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "json") {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}
