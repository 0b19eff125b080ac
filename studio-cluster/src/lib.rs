//! GPU Kubernetes clusters on Azure from acs-engine apimodels.
//!
//! Reads acs-engine's `vlabs` Kubernetes apimodels (as the studio runner's
//! `examples/azure/kubernetes.json`), validates and fills them in as `acs-engine generate` did,
//! writes `_output/<dns-prefix>/` (ARM template, parameters, SSH keys, kubeconfig), and deploys
//! a managed AKS cluster with GPU node pools through the ARM client of [`studio_azure_auth`].
//!
//! The modules arrive with the issue that defines them; today the crate holds its error type.

mod error;

pub use error::Error;
