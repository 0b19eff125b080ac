//! Registry pull secrets: the `kubernetes.io/dockerconfigjson` secret that
//! `kubectl create secret docker-registry` writes, byte for byte in its data.
//!
//! ```
//! use studio_runner_deploy::secret::PullSecret;
//!
//! let secret = PullSecret::new("studioml-go-docker-key", "studioml.azurecr.io", "studioml", "admin-password".into())
//!     .to_secret(Some("default"));
//! assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/dockerconfigjson"));
//! assert!(!format!("{:?}", PullSecret::acr_refresh_token("k", "a.azurecr.io", "token".into())).contains("token\""));
//! ```

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::ObjectMeta;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use studio_azure_auth::redact::Redacted;

/// The user name ACR uses for a refresh (identity) token.
pub const ACR_REFRESH_TOKEN_USER: &str = "00000000-0000-0000-0000-000000000000";
/// The data key of a `kubernetes.io/dockerconfigjson` secret.
pub const DOCKER_CONFIG_JSON_KEY: &str = ".dockerconfigjson";
/// The secret type.
pub const DOCKER_CONFIG_JSON_TYPE: &str = "kubernetes.io/dockerconfigjson";

/// Registry credentials for a pull secret.
#[derive(Clone)]
pub struct PullSecret {
    /// The secret's name (e.g. `studioml-go-docker-key`).
    pub name: String,
    /// The registry (`--docker-server`), e.g. `myacr.azurecr.io`.
    pub server: String,
    /// The user name (an ACR admin user, or [`ACR_REFRESH_TOKEN_USER`]).
    pub username: String,
    /// The password or token.
    pub password: SecretString,
    /// `--docker-email`, if any.
    pub email: Option<String>,
}

impl fmt::Debug for PullSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PullSecret")
            .field("name", &self.name)
            .field("server", &self.server)
            .field("username", &self.username)
            .field("password", &Redacted)
            .field("email", &self.email)
            .finish()
    }
}

/// One `auths` entry, in the field order kubectl writes.
#[derive(Serialize)]
struct Entry<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    username: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    password: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    email: &'a str,
    #[serde(skip_serializing_if = "String::is_empty")]
    auth: String,
}

#[derive(Serialize)]
struct DockerConfigJson<'a> {
    auths: BTreeMap<&'a str, Entry<'a>>,
}

impl PullSecret {
    /// Credentials for `server` (an ACR admin user, a repository token, any registry login).
    pub fn new(name: &str, server: &str, username: &str, password: SecretString) -> Self {
        Self {
            name: name.to_owned(),
            server: server.to_owned(),
            username: username.to_owned(),
            password,
            email: None,
        }
    }

    /// An ACR refresh token as the password of ACR's token user.
    pub fn acr_refresh_token(name: &str, server: &str, token: SecretString) -> Self {
        Self::new(name, server, ACR_REFRESH_TOKEN_USER, token)
    }

    /// The `.dockerconfigjson` document: `{"auths":{server:{username,password,email,auth}}}`.
    pub fn docker_config_json(&self) -> Vec<u8> {
        let password = self.password.expose_secret();
        let auth = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{password}", self.username));
        let config = DockerConfigJson {
            auths: [(
                self.server.as_str(),
                Entry {
                    username: &self.username,
                    password,
                    email: self.email.as_deref().unwrap_or_default(),
                    auth,
                },
            )]
            .into(),
        };
        serde_json::to_vec(&config).unwrap_or_default()
    }

    /// The Secret object (in `namespace`, or the client's default when `None`).
    pub fn to_secret(&self, namespace: Option<&str>) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: namespace.map(str::to_owned),
                ..Default::default()
            },
            data: Some(
                [(
                    DOCKER_CONFIG_JSON_KEY.to_owned(),
                    ByteString(self.docker_config_json()),
                )]
                .into(),
            ),
            type_: Some(DOCKER_CONFIG_JSON_TYPE.to_owned()),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_json_as_kubectl_writes_it() {
        let s = PullSecret::new("k", "r.example", "u", "p".to_owned().into());
        assert_eq!(
            String::from_utf8(s.docker_config_json()).unwrap(),
            r#"{"auths":{"r.example":{"username":"u","password":"p","auth":"dTpw"}}}"#
        );
        let mut with_email = s.clone();
        with_email.email = Some("a@b".into());
        assert!(
            String::from_utf8(with_email.docker_config_json())
                .unwrap()
                .contains(r#""password":"p","email":"a@b","auth""#)
        );
        assert!(!format!("{s:?}").contains("\"p\""));
    }

    #[test]
    fn debug_masks_the_password_and_keeps_the_rest() {
        let s = PullSecret::new(
            "studioml-go-docker-key",
            "studioml.azurecr.io",
            "studioml",
            "admin-password-value".to_owned().into(),
        );
        let leaks = studio_azure_auth::redact::debug_leaks(&s, &["admin-password-value"]);
        assert!(leaks.is_empty(), "{leaks:?}");
        assert_eq!(
            format!("{s:?}"),
            r#"PullSecret { name: "studioml-go-docker-key", server: "studioml.azurecr.io", username: "studioml", password: ***, email: None }"#
        );
        let t = PullSecret::acr_refresh_token("k", "a.azurecr.io", "refresh-token-value".into());
        let leaks = studio_azure_auth::redact::debug_leaks(&t, &["refresh-token-value"]);
        assert!(leaks.is_empty(), "{leaks:?}");
    }
}
