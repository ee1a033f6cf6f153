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
