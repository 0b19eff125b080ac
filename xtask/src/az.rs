//! The az-style commands: `login`, `logout`, `account`, `group`.

use std::sync::Arc;

use anyhow::{Context, Result};
use azure_core::credentials::{Secret, TokenCredential};
use studio_acr::management::{AcrManagementClient, ResourceGroupCreate};
use studio_azure_auth::arm::{ArmClient, ArmClientOptions};
use studio_azure_auth::credential::saved::{SavedSecret, SavedServicePrincipal};
use studio_azure_auth::credential::{DeviceCodeCredential, DeviceCodeOptions};
use studio_azure_auth::subscription;

use crate::azure::Azure;
use crate::output::Output;

/// `login`: device code by default, or a service principal.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  cargo xtask login\n  cargo xtask login --tenant contoso.onmicrosoft.com\n  cargo xtask login --service-principal -u <app id> -p <secret> --tenant <tenant id>"
)]
pub struct LoginArgs {
    /// Sign in as a service principal (checks the credential and lists its subscriptions;
    /// the login is kept in the config directory, mode 0600, for later commands, as az keeps
    /// it; AZURE_CLIENT_ID/… in the environment still win).
    #[arg(long)]
    service_principal: bool,
    /// The service principal's application (client) id.
    #[arg(short = 'u', long, requires = "service_principal")]
    username: Option<String>,
    /// The service principal's secret.
    #[arg(
        short = 'p',
        long,
        requires = "service_principal",
        conflicts_with = "certificate"
    )]
    password: Option<String>,
    /// A PEM file with the service principal's certificate and private key.
    #[arg(long, requires = "service_principal")]
    certificate: Option<std::path::PathBuf>,
    /// The tenant (default for device login: organizations).
    #[arg(short, long)]
    tenant: Option<String>,
}

pub async fn login(args: LoginArgs, out: &Output) -> Result<()> {
    let azure = Azure::from_env()?;
    let scope = azure.arm_scope();
    let mut save = None;
    let credential: Arc<dyn TokenCredential> = if args.service_principal {
        let client = args
            .username
            .context("--service-principal needs -u <app id>")?;
        let tenant = args
            .tenant
            .context("--service-principal needs --tenant <tenant>")?;
        let secret = match (args.password, args.certificate) {
            (Some(secret), _) => SavedSecret::ClientSecret(Secret::new(secret)),
            (None, Some(path)) => SavedSecret::CertificateFile(path),
            (None, None) => {
                anyhow::bail!("--service-principal needs -p <secret> or --certificate <pem>")
            }
        };
        let login = SavedServicePrincipal::new(&tenant, &client, secret);
        let credential = login.credential(&azure.cloud, &azure.transport)?;
        save = Some(login);
        credential
    } else {
        let mut options = DeviceCodeOptions {
            cloud: azure.cloud.clone(),
            transport: azure.transport.clone(),
            cache: azure.cache(),
            ..Default::default()
        };
        if let Some(tenant) = args.tenant {
            options.tenant_id = tenant;
        }
        let device = DeviceCodeCredential::new(options)?;
        let signed_in = device.sign_in(&[&scope]).await?;
        eprintln!("signed in as {}", signed_in.account.username);
        // The latest login wins: forget a service principal signed in before.
        SavedServicePrincipal::remove(&azure.dir)?;
        device
    };
    let arm = ArmClient::with_endpoint(
        azure.cloud.resource_manager.clone(),
        &scope,
        credential,
        ArmClientOptions {
            transport: azure.transport.clone(),
            ..Default::default()
        },
    )?;
    let subscriptions = subscription::list(&arm, &azure.dir).await?;
    if let Some(login) = save {
        // Only a credential that worked is kept.
        login.save(&azure.dir)?;
        eprintln!(
            "signed in as service principal {} (kept in {})",
            login.client_id,
            azure.dir.path().display()
        );
    }
    out.emit(subscriptions)
}

