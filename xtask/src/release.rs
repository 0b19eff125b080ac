//! `cargo xtask release`: build the image `release.toml` describes, tag it with the version duat
//! would compute, write it to a local OCI layout under `_output/images/`, and optionally push it.
//!
//! The work is in the crates: the version and image name in
//! `studio_runner_deploy::template` (duat's rules), assembly in `studio_acr::assemble`, layouts
//! and pushes in `studio_acr::{layout, transfer}`. This file reads the release file and flags,
//! runs `cargo build --release` for the binaries, and prints.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::json;
use studio_acr::assemble::{ImageBuilder, Layer};
use studio_acr::auth::RegistryCredential;
use studio_acr::client::{RegistryClient, RegistryClientOptions};
use studio_acr::distribution::Repository;
use studio_acr::docker_config::DockerConfig;
use studio_acr::layout::OciLayout;
use studio_acr::reference::Reference;
use studio_acr::source::ImageSource;
use studio_acr::transfer::{Destination, Transfer};
use studio_runner_deploy::template::{Context as TemplateContext, Duat, RenderOptions, Template};
use studio_runner_deploy::wait::WaitOptions;
use studio_runner_deploy::{DeployClient, DeployOptions, manifest};

use crate::output::Output;

/// Arguments of `cargo xtask release`.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  cargo xtask release                       # image into _output/images/, prints the tag\n  cargo xtask release --dry-run             # every step, nothing done\n  cargo xtask release --registry studioml   # push to studioml.azurecr.io (signed-in credential)\n  cargo xtask release --registry 127.0.0.1:5000 --version 0.1.0-ci-1"
)]
pub struct ReleaseArgs {
    /// Print every step it would take; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// The release file (default: release.toml at the repository root).
    #[arg(long)]
    file: Option<PathBuf>,
    /// Push to this registry: an ACR name (becomes `<name>.azurecr.io`, signed-in credential) or
    /// a host or host:port (credentials from the docker config, else anonymous).
    #[arg(long)]
    registry: Option<String>,
    /// The tag to use instead of the computed `<version>-<branch>-<base62 time>` (reruns).
    #[arg(long)]
    version: Option<String>,
    /// Where layouts go (default: _output/images under the repository root).
    #[arg(long)]
    output_dir: Option<PathBuf>,
    /// Render the deployment template with the new version, apply it and wait.
    #[arg(long)]
    deploy: bool,
}

/// `release.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseFile {
    /// The image.
    #[serde(default)]
    pub image: ImageSpec,
    /// Its layers, bottom first.
    #[serde(default)]
    pub layers: Vec<LayerSpec>,
    /// The default registry (`--registry` wins).
    #[serde(default)]
    pub registry: Option<String>,
    /// The deployment.
    #[serde(default)]
    pub deploy: Option<DeploySpec>,
}

/// `[image]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSpec {
    /// The full image name; default `<owner>/<repo>/<module>` from the git remote.
    pub name: Option<String>,
    /// The module part of the default name; default: the repository directory's name.
    pub module: Option<String>,
    /// The base image: `oci:<layout dir>:<tag>` or a registry reference; default: scratch.
    pub base: Option<String>,
    /// `ENTRYPOINT`.
    pub entrypoint: Option<Vec<String>>,
    /// `CMD`.
    pub cmd: Option<Vec<String>>,
    /// `ENV` (`{version}` becomes the release version).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// `LABEL` (`{version}` becomes the release version).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `WORKDIR`.
    pub workdir: Option<String>,
    /// `USER`.
    pub user: Option<String>,
}

/// `[[layers]]`: files, directories and workspace binaries.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerSpec {
    /// Files or directories of the repository.
    #[serde(default)]
    pub files: Vec<FileSpec>,
    /// Binaries built with `cargo build --release -p <package> --bin <bin>`.
    #[serde(default)]
    pub binaries: Vec<BinarySpec>,
}

/// A file or directory (relative to the repository root) and where it goes in the image.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    pub source: PathBuf,
    pub target: String,
}

/// A workspace binary and where it goes in the image.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BinarySpec {
    pub package: String,
    /// Default: the package name.
    pub bin: Option<String>,
    pub target: String,
}

/// `[deploy]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploySpec {
    /// The stencil template, relative to the repository root.
    pub template: PathBuf,
}

fn substitute(text: &str, version: &str) -> String {
    text.replace("{version}", version)
}

