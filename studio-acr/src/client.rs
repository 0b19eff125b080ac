//! The registry client: every request to one registry goes through [`RegistryClient::send`],
//! which authenticates (re-authenticating once when the registry refuses a token or asks for a
//! wider scope; again, up to three times, when a renewed token expires while the request waits
//! for a retry) and retries throttling, server errors and dropped connections with backoff,
//! honouring `Retry-After`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), studio_acr::Error> {
//! use studio_acr::auth::RegistryCredential;
//! use studio_acr::client::{RegistryClient, RegistryClientOptions};
//!
//! let client = RegistryClient::new("127.0.0.1:5000", RegistryCredential::Anonymous, RegistryClientOptions::default())?;
//! for tag in client.list_tags("leaf-ai/runner", Some(100)).await? {
//!     println!("{tag}");
//! }
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use azure_core::credentials::Secret;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Deserialize;
use tokio::sync::Mutex;
use url::Url;

use crate::Error;
use crate::auth::{Authenticator, RegistryCredential, Scope, is_loopback, merge_scopes};
use crate::challenge::{self, Challenge};
use studio_azure_auth::transport::{self, TransportOptions};

/// Media types the client accepts for manifests.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json";

/// How the client connects and retries.
#[derive(Clone, Debug)]
pub struct RegistryClientOptions {
    /// TLS roots and timeouts.
    pub transport: TransportOptions,
    /// Retries after the first attempt for 408/429/5xx and connection errors.
    pub max_retries: u32,
    /// The first backoff; doubled each retry, plus jitter, up to `max_backoff`.
    pub initial_backoff: Duration,
    /// The longest backoff (a longer `Retry-After` still wins, up to 5 minutes).
    pub max_backoff: Duration,
    /// Talk plain http to this registry. Only for a registry on loopback or one the user named
    /// explicitly as insecure; tokens are never sent over http to anything else.
    pub insecure_http: bool,
}

impl Default for RegistryClientOptions {
    fn default() -> Self {
        Self {
            transport: TransportOptions::default(),
            max_retries: 6,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            insecure_http: false,
        }
    }
}

/// A client for one registry. Cheap to clone; clones share tokens.
#[derive(Clone)]
pub struct RegistryClient {
    host: String,
    base: Url,
    http: reqwest::Client,
    upload_http: reqwest::Client,
    auth: Arc<Authenticator>,
    challenge: Arc<Mutex<Option<Challenge>>>,
    options: RegistryClientOptions,
}

impl fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryClient")
            .field("host", &self.host)
            .field("credential", self.auth.credential())
            .finish_non_exhaustive()
    }
}

/// The read timeout of the upload client: effectively none ([`RegistryClient::send_upload`]
/// enforces the configured one on progress instead).
const UPLOAD_READ_TIMEOUT: Duration = Duration::from_secs(7 * 24 * 3600);

/// When a streamed request body last moved, for [`RegistryClient::send_upload`]. Clones share
/// the clock.
#[derive(Clone, Debug)]
pub struct BodyProgress(Arc<std::sync::Mutex<Instant>>);

impl Default for BodyProgress {
    fn default() -> Self {
        Self(Arc::new(std::sync::Mutex::new(Instant::now())))
    }
}

impl BodyProgress {
    /// Records progress now.
    pub fn touch(&self) {
        if let Ok(mut t) = self.0.lock() {
            *t = Instant::now();
        }
    }

    /// How long since the last progress.
    pub fn idle(&self) -> Duration {
        self.0.lock().map(|t| t.elapsed()).unwrap_or_default()
    }
}

/// The result of one [`RegistryClient::send_once`].
#[derive(Debug)]
pub enum Attempt {
    /// An answer that is neither transient nor an authentication challenge.
    Response(Response),
    /// The registry refused the token; a new one is cached for the next attempt.
    Reauthenticated,
    /// A transient failure (408, 429, 5xx, a dropped connection): try again after `wait`.
    Transient {
        /// The backoff (or the registry's `Retry-After`).
        wait: Duration,
        /// What failed.
        reason: String,
    },
}

