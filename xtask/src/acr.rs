//! `acr …` (az acr's habits) and `image …` (push/tag/copy/ls without a Docker daemon).

use anyhow::{Context, Result};
use serde_json::{Value, json};
use studio_acr::auth::RegistryCredential;
use studio_acr::client::{RegistryClient, RegistryClientOptions};
use studio_acr::distribution::{Repository, TagOrder};
use studio_acr::docker_config::DockerConfig;
use studio_acr::layout::OciLayout;
use studio_acr::management::{
    AcrManagementClient, ImportImageParameters, PasswordName, RegistryCreate, RegistryUpdate,
    SkuName,
};
use studio_acr::reference::Reference;
use studio_acr::source::ImageSource;
use studio_acr::transfer::{Destination, Transfer};

use crate::azure::Azure;
use crate::output::Output;

/// `acr`: registries through ARM, and their data plane.
#[derive(clap::Args)]
pub struct AcrArgs {
    #[command(subcommand)]
    command: Acr,
    /// Subscription name or id (default: `account set`'s).
    #[arg(long, global = true)]
    subscription: Option<String>,
}

/// A registry in a resource group.
#[derive(clap::Args)]
struct Named {
    /// The registry's name (5-50 alphanumerics).
    #[arg(short, long)]
    name: String,
    /// The resource group.
    #[arg(short = 'g', long)]
    resource_group: String,
}

#[derive(clap::Subcommand)]
enum Acr {
    /// Is a registry name free? (checked locally first, then by ARM)
    #[command(after_help = "Example:\n  cargo xtask acr check-name --name studioml")]
    CheckName {
        /// The name.
        #[arg(short, long)]
        name: String,
    },
    /// Create a registry and wait until it is provisioned.
    #[command(
        after_help = "Example:\n  cargo xtask acr create -g studio -n studioml --sku Basic --location eastus --admin-enabled true"
    )]
    Create {
        #[command(flatten)]
        registry: Named,
        /// Basic, Standard or Premium.
        #[arg(long, default_value = "Basic")]
        sku: String,
        /// The Azure region.
        #[arg(short, long)]
        location: String,
        /// Enable the admin user.
        #[arg(long)]
        admin_enabled: Option<bool>,
    },
    /// Show a registry.
    #[command(
        after_help = "Example:\n  cargo xtask acr show -g studio -n studioml --query loginServer -o tsv"
    )]
    Show {
        #[command(flatten)]
        registry: Named,
    },
    /// List the registries of the subscription (or of one group).
    #[command(after_help = "Example:\n  cargo xtask acr list -o table")]
    List {
        /// Only this resource group.
        #[arg(short = 'g', long)]
        resource_group: Option<String>,
    },
    /// Change the admin user or SKU.
    #[command(
        after_help = "Example:\n  cargo xtask acr update -g studio -n studioml --admin-enabled true"
    )]
    Update {
        #[command(flatten)]
        registry: Named,
        /// Enable or disable the admin user.
        #[arg(long)]
        admin_enabled: Option<bool>,
        /// Basic, Standard or Premium.
        #[arg(long)]
        sku: Option<String>,
    },
    /// Delete a registry.
    #[command(after_help = "Example:\n  cargo xtask acr delete -g studio -n studioml --yes")]
    Delete {
        #[command(flatten)]
        registry: Named,
        /// Do not ask for confirmation.
        #[arg(short, long)]
        yes: bool,
    },
    /// Copy an image into the registry server-side.
    #[command(
        after_help = "Example:\n  cargo xtask acr import -g studio -n studioml --source docker.io/library/alpine:3.20 --image base/alpine:3.20"
    )]
    Import {
        #[command(flatten)]
        registry: Named,
        /// The source image: `<registry host>/<repository>:<tag>`.
        #[arg(long)]
        source: String,
        /// The target `repository:tag` (default: the source's).
        #[arg(long)]
        image: Option<String>,
    },
    /// Log in to a registry with the signed-in Azure credential (writes the docker config).
    #[command(after_help = "Example:\n  cargo xtask acr login --name studioml")]
    Login {
        /// The registry name (its login server is looked up in the subscription) or a login
        /// server.
        #[arg(short, long)]
        name: String,
    },
    /// Admin credentials.
    Credential {
        #[command(subcommand)]
        command: Credential,
    },
    /// Repositories and tags (data plane).
    Repository {
        #[command(subcommand)]
        command: RepositoryCommand,
    },
}

#[derive(clap::Subcommand)]
enum Credential {
    /// Show the admin user and passwords.
    #[command(
        after_help = "Example:\n  cargo xtask acr credential show -g studio -n studioml --query passwords[0].value -o tsv"
    )]
    Show {
        #[command(flatten)]
        registry: Named,
    },
    /// Regenerate one admin password.
    #[command(
        after_help = "Example:\n  cargo xtask acr credential renew -g studio -n studioml --password-name password2"
    )]
    Renew {
        #[command(flatten)]
        registry: Named,
        /// password or password2.
        #[arg(long, default_value = "password")]
        password_name: String,
    },
}

