//! `cargo xtask release`: from this workspace to a runner on GPUs.
//!
//! The release is a chain of steps, each provided by one crate. Until a step's crate provides
//! it, the command says so and fails: a pipeline must never believe a release happened.

use std::process::ExitCode;

use anyhow::Result;

/// Arguments of `cargo xtask release`.
#[derive(clap::Args)]
pub struct ReleaseArgs {
    /// Only show the plan; change nothing.
    #[arg(long)]
    dry_run: bool,
}

/// One step of the release and whether the toolkit can do it yet.
struct Step {
    what: &'static str,
    crate_name: &'static str,
    available: bool,
}

const STEPS: [Step; 6] = [
    Step {
        what: "sign in to Azure AD",
        crate_name: "studio-azure-auth",
        available: false,
    },
    Step {
        what: "create and log in to the container registry",
        crate_name: "studio-acr",
        available: false,
    },
    Step {
        what: "build, tag and push the runner image",
        crate_name: "studio-acr",
        available: false,
    },
    Step {
        what: "template and deploy the GPU cluster",
        crate_name: "studio-cluster",
        available: false,
    },
    Step {
        what: "deploy the runner onto the cluster",
        crate_name: "studio-runner-deploy",
        available: false,
    },
    Step {
        what: "wait for the runner to be ready",
        crate_name: "studio-runner-deploy",
        available: false,
    },
];

pub fn run(args: ReleaseArgs) -> Result<ExitCode> {
    let cloud = studio_azure_auth::cloud::Cloud::from_env(None)?;
    eprintln!(
        "release plan (cloud {}, Resource Manager {}):",
        cloud.name, cloud.resource_manager
    );
    for (i, step) in STEPS.iter().enumerate() {
        let state = if step.available {
            "ready"
        } else {
            "not available yet"
        };
        eprintln!(
            "  {}. {:<46} {:<22} {state}",
            i + 1,
            step.what,
            step.crate_name
        );
    }
    let missing = STEPS.iter().filter(|s| !s.available).count();
    if missing == 0 {
        return Ok(ExitCode::SUCCESS);
    }
    if args.dry_run {
        eprintln!(
            "dry run: {missing} of {} steps are not available yet",
            STEPS.len()
        );
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "error: nothing was released: {missing} of {} steps are not available yet in this version of the toolkit",
        STEPS.len()
    );
    Ok(ExitCode::from(2))
}
