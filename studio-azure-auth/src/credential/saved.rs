//! A service principal login kept in the config directory, as `az login --service-principal`
//! keeps one: later commands sign in as it without `AZURE_CLIENT_*` in their environment.
//!
//! The file is `service_principal.json` in the [`ConfigDir`], written atomically with mode
//! 0600. It holds the tenant, the application id and either the client secret (as az's
//! `service_principal_entries.json` does) or the path of the PEM certificate (the key stays in
//! that file). The secret never reaches a log, an error or a `Debug` string.
//!
//! ```no_run
//! use azure_core::credentials::Secret;
//! use studio_azure_auth::cloud::Cloud;
//! use studio_azure_auth::credential::saved::{SavedServicePrincipal, SavedSecret};
//! use studio_azure_auth::store::ConfigDir;
//! use studio_azure_auth::transport::TransportOptions;
//!
//! # fn run() -> Result<(), studio_azure_auth::Error> {
//! let dir = ConfigDir::from_env()?;
//! let login = SavedServicePrincipal::new(
//!     "72f988bf-86f1-41af-91ab-2d7cd011db47",
//!     "631a96bc-a705-4eda-9f99-fdaf9f54f6a2",
//!     SavedSecret::ClientSecret(Secret::new("from the pipeline's secret store")),
//! );
//! login.save(&dir)?;
//! if let Some(again) = SavedServicePrincipal::load(&dir)? {
//!     let credential = again.credential(&Cloud::azure_public(), &TransportOptions::default())?;
//!     # drop(credential);
//! }
//! SavedServicePrincipal::remove(&dir)?; // `logout`
//! # Ok(()) }
//! ```

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use azure_core::credentials::{Secret, TokenCredential};
use serde::{Deserialize, Serialize};

use super::service_principal::{
    ClientCertificate, ClientCertificateCredential, ClientSecretCredential,
};
use crate::Error;
use crate::cloud::Cloud;
use crate::redact::Redacted;
use crate::store::ConfigDir;
use crate::transport::TransportOptions;

/// The file name inside the config directory.
pub const SERVICE_PRINCIPAL_FILE: &str = "service_principal.json";

/// How the saved service principal proves itself.
#[derive(Clone)]
pub enum SavedSecret {
    /// A client secret.
    ClientSecret(Secret),
    /// A PEM file with the certificate and its private key.
    CertificateFile(PathBuf),
}

impl fmt::Debug for SavedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ClientSecret(_) => f.debug_tuple("ClientSecret").field(&Redacted).finish(),
            Self::CertificateFile(path) => f.debug_tuple("CertificateFile").field(path).finish(),
        }
    }
}

/// A service principal login; see the module docs.
#[derive(Clone, Debug)]
pub struct SavedServicePrincipal {
    /// The tenant id.
    pub tenant_id: String,
    /// The application (client) id.
    pub client_id: String,
    /// The secret or certificate.
    pub secret: SavedSecret,
}

/// The file's shape (az's field names).
#[derive(Serialize, Deserialize)]
struct Entry {
    tenant: String,
    client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_certificate: Option<PathBuf>,
}

impl SavedServicePrincipal {
    /// A login for `client_id` in `tenant_id`.
    pub fn new(tenant_id: &str, client_id: &str, secret: SavedSecret) -> Self {
        Self {
            tenant_id: tenant_id.to_owned(),
            client_id: client_id.to_owned(),
            secret,
        }
    }

