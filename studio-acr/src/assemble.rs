//! Assembling an image without a Docker daemon, as ko and jib do: a base image from any
//! [`ImageSource`], plus layers made from files and directories, plus config changes; written
//! to an [`OciLayout`] or pushed.
//!
//! Layers are reproducible: entries sorted by path, every mtime fixed (default 0), uid/gid 0
//! with no user names, file modes preserved, parent directories added (0755), gzip with a
//! zero header time. The same inputs give the same digests. Each layer's `diff_id` (the
//! sha256 of the uncompressed tar) goes into the config with a history entry.
//!
//! ```no_run
//! # async fn demo(base: std::sync::Arc<dyn studio_acr::source::ImageSource>) -> Result<(), studio_acr::Error> {
//! use studio_acr::assemble::{ImageBuilder, Layer};
//! use studio_acr::layout::OciLayout;
//! use studio_acr::transfer::Transfer;
//!
//! let image = ImageBuilder::new()
//!     .base(base, "12.2.0-runtime-ubuntu22.04")
//!     .layer(Layer::new().add("target/release/runner", "/runner/runner").add("etc/runner", "/etc/runner"))
//!     .entrypoint(["/runner/runner"])
//!     .env("LOGXI", "*=INF")
//!     .workdir("/runner")
//!     .label("org.opencontainers.image.version", "0.0.33");
//! let layout = OciLayout::create("/tmp/runner-oci")?;
//! let manifest = image.write_to_layout(&layout, "0.0.33", &Transfer::default()).await?;
//! println!("{}", manifest.digest());
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::Error;
use crate::distribution::Repository;
use crate::layout::{OciLayout, io_error};
use crate::manifest::{Manifest, OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST, oci_media_type};
use crate::source::ImageSource;
use crate::transfer::{Destination, Transfer, TransferReport};

/// The files of one layer: `(source on disk, path in the image)` pairs.
#[derive(Clone, Debug, Default)]
pub struct Layer {
    entries: Vec<(PathBuf, String)>,
}

impl Layer {
    /// An empty layer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a file, symlink or directory (recursively) at `target` in the image
    /// (`/app/bin`; `/` puts a directory's contents at the root).
    pub fn add(mut self, source: impl Into<PathBuf>, target: &str) -> Self {
        self.entries.push((source.into(), target.to_owned()));
        self
    }
}

/// A platform, `os/architecture[/variant]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformSpec {
    /// e.g. `linux`.
    pub os: String,
    /// e.g. `amd64`.
    pub architecture: String,
    /// e.g. `v8`.
    pub variant: Option<String>,
}

impl std::str::FromStr for PlatformSpec {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let mut parts = s.split('/');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(os), Some(arch), variant, None) if !os.is_empty() && !arch.is_empty() => {
                Ok(Self {
                    os: os.to_owned(),
                    architecture: arch.to_owned(),
                    variant: variant.map(str::to_owned),
                })
            }
            _ => Err(Error::InvalidImage(format!(
                "platform '{s}' is not os/architecture[/variant]"
            ))),
        }
    }
}

/// An image to assemble.
#[derive(Clone)]
pub struct ImageBuilder {
    base: Option<(Arc<dyn ImageSource>, String)>,
    layers: Vec<Layer>,
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    env: Vec<(String, String)>,
    workdir: Option<String>,
    user: Option<String>,
    labels: BTreeMap<String, String>,
    platform: Option<PlatformSpec>,
    created: String,
    mtime: u64,
}

impl std::fmt::Debug for ImageBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageBuilder")
            .field("base", &self.base.as_ref().map(|(s, r)| (s, r)))
            .field("layers", &self.layers)
            .finish_non_exhaustive()
    }
}

impl Default for ImageBuilder {
    fn default() -> Self {
        Self::new()
    }
}

fn strings<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> Vec<String> {
    items.into_iter().map(Into::into).collect()
}

