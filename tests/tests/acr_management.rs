//! studio-acr's ACR management (resource groups, registries, credentials, import, registry
//! roles) against ARM fakes whose bodies come from Microsoft's published examples in
//! ../shared/vectors, with real bearer tokens from the Entra stand-in.
//!
//! The data-driven case walks every example file: the OpenAPI spec says which operation each
//! file belongs to, a match on `operationId` calls our typed API for it, and the request we
//! send must equal the example's `parameters` while every response status must parse into our
//! types. A new example file is a new case; one for an operation we do not cover fails unless
//! its operation is in [`OUT_OF_SCOPE`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail, ensure};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use studio_acr::Error;
use studio_acr::management::{
    AcrManagementClient, CONTAINER_REGISTRY_API_VERSION, Credentials, ImportImageParameters,
    ImportMode, NameAvailability, PasswordName, RegenerateCredentialParameters, Registry,
    RegistryCreate, RegistryNameCheckRequest, RegistryRole, RegistryUpdate, ResourceGroup,
    ResourceGroupCreate, RoleGrant, SkuName,
};
use studio_azure_auth::arm::{PollOptions, PollProgress};
use studio_azure_auth::rbac::{self, AssignmentOutcome, AssignmentRetry, PrincipalType};
use studio_tests::arm_fake::{arm_client, fill, local, path_of, sequence};
use studio_tests::https::HttpsMock;
use studio_tests::vectors::{
    ArmExample, SpecOperation, json_files, spec_operations_by_example, vectors_dir,
};
use studio_tests::{LogsOnFailure, rig};
use wiremock::matchers::{any, method, path, path_regex, query_param};
use wiremock::{Mock, Request, Respond, ResponseTemplate};

const REGISTRY_EXAMPLES: &str = "azure-rest-api-specs/containerregistry/2025-11-01/examples";
const REGISTRY_SPEC: &str =
    "azure-rest-api-specs/containerregistry/2025-11-01/containerregistry.json";
const RESOURCES_EXAMPLES: &str = "azure-rest-api-specs/resources/2025-04-01/examples";

/// Operations of Microsoft.ContainerRegistry that studio does not manage. Their examples are
/// skipped by name (a trailing `_` covers an operation group); everything else must be
/// covered by our API or the suite fails.
const OUT_OF_SCOPE: &[(&str, &str)] = &[
    (
        "ConnectedRegistries_",
        "on-premises connected registries: studio releases to a cloud registry",
    ),
    (
        "PrivateEndpointConnections_",
        "private networking is set up by network admins, not by a release",
    ),
    (
        "Registries_ListPrivateLinkResources",
        "private networking, as above",
    ),
    (
        "Registries_GetPrivateLinkResource",
        "private networking, as above",
    ),
    (
        "Replications_",
        "geo-replication (Premium) is not part of studio's registry setup",
    ),
    (
        "Webhooks_",
        "registry webhooks: studio pushes and deploys itself",
    ),
    (
        "Operations_List",
        "the provider's catalogue of operations, not a registry operation",
    ),
];

fn out_of_scope(operation_id: &str) -> Option<&'static str> {
    OUT_OF_SCOPE
        .iter()
        .find(|(name, _)| {
            operation_id == *name || (name.ends_with('_') && operation_id.starts_with(name))
        })
        .map(|(_, why)| *why)
}

/// The operations of the resources examples. Only example files are shared for
/// Microsoft.Resources (not its spec), so this small table says what the spec would.
fn resources_operations() -> BTreeMap<String, SpecOperation> {
    BTreeMap::from([(
        "CreateResourceGroup.json".to_owned(),
        SpecOperation {
            operation_id: "ResourceGroups_CreateOrUpdate".to_owned(),
            method: "PUT".to_owned(),
            path: "/subscriptions/{subscriptionId}/resourcegroups/{resourceGroupName}".to_owned(),
            body_parameter: Some("parameters".to_owned()),
        },
    )])
}

/// What our API returned, by kind, to compare with what an example response says.
#[derive(Debug, PartialEq)]
enum Returned {
    Registry(Box<Registry>),
    Registries(Vec<Registry>),
    Group(ResourceGroup),
    Credentials(Credentials),
    Name(NameAvailability),
    Nothing,
}

fn param<'a>(example: &'a ArmExample, name: &str) -> Result<&'a str> {
    example
        .param(name)
        .with_context(|| format!("{}: no parameter {name}", example.name()))
}

fn body_value<'a>(example: &'a ArmExample, op: &SpecOperation) -> Result<&'a Value> {
    let name = op
        .body_parameter
        .as_deref()
        .with_context(|| format!("{} has no body parameter", op.operation_id))?;
    example
        .parameters
        .get(name)
        .with_context(|| format!("{}: no body parameter {name}", example.name()))
}

/// The example's request body read as our request type, after checking that the fields we
/// type were read into them (not passed through as unknown extras).
fn body_param<T: DeserializeOwned + TypedRequest>(
    example: &ArmExample,
    op: &SpecOperation,
) -> Result<T> {
    let body = body_value(example, op)?;
    let request: T = serde_json::from_value(body.clone())
        .with_context(|| format!("{}: does not read as our request type", example.name()))?;
    request
        .check_typed(body)
        .with_context(|| format!("{}: a common field is not typed", example.name()))?;
    Ok(request)
}

fn opt_text(v: &Value, pointer: &str) -> Option<String> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn opt_bool(v: &Value, pointer: &str) -> Option<bool> {
    v.pointer(pointer).and_then(Value::as_bool)
}

fn strings(v: &Value, pointer: &str) -> Vec<String> {
    serde_json::from_value(v.pointer(pointer).cloned().unwrap_or(json!([]))).unwrap_or_default()
}

/// The typed fields of a request type hold what the JSON says.
trait TypedRequest {
    fn check_typed(&self, body: &Value) -> Result<()>;
}

