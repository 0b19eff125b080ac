//! Tokens for the account of an earlier device login, without asking the person again.
//!
//! [`CachedLoginCredential`] reads the [`TokenCache`] that a
//! [`DeviceCodeCredential`](super::device_code::DeviceCodeCredential) wrote (normally
//! `cargo xtask login`), hands out cached access tokens until 5 minutes before they expire, and
//! otherwise redeems the cached refresh token for a token of the requested audience (ARM,
//! Graph, ACR, …). With no cached login it fails with
//! [`Error::CredentialUnavailable`] saying to run
//! `cargo xtask login`.
//!
//! ```no_run
//! use azure_core::credentials::TokenCredential;
//! use studio_azure_auth::{cache::TokenCache, store::ConfigDir};
//! use studio_azure_auth::credential::cached::{CachedLoginCredential, CachedLoginOptions};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let cache = TokenCache::in_dir(ConfigDir::from_env()?);
//! let credential = CachedLoginCredential::new(cache, CachedLoginOptions::default())?;
//! let token = credential.get_token(&["https://management.azure.com/.default"], None).await?;
//! # drop(token);
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::time::Duration;
use url::Url;

use crate::Error;
use crate::cache::{Account, TokenCache};
use crate::cloud::Cloud;
use crate::oauth::{self, AZURE_CLI_CLIENT_ID, Endpoints, Reply, TokenResponse};
use crate::transport::{TransportOptions, http_client};

/// The name a chain gives this credential.
pub const NAME: &str = "cached login";

/// Which cached login to use.
#[derive(Clone, Debug)]
pub struct CachedLoginOptions {
    /// The cloud whose logins count (by authority host).
    pub cloud: Cloud,
    /// The client the login was made with; default: the Azure CLI's.
    pub client_id: String,
    /// Only logins to this tenant (as it was requested at login); default: any.
    pub tenant_id: Option<String>,
    /// Only this account (sign-in name, case-insensitive); default: the most recent login.
    pub username: Option<String>,
    /// How to build the HTTP client.
    pub transport: TransportOptions,
}

impl Default for CachedLoginOptions {
    fn default() -> Self {
        Self {
            cloud: Cloud::default(),
            client_id: AZURE_CLI_CLIENT_ID.to_owned(),
            tenant_id: None,
            username: None,
            transport: TransportOptions::default(),
        }
    }
}

/// Serves tokens for the account of an earlier device login, refreshing them silently.
pub struct CachedLoginCredential {
    http: reqwest::Client,
    cache: TokenCache,
    options: CachedLoginOptions,
}

impl fmt::Debug for CachedLoginCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedLoginCredential")
            .field("cache", &self.cache)
            .field("authority", &self.options.cloud.authority_host.as_str())
            .field("client_id", &self.options.client_id)
            .field("tenant_id", &self.options.tenant_id)
            .field("username", &self.options.username)
            .finish()
    }
}

impl CachedLoginCredential {
    /// A credential reading `cache`. Nothing is read until the first token is asked for.
    pub fn new(cache: TokenCache, options: CachedLoginOptions) -> Result<Arc<Self>, Error> {
        if let Some(tenant) = &options.tenant_id {
            oauth::validate_tenant(tenant)?;
        }
        Ok(Arc::new(Self {
            http: http_client(&options.transport)?,
            cache,
            options,
        }))
    }

    /// The cached account this credential would use, if any.
    pub async fn account(&self) -> Result<Option<Account>, Error> {
        let authority = self.options.cloud.authority_host.as_str();
        Ok(self.cache.accounts().await?.into_iter().find(|a| {
            a.authority == authority
                && a.client_id == self.options.client_id
                && self
                    .options
                    .tenant_id
                    .as_ref()
                    .is_none_or(|t| &a.tenant == t)
                && self
                    .options
                    .username
                    .as_ref()
                    .is_none_or(|u| a.username.eq_ignore_ascii_case(u))
        }))
    }

