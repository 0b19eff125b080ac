//! Manifests as bytes: a [`Manifest`] keeps the exact bytes it was read as, so copying one never
//! re-serializes it and its digest is preserved. Parsing into `oci-spec`'s types is only for
//! reading the descriptors it names.
//!
//! OCI image manifests and indexes and Docker v2 schema 2 manifests and manifest lists are
//! handled; Docker schema 1 is refused ([`Error::UnsupportedMediaType`]), and so is any manifest
//! over 4 MiB ([`Error::ManifestTooLarge`]).
//!
//! ```
//! use studio_acr::manifest::{Manifest, OCI_MANIFEST};
//!
//! let bytes = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
//! "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},
//! "layers":[]}"#;
//! let m = Manifest::from_bytes(bytes.to_vec(), None)?;
//! assert_eq!(m.media_type(), OCI_MANIFEST);
//! assert_eq!(m.blobs()?.len(), 1);
//! assert!(m.digest().starts_with("sha256:"));
//! # Ok::<(), studio_acr::Error>(())
//! ```

use bytes::Bytes;
use sha2::{Digest as _, Sha256};

pub use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType, Platform};

use crate::Error;

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI layer, uncompressed tar.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI layer, gzip-compressed tar.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Docker v2 schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker layer, gzip-compressed tar.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker layer, uncompressed tar.
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// The largest manifest accepted (registries refuse larger ones).
pub const MAX_MANIFEST_SIZE: u64 = 4 * 1024 * 1024;

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// A descriptor from its three required fields.
pub fn descriptor(media_type: &str, digest: &str, size: u64) -> Result<Descriptor, Error> {
    let digest: oci_spec::image::Digest = digest
        .parse()
        .map_err(|e| Error::InvalidImage(format!("bad digest '{digest}': {e}")))?;
    Ok(Descriptor::new(MediaType::from(media_type), size, digest))
}

/// The OCI media type for a Docker layer or config media type (the bytes are the same).
pub fn oci_media_type(media_type: &str) -> &str {
    match media_type {
        DOCKER_LAYER_GZIP => OCI_LAYER_GZIP,
        DOCKER_LAYER_TAR => OCI_LAYER_TAR,
        DOCKER_CONFIG => OCI_CONFIG,
        DOCKER_MANIFEST => OCI_MANIFEST,
        DOCKER_MANIFEST_LIST => OCI_INDEX,
        other => other,
    }
}

/// Whether a manifest of `media_type` is an index (manifest list).
pub fn is_index_type(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// A manifest: its exact bytes, media type and digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    bytes: Bytes,
    media_type: String,
    digest: String,
}

#[derive(serde::Deserialize)]
struct Probe {
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(rename = "schemaVersion", default)]
    schema_version: Option<u32>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
    #[serde(default)]
    config: Option<serde_json::Value>,
}

impl Manifest {
    /// A manifest from its bytes. The media type is `media_type` when given (a `Content-Type`
    /// or a descriptor's), else the document's `mediaType`, else guessed from its shape.
    pub fn from_bytes(bytes: impl Into<Bytes>, media_type: Option<&str>) -> Result<Self, Error> {
        let bytes = bytes.into();
        if bytes.len() as u64 > MAX_MANIFEST_SIZE {
            return Err(Error::ManifestTooLarge {
                what: sha256_digest(&bytes),
                size: bytes.len() as u64,
            });
        }
        let probe: Probe = serde_json::from_slice(&bytes)
            .map_err(|e| Error::InvalidImage(format!("a manifest that is not JSON: {e}")))?;
        let given = media_type
            .map(|m| m.split(';').next().unwrap_or(m).trim().to_owned())
            .filter(|m| !m.is_empty() && m != "application/json" && m != "text/plain");
        let media_type = match given.or(probe.media_type) {
            Some(m) => m,
            None if probe.manifests.is_some() => OCI_INDEX.to_owned(),
            None if probe.config.is_some() => OCI_MANIFEST.to_owned(),
            None => {
                return Err(Error::InvalidImage(
                    "a manifest with neither mediaType, config nor manifests".to_owned(),
                ));
            }
        };
        match media_type.as_str() {
            OCI_MANIFEST | OCI_INDEX | DOCKER_MANIFEST | DOCKER_MANIFEST_LIST => {}
            other => {
                return Err(Error::UnsupportedMediaType {
                    what: "manifest".to_owned(),
                    media_type: other.to_owned(),
                });
            }
        }
        if probe.schema_version != Some(2) {
            return Err(Error::InvalidImage(format!(
                "manifest schemaVersion {:?}; only 2 is supported",
                probe.schema_version
            )));
        }
        Ok(Self {
            digest: sha256_digest(&bytes),
            bytes,
            media_type,
        })
    }