impl TypedRequest for RegistryCreate {
    fn check_typed(&self, b: &Value) -> Result<()> {
        ensure!(Some(&self.location) == opt_text(b, "/location").as_ref());
        ensure!(
            self.tags == tags(b) && Some(self.sku.name.to_string()) == opt_text(b, "/sku/name")
        );
        ensure!(self.properties.admin_user_enabled == opt_bool(b, "/properties/adminUserEnabled"));
        Ok(())
    }
}

impl TypedRequest for RegistryUpdate {
    fn check_typed(&self, b: &Value) -> Result<()> {
        ensure!(self.sku.as_ref().map(|s| s.name.to_string()) == opt_text(b, "/sku/name"));
        ensure!(
            self.tags.is_some() == b.get("tags").is_some()
                && self.tags.clone().unwrap_or_default() == tags(b)
        );
        ensure!(self.properties.admin_user_enabled == opt_bool(b, "/properties/adminUserEnabled"));
        Ok(())
    }
}

impl TypedRequest for ImportImageParameters {
    fn check_typed(&self, b: &Value) -> Result<()> {
        ensure!(Some(&self.source.source_image) == opt_text(b, "/source/sourceImage").as_ref());
        ensure!(self.source.resource_id == opt_text(b, "/source/resourceId"));
        ensure!(self.source.registry_uri == opt_text(b, "/source/registryUri"));
        ensure!(self.target_tags == strings(b, "/targetTags"));
        ensure!(self.untagged_target_repositories == strings(b, "/untaggedTargetRepositories"));
        ensure!(self.mode.as_ref().map(ToString::to_string) == opt_text(b, "/mode"));
        ensure!(self.extra.is_empty() && self.source.extra.is_empty());
        Ok(())
    }
}

impl TypedRequest for ResourceGroupCreate {
    fn check_typed(&self, b: &Value) -> Result<()> {
        ensure!(Some(&self.location) == opt_text(b, "/location").as_ref() && self.tags == tags(b));
        Ok(())
    }
}

impl TypedRequest for RegistryNameCheckRequest {
    fn check_typed(&self, b: &Value) -> Result<()> {
        ensure!(Some(&self.name) == opt_text(b, "/name").as_ref());
        Ok(())
    }
}

impl TypedRequest for RegenerateCredentialParameters {
    fn check_typed(&self, b: &Value) -> Result<()> {
        ensure!(Some(self.name.to_string()) == opt_text(b, "/name"));
        Ok(())
    }
}

/// Calls our typed API for the example's operation; `None` when our API has no call for it.
async fn call(
    acr: &AcrManagementClient,
    op: &SpecOperation,
    example: &ArmExample,
) -> Result<Option<Returned>> {
    let registries = acr.registries();
    let rg = || param(example, "resourceGroupName");
    let name = || param(example, "registryName");
    Ok(Some(match op.operation_id.as_str() {
        "Registries_CheckNameAvailability" => {
            let request: RegistryNameCheckRequest = body_param(example, op)?;
            Returned::Name(registries.check_name(&request.name).await?)
        }
        "Registries_List" => Returned::Registries(registries.list().await?),
        "Registries_ListByResourceGroup" => {
            Returned::Registries(registries.list_by_resource_group(rg()?).await?)
        }
        "Registries_Get" => Returned::Registry(Box::new(registries.show(rg()?, name()?).await?)),
        "Registries_Create" => {
            let request: RegistryCreate = body_param(example, op)?;
            Returned::Registry(Box::new(registries.create(rg()?, name()?, &request).await?))
        }
        "Registries_Update" => {
            let request: RegistryUpdate = body_param(example, op)?;
            Returned::Registry(Box::new(registries.update(rg()?, name()?, &request).await?))
        }
        "Registries_Delete" => {
            registries.delete(rg()?, name()?).await?;
            Returned::Nothing
        }
        "Registries_ListCredentials" => {
            Returned::Credentials(registries.list_credentials(rg()?, name()?).await?)
        }
        "Registries_RegenerateCredential" => {
            let request: RegenerateCredentialParameters = body_param(example, op)?;
            Returned::Credentials(
                registries
                    .regenerate_credential(rg()?, name()?, request.name)
                    .await?,
            )
        }
        "Registries_ImportImage" => {
            let request: ImportImageParameters = body_param(example, op)?;
            registries.import_image(rg()?, name()?, &request).await?;
            Returned::Nothing
        }
        "ResourceGroups_CreateOrUpdate" => {
            let request: ResourceGroupCreate = body_param(example, op)?;
            Returned::Group(
                acr.resource_groups()
                    .create_or_update(rg()?, &request)
                    .await?,
            )
        }
        _ => return Ok(None),
    }))
}

/// A response body of the operation, read as our type.
fn parse(operation_id: &str, body: &Value) -> Result<Returned> {
    fn read<T: DeserializeOwned>(v: &Value) -> Result<T> {
        Ok(serde_json::from_value(v.clone())?)
    }
    Ok(match operation_id {
        "Registries_CheckNameAvailability" => Returned::Name(read(body)?),
        "Registries_List" | "Registries_ListByResourceGroup" => {
            Returned::Registries(read(body.get("value").context("no value")?)?)
        }
        "Registries_Get" | "Registries_Create" | "Registries_Update" => {
            Returned::Registry(Box::new(read(body)?))
        }
        "Registries_ListCredentials" | "Registries_RegenerateCredential" => {
            Returned::Credentials(read(body)?)
        }
        "ResourceGroups_CreateOrUpdate" => Returned::Group(read(body)?),
        other => bail!("{other}: no response type (a body where none was expected?)"),
    })
}

fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn tags(v: &Value) -> BTreeMap<String, String> {
    serde_json::from_value(v.get("tags").cloned().unwrap_or(json!({}))).unwrap_or_default()
}

