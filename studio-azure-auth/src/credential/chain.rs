//! Credential chains: try several credentials in order and use the first that gives a token.
//!
//! [`ChainedCredential`] takes named links. A link that fails with
//! [`Error::CredentialUnavailable`] (not set up here:
//! no variables, no cached login, no `az`) is skipped with its reason; a link that is set up
//! but fails is recorded too, and the chain moves on. When no link gives a token, the error
//! ([`Error::NoCredential`]) lists every link and why. Once a link
//! has given a token, the chain keeps using it.
//!
//! [`DefaultCredential`] is the toolkit's chain: environment → cached login → Azure CLI.
//!
//! ```no_run
//! use std::sync::Arc;
//! use azure_core::credentials::TokenCredential;
//! use studio_azure_auth::{cache::TokenCache, store::ConfigDir};
//! use studio_azure_auth::credential::{
//!     AzureCliCredential, AzureCliOptions, CachedLoginCredential, CachedLoginOptions,
//!     ChainedCredential,
//! };
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let cache = TokenCache::in_dir(ConfigDir::from_env()?);
//! let chain = ChainedCredential::new(vec![
//!     ("cached login", CachedLoginCredential::new(cache, CachedLoginOptions::default())?
//!         as Arc<dyn TokenCredential>),
//!     ("Azure CLI", AzureCliCredential::new(AzureCliOptions::default())?),
//! ]);
//! match chain.get_token(&["https://management.azure.com/.default"], None).await {
//!     Ok(token) => drop(token),
//!     Err(e) => eprintln!("{e}"), // lists each link and why it did not work
//! }
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::{Arc, Mutex};

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};

use super::azure_cli::{self, AzureCliCredential, AzureCliOptions};
use super::cached::{self, CachedLoginCredential, CachedLoginOptions};
use crate::Error;
use crate::cache::TokenCache;

/// What happened to one link of a chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainAttempt {
    /// The link's name.
    pub name: String,
    /// Whether it was set up at all.
    pub configured: bool,
    /// Why it was skipped, or how it failed.
    pub reason: String,
}

impl fmt::Display for ChainAttempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = if self.configured {
            "failed"
        } else {
            "not configured"
        };
        write!(f, "{}: {status}: {}", self.name, self.reason)
    }
}

/// The attempts as an indented list, one per line (for [`Error::NoCredential`]).
pub(crate) fn list_attempts(attempts: &[ChainAttempt]) -> String {
    if attempts.is_empty() {
        return " the chain has no credentials".to_owned();
    }
    attempts.iter().map(|a| format!("\n  - {a}")).collect()
}

/// What a link's error means for the chain.
fn attempt(name: &str, error: &azure_core::Error) -> ChainAttempt {
    match error.downcast_ref::<Error>() {
        Some(Error::CredentialUnavailable { reason, .. }) => ChainAttempt {
            name: name.to_owned(),
            configured: false,
            reason: reason.clone(),
        },
        Some(e @ Error::NotConfigured { .. }) => ChainAttempt {
            name: name.to_owned(),
            configured: false,
            reason: e.to_string(),
        },
        _ => ChainAttempt {
            name: name.to_owned(),
            configured: true,
            reason: one_line(&error.to_string()),
        },
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Named credentials tried in order.
pub struct ChainedCredential {
    links: Vec<(String, Arc<dyn TokenCredential>)>,
    chosen: Mutex<Option<usize>>,
}

impl fmt::Debug for ChainedCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChainedCredential")
            .field(
                "links",
                &self
                    .links
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("chosen", &self.chosen_name())
            .finish()
    }
}

impl ChainedCredential {
    /// A chain of `links`, tried in the order given.
    pub fn new(links: Vec<(impl Into<String>, Arc<dyn TokenCredential>)>) -> Self {
        Self {
            links: links.into_iter().map(|(n, c)| (n.into(), c)).collect(),
            chosen: Mutex::new(None),
        }
    }

    /// The links' names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.links.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// The link that gave the last token, once one has.
    pub fn chosen_name(&self) -> Option<&str> {
        let chosen = *self.chosen.lock().unwrap_or_else(|p| p.into_inner());
        chosen
            .and_then(|i| self.links.get(i))
            .map(|(n, _)| n.as_str())
    }

    /// A token from the first link that gives one; the error lists every link otherwise.
    #[tracing::instrument(name = "chain.token", skip_all, fields(scopes = ?scopes))]
    pub async fn token(&self, scopes: &[&str]) -> Result<AccessToken, Error> {
        let chosen = *self.chosen.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = chosen
            && let Some((name, credential)) = self.links.get(i)
        {
            return credential
                .get_token(scopes, None)
                .await
                .map_err(|e| Error::NoCredential {
                    attempts: vec![attempt(name, &e)],
                });
        }
        let mut attempts = Vec::new();
        for (i, (name, credential)) in self.links.iter().enumerate() {
            match credential.get_token(scopes, None).await {
                Ok(token) => {
                    tracing::info!(credential = %name, "using this credential");
                    *self.chosen.lock().unwrap_or_else(|p| p.into_inner()) = Some(i);
                    return Ok(token);
                }
                Err(e) => {
                    let a = attempt(name, &e);
                    tracing::debug!(credential = %name, configured = a.configured, reason = %a.reason, "credential did not give a token");
                    attempts.push(a);
                }
            }
        }
        Err(Error::NoCredential { attempts })
    }
}

#[async_trait::async_trait]
impl TokenCredential for ChainedCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        self.token(scopes).await.map_err(super::to_azure_error)
    }
}

