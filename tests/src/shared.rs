//! Peers shared by every test of one test binary: each starts on first use and lives until
//! the binary exits (then the stdin watch stops it).

use std::sync::Arc;

use anyhow::Result;
use tokio::sync::OnceCell;

use crate::acr_token::{AcrTokenService, aad_trust};
use crate::browser::Browser;
use crate::entra::{AUDIENCES, EntraStandIn};
use crate::kube_server::{KubeServer, NodeConfig};
use crate::registry::{Registry, RegistryAuth, TokenSetup, random_hex};

/// The registry modes of the rig.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// No authentication.
    Anonymous,
    /// htpasswd basic auth (user `studio`, a random password).
    Basic,
    /// Bearer tokens from the ACR-protocol token service, trusting the Entra stand-in.
    Token,
}

static ENTRA: OnceCell<EntraStandIn> = OnceCell::const_new();
static ANONYMOUS: OnceCell<Registry> = OnceCell::const_new();
static BASIC: OnceCell<Registry> = OnceCell::const_new();
static TOKEN: OnceCell<Registry> = OnceCell::const_new();
static BROWSER: OnceCell<Browser> = OnceCell::const_new();
static KUBE: OnceCell<KubeServer> = OnceCell::const_new();

/// The Kubernetes test server: two nodes with one `nvidia.com/gpu` each.
pub async fn kube() -> Result<&'static KubeServer> {
    KUBE.get_or_try_init(|| {
        let nodes = [
            NodeConfig {
                name: "gpu-node-0".into(),
                gpus: 1,
            },
            NodeConfig {
                name: "gpu-node-1".into(),
                gpus: 1,
            },
        ];
        async move { KubeServer::start("kube", &nodes).await }
    })
    .await
}

/// The Entra stand-in.
pub async fn entra() -> Result<&'static EntraStandIn> {
    ENTRA.get_or_try_init(EntraStandIn::start).await
}

/// The headless browser's driver.
pub async fn browser() -> Result<&'static Browser> {
    BROWSER.get_or_try_init(Browser::start).await
}

/// The registry in `mode`.
pub async fn registry(mode: Mode) -> Result<&'static Registry> {
    match mode {
        Mode::Anonymous => {
            ANONYMOUS
                .get_or_try_init(|| {
                    Registry::start("registry-anonymous", RegistryAuth::Anonymous, None)
                })
                .await
        }
        Mode::Basic => {
            BASIC
                .get_or_try_init(|| {
                    let auth = RegistryAuth::Basic {
                        username: "studio".to_owned(),
                        password: random_hex(16),
                    };
                    Registry::start("registry-basic", auth, None)
                })
                .await
        }
        Mode::Token => TOKEN.get_or_try_init(start_token_registry).await,
    }
}

async fn start_token_registry() -> Result<Registry> {
    Ok(own_token_registry("registry-token").await?.0)
}

/// A token-mode registry of its own, started as `name`, behind an ACR token service that
/// trusts the Entra stand-in's ACR and ARM tokens. Not shared: a test may change what its
/// token service issues (e.g. tokens that die mid-push) without disturbing other tests.
pub async fn own_token_registry(name: &str) -> Result<(Registry, Arc<AcrTokenService>)> {
    let entra = entra().await?;
    let setup = TokenSetup::new()?;
    let trust = aad_trust(
        &crate::rig().http()?,
        entra.jwks_url()?,
        &entra.issuer(),
        &[AUDIENCES[2], AUDIENCES[0]],
    )
    .await?;
    let service = Arc::new(AcrTokenService::start(&setup.service, Some(trust)).await?);
    let registry = Registry::start(name, RegistryAuth::Token(service.clone()), Some(setup)).await?;
    Ok((registry, service))
}
