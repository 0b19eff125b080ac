//! Device-code sign-in (RFC 8628) against Entra ID v2: a person opens a page in any browser,
//! types a short code, and signs in; meanwhile this credential polls the token endpoint.
//!
//! The flow asks for `offline_access openid profile` besides the requested scope, so Entra
//! returns a refresh token; later tokens for other audiences (ARM, Graph, ACR) are redeemed
//! with it without asking again. The login is kept in a [`TokenCache`] (in memory by default;
//! pass [`TokenCache::in_dir`] to keep it for
//! [`CachedLoginCredential`](super::cached::CachedLoginCredential) and later runs).
//!
//! Polling follows the server: its `interval` (5 s when absent), `authorization_pending`
//! keeps polling, `slow_down` adds 5 s to every later wait. A poll that cannot reach Entra
//! (connection refused or reset) is retried at the next interval, since the person may still
//! be signing in; if the code expires while Entra stays unreachable, that network failure is
//! the error ([`Error::Http`]). A declined sign-in, an expired
//! or unknown device code and a cancelled sign-in are each their own [`Error`] variant:
//! [`DeviceCodeCredential::sign_in`] and [`DeviceCodeCredential::token`] return them
//! directly, and `get_token` carries them as the source of its `azure_core::Error`.
//!
//! ```no_run
//! use std::sync::Arc;
//! use studio_azure_auth::{cache::TokenCache, store::ConfigDir, Error};
//! use studio_azure_auth::credential::device_code::{DeviceCodeCredential, DeviceCodeOptions};
//!
//! # async fn run() -> Result<(), Error> {
//! let options = DeviceCodeOptions {
//!     cache: TokenCache::in_dir(ConfigDir::from_env()?),
//!     prompt: Some(Arc::new(|p| println!("{}", p.message))),
//!     ..Default::default()
//! };
//! let credential = DeviceCodeCredential::new(options)?;
//! let cancel = credential.cancellation_token();
//! tokio::spawn(async move {
//!     tokio::signal::ctrl_c().await.ok();
//!     cancel.cancel();
//! });
//! match credential.sign_in(&["https://management.azure.com/.default"]).await {
//!     Ok(signed_in) => println!("signed in as {}", signed_in.account.username),
//!     Err(Error::AuthorizationDeclined(_)) => println!("the sign-in was declined"),
//!     Err(Error::Cancelled) => println!("cancelled"),
//!     Err(e) => return Err(e),
//! }
//! # Ok(()) }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use tokio_util::sync::CancellationToken;

use super::cached::{access_token, scope_key, silent_token};
use crate::Error;
use crate::cache::{Account, TokenCache};
use crate::cloud::Cloud;
use crate::oauth::{
    self, AZURE_CLI_CLIENT_ID, AccountClaims, DEFAULT_TENANT, DEVICE_CODE_GRANT,
    DeviceAuthorization, Endpoints, EntraError, PollSchedule, Reply, TokenResponse,
};
use crate::redact::Redacted;
use crate::transport::{TransportOptions, http_client};

/// Receives the instruction for the person (the user code and where to enter it).
pub type PromptCallback = Arc<dyn Fn(&DeviceCodePrompt) + Send + Sync>;

/// Waits between polls; replaceable so tests can record the schedule instead of sleeping.
pub type SleepHook =
    Arc<dyn Fn(Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// What the person is asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceCodePrompt {
    /// The instruction: Entra's `message`, or one built from the URI and the code.
    pub message: String,
    /// The code to type.
    pub user_code: String,
    /// The page to type it on.
    pub verification_uri: String,
    /// The page with the code filled in, if the server offers one.
    pub verification_uri_complete: Option<String>,
    /// How long the code is valid.
    pub expires_in: Duration,
}

impl DeviceCodePrompt {
    /// The prompt for a device authorization.
    pub fn new(authorization: &DeviceAuthorization) -> Self {
        let message = authorization
            .message
            .clone()
            .filter(|m| !m.trim().is_empty())
            .unwrap_or_else(|| {
                format!(
                    "To sign in, use a web browser to open the page {} and enter the code {} to authenticate.",
                    authorization.verification_uri, authorization.user_code
                )
            });
        Self {
            message,
            user_code: authorization.user_code.clone(),
            verification_uri: authorization.verification_uri.clone(),
            verification_uri_complete: authorization.verification_uri_complete.clone(),
            expires_in: Duration::from_secs(authorization.expires_in),
        }
    }
}

