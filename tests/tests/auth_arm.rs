//! The ARM client, subscriptions, role assignments and create-for-rbac, against fakes whose
//! bodies come from Microsoft's published examples in ../shared/vectors, with real bearer tokens
//! from the Entra stand-in.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use azure_core::http::Method;
use serde_json::{Value, json};
use studio_azure_auth::Error;
use studio_azure_auth::arm::{ArmClient, PollOptions};
use studio_azure_auth::rbac::{
    self, AssignmentOutcome, AssignmentRetry, PrincipalType, RoleAssignmentRequest,
};
use studio_tests::arm_fake::{arm_client, fast_options, fill, local, path_of, sequence};
use studio_tests::arm_faults::{arm_failure, operation_failure};
use studio_tests::https::HttpsMock;
use studio_tests::vectors::{ArmExample, arm_examples};
use studio_tests::{LogsOnFailure, rig, shared};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, Request, ResponseTemplate};

/// Method, path template and body parameter of the long-running operations in the vectors.
fn operation(example: &ArmExample) -> Option<(Method, &'static str, &'static str)> {
    let registry = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.ContainerRegistry/registries/{registryName}";
    Some(match example.name().as_str() {
        "RegistryUpdate" => (Method::Patch, registry, "registryUpdateParameters"),
        "RegistryDelete" => (Method::Delete, registry, ""),
        "RegistryCreate" => (Method::Put, registry, "registry"),
        "PostDeploymentWhatIfOnResourceGroup" => (
            Method::Post,
            "/subscriptions/{subscriptionId}/resourcegroups/{resourceGroupName}/providers/Microsoft.Resources/deployments/{deploymentName}/whatIf",
            "parameters",
        ),
        _ => return None,
    })
}

#[tokio::test]
async fn every_long_running_example_polls_to_completion() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let mut examples = Vec::new();
    for dir in studio_tests::vectors::example_dirs("azure-rest-api-specs")? {
        for file in studio_tests::vectors::json_files(&dir)? {
            let example = ArmExample::load(&file)?;
            let lro = example.responses.iter().any(|(code, r)| {
                (*code == 201 || *code == 202)
                    && r.headers.keys().any(|h| {
                        h.eq_ignore_ascii_case("Azure-AsyncOperation")
                            || h.eq_ignore_ascii_case("Location")
                    })
            });
            if lro {
                examples.push(example);
            }
        }
    }
    assert!(examples.len() >= 3, "found {}", examples.len());
    for example in examples {
        let Some((verb, template, body_param)) = operation(&example) else {
            bail!(
                "{}: a long-running example with no entry in operation(): add one",
                example.name()
            );
        };
        run_lro_example(&example, verb, template, body_param)
            .await
            .with_context(|| example.name())?;
    }
    Ok(())
}

