//! The crate's error type.

/// Everything that can go wrong in `studio-runner-deploy`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A failure reported by the Kubernetes API or the kube client.
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    /// A failure in the cluster crate (kubeconfig, cluster lookup).
    #[error(transparent)]
    Cluster(#[from] studio_cluster::Error),
    /// A template that does not parse.
    #[error("{file}:{line}:{column}: {message}")]
    TemplateSyntax {
        /// The template's name (its file).
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A template that fails while rendering.
    #[error("{file}:{line}:{column}: {message}")]
    TemplateExec {
        /// The template's name (its file).
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What failed.
        message: String,
    },
    /// A template used a value that does not exist (stencil printed `<no value>`).
    #[error("{file}:{line}:{column}: missing value: {key}")]
    MissingValue {
        /// The template's name (its file).
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The key, e.g. `.duat.versoin` or `environment variable $azure_registry_name`.
        key: String,
    },
    /// The template context cannot be built (git, README, `--values`).
    #[error("template context: {0}")]
    TemplateContext(String),
    /// A file cannot be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// A manifest that is not valid Kubernetes YAML.
    #[error("manifest: {0}")]
    Manifest(String),
    /// The cluster does not serve a kind the manifests use.
    #[error("the cluster does not serve {api_version} {kind}")]
    UnknownKind {
        /// The apiVersion.
        api_version: String,
        /// The kind.
        kind: String,
    },
    /// Server-side apply found fields owned by another manager (apply with `force` to take them).
    #[error("apply {object}: {message}")]
    ApplyConflict {
        /// `kind/name` (with namespace).
        object: String,
        /// The API server's message, naming the fields and their managers.
        message: String,
    },
    /// Watching an object failed.
    #[error("watch: {0}")]
    Watch(String),
    /// The release did not become ready; the report says why, like `kubectl describe`.
    #[error("{summary}\n{report}")]
    NotReady {
        /// One line: what failed (timeout, progress deadline, failed job).
        summary: String,
        /// Per object: pods' waiting reasons and messages, last terminations, events.
        report: String,
    },
}
