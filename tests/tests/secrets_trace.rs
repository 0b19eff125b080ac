//! Runs every sign-in and Azure flow with tracing at TRACE for every crate (as `RUST_LOG=trace`
//! would) and checks that none of the secrets it used appears in the captured logs, in the
//! errors, in `Debug` output, or in any file written with wider permissions than 0600.
//!
//! One test in its own binary, so the global subscriber sees only these flows. The wiremock
//! fakes' own logs (what they received) are left out: they are the server's side.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use azure_core::credentials::{Secret, TokenCredential};
use serde_json::{Value, json};
use studio_acr::auth::RegistryCredential;
use studio_acr::client::{RegistryClient, RegistryClientOptions};
use studio_azure_auth::arm::{ArmClient, ArmClientOptions};
use studio_azure_auth::cache::TokenCache;
use studio_azure_auth::credential::device_code::{DeviceCodeCredential, DeviceCodeOptions};
use studio_azure_auth::credential::service_principal::{
    ClientCertificate, ClientCertificateCredential, ClientSecretCredential,
};
use studio_azure_auth::store::ConfigDir;
use studio_tests::entra::cloud_at;
use studio_tests::https::HttpsMock;
use studio_tests::registry::RegistryAuth;
use studio_tests::shared::{self, Mode};
use studio_tests::{LogsOnFailure, rig};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

/// A `MakeWriter` that appends everything to one buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Everything the flows print or leave behind, and the secrets they used.
#[derive(Default)]
struct Evidence {
    secrets: Vec<(String, String)>,
    texts: Vec<(String, String)>,
}

impl Evidence {
    fn secret(&mut self, what: &str, value: &str) {
        assert!(value.len() >= 8, "{what} is too short to search for");
        self.secrets.push((what.to_owned(), value.to_owned()));
    }
    fn text(&mut self, what: &str, value: impl Into<String>) {
        self.texts.push((what.to_owned(), value.into()));
    }
    /// Each base64 line of a PEM private key (a leak of part of a key is a leak).
    fn private_key(&mut self, what: &str, pem: &str) {
        for (i, line) in pem
            .lines()
            .filter(|l| !l.starts_with("-----") && l.len() >= 32)
            .enumerate()
        {
            self.secret(&format!("{what} line {i}"), line);
        }
    }
}

