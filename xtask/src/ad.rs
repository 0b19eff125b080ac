//! `ad sp create-for-rbac` and `role assignment create` (az's habits over
//! `studio_azure_auth::{graph, rbac}`).

use std::sync::Arc;

use anyhow::Result;
use serde_json::json;
use studio_azure_auth::arm::{ArmClient, ArmClientOptions};
use studio_azure_auth::graph::{self, CreateForRbac};
use studio_azure_auth::rbac::{self, AssignmentOutcome, AssignmentRetry, PrincipalType};

use crate::azure::Azure;
use crate::output::Output;

/// A client for Microsoft Graph (its scope from the cloud, with `MICROSOFT_GRAPH_AUDIENCE`).
fn graph_client(azure: &Azure) -> Result<ArmClient> {
    Ok(ArmClient::with_endpoint(
        azure.cloud.graph.clone(),
        &azure.cloud.graph_scope(),
        azure.credential()?,
        ArmClientOptions {
            transport: azure.transport.clone(),
            ..Default::default()
        },
    )?)
}

/// The wait between role assignment attempts while a new principal replicates, in
/// milliseconds: `STUDIO_ROLE_RETRY_DELAY_MS` (default 5000, az's). Test rigs set it low.
pub const ROLE_RETRY_DELAY_VAR: &str = "STUDIO_ROLE_RETRY_DELAY_MS";

/// Prints each replication retry, as az does while the new principal reaches ARM.
pub fn retry_progress() -> Result<AssignmentRetry> {
    let mut retry = AssignmentRetry {
        progress: Some(Arc::new(|attempt, of| {
            eprintln!("Retrying role assignment creation: {attempt}/{of}");
        })),
        ..Default::default()
    };
    if let Some(delay) = crate::azure::millis_from_env(ROLE_RETRY_DELAY_VAR)? {
        retry.delay = delay;
    }
    Ok(retry)
}

fn outcome_json(outcome: &AssignmentOutcome) -> serde_json::Value {
    match outcome {
        AssignmentOutcome::Created {
            assignment,
            attempts,
        } => {
            json!({"id": assignment.id, "name": assignment.name, "created": true, "attempts": attempts})
        }
        AssignmentOutcome::AlreadyExists { attempts } => {
            json!({"created": false, "alreadyExists": true, "attempts": attempts})
        }
    }
}

/// `ad`.
#[derive(clap::Args)]
pub struct AdArgs {
    #[command(subcommand)]
    command: Ad,
}

#[derive(clap::Subcommand)]
enum Ad {
    /// Service principals.
    Sp {
        #[command(subcommand)]
        command: Sp,
    },
}

#[derive(clap::Subcommand)]
enum Sp {
    /// Create an application, its service principal and a password; assign a role at each
    /// scope (retrying while the principal replicates). Prints the password once.
    #[command(
        after_help = "Example:\n  cargo xtask ad sp create-for-rbac --name studio-runner --role Contributor --scopes /subscriptions/<id>/resourceGroups/studio"
    )]
    CreateForRbac {
        /// The display name.
        #[arg(short, long)]
        name: String,
        /// The role to assign (name or id).
        #[arg(long)]
        role: Option<String>,
        /// The scopes to assign it at.
        #[arg(long, num_args = 1..)]
        scopes: Vec<String>,
        /// The tenant named in the output (default: AZURE_TENANT_ID).
        #[arg(long)]
        tenant: Option<String>,
    },
}

pub async fn ad(args: AdArgs, out: &Output) -> Result<()> {
    let azure = Azure::from_env()?;
    match args.command {
        Ad::Sp {
            command:
                Sp::CreateForRbac {
                    name,
                    role,
                    scopes,
                    tenant,
                },
        } => {
            let request = CreateForRbac {
                display_name: name,
                role,
                scopes,
                tenant: tenant
                    .or_else(|| std::env::var("AZURE_TENANT_ID").ok())
                    .unwrap_or_default(),
                assignment_retry: retry_progress()?,
                ..Default::default()
            };
            let created =
                graph::create_for_rbac(&graph_client(&azure)?, &azure.arm()?, &request).await?;
            out.emit(created)
        }
    }
}

/// `role`.
#[derive(clap::Args)]
pub struct RoleArgs {
    #[command(subcommand)]
    command: Role,
}

#[derive(clap::Subcommand)]
enum Role {
    /// Role assignments.
    Assignment {
        #[command(subcommand)]
        command: Assignment,
    },
}

#[derive(clap::Subcommand)]
enum Assignment {
    /// Assign a role to a principal (object id) at a scope.
    #[command(
        after_help = "Example:\n  cargo xtask role assignment create --role AcrPull --assignee <object id> --scope /subscriptions/<id>/resourceGroups/studio/providers/Microsoft.ContainerRegistry/registries/studioml"
    )]
    Create {
        /// The role (name or id).
        #[arg(long)]
        role: String,
        /// The principal's object id.
        #[arg(long)]
        assignee: String,
        /// The scope.
        #[arg(long)]
        scope: String,
        /// User, Group or ServicePrincipal.
        #[arg(long, default_value = "ServicePrincipal")]
        assignee_principal_type: String,
    },
}

pub async fn role(args: RoleArgs, out: &Output) -> Result<()> {
    let azure = Azure::from_env()?;
    let Role::Assignment {
        command:
            Assignment::Create {
                role,
                assignee,
                scope,
                assignee_principal_type,
            },
    } = args.command;
    let principal_type = match assignee_principal_type.to_ascii_lowercase().as_str() {
        "user" => PrincipalType::User,
        "group" => PrincipalType::Group,
        "serviceprincipal" => PrincipalType::ServicePrincipal,
        other => {
            anyhow::bail!("--assignee-principal-type {other}: use User, Group or ServicePrincipal")
        }
    };
    let arm = azure.arm()?;
    let definition = rbac::find_role(&arm, &scope, &role).await?;
    let outcome = rbac::assign_role(
        &arm,
        &scope,
        &definition.id,
        &assignee,
        principal_type,
        &retry_progress()?,
    )
    .await?;
    out.emit(outcome_json(&outcome))
}