/// A page of `tags/list`.
#[derive(Deserialize)]
struct TagList {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

/// A page of `_catalog`.
#[derive(Deserialize)]
struct Catalog {
    #[serde(default)]
    repositories: Option<Vec<String>>,
}

impl RegistryClient {
    /// A client for the registry at `host` (`name.azurecr.io`, `127.0.0.1:5000`).
    pub fn new(
        host: &str,
        credential: RegistryCredential,
        options: RegistryClientOptions,
    ) -> Result<Self, Error> {
        let scheme = if options.insecure_http {
            "http"
        } else {
            "https"
        };
        let base =
            Url::parse(&format!("{scheme}://{host}/")).map_err(|e| Error::InvalidReference {
                input: host.to_owned(),
                at: 0,
                part: "registry".to_owned(),
                reason: e.to_string(),
            })?;
        if options.insecure_http && !is_loopback(&base) {
            tracing::warn!(
                host,
                "talking plain http to a registry that is not on loopback, as asked"
            );
        }
        let http = transport::http_client(&options.transport)?;
        // Blob bodies can take longer to send than any read timeout: reqwest's read timeout
        // runs from the start of a request until its answer, so uploads use a client without
        // one and [`RegistryClient::send_upload`] watches the body's progress instead.
        let upload_http = transport::http_client(&TransportOptions {
            read_timeout: UPLOAD_READ_TIMEOUT,
            http1_only: true,
            ..options.transport.clone()
        })?;
        Ok(Self {
            host: host.to_owned(),
            base,
            upload_http,
            auth: Arc::new(Authenticator::new(credential, http.clone())),
            http,
            challenge: Arc::new(Mutex::new(None)),
            options,
        })
    }

    /// The registry host.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The HTTP client (for streaming bodies).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The HTTP client for streamed uploads (no read timeout of its own; send its requests
    /// with [`RegistryClient::send_upload`], which times out on a stalled body or answer).
    pub fn upload_http(&self) -> &reqwest::Client {
        &self.upload_http
    }

    /// The options.
    pub fn options(&self) -> &RegistryClientOptions {
        &self.options
    }

    /// The URL of `path` on the registry (`v2/...`), or an absolute URL (a `Location`) resolved
    /// against it. A URL on another host is refused: credentials go only to this registry.
    pub fn url(&self, path: &str) -> Result<Url, Error> {
        let url = self
            .base
            .join(path)
            .map_err(|e| Error::Registry(format!("bad URL '{path}': {e}")))?;
        if url.host_str() != self.base.host_str()
            || url.port_or_known_default() != self.base.port_or_known_default()
        {
            return Err(Error::Registry(format!(
                "the registry pointed at {} which is not {}; refusing to send credentials there",
                url.origin().ascii_serialization(),
                self.host
            )));
        }
        Ok(url)
    }

