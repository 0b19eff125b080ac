//! Issue 9, "Faults", the Azure lines: ARM 429 storms, 500s while polling a long-running
//! operation, a Failed operation, Graph replication delay on a fresh service principal; device
//! login with the network dropping during polling, a code that expires, a person who declines.
//! Each ends in success or in a typed error carrying the service's message.
//!
//! ARM faults are injected in front of the stateful ARM fake ([`studio_tests::arm_faults`]):
//! every answer that is not a fault is the fake's, whose bodies come from the vectors. Device
//! login faults are the real Entra stand-in's own answers (a short-lived device code) or a TCP
//! proxy that resets connections between our client and the stand-in, approved in Chromium.
//! The declined sign-in against the real stand-in is `auth_device`'s
//! `a_person_who_presses_cancel_declines_the_sign_in`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use azure_core::http::Method;
use serde_json::{Value, json};
use studio_azure_auth::Error;
use studio_azure_auth::arm::{ArmClient, ArmClientOptions, PollOptions, PollProgress};
use studio_azure_auth::cache::TokenCache;
use studio_azure_auth::credential::{DeviceCodeCredential, DeviceCodeOptions};
use studio_azure_auth::graph::{CreateForRbac, create_for_rbac};
use studio_azure_auth::rbac::AssignmentRetry;
use studio_tests::arm_fake::{ARM_SCOPE, ArmFake, DeploymentScript, example, fast_options};
use studio_tests::arm_faults::{
    Schedule, THROTTLING_MESSAGE, arm_failure, inject, internal_server_error, operation_failure,
    principal_not_found, throttled,
};
use studio_tests::browser::{prompt_channel, sign_in_approved};
use studio_tests::entra::{SHORT_DEVICE_CODE_CLIENT_ID, SHORT_DEVICE_CODE_TTL_SECS, cloud_at};
use studio_tests::https::HttpsMock;
use studio_tests::tcp_faults::TcpFaultProxy;
use studio_tests::{LogsOnFailure, rig, shared};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

const SUBSCRIPTION: &str = "00000000-0000-0000-0000-000000000001";
const GROUP: &str = "studio";
const ARM: &str = "https://management.azure.com/.default";
const USER: &str = "grace@contoso.example";

fn group_path() -> String {
    format!("/subscriptions/{SUBSCRIPTION}/resourceGroups/{GROUP}")
}

fn deployment_path(name: &str) -> String {
    format!(
        "{}/providers/Microsoft.Resources/deployments/{name}",
        group_path()
    )
}

/// An ARM client for `fake` with `options` (fast delays unless the test says otherwise).
async fn client(fake: &ArmFake, options: ArmClientOptions) -> Result<ArmClient> {
    Ok(ArmClient::with_endpoint(
        fake.mock.url(),
        ARM_SCOPE,
        shared::entra().await?.secret_credential()?,
        options,
    )?)
}

/// The published deployment request (PutDeploymentResourceGroup).
fn deployment_request() -> Result<Value> {
    let put = example("resources/deployments/2025-04-01/examples/PutDeploymentResourceGroup.json")?;
    put.parameters
        .get("parameters")
        .cloned()
        .context("the example's body parameter")
}

/// An ARM fake holding the resource group [`GROUP`].
async fn fake_with_group() -> Result<ArmFake> {
    let fake = ArmFake::start().await?;
    fake.add_group(SUBSCRIPTION, GROUP, "eastus")?;
    Ok(fake)
}

/// Starts the published deployment request as deployment `name` and waits for it with
/// `options`: ARM's outcome, inside the test's own errors.
async fn deploy(
    arm: &ArmClient,
    name: &str,
    options: &PollOptions,
) -> Result<std::result::Result<Value, Error>> {
    let body = deployment_request()?;
    Ok(arm
        .run(
            Method::Put,
            &deployment_path(name),
            "2025-04-01",
            Some(&body),
            options,
        )
        .await)
}

