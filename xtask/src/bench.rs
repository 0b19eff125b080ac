//! `cargo xtask bench push`: runs the push benchmark, a binary of the test rig
//! (`tests/src/bin/bench_push.rs`), built in release mode, and passes its figures through.

use std::path::Path;
use std::process::{Command, ExitCode};

use anyhow::{Context, Result};

/// Arguments of `cargo xtask bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: Bench,
}

#[derive(clap::Subcommand)]
enum Bench {
    /// Push a generated 1 GiB image with studio-acr, skopeo and curl; re-push; retag.
    Push {
        /// Layers in the image.
        #[arg(long, default_value_t = 8)]
        layers: usize,
        /// Size of the largest layer, MiB.
        #[arg(long, default_value_t = 512)]
        big_mib: u64,
        /// Total image size, MiB.
        #[arg(long, default_value_t = 1024)]
        total_mib: u64,
        /// Blobs our engine moves at once.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Where to put the generated image (default: the temporary directory).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
}

pub fn run(args: BenchArgs) -> Result<ExitCode> {
    let Bench::Push {
        layers,
        big_mib,
        total_mib,
        concurrency,
        dir,
    } = args.what;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask is not inside the workspace")?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args([
            "run",
            "--release",
            "-p",
            "studio-tests",
            "--bin",
            "bench_push",
            "--",
        ])
        .args(["--layers", &layers.to_string()])
        .args(["--big-mib", &big_mib.to_string()])
        .args(["--total-mib", &total_mib.to_string()])
        .args(["--concurrency", &concurrency.to_string()]);
    if let Some(dir) = dir {
        cmd.arg("--dir").arg(dir);
    }
    eprintln!("xtask: running {cmd:?}");
    let status = cmd.status().context("running the benchmark")?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
