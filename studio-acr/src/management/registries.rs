//! Registries: name checks, create, show, list, update, credentials, delete, login server.

use azure_core::http::Method;
use serde_json::Value;

use super::models::{
    Credentials, NameAvailability, PasswordName, RegenerateCredentialParameters, Registry,
    RegistryCreate, RegistryNameCheckRequest, RegistryUpdate,
};
use super::name::{check_segment, validate_registry_name};
use super::{AcrManagementClient, CONTAINER_REGISTRY_API_VERSION, decode, encode};
use crate::Error;

const PROVIDER: &str = "providers/Microsoft.ContainerRegistry";

/// The container registries of a subscription, from [`AcrManagementClient::registries`].
///
/// Every method that takes a registry name checks it locally first (see
/// [`validate_registry_name`](super::validate_registry_name)) and sends nothing when it is
/// not a name ACR accepts.
#[derive(Clone, Debug)]
pub struct Registries {
    pub(crate) client: AcrManagementClient,
}

impl Registries {
    pub(crate) fn new(client: AcrManagementClient) -> Self {
        Self { client }
    }

    /// The registry's resource id,
    /// `/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.ContainerRegistry/registries/<name>`.
    pub fn registry_id(&self, resource_group: &str, name: &str) -> Result<String, Error> {
        validate_registry_name(name)?;
        check_segment("resource group name", resource_group)?;
        Ok(format!(
            "{}/resourceGroups/{resource_group}/{PROVIDER}/registries/{name}",
            self.client.subscription_path()?
        ))
    }

    /// Asks ARM whether `name` can be used for a new registry (after the local check). A
    /// taken name is not an error here: see [`NameAvailability::reason`] and `message`, or
    /// use [`Registries::require_name_available`].
    pub async fn check_name(&self, name: &str) -> Result<NameAvailability, Error> {
        validate_registry_name(name)?;
        let path = format!(
            "{}/{PROVIDER}/checkNameAvailability",
            self.client.subscription_path()?
        );
        let body = encode("a name check", &RegistryNameCheckRequest::new(name))?;
        let response = self
            .client
            .arm()
            .send(
                Method::Post,
                &path,
                CONTAINER_REGISTRY_API_VERSION,
                Some(&body),
            )
            .await?;
        decode("a name check", response.json::<Value>()?)
    }

    /// [`Registries::check_name`], with an unavailable name as
    /// [`Error::NameNotAvailable`] carrying ARM's `reason` and `message`.
    ///
    /// ```no_run
    /// # async fn demo(acr: studio_acr::management::AcrManagementClient) -> Result<(), studio_acr::Error> {
    /// match acr.registries().require_name_available("studioml").await {
    ///     Ok(()) => println!("free"),
    ///     Err(studio_acr::Error::NameNotAvailable { reason, message, .. }) => {
    ///         println!("taken: {reason}: {message}")
    ///     }
    ///     Err(e) => return Err(e),
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn require_name_available(&self, name: &str) -> Result<(), Error> {
        let answer = self.check_name(name).await?;
        if answer.name_available {
            return Ok(());
        }
        Err(Error::NameNotAvailable {
            name: name.to_owned(),
            reason: answer.reason.unwrap_or_else(|| "Unavailable".to_owned()),
            message: answer
                .message
                .unwrap_or_else(|| "ARM gave no message".to_owned()),
        })
    }

