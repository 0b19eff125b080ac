//! Roles on a registry: `az role assignment create --scope <registry> --role AcrPull
//! --assignee <principal>`, through the auth crate's role lookup and assignment (with its
//! wait for a new principal to replicate).

use std::fmt;

use studio_azure_auth::rbac::{self, AssignmentOutcome, AssignmentRetry, PrincipalType};

use super::registries::Registries;
use crate::Error;

/// A role to grant on a registry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RegistryRole {
    /// Pull images.
    AcrPull,
    /// Pull and push images.
    AcrPush,
    /// Everything, including assigning roles.
    Owner,
    /// Any role by name (e.g. `AcrDelete`, `Contributor`), by GUID, or by full definition id.
    Named(String),
}

impl RegistryRole {
    /// The role's name as Azure spells it (or what was given for [`RegistryRole::Named`]).
    pub fn as_str(&self) -> &str {
        match self {
            Self::AcrPull => "AcrPull",
            Self::AcrPush => "AcrPush",
            Self::Owner => "Owner",
            Self::Named(name) => name,
        }
    }
}

impl fmt::Display for RegistryRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for RegistryRole {
    fn from(name: &str) -> Self {
        match name {
            "AcrPull" => Self::AcrPull,
            "AcrPush" => Self::AcrPush,
            "Owner" => Self::Owner,
            other => Self::Named(other.to_owned()),
        }
    }
}

/// Who gets which role, and how long to wait for a new principal to replicate.
#[derive(Clone, Debug)]
pub struct RoleGrant {
    /// The role.
    pub role: RegistryRole,
    /// The principal's object id (for an application: its service principal's id).
    pub principal_id: String,
    /// The principal's kind.
    pub principal_type: PrincipalType,
    /// The replication retry (default: 36 tries 5 s apart, as az).
    pub retry: AssignmentRetry,
}

impl RoleGrant {
    /// `role` for `principal_id` of `principal_type`, with the default retry.
    pub fn new(
        role: RegistryRole,
        principal_id: impl Into<String>,
        principal_type: PrincipalType,
    ) -> Self {
        Self {
            role,
            principal_id: principal_id.into(),
            principal_type,
            retry: AssignmentRetry::default(),
        }
    }
}

impl Registries {
    /// Grants a role on the registry: finds the role definition at the registry's scope
    /// (`$filter=roleName eq '<role>'`), then assigns it with the registry's id as scope. An
    /// identical assignment that exists already is
    /// [`AssignmentOutcome::AlreadyExists`].
    ///
    /// ```no_run
    /// # async fn demo(acr: studio_acr::management::AcrManagementClient) -> Result<(), studio_acr::Error> {
    /// use studio_acr::management::{RegistryRole, RoleGrant};
    /// use studio_azure_auth::rbac::PrincipalType;
    ///
    /// let grant = RoleGrant::new(
    ///     RegistryRole::AcrPull,
    ///     "11111111-1111-1111-1111-111111111111",
    ///     PrincipalType::ServicePrincipal,
    /// );
    /// let outcome = acr.registries().grant_role("studio", "studioml", &grant).await?;
    /// println!("{outcome:?}");
    /// # Ok(()) }
    /// ```
    pub async fn grant_role(
        &self,
        resource_group: &str,
        name: &str,
        grant: &RoleGrant,
    ) -> Result<AssignmentOutcome, Error> {
        let scope = self.registry_id(resource_group, name)?;
        let arm = self.client.arm();
        let role = rbac::find_role(arm, &scope, grant.role.as_str()).await?;
        tracing::info!(
            registry = name,
            role = %grant.role,
            principal = %grant.principal_id,
            "assigning a role on the registry"
        );
        Ok(rbac::assign_role(
            arm,
            &scope,
            &role.id,
            &grant.principal_id,
            grant.principal_type,
            &grant.retry,
        )
        .await?)
    }
}
