//! The real-peer test rig: every suite in `tests/tests/` starts its peers through this crate.
//!
//! Peers run on loopback, on free ports, over https with a CA made for the run ([`pki`]), and
//! are shared by all tests of one test binary (one suite) so each starts once:
//!
//! - [`registry`]: Debian's `docker-registry` (the CNCF distribution server) in anonymous,
//!   htpasswd and token mode; in token mode it trusts [`acr_token`], our service speaking ACR's
//!   `/oauth2/exchange` and `/oauth2/token` protocol, which verifies Entra tokens.
//! - [`entra`]: an Entra ID stand-in on `oidc-provider` (npm) with Entra's route shapes.
//! - [`browser`]: headless Chromium driven over WebDriver, to approve a device login as a
//!   person would.
//! - [`vectors`]: loaders for `../shared/vectors` (ARM examples, SDK recordings) and a way to
//!   serve a recording through wiremock.
//! - [`arm_fake`]: an ARM client against a wiremock fake with real Entra tokens, helpers to
//!   serve ARM examples through it, and [`arm_fake::ArmFake`], a stateful Resource Manager
//!   whose bodies come from the vectors.
//! - [`kube_server`]: a Kubernetes API server (discovery, CRUD, watch, server-side apply)
//!   with a simulated GPU cluster whose kubelet pulls from the rig's registry.
//! - [`fault_proxy`]: an https proxy in front of a peer that injects connection resets,
//!   5xx bursts, 429s and stalls, and counts what was sent again.
//! - [`noise_image`]: large OCI layouts of incompressible noise, written to disk in pieces.
//! - [`arm_faults`]: faults (429 storms, 5xx, `PrincipalNotFound`) injected in front of the ARM
//!   fake's router, every other answer still the fake's.
//! - [`tcp_faults`]: a TCP proxy that takes the network down (resets) in front of a real peer.
//! - [`fuzz_entry`]: the entry function of each cargo-fuzz target, shared with the CI replay.
//! - [`https`]: the rustls front that puts wiremock-based fakes on https.
//! - [`process`]: peer processes, their logs, and printing those logs when a test fails.
//!
//! Peers that are missing from the machine are installed by `cargo xtask test`; the rig fails
//! with a message saying so rather than skipping.

pub mod acr_token;
pub mod arm_fake;
pub mod arm_faults;
pub mod browser;
pub mod entra;
pub mod fault_proxy;
pub mod fuzz_entry;
pub mod https;
pub mod kube_server;
pub mod noise_image;
pub mod pki;
pub mod process;
pub mod registry;
pub mod shared;
pub mod tcp_faults;
pub mod vectors;

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use anyhow::{Context, Result};

pub use process::LogsOnFailure;

/// What every peer of this test process shares: a working directory and the run's CA.
pub struct Rig {
    /// A directory for this process's peers (configs, storage, logs), removed next run.
    pub dir: PathBuf,
    /// The run's certificate authority.
    pub ca: pki::TestCa,
    /// One loopback server certificate used by every https peer of the run.
    pub server_cert: pki::IssuedCert,
}

static RIG: LazyLock<Rig> = LazyLock::new(|| match Rig::create() {
    Ok(rig) => rig,
    Err(e) => panic!("cannot set up the test rig: {e:#}"),
});

/// The process-wide rig (created on first use).
pub fn rig() -> &'static Rig {
    &RIG
}

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("rig")
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("cannot start the rig runtime: {e}"))
});

/// The runtime that hosts the rig's own servers. Each `#[tokio::test]` has a runtime of its
/// own that dies with the test; shared servers must outlive it, so they are spawned here.
pub fn rig_runtime() -> &'static tokio::runtime::Runtime {
    &RUNTIME
}

impl Rig {
    fn create() -> Result<Self> {
        let base = std::env::temp_dir();
        remove_stale_dirs(&base);
        let dir = base.join(format!("studio-rig-{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let ca = pki::TestCa::new(&dir)?;
        let server_cert = ca.issue_server(&dir, "loopback")?;
        Ok(Self {
            dir,
            ca,
            server_cert,
        })
    }

    /// A fresh subdirectory of the rig's directory.
    pub fn subdir(&self, name: &str) -> Result<PathBuf> {
        let dir = self.dir.join(name);
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// Transport options that trust the run's CA, for any studio crate.
    pub fn transport_options(&self) -> studio_azure_auth::transport::TransportOptions {
        studio_azure_auth::transport::TransportOptions {
            ssl_cert_file: None,
            ..Default::default()
        }
        .with_extra_roots_pem(self.ca.cert_pem.clone())
    }

    /// A reqwest client that trusts the run's CA (built by the toolkit's own transport).
    pub fn http(&self) -> Result<reqwest::Client> {
        Ok(studio_azure_auth::transport::http_client(
            &self.transport_options(),
        )?)
    }
}

/// Removes rig directories left by test processes that no longer run.
fn remove_stale_dirs(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_prefix("studio-rig-")
            && !Path::new("/proc").join(pid).exists()
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Writes a file readable by its owner only (mode 0600).
pub fn write_private(path: &Path, contents: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(contents)?;
    Ok(())
}

/// The workspace root (the folder holding the top-level `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Says which program is missing and how to get it.
pub fn require_program(program: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let candidate = dir.join(program);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    anyhow::bail!(
        "'{program}' is not installed: run `cargo xtask test`, which installs every test peer"
    )
}
