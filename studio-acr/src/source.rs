//! Where images come from: a registry [`Repository`], an [`OciLayout`](crate::layout::OciLayout)
//! directory, or a `docker save` [`DockerArchive`](crate::archive::DockerArchive). Each gives
//! manifests as exact bytes and blobs as streams that can be opened again for every retry.

use async_trait::async_trait;

use crate::Error;
use crate::distribution::{BlobReader, Repository};
use crate::manifest::{Descriptor, Manifest};

/// A place to read an image from.
#[async_trait]
pub trait ImageSource: Send + Sync + std::fmt::Debug {
    /// The manifest a tag or digest names (an empty reference: the only or first image).
    /// Manifests asked for by digest are verified.
    async fn manifest(&self, reference: &str) -> Result<Manifest, Error>;

    /// Opens a blob from its first byte. Called again for every retry, so nothing is buffered.
    async fn open_blob(&self, descriptor: &Descriptor) -> Result<BlobReader, Error>;

    /// The repository, when the source is a registry (for mounts and manifest-only tags).
    fn repository(&self) -> Option<&Repository> {
        None
    }
}

#[async_trait]
impl ImageSource for Repository {
    async fn manifest(&self, reference: &str) -> Result<Manifest, Error> {
        let reference = if reference.is_empty() {
            "latest"
        } else {
            reference
        };
        self.get_manifest(reference).await
    }

    async fn open_blob(&self, descriptor: &Descriptor) -> Result<BlobReader, Error> {
        self.get_blob(descriptor.digest().as_ref()).await
    }

    fn repository(&self) -> Option<&Repository> {
        Some(self)
    }
}
