//! The token cache: the refresh token of each signed-in account and its access tokens per
//! scope, kept in `token_cache.json` in the private [`ConfigDir`] so that later runs (and
//! other processes) get tokens without asking the person again.
//!
//! The file is written atomically with mode 0600 in the 0700 directory; every
//! read-modify-write holds the directory's lock ([`ConfigDir::lock`]), so two processes can
//! share it. Access tokens are reused until [`REFRESH_MARGIN`] (5 minutes) before they expire;
//! after that the credentials refresh them with the refresh token. Tokens are held as
//! [`Secret`] in memory and never appear in `Debug` output, logs or errors.
//!
//! [`logout`] (or [`TokenCache::logout`]) removes the file.
//!
//! ```no_run
//! use studio_azure_auth::{cache::TokenCache, store::ConfigDir};
//!
//! # async fn run() -> Result<(), studio_azure_auth::Error> {
//! let cache = TokenCache::in_dir(ConfigDir::from_env()?);
//! for account in cache.accounts().await? {
//!     println!("signed in as {} (tenant {})", account.username, account.tenant);
//! }
//! cache.logout().await?;
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use azure_core::credentials::{AccessToken, Secret};
use azure_core::time::{Duration, OffsetDateTime};
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::redact::Redacted;
use crate::store::ConfigDir;

/// The cache's file name in the config directory.
pub const TOKEN_CACHE_FILE: &str = "token_cache.json";

/// An access token is refreshed once it expires within this margin.
pub const REFRESH_MARGIN: Duration = Duration::minutes(5);

const FORMAT_VERSION: u32 = 1;

/// The cache's notion of "now"; replaceable so tests can move time.
pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

/// Whether a token expiring at `expires_on` may still be handed out at `now`.
pub fn is_fresh(expires_on: OffsetDateTime, now: OffsetDateTime) -> bool {
    expires_on - now > REFRESH_MARGIN
}

/// A signed-in account, as the cache knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The authority host signed in at, e.g. `https://login.microsoftonline.com/`.
    pub authority: String,
    /// The tenant signed in to, as requested (`organizations`, a tenant id, a domain).
    pub tenant: String,
    /// The client (application) id.
    pub client_id: String,
    /// `<object id>.<tenant id>` of the user, as MSAL names it.
    pub home_account_id: String,
    /// The sign-in name, e.g. `ada@contoso.com`.
    pub username: String,
    /// The user's home tenant id, if known.
    #[serde(default)]
    pub home_tenant_id: Option<String>,
}

impl Account {
    fn same(&self, other: &Account) -> bool {
        self.authority == other.authority
            && self.tenant == other.tenant
            && self.client_id == other.client_id
            && self.home_account_id == other.home_account_id
    }
}

#[derive(Clone, Serialize, Deserialize)]
struct CachedToken {
    token: Secret,
    /// Unix seconds.
    expires_on: i64,
}

#[derive(Clone, Serialize, Deserialize)]
struct CachedAccount {
    #[serde(flatten)]
    account: Account,
    #[serde(default)]
    refresh_token: Option<Secret>,
    /// Unix seconds of the device login.
    logged_in_at: i64,
    /// Access tokens by scope key (the requested scopes, space-separated).
    #[serde(default)]
    access_tokens: BTreeMap<String, CachedToken>,
}

impl fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedToken")
            .field("token", &Redacted)
            .field("expires_on", &self.expires_on)
            .finish()
    }
}

impl fmt::Debug for CachedAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedAccount")
            .field("account", &self.account)
            .field("refresh_token", &Redacted::option(&self.refresh_token))
            .field("logged_in_at", &self.logged_in_at)
            .field("access_tokens", &self.access_tokens)
            .finish()
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct CacheData {
    version: u32,
    #[serde(default)]
    accounts: Vec<CachedAccount>,
}

impl CacheData {
    fn find(&self, account: &Account) -> Option<&CachedAccount> {
        self.accounts.iter().find(|a| a.account.same(account))
    }

    fn find_mut(&mut self, account: &Account) -> Option<&mut CachedAccount> {
        self.accounts.iter_mut().find(|a| a.account.same(account))
    }
}

