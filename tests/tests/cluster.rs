//! studio-cluster: acs-engine apimodels from ../shared/vectors → `_output/` → a deployment
//! against a stateful ARM fake (bodies from the published examples, real Entra tokens) →
//! a kubeconfig that kubectl reads; ssh-keygen judges the generated key pair.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use studio_cluster::apimodel::ApiModel;
use studio_cluster::deploy::DeployProgress;
use studio_cluster::generate::{self, GenerateOptions, GpuOptions};
use studio_cluster::template::GpuDriver;
use studio_cluster::{Cluster, ClusterOptions, DeployOptions, DeployOutcome, Error};
use studio_tests::arm_fake::{ArmFake, DeploymentScript, example};
use studio_tests::vectors::{compare_shapes, json_files_recursive, vectors_dir};
use studio_tests::{LogsOnFailure, require_program, rig};

const SUBSCRIPTION: &str = "00000000-0000-0000-0000-000000000000";
/// 2024-11-26 11:24:44 UTC: the suffix is `-6745ab3c`.
const NOW: u64 = 0x6745_ab3c;

fn studio_apimodel() -> Result<PathBuf> {
    Ok(vectors_dir()?.join("studio-go-runner/examples/azure/kubernetes.json"))
}

fn options(root: &Path) -> GenerateOptions {
    GenerateOptions {
        dns_prefix: Some("test-user-k8s".into()),
        auto_suffix: true,
        location: Some("eastus".into()),
        output_root: root.join("_output"),
        clock: Some(Arc::new(|| UNIX_EPOCH + Duration::from_secs(NOW))),
        ..Default::default()
    }
}

/// Every file and directory below `dir` with its mode and (for files) contents.
/// A path's mode and, for files, contents.
type Entry = (u32, Option<Vec<u8>>);

fn snapshot(dir: &Path) -> Result<BTreeMap<PathBuf, Entry>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let mode = std::fs::metadata(&d)?.permissions().mode() & 0o7777;
        out.insert(d.strip_prefix(dir)?.to_owned(), (mode, None));
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let mode = std::fs::metadata(&path)?.permissions().mode() & 0o7777;
                out.insert(
                    path.strip_prefix(dir)?.to_owned(),
                    (mode, Some(std::fs::read(&path)?)),
                );
            }
        }
    }
    Ok(out)
}

fn read_json(path: &Path) -> Result<Value> {
    Ok(serde_json::from_str(&std::fs::read_to_string(path)?)?)
}

/// Whether a vector file is an acs-engine apimodel.
fn is_apimodel(path: &Path) -> Result<bool> {
    let Ok(value) = serde_json::from_str::<Value>(&std::fs::read_to_string(path)?) else {
        return Ok(false);
    };
    Ok(value.get("apiVersion").is_some()
        && value.pointer("/properties/orchestratorProfile").is_some())
}

#[tokio::test]
async fn every_apimodel_in_the_vectors_parses_and_validates() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let mut seen = Vec::new();
    for file in json_files_recursive("")? {
        if !is_apimodel(&file)? {
            continue;
        }
        let model = ApiModel::load(&file).with_context(|| file.display().to_string())?;
        let warnings = model
            .validate()
            .with_context(|| file.display().to_string())?;
        // Every vlabs apimodel has masters, which AKS replaces with a system pool: said so.
        assert!(
            warnings
                .iter()
                .any(|w| w.path == "properties.masterProfile.count"),
            "{}: {warnings:?}",
            file.display()
        );
        seen.push(file);
    }
    assert!(seen.len() >= 4, "only {seen:?}");
    assert!(seen.contains(&studio_apimodel()?));
    Ok(())
}