async fn run_lro_example(
    example: &ArmExample,
    verb: Method,
    template: &str,
    body_param: &str,
) -> Result<()> {
    let mock = HttpsMock::start().await?;
    let arm = arm_client(&mock).await?;
    let resource = fill(template, example)?;
    let api_version = example.param("api-version").context("api-version")?;
    let (&code, start) = example
        .responses
        .iter()
        .find(|(c, _)| **c == 201 || **c == 202)
        .context("no 201/202")?;
    let mut first = ResponseTemplate::new(code);
    let mut poll_path = None;
    let mut async_op = false;
    for (name, value) in &start.headers {
        let value = local(&mock, value.as_str().unwrap_or_default());
        first = first.insert_header(name.as_str(), value.as_str());
        poll_path = Some(path_of(&mock, &value)?);
        async_op |= name.eq_ignore_ascii_case("Azure-AsyncOperation");
    }
    if let Some(body) = &start.body {
        first = first.set_body_json(body);
    }
    let final_body = example
        .responses
        .get(&200)
        .and_then(|r| r.body.clone())
        .unwrap_or(Value::Null);
    Mock::given(method(verb.as_str()))
        .and(path(resource.as_str()))
        .and(query_param("api-version", api_version))
        .respond_with(first)
        .expect(1)
        .mount(&mock.server)
        .await;
    let poll_path = poll_path.context("no poll URL")?;
    let polls = if async_op {
        // ARM's async-operation status body (RPC shape: {status, error}).
        vec![
            ResponseTemplate::new(200).set_body_json(json!({"status": "InProgress"})),
            ResponseTemplate::new(200).set_body_json(json!({"status": "Succeeded"})),
        ]
    } else {
        let done = if final_body.is_null() {
            ResponseTemplate::new(204)
        } else {
            ResponseTemplate::new(200).set_body_json(&final_body)
        };
        vec![
            ResponseTemplate::new(202).insert_header("Location", poll_path.as_str()),
            done,
        ]
    };
    Mock::given(method("GET"))
        .and(path(poll_path.as_str()))
        .respond_with(sequence(polls))
        .expect(2)
        .mount(&mock.server)
        .await;
    if async_op && (verb == Method::Put || verb == Method::Patch) {
        Mock::given(method("GET"))
            .and(path(resource.as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(&final_body))
            .expect(1)
            .mount(&mock.server)
            .await;
    }
    let body = (!body_param.is_empty())
        .then(|| example.parameters.get(body_param).cloned())
        .flatten();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let progress_seen = seen.clone();
    let options = PollOptions {
        progress: Some(Arc::new(move |p: &studio_azure_auth::arm::PollProgress| {
            progress_seen.lock().expect("lock").push(p.status.clone());
        })),
        cancel: None,
    };
    let result = arm
        .run(verb, &resource, api_version, body.as_ref(), &options)
        .await?;
    assert_eq!(result, final_body);
    assert_eq!(seen.lock().expect("lock").len(), 2, "two polls reported");
    // The request body we sent equals the example's body parameter.
    if let Some(expected) = &body {
        let requests = mock.received().await;
        let sent: Value = serde_json::from_slice(&requests[0].body)?;
        assert_eq!(&sent, expected);
    }
    mock.server.verify().await;
    Ok(())
}

#[tokio::test]
async fn a_failed_operation_returns_its_arm_code_and_message() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let mock = HttpsMock::start().await?;
    let arm = arm_client(&mock).await?;
    let example = ArmExample::load(
        &studio_tests::vectors::vectors_dir()?
            .join("azure-rest-api-specs/containerregistry/2025-11-01/examples/RegistryUpdate.json"),
    )?;
    let (_, template, _) = operation(&example).context("op")?;
    let resource = fill(template, &example)?;
    let status_url = local(
        &mock,
        example.responses[&201].headers["Azure-AsyncOperation"]
            .as_str()
            .context("h")?,
    );
    Mock::given(method("PATCH"))
        .respond_with(
            ResponseTemplate::new(201)
                .insert_header("Azure-AsyncOperation", status_url.as_str())
                .set_body_json(example.responses[&201].body.clone().context("body")?),
        )
        .mount(&mock.server)
        .await;
    Mock::given(method("GET"))
        .and(path(path_of(&mock, &status_url)?))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "status": "Failed",
            "error": {"code": "QuotaExceeded", "message": "The registry quota for this subscription is exhausted."}
        })))
        .mount(&mock.server)
        .await;
    let body = example.parameters["registryUpdateParameters"].clone();
    let err = arm
        .run(
            Method::Patch,
            &resource,
            "2025-11-01",
            Some(&body),
            &PollOptions::default(),
        )
        .await
        .expect_err("a Failed operation is an error");
    let (status, code, message) = operation_failure(&err)?;
    assert_eq!(status, "Failed");
    assert_eq!(code, "QuotaExceeded");
    assert!(message.contains("quota"), "{message}");
    assert!(err.to_string().contains("QuotaExceeded"));
    Ok(())
}

