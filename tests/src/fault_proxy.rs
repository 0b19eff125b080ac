//! A fault-injecting https proxy between a client and one of the rig's real peers (the
//! registry): it terminates TLS with the run's certificate, forwards each request to the peer
//! over https, and on a schedule injects faults instead: a connection reset in the middle of
//! a blob upload, 500/502/503 answers, 429 with `Retry-After`, and a stalled answer (the
//! client's read timeout must fire). It counts requests, retries and the body bytes it
//! received, per blob, so a test can bound what was sent again.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use futures::TryStreamExt;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// One injected fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Read half of a blob upload's body, then drop the connection without an answer.
    ResetMidBlob,
    /// Answer with this status (500, 502, 503…) without forwarding.
    Status(u16),
    /// Answer 429 with `Retry-After: <seconds>`.
    TooManyRequests {
        /// The `Retry-After` value.
        retry_after_secs: u64,
    },
    /// Read the request, then never answer (until the client gives up).
    Stall,
    /// Read half of a chunk's body (`PATCH` of an upload session), then drop the connection;
    /// nothing reaches the registry, so the session cannot resume at the client's offset.
    ResetMidChunk,
}

/// How the proxy reshapes the registry's protocol (besides faults).
#[derive(Clone, Debug, Default)]
pub struct Behaviour {
    /// Adds `OCI-Chunk-Min-Length: N` to the registry's answers opening an upload session.
    pub chunk_min_length: Option<u64>,
    /// Answers `413` to a monolithic upload (a `PUT …?digest=` with a body), as a registry
    /// with a request size limit does.
    pub refuse_monolithic: bool,
    /// Once this many blob uploads completed, later blob uploads are held unanswered (so a
    /// test can kill the client at a known point).
    pub hold_after_completed: Option<usize>,
}

/// One `PATCH` the proxy received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Patch {
    /// The upload session (the last segment of `…/blobs/uploads/<id>`).
    pub session: String,
    /// Its `Content-Length`.
    pub length: u64,
}

/// What the proxy saw.
#[derive(Clone, Debug, Default)]
pub struct ProxyStats {
    /// Requests received (faulted or forwarded).
    pub requests: u64,
    /// Faults injected, with the request each hit (`METHOD path`).
    pub injected: Vec<(Fault, String)>,
    /// Body bytes received for each blob upload (`PUT …?digest=`), summed over attempts.
    pub blob_bytes_received: BTreeMap<String, u64>,
    /// How many upload attempts each blob needed.
    pub blob_attempts: BTreeMap<String, u32>,
    /// Blobs whose upload had a fault injected or was refused by the upstream with a `401`.
    pub faulted_blobs: Vec<String>,
    /// Requests carrying credentials that the upstream itself answered `401` (`METHOD path`),
    /// e.g. for an expired token (a first request without credentials is not counted).
    pub unauthorized: Vec<String>,
    /// Blob uploads the upstream completed (`201` to `PUT …?digest=`), in order.
    pub completed_blobs: Vec<String>,
    /// Body bytes received for each upload session's `PATCH`es, summed.
    pub session_bytes_received: BTreeMap<String, u64>,
    /// Every `PATCH` received, in order (faulted ones included).
    pub patches: Vec<Patch>,
    /// Upload sessions finished by a `PUT …?digest=`: session → digest.
    pub session_digests: BTreeMap<String, String>,
    /// Blob uploads held unanswered ([`Behaviour::hold_after_completed`]).
    pub held: u64,
    /// Monolithic uploads answered `413` ([`Behaviour::refuse_monolithic`]).
    pub refused_monolithic: u64,
}

struct State {
    upstream: String,
    http: reqwest::Client,
    plan: Mutex<VecDeque<Fault>>,
    stats: Mutex<ProxyStats>,
    behaviour: Mutex<Behaviour>,
}

/// The proxy; dropped, it stops listening.
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

type ProxyBody = BoxBody<Bytes, std::io::Error>;

