//! Typed ARM models for registries, resource groups, credentials and name checks, in ARM's
//! camelCase JSON.
//!
//! Responses: unknown fields are ignored, `null` reads as the default, and enum-like strings
//! keep values this version does not know (`Other(..)`), so a new field or value from Azure is
//! never fatal. Requests: the common fields are typed; anything else a caller (or a published
//! example) puts in a request body rides in an `extra` map that is serialised as it came, so a
//! request round-trips exactly.

use std::collections::BTreeMap;
use std::fmt;

use azure_core::credentials::Secret;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use studio_azure_auth::redact::Redacted;

/// Reads `null` as the type's default (ARM sends `"tags": null`, `"status": null`, …).
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A string enum that keeps values it does not know (`Other`), compares known values
/// case-insensitively, and (de)serialises as the plain string.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(from = "String", into = "String")]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this version does not know, as ARM sent it.
            Other(String),
        }

        impl $name {
            /// The value as ARM spells it.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $text, )+
                    Self::Other(s) => s,
                }
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                $( if s.eq_ignore_ascii_case($text) { return Self::$variant; } )+
                Self::Other(s)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self::from(s.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.as_str().to_owned()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum! {
    /// A registry SKU (`Basic`, `Standard`, `Premium`; `Classic` is retired).
    SkuName {
        /// Basic.
        Basic = "Basic",
        /// Standard.
        Standard = "Standard",
        /// Premium (geo-replication, private link, …).
        Premium = "Premium",
        /// The retired Classic SKU, still reported for old registries.
        Classic = "Classic",
    }
}

string_enum! {
    /// The provisioning state of a resource.
    ProvisioningState {
        /// Being created.
        Creating = "Creating",
        /// Being updated.
        Updating = "Updating",
        /// Being deleted.
        Deleting = "Deleting",
        /// Done.
        Succeeded = "Succeeded",
        /// Failed.
        Failed = "Failed",
        /// Canceled.
        Canceled = "Canceled",
    }
}

string_enum! {
    /// Which admin password: `password` or `password2`.
    PasswordName {
        /// The first password.
        Password = "password",
        /// The second password.
        Password2 = "password2",
    }
}

string_enum! {
    /// What an import does with target tags that exist already.
    ImportMode {
        /// Fail the import before copying anything (ARM's default).
        NoForce = "NoForce",
        /// Overwrite them.
        Force = "Force",
    }
}

/// The resource type of a registry, as `checkNameAvailability` wants it.
pub const REGISTRY_RESOURCE_TYPE: &str = "Microsoft.ContainerRegistry/registries";

/// A registry's SKU.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sku {
    /// The SKU name.
    pub name: SkuName,
    /// The tier (read-only; ARM derives it from the name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<SkuName>,
}

impl Sku {
    /// A SKU by name, as a request sends it (no tier).
    pub fn new(name: SkuName) -> Self {
        Self { name, tier: None }
    }
}

/// A container registry, as ARM returns it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registry {
    /// The resource id, `/subscriptions/…/registries/<name>`.
    #[serde(default, deserialize_with = "null_default")]
    pub id: String,
    /// The registry name.
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    /// `Microsoft.ContainerRegistry/registries`.
    #[serde(default, rename = "type", deserialize_with = "null_default")]
    pub resource_type: String,
    /// The Azure region.
    #[serde(default, deserialize_with = "null_default")]
    pub location: String,
    /// The tags.
    #[serde(default, deserialize_with = "null_default")]
    pub tags: BTreeMap<String, String>,
    /// The SKU.
    pub sku: Sku,
    /// The properties.
    #[serde(default, deserialize_with = "null_default")]
    pub properties: RegistryProperties,
}

