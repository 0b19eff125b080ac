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
    /// The caller cancelled the operation.
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
    /// The request could not be sent or its response not read (after retries).
    #[error("request failed: {0}")]
    Http(String),
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
}
