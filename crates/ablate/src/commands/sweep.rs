//! The study commands: `ablate check`, `plan`, `run`, `status` and `slurm`.
//!
//! A study's results live in `RESULTS/<study>/`: `plan.json` (the resolved runs, written
//! once), `data/` (generated pre-training sets, named by the hash of their generator) and
//! `runs/<run-id>/` with `run.h5` and a `DONE` or `FAILED` marker. A run is DONE only
//! after its `run.h5` has been renamed into place, so a killed sweep leaves at worst a
//! `run.h5.tmp` that the rerun overwrites; rerunning skips DONE runs and loses nothing.
//! Runs are independent (each is a pure function of its config and seed), so `--jobs`
//! and `--shard` change where and when a run executes, never its result.

use super::Internal;
use crate::manifest::{self, Manifest, Plan, PlannedRun, STUDY_PREFIX};
use crate::runner::{execute, Artefact, DataCache, RunOutcome};
use crate::{h5, output, provenance};
use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ndarray::Array1;
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

pub const RUN_EXAMPLES: &str = "\
Examples:
  ablate run experiments/smoke.toml --jobs 2
  ablate run experiments/paper.toml --jobs 8 --shard 0/4 --results /scratch/results
  ablate status results/paper
  ablate slurm experiments/paper.toml --shards 16 --cpus 4 --time 02:00:00

Writes RESULTS/<study>/plan.json, RESULTS/<study>/runs/<run-id>/run.h5 and a DONE (or
FAILED) marker per run. Rerunning skips DONE runs; --retry-failed reruns FAILED ones.";

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The study manifest (TOML).
    #[arg(value_name = "FILE.toml")]
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The study manifest (TOML).
    #[arg(value_name = "FILE.toml")]
    pub file: PathBuf,
    /// Results root; the plan goes to RESULTS/<study>/plan.json.
    #[arg(long, default_value = "results", value_name = "DIR")]
    pub results: PathBuf,
    /// Replace an existing plan of the same study that differs from this one.
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The study manifest (TOML).
    #[arg(value_name = "FILE.toml")]
    pub file: PathBuf,
    /// Runs in parallel (each run is single-threaded) [default: all cores].
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Run only the runs with plan index % N == I (0-based I), e.g. 0/4.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Rerun runs marked FAILED.
    #[arg(long)]
    pub retry_failed: bool,
    /// Results root.
    #[arg(long, default_value = "results", value_name = "DIR")]
    pub results: PathBuf,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// A study folder (RESULTS/<study>, with plan.json) or a manifest.
    #[arg(value_name = "DIR|FILE.toml")]
    pub target: PathBuf,
    /// Results root (when a manifest is given).
    #[arg(long, default_value = "results", value_name = "DIR")]
    pub results: PathBuf,
}

#[derive(Debug, Args)]
pub struct SlurmArgs {
    /// The study manifest (TOML).
    #[arg(value_name = "FILE.toml")]
    pub file: PathBuf,
    /// Array tasks; task i runs shard i/N.
    #[arg(long)]
    pub shards: usize,
    /// Slurm partition.
    #[arg(long)]
    pub partition: Option<String>,
    /// Time limit per task (Slurm format, e.g. 02:00:00).
    #[arg(long)]
    pub time: Option<String>,
    /// CPUs per task (= `--jobs` of each task).
    #[arg(long, default_value_t = 1)]
    pub cpus: usize,
    /// Results root (on the shared file system).
    #[arg(long, default_value = "results", value_name = "DIR")]
    pub results: PathBuf,
}

/// Loads a manifest; problems are printed one per line, then one summary error.
fn load(file: &Path) -> Result<Manifest> {
    match manifest::load(file) {
        Ok(m) => Ok(m),
        Err(problems) => {
            for p in &problems.0 {
                eprintln!("{p}");
            }
            let n = problems.0.len();
            bail!(
                "manifest '{}': {n} problem{}",
                file.display(),
                if n == 1 { "" } else { "s" }
            )
        }
    }
}

fn plan_text(plan: &Plan) -> String {
    serde_json::to_string_pretty(plan).expect("plans serialise") + "\n"
}

