//! Peer processes: started on loopback, logged to a file, killed when the test process ends.
//!
//! A peer's standard input is a pipe held by the test process. Peers that watch it (our node
//! servers) exit when it closes; every other program runs under a small `sh` wrapper that kills
//! it when the pipe closes. So a test binary that exits, panics or is killed leaves nothing
//! running behind it, even though shared peers live in statics that are never dropped.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Kills `"$@"` when standard input reaches end of file (the test process went away).
const WATCH_STDIN: &str = r#"exec 3<&0
"$@" </dev/null &
pid=$!
( cat <&3 >/dev/null; kill "$pid" 2>/dev/null ) &
wait "$pid""#;

/// A running peer process.
pub struct PeerProcess {
    name: String,
    child: Mutex<Child>,
    log_path: PathBuf,
}

impl PeerProcess {
    /// Starts `command` with its output in `log_path`. `watches_stdin` says whether the program
    /// itself exits when its standard input closes; if not, it is wrapped so that it does.
    pub fn spawn(
        name: &str,
        command: &mut Command,
        log_path: &Path,
        watches_stdin: bool,
    ) -> Result<Arc<Self>> {
        let log =
            File::create(log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let mut cmd = if watches_stdin {
            std::mem::replace(command, Command::new("true"))
        } else {
            let mut wrapped = Command::new("sh");
            wrapped.arg("-c").arg(WATCH_STDIN).arg("studio-peer");
            wrapped.arg(command.get_program()).args(command.get_args());
            for (k, v) in command.get_envs() {
                match v {
                    Some(v) => wrapped.env(k, v),
                    None => wrapped.env_remove(k),
                };
            }
            if let Some(dir) = command.get_current_dir() {
                wrapped.current_dir(dir);
            }
            wrapped
        };
        cmd.stdin(Stdio::piped())
            .stdout(log.try_clone()?)
            .stderr(log);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {name} ({:?})", cmd.get_program()))?;
        let peer = Arc::new(Self {
            name: name.to_owned(),
            child: Mutex::new(child),
            log_path: log_path.to_owned(),
        });
        if let Ok(mut all) = ALL_PEERS.lock() {
            all.push(peer.clone());
        }
        Ok(peer)
    }

    /// The peer's name, as given to [`PeerProcess::spawn`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the peer's output goes.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The last `max_lines` lines of the peer's output.
    pub fn log_tail(&self, max_lines: usize) -> String {
        let mut text = String::new();
        if let Ok(mut f) = File::open(&self.log_path) {
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            let _ = f.seek(SeekFrom::Start(len.saturating_sub(256 * 1024)));
            let _ = f.read_to_string(&mut text);
        }
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(max_lines)..].join("\n")
    }

    /// Fails if the process has exited, quoting its log.
    pub fn check_running(&self) -> Result<()> {
        let mut child = self.child.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        if let Some(status) = child.try_wait()? {
            bail!(
                "{} exited ({status}); its log ({}):\n{}",
                self.name,
                self.log_path.display(),
                self.log_tail(60)
            );
        }
        Ok(())
    }

    /// Waits until the log contains a line starting with `prefix` and returns that line.
    pub fn wait_for_line(&self, prefix: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
            if let Some(line) = text.lines().find(|l| l.starts_with(prefix)) {
                return Ok(line.to_owned());
            }
            self.check_running()?;
            if Instant::now() > deadline {
                bail!(
                    "{} did not print '{prefix}' within {timeout:?}; its log:\n{}",
                    self.name,
                    self.log_tail(60)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        if let Ok(mut child) = self.child.lock() {
            // Closing stdin stops the watcher; kill covers the rest.
            drop(child.stdin.take());
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Every peer started by this process, for [`LogsOnFailure`].
static ALL_PEERS: Mutex<Vec<Arc<PeerProcess>>> = Mutex::new(Vec::new());

/// A guard that prints the tail of every peer's log when the test holding it ends. The test
/// harness captures a test's output and shows it only when the test fails (by a panic or by
/// returning `Err`), so the logs appear exactly when they are needed. Each test takes one
/// first: `let _logs = LogsOnFailure::new();`.
pub struct LogsOnFailure(());

impl LogsOnFailure {
    /// Starts watching.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self(())
    }
}

impl Drop for LogsOnFailure {
    fn drop(&mut self) {
        let peers = ALL_PEERS.lock().map(|p| p.clone()).unwrap_or_default();
        for peer in peers {
            eprintln!(
                "---- log of {} ({}) ----\n{}\n---- end of {} ----",
                peer.name(),
                peer.log_path().display(),
                peer.log_tail(80),
                peer.name()
            );
        }
    }
}

/// A free TCP port on 127.0.0.1 (bound and released; peers bind it right after).
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
