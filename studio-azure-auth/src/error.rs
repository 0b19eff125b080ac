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
    /// Azure Resource Manager (or Graph) answered with an error.
    #[error("{code}: {message} (HTTP {status})")]
    Arm {
        /// The HTTP status.
        status: u16,
        /// ARM's error code, e.g. `ResourceGroupNotFound`.
        code: String,
        /// ARM's message.
        message: String,
        /// ARM's `details`, if any.
        details: Vec<crate::arm::ArmErrorDetail>,
    },
    /// A long-running operation ended `Failed` or `Canceled`.
    #[error("the operation ended {status}: {code}: {message}")]
    OperationFailed {
        /// The terminal status.
        status: String,
        /// ARM's error code.
        code: String,
        /// ARM's message.
        message: String,
    },
    /// A long-running operation did not finish in time.
    #[error("gave up waiting for {operation} after {waited:?} (it may still finish in Azure)")]
    PollTimeout {
        /// The resource path.
        operation: String,
        /// How long we waited.
        waited: std::time::Duration,
    },
    /// The caller cancelled the operation (a sign-in, or a wait for a long-running operation).
    #[error("cancelled")]
    Cancelled,
    /// The server pointed us at a URL we will not send a token to.
    #[error("refusing to follow {url}: not on {endpoint}")]
    UntrustedUrl {
        /// The URL (without its query).
        url: String,
        /// The endpoint the client trusts.
        endpoint: String,
    },
    /// A request could not be sent, or its answer not read (after retries).
    #[error("request to {endpoint} failed: {reason}")]
    Http {
        /// The URL (never with secrets in it).
        endpoint: String,
        /// What went wrong.
        reason: String,
    },
    /// A response or request body could not be (de)serialised.
    #[error("cannot read {what}: {reason}")]
    Decode {
        /// What was being read.
        what: String,
        /// Why it failed.
        reason: String,
    },
    /// No subscription has that id or name.
    #[error("no subscription '{wanted}'; the credential can see: {known}")]
    SubscriptionNotFound {
        /// What was asked for.
        wanted: String,
        /// What exists, as `name (id)`.
        known: String,
    },
    /// Several subscriptions have that display name.
    #[error("several subscriptions are named '{wanted}' ({candidates}); choose one by id")]
    AmbiguousSubscription {
        /// The name asked for.
        wanted: String,
        /// Their ids.
        candidates: String,
    },
    /// No default subscription was set.
    #[error("no default subscription: choose one with `account set --subscription <id or name>`")]
    NoDefaultSubscription,
    /// No role of that name at that scope.
    #[error("no role '{role}' at scope {scope}")]
    RoleNotFound {
        /// The role asked for.
        role: String,
        /// The scope searched.
        scope: String,
    },
    /// An argument the caller gave cannot be used.
    #[error("{0}")]
    InvalidArgument(String),
    /// The config directory or one of its files could not be used.
    #[error("{}: {reason}", path.display())]
    Store {
        /// The file or directory.
        path: std::path::PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A client certificate or its private key that cannot be used. `origin` names the file
    /// (or says the PEM came from memory); `reason` never quotes the file's contents.
    #[error("cannot use the client certificate {origin}: {reason}")]
    ClientCertificate {
        /// The file it came from, or where else it came from.
        origin: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A credential whose settings are all absent, e.g. no `AZURE_*` variables for the
    /// environment credential. Distinct from a failure: a credential chain skips such links.
    #[error("{what} is not configured: set {}", missing.join(", "))]
    NotConfigured {
        /// The credential.
        what: String,
        /// The settings (variable names) it would need.
        missing: Vec<String>,
    },
    /// A credential with some of its settings present and others missing.
    #[error("{what} is only partly configured: {} set, but {} not", present.join(", "), missing.join(", "))]
    IncompleteConfiguration {
        /// The credential.
        what: String,
        /// The settings (variable names) that are missing.
        missing: Vec<String>,
        /// The settings that are present (names only, never values).
        present: Vec<String>,
    },
    /// A credential's parameters were refused before any request (e.g. an empty client id or
    /// a malformed tenant id).
    #[error("{what}: {reason}")]
    InvalidCredential {
        /// The credential.
        what: String,
        /// Why it was refused.
        reason: String,
    },
    /// A token request that failed: refused by Entra ID (then `status`, `code` and
    /// `description` are Entra's) or not answered at all. Never carries a secret.
    #[error("{credential} could not get a token: {}", token_failure(*status, code.as_deref(), description))]
    TokenRequest {
        /// The credential that asked.
        credential: String,
        /// The HTTP status of Entra's answer, if there was one.
        status: Option<u16>,
        /// Entra's OAuth error code, e.g. `invalid_client`.
        code: Option<String>,
        /// Entra's numeric `AADSTS` codes, e.g. `7000215`.
        error_codes: Vec<i64>,
        /// Entra's `error_description`, or what went wrong on the way.
        description: String,
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

fn token_failure(status: Option<u16>, code: Option<&str>, description: &str) -> String {
    match (status, code) {
        (Some(status), Some(code)) => format!("Entra answered HTTP {status} {code}: {description}"),
        (Some(status), None) => format!("Entra answered HTTP {status}: {description}"),
        (None, _) => description.to_owned(),
    }
}

impl Error {
    /// The toolkit error inside an `azure_core` error, if there is one. Credentials in this
    /// crate implement `azure_core`'s `TokenCredential`, whose errors wrap ours.
    ///
    /// ```
    /// use studio_azure_auth::Error;
    ///
    /// let ours = Error::InvalidCredential { what: "example".into(), reason: "empty".into() };
    /// let wrapped = azure_core::Error::new(azure_core::error::ErrorKind::Credential, ours);
    /// assert!(matches!(Error::in_azure_error(&wrapped), Some(Error::InvalidCredential { .. })));
    /// ```
    pub fn in_azure_error(error: &azure_core::Error) -> Option<&Error> {
        error.downcast_ref::<Error>()
    }
}