#[derive(Clone)]
enum Backing {
    File(ConfigDir),
    Memory(Arc<Mutex<CacheData>>),
}

/// The token cache: in a config directory (shared between runs and processes) or in memory.
#[derive(Clone)]
pub struct TokenCache {
    backing: Backing,
    clock: Clock,
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("TokenCache");
        match &self.backing {
            Backing::File(dir) => d.field("file", &dir.file(TOKEN_CACHE_FILE)),
            Backing::Memory(_) => d.field("file", &"(in memory)"),
        };
        d.finish_non_exhaustive()
    }
}

/// Removes the token cache from `dir` (signs every account out of this machine). Returns
/// whether there was one.
pub fn logout(dir: &ConfigDir) -> Result<bool, Error> {
    let _guard = dir.lock()?;
    let existed = dir.file(TOKEN_CACHE_FILE).exists();
    dir.remove(TOKEN_CACHE_FILE)?;
    tracing::info!(dir = %dir.path().display(), existed, "token cache removed");
    Ok(existed)
}

impl TokenCache {
    /// The cache in `dir`'s `token_cache.json`.
    pub fn in_dir(dir: ConfigDir) -> Self {
        Self {
            backing: Backing::File(dir),
            clock: Arc::new(OffsetDateTime::now_utc),
        }
    }

    /// A cache that lives as long as this value (and its clones).
    pub fn in_memory() -> Self {
        Self {
            backing: Backing::Memory(Arc::default()),
            clock: Arc::new(OffsetDateTime::now_utc),
        }
    }

    /// This cache with another clock (tests use it to move time forward).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The cache's current time.
    pub fn now(&self) -> OffsetDateTime {
        (self.clock)()
    }

    /// The cache file, if the cache is kept in a directory.
    pub fn file(&self) -> Option<std::path::PathBuf> {
        match &self.backing {
            Backing::File(dir) => Some(dir.file(TOKEN_CACHE_FILE)),
            Backing::Memory(_) => None,
        }
    }

    /// Where the cache lives, for messages.
    pub fn describe(&self) -> String {
        self.file()
            .map_or_else(|| "memory".to_owned(), |p| p.display().to_string())
    }

    /// The cached accounts, most recent login first.
    pub async fn accounts(&self) -> Result<Vec<Account>, Error> {
        self.read(|data| {
            let mut accounts: Vec<_> = data.accounts.iter().collect();
            accounts.sort_by_key(|a| std::cmp::Reverse(a.logged_in_at));
            accounts.into_iter().map(|a| a.account.clone()).collect()
        })
        .await
    }

    /// Records a completed sign-in: replaces any earlier entry of the same account with its
    /// refresh token and its first access token (for `scope_key`).
    pub async fn save_login(
        &self,
        account: Account,
        refresh_token: Option<Secret>,
        scope_key: String,
        token: AccessToken,
    ) -> Result<(), Error> {
        let now = self.now().unix_timestamp();
        self.update(true, move |data| {
            data.accounts.retain(|a| !a.account.same(&account));
            let mut access_tokens = BTreeMap::new();
            access_tokens.insert(scope_key, cached(&token));
            data.accounts.push(CachedAccount {
                account,
                refresh_token,
                logged_in_at: now,
                access_tokens,
            });
        })
        .await
    }

    /// A cached access token for `account` and `scope_key` that is not within
    /// [`REFRESH_MARGIN`] of expiring.
    pub async fn access_token(
        &self,
        account: &Account,
        scope_key: &str,
    ) -> Result<Option<AccessToken>, Error> {
        let now = self.now();
        let (account, scope_key) = (account.clone(), scope_key.to_owned());
        self.read(move |data| {
            let token = data.find(&account)?.access_tokens.get(&scope_key)?;
            let expires_on = OffsetDateTime::from_unix_timestamp(token.expires_on).ok()?;
            is_fresh(expires_on, now).then(|| AccessToken::new(token.token.clone(), expires_on))
        })
        .await
    }

    /// The refresh token of `account`, if one is cached.
    pub async fn refresh_token(&self, account: &Account) -> Result<Option<Secret>, Error> {
        let account = account.clone();
        self.read(move |data| data.find(&account)?.refresh_token.clone())
            .await
    }

