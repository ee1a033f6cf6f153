//! End-to-end tests of the study commands (`check`, `plan`, `run`, `status`, `slurm`) on
//! `experiments/smoke.toml` and small manifests that include it: located manifest errors,
//! resume after SIGKILL, shards, thread-count independence, status counts, the Slurm script.

mod common;
use common::{ablate, marked, plan_ids, text};
use hdf5_metno as hdf5;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn smoke() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../experiments/smoke.toml")
        .canonicalize()
        .expect("experiments/smoke.toml exists")
}

/// A manifest in `dir` that includes smoke.toml and adds `extra`.
fn manifest(dir: &Path, name: &str, extra: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let body = format!("include = [\"{}\"]\n{extra}", smoke().display());
    std::fs::write(&path, body).unwrap();
    path
}

fn run_ok(args: &[&str]) -> String {
    let r = ablate(args);
    assert!(r.status.success(), "{args:?}: {}", text(&r.stderr));
    text(&r.stderr)
}

/// What is compared between two sweeps: the metrics JSON and every prediction column,
/// bit for bit.
#[derive(Debug, PartialEq)]
struct RunResult {
    /// The metrics' Debug text (floats print shortest round-trip: equal text, equal bits).
    metrics: String,
    columns: BTreeMap<String, Vec<u64>>,
    strings: BTreeMap<String, Vec<String>>,
}

fn read_run(path: &Path) -> RunResult {
    let record = ionode_study::record::read(path).unwrap();
    let f = ionode_study::h5::open(path).unwrap();
    let p = f.group("predictions").unwrap();
    let mut columns = BTreeMap::new();
    for name in [
        "jv_m_s",
        "feed_mol_m3",
        "target_permeate_mol_m3",
        "predicted_permeate_mol_m3",
        "target_rejection",
        "predicted_rejection",
    ] {
        let v: Vec<f64> = p.dataset(name).unwrap().read_raw().unwrap();
        columns.insert(name.to_string(), v.iter().map(|x| x.to_bits()).collect());
    }
    let rows: Vec<u64> = p.dataset("row").unwrap().read_raw().unwrap();
    columns.insert("row".into(), rows);
    let mut strings = BTreeMap::new();
    for name in ["part", "family", "ion"] {
        let v: Vec<hdf5::types::VarLenUnicode> = p.dataset(name).unwrap().read_raw().unwrap();
        strings.insert(
            name.to_string(),
            v.iter().map(|s| s.as_str().to_string()).collect(),
        );
    }
    RunResult {
        metrics: format!("{:?}", record.metrics),
        columns,
        strings,
    }
}

/// Every run of a finished study, by id.
fn results(study_dir: &Path) -> BTreeMap<String, RunResult> {
    plan_ids(study_dir)
        .into_iter()
        .map(|id| {
            let dir = study_dir.join("runs").join(&id);
            assert!(dir.join("DONE").exists(), "run {id} is not DONE");
            let r = read_run(&dir.join("run.h5"));
            (id, r)
        })
        .collect()
}

/// `N runs done, F failed now; A were done before` of a sweep's last line.
fn counts(stderr: &str) -> (usize, usize, usize) {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.contains("runs done"))
        .unwrap();
    let num = |after: &str| -> usize {
        let i = line.find(after).unwrap();
        line[..i]
            .split_whitespace()
            .last()
            .unwrap()
            .trim_start_matches(':')
            .parse()
            .unwrap()
    };
    (
        num(" runs done"),
        num(" failed now"),
        num(" were done before"),
    )
}

