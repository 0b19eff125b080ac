//! ACR management through Azure Resource Manager: what `az group create`, `az acr create`,
//! `az acr update`, `az acr show/list`, `az acr credential`, `az acr import` and
//! `az role assignment create --scope <registry>` do.
//!
//! [`AcrManagementClient`] holds an [`ArmClient`] and a subscription id; its API types do the
//! work, kube-style:
//!
//! - [`ResourceGroups`]: `ensure` (get, create if missing, keep what exists), `show`,
//!   `create_or_update`, `delete` (long-running);
//! - [`Registries`]: name checks (locally first, then `checkNameAvailability`), `create`
//!   (waits for `provisioningState` `Succeeded`), `show`, `list` (subscription or resource
//!   group, every page), `update`, credentials, `delete`, `login_server`,
//!   [`import_image`](Registries::import_image) (server-side copy) and
//!   [`grant_role`](Registries::grant_role) (AcrPull/AcrPush/Owner or any role on a registry).
//!
//! Every call goes through the ARM client (retries, ARM errors as
//! [`studio_azure_auth::Error::Arm`], long-running operations); the models are in [`models`].
//!
//! ```no_run
//! # async fn demo(arm: studio_azure_auth::arm::ArmClient) -> Result<(), studio_acr::Error> {
//! use studio_acr::management::{AcrManagementClient, RegistryCreate, ResourceGroupCreate, SkuName};
//!
//! let acr = AcrManagementClient::new(arm, "00000000-0000-0000-0000-000000000000");
//! acr.resource_groups().ensure("studio", &ResourceGroupCreate::new("eastus")).await?;
//! acr.registries().require_name_available("studioml").await?;
//! let registry = acr
//!     .registries()
//!     .create("studio", "studioml", &RegistryCreate::new("eastus", SkuName::Basic))
//!     .await?;
//! println!("log in to {}", registry.properties.login_server);
//! # Ok(()) }
//! ```

mod groups;
mod import;
pub mod models;
mod name;
mod registries;
mod roles;

use serde::de::DeserializeOwned;
use serde_json::Value;
use studio_azure_auth::arm::{ArmClient, PollOptions};

use crate::Error;

pub use groups::ResourceGroups;
pub use import::{ImportImageParameters, ImportSource, ImportSourceCredentials};
pub use models::{
    Credentials, ImportMode, NameAvailability, PasswordName, ProvisioningState,
    REGISTRY_RESOURCE_TYPE, RegenerateCredentialParameters, Registry, RegistryCreate,
    RegistryCreateProperties, RegistryNameCheckRequest, RegistryPassword, RegistryProperties,
    RegistryUpdate, RegistryUpdateProperties, ResourceGroup, ResourceGroupCreate,
    ResourceGroupProperties, Sku, SkuName,
};
pub use name::{REGISTRY_NAME_MAX_LEN, REGISTRY_NAME_MIN_LEN, validate_registry_name};
pub use registries::Registries;
pub use roles::{RegistryRole, RoleGrant};

/// The Microsoft.ContainerRegistry API version.
pub const CONTAINER_REGISTRY_API_VERSION: &str = "2025-11-01";
/// The Microsoft.Resources API version for resource groups.
pub const RESOURCE_GROUPS_API_VERSION: &str = "2025-04-01";

/// ACR management in one subscription. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AcrManagementClient {
    arm: ArmClient,
    subscription_id: String,
    poll: PollOptions,
}

impl AcrManagementClient {
    /// A client for `subscription_id` over `arm`.
    pub fn new(arm: ArmClient, subscription_id: impl Into<String>) -> Self {
        Self {
            arm,
            subscription_id: subscription_id.into(),
            poll: PollOptions::default(),
        }
    }

    /// Uses `poll` (progress callback, cancellation) for every long-running operation.
    pub fn with_poll_options(mut self, poll: PollOptions) -> Self {
        self.poll = poll;
        self
    }

    /// The ARM client.
    pub fn arm(&self) -> &ArmClient {
        &self.arm
    }

    /// The subscription id.
    pub fn subscription_id(&self) -> &str {
        &self.subscription_id
    }

    /// Resource groups of the subscription.
    pub fn resource_groups(&self) -> ResourceGroups {
        ResourceGroups::new(self.clone())
    }

    /// Container registries of the subscription.
    pub fn registries(&self) -> Registries {
        Registries::new(self.clone())
    }

    pub(crate) fn poll(&self) -> &PollOptions {
        &self.poll
    }

    /// `/subscriptions/<id>`, after checking the id fits in a path.
    pub(crate) fn subscription_path(&self) -> Result<String, Error> {
        name::check_segment("subscription id", &self.subscription_id)?;
        Ok(format!("/subscriptions/{}", self.subscription_id))
    }
}

/// Reads an ARM body as `T`.
pub(crate) fn decode<T: DeserializeOwned>(what: &str, body: Value) -> Result<T, Error> {
    serde_json::from_value(body).map_err(|e| Error::Decode {
        what: what.to_owned(),
        reason: e.to_string(),
    })
}

/// A request body as JSON.
pub(crate) fn encode<T: serde::Serialize>(what: &str, body: &T) -> Result<Value, Error> {
    serde_json::to_value(body).map_err(|e| Error::Decode {
        what: what.to_owned(),
        reason: e.to_string(),
    })
}
