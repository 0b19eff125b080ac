//! The ARM template: one `Microsoft.ContainerService/managedClusters` resource
//! ([`MANAGED_CLUSTERS_API_VERSION`]) with a System pool from `masterProfile` and the agent pools,
//! parameters for the secrets and the SSH key, and the API server's FQDN as an output.
//!
//! [`render`] turns a [`ClusterSpec`] (what [`generate`](crate::generate) makes of an apimodel)
//! into `azuredeploy.json` and `azuredeploy.parameters.json`:
//!
//! ```
//! use studio_cluster::template::{self, ClusterIdentity, ClusterSpec, GpuDriver, PoolMode, PoolSpec};
//!
//! let spec = ClusterSpec {
//!     name: "studio-k8s".into(),
//!     dns_prefix: "studio-k8s".into(),
//!     admin_username: "azureuser".into(),
//!     ssh_public_key: "ssh-rsa AAAA...".into(),
//!     identity: ClusterIdentity::ManagedIdentity,
//!     pools: vec![
//!         PoolSpec::new("system", 1, "Standard_D2_v2", PoolMode::System),
//!         PoolSpec { gpu: Some(GpuDriver::Install), ..PoolSpec::new("gpu", 2, "Standard_NC4as_T4_v3", PoolMode::User) },
//!     ],
//!     ..Default::default()
//! };
//! let rendered = template::render(&spec);
//! let cluster = &rendered.template["resources"][0];
//! assert_eq!(cluster["properties"]["agentPoolProfiles"][1]["gpuProfile"]["driver"], "Install");
//! assert_eq!(rendered.parameters["parameters"]["clusterName"]["value"], "studio-k8s");
//! ```

use std::collections::BTreeMap;
use std::fmt;

use azure_core::credentials::Secret;
use serde_json::{Map, Value, json};
use studio_azure_auth::redact::Redacted;

/// The Microsoft.ContainerService API version of the managed cluster resource.
pub const MANAGED_CLUSTERS_API_VERSION: &str = "2026-08-01";

/// The ARM template schema.
pub const TEMPLATE_SCHEMA: &str =
    "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#";

/// The ARM parameters file schema.
pub const PARAMETERS_SCHEMA: &str =
    "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#";

/// How the cluster authenticates to Azure. `Debug` shows the secret as `***`.
#[derive(Clone, Default, PartialEq)]
pub enum ClusterIdentity {
    /// A system-assigned managed identity.
    #[default]
    ManagedIdentity,
    /// A service principal.
    ServicePrincipal {
        /// The application (client) id.
        client_id: String,
        /// The client secret.
        secret: Secret,
    },
}

impl fmt::Debug for ClusterIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ManagedIdentity => f.write_str("ManagedIdentity"),
            Self::ServicePrincipal { client_id, .. } => f
                .debug_struct("ServicePrincipal")
                .field("client_id", client_id)
                .field("secret", &Redacted)
                .finish(),
        }
    }
}

/// A node pool's mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PoolMode {
    /// Runs the cluster's system pods.
    System,
    /// Runs workloads.
    #[default]
    User,
}

/// What AKS does about NVIDIA drivers on a GPU pool (`gpuProfile.driver`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GpuDriver {
    /// AKS installs the driver and, with `nvidia.managementMode: Managed`, the device plugin.
    #[default]
    Install,
    /// No driver from AKS: the NVIDIA device plugin manifest is written to `addons/` and the
    /// driver comes from the node image or the GPU operator.
    None,
}

/// One node pool.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PoolSpec {
    /// The pool name.
    pub name: String,
    /// Nodes.
    pub count: u32,
    /// VM size.
    pub vm_size: String,
    /// OS disk size (AKS's default when `None`).
    pub os_disk_size_gb: Option<u32>,
    /// `Linux` or `Windows`.
    pub os_type: String,
    /// System or User.
    pub mode: PoolMode,
    /// Node labels.
    pub labels: BTreeMap<String, String>,
    /// Node taints, `key=value:Effect`.
    pub taints: Vec<String>,
    /// For GPU pools: the driver setting.
    pub gpu: Option<GpuDriver>,
    /// Pods per node.
    pub max_pods: Option<u32>,
    /// A custom VNET subnet.
    pub vnet_subnet_id: Option<String>,
}

