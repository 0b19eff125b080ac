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
}
