//! Device-code sign-in, the token cache, the cached login, the Azure CLI link and the default
//! chain of `studio-azure-auth`, against the Entra stand-in approved by headless Chromium, and
//! against Entra-shaped answers from an https wiremock for what the stand-in cannot produce
//! (`slow_down`, `authorization_declined`, `expired_token`, `bad_verification_code`, Entra's
//! `interval` and `message`).

use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use azure_core::credentials::TokenCredential;
use base64::Engine;
use serde_json::{Value, json};
use studio_azure_auth::Error;
use studio_azure_auth::cache::{TOKEN_CACHE_FILE, TokenCache};
use studio_azure_auth::credential::device_code::SleepHook;
use studio_azure_auth::credential::{
    AzureCliOptions, CachedLoginCredential, CachedLoginOptions, ChainedCredential,
    DefaultCredential, DefaultCredentialOptions, DeviceCodeCredential, DeviceCodeOptions,
    DeviceCodePrompt,
};
use studio_azure_auth::store::ConfigDir;
use studio_tests::browser::{approve_first_prompt, sign_in_approved};
use studio_tests::entra::cloud_at;
use studio_tests::https::HttpsMock;
use studio_tests::{LogsOnFailure, rig, shared};
use tokio::sync::{OnceCell, mpsc};
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, ResponseTemplate};

const ARM: &str = "https://management.azure.com/.default";
const GRAPH: &str = "https://graph.microsoft.com/.default";
const ACR: &str = "https://containerregistry.azure.net/.default";
const USER: &str = "ada@contoso.example";

fn claims(token: &str) -> Result<Value> {
    let payload = token.split('.').nth(1).context("not a JWT")?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload)?;
    Ok(serde_json::from_slice(&bytes)?)
}

fn mode(path: &std::path::Path) -> Result<u32> {
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o777)
}

/// The crate's error inside an `azure_core::Error`.
fn ours(e: &azure_core::Error) -> Result<&Error> {
    e.downcast_ref::<Error>()
        .with_context(|| format!("not a studio error: {e:?}"))
}

/// A prompt callback that counts prompts and forwards them.
fn forwarding_prompt() -> (
    studio_azure_auth::credential::device_code::PromptCallback,
    Arc<AtomicUsize>,
    mpsc::UnboundedReceiver<DeviceCodePrompt>,
) {
    let count = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::unbounded_channel();
    let counter = count.clone();
    let callback = Arc::new(move |p: &DeviceCodePrompt| {
        counter.fetch_add(1, Ordering::SeqCst);
        tx.send(p.clone()).ok();
    });
    (callback, count, rx)
}

/// Signs in with `credential`: the prompt goes to Chromium, where a person types the code and
/// signs in as `USER`. A browser failure cancels the sign-in so the test does not wait out
/// the device code.
async fn sign_in_through_chromium(
    credential: &Arc<DeviceCodeCredential>,
    prompts: mpsc::UnboundedReceiver<DeviceCodePrompt>,
    scope: &str,
) -> Result<(azure_core::credentials::AccessToken, DeviceCodePrompt)> {
    sign_in_approved(
        credential.cancellation_token(),
        approve_first_prompt(shared::browser().await?, prompts, USER),
        credential.get_token(&[scope], None),
    )
    .await
}

fn device_options(authority: &url::Url, cache: TokenCache) -> DeviceCodeOptions {
    DeviceCodeOptions {
        cloud: cloud_at(authority),
        transport: rig().transport_options(),
        cache,
        poll_interval_override: Some(Duration::from_millis(250)),
        ..Default::default()
    }
}

