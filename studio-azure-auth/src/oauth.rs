//! The Entra ID (v2) token-endpoint protocol: form POSTs to `{authority}/{tenant}/oauth2/v2.0/…`,
//! the token response, the device-authorization response (RFC 8628) and Entra's error body.
//!
//! This module speaks the wire protocol only; the credentials in [`crate::credential`] decide
//! what to ask for. Every request goes through the client built by
//! [`crate::transport::http_client`]. Secrets (tokens, device codes) are held as
//! [`Secret`] and never appear in `Debug` output or errors.
//!
//! ```
//! use studio_azure_auth::{cloud::Cloud, oauth::{Endpoints, EntraError}};
//!
//! let endpoints = Endpoints::new(&Cloud::azure_public(), "organizations")?;
//! assert_eq!(
//!     endpoints.token.as_str(),
//!     "https://login.microsoftonline.com/organizations/oauth2/v2.0/token"
//! );
//! let body = br#"{"error":"authorization_declined","error_description":"AADSTS70000: declined",
//!                 "error_codes":[70000],"correlation_id":"c0ffee"}"#;
//! let refused = EntraError::parse(400, body).expect("an Entra error body");
//! assert_eq!(refused.error, "authorization_declined");
//! assert_eq!(refused.error_codes, [70000]);
//! # Ok::<(), studio_azure_auth::Error>(())
//! ```

use std::fmt;
use std::time::Duration;

use azure_core::credentials::Secret;
use base64::Engine;
use serde::{Deserialize, Deserializer};
use url::Url;

use crate::Error;
use crate::cloud::Cloud;
use crate::redact::Redacted;

/// The Azure CLI's public client id: the device flow's default client.
pub const AZURE_CLI_CLIENT_ID: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";

/// The default tenant for a device sign-in: any work or school account.
pub const DEFAULT_TENANT: &str = "organizations";

/// The device-code grant type of RFC 8628.
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// The OpenID scopes a user sign-in adds: a refresh token, an ID token and the user's name.
pub const USER_SIGN_IN_SCOPES: &str = "offline_access openid profile";

/// The endpoints of one tenant at one authority.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    /// `{authority}/{tenant}/oauth2/v2.0/devicecode`
    pub devicecode: Url,
    /// `{authority}/{tenant}/oauth2/v2.0/token`
    pub token: Url,
}

impl Endpoints {
    /// The endpoints of `tenant` (a tenant id, a domain, or `organizations`/`common`/
    /// `consumers`) at `cloud`'s authority host.
    pub fn new(cloud: &Cloud, tenant: &str) -> Result<Self, Error> {
        Self::at(&cloud.authority_host, tenant)
    }

    /// The endpoints of `tenant` at `authority_host`.
    pub fn at(authority_host: &Url, tenant: &str) -> Result<Self, Error> {
        validate_tenant(tenant)?;
        if authority_host.scheme() != "https" {
            return Err(Error::InvalidEndpoint {
                what: "authority host".to_owned(),
                value: authority_host.to_string(),
                reason: "tokens are requested over https only".to_owned(),
            });
        }
        let base = authority_host.as_str().trim_end_matches('/');
        let url = |path: &str| {
            Url::parse(&format!("{base}/{tenant}/oauth2/v2.0/{path}")).map_err(|e| {
                Error::InvalidEndpoint {
                    what: "authority host".to_owned(),
                    value: authority_host.to_string(),
                    reason: e.to_string(),
                }
            })
        };
        Ok(Self {
            devicecode: url("devicecode")?,
            token: url("token")?,
        })
    }
}

/// Refuses tenant names that could change the request path.
pub fn validate_tenant(tenant: &str) -> Result<(), Error> {
    let ok = !tenant.is_empty()
        && tenant
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidTenant(tenant.to_owned()))
    }
}

