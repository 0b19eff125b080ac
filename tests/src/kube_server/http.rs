//! The API server's HTTP side: discovery, CRUD, list, watch and patches over https.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};

use super::store::{ApiError, ResourceType, Store, TYPES, WatchEvent, find_type};

pub type Body = BoxBody<Bytes, std::io::Error>;

/// What the handlers share.
pub struct State {
    pub store: Arc<Store>,
    pub token: String,
    pub host: String,
    /// Every request seen: `METHOD path?query content-type`.
    pub requests: std::sync::Mutex<Vec<String>>,
}

fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into())
        .map_err(|never| match never {})
        .boxed()
}

fn json_response(code: u16, value: &Value) -> Response<Body> {
    let mut resp = Response::new(full(value.to_string()));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.code, &e.status())
}

pub async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let query: HashMap<String, String> = req
        .uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let content_type = header("content-type");
    let authorization = header("authorization");
    let user_agent = header("user-agent");
    if let Ok(mut seen) = state.requests.lock() {
        seen.push(format!(
            "{method} {}{} {content_type}",
            path,
            req.uri()
                .query()
                .map(|q| format!("?{q}"))
                .unwrap_or_default()
        ));
    }
    if authorization != format!("Bearer {}", state.token) {
        return Ok(error_response(&ApiError::new(
            401,
            "Unauthorized",
            "Unauthorized",
        )));
    }
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return Ok(error_response(&ApiError::new(
                400,
                "BadRequest",
                e.to_string(),
            )));
        }
    };
    let response = route(
        &state,
        &method,
        &path,
        &query,
        &content_type,
        &user_agent,
        &body,
    )
    .await
    .unwrap_or_else(|e| error_response(&e));
    Ok(response)
}

fn discovery(state: &State, path: &str) -> Option<Value> {
    let groups: Vec<&str> = {
        let mut g: Vec<&str> = TYPES
            .iter()
            .map(|t| t.group)
            .filter(|g| !g.is_empty())
            .collect();
        g.dedup();
        g
    };
    match path {
        "/version" => Some(json!({
            "major": "1", "minor": "33", "gitVersion": "v1.33.0", "gitCommit": "studio-test-server",
            "gitTreeState": "clean", "buildDate": "2025-04-23T00:00:00Z", "goVersion": "go1.24.2",
            "compiler": "gc", "platform": "linux/amd64",
        })),
        "/api" => Some(json!({
            "kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": state.host}],
        })),
        "/apis" => Some(json!({
            "kind": "APIGroupList", "apiVersion": "v1",
            "groups": groups.iter().map(|g| json!({
                "name": g,
                "versions": [{"groupVersion": format!("{g}/v1"), "version": "v1"}],
                "preferredVersion": {"groupVersion": format!("{g}/v1"), "version": "v1"},
            })).collect::<Vec<_>>(),
        })),
        "/openapi/v3" => {
            let mut paths = serde_json::Map::new();
            for gv in group_versions(&groups) {
                paths.insert(
                    gv.clone(),
                    json!({"serverRelativeURL": format!("/openapi/v3/{gv}?hash=studio")}),
                );
            }
            Some(json!({"paths": paths}))
        }
        _ if path.starts_with("/openapi/v3/") => openapi_v3(&path["/openapi/v3/".len()..]),
        _ => {
            let (group, gv) = if path == "/api/v1" {
                ("", "v1".to_owned())
            } else {
                let rest = path.strip_prefix("/apis/")?;
                let (g, v) = rest.split_once('/')?;
                if v != "v1" || v.contains('/') || !groups.contains(&g) {
                    return None;
                }
                (groups.iter().copied().find(|x| *x == g)?, format!("{g}/v1"))
            };
            let mut resources = Vec::new();
            for t in TYPES.iter().filter(|t| t.group == group) {
                let mut r = json!({
                    "name": t.plural, "singularName": t.singular, "namespaced": t.namespaced,
                    "kind": t.kind,
                    "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
                });
                if !t.short_names.is_empty() {
                    r["shortNames"] = json!(t.short_names);
                }
                resources.push(r);
                if t.status {
                    resources.push(json!({
                        "name": format!("{}/status", t.plural), "singularName": "",
                        "namespaced": t.namespaced, "kind": t.kind, "verbs": ["get", "patch", "update"],
                    }));
                }
            }
            Some(
                json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
            )
        }
    }
}

fn group_versions(groups: &[&str]) -> Vec<String> {
    let mut out = vec!["api/v1".to_owned()];
    out.extend(groups.iter().map(|g| format!("apis/{g}/v1")));
    out
}

