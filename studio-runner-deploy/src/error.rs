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
}
