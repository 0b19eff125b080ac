//! `cargo xtask fuzz`: runs every cargo-fuzz target in `tests/fuzz` for a while and reports
//! how many inputs each ran.
//!
//! cargo-fuzz needs nightly-only compiler flags (sanitizers, coverage); they are enabled on the
//! stable toolchain with `RUSTC_BOOTSTRAP=1`. cargo-fuzz itself is installed from crates.io
//! when missing. The committed seeds (`tests/fuzz/seeds/<target>`) are only read; what the
//! fuzzer learns goes to `tests/fuzz/target/corpus/<target>` and crashing inputs to
//! `tests/fuzz/artifacts/<target>/`.

use std::path::Path;
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, Result, bail};

/// The fuzz targets, in the order they run.
pub const TARGETS: [&str; 6] = [
    "reference",
    "www_authenticate",
    "apimodel",
    "template",
    "docker_config",
    "manifest",
];

/// Arguments of `cargo xtask fuzz`.
#[derive(clap::Args)]
pub struct FuzzArgs {
    /// How long each target runs.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Targets to run (all when none is named).
    targets: Vec<String>,
}

/// What one target did.
struct Outcome {
    target: String,
    execs: Option<u64>,
    ok: bool,
}

pub fn run(args: FuzzArgs) -> Result<ExitCode> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask is not inside the workspace")?;
    let fuzz_dir = root.join("tests/fuzz");
    let targets: Vec<String> = if args.targets.is_empty() {
        TARGETS.iter().map(|t| (*t).to_owned()).collect()
    } else {
        for t in &args.targets {
            if !TARGETS.contains(&t.as_str()) {
                bail!("unknown fuzz target '{t}' (known: {})", TARGETS.join(", "));
            }
        }
        args.targets.clone()
    };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    ensure_cargo_fuzz(&cargo)?;
    let mut outcomes = Vec::new();
    for target in &targets {
        let corpus = fuzz_dir.join("target/corpus").join(target);
        let artifacts = fuzz_dir.join("artifacts").join(target);
        std::fs::create_dir_all(&corpus).with_context(|| corpus.display().to_string())?;
        std::fs::create_dir_all(&artifacts).with_context(|| artifacts.display().to_string())?;
        let mut cmd = Command::new(&cargo);
        cmd.current_dir(&fuzz_dir)
            .env("RUSTC_BOOTSTRAP", "1")
            // Sanitizer builds share nothing with the workspace's: keep them in tests/fuzz/target.
            .env_remove("CARGO_TARGET_DIR")
            .args(["fuzz", "run", target])
            .arg(&corpus)
            .arg(fuzz_dir.join("seeds").join(target))
            .arg("--")
            .arg(format!("-max_total_time={}", args.seconds))
            .arg(format!("-artifact_prefix={}/", artifacts.display()))
            .arg("-print_final_stats=1")
            .arg("-rss_limit_mb=4096")
            .stdout(Stdio::inherit())
            .stderr(Stdio::piped());
        eprintln!("xtask: fuzzing {target} for {} s", args.seconds);
        let output = cmd.output().with_context(|| format!("running {cmd:?}"))?;
        let log = String::from_utf8_lossy(&output.stderr);
        let execs = log
            .lines()
            .filter_map(|l| l.strip_prefix("stat::number_of_executed_units:"))
            .filter_map(|n| n.trim().parse().ok())
            .next_back();
        if !output.status.success() {
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
        outcomes.push(Outcome {
            target: target.clone(),
            execs,
            ok: output.status.success(),
        });
    }
    println!("{:<18} {:>14}  result", "target", "executions");
    for o in &outcomes {
        let execs = o.execs.map_or_else(|| "-".to_owned(), |n| n.to_string());
        let result = if o.ok { "ok" } else { "FAILED (see above)" };
        println!("{:<18} {:>14}  {result}", o.target, execs);
    }
    Ok(if outcomes.iter().all(|o| o.ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn ensure_cargo_fuzz(cargo: &std::ffi::OsStr) -> Result<()> {
    let found = Command::new(cargo)
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return Ok(());
    }
    eprintln!("xtask: installing cargo-fuzz from crates.io");
    let status = Command::new(cargo)
        .args(["install", "cargo-fuzz", "--locked"])
        .status()
        .context("running cargo install cargo-fuzz")?;
    if !status.success() {
        bail!("cargo install cargo-fuzz --locked failed ({status})");
    }
    Ok(())
}
