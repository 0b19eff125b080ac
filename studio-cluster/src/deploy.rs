//! Deploying a generated tree: resource group, ARM deployment with progress, what-if, then the
//! cluster's admin kubeconfig.
//!
//! [`Cluster::deploy`] reads `apimodel.json`, `azuredeploy.json` and
//! `azuredeploy.parameters.json` from the output directory, ensures the resource group (default:
//! the DNS prefix) in the location, and PUTs an `Incremental` deployment named
//! `<resource group>-<random>`. While ARM works, the deployment's operations are listed and
//! reported through [`DeployOptions::progress`]. A deployment that is rejected or ends `Failed`
//! is an [`Error::DeploymentFailed`] carrying ARM's whole error tree (code, message, target,
//! details). On success the cluster's admin credentials (`listClusterAdminCredential`) are
//! written as `<out>/kubeconfig/kubeconfig.<location>.json`: JSON, mode 0600, which kubectl
//! reads. With [`DeployOptions::dry_run`] ARM's what-if runs instead and nothing is created.
//!
//! ```no_run
//! # async fn demo(cluster: studio_cluster::Cluster) -> Result<(), studio_cluster::Error> {
//! use std::path::Path;
//! use std::sync::Arc;
//! use studio_cluster::{DeployOptions, DeployOutcome};
//!
//! let options = DeployOptions {
//!     subscription_id: "00000000-0000-0000-0000-000000000000".into(),
//!     dry_run: true,
//!     progress: Some(Arc::new(|p: &studio_cluster::deploy::DeployProgress| eprintln!("{p}"))),
//!     ..Default::default()
//! };
//! if let DeployOutcome::WhatIf(changes) = cluster.deploy(Path::new("_output/test-user-k8s"), &options).await? {
//!     print!("{changes}");
//! }
//! # Ok(()) }
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use azure_core::http::Method;
use base64::Engine;
use serde_json::{Value, json};
use studio_azure_auth::arm::{ArmErrorDetail, PollOptions, PollProgress};
use tokio_util::sync::CancellationToken;

use crate::apimodel::ApiModel;
use crate::client::{Cluster, managed_cluster_path, resource_group_path};
use crate::error::{Error, io_error};
use crate::generate::normalize_location;
use crate::output::write_private_file;

/// A callback told of deployment progress.
pub type DeployProgressFn = Arc<dyn Fn(&DeployProgress) + Send + Sync>;

/// Options of [`Cluster::deploy`].
#[derive(Clone)]
pub struct DeployOptions {
    /// The subscription (see [`Cluster::resolve_subscription`]).
    pub subscription_id: String,
    /// The resource group (default: the DNS prefix).
    pub resource_group: Option<String>,
    /// The location (default: the apimodel's); normalised (`East US` → `eastus`).
    pub location: Option<String>,
    /// The deployment's name (default `<resource group>-<random>`).
    pub deployment_name: Option<String>,
    /// Run ARM what-if and deploy nothing.
    pub dry_run: bool,
    /// Fetch the admin kubeconfig after a successful deployment (default on).
    pub fetch_kubeconfig: bool,
    /// Told of progress while ARM deploys.
    pub progress: Option<DeployProgressFn>,
    /// Stops waiting (the deployment goes on in Azure).
    pub cancel: Option<CancellationToken>,
}

impl Default for DeployOptions {
    fn default() -> Self {
        Self {
            subscription_id: String::new(),
            resource_group: None,
            location: None,
            deployment_name: None,
            dry_run: false,
            fetch_kubeconfig: true,
            progress: None,
            cancel: None,
        }
    }
}

impl fmt::Debug for DeployOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeployOptions")
            .field("subscription_id", &self.subscription_id)
            .field("resource_group", &self.resource_group)
            .field("location", &self.location)
            .field("deployment_name", &self.deployment_name)
            .field("dry_run", &self.dry_run)
            .field("fetch_kubeconfig", &self.fetch_kubeconfig)
            .finish_non_exhaustive()
    }
}

