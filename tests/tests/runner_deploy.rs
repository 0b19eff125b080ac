//! studio-runner-deploy: stencil templates, server-side apply, pull secrets and rollout waits
//! against the rig's Kubernetes test server (held honest by kubectl) and its real registry.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use studio_runner_deploy::template::{Context, Duat, RenderOptions, Template};
use studio_tests::LogsOnFailure;

fn seed_template() -> Result<Template> {
    let path = studio_tests::vectors::vectors_dir()?
        .join("studio-go-runner/examples/azure/deployment-1.9.yaml");
    Ok(Template::from_file(&path)?)
}

fn seed_context(env: &[(&str, &str)]) -> Context {
    Context {
        duat: Duat {
            version: "0.9.27".into(),
            module: "studio-go-runner".into(),
            git_branch: "main".into(),
            git_hash: "0123456789abcdef0123456789abcdef01234567".into(),
            ..Default::default()
        },
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        values: BTreeMap::new(),
    }
}

#[test]
fn the_seed_deployment_renders_as_reviewed() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let rendered = seed_template()?.render(
        &seed_context(&[("azure_registry_name", "studioml")]),
        &RenderOptions::default(),
    )?;
    let expected_path = studio_tests::workspace_root()
        .join("tests/fixtures/runner-deploy/deployment-1.9.expected.yaml");
    let expected = std::fs::read_to_string(&expected_path)
        .with_context(|| format!("reading {}", expected_path.display()))?;
    assert_eq!(rendered, expected);
    Ok(())
}

#[tokio::test]
async fn the_seed_deployment_applies_in_order_and_kubectl_sees_it() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let kube = shared::kube().await?;
    let rendered = seed_template()?.render(
        &seed_context(&[("azure_registry_name", "studioml")]),
        &RenderOptions::default(),
    )?;
    let deploy = deploy_client("seed").await?;
    let report = deploy
        .apply("studioml", &manifest::parse(&rendered)?)
        .await?;
    let order: Vec<String> = report
        .applied
        .iter()
        .map(|a| a.object.to_string())
        .collect();
    assert_eq!(
        order,
        vec![
            "ServiceAccount seed/studioml-account",
            "ClusterRole studioml-role",
            "RoleBinding seed/studioml-role-bind",
            "ConfigMap seed/studioml-env",
            "Deployment seed/studioml-go-runner-deployment",
        ]
    );
    let role =
        kubectl_json(
            kube.kubectl()?
                .args(["get", "clusterrole", "studioml-role", "-o", "json"]),
        )?;
    assert_eq!(role["rules"][0]["resources"], json!(["configMaps"]));
    assert_eq!(role["metadata"]["labels"][RELEASE_LABEL], "studioml");
    let deployment = kubectl_json(kube.kubectl()?.args([
        "get",
        "deployment",
        "studioml-go-runner-deployment",
        "-n",
        "seed",
        "-o",
        "json",
    ]))?;
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "studioml.azurecr.io/sentient.ai/studio-go-runner/runner:0.9.27"
    );
    deploy.delete_release("studioml").await?;
    Ok(())
}

#[test]
fn the_seed_deployment_without_its_variable_fails_at_its_position() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let err = seed_template()?
        .render(&seed_context(&[]), &RenderOptions::default())
        .expect_err("azure_registry_name is not set");
    let text = err.to_string();
    assert!(
        text.ends_with(
            "deployment-1.9.yaml:72:19: missing value: environment variable $azure_registry_name"
        ),
        "{text}"
    );
    // stencil's behaviour, on request: the unset variable expands to nothing.
    let lenient = seed_template()?.render(
        &seed_context(&[]),
        &RenderOptions {
            allow_missing: true,
        },
    )?;
    assert!(lenient.contains("image: .azurecr.io/sentient.ai/studio-go-runner/runner:0.9.27"));
    Ok(())
}

// ---- against the Kubernetes test server ----

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use serde_json::{Value, json};
use studio_acr::auth::RegistryCredential;
use studio_acr::client::RegistryClient;
use studio_runner_deploy::client::{DeployClient, DeployOptions, RELEASE_LABEL};
use studio_runner_deploy::secret::PullSecret;
use studio_runner_deploy::wait::WaitOptions;
use studio_runner_deploy::{Error, manifest};
use studio_tests::registry::{Registry, RegistryAuth};
use studio_tests::shared::{self, Mode};

fn registry_credential(registry: &Registry) -> RegistryCredential {
    match &registry.auth {
        RegistryAuth::Basic { username, password } => RegistryCredential::basic(username, password),
        _ => RegistryCredential::Anonymous,
    }
}