#[tokio::test]
async fn a_429_with_retry_after_2_waits_at_least_2_seconds() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let mock = HttpsMock::start().await?;
    let arm = arm_client(&mock).await?;
    let example = ArmExample::load(
        &studio_tests::vectors::vectors_dir()?
            .join("azure-rest-api-specs/containerregistry/2025-11-01/examples/RegistryGet.json"),
    )?;
    let registry = example.responses[&200].body.clone().context("body")?;
    Mock::given(method("GET"))
        .respond_with(sequence(vec![
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "2")
                .set_body_json(
                    json!({"error": {"code": "TooManyRequests", "message": "slow down"}}),
                ),
            ResponseTemplate::new(200).set_body_json(&registry),
        ]))
        .mount(&mock.server)
        .await;
    let started = Instant::now();
    let got: Value = arm
        .get("/subscriptions/0/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/myRegistry", "2025-11-01")
        .await?;
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(2), "waited only {waited:?}");
    assert_eq!(got, registry);
    assert_eq!(mock.received().await.len(), 2);
    Ok(())
}

#[tokio::test]
async fn server_errors_are_retried_and_arm_errors_are_typed() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let mock = HttpsMock::start().await?;
    let arm = arm_client(&mock).await?;
    Mock::given(path("/flaky"))
        .respond_with(sequence(vec![
            ResponseTemplate::new(503),
            ResponseTemplate::new(500),
            ResponseTemplate::new(200).set_body_json(json!({"ok": true})),
        ]))
        .mount(&mock.server)
        .await;
    let ok: Value = arm.get("/flaky", "1").await?;
    assert_eq!(ok["ok"], true);
    Mock::given(path("/subscriptions/0/resourcegroups/missing"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "error": {"code": "ResourceGroupNotFound", "message": "Resource group 'missing' could not be found."}
        })))
        .mount(&mock.server)
        .await;
    let err = arm
        .get::<Value>("/subscriptions/0/resourcegroups/missing", "2025-04-01")
        .await
        .expect_err("404");
    let (status, code, message) = arm_failure(&err)?;
    assert_eq!(status, 404);
    assert_eq!(code, "ResourceGroupNotFound");
    assert!(message.contains("could not be found"));
    let none: Option<Value> = arm
        .get_optional("/subscriptions/0/resourcegroups/missing", "2025-04-01")
        .await?;
    assert!(none.is_none());
    Ok(())
}

#[tokio::test]
async fn lists_follow_next_link_and_refuse_foreign_hosts() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let mock = HttpsMock::start().await?;
    let arm = arm_client(&mock).await?;
    let example = ArmExample::load(
        &studio_tests::vectors::vectors_dir()?
            .join("azure-rest-api-specs/containerregistry/2025-11-01/examples/RegistryList.json"),
    )?;
    let page = example.responses[&200].body.clone().context("body")?;
    let items = page["value"].as_array().context("value")?.clone();
    assert!(!items.is_empty());
    let list_path = "/subscriptions/00000000-0000-0000-0000-000000000000/providers/Microsoft.ContainerRegistry/registries";
    let mut first = page.clone();
    first["nextLink"] = json!(format!(
        "{}{list_path}?api-version=2025-11-01&$skipToken=page2",
        mock.uri()
    ));
    Mock::given(path(list_path))
        .and(query_param("$skipToken", "page2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(&page))
        .with_priority(1)
        .mount(&mock.server)
        .await;
    Mock::given(path(list_path))
        .respond_with(ResponseTemplate::new(200).set_body_json(&first))
        .with_priority(2)
        .mount(&mock.server)
        .await;
    let all: Vec<Value> = arm.list(list_path, "2025-11-01").await?;
    assert_eq!(all.len(), items.len() * 2);

    // A nextLink to another host would carry our token elsewhere: refused.
    let mock2 = HttpsMock::start().await?;
    let arm2 = arm_client(&mock2).await?;
    let mut evil = page.clone();
    evil["nextLink"] = json!("https://attacker.example/steal?api-version=1");
    Mock::given(path(list_path))
        .respond_with(ResponseTemplate::new(200).set_body_json(&evil))
        .mount(&mock2.server)
        .await;
    let err = arm2
        .list::<Value>(list_path, "2025-11-01")
        .await
        .expect_err("foreign host");
    assert!(matches!(err, Error::UntrustedUrl { .. }), "{err:?}");
    Ok(())
}

#[tokio::test]
async fn requests_carry_an_entra_token_for_arm() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let mock = HttpsMock::start().await?;
    let arm = arm_client(&mock).await?;
    Mock::given(path("/probe"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&mock.server)
        .await;
    let _: Value = arm.get("/probe", "2025-04-01").await?;
    let requests = mock.received().await;
    let auth = requests[0]
        .headers
        .get("authorization")
        .context("no Authorization")?
        .to_str()?;
    let token = auth.strip_prefix("Bearer ").context("not bearer")?;
    let claims: Value = {
        use base64::Engine;
        let payload = token.split('.').nth(1).context("jwt")?;
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload)?)?
    };
    assert_eq!(claims["aud"], "https://management.azure.com");
    assert_eq!(
        requests[0]
            .url
            .query_pairs()
            .find(|(k, _)| k == "api-version")
            .map(|(_, v)| v.into_owned()),
        Some("2025-04-01".into())
    );
    Ok(())
}

