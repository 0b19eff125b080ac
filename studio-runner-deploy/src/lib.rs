//! Deploying the studio runner onto Kubernetes.
//!
//! Renders stencil-compatible templates (Go text/template with sprig functions) such as the
//! runner's `deployment-1.9.yaml`, applies the result with server-side apply through kube-rs,
//! keeps registry pull secrets, and waits for the rollout with diagnostics when it stalls.
//!
//! The modules arrive with the issue that defines them; today the crate holds its error type.

mod error;

pub use error::Error;