impl PoolSpec {
    /// A Linux pool with nothing else set.
    pub fn new(name: &str, count: u32, vm_size: &str, mode: PoolMode) -> Self {
        Self {
            name: name.to_owned(),
            count,
            vm_size: vm_size.to_owned(),
            os_type: "Linux".to_owned(),
            mode,
            ..Default::default()
        }
    }
}

/// Network settings AKS takes from the apimodel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetworkSpec {
    /// `azure` or `kubenet` (empty: AKS's default).
    pub plugin: String,
    /// `calico`, `azure`, `cilium` (empty: none).
    pub policy: String,
    /// Service CIDR.
    pub service_cidr: String,
    /// DNS service IP.
    pub dns_service_ip: String,
    /// Pod CIDR (kubenet).
    pub pod_cidr: String,
}

/// What the template describes.
#[derive(Clone, Default, PartialEq)]
pub struct ClusterSpec {
    /// The managed cluster's name.
    pub name: String,
    /// The DNS prefix.
    pub dns_prefix: String,
    /// The location; `None` uses the resource group's.
    pub location: Option<String>,
    /// The Kubernetes version (empty: AKS's default).
    pub kubernetes_version: String,
    /// The Linux admin user.
    pub admin_username: String,
    /// The OpenSSH public key.
    pub ssh_public_key: String,
    /// How the cluster authenticates to Azure.
    pub identity: ClusterIdentity,
    /// The pools, the System pool first.
    pub pools: Vec<PoolSpec>,
    /// Network settings.
    pub network: NetworkSpec,
    /// Kubernetes RBAC.
    pub enable_rbac: bool,
    /// Resource tags.
    pub tags: BTreeMap<String, String>,
    /// Windows admin user and password, for Windows pools.
    pub windows: Option<(String, Secret)>,
}

impl fmt::Debug for ClusterSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterSpec")
            .field("name", &self.name)
            .field("dns_prefix", &self.dns_prefix)
            .field("location", &self.location)
            .field("kubernetes_version", &self.kubernetes_version)
            .field("admin_username", &self.admin_username)
            .field("ssh_public_key", &self.ssh_public_key)
            .field("identity", &self.identity)
            .field("pools", &self.pools)
            .field("network", &self.network)
            .field("enable_rbac", &self.enable_rbac)
            .field("tags", &self.tags)
            .field(
                "windows",
                &self.windows.as_ref().map(|(user, _)| (user, Redacted)),
            )
            .finish()
    }
}

/// `azuredeploy.json` and `azuredeploy.parameters.json`. `Debug` shows the parameters (they
/// hold the secrets) as `***`.
#[derive(Clone)]
pub struct Rendered {
    /// The ARM template.
    pub template: Value,
    /// The parameters file (it holds the secrets).
    pub parameters: Value,
}

impl fmt::Debug for Rendered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rendered")
            .field("template", &self.template)
            .field("parameters", &Redacted)
            .finish()
    }
}

fn param(name: &str) -> Value {
    Value::String(format!("[parameters('{name}')]"))
}

