//! Any bytes as the `[search]` table of a study (the smoke study's candidates): a search is
//! planned or refused with located problems; a planned search's rungs and candidates are
//! consistent with its plan.
#![no_main]

use ionode_study::manifest;
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

fn dir() -> &'static std::path::Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("a temporary folder"))
        .path()
}

fuzz_target!(|data: &[u8]| {
    let smoke = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../experiments/smoke.toml");
    let mut text = format!(
        "include = [\"{}\"]\nstudy = \"fuzz\"\nseeds = 1\n[grid]\n\"method\" = [\"neural\"]\n\
         \"split.n_train\" = [40]\n\"pretrain\" = [false]\n[search]\n",
        smoke.display()
    );
    text.push_str(&String::from_utf8_lossy(data));
    let path = dir().join("search.toml");
    if std::fs::write(&path, text).is_err() {
        return;
    }
    match manifest::load(&path, &[]) {
        Err(problems) => assert!(!problems.0.is_empty(), "an error names its problems"),
        Ok(m) => {
            if let Some(s) = &m.plan.search {
                assert!(!s.budgets.is_empty());
                for c in &s.candidates {
                    assert_eq!(c.runs.len(), s.budgets.len());
                    assert!(c.runs.iter().flatten().all(|&i| i < m.plan.runs.len()));
                }
            }
        }
    }
});
