//! Smoke tests of the rig: each peer answers a real request through the same code paths the
//! suites use. If one of these fails, every other suite's failure is suspect.

use std::sync::Arc;

use anyhow::{Context, Result, bail, ensure};
use azure_core::credentials::{Secret, TokenCredential};
use base64::Engine;
use reqwest::StatusCode;
use serde_json::Value;
use sha2::Digest;
use studio_tests::shared::{self, Mode};
use studio_tests::{LogsOnFailure, rig};

/// Pushes `data` as a blob to `repo` (POST then monolithic PUT) and reads it back.
async fn push_and_pull_blob(
    registry: &studio_tests::registry::Registry,
    repo: &str,
    data: &[u8],
    auth: &dyn Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
) -> Result<()> {
    let http = rig().http()?;
    let digest = format!("sha256:{:x}", sha2::Sha256::digest(data));
    let start = auth(http.post(registry.endpoint(&format!("v2/{repo}/blobs/uploads/"))?))
        .send()
        .await?;
    ensure!(
        start.status() == StatusCode::ACCEPTED,
        "upload start: {}",
        start.status()
    );
    let location = start
        .headers()
        .get("location")
        .context("no Location on 202")?
        .to_str()?
        .to_owned();
    let mut put_url = registry.url.join(&location)?;
    put_url.query_pairs_mut().append_pair("digest", &digest);
    let put = auth(http.put(put_url))
        .header("content-type", "application/octet-stream")
        .body(data.to_vec())
        .send()
        .await?;
    ensure!(
        put.status() == StatusCode::CREATED,
        "upload put: {} {}",
        put.status(),
        put.text().await?
    );
    let get = auth(http.get(registry.endpoint(&format!("v2/{repo}/blobs/{digest}"))?))
        .send()
        .await?;
    ensure!(get.status() == StatusCode::OK, "blob get: {}", get.status());
    ensure!(
        get.bytes().await?.as_ref() == data,
        "blob read back differs"
    );
    Ok(())
}

#[tokio::test]
async fn registry_anonymous_push_and_pull() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let registry = shared::registry(Mode::Anonymous).await?;
    push_and_pull_blob(registry, "smoke/anonymous", b"anonymous blob", &|r| r).await
}

#[tokio::test]
async fn registry_basic_auth_push_and_pull() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let registry = shared::registry(Mode::Basic).await?;
    let studio_tests::registry::RegistryAuth::Basic { username, password } = &registry.auth else {
        bail!("not a basic-auth registry")
    };
    let denied = rig().http()?.get(registry.endpoint("v2/")?).send().await?;
    assert_eq!(denied.status(), StatusCode::UNAUTHORIZED);
    let challenge = denied
        .headers()
        .get("www-authenticate")
        .context("no challenge")?
        .to_str()?;
    assert!(challenge.starts_with("Basic "), "{challenge}");
    let wrong = rig()
        .http()?
        .get(registry.endpoint("v2/")?)
        .basic_auth(username, Some("wrong"))
        .send()
        .await?;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let (u, p) = (username.clone(), password.clone());
    push_and_pull_blob(registry, "smoke/basic", b"basic blob", &move |r| {
        r.basic_auth(&u, Some(&p))
    })
    .await
}

/// A client-credentials token from the Entra stand-in through azure_identity's own code path.
async fn entra_token(audience: &str) -> Result<String> {
    let entra = shared::entra().await?;
    let mut cloud = azure_core::cloud::CustomConfiguration::default();
    cloud.authority_host = entra.authority_host.to_string();
    let options = azure_identity::ClientSecretCredentialOptions {
        client_options: azure_core::http::ClientOptions {
            transport: Some(studio_azure_auth::transport::azure_transport(rig().http()?)),
            cloud: Some(Arc::new(cloud.into())),
            ..Default::default()
        },
    };
    let credential = azure_identity::ClientSecretCredential::new(
        &entra.tenant,
        entra.secret_client.0.clone(),
        Secret::new(entra.secret_client.1.clone()),
        Some(options),
    )?;
    let token = credential
        .get_token(&[&format!("{audience}/.default")], None)
        .await?;
    Ok(token.token.secret().to_owned())
}

fn jwt_claims(token: &str) -> Result<Value> {
    let payload = token.split('.').nth(1).context("not a JWT")?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload)?;
    Ok(serde_json::from_slice(&bytes)?)
}

