//! `cluster …`: acs-engine's `generate`/`deploy` flags over `studio-cluster`, plus az aks's
//! `get-credentials` and `attach-acr`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use serde_json::json;
use studio_cluster::apimodel::ApiModel;
use studio_cluster::deploy::{DeployProgress, DeployProgressFn};
use studio_cluster::generate::{self, GenerateOptions};
use studio_cluster::{Cluster, ClusterOptions, DeployOptions, DeployOutcome};

use crate::azure::Azure;
use crate::output::Output;

/// `cluster`.
#[derive(clap::Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    command: ClusterCommand,
    /// Subscription name or id (default: `account set`'s).
    #[arg(long, global = true)]
    subscription: Option<String>,
}

/// acs-engine's flags.
#[derive(clap::Args)]
struct GenerateFlags {
    /// The acs-engine apimodel (vlabs JSON).
    #[arg(short = 'm', long)]
    api_model: PathBuf,
    /// Fills an empty masterProfile.dnsPrefix.
    #[arg(long)]
    dns_prefix: Option<String>,
    /// Appends `-<Unix seconds in hex>` to the DNS prefix.
    #[arg(long)]
    auto_suffix: bool,
    /// The Azure region.
    #[arg(short, long)]
    location: Option<String>,
    /// The output tree (default `_output/<dnsPrefix>`).
    #[arg(long)]
    output_directory: Option<PathBuf>,
    /// Write into an existing output directory.
    #[arg(short, long)]
    force: bool,
}

impl GenerateFlags {
    fn generate(&self) -> Result<generate::Generated> {
        let model = ApiModel::load(&self.api_model)?;
        let generated = generate::generate(
            &model,
            &GenerateOptions {
                dns_prefix: self.dns_prefix.clone(),
                auto_suffix: self.auto_suffix,
                location: self.location.clone(),
                output_directory: self.output_directory.clone(),
                force: self.force,
                source_name: self.api_model.display().to_string(),
                ..Default::default()
            },
        )?;
        for warning in &generated.warnings {
            eprintln!("warning: {}: {}", warning.path, warning.message);
        }
        Ok(generated)
    }
}

#[derive(clap::Subcommand)]
enum ClusterCommand {
    /// Fill in the apimodel and write the AKS template tree (no cloud calls).
    #[command(
        after_help = "Example:\n  cargo xtask cluster generate --api-model examples/azure/kubernetes.json --dns-prefix test-user-k8s --auto-suffix --location eastus"
    )]
    Generate {
        #[command(flatten)]
        flags: GenerateFlags,
    },
    /// Generate, then deploy AKS with its GPU pools and fetch the kubeconfig.
    #[command(
        after_help = "Example:\n  cargo xtask cluster deploy --api-model examples/azure/kubernetes.json --dns-prefix test-user-k8s --auto-suffix --location eastus --resource-group test-user-k8s"
    )]
    Deploy {
        #[command(flatten)]
        flags: GenerateFlags,
        /// The resource group (default: the DNS prefix).
        #[arg(short = 'g', long)]
        resource_group: Option<String>,
        /// Show what ARM would change (what-if); deploy nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Write the cluster's admin kubeconfig.
    #[command(
        after_help = "Example:\n  cargo xtask cluster get-credentials -g test-user-k8s -n test-user-k8s --location eastus --output-directory _output/test-user-k8s"
    )]
    GetCredentials {
        /// The resource group.
        #[arg(short = 'g', long)]
        resource_group: String,
        /// The managed cluster's name.
        #[arg(short, long)]
        name: String,
        /// The cluster's region (names the file `kubeconfig.<location>.json`).
        #[arg(short, long)]
        location: String,
        /// Where `kubeconfig/` goes.
        #[arg(long, default_value = ".")]
        output_directory: PathBuf,
    },
    /// Let the cluster pull from a registry (AcrPull for its kubelet identity).
    #[command(
        after_help = "Example:\n  cargo xtask cluster attach-acr -g test-user-k8s -n test-user-k8s --acr /subscriptions/<id>/resourceGroups/studio/providers/Microsoft.ContainerRegistry/registries/studioml"
    )]
    AttachAcr {
        /// The resource group.
        #[arg(short = 'g', long)]
        resource_group: String,
        /// The managed cluster's name.
        #[arg(short, long)]
        name: String,
        /// The registry's resource id.
        #[arg(long)]
        acr: String,
    },
}

