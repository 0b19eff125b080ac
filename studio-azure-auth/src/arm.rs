//! The Azure Resource Manager client: one client for every management call in the toolkit.
//!
//! [`ArmClient`] sends requests through azure_core's pipeline: bearer tokens from any
//! [`TokenCredential`], an `api-version` on every call, retries with exponential backoff and
//! jitter on 408/429/500/502/503/504 and connection errors, honouring `Retry-After` (seconds or
//! an HTTP date). On top of that it adds what ARM callers need:
//!
//! - ARM error bodies (`{"error":{"code","message","details"}}`) become [`Error::Arm`] with the
//!   code and message;
//! - [`ArmClient::list`] follows `nextLink` through every page;
//! - [`ArmClient::begin`] + [`ArmClient::wait`] run a long-running operation to its end:
//!   `Azure-AsyncOperation` first, else `Location`, else the resource's `provisioningState`;
//!   `Retry-After` between polls; terminal `Succeeded`, `Failed` (→ [`Error::OperationFailed`]
//!   with ARM's code and message) or `Canceled`; a progress callback; cancellable.
//!
//! The bearer token is only ever sent to the ARM endpoint's own host: a `nextLink`, `Location`
//! or `Azure-AsyncOperation` URL on another host is refused.
//!
//! ```no_run
//! # async fn demo(credential: std::sync::Arc<dyn azure_core::credentials::TokenCredential>) -> Result<(), studio_azure_auth::Error> {
//! use studio_azure_auth::arm::{ArmClient, ArmClientOptions};
//! use studio_azure_auth::cloud::Cloud;
//!
//! let arm = ArmClient::new(&Cloud::from_env(None)?, credential, ArmClientOptions::default())?;
//! let groups: Vec<serde_json::Value> =
//!     arm.list("/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups", "2025-04-01").await?;
//! println!("{} resource groups", groups.len());
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use azure_core::credentials::TokenCredential;
use azure_core::http::policies::Policy;
use azure_core::http::policies::auth::BearerTokenAuthorizationPolicy;
use azure_core::http::{
    ClientOptions, Context, ExponentialRetryOptions, Method, Pipeline, PipelineSendOptions,
    Request, RetryOptions,
};
use bytes::Bytes;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::Error;
use crate::cloud::Cloud;
use crate::transport::{self, TransportOptions};

/// How the ARM client retries and polls.
#[derive(Clone, Debug)]
pub struct ArmClientOptions {
    /// The HTTP transport (extra trusted roots, timeouts).
    pub transport: TransportOptions,
    /// Retries after the first attempt, for throttling, server errors and connection errors.
    pub max_retries: u32,
    /// The first backoff delay; each retry doubles it (plus jitter), up to `max_retry_delay`.
    pub initial_retry_delay: Duration,
    /// The longest backoff delay (a longer `Retry-After` from the server still wins).
    pub max_retry_delay: Duration,
    /// How long one request may keep retrying in total.
    pub max_retry_elapsed: Duration,
    /// How long to wait between polls of a long-running operation when the server does not
    /// say (`Retry-After`).
    pub poll_interval: Duration,
    /// How long a long-running operation may take before [`Error::PollTimeout`].
    pub poll_timeout: Duration,
}

impl Default for ArmClientOptions {
    fn default() -> Self {
        Self {
            transport: TransportOptions::default(),
            max_retries: 8,
            initial_retry_delay: Duration::from_millis(800),
            max_retry_delay: Duration::from_secs(60),
            max_retry_elapsed: Duration::from_secs(300),
            poll_interval: Duration::from_secs(5),
            poll_timeout: Duration::from_secs(3600),
        }
    }
}

/// A response from ARM: status, headers (names lower-cased) and body.
#[derive(Clone)]
pub struct ArmResponse {
    /// The HTTP status.
    pub status: u16,
    /// The headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
}

impl fmt::Debug for ArmResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Bodies can hold credentials (listCredentials, addPassword): never print them.
        f.debug_struct("ArmResponse")
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

impl ArmResponse {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (an empty body is `null`).
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        let body: &[u8] = if self.body.is_empty() {
            b"null"
        } else {
            &self.body
        };
        serde_json::from_slice(body).map_err(|e| Error::Decode {
            what: "ARM response body".to_owned(),
            reason: e.to_string(),
        })
    }
}