#[tokio::test]
async fn entra_client_credentials_token_for_arm() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let entra = shared::entra().await?;
    let token = entra_token("https://management.azure.com").await?;
    let claims = jwt_claims(&token)?;
    assert_eq!(claims["aud"], "https://management.azure.com", "{claims}");
    assert_eq!(claims["iss"], entra.issuer(), "{claims}");
    assert_eq!(claims["tid"], entra.tenant.as_str(), "{claims}");
    Ok(())
}

#[tokio::test]
async fn entra_certificate_client_is_verified_by_the_server() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let entra = shared::entra().await?;
    let (client_id, cert) = &entra.certificate_client;
    let token_url = entra.token_url()?;
    let assertion = |key_pem: &str| -> Result<String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.x5t_s256 = Some(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(sha2::Sha256::digest(&cert.cert_der)),
        );
        let claims = serde_json::json!({
            "aud": token_url.as_str(), "iss": client_id, "sub": client_id,
            "jti": studio_tests::registry::random_hex(16), "nbf": now, "iat": now, "exp": now + 600,
        });
        Ok(jsonwebtoken::encode(
            &header,
            &claims,
            &jsonwebtoken::EncodingKey::from_rsa_pem(key_pem.as_bytes())?,
        )?)
    };
    let ask = |assertion: String| {
        let form = [
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", client_id.clone()),
            ("scope", "https://graph.microsoft.com/.default".to_owned()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
            ),
            ("client_assertion", assertion),
        ];
        let url = token_url.clone();
        async move {
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form.iter())
                .finish();
            rig()
                .http()?
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .map_err(anyhow::Error::from)
        }
    };
    let ok = ask(assertion(&cert.key_pem)?).await?;
    let status = ok.status();
    let body: Value = ok.json().await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        jwt_claims(body["access_token"].as_str().context("no token")?)?["aud"],
        "https://graph.microsoft.com"
    );

    // The same assertion signed by another key is refused by the server.
    let other = studio_tests::pki::self_signed_signer(&rig().subdir("other-key")?, "other", true)?;
    let refused = ask(assertion(&other.key_pem)?).await?;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let body: Value = refused.json().await?;
    assert_eq!(body["error"], "invalid_client", "{body}");
    Ok(())
}

/// Parses `Bearer realm="…",service="…",scope="…"` (enough for the smoke test; the toolkit's
/// own parser lives in studio-acr).
fn bearer_params(challenge: &str) -> Result<std::collections::HashMap<String, String>> {
    let rest = challenge
        .strip_prefix("Bearer ")
        .context("not a Bearer challenge")?;
    Ok(rest
        .split("\",")
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim_matches('"').to_owned()))
        .collect())
}