/// How to sign in.
#[derive(Clone)]
pub struct DeviceCodeOptions {
    /// The cloud (its authority host); default: the public cloud.
    pub cloud: Cloud,
    /// The tenant; default `organizations` (any work or school account).
    pub tenant_id: String,
    /// The public client; default: the Azure CLI's.
    pub client_id: String,
    /// How to build the HTTP client.
    pub transport: TransportOptions,
    /// Where the login is kept; default: in memory.
    pub cache: TokenCache,
    /// Receives the instruction; default: print Entra's message to standard error.
    pub prompt: Option<PromptCallback>,
    /// Polls this often instead of the server's interval (for tests; `slow_down` still adds
    /// 5 s). Default: none, the server's `interval` or 5 s.
    pub poll_interval_override: Option<Duration>,
    /// Waits between polls; default: `tokio::time::sleep`.
    pub sleep: Option<SleepHook>,
    /// Cancels a sign-in in progress (and every later one).
    pub cancel: CancellationToken,
}

impl Default for DeviceCodeOptions {
    fn default() -> Self {
        Self {
            cloud: Cloud::default(),
            tenant_id: DEFAULT_TENANT.to_owned(),
            client_id: AZURE_CLI_CLIENT_ID.to_owned(),
            transport: TransportOptions::default(),
            cache: TokenCache::in_memory(),
            prompt: None,
            poll_interval_override: None,
            sleep: None,
            cancel: CancellationToken::new(),
        }
    }
}

impl fmt::Debug for DeviceCodeOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceCodeOptions")
            .field("authority", &self.cloud.authority_host.as_str())
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("cache", &self.cache)
            .field("custom_prompt", &self.prompt.is_some())
            .field("poll_interval_override", &self.poll_interval_override)
            .field("cancelled", &self.cancel.is_cancelled())
            .finish_non_exhaustive()
    }
}

/// A completed sign-in.
#[derive(Clone)]
pub struct SignIn {
    /// Who signed in.
    pub account: Account,
    /// The access token for the scopes asked for.
    pub token: AccessToken,
}

impl fmt::Debug for SignIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignIn")
            .field("account", &self.account)
            .field("token", &Redacted::access_token(&self.token))
            .finish()
    }
}

/// Signs a person in with a device code, then serves tokens silently from the login.
pub struct DeviceCodeCredential {
    http: reqwest::Client,
    endpoints: Endpoints,
    authority: String,
    tenant_id: String,
    client_id: String,
    cache: TokenCache,
    prompt: PromptCallback,
    poll_interval_override: Option<Duration>,
    sleep: SleepHook,
    cancel: CancellationToken,
    account: tokio::sync::Mutex<Option<Account>>,
}

