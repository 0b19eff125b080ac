//! Signing in to Azure and talking to Azure Resource Manager.
//!
//! Every Azure call in the studio toolkit goes through this crate. It is organised as:
//!
//! - [`cloud`]: the Azure clouds (public, China, US Government) and their endpoints, with the
//!   environment overrides the Azure SDKs honour.
//! - [`transport`]: the one HTTP client (rustls) that every crate uses, with extra trusted
//!   roots from `SSL_CERT_FILE` or options.
//! - [`store`]: the private config directory (0700) and atomic 0600 files shared safely
//!   between processes.
//! - [`oauth`]: the Entra ID v2 token-endpoint protocol (device authorization, tokens, errors).
//! - [`credential`]: `TokenCredential`s: device-code sign-in, the cached login, the Azure CLI,
//!   and the default chain (environment → cached login → Azure CLI).
//! - [`cache`]: the token cache (`token_cache.json` in the config directory) and logout.
//! - [`Error`]: the crate's error type.
//!
//! Service-principal credentials, subscriptions, the ARM client with its long-running-operation
//! poller, service principals and role assignments are tracked in the issue for this crate and
//! land here as modules of their own.
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

pub mod cache;
pub mod cloud;
pub mod credential;
mod error;
pub mod oauth;
pub mod store;
pub mod transport;

pub use error::Error;
