//! The crate's error type.

/// Everything that can go wrong in `studio-acr`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A failure in signing in or in the ARM client.
    #[error(transparent)]
    Azure(#[from] studio_azure_auth::Error),
}