    /// Writes the login to `dir` (mode 0600), replacing any earlier one.
    pub fn save(&self, dir: &ConfigDir) -> Result<(), Error> {
        let (client_secret, client_certificate) = match &self.secret {
            SavedSecret::ClientSecret(secret) => (Some(secret.secret().to_owned()), None),
            SavedSecret::CertificateFile(path) => {
                // A relative path would change meaning with the working directory.
                let absolute = std::path::absolute(path).map_err(|e| Error::Store {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                (None, Some(absolute))
            }
        };
        let entry = Entry {
            tenant: self.tenant_id.clone(),
            client_id: self.client_id.clone(),
            client_secret,
            client_certificate,
        };
        let bytes = serde_json::to_vec_pretty(&entry).map_err(|e| Error::Decode {
            what: "the service principal login".to_owned(),
            reason: e.to_string(),
        })?;
        let _guard = dir.lock()?;
        dir.write_private(SERVICE_PRINCIPAL_FILE, &bytes)?;
        tracing::info!(client_id = %self.client_id, tenant = %self.tenant_id, "service principal login saved");
        Ok(())
    }

    /// The login saved in `dir`, if any.
    pub fn load(dir: &ConfigDir) -> Result<Option<Self>, Error> {
        let Some(bytes) = dir.read(SERVICE_PRINCIPAL_FILE)? else {
            return Ok(None);
        };
        let entry: Entry = serde_json::from_slice(&bytes).map_err(|e| Error::Store {
            path: dir.file(SERVICE_PRINCIPAL_FILE),
            // serde_json's message names a position and the expected shape, not the content.
            reason: format!("not a service principal login: {e}"),
        })?;
        let secret = match (entry.client_secret, entry.client_certificate) {
            (Some(secret), _) => SavedSecret::ClientSecret(Secret::new(secret)),
            (None, Some(path)) => SavedSecret::CertificateFile(path),
            (None, None) => {
                return Err(Error::Store {
                    path: dir.file(SERVICE_PRINCIPAL_FILE),
                    reason: "neither client_secret nor client_certificate".to_owned(),
                });
            }
        };
        Ok(Some(Self {
            tenant_id: entry.tenant,
            client_id: entry.client_id,
            secret,
        }))
    }

    /// Forgets the login saved in `dir`; `true` if there was one.
    pub fn remove(dir: &ConfigDir) -> Result<bool, Error> {
        let _guard = dir.lock()?;
        let existed = dir.file(SERVICE_PRINCIPAL_FILE).exists();
        dir.remove(SERVICE_PRINCIPAL_FILE)?;
        Ok(existed)
    }

    /// The credential that signs in as this service principal.
    pub fn credential(
        &self,
        cloud: &Cloud,
        transport: &TransportOptions,
    ) -> Result<Arc<dyn TokenCredential>, Error> {
        Ok(match &self.secret {
            SavedSecret::ClientSecret(secret) => Arc::new(ClientSecretCredential::new(
                cloud,
                &self.tenant_id,
                &self.client_id,
                secret.clone(),
                transport,
            )?),
            SavedSecret::CertificateFile(path) => Arc::new(ClientCertificateCredential::new(
                cloud,
                &self.tenant_id,
                &self.client_id,
                ClientCertificate::from_pem_file(path)?,
                transport,
            )?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_saved_login_round_trips_privately_and_never_prints_its_secret() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::at(tmp.path().join("studio")).unwrap();
        assert!(SavedServicePrincipal::load(&dir).unwrap().is_none());
        let login = SavedServicePrincipal::new(
            "tenant",
            "client",
            SavedSecret::ClientSecret(Secret::new("hunter2-secret")),
        );
        let leaks = crate::redact::debug_leaks(&login, &["hunter2-secret"]);
        assert!(leaks.is_empty(), "{leaks:?}");
        assert!(
            format!("{login:?}").contains(r#"client_id: "client", secret: ClientSecret(***)"#),
            "{login:?}"
        );
        login.save(&dir).unwrap();
        let path = dir.file(SERVICE_PRINCIPAL_FILE);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let loaded = SavedServicePrincipal::load(&dir).unwrap().unwrap();
        assert_eq!(loaded.tenant_id, "tenant");
        assert_eq!(loaded.client_id, "client");
        match &loaded.secret {
            SavedSecret::ClientSecret(s) => assert_eq!(s.secret(), "hunter2-secret"),
            other => panic!("{other:?}"),
        }
        assert!(SavedServicePrincipal::remove(&dir).unwrap());
        assert!(!SavedServicePrincipal::remove(&dir).unwrap());
        assert!(SavedServicePrincipal::load(&dir).unwrap().is_none());
    }

    #[test]
    fn a_certificate_login_keeps_an_absolute_path_and_a_broken_file_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::at(tmp.path().join("studio")).unwrap();
        SavedServicePrincipal::new(
            "t",
            "c",
            SavedSecret::CertificateFile("relative/sp.pem".into()),
        )
        .save(&dir)
        .unwrap();
        match SavedServicePrincipal::load(&dir).unwrap().unwrap().secret {
            SavedSecret::CertificateFile(p) => {
                assert!(p.is_absolute() && p.ends_with("relative/sp.pem"));
            }
            other => panic!("{other:?}"),
        }
        dir.write_private(
            SERVICE_PRINCIPAL_FILE,
            br#"{"tenant": "t", "client_id": "c"}"#,
        )
        .unwrap();
        let e = SavedServicePrincipal::load(&dir).unwrap_err().to_string();
        assert!(e.contains("neither client_secret"), "{e}");
    }
}
