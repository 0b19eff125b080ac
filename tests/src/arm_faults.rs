//! Faults in front of a wiremock-based fake (the [`ArmFake`](crate::arm_fake::ArmFake), a Graph
//! fake): a mock of top priority answers the requests a [`Schedule`] picks with an injected
//! response (429 with `Retry-After`, 5xx, an ARM error such as `PrincipalNotFound`) and lets
//! every other request fall through to the fake's own router, so every answer that is not a
//! fault still comes from the fake (whose bodies come from the vectors). It counts what it saw
//! and what it injected.
//!
//! ```no_run
//! # async fn demo(fake: &studio_tests::arm_fake::ArmFake) -> anyhow::Result<()> {
//! use studio_tests::arm_faults::{Schedule, inject, throttled};
//! // The first 6 reads of any resource group are throttled, then the fake answers.
//! let faults = inject(&fake.mock, "GET", "/resourcegroups/", Schedule::first(6), throttled(1)).await;
//! # let _ = faults.injected(); Ok(()) }
//! ```

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::bail;
use serde_json::json;
use studio_azure_auth::Error;
use wiremock::{Match, Mock, Request, ResponseTemplate};

use crate::https::HttpsMock;

/// Which of the matching requests get the fault: `pattern[i]` for the i-th matching request,
/// then `then` for every later one.
#[derive(Clone, Debug)]
pub struct Schedule {
    pattern: Vec<bool>,
    then: bool,
}

impl Schedule {
    /// The first `n` matching requests are faulted, the rest pass.
    pub fn first(n: usize) -> Self {
        Self {
            pattern: vec![true; n],
            then: false,
        }
    }

    /// Every matching request is faulted.
    pub fn always() -> Self {
        Self {
            pattern: Vec::new(),
            then: true,
        }
    }

    /// `F` faults a request, `.` lets it pass (other characters are ignored); after the
    /// pattern, requests pass.
    pub fn pattern(pattern: &str) -> Self {
        Self {
            pattern: pattern
                .chars()
                .filter_map(|c| match c {
                    'F' => Some(true),
                    '.' => Some(false),
                    _ => None,
                })
                .collect(),
            then: false,
        }
    }
}

/// What an injection saw: matching requests and faults answered.
#[derive(Clone, Debug, Default)]
pub struct Injected {
    seen: Arc<AtomicU32>,
    injected: Arc<AtomicU32>,
}

impl Injected {
    /// Requests that matched the method and path (faulted or passed on).
    pub fn seen(&self) -> u32 {
        self.seen.load(Ordering::SeqCst)
    }

    /// Faults answered.
    pub fn injected(&self) -> u32 {
        self.injected.load(Ordering::SeqCst)
    }
}

struct ScheduleMatcher {
    method: String,
    path_contains: String,
    schedule: Mutex<Schedule>,
    counts: Injected,
}

impl Match for ScheduleMatcher {
    fn matches(&self, request: &Request) -> bool {
        if !request.method.as_str().eq_ignore_ascii_case(&self.method)
            || !request
                .url
                .path()
                .to_ascii_lowercase()
                .contains(&self.path_contains)
        {
            return false;
        }
        let index = self.counts.seen.fetch_add(1, Ordering::SeqCst) as usize;
        let schedule = self.schedule.lock().unwrap_or_else(|e| e.into_inner());
        let fault = schedule
            .pattern
            .get(index)
            .copied()
            .unwrap_or(schedule.then);
        if fault {
            self.counts.injected.fetch_add(1, Ordering::SeqCst);
        }
        fault
    }
}

/// Mounts a fault on `mock`: requests with `method` whose path contains `path_contains`
/// (case-insensitive) are answered with `response` when `schedule` says so; all others go on
/// to the mocks already mounted (the fake).
pub async fn inject(
    mock: &HttpsMock,
    method: &str,
    path_contains: &str,
    schedule: Schedule,
    response: ResponseTemplate,
) -> Injected {
    let counts = Injected::default();
    Mock::given(ScheduleMatcher {
        method: method.to_owned(),
        path_contains: path_contains.to_ascii_lowercase(),
        schedule: Mutex::new(schedule),
        counts: counts.clone(),
    })
    .respond_with(response)
    .with_priority(1)
    .mount(&mock.server)
    .await;
    counts
}

/// The message ARM sends with a throttled request, as documented in "Understand how Azure
/// Resource Manager throttles requests" (no throttling example is published in the specs).
pub const THROTTLING_MESSAGE: &str = "Number of 'read' requests for subscription '00000000-0000-0000-0000-000000000000' actually exceeded the limit of '12000' for time interval '01:00:00'. Please try again after '1' seconds.";

/// ARM's throttling answer: 429, `Retry-After: <seconds>`, `SubscriptionRequestsThrottled`.
pub fn throttled(retry_after_secs: u64) -> ResponseTemplate {
    ResponseTemplate::new(429)
        .insert_header("Retry-After", retry_after_secs.to_string().as_str())
        .insert_header("x-ms-ratelimit-remaining-subscription-reads", "0")
        .set_body_json(json!({"error": {
            "code": "SubscriptionRequestsThrottled",
            "message": THROTTLING_MESSAGE,
        }}))
}

/// An ARM error answer (`{"error":{"code","message"}}`) with `status`.
pub fn arm_error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_json(json!({"error": {"code": code, "message": message}}))
}

/// ARM's answer while it cannot reach the resource provider: 500 `InternalServerError`.
pub fn internal_server_error() -> ResponseTemplate {
    arm_error(
        500,
        "InternalServerError",
        "Encountered internal server error. Diagnostic information: timestamp '20261126T101500Z', subscription id '00000000-0000-0000-0000-000000000000', tracking id '6b2f2c1e-8d0a-4c8e-9f0b-2f7d3a9c1e55'.",
    )
}

/// ARM's answer when a role assignment names a principal the directory has not replicated yet.
pub fn principal_not_found(principal_id: &str) -> ResponseTemplate {
    arm_error(
        400,
        "PrincipalNotFound",
        &format!(
            "Principal {} does not exist in the directory 72f988bf-86f1-41af-91ab-2d7cd011db47. Check that you have the correct principal ID. If you are creating this principal and then immediately assigning a role, this error might be related to a replication delay. In this case, set the role assignment principalType property to a value, such as ServicePrincipal, User, or Group.  See https://aka.ms/docs-principaltype",
            principal_id.replace('-', "")
        ),
    )
}

/// The HTTP status, code and message of ARM's error answer ([`Error::Arm`]); any other error
/// is a failure that names it.
pub fn arm_failure(err: &Error) -> anyhow::Result<(u16, &str, &str)> {
    match err {
        Error::Arm {
            status,
            code,
            message,
            ..
        } => Ok((*status, code, message)),
        other => bail!("expected ARM's error answer, got {other:?}"),
    }
}

/// The terminal status, code and message of a long-running operation that ended `Failed` or
/// `Canceled` ([`Error::OperationFailed`]); any other error is a failure that names it.
pub fn operation_failure(err: &Error) -> anyhow::Result<(&str, &str, &str)> {
    match err {
        Error::OperationFailed {
            status,
            code,
            message,
        } => Ok((status, code, message)),
        other => bail!("expected a failed operation, got {other:?}"),
    }
}
