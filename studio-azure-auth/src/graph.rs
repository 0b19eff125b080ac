//! Microsoft Graph: service principals for automation, as `az ad sp create-for-rbac` makes them.
//!
//! [`create_for_rbac`] creates an application, its service principal and a password credential
//! through Graph, then assigns a role at each scope through ARM (waiting for the new principal to
//! replicate, see [`rbac`](crate::rbac::assign_role)). It returns what az prints: `appId`, `displayName`,
//! `password` and `tenant`. Graph's own replication delay (a service principal for an
//! application that Graph does not see yet) is retried too.
//!
//! ```no_run
//! # async fn demo(graph: studio_azure_auth::arm::ArmClient, arm: studio_azure_auth::arm::ArmClient) -> Result<(), studio_azure_auth::Error> {
//! use studio_azure_auth::graph::{CreateForRbac, create_for_rbac};
//!
//! let request = CreateForRbac {
//!     display_name: "studio-runner".into(),
//!     role: Some("Owner".into()),
//!     scopes: vec!["/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/studio".into()],
//!     tenant: "72f988bf-86f1-41af-91ab-2d7cd011db47".into(),
//!     ..Default::default()
//! };
//! let sp = create_for_rbac(&graph, &arm, &request).await?;
//! println!("{}", sp.app_id);
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::Method;
use serde::Serialize;
use serde_json::{Value, json};

use crate::Error;
use crate::arm::{ArmClient, ArmClientOptions};
use crate::cloud::Cloud;
use crate::rbac::{self, AssignmentRetry, PrincipalType};
use crate::redact::Redacted;

/// A Graph client: the ARM client's pipeline pointed at `cloud.graph` with Graph tokens
/// ([`Cloud::graph_scope`]).
pub fn graph_client(
    cloud: &Cloud,
    credential: Arc<dyn TokenCredential>,
    options: ArmClientOptions,
) -> Result<ArmClient, Error> {
    ArmClient::with_endpoint(
        cloud.graph.clone(),
        &cloud.graph_scope(),
        credential,
        options,
    )
}

/// What to create.
#[derive(Clone, Debug)]
pub struct CreateForRbac {
    /// The application's display name.
    pub display_name: String,
    /// The role to assign at each scope (by name or id); `None` assigns nothing.
    pub role: Option<String>,
    /// The scopes, e.g. `/subscriptions/<id>/resourceGroups/<rg>`.
    pub scopes: Vec<String>,
    /// The tenant, returned as `tenant`.
    pub tenant: String,
    /// How long the password is valid.
    pub password_lifetime: Duration,
    /// How to wait for the principal to replicate to ARM.
    pub assignment_retry: AssignmentRetry,
    /// Attempts to create the service principal while Graph replicates the application.
    pub graph_retries: u32,
    /// The wait between those attempts.
    pub graph_retry_delay: Duration,
}

impl Default for CreateForRbac {
    fn default() -> Self {
        Self {
            display_name: String::new(),
            role: None,
            scopes: Vec::new(),
            tenant: String::new(),
            password_lifetime: Duration::from_secs(365 * 24 * 3600),
            assignment_retry: AssignmentRetry::default(),
            graph_retries: 10,
            graph_retry_delay: Duration::from_secs(5),
        }
    }
}

/// The new service principal's credentials, as az prints them.
#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePrincipalCredentials {
    /// The application (client) id.
    pub app_id: String,
    /// The display name.
    pub display_name: String,
    /// The password (client secret).
    #[serde(serialize_with = "serialize_secret")]
    pub password: Secret,
    /// The tenant.
    pub tenant: String,
    /// The service principal's object id (what roles are assigned to).
    #[serde(skip)]
    pub object_id: String,
}

fn serialize_secret<S: serde::Serializer>(secret: &Secret, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(secret.secret())
}

impl fmt::Debug for ServicePrincipalCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServicePrincipalCredentials")
            .field("app_id", &self.app_id)
            .field("display_name", &self.display_name)
            .field("password", &Redacted)
            .field("tenant", &self.tenant)
            .field("object_id", &self.object_id)
            .finish()
    }
}