fn full(status: u16, headers: &[(&str, String)]) -> Response<ProxyBody> {
    let mut response = Response::builder().status(status);
    for (k, v) in headers {
        response = response.header(*k, v.as_str());
    }
    response
        .body(
            Full::new(Bytes::from_static(
                b"{\"errors\":[{\"code\":\"UNAVAILABLE\",\"message\":\"injected fault\"}]}",
            ))
            .map_err(|never: Infallible| match never {})
            .boxed(),
        )
        .unwrap_or_else(|_| unreachable!())
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to `https://<upstream_host>`; every other
    /// blob upload gets the next reset of `plan`, and every third request its next other fault,
    /// until the plan is used up.
    pub async fn start(upstream_host: &str, plan: Vec<Fault>) -> Result<Self> {
        let cert = &crate::rig().server_cert;
        let certs = CertificateDer::pem_slice_iter(cert.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .context("parsing the proxy certificate")?;
        let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).context("parsing key")?;
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let state = Arc::new(State {
            upstream: upstream_host.to_owned(),
            http: crate::rig().http()?,
            plan: Mutex::new(plan.into()),
            stats: Mutex::new(ProxyStats::default()),
            behaviour: Mutex::new(Behaviour::default()),
        });
        let listener = crate::rig_runtime()
            .spawn(async { TcpListener::bind("127.0.0.1:0").await })
            .await??;
        let addr = listener.local_addr()?;
        let shared = state.clone();
        let task = crate::rig_runtime().spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let state = shared.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(inbound).await else {
                        return;
                    };
                    let service = service_fn(move |req| handle(state.clone(), addr, req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Ok(Self { addr, state, task })
    }

    /// The proxy's `host:port`, to give a registry client.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// What the proxy saw so far.
    pub fn stats(&self) -> ProxyStats {
        self.state
            .stats
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default()
    }

    /// Changes how the proxy reshapes the protocol from now on.
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        if let Ok(mut b) = self.state.behaviour.lock() {
            *b = behaviour;
        }
    }

    /// Faults of the plan not injected yet.
    pub fn faults_left(&self) -> usize {
        self.state.plan.lock().map(|p| p.len()).unwrap_or(0)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The upload session of a `…/blobs/uploads/<id>` path.
fn upload_session(path: &str) -> Option<String> {
    let (_, id) = path.split_once("/blobs/uploads/")?;
    (!id.is_empty()).then(|| id.trim_end_matches('/').to_owned())
}

fn content_length(headers: &hyper::HeaderMap) -> u64 {
    headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn blob_digest(req: &Request<Incoming>) -> Option<String> {
    let query = req.uri().query()?;
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("digest="))
        .map(|d| d.replace("%3A", ":").replace("%3a", ":"))
}

async fn handle(
    state: Arc<State>,
    me: SocketAddr,
    req: Request<Incoming>,
) -> std::result::Result<Response<ProxyBody>, std::io::Error> {
    let what = format!("{} {}", req.method(), req.uri().path());
    let digest = (req.method() == hyper::Method::PUT)
        .then(|| blob_digest(&req))
        .flatten();
    let session = upload_session(req.uri().path());
    let is_patch = req.method() == hyper::Method::PATCH;
    let is_session_start = req.method() == hyper::Method::POST && session.is_none();
    let behaviour = state
        .behaviour
        .lock()
        .map(|b| b.clone())
        .unwrap_or_default();
    if let (Some(d), Some(id)) = (&digest, &session)
        && let Ok(mut stats) = state.stats.lock()
    {
        stats.session_digests.insert(id.clone(), d.clone());
    }
    if digest.is_some() && behaviour.refuse_monolithic && content_length(req.headers()) > 0 {
        if let Ok(mut stats) = state.stats.lock() {
            stats.requests += 1;
            stats.refused_monolithic += 1;
        }
        // Read the body first: an answer before it is all sent reaches most clients as a
        // broken connection instead.
        let mut body = req.into_body();
        while let Some(Ok(_)) = body.frame().await {}
        return Ok(full(413, &[]));
    }
    if digest.is_some()
        && let Some(n) = behaviour.hold_after_completed
        && state
            .stats
            .lock()
            .map(|s| s.completed_blobs.len() >= n)
            .unwrap_or(false)
    {
        if let Ok(mut stats) = state.stats.lock() {
            stats.requests += 1;
            stats.held += 1;
        }
        // Held until the client gives up or is killed.
        std::future::pending::<()>().await;
    }
    let fault = {
        let mut stats = state
            .stats
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?;
        stats.requests += 1;
        if let Some(d) = &digest {
            *stats.blob_attempts.entry(d.clone()).or_default() += 1;
        }
        if is_patch {
            let patch = Patch {
                session: session.clone().unwrap_or_default(),
                length: content_length(req.headers()),
            };
            stats.patches.push(patch);
        }
        let mut plan = state
            .plan
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?;
        // Resets hit every second blob upload; the other faults every third request. Neither
        // period matches a retried upload's (POST, PUT, POST, PUT…), so no upload is hit every
        // time.
        // A blob's third and later upload attempts are never faulted, so no blob exhausts its
        // client's retries however the uploads interleave.
        let spared = digest
            .as_ref()
            .is_some_and(|d| stats.blob_attempts.get(d).copied().unwrap_or(0) > 2);
        let reset = digest.is_some()
            && !spared
            && stats.blob_attempts.values().sum::<u32>() % 2 == 1
            && plan.contains(&Fault::ResetMidBlob);
        // A chunk reset hits every second PATCH while one is planned.
        let chunk_reset =
            is_patch && stats.patches.len() % 2 == 0 && plan.contains(&Fault::ResetMidChunk);
        let fault = if chunk_reset {
            plan.iter()
                .position(|f| *f == Fault::ResetMidChunk)
                .and_then(|i| plan.remove(i))
        } else if reset {
            plan.iter()
                .position(|f| *f == Fault::ResetMidBlob)
                .and_then(|i| plan.remove(i))
        } else if stats.requests % 3 == 0 && !spared {
            plan.iter()
                .position(|f| *f != Fault::ResetMidBlob && *f != Fault::ResetMidChunk)
                .and_then(|i| plan.remove(i))
        } else {
            None
        };
        if let Some(f) = fault {
            stats.injected.push((f, what.clone()));
            if let Some(d) = &digest
                && !stats.faulted_blobs.contains(d)
            {
                stats.faulted_blobs.push(d.clone());
            }
        }
        fault
    };
    let had_credentials = req.headers().contains_key("authorization");
    let (parts, mut body) = req.into_parts();
    let count = {
        let (digest, state) = (digest.clone(), state.clone());
        let chunk_of = session.clone().filter(|_| is_patch);
        move |n: usize| {
            if let (Some(d), Ok(mut stats)) = (&digest, state.stats.lock()) {
                *stats.blob_bytes_received.entry(d.clone()).or_default() += n as u64;
            }
            if let (Some(id), Ok(mut stats)) = (&chunk_of, state.stats.lock()) {
                *stats.session_bytes_received.entry(id.clone()).or_default() += n as u64;
            }
        }
    };
    match fault {
        Some(Fault::Status(code)) => return Ok(full(code, &[])),
        Some(Fault::TooManyRequests { retry_after_secs }) => {
            return Ok(full(429, &[("retry-after", retry_after_secs.to_string())]));
        }
        Some(Fault::ResetMidBlob | Fault::ResetMidChunk) => {
            let length: u64 = parts
                .headers
                .get("content-length")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let mut read = 0u64;
            while read < length / 2 {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Some(data) = frame.data_ref() {
                            read += data.len() as u64;
                            count(data.len());
                        }
                    }
                    _ => break,
                }
            }
            return Err(std::io::Error::other("injected connection reset"));
        }
        Some(Fault::Stall) => {
            while let Some(Ok(frame)) = body.frame().await {
                if let Some(data) = frame.data_ref() {
                    count(data.len());
                }
            }
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return Err(std::io::Error::other("stalled"));
        }
        None => {}
    }
    // Forward, streaming the body both ways.
    let url = format!(
        "https://{}{}",
        state.upstream,
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut forward = state.http.request(parts.method.clone(), &url);
    for (name, value) in &parts.headers {
        if name != "host" && name != "connection" {
            forward = forward.header(name, value);
        }
    }
    let stream = body
        .into_data_stream()
        .inspect_ok(move |chunk| count(chunk.len()));
    forward = forward.body(reqwest::Body::wrap_stream(stream));
    let answer = forward.send().await.map_err(std::io::Error::other)?;
    if let Ok(mut stats) = state.stats.lock() {
        if answer.status() == reqwest::StatusCode::UNAUTHORIZED && had_credentials {
            stats.unauthorized.push(what.clone());
            if let Some(d) = &digest
                && !stats.faulted_blobs.contains(d)
            {
                stats.faulted_blobs.push(d.clone());
            }
        }
        if answer.status() == reqwest::StatusCode::CREATED
            && let Some(d) = &digest
        {
            stats.completed_blobs.push(d.clone());
        }
    }
    let mut response = Response::builder().status(answer.status().as_u16());
    for (name, value) in answer.headers() {
        if name == "location" {
            // Keep the client talking to the proxy.
            let rewritten = value
                .to_str()
                .unwrap_or_default()
                .replace(&state.upstream, &me.to_string());
            response = response.header(name, rewritten);
        } else if name != "connection" && name != "transfer-encoding" {
            response = response.header(name, value);
        }
    }
    if is_session_start
        && answer.status() == reqwest::StatusCode::ACCEPTED
        && let Some(n) = behaviour.chunk_min_length
    {
        response = response.header("oci-chunk-min-length", n.to_string());
    }
    let stream = answer
        .bytes_stream()
        .map_ok(Frame::data)
        .map_err(std::io::Error::other);
    response
        .body(StreamBody::new(stream).boxed())
        .map_err(std::io::Error::other)
}
