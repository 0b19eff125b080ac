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
//! - [`Error`]: the crate's error type.
//!
//! ```no_run
//! # async fn demo(arm: studio_azure_auth::arm::ArmClient) -> Result<(), studio_acr::Error> {
//! let acr = studio_acr::AcrManagementClient::new(arm, "00000000-0000-0000-0000-000000000000");
//! let server = acr.registries().login_server("studio", "studioml").await?;
//! println!("{server}");
//! # Ok(()) }
//! ```

pub mod auth;
pub mod challenge;
pub mod client;
pub mod docker_config;
mod error;
pub mod management;
pub mod reference;

pub use error::Error;
pub use management::AcrManagementClient;
