//! Service-principal credentials (client secret, client certificate) and the environment
//! credential against the Entra stand-in. The stand-in verifies secrets and assertion
//! signatures itself; these tests only decode the tokens it issues.

use anyhow::{Context, Result, bail};
use azure_core::credentials::{Secret, TokenCredential};
use base64::Engine;
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;
use serde_json::Value;
use studio_azure_auth::Error;
use studio_azure_auth::cloud::Cloud;
use studio_azure_auth::credential::environment::EnvironmentCredential;
use studio_azure_auth::credential::service_principal::{
    ClientCertificate, ClientCertificateCredential, ClientSecretCredential,
};
use studio_tests::entra::EntraStandIn;
use studio_tests::pki::IssuedCert;
use studio_tests::{LogsOnFailure, rig, shared};

const ARM: &str = "https://management.azure.com";
const GRAPH: &str = "https://graph.microsoft.com";

/// The public cloud with its authority host pointed at the stand-in.
fn cloud(entra: &EntraStandIn) -> Cloud {
    let mut cloud = Cloud::azure_public();
    cloud.authority_host = entra.authority_host.clone();
    cloud
}

fn claims(token: &str) -> Result<Value> {
    let payload = token.split('.').nth(1).context("not a JWT")?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload)?;
    Ok(serde_json::from_slice(&bytes)?)
}

/// Gets a token for `audience` and returns its claims, checking the ones every app token of
/// the stand-in carries.
async fn app_token(
    entra: &EntraStandIn,
    credential: &dyn TokenCredential,
    audience: &str,
    client_id: &str,
) -> Result<Value> {
    let token = credential
        .get_token(&[&format!("{audience}/.default")], None)
        .await?;
    assert!(token.expires_on > azure_core::time::OffsetDateTime::now_utc());
    let claims = claims(token.token.secret())?;
    assert_eq!(claims["aud"], audience, "{claims}");
    assert_eq!(claims["iss"], entra.issuer(), "{claims}");
    assert_eq!(claims["tid"], entra.tenant.as_str(), "{claims}");
    assert_eq!(claims["appid"], client_id, "{claims}");
    assert_eq!(claims["idtyp"], "app", "{claims}");
    Ok(claims)
}

/// The toolkit error inside an error a credential returned.
fn typed(error: &azure_core::Error) -> &Error {
    Error::in_azure_error(error)
        .unwrap_or_else(|| panic!("not a studio_azure_auth::Error: {error:?}"))
}

/// The base64 body lines of a PEM key: none may appear in any output.
fn key_lines(key_pem: &str) -> Vec<String> {
    key_pem
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 16)
        .map(str::to_owned)
        .collect()
}

fn assert_no_key(text: &str, key_pem: &str) {
    for line in key_lines(key_pem) {
        assert!(!text.contains(&line), "key material in: {text}");
    }
}

fn certificate_credential(
    entra: &EntraStandIn,
    client_id: &str,
    certificate: ClientCertificate,
) -> Result<ClientCertificateCredential> {
    Ok(ClientCertificateCredential::new(
        &cloud(entra),
        &entra.tenant,
        client_id,
        certificate,
        &rig().transport_options(),
    )?)
}

/// Writes key + certificate into one private PEM file, as `AZURE_CLIENT_CERTIFICATE_PATH`
/// usually names.
fn combined_pem(cert: &IssuedCert, key_pem: &str, name: &str) -> Result<std::path::PathBuf> {
    let path = rig().subdir("sp-combined")?.join(name);
    studio_tests::write_private(&path, format!("{key_pem}{}", cert.cert_pem).as_bytes())?;
    Ok(path)
}

