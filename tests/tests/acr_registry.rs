//! studio-acr's registry client against the rig's real registry in all three auth modes.

use anyhow::{Context, Result, ensure};
use studio_acr::auth::{RegistryCredential, Scope};
use studio_acr::client::RegistryClient;
use studio_tests::registry::{Registry, RegistryAuth};
use studio_tests::shared::{self, Mode};
use studio_tests::{LogsOnFailure, rig};

use studio_tests::registry::{client_options as options, push_tiny_image};

async fn credential(registry: &Registry) -> Result<RegistryCredential> {
    registry.credential().await
}

async fn list_tags_in_pages(mode: Mode) -> Result<()> {
    let registry = shared::registry(mode).await?;
    let client = RegistryClient::new(&registry.host, credential(registry).await?, options())?;
    client.ping().await?;
    let repo = format!("client/{mode:?}").to_lowercase();
    for tag in ["a", "b", "c", "d", "e"] {
        push_tiny_image(&client, &repo, tag).await?;
    }
    // Five tags in pages of two: three pages, joined by the Link header. The registry does not
    // promise an order.
    let mut tags = client.list_tags(&repo, Some(2)).await?;
    tags.sort();
    assert_eq!(tags, vec!["a", "b", "c", "d", "e"]);
    Ok(())
}

#[tokio::test]
async fn anonymous_registry_lists_tags_in_pages_of_two() -> Result<()> {
    let _logs = LogsOnFailure::new();
    list_tags_in_pages(Mode::Anonymous).await
}

#[tokio::test]
async fn basic_auth_registry_lists_tags_in_pages_of_two() -> Result<()> {
    let _logs = LogsOnFailure::new();
    list_tags_in_pages(Mode::Basic).await
}

#[tokio::test]
async fn token_registry_works_through_the_acr_exchange() -> Result<()> {
    let _logs = LogsOnFailure::new();
    list_tags_in_pages(Mode::Token).await?;
    let registry = shared::registry(Mode::Token).await?;
    let RegistryAuth::Token(service) = &registry.auth else {
        unreachable!()
    };
    let received = service.received().await;
    let paths: Vec<&str> = received.iter().map(|r| r.url.path()).collect();
    assert!(paths.contains(&"/oauth2/exchange"), "{paths:?}");
    assert!(paths.contains(&"/oauth2/token"), "{paths:?}");
    Ok(())
}

#[tokio::test]
async fn a_pull_only_token_is_upgraded_when_pushing() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let registry = shared::registry(Mode::Token).await?;
    let client = RegistryClient::new(&registry.host, credential(registry).await?, options())?;
    let repo = "client/upgrade";
    // Ask for pull only; the registry's challenge on the upload names push, and the client
    // re-authenticates once with the wider scope.
    let pull_only = [Scope::repository(repo, &["pull"])];
    let url = client.url(&format!("v2/{repo}/blobs/uploads/"))?;
    let response = client
        .send(&pull_only, |http| http.post(url.clone()))
        .await?;
    assert_eq!(response.status().as_u16(), 202);
    Ok(())
}

#[tokio::test]
async fn wrong_basic_credentials_are_a_clear_error() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let registry = shared::registry(Mode::Basic).await?;
    let client = RegistryClient::new(
        &registry.host,
        RegistryCredential::basic("studio", "wrong-password"),
        options(),
    )?;
    let err = client.ping().await.expect_err("refused");
    let text = err.to_string();
    assert!(
        text.contains("not authorized") && text.contains(&registry.host),
        "{text}"
    );
    assert!(!text.contains("wrong-password"));
    Ok(())
}