/// The typed value really holds what the JSON says (not defaults that happen to parse).
fn assert_reads(returned: &Returned, body: &Value) -> Result<()> {
    fn registry(r: &Registry, v: &Value) -> Result<()> {
        ensure!(
            r.id == text(v, "/id") && r.name == text(v, "/name"),
            "{r:?}"
        );
        ensure!(r.location == text(v, "/location") && r.tags == tags(v));
        ensure!(r.sku.name.as_str() == text(v, "/sku/name"));
        ensure!(r.properties.login_server == text(v, "/properties/loginServer"));
        ensure!(
            Some(r.properties.admin_user_enabled)
                == v.pointer("/properties/adminUserEnabled")
                    .and_then(Value::as_bool)
        );
        ensure!(
            r.properties.provisioning_state.as_ref().map(|s| s.as_str())
                == Some(text(v, "/properties/provisioningState"))
        );
        Ok(())
    }
    match returned {
        Returned::Registry(r) => registry(r, body)?,
        Returned::Registries(list) => {
            let items = body["value"].as_array().context("value")?;
            ensure!(list.len() == items.len() && !list.is_empty());
            for (r, v) in list.iter().zip(items) {
                registry(r, v)?;
            }
        }
        Returned::Group(g) => {
            ensure!(g.id == text(body, "/id") && g.name == text(body, "/name"));
            ensure!(g.location == text(body, "/location") && g.tags == tags(body));
            ensure!(
                g.properties.provisioning_state.as_ref().map(|s| s.as_str())
                    == Some(text(body, "/properties/provisioningState"))
            );
        }
        Returned::Credentials(c) => {
            ensure!(c.username == text(body, "/username"));
            let items = body["passwords"].as_array().context("passwords")?;
            ensure!(c.passwords.len() == items.len() && !items.is_empty());
            for (p, v) in c.passwords.iter().zip(items) {
                ensure!(p.name.as_str() == text(v, "/name"));
                ensure!(p.value.secret() == text(v, "/value"));
                // Passwords never show in Debug or Display.
                for shown in [format!("{c:?}"), c.to_string(), format!("{p:?}")] {
                    ensure!(!shown.contains(p.value.secret()), "shown: {shown}");
                }
            }
        }
        Returned::Name(n) => {
            ensure!(Some(n.name_available) == body["nameAvailable"].as_bool());
            ensure!(n.reason.as_deref() == body["reason"].as_str());
            ensure!(n.message.as_deref() == body["message"].as_str());
        }
        Returned::Nothing => bail!("a body {body} for an operation that returns nothing"),
    }
    Ok(())
}

/// One example and one of its response statuses: the fake answers the first request with
/// that status (headers and body from the example) and any follow-up poll with ARM's terminal
/// answer; we check the request, the result and the parsed body.
async fn run_case(example: &ArmExample, op: &SpecOperation, status: u16) -> Result<()> {
    let mock = HttpsMock::start().await?;
    let acr = AcrManagementClient::new(arm_client(&mock).await?, param(example, "subscriptionId")?);
    let resource = fill(&op.path, example)?;
    let api_version = param(example, "api-version")?;
    let response = &example.responses[&status];
    let final_body = example
        .responses
        .get(&200)
        .and_then(|r| r.body.clone())
        .filter(|b| !b.is_null());

    let mut first = ResponseTemplate::new(status);
    let (mut async_op, mut location) = (None, None);
    for (name, value) in &response.headers {
        let value = local(&mock, value.as_str().unwrap_or_default());
        first = first.insert_header(name.as_str(), value.as_str());
        if name.eq_ignore_ascii_case("Azure-AsyncOperation") {
            async_op = Some(path_of(&mock, &value)?);
        } else if name.eq_ignore_ascii_case("Location") {
            location = Some(path_of(&mock, &value)?);
        }
    }
    if let Some(body) = &response.body {
        first = first.set_body_json(body);
    }
    Mock::given(method(op.method.as_str()))
        .and(path(resource.as_str()))
        .and(query_param("api-version", api_version))
        .respond_with(first)
        .expect(1)
        .named("the example's request")
        .mount(&mock.server)
        .await;

    let puts = op.method == "PUT" || op.method == "PATCH";
    let terminal = |b: &Value| {
        ["Succeeded", "Failed", "Canceled"].contains(&text(b, "/properties/provisioningState"))
    };
    let get_resource = |body: Option<Value>| {
        Mock::given(method("GET"))
            .and(path(resource.as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(body.unwrap_or(Value::Null)))
            .expect(1)
            .named("the resource, polled or read after the operation")
    };
    // What our call should return: the answer itself, or what polling ends with.
    let mut expected = response.body.clone();
    if let Some(poll) = &async_op {
        // ARM's async-operation status resource ({status, error}: the RPC shape, not in the
        // vectors).
        Mock::given(method("GET"))
            .and(path(poll.as_str()))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "Succeeded"})))
            .expect(1)
            .mount(&mock.server)
            .await;
        expected = None;
        if puts {
            get_resource(final_body.clone()).mount(&mock.server).await;
            expected = final_body.clone();
        }
    } else if let Some(poll) = &location {
        let done = match &final_body {
            Some(body) => ResponseTemplate::new(200).set_body_json(body),
            None if example.responses.contains_key(&200) => ResponseTemplate::new(200),
            None => ResponseTemplate::new(204),
        };
        Mock::given(method("GET"))
            .and(path(poll.as_str()))
            .respond_with(done)
            .expect(1)
            .mount(&mock.server)
            .await;
        expected = final_body.clone();
    } else if puts && response.body.as_ref().is_some_and(|b| !terminal(b)) {
        get_resource(final_body.clone()).mount(&mock.server).await;
        expected = final_body.clone();
    }

    let returned = match call(&acr, op, example).await {
        Ok(Some(returned)) => returned,
        failed => {
            // Drop the expectations so that the error below is what the test reports.
            mock.server.reset().await;
            failed?;
            bail!(
                "{}: studio-acr has no call for {} ({} {}): implement it, or add the operation \
                 to OUT_OF_SCOPE with the reason",
                example.name(),
                op.operation_id,
                op.method,
                op.path
            );
        }
    };

    // The request equals the example's: method, path, api-version, body.
    let requests = mock.received().await;
    let sent = requests.first().context("nothing was sent")?;
    assert_eq!(sent.method.as_str(), op.method);
    assert_eq!(sent.url.path(), resource);
    let query: Vec<(String, String)> = sent.url.query_pairs().into_owned().collect();
    assert_eq!(
        query,
        vec![("api-version".to_owned(), api_version.to_owned())]
    );
    match &op.body_parameter {
        Some(name) => {
            let body: Value = serde_json::from_slice(&sent.body).context("request body")?;
            assert_eq!(&body, &example.parameters[name], "request body");
        }
        None => assert!(sent.body.is_empty(), "a body was sent: {:?}", sent.body),
    }

    // What our call returned is what the server said, read into our types.
    match expected.filter(|b| !b.is_null()) {
        Some(body) => {
            assert_eq!(returned, parse(&op.operation_id, &body)?);
            assert_reads(&returned, &body)?;
        }
        None => assert_eq!(returned, Returned::Nothing),
    }
    // And this status's own body parses into our types.
    if let Some(body) = response.body.as_ref().filter(|b| !b.is_null()) {
        assert_reads(&parse(&op.operation_id, body)?, body)?;
    }
    mock.server.verify().await;
    Ok(())
}