#[derive(clap::Subcommand)]
enum RepositoryCommand {
    /// List the repositories.
    #[command(after_help = "Example:\n  cargo xtask acr repository list --name studioml")]
    List {
        /// The registry name, or its host (host:port).
        #[arg(short, long)]
        name: String,
    },
    /// List a repository's tags.
    #[command(
        after_help = "Example:\n  cargo xtask acr repository show-tags --name studioml --repository leaf-ai/studio-go-runner/runner --detail --orderby time_desc"
    )]
    ShowTags {
        /// The registry name, or its host (host:port).
        #[arg(short, long)]
        name: String,
        /// The repository.
        #[arg(long)]
        repository: String,
        /// ACR's tag detail (digest, times).
        #[arg(long)]
        detail: bool,
        /// time_desc or time_asc (ACR's tag API).
        #[arg(long)]
        orderby: Option<String>,
    },
}

fn management(azure: &Azure, subscription: Option<&str>) -> Result<AcrManagementClient> {
    let subscription = azure.subscription(subscription)?;
    Ok(AcrManagementClient::new(azure.arm()?, subscription))
}

fn password_json(credentials: &studio_acr::management::Credentials) -> Value {
    // az prints the values: that is what the command is for.
    json!({
        "username": credentials.username,
        "passwords": credentials.passwords.iter().map(|p| json!({"name": p.name.as_str(), "value": p.value.secret()})).collect::<Vec<_>>(),
    })
}

pub async fn acr(args: AcrArgs, out: &Output) -> Result<()> {
    let azure = Azure::from_env()?;
    let sub = args.subscription.as_deref();
    match args.command {
        Acr::CheckName { name } => {
            let acr = management(&azure, sub)?;
            out.emit(acr.registries().check_name(&name).await?)
        }
        Acr::Create {
            registry,
            sku,
            location,
            admin_enabled,
        } => {
            let acr = management(&azure, sub)?;
            let mut request = RegistryCreate::new(&location, SkuName::from(sku.as_str()));
            if let Some(enabled) = admin_enabled {
                request = request.admin_user_enabled(enabled);
            }
            out.emit(
                acr.registries()
                    .create(&registry.resource_group, &registry.name, &request)
                    .await?,
            )
        }
        Acr::Show { registry } => {
            let acr = management(&azure, sub)?;
            out.emit(
                acr.registries()
                    .show(&registry.resource_group, &registry.name)
                    .await?,
            )
        }
        Acr::List { resource_group } => {
            let acr = management(&azure, sub)?;
            let registries = match resource_group {
                Some(group) => acr.registries().list_by_resource_group(&group).await?,
                None => acr.registries().list().await?,
            };
            out.emit(registries)
        }
        Acr::Update {
            registry,
            admin_enabled,
            sku,
        } => {
            let acr = management(&azure, sub)?;
            let mut update = RegistryUpdate::default();
            if let Some(enabled) = admin_enabled {
                update = update.admin_user_enabled(enabled);
            }
            if let Some(sku) = sku {
                update = update.sku(SkuName::from(sku.as_str()));
            }
            out.emit(
                acr.registries()
                    .update(&registry.resource_group, &registry.name, &update)
                    .await?,
            )
        }
        Acr::Delete { registry, yes } => {
            anyhow::ensure!(
                yes,
                "deleting registry '{}' removes its images: pass --yes to confirm",
                registry.name
            );
            let acr = management(&azure, sub)?;
            acr.registries()
                .delete(&registry.resource_group, &registry.name)
                .await?;
            Ok(())
        }
        Acr::Import {
            registry,
            source,
            image,
        } => {
            let reference: Reference = source.parse()?;
            let source_image = format!(
                "{}:{}",
                reference.repository(),
                reference.manifest_reference()
            );
            let target = image.unwrap_or_else(|| source_image.clone());
            let import =
                ImportImageParameters::from_registry_uri(reference.registry(), source_image)
                    .target_tag(target);
            let acr = management(&azure, sub)?;
            acr.registries()
                .import_image(&registry.resource_group, &registry.name, &import)
                .await?;
            Ok(())
        }
        Acr::Login { name } => {
            let host = resolve_host(&azure, sub, &name).await;
            let client =
                RegistryClient::new(&host, entra_credential(&azure)?, client_options(&azure))?;
            let token = client.acr_refresh_token().await?;
            let mut config = DockerConfig::load(&DockerConfig::default_path()?)?;
            config.store_acr_login(&host, &token)?;
            eprintln!("Login Succeeded ({host})");
            Ok(())
        }
        Acr::Credential { command } => {
            let acr = management(&azure, sub)?;
            match command {
                Credential::Show { registry } => {
                    let credentials = acr
                        .registries()
                        .list_credentials(&registry.resource_group, &registry.name)
                        .await?;
                    out.emit(password_json(&credentials))
                }
                Credential::Renew {
                    registry,
                    password_name,
                } => {
                    let credentials = acr
                        .registries()
                        .regenerate_credential(
                            &registry.resource_group,
                            &registry.name,
                            PasswordName::from(password_name.as_str()),
                        )
                        .await?;
                    out.emit(password_json(&credentials))
                }
            }
        }
        Acr::Repository { command } => match command {
            RepositoryCommand::List { name } => {
                let host = resolve_host(&azure, sub, &name).await;
                let client = registry_client(&azure, &host)?;
                out.emit(client.catalog(None).await?)
            }
            RepositoryCommand::ShowTags {
                name,
                repository,
                detail,
                orderby,
            } => {
                let host = resolve_host(&azure, sub, &name).await;
                let repo = Repository::new(registry_client(&azure, &host)?, &repository);
                let order = match orderby.as_deref() {
                    None => None,
                    Some("time_desc") => Some(TagOrder::TimeDesc),
                    Some("time_asc") => Some(TagOrder::TimeAsc),
                    Some(other) => {
                        anyhow::bail!("--orderby {other}: use time_desc or time_asc")
                    }
                };
                if detail || order.is_some() {
                    let tags = repo.acr_tags(order, None).await?;
                    let rows: Vec<Value> = tags
                        .iter()
                        .map(|t| {
                            json!({"name": t.name, "digest": t.digest, "createdTime": t.created_time,
                                   "lastUpdateTime": t.last_update_time, "signed": t.signed})
                        })
                        .collect();
                    if detail {
                        out.emit(rows)
                    } else {
                        out.emit(tags.iter().map(|t| t.name.clone()).collect::<Vec<_>>())
                    }
                } else {
                    out.emit(repo.tags(None).await?)
                }
            }
        },
    }
}