fn cached_options(authority: &url::Url) -> CachedLoginOptions {
    CachedLoginOptions {
        cloud: cloud_at(authority),
        transport: rig().transport_options(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_person_signs_in_with_a_device_code_and_later_tokens_come_silently() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let entra = shared::entra().await?;
    let tmp = tempfile::tempdir()?;
    let dir_path = tmp.path().join("studio");
    let dir = ConfigDir::at(&dir_path)?;
    let (prompt, prompts, rx) = forwarding_prompt();
    let credential = DeviceCodeCredential::new(DeviceCodeOptions {
        prompt: Some(prompt),
        ..device_options(&entra.authority_host, TokenCache::in_dir(dir.clone()))
    })?;

    // 1. The device login, approved in Chromium.
    let (arm, prompt) = sign_in_through_chromium(&credential, rx, ARM).await?;
    assert!(prompt.verification_uri.ends_with("/device"), "{prompt:?}");
    // The stand-in sends no `message`: the prompt is built from the URI and the code.
    assert!(
        prompt.message.contains(&prompt.verification_uri)
            && prompt.message.contains(&prompt.user_code),
        "{prompt:?}"
    );
    let arm_claims = claims(arm.token.secret())?;
    assert_eq!(arm_claims["aud"], "https://management.azure.com");
    assert_eq!(arm_claims["preferred_username"], USER);
    assert_eq!(arm_claims["iss"], entra.issuer());
    assert_eq!(
        credential.account().await.context("no account")?.username,
        USER
    );

    // 2. Another audience, silently from the refresh token: no second prompt.
    let graph = credential.get_token(&[GRAPH], None).await?;
    let graph_claims = claims(graph.token.secret())?;
    assert_eq!(graph_claims["aud"], "https://graph.microsoft.com");
    assert_eq!(graph_claims["oid"], arm_claims["oid"]);
    // The ARM token is reused, not fetched again (the stand-in never issues the same token twice).
    let again = credential.get_token(&[ARM], None).await?;
    assert_eq!(again.token.secret(), arm.token.secret());
    assert_eq!(prompts.load(Ordering::SeqCst), 1);

    // 3. The cache is private.
    let file = dir_path.join(TOKEN_CACHE_FILE);
    assert_eq!(mode(&file)?, 0o600);
    assert_eq!(mode(&dir_path)?, 0o700);
    let cached: Value = serde_json::from_slice(&std::fs::read(&file)?)?;
    assert_eq!(
        cached["accounts"][0]["username"], USER,
        "{}",
        cached["accounts"][0]["tenant"]
    );
    assert!(cached["accounts"][0]["refresh_token"].is_string());

    // 4. Another credential (as another process would) reads the login: no prompt at all.
    let later = CachedLoginCredential::new(
        TokenCache::in_dir(ConfigDir::at(&dir_path)?),
        cached_options(&entra.authority_host),
    )?;
    let acr = later.get_token(&[ACR], None).await?;
    let acr_claims = claims(acr.token.secret())?;
    assert_eq!(acr_claims["aud"], "https://containerregistry.azure.net");
    assert_eq!(acr_claims["oid"], arm_claims["oid"]);
    assert_eq!(
        later.get_token(&[ARM], None).await?.token.secret(),
        arm.token.secret()
    );

    // 5. 56 minutes later the ARM token is within 5 minutes of expiry: it is refreshed with
    //    the refresh token by the stand-in, and the new one is cached for everyone.
    let base = azure_core::time::OffsetDateTime::now_utc();
    let moved = TokenCache::in_dir(ConfigDir::at(&dir_path)?).with_clock(Arc::new(move || {
        base + azure_core::time::Duration::minutes(56)
    }));
    let refreshed = CachedLoginCredential::new(moved, cached_options(&entra.authority_host))?
        .get_token(&[ARM], None)
        .await?;
    assert_ne!(refreshed.token.secret(), arm.token.secret());
    assert_eq!(
        claims(refreshed.token.secret())?["aud"],
        "https://management.azure.com"
    );
    assert_eq!(
        later.get_token(&[ARM], None).await?.token.secret(),
        refreshed.token.secret()
    );
    assert_eq!(prompts.load(Ordering::SeqCst), 1);

    // 6. Logout removes the cache; the cached login then says how to sign in.
    assert!(studio_azure_auth::credential::logout(&dir)?);
    assert!(!file.exists());
    let err = later.get_token(&[ARM], None).await.unwrap_err();
    assert!(
        matches!(ours(&err)?, Error::CredentialUnavailable { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("cargo xtask login"), "{err}");
    Ok(())
}

#[tokio::test]
async fn a_person_who_presses_cancel_declines_the_sign_in() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let entra = shared::entra().await?;
    let browser = shared::browser().await?;
    let (prompt, _count, mut rx) = forwarding_prompt();
    let credential = DeviceCodeCredential::new(DeviceCodeOptions {
        prompt: Some(prompt),
        ..device_options(&entra.authority_host, TokenCache::in_memory())
    })?;
    let cancel = credential.cancellation_token();
    let person = tokio::spawn(async move {
        let result = async {
            use fantoccini::Locator;
            let prompt = rx.recv().await.context("no prompt")?;
            let client = browser.session().await?;
            let steps = async {
                client.goto(&prompt.verification_uri).await?;
                client
                    .find(Locator::Css("input[name=user_code]"))
                    .await?
                    .send_keys(&prompt.user_code)
                    .await?;
                client
                    .find(Locator::Css("form button[type=submit]"))
                    .await?
                    .click()
                    .await?;
                client
                    .wait()
                    .for_element(Locator::Css("#device-abort"))
                    .await?
                    .click()
                    .await?;
                // Wait for the answer page before closing the window, or the refusal may never
                // be submitted (a slow machine loses that race).
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
                while client.find(Locator::Css("#device-abort")).await.is_ok() {
                    anyhow::ensure!(
                        std::time::Instant::now() < deadline,
                        "the Cancel click was not answered"
                    );
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                anyhow::Ok(())
            }
            .await;
            client.close().await.ok();
            steps
        }
        .await;
        if result.is_err() {
            cancel.cancel();
        }
        result
    });
    let outcome = credential.sign_in(&[ARM]).await;
    person.await??;
    match outcome {
        Err(Error::AuthorizationDeclined(refused)) => {
            assert_eq!(refused.error, "access_denied");
            assert_eq!(refused.status, 400);
            assert!(refused.correlation_id.is_some(), "{refused:?}");
        }
        other => bail!("expected a declined sign-in, got {other:?}"),
    }
    Ok(())
}

// ------------------------------------------------------------------ Entra-shaped answers

const CODE_PATH: &str = "/organizations/oauth2/v2.0/devicecode";
const TOKEN_PATH: &str = "/organizations/oauth2/v2.0/token";

fn entra_error(error: &str, code: i64, text: &str) -> ResponseTemplate {
    ResponseTemplate::new(400).set_body_json(json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {text}\r\nTrace ID: 0b3e6d36-52b3-4a8c-a1c4-0f3a3c0b2e00\r\nCorrelation ID: 7d1c6d0e-3a55-4f6b-9f5e-2b9c8a0e1f11\r\nTimestamp: 2025-01-01 00:00:00Z"),
        "error_codes": [code],
        "timestamp": "2025-01-01 00:00:00Z",
        "trace_id": "0b3e6d36-52b3-4a8c-a1c4-0f3a3c0b2e00",
        "correlation_id": "7d1c6d0e-3a55-4f6b-9f5e-2b9c8a0e1f11",
        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
    }))
}

fn pending() -> ResponseTemplate {
    entra_error(
        "authorization_pending",
        70016,
        "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
    )
}

fn jwt(claims: Value) -> String {
    let enc = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.c2ln",
        enc(&json!({"alg":"RS256","typ":"JWT"})),
        enc(&claims)
    )
}

fn tokens(audience: &str, expires_in: u64) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "token_type": "Bearer",
        "scope": format!("{audience}/user_impersonation {audience}/.default offline_access openid profile"),
        "expires_in": expires_in,
        "ext_expires_in": expires_in,
        "access_token": jwt(json!({"aud": audience, "oid": "oid-1", "tid": "tid-1"})),
        "refresh_token": "1.AAAA-refresh",
        "id_token": jwt(json!({"oid": "oid-1", "tid": "tid-1", "preferred_username": USER})),
    }))
}