    /// The exact bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The media type.
    pub fn media_type(&self) -> &str {
        &self.media_type
    }

    /// `sha256:` of the bytes.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The size in bytes.
    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// Whether this is an index (manifest list).
    pub fn is_index(&self) -> bool {
        is_index_type(&self.media_type)
    }

    /// Fails unless the digest is `expected`.
    pub fn verify(&self, expected: &str) -> Result<(), Error> {
        if self.digest != expected {
            return Err(Error::DigestMismatch {
                what: "manifest".to_owned(),
                expected: expected.to_owned(),
                actual: self.digest.clone(),
            });
        }
        Ok(())
    }

    /// A descriptor of this manifest.
    pub fn descriptor(&self) -> Result<Descriptor, Error> {
        descriptor(&self.media_type, &self.digest, self.size())
    }

    /// Parsed as an image manifest.
    pub fn image(&self) -> Result<ImageManifest, Error> {
        ImageManifest::from_reader(&self.bytes[..])
            .map_err(|e| Error::InvalidImage(format!("manifest {}: {e}", self.digest)))
    }

    /// Parsed as an index.
    pub fn index(&self) -> Result<ImageIndex, Error> {
        ImageIndex::from_reader(&self.bytes[..])
            .map_err(|e| Error::InvalidImage(format!("index {}: {e}", self.digest)))
    }

    /// The manifests an index names (none for an image manifest).
    pub fn children(&self) -> Result<Vec<Descriptor>, Error> {
        if !self.is_index() {
            return Ok(Vec::new());
        }
        Ok(self.index()?.manifests().clone())
    }

    /// The blobs an image manifest names, config first (none for an index).
    pub fn blobs(&self) -> Result<Vec<Descriptor>, Error> {
        if self.is_index() {
            return Ok(Vec::new());
        }
        let image = self.image()?;
        let mut blobs = vec![image.config().clone()];
        blobs.extend(image.layers().iter().cloned());
        Ok(blobs)
    }
}

/// Whether `text` looks like a digest (`algorithm:hex`) rather than a tag.
pub fn is_digest(text: &str) -> bool {
    text.split_once(':').is_some_and(|(algorithm, hex)| {
        !algorithm.is_empty() && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_and_kinds() {
        let index = br#"{"schemaVersion":2,"manifests":[]}"#;
        let m = Manifest::from_bytes(index.to_vec(), None).unwrap();
        assert!(m.is_index());
        assert_eq!(m.media_type(), OCI_INDEX);
        let m = Manifest::from_bytes(
            index.to_vec(),
            Some("application/vnd.docker.distribution.manifest.list.v2+json; charset=utf-8"),
        )
        .unwrap();
        assert_eq!(m.media_type(), DOCKER_MANIFEST_LIST);
        let v1 = br#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}"#;
        let err = Manifest::from_bytes(
            v1.to_vec(),
            Some("application/vnd.docker.distribution.manifest.v1+prettyjws"),
        )
        .unwrap_err();
        assert!(matches!(err, Error::UnsupportedMediaType { .. }), "{err}");
    }

    #[test]
    fn oversized_manifests_are_refused() {
        let big = vec![b' '; (MAX_MANIFEST_SIZE + 1) as usize];
        assert!(matches!(
            Manifest::from_bytes(big, None),
            Err(Error::ManifestTooLarge { .. })
        ));
    }

    #[test]
    fn digests_are_of_the_exact_bytes() {
        let a = br#"{"schemaVersion":2,"manifests":[]}"#;
        let b = br#"{ "schemaVersion": 2, "manifests": [] }"#;
        let ma = Manifest::from_bytes(a.to_vec(), None).unwrap();
        let mb = Manifest::from_bytes(b.to_vec(), None).unwrap();
        assert_ne!(ma.digest(), mb.digest());
        assert_eq!(ma.digest(), sha256_digest(a));
        assert!(ma.verify(mb.digest()).is_err());
        assert!(is_digest(ma.digest()));
        assert!(!is_digest("latest"));
    }
}