fn unix_now() -> u64 {
    // SOURCE_DATE_EPOCH pins the time (reproducible builds), as duat's callers do in CI.
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        })
}

fn step(dry_run: bool, text: &str) {
    if dry_run {
        eprintln!("would: {text}");
    } else {
        eprintln!("{text}");
    }
}

pub async fn run(args: ReleaseArgs, out: &Output) -> Result<ExitCode> {
    let cwd = std::env::current_dir()?;
    let duat = Duat::discover(&cwd)?;
    let root = PathBuf::from(&duat.git_dir);
    let file_path = args
        .file
        .clone()
        .unwrap_or_else(|| root.join("release.toml"));
    let text = std::fs::read_to_string(&file_path).with_context(|| {
        format!(
            "reading {}: create it (see the repository's own release.toml) or pass --file",
            file_path.display()
        )
    })?;
    let spec: ReleaseFile =
        toml::from_str(&text).with_context(|| format!("{}", file_path.display()))?;
    let mut duat = duat;
    if let Some(module) = &spec.image.module {
        duat.module = studio_runner_deploy::template::scrub_module_name(module);
    }
    let version = args
        .version
        .clone()
        .unwrap_or_else(|| duat.release_version(unix_now()));
    let name = spec.image.name.clone().unwrap_or_else(|| duat.image_name());
    let images = args
        .output_dir
        .clone()
        .unwrap_or_else(|| root.join("_output").join("images"));
    let layout_dir = images.join(&name);
    let dry = args.dry_run;
    eprintln!("release {name}:{version} from {}", file_path.display());

    // 1. Binaries.
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let mut layers = Vec::new();
    for spec_layer in &spec.layers {
        let mut layer = Layer::new();
        for binary in &spec_layer.binaries {
            let bin = binary.bin.as_deref().unwrap_or(&binary.package);
            step(
                dry,
                &format!("cargo build --release -p {} --bin {bin}", binary.package),
            );
            if !dry {
                build(&root, &binary.package, bin)?;
            }
            layer = layer.add(target_dir.join("release").join(bin), &binary.target);
        }
        for file in &spec_layer.files {
            let source = root.join(&file.source);
            if !dry && !source.exists() {
                bail!(
                    "{}: layer source {} does not exist",
                    file_path.display(),
                    source.display()
                );
            }
            layer = layer.add(source, &file.target);
        }
        layers.push(layer);
    }

    // 2. Assemble into the layout (skipped when the tag is there).
    let mut builder = ImageBuilder::new();
    if let Some(base) = &spec.image.base {
        step(dry, &format!("base image {base}"));
        if !dry {
            let (source, reference) = base_source(base)?;
            builder = builder.base(source, &reference);
        }
    } else {
        step(dry, "base image: scratch");
    }
    for layer in layers {
        builder = builder.layer(layer);
    }
    if let Some(e) = &spec.image.entrypoint {
        builder = builder.entrypoint(e.clone());
    }
    if let Some(c) = &spec.image.cmd {
        builder = builder.cmd(c.clone());
    }
    for (k, v) in &spec.image.env {
        builder = builder.env(k, &substitute(v, &version));
    }
    for (k, v) in &spec.image.labels {
        builder = builder.label(k, &substitute(v, &version));
    }
    builder = builder.label("org.opencontainers.image.version", &version);
    if let Some(w) = &spec.image.workdir {
        builder = builder.workdir(w);
    }
    if let Some(u) = &spec.image.user {
        builder = builder.user(u);
    }
    let reference = format!("oci:{}:{version}", layout_dir.display());
    step(dry, &format!("assemble the image into {reference}"));
    let transfer = Transfer::default().with_progress(crate::progress::transfer());
    let mut digest = None;
    let mut skipped = false;
    if !dry {
        let layout = OciLayout::create(&layout_dir)?;
        if let Ok(existing) = layout.resolve(&version) {
            eprintln!("{reference} exists; skipping the build");
            digest = Some(existing.digest().to_string());
            skipped = true;
        } else {
            let manifest = builder
                .write_to_layout(&layout, &version, &transfer)
                .await?;
            digest = Some(manifest.digest().to_owned());
        }
    }

    // 3. Push.
    let registry = args.registry.clone().or(spec.registry.clone());
    let mut pushed = None;
    if let Some(registry) = &registry {
        let azure_name = !registry.contains(['.', ':']);
        let cloud = studio_azure_auth::cloud::Cloud::from_env(None)?;
        let host = if azure_name {
            cloud.registry_login_server(registry)
        } else {
            registry.clone()
        };
        let target = format!("{host}/{name}:{version}");
        step(dry, &format!("push {reference} to {target}"));
        if !dry {
            let credential = if azure_name {
                let azure = crate::azure::Azure::from_env()?;
                RegistryCredential::Entra {
                    credential: azure.credential()?,
                    tenant: None,
                    audience: Some(cloud.acr_audience.clone()),
                }
            } else {
                docker_credential(&host)?
            };
            let client = RegistryClient::new(&host, credential, RegistryClientOptions::default())?;
            let repo = Repository::new(client, &name);
            let layout = OciLayout::open(&layout_dir)?;
            let report = transfer
                .copy(&layout, &version, &Destination::Registry(repo), &[&version])
                .await?;
            eprintln!(
                "pushed {target}: {} blobs uploaded, {} already there",
                report.stats.blobs_uploaded, report.stats.blobs_skipped
            );
            pushed = Some(target);
        }
    }

    // 4. Deploy: render the template with the new version and image, apply, wait.
    let mut deployed = None;
    if args.deploy {
        let template = spec
            .deploy
            .as_ref()
            .map(|d| root.join(&d.template))
            .context("--deploy needs a [deploy] template = \"...\" in the release file")?;
        let image = pushed
            .clone()
            .or_else(|| dry.then(|| format!("<registry>/{name}:{version}")))
            .context("--deploy needs --registry (or `registry` in the release file): the cluster pulls the image from a registry")?;
        let kubeconfig = crate::runner::default_kubeconfig(None);
        step(
            dry,
            &format!(
                "render {} with version={version} image={image}, apply it as release {} to {}, wait for the rollout",
                template.display(),
                duat.module,
                kubeconfig.display()
            ),
        );
        if !dry {
            let mut context = TemplateContext::discover(&root)?;
            context.values.insert("version".to_owned(), version.clone());
            context.values.insert("image".to_owned(), image.clone());
            let yaml =
                Template::from_file(&template)?.render(&context, &RenderOptions::default())?;
            let client =
                DeployClient::from_kubeconfig(&kubeconfig, DeployOptions::default()).await?;
            let report = client.apply(&duat.module, &manifest::parse(&yaml)?).await?;
            client.prune(&duat.module, &report).await?;
            eprintln!("waiting for release {} to roll out", duat.module);
            client
                .wait(
                    &report,
                    &WaitOptions {
                        timeout: std::time::Duration::from_secs(600),
                    },
                )
                .await?;
            deployed = Some(
                report
                    .applied
                    .iter()
                    .map(|a| a.object.to_string())
                    .collect::<Vec<_>>(),
            );
        }
    }
    if dry {
        eprintln!("dry run: nothing was built or pushed");
        return Ok(ExitCode::SUCCESS);
    }
    out.emit(json!({
        "name": name,
        "tag": version,
        "digest": digest,
        "layout": layout_dir,
        "reference": reference,
        "skipped": skipped,
        "pushed": pushed,
        "deployed": deployed,
    }))?;
    Ok(ExitCode::SUCCESS)
}