impl fmt::Debug for DeviceCodeCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceCodeCredential")
            .field("authority", &self.authority)
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl DeviceCodeCredential {
    /// A credential with `options`. Nothing is sent until the first token is asked for.
    pub fn new(options: DeviceCodeOptions) -> Result<Arc<Self>, Error> {
        let endpoints = Endpoints::new(&options.cloud, &options.tenant_id)?;
        Ok(Arc::new(Self {
            http: http_client(&options.transport)?,
            endpoints,
            authority: options.cloud.authority_host.to_string(),
            tenant_id: options.tenant_id,
            client_id: options.client_id,
            cache: options.cache,
            prompt: options
                .prompt
                .unwrap_or_else(|| Arc::new(|p: &DeviceCodePrompt| eprintln!("{}", p.message))),
            poll_interval_override: options.poll_interval_override,
            sleep: options
                .sleep
                .unwrap_or_else(|| Arc::new(|d| Box::pin(tokio::time::sleep(d)))),
            cancel: options.cancel,
            account: tokio::sync::Mutex::new(None),
        }))
    }

    /// The token that cancels this credential's sign-ins.
    pub fn cancellation_token(&self) -> CancellationToken {
        self.cancel.clone()
    }

    /// The account signed in through this credential, if any.
    pub async fn account(&self) -> Option<Account> {
        self.account.lock().await.clone()
    }

    /// Runs the device flow now (always asking the person), keeps the login in the cache,
    /// and returns the account and a token for `scopes`.
    pub async fn sign_in(&self, scopes: &[&str]) -> Result<SignIn, Error> {
        let scopes = oauth::validate_scopes(scopes)?;
        let mut slot = self.account.lock().await;
        let signed_in = self.device_flow(&scopes).await?;
        *slot = Some(signed_in.account.clone());
        Ok(signed_in)
    }

    /// A token for `scopes`: silently from the login once signed in (refreshing it with the
    /// refresh token), else by signing in. Concurrent first calls share one sign-in.
    pub async fn token(&self, scopes: &[&str]) -> Result<AccessToken, Error> {
        let scopes = oauth::validate_scopes(scopes)?;
        let mut slot = self.account.lock().await;
        if let Some(account) = slot.clone() {
            drop(slot);
            match silent_token(&self.http, &self.cache, &account, &scopes).await {
                Err(Error::LoginExpired { .. }) | Err(Error::CredentialUnavailable { .. }) => {
                    tracing::warn!("the login can no longer be refreshed; signing in again");
                    slot = self.account.lock().await;
                }
                other => return other,
            }
        }
        let signed_in = self.device_flow(&scopes).await?;
        *slot = Some(signed_in.account.clone());
        Ok(signed_in.token)
    }

    async fn cancellable<F: Future>(&self, f: F) -> Result<F::Output, Error> {
        tokio::select! {
            biased;
            () = self.cancel.cancelled() => Err(Error::Cancelled),
            out = f => Ok(out),
        }
    }

    #[tracing::instrument(
        name = "device_code.sign_in",
        skip_all,
        fields(tenant = %self.tenant_id, client_id = %self.client_id, scopes = ?scopes)
    )]
    async fn device_flow(&self, scopes: &[String]) -> Result<SignIn, Error> {
        if self.cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let scope = format!("{} {}", scopes.join(" "), oauth::USER_SIGN_IN_SCOPES);
        let reply = self
            .cancellable(oauth::post_form::<DeviceAuthorization>(
                &self.http,
                &self.endpoints.devicecode,
                &[("client_id", &self.client_id), ("scope", &scope)],
            ))
            .await??;
        let authorization = match reply {
            Reply::Ok(authorization) => authorization,
            Reply::Refused(refused) => return Err(device_error(refused)),
        };
        let prompt = DeviceCodePrompt::new(&authorization);
        tracing::info!(
            verification_uri = %prompt.verification_uri,
            expires_in_s = authorization.expires_in,
            interval_s = ?authorization.interval,
            "device code issued; waiting for the person to sign in"
        );
        (self.prompt)(&prompt);

        let mut schedule = PollSchedule::new(&authorization, self.poll_interval_override);
        // A network error while polling is not the end: the person may still be signing in,
        // so polling goes on until the code expires. If the last poll failed that way, that
        // failure is the error (the code ran out while Entra could not be reached).
        let mut unreachable: Option<(String, String)> = None;
        loop {
            let Some(wait) = schedule.next_wait() else {
                if let Some((endpoint, reason)) = unreachable {
                    return Err(Error::Http {
                        endpoint,
                        reason: format!(
                            "{reason} (polled until the device code expired; the sign-in did not complete)"
                        ),
                    });
                }
                return Err(Error::DeviceCodeExpired(Box::new(EntraError::local(
                    "expired_token",
                    "the device code expired before the sign-in was approved",
                ))));
            };
            self.cancellable((self.sleep)(wait)).await?;
            let reply = match self
                .cancellable(oauth::post_form::<TokenResponse>(
                    &self.http,
                    &self.endpoints.token,
                    &[
                        ("grant_type", DEVICE_CODE_GRANT),
                        ("client_id", &self.client_id),
                        ("device_code", authorization.device_code.secret()),
                    ],
                ))
                .await?
            {
                Ok(reply) => {
                    unreachable = None;
                    reply
                }
                Err(Error::Http { endpoint, reason }) => {
                    tracing::warn!(%endpoint, %reason, "the token endpoint could not be reached; polling again");
                    unreachable = Some((endpoint, reason));
                    continue;
                }
                Err(e) => return Err(e),
            };
            match reply {
                Reply::Ok(response) => return self.finish(response, scopes).await,
                Reply::Refused(refused) => match refused.error.as_str() {
                    "authorization_pending" => tracing::debug!("authorization pending"),
                    "slow_down" => {
                        schedule.slow_down();
                        tracing::debug!(interval = ?schedule.interval(), "asked to slow down");
                    }
                    _ => return Err(device_error(refused)),
                },
            }
        }
    }

    async fn finish(&self, response: TokenResponse, scopes: &[String]) -> Result<SignIn, Error> {
        let token = access_token(&response, &self.cache);
        let claims = response
            .id_token
            .as_ref()
            .and_then(AccountClaims::from_jwt)
            .or_else(|| AccountClaims::from_jwt(&response.access_token))
            .unwrap_or_default();
        let oid = claims
            .oid
            .or(claims.sub)
            .unwrap_or_else(|| "unknown".to_owned());
        let home_tenant = claims.tid.clone().unwrap_or_else(|| self.tenant_id.clone());
        let account = Account {
            authority: self.authority.clone(),
            tenant: self.tenant_id.clone(),
            client_id: self.client_id.clone(),
            home_account_id: format!("{oid}.{home_tenant}"),
            username: claims
                .preferred_username
                .or(claims.name)
                .unwrap_or_else(|| oid.clone()),
            home_tenant_id: claims.tid,
        };
        if response.refresh_token.is_none() {
            tracing::warn!(
                "Entra issued no refresh token: other audiences will need a new sign-in"
            );
        }
        self.cache
            .save_login(
                account.clone(),
                response.refresh_token,
                scope_key(scopes),
                token.clone(),
            )
            .await?;
        tracing::info!(username = %account.username, cache = %self.cache.describe(), "signed in");
        Ok(SignIn { account, token })
    }
}