/// Writes `plan.json` unless the same plan is there; a different one needs `force`.
fn write_plan(plan: &Plan, study_dir: &Path, force: bool) -> Result<()> {
    let path = study_dir.join("plan.json");
    let text = plan_text(plan);
    if let Ok(old) = std::fs::read_to_string(&path) {
        if old == text {
            return Ok(());
        }
        if !force {
            bail!(
                "'{}' holds a different plan for study '{}' (the manifest or the program changed); \
                 rerun `ablate plan {} --force` to replace it (finished runs whose id is unchanged are kept)",
                path.display(),
                plan.study,
                plan.manifest
            );
        }
    }
    output::write_text(&path, &text)
}

pub fn check(args: &CheckArgs) -> Result<()> {
    let m = load(&args.file)?;
    let methods: std::collections::BTreeSet<&str> =
        m.plan.runs.iter().map(|r| r.method.as_str()).collect();
    let n = m.plan.runs.len();
    super::print_stdout(&format!(
        "{}: study '{}' is valid: {n} run{} ({})\n",
        args.file.display(),
        m.study,
        if n == 1 { "" } else { "s" },
        methods.into_iter().collect::<Vec<_>>().join(", ")
    ))
}

pub fn plan(args: &PlanArgs) -> Result<()> {
    let m = load(&args.file)?;
    let study_dir = args.results.join(&m.study);
    write_plan(&m.plan, &study_dir, args.force)?;
    let mut out = String::from("index\trun_id\tmethod\taxes\n");
    for r in &m.plan.runs {
        out.push_str(&format!(
            "{}\t{}\t{}\t{}\n",
            r.index,
            r.id,
            r.method,
            manifest::axes_summary(r)
        ));
    }
    super::print_stdout(&out)?;
    eprintln!(
        "{} runs; wrote {}",
        m.plan.runs.len(),
        study_dir.join("plan.json").display()
    );
    Ok(())
}

/// `I/N` -> (I, N).
fn parse_shard(s: &str) -> Result<(usize, usize)> {
    let parsed = s.split_once('/').and_then(|(i, n)| {
        let (i, n) = (
            i.trim().parse::<usize>().ok()?,
            n.trim().parse::<usize>().ok()?,
        );
        (n >= 1 && i < n).then_some((i, n))
    });
    parsed.with_context(|| format!("--shard '{s}': expected I/N with 0 <= I < N, e.g. 0/4"))
}

/// Generates the manifest's pre-training set (as `ablate simulate` would) unless the file
/// of its hash is there. Concurrent shards write distinct temporary files and rename.
fn ensure_pretrain(m: &Manifest, study_dir: &Path, threads: usize) -> Result<()> {
    let Some(spec) = &m.plan.pretrain_generator else {
        return Ok(());
    };
    let path = study_dir.join("data").join(spec.file_name());
    if path.exists() {
        return Ok(());
    }
    let tmp =
        study_dir
            .join("data")
            .join(format!("{}.{}.h5", spec.file_name(), std::process::id()));
    tracing::info!(path = %path.display(), "generating the pre-training set");
    super::simulate::run(&spec.args(tmp.clone(), Some(threads)))
        .context("generating the pre-training set of [datasets.pretrain]")?;
    std::fs::rename(&tmp, &path)
        .with_context(|| format!("cannot rename '{}' to '{}'", tmp.display(), path.display()))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// Everything a run.h5 needs besides the outcome.
struct RunContext<'a> {
    plan: &'a Plan,
    git: &'a provenance::GitState,
    host: &'a str,
}

