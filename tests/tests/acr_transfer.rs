//! studio-acr's transfer engine against the rig's real registry (all three auth modes), with
//! skopeo and umoci as the judges of what we wrote.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use serde_json::{Value, json};
use sha2::Digest;
use studio_acr::Error;
use studio_acr::archive::DockerArchive;
use studio_acr::assemble::{ImageBuilder, Layer};
use studio_acr::auth::RegistryCredential;
use studio_acr::client::RegistryClient;
use studio_acr::distribution::Repository;
use studio_acr::layout::OciLayout;
use studio_acr::progress::{BlobOutcome, ProgressEvent, ProgressFn};
use studio_acr::transfer::{Destination, Transfer, TransferOptions, UploadMode};
use studio_tests::registry::{Registry, RegistryAuth};
use studio_tests::shared::{self, Mode};
use studio_tests::{LogsOnFailure, rig};
use tokio::sync::OnceCell;

use studio_tests::registry::client_options as options;

async fn credential(registry: &Registry) -> Result<RegistryCredential> {
    registry.credential().await
}

async fn repository(registry: &Registry, name: &str) -> Result<Repository> {
    let client = RegistryClient::new(&registry.host, credential(registry).await?, options())?;
    Ok(Repository::new(client, name))
}

static SECOND: OnceCell<Registry> = OnceCell::const_new();

/// A second, anonymous registry, for copies between registries.
async fn second_registry() -> Result<&'static Registry> {
    SECOND
        .get_or_try_init(|| Registry::start("registry-second", RegistryAuth::Anonymous, None))
        .await
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", sha2::Sha256::digest(bytes))
}

/// Deterministic incompressible-ish bytes.
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

/// skopeo's view of a registry: a cert dir holding the rig's CA, and credentials.
struct Skopeo {
    cert_dir: PathBuf,
    creds: Option<String>,
}

impl Skopeo {
    async fn for_registry(registry: &Registry) -> Result<Self> {
        let cert_dir =
            rig().subdir(&format!("skopeo-certs-{}", registry.host.replace(':', "-")))?;
        std::fs::copy(&rig().ca.cert_path, cert_dir.join("ca.crt"))?;
        let creds = match &registry.auth {
            RegistryAuth::Anonymous => None,
            RegistryAuth::Basic { username, password } => Some(format!("{username}:{password}")),
            RegistryAuth::Token(_) => {
                let client =
                    RegistryClient::new(&registry.host, credential(registry).await?, options())?;
                let refresh = client.acr_refresh_token().await?;
                Some(format!(
                    "{}:{}",
                    studio_acr::auth::ACR_REFRESH_TOKEN_USER,
                    refresh.secret()
                ))
            }
        };
        Ok(Self { cert_dir, creds })
    }

    fn run(&self, args: &[&str]) -> Result<std::process::Output> {
        let output = Command::new(studio_tests::require_program("skopeo")?)
            .args(args)
            .output()
            .context("running skopeo")?;
        Ok(output)
    }

    fn source_args(&self, prefix: &str) -> Vec<String> {
        let mut args = vec![
            format!("--{prefix}cert-dir"),
            self.cert_dir.display().to_string(),
        ];
        if let Some(c) = &self.creds {
            args.push(format!("--{prefix}creds"));
            args.push(c.clone());
        }
        args
    }