fn build(root: &Path, package: &str, bin: &str) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .args(["build", "--release", "-p", package, "--bin", bin])
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("cargo build --release -p {package} --bin {bin} failed ({status})");
    }
    Ok(())
}

fn base_source(base: &str) -> Result<(Arc<dyn ImageSource>, String)> {
    if let Some(rest) = base.strip_prefix("oci:") {
        let (dir, tag) = match rest.rsplit_once(':') {
            Some((dir, tag)) if !tag.contains('/') => (dir, tag),
            _ => (rest, "latest"),
        };
        return Ok((Arc::new(OciLayout::open(dir)?), tag.to_owned()));
    }
    let reference: Reference = base.parse()?;
    let credential = docker_credential(reference.registry())?;
    let client = RegistryClient::new(
        reference.api_host(),
        credential,
        RegistryClientOptions::default(),
    )?;
    let repo = Repository::new(client, reference.repository());
    Ok((Arc::new(repo), reference.manifest_reference().to_owned()))
}

/// The docker config's credential for `host`, else anonymous.
fn docker_credential(host: &str) -> Result<RegistryCredential> {
    let path = DockerConfig::default_path()?;
    if !path.exists() {
        return Ok(RegistryCredential::Anonymous);
    }
    Ok(DockerConfig::load(&path)?
        .credential_for(host)?
        .unwrap_or(RegistryCredential::Anonymous))
}