#[tokio::test]
async fn login_writes_a_config_json_that_skopeo_uses_against_the_token_registry() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let registry = shared::registry(Mode::Token).await?;
    let client = RegistryClient::new(&registry.host, credential(registry).await?, options())?;
    push_tiny_image(&client, "login/skopeo", "v1").await?;

    // `acr login`: the Entra token is exchanged for an ACR refresh token, stored as docker does.
    let refresh = client.acr_refresh_token().await?;
    let dir = rig().subdir("docker-login")?;
    let path = dir.join("docker/config.json");
    let mut config = studio_acr::docker_config::DockerConfig::load(&path)?;
    config.store_acr_login(&registry.host, &refresh)?;
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path)?.permissions().mode() & 0o777,
            0o600
        );
    }

    // skopeo (containers/image), an independent client, reads it and pulls the manifest.
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs)?;
    std::fs::copy(&rig().ca.cert_path, certs.join("ca.crt"))?;
    let output = std::process::Command::new(studio_tests::require_program("skopeo")?)
        .arg("inspect")
        .arg("--authfile")
        .arg(&path)
        .arg("--cert-dir")
        .arg(&certs)
        .arg(format!("docker://{}/login/skopeo:v1", registry.host))
        .output()?;
    assert!(
        output.status.success(),
        "skopeo failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let inspected: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    assert_eq!(inspected["Name"], format!("{}/login/skopeo", registry.host));

    // And our own client reads the same file back as a refresh-token credential.
    let again = studio_acr::docker_config::DockerConfig::load(&path)?
        .credential_for(&registry.host)?
        .context("no credential")?;
    let from_file = RegistryClient::new(&registry.host, again, options())?;
    assert_eq!(from_file.list_tags("login/skopeo", None).await?, vec!["v1"]);
    Ok(())
}

#[tokio::test]
async fn the_recorded_acr_exchange_sessions_replay() -> Result<()> {
    let _logs = LogsOnFailure::new();
    use studio_tests::vectors::{recordings, serve_recording};
    let entra = shared::entra().await?;
    let mut replayed = 0;
    for recording in recordings("azure-sdk-assets/go-azcontainerregistry")? {
        let name = recording
            .path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.contains("anonymousAccess") {
            replay_anonymous_access(&recording).await?;
            replayed += 1;
            continue;
        }
        replayed += 1;
        let mock = studio_tests::https::HttpsMock::start().await?;
        serve_recording(&mock.server, &recording).await?;
        let host = mock.url().host_str().context("host")?.to_owned();
        let host = format!("{host}:{}", mock.url().port().context("port")?);
        let recorded_host = url::Url::parse(&recording.entries[0].request_uri)?
            .host_str()
            .context("host")?
            .to_owned();
        // The registry answers /v2/ with ACR's challenge, naming the recorded service.
        wiremock::Mock::given(wiremock::matchers::path("/v2/"))
            .respond_with(
                wiremock::ResponseTemplate::new(401).insert_header(
                    "WWW-Authenticate",
                    format!(
                        r#"Bearer realm="{}/oauth2/token",service="{recorded_host}""#,
                        mock.uri()
                    )
                    .as_str(),
                ),
            )
            .mount(&mock.server)
            .await;
        let client = RegistryClient::new(
            &host,
            RegistryCredential::Entra {
                credential: entra.secret_credential()?,
                tenant: None,
                audience: None,
            },
            options(),
        )?;
        let result = client.acr_refresh_token().await;
        let fails = recording.entries.iter().any(|e| e.status_code == 401);
        if fails {
            let err = result.expect_err("the recorded exchange refuses");
            assert!(err.to_string().contains("401"), "{name}: {err}");
        } else {
            let token = result?;
            let recorded = recording.entries[0]
                .response_body
                .as_ref()
                .context("body")?["refresh_token"]
                .as_str()
                .context("refresh_token")?
                .to_owned();
            assert_eq!(token.secret(), recorded, "{name}");
        }
        // Our exchange request carries the recorded form fields.
        let ours = mock
            .received()
            .await
            .into_iter()
            .find(|r| r.url.path() == "/oauth2/exchange")
            .context("no exchange request")?;
        let form: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(&ours.body)
                .into_owned()
                .collect();
        assert_eq!(form["grant_type"], "access_token", "{name}");
        assert_eq!(form["service"], recorded_host, "{name}");
        assert!(!form["access_token"].is_empty());
    }
    assert_eq!(replayed, 4, "the four recorded sessions");
    Ok(())
}