/// The properties of a [`Registry`] the toolkit reads.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryProperties {
    /// The registry's host, e.g. `myregistry.azurecr.io`.
    #[serde(default, deserialize_with = "null_default")]
    pub login_server: String,
    /// When the registry was created (ISO 8601).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_date: Option<String>,
    /// The provisioning state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<ProvisioningState>,
    /// Whether the admin user (username + two passwords) is enabled.
    #[serde(default, deserialize_with = "null_default")]
    pub admin_user_enabled: bool,
    /// Whether anonymous (unauthenticated) pull is enabled.
    #[serde(default, deserialize_with = "null_default")]
    pub anonymous_pull_enabled: bool,
    /// Whether dedicated data endpoints are enabled.
    #[serde(default, deserialize_with = "null_default")]
    pub data_endpoint_enabled: bool,
    /// `Enabled` or `Disabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_network_access: Option<String>,
    /// `Enabled` or `Disabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone_redundancy: Option<String>,
    /// `LegacyRegistryPermissions` or `AbacRepositoryPermissions`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_assignment_mode: Option<String>,
}

/// The body of `Registries_Create`: location, SKU, admin user and tags typed; anything else
/// in `extra`.
///
/// ```
/// use studio_acr::management::{RegistryCreate, SkuName};
///
/// let request = RegistryCreate::new("westus", SkuName::Basic).admin_user_enabled(true);
/// assert_eq!(
///     serde_json::to_value(&request)?,
///     serde_json::json!({"location": "westus", "sku": {"name": "Basic"},
///                        "properties": {"adminUserEnabled": true}})
/// );
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryCreate {
    /// The Azure region.
    pub location: String,
    /// Tags (not sent when empty).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// The SKU.
    pub sku: Sku,
    /// The properties (not sent when empty).
    #[serde(default, skip_serializing_if = "RegistryCreateProperties::is_empty")]
    pub properties: RegistryCreateProperties,
    /// Other top-level fields (e.g. `identity`), sent as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The properties of a [`RegistryCreate`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryCreateProperties {
    /// Whether the admin user is enabled (not sent when `None`; ARM's default is off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_user_enabled: Option<bool>,
    /// Other properties (e.g. `zoneRedundancy`, `roleAssignmentMode`), sent as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl RegistryCreateProperties {
    /// Whether nothing would be sent.
    pub fn is_empty(&self) -> bool {
        self.admin_user_enabled.is_none() && self.extra.is_empty()
    }
}

impl RegistryCreate {
    /// A registry in `location` with `sku`, admin user off.
    pub fn new(location: impl Into<String>, sku: SkuName) -> Self {
        Self {
            location: location.into(),
            tags: BTreeMap::new(),
            sku: Sku::new(sku),
            properties: RegistryCreateProperties {
                admin_user_enabled: Some(false),
                extra: Map::new(),
            },
            extra: Map::new(),
        }
    }

    /// Turns the admin user on or off.
    pub fn admin_user_enabled(mut self, enabled: bool) -> Self {
        self.properties.admin_user_enabled = Some(enabled);
        self
    }

    /// Adds a tag.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }
}

/// The body of `Registries_Update` (PATCH): only what is set is sent.
///
/// ```
/// use studio_acr::management::{RegistryUpdate, SkuName};
///
/// let patch = RegistryUpdate::default().admin_user_enabled(true).sku(SkuName::Premium);
/// assert_eq!(
///     serde_json::to_value(&patch)?,
///     serde_json::json!({"sku": {"name": "Premium"}, "properties": {"adminUserEnabled": true}})
/// );
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryUpdate {
    /// New tags (replacing the old ones), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    /// A new SKU, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<Sku>,
    /// Properties to change (not sent when empty).
    #[serde(default, skip_serializing_if = "RegistryUpdateProperties::is_empty")]
    pub properties: RegistryUpdateProperties,
    /// Other top-level fields (e.g. `identity`), sent as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The properties of a [`RegistryUpdate`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryUpdateProperties {
    /// Turn the admin user on or off, if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_user_enabled: Option<bool>,
    /// Other properties (e.g. `roleAssignmentMode`), sent as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl RegistryUpdateProperties {
    /// Whether nothing would be sent.
    pub fn is_empty(&self) -> bool {
        self.admin_user_enabled.is_none() && self.extra.is_empty()
    }
}

