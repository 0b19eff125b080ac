//! A token service that speaks Azure Container Registry's OAuth protocol, for a token-mode
//! `docker-registry`.
//!
//! The protocol is ACR's (`../shared/vectors/acr/docs/AAD-OAuth.md`, and the Go SDK's recorded
//! sessions in `../shared/vectors/azure-sdk-assets/`):
//!
//! - `POST /oauth2/exchange` (form: `grant_type=access_token`, `service`, `tenant`,
//!   `access_token`) verifies the Entra access token against the Entra stand-in's JWKS (issuer,
//!   audience, expiry, signature) and answers `{"refresh_token": …}`; a bad token gets 401.
//! - `POST /oauth2/token` (form: `grant_type=refresh_token` with an ACR refresh token, or
//!   `grant_type=password` with admin `username`/`password`; `service`; one or more `scope`)
//!   answers `{"access_token": …}`.
//! - `GET /oauth2/token?service=…&scope=…` with HTTP basic auth (docker's and skopeo's flow;
//!   user `00000000-0000-0000-0000-000000000000` means the password is an ACR refresh token)
//!   answers `{"token": …, "access_token": …}`.
//!
//! Access tokens are ES256 JWTs whose `x5c` header carries the signing certificate, which is the
//! registry's `rootcertbundle`; their `access` claim lists the granted repository actions, so
//! the registry enforces scopes itself. Grants default to everything asked; [`AcrTokenService::
//! restrict`] limits a principal to repositories under given prefixes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, jwk::JwkSet};
use serde_json::{Value, json};
use url::Url;
use wiremock::{Mock, Request, Respond, ResponseTemplate, matchers::any};

use crate::https::HttpsMock;
use crate::pki::{IssuedCert, self_signed_signer};

/// The user name that marks an ACR refresh token as the password, as `az acr login` uses it.
pub const NULL_GUID_USER: &str = "00000000-0000-0000-0000-000000000000";

/// Which Entra tokens `/oauth2/exchange` accepts.
#[derive(Clone)]
pub struct AadTrust {
    /// The expected `iss`, e.g. `https://127.0.0.1:PORT/<tenant>/v2.0`.
    pub issuer: String,
    /// Accepted `aud` values (ACR's and ARM's audiences).
    pub audiences: Vec<String>,
    /// The Entra signing keys.
    pub jwks: JwkSet,
}

/// One principal's grant: repositories under `prefix` with these actions.
#[derive(Clone, Debug)]
struct Grant {
    prefix: String,
    actions: Vec<String>,
}

struct State {
    service: String,
    issuer: String,
    signing_key: EncodingKey,
    verifying_key: DecodingKey,
    x5c: String,
    aad: Option<AadTrust>,
    basic_users: Mutex<HashMap<String, String>>,
    grants: Mutex<HashMap<String, Vec<Grant>>>,
    access_ttl: Mutex<Duration>,
    /// Seconds the access tokens' times are set back, and the `expires_in` advertised.
    access_skew: Mutex<(u64, Option<u64>)>,
}

/// The running token service.
pub struct AcrTokenService {
    mock: HttpsMock,
    state: Arc<State>,
    signer: IssuedCert,
}

impl AcrTokenService {
    /// Starts the service for registry `service` (e.g. `127.0.0.1:5000`), trusting `aad`.
    pub async fn start(service: &str, aad: Option<AadTrust>) -> Result<Self> {
        let dir = crate::rig().subdir(&format!("acr-token-{}", service.replace(':', "-")))?;
        let signer = self_signed_signer(&dir, "token-signer", false)?;
        let state = Arc::new(State {
            service: service.to_owned(),
            issuer: "Azure Container Registry".to_owned(),
            signing_key: EncodingKey::from_ec_pem(signer.key_pem.as_bytes())?,
            verifying_key: DecodingKey::from_ec_pem(signer.cert_pem.as_bytes())?,
            x5c: base64::engine::general_purpose::STANDARD.encode(&signer.cert_der),
            aad,
            basic_users: Mutex::new(HashMap::new()),
            grants: Mutex::new(HashMap::new()),
            access_ttl: Mutex::new(Duration::from_secs(3600)),
            access_skew: Mutex::new((0, None)),
        });
        let mock = HttpsMock::start().await?;
        Mock::given(any())
            .respond_with(Handler(state.clone()))
            .mount(&mock.server)
            .await;
        Ok(Self {
            mock,
            state,
            signer,
        })
    }

