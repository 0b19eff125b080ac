//! acs-engine's `vlabs` Kubernetes apimodel: parse as acs-engine did, validate, and say what AKS
//! does with each part.
//!
//! Parsing follows Go's `encoding/json` as acs-engine used it: keys match their field
//! case-insensitively (the studio runner's file says `OSDiskSizeGB` for `osDiskSizeGB`), `null`
//! is the same as absent, and — as acs-engine's loader did — a key the schema does not know is
//! rejected with its JSON path. Every problem is collected before anything is reported, so one
//! run shows them all:
//!
//! ```
//! use studio_cluster::apimodel::ApiModel;
//!
//! let text = r#"{"apiVersion": "vlabs", "properties": {
//!     "orchestratorProfile": {"orchestratorType": "Kubernetes"},
//!     "masterProfile": {"count": 2, "dnsPrefix": "9bad", "vmSize": "Standard_D2_v2", "colour": "red"},
//!     "agentPoolProfiles": [{"name": "Agent_Pool", "count": 1, "vmSize": "Standard_NC6"}],
//!     "linuxProfile": {"adminUsername": "azureuser", "ssh": {"publicKeys": [{"keyData": ""}]}}}}"#;
//! let err = ApiModel::from_json(text, "kubernetes.json")
//!     .and_then(|m| m.validate().map(|_| m))
//!     .unwrap_err();
//! let Error::InvalidApiModel { problems, .. } = err else { unreachable!() };
//! # use studio_cluster::Error;
//! // The unknown key is reported by the parser; fix it and validation reports the rest at once.
//! assert_eq!(problems[0].path, "properties.masterProfile.colour");
//!
//! let fixed = text.replace(r#", "colour": "red""#, "");
//! let err = ApiModel::from_json(&fixed, "kubernetes.json")?.validate().unwrap_err();
//! let Error::InvalidApiModel { problems, .. } = err else { unreachable!() };
//! let paths: Vec<_> = problems.iter().map(|p| p.path.as_str()).collect();
//! assert_eq!(paths, ["properties.masterProfile.count", "properties.masterProfile.dnsPrefix",
//!                    "properties.agentPoolProfiles[0].name"]);
//! # Ok::<(), studio_cluster::Error>(())
//! ```
//!
//! [`ApiModel::validate`] returns warnings for the fields AKS cannot honour as written, each saying
//! what happens instead (the masters become a system node pool, availability sets become scale
//! sets, …). Empty `dnsPrefix`, `keyData`, `adminUsername` and service principal are fine here:
//! [`generate`](crate::generate) fills them in.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::Path;

use azure_core::credentials::Secret;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use studio_azure_auth::redact::Redacted;

use crate::error::{Error, Problem, io_error};

/// Keys of the document that AKS has no use for, kept as read (their values are never printed).
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Extra(pub Map<String, Value>);

impl fmt::Debug for Extra {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values can hold certificates, keys or passwords: show the keys only.
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// A `vlabs` apimodel (acs-engine's `ContainerService`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiModel {
    /// Always `vlabs`.
    pub api_version: String,
    /// The Azure location, when the file or a flag gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Resource tags, passed to the managed cluster.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// The cluster definition.
    #[serde(default)]
    pub properties: Properties,
    /// `id`, `name`, `type`, `plan`: kept, not used.
    #[serde(flatten)]
    pub other: Extra,
}

/// The cluster definition.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Properties {
    /// The orchestrator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orchestrator_profile: Option<OrchestratorProfile>,
    /// The masters; on AKS, the system node pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_profile: Option<MasterProfile>,
    /// The agent pools.
    #[serde(default)]
    pub agent_pool_profiles: Vec<AgentPoolProfile>,
    /// The Linux admin user and SSH key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linux_profile: Option<LinuxProfile>,
    /// The Windows admin user, for Windows pools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows_profile: Option<WindowsProfile>,
    /// The cluster's service principal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_principal_profile: Option<ServicePrincipalProfile>,
    /// `certificateProfile`, `aadProfile`, `extensionProfiles`, …: kept, not used.
    #[serde(flatten)]
    pub other: Extra,
}

/// `orchestratorProfile`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrchestratorProfile {
    /// `Kubernetes` (case-insensitive).
    #[serde(default)]
    pub orchestrator_type: String,
    /// e.g. `1.10`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub orchestrator_release: String,
    /// e.g. `1.10.3`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub orchestrator_version: String,
    /// Kubernetes settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_config: Option<KubernetesConfig>,
    /// `dcosConfig`, `openShiftConfig`: kept, not used.
    #[serde(flatten)]
    pub other: Extra,
}

/// `kubernetesConfig`: the parts AKS can honour, the rest kept in `other`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesConfig {
    /// `azure`, `kubenet`, `flannel`, `cilium` or empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub network_plugin: String,
    /// `calico`, `cilium`, `azure`, `none` or empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub network_policy: String,
    /// The service CIDR.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service_cidr: String,
    /// The cluster DNS service IP (inside `serviceCidr`).
    #[serde(
        default,
        rename = "dnsServiceIP",
        skip_serializing_if = "String::is_empty"
    )]
    pub dns_service_ip: String,
    /// The pod CIDR.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster_subnet: String,
    /// Pods per node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pods: Option<i64>,
    /// Kubernetes RBAC (default on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_rbac: Option<bool>,
    /// A managed identity instead of a service principal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_managed_identity: Option<bool>,
    /// Addons (`nvidia-device-plugin`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addons: Vec<Addon>,
    /// Everything else: AKS manages it.
    #[serde(flatten)]
    pub other: Extra,
}

/// One addon.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Addon {
    /// e.g. `nvidia-device-plugin`.
    #[serde(default)]
    pub name: String,
    /// Explicitly on or off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// `containers`, `config`: kept, not used.
    #[serde(flatten)]
    pub other: Extra,
}

/// `masterProfile`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MasterProfile {
    /// 1, 3 or 5.
    #[serde(default)]
    pub count: i64,
    /// The DNS prefix: the cluster's name, resource group and FQDN prefix.
    #[serde(default)]
    pub dns_prefix: String,
    /// The masters' VM size; on AKS, the system pool's.
    #[serde(default)]
    pub vm_size: String,
    /// OS disk size.
    #[serde(
        default,
        rename = "osDiskSizeGB",
        skip_serializing_if = "Option::is_none"
    )]
    pub os_disk_size_gb: Option<i64>,
    /// A custom VNET subnet for the system pool.
    #[serde(
        default,
        rename = "vnetSubnetID",
        skip_serializing_if = "String::is_empty"
    )]
    pub vnet_subnet_id: String,
    /// Everything else: AKS manages the control plane.
    #[serde(flatten)]
    pub other: Extra,
}

