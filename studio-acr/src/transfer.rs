//! The transfer engine: push, copy and tag images between registries and OCI layouts.
//!
//! - Manifests move as their exact bytes, so digests are preserved; the manifests of an index
//!   are written before the index, and the top manifest last, after every blob.
//! - Each blob: `HEAD` first (skip what exists); within one registry a cross-repository mount
//!   (`201` mounted; `202` falls back to an upload in the session the registry opened);
//!   otherwise a streamed upload read from its source (a file, or the source registry's
//!   response piped through). The digest is computed while streaming and the last chunk is
//!   held back until it matches, so a lying source never completes an upload
//!   ([`Error::DigestMismatch`]).
//! - Uploads are one monolithic streamed `PUT` by default; [`UploadMode::Chunked`] sends
//!   `PATCH` chunks (at least the registry's `OCI-Chunk-Min-Length`), checks each `Range` and
//!   follows each `Location`. A registry that answers `413` to a monolithic upload gets chunks.
//!   A failed attempt restarts the blob from its source in a new session (ACR cannot resume),
//!   with backoff; a refused token is renewed first. Nothing is buffered beyond one chunk of
//!   256 KiB per blob, whatever the layer size.
//! - An upload fails over to a retry when neither its body moved nor an answer came for the
//!   transport's read timeout ([`RegistryClient::send_upload`](crate::client::RegistryClient::send_upload));
//!   a multi-GB layer that keeps moving is never cut off, however long it takes.
//! - Several blobs at once ([`TransferOptions::concurrency`], default 4).
//!
//! ```no_run
//! # async fn demo() -> Result<(), studio_acr::Error> {
//! use studio_acr::auth::RegistryCredential;
//! use studio_acr::client::{RegistryClient, RegistryClientOptions};
//! use studio_acr::distribution::Repository;
//! use studio_acr::layout::OciLayout;
//! use studio_acr::transfer::{Destination, Transfer, TransferOptions};
//!
//! let client = RegistryClient::new("myacr.azurecr.io", RegistryCredential::Anonymous, RegistryClientOptions::default())?;
//! let repo = Repository::new(client, "leaf-ai/runner");
//! let transfer = Transfer::new(TransferOptions::default());
//! let layout = OciLayout::open("/tmp/runner-oci")?;
//! let pushed = transfer
//!     .copy(&layout, "latest", &Destination::Registry(repo.clone()), &["0.0.33-master-1elHeQ"])
//!     .await?;
//! println!("{} ({} blob bytes sent)", pushed.digest, pushed.stats.blob_bytes_sent);
//! // docker tag + docker push of an image already there: the manifest only.
//! transfer.tag(&repo, "0.0.33-master-1elHeQ", &["latest"]).await?;
//! # Ok(()) }
//! ```

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::future::BoxFuture;
use futures::{FutureExt, Stream, StreamExt, TryStreamExt};
use reqwest::StatusCode;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncReadExt;
use tokio_util::io::ReaderStream;

use crate::Error;
use crate::client::{Attempt, BodyProgress, check};
use crate::distribution::{BlobReader, Mount, Repository, UploadSession};
use crate::layout::OciLayout;
use crate::manifest::{Descriptor, Manifest, is_digest};
use crate::progress::{BlobOutcome, Counters, ProgressEvent, ProgressFn, TransferStats};
use crate::source::ImageSource;

/// The read size and the most a blob holds in memory at once.
pub const STREAM_CHUNK: usize = 256 * 1024;

/// How blob bytes are sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UploadMode {
    /// One streamed `PUT` per blob (switching to chunks if the registry answers `413`).
    Monolithic,
    /// `PATCH` chunks of this many bytes (raised to the registry's `OCI-Chunk-Min-Length`).
    Chunked {
        /// Bytes per `PATCH`.
        chunk_size: u64,
    },
}

/// How a [`Transfer`] behaves.
#[derive(Clone, Debug)]
pub struct TransferOptions {
    /// Blobs moved at once.
    pub concurrency: usize,
    /// Monolithic or chunked uploads.
    pub upload: UploadMode,
    /// The chunk size used when a registry refuses a monolithic upload as too large.
    pub fallback_chunk_size: u64,
    /// Attempts per blob after the first, for transient failures (each restarts the blob).
    pub max_blob_retries: u32,
}

