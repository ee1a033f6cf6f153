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

fn experiment(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../experiments")
        .join(name)
        .canonicalize()
        .unwrap_or_else(|e| panic!("experiments/{name}: {e}"))
}

fn search_smoke() -> PathBuf {
    experiment("search_smoke.toml")
}

/// A Hyperband search's decisions (every bracket's rungs), then its result.
fn brackets(study: &Path) -> Vec<String> {
    let dir = study.join("search");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("bracket-") && n.ends_with(".json"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names.push("hyperband.json".into());
    names
        .iter()
        .filter_map(|n| {
            std::fs::read_to_string(dir.join(n))
                .ok()
                .map(|t| format!("{n}\n{t}"))
        })
        .collect()
}

/// A TPE search's generation files, then its result.
fn generations(study: &Path) -> Vec<String> {
    let dir = study.join("search");
    let mut out: Vec<String> = (1..)
        .map(|g| dir.join(format!("generation-{g}.json")))
        .take_while(|p| p.exists())
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    out.extend(std::fs::read_to_string(dir.join("result.json")));
    out
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

/// Runs `file`'s search uninterrupted at `--jobs 1` (the reference), at `--jobs 2`, over
/// three shards started together and killed with SIGKILL at many points and resumed: every
/// way writes the same search files (`files`) and runs the same runs, each once. Returns
/// the reference's results folder.
fn same_search_every_way(
    dir: &Path,
    file: &Path,
    study_name: &str,
    files: fn(&Path) -> Vec<String>,
) -> (PathBuf, Vec<String>, BTreeSet<String>) {
    let file = file.to_str().unwrap();
    let results = |name: &str| dir.join(name);
    let study = |name: &str| results(name).join(study_name);

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
    let reference = files(&study("one"));
    let ran = done(&study("one"));
    assert!(!reference.is_empty() && !ran.is_empty());

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
    assert_eq!(files(&study("two")), reference);
    assert_eq!(done(&study("two")), ran);

    // Three shards started together, one job each: each waits for and helps with the
    // rung's (generation's) other runs, so all reach the same decisions and every run
    // runs once.
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
    assert_eq!(files(&study("shards")), reference);
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
    assert_eq!(files(&study("killed")), reference);
    assert_eq!(
        done(&study("killed")),
        ran,
        "no run beyond the searched ones, none lost"
    );
    (study("one"), reference, ran)
}

#[test]
fn a_halving_search_gives_the_same_promotions_at_any_jobs_over_shards_and_after_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let (one, reference, ran) =
        same_search_every_way(dir.path(), &search_smoke(), "search_smoke", decisions);
    let study = |_: &str| one.clone();
    assert_eq!(reference.len(), 3, "three rungs decided");
    let last: serde_json::Value = serde_json::from_str(&reference[2]).unwrap();
    assert!(last["winner"].is_u64(), "{last}");
    // 18 candidates x 2 seeds, then 6, then 2: only promoted candidates ever ran.
    assert_eq!(ran.len(), 36 + 12 + 4);
    let first: serde_json::Value = serde_json::from_str(&reference[0]).unwrap();
    assert_eq!(first["promoted"].as_array().unwrap().len(), 6);

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

    // The pages count the runs the search needed, not the later rungs' runs of the
    // candidates it dropped: the finished search is complete.
    let results = study("one").parent().unwrap().to_path_buf();
    run_ok(&["index", results.to_str().unwrap()]);
    let index = std::fs::read_to_string(results.join("index.html")).unwrap();
    let row = index
        .lines()
        .find(|l| l.contains(">search_smoke</a></td>"))
        .unwrap_or_else(|| panic!("{index}"));
    assert!(
        row.contains("<td class=\"complete\">complete</td>"),
        "{row}"
    );
    let progress = std::fs::read_to_string(study("one").join("progress.html")).unwrap();
    assert!(
        progress.contains("<span class=\"complete\">complete</span>"),
        "{progress}"
    );
    assert!(
        progress.contains("<td>planned</td><td class=\"num\">52</td>"),
        "{progress}"
    );
    assert!(!progress.contains("http-equiv"), "{progress}");
}

#[test]
fn a_tpe_search_proposes_the_same_candidates_at_any_jobs_over_shards_and_after_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let (one, reference, ran) = same_search_every_way(
        dir.path(),
        &experiment("tpe_smoke.toml"),
        "tpe_smoke",
        generations,
    );
    // 6 random candidates, then 3 generations of 3, each at 2 folds: 3 generation files
    // and the result; a proposal that repeats an earlier point reuses its runs.
    assert_eq!(reference.len(), 4);
    assert!(ran.len() <= 30 && ran.len() > 12, "{}", ran.len());
    let g1: serde_json::Value = serde_json::from_str(&reference[0]).unwrap();
    assert_eq!(g1["candidates"].as_array().unwrap().len(), 3);
    assert_eq!(
        g1["told"].as_array().unwrap().len(),
        6,
        "proposed from the random start"
    );
    // A candidate's runs are its folds; its axes are the proposed point's alone.
    let c = &g1["candidates"][0];
    assert_eq!(c["runs"][0].as_array().unwrap().len(), 2, "{c}");
    assert!(c["axes"].get("split.n_train").is_none(), "{c}");
    let folds: BTreeSet<u64> = g1["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["config"]["split"]["n_train"].as_u64().unwrap())
        .collect();
    assert_eq!(folds, BTreeSet::from([30, 40]));
    let result: serde_json::Value = serde_json::from_str(&reference[3]).unwrap();
    assert_eq!(result["ranked"].as_array().unwrap().len(), 15);
    let winner = result["winner"].as_u64().expect("a winner");

    // Status shows each generation and the winner; the report lists the candidates.
    let status = text(&ablate(&["status", one.to_str().unwrap()]).stdout);
    assert!(
        status.contains("generation 0 (candidates 0..6): 12 runs done"),
        "{status}"
    );
    assert!(
        status.contains(&format!("winner: candidate {winner} (")),
        "{status}"
    );
    run_ok(&["report", one.to_str().unwrap()]);
    let csv = std::fs::read_to_string(one.join("summary.csv")).unwrap();
    assert_eq!(
        csv.lines().count() - 1,
        ran.len(),
        "every run in the summary"
    );
    let md = std::fs::read_to_string(one.join("report/tables/search.md")).unwrap();
    assert!(md.contains(&format!("| winner | {winner}: ")), "{md}");
    // The search's axes ranked by importance, as a table and a figure.
    let imp = std::fs::read_to_string(one.join("report/tables/importance.md")).unwrap();
    for axis in [
        "finetune.learning_rate (log10)",
        "finetune.epochs",
        "model.hidden",
    ] {
        assert!(imp.contains(&format!("| {axis} | ")), "{imp}");
    }
    assert!(one.join("report/figures/importance.svg").exists());

    // Its curve against candidates; a halving study is no TPE search to compare.
    let out = dir.path().join("curves");
    let r = ablate(&[
        "search-curves",
        one.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    let summary = text(&r.stdout);
    assert!(
        summary.contains(&format!(
            "winner candidate {winner}, finetune.validation.mae = "
        )),
        "{summary}"
    );
    let csv = std::fs::read_to_string(out.join("search_curves.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 15, "{csv}");
    assert!(out.join("search_curves.pdf").exists() && out.join("search_curves.json").exists());
    let plain = dir.path().join("halving");
    run_ok(&[
        "run",
        search_smoke().to_str().unwrap(),
        "--results",
        plain.to_str().unwrap(),
    ]);
    let r = ablate(&[
        "search-curves",
        plain.join("search_smoke").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(2), "{}", text(&r.stderr));
    assert!(text(&r.stderr).contains("which is no TPE search"));
}

#[test]
fn hyperband_gives_the_same_brackets_and_winner_at_any_jobs_over_shards_and_after_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let (one, reference, ran) = same_search_every_way(
        dir.path(),
        &experiment("hyperband_smoke.toml"),
        "hyperband_smoke",
        brackets,
    );
    // Three brackets from rungs 0, 1 and 2: 3 + 2 + 1 decisions, then the result.
    assert_eq!(reference.len(), 7, "{reference:#?}");
    let result = reference.last().unwrap();
    let result: serde_json::Value =
        serde_json::from_str(result.split_once('\n').unwrap().1).unwrap();
    let winner = result["winner"].as_u64().expect("a winner");
    // 10, 5 and 3 candidates x 2 seeds at their first rungs; promoted ones after.
    assert_eq!(ran.len(), 46);
    let status = text(&ablate(&["status", one.to_str().unwrap()]).stdout);
    assert!(
        status.contains("bracket 2 (from rung 2, 3 candidates):"),
        "{status}"
    );
    assert!(
        status.contains(&format!("winner: candidate {winner} (")),
        "{status}"
    );
    run_ok(&["report", one.to_str().unwrap()]);
    let md = std::fs::read_to_string(one.join("report/tables/search.md")).unwrap();
    assert!(md.contains(&format!("Winner: candidate {winner},")), "{md}");
}

#[test]
fn hyperband_decides_a_rung_again_when_a_failed_run_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let file = experiment("hyperband_smoke.toml");
    let file = file.to_str().unwrap();
    let results = dir.path().to_str().unwrap();
    run_ok(&["run", file, "--jobs", "2", "--results", results]);
    let study = dir.path().join("hyperband_smoke");
    let reference = brackets(&study);
    // The winner's first run, made FAILED (as a run that crashed would be), and every
    // decision made again from it: the failed candidate cannot win.
    let result: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(study.join("search/hyperband.json")).unwrap(),
    )
    .unwrap();
    let winner = result["winner"].as_u64().unwrap();
    let first: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(study.join("search/bracket-0-rung-0.json")).unwrap(),
    )
    .unwrap();
    let scored = first["ranked"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["candidate"].as_u64() == Some(winner))
        .expect("the winner started in bracket 0");
    let run = study.join("runs").join(scored["runs"][0].as_str().unwrap());
    std::fs::remove_file(run.join("DONE")).unwrap();
    std::fs::remove_file(run.join("run.h5")).unwrap();
    std::fs::write(run.join("FAILED"), "injected\n").unwrap();
    for f in std::fs::read_dir(study.join("search")).unwrap().flatten() {
        std::fs::remove_file(f.path()).unwrap();
    }
    // (A run that failed before is not a failure of this run: it exits 0, as a sweep does.)
    run_ok(&["run", file, "--jobs", "2", "--results", results]);
    let without = brackets(&study);
    assert_ne!(without, reference);
    // Retried, it runs again (to the same bits), and every decision follows it back.
    run_ok(&[
        "run",
        file,
        "--jobs",
        "2",
        "--retry-failed",
        "--results",
        results,
    ]);
    assert!(run.join("DONE").exists());
    assert_eq!(brackets(&study), reference);
}

#[test]
fn a_tpe_search_with_two_objectives_keeps_their_pareto_front() {
    let dir = tempfile::tempdir().unwrap();
    let file = experiment("tpe_smoke.toml");
    // Validation MAE down and R² down pull against each other: a front of several.
    let set = [
        "--set",
        "search.metric=\"\"",
        "--set",
        "search.metrics=[{metric=\"finetune.validation.mae\"},{metric=\"finetune.validation.r2\",direction=\"minimize\"}]",
    ];
    let results = |name: &str| dir.path().join(name);
    for (name, jobs) in [("one", "1"), ("two", "2")] {
        let mut args = vec!["run", file.to_str().unwrap(), "--jobs", jobs, "--results"];
        let r = results(name);
        args.push(r.to_str().unwrap());
        args.extend(set);
        run_ok(&args);
    }
    // The study's folder (beside it: the results index).
    let studies: Vec<PathBuf> = std::fs::read_dir(results("one"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    let [study] = &studies[..] else {
        panic!("{studies:?}")
    };
    let name = study.file_name().unwrap();
    assert_eq!(generations(study), generations(&results("two").join(name)));
    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(study.join("search/result.json")).unwrap())
            .unwrap();
    assert!(result["winner"].is_null(), "a front, not a winner");
    let front: BTreeSet<u64> = result["front"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .collect();
    // The front is exactly the candidates no other candidate dominates.
    let points: Vec<(u64, f64, f64)> = result["ranked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let o = r["objectives"].as_array().unwrap();
            (
                r["candidate"].as_u64().unwrap(),
                o[0].as_f64().unwrap(),
                o[1].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(points.len(), 15);
    let dominated = |p: &(u64, f64, f64)| {
        points
            .iter()
            .any(|q| q.1 <= p.1 && q.2 <= p.2 && (q.1 < p.1 || q.2 < p.2))
    };
    let expected: BTreeSet<u64> = points
        .iter()
        .filter(|p| !dominated(p))
        .map(|p| p.0)
        .collect();
    assert_eq!(front, expected);
    assert!(front.len() >= 2, "{front:?}");
    // Status lists the front; the report draws it.
    let status = text(&ablate(&["status", study.to_str().unwrap()]).stdout);
    assert!(
        status.contains(&format!("{} candidate(s)", front.len())),
        "{status}"
    );
    run_ok(&["report", study.to_str().unwrap()]);
    assert!(study.join("report/figures/pareto_front.svg").exists());
    let md = std::fs::read_to_string(study.join("report/tables/search.md")).unwrap();
    assert_eq!(md.matches("| front |").count(), front.len(), "{md}");
}

#[test]
fn a_tpe_search_starts_from_named_candidates_and_another_studys_runs() {
    let dir = tempfile::tempdir().unwrap();
    let file = experiment("tpe_smoke.toml");
    let file = file.to_str().unwrap();
    let warm = [
        "--set",
        "study=\"warm\"",
        "--set",
        "search.warm_start=[\"tpe_smoke\"]",
        "--set",
        "search.enqueue=[{\"finetune.learning_rate\"=0.01,\"model.hidden\"=8,\"finetune.epochs\"=3}]",
        "--set",
        "search.candidates=16",
    ];
    for (name, jobs) in [("one", "1"), ("two", "2")] {
        let results = dir.path().join(name);
        let r = results.to_str().unwrap();
        run_ok(&["run", file, "--results", r]);
        let mut args = vec!["run", file, "--jobs", jobs, "--results", r];
        args.extend(warm);
        run_ok(&args);
    }
    let study = |name: &str| dir.path().join(name).join("warm");
    assert_eq!(generations(&study("one")), generations(&study("two")));
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(study("one").join("plan.json")).unwrap())
            .unwrap();
    // The other study's 15 finished points, each over its 2 folds, are in the plan.
    let points = plan["search"]["warm"].as_array().unwrap();
    assert_eq!(points.len(), 15);
    assert!(points
        .iter()
        .all(|p| p["runs"] == 2 && p["study"] == "tpe_smoke"));
    // The named candidate is the first; the random start follows.
    assert_eq!(
        plan["search"]["candidates"][0]["axes"],
        serde_json::json!({"finetune.epochs": 3, "finetune.learning_rate": 0.01, "model.hidden": 8})
    );
    assert_eq!(plan["search"]["candidates"].as_array().unwrap().len(), 7);
    // Every generation was told them, before its own candidates.
    let g1: serde_json::Value = serde_json::from_str(&generations(&study("one"))[0]).unwrap();
    assert_eq!(g1["warm"].as_array().unwrap().len(), 15);
    // Resumed after the other study changed, the search keeps the points it was planned with.
    let other = dir.path().join("one").join("tpe_smoke");
    std::fs::remove_dir_all(other.join("runs")).unwrap();
    let results_one = dir.path().join("one");
    let mut args = vec!["run", file, "--results", results_one.to_str().unwrap()];
    args.extend(warm);
    run_ok(&args);

    // A named candidate outside the space, and a study that is not there.
    let bad = [
        "--set",
        "search.enqueue=[{\"finetune.learning_rate\"=5.0,\"model.hidden\"=8}]",
    ];
    let mut args = vec!["check", file];
    args.extend(bad);
    let r = ablate(&args);
    assert_eq!(r.status.code(), Some(2));
    let err = text(&r.stderr);
    assert!(
        err.contains("search.enqueue[0].\"finetune.learning_rate\": 5.0 is not a value of log_uniform over [0.001, 0.1]"),
        "{err}"
    );
    assert!(
        err.contains("search.enqueue[0]: no value for the [random] axis \"finetune.epochs\""),
        "{err}"
    );
    let empty = dir.path().join("empty");
    let r = ablate(&[
        "run",
        file,
        "--results",
        empty.to_str().unwrap(),
        "--set",
        "search.warm_start=[\"nowhere\"]",
    ]);
    assert_eq!(r.status.code(), Some(2), "{}", text(&r.stderr));
    assert!(
        text(&r.stderr).contains("search.warm_start 'nowhere': no study folder"),
        "{}",
        text(&r.stderr)
    );
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
    // A TPE table: no rungs, a count of candidates at least the random start.
    let body = format!(
        "include = [\"{}\"]\n[search]\nbudget = \"finetune.epochs\"\ncandidates = 2\n",
        experiment("tpe_smoke.toml").display()
    );
    std::fs::write(&path, body).unwrap();
    let r = ablate(&["check", path.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(2));
    let err = text(&r.stderr);
    let name = path.display().to_string();
    assert!(
        err.contains(&format!("{name}:3:1: search.budget: a TPE search runs every candidate at the base config's budget")),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{name}:4:1: search.candidates: 2 is fewer than the 6 candidates a TPE search starts from"
        )),
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
