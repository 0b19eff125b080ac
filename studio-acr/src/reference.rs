//! Image references: `registry[:port]/path[:tag][@digest]`, with docker's defaults.
//!
//! The grammar is the distribution project's (`docker/distribution/reference`):
//!
//! - The first path component is a registry host when it contains `.` or `:`, or is `localhost`;
//!   otherwise the registry is `docker.io`, and a single-component name on `docker.io` gets
//!   `library/` (`ubuntu` → `docker.io/library/ubuntu`).
//! - Path components are lower-case alphanumerics separated by `.`, `_`, `__` or runs of `-`;
//!   the whole name is at most 255 characters.
//! - A tag is `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`; a digest is `algorithm:hex` (`sha256` with 64
//!   lower-case hex digits, `sha512` with 128).
//! - With neither tag nor digest, the tag is `latest`.
//!
//! Errors say which part is wrong and where it starts.
//!
//! ```
//! use studio_acr::reference::Reference;
//!
//! let r: Reference = "studioml.azurecr.io/leaf-ai/studio-go-runner/runner:0.0.33-master-1elHeQ".parse()?;
//! assert_eq!(r.registry(), "studioml.azurecr.io");
//! assert_eq!(r.repository(), "leaf-ai/studio-go-runner/runner");
//! assert_eq!(r.tag(), Some("0.0.33-master-1elHeQ"));
//!
//! let ubuntu: Reference = "ubuntu".parse()?;
//! assert_eq!(ubuntu.to_string(), "docker.io/library/ubuntu:latest");
//!
//! let err = "Studio/Runner".parse::<Reference>().unwrap_err();
//! assert!(err.to_string().contains("lower-case"));
//! # Ok::<(), studio_acr::Error>(())
//! ```

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// The registry used when a reference names none.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// Where docker.io's API actually lives.
pub const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";
/// The tag used when a reference names neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
const MAX_NAME_LENGTH: usize = 255;

/// A parsed image reference.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl Reference {
    /// A reference from its parts, validated as a parsed one would be.
    pub fn new(
        registry: &str,
        repository: &str,
        tag: Option<&str>,
        digest: Option<&str>,
    ) -> Result<Self, Error> {
        let mut text = format!("{registry}/{repository}");
        if let Some(tag) = tag {
            text.push(':');
            text.push_str(tag);
        }
        if let Some(digest) = digest {
            text.push('@');
            text.push_str(digest);
        }
        let parsed: Reference = text.parse()?;
        if parsed.registry != registry {
            return Err(invalid(
                &text,
                0,
                "registry",
                format!("'{registry}' is not a registry host"),
            ));
        }
        Ok(parsed)
    }

    /// The registry host (and port), e.g. `myacr.azurecr.io` or `127.0.0.1:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The host to send API requests to (`registry-1.docker.io` for `docker.io`).
    pub fn api_host(&self) -> &str {
        if self.registry == DEFAULT_REGISTRY {
            DOCKER_HUB_API_HOST
        } else {
            &self.registry
        }
    }

    /// The repository path, e.g. `library/ubuntu`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if any (`latest` is filled in only when there is no digest either).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if any, e.g. `sha256:…`.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// What to ask the registry for: the digest if there is one, else the tag.
    pub fn manifest_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or(DEFAULT_TAG)
    }

    /// The same repository with another tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Result<Self, Error> {
        Self::new(&self.registry, &self.repository, Some(tag), None)
    }

    /// The same repository at a digest (the tag is kept for display).
    pub fn with_digest(&self, digest: &str) -> Result<Self, Error> {
        Self::new(
            &self.registry,
            &self.repository,
            self.tag.as_deref(),
            Some(digest),
        )
    }

    /// The same tag and digest in another repository of another (or the same) registry.
    pub fn in_repository(&self, registry: &str, repository: &str) -> Result<Self, Error> {
        Self::new(
            registry,
            repository,
            self.tag.as_deref(),
            self.digest.as_deref(),
        )
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

fn invalid(input: &str, at: usize, part: &str, reason: String) -> Error {
    Error::InvalidReference {
        input: input.to_owned(),
        at,
        part: part.to_owned(),
        reason,
    }
}

impl FromStr for Reference {
    type Err = Error;

    fn from_str(input: &str) -> Result<Self, Error> {
        if input.is_empty() {
            return Err(invalid(input, 0, "reference", "it is empty".to_owned()));
        }
        if let Some(i) = input.find(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(invalid(
                input,
                i,
                "reference",
                "it contains white space".to_owned(),
            ));
        }
        // Split off the digest, then the tag (a ':' after the last '/').
        let (rest, digest) = match input.split_once('@') {
            Some((rest, digest)) => {
                let at = rest.len() + 1;
                check_digest(input, at, digest)?;
                (rest, Some(digest.to_owned()))
            }
            None => (input, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].find(':') {
            Some(i) => {
                let colon = last_slash + i;
                let tag = &rest[colon + 1..];
                check_tag(input, colon + 1, tag)?;
                (&rest[..colon], Some(tag.to_owned()))
            }
            None => (rest, None),
        };
        if name.is_empty() {
            return Err(invalid(
                input,
                0,
                "repository",
                "the name is missing".to_owned(),
            ));
        }
        // The registry is the first component if it looks like a host.
        let (registry, path, path_at) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                check_host(input, first)?;
                (first.to_owned(), path.to_owned(), first.len() + 1)
            }
            _ => (DEFAULT_REGISTRY.to_owned(), name.to_owned(), 0),
        };
        check_path(input, path_at, &path)?;
        let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        if registry.len() + 1 + repository.len() > MAX_NAME_LENGTH {
            return Err(invalid(
                input,
                0,
                "repository",
                format!("the name is longer than {MAX_NAME_LENGTH} characters"),
            ));
        }
        let tag = match (&tag, &digest) {
            (None, None) => Some(DEFAULT_TAG.to_owned()),
            _ => tag,
        };
        Ok(Self {
            registry,
            repository,
            tag,
            digest,
        })
    }
}