impl Default for TransferOptions {
    fn default() -> Self {
        Self {
            concurrency: 4,
            upload: UploadMode::Monolithic,
            fallback_chunk_size: 64 * 1024 * 1024,
            max_blob_retries: 5,
        }
    }
}

/// Where a transfer writes.
#[derive(Clone, Debug)]
// Built once per transfer and passed by reference: boxing the repository would only add noise.
#[allow(clippy::large_enum_variant)]
pub enum Destination {
    /// A registry repository.
    Registry(Repository),
    /// An OCI image layout directory.
    Layout(OciLayout),
}

/// What a transfer did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferReport {
    /// The digest of the top manifest.
    pub digest: String,
    /// Its media type.
    pub media_type: String,
    /// Totals.
    pub stats: TransferStats,
}

/// The engine. Cheap to share; one value can run many transfers.
#[derive(Clone, Default)]
pub struct Transfer {
    options: TransferOptions,
    progress: Option<ProgressFn>,
}

impl std::fmt::Debug for Transfer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transfer")
            .field("options", &self.options)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// Why one upload attempt stopped.
enum Step {
    Fatal(Error),
    TooLarge,
    Reauthenticated,
    Retry { wait: Duration, reason: String },
}

impl From<Error> for Step {
    fn from(e: Error) -> Self {
        Step::Fatal(e)
    }
}

type Verdict = Arc<Mutex<Option<Error>>>;

fn set_verdict(verdict: &Verdict, error: Error) {
    if let Ok(mut v) = verdict.lock() {
        v.get_or_insert(error);
    }
}

fn take_verdict(verdict: &Verdict) -> Option<Error> {
    verdict.lock().ok().and_then(|mut v| v.take())
}

/// Blobs a registry never stores (foreign / non-distributable layers).
fn is_foreign(descriptor: &Descriptor) -> bool {
    let m = descriptor.media_type().to_string();
    m.contains("nondistributable") || m.contains("foreign")
}

impl Transfer {
    /// An engine with `options`.
    pub fn new(options: TransferOptions) -> Self {
        Self {
            options,
            progress: None,
        }
    }

    /// Reports progress to `callback`.
    pub fn with_progress(mut self, callback: ProgressFn) -> Self {
        self.progress = Some(callback);
        self
    }

    /// The options.
    pub fn options(&self) -> &TransferOptions {
        &self.options
    }

    fn emit(&self, event: ProgressEvent) {
        if let Some(p) = &self.progress {
            p(&event);
        }
    }

    /// Copies the image `reference` names in `source` to `destination`, under each of `tags`
    /// (by digest when `tags` is empty). Works for push (layout or archive → registry), pull
    /// (registry → layout), and copies within and between registries. Every tag is checked
    /// ([`check_tag_or_digest`](crate::reference::check_tag_or_digest)) before anything is read
    /// or sent.
    pub async fn copy(
        &self,
        source: &dyn ImageSource,
        reference: &str,
        destination: &Destination,
        tags: &[&str],
    ) -> Result<TransferReport, Error> {
        for tag in tags {
            crate::reference::check_tag_or_digest(tag)?;
        }
        let counters = Counters::default();
        let top = source.manifest(reference).await?;
        if is_digest(reference) {
            top.verify(reference)?;
        }
        let mut children = Vec::new();
        self.walk(source, &top, 0, &mut children).await?;
        let mut seen = HashSet::new();
        let mut blobs = Vec::new();
        for manifest in children.iter().chain(std::iter::once(&top)) {
            for blob in manifest.blobs()? {
                if !is_foreign(&blob) && seen.insert(blob.digest().to_string()) {
                    blobs.push(blob);
                }
            }
        }
        tracing::debug!(
            manifests = children.len() + 1,
            blobs = blobs.len(),
            "copying {reference}"
        );
        futures::stream::iter(
            blobs
                .iter()
                .map(|blob| self.copy_blob(source, destination, blob, &counters)),
        )
        .buffer_unordered(self.options.concurrency.max(1))
        .try_collect::<Vec<()>>()
        .await?;
        for child in &children {
            self.put_manifest(destination, child, child.digest(), &counters)
                .await?;
        }
        if tags.is_empty() {
            self.put_manifest(destination, &top, top.digest(), &counters)
                .await?;
        }
        for tag in tags {
            self.put_manifest(destination, &top, tag, &counters).await?;
        }
        Ok(TransferReport {
            digest: top.digest().to_owned(),
            media_type: top.media_type().to_owned(),
            stats: counters.snapshot(),
        })
    }