#[tokio::test]
async fn bad_apimodels_report_their_error_with_its_path_and_write_nothing() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let original = read_json(&studio_apimodel()?)?;
    type Change = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Change, &str, &str)> = vec![
        (
            "unknown key",
            Box::new(|m| m["properties"]["masterProfile"]["colour"] = json!("red")),
            "properties.masterProfile.colour",
            "unknown key",
        ),
        (
            "bad dnsPrefix",
            Box::new(|m| m["properties"]["masterProfile"]["dnsPrefix"] = json!("9-lives")),
            "properties.masterProfile.dnsPrefix",
            "DNSPrefix '9-lives' is invalid",
        ),
        (
            "bad pool name",
            Box::new(|m| m["properties"]["agentPoolProfiles"][0]["name"] = json!("Agent_Pool1")),
            "properties.agentPoolProfiles[0].name",
            "pool name 'Agent_Pool1' is invalid",
        ),
        (
            "two masters",
            Box::new(|m| m["properties"]["masterProfile"]["count"] = json!(2)),
            "properties.masterProfile.count",
            "must be 1, 3 or 5",
        ),
    ];
    for (name, change, path, message) in cases {
        let root = rig().subdir(&format!("bad-{}", name.replace(' ', "-")))?;
        let mut model = original.clone();
        change(&mut model);
        let file = root.join("kubernetes.json");
        std::fs::write(&file, serde_json::to_vec_pretty(&model)?)?;
        let mut opts = options(&root);
        if name == "bad dnsPrefix" {
            opts.dns_prefix = None;
        }
        let result = ApiModel::load(&file).and_then(|m| generate::generate(&m, &opts));
        let Err(Error::InvalidApiModel { problems, .. }) = &result else {
            bail!("{name}: expected InvalidApiModel, got {result:?}");
        };
        let problem = problems
            .iter()
            .find(|p| p.path == path)
            .with_context(|| format!("{name}: no problem at {path}: {problems:?}"))?;
        assert!(problem.message.contains(message), "{name}: {problem}");
        let printed = result
            .as_ref()
            .err()
            .map(ToString::to_string)
            .unwrap_or_default();
        assert!(printed.contains(path), "{name}: {printed}");
        assert!(
            !root.join("_output").exists(),
            "{name}: something was written"
        );
    }
    Ok(())
}

