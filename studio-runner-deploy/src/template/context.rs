//! The data a stencil template sees: `.duat.*` from the project and git, `.Env.*`, and the
//! `--values k=v,k=v` overrides.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::value::Value;
use crate::Error;

/// What duat knows about the project (`.duat.*`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Duat {
    /// `.duat.version`: the first `<repo-version>…</repo-version>` in the repository's
    /// README.md (as duat reads it), else the Cargo workspace version.
    pub version: String,
    /// `.duat.module`: the project directory's name, cleaned for docker ([`scrub_module_name`]).
    pub module: String,
    /// `.duat.gitBranch`: the last path segment of HEAD's ref.
    pub git_branch: String,
    /// `.duat.gitHash`: HEAD's commit.
    pub git_hash: String,
    /// `.duat.gitTag`: a tag pointing at HEAD, if any.
    pub git_tag: String,
    /// `.duat.gitURL`: the first remote's URL.
    pub git_url: String,
    /// `.duat.gitDir`: the repository's top directory.
    pub git_dir: String,
}

impl Duat {
    /// Reads the project at `dir` with the `git` command line, as duat does with go-git.
    pub fn discover(dir: &Path) -> Result<Self, Error> {
        let context =
            |reason: String| Error::TemplateContext(format!("{}: {reason}", dir.display()));
        let top = git(dir, &["rev-parse", "--show-toplevel"])
            .ok_or_else(|| context("not inside a git repository".to_owned()))?;
        let name = std::fs::canonicalize(dir)
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_default();
        let head_ref = git(dir, &["symbolic-ref", "-q", "HEAD"]).unwrap_or_default();
        let git_branch = head_ref.rsplit('/').next().unwrap_or_default().to_owned();
        let git_hash = git(dir, &["rev-parse", "HEAD"]).unwrap_or_default();
        let git_tag = git(dir, &["tag", "--points-at", "HEAD"])
            .and_then(|t| t.lines().last().map(str::to_owned))
            .unwrap_or_default();
        let git_url = git(dir, &["remote"])
            .and_then(|r| r.lines().next().map(str::to_owned))
            .and_then(|remote| git(dir, &["remote", "get-url", &remote]))
            .unwrap_or_default();
        let top_path = PathBuf::from(&top);
        let version = match readme_version(&top_path.join("README.md"))? {
            Some(v) => v,
            None => cargo_version(dir).ok_or_else(|| {
                context("no <repo-version> in README.md and no Cargo workspace version".to_owned())
            })?,
        };
        Ok(Self {
            version,
            module: scrub_module_name(&name),
            git_branch,
            git_hash,
            git_tag,
            git_url,
            git_dir: top,
        })
    }

    fn value(&self) -> Value {
        Value::map_of([
            ("version", self.version.as_str()),
            ("module", self.module.as_str()),
            ("gitBranch", self.git_branch.as_str()),
            ("gitHash", self.git_hash.as_str()),
            ("gitTag", self.git_tag.as_str()),
            ("gitURL", self.git_url.as_str()),
            ("gitDir", self.git_dir.as_str()),
        ])
    }
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// duat's `ScrubDockerRepo`: every character other than ASCII letters, digits, `.`, `_` and
/// `-` becomes `-`, then everything is lower-cased.
pub fn scrub_module_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect::<String>()
        .to_lowercase()
}

/// The first `<repo-version>…</repo-version>` of a README (tags inside stripped, HTML
/// entities decoded, normalised as semver prints it). `None` when the file or tag is absent.
fn readme_version(path: &Path) -> Result<Option<String>, Error> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(None);
    };
    const OPEN: &str = "<repo-version>";
    const CLOSE: &str = "</repo-version>";
    for line in text.lines() {
        let mut rest = line;
        while let Some(start) = rest.find(OPEN) {
            let after = &rest[start + OPEN.len()..];
            let Some(end) = after.find(CLOSE) else { break };
            let inner = strip_tags(&after[..end]);
            let inner = inner
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&amp;", "&");
            if !inner.is_empty() {
                return normalise_semver(&inner).map(Some).ok_or_else(|| {
                    Error::TemplateContext(format!(
                        "{}: <repo-version> '{inner}' is not a semantic version",
                        path.display()
                    ))
                });
            }
            rest = &after[end + CLOSE.len()..];
        }
    }
    Ok(None)
}

