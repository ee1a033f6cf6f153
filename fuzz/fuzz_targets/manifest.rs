//! Any bytes as a study manifest and as a run config: the loaders return a value or a list
//! of located problems, and never panic, abort or allocate without bound.
#![no_main]

use ionode_study::manifest;
use ionode_study::runner::DataCache;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn dir() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a temporary folder"))
        .path()
}

fuzz_target!(|data: &[u8]| {
    let path = dir().join("fuzz.toml");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    if let Err(problems) = manifest::load(&path, &[]) {
        assert!(!problems.0.is_empty(), "an error names its problems");
    }
    if let Err(problems) = manifest::load_run_config(&path, &DataCache::default()) {
        assert!(!problems.0.is_empty(), "an error names its problems");
    }
});