#[test]
fn bad_manifests_are_located_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "unknown",
            "[base.model]\nhiden = 8\n",
            "3:1: unknown key 'base.model.hiden' (did you mean 'base.model.hidden'?)",
        ),
        (
            "unknown_top",
            "seedz = 3\n",
            "2:1: unknown key 'seedz' (did you mean 'seed'?)",
        ),
        (
            "wrong_type",
            "[base.finetune]\nepochs = \"many\"\n",
            "3:1: base.finetune.epochs: invalid type: string \"many\", expected usize",
        ),
        (
            "bad_variant",
            "[grid]\n\"model.variant\" = [\"node\", \"transformer\"]\n",
            "3:28: grid.\"model.variant\"[1]: unknown variant `transformer`, expected one of `attention_node`, `node`, `mlp`",
        ),
        (
            "out_of_range",
            "[grid]\n\"split.n_train\" = [0, 10]\n",
            "3:20: grid.\"split.n_train\"[0] = 0: expected at least 1",
        ),
        (
            "fraction",
            "[base.split]\ntest_fraction = 1.5\n",
            "3:1: base.split.test_fraction = 1.5: expected a fraction in [0, 1)",
        ),
        (
            "schedule",
            "[base.finetune]\nschedule = { kind = \"cosine\", final_fraction = 2.0 }\n",
            "3:31: base.finetune.schedule.final_fraction = 2: expected a number in [0, 1]",
        ),
        // Counts are bounded before anything is allocated for them.
        (
            "seeds_huge",
            "seeds = 100000000000\n",
            "2:1: seeds: 100000000000 is out of range (expected a count in 1..=10000 or a list of seeds)",
        ),
        (
            "random_huge",
            "[random]\nsamples = 100000000000\n\"finetune.learning_rate\" = { dist = \"log_uniform\", min = 1e-4, max = 1e-2 }\n",
            "3:1: random.samples: expected a count in 1..=100000, found 100000000000",
        ),
        (
            "hidden_huge",
            "[base.model]\nhidden = 1000000000\n",
            "3:1: base.model.hidden: 1000000000 is not in 1..=4096",
        ),
        (
            "batch_huge",
            "[grid]\n\"finetune.batch_size\" = [16, 1000000000]\n",
            "3:30: grid.\"finetune.batch_size\"[1] = 1000000000: expected a count in 1..=8192",
        ),
        // Every float is checked for finiteness and range.
        (
            "clip",
            "[base.finetune]\nclip_norm = -inf\n",
            "3:1: base.finetune.clip_norm = -inf: expected a finite number > 0",
        ),
        (
            "nan_axis",
            "[grid]\n\"finetune.learning_rate\" = [1e-3, nan]\n",
            "3:35: grid.\"finetune.learning_rate\"[1] = NaN: expected a finite number > 0",
        ),
    ];
    for (name, extra, expected) in cases {
        let path = manifest(dir.path(), name, extra);
        let r = ablate(&["check", path.to_str().unwrap()]);
        assert_eq!(r.status.code(), Some(2), "{name}: {}", text(&r.stderr));
        let want = format!(
            "{}:{expected}\nerror: manifest '{}': 1 problem\n",
            path.display(),
            path.display()
        );
        assert_eq!(text(&r.stderr), want, "{name}");
    }
    // Every problem of a file in one pass, not one at a time.
    let path = manifest(
        dir.path(),
        "several",
        "seedz = 3\n[base.finetune]\nbatch_size = 0\nclip_norm = -1.0\n[base.pretrain]\nepochz = 2\n",
    );
    let r = ablate(&["check", path.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(2));
    let p = path.display();
    assert_eq!(
        text(&r.stderr),
        format!(
            "{p}:2:1: unknown key 'seedz' (did you mean 'seed'?)\n\
             {p}:7:1: unknown key 'base.pretrain.epochz' (did you mean 'base.pretrain.epochs'?)\n\
             {p}:4:1: base.finetune.batch_size = 0: expected a count in 1..=8192\n\
             {p}:5:1: base.finetune.clip_norm = -1: expected a finite number > 0\n\
             error: manifest '{p}': 4 problems\n"
        )
    );
    // A test family the data does not have is found before anything runs.
    let path = dir.path().join("family.toml");
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/exp/nf270_mixtures.csv");
    std::fs::write(
        &path,
        format!(
            "study = \"f\"\n[datasets]\nmeasured = [\"{}\"]\n[base]\nmethod = \"dspmde_fit\"\n\
             [base.split]\nkind = \"by_family\"\ntest_family = \"seawater\"\nvalidation_fraction = 0.1\n",
            data.display()
        ),
    )
    .unwrap();
    let r = ablate(&["check", path.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(2));
    assert_eq!(
        text(&r.stderr).lines().next().unwrap(),
        format!(
            "{}:8:1: base.split.test_family = \"seawater\": not a family of the data; the families are \
             NaCl+Na2SO4, NaCl+MgCl2, NaCl+MgSO4, NaCl+MgSO4+CaCl2, KCl+Na2SO4+MgCl2",
            path.display()
        )
    );
    // A study too large to plan is refused before it is expanded.
    let path = manifest(dir.path(), "too_many", "seeds = 10000\n");
    let r = ablate(&["check", path.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(2));
    assert!(
        text(&r.stderr).starts_with(&format!(
            "{}: the study has 1080000 runs (2 x \"method\", 3 x \"model.electroneutrality\", 3 x \"model.variant\", 2 x \"pretrain\", 3 x \"split.n_train\" grid, 1 random point(s), 10000 seed(s)), more than the most, 100000\n",
            path.display()
        )),
        "{}",
        text(&r.stderr)
    );
    // An include cycle is named as one, with the include lines that close it.
    let (a, b) = (dir.path().join("cyc_a.toml"), dir.path().join("cyc_b.toml"));
    std::fs::write(&a, "include = [\"cyc_b.toml\"]\nstudy = \"x\"\n").unwrap();
    std::fs::write(&b, "# b\ninclude = [\"cyc_a.toml\"]\n").unwrap();
    let r = ablate(&["check", a.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(2));
    let (a, b) = (a.display(), b.display());
    assert_eq!(
        text(&r.stderr).lines().next().unwrap(),
        format!("{b}:2:12: include cycle: '{a}' includes '{b}' at {a}:1:12, '{b}' includes '{a}' at {b}:2:12")
    );
    // A missing dataset file is named, relative paths resolved from the manifest's folder.
    let path = manifest(
        dir.path(),
        "missing",
        "[datasets]\nmeasured = [\"nope.csv\"]\n",
    );
    let r = ablate(&["check", path.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(2));
    assert_eq!(
        text(&r.stderr).lines().next().unwrap(),
        format!(
            "{}:3:13: datasets.measured[0]: data file '{}' not found",
            path.display(),
            dir.path().join("nope.csv").display()
        )
    );
    // And a good one says how many runs it makes (dspmde_fit ignores the model axes).
    let r = ablate(&["check", smoke().to_str().unwrap()]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert!(
        text(&r.stdout).contains("study 'smoke' is valid: 285 runs (dspmde_fit, neural)"),
        "{}",
        text(&r.stdout)
    );
}

#[test]
fn the_plan_is_written_once_with_content_ids() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let m = manifest(dir.path(), "p", "study = \"planned\"\nseeds = [3, 4]\n");
    let args = |force: bool| {
        let mut a = vec![
            "plan".to_string(),
            m.display().to_string(),
            "--results".into(),
            results.display().to_string(),
        ];
        if force {
            a.push("--force".into());
        }
        a
    };
    let r = ablate(&args(false).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(r.status.success(), "{}", text(&r.stderr));
    let ids = plan_ids(&results.join("planned"));
    assert_eq!(ids.len(), 3 * 2 * 3 * 3 * 2 + 3 * 2);
    assert!(ids
        .iter()
        .all(|id| id.len() == 16 && id.chars().all(|c| c.is_ascii_hexdigit())));
    let unique: std::collections::BTreeSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len());
    // The same plan again is fine; a different one needs --force.
    let again = ablate(&args(false).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(again.status.success());
    std::fs::write(
        &m,
        std::fs::read_to_string(&m)
            .unwrap()
            .replace("[3, 4]", "[3, 5]"),
    )
    .unwrap();
    let r = ablate(&args(false).iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(r.status.code(), Some(2));
    assert!(text(&r.stderr).contains("--force"), "{}", text(&r.stderr));
    let r = ablate(&args(true).iter().map(String::as_str).collect::<Vec<_>>());
    assert!(r.status.success(), "{}", text(&r.stderr));
    let new_ids = plan_ids(&results.join("planned"));
    // Seed 3's runs keep their ids: a run id is its config and seed, not its position.
    assert_eq!(
        ids.iter().filter(|id| new_ids.contains(id)).count(),
        ids.len() / 2
    );
}

#[test]
fn a_killed_sweep_resumes_to_the_results_of_an_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let file = smoke();
    let file = file.to_str().unwrap();
    let whole = run_ok(&["run", file, "--jobs", "2", "--results", a.to_str().unwrap()]);
    let total = plan_ids(&a.join("smoke")).len();
    assert_eq!(counts(&whole), (total, 0, 0));

    let mut child = Command::new(env!("CARGO_BIN_EXE_ablate"))
        .args(["run", file, "--jobs", "2", "--results", b.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let runs = b.join("smoke").join("runs");
    let start = Instant::now();
    loop {
        let any_done = std::fs::read_dir(&runs)
            .map(|d| d.flatten().any(|e| e.path().join("DONE").exists()))
            .unwrap_or(false);
        if any_done {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "no run finished");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let done_before = std::fs::read_dir(&runs)
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("DONE").exists())
        .count();
    assert!(done_before >= 1 && done_before < total, "{done_before}");

    let rest = run_ok(&["run", file, "--jobs", "2", "--results", b.to_str().unwrap()]);
    let (now, failed, before) = counts(&rest);
    assert_eq!(failed, 0);
    assert_eq!(before, done_before, "DONE runs are skipped");
    assert_eq!(now + before, total, "every run ran exactly once");
    assert_eq!(results(&a.join("smoke")), results(&b.join("smoke")));

    // A third run has nothing to do.
    let again = run_ok(&["run", file, "--jobs", "2", "--results", b.to_str().unwrap()]);
    assert_eq!(counts(&again), (0, 0, total));
}

#[test]
fn shards_cover_every_run_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let m = manifest(dir.path(), "s", "study = \"sharded\"\nseeds = 1\n");
    let mut ran = 0;
    for i in 0..3 {
        let shard = format!("{i}/3");
        let err = run_ok(&[
            "run",
            m.to_str().unwrap(),
            "--shard",
            &shard,
            "--jobs",
            "2",
            "--results",
            results.to_str().unwrap(),
        ]);
        let (now, failed, before) = counts(&err);
        assert_eq!((failed, before), (0, 0), "shard {shard}");
        ran += now;
    }
    let ids = plan_ids(&results.join("sharded"));
    assert_eq!(ran, ids.len());
    for id in &ids {
        assert!(results.join("sharded/runs").join(id).join("DONE").exists());
    }
}

#[test]
fn results_do_not_depend_on_the_number_of_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(dir.path(), "j", "study = \"jobs\"\nseeds = 2\n");
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    for (jobs, out) in [("1", &one), ("2", &two)] {
        run_ok(&[
            "run",
            m.to_str().unwrap(),
            "--jobs",
            jobs,
            "--results",
            out.to_str().unwrap(),
        ]);
    }
    let (a, b) = (results(&one.join("jobs")), results(&two.join("jobs")));
    assert_eq!(a.len(), 3 * 2 * 3 * 3 * 2 + 3 * 2);
    assert_eq!(a, b);

    // The run.h5 layout the report reads, on one attention_node run.
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(one.join("jobs/plan.json")).unwrap())
            .unwrap();
    let run = plan["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["axes"]["model.variant"] == "attention_node")
        .unwrap();
    let id = run["id"].as_str().unwrap();
    let path = one.join("jobs/runs").join(id).join("run.h5");
    let f = ionode_study::h5::open(&path).unwrap();
    for name in [
        "run_id",
        "study",
        "manifest",
        "manifest_hash",
        "git_commit",
        "host",
        "ionode_version",
        "created_utc",
        "command_line",
        "config_json",
        "axes_json",
        "inputs_json",
        "method",
        "params_json",
    ] {
        let v: hdf5::types::VarLenUnicode = f.attr(name).unwrap().read_scalar().unwrap();
        assert!(!v.as_str().is_empty(), "{name}");
    }
    // Booleans and integers are HDF5 booleans and integers, not text.
    let synthetic: bool = f.attr("synthetic").unwrap().read_scalar().unwrap();
    assert!(synthetic);
    let idx: u64 = f.attr("plan_index").unwrap().read_scalar().unwrap();
    assert_eq!(idx, run["index"].as_u64().unwrap());
    let total: f64 = f.attr("seconds_total").unwrap().read_scalar().unwrap();
    assert!(total > 0.0);
    // The config as flat typed attributes.
    let config = f.group("config").unwrap();
    let variant: hdf5::types::VarLenUnicode =
        config.attr("model.variant").unwrap().read_scalar().unwrap();
    assert_eq!(variant.as_str(), "attention_node");
    let epochs: u64 = config
        .attr("finetune.epochs")
        .unwrap()
        .read_scalar()
        .unwrap();
    assert!(epochs > 0);
    let lr: f64 = config
        .attr("finetune.learning_rate")
        .unwrap()
        .read_scalar()
        .unwrap();
    assert!(lr > 0.0);
    // Metrics as numbers.
    let mae: f64 = f
        .group("metrics/measured/test")
        .unwrap()
        .attr("mae")
        .unwrap()
        .read_scalar()
        .unwrap();
    let record = ionode_study::record::read(&path).unwrap();
    let test = record.metrics.measured.unwrap().test.unwrap();
    assert_eq!(test.mae, Some(mae));
    assert_eq!(record.head.provenance.plan_index, Some(idx));
    assert_eq!(
        record.head.config.model.variant,
        ionode_model::Variant::AttentionNode
    );
    let stopped: bool = f
        .group("curves/finetune")
        .unwrap()
        .attr("stopped_early")
        .unwrap()
        .read_scalar()
        .unwrap();
    assert_eq!(stopped, record.curves.last().unwrap().stopped_early);
    let rows: Vec<u64> = f.dataset("attention/rows").unwrap().read_raw().unwrap();
    let end = f.dataset("attention/end").unwrap().shape();
    assert_eq!(end, vec![rows.len(), 7, 7]);
    assert_eq!(f.dataset("attention/mean").unwrap().shape(), end);
    let n = f.dataset("predictions/ion").unwrap().shape();
    assert_eq!(
        f.dataset("predictions/predicted_rejection")
            .unwrap()
            .shape(),
        n
    );
    let train: Vec<f64> = f
        .dataset("curves/finetune/train_loss")
        .unwrap()
        .read_raw()
        .unwrap();
    assert!(!train.is_empty());
}

#[test]
fn status_counts_done_failed_and_missing_runs() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let m = manifest(
        dir.path(),
        "st",
        "study = \"status\"\nseeds = 1\n[grid]\n\"method\" = [\"neural\"]\n\"model.variant\" = [\"mlp\"]\n\"model.electroneutrality\" = [{ kind = \"hard\" }]\n\"pretrain\" = [false]\n",
    );
    run_ok(&[
        "run",
        m.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
    ]);
    let study = results.join("status");
    let ids = plan_ids(&study);
    assert_eq!(ids.len(), 3);
    // One run failed, one was never run.
    let failed = study.join("runs").join(&ids[0]);
    std::fs::remove_file(failed.join("DONE")).unwrap();
    std::fs::write(failed.join("FAILED"), "fine-tuning diverged\nmore\n").unwrap();
    std::fs::remove_dir_all(study.join("runs").join(&ids[1])).unwrap();
    for target in [study.clone(), m.clone()] {
        let r = ablate(&[
            "status",
            target.to_str().unwrap(),
            "--results",
            results.to_str().unwrap(),
        ]);
        assert!(r.status.success(), "{}", text(&r.stderr));
        assert_eq!(
            text(&r.stdout),
            format!(
                "study 'status': 3 runs: 1 done, 1 failed, 0 damaged, 1 missing\nfailed {}: fine-tuning diverged\n",
                ids[0]
            )
        );
    }
    // A rerun does the missing run only; --retry-failed does the failed one too.
    let r = ablate(&[
        "run",
        m.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
    ]);
    assert!(r.status.success());
    assert_eq!(counts(&text(&r.stderr)), (1, 0, 1));
    let r = run_ok(&[
        "run",
        m.to_str().unwrap(),
        "--retry-failed",
        "--results",
        results.to_str().unwrap(),
    ]);
    assert_eq!(counts(&r), (1, 0, 2));
    assert!(!failed.join("FAILED").exists());
}

#[test]
fn the_slurm_script_runs_one_shard_per_array_task_with_this_binary() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let file = smoke();
    let r = ablate(&[
        "slurm",
        file.to_str().unwrap(),
        "--set",
        "seeds=2",
        "--shards",
        "4",
        "--partition",
        "short",
        "--time",
        "01:00:00",
        "--cpus",
        "2",
        "--mem",
        "4G",
        "--account",
        "lab",
        "--qos",
        "normal",
        "--throttle",
        "2",
        "--sbatch-arg=--constraint=zen4",
        "--results",
        results.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    let study = std::fs::read_dir(&results)
        .unwrap()
        .map(|e| e.unwrap().path())
        .next()
        .unwrap();
    let name = study.file_name().unwrap().to_str().unwrap().to_string();
    assert!(name.starts_with("smoke-set-"), "{name}");
    let script = std::fs::read_to_string(study.join("slurm.sbatch")).unwrap();
    assert!(script.starts_with("#!/bin/bash\n"));
    let cwd = std::env::current_dir().unwrap();
    let exe = Path::new(env!("CARGO_BIN_EXE_ablate"))
        .canonicalize()
        .unwrap();
    for line in [
        format!("#SBATCH --job-name=ablate-{name}"),
        "#SBATCH --array=0-3%2".into(),
        "#SBATCH --cpus-per-task=2".into(),
        "#SBATCH --partition=short".into(),
        "#SBATCH --time=01:00:00".into(),
        "#SBATCH --mem=4G".into(),
        "#SBATCH --account=lab".into(),
        "#SBATCH --qos=normal".into(),
        "#SBATCH --constraint=zen4".into(),
        format!("#SBATCH --chdir={}", cwd.display()),
        format!("#SBATCH --output={}/slurm/%A_%a.out", study.display()),
        format!("ablate={}", exe.display()),
        "if [ -n \"${ABLATE:-}\" ]; then ablate=\"$ABLATE\"; fi".into(),
        format!(
            "exec \"$ablate\" run {} --set seeds=2 --results {} --shard \"${{SLURM_ARRAY_TASK_ID}}/4\" --jobs 2",
            file.display(),
            results.display()
        ),
    ] {
        assert!(script.lines().any(|l| l == line), "{line} in\n{script}");
    }
    // The report job runs the same binary on the study.
    let report = std::fs::read_to_string(study.join("report.sbatch")).unwrap();
    for line in [
        format!("#SBATCH --chdir={}", cwd.display()),
        format!("#SBATCH --output={}/slurm/report_%j.out", study.display()),
        format!("exec \"$ablate\" report {}", study.display()),
    ] {
        assert!(report.lines().any(|l| l == line), "{line} in\n{report}");
    }
    // The plan is written before any task starts (tasks only read it), with the overrides.
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(study.join("plan.json")).unwrap()).unwrap();
    assert_eq!(plan["overrides"], serde_json::json!(["seeds=2"]));
    // A bad option is refused before anything is written.
    let r = ablate(&[
        "slurm",
        file.to_str().unwrap(),
        "--shards",
        "2",
        "--sbatch-arg",
        "zen4",
    ]);
    assert_eq!(r.status.code(), Some(2));
    assert!(
        text(&r.stderr).contains("--sbatch-arg 'zen4'"),
        "{}",
        text(&r.stderr)
    );
}

#[test]
fn overrides_change_the_plan_are_recorded_and_errors_name_the_argument() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    let file = smoke();
    let f = file.to_str().unwrap();
    let res = results.to_str().unwrap();
    // Applied: two seeds of node only, 5 fine-tuning epochs, own study folder.
    let sets = [
        "--set",
        "seeds=2",
        "--set",
        "grid.\"model.variant\"=[\"node\"]",
        "--set",
        "grid.method=[\"neural\"]",
        "--set",
        "base.finetune.epochs=5",
    ];
    let mut args = vec!["plan", f, "--results", res];
    args.extend(sets);
    run_ok(&args);
    let study = std::fs::read_dir(&results)
        .unwrap()
        .map(|e| e.unwrap().path())
        .next()
        .unwrap();
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(study.join("plan.json")).unwrap()).unwrap();
    let runs = plan["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 3 * 2 * 3 * 2, "EN x pretrain x n_train x seeds");
    assert!(runs.iter().all(
        |r| r["config"]["model"]["variant"] == "node" && r["config"]["finetune"]["epochs"] == 5
    ));
    assert_eq!(plan["overrides"].as_array().unwrap().len(), 4);
    assert_ne!(study.file_name().unwrap(), "smoke");
    // The un-overridden study is elsewhere and its plan has no overrides.
    run_ok(&["plan", f, "--results", res]);
    let plain = std::fs::read_to_string(results.join("smoke/plan.json")).unwrap();
    assert!(!plain.contains("\"overrides\""));
    // `--set study=NAME` names the study.
    run_ok(&["check", f, "--set", "study=mine", "--set", "seeds=1"]);
    // Recorded: a run's provenance holds them.
    let one = ["--set", "seeds=1", "--set", "grid.method=[\"dspmde_fit\"]"];
    let mut args = vec!["run", f, "--jobs", "2", "--results", res];
    args.extend(one);
    run_ok(&args);
    let hash = std::fs::read_dir(&results)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            std::fs::read_to_string(p.join("plan.json"))
                .is_ok_and(|t| t.contains("dspmde_fit\\\"]"))
        })
        .unwrap();
    let run = std::fs::read_dir(hash.join("runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let record = ionode_study::record::read(&run.join("run.h5")).unwrap();
    assert_eq!(
        record.head.provenance.overrides,
        vec![
            "seeds=1".to_string(),
            "grid.method=[\"dspmde_fit\"]".to_string()
        ]
    );
    // Located errors: the argument, the key and what is valid.
    let r = ablate(&["check", f, "--set", "base.finetune.epochs=0"]);
    assert_eq!(r.status.code(), Some(2));
    let err = text(&r.stderr);
    assert!(
        err.contains("--set 'base.finetune.epochs=0':1:15: base.finetune.epochs = 0: expected a count in 1..="),
        "{err}"
    );
    let r = ablate(&[
        "check",
        f,
        "--set",
        "base.finetun.epochs=3",
        "--set",
        "grid.x=[1,",
    ]);
    let err = text(&r.stderr);
    assert!(err.contains("--set 'grid.x=[1,':1:"), "{err}");
    let r = ablate(&["check", f, "--set", "base.finetun.epochs=3"]);
    let err = text(&r.stderr);
    assert!(
        err.contains("--set 'base.finetun.epochs=3':1:6:") && err.contains("did you mean"),
        "{err}"
    );
}

#[test]
fn random_axes_are_drawn_from_the_manifest_seed() {
    let dir = tempfile::tempdir().unwrap();
    let random = "seeds = 1\n[grid]\n\"method\" = [\"neural\"]\n\"model.variant\" = [\"mlp\"]\n\
                  \"model.electroneutrality\" = [{ kind = \"hard\" }]\n\"pretrain\" = [false]\n\
                  \"split.n_train\" = [40]\n[random]\nsamples = 4\n\
                  \"finetune.learning_rate\" = { dist = \"log_uniform\", min = 1e-4, max = 1e-2 }\n\
                  \"model.hidden\" = { dist = \"int_uniform\", min = 4, max = 16 }\n";
    let plan = |name: &str, seed: u64| -> Vec<(f64, u64)> {
        let m = manifest(
            dir.path(),
            name,
            &format!("study = \"{name}\"\nseed = {seed}\n{random}"),
        );
        let results = dir.path().join("results");
        run_ok(&[
            "plan",
            m.to_str().unwrap(),
            "--results",
            results.to_str().unwrap(),
        ]);
        let plan: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(results.join(name).join("plan.json")).unwrap(),
        )
        .unwrap();
        plan["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let a = &r["axes"];
                (
                    a["finetune.learning_rate"].as_f64().unwrap(),
                    a["model.hidden"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let (a, b, c) = (plan("ra", 1), plan("rb", 1), plan("rc", 2));
    assert_eq!(a.len(), 4);
    assert_eq!(a, b, "the same manifest seed draws the same points");
    assert_ne!(a, c);
    for (lr, hidden) in a.iter().chain(&c) {
        assert!(
            (1e-4..=1e-2).contains(lr) && (4..=16).contains(hidden),
            "{lr} {hidden}"
        );
    }
    // A bad distribution is located like any other key.
    let m = manifest(
        dir.path(),
        "rbad",
        "[random]\nsamples = 2\n\"model.hidden\" = { dist = \"gauss\", min = 1, max = 2 }\n",
    );
    let r = ablate(&["check", m.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(2));
    assert_eq!(
        text(&r.stderr).lines().next().unwrap(),
        format!(
            "{}:4:20: random.\"model.hidden\".dist: unknown variant `gauss`, expected one of `uniform`, `log_uniform`, `int_uniform`, `choice`",
            m.display()
        )
    );
}

#[test]
fn two_sweeps_of_one_study_at_once_run_every_run_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let (reference, shared) = (dir.path().join("ref"), dir.path().join("shared"));
    let file = smoke();
    let file = file.to_str().unwrap();
    run_ok(&[
        "run",
        file,
        "--jobs",
        "2",
        "--results",
        reference.to_str().unwrap(),
    ]);
    let start = || {
        Command::new(env!("CARGO_BIN_EXE_ablate"))
            .args([
                "run",
                file,
                "--jobs",
                "1",
                "--results",
                shared.to_str().unwrap(),
            ])
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (start(), start());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    for r in [&a, &b] {
        assert!(r.status.success(), "{}", text(&r.stderr));
    }
    let total = plan_ids(&shared.join("smoke")).len();
    let (da, fa, _) = counts(&text(&a.stderr));
    let (db, fb, _) = counts(&text(&b.stderr));
    assert_eq!((fa, fb), (0, 0));
    assert_eq!(
        da + db,
        total,
        "each run ran in exactly one of the two processes"
    );
    assert!(da > 0 && db > 0, "both did part of the work: {da} + {db}");
    assert!(marked(&shared.join("smoke"), "FAILED").is_empty());
    let claims: Vec<_> = plan_ids(&shared.join("smoke"))
        .into_iter()
        .flat_map(|id| std::fs::read_dir(shared.join("smoke/runs").join(id)).unwrap())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("CLAIM"))
        .collect();
    assert!(claims.is_empty(), "claims are released: {claims:?}");
    assert_eq!(
        results(&reference.join("smoke")),
        results(&shared.join("smoke"))
    );
}

#[test]
fn damaged_run_files_are_found_listed_skipped_and_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let results_dir = dir.path().join("results");
    let rd = results_dir.to_str().unwrap();
    let m = manifest(
        dir.path(),
        "dmg",
        "study = \"damaged\"\nseeds = 1\n[grid]\n\"method\" = [\"neural\"]\n\"model.variant\" = [\"mlp\"]\n\"model.electroneutrality\" = [{ kind = \"hard\" }]\n\"pretrain\" = [false]\n",
    );
    let m = m.to_str().unwrap();
    run_ok(&["run", m, "--results", rd]);
    let study = results_dir.join("damaged");
    let before = results(&study);
    let ids = plan_ids(&study);
    assert_eq!(ids.len(), 3);
    // One file truncated, one stored digit of the config changed by hand.
    let truncated = study.join("runs").join(&ids[0]).join("run.h5");
    let bytes = std::fs::read(&truncated).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let edited = study.join("runs").join(&ids[1]).join("run.h5");
    let mut bytes = std::fs::read(&edited).unwrap();
    let at = bytes
        .windows(9)
        .position(|w| w == b"\"epochs\":")
        .expect("the config is stored as JSON text");
    let digit = bytes[at + 9..]
        .iter()
        .position(|b| b.is_ascii_digit())
        .unwrap()
        + at
        + 9;
    bytes[digit] = if bytes[digit] == b'9' {
        b'8'
    } else {
        bytes[digit] + 1
    };
    std::fs::write(&edited, &bytes).unwrap();

    let r = ablate(&["status", study.to_str().unwrap()]);
    let out = text(&r.stdout);
    assert!(
        out.starts_with("study 'damaged': 3 runs: 1 done, 0 failed, 2 damaged, 0 missing\n"),
        "{out}"
    );
    assert!(out.contains(&format!("damaged {}: ", ids[0])), "{out}");
    assert!(
        out.contains(&format!("damaged {}: run.h5 has checksum", ids[1])),
        "{out}"
    );

    // The report leaves them out and names them.
    let r = ablate(&["report", study.to_str().unwrap()]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    let out = text(&r.stdout);
    assert!(out.starts_with("1 finished run(s)"), "{out}");
    for id in &ids[..2] {
        assert!(
            out.contains(&format!("skipped damaged run {id}: ")),
            "{out}"
        );
    }
    let csv = std::fs::read_to_string(study.join("summary.csv")).unwrap();
    assert_eq!(csv.lines().count(), 2, "{csv}");

    // `run` reruns exactly the two damaged runs, back to the same results.
    let err = run_ok(&["run", m, "--results", rd]);
    assert_eq!(counts(&err), (2, 0, 1), "{err}");
    assert_eq!(err.matches("is damaged").count(), 2, "{err}");
    assert_eq!(results(&study), before);
}

#[test]
fn diverged_runs_fail_with_stage_epoch_and_loss() {
    let dir = tempfile::tempdir().unwrap();
    let results_dir = dir.path().join("results");
    let m = manifest(
        dir.path(),
        "lr",
        "study = \"lr\"\nseeds = 1\n[grid]\n\"method\" = [\"neural\"]\n\"model.variant\" = [\"attention_node\", \"mlp\"]\n\
         \"model.electroneutrality\" = [{ kind = \"hard\" }]\n\"pretrain\" = [false]\n\"split.n_train\" = [40]\n\
         \"finetune.learning_rate\" = [1e-3, 10.0, 1e3, 1e8]\n",
    );
    let r = ablate(&[
        "run",
        m.to_str().unwrap(),
        "--results",
        results_dir.to_str().unwrap(),
    ]);
    assert_eq!(
        r.status.code(),
        Some(1),
        "a failed run is not the user's input"
    );
    let study = results_dir.join("lr");
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(study.join("plan.json")).unwrap()).unwrap();
    for run in plan["runs"].as_array().unwrap() {
        let id = run["id"].as_str().unwrap();
        let lr = run["axes"]["finetune.learning_rate"].as_f64().unwrap();
        let dir = study.join("runs").join(id);
        if lr <= 1e-3 {
            assert!(dir.join("DONE").exists(), "lr {lr}");
            continue;
        }
        let failed = std::fs::read_to_string(dir.join("FAILED"))
            .unwrap_or_else(|_| panic!("lr {lr} must fail"));
        assert!(!dir.join("run.h5").exists() && !dir.join("DONE").exists());
        assert!(
            failed.starts_with("finetune diverged at epoch "),
            "lr {lr}: {failed}"
        );
        assert!(failed.contains("(loss "), "lr {lr}: {failed}");
    }
}

#[test]
fn a_sweep_logs_one_line_per_finished_run_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let results_dir = dir.path().join("results");
    let m = manifest(
        dir.path(),
        "log",
        "study = \"log\"\nseeds = 1\n[grid]\n\"method\" = [\"neural\", \"dspmde_fit\"]\n\"model.variant\" = [\"mlp\"]\n\"model.electroneutrality\" = [{ kind = \"hard\" }]\n\"pretrain\" = [false]\n\"split.n_train\" = [10]\n",
    );
    let err = run_ok(&[
        "run",
        m.to_str().unwrap(),
        "--results",
        results_dir.to_str().unwrap(),
    ]);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(lines.len(), 2, "{err}");
    for (k, line) in lines.iter().enumerate() {
        assert!(line.starts_with(&format!("[{}/2] run ", k + 1)), "{line}");
        assert!(
            line.contains(" done in ") && line.contains(", ETA "),
            "{line}"
        );
    }
    assert!(
        lines[1].contains("2 done, 0 failed, 0 remaining"),
        "{}",
        lines[1]
    );
}

/// Runs that agree on everything pre-training depends on share one pre-training within a
/// process; the results are the same bits as when each run pre-trains on its own (one
/// shard per run).
#[test]
fn shared_pretraining_gives_the_same_bits_as_pretraining_alone() {
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(
        dir.path(),
        "share",
        "study = \"share\"\nseeds = 1\n[grid]\n\"method\" = [\"neural\"]\n\"model.variant\" = [\"attention_node\"]\n\
         \"model.electroneutrality\" = [{ kind = \"hard\" }]\n\"pretrain\" = [{ epochs = 2, batch_size = 32 }]\n\
         \"split.n_train\" = [10, 40, 120]\n",
    );
    let m = m.to_str().unwrap();
    let (together, apart) = (dir.path().join("together"), dir.path().join("apart"));
    run_ok(&[
        "run",
        m,
        "--jobs",
        "2",
        "--results",
        together.to_str().unwrap(),
    ]);
    for i in 0..3 {
        let shard = format!("{i}/3");
        run_ok(&[
            "run",
            m,
            "--shard",
            &shard,
            "--results",
            apart.to_str().unwrap(),
        ]);
    }
    let (a, b) = (
        results(&together.join("share")),
        results(&apart.join("share")),
    );
    assert_eq!(a.len(), 3);
    assert_eq!(a, b);
}