/// Writes one run's HDF5 file (schema: ARCHITECTURE.md, "The run store").
fn write_run_h5(path: &Path, ctx: &RunContext, run: &PlannedRun, o: &RunOutcome) -> Result<()> {
    h5::create_atomically(path, |file| {
        let s = |name: &str, v: &str| h5::attr_str(file, name, v);
        s("run_id", &run.id)?;
        s("study", &ctx.plan.study)?;
        s("manifest_hash", &ctx.plan.manifest_hash)?;
        h5::attr_scalar(file, "plan_index", run.index as u64)?;
        s("git_commit", &ctx.git.commit)?;
        s("git_dirty", &ctx.git.dirty)?;
        s("host", ctx.host)?;
        s("ionode_version", env!("CARGO_PKG_VERSION"))?;
        s("config_json", &run.config.to_string())?;
        s(
            "axes_json",
            &serde_json::Value::Object(run.axes.clone()).to_string(),
        )?;
        s(
            "inputs_json",
            &serde_json::Value::Object(o.inputs.clone()).to_string(),
        )?;
        s("metrics_json", &o.metrics.to_string())?;
        s("method", &run.method)?;
        s("synthetic", if o.synthetic { "true" } else { "false" })?;
        h5::attr_scalar(file, "seconds_total", o.timings.total)?;
        h5::attr_scalar(file, "seconds_pretrain", o.timings.pretrain)?;
        h5::attr_scalar(file, "seconds_finetune", o.timings.finetune)?;
        match &o.artefact {
            Artefact::Params(v) => s("params_json", &v.to_string())?,
            Artefact::Calibration(v) => s("calibration_json", &v.to_string())?,
        }

        let curves = file.create_group("curves").context("group 'curves'")?;
        for c in &o.curves {
            let g = curves
                .create_group(&c.stage)
                .with_context(|| format!("group 'curves/{}'", c.stage))?;
            h5::dataset(&g, "train_loss", c.train_loss.as_slice(), None)?;
            h5::dataset(&g, "validation_loss", c.validation_loss.as_slice(), None)?;
        }

        let p = &o.predictions;
        let g = file
            .create_group("predictions")
            .context("group 'predictions'")?;
        h5::string_dataset(&g, "part", &p.part)?;
        h5::dataset(&g, "row", p.row.as_slice(), None)?;
        h5::string_dataset(&g, "family", &p.family)?;
        h5::string_dataset(&g, "ion", &p.ion)?;
        for (name, values, units) in [
            ("jv_m_s", &p.jv_m_s, "m/s"),
            ("feed_mol_m3", &p.feed_mol_m3, "mol/m3"),
            (
                "target_permeate_mol_m3",
                &p.target_permeate_mol_m3,
                "mol/m3",
            ),
            (
                "predicted_permeate_mol_m3",
                &p.predicted_permeate_mol_m3,
                "mol/m3",
            ),
            ("target_rejection", &p.target_rejection, "1"),
            ("predicted_rejection", &p.predicted_rejection, "1"),
        ] {
            h5::dataset(&g, name, values.as_slice(), Some(units))?;
        }

        if let Some(a) = &o.attention {
            let g = file
                .create_group("attention")
                .context("group 'attention'")?;
            h5::dataset(&g, "end", &a.end, None)?;
            h5::dataset(&g, "mean", &a.mean, None)?;
            h5::dataset(&g, "rows", &Array1::from(a.rows.clone()), None)?;
            h5::string_dataset(&g, "species", &a.species)?;
            h5::string_dataset(&g, "family", &a.family)?;
        }
        Ok(())
    })
}

/// Executes one planned run; the config's paths are made real here (the plan keeps them
/// as the manifest wrote them, so run ids do not depend on where a sweep is started).
fn run_one(
    m: &Manifest,
    study_dir: &Path,
    ctx: &RunContext,
    run: &PlannedRun,
    cache: &DataCache,
) -> Result<()> {
    let mut config: crate::commands::train::TrainConfig =
        serde_json::from_value(run.config.clone()).context("the plan's run config")?;
    let manifest_dir = m.dir();
    let mut names = Vec::new();
    let mut real = |p: &PathBuf| {
        let r = manifest::resolve_path(p, &manifest_dir, study_dir);
        names.push((r.display().to_string(), p.display().to_string()));
        r
    };
    config.data.pretrain = config.data.pretrain.as_ref().map(&mut real);
    config.data.measured = config.data.measured.iter().map(&mut real).collect();
    let mut outcome = execute(&config, config.seed, cache, &mut |_| {})?;
    // Inputs are named as in the plan (stable), not by where this process found them.
    let inputs = std::mem::take(&mut outcome.inputs);
    for (k, v) in inputs {
        let name = names
            .iter()
            .find(|(r, _)| *r == k)
            .map_or(k.clone(), |(_, n)| n.clone());
        outcome.inputs.insert(name, v);
    }
    let dir = study_dir.join("runs").join(&run.id);
    write_run_h5(&dir.join("run.h5"), ctx, run, &outcome)?;
    output::write_text(
        &dir.join("DONE"),
        &format!("{:.3} s\n", outcome.timings.total),
    )?;
    let _ = std::fs::remove_file(dir.join("FAILED"));
    Ok(())
}

