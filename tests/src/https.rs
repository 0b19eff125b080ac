//! A small rustls front that serves a plain-http loopback server (wiremock) over https.
//!
//! azure_core refuses to send a bearer token over http, so fakes built on wiremock sit behind
//! this front and are reached as `https://127.0.0.1:<port>` with the run's CA.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use url::Url;
use wiremock::MockServer;

use crate::pki::IssuedCert;

/// A TLS-terminating TCP forwarder to `backend`.
pub struct HttpsFront {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl HttpsFront {
    /// Listens on a free loopback port and forwards every connection to `backend`.
    pub async fn start(backend: SocketAddr, cert: &IssuedCert) -> Result<Self> {
        let acceptor = tls_acceptor(cert)?;
        let listener = loopback_listener().await?;
        let addr = listener.local_addr()?;
        let task = crate::rig_runtime().spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(inbound).await else {
                        return;
                    };
                    let Ok(mut outbound) = TcpStream::connect(backend).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut outbound).await;
                });
            }
        });
        Ok(Self { addr, task })
    }

    /// The front's https URL, `https://127.0.0.1:<port>/`.
    pub fn url(&self) -> Url {
        Url::parse(&format!("https://{}/", self.addr)).unwrap_or_else(|_| unreachable!())
    }

    /// The front's socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for HttpsFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A TLS acceptor (rustls on aws-lc-rs) serving `cert`.
pub fn tls_acceptor(cert: &IssuedCert) -> Result<TlsAcceptor> {
    let certs = CertificateDer::pem_slice_iter(cert.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("parsing the server certificate")?;
    let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).context("parsing its key")?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A listener on a free loopback port, owned by the rig's runtime so that it outlives any one
/// test's runtime.
pub async fn loopback_listener() -> Result<TcpListener> {
    Ok(crate::rig_runtime()
        .spawn(async { TcpListener::bind("127.0.0.1:0").await })
        .await??)
}

/// A wiremock server reached over https.
pub struct HttpsMock {
    /// The wiremock server: mount mocks on it, read its received requests.
    pub server: MockServer,
    front: HttpsFront,
}

impl HttpsMock {
    /// Starts a wiremock server behind an https front with a certificate from the run's CA.
    pub async fn start() -> Result<Self> {
        let server = MockServer::start().await;
        let front = HttpsFront::start(*server.address(), &crate::rig().server_cert).await?;
        Ok(Self { server, front })
    }

    /// The https base URL, `https://127.0.0.1:<port>/`.
    pub fn url(&self) -> Url {
        self.front.url()
    }

    /// Every request the fake received so far, in order.
    pub async fn received(&self) -> Vec<wiremock::Request> {
        self.server.received_requests().await.unwrap_or_default()
    }

    /// The https base URL without the trailing slash, for string building.
    pub fn uri(&self) -> String {
        self.front.url().as_str().trim_end_matches('/').to_owned()
    }
}
