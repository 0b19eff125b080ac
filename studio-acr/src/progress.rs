//! Progress of a transfer: per-blob events for a command line, and the totals of a run.
//!
//! A [`Transfer`](crate::transfer::Transfer) calls a [`ProgressFn`] for every event; the
//! callback must be quick (it runs on the upload tasks). [`channel`] turns the events into a
//! stream a CLI can drain at its own pace.
//!
//! ```
//! use studio_acr::progress::{self, ProgressEvent};
//!
//! let (callback, mut events) = progress::channel();
//! callback(&ProgressEvent::BlobProgress { digest: "sha256:…".into(), done: 10, total: 20 });
//! assert!(matches!(events.try_recv(), Ok(ProgressEvent::BlobProgress { done: 10, .. })));
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// What happened to one blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobOutcome {
    /// Its bytes were sent.
    Uploaded,
    /// The destination had it already (`HEAD` answered 200): nothing sent.
    Skipped,
    /// Mounted from another repository of the same registry: nothing sent.
    Mounted,
}

/// One step of a transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProgressEvent {
    /// A blob is being checked, mounted or uploaded.
    BlobStarted {
        /// Its digest.
        digest: String,
        /// Its size.
        total: u64,
    },
    /// Bytes of a blob sent so far in the current attempt.
    BlobProgress {
        /// Its digest.
        digest: String,
        /// Bytes sent.
        done: u64,
        /// Its size.
        total: u64,
    },
    /// An upload failed part-way and starts again from the blob's source.
    BlobRestarted {
        /// Its digest.
        digest: String,
        /// Why.
        reason: String,
    },
    /// A blob is at the destination.
    BlobFinished {
        /// Its digest.
        digest: String,
        /// Its size.
        total: u64,
        /// How it got there.
        outcome: BlobOutcome,
    },
    /// A manifest was written (children of an index come before the index).
    ManifestPushed {
        /// Its digest.
        digest: String,
        /// The tag or digest it was written under.
        reference: String,
        /// Its media type.
        media_type: String,
    },
}

/// The progress callback.
pub type ProgressFn = Arc<dyn Fn(&ProgressEvent) + Send + Sync>;

/// A callback that forwards every event into an unbounded channel.
pub fn channel() -> (
    ProgressFn,
    tokio::sync::mpsc::UnboundedReceiver<ProgressEvent>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let callback: ProgressFn = Arc::new(move |event: &ProgressEvent| {
        let _ = tx.send(event.clone());
    });
    (callback, rx)
}

/// Totals of one transfer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransferStats {
    /// Blob bytes sent to the destination, counting restarted attempts again.
    pub blob_bytes_sent: u64,
    /// Blobs whose bytes were sent.
    pub blobs_uploaded: u64,
    /// Blobs the destination already had.
    pub blobs_skipped: u64,
    /// Blobs mounted from another repository of the same registry.
    pub blobs_mounted: u64,
    /// Blob uploads started again after a failure.
    pub blob_restarts: u64,
    /// Manifests written (by digest or tag).
    pub manifests_pushed: u64,
}

/// Thread-safe counters behind [`TransferStats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) blob_bytes_sent: AtomicU64,
    pub(crate) blobs_uploaded: AtomicU64,
    pub(crate) blobs_skipped: AtomicU64,
    pub(crate) blobs_mounted: AtomicU64,
    pub(crate) blob_restarts: AtomicU64,
    pub(crate) manifests_pushed: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> TransferStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        TransferStats {
            blob_bytes_sent: get(&self.blob_bytes_sent),
            blobs_uploaded: get(&self.blobs_uploaded),
            blobs_skipped: get(&self.blobs_skipped),
            blobs_mounted: get(&self.blobs_mounted),
            blob_restarts: get(&self.blob_restarts),
            manifests_pushed: get(&self.manifests_pushed),
        }
    }

    pub(crate) fn outcome(&self, outcome: BlobOutcome) {
        Self::add(
            match outcome {
                BlobOutcome::Uploaded => &self.blobs_uploaded,
                BlobOutcome::Skipped => &self.blobs_skipped,
                BlobOutcome::Mounted => &self.blobs_mounted,
            },
            1,
        );
    }
}