#[tokio::test]
async fn generate_writes_the_tree_with_a_valid_key_pair_and_aks_shapes() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let root = rig().subdir("generate")?;
    let model = ApiModel::load(&studio_apimodel()?)?;
    let generated = generate::generate(&model, &options(&root))?;
    let out = root.join("_output/test-user-k8s-6745ab3c");
    assert_eq!(generated.output_dir, out);

    // The tree, with exact modes.
    let tree = snapshot(&out)?;
    let listing: BTreeMap<String, u32> = tree
        .iter()
        .map(|(p, (mode, _))| (p.display().to_string(), *mode))
        .collect();
    let expected: BTreeMap<String, u32> = [
        ("", 0o700),
        ("apimodel.json", 0o600),
        ("azuredeploy.json", 0o600),
        ("azuredeploy.parameters.json", 0o600),
        ("azureuser_rsa", 0o600),
    ]
    .into_iter()
    .map(|(p, m)| (p.to_owned(), m))
    .collect();
    assert_eq!(listing, expected);

    // The filled apimodel.
    let filled = ApiModel::load(&out.join("apimodel.json"))?;
    assert_eq!(filled.dns_prefix(), "test-user-k8s-6745ab3c");
    assert_eq!(filled.location.as_deref(), Some("eastus"));
    let linux = filled.properties.linux_profile.as_ref().context("linux")?;
    assert_eq!(linux.admin_username, "azureuser");
    let public = linux.ssh.public_keys[0].key_data.clone();

    // The key pair: ssh-keygen derives the apimodel's public key from the private key file,
    // and so does the ssh-key crate.
    let key = out.join("azureuser_rsa");
    let keygen = require_program("ssh-keygen")?;
    let derived = Command::new(keygen)
        .arg("-y")
        .arg("-f")
        .arg(&key)
        .output()?;
    assert!(
        derived.status.success(),
        "{}",
        String::from_utf8_lossy(&derived.stderr)
    );
    let derived = String::from_utf8(derived.stdout)?;
    let words = |s: &str| {
        s.split_whitespace()
            .take(2)
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(words(&derived), words(&public));
    let private = ssh_key::PrivateKey::from_openssh(std::fs::read_to_string(&key)?)?;
    assert_eq!(words(&private.public_key().to_openssh()?), words(&public));
    match private.key_data() {
        ssh_key::private::KeypairData::Rsa(rsa) => {
            assert_eq!(rsa.public.n.as_positive_bytes().map(<[u8]>::len), Some(512));
        }
        other => bail!("not RSA: {:?}", other.algorithm()),
    }

    // The template: the managedCluster resource has the shapes of the published examples.
    let template = read_json(&out.join("azuredeploy.json"))?;
    let cluster = &template["resources"][0];
    assert_eq!(
        cluster["type"],
        "Microsoft.ContainerService/managedClusters"
    );
    assert_eq!(cluster["apiVersion"], "2026-08-01");
    let create = example("containerservice/2026-08-01/examples/ManagedClustersCreate_GPUMIG.json")?;
    let reference = &create.parameters["parameters"];
    let diff = compare_shapes(
        &json!({"location": cluster["location"], "sku": cluster["sku"], "properties": cluster["properties"]}),
        reference,
    );
    assert!(diff.mismatched.is_empty(), "{:?}", diff.mismatched);
    for path in [
        "location",
        "sku.name",
        "properties.dnsPrefix",
        "properties.kubernetesVersion",
        "properties.enableRBAC",
        "properties.agentPoolProfiles[].name",
        "properties.agentPoolProfiles[].count",
        "properties.agentPoolProfiles[].vmSize",
        "properties.agentPoolProfiles[].mode",
        "properties.agentPoolProfiles[].osType",
        "properties.agentPoolProfiles[].type",
        "properties.linuxProfile.adminUsername",
        "properties.linuxProfile.ssh.publicKeys[].keyData",
        "properties.networkProfile.loadBalancerSku",
    ] {
        assert!(
            diff.shared.contains(&path.to_owned()),
            "{path} not shared: {diff:?}"
        );
    }
    // What the GPUMIG example lacks comes from the agent pool example or is managed identity.
    let pool_example =
        example("containerservice/2026-08-01/examples/AgentPoolsCreate_ManagedGPU.json")?;
    let pool_reference = &pool_example.parameters["parameters"]["properties"];
    for path in &diff.only_ours {
        let allowed = path == "properties.agentPoolProfiles[].osDiskSizeGB"
            || path.starts_with("properties.agentPoolProfiles[].nodeLabels")
            || path.starts_with("properties.agentPoolProfiles[].nodeTaints")
            || path.starts_with("properties.agentPoolProfiles[].gpuProfile");
        assert!(allowed, "{path} is in neither published example");
    }
    let pools = cluster["properties"]["agentPoolProfiles"]
        .as_array()
        .context("pools")?;
    assert_eq!(pools.len(), 2);
    assert_eq!(
        (
            pools[0]["name"].as_str(),
            pools[0]["mode"].as_str(),
            pools[0]["vmSize"].as_str(),
            pools[0]["count"].as_u64()
        ),
        (
            Some("system"),
            Some("System"),
            Some("Standard_D2_v2"),
            Some(1)
        )
    );
    let gpu = &pools[1];
    let mut gpu_properties = gpu.clone();
    gpu_properties
        .as_object_mut()
        .context("pool")?
        .remove("name");
    let pool_diff = compare_shapes(&gpu_properties, pool_reference);
    assert!(
        pool_diff.mismatched.is_empty(),
        "{:?}",
        pool_diff.mismatched
    );
    for path in [
        "count",
        "vmSize",
        "mode",
        "osType",
        "gpuProfile.driver",
        "gpuProfile.nvidia.managementMode",
    ] {
        assert!(
            pool_diff.shared.contains(&path.to_owned()),
            "{path}: {pool_diff:?}"
        );
    }
    assert_eq!(gpu["mode"], "User");
    assert_eq!(gpu["nodeLabels"], json!({"accelerator": "nvidia"}));
    assert_eq!(gpu["nodeTaints"], json!(["sku=gpu:NoSchedule"]));
    assert_eq!(gpu["gpuProfile"], pool_reference["gpuProfile"]);
    assert_eq!(gpu["osDiskSizeGB"], 200);
    // Standard_NC6 (K80) is retired: replaced, and said so.
    assert_eq!(gpu["vmSize"], "Standard_NC4as_T4_v3");
    assert!(
        generated
            .warnings
            .iter()
            .any(|w| w.path == "properties.agentPoolProfiles[0].vmSize"
                && w.message.contains("Standard_NC6")),
        "{:?}",
        generated.warnings
    );
    assert!(
        template["outputs"]["controlPlaneFQDN"]["value"]
            .as_str()
            .is_some_and(|v| v.contains(".fqdn]"))
    );

    // The parameters carry the SSH key and the names; no service principal: managed identity.
    let parameters = read_json(&out.join("azuredeploy.parameters.json"))?;
    assert_eq!(
        parameters["parameters"]["sshRSAPublicKey"]["value"],
        public.as_str()
    );
    assert_eq!(
        parameters["parameters"]["clusterName"]["value"],
        "test-user-k8s-6745ab3c"
    );
    assert_eq!(parameters["parameters"]["location"]["value"], "eastus");
    assert_eq!(cluster["identity"]["type"], "SystemAssigned");
    for name in parameters["parameters"]
        .as_object()
        .context("params")?
        .keys()
    {
        assert!(
            template["parameters"].get(name).is_some(),
            "{name} is not declared"
        );
    }
    Ok(())
}

