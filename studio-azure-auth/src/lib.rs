//! Signing in to Azure and talking to Azure Resource Manager.
//!
//! Every Azure call in the studio toolkit goes through this crate. It is organised as:
//!
//! - [`cloud`]: the Azure clouds (public, China, US Government) and their endpoints, with the
//!   environment overrides the Azure SDKs honour.
//! - [`transport`]: the one HTTP client (rustls) that every crate uses, with extra trusted
//!   roots from `SSL_CERT_FILE` or options.
//! - [`credential`]: `TokenCredential`s: device-code sign-in, a service principal's secret or
//!   certificate, the `AZURE_*` environment variables, the cached login, the Azure CLI, and
//!   the default chain (environment → cached login → Azure CLI).
//! - [`oauth`]: the Entra ID v2 token-endpoint protocol (device authorization, tokens, errors).
//! - [`cache`]: the token cache (`token_cache.json` in the config directory) and logout.
//! - [`store`]: the private config directory (0700) and atomic 0600 files shared safely
//!   between processes.
//! - [`arm`]: the Azure Resource Manager client: retries, paging, ARM errors, long-running
//!   operations.
//! - [`subscription`]: list, show, and the persisted default subscription.
//! - [`rbac`]: role definitions and role assignments, with the replication retry.
//! - [`graph`]: Microsoft Graph: `create_for_rbac` (application, service principal, password,
//!   role assignments).
//! - [`redact`]: [`Redacted`](redact::Redacted), how every secret prints in `Debug` (`***`).
//! - [`Error`]: the crate's error type.
//!
//! ```
//! use studio_azure_auth::{cloud::Cloud, transport};
//!
//! let cloud = Cloud::from_env(None)?;
//! let http = transport::http_client(&transport::TransportOptions::default())?;
//! println!("Resource Manager at {}", cloud.resource_manager);
//! # drop(http);
//! # Ok::<(), studio_azure_auth::Error>(())
//! ```

pub mod arm;
pub mod cache;
pub mod cloud;
pub mod credential;
mod error;
pub mod graph;
pub mod oauth;
pub mod rbac;
pub mod redact;
pub mod store;
pub mod subscription;
pub mod transport;

pub use error::Error;