/// One of `agentPoolProfiles`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentPoolProfile {
    /// `^[a-z][a-z0-9]{0,11}$`.
    #[serde(default)]
    pub name: String,
    /// 1 to 100.
    #[serde(default)]
    pub count: i64,
    /// The VM size.
    #[serde(default)]
    pub vm_size: String,
    /// OS disk size.
    #[serde(
        default,
        rename = "osDiskSizeGB",
        skip_serializing_if = "Option::is_none"
    )]
    pub os_disk_size_gb: Option<i64>,
    /// `Linux` (default) or `Windows`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub os_type: String,
    /// `AvailabilitySet` or `VirtualMachineScaleSets`; AKS always uses scale sets.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub availability_profile: String,
    /// `ManagedDisks` or `StorageAccount`; AKS always uses managed disks.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub storage_profile: String,
    /// Must be empty for Kubernetes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub dns_prefix: String,
    /// Must be empty for Kubernetes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<i64>,
    /// A custom VNET subnet.
    #[serde(
        default,
        rename = "vnetSubnetID",
        skip_serializing_if = "String::is_empty"
    )]
    pub vnet_subnet_id: String,
    /// Node labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom_node_labels: BTreeMap<String, String>,
    /// Everything else.
    #[serde(flatten)]
    pub other: Extra,
}

/// `linuxProfile`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinuxProfile {
    /// The admin user (default `azureuser`).
    #[serde(default)]
    pub admin_username: String,
    /// The SSH keys.
    #[serde(default)]
    pub ssh: Ssh,
    /// `secrets`, `scriptroot`: kept, not used.
    #[serde(flatten)]
    pub other: Extra,
}

/// `linuxProfile.ssh`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ssh {
    /// Exactly one key.
    #[serde(default)]
    pub public_keys: Vec<PublicKey>,
}

/// One SSH public key.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicKey {
    /// OpenSSH public key text (`ssh-rsa AAAA…`); empty to have one generated.
    #[serde(default)]
    pub key_data: String,
}

/// `windowsProfile`. `Debug` shows the password as `***`.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowsProfile {
    /// The Windows admin user.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub admin_username: String,
    /// The Windows admin password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_password: Option<Secret>,
    /// Everything else.
    #[serde(flatten)]
    pub other: Extra,
}

/// `servicePrincipalProfile`. `Debug` shows the secret as `***`.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePrincipalProfile {
    /// The application (client) id.
    #[serde(default)]
    pub client_id: String,
    /// The client secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Secret>,
    /// The service principal's object id.
    #[serde(default, rename = "objectId", skip_serializing_if = "String::is_empty")]
    pub object_id: String,
    /// `keyvaultSecretRef`: kept, not used.
    #[serde(flatten)]
    pub other: Extra,
}

impl fmt::Debug for WindowsProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WindowsProfile")
            .field("admin_username", &self.admin_username)
            .field("admin_password", &Redacted::option(&self.admin_password))
            .field("other", &self.other)
            .finish()
    }
}

impl fmt::Debug for ServicePrincipalProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServicePrincipalProfile")
            .field("client_id", &self.client_id)
            .field("secret", &Redacted::option(&self.secret))
            .field("object_id", &self.object_id)
            .field("other", &self.other)
            .finish()
    }
}

impl ServicePrincipalProfile {
    /// The secret, unless absent or empty.
    pub fn secret(&self) -> Option<&Secret> {
        self.secret.as_ref().filter(|s| !s.secret().is_empty())
    }
}

/// The name of the system node pool made from `masterProfile`.
pub const SYSTEM_POOL: &str = "system";

impl ApiModel {
    /// Parses an apimodel; `source_name` names it in errors. Syntax errors, unknown keys and
    /// values of the wrong type are all reported at once, each with its path.
    pub fn from_json(text: &str, source_name: &str) -> Result<Self, Error> {
        let invalid = |problems| Error::InvalidApiModel {
            source_name: source_name.to_owned(),
            problems,
        };
        let raw: Value = serde_json::from_str(text).map_err(|e| {
            invalid(vec![Problem::new(
                "",
                format!("not JSON (line {}, column {}): {e}", e.line(), e.column()),
            )])
        })?;
        let mut problems = Vec::new();
        let canonical = canonicalize(raw, &schema::ROOT, "", &mut problems);
        if !problems.is_empty() {
            return Err(invalid(problems));
        }
        serde_json::from_value(canonical)
            .map_err(|e| invalid(vec![Problem::new("", e.to_string())]))
    }

    /// Reads and parses the apimodel at `path`.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| io_error(path, e))?;
        Self::from_json(&text, &path.display().to_string())
    }

    /// The apimodel as pretty JSON (the filled `apimodel.json`; it holds secrets).
    pub fn to_json(&self) -> Result<String, Error> {
        serde_json::to_string_pretty(self).map_err(|e| Error::InvalidOption(e.to_string()))
    }

    /// Validates as acs-engine did, reporting every problem with its path
    /// ([`Error::InvalidApiModel`]); on success, the warnings for fields AKS cannot honour.
    /// Fields [`generate`](crate::generate) fills in may be empty.
    pub fn validate(&self) -> Result<Vec<Problem>, Error> {
        self.validate_as("<apimodel>", false)
    }

    /// [`ApiModel::validate`] naming `source_name` in errors; with `filled`, the fields generate
    /// fills in must be set too.
    pub fn validate_as(&self, source_name: &str, filled: bool) -> Result<Vec<Problem>, Error> {
        let mut v = Validator {
            problems: Vec::new(),
            warnings: Vec::new(),
        };
        v.model(self, filled);
        if v.problems.is_empty() {
            Ok(v.warnings)
        } else {
            Err(Error::InvalidApiModel {
                source_name: source_name.to_owned(),
                problems: v.problems,
            })
        }
    }

    /// The DNS prefix in `masterProfile` (empty when unset).
    pub fn dns_prefix(&self) -> &str {
        self.properties
            .master_profile
            .as_ref()
            .map(|m| m.dns_prefix.as_str())
            .unwrap_or_default()
    }

    /// Whether the `nvidia-device-plugin` addon is explicitly enabled.
    pub fn nvidia_device_plugin_enabled(&self) -> bool {
        self.kubernetes_config().is_some_and(|k| {
            k.addons
                .iter()
                .any(|a| a.name == "nvidia-device-plugin" && a.enabled == Some(true))
        })
    }

    /// `orchestratorProfile.kubernetesConfig`, if any.
    pub fn kubernetes_config(&self) -> Option<&KubernetesConfig> {
        self.properties
            .orchestrator_profile
            .as_ref()
            .and_then(|o| o.kubernetes_config.as_ref())
    }

    /// The Kubernetes version to ask AKS for (empty: AKS's default), from
    /// `orchestratorVersion` or `orchestratorRelease`; versions older than
    /// [`OLDEST_AKS_MINOR`] give way to AKS's default.
    pub fn kubernetes_version(&self) -> String {
        let Some(o) = &self.properties.orchestrator_profile else {
            return String::new();
        };
        let wanted = if o.orchestrator_version.is_empty() {
            &o.orchestrator_release
        } else {
            &o.orchestrator_version
        };
        match parse_version(wanted) {
            Some((1, minor, _)) if minor >= OLDEST_AKS_MINOR => wanted.clone(),
            _ => String::new(),
        }
    }
}

