//! Role-based access control: find a role, assign it to a principal at a scope.
//!
//! Role assignment is `PUT {scope}/providers/Microsoft.Authorization/roleAssignments/{guid}`
//! with `roleDefinitionId`, `principalId` and `principalType`. A principal created moments ago
//! may not have replicated yet: ARM answers `PrincipalNotFound` ("does not exist in the
//! directory"), so the assignment is retried, 36 times 5 s apart by default, as az does
//! ("Retrying role assignment creation: n/36"). An identical assignment that already exists
//! (409 `RoleAssignmentExists`) counts as success.
//!
//! ```no_run
//! # async fn demo(arm: studio_azure_auth::arm::ArmClient) -> Result<(), studio_azure_auth::Error> {
//! use studio_azure_auth::rbac::{self, AssignmentRetry, PrincipalType};
//!
//! let scope = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/studio";
//! let role = rbac::find_role(&arm, scope, "AcrPull").await?;
//! let outcome = rbac::assign_role(
//!     &arm, scope, &role.id, "11111111-1111-1111-1111-111111111111",
//!     PrincipalType::ServicePrincipal, &AssignmentRetry::default(),
//! ).await?;
//! println!("{outcome:?}");
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use azure_core::http::Method;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Error;
use crate::arm::ArmClient;

/// The Microsoft.Authorization API version used for role definitions and assignments.
pub const AUTHORIZATION_API_VERSION: &str = "2022-04-01";

/// The kind of principal a role is assigned to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PrincipalType {
    /// A user.
    User,
    /// A group.
    Group,
    /// A service principal (an application or a managed identity).
    ServicePrincipal,
    /// A foreign group.
    ForeignGroup,
    /// A device.
    Device,
}

impl PrincipalType {
    /// The name ARM uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "User",
            Self::Group => "Group",
            Self::ServicePrincipal => "ServicePrincipal",
            Self::ForeignGroup => "ForeignGroup",
            Self::Device => "Device",
        }
    }
}

/// A role definition.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct RoleDefinition {
    /// The full id, `/…/providers/Microsoft.Authorization/roleDefinitions/<guid>`.
    pub id: String,
    /// The GUID.
    #[serde(default)]
    pub name: String,
    /// The role's properties.
    #[serde(default)]
    pub properties: RoleDefinitionProperties,
}

/// The parts of a role definition's properties the toolkit uses.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleDefinitionProperties {
    /// e.g. `AcrPull`.
    #[serde(default)]
    pub role_name: String,
    /// `BuiltInRole` or `CustomRole`.
    #[serde(default, rename = "type")]
    pub role_type: String,
    /// What the role allows.
    #[serde(default)]
    pub description: String,
}

/// A role assignment as ARM returns it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct RoleAssignment {
    /// The full id.
    pub id: String,
    /// The assignment's GUID.
    #[serde(default)]
    pub name: String,
    /// Its properties.
    #[serde(default)]
    pub properties: RoleAssignmentProperties,
}

/// A role assignment's properties.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleAssignmentProperties {
    /// The role definition id.
    #[serde(default)]
    pub role_definition_id: String,
    /// The principal's object id.
    #[serde(default)]
    pub principal_id: String,
    /// The principal's type.
    #[serde(default)]
    pub principal_type: String,
    /// The scope.
    #[serde(default)]
    pub scope: String,
}

/// What [`assign_role`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AssignmentOutcome {
    /// A new assignment, after this many attempts.
    Created {
        /// The assignment.
        assignment: RoleAssignment,
        /// Attempts made (1 when the principal had replicated).
        attempts: u32,
    },
    /// The same assignment already existed (409 `RoleAssignmentExists`).
    AlreadyExists {
        /// Attempts made.
        attempts: u32,
    },
}

/// A callback told `(attempt, of)` before each retry.
pub type RetryProgressFn = Arc<dyn Fn(u32, u32) + Send + Sync>;

/// How [`assign_role`] waits for a new principal to replicate.
#[derive(Clone)]
pub struct AssignmentRetry {
    /// Retries after the first attempt (default 36).
    pub retries: u32,
    /// The wait between attempts (default 5 s).
    pub delay: Duration,
    /// Told `(n, retries)` before retry n, e.g. to print "Retrying role assignment creation: n/36".
    pub progress: Option<RetryProgressFn>,
}

impl Default for AssignmentRetry {
    fn default() -> Self {
        Self {
            retries: 36,
            delay: Duration::from_secs(5),
            progress: None,
        }
    }
}

impl fmt::Debug for AssignmentRetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AssignmentRetry")
            .field("retries", &self.retries)
            .field("delay", &self.delay)
            .finish_non_exhaustive()
    }
}

fn scope_path(scope: &str) -> String {
    format!("/{}", scope.trim_matches('/'))
}