/// The cluster options, with role assignment retries printed (and their delay from
/// `STUDIO_ROLE_RETRY_DELAY_MS`) as `ad sp create-for-rbac` prints them.
fn cluster_options() -> Result<ClusterOptions> {
    Ok(ClusterOptions {
        assignment_retry: crate::ad::retry_progress()?,
        ..Default::default()
    })
}

/// Deployment progress: a spinner on a terminal, one line per state change otherwise.
fn deploy_progress() -> DeployProgressFn {
    if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        Arc::new(move |p: &DeployProgress| {
            bar.set_message(format!(
                "deployment {}: {} ({}s)",
                p.deployment,
                p.status,
                p.elapsed.as_secs()
            ));
        })
    } else {
        let last = Mutex::new(String::new());
        Arc::new(move |p: &DeployProgress| {
            let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
            if *last != p.status {
                eprintln!("deployment {}: {}", p.deployment, p.status);
                last.clone_from(&p.status);
            }
        })
    }
}

pub async fn cluster(args: ClusterArgs, out: &Output) -> Result<()> {
    match args.command {
        ClusterCommand::Generate { flags } => {
            let generated = flags.generate()?;
            out.emit(json!({
                "outputDirectory": generated.output_dir,
                "dnsPrefix": generated.spec.dns_prefix,
                "files": generated.files.iter().map(|f| f.path.clone()).collect::<Vec<_>>(),
            }))
        }
        ClusterCommand::Deploy {
            flags,
            resource_group,
            dry_run,
        } => {
            let azure = Azure::from_env()?;
            let subscription = azure.subscription(args.subscription.as_deref())?;
            let generated = flags.generate()?;
            eprintln!("wrote {}", generated.output_dir.display());
            let cluster = Cluster::new(azure.arm()?, cluster_options()?);
            let outcome = cluster
                .deploy(
                    &generated.output_dir,
                    &DeployOptions {
                        subscription_id: subscription,
                        resource_group,
                        location: flags.location.clone(),
                        dry_run,
                        progress: Some(deploy_progress()),
                        ..Default::default()
                    },
                )
                .await?;
            match outcome {
                DeployOutcome::Deployed(d) => out.emit(json!({
                    "name": d.name,
                    "resourceGroup": d.resource_group,
                    "location": d.location,
                    "clusterName": d.cluster_name,
                    "fqdn": d.fqdn,
                    "kubeconfig": d.kubeconfig,
                    "outputDirectory": generated.output_dir,
                })),
                DeployOutcome::WhatIf(what_if) => {
                    eprintln!("{what_if}");
                    Ok(())
                }
            }
        }
        ClusterCommand::GetCredentials {
            resource_group,
            name,
            location,
            output_directory,
        } => {
            let azure = Azure::from_env()?;
            let subscription = azure.subscription(args.subscription.as_deref())?;
            let cluster = Cluster::new(azure.arm()?, cluster_options()?);
            let path = cluster
                .write_kubeconfig(
                    &subscription,
                    &resource_group,
                    &name,
                    &output_directory,
                    &location,
                )
                .await?;
            out.emit(json!({ "kubeconfig": path }))
        }
        ClusterCommand::AttachAcr {
            resource_group,
            name,
            acr,
        } => {
            let azure = Azure::from_env()?;
            let subscription = azure.subscription(args.subscription.as_deref())?;
            let cluster = Cluster::new(azure.arm()?, cluster_options()?);
            let outcome = cluster
                .attach_acr(&subscription, &resource_group, &name, &acr)
                .await
                .context("attach-acr")?;
            out.emit(json!({ "outcome": format!("{outcome:?}") }))
        }
    }
}