impl ImageBuilder {
    /// An image from scratch (linux/amd64 unless [`ImageBuilder::platform`] says otherwise).
    pub fn new() -> Self {
        Self {
            base: None,
            layers: Vec::new(),
            entrypoint: None,
            cmd: None,
            env: Vec::new(),
            workdir: None,
            user: None,
            labels: BTreeMap::new(),
            platform: None,
            created: "1970-01-01T00:00:00Z".to_owned(),
            mtime: 0,
        }
    }

    /// Starts from the image `reference` names in `source` (an index gives the child of the
    /// chosen platform).
    pub fn base(mut self, source: Arc<dyn ImageSource>, reference: &str) -> Self {
        self.base = Some((source, reference.to_owned()));
        self
    }

    /// Adds a layer on top.
    pub fn layer(mut self, layer: Layer) -> Self {
        self.layers.push(layer);
        self
    }

    /// Sets the entrypoint (and, as `docker build` does, drops a `Cmd` inherited from the base
    /// unless [`ImageBuilder::cmd`] sets one).
    pub fn entrypoint<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.entrypoint = Some(strings(args));
        self
    }

    /// Sets the command.
    pub fn cmd<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.cmd = Some(strings(args));
        self
    }

    /// Sets an environment variable (replacing the base's value).
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the working directory.
    pub fn workdir(mut self, dir: &str) -> Self {
        self.workdir = Some(dir.to_owned());
        self
    }

    /// Sets the user (`uid[:gid]` or a name).
    pub fn user(mut self, user: &str) -> Self {
        self.user = Some(user.to_owned());
        self
    }

    /// Adds a label.
    pub fn label(mut self, name: &str, value: &str) -> Self {
        self.labels.insert(name.to_owned(), value.to_owned());
        self
    }

    /// Sets the platform (and picks the base's child of that platform).
    pub fn platform(mut self, platform: PlatformSpec) -> Self {
        self.platform = Some(platform);
        self
    }

    /// The `created` time of the config and history (RFC 3339; default the epoch).
    pub fn created(mut self, created: &str) -> Self {
        self.created = created.to_owned();
        self
    }

    /// The mtime of every layer entry (seconds since the epoch; default 0).
    pub fn mtime(mut self, mtime: u64) -> Self {
        self.mtime = mtime;
        self
    }

    async fn base_image(
        &self,
        layout: &OciLayout,
        transfer: &Transfer,
    ) -> Result<Option<(Manifest, Value)>, Error> {
        let Some((source, reference)) = &self.base else {
            return Ok(None);
        };
        let mut manifest = source.manifest(reference).await?;
        if manifest.is_index() {
            let want = self.platform.clone().unwrap_or(PlatformSpec {
                os: "linux".to_owned(),
                architecture: "amd64".to_owned(),
                variant: None,
            });
            let child = manifest
                .children()?
                .into_iter()
                .find(|d| {
                    d.platform().as_ref().is_some_and(|p| {
                        p.os().to_string() == want.os
                            && p.architecture().to_string() == want.architecture
                            && (want.variant.is_none() || p.variant() == &want.variant)
                    })
                })
                .ok_or_else(|| {
                    Error::InvalidImage(format!(
                        "the base {reference} has no {}/{} image",
                        want.os, want.architecture
                    ))
                })?;
            let digest = child.digest().to_string();
            manifest = source.manifest(&digest).await?;
            manifest.verify(&digest)?;
        }
        transfer
            .copy(
                source.as_ref(),
                manifest.digest(),
                &Destination::Layout(layout.clone()),
                &[],
            )
            .await?;
        let image = manifest.image()?;
        let config_path = layout.blob_path(image.config().digest().as_ref())?;
        let config = std::fs::read(&config_path).map_err(|e| io_error(&config_path, e))?;
        let config: Value = serde_json::from_slice(&config)
            .map_err(|e| Error::InvalidImage(format!("base config: {e}")))?;
        Ok(Some((manifest, config)))
    }

    /// Writes the image into `layout` under `tag`; returns its manifest. Base blobs are copied
    /// in with `transfer`.
    pub async fn write_to_layout(
        &self,
        layout: &OciLayout,
        tag: &str,
        transfer: &Transfer,
    ) -> Result<Manifest, Error> {
        let base = self.base_image(layout, transfer).await?;
        let mut layers: Vec<Value> = Vec::new();
        let mut config = match base {
            Some((manifest, config)) => {
                for d in manifest.image()?.layers() {
                    let mut v = serde_json::to_value(d)
                        .map_err(|e| Error::InvalidImage(format!("descriptor: {e}")))?;
                    v["mediaType"] = json!(oci_media_type(d.media_type().as_ref()));
                    layers.push(v);
                }
                config
            }
            None => json!({
                "architecture": "amd64", "os": "linux", "config": {},
                "rootfs": {"type": "layers", "diff_ids": []}, "history": [],
            }),
        };
        for layer in &self.layers {
            let built = {
                let layer = layer.clone();
                let dir = layout.root().join("blobs").join("sha256");
                let mtime = self.mtime;
                tokio::task::spawn_blocking(move || build_layer(&layer, &dir, mtime))
                    .await
                    .map_err(|e| Error::InvalidImage(format!("layer builder: {e}")))??
            };
            layers.push(
                json!({"mediaType": OCI_LAYER_GZIP, "digest": built.digest, "size": built.size}),
            );
            push_array(&mut config["rootfs"]["diff_ids"], json!(built.diff_id));
            let targets: Vec<&str> = layer.entries.iter().map(|(_, t)| t.as_str()).collect();
            push_array(
                &mut config["history"],
                json!({"created": self.created, "created_by": format!("studio assemble: COPY {}", targets.join(" "))}),
            );
        }
        self.edit_config(&mut config);
        let config_bytes =
            serde_json::to_vec(&config).map_err(|e| Error::InvalidImage(format!("config: {e}")))?;
        let config_digest = layout.write_blob_bytes(&config_bytes)?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_bytes.len()},
            "layers": layers,
        });
        let bytes = serde_json::to_vec(&manifest)
            .map_err(|e| Error::InvalidImage(format!("manifest: {e}")))?;
        let manifest = Manifest::from_bytes(bytes, Some(OCI_MANIFEST))?;
        layout.write_manifest(&manifest)?;
        layout.tag(tag, &manifest.descriptor()?)?;
        Ok(manifest)
    }

    /// Assembles the image in a temporary layout and pushes it to `repository` under `tags`.
    pub async fn push(
        &self,
        transfer: &Transfer,
        repository: &Repository,
        tags: &[&str],
    ) -> Result<TransferReport, Error> {
        let dir = tempfile::tempdir().map_err(|e| io_error(Path::new("temporary directory"), e))?;
        let layout = OciLayout::create(dir.path())?;
        let manifest = self.write_to_layout(&layout, "assembled", transfer).await?;
        transfer
            .copy(
                &layout,
                manifest.digest(),
                &Destination::Registry(repository.clone()),
                tags,
            )
            .await
    }

    fn edit_config(&self, config: &mut Value) {
        config["created"] = json!(self.created);
        if let Some(p) = &self.platform {
            config["os"] = json!(p.os);
            config["architecture"] = json!(p.architecture);
            match &p.variant {
                Some(v) => config["variant"] = json!(v),
                None => {
                    if let Some(o) = config.as_object_mut() {
                        o.remove("variant");
                    }
                }
            }
        }
        if !config["config"].is_object() {
            config["config"] = json!({});
        }
        let c = &mut config["config"];
        if let Some(entrypoint) = &self.entrypoint {
            c["Entrypoint"] = json!(entrypoint);
            if self.cmd.is_none()
                && let Some(o) = c.as_object_mut()
            {
                o.remove("Cmd");
            }
        }
        if let Some(cmd) = &self.cmd {
            c["Cmd"] = json!(cmd);
        }
        if !self.env.is_empty() {
            let mut env: Vec<String> = c["Env"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            for (name, value) in &self.env {
                let prefix = format!("{name}=");
                env.retain(|e| !e.starts_with(&prefix));
                env.push(format!("{name}={value}"));
            }
            c["Env"] = json!(env);
        }
        if let Some(dir) = &self.workdir {
            c["WorkingDir"] = json!(dir);
        }
        if let Some(user) = &self.user {
            c["User"] = json!(user);
        }
        if !self.labels.is_empty() {
            if !c["Labels"].is_object() {
                c["Labels"] = json!({});
            }
            for (k, v) in &self.labels {
                c["Labels"][k] = json!(v);
            }
        }
    }
}

