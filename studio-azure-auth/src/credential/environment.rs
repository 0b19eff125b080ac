//! The environment credential: a service principal described by the `AZURE_*` variables the
//! Azure SDKs and pipelines use.
//!
//! | variable | meaning |
//! |---|---|
//! | `AZURE_TENANT_ID` | the tenant (directory) id |
//! | `AZURE_CLIENT_ID` | the application (client) id |
//! | `AZURE_CLIENT_SECRET` | a client secret → [`ClientSecretCredential`] |
//! | `AZURE_CLIENT_CERTIFICATE_PATH` | one PEM file with the certificate and its unencrypted private key → [`ClientCertificateCredential`] |
//! | `AZURE_CLIENT_CERTIFICATE_PASSWORD` | not supported: when set, the credential says to decrypt the key into PEM |
//!
//! When both a secret and a certificate path are set, the secret wins, as in the Azure SDKs.
//! Empty values count as unset. The outcomes:
//!
//! - none of the four is set, or only the ids are (`AZURE_CLIENT_ID` with or without
//!   `AZURE_TENANT_ID` is also how workload and managed identities are configured):
//!   [`Error::NotConfigured`] listing what is missing, so a credential chain moves on;
//! - a secret or certificate path without both ids, or `AZURE_TENANT_ID` without
//!   `AZURE_CLIENT_ID`: [`Error::IncompleteConfiguration`] naming the missing variables;
//! - otherwise the credential, or the error building it (e.g. an unreadable certificate).
//!
//! ```
//! use studio_azure_auth::{cloud::Cloud, transport::TransportOptions, Error};
//! use studio_azure_auth::credential::environment::EnvironmentCredential;
//!
//! let transport = TransportOptions { ssl_cert_file: None, ..Default::default() };
//! let unset = EnvironmentCredential::from_lookup(&Cloud::azure_public(), &transport, |_| None);
//! assert!(matches!(unset, Err(Error::NotConfigured { .. })));
//!
//! let vars = [
//!     ("AZURE_TENANT_ID", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
//!     ("AZURE_CLIENT_ID", "5f4d2c61-3b0e-4a8f-9d7c-2a1b3c4d5e6f"),
//!     ("AZURE_CLIENT_SECRET", "not-a-real-secret"),
//! ];
//! let lookup = |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string());
//! let credential = EnvironmentCredential::from_lookup(&Cloud::azure_public(), &transport, lookup)?;
//! assert_eq!(credential.source(), "AZURE_CLIENT_SECRET");
//! # Ok::<(), Error>(())
//! ```

use std::fmt;

use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};

use super::service_principal::{
    ClientCertificate, ClientCertificateCredential, ClientSecretCredential, ENCRYPTED_UNSUPPORTED,
};
use crate::Error;
use crate::cloud::Cloud;
use crate::transport::TransportOptions;

/// The tenant id variable.
pub const AZURE_TENANT_ID: &str = "AZURE_TENANT_ID";
/// The client id variable.
pub const AZURE_CLIENT_ID: &str = "AZURE_CLIENT_ID";
/// The client secret variable.
pub const AZURE_CLIENT_SECRET: &str = "AZURE_CLIENT_SECRET";
/// The variable naming a PEM file with the certificate and its private key.
pub const AZURE_CLIENT_CERTIFICATE_PATH: &str = "AZURE_CLIENT_CERTIFICATE_PATH";
/// The certificate password variable (only recognised, to say it is unsupported).
pub const AZURE_CLIENT_CERTIFICATE_PASSWORD: &str = "AZURE_CLIENT_CERTIFICATE_PASSWORD";

const NAME: &str = "EnvironmentCredential";

/// A service principal configured by environment variables (see the module documentation).
pub struct EnvironmentCredential {
    inner: Inner,
}

enum Inner {
    Secret(ClientSecretCredential),
    Certificate(ClientCertificateCredential),
}

impl EnvironmentCredential {
    /// Reads the process environment.
    pub fn from_env(cloud: &Cloud, transport: &TransportOptions) -> Result<Self, Error> {
        Self::from_lookup(cloud, transport, |name| std::env::var(name).ok())
    }

