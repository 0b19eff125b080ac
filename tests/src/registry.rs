//! Debian's `docker-registry` (the CNCF distribution server) on loopback, over https.
//!
//! Three modes: anonymous, htpasswd basic auth, and token auth trusting the rig's
//! [`AcrTokenService`], so the registry itself enforces
//! repository scopes as ACR does.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use url::Url;

use crate::acr_token::AcrTokenService;
use crate::process::{PeerProcess, free_port};

/// How the registry authenticates clients.
#[derive(Clone)]
pub enum RegistryAuth {
    /// No authentication.
    Anonymous,
    /// htpasswd basic auth with one user.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
    /// Bearer tokens from the ACR-protocol token service.
    Token(Arc<AcrTokenService>),
}

/// A running registry.
pub struct Registry {
    /// `https://127.0.0.1:<port>/`
    pub url: Url,
    /// `127.0.0.1:<port>`, the registry host as image references name it.
    pub host: String,
    /// How it authenticates.
    pub auth: RegistryAuth,
    /// Its filesystem storage root.
    pub storage: std::path::PathBuf,
    /// The process.
    pub process: Arc<PeerProcess>,
}

/// How a token-mode registry is set up before its token service exists: the registry's port
/// is its `service` name, which the token service signs into every token.
pub struct TokenSetup {
    /// The registry's port.
    pub port: u16,
    /// The service name (`127.0.0.1:<port>`).
    pub service: String,
}

impl TokenSetup {
    /// Reserves a port for a token-mode registry.
    pub fn new() -> Result<Self> {
        let port = free_port()?;
        Ok(Self {
            port,
            service: format!("127.0.0.1:{port}"),
        })
    }
}

