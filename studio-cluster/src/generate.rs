//! `acs-engine generate` for AKS: fill in the apimodel, make the ARM template, write
//! `_output/<dnsPrefix>/`. No cloud calls.
//!
//! Filling in works as acs-engine's did:
//!
//! - `--dns-prefix` ([`GenerateOptions::dns_prefix`]) fills an empty `masterProfile.dnsPrefix`
//!   (both set is an error); `--auto-suffix` appends `-` and the Unix time in lower-case hex
//!   (the clock is injectable, [`GenerateOptions::clock`]);
//! - `linuxProfile.adminUsername` defaults to `azureuser`;
//! - an empty `keyData` gets a new RSA 4096 key pair: the public key goes into the apimodel, the
//!   private key (OpenSSH format) to `<out>/<adminUsername>_rsa`;
//! - the cluster's identity is the apimodel's service principal, one given by flags, one created
//!   beforehand with [`Cluster::create_service_principal`](crate::Cluster::create_service_principal),
//!   or a system-assigned managed identity ([`Identity`]).
//!
//! GPU agent pools ([`gpu`]) become `User` pools labelled `accelerator=nvidia`,
//! tainted `sku=gpu:NoSchedule` (configurable), with `gpuProfile.driver` `Install` — or `None`,
//! with the NVIDIA device plugin DaemonSet written to `<out>/addons/`. Retired GPU sizes are
//! replaced by a current size with as many GPUs, with a warning ([`RetiredSizes`]).
//!
//! The output directory is `_output/<dnsPrefix>` ([`GenerateOptions::output_root`]) or
//! [`GenerateOptions::output_directory`]; it holds `apimodel.json` (filled), `azuredeploy.json`,
//! `azuredeploy.parameters.json`, the private key and `addons/`, all private
//! ([`output`](crate::output)). An existing directory is refused unless
//! [`GenerateOptions::force`]. An apimodel with problems writes nothing.
//!
//! ```no_run
//! use std::path::Path;
//! use studio_cluster::apimodel::ApiModel;
//! use studio_cluster::generate::{self, GenerateOptions};
//!
//! let model = ApiModel::load(Path::new("examples/azure/kubernetes.json"))?;
//! let generated = generate::generate(&model, &GenerateOptions {
//!     dns_prefix: Some("test-user-k8s".into()),
//!     auto_suffix: true,
//!     location: Some("eastus".into()),
//!     ..Default::default()
//! })?;
//! for warning in &generated.warnings {
//!     eprintln!("warning: {warning}");
//! }
//! println!("wrote {}", generated.output_dir.display());
//! # Ok::<(), studio_cluster::Error>(())
//! ```

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use azure_core::credentials::Secret;
use studio_azure_auth::redact::Redacted;

use crate::apimodel::{
    ApiModel, PublicKey, SYSTEM_POOL, ServicePrincipalProfile, check_dns_prefix,
};
use crate::error::{Error, Problem};
use crate::gpu;
use crate::output::{OutputFile, write_tree};
use crate::template::{
    self, ClusterIdentity, ClusterSpec, GpuDriver, NetworkSpec, PoolMode, PoolSpec, Rendered,
};

/// A clock, for a deterministic `--auto-suffix`.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// The default admin user.
pub const DEFAULT_ADMIN_USERNAME: &str = "azureuser";

/// The default taint of GPU pools.
pub const DEFAULT_GPU_TAINT: &str = "sku=gpu:NoSchedule";

/// Bits of a generated RSA key.
pub const SSH_KEY_BITS: usize = 4096;

/// Where the cluster's Azure identity comes from. `Debug` shows the secret as `***`.
#[derive(Clone, Default, PartialEq)]
pub enum Identity {
    /// The apimodel's service principal when it has one, else a managed identity.
    #[default]
    Auto,
    /// This service principal (from flags, or made by `create_service_principal`).
    ServicePrincipal {
        /// The application (client) id.
        client_id: String,
        /// The secret.
        secret: Secret,
    },
    /// A system-assigned managed identity, whatever the apimodel says.
    ManagedIdentity,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("Auto"),
            Self::ServicePrincipal { client_id, .. } => f
                .debug_struct("ServicePrincipal")
                .field("client_id", client_id)
                .field("secret", &Redacted)
                .finish(),
            Self::ManagedIdentity => f.write_str("ManagedIdentity"),
        }
    }
}

/// What to do with GPU sizes Azure has retired (Standard_NC6 and the rest of acs-engine's list).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RetiredSizes {
    /// Use [`GpuSize::successor`](crate::gpu::GpuSize::successor), with a warning.
    #[default]
    Replace,
    /// Keep the size (ARM will refuse it), with a warning.
    Keep,
}

