//! `docker save` archives as an image source (read only).
//!
//! Two shapes exist. Docker 25 and later put an OCI layout in the tar (`oci-layout`,
//! `index.json`, `blobs/sha256/…`): its manifests are used as they are, digests included, and
//! the `RepoTags` of the `manifest.json` written beside it name them too. `skopeo copy …
//! oci-archive:` writes the same shape without `manifest.json`.
//! Older archives have only `manifest.json` (`Config`, `RepoTags`, `Layers`, with layers as
//! uncompressed tars, possibly symlinks to each other); for those an OCI manifest is written
//! whose config digest is the config file's and whose layer digests are the config's
//! `rootfs.diff_ids` (the sha256 of an uncompressed layer is its diff id), so the blobs keep
//! their digests and only the manifest is new.
//!
//! Blobs are read straight out of the tar at their offsets; nothing is extracted.
//!
//! ```no_run
//! # async fn demo() -> Result<(), studio_acr::Error> {
//! use studio_acr::archive::DockerArchive;
//! use studio_acr::source::ImageSource;
//!
//! let archive = DockerArchive::open("runner.tar")?;
//! println!("{:?}", archive.tags());
//! let manifest = archive.manifest("leaf-ai/runner:0.0.33").await?;
//! # drop(manifest); Ok(()) }
//! ```

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::Error;
use crate::distribution::BlobReader;
use crate::layout::{REF_NAME, io_error};
use crate::manifest::{
    Descriptor, MAX_MANIFEST_SIZE, Manifest, OCI_CONFIG, OCI_LAYER_TAR, OCI_MANIFEST, is_digest,
    sha256_digest,
};
use crate::source::ImageSource;

/// The largest JSON file (`manifest.json`, a config) read from an archive.
const MAX_JSON: u64 = 32 * 1024 * 1024;

#[derive(Clone, Copy, Debug)]
struct Entry {
    offset: u64,
    size: u64,
}

#[derive(Debug)]
struct ArchiveImage {
    tags: Vec<String>,
    manifest: Manifest,
}

