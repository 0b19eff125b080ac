//! Resource groups: ensure, show, create or update, delete.

use azure_core::http::Method;

use super::models::{ResourceGroup, ResourceGroupCreate};
use super::{AcrManagementClient, RESOURCE_GROUPS_API_VERSION, decode, encode, name};
use crate::Error;

/// The resource groups of a subscription, from [`AcrManagementClient::resource_groups`].
#[derive(Clone, Debug)]
pub struct ResourceGroups {
    client: AcrManagementClient,
}

impl ResourceGroups {
    pub(crate) fn new(client: AcrManagementClient) -> Self {
        Self { client }
    }

    /// `/subscriptions/<id>/resourcegroups/<name>` (Microsoft.Resources spells it lower-case).
    pub fn path(&self, name: &str) -> Result<String, Error> {
        name::check_segment("resource group name", name)?;
        Ok(format!(
            "{}/resourcegroups/{name}",
            self.client.subscription_path()?
        ))
    }

    /// The group called `name`, or `None` when it does not exist.
    pub async fn find(&self, name: &str) -> Result<Option<ResourceGroup>, Error> {
        let body: Option<serde_json::Value> = self
            .client
            .arm()
            .get_optional(&self.path(name)?, RESOURCE_GROUPS_API_VERSION)
            .await?;
        body.map(|b| decode("a resource group", b)).transpose()
    }

    /// The group called `name` (`ResourceGroupNotFound` is an [`Error::Azure`]).
    ///
    /// ```no_run
    /// # async fn demo(acr: studio_acr::management::AcrManagementClient) -> Result<(), studio_acr::Error> {
    /// let group = acr.resource_groups().show("studio").await?;
    /// println!("{} in {}", group.name, group.location);
    /// # Ok(()) }
    /// ```
    pub async fn show(&self, name: &str) -> Result<ResourceGroup, Error> {
        let body: serde_json::Value = self
            .client
            .arm()
            .get(&self.path(name)?, RESOURCE_GROUPS_API_VERSION)
            .await?;
        decode("a resource group", body)
    }

    /// Creates the group, or replaces its location, tags and `managedBy` (a PUT).
    pub async fn create_or_update(
        &self,
        name: &str,
        group: &ResourceGroupCreate,
    ) -> Result<ResourceGroup, Error> {
        let path = self.path(name)?;
        let body = encode("a resource group", group)?;
        tracing::info!(resource_group = name, location = %group.location, "creating resource group");
        let created = self
            .client
            .arm()
            .run(
                Method::Put,
                &path,
                RESOURCE_GROUPS_API_VERSION,
                Some(&body),
                self.client.poll(),
            )
            .await?;
        decode("a resource group", created)
    }

    /// The group called `name`: the existing one untouched (its tags and location kept), or
    /// a new one made from `group` when there is none, as `az group create` is used in
    /// scripts.
    ///
    /// ```no_run
    /// # async fn demo(acr: studio_acr::management::AcrManagementClient) -> Result<(), studio_acr::Error> {
    /// use studio_acr::management::ResourceGroupCreate;
    ///
    /// let group = acr
    ///     .resource_groups()
    ///     .ensure("studio", &ResourceGroupCreate::new("eastus").tag("owner", "studio"))
    ///     .await?;
    /// println!("{}", group.id);
    /// # Ok(()) }
    /// ```
    pub async fn ensure(
        &self,
        name: &str,
        group: &ResourceGroupCreate,
    ) -> Result<ResourceGroup, Error> {
        if let Some(existing) = self.find(name).await? {
            if !existing.location.eq_ignore_ascii_case(&group.location) {
                tracing::warn!(
                    resource_group = name,
                    existing = %existing.location,
                    wanted = %group.location,
                    "the resource group exists in another location; keeping it"
                );
            }
            return Ok(existing);
        }
        self.create_or_update(name, group).await
    }

    /// Deletes the group and everything in it, waiting for the long-running operation.
    ///
    /// ```no_run
    /// # async fn demo(acr: studio_acr::management::AcrManagementClient) -> Result<(), studio_acr::Error> {
    /// acr.resource_groups().delete("studio-scratch").await?;
    /// # Ok(()) }
    /// ```
    pub async fn delete(&self, name: &str) -> Result<(), Error> {
        let path = self.path(name)?;
        tracing::info!(resource_group = name, "deleting resource group");
        self.client
            .arm()
            .run(
                Method::Delete,
                &path,
                RESOURCE_GROUPS_API_VERSION,
                None,
                self.client.poll(),
            )
            .await?;
        Ok(())
    }
}