    /// Points each of `tags` at the manifest `from` names, in the same repository: the
    /// manifest's bytes are read and written again, and no blob moves. Every tag is checked
    /// before anything is sent.
    pub async fn tag(
        &self,
        repository: &Repository,
        from: &str,
        tags: &[&str],
    ) -> Result<TransferReport, Error> {
        for tag in tags {
            crate::reference::check_tag_or_digest(tag)?;
        }
        let counters = Counters::default();
        let manifest = repository.get_manifest(from).await?;
        let destination = Destination::Registry(repository.clone());
        for tag in tags {
            self.put_manifest(&destination, &manifest, tag, &counters)
                .await?;
        }
        Ok(TransferReport {
            digest: manifest.digest().to_owned(),
            media_type: manifest.media_type().to_owned(),
            stats: counters.snapshot(),
        })
    }

    /// The manifests below `manifest`, children before their parents.
    fn walk<'a>(
        &'a self,
        source: &'a dyn ImageSource,
        manifest: &'a Manifest,
        depth: usize,
        out: &'a mut Vec<Manifest>,
    ) -> BoxFuture<'a, Result<(), Error>> {
        async move {
            if depth > 8 {
                return Err(Error::InvalidImage(
                    "indexes nested more than 8 deep".to_owned(),
                ));
            }
            for child in manifest.children()? {
                let digest = child.digest().to_string();
                if out.iter().any(|m| m.digest() == digest) {
                    continue;
                }
                let m = source.manifest(&digest).await?;
                m.verify(&digest)?;
                self.walk(source, &m, depth + 1, out).await?;
                out.push(m);
            }
            Ok(())
        }
        .boxed()
    }

    async fn put_manifest(
        &self,
        destination: &Destination,
        manifest: &Manifest,
        reference: &str,
        counters: &Counters,
    ) -> Result<(), Error> {
        match destination {
            Destination::Registry(repo) => {
                if is_digest(reference) && repo.head_manifest(reference).await?.is_some() {
                    return Ok(());
                }
                repo.put_manifest(manifest, reference).await?;
            }
            Destination::Layout(layout) => {
                layout.write_manifest(manifest)?;
                if !is_digest(reference) {
                    layout.tag(reference, &manifest.descriptor()?)?;
                }
            }
        }
        Counters::add(&counters.manifests_pushed, 1);
        self.emit(ProgressEvent::ManifestPushed {
            digest: manifest.digest().to_owned(),
            reference: reference.to_owned(),
            media_type: manifest.media_type().to_owned(),
        });
        Ok(())
    }

    async fn copy_blob(
        &self,
        source: &dyn ImageSource,
        destination: &Destination,
        blob: &Descriptor,
        counters: &Counters,
    ) -> Result<(), Error> {
        let digest = blob.digest().to_string();
        self.emit(ProgressEvent::BlobStarted {
            digest: digest.clone(),
            total: blob.size(),
        });
        let outcome = match destination {
            Destination::Registry(repo) => self.push_blob(source, repo, blob, counters).await?,
            Destination::Layout(layout) => self.write_blob(source, layout, blob, counters).await?,
        };
        counters.outcome(outcome);
        self.emit(ProgressEvent::BlobFinished {
            digest,
            total: blob.size(),
            outcome,
        });
        Ok(())
    }

    async fn write_blob(
        &self,
        source: &dyn ImageSource,
        layout: &OciLayout,
        blob: &Descriptor,
        counters: &Counters,
    ) -> Result<BlobOutcome, Error> {
        let digest = blob.digest().to_string();
        if layout.has_blob(&digest, blob.size()) {
            return Ok(BlobOutcome::Skipped);
        }
        let mut failures = 0;
        loop {
            let reader = source.open_blob(blob).await?;
            let mut done = 0u64;
            let result = layout
                .write_blob(reader, blob, |n| {
                    done += n;
                    Counters::add(&counters.blob_bytes_sent, n);
                    self.emit(ProgressEvent::BlobProgress {
                        digest: digest.clone(),
                        done,
                        total: blob.size(),
                    });
                })
                .await;
            match result {
                Ok(_) => return Ok(BlobOutcome::Uploaded),
                Err(Error::Registry(reason)) if failures < self.options.max_blob_retries => {
                    failures += 1;
                    Counters::add(&counters.blob_restarts, 1);
                    self.emit(ProgressEvent::BlobRestarted {
                        digest: digest.clone(),
                        reason,
                    });
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(failures))).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn push_blob(
        &self,
        source: &dyn ImageSource,
        repo: &Repository,
        blob: &Descriptor,
        counters: &Counters,
    ) -> Result<BlobOutcome, Error> {
        let digest = blob.digest().to_string();
        if repo.blob_exists(&digest).await? {
            return Ok(BlobOutcome::Skipped);
        }
        let mut session = None;
        if let Some(from) = source.repository()
            && from.client().host() == repo.client().host()
            && from.name() != repo.name()
        {
            match repo.mount(&digest, from.name()).await? {
                Mount::Mounted => return Ok(BlobOutcome::Mounted),
                Mount::Session(s) => session = Some(s),
            }
        }
        let mut mode = self.options.upload;
        let mut failures = 0u32;
        let mut reauthentications = 0u32;
        loop {
            let s = match session.take() {
                Some(s) => s,
                None => repo.start_upload().await?,
            };
            let step = match mode {
                UploadMode::Monolithic => {
                    self.put_monolithic(source, repo, blob, &s, failures, counters)
                        .await
                }
                UploadMode::Chunked { chunk_size } => {
                    self.put_chunked(source, repo, blob, &s, chunk_size, failures, counters)
                        .await
                }
            };
            let reason = match step {
                Ok(()) => return Ok(BlobOutcome::Uploaded),
                Err(Step::Fatal(e)) => return Err(e),
                Err(Step::TooLarge) if mode == UploadMode::Monolithic => {
                    mode = UploadMode::Chunked {
                        chunk_size: self.options.fallback_chunk_size,
                    };
                    "the registry refused a monolithic upload as too large; sending chunks"
                        .to_owned()
                }
                Err(Step::TooLarge) => {
                    return Err(Error::Registry(format!(
                        "blob {digest}: the registry refused a chunk as too large"
                    )));
                }
                Err(Step::Reauthenticated) => {
                    reauthentications += 1;
                    if reauthentications > crate::client::MAX_REAUTHENTICATIONS {
                        return Err(Error::Unauthorized {
                            registry: repo.client().host().to_owned(),
                            reason: format!("blob {digest}: the registry kept refusing new tokens"),
                        });
                    }
                    "the registry refused the token; renewed it".to_owned()
                }
                Err(Step::Retry { wait, reason }) => {
                    failures += 1;
                    if failures > self.options.max_blob_retries {
                        return Err(Error::Registry(format!(
                            "blob {digest}: {reason} (gave up after {failures} attempts)"
                        )));
                    }
                    tokio::time::sleep(wait).await;
                    reason
                }
            };
            tracing::debug!(digest, reason, "restarting a blob upload from its source");
            Counters::add(&counters.blob_restarts, 1);
            self.emit(ProgressEvent::BlobRestarted {
                digest: digest.clone(),
                reason,
            });
        }
    }

    fn chunk_hook(&self, blob: &Descriptor) -> impl Fn(u64) + Send + Sync + 'static {
        let digest = blob.digest().to_string();
        let total = blob.size();
        let progress = self.progress.clone();
        let done = std::sync::atomic::AtomicU64::new(0);
        move |n: u64| {
            let d = done.fetch_add(n, std::sync::atomic::Ordering::Relaxed) + n;
            if let Some(p) = &progress {
                p(&ProgressEvent::BlobProgress {
                    digest: digest.clone(),
                    done: d,
                    total,
                });
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn put_monolithic(
        &self,
        source: &dyn ImageSource,
        repo: &Repository,
        blob: &Descriptor,
        session: &UploadSession,
        failures: u32,
        counters: &Counters,
    ) -> Result<(), Step> {
        let digest = blob.digest().to_string();
        let reader = source.open_blob(blob).await?;
        let verdict: Verdict = Arc::default();
        let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let hook = self.chunk_hook(blob);
        let sent_in_hook = sent.clone();
        let progress = BodyProgress::default();
        let moved = progress.clone();
        let body = verified_stream(reader, blob, verdict.clone(), move |n| {
            sent_in_hook.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            moved.touch();
            hook(n);
        });
        let mut url = session.location.clone();
        url.query_pairs_mut().append_pair("digest", &digest);
        let request = repo
            .client()
            .upload_http()
            .put(url)
            .header("content-type", "application/octet-stream")
            .header("content-length", blob.size())
            .body(reqwest::Body::wrap_stream(body));
        let attempt = repo
            .client()
            .send_upload(
                &[repo.scope(&["pull", "push"])],
                request,
                failures,
                &progress,
            )
            .await;
        Counters::add(
            &counters.blob_bytes_sent,
            sent.load(std::sync::atomic::Ordering::Relaxed),
        );
        if let Some(e) = take_verdict(&verdict) {
            return Err(Step::Fatal(e));
        }
        finish_attempt(
            attempt?,
            &format!("PUT blob {digest}"),
            &[StatusCode::CREATED],
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn put_chunked(
        &self,
        source: &dyn ImageSource,
        repo: &Repository,
        blob: &Descriptor,
        session: &UploadSession,
        chunk_size: u64,
        failures: u32,
        counters: &Counters,
    ) -> Result<(), Step> {
        let digest = blob.digest().to_string();
        let size = blob.size();
        let chunk = chunk_size.max(session.min_chunk.unwrap_or(0)).max(1);
        let reader = source.open_blob(blob).await?;
        let state = Arc::new(tokio::sync::Mutex::new(ChunkState {
            reader,
            hasher: Sha256::new(),
            read: 0,
        }));
        let verdict: Verdict = Arc::default();
        let hook = Arc::new(self.chunk_hook(blob));
        let scopes = [repo.scope(&["pull", "push"])];
        let mut location = session.location.clone();
        let mut offset = 0u64;
        while offset < size {
            let len = chunk.min(size - offset);
            let hook = hook.clone();
            let progress = BodyProgress::default();
            let moved = progress.clone();
            let body = chunk_stream(state.clone(), len, size, verdict.clone(), move |n| {
                moved.touch();
                hook(n)
            });
            let request = repo
                .client()
                .upload_http()
                .patch(location.clone())
                .header("content-type", "application/octet-stream")
                .header("content-range", format!("{offset}-{}", offset + len - 1))
                .header("content-length", len)
                .body(reqwest::Body::wrap_stream(body));
            let attempt = repo
                .client()
                .send_upload(&scopes, request, failures, &progress)
                .await;
            let read_now = state.lock().await.read;
            Counters::add(&counters.blob_bytes_sent, read_now.saturating_sub(offset));
            if let Some(e) = take_verdict(&verdict) {
                return Err(Step::Fatal(e));
            }
            let response = match attempt? {
                Attempt::Response(r) if r.status() == StatusCode::ACCEPTED => r,
                Attempt::Response(r) if r.status() == StatusCode::RANGE_NOT_SATISFIABLE => {
                    return Err(Step::Retry {
                        wait: Duration::ZERO,
                        reason: "the registry refused the chunk's range".to_owned(),
                    });
                }
                other => {
                    finish_attempt(other, &format!("PATCH blob {digest}"), &[]).await?;
                    return Err(Step::Fatal(Error::Registry(format!(
                        "PATCH blob {digest}: unexpected answer"
                    ))));
                }
            };
            let expected_end = offset + len - 1;
            if let Some(end) = response
                .headers()
                .get("range")
                .and_then(|v| v.to_str().ok())
                .and_then(range_end)
                && end != expected_end
            {
                return Err(Step::Retry {
                    wait: Duration::ZERO,
                    reason: format!(
                        "the registry holds bytes 0-{end}, not 0-{expected_end}; it cannot resume"
                    ),
                });
            }
            if let Some(next) = response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
            {
                location = repo.client().url(next)?;
            }
            offset += len;
        }
        {
            let mut s = state.lock().await;
            let mut extra = [0u8; 1];
            let more = s.reader.read(&mut extra).await.unwrap_or(0);
            let actual = format!("sha256:{:x}", std::mem::take(&mut s.hasher).finalize());
            if more > 0 || s.read != size || actual != digest {
                return Err(Step::Fatal(Error::DigestMismatch {
                    what: format!("blob of {size} bytes"),
                    expected: digest,
                    actual: if more > 0 {
                        format!("more than {size} bytes")
                    } else {
                        actual
                    },
                }));
            }
        }
        let mut url = location;
        url.query_pairs_mut().append_pair("digest", &digest);
        let response = repo
            .client()
            .send(&scopes, |http| {
                http.put(url.clone()).header("content-length", 0)
            })
            .await?;
        finish_attempt(
            Attempt::Response(response),
            &format!("PUT blob {digest}"),
            &[StatusCode::CREATED],
        )
        .await
    }
}

async fn finish_attempt(attempt: Attempt, what: &str, ok: &[StatusCode]) -> Result<(), Step> {
    match attempt {
        Attempt::Reauthenticated => Err(Step::Reauthenticated),
        Attempt::Transient { wait, reason } => Err(Step::Retry { wait, reason }),
        Attempt::Response(r)
            if ok.contains(&r.status()) || (ok.is_empty() && r.status().is_success()) =>
        {
            Ok(())
        }
        Attempt::Response(r) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(Step::TooLarge),
        Attempt::Response(r) if r.status() == StatusCode::NOT_FOUND => Err(Step::Retry {
            wait: Duration::from_millis(100),
            reason: format!("{what}: the registry lost the upload session"),
        }),
        Attempt::Response(r) => match check(r, what).await {
            Ok(_) => Err(Step::Fatal(Error::Registry(format!(
                "{what}: unexpected answer"
            )))),
            Err(e) => Err(Step::Fatal(e)),
        },
    }
}

/// The `<end>` of a `Range: 0-<end>` (or `bytes=0-<end>`) header.
fn range_end(value: &str) -> Option<u64> {
    let value = value.trim().trim_start_matches("bytes=");
    value.split_once('-')?.1.trim().parse().ok()
}

struct ChunkState {
    reader: BlobReader,
    hasher: Sha256,
    read: u64,
}

/// Exactly `len` bytes from the shared reader, hashed as they pass.
fn chunk_stream(
    state: Arc<tokio::sync::Mutex<ChunkState>>,
    len: u64,
    size: u64,
    verdict: Verdict,
    on_chunk: impl Fn(u64) + Send + Sync + 'static,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    futures::stream::unfold(
        (state, len, verdict, on_chunk),
        move |(state, remaining, verdict, on_chunk)| async move {
            if remaining == 0 {
                return None;
            }
            let want = remaining.min(STREAM_CHUNK as u64) as usize;
            let mut buf = BytesMut::zeroed(want);
            let mut s = state.lock().await;
            let item = match s.reader.read(&mut buf).await {
                Ok(0) => {
                    set_verdict(
                        &verdict,
                        Error::DigestMismatch {
                            what: format!("blob of {size} bytes"),
                            expected: String::from("(the descriptor's)"),
                            actual: format!("only {} bytes", s.read),
                        },
                    );
                    Err(std::io::Error::other("the blob's source ended early"))
                }
                Ok(n) => {
                    buf.truncate(n);
                    s.hasher.update(&buf);
                    s.read += n as u64;
                    on_chunk(n as u64);
                    Ok(buf.freeze())
                }
                Err(e) => Err(e),
            };
            drop(s);
            let remaining = match &item {
                Ok(b) => remaining - b.len() as u64,
                Err(_) => 0,
            };
            Some((item, (state, remaining, verdict, on_chunk)))
        },
    )
}

struct Verify<F> {
    inner: ReaderStream<BlobReader>,
    hasher: Sha256,
    held: Option<Bytes>,
    read: u64,
    expected: String,
    size: u64,
    verdict: Verdict,
    on_chunk: F,
    done: bool,
}

/// The blob's bytes, hashed as they pass; the last chunk is released only once the digest and
/// size match, so a mismatch aborts the request before the registry has the whole body.
fn verified_stream(
    reader: BlobReader,
    blob: &Descriptor,
    verdict: Verdict,
    on_chunk: impl Fn(u64) + Send + Sync + 'static,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let state = Verify {
        inner: ReaderStream::with_capacity(reader, STREAM_CHUNK),
        hasher: Sha256::new(),
        held: None,
        read: 0,
        expected: blob.digest().to_string(),
        size: blob.size(),
        verdict,
        on_chunk,
        done: false,
    };
    futures::stream::unfold(state, |mut s| async move {
        if s.done {
            return None;
        }
        loop {
            match s.inner.next().await {
                Some(Ok(chunk)) => {
                    s.read += chunk.len() as u64;
                    if s.read > s.size {
                        s.done = true;
                        set_verdict(
                            &s.verdict,
                            Error::DigestMismatch {
                                what: format!("blob of {} bytes", s.size),
                                expected: s.expected.clone(),
                                actual: format!("more than {} bytes", s.size),
                            },
                        );
                        let e = std::io::Error::other("the blob is larger than its descriptor");
                        return Some((Err(e), s));
                    }
                    s.hasher.update(&chunk);
                    if let Some(previous) = s.held.replace(chunk) {
                        (s.on_chunk)(previous.len() as u64);
                        return Some((Ok(previous), s));
                    }
                }
                Some(Err(e)) => {
                    s.done = true;
                    return Some((Err(e), s));
                }
                None => {
                    s.done = true;
                    let actual = format!("sha256:{:x}", std::mem::take(&mut s.hasher).finalize());
                    if actual != s.expected || s.read != s.size {
                        set_verdict(
                            &s.verdict,
                            Error::DigestMismatch {
                                what: format!("blob of {} bytes ({} read)", s.size, s.read),
                                expected: s.expected.clone(),
                                actual,
                            },
                        );
                        let e = std::io::Error::other("the blob's digest does not match");
                        return Some((Err(e), s));
                    }
                    let last = s.held.take()?;
                    (s.on_chunk)(last.len() as u64);
                    return Some((Ok(last), s));
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn drain(
        data: &[u8],
        descriptor: &Descriptor,
    ) -> (Vec<std::io::Result<Bytes>>, Option<Error>) {
        let verdict: Verdict = Arc::default();
        let reader: BlobReader = Box::pin(std::io::Cursor::new(data.to_vec()));
        let items = verified_stream(reader, descriptor, verdict.clone(), |_| {})
            .collect::<Vec<_>>()
            .await;
        (items, take_verdict(&verdict))
    }

    #[tokio::test]
    async fn the_last_chunk_is_held_until_the_digest_matches() {
        let data = vec![7u8; STREAM_CHUNK * 2 + 10];
        let good = crate::manifest::descriptor(
            "x/y",
            &crate::manifest::sha256_digest(&data),
            data.len() as u64,
        )
        .unwrap();
        let (items, verdict) = drain(&data, &good).await;
        assert!(verdict.is_none());
        let total: usize = items.iter().map(|i| i.as_ref().unwrap().len()).sum();
        assert_eq!(total, data.len());

        let mut lie = data.clone();
        lie[5] = 8;
        let (items, verdict) = drain(&lie, &good).await;
        assert!(matches!(verdict, Some(Error::DigestMismatch { .. })));
        // Everything but the held-back last chunk went out, then an error: never the whole body.
        let ok: usize = items
            .iter()
            .filter_map(|i| i.as_ref().ok())
            .map(Bytes::len)
            .sum();
        assert!(ok < data.len());
        assert!(items.last().unwrap().is_err());

        let (_, verdict) = drain(&data[..100], &good).await;
        assert!(matches!(verdict, Some(Error::DigestMismatch { .. })));
    }

    #[test]
    fn ranges() {
        assert_eq!(range_end("0-1023"), Some(1023));
        assert_eq!(range_end("bytes=0-9"), Some(9));
        assert_eq!(range_end("junk"), None);
    }
}
