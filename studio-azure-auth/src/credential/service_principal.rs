//! Service-principal credentials: an application signs in as itself (the OAuth client
//! credentials grant) with a client secret or with a certificate.
//!
//! - [`ClientSecretCredential`] wraps `azure_identity`'s credential of the same name.
//! - [`ClientCertificateCredential`] signs a client assertion (a JWT, RS256 for RSA keys, ES256
//!   for EC P-256 keys, with the certificate's SHA-256 thumbprint in `x5t#S256`) with a
//!   [`ClientCertificate`] loaded from PEM, and hands it to `azure_identity`'s
//!   `ClientAssertionCredential`. No OpenSSL: keys are read with `rustls-pki-types` and signed
//!   by `jsonwebtoken` on aws-lc-rs. PKCS#12 (`.pfx`) files and encrypted keys are refused with
//!   a message saying how to convert them.
//!
//! Both send their requests to the [`Cloud`]'s authority host through the toolkit's transport
//! ([`transport::http_client`]), cache tokens until shortly before they expire, and report
//! failures as [`Error::TokenRequest`] carrying Entra's error code and description, never the
//! secret or the key. Neither `Debug` nor any error message shows a secret or key material.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use azure_core::credentials::TokenCredential;
//! use studio_azure_auth::cloud::Cloud;
//! use studio_azure_auth::credential::service_principal::{
//!     ClientCertificate, ClientCertificateCredential,
//! };
//! use studio_azure_auth::transport::TransportOptions;
//!
//! let certificate = ClientCertificate::from_pem_file("/etc/studio/sp.pem")?;
//! let credential = ClientCertificateCredential::new(
//!     &Cloud::from_env(None)?,
//!     "72f988bf-86f1-41af-91ab-2d7cd011db47",
//!     "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
//!     certificate,
//!     &TransportOptions::default(),
//! )?;
//! let token = credential.get_token(&["https://management.azure.com/.default"], None).await?;
//! # drop(token);
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_core::error::ErrorKind;
use azure_core::http::{ClientMethodOptions, ClientOptions};
use azure_identity::{
    ClientAssertion, ClientAssertionCredential, ClientAssertionCredentialOptions,
    ClientSecretCredentialOptions,
};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use rustls_pki_types::pem::{PemObject, SectionKind};
use sha2::Digest;
use url::Url;
use zeroize::Zeroizing;

use crate::Error;
use crate::cloud::Cloud;
use crate::redact::Redacted;
use crate::transport::{self, TransportOptions};

/// How long a client assertion is valid (Entra ID accepts up to ten minutes).
pub const ASSERTION_LIFETIME_SECS: u64 = 600;

const SECRET_CREDENTIAL: &str = "ClientSecretCredential";
const CERTIFICATE_CREDENTIAL: &str = "ClientCertificateCredential";

/// What to tell a user holding a PKCS#12 file.
pub(crate) const PKCS12_UNSUPPORTED: &str = "PKCS#12 (.pfx/.p12) files are not supported: \
     convert it to one unencrypted PEM file holding the certificate and its private key \
     (`openssl pkcs12 -in cert.pfx -out cert.pem -nodes`) and keep that file private";
/// What to tell a user holding an encrypted private key.
pub(crate) const ENCRYPTED_UNSUPPORTED: &str = "encrypted private keys are not supported: \
     decrypt the key into a PEM file kept private (`openssl pkey -in key.pem -out plain.pem`)";

// ---------------------------------------------------------------- client secret

/// A service principal that signs in with a client secret.
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// use azure_core::credentials::{Secret, TokenCredential};
/// use studio_azure_auth::{cloud::Cloud, transport::TransportOptions};
/// use studio_azure_auth::credential::service_principal::ClientSecretCredential;
///
/// let credential = ClientSecretCredential::new(
///     &Cloud::azure_public(),
///     "72f988bf-86f1-41af-91ab-2d7cd011db47",
///     "5f4d2c61-3b0e-4a8f-9d7c-2a1b3c4d5e6f",
///     Secret::new(std::env::var("SP_SECRET")?),
///     &TransportOptions::default(),
/// )?;
/// let token = credential.get_token(&["https://management.azure.com/.default"], None).await?;
/// # drop(token);
/// # Ok(())
/// # }
/// ```
pub struct ClientSecretCredential {
    inner: Arc<azure_identity::ClientSecretCredential>,
    tenant_id: String,
    client_id: String,
    authority_host: Url,
}

impl ClientSecretCredential {
    /// A credential for application `client_id` in `tenant_id` of `cloud`, sending its
    /// requests through a client built from `transport`.
    pub fn new(
        cloud: &Cloud,
        tenant_id: &str,
        client_id: &str,
        secret: Secret,
        transport: &TransportOptions,
    ) -> Result<Self, Error> {
        validate_ids(SECRET_CREDENTIAL, tenant_id, client_id)?;
        if secret.secret().is_empty() {
            return Err(Error::InvalidCredential {
                what: SECRET_CREDENTIAL.to_owned(),
                reason: "the client secret is empty".to_owned(),
            });
        }
        let options = ClientSecretCredentialOptions {
            client_options: client_options(cloud, transport)?,
        };
        let inner = azure_identity::ClientSecretCredential::new(
            tenant_id,
            client_id.to_owned(),
            secret,
            Some(options),
        )
        .map_err(|e| Error::InvalidCredential {
            what: SECRET_CREDENTIAL.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            inner,
            tenant_id: tenant_id.to_owned(),
            client_id: client_id.to_owned(),
            authority_host: cloud.authority_host.clone(),
        })
    }

