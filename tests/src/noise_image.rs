//! Large test images written straight to disk: an OCI image layout whose layers are
//! incompressible noise, generated and hashed in 1 MiB pieces so a 1 GiB image never sits in
//! memory.

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use serde_json::json;
use sha2::Digest;

/// What [`write_layout`] wrote.
#[derive(Clone, Debug)]
pub struct NoiseImage {
    /// The manifest's digest.
    pub digest: String,
    /// The manifest's bytes.
    pub manifest: Vec<u8>,
    /// Every blob as `(digest, size)`: the config first, then the layers in order.
    pub blobs: Vec<(String, u64)>,
}

impl NoiseImage {
    /// The sum of the blob sizes.
    pub fn blob_bytes(&self) -> u64 {
        self.blobs.iter().map(|(_, n)| n).sum()
    }
}

/// Random bytes from aws-lc (fast in an unoptimised build, unlike a generator in Rust).
fn fill_random(buf: &mut [u8]) -> Result<()> {
    rustls::crypto::aws_lc_rs::default_provider()
        .secure_random
        .fill(buf)
        .map_err(|_| anyhow::anyhow!("no randomness"))
}

fn write_blob(root: &Path, bytes: &[u8]) -> Result<String> {
    let digest = format!("sha256:{:x}", sha2::Sha256::digest(bytes));
    std::fs::write(root.join("blobs/sha256").join(&digest[7..]), bytes)?;
    Ok(digest)
}

fn write_noise(root: &Path, seed: u64, len: u64) -> Result<String> {
    let tmp = root.join(format!("blobs/sha256/tmp-{seed}"));
    let mut file = std::fs::File::create(&tmp)?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        fill_random(&mut buf[..n])?;
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n])?;
        left -= n as u64;
    }
    file.flush()?;
    let digest = format!("sha256:{:x}", hasher.finalize());
    std::fs::rename(&tmp, root.join("blobs/sha256").join(&digest[7..]))?;
    Ok(digest)
}

/// Writes an OCI image layout at `root` with one layer of noise per entry of `layer_sizes`
/// (random, so every image is new to a registry), tagged `tag`; `seed` only names files and
/// labels the config.
pub fn write_layout(root: &Path, seed: u64, layer_sizes: &[u64], tag: &str) -> Result<NoiseImage> {
    std::fs::create_dir_all(root.join("blobs/sha256"))?;
    let mut layers = Vec::new();
    let mut blobs = Vec::new();
    for (i, size) in layer_sizes.iter().enumerate() {
        let digest = write_noise(root, seed * 1000 + i as u64 + 1, *size)?;
        layers.push(
            json!({"mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": digest, "size": size}),
        );
        blobs.push((digest, *size));
    }
    let diff_ids: Vec<&String> = blobs.iter().map(|(d, _)| d).collect();
    let config = serde_json::to_vec(&json!({"architecture": "amd64", "os": "linux",
        "config": {"Labels": {"seed": seed.to_string()}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids}}))?;
    let config_digest = write_blob(root, &config)?;
    blobs.insert(0, (config_digest.clone(), config.len() as u64));
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest, "size": config.len()},
        "layers": layers,
    }))?;
    let digest = write_blob(root, &manifest)?;
    std::fs::write(
        root.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    let index = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest,
        "size": manifest.len(), "annotations": {"org.opencontainers.image.ref.name": tag}}]});
    std::fs::write(root.join("index.json"), serde_json::to_vec(&index)?)?;
    Ok(NoiseImage {
        digest,
        manifest,
        blobs,
    })
}

/// The sha256 digest of a file, read in 1 MiB pieces.
pub fn file_digest(path: &Path) -> Result<(String, u64)> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((format!("sha256:{:x}", hasher.finalize()), size))
}