/// A minimal OpenAPI v3 document for one group version: each kind's PATCH operation with its
/// `fieldValidation` parameter, which is what kubectl reads to leave validation to the server.
fn openapi_v3(gv: &str) -> Option<Value> {
    let group = match gv {
        "api/v1" => "",
        other => other.strip_prefix("apis/")?.strip_suffix("/v1")?,
    };
    let mut paths = serde_json::Map::new();
    for t in TYPES.iter().filter(|t| t.group == group) {
        let prefix = if group.is_empty() {
            "/api/v1".to_owned()
        } else {
            format!("/apis/{group}/v1")
        };
        let path = if t.namespaced {
            format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", t.plural)
        } else {
            format!("{prefix}/{}/{{name}}", t.plural)
        };
        let params = ["dryRun", "fieldManager", "fieldValidation", "force"]
            .iter()
            .map(|p| json!({"name": p, "in": "query", "schema": {"type": if *p == "force" { "boolean" } else { "string" }, "uniqueItems": true}}))
            .collect::<Vec<_>>();
        paths.insert(path, json!({
            "patch": {
                "operationId": format!("patch{}", t.kind),
                "parameters": params,
                "responses": {"200": {"description": "OK"}},
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": {"group": group, "version": "v1", "kind": t.kind},
            }
        }));
    }
    if paths.is_empty() {
        return None;
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}

/// A parsed resource path.
struct Target {
    t: &'static ResourceType,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

fn parse_target(path: &str) -> Option<Target> {
    let (group, rest) = if let Some(r) = path.strip_prefix("/api/v1/") {
        ("", r)
    } else {
        let r = path.strip_prefix("/apis/")?;
        let mut parts = r.splitn(3, '/');
        let g = parts.next()?;
        let v = parts.next()?;
        if v != "v1" {
            return None;
        }
        (TYPES.iter().find(|t| t.group == g)?.group, parts.next()?)
    };
    let segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let (namespace, segs) = match segs.as_slice() {
        ["namespaces", ns, plural, rest @ ..] if *plural != "status" && *plural != "finalize" => {
            (Some((*ns).to_owned()), [&[*plural][..], rest].concat())
        }
        _ => (None, segs.clone()),
    };
    let t = find_type(group, segs.first()?)?;
    if t.namespaced != namespace.is_some() && segs.len() > 1 {
        return None;
    }
    Some(Target {
        t,
        namespace,
        name: segs.get(1).map(|s| (*s).to_owned()),
        subresource: segs.get(2).map(|s| (*s).to_owned()),
    })
}

async fn route(
    state: &Arc<State>,
    method: &str,
    path: &str,
    query: &HashMap<String, String>,
    content_type: &str,
    user_agent: &str,
    body: &Bytes,
) -> Result<Response<Body>, ApiError> {
    if method == "GET"
        && let Some(doc) = discovery(state, path)
    {
        return Ok(json_response(200, &doc));
    }
    let Some(target) = parse_target(path) else {
        return Err(ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        ));
    };
    let t = target.t;
    let ns = target.namespace.clone().unwrap_or_default();
    let store = &state.store;
    let manager = query
        .get("fieldManager")
        .cloned()
        .unwrap_or_else(|| user_agent.split('/').next().unwrap_or_default().to_owned());
    let dry_run = query.get("dryRun").is_some_and(|d| d == "All");
    let parse_body = || -> Result<Value, ApiError> {
        if content_type.contains("yaml") {
            let text = std::str::from_utf8(body)
                .map_err(|e| ApiError::new(400, "BadRequest", e.to_string()))?;
            serde_saphyr::from_str::<Value>(text)
                .map_err(|e| ApiError::new(400, "BadRequest", format!("error decoding YAML: {e}")))
        } else {
            serde_json::from_slice(body)
                .map_err(|e| ApiError::new(400, "BadRequest", format!("error decoding JSON: {e}")))
        }
    };
    if dry_run && method != "POST" && method != "GET" {
        return Err(ApiError::new(
            400,
            "BadRequest",
            "dryRun is supported only on create by this test server",
        ));
    }
    match (method, &target.name, target.subresource.as_deref()) {
        ("GET", None, _) => {
            let watch = query.get("watch").is_some_and(|w| w == "true" || w == "1");
            let labels = query.get("labelSelector").cloned().unwrap_or_default();
            let fields = query.get("fieldSelector").cloned().unwrap_or_default();
            let selector = Selector::parse(&labels, &fields)?;
            if watch {
                return Ok(watch_response(state, t, target.namespace, selector, query));
            }
            let (items, rv) = store.list(t, target.namespace.as_deref());
            let items: Vec<Value> = items.into_iter().filter(|o| selector.matches(o)).collect();
            Ok(json_response(
                200,
                &json!({
                    "kind": format!("{}List", t.kind), "apiVersion": t.api_version(),
                    "metadata": {"resourceVersion": rv.to_string()}, "items": items,
                }),
            ))
        }
        ("GET", Some(name), _) => {
            let key = super::store::key_for(t, &ns, name);
            match store.get(&key) {
                Some(o) => Ok(json_response(200, &o)),
                None => {
                    let mut e = ApiError::new(
                        404,
                        "NotFound",
                        format!("{} \"{name}\" not found", t.qualified()),
                    );
                    e.details = json!({"name": name, "group": t.group, "kind": t.plural});
                    Err(e)
                }
            }
        }
        ("POST", None, _) => {
            let object = parse_body()?;
            if dry_run {
                return Ok(json_response(201, &object));
            }
            let created = store.create(t, &ns, object, &manager)?;
            Ok(json_response(201, &created))
        }
        ("PUT", Some(name), sub) => {
            let object = parse_body()?;
            let updated = store.update(t, &ns, name, object, &manager, sub == Some("status"))?;
            Ok(json_response(200, &updated))
        }
        ("PATCH", Some(name), sub) => {
            let patch = parse_body()?;
            if content_type.starts_with("application/apply-patch") {
                let force = query.get("force").is_some_and(|f| f == "true");
                let applied = store.apply(t, &ns, name, patch, &manager, force)?;
                return Ok(json_response(200, &applied));
            }
            if !(content_type.starts_with("application/merge-patch+json")
                || content_type.starts_with("application/strategic-merge-patch+json"))
            {
                return Err(ApiError::new(
                    415,
                    "UnsupportedMediaType",
                    format!(
                        "the body of the request was in an unsupported media type: {content_type}"
                    ),
                ));
            }
            let key = super::store::key_for(t, &ns, name);
            let Some(mut object) = store.get(&key) else {
                return Err(ApiError::new(
                    404,
                    "NotFound",
                    format!("{} \"{name}\" not found", t.qualified()),
                ));
            };
            merge_patch(&mut object, &patch);
            if let Some(m) = object["metadata"].as_object_mut() {
                m.remove("resourceVersion");
            }
            let updated = store.update(t, &ns, name, object, &manager, sub == Some("status"))?;
            Ok(json_response(200, &updated))
        }
        ("DELETE", Some(name), None) => {
            let deleted = store.delete(t, &ns, name)?;
            Ok(json_response(200, &deleted))
        }
        _ => Err(ApiError::new(
            405,
            "MethodNotAllowed",
            format!("{method} is not supported on {path}"),
        )),
    }
}

/// RFC 7386 JSON merge patch.
fn merge_patch(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

fn watch_response(
    state: &Arc<State>,
    t: &'static ResourceType,
    namespace: Option<String>,
    selector: Selector,
    query: &HashMap<String, String>,
) -> Response<Body> {
    let since = query
        .get("resourceVersion")
        .and_then(|rv| rv.parse::<u64>().ok())
        .filter(|rv| *rv > 0);
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(300)
        .min(300);
    let bookmarks = query
        .get("allowWatchBookmarks")
        .is_some_and(|b| b == "true");
    let (past, mut rx) = state.store.watch(t, since);
    let (tx, out) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(64);
    let store = state.store.clone();
    let matches = move |e: &WatchEvent| {
        namespace.as_deref().is_none_or(|ns| e.key.namespace == ns) && selector.matches(&e.object)
    };
    let line = |kind: &str, object: &Value| {
        let mut text = json!({"type": kind, "object": object}).to_string();
        text.push('\n');
        Ok(Frame::data(Bytes::from(text)))
    };
    tokio::spawn(async move {
        let deadline = tokio::time::sleep(Duration::from_secs(timeout));
        tokio::pin!(deadline);
        let mut last = since.unwrap_or(0);
        for e in past {
            if matches(&e) && tx.send(line(e.kind, &e.object)).await.is_err() {
                return;
            }
            last = last.max(e.rv);
        }
        let mut tick = tokio::time::interval(Duration::from_secs(10));
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                _ = tick.tick(), if bookmarks => {
                    let rv = store.resource_version().max(last);
                    let object = json!({"kind": t.kind, "apiVersion": t.api_version(), "metadata": {"resourceVersion": rv.to_string()}});
                    if tx.send(line("BOOKMARK", &object)).await.is_err() {
                        return;
                    }
                }
                event = rx.recv() => match event {
                    Ok(e) => {
                        if e.rv <= last || e.key.group != t.group || e.key.plural != t.plural {
                            continue;
                        }
                        last = e.rv;
                        if matches(&e) && tx.send(line(e.kind, &e.object)).await.is_err() {
                            return;
                        }
                    }
                    // A watcher that lags ends; the client watches again from its version.
                    Err(_) => return,
                }
            }
        }
    });
    let stream = futures::stream::unfold(
        out,
        |mut rx| async move { rx.recv().await.map(|f| (f, rx)) },
    );
    let mut resp = Response::new(StreamBody::new(stream).boxed());
    resp.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// A label selector and a field selector.
#[derive(Clone, Default)]
pub struct Selector {
    labels: Vec<Requirement>,
    fields: Vec<(String, bool, String)>,
}

#[derive(Clone)]
enum Requirement {
    Eq(String, String),
    Ne(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

fn split_top_level(s: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut current = String::new();
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    parts
        .into_iter()
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

impl Selector {
    pub fn parse(labels: &str, fields: &str) -> Result<Self, ApiError> {
        let bad = |s: &str| {
            ApiError::new(
                400,
                "BadRequest",
                format!("unable to parse requirement: {s}"),
            )
        };
        let mut out = Selector::default();
        for term in split_top_level(labels) {
            let set = |rest: &str| -> Vec<String> {
                rest.trim()
                    .trim_start_matches('(')
                    .trim_end_matches(')')
                    .split(',')
                    .map(|v| v.trim().to_owned())
                    .collect()
            };
            let r = if let Some(k) = term.strip_prefix('!') {
                Requirement::NotExists(k.trim().to_owned())
            } else if let Some((k, v)) = term.split_once("!=") {
                Requirement::Ne(k.trim().to_owned(), v.trim().to_owned())
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                Requirement::Eq(k.trim().to_owned(), v.trim().to_owned())
            } else if let Some((k, v)) = term.split_once(" notin ") {
                Requirement::NotIn(k.trim().to_owned(), set(v))
            } else if let Some((k, v)) = term.split_once(" in ") {
                Requirement::In(k.trim().to_owned(), set(v))
            } else if term
                .chars()
                .all(|c| c.is_alphanumeric() || "-_./".contains(c))
            {
                Requirement::Exists(term.clone())
            } else {
                return Err(bad(&term));
            };
            out.labels.push(r);
        }
        for term in split_top_level(fields) {
            let (k, eq, v) = if let Some((k, v)) = term.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                (k, true, v)
            } else {
                return Err(bad(&term));
            };
            out.fields
                .push((k.trim().to_owned(), eq, v.trim().to_owned()));
        }
        Ok(out)
    }

    pub fn matches(&self, object: &Value) -> bool {
        let labels = &object["metadata"]["labels"];
        let label = |k: &str| labels.get(k).and_then(Value::as_str);
        let labels_ok = self.labels.iter().all(|r| match r {
            Requirement::Eq(k, v) => label(k) == Some(v.as_str()),
            Requirement::Ne(k, v) => label(k) != Some(v.as_str()),
            Requirement::In(k, vs) => label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Requirement::NotIn(k, vs) => label(k).is_none_or(|l| !vs.iter().any(|v| v == l)),
            Requirement::Exists(k) => label(k).is_some(),
            Requirement::NotExists(k) => label(k).is_none(),
        });
        labels_ok
            && self.fields.iter().all(|(path, eq, want)| {
                let mut node = object;
                for part in path.split('.') {
                    node = &node[part];
                }
                let actual = match node {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                (actual == *want) == *eq
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors() {
        let obj = json!({"metadata": {"name": "p", "labels": {"app": "x", "tier": "web"}}, "spec": {"nodeName": "n1"}});
        let s = |l: &str, f: &str| Selector::parse(l, f).unwrap().matches(&obj);
        assert!(s("app=x,tier in (web, db)", "metadata.name=p"));
        assert!(!s("app!=x", ""));
        assert!(s("!missing,app", "spec.nodeName!=n2"));
        assert!(!s("tier notin (web)", ""));
        assert!(!s("", "metadata.name=q"));
    }

    #[test]
    fn paths() {
        let t = parse_target("/apis/apps/v1/namespaces/ns/deployments/d/status").unwrap();
        assert_eq!(
            (
                t.t.kind,
                t.namespace.as_deref(),
                t.name.as_deref(),
                t.subresource.as_deref()
            ),
            ("Deployment", Some("ns"), Some("d"), Some("status"))
        );
        let t = parse_target("/api/v1/namespaces/ns").unwrap();
        assert_eq!((t.t.kind, t.name.as_deref()), ("Namespace", Some("ns")));
        let t = parse_target("/api/v1/pods").unwrap();
        assert!(t.namespace.is_none() && t.name.is_none());
        assert!(parse_target("/api/v1/namespaces/ns/nodes/x").is_none());
    }
}