#[tokio::test]
async fn a_second_generate_without_force_fails_and_leaves_the_tree_byte_identical() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let root = rig().subdir("generate-twice")?;
    // With the shared tree's public key in the apimodel, no key pair is generated here.
    let mut model = ApiModel::load(&studio_apimodel()?)?;
    let shared = ApiModel::load(
        &generated_tree("generate-twice-key")
            .await?
            .join("apimodel.json"),
    )?;
    model.properties.linux_profile = shared.properties.linux_profile.clone();
    let first = generate::generate(&model, &options(&root))?;
    let before = snapshot(&first.output_dir)?;
    let err = generate::generate(&model, &options(&root)).expect_err("the tree exists");
    assert!(
        matches!(&err, Error::OutputExists { path } if *path == first.output_dir),
        "{err:?}"
    );
    assert!(err.to_string().contains("--force"), "{err}");
    assert_eq!(snapshot(&first.output_dir)?, before);
    // Nothing beside it either (no staging directory left behind).
    let siblings: Vec<_> = std::fs::read_dir(root.join("_output"))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()?;
    assert_eq!(siblings.len(), 1, "{siblings:?}");

    // With force, the tree is rewritten; the driver None variant writes the device plugin.
    let forced = GenerateOptions {
        force: true,
        gpu: GpuOptions {
            driver: GpuDriver::None,
            taint: Some("nvidia.com/gpu=present:NoSchedule".into()),
        },
        ..options(&root)
    };
    let second = generate::generate(&model, &forced)?;
    let after = snapshot(&second.output_dir)?;
    assert_ne!(after, before);
    // A key given in the apimodel is used as is: no private key is written.
    assert!(
        !after.contains_key(Path::new("azureuser_rsa")),
        "{:?}",
        after.keys()
    );
    let manifest = &after[Path::new("addons/nvidia-device-plugin.yaml")];
    assert_eq!(manifest.0, 0o600);
    assert_eq!(after[Path::new("addons")].0, 0o700);
    let manifest = String::from_utf8(manifest.1.clone().unwrap_or_default())?;
    assert!(manifest.contains("kind: DaemonSet") && manifest.contains("key: nvidia.com/gpu"));
    let template = read_json(&second.output_dir.join("azuredeploy.json"))?;
    let gpu = &template["resources"][0]["properties"]["agentPoolProfiles"][1];
    assert_eq!(gpu["gpuProfile"], json!({"driver": "None"}));
    assert_eq!(
        gpu["nodeTaints"],
        json!(["nvidia.com/gpu=present:NoSchedule"])
    );
    Ok(())
}

static TREE: tokio::sync::OnceCell<PathBuf> = tokio::sync::OnceCell::const_new();

