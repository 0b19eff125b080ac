//! The Entra ID stand-in: `oidc-provider` (npm, pinned in `tests/peers/entra`) with Entra's
//! route shapes, on https.
//!
//! Routes (for the configured tenant and the aliases `organizations` and `common`):
//! `/{tenant}/oauth2/v2.0/devicecode`, `/{tenant}/oauth2/v2.0/token`,
//! `/{tenant}/discovery/v2.0/keys`, `/{tenant}/v2.0/.well-known/openid-configuration`.
//! Clients: the Azure CLI public client (device flow), a confidential client with a secret,
//! and two that authenticate with a certificate (`private_key_jwt`, verified by the server; one
//! RSA, one ECDSA P-256).
//! Access tokens are RS256 JWTs for the ARM, Graph and ACR audiences.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use url::Url;

use crate::pki::{IssuedCert, ec_public_jwk, rsa_public_jwk, self_signed_signer};

/// Azure public cloud with its authority host at `authority` (the stand-in, a fault proxy in
/// front of it, or an Entra-shaped mock).
pub fn cloud_at(authority: &Url) -> studio_azure_auth::cloud::Cloud {
    let mut cloud = studio_azure_auth::cloud::Cloud::azure_public();
    cloud.authority_host = authority.clone();
    cloud
}
use crate::process::PeerProcess;

/// The Azure CLI's public client id, the device flow's default client.
pub const AZURE_CLI_CLIENT_ID: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";
/// A second public client whose device codes live [`SHORT_DEVICE_CODE_TTL_SECS`] seconds, to
/// see Entra's `expired_token` without waiting out the usual 10 minutes.
pub const SHORT_DEVICE_CODE_CLIENT_ID: &str = "e2a6c3d1-7b5f-4e8a-9c0d-1f2e3a4b5c6d";
/// How long the device codes of [`SHORT_DEVICE_CODE_CLIENT_ID`] live.
pub const SHORT_DEVICE_CODE_TTL_SECS: u64 = 2;
/// The tenant the stand-in serves.
pub const TENANT_ID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
/// The audiences the stand-in issues tokens for.
pub const AUDIENCES: [&str; 3] = [
    "https://management.azure.com",
    "https://graph.microsoft.com",
    "https://containerregistry.azure.net",
];

/// A running Entra stand-in.
pub struct EntraStandIn {
    /// The authority host, `https://127.0.0.1:<port>/`.
    pub authority_host: Url,
    /// The tenant id.
    pub tenant: String,
    /// The confidential client authenticating with a secret: (client id, secret).
    pub secret_client: (String, String),
    /// The confidential client authenticating with a certificate: (client id, certificate).
    pub certificate_client: (String, IssuedCert),
    /// A second certificate client whose key is ECDSA P-256 (ES256 assertions).
    pub ec_certificate_client: (String, IssuedCert),
    /// The process.
    pub process: Arc<PeerProcess>,
}

/// Where the stand-in's node project lives.
pub fn peer_dir() -> PathBuf {
    crate::workspace_root().join("tests/peers/entra")
}