/// Progress of a long-running operation, for [`PollOptions::progress`].
#[derive(Clone, Debug)]
pub struct PollProgress {
    /// The operation's status as last reported (e.g. `InProgress`, `Creating`).
    pub status: String,
    /// How many polls so far.
    pub polls: u32,
    /// Time since the operation started.
    pub elapsed: Duration,
}

/// A callback that receives [`PollProgress`].
pub type ProgressFn = Arc<dyn Fn(&PollProgress) + Send + Sync>;

/// Options for [`ArmClient::wait`].
#[derive(Clone, Default)]
pub struct PollOptions {
    /// Called after each poll.
    pub progress: Option<ProgressFn>,
    /// Cancels the wait (the operation itself goes on in Azure).
    pub cancel: Option<CancellationToken>,
}

impl fmt::Debug for PollOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PollOptions")
            .field("progress", &self.progress.is_some())
            .field("cancel", &self.cancel)
            .finish()
    }
}

/// How to follow a started long-running operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PollMethod {
    /// Already finished; no polling.
    Done,
    /// Poll this `Azure-AsyncOperation` URL for `{status, error}`.
    AsyncOperation(Url),
    /// Poll this `Location` URL until it answers 200 or 204.
    Location(Url),
    /// GET the resource until its `properties.provisioningState` is terminal.
    ProvisioningState,
}

/// A long-running operation that has been started.
#[derive(Clone, Debug)]
pub struct Operation {
    /// The method of the request that started it.
    pub method: Method,
    /// The resource URL the operation acts on.
    pub resource: Url,
    /// How to follow it.
    pub poll: PollMethod,
    /// The `Location` header, if any (for the final result of POST operations).
    pub location: Option<Url>,
    /// The first response.
    pub initial: ArmResponse,
    /// The server's suggested first poll delay.
    retry_after: Option<Duration>,
}

/// The ARM client. Cheap to clone.
#[derive(Clone)]
pub struct ArmClient {
    endpoint: Url,
    pipeline: Arc<Pipeline>,
    options: ArmClientOptions,
}

impl fmt::Debug for ArmClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArmClient")
            .field("endpoint", &self.endpoint.as_str())
            .finish_non_exhaustive()
    }
}

/// The API version of `GET /subscriptions`.
pub const SUBSCRIPTIONS_API_VERSION: &str = "2022-12-01";

impl ArmClient {
    /// A client for `cloud`'s Resource Manager, authenticating with `credential`.
    pub fn new(
        cloud: &Cloud,
        credential: Arc<dyn TokenCredential>,
        options: ArmClientOptions,
    ) -> Result<Self, Error> {
        let scope = cloud.resource_manager_scope();
        Self::with_endpoint(cloud.resource_manager.clone(), &scope, credential, options)
    }

    /// A client for any ARM-shaped endpoint (e.g. Microsoft Graph), with tokens for `scope`.
    pub fn with_endpoint(
        endpoint: Url,
        scope: &str,
        credential: Arc<dyn TokenCredential>,
        options: ArmClientOptions,
    ) -> Result<Self, Error> {
        if endpoint.scheme() != "https" {
            return Err(Error::InvalidEndpoint {
                what: "ARM endpoint".to_owned(),
                value: endpoint.to_string(),
                reason: "endpoints must use https".to_owned(),
            });
        }
        let http = transport::http_client(&options.transport)?;
        let retry = RetryOptions::exponential(ExponentialRetryOptions {
            initial_delay: to_time(options.initial_retry_delay),
            max_retries: options.max_retries,
            max_total_elapsed: to_time(options.max_retry_elapsed),
            max_delay: to_time(options.max_retry_delay),
        });
        let client_options = ClientOptions {
            transport: Some(transport::azure_transport(http)),
            retry,
            ..Default::default()
        };
        let auth: Arc<dyn Policy> = Arc::new(BearerTokenAuthorizationPolicy::new(
            credential,
            [scope.to_owned()],
        ));
        let pipeline = Pipeline::new(
            option_env!("CARGO_PKG_NAME"),
            option_env!("CARGO_PKG_VERSION"),
            client_options,
            Vec::new(),
            vec![auth],
            None,
        );
        Ok(Self {
            endpoint,
            pipeline: Arc::new(pipeline),
            options,
        })
    }