/// Every example file with its operation: containerregistry's from the spec, resources' from
/// the table. A file no operation claims is an error.
fn cases() -> Result<Vec<(ArmExample, SpecOperation)>> {
    let vectors = vectors_dir()?;
    let spec = spec_operations_by_example(&vectors.join(REGISTRY_SPEC))?;
    let resources = resources_operations();
    let mut cases = Vec::new();
    for (dir, operations, source) in [
        (REGISTRY_EXAMPLES, &spec, "containerregistry.json"),
        (RESOURCES_EXAMPLES, &resources, "resources_operations()"),
    ] {
        for file in json_files(&vectors.join(dir))? {
            let example = ArmExample::load(&file)?;
            let key = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let op = operations.get(&key).with_context(|| {
                format!("{}: no operation in {source} lists it", file.display())
            })?;
            if let Some(id) = &example.operation_id {
                assert_eq!(id, &op.operation_id, "{}", file.display());
            }
            cases.push((example, op.clone()));
        }
    }
    Ok(cases)
}

#[tokio::test]
async fn every_example_request_matches_and_every_response_parses() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let vectors = vectors_dir()?;
    let spec = spec_operations_by_example(&vectors.join(REGISTRY_SPEC))?;
    // The skip-list names real operations, so it cannot rot into a blanket.
    for (name, _) in OUT_OF_SCOPE {
        assert!(
            spec.values().any(|op| op.operation_id == *name
                || (name.ends_with('_') && op.operation_id.starts_with(name))),
            "OUT_OF_SCOPE entry {name} matches no operation of the spec"
        );
    }
    let cases = cases()?;
    let mut ran = Vec::new();
    let mut skipped = Vec::new();
    for (example, op) in &cases {
        if let Some(why) = out_of_scope(&op.operation_id) {
            tracing::info!(example = %example.name(), operation = %op.operation_id, why, "skipped: out of scope");
            skipped.push(example.name());
            continue;
        }
        let statuses: Vec<u16> = example.responses.keys().copied().collect();
        assert!(!statuses.is_empty(), "{}: no responses", example.name());
        for status in statuses {
            assert!(
                [200, 201, 202, 204].contains(&status),
                "{}: status {status}",
                example.name()
            );
            run_case(example, op, status).await.with_context(|| {
                format!(
                    "{} ({}) answering {status}",
                    example.name(),
                    op.operation_id
                )
            })?;
            ran.push(format!("{}/{status}", example.name()));
        }
    }
    tracing::info!(?ran, ?skipped, "example cases");
    // 11 files today; a lost folder must not pass as zero cases.
    assert!(
        cases.len() >= 11,
        "found only {} example files",
        cases.len()
    );
    for must in [
        "RegistryCreate/201",
        "RegistryUpdate/201",
        "RegistryDelete/202",
        "CreateResourceGroup/201",
    ] {
        assert!(ran.iter().any(|r| r == must), "{must} did not run: {ran:?}");
    }
    Ok(())
}

/// A registry behind a fake ARM that keeps state, answering with the examples' bodies.
struct RegistryFake {
    registry: String,
    bodies: FakeBodies,
    state: Mutex<FakeState>,
}

struct FakeBodies {
    creating: Value,
    succeeded: Value,
    updating: Value,
    updated: Value,
    credentials: Value,
    regenerated: Value,
    async_operation: String,
    delete_location: String,
}

#[derive(Debug, PartialEq)]
enum Phase {
    Absent,
    Creating { polls_left: u32 },
    Ready,
    Updating { polls_left: u32 },
    Deleting { polls_left: u32 },
    Deleted,
}

struct FakeState {
    phase: Phase,
    admin_enabled: bool,
    log: Vec<String>,
}

fn arm_error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_json(json!({"error": {"code": code, "message": message}}))
}

