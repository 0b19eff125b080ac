//! Where the toolkit keeps state between runs: a private config directory and files written
//! atomically, readable by their owner only, and safe to share between processes.
//!
//! The directory is `$STUDIO_CONFIG_DIR`, else `$XDG_CONFIG_HOME/studio`, else
//! `~/.config/studio`. It is created with mode 0700; files in it are written with mode 0600 by
//! writing a temporary file beside the target and renaming it over, so a crash or a failed write
//! leaves the old file intact. [`ConfigDir::lock`] takes an advisory lock (one lock file per
//! directory) for read-modify-write cycles across processes.
//!
//! ```
//! use studio_azure_auth::store::ConfigDir;
//!
//! let tmp = std::env::temp_dir().join(format!("studio-doc-{}", std::process::id()));
//! let dir = ConfigDir::at(&tmp)?;
//! {
//!     let _guard = dir.lock()?;
//!     dir.write_private("example.json", br#"{"hello":"world"}"#)?;
//! }
//! assert_eq!(dir.read("example.json")?.as_deref(), Some(&br#"{"hello":"world"}"#[..]));
//! # std::fs::remove_dir_all(&tmp).ok();
//! # Ok::<(), studio_azure_auth::Error>(())
//! ```

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::Error;

/// The environment variable that overrides the config directory.
pub const STUDIO_CONFIG_DIR: &str = "STUDIO_CONFIG_DIR";

/// The toolkit's private config directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigDir {
    path: PathBuf,
}

/// Holds the directory's advisory lock until dropped.
#[derive(Debug)]
pub struct LockGuard {
    file: File,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

impl ConfigDir {
    /// The directory from the environment (see the module docs), created if missing.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_lookup(|name| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned()))
    }

    /// Like [`ConfigDir::from_env`], with variables looked up through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let non_empty = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let path = if let Some(dir) = non_empty(STUDIO_CONFIG_DIR) {
            PathBuf::from(dir)
        } else if let Some(xdg) = non_empty("XDG_CONFIG_HOME") {
            Path::new(&xdg).join("studio")
        } else if let Some(home) = non_empty("HOME") {
            Path::new(&home).join(".config").join("studio")
        } else {
            return Err(Error::Store {
                path: PathBuf::new(),
                reason: format!("no config directory: set {STUDIO_CONFIG_DIR} or HOME"),
            });
        };
        Self::at(path)
    }

    /// The directory at `path`, created with mode 0700 if missing. An existing directory that
    /// others can read is tightened to 0700.
    pub fn at(path: impl Into<PathBuf>) -> Result<Self, Error> {
        let path = path.into();
        let err = |reason: String| Error::Store {
            path: path.clone(),
            reason,
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&path)
            .map_err(|e| err(e.to_string()))?;
        let meta = std::fs::metadata(&path).map_err(|e| err(e.to_string()))?;
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| err(e.to_string()))?;
        }
        Ok(Self { path })
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of `name` inside the directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Takes the directory's exclusive advisory lock, waiting for other processes.
    pub fn lock(&self) -> Result<LockGuard, Error> {
        let path = self.file(".lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| store_error(&path, e))?;
        file.lock().map_err(|e| store_error(&path, e))?;
        Ok(LockGuard { file })
    }

    /// Reads `name`; `None` if it does not exist.
    pub fn read(&self, name: &str) -> Result<Option<Vec<u8>>, Error> {
        let path = self.file(name);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(store_error(&path, e)),
        }
    }

    /// Writes `name` atomically with mode 0600.
    pub fn write_private(&self, name: &str, contents: &[u8]) -> Result<(), Error> {
        write_private_atomic(&self.file(name), contents)
    }

    /// Removes `name`; succeeds if it did not exist.
    pub fn remove(&self, name: &str) -> Result<(), Error> {
        let path = self.file(name);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(store_error(&path, e)),
        }
    }
}

/// Writes `path` atomically with mode 0600: a temporary file in the same directory, synced, then
/// renamed over the target. On any failure the previous file is left as it was.
pub fn write_private_atomic(path: &Path, contents: &[u8]) -> Result<(), Error> {
    let tmp = temporary_path(path);
    let result = (|| {
        let mut file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        // Tighten in case the temporary file already existed with wider permissions.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(store_error(path, e));
    }
    Ok(())
}

/// The temporary file [`write_private_atomic`] writes before renaming it over `path`: a hidden
/// sibling named after `path` and this process.
///
/// ```
/// let tmp = studio_azure_auth::store::temporary_path("/home/ada/.docker/config.json".as_ref());
/// assert_eq!(tmp.parent(), Some(std::path::Path::new("/home/ada/.docker")));
/// assert!(tmp.file_name().unwrap().to_string_lossy().starts_with(".config.json.tmp-"));
/// ```
pub fn temporary_path(path: &Path) -> PathBuf {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.join(format!(".{name}.tmp-{}", std::process::id()))
}

fn store_error(path: &Path, e: std::io::Error) -> Error {
    Error::Store {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("studio-store-{name}-{}", std::process::id()))
    }

    #[test]
    fn files_are_private_and_replaced_atomically() {
        let path = tmp("private");
        let dir = ConfigDir::at(&path).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o700
        );
        dir.write_private("a.json", b"one").unwrap();
        dir.write_private("a.json", b"two").unwrap();
        let meta = std::fs::metadata(dir.file("a.json")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(dir.read("a.json").unwrap().unwrap(), b"two");
        assert_eq!(dir.read("missing.json").unwrap(), None);
        dir.remove("a.json").unwrap();
        dir.remove("a.json").unwrap();
        std::fs::remove_dir_all(&path).unwrap();
    }

    #[test]
    fn a_failed_write_leaves_the_old_file() {
        let path = tmp("failed");
        let dir = ConfigDir::at(&path).unwrap();
        dir.write_private("a.json", b"old").unwrap();
        // A directory where the temporary file would go makes the write fail.
        let blocker = temporary_path(&dir.file("a.json"));
        std::fs::create_dir(&blocker).unwrap();
        assert!(dir.write_private("a.json", b"new").is_err());
        assert_eq!(dir.read("a.json").unwrap().unwrap(), b"old");
        std::fs::remove_dir_all(&path).unwrap();
    }

    #[test]
    fn the_directory_comes_from_the_environment_in_order() {
        let d =
            ConfigDir::from_lookup(|n| (n == "HOME").then(|| tmp("home").display().to_string()))
                .unwrap();
        assert!(d.path().ends_with(".config/studio"));
        let d = ConfigDir::from_lookup(|n| match n {
            STUDIO_CONFIG_DIR => Some(tmp("explicit").display().to_string()),
            "HOME" => Some("/nonexistent".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(d.path(), tmp("explicit"));
        assert!(ConfigDir::from_lookup(|_| None).is_err());
        std::fs::remove_dir_all(tmp("home")).ok();
        std::fs::remove_dir_all(tmp("explicit")).ok();
    }
}