/// The key inside a PKCS#8 PEM in its traditional form (PKCS#1 for RSA, SEC1 for EC), PEM.
fn traditional_pem(pkcs8_pem: &str, label: &str) -> Result<String> {
    fn element(der: &[u8]) -> Result<(u8, &[u8], &[u8])> {
        let (&tag, rest) = der.split_first().context("empty DER")?;
        let (&first, rest) = rest.split_first().context("no length")?;
        let (len, rest) = if first < 0x80 {
            (first as usize, rest)
        } else {
            let n = (first & 0x7f) as usize;
            let len = rest[..n].iter().fold(0, |a, b| (a << 8) | *b as usize);
            (len, &rest[n..])
        };
        Ok((tag, &rest[..len], &rest[len..]))
    }
    let key = PrivatePkcs8KeyDer::from_pem_slice(pkcs8_pem.as_bytes())?;
    let (_, info, _) = element(key.secret_pkcs8_der())?;
    let (_, _, rest) = element(info)?; // version
    let (_, _, rest) = element(rest)?; // algorithm
    let (tag, inner, _) = element(rest)?;
    if tag != 0x04 {
        bail!("no OCTET STRING in the PKCS#8 key");
    }
    let b64 = base64::engine::general_purpose::STANDARD.encode(inner);
    let body: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(std::str::from_utf8)
        .collect::<Result<_, _>>()?;
    Ok(format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        body.join("\n")
    ))
}

#[tokio::test]
async fn client_secret_credential_gets_an_arm_token() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let entra = shared::entra().await?;
    let (client_id, secret) = &entra.secret_client;
    let credential = ClientSecretCredential::new(
        &cloud(entra),
        &entra.tenant,
        client_id,
        Secret::new(secret.clone()),
        &rig().transport_options(),
    )?;
    let claims = app_token(entra, &credential, ARM, client_id).await?;
    assert_eq!(claims["appidacr"], "1", "{claims}");
    Ok(())
}

#[tokio::test]
async fn client_certificate_credential_gets_a_graph_token() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let entra = shared::entra().await?;
    let (client_id, cert) = &entra.certificate_client;
    let certificate = ClientCertificate::from_pem_files(&cert.cert_path, &cert.key_path)?;
    assert_eq!(certificate.algorithm(), "RS256");
    let credential = certificate_credential(entra, client_id, certificate)?;
    let claims = app_token(entra, &credential, GRAPH, client_id).await?;
    assert_eq!(claims["appidacr"], "2", "{claims}");
    Ok(())
}

#[tokio::test]
async fn a_certificate_with_another_key_is_refused() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let entra = shared::entra().await?;
    let (client_id, registered) = &entra.certificate_client;
    let other = studio_tests::pki::self_signed_signer(&rig().subdir("sp-other-key")?, "x", true)?;

    // The registered certificate with a key that is not its own: refused before any request,
    // naming the key file and without quoting it.
    let err = ClientCertificate::from_pem_files(&registered.cert_path, &other.key_path)
        .expect_err("a key of another certificate must be refused");
    let text = err.to_string();
    assert!(matches!(err, Error::ClientCertificate { .. }), "{err:?}");
    assert!(
        text.contains(&other.key_path.display().to_string()),
        "{text}"
    );
    assert!(text.contains("does not belong"), "{text}");
    assert_no_key(&format!("{text} {err:?}"), &other.key_pem);

    // The registered client signing with an unregistered key pair: the server checks the
    // signature and refuses; Entra's answer surfaces in our typed error.
    let certificate = ClientCertificate::from_pem_files(&other.cert_path, &other.key_path)?;
    let credential = certificate_credential(entra, client_id, certificate)?;
    let err = credential
        .get_token(&[&format!("{GRAPH}/.default")], None)
        .await
        .expect_err("the server must refuse an assertion signed by an unregistered key");
    let Error::TokenRequest {
        status,
        code,
        credential: name,
        ..
    } = typed(&err)
    else {
        bail!("not a token-request error: {err:?}")
    };
    assert_eq!(*status, Some(401), "{err:?}");
    assert_eq!(code.as_deref(), Some("invalid_client"), "{err:?}");
    assert_eq!(name, "ClientCertificateCredential");
    assert_no_key(&format!("{err} {err:?}"), &other.key_pem);
    Ok(())
}

#[tokio::test]
async fn a_combined_pem_file_and_a_pkcs1_key_work() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let entra = shared::entra().await?;
    let (client_id, cert) = &entra.certificate_client;
    let combined = combined_pem(cert, &cert.key_pem, "rsa-pkcs8.pem")?;
    let credential = certificate_credential(
        entra,
        client_id,
        ClientCertificate::from_pem_file(&combined)?,
    )?;
    app_token(entra, &credential, ARM, client_id).await?;

    let pkcs1 = traditional_pem(&cert.key_pem, "RSA PRIVATE KEY")?;
    let combined = combined_pem(cert, &pkcs1, "rsa-pkcs1.pem")?;
    let credential = certificate_credential(
        entra,
        client_id,
        ClientCertificate::from_pem_file(&combined)?,
    )?;
    app_token(entra, &credential, GRAPH, client_id).await?;
    Ok(())
}