fn push_array(slot: &mut Value, item: Value) {
    if !slot.is_array() {
        *slot = json!([]);
    }
    if let Some(a) = slot.as_array_mut() {
        a.push(item);
    }
}

/// A layer written into a layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltLayer {
    /// The digest of the gzip blob.
    pub digest: String,
    /// The blob's size.
    pub size: u64,
    /// The sha256 of the uncompressed tar.
    pub diff_id: String,
}

enum Item {
    Dir {
        mode: u32,
    },
    File {
        source: PathBuf,
        mode: u32,
        size: u64,
    },
    Link {
        target: PathBuf,
    },
}

fn clean_target(target: &str) -> Result<String, Error> {
    let mut parts = Vec::new();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(Error::InvalidImage(format!(
                    "layer path '{target}' climbs out with '..'"
                )));
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

fn collect(source: &Path, target: &str, items: &mut BTreeMap<String, Item>) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::symlink_metadata(source).map_err(|e| io_error(source, e))?;
    let mode = meta.permissions().mode() & 0o7777;
    let kind = meta.file_type();
    if kind.is_symlink() {
        let link = std::fs::read_link(source).map_err(|e| io_error(source, e))?;
        items.insert(target.to_owned(), Item::Link { target: link });
    } else if kind.is_dir() {
        if !target.is_empty() {
            items.insert(target.to_owned(), Item::Dir { mode });
        }
        let mut children: Vec<_> = std::fs::read_dir(source)
            .map_err(|e| io_error(source, e))?
            .collect::<Result<_, _>>()
            .map_err(|e| io_error(source, e))?;
        children.sort_by_key(|e| e.file_name());
        for child in children {
            let name = child.file_name().to_string_lossy().into_owned();
            let path = if target.is_empty() {
                name
            } else {
                format!("{target}/{name}")
            };
            collect(&child.path(), &path, items)?;
        }
    } else if kind.is_file() {
        if target.is_empty() {
            return Err(Error::InvalidImage(format!(
                "{}: a file needs a path in the image",
                source.display()
            )));
        }
        items.insert(
            target.to_owned(),
            Item::File {
                source: source.to_path_buf(),
                mode,
                size: meta.len(),
            },
        );
    } else {
        return Err(io_error(source, "not a file, directory or symlink"));
    }
    Ok(())
}

struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes `layer` as a reproducible gzip tar into `blobs_dir` (a layout's `blobs/sha256`).
pub fn build_layer(layer: &Layer, blobs_dir: &Path, mtime: u64) -> Result<BuiltLayer, Error> {
    let mut items = BTreeMap::new();
    for (source, target) in &layer.entries {
        let target = clean_target(target)?;
        collect(source, &target, &mut items)?;
        let mut parent = target.as_str();
        while let Some((p, _)) = parent.rsplit_once('/') {
            items
                .entry(p.to_owned())
                .or_insert(Item::Dir { mode: 0o755 });
            parent = p;
        }
    }
    std::fs::create_dir_all(blobs_dir).map_err(|e| io_error(blobs_dir, e))?;
    let tmp = blobs_dir.join(format!(
        ".layer-{}-{:?}.tmp",
        std::process::id(),
        std::thread::current().id()
    ));
    let bad = |e: std::io::Error| io_error(&tmp, e);
    let file = std::fs::File::create(&tmp).map_err(bad)?;
    let compressed = HashingWriter {
        inner: std::io::BufWriter::with_capacity(256 * 1024, file),
        hasher: Sha256::new(),
        written: 0,
    };
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(compressed, flate2::Compression::default());
    let uncompressed = HashingWriter {
        inner: gz,
        hasher: Sha256::new(),
        written: 0,
    };
    let mut tar = tar::Builder::new(uncompressed);
    for (path, item) in &items {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(mtime);
        h.set_uid(0);
        h.set_gid(0);
        match item {
            Item::Dir { mode } => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*mode);
                h.set_size(0);
                tar.append_data(&mut h, format!("{path}/"), std::io::empty())
                    .map_err(bad)?;
            }
            Item::File { source, mode, size } => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(*size);
                let file = std::fs::File::open(source).map_err(|e| io_error(source, e))?;
                let mut reader = std::io::Read::take(file, *size);
                tar.append_data(&mut h, path, &mut reader).map_err(bad)?;
                if reader.limit() != 0 {
                    return Err(io_error(source, "the file shrank while it was read"));
                }
            }
            Item::Link { target } => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                tar.append_link(&mut h, path, target).map_err(bad)?;
            }
        }
    }
    let uncompressed = tar.into_inner().map_err(bad)?;
    let diff_id = format!("sha256:{:x}", uncompressed.hasher.finalize());
    let mut compressed = uncompressed.inner.finish().map_err(bad)?;
    compressed.flush().map_err(bad)?;
    let digest = format!("sha256:{:x}", compressed.hasher.finalize());
    let size = compressed.written;
    let hex = &digest["sha256:".len()..];
    let path = blobs_dir.join(hex);
    std::fs::rename(&tmp, &path).map_err(|e| io_error(&path, e))?;
    Ok(BuiltLayer {
        digest,
        size,
        diff_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn layers_are_reproducible_and_sorted() {
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir(src.path().join("d")).unwrap();
        std::fs::write(src.path().join("d/b"), b"b").unwrap();
        std::fs::write(src.path().join("d/a"), b"a").unwrap();
        std::fs::set_permissions(
            src.path().join("d/a"),
            std::fs::Permissions::from_mode(0o751),
        )
        .unwrap();
        let layer = Layer::new()
            .add(src.path().join("d"), "/opt/app")
            .add(src.path().join("d/a"), "bin/a");
        let out1 = tempfile::tempdir().unwrap();
        let out2 = tempfile::tempdir().unwrap();
        let one = build_layer(&layer, out1.path(), 0).unwrap();
        let two = build_layer(&layer, out2.path(), 0).unwrap();
        assert_eq!(one, two);
        let blob = std::fs::read(out1.path().join(&one.digest[7..])).unwrap();
        assert_eq!(crate::manifest::sha256_digest(&blob), one.digest);
        let mut tar_bytes = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&blob[..]), &mut tar_bytes)
            .unwrap();
        assert_eq!(crate::manifest::sha256_digest(&tar_bytes), one.diff_id);
        let mut archive = tar::Archive::new(&tar_bytes[..]);
        let listed: Vec<(String, u32, u64)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    h.mode().unwrap(),
                    h.mtime().unwrap() + h.uid().unwrap() + h.gid().unwrap(),
                )
            })
            .collect();
        let names: Vec<&str> = listed.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "bin/",
                "bin/a",
                "opt/",
                "opt/app/",
                "opt/app/a",
                "opt/app/b"
            ]
        );
        assert_eq!(listed[1].1, 0o751);
        assert!(listed.iter().all(|(_, _, zero)| *zero == 0));
        assert!(clean_target("../x").is_err());
    }
}