fn role_assignment_examples() -> Result<Vec<ArmExample>> {
    let mut out = Vec::new();
    for version in ["2022-04-01", "2026-08-01"] {
        for example in arm_examples(&format!(
            "azure-rest-api-specs/authorization/{version}/examples"
        ))? {
            if example.name().starts_with("RoleAssignments_Create") {
                out.push(example);
            }
        }
    }
    Ok(out)
}

#[tokio::test]
async fn role_assignment_requests_match_every_published_example() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let examples = role_assignment_examples()?;
    assert!(examples.len() >= 3);
    for example in examples {
        let mock = HttpsMock::start().await?;
        let arm = arm_client(&mock).await?;
        let scope = example.param("scope").context("scope")?;
        let name = example.param("roleAssignmentName").context("name")?;
        let api_version = example.param("api-version").context("api-version")?;
        let expected = example.parameters["parameters"].clone();
        let props = &expected["properties"];
        let principal_type = match props["principalType"].as_str() {
            Some("User") => PrincipalType::User,
            Some("ServicePrincipal") => PrincipalType::ServicePrincipal,
            Some("Group") => PrincipalType::Group,
            other => bail!("{}: principalType {other:?}", example.name()),
        };
        Mock::given(method("PUT"))
            .and(path(format!(
                "/{}/providers/Microsoft.Authorization/roleAssignments/{name}",
                scope.trim_matches('/')
            )))
            .and(query_param("api-version", api_version))
            .respond_with(
                ResponseTemplate::new(201)
                    .set_body_json(example.responses[&201].body.clone().context("201")?),
            )
            .expect(1)
            .mount(&mock.server)
            .await;
        let request = RoleAssignmentRequest {
            scope: scope.to_owned(),
            name: name.to_owned(),
            role_definition_id: props["roleDefinitionId"].as_str().context("rd")?.to_owned(),
            principal_id: props["principalId"].as_str().context("pid")?.to_owned(),
            principal_type,
            api_version: api_version.to_owned(),
        };
        let outcome = rbac::assign_role_with(&arm, &request, &AssignmentRetry::default()).await?;
        let AssignmentOutcome::Created {
            assignment,
            attempts: 1,
        } = outcome
        else {
            bail!("{}: {outcome:?}", example.name())
        };
        assert_eq!(assignment.name, name);
        let sent: Value = serde_json::from_slice(&mock.received().await[0].body)?;
        assert_eq!(sent, expected, "{}", example.name());
        mock.server.verify().await;
    }
    Ok(())
}