impl Respond for RegistryFake {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let path = request.url.path().to_owned();
        let verb = request.method.as_str().to_owned();
        state.log.push(format!("{verb} {path}"));
        let b = &self.bodies;
        let ok = |body: &Value| ResponseTemplate::new(200).set_body_json(body);
        let on_registry = path == self.registry;
        let on_operation = path.contains("/operationStatuses/");
        match (verb.as_str(), &mut state.phase) {
            ("PUT", Phase::Absent) if on_registry => {
                state.phase = Phase::Creating { polls_left: 1 };
                ResponseTemplate::new(201).set_body_json(&b.creating)
            }
            ("GET", Phase::Creating { polls_left }) if on_registry => {
                if *polls_left > 0 {
                    *polls_left -= 1;
                    ok(&b.creating)
                } else {
                    state.phase = Phase::Ready;
                    ok(&b.succeeded)
                }
            }
            ("GET", Phase::Ready) if on_registry => ok(if state.admin_enabled {
                &b.updated
            } else {
                &b.succeeded
            }),
            ("PATCH", Phase::Ready) if on_registry => {
                state.phase = Phase::Updating { polls_left: 1 };
                ResponseTemplate::new(201)
                    .insert_header("Azure-AsyncOperation", b.async_operation.as_str())
                    .set_body_json(&b.updating)
            }
            ("GET", Phase::Updating { polls_left }) if on_operation => {
                if *polls_left > 0 {
                    *polls_left -= 1;
                    ok(&json!({"status": "InProgress"}))
                } else {
                    state.phase = Phase::Ready;
                    state.admin_enabled = true;
                    ok(&json!({"status": "Succeeded"}))
                }
            }
            ("POST", Phase::Ready) if path == format!("{}/listCredentials", self.registry) => {
                if state.admin_enabled {
                    ok(&b.credentials)
                } else {
                    // The fake's own guard: no credentials before the admin user is on.
                    arm_error(409, "AdminUserDisabled", "the admin user is disabled")
                }
            }
            ("POST", Phase::Ready) if path == format!("{}/regenerateCredential", self.registry) => {
                ok(&b.regenerated)
            }
            ("DELETE", Phase::Ready) if on_registry => {
                state.phase = Phase::Deleting { polls_left: 1 };
                ResponseTemplate::new(202).insert_header("Location", b.delete_location.as_str())
            }
            ("GET", Phase::Deleting { polls_left }) if on_operation => {
                if *polls_left > 0 {
                    *polls_left -= 1;
                    ResponseTemplate::new(202).insert_header("Location", b.delete_location.as_str())
                } else {
                    state.phase = Phase::Deleted;
                    ResponseTemplate::new(200)
                }
            }
            ("GET", Phase::Deleted | Phase::Absent) if on_registry => arm_error(
                404,
                "ResourceNotFound",
                "The Resource 'Microsoft.ContainerRegistry/registries/myRegistry' was not found.",
            ),
            (_, phase) => arm_error(
                500,
                "UnexpectedInFake",
                &format!("{verb} {path} in phase {phase:?}"),
            ),
        }
    }
}

fn example(name: &str) -> Result<ArmExample> {
    ArmExample::load(&vectors_dir()?.join(REGISTRY_EXAMPLES).join(name))
}

fn body_of(example: &ArmExample, status: u16) -> Result<Value> {
    example
        .responses
        .get(&status)
        .and_then(|r| r.body.clone())
        .with_context(|| format!("{}: no {status} body", example.name()))
}

fn header_of(example: &ArmExample, status: u16, name: &str) -> Result<String> {
    Ok(example.responses[&status]
        .headers
        .get(name)
        .and_then(Value::as_str)
        .with_context(|| format!("{}: no {name}", example.name()))?
        .to_owned())
}

fn recording_progress() -> (PollOptions, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let options = PollOptions {
        progress: Some(Arc::new(move |p: &PollProgress| {
            sink.lock().expect("lock").push(p.status.clone());
        })),
        cancel: None,
    };
    (options, seen)
}

fn take(seen: &Mutex<Vec<String>>) -> Vec<String> {
    std::mem::take(&mut *seen.lock().expect("lock"))
}