/// One deployment operation (a resource ARM is creating).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperationProgress {
    /// e.g. `Microsoft.ContainerService/managedClusters`.
    pub resource_type: String,
    /// The resource's name.
    pub resource_name: String,
    /// e.g. `Running`, `Succeeded`, `Failed`.
    pub provisioning_state: String,
}

/// Where a deployment is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeployProgress {
    /// The deployment's name.
    pub deployment: String,
    /// Its state as last polled (`Accepted`, `Running`, …).
    pub status: String,
    /// Polls so far.
    pub polls: u32,
    /// Time since the deployment started.
    pub elapsed: Duration,
    /// Its operations, as last listed.
    pub operations: Vec<OperationProgress>,
}

impl fmt::Display for DeployProgress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} ({}s)",
            self.deployment,
            self.status,
            self.elapsed.as_secs()
        )?;
        for op in &self.operations {
            write!(
                f,
                "; {} {}: {}",
                op.resource_type, op.resource_name, op.provisioning_state
            )?;
        }
        Ok(())
    }
}

/// A property change in a what-if.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PropertyChange {
    /// e.g. `tags.myNewTag`.
    pub path: String,
    /// `Create`, `Delete`, `Modify`, `Array`, `NoEffect`.
    pub change_type: String,
}

/// A resource change in a what-if.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WhatIfChange {
    /// The resource id.
    pub resource_id: String,
    /// `Create`, `Delete`, `Ignore`, `Deploy`, `NoChange`, `Modify`, `Unsupported`.
    pub change_type: String,
    /// Property changes (for `Modify`).
    pub delta: Vec<PropertyChange>,
}

/// The result of ARM what-if: what a deployment would change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WhatIf {
    /// The deployment that was evaluated.
    pub deployment: String,
    /// The resource changes.
    pub changes: Vec<WhatIfChange>,
}

impl fmt::Display for WhatIf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let symbol = |change: &str| match change {
            "Create" => "+",
            "Delete" => "-",
            "Modify" | "Array" => "~",
            "Deploy" => "!",
            "NoChange" | "NoEffect" => "=",
            _ => "*",
        };
        writeln!(f, "What-if for deployment {}:", self.deployment)?;
        for c in &self.changes {
            writeln!(
                f,
                "  {} {} {}",
                symbol(&c.change_type),
                c.change_type,
                c.resource_id
            )?;
            for d in &c.delta {
                writeln!(f, "      {} {}", symbol(&d.change_type), d.path)?;
            }
        }
        write!(f, "Resource changes: {}", self.changes.len())
    }
}

/// A finished deployment.
#[derive(Clone, Debug, PartialEq)]
pub struct Deployment {
    /// The deployment's name.
    pub name: String,
    /// The resource group.
    pub resource_group: String,
    /// The location.
    pub location: String,
    /// The managed cluster's name.
    pub cluster_name: String,
    /// The API server's FQDN.
    pub fqdn: Option<String>,
    /// The kubeconfig written, if fetched.
    pub kubeconfig: Option<PathBuf>,
    /// The template's outputs.
    pub outputs: Value,
}

/// What [`Cluster::deploy`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum DeployOutcome {
    /// The cluster is deployed.
    Deployed(Deployment),
    /// Dry run: what ARM would change.
    WhatIf(WhatIf),
}

/// `<resource group>-<8 random hex digits>`, within ARM's 64 characters.
pub fn deployment_name(resource_group: &str) -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    let head: String = resource_group.chars().take(55).collect();
    format!("{head}-{}", &random[..8])
}

fn read_json(path: &Path) -> Result<Value, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| io_error(path, e))?;
    serde_json::from_str(&text).map_err(|e| io_error(path, format!("not JSON: {e}")))
}