    /// The registry's `service` name.
    pub fn service(&self) -> &str {
        &self.state.service
    }

    /// The `iss` of the tokens (ACR's: `Azure Container Registry`).
    pub fn issuer(&self) -> &str {
        &self.state.issuer
    }

    /// The realm the registry advertises: `https://127.0.0.1:<port>/oauth2/token`.
    pub fn realm(&self) -> String {
        format!("{}/oauth2/token", self.mock.uri())
    }

    /// The service's base URL.
    pub fn url(&self) -> Url {
        self.mock.url()
    }

    /// The certificate whose key signs tokens (the registry's `rootcertbundle`).
    pub fn signer_cert_path(&self) -> &std::path::Path {
        &self.signer.cert_path
    }

    /// Accepts `username`/`password` as basic credentials (an ACR admin user).
    pub fn add_basic_user(&self, username: &str, password: &str) {
        if let Ok(mut users) = self.state.basic_users.lock() {
            users.insert(username.to_owned(), password.to_owned());
        }
    }

    /// Limits `subject` to repositories starting with one of `prefixes`, with `actions`.
    pub fn restrict(&self, subject: &str, prefixes: &[&str], actions: &[&str]) {
        if let Ok(mut grants) = self.state.grants.lock() {
            grants.insert(
                subject.to_owned(),
                prefixes
                    .iter()
                    .map(|p| Grant {
                        prefix: (*p).to_owned(),
                        actions: actions.iter().map(|a| (*a).to_owned()).collect(),
                    })
                    .collect(),
            );
        }
    }

    /// Sets the lifetime of the access tokens issued from now on.
    pub fn set_access_token_ttl(&self, ttl: Duration) {
        if let Ok(mut t) = self.state.access_ttl.lock() {
            *t = ttl;
        }
    }

    /// Simulates a token service whose clock lags by `backdate` while it tells clients the
    /// token lives `advertised_expires_in` seconds (docker's `expires_in`): the registry (which
    /// allows 60 s of leeway) refuses such a token `ttl + 60 - backdate` seconds after it was
    /// issued, while the client still believes it fresh, so a push sees a real mid-push 401.
    /// `(Duration::ZERO, None)` restores normal tokens.
    pub fn set_access_token_skew(&self, backdate: Duration, advertised_expires_in: Option<u64>) {
        if let Ok(mut s) = self.state.access_skew.lock() {
            *s = (backdate.as_secs(), advertised_expires_in);
        }
    }

    /// Every request the service received, in order (for assertions on the protocol).
    pub async fn received(&self) -> Vec<Request> {
        self.mock.received().await
    }
}

struct Handler(Arc<State>);

impl Respond for Handler {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        match self.0.handle(request) {
            Ok(body) => ResponseTemplate::new(200).set_body_json(body),
            Err(Denied(status, why)) => {
                tracing::info!(status, why, "acr token service denied a request");
                ResponseTemplate::new(status)
                    .set_body_json(json!({"errors":[{"code":"UNAUTHORIZED","message":why}]}))
            }
        }
    }
}

struct Denied(u16, String);