/// What a recording callback has seen so far.
fn recorded(seen: &Mutex<Vec<String>>) -> Vec<String> {
    seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

fn recording_progress() -> (PollOptions, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let options = PollOptions {
        progress: Some(Arc::new(move |p: &PollProgress| {
            seen2
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(p.status.clone())
        })),
        cancel: None,
    };
    (options, seen)
}

// ------------------------------------------------------------------ ARM: 429 storms

#[tokio::test]
async fn arm_a_429_storm_with_retry_after_ends_in_the_resource() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let fake = fake_with_group().await?;
    // Six throttled answers in a row, each saying "Retry-After: 1" (the retry policy waits at
    // least that long; a_429_with_retry_after_2_waits_at_least_2_seconds measures it).
    let storm = inject(
        &fake.mock,
        "GET",
        "/resourcegroups/studio",
        Schedule::first(6),
        throttled(1),
    )
    .await;
    let arm = client(&fake, fast_options()).await?;
    let group: Value = arm.get(&group_path(), "2025-04-01").await?;
    assert_eq!(storm.injected(), 6);
    assert_eq!(storm.seen(), 7, "one request after the storm");
    // The answer is the fake's: the CreateResourceGroup example's body for this group.
    let expected = fake
        .state()
        .groups
        .get(GROUP)
        .cloned()
        .context("the group")?;
    assert_eq!(group, expected);
    assert_eq!(group["properties"]["provisioningState"], "Succeeded");
    Ok(())
}

#[tokio::test]
async fn arm_a_429_storm_that_outlasts_the_retry_budget_is_a_typed_error_with_arms_message()
-> Result<()> {
    let _logs = LogsOnFailure::new();
    let fake = fake_with_group().await?;
    let storm = inject(
        &fake.mock,
        "GET",
        "/resourcegroups/studio",
        Schedule::always(),
        throttled(1),
    )
    .await;
    let arm = client(
        &fake,
        ArmClientOptions {
            max_retries: 3,
            ..fast_options()
        },
    )
    .await?;
    let err = arm
        .get::<Value>(&group_path(), "2025-04-01")
        .await
        .expect_err("throttled throughout");
    let (status, code, message) = arm_failure(&err)?;
    assert_eq!(status, 429);
    assert_eq!(code, "SubscriptionRequestsThrottled");
    assert_eq!(message, THROTTLING_MESSAGE);
    assert!(err.to_string().contains("Please try again after"), "{err}");
    assert_eq!(storm.seen(), 4, "the first attempt and 3 retries");
    assert_eq!(storm.injected(), 4);
    Ok(())
}

#[tokio::test]
async fn arm_429s_while_starting_a_deployment_end_in_a_succeeded_deployment() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let fake = fake_with_group().await?;
    fake.state().script = DeploymentScript::Succeed { polls: 2 };
    // The PUT is throttled 3 times, then every other poll once.
    let put_storm = inject(
        &fake.mock,
        "PUT",
        "/deployments/throttled",
        Schedule::first(3),
        throttled(0),
    )
    .await;
    let poll_storm = inject(
        &fake.mock,
        "GET",
        "/deployments/throttled",
        Schedule::pattern("F.F.F"),
        throttled(0),
    )
    .await;
    let arm = client(&fake, fast_options()).await?;
    let (options, statuses) = recording_progress();
    let done = deploy(&arm, "throttled", &options).await??;
    assert_eq!(done["properties"]["provisioningState"], "Succeeded");
    assert_eq!(put_storm.injected(), 3);
    assert_eq!(poll_storm.injected(), 3);
    assert_eq!(recorded(&statuses), ["Running", "Running", "Succeeded"]);
    // The fake created the deployment once, whatever the retries.
    assert_eq!(fake.state().deployments.len(), 1);
    Ok(())
}

// ------------------------------------------------------------------ ARM: 500s while polling

#[tokio::test]
async fn arm_500s_while_polling_a_long_running_operation_end_in_success() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let fake = fake_with_group().await?;
    fake.state().script = DeploymentScript::Succeed { polls: 3 };
    // Bursts of 500s between the polls that reach the fake: 8 faults in all.
    let errors = inject(
        &fake.mock,
        "GET",
        "/deployments/polled",
        Schedule::pattern("FF.FFF.F.FF"),
        internal_server_error(),
    )
    .await;
    let arm = client(&fake, fast_options()).await?;
    let (options, statuses) = recording_progress();
    let done = deploy(&arm, "polled", &options).await??;
    assert_eq!(errors.injected(), 8);
    // Three polls answered Running, the fourth Succeeded: each reached the fake once.
    assert_eq!(
        recorded(&statuses),
        ["Running", "Running", "Running", "Succeeded"]
    );
    assert_eq!(fake.state().deployments["polled"].polls, 4);
    // The final body is the fake's (the example's 200 body for this deployment).
    assert_eq!(done["properties"]["provisioningState"], "Succeeded");
    assert_eq!(done["name"], "polled");
    assert_eq!(done["id"], deployment_path("polled"));
    Ok(())
}