fn check_host(input: &str, host: &str) -> Result<(), Error> {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) if !name.ends_with(']') && !name.contains(':') => (name, Some(port)),
        Some((name, port)) if name.ends_with(']') => (name, Some(port)),
        _ => (host, None),
    };
    let bad = |reason: &str| invalid(input, 0, "registry", format!("'{host}' {reason}"));
    if name.is_empty() {
        return Err(bad("has no host name"));
    }
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad("has a port that is not a number"));
    }
    if name.starts_with('[') {
        return if name.ends_with(']') {
            Ok(())
        } else {
            Err(bad("is not a valid IPv6 address"))
        };
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(bad("has an empty label"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(bad("may hold only letters, digits, '-' and '.'"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(bad("has a label that starts or ends with '-'"));
        }
    }
    Ok(())
}

fn check_path(input: &str, start: usize, path: &str) -> Result<(), Error> {
    let mut at = start;
    for component in path.split('/') {
        let fail =
            |offset: usize, reason: String| invalid(input, at + offset, "repository", reason);
        if component.is_empty() {
            return Err(fail(0, "a path component is empty".to_owned()));
        }
        if let Some(i) = component.find(|c: char| c.is_ascii_uppercase()) {
            return Err(fail(i, format!("'{component}' must be lower-case")));
        }
        if let Some(i) = component
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c)))
        {
            return Err(fail(
                i,
                format!(
                    "'{component}' may hold only a-z, 0-9 and the separators '.', '_', '__', '-'"
                ),
            ));
        }
        let bytes = component.as_bytes();
        if !bytes[0].is_ascii_alphanumeric() || !bytes[bytes.len() - 1].is_ascii_alphanumeric() {
            return Err(fail(
                0,
                format!("'{component}' must start and end with a letter or digit"),
            ));
        }
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if b.is_ascii_lowercase() || b.is_ascii_digit() {
                i += 1;
                continue;
            }
            // A separator: '.', '_', '__' or a run of '-'.
            let sep_start = i;
            match b {
                b'.' => i += 1,
                b'_' => {
                    i += 1;
                    if i < bytes.len() && bytes[i] == b'_' {
                        i += 1;
                    }
                }
                b'-' => {
                    while i < bytes.len() && bytes[i] == b'-' {
                        i += 1;
                    }
                }
                _ => {
                    return Err(fail(
                        i,
                        format!(
                            "'{component}' may hold only a-z, 0-9 and the separators '.', '_', '__', '-'"
                        ),
                    ));
                }
            }
            if i >= bytes.len() || !bytes[i].is_ascii_alphanumeric() {
                return Err(fail(
                    sep_start,
                    format!("'{component}' has separators in a row"),
                ));
            }
        }
        at += component.len() + 1;
    }
    Ok(())
}

/// Checks what may follow a repository in a manifest URL: a tag (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`)
/// or a digest (`algorithm:hex`). Tags given to a push are checked with this before anything
/// is sent.
///
/// ```
/// use studio_acr::reference::check_tag_or_digest;
///
/// assert!(check_tag_or_digest("0.0.33-master-1elHeQ").is_ok());
/// assert!(check_tag_or_digest("../latest").is_err());
/// ```
pub fn check_tag_or_digest(text: &str) -> Result<(), Error> {
    if text.contains(':') {
        check_digest(text, 0, text)
    } else {
        check_tag(text, 0, text)
    }
}

fn check_tag(input: &str, at: usize, tag: &str) -> Result<(), Error> {
    let bad = |reason: String| invalid(input, at, "tag", reason);
    if tag.is_empty() {
        return Err(bad("the tag after ':' is empty".to_owned()));
    }
    if tag.len() > 128 {
        return Err(bad(format!("'{tag}' is longer than 128 characters")));
    }
    let bytes = tag.as_bytes();
    if !(bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_') {
        return Err(bad(format!(
            "'{tag}' must start with a letter, digit or '_'"
        )));
    }
    if let Some(c) = tag
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '.' || *c == '-'))
    {
        return Err(bad(format!("'{tag}' may not contain '{c}'")));
    }
    Ok(())
}