#[tokio::test]
async fn role_assignment_waits_for_replication_and_accepts_an_existing_one() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let example = role_assignment_examples()?
        .into_iter()
        .next()
        .context("example")?;
    let created = example.responses[&201].body.clone().context("201")?;
    let not_found = || {
        ResponseTemplate::new(400).set_body_json(json!({"error": {
            "code": "PrincipalNotFound",
            "message": "Principal 3a0b7e5c does not exist in the directory 72f988bf-86f1-41af-91ab-2d7cd011db47. Check that you have the correct principal ID."
        }}))
    };
    let mock = HttpsMock::start().await?;
    let arm = arm_client(&mock).await?;
    Mock::given(method("PUT"))
        .respond_with(sequence(vec![
            not_found(),
            not_found(),
            not_found(),
            ResponseTemplate::new(201).set_body_json(&created),
        ]))
        .mount(&mock.server)
        .await;
    let told = Arc::new(Mutex::new(Vec::new()));
    let told2 = told.clone();
    let retry = AssignmentRetry {
        delay: Duration::from_millis(20),
        progress: Some(Arc::new(move |n, of| {
            told2
                .lock()
                .expect("lock")
                .push(format!("Retrying role assignment creation: {n}/{of}"))
        })),
        ..Default::default()
    };
    let outcome = rbac::assign_role(
        &arm,
        "/subscriptions/0/resourceGroups/rg",
        "/providers/x/roleDefinitions/1",
        "3a0b7e5c",
        PrincipalType::ServicePrincipal,
        &retry,
    )
    .await?;
    assert!(
        matches!(outcome, AssignmentOutcome::Created { attempts: 4, .. }),
        "{outcome:?}"
    );
    let puts = mock.received().await;
    assert_eq!(puts.len(), 4);
    // Every attempt used the same assignment name, so at most one assignment can exist.
    assert!(puts.iter().all(|r| r.url.path() == puts[0].url.path()));
    assert_eq!(
        *told.lock().expect("lock"),
        vec![
            "Retrying role assignment creation: 1/36",
            "Retrying role assignment creation: 2/36",
            "Retrying role assignment creation: 3/36"
        ]
    );

    let mock = HttpsMock::start().await?;
    let arm = arm_client(&mock).await?;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(409).set_body_json(json!({"error": {"code": "RoleAssignmentExists", "message": "The role assignment already exists."}})))
        .mount(&mock.server)
        .await;
    let outcome = rbac::assign_role(
        &arm,
        "/subscriptions/0/resourceGroups/rg",
        "/providers/x/roleDefinitions/1",
        "p",
        PrincipalType::User,
        &retry,
    )
    .await?;
    assert_eq!(outcome, AssignmentOutcome::AlreadyExists { attempts: 1 });

    // Out of retries: the ARM error comes back as it was.
    let mock = HttpsMock::start().await?;
    let arm = arm_client(&mock).await?;
    Mock::given(method("PUT"))
        .respond_with(not_found())
        .mount(&mock.server)
        .await;
    let short = AssignmentRetry {
        retries: 2,
        delay: Duration::from_millis(5),
        progress: None,
    };
    let err = rbac::assign_role(
        &arm,
        "/subscriptions/0",
        "/r/1",
        "p",
        PrincipalType::User,
        &short,
    )
    .await
    .expect_err("gives up");
    assert!(
        matches!(&err, Error::Arm { code, .. } if code == "PrincipalNotFound"),
        "{err:?}"
    );
    assert_eq!(mock.received().await.len(), 3);
    Ok(())
}

#[tokio::test]
async fn roles_are_found_by_name_with_a_role_name_filter() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let example = ArmExample::load(&studio_tests::vectors::vectors_dir()?.join(
        "azure-rest-api-specs/authorization/2022-04-01/examples/GetRoleDefinitionByName.json",
    ))?;
    let definition = example.responses[&200].body.clone().context("body")?;
    let role_name = definition["properties"]["roleName"]
        .as_str()
        .context("roleName")?
        .to_owned();
    let mock = HttpsMock::start().await?;
    let arm = arm_client(&mock).await?;
    Mock::given(method("GET"))
        .and(path(
            "/subscriptions/0/providers/Microsoft.Authorization/roleDefinitions",
        ))
        .and(query_param("$filter", format!("roleName eq '{role_name}'")))
        .and(query_param("api-version", rbac::AUTHORIZATION_API_VERSION))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "value": [definition] })))
        .expect(1)
        .mount(&mock.server)
        .await;
    Mock::given(method("GET"))
        .and(path(
            "/subscriptions/0/providers/Microsoft.Authorization/roleDefinitions",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "value": [] })))
        .with_priority(10)
        .mount(&mock.server)
        .await;
    let found = rbac::find_role(&arm, "/subscriptions/0", &role_name).await?;
    assert_eq!(found.id, definition["id"].as_str().context("id")?);
    assert_eq!(found.properties.role_name, role_name);
    let err = rbac::find_role(&arm, "/subscriptions/0", "No Such Role")
        .await
        .expect_err("missing");
    assert!(
        matches!(&err, Error::RoleNotFound { role, .. } if role == "No Such Role"),
        "{err:?}"
    );
    Ok(())
}

