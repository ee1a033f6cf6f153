//! Any bytes as `--set` arguments (one per line) on the smoke study: every argument is
//! applied or refused with located problems, never a panic, an abort or unbounded memory.
#![no_main]

use ionode_study::manifest;
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;

fuzz_target!(|data: &[u8]| {
    let smoke = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../experiments/smoke.toml");
    let text = String::from_utf8_lossy(data);
    let args: Vec<String> = text.lines().map(str::to_string).collect();
    if let Err(problems) = manifest::load(&smoke, &args) {
        assert!(!problems.0.is_empty(), "an error names its problems");
    }
});