#[tokio::test]
async fn arm_connection_resets_while_polling_a_long_running_operation_end_in_success() -> Result<()>
{
    let _logs = LogsOnFailure::new();
    let fake = fake_with_group().await?;
    fake.state().script = DeploymentScript::Succeed { polls: 3 };
    // The client reaches the fake through a TCP proxy that drops the network after the first
    // poll: open connections are reset, new ones too, until 3 resets have happened.
    let proxy = Arc::new(TcpFaultProxy::in_front_of(&fake.mock.url()).await?);
    let arm = ArmClient::with_endpoint(
        proxy.url_for(&fake.mock.url())?,
        ARM_SCOPE,
        shared::entra().await?.secret_credential()?,
        ArmClientOptions {
            // Enough retries that the outage fits in one poll's budget on a slow machine.
            max_retries: 30,
            max_retry_delay: Duration::from_millis(200),
            ..fast_options()
        },
    )?;
    let statuses = Arc::new(Mutex::new(Vec::new()));
    let (seen, network) = (statuses.clone(), proxy.clone());
    let options = PollOptions {
        progress: Some(Arc::new(move |p: &PollProgress| {
            let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
            if seen.is_empty() {
                network.go_down();
            }
            seen.push(p.status.clone());
        })),
        cancel: None,
    };
    let network = proxy.clone();
    let restore = tokio::spawn(async move {
        network.wait_for_resets(3).await;
        network.come_up();
    });
    let done = deploy(&arm, "reset", &options).await?;
    restore.abort();
    let done = done?;
    assert!(proxy.resets() >= 3, "only {} resets", proxy.resets());
    assert_eq!(
        recorded(&statuses),
        ["Running", "Running", "Running", "Succeeded"]
    );
    assert_eq!(fake.state().deployments["reset"].polls, 4);
    assert_eq!(done["properties"]["provisioningState"], "Succeeded");
    Ok(())
}

#[tokio::test]
async fn arm_500s_that_outlast_the_retry_budget_while_polling_are_a_typed_error() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let fake = fake_with_group().await?;
    fake.state().script = DeploymentScript::Succeed { polls: 3 };
    // The deployment starts, then every poll fails.
    let errors = inject(
        &fake.mock,
        "GET",
        "/deployments/broken",
        Schedule::always(),
        internal_server_error(),
    )
    .await;
    let arm = client(
        &fake,
        ArmClientOptions {
            max_retries: 2,
            ..fast_options()
        },
    )
    .await?;
    let err = deploy(&arm, "broken", &PollOptions::default())
        .await?
        .expect_err("ARM never answers the poll");
    let (status, code, message) = arm_failure(&err)?;
    assert_eq!(status, 500);
    assert_eq!(code, "InternalServerError");
    assert!(message.contains("tracking id"), "{message}");
    assert_eq!(
        errors.injected(),
        3,
        "one poll: the first attempt and 2 retries"
    );
    assert_eq!(fake.state().deployments["broken"].polls, 0);
    Ok(())
}

// ------------------------------------------------------------------ ARM: a Failed operation

