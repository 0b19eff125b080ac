//! Fakes of Azure Resource Manager for the suites: an [`ArmClient`] pointed at an
//! [`HttpsMock`] with real bearer tokens from the Entra stand-in, and helpers to serve ARM
//! examples from `../shared/vectors` through it (host rewriting, path templates, ordered
//! responses).

use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Result, bail};
use studio_azure_auth::arm::{ArmClient, ArmClientOptions};
use wiremock::{Request, Respond, ResponseTemplate};

use crate::https::HttpsMock;
use crate::vectors::ArmExample;
use crate::{rig, shared};

/// The token scope of Azure Resource Manager.
pub const ARM_SCOPE: &str = "https://management.azure.com/.default";

/// ARM client options for tests: the rig's CA, short retry and poll delays.
pub fn fast_options() -> ArmClientOptions {
    ArmClientOptions {
        transport: rig().transport_options(),
        initial_retry_delay: Duration::from_millis(10),
        max_retry_delay: Duration::from_secs(5),
        poll_interval: Duration::from_millis(10),
        ..Default::default()
    }
}

/// An ARM client pointed at `mock`, with tokens for ARM's audience from the Entra stand-in.
pub async fn arm_client(mock: &HttpsMock) -> Result<ArmClient> {
    let entra = shared::entra().await?;
    Ok(ArmClient::with_endpoint(
        mock.url(),
        ARM_SCOPE,
        entra.secret_credential()?,
        fast_options(),
    )?)
}

/// Rewrites the public ARM host in an example's headers to the fake's.
pub fn local(mock: &HttpsMock, url: &str) -> String {
    url.replace("https://management.azure.com", &mock.uri())
}

/// The `path` part of an absolute or relative URL (the ARM host rewritten to the fake's).
pub fn path_of(mock: &HttpsMock, url: &str) -> Result<String> {
    Ok(mock.url().join(&local(mock, url))?.path().to_owned())
}

/// Fills `{name}` in a path template from an example's parameters.
pub fn fill(template: &str, example: &ArmExample) -> Result<String> {
    let mut out = template.to_owned();
    for (k, v) in &example.parameters {
        if let Some(v) = v.as_str() {
            out = out.replace(&format!("{{{k}}}"), v);
        }
    }
    if out.contains('{') {
        bail!("{}: parameters do not fill {template}", example.name());
    }
    Ok(out)
}

/// A responder that answers from a list in order, repeating the last.
pub struct Sequence(Mutex<Vec<ResponseTemplate>>);

impl Respond for Sequence {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let mut items = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if items.len() > 1 {
            items.remove(0)
        } else {
            items[0].clone()
        }
    }
}

/// Answers with `items` in order, then keeps repeating the last one.
pub fn sequence(items: Vec<ResponseTemplate>) -> Sequence {
    Sequence(Mutex::new(items))
}
