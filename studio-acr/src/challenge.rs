//! `WWW-Authenticate` challenges (RFC 9110 §11.6.1), as registries send them.
//!
//! A header may hold several challenges separated by commas; each is a scheme followed by
//! either a token68 or `name=value` parameters whose values are tokens or quoted strings
//! (with `\` escapes). Scheme and parameter names are case-insensitive.
//!
//! ```
//! use studio_acr::challenge::{Challenge, parse};
//!
//! let header = r#"Bearer realm="https://myacr.azurecr.io/oauth2/token",service="myacr.azurecr.io",scope="repository:app:pull,push""#;
//! let challenges = parse(header)?;
//! assert_eq!(challenges[0].scheme, "bearer");
//! assert_eq!(challenges[0].param("realm"), Some("https://myacr.azurecr.io/oauth2/token"));
//! assert_eq!(challenges[0].param("scope"), Some("repository:app:pull,push"));
//! # Ok::<(), studio_acr::Error>(())
//! ```

use crate::Error;

/// One challenge: a scheme (lower-cased) and its parameters (names lower-cased).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme, lower-cased: `bearer`, `basic`, ….
    pub scheme: String,
    /// A token68 instead of parameters, if the challenge has one.
    pub token68: Option<String>,
    /// Parameters in order, names lower-cased.
    pub params: Vec<(String, String)>,
}

impl Challenge {
    /// The value of parameter `name` (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The scopes asked for (`scope` may list several, separated by spaces).
    pub fn scopes(&self) -> Vec<&str> {
        self.param("scope")
            .map(|s| s.split(' ').filter(|s| !s.is_empty()).collect())
            .unwrap_or_default()
    }

    /// Whether this is a Bearer challenge.
    pub fn is_bearer(&self) -> bool {
        self.scheme == "bearer"
    }

    /// Whether this is a Basic challenge.
    pub fn is_basic(&self) -> bool {
        self.scheme == "basic"
    }
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
    text: &'a str,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

impl<'a> Cursor<'a> {
    fn skip_ws(&mut self) {
        while self.i < self.s.len() && (self.s[self.i] == b' ' || self.s[self.i] == b'\t') {
            self.i += 1;
        }
    }
    fn skip_ws_commas(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b',') {
            self.i += 1;
        }
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn token(&mut self) -> &'a str {
        let start = self.i;
        while self.i < self.s.len() && is_tchar(self.s[self.i]) {
            self.i += 1;
        }
        &self.text[start..self.i]
    }
    fn error(&self, what: &str) -> Error {
        Error::InvalidChallenge(format!(
            "{what} at column {} of '{}'",
            self.i + 1,
            self.text
        ))
    }
    fn quoted(&mut self) -> Result<String, Error> {
        // At the opening quote.
        self.i += 1;
        let mut out = Vec::new();
        while self.i < self.s.len() {
            match self.s[self.i] {
                b'"' => {
                    self.i += 1;
                    return String::from_utf8(out)
                        .map_err(|_| self.error("a quoted string is not UTF-8"));
                }
                b'\\' if self.i + 1 < self.s.len() => {
                    out.push(self.s[self.i + 1]);
                    self.i += 2;
                }
                b => {
                    out.push(b);
                    self.i += 1;
                }
            }
        }
        Err(self.error("a quoted string is not closed"))
    }
}

/// Parses a `WWW-Authenticate` header value into its challenges.
pub fn parse(header: &str) -> Result<Vec<Challenge>, Error> {
    let mut c = Cursor {
        s: header.as_bytes(),
        i: 0,
        text: header,
    };
    let mut challenges: Vec<Challenge> = Vec::new();
    loop {
        c.skip_ws_commas();
        if c.peek().is_none() {
            break;
        }
        let scheme = c.token();
        if scheme.is_empty() {
            return Err(c.error("expected an authentication scheme"));
        }
        let mut challenge = Challenge {
            scheme: scheme.to_ascii_lowercase(),
            token68: None,
            params: Vec::new(),
        };
        // Parameters (or one token68) until the next scheme.
        let mut first = true;
        loop {
            let before = c.i;
            c.skip_ws_commas();
            let saw_comma = header[before..c.i].contains(',');
            if c.peek().is_none() {
                break;
            }
            let start = c.i;
            let name = c.token();
            if name.is_empty() {
                return Err(c.error("unexpected character"));
            }
            c.skip_ws();
            if c.peek() == Some(b'=') {
                let eq_start = c.i;
                while c.peek() == Some(b'=') {
                    c.i += 1;
                }
                let eq_end = c.i;
                c.skip_ws();
                match (eq_end - eq_start, c.peek()) {
                    (1, Some(b'"')) => {
                        let value = c.quoted()?;
                        challenge.params.push((name.to_ascii_lowercase(), value));
                    }
                    (1, Some(b)) if is_tchar(b) => {
                        let value = c.token().to_owned();
                        challenge.params.push((name.to_ascii_lowercase(), value));
                    }
                    _ if first && !saw_comma => {
                        challenge.token68 = Some(header[start..eq_end].to_owned());
                    }
                    _ => return Err(c.error("a parameter has no value")),
                }
            } else if first && !saw_comma {
                challenge.token68 = Some(name.to_owned());
            } else {
                // A bare token after a comma: the next challenge's scheme.
                c.i = start;
                break;
            }
            first = false;
        }
        challenges.push(challenge);
    }
    if challenges.is_empty() {
        return Err(Error::InvalidChallenge("the header is empty".to_owned()));
    }
    Ok(challenges)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acr_and_distribution_challenges() {
        let c = parse(r#"Bearer realm="https://127.0.0.1:5001/oauth2/token",service="127.0.0.1:5000",scope="repository:demo/app:pull,push",error="insufficient_scope""#).unwrap();
        assert_eq!(c.len(), 1);
        assert!(c[0].is_bearer());
        assert_eq!(c[0].param("service"), Some("127.0.0.1:5000"));
        assert_eq!(c[0].param("ERROR"), Some("insufficient_scope"));
        let c = parse(r#"Basic realm="studio-test""#).unwrap();
        assert!(c[0].is_basic());
        assert_eq!(c[0].param("realm"), Some("studio-test"));
    }

    #[test]
    fn several_challenges_and_quoting() {
        let c = parse(r#"Basic realm="a, b", Bearer realm="https://x/token", service=x, scope="repository:a:pull repository:b:pull""#).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].param("realm"), Some("a, b"));
        assert_eq!(c[1].scheme, "bearer");
        assert_eq!(c[1].param("service"), Some("x"));
        assert_eq!(
            c[1].scopes(),
            vec!["repository:a:pull", "repository:b:pull"]
        );
        let c = parse(r#"Bearer realm="say \"hi\"""#).unwrap();
        assert_eq!(c[0].param("realm"), Some(r#"say "hi""#));
        let c = parse("Negotiate abc123==, Basic realm=r").unwrap();
        assert_eq!(c[0].token68.as_deref(), Some("abc123=="));
        assert_eq!(c[1].param("realm"), Some("r"));
        let c = parse("Bearer").unwrap();
        assert_eq!((c[0].scheme.as_str(), c[0].params.len()), ("bearer", 0));
    }

    #[test]
    fn broken_headers_are_errors() {
        for bad in [
            "",
            "   ",
            r#"Bearer realm="unclosed"#,
            r#"Bearer realm="x", scope="#,
            "Bearer @@@",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should fail");
        }
    }
}