/// The login server of `name`, as az resolves `--name`: a host (with a dot or a port) as it
/// is; a registry name by its `loginServer` in the subscription (ARM), else, when ARM cannot
/// say, `<name>.<cloud's suffix>` with a warning.
pub async fn resolve_host(azure: &Azure, subscription: Option<&str>, name: &str) -> String {
    if name.contains(['.', ':']) {
        return name.to_owned();
    }
    let looked_up = async {
        let registries = management(azure, subscription)?.registries().list().await?;
        Ok::<_, anyhow::Error>(
            registries
                .into_iter()
                .find(|r| r.name.eq_ignore_ascii_case(name))
                .map(|r| r.properties.login_server)
                .filter(|s| !s.is_empty()),
        )
    };
    match looked_up.await {
        Ok(Some(login_server)) => login_server,
        Ok(None) => {
            let host = host_of(azure, name);
            tracing::warn!("registry '{name}' is not in the subscription; using {host}");
            host
        }
        Err(e) => {
            let host = host_of(azure, name);
            tracing::warn!("cannot look up registry '{name}' ({e:#}); using {host}");
            host
        }
    }
}

/// An ACR name becomes `<name>.<cloud's suffix>`; a host (with a dot or a port) stays.
fn host_of(azure: &Azure, name: &str) -> String {
    if name.contains(['.', ':']) {
        name.to_owned()
    } else {
        azure.cloud.registry_login_server(name)
    }
}

fn client_options(azure: &Azure) -> RegistryClientOptions {
    RegistryClientOptions {
        transport: azure.transport.clone(),
        ..Default::default()
    }
}

fn entra_credential(azure: &Azure) -> Result<RegistryCredential> {
    Ok(RegistryCredential::Entra {
        credential: azure.credential()?,
        tenant: None,
        audience: Some(azure.cloud.acr_audience.clone()),
    })
}

/// The credential for `host`: the docker config's (what `acr login` wrote), else the signed-in
/// Azure credential for ACR hosts, else anonymous.
fn credential_for(azure: &Azure, host: &str) -> Result<RegistryCredential> {
    let config = DockerConfig::load(&DockerConfig::default_path()?)?;
    if let Some(credential) = config.credential_for(host)? {
        return Ok(credential);
    }
    if host.ends_with(&format!(".{}", azure.cloud.acr_suffix)) {
        return entra_credential(azure);
    }
    Ok(RegistryCredential::Anonymous)
}

fn registry_client(azure: &Azure, name: &str) -> Result<RegistryClient> {
    let host = host_of(azure, name);
    Ok(RegistryClient::new(
        &host,
        credential_for(azure, &host)?,
        client_options(azure),
    )?)
}