    /// The tenant the application signs in to.
    pub fn tenant_id(&self) -> &str {
        &self.tenant_id
    }

    /// The application (client) id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }
}

impl fmt::Debug for ClientSecretCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(SECRET_CREDENTIAL)
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("authority_host", &self.authority_host.as_str())
            .field("secret", &Redacted)
            .finish()
    }
}

#[async_trait::async_trait]
impl TokenCredential for ClientSecretCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        self.inner
            .get_token(scopes, options)
            .await
            .map_err(|e| failed(SECRET_CREDENTIAL, &self.client_id, e))
    }
}

// ---------------------------------------------------------------- client certificate

/// A certificate and its private key, loaded from PEM, that sign client assertions.
///
/// The key may be PKCS#8 (`PRIVATE KEY`: RSA or EC P-256), PKCS#1 (`RSA PRIVATE KEY`) or SEC1
/// (`EC PRIVATE KEY`, P-256). The certificate file may hold a chain: the certificate whose
/// public key matches the private key is the one registered with Entra ID, and a key that
/// matches none of them is refused here rather than by Entra. The key lives in memory that
/// is zeroed when it is dropped, and `Debug` shows only the thumbprint.
///
/// ```no_run
/// use studio_azure_auth::credential::service_principal::ClientCertificate;
///
/// // One file holding both (as AZURE_CLIENT_CERTIFICATE_PATH usually names) ...
/// let both = ClientCertificate::from_pem_file("/etc/studio/sp.pem")?;
/// // ... or two.
/// let pair = ClientCertificate::from_pem_files("/etc/studio/sp-cert.pem", "/etc/studio/sp-key.pem")?;
/// assert_eq!(both.thumbprint_sha256(), pair.thumbprint_sha256());
/// # Ok::<(), studio_azure_auth::Error>(())
/// ```
pub struct ClientCertificate {
    key: EncodingKey,
    algorithm: Algorithm,
    certificate_der: Vec<u8>,
    thumbprint_sha256: String,
    origin: String,
}

impl ClientCertificate {
    /// Loads one PEM file holding both the certificate and its private key.
    pub fn from_pem_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let origin = path.display().to_string();
        let pem = read_pem_file(path)?;
        Self::load(&pem, &origin, &pem, &origin)
    }

    /// Loads the certificate (or chain) from one PEM file and the private key from another.
    pub fn from_pem_files(
        certificate: impl AsRef<Path>,
        private_key: impl AsRef<Path>,
    ) -> Result<Self, Error> {
        let (cert_path, key_path) = (certificate.as_ref(), private_key.as_ref());
        let cert = read_pem_file(cert_path)?;
        let key = read_pem_file(key_path)?;
        Self::load(
            &cert,
            &cert_path.display().to_string(),
            &key,
            &key_path.display().to_string(),
        )
    }

    /// Loads a certificate and private key held in memory (the same buffer may hold both).
    pub fn from_pem(certificate_pem: &[u8], private_key_pem: &[u8]) -> Result<Self, Error> {
        Self::load(
            certificate_pem,
            "(certificate PEM in memory)",
            private_key_pem,
            "(private key PEM in memory)",
        )
    }

    /// The certificate's SHA-256 thumbprint, base64url without padding, as sent in the
    /// assertion's `x5t#S256` header.
    pub fn thumbprint_sha256(&self) -> &str {
        &self.thumbprint_sha256
    }

    /// The certificate, DER.
    pub fn certificate_der(&self) -> &[u8] {
        &self.certificate_der
    }

    /// The JWS algorithm of the assertions: `RS256` or `ES256`.
    pub fn algorithm(&self) -> &'static str {
        match self.algorithm {
            Algorithm::ES256 => "ES256",
            _ => "RS256",
        }
    }

    fn load(
        cert_pem: &[u8],
        cert_origin: &str,
        key_pem: &[u8],
        key_origin: &str,
    ) -> Result<Self, Error> {
        let cert_error = |reason: String| Error::ClientCertificate {
            origin: cert_origin.to_owned(),
            reason,
        };
        let key_error = |reason: String| Error::ClientCertificate {
            origin: key_origin.to_owned(),
            reason,
        };
        check_pem(key_pem).map_err(key_error)?;
        if !std::ptr::eq(cert_pem, key_pem) {
            check_pem(cert_pem).map_err(cert_error)?;
        }
        let certificates: Vec<_> = pem_sections(cert_pem)
            .map_err(cert_error)?
            .into_iter()
            .filter(|(kind, _)| *kind == SectionKind::Certificate)
            .map(|(_, der)| der)
            .collect();
        let mut keys = pem_sections(key_pem)
            .map_err(key_error)?
            .into_iter()
            .filter(|(kind, _)| {
                matches!(
                    kind,
                    SectionKind::PrivateKey
                        | SectionKind::RsaPrivateKey
                        | SectionKind::EcPrivateKey
                )
            });
        let Some((kind, key_der)) = keys.next() else {
            return Err(key_error(
                "no private key found (expected a PEM 'PRIVATE KEY', 'RSA PRIVATE KEY' or \
                 'EC PRIVATE KEY' section)"
                    .to_owned(),
            ));
        };
        if keys.next().is_some() {
            return Err(key_error(
                "more than one private key found; keep exactly one".to_owned(),
            ));
        }
        if certificates.is_empty() {
            return Err(cert_error(
                "no certificate found (expected a PEM 'CERTIFICATE' section)".to_owned(),
            ));
        }
        let (key, algorithm) = signing_key(kind, &key_der).map_err(key_error)?;
        // Sign once now: a broken key fails here, with the file's name, not at the first token.
        let probe = b"studio client certificate check";
        let signature = jsonwebtoken::crypto::sign(probe, &key, algorithm).map_err(|e| {
            key_error(format!(
                "the private key cannot sign ({e}); RSA keys need at least 2048 bits"
            ))
        })?;
        let certificate_der = certificates
            .iter()
            .find(|der| {
                public_key_of(der).is_some_and(|public| {
                    let decoding = match algorithm {
                        Algorithm::ES256 => DecodingKey::from_ec_der(public),
                        _ => DecodingKey::from_rsa_der(public),
                    };
                    jsonwebtoken::crypto::verify(&signature, probe, &decoding, algorithm)
                        .unwrap_or(false)
                })
            })
            .ok_or_else(|| {
                key_error(format!(
                    "the private key does not belong to the certificate{} in {cert_origin}",
                    if certificates.len() > 1 { "s" } else { "" }
                ))
            })?
            .to_vec();
        let thumbprint_sha256 = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(&certificate_der));
        let origin = if cert_origin == key_origin {
            cert_origin.to_owned()
        } else {
            format!("{cert_origin} (key {key_origin})")
        };
        tracing::debug!(%origin, thumbprint = %thumbprint_sha256, ?algorithm, "loaded client certificate");
        Ok(Self {
            key,
            algorithm,
            certificate_der,
            thumbprint_sha256,
            origin,
        })
    }

    /// A signed client assertion for `client_id` at the token endpoint `audience`, issued at
    /// `now` (seconds since the epoch) with the unique id `jti`.
    fn assertion(
        &self,
        client_id: &str,
        audience: &str,
        now: u64,
        jti: &str,
    ) -> Result<String, Error> {
        #[derive(serde::Serialize)]
        struct Claims<'a> {
            aud: &'a str,
            iss: &'a str,
            sub: &'a str,
            jti: &'a str,
            nbf: u64,
            iat: u64,
            exp: u64,
        }
        let mut header = Header::new(self.algorithm);
        header.x5t_s256 = Some(self.thumbprint_sha256.clone());
        let claims = Claims {
            aud: audience,
            iss: client_id,
            sub: client_id,
            jti,
            nbf: now,
            iat: now,
            exp: now + ASSERTION_LIFETIME_SECS,
        };
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|e| Error::ClientCertificate {
            origin: self.origin.clone(),
            reason: format!("cannot sign the client assertion: {e}"),
        })
    }
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("origin", &self.origin)
            .field("algorithm", &self.algorithm())
            .field("thumbprint_sha256", &self.thumbprint_sha256)
            .field("private_key", &Redacted)
            .finish()
    }
}

