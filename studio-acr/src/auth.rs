//! Registry authentication: anonymous, basic, bearer token services, and ACR's Entra exchange.
//!
//! A registry answers an unauthenticated request with `401` and a `WWW-Authenticate` challenge.
//! For `Basic` the client sends its user name and password. For `Bearer` it asks the challenge's
//! `realm` for a token covering the `service` and the scopes it needs
//! (`repository:<name>:pull,push`):
//!
//! - anonymous: `GET realm?service=…&scope=…`;
//! - user name and password: the same `GET` with basic auth (docker's flow);
//! - a refresh (identity) token, such as the ACR refresh token `az acr login` stores:
//!   `POST realm` with `grant_type=refresh_token`;
//! - Entra, for ACR ([`RegistryCredential::Entra`]): any [`TokenCredential`] gives an Entra
//!   token for ACR's audience, exchanged at `POST <realm host>/oauth2/exchange`
//!   (`grant_type=access_token`, `service`, `tenant`, `access_token`) for an ACR refresh token,
//!   then the refresh-token flow above.
//!
//! Access tokens are cached per service and scope set and renewed a minute before they expire;
//! the ACR refresh token is cached per service. [`Authenticator::invalidate`] drops a token the
//! registry refused, so the client re-authenticates once.
//!
//! ```no_run
//! # async fn demo(credential: std::sync::Arc<dyn azure_core::credentials::TokenCredential>) -> Result<(), studio_acr::Error> {
//! use studio_acr::auth::RegistryCredential;
//! use studio_acr::client::{RegistryClient, RegistryClientOptions};
//!
//! let creds = RegistryCredential::Entra { credential, tenant: None, audience: None };
//! let client = RegistryClient::new("myacr.azurecr.io", creds, RegistryClientOptions::default())?;
//! let refresh = client.acr_refresh_token().await?; // what `az acr login` stores
//! # drop(refresh); Ok(()) }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use azure_core::credentials::{Secret, TokenCredential};
use base64::Engine;
use serde::Deserialize;
use studio_azure_auth::redact::Redacted;
use tokio::sync::Mutex;
use url::Url;

use crate::Error;
use crate::challenge::Challenge;

/// The user name that marks the password as an ACR refresh token.
pub const ACR_REFRESH_TOKEN_USER: &str = "00000000-0000-0000-0000-000000000000";
/// ACR's data-plane audience in the public cloud.
pub const ACR_AUDIENCE: &str = "https://containerregistry.azure.net";
/// Renew tokens this long before they expire.
const RENEW_BEFORE: Duration = Duration::from_secs(60);

/// How to authenticate to a registry.
#[derive(Clone)]
pub enum RegistryCredential {
    /// No credentials: docker's anonymous `GET` of the token service; when that is refused
    /// by an ACR-shaped realm (`…/oauth2/token`), ACR's anonymous `POST` form
    /// (`grant_type=password`, empty `refresh_token`) as the Azure SDKs send it.
    Anonymous,
    /// A user name and password (an ACR admin user, a repository token, htpasswd).
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: Secret,
    },
    /// An OAuth2 refresh token for the registry's token service (docker's `identitytoken`, the
    /// ACR refresh token).
    RefreshToken(Secret),
    /// An Entra credential exchanged for ACR tokens.
    Entra {
        /// Any Azure credential.
        credential: Arc<dyn TokenCredential>,
        /// The tenant to name in the exchange, if known.
        tenant: Option<String>,
        /// The token audience (default [`ACR_AUDIENCE`]).
        audience: Option<String>,
    },
}

impl fmt::Debug for RegistryCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Anonymous => f.write_str("Anonymous"),
            Self::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &Redacted)
                .finish(),
            Self::RefreshToken(_) => f.debug_tuple("RefreshToken").field(&Redacted).finish(),
            Self::Entra {
                tenant, audience, ..
            } => f
                .debug_struct("Entra")
                .field("tenant", tenant)
                .field("audience", audience)
                .finish_non_exhaustive(),
        }
    }
}