/// What the run store says about a run.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Done,
    Failed(String),
    Missing,
}

fn state(study_dir: &Path, id: &str) -> State {
    let dir = study_dir.join("runs").join(id);
    if dir.join("DONE").exists() {
        State::Done
    } else if let Ok(text) = std::fs::read_to_string(dir.join("FAILED")) {
        State::Failed(text.lines().next().unwrap_or("").to_string())
    } else {
        State::Missing
    }
}

pub fn run(args: &RunArgs) -> Result<()> {
    let jobs = match args.jobs {
        Some(0) => bail!("--jobs 0: expected at least 1"),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let (shard, shards) = match &args.shard {
        Some(s) => parse_shard(s)?,
        None => (0, 1),
    };
    let m = load(&args.file)?;
    let study_dir = args.results.join(&m.study);
    write_plan(&m.plan, &study_dir, false)?;

    let mut todo: Vec<&PlannedRun> = Vec::new();
    let (mut already, mut failed_before) = (0, 0);
    for r in m.plan.runs.iter().filter(|r| r.index % shards == shard) {
        match state(&study_dir, &r.id) {
            State::Done => already += 1,
            State::Failed(_) if !args.retry_failed => failed_before += 1,
            _ => todo.push(r),
        }
    }
    if todo.iter().any(|r| {
        r.config["data"]["pretrain"]
            .as_str()
            .is_some_and(|p| p.starts_with(STUDY_PREFIX))
    }) {
        ensure_pretrain(&m, &study_dir, jobs)?;
    }
    tracing::info!(
        study = %m.study, runs = todo.len(), already_done = already, failed_before, jobs, shard, shards,
        "sweep starts"
    );

    let git = provenance::git_state();
    let host = hostname();
    let ctx = RunContext {
        plan: &m.plan,
        git: &git,
        host: &host,
    };
    let cache = DataCache::default();
    let bar = ProgressBar::with_draw_target(Some(todo.len() as u64), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} {prefix} [{elapsed_precise}] [{bar:30}] {pos}/{len} runs ({msg}, eta {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(m.study.clone());
    let (done, failed) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let update = |bar: &ProgressBar| {
        let (d, f) = (done.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
        bar.set_message(format!(
            "{d} done, {f} failed, {} remaining",
            todo.len() - d - f
        ));
    };
    update(&bar);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .map_err(|e| Internal(format!("cannot start {jobs} worker threads: {e}")))?;
    pool.install(|| {
        todo.par_iter().with_max_len(1).for_each(|r| {
            tracing::info!(run = %r.id, index = r.index, axes = %manifest::axes_summary(r), "run starts");
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run_one(&m, &study_dir, &ctx, r, &cache)
            }))
            .unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                Err(anyhow::anyhow!("panicked: {what}"))
            });
            match result {
                Ok(()) => {
                    done.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(run = %r.id, "run done");
                }
                Err(e) => {
                    failed.fetch_add(1, Ordering::Relaxed);
                    let text = super::one_line(&e);
                    tracing::warn!(run = %r.id, error = %text, "run failed");
                    let path = study_dir.join("runs").join(&r.id).join("FAILED");
                    if let Err(e) = output::write_text(&path, &format!("{text}\n")) {
                        tracing::error!(run = %r.id, error = %e, "cannot write FAILED marker");
                    }
                }
            }
            bar.inc(1);
            update(&bar);
        })
    });
    bar.finish_and_clear();
    let (d, f) = (done.into_inner(), failed.into_inner());
    eprintln!(
        "study '{}'{}: {d} runs done, {f} failed now; {already} were done before{}; results in {}",
        m.study,
        if shards > 1 {
            format!(" shard {shard}/{shards}")
        } else {
            String::new()
        },
        if failed_before > 0 {
            format!(", {failed_before} failed before (--retry-failed reruns them)")
        } else {
            String::new()
        },
        study_dir.display()
    );
    if f > 0 {
        return Err(Internal(format!(
            "{f} runs failed; `ablate status {}` lists them",
            study_dir.display()
        ))
        .into());
    }
    Ok(())
}