    /// `skopeo inspect --raw`: the manifest bytes the registry serves.
    fn raw(&self, image: &str) -> Result<Vec<u8>> {
        let mut args = vec!["inspect".to_owned(), "--raw".to_owned()];
        args.extend(self.source_args(""));
        args.push(format!("docker://{image}"));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.run(&args)?;
        ensure!(
            out.status.success(),
            "skopeo inspect --raw {image}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(out.stdout)
    }

    fn exists(&self, image: &str) -> Result<bool> {
        let mut args = vec!["inspect".to_owned(), "--raw".to_owned()];
        args.extend(self.source_args(""));
        args.push(format!("docker://{image}"));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Ok(self.run(&args)?.status.success())
    }

    /// `skopeo inspect` (parsed; its `Digest` is the manifest digest skopeo computed).
    fn inspect(&self, image: &str) -> Result<Value> {
        let mut args = vec!["inspect".to_owned()];
        args.extend(self.source_args(""));
        args.push(format!("docker://{image}"));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.run(&args)?;
        ensure!(
            out.status.success(),
            "skopeo inspect {image}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(serde_json::from_slice(&out.stdout)?)
    }

    /// `skopeo copy docker://image dir:<tmp>`, then checks that every file of the directory
    /// is named by the sha256 of its content and the manifest is byte-identical.
    fn copy_to_dir_and_check(&self, image: &str, manifest: &[u8]) -> Result<usize> {
        let dir = tempfile::tempdir()?;
        let mut args = vec!["copy".to_owned()];
        args.extend(self.source_args("src-"));
        args.push(format!("docker://{image}"));
        args.push(format!("dir:{}", dir.path().display()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.run(&args)?;
        ensure!(
            out.status.success(),
            "skopeo copy {image}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let copied = std::fs::read(dir.path().join("manifest.json"))?;
        ensure!(copied == manifest, "skopeo read back other manifest bytes");
        let mut blobs = 0;
        for entry in std::fs::read_dir(dir.path())? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "manifest.json" || name == "version" {
                continue;
            }
            let bytes = std::fs::read(entry.path())?;
            ensure!(
                sha256(&bytes) == format!("sha256:{name}"),
                "blob {name} read back with another digest"
            );
            blobs += 1;
        }
        Ok(blobs)
    }
}

/// An OCI layout written by hand (not by our layout code): config + layers of noise.
struct TestImage {
    dir: tempfile::TempDir,
    manifest: Vec<u8>,
    blobs: Vec<(String, usize)>,
}

impl TestImage {
    fn blob_bytes(&self) -> u64 {
        self.blobs.iter().map(|(_, n)| *n as u64).sum()
    }

    fn digest(&self) -> String {
        sha256(&self.manifest)
    }

    fn layout(&self) -> Result<OciLayout> {
        Ok(OciLayout::open(self.dir.path())?)
    }
}

/// `(digest, size)` of each blob, config first.
type Blobs = Vec<(String, usize)>;

/// Path → (mode, content; `None` for a directory, the target for a symlink).
type Tree = BTreeMap<String, (u32, Option<Vec<u8>>)>;

fn write_blob(root: &Path, bytes: &[u8]) -> Result<String> {
    let digest = sha256(bytes);
    let dir = root.join("blobs/sha256");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(&digest[7..]), bytes)?;
    Ok(digest)
}

fn image_manifest(
    root: &Path,
    seed: u64,
    layer_sizes: &[usize],
    arch: &str,
) -> Result<(Vec<u8>, Blobs)> {
    let mut blobs = Vec::new();
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for (i, size) in layer_sizes.iter().enumerate() {
        let bytes = noise(seed * 100 + i as u64, *size);
        let digest = write_blob(root, &bytes)?;
        layers.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": size}));
        diff_ids.push(digest.clone());
        blobs.push((digest, *size));
    }
    let config = serde_json::to_vec(&json!({"architecture": arch, "os": "linux",
        "config": {"Env": [format!("SEED={seed}")]}, "rootfs": {"type": "layers", "diff_ids": diff_ids}}))?;
    let config_digest = write_blob(root, &config)?;
    blobs.insert(0, (config_digest.clone(), config.len()));
    let manifest = serde_json::to_vec_pretty(&json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": layers,
    }))?;
    write_blob(root, &manifest)?;
    Ok((manifest, blobs))
}

fn write_index_json(root: &Path, media_type: &str, manifest: &[u8], tag: &str) -> Result<()> {
    std::fs::write(
        root.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    let index = json!({"schemaVersion": 2, "manifests": [{"mediaType": media_type,
        "digest": sha256(manifest), "size": manifest.len(),
        "annotations": {"org.opencontainers.image.ref.name": tag}}]});
    std::fs::write(root.join("index.json"), serde_json::to_vec(&index)?)?;
    Ok(())
}

fn test_image(seed: u64, layer_sizes: &[usize]) -> Result<TestImage> {
    let dir = tempfile::tempdir()?;
    let (manifest, blobs) = image_manifest(dir.path(), seed, layer_sizes, "amd64")?;
    write_index_json(
        dir.path(),
        "application/vnd.oci.image.manifest.v1+json",
        &manifest,
        "v1",
    )?;
    Ok(TestImage {
        dir,
        manifest,
        blobs,
    })
}

fn recorder() -> (ProgressFn, Arc<Mutex<Vec<ProgressEvent>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    let callback: ProgressFn = Arc::new(move |e: &ProgressEvent| {
        if let Ok(mut v) = sink.lock() {
            v.push(e.clone());
        }
    });
    (callback, events)
}

/// What `pick` takes from each recorded event, in order.
fn picked<T>(
    events: &Mutex<Vec<ProgressEvent>>,
    pick: impl Fn(&ProgressEvent) -> Option<T>,
) -> Vec<T> {
    events
        .lock()
        .map(|e| e.iter().filter_map(&pick).collect())
        .unwrap_or_default()
}

async fn push_tag_copy_list_delete(mode: Mode, seed: u64) -> Result<()> {
    let registry = shared::registry(mode).await?;
    let skopeo = Skopeo::for_registry(registry).await?;
    let image = test_image(seed, &[300_000, 1_000_000, 5_000])?;
    let name = format!("transfer/{mode:?}/app").to_lowercase();
    let repo = repository(registry, &name).await?;
    let (callback, events) = recorder();
    let transfer = Transfer::new(TransferOptions::default()).with_progress(callback);

    // Push from the layout.
    let pushed = transfer
        .copy(
            &image.layout()?,
            "v1",
            &Destination::Registry(repo.clone()),
            &["v1"],
        )
        .await?;
    assert_eq!(pushed.digest, image.digest());
    assert_eq!(pushed.stats.blobs_uploaded, 4);
    assert_eq!(pushed.stats.blob_bytes_sent, image.blob_bytes());
    let finished = picked(&events, |e| {
        matches!(
            e,
            ProgressEvent::BlobFinished {
                outcome: BlobOutcome::Uploaded,
                ..
            }
        )
        .then_some(())
    })
    .len();
    assert_eq!(finished, 4, "one BlobFinished per blob");
    let at = format!("{}/{name}", registry.host);
    assert_eq!(skopeo.raw(&format!("{at}:v1"))?, image.manifest);
    assert_eq!(
        skopeo.inspect(&format!("{at}:v1"))?["Digest"],
        json!(image.digest())
    );
    assert_eq!(
        skopeo.copy_to_dir_and_check(&format!("{at}:v1"), &image.manifest)?,
        4
    );

    // Again, unchanged: every blob is skipped.
    let again = transfer
        .copy(
            &image.layout()?,
            "v1",
            &Destination::Registry(repo.clone()),
            &["v1"],
        )
        .await?;
    assert_eq!(again.stats.blob_bytes_sent, 0);
    assert_eq!(again.stats.blobs_skipped, 4);

    // Tag: the manifest only.
    let tagged = transfer.tag(&repo, "v1", &["v2", "v3", "v4", "v5"]).await?;
    assert_eq!(tagged.stats.blob_bytes_sent, 0);
    assert_eq!(tagged.stats.manifests_pushed, 4);
    assert_eq!(skopeo.raw(&format!("{at}:v4"))?, image.manifest);

    // Copy within the registry: mounts, zero blob bytes.
    let copy_name = format!("transfer/{mode:?}/copy").to_lowercase();
    let copy_repo = repository(registry, &copy_name).await?;
    let copied = transfer
        .copy(
            &repo,
            "v2",
            &Destination::Registry(copy_repo.clone()),
            &["c1"],
        )
        .await?;
    assert_eq!(copied.digest, image.digest());
    assert_eq!(copied.stats.blob_bytes_sent, 0);
    assert_eq!(copied.stats.blobs_mounted, 4);
    let copy_at = format!("{}/{copy_name}", registry.host);
    assert_eq!(
        skopeo.copy_to_dir_and_check(&format!("{copy_at}:c1"), &image.manifest)?,
        4
    );

    // List in pages of two.
    let mut tags = repo.tags(Some(2)).await?;
    tags.sort();
    assert_eq!(tags, ["v1", "v2", "v3", "v4", "v5"]);

    // Delete a tag alone: the distribution server cannot (it answers DELETE by tag with
    // 400 DIGEST_INVALID), so the error is typed, names the digest to delete instead, and
    // nothing changed.
    match copy_repo.delete_tag("c1").await {
        Err(Error::TagDeleteUnsupported {
            repository,
            tag,
            digest,
            reason,
        }) => {
            assert_eq!(
                (repository.as_str(), tag.as_str()),
                (copy_name.as_str(), "c1")
            );
            assert_eq!(digest, image.digest());
            assert!(reason.contains("400 DIGEST_INVALID"), "{reason}");
        }
        other => bail!("expected TagDeleteUnsupported, got {other:?}"),
    }
    let message = copy_repo
        .delete_tag("c1")
        .await
        .err()
        .map(|e| e.to_string());
    assert!(
        message.as_deref().is_some_and(|m| m.contains(&format!(
            "delete the manifest by digest instead ({copy_name}@{}",
            image.digest()
        ))),
        "{message:?}"
    );
    assert_eq!(skopeo.raw(&format!("{copy_at}:c1"))?, image.manifest);
    match copy_repo.delete_tag("no-such-tag").await {
        Err(Error::RegistryStatus { status: 404, .. }) => {}
        other => bail!("expected a 404, got {other:?}"),
    }
    copy_repo.delete_manifest(&image.digest()).await?;
    assert!(!skopeo.exists(&format!("{copy_at}@{}", image.digest()))?);
    assert_eq!(copy_repo.head_manifest(&image.digest()).await?, None);
    // The original repository is untouched.
    assert_eq!(skopeo.raw(&format!("{at}:v5"))?, image.manifest);
    Ok(())
}

#[tokio::test]
async fn anonymous_push_tag_copy_list_delete() -> Result<()> {
    let _logs = LogsOnFailure::new();
    push_tag_copy_list_delete(Mode::Anonymous, 1).await
}

#[tokio::test]
async fn basic_push_tag_copy_list_delete() -> Result<()> {
    let _logs = LogsOnFailure::new();
    push_tag_copy_list_delete(Mode::Basic, 2).await
}

#[tokio::test]
async fn token_push_tag_copy_list_delete() -> Result<()> {
    let _logs = LogsOnFailure::new();
    push_tag_copy_list_delete(Mode::Token, 3).await
}

#[tokio::test]
async fn copy_between_registries_streams_every_blob() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let source_registry = shared::registry(Mode::Basic).await?;
    let target = second_registry().await?;
    let image = test_image(4, &[700_000, 20_000])?;
    let source = repository(source_registry, "between/src").await?;
    let transfer = Transfer::default();
    transfer
        .copy(
            &image.layout()?,
            "v1",
            &Destination::Registry(source.clone()),
            &["v1"],
        )
        .await?;
    let dest = repository(target, "between/dst").await?;
    let copied = transfer
        .copy(&source, "v1", &Destination::Registry(dest), &["v1"])
        .await?;
    assert_eq!(copied.digest, image.digest());
    assert_eq!(copied.stats.blob_bytes_sent, image.blob_bytes());
    assert_eq!(copied.stats.blobs_mounted, 0);
    let skopeo = Skopeo::for_registry(target).await?;
    assert_eq!(
        skopeo
            .copy_to_dir_and_check(&format!("{}/between/dst:v1", target.host), &image.manifest)?,
        3
    );
    Ok(())
}

#[tokio::test]
async fn an_index_is_copied_children_first_with_digests_preserved() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let registry = shared::registry(Mode::Token).await?;
    let dir = tempfile::tempdir()?;
    let (amd64, _) = image_manifest(dir.path(), 5, &[100_000, 3_000], "amd64")?;
    let (arm64, _) = image_manifest(dir.path(), 6, &[90_000], "arm64")?;
    let entry = |m: &[u8], arch: &str| {
        json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha256(m),
               "size": m.len(), "platform": {"architecture": arch, "os": "linux"}})
    };
    let index = serde_json::to_vec_pretty(&json!({"schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry(&amd64, "amd64"), entry(&arm64, "arm64")]}))?;
    write_blob(dir.path(), &index)?;
    write_index_json(
        dir.path(),
        "application/vnd.oci.image.index.v1+json",
        &index,
        "multi",
    )?;
    let layout = OciLayout::open(dir.path())?;

    let repo = repository(registry, "index/app").await?;
    let (callback, events) = recorder();
    let transfer = Transfer::default().with_progress(callback);
    let pushed = transfer
        .copy(
            &layout,
            "multi",
            &Destination::Registry(repo.clone()),
            &["multi"],
        )
        .await?;
    assert_eq!(pushed.digest, sha256(&index));
    let order = picked(&events, |e| match e {
        ProgressEvent::ManifestPushed { digest, .. } => Some(digest.clone()),
        _ => None,
    });
    assert_eq!(order, [sha256(&amd64), sha256(&arm64), sha256(&index)]);

    let skopeo = Skopeo::for_registry(registry).await?;
    let at = format!("{}/index/app", registry.host);
    assert_eq!(skopeo.raw(&format!("{at}:multi"))?, index);
    assert_eq!(skopeo.raw(&format!("{at}@{}", sha256(&amd64)))?, amd64);
    assert_eq!(skopeo.raw(&format!("{at}@{}", sha256(&arm64)))?, arm64);

    // And on to another registry, digests intact.
    let target = second_registry().await?;
    let dest = repository(target, "index/copy").await?;
    let copied = transfer
        .copy(&repo, "multi", &Destination::Registry(dest), &["multi"])
        .await?;
    assert_eq!(copied.digest, sha256(&index));
    let skopeo2 = Skopeo::for_registry(target).await?;
    assert_eq!(
        skopeo2.raw(&format!("{}/index/copy:multi", target.host))?,
        index
    );
    assert_eq!(
        skopeo2.copy_to_dir_and_check(
            &format!("{}/index/copy@{}", target.host, sha256(&arm64)),
            &arm64
        )?,
        2
    );
    Ok(())
}

#[tokio::test]
async fn chunked_uploads_are_read_back() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let registry = shared::registry(Mode::Basic).await?;
    let image = test_image(7, &[200_000, 65_536, 10])?;
    let repo = repository(registry, "chunked/app").await?;
    let transfer = Transfer::new(TransferOptions {
        upload: UploadMode::Chunked {
            chunk_size: 64 * 1024,
        },
        ..Default::default()
    });
    let pushed = transfer
        .copy(
            &image.layout()?,
            "v1",
            &Destination::Registry(repo),
            &["v1"],
        )
        .await?;
    assert_eq!(pushed.stats.blob_bytes_sent, image.blob_bytes());
    let skopeo = Skopeo::for_registry(registry).await?;
    assert_eq!(
        skopeo.copy_to_dir_and_check(
            &format!("{}/chunked/app:v1", registry.host),
            &image.manifest
        )?,
        4
    );
    Ok(())
}

#[tokio::test]
async fn a_lying_source_is_caught_before_the_final_put() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let registry = shared::registry(Mode::Anonymous).await?;
    for (i, upload) in [
        UploadMode::Monolithic,
        UploadMode::Chunked {
            chunk_size: 64 * 1024,
        },
    ]
    .into_iter()
    .enumerate()
    {
        let image = test_image(8 + i as u64, &[150_000])?;
        // The layout lies: same size, other bytes, under the original digest.
        let (digest, size) = image.blobs[1].clone();
        let path = image.dir.path().join("blobs/sha256").join(&digest[7..]);
        std::fs::write(&path, noise(999, size))?;
        let repo = repository(registry, &format!("liar/app{i}")).await?;
        let transfer = Transfer::new(TransferOptions {
            upload,
            ..Default::default()
        });
        let err = transfer
            .copy(
                &image.layout()?,
                "v1",
                &Destination::Registry(repo.clone()),
                &["v1"],
            )
            .await
            .expect_err("a lying source must fail");
        match &err {
            Error::DigestMismatch { expected, .. } => assert_eq!(expected, &digest),
            other => bail!("expected DigestMismatch, got {other}"),
        }
        assert!(
            !repo.blob_exists(&digest).await?,
            "the lie reached the registry"
        );
        assert_eq!(repo.head_manifest("v1").await?, None);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_access_token_is_renewed_mid_push() -> Result<()> {
    let _logs = LogsOnFailure::new();
    // A token registry of its own: its token service issues tokens the registry refuses about
    // three seconds after issue, while telling the client they live an hour.
    let (registry, service) = shared::own_token_registry("registry-token-expiry").await?;
    service.set_access_token_ttl(Duration::ZERO);
    service.set_access_token_skew(Duration::from_secs(57), Some(3600));

    let image = test_image(10, &[256 * 1024, 4_000])?;
    let repo = repository(&registry, "expiry/app").await?;
    // Chunked, one blob at a time; after the big layer's first chunk, progress waits until
    // the token is dead, so the next PATCH carries an expired token.
    let waited = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (record, events) = recorder();
    let flag = waited.clone();
    let callback: ProgressFn = Arc::new(move |e: &ProgressEvent| {
        record(e);
        if matches!(e, ProgressEvent::BlobProgress { total, done, .. } if *total == 256 * 1024 && *done >= 64 * 1024)
            && !flag.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            std::thread::sleep(Duration::from_secs(5));
        }
    });
    let transfer = Transfer::new(TransferOptions {
        concurrency: 1,
        upload: UploadMode::Chunked {
            chunk_size: 64 * 1024,
        },
        ..Default::default()
    })
    .with_progress(callback);
    let pushed = transfer
        .copy(
            &image.layout()?,
            "v1",
            &Destination::Registry(repo),
            &["v1"],
        )
        .await?;
    assert!(waited.load(std::sync::atomic::Ordering::SeqCst));
    assert!(pushed.stats.blob_restarts >= 1, "{:?}", pushed.stats);
    let restarts = picked(&events, |e| match e {
        ProgressEvent::BlobRestarted { reason, .. } => Some(reason.clone()),
        _ => None,
    });
    assert!(restarts.iter().any(|r| r.contains("token")), "{restarts:?}");
    // The registry itself refused a token during the push.
    let log = registry.log()?;
    assert!(
        log.contains("token not to be used after"),
        "the registry never refused an expired token"
    );

    service.set_access_token_skew(Duration::ZERO, None);
    service.set_access_token_ttl(Duration::from_secs(3600));
    let skopeo = Skopeo::for_registry(&registry).await?;
    assert_eq!(
        skopeo
            .copy_to_dir_and_check(&format!("{}/expiry/app:v1", registry.host), &image.manifest)?,
        3
    );
    Ok(())
}

/// Every path under `root` with its mode and content (None for directories and links).
fn tree(root: &Path) -> Result<Tree> {
    fn walk(root: &Path, dir: &Path, out: &mut Tree) -> Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path)?;
            let rel = path.strip_prefix(root)?.to_string_lossy().into_owned();
            let mode = meta.permissions().mode() & 0o7777;
            if meta.is_dir() {
                out.insert(rel, (mode, None));
                walk(root, &path, out)?;
            } else if meta.file_type().is_symlink() {
                out.insert(
                    rel,
                    (
                        0,
                        Some(
                            std::fs::read_link(&path)?
                                .to_string_lossy()
                                .into_owned()
                                .into_bytes(),
                        ),
                    ),
                );
            } else {
                out.insert(rel, (mode, Some(std::fs::read(&path)?)));
            }
        }
        Ok(())
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out)?;
    Ok(out)
}