fn pool_json(pool: &PoolSpec) -> Value {
    let mut p = Map::new();
    p.insert("name".into(), json!(pool.name));
    p.insert("count".into(), json!(pool.count));
    p.insert("vmSize".into(), json!(pool.vm_size));
    if let Some(size) = pool.os_disk_size_gb {
        p.insert("osDiskSizeGB".into(), json!(size));
    }
    p.insert("osType".into(), json!(pool.os_type));
    p.insert(
        "mode".into(),
        json!(match pool.mode {
            PoolMode::System => "System",
            PoolMode::User => "User",
        }),
    );
    p.insert("type".into(), json!("VirtualMachineScaleSets"));
    if let Some(max) = pool.max_pods {
        p.insert("maxPods".into(), json!(max));
    }
    if let Some(subnet) = &pool.vnet_subnet_id {
        p.insert("vnetSubnetID".into(), json!(subnet));
    }
    if !pool.labels.is_empty() {
        p.insert("nodeLabels".into(), json!(pool.labels));
    }
    if !pool.taints.is_empty() {
        p.insert("nodeTaints".into(), json!(pool.taints));
    }
    match pool.gpu {
        Some(GpuDriver::Install) => {
            p.insert(
                "gpuProfile".into(),
                json!({"driver": "Install", "nvidia": {"managementMode": "Managed"}}),
            );
        }
        Some(GpuDriver::None) => {
            p.insert("gpuProfile".into(), json!({"driver": "None"}));
        }
        None => {}
    }
    Value::Object(p)
}

/// Renders the template and its parameters file.
pub fn render(spec: &ClusterSpec) -> Rendered {
    let mut parameters = Map::new();
    let mut values = Map::new();
    let mut declare = |name: &str, kind: &str, description: &str, value: Option<Value>| {
        parameters.insert(
            name.to_owned(),
            json!({"type": kind, "metadata": {"description": description}}),
        );
        if let Some(value) = value {
            values.insert(name.to_owned(), json!({ "value": value }));
        }
    };
    declare(
        "clusterName",
        "string",
        "The name of the managed cluster.",
        Some(json!(spec.name)),
    );
    declare(
        "dnsPrefix",
        "string",
        "The DNS prefix of the API server's FQDN.",
        Some(json!(spec.dns_prefix)),
    );
    declare(
        "kubernetesVersion",
        "string",
        "The Kubernetes version; empty for AKS's default.",
        Some(json!(spec.kubernetes_version)),
    );
    declare(
        "linuxAdminUsername",
        "string",
        "The admin user of the Linux nodes.",
        Some(json!(spec.admin_username)),
    );
    declare(
        "sshRSAPublicKey",
        "string",
        "The OpenSSH public key for the admin user.",
        Some(json!(spec.ssh_public_key)),
    );
    if let ClusterIdentity::ServicePrincipal { client_id, secret } = &spec.identity {
        declare(
            "servicePrincipalClientId",
            "string",
            "The cluster's service principal (application id).",
            Some(json!(client_id)),
        );
        declare(
            "servicePrincipalClientSecret",
            "securestring",
            "The service principal's secret.",
            Some(json!(secret.secret())),
        );
    }
    if let Some((user, password)) = &spec.windows {
        declare(
            "windowsAdminUsername",
            "string",
            "The admin user of the Windows nodes.",
            Some(json!(user)),
        );
        declare(
            "windowsAdminPassword",
            "securestring",
            "The Windows admin password.",
            Some(json!(password.secret())),
        );
    }
    parameters.insert(
        "location".into(),
        json!({
            "type": "string",
            "defaultValue": "[resourceGroup().location]",
            "metadata": {"description": "The Azure location of the cluster."}
        }),
    );
    if let Some(location) = &spec.location {
        values.insert("location".into(), json!({ "value": location }));
    }

    let mut properties = Map::new();
    properties.insert("dnsPrefix".into(), param("dnsPrefix"));
    properties.insert("kubernetesVersion".into(), param("kubernetesVersion"));
    properties.insert("enableRBAC".into(), json!(spec.enable_rbac));
    properties.insert(
        "agentPoolProfiles".into(),
        Value::Array(spec.pools.iter().map(pool_json).collect()),
    );
    properties.insert(
        "linuxProfile".into(),
        json!({
            "adminUsername": param("linuxAdminUsername"),
            "ssh": {"publicKeys": [{"keyData": param("sshRSAPublicKey")}]}
        }),
    );
    if matches!(spec.identity, ClusterIdentity::ServicePrincipal { .. }) {
        properties.insert(
            "servicePrincipalProfile".into(),
            json!({
                "clientId": param("servicePrincipalClientId"),
                "secret": param("servicePrincipalClientSecret")
            }),
        );
    }
    if spec.windows.is_some() {
        properties.insert(
            "windowsProfile".into(),
            json!({
                "adminUsername": param("windowsAdminUsername"),
                "adminPassword": param("windowsAdminPassword")
            }),
        );
    }
    let mut network = Map::new();
    let n = &spec.network;
    for (key, value) in [
        ("networkPlugin", &n.plugin),
        ("networkPolicy", &n.policy),
        ("serviceCidr", &n.service_cidr),
        ("dnsServiceIP", &n.dns_service_ip),
        ("podCidr", &n.pod_cidr),
    ] {
        if !value.is_empty() {
            network.insert(key.into(), json!(value));
        }
    }
    network.insert("loadBalancerSku".into(), json!("standard"));
    network.insert("outboundType".into(), json!("loadBalancer"));
    properties.insert("networkProfile".into(), Value::Object(network));

    let mut cluster = Map::new();
    cluster.insert(
        "type".into(),
        json!("Microsoft.ContainerService/managedClusters"),
    );
    cluster.insert("apiVersion".into(), json!(MANAGED_CLUSTERS_API_VERSION));
    cluster.insert("name".into(), param("clusterName"));
    cluster.insert("location".into(), param("location"));
    if !spec.tags.is_empty() {
        cluster.insert("tags".into(), json!(spec.tags));
    }
    cluster.insert("sku".into(), json!({"name": "Base", "tier": "Free"}));
    if spec.identity == ClusterIdentity::ManagedIdentity {
        cluster.insert("identity".into(), json!({"type": "SystemAssigned"}));
    }
    cluster.insert("properties".into(), Value::Object(properties));

    let reference = "reference(resourceId('Microsoft.ContainerService/managedClusters', parameters('clusterName')))";
    let template = json!({
        "$schema": TEMPLATE_SCHEMA,
        "contentVersion": "1.0.0.0",
        "parameters": parameters,
        "resources": [Value::Object(cluster)],
        "outputs": {
            "controlPlaneFQDN": {"type": "string", "value": format!("[{reference}.fqdn]")},
            "clusterName": {"type": "string", "value": "[parameters('clusterName')]"}
        }
    });
    let parameters = json!({
        "$schema": PARAMETERS_SCHEMA,
        "contentVersion": "1.0.0.0",
        "parameters": values,
    });
    Rendered {
        template,
        parameters,
    }
}