pub fn status(args: &StatusArgs) -> Result<()> {
    let (plan, study_dir) = if args.target.is_dir() {
        let path = args.target.join("plan.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read '{}' (not a study folder?)", path.display()))?;
        let plan: Plan = serde_json::from_str(&text)
            .with_context(|| format!("'{}' is not a plan", path.display()))?;
        (plan, args.target.clone())
    } else {
        let m = load(&args.target)?;
        let dir = args.results.join(&m.study);
        (m.plan, dir)
    };
    let mut failed = Vec::new();
    let (mut done, mut missing) = (0, 0);
    for r in &plan.runs {
        match state(&study_dir, &r.id) {
            State::Done => done += 1,
            State::Failed(first) => failed.push((r.id.clone(), first)),
            State::Missing => missing += 1,
        }
    }
    let mut out = format!(
        "study '{}': {} runs: {done} done, {} failed, {missing} missing\n",
        plan.study,
        plan.runs.len(),
        failed.len()
    );
    for (id, first) in &failed {
        out.push_str(&format!("failed {id}: {first}\n"));
    }
    super::print_stdout(&out)
}

pub fn slurm(args: &SlurmArgs) -> Result<()> {
    if args.shards == 0 {
        bail!("--shards 0: expected at least 1");
    }
    if args.cpus == 0 {
        bail!("--cpus 0: expected at least 1");
    }
    let m = load(&args.file)?;
    let study_dir = args.results.join(&m.study);
    // The plan is written here, once, so the array tasks only read it.
    write_plan(&m.plan, &study_dir, false)?;
    let cwd = std::env::current_dir().context("cannot read the current folder")?;
    let n = args.shards;
    let mut s = String::from("#!/bin/bash\n");
    s.push_str(&format!(
        "# Generated by `ablate slurm` for study '{}' ({} runs in {n} shards).\n\
         # Submit with `sbatch {}`. Resubmitting resumes: DONE runs are skipped\n\
         # (add --retry-failed to the command below to rerun FAILED ones).\n",
        m.study,
        m.plan.runs.len(),
        study_dir.join("slurm.sbatch").display()
    ));
    s.push_str(&format!("#SBATCH --job-name=ablate-{}\n", m.study));
    s.push_str(&format!("#SBATCH --array=0-{}\n", n - 1));
    s.push_str(&format!("#SBATCH --cpus-per-task={}\n", args.cpus));
    if let Some(p) = &args.partition {
        s.push_str(&format!("#SBATCH --partition={p}\n"));
    }
    if let Some(t) = &args.time {
        s.push_str(&format!("#SBATCH --time={t}\n"));
    }
    s.push_str(&format!(
        "#SBATCH --output={}/slurm/%A_%a.out\n",
        study_dir.display()
    ));
    s.push_str("set -euo pipefail\n");
    s.push_str(&format!("cd '{}'\n", cwd.display()));
    s.push_str(&format!(
        "\"${{ABLATE:-ablate}}\" run '{}' --shard \"${{SLURM_ARRAY_TASK_ID}}/{n}\" --jobs {} --results '{}'\n",
        args.file.display(),
        args.cpus,
        args.results.display()
    ));
    std::fs::create_dir_all(study_dir.join("slurm"))
        .with_context(|| format!("cannot create '{}'", study_dir.join("slurm").display()))?;
    let path = study_dir.join("slurm.sbatch");
    output::write_text(&path, &s)?;
    eprintln!("wrote {} ({n} array tasks)", path.display());
    Ok(())
}
