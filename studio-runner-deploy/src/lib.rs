//! Deploying the studio runner onto Kubernetes.
//!
//! Renders stencil-compatible templates (Go text/template with sprig functions) such as the
//! runner's `deployment-1.9.yaml`, applies the result with server-side apply through kube-rs,
//! keeps registry pull secrets, and waits for the rollout with diagnostics when it stalls.
//!
//! - [`template`]: the template engine and the data stencil provides (`.duat`, `.Env`, values).
//! - [`manifest`]: multi-document YAML into objects, and the apply order.
//! - [`client`]: [`DeployClient`]: server-side apply of a release, prune, delete, pull secrets.
//! - [`secret`]: the `kubernetes.io/dockerconfigjson` pull secret kubectl writes.
//! - [`wait`]: rollout conditions, the bounded wait, and `kubectl describe`-like diagnosis.
//!
//! ```no_run
//! # async fn demo() -> Result<(), studio_runner_deploy::Error> {
//! use studio_runner_deploy::{DeployClient, DeployOptions, manifest, template, wait::WaitOptions};
//!
//! let context = template::Context::discover(std::path::Path::new("."))?;
//! let yaml = template::Template::from_file("deployment.yaml".as_ref())?
//!     .render(&context, &template::RenderOptions::default())?;
//! let deploy = DeployClient::new(kube::Client::try_default().await?, DeployOptions::default());
//! let report = deploy.apply("runner", &manifest::parse(&yaml)?).await?;
//! deploy.prune("runner", &report).await?;
//! deploy.wait(&report, &WaitOptions::default()).await?;
//! # Ok(()) }
//! ```

pub mod client;
mod error;
pub mod manifest;
pub mod secret;
pub mod template;
pub mod wait;

pub use client::{DeployClient, DeployOptions};
pub use error::Error;
