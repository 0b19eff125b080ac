//! The crate's error type.

/// Everything that can go wrong in `studio-acr`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A failure in signing in or in the ARM client.
    #[error(transparent)]
    Azure(#[from] studio_azure_auth::Error),
    /// An image reference that does not follow the grammar.
    #[error("invalid image reference '{input}': {part} at column {}: {reason}", at + 1)]
    InvalidReference {
        /// The text given.
        input: String,
        /// The byte offset where the bad part starts.
        at: usize,
        /// Which part: `registry`, `repository`, `tag`, `digest` or `reference`.
        part: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `WWW-Authenticate` header that cannot be parsed.
    #[error("cannot parse the registry's WWW-Authenticate header: {0}")]
    InvalidChallenge(String),
    /// A registry name ACR would refuse (5–50 letters and digits); nothing was sent.
    #[error("invalid registry name '{name}': {reason}")]
    InvalidRegistryName {
        /// The name given.
        name: String,
        /// Why it is refused.
        reason: String,
    },
    /// `checkNameAvailability` says the registry name cannot be used.
    #[error("the registry name '{name}' is not available ({reason}): {message}")]
    NameNotAvailable {
        /// The name asked for.
        name: String,
        /// ARM's `reason`, e.g. `AlreadyExists`.
        reason: String,
        /// ARM's `message`.
        message: String,
    },
    /// An argument that cannot go into an ARM path (a subscription id or resource group
    /// name that is empty or holds `/`, `?`, `#` or `%`); nothing was sent.
    #[error("invalid {what} '{value}': {reason}")]
    InvalidArgument {
        /// What the argument is, e.g. `resource group name`.
        what: String,
        /// The value given.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// An ARM response that does not have the shape of the expected resource.
    #[error("cannot read {what}: {reason}")]
    Decode {
        /// What was being read.
        what: String,
        /// Why it failed.
        reason: String,
    },
    /// The registry refused our credentials.
    #[error("{registry}: not authorized: {reason}")]
    Unauthorized {
        /// The registry (or token service) host.
        registry: String,
        /// What it said.
        reason: String,
    },
    /// A registry request failed (connection, protocol).
    #[error("{0}")]
    Registry(String),
    /// A registry answered with an error status.
    #[error("{what}: the registry answered {status}: {message}")]
    RegistryStatus {
        /// What we asked for.
        what: String,
        /// The HTTP status.
        status: u16,
        /// The registry's error code and message.
        message: String,
    },
    /// The registry cannot delete a tag on its own (the CNCF distribution server, Docker Hub):
    /// the way left is deleting the manifest by digest, which removes every tag on it.
    #[error(
        "{repository}:{tag}: the registry cannot delete a tag alone ({reason}); delete the manifest \
         by digest instead ({repository}@{digest}), which removes every tag pointing at it"
    )]
    TagDeleteUnsupported {
        /// The repository.
        repository: String,
        /// The tag.
        tag: String,
        /// The manifest digest the tag points at.
        digest: String,
        /// What the registry answered.
        reason: String,
    },
    /// A URL that would send credentials in clear text.
    #[error("refusing to send credentials over plain http to {0}")]
    InsecureEndpoint(String),
    /// Docker's config.json cannot be read or written.
    #[error("{}: {reason}", path.display())]
    DockerConfig {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A docker credential helper failed.
    #[error("credential helper {helper}: {reason}")]
    CredentialHelper {
        /// The helper program.
        helper: String,
        /// What went wrong.
        reason: String,
    },
    /// Content whose digest is not the one it was asked for (a lying or corrupt source); found
    /// before the upload was committed.
    #[error("{what}: expected digest {expected}, got {actual}")]
    DigestMismatch {
        /// What was read (a blob or manifest).
        what: String,
        /// The digest the descriptor named.
        expected: String,
        /// The digest of the bytes actually read.
        actual: String,
    },
    /// A manifest larger than the 4 MiB registries accept.
    #[error("manifest {what} is {size} bytes; manifests over 4 MiB are refused")]
    ManifestTooLarge {
        /// Which manifest.
        what: String,
        /// Its size, as announced or read.
        size: u64,
    },
    /// A media type the transfer engine does not handle.
    #[error("unsupported media type '{media_type}' for {what}")]
    UnsupportedMediaType {
        /// What had it.
        what: String,
        /// The media type.
        media_type: String,
    },
    /// A local file, OCI layout or archive could not be read or written.
    #[error("{path}: {message}")]
    Io {
        /// The file or directory.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// An image (manifest, index, config, layout, archive) that is not well formed, or a
    /// reference that names nothing in it.
    #[error("{0}")]
    InvalidImage(String),
}