/// Creates an application, its service principal and a password, then assigns the role at
/// every scope. See the module docs.
pub async fn create_for_rbac(
    graph: &ArmClient,
    arm: &ArmClient,
    request: &CreateForRbac,
) -> Result<ServicePrincipalCredentials, Error> {
    if request.display_name.trim().is_empty() {
        return Err(Error::InvalidArgument(
            "a service principal needs a display name".to_owned(),
        ));
    }
    if request.role.is_some() && request.scopes.is_empty() {
        return Err(Error::InvalidArgument(
            "a role needs at least one scope".to_owned(),
        ));
    }
    let role = match &request.role {
        Some(role) => Some(rbac::find_role(arm, &request.scopes[0], role).await?),
        None => None,
    };
    let app: Value = graph
        .send(
            Method::Post,
            "/v1.0/applications",
            "",
            Some(&json!({ "displayName": request.display_name })),
        )
        .await?
        .json()?;
    let app_object_id = field(&app, "id")?;
    let app_id = field(&app, "appId")?;
    tracing::info!(%app_id, "application created");

    let mut attempt = 0;
    let sp: Value = loop {
        attempt += 1;
        match graph
            .send(
                Method::Post,
                "/v1.0/servicePrincipals",
                "",
                Some(&json!({ "appId": app_id })),
            )
            .await
        {
            Ok(response) => break response.json()?,
            Err(e) if is_graph_replication_delay(&e) && attempt <= request.graph_retries => {
                tracing::info!(
                    "waiting for Graph to replicate the application ({attempt}/{})",
                    request.graph_retries
                );
                tokio::time::sleep(request.graph_retry_delay).await;
            }
            Err(e) => return Err(e),
        }
    };
    let object_id = field(&sp, "id")?;

    let end = time::OffsetDateTime::now_utc()
        + time::Duration::try_from(request.password_lifetime).unwrap_or(time::Duration::days(365));
    let end = end
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| Error::Decode {
            what: "password end date".to_owned(),
            reason: e.to_string(),
        })?;
    let password: Value = graph
        .send(
            Method::Post,
            &format!("/v1.0/applications/{app_object_id}/addPassword"),
            "",
            Some(&json!({ "passwordCredential": { "displayName": "rbac", "endDateTime": end } })),
        )
        .await?
        .json()?;
    let secret = Secret::new(field(&password, "secretText")?);

    if let Some(role) = role {
        for scope in &request.scopes {
            rbac::assign_role(
                arm,
                scope,
                &role.id,
                &object_id,
                PrincipalType::ServicePrincipal,
                &request.assignment_retry,
            )
            .await?;
        }
    }
    Ok(ServicePrincipalCredentials {
        app_id,
        display_name: request.display_name.clone(),
        password: secret,
        tenant: request.tenant.clone(),
        object_id,
    })
}

fn field(v: &Value, name: &str) -> Result<String, Error> {
    v.get(name)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| Error::Decode {
            what: "Microsoft Graph response".to_owned(),
            reason: format!("no '{name}'"),
        })
}

/// Whether `e` is Graph not seeing a just-created object yet.
pub fn is_graph_replication_delay(e: &Error) -> bool {
    match e {
        Error::Arm {
            status,
            code,
            message,
            ..
        } => {
            (*status == 404 || *status == 400)
                && (code == "Request_ResourceNotFound"
                    || message.contains("does not reference a valid application object")
                    || message.contains("does not exist"))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_new_credentials_masks_the_password() {
        let created = ServicePrincipalCredentials {
            app_id: "631a96bc-a705-4eda-9f99-fdaf9f54f6a2".to_owned(),
            display_name: "studio-ci".to_owned(),
            password: Secret::new("graph-password-value"),
            tenant: "72f988bf-86f1-41af-91ab-2d7cd011db47".to_owned(),
            object_id: "oid-1".to_owned(),
        };
        let leaks = crate::redact::debug_leaks(&created, &["graph-password-value"]);
        assert!(leaks.is_empty(), "{leaks:?}");
        let shown = format!("{created:?}");
        assert!(
            shown.contains(r#"display_name: "studio-ci", password: ***, tenant: "72f988bf"#)
                && shown.contains("oid-1"),
            "{shown}"
        );
        // Serialization (what `create-for-rbac` prints) still carries the password.
        let json = serde_json::to_value(&created).unwrap();
        assert_eq!(json["password"], "graph-password-value");
    }
}