impl RegistryUpdate {
    /// Turns the admin user on or off.
    pub fn admin_user_enabled(mut self, enabled: bool) -> Self {
        self.properties.admin_user_enabled = Some(enabled);
        self
    }

    /// Changes the SKU.
    pub fn sku(mut self, sku: SkuName) -> Self {
        self.sku = Some(Sku::new(sku));
        self
    }

    /// Replaces the tags.
    pub fn tags(mut self, tags: BTreeMap<String, String>) -> Self {
        self.tags = Some(tags);
        self
    }
}

/// The body of `Registries_CheckNameAvailability`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryNameCheckRequest {
    /// The name to check.
    pub name: String,
    /// Always [`REGISTRY_RESOURCE_TYPE`].
    #[serde(rename = "type")]
    pub resource_type: String,
}

impl RegistryNameCheckRequest {
    /// A check of `name` as a registry name.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            resource_type: REGISTRY_RESOURCE_TYPE.to_owned(),
        }
    }
}

/// The answer of `Registries_CheckNameAvailability`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NameAvailability {
    /// Whether the name can be used.
    #[serde(default, deserialize_with = "null_default")]
    pub name_available: bool,
    /// Why not, e.g. `AlreadyExists`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// ARM's explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The admin credentials of a registry (`listCredentials`, `regenerateCredential`).
///
/// The passwords are [`Secret`]s: `Debug` and `Display` name them but never show them;
/// [`Credentials::password`] gives the value. Serialising (for a caller that prints
/// credentials on purpose, as `az acr credential show` does) writes the values.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// The admin user name (the registry name).
    #[serde(default, deserialize_with = "null_default")]
    pub username: String,
    /// The passwords.
    #[serde(default, deserialize_with = "null_default")]
    pub passwords: Vec<RegistryPassword>,
}

/// One admin password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryPassword {
    /// `password` or `password2`.
    pub name: PasswordName,
    /// The value.
    pub value: Secret,
}

impl Credentials {
    /// The password called `name`, if ARM returned it.
    pub fn password(&self, name: &PasswordName) -> Option<&Secret> {
        self.passwords
            .iter()
            .find(|p| &p.name == name)
            .map(|p| &p.value)
    }
}

impl fmt::Debug for RegistryPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryPassword")
            .field("name", &self.name.as_str())
            .field("value", &Redacted)
            .finish()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("passwords", &self.passwords)
            .finish()
    }
}

impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.passwords.iter().map(|p| p.name.as_str()).collect();
        write!(f, "{} (passwords: {})", self.username, names.join(", "))
    }
}

/// The body of `Registries_RegenerateCredential`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegenerateCredentialParameters {
    /// Which password to regenerate.
    pub name: PasswordName,
}

/// A resource group, as ARM returns it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceGroup {
    /// `/subscriptions/<id>/resourceGroups/<name>`.
    #[serde(default, deserialize_with = "null_default")]
    pub id: String,
    /// The name.
    #[serde(default, deserialize_with = "null_default")]
    pub name: String,
    /// The Azure region.
    #[serde(default, deserialize_with = "null_default")]
    pub location: String,
    /// The tags.
    #[serde(default, deserialize_with = "null_default")]
    pub tags: BTreeMap<String, String>,
    /// The id of the resource that manages this group, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_by: Option<String>,
    /// The properties.
    #[serde(default, deserialize_with = "null_default")]
    pub properties: ResourceGroupProperties,
}

/// The properties of a [`ResourceGroup`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceGroupProperties {
    /// The provisioning state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<ProvisioningState>,
}

