//! The account signed in to the Azure CLI: a thin wrapper around
//! [`azure_identity::AzureCliCredential`], which runs
//! `az account get-access-token --scope …`.
//!
//! The wrapper makes it fit a chain: when `az` is not on the `PATH`, or `az` says nobody is
//! logged in, it fails with [`Error::CredentialUnavailable`]
//! so that a chain skips it and says why. The `PATH` can be given explicitly
//! ([`AzureCliOptions::path`]) instead of being read from the process environment.
//!
//! ```no_run
//! use azure_core::credentials::TokenCredential;
//! use studio_azure_auth::credential::azure_cli::{AzureCliCredential, AzureCliOptions};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let credential = AzureCliCredential::new(AzureCliOptions::default())?;
//! let token = credential.get_token(&["https://management.azure.com/.default"], None).await?;
//! # drop(token);
//! # Ok(()) }
//! ```

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Output;
use std::sync::Arc;

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};

use crate::Error;
use crate::oauth;

/// The name a chain gives this credential.
pub const NAME: &str = "Azure CLI";

/// How to call the Azure CLI.
#[derive(Clone, Debug, Default)]
pub struct AzureCliOptions {
    /// Ask `az` for a token of this tenant; default: the CLI's current tenant.
    pub tenant_id: Option<String>,
    /// Ask `az` for the account of this subscription (name or id); default: the current one.
    pub subscription: Option<String>,
    /// The search path for `az` (as in `PATH`); default: the process's `PATH`.
    pub path: Option<OsString>,
}

/// Tokens from the Azure CLI's login.
pub struct AzureCliCredential {
    inner: Arc<azure_identity::AzureCliCredential>,
    path: Option<OsString>,
}

impl fmt::Debug for AzureCliCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureCliCredential")
            .field("inner", &self.inner)
            .field("path", &self.path)
            .finish()
    }
}

/// Runs `az` with an explicit `PATH`.
#[derive(Debug)]
struct PathExecutor {
    path: OsString,
}

#[async_trait::async_trait]
impl azure_identity::Executor for PathExecutor {
    async fn run(&self, program: &OsStr, args: &[&OsStr]) -> std::io::Result<Output> {
        tokio::process::Command::new(program)
            .args(args)
            .env("PATH", &self.path)
            .kill_on_drop(true)
            .output()
            .await
    }
}

impl AzureCliCredential {
    /// A credential calling `az` as `options` say. Nothing runs until a token is asked for.
    pub fn new(options: AzureCliOptions) -> Result<Arc<Self>, Error> {
        if let Some(tenant) = &options.tenant_id {
            oauth::validate_tenant(tenant)?;
        }
        let executor = options
            .path
            .clone()
            .map(|path| Arc::new(PathExecutor { path }) as Arc<dyn azure_identity::Executor>);
        let inner = azure_identity::AzureCliCredential::new(Some(
            azure_identity::AzureCliCredentialOptions {
                subscription: options.subscription,
                tenant_id: options.tenant_id,
                executor,
            },
        ))
        .map_err(|e| Error::CredentialUnavailable {
            credential: NAME.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Arc::new(Self {
            inner,
            path: options.path,
        }))
    }

    /// Where `az` is, or `None` if it is not on the search path.
    pub fn find_az(&self) -> Option<PathBuf> {
        let path = self
            .path
            .clone()
            .or_else(|| std::env::var_os("PATH"))
            .unwrap_or_default();
        find_program("az", &path)
    }

    /// A token for `scopes`, with the crate's typed error (`az` failures are kept as the
    /// Azure CLI reported them).
    #[tracing::instrument(name = "azure_cli.token", skip_all, fields(scopes = ?scopes))]
    pub async fn token(&self, scopes: &[&str]) -> Result<AccessToken, azure_core::Error> {
        let checked = oauth::validate_scopes(scopes).map_err(super::to_azure_error)?;
        let Some(az) = self.find_az() else {
            return Err(super::to_azure_error(Error::CredentialUnavailable {
                credential: NAME.to_owned(),
                reason: "`az` was not found on PATH".to_owned(),
            }));
        };
        tracing::debug!(az = %az.display(), "asking the Azure CLI for a token");
        let scopes: Vec<&str> = checked.iter().map(String::as_str).collect();
        match self.inner.get_token(&scopes, None).await {
            Ok(token) => Ok(token),
            Err(e) => {
                let message = e.to_string();
                if let Some(reason) = not_logged_in(&message) {
                    Err(super::to_azure_error(Error::CredentialUnavailable {
                        credential: NAME.to_owned(),
                        reason,
                    }))
                } else {
                    Err(e)
                }
            }
        }
    }
}

/// `az`'s complaint that nobody is logged in (or that it is missing after all), as a reason.
fn not_logged_in(message: &str) -> Option<String> {
    if message.contains("az login") {
        Some("nobody is logged in to the Azure CLI (`az login`)".to_owned())
    } else if message.contains("not found on PATH") {
        Some("`az` was not found on PATH".to_owned())
    } else {
        None
    }
}

fn find_program(name: &str, path: &OsStr) -> Option<PathBuf> {
    std::env::split_paths(path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(name))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

#[async_trait::async_trait]
impl TokenCredential for AzureCliCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        self.token(scopes).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_found_only_when_executable() {
        let tmp = tempfile::tempdir().unwrap();
        let az = tmp.path().join("az");
        std::fs::write(&az, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o644)).unwrap();
        let path = std::env::join_paths(["/nonexistent".as_ref(), tmp.path()]).unwrap();
        assert_eq!(find_program("az", &path), None);
        std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_program("az", &path), Some(az));
        assert_eq!(find_program("az", OsStr::new("")), None);
    }

    #[test]
    fn az_login_complaints_mean_not_configured() {
        assert!(not_logged_in("ERROR: Please run 'az login' to setup account.").is_some());
        assert!(not_logged_in("az not found on PATH").is_some());
        assert!(not_logged_in("AADSTS700082: The refresh token has expired").is_none());
    }

    #[tokio::test]
    async fn without_az_on_the_path_it_is_not_configured() {
        let tmp = tempfile::tempdir().unwrap();
        let credential = AzureCliCredential::new(AzureCliOptions {
            path: Some(tmp.path().as_os_str().to_owned()),
            ..Default::default()
        })
        .unwrap();
        let err = credential
            .get_token(&["https://management.azure.com/.default"], None)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err.downcast_ref::<Error>(),
                Some(Error::CredentialUnavailable { .. })
            ),
            "{err:?}"
        );
    }
}