    /// Stores a refreshed access token (and the refresh token that came with it, if Entra
    /// rotated it). Does nothing if the account was logged out meanwhile.
    pub async fn store_access_token(
        &self,
        account: &Account,
        scope_key: &str,
        token: &AccessToken,
        refresh_token: Option<Secret>,
    ) -> Result<(), Error> {
        let (account, scope_key, entry) = (account.clone(), scope_key.to_owned(), cached(token));
        self.update(false, move |data| {
            if let Some(cached) = data.find_mut(&account) {
                cached.access_tokens.insert(scope_key, entry);
                if refresh_token.is_some() {
                    cached.refresh_token = refresh_token;
                }
            }
        })
        .await
    }

    /// Removes the cache (every account). Returns whether there was anything to remove.
    pub async fn logout(&self) -> Result<bool, Error> {
        match &self.backing {
            Backing::File(dir) => {
                let dir = dir.clone();
                blocking(move || logout(&dir)).await
            }
            Backing::Memory(data) => {
                let mut data = data.lock().unwrap_or_else(|p| p.into_inner());
                let existed = !data.accounts.is_empty();
                *data = CacheData::default();
                Ok(existed)
            }
        }
    }

    async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&CacheData) -> R + Send + 'static,
    ) -> Result<R, Error> {
        match &self.backing {
            // Writers replace the file by renaming, so a reader always sees a whole file.
            Backing::File(dir) => {
                let dir = dir.clone();
                blocking(move || Ok(f(&load(&dir, false)?))).await
            }
            Backing::Memory(data) => Ok(f(&data.lock().unwrap_or_else(|p| p.into_inner()))),
        }
    }

    /// Read-modify-write under the directory's lock. `replace_corrupt`: a file that cannot be
    /// parsed is started afresh (a new login) instead of being an error.
    async fn update(
        &self,
        replace_corrupt: bool,
        f: impl FnOnce(&mut CacheData) + Send + 'static,
    ) -> Result<(), Error> {
        match &self.backing {
            Backing::File(dir) => {
                let dir = dir.clone();
                blocking(move || {
                    let _guard = dir.lock()?;
                    let mut data = load(&dir, replace_corrupt)?;
                    f(&mut data);
                    data.version = FORMAT_VERSION;
                    let json = serde_json::to_vec_pretty(&data).map_err(|e| Error::Store {
                        path: dir.file(TOKEN_CACHE_FILE),
                        reason: e.to_string(),
                    })?;
                    dir.write_private(TOKEN_CACHE_FILE, &json)
                })
                .await
            }
            Backing::Memory(data) => {
                let mut data = data.lock().unwrap_or_else(|p| p.into_inner());
                f(&mut data);
                Ok(())
            }
        }
    }
}

fn cached(token: &AccessToken) -> CachedToken {
    CachedToken {
        token: token.token.clone(),
        expires_on: token.expires_on.unix_timestamp(),
    }
}

fn load(dir: &ConfigDir, replace_corrupt: bool) -> Result<CacheData, Error> {
    let path = dir.file(TOKEN_CACHE_FILE);
    let Some(bytes) = dir.read(TOKEN_CACHE_FILE)? else {
        return Ok(CacheData::default());
    };
    let parsed = serde_json::from_slice::<CacheData>(&bytes)
        .map_err(|e| format!("not a token cache ({e}); run `cargo xtask logout` to remove it"))
        .and_then(|data| {
            if data.version > FORMAT_VERSION {
                Err(format!(
                    "written by a newer studio (format {}); this one reads format {FORMAT_VERSION}",
                    data.version
                ))
            } else {
                Ok(data)
            }
        });
    match parsed {
        Ok(data) => Ok(data),
        Err(reason) if replace_corrupt => {
            tracing::warn!(path = %path.display(), %reason, "replacing an unreadable token cache");
            Ok(CacheData::default())
        }
        Err(reason) => Err(Error::Store { path, reason }),
    }
}