/// Converts a kubeconfig as AKS returns it (base64 of YAML) to kubeconfig JSON.
pub fn kubeconfig_json(base64_yaml: &str) -> Result<Value, Error> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(base64_yaml.trim())
        .map_err(|e| Error::Kubeconfig(format!("not base64: {e}")))?;
    let text =
        String::from_utf8(bytes).map_err(|_| Error::Kubeconfig("not UTF-8 text".to_owned()))?;
    let value: Value =
        serde_saphyr::from_str(&text).map_err(|e| Error::Kubeconfig(format!("not YAML: {e}")))?;
    let has_list = |key: &str| value.get(key).is_some_and(Value::is_array);
    if !value.is_object() || !has_list("clusters") || !has_list("users") || !has_list("contexts") {
        return Err(Error::Kubeconfig(
            "not a kubeconfig (no clusters, users and contexts)".to_owned(),
        ));
    }
    Ok(value)
}

impl Cluster {
    /// Creates the resource group in `location` unless it exists; an existing group elsewhere is
    /// an error. Returns the group.
    pub async fn ensure_resource_group(
        &self,
        subscription_id: &str,
        resource_group: &str,
        location: &str,
    ) -> Result<Value, Error> {
        let path = resource_group_path(subscription_id, resource_group);
        let api = &self.options.resources_api_version;
        if let Some(group) = self.arm.get_optional::<Value>(&path, api).await? {
            let at = group
                .get("location")
                .and_then(Value::as_str)
                .map(normalize_location)
                .unwrap_or_default();
            if !at.is_empty() && at != normalize_location(location) {
                return Err(Error::InvalidOption(format!(
                    "resource group {resource_group} exists in {at}, not {location}"
                )));
            }
            return Ok(group);
        }
        tracing::info!(resource_group, location, "creating resource group");
        Ok(self
            .arm
            .send(
                Method::Put,
                &path,
                api,
                Some(&json!({ "location": location })),
            )
            .await?
            .json()?)
    }

