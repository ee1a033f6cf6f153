//! Where a generated file came from: the git commit of the working tree the program runs
//! in. Asked at run time (not baked in at build time) because datasets are generated from
//! the checkout the user is in, and a missing `git` must not stop a run.

use std::path::Path;
use std::process::{Command, Stdio};

/// The git state of the current directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitState {
    /// `git rev-parse HEAD`, or "unknown".
    pub commit: String,
    /// Whether tracked files have uncommitted changes; `None` if git could not tell.
    pub dirty: Option<bool>,
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Reads the commit and whether the tree is dirty. Untracked files do not count (a
/// dataset written inside the tree must not make the next run "dirty"), nor do changes
/// under `results/`: that is what the program writes, so a report of one study must not
/// mark the next study's runs as made by uncommitted code.
pub fn git_state() -> GitState {
    git_state_in(Path::new("."))
}

/// [`git_state`] of the working tree holding `dir`.
pub fn git_state_in(dir: &Path) -> GitState {
    let commit = git(dir, &["rev-parse", "HEAD"])
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "unknown".into());
    let dirty = if commit == "unknown" {
        None
    } else {
        git(
            dir,
            &[
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ":(top)",
                ":(top,exclude)results",
            ],
        )
        .map(|s| !s.is_empty())
    };
    GitState { commit, dirty }
}

/// The BLAKE3 hash of bytes, as 64 hex digits: the fingerprint of an input recorded with
/// every result, so a changed input is visible.
pub fn bytes_hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// A short content id (the first 16 hex digits of BLAKE3): run ids and the cache names of
/// generated data, where a name must stay readable; 64 bits leave a collision between a
/// study's runs at odds below 1e-9 even at 100 000 runs.
pub fn text_hash(text: &str) -> String {
    bytes_hash(text.as_bytes())[..16].to_string()
}

/// [`bytes_hash`] of a file's content, streamed.
pub fn file_hash(path: &std::path::Path) -> crate::errors::Result<String> {
    use crate::errors::Context;
    let mut hasher = blake3::Hasher::new();
    crate::limits::open_regular(path, u64::MAX)
        .and_then(|f| hasher.update_reader(f).map(|_| ()))
        .with_context(|| format!("cannot read '{}'", path.display()))?;
    Ok(hasher.finalize().to_hex().to_string())
}

/// Now, as RFC 3339 UTC to the second (the `created_utc` of everything ionode writes).
pub fn now_utc() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_under_results_do_not_make_the_tree_dirty() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let sh = |args: &[&str]| {
            let ok = Command::new("git")
                .current_dir(d)
                .args(["-c", "user.name=t", "-c", "user.email=t@t"])
                .args(args)
                .output()
                .is_ok_and(|o| o.status.success());
            assert!(ok, "git {args:?}");
        };
        sh(&["init", "-q"]);
        std::fs::create_dir_all(d.join("results/s")).unwrap();
        std::fs::create_dir_all(d.join("src")).unwrap();
        std::fs::write(d.join("src/a.rs"), "1").unwrap();
        std::fs::write(d.join("results/s/summary.csv"), "1").unwrap();
        sh(&["add", "-A"]);
        sh(&["commit", "-qm", "x"]);
        assert_eq!(git_state_in(d).dirty, Some(false));
        std::fs::write(d.join("results/s/summary.csv"), "2").unwrap();
        std::fs::write(d.join("src/new.rs"), "untracked").unwrap();
        assert_eq!(git_state_in(&d.join("src")).dirty, Some(false));
        std::fs::write(d.join("src/a.rs"), "2").unwrap();
        assert_eq!(git_state_in(&d.join("src")).dirty, Some(true));
        assert_eq!(git_state_in(d).commit.len(), 40);
    }

    #[test]
    fn hashes_are_blake3() {
        // The BLAKE3 test vector of the empty input.
        assert_eq!(
            bytes_hash(b""),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
        assert_eq!(text_hash(""), "af1349b9f5f9a1a6");
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x");
        std::fs::write(&f, b"abc").unwrap();
        assert_eq!(file_hash(&f).unwrap(), bytes_hash(b"abc"));
    }
}
