//! Docker's `config.json`: where docker, skopeo, podman and kubectl look for registry logins.
//!
//! The file is `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. Reading follows
//! docker: a per-registry `credHelpers` entry wins, then a global `credsStore`, then `auths`
//! (`auth` is base64 `user:password`; `identitytoken` is an OAuth2 refresh token). Helpers are
//! `docker-credential-<name>` programs speaking docker's credential-helper protocol (`get` /
//! `store` with JSON on stdin and stdout).
//!
//! [`DockerConfig::store_acr_login`] writes what `az acr login` leaves behind: user
//! `00000000-0000-0000-0000-000000000000` with the ACR refresh token as `identitytoken`, in a
//! 0600 file written atomically, keeping every other entry.
//!
//! ```no_run
//! use studio_acr::docker_config::DockerConfig;
//!
//! let config = DockerConfig::load(&DockerConfig::default_path()?)?;
//! let credential = config.credential_for("myacr.azurecr.io")?;
//! println!("{credential:?}"); // secrets print as ***
//! # Ok::<(), studio_acr::Error>(())
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use azure_core::credentials::Secret;
use base64::Engine;
use serde_json::{Map, Value, json};

use crate::Error;
use crate::auth::{ACR_REFRESH_TOKEN_USER, RegistryCredential};

/// A loaded `config.json` (unknown keys are kept as they were).
#[derive(Clone)]
pub struct DockerConfig {
    path: PathBuf,
    raw: Map<String, Value>,
    helper_dir: Option<PathBuf>,
}

impl std::fmt::Debug for DockerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerConfig")
            .field("path", &self.path)
            .field("registries", &self.registries())
            .finish_non_exhaustive()
    }
}