#[tokio::test]
async fn registry_token_auth_follows_acrs_exchange_protocol() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let registry = shared::registry(Mode::Token).await?;
    let entra = shared::entra().await?;
    let studio_tests::registry::RegistryAuth::Token(service) = &registry.auth else {
        bail!("not a token registry")
    };
    let http = rig().http()?;

    // 1. The registry challenges and names the realm and service.
    let challenge = http.get(registry.endpoint("v2/")?).send().await?;
    assert_eq!(challenge.status(), StatusCode::UNAUTHORIZED);
    let params = bearer_params(challenge.headers()["www-authenticate"].to_str()?)?;
    assert_eq!(params["realm"], service.realm());
    assert_eq!(params["service"], registry.host);
    let realm = url::Url::parse(&params["realm"])?;

    // 2. An Entra token for ACR is exchanged for an ACR refresh token.
    let aad = entra_token("https://containerregistry.azure.net").await?;
    let exchange = http
        .post(realm.join("/oauth2/exchange")?)
        .form(&[
            ("grant_type", "access_token"),
            ("service", registry.host.as_str()),
            ("tenant", entra.tenant.as_str()),
            ("access_token", aad.as_str()),
        ])
        .send()
        .await?;
    assert_eq!(exchange.status(), StatusCode::OK);
    let refresh = exchange.json::<Value>().await?["refresh_token"]
        .as_str()
        .context("no refresh_token")?
        .to_owned();

    // A token signed by a key Entra never used is refused.
    let mut forged = aad.rsplit_once('.').map(|x| x.0).context("jwt")?.to_owned();
    forged.push_str(".AAAA");
    let refused = http
        .post(realm.join("/oauth2/exchange")?)
        .form(&[
            ("grant_type", "access_token"),
            ("service", registry.host.as_str()),
            ("access_token", forged.as_str()),
        ])
        .send()
        .await?;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);

    // 3. The refresh token buys an access token scoped to one repository.
    service.restrict(
        jwt_claims(&aad)?["oid"].as_str().unwrap_or_default(),
        &["smoke/"],
        &["pull", "push"],
    );
    let scoped = http
        .post(realm.clone())
        .form(&[
            ("grant_type", "refresh_token"),
            ("service", registry.host.as_str()),
            ("scope", "repository:smoke/token:pull,push"),
            ("refresh_token", refresh.as_str()),
        ])
        .send()
        .await?;
    assert_eq!(scoped.status(), StatusCode::OK);
    let access = scoped.json::<Value>().await?["access_token"]
        .as_str()
        .context("no access_token")?
        .to_owned();
    let bearer = access.clone();
    push_and_pull_blob(registry, "smoke/token", b"token blob", &move |r| {
        r.bearer_auth(&bearer)
    })
    .await?;

    // 4. The registry itself refuses a repository the token does not grant, and says which
    //    scope it needs.
    let other = http
        .post(registry.endpoint("v2/elsewhere/app/blobs/uploads/")?)
        .bearer_auth(&access)
        .send()
        .await?;
    assert_eq!(other.status(), StatusCode::UNAUTHORIZED);
    let need = bearer_params(other.headers()["www-authenticate"].to_str()?)?;
    // The registry lists the actions in no fixed order.
    let (resource, actions) = need["scope"].rsplit_once(':').context("scope")?;
    let mut actions: Vec<&str> = actions.split(',').collect();
    actions.sort_unstable();
    assert_eq!(
        (resource, actions),
        ("repository:elsewhere/app", vec!["pull", "push"])
    );

    // The principal's grant stops at its prefix even when it asks for more.
    let denied = http
        .post(realm)
        .form(&[
            ("grant_type", "refresh_token"),
            ("service", registry.host.as_str()),
            ("scope", "repository:elsewhere/app:pull,push"),
            ("refresh_token", refresh.as_str()),
        ])
        .send()
        .await?;
    let denied_token = denied.json::<Value>().await?["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(jwt_claims(&denied_token)?["access"], serde_json::json!([]));
    Ok(())
}

#[tokio::test]
async fn chromium_loads_a_page_over_the_rigs_https() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let entra = shared::entra().await?;
    let browser = shared::browser().await?;
    let client = browser.session().await?;
    let url = entra.authority_host.join(&format!(
        "{}/v2.0/.well-known/openid-configuration",
        entra.tenant
    ))?;
    let result = async {
        client.goto(url.as_str()).await?;
        let text = client
            .find(fantoccini::Locator::Css("body"))
            .await?
            .text()
            .await?;
        anyhow::Ok(text)
    }
    .await;
    client.close().await.ok();
    let text = result?;
    assert!(text.contains("device_authorization_endpoint"), "{text}");
    assert!(text.contains(&entra.issuer()), "{text}");
    Ok(())
}

#[tokio::test]
async fn kube_client_speaks_https_on_the_one_tls_stack() -> Result<()> {
    // kube's default `ring` beside aws-lc-rs panics here ("Could not automatically determine
    // the process-level CryptoProvider"); the workspace's feature set must not.
    let _logs = LogsOnFailure::new();
    let mock = studio_tests::https::HttpsMock::start().await?;
    wiremock::Mock::given(wiremock::matchers::path("/version"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "major": "1", "minor": "33", "gitVersion": "v1.33.0", "gitCommit": "x", "gitTreeState": "clean",
            "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.24", "compiler": "gc", "platform": "linux/amd64"
        })))
        .mount(&mock.server)
        .await;
    let mut config = kube::Config::new(mock.uri().parse()?);
    config.root_cert = Some(vec![
        rustls_pki_types::CertificateDer::from_pem_slice(rig().ca.cert_pem.as_bytes())?.to_vec(),
    ]);
    let client = kube::Client::try_from(config)?;
    let version = client.apiserver_version().await?;
    assert_eq!(version.git_version, "v1.33.0");
    Ok(())
}

