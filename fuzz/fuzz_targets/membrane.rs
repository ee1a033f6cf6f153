//! Any bytes as a membrane file (`--membrane FILE.toml`): a membrane that passes the
//! physics' checks, or located problems; never a panic.
#![no_main]

use ionode_study::membrane;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn dir() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a temporary folder"))
        .path()
}

fuzz_target!(|data: &[u8]| {
    let path = dir().join("membrane.toml");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    if let Ok(m) = membrane::read_file(&path) {
        assert!(m.validate().is_ok(), "an accepted membrane is a valid one");
    }
});