    /// The endpoint, e.g. `https://management.azure.com/`.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// The options the client was built with.
    pub fn options(&self) -> &ArmClientOptions {
        &self.options
    }

    /// The URL of `path` (e.g. `/subscriptions/…`) with `api-version` set (none when empty, as
    /// for Microsoft Graph).
    pub fn url(&self, path: &str, api_version: &str) -> Result<Url, Error> {
        let mut url = self
            .endpoint
            .join(path.trim_start_matches('/'))
            .map_err(|e| Error::InvalidEndpoint {
                what: "ARM path".to_owned(),
                value: path.to_owned(),
                reason: e.to_string(),
            })?;
        set_api_version(&mut url, api_version);
        Ok(url)
    }

    /// Sends one request and returns the response whatever its status (after retries).
    pub async fn send_raw(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
    ) -> Result<ArmResponse, Error> {
        self.check_host(&url)?;
        tracing::debug!(%method, path = url.path(), "ARM request");
        let endpoint = format!("{}{}", url.origin().ascii_serialization(), url.path());
        let mut request = Request::new(url, method);
        request.insert_header("accept", "application/json");
        if let Some(body) = body {
            request.insert_header("content-type", "application/json");
            let bytes = serde_json::to_vec(body).map_err(|e| Error::Decode {
                what: "request body".to_owned(),
                reason: e.to_string(),
            })?;
            request.set_body(bytes);
        }
        let options = PipelineSendOptions {
            skip_checks: true,
            ..Default::default()
        };
        let response = self
            .pipeline
            .send(&Context::new(), &mut request, Some(options))
            .await
            .map_err(|e| Error::Http {
                endpoint,
                reason: error_chain(&e),
            })?;
        let (status, headers, body) = response.deconstruct();
        let headers = headers
            .iter()
            .map(|(k, v)| (k.as_str().to_ascii_lowercase(), v.as_str().to_owned()))
            .collect();
        let response = ArmResponse {
            status: u16::from(status),
            headers,
            body: Bytes::from(body),
        };
        tracing::debug!(status = response.status, "ARM response");
        Ok(response)
    }

