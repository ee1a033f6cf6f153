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

/// The files of `ablate` import each other without a circle, and nothing below the
/// command line imports from `commands/`. A module's imports are the `crate::` and
/// `super::` paths of its file outside its `#[cfg(test)]` module, each resolved to the
/// longest module path it names.
#[test]
fn ablate_modules_import_each_other_without_a_circle() {
    use std::collections::{BTreeMap, BTreeSet};
    let src = root().join("crates/ablate/src");
    // Module path (e.g. ["report", "tables"]) -> its file.
    let mut modules: BTreeMap<Vec<String>, PathBuf> = BTreeMap::new();
    fn walk(dir: &Path, prefix: &[String], out: &mut BTreeMap<Vec<String>, PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if p.is_dir() {
                let mut pre = prefix.to_vec();
                pre.push(name);
                walk(&p, &pre, out);
            } else if let Some(stem) = name.strip_suffix(".rs") {
                let mut m = prefix.to_vec();
                if !matches!(stem, "mod" | "lib") {
                    m.push(stem.to_string());
                }
                if stem != "main" {
                    out.insert(m, p);
                }
            }
        }
    }
    walk(&src, &[], &mut modules);
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (m, file) in &modules {
        let text = std::fs::read_to_string(file).unwrap();
        let text = text.split("#[cfg(test)]\nmod tests").next().unwrap();
        let is_mod_rs = file.ends_with("mod.rs") || file.ends_with("lib.rs");
        let bytes = text.as_bytes();
        let mut i = 0;
        while let Some(at) = text[i..].find(['c', 's']).map(|k| k + i) {
            i = at + 1;
            let rest = &text[at..];
            if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
                continue;
            }
            if !(rest.starts_with("crate::") || rest.starts_with("super::")) {
                continue;
            }
            let path: Vec<&str> = rest
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .next()
                .unwrap()
                .split("::")
                .filter(|s| !s.is_empty())
                .collect();
            let mut target: Vec<String> = if is_mod_rs {
                m.clone()
            } else {
                m[..m.len().saturating_sub(1)].to_vec()
            };
            let mut k = 0;
            if path[0] == "crate" {
                target.clear();
                k = 1;
            } else {
                // The first `super` is the parent of a file module, the grandparent of a
                // mod.rs; each further one goes up once more.
                if is_mod_rs {
                    target.pop();
                }
                k += 1;
                while path.get(k) == Some(&"super") {
                    target.pop();
                    k += 1;
                }
            }
            target.extend(path[k..].iter().map(|s| s.to_string()));
            let found = (0..=target.len())
                .rev()
                .map(|n| target[..n].to_vec())
                .find(|t| modules.contains_key(t));
            if let Some(t) = found {
                let inside = t.starts_with(m) || m.starts_with(&t);
                if !inside {
                    edges.entry(m.clone()).or_default().insert(t);
                }
            }
        }
    }
    // Nothing below the CLI imports from commands/.
    for (from, tos) in &edges {
        let from_cli =
            from.first().is_some_and(|f| f == "commands" || f == "cli") || from.is_empty();
        for to in tos {
            assert!(
                from_cli || to.first().map(String::as_str) != Some("commands"),
                "{} imports {}",
                from.join("::"),
                to.join("::")
            );
        }
    }
    // No circle: depth-first search for a back edge.
    fn visit(
        m: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        state: &mut BTreeMap<Vec<String>, u8>,
        stack: &mut Vec<Vec<String>>,
    ) {
        state.insert(m.clone(), 1);
        stack.push(m.clone());
        for t in edges.get(m).into_iter().flatten() {
            match state.get(t) {
                Some(1) => {
                    let from = stack.iter().position(|s| s == t).unwrap();
                    let circle: Vec<String> = stack[from..].iter().map(|s| s.join("::")).collect();
                    panic!("import circle: {} -> {}", circle.join(" -> "), t.join("::"));
                }
                Some(_) => {}
                None => visit(t, edges, state, stack),
            }
        }
        stack.pop();
        state.insert(m.clone(), 2);
    }
    let mut state = BTreeMap::new();
    for m in modules.keys() {
        if !state.contains_key(m) {
            visit(m, &edges, &mut state, &mut Vec::new());
        }
    }
    assert!(
        edges.len() > 20,
        "the scan found too few imports: {edges:?}"
    );
}