/// Entra's devicecode answer, with or without `interval` and `message`.
fn authorization(interval: Option<u64>, message: bool) -> Value {
    let mut body = json!({
        "user_code": "B7XK-P2QM",
        "device_code": "DAQABAAEAAAD--device-code",
        "verification_uri": "https://microsoft.com/devicelogin",
        "expires_in": 900,
    });
    if let Some(i) = interval {
        body["interval"] = json!(i);
    }
    if message {
        body["message"] = json!(
            "To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code B7XK-P2QM to authenticate."
        );
    }
    body
}

/// A mock Entra answering devicecode with `authorization` and the device-code polls with
/// `polls` in order.
async fn mock_entra(authorization: Value, polls: Vec<ResponseTemplate>) -> Result<HttpsMock> {
    let mock = HttpsMock::start().await?;
    Mock::given(method("POST"))
        .and(path(CODE_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(authorization))
        .mount(&mock.server)
        .await;
    for reply in polls {
        Mock::given(method("POST"))
            .and(path(TOKEN_PATH))
            .and(body_string_contains("device_code"))
            .respond_with(reply)
            .up_to_n_times(1)
            .mount(&mock.server)
            .await;
    }
    Ok(mock)
}

/// A sleep hook that records each wait and returns at once.
fn recorded_sleeps() -> (SleepHook, Arc<Mutex<Vec<Duration>>>) {
    let waits = Arc::new(Mutex::new(Vec::new()));
    let record = waits.clone();
    let hook: SleepHook = Arc::new(move |d| {
        record.lock().unwrap_or_else(|p| p.into_inner()).push(d);
        Box::pin(async {})
    });
    (hook, waits)
}

struct Flow {
    credential: Arc<DeviceCodeCredential>,
    waits: Arc<Mutex<Vec<Duration>>>,
    prompts: mpsc::UnboundedReceiver<DeviceCodePrompt>,
    mock: HttpsMock,
}

/// A credential against `mock_entra` whose waits are recorded, not slept (the server's
/// interval is honoured: no override).
async fn flow(authorization: Value, polls: Vec<ResponseTemplate>) -> Result<Flow> {
    let mock = mock_entra(authorization, polls).await?;
    let (sleep, waits) = recorded_sleeps();
    let (prompt, _count, prompts) = forwarding_prompt();
    let credential = DeviceCodeCredential::new(DeviceCodeOptions {
        cloud: cloud_at(&mock.url()),
        transport: rig().transport_options(),
        prompt: Some(prompt),
        sleep: Some(sleep),
        ..Default::default()
    })?;
    Ok(Flow {
        credential,
        waits,
        prompts,
        mock,
    })
}

fn secs(waits: &Mutex<Vec<Duration>>) -> Vec<u64> {
    waits
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(Duration::as_secs)
        .collect()
}

async fn forms(mock: &HttpsMock, url_path: &str) -> Result<Vec<Vec<(String, String)>>> {
    let requests = mock
        .server
        .received_requests()
        .await
        .context("recording off")?;
    Ok(requests
        .iter()
        .filter(|r| r.url.path() == url_path)
        .map(|r| url::form_urlencoded::parse(&r.body).into_owned().collect())
        .collect())
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn polling_continues_while_pending_at_the_servers_interval() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let mut f = flow(
        authorization(Some(7), true),
        vec![
            pending(),
            pending(),
            tokens("https://management.azure.com", 3600),
        ],
    )
    .await?;
    let signed_in = f.credential.sign_in(&[ARM]).await?;
    assert_eq!(signed_in.account.username, USER);
    assert_eq!(
        claims(signed_in.token.token.secret())?["aud"],
        "https://management.azure.com"
    );
    assert_eq!(secs(&f.waits), [7, 7, 7]);
    // Entra's own message is shown as it is.
    let prompt = f.prompts.try_recv()?;
    assert!(
        prompt.message.starts_with("To sign in, use a web browser"),
        "{prompt:?}"
    );
    assert_eq!(prompt.user_code, "B7XK-P2QM");

    // What went over the wire: the Azure CLI client, offline_access, the device-code grant.
    let code = forms(&f.mock, CODE_PATH).await?;
    assert_eq!(
        field(&code[0], "client_id"),
        Some("04b07795-8ddb-461a-bbee-02f9e1bf7b46")
    );
    let scope = field(&code[0], "scope").context("no scope")?;
    for s in [ARM, "offline_access", "openid", "profile"] {
        assert!(scope.split(' ').any(|x| x == s), "{scope}");
    }
    let polls = forms(&f.mock, TOKEN_PATH).await?;
    assert_eq!(polls.len(), 3);
    assert_eq!(
        field(&polls[0], "grant_type"),
        Some("urn:ietf:params:oauth:grant-type:device_code")
    );
    assert_eq!(
        field(&polls[0], "device_code"),
        Some("DAQABAAEAAAD--device-code")
    );
    Ok(())
}

#[tokio::test]
async fn slow_down_makes_every_later_wait_five_seconds_longer() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let slow_down = || {
        entra_error(
            "slow_down",
            70016,
            "OAuth 2.0 device flow error. Slow down.",
        )
    };
    let f = flow(
        authorization(Some(5), true),
        vec![
            slow_down(),
            pending(),
            slow_down(),
            tokens("https://management.azure.com", 3600),
        ],
    )
    .await?;
    f.credential.sign_in(&[ARM]).await?;
    assert_eq!(secs(&f.waits), [5, 10, 10, 15]);
    Ok(())
}