#[tokio::test]
async fn no_secret_reaches_a_log_an_error_a_debug_string_or_a_readable_file() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let captured = Captured::default();
    tracing_subscriber::fmt()
        // Everything at TRACE except wiremock: the fakes log the requests they *receive*
        // (headers included), which is the server's side, not ours.
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace,wiremock=off"))
        .with_writer(captured.clone())
        .with_ansi(false)
        .try_init()
        .map_err(|e| anyhow::anyhow!("{e}"))?;

    let mut ev = Evidence::default();
    let entra = shared::entra().await?;
    let cloud = cloud_at(&entra.authority_host);
    let transport = rig().transport_options();
    let tmp = tempfile::tempdir()?;
    let config_dir = ConfigDir::at(tmp.path().join("studio"))?;

    // 1. Device login approved in Chromium, then a silent token for another audience.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let device = DeviceCodeCredential::new(DeviceCodeOptions {
        cloud: cloud.clone(),
        transport: transport.clone(),
        cache: TokenCache::in_dir(config_dir.clone()),
        poll_interval_override: Some(Duration::from_millis(250)),
        prompt: Some(Arc::new(
            move |p: &studio_azure_auth::credential::DeviceCodePrompt| {
                tx.send(p.clone()).ok();
            },
        )),
        ..Default::default()
    })?;
    let browser = shared::browser().await?;
    let person = tokio::spawn(async move {
        let prompt = rx.recv().await.context("no prompt")?;
        let client = browser.session().await?;
        let result = studio_tests::browser::approve_device_login(
            &client,
            &prompt.verification_uri,
            &prompt.user_code,
            "grace@contoso.example",
        )
        .await;
        client.close().await.ok();
        result.map(drop)
    });
    let arm_token = device
        .get_token(&["https://management.azure.com/.default"], None)
        .await?;
    person.await??;
    let graph_token = device
        .get_token(&["https://graph.microsoft.com/.default"], None)
        .await?;
    ev.secret("device ARM access token", arm_token.token.secret());
    ev.secret("device Graph access token", graph_token.token.secret());
    ev.text("Debug of DeviceCodeCredential", format!("{device:?}"));
    ev.text("Debug of an AccessToken", format!("{arm_token:?}"));
    // Every token-like value in the cache file (refresh tokens included).
    let cache_text = std::fs::read_to_string(config_dir.file("token_cache.json"))?;
    collect_tokens(&serde_json::from_str(&cache_text)?, &mut ev, "token cache");

    // 2. Service principal with a secret; a wrong secret fails with Entra's error.
    let (client_id, client_secret) = entra.secret_client.clone();
    ev.secret("client secret", &client_secret);
    let sp = ClientSecretCredential::new(
        &cloud,
        &entra.tenant,
        &client_id,
        Secret::new(client_secret.clone()),
        &transport,
    )?;
    let sp_token = sp
        .get_token(&["https://management.azure.com/.default"], None)
        .await?;
    ev.secret("service principal access token", sp_token.token.secret());
    ev.text("Debug of ClientSecretCredential", format!("{sp:?}"));
    let wrong = "definitely-not-the-secret-7f3a";
    ev.secret("wrong client secret", wrong);
    let bad = ClientSecretCredential::new(
        &cloud,
        &entra.tenant,
        &client_id,
        Secret::new(wrong.to_owned()),
        &transport,
    )?;
    let err = bad
        .get_token(&["https://management.azure.com/.default"], None)
        .await
        .expect_err("wrong secret");
    ev.text("Display of the wrong-secret error", err.to_string());
    ev.text("Debug of the wrong-secret error", format!("{err:?}"));

    // 3. Service principal with a certificate.
    let (cert_client, cert) = &entra.certificate_client;
    ev.private_key("certificate private key", &cert.key_pem);
    let certificate =
        ClientCertificate::from_pem(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes())?;
    ev.text("Debug of ClientCertificate", format!("{certificate:?}"));
    let cert_credential = ClientCertificateCredential::new(
        &cloud,
        &entra.tenant,
        cert_client,
        certificate,
        &transport,
    )?;
    let cert_token = cert_credential
        .get_token(&["https://graph.microsoft.com/.default"], None)
        .await?;
    ev.secret("certificate access token", cert_token.token.secret());
    ev.text(
        "Debug of ClientCertificateCredential",
        format!("{cert_credential:?}"),
    );

    // 4. ARM calls with the bearer token, and create-for-rbac returning a password.
    let arm_mock = HttpsMock::start().await?;
    let graph_mock = HttpsMock::start().await?;
    let options = ArmClientOptions {
        transport: transport.clone(),
        ..Default::default()
    };
    let device_arc: Arc<dyn TokenCredential> = device.clone();
    let arm = ArmClient::with_endpoint(
        arm_mock.url(),
        "https://management.azure.com/.default",
        device_arc.clone(),
        options.clone(),
    )?;
    let graph = ArmClient::with_endpoint(
        graph_mock.url(),
        "https://graph.microsoft.com/.default",
        device_arc,
        options,
    )?;
    let sp_password = "Zq8~generated-password-for-the-new-principal";
    ev.secret("create-for-rbac password", sp_password);
    Mock::given(method("POST"))
        .and(path("/v1.0/applications"))
        .respond_with(ResponseTemplate::new(201).set_body_json(
            json!({"id": "app-object", "appId": "11111111-2222-3333-4444-555555555555"}),
        ))
        .mount(&graph_mock.server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1.0/servicePrincipals"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "sp-object"})))
        .mount(&graph_mock.server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1.0/applications/app-object/addPassword"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"secretText": sp_password})))
        .mount(&graph_mock.server)
        .await;
    let created = studio_azure_auth::graph::create_for_rbac(
        &graph,
        &arm,
        &studio_azure_auth::graph::CreateForRbac {
            display_name: "trace-test".into(),
            tenant: entra.tenant.clone(),
            ..Default::default()
        },
    )
    .await?;
    ev.text(
        "Debug of ServicePrincipalCredentials",
        format!("{created:?}"),
    );
    Mock::given(method("POST")).and(path("/subscriptions/0/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/studioreg/listCredentials"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"username": "studioreg", "passwords": [
            {"name": "password", "value": "admin-password-one-0001"}, {"name": "password2", "value": "admin-password-two-0002"}]})))
        .mount(&arm_mock.server).await;
    ev.secret("ACR admin password 1", "admin-password-one-0001");
    ev.secret("ACR admin password 2", "admin-password-two-0002");
    let acr = studio_acr::AcrManagementClient::new(arm.clone(), "0");
    let credentials = acr.registries().list_credentials("rg", "studioreg").await?;
    ev.text("Debug of registry credentials", format!("{credentials:?}"));
    let missing = arm
        .get::<Value>("/subscriptions/0/resourcegroups/nope", "2025-04-01")
        .await
        .expect_err("404");
    ev.text("Display of an ARM error", missing.to_string());

    // 5. The registry: basic auth, and the ACR token flow with a docker login file.
    let basic = shared::registry(Mode::Basic).await?;
    let RegistryAuth::Basic { username, password } = &basic.auth else {
        unreachable!()
    };
    ev.secret("registry password", password);
    let reg_options = RegistryClientOptions {
        transport: transport.clone(),
        ..Default::default()
    };
    let client = RegistryClient::new(
        &basic.host,
        RegistryCredential::basic(username, password),
        reg_options.clone(),
    )?;
    client.ping().await?;
    ev.text("Debug of a basic RegistryClient", format!("{client:?}"));
    let refused = RegistryClient::new(
        &basic.host,
        RegistryCredential::basic(username, wrong),
        reg_options.clone(),
    )?
    .ping()
    .await
    .expect_err("refused");
    ev.text("Display of a registry refusal", refused.to_string());
    let token_registry = shared::registry(Mode::Token).await?;
    let acr_client = RegistryClient::new(
        &token_registry.host,
        RegistryCredential::Entra {
            credential: Arc::new(sp),
            tenant: Some(entra.tenant.clone()),
            audience: None,
        },
        reg_options,
    )?;
    acr_client.ping().await?;
    let refresh = acr_client.acr_refresh_token().await?;
    ev.secret("ACR refresh token", refresh.secret());
    let docker_config = tmp.path().join("docker/config.json");
    let mut config = studio_acr::docker_config::DockerConfig::load(&docker_config)?;
    config.store_acr_login(&token_registry.host, &refresh)?;
    ev.text("Debug of DockerConfig", format!("{config:?}"));
    ev.text(
        "Debug of an Entra RegistryClient",
        format!("{acr_client:?}"),
    );

    // Let every span and event reach the buffer.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logs = String::from_utf8(captured.0.lock().expect("lock").clone())?;
    assert!(
        logs.len() > 10_000,
        "tracing captured only {} bytes: is TRACE really on?",
        logs.len()
    );
    ev.text("the TRACE log", logs);

    // Files: anything holding a secret must be 0600; nothing else may hold one.
    for dir in [tmp.path().to_owned()] {
        for entry in walk(&dir)? {
            let mode = std::fs::metadata(&entry)?.permissions().mode() & 0o777;
            let text = String::from_utf8_lossy(&std::fs::read(&entry)?).into_owned();
            if mode & 0o077 != 0 {
                ev.text(&format!("{} (mode {mode:o})", entry.display()), text);
            }
        }
    }

    let mut leaks = Vec::new();
    for (what, secret) in &ev.secrets {
        for (place, text) in &ev.texts {
            let lines: Vec<&str> = text.lines().collect();
            if let Some(i) = lines.iter().position(|l| l.contains(secret.as_str())) {
                let line = lines[i.saturating_sub(3)..=i].join(" | ");
                // Show where, with the secret itself masked.
                let line: String = line
                    .replace(secret.as_str(), "<SECRET>")
                    .chars()
                    .take(1500)
                    .collect();
                leaks.push(format!("{what} found in {place}: {line}"));
            }
        }
    }
    assert!(leaks.is_empty(), "secrets leaked:\n{}", leaks.join("\n"));
    assert!(
        ev.secrets.len() >= 12,
        "only {} secrets checked",
        ev.secrets.len()
    );
    Ok(())
}

fn collect_tokens(value: &Value, ev: &mut Evidence, place: &str) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if let Value::String(s) = v {
                    let key = k.to_ascii_lowercase();
                    if (key.contains("token") || key.contains("secret")) && s.len() >= 16 {
                        ev.secret(&format!("{place} {k}"), s);
                    }
                } else {
                    collect_tokens(v, ev, place);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_tokens(v, ev, place)),
        _ => {}
    }
}

fn walk(dir: &std::path::Path) -> Result<Vec<std::path::PathBuf>> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    Ok(files)
}