/// Supplies a fresh signed assertion for every token request.
struct CertificateAssertion {
    certificate: Arc<ClientCertificate>,
    client_id: String,
    audience: String,
}

impl fmt::Debug for CertificateAssertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAssertion")
            .field("certificate", &self.certificate)
            .field("client_id", &self.client_id)
            .field("audience", &self.audience)
            .finish()
    }
}

#[async_trait::async_trait]
impl ClientAssertion for CertificateAssertion {
    async fn secret(&self, _: Option<ClientMethodOptions<'_>>) -> azure_core::Result<String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let jti = azure_core::Uuid::new_v4().to_string();
        self.certificate
            .assertion(&self.client_id, &self.audience, now, &jti)
            .map_err(into_azure)
    }
}

/// A service principal that signs in with a certificate (a signed client assertion).
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// use azure_core::credentials::TokenCredential;
/// use studio_azure_auth::{cloud::Cloud, transport::TransportOptions};
/// use studio_azure_auth::credential::service_principal::{
///     ClientCertificate, ClientCertificateCredential,
/// };
///
/// let credential = ClientCertificateCredential::new(
///     &Cloud::azure_public(),
///     "72f988bf-86f1-41af-91ab-2d7cd011db47",
///     "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
///     ClientCertificate::from_pem_files("sp-cert.pem", "sp-key.pem")?,
///     &TransportOptions::default(),
/// )?;
/// let token = credential.get_token(&["https://graph.microsoft.com/.default"], None).await?;
/// # drop(token);
/// # Ok(())
/// # }
/// ```
pub struct ClientCertificateCredential {
    inner: Arc<ClientAssertionCredential<CertificateAssertion>>,
    certificate: Arc<ClientCertificate>,
    tenant_id: String,
    client_id: String,
    token_endpoint: Url,
}

impl ClientCertificateCredential {
    /// A credential for application `client_id` in `tenant_id` of `cloud`, signing its
    /// assertions with `certificate` and sending requests through a client built from
    /// `transport`.
    pub fn new(
        cloud: &Cloud,
        tenant_id: &str,
        client_id: &str,
        certificate: ClientCertificate,
        transport: &TransportOptions,
    ) -> Result<Self, Error> {
        validate_ids(CERTIFICATE_CREDENTIAL, tenant_id, client_id)?;
        let token_endpoint = token_endpoint(cloud, tenant_id)?;
        let certificate = Arc::new(certificate);
        let assertion = CertificateAssertion {
            certificate: Arc::clone(&certificate),
            client_id: client_id.to_owned(),
            audience: token_endpoint.to_string(),
        };
        let options = ClientAssertionCredentialOptions {
            client_options: client_options(cloud, transport)?,
        };
        let inner = ClientAssertionCredential::new(
            tenant_id.to_owned(),
            client_id.to_owned(),
            assertion,
            Some(options),
        )
        .map_err(|e| Error::InvalidCredential {
            what: CERTIFICATE_CREDENTIAL.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            inner,
            certificate,
            tenant_id: tenant_id.to_owned(),
            client_id: client_id.to_owned(),
            token_endpoint,
        })
    }