#[tokio::test]
async fn create_for_rbac_makes_app_principal_password_and_assignment() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let graph_mock = HttpsMock::start().await?;
    let arm_mock = HttpsMock::start().await?;
    let entra = shared::entra().await?;
    let graph = ArmClient::with_endpoint(
        graph_mock.url(),
        "https://graph.microsoft.com/.default",
        entra.secret_credential()?,
        fast_options(),
    )?;
    let arm = arm_client(&arm_mock).await?;
    // Graph bodies as Microsoft Graph v1.0 documents them (no Graph vectors are shared yet).
    Mock::given(method("POST"))
        .and(path("/v1.0/applications"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#applications/$entity",
            "id": "03ef14b0-ca33-4840-8f4f-d6e91916010e", "appId": "631a96bc-a705-4eda-9f99-fdaf9f54f6a2",
            "displayName": "studio-runner"
        })))
        .expect(1)
        .mount(&graph_mock.server)
        .await;
    let replication = Arc::new(AtomicU32::new(0));
    let r2 = replication.clone();
    Mock::given(method("POST"))
        .and(path("/v1.0/servicePrincipals"))
        .respond_with(move |_: &Request| {
            if r2.fetch_add(1, Ordering::SeqCst) == 0 {
                ResponseTemplate::new(400).set_body_json(json!({"error": {"code": "Request_BadRequest",
                    "message": "The appId '631a96bc-a705-4eda-9f99-fdaf9f54f6a2' of the service principal does not reference a valid application object."}}))
            } else {
                ResponseTemplate::new(201).set_body_json(json!({
                    "id": "59e617e5-e447-4adc-8b88-00af644d7c92", "appId": "631a96bc-a705-4eda-9f99-fdaf9f54f6a2",
                    "displayName": "studio-runner"
                }))
            }
        })
        .mount(&graph_mock.server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1.0/applications/03ef14b0-ca33-4840-8f4f-d6e91916010e/addPassword"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "customKeyIdentifier": null, "endDateTime": "2027-11-26T00:00:00Z",
            "keyId": "f0b0b335-1d71-4883-8f98-567911bfdca6", "startDateTime": "2026-11-26T00:00:00Z",
            "secretText": "mlg8Q~not-a-real-secret-v5d", "hint": "mlg", "displayName": "rbac"
        })))
        .expect(1)
        .mount(&graph_mock.server)
        .await;
    let definition = ArmExample::load(&studio_tests::vectors::vectors_dir()?.join(
        "azure-rest-api-specs/authorization/2022-04-01/examples/GetRoleDefinitionByName.json",
    ))?
    .responses[&200]
        .body
        .clone()
        .context("body")?;
    Mock::given(method("GET"))
        .and(path("/subscriptions/0/resourceGroups/studio/providers/Microsoft.Authorization/roleDefinitions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "value": [definition] })))
        .mount(&arm_mock.server)
        .await;
    let created = role_assignment_examples()?[0].responses[&201]
        .body
        .clone()
        .context("201")?;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(201).set_body_json(created))
        .expect(1)
        .mount(&arm_mock.server)
        .await;
    let request = studio_azure_auth::graph::CreateForRbac {
        display_name: "studio-runner".into(),
        role: Some(
            definition["properties"]["roleName"]
                .as_str()
                .context("name")?
                .into(),
        ),
        scopes: vec!["/subscriptions/0/resourceGroups/studio".into()],
        tenant: entra.tenant.clone(),
        graph_retry_delay: Duration::from_millis(10),
        ..Default::default()
    };
    let sp = studio_azure_auth::graph::create_for_rbac(&graph, &arm, &request).await?;
    assert_eq!(sp.app_id, "631a96bc-a705-4eda-9f99-fdaf9f54f6a2");
    assert_eq!(sp.password.secret(), "mlg8Q~not-a-real-secret-v5d");
    assert!(
        !format!("{sp:?}").contains("mlg8Q"),
        "Debug must not show the password"
    );
    let printed = serde_json::to_value(&sp)?;
    assert_eq!(printed["tenant"], entra.tenant.as_str());
    assert_eq!(printed["password"], "mlg8Q~not-a-real-secret-v5d");
    let put = &arm_mock
        .received()
        .await
        .into_iter()
        .find(|r| r.method.as_str() == "PUT")
        .context("PUT")?;
    let body: Value = serde_json::from_slice(&put.body)?;
    assert_eq!(
        body["properties"]["principalId"],
        "59e617e5-e447-4adc-8b88-00af644d7c92"
    );
    assert_eq!(body["properties"]["principalType"], "ServicePrincipal");
    assert_eq!(body["properties"]["roleDefinitionId"], definition["id"]);
    // Graph never saw an api-version parameter.
    for r in graph_mock.received().await {
        assert!(r.url.query().is_none(), "{}", r.url);
    }
    graph_mock.server.verify().await;
    arm_mock.server.verify().await;
    Ok(())
}

