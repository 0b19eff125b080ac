//! `cargo xtask`: the studio command line and the workspace's only build script.
//!
//! Today it has the two commands the README gives a newcomer:
//!
//! - `cargo xtask test` installs every missing test peer (Debian packages, the Entra
//!   stand-in's npm packages) and runs the whole test suite.
//! - `cargo xtask fuzz [--seconds N] [TARGET…]` runs the cargo-fuzz targets in `tests/fuzz`.
//! - `cargo xtask bench push` measures image pushes (ours, skopeo, curl) on a local registry.
//! - `cargo xtask release` reports which steps of the release exist yet; it never pretends to
//!   have done one that does not.

mod bench;
mod fuzz;
mod release;
mod test;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The studio toolkit's command line.
#[derive(Parser)]
#[command(name = "cargo xtask", version, about)]
struct Cli {
    /// More logging (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install missing test peers, then run every test in the workspace.
    Test(test::TestArgs),
    /// Build, push and deploy the runner (reports the steps that exist so far).
    Release(release::ReleaseArgs),
    /// Benchmarks (figures, not assertions).
    Bench(bench::BenchArgs),
    /// Run the cargo-fuzz targets (parsers of hostile input) for a while each.
    Fuzz(fuzz::FuzzArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level)),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Test(args) => test::run(args),
        Command::Release(args) => release::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Fuzz(args) => fuzz::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
