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

type Module = Vec<String>;
type Graph = std::collections::BTreeMap<Module, std::collections::BTreeSet<Module>>;

/// The import graph of one crate's modules: a module's imports are the `crate::` and
/// `super::` paths of its file outside comments and its `#[cfg(test)]` module, each resolved to the
/// longest module path it names. Imports of a module's own parent or children are left
/// out (a parent declares its children).
fn module_graph(src: &Path) -> Graph {
    use std::collections::{BTreeMap, BTreeSet};
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
    walk(src, &[], &mut modules);
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (m, file) in &modules {
        let text = std::fs::read_to_string(file).unwrap();
        let text = text.split("#[cfg(test)]\nmod tests").next().unwrap();
        // Comments (doc links included) import nothing.
        let text: String = text
            .lines()
            .map(|l| l.split("//").next().unwrap())
            .collect::<Vec<_>>()
            .join("\n");
        let text = text.as_str();
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
            for path in use_paths(rest) {
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
                    // The first `super` is the parent of a file module, the grandparent of
                    // a mod.rs; each further one goes up once more.
                    if is_mod_rs {
                        target.pop();
                    }
                    k += 1;
                    while path.get(k).map(String::as_str) == Some("super") {
                        target.pop();
                        k += 1;
                    }
                }
                target.extend(path[k..].iter().cloned());
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
    }
    for m in modules.keys() {
        edges.entry(m.clone()).or_default();
    }
    edges
}

