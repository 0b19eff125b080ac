//! The crate's error type.

/// Everything that can go wrong in `studio-azure-auth`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A cloud name that is not one of the built-in clouds.
    #[error("unknown cloud '{name}': expected one of {known}")]
    UnknownCloud {
        /// The name given.
        name: String,
        /// The known names, comma-separated.
        known: String,
    },
    /// An endpoint override that is not a usable https URL.
    #[error("{what}: '{value}' is not a usable endpoint: {reason}")]
    InvalidEndpoint {
        /// The variable or option that held it.
        what: String,
        /// The value given.
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// Trusted roots that could not be read or parsed.
    #[error("cannot load trusted certificates from {origin}: {reason}")]
    Certificates {
        /// Where they came from (a file or an option).
        origin: String,
        /// What went wrong.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Transport(String),
    /// The config directory or one of its files could not be used.
    #[error("{}: {reason}", path.display())]
    Store {
        /// The file or directory.
        path: std::path::PathBuf,
        /// What went wrong.
        reason: String,
    },

    /// A tenant name that cannot be used in an authority URL.
    #[error("'{0}' is not a tenant id or domain")]
    InvalidTenant(String),
    /// A token scope that is not a resource URL with `/.default` or a permission.
    #[error("invalid scope '{scope}': {reason}")]
    InvalidScope {
        /// The scope given.
        scope: String,
        /// Why it was refused.
        reason: String,
    },
    /// A request could not be sent, or its answer not read.
    #[error("request to {endpoint} failed: {reason}")]
    Http {
        /// The URL (never with secrets in it).
        endpoint: String,
        /// What went wrong.
        reason: String,
    },
    /// An answer that is not what the protocol says (a success body that is not the expected
    /// JSON is never quoted: it may hold tokens).
    #[error("unexpected answer from {endpoint}: {reason}")]
    InvalidResponse {
        /// The URL.
        endpoint: String,
        /// What was wrong with it.
        reason: String,
    },
    /// Entra ID refused a token request.
    #[error("Entra ID refused the request: {0}")]
    Entra(Box<crate::oauth::EntraError>),
    /// The person declined the device sign-in (`authorization_declined` or `access_denied`).
    #[error("the sign-in was declined: {0}")]
    AuthorizationDeclined(Box<crate::oauth::EntraError>),
    /// The device code expired before the sign-in was approved (`expired_token`).
    #[error("the device code expired before the sign-in was approved: {0}")]
    DeviceCodeExpired(Box<crate::oauth::EntraError>),
    /// Entra did not recognise the device code (`bad_verification_code`).
    #[error("Entra ID did not recognise the device code: {0}")]
    BadVerificationCode(Box<crate::oauth::EntraError>),
    /// The sign-in was cancelled by the caller.
    #[error("the sign-in was cancelled")]
    Cancelled,
    /// A credential that is not set up on this machine (no variables, no cached login, no
    /// `az`): a chain skips it and says why.
    #[error("{credential} is not configured: {reason}")]
    CredentialUnavailable {
        /// The credential, e.g. `cached login`.
        credential: String,
        /// What it looked for.
        reason: String,
    },
    /// The cached login's refresh token was refused; a new login is needed.
    #[error(
        "the cached login for {account} can no longer be used ({response}): run `cargo xtask login`"
    )]
    LoginExpired {
        /// The account's sign-in name.
        account: String,
        /// Entra's answer.
        response: Box<crate::oauth::EntraError>,
    },
    /// Every link of a credential chain was skipped or failed.
    #[error(
        "no credential could get a token:{}",
        crate::credential::chain::list_attempts(attempts)
    )]
    NoCredential {
        /// Each link, in order, with why it was skipped or how it failed.
        attempts: Vec<crate::credential::chain::ChainAttempt>,
    },
}