/// Checks Entra-style scopes (`https://management.azure.com/.default`, …) and returns them
/// trimmed. At least one is required; OpenID scopes are added by the credentials themselves.
pub fn validate_scopes(scopes: &[&str]) -> Result<Vec<String>, Error> {
    if scopes.is_empty() {
        return Err(Error::InvalidScope {
            scope: String::new(),
            reason: "at least one scope is required, e.g. https://management.azure.com/.default"
                .to_owned(),
        });
    }
    scopes
        .iter()
        .map(|s| {
            let s = s.trim();
            let ok = !s.is_empty()
                && s.chars().all(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '/' | '~')
                });
            if ok {
                Ok(s.to_owned())
            } else {
                Err(Error::InvalidScope {
                    scope: s.to_owned(),
                    reason: "a scope is a resource URL followed by /.default".to_owned(),
                })
            }
        })
        .collect()
}

/// The device-authorization response (RFC 8628 §3.2, Entra's shape).
#[derive(Clone, Deserialize)]
pub struct DeviceAuthorization {
    /// The code the client polls with. A bearer credential until redeemed.
    pub device_code: Secret,
    /// The code the person types at `verification_uri`.
    pub user_code: String,
    /// Where the person goes (`verification_url` in Entra's v1 answer).
    #[serde(alias = "verification_url")]
    pub verification_uri: String,
    /// `verification_uri` with the code filled in, if offered.
    #[serde(default)]
    pub verification_uri_complete: Option<String>,
    /// Seconds until the device code expires.
    #[serde(deserialize_with = "u64_or_string")]
    pub expires_in: u64,
    /// Seconds to wait between polls; absent means 5 (RFC 8628 §3.2).
    #[serde(default, deserialize_with = "opt_u64_or_string")]
    pub interval: Option<u64>,
    /// Entra's ready-made instruction for the person, if sent.
    #[serde(default)]
    pub message: Option<String>,
}

/// A successful token response.
#[derive(Clone, Deserialize)]
pub struct TokenResponse {
    /// `Bearer`.
    #[serde(default)]
    pub token_type: String,
    /// Seconds until `access_token` expires.
    #[serde(deserialize_with = "u64_or_string")]
    pub expires_in: u64,
    /// The granted scopes, space-separated (user tokens only).
    #[serde(default)]
    pub scope: Option<String>,
    /// The access token.
    pub access_token: Secret,
    /// The refresh token (when `offline_access` was granted).
    #[serde(default)]
    pub refresh_token: Option<Secret>,
    /// The ID token (when `openid` was granted).
    #[serde(default)]
    pub id_token: Option<Secret>,
}

impl fmt::Debug for DeviceAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceAuthorization")
            .field("device_code", &Redacted)
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri)
            .field("verification_uri_complete", &self.verification_uri_complete)
            .field("expires_in", &self.expires_in)
            .field("interval", &self.interval)
            .field("message", &self.message)
            .finish()
    }
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field("access_token", &Redacted)
            .field("refresh_token", &Redacted::option(&self.refresh_token))
            .field("id_token", &Redacted::option(&self.id_token))
            .finish()
    }
}

/// Entra's error body: `{error, error_description, error_codes, timestamp, trace_id,
/// correlation_id, error_uri}`, with the HTTP status it came with.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct EntraError {
    /// The HTTP status.
    #[serde(skip)]
    pub status: u16,
    /// The OAuth error code, e.g. `authorization_pending`, `invalid_grant`.
    pub error: String,
    /// `AADSTS<code>: <text>`, often followed by trace lines.
    #[serde(default)]
    pub error_description: String,
    /// The AADSTS codes.
    #[serde(default)]
    pub error_codes: Vec<i64>,
    /// When Entra answered.
    #[serde(default)]
    pub timestamp: Option<String>,
    /// Entra's trace id.
    #[serde(default)]
    pub trace_id: Option<String>,
    /// The correlation id to quote to support.
    #[serde(default)]
    pub correlation_id: Option<String>,
    /// A link describing the error.
    #[serde(default)]
    pub error_uri: Option<String>,
}

impl EntraError {
    /// Parses an error body; `None` if it is not Entra-shaped.
    pub fn parse(status: u16, body: &[u8]) -> Option<Self> {
        let mut parsed: Self = serde_json::from_slice(body).ok()?;
        if parsed.error.is_empty() {
            return None;
        }
        parsed.status = status;
        Some(parsed)
    }