/// A `docker save` archive.
#[derive(Debug)]
pub struct DockerArchive {
    path: PathBuf,
    entries: HashMap<String, Entry>,
    blobs: HashMap<String, String>,
    images: Vec<ArchiveImage>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SavedImage {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

fn normalize(name: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

impl DockerArchive {
    /// Indexes the archive at `path` (reads its headers and JSON files; blocking I/O).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref().to_path_buf();
        let bad = |e: std::io::Error| io_error(&path, e);
        let file = std::fs::File::open(&path).map_err(bad)?;
        let mut archive = tar::Archive::new(file);
        let mut entries = HashMap::new();
        let mut links = Vec::new();
        for entry in archive.entries_with_seek().map_err(bad)? {
            let entry = entry.map_err(bad)?;
            let name = normalize(&entry.path().map_err(bad)?.to_string_lossy());
            let kind = entry.header().entry_type();
            if kind.is_symlink() || kind.is_hard_link() {
                if let Some(target) = entry.link_name().map_err(bad)? {
                    let target = target.to_string_lossy().into_owned();
                    let resolved = if kind.is_symlink() {
                        let parent = name.rsplit_once('/').map_or("", |(p, _)| p);
                        normalize(&format!("{parent}/{target}"))
                    } else {
                        normalize(&target)
                    };
                    links.push((name, resolved));
                }
                continue;
            }
            if kind.is_file() {
                entries.insert(
                    name,
                    Entry {
                        offset: entry.raw_file_position(),
                        size: entry.size(),
                    },
                );
            }
        }
        for (name, target) in links {
            if let Some(e) = entries.get(&target).copied() {
                entries.insert(name, e);
            }
        }
        let mut archive = Self {
            path,
            entries,
            blobs: HashMap::new(),
            images: Vec::new(),
        };
        for name in archive.entries.keys() {
            if let Some(rest) = name.strip_prefix("blobs/")
                && let Some((algorithm, hex)) = rest.split_once('/')
            {
                archive
                    .blobs
                    .insert(format!("{algorithm}:{hex}"), name.clone());
            }
        }
        if archive.entries.contains_key("index.json") && archive.entries.contains_key("oci-layout")
        {
            archive.read_oci_index()?;
        } else {
            archive.read_docker_manifest()?;
        }
        Ok(archive)
    }

    fn read(&self, name: &str, limit: u64) -> Result<Vec<u8>, Error> {
        let entry = self.entries.get(name).ok_or_else(|| {
            Error::InvalidImage(format!(
                "{}: no '{name}' in the archive",
                self.path.display()
            ))
        })?;
        if entry.size > limit {
            return Err(Error::InvalidImage(format!(
                "{}: '{name}' is {} bytes, over the {limit} read",
                self.path.display(),
                entry.size
            )));
        }
        let bad = |e: std::io::Error| io_error(&self.path, e);
        let mut file = std::fs::File::open(&self.path).map_err(bad)?;
        file.seek(SeekFrom::Start(entry.offset)).map_err(bad)?;
        let mut bytes = Vec::with_capacity(entry.size as usize);
        file.take(entry.size).read_to_end(&mut bytes).map_err(bad)?;
        Ok(bytes)
    }

    fn read_blob(&self, digest: &str, limit: u64) -> Result<Vec<u8>, Error> {
        let name = self.blobs.get(digest).ok_or_else(|| {
            Error::InvalidImage(format!("{}: no blob {digest}", self.path.display()))
        })?;
        self.read(name, limit)
    }

    fn read_oci_index(&mut self) -> Result<(), Error> {
        let index: serde_json::Value = serde_json::from_slice(&self.read("index.json", MAX_JSON)?)
            .map_err(|e| io_error(&self.path, format!("index.json: {e}")))?;
        let descriptors: Vec<Descriptor> =
            serde_json::from_value(index.get("manifests").cloned().unwrap_or(json!([])))
                .map_err(|e| io_error(&self.path, format!("index.json: {e}")))?;
        for d in descriptors {
            let digest = d.digest().to_string();
            let bytes = self.read_blob(&digest, MAX_MANIFEST_SIZE)?;
            let manifest = Manifest::from_bytes(bytes, Some(d.media_type().as_ref()))?;
            manifest.verify(&digest)?;
            let tags = d
                .annotations()
                .iter()
                .flat_map(|a| {
                    ["io.containerd.image.name", REF_NAME]
                        .iter()
                        .filter_map(|k| a.get(*k).cloned())
                })
                .collect();
            self.images.push(ArchiveImage { tags, manifest });
        }
        // Docker 25+ also writes the old manifest.json; its RepoTags name the images too.
        if self.entries.contains_key("manifest.json") {
            let saved: Vec<SavedImage> =
                serde_json::from_slice(&self.read("manifest.json", MAX_JSON)?)
                    .map_err(|e| io_error(&self.path, format!("manifest.json: {e}")))?;
            for saved in saved {
                let config = normalize(&saved.config);
                for image in &mut self.images {
                    if image.manifest.is_index() {
                        continue;
                    }
                    let Ok(own) = image.manifest.image() else {
                        continue;
                    };
                    if self.blobs.get(&own.config().digest().to_string()) == Some(&config) {
                        for tag in saved.repo_tags.iter().flatten() {
                            if !image.tags.contains(tag) {
                                image.tags.push(tag.clone());
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn read_docker_manifest(&mut self) -> Result<(), Error> {
        let saved: Vec<SavedImage> = serde_json::from_slice(&self.read("manifest.json", MAX_JSON)?)
            .map_err(|e| io_error(&self.path, format!("manifest.json: {e}")))?;
        for image in saved {
            let config_name = normalize(&image.config);
            let config = self.read(&config_name, MAX_JSON)?;
            let config_digest = sha256_digest(&config);
            let parsed: serde_json::Value = serde_json::from_slice(&config)
                .map_err(|e| io_error(&self.path, format!("{config_name}: {e}")))?;
            let diff_ids: Vec<String> = parsed["rootfs"]["diff_ids"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            if diff_ids.len() != image.layers.len() {
                return Err(Error::InvalidImage(format!(
                    "{}: {} layers but {} diff_ids in {config_name}",
                    self.path.display(),
                    image.layers.len(),
                    diff_ids.len()
                )));
            }
            let mut layers = Vec::new();
            for (layer, diff_id) in image.layers.iter().zip(&diff_ids) {
                let name = normalize(layer);
                let entry = self.entries.get(&name).ok_or_else(|| {
                    Error::InvalidImage(format!("{}: no layer '{name}'", self.path.display()))
                })?;
                layers.push(
                    json!({"mediaType": OCI_LAYER_TAR, "digest": diff_id, "size": entry.size}),
                );
                self.blobs.insert(diff_id.clone(), name);
            }
            self.blobs.insert(config_digest.clone(), config_name);
            let manifest = json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config.len()},
                "layers": layers,
            });
            let bytes = serde_json::to_vec(&manifest)
                .map_err(|e| Error::InvalidImage(format!("manifest: {e}")))?;
            self.images.push(ArchiveImage {
                tags: image.repo_tags.unwrap_or_default(),
                manifest: Manifest::from_bytes(bytes, Some(OCI_MANIFEST))?,
            });
        }
        Ok(())
    }

    /// The tags the archive names (`RepoTags`, or the OCI index's image names).
    pub fn tags(&self) -> Vec<String> {
        self.images.iter().flat_map(|i| i.tags.clone()).collect()
    }
}

#[async_trait]
impl ImageSource for DockerArchive {
    async fn manifest(&self, reference: &str) -> Result<Manifest, Error> {
        if reference.is_empty() {
            return self
                .images
                .first()
                .map(|i| i.manifest.clone())
                .ok_or_else(|| Error::InvalidImage(format!("{}: no image", self.path.display())));
        }
        if is_digest(reference) {
            if let Some(i) = self
                .images
                .iter()
                .find(|i| i.manifest.digest() == reference)
            {
                return Ok(i.manifest.clone());
            }
            let manifest =
                Manifest::from_bytes(self.read_blob(reference, MAX_MANIFEST_SIZE)?, None)?;
            manifest.verify(reference)?;
            return Ok(manifest);
        }
        let matches = |tag: &String| {
            tag == reference
                || tag.ends_with(&format!("/{reference}"))
                || tag.rsplit_once(':').is_some_and(|(_, t)| t == reference)
        };
        self.images
            .iter()
            .find(|i| i.tags.iter().any(matches))
            .map(|i| i.manifest.clone())
            .ok_or_else(|| {
                Error::InvalidImage(format!(
                    "{}: no image tagged '{reference}' (it has {:?})",
                    self.path.display(),
                    self.tags()
                ))
            })
    }

    async fn open_blob(&self, descriptor: &Descriptor) -> Result<BlobReader, Error> {
        let digest = descriptor.digest().to_string();
        let name = self.blobs.get(&digest).ok_or_else(|| {
            Error::InvalidImage(format!("{}: no blob {digest}", self.path.display()))
        })?;
        let entry =
            self.entries.get(name).copied().ok_or_else(|| {
                Error::InvalidImage(format!("{}: no '{name}'", self.path.display()))
            })?;
        let mut file = tokio::fs::File::open(&self.path)
            .await
            .map_err(|e| io_error(&self.path, e))?;
        file.seek(SeekFrom::Start(entry.offset))
            .await
            .map_err(|e| io_error(&self.path, e))?;
        Ok(Box::pin(file.take(entry.size)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(builder: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        builder.append_data(&mut h, name, data).unwrap();
    }

    #[tokio::test]
    async fn classic_archives_keep_blob_digests() {
        let layer = b"pretend this is a layer tar".to_vec();
        let diff_id = sha256_digest(&layer);
        let config = serde_json::to_vec(&json!({"architecture":"amd64","os":"linux",
            "rootfs":{"type":"layers","diff_ids":[diff_id.clone(), diff_id.clone()]}}))
        .unwrap();
        let config_digest = sha256_digest(&config);
        let hex = &config_digest["sha256:".len()..];
        let mut b = tar::Builder::new(Vec::new());
        add(&mut b, &format!("{hex}.json"), &config);
        add(&mut b, "aaa/layer.tar", &layer);
        let mut link = tar::Header::new_gnu();
        link.set_entry_type(tar::EntryType::Symlink);
        link.set_size(0);
        b.append_link(&mut link, "bbb/layer.tar", "../aaa/layer.tar")
            .unwrap();
        let saved = json!([{"Config": format!("{hex}.json"), "RepoTags": ["demo/app:v1"],
            "Layers": ["aaa/layer.tar", "bbb/layer.tar"]}]);
        add(
            &mut b,
            "manifest.json",
            &serde_json::to_vec(&saved).unwrap(),
        );
        let bytes = b.into_inner().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("save.tar");
        std::fs::write(&path, bytes).unwrap();

        let archive = DockerArchive::open(&path).unwrap();
        assert_eq!(archive.tags(), vec!["demo/app:v1"]);
        let m = archive.manifest("v1").await.unwrap();
        assert_eq!(archive.manifest("demo/app:v1").await.unwrap(), m);
        let blobs = m.blobs().unwrap();
        assert_eq!(blobs[0].digest().to_string(), config_digest);
        assert_eq!(blobs[2].digest().to_string(), diff_id);
        let mut read = Vec::new();
        archive
            .open_blob(&blobs[1])
            .await
            .unwrap()
            .read_to_end(&mut read)
            .await
            .unwrap();
        assert_eq!(read, layer);
        assert!(archive.manifest("v2").await.is_err());
    }
}
