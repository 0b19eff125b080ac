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
    /// Blobs whose upload had a fault injected.
    pub faulted_blobs: Vec<String>,
}

struct State {
    upstream: String,
    http: reqwest::Client,
    plan: Mutex<VecDeque<Fault>>,
    stats: Mutex<ProxyStats>,
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
    let fault = {
        let mut stats = state
            .stats
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?;
        stats.requests += 1;
        if let Some(d) = &digest {
            *stats.blob_attempts.entry(d.clone()).or_default() += 1;
        }
        let mut plan = state
            .plan
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?;
        // Resets hit every second blob upload; the other faults every third request. Neither
        // period matches a retried upload's (POST, PUT, POST, PUT…), so no upload is hit every
        // time.
        let reset = digest.is_some()
            && stats.blob_attempts.values().sum::<u32>() % 2 == 1
            && plan.contains(&Fault::ResetMidBlob);
        let fault = if reset {
            plan.iter()
                .position(|f| *f == Fault::ResetMidBlob)
                .and_then(|i| plan.remove(i))
        } else if stats.requests % 3 == 0 {
            plan.iter()
                .position(|f| *f != Fault::ResetMidBlob)
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
    let (parts, mut body) = req.into_parts();
    let count = {
        let (digest, state) = (digest.clone(), state.clone());
        move |n: usize| {
            if let (Some(d), Ok(mut stats)) = (&digest, state.stats.lock()) {
                *stats.blob_bytes_received.entry(d.clone()).or_default() += n as u64;
            }
        }
    };
    match fault {
        Some(Fault::Status(code)) => return Ok(full(code, &[])),
        Some(Fault::TooManyRequests { retry_after_secs }) => {
            return Ok(full(429, &[("retry-after", retry_after_secs.to_string())]));
        }
        Some(Fault::ResetMidBlob) => {
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
    let stream = answer
        .bytes_stream()
        .map_ok(Frame::data)
        .map_err(std::io::Error::other);
    response
        .body(StreamBody::new(stream).boxed())
        .map_err(std::io::Error::other)
}