/// Pushes a one-layer image to the rig's registry.
async fn push_tiny_image(registry: &Registry, repo: &str, tag: &str) -> Result<()> {
    let client = RegistryClient::new(
        &registry.host,
        registry_credential(registry),
        studio_tests::registry::client_options(),
    )?;
    studio_tests::registry::push_tiny_image(&client, repo, tag)
        .await
        .map(drop)
}

/// A deploy client in a fresh namespace of the test server.
async fn deploy_client(namespace: &str) -> Result<DeployClient> {
    let kube = shared::kube().await?;
    let client = kube.client().await?;
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": namespace}}))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    Ok(DeployClient::new(
        client,
        DeployOptions {
            namespace: namespace.to_owned(),
            ..Default::default()
        },
    ))
}

fn deployment_yaml(name: &str, image: &str, extra_spec: &str, extra_container: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  progressDeadlineSeconds: 3\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n{extra_spec}      containers:\n      - name: runner\n        image: {image}\n{extra_container}"
    )
}

fn not_ready(result: Result<(), Error>) -> String {
    match result {
        Err(e @ Error::NotReady { .. }) => {
            let text = e.to_string();
            eprintln!("{text}");
            text
        }
        Err(other) => panic!("expected NotReady, got {other}"),
        Ok(()) => panic!("the release became ready"),
    }
}

#[tokio::test]
async fn apply_then_wait_is_ready_for_an_image_in_the_registry_with_a_pull_secret() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let registry = shared::registry(Mode::Basic).await?;
    push_tiny_image(registry, "runner/ok", "v1").await?;
    let deploy = deploy_client("ready").await?;
    let RegistryAuth::Basic { username, password } = &registry.auth else {
        unreachable!()
    };
    deploy
        .apply_pull_secret(
            &PullSecret::new(
                "studio-pull",
                &registry.host,
                username,
                password.clone().into(),
            ),
            None,
        )
        .await?;
    let image = format!("{}/runner/ok:v1", registry.host);
    let yaml = deployment_yaml(
        "ok",
        &image,
        "      imagePullSecrets:\n      - name: studio-pull\n",
        "",
    );
    let report = deploy.apply("ready", &manifest::parse(&yaml)?).await?;
    deploy
        .wait(
            &report,
            &WaitOptions {
                timeout: Duration::from_secs(60),
            },
        )
        .await?;
    let pods: Api<Pod> = Api::namespaced(deploy.kube().clone(), "ready");
    let pods = pods
        .list(&ListParams::default().labels("app=ok"))
        .await?
        .items;
    assert_eq!(pods.len(), 1);
    let status = pods[0].status.clone().context("status")?;
    assert_eq!(status.phase.as_deref(), Some("Running"));

    // The same image without the pull secret: the basic-auth registry refuses the kubelet.
    let yaml = deployment_yaml("no-secret", &image, "", "");
    let report = deploy
        .apply("ready-no-secret", &manifest::parse(&yaml)?)
        .await?;
    let text = not_ready(
        deploy
            .wait(
                &report,
                &WaitOptions {
                    timeout: Duration::from_secs(60),
                },
            )
            .await,
    );
    assert!(
        text.contains("ImagePullBackOff") && text.contains("not authorized"),
        "{text}"
    );
    Ok(())
}

#[tokio::test]
async fn a_job_runs_to_completion_and_the_wait_sees_it() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let registry = shared::registry(Mode::Anonymous).await?;
    push_tiny_image(registry, "runner/job", "v1").await?;
    let deploy = deploy_client("job").await?;
    let yaml = format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: migrate\n        image: {}/runner/job:v1\n",
        registry.host
    );
    let report = deploy.apply("job", &manifest::parse(&yaml)?).await?;
    deploy
        .wait(
            &report,
            &WaitOptions {
                timeout: Duration::from_secs(60),
            },
        )
        .await?;
    let pods: Api<Pod> = Api::namespaced(deploy.kube().clone(), "job");
    let pods = pods
        .list(&ListParams::default().labels("job-name=migrate"))
        .await?
        .items;
    assert_eq!(pods.len(), 1);
    assert_eq!(
        pods[0].status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded")
    );
    Ok(())
}