#[tokio::test]
async fn arm_a_failed_operation_is_a_typed_error_with_arms_code_and_message() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let fake = fake_with_group().await?;
    // ARM's DeploymentFailed error as deployments report it (no failed-deployment example is
    // shared), in the example body's properties.error.
    fake.state().script = DeploymentScript::Fail {
        polls: 2,
        error: json!({
            "code": "DeploymentFailed",
            "message": "At least one resource deployment operation failed. Please list deployment operations for details.",
            "details": [{"code": "QuotaExceeded", "message": "Operation could not be completed as it results in exceeding approved standardNCASv3_T4 Family Cores quota."}]
        }),
        operation_error: json!({"code": "QuotaExceeded", "message": "quota"}),
    };
    // A 500 on the way does not hide the failure.
    let errors = inject(
        &fake.mock,
        "GET",
        "/deployments/failing",
        Schedule::pattern(".F"),
        internal_server_error(),
    )
    .await;
    let arm = client(&fake, fast_options()).await?;
    let err = deploy(&arm, "failing", &PollOptions::default())
        .await?
        .expect_err("the deployment fails");
    let (status, code, message) = operation_failure(&err)?;
    assert_eq!(status, "Failed");
    assert_eq!(code, "DeploymentFailed");
    assert!(
        message.starts_with("At least one resource deployment operation failed"),
        "{message}"
    );
    assert!(err.to_string().contains("DeploymentFailed"), "{err}");
    assert_eq!(errors.injected(), 1);
    Ok(())
}

// ------------------------------------------------------------------ Graph replication delay

const APP_OBJECT_ID: &str = "03ef14b0-ca33-4840-8f4f-d6e91916010e";
const APP_ID: &str = "631a96bc-a705-4eda-9f99-fdaf9f54f6a2";
const SP_OBJECT_ID: &str = "59e617e5-e447-4adc-8b88-00af644d7c92";

/// A Graph fake with Microsoft Graph v1.0's documented bodies (no Graph vectors are shared):
/// applications, servicePrincipals, addPassword.
async fn graph_fake() -> Result<HttpsMock> {
    let graph = HttpsMock::start().await?;
    Mock::given(method("POST"))
        .and(path("/v1.0/applications"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#applications/$entity",
            "id": APP_OBJECT_ID, "appId": APP_ID, "displayName": "studio-runner"
        })))
        .mount(&graph.server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1.0/servicePrincipals"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#servicePrincipals/$entity",
            "id": SP_OBJECT_ID, "appId": APP_ID, "displayName": "studio-runner"
        })))
        .mount(&graph.server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v1.0/applications/{APP_OBJECT_ID}/addPassword")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "customKeyIdentifier": null, "endDateTime": "2027-11-26T00:00:00Z",
            "keyId": "f0b0b335-1d71-4883-8f98-567911bfdca6", "startDateTime": "2026-11-26T00:00:00Z",
            "secretText": "mlg8Q~not-a-real-secret-v5d", "hint": "mlg", "displayName": "rbac"
        })))
        .mount(&graph.server)
        .await;
    Ok(graph)
}

/// Graph's answer while it has not replicated a fresh application.
fn application_not_replicated() -> ResponseTemplate {
    ResponseTemplate::new(400).set_body_json(json!({"error": {
        "code": "Request_BadRequest",
        "message": format!("The appId '{APP_ID}' of the service principal does not reference a valid application object."),
        "innerError": {"date": "2026-11-26T10:15:00", "request-id": "7a3c2b1d-0e9f-4a8b-8c7d-6e5f4a3b2c1d"}
    }}))
}

async fn graph_client(graph: &HttpsMock) -> Result<ArmClient> {
    Ok(ArmClient::with_endpoint(
        graph.url(),
        "https://graph.microsoft.com/.default",
        shared::entra().await?.secret_credential()?,
        fast_options(),
    )?)
}

fn rbac_request(retries: u32, told: Arc<Mutex<Vec<String>>>) -> CreateForRbac {
    CreateForRbac {
        display_name: "studio-runner".into(),
        role: Some("Contributor".into()),
        scopes: vec![group_path()],
        tenant: studio_tests::entra::TENANT_ID.into(),
        graph_retry_delay: Duration::from_millis(10),
        assignment_retry: AssignmentRetry {
            retries,
            delay: Duration::from_millis(10),
            progress: Some(Arc::new(move |n, of| {
                told.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(format!("{n}/{of}"))
            })),
        },
        ..Default::default()
    }
}