    /// The tenant the application signs in to.
    pub fn tenant_id(&self) -> &str {
        &self.tenant_id
    }

    /// The application (client) id.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The certificate that signs the assertions.
    pub fn certificate(&self) -> &ClientCertificate {
        &self.certificate
    }
}

impl fmt::Debug for ClientCertificateCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(CERTIFICATE_CREDENTIAL)
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("token_endpoint", &self.token_endpoint.as_str())
            .field("certificate", &self.certificate)
            .finish()
    }
}

#[async_trait::async_trait]
impl TokenCredential for ClientCertificateCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        self.inner
            .get_token(scopes, options)
            .await
            .map_err(|e| failed(CERTIFICATE_CREDENTIAL, &self.client_id, e))
    }
}

// ---------------------------------------------------------------- shared plumbing

/// `azure_core` client options for `cloud`'s authority host over the toolkit's transport.
fn client_options(cloud: &Cloud, transport: &TransportOptions) -> Result<ClientOptions, Error> {
    let mut custom = azure_core::cloud::CustomConfiguration::default();
    custom.authority_host = cloud.authority_host.to_string();
    Ok(ClientOptions {
        transport: Some(transport::azure_transport(transport::http_client(
            transport,
        )?)),
        cloud: Some(Arc::new(custom.into())),
        ..Default::default()
    })
}

/// The token endpoint, exactly as `azure_identity` builds it (the assertion's audience must
/// be the URL the request goes to).
fn token_endpoint(cloud: &Cloud, tenant_id: &str) -> Result<Url, Error> {
    cloud
        .authority_host
        .join(&format!("/{tenant_id}/oauth2/v2.0/token"))
        .map_err(|e| Error::InvalidCredential {
            what: CERTIFICATE_CREDENTIAL.to_owned(),
            reason: format!("no token endpoint for tenant '{tenant_id}': {e}"),
        })
}

fn validate_ids(what: &str, tenant_id: &str, client_id: &str) -> Result<(), Error> {
    let invalid = |reason: String| Error::InvalidCredential {
        what: what.to_owned(),
        reason,
    };
    if tenant_id.is_empty()
        || !tenant_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
    {
        return Err(invalid(format!(
            "'{tenant_id}' is not a tenant id (a GUID or a domain such as contoso.onmicrosoft.com)"
        )));
    }
    if client_id.trim().is_empty() {
        return Err(invalid("the client id is empty".to_owned()));
    }
    Ok(())
}

/// Our error as the `azure_core` error a `TokenCredential` returns (it stays downcastable).
pub(crate) fn into_azure(error: Error) -> azure_core::Error {
    azure_core::Error::new(ErrorKind::Credential, error)
}

fn failed(credential: &str, client_id: &str, error: azure_core::Error) -> azure_core::Error {
    let error = token_error(credential, error);
    tracing::debug!(credential, client_id, %error, "token request failed");
    into_azure(error)
}

/// Turns an error from an `azure_identity` token request into [`Error::TokenRequest`] (or the
/// toolkit error it already carries), reading Entra's error from the response body.
pub(crate) fn token_error(credential: &str, error: azure_core::Error) -> Error {
    let mut current = error;
    loop {
        if let ErrorKind::HttpResponse {
            status,
            error_code,
            raw_response,
        } = current.kind()
        {
            #[derive(serde::Deserialize, Default)]
            #[serde(default)]
            struct EntraError {
                error: Option<String>,
                error_description: Option<String>,
                error_codes: Vec<i64>,
            }
            let body: EntraError = raw_response
                .as_ref()
                .and_then(|r| serde_json::from_slice(r.body().as_ref()).ok())
                .unwrap_or_default();
            let error_codes = if body.error_codes.is_empty() {
                error_code
                    .iter()
                    .flat_map(|c| c.split(','))
                    .filter_map(|c| c.trim().parse().ok())
                    .collect()
            } else {
                body.error_codes
            };
            return Error::TokenRequest {
                credential: credential.to_owned(),
                status: Some(u16::from(*status)),
                code: body.error,
                error_codes,
                description: body
                    .error_description
                    .unwrap_or_else(|| current.to_string()),
            };
        }
        let description = error_chain(&current);
        let request_failed = || Error::TokenRequest {
            credential: credential.to_owned(),
            status: None,
            code: None,
            error_codes: Vec::new(),
            description,
        };
        let Ok(inner) = current.into_inner() else {
            return request_failed();
        };
        let inner = match inner.downcast::<Error>() {
            Ok(ours) => return *ours,
            Err(inner) => inner,
        };
        match inner.downcast::<azure_core::Error>() {
            Ok(next) => current = *next,
            Err(_) => return request_failed(),
        }
    }
}

/// An error and its sources, each message once.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        let message = e.to_string();
        if !parts.iter().any(|p| p.contains(&message)) {
            parts.push(message);
        }
        next = e.source();
    }
    parts.join(": ")
}

