//! The reproducibility guard: the committed results must be what the code produces.
//!
//! For each committed study (`results/paper`, `results/nf270_fdl2021`,
//! `results/nf270_transfer`, `results/nf270_intervals`) a few runs are recomputed from its
//! manifest (chosen by rule from the plan, to be fast and to cover each path: a
//! `dspmde_fit` run, a neural run without and one with pre-training, a physics-anchored
//! run, an ensemble), and
//! every column of their summary rows is compared, bit for bit, with the committed
//! `summary.parquet` (all but the timings, the commit and the time written). The two
//! shipped models (`results/nf270_fdl2021_final`, `results/nf270_fdl2021_dspmde`) are
//! trained again exactly as `scripts/run-main` trains them, and their metrics,
//! predictions, fitted membrane and record are compared likewise.
//!
//! A failure names the results to regenerate: a change that moves any bit of a committed
//! result regenerates it in the same submission (CONTRIBUTING.md).

mod common;
use common::text;
use polars::prelude::{AnyValue, DataFrame, SerReader};
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// Summary columns that say when and where a run was made, not what it computed.
const NOT_RESULTS: [&str; 6] = [
    "seconds_total",
    "seconds_pretrain",
    "seconds_finetune",
    "git_commit",
    "git_dirty",
    "created_utc",
];

/// One message for what differs of `what` (a committed folder), or `None`.
fn verdict(what: &str, differences: Vec<String>) -> Option<String> {
    if differences.is_empty() {
        return None;
    }
    let n = differences.len();
    let mut shown: Vec<String> = differences.into_iter().take(8).collect();
    if n > 8 {
        shown.push(format!("and {} more", n - 8));
    }
    Some(format!(
        "{what} no longer comes out of the code: regenerate the committed results from a \
         clean tree (`scripts/run-main`, then commit results/) in the same submission, and \
         say so in its message. What differs:\n  {}",
        shown.join("\n  ")
    ))
}

fn ablate_in(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ablate"))
        .current_dir(dir)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    text(&out.stdout)
}

