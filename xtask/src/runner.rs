//! `runner …`: render the stencil template, server-side apply it as a release, wait; status and
//! delete (kubectl's habits over `studio-runner-deploy`).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use serde_json::json;
use studio_runner_deploy::secret::PullSecret;
use studio_runner_deploy::template::{Context, RenderOptions, Template, parse_values};
use studio_runner_deploy::wait::WaitOptions;
use studio_runner_deploy::{DeployClient, DeployOptions, manifest};

use crate::output::Output;

/// `runner`.
#[derive(clap::Args)]
pub struct RunnerArgs {
    #[command(subcommand)]
    command: RunnerCommand,
}

/// The template and its data.
#[derive(clap::Args)]
struct RenderFlags {
    /// The stencil template (Go text/template + sprig, as duat's stencil).
    #[arg(short, long)]
    template: PathBuf,
    /// `k=v,k=v` values laid over `.duat` and `.Env`.
    #[arg(long)]
    values: Option<String>,
}

impl RenderFlags {
    fn render(&self) -> Result<String> {
        let mut context = Context::discover(std::path::Path::new("."))?;
        if let Some(values) = &self.values {
            context.values = parse_values(values)?;
        }
        Ok(Template::from_file(&self.template)?.render(&context, &RenderOptions::default())?)
    }
}

/// Which cluster.
#[derive(clap::Args)]
struct KubeFlags {
    /// The kubeconfig (default: $KUBECONFIG, else ~/.kube/config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// The release name (labels every object; prune and delete use it).
    #[arg(short, long, default_value = "runner")]
    release: String,
}

impl KubeFlags {
    async fn client(&self) -> Result<DeployClient> {
        let path = default_kubeconfig(self.kubeconfig.clone());
        Ok(DeployClient::from_kubeconfig(&path, DeployOptions::default()).await?)
    }
}

/// `flag`, else `$KUBECONFIG` (its first file), else `~/.kube/config`, as kubectl picks.
pub fn default_kubeconfig(flag: Option<PathBuf>) -> PathBuf {
    if let Some(p) = flag {
        return p;
    }
    match std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()) {
        Some(v) => std::env::split_paths(&v)
            .next()
            .unwrap_or_else(|| PathBuf::from(&v)),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".kube/config"),
    }
}

#[derive(clap::Subcommand)]
enum RunnerCommand {
    /// Render the template to stdout (a missing value fails at file:line:column).
    #[command(
        after_help = "Example:\n  cargo xtask runner render --template examples/azure/deployment-1.9.yaml"
    )]
    Render {
        #[command(flatten)]
        render: RenderFlags,
    },
    /// Render, server-side apply as a release, prune what it dropped, wait for the rollout.
    #[command(
        after_help = "Example:\n  cargo xtask runner deploy --template examples/azure/deployment-1.9.yaml --kubeconfig _output/test-user-k8s-5a8b9c/kubeconfig/kubeconfig.eastus.json"
    )]
    Deploy {
        #[command(flatten)]
        render: RenderFlags,
        #[command(flatten)]
        kube: KubeFlags,
        /// How long to wait for the rollout, in seconds.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
        /// Create this `kubernetes.io/dockerconfigjson` secret from the docker config's login
        /// for `--pull-secret-server` (what `acr login` wrote) and add it to the
        /// `imagePullSecrets` of every pod template in the release.
        #[arg(long, requires = "pull_secret_server")]
        pull_secret: Option<String>,
        /// The registry the pull secret is for: a host, or an ACR name (its login server is
        /// looked up in the subscription).
        #[arg(long, requires = "pull_secret")]
        pull_secret_server: Option<String>,
    },
    /// The objects of a release.
    #[command(after_help = "Example:\n  cargo xtask runner status --release runner -o table")]
    Status {
        #[command(flatten)]
        kube: KubeFlags,
    },
    /// Delete every object of a release.
    #[command(after_help = "Example:\n  cargo xtask runner delete --release runner")]
    Delete {
        #[command(flatten)]
        kube: KubeFlags,
    },
}

/// The pull secret for `server` from the docker config (`acr login`'s refresh token, or a
/// user and password).
fn pull_secret_from_docker_config(name: &str, server: &str) -> Result<PullSecret> {
    use studio_acr::auth::RegistryCredential;
    use studio_acr::docker_config::DockerConfig;
    let config = DockerConfig::load(&DockerConfig::default_path()?)?;
    match config.credential_for(server)? {
        Some(RegistryCredential::RefreshToken(token)) => Ok(PullSecret::acr_refresh_token(
            name,
            server,
            token.secret().into(),
        )),
        Some(RegistryCredential::Basic { username, password }) => Ok(PullSecret::new(
            name,
            server,
            &username,
            password.secret().into(),
        )),
        _ => anyhow::bail!(
            "no login for {server} in the docker config: run `cargo xtask acr login --name {server}` first"
        ),
    }
}

