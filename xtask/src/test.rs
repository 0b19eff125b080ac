//! `cargo xtask test`: install what the test rig needs, then run every test.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};

/// Debian packages the rig needs, with the program each must provide.
const APT_PEERS: [(&str, &str); 7] = [
    ("docker-registry", "docker-registry"),
    ("skopeo", "skopeo"),
    ("umoci", "umoci"),
    ("chromium", "chromium"),
    ("chromium-driver", "chromedriver"),
    ("openssh-client", "ssh-keygen"),
    ("kubernetes-client", "kubectl"),
];

/// Arguments of `cargo xtask test`.
#[derive(clap::Args)]
pub struct TestArgs {
    /// Only install the test peers; run no test.
    #[arg(long)]
    install_only: bool,
    /// Arguments passed to `cargo test` after `--workspace` (e.g. `-p studio-tests`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    cargo_args: Vec<String>,
}

pub fn run(args: TestArgs) -> Result<ExitCode> {
    let root = workspace_root()?;
    install_apt_peers()?;
    install_npm_peers(&root.join("tests/peers/entra"))?;
    if args.install_only {
        return Ok(ExitCode::SUCCESS);
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root).arg("test").arg("--workspace");
    cmd.args(&args.cargo_args);
    eprintln!("xtask: running {cmd:?}");
    let status = cmd.status().context("running cargo test")?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(u8::try_from(status.code().unwrap_or(1)).unwrap_or(1))
    })
}

fn workspace_root() -> Result<PathBuf> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .context("xtask is not inside the workspace")
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn install_apt_peers() -> Result<()> {
    let mut missing: Vec<&str> = APT_PEERS
        .iter()
        .filter(|(_, program)| !on_path(program))
        .map(|(package, _)| *package)
        .collect();
    if !on_path("node") || !on_path("npm") {
        missing.extend(["nodejs", "npm"]);
    }
    if missing.is_empty() {
        return Ok(());
    }
    let install = format!(
        "apt-get install -y --no-install-recommends {}",
        missing.join(" ")
    );
    if !is_root() {
        bail!(
            "test peers are missing ({}); install them as root: apt-get update && {install}",
            missing.join(", ")
        );
    }
    eprintln!("xtask: installing test peers: {}", missing.join(" "));
    run_checked(Command::new("apt-get").arg("update").arg("-qq"))?;
    run_checked(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    for (package, program) in APT_PEERS {
        if !on_path(program) {
            bail!("installing {package} did not provide '{program}'");
        }
    }
    Ok(())
}

/// `npm ci` in `dir` unless its `node_modules` matches its lock file already.
fn install_npm_peers(dir: &Path) -> Result<()> {
    let lock = std::fs::read(dir.join("package-lock.json"))
        .with_context(|| format!("reading {}/package-lock.json", dir.display()))?;
    let stamp = dir.join("node_modules/.studio-lock-stamp");
    let wanted = format!("{:x}", fnv1a(&lock));
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
        return Ok(());
    }
    eprintln!("xtask: npm ci in {}", dir.display());
    run_checked(
        Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(dir),
    )?;
    std::fs::write(&stamp, wanted)?;
    Ok(())
}

/// A tiny content hash for the lock-file stamp (not for security).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn run_checked(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed ({status})");
    }
    Ok(())
}
