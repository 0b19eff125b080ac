//! Deploying the studio runner onto Kubernetes.
//!
//! Renders stencil-compatible templates (Go text/template with sprig functions) such as the
//! runner's `deployment-1.9.yaml`, applies the result with server-side apply through kube-rs,
//! keeps registry pull secrets, and waits for the rollout with diagnostics when it stalls.
//!
//! - [`template`]: the template engine and the data stencil provides (`.duat`, `.Env`, values).

mod error;
pub mod template;

pub use error::Error;