#[tokio::test]
async fn an_assembled_image_unpacks_with_exactly_our_files() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let registry = shared::registry(Mode::Basic).await?;
    let src = tempfile::tempdir()?;
    let s = src.path();
    // The base: one layer with one file, assembled from scratch and pushed.
    std::fs::create_dir_all(s.join("base/etc"))?;
    std::fs::write(s.join("base/etc/base.conf"), b"from the base\n")?;
    let base_repo = repository(registry, "assemble/base").await?;
    let transfer = Transfer::default();
    ImageBuilder::new()
        .layer(Layer::new().add(s.join("base/etc"), "/etc"))
        .cmd(["/bin/false"])
        .env("PATH", "/usr/bin")
        .push(&transfer, &base_repo, &["base"])
        .await?;

    // Our layers: a tree of files and modes.
    std::fs::create_dir_all(s.join("app/lib/sub"))?;
    std::fs::write(s.join("app/run.sh"), b"#!/bin/sh\necho hi\n")?;
    std::fs::set_permissions(s.join("app/run.sh"), std::fs::Permissions::from_mode(0o755))?;
    std::fs::write(s.join("app/lib/secret.key"), b"k")?;
    std::fs::set_permissions(
        s.join("app/lib/secret.key"),
        std::fs::Permissions::from_mode(0o600),
    )?;
    std::fs::write(s.join("app/lib/sub/data.bin"), noise(11, 50_000))?;
    std::fs::set_permissions(
        s.join("app/lib/sub"),
        std::fs::Permissions::from_mode(0o750),
    )?;
    std::os::unix::fs::symlink("run.sh", s.join("app/start"))?;
    std::fs::write(s.join("config.toml"), b"x = 1\n")?;
    std::fs::set_permissions(
        s.join("config.toml"),
        std::fs::Permissions::from_mode(0o640),
    )?;

    let builder = ImageBuilder::new()
        .base(Arc::new(base_repo.clone()), "base")
        .layer(Layer::new().add(s.join("app"), "/opt/app"))
        .layer(Layer::new().add(s.join("config.toml"), "/etc/app/config.toml"))
        .entrypoint(["/opt/app/run.sh"])
        .env("MODE", "test")
        .workdir("/opt/app")
        .user("1000:1000")
        .label("org.opencontainers.image.version", "0.0.33");
    let out = tempfile::tempdir()?;
    let layout = OciLayout::create(out.path().join("oci"))?;
    let manifest = builder.write_to_layout(&layout, "app", &transfer).await?;
    // Reproducible: the same inputs give the same digest.
    let layout2 = OciLayout::create(out.path().join("oci2"))?;
    assert_eq!(
        builder
            .write_to_layout(&layout2, "app", &transfer)
            .await?
            .digest(),
        manifest.digest()
    );

    // umoci unpacks it; the rootfs holds exactly the base's files and ours, with their modes.
    let bundle = out.path().join("bundle");
    let status = Command::new(studio_tests::require_program("umoci")?)
        .arg("unpack")
        .arg("--image")
        .arg(format!("{}:app", out.path().join("oci").display()))
        .arg(&bundle)
        .output()?;
    ensure!(
        status.status.success(),
        "umoci: {}",
        String::from_utf8_lossy(&status.stderr)
    );
    let got = tree(&bundle.join("rootfs"))?;
    let file = |mode: u32, bytes: &[u8]| (mode, Some(bytes.to_vec()));
    let dir = |mode: u32| (mode, None);
    let expected: Tree = [
        ("etc", dir(0o755)),
        ("etc/base.conf", file(0o644, b"from the base\n")),
        ("etc/app", dir(0o755)),
        ("etc/app/config.toml", file(0o640, b"x = 1\n")),
        ("opt", dir(0o755)),
        (
            "opt/app",
            dir(std::fs::metadata(s.join("app"))?.permissions().mode() & 0o7777),
        ),
        ("opt/app/run.sh", file(0o755, b"#!/bin/sh\necho hi\n")),
        ("opt/app/start", (0, Some(b"run.sh".to_vec()))),
        (
            "opt/app/lib",
            dir(std::fs::metadata(s.join("app/lib"))?.permissions().mode() & 0o7777),
        ),
        ("opt/app/lib/secret.key", file(0o600, b"k")),
        ("opt/app/lib/sub", dir(0o750)),
        (
            "opt/app/lib/sub/data.bin",
            file(
                std::fs::metadata(s.join("app/lib/sub/data.bin"))?
                    .permissions()
                    .mode()
                    & 0o7777,
                &noise(11, 50_000),
            ),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let base_conf_mode = std::fs::metadata(s.join("base/etc/base.conf"))?
        .permissions()
        .mode()
        & 0o7777;
    let base_etc_mode = std::fs::metadata(s.join("base/etc"))?.permissions().mode() & 0o7777;
    let mut expected = expected;
    expected.insert(
        "etc/base.conf".to_owned(),
        file(base_conf_mode, b"from the base\n"),
    );
    expected.insert("etc".to_owned(), dir(base_etc_mode));
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (path, want) in &expected {
        assert_eq!(&got[path], want, "{path}");
    }

    // The config: diff_ids are the sha256 of each uncompressed layer; our settings are there.
    let config_digest = manifest.image()?.config().digest().to_string();
    let config: Value = serde_json::from_slice(&std::fs::read(layout.blob_path(&config_digest)?)?)?;
    let image = manifest.image()?;
    let diff_ids = config["rootfs"]["diff_ids"]
        .as_array()
        .context("diff_ids")?;
    assert_eq!(diff_ids.len(), image.layers().len());
    for (layer, diff_id) in image.layers().iter().zip(diff_ids) {
        let gz = std::fs::read(layout.blob_path(layer.digest().as_ref())?)?;
        let mut tar = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut tar)?;
        assert_eq!(json!(sha256(&tar)), *diff_id);
    }
    assert_eq!(config["history"].as_array().map(Vec::len), Some(3));
    let c = &config["config"];
    assert_eq!(c["Entrypoint"], json!(["/opt/app/run.sh"]));
    assert_eq!(
        c["Cmd"],
        Value::Null,
        "an entrypoint drops the inherited Cmd"
    );
    assert_eq!(c["Env"], json!(["PATH=/usr/bin", "MODE=test"]));
    assert_eq!(c["WorkingDir"], json!("/opt/app"));
    assert_eq!(c["User"], json!("1000:1000"));
    assert_eq!(
        c["Labels"]["org.opencontainers.image.version"],
        json!("0.0.33")
    );

    // Pushed, skopeo reads it back with the same digest and config.
    let repo = repository(registry, "assemble/app").await?;
    let pushed = builder.push(&transfer, &repo, &["app"]).await?;
    assert_eq!(pushed.digest, manifest.digest());
    let skopeo = Skopeo::for_registry(registry).await?;
    let at = format!("{}/assemble/app:app", registry.host);
    let inspected = skopeo.inspect(&at)?;
    assert_eq!(inspected["Digest"], json!(manifest.digest()));
    assert_eq!(
        inspected["Labels"]["org.opencontainers.image.version"],
        json!("0.0.33")
    );
    assert_eq!(skopeo.copy_to_dir_and_check(&at, manifest.bytes())?, 4);
    Ok(())
}