fn strip_tags(s: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

/// Masterminds semver's parse-and-print: an optional `v`, missing minor/patch as 0,
/// `-prerelease` and `+metadata` kept.
fn normalise_semver(s: &str) -> Option<String> {
    let s = s.trim();
    let s = s.strip_prefix(['v', 'V']).unwrap_or(s);
    let (core, meta) = match s.split_once('+') {
        Some((c, m)) => (c, Some(m)),
        None => (s, None),
    };
    let (core, pre) = match core.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (core, None),
    };
    let parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty() || parts.len() > 3 {
        return None;
    }
    let mut nums = [0u64; 3];
    for (i, p) in parts.iter().enumerate() {
        nums[i] = p.parse().ok()?;
    }
    let ok = |x: &str| {
        !x.is_empty()
            && x.split('.').all(|id| {
                !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
    };
    let mut out = format!("{}.{}.{}", nums[0], nums[1], nums[2]);
    if let Some(p) = pre {
        if !ok(p) {
            return None;
        }
        out.push('-');
        out.push_str(p);
    }
    if let Some(m) = meta {
        if !ok(m) {
            return None;
        }
        out.push('+');
        out.push_str(m);
    }
    Some(out)
}

/// The version of the Cargo workspace (or package) holding `dir`.
fn cargo_version(dir: &Path) -> Option<String> {
    let mut found = None;
    for d in dir.ancestors() {
        let Ok(text) = std::fs::read_to_string(d.join("Cargo.toml")) else {
            continue;
        };
        let ws = section_version(&text, "[workspace.package]");
        let pkg = section_version(&text, "[package]");
        if ws.is_some() {
            return ws;
        }
        if found.is_none() {
            found = pkg;
        }
    }
    found
}

fn section_version(toml: &str, header: &str) -> Option<String> {
    let mut in_section = false;
    for line in toml.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_section = line == header;
            continue;
        }
        if in_section && let Some(rest) = line.strip_prefix("version") {
            let value = rest.trim_start().strip_prefix('=')?.trim();
            let value = value.strip_prefix('"')?.split('"').next()?;
            return Some(value.to_owned());
        }
    }
    None
}

/// Parses stencil's `--values k=v,k=v` (a value in matching quotes loses them). A dotted key
/// (`duat.version=1.2.3`) sets a nested value.
pub fn parse_values(text: &str) -> Result<BTreeMap<String, String>, Error> {
    let mut values = BTreeMap::new();
    for pair in text.split(',').filter(|p| !p.is_empty()) {
        let Some((k, v)) = pair.split_once('=') else {
            return Err(Error::TemplateContext(format!(
                "'{pair}' in --values is not key=value"
            )));
        };
        let v = if v.len() >= 2
            && ((v.starts_with('"') && v.ends_with('"'))
                || (v.starts_with('\'') && v.ends_with('\'')))
        {
            &v[1..v.len() - 1]
        } else {
            v
        };
        values.insert(k.to_owned(), v.to_owned());
    }
    Ok(values)
}

/// Everything a template sees.
#[derive(Clone, Debug, Default)]
pub struct Context {
    /// `.duat.*`
    pub duat: Duat,
    /// `.Env.*`, and what `env` and `expandenv` read. Fill it from the process with
    /// [`Context::with_process_env`]; tests inject their own.
    pub env: BTreeMap<String, String>,
    /// Values from `--values` (top-level keys, or dotted paths into nested maps).
    pub values: BTreeMap<String, String>,
}

impl Context {
    /// The context of the project at `dir` with the process environment.
    pub fn discover(dir: &Path) -> Result<Self, Error> {
        Ok(Self {
            duat: Duat::discover(dir)?,
            ..Default::default()
        }
        .with_process_env())
    }

    /// Replaces `env` with the process environment.
    pub fn with_process_env(mut self) -> Self {
        self.env = std::env::vars().collect();
        self
    }

    /// The data value: `{duat: …, Env: …}` with the values laid over it.
    pub fn data(&self) -> Value {
        let mut root = BTreeMap::new();
        root.insert("duat".to_owned(), self.duat.value());
        root.insert(
            "Env".to_owned(),
            Value::map_of(self.env.iter().map(|(k, v)| (k.clone(), v.as_str()))),
        );
        let mut root = Value::Map(root);
        for (key, value) in &self.values {
            set_path(&mut root, key, Value::Str(value.clone()));
        }
        root
    }
}

fn set_path(root: &mut Value, key: &str, value: Value) {
    let mut parts = key.split('.').peekable();
    let mut node = root;
    while let Some(part) = parts.next() {
        if !matches!(node, Value::Map(_)) {
            *node = Value::Map(BTreeMap::new());
        }
        let Value::Map(map) = node else { return };
        if parts.peek().is_none() {
            map.insert(part.to_owned(), value);
            return;
        }
        node = map
            .entry(part.to_owned())
            .or_insert_with(|| Value::Map(BTreeMap::new()));
    }
}

impl Duat {
    /// The release version duat computes: `<version>-<branch>-<base62 of unix_seconds>`, e.g.
    /// `0.0.33-master-1elHeQ` (see [`release_version`]).
    pub fn release_version(&self, unix_seconds: u64) -> String {
        release_version(&self.version, &self.git_branch, unix_seconds)
    }

    /// The image name duat uses: `<owner>/<repo>/<module>` from the git remote, lower-cased;
    /// just the module without a remote (see [`image_name`]).
    pub fn image_name(&self) -> String {
        image_name(&self.git_url, &self.module)
    }
}

/// `<version>-<branch>-<base62 of unix_seconds>`: the branch with every non-alphanumeric
/// character as `-` (`head` when detached), the time in base 62 (`0-9A-Za-z`).
///
/// ```
/// use studio_runner_deploy::template::release_version;
/// assert_eq!(release_version("0.0.33", "master", 1518455542), "0.0.33-master-1elHeQ");
/// ```
pub fn release_version(version: &str, branch: &str, unix_seconds: u64) -> String {
    let branch: String = if branch.is_empty() { "head" } else { branch }
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("{version}-{branch}-{}", base62(unix_seconds))
}