/// `logout`: forget every cached login on this machine.
#[derive(clap::Args)]
#[command(after_help = "Example:\n  cargo xtask logout")]
pub struct LogoutArgs {}

pub fn logout(_args: LogoutArgs) -> Result<()> {
    let azure = Azure::from_env()?;
    let cached = studio_azure_auth::credential::logout(&azure.dir)?;
    let service_principal = SavedServicePrincipal::remove(&azure.dir)?;
    if !cached && !service_principal {
        eprintln!("no cached login to remove");
    }
    Ok(())
}

/// `account`: subscriptions.
#[derive(clap::Args)]
pub struct AccountArgs {
    #[command(subcommand)]
    command: Account,
}

#[derive(clap::Subcommand)]
enum Account {
    /// List the subscriptions the signed-in credential can see.
    #[command(
        after_help = "Examples:\n  cargo xtask account list -o table\n  cargo xtask account list --query \"[?isDefault].id\" -o tsv"
    )]
    List,
    /// Show one subscription (default: the default one).
    #[command(after_help = "Example:\n  cargo xtask account show --subscription 'My Subscription'")]
    Show {
        /// Subscription name or id.
        #[arg(short, long)]
        subscription: Option<String>,
    },
    /// Make a subscription the default.
    #[command(
        after_help = "Example:\n  cargo xtask account set --subscription 00000000-0000-0000-0000-000000000000"
    )]
    Set {
        /// Subscription name or id.
        #[arg(short, long)]
        subscription: String,
    },
}

pub async fn account(args: AccountArgs, out: &Output) -> Result<()> {
    let azure = Azure::from_env()?;
    let arm = azure.arm()?;
    match args.command {
        Account::List => out.emit(subscription::list(&arm, &azure.dir).await?),
        Account::Show { subscription } => {
            out.emit(subscription::show(&arm, &azure.dir, subscription.as_deref()).await?)
        }
        Account::Set { subscription } => {
            subscription::set_default(&arm, &azure.dir, &subscription).await?;
            Ok(())
        }
    }
}

/// `group`: resource groups.
#[derive(clap::Args)]
pub struct GroupArgs {
    #[command(subcommand)]
    command: Group,
    /// Subscription name or id (default: `account set`'s).
    #[arg(long, global = true)]
    subscription: Option<String>,
}

#[derive(clap::Subcommand)]
enum Group {
    /// Create a resource group (an existing one is kept as it is).
    #[command(after_help = "Example:\n  cargo xtask group create --name studio --location eastus")]
    Create {
        /// The group's name.
        #[arg(short, long)]
        name: String,
        /// The Azure region.
        #[arg(short, long)]
        location: String,
    },
    /// Show a resource group.
    #[command(after_help = "Example:\n  cargo xtask group show --name studio")]
    Show {
        /// The group's name.
        #[arg(short, long)]
        name: String,
    },
    /// Delete a resource group and everything in it.
    #[command(after_help = "Example:\n  cargo xtask group delete --name studio --yes")]
    Delete {
        /// The group's name.
        #[arg(short, long)]
        name: String,
        /// Do not ask for confirmation (required when not interactive).
        #[arg(short, long)]
        yes: bool,
    },
}

pub async fn group(args: GroupArgs, out: &Output) -> Result<()> {
    let azure = Azure::from_env()?;
    let subscription = azure.subscription(args.subscription.as_deref())?;
    let acr = AcrManagementClient::new(azure.arm()?, subscription);
    let groups = acr.resource_groups();
    match args.command {
        Group::Create { name, location } => out.emit(
            groups
                .ensure(&name, &ResourceGroupCreate::new(&location))
                .await?,
        ),
        Group::Show { name } => out.emit(groups.show(&name).await?),
        Group::Delete { name, yes } => {
            anyhow::ensure!(
                yes,
                "deleting resource group '{name}' removes everything in it: pass --yes to confirm"
            );
            groups.delete(&name).await?;
            Ok(())
        }
    }
}
