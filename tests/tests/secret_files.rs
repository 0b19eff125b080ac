//! Issue 9, "Secrets": files holding secrets (token cache, docker config, kubeconfig, SSH key,
//! filled apimodel) are 0600 in 0700 directories, written atomically, and a failed write leaves
//! the old file intact; https everywhere, plain http only to loopback or when asked for by name.
//!
//! Each flow is the one the command line runs (device login approved in Chromium, `acr login`
//! against the token registry, `cluster get-credentials` against the ARM fake, `cluster
//! generate`). A failed write is made reliable (the tests run as root, so a read-only
//! directory would not stop them) by a directory standing where the atomic write puts its
//! temporary file ([`studio_azure_auth::store::temporary_path`]): the write fails before the
//! rename, and the file must be exactly what it was. No service-principal secret is written to
//! a file by any flow (`ad sp create-for-rbac` prints the password on stdout only).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use azure_core::credentials::TokenCredential;
use serde_json::{Value, json};
use studio_acr::auth::RegistryCredential;
use studio_acr::client::{RegistryClient, RegistryClientOptions};
use studio_acr::docker_config::DockerConfig;
use studio_azure_auth::cache::{TOKEN_CACHE_FILE, TokenCache};
use studio_azure_auth::cloud::Cloud;
use studio_azure_auth::credential::{
    CachedLoginCredential, CachedLoginOptions, DeviceCodeCredential, DeviceCodeOptions,
};
use studio_azure_auth::store::{ConfigDir, temporary_path};
use studio_cluster::apimodel::ApiModel;
use studio_cluster::generate::{self, GenerateOptions};
use studio_cluster::{Cluster, ClusterOptions};
use studio_tests::arm_fake::{ArmFake, example, response_body};
use studio_tests::browser::{approve_first_prompt, prompt_channel, sign_in_approved};
use studio_tests::entra::cloud_at;
use studio_tests::https::HttpsMock;
use studio_tests::shared::{self, Mode};
use studio_tests::vectors::vectors_dir;
use studio_tests::{LogsOnFailure, rig};
use wiremock::matchers::any;
use wiremock::{Mock, ResponseTemplate};

const ARM: &str = "https://management.azure.com/.default";
const GRAPH: &str = "https://graph.microsoft.com/.default";
const USER: &str = "ada@contoso.example";

fn mode(path: &Path) -> Result<u32> {
    Ok(std::fs::metadata(path)
        .with_context(|| path.display().to_string())?
        .permissions()
        .mode()
        & 0o777)
}

/// Every file below `dir` (recursively) is 0600 and every directory, `dir` included, 0700; no
/// temporary file of an atomic write is left behind. Returns the files seen.
fn assert_private_tree(dir: &Path) -> Result<Vec<PathBuf>> {
    ensure!(mode(dir)? == 0o700, "{} is {:o}", dir.display(), mode(dir)?);
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        ensure!(!name.contains(".tmp-"), "left behind: {}", path.display());
        if path.is_dir() {
            files.extend(assert_private_tree(&path)?);
        } else if name != ".lock" {
            ensure!(
                mode(&path)? == 0o600,
                "{} is {:o}",
                path.display(),
                mode(&path)?
            );
            files.push(path);
        }
    }
    Ok(files)
}

/// A directory where `path`'s atomic write puts its temporary file: the next write of `path`
/// fails before anything is renamed. Returns a guard that removes it.
struct Blocker(PathBuf);

impl Blocker {
    fn new(path: &Path) -> Result<Self> {
        let tmp = temporary_path(path);
        std::fs::create_dir(&tmp)?;
        // Non-empty, so not even a rename of a directory could replace it.
        std::fs::write(tmp.join("keep"), b"")?;
        Ok(Self(tmp))
    }
}

