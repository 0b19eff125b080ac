//! Fakes of Azure Resource Manager for the suites: an [`ArmClient`] pointed at an
//! [`HttpsMock`] with real bearer tokens from the Entra stand-in, and helpers to serve ARM
//! examples from `../shared/vectors` through it (host rewriting, path templates, ordered
//! responses); and [`ArmFake`], a stateful Resource Manager (resource groups, deployments with
//! their operations and what-if, managed clusters and their admin credentials, role definitions
//! and assignments) whose bodies come from the published examples. [`SeedState`] extends it
//! to the whole seed walk: subscriptions, container registries, Microsoft Graph's applications
//! and service principals, role assignments refused while a principal replicates, and a
//! cluster kubeconfig pointing at a server of the test's choice.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine;
use serde_json::{Value, json};
use studio_azure_auth::arm::{ArmClient, ArmClientOptions};
use wiremock::{Mock, Request, Respond, ResponseTemplate};

use crate::https::HttpsMock;
use crate::vectors::{ArmExample, vectors_dir};
use crate::{rig, shared};

/// The token scope of Azure Resource Manager.
pub const ARM_SCOPE: &str = "https://management.azure.com/.default";

/// ARM client options for tests: the rig's CA, short retry and poll delays.
pub fn fast_options() -> ArmClientOptions {
    ArmClientOptions {
        transport: rig().transport_options(),
        initial_retry_delay: Duration::from_millis(10),
        max_retry_delay: Duration::from_secs(5),
        poll_interval: Duration::from_millis(10),
        ..Default::default()
    }
}

/// An ARM client pointed at `mock`, with tokens for ARM's audience from the Entra stand-in.
pub async fn arm_client(mock: &HttpsMock) -> Result<ArmClient> {
    let entra = shared::entra().await?;
    Ok(ArmClient::with_endpoint(
        mock.url(),
        ARM_SCOPE,
        entra.secret_credential()?,
        fast_options(),
    )?)
}

/// Rewrites the public ARM host in an example's headers to the fake's.
pub fn local(mock: &HttpsMock, url: &str) -> String {
    url.replace("https://management.azure.com", &mock.uri())
}

/// The `path` part of an absolute or relative URL (the ARM host rewritten to the fake's).
pub fn path_of(mock: &HttpsMock, url: &str) -> Result<String> {
    Ok(mock.url().join(&local(mock, url))?.path().to_owned())
}

/// Fills `{name}` in a path template from an example's parameters.
pub fn fill(template: &str, example: &ArmExample) -> Result<String> {
    let mut out = template.to_owned();
    for (k, v) in &example.parameters {
        if let Some(v) = v.as_str() {
            out = out.replace(&format!("{{{k}}}"), v);
        }
    }
    if out.contains('{') {
        bail!("{}: parameters do not fill {template}", example.name());
    }
    Ok(out)
}

/// A responder that answers from a list in order, repeating the last.
pub struct Sequence(Mutex<Vec<ResponseTemplate>>);

impl Respond for Sequence {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let mut items = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if items.len() > 1 {
            items.remove(0)
        } else {
            items[0].clone()
        }
    }
}

/// Answers with `items` in order, then keeps repeating the last one.
pub fn sequence(items: Vec<ResponseTemplate>) -> Sequence {
    Sequence(Mutex::new(items))
}

/// The example at `vectors_dir()/azure-rest-api-specs/<relative>`.
pub fn example(relative: &str) -> Result<ArmExample> {
    ArmExample::load(&vectors_dir()?.join("azure-rest-api-specs").join(relative))
}

/// The body of `example`'s response `status`.
pub fn response_body(example: &ArmExample, status: u16) -> Result<Value> {
    example
        .responses
        .get(&status)
        .and_then(|r| r.body.clone())
        .with_context(|| format!("{}: no {status} body", example.name()))
}

fn arm_error(status: u16, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_json(json!({"error": {"code": code, "message": message}}))
}

/// How a deployment in [`ArmFake`] ends.
#[derive(Clone, Debug)]
pub enum DeploymentScript {
    /// `Running` for `polls` polls, then `Succeeded`; the managed cluster then exists.
    Succeed {
        /// Polls that answer `Running`.
        polls: u32,
    },
    /// `Running` for `polls` polls, then `Failed` with `error` (ARM's error object) as the
    /// deployment's `properties.error`; the failed operation carries `operation_error`.
    Fail {
        /// Polls that answer `Running`.
        polls: u32,
        /// The deployment's `properties.error`.
        error: Value,
        /// The managed cluster operation's `statusMessage.error`.
        operation_error: Value,
    },
    /// The PUT is refused with this status and ARM error body.
    Reject {
        /// The HTTP status.
        status: u16,
        /// The error body (`{"error": …}`).
        body: Value,
    },
}