impl Registry {
    /// Starts a registry in `auth` mode. `name` names its directory and log. A token-mode
    /// registry takes the `TokenSetup` its token service was made for.
    pub async fn start(name: &str, auth: RegistryAuth, token: Option<TokenSetup>) -> Result<Self> {
        let binary = crate::require_program("docker-registry")?;
        let rig = crate::rig();
        let dir = rig.subdir(name)?;
        let storage = dir.join("storage");
        std::fs::create_dir_all(&storage)?;
        let port = match (&auth, &token) {
            (RegistryAuth::Token(_), Some(setup)) => setup.port,
            (RegistryAuth::Token(_), None) => bail!("a token-mode registry needs its TokenSetup"),
            _ => free_port()?,
        };
        let auth_section = match &auth {
            RegistryAuth::Anonymous => String::new(),
            RegistryAuth::Basic { username, password } => {
                let hash = bcrypt::hash(password, 5)?;
                let htpasswd = dir.join("htpasswd");
                crate::write_private(&htpasswd, format!("{username}:{hash}\n").as_bytes())?;
                format!(
                    "auth:\n  htpasswd:\n    realm: studio-test\n    path: {}\n",
                    htpasswd.display()
                )
            }
            RegistryAuth::Token(service) => format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {svc}\n    issuer: {iss}\n    rootcertbundle: {bundle}\n",
                realm = service.realm(),
                svc = service.service(),
                iss = yaml_quote(service.issuer()),
                bundle = service.signer_cert_path().display(),
            ),
        };
        let config = format!(
            "version: 0.1\n\
             log:\n  level: info\n  formatter: text\n\
             storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: {secret}\n  tls:\n    certificate: {cert}\n    key: {key}\n\
             {auth_section}",
            storage = storage.display(),
            secret = random_hex(16),
            cert = rig.server_cert.cert_path.display(),
            key = rig.server_cert.key_path.display(),
        );
        let config_path = dir.join("config.yml");
        std::fs::write(&config_path, config)?;
        let process = PeerProcess::spawn(
            &format!("docker-registry ({name})"),
            Command::new(binary).arg("serve").arg(&config_path),
            &dir.join("registry.log"),
            false,
        )?;
        let url = Url::parse(&format!("https://127.0.0.1:{port}/"))?;
        let registry = Self {
            url,
            host: format!("127.0.0.1:{port}"),
            auth,
            storage,
            process,
        };
        registry.wait_ready(Duration::from_secs(20)).await?;
        Ok(registry)
    }

    async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let http = crate::rig().http()?;
        let url = self.url.join("v2/")?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(resp) = http.get(url.clone()).send().await {
                let code = resp.status().as_u16();
                if code == 200 || code == 401 {
                    return Ok(());
                }
            }
            self.process.check_running()?;
            if Instant::now() > deadline {
                bail!(
                    "{} did not answer on {url} within {timeout:?}",
                    self.process.name()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// What the registry has logged so far (its `registry.log`).
    pub fn log(&self) -> Result<String> {
        let dir = self.storage.parent().context("the registry's directory")?;
        Ok(std::fs::read_to_string(dir.join("registry.log"))?)
    }

    /// The URL of `path` on the registry, e.g. `v2/demo/app/blobs/uploads/`.
    pub fn endpoint(&self, path: &str) -> Result<Url> {
        self.url.join(path).context("joining registry URL")
    }
}

fn yaml_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `n` random bytes as hex.
pub fn random_hex(n: usize) -> String {
    use std::fmt::Write;
    let mut bytes = vec![0u8; n];
    let _ = getrandom_fill(&mut bytes);
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn getrandom_fill(buf: &mut [u8]) -> Result<()> {
    rustls::crypto::aws_lc_rs::default_provider()
        .secure_random
        .fill(buf)
        .map_err(|_| anyhow::anyhow!("no randomness"))
}

/// Client options for studio-acr that trust the run's CA and back off briefly.
pub fn client_options() -> studio_acr::client::RegistryClientOptions {
    studio_acr::client::RegistryClientOptions {
        transport: crate::rig().transport_options(),
        initial_backoff: Duration::from_millis(20),
        ..Default::default()
    }
}

impl Registry {
    /// The credential a suite uses for this registry: none, its htpasswd user, or the Entra
    /// stand-in's service principal exchanged for ACR tokens.
    pub async fn credential(&self) -> Result<studio_acr::auth::RegistryCredential> {
        use studio_acr::auth::RegistryCredential;
        Ok(match &self.auth {
            RegistryAuth::Anonymous => RegistryCredential::Anonymous,
            RegistryAuth::Basic { username, password } => {
                RegistryCredential::basic(username, password)
            }
            RegistryAuth::Token(_) => {
                let entra = crate::shared::entra().await?;
                RegistryCredential::Entra {
                    credential: entra.secret_credential()?,
                    tenant: Some(entra.tenant.clone()),
                    audience: None,
                }
            }
        })
    }
}

/// Pushes a one-layer image with raw protocol calls through `client` (independent of the
/// transfer engine, which has its own suite); returns the manifest digest.
pub async fn push_tiny_image(
    client: &studio_acr::client::RegistryClient,
    repo: &str,
    tag: &str,
) -> Result<String> {
    use sha2::Digest;
    use studio_acr::auth::Scope;
    use studio_acr::client::check;
    let scopes = [Scope::repository(repo, &["pull", "push"])];
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}
    }))?;
    let layer = format!("layer of {repo}:{tag}").into_bytes();
    let mut descriptors = Vec::new();
    for (blob, media) in [
        (&config, "application/vnd.oci.image.config.v1+json"),
        (&layer, "application/vnd.oci.image.layer.v1.tar"),
    ] {
        let digest = format!("sha256:{:x}", sha2::Sha256::digest(blob));
        let start = client.url(&format!("v2/{repo}/blobs/uploads/"))?;
        let response = check(
            client.send(&scopes, |h| h.post(start.clone())).await?,
            "start upload",
        )
        .await?;
        let location = response
            .headers()
            .get("location")
            .context("no Location on the upload")?
            .to_str()?
            .to_owned();
        let mut put = client.url(&location)?;
        put.query_pairs_mut().append_pair("digest", &digest);
        let body = blob.clone();
        check(
            client
                .send(&scopes, |h| {
                    h.put(put.clone())
                        .header("content-type", "application/octet-stream")
                        .body(body.clone())
                })
                .await?,
            "finish upload",
        )
        .await?;
        descriptors
            .push(serde_json::json!({"mediaType": media, "digest": digest, "size": blob.len()}));
    }
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": descriptors[0], "layers": [descriptors[1]],
    }))?;
    let url = client.url(&format!("v2/{repo}/manifests/{tag}"))?;
    check(
        client
            .send(&scopes, |h| {
                h.put(url.clone())
                    .header("content-type", "application/vnd.oci.image.manifest.v1+json")
                    .body(manifest.clone())
            })
            .await?,
        "put manifest",
    )
    .await?;
    Ok(format!("sha256:{:x}", sha2::Sha256::digest(&manifest)))
}