/// The oldest Kubernetes minor version (1.x) passed on to AKS; older ones get AKS's default.
pub const OLDEST_AKS_MINOR: u64 = 30;

/// Checks a DNS prefix as acs-engine did: `^[A-Za-z][A-Za-z0-9-]{1,43}[A-Za-z0-9]$`.
pub fn check_dns_prefix(prefix: &str) -> Result<(), String> {
    let bytes = prefix.as_bytes();
    let ok = (3..=45).contains(&bytes.len())
        && bytes[0].is_ascii_alphabetic()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && bytes[bytes.len() - 1].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(format!(
            "DNSPrefix '{prefix}' is invalid. The DNSPrefix must contain between 3 and 45 characters and can contain only letters, numbers, and hyphens. It must start with a letter and must end with a letter or a number. (length was {})",
            prefix.len()
        ))
    }
}

/// Checks an agent pool name as acs-engine did: `^[a-z][a-z0-9]{0,11}$`.
pub fn check_pool_name(name: &str) -> Result<(), String> {
    let bytes = name.as_bytes();
    let ok = (1..=12).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "pool name '{name}' is invalid. A pool name must start with a lowercase letter, have max length of 12, and only have characters a-z0-9"
        ))
    }
}

fn parse_version(v: &str) -> Option<(u64, u64, Option<u64>)> {
    let mut parts = v.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let patch = match parts.next() {
        Some(p) => Some(p.parse().ok()?),
        None => None,
    };
    parts.next().is_none().then_some((major, minor, patch))
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// The expected JSON shape of each key.
#[derive(Clone, Copy)]
pub(crate) enum Shape {
    Str,
    Int,
    Bool,
    Num,
    Any,
    Obj(&'static [(&'static str, Shape)]),
    Arr(&'static Shape),
    /// An object with free keys, each value of this shape.
    Map(&'static Shape),
}

/// Renames keys to their canonical spelling, drops `null`s and reports unknown keys and values
/// of the wrong type.
fn canonicalize(value: Value, shape: &Shape, path: &str, problems: &mut Vec<Problem>) -> Value {
    let kind = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    let mut wrong = |expected: &str, v: &Value| {
        problems.push(Problem::new(
            path,
            format!("expected {expected}, found {}", kind(v)),
        ));
        Value::Null
    };
    match (shape, value) {
        (Shape::Any, v) => v,
        (Shape::Str, v @ Value::String(_)) => v,
        (Shape::Bool, v @ Value::Bool(_)) => v,
        (Shape::Num, v @ Value::Number(_)) => v,
        (Shape::Int, Value::Number(n)) if n.is_i64() || n.is_u64() => Value::Number(n),
        (Shape::Int, v) => wrong("an integer", &v),
        (Shape::Str, v) => wrong("a string", &v),
        (Shape::Bool, v) => wrong("a boolean", &v),
        (Shape::Num, v) => wrong("a number", &v),
        (Shape::Arr(item), Value::Array(items)) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| canonicalize(v, item, &format!("{path}[{i}]"), problems))
                .collect(),
        ),
        (Shape::Arr(_), v) => wrong("an array", &v),
        (Shape::Map(item), Value::Object(map)) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| {
                    let child = canonicalize(v, item, &join(path, &k), problems);
                    (k, child)
                })
                .collect(),
        ),
        (Shape::Obj(fields), Value::Object(map)) => {
            let mut out = Map::new();
            for (key, v) in map {
                // Go: an exact match first, then a case-insensitive one.
                let field = fields.iter().find(|(name, _)| *name == key).or_else(|| {
                    fields
                        .iter()
                        .find(|(name, _)| name.eq_ignore_ascii_case(&key))
                });
                match field {
                    None => problems.push(Problem::new(
                        join(path, &key),
                        "unknown key (not part of the vlabs apimodel)",
                    )),
                    Some(_) if v.is_null() => {}
                    Some((name, child)) => {
                        let child = canonicalize(v, child, &join(path, name), problems);
                        out.insert((*name).to_owned(), child);
                    }
                }
            }
            Value::Object(out)
        }
        (Shape::Map(_) | Shape::Obj(_), v) => wrong("an object", &v),
    }
}

/// The vlabs schema (acs-engine's `pkg/api/vlabs/types.go`), key spellings as Go's JSON tags.
pub(crate) mod schema {
    use super::Shape::{self, *};

