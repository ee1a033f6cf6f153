//! Successive halving (`[search]`) end to end on `experiments/search_smoke.toml`: the same
//! promotions and winner at `--jobs 1` and `--jobs 2`, over shards run at once, and after
//! SIGKILL at many points; only promoted candidates ever run; located `[search]` errors;
//! the summary's `search.budget` and the report's winner.

mod common;
use common::{ablate, text};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn search_smoke() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../experiments/search_smoke.toml")
        .canonicalize()
        .expect("experiments/search_smoke.toml exists")
}

fn run_ok(args: &[&str]) -> String {
    let r = ablate(args);
    assert!(r.status.success(), "{args:?}: {}", text(&r.stderr));
    text(&r.stderr)
}

/// The rung decisions, as written.
fn decisions(study: &Path) -> Vec<String> {
    (0..)
        .map(|k| study.join("search").join(format!("rung-{k}.json")))
        .take_while(|p| p.exists())
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

/// The run ids with a DONE marker.
fn done(study: &Path) -> BTreeSet<String> {
    std::fs::read_dir(study.join("runs"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().join("DONE").exists())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The fields of one CSV line (quoted fields may hold commas).
fn fields(line: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted) = (Vec::new(), String::new(), false);
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn spawn(args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_ablate"))
        .args(args)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn a_halving_search_gives_the_same_promotions_at_any_jobs_over_shards_and_after_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let file = search_smoke();
    let file = file.to_str().unwrap();
    let results = |name: &str| dir.path().join(name);
    let study = |name: &str| results(name).join("search_smoke");

    // Uninterrupted, one job: the reference.
    let one = results("one");
    run_ok(&[
        "run",
        file,
        "--jobs",
        "1",
        "--results",
        one.to_str().unwrap(),
    ]);
    let reference = decisions(&study("one"));
    let ran = done(&study("one"));
    assert_eq!(reference.len(), 3, "three rungs decided");
    let last: serde_json::Value = serde_json::from_str(&reference[2]).unwrap();
    assert!(last["winner"].is_u64(), "{last}");
    // 18 candidates x 2 seeds, then 6, then 2: only promoted candidates ever ran.
    assert_eq!(ran.len(), 36 + 12 + 4);
    let first: serde_json::Value = serde_json::from_str(&reference[0]).unwrap();
    assert_eq!(first["promoted"].as_array().unwrap().len(), 6);

    // Two jobs.
    let two = results("two");
    run_ok(&[
        "run",
        file,
        "--jobs",
        "2",
        "--results",
        two.to_str().unwrap(),
    ]);
    assert_eq!(decisions(&study("two")), reference);
    assert_eq!(done(&study("two")), ran);

    // Three shards started together, one job each: each waits for and helps with the
    // rung's other runs, so all reach the same decisions and every run runs once.
    let shards = results("shards");
    let s = shards.to_str().unwrap();
    let children: Vec<_> = (0..3)
        .map(|i| {
            let shard = format!("{i}/3");
            spawn(&[
                "run",
                file,
                "--jobs",
                "1",
                "--shard",
                &shard,
                "--results",
                s,
            ])
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    assert_eq!(decisions(&study("shards")), reference);
    assert_eq!(done(&study("shards")), ran);

    // Killed with SIGKILL after a varying number of finished runs (in every rung), and
    // resumed until it completes, alternating --jobs 2 and --jobs 1.
    let killed = results("killed");
    let k = killed.to_str().unwrap();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut kills = 0;
    for attempt in 0..12 {
        let jobs = if attempt % 2 == 0 { "2" } else { "1" };
        let before = done(&study("killed")).len();
        if before >= ran.len() {
            break;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let wait_for = before + 1 + (x % 9) as usize;
        let mut child = spawn(&["run", file, "--jobs", jobs, "--results", k]);
        let start = Instant::now();
        loop {
            if done(&study("killed")).len() >= wait_for || child.try_wait().unwrap().is_some() {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(120), "no progress");
            std::thread::sleep(Duration::from_millis(2));
        }
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
    }
    run_ok(&["run", file, "--jobs", "2", "--results", k]);
    assert!(kills >= 3, "killed {kills} times");
    assert_eq!(decisions(&study("killed")), reference);
    assert_eq!(
        done(&study("killed")),
        ran,
        "no run beyond the promoted ones, none lost"
    );

    // Status shows each rung; the summary has each run's budget; the report marks the winner.
    let status = ablate(&["status", study("one").to_str().unwrap()]);
    let status = text(&status.stdout);
    assert!(
        status.contains("rung 0 (finetune.epochs = 1): 18 candidates, 36 runs done"),
        "{status}"
    );
    assert!(
        status.contains("rung 1 (finetune.epochs = 3): 6 candidates"),
        "{status}"
    );
    assert!(status.contains("winner: candidate"), "{status}");
    run_ok(&["report", study("one").to_str().unwrap()]);
    let csv = std::fs::read_to_string(study("one").join("summary.csv")).unwrap();
    let header = fields(csv.lines().next().unwrap());
    let col = header
        .iter()
        .position(|h| h == "search.budget")
        .expect("search.budget column");
    let budgets: BTreeSet<String> = csv
        .lines()
        .skip(1)
        .map(|l| fields(l)[col].clone())
        .collect();
    assert_eq!(
        budgets,
        BTreeSet::from(["1".into(), "3".into(), "9".into()])
    );
    let md = std::fs::read_to_string(study("one").join("report/tables/search.md")).unwrap();
    assert!(md.contains("| winner |"), "{md}");
}

#[test]
fn search_tables_are_checked_and_located() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    let body = format!(
        "include = [\"{}\"]\n[search]\nbudget = \"finetune.epochs\"\nmin = 4\nmax = 2\neta = 1\nmetric = \"measured.test.mae\"\n",
        search_smoke().display()
    );
    std::fs::write(&path, body).unwrap();
    let r = ablate(&["check", path.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(2));
    let err = text(&r.stderr);
    let name = path.display().to_string();
    assert!(err.contains(&format!("{name}:7:1: search.metric: 'measured.test.mae': a search never chooses by the test part")), "{err}");
    assert!(
        err.contains(&format!(
            "{name}:6:1: search.eta: 1: expected a reduction factor"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{name}:5:1: search.max: 2: expected a budget above min = 4"
        )),
        "{err}"
    );

    // The budget may not also be an axis, and unknown keys are named.
    let body = format!(
        "include = [\"{}\"]\n[grid]\n\"finetune.epochs\" = [1, 2]\n",
        search_smoke().display()
    );
    std::fs::write(&path, body).unwrap();
    let err = text(&ablate(&["check", path.to_str().unwrap()]).stderr);
    assert!(
        err.contains("search.budget: 'finetune.epochs' is also the axis \"finetune.epochs\""),
        "{err}"
    );
    let r = ablate(&[
        "check",
        search_smoke().to_str().unwrap(),
        "--set",
        "search.budgt=1",
    ]);
    let err = text(&r.stderr);
    assert!(
        err.contains("--set 'search.budgt=1':1:8: ") && err.contains("budgt"),
        "{err}"
    );
}