    /// A client-side stand-in for an error the server would send (e.g. a device code that
    /// expired before Entra said so).
    pub fn local(error: &str, description: &str) -> Self {
        Self {
            error: error.to_owned(),
            error_description: description.to_owned(),
            ..Default::default()
        }
    }

    /// The first line of the description (Entra appends trace and correlation lines).
    pub fn summary(&self) -> &str {
        self.error_description
            .lines()
            .next()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .unwrap_or(&self.error)
    }
}

impl fmt::Display for EntraError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.error)?;
        let summary = self.summary();
        if summary != self.error {
            write!(f, ": {summary}")?;
        }
        if self.status != 0 {
            write!(f, " (HTTP {}", self.status)?;
            if let Some(id) = &self.correlation_id {
                write!(f, ", correlation id {id}")?;
            }
            write!(f, ")")?;
        }
        Ok(())
    }
}

impl std::error::Error for EntraError {}

/// What a token-endpoint request came back with.
#[derive(Debug)]
pub enum Reply<T> {
    /// A 2xx answer, parsed.
    Ok(T),
    /// An Entra-shaped refusal.
    Refused(EntraError),
}

/// POSTs `form` to `url` and parses Entra's answer. Transport failures and bodies that are not
/// what the protocol says are errors; an Entra error body is a [`Reply::Refused`].
///
/// The form may hold secrets (device codes, refresh tokens): it is never logged, and a success
/// body that fails to parse is not quoted in the error (it may hold tokens).
pub async fn post_form<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &Url,
    form: &[(&str, &str)],
) -> Result<Reply<T>, Error> {
    let endpoint = url.to_string();
    let response = http
        .post(url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .form(form)
        .send()
        .await
        .map_err(|e| Error::Http {
            endpoint: endpoint.clone(),
            reason: error_chain(&e),
        })?;
    let status = response.status();
    let body = response.bytes().await.map_err(|e| Error::Http {
        endpoint: endpoint.clone(),
        reason: error_chain(&e),
    })?;
    tracing::debug!(%endpoint, status = status.as_u16(), "token endpoint answered");
    if status.is_success() {
        return serde_json::from_slice(&body)
            .map(Reply::Ok)
            .map_err(|e| Error::InvalidResponse {
                endpoint,
                reason: format!(
                    "HTTP {status} with a body that is not the expected JSON (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            });
    }
    match EntraError::parse(status.as_u16(), &body) {
        Some(refused) => Ok(Reply::Refused(refused)),
        None => Err(Error::InvalidResponse {
            endpoint,
            reason: format!("HTTP {status}: {}", snippet(&body)),
        }),
    }
}

/// The first 200 characters of an error body, on one line.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: String = one_line.chars().take(200).collect();
    if one_line.chars().count() > 200 {
        out.push('…');
    }
    out
}

/// An error and its sources on one line (reqwest hides the useful part in the sources).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// The account claims of an ID token (or, without one, of a JWT access token). They name the
/// account in the cache; they are read, not verified: the token came straight from Entra over
/// TLS and is never trusted for anything but naming.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
pub struct AccountClaims {
    /// The user's object id.
    #[serde(default)]
    pub oid: Option<String>,
    /// The subject.
    #[serde(default)]
    pub sub: Option<String>,
    /// The tenant id.
    #[serde(default)]
    pub tid: Option<String>,
    /// The sign-in name, e.g. `ada@contoso.com`.
    #[serde(default)]
    pub preferred_username: Option<String>,
    /// The display name.
    #[serde(default)]
    pub name: Option<String>,
}

impl AccountClaims {
    /// Reads the claims of a JWT without verifying it; `None` if it is not a JWT.
    pub fn from_jwt(token: &Secret) -> Option<Self> {
        let payload = token.secret().split('.').nth(1)?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload.trim_end_matches('='))
            .ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// The wait between two polls of the device-code flow (RFC 8628 §3.5), as a pure value so the
/// schedule can be checked without sleeping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollSchedule {
    interval: Duration,
    elapsed: Duration,
    expires_in: Duration,
}

/// The default poll interval when the server sends none (RFC 8628 §3.2).
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);

/// What `slow_down` adds to the interval (RFC 8628 §3.5).
pub const SLOW_DOWN_INCREMENT: Duration = Duration::from_secs(5);

impl PollSchedule {
    /// The schedule for a device authorization: the server's `interval` (default 5 s) unless
    /// `override_interval` replaces it; polling stops after `expires_in`.
    pub fn new(authorization: &DeviceAuthorization, override_interval: Option<Duration>) -> Self {
        let interval = override_interval.unwrap_or_else(|| {
            authorization
                .interval
                .filter(|s| *s > 0)
                .map_or(DEFAULT_POLL_INTERVAL, Duration::from_secs)
        });
        Self {
            interval,
            elapsed: Duration::ZERO,
            expires_in: Duration::from_secs(authorization.expires_in),
        }
    }

    /// The current interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The server said `slow_down`: every later wait is 5 s longer.
    pub fn slow_down(&mut self) {
        self.interval += SLOW_DOWN_INCREMENT;
    }

    /// The wait before the next poll, or `None` when the device code has expired by the
    /// schedule's own count.
    pub fn next_wait(&mut self) -> Option<Duration> {
        if self.elapsed >= self.expires_in {
            return None;
        }
        self.elapsed += self.interval;
        Some(self.interval)
    }
}

fn u64_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum N {
        Num(u64),
        Str(String),
    }
    match N::deserialize(d)? {
        N::Num(n) => Ok(n),
        N::Str(s) => s.trim().parse().map_err(serde::de::Error::custom),
    }
}

fn opt_u64_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    u64_or_string(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authorization(interval: Option<u64>, expires_in: u64) -> DeviceAuthorization {
        DeviceAuthorization {
            device_code: Secret::new("dc"),
            user_code: "ABCD-EFGH".into(),
            verification_uri: "https://microsoft.com/devicelogin".into(),
            verification_uri_complete: None,
            expires_in,
            interval,
            message: None,
        }
    }

    #[test]
    fn entra_error_bodies_parse_and_print_without_trace_lines() {
        let body = br#"{"error":"authorization_declined","error_description":"AADSTS70000: The user declined.\r\nTrace ID: t\r\nCorrelation ID: c\r\nTimestamp: x","error_codes":[70000],"timestamp":"2025-01-01 00:00:00Z","trace_id":"t","correlation_id":"c"}"#;
        let e = EntraError::parse(400, body).unwrap();
        assert_eq!(e.error, "authorization_declined");
        assert_eq!(e.error_codes, [70000]);
        assert_eq!(e.correlation_id.as_deref(), Some("c"));
        assert_eq!(
            e.to_string(),
            "authorization_declined: AADSTS70000: The user declined. (HTTP 400, correlation id c)"
        );
        assert!(EntraError::parse(400, b"<html>bad gateway</html>").is_none());
        assert!(EntraError::parse(400, br#"{"message":"no"}"#).is_none());
    }

    #[test]
    fn device_authorization_accepts_entra_and_rfc_shapes() {
        let entra: DeviceAuthorization = serde_json::from_str(
            r#"{"user_code":"B7X","device_code":"D","verification_uri":"https://microsoft.com/devicelogin","expires_in":"900","interval":"5","message":"To sign in, …"}"#,
        )
        .unwrap();
        assert_eq!((entra.expires_in, entra.interval), (900, Some(5)));
        let bare: DeviceAuthorization = serde_json::from_str(
            r#"{"user_code":"B7X","device_code":"D","verification_url":"https://x/device","expires_in":600}"#,
        )
        .unwrap();
        assert_eq!(bare.interval, None);
        assert_eq!(bare.message, None);
        assert_eq!(bare.verification_uri, "https://x/device");
    }

    #[test]
    fn debug_output_never_shows_tokens() {
        let r: TokenResponse = serde_json::from_str(
            r#"{"token_type":"Bearer","expires_in":3600,"access_token":"AT-SECRET","refresh_token":"RT-SECRET","id_token":"ID-SECRET"}"#,
        )
        .unwrap();
        let leaks = crate::redact::debug_leaks(&r, &["AT-SECRET", "RT-SECRET", "ID-SECRET"]);
        assert!(leaks.is_empty(), "{leaks:?}");
        let dbg = format!("{r:?}");
        assert!(
            dbg.contains("token_type: \"Bearer\", expires_in: 3600")
                && dbg.contains("access_token: ***, refresh_token: Some(***), id_token: Some(***)"),
            "{dbg}"
        );
        let a = DeviceAuthorization {
            device_code: Secret::new("DC-SECRET"),
            ..authorization(None, 1)
        };
        let leaks = crate::redact::debug_leaks(&a, &["DC-SECRET"]);
        assert!(leaks.is_empty(), "{leaks:?}");
        let dbg = format!("{a:?}");
        assert!(
            dbg.contains("device_code: ***, user_code: \"ABCD-EFGH\""),
            "{dbg}"
        );
    }

    #[test]
    fn the_schedule_honours_the_server_interval_and_defaults_to_five_seconds() {
        let mut s = PollSchedule::new(&authorization(None, 600), None);
        assert_eq!(s.next_wait(), Some(Duration::from_secs(5)));
        let mut s = PollSchedule::new(&authorization(Some(7), 600), None);
        assert_eq!(s.next_wait(), Some(Duration::from_secs(7)));
        let mut s = PollSchedule::new(&authorization(Some(0), 600), None);
        assert_eq!(s.next_wait(), Some(DEFAULT_POLL_INTERVAL));
        let mut s = PollSchedule::new(
            &authorization(Some(7), 600),
            Some(Duration::from_millis(50)),
        );
        assert_eq!(s.next_wait(), Some(Duration::from_millis(50)));
    }

    #[test]
    fn slow_down_adds_five_seconds_to_every_later_wait() {
        let mut s = PollSchedule::new(&authorization(Some(5), 600), None);
        let mut waits = vec![s.next_wait().unwrap()];
        s.slow_down();
        waits.push(s.next_wait().unwrap());
        waits.push(s.next_wait().unwrap());
        s.slow_down();
        waits.push(s.next_wait().unwrap());
        let secs: Vec<u64> = waits.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, [5, 10, 10, 15]);
    }

    #[test]
    fn the_schedule_ends_when_the_device_code_expires() {
        let mut s = PollSchedule::new(&authorization(Some(5), 15), None);
        let waits: Vec<_> = std::iter::from_fn(|| s.next_wait()).collect();
        assert_eq!(waits.len(), 3);
    }

    #[test]
    fn endpoints_and_tenants() {
        let e = Endpoints::new(
            &Cloud::azure_china(),
            "72f988bf-86f1-41af-91ab-2d7cd011db47",
        )
        .unwrap();
        assert_eq!(
            e.devicecode.as_str(),
            "https://login.chinacloudapi.cn/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/devicecode"
        );
        for bad in ["", "a/b", "../x", "a?b", "a b"] {
            assert!(
                Endpoints::new(&Cloud::azure_public(), bad).is_err(),
                "{bad}"
            );
        }
        assert!(Endpoints::new(&Cloud::azure_public(), "contoso.onmicrosoft.com").is_ok());
        let http = Url::parse("http://127.0.0.1:1/").unwrap();
        assert!(Endpoints::at(&http, "organizations").is_err());
    }

    #[test]
    fn scopes_are_checked() {
        assert!(validate_scopes(&[]).is_err());
        assert!(validate_scopes(&["https://management.azure.com/.default"]).is_ok());
        assert!(validate_scopes(&["https://x/.default offline_access"]).is_err());
        assert!(validate_scopes(&["a&b=c"]).is_err());
    }

    #[test]
    fn account_claims_come_from_the_jwt_payload() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"oid":"o","tid":"t","preferred_username":"ada@contoso.com"}"#);
        let claims = AccountClaims::from_jwt(&Secret::new(format!("h.{payload}.s"))).unwrap();
        assert_eq!(
            claims.preferred_username.as_deref(),
            Some("ada@contoso.com")
        );
        assert_eq!(claims.oid.as_deref(), Some("o"));
        assert!(AccountClaims::from_jwt(&Secret::new("opaque")).is_none());
    }
}