#[tokio::test]
async fn missing_interval_and_message_mean_five_seconds_and_a_built_prompt() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let mut f = flow(
        authorization(None, false),
        vec![pending(), tokens("https://management.azure.com", 3600)],
    )
    .await?;
    f.credential.sign_in(&[ARM]).await?;
    assert_eq!(secs(&f.waits), [5, 5]);
    let prompt = f.prompts.try_recv()?;
    assert_eq!(
        prompt.message,
        "To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code B7XK-P2QM to authenticate."
    );
    Ok(())
}

#[tokio::test]
async fn a_declined_sign_in_is_its_own_error() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let f = flow(
        authorization(Some(5), true),
        vec![
            pending(),
            entra_error(
                "authorization_declined",
                70000,
                "The user declined the authentication.",
            ),
        ],
    )
    .await?;
    // Through the TokenCredential interface, the typed error is the source.
    let err = f.credential.get_token(&[ARM], None).await.unwrap_err();
    assert_eq!(err.kind(), &azure_core::error::ErrorKind::Credential);
    let Error::AuthorizationDeclined(refused) = ours(&err)? else {
        bail!("expected AuthorizationDeclined, got {err:?}")
    };
    assert_eq!(refused.error_codes, [70000]);
    assert_eq!(refused.status, 400);
    let text = err.to_string();
    assert!(
        text.contains("AADSTS70000") && text.contains("7d1c6d0e"),
        "{text}"
    );
    assert!(!text.contains("device-code"), "{text}");
    Ok(())
}