/// Checks a digest string (`sha256:<64 hex>`, `sha512:<128 hex>`, or another registered form).
pub fn check_digest(input: &str, at: usize, digest: &str) -> Result<(), Error> {
    let bad = |reason: String| invalid(input, at, "digest", reason);
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return Err(bad(format!("'{digest}' is not algorithm:hex")));
    };
    let expected = match algorithm {
        "sha256" => Some(64),
        "sha512" => Some(128),
        _ => None,
    };
    if algorithm.is_empty()
        || !algorithm
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b))
    {
        return Err(bad(format!("'{algorithm}' is not a digest algorithm")));
    }
    match expected {
        Some(n) if hex.len() != n => Err(bad(format!(
            "a {algorithm} digest has {n} hex digits, not {}",
            hex.len()
        ))),
        _ if hex.is_empty()
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
        {
            Err(bad(format!("'{hex}' is not lower-case hex")))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(s: &str) -> (String, String, Option<String>, Option<String>) {
        let r: Reference = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
        (
            r.registry().to_owned(),
            r.repository().to_owned(),
            r.tag().map(str::to_owned),
            r.digest().map(str::to_owned),
        )
    }

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn docker_defaults() {
        assert_eq!(
            parts("ubuntu"),
            (
                "docker.io".into(),
                "library/ubuntu".into(),
                Some("latest".into()),
                None
            )
        );
        assert_eq!(
            parts("leafai/runner:1"),
            (
                "docker.io".into(),
                "leafai/runner".into(),
                Some("1".into()),
                None
            )
        );
        assert_eq!(
            parts("localhost/app"),
            (
                "localhost".into(),
                "app".into(),
                Some("latest".into()),
                None
            )
        );
        assert_eq!(
            parts("127.0.0.1:5000/a/b/c:v1"),
            (
                "127.0.0.1:5000".into(),
                "a/b/c".into(),
                Some("v1".into()),
                None
            )
        );
        assert_eq!(
            parts(&format!("myacr.azurecr.io/app@{D}")),
            (
                "myacr.azurecr.io".into(),
                "app".into(),
                None,
                Some(D.into())
            )
        );
        assert_eq!(
            parts(&format!("myacr.azurecr.io/app:v1@{D}")).2,
            Some("v1".into())
        );
        assert_eq!(parts("[::1]:5000/app:x").0, "[::1]:5000");
        assert_eq!(parts("x/a__b.c-d---e_f").1, "x/a__b.c-d---e_f");
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "docker.io/library/ubuntu:latest",
            "myacr.azurecr.io/a/b:0.0.33-master-1elHeQ",
            &format!("h:1/a@{D}"),
        ] {
            assert_eq!(s.parse::<Reference>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn errors_point_at_the_bad_part() {
        let cases = [
            ("", "reference", "empty"),
            ("Ubuntu", "repository", "lower-case"),
            ("myacr.azurecr.io/App", "repository", "lower-case"),
            ("app:", "tag", "empty"),
            ("app:-x", "tag", "must start"),
            ("app:a+b", "tag", "'+'"),
            ("app@sha256:abc", "digest", "64 hex"),
            ("app@md5", "digest", "algorithm:hex"),
            (
                &format!("app@{}", D.to_uppercase().replace("SHA256", "sha256")),
                "digest",
                "lower-case hex",
            ),
            ("a//b", "repository", "empty"),
            ("a..b", "repository", "in a row"),
            ("-a", "repository", "start and end"),
            ("my_host.io:port/x", "registry", "port"),
            ("a b", "reference", "white space"),
            ("a$/b", "repository", "may hold only"),
        ];
        for (input, part, says) in cases {
            match input.parse::<Reference>() {
                Err(Error::InvalidReference {
                    part: p, reason, ..
                }) => {
                    assert_eq!(p, part, "{input}: {reason}");
                    assert!(reason.contains(says), "{input}: {reason}");
                }
                other => panic!("{input}: {other:?}"),
            }
        }
        let long = format!("a/{}", "b".repeat(260));
        assert!(
            long.parse::<Reference>()
                .unwrap_err()
                .to_string()
                .contains("255")
        );
        let tag = format!("a:{}", "t".repeat(129));
        assert!(tag.parse::<Reference>().is_err());
    }

    #[test]
    fn error_position_points_into_the_input() {
        let Err(Error::InvalidReference { at, .. }) =
            "myacr.azurecr.io/ok/Bad".parse::<Reference>()
        else {
            panic!()
        };
        assert_eq!(&"myacr.azurecr.io/ok/Bad"[at..], "Bad");
    }
}