    const STR_MAP: Shape = Map(&Str);
    const KEYVAULT_REF: Shape = Obj(&[("vaultID", Str), ("secretName", Str), ("version", Str)]);
    const EXTENSION: Shape = Obj(&[("name", Str), ("singleOrAll", Str), ("template", Str)]);
    const KEYVAULT_SECRETS: Shape = Obj(&[
        ("sourceVault", Obj(&[("id", Str)])),
        (
            "vaultCertificates",
            Arr(&Obj(&[("certificateUrl", Str), ("certificateStore", Str)])),
        ),
    ]);
    const IMAGE_REF: Shape = Obj(&[("name", Str), ("resourceGroup", Str)]);
    const CONTAINER: Shape = Obj(&[
        ("name", Str),
        ("image", Str),
        ("cpuRequests", Str),
        ("memoryRequests", Str),
        ("cpuLimits", Str),
        ("memoryLimits", Str),
    ]);
    const ADDON: Shape = Obj(&[
        ("name", Str),
        ("enabled", Bool),
        ("containers", Arr(&CONTAINER)),
        ("config", STR_MAP),
    ]);
    pub(crate) const KUBERNETES_CONFIG: Shape = Obj(&[
        ("kubernetesImageBase", Str),
        ("clusterSubnet", Str),
        ("networkPolicy", Str),
        ("networkPlugin", Str),
        ("containerRuntime", Str),
        ("maxPods", Int),
        ("dockerBridgeSubnet", Str),
        ("dnsServiceIP", Str),
        ("serviceCidr", Str),
        ("useManagedIdentity", Bool),
        ("userAssignedID", Str),
        ("userAssignedClientID", Str),
        ("customHyperkubeImage", Str),
        ("customWindowsPackageURL", Str),
        ("dockerEngineVersion", Str),
        ("customCcmImage", Str),
        ("useCloudControllerManager", Bool),
        ("customKubeAPIServerImage", Str),
        ("customKubeControllerManagerImage", Str),
        ("customKubeProxyImage", Str),
        ("customKubeSchedulerImage", Str),
        ("useInstanceMetadata", Bool),
        ("enableRbac", Bool),
        ("enableSecureKubelet", Bool),
        ("enableAggregatedAPIs", Bool),
        ("privateCluster", Any),
        ("gchighthreshold", Int),
        ("gclowthreshold", Int),
        ("etcdVersion", Str),
        ("etcdDiskSizeGB", Str),
        ("etcdEncryptionKey", Str),
        ("enableDataEncryptionAtRest", Bool),
        ("enableEncryptionWithExternalKms", Bool),
        ("enablePodSecurityPolicy", Bool),
        ("addons", Arr(&ADDON)),
        ("kubeletConfig", STR_MAP),
        ("controllerManagerConfig", STR_MAP),
        ("cloudControllerManagerConfig", STR_MAP),
        ("apiServerConfig", STR_MAP),
        ("schedulerConfig", STR_MAP),
        ("podSecurityPolicyConfig", STR_MAP),
        ("cloudProviderBackoff", Bool),
        ("cloudProviderBackoffRetries", Int),
        ("cloudProviderBackoffJitter", Num),
        ("cloudProviderBackoffDuration", Int),
        ("cloudProviderBackoffExponent", Num),
        ("cloudProviderRateLimit", Bool),
        ("cloudProviderRateLimitQPS", Num),
        ("cloudProviderRateLimitBucket", Int),
        ("nonMasqueradeCidr", Str),
        ("loadBalancerSku", Str),
        ("excludeMasterFromStandardLB", Bool),
        ("azureCNIVersion", Str),
        ("azureCNIURLLinux", Str),
        ("azureCNIURLWindows", Str),
        ("keyVaultSku", Str),
        ("maximumLoadBalancerRuleCount", Int),
        ("ctrlMgrNodeMonitorGracePeriod", Str),
        ("ctrlMgrPodEvictionTimeout", Str),
        ("ctrlMgrRouteReconciliationPeriod", Str),
    ]);
    const ORCHESTRATOR: Shape = Obj(&[
        ("orchestratorType", Str),
        ("orchestratorRelease", Str),
        ("orchestratorVersion", Str),
        ("kubernetesConfig", KUBERNETES_CONFIG),
        ("dcosConfig", Any),
        ("openShiftConfig", Any),
    ]);
    const MASTER: Shape = Obj(&[
        ("count", Int),
        ("dnsPrefix", Str),
        ("subjectAltNames", Arr(&Str)),
        ("vmSize", Str),
        ("osDiskSizeGB", Int),
        ("vnetSubnetID", Str),
        ("vnetCidr", Str),
        ("agentVnetSubnetID", Str),
        ("firstConsecutiveStaticIP", Str),
        ("ipAddressCount", Int),
        ("storageProfile", Str),
        ("HTTPSourceAddressPrefix", Str),
        ("oauthEnabled", Bool),
        ("preProvisionExtension", EXTENSION),
        ("extensions", Arr(&EXTENSION)),
        ("distro", Str),
        ("kubernetesConfig", KUBERNETES_CONFIG),
        ("imageReference", IMAGE_REF),
        ("customFiles", Any),
        ("availabilityProfile", Str),
        ("availabilityZones", Arr(&Str)),
        ("fqdn", Str),
    ]);
    const AGENT_POOL: Shape = Obj(&[
        ("name", Str),
        ("count", Int),
        ("vmSize", Str),
        ("osDiskSizeGB", Int),
        ("dnsPrefix", Str),
        ("osType", Str),
        ("ports", Arr(&Int)),
        ("availabilityProfile", Str),
        ("scaleSetPriority", Str),
        ("scaleSetEvictionPolicy", Str),
        ("storageProfile", Str),
        ("diskSizesGB", Arr(&Int)),
        ("vnetSubnetID", Str),
        ("ipAddressCount", Int),
        ("distro", Str),
        ("kubernetesConfig", KUBERNETES_CONFIG),
        ("imageReference", IMAGE_REF),
        ("acceleratedNetworkingEnabled", Bool),
        ("availabilityZones", Arr(&Str)),
        ("singlePlacementGroup", Bool),
        ("fqdn", Str),
        ("customNodeLabels", STR_MAP),
        ("preProvisionExtension", EXTENSION),
        ("extensions", Arr(&EXTENSION)),
        ("role", Str),
    ]);
    const LINUX: Shape = Obj(&[
        ("adminUsername", Str),
        (
            "ssh",
            Obj(&[("publicKeys", Arr(&Obj(&[("keyData", Str)])))]),
        ),
        ("secrets", Arr(&KEYVAULT_SECRETS)),
        ("distro", Str),
        ("scriptroot", Str),
        ("customSearchDomain", Any),
        ("customNodesDNS", Any),
    ]);
    const WINDOWS: Shape = Obj(&[
        ("adminUsername", Str),
        ("adminPassword", Str),
        ("imageVersion", Str),
        ("windowsImageSourceURL", Str),
        ("windowsPublisher", Str),
        ("windowsOffer", Str),
        ("windowsSku", Str),
        ("secrets", Arr(&KEYVAULT_SECRETS)),
    ]);
    const SERVICE_PRINCIPAL: Shape = Obj(&[
        ("clientId", Str),
        ("secret", Str),
        ("objectId", Str),
        ("keyvaultSecretRef", KEYVAULT_REF),
    ]);
    const EXTENSION_PROFILE: Shape = Obj(&[
        ("name", Str),
        ("version", Str),
        ("extensionParameters", Str),
        ("parametersKeyvaultSecretRef", KEYVAULT_REF),
        ("rootURL", Str),
        ("script", Str),
        ("urlQuery", Str),
    ]);
    const PROPERTIES: Shape = Obj(&[
        ("provisioningState", Str),
        ("orchestratorProfile", ORCHESTRATOR),
        ("masterProfile", MASTER),
        ("agentPoolProfiles", Arr(&AGENT_POOL)),
        ("linuxProfile", LINUX),
        ("extensionProfiles", Arr(&EXTENSION_PROFILE)),
        ("windowsProfile", WINDOWS),
        ("servicePrincipalProfile", SERVICE_PRINCIPAL),
        ("certificateProfile", STR_MAP_OR_LISTS),
        (
            "aadProfile",
            Obj(&[
                ("clientAppID", Str),
                ("serverAppID", Str),
                ("tenantID", Str),
                ("adminGroupID", Str),
            ]),
        ),
        ("featureFlags", Any),
        ("azProfile", Any),
    ]);
    /// `certificateProfile` holds strings and, for etcd peers, lists of strings.
    const STR_MAP_OR_LISTS: Shape = Map(&Any);
    pub(crate) const ROOT: Shape = Obj(&[
        ("apiVersion", Str),
        ("id", Str),
        ("location", Str),
        ("name", Str),
        (
            "plan",
            Obj(&[
                ("name", Str),
                ("product", Str),
                ("promotionCode", Str),
                ("publisher", Str),
            ]),
        ),
        ("tags", STR_MAP),
        ("type", Str),
        ("properties", PROPERTIES),
    ]);
}