impl RegistryCredential {
    /// Basic credentials; the ACR refresh-token user turns into [`RegistryCredential::RefreshToken`].
    pub fn basic(username: &str, password: &str) -> Self {
        if username == ACR_REFRESH_TOKEN_USER {
            Self::RefreshToken(Secret::new(password.to_owned()))
        } else {
            Self::Basic {
                username: username.to_owned(),
                password: Secret::new(password.to_owned()),
            }
        }
    }
}

/// A registry resource scope, e.g. `repository:demo/app:pull,push`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    /// `repository` or `registry`.
    pub kind: String,
    /// The repository (or `catalog`).
    pub name: String,
    /// The actions, e.g. `pull`, `push`, `delete`, `*`.
    pub actions: Vec<String>,
}

impl Scope {
    /// `repository:<name>:<actions>`.
    pub fn repository(name: &str, actions: &[&str]) -> Self {
        Self {
            kind: "repository".to_owned(),
            name: name.to_owned(),
            actions: actions.iter().map(|a| (*a).to_owned()).collect(),
        }
    }

    /// `registry:catalog:*`.
    pub fn catalog() -> Self {
        Self {
            kind: "registry".to_owned(),
            name: "catalog".to_owned(),
            actions: vec!["*".to_owned()],
        }
    }

    /// Parses `kind:name:actions` (the name may contain ':').
    pub fn parse(text: &str) -> Option<Self> {
        let (kind, rest) = text.split_once(':')?;
        let (name, actions) = rest.rsplit_once(':')?;
        Some(Self {
            kind: kind.to_owned(),
            name: name.to_owned(),
            actions: actions
                .split(',')
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
                .collect(),
        })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.kind, self.name, self.actions.join(","))
    }
}

/// Merges scope lists: one entry per resource, with the union of actions, sorted.
pub fn merge_scopes<'a>(scopes: impl IntoIterator<Item = &'a Scope>) -> Vec<Scope> {
    let mut merged: Vec<Scope> = Vec::new();
    for scope in scopes {
        match merged
            .iter_mut()
            .find(|m| m.kind == scope.kind && m.name == scope.name)
        {
            Some(m) => {
                for a in &scope.actions {
                    if !m.actions.contains(a) {
                        m.actions.push(a.clone());
                    }
                }
            }
            None => merged.push(scope.clone()),
        }
    }
    for m in &mut merged {
        m.actions.sort();
    }
    merged.sort();
    merged
}

#[derive(Clone)]
struct CachedToken {
    token: Secret,
    expires: SystemTime,
}

impl CachedToken {
    fn fresh(&self) -> bool {
        SystemTime::now() + RENEW_BEFORE < self.expires
    }
}

/// Gets and caches registry tokens for one credential. Shared by every request of a client.
pub struct Authenticator {
    credential: RegistryCredential,
    http: reqwest::Client,
    access: Mutex<HashMap<String, CachedToken>>,
    refresh: Mutex<HashMap<String, CachedToken>>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("credential", &self.credential)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

fn cache_key(service: &str, scopes: &[Scope]) -> String {
    let scopes: Vec<String> = scopes.iter().map(Scope::to_string).collect();
    format!("{service} {}", scopes.join(" "))
}

/// The `exp` claim of a JWT, read without verifying it (only to know when to renew).
fn jwt_expiry(token: &str) -> Option<SystemTime> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let exp = claims.get("exp")?.as_u64()?;
    Some(UNIX_EPOCH + Duration::from_secs(exp))
}

fn expiry(token: &str, expires_in: Option<u64>) -> SystemTime {
    if let Some(seconds) = expires_in {
        return SystemTime::now() + Duration::from_secs(seconds);
    }
    // Docker's token spec: 60 s when the server says nothing and the token is opaque.
    jwt_expiry(token).unwrap_or_else(|| SystemTime::now() + Duration::from_secs(60))
}

impl Authenticator {
    /// An authenticator for `credential` using `http` for token requests.
    pub fn new(credential: RegistryCredential, http: reqwest::Client) -> Self {
        Self {
            credential,
            http,
            access: Mutex::new(HashMap::new()),
            refresh: Mutex::new(HashMap::new()),
        }
    }