/// The NVIDIA device plugin DaemonSet, for GPU pools whose driver is [`GpuDriver::None`]:
/// scheduled on `accelerator=nvidia` nodes and tolerating the GPU taint's key.
pub fn nvidia_device_plugin_manifest(taint_key: &str) -> String {
    format!(
        r#"# The NVIDIA device plugin (github.com/NVIDIA/k8s-device-plugin) for GPU pools whose
# gpuProfile.driver is None: apply with `kubectl apply -f` once the NVIDIA driver is on the nodes.
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: nvidia-device-plugin-daemonset
  namespace: kube-system
  labels:
    app.kubernetes.io/name: nvidia-device-plugin
spec:
  selector:
    matchLabels:
      name: nvidia-device-plugin-ds
  updateStrategy:
    type: RollingUpdate
  template:
    metadata:
      labels:
        name: nvidia-device-plugin-ds
    spec:
      priorityClassName: system-node-critical
      nodeSelector:
        accelerator: nvidia
      tolerations:
        - key: nvidia.com/gpu
          operator: Exists
          effect: NoSchedule
        - key: {taint_key}
          operator: Exists
          effect: NoSchedule
      containers:
        - name: nvidia-device-plugin-ctr
          image: nvcr.io/nvidia/k8s-device-plugin:v0.17.1
          env:
            - name: FAIL_ON_INIT_ERROR
              value: "false"
          securityContext:
            allowPrivilegeEscalation: false
            capabilities:
              drop: ["ALL"]
          volumeMounts:
            - name: device-plugin
              mountPath: /var/lib/kubelet/device-plugins
      volumes:
        - name: device-plugin
          hostPath:
            path: /var/lib/kubelet/device-plugins
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ClusterSpec {
        ClusterSpec {
            name: "c".into(),
            dns_prefix: "c".into(),
            admin_username: "azureuser".into(),
            ssh_public_key: "ssh-rsa AAAA".into(),
            identity: ClusterIdentity::ServicePrincipal {
                client_id: "app".into(),
                secret: Secret::new("s3cr3t-value"),
            },
            pools: vec![PoolSpec::new(
                "system",
                1,
                "Standard_D2_v2",
                PoolMode::System,
            )],
            enable_rbac: true,
            ..Default::default()
        }
    }

    #[test]
    fn secrets_are_parameters_not_template_text() {
        let r = render(&spec());
        let template = r.template.to_string();
        assert!(!template.contains("s3cr3t-value"));
        assert_eq!(
            r.template["parameters"]["servicePrincipalClientSecret"]["type"],
            "securestring"
        );
        assert_eq!(
            r.parameters["parameters"]["servicePrincipalClientSecret"]["value"],
            "s3cr3t-value"
        );
        let leaks = studio_azure_auth::redact::debug_leaks(&r, &["s3cr3t-value"]);
        assert!(leaks.is_empty(), "{leaks:?}");
        // Every parameter the template uses is declared, and every value has a declaration.
        for name in r.parameters["parameters"].as_object().unwrap().keys() {
            assert!(r.template["parameters"].get(name).is_some(), "{name}");
        }
        let used = template.matches("[parameters('").count();
        assert!(used >= 6);
        let resource = &r.template["resources"][0];
        assert!(resource.get("identity").is_none());
    }

    #[test]
    fn managed_identity_and_gpu_pools() {
        let mut s = spec();
        s.identity = ClusterIdentity::ManagedIdentity;
        s.pools.push(PoolSpec {
            gpu: Some(GpuDriver::None),
            taints: vec!["sku=gpu:NoSchedule".into()],
            ..PoolSpec::new("gpu", 1, "Standard_NC4as_T4_v3", PoolMode::User)
        });
        let r = render(&s);
        let resource = &r.template["resources"][0];
        assert_eq!(resource["identity"]["type"], "SystemAssigned");
        assert!(
            resource["properties"]
                .get("servicePrincipalProfile")
                .is_none()
        );
        let gpu = &resource["properties"]["agentPoolProfiles"][1];
        assert_eq!(gpu["gpuProfile"], json!({"driver": "None"}));
        assert_eq!(gpu["nodeTaints"][0], "sku=gpu:NoSchedule");
        assert_eq!(gpu["mode"], "User");
        let manifest = nvidia_device_plugin_manifest("sku");
        let doc: Value = serde_saphyr::from_str(&manifest).unwrap();
        assert_eq!(doc["kind"], "DaemonSet");
        assert_eq!(
            doc["spec"]["template"]["spec"]["tolerations"][1]["key"],
            "sku"
        );
    }

    #[test]
    fn debug_of_the_spec_masks_the_secret_and_the_windows_password() {
        let spec = ClusterSpec {
            windows: Some(("winadmin".into(), Secret::new("win-pass-value"))),
            ..spec()
        };
        let secrets = ["s3cr3t-value", "win-pass-value"];
        for value in [&spec as &dyn fmt::Debug, &spec.identity] {
            let leaks = studio_azure_auth::redact::debug_leaks(value, &secrets);
            assert!(leaks.is_empty(), "{leaks:?}");
        }
        let shown = format!("{spec:?}");
        assert!(
            shown.contains(r#"identity: ServicePrincipal { client_id: "app", secret: *** }"#)
                && shown.contains(r#"windows: Some(("winadmin", ***))"#)
                && shown.contains(r#"admin_username: "azureuser""#),
            "{shown}"
        );
        assert_eq!(
            format!("{:?}", ClusterIdentity::ManagedIdentity),
            "ManagedIdentity"
        );
    }
}