    /// Reads the variables through `lookup` (name → value), so callers and tests can supply
    /// them without touching the process environment.
    pub fn from_lookup(
        cloud: &Cloud,
        transport: &TransportOptions,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Error> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let tenant = get(AZURE_TENANT_ID).map(|v| v.trim().to_owned());
        let client = get(AZURE_CLIENT_ID).map(|v| v.trim().to_owned());
        let secret = get(AZURE_CLIENT_SECRET);
        let certificate = get(AZURE_CLIENT_CERTIFICATE_PATH).map(|v| v.trim().to_owned());
        let present: Vec<String> = [
            (AZURE_TENANT_ID, tenant.is_some()),
            (AZURE_CLIENT_ID, client.is_some()),
            (AZURE_CLIENT_SECRET, secret.is_some()),
            (AZURE_CLIENT_CERTIFICATE_PATH, certificate.is_some()),
        ]
        .into_iter()
        .filter(|(_, set)| *set)
        .map(|(name, _)| name.to_owned())
        .collect();
        let mut missing: Vec<String> = [
            (AZURE_TENANT_ID, tenant.is_none()),
            (AZURE_CLIENT_ID, client.is_none()),
        ]
        .into_iter()
        .filter(|(_, absent)| *absent)
        .map(|(name, _)| name.to_owned())
        .collect();

        let has_credential = secret.is_some() || certificate.is_some();
        let partial = if has_credential {
            !missing.is_empty()
        } else {
            tenant.is_some() && client.is_none()
        };
        if partial {
            return Err(Error::IncompleteConfiguration {
                what: NAME.to_owned(),
                missing,
                present,
            });
        }
        let (Some(tenant), Some(client)) = (tenant, client) else {
            missing.push(format!(
                "{AZURE_CLIENT_SECRET} or {AZURE_CLIENT_CERTIFICATE_PATH}"
            ));
            return Err(Error::NotConfigured {
                what: NAME.to_owned(),
                missing,
            });
        };
        let inner = match (secret, certificate) {
            (Some(secret), certificate) => {
                if certificate.is_some() {
                    tracing::debug!(
                        "{AZURE_CLIENT_SECRET} and {AZURE_CLIENT_CERTIFICATE_PATH} are both set; using the secret"
                    );
                }
                Inner::Secret(ClientSecretCredential::new(
                    cloud,
                    &tenant,
                    &client,
                    Secret::new(secret),
                    transport,
                )?)
            }
            (None, Some(path)) => {
                if get(AZURE_CLIENT_CERTIFICATE_PASSWORD).is_some() {
                    return Err(Error::ClientCertificate {
                        origin: path,
                        reason: format!(
                            "{AZURE_CLIENT_CERTIFICATE_PASSWORD} is set, but {ENCRYPTED_UNSUPPORTED}; \
                             for a PKCS#12 file run `openssl pkcs12 -in cert.pfx -out cert.pem -nodes`, \
                             then point {AZURE_CLIENT_CERTIFICATE_PATH} at the PEM file and unset \
                             {AZURE_CLIENT_CERTIFICATE_PASSWORD}"
                        ),
                    });
                }
                let certificate = ClientCertificate::from_pem_file(&path)?;
                Inner::Certificate(ClientCertificateCredential::new(
                    cloud,
                    &tenant,
                    &client,
                    certificate,
                    transport,
                )?)
            }
            (None, None) => {
                return Err(Error::NotConfigured {
                    what: NAME.to_owned(),
                    missing: vec![format!(
                        "{AZURE_CLIENT_SECRET} or {AZURE_CLIENT_CERTIFICATE_PATH}"
                    )],
                });
            }
        };
        tracing::debug!(tenant_id = %tenant, client_id = %client, "environment credential configured");
        Ok(Self { inner })
    }

    /// The variable that supplied the credential: `AZURE_CLIENT_SECRET` or
    /// `AZURE_CLIENT_CERTIFICATE_PATH`.
    pub fn source(&self) -> &'static str {
        match self.inner {
            Inner::Secret(_) => AZURE_CLIENT_SECRET,
            Inner::Certificate(_) => AZURE_CLIENT_CERTIFICATE_PATH,
        }
    }

    /// The tenant id from `AZURE_TENANT_ID`.
    pub fn tenant_id(&self) -> &str {
        match &self.inner {
            Inner::Secret(c) => c.tenant_id(),
            Inner::Certificate(c) => c.tenant_id(),
        }
    }

    /// The client id from `AZURE_CLIENT_ID`.
    pub fn client_id(&self) -> &str {
        match &self.inner {
            Inner::Secret(c) => c.client_id(),
            Inner::Certificate(c) => c.client_id(),
        }
    }
}