    /// Deploys the tree in `dir` (see the module docs).
    pub async fn deploy(
        &self,
        dir: &Path,
        options: &DeployOptions,
    ) -> Result<DeployOutcome, Error> {
        if options.subscription_id.is_empty() {
            return Err(Error::InvalidOption(
                "no subscription: pass --subscription-id or choose a default with `account set`"
                    .to_owned(),
            ));
        }
        let model = ApiModel::load(&dir.join("apimodel.json"))?;
        let template = read_json(&dir.join("azuredeploy.json"))?;
        let parameters_file = read_json(&dir.join("azuredeploy.parameters.json"))?;
        let mut parameters = parameters_file
            .get("parameters")
            .cloned()
            .unwrap_or_else(|| json!({}));
        let dns_prefix = model.dns_prefix().to_owned();
        if dns_prefix.is_empty() {
            return Err(Error::InvalidOption(format!(
                "{}: the apimodel has no dnsPrefix; run generate first",
                dir.display()
            )));
        }
        let location = options
            .location
            .as_deref()
            .or(model.location.as_deref())
            .map(normalize_location)
            .filter(|l| !l.is_empty())
            .ok_or_else(|| {
                Error::InvalidOption("no location: pass --location (e.g. eastus)".to_owned())
            })?;
        parameters["location"] = json!({ "value": location });
        let resource_group = options
            .resource_group
            .clone()
            .unwrap_or_else(|| dns_prefix.clone());
        let cluster_name = parameters
            .pointer("/clusterName/value")
            .and_then(Value::as_str)
            .unwrap_or(&dns_prefix)
            .to_owned();
        let name = options
            .deployment_name
            .clone()
            .unwrap_or_else(|| deployment_name(&resource_group));
        let body = json!({
            "properties": {"template": template, "parameters": parameters, "mode": "Incremental"}
        });
        let sub = &options.subscription_id;
        let deployment_path = format!(
            "{}/providers/Microsoft.Resources/deployments/{name}",
            resource_group_path(sub, &resource_group)
        );
        let api = &self.options.resources_api_version;

        if options.dry_run {
            return self
                .what_if(
                    sub,
                    &resource_group,
                    &name,
                    &deployment_path,
                    &body,
                    &cluster_name,
                    options,
                )
                .await
                .map(DeployOutcome::WhatIf);
        }

        self.ensure_resource_group(sub, &resource_group, &location)
            .await?;
        tracing::info!(deployment = %name, resource_group, "deploying");
        let operation = match self
            .arm
            .begin(Method::Put, &deployment_path, api, Some(&body))
            .await
        {
            Ok(op) => op,
            Err(studio_azure_auth::Error::Arm {
                status,
                code,
                message,
                details,
            }) => {
                return Err(Error::DeploymentFailed {
                    deployment: name,
                    status: format!("was rejected (HTTP {status})"),
                    error: Box::new(ArmErrorDetail {
                        code,
                        message,
                        target: None,
                        details,
                    }),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let state = Arc::new(Mutex::new(DeployProgress {
            deployment: name.clone(),
            status: "Accepted".to_owned(),
            ..Default::default()
        }));
        let report = {
            let state = state.clone();
            let user = options.progress.clone();
            move |update: &dyn Fn(&mut DeployProgress)| {
                let snapshot = match state.lock() {
                    Ok(mut s) => {
                        update(&mut s);
                        s.clone()
                    }
                    Err(_) => return,
                };
                tracing::info!("{snapshot}");
                if let Some(user) = &user {
                    user(&snapshot);
                }
            }
        };
        let report = Arc::new(report);
        let poll_report = report.clone();
        let poll = PollOptions {
            progress: Some(Arc::new(move |p: &PollProgress| {
                poll_report(&|s: &mut DeployProgress| {
                    s.status = p.status.clone();
                    s.polls = p.polls;
                    s.elapsed = p.elapsed;
                })
            })),
            cancel: options.cancel.clone(),
        };
        let started = Instant::now();
        let watch = async {
            loop {
                tokio::time::sleep(self.arm.options().poll_interval).await;
                match self.operations(&deployment_path).await {
                    Ok(operations) => report(&|s: &mut DeployProgress| {
                        s.operations = operations.clone();
                        s.elapsed = started.elapsed();
                    }),
                    Err(e) => tracing::debug!("listing deployment operations: {e}"),
                }
            }
        };
        let result = tokio::select! {
            r = self.arm.wait(&operation, &poll) => Some(r),
            () = watch => None,
        };
        let final_body = match result {
            Some(Ok(body)) => body,
            Some(Err(studio_azure_auth::Error::OperationFailed {
                status,
                code,
                message,
            })) => {
                let error = self
                    .failure_tree(
                        &deployment_path,
                        ArmErrorDetail {
                            code,
                            message,
                            target: None,
                            details: Vec::new(),
                        },
                    )
                    .await;
                return Err(Error::DeploymentFailed {
                    deployment: name,
                    status: format!("ended {status}"),
                    error: Box::new(error),
                });
            }
            Some(Err(e)) => return Err(e.into()),
            None => return Err(Error::InvalidOption("deployment watch ended".to_owned())),
        };
        let outputs = final_body
            .pointer("/properties/outputs")
            .cloned()
            .unwrap_or(Value::Null);
        let mut fqdn = outputs
            .pointer("/controlPlaneFQDN/value")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if fqdn.is_none() {
            let cluster = self
                .managed_cluster(sub, &resource_group, &cluster_name)
                .await?;
            fqdn = cluster
                .pointer("/properties/fqdn")
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
        let kubeconfig = if options.fetch_kubeconfig {
            Some(
                self.write_kubeconfig(sub, &resource_group, &cluster_name, dir, &location)
                    .await?,
            )
        } else {
            None
        };
        Ok(DeployOutcome::Deployed(Deployment {
            name,
            resource_group,
            location,
            cluster_name,
            fqdn,
            kubeconfig,
            outputs,
        }))
    }

    /// The deployment's operations.
    async fn operations(&self, deployment_path: &str) -> Result<Vec<OperationProgress>, Error> {
        let items: Vec<Value> = self
            .arm
            .list(
                &format!("{deployment_path}/operations"),
                &self.options.resources_api_version,
            )
            .await?;
        Ok(items
            .iter()
            .map(|op| {
                let text = |p: &str| {
                    op.pointer(p)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                };
                OperationProgress {
                    resource_type: text("/properties/targetResource/resourceType"),
                    resource_name: text("/properties/targetResource/resourceName"),
                    provisioning_state: text("/properties/provisioningState"),
                }
            })
            .collect())
    }

    /// The failed deployment's error tree: `properties.error`, plus the errors of failed
    /// operations it does not already list.
    async fn failure_tree(
        &self,
        deployment_path: &str,
        fallback: ArmErrorDetail,
    ) -> ArmErrorDetail {
        let api = &self.options.resources_api_version;
        let mut tree = match self.arm.get::<Value>(deployment_path, api).await {
            Ok(body) => body
                .pointer("/properties/error")
                .and_then(ArmErrorDetail::from_json)
                .unwrap_or(fallback),
            Err(e) => {
                tracing::debug!("reading the failed deployment: {e}");
                fallback
            }
        };
        let operations: Vec<Value> = self
            .arm
            .list(&format!("{deployment_path}/operations"), api)
            .await
            .unwrap_or_default();
        for op in operations {
            let failed = op
                .pointer("/properties/provisioningState")
                .and_then(Value::as_str)
                .is_some_and(|s| s.eq_ignore_ascii_case("Failed"));
            let Some(status) = op.pointer("/properties/statusMessage") else {
                continue;
            };
            let Some(mut error) = ArmErrorDetail::from_json(status).filter(|_| failed) else {
                continue;
            };
            if error.target.is_none() {
                error.target = op
                    .pointer("/properties/targetResource/id")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
            }
            let known = |d: &ArmErrorDetail| d.code == error.code && d.message == error.message;
            if !tree.details.iter().any(known) {
                tree.details.push(error);
            }
        }
        tree
    }

    #[allow(clippy::too_many_arguments)]
    async fn what_if(
        &self,
        subscription_id: &str,
        resource_group: &str,
        name: &str,
        deployment_path: &str,
        body: &Value,
        cluster_name: &str,
        options: &DeployOptions,
    ) -> Result<WhatIf, Error> {
        let api = &self.options.resources_api_version;
        let group = self
            .arm
            .get_optional::<Value>(&resource_group_path(subscription_id, resource_group), api)
            .await?;
        if group.is_none() {
            // What-if needs the group; without it, everything would be created.
            let group_id = resource_group_path(subscription_id, resource_group);
            return Ok(WhatIf {
                deployment: name.to_owned(),
                changes: vec![
                    WhatIfChange {
                        resource_id: group_id,
                        change_type: "Create".to_owned(),
                        delta: Vec::new(),
                    },
                    WhatIfChange {
                        resource_id: managed_cluster_path(
                            subscription_id,
                            resource_group,
                            cluster_name,
                        ),
                        change_type: "Create".to_owned(),
                        delta: Vec::new(),
                    },
                ],
            });
        }
        let poll = PollOptions {
            progress: None,
            cancel: options.cancel.clone(),
        };
        let result = self
            .arm
            .run(
                Method::Post,
                &format!("{deployment_path}/whatIf"),
                api,
                Some(body),
                &poll,
            )
            .await?;
        if let Some(status) = result.get("status").and_then(Value::as_str)
            && !status.eq_ignore_ascii_case("Succeeded")
        {
            return Err(Error::DeploymentFailed {
                deployment: name.to_owned(),
                status: format!("what-if ended {status}"),
                error: Box::new(
                    result
                        .get("error")
                        .and_then(ArmErrorDetail::from_json)
                        .unwrap_or_else(|| ArmErrorDetail {
                            code: status.to_owned(),
                            message: "what-if did not succeed".to_owned(),
                            ..Default::default()
                        }),
                ),
            });
        }
        let changes = result
            .pointer("/properties/changes")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .map(|c| {
                        let text = |v: &Value, key: &str| {
                            v.get(key)
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_owned()
                        };
                        WhatIfChange {
                            resource_id: text(c, "resourceId"),
                            change_type: text(c, "changeType"),
                            delta: c
                                .get("delta")
                                .and_then(Value::as_array)
                                .map(|d| {
                                    d.iter()
                                        .map(|p| PropertyChange {
                                            path: text(p, "path"),
                                            change_type: text(p, "propertyChangeType"),
                                        })
                                        .collect()
                                })
                                .unwrap_or_default(),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(WhatIf {
            deployment: name.to_owned(),
            changes,
        })
    }

    /// Fetches the cluster's admin credentials and writes the first kubeconfig as
    /// `<dir>/kubeconfig/kubeconfig.<location>.json` (0600). Returns its path.
    pub async fn write_kubeconfig(
        &self,
        subscription_id: &str,
        resource_group: &str,
        cluster_name: &str,
        dir: &Path,
        location: &str,
    ) -> Result<PathBuf, Error> {
        let path = format!(
            "{}/listClusterAdminCredential",
            managed_cluster_path(subscription_id, resource_group, cluster_name)
        );
        let credentials: Value = self
            .arm
            .send(
                Method::Post,
                &path,
                &self.options.managed_clusters_api_version,
                None,
            )
            .await?
            .json()?;
        let encoded = credentials
            .pointer("/kubeconfigs/0/value")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::MissingField {
                what: format!("the admin credentials of {cluster_name}"),
                field: "kubeconfigs[0].value".to_owned(),
                hint: "ARM returned no kubeconfig".to_owned(),
            })?;
        let kubeconfig = kubeconfig_json(encoded)?;
        let file = dir
            .join("kubeconfig")
            .join(format!("kubeconfig.{}.json", normalize_location(location)));
        let bytes =
            serde_json::to_vec_pretty(&kubeconfig).map_err(|e| Error::Kubeconfig(e.to_string()))?;
        write_private_file(&file, &bytes)?;
        tracing::info!(path = %file.display(), "kubeconfig written");
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_names_are_group_dash_random() {
        let a = deployment_name("test-user-k8s-6745ab3c");
        let b = deployment_name("test-user-k8s-6745ab3c");
        assert_ne!(a, b);
        let (head, tail) = a.rsplit_once('-').unwrap();
        assert_eq!(head, "test-user-k8s-6745ab3c");
        assert_eq!(tail.len(), 8);
        assert!(deployment_name(&"g".repeat(90)).len() <= 64);
    }

    #[test]
    fn kubeconfigs_convert_from_base64_yaml_and_placeholders_are_refused() {
        let yaml = "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://c.hcp.eastus.azmk8s.io:443\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: t\n";
        let encoded = base64::engine::general_purpose::STANDARD.encode(yaml);
        let json = kubeconfig_json(&encoded).unwrap();
        assert_eq!(
            json["clusters"][0]["cluster"]["server"],
            "https://c.hcp.eastus.azmk8s.io:443"
        );
        assert_eq!(json["current-context"], "c");
        // The published example's value is a placeholder ("credentialValue1"), not a kubeconfig.
        let err = kubeconfig_json("Y3JlZGVudGlhbFZhbHVlMQ==").unwrap_err();
        assert!(err.to_string().contains("not a kubeconfig"), "{err}");
        assert!(kubeconfig_json("%%%").is_err());
    }

    #[test]
    fn what_if_prints_like_az() {
        let w = WhatIf {
            deployment: "d".into(),
            changes: vec![WhatIfChange {
                resource_id: "/r".into(),
                change_type: "Modify".into(),
                delta: vec![PropertyChange {
                    path: "tags.x".into(),
                    change_type: "Create".into(),
                }],
            }],
        };
        let text = w.to_string();
        assert!(
            text.contains("~ Modify /r") && text.contains("+ tags.x"),
            "{text}"
        );
    }
}