impl EntraStandIn {
    /// Starts the stand-in on a free port.
    pub async fn start() -> Result<Self> {
        let node = crate::require_program("node")?;
        let project = peer_dir();
        if !project.join("node_modules/oidc-provider").is_dir() {
            bail!(
                "the Entra stand-in's packages are not installed in {}: run `cargo xtask test`, which runs `npm ci` there",
                project.display()
            );
        }
        let rig = crate::rig();
        let dir = rig.subdir("entra")?;
        let secret = crate::registry::random_hex(24);
        let secret_client = ("5f4d2c61-3b0e-4a8f-9d7c-2a1b3c4d5e6f".to_owned(), secret);
        let cert = self_signed_signer(&dir, "sp-certificate", true)?;
        let certificate_client = ("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d".to_owned(), cert);
        let ec_cert = self_signed_signer(&dir, "sp-certificate-ec", false)?;
        let ec_certificate_client = ("3c2b1a09-8f7e-4d6c-9b5a-4e3d2c1b0a9f".to_owned(), ec_cert);
        let config = serde_json::json!({
            "host": "127.0.0.1",
            "port": 0,
            "tlsCert": rig.server_cert.cert_path,
            "tlsKey": rig.server_cert.key_path,
            "tenant": TENANT_ID,
            "clients": [
                {"client_id": AZURE_CLI_CLIENT_ID, "type": "public"},
                {"client_id": SHORT_DEVICE_CODE_CLIENT_ID, "type": "public",
                 "deviceCodeTtl": SHORT_DEVICE_CODE_TTL_SECS},
                {"client_id": secret_client.0, "type": "secret", "client_secret": secret_client.1},
                {"client_id": certificate_client.0, "type": "certificate",
                 "jwks": {"keys": [rsa_public_jwk(&certificate_client.1)?]}},
                {"client_id": ec_certificate_client.0, "type": "certificate",
                 "jwks": {"keys": [ec_public_jwk(&ec_certificate_client.1)?]}},
            ],
            "audiences": AUDIENCES,
            "accessTokenTtl": 3600,
        });
        let config_path = dir.join("config.json");
        crate::write_private(&config_path, serde_json::to_vec_pretty(&config)?.as_slice())?;
        let process = PeerProcess::spawn(
            "entra stand-in (oidc-provider)",
            Command::new(node)
                .arg(project.join("server.mjs"))
                .arg(&config_path)
                .current_dir(&project),
            &dir.join("entra.log"),
            true,
        )?;
        let line = process.wait_for_line("READY ", Duration::from_secs(30))?;
        let base = line.trim_start_matches("READY ").trim();
        let authority_host = Url::parse(&format!("{}/", base.trim_end_matches('/')))
            .with_context(|| format!("bad READY line '{line}'"))?;
        Ok(Self {
            authority_host,
            tenant: TENANT_ID.to_owned(),
            secret_client,
            certificate_client,
            ec_certificate_client,
            process,
        })
    }

    /// The token issuer, `https://127.0.0.1:<port>/<tenant>/v2.0`.
    pub fn issuer(&self) -> String {
        format!("{}{}/v2.0", self.authority_host, self.tenant)
    }

    /// The JWKS endpoint.
    pub fn jwks_url(&self) -> Result<Url> {
        Ok(self
            .authority_host
            .join(&format!("{}/discovery/v2.0/keys", self.tenant))?)
    }

    /// The token endpoint.
    pub fn token_url(&self) -> Result<Url> {
        Ok(self
            .authority_host
            .join(&format!("{}/oauth2/v2.0/token", self.tenant))?)
    }

    /// An `azure_identity` client-secret credential for the secret client, over the rig's
    /// transport: a real bearer-token source for fakes that check `Authorization`.
    pub fn secret_credential(&self) -> Result<Arc<dyn azure_core::credentials::TokenCredential>> {
        let mut cloud = azure_core::cloud::CustomConfiguration::default();
        cloud.authority_host = self.authority_host.to_string();
        let options = azure_identity::ClientSecretCredentialOptions {
            client_options: azure_core::http::ClientOptions {
                transport: Some(studio_azure_auth::transport::azure_transport(
                    crate::rig().http()?,
                )),
                cloud: Some(Arc::new(cloud.into())),
                ..Default::default()
            },
        };
        Ok(azure_identity::ClientSecretCredential::new(
            &self.tenant,
            self.secret_client.0.clone(),
            azure_core::credentials::Secret::new(self.secret_client.1.clone()),
            Some(options),
        )?)
    }

    /// The device authorization endpoint.
    pub fn devicecode_url(&self) -> Result<Url> {
        Ok(self
            .authority_host
            .join(&format!("{}/oauth2/v2.0/devicecode", self.tenant))?)
    }
}
