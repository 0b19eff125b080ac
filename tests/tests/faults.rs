//! Pushing through a flaky link: a fault-injecting proxy sits between our registry client and
//! the rig's real registry.
//!
//! - A 1 GiB image (8 layers, one of 512 MiB) is pushed in token mode through 21 injected
//!   faults (connection resets in the middle of blobs, 500/502/503 bursts, 429s with
//!   `Retry-After`, a stalled answer) and a real 401: the token service issues access tokens
//!   the registry itself refuses as expired a few seconds into the push. The push completes,
//!   skopeo (reading the registry directly) verifies every digest, and the bytes sent again
//!   stay below twice the size of the blobs that were hit.
//! - A push killed with SIGKILL midway and run again completes without sending again any blob
//!   the registry had finished.
//! - A registry that refuses monolithic uploads and asks for `OCI-Chunk-Min-Length` gets
//!   chunks of at least that length; a chunk cut off mid-body restarts the blob.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use studio_acr::auth::{ACR_REFRESH_TOKEN_USER, RegistryCredential};
use studio_acr::client::{RegistryClient, RegistryClientOptions};
use studio_acr::distribution::Repository;
use studio_acr::layout::OciLayout;
use studio_acr::transfer::{Destination, Transfer, TransferOptions};
use studio_tests::fault_proxy::{Behaviour, Fault, FaultProxy, ProxyStats};
use studio_tests::noise_image::{self, NoiseImage};
use studio_tests::registry::{Registry, RegistryAuth};
use studio_tests::shared::{self, Mode};
use studio_tests::{LogsOnFailure, rig};

const MIB: u64 = 1024 * 1024;