/// The body of `ResourceGroups_CreateOrUpdate`.
///
/// ```
/// use studio_acr::management::ResourceGroupCreate;
///
/// let group = ResourceGroupCreate::new("eastus").tag("owner", "studio");
/// assert_eq!(
///     serde_json::to_value(&group)?,
///     serde_json::json!({"location": "eastus", "tags": {"owner": "studio"}})
/// );
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceGroupCreate {
    /// The Azure region.
    pub location: String,
    /// Tags (not sent when empty).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// The managing resource's id, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_by: Option<String>,
    /// Other fields, sent as given.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ResourceGroupCreate {
    /// A group in `location`.
    pub fn new(location: impl Into<String>) -> Self {
        Self {
            location: location.into(),
            tags: BTreeMap::new(),
            managed_by: None,
            extra: Map::new(),
        }
    }

    /// Adds a tag.
    pub fn tag(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_nulls_and_values_are_not_fatal() {
        let registry: Registry = serde_json::from_value(json!({
            "id": "/x", "name": "r", "type": "Microsoft.ContainerRegistry/registries",
            "location": "westus", "tags": null, "brandNewField": {"a": 1},
            "sku": {"name": "Ultra", "tier": "Ultra"},
            "properties": {"loginServer": "r.azurecr.io", "provisioningState": "succeeded",
                           "status": null, "adminUserEnabled": null, "somethingNew": true}
        }))
        .unwrap();
        assert_eq!(registry.sku.name, SkuName::Other("Ultra".into()));
        assert_eq!(registry.sku.name.to_string(), "Ultra");
        assert_eq!(
            registry.properties.provisioning_state,
            Some(ProvisioningState::Succeeded)
        );
        assert!(registry.tags.is_empty() && !registry.properties.admin_user_enabled);
    }

    #[test]
    fn requests_round_trip_fields_they_do_not_model() {
        let body = json!({
            "location": "westus", "tags": {"key": "value"}, "sku": {"name": "Premium"},
            "identity": {"type": "SystemAssigned"},
            "properties": {"adminUserEnabled": true, "zoneRedundancy": "Enabled"}
        });
        let request: RegistryCreate = serde_json::from_value(body.clone()).unwrap();
        assert_eq!(request.sku.name, SkuName::Premium);
        assert_eq!(request.properties.admin_user_enabled, Some(true));
        assert_eq!(serde_json::to_value(&request).unwrap(), body);
        let patch = json!({"properties": {"roleAssignmentMode": "AbacRepositoryPermissions"}});
        let update: RegistryUpdate = serde_json::from_value(patch.clone()).unwrap();
        assert_eq!(update.properties.admin_user_enabled, None);
        assert_eq!(serde_json::to_value(&update).unwrap(), patch);
        assert_eq!(
            serde_json::to_value(RegistryUpdate::default()).unwrap(),
            json!({})
        );
    }

    #[test]
    fn credentials_never_show_passwords() {
        let credentials: Credentials = serde_json::from_value(json!({
            "username": "myRegistry",
            "passwords": [{"name": "password", "value": "s3cr3t-one"},
                          {"name": "password2", "value": "s3cr3t-two"}]
        }))
        .unwrap();
        for shown in [
            format!("{credentials:?}"),
            format!("{credentials:#?}"),
            credentials.to_string(),
        ] {
            assert!(!shown.contains("s3cr3t"), "{shown}");
            assert!(shown.contains("password2"), "{shown}");
        }
        let leaks =
            studio_azure_auth::redact::debug_leaks(&credentials, &["s3cr3t-one", "s3cr3t-two"]);
        assert!(leaks.is_empty(), "{leaks:?}");
        assert!(
            format!("{credentials:?}")
                .contains(r#"RegistryPassword { name: "password", value: *** }"#),
            "{credentials:?}"
        );
        assert_eq!(
            credentials
                .password(&PasswordName::Password2)
                .map(Secret::secret),
            Some("s3cr3t-two")
        );
        assert_eq!(
            credentials.to_string(),
            "myRegistry (passwords: password, password2)"
        );
    }
}
