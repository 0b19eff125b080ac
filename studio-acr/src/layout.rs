//! OCI image layout directories (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`), read and
//! written. Tags are the `org.opencontainers.image.ref.name` annotation of `index.json`
//! entries, as skopeo's and umoci's `oci:<dir>:<tag>` use them.
//!
//! Blobs are written to a temporary file while their digest is computed, and renamed into
//! place only when it matches; `index.json` is replaced atomically.
//!
//! ```no_run
//! # async fn demo() -> Result<(), studio_acr::Error> {
//! use studio_acr::layout::OciLayout;
//! use studio_acr::source::ImageSource;
//!
//! let layout = OciLayout::open("/tmp/runner-oci")?;
//! let manifest = layout.manifest("latest").await?;
//! for blob in manifest.blobs()? {
//!     println!("{} {}", blob.digest(), blob.size());
//! }
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::Error;
use crate::distribution::BlobReader;
use crate::manifest::{Descriptor, MAX_MANIFEST_SIZE, Manifest, OCI_INDEX, is_digest};
use crate::source::ImageSource;

/// The annotation that names an `index.json` entry (the tag).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// An OCI image layout directory.
#[derive(Clone, Debug)]
pub struct OciLayout {
    root: PathBuf,
}

pub(crate) fn io_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

impl OciLayout {
    /// Opens an existing layout (it must have an `oci-layout` file).
    pub fn open(root: impl AsRef<Path>) -> Result<Self, Error> {
        let root = root.as_ref().to_path_buf();
        let marker = root.join("oci-layout");
        if !marker.is_file() {
            return Err(io_error(
                &marker,
                "not an OCI image layout (no oci-layout file)",
            ));
        }
        Ok(Self { root })
    }

    /// Opens the layout at `root`, creating the directory, `oci-layout` and an empty
    /// `index.json` where missing.
    pub fn create(root: impl AsRef<Path>) -> Result<Self, Error> {
        let root = root.as_ref().to_path_buf();
        let blobs = root.join("blobs").join("sha256");
        std::fs::create_dir_all(&blobs).map_err(|e| io_error(&blobs, e))?;
        let marker = root.join("oci-layout");
        if !marker.exists() {
            std::fs::write(&marker, br#"{"imageLayoutVersion":"1.0.0"}"#)
                .map_err(|e| io_error(&marker, e))?;
        }
        let layout = Self { root };
        if !layout.root.join("index.json").exists() {
            layout.write_index(
                &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}),
            )?;
        }
        Ok(layout)
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob `digest` lives (the digest is checked, so no path escapes the layout).
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf, Error> {
        let (algorithm, hex) = digest
            .split_once(':')
            .filter(|(a, h)| {
                !a.is_empty()
                    && a.bytes().all(|b| b.is_ascii_alphanumeric())
                    && !h.is_empty()
                    && h.bytes().all(|b| b.is_ascii_hexdigit())
            })
            .ok_or_else(|| Error::InvalidImage(format!("bad digest '{digest}'")))?;
        Ok(self.root.join("blobs").join(algorithm).join(hex))
    }

    /// Whether the blob is present with the expected size.
    pub fn has_blob(&self, digest: &str, size: u64) -> bool {
        self.blob_path(digest)
            .ok()
            .and_then(|p| std::fs::metadata(p).ok())
            .is_some_and(|m| m.len() == size)
    }