fn config_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::DockerConfig {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

impl DockerConfig {
    /// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
    pub fn default_path() -> Result<PathBuf, Error> {
        Self::path_from(|name| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned()))
    }

    /// [`DockerConfig::default_path`] with variables looked up through `lookup`.
    pub fn path_from(lookup: impl Fn(&str) -> Option<String>) -> Result<PathBuf, Error> {
        if let Some(dir) = lookup("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
            return Ok(Path::new(&dir).join("config.json"));
        }
        match lookup("HOME").filter(|h| !h.is_empty()) {
            Some(home) => Ok(Path::new(&home).join(".docker").join("config.json")),
            None => Err(config_error(
                Path::new("config.json"),
                "neither DOCKER_CONFIG nor HOME is set",
            )),
        }
    }

    /// Loads `path`; a missing file is an empty configuration.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let raw = match std::fs::read(path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Map::new(),
            Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(map)) => map,
                Ok(_) => return Err(config_error(path, "the file is not a JSON object")),
                Err(e) => return Err(config_error(path, format!("not valid JSON: {e}"))),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
            Err(e) => return Err(config_error(path, e.to_string())),
        };
        Ok(Self {
            path: path.to_owned(),
            raw,
            helper_dir: None,
        })
    }

    /// Looks for `docker-credential-*` helpers in `dir` instead of `PATH`.
    pub fn with_helper_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.helper_dir = Some(dir.into());
        self
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The registries that have an `auths` entry.
    pub fn registries(&self) -> Vec<String> {
        self.auths()
            .map(|a| a.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn auths(&self) -> Option<&Map<String, Value>> {
        self.raw.get("auths").and_then(Value::as_object)
    }

    /// The credential docker would use for `host`, if any.
    pub fn credential_for(&self, host: &str) -> Result<Option<RegistryCredential>, Error> {
        let helper = self
            .raw
            .get("credHelpers")
            .and_then(Value::as_object)
            .and_then(|h| h.get(host))
            .or_else(|| self.raw.get("credsStore"))
            .and_then(Value::as_str);
        if let Some(helper) = helper {
            return self.helper_get(helper, host);
        }
        let Some(entry) = self.auth_entry(host) else {
            return Ok(None);
        };
        let text = |k: &str| {
            entry
                .get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        if let Some(token) = text("identitytoken") {
            return Ok(Some(RegistryCredential::RefreshToken(Secret::new(
                token.to_owned(),
            ))));
        }
        if let Some(auth) = text("auth") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| {
                    config_error(&self.path, format!("the 'auth' of {host} is not base64"))
                })?;
            let decoded = String::from_utf8(decoded).map_err(|_| {
                config_error(&self.path, format!("the 'auth' of {host} is not text"))
            })?;
            let (user, pass) = decoded.split_once(':').ok_or_else(|| {
                config_error(
                    &self.path,
                    format!("the 'auth' of {host} is not user:password"),
                )
            })?;
            return Ok(Some(RegistryCredential::basic(user, pass)));
        }
        if let (Some(user), Some(pass)) = (text("username"), text("password")) {
            return Ok(Some(RegistryCredential::basic(user, pass)));
        }
        Ok(None)
    }

    /// The `auths` entry for `host`, trying the spellings docker accepts.
    fn auth_entry(&self, host: &str) -> Option<&Map<String, Value>> {
        let auths = self.auths()?;
        let mut keys = vec![
            host.to_owned(),
            format!("https://{host}"),
            format!("https://{host}/"),
            format!("http://{host}"),
        ];
        if host == "docker.io" || host == "registry-1.docker.io" || host == "index.docker.io" {
            keys.push("https://index.docker.io/v1/".to_owned());
        }
        keys.iter()
            .find_map(|k| auths.get(k))
            .and_then(Value::as_object)
    }

    fn helper_program(&self, helper: &str) -> Result<PathBuf, Error> {
        if helper.is_empty()
            || !helper
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            return Err(config_error(
                &self.path,
                format!("'{helper}' is not a credential helper name"),
            ));
        }
        let name = format!("docker-credential-{helper}");
        Ok(match &self.helper_dir {
            Some(dir) => dir.join(name),
            None => PathBuf::from(name),
        })
    }

    fn helper_get(&self, helper: &str, host: &str) -> Result<Option<RegistryCredential>, Error> {
        let program = self.helper_program(helper)?;
        let output = run_helper(&program, "get", host.as_bytes())?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr).to_lowercase();
            let stdout = String::from_utf8_lossy(&output.stdout).to_lowercase();
            if stderr.contains("credentials not found") || stdout.contains("credentials not found")
            {
                return Ok(None);
            }
            return Err(Error::CredentialHelper {
                helper: program.display().to_string(),
                reason: format!("'get' failed ({})", output.status),
            });
        }
        let reply: Value =
            serde_json::from_slice(&output.stdout).map_err(|_| Error::CredentialHelper {
                helper: program.display().to_string(),
                reason: "'get' did not print JSON".to_owned(),
            })?;
        let user = reply
            .get("Username")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let secret = reply
            .get("Secret")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if secret.is_empty() {
            return Ok(None);
        }
        if user == "<token>" {
            return Ok(Some(RegistryCredential::RefreshToken(Secret::new(
                secret.to_owned(),
            ))));
        }
        Ok(Some(RegistryCredential::basic(user, secret)))
    }

    /// Records an ACR login for `host` as `az acr login` does, and saves the file. With a
    /// `credsStore` configured, the secret goes to that helper instead of the file.
    pub fn store_acr_login(&mut self, host: &str, refresh_token: &Secret) -> Result<(), Error> {
        if let Some(store) = self
            .raw
            .get("credsStore")
            .and_then(Value::as_str)
            .map(str::to_owned)
        {
            let program = self.helper_program(&store)?;
            let input = serde_json::to_vec(&json!({
                "ServerURL": host, "Username": ACR_REFRESH_TOKEN_USER, "Secret": refresh_token.secret()
            }))
            .map_err(|e| config_error(&self.path, e.to_string()))?;
            let output = run_helper(&program, "store", &input)?;
            if !output.status.success() {
                return Err(Error::CredentialHelper {
                    helper: program.display().to_string(),
                    reason: format!("'store' failed ({})", output.status),
                });
            }
            // docker leaves an empty entry so `docker login` state shows the registry.
            self.auths_mut().insert(host.to_owned(), json!({}));
        } else {
            let auth = base64::engine::general_purpose::STANDARD
                .encode(format!("{ACR_REFRESH_TOKEN_USER}:"));
            self.auths_mut().insert(
                host.to_owned(),
                json!({ "auth": auth, "identitytoken": refresh_token.secret() }),
            );
        }
        self.save()
    }

    /// Removes `host`'s entry (`docker logout`) and saves the file.
    pub fn remove(&mut self, host: &str) -> Result<bool, Error> {
        let removed = self.auths_mut().remove(host).is_some();
        self.save()?;
        Ok(removed)
    }

    fn auths_mut(&mut self) -> &mut Map<String, Value> {
        let entry = self
            .raw
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        match entry {
            Value::Object(map) => map,
            _ => unreachable!("made an object just above"),
        }
    }

    /// Writes the file atomically with mode 0600 (its directory 0700 if created).
    pub fn save(&self) -> Result<(), Error> {
        if let Some(dir) = self.path.parent() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| config_error(&self.path, e.to_string()))?;
        }
        let bytes = serde_json::to_vec_pretty(&Value::Object(self.raw.clone()))
            .map_err(|e| config_error(&self.path, e.to_string()))?;
        studio_azure_auth::store::write_private_atomic(&self.path, &bytes)?;
        Ok(())
    }
}

