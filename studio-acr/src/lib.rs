//! Azure Container Registry: the registry resource through Azure Resource Manager, and the
//! registry itself through the OCI distribution API.
//!
//! Management (resource groups, registries, credentials, import, registry roles) is built on
//! the ARM client of [`studio_azure_auth`]. The registry side (ACR login, image references, a
//! streaming OCI transfer engine for push, tag, copy and list) talks to any OCI registry, ACR
//! or not, without a Docker daemon.
//!
//! - [`management`]: ACR through ARM: [`AcrManagementClient`] with resource groups,
//!   registries (name checks, create, show, list, update, credentials, delete, login server),
//!   image import and registry roles; typed models in [`management::models`].
//! - [`reference`](mod@reference): image references (`registry/repository:tag@digest`) and
//!   their grammar.
//! - [`challenge`]: the registry's `WWW-Authenticate` challenges.
//! - [`auth`]: registry authentication (anonymous, basic, token services, ACR's Entra
//!   exchange).
//! - [`client`]: the registry client every registry request goes through.
//! - [`docker_config`]: docker's `config.json` logins.
//! - [`transfer`]: the engine (push, copy, tag): reads an [`source::ImageSource`] — a registry
//!   [`distribution::Repository`], an OCI [`layout::OciLayout`] or a `docker save`
//!   [`archive::DockerArchive`] — and writes to a repository or a layout, reporting
//!   [`progress`]; [`manifest`] keeps manifests as exact bytes.
//! - [`assemble`]: builds images without a daemon (base + reproducible layers + config).
//! - [`Error`]: the crate's error type.
//!
//! ```no_run
//! # async fn demo(arm: studio_azure_auth::arm::ArmClient) -> Result<(), studio_acr::Error> {
//! let acr = studio_acr::AcrManagementClient::new(arm, "00000000-0000-0000-0000-000000000000");
//! let server = acr.registries().login_server("studio", "studioml").await?;
//! println!("{server}");
//! # Ok(()) }
//! ```

pub mod archive;
pub mod assemble;
pub mod auth;
pub mod challenge;
pub mod client;
pub mod distribution;
pub mod docker_config;
mod error;
pub mod layout;
pub mod management;
pub mod manifest;
pub mod progress;
pub mod reference;
pub mod source;
pub mod transfer;

pub use error::Error;
pub use management::AcrManagementClient;