fn deny<T>(status: u16, why: impl Into<String>) -> Result<T, Denied> {
    Err(Denied(status, why.into()))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl State {
    fn handle(&self, request: &Request) -> Result<Value, Denied> {
        let path = request.url.path();
        let method = request.method.as_str();
        let mut params: Vec<(String, String)> = request
            .url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if method == "POST" {
            params.extend(
                url::form_urlencoded::parse(&request.body)
                    .map(|(k, v)| (k.into_owned(), v.into_owned())),
            );
        }
        let get = |key: &str| {
            params
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        let scopes: Vec<&str> = params
            .iter()
            .filter(|(k, _)| k == "scope")
            .flat_map(|(_, v)| v.split(' '))
            .filter(|s| !s.is_empty())
            .collect();
        if let Some(service) = get("service")
            && service != self.service
        {
            return deny(400, format!("unknown service '{service}'"));
        }
        match (method, path) {
            ("POST", "/oauth2/exchange") => {
                if get("grant_type") != Some("access_token") {
                    return deny(400, "grant_type must be access_token");
                }
                let token = get("access_token").unwrap_or_default();
                let (subject, tenant) = self.verify_aad(token)?;
                let tenant = get("tenant").map(str::to_owned).unwrap_or(tenant);
                Ok(json!({ "refresh_token": self.refresh_token(&subject, &tenant)? }))
            }
            ("POST", "/oauth2/token") => {
                let subject = match get("grant_type") {
                    Some("refresh_token") => {
                        self.verify_refresh(get("refresh_token").unwrap_or_default())?
                    }
                    Some("password") => self.verify_basic(
                        get("username").unwrap_or_default(),
                        get("password").unwrap_or_default(),
                    )?,
                    other => return deny(400, format!("unsupported grant_type {other:?}")),
                };
                Ok(self.with_expires_in(
                    json!({ "access_token": self.access_token(&subject, &scopes)? }),
                ))
            }
            ("GET", "/oauth2/token") => {
                let Some((user, pass)) = basic_credentials(request) else {
                    return deny(401, "basic credentials required");
                };
                let subject = if user == NULL_GUID_USER {
                    self.verify_refresh(&pass)?
                } else {
                    self.verify_basic(&user, &pass)?
                };
                let token = self.access_token(&subject, &scopes)?;
                Ok(self.with_expires_in(json!({ "token": token, "access_token": token })))
            }
            _ => deny(404, format!("no route {method} {path}")),
        }
    }

    fn with_expires_in(&self, mut body: Value) -> Value {
        if let Ok(skew) = self.access_skew.lock()
            && let Some(expires_in) = skew.1
        {
            body["expires_in"] = json!(expires_in);
        }
        body
    }

    fn verify_aad(&self, token: &str) -> Result<(String, String), Denied> {
        let Some(aad) = &self.aad else {
            return deny(401, "this registry does not accept Entra tokens");
        };
        let header =
            jsonwebtoken::decode_header(token).or_else(|e| deny(401, format!("bad token: {e}")))?;
        let jwk = match &header.kid {
            Some(kid) => aad.jwks.find(kid),
            None => aad.jwks.keys.first(),
        };
        let Some(jwk) = jwk else {
            return deny(401, "token signed by an unknown key");
        };
        let key = DecodingKey::from_jwk(jwk).or_else(|e| deny(401, format!("bad key: {e}")))?;
        let mut validation = Validation::new(header.alg);
        validation.set_audience(&aad.audiences);
        validation.set_issuer(&[&aad.issuer]);
        let data = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .or_else(|e| deny(401, format!("Entra token rejected: {e}")))?;
        let claims = data.claims;
        let subject = ["oid", "sub", "appid", "azp"]
            .iter()
            .find_map(|c| claims.get(*c).and_then(Value::as_str))
            .unwrap_or("unknown")
            .to_owned();
        let tenant = claims
            .get("tid")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        Ok((subject, tenant))
    }

    fn verify_refresh(&self, token: &str) -> Result<String, Denied> {
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_audience(&[&self.service]);
        validation.set_issuer(&[&self.issuer]);
        let data = jsonwebtoken::decode::<Value>(token, &self.verifying_key, &validation)
            .or_else(|e| deny(401, format!("refresh token rejected: {e}")))?;
        if data.claims.get("grant_type").and_then(Value::as_str) != Some("refresh_token") {
            return deny(401, "not a refresh token");
        }
        Ok(data
            .claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned())
    }

    fn verify_basic(&self, user: &str, pass: &str) -> Result<String, Denied> {
        let users = self
            .basic_users
            .lock()
            .map_err(|_| Denied(500, "poisoned".into()))?;
        match users.get(user) {
            Some(expected) if expected == pass => Ok(user.to_owned()),
            _ => deny(401, "invalid username or password"),
        }
    }

    fn sign(&self, claims: &Value) -> Result<String, Denied> {
        let mut header = Header::new(Algorithm::ES256);
        header.x5c = Some(vec![self.x5c.clone()]);
        jsonwebtoken::encode(&header, claims, &self.signing_key)
            .or_else(|e| deny(500, format!("signing failed: {e}")))
    }

    fn refresh_token(&self, subject: &str, tenant: &str) -> Result<String, Denied> {
        let now = now();
        self.sign(&json!({
            "jti": crate::registry::random_hex(16), "sub": subject, "nbf": now - 5, "iat": now,
            "exp": now + 3 * 3600, "iss": self.issuer, "aud": self.service, "version": "1.0",
            "grant_type": "refresh_token", "tenant": tenant,
            "permissions": {"actions": ["*"], "notActions": []}, "roles": [],
        }))
    }

    fn access_token(&self, subject: &str, scopes: &[&str]) -> Result<String, Denied> {
        let grants = self
            .grants
            .lock()
            .map_err(|_| Denied(500, "poisoned".into()))?;
        let limits = grants.get(subject);
        let mut access = Vec::new();
        for scope in scopes {
            let Some((kind, rest)) = scope.split_once(':') else {
                continue;
            };
            let Some((name, actions)) = rest.rsplit_once(':') else {
                continue;
            };
            let asked: Vec<&str> = actions.split(',').filter(|a| !a.is_empty()).collect();
            let granted: Vec<String> = match limits {
                None => asked.iter().map(|a| (*a).to_owned()).collect(),
                Some(grants) => asked
                    .iter()
                    .filter(|a| {
                        grants.iter().any(|g| {
                            kind == "repository"
                                && name.starts_with(&g.prefix)
                                && g.actions.iter().any(|x| x == *a || x == "*")
                        })
                    })
                    .map(|a| (*a).to_owned())
                    .collect(),
            };
            if !granted.is_empty() {
                access.push(json!({"type": kind, "name": name, "actions": granted}));
            }
        }
        let ttl = self.access_ttl.lock().map(|t| t.as_secs()).unwrap_or(3600);
        let backdate = self.access_skew.lock().map(|s| s.0).unwrap_or(0);
        let now = now().saturating_sub(backdate);
        self.sign(&json!({
            "jti": crate::registry::random_hex(16), "sub": subject, "nbf": now - 5, "iat": now,
            "exp": now + ttl, "iss": self.issuer, "aud": self.service, "version": "1.0",
            "grant_type": "access_token", "access": access, "roles": [],
        }))
    }
}

fn basic_credentials(request: &Request) -> Option<(String, String)> {
    let value = request.headers.get("authorization")?.to_str().ok()?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_owned(), pass.to_owned()))
}

/// Fetches an Entra stand-in's JWKS and builds the trust for `/oauth2/exchange`.
pub async fn aad_trust(
    http: &reqwest::Client,
    jwks_url: Url,
    issuer: &str,
    audiences: &[&str],
) -> Result<AadTrust> {
    let jwks: JwkSet = http
        .get(jwks_url.clone())
        .send()
        .await?
        .error_for_status()?
        .json()
        .await
        .with_context(|| format!("reading JWKS from {jwks_url}"))?;
    Ok(AadTrust {
        issuer: issuer.to_owned(),
        audiences: audiences.iter().map(|a| (*a).to_owned()).collect(),
        jwks,
    })
}