fn run_helper(program: &Path, verb: &str, input: &[u8]) -> Result<std::process::Output, Error> {
    let helper_error = |reason: String| Error::CredentialHelper {
        helper: program.display().to_string(),
        reason,
    };
    let mut child = Command::new(program)
        .arg(verb)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| helper_error(format!("cannot run it: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input)
            .map_err(|e| helper_error(format!("cannot write to it: {e}")))?;
    }
    child
        .wait_with_output()
        .map_err(|e| helper_error(format!("it did not finish: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tmp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("studio-dockercfg-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn reads_auths_in_every_spelling() {
        let dir = tmp("read");
        let path = dir.join("config.json");
        let basic = base64::engine::general_purpose::STANDARD.encode("admin:pa:ss");
        std::fs::write(
            &path,
            json!({"auths": {
                "a.example": {"auth": basic},
                "https://b.example": {"identitytoken": "refresh-1"},
                "https://index.docker.io/v1/": {"username": "u", "password": "p"},
            }, "unknownKey": 1})
            .to_string(),
        )
        .unwrap();
        let config = DockerConfig::load(&path).unwrap();
        match config.credential_for("a.example").unwrap() {
            Some(RegistryCredential::Basic { username, password }) => {
                assert_eq!((username.as_str(), password.secret()), ("admin", "pa:ss"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            config.credential_for("b.example").unwrap(),
            Some(RegistryCredential::RefreshToken(_))
        ));
        assert!(matches!(
            config.credential_for("docker.io").unwrap(),
            Some(RegistryCredential::Basic { .. })
        ));
        assert!(config.credential_for("c.example").unwrap().is_none());
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn an_acr_login_is_written_privately_and_keeps_other_entries() {
        let dir = tmp("write");
        let path = dir.join("docker").join("config.json");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            &path,
            r#"{"auths":{"other.example":{"auth":"dTpw"}},"psFormat":"x"}"#,
        )
        .unwrap();
        let mut config = DockerConfig::load(&path).unwrap();
        config
            .store_acr_login(
                "myacr.azurecr.io",
                &Secret::new("the-refresh-token".to_owned()),
            )
            .unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let written: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(written["psFormat"], "x");
        assert_eq!(written["auths"]["other.example"]["auth"], "dTpw");
        let entry = &written["auths"]["myacr.azurecr.io"];
        assert_eq!(entry["identitytoken"], "the-refresh-token");
        let user = base64::engine::general_purpose::STANDARD
            .decode(entry["auth"].as_str().unwrap())
            .unwrap();
        assert_eq!(user, format!("{ACR_REFRESH_TOKEN_USER}:").into_bytes());
        let again = DockerConfig::load(&path).unwrap();
        assert!(matches!(
            again.credential_for("myacr.azurecr.io").unwrap(),
            Some(RegistryCredential::RefreshToken(_))
        ));
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn credential_helpers_speak_dockers_protocol() {
        let dir = tmp("helper");
        let helper = dir.join("docker-credential-studiotest");
        // A helper as docker-credential-helpers implements the protocol: `get` reads the server
        // URL on stdin and prints {ServerURL, Username, Secret}; unknown servers fail with
        // "credentials not found in native keychain".
        std::fs::write(
            &helper,
            "#!/bin/sh\nread server\nif [ \"$1\" = get ] && [ \"$server\" = known.example ]; then\n  printf '{\"ServerURL\":\"known.example\",\"Username\":\"<token>\",\"Secret\":\"id-token\"}'\nelse\n  echo 'credentials not found in native keychain' >&2; exit 1\nfi\n",
        )
        .unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.join("config.json");
        std::fs::write(
            &path,
            r#"{"credHelpers":{"known.example":"studiotest","other.example":"studiotest"}}"#,
        )
        .unwrap();
        let config = DockerConfig::load(&path).unwrap().with_helper_dir(&dir);
        assert!(matches!(
            config.credential_for("known.example").unwrap(),
            Some(RegistryCredential::RefreshToken(_))
        ));
        assert!(config.credential_for("other.example").unwrap().is_none());
        let bad = DockerConfig::load(&path)
            .unwrap()
            .with_helper_dir(dir.join("nowhere"));
        let err = bad.credential_for("known.example").unwrap_err().to_string();
        assert!(err.contains("docker-credential-studiotest"), "{err}");
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn broken_files_name_the_problem() {
        let dir = tmp("broken");
        let path = dir.join("config.json");
        std::fs::write(&path, "{not json").unwrap();
        let err = DockerConfig::load(&path).unwrap_err().to_string();
        assert!(err.contains("config.json") && err.contains("JSON"), "{err}");
        assert_eq!(
            DockerConfig::path_from(|v| (v == "DOCKER_CONFIG").then(|| "/x".into())).unwrap(),
            PathBuf::from("/x/config.json")
        );
        std::fs::remove_dir_all(dir).ok();
    }
}
