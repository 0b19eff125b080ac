//! Credentials: ways to get Entra ID access tokens, each an
//! [`azure_core::credentials::TokenCredential`].
//!
//! - [`device_code::DeviceCodeCredential`]: a person signs in in a browser with a code
//!   (RFC 8628); the login is kept in the [`crate::cache::TokenCache`].
//! - [`cached::CachedLoginCredential`]: tokens for the account of an earlier device login,
//!   refreshed silently.
//! - [`azure_cli::AzureCliCredential`]: the account signed in to the Azure CLI (`az`).
//! - [`service_principal::ClientSecretCredential`] and
//!   [`service_principal::ClientCertificateCredential`]: a service principal's secret, or a
//!   certificate (PEM key and certificate → a signed client assertion, no OpenSSL).
//! - [`environment::EnvironmentCredential`]: a service principal from `AZURE_TENANT_ID`,
//!   `AZURE_CLIENT_ID` and `AZURE_CLIENT_SECRET` or `AZURE_CLIENT_CERTIFICATE_PATH`.
//! - [`chain::ChainedCredential`] and [`chain::DefaultCredential`]: try several in order
//!   (environment → cached login → Azure CLI) and say what each tried.
//! - [`saved::SavedServicePrincipal`]: a service principal login kept in the config directory
//!   (`login --service-principal`), for the commands that follow it.
//!
//! A credential that is not set up on this machine fails with
//! [`Error::CredentialUnavailable`] inside the
//! `azure_core::Error`; chains skip such links and record why. The crate's own [`Error`] is
//! always the source of the `azure_core::Error` these credentials return, so callers can
//! recover it with `downcast_ref::<studio_azure_auth::Error>()`.
//!
//! ```no_run
//! use azure_core::credentials::TokenCredential;
//! use studio_azure_auth::credential::device_code::{DeviceCodeCredential, DeviceCodeOptions};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let credential = DeviceCodeCredential::new(DeviceCodeOptions::default())?;
//! let arm = credential.get_token(&["https://management.azure.com/.default"], None).await?;
//! // No second prompt: the refresh token reaches Microsoft Graph too.
//! let graph = credential.get_token(&["https://graph.microsoft.com/.default"], None).await?;
//! # drop((arm, graph));
//! # Ok(()) }
//! ```

pub mod azure_cli;
pub mod cached;
pub mod chain;
pub mod device_code;
pub mod environment;
pub mod saved;
pub mod service_principal;

pub use azure_cli::{AzureCliCredential, AzureCliOptions};
pub use cached::{CachedLoginCredential, CachedLoginOptions};
pub use chain::{ChainAttempt, ChainedCredential, DefaultCredential, DefaultCredentialOptions};
pub use device_code::{DeviceCodeCredential, DeviceCodeOptions, DeviceCodePrompt, SignIn};
/// Cancels a device sign-in ([`DeviceCodeOptions::cancel`]).
pub use tokio_util::sync::CancellationToken;

pub use crate::cache::logout;

use crate::Error;

/// Wraps the crate's error as the source of an `azure_core::Error` of kind `Credential`.
pub(crate) fn to_azure_error(error: Error) -> azure_core::Error {
    azure_core::Error::new(azure_core::error::ErrorKind::Credential, error)
}