#[tokio::test]
async fn graph_replication_delay_on_a_fresh_service_principal_is_waited_out() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let fake = fake_with_group().await?;
    let graph = graph_fake().await?;
    // Graph has not replicated the application for two attempts; ARM does not know the new
    // principal for three role-assignment attempts.
    let sp_delay = inject(
        &graph,
        "POST",
        "/v1.0/serviceprincipals",
        Schedule::first(2),
        application_not_replicated(),
    )
    .await;
    let arm_delay = inject(
        &fake.mock,
        "PUT",
        "/roleassignments/",
        Schedule::first(3),
        principal_not_found(SP_OBJECT_ID),
    )
    .await;
    let told = Arc::new(Mutex::new(Vec::new()));
    let sp = create_for_rbac(
        &graph_client(&graph).await?,
        &fake.client().await?,
        &rbac_request(36, told.clone()),
    )
    .await?;
    assert_eq!(sp.app_id, APP_ID);
    assert_eq!(sp.object_id, SP_OBJECT_ID);
    assert_eq!(sp_delay.injected(), 2);
    assert_eq!(arm_delay.injected(), 3);
    assert_eq!(recorded(&told), ["1/36", "2/36", "3/36"]);
    // Exactly one assignment reached the fake, for the new principal, with the role the fake
    // found by name (the GetRoleDefinitionByName example), and every attempt used one name.
    let assignments = fake.state().assignments.clone();
    assert_eq!(assignments.len(), 1);
    let (assignment_path, body) = &assignments[0];
    assert_eq!(body["properties"]["principalId"], SP_OBJECT_ID);
    assert_eq!(body["properties"]["principalType"], "ServicePrincipal");
    let puts: Vec<String> = fake
        .requests()
        .await
        .into_iter()
        .filter(|(m, p)| m == "PUT" && p.to_ascii_lowercase().contains("/roleassignments/"))
        .map(|(_, p)| p)
        .collect();
    assert_eq!(puts.len(), 4);
    assert!(puts.iter().all(|p| p == assignment_path), "{puts:?}");
    Ok(())
}

#[tokio::test]
async fn graph_replication_that_never_ends_is_a_typed_error_with_arms_message() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let fake = fake_with_group().await?;
    let graph = graph_fake().await?;
    let arm_delay = inject(
        &fake.mock,
        "PUT",
        "/roleassignments/",
        Schedule::always(),
        principal_not_found(SP_OBJECT_ID),
    )
    .await;
    let told = Arc::new(Mutex::new(Vec::new()));
    let err = create_for_rbac(
        &graph_client(&graph).await?,
        &fake.client().await?,
        &rbac_request(3, told.clone()),
    )
    .await
    .expect_err("the principal never replicates");
    let (status, code, message) = arm_failure(&err)?;
    assert_eq!(status, 400);
    assert_eq!(code, "PrincipalNotFound");
    assert!(
        message.contains(&SP_OBJECT_ID.replace('-', "")) && message.contains("replication delay"),
        "{message}"
    );
    assert_eq!(arm_delay.injected(), 4, "the first attempt and 3 retries");
    assert_eq!(recorded(&told).len(), 3);
    assert!(fake.state().assignments.is_empty());
    Ok(())
}

// ------------------------------------------------------------------ device login

/// `uri` pointed at the stand-in itself (the browser does not go through the proxy).
fn direct(uri: &str, proxy: &TcpFaultProxy, authority: &url::Url) -> String {
    let authority = authority.as_str().trim_end_matches('/');
    uri.replace(
        &format!("https://{}", proxy.addr()),
        authority.trim_end_matches('/'),
    )
}