    /// Sends a request built by `make` (called again for each attempt, so bodies are re-read
    /// from their source), authenticated for `scopes`. Returns any response that is not a
    /// transient failure or an authentication challenge; the caller checks its status.
    pub async fn send(
        &self,
        scopes: &[Scope],
        make: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response, Error> {
        let mut scopes = merge_scopes(scopes);
        let mut authorization = self.current_authorization(&scopes).await?;
        // A token refused right after it was issued is final; one that expires while the
        // request waits to be retried is renewed again, up to MAX_REAUTHENTICATIONS times.
        let mut fresh_token = false;
        let mut reauthentications = 0u32;
        let mut attempt = 0u32;
        loop {
            let mut request = make(&self.http);
            if let Some(value) = &authorization {
                request = request.header("authorization", value);
            }
            let result = request.send().await;
            let retry_after = match result {
                Ok(response)
                    if response.status() == StatusCode::UNAUTHORIZED
                        || is_insufficient_scope(&response) =>
                {
                    if fresh_token || reauthentications >= MAX_REAUTHENTICATIONS {
                        return Err(unauthorized(&self.host, response).await);
                    }
                    let Some(challenge) = parse_challenge(&response)? else {
                        return Err(unauthorized(&self.host, response).await);
                    };
                    let wanted: Vec<Scope> = challenge
                        .scopes()
                        .iter()
                        .filter_map(|s| Scope::parse(s))
                        .collect();
                    self.auth
                        .invalidate(challenge.param("service").unwrap_or_default(), &scopes)
                        .await;
                    scopes = merge_scopes(scopes.iter().chain(wanted.iter()));
                    authorization = Some(self.auth.authorize(&challenge, &scopes).await?);
                    *self.challenge.lock().await = Some(challenge);
                    fresh_token = true;
                    reauthentications += 1;
                    continue;
                }
                Ok(response)
                    if is_transient(response.status()) && attempt < self.options.max_retries =>
                {
                    let retry_after = response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(studio_azure_auth::arm::parse_retry_after);
                    tracing::debug!(status = %response.status(), attempt, "transient registry answer; retrying");
                    retry_after
                }
                Ok(response) => return Ok(response),
                Err(e) if is_transient_error(&e) && attempt < self.options.max_retries => {
                    tracing::debug!(error = %e, attempt, "connection error; retrying");
                    None
                }
                Err(e) => {
                    return Err(Error::Registry(format!(
                        "request to {} failed: {e}",
                        self.host
                    )));
                }
            };
            attempt += 1;
            fresh_token = false;
            tokio::time::sleep(self.backoff(attempt, retry_after)).await;
        }
    }

    /// One attempt of a request whose body is a stream that cannot be replayed (a blob read
    /// from its source). It is authenticated like [`RegistryClient::send`], but nothing is
    /// retried here: a refused token is replaced in the cache and reported as
    /// [`Attempt::Reauthenticated`], a transient failure as [`Attempt::Transient`] with the wait
    /// before the next try (`attempt` counts the tries so far), so the caller re-opens the
    /// body from its source and tries again.
    pub async fn send_once(
        &self,
        scopes: &[Scope],
        request: RequestBuilder,
        attempt: u32,
    ) -> Result<Attempt, Error> {
        let scopes = merge_scopes(scopes);
        let mut request = request;
        if let Some(value) = self.current_authorization(&scopes).await? {
            request = request.header("authorization", value);
        }
        let result = request.send().await;
        self.classify(&scopes, result, attempt).await
    }

    /// [`RegistryClient::send_once`] for a request built from
    /// [`RegistryClient::upload_http`] whose body reports its progress to `progress`: the
    /// attempt fails as [`Attempt::Transient`] once neither the body moved nor an answer came
    /// for the transport's read timeout — while a large body that keeps moving is never cut
    /// off, however long it takes.
    pub async fn send_upload(
        &self,
        scopes: &[Scope],
        request: RequestBuilder,
        attempt: u32,
        progress: &BodyProgress,
    ) -> Result<Attempt, Error> {
        let scopes = merge_scopes(scopes);
        let mut request = request;
        if let Some(value) = self.current_authorization(&scopes).await? {
            request = request.header("authorization", value);
        }
        progress.touch();
        let limit = self.options.transport.read_timeout;
        let tick = (limit / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
        let send = request.send();
        tokio::pin!(send);
        loop {
            tokio::select! {
                result = &mut send => return self.classify(&scopes, result, attempt).await,
                () = tokio::time::sleep(tick) => {
                    if progress.idle() >= limit {
                        tracing::debug!(host = %self.host, "an upload stalled; giving up on this attempt");
                        return Ok(Attempt::Transient {
                            wait: self.backoff(attempt + 1, None),
                            reason: format!(
                                "{}: neither the upload moved nor an answer came for {limit:?}",
                                self.host
                            ),
                        });
                    }
                }
            }
        }
    }

    async fn classify(
        &self,
        scopes: &[Scope],
        result: Result<Response, reqwest::Error>,
        attempt: u32,
    ) -> Result<Attempt, Error> {
        match result {
            Ok(response)
                if response.status() == StatusCode::UNAUTHORIZED
                    || is_insufficient_scope(&response) =>
            {
                let Some(challenge) = parse_challenge(&response)? else {
                    return Err(unauthorized(&self.host, response).await);
                };
                let wanted: Vec<Scope> = challenge
                    .scopes()
                    .iter()
                    .filter_map(|s| Scope::parse(s))
                    .collect();
                let service = challenge.param("service").unwrap_or_default().to_owned();
                self.auth.invalidate(&service, scopes).await;
                let scopes = merge_scopes(scopes.iter().chain(wanted.iter()));
                self.auth.invalidate(&service, &scopes).await;
                self.auth.authorize(&challenge, &scopes).await?;
                *self.challenge.lock().await = Some(challenge);
                tracing::debug!(host = %self.host, "the registry refused the token; renewed it");
                Ok(Attempt::Reauthenticated)
            }
            Ok(response) if is_transient(response.status()) => {
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(studio_azure_auth::arm::parse_retry_after);
                Ok(Attempt::Transient {
                    wait: self.backoff(attempt + 1, retry_after),
                    reason: format!("the registry answered {}", response.status()),
                })
            }
            Ok(response) => Ok(Attempt::Response(response)),
            Err(e) if is_transient_error(&e) => Ok(Attempt::Transient {
                wait: self.backoff(attempt + 1, None),
                reason: format!("request to {} failed: {e}", self.host),
            }),
            Err(e) => Err(Error::Registry(format!(
                "request to {} failed: {e}",
                self.host
            ))),
        }
    }

    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let base = self
            .options
            .initial_backoff
            .saturating_mul(1u32 << attempt.min(16));
        let jitter = Duration::from_millis(u64::from(jitter_ms()));
        let policy = base.min(self.options.max_backoff) + jitter;
        match retry_after {
            Some(server) => server.min(Duration::from_secs(300)).max(policy.min(server)),
            None => policy,
        }
    }

    async fn current_authorization(&self, scopes: &[Scope]) -> Result<Option<String>, Error> {
        let challenge = self.challenge.lock().await.clone();
        match challenge {
            None => Ok(None),
            Some(c) if c.is_bearer() => {
                let service = c.param("service").unwrap_or_default();
                match self.auth.cached(service, scopes).await {
                    Some(header) => Ok(Some(header)),
                    None => self.auth.authorize(&c, scopes).await.map(Some),
                }
            }
            Some(c) => self.auth.authorize(&c, scopes).await.map(Some),
        }
    }

    /// `GET /v2/`: checks that the registry answers and that the credential is accepted.
    pub async fn ping(&self) -> Result<(), Error> {
        let url = self.url("v2/")?;
        let response = self.send(&[], |http| http.get(url.clone())).await?;
        check(response, "GET /v2/").await.map(drop)
    }

    /// The ACR refresh token for this registry (what `az acr login` stores as the docker
    /// identity token): asks `/v2/` for the challenge, then exchanges the Entra token.
    pub async fn acr_refresh_token(&self) -> Result<Secret, Error> {
        let url = self.url("v2/")?;
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| Error::Registry(format!("GET /v2/ on {}: {e}", self.host)))?;
        let challenge = parse_challenge(&response)?
            .filter(Challenge::is_bearer)
            .ok_or_else(|| {
                Error::Registry(format!("{} does not use token authentication", self.host))
            })?;
        let realm = challenge
            .param("realm")
            .and_then(|r| Url::parse(r).ok())
            .ok_or_else(|| {
                Error::InvalidChallenge("a Bearer challenge without a usable realm".to_owned())
            })?;
        let service = challenge.param("service").unwrap_or(&self.host).to_owned();
        self.auth.acr_refresh_token(&realm, &service).await
    }

