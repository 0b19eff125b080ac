//! The `_output/<dnsPrefix>/` tree: private, written atomically, never clobbered by accident.
//!
//! Directories are created with mode 0700 and files with mode 0600 (they hold the SSH private
//! key and the service principal's secret). A new tree is assembled in a hidden staging
//! directory beside its target and renamed into place, so a failure leaves no partial tree; an
//! existing directory is refused ([`Error::OutputExists`]) and left byte-identical unless
//! `force` is given, in which case each file is replaced atomically
//! ([`studio_azure_auth::store::write_private_atomic`]).
//!
//! ```
//! use studio_cluster::output::{OutputFile, write_tree};
//!
//! let dir = std::env::temp_dir().join(format!("studio-output-doc-{}", std::process::id()));
//! let files = [OutputFile::new("apimodel.json", b"{}".to_vec()),
//!              OutputFile::new("kubeconfig/kubeconfig.eastus.json", b"{}".to_vec())];
//! write_tree(&dir, &files, false)?;
//! assert!(matches!(write_tree(&dir, &files, false), Err(studio_cluster::Error::OutputExists { .. })));
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok::<(), studio_cluster::Error>(())
//! ```

use std::fmt;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, io_error};

/// One file of the tree.
#[derive(Clone)]
pub struct OutputFile {
    /// The path inside the tree, e.g. `kubeconfig/kubeconfig.eastus.json`.
    pub path: PathBuf,
    /// The contents (may be secret).
    pub contents: Vec<u8>,
}

impl OutputFile {
    /// A file at `path` (relative to the tree) with `contents`.
    pub fn new(path: impl Into<PathBuf>, contents: Vec<u8>) -> Self {
        Self {
            path: path.into(),
            contents,
        }
    }
}

impl fmt::Debug for OutputFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutputFile")
            .field("path", &self.path)
            .field("bytes", &self.contents.len())
            .finish()
    }
}

/// Creates `path` and any missing parents with mode 0700 (existing ones are left as they are).
pub fn create_private_dir(path: &Path) -> Result<(), Error> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| io_error(path, e))
}

/// Writes `path` atomically with mode 0600, creating its directory (0700) if needed.
pub fn write_private_file(path: &Path, contents: &[u8]) -> Result<(), Error> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_private_dir(parent)?;
    }
    studio_azure_auth::store::write_private_atomic(path, contents).map_err(|e| match e {
        studio_azure_auth::Error::Store { path, reason } => Error::Io { path, reason },
        other => Error::Azure(other),
    })
}

fn check_relative(path: &Path) -> Result<(), Error> {
    if path.components().all(|c| matches!(c, Component::Normal(_))) {
        Ok(())
    } else {
        Err(Error::InvalidOption(format!(
            "output file {} must be a plain relative path",
            path.display()
        )))
    }
}

/// Writes `files` under `dir`. An existing `dir` is an [`Error::OutputExists`] (and is not
/// touched) unless `force`. See the module docs.
pub fn write_tree(dir: &Path, files: &[OutputFile], force: bool) -> Result<(), Error> {
    for file in files {
        check_relative(&file.path)?;
    }
    if dir.exists() {
        if !force {
            return Err(Error::OutputExists {
                path: dir.to_owned(),
            });
        }
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| io_error(dir, e))?;
        for file in files {
            write_private_file(&dir.join(&file.path), &file.contents)?;
        }
        return Ok(());
    }
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| {
            Error::InvalidOption(format!("{} is not a directory name", dir.display()))
        })?;
    let parent = dir.parent().unwrap_or(Path::new("."));
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    create_private_dir(parent)?;
    let staging = parent.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let result = (|| {
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&staging)
            .map_err(|e| io_error(&staging, e))?;
        for file in files {
            write_private_file(&staging.join(&file.path), &file.contents)?;
        }
        // rename(2) onto an existing non-empty directory fails, so a tree that appeared in the
        // meantime is not replaced.
        std::fs::rename(&staging, dir).map_err(|e| {
            if dir.exists() {
                Error::OutputExists {
                    path: dir.to_owned(),
                }
            } else {
                io_error(dir, e)
            }
        })
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn trees_are_private_and_existing_ones_refused_untouched() {
        let root = std::env::temp_dir().join(format!("studio-output-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let dir = root.join("_output").join("demo");
        let files = vec![
            OutputFile::new("a.json", b"one".to_vec()),
            OutputFile::new("sub/b.json", b"two".to_vec()),
        ];
        write_tree(&dir, &files, false).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("sub")), 0o700);
        assert_eq!(mode(&dir.join("a.json")), 0o600);
        assert_eq!(mode(&dir.join("sub/b.json")), 0o600);
        // No staging directory is left behind.
        let names: Vec<_> = std::fs::read_dir(root.join("_output"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["demo"]);

        let other = vec![OutputFile::new("a.json", b"changed".to_vec())];
        let err = write_tree(&dir, &other, false).unwrap_err();
        assert!(matches!(err, Error::OutputExists { .. }), "{err}");
        assert_eq!(std::fs::read(dir.join("a.json")).unwrap(), b"one");
        write_tree(&dir, &other, true).unwrap();
        assert_eq!(std::fs::read(dir.join("a.json")).unwrap(), b"changed");
        assert_eq!(mode(&dir.join("a.json")), 0o600);

        let bad = vec![OutputFile::new("../escape", b"x".to_vec())];
        assert!(write_tree(&root.join("x"), &bad, false).is_err());
        assert!(!root.join("x").exists());
        assert!(!format!("{:?}", files[0]).contains("one"));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