    /// The credential.
    pub fn credential(&self) -> &RegistryCredential {
        &self.credential
    }

    /// A cached, still-fresh `Authorization` value for `service` and `scopes`, if any.
    pub async fn cached(&self, service: &str, scopes: &[Scope]) -> Option<String> {
        let cache = self.access.lock().await;
        let token = cache.get(&cache_key(service, scopes))?;
        token
            .fresh()
            .then(|| format!("Bearer {}", token.token.secret()))
    }

    /// Forgets the token for `service` and `scopes` (the registry refused it).
    pub async fn invalidate(&self, service: &str, scopes: &[Scope]) {
        self.access.lock().await.remove(&cache_key(service, scopes));
    }

    /// The `Authorization` header value answering `challenge` for `scopes`.
    pub async fn authorize(
        &self,
        challenge: &Challenge,
        scopes: &[Scope],
    ) -> Result<String, Error> {
        if challenge.is_basic() {
            return match &self.credential {
                RegistryCredential::Basic { username, password } => {
                    Ok(basic_header(username, password.secret()))
                }
                RegistryCredential::RefreshToken(token) => {
                    Ok(basic_header(ACR_REFRESH_TOKEN_USER, token.secret()))
                }
                _ => Err(Error::Unauthorized {
                    registry: challenge.param("realm").unwrap_or_default().to_owned(),
                    reason: "the registry wants a user name and password".to_owned(),
                }),
            };
        }
        if !challenge.is_bearer() {
            return Err(Error::Unauthorized {
                registry: String::new(),
                reason: format!("unsupported authentication scheme '{}'", challenge.scheme),
            });
        }
        let realm = challenge.param("realm").ok_or_else(|| {
            Error::InvalidChallenge("a Bearer challenge without a realm".to_owned())
        })?;
        let realm = Url::parse(realm)
            .map_err(|e| Error::InvalidChallenge(format!("realm '{realm}': {e}")))?;
        if realm.scheme() != "https" && !is_loopback(&realm) {
            return Err(Error::InsecureEndpoint(realm.to_string()));
        }
        let service = challenge.param("service").unwrap_or_default().to_owned();
        let key = cache_key(&service, scopes);
        if let Some(token) = self.access.lock().await.get(&key).filter(|t| t.fresh()) {
            return Ok(format!("Bearer {}", token.token.secret()));
        }
        let token = self.fetch_token(&realm, &service, scopes).await?;
        let header = format!("Bearer {}", token.token.secret());
        self.access.lock().await.insert(key, token);
        Ok(header)
    }

    async fn fetch_token(
        &self,
        realm: &Url,
        service: &str,
        scopes: &[Scope],
    ) -> Result<CachedToken, Error> {
        tracing::debug!(realm = %realm, service, scopes = ?scopes.iter().map(Scope::to_string).collect::<Vec<_>>(), "requesting a registry token");
        let response = match &self.credential {
            RegistryCredential::Anonymous => {
                let response = self
                    .http
                    .get(token_url(realm, service, scopes))
                    .send()
                    .await;
                match response {
                    Ok(r) if !r.status().is_success() && is_acr_token_endpoint(realm) => {
                        tracing::debug!(status = %r.status(), "anonymous GET token refused; trying ACR's anonymous POST form");
                        return self.acr_anonymous_grant(realm, service, scopes).await;
                    }
                    other => other,
                }
            }
            RegistryCredential::Basic { username, password } => {
                self.http
                    .get(token_url(realm, service, scopes))
                    .basic_auth(username, Some(password.secret()))
                    .send()
                    .await
            }
            RegistryCredential::RefreshToken(refresh) => {
                return self
                    .refresh_grant(realm, service, scopes, refresh.secret())
                    .await;
            }
            RegistryCredential::Entra { .. } => {
                let refresh = self.acr_refresh_token(realm, service).await?;
                return self
                    .refresh_grant(realm, service, scopes, refresh.secret())
                    .await;
            }
        };
        let response =
            response.map_err(|e| Error::Registry(format!("token request to {realm}: {e}")))?;
        parse_token_response(realm, response).await
    }