#[tokio::test]
async fn an_ec_p256_certificate_signs_es256_accepted_by_the_server() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let entra = shared::entra().await?;
    let (client_id, cert) = &entra.ec_certificate_client;
    let certificate = ClientCertificate::from_pem_files(&cert.cert_path, &cert.key_path)?;
    assert_eq!(certificate.algorithm(), "ES256");
    let credential = certificate_credential(entra, client_id, certificate)?;
    let claims = app_token(entra, &credential, ARM, client_id).await?;
    assert_eq!(claims["appidacr"], "2", "{claims}");

    // The same key in SEC1 form ("EC PRIVATE KEY"), in one file with the certificate.
    let sec1 = traditional_pem(&cert.key_pem, "EC PRIVATE KEY")?;
    let combined = combined_pem(cert, &sec1, "ec-sec1.pem")?;
    let credential = certificate_credential(
        entra,
        client_id,
        ClientCertificate::from_pem_file(&combined)?,
    )?;
    app_token(entra, &credential, GRAPH, client_id).await?;
    Ok(())
}

/// An environment lookup from a fixed list (the process environment is never touched).
fn vars(pairs: Vec<(&'static str, String)>) -> impl Fn(&str) -> Option<String> {
    move |name| {
        pairs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    }
}

#[tokio::test]
async fn environment_credential_from_a_secret_and_from_a_certificate() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let entra = shared::entra().await?;
    let transport = rig().transport_options();

    // Everything from "the environment", the authority host included.
    let (client_id, secret) = &entra.secret_client;
    let lookup = vars(vec![
        ("AZURE_AUTHORITY_HOST", entra.authority_host.to_string()),
        ("AZURE_TENANT_ID", entra.tenant.clone()),
        ("AZURE_CLIENT_ID", client_id.clone()),
        ("AZURE_CLIENT_SECRET", secret.clone()),
    ]);
    let env_cloud = Cloud::azure_public().with_overrides(&lookup)?;
    let credential = EnvironmentCredential::from_lookup(&env_cloud, &transport, &lookup)?;
    assert_eq!(credential.source(), "AZURE_CLIENT_SECRET");
    assert!(!format!("{credential:?}").contains(secret.as_str()));
    app_token(entra, &credential, ARM, client_id).await?;

    let (client_id, cert) = &entra.certificate_client;
    let combined = combined_pem(cert, &cert.key_pem, "env.pem")?;
    let lookup = vars(vec![
        ("AZURE_TENANT_ID", entra.tenant.clone()),
        ("AZURE_CLIENT_ID", client_id.clone()),
        (
            "AZURE_CLIENT_CERTIFICATE_PATH",
            combined.display().to_string(),
        ),
    ]);
    let credential = EnvironmentCredential::from_lookup(&cloud(entra), &transport, lookup)?;
    assert_eq!(credential.source(), "AZURE_CLIENT_CERTIFICATE_PATH");
    assert_no_key(&format!("{credential:?}"), &cert.key_pem);
    app_token(entra, &credential, GRAPH, client_id).await?;
    Ok(())
}

#[tokio::test]
async fn environment_credential_not_configured_and_partly_configured() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let entra = shared::entra().await?;
    let transport = rig().transport_options();

    let err = EnvironmentCredential::from_lookup(&cloud(entra), &transport, |_| None)
        .expect_err("nothing is set");
    let Error::NotConfigured { what, missing } = &err else {
        bail!("expected NotConfigured: {err:?}")
    };
    assert_eq!(what, "EnvironmentCredential");
    assert_eq!(
        missing,
        &[
            "AZURE_TENANT_ID",
            "AZURE_CLIENT_ID",
            "AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH"
        ]
    );
    let text = err.to_string();
    assert!(
        text.contains("not configured") && text.contains("AZURE_CLIENT_CERTIFICATE_PATH"),
        "{text}"
    );

    let partial = [
        (
            vars(vec![("AZURE_TENANT_ID", entra.tenant.clone())]),
            "AZURE_CLIENT_ID",
        ),
        (
            vars(vec![
                ("AZURE_CLIENT_ID", entra.secret_client.0.clone()),
                ("AZURE_CLIENT_SECRET", entra.secret_client.1.clone()),
            ]),
            "AZURE_TENANT_ID",
        ),
    ];
    for (lookup, absent) in partial {
        let err = EnvironmentCredential::from_lookup(&cloud(entra), &transport, lookup)
            .expect_err("partly configured");
        let Error::IncompleteConfiguration { missing, .. } = &err else {
            bail!("expected IncompleteConfiguration: {err:?}")
        };
        assert_eq!(missing, &[absent]);
        let text = err.to_string();
        assert!(text.contains(absent), "{text}");
        assert!(!text.contains(&entra.secret_client.1), "{text}");
    }
    Ok(())
}