#[tokio::test]
async fn a_docker_save_archive_is_pushed_with_its_blob_digests() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let registry = shared::registry(Mode::Anonymous).await?;
    let dir = tempfile::tempdir()?;
    // A `docker save` (pre-25) archive: manifest.json, <id>.json, <id>/layer.tar.
    let mut layer = tar::Builder::new(Vec::new());
    let data = noise(12, 30_000);
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    layer.append_data(&mut h, "data.bin", &data[..])?;
    let layer = layer.into_inner()?;
    let config = serde_json::to_vec(
        &json!({"architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [sha256(&layer)]}}),
    )?;
    let id = sha256(&config)[7..].to_owned();
    let mut archive = tar::Builder::new(Vec::new());
    for (name, bytes) in [
        (format!("{id}.json"), config.clone()),
        ("abc/layer.tar".to_owned(), layer.clone()),
        (
            "manifest.json".to_owned(),
            serde_json::to_vec(
                &json!([{"Config": format!("{id}.json"), "RepoTags": ["demo/saved:v1"], "Layers": ["abc/layer.tar"]}]),
            )?,
        ),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        archive.append_data(&mut h, name, &bytes[..])?;
    }
    let path = dir.path().join("saved.tar");
    std::fs::write(&path, archive.into_inner()?)?;

    let archive = DockerArchive::open(&path)?;
    let repo = repository(registry, "archive/saved").await?;
    let pushed = Transfer::default()
        .copy(
            &archive,
            "demo/saved:v1",
            &Destination::Registry(repo),
            &["v1"],
        )
        .await?;
    let skopeo = Skopeo::for_registry(registry).await?;
    let at = format!("{}/archive/saved:v1", registry.host);
    let raw = skopeo.raw(&at)?;
    assert_eq!(sha256(&raw), pushed.digest);
    let inspected = skopeo.inspect(&at)?;
    assert_eq!(inspected["Layers"], json!([sha256(&layer)]));
    assert_eq!(skopeo.copy_to_dir_and_check(&at, &raw)?, 2);
    Ok(())
}

#[tokio::test]
async fn archives_made_by_skopeo_and_docker_25_are_pushed_with_their_digests() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let registry = shared::registry(Mode::Anonymous).await?;
    let skopeo = Skopeo::for_registry(registry).await?;
    let dir = tempfile::tempdir()?;
    let layout = dir.path().join("layout");
    let image = studio_tests::noise_image::write_layout(&layout, 21, &[300_000, 50_000], "v1")?;
    let layers: Vec<&str> = image.blobs[1..].iter().map(|(d, _)| d.as_str()).collect();
    let oci = dir.path().join("oci.tar");
    let docker = dir.path().join("docker.tar");
    for destination in [
        format!("oci-archive:{}:v1", oci.display()),
        format!("docker-archive:{}:demo/app:v1", docker.display()),
    ] {
        let out = skopeo.run(&[
            "copy",
            &format!("oci:{}:v1", layout.display()),
            &destination,
        ])?;
        ensure!(
            out.status.success(),
            "skopeo copy to {destination}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // skopeo writes the manifest anew (an OCI destination gets gzip layers): the archive's own
    // index names it.
    let (archived_digest, archived_manifest) = {
        let mut files = BTreeMap::new();
        for entry in tar::Archive::new(std::fs::File::open(&oci)?).entries()? {
            let mut entry = entry?;
            let name = entry.path()?.to_string_lossy().into_owned();
            if name == "index.json" || entry.size() < 64 * 1024 {
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut entry, &mut bytes)?;
                files.insert(name, bytes);
            }
        }
        let index: Value = serde_json::from_slice(files.get("index.json").context("index.json")?)?;
        let digest = index["manifests"][0]["digest"]
            .as_str()
            .context("no manifest in index.json")?
            .to_owned();
        let bytes = files
            .get(&format!("blobs/sha256/{}", &digest[7..]))
            .context("the manifest blob")?
            .clone();
        assert_eq!(sha256(&bytes), digest);
        (digest, bytes)
    };
    let archived: Value = serde_json::from_slice(&archived_manifest)?;
    let archived_layers: Vec<&str> = archived["layers"]
        .as_array()
        .context("layers")?
        .iter()
        .filter_map(|l| l["digest"].as_str())
        .collect();
    // `docker save` since Docker 25: an OCI layout in the tar, plus the old manifest.json
    // naming the same blobs.
    let docker25 = dir.path().join("docker25.tar");
    {
        let mut tar = tar::Builder::new(std::fs::File::create(&docker25)?);
        let mut from = tar::Archive::new(std::fs::File::open(&oci)?);
        for entry in from.entries()? {
            let mut entry = entry?;
            let mut header = entry.header().clone();
            let path = entry.path()?.into_owned();
            tar.append_data(&mut header, path, &mut entry)?;
        }
        let manifest_json = serde_json::to_vec(&json!([{
            "Config": format!("blobs/sha256/{}", &image.blobs[0].0[7..]),
            "RepoTags": ["demo/app:v1"],
            "Layers": archived_layers.iter().map(|d| format!("blobs/sha256/{}", &d[7..])).collect::<Vec<_>>(),
        }]))?;
        let mut header = tar::Header::new_gnu();
        header.set_size(manifest_json.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, "manifest.json", &manifest_json[..])?;
        tar.finish()?;
    }
    for (kind, path, reference) in [
        ("oci", &oci, "v1"),
        ("docker25", &docker25, "demo/app:v1"),
        ("docker", &docker, "demo/app:v1"),
    ] {
        let archive = DockerArchive::open(path)?;
        let repo = repository(registry, &format!("archives/{kind}")).await?;
        let pushed = Transfer::default()
            .copy(&archive, reference, &Destination::Registry(repo), &["v1"])
            .await?;
        let at = format!("{}/archives/{kind}:v1", registry.host);
        let raw = skopeo.raw(&at)?;
        assert_eq!(sha256(&raw), pushed.digest, "{kind}");
        if kind == "docker" {
            // The old format has no manifest to keep: ours is new, the blobs are the image's.
            assert_ne!(pushed.digest, archived_digest);
        } else {
            assert_eq!(
                pushed.digest, archived_digest,
                "{kind}: the manifest was not kept"
            );
            assert_eq!(raw, archived_manifest, "{kind}");
        }
        let served: Value = serde_json::from_slice(&raw)?;
        assert_eq!(
            served["config"]["digest"],
            json!(image.blobs[0].0),
            "{kind}"
        );
        // docker-archive keeps the layers as they were; oci-archive has skopeo's gzip ones.
        let expected = if kind == "docker" {
            &layers
        } else {
            &archived_layers
        };
        assert_eq!(skopeo.inspect(&at)?["Layers"], json!(expected), "{kind}");
        assert_eq!(skopeo.copy_to_dir_and_check(&at, &raw)?, 3, "{kind}");
        assert_eq!(pushed.stats.blobs_uploaded + pushed.stats.blobs_skipped, 3);
    }
    Ok(())
}