    /// ACR's anonymous form (the Azure SDKs' anonymous pull): `POST /oauth2/token` with
    /// `grant_type=password` and an empty `refresh_token`.
    async fn acr_anonymous_grant(
        &self,
        realm: &Url,
        service: &str,
        scopes: &[Scope],
    ) -> Result<CachedToken, Error> {
        let mut form: Vec<(&str, String)> = vec![
            ("grant_type", "password".to_owned()),
            ("refresh_token", String::new()),
        ];
        for scope in scopes {
            form.push(("scope", scope.to_string()));
        }
        form.push(("service", service.to_owned()));
        self.post_token_form(realm, &form).await
    }

    async fn refresh_grant(
        &self,
        realm: &Url,
        service: &str,
        scopes: &[Scope],
        refresh: &str,
    ) -> Result<CachedToken, Error> {
        let mut form: Vec<(&str, String)> = vec![
            ("grant_type", "refresh_token".to_owned()),
            ("service", service.to_owned()),
            ("client_id", "studio".to_owned()),
            ("refresh_token", refresh.to_owned()),
        ];
        for scope in scopes {
            form.push(("scope", scope.to_string()));
        }
        self.post_token_form(realm, &form).await
    }

    /// Posts `form` to the token service at `realm` and reads its token answer.
    async fn post_token_form(
        &self,
        realm: &Url,
        form: &[(&str, String)],
    ) -> Result<CachedToken, Error> {
        let response = self
            .http
            .post(realm.clone())
            .form(form)
            .send()
            .await
            .map_err(|e| Error::Registry(format!("token request to {realm}: {e}")))?;
        parse_token_response(realm, response).await
    }

    /// The ACR refresh token for the registry whose token service is at `realm` (exchanging an
    /// Entra token at `/oauth2/exchange` when none is cached).
    pub async fn acr_refresh_token(&self, realm: &Url, service: &str) -> Result<Secret, Error> {
        let RegistryCredential::Entra {
            credential,
            tenant,
            audience,
        } = &self.credential
        else {
            return match &self.credential {
                RegistryCredential::RefreshToken(token) => Ok(token.clone()),
                _ => Err(Error::Unauthorized {
                    registry: service.to_owned(),
                    reason: "an ACR refresh token needs an Entra credential".to_owned(),
                }),
            };
        };
        if let Some(cached) = self.refresh.lock().await.get(service).filter(|t| t.fresh()) {
            return Ok(cached.token.clone());
        }
        let audience = audience.as_deref().unwrap_or(ACR_AUDIENCE);
        let scope = format!("{}/.default", audience.trim_end_matches('/'));
        let aad = credential
            .get_token(&[scope.as_str()], None)
            .await
            .map_err(|e| Error::Unauthorized {
                registry: service.to_owned(),
                reason: format!("cannot get an Entra token for {audience}: {e}"),
            })?;
        let exchange = realm
            .join("/oauth2/exchange")
            .map_err(|e| Error::InvalidChallenge(e.to_string()))?;
        let mut form: Vec<(&str, String)> = vec![
            ("grant_type", "access_token".to_owned()),
            ("service", service.to_owned()),
            ("access_token", aad.token.secret().to_owned()),
        ];
        if let Some(tenant) = tenant {
            form.push(("tenant", tenant.clone()));
        }
        tracing::debug!(url = %exchange, service, "exchanging an Entra token for an ACR refresh token");
        let response = self
            .http
            .post(exchange.clone())
            .form(&form)
            .send()
            .await
            .map_err(|e| Error::Registry(format!("ACR token exchange at {exchange}: {e}")))?;
        let status = response.status();
        if !status.is_success() {
            return Err(Error::Unauthorized {
                registry: service.to_owned(),
                reason: format!("the ACR token exchange answered {status}"),
            });
        }
        let body: TokenResponse = response.json().await.map_err(|e| {
            Error::Registry(format!(
                "ACR token exchange answered something else than a token: {e}"
            ))
        })?;
        let refresh = body.refresh_token.ok_or_else(|| {
            Error::Registry("the ACR token exchange gave no refresh_token".to_owned())
        })?;
        let cached = CachedToken {
            expires: expiry(&refresh, None),
            token: Secret::new(refresh),
        };
        let token = cached.token.clone();
        self.refresh.lock().await.insert(service.to_owned(), cached);
        Ok(token)
    }
}

