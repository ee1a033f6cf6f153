//! The repository stands on its own: no tracked file names a path outside it (a fresh
//! clone has nothing beside it), so every test, example and doc works in a clone.
//! `.ci/run` proves the same by running the suite in a clone in a temporary folder.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The tracked files (or, without git, every file but build output).
fn files(root: &Path) -> Vec<PathBuf> {
    let listed = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root)
        .output()
        .ok()
        .filter(|o| o.status.success());
    if let Some(out) = listed {
        return out
            .stdout
            .split(|&b| b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| root.join(String::from_utf8_lossy(p).as_ref()))
            .collect();
    }
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let p = entry.path();
            let name = entry.file_name();
            if p.is_dir() {
                if name != "target" && name != ".git" {
                    walk(&p, out);
                }
            } else {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, &mut out);
    out
}

#[test]
fn no_file_names_a_path_outside_the_repository() {
    let root = root();
    // Built from parts, so this file does not match itself.
    let shared = ["..", "/shared"].concat();
    let up3 = ["\"/..", "/../..", "/"].concat();
    let join3 = ["join(\"..", "/../..", "/"].concat();
    let mut found = Vec::new();
    for file in files(&root) {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue; // binary
        };
        let rel = file
            .strip_prefix(&root)
            .unwrap_or(&file)
            .display()
            .to_string();
        for (n, line) in text.lines().enumerate() {
            for pattern in [&shared, &up3, &join3] {
                if line.contains(pattern.as_str()) {
                    found.push(format!("{rel}:{}: {}", n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "paths outside the repository (copy what is needed into it):\n{}",
        found.join("\n")
    );
}