/// The name of the default chain's environment link.
pub const ENVIRONMENT: &str = "environment";

/// How the default chain's own links are set up.
#[derive(Clone, Debug, Default)]
pub struct DefaultCredentialOptions {
    /// The cache holding the device login; default: the one in [`crate::store::ConfigDir::from_env`].
    pub cache: Option<TokenCache>,
    /// Which cached login to use (also gives the cloud and the transport).
    pub cached_login: CachedLoginOptions,
    /// How to call the Azure CLI.
    pub azure_cli: AzureCliOptions,
}

/// The toolkit's default chain: environment → cached login → Azure CLI.
#[derive(Debug)]
pub struct DefaultCredential {
    chain: ChainedCredential,
}

/// A link that always fails with the error it was built with: an environment credential
/// that is not configured (the chain skips it and says why) or configured wrongly.
struct FailedLink {
    error: Error,
}

impl fmt::Debug for FailedLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailedLink").finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl TokenCredential for FailedLink {
    async fn get_token(
        &self,
        _scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        // The stored errors carry names and reasons only (never values), so repeating them is safe.
        let error = match &self.error {
            Error::NotConfigured { what, missing } => Error::CredentialUnavailable {
                credential: what.clone(),
                reason: format!("set {}", missing.join(", ")),
            },
            other => Error::InvalidCredential {
                what: ENVIRONMENT.to_owned(),
                reason: other.to_string(),
            },
        };
        Err(super::to_azure_error(error))
    }
}

impl DefaultCredential {
    /// The default chain with the environment link read from the process environment.
    pub fn new(options: DefaultCredentialOptions) -> Result<Self, Error> {
        Self::from_lookup(options, |name| std::env::var(name).ok())
    }