/// A kind of run the guard recomputes: its description and how its config says so.
type Kind = (&'static str, fn(&serde_json::Value) -> bool);

const DSPMDE: Kind = ("a dspmde_fit run", |c| c["method"] == "dspmde_fit");
const SCRATCH: Kind = ("a plain neural run without pre-training", |c| {
    c["method"] == "neural" && c["pretrain"].is_null() && c["model"]["prior"].is_null()
});
const PRETRAINED: Kind = ("a pre-trained neural run", |c| {
    c["method"] == "neural" && !c["pretrain"].is_null()
});
const ANCHORED: Kind = ("a physics-anchored run", |c| {
    c["method"] == "neural" && c["model"]["prior"].is_string()
});

/// The runs to recompute: the first run of replicate 0 of each kind, in plan order.
fn chosen(plan: &serde_json::Value, kinds: &[Kind]) -> Vec<String> {
    let runs = plan["runs"].as_array().unwrap();
    kinds
        .iter()
        .map(|(what, is)| {
            runs.iter()
                .find(|r| r["seed"] == 0 && is(&r["config"]))
                .unwrap_or_else(|| panic!("the plan has no {what}"))["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

fn parquet(path: &Path) -> DataFrame {
    let file = std::fs::File::open(path).unwrap();
    polars::prelude::ParquetReader::new(file).finish().unwrap()
}

/// A cell as text that tells bits apart: a float with its bits, anything else as shown
/// (an integer column may be Int64 or UInt64 depending on which runs a frame holds).
fn cell(df: &DataFrame, column: &str, row: usize) -> String {
    match df.column(column).unwrap().get(row).unwrap() {
        AnyValue::Float64(v) => format!("{v:?} ({:016x})", v.to_bits()),
        other => other.to_string(),
    }
}

fn row_of(df: &DataFrame, id: &str) -> Option<usize> {
    let ids = df.column("run_id").unwrap().str().unwrap();
    ids.iter().position(|v| v == Some(id))
}

/// Recomputes the chosen runs of a committed study; what differs.
fn check_study(manifest: &str, study: &str, kinds: &[Kind]) -> Option<String> {
    let tmp = tempfile::tempdir().unwrap();
    let res = tmp.path().to_str().unwrap();
    let manifest = root().join(manifest);
    let m = manifest.to_str().unwrap();
    ablate_in(tmp.path(), &["plan", m, "--results", res]);
    let study_dir = tmp.path().join(study);
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(study_dir.join("plan.json")).unwrap())
            .unwrap();
    let ids = chosen(&plan, kinds);
    let mut args = vec!["run", m, "--jobs", "1", "--results", res];
    for id in &ids {
        args.extend(["--only", id.as_str()]);
    }
    ablate_in(tmp.path(), &args);
    let collected =
        ionode_report::collect::collect(&study_dir, ionode_study::facts::Caching::ReadOnly)
            .unwrap();
    let roles = ionode_report::roles(&collected);
    let now = ionode_report::summary::frame(&collected, &roles).unwrap();
    let committed = parquet(&root().join("results").join(study).join("summary.parquet"));
    let mut differences = Vec::new();
    for id in &ids {
        let (Some(a), Some(b)) = (row_of(&now, id), row_of(&committed, id)) else {
            differences.push(format!("run {id} is not in the summary"));
            continue;
        };
        for column in now.get_column_names() {
            if NOT_RESULTS.contains(&column.as_str()) {
                continue;
            }
            if committed.column(column).is_err() {
                differences.push(format!("the summary has no column {column}"));
                continue;
            }
            let (x, y) = (cell(&now, column, a), cell(&committed, column, b));
            if x != y {
                differences.push(format!("run {id}, {column}: committed {y}, now {x}"));
            }
        }
    }
    verdict(&format!("results/{study}"), differences)
}

/// Trains a shipped model as `scripts/run-main` does (from a folder that holds the
/// repository's `experiments` and `datasets`, so every recorded path is the same) and
/// compares it with the committed one; what differs.
fn check_model(config: &str, out: &str, work: &Path) -> Option<String> {
    ablate_in(work, &["train", "--config", config, "--out", out]);
    let (now, committed) = (work.join(out), root().join(out));
    let mut problems = Vec::new();
    for file in ["metrics.json", "predictions.csv", "membrane.toml"] {
        let (a, b) = (
            std::fs::read(now.join(file)),
            std::fs::read(committed.join(file)),
        );
        match (a, b) {
            (Err(_), Err(_)) => {}
            (Ok(a), Ok(b)) if a == b => {}
            _ => problems.push(format!("{file} differs")),
        }
    }
    let (a, b) = (now.join("run.h5"), committed.join("run.h5"));
    let (ra, rb) = (
        ionode_study::record::read(&a).unwrap(),
        ionode_study::record::read(&b).unwrap(),
    );
    if format!("{:?}", ra.metrics) != format!("{:?}", rb.metrics) {
        problems.push("run.h5's metrics differ".to_string());
    }
    let config = &ra.head.config;
    let artefact = |p: &Path| {
        format!(
            "{:?}",
            ionode_study::record::read_artefact(p, config).unwrap()
        )
    };
    if artefact(&a) != artefact(&b) {
        problems.push("run.h5's parameters differ".to_string());
    }
    verdict(out, problems)
}

#[test]
fn committed_results_are_what_the_code_produces() {
    // The shipped models' working folder: the repository's experiments and measured data,
    // and the pre-training set made by the script run-main uses.
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    std::fs::create_dir_all(w.join("datasets/sim")).unwrap();
    std::os::unix::fs::symlink(root().join("experiments"), w.join("experiments")).unwrap();
    std::os::unix::fs::symlink(
        root().join("datasets/measured"),
        w.join("datasets/measured"),
    )
    .unwrap();
    let made = Command::new(root().join("scripts/pretrain-data"))
        .arg(w.join("datasets/sim/nf270_fdl2021_pretrain.h5"))
        .arg(env!("CARGO_BIN_EXE_ablate"))
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made.stderr));

    let verdicts: Vec<Option<String>> = std::thread::scope(|s| {
        let studies = s.spawn(|| {
            let kinds = [DSPMDE, SCRATCH, PRETRAINED];
            [
                check_study("experiments/paper.toml", "paper", &kinds),
                check_study("experiments/nf270_fdl2021.toml", "nf270_fdl2021", &kinds),
                // Nested folds: a dspmde_fit and an anchored run cover the new paths.
                check_study(
                    "experiments/nf270_transfer.toml",
                    "nf270_transfer",
                    &[DSPMDE, ANCHORED],
                ),
                // An ensemble (five bootstrap members, nested, conformal intervals).
                check_study(
                    "experiments/nf270_intervals.toml",
                    "nf270_intervals",
                    &[DSPMDE],
                ),
            ]
        });
        let mut v = vec![
            check_model(
                "experiments/nf270_fdl2021_final.toml",
                "results/nf270_fdl2021_final",
                w,
            ),
            check_model(
                "experiments/nf270_fdl2021_dspmde.toml",
                "results/nf270_fdl2021_dspmde",
                w,
            ),
        ];
        v.extend(studies.join().unwrap());
        v
    });
    let problems: Vec<String> = verdicts.into_iter().flatten().collect();
    assert!(problems.is_empty(), "\n{}", problems.join("\n\n"));
}