#[tokio::test]
async fn an_expired_device_code_is_its_own_error() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let f = flow(
        authorization(Some(5), true),
        vec![entra_error(
            "expired_token",
            70020,
            "The provided value for the input parameter 'device_code' is not valid. This device code has expired.",
        )],
    )
    .await?;
    match f.credential.sign_in(&[ARM]).await {
        Err(Error::DeviceCodeExpired(refused)) => assert_eq!(refused.error_codes, [70020]),
        other => bail!("expected DeviceCodeExpired, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn a_bad_verification_code_is_its_own_error() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let f = flow(
        authorization(Some(5), true),
        vec![entra_error(
            "bad_verification_code",
            70019,
            "Verification code is invalid.",
        )],
    )
    .await?;
    match f.credential.sign_in(&[ARM]).await {
        Err(Error::BadVerificationCode(refused)) => assert_eq!(refused.error_codes, [70019]),
        other => bail!("expected BadVerificationCode, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn a_cancelled_sign_in_returns_promptly() -> Result<()> {
    let _logs = LogsOnFailure::new();
    // Entra never approves: without cancellation this sign-in would poll every 5 s (real
    // sleeps, the default) for 15 minutes.
    let mock = mock_entra(authorization(None, false), Vec::new()).await?;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(pending())
        .mount(&mock.server)
        .await;
    let (prompt, _count, mut prompts) = forwarding_prompt();
    let credential = DeviceCodeCredential::new(DeviceCodeOptions {
        cloud: cloud_at(&mock.url()),
        transport: rig().transport_options(),
        prompt: Some(prompt),
        ..Default::default()
    })?;
    let signing_in = tokio::spawn({
        let credential = credential.clone();
        async move { credential.sign_in(&[ARM]).await }
    });
    prompts.recv().await.context("no prompt")?;
    credential.cancellation_token().cancel();
    let outcome = tokio::time::timeout(Duration::from_secs(3), signing_in)
        .await
        .context("the cancelled sign-in did not return within 3 s")??;
    assert!(matches!(outcome, Err(Error::Cancelled)), "{outcome:?}");
    assert!(forms(&mock, TOKEN_PATH).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn short_lived_tokens_are_refreshed_and_long_lived_ones_reused() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let f = flow(
        authorization(Some(5), true),
        vec![tokens("https://management.azure.com", 3600)],
    )
    .await?;
    // Graph tokens here live 4 minutes: inside the 5-minute margin, so never reused.
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .and(body_string_contains("grant_type=refresh_token"))
        .respond_with(tokens("https://graph.microsoft.com", 240))
        .mount(&f.mock.server)
        .await;
    f.credential.get_token(&[ARM], None).await?;
    f.credential.get_token(&[ARM], None).await?;
    f.credential.get_token(&[GRAPH], None).await?;
    f.credential.get_token(&[GRAPH], None).await?;
    let refreshes: Vec<_> = forms(&f.mock, TOKEN_PATH)
        .await?
        .into_iter()
        .filter(|form| field(form, "grant_type") == Some("refresh_token"))
        .collect();
    assert_eq!(
        refreshes.len(),
        2,
        "one refresh per Graph call, none for ARM"
    );
    assert_eq!(
        field(&refreshes[0], "refresh_token"),
        Some("1.AAAA-refresh")
    );
    assert!(field(&refreshes[0], "scope").is_some_and(|s| s.contains(GRAPH)));
    assert_eq!(secs(&f.waits), [5], "one device login only");
    Ok(())
}

// ------------------------------------------------------------------ chains

/// A link that is not set up, as the environment credential is without its variables.
#[derive(Debug)]
struct NotConfigured(&'static str);

#[async_trait::async_trait]
impl TokenCredential for NotConfigured {
    async fn get_token(
        &self,
        _: &[&str],
        _: Option<azure_core::credentials::TokenRequestOptions<'_>>,
    ) -> azure_core::Result<azure_core::credentials::AccessToken> {
        Err(azure_core::Error::new(
            azure_core::error::ErrorKind::Credential,
            Error::CredentialUnavailable {
                credential: "environment".into(),
                reason: self.0.into(),
            },
        ))
    }
}

/// The token cache of one device login approved in Chromium, shared by the chain tests (each
/// copies it into a directory of its own).
async fn logged_in_cache() -> Result<&'static Vec<u8>> {
    static CACHE: OnceCell<Vec<u8>> = OnceCell::const_new();
    CACHE
        .get_or_try_init(|| async {
            let entra = shared::entra().await?;
            let tmp = tempfile::tempdir()?;
            let dir = ConfigDir::at(tmp.path())?;
            let (prompt, _count, rx) = forwarding_prompt();
            let credential = DeviceCodeCredential::new(DeviceCodeOptions {
                prompt: Some(prompt),
                ..device_options(&entra.authority_host, TokenCache::in_dir(dir.clone()))
            })?;
            sign_in_through_chromium(&credential, rx, ARM).await?;
            dir.read(TOKEN_CACHE_FILE)?.context("no cache written")
        })
        .await
}

fn default_chain(
    cache_dir: &std::path::Path,
    az_path: &std::path::Path,
    authority: &url::Url,
) -> Result<DefaultCredential> {
    default_chain_with_env(cache_dir, az_path, authority, |_| None)
}

/// The real default chain, its environment link reading `env` instead of the process's.
fn default_chain_with_env(
    cache_dir: &std::path::Path,
    az_path: &std::path::Path,
    authority: &url::Url,
    env: impl Fn(&str) -> Option<String>,
) -> Result<DefaultCredential> {
    Ok(DefaultCredential::from_lookup(
        DefaultCredentialOptions {
            cache: Some(TokenCache::in_dir(ConfigDir::at(cache_dir)?)),
            cached_login: cached_options(authority),
            azure_cli: AzureCliOptions {
                // Only `az_path`: the machine's own `az`, if any, must not answer.
                path: Some(az_path.as_os_str().to_owned()),
                ..Default::default()
            },
        },
        env,
    )?)
}

#[tokio::test]
async fn the_default_chain_takes_a_service_principal_from_the_environment_first() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let entra = shared::entra().await?;
    let tmp = tempfile::tempdir()?;
    let (client_id, secret) = entra.secret_client.clone();
    let tenant = entra.tenant.clone();
    let chain = default_chain_with_env(
        &tmp.path().join("config"),
        &tmp.path().join("bin"),
        &entra.authority_host,
        move |name| match name {
            "AZURE_TENANT_ID" => Some(tenant.clone()),
            "AZURE_CLIENT_ID" => Some(client_id.clone()),
            "AZURE_CLIENT_SECRET" => Some(secret.clone()),
            _ => None,
        },
    )?;
    let token = chain.get_token(&[ARM], None).await?;
    let payload = token.token.secret().split('.').nth(1).context("jwt")?;
    let claims: serde_json::Value = serde_json::from_slice(&base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        payload,
    )?)?;
    assert_eq!(claims["appid"], entra.secret_client.0.as_str());
    Ok(())
}

#[tokio::test]
async fn with_nothing_configured_the_default_chain_says_what_each_link_tried() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let entra = shared::entra().await?;
    let tmp = tempfile::tempdir()?;
    let chain = default_chain(
        &tmp.path().join("config"),
        &tmp.path().join("bin"),
        &entra.authority_host,
    )?;
    assert_eq!(
        chain.chain().names(),
        ["environment", "cached login", "Azure CLI"]
    );
    let err = chain.get_token(&[ARM], None).await.unwrap_err();
    let Error::NoCredential { attempts } = ours(&err)? else {
        bail!("expected NoCredential, got {err:?}")
    };
    let summary: Vec<_> = attempts
        .iter()
        .map(|a| (a.name.as_str(), a.configured))
        .collect();
    assert_eq!(
        summary,
        [
            ("environment", false),
            ("cached login", false),
            ("Azure CLI", false)
        ]
    );
    let text = err.to_string();
    for needle in [
        "environment: not configured: set AZURE_TENANT_ID, AZURE_CLIENT_ID",
        "cached login: not configured: no device login is cached in",
        "cargo xtask login",
        "Azure CLI: not configured: `az` was not found on PATH",
    ] {
        assert!(text.contains(needle), "missing '{needle}' in:\n{text}");
    }
    Ok(())
}