// ---------------------------------------------------------------- PEM and DER

fn read_pem_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, Error> {
    let origin = || path.display().to_string();
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    if matches!(extension.as_deref(), Some("pfx" | "p12")) {
        return Err(Error::ClientCertificate {
            origin: origin(),
            reason: PKCS12_UNSUPPORTED.to_owned(),
        });
    }
    std::fs::read(path)
        .map(Zeroizing::new)
        .map_err(|e| Error::ClientCertificate {
            origin: origin(),
            reason: format!("cannot read it: {e}"),
        })
}

/// Refuses what is not PEM, or is an encrypted key, saying what it looks like instead.
fn check_pem(pem: &[u8]) -> Result<(), String> {
    if contains(pem, b"ENCRYPTED PRIVATE KEY-----") || contains(pem, b"Proc-Type: 4,ENCRYPTED") {
        return Err(ENCRYPTED_UNSUPPORTED.to_owned());
    }
    if !contains(pem, b"-----BEGIN ") {
        return Err(if pem.first() == Some(&0x30) {
            format!("it is not PEM but binary (DER or PKCS#12); {PKCS12_UNSUPPORTED}")
        } else {
            "it holds no PEM sections".to_owned()
        });
    }
    Ok(())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

type PemSection = (SectionKind, Zeroizing<Vec<u8>>);

/// Every recognised PEM section; malformed PEM is described without quoting it.
fn pem_sections(pem: &[u8]) -> Result<Vec<PemSection>, String> {
    let mut sections = Vec::new();
    for item in <(SectionKind, Vec<u8>) as PemObject>::pem_slice_iter(pem) {
        match item {
            Ok((kind, der)) => sections.push((kind, Zeroizing::new(der))),
            Err(e) => {
                use rustls_pki_types::pem::Error as PemError;
                let what = match e {
                    PemError::MissingSectionEnd { .. } => "a PEM section has no END line",
                    PemError::IllegalSectionStart { .. } => "a PEM BEGIN line is malformed",
                    PemError::Base64Decode(_) => "a PEM section is not valid base64",
                    _ => "the PEM cannot be parsed",
                };
                return Err(what.to_owned());
            }
        }
    }
    Ok(sections)
}

mod der {
    //! Just enough DER to find the parts of keys and certificates the assertion needs.

    use zeroize::Zeroizing;

    pub const INTEGER: u8 = 0x02;
    pub const BIT_STRING: u8 = 0x03;
    pub const OCTET_STRING: u8 = 0x04;
    pub const OID: u8 = 0x06;
    pub const SEQUENCE: u8 = 0x30;
    pub const CONTEXT_0: u8 = 0xa0;

    /// rsaEncryption, 1.2.840.113549.1.1.1.
    pub const RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    /// id-ecPublicKey, 1.2.840.10045.2.1.
    pub const EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    /// prime256v1 (P-256), 1.2.840.10045.3.1.7.
    pub const P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

    /// Reads the elements of one DER level in order.
    pub struct Reader<'a>(&'a [u8]);

    impl<'a> Reader<'a> {
        pub fn new(der: &'a [u8]) -> Self {
            Self(der)
        }

        /// The next element's tag and contents.
        pub fn next(&mut self) -> Option<(u8, &'a [u8])> {
            let (&tag, rest) = self.0.split_first()?;
            let (&first, rest) = rest.split_first()?;
            let (len, rest) = if first < 0x80 {
                (usize::from(first), rest)
            } else {
                let n = usize::from(first & 0x7f);
                if n == 0 || n > 4 || rest.len() < n {
                    return None;
                }
                let (len_bytes, rest) = rest.split_at(n);
                let len = len_bytes
                    .iter()
                    .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
                (len, rest)
            };
            if rest.len() < len {
                return None;
            }
            let (contents, rest) = rest.split_at(len);
            self.0 = rest;
            Some((tag, contents))
        }

        /// The next element's contents if it has `tag`.
        pub fn expect(&mut self, tag: u8) -> Option<&'a [u8]> {
            self.next().filter(|(t, _)| *t == tag).map(|(_, c)| c)
        }
    }

    /// One element (in zeroizing memory, since it may hold key material).
    pub fn element(tag: u8, contents: &[u8]) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(contents.len() + 6));
        out.push(tag);
        let len = contents.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes = len.to_be_bytes();
            let skip = bytes.iter().take_while(|b| **b == 0).count();
            out.push(0x80 | (bytes.len() - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
        out.extend_from_slice(contents);
        out
    }
}