impl Drop for Blocker {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A device login approved in Chromium, kept in `dir`.
async fn device_login(dir: &Path) -> Result<()> {
    let entra = shared::entra().await?;
    let browser = shared::browser().await?;
    let (prompt, prompts) = prompt_channel();
    let credential = DeviceCodeCredential::new(DeviceCodeOptions {
        cloud: cloud_at(&entra.authority_host),
        transport: rig().transport_options(),
        cache: TokenCache::in_dir(ConfigDir::at(dir)?),
        prompt: Some(prompt),
        poll_interval_override: Some(Duration::from_millis(250)),
        ..Default::default()
    })?;
    sign_in_approved(
        credential.cancellation_token(),
        approve_first_prompt(browser, prompts, USER),
        credential.sign_in(&[ARM]),
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn the_token_cache_is_private_and_a_failed_write_leaves_it_intact() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let entra = shared::entra().await?;
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("studio");
    // A config directory that already exists, readable by everyone: tightened to 0700.
    std::fs::create_dir(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
    device_login(&dir).await?;
    let cache_file = dir.join(TOKEN_CACHE_FILE);
    let files = assert_private_tree(&dir)?;
    assert!(files.contains(&cache_file), "{files:?}");
    let before = std::fs::read(&cache_file)?;
    let cached: Value = serde_json::from_slice(&before)?;
    assert!(cached["accounts"][0]["refresh_token"].is_string());

    // A later run redeems the refresh token for Graph and must update the cache: the write
    // fails, the login on disk stays exactly as it was.
    let later = CachedLoginCredential::new(
        TokenCache::in_dir(ConfigDir::at(&dir)?),
        CachedLoginOptions {
            cloud: cloud_at(&entra.authority_host),
            transport: rig().transport_options(),
            ..Default::default()
        },
    )?;
    {
        let _blocked = Blocker::new(&cache_file)?;
        let err = later
            .get_token(&[GRAPH], None)
            .await
            .expect_err("a login that cannot be saved is an error");
        let text = format!("{err} {:?}", err);
        assert!(
            text.contains(TOKEN_CACHE_FILE),
            "the error names the file: {text}"
        );
        let refresh = cached["accounts"][0]["refresh_token"]
            .as_str()
            .unwrap_or("-");
        assert!(!text.contains(refresh), "the refresh token leaked: {text}");
        assert_eq!(std::fs::read(&cache_file)?, before, "the cache changed");
    }
    // Unblocked, the same update goes through, atomically and privately.
    later.get_token(&[GRAPH], None).await?;
    let after: Value = serde_json::from_slice(&std::fs::read(&cache_file)?)?;
    assert_ne!(after, cached, "the Graph token was cached");
    assert_private_tree(&dir)?;
    Ok(())
}

#[tokio::test]
async fn the_docker_config_from_acr_login_is_private_and_a_failed_write_leaves_it_intact()
-> Result<()> {
    let _logs = LogsOnFailure::new();
    let registry = shared::registry(Mode::Token).await?;
    let client = RegistryClient::new(
        &registry.host,
        registry.credential().await?,
        RegistryClientOptions {
            transport: rig().transport_options(),
            ..Default::default()
        },
    )?;
    let tmp = tempfile::tempdir()?;
    let docker = tmp.path().join("docker");
    let path = docker.join("config.json");
    // `acr login`: the Entra token exchanged for an ACR refresh token, stored as docker does.
    let refresh = client.acr_refresh_token().await?;
    DockerConfig::load(&path)?.store_acr_login(&registry.host, &refresh)?;
    assert_eq!(assert_private_tree(&docker)?, std::slice::from_ref(&path));
    let before = std::fs::read(&path)?;
    assert!(
        String::from_utf8_lossy(&before).contains(refresh.secret()),
        "the refresh token is in the file"
    );

    // The next login fails to write: config.json is what it was.
    let again = client.acr_refresh_token().await?;
    {
        let _blocked = Blocker::new(&path)?;
        let err = DockerConfig::load(&path)?
            .store_acr_login("other.azurecr.io", &again)
            .expect_err("the write is blocked");
        assert!(err.to_string().contains("config.json"), "{err}");
        assert!(!err.to_string().contains(again.secret()), "{err}");
        assert_eq!(std::fs::read(&path)?, before);
    }
    assert_private_tree(&docker)?;
    Ok(())
}

#[tokio::test]
async fn the_kubeconfig_from_get_credentials_is_private_and_a_failed_write_leaves_it_intact()
-> Result<()> {
    let _logs = LogsOnFailure::new();
    let subscription = "00000000-0000-0000-0000-000000000000";
    let fake = ArmFake::start().await?;
    fake.add_group(subscription, "studio", "eastus")?;
    // A managed cluster the fake holds: the ManagedClustersGet example, renamed.
    let mut cluster = response_body(
        &example("containerservice/2026-08-01/examples/ManagedClustersGet.json")?,
        200,
    )?;
    cluster["name"] = json!("runner");
    cluster["properties"]["fqdn"] = json!("runner-abcd1234.hcp.eastus.azmk8s.io");
    fake.state().clusters.insert("runner".into(), cluster);
    let client = Cluster::new(fake.client().await?, ClusterOptions::default());
    let tmp = tempfile::tempdir()?;
    let out = tmp.path().join("_output/runner");
    let path = client
        .write_kubeconfig(subscription, "studio", "runner", &out, "eastus")
        .await?;
    assert_eq!(path, out.join("kubeconfig/kubeconfig.eastus.json"));
    assert_eq!(assert_private_tree(&out)?, std::slice::from_ref(&path));
    let before = std::fs::read(&path)?;
    let kubeconfig: Value = serde_json::from_slice(&before)?;
    assert!(
        kubeconfig["users"][0]["user"]["client-key-data"].is_string(),
        "the admin key is in the file"
    );

    {
        let _blocked = Blocker::new(&path)?;
        let err = client
            .write_kubeconfig(subscription, "studio", "runner", &out, "eastus")
            .await
            .expect_err("the write is blocked");
        assert!(err.to_string().contains("kubeconfig.eastus.json"), "{err}");
        assert_eq!(std::fs::read(&path)?, before);
    }
    assert_private_tree(&out)?;
    Ok(())
}

#[tokio::test]
async fn the_ssh_key_and_filled_apimodel_from_generate_are_private_and_a_failed_write_leaves_them()
-> Result<()> {
    let _logs = LogsOnFailure::new();
    let tmp = tempfile::tempdir()?;
    let model =
        ApiModel::load(&vectors_dir()?.join("studio-go-runner/examples/azure/kubernetes.json"))?;
    let options = GenerateOptions {
        dns_prefix: Some("secret-files".into()),
        auto_suffix: false,
        location: Some("eastus".into()),
        output_root: tmp.path().join("_output"),
        clock: Some(Arc::new(|| UNIX_EPOCH + Duration::from_secs(0x6745_ab3c))),
        ..Default::default()
    };
    let generated = generate::generate(&model, &options)?;
    let out = generated.output_dir.clone();
    assert_eq!(mode(&tmp.path().join("_output"))?, 0o700);
    let files = assert_private_tree(&out)?;
    let key = out.join("azureuser_rsa");
    let apimodel = out.join("apimodel.json");
    assert!(
        files.contains(&key) && files.contains(&apimodel),
        "{files:?}"
    );
    assert!(std::fs::read_to_string(&key)?.contains("PRIVATE KEY"));

    // Generating again over the tree (--force, from the filled apimodel, so no second RSA key
    // is made) fails at its first file: nothing changes, the key pair and apimodel stay
    // together.
    let snapshot = |dir: &Path| -> Result<BTreeMap<PathBuf, Vec<u8>>> {
        let mut all = BTreeMap::new();
        for f in assert_private_tree(dir)? {
            all.insert(f.clone(), std::fs::read(&f)?);
        }
        Ok(all)
    };
    let before = snapshot(&out)?;
    {
        let _blocked = Blocker::new(&apimodel)?;
        let err = generate::generate(
            &ApiModel::load(&apimodel)?,
            &GenerateOptions {
                force: true,
                ..options.clone()
            },
        )
        .expect_err("the write is blocked");
        assert!(err.to_string().contains("apimodel.json"), "{err}");
        assert!(!err.to_string().contains("PRIVATE KEY"), "{err}");
    }
    assert_eq!(snapshot(&out)?, before);
    Ok(())
}

// ------------------------------------------------------------------ https everywhere

#[tokio::test]
async fn https_everywhere_a_registry_sending_tokens_to_plain_http_elsewhere_is_refused()
-> Result<()> {
    let _logs = LogsOnFailure::new();
    // A registry whose token service is plain http on another host: our client must not send
    // it the Entra token (or anything) there.
    let registry = HttpsMock::start().await?;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(401).insert_header(
            "WWW-Authenticate",
            r#"Bearer realm="http://login.registry.example/oauth2/token",service="registry.example""#,
        ))
        .mount(&registry.server)
        .await;
    let host = registry.url().authority().to_owned();
    let client = RegistryClient::new(
        &host,
        RegistryCredential::basic("studio", "s3cret-password"),
        RegistryClientOptions {
            transport: rig().transport_options(),
            ..Default::default()
        },
    )?;
    let err = client.ping().await.expect_err("refused");
    match &err {
        studio_acr::Error::InsecureEndpoint(url) => {
            assert!(url.starts_with("http://login.registry.example/"), "{url}")
        }
        other => bail!("expected InsecureEndpoint, got {other:?}"),
    }
    assert!(!err.to_string().contains("s3cret-password"), "{err}");
    // The registry itself was asked over https, once, without credentials.
    let received = registry.received().await;
    assert_eq!(received.len(), 1);
    assert!(received[0].headers.get("authorization").is_none());
    Ok(())
}

#[tokio::test]
async fn https_everywhere_registries_are_https_unless_named_insecure() -> Result<()> {
    let _logs = LogsOnFailure::new();
    // By default a registry host, loopback or not, is spoken to over https: a plain-http
    // registry on loopback is not reached as http.
    let plain = wiremock::MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&plain)
        .await;
    let host = plain.address().to_string();
    let client = RegistryClient::new(
        &host,
        RegistryCredential::basic("studio", "s3cret-password"),
        RegistryClientOptions {
            transport: rig().transport_options(),
            max_retries: 0,
            ..Default::default()
        },
    )?;
    let err = client.ping().await.expect_err("https to an http server");
    assert!(!err.to_string().contains("s3cret-password"), "{err}");
    // The plain server saw no request in clear text (a TLS hello is not a request).
    assert!(
        plain
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty()
    );

    // Named as insecure (the option is per client, so per host), loopback http works.
    let client = RegistryClient::new(
        &host,
        RegistryCredential::Anonymous,
        RegistryClientOptions {
            transport: rig().transport_options(),
            insecure_http: true,
            ..Default::default()
        },
    )?;
    client.ping().await?;
    assert_eq!(plain.received_requests().await.unwrap_or_default().len(), 1);
    Ok(())
}

#[tokio::test]
async fn https_everywhere_azure_endpoints_over_plain_http_are_refused() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let entra = shared::entra().await?;
    // ARM, Graph and the authority from the environment: http is refused wherever it comes
    // from, loopback included (azure_core would refuse to send a token anyway).
    for name in [
        "AZURE_RESOURCE_MANAGER_ENDPOINT",
        "MICROSOFT_GRAPH_ENDPOINT",
        "AZURE_AUTHORITY_HOST",
    ] {
        let err = Cloud::azure_public()
            .with_overrides(|n| (n == name).then(|| "http://management.example.com/".into()))
            .expect_err("http endpoint");
        assert!(err.to_string().contains("https"), "{name}: {err}");
    }
    let err = studio_azure_auth::arm::ArmClient::with_endpoint(
        url::Url::parse("http://127.0.0.1:9/")?,
        ARM,
        entra.secret_credential()?,
        Default::default(),
    )
    .expect_err("http ARM endpoint");
    assert!(
        matches!(err, studio_azure_auth::Error::InvalidEndpoint { .. }),
        "{err:?}"
    );
    Ok(())
}