/// The Go SDK's anonymous session against an ACR with anonymous pull: `GET /acr/v1/_catalog`
/// is challenged, the token comes from ACR's anonymous `POST /oauth2/token`
/// (`grant_type=password`, empty `refresh_token`), and the listing follows. (The session's
/// later `PATCH` of repository properties is an API we do not have.)
async fn replay_anonymous_access(recording: &studio_tests::vectors::Recording) -> Result<()> {
    let catalog = recording.entries[..3].to_vec();
    ensure!(
        catalog[1].request_method == "POST" && catalog[1].status_code == 200,
        "the recording changed"
    );
    // The first entry (the challenge) is served below with the realm pointed at the mock.
    let mut served = recording.clone();
    served.entries = catalog[1..].to_vec();
    let mock = studio_tests::https::HttpsMock::start().await?;
    studio_tests::vectors::serve_recording(&mock.server, &served).await?;
    let host = format!(
        "{}:{}",
        mock.url().host_str().context("host")?,
        mock.url().port().context("port")?
    );
    // The recorded challenge names the recorded realm; point it at the mock.
    let recorded_realm = "https://azacrlivetest.azurecr.io/oauth2/token";
    let challenge = catalog[0]
        .response_headers
        .get("WWW-Authenticate")
        .and_then(|v| v.as_str())
        .context("no challenge")?;
    ensure!(challenge.contains(recorded_realm), "{challenge}");
    wiremock::Mock::given(wiremock::matchers::method("GET"))
        .and(wiremock::matchers::path("/acr/v1/_catalog"))
        .respond_with(
            wiremock::ResponseTemplate::new(401).insert_header(
                "WWW-Authenticate",
                challenge
                    .replace(recorded_realm, &format!("{}/oauth2/token", mock.uri()))
                    .as_str(),
            ),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&mock.server)
        .await;
    let client = RegistryClient::new(&host, RegistryCredential::Anonymous, options())?;
    let url = client.url("acr/v1/_catalog?api-version=2021-07-01")?;
    let response = client
        .send(&[studio_acr::auth::Scope::catalog()], |http| {
            http.get(url.clone())
        })
        .await?;
    ensure!(response.status() == 200, "{}", response.status());
    let listing: serde_json::Value = response.json().await?;
    assert_eq!(
        Some(&listing),
        catalog[2].response_body.as_ref(),
        "the recorded listing"
    );
    let received = mock.received().await;
    let token_posts: Vec<_> = received
        .iter()
        .filter(|r| r.method.as_str() == "POST" && r.url.path() == "/oauth2/token")
        .collect();
    ensure!(token_posts.len() == 1, "{} token POSTs", token_posts.len());
    let ours: Vec<(String, String)> = url::form_urlencoded::parse(&token_posts[0].body)
        .into_owned()
        .collect();
    let recorded: Vec<(String, String)> = url::form_urlencoded::parse(
        catalog[1]
            .request_body
            .as_ref()
            .and_then(|v| v.as_str())
            .context("body")?
            .as_bytes(),
    )
    .into_owned()
    .collect();
    let service = |form: &[(String, String)]| {
        form.iter()
            .find(|(k, _)| k == "service")
            .map(|(_, v)| v.clone())
    };
    // Same fields; the service is the one the challenge named.
    let mut ours_sorted = ours.clone();
    ours_sorted.sort();
    let mut recorded_sorted = recorded.clone();
    recorded_sorted.sort();
    ensure!(
        ours_sorted == recorded_sorted,
        "our form {ours:?} differs from the recorded {recorded:?}"
    );
    ensure!(service(&ours).as_deref() == Some("azacrlivetest.azurecr.io"));
    // The listing went out with the token the POST gave.
    let last = received.last().context("no request")?;
    ensure!(
        last.url.path() == "/acr/v1/_catalog"
            && last
                .headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                == Some("Bearer Sanitized"),
        "the listing was not sent with the recorded token"
    );
    Ok(())
}