/// Adds `name` to the `imagePullSecrets` of a pod or of a workload's pod template; `true` if
/// the object runs pods.
fn add_image_pull_secret(data: &mut serde_json::Value, kind: Option<&str>, name: &str) -> bool {
    let pointer = match kind.unwrap_or_default() {
        "Pod" => "/spec",
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => "/spec/template/spec",
        "CronJob" => "/spec/jobTemplate/spec/template/spec",
        _ => return false,
    };
    let Some(spec) = data
        .pointer_mut(pointer)
        .and_then(serde_json::Value::as_object_mut)
    else {
        return false;
    };
    let secrets = spec.entry("imagePullSecrets").or_insert_with(|| json!([]));
    if let Some(list) = secrets.as_array_mut()
        && !list.iter().any(|s| s["name"] == name)
    {
        list.push(json!({ "name": name }));
    }
    true
}

fn objects(refs: &[studio_runner_deploy::client::ObjectRef]) -> serde_json::Value {
    json!(
        refs.iter()
            .map(|o| json!({"apiVersion": o.api_version, "kind": o.kind, "namespace": o.namespace, "name": o.name}))
            .collect::<Vec<_>>()
    )
}

pub async fn runner(args: RunnerArgs, out: &Output) -> Result<()> {
    match args.command {
        RunnerCommand::Render { render } => {
            print!("{}", render.render()?);
            Ok(())
        }
        RunnerCommand::Deploy {
            render,
            kube,
            timeout,
            pull_secret,
            pull_secret_server,
        } => {
            let yaml = render.render()?;
            let mut objects_in = manifest::parse(&yaml)?;
            let deploy = kube.client().await?;
            if let (Some(name), Some(server)) = (pull_secret, pull_secret_server) {
                let azure = crate::azure::Azure::from_env()?;
                let server = crate::acr::resolve_host(&azure, None, &server).await;
                let secret = pull_secret_from_docker_config(&name, &server)?;
                // The secret goes where the pods are: each namespace named by a workload, and
                // the default one for those that name none.
                let mut namespaces: Vec<Option<String>> = Vec::new();
                for object in &mut objects_in {
                    let kind = object.types.as_ref().map(|t| t.kind.clone());
                    if add_image_pull_secret(&mut object.data, kind.as_deref(), &name)
                        && !namespaces.contains(&object.metadata.namespace)
                    {
                        namespaces.push(object.metadata.namespace.clone());
                    }
                }
                for namespace in &namespaces {
                    deploy
                        .apply_pull_secret(&secret, namespace.as_deref())
                        .await?;
                }
                eprintln!("applied pull secret {name} for {server}");
            }
            let report = deploy.apply(&kube.release, &objects_in).await?;
            for applied in &report.applied {
                eprintln!("applied {}", applied.object);
            }
            deploy.prune(&kube.release, &report).await?;
            let spinner = std::io::stderr().is_terminal().then(|| {
                let bar = indicatif::ProgressBar::new_spinner();
                bar.enable_steady_tick(Duration::from_millis(200));
                bar.set_message(format!("waiting for release {} to roll out", kube.release));
                bar
            });
            if spinner.is_none() {
                eprintln!("waiting for release {} to roll out", kube.release);
            }
            let waited = deploy
                .wait(
                    &report,
                    &WaitOptions {
                        timeout: Duration::from_secs(timeout),
                    },
                )
                .await;
            if let Some(bar) = spinner {
                bar.finish_and_clear();
            }
            waited?;
            let refs: Vec<_> = report.applied.iter().map(|a| a.object.clone()).collect();
            out.emit(objects(&refs))
        }
        RunnerCommand::Status { kube } => {
            let deploy = kube.client().await?;
            out.emit(objects(&deploy.release_objects(&kube.release).await?))
        }
        RunnerCommand::Delete { kube } => {
            let deploy = kube.client().await?;
            out.emit(objects(&deploy.delete_release(&kube.release).await?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::add_image_pull_secret;
    use serde_json::json;

    #[test]
    fn pull_secrets_go_into_pod_templates_once() {
        let mut deployment = json!({"spec": {"template": {"spec": {"containers": []}}}});
        assert!(add_image_pull_secret(
            &mut deployment,
            Some("Deployment"),
            "key"
        ));
        assert!(add_image_pull_secret(
            &mut deployment,
            Some("Deployment"),
            "key"
        ));
        assert_eq!(
            deployment["spec"]["template"]["spec"]["imagePullSecrets"],
            json!([{"name": "key"}])
        );
        let mut cron = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {
            "imagePullSecrets": [{"name": "other"}]}}}}}});
        assert!(add_image_pull_secret(&mut cron, Some("CronJob"), "key"));
        assert_eq!(
            cron.pointer("/spec/jobTemplate/spec/template/spec/imagePullSecrets"),
            Some(&json!([{"name": "other"}, {"name": "key"}]))
        );
        let mut pod = json!({"spec": {}});
        assert!(add_image_pull_secret(&mut pod, Some("Pod"), "key"));
        assert_eq!(pod["spec"]["imagePullSecrets"], json!([{"name": "key"}]));
        let mut config_map = json!({"data": {}});
        assert!(!add_image_pull_secret(
            &mut config_map,
            Some("ConfigMap"),
            "key"
        ));
        assert_eq!(config_map, json!({"data": {}}));
    }
}