#[tokio::test]
async fn the_default_chain_uses_the_cached_login_when_the_environment_is_not_set() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let entra = shared::entra().await?;
    let cache = logged_in_cache().await?;
    let tmp = tempfile::tempdir()?;
    let config = ConfigDir::at(tmp.path().join("config"))?;
    config.write_private(TOKEN_CACHE_FILE, cache)?;
    let chain = default_chain(
        config.path(),
        &tmp.path().join("bin"),
        &entra.authority_host,
    )?;
    let token = chain.get_token(&[GRAPH], None).await?;
    let c = claims(token.token.secret())?;
    assert_eq!(c["aud"], "https://graph.microsoft.com");
    assert_eq!(c["preferred_username"], USER);
    assert_eq!(chain.chain().chosen_name(), Some("cached login"));
    Ok(())
}

/// Writes an `az` that answers `account get-access-token` as Azure CLI 2.54+ does (or says
/// nobody is logged in), and records its arguments.
fn fake_az(dir: &std::path::Path, logged_in: bool) -> Result<std::path::PathBuf> {
    std::fs::create_dir_all(dir)?;
    let args = dir.join("args");
    let expires = azure_core::time::OffsetDateTime::now_utc().unix_timestamp() + 3600;
    let body = if logged_in {
        format!(
            r#"echo '{{"accessToken":"az-cli-token","expiresOn":"2099-01-01 00:00:00.000000","expires_on":{expires},"subscription":"s","tenant":"t","tokenType":"Bearer"}}'"#
        )
    } else {
        "echo \"ERROR: Please run 'az login' to setup account.\" >&2; exit 1".to_owned()
    };
    let script = format!("#!/bin/sh\necho \"$@\" > '{}'\n{body}\n", args.display());
    let az = dir.join("az");
    std::fs::write(&az, script)?;
    std::fs::set_permissions(&az, std::fs::Permissions::from_mode(0o755))?;
    Ok(args)
}