/// A deployment the fake holds.
#[derive(Clone, Debug)]
pub struct FakeDeployment {
    /// The resource group.
    pub resource_group: String,
    /// The PUT body.
    pub request: Value,
    /// GETs answered so far.
    pub polls: u32,
}

/// The fake's state, open to tests.
#[derive(Debug)]
pub struct FakeState {
    /// Resource groups by lower-case name.
    pub groups: BTreeMap<String, Value>,
    /// Deployments by name.
    pub deployments: BTreeMap<String, FakeDeployment>,
    /// Managed clusters by lower-case name.
    pub clusters: BTreeMap<String, Value>,
    /// How the next deployments end.
    pub script: DeploymentScript,
    /// Role assignment PUT bodies by path.
    pub assignments: Vec<(String, Value)>,
    /// What-if requests (path, body).
    pub what_ifs: Vec<(String, Value)>,
    /// Subscriptions, registries, Graph and the other parts of the seed walk.
    pub seed: SeedState,
}

/// A stateful Resource Manager on an [`HttpsMock`]; see the module docs.
pub struct ArmFake {
    /// The mock (its received requests are the fake's log).
    pub mock: HttpsMock,
    /// The state.
    pub state: Arc<Mutex<FakeState>>,
}

struct Vectors {
    group: Value,
    deployment_accepted: Value,
    deployment_succeeded: Value,
    cluster: Value,
    credentials: Value,
    what_if_location: String,
    what_if_result: Value,
    role_definition: Value,
    role_assignment: Value,
}

impl Vectors {
    fn load() -> Result<Self> {
        let group = response_body(
            &example("resources/2025-04-01/examples/CreateResourceGroup.json")?,
            201,
        )?;
        let put =
            example("resources/deployments/2025-04-01/examples/PutDeploymentResourceGroup.json")?;
        let what_if = example(
            "resources/deployments/2025-04-01/examples/PostDeploymentWhatIfOnResourceGroup.json",
        )?;
        let what_if_location = what_if.responses[&202]
            .headers
            .get("Location")
            .and_then(Value::as_str)
            .context("what-if Location")?
            .to_owned();
        let role_definition = response_body(
            &example("authorization/2022-04-01/examples/GetRoleDefinitionByName.json")?,
            200,
        )?;
        let role_assignment = response_body(
            &example(
                "authorization/2026-08-01/examples/RoleAssignments_CreateForResourceGroup.json",
            )?,
            201,
        )?;
        Ok(Self {
            group,
            deployment_accepted: response_body(&put, 201)?,
            deployment_succeeded: response_body(&put, 200)?,
            cluster: response_body(
                &example("containerservice/2026-08-01/examples/ManagedClustersGet.json")?,
                200,
            )?,
            credentials: response_body(
                &example(
                    "containerservice/2026-08-01/examples/ManagedClustersListClusterAdminCredentials.json",
                )?,
                200,
            )?,
            what_if_location,
            what_if_result: response_body(&what_if, 200)?,
            role_definition,
            role_assignment,
        })
    }
}

/// An AKS-shaped admin kubeconfig (YAML) for `cluster` at `fqdn`, with the rig's CA and a
/// client certificate from it.
pub fn aks_kubeconfig_yaml(cluster: &str, resource_group: &str, fqdn: &str) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let cert = &rig().server_cert;
    let user = format!("clusterAdmin_{resource_group}_{cluster}");
    format!(
        "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: {ca}\n    server: https://{fqdn}:443\n  name: {cluster}\ncontexts:\n- context:\n    cluster: {cluster}\n    user: {user}\n  name: {cluster}-admin\ncurrent-context: {cluster}-admin\nkind: Config\npreferences: {{}}\nusers:\n- name: {user}\n  user:\n    client-certificate-data: {crt}\n    client-key-data: {key}\n    token: {token}\n",
        ca = b64(&rig().ca.cert_pem),
        crt = b64(&cert.cert_pem),
        key = b64(&cert.key_pem),
        token = crate::registry::random_hex(32),
    )
}