#[tokio::test]
async fn a_registry_is_created_enabled_read_regenerated_and_deleted() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let mock = HttpsMock::start().await?;
    let (create, get, update) = (
        example("RegistryCreate.json")?,
        example("RegistryGet.json")?,
        example("RegistryUpdate.json")?,
    );
    let (delete, list, regenerate) = (
        example("RegistryDelete.json")?,
        example("RegistryListCredentials.json")?,
        example("RegistryRegenerateCredential.json")?,
    );
    let registry_path = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/myResourceGroup/providers/Microsoft.ContainerRegistry/registries/myRegistry";
    let fake = RegistryFake {
        registry: registry_path.to_owned(),
        bodies: FakeBodies {
            creating: body_of(&create, 201)?,
            succeeded: body_of(&get, 200)?,
            updating: body_of(&update, 201)?,
            updated: body_of(&update, 200)?,
            credentials: body_of(&list, 200)?,
            regenerated: body_of(&regenerate, 200)?,
            async_operation: local(&mock, &header_of(&update, 201, "Azure-AsyncOperation")?),
            delete_location: local(&mock, &header_of(&delete, 202, "Location")?),
        },
        state: Mutex::new(FakeState {
            phase: Phase::Absent,
            admin_enabled: false,
            log: Vec::new(),
        }),
    };
    assert_eq!(
        text(&fake.bodies.creating, "/properties/provisioningState"),
        "Creating"
    );
    let fake = Arc::new(fake);
    let responder = Arc::clone(&fake);
    Mock::given(any())
        .respond_with(move |r: &Request| responder.respond(r))
        .mount(&mock.server)
        .await;
    let (poll, seen) = recording_progress();
    let acr = AcrManagementClient::new(
        arm_client(&mock).await?,
        "00000000-0000-0000-0000-000000000000",
    )
    .with_poll_options(poll);
    let registries = acr.registries();
    let (rg, name) = ("myResourceGroup", "myRegistry");

    // Create: 201 Creating, then polled until Succeeded.
    let request = RegistryCreate::new("westus", SkuName::Standard).tag("key", "value");
    let created = registries.create(rg, name, &request).await?;
    assert_eq!(take(&seen), ["Creating", "Succeeded"]);
    assert_eq!(
        created,
        serde_json::from_value(fake.bodies.succeeded.clone())?
    );
    assert!(!created.properties.admin_user_enabled);
    assert_eq!(
        registries.login_server(rg, name).await?,
        "myRegistry.azurecr.io"
    );

    // Enable the admin user: 201 + Azure-AsyncOperation, InProgress, Succeeded, then the
    // registry is read.
    let updated = registries
        .update(
            rg,
            name,
            &RegistryUpdate::default().admin_user_enabled(true),
        )
        .await?;
    assert_eq!(take(&seen), ["InProgress", "Succeeded"]);
    assert!(updated.properties.admin_user_enabled);

    let credentials = registries.list_credentials(rg, name).await?;
    assert_eq!(credentials.username, "myRegistry");
    assert!(credentials.password(&PasswordName::Password).is_some());
    let regenerated = registries
        .regenerate_credential(rg, name, PasswordName::Password2)
        .await?;
    assert!(regenerated.password(&PasswordName::Password2).is_some());

    // Delete: 202 + Location, polled (202, then 200); then the registry is gone.
    registries.delete(rg, name).await?;
    assert_eq!(take(&seen), ["InProgress", "Succeeded"]);
    assert!(registries.find(rg, name).await?.is_none());

    let operation = path_of(&mock, &fake.bodies.async_operation)?;
    let location = path_of(&mock, &fake.bodies.delete_location)?;
    let expected: Vec<String> = [
        ("PUT", registry_path.to_owned()),
        ("GET", registry_path.to_owned()),
        ("GET", registry_path.to_owned()),
        ("GET", registry_path.to_owned()),
        ("PATCH", registry_path.to_owned()),
        ("GET", operation.clone()),
        ("GET", operation),
        ("GET", registry_path.to_owned()),
        ("POST", format!("{registry_path}/listCredentials")),
        ("POST", format!("{registry_path}/regenerateCredential")),
        ("DELETE", registry_path.to_owned()),
        ("GET", location.clone()),
        ("GET", location),
        ("GET", registry_path.to_owned()),
    ]
    .into_iter()
    .map(|(m, p)| format!("{m} {p}"))
    .collect();
    {
        let state = fake.state.lock().expect("lock");
        assert_eq!(state.log, expected);
        assert_eq!(state.phase, Phase::Deleted);
    }

    // The bodies we sent.
    let requests = mock.received().await;
    let sent = |verb: &str, suffix: &str| -> Result<Value> {
        let r = requests
            .iter()
            .find(|r| r.method.as_str() == verb && r.url.path().ends_with(suffix))
            .with_context(|| format!("no {verb} …{suffix}"))?;
        Ok(serde_json::from_slice(&r.body)?)
    };
    assert_eq!(
        sent("PUT", "myRegistry")?,
        json!({"location": "westus", "tags": {"key": "value"}, "sku": {"name": "Standard"},
               "properties": {"adminUserEnabled": false}})
    );
    assert_eq!(
        sent("PATCH", "myRegistry")?,
        json!({"properties": {"adminUserEnabled": true}})
    );
    assert_eq!(
        sent("POST", "regenerateCredential")?,
        json!({"name": "password2"})
    );
    assert!(requests.iter().all(|r| {
        r.url
            .query_pairs()
            .any(|(k, v)| k == "api-version" && v == CONTAINER_REGISTRY_API_VERSION)
    }));
    Ok(())
}

#[tokio::test]
async fn bad_registry_names_fail_before_any_request() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let mock = HttpsMock::start().await?;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(500))
        .mount(&mock.server)
        .await;
    let acr = AcrManagementClient::new(arm_client(&mock).await?, "0");
    let registries = acr.registries();
    let long = "a".repeat(51);
    let cases = [
        ("ab", "5 to 50 characters long, this one has 2"),
        ("my-registry", "'-' at position 3 is not allowed"),
        (long.as_str(), "5 to 50 characters long, this one has 51"),
    ];
    let rg = "rg";
    for (bad, why) in cases {
        let grant = RoleGrant::new(RegistryRole::AcrPull, "p", PrincipalType::User);
        let import = ImportImageParameters::from_registry_uri("docker.io", "library/hello-world");
        let results: Vec<(&str, Result<(), Error>)> = vec![
            ("check_name", registries.check_name(bad).await.map(drop)),
            (
                "require_name_available",
                registries.require_name_available(bad).await,
            ),
            (
                "create",
                registries
                    .create(rg, bad, &RegistryCreate::new("westus", SkuName::Basic))
                    .await
                    .map(drop),
            ),
            ("show", registries.show(rg, bad).await.map(drop)),
            (
                "update",
                registries
                    .update(rg, bad, &RegistryUpdate::default())
                    .await
                    .map(drop),
            ),
            (
                "list_credentials",
                registries.list_credentials(rg, bad).await.map(drop),
            ),
            (
                "regenerate_credential",
                registries
                    .regenerate_credential(rg, bad, PasswordName::Password)
                    .await
                    .map(drop),
            ),
            ("delete", registries.delete(rg, bad).await),
            (
                "login_server",
                registries.login_server(rg, bad).await.map(drop),
            ),
            (
                "import_image",
                registries.import_image(rg, bad, &import).await,
            ),
            (
                "grant_role",
                registries.grant_role(rg, bad, &grant).await.map(drop),
            ),
        ];
        for (call, result) in results {
            match result {
                Err(Error::InvalidRegistryName { name, reason }) => {
                    assert_eq!(name, bad);
                    assert!(reason.contains(why), "{call}({bad}): {reason}");
                }
                other => bail!("{call}({bad}): {other:?}"),
            }
        }
        let message = registries
            .check_name(bad)
            .await
            .map(drop)
            .unwrap_err()
            .to_string();
        assert!(message.contains(why) && message.contains(bad), "{message}");
    }
    let received = mock.received().await;
    assert!(received.is_empty(), "{} requests were sent", received.len());
    Ok(())
}