struct Validator {
    problems: Vec<Problem>,
    warnings: Vec<Problem>,
}

impl Validator {
    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::new(path, message));
    }

    fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(Problem::new(path, message));
    }

    fn ignored(&mut self, path: &str, extra: &Extra, why: &str) {
        for key in extra.0.keys() {
            self.warn(join(path, key), format!("ignored: {why}"));
        }
    }

    fn model(&mut self, m: &ApiModel, filled: bool) {
        if !m.api_version.eq_ignore_ascii_case("vlabs") {
            self.problem(
                "apiVersion",
                format!(
                    "apiVersion '{}' is not supported: use 'vlabs'",
                    m.api_version
                ),
            );
        }
        let p = &m.properties;
        match &p.orchestrator_profile {
            None => self.problem("properties.orchestratorProfile", "required"),
            Some(o) => self.orchestrator(o),
        }
        match &p.master_profile {
            None => self.problem("properties.masterProfile", "required"),
            Some(master) => self.master(master, filled),
        }
        self.pools(p);
        match &p.linux_profile {
            None => self.problem("properties.linuxProfile", "required"),
            Some(l) => self.linux(l, filled),
        }
        self.service_principal(p);
        for (key, why) in [
            (
                "certificateProfile",
                "AKS issues the cluster's certificates itself",
            ),
            (
                "aadProfile",
                "legacy AAD integration; enable AKS-managed Entra ID on the cluster instead",
            ),
            ("extensionProfiles", "AKS nodes take no VM extensions"),
            (
                "featureFlags",
                "acs-engine feature flags do not apply to AKS",
            ),
            ("azProfile", "OpenShift only"),
        ] {
            if p.other.0.contains_key(key) {
                self.warn(format!("properties.{key}"), format!("ignored: {why}"));
            }
        }
    }

    fn orchestrator(&mut self, o: &OrchestratorProfile) {
        let path = "properties.orchestratorProfile";
        if !o.orchestrator_type.eq_ignore_ascii_case("Kubernetes") {
            self.problem(
                format!("{path}.orchestratorType"),
                format!(
                    "OrchestratorProfile has unknown orchestrator: '{}'; only Kubernetes is supported",
                    o.orchestrator_type
                ),
            );
        }
        for (key, value) in [
            ("orchestratorRelease", &o.orchestrator_release),
            ("orchestratorVersion", &o.orchestrator_version),
        ] {
            if value.is_empty() {
                continue;
            }
            match parse_version(value) {
                None => self.problem(
                    format!("{path}.{key}"),
                    format!("'{value}' is not a Kubernetes version (x.y or x.y.z)"),
                ),
                Some((1, minor, _)) if minor >= OLDEST_AKS_MINOR => {}
                Some(_) => self.warn(
                    format!("{path}.{key}"),
                    format!("Kubernetes {value} is no longer offered by AKS: the cluster gets AKS's default version"),
                ),
            }
        }
        if let (Some((a, b, _)), Some((c, d, _))) = (
            parse_version(&o.orchestrator_release),
            parse_version(&o.orchestrator_version),
        ) && (a, b) != (c, d)
        {
            self.problem(
                format!("{path}.orchestratorVersion"),
                format!(
                    "orchestratorVersion {} is not a {} release (orchestratorRelease)",
                    o.orchestrator_version, o.orchestrator_release
                ),
            );
        }
        self.ignored(path, &o.other, "only Kubernetes is supported");
        if let Some(k) = &o.kubernetes_config {
            self.kubernetes_config(&format!("{path}.kubernetesConfig"), k);
        }
    }

    fn kubernetes_config(&mut self, path: &str, k: &KubernetesConfig) {
        match k.network_plugin.as_str() {
            "" | "azure" | "kubenet" => {}
            "flannel" | "cilium" => self.warn(
                format!("{path}.networkPlugin"),
                format!(
                    "AKS has no '{}' network plugin: the cluster uses kubenet",
                    k.network_plugin
                ),
            ),
            other => self.problem(
                format!("{path}.networkPlugin"),
                format!("unknown networkPlugin '{other}' specified"),
            ),
        }
        match k.network_policy.as_str() {
            "" | "calico" | "azure" | "cilium" | "none" => {}
            other => self.problem(
                format!("{path}.networkPolicy"),
                format!("unknown networkPolicy '{other}' specified"),
            ),
        }
        let cidr = |s: &str| -> Option<(IpAddr, u8)> {
            let (ip, bits) = s.split_once('/')?;
            let ip: IpAddr = ip.parse().ok()?;
            let bits: u8 = bits.parse().ok()?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            (bits <= max).then_some((ip, bits))
        };
        if !k.cluster_subnet.is_empty() && cidr(&k.cluster_subnet).is_none() {
            self.problem(
                format!("{path}.clusterSubnet"),
                format!("'{}' is an invalid subnet", k.cluster_subnet),
            );
        }
        match (k.dns_service_ip.is_empty(), k.service_cidr.is_empty()) {
            (true, true) => {}
            (false, true) => self.problem(
                format!("{path}.serviceCidr"),
                "serviceCidr must be specified when dnsServiceIP is",
            ),
            (true, false) => self.problem(
                format!("{path}.dnsServiceIP"),
                "dnsServiceIP must be specified when serviceCidr is",
            ),
            (false, false) => match (k.dns_service_ip.parse::<IpAddr>(), cidr(&k.service_cidr)) {
                (Err(_), _) => self.problem(
                    format!("{path}.dnsServiceIP"),
                    format!("'{}' is an invalid IP address", k.dns_service_ip),
                ),
                (_, None) => self.problem(
                    format!("{path}.serviceCidr"),
                    format!("'{}' is an invalid CIDR subnet", k.service_cidr),
                ),
                (Ok(ip), Some((net, bits))) => {
                    if !in_cidr(ip, net, bits) {
                        self.problem(
                            format!("{path}.dnsServiceIP"),
                            format!(
                                "'{}' is not within the serviceCidr '{}'",
                                k.dns_service_ip, k.service_cidr
                            ),
                        );
                    }
                }
            },
        }
        if let Some(max) = k.max_pods
            && !(10..=250).contains(&max)
        {
            self.problem(
                format!("{path}.maxPods"),
                format!("maxPods {max} is out of range: AKS allows 10 to 250"),
            );
        }
        for (i, addon) in k.addons.iter().enumerate() {
            let at = format!("{path}.addons[{i}]");
            if addon.name == "nvidia-device-plugin" {
                if addon.enabled == Some(true) {
                    self.warn(
                        at,
                        "AKS installs the NVIDIA driver and device plugin on GPU pools itself (gpuProfile.driver Install); with the driver set to None the device plugin manifest is written to addons/",
                    );
                }
            } else if addon.enabled != Some(false) {
                self.warn(
                    at,
                    format!(
                        "ignored: the '{}' addon is not deployed on AKS (enable the matching AKS addon instead)",
                        addon.name
                    ),
                );
            }
        }
        self.ignored(path, &k.other, "AKS manages this setting");
    }

    fn master(&mut self, m: &MasterProfile, filled: bool) {
        let path = "properties.masterProfile";
        if ![1, 3, 5].contains(&m.count) {
            self.problem(
                format!("{path}.count"),
                format!(
                    "count {} is not allowed: the master count must be 1, 3 or 5",
                    m.count
                ),
            );
        } else {
            self.warn(
                format!("{path}.count"),
                format!(
                    "AKS runs the control plane itself: the {} master(s) become the System node pool '{SYSTEM_POOL}' of {} × {}",
                    m.count, m.count, m.vm_size
                ),
            );
        }
        if (!m.dns_prefix.is_empty() || filled)
            && let Err(e) = check_dns_prefix(&m.dns_prefix)
        {
            self.problem(format!("{path}.dnsPrefix"), e);
        }
        if m.vm_size.is_empty() {
            self.problem(format!("{path}.vmSize"), "required");
        }
        self.disk(&format!("{path}.osDiskSizeGB"), m.os_disk_size_gb);
        self.ignored(path, &m.other, "AKS manages the control plane");
    }

    fn disk(&mut self, path: &str, size: Option<i64>) {
        if let Some(size) = size
            && !(0..=1023).contains(&size)
        {
            self.problem(
                path,
                format!("osDiskSizeGB {size} is out of range: it must be 0 to 1023"),
            );
        }
    }

    fn pools(&mut self, p: &Properties) {
        let mut seen: Vec<&str> = Vec::new();
        let first_availability = p
            .agent_pool_profiles
            .first()
            .map(|a| a.availability_profile.as_str())
            .unwrap_or_default();
        for (i, pool) in p.agent_pool_profiles.iter().enumerate() {
            let path = format!("properties.agentPoolProfiles[{i}]");
            if let Err(e) = check_pool_name(&pool.name) {
                self.problem(format!("{path}.name"), e);
            } else if pool.name == SYSTEM_POOL {
                self.problem(
                    format!("{path}.name"),
                    format!("pool name '{SYSTEM_POOL}' is taken by the system pool made from masterProfile"),
                );
            } else if seen.contains(&pool.name.as_str()) {
                self.problem(
                    format!("{path}.name"),
                    format!(
                        "profile name '{}' already exists, profile names must be unique across pools",
                        pool.name
                    ),
                );
            }
            seen.push(&pool.name);
            if !(1..=100).contains(&pool.count) {
                self.problem(
                    format!("{path}.count"),
                    format!(
                        "count {} is out of range: an agent pool has 1 to 100 nodes",
                        pool.count
                    ),
                );
            }
            if pool.vm_size.is_empty() {
                self.problem(format!("{path}.vmSize"), "required");
            }
            self.disk(&format!("{path}.osDiskSizeGB"), pool.os_disk_size_gb);
            let windows = match pool.os_type.as_str() {
                "" | "Linux" => false,
                "Windows" => true,
                other => {
                    self.problem(
                        format!("{path}.osType"),
                        format!("osType '{other}' is invalid: it must be either Linux or Windows"),
                    );
                    false
                }
            };
            if windows {
                if pool.name.len() > 6 {
                    self.problem(
                        format!("{path}.name"),
                        format!(
                            "Windows pool name '{}' is longer than AKS allows (6)",
                            pool.name
                        ),
                    );
                }
                let w = p.windows_profile.as_ref();
                if w.is_none_or(|w| w.admin_username.is_empty()) {
                    self.problem(
                        "properties.windowsProfile.adminUsername",
                        "WindowsProfile.AdminUsername is required, when agent pool specifies windows",
                    );
                }
                if w.and_then(|w| w.admin_password.as_ref())
                    .is_none_or(|s| s.secret().is_empty())
                {
                    self.problem(
                        "properties.windowsProfile.adminPassword",
                        "WindowsProfile.AdminPassword is required, when agent pool specifies windows",
                    );
                }
            }
            match pool.availability_profile.as_str() {
                "" | "VirtualMachineScaleSets" => {}
                "AvailabilitySet" => self.warn(
                    format!("{path}.availabilityProfile"),
                    "AKS node pools are virtual machine scale sets: the pool becomes a VirtualMachineScaleSets pool",
                ),
                other => self.problem(
                    format!("{path}.availabilityProfile"),
                    format!(
                        "unknown availability profile type '{other}' for agent pool '{}'. Specify either AvailabilitySet, or VirtualMachineScaleSets",
                        pool.name
                    ),
                ),
            }
            if pool.availability_profile != first_availability {
                self.problem(
                    format!("{path}.availabilityProfile"),
                    "mixed mode availability profiles are not allowed. Please set either VirtualMachineScaleSets or AvailabilitySet in availabilityProfile for all agent pools",
                );
            }
            match pool.storage_profile.as_str() {
                "" | "ManagedDisks" => {}
                "StorageAccount" => self.warn(
                    format!("{path}.storageProfile"),
                    "AKS nodes use managed disks: StorageAccount becomes ManagedDisks",
                ),
                other => self.problem(
                    format!("{path}.storageProfile"),
                    format!(
                        "storageProfile '{other}' is invalid: use StorageAccount or ManagedDisks"
                    ),
                ),
            }
            if !pool.dns_prefix.is_empty() {
                self.problem(
                    format!("{path}.dnsPrefix"),
                    "AgentPoolProfile.DNSPrefix must be empty for Kubernetes",
                );
            }
            if !pool.ports.is_empty() {
                self.problem(
                    format!("{path}.ports"),
                    "AgentPoolProfile.Ports must be empty for Kubernetes",
                );
            }
            for (key, value) in &pool.custom_node_labels {
                if !label_key_ok(key) {
                    self.problem(
                        format!("{path}.customNodeLabels.{key}"),
                        format!("Label key '{key}' is invalid"),
                    );
                }
                if !value.is_empty() && !label_value_ok(value) {
                    self.problem(
                        format!("{path}.customNodeLabels.{key}"),
                        format!("Label value '{value}' is invalid"),
                    );
                }
            }
            if pool.other.0.contains_key("kubernetesConfig") {
                self.warn(
                    format!("{path}.kubernetesConfig"),
                    "ignored: AKS applies one configuration to every pool",
                );
            }
            let rest = Extra(
                pool.other
                    .0
                    .iter()
                    .filter(|(k, _)| *k != "kubernetesConfig")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            );
            self.ignored(&path, &rest, "AKS node pools have no such setting");
        }
    }

    fn linux(&mut self, l: &LinuxProfile, filled: bool) {
        let path = "properties.linuxProfile";
        let user = &l.admin_username;
        if user.is_empty() {
            if filled {
                self.problem(format!("{path}.adminUsername"), "required");
            }
        } else if !(user.as_bytes()[0].is_ascii_alphabetic()
            && user
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && user.len() <= 32)
        {
            self.problem(
                format!("{path}.adminUsername"),
                format!("'{user}' is not a valid Linux user name (a letter, then letters, digits, '-' or '_')"),
            );
        }
        let keys = &l.ssh.public_keys;
        if keys.len() != 1 {
            self.problem(
                format!("{path}.ssh.publicKeys"),
                format!(
                    "exactly one SSH public key is required, found {}",
                    keys.len()
                ),
            );
        }
        for (i, key) in keys.iter().enumerate() {
            let at = format!("{path}.ssh.publicKeys[{i}].keyData");
            if key.key_data.trim().is_empty() {
                if filled {
                    self.problem(
                        at,
                        "KeyData in LinuxProfile.SSH.PublicKeys cannot be empty string",
                    );
                }
            } else if let Err(e) = ssh_key::PublicKey::from_openssh(key.key_data.trim()) {
                self.problem(at, format!("not an OpenSSH public key: {e}"));
            }
        }
        self.ignored(
            path,
            &l.other,
            "AKS nodes take no Key Vault secrets or custom scripts",
        );
    }

    fn service_principal(&mut self, p: &Properties) {
        let path = "properties.servicePrincipalProfile";
        let Some(sp) = &p.service_principal_profile else {
            return;
        };
        let has_secret = sp.secret().is_some();
        if !sp.client_id.is_empty() && !has_secret && !sp.other.0.contains_key("keyvaultSecretRef")
        {
            self.problem(
                format!("{path}.secret"),
                "the service principal client secret must be specified with its clientId",
            );
        }
        if sp.client_id.is_empty() && has_secret {
            self.problem(
                format!("{path}.clientId"),
                "the service principal client ID must be specified with its secret",
            );
        }
        if sp.other.0.contains_key("keyvaultSecretRef") {
            self.warn(
                format!("{path}.keyvaultSecretRef"),
                "ignored: AKS needs the secret itself; without one the cluster uses a managed identity",
            );
        }
    }
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

