//! The located-error contract, as data: every file in `tests/located/` named
//! `NAME.KIND.EXT` is a bad input, and `NAME.expected` beside it is exactly what `ablate`
//! must print on stderr for it (with `FILE` for the input's path), with exit code 2 and
//! nothing written. Adding a case is adding two files.
//!
//! The kind says which command reads the input:
//! - `manifest` (TOML): `ablate check FILE` (paths relative to the manifest's folder);
//! - `config` (TOML): `ablate train --config FILE --out DIR` from the repository's root
//!   (paths relative to it);
//! - `data` (CSV): `ablate data check FILE`;
//! - `membrane` (TOML): `ablate dspmde point --membrane FILE --feed NaCl=10 --flux 10lmh`.

mod common;
use common::text;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The command line for an input of a kind; `out` is a folder that must stay absent.
fn command(kind: &str, file: &str, out: &str) -> Option<Vec<String>> {
    let args: Vec<&str> = match kind {
        "manifest" => vec!["check", file],
        "config" => vec!["train", "--config", file, "--out", out],
        "data" => vec!["data", "check", file],
        "membrane" => vec![
            "dspmde",
            "point",
            "--membrane",
            file,
            "--feed",
            "NaCl=10",
            "--flux",
            "10lmh",
        ],
        _ => return None,
    };
    Some(args.into_iter().map(String::from).collect())
}

#[test]
fn every_bad_input_gets_its_expected_located_message() {
    let dir = root().join("crates/ablate/tests/located");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    let mut problems = Vec::new();
    let mut cases = 0;
    for input in names
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e != "expected"))
    {
        let file_name = input.file_name().unwrap().to_string_lossy().into_owned();
        let parts: Vec<&str> = file_name.split('.').collect();
        let [name, kind, _ext] = parts[..] else {
            problems.push(format!("{file_name}: expected NAME.KIND.EXT"));
            continue;
        };
        let expected_path = dir.join(format!("{name}.expected"));
        let Ok(expected) = std::fs::read_to_string(&expected_path) else {
            problems.push(format!("{file_name}: no {name}.expected beside it"));
            continue;
        };
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let file = input.display().to_string();
        let Some(args) = command(kind, &file, &out.display().to_string()) else {
            problems.push(format!("{file_name}: unknown kind '{kind}'"));
            continue;
        };
        let r = Command::new(env!("CARGO_BIN_EXE_ablate"))
            .args(&args)
            .current_dir(root())
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        cases += 1;
        let stderr = text(&r.stderr).replace(&file, "FILE");
        if r.status.code() != Some(2) {
            problems.push(format!(
                "{file_name}: exit code {:?}, expected 2\n{stderr}",
                r.status.code()
            ));
        }
        if stderr != expected {
            problems.push(format!(
                "{file_name}: stderr differs from {name}.expected\n--- got\n{stderr}--- expected\n{expected}"
            ));
        }
        if out.exists() {
            problems.push(format!("{file_name}: wrote {}", out.display()));
        }
    }
    // Every expected message has its input.
    for e in names
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "expected"))
    {
        let stem = e.file_stem().unwrap().to_string_lossy().into_owned();
        let has_input = names.iter().any(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{stem}."))
                && p != e
        });
        if !has_input {
            problems.push(format!("{stem}.expected has no input beside it"));
        }
    }
    assert!(cases >= 6, "only {cases} cases found in {}", dir.display());
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}
