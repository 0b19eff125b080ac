//! Secrets in `Debug` output: every secret prints as `***`.
//!
//! A type that holds a secret (a client secret, a password, a private key, an access or
//! refresh token) writes its `Debug` by hand and shows [`Redacted`] where the secret would be,
//! so `{:?}` and `{:#?}` keep every other field and never the secret. `azure_core`'s `Secret`
//! prints as `Secret`; these impls print `***` instead, the same in every studio crate.
//!
//! ```
//! use std::fmt;
//!
//! use azure_core::credentials::Secret;
//! use studio_azure_auth::redact::{self, Redacted};
//!
//! struct Login {
//!     user: String,
//!     password: Secret,
//!     refresh_token: Option<Secret>,
//! }
//!
//! impl fmt::Debug for Login {
//!     fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
//!         f.debug_struct("Login")
//!             .field("user", &self.user)
//!             .field("password", &Redacted)
//!             .field("refresh_token", &Redacted::option(&self.refresh_token))
//!             .finish()
//!     }
//! }
//!
//! let login = Login {
//!     user: "ada".to_owned(),
//!     password: Secret::new("hunter2-password"),
//!     refresh_token: None,
//! };
//! assert_eq!(
//!     format!("{login:?}"),
//!     r#"Login { user: "ada", password: ***, refresh_token: None }"#
//! );
//! assert!(redact::debug_leaks(&login, &["hunter2-password"]).is_empty());
//! ```

use std::fmt;

use azure_core::credentials::AccessToken;

/// What a secret prints as.
pub const MASK: &str = "***";

/// Stands in for a secret in `Debug` (and `Display`) output: prints `***`.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Redacted;

impl Redacted {
    /// `Some(***)` or `None`: shows whether an optional secret is there, not what it is.
    pub fn option<T>(secret: &Option<T>) -> Option<Redacted> {
        secret.as_ref().map(|_| Redacted)
    }

    /// An [`AccessToken`] as `AccessToken { token: ***, expires_on: … }`.
    pub fn access_token(token: &AccessToken) -> impl fmt::Debug + '_ {
        RedactedAccessToken(token)
    }
}

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl fmt::Display for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

struct RedactedAccessToken<'a>(&'a AccessToken);

impl fmt::Debug for RedactedAccessToken<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &Redacted)
            .field("expires_on", &self.0.expires_on)
            .finish()
    }
}

/// Checks a `Debug` impl: formats `value` with `{:?}` and `{:#?}` and returns what is wrong
/// (an empty list when both show `***` and neither shows any of `secrets`). For tests.
///
/// ```
/// use studio_azure_auth::redact::{Redacted, debug_leaks};
///
/// assert!(debug_leaks(&("user", Redacted), &["hunter2"]).is_empty());
/// assert_eq!(
///     debug_leaks(&("user", "hunter2"), &["hunter2"]),
///     ["{:?} shows no ***", "{:?} shows secret #0", "{:#?} shows no ***", "{:#?} shows secret #0"]
/// );
/// ```
pub fn debug_leaks(value: &dyn fmt::Debug, secrets: &[&str]) -> Vec<String> {
    let mut problems = Vec::new();
    for (how, text) in [
        ("{:?}", format!("{value:?}")),
        ("{:#?}", format!("{value:#?}")),
    ] {
        if !text.contains(MASK) {
            problems.push(format!("{how} shows no {MASK}"));
        }
        for (i, secret) in secrets.iter().enumerate() {
            if text.contains(secret) {
                problems.push(format!("{how} shows secret #{i}"));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use azure_core::credentials::Secret;
    use time::OffsetDateTime;

    #[test]
    fn redacted_prints_the_mask() {
        assert_eq!(format!("{Redacted:?}"), "***");
        assert_eq!(format!("{Redacted:#?}"), "***");
        assert_eq!(Redacted.to_string(), "***");
        assert_eq!(
            format!("{:?}", Redacted::option(&Some(Secret::new("x")))),
            "Some(***)"
        );
        assert_eq!(format!("{:?}", Redacted::option::<Secret>(&None)), "None");
    }

    #[test]
    fn access_token_keeps_the_expiry() {
        let token = AccessToken::new("eyJ-access-token-value", OffsetDateTime::UNIX_EPOCH);
        let shown = format!("{:?}", Redacted::access_token(&token));
        assert!(
            shown.starts_with("AccessToken { token: ***, expires_on: 1970"),
            "{shown}"
        );
        assert!(
            debug_leaks(&Redacted::access_token(&token), &["eyJ-access-token-value"]).is_empty()
        );
    }

    #[test]
    fn debug_leaks_finds_a_shown_secret_and_a_missing_mask() {
        assert!(debug_leaks(&Redacted, &["s3cr3t"]).is_empty());
        let leaks = debug_leaks(&"s3cr3t", &["s3cr3t"]);
        assert_eq!(
            leaks,
            [
                "{:?} shows no ***",
                "{:?} shows secret #0",
                "{:#?} shows no ***",
                "{:#?} shows secret #0"
            ]
        );
    }
}