/// `n` in base 62 with the digits `0-9A-Za-z` (`0` for zero).
pub fn base62(mut n: u64) -> String {
    const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 62) as usize]);
        n /= 62;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

/// `<owner>/<repo>/<module>` from a git remote URL (https, ssh or scp-like), lower-cased, the
/// `.git` suffix dropped; `module` alone when the URL has no owner and repository.
///
/// ```
/// use studio_runner_deploy::template::image_name;
/// assert_eq!(image_name("git@github.com:leaf-ai/Studio-Go-Runner.git", "runner"), "leaf-ai/studio-go-runner/runner");
/// assert_eq!(image_name("", "runner"), "runner");
/// ```
pub fn image_name(git_url: &str, module: &str) -> String {
    let url = git_url.trim().trim_end_matches('/');
    let url = url.strip_suffix(".git").unwrap_or(url);
    // After the scheme and host: `https://host/owner/repo`, `ssh://git@host:22/owner/repo`,
    // `git@host:owner/repo`.
    let path = match url.split_once("://") {
        Some((_, rest)) => rest.split_once('/').map(|(_, p)| p).unwrap_or(""),
        None => url.split_once(':').map(|(_, p)| p).unwrap_or(url),
    };
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let module = scrub_module_name(module);
    match segments.as_slice() {
        [.., owner, repo] => format!(
            "{}/{}/{module}",
            scrub_module_name(owner),
            scrub_module_name(repo)
        ),
        _ => module,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn release_version_is_duats() {
        assert_eq!(
            super::release_version("0.0.33", "master", 1518455542),
            "0.0.33-master-1elHeQ"
        );
        assert_eq!(
            super::release_version("1.2.3", "feature/x_y", 0),
            "1.2.3-feature-x-y-0"
        );
        assert_eq!(super::base62(61), "z");
        assert_eq!(super::base62(62), "10");
    }

    #[test]
    fn image_name_from_remotes() {
        for url in [
            "https://github.com/Leaf-AI/studio-go-runner.git",
            "git@github.com:leaf-ai/studio-go-runner.git",
            "ssh://git@github.com:22/leaf-ai/studio-go-runner",
        ] {
            assert_eq!(
                super::image_name(url, "Runner"),
                "leaf-ai/studio-go-runner/runner",
                "{url}"
            );
        }
        assert_eq!(
            super::image_name("/srv/git/studio", "studio"),
            "git/studio/studio"
        );
        assert_eq!(super::image_name("", "studio"), "studio");
    }

    use super::*;

    #[test]
    fn module_names_are_scrubbed_as_duat_does() {
        assert_eq!(
            scrub_module_name("Studio Go+Runner_v1.9"),
            "studio-go-runner_v1.9"
        );
        assert_eq!(scrub_module_name("wt-deploy"), "wt-deploy");
    }

    #[test]
    fn readme_versions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("README.md");
        std::fs::write(
            &path,
            "# x\n\nVersion : <repo-version>v0.9.27-feature-1ab</repo-version>\n",
        )
        .unwrap();
        assert_eq!(
            readme_version(&path).unwrap().as_deref(),
            Some("0.9.27-feature-1ab")
        );
        std::fs::write(&path, "<repo-version><b>1.2</b></repo-version>").unwrap();
        assert_eq!(readme_version(&path).unwrap().as_deref(), Some("1.2.0"));
        std::fs::write(&path, "<repo-version>banana</repo-version>").unwrap();
        assert!(readme_version(&path).is_err());
        std::fs::write(&path, "no version").unwrap();
        assert_eq!(readme_version(&path).unwrap(), None);
    }

    #[test]
    fn cargo_workspace_version() {
        let toml = "[workspace]\nmembers=[]\n[workspace.package]\nedition = \"2024\"\nversion = \"0.3.1\"\n";
        assert_eq!(
            section_version(toml, "[workspace.package]").as_deref(),
            Some("0.3.1")
        );
    }

    #[test]
    fn values_override_nested_keys() {
        let values = parse_values("a=1,duat.version=\"2.0.0\",b='x=y'").unwrap();
        let ctx = Context {
            values,
            ..Default::default()
        };
        let Value::Map(root) = ctx.data() else {
            panic!()
        };
        assert_eq!(root["a"], Value::Str("1".into()));
        assert_eq!(root["b"], Value::Str("x=y".into()));
        let Value::Map(duat) = &root["duat"] else {
            panic!()
        };
        assert_eq!(duat["version"], Value::Str("2.0.0".into()));
        assert!(parse_values("novalue").is_err());
    }

    #[test]
    fn discovers_this_repository() {
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        let duat = Duat::discover(here).unwrap();
        assert_eq!(duat.module, "studio-runner-deploy");
        assert_eq!(duat.git_hash.len(), 40);
        assert!(!duat.version.is_empty());
    }
}
