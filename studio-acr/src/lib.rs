//! Azure Container Registry: the registry resource through Azure Resource Manager, and the
//! registry itself through the OCI distribution API.
//!
//! Management (resource groups, registries, credentials, import, registry roles) is built on
//! the ARM client of [`studio_azure_auth`]. The registry side (ACR login, image references, a
//! streaming OCI transfer engine for push, tag, copy and list) talks to any OCI registry, ACR
//! or not, without a Docker daemon.
//!
//! The modules arrive with the issues that define them; today the crate holds its error type.
//!
//! Moving images: [`transfer`] (the engine: push, copy, tag) reads from an
//! [`source::ImageSource`] — a registry [`distribution::Repository`], an OCI
//! [`layout::OciLayout`] or a `docker save` [`archive::DockerArchive`] — and writes to a
//! repository or a layout, reporting [`progress`]; [`manifest`] keeps manifests as exact bytes;
//! [`assemble`] builds images without a daemon.

pub mod archive;
pub mod assemble;
pub mod auth;
pub mod challenge;
pub mod client;
pub mod distribution;
mod error;
pub mod layout;
pub mod manifest;
pub mod progress;
pub mod reference;
pub mod source;
pub mod transfer;

pub use error::Error;
