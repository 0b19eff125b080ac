//! [`Cluster`]: the ARM side of the cluster: resource group, deployment, what-if, credentials,
//! registry attachment and the cluster's service principal.
//!
//! ```no_run
//! # async fn demo(arm: studio_azure_auth::arm::ArmClient) -> Result<(), studio_cluster::Error> {
//! use std::path::Path;
//! use studio_cluster::{Cluster, ClusterOptions, DeployOptions, DeployOutcome};
//!
//! let cluster = Cluster::new(arm, ClusterOptions::default());
//! let outcome = cluster
//!     .deploy(Path::new("_output/test-user-k8s-6745ab3c"), &DeployOptions {
//!         subscription_id: "00000000-0000-0000-0000-000000000000".into(),
//!         location: Some("eastus".into()),
//!         ..Default::default()
//!     })
//!     .await?;
//! if let DeployOutcome::Deployed(d) = outcome {
//!     println!("{} ready; kubeconfig at {:?}", d.cluster_name, d.kubeconfig);
//!     let registry = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/studio/providers/Microsoft.ContainerRegistry/registries/studio";
//!     cluster.attach_acr("00000000-0000-0000-0000-000000000000", &d.resource_group, &d.cluster_name, registry).await?;
//! }
//! # Ok(()) }
//! ```

use std::fmt;

use serde_json::Value;
use studio_azure_auth::arm::ArmClient;
use studio_azure_auth::graph::{CreateForRbac, ServicePrincipalCredentials, create_for_rbac};
use studio_azure_auth::rbac::{self, AssignmentOutcome, AssignmentRetry, PrincipalType};
use studio_azure_auth::store::ConfigDir;
use studio_azure_auth::subscription;

use crate::error::Error;
use crate::generate::Identity;
use crate::template::MANAGED_CLUSTERS_API_VERSION;

/// The Microsoft.Resources API version for resource groups, deployments and what-if.
pub const RESOURCES_API_VERSION: &str = "2025-04-01";

/// The role `attach_acr` grants the kubelet identity.
pub const ACR_PULL: &str = "AcrPull";

/// Options of [`Cluster`].
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// API version for resource groups and deployments.
    pub resources_api_version: String,
    /// API version for managed clusters.
    pub managed_clusters_api_version: String,
    /// How role assignments wait for a new principal to replicate.
    pub assignment_retry: AssignmentRetry,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            resources_api_version: RESOURCES_API_VERSION.to_owned(),
            managed_clusters_api_version: MANAGED_CLUSTERS_API_VERSION.to_owned(),
            assignment_retry: AssignmentRetry::default(),
        }
    }
}

/// The cluster client. Cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    pub(crate) arm: ArmClient,
    pub(crate) options: ClusterOptions,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("arm", &self.arm)
            .field("options", &self.options)
            .finish()
    }
}

/// `/subscriptions/<id>/resourcegroups/<rg>`.
pub fn resource_group_path(subscription_id: &str, resource_group: &str) -> String {
    format!("/subscriptions/{subscription_id}/resourcegroups/{resource_group}")
}

/// The managed cluster's resource id.
pub fn managed_cluster_path(subscription_id: &str, resource_group: &str, name: &str) -> String {
    format!(
        "/subscriptions/{subscription_id}/resourceGroups/{resource_group}/providers/Microsoft.ContainerService/managedClusters/{name}"
    )
}

impl Cluster {
    /// A client that talks to ARM through `arm`.
    pub fn new(arm: ArmClient, options: ClusterOptions) -> Self {
        Self { arm, options }
    }

    /// The ARM client.
    pub fn arm(&self) -> &ArmClient {
        &self.arm
    }

    /// The subscription to deploy to: `wanted` (an id, or a display name looked up through ARM),
    /// else the default chosen with `account set` (kept in `dir`).
    pub async fn resolve_subscription(
        &self,
        wanted: Option<&str>,
        dir: &ConfigDir,
    ) -> Result<String, Error> {
        match wanted {
            Some(id) if uuid::Uuid::parse_str(id).is_ok() => Ok(id.to_owned()),
            Some(name) => Ok(subscription::show(&self.arm, dir, Some(name))
                .await?
                .subscription_id),
            None => subscription::default_subscription(dir)?
                .map(|s| s.subscription_id)
                .ok_or(Error::Azure(
                    studio_azure_auth::Error::NoDefaultSubscription,
                )),
        }
    }

    /// The managed cluster as ARM returns it.
    pub async fn managed_cluster(
        &self,
        subscription_id: &str,
        resource_group: &str,
        name: &str,
    ) -> Result<Value, Error> {
        Ok(self
            .arm
            .get(
                &managed_cluster_path(subscription_id, resource_group, name),
                &self.options.managed_clusters_api_version,
            )
            .await?)
    }

    /// `az aks update --attach-acr`: grants `AcrPull` on the registry (its resource id) to the
    /// cluster's kubelet identity (`properties.identityProfile.kubeletidentity.objectId`).
    pub async fn attach_acr(
        &self,
        subscription_id: &str,
        resource_group: &str,
        cluster_name: &str,
        registry_id: &str,
    ) -> Result<AssignmentOutcome, Error> {
        let lower = registry_id.to_ascii_lowercase();
        if !lower.starts_with("/subscriptions/")
            || !lower.contains("/providers/microsoft.containerregistry/registries/")
        {
            return Err(Error::InvalidOption(format!(
                "'{registry_id}' is not a registry resource id (/subscriptions/…/providers/Microsoft.ContainerRegistry/registries/<name>)"
            )));
        }
        let cluster = self
            .managed_cluster(subscription_id, resource_group, cluster_name)
            .await?;
        let object_id = cluster
            .pointer("/properties/identityProfile/kubeletidentity/objectId")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Error::MissingField {
                what: format!("managed cluster {cluster_name}"),
                field: "properties.identityProfile.kubeletidentity.objectId".to_owned(),
                hint: "the cluster has no kubelet managed identity (it runs as a service principal): grant AcrPull to that service principal instead".to_owned(),
            })?;
        let role = rbac::find_role(&self.arm, registry_id, ACR_PULL).await?;
        let outcome = rbac::assign_role(
            &self.arm,
            registry_id,
            &role.id,
            object_id,
            PrincipalType::ServicePrincipal,
            &self.options.assignment_retry,
        )
        .await?;
        tracing::info!(
            cluster = cluster_name,
            registry = registry_id,
            ?outcome,
            "AcrPull granted"
        );
        Ok(outcome)
    }

    /// Creates the cluster's service principal as acs-engine did: an application named
    /// `display_name` with `Contributor` on the resource group (which must exist: see
    /// [`Cluster::ensure_resource_group`]). Use it with [`Identity::from`].
    pub async fn create_service_principal(
        &self,
        graph: &ArmClient,
        subscription_id: &str,
        resource_group: &str,
        display_name: &str,
        tenant: &str,
    ) -> Result<ServicePrincipalCredentials, Error> {
        let request = CreateForRbac {
            display_name: display_name.to_owned(),
            role: Some("Contributor".to_owned()),
            scopes: vec![resource_group_path(subscription_id, resource_group)],
            tenant: tenant.to_owned(),
            assignment_retry: self.options.assignment_retry.clone(),
            ..Default::default()
        };
        Ok(create_for_rbac(graph, &self.arm, &request).await?)
    }
}

impl From<&ServicePrincipalCredentials> for Identity {
    fn from(sp: &ServicePrincipalCredentials) -> Self {
        Identity::ServicePrincipal {
            client_id: sp.app_id.clone(),
            secret: sp.password.clone(),
        }
    }
}