#[tokio::test]
async fn a_taken_name_reports_arms_reason_and_message() -> Result<()> {
    let _logs = LogsOnFailure::new();
    for (file, available) in [
        ("RegistryCheckNameNotAvailable.json", false),
        ("RegistryCheckNameAvailable.json", true),
    ] {
        let example = example(file)?;
        let mock = HttpsMock::start().await?;
        Mock::given(method("POST"))
            .and(path(
                "/subscriptions/00000000-0000-0000-0000-000000000000/providers/Microsoft.ContainerRegistry/checkNameAvailability",
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(body_of(&example, 200)?))
            .expect(1)
            .mount(&mock.server)
            .await;
        let acr = AcrManagementClient::new(
            arm_client(&mock).await?,
            "00000000-0000-0000-0000-000000000000",
        );
        let result = acr.registries().require_name_available("myRegistry").await;
        if available {
            result?;
            continue;
        }
        match result {
            Err(Error::NameNotAvailable {
                name,
                reason,
                message,
            }) => {
                assert_eq!(name, "myRegistry");
                assert_eq!(reason, "AlreadyExists");
                assert_eq!(message, "The registry myRegistry is already in use.");
            }
            other => bail!("{other:?}"),
        }
    }
    Ok(())
}

#[tokio::test]
async fn import_sends_the_example_body_and_waits_for_the_operation() -> Result<()> {
    let _logs = LogsOnFailure::new();
    // The spec lists ImportImageByTag.json as Registries_ImportImage's example; the file is
    // not among the shared vectors yet, so this is its content as published (2025-11-01).
    // Once it is shared, the data-driven case runs it too.
    let published = json!({
        "title": "ImportImageByTag",
        "operationId": "Registries_ImportImage",
        "parameters": {
            "api-version": "2025-11-01",
            "subscriptionId": "00000000-0000-0000-0000-000000000000",
            "resourceGroupName": "myResourceGroup",
            "registryName": "myRegistry",
            "parameters": {
                "source": {
                    "resourceId": "/subscriptions/10000000-0000-0000-0000-000000000000/resourceGroups/sourceResourceGroup/providers/Microsoft.ContainerRegistry/registries/sourceRegistry",
                    "sourceImage": "sourceRepository:sourceTag"
                },
                "targetTags": ["targetRepository:targetTag"],
                "untaggedTargetRepositories": ["targetRepository1"],
                "mode": "Force"
            }
        },
        "responses": {
            "200": {},
            "202": {"headers": {"Location": "https://management.azure.com/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/myResourceGroup/providers/Microsoft.ContainerRegistry/locations/location/operationResults/operationStatuses/registries-00000000-0000-0000-0000-000000000000?api-version=2025-11-01"}}
        }
    });
    let file = rig()
        .subdir("import-examples")?
        .join("ImportImageByTag.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&published)?)?;
    let example = ArmExample::load(&file)?;
    let spec = spec_operations_by_example(&vectors_dir()?.join(REGISTRY_SPEC))?;
    let op = spec
        .get("ImportImageByTag.json")
        .context("the spec lists it")?;
    assert_eq!(op.operation_id, "Registries_ImportImage");
    // The same case runner as every shared example: 200 (done) and 202 + Location (polled).
    for status in [200, 202] {
        run_case(&example, op, status)
            .await
            .with_context(|| format!("status {status}"))?;
    }
    // Our builder makes the same body.
    let mut built = ImportImageParameters::from_registry_id(
        "/subscriptions/10000000-0000-0000-0000-000000000000/resourceGroups/sourceResourceGroup/providers/Microsoft.ContainerRegistry/registries/sourceRegistry",
        "sourceRepository:sourceTag",
    )
    .target_tag("targetRepository:targetTag")
    .mode(ImportMode::Force);
    built.untagged_target_repositories = vec!["targetRepository1".into()];
    assert_eq!(
        serde_json::to_value(&built)?,
        example.parameters["parameters"]
    );
    Ok(())
}

#[tokio::test]
async fn acr_pull_is_granted_on_the_registry_scope() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let mock = HttpsMock::start().await?;
    let acr = AcrManagementClient::new(
        arm_client(&mock).await?,
        "00000000-0000-0000-0000-000000000000",
    );
    let registry_id = acr
        .registries()
        .registry_id("myResourceGroup", "myRegistry")?;
    assert_eq!(
        registry_id,
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/myResourceGroup/providers/Microsoft.ContainerRegistry/registries/myRegistry"
    );
    // GetRoleDefinitionByName's body, with the placeholder name and id of the example
    // replaced by AcrPull's (a built-in role with a fixed GUID).
    let vectors = vectors_dir()?;
    let mut definition = ArmExample::load(&vectors.join(
        "azure-rest-api-specs/authorization/2022-04-01/examples/GetRoleDefinitionByName.json",
    ))?
    .responses[&200]
        .body
        .clone()
        .context("definition")?;
    let acr_pull = "/subscriptions/00000000-0000-0000-0000-000000000000/providers/Microsoft.Authorization/roleDefinitions/7f951dda-4ed3-4680-a7ca-43fe172d538d";
    definition["properties"]["roleName"] = json!("AcrPull");
    definition["id"] = json!(acr_pull);
    definition["name"] = json!("7f951dda-4ed3-4680-a7ca-43fe172d538d");
    Mock::given(method("GET"))
        .and(path(format!(
            "{registry_id}/providers/Microsoft.Authorization/roleDefinitions"
        )))
        .and(query_param("$filter", "roleName eq 'AcrPull'"))
        .and(query_param("api-version", rbac::AUTHORIZATION_API_VERSION))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": [definition]})))
        .expect(1)
        .mount(&mock.server)
        .await;
    let assignment = ArmExample::load(&vectors.join(
        "azure-rest-api-specs/authorization/2026-08-01/examples/RoleAssignments_CreateForResource.json",
    ))?
    .responses[&201]
        .body
        .clone()
        .context("assignment")?;
    Mock::given(method("PUT"))
        .and(path_regex(format!(
            "^{registry_id}/providers/Microsoft.Authorization/roleAssignments/[0-9a-f-]{{36}}$"
        )))
        .and(query_param("api-version", rbac::AUTHORIZATION_API_VERSION))
        .respond_with(ResponseTemplate::new(201).set_body_json(&assignment))
        .expect(1)
        .mount(&mock.server)
        .await;
    let principal = "ce2ce14e-85d7-4629-bdbc-454d0519d987";
    let grant = RoleGrant {
        retry: AssignmentRetry {
            retries: 0,
            ..Default::default()
        },
        ..RoleGrant::new(
            RegistryRole::from("AcrPull"),
            principal,
            PrincipalType::ServicePrincipal,
        )
    };
    let outcome = acr
        .registries()
        .grant_role("myResourceGroup", "myRegistry", &grant)
        .await?;
    assert!(
        matches!(&outcome, AssignmentOutcome::Created { attempts: 1, assignment: a } if a.properties.principal_id == principal),
        "{outcome:?}"
    );
    let put = mock
        .received()
        .await
        .into_iter()
        .find(|r| r.method.as_str() == "PUT")
        .context("PUT")?;
    let body: Value = serde_json::from_slice(&put.body)?;
    assert_eq!(
        body,
        json!({"properties": {"roleDefinitionId": acr_pull, "principalId": principal,
                              "principalType": "ServicePrincipal"}})
    );
    mock.server.verify().await;
    Ok(())
}

#[tokio::test]
async fn resource_groups_are_ensured_without_touching_existing_ones_and_deleted() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let example = ArmExample::load(
        &vectors_dir()?
            .join(RESOURCES_EXAMPLES)
            .join("CreateResourceGroup.json"),
    )?;
    let group_path =
        "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/my-resource-group";
    let subscription = "00000000-0000-0000-0000-000000000000";

    // Missing: GET 404, then PUT with our body.
    let mock = HttpsMock::start().await?;
    Mock::given(method("GET"))
        .and(path(group_path))
        .respond_with(arm_error(
            404,
            "ResourceGroupNotFound",
            "Resource group 'my-resource-group' could not be found.",
        ))
        .expect(1)
        .mount(&mock.server)
        .await;
    Mock::given(method("PUT"))
        .and(path(group_path))
        .respond_with(ResponseTemplate::new(201).set_body_json(body_of(&example, 201)?))
        .expect(1)
        .mount(&mock.server)
        .await;
    let acr = AcrManagementClient::new(arm_client(&mock).await?, subscription);
    let group = acr
        .resource_groups()
        .ensure("my-resource-group", &ResourceGroupCreate::new("eastus"))
        .await?;
    assert_eq!(group.location, "eastus");
    let requests = mock.received().await;
    let put = requests
        .iter()
        .find(|r| r.method.as_str() == "PUT")
        .context("PUT")?;
    assert_eq!(
        serde_json::from_slice::<Value>(&put.body)?,
        example.parameters["parameters"]
    );
    mock.server.verify().await;

    // Existing, with tags: returned as it is, nothing written.
    let mock = HttpsMock::start().await?;
    let mut existing = body_of(&example, 200)?;
    existing["tags"] = json!({"owner": "platform-team"});
    Mock::given(method("GET"))
        .and(path(group_path))
        .respond_with(ResponseTemplate::new(200).set_body_json(&existing))
        .expect(2)
        .mount(&mock.server)
        .await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&mock.server)
        .await;
    let acr = AcrManagementClient::new(arm_client(&mock).await?, subscription);
    let group = acr
        .resource_groups()
        .ensure(
            "my-resource-group",
            &ResourceGroupCreate::new("eastus").tag("owner", "studio"),
        )
        .await?;
    assert_eq!(
        group.tags.get("owner").map(String::as_str),
        Some("platform-team")
    );
    assert_eq!(
        acr.resource_groups().show("my-resource-group").await?,
        group
    );
    mock.server.verify().await;

    // Delete: 202 + Location, polled to 200. (No resource-group delete example is shared;
    // this is ARM's documented Location pattern.)
    let mock = HttpsMock::start().await?;
    let location = "/subscriptions/00000000-0000-0000-0000-000000000000/operationresults/eyJqb2JJZCI6IlJFU09VUkNFR1JPVVBERUxFVElPTkpPQi1NWS1SRVNPVVJDRS1HUk9VUCJ9";
    Mock::given(method("DELETE"))
        .and(path(group_path))
        .and(query_param("api-version", "2025-04-01"))
        .respond_with(ResponseTemplate::new(202).insert_header("Location", location))
        .expect(1)
        .mount(&mock.server)
        .await;
    Mock::given(method("GET"))
        .and(path(location))
        .respond_with(sequence(vec![
            ResponseTemplate::new(202).insert_header("Location", location),
            ResponseTemplate::new(200),
        ]))
        .expect(2)
        .mount(&mock.server)
        .await;
    let acr = AcrManagementClient::new(arm_client(&mock).await?, subscription);
    acr.resource_groups().delete("my-resource-group").await?;
    mock.server.verify().await;
    Ok(())
}