    fn read_index(&self) -> Result<Value, Error> {
        let path = self.root.join("index.json");
        let bytes = std::fs::read(&path).map_err(|e| io_error(&path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| io_error(&path, e))
    }

    fn write_index(&self, index: &Value) -> Result<(), Error> {
        let path = self.root.join("index.json");
        let bytes = serde_json::to_vec(index).map_err(|e| io_error(&path, e))?;
        let tmp = self.root.join(".index.json.tmp");
        std::fs::write(&tmp, bytes).map_err(|e| io_error(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| io_error(&path, e))
    }

    /// The descriptors of `index.json`.
    pub fn entries(&self) -> Result<Vec<Descriptor>, Error> {
        let index = self.read_index()?;
        let manifests = index.get("manifests").cloned().unwrap_or(json!([]));
        serde_json::from_value(manifests).map_err(|e| io_error(&self.root.join("index.json"), e))
    }

    /// The `index.json` entry a tag names (or, for an empty tag, the only entry), or a
    /// descriptor for a digest.
    pub fn resolve(&self, reference: &str) -> Result<Descriptor, Error> {
        let entries = self.entries()?;
        if is_digest(reference) {
            if let Some(d) = entries.iter().find(|d| d.digest().as_ref() == reference) {
                return Ok(d.clone());
            }
            let path = self.blob_path(reference)?;
            let bytes = std::fs::read(&path).map_err(|e| io_error(&path, e))?;
            let manifest = Manifest::from_bytes(bytes, None)?;
            manifest.verify(reference)?;
            return manifest.descriptor();
        }
        let named = |d: &&Descriptor| {
            d.annotations()
                .as_ref()
                .and_then(|a| a.get(REF_NAME))
                .is_some_and(|n| n == reference)
        };
        if let Some(d) = entries.iter().find(named) {
            return Ok(d.clone());
        }
        if reference.is_empty() && entries.len() == 1 {
            return Ok(entries[0].clone());
        }
        Err(Error::InvalidImage(format!(
            "{}: no image tagged '{reference}'",
            self.root.display()
        )))
    }

    /// Reads the manifest a descriptor names, verifying its digest.
    pub fn read_manifest(&self, descriptor: &Descriptor) -> Result<Manifest, Error> {
        let digest = descriptor.digest().to_string();
        let path = self.blob_path(&digest)?;
        let size = std::fs::metadata(&path)
            .map_err(|e| io_error(&path, e))?
            .len();
        if size > MAX_MANIFEST_SIZE {
            return Err(Error::ManifestTooLarge { what: digest, size });
        }
        let bytes = std::fs::read(&path).map_err(|e| io_error(&path, e))?;
        let manifest = Manifest::from_bytes(bytes, Some(descriptor.media_type().as_ref()))?;
        manifest.verify(&digest)?;
        Ok(manifest)
    }

    /// Writes bytes as a blob; returns its digest.
    pub fn write_blob_bytes(&self, bytes: &[u8]) -> Result<String, Error> {
        let digest = crate::manifest::sha256_digest(bytes);
        let path = self.blob_path(&digest)?;
        if !self.has_blob(&digest, bytes.len() as u64) {
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, bytes).map_err(|e| io_error(&tmp, e))?;
            std::fs::rename(&tmp, &path).map_err(|e| io_error(&path, e))?;
        }
        Ok(digest)
    }

    /// Writes a manifest's exact bytes as a blob.
    pub fn write_manifest(&self, manifest: &Manifest) -> Result<(), Error> {
        self.write_blob_bytes(manifest.bytes()).map(drop)
    }

    /// Streams a blob into the layout, checking its size and digest before it is renamed into
    /// place; `on_bytes` hears of each chunk written. Returns the bytes written.
    pub async fn write_blob(
        &self,
        mut reader: BlobReader,
        descriptor: &Descriptor,
        mut on_bytes: impl FnMut(u64) + Send,
    ) -> Result<u64, Error> {
        let digest = descriptor.digest().to_string();
        let path = self.blob_path(&digest)?;
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| io_error(dir, e))?;
        }
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        let mut file = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| io_error(&tmp, e))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut written = 0u64;
        loop {
            let n = reader
                .read(&mut buf)
                .await
                .map_err(|e| Error::Registry(format!("reading blob {digest}: {e}")))?;
            if n == 0 {
                break;
            }
            written += n as u64;
            if written > descriptor.size() {
                break;
            }
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n])
                .await
                .map_err(|e| io_error(&tmp, e))?;
            on_bytes(n as u64);
        }
        file.flush().await.map_err(|e| io_error(&tmp, e))?;
        drop(file);
        let actual = format!("sha256:{:x}", hasher.finalize());
        if written != descriptor.size() || actual != digest {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(Error::DigestMismatch {
                what: format!("blob of {} bytes ({written} read)", descriptor.size()),
                expected: digest,
                actual,
            });
        }
        tokio::fs::rename(&tmp, &path)
            .await
            .map_err(|e| io_error(&path, e))?;
        Ok(written)
    }

    /// Points `tag` at `descriptor` in `index.json` (replacing the tag's previous entry).
    pub fn tag(&self, tag: &str, descriptor: &Descriptor) -> Result<(), Error> {
        let mut index = self.read_index()?;
        let mut entry = serde_json::to_value(descriptor)
            .map_err(|e| Error::InvalidImage(format!("descriptor: {e}")))?;
        entry["annotations"][REF_NAME] = json!(tag);
        let manifests = index
            .get_mut("manifests")
            .and_then(Value::as_array_mut)
            .ok_or_else(|| io_error(&self.root.join("index.json"), "no manifests array"))?;
        manifests.retain(|m| m["annotations"][REF_NAME].as_str() != Some(tag));
        manifests.push(entry);
        self.write_index(&index)
    }
}

#[async_trait]
impl ImageSource for OciLayout {
    async fn manifest(&self, reference: &str) -> Result<Manifest, Error> {
        let descriptor = self.resolve(reference)?;
        self.read_manifest(&descriptor)
    }

    async fn open_blob(&self, descriptor: &Descriptor) -> Result<BlobReader, Error> {
        let path = self.blob_path(descriptor.digest().as_ref())?;
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| io_error(&path, e))?;
        Ok(Box::pin(file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn blobs_are_verified_and_tags_replace_entries() {
        let dir = tempfile::tempdir().unwrap();
        let layout = OciLayout::create(dir.path()).unwrap();
        let data = b"hello blob".to_vec();
        let digest = crate::manifest::sha256_digest(&data);
        let d = crate::manifest::descriptor("application/octet-stream", &digest, 10).unwrap();
        let reader: BlobReader = Box::pin(std::io::Cursor::new(data.clone()));
        layout.write_blob(reader, &d, |_| {}).await.unwrap();
        assert!(layout.has_blob(&digest, 10));
        let lie: BlobReader = Box::pin(std::io::Cursor::new(b"hello BLOB".to_vec()));
        let other = crate::manifest::descriptor(
            "application/octet-stream",
            &crate::manifest::sha256_digest(b"x"),
            10,
        )
        .unwrap();
        let err = layout.write_blob(lie, &other, |_| {}).await.unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
        assert!(!layout.has_blob(other.digest().as_ref(), 10));

        let m =
            Manifest::from_bytes(br#"{"schemaVersion":2,"manifests":[]}"#.to_vec(), None).unwrap();
        layout.write_manifest(&m).unwrap();
        layout.tag("v1", &m.descriptor().unwrap()).unwrap();
        layout.tag("v1", &m.descriptor().unwrap()).unwrap();
        layout.tag("v2", &m.descriptor().unwrap()).unwrap();
        assert_eq!(layout.entries().unwrap().len(), 2);
        assert_eq!(layout.manifest("v1").await.unwrap(), m);
        assert!(layout.manifest("v3").await.is_err());
        assert!(layout.blob_path("sha256:../../etc").is_err());
    }
}