    /// Sends a request and turns a non-2xx status into [`Error::Arm`].
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        api_version: &str,
        body: Option<&Value>,
    ) -> Result<ArmResponse, Error> {
        let url = self.url(path, api_version)?;
        let response = self.send_raw(method, url, body).await?;
        check(response)
    }

    /// `GET path` as `T`.
    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        api_version: &str,
    ) -> Result<T, Error> {
        self.send(Method::Get, path, api_version, None)
            .await?
            .json()
    }

    /// `GET path` as `T`, or `None` on 404.
    pub async fn get_optional<T: DeserializeOwned>(
        &self,
        path: &str,
        api_version: &str,
    ) -> Result<Option<T>, Error> {
        match self.send(Method::Get, path, api_version, None).await {
            Ok(response) => response.json().map(Some),
            Err(Error::Arm { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every item of a list, following `nextLink` through all pages.
    pub async fn list<T: DeserializeOwned>(
        &self,
        path: &str,
        api_version: &str,
    ) -> Result<Vec<T>, Error> {
        #[derive(Deserialize)]
        struct Page<T> {
            #[serde(default = "Vec::new")]
            value: Vec<T>,
            #[serde(rename = "nextLink", default)]
            next_link: Option<String>,
        }
        let mut items = Vec::new();
        let mut next = Some(self.url(path, api_version)?);
        let mut pages = 0u32;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > 10_000 {
                return Err(Error::Decode {
                    what: format!("list {path}"),
                    reason: "more than 10000 pages; the server's nextLink loops".to_owned(),
                });
            }
            let page: Page<T> = check(self.send_raw(Method::Get, url, None).await?)?.json()?;
            items.extend(page.value);
            if let Some(link) = page.next_link.filter(|l| !l.is_empty()) {
                let mut url = self.resolve(&link)?;
                if !url.query_pairs().any(|(k, _)| k == "api-version") {
                    set_api_version(&mut url, api_version);
                }
                next = Some(url);
            }
        }
        Ok(items)
    }

    /// Starts a long-running operation (`PUT`, `PATCH`, `POST` or `DELETE`) and says how to
    /// follow it. Non-2xx answers are [`Error::Arm`].
    pub async fn begin(
        &self,
        method: Method,
        path: &str,
        api_version: &str,
        body: Option<&Value>,
    ) -> Result<Operation, Error> {
        let resource = self.url(path, api_version)?;
        let initial = check(self.send_raw(method, resource.clone(), body).await?)?;
        let async_op = initial
            .header("azure-asyncoperation")
            .map(|u| self.resolve(u))
            .transpose()?;
        let location = initial
            .header("location")
            .map(|u| self.resolve(u))
            .transpose()?;
        let retry_after = initial.header("retry-after").and_then(parse_retry_after);
        let poll = match (initial.status, async_op, &location) {
            (_, Some(url), _) => PollMethod::AsyncOperation(url),
            (202, None, Some(url)) => PollMethod::Location(url.clone()),
            (_, None, Some(url)) if method != Method::Put && method != Method::Patch => {
                PollMethod::Location(url.clone())
            }
            (204, None, _) => PollMethod::Done,
            _ if (method == Method::Put || method == Method::Patch)
                && !is_terminal(
                    provisioning_state(&initial)
                        .as_deref()
                        .unwrap_or("Succeeded"),
                ) =>
            {
                PollMethod::ProvisioningState
            }
            _ => PollMethod::Done,
        };
        tracing::debug!(
            ?poll,
            status = initial.status,
            "long-running operation started"
        );
        Ok(Operation {
            method,
            resource,
            poll,
            location,
            initial,
            retry_after,
        })
    }

    /// Polls `operation` to its end and returns the final body (the resource for `PUT`/`PATCH`,
    /// the result for `POST`, `null` when there is none).
    pub async fn wait(&self, operation: &Operation, options: &PollOptions) -> Result<Value, Error> {
        let started = Instant::now();
        let mut polls = 0u32;
        let mut delay = operation.retry_after;
        let final_body = loop {
            if matches!(operation.poll, PollMethod::Done) {
                break operation.initial.json::<Value>()?;
            }
            if started.elapsed() > self.options.poll_timeout {
                return Err(Error::PollTimeout {
                    operation: operation.resource.path().to_owned(),
                    waited: started.elapsed(),
                });
            }
            self.pause(delay.unwrap_or(self.options.poll_interval), options)
                .await?;
            polls += 1;
            let (status, next_delay, done) = match &operation.poll {
                PollMethod::Done => unreachable!("handled above"),
                PollMethod::AsyncOperation(url) => {
                    let response = check(self.send_raw(Method::Get, url.clone(), None).await?)?;
                    let body: Value = response.json()?;
                    let status = body
                        .get("status")
                        .and_then(Value::as_str)
                        .unwrap_or("InProgress")
                        .to_owned();
                    let retry = response.header("retry-after").and_then(parse_retry_after);
                    if is_terminal(&status) {
                        fail_unless_succeeded(&status, body.get("error"), operation)?;
                        (status, retry, Some(self.final_result(operation).await?))
                    } else {
                        (status, retry, None)
                    }
                }
                PollMethod::Location(url) => {
                    let response = check(self.send_raw(Method::Get, url.clone(), None).await?)?;
                    let retry = response.header("retry-after").and_then(parse_retry_after);
                    if response.status == 202 {
                        ("InProgress".to_owned(), retry, None)
                    } else {
                        (
                            "Succeeded".to_owned(),
                            retry,
                            Some(response.json::<Value>()?),
                        )
                    }
                }
                PollMethod::ProvisioningState => {
                    let response = check(
                        self.send_raw(Method::Get, operation.resource.clone(), None)
                            .await?,
                    )?;
                    let status =
                        provisioning_state(&response).unwrap_or_else(|| "Succeeded".to_owned());
                    let retry = response.header("retry-after").and_then(parse_retry_after);
                    if is_terminal(&status) {
                        let body: Value = response.json()?;
                        fail_unless_succeeded(
                            &status,
                            body.pointer("/properties/error"),
                            operation,
                        )?;
                        (status, retry, Some(body))
                    } else {
                        (status, retry, None)
                    }
                }
            };
            if let Some(progress) = &options.progress {
                progress(&PollProgress {
                    status: status.clone(),
                    polls,
                    elapsed: started.elapsed(),
                });
            }
            tracing::debug!(status, polls, "long-running operation polled");
            if let Some(body) = done {
                break body;
            }
            delay = next_delay;
        };
        Ok(final_body)
    }

    /// [`ArmClient::begin`] then [`ArmClient::wait`].
    pub async fn run(
        &self,
        method: Method,
        path: &str,
        api_version: &str,
        body: Option<&Value>,
        options: &PollOptions,
    ) -> Result<Value, Error> {
        let operation = self.begin(method, path, api_version, body).await?;
        self.wait(&operation, options).await
    }

    async fn final_result(&self, operation: &Operation) -> Result<Value, Error> {
        match operation.method {
            Method::Put | Method::Patch => check(
                self.send_raw(Method::Get, operation.resource.clone(), None)
                    .await?,
            )?
            .json(),
            Method::Post => match &operation.location {
                Some(location) => {
                    check(self.send_raw(Method::Get, location.clone(), None).await?)?.json()
                }
                None => Ok(Value::Null),
            },
            _ => Ok(Value::Null),
        }
    }

    async fn pause(&self, delay: Duration, options: &PollOptions) -> Result<(), Error> {
        match &options.cancel {
            Some(token) => tokio::select! {
                _ = token.cancelled() => Err(Error::Cancelled),
                _ = tokio::time::sleep(delay) => Ok(()),
            },
            None => {
                tokio::time::sleep(delay).await;
                Ok(())
            }
        }
    }

    /// Resolves a URL the server handed us and refuses any host but the endpoint's.
    fn resolve(&self, link: &str) -> Result<Url, Error> {
        let url = self.endpoint.join(link).map_err(|e| Error::Decode {
            what: "a URL from ARM".to_owned(),
            reason: e.to_string(),
        })?;
        self.check_host(&url)?;
        Ok(url)
    }

    fn check_host(&self, url: &Url) -> Result<(), Error> {
        if url.scheme() != "https"
            || url.host_str() != self.endpoint.host_str()
            || url.port_or_known_default() != self.endpoint.port_or_known_default()
        {
            return Err(Error::UntrustedUrl {
                url: redact_query(url),
                endpoint: self.endpoint.to_string(),
            });
        }
        Ok(())
    }
}

/// Turns a non-2xx response into [`Error::Arm`] (code and message from ARM's error body).
pub fn check(response: ArmResponse) -> Result<ArmResponse, Error> {
    if (200..300).contains(&response.status) {
        return Ok(response);
    }
    Err(arm_error(&response))
}

/// The typed error for a failed response.
pub fn arm_error(response: &ArmResponse) -> Error {
    let parsed: Option<Value> = serde_json::from_slice(&response.body).ok();
    let error = parsed.as_ref().and_then(|v| v.get("error").or(Some(v)));
    let text = |key: &str| {
        error
            .and_then(|e| e.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let details = error
        .map(|e| ArmErrorDetail::list_from_json(e.get("details")))
        .unwrap_or_default();
    Error::Arm {
        status: response.status,
        code: text("code").unwrap_or_else(|| format!("HTTP{}", response.status)),
        message: text("message").unwrap_or_else(|| "the server gave no error message".to_owned()),
        details,
    }
}

/// One entry of an ARM error's `details`: ARM's error shape (`code`, `message`, `target`,
/// nested `details`), so a whole error tree such as a failed deployment's can be held in one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArmErrorDetail {
    /// The detail's code.
    pub code: String,
    /// The detail's message.
    pub message: String,
    /// What the error is about (a resource, a property), when ARM says.
    pub target: Option<String>,
    /// Nested details.
    pub details: Vec<ArmErrorDetail>,
}

impl ArmErrorDetail {
    /// Reads one ARM error object (`{"code","message","target","details"}`, or the same wrapped
    /// in `{"error": …}`); `None` when it has no `code`.
    pub fn from_json(value: &Value) -> Option<Self> {
        let value = value
            .get("error")
            .filter(|e| e.is_object())
            .unwrap_or(value);
        let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
        Some(Self {
            code: text("code")?,
            message: text("message").unwrap_or_default(),
            target: text("target"),
            details: Self::list_from_json(value.get("details")),
        })
    }

    /// Reads an array of ARM error objects (anything else is an empty list).
    pub fn list_from_json(value: Option<&Value>) -> Vec<Self> {
        value
            .and_then(Value::as_array)
            .map(|items| items.iter().filter_map(Self::from_json).collect())
            .unwrap_or_default()
    }
}

fn fail_unless_succeeded(
    status: &str,
    error: Option<&Value>,
    operation: &Operation,
) -> Result<(), Error> {
    if status.eq_ignore_ascii_case("succeeded") {
        return Ok(());
    }
    let text = |key: &str| {
        error
            .and_then(|e| e.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    Err(Error::OperationFailed {
        status: status.to_owned(),
        code: text("code").unwrap_or_else(|| status.to_owned()),
        message: text("message").unwrap_or_else(|| {
            format!(
                "the operation on {} ended {status}",
                operation.resource.path()
            )
        }),
    })
}

fn is_terminal(status: &str) -> bool {
    ["succeeded", "failed", "canceled", "cancelled"]
        .iter()
        .any(|t| status.eq_ignore_ascii_case(t))
}

fn provisioning_state(response: &ArmResponse) -> Option<String> {
    let body: Value = serde_json::from_slice(&response.body).ok()?;
    body.pointer("/properties/provisioningState")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// `Retry-After` as seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let format = time::format_description::well_known::Rfc2822;
    let when = time::OffsetDateTime::parse(value, &format).ok()?;
    let now = time::OffsetDateTime::now_utc();
    Some(Duration::try_from(when - now).unwrap_or(Duration::ZERO))
}

fn set_api_version(url: &mut Url, api_version: &str) {
    if api_version.is_empty() {
        return;
    }
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "api-version")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut query = url.query_pairs_mut();
    query.clear();
    for (k, v) in pairs {
        query.append_pair(&k, &v);
    }
    query.append_pair("api-version", api_version);
}

fn redact_query(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.to_string()
}

fn to_time(d: Duration) -> azure_core::time::Duration {
    azure_core::time::Duration::try_from(d).unwrap_or(azure_core::time::Duration::MAX)
}

/// An error and its sources on one line (`a: b: c`), skipping a source already contained in
/// the text: azure_core's pipeline wraps a credential's refusal in "non-transport error", and
/// the refusal (which never carries a secret) is what tells the user what to do.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let part = e.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> ArmResponse {
        ArmResponse {
            status,
            headers: vec![],
            body: Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn arm_error_bodies_become_typed_errors() {
        let err = arm_error(&response(
            409,
            r#"{"error":{"code":"RoleAssignmentExists","message":"The role assignment already exists.","details":[{"code":"X","message":"y"}]}}"#,
        ));
        match err {
            Error::Arm {
                status,
                code,
                message,
                details,
            } => {
                assert_eq!((status, code.as_str()), (409, "RoleAssignmentExists"));
                assert_eq!(message, "The role assignment already exists.");
                assert_eq!(details.len(), 1);
            }
            other => panic!("{other:?}"),
        }
        let err = arm_error(&response(502, "<html>bad gateway</html>")).to_string();
        assert!(err.contains("HTTP502") && err.contains("502"), "{err}");
    }

    #[test]
    fn arm_error_trees_keep_targets_and_nested_details() {
        let err = arm_error(&response(
            400,
            r#"{"error":{"code":"InvalidTemplateDeployment","message":"The template deployment is not valid.","details":[{"code":"PreflightValidationCheckFailed","message":"Preflight validation failed.","target":"aks","details":[{"code":"QuotaExceeded","message":"Not enough cores."}]}]}}"#,
        ));
        let Error::Arm { details, .. } = err else {
            panic!("{err:?}")
        };
        assert_eq!(details[0].target.as_deref(), Some("aks"));
        assert_eq!(details[0].details[0].code, "QuotaExceeded");
        let top =
            ArmErrorDetail::from_json(&serde_json::json!({"error": {"code": "A", "message": "b"}}))
                .unwrap();
        assert_eq!((top.code.as_str(), top.details.len()), ("A", 0));
        assert!(ArmErrorDetail::from_json(&serde_json::json!({"message": "no code"})).is_none());
    }

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after("Fri, 01 Jan 2021 00:00:00 GMT"),
            Some(Duration::ZERO)
        );
        let later = time::OffsetDateTime::now_utc() + time::Duration::seconds(30);
        let text = later
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap();
        let d = parse_retry_after(&text).unwrap();
        assert!(
            d > Duration::from_secs(25) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn api_version_is_replaced_not_duplicated() {
        let mut url = Url::parse("https://x/a?api-version=1&$filter=a").unwrap();
        set_api_version(&mut url, "2");
        assert_eq!(url.query(), Some("%24filter=a&api-version=2"));
    }
}