    /// A token for `scopes`, with the crate's typed error.
    #[tracing::instrument(name = "cached_login.token", skip_all, fields(scopes = ?scopes))]
    pub async fn token(&self, scopes: &[&str]) -> Result<AccessToken, Error> {
        let scopes = oauth::validate_scopes(scopes)?;
        let Some(account) = self.account().await? else {
            let mut reason = format!("no device login is cached in {}", self.cache.describe());
            if let Some(u) = &self.options.username {
                reason.push_str(&format!(" for {u}"));
            }
            reason.push_str(": run `cargo xtask login`");
            return Err(Error::CredentialUnavailable {
                credential: NAME.to_owned(),
                reason,
            });
        };
        silent_token(&self.http, &self.cache, &account, &scopes).await
    }
}

#[async_trait::async_trait]
impl TokenCredential for CachedLoginCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        self.token(scopes).await.map_err(super::to_azure_error)
    }
}

/// The scopes as one cache key.
pub(crate) fn scope_key(scopes: &[String]) -> String {
    let mut sorted = scopes.to_vec();
    sorted.sort();
    sorted.dedup();
    sorted.join(" ")
}

/// An access token from a token response, expiring `expires_in` after `now`.
pub(crate) fn access_token(response: &TokenResponse, cache: &TokenCache) -> AccessToken {
    let lifetime = Duration::seconds(i64::try_from(response.expires_in).unwrap_or(i64::MAX / 2));
    AccessToken::new(response.access_token.clone(), cache.now() + lifetime)
}

/// A token for `account` without asking anyone: the cached access token while it is fresh,
/// else one redeemed with the cached refresh token (and cached in turn).
#[tracing::instrument(name = "silent_token", skip_all, fields(tenant = %account.tenant, client_id = %account.client_id))]
pub(crate) async fn silent_token(
    http: &reqwest::Client,
    cache: &TokenCache,
    account: &Account,
    scopes: &[String],
) -> Result<AccessToken, Error> {
    let key = scope_key(scopes);
    if let Some(token) = cache.access_token(account, &key).await? {
        tracing::debug!("using the cached access token");
        return Ok(token);
    }
    let Some(refresh_token) = cache.refresh_token(account).await? else {
        return Err(Error::CredentialUnavailable {
            credential: NAME.to_owned(),
            reason: format!(
                "the login of {} has no refresh token: run `cargo xtask login`",
                account.username
            ),
        });
    };
    let authority = Url::parse(&account.authority).map_err(|e| Error::InvalidEndpoint {
        what: "cached authority".to_owned(),
        value: account.authority.clone(),
        reason: e.to_string(),
    })?;
    let endpoints = Endpoints::at(&authority, &account.tenant)?;
    let scope = format!("{} {}", scopes.join(" "), oauth::USER_SIGN_IN_SCOPES);
    tracing::debug!(endpoint = %endpoints.token, "refreshing the access token");
    let reply = oauth::post_form::<TokenResponse>(
        http,
        &endpoints.token,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &account.client_id),
            ("refresh_token", refresh_token.secret()),
            ("scope", &scope),
        ],
    )
    .await?;
    match reply {
        Reply::Ok(response) => {
            let token = access_token(&response, cache);
            let rotated = response
                .refresh_token
                .filter(|new| new.secret() != refresh_token.secret());
            cache
                .store_access_token(account, &key, &token, rotated)
                .await?;
            tracing::info!("access token refreshed with the cached login");
            Ok(token)
        }
        Reply::Refused(refused)
            if matches!(
                refused.error.as_str(),
                "invalid_grant" | "interaction_required"
            ) =>
        {
            Err(Error::LoginExpired {
                account: account.username.clone(),
                response: Box::new(refused),
            })
        }
        Reply::Refused(refused) => Err(Error::Entra(Box::new(refused))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_keys_ignore_order_and_duplicates() {
        let a = scope_key(&["b".into(), "a".into(), "b".into()]);
        assert_eq!(a, "a b");
    }

    #[tokio::test]
    async fn without_a_login_the_error_says_how_to_log_in() {
        let cache = TokenCache::in_memory();
        let credential = CachedLoginCredential::new(cache, CachedLoginOptions::default()).unwrap();
        let err = credential
            .get_token(&["https://management.azure.com/.default"], None)
            .await
            .unwrap_err();
        let ours = err.downcast_ref::<Error>().unwrap();
        assert!(
            matches!(ours, Error::CredentialUnavailable { credential, .. } if credential == NAME),
            "{ours:?}"
        );
        assert!(err.to_string().contains("cargo xtask login"), "{err}");
    }
}