/// `image`: push, tag, copy and list without a Docker daemon.
#[derive(clap::Args)]
pub struct ImageArgs {
    #[command(subcommand)]
    command: Image,
}

#[derive(clap::Subcommand)]
enum Image {
    /// Push an OCI layout (`oci:<dir>:<tag>`) or a `docker save` archive
    /// (`docker-archive:<file>`) to a registry.
    #[command(
        after_help = "Example:\n  cargo xtask image push oci:_output/images/studio-probe:0.1.0-main-1xWXNj studioml.azurecr.io/studio-probe:0.1.0-main-1xWXNj"
    )]
    Push {
        /// The source.
        source: String,
        /// The destination reference.
        destination: String,
    },
    /// Add tags to an image in a registry (moves only the manifest).
    #[command(
        after_help = "Example:\n  cargo xtask image tag studioml.azurecr.io/studio-probe:0.1.0-main-1xWXNj latest stable"
    )]
    Tag {
        /// The image.
        image: String,
        /// The new tags.
        #[arg(required = true)]
        tags: Vec<String>,
    },
    /// Copy an image between registries (blobs mounted or streamed).
    #[command(
        after_help = "Example:\n  cargo xtask image copy 127.0.0.1:5000/runner:1 studioml.azurecr.io/runner:1"
    )]
    Copy {
        /// The source reference.
        source: String,
        /// The destination reference.
        destination: String,
    },
    /// List the tags of a repository.
    #[command(after_help = "Example:\n  cargo xtask image ls studioml.azurecr.io/studio-probe")]
    Ls {
        /// `<registry>/<repository>`.
        repository: String,
    },
}

fn repository_of(azure: &Azure, reference: &Reference) -> Result<Repository> {
    let client = RegistryClient::new(
        reference.api_host(),
        credential_for(azure, reference.registry())?,
        client_options(azure),
    )?;
    Ok(Repository::new(client, reference.repository()))
}

fn layout_source(source: &str) -> Result<(Box<dyn ImageSource>, String)> {
    if let Some(rest) = source.strip_prefix("oci:") {
        let (dir, tag) = match rest.rsplit_once(':') {
            Some((dir, tag)) if !tag.contains('/') => (dir, tag),
            _ => (rest, "latest"),
        };
        return Ok((Box::new(OciLayout::open(dir)?), tag.to_owned()));
    }
    if let Some(file) = source.strip_prefix("docker-archive:") {
        let archive = studio_acr::archive::DockerArchive::open(file)?;
        let reference = archive
            .tags()
            .first()
            .cloned()
            .unwrap_or_else(|| "0".to_owned());
        return Ok((Box::new(archive), reference));
    }
    anyhow::bail!("{source}: use oci:<dir>:<tag> or docker-archive:<file>")
}

pub async fn image(args: ImageArgs, out: &Output) -> Result<()> {
    let azure = Azure::from_env()?;
    let transfer = Transfer::default().with_progress(crate::progress::transfer());
    match args.command {
        Image::Push {
            source,
            destination,
        } => {
            let (source, reference) = layout_source(&source)?;
            let destination: Reference = destination.parse()?;
            let tag = destination
                .tag()
                .context("the destination needs a :tag")?
                .to_owned();
            let repo = repository_of(&azure, &destination)?;
            let report = transfer
                .copy(&*source, &reference, &Destination::Registry(repo), &[&tag])
                .await?;
            out.emit(json!({"digest": report.digest, "mediaType": report.media_type,
                "blobsUploaded": report.stats.blobs_uploaded, "blobsSkipped": report.stats.blobs_skipped,
                "blobBytesSent": report.stats.blob_bytes_sent}))
        }
        Image::Tag { image, tags } => {
            let reference: Reference = image.parse()?;
            let repo = repository_of(&azure, &reference)?;
            let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
            transfer
                .tag(&repo, reference.manifest_reference(), &tags)
                .await?;
            Ok(())
        }
        Image::Copy {
            source,
            destination,
        } => {
            let source: Reference = source.parse()?;
            let destination: Reference = destination.parse()?;
            let from = repository_of(&azure, &source)?;
            let to = repository_of(&azure, &destination)?;
            let tags: Vec<&str> = destination.tag().into_iter().collect();
            let report = transfer
                .copy(
                    &from,
                    source.manifest_reference(),
                    &Destination::Registry(to),
                    &tags,
                )
                .await?;
            out.emit(json!({"digest": report.digest, "blobsUploaded": report.stats.blobs_uploaded,
                "blobsSkipped": report.stats.blobs_skipped, "blobsMounted": report.stats.blobs_mounted}))
        }
        Image::Ls { repository } => {
            let reference: Reference = repository.parse()?;
            let repo = repository_of(&azure, &reference)?;
            out.emit(repo.tags(None).await?)
        }
    }
}