/// A copy (modes kept) of one tree generated for the studio apimodel, so the deploy tests share
/// one RSA 4096 key generation.
async fn generated_tree(name: &str) -> Result<PathBuf> {
    let source = TREE
        .get_or_try_init(|| async {
            let root = rig().subdir("deploy-tree")?;
            let model = ApiModel::load(&studio_apimodel()?)?;
            anyhow::Ok(generate::generate(&model, &options(&root))?.output_dir)
        })
        .await?;
    let dest = rig().subdir(name)?.join("test-user-k8s-6745ab3c");
    copy_tree(source, &dest)?;
    Ok(dest)
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().mode(0o700).create(to)?;
    for entry in std::fs::read_dir(from)? {
        let path = entry?.path();
        let target = to.join(path.file_name().context("name")?);
        if path.is_dir() {
            copy_tree(&path, &target)?;
        } else {
            std::fs::copy(&path, &target)?;
        }
    }
    Ok(())
}

fn fast_cluster_options() -> ClusterOptions {
    ClusterOptions {
        assignment_retry: studio_azure_auth::rbac::AssignmentRetry {
            delay: Duration::from_millis(10),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[tokio::test]
async fn deploy_writes_a_kubeconfig_kubectl_reads_and_attaches_a_registry() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let out = generated_tree("deploy").await?;
    let fake = ArmFake::start().await?;
    // Running for 20 polls: the operations are listed (every poll interval) meanwhile.
    fake.state().script = DeploymentScript::Succeed { polls: 20 };
    let cluster = Cluster::new(fake.client().await?, fast_cluster_options());
    let seen = Arc::new(Mutex::new(Vec::<DeployProgress>::new()));
    let seen2 = seen.clone();
    let outcome = cluster
        .deploy(
            &out,
            &DeployOptions {
                subscription_id: SUBSCRIPTION.into(),
                progress: Some(Arc::new(move |p: &DeployProgress| {
                    seen2
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(p.clone())
                })),
                ..Default::default()
            },
        )
        .await?;
    let DeployOutcome::Deployed(deployment) = outcome else {
        bail!("not deployed: {outcome:?}")
    };
    let group = "test-user-k8s-6745ab3c";
    assert_eq!(deployment.resource_group, group);
    assert_eq!(deployment.cluster_name, group);
    assert_eq!(deployment.location, "eastus");
    let (head, random) = deployment.name.rsplit_once('-').context("name")?;
    assert_eq!(head, group);
    assert!(
        random.len() == 8 && random.bytes().all(|b| b.is_ascii_hexdigit()),
        "{random}"
    );
    assert_eq!(
        deployment.fqdn.as_deref(),
        Some("test-user-k8s-6745ab3c-abcd1234.hcp.eastus.azmk8s.io")
    );

    // The resource group was created in the location, then the deployment PUT: Incremental,
    // the generated template and parameters, in the published request shape.
    let groups = fake
        .bodies("PUT", &format!("/resourcegroups/{group}"))
        .await;
    assert_eq!(groups, vec![json!({"location": "eastus"})]);
    let puts = fake
        .bodies("PUT", &format!("/deployments/{}", deployment.name))
        .await;
    assert_eq!(puts.len(), 1);
    let put = &puts[0];
    assert_eq!(put["properties"]["mode"], "Incremental");
    assert_eq!(
        put["properties"]["template"],
        read_json(&out.join("azuredeploy.json"))?
    );
    let mut parameters = read_json(&out.join("azuredeploy.parameters.json"))?["parameters"].clone();
    parameters["location"] = json!({"value": "eastus"});
    assert_eq!(put["properties"]["parameters"], parameters);
    let reference =
        example("resources/deployments/2025-04-01/examples/PutDeploymentResourceGroup.json")?;
    let diff = compare_shapes(put, &reference.parameters["parameters"]);
    assert!(diff.mismatched.is_empty(), "{diff:?}");
    assert!(diff.shared.contains(&"properties.mode".to_owned()));

    // Progress: the deployment's states in order, and its operations.
    let seen = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let states: Vec<&str> = seen.iter().map(|p| p.status.as_str()).collect();
    let first_running = states
        .iter()
        .position(|s| *s == "Running")
        .context("no Running")?;
    assert!(states[first_running..].contains(&"Succeeded"), "{states:?}");
    assert_eq!(states.last(), Some(&"Succeeded"), "{states:?}");
    assert!(seen.iter().all(|p| p.deployment == deployment.name));
    let operation = seen
        .iter()
        .flat_map(|p| &p.operations)
        .find(|o| o.provisioning_state == "Running")
        .context("no operation reported while running")?;
    assert_eq!(
        operation.resource_type,
        "Microsoft.ContainerService/managedClusters"
    );
    assert_eq!(operation.resource_name, group);

    // The kubeconfig: JSON, private, read by kubectl.
    let kubeconfig = deployment.kubeconfig.clone().context("kubeconfig")?;
    assert_eq!(kubeconfig, out.join("kubeconfig/kubeconfig.eastus.json"));
    let mode = |p: &Path| -> Result<u32> { Ok(std::fs::metadata(p)?.permissions().mode() & 0o777) };
    assert_eq!(mode(&kubeconfig)?, 0o600);
    assert_eq!(mode(&out.join("kubeconfig"))?, 0o700);
    let ours = read_json(&kubeconfig)?;
    let kubectl = require_program("kubectl")?;
    let view = Command::new(&kubectl)
        .args(["config", "view", "--raw", "-o", "json", "--kubeconfig"])
        .arg(&kubeconfig)
        .env("HOME", rig().subdir("kubectl-home")?)
        .output()?;
    assert!(
        view.status.success(),
        "{}",
        String::from_utf8_lossy(&view.stderr)
    );
    let theirs: Value = serde_json::from_slice(&view.stdout)?;
    assert_eq!(
        theirs["clusters"][0]["cluster"]["server"],
        format!(
            "https://{}:443",
            deployment.fqdn.as_deref().unwrap_or_default()
        )
    );
    assert_eq!(theirs["current-context"], format!("{group}-admin"));
    assert_eq!(
        theirs["users"][0]["name"],
        format!("clusterAdmin_{group}_{group}")
    );
    assert_eq!(theirs["users"][0]["user"], ours["users"][0]["user"]);
    assert_eq!(
        theirs["clusters"][0]["cluster"]["certificate-authority-data"],
        ours["clusters"][0]["cluster"]["certificate-authority-data"]
    );
    let context = Command::new(&kubectl)
        .args(["config", "current-context", "--kubeconfig"])
        .arg(&kubeconfig)
        .env("HOME", rig().subdir("kubectl-home")?)
        .output()?;
    assert_eq!(
        String::from_utf8(context.stdout)?.trim(),
        format!("{group}-admin")
    );

    // attach-acr: the example cluster has no kubelet identity, so nothing is assigned …
    let registry = format!(
        "/subscriptions/{SUBSCRIPTION}/resourceGroups/studio/providers/Microsoft.ContainerRegistry/registries/studioacr"
    );
    let err = cluster
        .attach_acr(SUBSCRIPTION, group, group, &registry)
        .await
        .expect_err("no kubelet identity");
    assert!(
        matches!(&err, Error::MissingField { field, .. } if field.contains("kubeletidentity")),
        "{err:?}"
    );
    assert!(fake.state().assignments.is_empty());
    // … with one (as AKS reports it), AcrPull on the registry goes to its object id.
    let kubelet = "5f0e0b5a-28e1-4f6b-9d8a-3a2b1c0d9e8f";
    fake.state().clusters.get_mut(group).context("cluster")?["properties"]["identityProfile"] = json!({"kubeletidentity": {
        "resourceId": format!("/subscriptions/{SUBSCRIPTION}/resourcegroups/MC_{group}_{group}_eastus/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{group}-agentpool"),
        "clientId": "0b6a4b2e-7b1c-4c55-9f7b-6c0d2a3e4f51",
        "objectId": kubelet,
    }});
    let outcome = cluster
        .attach_acr(SUBSCRIPTION, group, group, &registry)
        .await?;
    assert!(
        matches!(
            outcome,
            studio_azure_auth::rbac::AssignmentOutcome::Created { attempts: 1, .. }
        ),
        "{outcome:?}"
    );
    let assignments = fake.state().assignments.clone();
    assert_eq!(assignments.len(), 1);
    let (path, body) = &assignments[0];
    assert!(
        path.starts_with(&format!(
            "{registry}/providers/Microsoft.Authorization/roleAssignments/"
        )),
        "{path}"
    );
    assert_eq!(body["properties"]["principalId"], kubelet);
    assert_eq!(body["properties"]["principalType"], "ServicePrincipal");
    assert!(
        body["properties"]["roleDefinitionId"]
            .as_str()
            .is_some_and(|id| id.starts_with(&registry))
    );
    Ok(())
}

#[tokio::test]
async fn a_failed_deployment_returns_and_prints_its_error_tree() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let out = generated_tree("deploy-failed").await?;
    let fake = ArmFake::start().await?;
    // ARM's DeploymentFailed error as deployments report it (no failed-deployment example is
    // shared yet), with the resource's own error beneath.
    let resource_error = json!({
        "code": "InsufficientVCPUQuota",
        "message": "Insufficient regional vcpu quota left for location eastus. left regional vcpu quota 0, requested quota 4.",
        "target": "agentPoolProfiles[1]"
    });
    fake.state().script = DeploymentScript::Fail {
        polls: 1,
        error: json!({
            "code": "DeploymentFailed",
            "message": "At least one resource deployment operation failed. Please list deployment operations for details.",
            "details": [{"code": "BadRequest", "message": "Provisioning of resource(s) for container service test-user-k8s-6745ab3c failed.", "details": [resource_error]}]
        }),
        operation_error: json!({"code": "QuotaExceeded", "message": "Operation could not be completed as it results in exceeding approved standardNCASv3_T4 Family Cores quota."}),
    };
    let cluster = Cluster::new(fake.client().await?, fast_cluster_options());
    let err = cluster
        .deploy(
            &out,
            &DeployOptions {
                subscription_id: SUBSCRIPTION.into(),
                location: Some("East US".into()),
                ..Default::default()
            },
        )
        .await
        .expect_err("the deployment fails");
    let Error::DeploymentFailed { status, error, .. } = &err else {
        bail!("unexpected {err:?}")
    };
    assert_eq!(status, "ended Failed");
    assert_eq!(error.code, "DeploymentFailed");
    assert_eq!(error.details[0].code, "BadRequest");
    assert_eq!(error.details[0].details[0].code, "InsufficientVCPUQuota");
    assert_eq!(
        error.details[0].details[0].target.as_deref(),
        Some("agentPoolProfiles[1]")
    );
    // The failed operation's own error joins the tree, aimed at its resource.
    let op = error
        .details
        .iter()
        .find(|d| d.code == "QuotaExceeded")
        .context("operation error")?;
    assert!(
        op.target
            .as_deref()
            .is_some_and(|t| t.ends_with("managedClusters/test-user-k8s-6745ab3c"))
    );
    let printed = err.to_string();
    for line in [
        "DeploymentFailed: At least one resource deployment operation failed",
        "  BadRequest: Provisioning of resource(s)",
        "    InsufficientVCPUQuota: Insufficient regional vcpu quota",
        "(target: agentPoolProfiles[1])",
        "QuotaExceeded: Operation could not be completed",
    ] {
        assert!(printed.contains(line), "{line:?} missing from:\n{printed}");
    }
    assert!(!out.join("kubeconfig").exists());

    // A deployment ARM refuses outright (template validation) prints its tree too.
    let fake = ArmFake::start().await?;
    fake.state().script = DeploymentScript::Reject {
        status: 400,
        body: json!({"error": {"code": "InvalidTemplateDeployment", "message": "The template deployment 'x' is not valid according to the validation procedure.",
            "details": [{"code": "PreflightValidationCheckFailed", "message": "Preflight validation failed.", "target": "test-user-k8s-6745ab3c"}]}}),
    };
    let cluster = Cluster::new(fake.client().await?, fast_cluster_options());
    let err = cluster
        .deploy(
            &out,
            &DeployOptions {
                subscription_id: SUBSCRIPTION.into(),
                ..Default::default()
            },
        )
        .await
        .expect_err("rejected");
    let printed = err.to_string();
    assert!(printed.contains("was rejected (HTTP 400)"), "{printed}");
    assert!(printed.contains("  PreflightValidationCheckFailed: Preflight validation failed. (target: test-user-k8s-6745ab3c)"), "{printed}");
    Ok(())
}

#[tokio::test]
async fn dry_run_calls_what_if_and_deploys_nothing() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let out = generated_tree("dry-run").await?;
    let fake = ArmFake::start().await?;
    let group = "test-user-k8s-6745ab3c";
    fake.add_group(SUBSCRIPTION, group, "eastus")?;
    let cluster = Cluster::new(fake.client().await?, fast_cluster_options());
    let outcome = cluster
        .deploy(
            &out,
            &DeployOptions {
                subscription_id: SUBSCRIPTION.into(),
                dry_run: true,
                ..Default::default()
            },
        )
        .await?;
    let DeployOutcome::WhatIf(what_if) = outcome else {
        bail!("deployed on a dry run: {outcome:?}")
    };
    let published = example(
        "resources/deployments/2025-04-01/examples/PostDeploymentWhatIfOnResourceGroup.json",
    )?;
    let changes = published.responses[&200].body.as_ref().context("200")?["properties"]["changes"]
        .as_array()
        .context("changes")?
        .clone();
    assert_eq!(what_if.changes.len(), changes.len());
    for (ours, theirs) in what_if.changes.iter().zip(&changes) {
        assert_eq!(
            ours.resource_id,
            theirs["resourceId"].as_str().unwrap_or_default()
        );
        assert_eq!(
            ours.change_type,
            theirs["changeType"].as_str().unwrap_or_default()
        );
    }
    assert_eq!(what_if.changes[0].delta[0].path, "tags.myNewTag");
    let printed = what_if.to_string();
    assert!(
        printed.contains("+ Create") && printed.contains("~ Modify"),
        "{printed}"
    );
    // What-if got the deployment body; nothing was PUT.
    let what_ifs = fake.state().what_ifs.clone();
    assert_eq!(what_ifs.len(), 1);
    assert_eq!(what_ifs[0].1["properties"]["mode"], "Incremental");
    assert_eq!(
        what_ifs[0].1["properties"]["template"],
        read_json(&out.join("azuredeploy.json"))?
    );
    let requests = fake.requests().await;
    assert!(requests.iter().all(|(m, _)| m != "PUT"), "{requests:?}");
    assert!(fake.state().deployments.is_empty());
    assert!(!out.join("kubeconfig").exists());

    // Without the resource group, what-if cannot run: the plan says it would be created.
    let fake = ArmFake::start().await?;
    let cluster = Cluster::new(fake.client().await?, fast_cluster_options());
    let outcome = cluster
        .deploy(
            &out,
            &DeployOptions {
                subscription_id: SUBSCRIPTION.into(),
                dry_run: true,
                ..Default::default()
            },
        )
        .await?;
    let DeployOutcome::WhatIf(what_if) = outcome else {
        bail!("{outcome:?}")
    };
    assert_eq!(what_if.changes.len(), 2);
    assert!(what_if.changes.iter().all(|c| c.change_type == "Create"));
    assert!(fake.requests().await.iter().all(|(m, _)| m == "GET"));
    Ok(())
}

#[tokio::test]
async fn the_subscription_comes_from_the_flag_or_the_default_account() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let fake = ArmFake::start().await?;
    let cluster = Cluster::new(fake.client().await?, ClusterOptions::default());
    let dir =
        studio_azure_auth::store::ConfigDir::at(rig().subdir("subscription")?.join("config"))?;
    assert_eq!(
        cluster
            .resolve_subscription(Some(SUBSCRIPTION), &dir)
            .await?,
        SUBSCRIPTION
    );
    let err = cluster
        .resolve_subscription(None, &dir)
        .await
        .expect_err("no default");
    assert!(err.to_string().contains("account set"), "{err}");
    // Deploying without one says so before any request.
    let out = generated_tree("no-subscription").await?;
    let err = cluster
        .deploy(&out, &DeployOptions::default())
        .await
        .expect_err("no subscription");
    assert!(err.to_string().contains("subscription"), "{err}");
    assert!(fake.requests().await.is_empty());
    Ok(())
}