/// How GPU pools are set up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GpuOptions {
    /// `gpuProfile.driver`.
    pub driver: GpuDriver,
    /// The taint, `key=value:Effect` (`None`: untainted).
    pub taint: Option<String>,
}

impl Default for GpuOptions {
    fn default() -> Self {
        Self {
            driver: GpuDriver::Install,
            taint: Some(DEFAULT_GPU_TAINT.to_owned()),
        }
    }
}

/// Options of [`generate`] (the flags of `acs-engine generate`/`deploy`).
#[derive(Clone)]
pub struct GenerateOptions {
    /// `--dns-prefix`: fills an empty `masterProfile.dnsPrefix`.
    pub dns_prefix: Option<String>,
    /// `--auto-suffix`: append `-<Unix seconds in hex>`.
    pub auto_suffix: bool,
    /// `--location`: recorded in `apimodel.json` and the parameters (normalised).
    pub location: Option<String>,
    /// The folder of output trees (default `_output`).
    pub output_root: PathBuf,
    /// `--output-directory`: the tree itself (default `<output_root>/<dnsPrefix>`).
    pub output_directory: Option<PathBuf>,
    /// `--force`: write into an existing output directory.
    pub force: bool,
    /// The cluster's identity.
    pub identity: Identity,
    /// GPU pool settings.
    pub gpu: GpuOptions,
    /// Retired GPU sizes.
    pub retired_gpu_sizes: RetiredSizes,
    /// The clock for `--auto-suffix` (default: the system clock).
    pub clock: Option<Clock>,
    /// The apimodel's name in errors (default `apimodel`).
    pub source_name: String,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            dns_prefix: None,
            auto_suffix: false,
            location: None,
            output_root: PathBuf::from("_output"),
            output_directory: None,
            force: false,
            identity: Identity::Auto,
            gpu: GpuOptions::default(),
            retired_gpu_sizes: RetiredSizes::default(),
            clock: None,
            source_name: "apimodel".to_owned(),
        }
    }
}

impl fmt::Debug for GenerateOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GenerateOptions")
            .field("dns_prefix", &self.dns_prefix)
            .field("auto_suffix", &self.auto_suffix)
            .field("location", &self.location)
            .field("output_root", &self.output_root)
            .field("output_directory", &self.output_directory)
            .field("force", &self.force)
            .field("identity", &self.identity)
            .field("gpu", &self.gpu)
            .field("retired_gpu_sizes", &self.retired_gpu_sizes)
            .finish_non_exhaustive()
    }
}

/// The result of [`prepare`]: everything [`Generated::write`] puts on disk.
pub struct Generated {
    /// The filled apimodel (`apimodel.json`).
    pub model: ApiModel,
    /// What the template describes.
    pub spec: ClusterSpec,
    /// The output directory.
    pub output_dir: PathBuf,
    /// `azuredeploy.json` and `azuredeploy.parameters.json`.
    pub rendered: Rendered,
    /// Warnings: fields AKS cannot honour and what happens instead.
    pub warnings: Vec<Problem>,
    /// The files of the tree.
    pub files: Vec<OutputFile>,
    force: bool,
}

impl fmt::Debug for Generated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Generated")
            .field("output_dir", &self.output_dir)
            .field("spec", &self.spec)
            .field("warnings", &self.warnings)
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl Generated {
    /// Writes the tree (see [`output::write_tree`](crate::output::write_tree)).
    pub fn write(&self) -> Result<(), Error> {
        write_tree(&self.output_dir, &self.files, self.force)?;
        tracing::info!(dir = %self.output_dir.display(), "generated");
        Ok(())
    }
}

/// The `--auto-suffix` for `time`: `-` + Unix seconds in lower-case hex.
pub fn auto_suffix(time: SystemTime) -> String {
    let seconds = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("-{seconds:x}")
}