/// skopeo reads `image` straight from `registry` into a `dir:` copy (checking every digest as
/// it copies); then each blob file is hashed again here and the manifest compared byte for
/// byte.
fn skopeo_verifies(
    registry: &Registry,
    image: &str,
    creds: Option<&str>,
    want: &NoiseImage,
) -> Result<()> {
    let certs = rig().subdir(&format!(
        "faults-skopeo-certs-{}",
        registry.host.replace(':', "-")
    ))?;
    std::fs::copy(&rig().ca.cert_path, certs.join("ca.crt")).context("copying the CA")?;
    let out = tempfile::tempdir()?;
    let mut command = Command::new(studio_tests::require_program("skopeo")?);
    command
        .arg("copy")
        .arg(format!("--src-cert-dir={}", certs.display()));
    if let Some(c) = creds {
        command.arg("--src-creds").arg(c);
    }
    let output = command
        .arg(format!("docker://{}/{image}", registry.host))
        .arg(format!("dir:{}", out.path().join("copy").display()))
        .output()?;
    ensure!(
        output.status.success(),
        "skopeo copy failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let manifest = std::fs::read(out.path().join("copy/manifest.json"))?;
    ensure!(manifest == want.manifest, "skopeo read another manifest");
    for (d, size) in &want.blobs {
        let path = out.path().join("copy").join(&d[7..]);
        let (digest, len) =
            noise_image::file_digest(&path).with_context(|| path.display().to_string())?;
        ensure!(
            len == *size && digest == *d,
            "blob {d} read back as {digest} ({len} bytes)"
        );
    }
    Ok(())
}

/// Bytes the proxy received for blob bodies beyond one copy of each, and the size of the
/// blobs whose uploads were hit (`hit`: digests).
fn resent(stats: &ProxyStats, image: &NoiseImage, hit: &[String]) -> (u64, u64) {
    let received: u64 = stats.blob_bytes_received.values().sum();
    let faulted = image
        .blobs
        .iter()
        .filter(|(d, _)| hit.contains(d))
        .map(|(_, n)| n)
        .sum();
    (received.saturating_sub(image.blob_bytes()), faulted)
}

/// 21 faults: resets in the middle of blobs, 5xx bursts, 429s and one stall.
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
        Status(502),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gib_push_completes_through_twenty_faults_and_an_expired_token() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let (registry, service) = shared::own_token_registry("registry-faults-token").await?;
    let plan = plan();
    let planned = plan.len();
    let proxy = Arc::new(FaultProxy::start(&registry.host, plan).await?);

    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    let mut sizes = vec![512 * MIB];
    sizes.extend((0..7).map(|i| 512 * MIB / 7 + u64::from(i < (512 * MIB) % 7)));
    let image = noise_image::write_layout(dir.path(), 1, &sizes, "v1")?;
    ensure!(image.blob_bytes() > 1024 * MIB, "not a GiB image");
    eprintln!("wrote the 1 GiB layout in {:?}", started.elapsed());

    // Access tokens from now on are refused by the registry about three seconds after issue
    // while the client is told they live an hour; once the registry has refused one, tokens
    // are normal again.
    service.set_access_token_ttl(Duration::ZERO);
    service.set_access_token_skew(Duration::from_secs(57), Some(3600));
    let watch = {
        let (proxy, service) = (proxy.clone(), service.clone());
        tokio::spawn(async move {
            let done_then = loop {
                let stats = proxy.stats();
                if !stats.unauthorized.is_empty() {
                    break stats.completed_blobs.len();
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            service.set_access_token_skew(Duration::ZERO, None);
            service.set_access_token_ttl(Duration::from_secs(3600));
            done_then
        })
    };

    let mut transport = rig().transport_options();
    transport.read_timeout = Duration::from_secs(5); // the stall must end in a retry
    let options = RegistryClientOptions {
        transport,
        initial_backoff: Duration::from_millis(20),
        ..Default::default()
    };
    let client = RegistryClient::new(&proxy.host(), registry.credential().await?, options)?;
    let repo = Repository::new(client, "faults/big");
    let transfer = Transfer::new(TransferOptions::default());
    let started = Instant::now();
    let pushed = transfer
        .copy(
            &OciLayout::open(dir.path())?,
            "v1",
            &Destination::Registry(repo),
            &["v1"],
        )
        .await;
    let took = started.elapsed();
    let stats = proxy.stats();
    let pushed = pushed.map_err(|e| anyhow::anyhow!("{e}; the proxy saw {stats:?}"))?;
    ensure!(watch.is_finished(), "the registry never refused a token");
    let done_at_401 = watch.await?;
    ensure!(
        done_at_401 < image.blobs.len(),
        "the token expired only after every blob was done"
    );
    service.set_access_token_skew(Duration::ZERO, None);
    service.set_access_token_ttl(Duration::from_secs(3600));
    ensure!(
        pushed.digest == image.digest,
        "pushed {} not {}",
        pushed.digest,
        image.digest
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
        Fault::Status(500),
        Fault::Status(502),
        Fault::Status(503),
    ] {
        ensure!(
            stats.injected.iter().any(|(f, _)| *f == kind),
            "{kind:?} never hit"
        );
    }
    // The registry itself refused an expired token mid-push, and the client renewed it.
    ensure!(
        !stats.unauthorized.is_empty(),
        "the registry never refused a token"
    );
    let log = registry.log()?;
    ensure!(
        log.contains("token not to be used after"),
        "the registry's 401 was not for an expired token"
    );
    ensure!(
        stats.blob_attempts.len() == image.blobs.len(),
        "the proxy saw uploads of {} blobs, not {}",
        stats.blob_attempts.len(),
        image.blobs.len()
    );
    ensure!(
        stats.completed_blobs.len() == image.blobs.len(),
        "{} blob uploads completed, not {}",
        stats.completed_blobs.len(),
        image.blobs.len()
    );
    let retries: u32 = stats.blob_attempts.values().map(|n| n - 1).sum();
    let (resent, faulted) = resent(&stats, &image, &stats.faulted_blobs);
    eprintln!(
        "1 GiB push: {took:?}; {} faults injected + {} refused tokens (the first with \
         {done_at_401} of {} blobs done) over {} requests; \
         blob upload retries {retries}; blob restarts {}; bytes re-sent {resent} \
         (faulted blobs: {} of {} bytes); our count of blob bytes sent {}",
        stats.injected.len(),
        stats.unauthorized.len(),
        image.blobs.len(),
        stats.requests,
        pushed.stats.blob_restarts,
        stats.faulted_blobs.len(),
        faulted,
        pushed.stats.blob_bytes_sent
    );
    ensure!(retries > 0 && faulted > 0, "no blob upload was faulted");
    ensure!(
        resent < 2 * faulted,
        "re-sent {resent} bytes, not below 2 x {faulted}"
    );

    let admin = RegistryClient::new(
        &registry.host,
        registry.credential().await?,
        studio_tests::registry::client_options(),
    )?;
    let refresh = admin.acr_refresh_token().await?;
    let creds = format!("{ACR_REFRESH_TOKEN_USER}:{}", refresh.secret());
    skopeo_verifies(&registry, "faults/big:v1", Some(&creds), &image)
}

/// Runs `bench_push engine` (a real push by our engine in a process of its own) from `layout`
/// to `host` (anonymous, one blob at a time).
fn push_command(layout: &Path, host: &str, repo: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bench_push"));
    command
        .arg("engine")
        .arg("--layout")
        .arg(layout)
        .arg("--registry")
        .arg(host)
        .arg("--repo")
        .arg(repo)
        .arg("--ca")
        .arg(&rig().ca.cert_path)
        .arg("--tag")
        .arg("v1")
        .arg("--concurrency")
        .arg("1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_killed_midway_resumes_without_sending_finished_blobs_again() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let registry = shared::registry(Mode::Anonymous).await?;
    let dir = tempfile::tempdir()?;
    let image = noise_image::write_layout(dir.path(), 2, &[8 * MIB; 8], "v1")?;
    let repo = "faults/crash";

    // First run: once three blobs are done, the proxy holds the next upload; the push is
    // killed there, in the middle of a blob.
    let first = FaultProxy::start(&registry.host, Vec::new()).await?;
    first.set_behaviour(Behaviour {
        hold_after_completed: Some(3),
        ..Default::default()
    });
    let mut child = push_command(dir.path(), &first.host(), repo).spawn()?;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let stats = first.stats();
        if stats.completed_blobs.len() >= 3 && stats.held >= 1 {
            break;
        }
        if let Some(status) = child.try_wait()? {
            let output = child.wait_with_output()?;
            anyhow::bail!(
                "the push ended ({status}) before it could be killed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        ensure!(
            Instant::now() < deadline,
            "the push never got three blobs done"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill()?; // SIGKILL
    let status = child.wait()?;
    ensure!(!status.success(), "the killed push reported success");
    let done = first.stats().completed_blobs;
    ensure!(
        done.len() == 3 && done.iter().all(|d| image.blobs.iter().any(|(b, _)| b == d)),
        "completed before the kill: {done:?}"
    );
    let direct = RegistryClient::new(
        &registry.host,
        RegistryCredential::Anonymous,
        studio_tests::registry::client_options(),
    )?;
    let check = Repository::new(direct, repo);
    ensure!(
        check.head_manifest("v1").await?.is_none(),
        "the killed push wrote its manifest"
    );
    for d in &done {
        ensure!(
            check.blob_exists(d).await?,
            "{d} was reported done but is missing"
        );
    }

    // Second run, through a fresh proxy: it completes, and the blobs done before the kill
    // are found by HEAD and never sent again.
    let second = FaultProxy::start(&registry.host, Vec::new()).await?;
    let output = push_command(dir.path(), &second.host(), repo).output()?;
    ensure!(
        output.status.success(),
        "the second push failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: serde_json::Value = stdout
        .lines()
        .find_map(|l| l.strip_prefix("ENGINE "))
        .context("no ENGINE line")
        .and_then(|l| Ok(serde_json::from_str(l)?))?;
    ensure!(report["digest"] == image.digest.as_str(), "{report}");
    ensure!(report["skipped"] == 3, "{report}");
    ensure!(
        report["uploaded"] == (image.blobs.len() - 3) as u64,
        "{report}"
    );
    let stats = second.stats();
    for (d, size) in &image.blobs {
        let sent = stats.blob_bytes_received.get(d).copied().unwrap_or(0);
        if done.contains(d) {
            ensure!(
                sent == 0 && !stats.blob_attempts.contains_key(d),
                "{d}, done before the kill, was sent again ({sent} bytes)"
            );
        } else {
            ensure!(sent == *size, "{d}: {sent} bytes sent, not {size}");
        }
    }
    let not_done: u64 = image
        .blobs
        .iter()
        .filter(|(d, _)| !done.contains(d))
        .map(|(_, n)| n)
        .sum();
    ensure!(report["blob_bytes_sent"] == not_done, "{report}");
    eprintln!(
        "crash: {} blobs done before the kill; the second run skipped them and sent {not_done} of {} bytes",
        done.len(),
        image.blob_bytes()
    );
    skopeo_verifies(registry, &format!("{repo}:v1"), None, &image)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_that_needs_chunks_gets_them_and_a_cut_chunk_restarts_the_blob() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let registry = shared::registry(Mode::Basic).await?;
    let min = 3 * MIB;
    let proxy = FaultProxy::start(&registry.host, vec![Fault::ResetMidChunk]).await?;
    // The real registry's upload sessions now ask for chunks of at least 3 MiB, and a
    // monolithic upload is refused as too large.
    proxy.set_behaviour(Behaviour {
        chunk_min_length: Some(min),
        refuse_monolithic: true,
        ..Default::default()
    });
    let dir = tempfile::tempdir()?;
    let image =
        noise_image::write_layout(dir.path(), 3, &[10 * MIB, 7 * MIB + 12_345, 100_000], "v1")?;
    let client = RegistryClient::new(
        &proxy.host(),
        registry.credential().await?,
        studio_tests::registry::client_options(),
    )?;
    let transfer = Transfer::new(TransferOptions {
        fallback_chunk_size: MIB, // below the registry's minimum, which wins
        ..Default::default()
    });
    let pushed = transfer
        .copy(
            &OciLayout::open(dir.path())?,
            "v1",
            &Destination::Registry(Repository::new(client, "faults/chunked")),
            &["v1"],
        )
        .await;
    let stats = proxy.stats();
    let pushed = pushed.map_err(|e| anyhow::anyhow!("{e}; the proxy saw {stats:?}"))?;
    ensure!(pushed.digest == image.digest, "pushed {}", pushed.digest);
    ensure!(
        stats.injected.len() == 1 && stats.injected[0].0 == Fault::ResetMidChunk,
        "{:?}",
        stats.injected
    );
    ensure!(
        stats.refused_monolithic == image.blobs.len() as u64,
        "{} monolithic uploads refused, not one per blob",
        stats.refused_monolithic
    );
    // Every session's chunks: at least the minimum but the last, and every finished session
    // received exactly its blob.
    let mut sessions: Vec<&str> = stats.patches.iter().map(|p| p.session.as_str()).collect();
    sessions.sort_unstable();
    sessions.dedup();
    let mut finished = 0;
    let mut abandoned = 0;
    for session in &sessions {
        let lengths: Vec<u64> = stats
            .patches
            .iter()
            .filter(|p| p.session == *session)
            .map(|p| p.length)
            .collect();
        let (last, rest) = lengths.split_last().context("no chunk")?;
        ensure!(
            rest.iter().all(|n| *n >= min) && *last > 0,
            "session {session} sent chunks {lengths:?}"
        );
        let received = stats
            .session_bytes_received
            .get(*session)
            .copied()
            .unwrap_or(0);
        match stats.session_digests.get(*session) {
            Some(digest) => {
                let size = image
                    .blobs
                    .iter()
                    .find(|(d, _)| d == digest)
                    .map(|(_, n)| *n)
                    .context("a blob not of the image")?;
                ensure!(
                    received == size && lengths.iter().sum::<u64>() == size,
                    "{digest}: {received} bytes in chunks {lengths:?}, not {size}"
                );
                finished += 1;
            }
            None => abandoned += 1,
        }
    }
    ensure!(
        finished == image.blobs.len(),
        "{finished} sessions finished"
    );
    ensure!(
        abandoned == 1,
        "{abandoned} sessions abandoned, not the one cut off"
    );
    ensure!(
        stats.patches.iter().any(|p| p.length > MIB),
        "no chunk used the registry's minimum"
    );
    // Each blob restarted once to switch to chunks, and one more time after the cut chunk.
    ensure!(
        pushed.stats.blob_restarts == image.blobs.len() as u64 + 1,
        "{:?}",
        pushed.stats
    );
    eprintln!(
        "chunked: {} PATCHes over {} sessions ({abandoned} abandoned after the cut chunk); \
         {} monolithic uploads refused",
        stats.patches.len(),
        sessions.len(),
        stats.refused_monolithic
    );
    let (user, password) = match &registry.auth {
        RegistryAuth::Basic { username, password } => (username.clone(), password.clone()),
        _ => anyhow::bail!("not a basic registry"),
    };
    skopeo_verifies(
        registry,
        "faults/chunked:v1",
        Some(&format!("{user}:{password}")),
        &image,
    )
}