async fn parse_token_response(
    realm: &Url,
    response: reqwest::Response,
) -> Result<CachedToken, Error> {
    let status = response.status();
    if !status.is_success() {
        return Err(Error::Unauthorized {
            registry: realm.host_str().unwrap_or_default().to_owned(),
            reason: format!("the token service at {realm} answered {status}"),
        });
    }
    let body: TokenResponse = response.json().await.map_err(|e| {
        Error::Registry(format!(
            "the token service at {realm} did not answer with a token: {e}"
        ))
    })?;
    let token = body
        .access_token
        .or(body.token)
        .ok_or_else(|| Error::Registry(format!("the token service at {realm} gave no token")))?;
    Ok(CachedToken {
        expires: expiry(&token, body.expires_in),
        token: Secret::new(token),
    })
}

/// Whether `realm` has the shape of ACR's token endpoint (`…/oauth2/token`), which also takes
/// the anonymous `POST` form.
fn is_acr_token_endpoint(realm: &Url) -> bool {
    realm
        .path()
        .trim_end_matches('/')
        .ends_with("/oauth2/token")
}

fn token_url(realm: &Url, service: &str, scopes: &[Scope]) -> Url {
    let mut url = realm.clone();
    {
        let mut q = url.query_pairs_mut();
        if !service.is_empty() {
            q.append_pair("service", service);
        }
        for scope in scopes {
            q.append_pair("scope", &scope.to_string());
        }
    }
    url
}

/// `Basic base64(user:password)`.
pub fn basic_header(username: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
    )
}

/// Whether `url` points at this machine.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn acr_shaped_realms_get_the_anonymous_post_form() {
        let acr = Url::parse("https://myacr.azurecr.io/oauth2/token").unwrap();
        let hub = Url::parse("https://auth.docker.io/token").unwrap();
        assert!(is_acr_token_endpoint(&acr));
        assert!(!is_acr_token_endpoint(&hub));
    }

    use super::*;

    #[test]
    fn scopes_round_trip_and_merge() {
        let s = Scope::parse("repository:a/b:pull,push").unwrap();
        assert_eq!(s.to_string(), "repository:a/b:pull,push");
        let merged = merge_scopes(&[
            Scope::repository("a", &["push"]),
            Scope::repository("b", &["pull"]),
            Scope::repository("a", &["pull"]),
        ]);
        assert_eq!(
            merged.iter().map(Scope::to_string).collect::<Vec<_>>(),
            vec!["repository:a:pull,push", "repository:b:pull"]
        );
    }

    #[test]
    fn debug_never_shows_secrets() {
        use studio_azure_auth::redact::debug_leaks;
        let c = RegistryCredential::basic("admin", "s3cret-pass");
        let leaks = debug_leaks(&c, &["s3cret-pass"]);
        assert!(leaks.is_empty(), "{leaks:?}");
        assert_eq!(
            format!("{c:?}"),
            r#"Basic { username: "admin", password: *** }"#
        );
        let c = RegistryCredential::basic(ACR_REFRESH_TOKEN_USER, "refresh-xyz");
        assert!(matches!(c, RegistryCredential::RefreshToken(_)));
        let leaks = debug_leaks(&c, &["refresh-xyz"]);
        assert!(leaks.is_empty(), "{leaks:?}");
        assert_eq!(format!("{c:?}"), "RefreshToken(***)");
    }

    #[test]
    fn jwt_expiry_is_read_without_verification() {
        let payload =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"exp":4102444800}"#);
        let t = format!("x.{payload}.y");
        assert_eq!(
            jwt_expiry(&t),
            Some(UNIX_EPOCH + Duration::from_secs(4_102_444_800))
        );
        assert_eq!(jwt_expiry("opaque"), None);
    }
}