#[tokio::test]
async fn cancelling_a_wait_returns_promptly() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let mock = HttpsMock::start().await?;
    let arm = arm_client(&mock).await?;
    Mock::given(method("PUT"))
        .respond_with(
            ResponseTemplate::new(202)
                .insert_header("Location", "/op")
                .insert_header("Retry-After", "60"),
        )
        .mount(&mock.server)
        .await;
    let token = tokio_util::sync::CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        cancel.cancel();
    });
    let started = Instant::now();
    let err = arm
        .run(
            Method::Put,
            "/x",
            "1",
            Some(&json!({})),
            &PollOptions {
                progress: None,
                cancel: Some(token),
            },
        )
        .await
        .expect_err("cancelled");
    assert!(matches!(err, Error::Cancelled), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(30));
    Ok(())
}

#[tokio::test]
async fn subscriptions_list_and_a_default_chosen_by_name_persists() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let mock = HttpsMock::start().await?;
    let arm = arm_client(&mock).await?;
    // Subscriptions_List (2022-12-01) as documented; no subscription vector is shared yet.
    let subscription = |id: &str, name: &str| {
        json!({"id": format!("/subscriptions/{id}"), "subscriptionId": id, "tenantId": "72f988bf-86f1-41af-91ab-2d7cd011db47",
               "displayName": name, "state": "Enabled", "authorizationSource": "RoleBased",
               "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01", "quotaId": "PayAsYouGo_2014-09-01", "spendingLimit": "Off"}})
    };
    Mock::given(method("GET"))
        .and(path("/subscriptions"))
        .and(query_param(
            "api-version",
            studio_azure_auth::arm::SUBSCRIPTIONS_API_VERSION,
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": [
            subscription("11111111-1111-1111-1111-111111111111", "Sentient AI Evaluation"),
            subscription("22222222-2222-2222-2222-222222222222", "Production"),
        ]})))
        .mount(&mock.server)
        .await;
    let dir =
        studio_azure_auth::store::ConfigDir::at(rig().subdir("subscriptions")?.join("config"))?;
    use studio_azure_auth::subscription;
    let all = subscription::list(&arm, &dir).await?;
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(|s| !s.is_default));
    assert!(matches!(
        subscription::show(&arm, &dir, None).await,
        Err(Error::NoDefaultSubscription)
    ));
    let chosen = subscription::set_default(&arm, &dir, "Sentient AI Evaluation").await?;
    assert_eq!(
        chosen.subscription_id,
        "11111111-1111-1111-1111-111111111111"
    );
    let all = subscription::list(&arm, &dir).await?;
    assert_eq!(all.iter().filter(|s| s.is_default).count(), 1);
    assert!(all[0].is_default);
    assert_eq!(
        subscription::show(&arm, &dir, None).await?.display_name,
        "Sentient AI Evaluation"
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.file("profile.json"))?
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
    let err = subscription::set_default(&arm, &dir, "Staging")
        .await
        .expect_err("unknown");
    assert!(
        err.to_string().contains("Staging") && err.to_string().contains("Production"),
        "{err}"
    );
    // A failed choice leaves the default as it was.
    assert_eq!(
        subscription::show(&arm, &dir, None).await?.subscription_id,
        "11111111-1111-1111-1111-111111111111"
    );
    Ok(())
}