/// An Azure location as ARM names it: `East US` → `eastus`.
pub fn normalize_location(location: &str) -> String {
    location
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// A new RSA key pair: the OpenSSH public key line and the OpenSSH private key file.
pub fn generate_ssh_key(bits: usize) -> Result<(String, Secret), Error> {
    use ssh_key::private::{KeypairData, RsaKeypair};
    let mut rng = ssh_key::rand_core::OsRng;
    let keypair = RsaKeypair::random(&mut rng, bits).map_err(|e| Error::SshKey(e.to_string()))?;
    let private = ssh_key::PrivateKey::new(KeypairData::Rsa(keypair), "")
        .map_err(|e| Error::SshKey(e.to_string()))?;
    let public = private
        .public_key()
        .to_openssh()
        .map_err(|e| Error::SshKey(e.to_string()))?;
    let pem = private
        .to_openssh(ssh_key::LineEnding::LF)
        .map_err(|e| Error::SshKey(e.to_string()))?;
    Ok((public, Secret::new(pem.as_str().to_owned())))
}

/// Fills in, validates and renders; reads the disk only to refuse an existing output
/// directory. See the module docs.
pub fn prepare(model: &ApiModel, options: &GenerateOptions) -> Result<Generated, Error> {
    let source = options.source_name.as_str();
    let mut warnings = model.validate_as(source, false)?;
    let mut model = model.clone();

    // DNS prefix.
    let in_model = model.dns_prefix().to_owned();
    let prefix = match (&options.dns_prefix, in_model.is_empty()) {
        (Some(flag), true) => flag.clone(),
        (Some(flag), false) if *flag != in_model => {
            return Err(Error::InvalidOption(format!(
                "--dns-prefix {flag}: the apimodel sets masterProfile.dnsPrefix to '{in_model}' already; set one or the other"
            )));
        }
        (_, false) => in_model,
        (None, true) => {
            return Err(Error::InvalidOption(
                "no DNS prefix: set properties.masterProfile.dnsPrefix or pass --dns-prefix"
                    .to_owned(),
            ));
        }
    };
    check_dns_prefix(&prefix).map_err(|e| Error::InvalidOption(format!("--dns-prefix: {e}")))?;
    let prefix = if options.auto_suffix {
        let now = options.clock.as_ref().map_or_else(SystemTime::now, |c| c());
        let suffixed = format!("{prefix}{}", auto_suffix(now));
        check_dns_prefix(&suffixed)
            .map_err(|e| Error::InvalidOption(format!("--auto-suffix: {e}")))?;
        suffixed
    } else {
        prefix
    };
    let output_dir = options
        .output_directory
        .clone()
        .unwrap_or_else(|| options.output_root.join(&prefix));
    if output_dir.exists() && !options.force {
        return Err(Error::OutputExists { path: output_dir });
    }
    if let Some(master) = model.properties.master_profile.as_mut() {
        master.dns_prefix = prefix.clone();
    }
    if let Some(location) = options.location.as_deref().or(model.location.as_deref()) {
        let normalized = normalize_location(location);
        if normalized.is_empty() {
            return Err(Error::InvalidOption("--location is empty".to_owned()));
        }
        model.location = Some(normalized);
    }

    // Admin user and SSH key.
    let linux = model
        .properties
        .linux_profile
        .get_or_insert_with(Default::default);
    if linux.admin_username.is_empty() {
        linux.admin_username = DEFAULT_ADMIN_USERNAME.to_owned();
    }
    let admin = linux.admin_username.clone();
    let mut private_key = None;
    if linux.ssh.public_keys.is_empty() {
        linux.ssh.public_keys.push(PublicKey::default());
    }
    if linux.ssh.public_keys[0].key_data.trim().is_empty() {
        let (public, private) = generate_ssh_key(SSH_KEY_BITS)?;
        linux.ssh.public_keys[0].key_data = public;
        private_key = Some(private);
    }
    let ssh_public_key = linux.ssh.public_keys[0].key_data.trim().to_owned();

    // Identity.
    let use_managed_identity = model
        .kubernetes_config()
        .and_then(|k| k.use_managed_identity)
        .unwrap_or(false);
    let from_model = model
        .properties
        .service_principal_profile
        .as_ref()
        .filter(|sp| !sp.client_id.is_empty())
        .and_then(|sp| sp.secret().map(|s| (sp.client_id.clone(), s.clone())));
    let identity = match &options.identity {
        Identity::Auto => match from_model {
            Some((client_id, secret)) if !use_managed_identity => {
                ClusterIdentity::ServicePrincipal { client_id, secret }
            }
            _ => {
                warnings.push(Problem::new(
                    "properties.servicePrincipalProfile",
                    "no service principal given: the cluster uses a system-assigned managed identity",
                ));
                model.properties.service_principal_profile = None;
                ClusterIdentity::ManagedIdentity
            }
        },
        Identity::ServicePrincipal { client_id, secret } => {
            if let Some((existing, _)) = &from_model
                && existing != client_id
            {
                return Err(Error::InvalidOption(format!(
                    "the apimodel's servicePrincipalProfile.clientId is '{existing}' and another service principal ('{client_id}') was given; set one or the other"
                )));
            }
            model.properties.service_principal_profile = Some(ServicePrincipalProfile {
                client_id: client_id.clone(),
                secret: Some(secret.clone()),
                ..Default::default()
            });
            ClusterIdentity::ServicePrincipal {
                client_id: client_id.clone(),
                secret: secret.clone(),
            }
        }
        Identity::ManagedIdentity => {
            if from_model.is_some() {
                warnings.push(Problem::new(
                    "properties.servicePrincipalProfile",
                    "ignored: a system-assigned managed identity was asked for",
                ));
            }
            model.properties.service_principal_profile = None;
            ClusterIdentity::ManagedIdentity
        }
    };

    // Pools.
    let k8s = model.kubernetes_config().cloned().unwrap_or_default();
    let max_pods = k8s.max_pods.and_then(|m| u32::try_from(m).ok());
    let disk = |size: Option<i64>| size.filter(|s| *s > 0).and_then(|s| u32::try_from(s).ok());
    let mut pools = Vec::new();
    if let Some(master) = &model.properties.master_profile {
        pools.push(PoolSpec {
            os_disk_size_gb: disk(master.os_disk_size_gb),
            max_pods,
            vnet_subnet_id: Some(master.vnet_subnet_id.clone()).filter(|s| !s.is_empty()),
            ..PoolSpec::new(
                SYSTEM_POOL,
                u32::try_from(master.count).unwrap_or(1),
                &master.vm_size,
                PoolMode::System,
            )
        });
    }
    let mut device_plugin = false;
    let taint_key = options
        .gpu
        .taint
        .as_deref()
        .and_then(|t| t.split(['=', ':']).next())
        .unwrap_or("sku")
        .to_owned();
    if let Some(taint) = &options.gpu.taint
        && !taint_ok(taint)
    {
        return Err(Error::InvalidOption(format!(
            "GPU taint '{taint}' is not key=value:Effect (NoSchedule, PreferNoSchedule or NoExecute)"
        )));
    }
    for (i, pool) in model.properties.agent_pool_profiles.iter_mut().enumerate() {
        let path = format!("properties.agentPoolProfiles[{i}].vmSize");
        let mut spec = PoolSpec {
            os_disk_size_gb: disk(pool.os_disk_size_gb),
            os_type: if pool.os_type.is_empty() {
                "Linux".to_owned()
            } else {
                pool.os_type.clone()
            },
            labels: pool.custom_node_labels.clone(),
            max_pods,
            vnet_subnet_id: Some(pool.vnet_subnet_id.clone()).filter(|s| !s.is_empty()),
            ..PoolSpec::new(
                &pool.name,
                u32::try_from(pool.count).unwrap_or(1),
                &pool.vm_size,
                PoolMode::User,
            )
        };
        if let Some(size) = gpu::lookup(&pool.vm_size) {
            if size.retired {
                match (options.retired_gpu_sizes, size.successor) {
                    (RetiredSizes::Replace, Some(next)) => {
                        warnings.push(Problem::new(
                            &path,
                            format!(
                                "{} ({}) is retired: the pool uses {next} ({} GPU(s) per node) instead",
                                size.name,
                                size.gpu,
                                size.gpus
                            ),
                        ));
                        pool.vm_size = next.to_owned();
                        spec.vm_size = next.to_owned();
                    }
                    _ => warnings.push(Problem::new(
                        &path,
                        format!(
                            "{} ({}) is retired: Azure will refuse to create the pool",
                            size.name, size.gpu
                        ),
                    )),
                }
            }
            spec.labels
                .insert("accelerator".to_owned(), "nvidia".to_owned());
            if let Some(taint) = &options.gpu.taint {
                spec.taints.push(taint.clone());
            }
            spec.gpu = Some(options.gpu.driver);
            device_plugin |= options.gpu.driver == GpuDriver::None;
        }
        pools.push(spec);
    }
    // The filled model must pass validation with every fill-in in place.
    model.validate_as(source, true)?;

    let windows = if pools.iter().any(|p| p.os_type == "Windows") {
        model
            .properties
            .windows_profile
            .as_ref()
            .and_then(|w| Some((w.admin_username.clone(), w.admin_password.clone()?)))
    } else {
        None
    };
    let plugin = match k8s.network_plugin.as_str() {
        "flannel" | "cilium" => "kubenet".to_owned(),
        other => other.to_owned(),
    };
    let spec = ClusterSpec {
        name: prefix.clone(),
        dns_prefix: prefix.clone(),
        location: model.location.clone(),
        kubernetes_version: model.kubernetes_version(),
        admin_username: admin.clone(),
        ssh_public_key,
        identity,
        pools,
        network: NetworkSpec {
            pod_cidr: if plugin == "azure" {
                String::new()
            } else {
                k8s.cluster_subnet.clone()
            },
            plugin,
            policy: match k8s.network_policy.as_str() {
                "none" => String::new(),
                other => other.to_owned(),
            },
            service_cidr: k8s.service_cidr.clone(),
            dns_service_ip: k8s.dns_service_ip.clone(),
        },
        enable_rbac: k8s.enable_rbac.unwrap_or(true),
        tags: model.tags.clone(),
        windows,
    };
    let rendered = template::render(&spec);

    let pretty = |v: &serde_json::Value| {
        serde_json::to_vec_pretty(v).map_err(|e| Error::InvalidOption(e.to_string()))
    };
    let mut files = vec![
        OutputFile::new("apimodel.json", model.to_json()?.into_bytes()),
        OutputFile::new("azuredeploy.json", pretty(&rendered.template)?),
        OutputFile::new("azuredeploy.parameters.json", pretty(&rendered.parameters)?),
    ];
    if let Some(key) = private_key {
        files.push(OutputFile::new(
            format!("{admin}_rsa"),
            key.secret().as_bytes().to_vec(),
        ));
    }
    if device_plugin {
        files.push(OutputFile::new(
            "addons/nvidia-device-plugin.yaml",
            template::nvidia_device_plugin_manifest(&taint_key).into_bytes(),
        ));
    }
    dedup(&mut warnings);
    Ok(Generated {
        model,
        spec,
        output_dir,
        rendered,
        warnings,
        files,
        force: options.force,
    })
}

/// [`prepare`], then [`Generated::write`].
pub fn generate(model: &ApiModel, options: &GenerateOptions) -> Result<Generated, Error> {
    let generated = prepare(model, options)?;
    generated.write()?;
    Ok(generated)
}

fn taint_ok(taint: &str) -> bool {
    let Some((kv, effect)) = taint.rsplit_once(':') else {
        return false;
    };
    let key = kv.split_once('=').map_or(kv, |(k, _)| k);
    !key.is_empty() && ["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&effect)
}

fn dedup(warnings: &mut Vec<Problem>) {
    let mut seen = Vec::new();
    warnings.retain(|w| {
        if seen.contains(w) {
            false
        } else {
            seen.push(w.clone());
            true
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_suffix_is_unix_seconds_in_lower_hex() {
        let t = UNIX_EPOCH + std::time::Duration::from_secs(0x6745_ab3c);
        assert_eq!(auto_suffix(t), "-6745ab3c");
        assert_eq!(normalize_location("East US 2"), "eastus2");
    }

    #[test]
    fn taints_are_checked() {
        assert!(taint_ok("sku=gpu:NoSchedule"));
        assert!(taint_ok("nvidia.com/gpu:NoExecute"));
        assert!(!taint_ok("sku=gpu") && !taint_ok("sku=gpu:Never") && !taint_ok("=x:NoSchedule"));
    }

    #[test]
    fn generated_keys_round_trip_through_openssh_text() {
        // 2048 bits keeps this unit test quick; generate() always uses SSH_KEY_BITS.
        let (public, private) = generate_ssh_key(2048).unwrap();
        assert!(public.starts_with("ssh-rsa "), "{public}");
        let parsed = ssh_key::PrivateKey::from_openssh(private.secret()).unwrap();
        assert_eq!(parsed.public_key().to_openssh().unwrap(), public);
        assert!(
            private
                .secret()
                .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----")
        );
        assert_eq!(format!("{private:?}"), "Secret");
    }

    #[test]
    fn debug_of_the_identity_and_the_options_masks_the_secret() {
        let identity = Identity::ServicePrincipal {
            client_id: "app-id".into(),
            secret: Secret::new("sp-secret-value"),
        };
        let options = GenerateOptions {
            dns_prefix: Some("studio".into()),
            identity: identity.clone(),
            ..Default::default()
        };
        for value in [&identity as &dyn fmt::Debug, &options] {
            let leaks = studio_azure_auth::redact::debug_leaks(value, &["sp-secret-value"]);
            assert!(leaks.is_empty(), "{leaks:?}");
        }
        assert_eq!(
            format!("{identity:?}"),
            r#"ServicePrincipal { client_id: "app-id", secret: *** }"#
        );
        assert!(format!("{options:?}").contains(r#"dns_prefix: Some("studio")"#));
        assert_eq!(format!("{:?}", Identity::Auto), "Auto");
        assert_eq!(
            format!("{:?}", Identity::ManagedIdentity),
            "ManagedIdentity"
        );
    }
}
