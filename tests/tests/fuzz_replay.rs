//! Issue 9, "Hostile input", the short fuzz pass CI runs: every committed seed of every
//! cargo-fuzz target (`tests/fuzz/seeds/<target>`), then a fixed number of deterministic
//! mutations of them, through the same entry function the fuzz target calls
//! ([`studio_tests::fuzz_entry`]). Seconds on a normal build, no sanitizers, no nightly; the
//! full coverage-guided run is `cargo xtask fuzz`.
//!
//! A failure names the target and prints the input (escaped) and the mutation that made it,
//! so it can be added to the seeds and run under `cargo fuzz run <target> <file>`.

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;

use anyhow::{Context, Result, ensure};
use studio_tests::LogsOnFailure;
use studio_tests::fuzz_entry::TARGETS;

/// Mutations per target, after the seeds.
const MUTATIONS: usize = 10_000;
/// Inputs never grow beyond this.
const MAX_LEN: usize = 64 * 1024;

/// Tokens the grammars care about, spliced in by the mutator.
const TOKENS: &[&[u8]] = &[
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"",
    b":",
    b",",
    b"null",
    b"-1",
    b"1e999",
    b"18446744073709551616",
    b"\\u0000",
    b"\\ud800",
    b"{{",
    b"}}",
    b"{{-",
    b"-}}",
    b"{{ range .",
    b"{{ end }}",
    b"{{ if ",
    b"| toYaml",
    b"@sha256:",
    b"sha256:0000000000000000000000000000000000000000000000000000000000000000",
    b"/",
    b"//",
    b"..",
    b":443",
    b"localhost",
    b"Bearer ",
    b"Basic ",
    b"realm=",
    b"scope=\"",
    b"=\"",
    b"\\",
    b"\r\n",
    b"\xff\xfe",
    b"\xc3\x28",
    b"mediaType",
    b"manifests",
    b"layers",
    b"auths",
    b"credsStore",
    b"credHelpers",
    b"agentPoolProfiles",
    b"properties",
];

/// xorshift64*: deterministic, so a failure reproduces on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// One mutation of `input` (with `other`, another seed, for splicing); returns its name.
fn mutate(rng: &mut Rng, input: &mut Vec<u8>, other: &[u8]) -> &'static str {
    let len = input.len();
    let op = rng.below(9);
    match op {
        0 if len > 0 => {
            let i = rng.below(len);
            input[i] ^= 1 << rng.below(8);
            "flip a bit"
        }
        1 if len > 0 => {
            let i = rng.below(len);
            input[i] = rng.next() as u8;
            "set a byte"
        }
        2 if len > 0 => {
            let start = rng.below(len);
            let end = (start + 1 + rng.below(16)).min(len);
            input.drain(start..end);
            "delete bytes"
        }
        3 if len > 0 => {
            let start = rng.below(len);
            let end = (start + 1 + rng.below(64)).min(len);
            let chunk = input[start..end].to_vec();
            let at = rng.below(len + 1);
            input.splice(at..at, chunk);
            "duplicate bytes"
        }
        4 if !other.is_empty() => {
            let cut = rng.below(len + 1);
            let from = rng.below(other.len());
            input.truncate(cut);
            input.extend_from_slice(&other[from..]);
            "splice another seed"
        }
        5 if len > 0 => {
            input.truncate(rng.below(len));
            "truncate"
        }
        6 if len > 1 => {
            let (a, b) = (rng.below(len), rng.below(len));
            input.swap(a, b);
            "swap bytes"
        }
        7 if len > 0 => {
            // Repeat a short slice many times (deep nesting, long runs).
            let start = rng.below(len);
            let end = (start + 1 + rng.below(4)).min(len);
            let chunk = input[start..end].to_vec();
            let at = rng.below(len + 1);
            let times = 1 + rng.below(200);
            let run: Vec<u8> = chunk
                .iter()
                .copied()
                .cycle()
                .take(chunk.len() * times)
                .collect();
            input.splice(at..at, run);
            "repeat a slice"
        }
        _ => {
            let token = TOKENS[rng.below(TOKENS.len())];
            let at = rng.below(len + 1);
            input.splice(at..at, token.iter().copied());
            "insert a token"
        }
    }
}

fn seeds(target: &str) -> Result<Vec<(String, Vec<u8>)>> {
    let dir: PathBuf = studio_tests::workspace_root()
        .join("tests/fuzz/seeds")
        .join(target);
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_file() {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.push((name, std::fs::read(&path)?));
        }
    }
    out.sort();
    ensure!(!out.is_empty(), "no seeds in {}", dir.display());
    Ok(out)
}

fn escaped(input: &[u8]) -> String {
    input.escape_ascii().to_string()
}

/// Runs `input` through `entry`; a panic fails the test with the input and where it came from.
fn run(target: &str, entry: fn(&[u8]), input: &[u8], origin: &str) {
    if let Err(panic) = std::panic::catch_unwind(AssertUnwindSafe(|| entry(input))) {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default();
        panic!(
            "fuzz target {target} panicked on {origin}: {message}\ninput ({} bytes): b\"{}\"",
            input.len(),
            escaped(input)
        );
    }
}

