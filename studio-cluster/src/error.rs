//! The crate's error type.

use std::fmt;
use std::path::PathBuf;

use studio_azure_auth::arm::ArmErrorDetail;

/// One problem (or warning) in an apimodel, at a JSON path such as
/// `properties.agentPoolProfiles[0].name`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where: a JSON path (`properties.masterProfile.count`); empty for the whole document.
    pub path: String,
    /// What is wrong, or what happens instead.
    pub message: String,
}

impl Problem {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Everything that can go wrong in `studio-cluster`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A failure in signing in or in the ARM client.
    #[error(transparent)]
    Azure(#[from] studio_azure_auth::Error),
    /// The apimodel cannot be used: every problem found, each with its JSON path.
    #[error("{source_name}: {} problem(s) in the apimodel:{}", problems.len(), list(problems))]
    InvalidApiModel {
        /// The file (or `<input>`) it came from.
        source_name: String,
        /// Every problem found.
        problems: Vec<Problem>,
    },
    /// An option contradicts the apimodel or another option.
    #[error("{0}")]
    InvalidOption(String),
    /// The output directory exists and `force` was not given; it was left untouched.
    #[error(
        "{} already exists: refusing to overwrite it (use --force to write into it anyway)",
        path.display()
    )]
    OutputExists {
        /// The directory.
        path: PathBuf,
    },
    /// A file or directory could not be read or written.
    #[error("{}: {reason}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The SSH key pair could not be generated or encoded.
    #[error("cannot generate the SSH key pair: {0}")]
    SshKey(String),
    /// The ARM deployment was rejected or ended `Failed`/`Canceled`: ARM's error tree.
    #[error("deployment {deployment} {status}:\n{}", tree(error))]
    DeploymentFailed {
        /// The deployment's name.
        deployment: String,
        /// How it ended (`Failed`, `Canceled`, or `rejected (HTTP 400)`).
        status: String,
        /// ARM's error: code, message, target and nested details.
        error: Box<ArmErrorDetail>,
    },
    /// The credentials AKS returned are not a kubeconfig kubectl could use.
    #[error("the cluster's kubeconfig cannot be used: {0}")]
    Kubeconfig(String),
    /// A resource lacks a field the operation needs.
    #[error("{what} has no {field}: {hint}")]
    MissingField {
        /// The resource.
        what: String,
        /// The JSON path of the missing field.
        field: String,
        /// What to do about it.
        hint: String,
    },
}

fn list(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("\n  - {p}")).collect()
}

/// Renders an ARM error tree, one line per node, indented by depth.
pub(crate) fn tree(error: &ArmErrorDetail) -> String {
    fn walk(e: &ArmErrorDetail, depth: usize, out: &mut String) {
        let indent = "  ".repeat(depth + 1);
        out.push_str(&format!("{indent}{}: {}", e.code, e.message));
        if let Some(target) = e.target.as_deref().filter(|t| !t.is_empty()) {
            out.push_str(&format!(" (target: {target})"));
        }
        out.push('\n');
        for d in &e.details {
            walk(d, depth + 1, out);
        }
    }
    let mut out = String::new();
    walk(error, 0, &mut out);
    out.trim_end().to_owned()
}

pub(crate) fn io_error(path: impl Into<PathBuf>, e: impl fmt::Display) -> Error {
    Error::Io {
        path: path.into(),
        reason: e.to_string(),
    }
}
