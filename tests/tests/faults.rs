//! Pushing through a flaky link: a fault-injecting proxy sits between our registry client and
//! the rig's real registry and injects connection resets mid-blob, 500/502/503 bursts, 429s
//! with `Retry-After` and a stalled answer. The push completes, skopeo (reading the registry
//! directly) verifies every digest, and the bytes sent again stay below twice the size of the
//! blobs that were hit.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use serde_json::json;
use sha2::Digest;
use studio_acr::auth::RegistryCredential;
use studio_acr::client::{RegistryClient, RegistryClientOptions};
use studio_acr::distribution::Repository;
use studio_acr::layout::OciLayout;
use studio_acr::transfer::{Destination, Transfer, TransferOptions};
use studio_tests::fault_proxy::{Fault, FaultProxy};
use studio_tests::shared::{self, Mode};
use studio_tests::{LogsOnFailure, rig};

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", sha2::Sha256::digest(bytes))
}

fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn write_blob(root: &Path, bytes: &[u8]) -> Result<String> {
    let digest = sha256(bytes);
    let dir = root.join("blobs/sha256");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(&digest[7..]), bytes)?;
    Ok(digest)
}

/// An OCI layout written by hand: `layers` layers of `size` bytes of noise, tagged `v1`.
/// Returns the manifest's digest and each blob's `(digest, size)`.
fn layout(root: &Path, layers: usize, size: usize) -> Result<(String, Vec<(String, u64)>)> {
    let mut blobs = Vec::new();
    let mut descriptors = Vec::new();
    for i in 0..layers {
        let bytes = noise(7 + i as u64, size);
        let digest = write_blob(root, &bytes)?;
        descriptors.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": size}));
        blobs.push((digest, size as u64));
    }
    let diff_ids: Vec<&String> = blobs.iter().map(|(d, _)| d).collect();
    let config = serde_json::to_vec(&json!({"architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids}}))?;
    let config_digest = write_blob(root, &config)?;
    blobs.insert(0, (config_digest.clone(), config.len() as u64));
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": descriptors,
    }))?;
    let digest = write_blob(root, &manifest)?;
    std::fs::write(
        root.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    let index = json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": digest, "size": manifest.len(), "annotations": {"org.opencontainers.image.ref.name": "v1"}}]});
    std::fs::write(root.join("index.json"), serde_json::to_vec(&index)?)?;
    Ok((digest, blobs))
}

/// 22 faults: resets in the middle of blobs, 5xx bursts, 429s and one stall.
fn plan() -> Vec<Fault> {
    use Fault::*;
    let too_many = TooManyRequests {
        retry_after_secs: 1,
    };
    vec![
        ResetMidBlob,
        Status(503),
        Status(503),
        Status(503),
        ResetMidBlob,
        Status(500),
        too_many,
        ResetMidBlob,
        Status(502),
        Status(502),
        Stall,
        ResetMidBlob,
        Status(500),
        Status(503),
        ResetMidBlob,
        too_many,
        Status(502),
        ResetMidBlob,
        Status(503),
        Status(500),
        ResetMidBlob,
        Status(502),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_completes_through_twenty_injected_faults() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let registry = shared::registry(Mode::Anonymous).await?;
    let plan = plan();
    let planned = plan.len();
    let proxy = FaultProxy::start(&registry.host, plan).await?;

    let dir = tempfile::tempdir()?;
    let (digest, blobs) = layout(dir.path(), 24, 192 * 1024)?;
    let mut transport = rig().transport_options();
    transport.read_timeout = Duration::from_secs(2); // the stall must end in a retry
    let options = RegistryClientOptions {
        transport,
        initial_backoff: Duration::from_millis(20),
        ..Default::default()
    };
    let client = RegistryClient::new(&proxy.host(), RegistryCredential::Anonymous, options)?;
    let repo = Repository::new(client, "faults/app");
    let transfer = Transfer::new(TransferOptions {
        concurrency: 2,
        ..Default::default()
    });
    let pushed = transfer
        .copy(
            &OciLayout::open(dir.path())?,
            "v1",
            &Destination::Registry(repo),
            &["v1"],
        )
        .await;
    let stats = proxy.stats();
    let pushed = pushed.map_err(|e| anyhow::anyhow!("{e}; the proxy saw {stats:?}"))?;
    ensure!(
        pushed.digest == digest,
        "pushed {} not {digest}",
        pushed.digest
    );

    ensure!(
        proxy.faults_left() == 0 && stats.injected.len() == planned && planned >= 20,
        "only {} of {planned} faults were injected: {:?}",
        stats.injected.len(),
        stats.injected
    );
    for kind in [
        Fault::ResetMidBlob,
        Fault::Stall,
        Fault::TooManyRequests {
            retry_after_secs: 1,
        },
    ] {
        ensure!(
            stats.injected.iter().any(|(f, _)| *f == kind),
            "{kind:?} never hit"
        );
    }
    let retries: u32 = stats.blob_attempts.values().map(|n| n - 1).sum();
    let received: u64 = stats.blob_bytes_received.values().sum();
    let total: u64 = blobs.iter().map(|(_, n)| n).sum();
    let faulted: u64 = blobs
        .iter()
        .filter(|(d, _)| stats.faulted_blobs.contains(d))
        .map(|(_, n)| n)
        .sum();
    let resent = received.saturating_sub(total);
    eprintln!(
        "faults: {} injected over {} requests; blob upload retries {retries}; \
         blob bytes received {received} for {total}; re-sent {resent} (faulted blobs: {faulted} bytes)",
        stats.injected.len(),
        stats.requests
    );
    ensure!(faulted > 0, "no blob upload was faulted");
    ensure!(
        resent < 2 * faulted,
        "re-sent {resent} bytes, not below 2 x {faulted}"
    );

    // skopeo reads the registry directly and checks every digest as it copies.
    let certs = rig().subdir("faults-skopeo-certs")?;
    std::fs::copy(&rig().ca.cert_path, certs.join("ca.crt")).context("copying the CA")?;
    let out = tempfile::tempdir()?;
    let output = Command::new(studio_tests::require_program("skopeo")?)
        .arg("copy")
        .arg(format!("--src-cert-dir={}", certs.display()))
        .arg(format!("docker://{}/faults/app:v1", registry.host))
        .arg(format!("dir:{}", out.path().join("copy").display()))
        .output()?;
    ensure!(
        output.status.success(),
        "skopeo copy failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let manifest = std::fs::read(out.path().join("copy/manifest.json"))?;
    ensure!(sha256(&manifest) == digest, "skopeo read another manifest");
    for (d, size) in &blobs {
        let path = out.path().join("copy").join(&d[7..]);
        let bytes = std::fs::read(&path).with_context(|| path.display().to_string())?;
        ensure!(
            bytes.len() as u64 == *size && sha256(&bytes) == *d,
            "blob {d} differs"
        );
    }
    Ok(())
}