    /// Creates (or replaces) a registry and waits until its `provisioningState` is
    /// `Succeeded` (polling as ARM says: `Azure-AsyncOperation`, else the resource itself).
    ///
    /// ```no_run
    /// # async fn demo(acr: studio_acr::management::AcrManagementClient) -> Result<(), studio_acr::Error> {
    /// use studio_acr::management::{RegistryCreate, SkuName};
    ///
    /// let request = RegistryCreate::new("eastus", SkuName::Basic).admin_user_enabled(true);
    /// let registry = acr.registries().create("studio", "studioml", &request).await?;
    /// assert_eq!(registry.sku.name, SkuName::Basic);
    /// # Ok(()) }
    /// ```
    pub async fn create(
        &self,
        resource_group: &str,
        name: &str,
        registry: &RegistryCreate,
    ) -> Result<Registry, Error> {
        let path = self.registry_id(resource_group, name)?;
        let body = encode("a registry", registry)?;
        tracing::info!(registry = name, sku = %registry.sku.name, location = %registry.location, "creating registry");
        let created = self
            .client
            .arm()
            .run(
                Method::Put,
                &path,
                CONTAINER_REGISTRY_API_VERSION,
                Some(&body),
                self.client.poll(),
            )
            .await?;
        decode("a registry", created)
    }

    /// The registry (`ResourceNotFound` is an [`Error::Azure`]).
    pub async fn show(&self, resource_group: &str, name: &str) -> Result<Registry, Error> {
        let path = self.registry_id(resource_group, name)?;
        let body: Value = self
            .client
            .arm()
            .get(&path, CONTAINER_REGISTRY_API_VERSION)
            .await?;
        decode("a registry", body)
    }

    /// The registry, or `None` when it does not exist.
    pub async fn find(&self, resource_group: &str, name: &str) -> Result<Option<Registry>, Error> {
        let path = self.registry_id(resource_group, name)?;
        let body: Option<Value> = self
            .client
            .arm()
            .get_optional(&path, CONTAINER_REGISTRY_API_VERSION)
            .await?;
        body.map(|b| decode("a registry", b)).transpose()
    }