#[tokio::test]
async fn a_wrong_secret_gives_entras_code_and_never_the_secret() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let entra = shared::entra().await?;
    let (client_id, right) = &entra.secret_client;
    let wrong = format!("wrong-{}", studio_tests::registry::random_hex(16));
    let credential = ClientSecretCredential::new(
        &cloud(entra),
        &entra.tenant,
        client_id,
        Secret::new(wrong.clone()),
        &rig().transport_options(),
    )?;
    let err = credential
        .get_token(&[&format!("{ARM}/.default")], None)
        .await
        .expect_err("a wrong secret must be refused");
    let ours = typed(&err);
    let Error::TokenRequest {
        status,
        code,
        error_codes,
        description,
        ..
    } = ours
    else {
        bail!("not a token-request error: {err:?}")
    };
    assert_eq!(*status, Some(401));
    assert_eq!(code.as_deref(), Some("invalid_client"));
    assert!(!error_codes.is_empty(), "{ours:?}");
    assert!(description.starts_with("AADSTS"), "{description}");
    for text in [
        err.to_string(),
        format!("{err:?}"),
        ours.to_string(),
        format!("{ours:?}"),
    ] {
        assert!(text.contains("invalid_client"), "{text}");
        assert!(!text.contains(&wrong), "the secret leaked: {text}");
        assert!(!text.contains(right.as_str()), "the secret leaked: {text}");
    }
    Ok(())
}

#[tokio::test]
async fn debug_output_of_every_credential_hides_secrets_and_keys() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let entra = shared::entra().await?;
    let transport = rig().transport_options();
    let (secret_id, secret) = &entra.secret_client;
    let (cert_id, cert) = &entra.certificate_client;

    let secret_credential = ClientSecretCredential::new(
        &cloud(entra),
        &entra.tenant,
        secret_id,
        Secret::new(secret.clone()),
        &transport,
    )?;
    let debug = format!("{secret_credential:?}");
    assert!(debug.contains(secret_id.as_str()), "{debug}");
    assert!(!debug.contains(secret.as_str()), "{debug}");

    let certificate = ClientCertificate::from_pem_files(&cert.cert_path, &cert.key_path)?;
    let thumbprint = certificate.thumbprint_sha256().to_owned();
    let debug = format!("{certificate:?}");
    assert!(debug.contains(&thumbprint), "{debug}");
    assert_no_key(&debug, &cert.key_pem);

    let credential = certificate_credential(entra, cert_id, certificate)?;
    let debug = format!("{credential:?}");
    assert!(
        debug.contains(cert_id.as_str()) && debug.contains(&thumbprint),
        "{debug}"
    );
    assert_no_key(&debug, &cert.key_pem);
    // A token was obtained with it, so the key really is in there.
    app_token(entra, &credential, ARM, cert_id).await?;
    assert_no_key(&format!("{credential:?}"), &cert.key_pem);

    let env = EnvironmentCredential::from_lookup(
        &cloud(entra),
        &transport,
        vars(vec![
            ("AZURE_TENANT_ID", entra.tenant.clone()),
            ("AZURE_CLIENT_ID", secret_id.clone()),
            ("AZURE_CLIENT_SECRET", secret.clone()),
        ]),
    )?;
    let debug = format!("{env:?}");
    assert!(
        debug.contains("AZURE_CLIENT_SECRET") && !debug.contains(secret.as_str()),
        "{debug}"
    );
    Ok(())
}
