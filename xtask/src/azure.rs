//! What every Azure command needs: the cloud (with the `AZURE_*_ENDPOINT` overrides), the
//! transport (`SSL_CERT_FILE`), the config directory (`STUDIO_CONFIG_DIR`), the default
//! credential chain and an ARM client.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use azure_core::credentials::TokenCredential;
use studio_azure_auth::arm::{ArmClient, ArmClientOptions};
use studio_azure_auth::cache::TokenCache;
use studio_azure_auth::cloud::Cloud;
use studio_azure_auth::credential::saved::SavedServicePrincipal;
use studio_azure_auth::credential::{
    CachedLoginOptions, DefaultCredential, DefaultCredentialOptions,
};
use studio_azure_auth::store::ConfigDir;
use studio_azure_auth::transport::TransportOptions;

/// How long to wait between polls of a long-running ARM operation (registry create, cluster
/// deployment) when ARM does not say, in milliseconds: `STUDIO_POLL_INTERVAL_MS` (default 5000,
/// az's habit). Test rigs set it low.
pub const POLL_INTERVAL_VAR: &str = "STUDIO_POLL_INTERVAL_MS";

/// A duration in milliseconds from the environment variable `var`, if set.
pub fn millis_from_env(var: &str) -> Result<Option<Duration>> {
    match std::env::var(var).ok().filter(|v| !v.trim().is_empty()) {
        None => Ok(None),
        Some(v) => {
            let ms: u64 = v
                .trim()
                .parse()
                .with_context(|| format!("{var}={v}: expected milliseconds"))?;
            Ok(Some(Duration::from_millis(ms)))
        }
    }
}

/// The environment of one CLI run.
pub struct Azure {
    pub cloud: Cloud,
    pub transport: TransportOptions,
    pub dir: ConfigDir,
}

impl Azure {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self> {
        Ok(Self {
            cloud: Cloud::from_env(None)?,
            transport: TransportOptions::default(),
            dir: ConfigDir::from_env()?,
        })
    }

    /// The token cache in the config directory.
    pub fn cache(&self) -> TokenCache {
        TokenCache::in_dir(self.dir.clone())
    }

    /// The scope of ARM tokens (the cloud's, with `AZURE_RESOURCE_MANAGER_AUDIENCE`).
    pub fn arm_scope(&self) -> String {
        self.cloud.resource_manager_scope()
    }

    /// The credential: `AZURE_CLIENT_*` when set, else the service principal of `login
    /// --service-principal`, else the default chain (environment → cached login → Azure CLI).
    pub fn credential(&self) -> Result<Arc<dyn TokenCredential>> {
        let environment = std::env::var_os("AZURE_CLIENT_ID").is_some_and(|v| !v.is_empty());
        if !environment && let Some(login) = SavedServicePrincipal::load(&self.dir)? {
            tracing::debug!(client_id = %login.client_id, "using the saved service principal login");
            return Ok(login.credential(&self.cloud, &self.transport)?);
        }
        let options = DefaultCredentialOptions {
            cache: Some(self.cache()),
            cached_login: CachedLoginOptions {
                cloud: self.cloud.clone(),
                transport: self.transport.clone(),
                ..Default::default()
            },
            ..Default::default()
        };
        Ok(Arc::new(DefaultCredential::new(options)?))
    }

    /// An ARM client with the default credential.
    pub fn arm(&self) -> Result<ArmClient> {
        let mut options = ArmClientOptions {
            transport: self.transport.clone(),
            ..Default::default()
        };
        if let Some(interval) = millis_from_env(POLL_INTERVAL_VAR)? {
            options.poll_interval = interval;
        }
        Ok(ArmClient::with_endpoint(
            self.cloud.resource_manager.clone(),
            &self.arm_scope(),
            self.credential()?,
            options,
        )?)
    }

    /// The subscription to work in: `--subscription`, else the default one (`account set`).
    pub fn subscription(&self, flag: Option<&str>) -> Result<String> {
        if let Some(s) = flag {
            return Ok(s.to_owned());
        }
        let default = studio_azure_auth::subscription::default_subscription(&self.dir)?
            .context("no subscription chosen: run `cargo xtask account set --subscription <id or name>` or pass --subscription")?;
        Ok(default.subscription_id)
    }
}
