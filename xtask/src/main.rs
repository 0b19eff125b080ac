//! `cargo xtask`: the studio command line and the workspace's only build script.
//!
//! It holds flags, output and progress only; the work happens in the crates.
//!
//! - `cargo xtask release` builds the image `release.toml` describes into a local OCI layout
//!   (or a registry with `--registry`, then rolls it out with `--deploy`) and prints its tag.
//! - `cargo xtask test` installs every missing test peer and runs the whole test suite.
//! - `cargo xtask fuzz [--seconds N] [TARGET…]` runs the cargo-fuzz targets in `tests/fuzz`.
//! - `cargo xtask bench push` measures image pushes (ours, skopeo, curl) on a local registry.
//! - `login`, `logout`, `account`, `group`, `acr`, `image`, `ad`, `role`, `cluster`, `runner`:
//!   az's, acs-engine's and kubectl's habits over the crates.
//!
//! Results go to stdout as JSON (or `-o jsonc|yaml|table|tsv|none`, after `--query`); logs,
//! prompts and progress go to stderr; an error is one line on stderr and a non-zero exit.

mod acr;
mod ad;
mod az;
mod azure;
mod bench;
mod cluster;
mod fuzz;
mod output;
mod progress;
mod release;
mod runner;
mod test;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The studio toolkit's command line.
#[derive(Parser)]
#[command(
    name = "cargo xtask",
    version,
    about,
    after_help = "Examples:\n  cargo xtask release\n  cargo xtask login\n  cargo xtask account list -o table"
)]
struct Cli {
    /// Output format.
    #[arg(short, long, global = true, value_enum, default_value_t = output::Format::Json)]
    output: output::Format,
    /// JMESPath query applied to the result (see jmespath.org).
    #[arg(long, global = true)]
    query: Option<String>,
    /// More logging (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Debug logging (same as -vv).
    #[arg(long, global = true)]
    debug: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Install missing test peers, then run every test in the workspace.
    #[command(after_help = "Example:\n  cargo xtask test -- -p studio-tests --test smoke")]
    Test(test::TestArgs),
    /// Build the release image from release.toml into _output/images (or push it).
    Release(release::ReleaseArgs),
    /// Benchmarks (figures, not assertions).
    #[command(after_help = "Example:\n  cargo xtask bench push --total-mib 256")]
    Bench(bench::BenchArgs),
    /// Sign in to Azure (device code by default).
    Login(az::LoginArgs),
    /// Sign out: remove every cached login.
    Logout(az::LogoutArgs),
    /// Subscriptions: list, show, set.
    #[command(after_help = "Example:\n  cargo xtask account list -o table")]
    Account(az::AccountArgs),
    /// Resource groups: create, show, delete.
    #[command(after_help = "Example:\n  cargo xtask group create --name studio --location eastus")]
    Group(az::GroupArgs),
    /// Container registries: check-name, create, show, list, update, delete, import, login,
    /// credential, repository.
    #[command(
        after_help = "Example:\n  cargo xtask acr create -g studio -n studioml --location eastus"
    )]
    Acr(acr::AcrArgs),
    /// Images without a Docker daemon: push, tag, copy, ls.
    #[command(after_help = "Example:\n  cargo xtask image tag studioml.azurecr.io/runner:1 latest")]
    Image(acr::ImageArgs),
    /// GPU clusters: generate, deploy (acs-engine's flags), get-credentials, attach-acr.
    #[command(
        after_help = "Example:\n  cargo xtask cluster deploy --api-model examples/azure/kubernetes.json --dns-prefix test-user-k8s --auto-suffix --location eastus"
    )]
    Cluster(cluster::ClusterArgs),
    /// The runner on the cluster: render, deploy (apply + wait), status, delete.
    #[command(
        after_help = "Example:\n  cargo xtask runner deploy --template examples/azure/deployment-1.9.yaml"
    )]
    Runner(runner::RunnerArgs),
    /// Entra ID: service principals (create-for-rbac).
    #[command(
        after_help = "Example:\n  cargo xtask ad sp create-for-rbac --name studio-runner --role Contributor --scopes /subscriptions/<id>"
    )]
    Ad(ad::AdArgs),
    /// Role assignments.
    #[command(
        after_help = "Example:\n  cargo xtask role assignment create --role AcrPull --assignee <object id> --scope <registry id>"
    )]
    Role(ad::RoleArgs),
    /// Run the cargo-fuzz targets (parsers of hostile input) for a while each.
    #[command(after_help = "Example:\n  cargo xtask fuzz --seconds 60 reference www_authenticate")]
    Fuzz(fuzz::FuzzArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let verbosity = if cli.debug {
        cli.verbose.max(2)
    } else {
        cli.verbose
    };
    let level = match verbosity {
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
    let out = output::Output {
        format: cli.output,
        query: cli.query,
    };
    match run(cli.command, &out) {
        Ok(code) => code,
        Err(e) => {
            // One line: what failed, and (from the crates' messages) what to do.
            let text = format!("{e:#}");
            let line: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            let line = line.join(" ");
            eprintln!("error: {line}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command, out: &output::Output) -> anyhow::Result<ExitCode> {
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    };
    let ok = |r: anyhow::Result<()>| r.map(|()| ExitCode::SUCCESS);
    match command {
        Command::Test(args) => test::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Fuzz(args) => fuzz::run(args),
        Command::Release(args) => runtime()?.block_on(release::run(args, out)),
        Command::Login(args) => ok(runtime()?.block_on(az::login(args, out))),
        Command::Logout(args) => ok(az::logout(args)),
        Command::Account(args) => ok(runtime()?.block_on(az::account(args, out))),
        Command::Group(args) => ok(runtime()?.block_on(az::group(args, out))),
        Command::Acr(args) => ok(runtime()?.block_on(acr::acr(args, out))),
        Command::Image(args) => ok(runtime()?.block_on(acr::image(args, out))),
        Command::Cluster(args) => ok(runtime()?.block_on(cluster::cluster(args, out))),
        Command::Runner(args) => ok(runtime()?.block_on(runner::runner(args, out))),
        Command::Ad(args) => ok(runtime()?.block_on(ad::ad(args, out))),
        Command::Role(args) => ok(runtime()?.block_on(ad::role(args, out))),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_table_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
