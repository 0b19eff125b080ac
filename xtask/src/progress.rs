//! Progress on stderr: bars when stderr is a terminal, plain lines when it is not (CI logs).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use studio_acr::progress::{ProgressEvent, ProgressFn};

fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(12)]
}

/// A transfer callback: one bar per blob on a terminal; otherwise a line when a blob starts,
/// restarts or finishes, and when a manifest is written.
pub fn transfer() -> ProgressFn {
    if std::io::stderr().is_terminal() {
        let bars = indicatif::MultiProgress::new();
        let live: Mutex<HashMap<String, indicatif::ProgressBar>> = Mutex::new(HashMap::new());
        let style = indicatif::ProgressStyle::with_template(
            "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
        Arc::new(move |event: &ProgressEvent| {
            let mut live = live.lock().unwrap_or_else(|e| e.into_inner());
            match event {
                ProgressEvent::BlobStarted { digest, total } => {
                    let bar = bars.add(indicatif::ProgressBar::new(*total));
                    bar.set_style(style.clone());
                    bar.set_prefix(short(digest).to_owned());
                    live.insert(digest.clone(), bar);
                }
                ProgressEvent::BlobProgress { digest, done, .. } => {
                    if let Some(bar) = live.get(digest) {
                        bar.set_position(*done);
                    }
                }
                ProgressEvent::BlobRestarted { digest, reason } => {
                    let _ = bars.println(format!("{}: restarting: {reason}", short(digest)));
                }
                ProgressEvent::BlobFinished { digest, .. } => {
                    if let Some(bar) = live.remove(digest) {
                        bar.finish();
                    }
                }
                ProgressEvent::ManifestPushed { reference, .. } => {
                    let _ = bars.println(format!("manifest {reference} written"));
                }
                _ => {}
            }
        })
    } else {
        Arc::new(|event: &ProgressEvent| match event {
            ProgressEvent::BlobStarted { digest, total } => {
                eprintln!("blob {} ({total} bytes)", short(digest));
            }
            ProgressEvent::BlobRestarted { digest, reason } => {
                eprintln!("blob {}: restarting: {reason}", short(digest));
            }
            ProgressEvent::BlobFinished {
                digest, outcome, ..
            } => {
                eprintln!("blob {}: {outcome:?}", short(digest));
            }
            ProgressEvent::ManifestPushed { reference, .. } => {
                eprintln!("manifest {reference} written");
            }
            _ => {}
        })
    }
}