#[tokio::test]
async fn listing_registries_follows_every_page() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let example = example("RegistryListByResourceGroup.json")?;
    let page = body_of(&example, 200)?;
    let mock = HttpsMock::start().await?;
    let list_path = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/myResourceGroup/providers/Microsoft.ContainerRegistry/registries";
    let mut first = page.clone();
    first["nextLink"] = json!(format!(
        "{}{list_path}?api-version=2025-11-01&$skipToken=page2",
        mock.uri()
    ));
    Mock::given(path(list_path))
        .and(query_param("$skipToken", "page2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(&page))
        .with_priority(1)
        .expect(1)
        .mount(&mock.server)
        .await;
    Mock::given(path(list_path))
        .respond_with(ResponseTemplate::new(200).set_body_json(&first))
        .with_priority(2)
        .expect(1)
        .mount(&mock.server)
        .await;
    let acr = AcrManagementClient::new(
        arm_client(&mock).await?,
        "00000000-0000-0000-0000-000000000000",
    );
    let all = acr
        .registries()
        .list_by_resource_group("myResourceGroup")
        .await?;
    assert_eq!(all.len(), 2);
    assert!(
        all.iter()
            .all(|r| r.properties.login_server == "myRegistry.azurecr-test.io")
    );
    mock.server.verify().await;
    Ok(())
}