    /// Every tag of `repository`, following `Link` pagination (`page_size` tags a page).
    pub async fn list_tags(
        &self,
        repository: &str,
        page_size: Option<u32>,
    ) -> Result<Vec<String>, Error> {
        let scopes = [Scope::repository(repository, &["pull"])];
        let mut url = self.url(&format!("v2/{repository}/tags/list"))?;
        if let Some(n) = page_size {
            url.query_pairs_mut().append_pair("n", &n.to_string());
        }
        let mut tags = Vec::new();
        for page in self.pages::<TagList>(&scopes, url).await? {
            tags.extend(page.tags.unwrap_or_default());
        }
        Ok(tags)
    }

    /// Every repository (`_catalog`), following `Link` pagination.
    pub async fn catalog(&self, page_size: Option<u32>) -> Result<Vec<String>, Error> {
        let mut url = self.url("v2/_catalog")?;
        if let Some(n) = page_size {
            url.query_pairs_mut().append_pair("n", &n.to_string());
        }
        let mut repositories = Vec::new();
        for page in self.pages::<Catalog>(&[Scope::catalog()], url).await? {
            repositories.extend(page.repositories.unwrap_or_default());
        }
        Ok(repositories)
    }

    async fn pages<T: for<'de> Deserialize<'de>>(
        &self,
        scopes: &[Scope],
        first: Url,
    ) -> Result<Vec<T>, Error> {
        let mut pages = Vec::new();
        let mut next = Some(first);
        while let Some(url) = next.take() {
            if pages.len() > 100_000 {
                return Err(Error::Registry(
                    "more than 100000 pages; the registry's Link loops".to_owned(),
                ));
            }
            let response = self.send(scopes, |http| http.get(url.clone())).await?;
            let response = check(response, url.path()).await?;
            if let Some(link) = response
                .headers()
                .get("link")
                .and_then(|v| v.to_str().ok())
                .and_then(next_link)
            {
                next = Some(self.url(&link)?);
            }
            let page: T = response
                .json()
                .await
                .map_err(|e| Error::Registry(format!("{}: not a listing: {e}", url.path())))?;
            pages.push(page);
        }
        Ok(pages)
    }
}

/// The `rel="next"` target of a `Link` header.
pub fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params.split(';').any(|p| {
            p.trim()
                .replace(' ', "")
                .eq_ignore_ascii_case("rel=\"next\"")
                || p.trim().eq_ignore_ascii_case("rel=next")
        });
        let target = target.trim();
        (is_next && target.starts_with('<') && target.ends_with('>'))
            .then(|| target[1..target.len() - 1].to_owned())
    })
}

