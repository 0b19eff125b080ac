//! GPU Kubernetes clusters on Azure from acs-engine apimodels.
//!
//! The seed ran `acs-engine deploy --dns-prefix … --auto-suffix --api-model kubernetes.json`.
//! acs-engine is retired; this crate keeps its inputs and its workflow and deploys a managed AKS
//! cluster with GPU node pools instead:
//!
//! - [`apimodel`]: the `vlabs` apimodel, parsed as Go's decoder did (case-insensitive keys,
//!   unknown keys rejected with their path), validated as acs-engine did (every problem at
//!   once), with warnings for what AKS cannot honour.
//! - [`gpu`]: the NVIDIA GPU VM sizes, acs-engine's list and today's.
//! - [`generate`]: fill in (DNS prefix, auto-suffix, admin user, SSH key, identity), render,
//!   and write `_output/<dnsPrefix>/`. No cloud calls.
//! - [`template`]: the ARM template with the `managedClusters` resource and its parameters.
//! - [`output`]: the private, atomically written output tree.
//! - [`Cluster`] ([`client`]): resource group, service principal, registry attachment;
//!   [`deploy`]: the ARM deployment with progress, what-if, and the admin kubeconfig.
//! - [`Error`]: the crate's error type.
//!
//! ```no_run
//! # async fn demo(arm: studio_azure_auth::arm::ArmClient) -> Result<(), studio_cluster::Error> {
//! use std::path::Path;
//! use studio_cluster::apimodel::ApiModel;
//! use studio_cluster::generate::{self, GenerateOptions};
//! use studio_cluster::{Cluster, ClusterOptions, DeployOptions};
//!
//! let model = ApiModel::load(Path::new("kubernetes.json"))?;
//! let generated = generate::generate(&model, &GenerateOptions {
//!     dns_prefix: Some("test-user-k8s".into()),
//!     auto_suffix: true,
//!     location: Some("eastus".into()),
//!     ..Default::default()
//! })?;
//! let cluster = Cluster::new(arm, ClusterOptions::default());
//! let outcome = cluster.deploy(&generated.output_dir, &DeployOptions {
//!     subscription_id: "00000000-0000-0000-0000-000000000000".into(),
//!     ..Default::default()
//! }).await?;
//! println!("{outcome:?}");
//! # Ok(()) }
//! ```

pub mod apimodel;
pub mod client;
pub mod deploy;
mod error;
pub mod generate;
pub mod gpu;
pub mod output;
pub mod template;

pub use client::{Cluster, ClusterOptions};
pub use deploy::{DeployOptions, DeployOutcome};
pub use error::{Error, Problem};