    /// Every registry in the subscription (all pages).
    ///
    /// ```no_run
    /// # async fn demo(acr: studio_acr::management::AcrManagementClient) -> Result<(), studio_acr::Error> {
    /// for r in acr.registries().list().await? {
    ///     println!("{} {} {}", r.name, r.sku.name, r.properties.login_server);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn list(&self) -> Result<Vec<Registry>, Error> {
        let path = format!("{}/{PROVIDER}/registries", self.client.subscription_path()?);
        self.list_at(&path).await
    }

    /// Every registry in a resource group (all pages).
    pub async fn list_by_resource_group(
        &self,
        resource_group: &str,
    ) -> Result<Vec<Registry>, Error> {
        check_segment("resource group name", resource_group)?;
        let path = format!(
            "{}/resourceGroups/{resource_group}/{PROVIDER}/registries",
            self.client.subscription_path()?
        );
        self.list_at(&path).await
    }

    async fn list_at(&self, path: &str) -> Result<Vec<Registry>, Error> {
        let items: Vec<Value> = self
            .client
            .arm()
            .list(path, CONTAINER_REGISTRY_API_VERSION)
            .await?;
        items
            .into_iter()
            .map(|item| decode("a registry in a list", item))
            .collect()
    }

    /// Changes the admin user, SKU, tags or other properties (PATCH) and waits for the
    /// long-running operation.
    ///
    /// ```no_run
    /// # async fn demo(acr: studio_acr::management::AcrManagementClient) -> Result<(), studio_acr::Error> {
    /// use studio_acr::management::RegistryUpdate;
    ///
    /// let registry = acr
    ///     .registries()
    ///     .update("studio", "studioml", &RegistryUpdate::default().admin_user_enabled(true))
    ///     .await?;
    /// assert!(registry.properties.admin_user_enabled);
    /// # Ok(()) }
    /// ```
    pub async fn update(
        &self,
        resource_group: &str,
        name: &str,
        update: &RegistryUpdate,
    ) -> Result<Registry, Error> {
        let path = self.registry_id(resource_group, name)?;
        let body = encode("a registry update", update)?;
        tracing::info!(registry = name, "updating registry");
        let updated = self
            .client
            .arm()
            .run(
                Method::Patch,
                &path,
                CONTAINER_REGISTRY_API_VERSION,
                Some(&body),
                self.client.poll(),
            )
            .await?;
        decode("a registry", updated)
    }

    /// The admin user name and passwords (the admin user must be enabled).
    ///
    /// ```no_run
    /// # async fn demo(acr: studio_acr::management::AcrManagementClient) -> Result<(), studio_acr::Error> {
    /// use studio_acr::management::PasswordName;
    ///
    /// let credentials = acr.registries().list_credentials("studio", "studioml").await?;
    /// let password = credentials.password(&PasswordName::Password);
    /// println!("{credentials}"); // never prints the passwords
    /// # let _ = password; Ok(()) }
    /// ```
    pub async fn list_credentials(
        &self,
        resource_group: &str,
        name: &str,
    ) -> Result<Credentials, Error> {
        let path = format!(
            "{}/listCredentials",
            self.registry_id(resource_group, name)?
        );
        let response = self
            .client
            .arm()
            .send(Method::Post, &path, CONTAINER_REGISTRY_API_VERSION, None)
            .await?;
        decode("registry credentials", response.json::<Value>()?)
    }

    /// Regenerates `password` or `password2`; returns the new credentials.
    ///
    /// ```no_run
    /// # async fn demo(acr: studio_acr::management::AcrManagementClient) -> Result<(), studio_acr::Error> {
    /// use studio_acr::management::PasswordName;
    ///
    /// let fresh = acr
    ///     .registries()
    ///     .regenerate_credential("studio", "studioml", PasswordName::Password2)
    ///     .await?;
    /// assert!(fresh.password(&PasswordName::Password2).is_some());
    /// # Ok(()) }
    /// ```
    pub async fn regenerate_credential(
        &self,
        resource_group: &str,
        name: &str,
        password: PasswordName,
    ) -> Result<Credentials, Error> {
        let path = format!(
            "{}/regenerateCredential",
            self.registry_id(resource_group, name)?
        );
        let body = encode(
            "a credential regeneration",
            &RegenerateCredentialParameters { name: password },
        )?;
        tracing::info!(registry = name, "regenerating a registry password");
        let response = self
            .client
            .arm()
            .send(
                Method::Post,
                &path,
                CONTAINER_REGISTRY_API_VERSION,
                Some(&body),
            )
            .await?;
        decode("registry credentials", response.json::<Value>()?)
    }

    /// Deletes the registry, waiting for the long-running operation.
    ///
    /// ```no_run
    /// # async fn demo(acr: studio_acr::management::AcrManagementClient) -> Result<(), studio_acr::Error> {
    /// acr.registries().delete("studio", "studioml").await?;
    /// assert!(acr.registries().find("studio", "studioml").await?.is_none());
    /// # Ok(()) }
    /// ```
    pub async fn delete(&self, resource_group: &str, name: &str) -> Result<(), Error> {
        let path = self.registry_id(resource_group, name)?;
        tracing::info!(registry = name, "deleting registry");
        self.client
            .arm()
            .run(
                Method::Delete,
                &path,
                CONTAINER_REGISTRY_API_VERSION,
                None,
                self.client.poll(),
            )
            .await?;
        Ok(())
    }

    /// The registry's login server, e.g. `studioml.azurecr.io`, as ARM reports it (so it is
    /// right in every cloud).
    ///
    /// ```no_run
    /// # async fn demo(acr: studio_acr::management::AcrManagementClient) -> Result<(), studio_acr::Error> {
    /// let server = acr.registries().login_server("studio", "studioml").await?;
    /// println!("docker login {server}");
    /// # Ok(()) }
    /// ```
    pub async fn login_server(&self, resource_group: &str, name: &str) -> Result<String, Error> {
        let registry = self.show(resource_group, name).await?;
        if registry.properties.login_server.is_empty() {
            return Err(Error::Decode {
                what: format!("registry {name}"),
                reason: "ARM returned no properties.loginServer".to_owned(),
            });
        }
        Ok(registry.properties.login_server)
    }
}