#[tokio::test]
async fn a_missing_image_fails_with_the_image_pull_back_off_reason() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let registry = shared::registry(Mode::Anonymous).await?;
    let deploy = deploy_client("missing").await?;
    let image = format!("{}/runner/missing:v1", registry.host);
    let report = deploy
        .apply(
            "missing",
            &manifest::parse(&deployment_yaml("missing", &image, "", ""))?,
        )
        .await?;
    let text = not_ready(
        deploy
            .wait(
                &report,
                &WaitOptions {
                    timeout: Duration::from_secs(60),
                },
            )
            .await,
    );
    assert!(text.contains("ProgressDeadlineExceeded"), "{text}");
    // The kubelet flips between ErrImagePull (right after each pull) and ImagePullBackOff.
    assert!(
        text.contains("event Warning Failed (kubelet): Error: ImagePullBackOff"),
        "{text}"
    );
    assert!(
        text.contains("waiting ImagePullBackOff: Back-off pulling image")
            || text.contains("waiting ErrImagePull: failed to resolve reference"),
        "{text}"
    );
    // The registry's own words come through.
    assert!(text.contains("MANIFEST_UNKNOWN"), "{text}");
    assert!(
        text.contains("event Warning Failed (kubelet): Failed to pull image"),
        "{text}"
    );
    Ok(())
}

#[tokio::test]
async fn a_gpu_request_above_capacity_fails_with_the_failed_scheduling_event() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let deploy = deploy_client("gpu").await?;
    let limits = "        resources:\n          limits:\n            nvidia.com/gpu: 2\n";
    let report = deploy
        .apply(
            "gpu",
            &manifest::parse(&deployment_yaml("gpu", "127.0.0.1:9/none:v1", "", limits))?,
        )
        .await?;
    let text = not_ready(
        deploy
            .wait(
                &report,
                &WaitOptions {
                    timeout: Duration::from_secs(60),
                },
            )
            .await,
    );
    assert!(
        text.contains("event Warning FailedScheduling (default-scheduler): 0/2 nodes are available: 2 Insufficient nvidia.com/gpu."),
        "{text}"
    );
    assert!(
        text.contains("condition PodScheduled=False Unschedulable"),
        "{text}"
    );
    Ok(())
}

#[tokio::test]
async fn reapplying_is_a_no_op_and_prune_removes_a_dropped_object() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let deploy = deploy_client("prune").await?;
    let both = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: keep\ndata:\n  a: \"1\"\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: drop\ndata:\n  b: \"2\"\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: runner\n";
    let first = deploy.apply("prune", &manifest::parse(both)?).await?;
    let again = deploy.apply("prune", &manifest::parse(both)?).await?;
    let versions = |r: &studio_runner_deploy::client::ApplyReport| -> Vec<(String, String)> {
        r.applied
            .iter()
            .map(|a| (a.object.name.clone(), a.resource_version.clone()))
            .collect()
    };
    assert_eq!(versions(&first), versions(&again));
    // The order is the apply order: the service account before the config maps.
    assert_eq!(first.applied[0].object.kind, "ServiceAccount");
    let maps: Api<ConfigMap> = Api::namespaced(deploy.kube().clone(), "prune");
    let keep = maps.get("keep").await?;
    assert_eq!(
        keep.metadata
            .labels
            .unwrap_or_default()
            .get(RELEASE_LABEL)
            .map(String::as_str),
        Some("prune")
    );

    let only_keep = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: keep\ndata:\n  a: \"1\"\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: runner\n";
    let report = deploy.apply("prune", &manifest::parse(only_keep)?).await?;
    let pruned = deploy.prune("prune", &report).await?;
    let names: Vec<String> = pruned.iter().map(|o| o.to_string()).collect();
    assert_eq!(names, vec!["ConfigMap prune/drop"]);
    assert!(maps.get_opt("drop").await?.is_none());
    assert!(maps.get_opt("keep").await?.is_some());

    let deleted = deploy.delete_release("prune").await?;
    assert_eq!(deleted.len(), 2, "{deleted:?}");
    assert!(maps.get_opt("keep").await?.is_none());
    Ok(())
}

