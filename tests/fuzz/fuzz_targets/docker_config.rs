//! Docker `config.json`: loading and credential lookups never panic (no helper runs).
//! The harness is `studio_tests::fuzz_entry::docker_config` (tests/src/fuzz_entry.rs), shared with
//! the `fuzz_replay` suite, which replays the seeds and deterministic mutations in CI.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../src/fuzz_entry.rs"]
mod fuzz_entry;

fuzz_target!(|data: &[u8]| fuzz_entry::docker_config(data));
