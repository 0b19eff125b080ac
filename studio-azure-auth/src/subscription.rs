//! Subscriptions: list, show, and a persisted default, as `az account list/show/set` do.
//!
//! The default is kept in `profile.json` in the [`ConfigDir`], chosen
//! by id or by display name (`az account set --subscription "Sentient AI Evaluation"`), and shown
//! as `isDefault` in listings.
//!
//! ```no_run
//! # async fn demo(arm: studio_azure_auth::arm::ArmClient) -> Result<(), studio_azure_auth::Error> {
//! use studio_azure_auth::{store::ConfigDir, subscription};
//!
//! let dir = ConfigDir::from_env()?;
//! let chosen = subscription::set_default(&arm, &dir, "Sentient AI Evaluation").await?;
//! for s in subscription::list(&arm, &dir).await? {
//!     println!("{} {} {}", s.subscription_id, s.display_name, s.is_default);
//! }
//! # let _ = chosen; Ok(()) }
//! ```

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::arm::{ArmClient, SUBSCRIPTIONS_API_VERSION};
use crate::store::ConfigDir;

const PROFILE: &str = "profile.json";

/// A subscription as `GET /subscriptions` returns it, plus `isDefault`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    /// `/subscriptions/<id>`.
    #[serde(default)]
    pub id: String,
    /// The subscription id (a GUID).
    pub subscription_id: String,
    /// The display name.
    #[serde(default)]
    pub display_name: String,
    /// `Enabled`, `Disabled`, `Warned`, `PastDue` or `Deleted`.
    #[serde(default)]
    pub state: String,
    /// The tenant the subscription belongs to.
    #[serde(default)]
    pub tenant_id: String,
    /// Whether this is the persisted default.
    #[serde(default)]
    pub is_default: bool,
}

#[derive(Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    default_subscription: Option<Subscription>,
}

fn read_profile(dir: &ConfigDir) -> Result<Profile, Error> {
    match dir.read(PROFILE)? {
        None => Ok(Profile::default()),
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::Store {
            path: dir.file(PROFILE),
            reason: format!("not a studio profile: {e}"),
        }),
    }
}

/// Every subscription the credential can see, with the persisted default marked.
pub async fn list(arm: &ArmClient, dir: &ConfigDir) -> Result<Vec<Subscription>, Error> {
    let default = default_subscription(dir)?.map(|s| s.subscription_id);
    let mut subscriptions: Vec<Subscription> = arm
        .list("/subscriptions", SUBSCRIPTIONS_API_VERSION)
        .await?;
    for s in &mut subscriptions {
        s.is_default = default
            .as_deref()
            .is_some_and(|d| d.eq_ignore_ascii_case(&s.subscription_id));
    }
    Ok(subscriptions)
}

/// The persisted default subscription, if one was set.
pub fn default_subscription(dir: &ConfigDir) -> Result<Option<Subscription>, Error> {
    Ok(read_profile(dir)?.default_subscription)
}

/// Finds a subscription by id (case-insensitive) or display name (case-insensitive; an
/// ambiguous name is an error listing the candidates).
pub fn find<'a>(
    subscriptions: &'a [Subscription],
    id_or_name: &str,
) -> Result<&'a Subscription, Error> {
    if let Some(s) = subscriptions.iter().find(|s| {
        s.subscription_id.eq_ignore_ascii_case(id_or_name) || s.id.eq_ignore_ascii_case(id_or_name)
    }) {
        return Ok(s);
    }
    let by_name: Vec<&Subscription> = subscriptions
        .iter()
        .filter(|s| s.display_name.eq_ignore_ascii_case(id_or_name))
        .collect();
    match by_name.as_slice() {
        [one] => Ok(one),
        [] => Err(Error::SubscriptionNotFound {
            wanted: id_or_name.to_owned(),
            known: subscriptions
                .iter()
                .map(|s| format!("{} ({})", s.display_name, s.subscription_id))
                .collect::<Vec<_>>()
                .join(", "),
        }),
        many => Err(Error::AmbiguousSubscription {
            wanted: id_or_name.to_owned(),
            candidates: many
                .iter()
                .map(|s| s.subscription_id.clone())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Shows one subscription: `id_or_name`, or the default when `None`.
pub async fn show(
    arm: &ArmClient,
    dir: &ConfigDir,
    id_or_name: Option<&str>,
) -> Result<Subscription, Error> {
    let all = list(arm, dir).await?;
    match id_or_name {
        Some(wanted) => find(&all, wanted).cloned(),
        None => all
            .into_iter()
            .find(|s| s.is_default)
            .ok_or(Error::NoDefaultSubscription),
    }
}

/// Makes `id_or_name` the default and persists it.
pub async fn set_default(
    arm: &ArmClient,
    dir: &ConfigDir,
    id_or_name: &str,
) -> Result<Subscription, Error> {
    let all = list(arm, dir).await?;
    let mut chosen = find(&all, id_or_name)?.clone();
    chosen.is_default = true;
    let _lock = dir.lock()?;
    let mut profile = read_profile(dir)?;
    profile.default_subscription = Some(chosen.clone());
    let bytes = serde_json::to_vec_pretty(&profile).map_err(|e| Error::Decode {
        what: "profile".to_owned(),
        reason: e.to_string(),
    })?;
    dir.write_private(PROFILE, &bytes)?;
    tracing::info!(subscription = %chosen.subscription_id, "default subscription set");
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(id: &str, name: &str) -> Subscription {
        Subscription {
            id: format!("/subscriptions/{id}"),
            subscription_id: id.to_owned(),
            display_name: name.to_owned(),
            state: "Enabled".to_owned(),
            tenant_id: "t".to_owned(),
            is_default: false,
        }
    }

    #[test]
    fn find_by_id_or_name() {
        let all = vec![sub("A-1", "Dev"), sub("b-2", "Prod"), sub("c-3", "prod")];
        assert_eq!(find(&all, "a-1").unwrap().display_name, "Dev");
        assert_eq!(find(&all, "dev").unwrap().subscription_id, "A-1");
        let err = find(&all, "Prod").unwrap_err().to_string();
        assert!(err.contains("b-2") && err.contains("c-3"), "{err}");
        let err = find(&all, "Nope").unwrap_err().to_string();
        assert!(err.contains("Nope") && err.contains("Dev (A-1)"), "{err}");
    }
}
