//! Malformed and hostile inputs, as data: `tests/hostile/*.toml` hold the cases, one table
//! each (the command, the files it is given, what it must answer and what it must leave
//! alone); this file only runs them. Adding a case is adding a table.
//!
//! A case:
//!
//! ```toml
//! [[case]]
//! name = "predict --out equal to --data"     # shown when it fails
//! files = { "feeds.csv" = "@copy:datasets/measured/nf270_fdl2021.csv" }
//! before = [["train", "--config", "{dir}/t.toml", "--out", "{dir}/run"]]  # must succeed
//! args = ["predict", "--run", "{dir}/run", "--data", "{dir}/feeds.csv", "--out", "{dir}/feeds.csv"]
//! exit = 2                                   # the exit code
//! stderr = ["is one of this command's inputs"]   # each must appear in stderr
//! unchanged = ["feeds.csv"]                  # same bytes (or the same special file) after
//! absent = ["res/smoke/slurm.sbatch"]        # must not exist after
//! env = { IONODE_KERNEL_PATH = "sse2" }      # set for the command
//! ```
//!
//! File values: text, `@fifo` (a named pipe nobody writes), `@copy:PATH` (a file of the
//! repository), `@template:PATH` (one with `{dir}` and `{root}` filled in),
//! `@symlink:TARGET`, `@dir`. In strings, `{dir}` is the case's temporary
//! folder and `{root}` the repository. Every command must answer within a time limit:
//! a FIFO that is opened instead of refused would hang it.

mod common;
use common::text;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    #[serde(default)]
    files: BTreeMap<String, String>,
    #[serde(default)]
    before: Vec<Vec<String>>,
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    exit: i32,
    #[serde(default)]
    stderr: Vec<String>,
    #[serde(default)]
    unchanged: Vec<String>,
    #[serde(default)]
    absent: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cases {
    case: Vec<Case>,
}

/// Longest a case's command may take.
const LIMIT: Duration = Duration::from_secs(60);

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn expand(s: &str, dir: &Path) -> String {
    s.replace("{dir}", &dir.display().to_string())
        .replace("{root}", &root().display().to_string())
}

/// What a file is, to compare before and after: its bytes, or the kind of special file.
fn fingerprint(path: &Path) -> String {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Err(_) => "missing".into(),
        Ok(m) if m.file_type().is_fifo() => "fifo".into(),
        Ok(m) if m.file_type().is_char_device() => "char device".into(),
        Ok(m) if m.file_type().is_symlink() => {
            format!("symlink to {}", std::fs::read_link(path).unwrap().display())
        }
        Ok(m) if m.is_dir() => "dir".into(),
        Ok(_) => format!("{:?}", blake3::hash(&std::fs::read(path).unwrap())),
    }
}

fn make(dir: &Path, name: &str, value: &str) {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    if value == "@fifo" {
        let ok = Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mkfifo {}", path.display());
    } else if value == "@dir" {
        std::fs::create_dir_all(&path).unwrap();
    } else if let Some(from) = value.strip_prefix("@copy:") {
        std::fs::copy(root().join(from), &path).unwrap();
    } else if let Some(from) = value.strip_prefix("@template:") {
        let text = std::fs::read_to_string(root().join(from)).unwrap();
        std::fs::write(&path, expand(&text, dir)).unwrap();
    } else if let Some(target) = value.strip_prefix("@symlink:") {
        std::os::unix::fs::symlink(expand(target, dir), &path).unwrap();
    } else {
        std::fs::write(&path, expand(value, dir)).unwrap();
    }
}

/// Runs `ablate` with a time limit: `None` if it had to be killed.
fn run(args: &[String], env: &BTreeMap<String, String>) -> Option<(i32, String)> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ablate"))
        .args(args)
        .envs(env)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            return Some((status.code().unwrap_or(-1), text(&out.stderr)));
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs one case; the problems found (empty when it passes).
fn check(case: &Case) -> Vec<String> {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for (name, value) in &case.files {
        make(dir, name, value);
    }
    for before in &case.before {
        let args: Vec<String> = before.iter().map(|a| expand(a, dir)).collect();
        match run(&args, &BTreeMap::new()) {
            Some((0, _)) => {}
            other => return vec![format!("setup {args:?} did not succeed: {other:?}")],
        }
    }
    let kept: Vec<(PathBuf, String)> = case
        .unchanged
        .iter()
        .map(|f| {
            let p = PathBuf::from(expand(f, dir));
            let p = if p.is_absolute() { p } else { dir.join(p) };
            let fp = fingerprint(&p);
            (p, fp)
        })
        .collect();
    let args: Vec<String> = case.args.iter().map(|a| expand(a, dir)).collect();
    let env: BTreeMap<String, String> = case
        .env
        .iter()
        .map(|(k, v)| (k.clone(), expand(v, dir)))
        .collect();
    let Some((code, err)) = run(&args, &env) else {
        return vec![format!("hung (killed after {LIMIT:?}): {args:?}")];
    };
    let mut problems = Vec::new();
    if code != case.exit {
        problems.push(format!("exit code {code}, expected {}", case.exit));
    }
    for want in &case.stderr {
        let want = expand(want, dir);
        if !err.contains(&want) {
            problems.push(format!("stderr lacks {want:?}"));
        }
    }
    if err.contains("panicked") || err.contains("RUST_BACKTRACE") {
        problems.push("panicked".into());
    }
    if case.exit == 2 && err.lines().filter(|l| l.starts_with("error: ")).count() != 1 {
        problems.push("not exactly one `error:` line".into());
    }
    for (p, before) in kept {
        let after = fingerprint(&p);
        if after != before {
            problems.push(format!("{} changed: {before} -> {after}", p.display()));
        }
    }
    for f in &case.absent {
        if dir.join(expand(f, dir)).exists() {
            problems.push(format!("{f} was written"));
        }
    }
    if !problems.is_empty() {
        problems.push(format!("stderr was:\n{err}"));
    }
    problems
}

#[test]
fn every_hostile_input_is_refused_clearly_and_damages_nothing() {
    let cases_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&cases_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let cases: Vec<(String, Case)> = files
        .iter()
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            let cases: Cases =
                toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            let file = f.file_name().unwrap().to_string_lossy().into_owned();
            cases.case.into_iter().map(move |c| (file.clone(), c))
        })
        .collect();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    // Two at a time: the cases are independent processes in their own folders.
    let failures: Vec<String> = std::thread::scope(|s| {
        let chunks: Vec<_> = cases.chunks(cases.len().div_ceil(2)).collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                s.spawn(move || {
                    chunk
                        .iter()
                        .filter_map(|(file, c)| {
                            let p = check(c);
                            (!p.is_empty())
                                .then(|| format!("{file}: {}:\n  {}", c.name, p.join("\n  ")))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
