//! The HTTP transport: one rustls client for every request the toolkit sends.
//!
//! Every crate in the workspace builds its HTTP client here so that TLS is configured once:
//! rustls on aws-lc-rs, the platform's trusted roots, plus any extra roots the caller trusts.
//! Extra roots come from the `SSL_CERT_FILE` environment variable (a PEM bundle, as OpenSSL
//! and curl read it) and from [`TransportOptions::extra_roots_pem`]. Users behind a
//! TLS-inspecting proxy need this; so do tests that run real peers behind a private CA.
//!
//! ```
//! use studio_azure_auth::transport::{TransportOptions, http_client};
//!
//! let client = http_client(&TransportOptions::default())?;
//! let transport = studio_azure_auth::transport::azure_transport(client);
//! let options = azure_core::http::ClientOptions { transport: Some(transport), ..Default::default() };
//! # drop(options);
//! # Ok::<(), studio_azure_auth::Error>(())
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::Error;

/// The environment variable naming a PEM bundle of extra trusted roots.
pub const SSL_CERT_FILE: &str = "SSL_CERT_FILE";

/// How to build the HTTP client.
#[derive(Clone, Debug)]
pub struct TransportOptions {
    /// PEM bundles of CA certificates to trust in addition to the platform's roots.
    pub extra_roots_pem: Vec<Vec<u8>>,
    /// A PEM bundle file of extra roots; defaults to the file named by `SSL_CERT_FILE`.
    pub ssl_cert_file: Option<PathBuf>,
    /// How long to wait for a TCP and TLS connection.
    pub connect_timeout: Duration,
    /// How long a read may stall before the request fails (and may be retried).
    pub read_timeout: Duration,
    /// The `User-Agent` header sent with every request.
    pub user_agent: String,
    /// Speak HTTP/1.1 only, one connection per concurrent request. Bulk uploads use it: blobs
    /// sent at once then travel on connections of their own (which the server reads and
    /// decrypts in parallel) instead of sharing one HTTP/2 connection and its flow-control
    /// window.
    pub http1_only: bool,
}

impl Default for TransportOptions {
    fn default() -> Self {
        Self {
            extra_roots_pem: Vec::new(),
            ssl_cert_file: std::env::var_os(SSL_CERT_FILE)
                .filter(|p| !p.is_empty())
                .map(PathBuf::from),
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(120),
            user_agent: concat!("studio/", env!("CARGO_PKG_VERSION")).to_owned(),
            http1_only: false,
        }
    }
}

impl TransportOptions {
    /// These options with one more PEM bundle of trusted roots.
    pub fn with_extra_roots_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.extra_roots_pem.push(pem.into());
        self
    }
}

/// Builds the shared reqwest client (rustls, HTTP/2, gzip) from `options`.
pub fn http_client(options: &TransportOptions) -> Result<reqwest::Client, Error> {
    let mut roots = Vec::new();
    if let Some(path) = &options.ssl_cert_file {
        let origin = format!("{}", path.display());
        let pem = std::fs::read(path).map_err(|e| Error::Certificates {
            origin: origin.clone(),
            reason: e.to_string(),
        })?;
        roots.extend(parse_bundle(&pem, &origin)?);
    }
    for (i, pem) in options.extra_roots_pem.iter().enumerate() {
        roots.extend(parse_bundle(pem, &format!("extra root bundle #{}", i + 1))?);
    }
    tracing::debug!(extra_roots = roots.len(), "building HTTP client");
    let mut builder = reqwest::Client::builder();
    if options.http1_only {
        builder = builder.http1_only();
    }
    builder
        .tls_backend_rustls()
        .tls_certs_merge(roots)
        .connect_timeout(options.connect_timeout)
        .read_timeout(options.read_timeout)
        .user_agent(options.user_agent.clone())
        .build()
        .map_err(|e| Error::Transport(e.to_string()))
}

/// Wraps a reqwest client as an azure_core transport, for `ClientOptions::transport`.
pub fn azure_transport(client: reqwest::Client) -> azure_core::http::Transport {
    azure_core::http::Transport::new(Arc::new(client))
}

fn parse_bundle(pem: &[u8], origin: &str) -> Result<Vec<reqwest::Certificate>, Error> {
    let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| Error::Certificates {
        origin: origin.to_owned(),
        reason: e.to_string(),
    })?;
    if certs.is_empty() {
        return Err(Error::Certificates {
            origin: origin.to_owned(),
            reason: "no PEM certificate found".to_owned(),
        });
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_without_certificates_is_an_error_naming_its_origin() {
        let options = TransportOptions {
            ssl_cert_file: None,
            ..Default::default()
        }
        .with_extra_roots_pem(b"not a certificate".to_vec());
        let err = http_client(&options).unwrap_err().to_string();
        assert!(err.contains("extra root bundle #1"), "{err}");
    }
}