#[tokio::test]
async fn the_azure_cli_link_runs_az_and_is_skipped_when_nobody_is_logged_in() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let entra = shared::entra().await?;
    let tmp = tempfile::tempdir()?;
    let bin = tmp.path().join("bin");

    let args = fake_az(&bin, true)?;
    let chain = default_chain(&tmp.path().join("config"), &bin, &entra.authority_host)?;
    let token = chain.get_token(&[ARM], None).await?;
    assert_eq!(token.token.secret(), "az-cli-token");
    assert_eq!(chain.chain().chosen_name(), Some("Azure CLI"));
    assert_eq!(
        std::fs::read_to_string(&args)?.trim(),
        "account get-access-token -o json --scope https://management.azure.com/.default"
    );

    fake_az(&bin, false)?;
    let chain = default_chain(&tmp.path().join("config"), &bin, &entra.authority_host)?;
    let err = chain.get_token(&[ARM], None).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("Azure CLI: not configured: nobody is logged in to the Azure CLI"),
        "{err}"
    );

    // A chain of links given by hand works the same way.
    let chain = ChainedCredential::new(vec![(
        "nothing",
        Arc::new(NotConfigured("no variables")) as Arc<dyn TokenCredential>,
    )]);
    let err = chain.get_token(&[ARM], None).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("nothing: not configured: no variables"),
        "{err}"
    );
    Ok(())
}