#[tokio::test]
async fn device_login_survives_the_network_dropping_during_polling() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let entra = shared::entra().await?;
    let browser = shared::browser().await?;
    let proxy = Arc::new(TcpFaultProxy::in_front_of(&entra.authority_host).await?);
    let (prompt, mut rx) = prompt_channel();
    let credential = DeviceCodeCredential::new(DeviceCodeOptions {
        cloud: cloud_at(&proxy.url_for(&entra.authority_host)?),
        transport: rig().transport_options(),
        cache: TokenCache::in_memory(),
        prompt: Some(prompt),
        poll_interval_override: Some(Duration::from_millis(200)),
        ..Default::default()
    })?;
    let authority = entra.authority_host.clone();
    let network = proxy.clone();
    let person = async move {
        let prompt = rx.recv().await.context("no prompt")?;
        // The network drops while the credential polls: 3 polls are reset.
        network.go_down();
        network.wait_for_resets(3).await;
        // Meanwhile the person approves in the browser (which has its own network).
        browser
            .approve(
                &direct(&prompt.verification_uri, &network, &authority),
                &prompt.user_code,
                USER,
            )
            .await?;
        // Two more polls fail after the approval, then the network comes back.
        let after = network.resets();
        network.wait_for_resets(after + 2).await;
        network.come_up();
        anyhow::Ok(())
    };
    let (signed_in, ()) = sign_in_approved(
        credential.cancellation_token(),
        person,
        credential.sign_in(&[ARM]),
    )
    .await
    .context("the sign-in did not survive the outage")?;
    assert_eq!(signed_in.account.username, USER);
    assert!(
        proxy.resets() >= 5,
        "only {} connections reset",
        proxy.resets()
    );
    // The token is the stand-in's, for ARM.
    use base64::Engine;
    let payload = signed_in
        .token
        .token
        .secret()
        .split('.')
        .nth(1)
        .context("jwt")?
        .to_owned();
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload)?)?;
    assert_eq!(claims["aud"], "https://management.azure.com");
    assert_eq!(claims["preferred_username"], USER);
    Ok(())
}

#[tokio::test]
async fn device_login_with_the_network_down_until_the_code_expires_is_a_typed_network_error()
-> Result<()> {
    let _logs = LogsOnFailure::new();
    let entra = shared::entra().await?;
    let proxy = Arc::new(TcpFaultProxy::in_front_of(&entra.authority_host).await?);
    let (prompt, mut rx) = prompt_channel();
    let credential = DeviceCodeCredential::new(DeviceCodeOptions {
        cloud: cloud_at(&proxy.url_for(&entra.authority_host)?),
        client_id: SHORT_DEVICE_CODE_CLIENT_ID.into(),
        transport: rig().transport_options(),
        cache: TokenCache::in_memory(),
        prompt: Some(prompt),
        poll_interval_override: Some(Duration::from_millis(400)),
        ..Default::default()
    })?;
    let network = proxy.clone();
    let down = tokio::spawn(async move {
        rx.recv().await.context("no prompt")?;
        network.go_down();
        anyhow::Ok(())
    });
    let outcome = credential.sign_in(&[ARM]).await;
    down.await??;
    match &outcome {
        Err(Error::Http { endpoint, reason }) => {
            assert!(endpoint.ends_with("/oauth2/v2.0/token"), "{endpoint}");
            assert!(reason.contains("device code expired"), "{reason}");
        }
        other => bail!("expected the network error, got {other:?}"),
    }
    // It kept polling through the outage (every 400 ms for the code's 2 s), not just once.
    assert!(
        proxy.resets() >= 3,
        "only {} polls were tried",
        proxy.resets()
    );
    Ok(())
}

// The second poll of the test below (at 3 s) must come after the short code's life.
const _: () = assert!(SHORT_DEVICE_CODE_TTL_SECS < 3);

#[tokio::test]
async fn device_login_whose_code_expires_is_entras_expired_token_error() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let entra = shared::entra().await?;
    let (prompt, mut rx) = prompt_channel();
    // Nobody signs in. The stand-in's device codes for this client live 2 s; polls every
    // 1.5 s: the second poll (at 3 s) is past the code's life, so the stand-in itself says so.
    let credential = DeviceCodeCredential::new(DeviceCodeOptions {
        cloud: cloud_at(&entra.authority_host),
        client_id: SHORT_DEVICE_CODE_CLIENT_ID.into(),
        transport: rig().transport_options(),
        cache: TokenCache::in_memory(),
        prompt: Some(prompt),
        poll_interval_override: Some(Duration::from_millis(1500)),
        ..Default::default()
    })?;
    let outcome = credential.sign_in(&[ARM]).await;
    let prompt = rx.recv().await.context("no prompt")?;
    assert!(!prompt.user_code.is_empty());
    match outcome {
        Err(Error::DeviceCodeExpired(refused)) => {
            // Entra's answer from the stand-in, not our own schedule running out.
            assert_eq!(refused.error, "expired_token");
            assert_eq!(refused.error_codes, [70020]);
            assert_eq!(refused.status, 400);
            assert!(refused.correlation_id.is_some(), "{refused:?}");
        }
        other => bail!("expected expired_token, got {other:?}"),
    }
    Ok(())
}
