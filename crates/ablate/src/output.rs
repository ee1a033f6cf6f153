//! Atomic output files: write `NAME.tmp` next to the target, then rename it over the
//! target. A reader (or a rerun after Ctrl-C) therefore sees either the old complete file
//! or the new complete file, never half of one; the run store relies on that.

use anyhow::{Context, Result};
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

/// `OUT.json` -> `OUT.json.tmp` (the temporary name is in the same folder, so the final
/// rename never crosses a file system).
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(".tmp");
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