impl ArmFake {
    /// Starts the fake with no resources and deployments that succeed after two polls.
    pub async fn start() -> Result<Self> {
        let mock = HttpsMock::start().await?;
        let state = Arc::new(Mutex::new(FakeState {
            groups: BTreeMap::new(),
            deployments: BTreeMap::new(),
            clusters: BTreeMap::new(),
            script: DeploymentScript::Succeed { polls: 2 },
            assignments: Vec::new(),
            what_ifs: Vec::new(),
            seed: SeedState::default(),
        }));
        let responder = Router {
            state: state.clone(),
            vectors: Arc::new(Vectors::load()?),
            seed_vectors: Arc::new(SeedVectors::load()?),
        };
        Mock::given(wiremock::matchers::any())
            .respond_with(responder)
            .mount(&mock.server)
            .await;
        Ok(Self { mock, state })
    }

    /// An ARM client for the fake with real Entra tokens.
    pub async fn client(&self) -> Result<ArmClient> {
        arm_client(&self.mock).await
    }

    /// Locks the state.
    pub fn state(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a resource group (the CreateResourceGroup example's body).
    pub fn add_group(&self, subscription: &str, name: &str, location: &str) -> Result<()> {
        let mut group = response_body(
            &example("resources/2025-04-01/examples/CreateResourceGroup.json")?,
            201,
        )?;
        group["id"] = json!(format!(
            "/subscriptions/{subscription}/resourceGroups/{name}"
        ));
        group["name"] = json!(name);
        group["location"] = json!(location);
        self.state().groups.insert(name.to_ascii_lowercase(), group);
        Ok(())
    }

    /// `(method, path)` of every request so far.
    pub async fn requests(&self) -> Vec<(String, String)> {
        self.mock
            .received()
            .await
            .iter()
            .map(|r| (r.method.to_string(), r.url.path().to_owned()))
            .collect()
    }

    /// The JSON bodies of requests with this method whose path ends with `suffix`
    /// (case-insensitive).
    pub async fn bodies(&self, method: &str, suffix: &str) -> Vec<Value> {
        let suffix = suffix.to_ascii_lowercase();
        self.mock
            .received()
            .await
            .iter()
            .filter(|r| {
                r.method.as_str() == method && r.url.path().to_ascii_lowercase().ends_with(&suffix)
            })
            .filter_map(|r| serde_json::from_slice(&r.body).ok())
            .collect()
    }
}

struct Router {
    state: Arc<Mutex<FakeState>>,
    vectors: Arc<Vectors>,
    seed_vectors: Arc<SeedVectors>,
}

impl Respond for Router {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(response) = route_seed(&mut state, &self.seed_vectors, request) {
            return response;
        }
        route(&mut state, &self.vectors, request)
    }
}

fn route(state: &mut FakeState, v: &Vectors, request: &Request) -> ResponseTemplate {
    let path = request.url.path().to_owned();
    let lower = path.to_ascii_lowercase();
    let segments: Vec<&str> = lower.trim_matches('/').split('/').collect();
    let original: Vec<&str> = path.trim_matches('/').split('/').collect();
    let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    let method = request.method.as_str();
    let not_found = |what: &str| {
        arm_error(
            404,
            "ResourceNotFound",
            &format!("The Resource '{what}' was not found."),
        )
    };
    match (method, segments.as_slice()) {
        (_, ["subscriptions", sub, "resourcegroups", _]) => {
            let name = original[3];
            let key = name.to_ascii_lowercase();
            match method {
                "GET" => match state.groups.get(&key) {
                    Some(group) => ResponseTemplate::new(200).set_body_json(group),
                    None => arm_error(
                        404,
                        "ResourceGroupNotFound",
                        &format!("Resource group '{name}' could not be found."),
                    ),
                },
                "PUT" => {
                    let mut group = v.group.clone();
                    group["id"] = json!(format!("/subscriptions/{sub}/resourceGroups/{name}"));
                    group["name"] = json!(name);
                    group["location"] = body["location"].clone();
                    let existed = state.groups.insert(key, group.clone()).is_some();
                    ResponseTemplate::new(if existed { 200 } else { 201 }).set_body_json(group)
                }
                _ => arm_error(405, "MethodNotAllowed", method),
            }
        }
        (
            _,
            [
                "subscriptions",
                sub,
                "resourcegroups",
                _,
                "providers",
                "microsoft.resources",
                "deployments",
                _,
            ],
        ) => {
            let group = original[3].to_owned();
            let name = original[7].to_owned();
            let id = format!(
                "/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.Resources/deployments/{name}"
            );
            match method {
                "PUT" => {
                    if !state.groups.contains_key(&group.to_ascii_lowercase()) {
                        return arm_error(
                            404,
                            "ResourceGroupNotFound",
                            &format!("Resource group '{group}' could not be found."),
                        );
                    }
                    if let DeploymentScript::Reject { status, body } = &state.script {
                        return ResponseTemplate::new(*status).set_body_json(body);
                    }
                    state.deployments.insert(
                        name.clone(),
                        FakeDeployment {
                            resource_group: group,
                            request: body,
                            polls: 0,
                        },
                    );
                    let mut accepted = v.deployment_accepted.clone();
                    accepted["id"] = json!(id);
                    accepted["name"] = json!(name);
                    ResponseTemplate::new(201).set_body_json(accepted)
                }
                "GET" => {
                    let Some(deployment) = state.deployments.get_mut(&name) else {
                        return arm_error(
                            404,
                            "DeploymentNotFound",
                            &format!("Deployment '{name}' could not be found."),
                        );
                    };
                    deployment.polls += 1;
                    let polls = deployment.polls;
                    let request = deployment.request.clone();
                    let group = deployment.resource_group.clone();
                    let mut body = v.deployment_succeeded.clone();
                    body["id"] = json!(id);
                    body["name"] = json!(name);
                    let (running_polls, failure) = match &state.script {
                        DeploymentScript::Succeed { polls } => (*polls, None),
                        DeploymentScript::Fail { polls, error, .. } => {
                            (*polls, Some(error.clone()))
                        }
                        DeploymentScript::Reject { .. } => (0, None),
                    };
                    if polls <= running_polls {
                        body["properties"]["provisioningState"] = json!("Running");
                        body["properties"]
                            .as_object_mut()
                            .map(|p| p.remove("outputResources"));
                    } else if let Some(error) = failure {
                        body["properties"]["provisioningState"] = json!("Failed");
                        body["properties"]["error"] = error;
                    } else {
                        create_cluster(state, v, sub, &group, &request);
                    }
                    ResponseTemplate::new(200).set_body_json(body)
                }
                _ => arm_error(405, "MethodNotAllowed", method),
            }
        }
        (
            "GET",
            [
                "subscriptions",
                sub,
                "resourcegroups",
                _,
                "providers",
                "microsoft.resources",
                "deployments",
                _,
                "operations",
            ],
        ) => {
            let group = original[3];
            let name = original[7];
            let Some(deployment) = state.deployments.get(name) else {
                return arm_error(404, "DeploymentNotFound", name);
            };
            let cluster = deployment
                .request
                .pointer("/properties/parameters/clusterName/value")
                .and_then(Value::as_str)
                .unwrap_or("cluster")
                .to_owned();
            let running = match &state.script {
                DeploymentScript::Succeed { polls } | DeploymentScript::Fail { polls, .. } => {
                    deployment.polls <= *polls
                }
                DeploymentScript::Reject { .. } => false,
            };
            let (status, message) = match (&state.script, running) {
                (_, true) => ("Running", Value::Null),
                (
                    DeploymentScript::Fail {
                        operation_error, ..
                    },
                    false,
                ) => (
                    "Failed",
                    json!({"status": "Failed", "error": operation_error}),
                ),
                _ => ("Succeeded", Value::Null),
            };
            // Deployments_ListOperations as documented (no example of it is shared yet).
            let mut properties = json!({
                "provisioningOperation": "Create",
                "provisioningState": status,
                "timestamp": "2026-11-26T10:00:00Z",
                "targetResource": {
                    "id": format!("/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.ContainerService/managedClusters/{cluster}"),
                    "resourceType": "Microsoft.ContainerService/managedClusters",
                    "resourceName": cluster,
                }
            });
            if !message.is_null() {
                properties["statusCode"] = json!("BadRequest");
                properties["statusMessage"] = message;
            }
            ResponseTemplate::new(200).set_body_json(json!({"value": [{
                "id": format!("/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.Resources/deployments/{name}/operations/0123456789ABCDEF"),
                "operationId": "0123456789ABCDEF",
                "properties": properties,
            }]}))
        }
        (
            "POST",
            [
                "subscriptions",
                _,
                "resourcegroups",
                _,
                "providers",
                "microsoft.resources",
                "deployments",
                _,
                "whatif",
            ],
        ) => {
            if !state.groups.contains_key(&original[3].to_ascii_lowercase()) {
                return arm_error(404, "ResourceGroupNotFound", original[3]);
            }
            state.what_ifs.push((path.clone(), body));
            ResponseTemplate::new(202)
                .insert_header("Location", v.what_if_location.as_str())
                .insert_header("Retry-After", "0")
        }
        ("GET", _) if path == v.what_if_location => {
            ResponseTemplate::new(200).set_body_json(&v.what_if_result)
        }
        (
            "GET",
            [
                "subscriptions",
                _,
                "resourcegroups",
                _,
                "providers",
                "microsoft.containerservice",
                "managedclusters",
                name,
            ],
        ) => match state.clusters.get(*name) {
            Some(cluster) => ResponseTemplate::new(200).set_body_json(cluster),
            None => not_found(name),
        },
        (
            "POST",
            [
                "subscriptions",
                _,
                "resourcegroups",
                _,
                "providers",
                "microsoft.containerservice",
                "managedclusters",
                name,
                "listclusteradmincredential",
            ],
        ) => {
            let Some(cluster) = state.clusters.get(*name) else {
                return not_found(name);
            };
            // The seed walk's kubeconfig (pointing at the Kubernetes test server) if it set one.
            let yaml = state.seed.kubeconfig.clone().unwrap_or_else(|| {
                let fqdn = cluster["properties"]["fqdn"].as_str().unwrap_or_default();
                aks_kubeconfig_yaml(original[7], original[3], fqdn)
            });
            let mut credentials = v.credentials.clone();
            // The example's value is a placeholder; AKS returns base64 of a kubeconfig.
            credentials["kubeconfigs"][0]["name"] = json!("clusterAdmin");
            credentials["kubeconfigs"][0]["value"] =
                json!(base64::engine::general_purpose::STANDARD.encode(yaml));
            ResponseTemplate::new(200).set_body_json(credentials)
        }
        (
            "GET",
            [
                ..,
                "providers",
                "microsoft.authorization",
                "roledefinitions",
            ],
        ) => {
            let filter = request
                .url
                .query_pairs()
                .find(|(k, _)| k == "$filter")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            let name = filter
                .strip_prefix("roleName eq '")
                .and_then(|s| s.strip_suffix('\''))
                .unwrap_or_default();
            let scope = path
                .split("/providers/Microsoft.Authorization")
                .next()
                .unwrap_or_default();
            let mut definition = v.role_definition.clone();
            definition["properties"]["roleName"] = json!(name);
            definition["id"] = json!(format!(
                "{scope}/providers/Microsoft.Authorization/roleDefinitions/7f951dda-4ed3-4680-a7ca-43fe172d538d"
            ));
            ResponseTemplate::new(200).set_body_json(json!({"value": [definition]}))
        }
        (
            "PUT",
            [
                ..,
                "providers",
                "microsoft.authorization",
                "roleassignments",
                _,
            ],
        ) => {
            state.assignments.push((path.clone(), body.clone()));
            let mut assignment = v.role_assignment.clone();
            assignment["id"] = json!(path);
            assignment["name"] = json!(original.last().copied().unwrap_or_default());
            assignment["properties"]["principalId"] = body["properties"]["principalId"].clone();
            assignment["properties"]["roleDefinitionId"] =
                body["properties"]["roleDefinitionId"].clone();
            ResponseTemplate::new(201).set_body_json(assignment)
        }
        _ => arm_error(
            404,
            "NoRoute",
            &format!("the ARM fake has no route for {method} {path}"),
        ),
    }
}

/// The managed cluster a successful deployment creates: the ManagedClustersGet example with
/// the deployment's name, DNS prefix and location.
fn create_cluster(state: &mut FakeState, v: &Vectors, sub: &str, group: &str, request: &Value) {
    let param = |name: &str| {
        request
            .pointer(&format!("/properties/parameters/{name}/value"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let name = param("clusterName");
    let prefix = param("dnsPrefix");
    let location = param("location");
    let mut cluster = v.cluster.clone();
    cluster["id"] = json!(format!(
        "/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.ContainerService/managedClusters/{name}"
    ));
    cluster["name"] = json!(name);
    cluster["location"] = json!(location);
    cluster["properties"]["dnsPrefix"] = json!(prefix);
    cluster["properties"]["fqdn"] = json!(format!("{prefix}-abcd1234.hcp.{location}.azmk8s.io"));
    state
        .clusters
        .entry(name.to_ascii_lowercase())
        .or_insert(cluster);
}

/// The parts of the seed walk beyond deployments: see [`FakeState::seed`].
#[derive(Debug, Default)]
pub struct SeedState {
    /// What `GET /subscriptions` lists (ARM's subscription objects).
    pub subscriptions: Vec<Value>,
    /// Container registries by lower-case name.
    pub registries: BTreeMap<String, Value>,
    /// The `loginServer` of registries created from now on (default `<name>.azurecr.io`),
    /// e.g. the rig registry's `127.0.0.1:<port>`.
    pub login_server: Option<String>,
    /// The next role assignment PUTs answered `PrincipalNotFound` (as ARM answers while a new
    /// service principal replicates).
    pub principal_not_found: u32,
    /// `PrincipalNotFound` answers given so far.
    pub principal_not_found_sent: u32,
    /// The kubeconfig (YAML) `listClusterAdminCredential` returns instead of the AKS-shaped
    /// one, e.g. the Kubernetes test server's.
    pub kubeconfig: Option<String>,
    /// Graph applications (as created), by object id.
    pub applications: BTreeMap<String, Value>,
    /// Graph service principals (as created).
    pub service_principals: Vec<Value>,
    /// Passwords added to applications: (application object id, key id). The secret text is
    /// not kept.
    pub passwords: Vec<(String, String)>,
    /// Each registry's admin credentials (the `listCredentials` body), by lower-case name.
    pub registry_credentials: BTreeMap<String, Value>,
    /// `importImage` requests: (registry path, body).
    pub imports: Vec<(String, Value)>,
}

impl ArmFake {
    /// Adds a subscription that `GET /subscriptions` lists.
    pub fn add_subscription(&self, id: &str, name: &str) {
        self.state().seed.subscriptions.push(json!({
            "id": format!("/subscriptions/{id}"),
            "subscriptionId": id,
            "tenantId": crate::entra::TENANT_ID,
            "displayName": name,
            "state": "Enabled",
            "authorizationSource": "RoleBased",
            "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01",
                "quotaId": "PayAsYouGo_2014-09-01", "spendingLimit": "Off"},
        }));
    }
}

struct SeedVectors {
    registry_created: Value,
    registry_creating: Value,
    registry_updated: Value,
    credentials: Value,
}

impl SeedVectors {
    fn load() -> Result<Self> {
        let create = example("containerregistry/2025-11-01/examples/RegistryCreate.json")?;
        Ok(Self {
            registry_created: response_body(&create, 200)?,
            registry_creating: response_body(&create, 201)?,
            registry_updated: response_body(
                &example("containerregistry/2025-11-01/examples/RegistryUpdate.json")?,
                200,
            )?,
            credentials: response_body(
                &example("containerregistry/2025-11-01/examples/RegistryListCredentials.json")?,
                200,
            )?,
        })
    }
}

/// A random GUID-shaped id.
fn guid() -> String {
    let h = crate::registry::random_hex(16);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// The seed walk's routes; `None` leaves the request to [`route`].
fn route_seed(
    state: &mut FakeState,
    v: &SeedVectors,
    request: &Request,
) -> Option<ResponseTemplate> {
    let path = request.url.path().to_owned();
    let lower = path.to_ascii_lowercase();
    let segments: Vec<&str> = lower.trim_matches('/').split('/').collect();
    let original: Vec<&str> = path.trim_matches('/').split('/').collect();
    let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    let method = request.method.as_str();
    let registry_list = |state: &FakeState, group: Option<&str>| {
        let value: Vec<Value> = state
            .seed
            .registries
            .values()
            .filter(|r| {
                group.is_none_or(|g| {
                    r["id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_ascii_lowercase()
                        .contains(&format!("/resourcegroups/{g}/"))
                })
            })
            .cloned()
            .collect();
        ResponseTemplate::new(200).set_body_json(json!({ "value": value }))
    };
    let response = match (method, segments.as_slice()) {
        ("GET", ["subscriptions"]) => {
            ResponseTemplate::new(200).set_body_json(json!({ "value": state.seed.subscriptions }))
        }
        (
            "GET",
            [
                "subscriptions",
                _,
                "providers",
                "microsoft.containerregistry",
                "registries",
            ],
        ) => registry_list(state, None),
        (
            "GET",
            [
                "subscriptions",
                _,
                "resourcegroups",
                group,
                "providers",
                "microsoft.containerregistry",
                "registries",
            ],
        ) => registry_list(state, Some(group)),
        (
            _,
            [
                "subscriptions",
                sub,
                "resourcegroups",
                _,
                "providers",
                "microsoft.containerregistry",
                "registries",
                name,
            ],
        ) => {
            let group = original[3];
            let key = name.to_string();
            match method {
                "PUT" => {
                    if !state.seed_group_exists(group) {
                        return Some(arm_error(
                            404,
                            "ResourceGroupNotFound",
                            &format!("Resource group '{group}' could not be found."),
                        ));
                    }
                    let mut registry = v.registry_created.clone();
                    let display = original[7];
                    registry["id"] = json!(format!(
                        "/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.ContainerRegistry/registries/{display}"
                    ));
                    registry["name"] = json!(display);
                    registry["location"] = body["location"].clone();
                    registry["tags"] = body.get("tags").cloned().unwrap_or(json!({}));
                    let sku = body["sku"]["name"].as_str().unwrap_or("Basic").to_owned();
                    registry["sku"] = json!({"name": sku, "tier": sku});
                    registry["properties"]["adminUserEnabled"] = json!(
                        body["properties"]["adminUserEnabled"]
                            .as_bool()
                            .unwrap_or(false)
                    );
                    registry["properties"]["loginServer"] = json!(
                        state
                            .seed
                            .login_server
                            .clone()
                            .unwrap_or_else(|| format!("{key}.azurecr.io"))
                    );
                    let mut credentials = v.credentials.clone();
                    credentials["username"] = json!(display);
                    state
                        .seed
                        .registry_credentials
                        .entry(key.clone())
                        .or_insert(credentials);
                    state.seed.registries.insert(key, registry.clone());
                    // Answered while still creating (as the 201 example); GET then finds it done.
                    let mut creating = v.registry_creating.clone();
                    for field in ["id", "name", "location", "tags", "sku"] {
                        creating[field] = registry[field].clone();
                    }
                    creating["properties"]["loginServer"] =
                        registry["properties"]["loginServer"].clone();
                    creating["properties"]["provisioningState"] = json!("Creating");
                    ResponseTemplate::new(201).set_body_json(creating)
                }
                "GET" => match state.seed.registries.get(&key) {
                    Some(registry) => ResponseTemplate::new(200).set_body_json(registry),
                    None => arm_error(
                        404,
                        "ResourceNotFound",
                        &format!(
                            "The Resource 'Microsoft.ContainerRegistry/registries/{}' under resource group '{group}' was not found.",
                            original[7]
                        ),
                    ),
                },
                "PATCH" => {
                    let Some(registry) = state.seed.registries.get_mut(&key) else {
                        return Some(arm_error(404, "ResourceNotFound", original[7]));
                    };
                    if let Some(enabled) = body["properties"]["adminUserEnabled"].as_bool() {
                        registry["properties"]["adminUserEnabled"] = json!(enabled);
                    }
                    if let Some(sku) = body["sku"]["name"].as_str() {
                        registry["sku"] = json!({"name": sku, "tier": sku});
                    }
                    let mut updated = v.registry_updated.clone();
                    for field in ["id", "name", "location", "tags", "sku", "properties"] {
                        updated[field] = registry[field].clone();
                    }
                    ResponseTemplate::new(200).set_body_json(updated)
                }
                "DELETE" => {
                    state.seed.registry_credentials.remove(&key);
                    match state.seed.registries.remove(&key) {
                        Some(_) => ResponseTemplate::new(200),
                        None => ResponseTemplate::new(204),
                    }
                }
                _ => arm_error(405, "MethodNotAllowed", method),
            }
        }
        // The registry actions: the registry must exist.
        (
            "POST",
            [
                "subscriptions",
                sub,
                "resourcegroups",
                _,
                "providers",
                "microsoft.containerregistry",
                "registries",
                name,
                action @ ("listcredentials" | "regeneratecredential" | "importimage"),
            ],
        ) => {
            let Some(registry) = state.seed.registries.get(*name) else {
                return Some(arm_error(404, "ResourceNotFound", original[7]));
            };
            match *action {
                "listcredentials" => {
                    if registry["properties"]["adminUserEnabled"] != true {
                        return Some(arm_error(
                            400,
                            "BadRequest",
                            &format!(
                                "The admin user is disabled for registry '{}'. Enable it with 'az acr update -n {} --admin-enabled true'.",
                                original[7], original[7]
                            ),
                        ));
                    }
                    let mut credentials = v.credentials.clone();
                    credentials["username"] = registry["name"].clone();
                    let credentials = state
                        .seed
                        .registry_credentials
                        .get(*name)
                        .cloned()
                        .unwrap_or(credentials);
                    ResponseTemplate::new(200).set_body_json(credentials)
                }
                "regeneratecredential" => {
                    let Some(credentials) = state.seed.registry_credentials.get_mut(*name) else {
                        return Some(arm_error(404, "ResourceNotFound", original[7]));
                    };
                    let which = body["name"].as_str().unwrap_or_default().to_owned();
                    let Some(entry) = credentials["passwords"]
                        .as_array_mut()
                        .and_then(|ps| ps.iter_mut().find(|p| p["name"] == which.as_str()))
                    else {
                        return Some(arm_error(
                            400,
                            "InvalidParameter",
                            &format!("'{which}' is not a password name: use password or password2"),
                        ));
                    };
                    entry["value"] = json!(crate::registry::random_hex(16));
                    ResponseTemplate::new(200).set_body_json(credentials.clone())
                }
                _ => {
                    let location = registry["location"].as_str().unwrap_or("eastus").to_owned();
                    state.seed.imports.push((path.clone(), body));
                    // Accepted; the operation result is at the Location (answered done below).
                    ResponseTemplate::new(202)
                        .insert_header(
                            "Location",
                            format!(
                                "/subscriptions/{sub}/providers/Microsoft.ContainerRegistry/locations/{location}/operationResults/registries-{}",
                                crate::registry::random_hex(8)
                            )
                            .as_str(),
                        )
                        .insert_header("Retry-After", "0")
                }
            }
        }
        (
            "GET",
            [
                "subscriptions",
                _,
                "providers",
                "microsoft.containerregistry",
                "locations",
                _,
                "operationresults",
                _,
            ],
        ) => ResponseTemplate::new(200),
        ("POST", ["v1.0", "applications"]) => {
            // Microsoft Graph v1.0's application resource, as documented (no vectors shared).
            let id = guid();
            let application = json!({
                "id": id, "appId": guid(), "displayName": body["displayName"],
                "signInAudience": "AzureADMyOrg", "passwordCredentials": [],
            });
            state.seed.applications.insert(id, application.clone());
            ResponseTemplate::new(201).set_body_json(application)
        }
        ("POST", ["v1.0", "serviceprincipals"]) => {
            let app_id = body["appId"].as_str().unwrap_or_default();
            let Some(application) = state
                .seed
                .applications
                .values()
                .find(|a| a["appId"] == app_id)
                .cloned()
            else {
                return Some(ResponseTemplate::new(400).set_body_json(json!({"error": {
                    "code": "Request_BadRequest",
                    "message": format!("The appId '{app_id}' of the service principal does not reference a valid application object."),
                }})));
            };
            let principal = json!({
                "id": guid(), "appId": app_id, "displayName": application["displayName"],
                "servicePrincipalType": "Application", "accountEnabled": true,
            });
            state.seed.service_principals.push(principal.clone());
            ResponseTemplate::new(201).set_body_json(principal)
        }
        ("POST", ["v1.0", "applications", _, "addpassword"]) => {
            let id = original[2].to_owned();
            if !state.seed.applications.contains_key(&id) {
                return Some(ResponseTemplate::new(404).set_body_json(json!({"error": {
                    "code": "Request_ResourceNotFound",
                    "message": format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present."),
                }})));
            }
            let key_id = guid();
            let secret = format!(
                "{}~{}",
                &crate::registry::random_hex(2),
                crate::registry::random_hex(18)
            );
            state.seed.passwords.push((id, key_id.clone()));
            ResponseTemplate::new(200).set_body_json(json!({
                "keyId": key_id,
                "displayName": body["passwordCredential"]["displayName"],
                "endDateTime": body["passwordCredential"]["endDateTime"],
                "startDateTime": "2026-11-26T00:00:00Z",
                "hint": &secret[..3],
                "secretText": secret,
                "customKeyIdentifier": null,
            }))
        }
        (
            "PUT",
            [
                ..,
                "providers",
                "microsoft.authorization",
                "roleassignments",
                _,
            ],
        ) if state.seed.principal_not_found > 0 => {
            state.seed.principal_not_found -= 1;
            state.seed.principal_not_found_sent += 1;
            let principal = body["properties"]["principalId"]
                .as_str()
                .unwrap_or_default()
                .replace('-', "");
            arm_error(
                400,
                "PrincipalNotFound",
                &format!(
                    "Principal {principal} does not exist in the directory {}. Check that you have the correct principal ID. If you are creating this principal and then immediately assigning a role, this error might be related to a replication delay. In this case, set the role assignment principalType property to a value, such as ServicePrincipal, User, or Group.  See https://aka.ms/docs-principaltype",
                    crate::entra::TENANT_ID
                ),
            )
        }
        _ => return None,
    };
    Some(response)
}

impl FakeState {
    fn seed_group_exists(&self, name: &str) -> bool {
        self.groups.contains_key(&name.to_ascii_lowercase())
    }
}
