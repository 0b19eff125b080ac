//! Local checks of names before anything is sent: registry names (ACR's rule) and the path
//! segments that go into ARM URLs.

use crate::Error;

/// The shortest registry name ACR accepts.
pub const REGISTRY_NAME_MIN_LEN: usize = 5;
/// The longest registry name ACR accepts.
pub const REGISTRY_NAME_MAX_LEN: usize = 50;

/// Checks a registry name against ACR's rule: 5 to 50 characters, letters `a-z`, `A-Z` and
/// digits `0-9` only. The error says what is wrong (length, and the first character that is
/// not allowed).
///
/// ```
/// use studio_acr::management::validate_registry_name;
///
/// assert!(validate_registry_name("studioml").is_ok());
/// let err = validate_registry_name("my-registry").unwrap_err();
/// assert!(err.to_string().contains("'-'"));
/// ```
pub fn validate_registry_name(name: &str) -> Result<(), Error> {
    let mut problems = Vec::new();
    let len = name.chars().count();
    if !(REGISTRY_NAME_MIN_LEN..=REGISTRY_NAME_MAX_LEN).contains(&len) {
        problems.push(format!(
            "a registry name must be {REGISTRY_NAME_MIN_LEN} to {REGISTRY_NAME_MAX_LEN} characters long, this one has {len}"
        ));
    }
    if let Some((at, c)) = name
        .chars()
        .enumerate()
        .find(|(_, c)| !c.is_ascii_alphanumeric())
    {
        problems.push(format!(
            "a registry name may hold only letters and digits (a-z, A-Z, 0-9); {c:?} at position {} is not allowed",
            at + 1
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::InvalidRegistryName {
            name: name.to_owned(),
            reason: problems.join("; "),
        })
    }
}

/// Checks that `value` can be one segment of an ARM path: not empty, no `/`, `?`, `#` or `%`
/// (which would change the URL), no control characters.
pub(crate) fn check_segment(what: &str, value: &str) -> Result<(), Error> {
    let reason = if value.is_empty() {
        Some("it is empty".to_owned())
    } else {
        value
            .chars()
            .find(|c| matches!(c, '/' | '?' | '#' | '%' | '\\') || c.is_control())
            .map(|c| format!("{c:?} cannot appear in an ARM path segment"))
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(Error::InvalidArgument {
            what: what.to_owned(),
            value: value.to_owned(),
            reason,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(name: &str) -> String {
        match validate_registry_name(name) {
            Err(Error::InvalidRegistryName { name: n, reason }) => {
                assert_eq!(n, name);
                reason
            }
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn names_of_5_to_50_letters_and_digits_pass() {
        for ok in ["abcde", "myRegistry", "STUDIO2026", &"a".repeat(50)] {
            validate_registry_name(ok).unwrap();
        }
    }

    #[test]
    fn bad_names_say_why() {
        assert!(reason("ab").contains("5 to 50 characters long, this one has 2"));
        assert!(reason("").contains("this one has 0"));
        assert!(reason(&"a".repeat(51)).contains("this one has 51"));
        let r = reason("my-registry");
        assert!(r.contains("'-' at position 3"), "{r}");
        assert!(!r.contains("characters long"), "{r}");
        let r = reason("a_b");
        assert!(r.contains("characters long") && r.contains("'_'"), "{r}");
        assert!(reason("regístry").contains("'í'"));
        let err = validate_registry_name("ab").unwrap_err().to_string();
        assert!(err.starts_with("invalid registry name 'ab': "), "{err}");
    }

    #[test]
    fn path_segments_refuse_what_would_change_the_url() {
        check_segment("resource group name", "my-resource_group(1).x").unwrap();
        for bad in ["", "a/b", "a?b", "a#b", "a%2Fb", "a\nb"] {
            assert!(
                matches!(
                    check_segment("resource group name", bad),
                    Err(Error::InvalidArgument { .. })
                ),
                "{bad:?}"
            );
        }
    }
}