    /// [`DefaultCredential::new`] with the `AZURE_*` variables looked up through `lookup`.
    pub fn from_lookup(
        options: DefaultCredentialOptions,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Error> {
        let cloud = &options.cached_login.cloud;
        let transport = &options.cached_login.transport;
        let environment: Arc<dyn TokenCredential> =
            match super::environment::EnvironmentCredential::from_lookup(cloud, transport, lookup) {
                Ok(credential) => Arc::new(credential),
                Err(error) => Arc::new(FailedLink { error }),
            };
        Self::with_environment(environment, options)
    }

    /// The default chain with `environment` as its first link.
    pub fn with_environment(
        environment: Arc<dyn TokenCredential>,
        options: DefaultCredentialOptions,
    ) -> Result<Self, Error> {
        let cache = match options.cache {
            Some(cache) => cache,
            None => TokenCache::in_dir(crate::store::ConfigDir::from_env()?),
        };
        let chain = ChainedCredential::new(vec![
            (ENVIRONMENT, environment),
            (
                cached::NAME,
                CachedLoginCredential::new(cache, options.cached_login)?
                    as Arc<dyn TokenCredential>,
            ),
            (azure_cli::NAME, AzureCliCredential::new(options.azure_cli)?),
        ]);
        Ok(Self { chain })
    }

    /// The chain behind this credential.
    pub fn chain(&self) -> &ChainedCredential {
        &self.chain
    }

    /// A token for `scopes`, with the crate's typed error.
    pub async fn token(&self, scopes: &[&str]) -> Result<AccessToken, Error> {
        self.chain.token(scopes).await
    }
}

#[async_trait::async_trait]
impl TokenCredential for DefaultCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        self.chain.get_token(scopes, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use azure_core::time::OffsetDateTime;

    /// A link that answers as told and counts calls.
    #[derive(Debug)]
    struct Link {
        answer: Result<&'static str, Error>,
        calls: AtomicUsize,
    }

    impl Link {
        fn new(answer: Result<&'static str, Error>) -> Arc<Self> {
            Arc::new(Self {
                answer,
                calls: AtomicUsize::new(0),
            })
        }
    }

    #[async_trait::async_trait]
    impl TokenCredential for Link {
        async fn get_token(
            &self,
            _: &[&str],
            _: Option<TokenRequestOptions<'_>>,
        ) -> azure_core::Result<AccessToken> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            match &self.answer {
                Ok(t) => Ok(AccessToken::new(*t, OffsetDateTime::now_utc())),
                Err(Error::CredentialUnavailable { credential, reason }) => {
                    Err(super::super::to_azure_error(Error::CredentialUnavailable {
                        credential: credential.clone(),
                        reason: reason.clone(),
                    }))
                }
                Err(e) => Err(azure_core::Error::with_message(
                    azure_core::error::ErrorKind::Credential,
                    e.to_string(),
                )),
            }
        }
    }

    fn unavailable(reason: &str) -> Error {
        Error::CredentialUnavailable {
            credential: "x".into(),
            reason: reason.into(),
        }
    }

    #[tokio::test]
    async fn the_error_lists_every_link_and_why() {
        let chain = ChainedCredential::new(vec![
            (
                "environment",
                Link::new(Err(unavailable("AZURE_CLIENT_ID is not set")))
                    as Arc<dyn TokenCredential>,
            ),
            (
                "broken",
                Link::new(Err(Error::Transport("tls\nhandshake failed".into()))),
            ),
            (
                "Azure CLI",
                Link::new(Err(unavailable("`az` was not found on PATH"))),
            ),
        ]);
        let err = chain.token(&["s"]).await.unwrap_err();
        let Error::NoCredential { attempts } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(attempts.len(), 3);
        assert_eq!(
            err.to_string(),
            "no credential could get a token:\n  \
             - environment: not configured: AZURE_CLIENT_ID is not set\n  \
             - broken: failed: cannot build the HTTP client: tls handshake failed\n  \
             - Azure CLI: not configured: `az` was not found on PATH"
        );
    }

    #[tokio::test]
    async fn a_working_later_link_is_used_and_kept() {
        let first = Link::new(Err(unavailable("nothing here")));
        let second = Link::new(Ok("T2"));
        let third = Link::new(Ok("T3"));
        let chain = ChainedCredential::new(vec![
            ("first", first.clone() as Arc<dyn TokenCredential>),
            ("second", second.clone()),
            ("third", third.clone()),
        ]);
        assert_eq!(
            chain.get_token(&["s"], None).await.unwrap().token.secret(),
            "T2"
        );
        assert_eq!(
            chain.get_token(&["s"], None).await.unwrap().token.secret(),
            "T2"
        );
        assert_eq!(chain.chosen_name(), Some("second"));
        assert_eq!(first.calls.load(Ordering::SeqCst), 1);
        assert_eq!(second.calls.load(Ordering::SeqCst), 2);
        assert_eq!(third.calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn an_empty_chain_says_so() {
        let chain = ChainedCredential::new(Vec::<(String, Arc<dyn TokenCredential>)>::new());
        let err = chain.token(&["s"]).await.unwrap_err().to_string();
        assert!(err.contains("no credentials"), "{err}");
    }
}
