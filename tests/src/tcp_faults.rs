//! A TCP proxy that can take the network down: in front of a real peer (the Entra stand-in,
//! an https fake) it forwards connections byte for byte (TLS passes through, so the client
//! still talks to the peer's own certificate) until [`TcpFaultProxy::go_down`], which resets
//! every open connection (RST, `SO_LINGER` 0) and resets each new one on accept, until
//! [`TcpFaultProxy::come_up`]. It counts the connections it forwarded and reset.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use anyhow::Result;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use url::Url;

struct State {
    upstream: SocketAddr,
    down: AtomicBool,
    /// Cancelled when the network goes down: every forwarding task of the epoch resets.
    epoch: std::sync::Mutex<CancellationToken>,
    forwarded: AtomicU64,
    reset: AtomicU64,
    changed: Notify,
}

/// The proxy; dropped, it stops listening.
pub struct TcpFaultProxy {
    addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

fn reset(stream: TcpStream) {
    // Linger 0: close() sends RST instead of FIN, as a dropped route or a middlebox would.
    let _ = socket_zero_linger(&stream);
    drop(stream);
}

fn socket_zero_linger(stream: &TcpStream) -> std::io::Result<()> {
    stream.set_zero_linger()
}

impl TcpFaultProxy {
    /// Listens on a free loopback port and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Result<Self> {
        let listener = crate::https::loopback_listener().await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            upstream,
            down: AtomicBool::new(false),
            epoch: std::sync::Mutex::new(CancellationToken::new()),
            forwarded: AtomicU64::new(0),
            reset: AtomicU64::new(0),
            changed: Notify::new(),
        });
        let shared = state.clone();
        let task = crate::rig_runtime().spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    continue;
                };
                let state = shared.clone();
                if state.down.load(Ordering::SeqCst) {
                    reset(inbound);
                    state.reset.fetch_add(1, Ordering::SeqCst);
                    state.changed.notify_waiters();
                    continue;
                }
                let epoch = state
                    .epoch
                    .lock()
                    .map(|t| t.clone())
                    .unwrap_or_else(|e| e.into_inner().clone());
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(state.upstream).await else {
                        reset(inbound);
                        return;
                    };
                    state.forwarded.fetch_add(1, Ordering::SeqCst);
                    let mut inbound = inbound;
                    let cut = tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => false,
                        () = epoch.cancelled() => true,
                    };
                    if cut {
                        reset(inbound);
                        reset(outbound);
                        state.reset.fetch_add(1, Ordering::SeqCst);
                        state.changed.notify_waiters();
                    }
                });
            }
        });
        Ok(Self { addr, state, task })
    }

    /// A proxy in front of the host and port of `url`.
    pub async fn in_front_of(url: &Url) -> Result<Self> {
        let addrs = url.socket_addrs(|| Some(443))?;
        let upstream = addrs
            .first()
            .copied()
            .ok_or_else(|| anyhow::anyhow!("{url} has no address"))?;
        Self::start(upstream).await
    }

    /// `url` with its host and port replaced by the proxy's.
    pub fn url_for(&self, url: &Url) -> Result<Url> {
        let mut out = url.clone();
        out.set_ip_host(self.addr.ip())
            .map_err(|()| anyhow::anyhow!("cannot set the host of {url}"))?;
        out.set_port(Some(self.addr.port()))
            .map_err(|()| anyhow::anyhow!("cannot set the port of {url}"))?;
        Ok(out)
    }

    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Takes the network down: open connections are reset, new ones reset on accept.
    pub fn go_down(&self) {
        self.state.down.store(true, Ordering::SeqCst);
        let mut epoch = self.state.epoch.lock().unwrap_or_else(|e| e.into_inner());
        epoch.cancel();
        *epoch = CancellationToken::new();
    }

    /// Brings the network back: new connections are forwarded again.
    pub fn come_up(&self) {
        self.state.down.store(false, Ordering::SeqCst);
    }

    /// Connections forwarded so far.
    pub fn forwarded(&self) -> u64 {
        self.state.forwarded.load(Ordering::SeqCst)
    }

    /// Connections reset so far (open ones cut by [`go_down`](Self::go_down) and new ones
    /// refused while down).
    pub fn resets(&self) -> u64 {
        self.state.reset.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` connections have been reset in total.
    pub async fn wait_for_resets(&self, n: u64) {
        loop {
            let changed = self.state.changed.notified();
            if self.resets() >= n {
                return;
            }
            changed.await;
        }
    }
}

impl Drop for TcpFaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