/// The paths a `crate::`/`super::` path at the start of `text` names, with its brace
/// groups expanded: `crate::{a::B, c}` names `crate::a::B` and `crate::c`.
fn use_paths(text: &str) -> Vec<Vec<String>> {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let end = text.find(|c: char| !ident(c)).unwrap_or(text.len());
    let head: Vec<String> = text[..end]
        .split("::")
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if !text[..end].ends_with("::") || !text[end..].starts_with('{') {
        return vec![head];
    }
    // The group's items, split at top-level commas.
    let mut items = Vec::new();
    let (mut depth, mut start) = (0, end + 1);
    for (i, c) in text.char_indices().skip(end) {
        match c {
            '{' => depth += 1,
            '}' if depth == 1 => {
                items.push(&text[start..i]);
                break;
            }
            '}' => depth -= 1,
            ',' if depth == 1 => {
                items.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for item in items.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        for tail in use_paths(item) {
            let mut p = head.clone();
            p.extend(tail.into_iter().filter(|s| s != "self"));
            out.push(p);
        }
    }
    out
}

/// The first import circle of a graph, as `a -> b -> a`.
fn circle(edges: &Graph) -> Option<String> {
    use std::collections::{BTreeMap, BTreeSet};
    // No circle: depth-first search for a back edge.
    fn visit(
        m: &Vec<String>,
        edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        state: &mut BTreeMap<Vec<String>, u8>,
        stack: &mut Vec<Vec<String>>,
    ) -> Option<String> {
        state.insert(m.clone(), 1);
        stack.push(m.clone());
        for t in edges.get(m).into_iter().flatten() {
            match state.get(t) {
                Some(1) => {
                    let from = stack.iter().position(|s| s == t).unwrap();
                    let circle: Vec<String> = stack[from..].iter().map(|s| s.join("::")).collect();
                    return Some(format!("{} -> {}", circle.join(" -> "), t.join("::")));
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(t, edges, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(m.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for m in edges.keys() {
        if !state.contains_key(m) {
            if let Some(c) = visit(m, edges, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

/// The files of every crate import each other without a circle, so each crate reads
/// bottom-up, one file at a time.
#[test]
fn no_crate_has_an_import_circle() {
    let mut crates = 0;
    let mut imports = 0;
    for e in std::fs::read_dir(root().join("crates")).unwrap().flatten() {
        let src = e.path().join("src");
        if !src.is_dir() {
            continue;
        }
        let edges = module_graph(&src);
        imports += edges.values().map(|t| t.len()).sum::<usize>();
        crates += 1;
        if let Some(c) = circle(&edges) {
            panic!("import circle in {}: {c}", e.path().display());
        }
    }
    assert!(
        crates >= 6 && imports > 100,
        "the scan found too few crates ({crates}) or imports ({imports})"
    );
}

/// Nothing below `ablate`'s command line imports from `commands/` (the libraries below it,
/// `ionode-study` and `ionode-report`, cannot: Cargo forbids the circle).
#[test]
fn nothing_below_the_command_line_imports_a_command() {
    let edges = module_graph(&root().join("crates/ablate/src"));
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
    // The scan sees the commands' own imports (of the argument types).
    assert!(
        edges
            .iter()
            .any(|(from, tos)| from.first().is_some_and(|f| f == "commands")
                && tos.iter().any(|t| t.first().is_some_and(|t| t == "cli"))),
        "the scan found no import of cli by commands: {edges:?}"
    );
}

/// The top-level modules of a crate: its `src/*.rs` files but `lib.rs` and `main.rs`, and
/// its folders.
fn top_modules(src: &Path) -> std::collections::BTreeSet<String> {
    std::fs::read_dir(src)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if e.path().is_dir() {
                Some(name)
            } else {
                name.strip_suffix(".rs")
                    .filter(|s| !matches!(*s, "lib" | "main"))
                    .map(str::to_string)
            }
        })
        .collect()
}

/// The first column of the Markdown table that starts after `marker` (one blank line
/// between), without its backticks.
fn table_names(doc: &str, marker: &str) -> Option<Vec<String>> {
    let at = doc.find(marker)? + marker.len();
    let mut lines = doc[at..].lines().skip(1);
    if !lines.next()?.is_empty() {
        return None;
    }
    let rows: Vec<&str> = lines.take_while(|l| l.starts_with('|')).collect();
    Some(
        rows.iter()
            .skip(2)
            .map(|r| {
                r.trim_start_matches('|')
                    .split('|')
                    .next()
                    .unwrap()
                    .trim()
                    .trim_matches('`')
                    .to_string()
            })
            .collect(),
    )
}

/// ARCHITECTURE.md is a code map kept honest: each crate's module map lists exactly the
/// modules of its `src/`, and the crate table's "depends on" column names exactly the
/// dependencies of its `Cargo.toml`.
#[test]
fn architecture_md_maps_every_module_and_dependency() {
    let doc = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let crates: Vec<PathBuf> = std::fs::read_dir(root().join("crates"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("Cargo.toml").exists())
        .collect();
    assert!(crates.len() >= 6, "{crates:?}");
    let mut problems = Vec::new();
    for dir in &crates {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        // The module map.
        let marker = format!("Module map (`crates/{name}/src`):");
        match table_names(&doc, &marker) {
            None => problems.push(format!(
                "no '{marker}' followed by a blank line and a table"
            )),
            Some(listed) => {
                let listed_set: std::collections::BTreeSet<String> =
                    listed.iter().cloned().collect();
                if listed_set.len() != listed.len() {
                    problems.push(format!("{name}: a module is listed twice: {listed:?}"));
                }
                let real = top_modules(&dir.join("src"));
                for m in real.difference(&listed_set) {
                    problems.push(format!("{name}: module '{m}' is not in its module map"));
                }
                for m in listed_set.difference(&real) {
                    problems.push(format!(
                        "{name}: the module map lists '{m}', which is not in src/"
                    ));
                }
            }
        }
        // The dependency column.
        let manifest: toml::Table =
            toml::from_str(&std::fs::read_to_string(dir.join("Cargo.toml")).unwrap()).unwrap();
        let package = manifest["package"]["name"].as_str().unwrap().to_string();
        let deps: std::collections::BTreeSet<String> = manifest
            .get("dependencies")
            .and_then(|d| d.as_table())
            .map(|t| {
                t.keys()
                    .map(|k| k.strip_prefix("ionode-").unwrap_or(k).to_string())
                    .collect()
            })
            .unwrap_or_default();
        let row_start = format!("| `{name}` (`{package}`) |");
        let Some(row) = doc.lines().find(|l| l.starts_with(&row_start)) else {
            problems.push(format!("the crate table has no row starting '{row_start}'"));
            continue;
        };
        let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
        let listed: std::collections::BTreeSet<String> = cells
            .last()
            .unwrap()
            .split(',')
            .map(|d| d.split('(').next().unwrap().trim().to_string())
            .filter(|d| !d.is_empty() && d != "-")
            .collect();
        for d in deps.difference(&listed) {
            problems.push(format!(
                "{name}: dependency '{d}' is not in the crate table"
            ));
        }
        for d in listed.difference(&deps) {
            problems.push(format!(
                "{name}: the crate table names '{d}', which Cargo.toml does not"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "ARCHITECTURE.md:\n{}",
        problems.join("\n")
    );
}
