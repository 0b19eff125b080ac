//! Stencil templates: parsing and rendering never panic.
//! The harness is `studio_tests::fuzz_entry::template` (tests/src/fuzz_entry.rs), shared with
//! the `fuzz_replay` suite, which replays the seeds and deterministic mutations in CI.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../src/fuzz_entry.rs"]
mod fuzz_entry;

fuzz_target!(|data: &[u8]| fuzz_entry::template(data));