/// The typed error for a device-flow refusal.
fn device_error(refused: EntraError) -> Error {
    let refused = Box::new(refused);
    match refused.error.as_str() {
        "authorization_declined" | "access_denied" => Error::AuthorizationDeclined(refused),
        "expired_token" => Error::DeviceCodeExpired(refused),
        "bad_verification_code" => Error::BadVerificationCode(refused),
        _ => Error::Entra(refused),
    }
}

#[async_trait::async_trait]
impl TokenCredential for DeviceCodeCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        self.token(scopes).await.map_err(super::to_azure_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use azure_core::credentials::Secret;

    fn authorization(message: Option<&str>) -> DeviceAuthorization {
        DeviceAuthorization {
            device_code: Secret::new("DC-SECRET"),
            user_code: "BCDF-GHJK".into(),
            verification_uri: "https://127.0.0.1:1/device".into(),
            verification_uri_complete: None,
            expires_in: 600,
            interval: None,
            message: message.map(str::to_owned),
        }
    }

    #[test]
    fn the_prompt_is_entras_message_or_built_from_uri_and_code() {
        let p = DeviceCodePrompt::new(&authorization(Some("Go to X and type Y")));
        assert_eq!(p.message, "Go to X and type Y");
        let p = DeviceCodePrompt::new(&authorization(None));
        assert_eq!(
            p.message,
            "To sign in, use a web browser to open the page https://127.0.0.1:1/device and enter the code BCDF-GHJK to authenticate."
        );
        assert!(!format!("{p:?}").contains("DC-SECRET"));
    }

    #[test]
    fn debug_of_a_sign_in_masks_the_token_and_keeps_who_and_when() {
        let sign_in = SignIn {
            account: Account {
                authority: "https://login.microsoftonline.com/".into(),
                tenant: "organizations".into(),
                client_id: "04b07795-8ddb-461a-bbee-02f9e1bf7b46".into(),
                home_account_id: "oid.tid".into(),
                username: "ada@contoso.com".into(),
                home_tenant_id: None,
            },
            token: AccessToken::new(
                "eyJ-sign-in-access-token",
                azure_core::time::OffsetDateTime::UNIX_EPOCH,
            ),
        };
        let leaks = crate::redact::debug_leaks(&sign_in, &["eyJ-sign-in-access-token"]);
        assert!(leaks.is_empty(), "{leaks:?}");
        let shown = format!("{sign_in:?}");
        assert!(
            shown.contains("ada@contoso.com")
                && shown.contains("token: AccessToken { token: ***, expires_on: 1970"),
            "{shown}"
        );
    }

    #[test]
    fn each_device_flow_refusal_has_its_own_variant() {
        let e = |code: &str| device_error(EntraError::local(code, "x"));
        assert!(matches!(
            e("authorization_declined"),
            Error::AuthorizationDeclined(_)
        ));
        assert!(matches!(
            e("access_denied"),
            Error::AuthorizationDeclined(_)
        ));
        assert!(matches!(e("expired_token"), Error::DeviceCodeExpired(_)));
        assert!(matches!(
            e("bad_verification_code"),
            Error::BadVerificationCode(_)
        ));
        assert!(matches!(e("invalid_client"), Error::Entra(_)));
    }

    #[tokio::test]
    async fn a_cancelled_credential_sends_nothing() {
        // The authority is unreachable: a request would fail with Http, not Cancelled.
        let options = DeviceCodeOptions {
            cloud: Cloud {
                authority_host: url::Url::parse("https://127.0.0.1:9/").unwrap(),
                ..Cloud::default()
            },
            ..Default::default()
        };
        let credential = DeviceCodeCredential::new(options).unwrap();
        credential.cancellation_token().cancel();
        let err = credential
            .get_token(&["https://management.azure.com/.default"], None)
            .await
            .unwrap_err();
        assert!(
            matches!(err.downcast_ref::<Error>(), Some(Error::Cancelled)),
            "{err:?}"
        );
    }
}