fn label_value_ok(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() <= 63
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

fn label_key_ok(k: &str) -> bool {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    let prefix_ok = prefix.is_none_or(|p| {
        p.len() <= 253
            && p.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|c| c.is_ascii_alphanumeric() || c == b'-')
            })
    });
    prefix_ok && label_value_ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STUDIO: &str = r#"{
      "apiVersion": "vlabs",
      "properties": {
        "orchestratorProfile": {"orchestratorType": "Kubernetes"},
        "masterProfile": {"count": 1, "dnsPrefix": "", "vmSize": "Standard_D2_v2"},
        "agentPoolProfiles": [{"name": "agentpool1", "count": 1, "vmSize": "Standard_NC6",
                               "OSDiskSizeGB": 200, "availabilityProfile": "AvailabilitySet"}],
        "linuxProfile": {"adminUsername": "azureuser", "ssh": {"publicKeys": [{"keyData": ""}]}},
        "servicePrincipalProfile": {"clientId": "", "secret": ""}
      }
    }"#;

    fn problems(text: &str) -> Vec<Problem> {
        match ApiModel::from_json(text, "t").and_then(|m| m.validate().map(|_| m)) {
            Err(Error::InvalidApiModel { problems, .. }) => problems,
            other => panic!("expected problems, got {other:?}"),
        }
    }

    #[test]
    fn keys_match_case_insensitively_and_canonicalise() {
        let m = ApiModel::from_json(STUDIO, "studio").unwrap();
        assert_eq!(
            m.properties.agent_pool_profiles[0].os_disk_size_gb,
            Some(200)
        );
        let warnings = m.validate().unwrap();
        let paths: Vec<_> = warnings.iter().map(|w| w.path.as_str()).collect();
        assert!(
            paths.contains(&"properties.masterProfile.count"),
            "{paths:?}"
        );
        assert!(
            paths.contains(&"properties.agentPoolProfiles[0].availabilityProfile"),
            "{paths:?}"
        );
        // Re-serialised with the canonical spelling.
        let json = m.to_json().unwrap();
        assert!(json.contains("\"osDiskSizeGB\": 200"), "{json}");
        let exact = STUDIO.replace("OSDiskSizeGB", "osDiskSizeGB");
        assert_eq!(ApiModel::from_json(&exact, "x").unwrap(), m);
        let shouty = STUDIO
            .replace("\"count\"", "\"COUNT\"")
            .replace("vmSize", "VMSIZE");
        assert_eq!(ApiModel::from_json(&shouty, "x").unwrap(), m);
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_all_reported_with_paths() {
        let text = STUDIO
            .replace("\"count\": 1,", "\"count\": \"one\", \"colour\": 1,")
            .replace(
                "\"orchestratorType\"",
                "\"shape\": true, \"orchestratorType\"",
            );
        let got = problems(&text);
        let paths: Vec<_> = got.iter().map(|p| p.path.as_str()).collect();
        // In the order they appear in the file (serde_json keeps the document's key order).
        assert_eq!(
            paths,
            [
                "properties.orchestratorProfile.shape",
                "properties.masterProfile.count",
                "properties.masterProfile.colour",
                "properties.agentPoolProfiles[0].count",
                "properties.agentPoolProfiles[0].colour",
            ]
        );
        assert!(
            got[1]
                .message
                .contains("expected an integer, found a string")
        );
        assert!(got[0].message.contains("unknown key"));
        let got = problems("{\"apiVersion\": ");
        assert!(got[0].message.contains("line 1"), "{got:?}");
    }

    #[test]
    fn validation_collects_every_problem() {
        let text = STUDIO
            .replace(
                "\"count\": 1, \"dnsPrefix\": \"\"",
                "\"count\": 2, \"dnsPrefix\": \"-bad\"",
            )
            .replace("agentpool1", "Agent1")
            .replace(
                "\"keyData\": \"\"",
                "\"keyData\": \"\"}, {\"keyData\": \"\"",
            );
        let got = problems(&text);
        let paths: Vec<_> = got.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "properties.masterProfile.count",
                "properties.masterProfile.dnsPrefix",
                "properties.agentPoolProfiles[0].name",
                "properties.linuxProfile.ssh.publicKeys",
            ]
        );
        assert!(got[1].message.contains("DNSPrefix '-bad' is invalid"));
        let text = STUDIO.replace(
            "\"orchestratorProfile\": {\"orchestratorType\": \"Kubernetes\"},",
            "",
        );
        assert_eq!(problems(&text)[0].path, "properties.orchestratorProfile");
    }

    #[test]
    fn more_rules() {
        let pool = |extra: &str| {
            STUDIO.replace(
                "\"availabilityProfile\": \"AvailabilitySet\"",
                &format!("\"availabilityProfile\": \"AvailabilitySet\"{extra}"),
            )
        };
        let got = problems(&pool(
            ", \"dnsPrefix\": \"x\", \"ports\": [80], \"osType\": \"Plan9\"",
        ));
        let paths: Vec<_> = got.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "properties.agentPoolProfiles[0].osType",
                "properties.agentPoolProfiles[0].dnsPrefix",
                "properties.agentPoolProfiles[0].ports",
            ]
        );
        let got = problems(&STUDIO.replace(
            "\"count\": 1, \"vmSize\": \"Standard_NC6\"",
            "\"count\": 101, \"vmSize\": \"Standard_NC6\"",
        ));
        assert_eq!(got[0].path, "properties.agentPoolProfiles[0].count");
        let got = problems(&STUDIO.replace("\"clientId\": \"\"", "\"clientId\": \"abc\""));
        assert_eq!(got[0].path, "properties.servicePrincipalProfile.secret");
        let got = problems(&STUDIO.replace(
            "{\"orchestratorType\": \"Kubernetes\"}",
            "{\"orchestratorType\": \"Kubernetes\", \"kubernetesConfig\": {\"serviceCidr\": \"10.0.0.0/16\", \"dnsServiceIP\": \"10.1.0.10\", \"maxPods\": 3}}",
        ));
        let paths: Vec<_> = got.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "properties.orchestratorProfile.kubernetesConfig.dnsServiceIP",
                "properties.orchestratorProfile.kubernetesConfig.maxPods",
            ]
        );
        // A filled model needs its fill-ins.
        let m = ApiModel::from_json(STUDIO, "s").unwrap();
        let Err(Error::InvalidApiModel { problems, .. }) = m.validate_as("s", true) else {
            panic!()
        };
        let paths: Vec<_> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "properties.masterProfile.dnsPrefix",
                "properties.linuxProfile.ssh.publicKeys[0].keyData",
            ]
        );
    }

    #[test]
    fn dns_prefix_and_pool_name_rules_match_acs_engine() {
        for ok in [
            "abc",
            "test-user-k8s",
            "a1-b2",
            &format!("a{}", "b".repeat(44)),
        ] {
            assert!(check_dns_prefix(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            "1abc",
            "abc-",
            "a_bc",
            &format!("a{}", "b".repeat(45)),
        ] {
            assert!(check_dns_prefix(bad).is_err(), "{bad}");
        }
        for ok in ["a", "agentpool1", "abcdefghijkl"] {
            assert!(check_pool_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1a", "Agent", "agent-pool", "abcdefghijklm"] {
            assert!(check_pool_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn versions_and_labels() {
        let with = |v: &str| {
            let mut m = ApiModel::from_json(STUDIO, "s").unwrap();
            m.properties
                .orchestrator_profile
                .as_mut()
                .unwrap()
                .orchestrator_release = v.into();
            m
        };
        assert_eq!(with("1.10").kubernetes_version(), "");
        assert_eq!(with("1.33").kubernetes_version(), "1.33");
        assert!(label_key_ok("kubernetes.io/role") && label_key_ok("accelerator"));
        assert!(!label_key_ok("bad key") && !label_value_ok("-x"));
        assert!(in_cidr(
            "10.0.0.10".parse().unwrap(),
            "10.0.0.0".parse().unwrap(),
            16
        ));
        assert!(!in_cidr(
            "10.1.0.10".parse().unwrap(),
            "10.0.0.0".parse().unwrap(),
            16
        ));
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let text = STUDIO
            .replace("\"clientId\": \"\", \"secret\": \"\"", "\"clientId\": \"id\", \"secret\": \"hunter2-secret\"")
            .replace("\"servicePrincipalProfile\"", "\"certificateProfile\": {\"caPrivateKey\": \"PRIVATE-KEY-PEM\"}, \"servicePrincipalProfile\"");
        let m = ApiModel::from_json(&text, "s").unwrap();
        let debug = format!("{m:?}");
        assert!(
            !debug.contains("hunter2") && !debug.contains("PRIVATE-KEY-PEM"),
            "{debug}"
        );
        assert!(m.to_json().unwrap().contains("hunter2-secret"));
    }

    #[test]
    fn debug_of_profiles_masks_the_password_and_the_secret() {
        let text = r#"{
          "apiVersion": "vlabs",
          "properties": {
            "orchestratorProfile": {"orchestratorType": "Kubernetes"},
            "masterProfile": {"count": 1, "dnsPrefix": "d", "vmSize": "Standard_D2_v2"},
            "agentPoolProfiles": [{"name": "agentpool1", "count": 1, "vmSize": "Standard_D2_v2"}],
            "windowsProfile": {"adminUsername": "winadmin", "adminPassword": "win-pass-value"},
            "servicePrincipalProfile": {"clientId": "app-id", "secret": "sp-secret-value",
                                        "keyvaultSecretRef": {"secretName": "kv-value"}}
          }
        }"#;
        let model = ApiModel::from_json(text, "t").unwrap();
        let secrets = ["win-pass-value", "sp-secret-value", "kv-value"];
        let windows = model.properties.windows_profile.clone().unwrap();
        let sp = model.properties.service_principal_profile.clone().unwrap();
        for value in [&model as &dyn fmt::Debug, &windows, &sp] {
            let leaks = studio_azure_auth::redact::debug_leaks(value, &secrets);
            assert!(leaks.is_empty(), "{leaks:?}");
        }
        let shown = format!("{sp:?}");
        assert!(
            shown.contains(r#"client_id: "app-id", secret: Some(***)"#)
                && shown.contains("keyvaultSecretRef"),
            "{shown}"
        );
        assert!(
            format!("{windows:?}")
                .contains(r#"admin_username: "winadmin", admin_password: Some(***)"#)
        );
        // Serialization still writes the secrets (apimodel.json is a 0600 file).
        let json = serde_json::to_string(&model).unwrap();
        assert!(secrets.iter().all(|s| json.contains(s)), "{json}");
    }
}
