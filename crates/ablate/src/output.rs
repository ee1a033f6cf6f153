//! Atomic output files: write a temporary file next to the target, then rename it over the
//! target. A reader (or a rerun after Ctrl-C) therefore sees either the old complete file
//! or the new complete file, never half of one; the run store relies on that.
//!
//! Every write gets its own temporary name (`NAME.<pid>-<n>.tmp`): two processes (or two
//! threads) writing the same target at once each fill their own file and the last rename
//! wins, so neither can lock, truncate, rename away or delete the other's file.

use anyhow::{Context, Result};
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Suffix of every temporary file ionode writes (`.gitignore` and clean-ups match it).
pub const TMP_SUFFIX: &str = ".tmp";

/// `OUT.json` -> `OUT.json.<pid>-<n>.tmp`, unique to this process and call. The temporary
/// name is in the same folder, so the final rename never crosses a file system.
pub fn tmp_path(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut name = OsString::from(path.as_os_str());
    name.push(format!(".{}-{n}{TMP_SUFFIX}", std::process::id()));
    PathBuf::from(name)
}

/// Creates the parent folder, lets `write` fill the temporary file, then renames it to
/// `path`. On failure the temporary file is removed and `path` is left untouched.
pub fn write_atomically(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create output folder '{}'", parent.display()))?;
    }
    let tmp = tmp_path(path);
    let result = write(&tmp).and_then(|()| {
        fs::rename(&tmp, path)
            .with_context(|| format!("cannot rename '{}' to '{}'", tmp.display(), path.display()))
    });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Writes text atomically.
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    write_atomically(path, |tmp| {
        fs::write(tmp, text).with_context(|| format!("cannot write '{}'", tmp.display()))
    })
}

/// Removes the temporary files a killed writer left in `dir` (not recursive). Only call it
/// where no other live process can be writing (a run folder its claim holds).
pub fn remove_leftover_tmp(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().ends_with(TMP_SUFFIX) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_write_has_its_own_temporary_name_in_the_target_folder() {
        let target = Path::new("/x/y/run.h5");
        let (a, b) = (tmp_path(target), tmp_path(target));
        assert_ne!(a, b);
        for t in [&a, &b] {
            assert_eq!(t.parent(), target.parent());
            let name = t.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                name.starts_with("run.h5.") && name.ends_with(TMP_SUFFIX),
                "{name}"
            );
        }
    }

    #[test]
    fn concurrent_writers_of_one_file_never_fail_and_leave_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("plan.json");
        std::thread::scope(|s| {
            for k in 0..8 {
                let target = &target;
                s.spawn(move || {
                    for _ in 0..50 {
                        write_text(target, &format!("writer {k}\n")).unwrap();
                    }
                });
            }
        });
        let text = fs::read_to_string(&target).unwrap();
        assert!(text.starts_with("writer "), "{text}");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![OsString::from("plan.json")]);
    }
}