fn kubectl_json(cmd: &mut std::process::Command) -> Result<Value> {
    let output = cmd.output()?;
    anyhow::ensure!(
        output.status.success(),
        "kubectl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(serde_json::from_slice(&output.stdout)?)
}

#[tokio::test]
async fn kubectl_and_our_client_agree_with_the_server() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let kube = shared::kube().await?;
    let deploy = deploy_client("agree").await?;
    let registry = shared::registry(Mode::Anonymous).await?;
    push_tiny_image(registry, "runner/agree", "v1").await?;
    let image = format!("{}/runner/agree:v1", registry.host);
    let yaml = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  level: debug\n---\n{}",
        deployment_yaml("agree", &image, "", "")
    );
    let dir = studio_tests::rig().subdir("agree")?;
    let file = dir.join("manifest.yaml");
    std::fs::write(&file, &yaml)?;

    // kubectl's server-side apply goes through discovery, the OpenAPI check and a PATCH.
    let output = kube
        .kubectl()?
        .args(["apply", "--server-side", "-n", "agree", "-f"])
        .arg(&file)
        .output()?;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "configmap/settings serverside-applied\ndeployment.apps/agree serverside-applied\n"
    );
    assert!(
        kube.requests().iter().any(|r| r.starts_with(
            "PATCH /api/v1/namespaces/agree/configmaps/settings?fieldManager=kubectl"
        ) && r.ends_with("application/apply-patch+yaml"))
    );

    // Our apply of the same values shares the fields; a changed value conflicts with kubectl.
    let report = deploy.apply("agree", &manifest::parse(&yaml)?).await?;
    let changed = yaml.replace("level: debug", "level: info");
    match deploy.apply("agree", &manifest::parse(&changed)?).await {
        Err(Error::ApplyConflict { object, message }) => {
            assert_eq!(object, "ConfigMap agree/settings");
            assert_eq!(
                message,
                "Apply failed with 1 conflict: conflict with \"kubectl\" using v1: .data.level"
            );
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let forcing = DeployClient::new(
        kube.client().await?,
        DeployOptions {
            namespace: "agree".into(),
            force_conflicts: true,
            ..Default::default()
        },
    );
    forcing.apply("agree", &manifest::parse(&changed)?).await?;
    deploy
        .wait(
            &report,
            &WaitOptions {
                timeout: Duration::from_secs(60),
            },
        )
        .await?;

    // `kubectl get -o json` shows exactly what our kube client reads.
    for (kind, name, ar) in [
        (
            "configmap",
            "settings",
            kube::discovery::ApiResource::erase::<ConfigMap>(&()),
        ),
        (
            "deployment",
            "agree",
            kube::discovery::ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&()),
        ),
    ] {
        let theirs = kubectl_json(kube.kubectl()?.args([
            "get",
            kind,
            name,
            "-n",
            "agree",
            "-o",
            "json",
            "--show-managed-fields",
        ]))?;
        let ours = Api::<DynamicObject>::namespaced_with(deploy.kube().clone(), "agree", &ar)
            .get(name)
            .await?;
        assert_eq!(theirs, serde_json::to_value(&ours)?, "{kind}");
        let managers: Vec<&str> = theirs["metadata"]["managedFields"]
            .as_array()
            .context("managedFields")?
            .iter()
            .filter_map(|m| m["manager"].as_str())
            .collect();
        assert!(managers.contains(&"studio"), "{managers:?}");
    }
    let settings = kubectl_json(kube.kubectl()?.args([
        "get",
        "configmap",
        "settings",
        "-n",
        "agree",
        "-o",
        "json",
    ]))?;
    assert_eq!(settings["data"]["level"], "info");

    // `kubectl create secret docker-registry --dry-run=client` writes what our pull secret is.
    let theirs = kubectl_json(kube.kubectl()?.args([
        "create",
        "secret",
        "docker-registry",
        "studioml-go-docker-key",
        "--docker-server=studioml.azurecr.io",
        "--docker-username=studioml",
        "--docker-password=s3cr3t/+=",
        "--dry-run=client",
        "-o",
        "json",
    ]))?;
    let ours = serde_json::to_value(
        PullSecret::new(
            "studioml-go-docker-key",
            "studioml.azurecr.io",
            "studioml",
            "s3cr3t/+=".to_owned().into(),
        )
        .to_secret(None),
    )?;
    assert_eq!(theirs["data"], ours["data"]);
    assert_eq!(theirs["type"], ours["type"]);
    // And once applied, kubectl reads the same secret back.
    let secret = PullSecret::acr_refresh_token(
        "acr-pull",
        "studioml.azurecr.io",
        "refresh-token".to_owned().into(),
    );
    deploy.apply_pull_secret(&secret, None).await?;
    let stored = kubectl_json(
        kube.kubectl()?
            .args(["get", "secret", "acr-pull", "-n", "agree", "-o", "json"]),
    )?;
    assert_eq!(
        stored["data"],
        serde_json::to_value(secret.to_secret(None))?["data"]
    );
    assert_eq!(stored["type"], "kubernetes.io/dockerconfigjson");
    Ok(())
}