fn parse_challenge(response: &Response) -> Result<Option<Challenge>, Error> {
    let Some(value) = response.headers().get("www-authenticate") else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| Error::InvalidChallenge("the header is not text".to_owned()))?;
    let challenges = challenge::parse(text)?;
    // Prefer Bearer when a registry offers several schemes.
    Ok(challenges
        .iter()
        .find(|c| c.is_bearer())
        .or(challenges.first())
        .cloned())
}

fn is_insufficient_scope(response: &Response) -> bool {
    response.status() == StatusCode::FORBIDDEN
        && response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("insufficient_scope"))
}

fn is_transient(status: StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

fn is_transient_error(e: &reqwest::Error) -> bool {
    e.is_connect() || e.is_timeout() || e.is_request() || e.is_body()
}

fn jitter_ms() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (nanos % 250) as u16
}

/// How many times one request (or one blob upload) renews a token the registry refused.
pub(crate) const MAX_REAUTHENTICATIONS: u32 = 3;

async fn unauthorized(host: &str, response: Response) -> Error {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    Error::Unauthorized {
        registry: host.to_owned(),
        reason: format!("{status}: {}", registry_error_message(&body)),
    }
}

/// The first `errors[].message` of a registry error body, or the body's start.
pub fn registry_error_message(body: &str) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    parsed
        .as_ref()
        .and_then(|v| v.get("errors")?.as_array()?.first().cloned())
        .map(|e| {
            format!(
                "{} {}",
                e.get("code").and_then(|c| c.as_str()).unwrap_or_default(),
                e.get("message")
                    .and_then(|m| m.as_str())
                    .unwrap_or_default()
            )
            .trim()
            .to_owned()
        })
        .unwrap_or_else(|| body.chars().take(200).collect())
}

/// Passes a 2xx response through; anything else becomes [`Error::RegistryStatus`].
pub async fn check(response: Response, what: &str) -> Result<Response, Error> {
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    Err(Error::RegistryStatus {
        what: what.to_owned(),
        status,
        message: registry_error_message(&body),
    })
}

/// The method of a request, for building requests in closures.
pub fn method(m: &str) -> Method {
    Method::from_bytes(m.as_bytes()).unwrap_or(Method::GET)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers() {
        assert_eq!(
            next_link(r#"</v2/a/tags/list?n=2&last=b>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?n=2&last=b")
        );
        assert_eq!(
            next_link(r#"<https://x/prev>; rel="prev", </next>; rel="next""#).as_deref(),
            Some("/next")
        );
        assert_eq!(next_link(r#"</x>; rel="prev""#), None);
    }

    #[test]
    fn registry_errors_are_summarised() {
        let body = r#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known to registry","detail":{"name":"x"}}]}"#;
        assert_eq!(
            registry_error_message(body),
            "NAME_UNKNOWN repository name not known to registry"
        );
        assert_eq!(registry_error_message("oops"), "oops");
    }
}