/// Replays `target`'s seeds and [`MUTATIONS`] mutations of them; returns the inputs run.
fn replay(target: &str) -> Result<usize> {
    let entry = TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, f)| *f)
        .with_context(|| format!("no entry function for {target}"))?;
    let seeds = seeds(target)?;
    let mut runs = 0;
    for (name, seed) in &seeds {
        run(target, entry, seed, &format!("seed {name}"));
        runs += 1;
    }
    // The seed of the generator is the target's name: each target its own fixed sequence.
    let mut rng = Rng(target.bytes().fold(0x9e37_79b9_7f4a_7c15, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    }));
    for i in 0..MUTATIONS {
        let (name, seed) = &seeds[rng.below(seeds.len())];
        let other = &seeds[rng.below(seeds.len())].1;
        let mut input = seed.clone();
        let mut steps = Vec::new();
        for _ in 0..1 + rng.below(4) {
            steps.push(mutate(&mut rng, &mut input, other));
        }
        input.truncate(MAX_LEN);
        run(
            target,
            entry,
            &input,
            &format!("mutation {i} of seed {name} ({})", steps.join(", ")),
        );
        runs += 1;
    }
    eprintln!(
        "fuzz_replay {target}: {} seeds + {MUTATIONS} mutations = {runs} inputs",
        seeds.len()
    );
    Ok(runs)
}

/// The replay can fail: a panicking entry is reported with the input, and mutations differ.
#[test]
fn a_panicking_target_is_reported_with_its_input() -> Result<()> {
    let _logs = LogsOnFailure::new();
    fn fragile(data: &[u8]) {
        assert!(!data.starts_with(b"boom"), "found the bomb");
    }
    let caught = std::panic::catch_unwind(|| run("fragile", fragile, b"boom\xff", "seed s"))
        .expect_err("the panic is passed on");
    let message = caught.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        message.contains("fragile panicked on seed s: found the bomb")
            && message.contains("b\"boom\\xff\""),
        "{message}"
    );
    let mut rng = Rng(7);
    let seed = b"{\"schemaVersion\": 2}".to_vec();
    let mut distinct = std::collections::BTreeSet::new();
    for _ in 0..200 {
        let mut input = seed.clone();
        mutate(&mut rng, &mut input, b"other");
        distinct.insert(input);
    }
    assert!(
        distinct.len() > 150,
        "only {} distinct mutations",
        distinct.len()
    );
    Ok(())
}

/// Every target in the fuzz project has an entry function and seeds, and nothing else does.
#[test]
fn every_fuzz_target_has_an_entry_function_and_seeds() -> Result<()> {
    let _logs = LogsOnFailure::new();
    let manifest =
        std::fs::read_to_string(studio_tests::workspace_root().join("tests/fuzz/Cargo.toml"))?;
    let bins: Vec<&str> = manifest
        .lines()
        .filter_map(|l| l.strip_prefix("name = \""))
        .filter_map(|l| l.strip_suffix('"'))
        .filter(|n| *n != "studio-fuzz")
        .collect();
    let mut entries: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
    let mut bins_sorted = bins.clone();
    bins_sorted.sort();
    entries.sort();
    assert_eq!(bins_sorted, entries, "fuzz targets vs fuzz_entry::TARGETS");
    for target in bins {
        let source = std::fs::read_to_string(
            studio_tests::workspace_root()
                .join("tests/fuzz/fuzz_targets")
                .join(format!("{target}.rs")),
        )?;
        assert!(
            source.contains(&format!("fuzz_entry::{target}(data)")),
            "{target}.rs does not call fuzz_entry::{target}"
        );
        seeds(target)?;
    }
    Ok(())
}

#[test]
fn fuzz_reference_replays_seeds_and_mutations() -> Result<()> {
    let _logs = LogsOnFailure::new();
    assert!(replay("reference")? > MUTATIONS);
    Ok(())
}

#[test]
fn fuzz_www_authenticate_replays_seeds_and_mutations() -> Result<()> {
    let _logs = LogsOnFailure::new();
    assert!(replay("www_authenticate")? > MUTATIONS);
    Ok(())
}

#[test]
fn fuzz_apimodel_replays_seeds_and_mutations() -> Result<()> {
    let _logs = LogsOnFailure::new();
    assert!(replay("apimodel")? > MUTATIONS);
    Ok(())
}

#[test]
fn fuzz_template_replays_seeds_and_mutations() -> Result<()> {
    let _logs = LogsOnFailure::new();
    assert!(replay("template")? > MUTATIONS);
    Ok(())
}

#[test]
fn fuzz_docker_config_replays_seeds_and_mutations() -> Result<()> {
    let _logs = LogsOnFailure::new();
    assert!(replay("docker_config")? > MUTATIONS);
    Ok(())
}

#[test]
fn fuzz_manifest_replays_seeds_and_mutations() -> Result<()> {
    let _logs = LogsOnFailure::new();
    assert!(replay("manifest")? > MUTATIONS);
    Ok(())
}
