//! Headless Chromium (Debian's `chromium` and `chromium-driver`) driven over WebDriver, to do
//! in a browser what a person would: open a verification URL, type a user code, sign in and
//! approve.
//!
//! Chromium trusts the run's loopback certificate by its public-key hash
//! (`--ignore-certificate-errors-spki-list`), not by turning certificate checks off.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use base64::Engine;
use fantoccini::{Client, ClientBuilder, Locator};
use sha2::Digest;
use studio_azure_auth::credential::DeviceCodePrompt;
use studio_azure_auth::credential::device_code::PromptCallback;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::sync::CancellationToken;

use crate::process::{PeerProcess, free_port};

/// A running chromedriver.
pub struct Browser {
    url: String,
    /// The chromedriver process.
    pub process: Arc<PeerProcess>,
}

impl Browser {
    /// Starts chromedriver on a free loopback port.
    pub async fn start() -> Result<Self> {
        let driver = crate::require_program("chromedriver")?;
        crate::require_program("chromium")?;
        let port = free_port()?;
        let dir = crate::rig().subdir("browser")?;
        let process = PeerProcess::spawn(
            "chromedriver",
            Command::new(driver)
                .arg(format!("--port={port}"))
                .arg("--allowed-ips=127.0.0.1")
                .arg(format!(
                    "--log-path={}",
                    dir.join("chromedriver-verbose.log").display()
                )),
            &dir.join("chromedriver.log"),
            false,
        )?;
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = http.get(format!("{url}/status")).send().await
                && r.status().is_success()
            {
                break;
            }
            process.check_running()?;
            if Instant::now() > deadline {
                bail!("chromedriver did not answer on {url}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Self { url, process })
    }

    /// Opens a new headless Chromium session with a fresh profile.
    pub async fn session(&self) -> Result<Client> {
        let profile = tempfile::Builder::new()
            .prefix("chromium-profile-")
            .tempdir_in(crate::rig().subdir("browser")?)?
            .keep();
        let spki = base64::engine::general_purpose::STANDARD
            .encode(sha2::Sha256::digest(&crate::rig().server_cert.spki_der));
        let args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            format!("--user-data-dir={}", profile.display()),
            format!("--ignore-certificate-errors-spki-list={spki}"),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".to_owned(),
            serde_json::json!({ "binary": "/usr/bin/chromium", "args": args }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&self.url)
            .await
            .context("starting a Chromium session")?;
        Ok(client)
    }

    /// Approves a device login in a fresh session (see [`approve_device_login`]) and closes
    /// the session. Fails unless the browser reached the success page through at least four
    /// pages (code, sign-in, confirmation or consent, success).
    pub async fn approve(
        &self,
        verification_uri: &str,
        user_code: &str,
        user: &str,
    ) -> Result<ApprovalTrace> {
        let client = self.session().await?;
        let trace = approve_device_login(&client, verification_uri, user_code, user).await;
        client.close().await.ok();
        let trace = trace?;
        ensure!(trace.pages.len() >= 4, "too few pages: {trace:?}");
        Ok(trace)
    }
}

/// A device-code prompt callback that forwards each prompt to the returned receiver (for
/// [`approve_first_prompt`] or a test's own person).
pub fn prompt_channel() -> (PromptCallback, UnboundedReceiver<DeviceCodePrompt>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let callback: PromptCallback = Arc::new(move |p: &DeviceCodePrompt| {
        tx.send(p.clone()).ok();
    });
    (callback, rx)
}

/// A person at the browser: waits for the first device-code prompt on `prompts`, approves it
/// in Chromium as `user` ([`Browser::approve`]) and returns the prompt. Hand it to
/// [`sign_in_approved`].
pub async fn approve_first_prompt(
    browser: &Browser,
    mut prompts: UnboundedReceiver<DeviceCodePrompt>,
    user: &str,
) -> Result<DeviceCodePrompt> {
    let prompt = prompts.recv().await.context("no prompt")?;
    browser
        .approve(&prompt.verification_uri, &prompt.user_code, user)
        .await?;
    Ok(prompt)
}

/// Runs `sign_in` (a device-code sign-in or `get_token`) while `person` approves the code in
/// a task of its own, and returns both outcomes. A failing `person` cancels `cancel` (the
/// credential's cancellation token) so the sign-in does not wait out the device code; a
/// failing sign-in stops `person`, which may be waiting for polls or a prompt that never come.
/// A failure of `person` is reported before the sign-in's (which it caused).
pub async fn sign_in_approved<T, E, P>(
    cancel: CancellationToken,
    person: impl Future<Output = Result<P>> + Send + 'static,
    sign_in: impl Future<Output = std::result::Result<T, E>>,
) -> Result<(T, P)>
where
    E: std::error::Error + Send + Sync + 'static,
    P: Send + 'static,
{
    let person = tokio::spawn(async move {
        let result = person.await;
        if result.is_err() {
            cancel.cancel();
        }
        result
    });
    let signed_in = sign_in.await;
    if signed_in.is_err() {
        person.abort();
    }
    match (signed_in, person.await) {
        (Ok(signed_in), Ok(Ok(approved))) => Ok((signed_in, approved)),
        // The person's failure is the cause; the sign-in then only says it was cancelled.
        (_, Ok(Err(e))) => Err(e.context("the person at the browser")),
        (Err(e), _) => Err(anyhow::Error::new(e).context("the device-code sign-in")),
        (Ok(_), Err(e)) => Err(anyhow::Error::new(e).context("the person at the browser")),
    }
}

/// What the browser saw while approving a device login, for assertions and failure reports.
#[derive(Debug, Default)]
pub struct ApprovalTrace {
    /// Each page visited: (URL, title).
    pub pages: Vec<(String, String)>,
    /// The text of the last page.
    pub final_text: String,
}

/// Approves a device login as a person would: opens `verification_uri`, types `user_code`,
/// signs in as `user`, and accepts every confirmation and consent page until the success page.
pub async fn approve_device_login(
    client: &Client,
    verification_uri: &str,
    user_code: &str,
    user: &str,
) -> Result<ApprovalTrace> {
    let mut trace = ApprovalTrace::default();
    client.goto(verification_uri).await?;
    let mut typed_code = false;
    let mut signed_in = false;
    for _ in 0..12 {
        let url = client.current_url().await?.to_string();
        let title = client.title().await.unwrap_or_default();
        let text = client
            .find(Locator::Css("body"))
            .await?
            .text()
            .await
            .unwrap_or_default();
        trace.pages.push((url, title));
        let lower = text.to_lowercase();
        if lower.contains("success")
            || lower.contains("you can close")
            || lower.contains("signed in")
        {
            trace.final_text = text;
            return Ok(trace);
        }
        if !typed_code && let Ok(input) = client.find(Locator::Css("input[name=user_code]")).await {
            input.clear().await.ok();
            input.send_keys(user_code).await?;
            submit(client).await?;
            typed_code = true;
            continue;
        }
        if !signed_in && let Ok(login) = client.find(Locator::Css("input[name=login]")).await {
            login.send_keys(user).await?;
            if let Ok(password) = client.find(Locator::Css("input[name=password]")).await {
                password.send_keys("any-password").await?;
            }
            submit(client).await?;
            signed_in = true;
            continue;
        }
        // A confirmation or consent page: press its primary (non-abort) button.
        submit(client).await?;
    }
    trace.final_text = client
        .find(Locator::Css("body"))
        .await?
        .text()
        .await
        .unwrap_or_default();
    bail!(
        "the device login did not reach a success page; pages: {:?}; last text: {}",
        trace.pages,
        trace.final_text
    )
}

/// Clicks the page's primary submit button (not one named or valued `abort`).
async fn submit(client: &Client) -> Result<()> {
    let buttons = client
        .find_all(Locator::Css(
            "button[type=submit], input[type=submit], button:not([type])",
        ))
        .await?;
    for button in buttons {
        let name = button.attr("name").await?.unwrap_or_default();
        let value = button.attr("value").await?.unwrap_or_default();
        let text = button.text().await.unwrap_or_default().to_lowercase();
        if name == "abort" || value == "abort" || text.contains("abort") || text.contains("cancel")
        {
            continue;
        }
        button.click().await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        return Ok(());
    }
    bail!("no submit button on {}", client.current_url().await?)
}
