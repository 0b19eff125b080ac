//! `az acr import`: a server-side copy of an image from another registry into this one.

use std::fmt;

use azure_core::credentials::Secret;
use azure_core::http::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use studio_azure_auth::redact::Redacted;

use super::models::ImportMode;
use super::registries::Registries;
use super::{CONTAINER_REGISTRY_API_VERSION, encode};
use crate::Error;

/// The body of `Registries_ImportImage`.
///
/// ```
/// use studio_acr::management::{ImportImageParameters, ImportMode};
///
/// let import = ImportImageParameters::from_registry_uri("mcr.microsoft.com", "hello-world:latest")
///     .target_tag("base/hello-world:latest")
///     .mode(ImportMode::Force);
/// assert_eq!(
///     serde_json::to_value(&import)?,
///     serde_json::json!({
///         "source": {"registryUri": "mcr.microsoft.com", "sourceImage": "hello-world:latest"},
///         "targetTags": ["base/hello-world:latest"],
///         "mode": "Force"
///     })
/// );
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportImageParameters {
    /// Where the image comes from.
    pub source: ImportSource,
    /// `repository[:tag]` names to create (not sent when empty; ARM then keeps the source's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_tags: Vec<String>,
    /// Repositories to copy the manifest into without a tag (not sent when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub untagged_target_repositories: Vec<String>,
    /// `NoForce` (fail if a target tag exists) or `Force` (overwrite); not sent when `None`
    /// (ARM's default is `NoForce`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<ImportMode>,
    /// Other fields, sent as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The source of an import: an Azure registry by resource id, or any registry by host.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportSource {
    /// The source ACR's resource id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    /// The source registry's host, e.g. `mcr.microsoft.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_uri: Option<String>,
    /// Credentials for a `registry_uri` source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<ImportSourceCredentials>,
    /// `repository`, `repository:tag` or `repository@sha256:…`.
    pub source_image: String,
    /// Other fields, sent as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Credentials for the source registry of an import. `Debug` shows the password as `***`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportSourceCredentials {
    /// The user name, if the registry wants one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The password or token.
    pub password: Secret,
}

impl fmt::Debug for ImportSourceCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImportSourceCredentials")
            .field("username", &self.username)
            .field("password", &Redacted)
            .finish()
    }
}

impl ImportImageParameters {
    fn new(source: ImportSource) -> Self {
        Self {
            source,
            target_tags: Vec::new(),
            untagged_target_repositories: Vec::new(),
            mode: Some(ImportMode::NoForce),
            extra: Map::new(),
        }
    }

    /// Import `source_image` from the Azure registry with resource id `resource_id`.
    pub fn from_registry_id(
        resource_id: impl Into<String>,
        source_image: impl Into<String>,
    ) -> Self {
        Self::new(ImportSource {
            resource_id: Some(resource_id.into()),
            registry_uri: None,
            credentials: None,
            source_image: source_image.into(),
            extra: Map::new(),
        })
    }

    /// Import `source_image` from the registry at `registry_uri` (e.g. `docker.io`).
    pub fn from_registry_uri(
        registry_uri: impl Into<String>,
        source_image: impl Into<String>,
    ) -> Self {
        Self::new(ImportSource {
            resource_id: None,
            registry_uri: Some(registry_uri.into()),
            credentials: None,
            source_image: source_image.into(),
            extra: Map::new(),
        })
    }

    /// Authenticates to the source registry.
    pub fn credentials(mut self, username: Option<String>, password: Secret) -> Self {
        self.source.credentials = Some(ImportSourceCredentials { username, password });
        self
    }

    /// Adds a target `repository[:tag]`.
    pub fn target_tag(mut self, tag: impl Into<String>) -> Self {
        self.target_tags.push(tag.into());
        self
    }

    /// Sets the mode.
    pub fn mode(mut self, mode: ImportMode) -> Self {
        self.mode = Some(mode);
        self
    }
}

impl Registries {
    /// Copies an image into the registry server-side (`importImage`) and waits for the
    /// long-running operation.
    ///
    /// ```no_run
    /// # async fn demo(acr: studio_acr::management::AcrManagementClient) -> Result<(), studio_acr::Error> {
    /// use studio_acr::management::ImportImageParameters;
    ///
    /// let source = acr.registries().registry_id("shared", "studiobase")?;
    /// let import = ImportImageParameters::from_registry_id(source, "cuda:12.4")
    ///     .target_tag("base/cuda:12.4");
    /// acr.registries().import_image("studio", "studioml", &import).await?;
    /// # Ok(()) }
    /// ```
    pub async fn import_image(
        &self,
        resource_group: &str,
        name: &str,
        import: &ImportImageParameters,
    ) -> Result<(), Error> {
        let path = format!("{}/importImage", self.registry_id(resource_group, name)?);
        let body = encode("an image import", import)?;
        tracing::info!(
            registry = name,
            source = %import.source.source_image,
            targets = ?import.target_tags,
            "importing image"
        );
        self.client
            .arm()
            .run(
                Method::Post,
                &path,
                CONTAINER_REGISTRY_API_VERSION,
                Some(&body),
                self.client.poll(),
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn import_bodies_round_trip_and_hide_the_source_password() {
        let body = json!({
            "source": {
                "registryUri": "registry.hub.docker.com",
                "sourceImage": "library/hello-world",
                "credentials": {"username": "u", "password": "hunter2-token"}
            },
            "targetTags": ["targetRepository:targetTag"],
            "untaggedTargetRepositories": ["targetRepository1"],
            "mode": "Force"
        });
        let import: ImportImageParameters = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(import.mode, Some(ImportMode::Force));
        assert_eq!(serde_json::to_value(&import).unwrap(), body);
        let leaks = studio_azure_auth::redact::debug_leaks(&import, &["hunter2-token"]);
        assert!(leaks.is_empty(), "{leaks:?}");
        let shown = format!("{import:?}");
        assert!(
            shown.contains(r#"credentials: Some(ImportSourceCredentials { username: Some("u"), password: *** })"#)
                && shown.contains("library/hello-world"),
            "{shown}"
        );
    }
}