impl fmt::Debug for EnvironmentCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct(NAME);
        s.field("source", &self.source());
        match &self.inner {
            Inner::Secret(c) => s.field("credential", c),
            Inner::Certificate(c) => s.field("credential", c),
        };
        s.finish()
    }
}

#[async_trait::async_trait]
impl TokenCredential for EnvironmentCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        match &self.inner {
            Inner::Secret(c) => c.get_token(scopes, options).await,
            Inner::Certificate(c) => c.get_token(scopes, options).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transport() -> TransportOptions {
        TransportOptions {
            ssl_cert_file: None,
            ..Default::default()
        }
    }

    fn from(vars: &[(&str, &str)]) -> Result<EnvironmentCredential, Error> {
        EnvironmentCredential::from_lookup(&Cloud::azure_public(), &transport(), |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    type Var = (&'static str, &'static str);

    const T: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    const C: &str = "5f4d2c61-3b0e-4a8f-9d7c-2a1b3c4d5e6f";

    #[test]
    fn ids_alone_are_not_configured_so_a_chain_moves_on() {
        for vars in [
            &[][..],
            &[(AZURE_CLIENT_ID, C)][..],
            &[(AZURE_TENANT_ID, T), (AZURE_CLIENT_ID, C)][..],
            &[(AZURE_TENANT_ID, " "), (AZURE_CLIENT_SECRET, "")][..],
        ] {
            let err = from(vars).unwrap_err();
            let Error::NotConfigured { missing, .. } = &err else {
                panic!("{vars:?}: {err:?}")
            };
            assert_eq!(
                missing.last().map(String::as_str),
                Some("AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH")
            );
        }
    }

    #[test]
    fn partial_configuration_names_what_is_missing() {
        let cases: [(&[Var], &[&str]); 4] = [
            (&[(AZURE_TENANT_ID, T)], &[AZURE_CLIENT_ID]),
            (
                &[(AZURE_CLIENT_SECRET, "s")],
                &[AZURE_TENANT_ID, AZURE_CLIENT_ID],
            ),
            (
                &[(AZURE_CLIENT_ID, C), (AZURE_CLIENT_SECRET, "s")],
                &[AZURE_TENANT_ID],
            ),
            (
                &[
                    (AZURE_TENANT_ID, T),
                    (AZURE_CLIENT_CERTIFICATE_PATH, "/x.pem"),
                ],
                &[AZURE_CLIENT_ID],
            ),
        ];
        for (vars, expected) in cases {
            let err = from(vars).unwrap_err();
            let Error::IncompleteConfiguration { missing, .. } = &err else {
                panic!("{vars:?}: {err:?}")
            };
            assert_eq!(missing, expected);
            assert!(!err.to_string().contains("\"s\""));
        }
    }

    #[test]
    fn the_secret_wins_over_a_certificate_and_stays_out_of_debug() {
        let credential = from(&[
            (AZURE_TENANT_ID, T),
            (AZURE_CLIENT_ID, C),
            (AZURE_CLIENT_SECRET, "do-not-print-me"),
            (AZURE_CLIENT_CERTIFICATE_PATH, "/nonexistent.pem"),
        ])
        .unwrap();
        assert_eq!(credential.source(), AZURE_CLIENT_SECRET);
        assert_eq!((credential.tenant_id(), credential.client_id()), (T, C));
        let debug = format!("{credential:?}");
        assert!(!debug.contains("do-not-print-me"), "{debug}");
    }

    #[test]
    fn a_certificate_password_is_refused_clearly_and_not_echoed() {
        let err = from(&[
            (AZURE_TENANT_ID, T),
            (AZURE_CLIENT_ID, C),
            (AZURE_CLIENT_CERTIFICATE_PATH, "/etc/sp.pfx"),
            (AZURE_CLIENT_CERTIFICATE_PASSWORD, "hunter2-password"),
        ])
        .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::ClientCertificate { .. }), "{err:?}");
        assert!(text.contains("/etc/sp.pfx"), "{text}");
        assert!(
            text.contains("AZURE_CLIENT_CERTIFICATE_PASSWORD is set"),
            "{text}"
        );
        assert!(
            text.contains("encrypted private keys are not supported"),
            "{text}"
        );
        assert!(!text.contains("hunter2") && !format!("{err:?}").contains("hunter2"));
    }
}