/// Finds a role by GUID, by full definition id, or by name (`AcrPull`, `Owner`, …) at `scope`.
pub async fn find_role(arm: &ArmClient, scope: &str, role: &str) -> Result<RoleDefinition, Error> {
    let scope = scope_path(scope);
    if role.starts_with('/') {
        return arm.get(role, AUTHORIZATION_API_VERSION).await;
    }
    if uuid::Uuid::parse_str(role).is_ok() {
        let path = format!("{scope}/providers/Microsoft.Authorization/roleDefinitions/{role}");
        return arm.get(&path, AUTHORIZATION_API_VERSION).await;
    }
    if role.contains('\'') {
        return Err(Error::RoleNotFound {
            role: role.to_owned(),
            scope,
        });
    }
    let mut url = arm.url(
        &format!("{scope}/providers/Microsoft.Authorization/roleDefinitions"),
        AUTHORIZATION_API_VERSION,
    )?;
    url.query_pairs_mut()
        .append_pair("$filter", &format!("roleName eq '{role}'"));
    let path_and_query = format!("{}?{}", url.path(), url.query().unwrap_or_default());
    let found: Vec<RoleDefinition> = arm.list(&path_and_query, AUTHORIZATION_API_VERSION).await?;
    found
        .into_iter()
        .find(|d| d.properties.role_name.eq_ignore_ascii_case(role))
        .ok_or(Error::RoleNotFound {
            role: role.to_owned(),
            scope,
        })
}

/// Assigns `role_definition_id` to `principal_id` at `scope` under a new GUID, retrying while
/// the principal replicates. See the module docs.
pub async fn assign_role(
    arm: &ArmClient,
    scope: &str,
    role_definition_id: &str,
    principal_id: &str,
    principal_type: PrincipalType,
    retry: &AssignmentRetry,
) -> Result<AssignmentOutcome, Error> {
    let request = RoleAssignmentRequest {
        scope: scope.to_owned(),
        name: uuid::Uuid::new_v4().to_string(),
        role_definition_id: role_definition_id.to_owned(),
        principal_id: principal_id.to_owned(),
        principal_type,
        api_version: AUTHORIZATION_API_VERSION.to_owned(),
    };
    assign_role_with(arm, &request, retry).await
}

/// One role assignment to make; see [`assign_role_with`].
#[derive(Clone, Debug)]
pub struct RoleAssignmentRequest {
    /// The scope, e.g. `/subscriptions/<id>/resourceGroups/<rg>`.
    pub scope: String,
    /// The assignment's GUID (a new one for a new assignment).
    pub name: String,
    /// The role definition's full id.
    pub role_definition_id: String,
    /// The principal's object id.
    pub principal_id: String,
    /// The principal's type.
    pub principal_type: PrincipalType,
    /// The Microsoft.Authorization API version (default [`AUTHORIZATION_API_VERSION`]).
    pub api_version: String,
}

/// [`assign_role`] with every part of the request chosen by the caller.
pub async fn assign_role_with(
    arm: &ArmClient,
    request: &RoleAssignmentRequest,
    retry: &AssignmentRetry,
) -> Result<AssignmentOutcome, Error> {
    let path = format!(
        "{}/providers/Microsoft.Authorization/roleAssignments/{}",
        scope_path(&request.scope),
        request.name
    );
    let body = assignment_body(
        &request.role_definition_id,
        &request.principal_id,
        request.principal_type,
    );
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        match arm
            .send(Method::Put, &path, &request.api_version, Some(&body))
            .await
        {
            Ok(response) => {
                let assignment: RoleAssignment = response.json()?;
                return Ok(AssignmentOutcome::Created {
                    assignment,
                    attempts: attempt,
                });
            }
            Err(Error::Arm {
                status: 409, code, ..
            }) if code == "RoleAssignmentExists" => {
                return Ok(AssignmentOutcome::AlreadyExists { attempts: attempt });
            }
            Err(e) if is_replication_delay(&e) && attempt <= retry.retries => {
                if let Some(progress) = &retry.progress {
                    progress(attempt, retry.retries);
                }
                tracing::info!(
                    "Retrying role assignment creation: {attempt}/{}",
                    retry.retries
                );
                tokio::time::sleep(retry.delay).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Whether `e` says the principal has not replicated to ARM yet.
pub fn is_replication_delay(e: &Error) -> bool {
    match e {
        Error::Arm { code, message, .. } => {
            code == "PrincipalNotFound" || message.contains("does not exist in the directory")
        }
        _ => false,
    }
}

/// The request body [`assign_role`] sends, for callers that batch or log assignments.
pub fn assignment_body(
    role_definition_id: &str,
    principal_id: &str,
    principal_type: PrincipalType,
) -> Value {
    json!({
        "properties": {
            "roleDefinitionId": role_definition_id,
            "principalId": principal_id,
            "principalType": principal_type.as_str(),
        }
    })
}