async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> Result<R, Error> + Send + 'static,
) -> Result<R, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Store {
            path: TOKEN_CACHE_FILE.into(),
            reason: format!("the cache task failed: {e}"),
        })?
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn account(name: &str) -> Account {
        Account {
            authority: "https://login.microsoftonline.com/".into(),
            tenant: "organizations".into(),
            client_id: "04b07795-8ddb-461a-bbee-02f9e1bf7b46".into(),
            home_account_id: format!("{name}-oid.tid"),
            username: format!("{name}@contoso.com"),
            home_tenant_id: Some("tid".into()),
        }
    }

    fn token(value: &str, expires_on: OffsetDateTime) -> AccessToken {
        AccessToken::new(value.to_owned(), expires_on)
    }

    fn fixed_clock(at: OffsetDateTime) -> (Clock, Arc<Mutex<OffsetDateTime>>) {
        let now = Arc::new(Mutex::new(at));
        let read = now.clone();
        (Arc::new(move || *read.lock().unwrap()), now)
    }

    #[test]
    fn freshness_ends_five_minutes_before_expiry() {
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert!(is_fresh(now + Duration::minutes(60), now));
        assert!(is_fresh(
            now + Duration::minutes(5) + Duration::seconds(1),
            now
        ));
        assert!(!is_fresh(now + Duration::minutes(5), now));
        assert!(!is_fresh(now + Duration::minutes(1), now));
        assert!(!is_fresh(now - Duration::minutes(1), now));
    }

    #[tokio::test]
    async fn access_tokens_are_reused_until_five_minutes_before_expiry() {
        let start = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        let (clock, now) = fixed_clock(start);
        let tmp = tempfile::tempdir().unwrap();
        let cache = TokenCache::in_dir(ConfigDir::at(tmp.path()).unwrap()).with_clock(clock);
        let ada = account("ada");
        let arm = "https://management.azure.com/.default";
        cache
            .save_login(
                ada.clone(),
                Some(Secret::new("RT")),
                arm.into(),
                token("AT1", start + Duration::hours(1)),
            )
            .await
            .unwrap();
        let got = cache.access_token(&ada, arm).await.unwrap().unwrap();
        assert_eq!(got.token.secret(), "AT1");
        *now.lock().unwrap() = start + Duration::minutes(54);
        assert!(cache.access_token(&ada, arm).await.unwrap().is_some());
        *now.lock().unwrap() = start + Duration::minutes(55);
        assert!(cache.access_token(&ada, arm).await.unwrap().is_none());
        assert_eq!(
            cache.refresh_token(&ada).await.unwrap().unwrap().secret(),
            "RT"
        );
        // Another audience has no token until one is stored.
        let graph = "https://graph.microsoft.com/.default";
        assert!(cache.access_token(&ada, graph).await.unwrap().is_none());
        cache
            .store_access_token(&ada, graph, &token("G1", start + Duration::hours(2)), None)
            .await
            .unwrap();
        assert_eq!(
            cache
                .access_token(&ada, graph)
                .await
                .unwrap()
                .unwrap()
                .token
                .secret(),
            "G1"
        );
    }

    #[tokio::test]
    async fn the_file_is_private_and_logout_removes_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::at(tmp.path().join("studio")).unwrap();
        let cache = TokenCache::in_dir(dir.clone());
        let expires = OffsetDateTime::now_utc() + Duration::hours(1);
        cache
            .save_login(
                account("ada"),
                Some(Secret::new("RT-SECRET")),
                "s".into(),
                token("AT-SECRET", expires),
            )
            .await
            .unwrap();
        let file = dir.file(TOKEN_CACHE_FILE);
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert!(!format!("{cache:?}").contains("SECRET"));
        assert_eq!(cache.accounts().await.unwrap(), [account("ada")]);
        assert!(cache.logout().await.unwrap());
        assert!(!file.exists());
        assert!(cache.accounts().await.unwrap().is_empty());
        assert!(!logout(&dir).unwrap());
    }

    #[tokio::test]
    async fn a_new_login_replaces_the_same_account_and_newest_comes_first() {
        let (clock, now) = fixed_clock(OffsetDateTime::from_unix_timestamp(1_000).unwrap());
        let cache = TokenCache::in_memory().with_clock(clock);
        let far = OffsetDateTime::from_unix_timestamp(100_000).unwrap();
        cache
            .save_login(account("ada"), None, "s".into(), token("A", far))
            .await
            .unwrap();
        *now.lock().unwrap() = OffsetDateTime::from_unix_timestamp(2_000).unwrap();
        cache
            .save_login(account("bob"), None, "s".into(), token("B", far))
            .await
            .unwrap();
        *now.lock().unwrap() = OffsetDateTime::from_unix_timestamp(3_000).unwrap();
        cache
            .save_login(account("ada"), None, "s".into(), token("A2", far))
            .await
            .unwrap();
        let names: Vec<_> = cache
            .accounts()
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.username)
            .collect();
        assert_eq!(names, ["ada@contoso.com", "bob@contoso.com"]);
    }

    #[tokio::test]
    async fn an_unreadable_cache_is_an_error_until_a_new_login_replaces_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = ConfigDir::at(tmp.path()).unwrap();
        dir.write_private(TOKEN_CACHE_FILE, b"{not json").unwrap();
        let cache = TokenCache::in_dir(dir);
        let err = cache.accounts().await.unwrap_err().to_string();
        assert!(err.contains("not a token cache"), "{err}");
        let far = OffsetDateTime::now_utc() + Duration::hours(1);
        cache
            .save_login(account("ada"), None, "s".into(), token("A", far))
            .await
            .unwrap();
        assert_eq!(cache.accounts().await.unwrap().len(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writers_lose_no_update() {
        // Separate TokenCache values on one directory open the lock file separately, as two
        // processes would; every writer's tokens must survive.
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().to_owned();
        let expires = OffsetDateTime::now_utc() + Duration::hours(1);
        let ada = account("ada");
        TokenCache::in_dir(ConfigDir::at(&path).unwrap())
            .save_login(
                ada.clone(),
                Some(Secret::new("RT")),
                "s0".into(),
                token("T", expires),
            )
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for writer in 0..8 {
            let cache = TokenCache::in_dir(ConfigDir::at(&path).unwrap());
            let ada = ada.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..10 {
                    let key = format!("scope-{writer}-{i}");
                    cache
                        .store_access_token(&ada, &key, &token(&key, expires), None)
                        .await
                        .unwrap();
                }
            }));
        }
        // Readers in between always see a whole file.
        let reader = TokenCache::in_dir(ConfigDir::at(&path).unwrap());
        for _ in 0..20 {
            assert_eq!(reader.accounts().await.unwrap().len(), 1);
        }
        for t in tasks {
            t.await.unwrap();
        }
        for writer in 0..8 {
            for i in 0..10 {
                let key = format!("scope-{writer}-{i}");
                let got = reader.access_token(&ada, &key).await.unwrap();
                assert_eq!(got.map(|t| t.token.secret().to_owned()), Some(key));
            }
        }
    }

    #[test]
    fn debug_of_cache_entries_masks_the_tokens() {
        let mut access_tokens = BTreeMap::new();
        access_tokens.insert(
            "https://management.azure.com/.default".to_owned(),
            CachedToken {
                token: Secret::new("eyJ-cached-access-token"),
                expires_on: 1_900_000_000,
            },
        );
        let entry = CachedAccount {
            account: account("ada"),
            refresh_token: Some(Secret::new("cached-refresh-token")),
            logged_in_at: 1_800_000_000,
            access_tokens,
        };
        let data = CacheData {
            version: FORMAT_VERSION,
            accounts: vec![entry.clone()],
        };
        let secrets = ["eyJ-cached-access-token", "cached-refresh-token"];
        for value in [&data as &dyn fmt::Debug, &entry, &entry.access_tokens] {
            let leaks = crate::redact::debug_leaks(value, &secrets);
            assert!(leaks.is_empty(), "{leaks:?}");
        }
        let shown = format!("{entry:?}");
        assert!(shown.contains("refresh_token: Some(***)"), "{shown}");
        assert!(
            shown.contains("ada@contoso.com") && shown.contains("1900000000"),
            "{shown}"
        );
    }
}