/// The signing key and algorithm for a private key section.
fn signing_key(kind: SectionKind, der: &[u8]) -> Result<(EncodingKey, Algorithm), String> {
    use der::*;
    let malformed = |what: &str| format!("the private key is not a well-formed {what} key");
    match kind {
        SectionKind::RsaPrivateKey => Ok((EncodingKey::from_rsa_der(der), Algorithm::RS256)),
        SectionKind::PrivateKey => {
            let info = Reader::new(der)
                .expect(SEQUENCE)
                .ok_or_else(|| malformed("PKCS#8"))?;
            let mut fields = Reader::new(info);
            let (algorithm, private) = fields
                .expect(INTEGER)
                .and_then(|_| Some((fields.expect(SEQUENCE)?, fields.expect(OCTET_STRING)?)))
                .ok_or_else(|| malformed("PKCS#8"))?;
            let mut algorithm = Reader::new(algorithm);
            let oid = algorithm.expect(OID).ok_or_else(|| malformed("PKCS#8"))?;
            if oid == RSA_ENCRYPTION {
                Ok((EncodingKey::from_rsa_der(private), Algorithm::RS256))
            } else if oid == EC_PUBLIC_KEY {
                if algorithm.expect(OID) == Some(P256) {
                    Ok((EncodingKey::from_ec_der(der), Algorithm::ES256))
                } else {
                    Err(
                        "the EC private key is not on curve P-256, the one EC curve supported"
                            .to_owned(),
                    )
                }
            } else {
                Err(
                    "the private key is neither RSA nor EC P-256 (the types Entra ID accepts)"
                        .to_owned(),
                )
            }
        }
        SectionKind::EcPrivateKey => {
            // SEC1 ECPrivateKey { version, privateKey, [0] parameters, [1] publicKey }: wrap it
            // in PKCS#8, which is what the signer takes.
            let key = Reader::new(der)
                .expect(SEQUENCE)
                .ok_or_else(|| malformed("SEC1 EC"))?;
            let mut fields = Reader::new(key);
            let private = fields
                .expect(INTEGER)
                .and_then(|_| fields.expect(OCTET_STRING))
                .ok_or_else(|| malformed("SEC1 EC"))?;
            let mut curve = None;
            while let Some((tag, contents)) = fields.next() {
                if tag == CONTEXT_0 {
                    curve = Reader::new(contents).expect(OID);
                }
            }
            let p256 = match curve {
                Some(oid) => oid == P256,
                None => private.len() == 32,
            };
            if !p256 {
                return Err(
                    "the EC private key is not on curve P-256, the one EC curve supported"
                        .to_owned(),
                );
            }
            let mut algorithm = element(OID, EC_PUBLIC_KEY);
            algorithm.extend_from_slice(&element(OID, P256));
            let mut info = element(INTEGER, &[0]);
            info.extend_from_slice(&element(SEQUENCE, &algorithm));
            info.extend_from_slice(&element(OCTET_STRING, der));
            let pkcs8 = element(SEQUENCE, &info);
            Ok((EncodingKey::from_ec_der(&pkcs8), Algorithm::ES256))
        }
        _ => Err("unsupported private key section".to_owned()),
    }
}