use rustls_pki_types::pem::PemObject;

#[test]
fn every_arm_example_in_the_vectors_loads() -> Result<()> {
    let dirs = studio_tests::vectors::example_dirs("azure-rest-api-specs")?;
    assert!(dirs.len() >= 5, "found only {dirs:?}");
    let mut count = 0;
    for dir in dirs {
        for file in studio_tests::vectors::json_files(&dir)? {
            let example = studio_tests::vectors::ArmExample::load(&file)?;
            assert!(
                !example.responses.is_empty(),
                "{}: no responses",
                file.display()
            );
            assert!(
                example.param("api-version").is_some(),
                "{}: no api-version parameter",
                file.display()
            );
            count += 1;
        }
    }
    assert!(count >= 25, "only {count} examples");
    Ok(())
}

#[tokio::test]
async fn a_recorded_session_replays_in_order_over_https() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let recordings = studio_tests::vectors::recordings("azure-sdk-assets/go-azcontainerregistry")?;
    assert_eq!(recordings.len(), 4);
    let recording = recordings
        .iter()
        .find(|r| r.path.to_string_lossy().contains("anonymousAccess"))
        .context("no anonymousAccess recording")?;
    let mock = studio_tests::https::HttpsMock::start().await?;
    studio_tests::vectors::serve_recording(&mock.server, recording).await?;
    let http = rig().http()?;
    for entry in &recording.entries {
        let url = mock.url().join(&entry.path()?)?;
        let mut request = http.request(entry.request_method.parse()?, url);
        if let Some(Value::String(body)) = &entry.request_body {
            request = request.body(body.clone());
        } else if let Some(body) = &entry.request_body {
            request = request.json(body);
        }
        let response = request.send().await?;
        assert_eq!(
            response.status().as_u16(),
            entry.status_code,
            "{}",
            entry.request_uri
        );
        if let Some(Value::Object(expected)) = &entry.response_body {
            let got: Value = response.json().await?;
            assert_eq!(&got, &Value::Object(expected.clone()));
        }
    }
    // Every entry was used exactly once: one more request finds nothing.
    let extra = http.get(mock.url().join("acr/v1/_catalog")?).send().await?;
    assert_eq!(extra.status(), StatusCode::NOT_FOUND);
    Ok(())
}

#[tokio::test]
async fn a_person_approves_a_device_login_in_chromium() -> Result<()> {
    // The rig's part of the device flow: the client side here is raw HTTP; the toolkit's
    // DeviceCodeCredential is tested against the same peers in its own suite.
    let _logs = LogsOnFailure::new();
    let entra = shared::entra().await?;
    let browser = shared::browser().await?;
    let http = rig().http()?;
    let started: Value = http
        .post(entra.devicecode_url()?)
        .form(&[
            ("client_id", studio_tests::entra::AZURE_CLI_CLIENT_ID),
            (
                "scope",
                "https://management.azure.com/.default offline_access openid profile",
            ),
        ])
        .send()
        .await?
        .json()
        .await?;
    let device_code = started["device_code"].as_str().context("device_code")?;
    let poll = || async {
        let r: Value = http
            .post(entra.token_url()?)
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                ("client_id", studio_tests::entra::AZURE_CLI_CLIENT_ID),
                ("device_code", device_code),
            ])
            .send()
            .await?
            .json()
            .await?;
        anyhow::Ok(r)
    };
    assert_eq!(poll().await?["error"], "authorization_pending");
    let client = browser.session().await?;
    let trace = studio_tests::browser::approve_device_login(
        &client,
        started["verification_uri"]
            .as_str()
            .context("verification_uri")?,
        started["user_code"].as_str().context("user_code")?,
        "ada@contoso.example",
    )
    .await;
    client.close().await.ok();
    let trace = trace?;
    assert!(trace.pages.len() >= 4, "{trace:?}");
    let tokens = poll().await?;
    let access = tokens["access_token"].as_str().context("no access token")?;
    assert_eq!(jwt_claims(access)?["aud"], "https://management.azure.com");
    assert_eq!(
        jwt_claims(access)?["preferred_username"],
        "ada@contoso.example"
    );
    assert!(tokens["refresh_token"].is_string(), "{tokens}");
    Ok(())
}
