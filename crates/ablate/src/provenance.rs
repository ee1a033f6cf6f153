//! Where a generated file came from: the git commit of the working tree the program runs
//! in. Asked at run time (not baked in at build time) because datasets are generated from
//! the checkout the user is in, and a missing `git` must not stop a run.

use std::process::{Command, Stdio};

/// The git state of the current directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitState {
    /// `git rev-parse HEAD`, or "unknown".
    pub commit: String,
    /// "true" if tracked files have uncommitted changes, "false" if not, "unknown" if git
    /// could not tell.
    pub dirty: String,
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Reads the commit and whether the tree is dirty (untracked files do not count: a
/// dataset written inside the tree must not make the next run "dirty").
pub fn git_state() -> GitState {
    let commit = git(&["rev-parse", "HEAD"])
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "unknown".into());
    let dirty = if commit == "unknown" {
        "unknown".into()
    } else {
        match git(&["status", "--porcelain", "--untracked-files=no"]) {
            Some(s) => (!s.is_empty()).to_string(),
            None => "unknown".into(),
        }
    };
    GitState { commit, dirty }
}

/// FNV-1a 64-bit hash of bytes, as 16 hex digits: a stable fingerprint of an input (not a
/// cryptographic one) recorded with every result so a changed input is visible.
pub fn bytes_hash(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// [`bytes_hash`] of a text.
pub fn text_hash(text: &str) -> String {
    bytes_hash(text.as_bytes())
}

/// [`bytes_hash`] of a file's content.
pub fn file_hash(path: &std::path::Path) -> anyhow::Result<String> {
    use anyhow::Context;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read '{}'", path.display()))?;
    Ok(bytes_hash(&bytes))
}