/// The subject public key of a DER certificate: PKCS#1 `RSAPublicKey` for RSA, the
/// uncompressed point for EC.
fn public_key_of(certificate: &[u8]) -> Option<&[u8]> {
    use der::*;
    let certificate = Reader::new(certificate).expect(SEQUENCE)?;
    let tbs = Reader::new(certificate).expect(SEQUENCE)?;
    let mut fields = Reader::new(tbs);
    let (mut tag, _) = fields.next()?;
    if tag == CONTEXT_0 {
        (tag, _) = fields.next()?; // the version came first; this is the serial number
    }
    if tag != INTEGER {
        return None;
    }
    for _ in 0..4 {
        fields.expect(SEQUENCE)?; // signature algorithm, issuer, validity, subject
    }
    let spki = fields.expect(SEQUENCE)?;
    let mut spki = Reader::new(spki);
    spki.expect(SEQUENCE)?;
    let (unused_bits, key) = spki.expect(BIT_STRING)?.split_first()?;
    (*unused_bits == 0).then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::Validation;

    const CLIENT: &str = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d";
    const AUDIENCE: &str =
        "https://login.example/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token";

    struct Generated {
        cert_pem: String,
        cert_der: Vec<u8>,
        key_pem: String,
        key_der: Vec<u8>,
        public_key_raw: Vec<u8>,
    }

    fn generate(rsa: bool) -> Generated {
        let key = if rsa {
            rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap()
        } else {
            rcgen::KeyPair::generate().unwrap()
        };
        let cert = rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .self_signed(&key)
            .unwrap();
        Generated {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key_pem: key.serialize_pem(),
            key_der: key.serialize_der(),
            public_key_raw: key.public_key_raw().to_vec(),
        }
    }

    fn pem(label: &str, der: &[u8]) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    }

    /// The private key inside a PKCS#8 document (PKCS#1 for RSA, SEC1 for EC).
    fn pkcs8_inner(pkcs8: &[u8]) -> Vec<u8> {
        let info = der::Reader::new(pkcs8).expect(der::SEQUENCE).unwrap();
        let mut fields = der::Reader::new(info);
        fields.expect(der::INTEGER).unwrap();
        fields.expect(der::SEQUENCE).unwrap();
        fields.expect(der::OCTET_STRING).unwrap().to_vec()
    }

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    /// Checks an assertion against an independently computed thumbprint and the public key
    /// rcgen reports, and returns its claims.
    fn verify(assertion: &str, g: &Generated, alg: Algorithm) -> serde_json::Value {
        let header = jsonwebtoken::decode_header(assertion).unwrap();
        assert_eq!(header.alg, alg);
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        let expected = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(&g.cert_der));
        assert_eq!(header.x5t_s256.as_deref(), Some(expected.as_str()));
        assert_eq!(
            header.kid, None,
            "a kid Entra cannot match must not be sent"
        );
        assert_eq!(header.x5c, None);
        let key = match alg {
            Algorithm::ES256 => DecodingKey::from_ec_der(&g.public_key_raw),
            _ => DecodingKey::from_rsa_der(&g.public_key_raw),
        };
        let mut validation = Validation::new(alg);
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[CLIENT]);
        validation.set_required_spec_claims(&["exp", "nbf", "aud", "iss", "sub"]);
        jsonwebtoken::decode::<serde_json::Value>(assertion, &key, &validation)
            .unwrap()
            .claims
    }

    #[test]
    fn rsa_assertion_carries_the_claims_and_thumbprint_entra_expects() {
        let g = generate(true);
        let cert =
            ClientCertificate::from_pem(g.cert_pem.as_bytes(), g.key_pem.as_bytes()).unwrap();
        assert_eq!(cert.algorithm(), "RS256");
        assert_eq!(cert.certificate_der(), g.cert_der.as_slice());
        let t = now();
        let assertion = cert.assertion(CLIENT, AUDIENCE, t, "jti-1").unwrap();
        let claims = verify(&assertion, &g, Algorithm::RS256);
        assert_eq!(
            claims,
            serde_json::json!({
                "aud": AUDIENCE, "iss": CLIENT, "sub": CLIENT, "jti": "jti-1",
                "nbf": t, "iat": t, "exp": t + 600,
            })
        );
    }

    #[test]
    fn ec_p256_keys_sign_es256_from_pkcs8_and_sec1() {
        let g = generate(false);
        let pkcs8 =
            ClientCertificate::from_pem(g.cert_pem.as_bytes(), g.key_pem.as_bytes()).unwrap();
        assert_eq!(pkcs8.algorithm(), "ES256");
        let sec1_pem = pem("EC PRIVATE KEY", &pkcs8_inner(&g.key_der));
        let sec1 = ClientCertificate::from_pem(g.cert_pem.as_bytes(), sec1_pem.as_bytes()).unwrap();
        for cert in [pkcs8, sec1] {
            let assertion = cert.assertion(CLIENT, AUDIENCE, now(), "j").unwrap();
            verify(&assertion, &g, Algorithm::ES256);
        }
    }

    #[test]
    fn pkcs1_rsa_keys_and_combined_files_load() {
        let g = generate(true);
        let pkcs1_pem = pem("RSA PRIVATE KEY", &pkcs8_inner(&g.key_der));
        let combined = format!("{pkcs1_pem}{}", g.cert_pem);
        let cert = ClientCertificate::from_pem(combined.as_bytes(), combined.as_bytes()).unwrap();
        let assertion = cert.assertion(CLIENT, AUDIENCE, now(), "j").unwrap();
        verify(&assertion, &g, Algorithm::RS256);

        let dir = tempdir();
        let path = dir.join("both.pem");
        std::fs::write(&path, &combined).unwrap();
        let from_file = ClientCertificate::from_pem_file(&path).unwrap();
        assert_eq!(from_file.thumbprint_sha256(), cert.thumbprint_sha256());
    }

    #[test]
    fn the_certificate_matching_the_key_is_chosen_from_a_chain() {
        let leaf = generate(false);
        let other = generate(true);
        let chain = format!("{}{}", other.cert_pem, leaf.cert_pem);
        let cert = ClientCertificate::from_pem(chain.as_bytes(), leaf.key_pem.as_bytes()).unwrap();
        assert_eq!(cert.certificate_der(), leaf.cert_der.as_slice());
    }

    #[test]
    fn a_key_of_another_certificate_is_refused_naming_both() {
        let (a, b) = (generate(true), generate(true));
        let err = ClientCertificate::from_pem(a.cert_pem.as_bytes(), b.key_pem.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not belong to the certificate"), "{err}");
        assert!(
            err.contains("private key PEM in memory") && err.contains("certificate PEM in memory"),
            "{err}"
        );
    }

    fn tempdir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "studio-sp-unit-{}-{}",
            std::process::id(),
            azure_core::Uuid::new_v4()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn bad_inputs_say_which_file_and_what_without_quoting_it() {
        let g = generate(true);
        let key_body = g.key_pem.lines().nth(3).unwrap().to_owned();
        let dir = tempdir();
        let write = |name: &str, contents: &[u8]| {
            let path = dir.join(name);
            std::fs::write(&path, contents).unwrap();
            path
        };
        let key_only = write("key.pem", g.key_pem.as_bytes());
        let cert_only = write("cert.pem", g.cert_pem.as_bytes());
        let pfx = write("sp.pfx", b"\x30\x82\x01\x00");
        let der = write("sp.crt", &g.cert_der);
        let encrypted = write(
            "enc.pem",
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n",
        );
        let truncated = write("trunc.pem", &g.key_pem.as_bytes()[..200]);
        let absent = dir.join("absent.pem");
        let two_keys = write(
            "two.pem",
            format!("{}{}{}", g.key_pem, g.key_pem, g.cert_pem).as_bytes(),
        );
        let cases: Vec<(Result<ClientCertificate, Error>, &std::path::Path, &str)> = vec![
            (
                ClientCertificate::from_pem_file(&key_only),
                &key_only,
                "no certificate found",
            ),
            (
                ClientCertificate::from_pem_file(&cert_only),
                &cert_only,
                "no private key found",
            ),
            (
                ClientCertificate::from_pem_file(&pfx),
                &pfx,
                "openssl pkcs12",
            ),
            (
                ClientCertificate::from_pem_file(&der),
                &der,
                "not PEM but binary",
            ),
            (
                ClientCertificate::from_pem_file(&encrypted),
                &encrypted,
                "encrypted private keys are not supported",
            ),
            (
                ClientCertificate::from_pem_files(&cert_only, &truncated),
                &truncated,
                "no END line",
            ),
            (
                ClientCertificate::from_pem_file(&two_keys),
                &two_keys,
                "more than one private key",
            ),
            (
                ClientCertificate::from_pem_file(&absent),
                &absent,
                "cannot read it",
            ),
        ];
        for (result, path, expected) in cases {
            let err = result.unwrap_err();
            assert!(matches!(err, Error::ClientCertificate { .. }), "{err:?}");
            let (display, debug) = (err.to_string(), format!("{err:?}"));
            assert!(display.contains(&path.display().to_string()), "{display}");
            assert!(display.contains(expected), "{display}");
            assert!(
                !display.contains(&key_body) && !debug.contains(&key_body),
                "{debug}"
            );
        }
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn debug_shows_the_thumbprint_and_never_the_key() {
        let g = generate(true);
        let cert =
            ClientCertificate::from_pem(g.cert_pem.as_bytes(), g.key_pem.as_bytes()).unwrap();
        let debug = format!("{cert:?}");
        assert!(debug.contains(cert.thumbprint_sha256()), "{debug}");
        assert!(debug.contains("private_key: ***"), "{debug}");
        let key_lines: Vec<&str> = g
            .key_pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let leaks = crate::redact::debug_leaks(&cert, &key_lines);
        assert!(leaks.is_empty(), "{leaks:?}");
    }

    fn http_error(status: u16, body: &str) -> azure_core::Error {
        let response = azure_core::http::RawResponse::from_bytes(
            status.into(),
            azure_core::http::headers::Headers::new(),
            body.as_bytes().to_vec(),
        );
        let inner = azure_core::Error::new(
            ErrorKind::HttpResponse {
                status: status.into(),
                error_code: Some("7000215".to_owned()),
                raw_response: Some(Box::new(response)),
            },
            "AADSTS7000215: Invalid client secret provided.",
        );
        // As azure_identity wraps it.
        azure_core::Error::with_error(
            ErrorKind::Credential,
            inner,
            "ClientSecretCredential authentication failed. AADSTS7000215",
        )
    }

    #[test]
    fn entra_refusals_become_typed_errors_with_code_and_description() {
        let body = r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215]}"#;
        let err = token_error("ClientSecretCredential", http_error(401, body));
        let Error::TokenRequest {
            status,
            code,
            error_codes,
            description,
            ..
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!(*status, Some(401));
        assert_eq!(code.as_deref(), Some("invalid_client"));
        assert_eq!(error_codes, &[7000215]);
        assert!(description.starts_with("AADSTS7000215"));
        let text = err.to_string();
        assert!(
            text.contains("HTTP 401 invalid_client") && text.contains("AADSTS7000215"),
            "{text}"
        );

        // A body that is not Entra's still keeps the status and numeric code.
        let err = token_error("x", http_error(502, "<html>"));
        assert!(
            matches!(&err, Error::TokenRequest { status: Some(502), code: None, error_codes, .. } if error_codes == &[7000215]),
            "{err:?}"
        );
    }

    #[test]
    fn our_own_errors_come_back_out_and_others_keep_their_chain() {
        let ours = Error::ClientCertificate {
            origin: "k.pem".into(),
            reason: "r".into(),
        };
        let wrapped =
            azure_core::Error::with_error(ErrorKind::Credential, into_azure(ours), "wrapped");
        assert!(matches!(
            token_error("x", wrapped),
            Error::ClientCertificate { .. }
        ));

        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let transport = azure_core::Error::with_error(ErrorKind::Io, io, "cannot send the request");
        let err = token_error(
            "x",
            azure_core::Error::with_error(ErrorKind::Credential, transport, "x failed"),
        );
        let Error::TokenRequest {
            status: None,
            description,
            ..
        } = &err
        else {
            panic!("{err:?}")
        };
        assert_eq!(description, "cannot send the request: connection refused");
    }

    #[test]
    fn ids_are_checked_before_any_request() {
        let transport = TransportOptions {
            ssl_cert_file: None,
            ..Default::default()
        };
        let secret = || Secret::new("s3cr3t-value");
        let cloud = Cloud::azure_public();
        for (tenant, client) in [("", "c"), ("bad/tenant", "c"), ("t", " ")] {
            let err = ClientSecretCredential::new(&cloud, tenant, client, secret(), &transport)
                .unwrap_err();
            assert!(matches!(err, Error::InvalidCredential { .. }), "{err:?}");
        }
        let err =
            ClientSecretCredential::new(&cloud, "t", "c", Secret::new(""), &transport).unwrap_err();
        assert!(err.to_string().contains("secret is empty"), "{err}");
        let ok = ClientSecretCredential::new(&cloud, "t", "c", secret(), &transport).unwrap();
        let debug = format!("{ok:?}");
        assert!(
            debug.contains(r#"tenant_id: "t", client_id: "c""#) && debug.contains("secret: ***"),
            "{debug}"
        );
        let leaks = crate::redact::debug_leaks(&ok, &["s3cr3t-value"]);
        assert!(leaks.is_empty(), "{leaks:?}");
    }

    #[test]
    fn the_assertion_audience_is_the_url_azure_identity_posts_to() {
        let cloud = Cloud::azure_public()
            .with_overrides(|v| {
                (v == "AZURE_AUTHORITY_HOST").then(|| "https://127.0.0.1:9443".into())
            })
            .unwrap();
        assert_eq!(
            token_endpoint(&cloud, "contoso.onmicrosoft.com")
                .unwrap()
                .as_str(),
            "https://127.0.0.1:9443/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
    }
}
